//! VolumeSnapshot and VolumeSnapshotContent (`snapshot.storage.k8s.io/v1`) as typed resources.
//!
//! We do not install these CRDs (the external-snapshotter does), so the derive has no schema.
//! Only the fields backup-ns reads or writes are modelled; unknown fields are ignored on read.
//! Times are converted to chrono once here, at the boundary.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kube::CustomResource;
use serde::{Deserialize, Serialize};

use crate::state::SnapshotState;

/// `spec` of a VolumeSnapshot.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "snapshot.storage.k8s.io",
    version = "v1",
    kind = "VolumeSnapshot",
    plural = "volumesnapshots",
    namespaced,
    status = "VolumeSnapshotStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSpec {
    pub source: VolumeSnapshotSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_content_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_volume_snapshot_content_name: Option<String>,
    /// RFC 3339 time the storage system took the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_to_use: Option<bool>,
    /// A quantity such as `1Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_size: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<VolumeSnapshotError>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// `spec` of a VolumeSnapshotContent (cluster-scoped).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "snapshot.storage.k8s.io",
    version = "v1",
    kind = "VolumeSnapshotContent",
    plural = "volumesnapshotcontents",
    status = "VolumeSnapshotContentStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotContentSpec {
    #[serde(default)]
    pub deletion_policy: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub source: serde_json::Value,
    #[serde(default)]
    pub volume_snapshot_ref: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotContentStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_to_use: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_handle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_size: Option<i64>,
}

impl VolumeSnapshot {
    /// A new snapshot of `pvc`, not yet created.
    pub fn for_pvc(
        name: &str,
        namespace: &str,
        pvc: &str,
        class: Option<&str>,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
    ) -> VolumeSnapshot {
        let mut vs = VolumeSnapshot::new(
            name,
            VolumeSnapshotSpec {
                source: VolumeSnapshotSource {
                    persistent_volume_claim_name: Some(pvc.to_string()),
                    ..Default::default()
                },
                volume_snapshot_class_name: class.map(str::to_string),
            },
        );
        vs.metadata.namespace = Some(namespace.to_string());
        vs.metadata.labels = Some(labels);
        vs.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
        vs
    }

    /// Its state at `now` (see [`crate::state`]).
    pub fn state(&self, now: DateTime<Utc>) -> SnapshotState {
        SnapshotState::of(self, now)
    }

    /// The time the snapshot was taken: `status.creationTime`, else `metadata.creationTimestamp`.
    pub fn taken_at(&self) -> Option<DateTime<Utc>> {
        let from_status = self
            .status
            .as_ref()
            .and_then(|s| s.creation_time.as_deref())
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        from_status.or_else(|| {
            let ts = self.metadata.creation_timestamp.as_ref()?;
            DateTime::<Utc>::from_timestamp(ts.0.as_second(), ts.0.subsec_nanosecond() as u32)
        })
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vs_with_status(status: serde_json::Value) -> VolumeSnapshot {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "metadata": {"name": "x", "namespace": "ns", "creationTimestamp": "2025-01-08T16:43:10Z"},
            "spec": {"source": {"persistentVolumeClaimName": "data"}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn taken_at_prefers_status_creation_time() {
        let vs = vs_with_status(serde_json::json!({"creationTime": "2025-01-08T16:43:08Z"}));
        assert_eq!(
            vs.taken_at().unwrap().to_rfc3339(),
            "2025-01-08T16:43:08+00:00"
        );
        let vs = vs_with_status(serde_json::json!({}));
        assert_eq!(
            vs.taken_at().unwrap().to_rfc3339(),
            "2025-01-08T16:43:10+00:00"
        );
    }

    #[test]
    fn new_snapshot_serializes_like_kubectl_would_send_it() {
        let vs = VolumeSnapshot::for_pvc(
            "data-x",
            "ns",
            "data",
            Some("csi-hostpath-snapclass"),
            BTreeMap::new(),
            BTreeMap::new(),
        );
        let v = serde_json::to_value(&vs).unwrap();
        assert_eq!(v["apiVersion"], "snapshot.storage.k8s.io/v1");
        assert_eq!(v["kind"], "VolumeSnapshot");
        assert_eq!(v["spec"]["source"]["persistentVolumeClaimName"], "data");
        assert_eq!(
            v["spec"]["volumeSnapshotClassName"],
            "csi-hostpath-snapclass"
        );
        assert!(v["spec"]["source"]
            .get("volumeSnapshotContentName")
            .is_none());
    }
}
