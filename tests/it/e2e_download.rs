//! End-to-end: the one-off dump, `info`, `download --live`, and the original's `shell`,
//! `restore` and `downloadDump` against a real cluster
//! (`#[ignore]`d; `KUBECONFIG`), in the PostgreSQL namespace `hack/kind-up.sh` prepares
//! (`E2E_PG_NAMESPACE`, `deployment/postgres`, container `postgres`; see tests/it/e2e.rs).

use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// `backup-ns ARGS -o json` against the cluster's PostgreSQL target; exit code and result.
fn backup_ns(args: &[&str], ns: &str) -> (i32, Value) {
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
        .env("BAK_DB_POSTGRES", "true")
        .env("BAK_DB_POSTGRES_EXEC_RESOURCE", "deployment/postgres")
        .output()
        .expect("run backup-ns");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let result = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), result)
}

#[test]
#[ignore = "needs a cluster (KUBECONFIG)"]
fn e2e_download_live_takes_the_dump_postgres_dump_just_wrote() {
    let ns = var("E2E_PG_NAMESPACE", "backup-ns-postgres");
    let (code, dump) = backup_ns(&["postgres", "dump"], &ns);
    assert_eq!(code, 0, "{dump}");
    assert!(dump["bytes"].as_u64().unwrap_or(0) > 0, "{dump}");

    let (code, info) = backup_ns(&["postgres", "info"], &ns);
    assert_eq!(code, 0, "{info}");
    assert!(info["serverVersion"].as_str().is_some(), "{info}");
    assert_eq!(info["dumpBytes"], dump["bytes"], "{info}");

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("dump.sql.gz");
    let file_s = file.display().to_string();
    let (code, got) = backup_ns(&["download", "--live", "-f", &file_s], &ns);
    assert_eq!(code, 0, "{got}");
    let bytes = std::fs::read(&file).expect("the downloaded dump");
    assert_eq!(Some(bytes.len() as u64), dump["bytes"].as_u64(), "{got}");
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(got["sha256"], sha.as_str(), "{got}");
}

/// `backup-ns postgres shell` with `sql` piped in (no terminal: a plain exec); exit code and
/// stdout.
fn shell(ns: &str, sql: &str) -> (i32, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_backup-ns"))
        .args(["postgres", "shell"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "KUBECONFIG",
            std::env::var("KUBECONFIG").expect("e2e tests need KUBECONFIG"),
        )
        .env("BAK_NAMESPACE", ns)
        .env("BAK_DB_POSTGRES_EXEC_RESOURCE", "deployment/postgres")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run backup-ns");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(sql.as_bytes())
        .expect("write the SQL");
    let out = child.wait_with_output().expect("wait");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
#[ignore = "needs a cluster (KUBECONFIG)"]
fn e2e_postgres_shell_restore_and_download_dump_as_the_original_had_them() {
    let ns = var("E2E_PG_NAMESPACE", "backup-ns-postgres");
    let (code, out) = shell(&ns, "SELECT 'e2e-' || 40 + 2;\n");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("e2e-42"), "{out}");

    let (code, dump) = backup_ns(&["postgres", "dump"], &ns);
    assert_eq!(code, 0, "{dump}");
    let copy = "backup_ns_e2e_live_restore";
    let (code, restored) = backup_ns(
        &["postgres", "restore", "--into-database", copy, "--yes"],
        &ns,
    );
    let (_, dropped) = shell(&ns, &format!("DROP DATABASE IF EXISTS {copy};\n"));
    assert_eq!(code, 0, "{restored} {dropped}");
    assert_eq!(restored["restored"], true, "{restored}");
    assert_eq!(restored["bytes"], dump["bytes"], "{restored}");

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("dump.sql.gz").display().to_string();
    let (code, got) = backup_ns(&["postgres", "downloadDump", "-f", &file], &ns);
    assert_eq!(code, 0, "{got}");
    assert_eq!(got["bytes"], dump["bytes"], "{got}");
}
