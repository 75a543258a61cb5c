//! End-to-end: after a backup of each test target through its installed CronJob, `backup-ns
//! status -A -o json` lists every test PVC as fresh (`#[ignore]`d; `hack/e2e.sh` runs it, or
//! `cargo test --test it e2e_status -- --ignored` with `KUBECONFIG` set).
//!
//! The targets are those of `e2e_flows.rs` (same variables and defaults): `E2E_PG_NAMESPACE` /
//! `E2E_PG_CRONJOB`, `E2E_MYSQL_NAMESPACE` / `E2E_MYSQL_CRONJOB`, `E2E_VOLUME_NAMESPACE` /
//! `E2E_VOLUME_CRONJOB`, each backing up PVC `E2E_PVC`. The backups are made by this test
//! (`backup-ns adhoc --from-cronjob … --wait`): the other e2e tests delete theirs. Everything it
//! created (Jobs, snapshots with their contents) is deleted at the end, also when it fails.

use std::panic::AssertUnwindSafe;
use std::process::Command;

use backup_ns::labels;
use backup_ns::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{json, Value};

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn kubeconfig() -> String {
    std::env::var("KUBECONFIG").expect("e2e tests need KUBECONFIG pointing at a real cluster")
}

/// Runs the real binary with only `PATH` and `KUBECONFIG`: exit code, stdout as JSON.
fn backup_ns(args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_backup-ns"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KUBECONFIG", kubeconfig())
        .output()
        .expect("run backup-ns");
    eprintln!(
        "backup-ns {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let result = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out.stdout).into_owned()));
    (out.status.code().unwrap_or(-1), result)
}

/// The Jobs the test started, by namespace.
type Started = std::sync::Mutex<Vec<(String, String)>>;

/// Deletes an adhoc Job and the snapshots its pods made (contents switched to `Delete` first:
/// the dev cluster's class is `Retain`).
async fn cleanup(client: &kube::Client, ns: &str, job: &str) {
    let _ = Api::<Job>::namespaced(client.clone(), ns)
        .delete(job, &DeleteParams::background())
        .await;
    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), ns);
    let selector = format!("{}=adhoc", labels::TYPE);
    let Ok(list) = snapshots
        .list(&ListParams::default().labels(&selector))
        .await
    else {
        return;
    };
    let prefix = format!("{job}-");
    for vs in list.items.into_iter().filter(|vs| {
        vs.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::POD))
            .is_some_and(|p| p.starts_with(&prefix))
    }) {
        if let Some(content) = vs
            .status
            .as_ref()
            .and_then(|s| s.bound_volume_snapshot_content_name.clone())
        {
            let patch = json!({"spec": {"deletionPolicy": "Delete"}});
            let _ = Api::<VolumeSnapshotContent>::all(client.clone())
                .patch(&content, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
        }
        let name = vs.metadata.name.unwrap_or_default();
        let _ = snapshots.delete(&name, &DeleteParams::default()).await;
    }
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG)"]
async fn e2e_status_lists_the_freshly_backed_up_test_pvcs_as_fresh() {
    let client = kube::Client::try_default()
        .await
        .expect("client from KUBECONFIG");
    let targets = [
        (
            var("E2E_PG_NAMESPACE", "backup-ns-postgres"),
            var("E2E_PG_CRONJOB", "backup-ns-db"),
        ),
        (
            var("E2E_MYSQL_NAMESPACE", "backup-ns-mysql"),
            var("E2E_MYSQL_CRONJOB", "backup-ns-db"),
        ),
        (
            var("E2E_VOLUME_NAMESPACE", "backup-ns-volume"),
            var("E2E_VOLUME_CRONJOB", "backup-ns-volume"),
        ),
    ];
    let pvc = var("E2E_PVC", "data");
    let started: Started = Started::default();
    let body = async {
        let mut times: Vec<DateTime<Utc>> = Vec::new();
        for (ns, cronjob) in &targets {
            times.push(Utc::now());
            let (code, report) = backup_ns(&[
                "adhoc",
                "--from-cronjob",
                cronjob,
                "-n",
                ns,
                "--wait",
                "--timeout",
                "10m",
                "-o",
                "json",
            ]);
            if let Some(job) = report["job"].as_str() {
                started.lock().unwrap().push((ns.clone(), job.to_owned()));
            }
            assert_eq!(
                (code, &report["state"]),
                (0, &json!("succeeded")),
                "{report}"
            );
        }

        let (code, rows) = backup_ns(&["status", "-A", "-o", "json"]);
        let rows = rows
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {rows}"));
        // The exit status is 1 exactly when some row of the cluster alerts.
        let alerting = rows
            .iter()
            .any(|r| r["status"] == "stale" || r["status"] == "failed");
        assert_eq!(code, i32::from(alerting), "{rows:#?}");
        for ((ns, _), backed_up_at) in targets.iter().zip(&times) {
            let row = rows
                .iter()
                .find(|r| r["namespace"] == ns.as_str() && r["pvc"] == pvc.as_str())
                .unwrap_or_else(|| panic!("no status row for {ns}/{pvc}: {rows:#?}"));
            assert_eq!(row["status"], "ok", "{row:#}");
            assert_eq!(row["stale"], false, "{row:#}");
            assert_eq!(row["pvcExists"], true, "{row:#}");
            let newest: DateTime<Utc> = row["newestReadyTime"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("no newest ready time: {row:#}"));
            assert!(
                newest >= *backed_up_at - chrono::Duration::seconds(1),
                "the newest ready backup is this run's: {row:#}"
            );
            assert!(row["ready"].as_u64() >= Some(1), "{row:#}");
            // Once `create` records its attempts on the PVC, the record says it succeeded.
            if !row["lastOutcome"].is_null() {
                assert_eq!(row["lastOutcome"], "succeeded", "{row:#}");
            }
        }
    };
    let outcome = AssertUnwindSafe(body).catch_unwind().await;
    let jobs = started.lock().unwrap().clone();
    for (ns, job) in jobs {
        cleanup(&client, &ns, &job).await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
