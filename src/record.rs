//! The durable record of a PVC's last backup attempt, as annotations on the PVC.
//!
//! An Event expires after an hour and a failed Job is cleaned up; a failure *before* a snapshot
//! exists (lock timeout, pod not ready, dump failed) leaves nothing else to look at. So `create`
//! writes its last attempt onto the PVC it backs up, where it survives both and `kubectl
//! describe pvc` shows it, and `status` reads it back with one paged LIST of PVCs.
//!
//! Why the PVC: it is the object the backup is *of* (one record per PVC, no naming scheme, no
//! extra object to clean up when the PVC goes), and the namespace Role already reads it; the
//! one extra verb is `patch` on persistentvolumeclaims. The patch is a JSON merge patch of
//! `metadata.annotations` only, so it never touches the spec and never conflicts with a
//! controller (no `resourceVersion` precondition: the last attempt wins).
//!
//! Pure: the caller supplies times and outcome; parsing never fails (a garbled annotation reads
//! as absent, and `status` says so).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

macro_rules! key {
    ($name:literal) => {
        concat!("backup-ns.sh/", $name)
    };
}

/// RFC 3339 start of the last attempt.
pub const LAST_ATTEMPT: &str = key!("last-attempt");
/// [`Outcome`] of the last attempt.
pub const LAST_OUTCOME: &str = key!("last-outcome");
/// RFC 3339 start of the last attempt that succeeded (kept across failures).
pub const LAST_SUCCESS: &str = key!("last-success");
/// The error of the last attempt when it did not succeed (removed on success).
pub const LAST_ERROR: &str = key!("last-error");
/// Seconds the last attempt took, e.g. `93.412`.
pub const LAST_DURATION: &str = key!("last-duration");
/// The snapshot the last attempt created, if it got that far (removed otherwise).
pub const LAST_SNAPSHOT: &str = key!("last-snapshot");

/// Every annotation of the record.
pub const KEYS: [&str; 6] = [
    LAST_ATTEMPT,
    LAST_OUTCOME,
    LAST_SUCCESS,
    LAST_ERROR,
    LAST_DURATION,
    LAST_SNAPSHOT,
];

/// An error message is cut to this many characters: annotations share 256 KiB per object.
pub const MAX_ERROR_CHARS: usize = 1024;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// A snapshot was created and (when waited for) became ready.
    Succeeded,
    /// Anything failed: checks, dump, snapshot, or an interruption.
    Failed,
    /// Not attempted: the node lock or the per-PVC Lease was busy (exit codes 3 and 4).
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }

    pub fn parse(value: &str) -> Option<Outcome> {
        match value {
            "succeeded" => Some(Outcome::Succeeded),
            "failed" => Some(Outcome::Failed),
            "skipped" => Some(Outcome::Skipped),
            _ => None,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attempt, as `create` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub snapshot: Option<String>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Attempt {
    /// The merge patch that records this attempt on the PVC: `null` removes what no longer
    /// holds (the error after a success, the snapshot of an attempt that made none);
    /// `last-success` is only ever set, by a success.
    pub fn merge_patch(&self) -> serde_json::Value {
        let seconds = (self.finished - self.started).num_milliseconds().max(0) as f64 / 1000.0;
        let mut a = serde_json::Map::new();
        a.insert(LAST_ATTEMPT.into(), rfc3339(self.started).into());
        a.insert(LAST_OUTCOME.into(), self.outcome.as_str().into());
        a.insert(LAST_DURATION.into(), format!("{seconds:.3}").into());
        if self.outcome == Outcome::Succeeded {
            a.insert(LAST_SUCCESS.into(), rfc3339(self.started).into());
            a.insert(LAST_ERROR.into(), serde_json::Value::Null);
        } else {
            let error = self.error.as_deref().unwrap_or("unknown error");
            let cut: String = error.chars().take(MAX_ERROR_CHARS).collect();
            a.insert(LAST_ERROR.into(), cut.into());
        }
        a.insert(
            LAST_SNAPSHOT.into(),
            self.snapshot
                .clone()
                .map_or(serde_json::Value::Null, Into::into),
        );
        serde_json::json!({ "metadata": { "annotations": a } })
    }
}

/// The record as read back from a PVC's annotations. Every field is optional: a PVC never
/// backed up has none, and a garbled value reads as absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_outcome: Option<Outcome>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Seconds.
    pub last_duration: Option<f64>,
    pub last_snapshot: Option<String>,
}

impl Record {
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Record {
        let time = |k: &str| {
            annotations
                .get(k)
                .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        Record {
            last_attempt: time(LAST_ATTEMPT),
            last_outcome: annotations
                .get(LAST_OUTCOME)
                .and_then(|v| Outcome::parse(v)),
            last_success: time(LAST_SUCCESS),
            last_error: annotations.get(LAST_ERROR).cloned(),
            last_duration: annotations
                .get(LAST_DURATION)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|d| d.is_finite() && *d >= 0.0),
            last_snapshot: annotations.get(LAST_SNAPSHOT).cloned(),
        }
    }

    /// Whether the PVC carries any record at all.
    pub fn is_empty(&self) -> bool {
        self.last_attempt.is_none() && self.last_outcome.is_none() && self.last_success.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The annotations a merge patch leaves on a PVC that had `before`.
    fn applied(before: &[(&str, &str)], patch: &serde_json::Value) -> BTreeMap<String, String> {
        let mut a: BTreeMap<String, String> = before
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in patch["metadata"]["annotations"].as_object().unwrap() {
            match v.as_str() {
                Some(v) => a.insert(k.clone(), v.to_owned()),
                None => a.remove(k),
            };
        }
        a
    }

    #[test]
    fn a_failure_keeps_the_last_success_and_a_success_clears_the_error() {
        let ok = Attempt {
            started: t("2026-12-01T02:00:00Z"),
            finished: t("2026-12-01T02:01:33.412Z"),
            outcome: Outcome::Succeeded,
            error: None,
            snapshot: Some("data-2026-12-01-020000-x".into()),
        };
        let after_ok = applied(&[(LAST_ERROR, "old")], &ok.merge_patch());
        let r = Record::from_annotations(&after_ok);
        assert_eq!(r.last_success, Some(t("2026-12-01T02:00:00Z")));
        assert_eq!(r.last_outcome, Some(Outcome::Succeeded));
        assert_eq!(r.last_duration, Some(93.412));
        assert_eq!(r.last_error, None);
        assert_eq!(r.last_snapshot.as_deref(), Some("data-2026-12-01-020000-x"));

        let failed = Attempt {
            started: t("2026-12-02T02:00:00Z"),
            finished: t("2026-12-02T02:00:05Z"),
            outcome: Outcome::Failed,
            error: Some("x".repeat(5000)),
            snapshot: None,
        };
        let pairs: Vec<(&str, &str)> = after_ok
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = Record::from_annotations(&applied(&pairs, &failed.merge_patch()));
        assert_eq!(r.last_success, Some(t("2026-12-01T02:00:00Z")), "kept");
        assert_eq!(r.last_attempt, Some(t("2026-12-02T02:00:00Z")));
        assert_eq!(r.last_outcome, Some(Outcome::Failed));
        assert_eq!(r.last_error.unwrap().chars().count(), MAX_ERROR_CHARS);
        assert_eq!(r.last_snapshot, None, "no snapshot of this attempt");
    }

    #[test]
    fn garbled_annotations_read_as_absent() {
        let a: BTreeMap<String, String> = [
            (LAST_ATTEMPT, "yesterday"),
            (LAST_OUTCOME, "great"),
            (LAST_DURATION, "-3"),
            ("other", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let r = Record::from_annotations(&a);
        assert_eq!(r, Record::default());
        assert!(r.is_empty());
    }
}
