//! `backup-ns rebind` against a real cluster (`#[ignore]`d; `KUBECONFIG`, run with
//! `cargo test --test it e2e_rebind -- --ignored`): a volume-only snapshot of PVC `E2E_PVC`
//! (`data`) in `E2E_PG_NAMESPACE` (`backup-ns-postgres`) with the class `E2E_RETAIN_CLASS`
//! (`csi-hostpath-snapclass`, `Retain` in the dev cluster; a `Delete` content is switched to
//! `Retain` first, as the README tells users), its labels synced to the content, the snapshot
//! deleted, the orphan listed and rebound under a new name in the same namespace, and the real
//! snapshot controller and CSI sidecar binding it and making it ready.
//!
//! Cleanup, also on failure: the old content is deleted first (it is `Retain`: only the API
//! object goes), then the new content is switched to `Delete` and its snapshot deleted, which
//! frees the stored snapshot once, through the one content still pointing at it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::time::{Duration, Instant};

use backup_ns::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use futures::FutureExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{json, Value};

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn backup_ns(args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_backup-ns"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "KUBECONFIG",
            std::env::var("KUBECONFIG").expect("e2e tests need KUBECONFIG"),
        )
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

async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn set_policy(contents: &Api<VolumeSnapshotContent>, name: &str, policy: &str) {
    let patch = Patch::Merge(json!({"spec": {"deletionPolicy": policy}}));
    let _ = contents.patch(name, &PatchParams::default(), &patch).await;
}

fn bound(vs: &VolumeSnapshot) -> Option<String> {
    vs.status
        .as_ref()
        .and_then(|s| s.bound_volume_snapshot_content_name.clone())
}

fn ready(vs: &VolumeSnapshot) -> bool {
    vs.status.as_ref().and_then(|s| s.ready_to_use) == Some(true)
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG)"]
async fn e2e_rebind_an_orphaned_retain_content_into_a_new_snapshot() {
    let ns = var("E2E_PG_NAMESPACE", "backup-ns-postgres");
    let pvc = var("E2E_PVC", "data");
    let class = var("E2E_RETAIN_CLASS", "csi-hostpath-snapclass");
    let client = kube::Client::try_default().await.expect("client");
    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
    let contents = Api::<VolumeSnapshotContent>::all(client.clone());

    let (code, result) = backup_ns(&[
        "create",
        "-o",
        "json",
        "-n",
        &ns,
        "--pvc",
        &pvc,
        "--db-skip",
        "--class",
        &class,
        "--retain",
        "daily_weekly_monthly",
    ]);
    assert_eq!(code, 0, "{result}");
    let original = result["snapshot"].as_str().unwrap_or_default().to_owned();
    let new_name = format!("{original}-rebound");
    let old_content = std::sync::Mutex::new(None::<String>);

    let body = async {
        let vs = snapshots.get(&original).await.expect("the new snapshot");
        assert!(ready(&vs));
        let content = bound(&vs).expect("bound");
        *old_content.lock().unwrap() = Some(content.clone());
        set_policy(&contents, &content, "Retain").await;
        let (code, r) = backup_ns(&["sync-labels", "-n", &ns]);
        assert_eq!(code, 0, "{r}");
        snapshots
            .delete(&original, &DeleteParams::default())
            .await
            .expect("delete the snapshot");
        wait_for("the snapshot to go", || async {
            snapshots
                .get_opt(&original)
                .await
                .ok()?
                .is_none()
                .then_some(())
        })
        .await;

        let (code, rows) = backup_ns(&["list", "--orphans", "-n", &ns, "-o", "json"]);
        assert_eq!(code, 0, "{rows}");
        let row = rows
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["content"] == content.as_str())
            .unwrap_or_else(|| panic!("{content} among the orphans: {rows}"))
            .clone();
        assert_eq!(row["snapshot"], format!("{ns}/{original}"));
        assert_eq!(row["pvc"], pvc.as_str());

        let (code, dry) = backup_ns(&[
            "rebind",
            &content,
            "-n",
            &ns,
            "--name",
            &new_name,
            "--dry-run",
            "-o",
            "json",
        ]);
        assert_eq!(code, 0, "{dry}");
        assert!(snapshots.get_opt(&new_name).await.unwrap().is_none());

        let (code, out) = backup_ns(&[
            "rebind", &content, "-n", &ns, "--name", &new_name, "--yes", "-o", "json",
        ]);
        assert_eq!(code, 0, "{out}");
        let rebound = wait_for("the rebound snapshot to be ready", || async {
            snapshots
                .get_opt(&new_name)
                .await
                .ok()
                .flatten()
                .filter(ready)
        })
        .await;
        assert_eq!(
            bound(&rebound).as_deref(),
            out["volumeSnapshotContent"]["metadata"]["name"].as_str()
        );
        assert_eq!(
            rebound.labels().get("backup-ns.sh/pvc").map(String::as_str),
            Some(pvc.as_str())
        );
        assert!(rebound.labels().contains_key("backup-ns.sh/pin"));
    };
    let cleanup = async {
        let old = old_content.lock().unwrap().clone();
        if let Some(old) = old {
            set_policy(&contents, &old, "Retain").await;
            let _ = contents.delete(&old, &DeleteParams::default()).await;
        }
        for name in [&new_name, &original] {
            if let Ok(Some(vs)) = snapshots.get_opt(name).await {
                if let Some(c) = bound(&vs) {
                    set_policy(&contents, &c, "Delete").await;
                }
                let _ = snapshots.delete(name, &DeleteParams::default()).await;
            }
        }
    };
    let outcome = AssertUnwindSafe(body).catch_unwind().await;
    cleanup.await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
