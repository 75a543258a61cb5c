//! Tests of the API emulation itself, through a real `kube::Client` built from the kubeconfig it
//! writes: what later tests rely on when they point backup-ns at it.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{
    Api, AttachParams, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    Preconditions,
};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::emu::{fixtures, Emu, ExecCall, ExecEnv, Fault, Verb, DEFAULT_DRIVER};

fn snapshot_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("snapshot.storage.k8s.io", "v1", kind),
        plural,
    )
}

fn snapshots(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &snapshot_resource("VolumeSnapshot", "volumesnapshots"),
    )
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn start() -> (Emu, kube::Client) {
    let emu = Emu::start().await;
    let client = emu.client().await;
    (emu, client)
}

fn pod_json(name: &str, labels: Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "labels": labels },
        "spec": { "containers": [{ "name": "main", "image": "x" }] },
    }))
    .unwrap()
}

async fn names(api: &Api<Pod>, selector: &str) -> Vec<String> {
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap();
    list.items
        .into_iter()
        .map(|p| p.metadata.name.unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_create_get_list_with_each_selector_operator() {
    let (emu, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "app");
    for (name, labels) in [
        ("a", json!({"app": "db", "tier": "backend"})),
        ("b", json!({"app": "web", "tier": "frontend"})),
        ("c", json!({"app": "cache"})),
    ] {
        let created = pods
            .create(&PostParams::default(), &pod_json(name, labels))
            .await
            .unwrap();
        let meta = &created.metadata;
        assert!(
            meta.uid.is_some()
                && meta.resource_version.is_some()
                && meta.creation_timestamp.is_some()
        );
        assert_eq!(
            (meta.namespace.as_deref(), meta.generation),
            (Some("app"), Some(1))
        );
        assert_eq!(
            created.status.and_then(|s| s.phase).as_deref(),
            Some("Pending"),
            "a created pod's status is the server's business: Pending at first"
        );
    }
    let a = pods.get("a").await.unwrap();
    assert_eq!(a.metadata.labels.unwrap()["app"], "db");

    assert_eq!(names(&pods, "app=db").await, ["a"]);
    assert_eq!(names(&pods, "app==web").await, ["b"]);
    assert_eq!(
        names(&pods, "tier!=backend").await,
        ["b", "c"],
        "!= matches a missing key"
    );
    assert_eq!(names(&pods, "tier").await, ["a", "b"]);
    assert_eq!(names(&pods, "!tier").await, ["c"]);
    assert_eq!(names(&pods, "app in (db,cache)").await, ["a", "c"]);
    assert_eq!(names(&pods, "app notin (db,cache)").await, ["b"]);
    assert_eq!(names(&pods, "app in (db,web),tier=frontend").await, ["b"]);
    let by_name = pods
        .list(&ListParams::default().fields("metadata.name=c"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let bad = api_error(pods.list(&ListParams::default().labels("app in db")).await);
    assert_eq!((bad.code, bad.reason.as_str()), (400, "BadRequest"));
    let bad = api_error(
        pods.list(&ListParams::default().fields("spec.image=x"))
            .await,
    );
    assert_eq!(bad.message, "field label not supported: spec.image");

    emu.create(fixtures::pod(
        "other",
        "d",
        &[("app", "db")],
        &[("main", &[])],
        "Running",
        true,
        false,
    ));
    let all: Api<Pod> = Api::all(client);
    let everywhere = all
        .list(&ListParams::default().labels("app=db"))
        .await
        .unwrap();
    let keys: Vec<_> = everywhere
        .items
        .iter()
        .map(|p| {
            (
                p.metadata.namespace.clone().unwrap(),
                p.metadata.name.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("app".to_string(), "a".to_string()),
            ("other".to_string(), "d".to_string())
        ]
    );
    assert_eq!(emu.count(Verb::Create, "pods"), 3);
    assert_eq!(emu.count(Verb::List, "pods"), 12);
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_pagination_returns_every_object_once() {
    let (emu, client) = start().await;
    for ns in ["a", "b"] {
        for i in 0..5 {
            emu.create(fixtures::pvc(ns, &format!("pvc-{i}"), i % 2 == 0));
        }
    }
    let all: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(2);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = all.list(&lp).await.unwrap();
        assert!(page.items.len() <= 2);
        assert!(page.metadata.resource_version.is_some());
        seen.extend(page.items.iter().map(|p| {
            format!(
                "{}/{}",
                p.metadata.namespace.clone().unwrap(),
                p.metadata.name.clone().unwrap()
            )
        }));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let expected: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|ns| (0..5).map(move |i| format!("{ns}/pvc-{i}")))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(emu.count(Verb::List, "persistentvolumeclaims"), 5);

    // With a selector the pages are full until the matching objects run out.
    let bound: Api<PersistentVolumeClaim> = Api::namespaced(client, "a");
    let page = bound
        .list(
            &ListParams::default()
                .limit(2)
                .fields("metadata.name!=pvc-0"),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let rest = bound
        .list(
            &ListParams::default()
                .limit(5)
                .fields("metadata.name!=pvc-0")
                .continue_token(page.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert_eq!(
        rest.metadata.continue_, None,
        "no continue token on the last page"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_merge_patch_null_removes_a_label_and_keeps_status() {
    let (emu, client) = start().await;
    emu.create(fixtures::pvc("app", "data", true));
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "app");
    let rv0 = pvcs
        .get("data")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let p =
        json!({"metadata": {"labels": {"keep": "1", "drop": "1"}}, "status": {"phase": "Lost"}});
    pvcs.patch("data", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    let p = json!({"metadata": {"labels": {"drop": null}}});
    let patched = pvcs
        .patch("data", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    let labels = patched.metadata.labels.unwrap();
    assert_eq!(labels.keys().collect::<Vec<_>>(), ["keep"]);
    assert_eq!(
        patched.status.unwrap().phase.as_deref(),
        Some("Bound"),
        "status changes only through /status"
    );
    assert!(
        patched
            .metadata
            .resource_version
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > rv0.parse().unwrap()
    );
    assert_eq!(patched.metadata.generation, Some(1), "labels are not spec");

    // A no-op patch keeps the resourceVersion, as in the apiserver.
    let again = pvcs
        .patch("data", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        emu.get("v1", "persistentvolumeclaims", Some("app"), "data")
            .unwrap()["metadata"]["resourceVersion"]
            .as_str()
            .map(String::from)
    );

    // JSON patch (RFC 6902; kube's `Patch::Json` needs a feature we do not build), with a
    // failing test op changing nothing.
    let ops = json!([
        {"op": "test", "path": "/metadata/labels/keep", "value": "1"},
        {"op": "add", "path": "/metadata/labels/added", "value": "yes"},
    ]);
    let patched: PersistentVolumeClaim =
        serde_json::from_str(&client.request_text(json_patch("data", &ops)).await.unwrap())
            .unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["added"], "yes");
    let ops = json!([
        {"op": "remove", "path": "/metadata/labels/added"},
        {"op": "test", "path": "/metadata/labels/keep", "value": "2"},
    ]);
    let e = api_error(client.request_text(json_patch("data", &ops)).await);
    assert_eq!(e.code, 422);
    assert!(pvcs
        .get("data")
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap()
        .contains_key("added"));
}

fn json_patch(pvc: &str, ops: &Value) -> http::Request<Vec<u8>> {
    http::Request::patch(format!(
        "/api/v1/namespaces/app/persistentvolumeclaims/{pvc}"
    ))
    .header("Content-Type", "application/json-patch+json")
    .body(serde_json::to_vec(ops).unwrap())
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_stale_resource_version_is_a_409_conflict() {
    let (_emu, client) = start().await;
    let leases: Api<Lease> = Api::namespaced(client, "app");
    let lease: Lease = serde_json::from_value(
        json!({"metadata": {"name": "lock"}, "spec": {"holderIdentity": "a"}}),
    )
    .unwrap();
    let first = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut mine = first.clone();
    mine.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let replaced = leases
        .replace("lock", &PostParams::default(), &mine)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        first.metadata.resource_version
    );
    // `mine` still carries the old resourceVersion.
    let e = api_error(leases.replace("lock", &PostParams::default(), &mine).await);
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"lock\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let stale = json!({"metadata": {"resourceVersion": first.metadata.resource_version, "labels": {"x": "y"}}});
    let e = api_error(
        leases
            .patch("lock", &PatchParams::default(), &Patch::Merge(&stale))
            .await,
    );
    assert_eq!(e.code, 409);

    let e = api_error(leases.create(&PostParams::default(), &lease).await);
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (
            409,
            "AlreadyExists",
            "leases.coordination.k8s.io \"lock\" already exists"
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_delete_with_a_wrong_uid_precondition_keeps_the_object() {
    let (emu, client) = start().await;
    let created = emu.create(fixtures::volume_snapshot("app", "snap", "data", &[]));
    let api = snapshots(&client, "app");
    let wrong = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-it".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let e = api_error(api.delete("snap", &wrong).await);
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(
        e.message
            .contains("Precondition failed: UID in precondition: not-it"),
        "{}",
        e.message
    );
    assert!(api.get("snap").await.is_ok());

    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    let right = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    let deleted = api.delete("snap", &right).await.unwrap();
    assert!(deleted.is_left(), "the deleted object is returned");
    assert!(emu
        .get(
            "snapshot.storage.k8s.io/v1",
            "volumesnapshots",
            Some("app"),
            "snap"
        )
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_not_found_has_the_apiserver_body() {
    let (emu, client) = start().await;
    let e = api_error(snapshots(&client, "app").get("x").await);
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(
        e.message,
        "volumesnapshots.snapshot.storage.k8s.io \"x\" not found"
    );
    let details = e.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("x", "snapshot.storage.k8s.io", "volumesnapshots")
    );
    let raw = client
        .request_text(
            http::Request::get("/api/v1/namespaces/app/pods/nope")
                .body(vec![])
                .unwrap(),
        )
        .await;
    assert!(matches!(raw, Err(kube::Error::Api(s)) if s.message == "pods \"nope\" not found"));
    assert_eq!(emu.requests().last().unwrap().code, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_validates_names_and_labels_and_supports_generate_name_and_dry_run() {
    let (emu, client) = start().await;
    let api = snapshots(&client, "app");
    let mut vs: DynamicObject =
        serde_json::from_value(fixtures::volume_snapshot("app", "Bad_Name", "data", &[])).unwrap();
    let e = api_error(api.create(&PostParams::default(), &vs).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(e.message.starts_with("VolumeSnapshot.snapshot.storage.k8s.io \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", e.message);
    vs.metadata.name = Some("ok".into());
    vs.metadata.labels = Some([("at".to_string(), "2024-01-01T00:00:00Z".to_string())].into());
    let e = api_error(api.create(&PostParams::default(), &vs).await);
    assert!(
        e.message
            .contains("metadata.labels: Invalid value: \"2024-01-01T00:00:00Z\""),
        "{}",
        e.message
    );

    vs.metadata.labels = None;
    vs.metadata.name = None;
    vs.metadata.generate_name = Some("nightly-".into());
    let dry = api
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &vs,
        )
        .await
        .unwrap();
    assert!(dry.metadata.name.unwrap().starts_with("nightly-"));
    assert!(
        emu.list("volumesnapshots", None).is_empty(),
        "dry run stores nothing"
    );
    let made = api.create(&PostParams::default(), &vs).await.unwrap();
    assert_eq!(made.metadata.name.unwrap().len(), "nightly-".len() + 5);
    assert_eq!(emu.list("volumesnapshots", Some("app")).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_status_subresource_is_separate() {
    let (emu, client) = start().await;
    emu.snapshots().never_ready_matching(".");
    emu.create(fixtures::volume_snapshot(
        "app",
        "snap",
        "data",
        &[("a", "1")],
    ));
    let api = snapshots(&client, "app");
    let p = json!({"status": {"readyToUse": true}, "metadata": {"labels": {"a": "2"}}});
    let after = api
        .patch_status("snap", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(after.data["status"]["readyToUse"], true);
    assert_eq!(
        after.metadata.labels.unwrap()["a"],
        "1",
        "a /status patch changes only status"
    );
    assert_eq!(emu.count(Verb::Patch, "volumesnapshots"), 1);
    assert_eq!(emu.requests()[0].subresource.as_deref(), Some("status"));
}

/// Runs a command, reading stdout and stderr concurrently, and returns them with the status.
async fn exec(
    pods: &Api<Pod>,
    pod: &str,
    argv: &[&str],
    ap: &AttachParams,
) -> (String, String, Option<Status>) {
    let mut attached = pods.exec(pod, argv.to_vec(), ap).await.unwrap();
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

async fn exec_setup(env: &[(&str, &str)]) -> (Emu, Api<Pod>) {
    let (emu, client) = start().await;
    emu.create(fixtures::pod(
        "app",
        "db-0",
        &[("app", "db")],
        &[("postgres", env), ("sidecar", &[])],
        "Running",
        true,
        false,
    ));
    (emu, Api::namespaced(client, "app"))
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_exec_streams_output_and_reports_the_exit_code() {
    let (emu, pods) = exec_setup(&[]).await;
    let ap = AttachParams::default().container("postgres");
    let (out, err, status) = exec(
        &pods,
        "db-0",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        &ap,
    )
    .await;
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    let status = status.unwrap();
    assert_eq!(
        (status.status.as_deref(), status.reason.as_deref()),
        (Some("Failure"), Some("NonZeroExitCode"))
    );
    assert_eq!(
        status.message.as_deref(),
        Some("command terminated with non-zero exit code: error executing command [sh -c echo out; echo err >&2; exit 3], exit code 3")
    );
    let causes = status.details.unwrap().causes.unwrap();
    assert_eq!(
        (causes[0].reason.as_deref(), causes[0].message.as_deref()),
        (Some("ExitCode"), Some("3"))
    );

    let (_, _, status) = exec(&pods, "db-0", &["true"], &ap).await;
    assert_eq!(status.unwrap().status.as_deref(), Some("Success"));
    let (_, err, status) = exec(&pods, "db-0", &["no-such-binary-here"], &ap).await;
    assert!(
        err.contains("executable file not found") || err.contains("No such file"),
        "{err}"
    );
    assert_eq!(
        status.unwrap().details.unwrap().causes.unwrap()[0]
            .message
            .as_deref(),
        Some("126")
    );

    let argv: Vec<String> = ["sh", "-c", "echo out; echo err >&2; exit 3"]
        .map(String::from)
        .into();
    let first = emu
        .requests()
        .into_iter()
        .find(|r| r.verb == Verb::Exec)
        .unwrap();
    assert_eq!(
        first.exec,
        Some(ExecCall {
            pod: "db-0".into(),
            container: "postgres".into(),
            argv
        })
    );
    assert_eq!((first.code, emu.count(Verb::Exec, "pods")), (101, 3));
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_exec_stdin_reaches_the_child() {
    let (_emu, pods) = exec_setup(&[]).await;
    let ap = AttachParams::default().container("postgres").stdin(true);
    let mut attached = pods.exec("db-0", vec!["cat"], &ap).await.unwrap();
    let mut stdin = attached.stdin().unwrap();
    let mut stdout = attached.stdout().unwrap();
    let status = attached.take_status().unwrap();
    stdin.write_all(b"hello\n").await.unwrap();
    let mut line = [0u8; 6];
    stdout.read_exact(&mut line).await.unwrap();
    assert_eq!(&line, b"hello\n", "output streams before stdin is closed");
    // Shutting the writer down sends the v5 stdin close signal: cat sees EOF and exits. (With
    // kube, dropping the `WriteHalf` alone does not end the stream.)
    stdin.shutdown().await.unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "");
    assert_eq!(status.await.unwrap().status.as_deref(), Some("Success"));
}

async fn wait_for_file(path: &Path) -> String {
    for _ in 0..100 {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.is_empty() {
                return s;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never appeared", path.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_exec_dropped_connection_closes_the_childs_stdin() {
    let (emu, pods) = exec_setup(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    emu.set_pod_exec(
        "app",
        "db-0",
        ExecEnv {
            cwd: Some(dir.path().into()),
            ..Default::default()
        },
    );
    let ap = AttachParams::default().container("postgres").stdin(true);
    let attached = pods
        .exec(
            "db-0",
            vec!["sh", "-c", "cat >/dev/null; echo closed > marker"],
            &ap,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !dir.path().join("marker").exists(),
        "the child waits for stdin EOF"
    );
    drop(attached);
    assert_eq!(wait_for_file(&dir.path().join("marker")).await, "closed\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_exec_sees_the_pod_env_and_its_working_directory() {
    let (emu, pods) = exec_setup(&[("POSTGRES_PASSWORD", "s3cret"), ("PGUSER", "app")]).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = vec![("EXTRA".to_string(), "x".to_string())];
    emu.set_pod_exec(
        "app",
        "db-0",
        ExecEnv {
            cwd: Some(dir.path().into()),
            extra_env: extra,
            ..Default::default()
        },
    );
    let script = "echo \"${POSTGRES_PASSWORD} $PGUSER $HOSTNAME $EXTRA\"; pwd";
    let (out, _, _) = exec(
        &pods,
        "db-0",
        &["sh", "-c", script],
        &AttachParams::default().container("postgres"),
    )
    .await;
    let cwd = dir.path().canonicalize().unwrap();
    assert_eq!(out, format!("s3cret app db-0 x\n{}\n", cwd.display()));
    let (out, _, _) = exec(
        &pods,
        "db-0",
        &["sh", "-c", "echo \"[$POSTGRES_PASSWORD]\""],
        &AttachParams::default().container("sidecar"),
    )
    .await;
    assert_eq!(out, "[]\n", "each container has its own env");

    if unsafe { libc::geteuid() } == 0 {
        emu.set_pod_exec(
            "app",
            "db-0",
            ExecEnv {
                uid_gid: Some((65534, 65534)),
                ..Default::default()
            },
        );
        let (out, _, _) = exec(
            &pods,
            "db-0",
            &["sh", "-c", "id -u; id -g"],
            &AttachParams::default().container("postgres"),
        )
        .await;
        assert_eq!(out, "65534\n65534\n");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_exec_checks_pod_and_container_before_upgrading() {
    let (emu, pods) = exec_setup(&[]).await;
    let e = api_error(
        pods.exec(
            "db-0",
            vec!["true"],
            &AttachParams::default().container("nope"),
        )
        .await
        .map(|_| ()),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "container nope is not valid for pod db-0")
    );
    let e = api_error(
        pods.exec("db-0", vec!["true"], &AttachParams::default())
            .await
            .map(|_| ()),
    );
    assert_eq!(
        e.message,
        "a container name must be specified for pod db-0, choose one of: [postgres sidecar]"
    );
    let e = api_error(
        pods.exec("gone", vec!["true"], &AttachParams::default())
            .await
            .map(|_| ()),
    );
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    emu.create(fixtures::pod(
        "app",
        "done",
        &[],
        &[("main", &[])],
        "Succeeded",
        false,
        false,
    ));
    let e = api_error(
        pods.exec("done", vec!["true"], &AttachParams::default())
            .await
            .map(|_| ()),
    );
    assert_eq!(
        e.message,
        "cannot exec into a container in a completed pod; current phase is Succeeded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_exec_speaks_v4_when_only_v4_is_offered() {
    let (emu, _pods) = exec_setup(&[]).await;
    let url = format!("ws://{}/api/v1/namespaces/app/pods/db-0/exec?container=postgres&stdout=true&stderr=true&command=sh&command=-c&command=echo+hi%3B+exit+1", emu.addr());
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v4.channel.k8s.io".parse().unwrap(),
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "v4.channel.k8s.io"
    );
    let mut frames = Vec::new();
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Binary(b) = msg {
            frames.push(b.to_vec());
        }
    }
    let _ = ws.close(None).await;
    assert!(frames.contains(&b"\x01hi\n".to_vec()), "{frames:?}");
    let status: Value =
        serde_json::from_slice(&frames.iter().find(|f| f.len() > 1 && f[0] == 3).unwrap()[1..])
            .unwrap();
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(
        status["details"]["causes"][0],
        json!({"reason": "ExitCode", "message": "1"})
    );
}

async fn wait_for_status(emu: &Emu, ns: &str, name: &str) -> Value {
    for _ in 0..100 {
        if let Some(status) = emu
            .get(
                "snapshot.storage.k8s.io/v1",
                "volumesnapshots",
                Some(ns),
                name,
            )
            .and_then(|v| v.get("status").cloned())
        {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("snapshot {ns}/{name} never got a status");
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_snapshot_controller_binds_a_ready_content() {
    let emu = Emu::builder()
        .snapshot_ready_after(Duration::from_millis(50))
        .start()
        .await;
    let client = emu.client().await;
    emu.create(fixtures::pvc("app", "data", true));
    let api = snapshots(&client, "app");
    let vs: DynamicObject =
        serde_json::from_value(fixtures::volume_snapshot("app", "snap", "data", &[])).unwrap();
    let created = api.create(&PostParams::default(), &vs).await.unwrap();
    assert!(created.data.get("status").is_none());
    let status = wait_for_status(&emu, "app", "snap").await;
    assert_eq!(status["readyToUse"], true);
    assert_eq!(status["restoreSize"], "1Gi");
    assert!(status["creationTime"].as_str().unwrap().ends_with('Z'));
    let content_name = status["boundVolumeSnapshotContentName"].as_str().unwrap();
    let contents: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &snapshot_resource("VolumeSnapshotContent", "volumesnapshotcontents"),
    );
    let content = contents.get(content_name).await.unwrap();
    let reference = &content.data["spec"]["volumeSnapshotRef"];
    assert_eq!(
        (reference["name"].as_str(), reference["namespace"].as_str()),
        (Some("snap"), Some("app"))
    );
    assert_eq!(reference["uid"].as_str(), created.metadata.uid.as_deref());
    assert_eq!(content.data["spec"]["deletionPolicy"], "Retain");
    assert_eq!(content.data["spec"]["driver"], DEFAULT_DRIVER);
    assert_eq!(content.data["spec"]["source"]["volumeHandle"], "pvc-data");
    assert_eq!(content.data["status"]["readyToUse"], true);

    // With a Delete-policy class the content goes with the snapshot.
    emu.create(fixtures::volume_snapshot_class(
        "csi",
        "csi.example.com",
        "Delete",
        true,
    ));
    emu.create(fixtures::volume_snapshot("app", "snap2", "data", &[]));
    let status = wait_for_status(&emu, "app", "snap2").await;
    let content2 = status["boundVolumeSnapshotContentName"]
        .as_str()
        .unwrap()
        .to_string();
    let vs2 = emu
        .get(
            "snapshot.storage.k8s.io/v1",
            "volumesnapshots",
            Some("app"),
            "snap2",
        )
        .unwrap();
    assert_eq!(
        vs2["spec"]["volumeSnapshotClassName"], "csi",
        "the default class is filled in"
    );
    api.delete("snap2", &DeleteParams::default()).await.unwrap();
    assert!(emu
        .get(
            "snapshot.storage.k8s.io/v1",
            "volumesnapshotcontents",
            None,
            &content2
        )
        .is_none());
    api.delete("snap", &DeleteParams::default()).await.unwrap();
    assert!(
        emu.get(
            "snapshot.storage.k8s.io/v1",
            "volumesnapshotcontents",
            None,
            content_name
        )
        .is_some(),
        "Retain keeps it"
    );
    assert_eq!(
        emu.delete(
            "snapshot.storage.k8s.io/v1",
            "volumesnapshotcontents",
            None,
            content_name
        )
        .unwrap()["kind"],
        "VolumeSnapshotContent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_snapshot_controller_fails_or_stalls_as_configured() {
    let emu = Emu::builder()
        .snapshot_ready_after(Duration::from_millis(20))
        .start()
        .await;
    emu.snapshots()
        .fail_matching("^broken-", "rpc error: code = Internal desc = disk on fire")
        .never_ready_for_pvc("app", "slow");
    emu.create(fixtures::pvc("app", "data", true));
    emu.create(fixtures::pvc("app", "slow", true));
    emu.create(fixtures::pvc("app", "unbound", false));
    emu.create(fixtures::volume_snapshot("app", "broken-1", "data", &[]));
    emu.create(fixtures::volume_snapshot("app", "stuck", "slow", &[]));
    emu.create(fixtures::volume_snapshot("app", "waiting", "unbound", &[]));
    let failed = wait_for_status(&emu, "app", "broken-1").await;
    assert_eq!(failed["readyToUse"], false);
    assert_eq!(
        failed["error"]["message"],
        "rpc error: code = Internal desc = disk on fire"
    );
    assert!(failed["error"]["time"].is_string());
    let stuck = wait_for_status(&emu, "app", "stuck").await;
    assert_eq!(stuck["readyToUse"], false);
    assert!(stuck["boundVolumeSnapshotContentName"].is_string());

    // An unbound PVC keeps its snapshot waiting until it binds.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(emu
        .get(
            "snapshot.storage.k8s.io/v1",
            "volumesnapshots",
            Some("app"),
            "waiting"
        )
        .unwrap()
        .get("status")
        .is_none());
    emu.replace(fixtures::pvc("app", "unbound", true));
    assert_eq!(
        wait_for_status(&emu, "app", "waiting").await["readyToUse"],
        true
    );
}

fn snapshot_of(emu: &Emu, ns: &str, name: &str) -> Option<Value> {
    emu.get(
        "snapshot.storage.k8s.io/v1",
        "volumesnapshots",
        Some(ns),
        name,
    )
}

/// A snapshot the controller bound carries its finalizers; a DELETE makes it terminating and,
/// unless a test holds the deletion, the controller finishes it at once. Held, it stays
/// terminating (no finalizer can be added) until released.
#[tokio::test(flavor = "multi_thread")]
async fn emu_deleted_snapshots_terminate_through_finalizers() {
    let emu = Emu::builder()
        .snapshot_ready_after(Duration::from_millis(20))
        .start()
        .await;
    emu.snapshots()
        .terminating_until_released_matching("^held-")
        .terminating_for_matching("^brief-", Duration::from_millis(300));
    emu.create(fixtures::pvc("app", "data", true));
    for name in ["plain", "held-1", "brief-1"] {
        emu.create(fixtures::volume_snapshot("app", name, "data", &[]));
        wait_for_status(&emu, "app", name).await;
    }
    let bound = snapshot_of(&emu, "app", "plain").unwrap();
    assert_eq!(
        bound["metadata"]["finalizers"],
        json!(crate::emu::SNAPSHOT_FINALIZERS)
    );
    let client = emu.client().await;
    let api = snapshots(&client, "app");
    api.delete("plain", &DeleteParams::default()).await.unwrap();
    assert!(
        snapshot_of(&emu, "app", "plain").is_none(),
        "not held: gone at once"
    );

    api.delete("held-1", &DeleteParams::default())
        .await
        .unwrap();
    let held = snapshot_of(&emu, "app", "held-1").expect("still there");
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");
    let add = json!({"metadata": {"finalizers": ["example.com/more"]}});
    let err = api
        .patch("held-1", &PatchParams::default(), &Patch::Merge(&add))
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 422));
    // Labels can still change on a terminating snapshot.
    let label = json!({"metadata": {"labels": {"x": "y"}}});
    api.patch("held-1", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    assert!(emu.snapshots().release("app", "held-1"));
    assert!(snapshot_of(&emu, "app", "held-1").is_none());

    api.delete("brief-1", &DeleteParams::default())
        .await
        .unwrap();
    assert!(snapshot_of(&emu, "app", "brief-1").is_some());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        snapshot_of(&emu, "app", "brief-1").is_none(),
        "released after the delay"
    );
}

/// A transient `status.error` is cleared when the snapshot becomes ready; the kept variant
/// leaves it on the ready snapshot; a slow snapshot is bound but not ready until its delay.
#[tokio::test(flavor = "multi_thread")]
async fn emu_snapshot_errors_clear_and_slow_snapshots_take_their_time() {
    let emu = Emu::builder()
        .snapshot_ready_after(Duration::from_millis(20))
        .start()
        .await;
    emu.snapshots()
        .transient_error_for_pvc("app", "flaky", "try again", Duration::from_millis(300))
        .ready_with_error_for_pvc("app", "sticky", "stale", Duration::from_millis(300))
        .slow_for_pvc("app", "big", Duration::from_millis(300));
    for pvc in ["flaky", "sticky", "big"] {
        emu.create(fixtures::pvc("app", pvc, true));
        emu.create(fixtures::volume_snapshot("app", pvc, pvc, &[]));
    }
    let flaky = wait_for_status(&emu, "app", "flaky").await;
    assert_eq!(flaky["readyToUse"], false);
    assert_eq!(flaky["error"]["message"], "try again");
    let big = wait_for_status(&emu, "app", "big").await;
    assert_eq!(big["readyToUse"], false);
    assert!(big["boundVolumeSnapshotContentName"].is_string());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let status = |name| snapshot_of(&emu, "app", name).unwrap()["status"].clone();
    let flaky = status("flaky");
    assert_eq!(flaky["readyToUse"], true);
    assert!(flaky.get("error").is_none(), "{flaky}");
    assert!(flaky["creationTime"].is_string());
    let sticky = status("sticky");
    assert_eq!(sticky["readyToUse"], true);
    assert_eq!(sticky["error"]["message"], "stale");
    assert_eq!(status("big")["readyToUse"], true);
}

/// `after_serving`: the write is stored, the answer is replaced.
#[tokio::test(flavor = "multi_thread")]
async fn emu_faults_after_serving_store_the_write() {
    let emu = Emu::start().await;
    emu.inject(
        Fault::on("POST", "/persistentvolumeclaims")
            .status(500)
            .after_serving(),
    );
    let client = emu.client().await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client, "app");
    let pvc: PersistentVolumeClaim =
        serde_json::from_value(fixtures::pvc("app", "data", true)).unwrap();
    let err = pvcs.create(&PostParams::default(), &pvc).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 500));
    assert!(emu
        .get("v1", "persistentvolumeclaims", Some("app"), "data")
        .is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_faults_reach_the_client() {
    let (emu, client) = start().await;
    emu.create(fixtures::pvc("app", "data", true));
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client, "app");

    emu.inject(Fault::on("GET", "/persistentvolumeclaims/data").status(500));
    let e = api_error(pvcs.get("data").await);
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    assert!(pvcs.get("data").await.is_ok(), "the fault is consumed");

    emu.inject(Fault::on("GET", "/persistentvolumeclaims/data").drop_connection());
    match pvcs.get("data").await {
        Err(kube::Error::Api(s)) => panic!("a dropped connection is no API error: {s:?}"),
        Err(_) => {}
        Ok(_) => panic!("a dropped connection must fail"),
    }
    assert_eq!(emu.requests().last().unwrap().code, 0);

    // kube retries 429 by itself; the 2nd matching request only fails, and the delay applies.
    emu.clear_requests();
    emu.inject(
        Fault::on("GET", "/persistentvolumeclaims")
            .nth(2)
            .status(429),
    );
    pvcs.get("data").await.unwrap();
    pvcs.get("data").await.unwrap();
    let codes: Vec<u16> = emu.requests().iter().map(|r| r.code).collect();
    assert_eq!(codes, [200, 429, 200]);
    emu.inject(
        Fault::on_regex("*", "^/api/v1/namespaces/app/persistentvolumeclaims$")
            .times(2)
            .delay(Duration::from_millis(150)),
    );
    let t = std::time::Instant::now();
    pvcs.list(&ListParams::default()).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    emu.clear_faults();
    emu.inject(Fault::on("PATCH", "/").always().status(409).retry_after(1));
    let e = api_error(
        pvcs.patch("data", &PatchParams::default(), &Patch::Merge(json!({})))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_records_unknown_requests_as_unexpected() {
    let (emu, client) = start().await;
    let unknown = http::Request::get("/apis/apps/v1/namespaces/app/controllerrevisions")
        .body(vec![])
        .unwrap();
    let e = api_error(client.request_text(unknown).await);
    assert_eq!(e.code, 404);
    assert!(
        e.message
            .contains("GET /apis/apps/v1/namespaces/app/controllerrevisions"),
        "{}",
        e.message
    );
    let watch = http::Request::get("/api/v1/namespaces/app/pods?watch=true")
        .body(vec![])
        .unwrap();
    assert_eq!(api_error(client.request_text(watch).await).code, 501);
    let unexpected = emu.take_unexpected();
    assert_eq!(unexpected.len(), 2);
    assert_eq!(
        unexpected[0].path,
        "/apis/apps/v1/namespaces/app/controllerrevisions"
    );
    assert!(
        unexpected[1].to_string().contains("watch=true"),
        "{}",
        unexpected[1]
    );
    emu.assert_no_unexpected();

    let third = http::Request::get("/version").body(vec![]).unwrap();
    let _ = client.request_text(third).await;
    let caught =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| emu.assert_no_unexpected()));
    assert!(caught.is_err(), "assert_no_unexpected panics");
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_kubeconfig_file_works_for_a_fresh_client() {
    let emu = Emu::start().await;
    emu.create(fixtures::namespace("app"));
    emu.create(fixtures::deployment(
        "app",
        "web",
        &[("app", "web")],
        &[("tier", "In", &["front"])],
    ));
    emu.create(fixtures::statefulset("app", "db", &[("app", "db")], &[]));
    let dir = tempfile::tempdir().unwrap();
    let path = emu.write_kubeconfig(dir.path()).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "default");
    let client = kube::Client::try_from(config).unwrap();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "app");
    let web = deployments.get("web").await.unwrap();
    assert_eq!(
        web.spec.unwrap().selector.match_expressions.unwrap()[0]
            .values
            .as_deref(),
        Some(&["front".to_string()][..])
    );
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), "app");
    assert_eq!(
        sets.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    assert!(namespaces.get("app").await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn emu_serves_ten_thousand_snapshots_in_pages() {
    let (emu, client) = start().await;
    for i in 0..10_000 {
        let mut vs = fixtures::volume_snapshot(
            &format!("ns-{}", i % 10),
            &format!("snap-{i:05}"),
            "data",
            &[("parity", if i % 2 == 0 { "even" } else { "odd" })],
        );
        vs["status"] = json!({"readyToUse": true});
        emu.create(vs);
    }
    let all: Api<DynamicObject> = Api::all_with(
        client,
        &snapshot_resource("VolumeSnapshot", "volumesnapshots"),
    );
    let (mut seen, mut token) = (0, None::<String>);
    loop {
        let mut lp = ListParams::default().labels("parity=even").limit(500);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = all.list(&lp).await.unwrap();
        seen += page.items.len();
        token = page.metadata.continue_;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, 5_000);
    assert_eq!(emu.count(Verb::List, "volumesnapshots"), 10);
}
