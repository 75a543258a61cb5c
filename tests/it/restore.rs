//! `backup-ns restore pvc` (and the original's `restore SNAPSHOT -p NEW_PVC`) as the real binary
//! against the API emulation, whose provisioner binds a PVC restored from a ready snapshot,
//! keeps it Pending for a `WaitForFirstConsumer` class and reports why it cannot provision one.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, PostParams};
use serde_json::{json, Value};

use crate::emu::{fixtures, Emu, Verb};
use crate::harness::{Cluster, Run};

const NS: &str = "shop";
const VS: &str = "data-2025-01-08-164308-dcdkes";

/// Class `emu-csi` (Immediate, default), PVC `data` (RWX, Block, 2Gi: not the original's
/// hard-coded RWO) and a ready snapshot `VS` of it with restoreSize 1Gi.
async fn cluster() -> Cluster {
    let emu = Emu::start().await;
    emu.create(fixtures::storage_class("emu-csi", "Immediate", true));
    let mut pvc = fixtures::pvc(NS, "data", true);
    pvc["spec"]["accessModes"] = json!(["ReadWriteMany"]);
    pvc["spec"]["volumeMode"] = json!("Block");
    pvc["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
    emu.create(pvc);
    snapshot(
        &emu,
        VS,
        "data",
        Utc::now() - chrono::Duration::hours(1),
        true,
    );
    Cluster::new(emu)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A backup-ns snapshot of `pvc` taken at `at`, ready or still being cut.
fn snapshot(emu: &Emu, name: &str, pvc: &str, at: DateTime<Utc>, ready: bool) {
    let mut vs = fixtures::volume_snapshot(NS, name, pvc, &[("backup-ns.sh/pvc", pvc)]);
    vs["metadata"]["creationTimestamp"] = json!(rfc3339(at));
    vs["status"] = if ready {
        json!({ "readyToUse": true, "creationTime": rfc3339(at), "restoreSize": "1Gi",
                "boundVolumeSnapshotContentName": format!("snapcontent-{name}") })
    } else {
        json!({ "readyToUse": false })
    };
    emu.create(vs);
}

fn run(c: &Cluster, args: &[&str]) -> Run {
    let mut all = vec!["restore"];
    all.extend_from_slice(args);
    c.run(&all, &[])
}

fn pvc(c: &Cluster, name: &str) -> Option<Value> {
    c.emu.get("v1", "persistentvolumeclaims", Some(NS), name)
}

fn pvc_creates(c: &Cluster) -> usize {
    c.emu.count(Verb::Create, "persistentvolumeclaims")
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_pvc_copies_the_source_pvc_and_waits_until_bound() {
    let c = cluster().await;
    let r = run(
        &c,
        &[
            "pvc", VS, "--to", "restored", "-n", NS, "--wait", "-o", "json",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.json();
    assert_eq!(out["phase"], "Bound", "{r:?}");
    assert_eq!(out["created"], true);
    assert_eq!(out["dryRun"], false);
    assert_eq!(out["snapshot"], VS);
    assert_eq!(out["snapshotPvc"], "data");
    assert_eq!(out["waitForFirstConsumer"], false);
    assert_eq!(out["pvc"]["name"], "restored");
    assert_eq!(out["pvc"]["copiedFrom"], "data");
    let p = pvc(&c, "restored").expect("the PVC was created");
    assert_eq!(
        p["spec"]["dataSource"],
        json!({"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": VS})
    );
    // Bug 11 of the original: RWO hard-coded, volumeMode dropped. And the source grew to 2Gi.
    assert_eq!(p["spec"]["accessModes"], json!(["ReadWriteMany"]));
    assert_eq!(p["spec"]["volumeMode"], "Block");
    assert_eq!(p["spec"]["storageClassName"], "emu-csi");
    assert_eq!(p["spec"]["resources"]["requests"]["storage"], "2Gi");
    assert_eq!(p["metadata"]["labels"]["backup-ns.sh/restored-from"], VS);
    assert_eq!(p["status"]["phase"], "Bound");
    assert_eq!(pvc_creates(&c), 1);
    c.emu.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_pvc_into_a_wait_for_first_consumer_class_says_so_and_stops_waiting() {
    let c = cluster().await;
    c.emu.create(fixtures::storage_class(
        "local",
        "WaitForFirstConsumer",
        false,
    ));
    let r = run(
        &c,
        &[
            "pvc",
            VS,
            "--to",
            "restored",
            "-n",
            NS,
            "--storage-class",
            "local",
            "--wait",
            "--timeout",
            "30s",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("stays Pending until a pod uses it")
            && r.stdout.contains("WaitForFirstConsumer"),
        "{r:?}"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let p = pvc(&c, "restored").unwrap();
    assert_eq!(p["spec"]["storageClassName"], "local");
    assert_eq!(p["status"]["phase"], "Pending");
    // It did not poll until the timeout: one class read, no PVC polling.
    assert_eq!(c.emu.count(Verb::Get, "storageclasses"), 1);
    c.emu.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_pvc_refuses_an_existing_pvc_and_changes_nothing() {
    let c = cluster().await;
    c.emu.create(fixtures::pvc(NS, "restored", true));
    let before = pvc(&c, "restored").unwrap();
    let r = run(&c, &["pvc", VS, "--to", "restored", "-n", NS, "--wait"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("persistentvolumeclaim shop/restored already exists")
            && r.stderr.contains("nothing changed"),
        "{r:?}"
    );
    assert_eq!(pvc_creates(&c), 0);
    assert_eq!(pvc(&c, "restored").unwrap(), before);
    c.emu.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_pvc_dry_run_prints_the_pvc_and_writes_nothing() {
    let c = cluster().await;
    let r = run(&c, &["pvc", VS, "--to", "restored", "-n", NS, "--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("would create persistentvolumeclaim shop/restored"),
        "{r:?}"
    );
    assert!(r.stdout.contains("\"dataSource\""), "{r:?}");
    let r = run(
        &c,
        &[
            "pvc",
            VS,
            "--to",
            "restored",
            "-n",
            NS,
            "--dry-run",
            "--wait",
            "-o",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.json();
    assert_eq!(
        (out["dryRun"].clone(), out["created"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(out["manifest"]["spec"]["dataSource"]["name"], VS);
    assert_eq!(out["manifest"]["kind"], "PersistentVolumeClaim");
    let writes = c
        .emu
        .requests()
        .iter()
        .filter(|r| !matches!(r.verb, Verb::Get | Verb::List))
        .count();
    assert_eq!(writes, 0);
    assert!(pvc(&c, "restored").is_none());
    c.emu.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_pvc_latest_and_before_choose_the_newest_ready_snapshot_of_that_pvc() {
    let c = cluster().await;
    let now = Utc::now();
    let h = chrono::Duration::hours;
    snapshot(&c.emu, "data-older", "data", now - h(30), true);
    snapshot(&c.emu, "data-pending", "data", now - h(0), false);
    snapshot(&c.emu, "uploads-newest", "uploads", now, true);
    // VS (1 h ago) is the newest ready one of `data`.
    let r = run(
        &c,
        &[
            "pvc", "latest", "--pvc", "data", "--to", "r1", "-n", NS, "-o", "json",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["snapshot"], VS);
    assert_eq!(pvc(&c, "r1").unwrap()["spec"]["dataSource"]["name"], VS);

    let before = rfc3339(now - h(2));
    let r = run(
        &c,
        &[
            "pvc", "--before", &before, "--pvc", "data", "--to", "r2", "-n", NS,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        pvc(&c, "r2").unwrap()["spec"]["dataSource"]["name"],
        "data-older"
    );

    let long_ago = rfc3339(now - h(48));
    let r = run(
        &c,
        &[
            "pvc", "--before", &long_ago, "--pvc", "data", "--to", "r3", "-n", NS,
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("no ready snapshot of PVC data taken before"),
        "{r:?}"
    );
    assert!(pvc(&c, "r3").is_none());
    c.emu.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_pvc_refuses_a_snapshot_that_is_not_ready() {
    let c = cluster().await;
    snapshot(&c.emu, "data-pending", "data", Utc::now(), false);
    let r = run(&c, &["pvc", "data-pending", "--to", "r", "-n", NS]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("is not ready yet"), "{r:?}");
    let r = run(&c, &["pvc", "missing", "--to", "r", "-n", NS]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("volumesnapshot shop/missing not found"),
        "{r:?}"
    );
    assert_eq!(pvc_creates(&c), 0);
    c.emu.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_with_the_originals_syntax_does_the_same() {
    let c = cluster().await;
    let r = run(
        &c,
        &[VS, "-p", "restored", "-n", NS, "--wait", "-o", "json"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["phase"], "Bound");
    let p = pvc(&c, "restored").unwrap();
    assert_eq!(p["spec"]["dataSource"]["name"], VS);
    assert_eq!(p["spec"]["accessModes"], json!(["ReadWriteMany"]));
    let r = run(&c, &[VS, "--pvc", "restored2", "-n", NS]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(pvc(&c, "restored2").is_some());
    c.emu.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_bad_arguments_exit_2_naming_the_input_before_any_request() {
    let c = cluster().await;
    let cases: &[(&[&str], &str)] = &[
        (
            &["pvc", VS, "--before", "2025-01-08", "--to", "r"],
            "not both",
        ),
        (&["pvc", "latest", "--to", "r"], "BAK_PVC_NAME (--pvc)"),
        (
            &["pvc", "--before", "2025-01-08", "--to", "r"],
            "BAK_PVC_NAME (--pvc)",
        ),
        (
            &["pvc", VS, "--to", "r", "--size", "lots"],
            "BAK_RESTORE_SIZE (--size)=\"lots\"",
        ),
        (
            &["pvc", "--before", "yesterday", "--pvc", "data", "--to", "r"],
            "BAK_RESTORE_BEFORE (--before)=\"yesterday\"",
        ),
        (&["pvc", VS], "BAK_RESTORE_TO (--to)"),
        (
            &["pvc", VS, "--to", "Bad_Name"],
            "BAK_RESTORE_TO (--to)=\"Bad_Name\"",
        ),
        (
            &["pvc", VS, "--to", "r", "--access-mode", "RWO"],
            "BAK_RESTORE_ACCESS_MODE",
        ),
        (
            &["pvc", VS, "--to", "r", "--timeout", "0"],
            "BAK_RESTORE_TIMEOUT (--timeout)",
        ),
        (&["pvc", "--to", "r"], "SNAPSHOT"),
        (&[VS], "-p (--pvc, the new PVC)"),
        (&["latest", "-p", "r"], "restore pvc latest"),
        (&[], "restore pvc SNAPSHOT --to NEW_PVC"),
        (&["pvc", VS, "--to", "r", "-o", "yaml"], "BAK_OUTPUT (-o)"),
    ];
    for (args, expected) in cases {
        let r = run(&c, args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(expected), "{args:?}: {expected}: {r:?}");
    }
    assert!(c.emu.requests().is_empty(), "{:?}", c.emu.requests());
    // --size below the snapshot's restoreSize is known only after reading it: still exit 2 and
    // nothing created.
    let r = run(&c, &["pvc", VS, "--to", "r", "-n", NS, "--size", "512Mi"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("smaller than the snapshot's restoreSize 1Gi"),
        "{r:?}"
    );
    assert_eq!(pvc_creates(&c), 0);
    c.emu.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_pvc_wait_times_out_with_the_provisioners_reason() {
    let c = cluster().await;
    let r = run(
        &c,
        &[
            "pvc",
            VS,
            "--to",
            "restored",
            "-n",
            NS,
            "--storage-class",
            "no-such-class",
            "--wait",
            "--timeout",
            "2s",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("is still Pending after 2s")
            && r.stderr.contains("ProvisioningFailed")
            && r.stderr.contains("\"no-such-class\" not found"),
        "{r:?}"
    );
    assert!(
        pvc(&c, "restored").is_some(),
        "the PVC stays for inspection"
    );
    c.emu.assert_no_unexpected();
}

/// The emulation, not the binary: a PVC from a missing or not-ready snapshot stays Pending with
/// the provisioner's warning, and is provisioned once the snapshot is ready (it retries).
#[tokio::test(flavor = "multi_thread")]
async fn emu_provisioner_waits_for_the_snapshot_like_a_real_one() {
    let c = cluster().await;
    let client = c.emu.client().await;
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client, NS);
    let pvc_from = |name: &str, snap: &str| -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": { "name": name, "namespace": NS },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": { "requests": { "storage": "1Gi" } },
                "dataSource": { "apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": snap },
            },
        }))
        .unwrap()
    };
    let created = api
        .create(&PostParams::default(), &pvc_from("later", "comes-later"))
        .await
        .unwrap();
    // The API server's defaults: the default class, Filesystem, Pending.
    let spec = created.spec.unwrap();
    assert_eq!(spec.storage_class_name.as_deref(), Some("emu-csi"));
    assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let p = pvc(&c, "later").unwrap();
    assert_eq!(p["status"]["phase"], "Pending");
    let events = c.emu.list("events", Some(NS));
    let warning = events
        .iter()
        .find(|e| e["involvedObject"]["name"] == "later")
        .expect("a ProvisioningFailed event");
    assert_eq!(warning["type"], "Warning");
    assert_eq!(warning["reason"], "ProvisioningFailed");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("\"comes-later\" not found"),
        "{warning}"
    );
    snapshot(&c.emu, "comes-later", "data", Utc::now(), true);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(pvc(&c, "later").unwrap()["status"]["phase"], "Bound");

    // Without accessModes: refused like the API server refuses it.
    let mut bad = pvc_from("bad", VS);
    bad.spec.as_mut().unwrap().access_modes = None;
    let e = api.create(&PostParams::default(), &bad).await.unwrap_err();
    assert!(
        e.to_string().contains("at least 1 access mode is required"),
        "{e}"
    );
    c.emu.assert_no_unexpected();
}
