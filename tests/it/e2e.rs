//! End-to-end tests against a real cluster named by `KUBECONFIG` (`#[ignore]`d: run with
//! `cargo test --test it e2e -- --ignored`).
//!
//! They run the real binary unchanged, exactly as the emulation tests do. The cluster needs the
//! external-snapshotter CRDs, a default VolumeSnapshotClass, and test namespaces (the kind set-up
//! creates them; override with the variables below):
//! - `E2E_PG_NAMESPACE` (default `backup-ns-postgres`): `deployment/postgres`, container
//!   `postgres` with `POSTGRES_USER/PASSWORD/DB` set, data on PVC `data`;
//! - `E2E_MYSQL_NAMESPACE` (default `backup-ns-mysql`): `deployment/mysql`, container `mysql`
//!   with `MYSQL_ROOT_PASSWORD`/`MYSQL_DATABASE`, data on PVC `data`.
//!
//! Every snapshot a test creates is deleted at its end, with its content.

use std::process::Command;

use backup_ns::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::Value;

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn kubeconfig() -> String {
    std::env::var("KUBECONFIG").expect("e2e tests need KUBECONFIG pointing at a real cluster")
}

/// Runs `backup-ns create -o json` with the given variables; returns exit code and the result.
fn create(envs: &[(&str, &str)]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_backup-ns"))
        .args(["create", "-o", "json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KUBECONFIG", kubeconfig())
        .envs(envs.iter().copied())
        .output()
        .expect("run backup-ns");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let result = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), result)
}

async fn snapshot(ns: &str, name: &str) -> Option<VolumeSnapshot> {
    let client = kube::Client::try_default()
        .await
        .expect("client from KUBECONFIG");
    Api::<VolumeSnapshot>::namespaced(client, ns)
        .get_opt(name)
        .await
        .expect("get volumesnapshot")
}

/// Deletes the snapshot and its content: the dev cluster's class is `Retain`, so the content is
/// switched to `Delete` first (else it and the stored snapshot would stay behind).
async fn cleanup(ns: &str, name: &str) {
    let client = kube::Client::try_default()
        .await
        .expect("client from KUBECONFIG");
    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), ns);
    if let Ok(Some(vs)) = snapshots.get_opt(name).await {
        if let Some(content) = vs.status.and_then(|s| s.bound_volume_snapshot_content_name) {
            let _ = Api::<VolumeSnapshotContent>::all(client)
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

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG)"]
async fn e2e_postgres_create_makes_a_ready_labelled_snapshot() {
    let ns = var("E2E_PG_NAMESPACE", "backup-ns-postgres");
    let (code, result) = create(&[
        ("BAK_NAMESPACE", &ns),
        ("BAK_DB_POSTGRES", "true"),
        ("BAK_DB_POSTGRES_EXEC_RESOURCE", "deployment/postgres"),
        ("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly"),
    ]);
    let name = result["snapshot"].as_str().unwrap_or_default().to_string();
    assert_eq!(code, 0, "{result}");
    assert!(
        result["dumps"][0]["bytes"].as_u64().unwrap_or(0) > 0,
        "{result}"
    );
    let vs = snapshot(&ns, &name).await.expect("snapshot exists");
    assert_eq!(vs.status.as_ref().and_then(|s| s.ready_to_use), Some(true));
    assert_eq!(
        vs.labels().get("backup-ns.sh/pvc").map(String::as_str),
        Some("data")
    );
    assert_eq!(
        vs.labels().get("backup-ns.sh/retain").map(String::as_str),
        Some("daily_weekly_monthly")
    );
    cleanup(&ns, &name).await;
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG)"]
async fn e2e_mysql_create_makes_a_ready_snapshot() {
    let ns = var("E2E_MYSQL_NAMESPACE", "backup-ns-mysql");
    let (code, result) = create(&[
        ("BAK_NAMESPACE", &ns),
        ("BAK_DB_MYSQL", "true"),
        ("BAK_DB_MYSQL_EXEC_RESOURCE", "deployment/mysql"),
    ]);
    let name = result["snapshot"].as_str().unwrap_or_default().to_string();
    assert_eq!(code, 0, "{result}");
    let vs = snapshot(&ns, &name).await.expect("snapshot exists");
    assert_eq!(vs.status.as_ref().and_then(|s| s.ready_to_use), Some(true));
    assert!(vs.labels().contains_key("backup-ns.sh/delete-after"));
    cleanup(&ns, &name).await;
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG)"]
async fn e2e_volume_only_and_dry_run() {
    let ns = var("E2E_PG_NAMESPACE", "backup-ns-postgres");
    let (code, result) = create(&[
        ("BAK_NAMESPACE", &ns),
        ("BAK_DB_SKIP", "true"),
        ("BAK_DRY_RUN", "true"),
    ]);
    assert_eq!(code, 0, "{result}");
    let name = result["snapshot"].as_str().unwrap_or_default().to_string();
    assert!(
        snapshot(&ns, &name).await.is_none(),
        "a dry run must not create {name}"
    );

    let (code, result) = create(&[("BAK_NAMESPACE", &ns), ("BAK_DB_SKIP", "true")]);
    let name = result["snapshot"].as_str().unwrap_or_default().to_string();
    assert_eq!(code, 0, "{result}");
    assert!(snapshot(&ns, &name).await.is_some());
    cleanup(&ns, &name).await;
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG)"]
async fn e2e_missing_pvc_fails_closed() {
    let ns = var("E2E_PG_NAMESPACE", "backup-ns-postgres");
    let (code, result) = create(&[
        ("BAK_NAMESPACE", &ns),
        ("BAK_DB_SKIP", "true"),
        ("BAK_PVC_NAME", "no-such-pvc"),
    ]);
    assert_eq!(code, 1, "{result}");
    let name = result["snapshot"].as_str().map(str::to_string);
    assert!(
        name.is_none(),
        "no snapshot may be named when the PVC is missing: {result}"
    );
}
