//! RBAC end to end (`#[ignore]`d; run with `KUBECONFIG` after `make e2e` installed the chart):
//! `backup-ns create` works as the chart's ServiceAccount, impersonated, and that account is
//! refused anything outside its namespace and anything its Role does not grant.
//!
//! - `E2E_PG_NAMESPACE` (default `backup-ns-postgres`) holds the namespace release;
//! - `E2E_SERVICE_ACCOUNT` (default `backup-ns`): its ServiceAccount (release name `backup-ns`).

use std::process::Command;

use backup_ns::snapshot::VolumeSnapshot;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn subject(ns: &str) -> String {
    format!(
        "system:serviceaccount:{ns}:{}",
        var("E2E_SERVICE_ACCOUNT", "backup-ns")
    )
}

/// The KUBECONFIG with every user impersonating `who` (kubeconfig `as:`).
fn impersonating(who: &str) -> Kubeconfig {
    let path = std::env::var("KUBECONFIG").expect("e2e tests need KUBECONFIG");
    let mut config = Kubeconfig::read_from(path).expect("read KUBECONFIG");
    for user in &mut config.auth_infos {
        if let Some(auth) = user.auth_info.as_mut() {
            auth.impersonate = Some(who.to_string());
        }
    }
    config
}

async fn client_as(who: &str) -> kube::Client {
    let config =
        kube::Config::from_custom_kubeconfig(impersonating(who), &KubeConfigOptions::default())
            .await
            .expect("config");
    kube::Client::try_from(config).expect("client")
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG) with the chart installed"]
async fn e2e_rbac_create_works_as_the_charts_service_account() {
    let ns = var("E2E_PG_NAMESPACE", "backup-ns-postgres");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        serde_yaml::to_string(&impersonating(&subject(&ns))).unwrap(),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_backup-ns"))
        .args(["create", "-o", "json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KUBECONFIG", &kubeconfig)
        .env("BAK_NAMESPACE", &ns)
        .env("BAK_DB_POSTGRES", "true")
        .env("BAK_DB_POSTGRES_EXEC_RESOURCE", "deployment/postgres")
        .env("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly")
        .output()
        .expect("run backup-ns");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(0), "{result}");
    let name = result["snapshot"]
        .as_str()
        .expect("snapshot name")
        .to_string();
    // Clean up with the caller's own rights: the ServiceAccount may not delete snapshots.
    let admin = kube::Client::try_default().await.unwrap();
    Api::<VolumeSnapshot>::namespaced(admin, &ns)
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete the snapshot");
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG) with the chart installed"]
async fn e2e_rbac_service_account_is_refused_outside_its_role() {
    let ns = var("E2E_PG_NAMESPACE", "backup-ns-postgres");
    let client = client_as(&subject(&ns)).await;

    // A write in another namespace.
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "backup-ns-rbac-probe"}
    }))
    .unwrap();
    let err = Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await
        .expect_err("a write outside its namespace must be refused");
    assert_eq!(status_code(&err), Some(403), "{err}");

    // Snapshots elsewhere, and deleting its own.
    let err = Api::<VolumeSnapshot>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect_err("snapshots of another namespace");
    assert_eq!(status_code(&err), Some(403), "{err}");
    let err = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns)
        .delete("backup-ns-rbac-probe", &DeleteParams::default())
        .await
        .expect_err("delete is the pruner's");
    assert_eq!(status_code(&err), Some(403), "{err}");

    // Secrets of its own namespace: not in the Role.
    let err = Api::<Secret>::namespaced(client, &ns)
        .list(&ListParams::default())
        .await
        .expect_err("secrets");
    assert_eq!(status_code(&err), Some(403), "{err}");
}
