//! A stand-in for the CSI snapshot controller and driver: a VolumeSnapshot created through the
//! API (or seeded without `status`) is bound to a new VolumeSnapshotContent and becomes
//! `readyToUse` after a delay — or never, or fails with `status.error`, as a test configures per
//! snapshot name or per PVC. backup-ns waits for exactly these fields, so they must move like
//! they do in a cluster. Runs as one tokio task of the emulation's runtime.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::resources::ResourceType;
use super::store::{now_rfc3339, Origin, Preconditions, Scope, Store};
use super::{lock, Shared};

const GROUP: &str = "snapshot.storage.k8s.io";
/// The driver of contents when no VolumeSnapshotClass exists.
pub const DEFAULT_DRIVER: &str = "emu.csi.k8s.io";
const DEFAULT_CLASS_ANNOTATION: &str = "snapshot.storage.kubernetes.io/is-default-class";

/// What happens to a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub enum Behavior {
    /// Bound and `readyToUse: true` after the delay (the default).
    Ready,
    /// Bound to a content but `readyToUse: false` forever.
    NeverReady,
    /// `status.error.message` set, `readyToUse: false`, no content.
    Fail(String),
}

#[derive(Debug)]
enum Target {
    Name(Regex),
    Pvc { namespace: String, name: String },
}

/// The controller's configuration; the first matching rule wins.
#[derive(Debug)]
pub struct Settings {
    pub ready_after: Duration,
    rules: Vec<(Target, Behavior)>,
}

impl Settings {
    pub fn new(ready_after: Duration) -> Self {
        Settings {
            ready_after,
            rules: Vec::new(),
        }
    }

    fn behavior(&self, ns: &str, name: &str, pvc: &str) -> Behavior {
        self.rules
            .iter()
            .find(|(t, _)| match t {
                Target::Name(re) => re.is_match(name),
                Target::Pvc { namespace, name } => namespace == ns && name == pvc,
            })
            .map_or(Behavior::Ready, |(_, b)| b.clone())
    }
}

/// The handle's view of the controller: `emu.snapshots().fail_matching("^nightly-", "boom")`.
pub struct Snapshots<'a>(pub(super) &'a Shared);

impl Snapshots<'_> {
    /// The delay between creation and the status update, for snapshots created from now on.
    pub fn ready_after(&self, d: Duration) -> &Self {
        lock(&self.0.snapshots).ready_after = d;
        self
    }

    fn rule(&self, target: Target, behavior: Behavior) -> &Self {
        lock(&self.0.snapshots).rules.push((target, behavior));
        self
    }

    fn name_re(re: &str) -> Target {
        Target::Name(
            Regex::new(re).unwrap_or_else(|e| panic!("bad snapshot name regex {re:?}: {e}")),
        )
    }

    /// Snapshots whose name matches `re` never become ready.
    pub fn never_ready_matching(&self, re: &str) -> &Self {
        self.rule(Self::name_re(re), Behavior::NeverReady)
    }

    /// Snapshots whose name matches `re` fail with `message`.
    pub fn fail_matching(&self, re: &str, message: &str) -> &Self {
        self.rule(Self::name_re(re), Behavior::Fail(message.into()))
    }

    /// Snapshots of this PVC never become ready.
    pub fn never_ready_for_pvc(&self, namespace: &str, pvc: &str) -> &Self {
        self.rule(
            Target::Pvc {
                namespace: namespace.into(),
                name: pvc.into(),
            },
            Behavior::NeverReady,
        )
    }

    /// Snapshots of this PVC fail with `message`.
    pub fn fail_for_pvc(&self, namespace: &str, pvc: &str, message: &str) -> &Self {
        self.rule(
            Target::Pvc {
                namespace: namespace.into(),
                name: pvc.into(),
            },
            Behavior::Fail(message.into()),
        )
    }
}

/// A snapshot to reconcile: namespace, name, uid (a recreated namesake is another snapshot).
pub type Work = (String, String, String);

fn vs_type() -> &'static ResourceType {
    ResourceType::find(GROUP, "v1", "volumesnapshots").expect("volumesnapshots in the table")
}

/// Called after every create: queues snapshots that have no status yet.
pub fn created(shared: &Shared, rt: &ResourceType, obj: &Value) {
    if !rt.is(GROUP, "volumesnapshots") || obj.get("status").is_some() {
        return;
    }
    let m = &obj["metadata"];
    let s = |f: &str| m[f].as_str().unwrap_or_default().to_string();
    let _ = shared
        .controller
        .send((s("namespace"), s("name"), s("uid")));
}

/// Called after every delete, under the store lock: a deleted snapshot takes its content along
/// when the content's `deletionPolicy` is `Delete` (synchronously, so tests need not wait).
pub fn deleted(store: &mut Store, rt: &ResourceType, obj: &Value) {
    if !rt.is(GROUP, "volumesnapshots") {
        return;
    }
    let Some(content_name) = obj["status"]["boundVolumeSnapshotContentName"].as_str() else {
        return;
    };
    let Some(vsc) = ResourceType::find(GROUP, "v1", "volumesnapshotcontents") else {
        return;
    };
    let Some(content) = store.get(vsc, None, content_name) else {
        return;
    };
    let ours = content["spec"]["volumeSnapshotRef"]["uid"] == obj["metadata"]["uid"];
    if ours && content["spec"]["deletionPolicy"] == "Delete" {
        let _ = store.delete(vsc, None, content_name, &Preconditions::default(), false);
    }
}

/// The controller task: a timer queue of snapshots to reconcile.
pub async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Work>) {
    let mut queue: BinaryHeap<Reverse<(Instant, u64, Work)>> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let next = queue.peek().map(|Reverse((at, _, _))| *at);
        tokio::select! {
            work = rx.recv() => {
                let Some(work) = work else { return };
                seq += 1;
                let at = Instant::now() + lock(&shared.snapshots).ready_after;
                queue.push(Reverse((at, seq, work)));
            }
            _ = async { tokio::time::sleep_until(next.unwrap_or_else(Instant::now)).await }, if next.is_some() => {
                let Some(Reverse((_, _, work))) = queue.pop() else { continue };
                let settings = lock(&shared.snapshots);
                let requeue = reconcile(&mut lock(&shared.store), &settings, &work);
                if requeue {
                    seq += 1;
                    queue.push(Reverse((Instant::now() + settings.ready_after.max(Duration::from_millis(50)), seq, work)));
                }
            }
        }
    }
}

/// Parses a quantity such as `1Gi` or `500M` into bytes.
fn quantity_bytes(q: &str) -> Option<i64> {
    let split = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let (n, unit) = q.split_at(split);
    let mult: i64 = match unit {
        "" => 1,
        "k" => 1000,
        "M" => 1000_i64.pow(2),
        "G" => 1000_i64.pow(3),
        "T" => 1000_i64.pow(4),
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    n.parse::<i64>().ok()?.checked_mul(mult)
}

fn set_status(store: &mut Store, ns: &str, name: &str, status: Value) {
    let _ = store.update(
        vs_type(),
        Some(ns),
        name,
        json!({ "status": status }),
        Scope::Status,
        false,
    );
}

fn error_status(message: String) -> Value {
    json!({ "error": { "message": message, "time": now_rfc3339() }, "readyToUse": false })
}

/// One reconcile; `true` asks to be retried later (the PVC is not bound yet).
fn reconcile(store: &mut Store, settings: &Settings, (ns, name, uid): &Work) -> bool {
    let Some(vs) = store.get(vs_type(), Some(ns), name).cloned() else {
        return false;
    };
    if vs["metadata"]["uid"] != uid.as_str() || vs.get("status").is_some() {
        return false;
    }
    // Pre-provisioned snapshots (spec.source.volumeSnapshotContentName) are not emulated.
    let Some(pvc_name) = vs["spec"]["source"]["persistentVolumeClaimName"].as_str() else {
        return false;
    };
    let behavior = settings.behavior(ns, name, pvc_name);
    if let Behavior::Fail(message) = behavior {
        set_status(store, ns, name, error_status(message));
        return false;
    }
    let pvc_type =
        ResourceType::find("", "v1", "persistentvolumeclaims").expect("pvcs in the table");
    let Some(pvc) = store.get(pvc_type, Some(ns), pvc_name).cloned() else {
        let message = format!(
            "failed to get input parameters to create snapshot {name}: \"persistentvolumeclaims \\\"{pvc_name}\\\" not found\""
        );
        set_status(store, ns, name, error_status(message));
        return false;
    };
    if pvc["status"]["phase"] != "Bound" {
        return true;
    }
    let class_type =
        ResourceType::find(GROUP, "v1", "volumesnapshotclasses").expect("classes in the table");
    let class = match vs["spec"]["volumeSnapshotClassName"].as_str() {
        Some(c) => match store.get(class_type, None, c) {
            Some(class) => Some(class.clone()),
            None => {
                let message = format!(
                    "failed to get input parameters to create snapshot {name}: \"volumesnapshotclasses.snapshot.storage.k8s.io \\\"{c}\\\" not found\""
                );
                set_status(store, ns, name, error_status(message));
                return false;
            }
        },
        None => store
            .list(class_type, None, None)
            .map(|(_, c)| c)
            .find(|c| c["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] == "true")
            .cloned(),
    };
    if let (Some(class), None) = (&class, vs["spec"]["volumeSnapshotClassName"].as_str()) {
        let mut with_class = vs.clone();
        with_class["spec"]["volumeSnapshotClassName"] = class["metadata"]["name"].clone();
        let _ = store.update(vs_type(), Some(ns), name, with_class, Scope::Main, false);
    }
    let driver = class
        .as_ref()
        .and_then(|c| c["driver"].as_str())
        .unwrap_or(DEFAULT_DRIVER);
    let policy = class
        .as_ref()
        .and_then(|c| c["deletionPolicy"].as_str())
        .unwrap_or("Retain");
    let ready = behavior == Behavior::Ready;
    let restore_size = pvc["status"]["capacity"]["storage"]
        .as_str()
        .unwrap_or("1Gi")
        .to_string();
    let content_name = format!("snapcontent-{uid}");
    let mut content = json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": "VolumeSnapshotContent",
        "metadata": { "name": content_name },
        "spec": {
            "deletionPolicy": policy,
            "driver": driver,
            "source": { "volumeHandle": pvc["spec"]["volumeName"].as_str().unwrap_or(pvc_name) },
            "volumeSnapshotRef": {
                "apiVersion": format!("{GROUP}/v1"),
                "kind": "VolumeSnapshot",
                "name": name,
                "namespace": ns,
                "uid": uid,
            },
        },
        "status": { "snapshotHandle": format!("snapshot-{uid}"), "readyToUse": ready },
    });
    if let Some(class) = &class {
        content["spec"]["volumeSnapshotClassName"] = class["metadata"]["name"].clone();
    }
    let mut status = json!({ "boundVolumeSnapshotContentName": content_name, "readyToUse": ready });
    if ready {
        let now = jiff::Timestamp::now();
        content["status"]["creationTime"] =
            json!(i64::try_from(now.as_nanosecond()).unwrap_or(i64::MAX));
        if let Some(bytes) = quantity_bytes(&restore_size) {
            content["status"]["restoreSize"] = json!(bytes);
        }
        status["creationTime"] = json!(now_rfc3339());
        status["restoreSize"] = json!(restore_size);
    }
    let _ = store.create(
        ResourceType::find(GROUP, "v1", "volumesnapshotcontents").expect("contents in the table"),
        content,
        None,
        Origin::Seed,
        false,
    );
    set_status(store, ns, name, status);
    false
}
