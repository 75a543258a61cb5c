//! Prometheus metrics of a run, in the text exposition format (0.0.4) that the Pushgateway and
//! node-exporter's textfile collector read, written by the `prometheus` crate's encoder (never
//! formatted by hand).
//!
//! A nightly CronJob that fails quietly is the usual way backups are lost; these metrics let
//! Prometheus alert on it. Each run builds its own registry ([`Metrics`]): `create` one per PVC
//! ([`Metrics::create`]), the retention commands one per run ([`Metrics::retention`]), and
//! `status -o prometheus` the cluster-wide freshness gauges ([`freshness`]). A command hands its
//! registry over with [`emit`]; [`crate::commands::run`] writes it, once, at the end, to the
//! sinks of `BAK_METRICS_PUSHGATEWAY` and `BAK_METRICS_TEXTFILE` ([`Sinks`]). A sink that fails
//! is logged (URL redacted) and never changes the exit status.
//!
//! A push replaces its group (`PUT`), and a textfile the previous one, so every value describes
//! the last run: `backup_ns_attempts_total` is 1 for the outcome of that run and 0 for the
//! others; a failed attempt keeps the last success from the PVC's record.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::cli::GlobalArgs;
use crate::http;
use crate::record::Outcome;
use crate::settings::Raw;
use crate::Result;

/// The Pushgateway `job` of `create`'s pushes; other commands push as `backup-ns-<command>`,
/// so a `status` or `prune` push never replaces a PVC's group or each other's.
pub const JOB: &str = "backup-ns";

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// One documented metric: its HELP text and the README's row.
#[derive(Debug, Clone, Copy)]
pub struct MetricDoc {
    pub name: &'static str,
    pub kind: &'static str,
    pub labels: &'static str,
    pub written_by: &'static str,
    pub help: &'static str,
}

pub const LAST_SUCCESS: &str = "backup_ns_last_success_timestamp_seconds";
pub const LAST_ATTEMPT: &str = "backup_ns_last_attempt_timestamp_seconds";
pub const ATTEMPTS: &str = "backup_ns_attempts_total";
pub const PHASE_DURATION: &str = "backup_ns_phase_duration_seconds";
pub const DUMP_BYTES: &str = "backup_ns_dump_bytes";
pub const SNAPSHOTS: &str = "backup_ns_snapshots";
pub const NEWEST_READY: &str = "backup_ns_newest_ready_snapshot_timestamp_seconds";
pub const UNLABELLED: &str = "backup_ns_retention_unlabelled_total";
pub const MARKED: &str = "backup_ns_retention_marked_total";
pub const DELETED: &str = "backup_ns_retention_deleted_total";
pub const FAILED: &str = "backup_ns_retention_failed_total";

/// Every metric, in the README's order.
pub const DOCS: &[MetricDoc] = &[
    MetricDoc {
        name: LAST_SUCCESS,
        kind: "gauge",
        labels: "namespace, pvc",
        written_by: "create, status",
        help: "Start of the PVC's last successful backup (Unix seconds); a failed attempt \
               repeats the previous one from the PVC's record.",
    },
    MetricDoc {
        name: LAST_ATTEMPT,
        kind: "gauge",
        labels: "namespace, pvc",
        written_by: "create, status",
        help: "Start of the PVC's last backup attempt, whatever its outcome (Unix seconds).",
    },
    MetricDoc {
        name: ATTEMPTS,
        kind: "counter",
        labels: "namespace, pvc, outcome",
        written_by: "create, status",
        help: "Backup attempts of the last run by outcome (succeeded, failed, skipped): 1 for \
               its outcome, 0 for the others.",
    },
    MetricDoc {
        name: PHASE_DURATION,
        kind: "gauge",
        labels: "namespace, pvc, phase",
        written_by: "create",
        help: "Seconds each phase of the last backup took (phase=total: the whole run).",
    },
    MetricDoc {
        name: DUMP_BYTES,
        kind: "gauge",
        labels: "namespace, pvc",
        written_by: "create",
        help: "Size of the last database dump in bytes (absent for volume-only backups).",
    },
    MetricDoc {
        name: SNAPSHOTS,
        kind: "gauge",
        labels: "namespace, pvc, class, state",
        written_by: "status",
        help: "Snapshots of the PVC: ready ones by retention class (daily, weekly, monthly, \
               days), and all of them by state (class any; state ready, pending, failed).",
    },
    MetricDoc {
        name: NEWEST_READY,
        kind: "gauge",
        labels: "namespace, pvc",
        written_by: "status",
        help: "Creation time of the PVC's newest ready snapshot (Unix seconds).",
    },
    MetricDoc {
        name: UNLABELLED,
        kind: "counter",
        labels: "command, namespace",
        written_by: "prune, retain",
        help: "Snapshots that lost period labels in the last retention run.",
    },
    MetricDoc {
        name: MARKED,
        kind: "counter",
        labels: "command, namespace",
        written_by: "prune, mark-and-delete",
        help: "Snapshots marked with delete-after in the last retention run.",
    },
    MetricDoc {
        name: DELETED,
        kind: "counter",
        labels: "command, namespace",
        written_by: "prune, mark-and-delete",
        help: "Snapshots deleted in the last retention run.",
    },
    MetricDoc {
        name: FAILED,
        kind: "counter",
        labels: "command, namespace",
        written_by: "prune, retain, mark-and-delete",
        help: "Changes and deletions that failed in the last retention run.",
    },
];

fn help(name: &str) -> &'static str {
    DOCS.iter()
        .find(|d| d.name == name)
        .map(|d| d.help)
        .unwrap_or_else(|| panic!("{name} is not documented in metrics::DOCS"))
}

/// The README's metrics table (section "Monitoring").
pub fn readme_table() -> String {
    let mut out =
        String::from("| metric | type | labels | written by | meaning |\n|---|---|---|---|---|\n");
    for d in DOCS {
        out += &format!(
            "| `{}` | {} | {} | {} | {} |\n",
            d.name,
            d.kind,
            d.labels,
            d.written_by,
            d.help.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
    out
}

/// The registry of one run and where a push of it goes.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    job: String,
    /// Grouping labels after `job`; a pushed metric carries none of them itself (the
    /// Pushgateway adds them), the textfile's carry all.
    grouping: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("job", &self.job)
            .field("grouping", &self.grouping)
            .finish()
    }
}

/// What `create` reports about one attempt (see [`Metrics::create`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateMetrics {
    pub namespace: String,
    pub pvc: String,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub outcome: Outcome,
    /// The PVC's last success before this attempt (its record's `last-success`), so that the
    /// push of a failed attempt, which replaces the group, still says when the last good
    /// backup was. Ignored when this attempt succeeded.
    pub previous_success: Option<DateTime<Utc>>,
    /// `(phase, seconds)` in the order they ran, e.g. `("dump", 41.2)`; `total` is added.
    pub phases: Vec<(String, f64)>,
    /// Bytes of the dump, when a database was dumped.
    pub dump_bytes: Option<u64>,
}

/// What a retention run changed (applied, not planned).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionCounts {
    pub unlabelled: u64,
    pub marked: u64,
    pub deleted: u64,
    pub failed: u64,
}

impl RetentionCounts {
    /// `(unlabelled, marked)` of a plan's label changes whose patch did not fail: a change
    /// that removes a daily, weekly or monthly label unlabels its snapshot, one that sets
    /// `delete-after` marks it.
    pub fn label_changes(
        changes: &[crate::retention::LabelChange],
        failed: impl Fn(&crate::retention::Target) -> bool,
    ) -> (u64, u64) {
        use crate::labels::{DAILY, DELETE_AFTER, MONTHLY, WEEKLY};
        let (mut unlabelled, mut marked) = (0, 0);
        for c in changes.iter().filter(|c| !failed(&c.target)) {
            let removes = |e: &&crate::retention::LabelEdit| {
                [DAILY, WEEKLY, MONTHLY].contains(&e.label.as_str()) && e.to.is_none()
            };
            if c.edits.iter().any(|e| removes(&e)) {
                unlabelled += 1;
            }
            if c.edits
                .iter()
                .any(|e| e.label == DELETE_AFTER && e.to.is_some())
            {
                marked += 1;
            }
        }
        (unlabelled, marked)
    }
}

/// One (namespace, PVC) of `status`, for [`freshness`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FreshnessRow {
    pub namespace: String,
    pub pvc: String,
    pub last_success: Option<DateTime<Utc>>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_outcome: Option<Outcome>,
    pub newest_ready: Option<DateTime<Utc>>,
    /// `(class, state, count)`: class `daily`, `weekly`, `monthly` or `days`; state `ready`,
    /// `pending` or `failed`.
    pub snapshots: Vec<(String, String, u64)>,
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

const OUTCOMES: [Outcome; 3] = [Outcome::Succeeded, Outcome::Failed, Outcome::Skipped];

/// Registers metric families on one registry; names and labels are fixed by this module, so
/// registering cannot fail except by a bug here, which the tests catch.
struct Builder {
    registry: Registry,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            registry: Registry::new(),
        }
    }

    fn gauge(&self, name: &str, labels: &[&str]) -> GaugeVec {
        let g = GaugeVec::new(Opts::new(name, help(name)), labels).expect("valid gauge");
        self.registry
            .register(Box::new(g.clone()))
            .expect("registered once");
        g
    }

    fn counter(&self, name: &str, labels: &[&str]) -> IntCounterVec {
        let c = IntCounterVec::new(Opts::new(name, help(name)), labels).expect("valid counter");
        self.registry
            .register(Box::new(c.clone()))
            .expect("registered once");
        c
    }
}

impl Metrics {
    /// The metrics of one `create` attempt, labelled and grouped by namespace and PVC.
    pub fn create(m: &CreateMetrics) -> Metrics {
        let b = Builder::new();
        let (ns, pvc) = (m.namespace.as_str(), m.pvc.as_str());
        b.gauge(LAST_ATTEMPT, &["namespace", "pvc"])
            .with_label_values(&[ns, pvc])
            .set(seconds(m.started));
        let last_success = match m.outcome {
            Outcome::Succeeded => Some(m.started),
            _ => m.previous_success,
        };
        let success = b.gauge(LAST_SUCCESS, &["namespace", "pvc"]);
        if let Some(t) = last_success {
            success.with_label_values(&[ns, pvc]).set(seconds(t));
        }
        let attempts = b.counter(ATTEMPTS, &["namespace", "pvc", "outcome"]);
        for o in OUTCOMES {
            attempts
                .with_label_values(&[ns, pvc, o.as_str()])
                .inc_by(u64::from(o == m.outcome));
        }
        let phases = b.gauge(PHASE_DURATION, &["namespace", "pvc", "phase"]);
        for (phase, secs) in &m.phases {
            phases.with_label_values(&[ns, pvc, phase]).set(*secs);
        }
        let total = (m.finished - m.started).num_milliseconds().max(0) as f64 / 1000.0;
        phases.with_label_values(&[ns, pvc, "total"]).set(total);
        let dump = b.gauge(DUMP_BYTES, &["namespace", "pvc"]);
        if let Some(bytes) = m.dump_bytes {
            dump.with_label_values(&[ns, pvc]).set(bytes as f64);
        }
        Metrics {
            registry: b.registry,
            job: JOB.to_owned(),
            grouping: vec![("namespace", ns.to_owned()), ("pvc", pvc.to_owned())],
        }
    }

    /// The counts of one retention run of `command` over `namespace` (`None`: every
    /// namespace). Pushed as job `backup-ns-<command>`, grouped by namespace (empty for every
    /// namespace) and an empty PVC.
    pub fn retention(command: &str, namespace: Option<&str>, c: RetentionCounts) -> Metrics {
        let b = Builder::new();
        let ns = namespace.unwrap_or("");
        for (name, value) in [
            (UNLABELLED, c.unlabelled),
            (MARKED, c.marked),
            (DELETED, c.deleted),
            (FAILED, c.failed),
        ] {
            b.counter(name, &["command", "namespace"])
                .with_label_values(&[command, ns])
                .inc_by(value);
        }
        Metrics {
            registry: b.registry,
            job: format!("{JOB}-{command}"),
            grouping: vec![("namespace", ns.to_owned()), ("pvc", String::new())],
        }
    }

    /// The freshness gauges of `status`: one set per row. Pushed as job `backup-ns-status`
    /// with no further grouping labels (the rows span namespaces).
    pub fn freshness(rows: &[FreshnessRow]) -> Metrics {
        let b = Builder::new();
        let success = b.gauge(LAST_SUCCESS, &["namespace", "pvc"]);
        let attempt = b.gauge(LAST_ATTEMPT, &["namespace", "pvc"]);
        let attempts = b.counter(ATTEMPTS, &["namespace", "pvc", "outcome"]);
        let newest = b.gauge(NEWEST_READY, &["namespace", "pvc"]);
        let snapshots = b.gauge(SNAPSHOTS, &["namespace", "pvc", "class", "state"]);
        for r in rows {
            let key = [r.namespace.as_str(), r.pvc.as_str()];
            if let Some(t) = r.last_success {
                success.with_label_values(&key).set(seconds(t));
            }
            if let Some(t) = r.last_attempt {
                attempt.with_label_values(&key).set(seconds(t));
            }
            if let Some(last) = r.last_outcome {
                for o in OUTCOMES {
                    attempts
                        .with_label_values(&[key[0], key[1], o.as_str()])
                        .inc_by(u64::from(o == last));
                }
            }
            if let Some(t) = r.newest_ready {
                newest.with_label_values(&key).set(seconds(t));
            }
            for (class, state, n) in &r.snapshots {
                snapshots
                    .with_label_values(&[key[0], key[1], class, state])
                    .set(*n as f64);
            }
        }
        Metrics {
            registry: b.registry,
            job: format!("{JOB}-status"),
            grouping: Vec::new(),
        }
    }

    /// The Pushgateway job.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Every sample with all its labels: the textfile, and what `status -o prometheus` prints.
    pub fn text(&self) -> String {
        encode(&self.registry.gather())
    }

    /// The body of a push: the grouping labels left out of every sample (the Pushgateway adds
    /// them from the path, and rejects a sample whose own value differs).
    pub fn push_body(&self) -> String {
        let mut families = self.registry.gather();
        for family in &mut families {
            for metric in family.mut_metric() {
                let labels = metric
                    .take_label()
                    .into_iter()
                    .filter(|l| !self.grouping.iter().any(|(k, _)| l.name() == *k))
                    .collect();
                metric.set_label(labels);
            }
        }
        encode(&families)
    }

    /// `/metrics/job/<job>/namespace/<ns>/pvc/<pvc>`: each value that is empty or not plain
    /// URL text in the Pushgateway's base64 form (`/pvc@base64/<url-safe base64>`, `=` for
    /// the empty string).
    pub fn push_path(&self) -> String {
        let mut path = String::from("/metrics");
        for (k, v) in std::iter::once(("job", self.job.as_str()))
            .chain(self.grouping.iter().map(|(k, v)| (*k, v.as_str())))
        {
            let plain = !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
            if plain {
                path += &format!("/{k}/{v}");
            } else if v.is_empty() {
                path += &format!("/{k}@base64/=");
            } else {
                path += &format!("/{k}@base64/{}", http::base64(v.as_bytes(), http::URL_SAFE));
            }
        }
        path
    }
}

fn encode(families: &[MetricFamily]) -> String {
    let mut buf = Vec::new();
    // Writing to a Vec fails only on an invalid family, which our fixed names never are.
    if let Err(e) = TextEncoder::new().encode(families, &mut buf) {
        tracing::error!("cannot encode the metrics: {e}");
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// `status -o prometheus`: the freshness gauges of every row, in the text format.
pub fn freshness(rows: &[FreshnessRow]) -> String {
    Metrics::freshness(rows).text()
}

// ---------------------------------------------------------------------------------------------
// Handing a run's metrics to `run`

tokio::task_local! {
    static EMITTED: Arc<Mutex<Option<Metrics>>>;
}

/// Hands the run's metrics to the sinks, which [`crate::commands::run`] writes when the command
/// has finished. Outside [`collect`] (a unit test calling a command) it does nothing; a second
/// call replaces the first.
pub fn emit(metrics: Metrics) {
    let _ = EMITTED.try_with(|slot| {
        if let Ok(mut slot) = slot.lock() {
            *slot = Some(metrics);
        }
    });
}

/// Runs `f`, and returns its output with what it [`emit`]ted.
pub async fn collect<F: Future>(f: F) -> (F::Output, Option<Metrics>) {
    let slot = Arc::new(Mutex::new(None));
    let out = EMITTED.scope(slot.clone(), f).await;
    let emitted = slot.lock().ok().and_then(|mut s| s.take());
    (out, emitted)
}

// ---------------------------------------------------------------------------------------------
// Sinks

/// Where a run's metrics go: `BAK_METRICS_PUSHGATEWAY` and `BAK_METRICS_TEXTFILE`.
#[derive(Debug, Clone, Default)]
pub struct Sinks {
    pub pushgateway: Option<String>,
    pub textfile: Option<PathBuf>,
    /// Per push attempt.
    pub timeout: Duration,
    pub retry: http::Retry,
}

impl Sinks {
    /// Validates the global flags; a bad value is a usage error before the command starts.
    pub fn from_args(g: &GlobalArgs) -> Result<Sinks> {
        let raw = Raw::of("BAK_METRICS_PUSHGATEWAY", &g.metrics_pushgateway);
        let pushgateway = match raw.get()? {
            None => None,
            Some(url) => {
                http::validate_url(url).map_err(|reason| raw.err(&http::redact(url), reason))?;
                Some(url.to_owned())
            }
        };
        let raw = Raw::of("BAK_METRICS_TEXTFILE", &g.metrics_textfile);
        let textfile = match raw.get()? {
            None => None,
            Some(p) => {
                if !p.starts_with('/') || p.ends_with('/') || p.contains(['\n', '\0']) {
                    return Err(raw.err(p, "expected an absolute file path"));
                }
                Some(PathBuf::from(p))
            }
        };
        let timeout = Raw::of("BAK_METRICS_TIMEOUT", &g.metrics_timeout).duration_or("10s")?;
        if timeout.is_zero() {
            return Err(Raw::of("BAK_METRICS_TIMEOUT", &g.metrics_timeout)
                .err("0", "must be greater than zero"));
        }
        Ok(Sinks {
            pushgateway,
            textfile,
            timeout,
            retry: http::Retry::default(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.pushgateway.is_none() && self.textfile.is_none()
    }

    /// Writes the metrics to every sink; failures are logged (URLs redacted) and returned as
    /// `false`, never as an error: metrics report on a run, they do not decide its outcome.
    pub async fn write(&self, m: &Metrics) -> bool {
        let mut ok = true;
        if let Some(path) = &self.textfile {
            match write_textfile(path, &m.text()) {
                Ok(()) => tracing::debug!("metrics written to {}", path.display()),
                Err(e) => {
                    ok = false;
                    tracing::warn!(
                        "cannot write the metrics to {} (BAK_METRICS_TEXTFILE): {e}",
                        path.display()
                    );
                }
            }
        }
        if let Some(url) = &self.pushgateway {
            match push(url, m, self.timeout, self.retry).await {
                Ok(reply) => tracing::debug!(
                    "metrics pushed to {} (HTTP {})",
                    http::redact(&push_url(url, m)),
                    reply.status
                ),
                Err(e) => {
                    ok = false;
                    tracing::warn!(
                        "cannot push the metrics (BAK_METRICS_PUSHGATEWAY): {e}; the run's \
                         outcome is unchanged"
                    );
                }
            }
        }
        ok
    }
}

/// The push URL: the Pushgateway's base URL (any path prefix kept) and [`Metrics::push_path`].
pub fn push_url(base: &str, m: &Metrics) -> String {
    format!("{}{}", base.trim_end_matches('/'), m.push_path())
}

/// `PUT`s the metrics to the Pushgateway at `base`, replacing their group.
pub async fn push(
    base: &str,
    m: &Metrics,
    timeout: Duration,
    retry: http::Retry,
) -> std::result::Result<http::Reply, http::HttpError> {
    http::send_with(
        ::http::Method::PUT,
        &push_url(base, m),
        // The grouping key in the path says which push failed; it is no secret.
        http::Shown::Redacted,
        CONTENT_TYPE,
        m.push_body(),
        timeout,
        retry,
    )
    .await
}

/// Writes `text` to `path` atomically for the textfile collector, which may read at any moment:
/// a temporary file in the same directory (a rename is atomic only within one filesystem),
/// mode 0644 so node-exporter's user can read it, flushed, then renamed over `path`.
pub fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let tmp_name = format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id());
    let tmp = match dir {
        Some(d) => d.join(tmp_name),
        None => PathBuf::from(tmp_name),
    };
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        // The umask may have taken bits off the mode.
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests;
