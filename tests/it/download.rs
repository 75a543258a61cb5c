//! `download --live` and `postgres dump|info` against the emulation, with a pod whose exec
//! runs here with a real PostgreSQL's tools and environment (the world of `create.rs`).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::create::{gunzip, pg_database, pg_vars, Run, World, NS};
use crate::support::Postgres;

/// `sha256sum FILE`: an independent hash to hold the printed one against.
fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A world with the app pod and a database; returns it with the dump path and the env.
async fn world(pg: &Postgres, db: &str) -> (World, String, Vec<(String, String)>) {
    let w = World::new().await;
    w.app("postgres", &pg.env());
    let db = pg_database(pg, db);
    let dump = w.dump_file("dump.sql.gz").display().to_string();
    let port = pg.port.to_string();
    let vars = pg_vars(&dump, &db, &port)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (w, dump, vars)
}

fn raw(w: &World, args: &[&str], vars: &[(String, String)]) -> Output {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    w.command_with(args, &vars).output().expect("run backup-ns")
}

fn run(w: &World, args: &[&str], vars: &[(String, String)]) -> Run {
    Run::from(raw(w, args, vars))
}

/// Files in `dir` other than `keep`: a download must leave no temporary file behind.
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_dump_writes_the_dump_and_creates_no_snapshot() {
    let pg = Postgres::shared();
    let (w, dump, vars) = world(pg, "dl_dump").await;
    let r = run(&w, &["postgres", "dump", "-o", "json"], &vars);
    assert_eq!(r.code, 0, "{r:?}");
    let text = gunzip(Path::new(&dump));
    assert!(text.contains("PostgreSQL database dump complete"));
    assert!(text.contains("grüß dich"));
    assert_eq!(r.result["file"], dump.as_str());
    assert_eq!(
        r.result["bytes"].as_u64(),
        Some(fs::metadata(&dump).unwrap().len())
    );
    assert_eq!(
        w.exec_scripts(),
        [
            "backup-ns-postgres-check",
            "backup-ns-space",
            "backup-ns-postgres-dump"
        ]
    );
    assert!(w.snapshots().is_empty(), "no snapshot");
    assert!(w.emu.list("leases", Some(NS)).is_empty(), "no lease");
}

#[tokio::test(flavor = "multi_thread")]
async fn download_live_to_a_file_is_the_dump_with_its_sha256() {
    let pg = Postgres::shared();
    let (w, dump, vars) = world(pg, "dl_file").await;
    assert_eq!(run(&w, &["postgres", "dump"], &vars).code, 0);
    let out_dir = w.dir.path().join("local");
    fs::create_dir_all(&out_dir).unwrap();
    let out_path = out_dir.join("copy.sql.gz");
    // An existing file is replaced by the verified download.
    fs::write(&out_path, "old").unwrap();
    let out_s = out_path.display().to_string();
    let r = run(
        &w,
        &["download", "--live", "-f", &out_s, "-o", "json"],
        &vars,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fs::read(&out_path).unwrap(), fs::read(&dump).unwrap());
    assert_eq!(r.result["sha256"], sha256sum(&out_path).as_str());
    assert_eq!(
        r.result["bytes"].as_u64(),
        Some(fs::metadata(&out_path).unwrap().len())
    );
    assert_eq!(r.result["source"], dump.as_str());
    assert!(leftovers(&out_dir, &["copy.sql.gz"]).is_empty());
    // Text output names the size and the hash too.
    let out = raw(&w, &["download", "--live", "-f", &out_s], &vars);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&sha256sum(&out_path)), "{stdout}");
    let size = fs::metadata(&out_path).unwrap().len();
    assert!(stdout.contains(&format!("{size} bytes")), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn download_live_to_stdout() {
    let pg = Postgres::shared();
    let (w, dump, vars) = world(pg, "dl_stdout").await;
    assert_eq!(run(&w, &["postgres", "dump"], &vars).code, 0);
    let out = raw(&w, &["download", "--live", "-f", "-", "-o", "json"], &vars);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, fs::read(&dump).unwrap(), "stdout is the dump");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&sha256sum(Path::new(&dump))), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_or_corrupt_dump_is_refused_and_leaves_no_file() {
    let pg = Postgres::shared();
    let (w, dump, vars) = world(pg, "dl_corrupt").await;
    assert_eq!(run(&w, &["postgres", "dump"], &vars).code, 0);
    let whole = fs::read(&dump).unwrap();
    let out_dir = w.dir.path().join("local");
    fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("copy.sql.gz");
    let out_s = out.display().to_string();
    fs::write(&out, "previous download").unwrap();
    let truncated = whole[..whole.len() - 10].to_vec();
    let mut flipped = whole.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    for (what, bytes) in [
        ("truncated", truncated),
        ("corrupt", flipped),
        ("not gzip", b"CREATE TABLE x (id int);\n".to_vec()),
    ] {
        fs::write(&dump, &bytes).unwrap();
        let r = run(
            &w,
            &["download", "--live", "-f", &out_s, "-o", "json"],
            &vars,
        );
        assert_eq!(r.code, 1, "{what}: {r:?}");
        assert!(r.result["error"].as_str().is_some(), "{what}: {r:?}");
        assert_eq!(
            fs::read_to_string(&out).unwrap(),
            "previous download",
            "{what}: the existing file is untouched"
        );
        assert!(leftovers(&out_dir, &["copy.sql.gz"]).is_empty(), "{what}");
    }
    // No existing file: none is created.
    fs::remove_file(&out).unwrap();
    let r = run(&w, &["download", "--live", "-f", &out_s], &vars);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(leftovers(&out_dir, &[]).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_dump_file_exits_1_naming_it() {
    let pg = Postgres::shared();
    let (w, dump, vars) = world(pg, "dl_missing").await;
    let out_dir = w.dir.path().join("local");
    fs::create_dir_all(&out_dir).unwrap();
    let out_s = out_dir.join("x.sql.gz").display().to_string();
    let r = run(&w, &["download", "--live", "-f", &out_s], &vars);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!("dump file {dump} not found")),
        "{r:?}"
    );
    assert!(leftovers(&out_dir, &[]).is_empty());
    // --dry-run (one of `create`'s flags) finds the pod and reads nothing.
    let execs = w.exec_scripts().len();
    let r = run(
        &w,
        &[
            "download",
            "--live",
            "--dry-run",
            "-f",
            &out_s,
            "-o",
            "json",
        ],
        &vars,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.result["pod"], "app-base-1", "{r:?}");
    assert!(r.result["bytes"].is_null(), "{r:?}");
    assert_eq!(w.exec_scripts().len(), execs, "no exec in a dry run");
    assert!(leftovers(&out_dir, &[]).is_empty());
    // Neither a snapshot nor --live: a usage error naming both.
    let r = run(&w, &["download", "-f", &out_s], &vars);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("SNAPSHOT") && r.stderr.contains("--live"),
        "{r:?}"
    );
    // A target directory that does not exist, or two databases: usage errors before any exec.
    let execs = w.exec_scripts().len();
    let r = run(
        &w,
        &["download", "--live", "-f", "/nonexistent/dir/x.gz"],
        &vars,
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("BAK_DOWNLOAD_FILE (--file)"), "{r:?}");
    assert!(r.stderr.contains("/nonexistent/dir"), "{r:?}");
    let mut both = vars.clone();
    both.push(("BAK_DB_MYSQL".into(), "true".into()));
    let r = run(&w, &["download", "--live", "-f", &out_s], &both);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("takes one database"), "{r:?}");
    assert_eq!(w.exec_scripts().len(), execs, "no exec for bad input");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_info_reports_version_sizes_and_age() {
    let pg = Postgres::shared();
    let (w, _dump, vars) = world(pg, "dl_info").await;
    let r = run(&w, &["postgres", "info", "-o", "json"], &vars);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.result["serverVersion"]
            .as_str()
            .unwrap()
            .starts_with("15"),
        "{r:?}"
    );
    assert!(r.result["databaseBytes"].as_u64().unwrap() > 0);
    assert!(r.result["dumpBytes"].is_null(), "no dump yet: {r:?}");
    assert_eq!(run(&w, &["postgres", "dump"], &vars).code, 0);
    let r = run(&w, &["postgres", "info", "-o", "json"], &vars);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.result["dumpBytes"].as_u64(),
        Some(fs::metadata(w.dump_file("dump.sql.gz")).unwrap().len())
    );
    assert!(r.result["dumpAgeSeconds"].as_u64().unwrap() < 600, "{r:?}");
    assert_eq!(r.result["pod"], "app-base-1");
}

/// A 100 MB dump streams through in chunks: backup-ns's peak RSS (its own `VmHWM`) stays far
/// below the size of the dump. The dump is two gzip members (random bytes, then the
/// trailer), as `cat a.gz b.gz` makes and `gzip -d` reads.
#[tokio::test(flavor = "multi_thread")]
async fn a_100_mb_download_keeps_memory_flat() {
    const MB: usize = 1024 * 1024;
    let pg = Postgres::shared();
    let (w, dump, vars) = world(pg, "dl_big").await;
    let status = Command::new("sh")
        .arg("-c")
        .arg(
            "head -c 104857600 /dev/urandom | gzip -1 > \"$1\" && \
             printf -- '--\\n-- PostgreSQL database dump complete\\n--\\n' | gzip >> \"$1\"",
        )
        .arg("sh")
        .arg(&dump)
        .status()
        .unwrap();
    assert!(status.success());
    let size = fs::metadata(&dump).unwrap().len();
    assert!(size > 100 * MB as u64);
    let out = w.dir.path().join("big.sql.gz");
    let out_s = out.display().to_string();
    let v: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let child = w
        .command_with(&["download", "--live", "-f", &out_s, "-o", "json"], &v)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (status, peak_kib) = crate::support::wait_peak_rss(child);
    assert!(status.success(), "{status:?}");
    assert_eq!(fs::metadata(&out).unwrap().len(), size);
    let peak = peak_kib as usize * 1024;
    eprintln!("download of {size} bytes: peak RSS {} MiB", peak / MB);
    assert!(
        peak < 60 * MB,
        "peak RSS {} MiB for a {} MiB dump",
        peak / MB,
        size as usize / MB
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_dump_info_and_download() {
    let my = crate::support::Mariadb::shared();
    let w = World::new().await;
    w.app("mysql", &my.env());
    my.createdb("dl_my");
    my.mysql_in(
        "dl_my",
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b');",
    );
    let dump = w.dump_file("mysql.sql.gz").display().to_string();
    let port = my.port.to_string();
    let vars: Vec<(String, String)> = [
        ("BAK_DB_MYSQL_DUMP_FILE", dump.as_str()),
        ("BAK_DB_MYSQL_PORT", &port),
        ("BAK_DB_MYSQL_DB", "dl_my"),
        ("BAK_DB_MYSQL_EXEC_CONTAINER", "mysql"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let r = run(&w, &["mysql", "dump", "-o", "json"], &vars);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(gunzip(Path::new(&dump)).contains("-- Dump completed"));
    assert!(w.snapshots().is_empty());

    let r = run(&w, &["mysql", "info", "-o", "json"], &vars);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.result["serverVersion"]
            .as_str()
            .unwrap()
            .contains("MariaDB"),
        "{r:?}"
    );
    assert!(r.result["databaseBytes"].as_u64().unwrap() > 0, "{r:?}");
    assert_eq!(
        r.result["dumpBytes"].as_u64(),
        Some(fs::metadata(&dump).unwrap().len())
    );

    let mut dl = vars.clone();
    dl.push(("BAK_DB_MYSQL".into(), "true".into()));
    let out = w.dir.path().join("my.sql.gz");
    let r = run(
        &w,
        &[
            "download",
            "--live",
            "-f",
            &out.display().to_string(),
            "-o",
            "json",
        ],
        &dl,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fs::read(&out).unwrap(), fs::read(&dump).unwrap());
}

/// `SELECT … FROM app.t` in order.
fn rows(pg: &Postgres, db: &str) -> String {
    pg.psql_in(
        db,
        "SELECT id, coalesce(v, '<null>') FROM app.t ORDER BY id",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_restore_loads_the_current_dump_file_as_the_original_did() {
    let pg = Postgres::shared();
    let (w, _dump, vars) = world(pg, "dl_restore").await;
    assert_eq!(run(&w, &["postgres", "dump"], &vars).code, 0);
    let before = rows(pg, "dl_restore");
    pg.psql_in("dl_restore", "DELETE FROM app.t WHERE id > 1;");
    let after = rows(pg, "dl_restore");
    // No terminal and no --yes: refused, nothing touched.
    let r = run(&w, &["postgres", "restore"], &vars);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("BAK_YES"), "{r:?}");
    assert_eq!(rows(pg, "dl_restore"), after);
    // The original's -f.
    let r = run(&w, &["postgres", "restore", "-f", "-o", "json"], &vars);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(rows(pg, "dl_restore"), before);
    assert_eq!(r.result["restored"], true);
    assert!(r.result.get("snapshot").is_none(), "{r:?}");
    // Read once to check it whole, then once more into the load (the two run together).
    let scripts = w.exec_scripts();
    assert_eq!(
        scripts[scripts.len() - 3],
        "backup-ns-dump-cat",
        "checked first"
    );
    let mut last_two = scripts[scripts.len() - 2..].to_vec();
    last_two.sort();
    assert_eq!(
        last_two,
        ["backup-ns-dump-cat", "backup-ns-postgres-restore"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn download_dump_is_the_originals_download_live() {
    let pg = Postgres::shared();
    let (w, dump, vars) = world(pg, "dl_compat").await;
    assert_eq!(run(&w, &["postgres", "dump"], &vars).code, 0);
    let out = w.dir.path().join("compat.sql.gz");
    let out_s = out.display().to_string();
    let r = run(
        &w,
        &["postgres", "downloadDump", "-f", &out_s, "-o", "json"],
        &vars,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fs::read(&out).unwrap(), fs::read(&dump).unwrap());
    assert_eq!(r.result["sha256"], sha256sum(&out).as_str());
}
