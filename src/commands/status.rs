//! `backup-ns status`: which PVCs have no good backup since yesterday, in one command a CronJob
//! or a person can alert on.
//!
//! A failed nightly backup leaves an Event that expires within the hour and a Job that gets
//! cleaned up; nothing else said "this PVC has had no backup for three days". `status` answers
//! it from two paged LISTs, whatever the number of namespaces: the snapshots carrying the
//! `backup-ns.sh/pvc` label and the PVCs, whose annotations hold the record of the last attempt
//! ([`crate::record`], written by `create` — also for failures that never got to a snapshot).
//!
//! [`plan`] is pure (records + claims + now → one [`Row`] per backed-up PVC) and unit-tested;
//! the rows are plain data that the table, JSON and YAML print and that metrics are made of.
//! What a snapshot's state means is [`crate::state`]'s; nothing here re-derives readiness.
//!
//! A row is **stale** when its newest ready backup is older than `--max-age` (or there is none)
//! and **failed** when its last recorded attempt failed; either makes the exit status 1. A PVC
//! that no longer exists but left snapshots is listed as **gone**: there is nothing left to back
//! up, so it does not fail the run (alerting on it for the year its monthly snapshots live would
//! teach people to ignore the alert).

use std::collections::BTreeMap;
use std::io::IsTerminal;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::cli::{Output, StatusArgs};
use crate::labels::{self, Retain};
use crate::metrics::FreshnessRow;
use crate::record::{Outcome, Record};
use crate::retention::SnapshotRecord;
use crate::{ExitStatus, Result};

use super::api::Requests;
use super::gather::{self, Scope};
use super::list::{age, columns, yaml};
use super::options::StatusOptions;
use super::report_error;

/// What `status` needs to know about one PVC: that it exists, and its record.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub namespace: String,
    pub name: String,
    pub record: Record,
}

/// The verdict on one PVC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Health {
    /// A ready backup newer than `--max-age`, and the last attempt did not fail.
    Ok,
    /// No ready backup, or the newest is older than `--max-age`.
    Stale,
    /// The last recorded attempt failed (wins over stale).
    Failed,
    /// The PVC no longer exists; only its snapshots are left. Does not fail the run.
    Gone,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Stale => "stale",
            Health::Failed => "failed",
            Health::Gone => "gone",
        }
    }

    /// Whether this row makes the exit status 1.
    pub fn alerts(self) -> bool {
        matches!(self, Health::Stale | Health::Failed)
    }
}

/// One (namespace, PVC) with backups or a backup record; also the JSON/YAML shape (flat, scalar
/// values only) and the input of the freshness metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub namespace: String,
    pub pvc: String,
    /// The PVC was in the PVC LIST; `false`: only its snapshots are left.
    pub pvc_exists: bool,
    /// The newest ready snapshot (by its time; ties by name) and its time.
    pub newest_ready: Option<String>,
    pub newest_ready_time: Option<DateTime<Utc>>,
    /// From the PVC's record: start of the last attempt, how it ended, its error, how long it
    /// took, the snapshot it created, and the start of the last successful one.
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_outcome: Option<Outcome>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_duration_seconds: Option<f64>,
    pub last_snapshot: Option<String>,
    /// Ready snapshots carrying the daily, weekly, monthly label (one snapshot counts in each
    /// class it carries), and ready `retain=days` snapshots.
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
    pub days: usize,
    /// Snapshots by state ([`crate::state::SnapshotState`]); terminating ones are not counted.
    pub ready: usize,
    pub pending: usize,
    pub failed: usize,
    /// The earliest valid `delete-after` day among the snapshots the sweep may delete (with a
    /// `retain` label, not pinned), and that snapshot.
    pub next_deletion: Option<NaiveDate>,
    pub next_deletion_snapshot: Option<String>,
    /// The latest `backup-ns.sh/verified` and `backup-ns.sh/verify-failed` days among its
    /// snapshots (written by `verify`).
    pub verified: Option<NaiveDate>,
    pub verify_failed: Option<NaiveDate>,
    /// No ready backup newer than `--max-age`.
    pub stale: bool,
    /// The last recorded attempt failed.
    pub attempt_failed: bool,
    pub status: Health,
}

impl Row {
    fn new(namespace: &str, pvc: &str) -> Row {
        Row {
            namespace: namespace.to_owned(),
            pvc: pvc.to_owned(),
            pvc_exists: false,
            newest_ready: None,
            newest_ready_time: None,
            last_attempt: None,
            last_outcome: None,
            last_success: None,
            last_error: None,
            last_duration_seconds: None,
            last_snapshot: None,
            daily: 0,
            weekly: 0,
            monthly: 0,
            days: 0,
            ready: 0,
            pending: 0,
            failed: 0,
            next_deletion: None,
            next_deletion_snapshot: None,
            verified: None,
            verify_failed: None,
            stale: true,
            attempt_failed: false,
            status: Health::Stale,
        }
    }

    fn add(&mut self, s: &SnapshotRecord) {
        if s.state.is_terminating() {
            return;
        }
        let has = |k: &str| s.labels.contains_key(k);
        if s.state.is_ready() {
            self.ready += 1;
            self.daily += usize::from(has(labels::DAILY));
            self.weekly += usize::from(has(labels::WEEKLY));
            self.monthly += usize::from(has(labels::MONTHLY));
            let days = s.labels.get(labels::RETAIN).map(String::as_str);
            self.days += usize::from(days == Some(Retain::Days.as_str()));
            if let Some(t) = s.time {
                let newer = match (self.newest_ready_time, &self.newest_ready) {
                    (Some(best), Some(name)) => (t, &s.name) > (best, name),
                    _ => true,
                };
                if newer {
                    self.newest_ready_time = Some(t);
                    self.newest_ready = Some(s.name.clone());
                }
            }
        } else if s.state.is_pending() {
            self.pending += 1;
        } else if s.state.is_failed() {
            self.failed += 1;
        }
        let date = |k: &str| s.labels.get(k).and_then(|v| labels::parse_daily(v));
        if has(labels::RETAIN) && !has(labels::PIN) {
            if let Some(d) = date(labels::DELETE_AFTER) {
                let earlier = match (self.next_deletion, &self.next_deletion_snapshot) {
                    (Some(best), Some(name)) => (d, &s.name) < (best, name),
                    _ => true,
                };
                if earlier {
                    self.next_deletion = Some(d);
                    self.next_deletion_snapshot = Some(s.name.clone());
                }
            }
        }
        self.verified = self.verified.max(date(labels::VERIFIED));
        self.verify_failed = self.verify_failed.max(date(labels::VERIFY_FAILED));
    }

    fn record(&mut self, r: &Record) {
        self.pvc_exists = true;
        self.last_attempt = r.last_attempt;
        self.last_outcome = r.last_outcome;
        self.last_success = r.last_success;
        self.last_error = r.last_error.clone();
        self.last_duration_seconds = r.last_duration;
        self.last_snapshot = r.last_snapshot.clone();
    }

    fn judge(&mut self, max_age: Duration, now: DateTime<Utc>) {
        self.stale = self.newest_ready_time.is_none_or(|t| now - t > max_age);
        self.attempt_failed = self.last_outcome == Some(Outcome::Failed);
        self.status = if self.attempt_failed {
            Health::Failed
        } else if !self.pvc_exists {
            Health::Gone
        } else if self.stale {
            Health::Stale
        } else {
            Health::Ok
        };
    }
}

/// One row per (namespace, PVC) that has snapshots or a record, sorted by namespace and PVC.
///
/// `snapshots` were read at `now` (their states); `claims` are the PVCs in scope. `named` is
/// `--pvc`: only that PVC, listed even when it has neither backups nor a record (you named it,
/// so "no backup" is stale rather than silence); otherwise a PVC without either is not ours
/// and not listed.
pub fn plan(
    snapshots: &[SnapshotRecord],
    claims: &[Claim],
    named: Option<&str>,
    max_age: Duration,
    now: DateTime<Utc>,
) -> Vec<Row> {
    let mut rows: BTreeMap<(&str, &str), Row> = BTreeMap::new();
    for s in snapshots {
        if named.is_some_and(|n| n != s.pvc) {
            continue;
        }
        rows.entry((&s.namespace, &s.pvc))
            .or_insert_with(|| Row::new(&s.namespace, &s.pvc))
            .add(s);
    }
    for c in claims {
        let key = (c.namespace.as_str(), c.name.as_str());
        match (rows.get_mut(&key), named) {
            (Some(row), _) => row.record(&c.record),
            (None, Some(n)) if n != c.name => {}
            (None, named) if named.is_some() || !c.record.is_empty() => {
                let mut row = Row::new(&c.namespace, &c.name);
                row.record(&c.record);
                rows.insert(key, row);
            }
            (None, _) => {}
        }
    }
    rows.into_values()
        .map(|mut row| {
            row.judge(max_age, now);
            row
        })
        .collect()
}

/// 1 when any row is stale or failed, else 0.
pub fn exit_status(rows: &[Row]) -> ExitStatus {
    if rows.iter().any(|r| r.status.alerts()) {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    }
}

/// An error on one table line: its first line, cut to 60 characters.
fn short(error: &str) -> String {
    let line = error.lines().next().unwrap_or_default().trim();
    if line.chars().count() > 60 {
        let cut: String = line.chars().take(59).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}

/// The table as `kubectl get` prints it. `namespaces` adds the NAMESPACE column; `wide` adds
/// the newest snapshot, the last attempt's duration and error, and the last verification;
/// `colour` paints STATUS (the last column, so padding is unaffected).
pub fn table(
    rows: &[Row],
    now: DateTime<Utc>,
    namespaces: bool,
    wide: bool,
    colour: bool,
) -> String {
    let mut header = vec![
        "PVC",
        "LAST-BACKUP",
        "LAST-ATTEMPT",
        "OUTCOME",
        "DAILY",
        "WEEKLY",
        "MONTHLY",
        "DAYS",
        "PENDING",
        "FAILED",
        "NEXT-DELETION",
    ];
    if namespaces {
        header.insert(0, "NAMESPACE");
    }
    if wide {
        header.extend(["NEWEST-SNAPSHOT", "DURATION", "VERIFIED", "ERROR"]);
    }
    header.push("STATUS");
    let dash = || "-".to_owned();
    let mut lines: Vec<Vec<String>> = vec![header.into_iter().map(str::to_owned).collect()];
    for r in rows {
        let mut line = vec![
            r.pvc.clone(),
            r.newest_ready_time
                .map_or_else(|| "<none>".into(), |t| age(now, t)),
            r.last_attempt.map_or_else(dash, |t| age(now, t)),
            r.last_outcome.map_or_else(dash, |o| o.to_string()),
            r.daily.to_string(),
            r.weekly.to_string(),
            r.monthly.to_string(),
            r.days.to_string(),
            r.pending.to_string(),
            r.failed.to_string(),
            r.next_deletion.map_or_else(dash, |d| d.to_string()),
        ];
        if namespaces {
            line.insert(0, r.namespace.clone());
        }
        if wide {
            line.push(r.newest_ready.clone().unwrap_or_else(dash));
            line.push(r.last_duration_seconds.map_or_else(dash, |s| {
                let start = DateTime::<Utc>::UNIX_EPOCH;
                age(start + Duration::milliseconds((s * 1000.0) as i64), start)
            }));
            line.push(match (r.verified, r.verify_failed) {
                (_, Some(f)) if r.verified.is_none_or(|v| f >= v) => format!("{f}:failed"),
                (Some(v), _) => format!("{v}:ok"),
                _ => dash(),
            });
            line.push(r.last_error.as_deref().map_or_else(dash, short));
        }
        let word = r.status.as_str();
        line.push(match (colour, r.status) {
            (false, _) | (true, Health::Gone) => word.to_owned(),
            (true, Health::Ok) => format!("\x1b[32m{word}\x1b[0m"),
            (true, _) => format!("\x1b[31m{word}\x1b[0m"),
        });
        lines.push(line);
    }
    columns(&lines)
}

/// Colour only on a terminal, and never when `NO_COLOR` is set (<https://no-color.org>).
pub fn use_colour(terminal: bool, no_color: Option<&str>) -> bool {
    terminal && no_color.is_none_or(str::is_empty)
}

/// Gathers (one paged LIST of snapshots, one of PVCs) and plans the rows at `now`; also
/// returns the LIST pages read.
pub async fn rows(
    requests: &Requests,
    scope: &Scope,
    opts: &StatusOptions,
    now: DateTime<Utc>,
) -> Result<(Vec<Row>, usize)> {
    let mut snapshots = Vec::new();
    let mut pages = gather::snapshots(requests, scope, &opts.selector(), |vs| {
        snapshots.push(SnapshotRecord::from_snapshot(&vs, now));
    })
    .await?;
    let mut claims = Vec::new();
    pages += gather::pvcs(requests, scope, |pvc| {
        let name = pvc.metadata.name.clone().unwrap_or_default();
        if opts.pvc.as_ref().is_none_or(|p| *p == name) {
            claims.push(Claim {
                namespace: pvc.metadata.namespace.clone().unwrap_or_default(),
                name,
                record: pvc
                    .metadata
                    .annotations
                    .as_ref()
                    .map(Record::from_annotations)
                    .unwrap_or_default(),
            });
        }
    })
    .await?;
    tracing::debug!(
        "{} snapshots and {} PVCs read in {scope} ({pages} LIST pages)",
        snapshots.len(),
        claims.len()
    );
    let rows = plan(&snapshots, &claims, opts.pvc.as_deref(), opts.max_age, now);
    Ok((rows, pages))
}

/// The rows as the metrics module's freshness input: per-class counts of ready snapshots, and
/// per-state counts over all of them (class `any`).
pub fn freshness_rows(rows: &[Row]) -> Vec<FreshnessRow> {
    rows.iter()
        .map(|r| {
            let n = |v: usize| v as u64;
            let snapshots = [
                ("daily", "ready", n(r.daily)),
                ("weekly", "ready", n(r.weekly)),
                ("monthly", "ready", n(r.monthly)),
                ("days", "ready", n(r.days)),
                ("any", "ready", n(r.ready)),
                ("any", "pending", n(r.pending)),
                ("any", "failed", n(r.failed)),
            ]
            .into_iter()
            .map(|(c, s, v)| (c.to_owned(), s.to_owned(), v))
            .collect();
            FreshnessRow {
                namespace: r.namespace.clone(),
                pvc: r.pvc.clone(),
                last_success: r.last_success,
                last_attempt: r.last_attempt,
                last_outcome: r.last_outcome,
                newest_ready: r.newest_ready_time,
                snapshots,
            }
        })
        .collect()
}

pub async fn main(args: &StatusArgs, output: Output) -> ExitStatus {
    let opts = match StatusOptions::from_args(args) {
        Ok(o) => o,
        Err(e) => return report_error(&e),
    };
    let (client, context_ns) = match super::client(false).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitStatus::Failure;
        }
    };
    let scope = if opts.all_namespaces {
        Scope::All
    } else {
        Scope::Namespace(opts.namespace.clone().unwrap_or(context_ns))
    };
    let requests = Requests::new(client, opts.qps);
    let now = Utc::now();
    let (rows, pages) = match rows(&requests, &scope, &opts, now).await {
        Ok(r) => r,
        Err(e) => return report_error(&e),
    };
    let count = |h: Health| rows.iter().filter(|r| r.status == h).count();
    tracing::info!(
        "{} PVCs in {scope}: {} ok, {} stale (no ready backup within {}h), {} failed, {} gone \
         ({pages} LIST pages)",
        rows.len(),
        count(Health::Ok),
        count(Health::Stale),
        opts.max_age.num_minutes() as f64 / 60.0,
        count(Health::Failed),
        count(Health::Gone),
    );
    // The freshness gauges go to the metrics sinks (a central CronJob pushes them) whatever
    // is printed.
    let freshness = freshness_rows(&rows);
    crate::metrics::emit(crate::metrics::Metrics::freshness(&freshness));
    match output {
        Output::Prometheus => print!("{}", crate::metrics::freshness(&freshness)),
        Output::Json => match serde_json::to_string_pretty(&rows) {
            Ok(s) => println!("{s}"),
            Err(e) => tracing::error!("cannot render the status: {e}"),
        },
        Output::Yaml => print!("{}", yaml(&rows)),
        Output::Text | Output::Wide if rows.is_empty() => {
            eprintln!("No backed-up PVCs found in {scope}.");
        }
        Output::Text | Output::Wide => {
            let colour = use_colour(
                std::io::stdout().is_terminal(),
                std::env::var("NO_COLOR").ok().as_deref(),
            );
            print!(
                "{}",
                table(
                    &rows,
                    now,
                    scope == Scope::All,
                    output == Output::Wide,
                    colour
                )
            );
        }
    }
    exit_status(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::BTreeMap;

    use crate::state::SnapshotState;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const NOW: &str = "2026-12-02T12:00:00Z";

    fn now() -> DateTime<Utc> {
        t(NOW)
    }

    fn max_age() -> Duration {
        Duration::hours(26)
    }

    /// A ready `retain=daily_weekly_monthly` snapshot of `ns/pvc` taken at `time`.
    fn snap(ns: &str, pvc: &str, name: &str, time: &str) -> SnapshotRecord {
        SnapshotRecord {
            namespace: ns.into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            resource_version: "1".into(),
            pvc: pvc.into(),
            pvc_uid: None,
            labels: [(labels::PVC, pvc), (labels::RETAIN, "daily_weekly_monthly")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            time: Some(t(time)),
            state: SnapshotState::Ready { warning: None },
            bound_content: None,
        }
    }

    fn with(mut s: SnapshotRecord, k: &str, v: &str) -> SnapshotRecord {
        s.labels.insert(k.into(), v.into());
        s
    }

    fn in_state(mut s: SnapshotRecord, state: SnapshotState) -> SnapshotRecord {
        s.state = state;
        s
    }

    fn claim(ns: &str, name: &str, annotations: &[(&str, &str)]) -> Claim {
        let a: BTreeMap<String, String> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Claim {
            namespace: ns.into(),
            name: name.into(),
            record: Record::from_annotations(&a),
        }
    }

    fn succeeded(at: &str) -> Vec<(&'static str, String)> {
        vec![
            (crate::record::LAST_ATTEMPT, at.to_owned()),
            (crate::record::LAST_OUTCOME, "succeeded".to_owned()),
            (crate::record::LAST_SUCCESS, at.to_owned()),
            (crate::record::LAST_DURATION, "93.412".to_owned()),
        ]
    }

    fn claim_owned(ns: &str, name: &str, a: &[(&'static str, String)]) -> Claim {
        let pairs: Vec<(&str, &str)> = a.iter().map(|(k, v)| (*k, v.as_str())).collect();
        claim(ns, name, &pairs)
    }

    fn one(rows: &[Row], ns: &str, pvc: &str) -> Row {
        rows.iter()
            .find(|r| r.namespace == ns && r.pvc == pvc)
            .unwrap_or_else(|| panic!("no row {ns}/{pvc} in {rows:#?}"))
            .clone()
    }

    #[test]
    fn stale_exactly_past_max_age_fresh_at_it() {
        // 26h before NOW is 2026-12-01T10:00:00Z.
        let snapshots = [
            snap("a", "data", "at-the-limit", "2026-12-01T10:00:00Z"),
            snap("b", "data", "one-second-over", "2026-12-01T09:59:59Z"),
        ];
        let claims = [claim("a", "data", &[]), claim("b", "data", &[])];
        let rows = plan(&snapshots, &claims, None, max_age(), now());
        let a = one(&rows, "a", "data");
        assert_eq!((a.stale, a.status), (false, Health::Ok));
        assert_eq!(a.newest_ready.as_deref(), Some("at-the-limit"));
        let b = one(&rows, "b", "data");
        assert_eq!((b.stale, b.status), (true, Health::Stale));
        assert_eq!(exit_status(&rows[..1]), ExitStatus::Success);
        assert_eq!(exit_status(&rows), ExitStatus::Failure);
    }

    #[test]
    fn a_failed_last_attempt_fails_a_fresh_pvc() {
        let snapshots = [snap("shop", "data", "fresh", "2026-12-02T02:00:00Z")];
        let claims = [claim(
            "shop",
            "data",
            &[
                (crate::record::LAST_ATTEMPT, "2026-12-02T11:00:00Z"),
                (crate::record::LAST_OUTCOME, "failed"),
                (crate::record::LAST_SUCCESS, "2026-12-02T02:00:00Z"),
                (crate::record::LAST_ERROR, "dump failed: pg_dump exited 1"),
                (crate::record::LAST_DURATION, "5.000"),
            ],
        )];
        let rows = plan(&snapshots, &claims, None, max_age(), now());
        let r = one(&rows, "shop", "data");
        assert!(!r.stale && r.attempt_failed);
        assert_eq!(r.status, Health::Failed);
        assert_eq!(r.last_outcome, Some(Outcome::Failed));
        assert_eq!(r.last_attempt, Some(t("2026-12-02T11:00:00Z")));
        assert_eq!(r.last_success, Some(t("2026-12-02T02:00:00Z")));
        assert_eq!(
            r.last_error.as_deref(),
            Some("dump failed: pg_dump exited 1")
        );
        assert_eq!(r.last_duration_seconds, Some(5.0));
        assert_eq!(exit_status(&rows), ExitStatus::Failure);
    }

    #[test]
    fn a_record_without_backups_is_listed_stale_and_a_bare_pvc_is_not_listed() {
        // A failure before any snapshot existed (lock timeout, dump failed) leaves only the
        // record; a skipped attempt is not a failure, but with no backup the PVC is stale.
        let claims = [
            claim_owned("shop", "never-snapshotted", &{
                let mut a = succeeded("2026-12-02T02:00:00Z");
                a[1].1 = "skipped".into();
                a.truncate(2);
                a
            }),
            claim("shop", "not-ours", &[("unrelated", "x")]),
        ];
        let rows = plan(&[], &claims, None, max_age(), now());
        assert_eq!(rows.len(), 1, "{rows:#?}");
        let r = &rows[0];
        assert_eq!(r.pvc, "never-snapshotted");
        assert!(r.pvc_exists && r.stale && !r.attempt_failed);
        assert_eq!(r.status, Health::Stale);
        assert_eq!(r.last_outcome, Some(Outcome::Skipped));
        assert_eq!((r.newest_ready.as_deref(), r.ready), (None, 0));
    }

    #[test]
    fn snapshots_of_a_gone_pvc_are_listed_gone_and_do_not_fail_the_run() {
        let snapshots = [snap("shop", "old", "old-1", "2026-10-01T02:00:00Z")];
        let rows = plan(&snapshots, &[], None, max_age(), now());
        let r = one(&rows, "shop", "old");
        assert!(!r.pvc_exists && r.stale);
        assert_eq!(r.status, Health::Gone);
        assert_eq!(exit_status(&rows), ExitStatus::Success);
    }

    #[test]
    fn terminating_snapshots_are_ignored() {
        let snapshots = [
            snap("shop", "data", "old-ready", "2026-11-20T02:00:00Z"),
            in_state(
                with(
                    with(
                        with(
                            snap("shop", "data", "new-but-deleting", "2026-12-02T02:00:00Z"),
                            labels::DAILY,
                            "2026-12-02",
                        ),
                        labels::DELETE_AFTER,
                        "2026-12-01",
                    ),
                    labels::VERIFIED,
                    "2026-12-02",
                ),
                SnapshotState::Terminating,
            ),
        ];
        let rows = plan(
            &snapshots,
            &[claim("shop", "data", &[])],
            None,
            max_age(),
            now(),
        );
        let r = one(&rows, "shop", "data");
        assert_eq!(r.newest_ready.as_deref(), Some("old-ready"));
        assert_eq!((r.ready, r.daily, r.pending, r.failed), (1, 0, 0, 0));
        assert_eq!((r.next_deletion, r.verified), (None, None));
        assert_eq!(r.status, Health::Stale);
        // Only a terminating snapshot left: no ready backup at all.
        let rows = plan(
            &snapshots[1..],
            &[claim("shop", "data", &[])],
            None,
            max_age(),
            now(),
        );
        let r = one(&rows, "shop", "data");
        assert_eq!((r.newest_ready.as_deref(), r.ready), (None, 0));
        assert!(r.stale);
    }

    #[test]
    fn counts_per_class_and_state() {
        let s = |name, time| snap("shop", "data", name, time);
        let snapshots = [
            with(
                with(
                    with(s("d0", "2026-12-02T02:00:00Z"), labels::DAILY, "2026-12-02"),
                    labels::WEEKLY,
                    "w49",
                ),
                labels::MONTHLY,
                "2026-12",
            ),
            with(s("d1", "2026-12-01T02:00:00Z"), labels::DAILY, "2026-12-01"),
            with(s("w1", "2026-11-23T02:00:00Z"), labels::WEEKLY, "w48"),
            with(
                with(s("adhoc", "2026-11-30T02:00:00Z"), labels::RETAIN, "days"),
                labels::RETAIN_DAYS,
                "7",
            ),
            // Not ready: counted by state only, never in a class, never the newest ready one.
            in_state(
                with(
                    s("cutting", "2026-12-02T11:00:00Z"),
                    labels::DAILY,
                    "2026-12-02",
                ),
                SnapshotState::Pending { error: None },
            ),
            in_state(
                s("stuck", "2026-11-29T02:00:00Z"),
                SnapshotState::Failed {
                    error: Some("quota".into()),
                },
            ),
            in_state(
                s("stuck2", "2026-11-28T02:00:00Z"),
                SnapshotState::Failed { error: None },
            ),
        ];
        let rows = plan(&snapshots, &[], None, max_age(), now());
        let r = one(&rows, "shop", "data");
        assert_eq!(
            (r.daily, r.weekly, r.monthly, r.days),
            (2, 2, 1, 1),
            "{r:#?}"
        );
        assert_eq!((r.ready, r.pending, r.failed), (4, 1, 2));
        assert_eq!(r.newest_ready.as_deref(), Some("d0"));
        assert_eq!(r.newest_ready_time, Some(t("2026-12-02T02:00:00Z")));
    }

    #[test]
    fn next_deletion_is_the_earliest_valid_date_the_sweep_may_act_on() {
        let s = |name| snap("shop", "data", name, "2026-11-01T02:00:00Z");
        let snapshots = [
            with(s("later"), labels::DELETE_AFTER, "2026-12-05"),
            with(s("sooner"), labels::DELETE_AFTER, "2026-12-03"),
            with(s("garbage"), labels::DELETE_AFTER, "2026-02-30"),
            // Never deleted: pinned, or without a retain label (kept forever), or already going.
            with(
                with(s("pinned"), labels::DELETE_AFTER, "2026-12-01"),
                labels::PIN,
                "true",
            ),
            {
                let mut k = with(s("forever"), labels::DELETE_AFTER, "2026-11-30");
                k.labels.remove(labels::RETAIN);
                k
            },
            in_state(
                with(s("deleting"), labels::DELETE_AFTER, "2026-11-29"),
                SnapshotState::Terminating,
            ),
        ];
        let rows = plan(&snapshots, &[], None, max_age(), now());
        let r = one(&rows, "shop", "data");
        assert_eq!(r.next_deletion, NaiveDate::from_ymd_opt(2026, 12, 3));
        assert_eq!(r.next_deletion_snapshot.as_deref(), Some("sooner"));
        let none = plan(&snapshots[2..3], &[], None, max_age(), now());
        assert_eq!(none[0].next_deletion, None);
    }

    #[test]
    fn the_latest_verification_days_come_from_the_verify_labels() {
        let s = |name| snap("shop", "data", name, "2026-12-01T02:00:00Z");
        let snapshots = [
            with(s("a"), labels::VERIFIED, "2026-11-20"),
            with(s("b"), labels::VERIFIED, "2026-11-27"),
            with(s("c"), labels::VERIFY_FAILED, "2026-11-25"),
            with(s("d"), labels::VERIFIED, "not-a-date"),
        ];
        let rows = plan(&snapshots, &[], None, max_age(), now());
        let r = one(&rows, "shop", "data");
        assert_eq!(r.verified, NaiveDate::from_ymd_opt(2026, 11, 27));
        assert_eq!(r.verify_failed, NaiveDate::from_ymd_opt(2026, 11, 25));
        let wide = table(&rows, now(), false, true, false);
        assert!(wide.contains(" 2026-11-27:ok "), "{wide}");
        // A failure later than the last success is the verdict shown.
        let text = table(
            &plan(&snapshots[2..3], &[], None, max_age(), now()),
            now(),
            false,
            true,
            false,
        );
        assert!(text.contains(" 2026-11-25:failed "), "{text}");
        let plain = plan(&snapshots[3..], &[], None, max_age(), now());
        assert_eq!((plain[0].verified, plain[0].verify_failed), (None, None));
    }

    #[test]
    fn a_named_pvc_is_listed_even_without_backups_and_others_are_left_out() {
        let snapshots = [
            snap("shop", "data", "d", "2026-12-02T02:00:00Z"),
            snap("shop", "uploads", "u", "2026-12-02T02:00:00Z"),
        ];
        let claims = [
            claim("shop", "data", &[]),
            claim("shop", "uploads", &[]),
            claim("blog", "data", &[]),
        ];
        let rows = plan(&snapshots, &claims, Some("data"), max_age(), now());
        let keys: Vec<(&str, &str, Health)> = rows
            .iter()
            .map(|r| (r.namespace.as_str(), r.pvc.as_str(), r.status))
            .collect();
        assert_eq!(
            keys,
            [
                ("blog", "data", Health::Stale),
                ("shop", "data", Health::Ok)
            ]
        );
    }

    #[test]
    fn rows_are_sorted_by_namespace_then_pvc() {
        let snapshots = [
            snap("b", "data", "1", "2026-12-02T02:00:00Z"),
            snap("a", "uploads", "2", "2026-12-02T02:00:00Z"),
            snap("a", "data", "3", "2026-12-02T02:00:00Z"),
        ];
        let rows = plan(&snapshots, &[], None, max_age(), now());
        let keys: Vec<String> = rows
            .iter()
            .map(|r| format!("{}/{}", r.namespace, r.pvc))
            .collect();
        assert_eq!(keys, ["a/data", "a/uploads", "b/data"]);
    }

    #[test]
    fn the_table_has_kubectl_columns_and_colour_only_when_asked() {
        let snapshots = [
            with(
                snap("shop", "data", "data-new", "2026-12-02T02:00:00Z"),
                labels::DAILY,
                "2026-12-02",
            ),
            with(
                snap("shop", "data", "data-old", "2026-11-01T02:00:00Z"),
                labels::DELETE_AFTER,
                "2026-12-03",
            ),
            snap("shop", "logs", "logs-old", "2026-11-01T02:00:00Z"),
        ];
        let claims = [
            claim_owned("shop", "data", &succeeded("2026-12-02T02:00:00Z")),
            claim("shop", "logs", &[]),
        ];
        let rows = plan(&snapshots, &claims, None, max_age(), now());
        let text = table(&rows, now(), true, false, false);
        let cols = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            cols(lines[0]),
            [
                "NAMESPACE",
                "PVC",
                "LAST-BACKUP",
                "LAST-ATTEMPT",
                "OUTCOME",
                "DAILY",
                "WEEKLY",
                "MONTHLY",
                "DAYS",
                "PENDING",
                "FAILED",
                "NEXT-DELETION",
                "STATUS"
            ]
        );
        assert_eq!(
            cols(lines[1]),
            [
                "shop",
                "data",
                "10h",
                "10h",
                "succeeded",
                "1",
                "0",
                "0",
                "0",
                "0",
                "0",
                "2026-12-03",
                "ok"
            ]
        );
        assert_eq!(
            cols(lines[2]),
            ["shop", "logs", "31d", "-", "-", "0", "0", "0", "0", "0", "0", "-", "stale"]
        );
        let at = lines[0].find("STATUS").unwrap();
        assert_eq!(&lines[2][at..], "stale");
        assert!(!text.contains('\x1b'));

        let coloured = table(&rows, now(), false, true, true);
        let lines: Vec<&str> = coloured.lines().collect();
        assert!(lines[1].ends_with("\x1b[32mok\x1b[0m"), "{coloured}");
        assert!(lines[2].ends_with("\x1b[31mstale\x1b[0m"), "{coloured}");
        assert_eq!(
            cols(lines[0])[11..],
            ["NEWEST-SNAPSHOT", "DURATION", "VERIFIED", "ERROR", "STATUS"]
        );
        assert_eq!(cols(lines[1])[11..14], ["data-new", "93s", "-"]);
    }

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("")));
        assert!(!use_colour(true, Some("1")));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn json_and_yaml_rows_are_flat_and_parse_back() {
        let rows = plan(
            &[snap("shop", "data", "d", "2026-12-02T02:00:00Z")],
            &[claim_owned(
                "shop",
                "data",
                &succeeded("2026-12-02T02:00:00Z"),
            )],
            None,
            max_age(),
            now(),
        );
        let json = serde_json::to_value(&rows).unwrap();
        assert_eq!(json[0]["newestReadyTime"], "2026-12-02T02:00:00Z");
        assert_eq!(json[0]["lastOutcome"], "succeeded");
        assert_eq!(json[0]["status"], "ok");
        assert_eq!(json[0]["nextDeletion"], serde_json::Value::Null);
        let parsed: serde_json::Value = serde_yaml::from_str(&yaml(&rows)).unwrap();
        assert_eq!(parsed, json);
    }
}
