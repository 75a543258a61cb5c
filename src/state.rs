//! What a VolumeSnapshot's state means — decided here, once, for every command.
//!
//! `create` waits on it, `retain`/`mark-and-delete`/`prune` plan with it, `list`, `delete` and
//! `status` show it. When each read `readyToUse` and `status.error` its own way they disagreed
//! (a transiently failing snapshot was marked for deletion by one and kept by another), so the
//! reading and the few questions every consumer asks of it live here:
//!
//! - `readyToUse: true` is **ready**, whatever `status.error` says: the snapshot controller keeps
//!   the *last observed* error and a ready snapshot can still carry one (kubevirt#4374). The
//!   error is shown as a warning.
//! - Not ready is **pending**, with the last observed error if any: the controller retries, and
//!   a first snapshot of a large cloud volume takes an hour. A pending snapshot is never marked
//!   for deletion and never holds a period.
//! - Not ready for longer than [`STALLED_AFTER`] since its creation is **failed**: no backup came
//!   of it, so it keeps no period label and is marked and swept like any unlabelled snapshot.
//!   That is how a snapshot that never becomes ready stops holding labels or storage.
//! - `metadata.deletionTimestamp` set is **terminating**: gone for every purpose. It is never the
//!   newest ready one, never holds a period, is not patched, marked or deleted again (a
//!   finalizer — the snapshot controller's — holds it until its content is gone).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::snapshot::VolumeSnapshot;

/// How long a snapshot may stay not ready before it counts as failed. Far beyond any
/// `BAK_VS_WAIT_UNTIL_READY_TIMEOUT` in use and beyond the hour a first cloud snapshot takes, and
/// short enough that a stuck snapshot stops holding labels within the daily retention cycle.
pub const STALLED_AFTER: Duration = Duration::hours(24);

/// The state of one snapshot at one moment; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum SnapshotState {
    /// `readyToUse: true`; `warning` is a `status.error` the controller left set.
    Ready { warning: Option<String> },
    /// Not ready yet; `error` is the last error the controller observed (it retries).
    Pending { error: Option<String> },
    /// Not ready for longer than [`STALLED_AFTER`]; `error` is the last one observed.
    Failed { error: Option<String> },
    /// `metadata.deletionTimestamp` is set.
    Terminating,
}

impl SnapshotState {
    /// The state of `vs` at `now`.
    pub fn of(vs: &VolumeSnapshot, now: DateTime<Utc>) -> SnapshotState {
        let created = vs.metadata.creation_timestamp.as_ref().and_then(|ts| {
            DateTime::<Utc>::from_timestamp(ts.0.as_second(), ts.0.subsec_nanosecond() as u32)
        });
        let status = vs.status.as_ref();
        SnapshotState::from_parts(
            vs.metadata.deletion_timestamp.is_some(),
            status.and_then(|s| s.ready_to_use) == Some(true),
            status.and_then(|s| s.error.as_ref()).map(|e| {
                e.message
                    .clone()
                    .unwrap_or_else(|| "the snapshot controller reported an error".into())
            }),
            created,
            now,
        )
    }

    /// The state from the fields it depends on (`created`: `metadata.creationTimestamp`).
    pub fn from_parts(
        terminating: bool,
        ready_to_use: bool,
        error: Option<String>,
        created: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> SnapshotState {
        if terminating {
            SnapshotState::Terminating
        } else if ready_to_use {
            SnapshotState::Ready { warning: error }
        } else if created.is_some_and(|c| now - c > STALLED_AFTER) {
            SnapshotState::Failed { error }
        } else {
            SnapshotState::Pending { error }
        }
    }

    /// A usable backup: ready and not being deleted. Only such a snapshot is "the newest ready
    /// one" of its PVC, holds a period for the claim and takes a retention slot.
    pub fn is_ready(&self) -> bool {
        matches!(self, SnapshotState::Ready { .. })
    }

    /// Still being cut: keeps its labels, takes no slot, is not marked.
    pub fn is_pending(&self) -> bool {
        matches!(self, SnapshotState::Pending { .. })
    }

    /// No backup will come of it: it keeps no period label.
    pub fn is_failed(&self) -> bool {
        matches!(self, SnapshotState::Failed { .. })
    }

    /// Being deleted: left alone by every planner.
    pub fn is_terminating(&self) -> bool {
        matches!(self, SnapshotState::Terminating)
    }

    /// The error or warning the controller left, if any.
    pub fn error(&self) -> Option<&str> {
        match self {
            SnapshotState::Ready { warning: e }
            | SnapshotState::Pending { error: e }
            | SnapshotState::Failed { error: e } => e.as_deref(),
            SnapshotState::Terminating => None,
        }
    }

    /// One word for tables: `true`, `false`, `failed`, `deleting` (the READY column).
    pub fn word(&self) -> &'static str {
        match self {
            SnapshotState::Ready { .. } => "true",
            SnapshotState::Pending { .. } => "false",
            SnapshotState::Failed { .. } => "failed",
            SnapshotState::Terminating => "deleting",
        }
    }
}

impl std::fmt::Display for SnapshotState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hours = STALLED_AFTER.num_hours();
        match self {
            SnapshotState::Ready { warning: None } => f.write_str("ready"),
            SnapshotState::Ready { warning: Some(w) } => {
                write!(f, "ready (the controller still reports: {w})")
            }
            SnapshotState::Pending { error: None } => f.write_str("not ready yet"),
            SnapshotState::Pending { error: Some(e) } => {
                write!(f, "not ready yet (last error: {e})")
            }
            SnapshotState::Failed { error: None } => {
                write!(f, "failed: not ready {hours}h after its creation")
            }
            SnapshotState::Failed { error: Some(e) } => write!(
                f,
                "failed: not ready {hours}h after its creation (last error: {e})"
            ),
            SnapshotState::Terminating => f.write_str("being deleted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vs(metadata: serde_json::Value, status: serde_json::Value) -> VolumeSnapshot {
        let mut meta = serde_json::json!({
            "name": "x", "namespace": "ns", "creationTimestamp": "2025-01-08T16:00:00Z",
        });
        meta.as_object_mut()
            .unwrap()
            .extend(metadata.as_object().unwrap().clone());
        serde_json::from_value(serde_json::json!({
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "metadata": meta,
            "spec": {"source": {"persistentVolumeClaimName": "data"}},
            "status": status,
        }))
        .unwrap()
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        rfc3339.parse().unwrap()
    }

    const SOON: &str = "2025-01-08T17:00:00Z";

    #[test]
    fn ready_to_use_is_ready_whatever_the_error_says() {
        let s = SnapshotState::of(
            &vs(
                serde_json::json!({}),
                serde_json::json!({"readyToUse": true, "error": {"message": "transient"}}),
            ),
            at(SOON),
        );
        assert!(s.is_ready());
        assert_eq!(s.error(), Some("transient"));
        assert_eq!(s.word(), "true");
    }

    #[test]
    fn an_error_on_a_young_snapshot_is_pending_not_failed() {
        let s = SnapshotState::of(
            &vs(
                serde_json::json!({}),
                serde_json::json!({"readyToUse": false, "error": {"message": "quota"}}),
            ),
            at(SOON),
        );
        assert_eq!(
            s,
            SnapshotState::Pending {
                error: Some("quota".into())
            }
        );
        assert_eq!(s.to_string(), "not ready yet (last error: quota)");
    }

    #[test]
    fn not_ready_past_the_grace_is_failed_with_or_without_error() {
        let just_inside = at("2025-01-09T16:00:00Z");
        let past = at("2025-01-09T16:00:01Z");
        let plain = vs(serde_json::json!({}), serde_json::json!({}));
        assert!(SnapshotState::of(&plain, just_inside).is_pending());
        assert_eq!(
            SnapshotState::of(&plain, past),
            SnapshotState::Failed { error: None }
        );
        let with_error = vs(
            serde_json::json!({}),
            serde_json::json!({"readyToUse": false, "error": {"message": "boom"}}),
        );
        let s = SnapshotState::of(&with_error, past);
        assert!(s.is_failed());
        assert_eq!(s.error(), Some("boom"));
        assert_eq!(s.word(), "failed");
    }

    #[test]
    fn a_snapshot_without_status_or_creation_time_is_pending() {
        let mut v = vs(serde_json::json!({}), serde_json::json!(null));
        v.status = None;
        v.metadata.creation_timestamp = None;
        assert!(SnapshotState::of(&v, at("2030-01-01T00:00:00Z")).is_pending());
    }

    #[test]
    fn a_deletion_timestamp_wins_over_everything() {
        let s = SnapshotState::of(
            &vs(
                serde_json::json!({"deletionTimestamp": "2025-01-08T16:30:00Z"}),
                serde_json::json!({"readyToUse": true}),
            ),
            at(SOON),
        );
        assert_eq!(s, SnapshotState::Terminating);
        assert!(!s.is_ready());
        assert_eq!(s.word(), "deleting");
    }
}
