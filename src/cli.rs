//! The command line as typed: clap derive, one flag per `BAK_*` variable (`env = …`).
//!
//! Which flag belongs to which variable is also in the settings table
//! ([`crate::settings::table`]); a test holds the two together.
//!
//! Values stay raw strings here on purpose: [`crate::settings`] validates every one of them and
//! names the variable *and* the flag in its error, which clap's own value parsers would not do
//! for values that came from the environment.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "backup-ns",
    version,
    about = "Application-consistent backups of Kubernetes namespaces with CSI VolumeSnapshots",
    long_about = None,
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log format on stderr.
    #[arg(long, global = true, env = "BAK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log output (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (-q warnings and errors only, -qq errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Result format on stdout (`wide` and `yaml` only for `list` and `status`).
    #[arg(short = 'o', long, global = true, env = "BAK_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Push this run's metrics to this Pushgateway (grouping key job/namespace/pvc). The URL
    /// may carry credentials: it is never logged or recorded.
    #[arg(
        long,
        global = true,
        env = "BAK_METRICS_PUSHGATEWAY",
        hide_env_values = true
    )]
    pub metrics_pushgateway: Option<String>,
    /// Write this run's metrics to this file, atomically, for node-exporter's textfile
    /// collector (name it `*.prom`).
    #[arg(long, global = true, env = "BAK_METRICS_TEXTFILE")]
    pub metrics_textfile: Option<String>,
    /// Timeout of one push attempt to the Pushgateway, with a unit.
    #[arg(long, global = true, env = "BAK_METRICS_TIMEOUT")]
    pub metrics_timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `-o` as typed. Every command prints text or JSON; `list` and `status` also print a wide
/// table and YAML; `status` also the Prometheus text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
    Wide,
    Yaml,
    Prometheus,
}

impl Output {
    /// The format of a command that prints only text or JSON; `wide` and `yaml` are a usage
    /// error there rather than silently text.
    pub fn text_or_json(self) -> crate::Result<OutputFormat> {
        match self {
            Output::Text => Ok(OutputFormat::Text),
            Output::Json => Ok(OutputFormat::Json),
            Output::Wide | Output::Yaml | Output::Prometheus => Err(crate::Error::config(
                "BAK_OUTPUT (-o)",
                self.to_possible_value()
                    .map_or_else(String::new, |v| v.get_name().to_owned()),
                "only `list` and `status` print wide and yaml, and only `status` prometheus; this \
                 command prints text or json",
            )),
        }
    }
}

/// What a text-or-JSON command prints (see [`Output::text_or_json`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dump the database inside its container, then snapshot the PVC and label it for retention.
    Create(Box<CreateArgs>),
    /// Print the effective settings (secrets redacted) and exit.
    Env(Box<CreateArgs>),
    /// Retain, mark and sweep as one plan in one pass: what the chart's pruner runs.
    Prune(PruneArgs),
    /// Keep the daily/weekly/monthly labels on the newest N ready snapshots of each PVC and
    /// remove them from the rest.
    Retain(RetainArgs),
    /// Mark snapshots left without a period label for deletion, and delete those whose
    /// `delete-after` day has passed (freeing their storage).
    MarkAndDelete(MarkAndDeleteArgs),
    /// List backup-ns snapshots as a table (or JSON/YAML), by namespace, PVC and time.
    List(ListArgs),
    /// One line per backed-up PVC: newest ready backup, last attempt, counts, next deletion;
    /// exit 1 when any is stale (older than --max-age) or its last attempt failed.
    Status(StatusArgs),
    /// Delete one snapshot and the storage behind it.
    Delete(DeleteArgs),
    /// Copy each snapshot's backup-ns.sh/* labels and env-config annotation to its bound
    /// VolumeSnapshotContent (adding, changing and removing).
    SyncLabels(SyncLabelsArgs),
    /// The original's controller commands (`controller syncMetadataToVsc` = `sync-labels`).
    Controller(ControllerArgs),
    /// Start a backup now: a Job from a backup CronJob's template, labelled `type=adhoc`.
    Adhoc(AdhocArgs),
    /// Restore from a snapshot: `restore pvc SNAPSHOT --to NEW_PVC` (the original's
    /// `restore SNAPSHOT -p NEW_PVC` still works and does the same).
    Restore(Box<RestoreArgs>),
    /// Make a VolumeSnapshotContent left behind (`deletionPolicy: Retain`, its snapshot gone)
    /// usable again: a new pre-provisioned content + VolumeSnapshot pair in `-n NS`, with the
    /// backup-ns labels restored. The old content is left as it is. See `list --orphans`.
    #[command(alias = "rebindVsc")]
    Rebind(RebindArgs),
    /// Download the dump inside a snapshot (a temporary PVC and a helper pod), or with --live
    /// the current dump file of the running database container (the original's
    /// `downloadDump`): streamed, verified (gzip and the engine's completion trailer), to a
    /// file or stdout; prints its size and sha256. Takes `create`'s database flags.
    Download(Box<DownloadArgs>),
    /// Prove a snapshot restores: its dump loaded into a throwaway database server in a helper
    /// pod (table and row counts, --expect checks), or for a volume-only snapshot the
    /// --expect-file files present; labels the snapshot verified / verify-failed.
    Verify(Box<VerifyArgs>),
    /// PostgreSQL in its container: `dump` (the checks and the atomic dump of `create`, no
    /// snapshot), `info` (server version, database size, the dump file's size and age),
    /// `shell` (an interactive psql), and the original's `restore` (the current dump file back
    /// into the database) and `downloadDump`.
    Postgres(DbCommandArgs),
    /// MySQL/MariaDB in its container: `dump`, `info`, `shell`, `restore` and `downloadDump`, as
    /// for `postgres`.
    Mysql(DbCommandArgs),
}

/// `download SNAPSHOT|--live [-f FILE|-]` and `create`'s database flags.
#[derive(Debug, Default, Clone, Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    pub from: FromSnapshotArgs,
    /// Take the current dump file from the running database container instead of a snapshot
    /// (the original's `downloadDump`).
    #[arg(long, env = "BAK_DOWNLOAD_LIVE", num_args = 0..=1, default_missing_value = "true")]
    pub live: Option<String>,
    /// Where to write the dump (`-`: stdout). Written under a temporary name beside it and
    /// renamed once verified, so an existing file is only replaced by a complete dump.
    #[arg(short = 'f', long = "file", env = "BAK_DOWNLOAD_FILE")]
    pub file: Option<String>,
    /// How long reading the dump may take, the helper pod's start included, with a unit.
    #[arg(long, env = "BAK_DOWNLOAD_TIMEOUT")]
    pub timeout: Option<String>,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// The snapshot `restore dump`, `download` and `verify` read, and how its volume is read.
#[derive(Debug, Default, Clone, Args)]
pub struct FromSnapshotArgs {
    /// The VolumeSnapshot: a name, or `latest` (the newest ready snapshot of --pvc).
    pub snapshot: Option<String>,
    /// The newest ready snapshot of --pvc taken before this time (RFC 3339, or a date:
    /// midnight starting it in --tz).
    #[arg(long, env = "BAK_RESTORE_BEFORE")]
    pub before: Option<String>,
    /// The dump file on the restored volume, relative to the volume's root (default: the
    /// dump file of the snapshot's env-config, relative to where the database container
    /// mounts the snapshotted PVC).
    #[arg(long = "dump-path", env = "BAK_RESTORE_DUMP_PATH")]
    pub dump_path: Option<String>,
    /// The uid the helper pod runs as, never root (default: the database container's
    /// runAsUser, else its pod's, else the uid of the image's postgres/mysql user, else 999).
    #[arg(long = "helper-uid", env = "BAK_HELPER_UID")]
    pub helper_uid: Option<String>,
}

/// `verify SNAPSHOT|latest`.
#[derive(Debug, Default, Clone, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub from: FromSnapshotArgs,
    /// A check `SQL=MIN`: the first column of the query's first row must be an integer of at
    /// least MIN (e.g. `SELECT count(*) FROM orders=1`). Repeatable; in the variable one per
    /// line.
    #[arg(long = "expect", env = "BAK_VERIFY_EXPECT", value_delimiter = '\n')]
    pub expect: Vec<String>,
    /// A file that must exist on the restored volume, relative to its root. Repeatable; in the
    /// variable comma-separated. The check of a volume-only snapshot.
    #[arg(
        long = "expect-file",
        env = "BAK_VERIFY_EXPECT_FILES",
        value_delimiter = ','
    )]
    pub expect_file: Vec<String>,
    /// Image of the helper pod for a volume-only snapshot (a database's helper runs the
    /// database container's image).
    #[arg(long, env = "BAK_VERIFY_IMAGE")]
    pub image: Option<String>,
    /// How long the whole verification may take, with a unit.
    #[arg(long, env = "BAK_VERIFY_TIMEOUT")]
    pub timeout: Option<String>,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `postgres …` / `mysql …`.
#[derive(Debug, Args)]
pub struct DbCommandArgs {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Run `create`'s in-pod checks and the atomic dump, nothing else: no snapshot, no Lease,
    /// no node lock. Takes `create`'s flags (the engine is the command's).
    Dump(Box<CreateArgs>),
    /// Print the server version, the database size and the dump file's size and age.
    Info(Box<CreateArgs>),
    /// Open the database's own client (psql; mariadb or mysql) in the container, logged in with
    /// `create`'s settings; the password never in argv. Interactive with a terminal (tty exec,
    /// the local terminal in raw mode); without one, stdin is the client's input, so
    /// `echo 'SELECT 1' | backup-ns postgres shell` works in scripts. Exit status: the
    /// client's. `--dry-run` prints the pod, container and command; `-o json` only with it.
    Shell(Box<CreateArgs>),
    /// The original's `restore`: load the container's current dump file into the database
    /// (PostgreSQL in one transaction, MySQL statement by statement), after checking it whole.
    /// Asks first; --yes (the original's -f) elsewhere.
    Restore(Box<DbRestoreArgs>),
    /// The original's `downloadDump`: `download --live` for this engine.
    #[command(name = "download-dump", alias = "downloadDump")]
    DownloadDump(Box<DbDownloadArgs>),
}

/// `postgres|mysql restore`.
#[derive(Debug, Default, Clone, Args)]
pub struct DbRestoreArgs {
    /// Do not ask; required when stdin is not a terminal (`-f`, `--force`: the original's).
    #[arg(
        short = 'y',
        long,
        env = "BAK_YES",
        num_args = 0..=1,
        default_missing_value = "true",
        short_alias = 'f',
        alias = "force"
    )]
    pub yes: Option<String>,
    /// Restore into this database (created when missing) instead of over the live one.
    #[arg(long = "into-database", env = "BAK_RESTORE_INTO_DATABASE")]
    pub into_database: Option<String>,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `postgres|mysql download-dump` (`downloadDump`).
#[derive(Debug, Default, Clone, Args)]
pub struct DbDownloadArgs {
    /// Where to write the dump (`-`: stdout); replaced only by a verified download.
    #[arg(short = 'f', long = "file", env = "BAK_DOWNLOAD_FILE")]
    pub file: Option<String>,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `rebind CONTENT` (the original's `rebindVsc`).
#[derive(Debug, Default, Clone, Args)]
pub struct RebindArgs {
    /// The orphaned VolumeSnapshotContent (see `backup-ns list --orphans`).
    pub content: String,
    /// Namespace of the new VolumeSnapshot (default: the kube context's).
    #[arg(short = 'n', long, env = "BAK_NAMESPACE")]
    pub namespace: Option<String>,
    /// Name of the new VolumeSnapshot (default: the name of the snapshot that is gone).
    #[arg(long, env = "BAK_REBIND_NAME")]
    pub name: Option<String>,
    /// deletionPolicy of the new content: Retain (default) or Delete (deleting the new snapshot
    /// then deletes the stored data, which the old content also points to).
    #[arg(long, env = "BAK_REBIND_DELETION_POLICY")]
    pub deletion_policy: Option<String>,
    /// Do not ask; required when stdin is not a terminal.
    #[arg(short = 'y', long, env = "BAK_YES", num_args = 0..=1, default_missing_value = "true")]
    pub yes: Option<String>,
    /// Print the objects that would be created; create nothing.
    #[arg(long, env = "BAK_DRY_RUN", num_args = 0..=1, default_missing_value = "true")]
    pub dry_run: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `adhoc --from-cronjob NAME`.
#[derive(Debug, Default, Clone, Args)]
pub struct AdhocArgs {
    /// The CronJob whose job template to run.
    #[arg(long = "from-cronjob", env = "BAK_ADHOC_FROM_CRONJOB")]
    pub from_cronjob: String,
    /// Its namespace (default: the kube context's).
    #[arg(short = 'n', long, env = "BAK_NAMESPACE")]
    pub namespace: Option<String>,
    /// Wait for the Job to finish and exit with its outcome.
    #[arg(long, env = "BAK_ADHOC_WAIT", num_args = 0..=1, default_missing_value = "true")]
    pub wait: Option<String>,
    /// How long `--wait` waits, with a unit (default 1h); the Job keeps running after it.
    #[arg(long, env = "BAK_ADHOC_TIMEOUT")]
    pub timeout: Option<String>,
}

/// Which namespaces a lifecycle command looks at.
#[derive(Debug, Default, Clone, Args)]
pub struct ScopeArgs {
    /// Only this namespace.
    #[arg(short = 'n', long, env = "BAK_NAMESPACE")]
    pub namespace: Option<String>,
    /// Every namespace (wins over -n and BAK_NAMESPACE).
    #[arg(short = 'A', long, env = "BAK_ALL_NAMESPACES", num_args = 0..=1, default_missing_value = "true")]
    pub all_namespaces: Option<String>,
}

/// How the lifecycle commands talk to the API server.
#[derive(Debug, Default, Clone, Args)]
pub struct ApiArgs {
    /// Client-side rate limit: API requests per second (retries included; burst of one
    /// second's worth).
    #[arg(long, env = "BAK_API_QPS")]
    pub qps: Option<String>,
}

/// `retain`.
#[derive(Debug, Default, Clone, Args)]
pub struct RetainArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Print the plan (what would be unlabelled, and why); change nothing.
    #[arg(long, env = "BAK_DRY_RUN", num_args = 0..=1, default_missing_value = "true")]
    pub dry_run: Option<String>,
    /// Ready snapshots per PVC that keep their daily label.
    #[arg(long, env = "RETAIN_LAST_DAILY")]
    pub retain_last_daily: Option<String>,
    /// Ready snapshots per PVC that keep their weekly label.
    #[arg(long, env = "RETAIN_LAST_WEEKLY")]
    pub retain_last_weekly: Option<String>,
    /// Ready snapshots per PVC that keep their monthly label.
    #[arg(long, env = "RETAIN_LAST_MONTHLY")]
    pub retain_last_monthly: Option<String>,
    /// Brake: a run in which more snapshots would lose their last period label (and so be
    /// marked for deletion) than this changes nothing and fails.
    #[arg(long, env = "BAK_MAX_DELETIONS")]
    pub max_deletions: Option<String>,
    /// Time zone of the dates in the plan (IANA name; default: `TZ`, else UTC).
    #[arg(long = "tz", env = "BAK_TZ")]
    pub tz: Option<String>,
}

/// `prune`: `retain`'s options, plus the sweep's.
#[derive(Debug, Default, Clone, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub retain: RetainArgs,
    /// Also delete the newest ready snapshot of a PVC once its delete-after day has passed.
    #[arg(long, env = "BAK_ALLOW_DELETING_LAST_READY", num_args = 0..=1, default_missing_value = "true")]
    pub allow_deleting_last_ready: Option<String>,
}

/// `mark-and-delete`.
#[derive(Debug, Default, Clone, Args)]
pub struct MarkAndDeleteArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Print the plan (what would be marked, unmarked and deleted, and why); change nothing.
    #[arg(long, env = "BAK_DRY_RUN", num_args = 0..=1, default_missing_value = "true")]
    pub dry_run: Option<String>,
    /// Brake: a run that would delete more snapshots than this deletes none and fails.
    #[arg(long, env = "BAK_MAX_DELETIONS")]
    pub max_deletions: Option<String>,
    /// Also delete the newest ready snapshot of a PVC once its delete-after day has passed.
    #[arg(long, env = "BAK_ALLOW_DELETING_LAST_READY", num_args = 0..=1, default_missing_value = "true")]
    pub allow_deleting_last_ready: Option<String>,
    /// Time zone of "today" for marks and the sweep (IANA name; default: `TZ`, else UTC).
    #[arg(long = "tz", env = "BAK_TZ")]
    pub tz: Option<String>,
}

/// `list`.
#[derive(Debug, Default, Clone, Args)]
pub struct ListArgs {
    /// Namespace to list (default: the kube context's).
    #[arg(short = 'n', long, env = "BAK_NAMESPACE")]
    pub namespace: Option<String>,
    /// List every namespace (wins over -n and BAK_NAMESPACE).
    #[arg(short = 'A', long, env = "BAK_ALL_NAMESPACES", num_args = 0..=1, default_missing_value = "true")]
    pub all_namespaces: Option<String>,
    /// Only snapshots of this PVC.
    #[arg(long, env = "BAK_PVC_NAME")]
    pub pvc: Option<String>,
    /// Only snapshots with a daily label (the class flags combine with "or").
    #[arg(long, env = "BAK_LIST_DAILY", num_args = 0..=1, default_missing_value = "true")]
    pub daily: Option<String>,
    /// Only snapshots with a weekly label.
    #[arg(long, env = "BAK_LIST_WEEKLY", num_args = 0..=1, default_missing_value = "true")]
    pub weekly: Option<String>,
    /// Only snapshots with a monthly label.
    #[arg(long, env = "BAK_LIST_MONTHLY", num_args = 0..=1, default_missing_value = "true")]
    pub monthly: Option<String>,
    /// Only `type=adhoc` snapshots (with --cronjob: both).
    #[arg(long, env = "BAK_LIST_ADHOC", num_args = 0..=1, default_missing_value = "true")]
    pub adhoc: Option<String>,
    /// Only `type=cronjob` snapshots.
    #[arg(long, env = "BAK_LIST_CRONJOB", num_args = 0..=1, default_missing_value = "true")]
    pub cronjob: Option<String>,
    /// Time zone of the dates shown with -o wide (IANA name; default: `TZ`, else UTC).
    #[arg(long = "tz", env = "BAK_TZ")]
    pub tz: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
    /// List VolumeSnapshotContents whose snapshot is gone (cluster-wide; `-n`: those whose
    /// snapshot was in that namespace), the candidates of `backup-ns rebind`.
    #[arg(long, env = "BAK_LIST_ORPHANS", num_args = 0..=1, default_missing_value = "true")]
    pub orphans: Option<String>,
}

/// `status`.
#[derive(Debug, Default, Clone, Args)]
pub struct StatusArgs {
    /// Namespace to report on (default: the kube context's).
    #[arg(short = 'n', long, env = "BAK_NAMESPACE")]
    pub namespace: Option<String>,
    /// Report on every namespace (wins over -n and BAK_NAMESPACE).
    #[arg(short = 'A', long, env = "BAK_ALL_NAMESPACES", num_args = 0..=1, default_missing_value = "true")]
    pub all_namespaces: Option<String>,
    /// Only this PVC (listed even when it has no backup yet: you named it).
    #[arg(long, env = "BAK_PVC_NAME")]
    pub pvc: Option<String>,
    /// A PVC whose newest ready backup is older than this is stale (with a unit, e.g. 26h).
    #[arg(long, env = "BAK_STATUS_MAX_AGE")]
    pub max_age: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `delete`.
#[derive(Debug, Default, Clone, Args)]
pub struct DeleteArgs {
    /// The VolumeSnapshot to delete.
    pub name: String,
    /// Its namespace (default: the kube context's).
    #[arg(short = 'n', long, env = "BAK_NAMESPACE")]
    pub namespace: Option<String>,
    /// Do not ask; required when stdin is not a terminal.
    #[arg(short = 'y', long, env = "BAK_YES", num_args = 0..=1, default_missing_value = "true")]
    pub yes: Option<String>,
    /// Show what would be deleted; change nothing.
    #[arg(long, env = "BAK_DRY_RUN", num_args = 0..=1, default_missing_value = "true")]
    pub dry_run: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `sync-labels` (and `controller syncMetadataToVsc`).
#[derive(Debug, Default, Clone, Args)]
pub struct SyncLabelsArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Print the label differences; change nothing.
    #[arg(long, env = "BAK_DRY_RUN", num_args = 0..=1, default_missing_value = "true")]
    pub dry_run: Option<String>,
}

/// `controller …`: the original's command names.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    #[command(subcommand)]
    pub command: ControllerCommand,
}

#[derive(Debug, Subcommand)]
pub enum ControllerCommand {
    /// Same as `backup-ns sync-labels`.
    #[command(name = "syncMetadataToVsc")]
    SyncMetadataToVsc(SyncLabelsArgs),
}

/// Every setting of `create` (and `env`), each backed by its `BAK_*` variable. Serde lets the
/// snapshot commands fill the unset ones from a snapshot's `env-config` annotation.
#[derive(Debug, Default, Clone, Args, serde::Serialize, serde::Deserialize)]
pub struct CreateArgs {
    /// Run every read and in-pod check, print the VolumeSnapshot; write nothing.
    #[arg(long, env = "BAK_DRY_RUN", num_args = 0..=1, default_missing_value = "true")]
    pub dry_run: Option<String>,
    /// Target namespace (default: the namespace of the current kube context).
    #[arg(short = 'n', long, env = "BAK_NAMESPACE")]
    pub namespace: Option<String>,
    /// PVC to snapshot.
    #[arg(long, env = "BAK_PVC_NAME")]
    pub pvc: Option<String>,
    /// Random suffix of the snapshot name (default: 6 random lowercase letters).
    #[arg(long, env = "BAK_VS_RAND")]
    pub vs_rand: Option<String>,
    /// `type` label: adhoc, cronjob or any label value (informational, as in the original).
    #[arg(long = "type", env = "BAK_LABEL_VS_TYPE")]
    pub label_type: Option<String>,
    /// `pod` label: the name of the pod running the backup.
    #[arg(long = "pod-label", env = "BAK_LABEL_VS_POD")]
    pub label_pod: Option<String>,
    /// Retention mode: days or daily_weekly_monthly.
    #[arg(long, env = "BAK_LABEL_VS_RETAIN")]
    pub retain: Option<String>,
    /// Days to keep the snapshot with `--retain days`.
    #[arg(long, env = "BAK_LABEL_VS_RETAIN_DAYS")]
    pub retain_days: Option<String>,
    /// Snapshot name template (placeholders: .pvcName .timestamp .rand .namespace .date).
    #[arg(long, env = "BAK_VS_NAME_TEMPLATE")]
    pub name_template: Option<String>,
    /// VolumeSnapshotClass (default: the cluster's default class).
    #[arg(long = "class", env = "BAK_VS_CLASS_NAME")]
    pub vs_class: Option<String>,
    /// Wait until the snapshot is readyToUse.
    #[arg(long = "wait", env = "BAK_VS_WAIT_UNTIL_READY", num_args = 0..=1, default_missing_value = "true")]
    pub wait: Option<String>,
    /// Deadline for readyToUse, with a unit (e.g. 15m, 90s).
    #[arg(long = "wait-timeout", env = "BAK_VS_WAIT_UNTIL_READY_TIMEOUT")]
    pub wait_timeout: Option<String>,
    /// Fail when the dump directory's used space is at or above this percentage.
    #[arg(
        long = "threshold-space-used-percentage",
        env = "BAK_THRESHOLD_SPACE_USED_PERCENTAGE"
    )]
    pub threshold_space_used: Option<String>,
    /// Snapshot the volume without dumping a database.
    #[arg(long = "db-skip", env = "BAK_DB_SKIP", num_args = 0..=1, default_missing_value = "true")]
    pub db_skip: Option<String>,
    /// Upper bound of one dump, with a unit (e.g. 3h).
    #[arg(long = "dump-timeout", env = "BAK_DB_DUMP_TIMEOUT")]
    pub dump_timeout: Option<String>,

    /// Dump PostgreSQL.
    #[arg(long = "postgres", env = "BAK_DB_POSTGRES", num_args = 0..=1, default_missing_value = "true")]
    pub postgres: Option<String>,
    /// Where to exec: `[TYPE/]NAME` as `kubectl exec` takes it (NAME, pod/, deploy/, sts/, rs/,
    /// ds/, job/, rc/, svc/ …).
    #[arg(long = "postgres-exec-resource", env = "BAK_DB_POSTGRES_EXEC_RESOURCE")]
    pub postgres_exec_resource: Option<String>,
    #[arg(
        long = "postgres-exec-container",
        env = "BAK_DB_POSTGRES_EXEC_CONTAINER"
    )]
    pub postgres_exec_container: Option<String>,
    #[arg(long = "postgres-dump-file", env = "BAK_DB_POSTGRES_DUMP_FILE")]
    pub postgres_dump_file: Option<String>,
    #[arg(long = "postgres-host", env = "BAK_DB_POSTGRES_HOST")]
    pub postgres_host: Option<String>,
    #[arg(long = "postgres-port", env = "BAK_DB_POSTGRES_PORT")]
    pub postgres_port: Option<String>,
    #[arg(long = "postgres-user", env = "BAK_DB_POSTGRES_USER")]
    pub postgres_user: Option<String>,
    /// Prefer the variable: a flag shows in the process list.
    #[arg(
        long = "postgres-password",
        env = "BAK_DB_POSTGRES_PASSWORD",
        hide_env_values = true
    )]
    pub postgres_password: Option<String>,
    #[arg(long = "postgres-db", env = "BAK_DB_POSTGRES_DB")]
    pub postgres_db: Option<String>,

    /// Dump MySQL/MariaDB.
    #[arg(long = "mysql", env = "BAK_DB_MYSQL", num_args = 0..=1, default_missing_value = "true")]
    pub mysql: Option<String>,
    /// Where to exec: `[TYPE/]NAME` as `kubectl exec` takes it.
    #[arg(long = "mysql-exec-resource", env = "BAK_DB_MYSQL_EXEC_RESOURCE")]
    pub mysql_exec_resource: Option<String>,
    #[arg(long = "mysql-exec-container", env = "BAK_DB_MYSQL_EXEC_CONTAINER")]
    pub mysql_exec_container: Option<String>,
    #[arg(long = "mysql-dump-file", env = "BAK_DB_MYSQL_DUMP_FILE")]
    pub mysql_dump_file: Option<String>,
    #[arg(long = "mysql-host", env = "BAK_DB_MYSQL_HOST")]
    pub mysql_host: Option<String>,
    #[arg(long = "mysql-port", env = "BAK_DB_MYSQL_PORT")]
    pub mysql_port: Option<String>,
    #[arg(long = "mysql-user", env = "BAK_DB_MYSQL_USER")]
    pub mysql_user: Option<String>,
    /// Prefer the variable: a flag shows in the process list.
    #[arg(
        long = "mysql-password",
        env = "BAK_DB_MYSQL_PASSWORD",
        hide_env_values = true
    )]
    pub mysql_password: Option<String>,
    #[arg(long = "mysql-db", env = "BAK_DB_MYSQL_DB")]
    pub mysql_db: Option<String>,
    #[arg(
        long = "mysql-default-character-set",
        env = "BAK_DB_MYSQL_DEFAULT_CHARACTER_SET"
    )]
    pub mysql_default_character_set: Option<String>,

    /// Take a node-level lock slot before dumping.
    #[arg(long = "flock", env = "BAK_FLOCK", num_args = 0..=1, default_missing_value = "true")]
    pub flock: Option<String>,
    /// Number of lock slots per node (default: the node's CPUs / 2, at least 1; not this pod's
    /// CPU limit).
    #[arg(long = "flock-count", env = "BAK_FLOCK_COUNT")]
    pub flock_count: Option<String>,
    /// Directory of the lock slot files (a hostPath mount).
    #[arg(long = "flock-dir", env = "BAK_FLOCK_DIR")]
    pub flock_dir: Option<String>,
    /// Seconds to wait for a free slot.
    #[arg(long = "flock-timeout-sec", env = "BAK_FLOCK_TIMEOUT_SEC")]
    pub flock_timeout_sec: Option<String>,

    /// Wait for another run's per-PVC lease instead of failing fast.
    #[arg(long = "lease-wait", env = "BAK_LEASE_WAIT", num_args = 0..=1, default_missing_value = "true")]
    pub lease_wait: Option<String>,
    /// How long to wait for the per-PVC lease, with a unit.
    #[arg(long = "lease-wait-timeout", env = "BAK_LEASE_WAIT_TIMEOUT")]
    pub lease_wait_timeout: Option<String>,
    /// Lease duration; the holder renews it at a third of this, with a unit.
    #[arg(long = "lease-duration", env = "BAK_LEASE_DURATION")]
    pub lease_duration: Option<String>,

    /// Time zone of the snapshot name and every date label (IANA name; default: `TZ`, else UTC).
    #[arg(long = "tz", env = "BAK_TZ")]
    pub tz: Option<String>,

    /// Webhook to notify after a run (repeatable; the variable takes a comma-separated list).
    /// A secret: prefer the variable from a Secret, a flag shows in the process list.
    #[arg(
        long = "notify-url",
        env = "BAK_NOTIFY_URL",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub notify_url: Vec<String>,
    /// When to notify: failure (default) or always.
    #[arg(long = "notify-on", env = "BAK_NOTIFY_ON")]
    pub notify_on: Option<String>,
    /// Notification body: json (default) or slack.
    #[arg(long = "notify-format", env = "BAK_NOTIFY_FORMAT")]
    pub notify_format: Option<String>,
    /// healthchecks.io-style ping URL (`/start`, then the URL itself or `/fail`). A secret.
    #[arg(
        long = "healthcheck-url",
        env = "BAK_HEALTHCHECK_URL",
        hide_env_values = true
    )]
    pub healthcheck_url: Option<String>,
    /// Timeout of one notification request, with a unit (default 10s).
    #[arg(long = "notify-timeout", env = "BAK_NOTIFY_TIMEOUT")]
    pub notify_timeout: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// restore

/// `restore`: a kind of restore as a subcommand, or the original's `restore SNAPSHOT -p NEW`.
#[derive(Debug, Default, Clone, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    override_usage = "backup-ns restore pvc [SNAPSHOT|latest] --to NEW_PVC [OPTIONS]\n       \
                      backup-ns restore SNAPSHOT -p NEW_PVC [OPTIONS]   (the original's syntax)",
    after_help = "`restore SNAPSHOT -p NEW_PVC` is the original's syntax for \
                  `restore pvc SNAPSHOT --to NEW_PVC`; for `latest` or --before use `restore pvc`."
)]
pub struct RestoreArgs {
    #[command(subcommand)]
    pub command: Option<RestoreCommand>,
    /// The original's form: the VolumeSnapshot to restore.
    pub snapshot: Option<String>,
    /// The original's form: the new PVC to create (no variable: `BAK_PVC_NAME` names the
    /// snapshotted PVC everywhere else).
    #[arg(short = 'p', long = "pvc")]
    pub new_pvc: Option<String>,
    #[command(flatten)]
    pub common: RestorePvcCommon,
}

#[derive(Debug, Clone, Subcommand)]
pub enum RestoreCommand {
    /// A new PVC whose dataSource is the snapshot (storage class, access modes, volumeMode and
    /// size from the snapshotted PVC when it still exists).
    Pvc(Box<RestorePvcArgs>),
    /// The dump inside the snapshot back into the live database: a temporary PVC from the
    /// snapshot, a helper pod from the database container's image, the dump streamed into
    /// the database (PostgreSQL: one transaction). Asks first; --yes elsewhere.
    Dump(Box<RestoreDumpArgs>),
}

/// `restore dump SNAPSHOT|latest`.
#[derive(Debug, Default, Clone, Args)]
pub struct RestoreDumpArgs {
    #[command(flatten)]
    pub from: FromSnapshotArgs,
    /// Restore into this database (created when missing) instead of over the live one.
    #[arg(long = "into-database", env = "BAK_RESTORE_INTO_DATABASE")]
    pub into_database: Option<String>,
    /// Do not ask; required when stdin is not a terminal.
    #[arg(short = 'y', long, env = "BAK_YES", num_args = 0..=1, default_missing_value = "true")]
    pub yes: Option<String>,
    /// How long the whole restore may take, the helper pod's start included, with a unit.
    #[arg(long, env = "BAK_RESTORE_DUMP_TIMEOUT")]
    pub timeout: Option<String>,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `restore pvc`.
#[derive(Debug, Default, Clone, Args)]
pub struct RestorePvcArgs {
    /// The VolumeSnapshot: a name, or `latest` (the newest ready snapshot of --pvc).
    pub snapshot: Option<String>,
    /// The PVC to create; it must not exist.
    #[arg(long = "to", env = "BAK_RESTORE_TO")]
    pub to: Option<String>,
    /// The snapshotted PVC whose snapshots `latest` and --before choose from.
    #[arg(long, env = "BAK_PVC_NAME")]
    pub pvc: Option<String>,
    /// The newest ready snapshot of --pvc taken before this time (RFC 3339, or a date:
    /// midnight starting it in --tz).
    #[arg(long, env = "BAK_RESTORE_BEFORE")]
    pub before: Option<String>,
    /// Time zone of a --before date (IANA name; default: `TZ`, else UTC).
    #[arg(long = "tz", env = "BAK_TZ")]
    pub tz: Option<String>,
    #[command(flatten)]
    pub common: RestorePvcCommon,
}

/// Flags of both forms of `restore pvc`.
#[derive(Debug, Default, Clone, Args)]
pub struct RestorePvcCommon {
    /// Namespace of the snapshot and the new PVC (default: the kube context's).
    #[arg(short = 'n', long, env = "BAK_NAMESPACE")]
    pub namespace: Option<String>,
    /// StorageClass of the new PVC (default: the snapshotted PVC's, else the cluster default).
    #[arg(long, env = "BAK_RESTORE_STORAGE_CLASS")]
    pub storage_class: Option<String>,
    /// Access modes of the new PVC, comma-separated (default: the snapshotted PVC's, else
    /// ReadWriteOnce).
    #[arg(long, env = "BAK_RESTORE_ACCESS_MODE")]
    pub access_mode: Option<String>,
    /// Size of the new PVC, a quantity such as 20Gi (default: the larger of the snapshot's
    /// restoreSize and the snapshotted PVC's request; never smaller than restoreSize).
    #[arg(long, env = "BAK_RESTORE_SIZE")]
    pub size: Option<String>,
    /// Wait until the PVC is Bound (a WaitForFirstConsumer class binds when a pod uses it).
    #[arg(long, env = "BAK_RESTORE_WAIT", num_args = 0..=1, default_missing_value = "true")]
    pub wait: Option<String>,
    /// How long --wait waits, with a unit.
    #[arg(long, env = "BAK_RESTORE_TIMEOUT")]
    pub timeout: Option<String>,
    /// Print the PVC that would be created; create nothing.
    #[arg(long, env = "BAK_DRY_RUN", num_args = 0..=1, default_missing_value = "true")]
    pub dry_run: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}
