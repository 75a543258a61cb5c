//! The one table of settings: every `BAK_*` variable (and `RETAIN_LAST_*`), its flag, what kind
//! of value it takes, its default, what an empty value means, the chart value it comes from and
//! one line of documentation.
//!
//! The variables used to be written out by hand in five places (the clap flags, the parsing,
//! `backup-ns env`, the chart's `values.schema.json` and the README) and those drifted apart.
//! Now the parsing takes each setting's flag and default from here ([`super::Raw::of`]), `env`
//! prints in this order, and tests hold the rest to it: every clap argument's `env` has a row
//! and every row an argument; the README's tables are [`readme_create_table`] and
//! [`readme_options_table`]; and the chart schema's rules for the mapped values accept and
//! reject the same sample values as the parser (`schema_tests`).

/// What kind of value a setting takes; the parser and the chart schema's rule follow from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Go's `strconv.ParseBool` set: `true`/`false`, `1`/`0`, `t`/`f`, `T`/`F`, `TRUE`, `True`, ….
    Bool,
    /// A Go-style duration with a unit (`15m`, `1h30m`, `1.5h`, `250ms`); `0` only where
    /// `nonzero` is false.
    Duration { nonzero: bool },
    /// A whole number in `min..=max`.
    Int { min: u64, max: u64 },
    /// A decimal number in `min..=max`.
    Float { min: f64, max: f64 },
    /// One of these words.
    Enum(&'static [&'static str]),
    /// A DNS-1123 label (namespaces, container names): at most 63 of `a-z0-9-`.
    Dns1123Label,
    /// A DNS-1123 subdomain (object names): at most 253, dot-separated labels.
    Dns1123Subdomain,
    /// A PVC name that is also the value of the `pvc` label: a subdomain of at most 63.
    PvcName,
    /// A Kubernetes label value: at most 63 of `A-Za-z0-9-_.`, alphanumeric ends, or empty.
    LabelValue,
    /// The snapshot name's random part: `a-z0-9`.
    Rand,
    /// `BAK_VS_NAME_TEMPLATE`.
    Template,
    /// `[TYPE/]NAME` as `kubectl exec` takes it (see [`super::EXEC_KINDS`]).
    ExecResource,
    /// An absolute file path (not ending in `/`) without newline or NUL.
    AbsPath,
    /// A local file path, relative or absolute, or `-` for stdout.
    LocalPath,
    /// A host name or IP address.
    Host,
    /// `${NAME}`/`$NAME` (the container's environment) or a literal without newline or NUL.
    ValueRef,
    /// A MySQL character set name: `A-Za-z0-9_`.
    Charset,
    /// An IANA time zone name.
    TimeZone,
    /// An `http://` or `https://` URL with a host.
    Url,
}

/// A setting's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// This value, parsed like one that was set.
    Value(&'static str),
    /// Decided at run time (documentation text).
    Computed(&'static str),
    /// No default: the value must be given.
    Required,
}

/// What a variable that is set but empty means.
///
/// The original (Go) read every variable with `os.LookupEnv`: a variable set to the empty
/// string is set. Its string settings took the empty string as the value; its bool and int
/// parsers rejected it and silently fell back to the default. We keep the first and turn the
/// second into an error, like every other invalid value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Empty {
    /// An error naming the variable (`is set but empty`).
    Invalid,
    /// The same as unset, because that is what the original made of it (e.g. an empty
    /// `BAK_VS_CLASS_NAME` is the cluster's default class, an empty `BAK_LABEL_VS_POD` no
    /// `pod` label).
    Default,
    /// The empty string is the value (an empty password, an empty `type` label).
    Value,
}

/// A chart value a setting is rendered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartValue {
    /// Path in `values.yaml`; `[]` stands for any item of a list (`backups[].pvc`).
    pub path: &'static str,
    /// The template renders the variable only when the value is non-empty (`{{- with … }}`),
    /// so an empty value means the setting's default rather than an empty variable.
    pub empty_is_default: bool,
}

/// Which command line a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `create` and `env` (the original's `BAK_*` contract; `env` prints these).
    Create,
    /// Flags of every command.
    Global,
    /// The lifecycle commands named in [`SettingSpec::commands`].
    Commands,
}

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SettingSpec {
    pub var: &'static str,
    /// The long flag without `--`.
    pub long: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    pub default: DefaultValue,
    pub empty: Empty,
    /// Never shown by `env`, never in the `env-config` annotation.
    pub secret: bool,
    /// One line for the README and `--help`.
    pub doc: &'static str,
    pub scope: Scope,
    /// For [`Scope::Commands`]: the subcommands that take it.
    pub commands: &'static [&'static str],
    /// The chart values rendered into this variable.
    pub chart: &'static [ChartValue],
    /// May be set through the chart's `config` and `backups[].env` maps.
    pub chart_config: bool,
}

impl SettingSpec {
    /// `--pvc`: how errors name the flag.
    pub fn flag(&self) -> String {
        format!("--{}", self.long)
    }

    /// `-n, --namespace`: how the README lists the flag.
    pub fn flags_doc(&self) -> String {
        match self.short {
            Some(c) => format!("`-{c}`, `--{}`", self.long),
            None => format!("`--{}`", self.long),
        }
    }
}

const fn row(
    var: &'static str,
    long: &'static str,
    kind: Kind,
    default: DefaultValue,
) -> SettingSpec {
    SettingSpec {
        var,
        long,
        short: None,
        kind,
        default,
        empty: Empty::Invalid,
        secret: false,
        doc: "",
        scope: Scope::Create,
        commands: &[],
        chart: &[],
        chart_config: true,
    }
}

impl SettingSpec {
    const fn doc(mut self, doc: &'static str) -> Self {
        self.doc = doc;
        self
    }
    const fn short(mut self, c: char) -> Self {
        self.short = Some(c);
        self
    }
    const fn empty(mut self, empty: Empty) -> Self {
        self.empty = empty;
        self
    }
    const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
    const fn chart(mut self, chart: &'static [ChartValue]) -> Self {
        self.chart = chart;
        self
    }
    /// Set by the chart's templates themselves (or a secret), so not in `config`/`env`.
    const fn not_in_config(mut self) -> Self {
        self.chart_config = false;
        self
    }
    const fn global(mut self) -> Self {
        self.scope = Scope::Global;
        self
    }
    const fn commands(mut self, commands: &'static [&'static str]) -> Self {
        self.scope = Scope::Commands;
        self.commands = commands;
        self.chart_config = false;
        self
    }
}

const fn with(path: &'static str) -> ChartValue {
    ChartValue {
        path,
        empty_is_default: true,
    }
}

const fn always(path: &'static str) -> ChartValue {
    ChartValue {
        path,
        empty_is_default: false,
    }
}

use DefaultValue::{Computed, Required, Value};

const BOOL: Kind = Kind::Bool;
const PORT: Kind = Kind::Int { min: 1, max: 65535 };
const TIMEOUT: Kind = Kind::Duration { nonzero: false };

/// `create`'s settings (also `env`'s), then the global flags, in the order `env` prints them
/// and the README lists them.
pub const SETTINGS: &[SettingSpec] = &[
    row("BAK_DRY_RUN", "dry-run", BOOL, Value("false"))
        .doc("reads and in-pod checks only; prints the VolumeSnapshot"),
    row(
        "BAK_NAMESPACE",
        "namespace",
        Kind::Dns1123Label,
        Computed("kube context's namespace"),
    )
    .short('n')
    .not_in_config()
    .doc("target namespace"),
    row("BAK_PVC_NAME", "pvc", Kind::PvcName, Value("data"))
        .chart(&[always("backups[].pvc")])
        .not_in_config()
        .doc("PVC to snapshot (also the `pvc` label: at most 63 characters)"),
    row(
        "BAK_VS_RAND",
        "vs-rand",
        Kind::Rand,
        Computed("6 random lowercase letters"),
    )
    .doc("name suffix"),
    row(
        "BAK_LABEL_VS_TYPE",
        "type",
        Kind::LabelValue,
        Value("adhoc"),
    )
    .empty(Empty::Value)
    .not_in_config()
    .doc("`type` label: `adhoc`, `cronjob` or any label value (informational)"),
    row(
        "BAK_LABEL_VS_POD",
        "pod-label",
        Kind::LabelValue,
        Computed("empty"),
    )
    .empty(Empty::Default)
    .not_in_config()
    .doc("`pod` label (empty: none)"),
    row(
        "BAK_LABEL_VS_RETAIN",
        "retain",
        Kind::Enum(&["days", "daily_weekly_monthly"]),
        Value("days"),
    )
    .chart(&[with("backups[].retain")])
    .doc("`days` or `daily_weekly_monthly`"),
    row(
        "BAK_LABEL_VS_RETAIN_DAYS",
        "retain-days",
        Kind::Int { min: 1, max: 36500 },
        Value("30"),
    )
    .chart(&[with("backups[].retainDays")])
    .doc("days to keep with `retain=days`"),
    row(
        "BAK_VS_NAME_TEMPLATE",
        "name-template",
        Kind::Template,
        Value(crate::naming::DEFAULT_TEMPLATE),
    )
    .doc("also `.namespace`, `.date`; result ≤ 253, DNS-1123"),
    row(
        "BAK_VS_CLASS_NAME",
        "class",
        Kind::Dns1123Subdomain,
        Computed("cluster default"),
    )
    .empty(Empty::Default)
    .chart(&[with("backups[].vsClassName")])
    .doc("VolumeSnapshotClass (empty: the cluster's default)"),
    row("BAK_VS_WAIT_UNTIL_READY", "wait", BOOL, Value("true")).doc("wait for `readyToUse`"),
    row(
        "BAK_VS_WAIT_UNTIL_READY_TIMEOUT",
        "wait-timeout",
        TIMEOUT,
        Value("15m"),
    )
    .doc("one deadline for the wait"),
    row(
        "BAK_THRESHOLD_SPACE_USED_PERCENTAGE",
        "threshold-space-used-percentage",
        Kind::Int { min: 1, max: 100 },
        Value("90"),
    )
    .doc("fail if used % ≥ this"),
    row(
        "BAK_DB_DUMP_TIMEOUT",
        "dump-timeout",
        Kind::Duration { nonzero: true },
        Value("3h"),
    )
    .chart(&[with("backups[].dumpTimeout")])
    .doc("upper bound of one dump"),
    row("BAK_DB_SKIP", "db-skip", BOOL, Value("false"))
        .not_in_config()
        .doc("volume-only snapshot (an error together with a database flag)"),
    row("BAK_DB_POSTGRES", "postgres", BOOL, Value("false"))
        .not_in_config()
        .doc("dump PostgreSQL"),
    row("BAK_DB_MYSQL", "mysql", BOOL, Value("false"))
        .not_in_config()
        .doc("dump MySQL/MariaDB"),
    row(
        "BAK_DB_POSTGRES_EXEC_RESOURCE",
        "postgres-exec-resource",
        Kind::ExecResource,
        Value("deployment/app-base"),
    )
    .chart(&[with("backups[].execResource")])
    .not_in_config()
    .doc("where to exec: `[TYPE/]NAME` as `kubectl exec` takes it"),
    row(
        "BAK_DB_POSTGRES_EXEC_CONTAINER",
        "postgres-exec-container",
        Kind::Dns1123Label,
        Value("postgres"),
    )
    .chart(&[with("backups[].container")])
    .not_in_config()
    .doc("container"),
    row(
        "BAK_DB_POSTGRES_DUMP_FILE",
        "postgres-dump-file",
        Kind::AbsPath,
        Value("/var/lib/postgresql/data/dump.sql.gz"),
    )
    .chart(&[with("backups[].dumpFile")])
    .doc("absolute path in the container"),
    row(
        "BAK_DB_POSTGRES_HOST",
        "postgres-host",
        Kind::Host,
        Value("127.0.0.1"),
    )
    .chart(&[with("backups[].host")])
    .doc("as seen from the container"),
    row("BAK_DB_POSTGRES_PORT", "postgres-port", PORT, Value("5432"))
        .chart(&[with("backups[].port")])
        .doc("TCP port"),
    row(
        "BAK_DB_POSTGRES_USER",
        "postgres-user",
        Kind::ValueRef,
        Value("${POSTGRES_USER}"),
    )
    .empty(Empty::Value)
    .chart(&[with("backups[].user")])
    .doc("expanded in the container"),
    row(
        "BAK_DB_POSTGRES_PASSWORD",
        "postgres-password",
        Kind::ValueRef,
        Value("${POSTGRES_PASSWORD}"),
    )
    .empty(Empty::Value)
    .secret()
    .chart(&[with("backups[].password")])
    .not_in_config()
    .doc("expanded in the container; sent on stdin"),
    row(
        "BAK_DB_POSTGRES_DB",
        "postgres-db",
        Kind::ValueRef,
        Value("${POSTGRES_DB}"),
    )
    .empty(Empty::Value)
    .chart(&[with("backups[].database")])
    .doc("expanded in the container"),
    row(
        "BAK_DB_MYSQL_EXEC_RESOURCE",
        "mysql-exec-resource",
        Kind::ExecResource,
        Value("deployment/app-base"),
    )
    .chart(&[with("backups[].execResource")])
    .not_in_config()
    .doc("where to exec: `[TYPE/]NAME` as `kubectl exec` takes it"),
    row(
        "BAK_DB_MYSQL_EXEC_CONTAINER",
        "mysql-exec-container",
        Kind::Dns1123Label,
        Value("mysql"),
    )
    .chart(&[with("backups[].container")])
    .not_in_config()
    .doc("container"),
    row(
        "BAK_DB_MYSQL_DUMP_FILE",
        "mysql-dump-file",
        Kind::AbsPath,
        Value("/var/lib/mysql/dump.sql.gz"),
    )
    .chart(&[with("backups[].dumpFile")])
    .doc("absolute path in the container"),
    row(
        "BAK_DB_MYSQL_HOST",
        "mysql-host",
        Kind::Host,
        Value("127.0.0.1"),
    )
    .chart(&[with("backups[].host")])
    .doc("as seen from the container"),
    row("BAK_DB_MYSQL_PORT", "mysql-port", PORT, Value("3306"))
        .chart(&[with("backups[].port")])
        .doc("TCP port"),
    row(
        "BAK_DB_MYSQL_USER",
        "mysql-user",
        Kind::ValueRef,
        Value("root"),
    )
    .empty(Empty::Value)
    .chart(&[with("backups[].user")])
    .doc("expanded in the container if `${…}`"),
    row(
        "BAK_DB_MYSQL_PASSWORD",
        "mysql-password",
        Kind::ValueRef,
        Value("${MYSQL_ROOT_PASSWORD}"),
    )
    .empty(Empty::Value)
    .secret()
    .chart(&[with("backups[].password")])
    .not_in_config()
    .doc("expanded in the container; sent on stdin"),
    row(
        "BAK_DB_MYSQL_DB",
        "mysql-db",
        Kind::ValueRef,
        Value("${MYSQL_DATABASE}"),
    )
    .empty(Empty::Value)
    .chart(&[with("backups[].database")])
    .doc("expanded in the container"),
    row(
        "BAK_DB_MYSQL_DEFAULT_CHARACTER_SET",
        "mysql-default-character-set",
        Kind::Charset,
        Value("utf8mb4"),
    )
    .chart(&[with("backups[].defaultCharacterSet")])
    .doc("the original's `utf8` turns emoji into `?`"),
    row("BAK_FLOCK", "flock", BOOL, Value("false"))
        .not_in_config()
        .doc("take a node lock slot (chart: `flock.enabled`, default `true`)"),
    row(
        "BAK_FLOCK_COUNT",
        "flock-count",
        Kind::Int { min: 1, max: 1024 },
        Computed("node CPUs / 2, at least 1"),
    )
    .chart(&[with("flock.count")])
    .not_in_config()
    .doc("slots per node (all of the node's CPUs count, not the pod's CPU limit)"),
    row(
        "BAK_FLOCK_DIR",
        "flock-dir",
        Kind::AbsPath,
        Value("/mnt/host-backup-locks"),
    )
    .not_in_config()
    .doc("hostPath mount"),
    row(
        "BAK_FLOCK_TIMEOUT_SEC",
        "flock-timeout-sec",
        Kind::Int {
            min: 0,
            max: 7 * 86400,
        },
        Value("3600"),
    )
    .chart(&[always("flock.timeoutSec")])
    .not_in_config()
    .doc("seconds to wait for a slot"),
    row("BAK_LEASE_WAIT", "lease-wait", BOOL, Value("false"))
        .doc("wait for another run's per-PVC Lease instead of failing"),
    row(
        "BAK_LEASE_WAIT_TIMEOUT",
        "lease-wait-timeout",
        TIMEOUT,
        Value("1h"),
    )
    .doc("how long `BAK_LEASE_WAIT=true` waits"),
    row(
        "BAK_LEASE_DURATION",
        "lease-duration",
        TIMEOUT,
        Value("60s"),
    )
    .doc("Lease expiry (at least `3s`); renewed at a third of it"),
    row("BAK_TZ", "tz", Kind::TimeZone, Computed("`TZ`, else UTC"))
        .empty(Empty::Default)
        .doc("IANA time zone of the name and every date label (empty: `TZ`)"),
    // Notifications (`crate::notify`). The URLs carry tokens (webhook paths, ping UUIDs), so
    // they are secrets: redacted by `env`, never in the `env-config` annotation, logs or
    // Events. Not in the chart's `config` maps: a URL belongs in a Secret.
    row("BAK_NOTIFY_URL", "notify-url", Kind::Url, Computed("none"))
        .empty(Empty::Default)
        .secret()
        .not_in_config()
        .doc("webhook to notify after a run (repeat the flag, or separate with commas)"),
    row(
        "BAK_NOTIFY_ON",
        "notify-on",
        Kind::Enum(&["failure", "always"]),
        Value("failure"),
    )
    .not_in_config()
    .doc("`failure`: only failed runs; `always`: every run"),
    row(
        "BAK_NOTIFY_FORMAT",
        "notify-format",
        Kind::Enum(&["json", "slack"]),
        Value("json"),
    )
    .not_in_config()
    .doc("`json` (the run as JSON) or `slack` (a Slack-compatible message)"),
    row(
        "BAK_HEALTHCHECK_URL",
        "healthcheck-url",
        Kind::Url,
        Computed("none"),
    )
    .empty(Empty::Default)
    .secret()
    .not_in_config()
    .doc("healthchecks.io-style ping URL: `/start`, then the URL itself or `/fail`"),
    row(
        "BAK_NOTIFY_TIMEOUT",
        "notify-timeout",
        Kind::Duration { nonzero: true },
        Value("10s"),
    )
    .not_in_config()
    .doc("per-request timeout of notifications and pings (3 attempts at most)"),
    row(
        "BAK_LOG_FORMAT",
        "log-format",
        Kind::Enum(&["text", "json"]),
        Value("text"),
    )
    .global()
    .chart(&[always("logFormat")])
    .not_in_config()
    .doc("`text` or `json`"),
    row(
        "BAK_OUTPUT",
        "output",
        Kind::Enum(&["text", "json", "wide", "yaml"]),
        Value("text"),
    )
    .global()
    .short('o')
    .doc("`text` or `json` (`list`, `status`: also `wide`, `yaml`; `status`: also `prometheus`)"),
    row(
        "BAK_METRICS_PUSHGATEWAY",
        "metrics-pushgateway",
        Kind::Url,
        Computed("none"),
    )
    .global()
    .empty(Empty::Default)
    .secret()
    .not_in_config()
    .doc(
        "push the run's metrics to this Pushgateway (`http(s)://[user:password@]host:port`; \
         never logged; chart: `metrics.pushgateway`)",
    ),
    row(
        "BAK_METRICS_TEXTFILE",
        "metrics-textfile",
        Kind::AbsPath,
        Computed("none"),
    )
    .global()
    .empty(Empty::Default)
    .not_in_config()
    .doc(
        "write the run's metrics atomically to this `*.prom` file for node-exporter's textfile \
         collector (chart: `metrics.textfile`)",
    ),
    row(
        "BAK_METRICS_TIMEOUT",
        "metrics-timeout",
        Kind::Duration { nonzero: true },
        Value("10s"),
    )
    .global()
    .doc("timeout of one push attempt (3 attempts on connection errors and 5xx)"),
];

const LIFECYCLE_SCOPED: &[&str] = &[
    "prune",
    "retain",
    "mark-and-delete",
    "sync-labels",
    "list",
    "status",
];
const ALL_LIFECYCLE: &[&str] = &[
    "prune",
    "retain",
    "mark-and-delete",
    "sync-labels",
    "list",
    "status",
    "delete",
    "restore",
    "restore pvc",
    "rebind",
];
/// The commands that take every [`Scope::Create`] setting: `create` and `env`, and the ones
/// that reuse `create`'s database flags (`download`, `restore dump`, `verify`,
/// `postgres|mysql dump|info|shell`).
pub const CREATE_COMMANDS: &[&str] = &[
    "create",
    "env",
    "download",
    "restore dump",
    "verify",
    "postgres dump",
    "postgres info",
    "postgres shell",
    "mysql dump",
    "mysql info",
    "mysql shell",
    "postgres restore",
    "mysql restore",
    "postgres download-dump",
    "mysql download-dump",
];
/// The commands that take a snapshot argument (`--before`).
const SNAPSHOT_COMMANDS: &[&str] = &["restore pvc", "restore dump", "download", "verify"];
/// The commands that read a snapshot's volume through a helper pod.
const SNAPSHOT_READERS: &[&str] = &["restore dump", "download", "verify"];
/// `restore pvc` and the original's `restore SNAPSHOT -p NEW_PVC`: the same flags.
const RESTORE_PVC: &[&str] = &["restore", "restore pvc"];

/// The flags of the lifecycle commands (and `adhoc`), in the order the README lists them. A
/// variable can be here and in [`SETTINGS`]: `BAK_NAMESPACE` means the same namespace, but
/// `retain` defaults to all of them.
pub const OPTIONS: &[SettingSpec] = &[
    row(
        "BAK_NAMESPACE",
        "namespace",
        Kind::Dns1123Label,
        Computed("all namespaces (`list`, `status`, `delete`, `adhoc`, `rebind`: the context's)"),
    )
    .short('n')
    .commands(&[
        "prune",
        "retain",
        "mark-and-delete",
        "sync-labels",
        "list",
        "status",
        "delete",
        "adhoc",
        "restore",
        "restore pvc",
        "rebind",
    ])
    .doc("only this namespace (`rebind`: of the new snapshot)"),
    row("BAK_ALL_NAMESPACES", "all-namespaces", BOOL, Value("false"))
        .short('A')
        .commands(LIFECYCLE_SCOPED)
        .doc("every namespace; wins over `-n`"),
    row("BAK_DRY_RUN", "dry-run", BOOL, Value("false"))
        .commands(&[
            "prune",
            "retain",
            "mark-and-delete",
            "sync-labels",
            "delete",
            "restore",
            "restore pvc",
            "rebind",
        ])
        .chart(&[always("pruner.dryRun")])
        .doc("print the plan; change nothing"),
    row(
        "RETAIN_LAST_DAILY",
        "retain-last-daily",
        Kind::Int {
            min: 0,
            max: 10_000,
        },
        Value("7"),
    )
    .commands(&["prune", "retain"])
    .chart(&[always("pruner.retainLastDaily")])
    .doc("ready snapshots per PVC that keep their daily label"),
    row(
        "RETAIN_LAST_WEEKLY",
        "retain-last-weekly",
        Kind::Int {
            min: 0,
            max: 10_000,
        },
        Value("4"),
    )
    .commands(&["prune", "retain"])
    .chart(&[always("pruner.retainLastWeekly")])
    .doc("… their weekly label"),
    row(
        "RETAIN_LAST_MONTHLY",
        "retain-last-monthly",
        Kind::Int {
            min: 0,
            max: 10_000,
        },
        Value("12"),
    )
    .commands(&["prune", "retain"])
    .chart(&[always("pruner.retainLastMonthly")])
    .doc("… their monthly label"),
    row(
        "BAK_MAX_DELETIONS",
        "max-deletions",
        Kind::Int {
            min: 0,
            max: 10_000_000,
        },
        Value("500"),
    )
    .commands(&["prune", "retain", "mark-and-delete"])
    .chart(&[always("pruner.maxDeletions")])
    .doc(
        "brake: a run that would delete more snapshots (`retain`: strip more of their last \
         period label) changes nothing and fails",
    ),
    row(
        "BAK_ALLOW_DELETING_LAST_READY",
        "allow-deleting-last-ready",
        BOOL,
        Value("false"),
    )
    .commands(&["prune", "mark-and-delete"])
    .doc("also delete the newest ready snapshot of a PVC once due"),
    row("BAK_TZ", "tz", Kind::TimeZone, Computed("`TZ`, else UTC"))
        .empty(Empty::Default)
        .commands(&["prune", "retain", "mark-and-delete", "list", "restore pvc"])
        .doc("time zone of \"today\", of the dates shown and of a `--before` date"),
    row(
        "BAK_API_QPS",
        "qps",
        Kind::Float {
            min: 0.1,
            max: 1_000_000.0,
        },
        Value("20"),
    )
    .commands(ALL_LIFECYCLE)
    .doc("client-side rate limit, requests per second"),
    row(
        "BAK_PVC_NAME",
        "pvc",
        Kind::LabelValue,
        Computed("all PVCs"),
    )
    .commands(&["list", "status", "restore pvc"])
    .doc(
        "only snapshots of this PVC (`status`: listed even without backups; `restore pvc`: \
         where `latest` and `--before` choose)",
    ),
    row("BAK_LIST_DAILY", "daily", BOOL, Value("false"))
        .commands(&["list"])
        .doc("only snapshots with a daily label (class flags combine with \"or\")"),
    row("BAK_LIST_WEEKLY", "weekly", BOOL, Value("false"))
        .commands(&["list"])
        .doc("only snapshots with a weekly label"),
    row("BAK_LIST_MONTHLY", "monthly", BOOL, Value("false"))
        .commands(&["list"])
        .doc("only snapshots with a monthly label"),
    row("BAK_LIST_ADHOC", "adhoc", BOOL, Value("false"))
        .commands(&["list"])
        .doc("only `type=adhoc` snapshots"),
    row("BAK_LIST_CRONJOB", "cronjob", BOOL, Value("false"))
        .commands(&["list"])
        .doc("only `type=cronjob` snapshots"),
    row(
        "BAK_STATUS_MAX_AGE",
        "max-age",
        Kind::Duration { nonzero: true },
        Value("26h"),
    )
    .commands(&["status"])
    .doc("a PVC whose newest ready backup is older is stale (exit code 1)"),
    row("BAK_YES", "yes", BOOL, Value("false"))
        .short('y')
        .commands(&[
            "delete",
            "rebind",
            "restore dump",
            "postgres restore",
            "mysql restore",
        ])
        .doc("do not ask; required when stdin is not a terminal"),
    row(
        "BAK_ADHOC_FROM_CRONJOB",
        "from-cronjob",
        Kind::Dns1123Subdomain,
        Required,
    )
    .commands(&["adhoc"])
    .doc("the CronJob whose job template to run"),
    row("BAK_ADHOC_WAIT", "wait", BOOL, Value("false"))
        .commands(&["adhoc"])
        .doc("wait for the Job and exit with its outcome"),
    row("BAK_ADHOC_TIMEOUT", "timeout", TIMEOUT, Value("1h"))
        .commands(&["adhoc"])
        .doc("how long `--wait` waits; the Job keeps running"),
    // `restore pvc` (and the original's `restore SNAPSHOT -p NEW_PVC`, whose `-p` has no
    // variable: `BAK_PVC_NAME` names the snapshotted PVC everywhere else).
    row("BAK_RESTORE_TO", "to", Kind::Dns1123Subdomain, Required)
        .commands(&["restore pvc"])
        .doc("the PVC to create from the snapshot; must not exist"),
    row(
        "BAK_RESTORE_BEFORE",
        "before",
        Kind::LabelValue,
        Computed("none"),
    )
    .commands(SNAPSHOT_COMMANDS)
    .doc("restore the newest ready snapshot of `--pvc` taken before this RFC 3339 time or date"),
    row(
        "BAK_RESTORE_DUMP_PATH",
        "dump-path",
        Kind::LocalPath,
        Computed("the env-config's dump file, relative to the database container's mount"),
    )
    .commands(SNAPSHOT_READERS)
    .doc("the dump on the restored volume, relative to its root"),
    row(
        "BAK_HELPER_UID",
        "helper-uid",
        Kind::Int {
            min: 1,
            max: 2_147_483_647,
        },
        Computed("the database container's runAsUser, else its pod's, else 999"),
    )
    .commands(SNAPSHOT_READERS)
    .doc("uid of the helper pod (never root)"),
    row(
        "BAK_RESTORE_INTO_DATABASE",
        "into-database",
        Kind::ValueRef,
        Computed("the live database"),
    )
    .commands(&["restore dump", "postgres restore", "mysql restore"])
    .doc("restore into this database (created when missing) instead of over the live one"),
    row("BAK_RESTORE_DUMP_TIMEOUT", "timeout", TIMEOUT, Value("2h"))
        .commands(&["restore dump"])
        .doc("the whole restore: helper pod start, verifying read, load"),
    row(
        "BAK_VERIFY_EXPECT",
        "expect",
        Kind::ValueRef,
        Computed("none"),
    )
    .commands(&["verify"])
    .doc("`SQL=MIN` checks, one per line: the query's first value must be at least MIN"),
    row(
        "BAK_VERIFY_EXPECT_FILES",
        "expect-file",
        Kind::LocalPath,
        Computed("none"),
    )
    .commands(&["verify"])
    .doc("files that must be on the restored volume, comma-separated, relative to its root"),
    row(
        "BAK_VERIFY_IMAGE",
        "image",
        Kind::ValueRef,
        Computed("the database container's image; `busybox:1.36` for a volume-only snapshot"),
    )
    .commands(&["verify"])
    .doc("image of the helper pod"),
    row("BAK_VERIFY_TIMEOUT", "timeout", TIMEOUT, Value("30m"))
        .commands(&["verify"])
        .doc("the whole verification: helper pod start, load, checks"),
    row(
        "BAK_RESTORE_STORAGE_CLASS",
        "storage-class",
        Kind::Dns1123Subdomain,
        Computed("the snapshotted PVC's, else the cluster default"),
    )
    .empty(Empty::Default)
    .commands(RESTORE_PVC)
    .doc("StorageClass of the new PVC"),
    row(
        "BAK_RESTORE_ACCESS_MODE",
        "access-mode",
        Kind::Enum(&[
            "ReadWriteOnce",
            "ReadOnlyMany",
            "ReadWriteMany",
            "ReadWriteOncePod",
        ]),
        Computed("the snapshotted PVC's, else `ReadWriteOnce`"),
    )
    .commands(RESTORE_PVC)
    .doc("access modes of the new PVC, comma-separated"),
    row(
        "BAK_RESTORE_SIZE",
        "size",
        Kind::LabelValue,
        Computed("max(restoreSize, the snapshotted PVC's request)"),
    )
    .commands(RESTORE_PVC)
    .doc("size of the new PVC (e.g. `20Gi`); never smaller than the snapshot's restoreSize"),
    row("BAK_RESTORE_WAIT", "wait", BOOL, Value("false"))
        .commands(RESTORE_PVC)
        .doc("wait until the PVC is Bound (`WaitForFirstConsumer`: says so and stops)"),
    row("BAK_RESTORE_TIMEOUT", "timeout", TIMEOUT, Value("5m"))
        .commands(RESTORE_PVC)
        .doc("how long `--wait` waits; the PVC stays"),
    // --- rebind and `list --orphans` ---
    row("BAK_LIST_ORPHANS", "orphans", BOOL, Value("false"))
        .commands(&["list"])
        .doc("list contents whose snapshot is gone (cluster-wide; `-n`: of that namespace)"),
    row(
        "BAK_REBIND_NAME",
        "name",
        Kind::Dns1123Subdomain,
        Computed("the gone snapshot's name"),
    )
    .commands(&["rebind"])
    .doc("name of the new VolumeSnapshot"),
    row(
        "BAK_REBIND_DELETION_POLICY",
        "deletion-policy",
        Kind::Enum(&["Retain", "Delete"]),
        Value("Retain"),
    )
    .commands(&["rebind"])
    .doc(
        "`deletionPolicy` of the new content (`Delete`: deleting the new snapshot deletes the \
         stored data, which the old content also points to)",
    ),
    // --- download (and `create`'s database flags, see CREATE_COMMANDS) ---
    row("BAK_DOWNLOAD_LIVE", "live", BOOL, Value("false"))
        .commands(&["download"])
        .doc("take the current dump file from the running database container, not a snapshot"),
    row("BAK_DOWNLOAD_TIMEOUT", "timeout", TIMEOUT, Value("30m"))
        .commands(&["download"])
        .doc("reading a dump from a snapshot, the helper pod's start included"),
    row(
        "BAK_DOWNLOAD_FILE",
        "file",
        Kind::LocalPath,
        Computed("the dump file's name, in the current directory"),
    )
    .short('f')
    .commands(&["download", "postgres download-dump", "mysql download-dump"])
    .doc("where to write the dump, `-` for stdout; replaced only by a verified download"),
];

/// The row of a `create` setting or global flag.
pub fn setting(var: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|s| s.var == var)
}

/// The row of a lifecycle flag.
pub fn option(var: &str) -> Option<&'static SettingSpec> {
    OPTIONS.iter().find(|s| s.var == var)
}

/// Whether the `env-config` annotation may carry a variable. The original's rule — every
/// `BAK_*` name without `PASSWORD` — is kept for variables the table does not know (they were
/// set for a reason); every secret row is held out even if its name lacks `PASSWORD`.
pub fn in_env_config(var: &str) -> bool {
    var.starts_with("BAK_")
        && !var.contains("PASSWORD")
        && !SETTINGS
            .iter()
            .chain(OPTIONS)
            .any(|s| s.secret && s.var == var)
}

fn default_doc(s: &SettingSpec) -> String {
    match s.default {
        Value(v) => format!("`{v}`"),
        Computed(text) => text.to_owned(),
        Required => "required".to_owned(),
    }
}

/// The README's settings table (section "Configuration"): [`SETTINGS`], in order.
pub fn readme_create_table() -> String {
    let mut out = String::from("| variable | flag | default | meaning |\n|---|---|---|---|\n");
    for s in SETTINGS {
        out += &format!(
            "| `{}` | {} | {} | {} |\n",
            s.var,
            s.flags_doc(),
            default_doc(s),
            s.doc
        );
    }
    out
}

/// The README's table of the lifecycle commands' flags: [`OPTIONS`], in order.
pub fn readme_options_table() -> String {
    let mut out =
        String::from("| flag | variable | default | commands | meaning |\n|---|---|---|---|---|\n");
    for s in OPTIONS {
        out += &format!(
            "| {} | `{}` | {} | {} | {} |\n",
            s.flags_doc(),
            s.var,
            default_doc(s),
            s.commands.join(", "),
            s.doc
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_has_one_row_per_table() {
        for table in [SETTINGS, OPTIONS] {
            for (i, s) in table.iter().enumerate() {
                assert!(
                    !table[..i].iter().any(|t| t.var == s.var),
                    "{} twice",
                    s.var
                );
                assert!(
                    s.var.starts_with("BAK_") || s.var.starts_with("RETAIN_LAST_"),
                    "{}",
                    s.var
                );
            }
        }
    }

    #[test]
    fn secrets_stay_out_of_the_env_config_annotation() {
        for s in SETTINGS.iter().chain(OPTIONS) {
            assert_eq!(
                in_env_config(s.var),
                s.var.starts_with("BAK_") && !s.secret,
                "{}",
                s.var
            );
        }
        // The original's rule for names the table does not know.
        assert!(in_env_config("BAK_SOMETHING_NEW"));
        assert!(!in_env_config("BAK_DB_OTHER_PASSWORD_FILE"));
        assert!(!in_env_config("RETAIN_LAST_DAILY"));
    }
}
