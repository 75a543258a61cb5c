//! `restore dump`, `download SNAPSHOT` and `verify` against a real cluster (`#[ignore]`d;
//! `hack/e2e.sh` runs them, or `cargo test --test it e2e_snapshot -- --ignored` with
//! `KUBECONFIG`). They use the PostgreSQL namespace of tests/it/e2e.rs (`E2E_PG_NAMESPACE`,
//! `deployment/postgres`, PVC `data`) and the volume-only one (`E2E_VOLUME_NAMESPACE`): a
//! backup is made with `create`, then read back through a temporary PVC and a helper pod —
//! real provisioning from a snapshot, a real kubelet, the image's real binaries. Each test
//! deletes its snapshot (content switched to `Delete` first) and checks that no helper pod or
//! temporary PVC is left behind.

use std::panic::AssertUnwindSafe;
use std::process::{Command, Stdio};

use backup_ns::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use futures::FutureExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::Value;

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// `backup-ns ARGS -o json` in `ns` with `envs`; exit code and result.
fn backup_ns(args: &[&str], ns: &str, envs: &[(&str, &str)]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_backup-ns"))
        .args(args)
        .args(["-o", "json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "KUBECONFIG",
            std::env::var("KUBECONFIG").expect("e2e tests need KUBECONFIG"),
        )
        .env("BAK_NAMESPACE", ns)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run backup-ns");
    eprintln!(
        "backup-ns {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let result = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), result)
}

const PG: &[(&str, &str)] = &[
    ("BAK_DB_POSTGRES", "true"),
    ("BAK_DB_POSTGRES_EXEC_RESOURCE", "deployment/postgres"),
];

/// Deletes the snapshot and its content (the dev cluster's class retains).
async fn cleanup(client: &kube::Client, ns: &str, name: &str) {
    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), ns);
    if let Ok(Some(vs)) = snapshots.get_opt(name).await {
        if let Some(content) = vs.status.and_then(|s| s.bound_volume_snapshot_content_name) {
            let _ = Api::<VolumeSnapshotContent>::all(client.clone())
                .patch(
                    &content,
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({"spec": {"deletionPolicy": "Delete"}})),
                )
                .await;
        }
    }
    let _ = snapshots.delete(name, &DeleteParams::default()).await;
}

/// Helper pods and temporary PVCs still in `ns` (terminating ones count until they are gone).
async fn scratch_left(client: &kube::Client, ns: &str) -> Vec<String> {
    let lp = ListParams::default().labels("backup-ns.sh/scratch");
    let mut left = Vec::new();
    for _ in 0..60 {
        left.clear();
        let pods = Api::<Pod>::namespaced(client.clone(), ns)
            .list(&lp)
            .await
            .expect("list pods");
        let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
            .list(&lp)
            .await
            .expect("list pvcs");
        left.extend(pods.items.into_iter().filter_map(|p| p.metadata.name));
        left.extend(pvcs.items.into_iter().filter_map(|p| p.metadata.name));
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    left
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG) with hack/kind-up.sh's namespaces"]
async fn e2e_postgres_backup_verifies_downloads_and_restores() {
    let client = kube::Client::try_default()
        .await
        .expect("client from KUBECONFIG");
    let ns = var("E2E_PG_NAMESPACE", "backup-ns-postgres");
    let (code, created) = backup_ns(&["create"], &ns, PG);
    assert_eq!(code, 0, "{created}");
    let name = created["snapshot"]
        .as_str()
        .expect("the snapshot's name")
        .to_owned();
    let outcome = AssertUnwindSafe(async {
        // verify: a scratch server from the database's image loads the dump.
        let (code, v) = backup_ns(&["verify", &name, "--expect", "SELECT 1=1"], &ns, &[]);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["outcome"], "verified", "{v}");
        let vs = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns)
            .get(&name)
            .await
            .expect("the snapshot");
        assert!(
            vs.metadata
                .labels
                .unwrap_or_default()
                .contains_key("backup-ns.sh/verified"),
            "labelled verified"
        );

        // download: the dump in the snapshot, verified, with its sha256.
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("dump.sql.gz");
        let file_s = file.display().to_string();
        let (code, d) = backup_ns(&["download", &name, "-f", &file_s], &ns, &[]);
        assert_eq!(code, 0, "{d}");
        let bytes = std::fs::metadata(&file).expect("downloaded").len();
        assert_eq!(d["bytes"].as_u64(), Some(bytes), "{d}");

        // restore dump: a dry run creates nothing; then next to the live database.
        let (code, dry) = backup_ns(&["restore", "dump", &name, "--dry-run"], &ns, &[]);
        assert_eq!(code, 0, "{dry}");
        assert_eq!(dry["manifests"][1]["kind"], "Pod", "{dry}");
        let (code, r) = backup_ns(
            &[
                "restore",
                "dump",
                &name,
                "--into-database",
                "backup_ns_e2e_restored",
                "--yes",
            ],
            &ns,
            &[],
        );
        assert_eq!(code, 0, "{r}");
        assert_eq!(r["restored"], true, "{r}");
        assert_eq!(r["sha256"], d["sha256"], "the same dump: {r}");
        // Without --yes and without a terminal: refused.
        let (code, _) = backup_ns(&["restore", "dump", &name], &ns, &[]);
        assert_eq!(code, 2);
    })
    .catch_unwind()
    .await;
    let left = scratch_left(&client, &ns).await;
    cleanup(&client, &ns, &name).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert!(left.is_empty(), "helper objects left: {left:?}");
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG) with hack/kind-up.sh's namespaces"]
async fn e2e_volume_only_snapshot_verifies_its_files() {
    let client = kube::Client::try_default()
        .await
        .expect("client from KUBECONFIG");
    let ns = var("E2E_VOLUME_NAMESPACE", "backup-ns-volume");
    let (code, created) = backup_ns(&["create"], &ns, &[("BAK_DB_SKIP", "true")]);
    assert_eq!(code, 0, "{created}");
    let name = created["snapshot"]
        .as_str()
        .expect("the snapshot's name")
        .to_owned();
    let outcome = AssertUnwindSafe(async {
        // The volume restores and mounts; a file that is not there fails the check.
        let (code, v) = backup_ns(&["verify", &name], &ns, &[]);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["kind"], "volume", "{v}");
        let (code, v) = backup_ns(
            &["verify", &name, "--expect-file", "no/such/file"],
            &ns,
            &[],
        );
        assert_eq!(code, 1, "{v}");
        assert_eq!(v["outcome"], "failed", "{v}");
    })
    .catch_unwind()
    .await;
    let left = scratch_left(&client, &ns).await;
    cleanup(&client, &ns, &name).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert!(left.is_empty(), "helper objects left: {left:?}");
}
