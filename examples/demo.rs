//! `make demo`: a backup, its verification and a restore, on a machine without Kubernetes.
//!
//! A local sandbox, not a cluster: it starts a throwaway PostgreSQL in a temporary directory and
//! the Kubernetes API emulation from `tests/emu` (real HTTP, exec over WebSocket, a simulated
//! snapshot controller that keeps a copy of the PVC's directory, a kubelet that runs helper
//! pods' exec here), seeds a namespace `demo` with a Bound PVC `data` and a Deployment
//! `app-base` whose pod "runs" PostgreSQL with the PVC mounted, then runs the real `backup-ns`
//! binary against it: `create` (the dump, the snapshot, its labels), `verify latest` (the dump
//! loaded into a scratch server from the snapshot), an accident (most orders deleted), and
//! `restore dump latest` (the orders back). Against a real cluster, run the same binary with
//! your KUBECONFIG (see the README).

#[path = "../tests/emu/mod.rs"]
#[allow(dead_code)]
mod emu;
#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use emu::{fixtures, Emu, ExecEnv};
use support::Postgres;

fn binary() -> PathBuf {
    // target/<profile>/examples/demo → target/<profile>/backup-ns
    let exe = std::env::current_exe().expect("own path");
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("backup-ns"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "build the binary first: cargo build --bin backup-ns ({} missing)",
        bin.display()
    );
    bin
}

fn step(text: &str) {
    println!("\n\x1b[1m==> {text}\x1b[0m");
}

#[tokio::main]
async fn main() -> ExitCode {
    let bin = binary();

    step("Starting a throwaway PostgreSQL 15 in a temporary directory");
    let pg = Postgres::start();
    pg.createdb("shop");
    pg.psql_in(
        "shop",
        "CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric);
         INSERT INTO orders SELECT g, 'customer ' || g, g * 1.5 FROM generate_series(1, 1000) g;",
    );
    println!(
        "PostgreSQL on 127.0.0.1:{} with database shop (1000 orders)",
        pg.port
    );

    step("Starting the local Kubernetes API emulation");
    let emu = Emu::builder()
        .snapshot_ready_after(Duration::from_millis(800))
        .start()
        .await;
    let work = tempfile::tempdir().expect("temp dir");
    let volume = work.path().join("pvc-data");
    std::fs::create_dir_all(&volume).expect("volume dir");
    let kubeconfig = emu.write_kubeconfig(work.path()).expect("kubeconfig");
    emu.create(fixtures::namespace("demo"));
    emu.create(fixtures::storage_class("emu-csi", "Immediate", true));
    emu.create(fixtures::pvc("demo", "data", true));
    emu.create(fixtures::volume_snapshot_class(
        "csi-hostpath-snapclass",
        "hostpath.csi.k8s.io",
        "Delete",
        true,
    ));
    emu.create(fixtures::deployment(
        "demo",
        "app-base",
        &[("app", "shop")],
        &[],
    ));
    let env: Vec<(String, String)> = pg.env();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut pod = fixtures::pod(
        "demo",
        "app-base-7d4f9",
        &[("app", "shop")],
        &[("postgres", &env_refs)],
        "Running",
        true,
        false,
    );
    // The pod mounts PVC data where the dump goes, as a database pod mounts its data volume.
    pod["spec"]["volumes"] =
        serde_json::json!([{ "name": "data", "persistentVolumeClaim": { "claimName": "data" } }]);
    pod["spec"]["containers"][0]["volumeMounts"] =
        serde_json::json!([{ "name": "data", "mountPath": volume.display().to_string() }]);
    emu.create(pod);
    emu.set_pvc_dir("demo", "data", &volume);
    let tools = format!(
        "{}:/usr/local/bin:/usr/bin:/bin",
        Postgres::bin_dir().display()
    );
    emu.set_pod_exec(
        "demo",
        "app-base-7d4f9",
        ExecEnv {
            cwd: Some(volume.clone()),
            path: Some(tools.clone()),
            ..Default::default()
        },
    );
    // Helper pods (restore, verify) run the same tools.
    emu.set_kubelet_exec(ExecEnv {
        path: Some(tools),
        ..Default::default()
    });
    println!("API at {} (kubeconfig {})", emu.url(), kubeconfig.display());
    println!("namespace demo: pvc/data (Bound), deployment/app-base → pod app-base-7d4f9 (container postgres)");

    step("backup-ns create (logs on stderr, the result on stdout; -o json for machines)");
    let dump = volume.join("dump.sql.gz");
    let port = pg.port.to_string();
    let backup_ns = |args: &[&str]| {
        Command::new(&bin)
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env("BAK_NAMESPACE", "demo")
            .status()
            .expect("run backup-ns")
    };
    let status = Command::new(&bin)
        .arg("create")
        .env("KUBECONFIG", &kubeconfig)
        .env("BAK_NAMESPACE", "demo")
        .env("BAK_PVC_NAME", "data")
        .env("BAK_DB_POSTGRES", "true")
        .env("BAK_DB_POSTGRES_EXEC_RESOURCE", "deployment/app-base")
        .env("BAK_DB_POSTGRES_PORT", &port)
        .env("BAK_DB_POSTGRES_DB", "shop")
        .env("BAK_DB_POSTGRES_DUMP_FILE", &dump)
        .env("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly")
        .env("BAK_LABEL_VS_TYPE", "adhoc")
        .status()
        .expect("run backup-ns");
    if !status.success() {
        return ExitCode::from(status.code().unwrap_or(1) as u8);
    }

    step("What the cluster holds now");
    for vs in emu.list("volumesnapshots", Some("demo")) {
        println!(
            "volumesnapshot/{}  readyToUse={}  content={}",
            vs["metadata"]["name"].as_str().unwrap_or("?"),
            vs["status"]["readyToUse"],
            vs["status"]["boundVolumeSnapshotContentName"]
                .as_str()
                .unwrap_or("-")
        );
        for (k, v) in vs["metadata"]["labels"].as_object().into_iter().flatten() {
            println!("  {k}={}", v.as_str().unwrap_or_default());
        }
    }
    match std::fs::metadata(&dump) {
        Ok(m) => println!(
            "dump in the pod's volume: {} ({} bytes)",
            dump.display(),
            m.len()
        ),
        Err(_) => println!("no dump file at {}", dump.display()),
    }

    step("backup-ns verify latest --pvc data --expect 'SELECT count(*) FROM orders=1000'");
    println!("(a temporary PVC from the snapshot, a helper pod from the database's image, a scratch server)");
    let verified = backup_ns(&[
        "verify",
        "latest",
        "--pvc",
        "data",
        "--expect",
        "SELECT count(*) FROM orders=1000",
    ]);
    for vs in emu.list("volumesnapshots", Some("demo")) {
        for (k, v) in vs["metadata"]["labels"].as_object().into_iter().flatten() {
            if k.starts_with("backup-ns.sh/verif") {
                println!(
                    "volumesnapshot/{}: {k}={}",
                    vs["metadata"]["name"].as_str().unwrap_or("?"),
                    v.as_str().unwrap_or_default()
                );
            }
        }
    }
    if !verified.success() {
        return ExitCode::from(verified.code().unwrap_or(1) as u8);
    }

    step("An accident: DELETE FROM orders WHERE id > 10");
    pg.psql_in("shop", "DELETE FROM orders WHERE id > 10");
    println!(
        "orders now: {}",
        pg.psql_in("shop", "SELECT count(*) FROM orders").trim()
    );

    step("backup-ns restore dump latest --pvc data --yes");
    println!("(the dump in the snapshot, checked, then loaded in one transaction into the live database)");
    let restored = backup_ns(&["restore", "dump", "latest", "--pvc", "data", "--yes"]);
    println!(
        "orders now: {}",
        pg.psql_in("shop", "SELECT count(*) FROM orders").trim()
    );
    // The helper pod terminates (a short grace period), then its PVC goes.
    let scratch = || {
        ["pods", "persistentvolumeclaims"]
            .iter()
            .flat_map(|kind| emu.list(kind, Some("demo")))
            .filter(|o| o["metadata"]["labels"]["backup-ns.sh/scratch"].is_string())
            .count()
    };
    for _ in 0..50 {
        if scratch() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "helper pods and temporary PVCs left in namespace demo: {}",
        scratch()
    );
    emu.assert_no_unexpected();
    let code = restored.code().unwrap_or(1);
    println!("\nbackup-ns exited with {code}");
    ExitCode::from(code as u8)
}
