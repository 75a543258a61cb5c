//! A local emulation of the Kubernetes API for backup-ns's tests: a real HTTP/1.1 server on
//! 127.0.0.1 that kube-rs reaches through an ordinary kubeconfig. It keeps objects in memory,
//! answers like the apiserver (status codes, `Status` bodies, resourceVersions, selectors,
//! pagination, patches, preconditions), runs `pods/exec` commands as local child processes over
//! the real WebSocket protocol, plays the CSI snapshot controller, injects faults on request and
//! logs every call. Anything it does not implement is answered with an error *and* recorded:
//! [`Emu::assert_no_unexpected`] fails the test, and so does dropping the handle (unless the
//! thread is already panicking), so a test cannot pass by accident on an unemulated call.
//!
//! The server runs on its own thread and tokio runtime, so it keeps serving while the test
//! blocks or awaits a child process (e.g. the `backup-ns` binary pointed at
//! [`Emu::write_kubeconfig`]); dropping the handle stops it.
//!
//! ```ignore
//! let emu = Emu::start().await;
//! emu.create(fixtures::pvc("app", "data", true));
//! let client = emu.client().await;
//! // … exercise backup-ns …
//! assert_eq!(emu.count(Verb::Create, "volumesnapshots"), 1);
//! emu.assert_no_unexpected();
//! ```
//!
//! Snapshot states a real cluster shows, set per snapshot name or PVC through [`Emu::snapshots`]:
//! never ready, failed (`status.error`), a transient `status.error` that the controller clears
//! on a later retry (`transient_error_for_pvc`) or leaves set on a ready snapshot
//! (`ready_with_error_for_pvc`), slow (`slow_for_pvc`: ready long after the others).
//!
//! Terminating snapshots: the store honours `metadata.finalizers` like the apiserver — a DELETE
//! of an object with finalizers sets `deletionTimestamp` and the object stays until an update
//! removes its last finalizer (none can be added meanwhile). The snapshot controller puts the
//! real one's finalizers (`…/volumesnapshot-as-source-protection`,
//! `…/volumesnapshot-bound-protection`) on every snapshot it binds and removes them as soon as
//! the snapshot is deleted, so by default a DELETE still removes a snapshot at once. To see a
//! snapshot terminating, hold its deletion:
//!
//! ```ignore
//! emu.snapshots().terminating_until_released_matching("^data-"); // until …
//! emu.snapshots().release("ns", "data-2025-01-08-…");             // … this
//! emu.snapshots().terminating_for_matching("^old-", Duration::from_secs(5));
//! ```
//!
//! or seed one with `deletionTimestamp` and `finalizers` in its metadata (seeds are stored as
//! given; [`Emu::replace`] without the finalizers finishes its deletion).
//!
//! Data and pods, for the restore/download/verify flows ([`volumes`], [`kubelet`]):
//!
//! ```ignore
//! emu.set_pvc_dir("ns", "data", live_dir);           // the PVC's data, a local directory
//! // A VolumeSnapshot of `data` created now copies `live_dir`; a PVC with that snapshot as
//! // `dataSource` gets its own copy once bound: emu.pvc_dir("ns", "restored").
//! emu.pods().start_after(Duration::from_millis(300)) // created pods: Pending, then Running
//!     .image_pull_fails_matching("^example.com/") // … or stuck in ImagePullBackOff
//!     .delete_grace(Duration::from_millis(200));  // DELETE: terminating this long
//! emu.set_kubelet_exec(ExecEnv { path: Some(pg_bin), ..Default::default() });
//! ```
//!
//! A pod created through the API is scheduled once its claims are Bound (binding a
//! `WaitForFirstConsumer` one), runs after `start_after`, fails at `activeDeadlineSeconds`, and
//! is deleted gracefully; exec into it runs in the directory of the PVC mounted at the
//! container's `workingDir`, with `TMPDIR` set for an `emptyDir` at `/tmp`, as the
//! securityContext's user (when the emulation runs as root), and is refused like the API
//! server refuses it while the pod is not running. A PVC created through the API carries
//! `kubernetes.io/pvc-protection` and outlives its DELETE while a pod uses it.
//!
//! Injected faults ([`Emu::inject`]) answer with an error, delay or drop the connection, before
//! or — with `Fault::after_serving` — after the request took effect (a lost response).
//!
//! Not emulated (recorded as unexpected): watch, server-side apply, deletecollection, discovery,
//! subresources other than `status` and `pods/exec`. Simplifications: exec with a tty has no
//! pseudo-terminal (stderr is merged into stdout, resizes are ignored), no grace period but for
//! pods created through the API, no garbage collection, namespaces need not exist, a `continue`
//! token resumes after the last key rather than from a snapshot of the store, a pod's own
//! command never runs (only exec does), a `readOnly` mount is not enforced (a restored volume is
//! a copy, so nothing reaches the snapshot anyway), PersistentVolume objects do not exist.
//!
//! Include it with `#[path = "…/tests/emu/mod.rs"] #[allow(dead_code)] mod emu;`: each crate
//! (the test binary, a bench, the `kube-emu` example) uses a different part of it.

mod api_error;
mod controller;
mod exec;
mod faults;
pub mod fixtures;
mod kubelet;
mod log;
mod patch;
mod provisioner;
mod resources;
mod router;
mod selectors;
mod server;
mod store;
mod validation;
mod volumes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

// Each including crate (the test binary, a bench, the example server) uses its own subset.
#[allow(unused_imports)]
pub use {
    api_error::ApiError,
    controller::{Snapshots, DEFAULT_DRIVER, SNAPSHOT_FINALIZERS},
    exec::{ExecEnv, ExecProtocols},
    faults::Fault,
    kubelet::Pods,
    log::{ExecCall, RequestRecord, Unexpected, Verb},
};

use resources::ResourceType;
use store::{Origin, Preconditions, Scope, Store};

/// Locks a mutex, ignoring poisoning (a panicking test must not hide the next one's results).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// State shared by the server, the controller and the handle.
struct Shared {
    store: Mutex<Store>,
    log: Mutex<log::Log>,
    faults: Mutex<faults::Faults>,
    exec_envs: Mutex<HashMap<(String, String), ExecEnv>>,
    exec_protocols: ExecProtocols,
    snapshots: Mutex<controller::Settings>,
    controller: mpsc::UnboundedSender<controller::Work>,
    /// Leaf locks: may be taken while holding `store`, never the other way round, and never
    /// one inside the other.
    kubelet: Mutex<kubelet::Settings>,
    volumes: Mutex<volumes::Volumes>,
}

impl Shared {
    /// Creates an object and lets the snapshot controller see it.
    fn create_object(
        &self,
        rt: &ResourceType,
        obj: Value,
        ns: Option<&str>,
        origin: Origin,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let provision = provisioner::provisions(rt, origin);
        let run = kubelet::runs(rt, origin);
        let obj = {
            let mut store = lock(&self.store);
            let obj = if provision {
                provisioner::admit(&store, obj)?
            } else if run {
                kubelet::admit(obj)?
            } else {
                obj
            };
            let obj = store.create(rt, obj, ns, origin, dry_run)?;
            let m = &obj["metadata"];
            let (ns, name) = (
                m["namespace"].as_str().unwrap_or_default(),
                m["name"].as_str().unwrap_or_default(),
            );
            if provision && !dry_run {
                provisioner::created(&mut store, ns, name);
            }
            if run && !dry_run {
                kubelet::created(self, &mut store, &obj);
            }
            store.get(rt, Some(ns), name).cloned().unwrap_or(obj)
        };
        if !dry_run {
            // The snapshot's data is the PVC's as it is now, whenever the controller gets to it.
            let m = &obj["metadata"];
            if let (true, Some(pvc)) = (
                rt.is("snapshot.storage.k8s.io", "volumesnapshots"),
                obj["spec"]["source"]["persistentVolumeClaimName"].as_str(),
            ) {
                let handle = format!("snapshot-{}", m["uid"].as_str().unwrap_or_default());
                lock(&self.volumes).cut_snapshot(
                    m["namespace"].as_str().unwrap_or_default(),
                    pvc,
                    &handle,
                );
            }
            controller::created(self, rt, &obj);
            if provision {
                controller::provision(self, &obj);
            }
            if run {
                kubelet::schedule_soon(self, &obj);
            }
        }
        Ok(obj)
    }

    /// Deletes an object, and a snapshot's content when its deletion policy says so. A snapshot
    /// with finalizers only becomes terminating; the snapshot controller then finishes the
    /// deletion at once unless a test holds it.
    fn delete_object(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        pre: &Preconditions,
        grace: Option<i64>,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        // Decided before taking the store lock: the controller takes the two the other way round.
        let hold = lock(&self.snapshots).deletion_hold(name);
        let mut store = lock(&self.store);
        if rt.is("", "pods") {
            let ns = ns.unwrap_or_default();
            if let Some(result) = kubelet::delete(self, &mut store, (ns, name), pre, grace, dry_run)
            {
                return result;
            }
        }
        let obj = store.delete(rt, ns, name, pre, dry_run)?;
        if !dry_run {
            controller::deleted(self, &mut store, rt, &obj, hold);
            if rt.is("", "persistentvolumeclaims") || rt.is("", "pods") {
                let ns = ns.unwrap_or_default();
                let mut volumes = lock(&self.volumes);
                if store.get(rt, Some(ns), name).is_none() && rt.is("", "persistentvolumeclaims") {
                    volumes.pvc_gone(ns, name);
                }
                provisioner::protect(&mut store, &mut volumes, ns);
            }
        }
        Ok(obj)
    }
}

/// Options of the emulation, set before it starts.
pub struct EmuBuilder {
    snapshot_ready_after: Duration,
    exec_protocols: ExecProtocols,
}

impl EmuBuilder {
    /// How long a new VolumeSnapshot takes to become ready (default 200 ms).
    pub fn snapshot_ready_after(mut self, d: Duration) -> Self {
        self.snapshot_ready_after = d;
        self
    }

    /// Which exec subprotocols the server speaks (default: v5 and v4, as 1.30 and later).
    pub fn exec_protocols(mut self, p: ExecProtocols) -> Self {
        self.exec_protocols = p;
        self
    }

    /// Binds 127.0.0.1 on a random port and starts serving on a thread of its own.
    pub async fn start(self) -> Emu {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("listener address");
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            store: Mutex::default(),
            log: Mutex::default(),
            faults: Mutex::default(),
            exec_envs: Mutex::default(),
            exec_protocols: self.exec_protocols,
            snapshots: Mutex::new(controller::Settings::new(self.snapshot_ready_after)),
            controller: tx,
            kubelet: Mutex::default(),
            volumes: Mutex::default(),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let server_shared = shared.clone();
        std::thread::Builder::new()
            .name("kube-emu".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("kube-emu")
                    .enable_all()
                    .build()
                    .expect("emulation runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    tokio::spawn(controller::run(server_shared.clone(), rx));
                    tokio::select! {
                        _ = server::serve(listener, server_shared) => {}
                        _ = stopped => {}
                    }
                });
            })
            .expect("spawn the emulation thread");
        Emu {
            shared,
            addr,
            stop: Some(stop),
        }
    }
}

/// The running emulation. Dropping it stops the server (and panics if unexpected requests
/// were recorded and not taken with [`Emu::take_unexpected`]).
pub struct Emu {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

fn resource(api_version: &str, plural: &str) -> &'static ResourceType {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ResourceType::find(group, version, plural)
        .unwrap_or_else(|| panic!("the emulation has no resource {plural} in {api_version}"))
}

impl Emu {
    pub fn builder() -> EmuBuilder {
        EmuBuilder {
            snapshot_ready_after: Duration::from_millis(200),
            exec_protocols: ExecProtocols::default(),
        }
    }

    /// Starts with the defaults.
    pub async fn start() -> Emu {
        Self::builder().start().await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig with one context `emu` (namespace `default`, no credentials).
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: emu\n  cluster:\n    server: {}\ncontexts:\n- name: emu\n  context:\n    cluster: emu\n    namespace: default\n    user: emu\ncurrent-context: emu\nusers:\n- name: emu\n  user: {{}}\npreferences: {{}}\n",
            self.url()
        )
    }

    /// Writes [`Emu::kubeconfig_yaml`] to `dir/kubeconfig` and returns that path.
    pub fn write_kubeconfig(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml())?;
        Ok(path)
    }

    /// A kube client configured from the kubeconfig, as backup-ns would build one.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml())
            .expect("emulation kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kube config from the emulation kubeconfig");
        kube::Client::try_from(config).expect("kube client")
    }

    /// Seeds an object (`apiVersion`, `kind`, `metadata.namespace` for namespaced kinds) as
    /// given, status included; no faults, not logged. Snapshots without status are picked up
    /// by the snapshot controller.
    pub fn try_create(&self, obj: Value) -> Result<Value, ApiError> {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        let rt = ResourceType::for_object(api_version, kind).ok_or_else(|| {
            ApiError::bad_request(format!(
                "the emulation has no kind {kind} in {api_version:?}"
            ))
        })?;
        self.shared
            .create_object(rt, obj, None, Origin::Seed, false)
    }

    /// [`Emu::try_create`], panicking on failure (a broken fixture).
    pub fn create(&self, obj: Value) -> Value {
        let what = format!(
            "{}/{}",
            obj["kind"].as_str().unwrap_or("?"),
            obj["metadata"]["name"].as_str().unwrap_or("?")
        );
        self.try_create(obj)
            .unwrap_or_else(|e| panic!("seeding {what}: {e}"))
    }

    /// Replaces an existing object wholesale (status included, `resourceVersion` bumped), e.g.
    /// to make a pod unready in the middle of a test. Panics when it does not exist.
    pub fn replace(&self, mut obj: Value) -> Value {
        let rt = ResourceType::for_object(
            obj["apiVersion"].as_str().unwrap_or_default(),
            obj["kind"].as_str().unwrap_or_default(),
        )
        .unwrap_or_else(|| panic!("the emulation has no kind for {obj}"));
        let meta = &obj["metadata"];
        let ns = meta["namespace"].as_str().map(str::to_string);
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        let mut store = lock(&self.shared.store);
        let replaced = store
            .update(rt, ns.as_deref(), &name, obj, Scope::Whole, false)
            .unwrap_or_else(|e| panic!("replacing {name}: {e}"));
        if rt.is("", "pods") || rt.is("", "persistentvolumeclaims") {
            let ns = ns.unwrap_or_default();
            provisioner::protect(&mut store, &mut lock(&self.shared.volumes), &ns);
        }
        replaced
    }

    /// One object, e.g. `get("snapshot.storage.k8s.io/v1", "volumesnapshots", Some("ns"), "x")`.
    pub fn get(
        &self,
        api_version: &str,
        plural: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        lock(&self.shared.store)
            .get(resource(api_version, plural), ns, name)
            .cloned()
    }

    /// All objects of a resource (`volumesnapshots` or `events.events.k8s.io`), in one namespace
    /// or all, ordered by namespace/name.
    pub fn list(&self, resource: &str, ns: Option<&str>) -> Vec<Value> {
        let rt = ResourceType::by_name(resource)
            .unwrap_or_else(|| panic!("the emulation has no resource {resource}"));
        lock(&self.shared.store)
            .list(rt, ns, None)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Deletes an object as a cluster actor would (a snapshot takes a `Delete`-policy content
    /// along). Returns it, `None` when it did not exist.
    pub fn delete(
        &self,
        api_version: &str,
        plural: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.shared
            .delete_object(
                resource(api_version, plural),
                ns,
                name,
                &Preconditions::default(),
                None,
                false,
            )
            .ok()
    }

    /// How `pods/exec` runs commands for this pod (a seed; for a pod created through the API
    /// this replaces what the kubelet derives from its spec).
    pub fn set_pod_exec(&self, ns: &str, pod: &str, env: ExecEnv) {
        lock(&self.shared.exec_envs).insert((ns.to_string(), pod.to_string()), env);
    }

    /// The base of every exec into a pod created through the API: `path` and `extra_env` as
    /// for [`Emu::set_pod_exec`], `uid_gid` as the image's user when the securityContext names
    /// none (root, i.e. the emulation's own user, when unset); `cwd` is ignored (the kubelet
    /// derives it from the pod's `workingDir`).
    pub fn set_kubelet_exec(&self, env: ExecEnv) {
        lock(&self.shared.kubelet).exec_env = env;
    }

    /// The kubelet's knobs (pods created through the API).
    pub fn pods(&self) -> Pods<'_> {
        Pods(&self.shared)
    }

    /// The local directory holding a PVC's data: the snapshot controller copies it when a
    /// VolumeSnapshot of the PVC is created, exec children of created pods that mount the PVC
    /// at their `workingDir` run in it. Set it before the snapshot is created.
    pub fn set_pvc_dir(&self, ns: &str, pvc: &str, path: impl Into<PathBuf>) {
        lock(&self.shared.volumes).set_pvc_dir(ns, pvc, path.into());
    }

    /// A PVC's data directory: the one set by [`Emu::set_pvc_dir`], or the emulation's own for
    /// a PVC it provisioned (a copy of the snapshot's data for one restored from a snapshot).
    pub fn pvc_dir(&self, ns: &str, pvc: &str) -> Option<PathBuf> {
        lock(&self.shared.volumes).pvc_dir(ns, pvc)
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// The snapshot controller's knobs.
    pub fn snapshots(&self) -> Snapshots<'_> {
        Snapshots(&self.shared)
    }

    /// Every request so far, in arrival order of their responses.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).requests.clone()
    }

    /// How many requests had this verb on this resource plural (subresources included, e.g.
    /// `count(Verb::Exec, "pods")`, `count(Verb::Patch, "volumesnapshots")` counts `/status`).
    pub fn count(&self, verb: Verb, resource: &str) -> usize {
        lock(&self.shared.log)
            .requests
            .iter()
            .filter(|r| r.verb == verb && r.resource == Some(resource))
            .count()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.log).requests.clear();
    }

    /// Removes and returns the unexpected requests (for tests that provoke them).
    pub fn take_unexpected(&self) -> Vec<Unexpected> {
        std::mem::take(&mut lock(&self.shared.log).unexpected)
    }

    /// Panics listing every request the emulation could not serve.
    pub fn assert_no_unexpected(&self) {
        let unexpected = self.take_unexpected();
        if !unexpected.is_empty() {
            let list: Vec<String> = unexpected.iter().map(|u| format!("  {u}")).collect();
            panic!(
                "the API emulation got {} unexpected request(s):\n{}",
                list.len(),
                list.join("\n")
            );
        }
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if !std::thread::panicking() {
            self.assert_no_unexpected();
        }
    }
}
