//! A stand-in for the PersistentVolume controller and a CSI external-provisioner: a PVC created
//! through the API (seeds are stored as given) gets the cluster's default StorageClass when it
//! names none (the `DefaultStorageClass` admission plugin), starts `Pending`, and is then bound
//! — without a PersistentVolume object: `spec.volumeName`, `status.phase: Bound`, `capacity` —
//! unless something a real cluster would stop at stops it:
//!
//! - its class has `volumeBindingMode: WaitForFirstConsumer`: it stays Pending, with the PV
//!   controller's Normal event `WaitForFirstConsumer`, until the scheduler picks a node for a pod
//!   that uses it (the annotation `volume.kubernetes.io/selected-node`, set by
//!   [`super::kubelet`]); then it is provisioned like any other;
//! - its class does not exist, its `dataSource` snapshot does not exist or is not ready, or it
//!   asks for less than the snapshot's `restoreSize`: it stays Pending with the provisioner's
//!   Warning event `ProvisioningFailed` (same wording as external-provisioner), retried like
//!   the provisioner retries (a snapshot that becomes ready later is then provisioned);
//! - it names no class and there is no default: nothing provisions it (it waits for a
//!   pre-created PV, which this emulation has none of).
//!
//! A PVC created without `accessModes` or a storage request is refused (422) like the API
//! server refuses it. A PVC created through the API gets the `kubernetes.io/pvc-protection`
//! finalizer (the `StorageObjectInUseProtection` admission plugin): deleted while a scheduled,
//! not terminated pod uses it, it stays terminating until no such pod is left
//! ([`protect`]).
//!
//! A provisioned PVC gets a directory for its data ([`super::volumes`]): a copy of the
//! snapshot's data when restored from a snapshot, else an empty one.

use serde_json::{json, Value};

use super::api_error::ApiError;
use super::resources::ResourceType;
use super::store::{is_terminating, now_rfc3339, Origin, Scope, Store};
use super::volumes::Volumes;

const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
const PROVISIONER: &str = "emu.csi.k8s.io_csi-provisioner";
/// Set by the scheduler on a `WaitForFirstConsumer` claim once a pod using it is scheduled.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The finalizer that keeps a PVC while a pod uses it.
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";

fn pvc_type() -> &'static ResourceType {
    ResourceType::find("", "v1", "persistentvolumeclaims").expect("pvcs in the table")
}

fn content_type() -> &'static ResourceType {
    ResourceType::find("snapshot.storage.k8s.io", "v1", "volumesnapshotcontents")
        .expect("contents in the table")
}

fn class_type() -> &'static ResourceType {
    ResourceType::find("storage.k8s.io", "v1", "storageclasses").expect("classes in the table")
}

/// Whether a created object is a PVC this emulation provisions.
pub fn provisions(rt: &ResourceType, origin: Origin) -> bool {
    origin == Origin::Api && rt.is("", "persistentvolumeclaims")
}

/// The API server's checks and defaults on a new PVC: required fields, the default class.
pub fn admit(store: &Store, mut pvc: Value) -> Result<Value, ApiError> {
    let name = pvc["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut causes = Vec::new();
    if pvc["spec"]["accessModes"]
        .as_array()
        .is_none_or(|m| m.is_empty())
    {
        causes.push((
            "spec.accessModes".to_string(),
            "Required value: at least 1 access mode is required".to_string(),
        ));
    }
    if pvc["spec"]["resources"]["requests"]["storage"].is_null() {
        causes.push((
            "spec.resources[storage]".to_string(),
            "Required value".to_string(),
        ));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(pvc_type(), &name, &causes));
    }
    if pvc["spec"]["storageClassName"].is_null() {
        if let Some(default) = store
            .list(class_type(), None, None)
            .map(|(_, c)| c)
            .find(|c| c["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] == "true")
        {
            pvc["spec"]["storageClassName"] = default["metadata"]["name"].clone();
        }
    }
    if pvc["spec"]["volumeMode"].is_null() {
        pvc["spec"]["volumeMode"] = json!("Filesystem");
    }
    let mut finalizers = pvc["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !finalizers.iter().any(|f| f == PVC_PROTECTION) {
        finalizers.push(json!(PVC_PROTECTION));
    }
    pvc["metadata"]["finalizers"] = json!(finalizers);
    Ok(pvc)
}

/// After the create: `status.phase: Pending`, as the API server's PVC strategy sets it.
pub fn created(store: &mut Store, ns: &str, name: &str) {
    let _ = store.update(
        pvc_type(),
        Some(ns),
        name,
        json!({ "status": { "phase": "Pending" } }),
        Scope::Status,
        false,
    );
}

/// An event about the PVC, once per reason (a repeat of the same failure adds nothing).
fn event(store: &mut Store, pvc: &Value, type_: &str, reason: &str, message: String) {
    let m = &pvc["metadata"];
    let ns = m["namespace"].as_str().unwrap_or_default();
    let name = m["name"].as_str().unwrap_or_default();
    let uid = m["uid"].as_str().unwrap_or_default();
    let now = now_rfc3339();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "namespace": ns,
            "name": format!("{name}.{}.{}", &uid[..uid.len().min(8)], reason.to_lowercase()),
        },
        "involvedObject": {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "namespace": ns, "name": name, "uid": uid,
        },
        "type": type_,
        "reason": reason,
        "message": message,
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "source": { "component": if reason == "WaitForFirstConsumer" {
            "persistentvolume-controller"
        } else {
            PROVISIONER
        } },
    });
    let rt = ResourceType::find("", "v1", "events").expect("events in the table");
    let _ = store.create(rt, event, None, Origin::Seed, false);
}

/// Whether to look again later.
pub enum Next {
    Done,
    Retry,
}

/// Quantity to bytes (`1Gi`, `500M`, plain bytes).
fn bytes(q: &str) -> Option<u128> {
    let split = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let (n, unit) = q.split_at(split);
    let mult: u128 = match unit {
        "" => 1,
        "k" => 1000,
        "M" => 1000u128.pow(2),
        "G" => 1000u128.pow(3),
        "T" => 1000u128.pow(4),
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    n.parse::<u128>().ok()?.checked_mul(mult)
}

/// One attempt to provision and bind the PVC (and give it a directory in `volumes`).
pub fn reconcile(
    store: &mut Store,
    volumes: &mut Volumes,
    (ns, name, uid): (&str, &str, &str),
) -> Next {
    let Some(pvc) = store.get(pvc_type(), Some(ns), name).cloned() else {
        return Next::Done;
    };
    if pvc["metadata"]["uid"] != uid || pvc["status"]["phase"] == "Bound" {
        return Next::Done;
    }
    let Some(class_name) = pvc["spec"]["storageClassName"].as_str() else {
        return Next::Done;
    };
    let Some(class) = store.get(class_type(), None, class_name).cloned() else {
        let message = format!("storageclass.storage.k8s.io \"{class_name}\" not found");
        event(store, &pvc, "Warning", "ProvisioningFailed", message);
        return Next::Retry;
    };
    if class["volumeBindingMode"] == "WaitForFirstConsumer"
        && pvc["metadata"]["annotations"][SELECTED_NODE].is_null()
    {
        let message = "waiting for first consumer to be created before binding".to_string();
        event(store, &pvc, "Normal", "WaitForFirstConsumer", message);
        return Next::Done;
    }
    let request = pvc["spec"]["resources"]["requests"]["storage"]
        .as_str()
        .unwrap_or("1Gi")
        .to_string();
    let source = &pvc["spec"]["dataSource"];
    let mut snapshot_handle = None;
    if source["kind"] == "VolumeSnapshot" {
        let vs_name = source["name"].as_str().unwrap_or_default();
        let prefix =
            format!("error getting handle for DataSource Type VolumeSnapshot by Name {vs_name}");
        let vs_type = ResourceType::find("snapshot.storage.k8s.io", "v1", "volumesnapshots")
            .expect("snapshots in the table");
        let Some(vs) = store.get(vs_type, Some(ns), vs_name).cloned() else {
            let message = format!(
                "failed to provision volume with StorageClass \"{class_name}\": {prefix}: error getting snapshot {vs_name} from api server: volumesnapshots.snapshot.storage.k8s.io \"{vs_name}\" not found"
            );
            event(store, &pvc, "Warning", "ProvisioningFailed", message);
            return Next::Retry;
        };
        if vs["status"]["readyToUse"] != true || !vs["metadata"]["deletionTimestamp"].is_null() {
            let message = format!(
                "failed to provision volume with StorageClass \"{class_name}\": {prefix}: snapshot {vs_name} is not Ready"
            );
            event(store, &pvc, "Warning", "ProvisioningFailed", message);
            return Next::Retry;
        }
        let restore = vs["status"]["restoreSize"].as_str().and_then(bytes);
        let asked = bytes(&request);
        if let (Some(r), Some(a)) = (restore, asked) {
            if a < r {
                let message = format!(
                    "failed to provision volume with StorageClass \"{class_name}\": requested volume size {a} is less than the size {r} for the source snapshot {vs_name}"
                );
                event(store, &pvc, "Warning", "ProvisioningFailed", message);
                return Next::Done;
            }
        }
        snapshot_handle = vs["status"]["boundVolumeSnapshotContentName"]
            .as_str()
            .and_then(|c| store.get(content_type(), None, c))
            .and_then(|c| c["status"]["snapshotHandle"].as_str())
            .map(str::to_string);
    }
    let mut bound = pvc.clone();
    bound["spec"]["volumeName"] = json!(format!("pvc-{uid}"));
    if store
        .update(pvc_type(), Some(ns), name, bound, Scope::Main, false)
        .is_err()
    {
        return Next::Retry;
    }
    let status = json!({ "status": {
        "phase": "Bound",
        "accessModes": pvc["spec"]["accessModes"].clone(),
        "capacity": { "storage": request },
    }});
    let _ = store.update(pvc_type(), Some(ns), name, status, Scope::Status, false);
    volumes.provisioned(ns, name, snapshot_handle.as_deref());
    let message = format!("Successfully provisioned volume pvc-{uid}");
    event(store, &pvc, "Normal", "ProvisioningSucceeded", message);
    Next::Done
}

/// Whether a pod keeps a claim in use for the pvc-protection controller: scheduled (the
/// kubelet only starts scheduled pods), not terminated, and naming the claim in a volume.
pub fn pod_uses(pod: &Value, claim: &str) -> bool {
    let scheduled = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let done = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    scheduled
        && !done
        && pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == claim)
}

/// The pvc-protection controller: every terminating PVC of `ns` that no pod uses any more
/// loses its `kubernetes.io/pvc-protection` finalizer (and so goes, when it was the last one).
/// Called whenever a PVC is deleted or a pod goes or terminates.
pub fn protect(store: &mut Store, volumes: &mut Volumes, ns: &str) {
    let pods = ResourceType::find("", "v1", "pods").expect("pods in the table");
    let terminating: Vec<Value> = store
        .list(pvc_type(), Some(ns), None)
        .map(|(_, p)| p)
        .filter(|p| {
            is_terminating(p)
                && p["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f == PVC_PROTECTION))
        })
        .cloned()
        .collect();
    for pvc in terminating {
        let name = pvc["metadata"]["name"].as_str().unwrap_or_default();
        let in_use = store
            .list(pods, Some(ns), None)
            .any(|(_, pod)| pod_uses(pod, name));
        if in_use {
            continue;
        }
        let mut next = pvc.clone();
        let kept: Vec<Value> = pvc["metadata"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| *f != PVC_PROTECTION)
            .cloned()
            .collect();
        next["metadata"]["finalizers"] = json!(kept);
        let _ = store.update(pvc_type(), Some(ns), name, next, Scope::Main, false);
        if store.get(pvc_type(), Some(ns), name).is_none() {
            volumes.pvc_gone(ns, name);
        }
    }
}
