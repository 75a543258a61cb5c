//! `postgres|mysql shell` against the emulation, with a pod whose exec runs here with a real
//! PostgreSQL's or MariaDB's client and environment (the world of `create.rs`): SQL piped
//! through the shell, the password kept out of every exec's argv, errors and exit statuses,
//! and a session on a pseudo-terminal (`script`) that leaves the terminal as it found it.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::create::{pg_database, World, NS};
use crate::support::{Mariadb, Postgres};

/// The ready marker of the shell scripts: never shown to the user.
const MARKER: &str = "backup-ns;shell-ready";

/// A world with the PostgreSQL app pod; the password is given as a literal (not the default
/// `${POSTGRES_PASSWORD}` reference) so that leaking it into argv would show.
async fn pg_world(pg: &Postgres, db: &str) -> (World, Vec<(String, String)>) {
    let w = World::new().await;
    w.app("postgres", &pg.env());
    let db = pg_database(pg, db);
    let dump = w.dump_file("dump.sql.gz").display().to_string();
    let vars = vec![
        ("BAK_DB_POSTGRES".into(), "true".into()),
        ("BAK_DB_POSTGRES_DUMP_FILE".into(), dump),
        ("BAK_DB_POSTGRES_PORT".into(), pg.port.to_string()),
        ("BAK_DB_POSTGRES_DB".into(), db),
        ("BAK_DB_POSTGRES_PASSWORD".into(), pg.password.clone()),
    ];
    (w, vars)
}

/// Runs the binary with `input` on stdin (a pipe, closed after it).
fn piped(w: &World, args: &[&str], vars: &[(String, String)], input: &str) -> Output {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut child = w
        .command_with(args, &vars)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run backup-ns");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every exec argv the emulation saw, joined.
fn exec_argv(w: &World) -> Vec<String> {
    w.emu
        .requests()
        .into_iter()
        .filter_map(|r| r.exec)
        .map(|e| e.argv.join(" "))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_shell_runs_piped_sql_and_keeps_the_password_out_of_argv() {
    let pg = Postgres::shared();
    let (w, vars) = pg_world(pg, "sh_pg_pipe").await;
    let out = piped(
        &w,
        &["postgres", "shell"],
        &vars,
        "SELECT v FROM app.t WHERE id = 1;\nSELECT current_user || '@' || current_database();\n",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("grüß dich 👋"), "{stdout}");
    assert!(stdout.contains("@sh_pg_pipe"), "{stdout}");
    assert!(
        !stdout.contains(MARKER),
        "the marker is stripped: {stdout:?}"
    );
    assert_eq!(w.exec_scripts(), ["backup-ns-postgres-shell"]);
    let argv = exec_argv(&w);
    assert!(
        argv.iter().all(|a| !a.contains(&pg.password)),
        "password in argv: {argv:?}"
    );
    assert!(!stderr.contains(&pg.password), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_clients_exit_status_and_errors_pass_through() {
    let pg = Postgres::shared();
    let (w, vars) = pg_world(pg, "sh_pg_status").await;
    // psql exits 3 when a script stops on an error.
    let out = piped(
        &w,
        &["postgres", "shell"],
        &vars,
        "\\set ON_ERROR_STOP on\nSELECT nope FROM app.t;\nSELECT 'not reached';\n",
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("column \"nope\" does not exist"),
        "{stderr}"
    );
    assert!(!text(&out.stdout).contains("not reached"));
    assert!(
        stderr.contains("psql in pod app-base-1 exited with status 3"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_the_clients_error_without_a_prompt() {
    let pg = Postgres::shared();
    let (w, mut vars) = pg_world(pg, "sh_pg_wrong").await;
    vars.retain(|(k, _)| k != "BAK_DB_POSTGRES_PASSWORD");
    vars.push(("BAK_DB_POSTGRES_PASSWORD".into(), "not-the-password".into()));
    let started = Instant::now();
    let out = piped(&w, &["postgres", "shell"], &vars, "SELECT 1;\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "psql's status: {stderr}");
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "no hang");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_container_or_env_reference_is_a_clear_error() {
    let pg = Postgres::shared();
    let (w, mut vars) = pg_world(pg, "sh_pg_bad").await;
    let mut bad = vars.clone();
    bad.push(("BAK_DB_POSTGRES_EXEC_CONTAINER".into(), "nope".into()));
    let out = piped(&w, &["postgres", "shell"], &bad, "SELECT 1;\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nope"), "names the container: {stderr}");
    assert!(w.exec_scripts().is_empty(), "no exec");

    // A password reference the container does not have: the script's error, before the client.
    vars.retain(|(k, _)| k != "BAK_DB_POSTGRES_PASSWORD");
    vars.push(("BAK_DB_POSTGRES_PASSWORD".into(), "${NO_SUCH_VAR}".into()));
    let out = piped(&w, &["postgres", "shell"], &vars, "SELECT 1;\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("environment variable NO_SUCH_VAR is not set in the container"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_the_session_and_json_needs_it() {
    let pg = Postgres::shared();
    let (w, vars) = pg_world(pg, "sh_pg_dry").await;
    let out = piped(&w, &["postgres", "shell", "-o", "json"], &vars, "");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("BAK_OUTPUT (-o)") && stderr.contains("--dry-run"),
        "{stderr}"
    );
    assert!(w.exec_scripts().is_empty(), "nothing ran");

    let out = piped(&w, &["postgres", "shell", "--dry-run"], &vars, "");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("would open psql in pod shop/app-base-1, container postgres (plain exec)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("backup-ns-postgres-shell 127.0.0.1"),
        "{stdout}"
    );
    assert!(!stdout.contains(&pg.password), "{stdout}");

    let out = piped(
        &w,
        &["postgres", "shell", "--dry-run", "-o", "json"],
        &vars,
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["pod"], "app-base-1");
    assert_eq!(plan["container"], "postgres");
    assert_eq!(plan["namespace"], NS);
    assert_eq!(plan["tty"], false);
    assert_eq!(plan["command"][0], "backup-ns-postgres-shell");
    assert!(w.exec_scripts().is_empty(), "a dry run execs nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_shell_runs_piped_sql_with_the_password_out_of_argv() {
    let my = Mariadb::shared();
    let w = World::new().await;
    w.app("mysql", &my.env());
    my.createdb("sh_my");
    my.mysql_in(
        "sh_my",
        "SET NAMES utf8mb4; CREATE TABLE t (id INT PRIMARY KEY, v TEXT) CHARACTER SET utf8mb4; INSERT INTO t VALUES (1, 'grüß 👋');",
    );
    let dump = w.dump_file("my.sql.gz").display().to_string();
    let vars: Vec<(String, String)> = [
        ("BAK_DB_MYSQL", "true"),
        ("BAK_DB_MYSQL_DUMP_FILE", &dump),
        ("BAK_DB_MYSQL_PORT", &my.port.to_string()),
        ("BAK_DB_MYSQL_DB", "sh_my"),
        ("BAK_DB_MYSQL_EXEC_CONTAINER", "mysql"),
        ("BAK_DB_MYSQL_PASSWORD", &my.password),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let out = piped(
        &w,
        &["mysql", "shell"],
        &vars,
        "SELECT v FROM t WHERE id = 1;\n",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("grüß 👋"), "{stdout}");
    assert!(!stdout.contains(MARKER), "{stdout:?}");
    assert_eq!(w.exec_scripts(), ["backup-ns-mysql-shell"]);
    let argv = exec_argv(&w);
    assert!(argv.iter().all(|a| !a.contains(&my.password)), "{argv:?}");

    // An SQL error: the client's message and status.
    let out = piped(&w, &["mysql", "shell"], &vars, "SELECT nope FROM t;\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Unknown column 'nope'"), "{stderr}");

    // A wrong password: access denied, not a prompt.
    let mut wrong = vars.clone();
    wrong.retain(|(k, _)| k != "BAK_DB_MYSQL_PASSWORD");
    wrong.push(("BAK_DB_MYSQL_PASSWORD".into(), "wrong".into()));
    let out = piped(&w, &["mysql", "shell"], &wrong, "SELECT 1;\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Access denied"), "{stderr}");
}

/// `script` (util-linux) gives the binary a pseudo-terminal: the exec is a tty exec, the local
/// terminal is raw for the session and as before afterwards, and the exit status passes.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_the_session_is_a_tty_exec_and_the_terminal_is_restored() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no script(1)");
        return;
    }
    let pg = Postgres::shared();
    let (w, vars) = pg_world(pg, "sh_pg_tty").await;
    let bin = env!("CARGO_BIN_EXE_backup-ns");
    // Before: the terminal's settings; after the session: its exit status and settings again.
    let inner = format!(
        "stty -g; {bin} postgres shell; echo \"exit=$?\"; stty -g; \
         {bin} postgres shell; s=$?; echo \"exit=$s\"; exit $s"
    );
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &inner, "/dev/null"]);
    // The environment of `command_with`, for `script` and the shell it starts.
    let proto = w.command_with(&[], &vars);
    cmd.env_clear()
        .envs(proto.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("script");
    let mut stdin = child.stdin.take().unwrap();
    // Two sessions: one ends with \q, the other with an error that stops psql (status 3).
    stdin.write_all(b"SELECT 40 + 2 AS answer;\n\\q\n").unwrap();
    // The second session's input only once the first one is over (typed ahead, it would be
    // read by the first session's stdin reader).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match std::io::Read::read(&mut stdout, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    all.extend_from_slice(&buf[..n]);
                    let _ = tx.send(all.clone());
                }
            }
        }
        all
    });
    let mut seen = Vec::new();
    while !text(&seen).contains("exit=0") {
        let left = deadline.saturating_duration_since(Instant::now());
        seen = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("first session did not end: {:?}", text(&seen)));
    }
    stdin
        .write_all(b"\\set ON_ERROR_STOP on\nSELECT nope;\n")
        .unwrap();
    let status = child.wait().expect("script");
    drop(stdin);
    let all = text(&reader.join().unwrap());
    let stderr = {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut s).unwrap();
        s
    };
    assert!(all.contains("42"), "{all:?}\n{stderr}");
    assert!(!all.contains(MARKER), "{all:?}");
    assert!(!all.contains(&pg.password), "{all:?}");
    // A tty merges the client's stderr into its output.
    assert!(all.contains("column \"nope\" does not exist"), "{all:?}");
    assert!(all.contains("exit=0") && all.contains("exit=3"), "{all:?}");
    // The settings printed before and after the first session are the same.
    let settings: Vec<&str> = all
        .lines()
        .map(str::trim)
        .filter(|l| l.split(':').count() > 10)
        .collect();
    assert_eq!(settings.len(), 2, "{all:?}");
    assert_eq!(settings[0], settings[1], "the terminal is restored");
    assert_eq!(status.code(), Some(3), "{all:?}");
    // The exec asked for a tty.
    let tty_execs = w
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.exec.is_some() && r.query.contains("tty=true"))
        .count();
    assert_eq!(tty_execs, 2, "{:?}", w.emu.requests());
}

/// The script itself on a pseudo-terminal (as the container runs it under a tty exec): the
/// terminal echoes what it receives, so the password must only be written once the script has
/// switched echo off — it prints the marker after doing so. The password never shows, the
/// client still works, and the settings are back before the client starts.
#[test]
fn on_a_terminal_the_script_reads_the_password_without_echo() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no script(1)");
        return;
    }
    let pg = Postgres::shared();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shell.sh");
    std::fs::write(&file, backup_ns::db::shell::POSTGRES_SCRIPT).unwrap();
    let inner = format!(
        "sh {} 127.0.0.1 {} '$POSTGRES_USER' =postgres",
        file.display(),
        pg.port
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &inner, "/dev/null"])
        .env_clear()
        .env("PATH", crate::create::tool_path())
        .env("HOME", dir.path())
        .env("PAGER", "cat")
        .env("PSQL_HISTORY", "/dev/null")
        .envs(pg.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
            all.extend_from_slice(&buf[..n]);
            let _ = tx.send(all.clone());
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while !text(&seen).contains(MARKER) {
        let left = deadline.saturating_duration_since(Instant::now());
        seen = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no marker: {:?}", text(&seen)));
    }
    stdin
        .write_all(format!("={}\n", pg.password).as_bytes())
        .unwrap();
    stdin
        .write_all(b"SELECT 'echo-' || 'ok' AS probe;\n\\q\n")
        .unwrap();
    let status = child.wait().expect("script");
    drop(stdin);
    let all = text(&reader.join().unwrap());
    assert_eq!(status.code(), Some(0), "{all:?}");
    assert!(
        !all.contains(&pg.password),
        "the password was echoed: {all:?}"
    );
    assert!(all.contains("echo-ok"), "{all:?}");
    // The query as typed: echo is back on for the client.
    assert!(all.contains("SELECT 'echo-' || 'ok' AS probe;"), "{all:?}");
}

/// Before Kubernetes 1.30 (exec protocol v4) closing stdin closes the whole session: piped input
/// then ends with a clear error rather than a hang or a made-up status.
#[tokio::test(flavor = "multi_thread")]
async fn piped_input_over_the_v4_protocol_fails_clearly() {
    let pg = Postgres::shared();
    let emu = crate::emu::Emu::builder()
        .exec_protocols(crate::emu::ExecProtocols::V4Only)
        .start()
        .await;
    let w = World::with(emu);
    w.app("postgres", &pg.env());
    let db = pg_database(pg, "sh_pg_v4");
    let dump = w.dump_file("dump.sql.gz").display().to_string();
    let vars: Vec<(String, String)> = [
        ("BAK_DB_POSTGRES", "true"),
        ("BAK_DB_POSTGRES_DUMP_FILE", dump.as_str()),
        ("BAK_DB_POSTGRES_PORT", &pg.port.to_string()),
        ("BAK_DB_POSTGRES_DB", &db),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let started = Instant::now();
    let out = piped(&w, &["postgres", "shell"], &vars, "SELECT 1;\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("closed before the client reported its exit status"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "no hang");
}
