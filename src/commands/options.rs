//! Validated options of the lifecycle commands (`retain`, `mark-and-delete`, `list`, `delete`,
//! `sync-labels`), checked strictly before any request like `create`'s settings: the first
//! invalid value stops the run with exit code 2 and an error naming the variable, its flag and
//! the value (the original silently fell back to defaults). Pure: the `TZ` value is passed in.

use chrono_tz::Tz;

use crate::cli::{
    ApiArgs, DeleteArgs, ListArgs, MarkAndDeleteArgs, PruneArgs, RebindArgs, RetainArgs, ScopeArgs,
    StatusArgs, SyncLabelsArgs,
};
use crate::labels;
use crate::retention::{
    Policy, DEFAULT_KEEP_DAILY, DEFAULT_KEEP_MONTHLY, DEFAULT_KEEP_WEEKLY, DEFAULT_MAX_DELETIONS,
};
use crate::settings::{resolve_tz, Raw};
use crate::Result;

use super::api::DEFAULT_QPS;

/// Requests per second of the rate limit.
fn qps(a: &ApiArgs) -> Result<f64> {
    let raw = Raw::opt("BAK_API_QPS", &a.qps);
    let Some(v) = raw.get()? else {
        return Ok(DEFAULT_QPS);
    };
    match v.trim().parse::<f64>() {
        Ok(q) if (0.1..=1_000_000.0).contains(&q) => Ok(q),
        _ => Err(raw.err(
            v,
            "expected requests per second from 0.1 to 1000000, e.g. 20",
        )),
    }
}

/// The namespace to work in; `None`: all namespaces.
fn scope(a: &ScopeArgs) -> Result<Option<String>> {
    let all = Raw::opt("BAK_ALL_NAMESPACES", &a.all_namespaces).bool()?;
    let namespace = Raw::opt("BAK_NAMESPACE", &a.namespace).namespace()?;
    Ok(if all { None } else { namespace })
}

fn dry_run(value: &Option<String>) -> Result<bool> {
    Raw::opt("BAK_DRY_RUN", value).bool()
}

/// The brake of `retain`, `mark-and-delete` and `prune`.
fn max_deletions(value: &Option<String>) -> Result<usize> {
    Raw::opt("BAK_MAX_DELETIONS", value).count_or(DEFAULT_MAX_DELETIONS, 10_000_000)
}

/// The time zone of dates, from `--tz`/`BAK_TZ`, else `TZ`, else UTC.
fn tz(value: &Option<String>, tz_env: Option<&str>) -> Result<Tz> {
    Ok(resolve_tz(value.as_deref(), tz_env)?.0)
}

/// The snapshot argument of `restore pvc`, `restore dump`, `download` and `verify`: a name,
/// `latest` or `--before TIME` (both with `--pvc`, returned as the second value).
pub fn snapshot_choice(
    snapshot: Option<&str>,
    pvc: &Option<String>,
    before: &Option<String>,
    tz_value: &Option<String>,
    tz_env: Option<&str>,
) -> Result<(super::restore::SnapshotChoice, Option<String>)> {
    use super::restore::SnapshotChoice;
    use crate::Error;
    let pvc_raw = Raw::opt("BAK_PVC_NAME", pvc);
    let source_pvc = pvc_raw.get()?.map(str::to_owned);
    if let Some(s) = &source_pvc {
        labels::validate_label_value(&pvc_raw.name(), s)?;
    }
    let before_raw = Raw::opt("BAK_RESTORE_BEFORE", before);
    let before = match before_raw.get()? {
        None => None,
        Some(v) => {
            let tz = tz(tz_value, tz_env)?;
            Some(super::restore::parse_before(v, tz).map_err(|reason| before_raw.err(v, reason))?)
        }
    };
    let choice =
        match (snapshot, before) {
            (Some(s), Some(_)) => {
                return Err(Error::config(
                    "SNAPSHOT",
                    s,
                    "give a snapshot name, `latest` or --before (BAK_RESTORE_BEFORE), not both",
                ))
            }
            (None, None) => return Err(Error::config(
                "SNAPSHOT",
                "",
                "required: a VolumeSnapshot name, `latest` (with --pvc) or --before TIME (with \
                 --pvc)",
            )),
            (None, Some(t)) => SnapshotChoice::Before(t),
            (Some(super::restore::LATEST), None) => SnapshotChoice::Latest,
            (Some(s), None) => {
                labels::validate_dns1123_subdomain("SNAPSHOT", s)?;
                SnapshotChoice::Name(s.to_owned())
            }
        };
    if !matches!(choice, SnapshotChoice::Name(_)) && source_pvc.is_none() {
        let what = if matches!(choice, SnapshotChoice::Latest) {
            "latest"
        } else {
            "--before"
        };
        return Err(pvc_raw.err(
            "",
            format!("required with {what}: the PVC whose snapshots to choose from"),
        ));
    }
    Ok((choice, source_pvc))
}

/// Options of `retain`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetainOptions {
    /// `None`: all namespaces.
    pub namespace: Option<String>,
    pub qps: f64,
    pub dry_run: bool,
    pub policy: Policy,
    pub tz: Tz,
}

impl RetainOptions {
    pub fn from_args(a: &RetainArgs, tz_env: Option<&str>) -> Result<RetainOptions> {
        const MAX: usize = 10_000;
        let policy = Policy {
            keep_daily: Raw::opt("RETAIN_LAST_DAILY", &a.retain_last_daily)
                .count_or(DEFAULT_KEEP_DAILY, MAX)?,
            keep_weekly: Raw::opt("RETAIN_LAST_WEEKLY", &a.retain_last_weekly)
                .count_or(DEFAULT_KEEP_WEEKLY, MAX)?,
            keep_monthly: Raw::opt("RETAIN_LAST_MONTHLY", &a.retain_last_monthly)
                .count_or(DEFAULT_KEEP_MONTHLY, MAX)?,
            max_deletions: max_deletions(&a.max_deletions)?,
            ..Policy::default()
        };
        Ok(RetainOptions {
            namespace: scope(&a.scope)?,
            qps: qps(&a.api)?,
            dry_run: dry_run(&a.dry_run)?,
            policy,
            tz: tz(&a.tz, tz_env)?,
        })
    }
}

/// Options of `mark-and-delete`.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepOptions {
    /// `None`: all namespaces.
    pub namespace: Option<String>,
    pub qps: f64,
    pub dry_run: bool,
    pub policy: Policy,
    pub tz: Tz,
}

impl SweepOptions {
    pub fn from_args(a: &MarkAndDeleteArgs, tz_env: Option<&str>) -> Result<SweepOptions> {
        let policy = Policy {
            max_deletions: max_deletions(&a.max_deletions)?,
            allow_deleting_last_ready: Raw::opt(
                "BAK_ALLOW_DELETING_LAST_READY",
                &a.allow_deleting_last_ready,
            )
            .bool()?,
            ..Policy::default()
        };
        Ok(SweepOptions {
            namespace: scope(&a.scope)?,
            qps: qps(&a.api)?,
            dry_run: dry_run(&a.dry_run)?,
            policy,
            tz: tz(&a.tz, tz_env)?,
        })
    }
}

impl RetainOptions {
    /// Options of `prune`: `retain`'s, with the sweep's `--allow-deleting-last-ready`.
    pub fn for_prune(a: &PruneArgs, tz_env: Option<&str>) -> Result<RetainOptions> {
        let mut o = RetainOptions::from_args(&a.retain, tz_env)?;
        o.policy.allow_deleting_last_ready = Raw::opt(
            "BAK_ALLOW_DELETING_LAST_READY",
            &a.allow_deleting_last_ready,
        )
        .bool()?;
        Ok(o)
    }
}

/// A period class `list` filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassFilter {
    Daily,
    Weekly,
    Monthly,
}

impl ClassFilter {
    pub fn label(self) -> &'static str {
        match self {
            ClassFilter::Daily => labels::DAILY,
            ClassFilter::Weekly => labels::WEEKLY,
            ClassFilter::Monthly => labels::MONTHLY,
        }
    }
}

/// Options of `list`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListOptions {
    /// `true`: every namespace; else `namespace`, or the kube context's when `None`.
    pub all_namespaces: bool,
    pub namespace: Option<String>,
    pub pvc: Option<String>,
    /// Snapshots carrying any of these labels (empty: no filter).
    pub classes: Vec<ClassFilter>,
    /// `type` values to show (empty: all).
    pub types: Vec<&'static str>,
    pub qps: f64,
    pub tz: Tz,
}

impl ListOptions {
    pub fn from_args(a: &ListArgs, tz_env: Option<&str>) -> Result<ListOptions> {
        let pvc_raw = Raw::opt("BAK_PVC_NAME", &a.pvc);
        let pvc = pvc_raw.get()?.map(str::to_owned);
        if let Some(p) = &pvc {
            labels::validate_label_value(&pvc_raw.name(), p)?;
        }
        // Flags and defaults come from the options table.
        let flag = |var, value| Raw::opt(var, value).bool();
        let mut classes = Vec::new();
        for (var, value, class) in [
            ("BAK_LIST_DAILY", &a.daily, ClassFilter::Daily),
            ("BAK_LIST_WEEKLY", &a.weekly, ClassFilter::Weekly),
            ("BAK_LIST_MONTHLY", &a.monthly, ClassFilter::Monthly),
        ] {
            if flag(var, value)? {
                classes.push(class);
            }
        }
        let mut types = Vec::new();
        for (var, value, vs_type) in [
            ("BAK_LIST_ADHOC", &a.adhoc, "adhoc"),
            ("BAK_LIST_CRONJOB", &a.cronjob, "cronjob"),
        ] {
            if flag(var, value)? {
                types.push(vs_type);
            }
        }
        Ok(ListOptions {
            all_namespaces: Raw::opt("BAK_ALL_NAMESPACES", &a.all_namespaces).bool()?,
            namespace: Raw::opt("BAK_NAMESPACE", &a.namespace).namespace()?,
            pvc,
            classes,
            types,
            qps: qps(&a.api)?,
            tz: tz(&a.tz, tz_env)?,
        })
    }

    /// The label selector of the LIST: every backup-ns snapshot (by its `pvc` label, so those
    /// whose `retain` label was removed are listed too), narrowed by PVC and type server-side.
    /// Class filters combine with "or", which a selector cannot say; they apply client-side.
    pub fn selector(&self) -> String {
        let mut parts = vec![match &self.pvc {
            Some(p) => format!("{}={p}", labels::PVC),
            None => labels::PVC.to_owned(),
        }];
        match self.types.as_slice() {
            [] => {}
            [one] => parts.push(format!("{}={one}", labels::TYPE)),
            many => parts.push(format!("{} in ({})", labels::TYPE, many.join(","))),
        }
        parts.join(",")
    }
}

/// `--max-age` when unset (the table's default): a nightly backup plus two hours of slack for
/// a slow dump or a CronJob started late.
pub const DEFAULT_MAX_AGE: &str = "26h";

/// Options of `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusOptions {
    /// `true`: every namespace; else `namespace`, or the kube context's when `None`.
    pub all_namespaces: bool,
    pub namespace: Option<String>,
    pub pvc: Option<String>,
    /// A newest ready backup older than this is stale.
    pub max_age: chrono::Duration,
    pub qps: f64,
}

impl StatusOptions {
    pub fn from_args(a: &StatusArgs) -> Result<StatusOptions> {
        let pvc_raw = Raw::opt("BAK_PVC_NAME", &a.pvc);
        let pvc = pvc_raw.get()?.map(str::to_owned);
        if let Some(p) = &pvc {
            labels::validate_label_value(&pvc_raw.name(), p)?;
        }
        let age_raw = Raw::opt("BAK_STATUS_MAX_AGE", &a.max_age);
        let age = age_raw.duration_or(DEFAULT_MAX_AGE)?;
        let max_age = chrono::Duration::from_std(age)
            .ok()
            .filter(|d| *d > chrono::Duration::zero())
            .ok_or_else(|| {
                age_raw.err(
                    a.max_age.as_deref().unwrap_or(DEFAULT_MAX_AGE),
                    "must be greater than zero, e.g. 26h",
                )
            })?;
        Ok(StatusOptions {
            all_namespaces: Raw::opt("BAK_ALL_NAMESPACES", &a.all_namespaces).bool()?,
            namespace: Raw::opt("BAK_NAMESPACE", &a.namespace).namespace()?,
            pvc,
            max_age,
            qps: qps(&a.api)?,
        })
    }

    /// The label selector of the snapshot LIST: every backup-ns snapshot (by its `pvc` label),
    /// of one PVC with `--pvc`.
    pub fn selector(&self) -> String {
        match &self.pvc {
            Some(p) => format!("{}={p}", labels::PVC),
            None => labels::PVC.to_owned(),
        }
    }
}

/// Options of `delete`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteOptions {
    pub name: String,
    /// `None`: the kube context's namespace.
    pub namespace: Option<String>,
    pub yes: bool,
    pub dry_run: bool,
    pub qps: f64,
}

impl DeleteOptions {
    pub fn from_args(a: &DeleteArgs) -> Result<DeleteOptions> {
        labels::validate_dns1123_subdomain("NAME (the volumesnapshot to delete)", &a.name)?;
        Ok(DeleteOptions {
            name: a.name.clone(),
            namespace: Raw::opt("BAK_NAMESPACE", &a.namespace).namespace()?,
            yes: Raw::opt("BAK_YES", &a.yes).bool()?,
            dry_run: dry_run(&a.dry_run)?,
            qps: qps(&a.api)?,
        })
    }
}

/// Options of `sync-labels`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncOptions {
    /// `None`: all namespaces.
    pub namespace: Option<String>,
    pub dry_run: bool,
    pub qps: f64,
}

impl SyncOptions {
    pub fn from_args(a: &SyncLabelsArgs) -> Result<SyncOptions> {
        Ok(SyncOptions {
            namespace: scope(&a.scope)?,
            dry_run: dry_run(&a.dry_run)?,
            qps: qps(&a.api)?,
        })
    }
}

// --- rebind and `list --orphans` -------------------------------------------------------------

/// `list --orphans`: list contents whose snapshot is gone instead of snapshots.
pub fn list_orphans(a: &ListArgs) -> Result<bool> {
    Raw::opt("BAK_LIST_ORPHANS", &a.orphans).bool()
}

/// `deletionPolicy` of the content `rebind` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionPolicy {
    Retain,
    Delete,
}

impl DeletionPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletionPolicy::Retain => "Retain",
            DeletionPolicy::Delete => "Delete",
        }
    }
}

/// Options of `rebind`.
#[derive(Debug, Clone, PartialEq)]
pub struct RebindOptions {
    pub content: String,
    /// `None`: the kube context's namespace.
    pub namespace: Option<String>,
    /// `None`: the name of the snapshot that is gone.
    pub name: Option<String>,
    pub deletion_policy: DeletionPolicy,
    pub yes: bool,
    pub dry_run: bool,
    pub qps: f64,
}

impl RebindOptions {
    pub fn from_args(a: &RebindArgs) -> Result<RebindOptions> {
        labels::validate_dns1123_subdomain(
            "CONTENT (the volumesnapshotcontent to rebind)",
            &a.content,
        )?;
        let name_raw = Raw::opt("BAK_REBIND_NAME", &a.name);
        let name = name_raw.get()?.map(str::to_owned);
        if let Some(n) = &name {
            labels::validate_dns1123_subdomain(&name_raw.name(), n)?;
        }
        let policy_raw = Raw::opt("BAK_REBIND_DELETION_POLICY", &a.deletion_policy);
        let deletion_policy = match policy_raw.get()? {
            None | Some("Retain") => DeletionPolicy::Retain,
            Some("Delete") => DeletionPolicy::Delete,
            Some(other) => {
                return Err(policy_raw.err(
                    other,
                    "expected Retain or Delete (as in the API, capitalised)",
                ))
            }
        };
        Ok(RebindOptions {
            content: a.content.clone(),
            namespace: Raw::opt("BAK_NAMESPACE", &a.namespace).namespace()?,
            name,
            deletion_policy,
            yes: Raw::opt("BAK_YES", &a.yes).bool()?,
            dry_run: dry_run(&a.dry_run)?,
            qps: qps(&a.api)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn retain_defaults_are_the_originals() {
        let o = RetainOptions::from_args(&RetainArgs::default(), None).unwrap();
        assert_eq!(
            (
                o.policy.keep_daily,
                o.policy.keep_weekly,
                o.policy.keep_monthly
            ),
            (7, 4, 12)
        );
        assert_eq!(
            (o.namespace, o.dry_run, o.qps, o.tz),
            (None, false, 20.0, Tz::UTC)
        );
    }

    #[test]
    fn invalid_values_name_the_variable_and_the_flag() {
        let a = RetainArgs {
            retain_last_daily: some("seven"),
            ..RetainArgs::default()
        };
        let e = RetainOptions::from_args(&a, None).unwrap_err().to_string();
        assert!(
            e.contains("RETAIN_LAST_DAILY (--retain-last-daily)") && e.contains("seven"),
            "{e}"
        );

        let a = MarkAndDeleteArgs {
            max_deletions: some("-1"),
            ..MarkAndDeleteArgs::default()
        };
        let e = SweepOptions::from_args(&a, None).unwrap_err().to_string();
        assert!(e.contains("BAK_MAX_DELETIONS (--max-deletions)"), "{e}");

        let a = MarkAndDeleteArgs {
            allow_deleting_last_ready: some("yes"),
            ..MarkAndDeleteArgs::default()
        };
        let e = SweepOptions::from_args(&a, None).unwrap_err().to_string();
        assert!(e.contains("BAK_ALLOW_DELETING_LAST_READY"), "{e}");

        let mut a = MarkAndDeleteArgs::default();
        a.api.qps = some("0");
        let e = SweepOptions::from_args(&a, None).unwrap_err().to_string();
        assert!(e.contains("BAK_API_QPS (--qps)"), "{e}");

        let mut a = SyncLabelsArgs::default();
        a.scope.namespace = some("Not_A_Namespace");
        let e = SyncOptions::from_args(&a).unwrap_err().to_string();
        assert!(e.contains("BAK_NAMESPACE (--namespace)"), "{e}");

        let a = MarkAndDeleteArgs {
            tz: some("Mars/Olympus"),
            ..MarkAndDeleteArgs::default()
        };
        let e = SweepOptions::from_args(&a, None).unwrap_err().to_string();
        assert!(e.contains("BAK_TZ (--tz)"), "{e}");
    }

    #[test]
    fn sweep_options_and_time_zone_fallback() {
        let a = MarkAndDeleteArgs {
            max_deletions: some("3"),
            allow_deleting_last_ready: some("true"),
            dry_run: some("1"),
            ..MarkAndDeleteArgs::default()
        };
        let o = SweepOptions::from_args(&a, Some("Europe/Vienna")).unwrap();
        assert_eq!(o.policy.max_deletions, 3);
        assert!(o.policy.allow_deleting_last_ready && o.dry_run);
        assert_eq!(o.tz, chrono_tz::Europe::Vienna);
        assert_eq!(
            SweepOptions::from_args(&MarkAndDeleteArgs::default(), None)
                .unwrap()
                .policy
                .max_deletions,
            500
        );
    }

    #[test]
    fn all_namespaces_wins_over_a_namespace() {
        let mut a = SyncLabelsArgs::default();
        a.scope.namespace = some("shop");
        assert_eq!(
            SyncOptions::from_args(&a).unwrap().namespace.as_deref(),
            Some("shop")
        );
        a.scope.all_namespaces = some("true");
        assert_eq!(SyncOptions::from_args(&a).unwrap().namespace, None);
    }

    #[test]
    fn list_selector_narrows_server_side() {
        let mut a = ListArgs::default();
        let o = ListOptions::from_args(&a, None).unwrap();
        assert_eq!(o.selector(), "backup-ns.sh/pvc");
        a.pvc = some("data");
        a.adhoc = some("true");
        a.daily = some("true");
        a.monthly = some("1");
        let o = ListOptions::from_args(&a, None).unwrap();
        assert_eq!(
            o.selector(),
            "backup-ns.sh/pvc=data,backup-ns.sh/type=adhoc"
        );
        assert_eq!(o.classes, [ClassFilter::Daily, ClassFilter::Monthly]);
        a.cronjob = some("true");
        let o = ListOptions::from_args(&a, None).unwrap();
        assert_eq!(
            o.selector(),
            "backup-ns.sh/pvc=data,backup-ns.sh/type in (adhoc,cronjob)"
        );
        a.weekly = some("maybe");
        let e = ListOptions::from_args(&a, None).unwrap_err().to_string();
        assert!(e.contains("BAK_LIST_WEEKLY (--weekly)"), "{e}");
        a.weekly = None;
        a.pvc = some("bad pvc");
        assert!(ListOptions::from_args(&a, None).is_err());
    }

    #[test]
    fn an_empty_variable_is_an_error_not_the_default() {
        // The original's LookupEnv kept "": a typed flag set to it is refused, naming it.
        let a = RetainArgs {
            retain_last_daily: some(""),
            ..RetainArgs::default()
        };
        let e = RetainOptions::from_args(&a, None).unwrap_err().to_string();
        assert!(
            e.contains("RETAIN_LAST_DAILY (--retain-last-daily)") && e.contains("set but empty"),
            "{e}"
        );
        let mut a = SyncLabelsArgs::default();
        a.scope.namespace = some("");
        let e = SyncOptions::from_args(&a).unwrap_err().to_string();
        assert!(e.contains("BAK_NAMESPACE (--namespace)=\"\""), "{e}");
        // BAK_TZ="" still means TZ, then UTC.
        let a = MarkAndDeleteArgs {
            tz: some(""),
            ..MarkAndDeleteArgs::default()
        };
        assert_eq!(
            SweepOptions::from_args(&a, Some("Europe/Vienna"))
                .unwrap()
                .tz,
            chrono_tz::Europe::Vienna
        );
    }

    #[test]
    fn status_max_age_defaults_to_26h_and_refuses_zero_or_no_unit() {
        let o = StatusOptions::from_args(&StatusArgs::default()).unwrap();
        assert_eq!(o.max_age, chrono::Duration::hours(26));
        assert_eq!(o.selector(), "backup-ns.sh/pvc");
        assert!(!o.all_namespaces && o.pvc.is_none());
        let a = StatusArgs {
            max_age: some("90m"),
            pvc: some("data"),
            ..StatusArgs::default()
        };
        let o = StatusOptions::from_args(&a).unwrap();
        assert_eq!(o.max_age, chrono::Duration::minutes(90));
        assert_eq!(o.selector(), "backup-ns.sh/pvc=data");
        for bad in ["0", "26", "yesterday", ""] {
            let a = StatusArgs {
                max_age: some(bad),
                ..StatusArgs::default()
            };
            let e = StatusOptions::from_args(&a).unwrap_err();
            assert!(
                e.to_string().contains("BAK_STATUS_MAX_AGE (--max-age)"),
                "{bad}: {e}"
            );
            assert_eq!(e.exit_status(), crate::ExitStatus::Usage);
        }
    }

    #[test]
    fn delete_needs_a_valid_name() {
        let a = DeleteArgs {
            name: "Bad Name".into(),
            ..DeleteArgs::default()
        };
        assert!(DeleteOptions::from_args(&a).is_err());
        let a = DeleteArgs {
            name: "data-2025-01-08-164308-dcdkes".into(),
            yes: some("true"),
            ..DeleteArgs::default()
        };
        let o = DeleteOptions::from_args(&a).unwrap();
        assert!(o.yes && !o.dry_run);
    }

    #[test]
    fn rebind_options_name_the_input_they_refuse() {
        let a = RebindArgs {
            content: "snapcontent-1".into(),
            ..RebindArgs::default()
        };
        let o = RebindOptions::from_args(&a).unwrap();
        assert_eq!(o.deletion_policy, DeletionPolicy::Retain);
        assert!(!o.yes && !o.dry_run && o.name.is_none());
        for (a, needle) in [
            (
                RebindArgs {
                    content: "Bad_Content".into(),
                    ..RebindArgs::default()
                },
                "CONTENT",
            ),
            (
                RebindArgs {
                    name: some("Not A Name"),
                    ..a.clone()
                },
                "BAK_REBIND_NAME (--name)",
            ),
            (
                RebindArgs {
                    deletion_policy: some("delete"),
                    ..a.clone()
                },
                "BAK_REBIND_DELETION_POLICY (--deletion-policy)",
            ),
            (
                RebindArgs {
                    yes: some("sure"),
                    ..a.clone()
                },
                "BAK_YES (--yes)",
            ),
        ] {
            let e = RebindOptions::from_args(&a).unwrap_err();
            assert!(e.to_string().contains(needle), "{needle}: {e}");
            assert_eq!(e.exit_status(), crate::ExitStatus::Usage);
        }
        let a = RebindArgs {
            deletion_policy: some("Delete"),
            ..a
        };
        assert_eq!(
            RebindOptions::from_args(&a).unwrap().deletion_policy,
            DeletionPolicy::Delete
        );
    }
}

// ---------------------------------------------------------------------------------------------
// restore pvc

/// Options of `restore pvc` (and of the original's `restore SNAPSHOT -p NEW_PVC`).
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreOptions {
    pub choice: super::restore::SnapshotChoice,
    /// `--pvc`: whose snapshots `latest` and `--before` choose from.
    pub source_pvc: Option<String>,
    /// The PVC to create.
    pub to: String,
    /// `None`: the kube context's namespace.
    pub namespace: Option<String>,
    pub overrides: super::restore::Overrides,
    pub wait: bool,
    pub timeout: std::time::Duration,
    pub dry_run: bool,
    pub qps: f64,
}

impl RestoreOptions {
    /// Every argument checked before any request; `tz_env` is `TZ` (for a `--before` date).
    pub fn from_args(a: &crate::cli::RestoreArgs, tz_env: Option<&str>) -> Result<RestoreOptions> {
        use super::restore::SnapshotChoice;
        use crate::cli::RestoreCommand;
        use crate::Error;
        let (choice, source_pvc, to, common) = match &a.command {
            Some(RestoreCommand::Pvc(p)) => {
                let to_raw = Raw::opt("BAK_RESTORE_TO", &p.to);
                let to = to_raw.get()?.ok_or_else(|| {
                    to_raw.err(
                        "",
                        "required: the name of the PVC to create, e.g. --to data-restored",
                    )
                })?;
                labels::validate_dns1123_subdomain(&to_raw.name(), to)?;
                let (choice, source_pvc) =
                    snapshot_choice(p.snapshot.as_deref(), &p.pvc, &p.before, &p.tz, tz_env)?;
                (choice, source_pvc, to.to_owned(), &p.common)
            }
            Some(RestoreCommand::Dump(_)) => {
                return Err(Error::config(
                    "SNAPSHOT",
                    "",
                    "`restore dump` is not a PVC restore",
                ))
            }
            None => {
                let Some(snapshot) = a.snapshot.as_deref() else {
                    return Err(Error::config(
                        "SNAPSHOT",
                        "",
                        "say what to restore: `backup-ns restore pvc SNAPSHOT --to NEW_PVC` \
                         (or the original's `backup-ns restore SNAPSHOT -p NEW_PVC`)",
                    ));
                };
                if snapshot == super::restore::LATEST {
                    return Err(Error::config(
                        "SNAPSHOT",
                        snapshot,
                        "the original's `restore SNAPSHOT -p NEW_PVC` takes a snapshot name; for \
                         the newest one use `restore pvc latest --pvc SNAPSHOTTED_PVC --to NEW_PVC`",
                    ));
                }
                labels::validate_dns1123_subdomain("SNAPSHOT", snapshot)?;
                let to = a.new_pvc.as_deref().ok_or_else(|| {
                    Error::config("-p (--pvc, the new PVC)", "", "required: the PVC to create")
                })?;
                labels::validate_dns1123_subdomain("-p (--pvc, the new PVC)", to)?;
                (
                    SnapshotChoice::Name(snapshot.to_owned()),
                    None,
                    to.to_owned(),
                    &a.common,
                )
            }
        };
        let size_raw = Raw::opt("BAK_RESTORE_SIZE", &common.size);
        let size = match size_raw.get()? {
            None => None,
            Some(v) => Some(
                super::restore::Size::parse(v)
                    .ok_or_else(|| size_raw.err(v, "expected a quantity such as 20Gi or 500M"))?,
            ),
        };
        let class_raw = Raw::opt("BAK_RESTORE_STORAGE_CLASS", &common.storage_class);
        let storage_class = class_raw.get()?.map(str::to_owned);
        if let Some(c) = &storage_class {
            labels::validate_dns1123_subdomain(&class_raw.name(), c)?;
        }
        let modes_raw = Raw::opt("BAK_RESTORE_ACCESS_MODE", &common.access_mode);
        let access_modes = match modes_raw.get()? {
            None => None,
            Some(v) => Some(
                super::restore::parse_access_modes(v).map_err(|reason| modes_raw.err(v, reason))?,
            ),
        };
        let timeout = Raw::opt("BAK_RESTORE_TIMEOUT", &common.timeout).timeout_or("5m")?;
        Ok(RestoreOptions {
            choice,
            source_pvc,
            to,
            namespace: Raw::opt("BAK_NAMESPACE", &common.namespace).namespace()?,
            overrides: super::restore::Overrides {
                storage_class,
                access_modes,
                size,
            },
            wait: Raw::opt("BAK_RESTORE_WAIT", &common.wait).bool()?,
            timeout,
            dry_run: dry_run(&common.dry_run)?,
            qps: qps(&common.api)?,
        })
    }
}
