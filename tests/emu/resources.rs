//! The table of resources the emulation knows. Routing, discovery of a kind from an object's
//! `apiVersion`/`kind`, error messages and list kinds are all driven from here, so adding a
//! resource is one line and everything else stays generic over `serde_json::Value`.

/// One REST resource of the API (`group`/`version`/`plural`).
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// Has a `/status` subresource: writes to the main resource keep `status`, writes to
    /// `/status` change only `status` (as the real apiserver does).
    pub status: bool,
}

const fn rt(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
) -> ResourceType {
    ResourceType {
        group,
        version,
        plural,
        kind,
        namespaced,
        status,
    }
}

/// Every resource the emulation serves. Anything else is an unexpected request.
pub static RESOURCES: &[ResourceType] = &[
    rt("", "v1", "namespaces", "Namespace", false, true),
    rt("", "v1", "pods", "Pod", true, true),
    rt(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        true,
    ),
    rt("", "v1", "events", "Event", true, false),
    rt("events.k8s.io", "v1", "events", "Event", true, false),
    // Every kind `kubectl exec TYPE/NAME` (and so BAK_DB_*_EXEC_RESOURCE) resolves to a pod.
    rt(
        "",
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        true,
        true,
    ),
    rt("", "v1", "services", "Service", true, true),
    rt("apps", "v1", "deployments", "Deployment", true, true),
    rt("apps", "v1", "statefulsets", "StatefulSet", true, true),
    rt("apps", "v1", "replicasets", "ReplicaSet", true, true),
    rt("apps", "v1", "daemonsets", "DaemonSet", true, true),
    rt("batch", "v1", "jobs", "Job", true, true),
    rt("batch", "v1", "cronjobs", "CronJob", true, true),
    rt("coordination.k8s.io", "v1", "leases", "Lease", true, false),
    rt(
        "snapshot.storage.k8s.io",
        "v1",
        "volumesnapshots",
        "VolumeSnapshot",
        true,
        true,
    ),
    rt(
        "snapshot.storage.k8s.io",
        "v1",
        "volumesnapshotcontents",
        "VolumeSnapshotContent",
        false,
        true,
    ),
    rt(
        "snapshot.storage.k8s.io",
        "v1",
        "volumesnapshotclasses",
        "VolumeSnapshotClass",
        false,
        false,
    ),
    rt(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "StorageClass",
        false,
        false,
    ),
];

impl ResourceType {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, `leases.coordination.k8s.io`: how the apiserver names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Pod`, `VolumeSnapshot.snapshot.storage.k8s.io`: how validation messages name a kind.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
        RESOURCES
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// The resource of an object, from its `apiVersion` and `kind`.
    pub fn for_object(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
        RESOURCES
            .iter()
            .find(|r| r.api_version() == api_version && r.kind == kind)
    }

    /// `volumesnapshots` or `events.events.k8s.io`; a bare plural names the first match.
    pub fn by_name(name: &str) -> Option<&'static ResourceType> {
        RESOURCES
            .iter()
            .find(|r| r.qualified() == name)
            .or_else(|| RESOURCES.iter().find(|r| r.plural == name))
    }

    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.group == group && self.plural == plural
    }
}
