//! A stand-in for the scheduler and the kubelet, for pods created through the API (seeds are
//! stored as given and never touched): what a helper pod goes through on a real node.
//!
//! - Created: `Pending` (with the API server's defaults, and its 422 for a pod without
//!   containers or images, or mounting a volume it does not declare).
//! - Scheduled once every PVC it uses exists, is not being deleted and is `Bound`: a
//!   `WaitForFirstConsumer` claim is bound only now (the scheduler sets
//!   `volume.kubernetes.io/selected-node` and the provisioner follows); a missing claim leaves it
//!   `PodScheduled: False` (`Unschedulable`) with the scheduler's Warning event
//!   `FailedScheduling`. Scheduling sets `nodeName`, `startTime` and containers waiting in
//!   `ContainerCreating`.
//! - Started [`Pods::start_after`] later: `Running`, `Ready`/`ContainersReady`, running
//!   containerStatuses with `image`/`imageID`/`containerID`, `podIP` — unless its image cannot be
//!   pulled ([`Pods::image_pull_fails_matching`]: it stays Pending, waiting `ImagePullBackOff`,
//!   with the kubelet's Warning event `Failed`), or `runAsNonRoot` contradicts the user it would
//!   run as (`CreateContainerConfigError`). Starting "mounts" its volumes: each PVC gets a
//!   directory ([`super::volumes`]) and, with `fsGroup`, the kubelet's ownership change (group
//!   `fsGroup`, `g+rw`, setgid directories; needs root); each `emptyDir` a fresh directory.
//! - `activeDeadlineSeconds` after scheduling: `Failed`, reason `DeadlineExceeded`, its exec
//!   children killed.
//! - DELETE: graceful like the pod strategy (`deletionTimestamp` = now + grace, the pod stays
//!   for [`Pods::delete_grace`], then goes and its exec children are killed); at once for
//!   `gracePeriodSeconds: 0`, an unscheduled pod or a terminated one.
//!
//! Timed steps run on the controller task's queue ([`super::controller::Work::Pod`]), like the
//! snapshot controller's and the provisioner's.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::api_error::ApiError;
use super::controller::Work;
use super::exec::ExecEnv;
use super::provisioner::{self, SELECTED_NODE};
use super::resources::ResourceType;
use super::store::{is_terminating, now_rfc3339, Origin, Preconditions, Scope, Store};
use super::{lock, Shared};

pub const NODE: &str = "emu-node";
const HOST_IP: &str = "10.89.0.2";

/// The kubelet's knobs and bookkeeping.
pub struct Settings {
    pub start_after: Duration,
    pub delete_grace: Duration,
    image_pull_fails: Vec<Regex>,
    /// How exec children of created pods run: `path` and `extra_env`, and `uid_gid` as the
    /// image's user when the securityContext names none.
    pub exec_env: ExecEnv,
    /// Uids of the pods created through the API.
    managed: HashSet<String>,
    /// Per pod uid: its directory (default cwd, emptyDirs).
    dirs: HashMap<String, PathBuf>,
    /// Per pod uid: process groups of its running exec children.
    children: HashMap<String, Vec<u32>>,
    pod_seq: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            start_after: Duration::from_millis(300),
            delete_grace: Duration::from_millis(200),
            image_pull_fails: Vec::new(),
            exec_env: ExecEnv::default(),
            managed: HashSet::new(),
            dirs: HashMap::new(),
            children: HashMap::new(),
            pod_seq: 0,
        }
    }
}

/// The handle's view of the kubelet: `emu.pods().image_pull_fails_matching("^nope/")`.
pub struct Pods<'a>(pub(super) &'a Shared);

impl Pods<'_> {
    /// How long a scheduled pod takes to become Running and Ready (default 300 ms), for pods
    /// scheduled from now on.
    pub fn start_after(&self, d: Duration) -> &Self {
        lock(&self.0.kubelet).start_after = d;
        self
    }

    /// How long a deleted pod stays terminating before it is gone (default 200 ms).
    pub fn delete_grace(&self, d: Duration) -> &Self {
        lock(&self.0.kubelet).delete_grace = d;
        self
    }

    /// Pods whose name or a container's image matches `re` never get their image: they stay
    /// Pending with containers waiting in `ImagePullBackOff`.
    pub fn image_pull_fails_matching(&self, re: &str) -> &Self {
        let re = Regex::new(re).unwrap_or_else(|e| panic!("bad image regex {re:?}: {e}"));
        lock(&self.0.kubelet).image_pull_fails.push(re);
        self
    }
}

/// The kubelet's steps for one pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Schedule,
    Start,
    Deadline,
    Remove,
}

fn pods() -> &'static ResourceType {
    ResourceType::find("", "v1", "pods").expect("pods in the table")
}

fn pvcs() -> &'static ResourceType {
    ResourceType::find("", "v1", "persistentvolumeclaims").expect("pvcs in the table")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_default()
}

fn as_array(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// Whether a created object is a pod this kubelet runs.
pub fn runs(rt: &ResourceType, origin: Origin) -> bool {
    origin == Origin::Api && rt.is("", "pods")
}

/// The API server's validation and defaults for a new pod (the part a helper pod meets).
pub fn admit(mut pod: Value) -> Result<Value, ApiError> {
    let name = pod["metadata"]["name"]
        .as_str()
        .or(pod["metadata"]["generateName"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut causes = Vec::new();
    let volumes: Vec<&str> = as_array(&pod["spec"]["volumes"])
        .filter_map(|v| v["name"].as_str())
        .collect();
    let containers = pod["spec"]["containers"].as_array().cloned();
    match &containers {
        None => causes.push(("spec.containers".to_string(), "Required value".to_string())),
        Some(cs) if cs.is_empty() => {
            causes.push(("spec.containers".to_string(), "Required value".to_string()))
        }
        Some(cs) => {
            for (i, c) in cs.iter().enumerate() {
                if str_of(c, "name").is_empty() {
                    causes.push((
                        format!("spec.containers[{i}].name"),
                        "Required value".into(),
                    ));
                }
                if str_of(c, "image").is_empty() {
                    causes.push((
                        format!("spec.containers[{i}].image"),
                        "Required value".into(),
                    ));
                }
                for (j, m) in as_array(&c["volumeMounts"]).enumerate() {
                    let v = str_of(m, "name");
                    if !volumes.contains(&v) {
                        causes.push((
                            format!("spec.containers[{i}].volumeMounts[{j}].name"),
                            format!("Not found: \"{v}\""),
                        ));
                    }
                }
            }
        }
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(pods(), &name, &causes));
    }
    let spec = &mut pod["spec"];
    for (field, default) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("serviceAccountName", json!("default")),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
    ] {
        if spec[field].is_null() {
            spec[field] = default;
        }
    }
    if let Some(cs) = spec["containers"].as_array_mut() {
        for c in cs {
            let image = str_of(c, "image").to_string();
            if c["imagePullPolicy"].is_null() {
                let latest = !image.contains(':') || image.ends_with(":latest");
                c["imagePullPolicy"] = json!(if latest && !image.contains('@') {
                    "Always"
                } else {
                    "IfNotPresent"
                });
            }
            if c["terminationMessagePath"].is_null() {
                c["terminationMessagePath"] = json!("/dev/termination-log");
                c["terminationMessagePolicy"] = json!("File");
            }
        }
    }
    Ok(pod)
}

/// After the create, under the store lock: `Pending`, and the kubelet's bookkeeping. The caller
/// then queues [`Step::Schedule`] ([`schedule_soon`]).
pub fn created(shared: &Shared, store: &mut Store, pod: &Value) {
    let m = &pod["metadata"];
    let (ns, name) = (str_of(m, "namespace"), str_of(m, "name"));
    let status = json!({ "status": { "phase": "Pending", "qosClass": qos(pod) } });
    let _ = store.update(pods(), Some(ns), name, status, Scope::Status, false);
    lock(&shared.kubelet)
        .managed
        .insert(str_of(m, "uid").to_string());
}

/// Queues the first step of a new pod.
pub fn schedule_soon(shared: &Shared, pod: &Value) {
    queue(shared, key(pod), Step::Schedule, Duration::ZERO);
}

type PodKey = (String, String, String);

fn key(pod: &Value) -> PodKey {
    let m = &pod["metadata"];
    (
        str_of(m, "namespace").to_string(),
        str_of(m, "name").to_string(),
        str_of(m, "uid").to_string(),
    )
}

fn queue(shared: &Shared, pod: PodKey, step: Step, after: Duration) {
    let _ = shared.controller.send(Work::Pod { pod, step, after });
}

fn qos(pod: &Value) -> &'static str {
    let cs: Vec<&Value> = as_array(&pod["spec"]["containers"]).collect();
    let none = cs.iter().all(|c| {
        c["resources"]["requests"]
            .as_object()
            .is_none_or(|r| r.is_empty())
            && c["resources"]["limits"]
                .as_object()
                .is_none_or(|r| r.is_empty())
    });
    let guaranteed = cs.iter().all(|c| {
        let r = &c["resources"];
        ["cpu", "memory"].iter().all(|k| {
            !r["limits"][k].is_null()
                && (r["requests"][k].is_null() || r["requests"][k] == r["limits"][k])
        })
    });
    if none {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An event about a pod. `once`: not again when an event with this reason and message exists.
fn event(
    store: &mut Store,
    pod: &Value,
    type_: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let m = &pod["metadata"];
    let (ns, name, uid) = (str_of(m, "namespace"), str_of(m, "name"), str_of(m, "uid"));
    let events = ResourceType::find("", "v1", "events").expect("events in the table");
    let seen = store.list(events, Some(ns), None).any(|(_, e)| {
        e["involvedObject"]["uid"] == uid && e["reason"] == reason && e["message"] == message
    });
    if seen {
        return;
    }
    let now = now_rfc3339();
    let digest = Sha256::digest(format!("{uid}{reason}{message}").as_bytes());
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": { "namespace": ns, "name": format!("{name}.{}", &hex(&digest)[..16]) },
        "involvedObject": {
            "apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": name, "uid": uid,
        },
        "type": type_,
        "reason": reason,
        "message": message,
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "source": { "component": component, "host": NODE },
    });
    let _ = store.create(events, event, None, Origin::Seed, false);
}

fn set_status(store: &mut Store, pod: &Value, status: Value) {
    let (ns, name, _) = key(pod);
    let _ = store.update(
        pods(),
        Some(&ns),
        &name,
        json!({ "status": status }),
        Scope::Status,
        false,
    );
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, message: Option<&str>) -> Value {
    let mut c = json!({
        "type": type_,
        "status": if ok { "True" } else { "False" },
        "lastProbeTime": null,
        "lastTransitionTime": now_rfc3339(),
    });
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

/// `postgres:15` → `docker.io/library/postgres:15`, as containerd reports an image.
fn normalized(image: &str) -> String {
    let (name, tag) = match image.split_once('@') {
        Some((n, d)) => (n.to_string(), format!("@{d}")),
        None => match image.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((n, t)) => (n.to_string(), format!(":{t}")),
            None => (image.to_string(), ":latest".to_string()),
        },
    };
    let first = name.split('/').next().unwrap_or_default();
    let domain = first.contains('.') || first.contains(':') || first == "localhost";
    let name = match (domain, name.contains('/')) {
        (true, _) => name,
        (false, true) => format!("docker.io/{name}"),
        (false, false) => format!("docker.io/library/{name}"),
    };
    format!("{name}{tag}")
}

fn image_id(image: &str) -> String {
    let full = normalized(image);
    let repo = full
        .split('@')
        .next()
        .map(|n| {
            n.rsplit_once(':')
                .filter(|(_, t)| !t.contains('/'))
                .map_or(n, |(r, _)| r)
        })
        .unwrap_or_default()
        .to_string();
    format!("{repo}@sha256:{}", hex(&Sha256::digest(full.as_bytes())))
}

fn claims(pod: &Value) -> Vec<String> {
    as_array(&pod["spec"]["volumes"])
        .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .map(str::to_string)
        .collect()
}

fn container_statuses(pod: &Value, state: impl Fn(&Value) -> Value, ready: bool) -> Vec<Value> {
    as_array(&pod["spec"]["containers"])
        .map(|c| {
            let image = str_of(c, "image");
            let mut s = json!({
                "name": c["name"],
                "state": state(c),
                "lastState": {},
                "ready": ready,
                "restartCount": 0,
                "image": normalized(image),
                "imageID": "",
                "started": ready,
            });
            if ready {
                s["imageID"] = json!(image_id(image));
                let digest =
                    Sha256::digest(format!("{}{}", pod["metadata"]["uid"], c["name"]).as_bytes());
                s["containerID"] = json!(format!("containerd://{}", hex(&digest)));
            }
            s
        })
        .collect()
}

fn waiting(reason: &str, message: Option<&str>) -> Value {
    let mut w = json!({ "reason": reason });
    if let Some(m) = message {
        w["message"] = json!(m);
    }
    json!({ "waiting": w })
}

/// One step of the kubelet for a pod; returns the follow-up steps with their delays.
pub fn step(
    shared: &Shared,
    (ns, name, uid): (&str, &str, &str),
    step: Step,
) -> Vec<(Duration, Step)> {
    let mut store = lock(&shared.store);
    let Some(pod) = store.get(pods(), Some(ns), name).cloned() else {
        return Vec::new();
    };
    if pod["metadata"]["uid"] != uid {
        return Vec::new();
    }
    match step {
        Step::Schedule => schedule(shared, &mut store, &pod),
        Step::Start => {
            start(shared, &mut store, &pod);
            Vec::new()
        }
        Step::Deadline => {
            deadline(shared, &mut store, &pod);
            Vec::new()
        }
        Step::Remove => {
            if is_terminating(&pod) {
                remove(shared, &mut store, &pod);
            }
            Vec::new()
        }
    }
}

const RETRY: Duration = Duration::from_millis(100);

fn unschedulable(store: &mut Store, pod: &Value, why: &str) -> Vec<(Duration, Step)> {
    let message = format!(
        "0/1 nodes are available: {why}. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    );
    let current = as_array(&pod["status"]["conditions"])
        .find(|c| c["type"] == "PodScheduled")
        .and_then(|c| c["message"].as_str());
    if current != Some(message.as_str()) {
        let mut status = pod["status"].clone();
        status["conditions"] = json!([condition(
            "PodScheduled",
            false,
            Some("Unschedulable"),
            Some(&message)
        )]);
        set_status(store, pod, status);
    }
    event(
        store,
        pod,
        "Warning",
        "FailedScheduling",
        &message,
        "default-scheduler",
    );
    vec![(RETRY * 2, Step::Schedule)]
}

fn schedule(shared: &Shared, store: &mut Store, pod: &Value) -> Vec<(Duration, Step)> {
    if is_terminating(pod)
        || pod["status"]["phase"] != "Pending"
        || !str_of(&pod["spec"], "nodeName").is_empty()
    {
        return Vec::new();
    }
    let (ns, name, _) = key(pod);
    let classes = ResourceType::find("storage.k8s.io", "v1", "storageclasses").expect("classes");
    let mut unbound = false;
    for claim in claims(pod) {
        let Some(pvc) = store.get(pvcs(), Some(&ns), &claim).cloned() else {
            return unschedulable(
                store,
                pod,
                &format!("persistentvolumeclaim \"{claim}\" not found"),
            );
        };
        if is_terminating(&pvc) {
            return unschedulable(
                store,
                pod,
                &format!("persistentvolumeclaim \"{claim}\" is being deleted"),
            );
        }
        if pvc["status"]["phase"] == "Bound" {
            continue;
        }
        unbound = true;
        let wffc = pvc["spec"]["storageClassName"]
            .as_str()
            .and_then(|c| store.get(classes, None, c))
            .is_some_and(|c| c["volumeBindingMode"] == "WaitForFirstConsumer");
        if !wffc {
            return unschedulable(
                store,
                pod,
                "pod has unbound immediate PersistentVolumeClaims",
            );
        }
        if pvc["metadata"]["annotations"][SELECTED_NODE].is_null() {
            let mut selected = pvc.clone();
            selected["metadata"]["annotations"][SELECTED_NODE] = json!(NODE);
            if let Ok(updated) =
                store.update(pvcs(), Some(&ns), &claim, selected, Scope::Main, false)
            {
                super::controller::provision(shared, &updated);
            }
        }
    }
    if unbound {
        return vec![(RETRY, Step::Schedule)];
    }
    let mut bound = pod.clone();
    bound["spec"]["nodeName"] = json!(NODE);
    let Ok(bound) = store.update(pods(), Some(&ns), &name, bound, Scope::Main, false) else {
        return vec![(RETRY, Step::Schedule)];
    };
    let status = json!({
        "phase": "Pending",
        "conditions": [
            condition("PodReadyToStartContainers", false, None, None),
            condition("Initialized", true, None, None),
            condition("Ready", false, Some("ContainersNotReady"), Some("containers with unready status")),
            condition("ContainersReady", false, Some("ContainersNotReady"), Some("containers with unready status")),
            condition("PodScheduled", true, None, None),
        ],
        "hostIP": HOST_IP,
        "hostIPs": [{ "ip": HOST_IP }],
        "startTime": now_rfc3339(),
        "qosClass": pod["status"]["qosClass"],
        "containerStatuses": container_statuses(pod, |_| waiting("ContainerCreating", None), false),
    });
    set_status(store, &bound, status);
    event(
        store,
        pod,
        "Normal",
        "Scheduled",
        &format!("Successfully assigned {ns}/{name} to {NODE}"),
        "default-scheduler",
    );
    let mut next = vec![(lock(&shared.kubelet).start_after, Step::Start)];
    if let Some(secs) = pod["spec"]["activeDeadlineSeconds"].as_u64() {
        next.push((Duration::from_secs(secs), Step::Deadline));
    }
    next
}

/// Sets the group of every file to `gid` and adds group read/write (setgid and search on
/// directories), as the kubelet's `SetVolumeOwnership` does for `fsGroup`.
fn apply_fs_group(dir: &Path, gid: u32) {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    let _ = std::os::unix::fs::lchown(dir, None, Some(gid));
    let mut mode = meta.mode() & 0o7777 | 0o660;
    if meta.is_dir() {
        mode |= 0o2110;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode));
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            apply_fs_group(&entry.path(), gid);
        }
    }
}

/// The user a container runs as: the securityContext's (container over pod), else the
/// image's ([`Settings::exec_env`]`.uid_gid`, root when unset).
fn run_as(pod: &Value, container: &Value, image_user: Option<(u32, u32)>) -> (Option<u32>, u32) {
    let pick = |field: &str| {
        container["securityContext"][field]
            .as_u64()
            .or(pod["spec"]["securityContext"][field].as_u64())
            .and_then(|v| u32::try_from(v).ok())
    };
    match (pick("runAsUser"), pick("runAsGroup")) {
        (Some(u), g) => (Some(u), g.unwrap_or(0)),
        (None, g) => (
            image_user.map(|(u, _)| u),
            g.or(image_user.map(|(_, g)| g)).unwrap_or(0),
        ),
    }
}

fn start(shared: &Shared, store: &mut Store, pod: &Value) {
    if is_terminating(pod) || pod["status"]["phase"] != "Pending" {
        return;
    }
    let (ns, name, uid) = key(pod);
    let (fails, image_user) = {
        let k = lock(&shared.kubelet);
        (k.image_pull_fails.clone(), k.exec_env.uid_gid)
    };
    let failing = as_array(&pod["spec"]["containers"]).find(|c| {
        fails
            .iter()
            .any(|re| re.is_match(&name) || re.is_match(str_of(c, "image")))
    });
    let mut status = pod["status"].clone();
    if let Some(c) = failing {
        let image = str_of(c, "image");
        let full = normalized(image);
        let cause = format!(
            "failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed"
        );
        let back_off = format!("Back-off pulling image \"{image}\": ErrImagePull: {cause}");
        let c_name = c["name"].clone();
        status["containerStatuses"] = json!(container_statuses(
            pod,
            |x| if x["name"] == c_name {
                waiting("ImagePullBackOff", Some(&back_off))
            } else {
                waiting("ContainerCreating", None)
            },
            false
        ));
        set_status(store, pod, status);
        event(
            store,
            pod,
            "Normal",
            "Pulling",
            &format!("Pulling image \"{image}\""),
            "kubelet",
        );
        let failed =
            format!("Failed to pull image \"{image}\": rpc error: code = Unknown desc = {cause}");
        event(store, pod, "Warning", "Failed", &failed, "kubelet");
        event(
            store,
            pod,
            "Warning",
            "Failed",
            "Error: ErrImagePull",
            "kubelet",
        );
        event(
            store,
            pod,
            "Normal",
            "BackOff",
            &format!("Back-off pulling image \"{image}\""),
            "kubelet",
        );
        event(
            store,
            pod,
            "Warning",
            "Failed",
            "Error: ImagePullBackOff",
            "kubelet",
        );
        return;
    }
    for c in as_array(&pod["spec"]["containers"]) {
        let non_root = c["securityContext"]["runAsNonRoot"]
            .as_bool()
            .or(pod["spec"]["securityContext"]["runAsNonRoot"].as_bool())
            == Some(true);
        let message = match run_as(pod, c, image_user) {
            (Some(0), _) if non_root => format!(
                "container's runAsUser breaks non-root policy (pod: \"{name}_{ns}({uid})\", container: {})",
                str_of(c, "name")
            ),
            (None, _) if non_root => format!(
                "container has runAsNonRoot and image will run as root (pod: \"{name}_{ns}({uid})\", container: {})",
                str_of(c, "name")
            ),
            _ => continue,
        };
        let c_name = c["name"].clone();
        status["containerStatuses"] = json!(container_statuses(
            pod,
            |x| if x["name"] == c_name {
                waiting("CreateContainerConfigError", Some(&message))
            } else {
                waiting("ContainerCreating", None)
            },
            false
        ));
        set_status(store, pod, status);
        event(
            store,
            pod,
            "Warning",
            "Failed",
            &format!("Error: {message}"),
            "kubelet",
        );
        return;
    }
    // Mount: PVC directories (fsGroup applied), emptyDirs, the default working directory.
    let fs_group = pod["spec"]["securityContext"]["fsGroup"]
        .as_u64()
        .and_then(|g| u32::try_from(g).ok());
    let uid_gid = as_array(&pod["spec"]["containers"])
        .next()
        .map(|c| run_as(pod, c, image_user));
    let pod_dir = {
        let mut volumes = lock(&shared.volumes);
        for claim in claims(pod) {
            let dir = volumes.pvc_dir_or_new(&ns, &claim);
            if let (Some(g), true) = (fs_group, is_root()) {
                apply_fs_group(&dir, g);
            }
        }
        let pod_dir = volumes.fresh("pods", &name);
        let mut dirs = vec![pod_dir.join("cwd")];
        for v in as_array(&pod["spec"]["volumes"]).filter(|v| v["emptyDir"].is_object()) {
            dirs.push(pod_dir.join("volumes").join(str_of(v, "name")));
        }
        for dir in &dirs {
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777));
            if let (Some((Some(u), g)), true) = (uid_gid, is_root()) {
                let _ = std::os::unix::fs::chown(dir, Some(u), Some(fs_group.unwrap_or(g)));
            }
        }
        for dir in [&pod_dir, &pod_dir.join("volumes")] {
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
        }
        pod_dir
    };
    lock(&shared.kubelet).dirs.insert(uid.clone(), pod_dir);
    let started = now_rfc3339();
    let n = lock(&shared.kubelet).managed.len();
    let pod_ip = format!("10.244.0.{}", 10 + n % 240);
    status["phase"] = json!("Running");
    status["podIP"] = json!(pod_ip);
    status["podIPs"] = json!([{ "ip": pod_ip }]);
    status["conditions"] = json!([
        condition("PodReadyToStartContainers", true, None, None),
        condition("Initialized", true, None, None),
        condition("Ready", true, None, None),
        condition("ContainersReady", true, None, None),
        condition("PodScheduled", true, None, None),
    ]);
    status["containerStatuses"] = json!(container_statuses(
        pod,
        |_| json!({ "running": { "startedAt": started } }),
        true
    ));
    set_status(store, pod, status);
    for c in as_array(&pod["spec"]["containers"]) {
        let (image, c_name) = (str_of(c, "image"), str_of(c, "name"));
        event(
            store,
            pod,
            "Normal",
            "Pulled",
            &format!("Container image \"{image}\" already present on machine"),
            "kubelet",
        );
        event(
            store,
            pod,
            "Normal",
            "Created",
            &format!("Created container: {c_name}"),
            "kubelet",
        );
        event(
            store,
            pod,
            "Normal",
            "Started",
            &format!("Started container {c_name}"),
            "kubelet",
        );
    }
}

fn deadline(shared: &Shared, store: &mut Store, pod: &Value) {
    if matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    ) {
        return;
    }
    let (ns, _, uid) = key(pod);
    kill_children(shared, &uid);
    let finished = now_rfc3339();
    let mut status = pod["status"].clone();
    status["phase"] = json!("Failed");
    status["reason"] = json!("DeadlineExceeded");
    status["message"] = json!("Pod was active on the node longer than the specified deadline");
    status["conditions"] = json!([
        condition("PodReadyToStartContainers", false, None, None),
        condition("Initialized", true, None, None),
        condition("Ready", false, Some("PodFailed"), None),
        condition("ContainersReady", false, Some("PodFailed"), None),
        condition("PodScheduled", true, None, None),
    ]);
    status["containerStatuses"] = json!(container_statuses(
        pod,
        |_| json!({ "terminated": { "exitCode": 137, "reason": "Error", "finishedAt": finished } }),
        false
    ));
    set_status(store, pod, status);
    event(
        store,
        pod,
        "Warning",
        "DeadlineExceeded",
        "Pod was active on the node longer than the specified deadline",
        "kubelet",
    );
    provisioner::protect(store, &mut lock(&shared.volumes), &ns);
}

/// The pod is gone for good: its exec children killed, its directories removed, the claims it
/// held released.
fn remove(shared: &Shared, store: &mut Store, pod: &Value) {
    let (ns, name, uid) = key(pod);
    kill_children(shared, &uid);
    let _ = store.delete(pods(), Some(&ns), &name, &Preconditions::default(), false);
    forget(shared, &uid);
    provisioner::protect(store, &mut lock(&shared.volumes), &ns);
}

fn forget(shared: &Shared, uid: &str) {
    let mut k = lock(&shared.kubelet);
    k.managed.remove(uid);
    if let Some(dir) = k.dirs.remove(uid) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// DELETE of a pod: `None` when the kubelet does not run it (the store deletes it at once);
/// else as the pod strategy: graceful for a scheduled, not terminated pod — `deletionTimestamp`
/// now + grace, gone after [`Pods::delete_grace`] — and at once otherwise or for grace 0.
pub fn delete(
    shared: &Shared,
    store: &mut Store,
    (ns, name): (&str, &str),
    pre: &Preconditions,
    grace: Option<i64>,
    dry_run: bool,
) -> Option<Result<Value, ApiError>> {
    let pod = store.get(pods(), Some(ns), name)?.clone();
    let uid = str_of(&pod["metadata"], "uid").to_string();
    if !lock(&shared.kubelet).managed.contains(&uid) {
        return None;
    }
    // The preconditions, checked without deleting.
    if let Err(e) = store.delete(pods(), Some(ns), name, pre, true) {
        return Some(Err(e));
    }
    if dry_run {
        return Some(Ok(pod));
    }
    let scheduled = !str_of(&pod["spec"], "nodeName").is_empty();
    let done = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    if grace == Some(0) || !scheduled || done {
        kill_children(shared, &uid);
        let gone = store.delete(pods(), Some(ns), name, pre, false);
        if store.get(pods(), Some(ns), name).is_none() {
            forget(shared, &uid);
        }
        provisioner::protect(store, &mut lock(&shared.volumes), ns);
        return Some(gone);
    }
    if is_terminating(&pod) {
        return Some(Ok(pod));
    }
    let secs = grace
        .or(pod["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(30)
        .max(1);
    let mut terminating = pod.clone();
    let at = jiff::Timestamp::now().as_second() + secs;
    terminating["metadata"]["deletionTimestamp"] = json!(jiff::Timestamp::from_second(at)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now_rfc3339()));
    terminating["metadata"]["deletionGracePeriodSeconds"] = json!(secs);
    if let Some(m) = terminating["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    let result = store.update(pods(), Some(ns), name, terminating, Scope::Whole, false);
    let after = lock(&shared.kubelet).delete_grace;
    queue(shared, key(&pod), Step::Remove, after);
    Some(result)
}

/// Registers a running exec child (its own process group) of a pod.
pub fn child_started(shared: &Shared, uid: &str, pid: u32) {
    lock(&shared.kubelet)
        .children
        .entry(uid.to_string())
        .or_default()
        .push(pid);
}

pub fn child_ended(shared: &Shared, uid: &str, pid: u32) {
    if let Some(pids) = lock(&shared.kubelet).children.get_mut(uid) {
        pids.retain(|p| *p != pid);
    }
}

/// Kills the process groups of a pod's exec children, as stopping its containers does.
pub fn kill_children(shared: &Shared, uid: &str) {
    let pids = lock(&shared.kubelet)
        .children
        .remove(uid)
        .unwrap_or_default();
    for pid in pids {
        if let Ok(pgid) = i32::try_from(pid) {
            // SAFETY: kill has no memory-safety preconditions; a stale group gets ESRCH.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Why an exec into a created pod is refused.
pub enum NotRunning {
    /// Not scheduled: the API server's 400.
    NoHost,
    /// Scheduled, container not running: the kubelet's `container not found ("c")`.
    ContainerNotFound,
}

/// How an exec child of a created pod runs.
pub struct PodExec {
    pub env: ExecEnv,
    /// Supplementary groups (`fsGroup`, `supplementalGroups`).
    pub groups: Vec<u32>,
    pub uid: String,
}

/// The exec plan for a container of a pod the kubelet runs; `None` for other pods.
pub fn exec_plan(
    shared: &Shared,
    pod: &Value,
    container: &Value,
) -> Option<Result<PodExec, NotRunning>> {
    let (ns, _, uid) = key(pod);
    let (base, pod_dir) = {
        let k = lock(&shared.kubelet);
        if !k.managed.contains(&uid) {
            return None;
        }
        (k.exec_env.clone(), k.dirs.get(&uid).cloned())
    };
    if str_of(&pod["spec"], "nodeName").is_empty() {
        return Some(Err(NotRunning::NoHost));
    }
    let running = pod["status"]["phase"] == "Running"
        && as_array(&pod["status"]["containerStatuses"])
            .any(|s| s["name"] == container["name"] && s["state"]["running"].is_object());
    let Some(pod_dir) = pod_dir.filter(|_| running) else {
        return Some(Err(NotRunning::ContainerNotFound));
    };
    let volume = |name: &str| {
        as_array(&pod["spec"]["volumes"])
            .find(|v| v["name"] == name)
            .cloned()
    };
    // The working directory: inside the volume mounted deepest above it, else the pod's own.
    let working_dir = str_of(container, "workingDir");
    let mount = as_array(&container["volumeMounts"])
        .filter(|m| {
            let p = str_of(m, "mountPath").trim_end_matches('/');
            !working_dir.is_empty()
                && (working_dir == p || working_dir.starts_with(&format!("{p}/")))
        })
        .max_by_key(|m| str_of(m, "mountPath").len());
    let cwd = mount.and_then(|m| {
        let v = volume(str_of(m, "name"))?;
        let base = if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
            lock(&shared.volumes).pvc_dir(&ns, claim)?
        } else if v["emptyDir"].is_object() {
            pod_dir.join("volumes").join(str_of(&v, "name"))
        } else {
            return None;
        };
        let rest = working_dir[str_of(m, "mountPath").trim_end_matches('/').len()..]
            .trim_start_matches('/');
        let sub = str_of(m, "subPath");
        Some(base.join(sub).join(rest))
    });
    let mut env = ExecEnv {
        cwd: Some(cwd.unwrap_or_else(|| pod_dir.join("cwd"))),
        path: base.path.clone(),
        uid_gid: None,
        extra_env: base.extra_env.clone(),
    };
    let tmp = as_array(&container["volumeMounts"])
        .find(|m| str_of(m, "mountPath").trim_end_matches('/') == "/tmp")
        .and_then(|m| volume(str_of(m, "name")))
        .filter(|v| v["emptyDir"].is_object());
    if let Some(v) = tmp {
        let dir = pod_dir.join("volumes").join(str_of(&v, "name"));
        env.extra_env
            .push(("TMPDIR".into(), dir.display().to_string()));
    }
    let mut groups = Vec::new();
    if let (Some(u), g) = run_as(pod, container, base.uid_gid) {
        if is_root() {
            env.uid_gid = Some((u, g));
            let sc = &pod["spec"]["securityContext"];
            groups.extend(sc["fsGroup"].as_u64().and_then(|g| u32::try_from(g).ok()));
            groups.extend(
                as_array(&sc["supplementalGroups"])
                    .filter_map(|g| g.as_u64())
                    .filter_map(|g| u32::try_from(g).ok()),
            );
        }
    }
    Some(Ok(PodExec { env, groups, uid }))
}
