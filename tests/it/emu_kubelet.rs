//! Tests of the emulation's cluster actors that the restore, download and verify flows meet:
//! the snapshot controller's copy of a PVC's data, the provisioner's restored copy, the
//! kubelet stand-in for pods created through the API (lifecycle, failures, deletion, exec),
//! and PVC protection — each through a real `kube::Client`, as backup-ns sees them.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, AttachParams, DeleteParams, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::emu::{fixtures, Emu, ExecEnv};

const NS: &str = "shop";

async fn start() -> (Emu, kube::Client) {
    let emu = Emu::start().await;
    emu.create(fixtures::storage_class("emu-csi", "Immediate", true));
    emu.create(fixtures::storage_class(
        "wffc",
        "WaitForFirstConsumer",
        false,
    ));
    let client = emu.client().await;
    (emu, client)
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `limit`.
async fn until<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pod(emu: &Emu, name: &str) -> Option<Value> {
    emu.get("v1", "pods", Some(NS), name)
}

fn pvc(emu: &Emu, name: &str) -> Option<Value> {
    emu.get("v1", "persistentvolumeclaims", Some(NS), name)
}

fn pvc_json(name: &str, class: Option<&str>, snapshot: Option<&str>) -> PersistentVolumeClaim {
    let mut p = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": { "name": name },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": { "requests": { "storage": "1Gi" } },
        },
    });
    if let Some(c) = class {
        p["spec"]["storageClassName"] = json!(c);
    }
    if let Some(s) = snapshot {
        p["spec"]["dataSource"] =
            json!({ "apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": s });
    }
    serde_json::from_value(p).unwrap()
}

/// A helper pod as the contract describes it: the claim at `/backup-ns/volume` (readOnly, the
/// working directory), an emptyDir at `/tmp`, running as uid/gid/fsGroup 999.
fn helper_json(generate_name: &str, claim: &str, image: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "generateName": generate_name, "labels": { "backup-ns.sh/scratch": "verify" } },
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {
                "runAsNonRoot": true, "runAsUser": 999, "runAsGroup": 999, "fsGroup": 999,
                "seccompProfile": { "type": "RuntimeDefault" },
            },
            "containers": [{
                "name": "helper",
                "image": image,
                "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"],
                "workingDir": "/backup-ns/volume",
                "volumeMounts": [
                    { "name": "volume", "mountPath": "/backup-ns/volume", "readOnly": true },
                    { "name": "scratch", "mountPath": "/tmp" },
                ],
                "resources": { "requests": { "cpu": "100m", "memory": "256Mi" } },
            }],
            "volumes": [
                { "name": "volume", "persistentVolumeClaim": { "claimName": claim } },
                { "name": "scratch", "emptyDir": {} },
            ],
        },
    }))
    .unwrap()
}

fn plain_pod(name: &str, claim: Option<&str>) -> Pod {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name },
        "spec": { "containers": [{ "name": "main", "image": "postgres:15" }] },
    });
    if let Some(c) = claim {
        p["spec"]["volumes"] =
            json!([{ "name": "data", "persistentVolumeClaim": { "claimName": c } }]);
        p["spec"]["containers"][0]["volumeMounts"] =
            json!([{ "name": "data", "mountPath": "/data" }]);
    }
    serde_json::from_value(p).unwrap()
}

fn snapshot_api(client: &kube::Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("snapshot.storage.k8s.io", "v1", "VolumeSnapshot"),
        "volumesnapshots",
    );
    Api::namespaced_with(client.clone(), NS, &ar)
}

fn phase(v: &Value) -> &str {
    v["status"]["phase"].as_str().unwrap_or_default()
}

fn condition<'a>(pod: &'a Value, type_: &str) -> Option<&'a Value> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn events_of(emu: &Emu, name: &str) -> Vec<Value> {
    emu.list("events", Some(NS))
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == name)
        .collect()
}

/// Runs a command in a pod; returns stdout, stderr and the status.
async fn exec(
    pods: &Api<Pod>,
    pod: &str,
    script: &str,
) -> (
    String,
    String,
    Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
) {
    let ap = AttachParams::default().stdin(false);
    let mut attached = pods.exec(pod, vec!["sh", "-c", script], &ap).await.unwrap();
    let mut stdout = attached.stdout().unwrap();
    let mut stderr = attached.stderr().unwrap();
    let status = attached.take_status().unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    let (a, b) = tokio::join!(
        stdout.read_to_string(&mut out),
        stderr.read_to_string(&mut err)
    );
    a.unwrap();
    b.unwrap();
    (out, err, status.await)
}

/// A VolumeSnapshot is a copy of the PVC's data at its creation: a PVC restored from it has
/// that data — not what was written to the live volume afterwards — and its own copy: writes in
/// it reach neither the snapshot nor another PVC restored from it. Modes are kept.
#[tokio::test(flavor = "multi_thread")]
async fn emu_restored_pvc_is_a_copy_of_the_data_at_snapshot_time() {
    let (emu, client) = start().await;
    emu.create(fixtures::pvc(NS, "data", true));
    let live = tempfile::tempdir().unwrap();
    std::fs::create_dir(live.path().join("backup")).unwrap();
    let dump = live.path().join("backup/dump.sql.gz");
    std::fs::write(&dump, "before").unwrap();
    std::fs::set_permissions(&dump, std::fs::Permissions::from_mode(0o600)).unwrap();
    emu.set_pvc_dir(NS, "data", live.path());
    assert_eq!(emu.pvc_dir(NS, "data").as_deref(), Some(live.path()));

    let vs = fixtures::volume_snapshot(NS, "snap", "data", &[]);
    let vs: DynamicObject = serde_json::from_value(vs).unwrap();
    snapshot_api(&client)
        .create(&PostParams::default(), &vs)
        .await
        .unwrap();
    // Written after the snapshot was taken, before it is ready.
    std::fs::write(&dump, "after").unwrap();
    std::fs::write(live.path().join("later"), "x").unwrap();
    until(Duration::from_secs(5), "snapshot ready", || {
        let vs = emu.get(
            "snapshot.storage.k8s.io/v1",
            "volumesnapshots",
            Some(NS),
            "snap",
        )?;
        (vs["status"]["readyToUse"] == true).then_some(())
    })
    .await;

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client, NS);
    for name in ["restored", "again"] {
        pvcs.create(&PostParams::default(), &pvc_json(name, None, Some("snap")))
            .await
            .unwrap();
    }
    let restored = until(Duration::from_secs(5), "restored PVC bound", || {
        (phase(&pvc(&emu, "restored")?) == "Bound").then(|| emu.pvc_dir(NS, "restored"))?
    })
    .await;
    assert_ne!(restored, live.path());
    let copy = restored.join("backup/dump.sql.gz");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "before");
    assert_eq!(std::fs::metadata(&copy).unwrap().mode() & 0o777, 0o600);
    assert!(
        !restored.join("later").exists(),
        "written after the snapshot"
    );

    std::fs::write(&copy, "changed in the restored volume").unwrap();
    let again = until(Duration::from_secs(5), "second PVC bound", || {
        (phase(&pvc(&emu, "again")?) == "Bound").then(|| emu.pvc_dir(NS, "again"))?
    })
    .await;
    assert_ne!(again, restored);
    assert_eq!(
        std::fs::read_to_string(again.join("backup/dump.sql.gz")).unwrap(),
        "before",
        "the snapshot's data is not changed by a restored volume"
    );
    assert_eq!(std::fs::read_to_string(&dump).unwrap(), "after");
    emu.assert_no_unexpected();
}

/// A pod created through the API is Pending (scheduled, containers creating) first, then
/// Running and Ready with the fields a kubelet reports; generateName gives it a name.
#[tokio::test(flavor = "multi_thread")]
async fn emu_created_pod_is_pending_then_running_and_ready() {
    let (emu, client) = start().await;
    emu.create(fixtures::pvc(NS, "data", true));
    emu.pods().start_after(Duration::from_millis(600));
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let created = pods
        .create(
            &PostParams::default(),
            &helper_json("backup-ns-verify-", "data", "postgres:15"),
        )
        .await
        .unwrap();
    let name = created.metadata.name.unwrap();
    assert!(
        name.starts_with("backup-ns-verify-") && name.len() == "backup-ns-verify-".len() + 5,
        "{name}"
    );
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Pending"));

    let scheduled = until(Duration::from_secs(2), "scheduled", || {
        let p = pod(&emu, &name)?;
        (condition(&p, "PodScheduled")?["status"] == "True").then_some(p)
    })
    .await;
    assert_eq!(phase(&scheduled), "Pending");
    assert_eq!(condition(&scheduled, "Ready").unwrap()["status"], "False");
    assert_eq!(
        scheduled["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "ContainerCreating"
    );

    let running = until(Duration::from_secs(3), "running", || {
        let p = pod(&emu, &name)?;
        (phase(&p) == "Running").then_some(p)
    })
    .await;
    assert_eq!(condition(&running, "Ready").unwrap()["status"], "True");
    assert_eq!(
        condition(&running, "ContainersReady").unwrap()["status"],
        "True"
    );
    assert!(running["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty()));
    assert!(running["status"]["podIP"].is_string());
    let cs = &running["status"]["containerStatuses"][0];
    assert_eq!(
        (cs["ready"].as_bool(), cs["state"]["running"].is_object()),
        (Some(true), true)
    );
    assert_eq!(cs["image"], "docker.io/library/postgres:15");
    assert!(cs["imageID"]
        .as_str()
        .unwrap()
        .starts_with("docker.io/library/postgres@sha256:"));
    // Seeds stay as given.
    emu.create(fixtures::pod(
        NS,
        "seed",
        &[],
        &[("main", &[])],
        "Pending",
        false,
        false,
    ));
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(phase(&pod(&emu, "seed").unwrap()), "Pending");
    emu.assert_no_unexpected();
}

/// A `WaitForFirstConsumer` claim stays Pending until a pod uses it; then it is bound and the
/// pod runs. A pod whose claim does not exist stays Pending, unschedulable, with the
/// scheduler's warning, and refuses exec like the API server (no host assigned).
#[tokio::test(flavor = "multi_thread")]
async fn emu_pod_binds_a_wait_for_first_consumer_claim_and_waits_for_a_missing_one() {
    let (emu, client) = start().await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NS);
    pvcs.create(
        &PostParams::default(),
        &pvc_json("late", Some("wffc"), None),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        phase(&pvc(&emu, "late").unwrap()),
        "Pending",
        "no consumer yet"
    );

    let pods: Api<Pod> = Api::namespaced(client, NS);
    pods.create(&PostParams::default(), &plain_pod("consumer", Some("late")))
        .await
        .unwrap();
    pods.create(
        &PostParams::default(),
        &plain_pod("orphan", Some("missing")),
    )
    .await
    .unwrap();
    until(Duration::from_secs(3), "consumer running", || {
        (phase(&pod(&emu, "consumer")?) == "Running").then_some(())
    })
    .await;
    let late = pvc(&emu, "late").unwrap();
    assert_eq!(phase(&late), "Bound");
    assert_eq!(
        late["metadata"]["annotations"]["volume.kubernetes.io/selected-node"],
        "emu-node"
    );

    let orphan = pod(&emu, "orphan").unwrap();
    assert_eq!(phase(&orphan), "Pending");
    let scheduled = condition(&orphan, "PodScheduled").unwrap();
    assert_eq!(
        (scheduled["status"].as_str(), scheduled["reason"].as_str()),
        (Some("False"), Some("Unschedulable"))
    );
    let warning = events_of(&emu, "orphan")
        .into_iter()
        .find(|e| e["reason"] == "FailedScheduling")
        .expect("a FailedScheduling event");
    assert_eq!(warning["type"], "Warning");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("persistentvolumeclaim \"missing\" not found"),
        "{warning}"
    );
    let e = pods
        .exec("orphan", vec!["true"], &AttachParams::default())
        .await
        .map(|_| ())
        .unwrap_err();
    match e {
        kube::Error::Api(s) => {
            assert_eq!(
                (s.code, s.message.as_str()),
                (400, "pod orphan does not have a host assigned")
            )
        }
        other => panic!("{other:?}"),
    }
    emu.assert_no_unexpected();
}

/// An image that cannot be pulled: the pod stays Pending, its container waiting in
/// ImagePullBackOff with the kubelet's message and Warning event `Failed`; exec into it gets
/// the kubelet's "container not found" as an internal error on the error channel (1.30+).
#[tokio::test(flavor = "multi_thread")]
async fn emu_image_pull_failure_keeps_the_pod_pending() {
    let (emu, client) = start().await;
    emu.pods().image_pull_fails_matching("^example.com/nope");
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let mut p = plain_pod("broken", None);
    p.spec.as_mut().unwrap().containers[0].image = Some("example.com/nope:1".into());
    pods.create(&PostParams::default(), &p).await.unwrap();
    let waiting = until(Duration::from_secs(3), "ImagePullBackOff", || {
        let p = pod(&emu, "broken")?;
        let w = p["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (w["reason"] == "ImagePullBackOff").then_some(w)
    })
    .await;
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .starts_with("Back-off pulling image \"example.com/nope:1\""),
        "{waiting}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p = pod(&emu, "broken").unwrap();
    assert_eq!(phase(&p), "Pending");
    assert_eq!(condition(&p, "Ready").unwrap()["status"], "False");
    let failed = events_of(&emu, "broken")
        .into_iter()
        .find(|e| {
            e["reason"] == "Failed"
                && e["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("Failed to pull image")
        })
        .expect("a Failed event");
    assert_eq!(failed["type"], "Warning");

    let (out, _, status) = exec(&pods, "broken", "echo ran").await;
    assert_eq!(out, "", "nothing ran");
    let status = status.unwrap();
    assert_eq!(status.reason.as_deref(), Some("InternalError"));
    assert_eq!(
        status.message.as_deref(),
        Some(
            "Internal error occurred: unable to upgrade connection: container not found (\"main\")"
        )
    );
    emu.assert_no_unexpected();
}

/// `activeDeadlineSeconds`: after it the pod is Failed with reason DeadlineExceeded, and an
/// exec still running in it is killed.
#[tokio::test(flavor = "multi_thread")]
async fn emu_active_deadline_fails_the_pod() {
    let (emu, client) = start().await;
    emu.pods().start_after(Duration::from_millis(100));
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let mut p = plain_pod("bounded", None);
    p.spec.as_mut().unwrap().active_deadline_seconds = Some(2);
    pods.create(&PostParams::default(), &p).await.unwrap();
    until(Duration::from_secs(2), "running", || {
        (phase(&pod(&emu, "bounded")?) == "Running").then_some(())
    })
    .await;
    let started = Instant::now();
    let (_, _, status) = exec(&pods, "bounded", "sleep 30").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the exec was killed with the pod"
    );
    assert_eq!(status.unwrap().status.as_deref(), Some("Failure"));
    let failed = until(Duration::from_secs(3), "failed", || {
        let p = pod(&emu, "bounded")?;
        (phase(&p) == "Failed").then_some(p)
    })
    .await;
    assert_eq!(failed["status"]["reason"], "DeadlineExceeded");
    assert_eq!(condition(&failed, "Ready").unwrap()["status"], "False");
    emu.assert_no_unexpected();
}

fn alive(pid: i32) -> bool {
    unsafe { libc::kill(pid, 0) == 0 }
}

/// DELETE of a running pod: it stays, terminating (deletionTimestamp), for a short grace, then
/// is gone and the processes its exec started are killed.
#[tokio::test(flavor = "multi_thread")]
async fn emu_pod_delete_is_graceful_and_kills_its_processes() {
    let (emu, client) = start().await;
    emu.pods()
        .start_after(Duration::from_millis(100))
        .delete_grace(Duration::from_millis(500));
    let pods: Api<Pod> = Api::namespaced(client, NS);
    pods.create(&PostParams::default(), &plain_pod("doomed", None))
        .await
        .unwrap();
    until(Duration::from_secs(2), "running", || {
        (phase(&pod(&emu, "doomed")?) == "Running").then_some(())
    })
    .await;
    let ap = AttachParams::default().stdin(false).stderr(false);
    let mut attached = pods
        .exec("doomed", vec!["sh", "-c", "sleep 60 & echo $!; wait"], &ap)
        .await
        .unwrap();
    let mut stdout = attached.stdout().unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while stdout.read(&mut b).await.unwrap() == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    let sleeper: i32 = String::from_utf8(line).unwrap().trim().parse().unwrap();
    assert!(alive(sleeper));

    let deleted = pods
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = deleted.left().expect("the pod, still there");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(pod(&emu, "doomed").is_some(), "still terminating");
    until(Duration::from_secs(3), "gone", || {
        pod(&emu, "doomed").is_none().then_some(())
    })
    .await;
    until(Duration::from_secs(3), "the exec's process killed", || {
        (!alive(sleeper)).then_some(())
    })
    .await;

    // An unscheduled pod goes at once.
    pods.create(&PostParams::default(), &plain_pod("never", Some("missing")))
        .await
        .unwrap();
    let deleted = pods
        .delete("never", &DeleteParams::default())
        .await
        .unwrap();
    assert!(deleted.is_left());
    assert!(pod(&emu, "never").is_none());
    emu.assert_no_unexpected();
}

/// A PVC created through the API carries `kubernetes.io/pvc-protection`; deleted while a pod
/// uses it, it stays terminating until that pod is gone; an unused one goes at once.
#[tokio::test(flavor = "multi_thread")]
async fn emu_pvc_protection_keeps_a_claim_in_use_until_its_pod_is_gone() {
    let (emu, client) = start().await;
    emu.pods()
        .start_after(Duration::from_millis(100))
        .delete_grace(Duration::from_millis(300));
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NS);
    for name in ["used", "unused"] {
        let made = pvcs
            .create(&PostParams::default(), &pvc_json(name, None, None))
            .await
            .unwrap();
        assert_eq!(
            made.metadata.finalizers,
            Some(vec!["kubernetes.io/pvc-protection".to_string()])
        );
    }
    let pods: Api<Pod> = Api::namespaced(client, NS);
    pods.create(&PostParams::default(), &plain_pod("user", Some("used")))
        .await
        .unwrap();
    until(Duration::from_secs(3), "running", || {
        (phase(&pod(&emu, "user")?) == "Running").then_some(())
    })
    .await;

    pvcs.delete("unused", &DeleteParams::default())
        .await
        .unwrap();
    assert!(pvc(&emu, "unused").is_none(), "no pod uses it");
    pvcs.delete("used", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kept = pvc(&emu, "used").expect("kept while the pod uses it");
    assert!(kept["metadata"]["deletionTimestamp"].is_string());
    // A new pod cannot use a claim being deleted.
    pods.create(&PostParams::default(), &plain_pod("newcomer", Some("used")))
        .await
        .unwrap();

    pods.delete("user", &DeleteParams::default()).await.unwrap();
    assert!(pvc(&emu, "used").is_some(), "the pod is still terminating");
    until(Duration::from_secs(3), "the claim gone", || {
        pvc(&emu, "used").is_none().then_some(())
    })
    .await;
    let newcomer = pod(&emu, "newcomer").unwrap();
    assert_eq!(phase(&newcomer), "Pending");
    emu.assert_no_unexpected();
}

fn owner(path: &Path) -> (u32, u32, u32) {
    let m = std::fs::metadata(path).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// Exec into a created helper pod: the working directory is the restored volume (mounted at
/// the container's workingDir), TMPDIR a private directory of the pod (its emptyDir at /tmp),
/// the user the securityContext's — who can read a root-only file of the volume through
/// fsGroup, as on a node — and PATH and extra env from `set_kubelet_exec`.
#[tokio::test(flavor = "multi_thread")]
async fn emu_exec_in_a_created_pod_runs_in_its_volume_as_its_user() {
    let (emu, client) = start().await;
    emu.create(fixtures::pvc(NS, "data", true));
    let live = tempfile::tempdir().unwrap();
    std::fs::write(live.path().join("dump"), "rows\n").unwrap();
    std::fs::set_permissions(
        live.path().join("dump"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    emu.set_pvc_dir(NS, "data", live.path());
    emu.set_kubelet_exec(ExecEnv {
        path: Some("/usr/local/bin:/usr/bin:/bin".into()),
        extra_env: vec![("FROM_KUBELET".into(), "yes".into())],
        ..Default::default()
    });
    let vs: DynamicObject =
        serde_json::from_value(fixtures::volume_snapshot(NS, "snap", "data", &[])).unwrap();
    snapshot_api(&client)
        .create(&PostParams::default(), &vs)
        .await
        .unwrap();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NS);
    pvcs.create(
        &PostParams::default(),
        &pvc_json("restored", None, Some("snap")),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let made = pods
        .create(
            &PostParams::default(),
            &helper_json("backup-ns-restore-", "restored", "postgres:15"),
        )
        .await
        .unwrap();
    let name = made.metadata.name.unwrap();
    until(Duration::from_secs(5), "running", || {
        (phase(&pod(&emu, &name)?) == "Running").then_some(())
    })
    .await;

    let script = "pwd; id -u; id -g; echo \"$TMPDIR\"; echo \"$PATH $FROM_KUBELET\"; cat dump; touch \"$TMPDIR/x\" && echo tmp-ok";
    let (out, err, status) = exec(&pods, &name, script).await;
    assert_eq!(
        status.unwrap().status.as_deref(),
        Some("Success"),
        "{out}{err}"
    );
    let lines: Vec<&str> = out.lines().collect();
    let volume = emu.pvc_dir(NS, "restored").unwrap();
    assert_eq!(
        lines[0],
        volume.canonicalize().unwrap().display().to_string()
    );
    assert_ne!(volume, live.path());
    let tmpdir = Path::new(lines[3]);
    assert!(tmpdir.is_dir() && !tmpdir.starts_with(&volume), "{out}");
    assert_eq!(lines[4], "/usr/local/bin:/usr/bin:/bin yes");
    if is_root() {
        assert_eq!((lines[1], lines[2]), ("999", "999"));
        assert_eq!(&lines[5..], ["rows", "tmp-ok"], "{err}");
        assert_eq!(owner(tmpdir).0, 999);
        assert_eq!(owner(&volume.join("dump")).1, 999, "fsGroup");
    }
    // Another pod has another TMPDIR.
    let other = pods
        .create(
            &PostParams::default(),
            &helper_json("backup-ns-restore-", "restored", "postgres:15"),
        )
        .await
        .unwrap()
        .metadata
        .name
        .unwrap();
    until(Duration::from_secs(5), "running", || {
        (phase(&pod(&emu, &other)?) == "Running").then_some(())
    })
    .await;
    let (out, _, _) = exec(&pods, &other, "echo \"$TMPDIR\"").await;
    assert_ne!(out.trim(), tmpdir.display().to_string());
    emu.assert_no_unexpected();
}
