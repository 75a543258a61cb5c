//! `backup-ns list`: what backups exist and what retention will do with them, at a glance.
//!
//! One paged LIST of snapshots carrying the `backup-ns.sh/pvc` label (narrowed by PVC and type
//! server-side), so snapshots whose `retain` label was removed — kept forever — show too, with
//! DELETE-AFTER `never`. Rows are sorted by namespace, PVC and time (oldest first, so the
//! newest is next to the prompt) and printed as a kubectl-style table, or as JSON or YAML for
//! scripts. Rendering is pure (rows + now → text) and unit-tested.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::cli::{ListArgs, Output};
use crate::labels;
use crate::snapshot::VolumeSnapshot;
use crate::ExitStatus;

use super::api::Requests;
use super::gather::{self, Scope};
use super::options::ListOptions;
use super::report_error;

/// One listed snapshot; also the JSON/YAML shape (flat, scalar values only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub namespace: String,
    pub name: String,
    pub pvc: String,
    #[serde(rename = "type")]
    pub vs_type: Option<String>,
    /// `true`, `false` (pending), `failed` or `deleting` ([`crate::state::SnapshotState::word`]).
    pub ready: &'static str,
    /// `status.creationTime`, else `metadata.creationTimestamp` (RFC 3339 in JSON).
    #[serde(serialize_with = "rfc3339")]
    pub time: Option<DateTime<Utc>>,
    /// `status.restoreSize` as reported.
    pub size: Option<String>,
    pub daily: Option<String>,
    pub weekly: Option<String>,
    pub monthly: Option<String>,
    pub delete_after: Option<String>,
    pub pinned: bool,
    /// The `verified` label: the day `verify` last proved a restore of it works.
    pub verified: Option<String>,
    /// The `verify-failed` label: the day a verification of it last failed.
    pub verify_failed: Option<String>,
    /// The `retain` label; `None`: removed, the snapshot is kept forever.
    pub retain: Option<String>,
    pub kept_forever: bool,
    pub content: Option<String>,
}

fn rfc3339<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        None => s.serialize_none(),
    }
}

impl Row {
    /// The row of `vs` as read at `now`.
    pub fn from_snapshot(vs: &VolumeSnapshot, now: DateTime<Utc>) -> Row {
        let l = vs.labels();
        let label = |k: &str| l.get(k).cloned();
        let status = vs.status.as_ref();
        let retain = label(labels::RETAIN);
        Row {
            namespace: vs.metadata.namespace.clone().unwrap_or_default(),
            name: vs.metadata.name.clone().unwrap_or_default(),
            pvc: label(labels::PVC).unwrap_or_default(),
            vs_type: label(labels::TYPE),
            ready: vs.state(now).word(),
            time: vs.taken_at(),
            size: status
                .and_then(|s| s.restore_size.as_ref())
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
            daily: label(labels::DAILY),
            weekly: label(labels::WEEKLY),
            monthly: label(labels::MONTHLY),
            delete_after: label(labels::DELETE_AFTER),
            pinned: l.contains_key(labels::PIN),
            verified: label(labels::VERIFIED),
            verify_failed: label(labels::VERIFY_FAILED),
            kept_forever: retain.is_none(),
            retain,
            content: status.and_then(|s| s.bound_volume_snapshot_content_name.clone()),
        }
    }
}

/// The VERIFIED cell: the day of the last verification, `failed <day>` when it failed (the
/// newer label wins if an edit left both), `-` when never verified.
pub fn verified_cell(r: &Row) -> String {
    match (&r.verified, &r.verify_failed) {
        (Some(ok), Some(failed)) if ok > failed => ok.clone(),
        (_, Some(failed)) => format!("failed {failed}"),
        (Some(ok), None) => ok.clone(),
        (None, None) => "-".into(),
    }
}

/// Sorts by namespace, PVC, time (oldest first; unknown times first), name.
pub fn sort(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        (&a.namespace, &a.pvc, a.time, &a.name).cmp(&(&b.namespace, &b.pvc, b.time, &b.name))
    });
}

/// kubectl's age format (`45s`, `5m10s`, `3h20m`, `6d4h`, `400d`, `2y30d`).
pub fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds();
    if secs < -1 {
        return "<invalid>".into();
    }
    let secs = secs.max(0);
    let with = |big: i64, unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{unit}")
        } else {
            format!("{big}{unit}{small}{small_unit}")
        }
    };
    let (minutes, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    match () {
        _ if secs < 120 => format!("{secs}s"),
        _ if minutes < 10 => with(minutes, "m", secs % 60, "s"),
        _ if minutes < 180 => format!("{minutes}m"),
        _ if hours < 8 => with(hours, "h", minutes % 60, "m"),
        _ if hours < 48 => format!("{hours}h"),
        _ if hours < 24 * 8 => with(days, "d", hours % 24, "h"),
        _ if days < 365 * 2 => format!("{days}d"),
        _ if days < 365 * 8 => with(days / 365, "y", days % 365, "d"),
        _ => format!("{}y", days / 365),
    }
}

/// The table as `kubectl get` prints it: a header, columns padded with three spaces.
/// `namespaces` adds the NAMESPACE column; `wide` adds RETAIN, TIME (in `tz`) and CONTENT.
pub fn table(rows: &[Row], now: DateTime<Utc>, tz: Tz, namespaces: bool, wide: bool) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut header = vec![
        "NAME",
        "PVC",
        "TYPE",
        "READY",
        "CREATED",
        "SIZE",
        "DAILY",
        "WEEKLY",
        "MONTHLY",
        "DELETE-AFTER",
        "PINNED",
        "VERIFIED",
    ];
    if namespaces {
        header.insert(0, "NAMESPACE");
    }
    if wide {
        header.extend(["RETAIN", "TIME", "CONTENT"]);
    }
    let mut lines: Vec<Vec<String>> = vec![header.into_iter().map(str::to_owned).collect()];
    for r in rows {
        let delete_after = match (&r.delete_after, r.kept_forever) {
            (Some(d), _) => d.clone(),
            (None, true) => "never".into(),
            (None, false) => "-".into(),
        };
        let mut line = vec![
            r.name.clone(),
            r.pvc.clone(),
            dash(&r.vs_type),
            r.ready.to_owned(),
            r.time.map_or_else(|| "-".into(), |t| age(now, t)),
            dash(&r.size),
            dash(&r.daily),
            dash(&r.weekly),
            dash(&r.monthly),
            delete_after,
            if r.pinned { "yes" } else { "-" }.to_owned(),
            verified_cell(r),
        ];
        if namespaces {
            line.insert(0, r.namespace.clone());
        }
        if wide {
            line.push(
                r.retain
                    .clone()
                    .unwrap_or_else(|| "<removed: kept forever>".into()),
            );
            line.push(r.time.map_or_else(
                || "-".into(),
                |t| {
                    t.with_timezone(&tz)
                        .format("%Y-%m-%dT%H:%M:%S%:z")
                        .to_string()
                },
            ));
            line.push(dash(&r.content));
        }
        lines.push(line);
    }
    columns(&lines)
}

/// Lines of cells (the header first) as `kubectl get` aligns them: each column padded to its
/// widest cell plus three spaces, the last one unpadded. Shared by `list` and `status`.
pub fn columns(lines: &[Vec<String>]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let last = line.len() - 1;
        for (i, cell) in line.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}   ", w = widths[i]);
            }
        }
        out.push('\n');
    }
    out
}

/// YAML for a sequence of flat records: each scalar is written as its JSON text, which is a
/// valid YAML flow scalar (strings double-quoted with JSON escapes), so no YAML library is
/// needed for this shape.
pub fn yaml<T: Serialize>(rows: &[T]) -> String {
    if rows.is_empty() {
        return "[]\n".into();
    }
    let mut out = String::new();
    for row in rows {
        let serde_json::Value::Object(map) = serde_json::to_value(row).unwrap_or_default() else {
            continue;
        };
        for (i, (k, v)) in map.iter().enumerate() {
            let lead = if i == 0 { "- " } else { "  " };
            let _ = writeln!(out, "{lead}{k}: {v}");
        }
    }
    out
}

pub async fn main(args: &ListArgs, output: Output) -> ExitStatus {
    if output == Output::Prometheus {
        return report_error(&crate::Error::config(
            "BAK_OUTPUT (-o)",
            "prometheus",
            "only `status` prints prometheus; `list` prints text, wide, json or yaml",
        ));
    }
    let opts = match ListOptions::from_args(args, std::env::var("TZ").ok().as_deref()) {
        Ok(o) => o,
        Err(e) => return report_error(&e),
    };
    match super::options::list_orphans(args) {
        Ok(true) => return list_orphans(&opts, output).await,
        Ok(false) => {}
        Err(e) => return report_error(&e),
    }
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
    let selector = opts.selector();
    let mut rows = Vec::new();
    let read_at = Utc::now();
    let listed = gather::snapshots(&requests, &scope, &selector, |vs| {
        let row = Row::from_snapshot(&vs, read_at);
        let in_class = opts.classes.is_empty()
            || opts
                .classes
                .iter()
                .any(|c| vs.labels().contains_key(c.label()));
        if in_class {
            rows.push(row);
        }
    })
    .await;
    if let Err(e) = listed {
        return report_error(&e);
    }
    sort(&mut rows);
    match output {
        Output::Json => match serde_json::to_string_pretty(&rows) {
            Ok(s) => println!("{s}"),
            Err(e) => tracing::error!("cannot render the list: {e}"),
        },
        Output::Yaml => print!("{}", yaml(&rows)),
        Output::Text | Output::Wide | Output::Prometheus if rows.is_empty() => {
            eprintln!("No backup-ns volumesnapshots found in {scope} ({selector}).");
        }
        Output::Text | Output::Wide | Output::Prometheus => print!(
            "{}",
            table(
                &rows,
                Utc::now(),
                opts.tz,
                scope == Scope::All,
                output == Output::Wide
            )
        ),
    }
    ExitStatus::Success
}

/// `list --orphans`: VolumeSnapshotContents whose snapshot is gone (see [`super::rebind`]).
///
/// One paged LIST of contents (cluster-scoped) and one of snapshots (all namespaces, or the one
/// `-n` names; no selector: a content can belong to any snapshot), never a GET per content.
/// Without `-n` every namespace is looked at: the namespace of an orphan is often gone, so the
/// kube context's would hide it. `--pvc` and the class and type flags filter on the labels
/// `sync-labels` copied to the contents.
async fn list_orphans(opts: &ListOptions, output: Output) -> ExitStatus {
    let (client, _) = match super::client(false).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitStatus::Failure;
        }
    };
    let scope = match (&opts.namespace, opts.all_namespaces) {
        (Some(ns), false) => Scope::Namespace(ns.clone()),
        _ => Scope::All,
    };
    let requests = Requests::new(client, opts.qps);
    let mut live = super::rebind::LiveSnapshots::new();
    let listed = gather::each(
        &requests,
        &match &scope {
            Scope::All => kube::Api::<VolumeSnapshot>::all(requests.client.clone()),
            Scope::Namespace(ns) => kube::Api::namespaced(requests.client.clone(), ns),
        },
        None,
        &format!("list volumesnapshots in {scope}"),
        |vs| {
            live.insert(
                (
                    vs.metadata.namespace.unwrap_or_default(),
                    vs.metadata.name.unwrap_or_default(),
                ),
                vs.metadata.uid.unwrap_or_default(),
            );
        },
    )
    .await;
    if let Err(e) = listed {
        return report_error(&e);
    }
    let mut contents = Vec::new();
    if let Err(e) = gather::contents(&requests, |c| contents.push(c)).await {
        return report_error(&e);
    }
    let in_scope = |r: &super::rebind::OrphanRow| match &scope {
        Scope::All => true,
        Scope::Namespace(ns) => r.snapshot.split('/').next() == Some(ns.as_str()),
    };
    let rows: Vec<_> = super::rebind::orphans(&contents, &live)
        .into_iter()
        .filter(in_scope)
        .filter(|r| opts.pvc.is_none() || r.pvc == opts.pvc)
        .filter(|r| {
            opts.types.is_empty() || opts.types.iter().any(|t| r.vs_type.as_deref() == Some(*t))
        })
        .filter(|r| {
            opts.classes.is_empty()
                || opts
                    .classes
                    .iter()
                    .any(|c| r.labels.contains_key(c.label()))
        })
        .collect();
    match output {
        Output::Json => match serde_json::to_string_pretty(&rows) {
            Ok(s) => println!("{s}"),
            Err(e) => tracing::error!("cannot render the list: {e}"),
        },
        Output::Yaml => print!("{}", yaml(&rows)),
        Output::Text | Output::Wide | Output::Prometheus if rows.is_empty() => {
            eprintln!("No orphaned volumesnapshotcontents (snapshots in {scope}).");
        }
        Output::Text | Output::Wide | Output::Prometheus => print!(
            "{}",
            super::rebind::orphan_table(&rows, Utc::now(), output == Output::Wide)
        ),
    }
    ExitStatus::Success
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn snapshot(json: serde_json::Value) -> VolumeSnapshot {
        serde_json::from_value(json).unwrap()
    }

    fn row(ns: &str, pvc: &str, name: &str, time: &str) -> Row {
        Row::from_snapshot(
            &snapshot(serde_json::json!({
                "apiVersion": "snapshot.storage.k8s.io/v1",
                "kind": "VolumeSnapshot",
                "metadata": { "name": name, "namespace": ns, "labels": {
                    "backup-ns.sh/pvc": pvc, "backup-ns.sh/retain": "daily_weekly_monthly",
                    "backup-ns.sh/type": "cronjob",
                }},
                "spec": { "source": { "persistentVolumeClaimName": pvc } },
                "status": { "readyToUse": true, "creationTime": time, "restoreSize": "1Gi" },
            })),
            t("2030-01-01T00:00:00Z"),
        )
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now = t("2025-01-08T12:00:00Z");
        let cases = [
            ("2025-01-08T11:59:15Z", "45s"),
            ("2025-01-08T11:54:50Z", "5m10s"),
            ("2025-01-08T11:00:00Z", "60m"),
            ("2025-01-08T08:40:00Z", "3h20m"),
            ("2025-01-07T12:00:00Z", "24h"),
            ("2025-01-02T08:00:00Z", "6d4h"),
            ("2024-12-09T12:00:00Z", "30d"),
            ("2022-01-08T12:00:00Z", "3y1d"),
            ("2015-01-08T12:00:00Z", "10y"),
            ("2025-01-08T12:05:00Z", "<invalid>"),
        ];
        for (then, want) in cases {
            assert_eq!(age(now, t(then)), want, "{then}");
        }
    }

    #[test]
    fn rows_read_labels_and_status() {
        let vs = snapshot(serde_json::json!({
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "metadata": { "name": "data-x", "namespace": "shop",
                "creationTimestamp": "2025-01-08T10:00:05Z",
                "labels": { "backup-ns.sh/pvc": "data", "backup-ns.sh/pin": "",
                    "backup-ns.sh/daily": "2025-01-08", "backup-ns.sh/weekly": "w02" }},
            "spec": { "source": { "persistentVolumeClaimName": "data" } },
            "status": { "readyToUse": false, "error": { "message": "boom" },
                "boundVolumeSnapshotContentName": "snapcontent-1" },
        }));
        // A young snapshot with an error is still being cut; a day later it has failed.
        assert_eq!(
            Row::from_snapshot(&vs, t("2025-01-08T10:30:00Z")).ready,
            "false"
        );
        let r = Row::from_snapshot(&vs, t("2025-01-09T10:00:06Z"));
        assert_eq!(r.ready, "failed");
        assert_eq!(r.time, Some(t("2025-01-08T10:00:05Z")));
        assert!(r.pinned && r.kept_forever && r.retain.is_none());
        assert_eq!(r.daily.as_deref(), Some("2025-01-08"));
        assert_eq!(r.weekly.as_deref(), Some("w02"));
        assert_eq!(r.content.as_deref(), Some("snapcontent-1"));
        assert_eq!((r.size, r.vs_type), (None, None));
    }

    #[test]
    fn sorted_by_namespace_pvc_then_time() {
        let mut rows = vec![
            row("b", "data", "b-1", "2025-01-01T00:00:00Z"),
            row("a", "uploads", "a-u", "2024-01-01T00:00:00Z"),
            row("a", "data", "a-new", "2025-01-02T00:00:00Z"),
            row("a", "data", "a-old", "2025-01-01T00:00:00Z"),
        ];
        sort(&mut rows);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a-old", "a-new", "a-u", "b-1"]);
    }

    #[test]
    fn table_has_kubectl_columns_and_marks_kept_forever() {
        let mut kept = row("shop", "data", "data-kept", "2025-01-01T00:00:00Z");
        kept.retain = None;
        kept.kept_forever = true;
        let mut due = row("shop", "data", "data-due", "2025-01-07T12:00:00Z");
        due.delete_after = Some("2025-01-07".into());
        due.daily = Some("2025-01-07".into());
        let now = t("2025-01-08T12:00:00Z");
        let text = table(&[kept, due], now, Tz::UTC, false, false);
        let lines: Vec<&str> = text.lines().collect();
        let cols = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            cols(lines[0]),
            [
                "NAME",
                "PVC",
                "TYPE",
                "READY",
                "CREATED",
                "SIZE",
                "DAILY",
                "WEEKLY",
                "MONTHLY",
                "DELETE-AFTER",
                "PINNED",
                "VERIFIED"
            ]
        );
        assert_eq!(
            cols(lines[1]),
            [
                "data-kept",
                "data",
                "cronjob",
                "true",
                "7d12h",
                "1Gi",
                "-",
                "-",
                "-",
                "never",
                "-",
                "-"
            ]
        );
        assert_eq!(
            cols(lines[2]),
            [
                "data-due",
                "data",
                "cronjob",
                "true",
                "24h",
                "1Gi",
                "2025-01-07",
                "-",
                "-",
                "2025-01-07",
                "-",
                "-"
            ]
        );
        // Columns line up: every header starts where its values start.
        let at = lines[0].find("PVC").unwrap();
        assert_eq!(&lines[1][at..at + 4], "data");

        let wide = table(
            &[row("shop", "data", "x", "2025-01-07T23:30:00Z")],
            now,
            chrono_tz::Europe::Vienna,
            true,
            true,
        );
        let lines: Vec<&str> = wide.lines().collect();
        let header = cols(lines[0]);
        assert_eq!(header[0], "NAMESPACE");
        assert_eq!(header[13..], ["RETAIN", "TIME", "CONTENT"]);
        assert_eq!(
            cols(lines[1])[13..],
            ["daily_weekly_monthly", "2025-01-08T00:30:00+01:00", "-"]
        );
    }

    #[test]
    fn the_verified_column_shows_the_last_verification() {
        let mut r = row("shop", "data", "x", "2025-01-07T23:30:00Z");
        assert_eq!(verified_cell(&r), "-");
        r.verified = Some("2025-01-08".into());
        assert_eq!(verified_cell(&r), "2025-01-08");
        r.verify_failed = Some("2025-01-15".into());
        assert_eq!(verified_cell(&r), "failed 2025-01-15");
        r.verified = Some("2025-01-22".into());
        assert_eq!(verified_cell(&r), "2025-01-22");
        let text = table(&[r], t("2025-01-23T00:00:00Z"), Tz::UTC, false, false);
        let last = text
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .last()
            .unwrap()
            .to_owned();
        assert_eq!(last, "2025-01-22");
    }

    #[test]
    fn yaml_is_a_sequence_of_flat_mappings_that_parses_back() {
        let rows = vec![
            row("shop", "data", "a", "2025-01-01T00:00:00Z"),
            row("shop", "data", "b: \"tricky\"", "2025-01-02T00:00:00Z"),
        ];
        let text = yaml(&rows);
        // Keys sorted, as `kubectl -o yaml` prints them.
        assert!(
            text.starts_with("- content: null\n  daily: null\n"),
            "{text}"
        );
        assert!(text.contains("\n  name: \"b: \\\"tricky\\\"\"\n"), "{text}");
        let parsed: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(parsed, serde_json::to_value(&rows).unwrap());
        assert_eq!(yaml::<Row>(&[]), "[]\n");
    }
}
