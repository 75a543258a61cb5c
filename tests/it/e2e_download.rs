//! End-to-end: the one-off dump, `info` and `download --live` against a real cluster
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
