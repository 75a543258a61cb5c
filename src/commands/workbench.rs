//! The workbench of `restore dump`, `download SNAPSHOT` and `verify`: a snapshot's data made
//! readable without touching the snapshotted PVC or the database's pod.
//!
//! A snapshot is only data once a volume is provisioned from it, and only readable once a pod
//! mounts that volume. So each of these commands creates a temporary PVC whose `dataSource` is
//! the snapshot (planned like `restore pvc`'s) and a short-lived helper pod that mounts it
//! read-only at [`VOLUME_DIR`], which is also the pod's working directory: the in-pod scripts
//! name files on the volume by relative paths. The helper runs the database container's image,
//! so its `psql`/`mysql`/server binaries match the live server, under the chart's pod security
//! discipline (non-root, no privilege escalation, all capabilities dropped, read-only root
//! filesystem with an `emptyDir` at `/tmp` for scratch space), with a resource request and an
//! `activeDeadlineSeconds`, so a forgotten helper cannot run for ever.
//!
//! Both objects carry [`labels::SCRATCH`] and an expiry annotation ([`labels::SCRATCH_EXPIRES`]:
//! start + the command's timeout). The command deletes them when it ends — success, failure or
//! SIGTERM — the pod first (the PVC's `kubernetes.io/pvc-protection` finalizer holds the claim
//! until the pod is gone). Anything a killed run left behind is recognisable by the label and is
//! deleted by the next workbench in the namespace once expired ([`sweep`]): never earlier, since
//! another run may still be using it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{json, Value};

use super::api::{code, describe, Requests};
use crate::labels;
use crate::{Error, Result};

/// Where the helper mounts the restored volume; its working directory.
pub const VOLUME_DIR: &str = "/backup-ns/volume";
/// The helper's only container.
pub const CONTAINER: &str = "helper";
/// The uid of the database user in the official PostgreSQL and MariaDB images.
pub const DEFAULT_UID: i64 = 999;
/// The helper's main process: nothing, until it is told to stop.
const IDLE: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";
const POLL: Duration = Duration::from_millis(500);
/// How long the helper may take to run (volume provisioned from the snapshot, image pulled),
/// at most: a helper that is not running by then is stuck on something a person must fix
/// (a storage class, a quota, an image), and the command's own timeout may be hours.
pub const START_TIMEOUT: Duration = Duration::from_secs(600);
/// Waiting reasons after which a container will not start without someone changing something.
const HOPELESS: [&str; 6] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "CrashLoopBackOff",
];

/// What the workbench is for; part of its objects' names and the value of [`labels::SCRATCH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Restore,
    Download,
    Verify,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Restore => "restore",
            Purpose::Download => "download",
            Purpose::Verify => "verify",
        }
    }
}

/// Everything the helper pod copies from the database's pod (or defaults to).
#[derive(Debug, Clone, PartialEq)]
pub struct HelperImage {
    pub image: String,
    pub image_pull_secrets: Vec<String>,
    pub uid: i64,
    pub gid: i64,
}

impl HelperImage {
    /// The image, pull secrets and user of `container` in `pod`: `uid` overrides the user,
    /// then the container's and the pod's non-root `runAsUser`, then `fallback` (the database's
    /// system user found in the image), then [`DEFAULT_UID`].
    pub fn of_pod(
        pod: &Pod,
        container: &str,
        uid: Option<i64>,
        fallback: Option<i64>,
    ) -> Result<HelperImage> {
        let spec = pod.spec.as_ref();
        let c: Option<&Container> =
            spec.and_then(|s| s.containers.iter().find(|c| c.name == container));
        let image = c.and_then(|c| c.image.clone()).ok_or_else(|| {
            Error::Precondition(format!(
                "container {container} of pod {} names no image",
                pod.metadata.name.as_deref().unwrap_or_default()
            ))
        })?;
        let pod_sc = spec.and_then(|s| s.security_context.as_ref());
        let c_sc = c.and_then(|c| c.security_context.as_ref());
        let uid = uid
            .or_else(|| c_sc.and_then(|s| s.run_as_user))
            .or_else(|| pod_sc.and_then(|s| s.run_as_user))
            .filter(|u| *u != 0)
            .or(fallback.filter(|u| *u != 0))
            .unwrap_or(DEFAULT_UID);
        let gid = c_sc
            .and_then(|s| s.run_as_group)
            .or_else(|| pod_sc.and_then(|s| s.run_as_group))
            .filter(|g| *g != 0)
            .unwrap_or(uid);
        Ok(HelperImage {
            image,
            image_pull_secrets: spec
                .and_then(|s| s.image_pull_secrets.as_ref())
                .map(|v| v.iter().map(|r| r.name.clone()).collect())
                .unwrap_or_default(),
            uid,
            gid,
        })
    }
}

/// The workbench's objects as they will be created; pure, shown by `--dry-run`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub namespace: String,
    /// The name of both the PVC and the pod.
    pub name: String,
    pub snapshot: String,
    pub pvc: Value,
    pub pod: Value,
    pub timeout: Duration,
}

/// Labels and annotations of both objects.
fn scratch_metadata(
    purpose: Purpose,
    snapshot: &str,
    expires: DateTime<Utc>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let labels = BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "backup-ns".to_owned(),
        ),
        (labels::SCRATCH.to_owned(), purpose.as_str().to_owned()),
    ]);
    let annotations = BTreeMap::from([
        (
            labels::SCRATCH_EXPIRES.to_owned(),
            expires.to_rfc3339_opts(SecondsFormat::Secs, true),
        ),
        (labels::SCRATCH_SNAPSHOT.to_owned(), snapshot.to_owned()),
    ]);
    (labels, annotations)
}

/// The name of a workbench: `backup-ns-<purpose>-<6 random letters>`.
pub fn name(purpose: Purpose) -> String {
    format!(
        "backup-ns-{}-{}",
        purpose.as_str(),
        crate::naming::random_suffix(&mut rand::rng())
    )
}

/// Plans the workbench: `pvc` is the temporary claim as `restore pvc` plans it (its name is
/// `name`); it gets the scratch labels, the pod mounts it read-only.
pub fn plan(
    purpose: Purpose,
    name: &str,
    mut pvc: Value,
    helper: &HelperImage,
    timeout: Duration,
    now: DateTime<Utc>,
) -> Plan {
    let namespace = pvc["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let snapshot = pvc["spec"]["dataSource"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let expires = now + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
    let (labels, annotations) = scratch_metadata(purpose, &snapshot, expires);
    for (k, v) in &labels {
        pvc["metadata"]["labels"][k] = json!(v);
    }
    for (k, v) in &annotations {
        pvc["metadata"]["annotations"][k] = json!(v);
    }
    let pull_secrets: Vec<Value> = helper
        .image_pull_secrets
        .iter()
        .map(|n| json!({ "name": n }))
        .collect();
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": timeout.as_secs().max(1),
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "imagePullSecrets": pull_secrets,
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": helper.uid,
                "runAsGroup": helper.gid,
                "fsGroup": helper.gid,
                "seccompProfile": { "type": "RuntimeDefault" },
            },
            "containers": [{
                "name": CONTAINER,
                "image": helper.image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", IDLE],
                "workingDir": VOLUME_DIR,
                "env": [{ "name": "TMPDIR", "value": "/tmp" }],
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "capabilities": { "drop": ["ALL"] },
                },
                "resources": { "requests": { "cpu": "100m", "memory": "256Mi" } },
                "volumeMounts": [
                    { "name": "volume", "mountPath": VOLUME_DIR, "readOnly": true },
                    { "name": "scratch", "mountPath": "/tmp" },
                ],
            }],
            "volumes": [
                { "name": "volume", "persistentVolumeClaim": { "claimName": name, "readOnly": true } },
                { "name": "scratch", "emptyDir": {} },
            ],
        },
    });
    Plan {
        namespace,
        name: name.to_owned(),
        snapshot,
        pvc,
        pod,
        timeout,
    }
}

/// Whether a scratch object expired at `now`: its expiry annotation is in the past. An object
/// without a readable expiry is not ours to judge and is left alone.
pub fn expired(annotations: Option<&BTreeMap<String, String>>, now: DateTime<Utc>) -> bool {
    annotations
        .and_then(|a| a.get(labels::SCRATCH_EXPIRES))
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .is_some_and(|t| t < now)
}

/// Deletes the expired scratch pods and PVCs in `ns` (leftovers of killed runs). Failures are
/// logged, not fatal: the command's own work does not depend on them.
pub async fn sweep(requests: &Requests, ns: &str, now: DateTime<Utc>) {
    let params = ListParams::default().labels(labels::SCRATCH);
    let pods: Api<Pod> = Api::namespaced(requests.client.clone(), ns);
    let what = format!("list scratch pods in {ns}");
    match requests.call(&what, || pods.list(&params)).await {
        Ok(list) => {
            for p in list.items {
                if expired(p.metadata.annotations.as_ref(), now) {
                    let name = p.metadata.name.unwrap_or_default();
                    tracing::info!("deleting pod {ns}/{name}, left over by an earlier run");
                    delete_pod(requests, ns, &name).await;
                }
            }
        }
        Err(e) => tracing::warn!("{what}: {}", describe(&e)),
    }
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(requests.client.clone(), ns);
    let what = format!("list scratch persistentvolumeclaims in {ns}");
    match requests.call(&what, || pvcs.list(&params)).await {
        Ok(list) => {
            for p in list.items {
                if expired(p.metadata.annotations.as_ref(), now)
                    && p.metadata.deletion_timestamp.is_none()
                {
                    let name = p.metadata.name.unwrap_or_default();
                    tracing::info!(
                        "deleting persistentvolumeclaim {ns}/{name}, left over by an earlier run"
                    );
                    delete_pvc(requests, ns, &name).await;
                }
            }
        }
        Err(e) => tracing::warn!("{what}: {}", describe(&e)),
    }
}

async fn delete_pod(requests: &Requests, ns: &str, name: &str) -> bool {
    delete(
        requests,
        Api::<Pod>::namespaced(requests.client.clone(), ns),
        "pod",
        ns,
        name,
    )
    .await
}

async fn delete_pvc(requests: &Requests, ns: &str, name: &str) -> bool {
    let api = Api::<PersistentVolumeClaim>::namespaced(requests.client.clone(), ns);
    delete(requests, api, "persistentvolumeclaim", ns, name).await
}

/// Deletes one object; gone already is fine, a failure is logged with what to do.
async fn delete<K>(requests: &Requests, api: Api<K>, kind: &str, ns: &str, name: &str) -> bool
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let what = format!("delete {kind} {ns}/{name}");
    let dp = DeleteParams::default();
    match requests.call(&what, || api.delete(name, &dp)).await {
        Ok(_) => true,
        Err(e) if code(&e) == Some(404) => true,
        Err(e) => {
            tracing::error!("{what}: {}; delete it by hand", describe(&e));
            false
        }
    }
}

/// A workbench being built or in use. Whatever happens, [`Workbench::close`] must run: it
/// deletes what [`Workbench::open`] created (callers run their work in a `select!` with the
/// signals, then close).
pub struct Workbench {
    pub namespace: String,
    pub name: String,
    pvc_created: bool,
    pod_created: bool,
}

impl Workbench {
    pub fn new(plan: &Plan) -> Workbench {
        Workbench {
            namespace: plan.namespace.clone(),
            name: plan.name.clone(),
            pvc_created: false,
            pod_created: false,
        }
    }

    /// Creates the PVC and the pod and waits until the pod is Running and Ready.
    pub async fn open(&mut self, requests: &Requests, plan: &Plan) -> Result<()> {
        let ns = &plan.namespace;
        sweep(requests, ns, Utc::now()).await;
        let start = plan.timeout.min(START_TIMEOUT);
        let deadline = Instant::now() + start;
        let pvc: PersistentVolumeClaim = serde_json::from_value(plan.pvc.clone())
            .map_err(|e| Error::Precondition(format!("cannot build the PVC: {e}")))?;
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(requests.client.clone(), ns);
        let what = format!("create persistentvolumeclaim {ns}/{}", plan.name);
        let pp = PostParams::default();
        requests
            .call(&what, || pvcs.create(&pp, &pvc))
            .await
            .map_err(|e| Error::kube(&what, e))?;
        self.pvc_created = true;
        let pod: Pod = serde_json::from_value(plan.pod.clone())
            .map_err(|e| Error::Precondition(format!("cannot build the helper pod: {e}")))?;
        let pods: Api<Pod> = Api::namespaced(requests.client.clone(), ns);
        let what = format!("create pod {ns}/{}", plan.name);
        requests
            .call(&what, || pods.create(&pp, &pod))
            .await
            .map_err(|e| Error::kube(&what, e))?;
        self.pod_created = true;
        tracing::info!(
            "helper pod {ns}/{} with persistentvolumeclaim {} from volumesnapshot {}: waiting \
             until it runs",
            plan.name,
            plan.name,
            plan.snapshot
        );
        wait_ready(requests, ns, &plan.name, deadline, start).await
    }

    /// Deletes the pod, then the PVC. Errors are logged: the command's outcome is already known.
    pub async fn close(self, requests: &Requests) {
        let ns = &self.namespace;
        let mut clean = true;
        if self.pod_created {
            clean &= delete_pod(requests, ns, &self.name).await;
        }
        if self.pvc_created {
            clean &= delete_pvc(requests, ns, &self.name).await;
        }
        if clean && (self.pod_created || self.pvc_created) {
            tracing::info!(
                "deleted helper pod and persistentvolumeclaim {ns}/{}",
                self.name
            );
        }
    }
}

/// Opens the workbench of `plan`, runs `work` in it and closes it again — after success, failure,
/// SIGTERM or SIGINT alike. `what` names the work in the interruption's error.
pub async fn within<T>(
    requests: &Requests,
    plan: &Plan,
    what: &str,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let mut bench = Workbench::new(plan);
    let result = tokio::select! {
        r = async {
            bench.open(requests, plan).await?;
            work.await
        } => r,
        sig = super::download::signal() => {
            Err(Error::Interrupted(format!("{sig}: {what} stopped")))
        }
    };
    bench.close(requests).await;
    result
}

/// Why a pod that is not ready will not become ready (`None`: it may still).
pub fn hopeless(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if let Some(phase @ ("Failed" | "Succeeded")) = status.phase.as_deref() {
        return Some(format!(
            "it is {phase}{}",
            status
                .reason
                .as_deref()
                .map_or_else(String::new, |r| format!(
                    " ({r}: {})",
                    status.message.clone().unwrap_or_default()
                ))
        ));
    }
    status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
        .find(|w| HOPELESS.contains(&w.reason.as_deref().unwrap_or_default()))
        .map(|w| {
            format!(
                "{}: {}",
                w.reason.clone().unwrap_or_default(),
                w.message.clone().unwrap_or_default()
            )
        })
}

/// Why a pod has not started yet, for the timeout's message.
fn pending_reason(pod: &Pod) -> String {
    let Some(status) = pod.status.as_ref() else {
        return "no status yet".into();
    };
    if let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    {
        return format!(
            "not scheduled: {}",
            c.message
                .clone()
                .or_else(|| c.reason.clone())
                .unwrap_or_default()
        );
    }
    if let Some(w) = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
        .next()
    {
        return format!(
            "container waiting: {} {}",
            w.reason.clone().unwrap_or_default(),
            w.message.clone().unwrap_or_default()
        );
    }
    format!("phase {}", status.phase.clone().unwrap_or_default())
}

fn is_ready(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

async fn wait_ready(
    requests: &Requests,
    ns: &str,
    name: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(requests.client.clone(), ns);
    let what = format!("get pod {ns}/{name}");
    loop {
        let pod = requests
            .call(&what, || pods.get_opt(name))
            .await
            .map_err(|e| Error::kube(&what, e))?
            .ok_or_else(|| Error::Precondition(format!("helper pod {ns}/{name} is gone")))?;
        if is_ready(&pod) {
            tracing::info!("helper pod {ns}/{name} is running");
            return Ok(());
        }
        if let Some(why) = hopeless(&pod) {
            return Err(Error::Precondition(format!(
                "helper pod {ns}/{name} cannot start: {why}"
            )));
        }
        if Instant::now() + POLL > deadline {
            // The claim's provisioner says why a volume from the snapshot is not there.
            let claim = super::restore::last_event(requests, ns, name)
                .await
                .map_or_else(String::new, |e| format!("; its PVC: {e}"));
            return Err(Error::Precondition(format!(
                "helper pod {ns}/{name} is not running after {} ({}{claim}); `kubectl -n {ns} \
                 describe pod,pvc {name}` says why",
                crate::settings::format_duration(timeout),
                pending_reason(&pod)
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn pvc() -> Value {
        json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "backup-ns-verify-abcdef", "namespace": "app",
                         "annotations": {"backup-ns.sh/restored-from": "data-1"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "data-1"}}
        })
    }

    fn helper() -> HelperImage {
        HelperImage {
            image: "postgres:15".into(),
            image_pull_secrets: vec!["regcred".into()],
            uid: 999,
            gid: 999,
        }
    }

    #[test]
    fn the_helper_mounts_the_restored_volume_read_only_as_its_working_directory() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 3, 0, 0).unwrap();
        let p = plan(
            Purpose::Verify,
            "backup-ns-verify-abcdef",
            pvc(),
            &helper(),
            Duration::from_secs(1800),
            now,
        );
        let c = &p.pod["spec"]["containers"][0];
        assert_eq!(c["image"], "postgres:15");
        assert_eq!(c["workingDir"], VOLUME_DIR);
        assert_eq!(c["volumeMounts"][0]["mountPath"], VOLUME_DIR);
        assert_eq!(c["volumeMounts"][0]["readOnly"], true);
        assert_eq!(
            p.pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "backup-ns-verify-abcdef"
        );
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
        assert_eq!(p.pod["spec"]["securityContext"]["runAsNonRoot"], true);
        assert_eq!(p.pod["spec"]["securityContext"]["runAsUser"], 999);
        assert_eq!(p.pod["spec"]["activeDeadlineSeconds"], 1800);
        assert_eq!(p.pod["spec"]["imagePullSecrets"][0]["name"], "regcred");
        assert!(c["resources"]["requests"]["memory"].is_string());
        // Both objects are recognisable and expire together.
        for obj in [&p.pod, &p.pvc] {
            assert_eq!(obj["metadata"]["labels"][labels::SCRATCH], "verify");
            assert_eq!(
                obj["metadata"]["annotations"][labels::SCRATCH_EXPIRES],
                "2026-12-01T03:30:00Z"
            );
            assert_eq!(
                obj["metadata"]["annotations"][labels::SCRATCH_SNAPSHOT],
                "data-1"
            );
        }
        // The PVC keeps what `restore pvc` planned.
        assert_eq!(
            p.pvc["metadata"]["annotations"]["backup-ns.sh/restored-from"],
            "data-1"
        );
        assert_eq!(p.snapshot, "data-1");
        assert_eq!(p.namespace, "app");
    }

    #[test]
    fn only_expired_leftovers_are_swept() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 3, 0, 0).unwrap();
        let at = |v: &str| BTreeMap::from([(labels::SCRATCH_EXPIRES.to_owned(), v.to_owned())]);
        assert!(expired(Some(&at("2026-12-01T02:59:59Z")), now));
        assert!(!expired(Some(&at("2026-12-01T03:00:01Z")), now));
        assert!(!expired(Some(&at("soon")), now), "unreadable: left alone");
        assert!(!expired(None, now));
    }

    #[test]
    fn the_helper_runs_as_the_database_user() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "db-0"},
            "spec": {
                "securityContext": {"runAsUser": 1001, "runAsGroup": 1002},
                "imagePullSecrets": [{"name": "regcred"}],
                "containers": [
                    {"name": "sidecar", "image": "busybox"},
                    {"name": "postgres", "image": "bitnami/postgresql:15",
                     "securityContext": {"runAsUser": 1003}}
                ]
            }
        }))
        .unwrap();
        let h = HelperImage::of_pod(&pod, "postgres", None, Some(70)).unwrap();
        assert_eq!(h.image, "bitnami/postgresql:15");
        assert_eq!((h.uid, h.gid), (1003, 1002));
        assert_eq!(h.image_pull_secrets, ["regcred"]);
        assert_eq!(
            HelperImage::of_pod(&pod, "postgres", Some(71), None)
                .unwrap()
                .uid,
            71
        );
        // An official image's pod runs as root and drops to its user itself: the helper uses
        // that user, never root.
        let root: Pod = serde_json::from_value(json!({
            "metadata": {"name": "db-0"},
            "spec": {"securityContext": {"runAsUser": 0},
                     "containers": [{"name": "postgres", "image": "postgres:15"}]}
        }))
        .unwrap();
        let h = HelperImage::of_pod(&root, "postgres", None, None).unwrap();
        assert_eq!((h.uid, h.gid), (DEFAULT_UID, DEFAULT_UID));
        // The user found in the image (postgres is 70 in the Alpine images).
        let h = HelperImage::of_pod(&root, "postgres", None, Some(70)).unwrap();
        assert_eq!((h.uid, h.gid), (70, 70));
        assert!(HelperImage::of_pod(&root, "mysql", None, None).is_err());
    }

    #[test]
    fn a_pod_that_cannot_pull_its_image_is_hopeless() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "h"},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "helper", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}
            }]}
        }))
        .unwrap();
        assert!(hopeless(&pod).unwrap().contains("ImagePullBackOff"));
        let creating: Pod = serde_json::from_value(json!({
            "metadata": {"name": "h"},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "helper", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                "state": {"waiting": {"reason": "ContainerCreating"}}
            }]}
        }))
        .unwrap();
        assert_eq!(hopeless(&creating), None);
        assert!(pending_reason(&creating).contains("ContainerCreating"));
        let failed: Pod = serde_json::from_value(json!({
            "metadata": {"name": "h"},
            "status": {"phase": "Failed", "reason": "DeadlineExceeded", "message": "Pod was active on the node longer than the specified deadline"}
        }))
        .unwrap();
        assert!(hopeless(&failed).unwrap().contains("DeadlineExceeded"));
    }
}
