//! `backup-ns rebind` (alias `rebindVsc`) and `list --orphans` as the real binary against the
//! API emulation. The orphan is made the way clusters make them: a snapshot of a bound PVC cut
//! by the emulated controller with a `Retain` class, its labels copied to the content by
//! `sync-labels`, then the snapshot deleted. The rebound snapshot is bound and made ready by the
//! emulated controller's pre-provisioned binding, as the real one does.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::emu::{fixtures, Emu, Verb};
use crate::harness::{Cluster, Run};

const V1: &str = "snapshot.storage.k8s.io/v1";
const DRIVER: &str = "hostpath.csi.k8s.io";

async fn cluster() -> Cluster {
    let emu = Emu::builder()
        .snapshot_ready_after(Duration::from_millis(20))
        .start()
        .await;
    emu.create(fixtures::volume_snapshot_class(
        "csi-retain",
        DRIVER,
        "Retain",
        true,
    ));
    Cluster::new(emu)
}

fn run(c: &Cluster, args: &[&str]) -> Run {
    c.run(args, &[])
}

fn vs(c: &Cluster, ns: &str, name: &str) -> Option<Value> {
    c.emu.get(V1, "volumesnapshots", Some(ns), name)
}

fn vsc(c: &Cluster, name: &str) -> Option<Value> {
    c.emu.get(V1, "volumesnapshotcontents", None, name)
}

fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const LABELS: &[(&str, &str)] = &[
    ("backup-ns.sh/pvc", "data"),
    ("backup-ns.sh/type", "cronjob"),
    ("backup-ns.sh/retain", "daily_weekly_monthly"),
    ("backup-ns.sh/daily", "2025-01-08"),
    ("backup-ns.sh/weekly", "w02"),
    ("backup-ns.sh/monthly", "2025-01"),
    ("backup-ns.sh/delete-after", "2025-01-09"),
];

/// A snapshot of `shop/data` cut by the controller (content `Retain`), labels synced to its
/// content, then deleted: returns the orphaned content's name.
fn orphan(c: &Cluster, name: &str) -> String {
    if c.emu
        .get("v1", "persistentvolumeclaims", Some("shop"), "data")
        .is_none()
    {
        c.emu.create(fixtures::pvc("shop", "data", true));
    }
    let mut snapshot = fixtures::volume_snapshot("shop", name, "data", LABELS);
    snapshot["metadata"]["annotations"] =
        json!({"backup-ns.sh/env-config": "{\"BAK_DB_SKIP\":\"true\"}"});
    c.emu.create(snapshot);
    let content = wait_for("the snapshot to be ready", || {
        let s = vs(c, "shop", name)?;
        (s["status"]["readyToUse"] == true)
            .then(|| {
                s["status"]["boundVolumeSnapshotContentName"]
                    .as_str()
                    .map(str::to_owned)
            })
            .flatten()
    });
    let r = run(c, &["sync-labels", "-n", "shop"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        vsc(c, &content).unwrap()["metadata"]["labels"]["backup-ns.sh/daily"],
        "2025-01-08"
    );
    c.emu
        .delete(V1, "volumesnapshots", Some("shop"), name)
        .unwrap();
    assert!(vs(c, "shop", name).is_none());
    assert!(vsc(c, &content).is_some(), "a Retain content stays");
    content
}

fn counts(c: &Cluster) -> (usize, usize) {
    (
        c.emu.list("volumesnapshotcontents", None).len(),
        c.emu.list("volumesnapshots", None).len(),
    )
}

fn writes(c: &Cluster) -> usize {
    [Verb::Create, Verb::Patch, Verb::Update, Verb::Delete]
        .into_iter()
        .map(|v| c.emu.count(v, "volumesnapshotcontents") + c.emu.count(v, "volumesnapshots"))
        .sum()
}

#[tokio::test]
async fn an_orphan_rebinds_in_another_namespace_with_its_labels_and_becomes_ready() {
    let c = cluster().await;
    let old = orphan(&c, "data-1");
    let old_handle = vsc(&c, &old).unwrap()["status"]["snapshotHandle"].clone();

    let r = run(&c, &["list", "--orphans", "-o", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let rows = r.json();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["content"], old.as_str());
    assert_eq!(rows[0]["snapshot"], "shop/data-1");
    assert_eq!(rows[0]["orphaned"], "missing");
    assert_eq!(rows[0]["daily"], "2025-01-08");
    assert_eq!(rows[0]["deletionPolicy"], "Retain");
    assert_eq!(rows[0]["driver"], DRIVER);
    assert_eq!(rows[0]["handle"], old_handle);
    assert_eq!(rows[0]["rebindable"], true);
    let text = run(&c, &["list", "--orphans"]);
    assert!(
        text.stdout.starts_with("CONTENT") && text.stdout.contains(&old),
        "{text:?}"
    );

    c.emu.clear_requests();
    let r = run(
        &c,
        &["rebind", &old, "-n", "restore", "--yes", "-o", "json"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.json();
    assert_eq!(out["created"], true);
    let new_content = out["volumeSnapshotContent"]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    // Exactly two objects created, nothing existing changed.
    assert_eq!(c.emu.count(Verb::Create, "volumesnapshotcontents"), 1);
    assert_eq!(c.emu.count(Verb::Create, "volumesnapshots"), 1);
    assert_eq!(
        c.emu.count(Verb::Patch, "volumesnapshotcontents")
            + c.emu.count(Verb::Delete, "volumesnapshotcontents"),
        0
    );

    let ready = wait_for("the rebound snapshot to be ready", || {
        vs(&c, "restore", "data-1").filter(|s| s["status"]["readyToUse"] == true)
    });
    assert_eq!(
        ready["status"]["boundVolumeSnapshotContentName"],
        new_content.as_str()
    );
    assert_eq!(ready["status"]["restoreSize"], "1Gi");
    assert!(ready["status"].get("error").is_none(), "{ready}");
    let labels = &ready["metadata"]["labels"];
    for (k, v) in LABELS.iter().filter(|(k, _)| !k.ends_with("delete-after")) {
        assert_eq!(labels[*k], *v, "{k}: {ready}");
    }
    assert!(
        labels.get("backup-ns.sh/delete-after").is_none(),
        "the old deletion mark must not come back: {ready}"
    );
    assert_eq!(labels["backup-ns.sh/pin"], "rebind");
    assert_eq!(
        ready["metadata"]["annotations"]["backup-ns.sh/env-config"],
        "{\"BAK_DB_SKIP\":\"true\"}"
    );

    let content = vsc(&c, &new_content).unwrap();
    assert_eq!(content["spec"]["source"]["snapshotHandle"], old_handle);
    assert_eq!(content["spec"]["driver"], DRIVER);
    assert_eq!(content["spec"]["deletionPolicy"], "Retain");
    assert_eq!(
        content["spec"]["volumeSnapshotRef"]["uid"], ready["metadata"]["uid"],
        "the controller bound the content to the new snapshot"
    );
    // The old content is untouched.
    assert_eq!(
        vsc(&c, &old).unwrap()["spec"]["volumeSnapshotRef"]["name"],
        "data-1"
    );

    // After: the old content is still an orphan, now showing the content sharing its handle;
    // the new one is not an orphan.
    let rows = run(&c, &["list", "--orphans", "-o", "json"]).json();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["content"], old.as_str());
    assert_eq!(rows[0]["sharesHandleWith"], json!([new_content]));
    // And `list` in the namespace shows the rebound snapshot, kept (pinned).
    let listed = run(&c, &["list", "-n", "restore", "-o", "json"]).json();
    assert_eq!(listed[0]["name"], "data-1");
    assert_eq!(listed[0]["pinned"], true);

    // A second rebind of the same content is refused: its handle is in use.
    let before = counts(&c);
    let r = run(
        &c,
        &["rebind", &old, "-n", "restore", "--name", "again", "--yes"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&new_content), "{r:?}");
    assert_eq!(counts(&c), before);
}

#[tokio::test]
async fn dry_run_prints_the_objects_and_writes_nothing_and_the_alias_works() {
    let c = cluster().await;
    let old = orphan(&c, "data-1");
    let before = counts(&c);
    c.emu.clear_requests();
    let r = run(
        &c,
        &[
            "rebindVsc",
            &old,
            "-n",
            "restore",
            "--name",
            "recovered",
            "--dry-run",
            "-o",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.json();
    assert_eq!(out["dryRun"], true);
    assert_eq!(out["created"], false);
    assert_eq!(out["volumeSnapshot"]["metadata"]["name"], "recovered");
    assert_eq!(out["volumeSnapshot"]["metadata"]["namespace"], "restore");
    assert_eq!(
        out["volumeSnapshot"]["spec"]["source"]["volumeSnapshotContentName"],
        out["volumeSnapshotContent"]["metadata"]["name"]
    );
    assert_eq!(writes(&c), 0);
    assert_eq!(counts(&c), before);

    let r = run(&c, &["rebind", &old, "-n", "restore", "--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("would create volumesnapshotcontent"),
        "{r:?}"
    );
    assert!(r.stdout.contains("\"snapshotHandle\""), "{r:?}");
    assert_eq!(writes(&c), 0);

    // The alias really rebinds, too.
    let r = run(&c, &["rebindVsc", &old, "-n", "restore", "--yes"]);
    assert_eq!(r.code, 0, "{r:?}");
    wait_for("the rebound snapshot to be ready", || {
        vs(&c, "restore", "data-1").filter(|s| s["status"]["readyToUse"] == true)
    });
}

#[tokio::test]
async fn without_a_terminal_yes_is_required_and_bad_flags_are_usage_errors() {
    let c = cluster().await;
    let old = orphan(&c, "data-1");
    let before = counts(&c);
    c.emu.clear_requests();
    let r = run(&c, &["rebind", &old, "-n", "restore"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--yes"), "{r:?}");
    let r = run(
        &c,
        &[
            "rebind",
            &old,
            "-n",
            "restore",
            "--yes",
            "--deletion-policy",
            "delete",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("BAK_REBIND_DELETION_POLICY (--deletion-policy)"),
        "{r:?}"
    );
    let r = run(
        &c,
        &[
            "rebind", &old, "-n", "restore", "--yes", "--name", "Bad_Name",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("BAK_REBIND_NAME (--name)"), "{r:?}");
    let r = run(&c, &["list", "--orphans", "-o", "prometheus"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(writes(&c), 0);
    assert_eq!(counts(&c), before);
}

/// A content seeded as a cluster would return it, its snapshot gone.
fn seeded_orphan(c: &Cluster, name: &str, policy: &str, handle: Option<&str>) {
    let mut content = json!({
        "apiVersion": V1,
        "kind": "VolumeSnapshotContent",
        "metadata": { "name": name, "labels": { "backup-ns.sh/pvc": "data" } },
        "spec": {
            "deletionPolicy": policy,
            "driver": DRIVER,
            "source": { "volumeHandle": "pvc-data" },
            "volumeSnapshotRef": {
                "apiVersion": V1, "kind": "VolumeSnapshot",
                "namespace": "gone", "name": name, "uid": format!("uid-{name}"),
            },
        },
        "status": { "readyToUse": false },
    });
    if let Some(h) = handle {
        content["status"] = json!({ "snapshotHandle": h, "readyToUse": true, "restoreSize": 1024 });
    }
    c.emu.create(content);
}

#[tokio::test]
async fn refusals_change_nothing() {
    let c = cluster().await;
    // Bound to a snapshot that still exists: not an orphan.
    c.emu.create(fixtures::pvc("shop", "data", true));
    c.emu
        .create(fixtures::volume_snapshot("shop", "live", "data", LABELS));
    let live_content = wait_for("the live snapshot to be bound", || {
        vs(&c, "shop", "live")?["status"]["boundVolumeSnapshotContentName"]
            .as_str()
            .map(str::to_owned)
    });
    seeded_orphan(&c, "delete-policy", "Delete", Some("h-delete"));
    seeded_orphan(&c, "no-handle", "Retain", None);
    seeded_orphan(&c, "good", "Retain", Some("h-good"));
    c.emu
        .create(fixtures::volume_snapshot("restore", "taken", "data", &[]));

    let rows = run(&c, &["list", "--orphans", "-o", "json"]).json();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["content"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["delete-policy", "good", "no-handle"], "{rows}");
    let rows = run(&c, &["list", "--orphans", "-n", "shop", "-o", "json"]).json();
    assert_eq!(rows, json!([]));

    let before = counts(&c);
    c.emu.clear_requests();
    for (args, needle) in [
        (
            vec!["rebind", live_content.as_str(), "-n", "restore", "--yes"],
            "not an orphan",
        ),
        (
            vec!["rebind", "delete-policy", "-n", "restore", "--yes"],
            "deletionPolicy Delete",
        ),
        (
            vec!["rebind", "no-handle", "-n", "restore", "--yes"],
            "no status.snapshotHandle",
        ),
        (
            vec![
                "rebind", "good", "-n", "restore", "--name", "taken", "--yes",
            ],
            "volumesnapshot restore/taken already exists",
        ),
        (
            vec!["rebind", "no-such-content", "-n", "restore", "--yes"],
            "volumesnapshotcontent no-such-content not found",
        ),
    ] {
        let r = run(&c, &args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains(needle), "{args:?}: {r:?}");
    }
    assert_eq!(writes(&c), 0);
    assert_eq!(counts(&c), before);
}

#[tokio::test]
async fn a_failed_snapshot_create_undoes_the_new_content() {
    let c = cluster().await;
    seeded_orphan(&c, "good", "Retain", Some("h-good"));
    let before = counts(&c);
    // The name is free when checked, taken by the time the snapshot is created.
    c.emu
        .inject(crate::emu::Fault::on("POST", "/namespaces/restore/volumesnapshots").status(409));
    let r = run(&c, &["rebind", "good", "-n", "restore", "--yes"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("deleted again, nothing changed"), "{r:?}");
    assert_eq!(counts(&c), before);
}

#[tokio::test]
async fn deletion_policy_delete_is_set_once_the_snapshot_exists() {
    let c = cluster().await;
    seeded_orphan(&c, "good", "Retain", Some("h-good"));
    let r = run(
        &c,
        &[
            "rebind",
            "good",
            "-n",
            "restore",
            "--yes",
            "--deletion-policy",
            "Delete",
            "-o",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let name = r.json()["volumeSnapshotContent"]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(vsc(&c, &name).unwrap()["spec"]["deletionPolicy"], "Delete");
    let ready = wait_for("ready", || {
        vs(&c, "restore", "good").filter(|s| s["status"]["readyToUse"] == true)
    });
    assert_eq!(ready["status"]["restoreSize"], "1Ki");
    assert_eq!(vsc(&c, "good").unwrap()["spec"]["deletionPolicy"], "Retain");
}

/// The emulated controller binds a pre-provisioned snapshot like the real one: not to a
/// dynamically provisioned content (external-snapshotter#290), not to a content whose
/// `volumeSnapshotRef` names another snapshot, and only once a missing content appears.
#[tokio::test]
async fn the_emulated_controller_binds_pre_provisioned_snapshots_only_to_their_content() {
    let c = cluster().await;
    let pre = |ns: &str, name: &str, content: &str| {
        json!({
            "apiVersion": V1, "kind": "VolumeSnapshot",
            "metadata": { "namespace": ns, "name": name },
            "spec": { "source": { "volumeSnapshotContentName": content } },
        })
    };
    let error_of = |ns: &str, name: &str| {
        wait_for("an error", || {
            vs(&c, ns, name)?["status"]["error"]["message"]
                .as_str()
                .map(str::to_owned)
        })
    };
    // Repointing a dynamically provisioned content does not make it bindable.
    let old = orphan(&c, "data-1");
    let mut repointed = vsc(&c, &old).unwrap();
    repointed["spec"]["volumeSnapshotRef"] = json!({"namespace": "restore", "name": "reuse"});
    c.emu.replace(repointed);
    c.emu.create(pre("restore", "reuse", &old));
    assert_eq!(
        error_of("restore", "reuse"),
        "VolumeSnapshotContent is not bound to the VolumeSnapshot correctly"
    );
    std::thread::sleep(Duration::from_millis(100));
    let s = vs(&c, "restore", "reuse").unwrap();
    assert!(
        s["status"]["boundVolumeSnapshotContentName"].is_null(),
        "{s}"
    );

    // Missing content: pending with the controller's error, bound once the content exists.
    c.emu.create(pre("restore", "later", "imported"));
    assert_eq!(
        error_of("restore", "later"),
        "VolumeSnapshotContent is missing"
    );
    let handle = vsc(&c, &old).unwrap()["status"]["snapshotHandle"].clone();
    let content = c
        .emu
        .try_create(json!({
            "apiVersion": V1, "kind": "VolumeSnapshotContent",
            "metadata": { "name": "imported" },
            "spec": {
                "deletionPolicy": "Retain", "driver": DRIVER,
                "source": { "snapshotHandle": handle },
                "volumeSnapshotRef": { "namespace": "restore", "name": "later" },
            },
        }))
        .unwrap();
    assert!(content.get("status").is_none());
    let ready = wait_for("bound and ready", || {
        vs(&c, "restore", "later").filter(|s| s["status"]["readyToUse"] == true)
    });
    assert_eq!(
        ready["status"]["boundVolumeSnapshotContentName"],
        "imported"
    );
    assert!(ready["status"].get("error").is_none(), "{ready}");
    assert_eq!(
        vsc(&c, "imported").unwrap()["spec"]["volumeSnapshotRef"]["uid"],
        ready["metadata"]["uid"]
    );
}
