//! `backup-ns restore pvc` against a real cluster (`#[ignore]`d; `hack/e2e.sh` runs it, or
//! `cargo test --test it e2e_restore -- --ignored` with `KUBECONFIG` set). It uses the volume-only
//! namespace of `tests/it/e2e_flows.rs` (`E2E_VOLUME_NAMESPACE`, default `backup-ns-volume`) and
//! its PVC `E2E_PVC` (`data`): a snapshot of that PVC, labelled like a backup, is restored with
//! `latest` into a new PVC, which must become Bound — or, for a `WaitForFirstConsumer` class,
//! be reported as such. Restoring onto the new PVC's name again is refused. Everything it made
//! is deleted, also when it fails (the content switched to `Delete` first: the dev cluster's
//! snapshot class retains).

use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::time::{Duration, Instant};

use backup_ns::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use futures::FutureExt;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn restore(args: &[&str]) -> (i32, String) {
    let kubeconfig =
        std::env::var("KUBECONFIG").expect("e2e tests need KUBECONFIG pointing at a real cluster");
    let out = Command::new(env!("CARGO_BIN_EXE_backup-ns"))
        .arg("restore")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("run backup-ns");
    eprintln!(
        "backup-ns restore {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG) with hack/e2e.sh's releases"]
async fn e2e_restore_pvc_latest_into_a_new_pvc() {
    let client = kube::Client::try_default()
        .await
        .expect("client from KUBECONFIG");
    let ns = var("E2E_VOLUME_NAMESPACE", "backup-ns-volume");
    let pvc = var("E2E_PVC", "data");
    let suffix: String = (0..6)
        .map(|_| (b'a' + rand::random_range(0..26u8)) as char)
        .collect();
    let vs_name = format!("{pvc}-e2e-restore-{suffix}");
    let target = format!("e2e-restored-{suffix}");
    let snapshots: Api<VolumeSnapshot> = Api::namespaced(client.clone(), &ns);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);

    let body = async {
        let vs: VolumeSnapshot = serde_json::from_value(json!({
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "metadata": { "name": vs_name, "labels": {
                "backup-ns.sh/pvc": pvc, "e2e.backup-ns.sh/test": "restore",
            } },
            "spec": { "source": { "persistentVolumeClaimName": pvc } },
        }))
        .unwrap();
        snapshots
            .create(&PostParams::default(), &vs)
            .await
            .expect("create the snapshot");
        let start = Instant::now();
        loop {
            let vs = snapshots.get(&vs_name).await.expect("read the snapshot");
            if vs.status.and_then(|s| s.ready_to_use) == Some(true) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "snapshot never ready"
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }

        let (code, stdout) = restore(&[
            "pvc",
            "latest",
            "--pvc",
            &pvc,
            "--to",
            &target,
            "-n",
            &ns,
            "--wait",
            "--timeout",
            "3m",
            "-o",
            "json",
        ]);
        assert_eq!(code, 0, "{stdout}");
        let out: Value = serde_json::from_str(&stdout).expect("one JSON document");
        assert_eq!(out["snapshot"], vs_name.as_str());
        let created = pvcs.get(&target).await.expect("the new PVC");
        let spec = created.spec.clone().unwrap();
        assert_eq!(spec.data_source.unwrap().name, vs_name);
        let phase = created.status.and_then(|s| s.phase).unwrap_or_default();
        if out["waitForFirstConsumer"] == true {
            assert_eq!(phase, "Pending");
        } else {
            assert_eq!(
                (out["phase"].as_str(), phase.as_str()),
                (Some("Bound"), "Bound")
            );
        }
        // The same name again: refused, exit 1.
        let (code, _) = restore(&["pvc", &vs_name, "--to", &target, "-n", &ns]);
        assert_eq!(code, 1);
    };
    let cleanup = async {
        let _ = pvcs.delete(&target, &DeleteParams::default()).await;
        if let Ok(vs) = snapshots.get(&vs_name).await {
            if let Some(content) = vs.status.and_then(|s| s.bound_volume_snapshot_content_name) {
                let contents: Api<VolumeSnapshotContent> = Api::all(client.clone());
                let patch = json!({ "spec": { "deletionPolicy": "Delete" } });
                let _ = contents
                    .patch(&content, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
            let _ = snapshots.delete(&vs_name, &DeleteParams::default()).await;
        }
    };
    let outcome = AssertUnwindSafe(body).catch_unwind().await;
    cleanup.await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
