//! Validated settings: the `BAK_*` contract of the original, checked strictly before anything
//! happens.
//!
//! The original silently fell back to defaults on invalid values and failed late on long label
//! values. Here every raw value from [`crate::cli::CreateArgs`] (flag or environment) is parsed
//! once; the first invalid one stops the run with exit code 2 and an error naming the variable,
//! its flag and the value. Flags, defaults and what an empty value means come from the one
//! table in [`table`]. This module is pure: the time zone variable and the CPU count are passed
//! in.

use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;

use crate::cli::CreateArgs;
use crate::db::{DbTarget, Engine, ValueRef};
use crate::labels::{self, Retain, VsType};
use crate::naming::{self, Template};
use crate::notify::{NotifyFormat, NotifyOn, NotifySettings, SecretUrl};
use crate::{Error, Result};

pub mod table;

#[cfg(test)]
mod drift;

use table::{Empty, Kind, SettingSpec};

/// The kinds of object `kubectl exec TYPE/NAME` resolves to a pod, as it does
/// (`polymorphichelpers.AttachablePodForObjectFn`): a pod by name, the others through their
/// selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecKind {
    Pod,
    Deployment,
    StatefulSet,
    ReplicaSet,
    DaemonSet,
    Job,
    ReplicationController,
    Service,
}

/// How `kubectl` names each kind: its API group and its resource names (singular first, then
/// plural and short names), which kubectl matches case-insensitively, with or without
/// `.GROUP`. A bare `NAME` is a pod.
pub const EXEC_KINDS: &[(ExecKind, &str, &[&str])] = &[
    (ExecKind::Pod, "", &["pod", "pods", "po"]),
    (
        ExecKind::Deployment,
        "apps",
        &["deployment", "deployments", "deploy"],
    ),
    (
        ExecKind::StatefulSet,
        "apps",
        &["statefulset", "statefulsets", "sts"],
    ),
    (
        ExecKind::ReplicaSet,
        "apps",
        &["replicaset", "replicasets", "rs"],
    ),
    (
        ExecKind::DaemonSet,
        "apps",
        &["daemonset", "daemonsets", "ds"],
    ),
    (ExecKind::Job, "batch", &["job", "jobs"]),
    (
        ExecKind::ReplicationController,
        "",
        &["replicationcontroller", "replicationcontrollers", "rc"],
    ),
    (ExecKind::Service, "", &["service", "services", "svc"]),
];

impl ExecKind {
    /// `deployment`: the singular resource name.
    pub fn name(self) -> &'static str {
        EXEC_KINDS
            .iter()
            .find(|(k, _, _)| *k == self)
            .map_or("pod", |(_, _, names)| names[0])
    }

    /// The kind a `kubectl` type name stands for (`deploy`, `Deployments`, `sts.apps`, …).
    pub fn parse(type_name: &str) -> Option<ExecKind> {
        let lower = type_name.to_ascii_lowercase();
        EXEC_KINDS.iter().find_map(|(kind, group, names)| {
            let resource = match lower.split_once('.') {
                Some((resource, g)) if g == *group && !group.is_empty() => resource,
                Some(_) => return None,
                None => lower.as_str(),
            };
            names.contains(&resource).then_some(*kind)
        })
    }
}

/// A workload to exec into: `[TYPE/]NAME` as `kubectl exec` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResource {
    pub kind: ExecKind,
    pub name: String,
}

impl ExecResource {
    pub fn new(kind: ExecKind, name: impl Into<String>) -> Self {
        ExecResource {
            kind,
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ExecResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.name(), self.name)
    }
}

/// One database to dump before the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbJob {
    pub target: DbTarget,
    pub exec_resource: ExecResource,
    pub container: String,
}

/// Node-level lock slots (`BAK_FLOCK*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flock {
    pub dir: PathBuf,
    pub count: u32,
    pub timeout: Duration,
}

/// The per-PVC Lease (`BAK_LEASE*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    /// `None`: fail fast when another run holds it; `Some(t)`: wait up to `t`.
    pub wait: Option<Duration>,
    pub duration: Duration,
}

/// Everything `create` needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub dry_run: bool,
    /// `None`: the namespace of the current kube context, resolved when the client is built.
    pub namespace: Option<String>,
    pub pvc: String,
    pub vs_rand: Option<String>,
    pub vs_type: VsType,
    pub pod_label: Option<String>,
    pub retain: Retain,
    pub retain_days: u32,
    pub name_template: Template,
    pub vs_class: Option<String>,
    pub wait_until_ready: bool,
    pub wait_timeout: Duration,
    pub space_threshold_percent: u8,
    pub dump_timeout: Duration,
    /// Empty with `BAK_DB_SKIP=true`: a volume-only snapshot.
    pub databases: Vec<DbJob>,
    pub flock: Option<Flock>,
    pub lease: LeaseSettings,
    pub tz: Tz,
    /// Where the time zone came from (`BAK_TZ`, `TZ` or the UTC default), for logs.
    pub tz_source: &'static str,
    /// Webhooks and healthcheck pings (`BAK_NOTIFY_*`, `BAK_HEALTHCHECK_URL`).
    pub notify: NotifySettings,
    /// Every setting as `(VARIABLE, shown value)`, secrets redacted, for `backup-ns env`
    /// (which prints them in [`table::SETTINGS`] order).
    pub described: Vec<(&'static str, String)>,
}

/// A raw value (flag or environment) with the names its errors use: every command validates
/// its arguments through this, so all errors name the variable, its flag and the value.
pub(crate) struct Raw<'a> {
    var: &'static str,
    flag: String,
    value: Option<&'a str>,
    spec: Option<&'static SettingSpec>,
}

impl<'a> Raw<'a> {
    /// A value of a setting or flag named in the table (for `create`'s settings the
    /// [`table::SETTINGS`] row, for other commands the [`table::OPTIONS`] row wins).
    pub(crate) fn new(var: &'static str, flag: &'static str, value: &'a Option<String>) -> Self {
        let spec = table::option(var).or_else(|| table::setting(var));
        debug_assert!(
            spec.is_none_or(|s| s.flag() == flag),
            "{var}: flag {flag} differs from the settings table"
        );
        Raw {
            var,
            flag: flag.to_owned(),
            value: value.as_deref(),
            spec,
        }
    }

    /// A value of a `create` setting: its flag and default come from [`table::SETTINGS`].
    pub(crate) fn of(var: &'static str, value: &'a Option<String>) -> Self {
        let spec = table::setting(var);
        debug_assert!(spec.is_some(), "{var} is not in the settings table");
        Raw {
            var,
            flag: spec.map(|s| s.flag()).unwrap_or_default(),
            value: value.as_deref(),
            spec,
        }
    }

    /// A value of a lifecycle command's flag: its flag and default come from
    /// [`table::OPTIONS`].
    pub(crate) fn opt(var: &'static str, value: &'a Option<String>) -> Self {
        let spec = table::option(var);
        debug_assert!(spec.is_some(), "{var} is not in the options table");
        Raw {
            var,
            flag: spec.map(|s| s.flag()).unwrap_or_default(),
            value: value.as_deref(),
            spec,
        }
    }

    pub(crate) fn name(&self) -> String {
        format!("{} ({})", self.var, self.flag)
    }

    pub(crate) fn err(&self, value: &str, reason: impl Into<String>) -> Error {
        Error::config(self.name(), value, reason)
    }

    /// The value as given, `None` when unset. A variable set to the empty string is set (the
    /// original read them with Go's `os.LookupEnv`); what it means is the table's
    /// [`Empty`] rule: an error for typed settings, the default where the original made an
    /// empty value mean that, or the empty string itself.
    pub(crate) fn get(&self) -> Result<Option<&'a str>> {
        match self.value {
            Some("") => match self.spec.map_or(Empty::Invalid, |s| s.empty) {
                Empty::Value => Ok(Some("")),
                Empty::Default => Ok(None),
                Empty::Invalid => Err(self.err(
                    "",
                    format!(
                        "the variable is set but empty; {}, or unset it for the default ({})",
                        self.spec.map_or("give a value", |s| expectation(s.kind)),
                        self.default_text()
                    ),
                )),
            },
            other => Ok(other),
        }
    }

    fn default_text(&self) -> String {
        match self.spec.map(|s| s.default) {
            Some(table::DefaultValue::Value(v)) => v.to_owned(),
            Some(table::DefaultValue::Computed(text)) => text.replace('`', ""),
            Some(table::DefaultValue::Required) => "none: it is required".to_owned(),
            None => "see --help".to_owned(),
        }
    }

    /// The value, else the table's default value (`None`: unset, and the default is computed).
    fn get_or_default(&self) -> Result<Option<&'a str>> {
        Ok(self.get()?.or(match self.spec.map(|s| s.default) {
            Some(table::DefaultValue::Value(v)) => Some(v),
            _ => None,
        }))
    }

    /// The value or the table's default, as a string.
    fn string(&self) -> Result<String> {
        Ok(self.get_or_default()?.unwrap_or_default().to_string())
    }

    /// Go's `strconv.ParseBool` set, the original's contract; anything else is an error.
    pub(crate) fn bool_or(&self, default: bool) -> Result<bool> {
        match self.get()? {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or_else(|| self.err(v, expectation(Kind::Bool))),
        }
    }

    /// A boolean with the table's default.
    pub(crate) fn bool(&self) -> Result<bool> {
        let default = self.get_or_default()?.and_then(parse_bool).unwrap_or(false);
        self.bool_or(default)
    }

    fn u32_in(&self, default: u32, min: u32, max: u32) -> Result<u32> {
        match self.get()? {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(self.err(v, format!("expected a whole number from {min} to {max}"))),
            },
        }
    }

    /// A whole number within the table's bounds; `computed` is the default where the table's
    /// is computed at run time.
    fn u32_or(&self, computed: u32) -> Result<u32> {
        let (min, max) = self.int_bounds();
        let default = match self.spec.map(|s| s.default) {
            Some(table::DefaultValue::Value(v)) => v.parse().unwrap_or(computed),
            _ => computed,
        };
        self.u32_in(
            default,
            u32::try_from(min).unwrap_or(0),
            u32::try_from(max).unwrap_or(u32::MAX),
        )
    }

    fn int_bounds(&self) -> (u64, u64) {
        match self.spec.map(|s| s.kind) {
            Some(Kind::Int { min, max }) => (min, max),
            _ => (0, u64::from(u32::MAX)),
        }
    }

    pub(crate) fn count_or(&self, default: usize, max: usize) -> Result<usize> {
        match self.get()? {
            None => Ok(default),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(self.err(v, format!("expected a whole number from 0 to {max}"))),
            },
        }
    }

    /// An optional namespace, validated as a DNS-1123 label.
    pub(crate) fn namespace(&self) -> Result<Option<String>> {
        let Some(ns) = self.get()? else {
            return Ok(None);
        };
        labels::validate_dns1123_label(&self.name(), ns)?;
        Ok(Some(ns.to_owned()))
    }

    pub(crate) fn duration_or(&self, default: &str) -> Result<Duration> {
        let v = self.get()?.unwrap_or(default);
        parse_duration(v).map_err(|reason| self.err(v, reason))
    }

    /// A timeout: a duration greater than zero, `default` when unset.
    pub(crate) fn timeout_or(&self, default: &str) -> Result<Duration> {
        let timeout = self.duration_or(default)?;
        if timeout.is_zero() {
            return Err(self.err(
                self.get()?.unwrap_or("0"),
                format!("must be greater than zero, e.g. {default}"),
            ));
        }
        Ok(timeout)
    }

    /// A duration with the table's default; zero is an error where the table says so.
    fn duration(&self) -> Result<Duration> {
        let v = self.get_or_default()?.unwrap_or("0");
        let d = parse_duration(v).map_err(|reason| self.err(v, reason))?;
        if d.is_zero()
            && matches!(
                self.spec.map(|s| s.kind),
                Some(Kind::Duration { nonzero: true })
            )
        {
            return Err(self.err(v, "must be greater than zero"));
        }
        Ok(d)
    }
}

/// The longest `BAK_NOTIFY_TIMEOUT`: a run waits for up to three attempts of it.
const MAX_NOTIFY_TIMEOUT: Duration = Duration::from_secs(300);

/// What a value of `kind` looks like, for error messages.
fn expectation(kind: Kind) -> &'static str {
    match kind {
        Kind::Bool => "expected a boolean: true or false (also 1/0, t/f)",
        Kind::Duration { .. } => "expected a duration with a unit, e.g. 15m, 90s, 1h30m",
        Kind::Int { .. } | Kind::Float { .. } => "expected a number",
        Kind::Enum(_) => "expected one of the listed values",
        Kind::Dns1123Label | Kind::Dns1123Subdomain | Kind::PvcName => "expected a Kubernetes name",
        Kind::ExecResource => "expected [TYPE/]NAME, e.g. deployment/app-base",
        Kind::AbsPath => "expected an absolute path",
        Kind::LocalPath => "expected a file path or `-`",
        Kind::Host => "expected a host name or IP address",
        Kind::Charset => "expected a character set name such as utf8mb4",
        Kind::Rand => "expected a-z and 0-9",
        Kind::Template => "expected a name template",
        Kind::TimeZone => "expected an IANA time zone name",
        Kind::Url => "expected an http:// or https:// URL",
        Kind::LabelValue | Kind::ValueRef => "give a value",
    }
}

/// Parses a boolean the way Go's `strconv.ParseBool` does (the original's env loader).
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Parses a Go-style duration (`15m`, `1h30m`, `90s`, `1.5h`, `500ms`). A unit is required: a
/// bare number is ambiguous and rejected (except `0`).
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("expected a duration with a unit, e.g. 15m, 90s, 1h30m".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!(
                "expected a number at {rest:?} (durations look like 15m, 90s, 1h30m)"
            ));
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("{:?} is not a number", &rest[..num_len]))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err("missing unit (use ns, us, ms, s, m or h, e.g. 15m)".into()),
            other => {
                return Err(format!(
                    "unknown unit {other:?} (use ns, us, ms, s, m or h)"
                ))
            }
        };
        total += number * seconds;
    }
    if !total.is_finite() || total > 10.0 * 365.0 * 86400.0 {
        return Err("duration out of range".into());
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration the way Go prints it for whole units (`15m0s` → `15m`), for `env`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 || out.is_empty() {
        out += &format!("{s}s");
    }
    out
}

/// Resolves the time zone: `BAK_TZ` if set, else `TZ`, else UTC. Accepts IANA names (with the
/// optional leading `:` of POSIX `TZ`); POSIX rule strings like `CET-1CEST` are rejected.
pub fn resolve_tz(bak_tz: Option<&str>, tz: Option<&str>) -> Result<(Tz, &'static str)> {
    let (var, flag, value) = match (
        bak_tz.filter(|v| !v.is_empty()),
        tz.filter(|v| !v.is_empty()),
    ) {
        (Some(v), _) => ("BAK_TZ", "--tz", v),
        (None, Some(v)) => ("TZ", "environment", v),
        (None, None) => return Ok((Tz::UTC, "default (UTC)")),
    };
    let name = value.strip_prefix(':').unwrap_or(value);
    name.parse::<Tz>().map(|tz| (tz, var)).map_err(|_| {
        Error::config(
            format!("{var} ({flag})"),
            value,
            "unknown time zone: expected an IANA name such as Europe/Vienna or UTC",
        )
    })
}

/// `[TYPE/]NAME` as `kubectl exec` takes it: a bare name is a pod; `TYPE` is any name
/// [`EXEC_KINDS`] lists for a kind, in any case, with or without its `.GROUP`.
pub fn parse_exec_resource_value(v: &str) -> std::result::Result<ExecResource, String> {
    const EXPECTED: &str = "expected [TYPE/]NAME as kubectl exec takes it: NAME or pod/NAME, \
         deployment/NAME (deploy), statefulset/NAME (sts), replicaset/NAME (rs), \
         daemonset/NAME (ds), job/NAME, replicationcontroller/NAME (rc) or service/NAME (svc)";
    let (kind, name) = match v.split_once('/') {
        Some((type_name, name)) => (
            ExecKind::parse(type_name).ok_or_else(|| EXPECTED.to_owned())?,
            name,
        ),
        None => (ExecKind::Pod, v),
    };
    labels::check_dns1123_subdomain(name).map_err(|reason| format!("{reason} ({EXPECTED})"))?;
    Ok(ExecResource::new(kind, name))
}

/// The chart schema's `pattern` for `backups[].execResource`: the same `[TYPE/]NAME` forms as
/// [`parse_exec_resource_value`], type names in any case (spelt `[dD]…`, since JSON Schema
/// patterns have no portable case-insensitive flag). Generated so the schema cannot drift.
pub fn exec_resource_pattern() -> String {
    let any_case = |name: &str| -> String {
        name.chars()
            .map(|c| format!("[{c}{}]", c.to_ascii_uppercase()))
            .collect()
    };
    let kinds: Vec<String> = EXEC_KINDS
        .iter()
        .map(|(_, group, names)| {
            let names: Vec<String> = names.iter().map(|n| any_case(n)).collect();
            let group = if group.is_empty() {
                String::new()
            } else {
                format!("(\\.{group})?")
            };
            format!("({}){group}", names.join("|"))
        })
        .collect();
    const LABEL: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
    format!("^(({})/)?{LABEL}(\\.{LABEL})*$", kinds.join("|"))
}

fn parse_exec_resource(raw: &Raw) -> Result<ExecResource> {
    let v = raw.string()?;
    parse_exec_resource_value(&v).map_err(|reason| raw.err(&v, reason))
}

fn parse_dump_file(raw: &Raw) -> Result<String> {
    let v = raw.string()?;
    if !v.starts_with('/') || v.ends_with('/') || v.contains('\n') || v.contains('\0') {
        return Err(raw.err(&v, "expected an absolute file path inside the container"));
    }
    Ok(v)
}

fn parse_port(raw: &Raw) -> Result<u16> {
    Ok(raw.u32_or(0)? as u16)
}

fn parse_host(raw: &Raw) -> Result<String> {
    let v = raw.string()?;
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) || v.starts_with('-')
    {
        return Err(raw.err(&v, "expected a host name or IP address"));
    }
    Ok(v)
}

fn parse_value_ref(raw: &Raw) -> Result<ValueRef> {
    let v = raw.string()?;
    if v.contains('\n') || v.contains('\0') {
        return Err(raw.err(
            &redact_for_error(raw.var, &v),
            "must not contain a newline or NUL",
        ));
    }
    Ok(ValueRef::parse(&v))
}

fn redact_for_error(var: &str, v: &str) -> String {
    if table::setting(var).is_some_and(|s| s.secret) || var.contains("PASSWORD") {
        "<redacted>".into()
    } else {
        v.to_string()
    }
}

/// Shows a value for `env`: references such as `${POSTGRES_PASSWORD}` are shown, literal secrets
/// are not.
fn show_ref(var: &str, v: &ValueRef) -> String {
    match v {
        ValueRef::Env(name) => format!("${{{name}}}"),
        ValueRef::Literal(_) if table::setting(var).is_some_and(|s| s.secret) => {
            "<redacted>".into()
        }
        ValueRef::Literal(s) => s.clone(),
    }
}

impl Settings {
    /// Validates the raw arguments. `tz_env` is the value of `TZ`; `cpus` (the node's) feeds the
    /// default of `BAK_FLOCK_COUNT`.
    pub fn from_args(a: &CreateArgs, tz_env: Option<&str>, cpus: usize) -> Result<Settings> {
        let mut d: Vec<(&'static str, String)> = Vec::new();

        let dry_run = Raw::of("BAK_DRY_RUN", &a.dry_run).bool()?;
        d.push(("BAK_DRY_RUN", dry_run.to_string()));

        let namespace = Raw::of("BAK_NAMESPACE", &a.namespace).namespace()?;
        d.push((
            "BAK_NAMESPACE",
            namespace
                .clone()
                .unwrap_or_else(|| "<current kube context>".into()),
        ));

        let pvc_raw = Raw::of("BAK_PVC_NAME", &a.pvc);
        let pvc = pvc_raw.string()?;
        labels::validate_dns1123_subdomain(&pvc_raw.name(), &pvc)?;
        // The PVC name is also the value of the `backup-ns.sh/pvc` label.
        labels::validate_label_value(&pvc_raw.name(), &pvc)?;
        d.push(("BAK_PVC_NAME", pvc.clone()));

        let vs_rand = Raw::of("BAK_VS_RAND", &a.vs_rand)
            .get()?
            .map(str::to_string);
        if let Some(r) = &vs_rand {
            naming::validate_rand(r)?;
        }
        d.push((
            "BAK_VS_RAND",
            vs_rand.clone().unwrap_or_else(|| "<random>".into()),
        ));

        let type_raw = Raw::of("BAK_LABEL_VS_TYPE", &a.label_type);
        let type_text = type_raw.string()?;
        let vs_type: VsType = type_text
            .parse()
            .map_err(|e: labels::InvalidVsType| type_raw.err(&type_text, e.reason))?;
        d.push(("BAK_LABEL_VS_TYPE", type_text));

        let pod_raw = Raw::of("BAK_LABEL_VS_POD", &a.label_pod);
        let pod_label = pod_raw.get()?.map(str::to_string);
        if let Some(p) = &pod_label {
            labels::validate_label_value(&pod_raw.name(), p)?;
        }
        d.push(("BAK_LABEL_VS_POD", pod_label.clone().unwrap_or_default()));

        let retain_raw = Raw::of("BAK_LABEL_VS_RETAIN", &a.retain);
        let retain_text = retain_raw.string()?;
        let retain: Retain = retain_text
            .parse()
            .map_err(|e: labels::UnknownValue| retain_raw.err(&retain_text, e.to_string()))?;
        d.push(("BAK_LABEL_VS_RETAIN", retain_text));

        let retain_days = Raw::of("BAK_LABEL_VS_RETAIN_DAYS", &a.retain_days).u32_or(0)?;
        d.push(("BAK_LABEL_VS_RETAIN_DAYS", retain_days.to_string()));

        let name_template =
            naming::parse_template(&Raw::of("BAK_VS_NAME_TEMPLATE", &a.name_template).string()?)?;
        d.push(("BAK_VS_NAME_TEMPLATE", name_template.as_str().to_string()));

        let class_raw = Raw::of("BAK_VS_CLASS_NAME", &a.vs_class);
        let vs_class = class_raw.get()?.map(str::to_string);
        if let Some(c) = &vs_class {
            labels::validate_dns1123_subdomain(&class_raw.name(), c)?;
        }
        d.push((
            "BAK_VS_CLASS_NAME",
            vs_class
                .clone()
                .unwrap_or_else(|| "<cluster default>".into()),
        ));

        let wait_until_ready = Raw::of("BAK_VS_WAIT_UNTIL_READY", &a.wait).bool()?;
        d.push(("BAK_VS_WAIT_UNTIL_READY", wait_until_ready.to_string()));
        let wait_timeout =
            Raw::of("BAK_VS_WAIT_UNTIL_READY_TIMEOUT", &a.wait_timeout).duration()?;
        d.push((
            "BAK_VS_WAIT_UNTIL_READY_TIMEOUT",
            format_duration(wait_timeout),
        ));

        let space_threshold_percent = Raw::of(
            "BAK_THRESHOLD_SPACE_USED_PERCENTAGE",
            &a.threshold_space_used,
        )
        .u32_or(0)? as u8;
        d.push((
            "BAK_THRESHOLD_SPACE_USED_PERCENTAGE",
            space_threshold_percent.to_string(),
        ));

        let dump_timeout = Raw::of("BAK_DB_DUMP_TIMEOUT", &a.dump_timeout).duration()?;
        d.push(("BAK_DB_DUMP_TIMEOUT", format_duration(dump_timeout)));

        let skip_raw = Raw::of("BAK_DB_SKIP", &a.db_skip);
        let db_skip = skip_raw.bool()?;
        let pg_raw = Raw::of("BAK_DB_POSTGRES", &a.postgres);
        let postgres = pg_raw.bool()?;
        let my_raw = Raw::of("BAK_DB_MYSQL", &a.mysql);
        let mysql = my_raw.bool()?;
        d.push(("BAK_DB_SKIP", db_skip.to_string()));
        d.push(("BAK_DB_POSTGRES", postgres.to_string()));
        d.push(("BAK_DB_MYSQL", mysql.to_string()));
        if db_skip && (postgres || mysql) {
            let which = if postgres { &pg_raw } else { &my_raw };
            return Err(Error::config(
                skip_raw.name(),
                "true",
                format!("contradicts {}=true: a volume-only snapshot cannot also dump a database; set one of them", which.var),
            ));
        }
        if !db_skip && !postgres && !mysql {
            return Err(Error::config(
                "BAK_DB_POSTGRES / BAK_DB_MYSQL / BAK_DB_SKIP",
                "false",
                "no database selected: set BAK_DB_POSTGRES=true or BAK_DB_MYSQL=true to dump, or BAK_DB_SKIP=true for a volume-only snapshot",
            ));
        }

        let mut databases = Vec::new();
        if postgres {
            let job = Self::postgres_job(a, &mut d)?;
            databases.push(job);
        }
        if mysql {
            let job = Self::mysql_job(a, &mut d)?;
            databases.push(job);
        }

        let flock_enabled = Raw::of("BAK_FLOCK", &a.flock).bool()?;
        let flock_count =
            Raw::of("BAK_FLOCK_COUNT", &a.flock_count).u32_or(crate::lock::default_count(cpus))?;
        let flock_dir_raw = Raw::of("BAK_FLOCK_DIR", &a.flock_dir);
        let flock_dir = flock_dir_raw.string()?;
        if !flock_dir.starts_with('/') || flock_dir.contains(['\n', '\0']) {
            return Err(flock_dir_raw.err(&flock_dir, "expected an absolute directory path"));
        }
        let flock_timeout = Raw::of("BAK_FLOCK_TIMEOUT_SEC", &a.flock_timeout_sec).u32_or(0)?;
        d.push(("BAK_FLOCK", flock_enabled.to_string()));
        d.push(("BAK_FLOCK_COUNT", flock_count.to_string()));
        d.push(("BAK_FLOCK_DIR", flock_dir.clone()));
        d.push(("BAK_FLOCK_TIMEOUT_SEC", flock_timeout.to_string()));
        let flock = flock_enabled.then(|| Flock {
            dir: PathBuf::from(flock_dir),
            count: flock_count,
            timeout: Duration::from_secs(flock_timeout.into()),
        });

        let lease_wait = Raw::of("BAK_LEASE_WAIT", &a.lease_wait).bool()?;
        let lease_wait_timeout =
            Raw::of("BAK_LEASE_WAIT_TIMEOUT", &a.lease_wait_timeout).duration()?;
        let lease_duration_raw = Raw::of("BAK_LEASE_DURATION", &a.lease_duration);
        let lease_duration = lease_duration_raw.duration()?;
        if lease_duration < Duration::from_secs(3) {
            return Err(
                lease_duration_raw.err(&format_duration(lease_duration), "must be at least 3s")
            );
        }
        d.push(("BAK_LEASE_WAIT", lease_wait.to_string()));
        d.push((
            "BAK_LEASE_WAIT_TIMEOUT",
            format_duration(lease_wait_timeout),
        ));
        d.push(("BAK_LEASE_DURATION", format_duration(lease_duration)));

        let (tz, tz_source) = resolve_tz(a.tz.as_deref(), tz_env)?;
        d.push(("BAK_TZ", format!("{} (from {tz_source})", tz.name())));

        let notify = Self::notify(a, &mut d)?;

        Ok(Settings {
            dry_run,
            namespace,
            pvc,
            vs_rand,
            vs_type,
            pod_label,
            retain,
            retain_days,
            name_template,
            vs_class,
            wait_until_ready,
            wait_timeout,
            space_threshold_percent,
            dump_timeout,
            databases,
            flock,
            lease: LeaseSettings {
                wait: lease_wait.then_some(lease_wait_timeout),
                duration: lease_duration,
            },
            tz,
            tz_source,
            notify,
            described: d,
        })
    }

    /// `BAK_NOTIFY_*` and `BAK_HEALTHCHECK_URL`. The URLs are secrets: errors and `env` show
    /// them redacted (`scheme://host/…`), or not at all when they do not parse.
    fn notify(a: &CreateArgs, d: &mut Vec<(&'static str, String)>) -> Result<NotifySettings> {
        let urls_raw = Raw::of("BAK_NOTIFY_URL", &None);
        // The variable is a comma-separated list, the flag repeatable (clap splits both);
        // empty items are skipped, as an empty variable means none.
        let items: Vec<&str> = a
            .notify_url
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        let mut urls = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let url = SecretUrl::parse(item).map_err(|reason| {
                urls_raw.err(
                    "<redacted>",
                    format!("URL {} of {}: {reason}", i + 1, items.len()),
                )
            })?;
            urls.push(url);
        }
        let on_raw = Raw::of("BAK_NOTIFY_ON", &a.notify_on);
        let on = match on_raw.string()?.as_str() {
            "failure" => NotifyOn::Failure,
            "always" => NotifyOn::Always,
            other => return Err(on_raw.err(other, "expected failure or always")),
        };
        let format_raw = Raw::of("BAK_NOTIFY_FORMAT", &a.notify_format);
        let format = match format_raw.string()?.as_str() {
            "json" => NotifyFormat::Json,
            "slack" => NotifyFormat::Slack,
            other => return Err(format_raw.err(other, "expected json or slack")),
        };
        let hc_raw = Raw::of("BAK_HEALTHCHECK_URL", &a.healthcheck_url);
        let healthcheck = match hc_raw.get()?.map(str::trim) {
            None | Some("") => None,
            Some(v) => {
                Some(SecretUrl::parse(v).map_err(|reason| hc_raw.err("<redacted>", reason))?)
            }
        };
        let timeout_raw = Raw::of("BAK_NOTIFY_TIMEOUT", &a.notify_timeout);
        let timeout = timeout_raw.duration()?;
        if timeout > MAX_NOTIFY_TIMEOUT {
            return Err(timeout_raw.err(
                &format_duration(timeout),
                "must be at most 5m: the run waits for up to 3 attempts of it",
            ));
        }
        let shown = |urls: &[&SecretUrl]| -> String {
            if urls.is_empty() {
                "<none>".into()
            } else {
                urls.iter()
                    .map(|u| u.redacted())
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        d.push(("BAK_NOTIFY_URL", shown(&urls.iter().collect::<Vec<_>>())));
        d.push((
            "BAK_NOTIFY_ON",
            match on {
                NotifyOn::Failure => "failure",
                NotifyOn::Always => "always",
            }
            .into(),
        ));
        d.push((
            "BAK_NOTIFY_FORMAT",
            match format {
                NotifyFormat::Json => "json",
                NotifyFormat::Slack => "slack",
            }
            .into(),
        ));
        d.push((
            "BAK_HEALTHCHECK_URL",
            shown(&healthcheck.iter().collect::<Vec<_>>()),
        ));
        d.push(("BAK_NOTIFY_TIMEOUT", format_duration(timeout)));
        Ok(NotifySettings {
            urls,
            on,
            format,
            healthcheck,
            timeout,
        })
    }

    fn postgres_job(a: &CreateArgs, d: &mut Vec<(&'static str, String)>) -> Result<DbJob> {
        let exec_resource = parse_exec_resource(&Raw::of(
            "BAK_DB_POSTGRES_EXEC_RESOURCE",
            &a.postgres_exec_resource,
        ))?;
        let container_raw = Raw::of("BAK_DB_POSTGRES_EXEC_CONTAINER", &a.postgres_exec_container);
        let container = container_raw.string()?;
        labels::validate_dns1123_label(&container_raw.name(), &container)?;
        let target = DbTarget {
            engine: Engine::Postgres,
            host: parse_host(&Raw::of("BAK_DB_POSTGRES_HOST", &a.postgres_host))?,
            port: parse_port(&Raw::of("BAK_DB_POSTGRES_PORT", &a.postgres_port))?,
            user: parse_value_ref(&Raw::of("BAK_DB_POSTGRES_USER", &a.postgres_user))?,
            password: parse_value_ref(&Raw::of("BAK_DB_POSTGRES_PASSWORD", &a.postgres_password))?,
            database: parse_value_ref(&Raw::of("BAK_DB_POSTGRES_DB", &a.postgres_db))?,
            dump_file: parse_dump_file(&Raw::of(
                "BAK_DB_POSTGRES_DUMP_FILE",
                &a.postgres_dump_file,
            ))?,
            default_character_set: String::new(),
        };
        d.push(("BAK_DB_POSTGRES_EXEC_RESOURCE", exec_resource.to_string()));
        d.push(("BAK_DB_POSTGRES_EXEC_CONTAINER", container.clone()));
        d.push(("BAK_DB_POSTGRES_DUMP_FILE", target.dump_file.clone()));
        d.push(("BAK_DB_POSTGRES_HOST", target.host.clone()));
        d.push(("BAK_DB_POSTGRES_PORT", target.port.to_string()));
        d.push((
            "BAK_DB_POSTGRES_USER",
            show_ref("BAK_DB_POSTGRES_USER", &target.user),
        ));
        d.push((
            "BAK_DB_POSTGRES_PASSWORD",
            show_ref("BAK_DB_POSTGRES_PASSWORD", &target.password),
        ));
        d.push((
            "BAK_DB_POSTGRES_DB",
            show_ref("BAK_DB_POSTGRES_DB", &target.database),
        ));
        db_check(target, exec_resource, container, "BAK_DB_POSTGRES_*")
    }

    fn mysql_job(a: &CreateArgs, d: &mut Vec<(&'static str, String)>) -> Result<DbJob> {
        let exec_resource = parse_exec_resource(&Raw::of(
            "BAK_DB_MYSQL_EXEC_RESOURCE",
            &a.mysql_exec_resource,
        ))?;
        let container_raw = Raw::of("BAK_DB_MYSQL_EXEC_CONTAINER", &a.mysql_exec_container);
        let container = container_raw.string()?;
        labels::validate_dns1123_label(&container_raw.name(), &container)?;
        let charset_raw = Raw::of(
            "BAK_DB_MYSQL_DEFAULT_CHARACTER_SET",
            &a.mysql_default_character_set,
        );
        // The original defaulted to `utf8` (utf8mb3), which silently turns 4-byte characters
        // such as emoji into `?` in the dump; utf8mb4 is the lossless superset.
        let charset = charset_raw.string()?;
        if charset.is_empty()
            || !charset
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(charset_raw.err(&charset, "expected a character set name such as utf8mb4"));
        }
        let target = DbTarget {
            engine: Engine::Mysql,
            host: parse_host(&Raw::of("BAK_DB_MYSQL_HOST", &a.mysql_host))?,
            port: parse_port(&Raw::of("BAK_DB_MYSQL_PORT", &a.mysql_port))?,
            user: parse_value_ref(&Raw::of("BAK_DB_MYSQL_USER", &a.mysql_user))?,
            password: parse_value_ref(&Raw::of("BAK_DB_MYSQL_PASSWORD", &a.mysql_password))?,
            database: parse_value_ref(&Raw::of("BAK_DB_MYSQL_DB", &a.mysql_db))?,
            dump_file: parse_dump_file(&Raw::of("BAK_DB_MYSQL_DUMP_FILE", &a.mysql_dump_file))?,
            default_character_set: charset,
        };
        d.push(("BAK_DB_MYSQL_EXEC_RESOURCE", exec_resource.to_string()));
        d.push(("BAK_DB_MYSQL_EXEC_CONTAINER", container.clone()));
        d.push(("BAK_DB_MYSQL_DUMP_FILE", target.dump_file.clone()));
        d.push(("BAK_DB_MYSQL_HOST", target.host.clone()));
        d.push(("BAK_DB_MYSQL_PORT", target.port.to_string()));
        d.push((
            "BAK_DB_MYSQL_USER",
            show_ref("BAK_DB_MYSQL_USER", &target.user),
        ));
        d.push((
            "BAK_DB_MYSQL_PASSWORD",
            show_ref("BAK_DB_MYSQL_PASSWORD", &target.password),
        ));
        d.push((
            "BAK_DB_MYSQL_DB",
            show_ref("BAK_DB_MYSQL_DB", &target.database),
        ));
        d.push((
            "BAK_DB_MYSQL_DEFAULT_CHARACTER_SET",
            target.default_character_set.clone(),
        ));
        db_check(target, exec_resource, container, "BAK_DB_MYSQL_*")
    }
}

/// The script builders' own validation, as a configuration error.
fn db_check(
    target: DbTarget,
    exec_resource: ExecResource,
    container: String,
    vars: &str,
) -> Result<DbJob> {
    crate::db::validate(&target).map_err(|reason| Error::config(vars, "", reason))?;
    Ok(DbJob {
        target,
        exec_resource,
        container,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CreateArgs {
        CreateArgs {
            postgres: Some("true".into()),
            ..Default::default()
        }
    }

    fn err_of(a: &CreateArgs) -> String {
        match Settings::from_args(a, None, 4) {
            Ok(_) => panic!("expected an error"),
            Err(e) => {
                assert!(matches!(e, Error::Config { .. }), "not a config error: {e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn defaults_match_the_original() {
        let s = Settings::from_args(&args(), None, 4).unwrap();
        assert!(!s.dry_run);
        assert_eq!(s.pvc, "data");
        assert_eq!(s.vs_type, VsType::Adhoc);
        assert_eq!(s.retain, Retain::Days);
        assert_eq!(s.retain_days, 30);
        assert!(s.wait_until_ready);
        assert_eq!(s.wait_timeout, Duration::from_secs(900));
        assert_eq!(s.space_threshold_percent, 90);
        assert!(s.flock.is_none());
        assert_eq!(s.tz, Tz::UTC);
        let pg = &s.databases[0];
        assert_eq!(
            pg.exec_resource,
            ExecResource::new(ExecKind::Deployment, "app-base")
        );
        assert_eq!(pg.container, "postgres");
        assert_eq!(pg.target.dump_file, "/var/lib/postgresql/data/dump.sql.gz");
        assert_eq!(pg.target.port, 5432);
        assert_eq!(
            pg.target.password,
            ValueRef::Env("POSTGRES_PASSWORD".into())
        );
        assert_eq!(pg.target.user, ValueRef::Env("POSTGRES_USER".into()));
    }

    #[test]
    fn mysql_defaults() {
        let a = CreateArgs {
            mysql: Some("true".into()),
            ..Default::default()
        };
        let s = Settings::from_args(&a, None, 4).unwrap();
        let my = &s.databases[0];
        assert_eq!(my.target.engine, Engine::Mysql);
        assert_eq!(my.container, "mysql");
        assert_eq!(my.target.user, ValueRef::Literal("root".into()));
        assert_eq!(
            my.target.password,
            ValueRef::Env("MYSQL_ROOT_PASSWORD".into())
        );
        assert_eq!(my.target.default_character_set, "utf8mb4");
        assert_eq!(my.target.dump_file, "/var/lib/mysql/dump.sql.gz");
    }

    #[test]
    fn invalid_boolean_names_variable_and_value() {
        let a = CreateArgs {
            dry_run: Some("yes".into()),
            ..args()
        };
        let msg = err_of(&a);
        assert!(
            msg.contains("BAK_DRY_RUN") && msg.contains("--dry-run") && msg.contains("\"yes\""),
            "{msg}"
        );
    }

    #[test]
    fn go_booleans_are_accepted() {
        for (v, want) in [
            ("1", true),
            ("T", true),
            ("True", true),
            ("0", false),
            ("FALSE", false),
        ] {
            let a = CreateArgs {
                dry_run: Some(v.into()),
                ..args()
            };
            assert_eq!(
                Settings::from_args(&a, None, 4).unwrap().dry_run,
                want,
                "{v}"
            );
        }
    }

    #[test]
    fn numbers_are_checked() {
        let msg = err_of(&CreateArgs {
            flock_count: Some("0".into()),
            ..args()
        });
        assert!(msg.contains("BAK_FLOCK_COUNT"), "{msg}");
        let msg = err_of(&CreateArgs {
            threshold_space_used: Some("ninety".into()),
            ..args()
        });
        assert!(
            msg.contains("BAK_THRESHOLD_SPACE_USED_PERCENTAGE") && msg.contains("ninety"),
            "{msg}"
        );
        let msg = err_of(&CreateArgs {
            threshold_space_used: Some("101".into()),
            ..args()
        });
        assert!(msg.contains("101"), "{msg}");
        let msg = err_of(&CreateArgs {
            postgres_port: Some("70000".into()),
            ..args()
        });
        assert!(msg.contains("BAK_DB_POSTGRES_PORT"), "{msg}");
        let msg = err_of(&CreateArgs {
            retain_days: Some("-1".into()),
            ..args()
        });
        assert!(msg.contains("BAK_LABEL_VS_RETAIN_DAYS"), "{msg}");
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("15 minutes").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
        let msg = err_of(&CreateArgs {
            wait_timeout: Some("900".into()),
            ..args()
        });
        assert!(
            msg.contains("BAK_VS_WAIT_UNTIL_READY_TIMEOUT") && msg.contains("unit"),
            "{msg}"
        );
    }

    #[test]
    fn format_duration_round_trips() {
        for s in ["15m", "1h30m", "90s", "3h", "0s"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn enums_are_strict() {
        let msg = err_of(&CreateArgs {
            retain: Some("weekly".into()),
            ..args()
        });
        assert!(
            msg.contains("BAK_LABEL_VS_RETAIN") && msg.contains("weekly"),
            "{msg}"
        );
        let msg = err_of(&CreateArgs {
            label_type: Some("not valid!".into()),
            ..args()
        });
        assert!(msg.contains("BAK_LABEL_VS_TYPE"), "{msg}");
        let msg = err_of(&CreateArgs {
            postgres_exec_resource: Some("cronjob/x".into()),
            ..args()
        });
        assert!(msg.contains("BAK_DB_POSTGRES_EXEC_RESOURCE"), "{msg}");
    }

    #[test]
    fn names_are_checked() {
        let msg = err_of(&CreateArgs {
            namespace: Some("Bad_NS".into()),
            ..args()
        });
        assert!(msg.contains("BAK_NAMESPACE"), "{msg}");
        let long = "a".repeat(64);
        let msg = err_of(&CreateArgs {
            label_pod: Some(long.clone()),
            ..args()
        });
        assert!(msg.contains("BAK_LABEL_VS_POD"), "{msg}");
        let msg = err_of(&CreateArgs {
            pvc: Some(long),
            ..args()
        });
        assert!(msg.contains("BAK_PVC_NAME"), "{msg}");
        let msg = err_of(&CreateArgs {
            postgres_dump_file: Some("relative/dump.sql.gz".into()),
            ..args()
        });
        assert!(msg.contains("BAK_DB_POSTGRES_DUMP_FILE"), "{msg}");
    }

    #[test]
    fn skip_and_database_contradict() {
        let msg = err_of(&CreateArgs {
            db_skip: Some("true".into()),
            ..args()
        });
        assert!(
            msg.contains("BAK_DB_SKIP") && msg.contains("BAK_DB_POSTGRES"),
            "{msg}"
        );
        let msg = err_of(&CreateArgs::default());
        assert!(msg.contains("no database selected"), "{msg}");
        let s = Settings::from_args(
            &CreateArgs {
                db_skip: Some("true".into()),
                ..Default::default()
            },
            None,
            4,
        )
        .unwrap();
        assert!(s.databases.is_empty());
    }

    #[test]
    fn both_engines_can_be_dumped() {
        let a = CreateArgs {
            mysql: Some("true".into()),
            ..args()
        };
        let s = Settings::from_args(&a, None, 4).unwrap();
        assert_eq!(s.databases.len(), 2);
    }

    #[test]
    fn time_zone_resolution() {
        assert_eq!(
            resolve_tz(None, Some("Europe/Vienna")).unwrap().0,
            chrono_tz::Europe::Vienna
        );
        assert_eq!(
            resolve_tz(None, Some(":Europe/Vienna")).unwrap().0,
            chrono_tz::Europe::Vienna
        );
        assert_eq!(
            resolve_tz(Some("America/New_York"), Some("Europe/Vienna"))
                .unwrap()
                .1,
            "BAK_TZ"
        );
        assert_eq!(resolve_tz(None, None).unwrap().0, Tz::UTC);
        let e = resolve_tz(None, Some("CET-1CEST")).unwrap_err().to_string();
        assert!(e.contains("TZ") && e.contains("CET-1CEST"), "{e}");
        let e = resolve_tz(Some("Mars/Olympus"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("BAK_TZ"), "{e}");
    }

    #[test]
    fn env_redacts_literal_passwords_but_shows_references() {
        let a = CreateArgs {
            postgres_password: Some("s3cret".into()),
            ..args()
        };
        let s = Settings::from_args(&a, None, 4).unwrap();
        let shown: std::collections::HashMap<_, _> = s.described.iter().cloned().collect();
        assert_eq!(shown["BAK_DB_POSTGRES_PASSWORD"], "<redacted>");
        assert_eq!(shown["BAK_DB_POSTGRES_USER"], "${POSTGRES_USER}");
        assert!(!format!("{:?}", s.described).contains("s3cret"));
    }

    #[test]
    fn notify_defaults_to_nothing() {
        let s = Settings::from_args(&args(), None, 4).unwrap();
        assert!(s.notify.is_empty());
        assert_eq!(s.notify.on, NotifyOn::Failure);
        assert_eq!(s.notify.format, NotifyFormat::Json);
        assert_eq!(s.notify.timeout, Duration::from_secs(10));
    }

    #[test]
    fn notify_urls_are_a_list_and_shown_redacted() {
        let a = CreateArgs {
            notify_url: vec![
                "https://hooks.slack.com/services/T0/B0/s3cr3t".into(),
                " http://alerts.local:8080/hook?token=s3cr3t ".into(),
                "".into(),
            ],
            healthcheck_url: Some("https://hc-ping.com/s3cr3t-uuid".into()),
            notify_on: Some("always".into()),
            notify_format: Some("slack".into()),
            notify_timeout: Some("3s".into()),
            ..args()
        };
        let s = Settings::from_args(&a, None, 4).unwrap();
        assert_eq!(s.notify.urls.len(), 2);
        assert_eq!(
            s.notify.urls[1].uri().to_string(),
            "http://alerts.local:8080/hook?token=s3cr3t"
        );
        assert_eq!(s.notify.on, NotifyOn::Always);
        assert_eq!(s.notify.format, NotifyFormat::Slack);
        assert_eq!(s.notify.timeout, Duration::from_secs(3));
        let shown: std::collections::HashMap<_, _> = s.described.iter().cloned().collect();
        assert_eq!(
            shown["BAK_NOTIFY_URL"],
            "https://hooks.slack.com/…,http://alerts.local:8080/…"
        );
        assert_eq!(shown["BAK_HEALTHCHECK_URL"], "https://hc-ping.com/…");
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

    #[test]
    fn invalid_notify_settings_name_the_variable_but_not_the_url() {
        for (a, var) in [
            (
                CreateArgs {
                    notify_url: vec![
                        "https://ok.example/x".into(),
                        "ftp://files.example/s3cr3t".into(),
                    ],
                    ..args()
                },
                "BAK_NOTIFY_URL (--notify-url)",
            ),
            (
                CreateArgs {
                    notify_url: vec!["hooks.example/s3cr3t".into()],
                    ..args()
                },
                "BAK_NOTIFY_URL (--notify-url)",
            ),
            (
                CreateArgs {
                    healthcheck_url: Some("https://user:s3cr3t@hc.example/x".into()),
                    ..args()
                },
                "BAK_HEALTHCHECK_URL (--healthcheck-url)",
            ),
        ] {
            let msg = err_of(&a);
            assert!(msg.contains(var), "{msg}");
            assert!(!msg.contains("s3cr3t") && !msg.contains("example"), "{msg}");
        }
        let msg = err_of(&CreateArgs {
            notify_url: vec!["https://ok.example/x".into(), "nope".into()],
            ..args()
        });
        assert!(msg.contains("URL 2 of 2"), "{msg}");
        for (a, var, value) in [
            (
                CreateArgs {
                    notify_on: Some("success".into()),
                    ..args()
                },
                "BAK_NOTIFY_ON",
                "success",
            ),
            (
                CreateArgs {
                    notify_format: Some("teams".into()),
                    ..args()
                },
                "BAK_NOTIFY_FORMAT",
                "teams",
            ),
            (
                CreateArgs {
                    notify_timeout: Some("10".into()),
                    ..args()
                },
                "BAK_NOTIFY_TIMEOUT",
                "10",
            ),
            (
                CreateArgs {
                    notify_timeout: Some("0s".into()),
                    ..args()
                },
                "BAK_NOTIFY_TIMEOUT",
                "0s",
            ),
            (
                CreateArgs {
                    notify_timeout: Some("1h".into()),
                    ..args()
                },
                "BAK_NOTIFY_TIMEOUT",
                "1h",
            ),
        ] {
            let msg = err_of(&a);
            assert!(
                msg.contains(var) && msg.contains(&format!("{value:?}")),
                "{msg}"
            );
        }
    }

    #[test]
    fn flock_settings() {
        let a = CreateArgs {
            flock: Some("true".into()),
            ..args()
        };
        let s = Settings::from_args(&a, None, 8).unwrap();
        let f = s.flock.unwrap();
        assert_eq!(f.count, 4);
        assert_eq!(f.dir, PathBuf::from("/mnt/host-backup-locks"));
        assert_eq!(f.timeout, Duration::from_secs(3600));
        let s = Settings::from_args(
            &CreateArgs {
                flock: Some("true".into()),
                ..args()
            },
            None,
            1,
        )
        .unwrap();
        assert_eq!(s.flock.unwrap().count, 1);
    }
}
