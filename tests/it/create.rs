//! `backup-ns create` end to end at the binary level: the real binary, the API emulation over
//! HTTP/WebSocket, and real PostgreSQL/MariaDB servers whose dump scripts run as the "container".

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::emu::{fixtures, Emu, ExecEnv, Verb};
use crate::support::Mariadb;
use crate::support::Postgres;

pub(crate) const NS: &str = "shop";

/// One test's world: the emulation with a namespace holding PVC `data` and a Deployment
/// `app-base` whose pod runs its commands on this machine, plus a dump directory.
pub(crate) struct World {
    pub(crate) emu: Emu,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) kubeconfig: PathBuf,
}

impl World {
    pub(crate) async fn new() -> World {
        Self::with(Emu::start().await)
    }

    pub(crate) fn with(emu: Emu) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = emu.write_kubeconfig(dir.path()).expect("kubeconfig");
        emu.create(fixtures::pvc(NS, "data", true));
        World {
            emu,
            dir,
            kubeconfig,
        }
    }

    pub(crate) fn dump_dir(&self) -> PathBuf {
        let d = self.dir.path().join("volume");
        fs::create_dir_all(&d).expect("dump dir");
        d
    }

    pub(crate) fn dump_file(&self, name: &str) -> PathBuf {
        self.dump_dir().join(name)
    }

    /// A Deployment `app-base` (selector with labels *and* expressions) and its Ready pod with
    /// container `container`, whose exec runs here with `env` and PostgreSQL's tools on PATH.
    pub(crate) fn app(&self, container: &str, env: &[(String, String)]) {
        self.emu.create(fixtures::deployment(
            NS,
            "app-base",
            &[("app", "base")],
            &[
                ("tier", "In", &["db", "cache"]),
                ("canary", "DoesNotExist", &[]),
            ],
        ));
        // A terminating pod that sorts first must be passed over.
        self.emu.create(fixtures::pod(
            NS,
            "app-base-0",
            &[("app", "base"), ("tier", "db")],
            &[(container, &[])],
            "Running",
            true,
            true,
        ));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.emu.create(fixtures::pod(
            NS,
            "app-base-1",
            &[("app", "base"), ("tier", "db")],
            &[(container, &env)],
            "Running",
            true,
            false,
        ));
        self.emu.set_pod_exec(
            NS,
            "app-base-1",
            ExecEnv {
                cwd: Some(self.dump_dir()),
                path: Some(tool_path()),
                ..Default::default()
            },
        );
    }

    /// Runs the binary with a clean environment plus `vars`.
    pub(crate) fn run(&self, vars: &[(&str, &str)]) -> Run {
        let out = self.command(vars).output().expect("run backup-ns");
        Run::from(out)
    }

    fn command(&self, vars: &[(&str, &str)]) -> Command {
        self.command_with(&["create", "-o", "json"], vars)
    }

    /// Runs the binary with `args`, a clean environment plus `vars`.
    pub(crate) fn command_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_backup-ns"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("BAK_NAMESPACE", NS)
            .env("RUST_LOG", "info")
            .envs(vars.iter().copied())
            .stdin(Stdio::null());
        cmd
    }

    pub(crate) fn snapshots(&self) -> Vec<Value> {
        self.emu.list("volumesnapshots", Some(NS))
    }

    fn snapshot(&self, name: &str) -> Value {
        self.emu
            .get(
                "snapshot.storage.k8s.io/v1",
                "volumesnapshots",
                Some(NS),
                name,
            )
            .expect("snapshot exists")
    }

    fn writes(&self) -> Vec<String> {
        self.emu
            .requests()
            .into_iter()
            .filter(|r| {
                matches!(
                    r.verb,
                    Verb::Create | Verb::Update | Verb::Patch | Verb::Delete
                )
            })
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    pub(crate) fn exec_scripts(&self) -> Vec<String> {
        self.emu
            .requests()
            .into_iter()
            .filter_map(|r| r.exec)
            .map(|e| e.argv.get(3).cloned().unwrap_or_default())
            .collect()
    }
}

pub(crate) use crate::support::tool_path;

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) result: Value,
    pub(crate) stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let result = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        Run {
            code: out.status.code().unwrap_or(-1),
            result,
            stderr,
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\nresult: {:#}\nstderr:\n{}",
            self.code, self.result, self.stderr
        )
    }
}

fn labels(vs: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(vs["metadata"]["labels"].clone()).unwrap_or_default()
}

/// A database in the shared server with a few rows of awkward text; returns its name.
pub(crate) fn pg_database(pg: &Postgres, name: &str) -> String {
    pg.createdb(name);
    pg.psql_in(
        name,
        "CREATE SCHEMA app; CREATE TABLE app.t (id int primary key, v text);
         INSERT INTO app.t VALUES (1, 'grüß dich 👋'), (2, 'it''s \"quoted\" \\ back'), (3, NULL);",
    );
    name.to_string()
}

pub(crate) fn pg_vars<'a>(dump: &'a str, db: &'a str, port: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("BAK_DB_POSTGRES", "true"),
        ("BAK_DB_POSTGRES_DUMP_FILE", dump),
        ("BAK_DB_POSTGRES_PORT", port),
        ("BAK_DB_POSTGRES_DB", db),
    ]
}

pub(crate) fn gunzip(path: &Path) -> String {
    let out = Command::new("gzip")
        .arg("-cd")
        .arg(path)
        .output()
        .expect("gzip");
    assert!(out.status.success(), "gzip -cd {}", path.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_create_dumps_snapshots_and_claims_labels_for_its_pvc() {
    let pg = Postgres::shared();
    let w = World::new().await;
    w.app("postgres", &pg.env());
    let db = pg_database(pg, "create_happy");
    let dump = w.dump_file("dump.sql.gz");
    let (dump_s, port) = (dump.display().to_string(), pg.port.to_string());
    let mut vars = pg_vars(&dump_s, &db, &port);
    vars.extend([
        ("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly"),
        ("BAK_LABEL_VS_TYPE", "cronjob"),
        ("BAK_LABEL_VS_POD", "backup-job-x1"),
        ("BAK_TZ", "Europe/Vienna"),
    ]);
    let run = w.run(&vars);
    assert_eq!(run.code, 0, "{run:?}");

    // The dump is there, complete, and restores to the same rows.
    let text = gunzip(&dump);
    assert!(
        text.contains("PostgreSQL database dump complete"),
        "no trailer"
    );
    assert_eq!(
        run.result["dumps"][0]["bytes"].as_u64(),
        Some(fs::metadata(&dump).unwrap().len())
    );
    pg.createdb("create_happy_restored");
    pg.restore_gz("create_happy_restored", &dump);
    let q = "SELECT string_agg(id || ':' || coalesce(v, '<null>'), '|' ORDER BY id) FROM app.t";
    assert_eq!(pg.psql_in("create_happy_restored", q), pg.psql_in(&db, q));

    // The snapshot: name from the one clock reading, labels and annotation as the original's.
    let name = run.result["snapshot"]
        .as_str()
        .expect("snapshot name")
        .to_string();
    let re = regex::Regex::new(r"^data-(\d{4}-\d{2}-\d{2})-\d{6}-[a-z]{6}$").unwrap();
    let date = re.captures(&name).unwrap_or_else(|| panic!("name {name}"))[1].to_string();
    let vs = w.snapshot(&name);
    assert_eq!(vs["status"]["readyToUse"], json!(true));
    assert_eq!(vs["spec"]["source"]["persistentVolumeClaimName"], "data");
    let l = labels(&vs);
    assert_eq!(l["backup-ns.sh/pvc"], "data");
    assert_eq!(l["backup-ns.sh/type"], "cronjob");
    assert_eq!(l["backup-ns.sh/pod"], "backup-job-x1");
    assert_eq!(l["backup-ns.sh/retain"], "daily_weekly_monthly");
    assert_eq!(
        l["backup-ns.sh/daily"], date,
        "daily label and name share one clock reading"
    );
    assert!(l["backup-ns.sh/weekly"].starts_with('w'));
    assert_eq!(l["backup-ns.sh/monthly"], date[..7]);
    assert!(!l.contains_key("backup-ns.sh/delete-after"));
    let annotation = vs["metadata"]["annotations"]["backup-ns.sh/env-config"]
        .as_str()
        .unwrap();
    assert!(
        annotation.contains("BAK_DB_POSTGRES='true'"),
        "{annotation}"
    );
    assert!(
        annotation.contains("BAK_TZ='Europe/Vienna'"),
        "{annotation}"
    );
    assert!(!annotation.contains("PASSWORD"), "{annotation}");

    // Checks ran before the dump; the Lease is gone; an Event tells the PVC's story.
    let scripts = w.exec_scripts();
    assert_eq!(
        scripts,
        [
            "backup-ns-postgres-check",
            "backup-ns-space",
            "backup-ns-postgres-dump"
        ]
    );
    assert!(w.emu.list("leases", Some(NS)).is_empty(), "lease released");
    let events = w.emu.list("events", Some(NS));
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "BackupSucceeded" && e["involvedObject"]["name"] == "data"),
        "{events:?}"
    );
    w.emu.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread")]
async fn period_labels_are_claimed_per_pvc_not_per_namespace() {
    let w = World::new().await;
    w.emu.create(fixtures::pvc(NS, "other", true));
    let dwm = [
        ("BAK_DB_SKIP", "true"),
        ("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly"),
    ];
    let first = w.run(&dwm);
    assert_eq!(first.code, 0, "{first:?}");
    // A second backup of the same PVC the same day gets no period labels …
    let second = w.run(&dwm);
    assert_eq!(second.code, 0, "{second:?}");
    let l2 = labels(&w.snapshot(second.result["snapshot"].as_str().unwrap()));
    assert!(
        !l2.contains_key("backup-ns.sh/daily") && !l2.contains_key("backup-ns.sh/weekly"),
        "{l2:?}"
    );
    // … but another PVC of the same namespace does (the original's bug 1).
    let mut other = dwm.to_vec();
    other.push(("BAK_PVC_NAME", "other"));
    let third = w.run(&other);
    assert_eq!(third.code, 0, "{third:?}");
    let l3 = labels(&w.snapshot(third.result["snapshot"].as_str().unwrap()));
    assert!(
        l3.contains_key("backup-ns.sh/daily") && l3.contains_key("backup-ns.sh/monthly"),
        "{l3:?}"
    );
    assert_eq!(w.snapshots().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_claim_lookup_is_an_error_not_already_claimed() {
    let w = World::new().await;
    w.emu.inject(
        crate::emu::Fault::on_regex("GET", "/namespaces/shop/volumesnapshots$")
            .status(500)
            .always(),
    );
    let run = w.run(&[
        ("BAK_DB_SKIP", "true"),
        ("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly"),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("list volumesnapshots of PVC data"),
        "{run:?}"
    );
    w.emu.clear_faults();
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_create_dumps_with_single_transaction_and_snapshots() {
    let my = Mariadb::shared();
    let w = World::new().await;
    w.app("mysql", &my.env());
    my.createdb("create_my");
    my.mysql_in("create_my", "SET NAMES utf8mb4; CREATE TABLE t (id INT PRIMARY KEY, v TEXT) CHARACTER SET utf8mb4; INSERT INTO t VALUES (1, 'grüß 👋'), (2, 'it''s');");
    let dump = w.dump_file("mysql.sql.gz");
    let dump_s = dump.display().to_string();
    let port = my.port.to_string();
    let run = w.run(&[
        ("BAK_DB_MYSQL", "true"),
        ("BAK_DB_MYSQL_DUMP_FILE", &dump_s),
        ("BAK_DB_MYSQL_PORT", &port),
        ("BAK_DB_MYSQL_DB", "create_my"),
        ("BAK_DB_MYSQL_EXEC_CONTAINER", "mysql"),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let text = gunzip(&dump);
    assert!(
        text.contains("grüß 👋") && text.contains("-- Dump completed"),
        "dump content: {text}"
    );
    let vs = w.snapshot(run.result["snapshot"].as_str().unwrap());
    let l = labels(&vs);
    assert_eq!(l["backup-ns.sh/retain"], "days");
    assert_eq!(l["backup-ns.sh/retain-days"], "30");
    assert!(l.contains_key("backup-ns.sh/delete-after"));
    assert_eq!(
        w.exec_scripts(),
        [
            "backup-ns-mysql-check",
            "backup-ns-space",
            "backup-ns-mysql-dump"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_checks_everything_and_writes_nothing() {
    let pg = Postgres::shared();
    let w = World::new().await;
    w.app("postgres", &pg.env());
    let dump = w.dump_file("dump.sql.gz");
    let (dump_s, port) = (dump.display().to_string(), pg.port.to_string());
    let mut vars = pg_vars(&dump_s, "postgres", &port);
    vars.push(("BAK_DRY_RUN", "true"));
    let run = w.run(&vars);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(w.writes().is_empty(), "a dry run wrote: {:?}", w.writes());
    assert!(w.snapshots().is_empty());
    assert!(!dump.exists(), "no dump in a dry run");
    assert_eq!(
        w.exec_scripts(),
        ["backup-ns-postgres-check", "backup-ns-space"]
    );
    let vs = &run.result["volumeSnapshot"];
    assert_eq!(vs["kind"], "VolumeSnapshot");
    assert_eq!(vs["metadata"]["labels"]["backup-ns.sh/pvc"], "data");
    assert_eq!(run.result["dryRun"], json!(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn volume_only_snapshot_execs_nothing() {
    let w = World::new().await;
    w.emu.create(fixtures::volume_snapshot_class(
        "csi-hostpath-snapclass",
        "hostpath.csi.k8s.io",
        "Retain",
        false,
    ));
    let run = w.run(&[
        ("BAK_DB_SKIP", "true"),
        ("BAK_VS_CLASS_NAME", "csi-hostpath-snapclass"),
        ("BAK_VS_RAND", "abcdef"),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(w.exec_scripts().is_empty());
    let name = run.result["snapshot"].as_str().unwrap();
    assert!(name.ends_with("-abcdef"), "{name}");
    assert_eq!(
        w.snapshot(name)["spec"]["volumeSnapshotClassName"],
        "csi-hostpath-snapclass"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_unbound_pvc_fails_closed() {
    let w = World::new().await;
    let run = w.run(&[("BAK_DB_SKIP", "true"), ("BAK_PVC_NAME", "nope")]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("persistentvolumeclaim shop/nope not found"),
        "{run:?}"
    );
    w.emu.create(fixtures::pvc(NS, "pending", false));
    let run = w.run(&[("BAK_DB_SKIP", "true"), ("BAK_PVC_NAME", "pending")]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("is Pending, not Bound"), "{run:?}");
    assert!(w.snapshots().is_empty());
    assert!(
        w.emu.list("leases", Some(NS)).is_empty(),
        "lease released after a failure"
    );
    let events = w.emu.list("events", Some(NS));
    assert!(
        events.iter().any(|e| e["reason"] == "BackupFailed"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_ready_pod_or_missing_container_is_a_clear_error() {
    let pg = Postgres::shared();
    let w = World::new().await;
    let port = pg.port.to_string();
    // No workload at all.
    let run = w.run(&[("BAK_DB_POSTGRES", "true"), ("BAK_DB_POSTGRES_PORT", &port)]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("deployment/app-base in namespace shop: not found"),
        "{run:?}"
    );
    // A StatefulSet whose only pod is not Ready.
    w.emu
        .create(fixtures::statefulset(NS, "db", &[("app", "db")], &[]));
    w.emu.create(fixtures::pod(
        NS,
        "db-0",
        &[("app", "db")],
        &[("postgres", &[])],
        "Running",
        false,
        false,
    ));
    let run = w.run(&[
        ("BAK_DB_POSTGRES", "true"),
        ("BAK_DB_POSTGRES_EXEC_RESOURCE", "statefulset/db"),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("pod db-0 is not Ready"), "{run:?}");
    // pod/NAME without the container.
    w.emu.create(fixtures::pod(
        NS,
        "lonely",
        &[],
        &[("sidecar", &[])],
        "Running",
        true,
        false,
    ));
    let run = w.run(&[
        ("BAK_DB_POSTGRES", "true"),
        ("BAK_DB_POSTGRES_EXEC_RESOURCE", "pod/lonely"),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("has no container \"postgres\""),
        "{run:?}"
    );
    assert!(w.snapshots().is_empty());
    assert!(w.exec_scripts().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn database_down_keeps_the_previous_dump_and_creates_no_snapshot() {
    let pg = Postgres::shared();
    let w = World::new().await;
    w.app("postgres", &pg.env());
    let dump = w.dump_file("dump.sql.gz");
    fs::write(&dump, b"previous dump").unwrap();
    let dump_s = dump.display().to_string();
    let closed = crate::support::free_port().to_string();
    let run = w.run(&pg_vars(&dump_s, "postgres", &closed));
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("postgres check in pod app-base-1 failed"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("cannot connect to PostgreSQL"),
        "{run:?}"
    );
    assert_eq!(fs::read(&dump).unwrap(), b"previous dump");
    assert!(w.snapshots().is_empty());
    assert_eq!(w.exec_scripts(), ["backup-ns-postgres-check"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn space_threshold_stops_before_the_dump() {
    let pg = Postgres::shared();
    let w = World::new().await;
    w.app("postgres", &pg.env());
    let dump = w.dump_file("dump.sql.gz");
    let (dump_s, port) = (dump.display().to_string(), pg.port.to_string());
    let mut vars = pg_vars(&dump_s, "postgres", &port);
    vars.push(("BAK_THRESHOLD_SPACE_USED_PERCENTAGE", "1"));
    let run = w.run(&vars);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("BAK_THRESHOLD_SPACE_USED_PERCENTAGE=1"),
        "{run:?}"
    );
    assert!(!dump.exists());
    assert!(w.snapshots().is_empty());
}

/// `status.error` on a snapshot that is not ready is the controller's last observation, not a
/// verdict: the wait goes on to the deadline, the last error is reported, and the snapshot is
/// left as it is — not marked for deletion, no period labels (it may still be cutting).
#[tokio::test(flavor = "multi_thread")]
async fn never_ready_with_an_error_fails_at_the_deadline_and_is_left_unmarked() {
    let w = World::new().await;
    w.emu
        .snapshots()
        .fail_for_pvc(NS, "data", "csi driver exploded");
    let started = Instant::now();
    let run = w.run(&[
        ("BAK_DB_SKIP", "true"),
        ("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly"),
        ("BAK_TZ", "UTC"),
        ("BAK_VS_WAIT_UNTIL_READY_TIMEOUT", "2s"),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited to the deadline, not failed on the first error: {run:?}"
    );
    let error = run.result["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "not ready after 2s (BAK_VS_WAIT_UNTIL_READY_TIMEOUT); last error: csi driver exploded"
        ),
        "{run:?}"
    );
    assert!(error.contains("left in place"), "{run:?}");
    let vs = w.snapshot(run.result["snapshot"].as_str().unwrap());
    let l = labels(&vs);
    for k in [
        "backup-ns.sh/daily",
        "backup-ns.sh/weekly",
        "backup-ns.sh/monthly",
        "backup-ns.sh/delete-after",
    ] {
        assert!(!l.contains_key(k), "{k} on a snapshot still pending: {l:?}");
    }
    assert_eq!(run.result["ready"], json!(false));
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_wait_has_one_deadline() {
    let w = World::new().await;
    w.emu.snapshots().never_ready_for_pvc(NS, "data");
    let started = Instant::now();
    let run = w.run(&[
        ("BAK_DB_SKIP", "true"),
        ("BAK_VS_WAIT_UNTIL_READY_TIMEOUT", "2s"),
        ("BAK_TZ", "UTC"),
    ]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("not ready after 2s"), "{run:?}");
    assert!(
        took < Duration::from_secs(6),
        "took {took:?}: not 3 x timeout like the original"
    );
    // retain=days: the delete-after it got at creation (today + 30 days), not a mark for today.
    let l = labels(&w.snapshot(run.result["snapshot"].as_str().unwrap()));
    let in_30_days = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(l["backup-ns.sh/delete-after"], in_30_days, "{l:?}");
}

/// The controller reports an error for a while and clears it on a successful retry: the run
/// waits it out, succeeds and claims its labels.
#[tokio::test(flavor = "multi_thread")]
async fn a_transient_snapshot_error_is_waited_out_and_labels_are_claimed() {
    let w = World::new().await;
    w.emu.snapshots().transient_error_for_pvc(
        NS,
        "data",
        "Failed to check and update snapshot content: the object has been modified",
        Duration::from_millis(1500),
    );
    let run = w.run(&[
        ("BAK_DB_SKIP", "true"),
        ("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly"),
        ("BAK_TZ", "UTC"),
        ("BAK_VS_WAIT_UNTIL_READY_TIMEOUT", "30s"),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("the object has been modified"),
        "the transient error is logged: {run:?}"
    );
    assert_eq!(run.result["ready"], json!(true));
    let vs = w.snapshot(run.result["snapshot"].as_str().unwrap());
    assert_eq!(vs["status"]["readyToUse"], json!(true));
    assert!(vs["status"].get("error").is_none(), "{vs}");
    let l = labels(&vs);
    assert_eq!(l["backup-ns.sh/daily"], today_utc(), "{l:?}");
    assert!(!l.contains_key("backup-ns.sh/delete-after"), "{l:?}");
}

/// `readyToUse: true` is ready even with `status.error` still set (kubevirt#4374).
#[tokio::test(flavor = "multi_thread")]
async fn a_ready_snapshot_with_an_error_still_set_succeeds() {
    let w = World::new().await;
    w.emu.snapshots().ready_with_error_for_pvc(
        NS,
        "data",
        "VolumeSnapshotContent is being updated",
        Duration::from_millis(1500),
    );
    let run = w.run(&[
        ("BAK_DB_SKIP", "true"),
        ("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly"),
        ("BAK_TZ", "UTC"),
        ("BAK_VS_WAIT_UNTIL_READY_TIMEOUT", "30s"),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let vs = w.snapshot(run.result["snapshot"].as_str().unwrap());
    assert_eq!(vs["status"]["readyToUse"], json!(true));
    assert_eq!(
        vs["status"]["error"]["message"],
        "VolumeSnapshotContent is being updated"
    );
    assert!(
        run.stderr
            .contains("still reports: VolumeSnapshotContent is being updated"),
        "{run:?}"
    );
    assert_eq!(labels(&vs)["backup-ns.sh/daily"], today_utc());
}

fn today_utc() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// The PVC's `metadata.uid` in the emulation.
fn pvc_uid(w: &World, pvc: &str) -> String {
    w.emu
        .get("v1", "persistentvolumeclaims", Some(NS), pvc)
        .expect("pvc")["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string()
}

/// Seeds a ready snapshot of PVC `data` holding today's daily, weekly and monthly (UTC), with
/// `metadata` merged in (e.g. a deletionTimestamp) and the given `pvc-uid` label.
fn seed_period_holder(w: &World, name: &str, metadata: Value, pvc_uid: Option<&str>) {
    let now = chrono::Utc::now();
    let weekly = format!("w{:02}", chrono::Datelike::iso_week(&now).week());
    let mut l = vec![
        ("backup-ns.sh/pvc", "data".to_string()),
        ("backup-ns.sh/retain", "daily_weekly_monthly".to_string()),
        ("backup-ns.sh/daily", today_utc()),
        ("backup-ns.sh/weekly", weekly),
        ("backup-ns.sh/monthly", now.format("%Y-%m").to_string()),
    ];
    if let Some(uid) = pvc_uid {
        l.push(("backup-ns.sh/pvc-uid", uid.to_string()));
    }
    let pairs: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut vs = fixtures::volume_snapshot(NS, name, "data", &pairs);
    let earlier = (now - chrono::Duration::minutes(5))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    vs["metadata"]["creationTimestamp"] = json!(earlier);
    for (k, v) in metadata.as_object().cloned().unwrap_or_default() {
        vs["metadata"][k] = v;
    }
    vs["status"] = json!({"readyToUse": true, "creationTime": earlier});
    w.emu.create(vs);
}

fn dwm_utc() -> [(&'static str, &'static str); 3] {
    [
        ("BAK_DB_SKIP", "true"),
        ("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly"),
        ("BAK_TZ", "UTC"),
    ]
}

/// A snapshot being deleted (deletionTimestamp, held by the snapshot controller's finalizers)
/// is gone for every purpose: it does not hold today's periods.
#[tokio::test(flavor = "multi_thread")]
async fn a_terminating_snapshot_does_not_block_the_claim() {
    let w = World::new().await;
    let uid = pvc_uid(&w, "data");
    seed_period_holder(
        &w,
        "data-terminating",
        json!({
            "deletionTimestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "finalizers": crate::emu::SNAPSHOT_FINALIZERS,
        }),
        Some(&uid),
    );
    let run = w.run(&dwm_utc());
    assert_eq!(run.code, 0, "{run:?}");
    let l = labels(&w.snapshot(run.result["snapshot"].as_str().unwrap()));
    assert_eq!(l["backup-ns.sh/daily"], today_utc(), "{l:?}");
    assert!(l.contains_key("backup-ns.sh/weekly") && l.contains_key("backup-ns.sh/monthly"));
    // The terminating one is left as it was.
    assert_eq!(
        labels(&w.snapshot("data-terminating"))["backup-ns.sh/daily"],
        today_utc()
    );
}

/// Snapshots are grouped by the source volume: a snapshot of an earlier PVC of the same name
/// (another `pvc-uid`) does not hold the new volume's periods; one of the same volume, or one
/// without the label (older backup-ns, the original), does.
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_of_an_older_volume_of_the_same_name_does_not_block_the_claim() {
    let w = World::new().await;
    let uid = pvc_uid(&w, "data");
    seed_period_holder(
        &w,
        "data-old-volume",
        json!({}),
        Some("0d1e2f3a-0000-4000-8000-000000000000"),
    );
    let run = w.run(&dwm_utc());
    assert_eq!(run.code, 0, "{run:?}");
    let first = run.result["snapshot"].as_str().unwrap().to_string();
    let l = labels(&w.snapshot(&first));
    assert_eq!(l["backup-ns.sh/daily"], today_utc(), "{l:?}");
    assert_eq!(
        l["backup-ns.sh/pvc-uid"], uid,
        "every new snapshot names its volume"
    );

    // Same volume: the first run's snapshot now holds today.
    let run = w.run(&dwm_utc());
    assert_eq!(run.code, 0, "{run:?}");
    let l = labels(&w.snapshot(run.result["snapshot"].as_str().unwrap()));
    assert!(!l.contains_key("backup-ns.sh/daily"), "{l:?}");

    // No pvc-uid label: cannot be told apart, so it counts as the same volume.
    let w = World::new().await;
    seed_period_holder(&w, "data-unlabelled", json!({}), None);
    let run = w.run(&dwm_utc());
    assert_eq!(run.code, 0, "{run:?}");
    let l = labels(&w.snapshot(run.result["snapshot"].as_str().unwrap()));
    assert!(!l.contains_key("backup-ns.sh/daily"), "{l:?}");
    assert!(!l.contains_key("backup-ns.sh/monthly"), "{l:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_wait_claims_labels_at_creation() {
    let w = World::new().await;
    w.emu.snapshots().never_ready_for_pvc(NS, "data");
    let run = w.run(&[
        ("BAK_DB_SKIP", "true"),
        ("BAK_VS_WAIT_UNTIL_READY", "false"),
        ("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly"),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let l = labels(&w.snapshot(run.result["snapshot"].as_str().unwrap()));
    assert!(l.contains_key("backup-ns.sh/daily"), "{l:?}");
    assert_eq!(run.result["ready"], json!(false));
}

/// Every invalid setting stops the run with exit 2 before any request is made.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_2_and_touches_nothing() {
    let w = World::new().await;
    let long = "x".repeat(64);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("BAK_DB_SKIP", "true"), ("BAK_DRY_RUN", "yes")],
            "BAK_DRY_RUN",
        ),
        (
            vec![
                ("BAK_DB_SKIP", "true"),
                ("BAK_FLOCK", "true"),
                ("BAK_FLOCK_COUNT", "0"),
            ],
            "BAK_FLOCK_COUNT",
        ),
        (
            vec![
                ("BAK_DB_SKIP", "true"),
                ("BAK_VS_WAIT_UNTIL_READY_TIMEOUT", "15"),
            ],
            "BAK_VS_WAIT_UNTIL_READY_TIMEOUT",
        ),
        (
            vec![("BAK_DB_SKIP", "true"), ("BAK_DB_POSTGRES", "true")],
            "BAK_DB_SKIP",
        ),
        (vec![], "no database selected"),
        (
            vec![("BAK_DB_SKIP", "true"), ("BAK_PVC_NAME", &long)],
            "BAK_PVC_NAME",
        ),
        (
            vec![("BAK_DB_SKIP", "true"), ("BAK_TZ", "Mars/Olympus")],
            "BAK_TZ",
        ),
        (
            vec![
                ("BAK_DB_SKIP", "true"),
                ("BAK_VS_NAME_TEMPLATE", "{{ .pvcName }}-{{ .nope }}"),
            ],
            "BAK_VS_NAME_TEMPLATE",
        ),
        (
            vec![("BAK_DB_SKIP", "true"), ("BAK_LABEL_VS_RETAIN", "weekly")],
            "BAK_LABEL_VS_RETAIN",
        ),
        (
            vec![
                ("BAK_DB_POSTGRES", "true"),
                ("BAK_DB_POSTGRES_EXEC_RESOURCE", "cronjob/x"),
            ],
            "BAK_DB_POSTGRES_EXEC_RESOURCE",
        ),
        (
            vec![
                ("BAK_DB_POSTGRES", "true"),
                ("BAK_DB_POSTGRES_PORT", "5432x"),
            ],
            "BAK_DB_POSTGRES_PORT",
        ),
        (
            vec![("BAK_DB_SKIP", "true"), ("BAK_LABEL_VS_POD", &long)],
            "BAK_LABEL_VS_POD",
        ),
        (
            vec![
                ("BAK_DB_SKIP", "true"),
                ("BAK_THRESHOLD_SPACE_USED_PERCENTAGE", "0"),
            ],
            "BAK_THRESHOLD_SPACE_USED_PERCENTAGE",
        ),
    ];
    for (vars, needle) in cases {
        w.emu.clear_requests();
        let run = w.run(&vars);
        assert_eq!(run.code, 2, "{vars:?}: {run:?}");
        assert!(
            run.stderr.contains(needle),
            "{vars:?} should name {needle}: {run:?}"
        );
        assert!(w.emu.requests().is_empty(), "{vars:?} made requests");
    }
    assert!(w.snapshots().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_lease_fails_fast_or_times_out_waiting() {
    let w = World::new().await;
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    w.emu.create(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"namespace": NS, "name": "backup-ns-data"},
        "spec": {"holderIdentity": "other-job/1", "leaseDurationSeconds": 300, "renewTime": now, "acquireTime": now},
    }));
    let run = w.run(&[("BAK_DB_SKIP", "true")]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("other-job/1"), "{run:?}");
    let run = w.run(&[
        ("BAK_DB_SKIP", "true"),
        ("BAK_LEASE_WAIT", "true"),
        ("BAK_LEASE_WAIT_TIMEOUT", "1s"),
    ]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("BAK_LEASE_WAIT_TIMEOUT"), "{run:?}");
    assert!(w.snapshots().is_empty());
    let events = w.emu.list("events", Some(NS));
    assert!(
        events.iter().any(|e| e["reason"] == "BackupFailed"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("other-job/1"))),
        "a skipped backup shows on the PVC: {events:?}"
    );
    // The other holder's Lease is untouched.
    let lease = w
        .emu
        .get(
            "coordination.k8s.io/v1",
            "leases",
            Some(NS),
            "backup-ns-data",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "other-job/1");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_lease_is_taken_over() {
    let w = World::new().await;
    w.emu.create(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"namespace": NS, "name": "backup-ns-data"},
        "spec": {"holderIdentity": "crashed/1", "leaseDurationSeconds": 60, "renewTime": "2020-01-01T00:00:00.000000Z"},
    }));
    let run = w.run(&[("BAK_DB_SKIP", "true")]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(w.emu.list("leases", Some(NS)).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_creates_for_one_pvc_never_overlap() {
    let emu = Emu::builder()
        .snapshot_ready_after(Duration::from_secs(3))
        .start()
        .await;
    let w = World::with(emu);
    let vars = [("BAK_DB_SKIP", "true")];
    let first = w
        .command(&vars)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the first take the Lease, then start the second while it waits for readiness.
    assert!(crate::support::wait_until(Duration::from_secs(10), || !w
        .emu
        .list("leases", Some(NS))
        .is_empty()));
    let second = w.run(&vars);
    let first = Run::from(first.wait_with_output().unwrap());
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(second.code, 4, "{second:?}");
    assert!(
        second.stderr.contains("another backup-ns run"),
        "{second:?}"
    );
    assert_eq!(w.snapshots().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn node_lock_takes_a_free_slot_and_times_out_when_all_are_busy() {
    let w = World::new().await;
    let locks = w.dir.path().join("locks");
    fs::create_dir_all(&locks).unwrap();
    let held = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(locks.join("1.lock"))
        .unwrap();
    held.try_lock().expect("hold slot 1");
    let dir = locks.display().to_string();
    // Two slots, one busy: the free one is taken without waiting.
    let run = w.run(&[
        ("BAK_DB_SKIP", "true"),
        ("BAK_FLOCK", "true"),
        ("BAK_FLOCK_DIR", &dir),
        ("BAK_FLOCK_COUNT", "2"),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.result["lockSlot"], json!(2));
    // One slot, busy: exit 3 after the timeout, naming the variable; nothing created.
    let started = Instant::now();
    let run = w.run(&[
        ("BAK_DB_SKIP", "true"),
        ("BAK_FLOCK", "true"),
        ("BAK_FLOCK_DIR", &dir),
        ("BAK_FLOCK_COUNT", "1"),
        ("BAK_FLOCK_TIMEOUT_SEC", "1"),
    ]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("BAK_FLOCK_TIMEOUT_SEC"), "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(w.snapshots().len(), 1);
    // A holder that dies releases its slot: a child process holding the lock is killed.
    drop(held);
    let mut holder = Command::new("flock")
        .arg("-o")
        .arg(locks.join("1.lock"))
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let run = w.run(&[
        ("BAK_DB_SKIP", "true"),
        ("BAK_FLOCK", "true"),
        ("BAK_FLOCK_DIR", &dir),
        ("BAK_FLOCK_COUNT", "1"),
        ("BAK_FLOCK_TIMEOUT_SEC", "2"),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_contention_between_processes_serialises_them() {
    let emu = Emu::builder()
        .snapshot_ready_after(Duration::from_secs(2))
        .start()
        .await;
    let w = World::with(emu);
    w.emu.create(fixtures::pvc(NS, "other", true));
    let locks = w.dir.path().join("locks");
    fs::create_dir_all(&locks).unwrap();
    let dir = locks.display().to_string();
    let vars = |pvc| {
        [
            ("BAK_DB_SKIP", "true"),
            ("BAK_FLOCK", "true"),
            ("BAK_FLOCK_DIR", dir.as_str()),
            ("BAK_FLOCK_COUNT", "1"),
            ("BAK_PVC_NAME", pvc),
        ]
    };
    let started = Instant::now();
    let a = w
        .command(&vars("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = w
        .command(&vars("other"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (
        Run::from(a.wait_with_output().unwrap()),
        Run::from(b.wait_with_output().unwrap()),
    );
    assert_eq!((a.code, b.code), (0, 0), "{a:?}\n{b:?}");
    // One slot: the second waited for the first's snapshot (≥ 2 s each).
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(a.stderr.contains("slot") && b.stderr.contains("slot"));
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_with_shell_metacharacters_work_and_never_leak() {
    let pg = Postgres::shared();
    let w = World::new().await;
    let marker = w.dir.path().join("PWNED");
    let password = format!("p'a\"s$(touch {})`;x y\\", marker.display());
    let user = "u'ser $(x)";
    let db = "d\"b`;$(y) z";
    pg.psql(&format!(
        "CREATE ROLE {} LOGIN PASSWORD {}; CREATE DATABASE {} OWNER {};",
        crate::support::quote_ident(user, '"'),
        crate::support::quote_literal(&password),
        crate::support::quote_ident(db, '"'),
        crate::support::quote_ident(user, '"'),
    ));
    w.app(
        "postgres",
        &[("APP_PASSWORD".to_string(), password.clone())],
    );
    let dump = w.dump_file("dump.sql.gz");
    let (dump_s, port) = (dump.display().to_string(), pg.port.to_string());
    // The password once as a container variable reference, once as a literal.
    for pw in ["${APP_PASSWORD}", password.as_str()] {
        w.emu.clear_requests();
        let run = w.run(&[
            ("BAK_DB_POSTGRES", "true"),
            ("BAK_DB_POSTGRES_DUMP_FILE", &dump_s),
            ("BAK_DB_POSTGRES_PORT", &port),
            ("BAK_DB_POSTGRES_USER", user),
            ("BAK_DB_POSTGRES_PASSWORD", pw),
            ("BAK_DB_POSTGRES_DB", db),
        ]);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(!run.stderr.contains(&password) && !run.result.to_string().contains(&password));
        for r in w.emu.requests() {
            let argv = r.exec.map(|e| e.argv.join(" ")).unwrap_or_default();
            assert!(
                !r.query.contains("PWNED") && !argv.contains(&password) && !argv.contains("PWNED"),
                "password in a request: {argv}"
            );
        }
        let vs = w.snapshot(run.result["snapshot"].as_str().unwrap());
        assert!(!vs.to_string().contains(&password));
    }
    assert!(!marker.exists(), "a value was executed");
    assert!(gunzip(&dump).contains("PostgreSQL database dump complete"));
}

/// A database whose dump takes seconds (3 million rows), made once per test process.
fn big_database(pg: &Postgres) -> &'static str {
    static MADE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    MADE.get_or_init(|| {
        pg.createdb("create_big");
        pg.psql_in(
            "create_big",
            "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS v \
             FROM generate_series(1, 3000000) g;",
        );
    });
    "create_big"
}

/// Starts a create of the big database over a "previous dump" and returns once the dump is
/// under way (its temporary file exists).
fn start_big_dump(w: &World, pg: &Postgres) -> (std::process::Child, PathBuf) {
    start_big_dump_with(w, pg, &[])
}

/// [`start_big_dump`] with more variables.
fn start_big_dump_with(
    w: &World,
    pg: &Postgres,
    extra: &[(&str, &str)],
) -> (std::process::Child, PathBuf) {
    w.app("postgres", &pg.env());
    let db = big_database(pg);
    let dump = w.dump_file("dump.sql.gz");
    fs::write(&dump, b"previous dump").unwrap();
    let (dump_s, port) = (dump.display().to_string(), pg.port.to_string());
    let mut vars = pg_vars(&dump_s, db, &port);
    vars.extend_from_slice(extra);
    let child = w
        .command(&vars)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        crate::support::wait_until(Duration::from_secs(30), || dump_tmp_exists(w)),
        "the dump never started"
    );
    (child, dump)
}

fn dump_tmp_exists(w: &World) -> bool {
    fs::read_dir(w.dump_dir())
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().contains(".tmp"))
}

/// The in-pod script noticed stdin closing: pg_dump and gzip are gone, their temporary file
/// too, and the previous dump is as it was.
fn assert_dump_abandoned_cleanly(w: &World, dump: &Path) {
    // Generous bounds: on a loaded 2-core machine (the whole suite in parallel, several real
    // databases dumping) the watchdog's kill and cleanup have been seen to take over 15 s.
    assert!(
        crate::support::wait_until(Duration::from_secs(45), || !dump_tmp_exists(w)),
        "temporary file left behind"
    );
    assert_eq!(fs::read(dump).unwrap(), b"previous dump");
    // Nothing the exec started is left: no process works in the dump directory any more.
    let dump_dir = fs::canonicalize(w.dump_dir()).unwrap();
    let in_dump_dir = || {
        fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd == dump_dir))
    };
    assert!(
        crate::support::wait_until(Duration::from_secs(30), || !in_dump_dir()),
        "pg_dump or gzip still running"
    );
    assert!(w.snapshots().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_backup_ns_mid_dump_stops_the_dump_and_keeps_the_previous_one() {
    let pg = Postgres::shared();
    let w = World::new().await;
    let (mut child, dump) = start_big_dump(&w, pg);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_dump_abandoned_cleanly(&w, &dump);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_dump_stops_cleanly_and_releases_the_lease() {
    let pg = Postgres::shared();
    let w = World::new().await;
    let (child, dump) = start_big_dump(&w, pg);
    // SAFETY: a plain kill(2) of our own child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("terminated by SIGTERM"), "{run:?}");
    assert_dump_abandoned_cleanly(&w, &dump);
    // Unlike a kill -9, the Lease is released at once and the failure is on the PVC.
    assert!(
        w.emu.list("leases", Some(NS)).is_empty(),
        "lease left behind"
    );
    let events = w.emu.list("events", Some(NS));
    assert!(
        events.iter().any(|e| e["reason"] == "BackupFailed"
            && e["message"].as_str().is_some_and(|m| m.contains("SIGTERM"))),
        "{events:?}"
    );
}

/// A Lease for PVC `data` held by someone else, renewed just now, for `secs`.
fn seed_foreign_lease(w: &World, holder: &str, secs: i32) {
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    w.emu.create(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"namespace": NS, "name": "backup-ns-data"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": secs, "renewTime": now, "acquireTime": now},
    }));
}

fn lease_of_data(w: &World) -> Option<Value> {
    w.emu.get(
        "coordination.k8s.io/v1",
        "leases",
        Some(NS),
        "backup-ns-data",
    )
}

fn spawn(w: &World, vars: &[(&str, &str)]) -> std::process::Child {
    w.command(vars)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn sigterm(child: &std::process::Child) {
    // SAFETY: a plain kill(2) of our own child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
}

/// The Lease comes before the node slot: a run waiting for its PVC's Lease holds no slot, so a
/// run for another PVC on the same node gets the only slot meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_the_lease_holds_no_node_slot() {
    let w = World::new().await;
    w.emu.create(fixtures::pvc(NS, "other", true));
    seed_foreign_lease(&w, "other-job/1", 300);
    let locks = w.dir.path().join("locks");
    fs::create_dir_all(&locks).unwrap();
    let dir = locks.display().to_string();
    let flock = [
        ("BAK_DB_SKIP", "true"),
        ("BAK_FLOCK", "true"),
        ("BAK_FLOCK_DIR", dir.as_str()),
        ("BAK_FLOCK_COUNT", "1"),
        ("BAK_FLOCK_TIMEOUT_SEC", "3"),
    ];
    let mut waiting_vars = flock.to_vec();
    waiting_vars.extend([
        ("BAK_LEASE_WAIT", "true"),
        ("BAK_LEASE_WAIT_TIMEOUT", "60s"),
    ]);
    let waiting = spawn(&w, &waiting_vars);
    assert!(
        crate::support::wait_until(Duration::from_secs(10), || w.emu.count(Verb::Get, "leases")
            >= 2),
        "the first run never looked at the Lease"
    );
    // The run for another PVC takes the only slot while the first waits for its Lease.
    let mut other = flock.to_vec();
    other.push(("BAK_PVC_NAME", "other"));
    let run = w.run(&other);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.result["lockSlot"], json!(1));
    // The Lease is freed: the waiting run takes it, then the slot, and succeeds.
    w.emu.delete(
        "coordination.k8s.io/v1",
        "leases",
        Some(NS),
        "backup-ns-data",
    );
    let first = Run::from(waiting.wait_with_output().unwrap());
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(first.result["lockSlot"], json!(1));
    assert_eq!(w.snapshots().len(), 2);
}

/// Another run took the Lease over in the middle of the dump (this run's renewal sees the new
/// holder): the dump stops, the previous dump stays, no snapshot, the new holder keeps it.
#[tokio::test(flavor = "multi_thread")]
async fn a_lease_taken_over_mid_dump_stops_the_dump() {
    let pg = Postgres::shared();
    let w = World::new().await;
    let (child, dump) = start_big_dump_with(&w, pg, &[("BAK_LEASE_DURATION", "3s")]);
    let mut lease = lease_of_data(&w).expect("the run holds the Lease");
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    lease["spec"]["holderIdentity"] = json!("thief/1");
    lease["spec"]["renewTime"] = json!(now);
    lease["spec"]["leaseDurationSeconds"] = json!(300);
    w.emu.replace(lease);
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 1, "{run:?}");
    let error = run.result["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("lost lease backup-ns-data: it is now held by \"thief/1\""),
        "{run:?}"
    );
    assert!(error.contains("the previous dump stays"), "{run:?}");
    assert_dump_abandoned_cleanly(&w, &dump);
    assert_eq!(
        lease_of_data(&w).unwrap()["spec"]["holderIdentity"],
        "thief/1"
    );
}

/// Lease renewals that hang (the API server does not answer) are cut after a third of the
/// lease duration, not left to kube's minutes-long retries: after a whole lease duration
/// without a renewal the Lease counts as lost and the dump stops.
#[tokio::test(flavor = "multi_thread")]
async fn lease_renewals_that_hang_stop_the_dump_within_the_lease_duration() {
    let pg = Postgres::shared();
    let w = World::new().await;
    w.emu.inject(
        crate::emu::Fault::on("PUT", "/leases/backup-ns-data")
            .delay(Duration::from_secs(120))
            .always(),
    );
    let started = Instant::now();
    let (child, dump) = start_big_dump_with(&w, pg, &[("BAK_LEASE_DURATION", "3s")]);
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("lost lease backup-ns-data: not renewed for"),
        "{run:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_dump_abandoned_cleanly(&w, &dump);
    w.emu.clear_faults();
}

/// The clock is read when the dump starts, after the waits: a run that waited for the Lease
/// names its snapshot with a time no earlier than the Lease's release.
#[tokio::test(flavor = "multi_thread")]
async fn the_snapshot_is_named_after_the_waits() {
    let w = World::new().await;
    seed_foreign_lease(&w, "other-job/1", 300);
    let child = spawn(
        &w,
        &[
            ("BAK_DB_SKIP", "true"),
            ("BAK_TZ", "UTC"),
            ("BAK_LEASE_WAIT", "true"),
            ("BAK_LEASE_WAIT_TIMEOUT", "60s"),
        ],
    );
    assert!(crate::support::wait_until(Duration::from_secs(10), || w
        .emu
        .count(Verb::Get, "leases")
        >= 1));
    std::thread::sleep(Duration::from_millis(2500));
    let released = chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%d-%H%M%S")
        .to_string();
    w.emu.delete(
        "coordination.k8s.io/v1",
        "leases",
        Some(NS),
        "backup-ns-data",
    );
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    let name = run.result["snapshot"].as_str().unwrap();
    let re = regex::Regex::new(r"^data-(\d{4}-\d{2}-\d{2}-\d{6})-[a-z]{6}$").unwrap();
    let taken = re.captures(name).unwrap_or_else(|| panic!("name {name}"))[1].to_string();
    // Same fixed-width format: text order is time order.
    assert!(
        taken >= released,
        "snapshot named {taken}, before the Lease was released at {released}"
    );
}

/// SIGTERM while waiting for a snapshot that is not ready: one bounded look, then exit; the
/// snapshot is left pending without period labels and without delete-after, for `retain` to
/// claim once ready (or sweep as failed after a day), and the run says so.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_while_waiting_leaves_a_pending_snapshot_for_retain() {
    let w = World::new().await;
    w.emu.snapshots().never_ready_for_pvc(NS, "data");
    let child = spawn(
        &w,
        &[
            ("BAK_DB_SKIP", "true"),
            ("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly"),
            ("BAK_VS_WAIT_UNTIL_READY_TIMEOUT", "5m"),
        ],
    );
    assert!(crate::support::wait_until(Duration::from_secs(10), || !w
        .snapshots()
        .is_empty()));
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    sigterm(&child);
    let run = Run::from(child.wait_with_output().unwrap());
    assert!(
        signalled.elapsed() < Duration::from_secs(12),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(run.code, 1, "{run:?}");
    let error = run.result["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("terminated by SIGTERM while waiting for volumesnapshot shop/data-")
            && error.contains("it is not ready yet")
            && error.contains(
                "left in place without period labels: `retain` claims them once it is ready"
            ),
        "{run:?}"
    );
    let l = labels(&w.snapshots()[0]);
    for k in [
        "backup-ns.sh/daily",
        "backup-ns.sh/weekly",
        "backup-ns.sh/monthly",
        "backup-ns.sh/delete-after",
    ] {
        assert!(!l.contains_key(k), "{k}: {l:?}");
    }
    assert!(lease_of_data(&w).is_none(), "lease released");
}

/// SIGTERM while the run has not yet seen that its snapshot is ready (its poll hangs): the one
/// look after the signal finds it ready and claims its period labels before exiting.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_while_waiting_claims_the_labels_of_a_ready_snapshot() {
    let w = World::new().await;
    w.emu.inject(
        crate::emu::Fault::on_regex("GET", "/volumesnapshots/data-").delay(Duration::from_secs(60)),
    );
    let child = spawn(
        &w,
        &[
            ("BAK_DB_SKIP", "true"),
            ("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly"),
            ("BAK_TZ", "UTC"),
        ],
    );
    assert!(crate::support::wait_until(Duration::from_secs(10), || w
        .snapshots()
        .first()
        .is_some_and(|vs| vs["status"]["readyToUse"] == json!(true))));
    sigterm(&child);
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("its retention labels were claimed before exiting"),
        "{run:?}"
    );
    let l = labels(&w.snapshots()[0]);
    assert_eq!(l["backup-ns.sh/daily"], today_utc(), "{l:?}");
    assert!(l.contains_key("backup-ns.sh/monthly"), "{l:?}");
}

/// The answer to the snapshot's POST is lost after the API server stored it (504): kube's
/// retry layer sends the POST again and gets 409 AlreadyExists for the run's own snapshot,
/// which the run recognises and goes on with.
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_post_answered_504_after_storing_goes_on_with_its_own_snapshot() {
    let w = World::new().await;
    w.emu.inject(
        crate::emu::Fault::on("POST", "/volumesnapshots")
            .status(504)
            .after_serving(),
    );
    let run = w.run(&dwm_utc());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(w.emu.count(Verb::Create, "volumesnapshots"), 2, "retried");
    assert_eq!(w.snapshots().len(), 1);
    assert!(run.stderr.contains("it was created by this run"), "{run:?}");
    let l = labels(&w.snapshots()[0]);
    assert_eq!(l["backup-ns.sh/daily"], today_utc(), "{l:?}");
    assert_eq!(run.result["ready"], json!(true));
}

/// The connection drops after the POST was stored: the run finds its snapshot and goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_post_whose_connection_drops_after_storing_goes_on() {
    let w = World::new().await;
    w.emu.inject(
        crate::emu::Fault::on("POST", "/volumesnapshots")
            .drop_connection()
            .after_serving(),
    );
    let run = w.run(&dwm_utc());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(w.snapshots().len(), 1);
    assert!(run.stderr.contains("it was created by this run"), "{run:?}");
    assert_eq!(labels(&w.snapshots()[0])["backup-ns.sh/daily"], today_utc());
}

/// A namesake that this run did not create is not taken for its own: an error, left alone.
#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_snapshot_of_the_same_name_is_an_error() {
    let w = World::new().await;
    let mut foreign =
        fixtures::volume_snapshot(NS, "data-fixed", "data", &[("backup-ns.sh/pvc", "data")]);
    foreign["status"] = json!({"readyToUse": true});
    w.emu.create(foreign);
    let mut vars = dwm_utc().to_vec();
    vars.push(("BAK_VS_NAME_TEMPLATE", "{{ .pvcName }}-fixed"));
    let run = w.run(&vars);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "volumesnapshot shop/data-fixed already exists and was not created by this run"
        ),
        "{run:?}"
    );
    let l = labels(&w.snapshot("data-fixed"));
    assert!(!l.contains_key("backup-ns.sh/daily"), "{l:?}");
    assert_eq!(w.snapshots().len(), 1);
}

/// The PVC's record of its last attempt (`backup-ns.sh/last-*` annotations).
fn record_of(w: &World) -> BTreeMap<String, String> {
    let pvc = w
        .emu
        .get("v1", "persistentvolumeclaims", Some(NS), "data")
        .expect("pvc");
    serde_json::from_value(pvc["metadata"]["annotations"].clone()).unwrap_or_default()
}

/// Issue 9 §1: every attempt is recorded on the PVC, where it outlives Events and Jobs — also
/// the failures that leave no snapshot (busy Lease, no ready pod, dump failed).
#[tokio::test(flavor = "multi_thread")]
async fn every_attempt_is_recorded_on_the_pvc() {
    let pg = Postgres::shared();
    let w = World::new().await;
    assert!(record_of(&w)
        .keys()
        .all(|k| !k.starts_with("backup-ns.sh/")));

    // Success.
    let run = w.run(&[("BAK_DB_SKIP", "true")]);
    assert_eq!(run.code, 0, "{run:?}");
    let r = record_of(&w);
    assert_eq!(r["backup-ns.sh/last-outcome"], "succeeded", "{r:?}");
    assert_eq!(
        r["backup-ns.sh/last-success"],
        r["backup-ns.sh/last-attempt"]
    );
    assert_eq!(
        r["backup-ns.sh/last-snapshot"],
        run.result["snapshot"].as_str().unwrap()
    );
    assert!(!r.contains_key("backup-ns.sh/last-error"), "{r:?}");
    let duration: f64 = r["backup-ns.sh/last-duration"].parse().unwrap();
    assert!((0.0..60.0).contains(&duration), "{r:?}");
    let success = r["backup-ns.sh/last-success"].clone();

    // Skipped: another run holds the Lease.
    seed_foreign_lease(&w, "other-job/1", 300);
    let run = w.run(&[("BAK_DB_SKIP", "true")]);
    assert_eq!(run.code, 4, "{run:?}");
    let r = record_of(&w);
    assert_eq!(r["backup-ns.sh/last-outcome"], "skipped", "{r:?}");
    assert!(
        r["backup-ns.sh/last-error"].contains("other-job/1"),
        "{r:?}"
    );
    assert_eq!(r["backup-ns.sh/last-success"], success, "kept");
    assert!(!r.contains_key("backup-ns.sh/last-snapshot"), "{r:?}");
    w.emu.delete(
        "coordination.k8s.io/v1",
        "leases",
        Some(NS),
        "backup-ns-data",
    );

    // Failed before any snapshot: no ready pod.
    let run = w.run(&[("BAK_DB_POSTGRES", "true")]);
    assert_eq!(run.code, 1, "{run:?}");
    let r = record_of(&w);
    assert_eq!(r["backup-ns.sh/last-outcome"], "failed", "{r:?}");
    assert!(
        r["backup-ns.sh/last-error"].contains("deployment/app-base"),
        "{r:?}"
    );
    assert_eq!(r["backup-ns.sh/last-success"], success);

    // Failed in the dump: the database is down.
    w.app("postgres", &pg.env());
    let dump = w.dump_file("dump.sql.gz");
    let dump_s = dump.display().to_string();
    let closed = crate::support::free_port().to_string();
    let run = w.run(&pg_vars(&dump_s, "postgres", &closed));
    assert_eq!(run.code, 1, "{run:?}");
    let r = record_of(&w);
    assert_eq!(r["backup-ns.sh/last-outcome"], "failed", "{r:?}");
    assert!(
        r["backup-ns.sh/last-error"].contains("cannot connect to PostgreSQL"),
        "{r:?}"
    );

    // Failed after the snapshot: never ready; the record names the snapshot left behind.
    w.emu.snapshots().never_ready_for_pvc(NS, "data");
    let run = w.run(&[
        ("BAK_DB_SKIP", "true"),
        ("BAK_VS_WAIT_UNTIL_READY_TIMEOUT", "1s"),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    let r = record_of(&w);
    assert_eq!(r["backup-ns.sh/last-outcome"], "failed", "{r:?}");
    assert_eq!(
        r["backup-ns.sh/last-snapshot"],
        run.result["snapshot"].as_str().unwrap()
    );
    assert_eq!(r["backup-ns.sh/last-success"], success);
}

/// The samples of a metrics textfile, parsed by an independent parser.
fn scrape(path: &Path) -> prometheus_parse::Scrape {
    let text = fs::read_to_string(path).expect("metrics textfile");
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid format")
}

fn sample(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name}: {other:?}"),
        })
}

/// Issue 9 §3 and §4 through `create`: its metrics reach the textfile and the Pushgateway, a
/// failed run notifies the webhooks and pings healthchecks' `/fail`, and none of it changes
/// the exit status or shows the secret URLs.
#[tokio::test(flavor = "multi_thread")]
async fn create_writes_metrics_and_notifies_without_changing_its_outcome() {
    use crate::http_server::{Behaviour, TestServer};
    let w = World::new().await;
    let hooks = TestServer::start(Behaviour::Status(200));
    let pushgateway = TestServer::start(Behaviour::Status(200));
    let broken = TestServer::start(Behaviour::Status(500));
    let textfile = w.dir.path().join("backup.prom");
    let (textfile_s, push) = (textfile.display().to_string(), pushgateway.url.clone());
    let hook = format!("{}/hook/SECRET-TOKEN", hooks.url);
    let ping = format!("{}/ping/SECRET-UUID", hooks.url);
    let notify = format!("{hook},{}/also/SECRET-TOKEN", broken.url);
    let sinks = [
        ("BAK_METRICS_TEXTFILE", textfile_s.as_str()),
        ("BAK_METRICS_PUSHGATEWAY", push.as_str()),
        ("BAK_NOTIFY_URL", notify.as_str()),
        ("BAK_HEALTHCHECK_URL", ping.as_str()),
        ("BAK_NOTIFY_TIMEOUT", "2s"),
    ];

    // A success: metrics, a success ping, no webhook (BAK_NOTIFY_ON=failure).
    let mut vars = vec![("BAK_DB_SKIP", "true")];
    vars.extend(sinks);
    let run = w.run(&vars);
    assert_eq!(run.code, 0, "{run:?}");
    let s = scrape(&textfile);
    let group = [("namespace", NS), ("pvc", "data")];
    let success = sample(&s, "backup_ns_last_success_timestamp_seconds", &group).unwrap();
    let record = record_of(&w);
    let recorded = chrono::DateTime::parse_from_rfc3339(&record["backup-ns.sh/last-success"])
        .unwrap()
        .timestamp();
    assert_eq!(success as i64, recorded);
    let mut ok = group.to_vec();
    ok.push(("outcome", "succeeded"));
    assert_eq!(sample(&s, "backup_ns_attempts_total", &ok), Some(1.0));
    let pushes = pushgateway.requests();
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(pushes[0].method, "PUT");
    assert_eq!(
        pushes[0].path,
        format!("/metrics/job/backup-ns/namespace/{NS}/pvc/data")
    );
    let seen = hooks.requests();
    let paths: Vec<&str> = seen.iter().map(|r| r.path.as_str()).collect();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/ping/SECRET-UUID/start")),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/ping/SECRET-UUID") && !p.contains("/start")),
        "{paths:?}"
    );
    assert!(!paths.iter().any(|p| p.starts_with("/hook")), "{paths:?}");

    // A failure before any snapshot (no ready pod): the webhooks and /fail, with the error;
    // the push still carries the last success; the broken webhook changes nothing.
    let mut vars = vec![("BAK_DB_POSTGRES", "true")];
    vars.extend(sinks);
    let run = w.run(&vars);
    assert_eq!(run.code, 1, "{run:?}");
    let s = scrape(&textfile);
    assert_eq!(
        sample(&s, "backup_ns_last_success_timestamp_seconds", &group),
        Some(success),
        "a failed attempt keeps the last success"
    );
    let mut failed = group.to_vec();
    failed.push(("outcome", "failed"));
    assert_eq!(sample(&s, "backup_ns_attempts_total", &failed), Some(1.0));
    let seen = hooks.requests();
    let webhook = seen
        .iter()
        .find(|r| r.path == "/hook/SECRET-TOKEN")
        .expect("the webhook got the failure");
    let body: Value = serde_json::from_str(&webhook.body).unwrap();
    assert_eq!(body["outcome"], "failure", "{body}");
    assert_eq!(body["pvc"], "data");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("deployment/app-base"),
        "{body}"
    );
    let fail = seen
        .iter()
        .find(|r| r.path.starts_with("/ping/SECRET-UUID/fail"))
        .expect("a /fail ping");
    assert!(fail.body.contains("deployment/app-base"), "{}", fail.body);
    assert!(
        !broken.requests().is_empty(),
        "the broken webhook was tried"
    );
    assert!(
        !run.stderr.contains("SECRET"),
        "secrets in the log: {run:?}"
    );
    let vs_annotations: Vec<String> = w
        .snapshots()
        .iter()
        .map(|v| v["metadata"]["annotations"].to_string())
        .collect();
    assert!(
        vs_annotations.iter().all(|a| !a.contains("SECRET")),
        "secrets in env-config: {vs_annotations:?}"
    );
}
