//! The in-container scripts (`src/db/scripts`) against real PostgreSQL and MariaDB servers.
//!
//! Each script runs exactly as the exec would run it: `sh -c SCRIPT NAME ARGS…` with the password
//! on a piped stdin that stays open, as the unprivileged user when we are root, in a sandbox
//! directory whose `bin/` is the whole PATH. Three shells: dash (Debian's sh) and bash in POSIX
//! mode with GNU tools, and busybox ash with busybox's tools (as in Alpine images). Servers are
//! shared per engine (`support::{Postgres, Mariadb}::shared`) with a 1,000,000-row fixture
//! database created once; tests that stop a server start their own. Slow tests (a full dump and
//! restore of the big fixture) are named `*_slow` and still run by default.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use backup_ns::db::{self, DbTarget, Engine, Script, SpaceReport, ValueRef};

use crate::support::{self, quote_ident, quote_literal, Mariadb, Postgres, StallProxy};

// ---------------------------------------------------------------------------------------------
// Running scripts as the exec would

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shell {
    Dash,
    Busybox,
    Bash,
}

const SHELLS: [Shell; 3] = [Shell::Dash, Shell::Busybox, Shell::Bash];

/// What the scripts call besides builtins; `touch` too, so that an injected `$(touch …)` would
/// really create its marker.
const TOOLS: &[&str] = &[
    "gzip", "tail", "mkfifo", "rm", "mv", "ls", "df", "sleep", "sync", "mkdir", "touch", "chmod",
    "chown",
];

impl Shell {
    fn command(self) -> Command {
        let (program, arg0) = match self {
            Shell::Dash => ("dash", "sh"),
            // Busybox picks the applet from argv[0]; bash named sh runs in POSIX mode.
            Shell::Busybox => ("busybox", "sh"),
            Shell::Bash => ("bash", "sh"),
        };
        let mut cmd = Command::new(which(program));
        cmd.arg0(arg0);
        cmd
    }

    fn tag(self) -> &'static str {
        match self {
            Shell::Dash => "dash",
            Shell::Busybox => "busybox",
            Shell::Bash => "bash",
        }
    }
}

/// `name` in the test process's PATH.
fn which(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found in PATH (Debian: dash, bash, busybox, gzip, coreutils)")
        })
}

/// A directory owned by the unprivileged user: `bin/` (the scripts' whole PATH) and `data/`
/// (the dump directory). The cwd of the scripts, so a relative `$(touch x)` lands here.
struct Sandbox {
    dir: tempfile::TempDir,
    shell: Shell,
    marker: String,
}

impl Sandbox {
    fn new(shell: Shell) -> Sandbox {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let dir = support::unprivileged_temp_dir("bns-");
        let bin = dir.path().join("bin");
        let data = dir.path().join("data");
        for d in [&bin, &data] {
            fs::create_dir(d).expect("create sandbox directory");
            support::give_to_unprivileged(d);
        }
        for tool in TOOLS {
            let target = match shell {
                Shell::Busybox => which("busybox"),
                Shell::Dash | Shell::Bash => which(tool),
            };
            symlink(target, bin.join(tool)).expect("link a tool");
        }
        let pg_bin = Postgres::bin_dir();
        for tool in ["pg_dump", "psql"] {
            symlink(pg_bin.join(tool), bin.join(tool)).expect("link a PostgreSQL tool");
        }
        for tool in ["mariadb", "mariadb-dump"] {
            symlink(which(tool), bin.join(tool)).expect("link a MariaDB tool");
        }
        let marker = format!(
            "{}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst),
            shell.tag()
        );
        Sandbox { dir, shell, marker }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn dump_file(&self) -> PathBuf {
        self.path().join("data/dump.sql.gz")
    }

    fn dump_file_str(&self) -> String {
        self.dump_file().to_str().expect("UTF-8 path").to_string()
    }

    /// Removes a tool from the scripts' PATH.
    fn remove_tool(&self, tool: &str) {
        fs::remove_file(self.path().join("bin").join(tool)).expect("remove a tool link");
    }

    /// Puts a shell-script stand-in for `tool` on the scripts' PATH.
    fn fake_tool(&self, tool: &str, body: &str) {
        let path = self.path().join("bin").join(tool);
        let _ = fs::remove_file(&path);
        fs::write(&path, format!("#!{}\n{body}\n", which("dash").display()))
            .expect("write a fake tool");
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    }

    /// Writes a "previous dump" (any bytes will do: the scripts never read it) owned by the
    /// unprivileged user.
    fn previous_dump(&self, size: usize) -> Vec<u8> {
        let content: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(self.dump_file(), &content).expect("write the previous dump");
        support::give_to_unprivileged(&self.dump_file());
        content
    }

    /// The entries of the dump directory.
    fn data_entries(&self) -> BTreeSet<String> {
        fs::read_dir(self.path().join("data"))
            .expect("read the dump directory")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn command(&self, script: &Script, env: &[(String, String)]) -> Command {
        assert_eq!(&script.argv[..2], ["sh", "-c"]);
        let mut cmd = self.shell.command();
        cmd.args(&script.argv[1..])
            .env_clear()
            .env("PATH", self.path().join("bin"))
            .env("HOME", "/nonexistent")
            .env("LANG", "C.UTF-8")
            .env("BNS_TEST_MARKER", &self.marker)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        support::as_unprivileged(&mut cmd);
        cmd
    }

    fn spawn_with(&self, mut cmd: Command, script: &Script) -> Running {
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", self.shell));
        let mut stdin = child.stdin.take().expect("piped stdin");
        // A script that rejects its arguments exits before reading stdin.
        match stdin.write_all(script.stdin.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                panic!("write the password line: {e}")
            }
            _ => {}
        }
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        Running {
            child,
            stdin: Some(stdin),
            stdout,
            stderr,
            closed_at: None,
        }
    }

    /// Starts `script`; stdin stays open until [`Running::close_stdin`] or the end.
    fn spawn(&self, script: &Script, env: &[(String, String)]) -> Running {
        self.spawn_with(self.command(script, env), script)
    }

    /// Runs `script` to completion, keeping stdin open as backup-ns does.
    fn run(&self, script: &Script, env: &[(String, String)]) -> Outcome {
        self.spawn(script, env).finish(Duration::from_secs(300))
    }

    /// The processes started for this sandbox (found by the marker in their environment).
    fn processes(&self) -> Vec<(u32, String)> {
        let needle = format!("BNS_TEST_MARKER={}", self.marker);
        procs()
            .filter(|(pid, _)| {
                fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                    .unwrap_or(false)
            })
            .collect()
    }
}

/// Reads a pipe to its end in a thread. The end comes when every process holding the pipe has
/// exited, so a result that does not arrive soon after the script exits means that something it
/// started outlived it.
fn drain(mut r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// Every process as (pid, comm).
fn procs() -> impl Iterator<Item = (u32, String)> {
    fs::read_dir("/proc").expect("read /proc").filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        Some((pid, comm.trim().to_string()))
    })
}

/// Processes whose command line contains `needle`.
fn argv_containing(needle: &str) -> Vec<(u32, String)> {
    procs()
        .filter(|(pid, _)| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    closed_at: Option<Instant>,
}

struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    /// Time from closing stdin (if the test did) to the exit.
    after_close: Option<Duration>,
}

impl Running {
    /// What backup-ns dying looks like from inside the container.
    fn close_stdin(&mut self) {
        self.stdin.take();
        self.closed_at = Some(Instant::now());
    }

    fn finish(mut self, timeout: Duration) -> Outcome {
        let exited = support::wait_until(timeout, || matches!(self.child.try_wait(), Ok(Some(_))));
        if !exited {
            let _ = self.child.kill();
        }
        let status = self.child.wait().expect("wait for the script");
        let after_close = self.closed_at.map(|t| t.elapsed());
        self.stdin.take();
        let outlived =
            "a process started by the script outlived it (it holds the script's stdout/stderr)";
        let stderr = self
            .stderr
            .recv_timeout(Duration::from_secs(15))
            .expect(outlived);
        let stdout = self
            .stdout
            .recv_timeout(Duration::from_secs(15))
            .expect(outlived);
        assert!(
            exited,
            "the script did not exit within {timeout:?}; stderr:\n{stderr}"
        );
        Outcome {
            status,
            stdout,
            stderr,
            after_close,
        }
    }
}

impl Drop for Running {
    /// A failed test must not leave a dump behind: closing stdin makes the script kill it.
    fn drop(&mut self) {
        self.stdin.take();
        if !support::wait_until(Duration::from_secs(10), || {
            !matches!(self.child.try_wait(), Ok(None))
        }) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Outcome {
    #[track_caller]
    fn ok(&self) -> &Outcome {
        assert!(
            self.status.success(),
            "script failed ({}):\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts a failure with exit `code` whose final `backup-ns:` line contains `needle`.
    #[track_caller]
    fn fails(&self, code: i32, needle: &str) -> &Outcome {
        let line = db::last_error_line(&self.stderr);
        assert_eq!(
            self.status.code(),
            Some(code),
            "exit status; stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert!(
            line.starts_with("backup-ns: "),
            "no backup-ns line at the end of stderr:\n{}",
            self.stderr
        );
        assert!(
            line.contains(needle),
            "expected {needle:?} in the last line {line:?}; stderr:\n{}",
            self.stderr
        );
        self
    }
}

fn env_of(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// Values that break naive quoting or encodings, as (label, body).
const SAMPLES: &[(&str, Option<&str>)] = &[
    ("emoji", Some("🦀🎉 👩‍👩‍👧‍👦 🇩🇪 ❤️ 𝄞")),
    ("cjk", Some("日本語のテキスト 中文字符 한국어")),
    ("combining", Some("e\u{301} a\u{308} o\u{338} Z\u{351}\u{36b}\u{343} \u{200d}\u{feff}")),
    ("quotes", Some("it's \"quoted\" `tick` $(touch pwned-data) ; \\ back\\\\slash \\n")),
    ("newlines", Some("line1\nline2\r\nline3\ttab\n")),
    ("dump syntax", Some("\\.\n-- PostgreSQL database dump complete\n-- Dump completed on x\n\\N\n);\nDROP TABLE x;")),
    ("null", None),
    ("empty", Some("")),
];

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// A MariaDB string literal (backslash escapes are on by default there).
fn my_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Nasty names for injection tests: quotes, `$( )`, backslash, backtick, `;`, spaces, and a
/// relative marker that would appear in the sandbox if anything ever ran.
fn nasty(kind: &str, shell: Shell) -> String {
    format!("{kind}'\"$(touch pwned-{kind})\\`;x y {}", shell.tag())
}

fn nasty_password() -> String {
    "p'a\"s$(touch pwned-password)\\`;x y ünï".to_string()
}

fn assert_no_marker(sb: &Sandbox) {
    let pwned: Vec<_> = fs::read_dir(sb.path())
        .expect("read the sandbox")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pwned"))
        .collect();
    assert!(pwned.is_empty(), "something was executed: {pwned:?}");
}

/// The shared PostgreSQL server with database `rt`: several schemas, awkward names and values,
/// a sequence, a view, a function and `public.big` with 1,000,000 rows.
fn pg() -> &'static Postgres {
    static FIXTURE: OnceLock<()> = OnceLock::new();
    let pg = Postgres::shared();
    FIXTURE.get_or_init(|| {
        pg.createdb("rt");
        let weird_schema = quote_ident("Ünï \"cødé\" $(touch pwned-schema) ;", '"');
        let mut sql = format!(
            "CREATE SCHEMA app;
             CREATE SCHEMA {weird_schema};
             CREATE TABLE public.big (id bigint PRIMARY KEY, a text NOT NULL, b text, n numeric, t timestamptz);
             INSERT INTO public.big SELECT g, md5(g::text),
                 CASE WHEN g % 7 = 0 THEN NULL ELSE repeat(chr(65 + g % 26), g % 5) END,
                 g / 3.0, '2020-01-01 00:00:00+00'::timestamptz + g * interval '1 second'
               FROM generate_series(1, 1000000) g;
             CREATE TABLE app.texts (id int PRIMARY KEY, label text NOT NULL, body text);
             CREATE TABLE app.types (id int PRIMARY KEY, data bytea, doc jsonb, tags text[], f float8, ts timestamptz);
             INSERT INTO app.types VALUES
               (1, (SELECT decode(string_agg(lpad(to_hex(g), 2, '0'), ''), 'hex') FROM generate_series(0, 255) g),
                '{{\"k\": \"v\\u00e9 🦀\", \"n\": [1, null]}}', ARRAY['a b', 'c\"d', NULL, ''], 1.5e300, 'infinity'),
               (2, NULL, NULL, NULL, NULL, NULL),
               (3, '', '[]', '{{}}', 'NaN', '1999-12-31 23:59:59.999999+14');
             CREATE TABLE {weird_schema}.\"wëird table \"\"name\"\"\" (\"col umn\" text, \"ÜML\" int);
             INSERT INTO {weird_schema}.\"wëird table \"\"name\"\"\" VALUES ('x', 1), (NULL, NULL);
             CREATE SEQUENCE app.counter;
             SELECT setval('app.counter', 12345);
             CREATE VIEW app.labels AS SELECT id, label FROM app.texts;
             CREATE FUNCTION app.answer() RETURNS int LANGUAGE sql AS 'SELECT 42';
             COMMENT ON TABLE app.texts IS 'comment with ''quotes'' and ünï';
            "
        );
        for (i, (label, body)) in SAMPLES.iter().enumerate() {
            let body = body.map(quote_literal).unwrap_or_else(|| "NULL".into());
            sql += &format!("INSERT INTO app.texts VALUES ({i}, {}, {body});\n", quote_literal(label));
        }
        pg.psql_in("rt", &sql);
        pg.psql_in("rt", "VACUUM ANALYZE");
    });
    pg
}

/// The shared MariaDB server with database `rt`: awkward names and values, several character
/// sets, binary data, a view, a trigger, a procedure, a function, an event and `big` with
/// 1,000,000 rows.
fn maria() -> &'static Mariadb {
    static FIXTURE: OnceLock<()> = OnceLock::new();
    let my = Mariadb::shared();
    FIXTURE.get_or_init(|| {
        my.createdb("rt");
        let all_bytes: String = (0..=255u8).map(|b| format!("{b:02X}")).collect();
        let mut sql = format!(
            "CREATE TABLE big (id INT PRIMARY KEY, a CHAR(32) NOT NULL, b VARCHAR(10) NULL, n DECIMAL(14,4), t DATETIME);
             INSERT INTO big SELECT seq, MD5(seq), IF(seq % 7 = 0, NULL, REPEAT(CHAR(65 + seq % 26), seq % 5)),
                 seq / 3, '2020-01-01' + INTERVAL seq SECOND FROM seq_1_to_1000000;
             CREATE TABLE texts (id INT PRIMARY KEY, label VARCHAR(40) NOT NULL, body TEXT NULL) CHARACTER SET utf8mb4;
             CREATE TABLE bytes (id INT PRIMARY KEY, data BLOB, vb VARBINARY(300), doc JSON, f DOUBLE,
                 bits BIT(8), e ENUM('a', 'b'), tags SET('x', 'y'));
             INSERT INTO bytes VALUES
               (1, X'{all_bytes}', X'{all_bytes}', '{{\"k\": \"v\\\\u00e9\"}}', 1.5e300, b'10101010', 'b', 'x,y'),
               (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
               (3, X'', X'', '[]', -0.0, b'0', 'a', '');
             CREATE TABLE latin (id INT PRIMARY KEY, s VARCHAR(50)) CHARACTER SET latin1;
             INSERT INTO latin VALUES (1, CONVERT(X'{latin}' USING utf8mb4));
             CREATE TABLE `wëird ``table`` $(touch pwned-table);` (`col umn` TEXT, `ÜML` INT);
             INSERT INTO `wëird ``table`` $(touch pwned-table);` VALUES ('x', 1), (NULL, NULL);
             CREATE TABLE counter (id INT AUTO_INCREMENT PRIMARY KEY, v INT);
             INSERT INTO counter (v) VALUES (1), (2), (3);
             DELETE FROM counter WHERE id = 3;
             CREATE VIEW labels AS SELECT id, label FROM texts;
             CREATE TRIGGER counter_times_ten BEFORE INSERT ON counter FOR EACH ROW SET NEW.v = NEW.v * 10;
             CREATE PROCEDURE answer_proc() SELECT 42;
             CREATE FUNCTION answer() RETURNS INT DETERMINISTIC RETURN 42;
             CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM counter WHERE id < 0;
            ",
            latin = hex("Ünïcödé àéî ß ÿ")
        );
        for (i, (label, body)) in SAMPLES.iter().enumerate() {
            let body = body.map(|b| format!("CONVERT(X'{}' USING utf8mb4)", hex(b))).unwrap_or_else(|| "NULL".into());
            sql += &format!("INSERT INTO texts VALUES ({i}, {}, {body});\n", my_literal(label));
        }
        my.mysql_in("rt", &sql);
    });
    my
}

// ---------------------------------------------------------------------------------------------
// Targets and comparisons

fn pg_target(port: u16, user: &str, password: &str, database: &str, sb: &Sandbox) -> DbTarget {
    DbTarget {
        engine: Engine::Postgres,
        host: "127.0.0.1".into(),
        port,
        user: ValueRef::parse(user),
        password: ValueRef::parse(password),
        database: ValueRef::parse(database),
        dump_file: sb.dump_file_str(),
        default_character_set: String::new(),
    }
}

fn my_target(port: u16, user: &str, password: &str, database: &str, sb: &Sandbox) -> DbTarget {
    DbTarget {
        engine: Engine::Mysql,
        host: "127.0.0.1".into(),
        port,
        user: ValueRef::parse(user),
        password: ValueRef::parse(password),
        database: ValueRef::parse(database),
        dump_file: sb.dump_file_str(),
        default_character_set: "utf8mb4".into(),
    }
}

/// A literal value (`=…` in the script arguments), even for values that look like `$NAME`.
fn lit(v: &str) -> ValueRef {
    ValueRef::Literal(v.to_string())
}

/// The container environment for PostgreSQL, plus PG* variables pointing elsewhere: the
/// script's own values must win.
fn pg_env(pg: &Postgres) -> Vec<(String, String)> {
    let mut env = pg.env();
    env.extend(env_of(&[
        ("PGHOST", "127.0.0.1"),
        ("PGPORT", "1"),
        ("PGUSER", "nobody"),
        ("PGPASSWORD", "wrong"),
    ]));
    env
}

/// Per table of `database`: row count and a digest of every row, in a stable order; the schema
/// as `pg_dump --schema-only` prints it; sequence values.
fn pg_fingerprint(pg: &Postgres, database: &str) -> (Vec<String>, String, String) {
    let tables = pg.psql_in(
        database,
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
          WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    );
    let digests = tables
        .lines()
        .map(|t| {
            let d = pg.psql_in(
                database,
                &format!("SELECT count(*) || ' ' || coalesce(md5(string_agg(md5(r::text), '' ORDER BY md5(r::text))), '-') FROM {t} r"),
            );
            format!("{t} {d}")
        })
        .collect();
    let out = pg
        .client("pg_dump", database)
        .arg("--schema-only")
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump --schema-only: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let schema: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .map(|l| format!("{l}\n"))
        .collect();
    let sequences = pg.psql_in(
        database,
        "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2",
    );
    (digests, schema, sequences)
}

/// Per table of `database`: row count and a sum of row digests; the schema (tables, views,
/// routines, events, triggers) as `mariadb-dump --no-data` prints it.
fn my_fingerprint(my: &Mariadb, database: &str) -> (Vec<String>, String) {
    let columns = my.mysql(&format!(
        "SELECT table_name, GROUP_CONCAT(CONCAT('QUOTE(HEX(CAST(`', REPLACE(column_name, '`', '``'), '` AS BINARY)))')
                ORDER BY ordinal_position SEPARATOR ', ')
           FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_schema, table_name)
          WHERE table_schema = {} AND table_type = 'BASE TABLE'
          GROUP BY table_name ORDER BY table_name",
        my_literal(database)
    ));
    let digests = columns
        .lines()
        .map(|line| {
            let (table, cols) = line.split_once('\t').expect("table and columns");
            let d = my.mysql_in(
                database,
                &format!(
                    "SELECT COUNT(*), COALESCE(SUM(CAST(CONV(LEFT(MD5(CONCAT_WS(',', {cols})), 15), 16, 10) AS UNSIGNED)), 0)
                       FROM {}",
                    quote_ident(table, '`')
                ),
            );
            format!("{table} {d}")
        })
        .collect();
    let out = my
        .client("mariadb-dump")
        .args([
            "--no-data",
            "--routines",
            "--events",
            "--triggers",
            "--skip-comments",
            "--skip-dump-date",
        ])
        .arg(database)
        .output()
        .expect("run mariadb-dump");
    assert!(
        out.status.success(),
        "mariadb-dump --no-data: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (digests, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dumped_bytes(out: &Outcome, sb: &Sandbox) -> u64 {
    let bytes = db::parse_dump_output(&out.stdout).expect("bytes=N");
    assert_eq!(
        bytes,
        fs::metadata(sb.dump_file()).expect("the dump exists").len()
    );
    bytes
}

/// After a failed dump: the previous dump is byte-identical, nothing else is in the dump
/// directory, and no process of the dump is left.
#[track_caller]
fn assert_untouched(sb: &Sandbox, previous: &[u8]) {
    assert!(
        fs::read(sb.dump_file()).expect("the previous dump is still there") == previous,
        "previous dump changed"
    );
    assert_eq!(
        sb.data_entries(),
        BTreeSet::from(["dump.sql.gz".to_string()]),
        "temporary files left behind"
    );
    let left = sb.processes();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

// ---------------------------------------------------------------------------------------------
// Sanity of the harness itself

#[test]
fn sandbox_would_notice_an_injection() {
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        let probe = Script {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "eval \"$1\"".into(),
                "probe".into(),
                "x=$(touch pwned-probe)".into(),
            ],
            stdin: String::new(),
        };
        sb.run(&probe, &[]).ok();
        assert!(
            sb.path().join("pwned-probe").exists(),
            "{shell:?}: touch does not work in the sandbox"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// space.sh

#[test]
fn space_reports_the_previous_dump_and_a_missing_directory() {
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        let script = db::space_script(&sb.dump_file_str());
        let none = SpaceReport::parse(&sb.run(&script, &[]).ok().stdout).expect("parse");
        assert_eq!(none.prev_bytes, None, "{shell:?}");
        assert!(
            none.used_percent <= 100 && none.avail_bytes > 0,
            "{shell:?}: {none:?}"
        );

        sb.previous_dump(12345);
        let out = sb.run(&script, &[]);
        let report = SpaceReport::parse(&out.ok().stdout).expect("parse");
        assert_eq!(report.prev_bytes, Some(12345), "{shell:?}: {}", out.stdout);
        assert_eq!(report.verdict(100), Ok(()));
        let full = SpaceReport {
            avail_bytes: 12345,
            ..report
        };
        assert!(full.verdict(100).is_err());

        let missing = db::space_script(&sb.path().join("nope/dump.sql.gz").to_string_lossy());
        sb.run(&missing, &[]).fails(1, "does not exist");
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

#[test]
fn postgres_dump_restore_round_trip_keeps_every_value_slow() {
    let pg = pg();
    let sb = Sandbox::new(Shell::Dash);
    let target = pg_target(
        pg.port,
        "${POSTGRES_USER}",
        "${POSTGRES_PASSWORD}",
        "rt",
        &sb,
    );
    let env = pg_env(pg);
    assert_eq!(sb.run(&db::check_script(&target), &env).ok().stdout, "");
    let out = sb.run(&db::dump_script(&target, 600), &env);
    let bytes = dumped_bytes(out.ok(), &sb);
    let space = SpaceReport::parse(
        &sb.run(&db::space_script(&target.dump_file), &[])
            .ok()
            .stdout,
    )
    .expect("parse");
    assert_eq!(space.prev_bytes, Some(bytes));

    pg.createdb("rt_restored");
    pg.restore_gz("rt_restored", &sb.dump_file());
    let (before, after) = (pg_fingerprint(pg, "rt"), pg_fingerprint(pg, "rt_restored"));
    assert_eq!(before.0.len(), 4, "tables: {:?}", before.0);
    assert!(
        before
            .0
            .iter()
            .any(|t| t.starts_with("public.big 1000000 ")),
        "{:?}",
        before.0
    );
    assert_eq!(before.0, after.0, "table contents differ");
    assert_eq!(before.1, after.1, "schema differs");
    assert_eq!(before.2, after.2, "sequences differ");
    for (label, body) in SAMPLES {
        let got = pg.psql_in(
            "rt_restored",
            &format!("SELECT coalesce(encode(convert_to(body, 'UTF8'), 'hex'), 'NULL') FROM app.texts WHERE label = {}", quote_literal(label)),
        );
        assert_eq!(
            got,
            body.map(hex).unwrap_or_else(|| "NULL".into()),
            "{label}"
        );
    }
    assert_no_marker(&sb);
}

/// Role, database and password full of shell syntax, as literals and as `$NAME` references.
#[test]
fn postgres_nasty_names_and_password_work_and_execute_nothing() {
    let pg = pg();
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        let (role, database, password) =
            (nasty("role", shell), nasty("db", shell), nasty_password());
        let restored = format!("restored {}", shell.tag());
        pg.psql(&format!(
            "CREATE ROLE {r} LOGIN PASSWORD {p};
             CREATE DATABASE {d} OWNER {r};
             CREATE DATABASE {restored} OWNER {r};",
            r = quote_ident(&role, '"'),
            p = quote_literal(&password),
            d = quote_ident(&database, '"'),
            restored = quote_ident(&restored, '"'),
        ));
        let mut sql = format!(
            "SET ROLE {r};
             CREATE TABLE texts (id int PRIMARY KEY, label text, body text);
             CREATE SCHEMA \"s p$(touch pwned-s)\";
             CREATE TABLE \"s p$(touch pwned-s)\".\"t\"\"q\" (v text);
             INSERT INTO \"s p$(touch pwned-s)\".\"t\"\"q\" VALUES ('v');\n",
            r = quote_ident(&role, '"')
        );
        for (i, (label, body)) in SAMPLES.iter().enumerate() {
            let body = body.map(quote_literal).unwrap_or_else(|| "NULL".into());
            sql += &format!(
                "INSERT INTO texts VALUES ({i}, {}, {body});\n",
                quote_literal(label)
            );
        }
        pg.psql_in(&database, &sql);

        let literal = DbTarget {
            user: lit(&role),
            password: lit(&password),
            database: lit(&database),
            ..pg_target(pg.port, "", "", "", &sb)
        };
        sb.run(&db::check_script(&literal), &[]).ok();
        let by_ref = pg_target(pg.port, "$APP_USER", "$APP_PASSWORD", "${APP_DB}", &sb);
        let env = env_of(&[
            ("APP_USER", &role),
            ("APP_PASSWORD", &password),
            ("APP_DB", &database),
        ]);
        sb.run(&db::check_script(&by_ref), &env).ok();
        dumped_bytes(sb.run(&db::dump_script(&by_ref, 60), &env).ok(), &sb);
        dumped_bytes(sb.run(&db::dump_script(&literal, 60), &[]).ok(), &sb);

        pg.restore_gz(&restored, &sb.dump_file());
        assert_eq!(
            pg_fingerprint(pg, &database).0,
            pg_fingerprint(pg, &restored).0,
            "{shell:?}"
        );

        let wrong = DbTarget {
            password: lit("wrong"),
            ..literal.clone()
        };
        sb.run(&db::check_script(&wrong), &[])
            .fails(1, "password authentication failed");
        sb.run(&db::dump_script(&wrong, 60), &[])
            .fails(1, "pg_dump failed");
        assert_no_marker(&sb);
    }
}

/// A dump of `rt` through a proxy that stalls after 1 MiB: pg_dump is mid-stream and stays
/// there until something kills it.
fn stalled_postgres_dump(sb: &Sandbox, timeout_secs: u64) -> (StallProxy, Running) {
    let pg = pg();
    let proxy = StallProxy::start(pg.port, 1 << 20);
    let target = pg_target(
        proxy.port,
        "${POSTGRES_USER}",
        "${POSTGRES_PASSWORD}",
        "rt",
        sb,
    );
    let running = sb.spawn(&db::dump_script(&target, timeout_secs), &pg_env(pg));
    assert!(
        support::wait_until(Duration::from_secs(60), || proxy.stalled()),
        "the dump never got 1 MiB in"
    );
    let names: BTreeSet<String> = sb.processes().into_iter().map(|(_, comm)| comm).collect();
    assert!(
        names.contains("pg_dump") && names.contains("gzip"),
        "the pipeline is not running: {names:?}"
    );
    (proxy, running)
}

#[test]
fn postgres_stdin_eof_mid_dump_kills_the_pipeline() {
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        let previous = sb.previous_dump(100_000);
        let (_proxy, mut running) = stalled_postgres_dump(&sb, 600);
        running.close_stdin();
        let out = running.finish(Duration::from_secs(30));
        out.fails(1, "stdin closed before the dump finished");
        assert!(
            out.after_close.expect("closed") < Duration::from_secs(10),
            "{shell:?}: {:?}",
            out.after_close
        );
        assert_untouched(&sb, &previous);
    }
}

#[test]
fn postgres_timeout_kills_the_pipeline() {
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        let previous = sb.previous_dump(100_000);
        let started = Instant::now();
        let (_proxy, running) = stalled_postgres_dump(&sb, 1);
        running
            .finish(Duration::from_secs(30))
            .fails(1, "timed out after 1s");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{shell:?}: took {:?}",
            started.elapsed()
        );
        assert_untouched(&sb, &previous);
    }
}

#[test]
fn postgres_password_never_appears_in_any_argv_during_a_dump() {
    let pg = pg();
    let sb = Sandbox::new(Shell::Dash);
    let proxy = StallProxy::start(pg.port, 1 << 20);
    let target = DbTarget {
        password: lit(&pg.password),
        ..pg_target(proxy.port, "${POSTGRES_USER}", "", "rt", &sb)
    };
    let mut running = sb.spawn(&db::dump_script(&target, 600), &pg.env());
    let mut samples = 0;
    let mut saw_pg_dump = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(proxy.stalled() && samples >= 50) && Instant::now() < deadline {
        assert_eq!(
            argv_containing(&pg.password),
            vec![],
            "the password is in an argv"
        );
        saw_pg_dump |= sb.processes().iter().any(|(_, comm)| comm == "pg_dump");
        samples += 1;
    }
    assert!(
        saw_pg_dump && proxy.stalled(),
        "the dump was not observed running"
    );
    running.close_stdin();
    running
        .finish(Duration::from_secs(30))
        .fails(1, "stdin closed");
}

#[test]
fn postgres_disk_full_keeps_the_previous_dump() {
    let pg = pg();
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        let previous = sb.previous_dump(100_000);
        let target = pg_target(
            pg.port,
            "${POSTGRES_USER}",
            "${POSTGRES_PASSWORD}",
            "rt",
            &sb,
        );
        let script = db::dump_script(&target, 600);
        // The file size limit (what `ulimit -f` sets) applies to the script and all it starts.
        let mut cmd = sb.command(&script, &pg.env());
        // SAFETY: setrlimit is async-signal-safe and only affects the child.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 256 * 1024,
                    rlim_max: 256 * 1024,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        sb.spawn_with(cmd, &script)
            .finish(Duration::from_secs(120))
            .fails(1, "gzip failed");
        assert_untouched(&sb, &previous);
    }
    // A real ENOSPC on a small tmpfs, where mounting is allowed (root).
    let sb = Sandbox::new(Shell::Dash);
    let Some(_mount) = Tmpfs::mount(&sb.path().join("data"), "1m") else {
        eprintln!("skipping the tmpfs part: cannot mount a tmpfs here");
        return;
    };
    let previous = sb.previous_dump(100_000);
    let target = pg_target(
        pg.port,
        "${POSTGRES_USER}",
        "${POSTGRES_PASSWORD}",
        "rt",
        &sb,
    );
    let space = SpaceReport::parse(
        &sb.run(&db::space_script(&target.dump_file), &[])
            .ok()
            .stdout,
    )
    .expect("parse");
    assert_eq!(space.prev_bytes, Some(100_000));
    assert!(space.avail_bytes < 1 << 20, "{space:?}");
    sb.run(&db::dump_script(&target, 600), &pg.env())
        .fails(1, "gzip failed");
    assert_untouched(&sb, &previous);
}

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        let (uid, gid) = support::unprivileged()?;
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755,uid={uid},gid={gid}"),
                "tmpfs",
            ])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn postgres_server_down_keeps_the_previous_dump() {
    let pg = Postgres::start();
    pg.createdb("app");
    pg.psql_in(
        "app",
        "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g",
    );
    let sb = Sandbox::new(Shell::Dash);
    let target = pg_target(pg.port, "$POSTGRES_USER", "$POSTGRES_PASSWORD", "app", &sb);
    dumped_bytes(sb.run(&db::dump_script(&target, 60), &pg.env()).ok(), &sb);
    let previous = fs::read(sb.dump_file()).expect("read the dump");

    pg.stop();
    let out = sb.run(&db::check_script(&target), &pg.env());
    out.fails(
        1,
        &format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{} as \"bns_super\"",
            pg.port
        ),
    );
    sb.run(&db::dump_script(&target, 60), &pg.env())
        .fails(1, "pg_dump failed");
    assert_untouched(&sb, &previous);
}

#[test]
fn postgres_check_names_a_missing_tool() {
    let pg = pg();
    for (tool, shell) in [
        ("pg_dump", Shell::Dash),
        ("psql", Shell::Busybox),
        ("gzip", Shell::Bash),
    ] {
        let sb = Sandbox::new(shell);
        sb.remove_tool(tool);
        let target = pg_target(pg.port, "$POSTGRES_USER", "$POSTGRES_PASSWORD", "rt", &sb);
        sb.run(&db::check_script(&target), &pg.env())
            .fails(1, &format!("{tool} not found in PATH"));
    }
}

#[test]
fn postgres_unset_variable_is_a_clear_error() {
    let pg = pg();
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        let target = pg_target(pg.port, "$POSTGRES_USER", "${NOT_SET_ANYWHERE}", "rt", &sb);
        sb.run(&db::check_script(&target), &pg.env()).fails(
            2,
            "password: environment variable NOT_SET_ANYWHERE is not set",
        );
        let target = pg_target(pg.port, "$NO_USER", "$POSTGRES_PASSWORD", "rt", &sb);
        sb.run(&db::dump_script(&target, 60), &pg.env())
            .fails(2, "user: environment variable NO_USER is not set");
        assert!(!sb.dump_file().exists());
    }
}

/// A dump tool that exits 0 without finishing its output, or fails after writing some: the
/// verification and the exit status keep the previous dump.
#[test]
fn postgres_incomplete_or_failed_dump_keeps_the_previous_dump() {
    let pg = pg();
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        let previous = sb.previous_dump(1000);
        let target = pg_target(pg.port, "$POSTGRES_USER", "$POSTGRES_PASSWORD", "rt", &sb);
        sb.fake_tool(
            "pg_dump",
            "printf 'CREATE TABLE t (id int);\\nCOPY t FROM stdin;\\n1\\n'",
        );
        sb.run(&db::dump_script(&target, 60), &pg.env())
            .fails(1, "lacks \"-- PostgreSQL database dump complete\"");
        assert_untouched(&sb, &previous);
        sb.fake_tool("pg_dump", "echo '-- PostgreSQL database dump complete'; echo 'pg_dump: error: query failed' >&2; exit 3");
        let out = sb.run(&db::dump_script(&target, 60), &pg.env());
        out.fails(1, "pg_dump failed (exit status 3)");
        assert!(
            out.stderr.contains("pg_dump: error: query failed"),
            "the tool's own message is kept: {}",
            out.stderr
        );
        assert_untouched(&sb, &previous);
        let nowhere = DbTarget {
            dump_file: sb
                .path()
                .join("missing/dump.sql.gz")
                .to_string_lossy()
                .into(),
            ..target
        };
        sb.run(&db::dump_script(&nowhere, 60), &pg.env())
            .fails(1, "does not exist");
    }
}

/// Dumps that fail at once used to race with their just-forked watchdogs: a TERM swallowed by a
/// subshell that still ran our handler left a watcher behind and the script waiting for it
/// (about once in a hundred runs on a loaded machine). A stress test: likely, not certain, to
/// catch a regression.
#[test]
fn quick_failures_leave_nothing_behind() {
    let pg = pg();
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        let previous = sb.previous_dump(1000);
        let target = pg_target(pg.port, "$POSTGRES_USER", "$POSTGRES_PASSWORD", "rt", &sb);
        sb.fake_tool("pg_dump", "exit 7");
        for _ in 0..25 {
            let out = sb
                .spawn(&db::dump_script(&target, 3600), &pg.env())
                .finish(Duration::from_secs(20));
            out.fails(1, "pg_dump failed (exit status 7)");
            assert_untouched(&sb, &previous);
        }
    }
}

/// A run killed outright leaves its temporary directory; the next run removes it unless its
/// shell still lives.
#[test]
fn stale_temporary_directories_of_dead_runs_are_removed() {
    let pg = pg();
    let sb = Sandbox::new(Shell::Busybox);
    let data = sb.path().join("data");
    let dead = data.join(".dump.sql.gz.tmp.999999999");
    let alive = data.join(format!(".dump.sql.gz.tmp.{}", std::process::id()));
    for dir in [&dead, &alive] {
        fs::create_dir(dir).expect("create a stale directory");
        fs::write(dir.join("dump.sql.gz"), b"partial").expect("write a partial dump");
        support::give_to_unprivileged(dir);
        support::give_to_unprivileged(&dir.join("dump.sql.gz"));
    }
    let target = pg_target(pg.port, "$POSTGRES_USER", "$POSTGRES_PASSWORD", "rt", &sb);
    sb.fake_tool(
        "pg_dump",
        "echo 'SELECT 1;'; echo '-- PostgreSQL database dump complete'",
    );
    dumped_bytes(sb.run(&db::dump_script(&target, 60), &pg.env()).ok(), &sb);
    assert!(!dead.exists(), "the dead run's directory is still there");
    assert!(
        alive.exists(),
        "the directory of a live process was removed"
    );
}

/// `cmd` as root when we are root: exec runs as the image's user, root in the official postgres
/// and mysql images, while the database's own user restores the dump.
fn as_root(cmd: &mut Command) -> &mut Command {
    if support::unprivileged().is_some() {
        cmd.uid(0).gid(0);
    }
    cmd
}

/// The permission bits (in octal) and the owner of `path`.
fn mode_and_owner(path: &Path) -> (String, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).expect("the dump exists");
    (format!("{:04o}", m.mode() & 0o7777), m.uid(), m.gid())
}

/// A fake `pg_dump` whose output is a complete dump.
const TINY_DUMP: &str = "echo 'SELECT 1;'; echo '-- PostgreSQL database dump complete'";

/// A first dump written by root is 0644, like the original's `> dump.sql.gz`: another
/// unprivileged user (the database's own, uid 70 in postgres:alpine) reads and gunzips it. It
/// used to be root's 0600 (the script's umask 077), and the restore failed with "Permission
/// denied".
#[test]
fn a_first_dump_is_readable_by_the_databases_own_user() {
    let pg = Postgres::shared();
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        sb.fake_tool("pg_dump", TINY_DUMP);
        let target = pg_target(pg.port, "$POSTGRES_USER", "$POSTGRES_PASSWORD", "rt", &sb);
        let script = db::dump_script(&target, 60);
        let mut cmd = sb.command(&script, &pg.env());
        as_root(&mut cmd);
        let out = sb.spawn_with(cmd, &script).finish(Duration::from_secs(60));
        dumped_bytes(out.ok(), &sb);
        // SAFETY: getuid and getgid cannot fail.
        let me = unsafe { (libc::getuid(), libc::getgid()) };
        assert_eq!(
            mode_and_owner(&sb.dump_file()),
            ("0644".to_string(), me.0, me.1),
            "{shell:?}: mode and owner of a first dump"
        );
        if support::unprivileged().is_some() {
            let mut gunzip = Command::new(which("gzip"));
            gunzip.arg("-cd").arg(sb.dump_file());
            let read = support::as_unprivileged(&mut gunzip)
                .output()
                .expect("run gzip");
            assert!(
                read.status.success(),
                "{shell:?}: another user cannot read the dump: {}",
                String::from_utf8_lossy(&read.stderr)
            );
            assert!(String::from_utf8_lossy(&read.stdout).contains("dump complete"));
        }
        assert_eq!(
            sb.data_entries(),
            BTreeSet::from(["dump.sql.gz".to_string()])
        );
    }
}

/// A dump that replaces one keeps the previous dump's mode and owner, as the original's
/// redirect into the existing file did: an operator's `chown 70` or `chmod 0640` survives the
/// next backup, also when the exec runs as root.
#[test]
fn a_replaced_dump_keeps_the_previous_dumps_mode_and_owner() {
    use std::os::unix::fs::PermissionsExt;
    let pg = Postgres::shared();
    for (shell, mode) in [
        (Shell::Dash, 0o640),
        (Shell::Busybox, 0o604),
        (Shell::Bash, 0o751),
    ] {
        let sb = Sandbox::new(shell);
        sb.fake_tool("pg_dump", TINY_DUMP);
        let previous = sb.previous_dump(1000);
        fs::set_permissions(sb.dump_file(), fs::Permissions::from_mode(mode)).expect("chmod");
        let before = mode_and_owner(&sb.dump_file());
        let target = pg_target(pg.port, "$POSTGRES_USER", "$POSTGRES_PASSWORD", "rt", &sb);
        let script = db::dump_script(&target, 60);
        let mut cmd = sb.command(&script, &pg.env());
        as_root(&mut cmd);
        let out = sb.spawn_with(cmd, &script).finish(Duration::from_secs(60));
        dumped_bytes(out.ok(), &sb);
        assert_ne!(
            fs::read(sb.dump_file()).unwrap(),
            previous,
            "{shell:?}: replaced"
        );
        assert_eq!(
            mode_and_owner(&sb.dump_file()),
            before,
            "{shell:?}: mode and owner of the previous dump"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// MariaDB

#[test]
fn mariadb_dump_restore_round_trip_keeps_every_value_slow() {
    let my = maria();
    let sb = Sandbox::new(Shell::Busybox);
    let target = my_target(my.port, "root", "${MYSQL_ROOT_PASSWORD}", "rt", &sb);
    assert_eq!(
        sb.run(&db::check_script(&target), &my.env()).ok().stdout,
        ""
    );
    let bytes = dumped_bytes(sb.run(&db::dump_script(&target, 600), &my.env()).ok(), &sb);
    let space = SpaceReport::parse(
        &sb.run(&db::space_script(&target.dump_file), &[])
            .ok()
            .stdout,
    )
    .expect("parse");
    assert_eq!(space.prev_bytes, Some(bytes));

    my.createdb("rt_restored");
    my.restore_gz("rt_restored", &sb.dump_file());
    let (before, after) = (my_fingerprint(my, "rt"), my_fingerprint(my, "rt_restored"));
    assert_eq!(before.0.len(), 6, "tables: {:?}", before.0);
    assert!(
        before.0.iter().any(|t| t.starts_with("big 1000000\t")),
        "{:?}",
        before.0
    );
    assert_eq!(before.0, after.0, "table contents differ");
    assert_eq!(before.1, after.1, "schema differs");
    for needle in [
        "TRIGGER counter_times_ten",
        "PROCEDURE `answer_proc`",
        "FUNCTION `answer`",
        "EVENT `nightly`",
        "VIEW `labels`",
        "AUTO_INCREMENT=4",
    ] {
        assert!(
            after.1.contains(needle),
            "{needle} was not restored:\n{}",
            after.1
        );
    }
    for (label, body) in SAMPLES {
        let got = my.mysql_in(
            "rt_restored",
            &format!(
                "SELECT COALESCE(HEX(body), 'NULL') FROM texts WHERE label = {}",
                my_literal(label)
            ),
        );
        assert_eq!(
            got,
            body.map(|b| hex(b).to_uppercase())
                .unwrap_or_else(|| "NULL".into()),
            "{label}"
        );
    }
    assert_no_marker(&sb);
}

#[test]
fn mariadb_nasty_names_and_password_work_and_execute_nothing() {
    let my = maria();
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        let (user, database, password) =
            (nasty("user", shell), nasty("db", shell), nasty_password());
        let restored = format!("restored {}", shell.tag());
        my.mysql(&format!(
            "CREATE USER {u}@'%' IDENTIFIED BY {p};
             CREATE DATABASE {d} CHARACTER SET utf8mb4;
             CREATE DATABASE {restored} CHARACTER SET utf8mb4;
             GRANT ALL ON {grant_db}.* TO {u}@'%';",
            u = my_literal(&user),
            p = my_literal(&password),
            d = quote_ident(&database, '`'),
            // In GRANT, a database name is a pattern where backslash escapes.
            grant_db = quote_ident(&database.replace('\\', "\\\\"), '`'),
            restored = quote_ident(&restored, '`'),
        ));
        let mut sql = "CREATE TABLE texts (id INT PRIMARY KEY, label VARCHAR(40), body TEXT);
             CREATE TABLE `t``q $(touch pwned-t)` (v TEXT);
             INSERT INTO `t``q $(touch pwned-t)` VALUES ('v');\n"
            .to_string();
        for (i, (label, body)) in SAMPLES.iter().enumerate() {
            let body = body
                .map(|b| format!("CONVERT(X'{}' USING utf8mb4)", hex(b)))
                .unwrap_or_else(|| "NULL".into());
            sql += &format!(
                "INSERT INTO texts VALUES ({i}, {}, {body});\n",
                my_literal(label)
            );
        }
        my.mysql_in(&database, &sql);

        let literal = DbTarget {
            user: lit(&user),
            password: lit(&password),
            database: lit(&database),
            ..my_target(my.port, "", "", "", &sb)
        };
        sb.run(&db::check_script(&literal), &[]).ok();
        let by_ref = my_target(my.port, "$APP_USER", "$APP_PASSWORD", "${APP_DB}", &sb);
        let env = env_of(&[
            ("APP_USER", &user),
            ("APP_PASSWORD", &password),
            ("APP_DB", &database),
        ]);
        sb.run(&db::check_script(&by_ref), &env).ok();
        dumped_bytes(sb.run(&db::dump_script(&by_ref, 60), &env).ok(), &sb);
        dumped_bytes(sb.run(&db::dump_script(&literal, 60), &[]).ok(), &sb);

        my.restore_gz(&restored, &sb.dump_file());
        assert_eq!(
            my_fingerprint(my, &database).0,
            my_fingerprint(my, &restored).0,
            "{shell:?}"
        );

        let wrong = DbTarget {
            password: lit("wrong"),
            ..literal.clone()
        };
        sb.run(&db::check_script(&wrong), &[])
            .fails(1, "Access denied for user");
        sb.run(&db::dump_script(&wrong, 60), &[])
            .fails(1, "mariadb-dump failed");
        assert_no_marker(&sb);
    }
}

fn stalled_mariadb_dump(sb: &Sandbox, timeout_secs: u64) -> (StallProxy, Running) {
    let my = maria();
    let proxy = StallProxy::start(my.port, 1 << 20);
    let target = my_target(proxy.port, "root", "$MYSQL_ROOT_PASSWORD", "rt", sb);
    let running = sb.spawn(&db::dump_script(&target, timeout_secs), &my.env());
    assert!(
        support::wait_until(Duration::from_secs(60), || proxy.stalled()),
        "the dump never got 1 MiB in"
    );
    let names: BTreeSet<String> = sb.processes().into_iter().map(|(_, comm)| comm).collect();
    assert!(
        names.contains("mariadb-dump") && names.contains("gzip"),
        "the pipeline is not running: {names:?}"
    );
    (proxy, running)
}

#[test]
fn mariadb_stdin_eof_mid_dump_kills_the_pipeline() {
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        let previous = sb.previous_dump(100_000);
        let (_proxy, mut running) = stalled_mariadb_dump(&sb, 600);
        running.close_stdin();
        let out = running.finish(Duration::from_secs(30));
        out.fails(1, "stdin closed before the dump finished");
        assert!(
            out.after_close.expect("closed") < Duration::from_secs(10),
            "{shell:?}: {:?}",
            out.after_close
        );
        assert_untouched(&sb, &previous);
    }
}

#[test]
fn mariadb_timeout_kills_the_pipeline() {
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        let previous = sb.previous_dump(100_000);
        let started = Instant::now();
        let (_proxy, running) = stalled_mariadb_dump(&sb, 1);
        running
            .finish(Duration::from_secs(30))
            .fails(1, "timed out after 1s");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{shell:?}: took {:?}",
            started.elapsed()
        );
        assert_untouched(&sb, &previous);
    }
}

#[test]
fn mariadb_password_never_appears_in_any_argv_during_a_dump() {
    let my = maria();
    let sb = Sandbox::new(Shell::Busybox);
    let proxy = StallProxy::start(my.port, 1 << 20);
    let target = DbTarget {
        password: lit(&my.password),
        ..my_target(proxy.port, "root", "", "rt", &sb)
    };
    let mut running = sb.spawn(&db::dump_script(&target, 600), &[]);
    let mut samples = 0;
    let mut saw_dump = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(proxy.stalled() && samples >= 50) && Instant::now() < deadline {
        assert_eq!(
            argv_containing(&my.password),
            vec![],
            "the password is in an argv"
        );
        for (pid, comm) in sb.processes() {
            if comm == "mariadb-dump" {
                saw_dump = true;
                let environ = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                let needle = my.password.as_bytes();
                assert!(
                    !environ.windows(needle.len()).any(|w| w == needle),
                    "the password is in the dump tool's environment"
                );
            }
        }
        samples += 1;
    }
    assert!(
        saw_dump && proxy.stalled(),
        "the dump was not observed running"
    );
    running.close_stdin();
    running
        .finish(Duration::from_secs(30))
        .fails(1, "stdin closed");
}

#[test]
fn mariadb_disk_full_keeps_the_previous_dump() {
    let my = maria();
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        let previous = sb.previous_dump(100_000);
        let target = my_target(my.port, "root", "$MYSQL_ROOT_PASSWORD", "rt", &sb);
        let script = db::dump_script(&target, 600);
        let mut cmd = sb.command(&script, &my.env());
        // SAFETY: setrlimit is async-signal-safe and only affects the child.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 256 * 1024,
                    rlim_max: 256 * 1024,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        sb.spawn_with(cmd, &script)
            .finish(Duration::from_secs(120))
            .fails(1, "gzip failed");
        assert_untouched(&sb, &previous);
    }
}

#[test]
fn mariadb_server_down_keeps_the_previous_dump() {
    let my = Mariadb::start();
    my.createdb("app");
    my.mysql_in(
        "app",
        "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2);",
    );
    let sb = Sandbox::new(Shell::Dash);
    let target = my_target(my.port, "root", "$MYSQL_ROOT_PASSWORD", "app", &sb);
    dumped_bytes(sb.run(&db::dump_script(&target, 60), &my.env()).ok(), &sb);
    let previous = fs::read(sb.dump_file()).expect("read the dump");

    my.stop();
    let out = sb.run(&db::check_script(&target), &my.env());
    out.fails(
        1,
        &format!(
            "cannot connect to MySQL at 127.0.0.1:{} as \"root\"",
            my.port
        ),
    );
    assert!(
        out.stderr.contains("Can't connect"),
        "the client's message is kept: {}",
        out.stderr
    );
    sb.run(&db::dump_script(&target, 60), &my.env())
        .fails(1, "mariadb-dump failed");
    assert_untouched(&sb, &previous);
}

#[test]
fn mariadb_check_names_missing_tools() {
    let my = maria();
    let sb = Sandbox::new(Shell::Dash);
    sb.remove_tool("mariadb-dump");
    let target = my_target(my.port, "root", "$MYSQL_ROOT_PASSWORD", "rt", &sb);
    sb.run(&db::check_script(&target), &my.env())
        .fails(1, "none of mariadb-dump or mysqldump found in PATH");
    // MySQL's names are enough.
    symlink(which("mariadb-dump"), sb.path().join("bin/mysqldump")).expect("link");
    sb.remove_tool("mariadb");
    sb.run(&db::check_script(&target), &my.env())
        .fails(1, "none of mariadb or mysql found in PATH");
    symlink(which("mariadb"), sb.path().join("bin/mysql")).expect("link");
    sb.run(&db::check_script(&target), &my.env()).ok();
    dumped_bytes(sb.run(&db::dump_script(&target, 60), &my.env()).ok(), &sb);
}

#[test]
fn mariadb_unset_variable_is_a_clear_error() {
    let my = maria();
    for shell in SHELLS {
        let sb = Sandbox::new(shell);
        let target = my_target(
            my.port,
            "root",
            "$MYSQL_ROOT_PASSWORD",
            "${MYSQL_DATABASE}",
            &sb,
        );
        sb.run(&db::check_script(&target), &my.env()).fails(
            2,
            "database: environment variable MYSQL_DATABASE is not set",
        );
        sb.run(&db::dump_script(&target, 60), &my.env()).fails(
            2,
            "database: environment variable MYSQL_DATABASE is not set",
        );
    }
}
