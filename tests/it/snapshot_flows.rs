//! `restore dump`, `download SNAPSHOT` and `verify` end to end: the binary against the API
//! emulation, whose snapshot controller keeps a copy of the PVC's directory and whose kubelet
//! runs the helper pods' exec on this machine, with a real PostgreSQL behind the "database
//! container". A backup is made by `create` first, so the dump read back is one our own dump
//! script wrote.

use std::fs;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::create::{pg_database, pg_vars, tool_path, Run, World, NS};
use crate::emu::ExecEnv;
use crate::support::{unprivileged, wait_until, Mariadb, Postgres};

/// The database pod mounts PVC `data` at the dump directory, as a StatefulSet's pod mounts its
/// data volume; the emulation knows that directory as the PVC's data.
fn mount_data(w: &World) {
    let mut pod = w
        .emu
        .get("v1", "pods", Some(NS), "app-base-1")
        .expect("app pod");
    let dir = w.dump_dir().display().to_string();
    pod["spec"]["volumes"] =
        json!([{ "name": "data", "persistentVolumeClaim": { "claimName": "data" } }]);
    pod["spec"]["containers"][0]["volumeMounts"] = json!([{ "name": "data", "mountPath": dir }]);
    w.emu.replace(pod);
    // The class PVC `data` names: temporary PVCs restored from its snapshots get it too.
    w.emu.create(crate::emu::fixtures::storage_class(
        "emu-csi",
        "Immediate",
        true,
    ));
    w.emu.set_pvc_dir(NS, "data", w.dump_dir());
    w.emu.set_kubelet_exec(ExecEnv {
        path: Some(tool_path()),
        ..Default::default()
    });
}

/// The uid the helper runs as here: the unprivileged user the test databases run as (initdb
/// refuses root; 999 need not exist on this machine).
fn helper_uid() -> String {
    unprivileged().map_or(65534, |(uid, _)| uid).to_string()
}

/// A world with the app pod, its volume and a database `db` backed up once by `create`;
/// returns it with the variables of that backup (which the snapshot's env-config also has).
async fn backed_up(pg: &Postgres, db: &str) -> (World, Vec<(String, String)>) {
    let w = World::new().await;
    w.app("postgres", &pg.env());
    mount_data(&w);
    let db = pg_database(pg, db);
    let dump = w.dump_file("dump.sql.gz").display().to_string();
    let port = pg.port.to_string();
    let vars: Vec<(String, String)> = pg_vars(&dump, &db, &port)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let r = run(&w, &["create", "-o", "json"], &vars);
    assert_eq!(r.code, 0, "{r:?}");
    (w, vars)
}

fn run(w: &World, args: &[&str], vars: &[(String, String)]) -> Run {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Run::from(
        w.command_with(args, &vars)
            .stdin(Stdio::null())
            .output()
            .expect("run backup-ns"),
    )
}

/// Only what a person would type after the backup: the namespace is the world's, the rest
/// comes from the snapshot's env-config.
fn no_vars() -> Vec<(String, String)> {
    Vec::new()
}

/// The rows of `app.t`, in order.
fn rows(pg: &Postgres, db: &str) -> String {
    pg.psql_in(
        db,
        "SELECT id, coalesce(v, '<null>') FROM app.t ORDER BY id",
    )
}

/// Scratch objects (helper pods and temporary PVCs) left in the namespace.
fn scratch(w: &World) -> Vec<String> {
    let mut left = Vec::new();
    for kind in ["pods", "persistentvolumeclaims"] {
        for o in w.emu.list(kind, Some(NS)) {
            if o["metadata"]["labels"]["backup-ns.sh/scratch"].is_string() {
                left.push(format!(
                    "{kind}/{}",
                    o["metadata"]["name"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    left
}

fn no_scratch_soon(w: &World) -> bool {
    wait_until(Duration::from_secs(10), || scratch(w).is_empty())
}

fn snapshot_name(w: &World) -> String {
    let snaps = w.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    snaps[0]["metadata"]["name"].as_str().unwrap().to_owned()
}

fn snapshot_labels(w: &World, name: &str) -> Value {
    w.emu
        .get(
            "snapshot.storage.k8s.io/v1",
            "volumesnapshots",
            Some(NS),
            name,
        )
        .expect("snapshot")["metadata"]["labels"]
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_dump_puts_the_backup_back_over_the_live_database() {
    let pg = Postgres::shared();
    let (w, _) = backed_up(pg, "rd_over").await;
    let before = rows(pg, "rd_over");
    pg.psql_in(
        "rd_over",
        "DELETE FROM app.t WHERE id = 1; INSERT INTO app.t VALUES (9, 'after the backup'); \
         CREATE TABLE app.newer (x int);",
    );
    let live = rows(pg, "rd_over");
    // A table created since the backup blocks the dump's `DROP SCHEMA app` (pg_dump --clean
    // drops without CASCADE): the restore fails as a whole and changes nothing.
    let args = [
        "restore", "dump", "latest", "--pvc", "data", "--yes", "-o", "json",
    ];
    let r = run(&w, &args, &no_vars());
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("--into-database"), "a way out: {r:?}");
    assert_eq!(rows(pg, "rd_over"), live, "rolled back");
    assert!(no_scratch_soon(&w), "{:?}", scratch(&w));
    // Without it, the backup comes back over the live rows. No --helper-uid: the helper runs as
    // the image's postgres user, found in the database container.
    pg.psql_in("rd_over", "DROP TABLE app.newer;");
    let r = run(&w, &args, &no_vars());
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        rows(pg, "rd_over"),
        before,
        "the rows as they were at the backup"
    );
    assert_eq!(r.result["restored"], true);
    assert_eq!(r.result["snapshot"], snapshot_name(&w).as_str());
    assert_eq!(r.result["dumpPath"], "dump.sql.gz");
    assert_eq!(r.result["database"], "rd_over");
    assert!(r.result["sha256"].as_str().unwrap().len() == 64, "{r:?}");
    assert!(
        no_scratch_soon(&w),
        "helper pod and PVC deleted: {:?}",
        scratch(&w)
    );
    // The snapshotted PVC was never touched: no pod but ours mounted it, nothing wrote to it.
    w.emu.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread")]
async fn into_database_restores_next_to_the_live_data() {
    let pg = Postgres::shared();
    let (w, _) = backed_up(pg, "rd_into").await;
    let before = rows(pg, "rd_into");
    pg.psql_in("rd_into", "INSERT INTO app.t VALUES (7, 'live only');");
    let live = rows(pg, "rd_into");
    let uid = helper_uid();
    let r = run(
        &w,
        &[
            "restore",
            "dump",
            "latest",
            "--pvc",
            "data",
            "--into-database",
            "rd_into_copy",
            "--yes",
            "--helper-uid",
            &uid,
            "-o",
            "json",
        ],
        &no_vars(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(rows(pg, "rd_into_copy"), before);
    assert_eq!(rows(pg, "rd_into"), live, "the live database is untouched");
    assert_eq!(r.result["intoDatabase"], true);
    assert!(no_scratch_soon(&w));
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_dump_asks_first_and_dry_run_changes_nothing() {
    let pg = Postgres::shared();
    let (w, _) = backed_up(pg, "rd_ask").await;
    w.emu.clear_requests();
    // Not a terminal and no --yes: refused before anything is created.
    let r = run(
        &w,
        &["restore", "dump", "latest", "--pvc", "data"],
        &no_vars(),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--yes"), "{r:?}");
    assert!(w.emu.requests().is_empty(), "no request at all");
    // --dry-run shows the workbench and creates nothing.
    let r = run(
        &w,
        &[
            "restore",
            "dump",
            "latest",
            "--pvc",
            "data",
            "--dry-run",
            "-o",
            "json",
        ],
        &no_vars(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result["dryRun"], true);
    let manifests = r.result["manifests"].as_array().expect("manifests");
    assert_eq!(manifests[0]["kind"], "PersistentVolumeClaim");
    assert_eq!(
        manifests[0]["spec"]["dataSource"]["name"],
        snapshot_name(&w).as_str()
    );
    assert_eq!(manifests[1]["kind"], "Pod");
    assert_eq!(manifests[1]["spec"]["containers"][0]["image"], "emu");
    assert!(scratch(&w).is_empty());
    assert_eq!(w.emu.count(crate::emu::Verb::Create, "pods"), 0);
    // The database pod is read once, in the LIST that chose it.
    assert_eq!(w.emu.count(crate::emu::Verb::Get, "pods"), 0);
    assert_eq!(
        w.emu
            .count(crate::emu::Verb::Create, "persistentvolumeclaims"),
        0
    );
    // The one exec reads which uid the image's database user has; nothing is written.
    assert_eq!(w.exec_scripts(), ["backup-ns-user-id"]);
    // Bad input names itself and exits 2.
    for (args, name) in [
        (vec!["restore", "dump", "latest"], "BAK_PVC_NAME"),
        (
            vec![
                "restore",
                "dump",
                "latest",
                "--pvc",
                "data",
                "--into-database",
                "",
                "--yes",
            ],
            "BAK_RESTORE_INTO_DATABASE",
        ),
        (
            vec![
                "restore",
                "dump",
                "latest",
                "--pvc",
                "data",
                "--dump-path",
                "/abs",
                "--yes",
            ],
            "BAK_RESTORE_DUMP_PATH",
        ),
        (
            vec![
                "restore",
                "dump",
                "latest",
                "--pvc",
                "data",
                "--helper-uid",
                "0",
                "--yes",
            ],
            "BAK_HELPER_UID",
        ),
    ] {
        let r = run(&w, &args, &no_vars());
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(name), "{args:?}: {r:?}");
    }
    assert!(scratch(&w).is_empty());
}

/// Takes a volume-only snapshot of the dump directory as it is now (a dump made unusable after
/// the fact), returning its name. The database settings are then given as variables.
fn snapshot_as_is(w: &World) -> String {
    let before: Vec<String> = w
        .snapshots()
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    let vars = vec![("BAK_DB_SKIP".to_owned(), "true".to_owned())];
    let r = run(w, &["create", "-o", "json"], &vars);
    assert_eq!(r.code, 0, "{r:?}");
    w.snapshots()
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap().to_owned())
        .find(|n| !before.contains(n))
        .expect("a new snapshot")
}

fn with_db(vars: &[(String, String)]) -> Vec<(String, String)> {
    let mut v = vars.to_vec();
    v.push(("BAK_DB_SKIP".into(), "false".into()));
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_or_missing_dump_in_the_snapshot_changes_nothing() {
    let pg = Postgres::shared();
    let (w, vars) = backed_up(pg, "rd_bad").await;
    let dump = w.dump_file("dump.sql.gz");
    let good = fs::read(&dump).unwrap();
    pg.psql_in("rd_bad", "INSERT INTO app.t VALUES (5, 'live');");
    let live = rows(pg, "rd_bad");
    let uid = helper_uid();

    // Truncated: the first half of the gzip stream.
    fs::write(&dump, &good[..good.len() / 2]).unwrap();
    let truncated = snapshot_as_is(&w);
    let r = run(
        &w,
        &[
            "restore",
            "dump",
            &truncated,
            "--yes",
            "--helper-uid",
            &uid,
            "-o",
            "json",
        ],
        &with_db(&vars),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not touched"), "{r:?}");
    assert_eq!(r.result["restored"], false);
    assert_eq!(rows(pg, "rd_bad"), live);
    assert!(no_scratch_soon(&w), "{:?}", scratch(&w));

    // Missing.
    fs::remove_file(&dump).unwrap();
    let missing = snapshot_as_is(&w);
    let r = run(
        &w,
        &["restore", "dump", &missing, "--yes", "--helper-uid", &uid],
        &with_db(&vars),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not found"), "{r:?}");
    assert_eq!(rows(pg, "rd_bad"), live);
    assert!(no_scratch_soon(&w), "{:?}", scratch(&w));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dump_that_fails_half_way_is_rolled_back() {
    let pg = Postgres::shared();
    let (w, vars) = backed_up(pg, "rd_half").await;
    // A whole, well-formed dump (gzip and trailer fine) whose SQL fails in the middle.
    let dump = w.dump_file("dump.sql.gz");
    let text = crate::create::gunzip(&dump);
    let cut = text.find("COPY app.t").expect("the table's data");
    let broken = format!(
        "{}INSERT INTO app.t VALUES (100, 'half');\nSELECT no_such_function();\n{}",
        &text[..cut],
        &text[cut..]
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, broken.as_bytes()).unwrap();
    fs::write(&dump, gz.finish().unwrap()).unwrap();
    let snap = snapshot_as_is(&w);
    pg.psql_in("rd_half", "INSERT INTO app.t VALUES (6, 'live');");
    let live = rows(pg, "rd_half");
    let tables = pg.psql_in(
        "rd_half",
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'app'",
    );
    let uid = helper_uid();
    let r = run(
        &w,
        &["restore", "dump", &snap, "--yes", "--helper-uid", &uid],
        &with_db(&vars),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("rolled back"), "{r:?}");
    assert_eq!(
        rows(pg, "rd_half"),
        live,
        "the table was dropped and refilled only inside the transaction"
    );
    assert_eq!(
        pg.psql_in(
            "rd_half",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'app'"
        ),
        tables
    );
    assert!(no_scratch_soon(&w));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_helper_that_never_runs_fails_clearly_and_is_removed() {
    let pg = Postgres::shared();
    let (w, _) = backed_up(pg, "rd_pull").await;
    w.emu
        .pods()
        .image_pull_fails_matching("^backup-ns-restore-");
    let uid = helper_uid();
    let r = run(
        &w,
        &[
            "restore",
            "dump",
            "latest",
            "--pvc",
            "data",
            "--yes",
            "--helper-uid",
            &uid,
        ],
        &no_vars(),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("ImagePullBackOff"), "{r:?}");
    assert!(no_scratch_soon(&w), "{:?}", scratch(&w));
}

#[tokio::test(flavor = "multi_thread")]
async fn leftovers_of_a_killed_run_are_removed_once_expired() {
    let pg = Postgres::shared();
    let (w, _) = backed_up(pg, "rd_left").await;
    let leftover = |name: &str, expires: &str| {
        let meta = json!({
            "name": name, "namespace": NS,
            "labels": { "backup-ns.sh/scratch": "verify", "app.kubernetes.io/managed-by": "backup-ns" },
            "annotations": { "backup-ns.sh/scratch-expires": expires },
        });
        w.emu.create(json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "helper", "image": "emu"}]}, "status": {"phase": "Running"}}));
        w.emu.create(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound"}}));
    };
    leftover("backup-ns-verify-old", "2020-01-01T00:00:00Z");
    leftover("backup-ns-verify-busy", "2999-01-01T00:00:00Z");
    let uid = helper_uid();
    let r = run(
        &w,
        &[
            "download",
            "latest",
            "--pvc",
            "data",
            "--helper-uid",
            &uid,
            "-f",
            "-",
        ],
        &no_vars(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    // The expired leftover and the run's own workbench go; another run's workbench, not yet
    // expired, is not ours to delete.
    let busy = [
        "pods/backup-ns-verify-busy",
        "persistentvolumeclaims/backup-ns-verify-busy",
    ];
    assert!(
        wait_until(Duration::from_secs(10), || scratch(&w) == busy),
        "{:?}",
        scratch(&w)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_restore_rolls_back_and_cleans_up() {
    let pg = Postgres::shared();
    // A dump big enough to take a few seconds to load.
    let (w, vars) = backed_up(pg, "rd_term").await;
    pg.psql_in(
        "rd_term",
        "CREATE TABLE app.big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 1500000) g;",
    );
    let r = run(&w, &["postgres", "dump"], &vars);
    assert_eq!(r.code, 0, "{r:?}");
    let snap = snapshot_as_is(&w);
    pg.psql_in(
        "rd_term",
        "DROP TABLE app.big; INSERT INTO app.t VALUES (8, 'live');",
    );
    let live = rows(pg, "rd_term");
    let uid = helper_uid();
    let vars: Vec<(String, String)> = with_db(&vars);
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let child = w
        .command_with(
            &["restore", "dump", &snap, "--yes", "--helper-uid", &uid],
            &env,
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the load runs in the database container.
    assert!(
        wait_until(Duration::from_secs(60), || w
            .exec_scripts()
            .iter()
            .any(|s| s == "backup-ns-postgres-restore")),
        "the load never started"
    );
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(no_scratch_soon(&w), "{:?}", scratch(&w));
    // The server rolls the transaction back once the script's psql is gone.
    assert!(
        wait_until(Duration::from_secs(30), || rows(pg, "rd_term") == live
            && pg.psql_in(
                "rd_term",
                "SELECT count(*) FROM pg_tables WHERE tablename = 'big'"
            ) == "0"),
        "the database is as it was"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn download_from_a_snapshot_is_the_dump_of_that_time() {
    let pg = Postgres::shared();
    let (w, vars) = backed_up(pg, "dl_snap").await;
    let at_backup = fs::read(w.dump_file("dump.sql.gz")).unwrap();
    // A newer live dump must not be what comes back.
    pg.psql_in("dl_snap", "INSERT INTO app.t VALUES (4, 'later');");
    assert_eq!(run(&w, &["postgres", "dump"], &vars).code, 0);
    assert_ne!(fs::read(w.dump_file("dump.sql.gz")).unwrap(), at_backup);
    let out: PathBuf = w.dir.path().join("downloaded.sql.gz");
    let out_s = out.display().to_string();
    let uid = helper_uid();
    let r = run(
        &w,
        &[
            "download",
            "latest",
            "--pvc",
            "data",
            "-f",
            &out_s,
            "--helper-uid",
            &uid,
            "-o",
            "json",
        ],
        &no_vars(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fs::read(&out).unwrap(), at_backup);
    assert_eq!(r.result["bytes"].as_u64(), Some(at_backup.len() as u64));
    assert_eq!(r.result["snapshot"], snapshot_name(&w).as_str());
    assert!(no_scratch_soon(&w));
    // The app is gone (scaled down, deleted): --dump-path says where the dump is.
    w.emu.delete("v1", "pods", Some(NS), "app-base-1");
    w.emu.delete("v1", "pods", Some(NS), "app-base-0");
    let r = run(
        &w,
        &[
            "download",
            "latest",
            "--pvc",
            "data",
            "-f",
            &out_s,
            "--helper-uid",
            &uid,
        ],
        &no_vars(),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("--dump-path"), "{r:?}");
    fs::remove_file(&out).unwrap();
    let r = run(
        &w,
        &[
            "download",
            "latest",
            "--pvc",
            "data",
            "-f",
            &out_s,
            "--helper-uid",
            &uid,
            "--dump-path",
            "dump.sql.gz",
            "-o",
            "json",
        ],
        &no_vars(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fs::read(&out).unwrap(), at_backup);
    assert!(no_scratch_soon(&w));
    // Neither a snapshot nor --live, or both: exit 2.
    assert_eq!(run(&w, &["download"], &no_vars()).code, 2);
    assert_eq!(
        run(
            &w,
            &["download", "latest", "--pvc", "data", "--live"],
            &no_vars()
        )
        .code,
        2
    );
}

fn verify(w: &World, extra: &[&str]) -> Run {
    let uid = helper_uid();
    let mut args = vec![
        "verify",
        "latest",
        "--pvc",
        "data",
        "--helper-uid",
        &uid,
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    run(w, &args, &no_vars())
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_loads_the_dump_in_a_scratch_server_and_labels_the_snapshot() {
    let pg = Postgres::shared();
    let (w, _) = backed_up(pg, "vf_ok").await;
    let name = snapshot_name(&w);
    let r = verify(&w, &["--expect", "SELECT count(*) FROM app.t=3"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result["outcome"], "verified");
    assert_eq!(r.result["tables"], json!([{ "table": "app.t", "rows": 3 }]));
    assert_eq!(r.result["expectations"][0]["ok"], true);
    assert_eq!(r.result["expectations"][0]["value"], "3");
    let labels = snapshot_labels(&w, &name);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(labels["backup-ns.sh/verified"], today.as_str());
    assert!(labels["backup-ns.sh/verify-failed"].is_null());
    assert!(no_scratch_soon(&w));
    // A failed expectation fails the verification and swaps the label.
    let r = verify(&w, &["--expect", "SELECT count(*) FROM app.t=4"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.result["outcome"], "failed");
    assert!(
        r.result["reason"].as_str().unwrap().contains(">= 4"),
        "{r:?}"
    );
    let labels = snapshot_labels(&w, &name);
    assert_eq!(labels["backup-ns.sh/verify-failed"], today.as_str());
    assert!(labels["backup-ns.sh/verified"].is_null());
    // `list` shows it.
    let out = w.command_with(&["list"], &[]).output().expect("list");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("VERIFIED"), "{text}");
    assert!(text.contains(&format!("failed {today}")), "{text}");
    assert!(no_scratch_soon(&w));
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_of_a_corrupt_dump_fails_and_says_why() {
    let pg = Postgres::shared();
    let (w, vars) = backed_up(pg, "vf_bad").await;
    let dump = w.dump_file("dump.sql.gz");
    let good = fs::read(&dump).unwrap();
    fs::write(&dump, &good[..good.len() - 20]).unwrap();
    let snap = snapshot_as_is(&w);
    let uid = helper_uid();
    let r = run(
        &w,
        &["verify", &snap, "--helper-uid", &uid, "-o", "json"],
        &with_db(&vars),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.result["outcome"], "failed");
    assert!(
        r.result["reason"].as_str().unwrap().contains("gzip"),
        "{r:?}"
    );
    assert_eq!(
        snapshot_labels(&w, &snap)["backup-ns.sh/verify-failed"],
        chrono::Utc::now().format("%Y-%m-%d").to_string().as_str()
    );
    assert!(no_scratch_soon(&w));
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_of_a_volume_only_snapshot_checks_files() {
    let pg = Postgres::shared();
    let (w, _) = backed_up(pg, "vf_vol").await;
    fs::create_dir_all(w.dump_dir().join("uploads")).unwrap();
    fs::write(w.dump_dir().join("uploads/a.txt"), "hello").unwrap();
    let snap = snapshot_as_is(&w);
    let uid = helper_uid();
    let r = run(
        &w,
        &[
            "verify",
            &snap,
            "--expect-file",
            "uploads/a.txt",
            "--helper-uid",
            &uid,
            "-o",
            "json",
        ],
        &no_vars(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result["kind"], "volume");
    assert_eq!(r.result["files"][0]["exists"], true);
    assert_eq!(r.result["files"][0]["bytes"], 5);
    let r = run(
        &w,
        &[
            "verify",
            &snap,
            "--expect-file",
            "uploads/missing.txt",
            "--helper-uid",
            &uid,
            "-o",
            "json",
        ],
        &no_vars(),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.result["reason"]
        .as_str()
        .unwrap()
        .contains("uploads/missing.txt"));
    // Expectations need a database.
    let r = run(
        &w,
        &[
            "verify",
            &snap,
            "--expect",
            "SELECT 1=1",
            "--helper-uid",
            &uid,
        ],
        &no_vars(),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(no_scratch_soon(&w));
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_backup_verifies_and_restores_next_to_and_over_the_live_data() {
    let my = Mariadb::shared();
    let w = World::new().await;
    w.app("mysql", &my.env());
    mount_data(&w);
    // mariadbd for the verify's scratch server is in /usr/sbin.
    w.emu.set_kubelet_exec(ExecEnv {
        path: Some(format!("{}:/usr/sbin", tool_path())),
        ..Default::default()
    });
    my.createdb("rd_my");
    my.mysql_in(
        "rd_my",
        "SET NAMES utf8mb4; CREATE TABLE `order items` (id INT PRIMARY KEY, v TEXT) CHARACTER SET utf8mb4; \
         INSERT INTO `order items` VALUES (1, 'grüß 👋'), (2, 'it''s');",
    );
    let contents = |db: &str| {
        my.mysql_in(
            db,
            "SET NAMES utf8mb4; SELECT id, v FROM `order items` ORDER BY id",
        )
    };
    let before = contents("rd_my");
    let dump = w.dump_file("mysql.sql.gz").display().to_string();
    let port = my.port.to_string();
    let vars: Vec<(String, String)> = [
        ("BAK_DB_MYSQL", "true"),
        ("BAK_DB_MYSQL_DUMP_FILE", dump.as_str()),
        ("BAK_DB_MYSQL_PORT", port.as_str()),
        ("BAK_DB_MYSQL_DB", "rd_my"),
        ("BAK_DB_MYSQL_EXEC_CONTAINER", "mysql"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec();
    let r = run(&w, &["create", "-o", "json"], &vars);
    assert_eq!(r.code, 0, "{r:?}");

    let uid = helper_uid();
    let r = run(
        &w,
        &[
            "verify",
            "latest",
            "--pvc",
            "data",
            "--helper-uid",
            &uid,
            "--expect",
            "SELECT count(*) FROM `order items`=2",
            "-o",
            "json",
        ],
        &no_vars(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result["kind"], "mysql");
    assert_eq!(
        r.result["tables"],
        json!([{ "table": "order items", "rows": 2 }])
    );

    my.mysql_in("rd_my", "DELETE FROM `order items` WHERE id = 1");
    let r = run(
        &w,
        &[
            "restore",
            "dump",
            "latest",
            "--pvc",
            "data",
            "--into-database",
            "rd_my_copy",
            "--yes",
        ],
        &no_vars(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        !r.stderr.contains("cannot roll back DDL"),
        "next to it, nothing is at risk"
    );
    assert_eq!(contents("rd_my_copy"), before);
    assert_ne!(contents("rd_my"), before, "the live database is untouched");
    // Over the live database: MySQL cannot roll back DDL, and says so before it loads.
    let r = run(
        &w,
        &["restore", "dump", "latest", "--pvc", "data", "--yes"],
        &no_vars(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("cannot roll back DDL"), "{r:?}");
    assert_eq!(contents("rd_my"), before);
    assert!(no_scratch_soon(&w), "{:?}", scratch(&w));
}
