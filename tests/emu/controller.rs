//! A stand-in for the CSI snapshot controller and driver: a VolumeSnapshot created through the
//! API (or seeded without `status`) is bound to a new VolumeSnapshotContent and becomes
//! `readyToUse` after a delay — or never, or fails with `status.error`, or reports an error for a
//! while and then becomes ready (with the error cleared, or still set, as kubevirt#4374 saw), or
//! takes much longer than the others, as a test configures per snapshot name or per PVC. backup-ns
//! waits for exactly these fields, so they must move like they do in a cluster.
//!
//! Like the real controller, it puts its finalizers on every snapshot it binds, so a DELETE only
//! makes the snapshot terminating (`deletionTimestamp`); it then removes them at once (the
//! snapshot and a `Delete`-policy content are gone when the DELETE returns), unless a test holds
//! the deletion ([`Snapshots::terminating_for_matching`],
//! [`Snapshots::terminating_until_released_matching`], [`Snapshots::release`]).
//! Runs as one tokio task of the emulation's runtime.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::resources::ResourceType;
use super::store::{has_finalizers, is_terminating, now_rfc3339, Origin, Scope, Store};
use super::{lock, Shared};

const GROUP: &str = "snapshot.storage.k8s.io";
/// The driver of contents when no VolumeSnapshotClass exists.
pub const DEFAULT_DRIVER: &str = "emu.csi.k8s.io";
const DEFAULT_CLASS_ANNOTATION: &str = "snapshot.storage.kubernetes.io/is-default-class";
/// The finalizers the real snapshot controller puts on a snapshot it binds.
pub const SNAPSHOT_FINALIZERS: [&str; 2] = [
    "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection",
    "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection",
];

/// What happens to a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub enum Behavior {
    /// Bound and `readyToUse: true` after the delay (the default).
    Ready,
    /// Bound to a content but `readyToUse: false` forever.
    NeverReady,
    /// `status.error.message` set, `readyToUse: false`, no content.
    Fail(String),
    /// Bound, `readyToUse: false`, and ready only this long after its creation (a slow
    /// snapshot, e.g. the first one of a large cloud volume).
    ReadyAfter(Duration),
    /// Bound with `status.error` set and `readyToUse: false` for `error_for`, then ready; the
    /// error is cleared on that retry, or still set when `keep_error`.
    ErrorThenReady {
        message: String,
        error_for: Duration,
        keep_error: bool,
    },
}

#[derive(Debug)]
enum Target {
    Name(Regex),
    Pvc { namespace: String, name: String },
}

impl Target {
    fn matches(&self, ns: &str, name: &str, pvc: &str) -> bool {
        match self {
            Target::Name(re) => re.is_match(name),
            Target::Pvc { namespace, name: p } => namespace == ns && p == pvc,
        }
    }
}

/// The controller's configuration; the first matching rule wins.
#[derive(Debug)]
pub struct Settings {
    pub ready_after: Duration,
    rules: Vec<(Target, Behavior)>,
    /// Deletions the controller does not finish at once: for how long (`None`: until
    /// [`Snapshots::release`]).
    holds: Vec<(Regex, Option<Duration>)>,
}

impl Settings {
    pub fn new(ready_after: Duration) -> Self {
        Settings {
            ready_after,
            rules: Vec::new(),
            holds: Vec::new(),
        }
    }

    fn behavior(&self, ns: &str, name: &str, pvc: &str) -> Behavior {
        self.rules
            .iter()
            .find(|(t, _)| t.matches(ns, name, pvc))
            .map_or(Behavior::Ready, |(_, b)| b.clone())
    }

    /// Whether a deletion of this snapshot is held: `None` not held, `Some(None)` until
    /// released, `Some(Some(d))` for `d`.
    pub fn deletion_hold(&self, name: &str) -> Option<Option<Duration>> {
        self.holds
            .iter()
            .find(|(re, _)| re.is_match(name))
            .map(|(_, d)| *d)
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

    fn name_re(re: &str) -> Regex {
        Regex::new(re).unwrap_or_else(|e| panic!("bad snapshot name regex {re:?}: {e}"))
    }

    fn pvc(namespace: &str, pvc: &str) -> Target {
        Target::Pvc {
            namespace: namespace.into(),
            name: pvc.into(),
        }
    }

    /// Snapshots whose name matches `re` never become ready.
    pub fn never_ready_matching(&self, re: &str) -> &Self {
        self.rule(Target::Name(Self::name_re(re)), Behavior::NeverReady)
    }

    /// Snapshots whose name matches `re` fail with `message`.
    pub fn fail_matching(&self, re: &str, message: &str) -> &Self {
        self.rule(
            Target::Name(Self::name_re(re)),
            Behavior::Fail(message.into()),
        )
    }

    /// Snapshots of this PVC never become ready.
    pub fn never_ready_for_pvc(&self, namespace: &str, pvc: &str) -> &Self {
        self.rule(Self::pvc(namespace, pvc), Behavior::NeverReady)
    }

    /// Snapshots of this PVC fail with `message` (`readyToUse: false` for good).
    pub fn fail_for_pvc(&self, namespace: &str, pvc: &str, message: &str) -> &Self {
        self.rule(Self::pvc(namespace, pvc), Behavior::Fail(message.into()))
    }

    /// Snapshots of this PVC become ready only `after` their creation (bound and not ready
    /// until then), whatever the global delay.
    pub fn slow_for_pvc(&self, namespace: &str, pvc: &str, after: Duration) -> &Self {
        self.rule(Self::pvc(namespace, pvc), Behavior::ReadyAfter(after))
    }

    /// Snapshots of this PVC report `message` in `status.error` (not ready) for `error_for`,
    /// then become ready with the error cleared, as the controller does on a successful retry.
    pub fn transient_error_for_pvc(
        &self,
        namespace: &str,
        pvc: &str,
        message: &str,
        error_for: Duration,
    ) -> &Self {
        self.rule(
            Self::pvc(namespace, pvc),
            Behavior::ErrorThenReady {
                message: message.into(),
                error_for,
                keep_error: false,
            },
        )
    }

    /// Like [`Snapshots::transient_error_for_pvc`], but the error stays set once the snapshot
    /// is `readyToUse: true` (kubevirt#4374).
    pub fn ready_with_error_for_pvc(
        &self,
        namespace: &str,
        pvc: &str,
        message: &str,
        error_for: Duration,
    ) -> &Self {
        self.rule(
            Self::pvc(namespace, pvc),
            Behavior::ErrorThenReady {
                message: message.into(),
                error_for,
                keep_error: true,
            },
        )
    }

    /// A DELETE of a snapshot whose name matches `re` leaves it terminating (`deletionTimestamp`
    /// set, finalizers kept) for `d`; then the controller finishes the deletion.
    pub fn terminating_for_matching(&self, re: &str, d: Duration) -> &Self {
        lock(&self.0.snapshots)
            .holds
            .push((Self::name_re(re), Some(d)));
        self
    }

    /// A DELETE of a snapshot whose name matches `re` leaves it terminating until
    /// [`Snapshots::release`].
    pub fn terminating_until_released_matching(&self, re: &str) -> &Self {
        lock(&self.0.snapshots)
            .holds
            .push((Self::name_re(re), None));
        self
    }

    /// Finishes a held deletion: removes the controller's finalizers, so the snapshot (and a
    /// `Delete`-policy content) is gone. Returns whether a terminating snapshot was found.
    pub fn release(&self, namespace: &str, name: &str) -> bool {
        finish_deletion(&mut lock(&self.0.store), namespace, name, None)
    }
}

/// A job for the controller task.
#[derive(Debug, Clone)]
pub enum Work {
    /// A new snapshot (namespace, name, uid — a recreated namesake is another snapshot), due
    /// after the global delay.
    Reconcile(String, String, String),
    /// Make it ready (clearing `status.error` unless `keep_error`), due after the delay.
    Ready {
        snapshot: (String, String, String),
        keep_error: bool,
        after: Duration,
    },
    /// Finish a held deletion after the delay.
    Release {
        snapshot: (String, String, String),
        after: Duration,
    },
    /// Provision and bind a PVC created through the API (namespace, name, uid), due after the
    /// global delay; see [`super::provisioner`].
    Provision(String, String, String),
    /// A step of the kubelet for a pod created through the API, due after the delay; see
    /// [`super::kubelet`].
    Pod {
        pod: (String, String, String),
        step: super::kubelet::Step,
        after: Duration,
    },
}

fn vs_type() -> &'static ResourceType {
    ResourceType::find(GROUP, "v1", "volumesnapshots").expect("volumesnapshots in the table")
}

/// Called after every create: queues snapshots that have no status yet, and lets the driver
/// look up the stored snapshot of a pre-provisioned content.
pub fn created(shared: &Shared, rt: &ResourceType, obj: &Value) {
    if rt.is(GROUP, "volumesnapshotcontents") && obj.get("status").is_none() {
        import_content(&mut lock(&shared.store), obj);
        return;
    }
    if !rt.is(GROUP, "volumesnapshots") || obj.get("status").is_some() {
        return;
    }
    let m = &obj["metadata"];
    let s = |f: &str| m[f].as_str().unwrap_or_default().to_string();
    let _ = shared
        .controller
        .send(Work::Reconcile(s("namespace"), s("name"), s("uid")));
}

/// Called after a PVC was created through the API: queues its provisioning.
pub fn provision(shared: &Shared, obj: &Value) {
    let m = &obj["metadata"];
    let s = |f: &str| m[f].as_str().unwrap_or_default().to_string();
    let _ = shared
        .controller
        .send(Work::Provision(s("namespace"), s("name"), s("uid")));
}

/// Called after every delete, under the store lock, with the hold decided beforehand
/// ([`Settings::deletion_hold`]). A terminating snapshot has its controller finalizers removed
/// at once unless held; a snapshot that is gone takes its content along when the content's
/// `deletionPolicy` is `Delete` (synchronously, so tests need not wait).
pub fn deleted(
    shared: &Shared,
    store: &mut Store,
    rt: &ResourceType,
    obj: &Value,
    hold: Option<Option<Duration>>,
) {
    if !rt.is(GROUP, "volumesnapshots") {
        return;
    }
    let m = &obj["metadata"];
    let s = |f: &str| m[f].as_str().unwrap_or_default().to_string();
    if has_finalizers(obj) && is_terminating(obj) {
        match hold {
            None => {
                finish_deletion(store, &s("namespace"), &s("name"), Some(&s("uid")));
            }
            Some(None) => {}
            Some(Some(after)) => {
                let _ = shared.controller.send(Work::Release {
                    snapshot: (s("namespace"), s("name"), s("uid")),
                    after,
                });
            }
        }
        return;
    }
    delete_content(store, obj);
}

/// Removes the controller's finalizers from a terminating snapshot; when none is left, the
/// store drops it and its `Delete`-policy content goes too.
fn finish_deletion(store: &mut Store, ns: &str, name: &str, uid: Option<&str>) -> bool {
    let Some(vs) = store.get(vs_type(), Some(ns), name).cloned() else {
        return false;
    };
    if !is_terminating(&vs) || uid.is_some_and(|u| vs["metadata"]["uid"] != u) {
        return false;
    }
    let mut next = vs.clone();
    let kept: Vec<Value> = vs["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| !SNAPSHOT_FINALIZERS.iter().any(|c| *f == *c))
        .cloned()
        .collect();
    next["metadata"]["finalizers"] = json!(kept);
    if let Ok(updated) = store.update(vs_type(), Some(ns), name, next, Scope::Main, false) {
        if store.get(vs_type(), Some(ns), name).is_none() {
            delete_content(store, &updated);
        }
    }
    true
}

/// A snapshot that is gone takes its content along when the content's `deletionPolicy` is
/// `Delete`.
pub fn delete_content(store: &mut Store, obj: &Value) {
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
        let _ = store.delete(
            vsc,
            None,
            content_name,
            &super::store::Preconditions::default(),
            false,
        );
    }
}

/// Jobs ordered by due time (then by arrival).
#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    jobs: std::collections::HashMap<u64, Work>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, at: Instant, work: Work) {
        self.seq += 1;
        self.jobs.insert(self.seq, work);
        self.heap.push(Reverse((at, self.seq)));
    }

    fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    fn pop(&mut self) -> Option<Work> {
        let Reverse((_, id)) = self.heap.pop()?;
        self.jobs.remove(&id)
    }
}

/// The controller task: a timer queue of jobs.
pub async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Work>) {
    let mut queue = Queue::default();
    loop {
        let next = queue.next_due();
        tokio::select! {
            work = rx.recv() => {
                let Some(work) = work else { return };
                let delay = match &work {
                    Work::Reconcile(..) | Work::Provision(..) => lock(&shared.snapshots).ready_after,
                    Work::Ready { after, .. } | Work::Release { after, .. } | Work::Pod { after, .. } => *after,
                };
                queue.push(Instant::now() + delay, work);
            }
            _ = async { tokio::time::sleep_until(next.unwrap_or_else(Instant::now)).await }, if next.is_some() => {
                let Some(work) = queue.pop() else { continue };
                match work {
                    Work::Reconcile(ns, name, uid) => {
                        let settings = lock(&shared.snapshots);
                        let retry = settings.ready_after.max(Duration::from_millis(50));
                        let outcome = reconcile(&mut lock(&shared.store), &settings, (&ns, &name, &uid));
                        drop(settings);
                        match outcome {
                            Next::Done => {}
                            Next::Retry => queue.push(Instant::now() + retry, Work::Reconcile(ns, name, uid)),
                            Next::ReadyAt { after, keep_error } => queue.push(
                                Instant::now() + after,
                                Work::Ready { snapshot: (ns, name, uid), keep_error, after },
                            ),
                        }
                    }
                    Work::Ready { snapshot: (ns, name, uid), keep_error, .. } => {
                        become_ready(&mut lock(&shared.store), &ns, &name, &uid, keep_error);
                    }
                    Work::Release { snapshot: (ns, name, uid), .. } => {
                        finish_deletion(&mut lock(&shared.store), &ns, &name, Some(&uid));
                    }
                    Work::Provision(ns, name, uid) => {
                        let retry = lock(&shared.snapshots).ready_after.max(Duration::from_millis(50));
                        let next = super::provisioner::reconcile(
                            &mut lock(&shared.store),
                            &mut lock(&shared.volumes),
                            (&ns, &name, &uid),
                        );
                        if let super::provisioner::Next::Retry = next {
                            queue.push(Instant::now() + retry, Work::Provision(ns, name, uid));
                        }
                    }
                    Work::Pod { pod: (ns, name, uid), step, .. } => {
                        for (after, step) in super::kubelet::step(&shared, (&ns, &name, &uid), step) {
                            let pod = (ns.clone(), name.clone(), uid.clone());
                            queue.push(Instant::now() + after, Work::Pod { pod, step, after });
                        }
                    }
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

/// What the controller does next about a snapshot after a reconcile.
enum Next {
    Done,
    /// The PVC is not bound yet: look again later.
    Retry,
    /// Make it ready after this delay.
    ReadyAt {
        after: Duration,
        keep_error: bool,
    },
}

/// One reconcile of a new snapshot.
fn reconcile(store: &mut Store, settings: &Settings, (ns, name, uid): (&str, &str, &str)) -> Next {
    let Some(vs) = store.get(vs_type(), Some(ns), name).cloned() else {
        return Next::Done;
    };
    if vs["metadata"]["uid"] != uid || is_terminating(&vs) {
        return Next::Done;
    }
    if let Some(content) = vs["spec"]["source"]["volumeSnapshotContentName"].as_str() {
        if vs["status"]["readyToUse"] == true {
            return Next::Done;
        }
        return bind_preprovisioned(store, &vs, content.to_owned());
    }
    if vs.get("status").is_some() {
        return Next::Done;
    }
    let Some(pvc_name) = vs["spec"]["source"]["persistentVolumeClaimName"].as_str() else {
        return Next::Done;
    };
    let behavior = settings.behavior(ns, name, pvc_name);
    if let Behavior::Fail(message) = behavior {
        set_status(store, ns, name, error_status(message));
        return Next::Done;
    }
    let pvc_type =
        ResourceType::find("", "v1", "persistentvolumeclaims").expect("pvcs in the table");
    let Some(pvc) = store.get(pvc_type, Some(ns), pvc_name).cloned() else {
        let message = format!(
            "failed to get input parameters to create snapshot {name}: \"persistentvolumeclaims \\\"{pvc_name}\\\" not found\""
        );
        set_status(store, ns, name, error_status(message));
        return Next::Done;
    };
    if pvc["status"]["phase"] != "Bound" {
        return Next::Retry;
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
                return Next::Done;
            }
        },
        None => store
            .list(class_type, None, None)
            .map(|(_, c)| c)
            .find(|c| c["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] == "true")
            .cloned(),
    };
    // Binding: the class (when defaulted) and the controller's finalizers, as the real one does.
    let mut bound = vs.clone();
    if let (Some(class), None) = (&class, vs["spec"]["volumeSnapshotClassName"].as_str()) {
        bound["spec"]["volumeSnapshotClassName"] = class["metadata"]["name"].clone();
    }
    let mut finalizers: Vec<Value> = vs["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for f in SNAPSHOT_FINALIZERS {
        if !finalizers.iter().any(|x| x == f) {
            finalizers.push(json!(f));
        }
    }
    bound["metadata"]["finalizers"] = json!(finalizers);
    let _ = store.update(vs_type(), Some(ns), name, bound, Scope::Main, false);
    let driver = class
        .as_ref()
        .and_then(|c| c["driver"].as_str())
        .unwrap_or(DEFAULT_DRIVER);
    let policy = class
        .as_ref()
        .and_then(|c| c["deletionPolicy"].as_str())
        .unwrap_or("Retain");
    let ready = behavior == Behavior::Ready;
    let (next, error) = match &behavior {
        Behavior::ReadyAfter(after) => (
            Next::ReadyAt {
                after: *after,
                keep_error: false,
            },
            None,
        ),
        Behavior::ErrorThenReady {
            message,
            error_for,
            keep_error,
        } => (
            Next::ReadyAt {
                after: *error_for,
                keep_error: *keep_error,
            },
            Some(message.clone()),
        ),
        _ => (Next::Done, None),
    };
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
        mark_ready(&mut content, &mut status, &restore_size);
    }
    if let Some(message) = error {
        status["error"] = json!({ "message": message, "time": now_rfc3339() });
    }
    let _ = store.create(
        ResourceType::find(GROUP, "v1", "volumesnapshotcontents").expect("contents in the table"),
        content,
        None,
        Origin::Seed,
        false,
    );
    set_status(store, ns, name, status);
    next
}

fn contents_type() -> &'static ResourceType {
    ResourceType::find(GROUP, "v1", "volumesnapshotcontents").expect("contents in the table")
}

/// What the CSI sidecar does with a pre-provisioned content (`spec.source.snapshotHandle`):
/// asks the driver for that stored snapshot and fills `status` from it. The emulated driver
/// knows the handles of the contents the controller cut (a stored snapshot lives as long as
/// any content reports it); an unknown handle gets the real sidecar's error.
fn import_content(store: &mut Store, obj: &Value) {
    let Some(handle) = obj["spec"]["source"]["snapshotHandle"].as_str() else {
        return;
    };
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let stored = store
        .list(contents_type(), None, None)
        .map(|(_, c)| c)
        .find(|c| c["metadata"]["name"] != name && c["status"]["snapshotHandle"] == handle)
        .map(|c| c["status"].clone());
    let status = match stored {
        Some(found) => {
            let mut status = json!({
                "snapshotHandle": handle,
                "readyToUse": found["readyToUse"].as_bool().unwrap_or(false),
            });
            for field in ["restoreSize", "creationTime"] {
                if !found[field].is_null() {
                    status[field] = found[field].clone();
                }
            }
            status
        }
        None => json!({
            "readyToUse": false,
            "error": { "message": "can not find snapshot", "time": now_rfc3339() },
        }),
    };
    let _ = store.update(
        contents_type(),
        None,
        name,
        json!({ "status": status }),
        Scope::Status,
        false,
    );
}

/// Binds a pre-provisioned snapshot (`spec.source.volumeSnapshotContentName`) as the real
/// controller does: only to a content whose `volumeSnapshotRef` names this snapshot (and, once
/// set, its uid) and whose source is a `snapshotHandle` (a dynamically provisioned content is
/// never rebound: external-snapshotter#290). Binding sets the content's ref uid, the snapshot's
/// finalizers and its status from the content's (`readyToUse`, `restoreSize`, `creationTime`).
/// A missing content or a content not ready yet is looked at again later; a misbound one leaves
/// the snapshot unbound with the controller's error.
fn bind_preprovisioned(store: &mut Store, vs: &Value, content_name: String) -> Next {
    let m = &vs["metadata"];
    let (ns, name, uid) = (
        m["namespace"].as_str().unwrap_or_default(),
        m["name"].as_str().unwrap_or_default(),
        m["uid"].as_str().unwrap_or_default(),
    );
    let Some(content) = store.get(contents_type(), None, &content_name).cloned() else {
        set_status(
            store,
            ns,
            name,
            error_status("VolumeSnapshotContent is missing".into()),
        );
        return Next::Retry;
    };
    let r = &content["spec"]["volumeSnapshotRef"];
    let ref_uid = r["uid"].as_str().unwrap_or_default();
    let matches = r["namespace"] == ns
        && r["name"] == name
        && (ref_uid.is_empty() || ref_uid == uid)
        && content["spec"]["source"]["snapshotHandle"].is_string();
    if !matches {
        set_status(
            store,
            ns,
            name,
            error_status(
                "VolumeSnapshotContent is not bound to the VolumeSnapshot correctly".into(),
            ),
        );
        return Next::Done;
    }
    if ref_uid.is_empty() {
        let mut bound = content.clone();
        bound["spec"]["volumeSnapshotRef"]["uid"] = json!(uid);
        let _ = store.update(
            contents_type(),
            None,
            &content_name,
            bound,
            Scope::Main,
            false,
        );
    }
    let mut with_finalizers = vs.clone();
    let mut finalizers: Vec<Value> = vs["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for f in SNAPSHOT_FINALIZERS {
        if !finalizers.iter().any(|x| x == f) {
            finalizers.push(json!(f));
        }
    }
    with_finalizers["metadata"]["finalizers"] = json!(finalizers);
    let _ = store.update(
        vs_type(),
        Some(ns),
        name,
        with_finalizers,
        Scope::Main,
        false,
    );
    let cs = &content["status"];
    let ready = cs["readyToUse"].as_bool().unwrap_or(false);
    let mut status = json!({ "boundVolumeSnapshotContentName": content_name, "readyToUse": ready });
    if let Some(bytes) = cs["restoreSize"].as_i64() {
        status["restoreSize"] = json!(bytes_quantity(bytes));
    }
    if let Some(nanos) = cs["creationTime"].as_i64() {
        if let Ok(t) = jiff::Timestamp::from_nanosecond(i128::from(nanos)) {
            status["creationTime"] = json!(t.to_string());
        }
    }
    if let Some(message) = cs["error"]["message"].as_str() {
        status["error"] = json!({ "message": message, "time": now_rfc3339() });
    }
    set_status(store, ns, name, status);
    if ready {
        Next::Done
    } else {
        // Bound; the status follows the content's once the driver reports the snapshot.
        Next::Retry
    }
}

/// Bytes as the controller writes a quantity (`1Gi` when it divides evenly).
fn bytes_quantity(bytes: i64) -> String {
    for (unit, size) in [
        ("Ti", 1_i64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes != 0 && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// The fields a cut snapshot gets: `readyToUse`, `creationTime`, `restoreSize`.
fn mark_ready(content: &mut Value, status: &mut Value, restore_size: &str) {
    let now = jiff::Timestamp::now();
    content["status"]["readyToUse"] = json!(true);
    content["status"]["creationTime"] =
        json!(i64::try_from(now.as_nanosecond()).unwrap_or(i64::MAX));
    if let Some(bytes) = quantity_bytes(restore_size) {
        content["status"]["restoreSize"] = json!(bytes);
    }
    status["readyToUse"] = json!(true);
    status["creationTime"] = json!(now_rfc3339());
    status["restoreSize"] = json!(restore_size);
}

/// A slow or transiently failing snapshot is cut at last: ready, the error cleared unless kept.
fn become_ready(store: &mut Store, ns: &str, name: &str, uid: &str, keep_error: bool) {
    let Some(vs) = store.get(vs_type(), Some(ns), name).cloned() else {
        return;
    };
    if vs["metadata"]["uid"] != uid {
        return;
    }
    let mut status = vs["status"].clone();
    let Some(content_name) = status["boundVolumeSnapshotContentName"]
        .as_str()
        .map(str::to_string)
    else {
        return;
    };
    let vsc =
        ResourceType::find(GROUP, "v1", "volumesnapshotcontents").expect("contents in the table");
    let Some(mut content) = store.get(vsc, None, &content_name).cloned() else {
        return;
    };
    let pvc_type =
        ResourceType::find("", "v1", "persistentvolumeclaims").expect("pvcs in the table");
    let restore_size = vs["spec"]["source"]["persistentVolumeClaimName"]
        .as_str()
        .and_then(|p| store.get(pvc_type, Some(ns), p))
        .and_then(|p| p["status"]["capacity"]["storage"].as_str())
        .unwrap_or("1Gi")
        .to_string();
    mark_ready(&mut content, &mut status, &restore_size);
    if !keep_error {
        if let Some(s) = status.as_object_mut() {
            s.remove("error");
        }
    }
    let _ = store.update(vsc, None, &content_name, content, Scope::Whole, false);
    set_status(store, ns, name, status);
}
