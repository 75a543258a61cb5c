//! Exec as real clusters do it, which the default emulation is kinder than: API servers before
//! 1.30 that speak only the v4 exec protocol (closing stdin ends the session), exec running as
//! root while the database's own user restores the dump, and tool output that is not UTF-8.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use backup_ns::exec::{self, ExecRequest};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::emu::{fixtures, Emu, ExecEnv, ExecProtocols};
use crate::support::{self, Postgres};

const NS: &str = "shop";
const POD: &str = "db-0";

/// The emulation with PVC `data` and a StatefulSet `db` whose Ready pod `db-0` (container
/// `postgres`, PostgreSQL's env) runs its commands here, as the emulation's own user, in a dump
/// directory the unprivileged user may enter (like a PVC's root).
struct World {
    emu: Emu,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl World {
    async fn new(protocols: ExecProtocols, env: &[(String, String)]) -> World {
        let emu = Emu::builder().exec_protocols(protocols).start().await;
        let dir = support::unprivileged_temp_dir("bns-exec-");
        let kubeconfig = emu.write_kubeconfig(dir.path()).expect("kubeconfig");
        emu.create(fixtures::pvc(NS, "data", true));
        emu.create(fixtures::statefulset(NS, "db", &[("app", "db")], &[]));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        emu.create(fixtures::pod(
            NS,
            POD,
            &[("app", "db")],
            &[("postgres", &env)],
            "Running",
            true,
            false,
        ));
        emu.set_pod_exec(
            NS,
            POD,
            ExecEnv {
                cwd: Some(dir.path().into()),
                path: Some(format!(
                    "{}:/usr/local/bin:/usr/bin:/bin",
                    Postgres::bin_dir().display()
                )),
                ..Default::default()
            },
        );
        World {
            emu,
            dir,
            kubeconfig,
        }
    }

    fn dump_file(&self) -> PathBuf {
        self.dir.path().join("dump.sql.gz")
    }

    async fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.emu.client().await, NS)
    }

    /// `backup-ns create` for the PostgreSQL database `db` of the shared server.
    fn create(&self, pg: &Postgres, db: &str) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_backup-ns"))
            .args(["create", "-o", "json"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "info")
            .env("BAK_NAMESPACE", NS)
            .env("BAK_DB_POSTGRES", "true")
            .env("BAK_DB_POSTGRES_EXEC_RESOURCE", "statefulset/db")
            .env("BAK_DB_POSTGRES_DUMP_FILE", self.dump_file())
            .env("BAK_DB_POSTGRES_PORT", pg.port.to_string())
            .env("BAK_DB_POSTGRES_DB", db)
            .stdin(Stdio::null())
            .output()
            .expect("run backup-ns");
        let report = format!(
            "exit {:?}\nstdout: {}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), report)
    }

    fn exec_scripts(&self) -> Vec<String> {
        self.emu
            .requests()
            .into_iter()
            .filter_map(|r| r.exec)
            .map(|e| e.argv.get(3).cloned().unwrap_or_default())
            .collect()
    }
}

fn pg_database(pg: &Postgres, name: &str) -> String {
    pg.createdb(name);
    pg.psql_in(
        name,
        "CREATE TABLE seed (id int PRIMARY KEY, name text); INSERT INTO seed VALUES (1, 'one'), (2, 'two');",
    );
    name.to_string()
}

/// `gzip -cd path` as the unprivileged user when we are root (as ourselves otherwise).
fn gunzip_as_another_user(path: &Path) -> Result<String, String> {
    let mut cmd = Command::new("gzip");
    cmd.arg("-cd").arg(path);
    if let Some((uid, gid)) = support::unprivileged() {
        cmd.uid(uid).gid(gid);
    }
    let out = cmd.output().map_err(|e| format!("run gzip: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// What the emulation must do to stand for a v1.29 API server: it accepts only v4, and a
/// client's stdin close (a WebSocket close on v4) ends the session before the exit status; the
/// command itself sees stdin EOF and runs on. With v5 the same exchange reports the status.
#[tokio::test(flavor = "multi_thread")]
async fn emu_v4_only_ends_the_session_when_the_client_closes_stdin() {
    for (protocols, status_arrives) in [
        (ExecProtocols::V5AndV4, true),
        (ExecProtocols::V4Only, false),
    ] {
        let w = World::new(protocols, &[]).await;
        let pods = w.pods().await;
        let ap = AttachParams::default()
            .container("postgres")
            .stdin(true)
            .stdout(true)
            .stderr(false);
        let script = "cat >/dev/null; sleep 0.3; echo done; echo ran > marker";
        let mut attached = pods.exec(POD, vec!["sh", "-c", script], &ap).await.unwrap();
        let mut stdin = attached.stdin().unwrap();
        let mut stdout = attached.stdout().unwrap();
        let status = attached.take_status().unwrap();
        stdin.shutdown().await.unwrap();
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out).await;
        let status = tokio::time::timeout(Duration::from_secs(10), status)
            .await
            .expect("the session ends");
        assert_eq!(
            status.is_some(),
            status_arrives,
            "{protocols:?}: {status:?}"
        );
        assert_eq!(out == "done\n", status_arrives, "{protocols:?}: {out:?}");
        let marker = w.dir.path().join("marker");
        assert!(
            support::wait_until(Duration::from_secs(10), || marker.exists()),
            "{protocols:?}: the command saw stdin EOF and ran to its end"
        );
        w.emu.assert_no_unexpected();
    }
}

/// On an API server before 1.30 (exec protocol v4 only), closing stdin after the password
/// closed the whole WebSocket, and every check script failed with "closed before the command
/// reported its exit status". Every script keeps stdin open now.
#[tokio::test(flavor = "multi_thread")]
async fn create_succeeds_against_an_exec_v4_only_api_server() {
    let pg = Postgres::shared();
    let w = World::new(ExecProtocols::V4Only, &pg.env()).await;
    let db = pg_database(pg, "exec_v4_only");
    let (code, report) = w.create(pg, &db);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        w.exec_scripts(),
        [
            "backup-ns-postgres-check",
            "backup-ns-space",
            "backup-ns-postgres-dump"
        ]
    );
    let sql = gunzip_as_another_user(&w.dump_file()).expect("read the dump");
    assert!(sql.contains("PostgreSQL database dump complete"), "{sql}");
    assert_eq!(w.emu.list("volumesnapshots", Some(NS)).len(), 1);
    w.emu.assert_no_unexpected();
}

/// Exec runs as the image's user (root in the official postgres image; the emulation runs as
/// the test's user, root in CI) and the restore runs as the database's own user (uid 70): the
/// dump must be readable by it, as the original's 0644 dump was. It used to be root's 0600, and
/// the restore failed with "gzip: /restore/dump.sql.gz: Permission denied".
#[tokio::test(flavor = "multi_thread")]
async fn a_dump_made_by_exec_as_root_is_readable_by_the_databases_own_user() {
    let pg = Postgres::shared();
    let w = World::new(ExecProtocols::default(), &pg.env()).await;
    let db = pg_database(pg, "exec_dump_mode");
    let (code, report) = w.create(pg, &db);
    assert_eq!(code, 0, "{report}");
    let meta = std::fs::metadata(w.dump_file()).expect("the dump exists");
    // SAFETY: getuid cannot fail.
    assert_eq!(
        meta.uid(),
        unsafe { libc::getuid() },
        "written by exec's user"
    );
    assert_eq!(format!("{:o}", meta.mode() & 0o777), "644");
    let sql = gunzip_as_another_user(&w.dump_file())
        .unwrap_or_else(|e| panic!("the database's user cannot read the dump: {e}"));
    assert!(
        sql.contains("INSERT INTO") || sql.contains("COPY public.seed"),
        "{sql}"
    );

    pg.createdb("exec_dump_mode_restored");
    pg.restore_gz("exec_dump_mode_restored", &w.dump_file());
    let q = "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM seed";
    assert_eq!(pg.psql_in("exec_dump_mode_restored", q), "1:one,2:two");
    w.emu.assert_no_unexpected();
}

/// A byte that is not UTF-8 on stderr (a LATIN1 table name in a pg_dump warning) used to fail
/// the read of stderr and with it a command that succeeded; stdout too is decoded lossily. The
/// exit status is kept either way.
#[tokio::test(flavor = "multi_thread")]
async fn output_that_is_not_utf8_keeps_the_exit_code_and_reads_lossily() {
    let w = World::new(ExecProtocols::default(), &[]).await;
    let pods = w.pods().await;
    let script = r#"printf 'pg_dump: warning: table "caf\351"\n' >&2; printf 'bytes=\377\n'; printf 'no newline \376' >&2; exit "$1""#;
    for code in [0, 3] {
        let out = exec::run(
            &pods,
            ExecRequest {
                pod: POD,
                container: "postgres",
                argv: ["sh", "-c", script, "latin1", &code.to_string()]
                    .map(String::from)
                    .into(),
                stdin: String::new(),
                hold_stdin: true,
                timeout: Duration::from_secs(30),
                what: "latin1",
            },
        )
        .await
        .unwrap_or_else(|e| panic!("exit {code}: {e}"));
        assert_eq!(out.exit_code, code);
        assert_eq!(
            out.stderr,
            "pg_dump: warning: table \"caf\u{fffd}\"\nno newline \u{fffd}\n"
        );
        assert_eq!(out.stdout, "bytes=\u{fffd}\n");
    }
    w.emu.assert_no_unexpected();
}
