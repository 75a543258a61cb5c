//! The restore, verify and volume-check scripts (`src/db/scripts/{restore,verify}_*.sh`,
//! `volume_check.sh`) against real PostgreSQL and MariaDB servers.
//!
//! Dumps are made by our own dump script, exactly as `create` makes them, of databases with
//! hostile names (quotes, spaces, dots, a newline, non-ASCII) and values. Restore scripts run as
//! the exec would run them in the database container: `sh -c SCRIPT NAME ARGS…`, the password
//! line, the dump's byte count, then the gzipped dump on stdin, which stays open. Verify scripts run as in the helper pod: as the
//! unprivileged user, in the "restored volume" as the current directory, with `TMPDIR` a fresh
//! directory of that user, and with the PostgreSQL binaries *not* on PATH (the script must find
//! them in `/usr/lib/postgresql/*/bin` as in the official image).

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use backup_ns::db::restore::{self, Expect, VerifyReport};
use backup_ns::db::{self, DbTarget, Engine, Script, ValueRef};

use crate::support::{self, quote_ident, quote_literal, Mariadb, Postgres};

// ---------------------------------------------------------------------------------------------
// Running scripts

/// `name` in the test process's PATH.
fn which(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found in PATH"))
}

/// A directory of the unprivileged user: `bin/` (a PATH of plain tools), `data/` (where the dump
/// script writes), `tmp/` (TMPDIR) and `volume/` (the "restored volume").
struct Sandbox {
    dir: tempfile::TempDir,
}

const TOOLS: &[&str] = &[
    "gzip", "head", "tail", "tee", "wc", "sed", "mkfifo", "rm", "mv", "ls", "df", "sleep", "sync",
    "mkdir", "chmod", "chown", "cat", "id", "kill",
];

impl Sandbox {
    fn new() -> Sandbox {
        let dir = support::unprivileged_temp_dir("bns-restore-");
        for d in ["bin", "data", "tmp", "volume"] {
            let p = dir.path().join(d);
            fs::create_dir(&p).expect("create sandbox directory");
            support::give_to_unprivileged(&p);
        }
        let bin = dir.path().join("bin");
        for tool in TOOLS {
            symlink(which(tool), bin.join(tool)).expect("link a tool");
        }
        Sandbox { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn dump_file(&self) -> PathBuf {
        self.path("data/dump.sql.gz")
    }

    fn target(&self, engine: Engine, port: u16, user: &str, password: &str, db: &str) -> DbTarget {
        DbTarget {
            engine,
            host: "127.0.0.1".into(),
            port,
            user: ValueRef::Literal(user.into()),
            password: ValueRef::Literal(password.into()),
            database: ValueRef::Literal(db.into()),
            dump_file: self.dump_file().to_str().expect("UTF-8").to_string(),
            default_character_set: "utf8mb4".into(),
        }
    }

    /// PATH for the database container: the plain tools plus the engine's client tools.
    fn db_path(&self, engine: Engine) -> String {
        let extra = match engine {
            Engine::Postgres => Postgres::bin_dir(),
            Engine::Mysql => PathBuf::from("/usr/bin"),
        };
        format!("{}:{}", self.path("bin").display(), extra.display())
    }
}

struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
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

    /// Asserts exit 1 and a final `backup-ns:` line containing `needle`.
    #[track_caller]
    fn fails(&self, needle: &str) -> &Outcome {
        let line = db::last_error_line(&self.stderr);
        assert_eq!(
            self.status.code(),
            Some(1),
            "exit status; stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert!(
            line.starts_with("backup-ns: ") && line.contains(needle),
            "expected {needle:?} in the last line {line:?}; stderr:\n{}",
            self.stderr
        );
        self
    }
}

/// Runs `script` with `sh` = dash (or busybox), as the unprivileged user, in `cwd`: writes its
/// stdin plus `input`, and closes stdin afterwards unless `keep_open` (the dump script aborts on
/// EOF, so it stays open until the script exits).
fn run(
    script: &Script,
    input: Vec<u8>,
    keep_open: bool,
    path: &str,
    env: &[(&str, &str)],
    cwd: &Path,
    busybox: bool,
) -> Outcome {
    assert_eq!(&script.argv[..2], ["sh", "-c"]);
    let mut cmd = Command::new(which(if busybox { "busybox" } else { "dash" }));
    cmd.arg0("sh")
        .args(&script.argv[1..])
        .env_clear()
        .env("PATH", path)
        .env("HOME", "/nonexistent")
        .env("LANG", "C.UTF-8")
        .envs(env.iter().copied())
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    support::as_unprivileged(&mut cmd);
    let mut child = cmd.spawn().expect("spawn sh");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut bytes = script.stdin.clone().into_bytes();
    bytes.extend(input);
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
        keep_open.then_some(stdin)
    });
    let out = child.wait_with_output().expect("wait for the script");
    drop(writer.join());
    Outcome {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A fresh name per call, so tests sharing a server never share a database.
fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn gunzip(bytes: &[u8]) -> String {
    let mut child = Command::new("gzip")
        .arg("-cd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip -cd");
    let mut stdin = child.stdin.take().unwrap();
    let bytes = bytes.to_vec();
    let w = thread::spawn(move || stdin.write_all(&bytes));
    let out = child.wait_with_output().unwrap();
    w.join().unwrap().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("UTF-8 dump")
}

fn gzip(text: &str) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip -c");
    let mut stdin = child.stdin.take().unwrap();
    let text = text.as_bytes().to_vec();
    let w = thread::spawn(move || stdin.write_all(&text));
    let out = child.wait_with_output().unwrap();
    w.join().unwrap().unwrap();
    out.stdout
}

/// The dump with `line` inserted before the first line that starts with `before`.
fn insert_before(dump: &str, before: &str, line: &str) -> String {
    let at = dump
        .find(&format!("\n{before}"))
        .unwrap_or_else(|| panic!("no line starting with {before:?} in the dump"));
    format!("{}\n{line}{}", &dump[..at], &dump[at..])
}

/// Values that break naive quoting or encodings.
const VALUES: &[Option<&str>] = &[
    Some("🦀 日本語 Ünïcödé e\u{301}"),
    Some("it's \"quoted\" `tick` $(touch pwned) ; \\ back\\\\slash"),
    Some("line1\nline2\r\n\ttab"),
    Some("\\.\n-- PostgreSQL database dump complete\n-- Dump completed\nCOMMIT;"),
    None,
    Some(""),
];

// ---------------------------------------------------------------------------------------------
// PostgreSQL

const PG_SCHEMA: &str = "Sch \"é\". $(x)";
const PG_TABLE: &str = "t'\"\n ü.🦀";
const PG_COLUMN: &str = "c \"ol\"\t.";

/// A database on the shared server with a hostile schema, table and column, non-ASCII rows, a
/// plain table `public.items` of 100 rows, a table owned by a role of its own and a grant to
/// another (a real dump names roles the scratch server does not have).
fn pg_source(pg: &Postgres) -> String {
    let name = unique("src");
    pg.createdb(&name);
    let owner = unique("owner");
    let reader = unique("reader \"r\"");
    let (s, t, c) = (
        quote_ident(PG_SCHEMA, '"'),
        quote_ident(PG_TABLE, '"'),
        quote_ident(PG_COLUMN, '"'),
    );
    let mut sql = format!(
        "CREATE ROLE {o}; CREATE ROLE {r};
         CREATE SCHEMA {s};
         CREATE TABLE {s}.{t} (id int PRIMARY KEY, {c} text);
         CREATE TABLE public.items (id int PRIMARY KEY, label text);
         INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 100) g;
         CREATE TABLE public.owned (v int); INSERT INTO public.owned VALUES (7);
         ALTER TABLE public.owned OWNER TO {o};
         GRANT SELECT ON public.items TO {r};\n",
        o = quote_ident(&owner, '"'),
        r = quote_ident(&reader, '"'),
    );
    for (i, v) in VALUES.iter().enumerate() {
        let v = v.map(quote_literal).unwrap_or_else(|| "NULL".into());
        sql += &format!("INSERT INTO {s}.{t} VALUES ({i}, {v});\n");
    }
    pg.psql_in(&name, &sql);
    name
}

/// Every table of `database` with its row count and a digest of its rows, in one string.
fn pg_contents(pg: &Postgres, database: &str) -> String {
    pg.psql_in(
        database,
        "SELECT string_agg(format('%I.%I', schemaname, tablename) || ' ' ||
             (xpath('/row/d/text()', query_to_xml(format(
                 'SELECT count(*) || %L || coalesce(md5(string_agg(md5(r::text), %L ORDER BY md5(r::text))), %L) AS d FROM %I.%I r',
                 ' ', '', '-', schemaname, tablename), false, true, '')))[1]::text, E'\\n' ORDER BY schemaname, tablename)
           FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    )
}

fn pg_databases(pg: &Postgres) -> Vec<String> {
    pg.psql("SELECT datname FROM pg_database")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Dumps `database` with our dump script; the gzipped bytes.
fn pg_dump(sb: &Sandbox, pg: &Postgres, database: &str) -> Vec<u8> {
    let target = sb.target(
        Engine::Postgres,
        pg.port,
        &pg.superuser,
        &pg.password,
        database,
    );
    let out = run(
        &db::dump_script(&target, 120),
        vec![],
        true,
        &sb.db_path(Engine::Postgres),
        &[],
        &sb.path("."),
        false,
    );
    out.ok();
    fs::read(sb.dump_file()).expect("the dump")
}

fn pg_restore(sb: &Sandbox, pg: &Postgres, into: &str, create: bool, dump: &[u8]) -> Outcome {
    let target = sb.target(
        Engine::Postgres,
        pg.port,
        &pg.superuser,
        &pg.password,
        "postgres",
    );
    run(
        &restore::restore_script(&target, Some(into), create, dump.len() as u64),
        dump.to_vec(),
        // As backup-ns does: stdin stays open after the announced bytes, until the script exits.
        true,
        &sb.db_path(Engine::Postgres),
        &[],
        &sb.path("."),
        false,
    )
}

#[test]
fn postgres_restore_round_trip_with_hostile_names_creates_and_replaces() {
    let pg = Postgres::shared();
    let sb = Sandbox::new();
    let src = pg_source(pg);
    let dump = pg_dump(&sb, pg, &src);
    let expected = pg_contents(pg, &src);
    assert!(expected.contains("ü.🦀"), "{expected}");

    // --into-database: a missing database is created, with every row.
    let copy = unique("copy \"é\"\n");
    let out = pg_restore(&sb, pg, &copy, true, &dump);
    let bytes = restore::parse_restore_output(&out.ok().stdout).expect("restored_bytes");
    assert_eq!(bytes, gunzip(&dump).len() as u64);
    assert_eq!(pg_contents(pg, &copy), expected);
    let got = pg.psql_in(
        &copy,
        &format!(
            "SELECT string_agg(coalesce(encode(convert_to({c}, 'UTF8'), 'hex'), 'NULL'), ',' ORDER BY id) FROM {s}.{t}",
            c = quote_ident(PG_COLUMN, '"'),
            s = quote_ident(PG_SCHEMA, '"'),
            t = quote_ident(PG_TABLE, '"')
        ),
    );
    let want: Vec<String> = VALUES
        .iter()
        .map(|v| {
            v.map(|v| v.bytes().map(|b| format!("{b:02x}")).collect())
                .unwrap_or_else(|| "NULL".into())
        })
        .collect();
    assert_eq!(got, want.join(","));

    // Over live data: changed and extra rows are replaced by the dump's.
    pg.psql_in(
        &copy,
        "UPDATE public.items SET label = 'changed'; DELETE FROM public.owned; INSERT INTO public.items VALUES (1000, 'extra')",
    );
    assert_ne!(pg_contents(pg, &copy), expected);
    pg_restore(&sb, pg, &copy, false, &dump).ok();
    assert_eq!(pg_contents(pg, &copy), expected);

    // Without create-if-missing, a missing database is an error that creates nothing.
    let missing = unique("missing");
    pg_restore(&sb, pg, &missing, false, &dump).fails("does not exist");
    assert!(!pg_databases(pg).contains(&missing));
}

#[test]
fn postgres_failed_restores_leave_the_database_exactly_as_it_was() {
    let pg = Postgres::shared();
    let sb = Sandbox::new();
    let src = pg_source(pg);
    let dump = pg_dump(&sb, pg, &src);
    let target = unique("live");
    pg_restore(&sb, pg, &target, true, &dump).ok();
    pg.psql_in(
        &target,
        "UPDATE public.items SET label = 'live ' || id; CREATE TABLE public.only_live (x int); INSERT INTO public.only_live VALUES (1)",
    );
    let before = pg_contents(pg, &target);

    let text = gunzip(&dump);
    // The error comes after the dump has dropped and recreated tables and loaded some data.
    let failing = insert_before(
        &text,
        "ALTER TABLE ONLY public.items",
        "SELECT 1/0; -- an error half-way\n",
    );
    assert!(
        failing.find("COPY public.items").unwrap() < failing.find("SELECT 1/0").unwrap(),
        "the error must come after data was loaded"
    );
    let no_trailer = text.replace("-- PostgreSQL database dump complete", "-- cut");
    let truncated = dump[..dump.len() - 5].to_vec();
    let corrupt = {
        let mut d = dump.clone();
        let mid = d.len() / 2;
        d[mid] ^= 0xff;
        d
    };
    for (what, bad, needle) in [
        (
            "SQL error",
            gzip(&failing),
            "loading the dump failed (psql exit status 3",
        ),
        (
            "no trailer",
            gzip(&no_trailer),
            "lacks \"-- PostgreSQL database dump complete\"",
        ),
        ("truncated gzip", truncated, "not a valid gzip stream"),
        ("corrupt gzip", corrupt, "not a valid gzip stream"),
    ] {
        let out = pg_restore(&sb, pg, &target, false, &bad);
        out.fails(needle).fails("the database is unchanged");
        assert_eq!(
            pg_contents(pg, &target),
            before,
            "{what} changed the database"
        );
    }

    // A database created by a failed restore is dropped again.
    let fresh = unique("fresh");
    pg_restore(&sb, pg, &fresh, true, &gzip(&failing)).fails("was dropped");
    assert!(!pg_databases(pg).contains(&fresh));
}

/// Runs the verify script as the helper pod would, in `sb`'s `volume/`.
fn verify(sb: &Sandbox, engine: Engine, dump_rel: &str, expects: &[&str]) -> Outcome {
    let expects: Vec<Expect> = expects
        .iter()
        .map(|e| Expect::parse(e).expect("expectation"))
        .collect();
    let tmp = sb.path("tmp");
    // Not the PostgreSQL binaries: the script must find them itself.
    let path = match engine {
        Engine::Postgres => sb.path("bin").display().to_string(),
        Engine::Mysql => format!("{}:/usr/bin:/bin", sb.path("bin").display()),
    };
    run(
        &restore::verify_script(engine, dump_rel, &expects),
        vec![],
        false,
        &path,
        &[("TMPDIR", tmp.to_str().unwrap())],
        &sb.path("volume"),
        false,
    )
}

/// No scratch server left: TMPDIR is empty and no server process mentions the sandbox.
#[track_caller]
fn assert_no_scratch_left(sb: &Sandbox) {
    let left: Vec<_> = fs::read_dir(sb.path("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "scratch files left behind: {left:?}");
    let needle = sb.path("tmp").display().to_string();
    let procs: Vec<String> = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(&needle)
                .then(|| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        })
        .collect();
    assert!(procs.is_empty(), "processes left behind: {procs:?}");
}

fn write_volume(sb: &Sandbox, rel: &str, bytes: &[u8]) {
    let path = sb.path("volume").join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, bytes).unwrap();
}

#[test]
fn postgres_verify_reports_tables_row_counts_and_expectations() {
    let pg = Postgres::shared();
    let sb = Sandbox::new();
    let src = pg_source(pg);
    write_volume(&sb, ".backup-ns/dump.sql.gz", &pg_dump(&sb, pg, &src));
    let out = verify(
        &sb,
        Engine::Postgres,
        ".backup-ns/dump.sql.gz",
        &[
            "SELECT count(*) FROM public.items=100",
            "SELECT count(*) FROM public.items WHERE id > 1000=1",
            &format!(
                "SELECT {c} FROM {s}.{t} WHERE id = 0=0",
                c = quote_ident(PG_COLUMN, '"'),
                s = quote_ident(PG_SCHEMA, '"'),
                t = quote_ident(PG_TABLE, '"')
            ),
            "SELECT 1 WHERE false=0",
        ],
    );
    let report = VerifyReport::parse(&out.ok().stdout).expect("JSON lines");
    let tables: Vec<(String, u64)> = report
        .tables
        .iter()
        .map(|t| (t.name.clone(), t.rows))
        .collect();
    assert_eq!(
        tables,
        [
            (format!("{PG_SCHEMA}.{PG_TABLE}"), VALUES.len() as u64),
            ("public.items".to_string(), 100),
            ("public.owned".to_string(), 1),
        ]
    );
    assert_eq!(
        report.values,
        [
            Some("100".to_string()),
            Some("0".to_string()),
            VALUES[0].map(str::to_string),
            None
        ]
    );
    let expects: Vec<Expect> = ["SELECT a=100", "SELECT b=1", "SELECT c=0", "SELECT d=0"]
        .iter()
        .map(|e| Expect::parse(e).unwrap())
        .collect();
    let ok: Vec<bool> = report.judge(&expects).iter().map(|o| o.ok).collect();
    assert_eq!(ok, [true, false, false, false]);
    assert_no_scratch_left(&sb);
}

#[test]
fn postgres_verify_fails_clearly_on_bad_dumps() {
    let pg = Postgres::shared();
    let sb = Sandbox::new();
    let src = pg_source(pg);
    let dump = pg_dump(&sb, pg, &src);
    let text = gunzip(&dump);
    write_volume(&sb, "truncated.gz", &dump[..dump.len() / 2]);
    write_volume(&sb, "garbage.gz", b"this is not gzip\n");
    write_volume(
        &sb,
        "bad-statement.gz",
        &gzip(&insert_before(
            &text,
            "ALTER TABLE ONLY public.items",
            "CREATE TABLE broken (;\n",
        )),
    );
    write_volume(
        &sb,
        "no-trailer.gz",
        &gzip(&text.replace("-- PostgreSQL database dump complete", "-- cut")),
    );
    for (rel, needle) in [
        (
            "missing.gz",
            "dump file missing.gz not found on the restored volume",
        ),
        ("truncated.gz", "not a valid gzip stream"),
        ("garbage.gz", "not a valid gzip stream"),
        (
            "bad-statement.gz",
            "loading the dump failed (psql exit status 3",
        ),
        (
            "no-trailer.gz",
            "lacks \"-- PostgreSQL database dump complete\"",
        ),
    ] {
        verify(&sb, Engine::Postgres, rel, &[]).fails(needle);
        assert_no_scratch_left(&sb);
    }
    write_volume(&sb, "good.gz", &dump);
    verify(
        &sb,
        Engine::Postgres,
        "good.gz",
        &["SELECT * FROM nosuch=1"],
    )
    .fails("expectation 0 (SELECT * FROM nosuch) failed");
    assert_no_scratch_left(&sb);
}

// ---------------------------------------------------------------------------------------------
// MariaDB

const MY_TABLE: &str = "t'\"\n ü.x`y";
const MY_COLUMN: &str = "c `ol`\t.";

fn my_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn my_source(my: &Mariadb) -> String {
    let name = unique("src");
    my.createdb(&name);
    let (t, c) = (quote_ident(MY_TABLE, '`'), quote_ident(MY_COLUMN, '`'));
    let mut sql = format!(
        "SET NAMES utf8mb4;
         CREATE TABLE {t} (id INT PRIMARY KEY, {c} TEXT) CHARACTER SET utf8mb4;
         CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(40));
         INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_100;\n"
    );
    for (i, v) in VALUES.iter().enumerate() {
        // As hex: the client would turn a literal "\r\n" into "\n".
        let v = v
            .map(|v| {
                let hex: String = v.bytes().map(|b| format!("{b:02X}")).collect();
                format!("CONVERT(X'{hex}' USING utf8mb4)")
            })
            .unwrap_or_else(|| "NULL".into());
        sql += &format!("INSERT INTO {t} VALUES ({i}, {v});\n");
    }
    my.mysql_in(&name, &sql);
    name
}

/// Every table of `database` with its row count and a digest of its rows, in one string.
fn my_contents(my: &Mariadb, database: &str) -> String {
    let tables = my.mysql(&format!(
        "SET NAMES utf8mb4; SELECT HEX(table_name) FROM information_schema.tables WHERE table_schema = {} ORDER BY table_name",
        my_literal(database)
    ));
    let unhex = |h: &str| {
        let bytes: Vec<u8> = (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect();
        String::from_utf8(bytes).unwrap()
    };
    tables
        .lines()
        .map(|h| {
            let table = unhex(h);
            let cols = my.mysql(&format!(
                "SET NAMES utf8mb4; SELECT HEX(column_name) FROM information_schema.columns WHERE table_schema = {} AND table_name = {} ORDER BY ordinal_position",
                my_literal(database),
                my_literal(&table)
            ));
            let cols: Vec<String> = cols
                .lines()
                .map(|c| format!("QUOTE(HEX(CAST({} AS BINARY)))", quote_ident(&unhex(c), '`')))
                .collect();
            let d = my.mysql_in(
                database,
                &format!(
                    "SET NAMES utf8mb4; SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS(',', {}))), 0) FROM {}",
                    cols.join(", "),
                    quote_ident(&table, '`')
                ),
            );
            format!("{table:?} {d}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn my_dump(sb: &Sandbox, my: &Mariadb, database: &str) -> Vec<u8> {
    let target = sb.target(
        Engine::Mysql,
        my.port,
        &my.superuser,
        &my.password,
        database,
    );
    run(
        &db::dump_script(&target, 120),
        vec![],
        true,
        &sb.db_path(Engine::Mysql),
        &[],
        &sb.path("."),
        false,
    )
    .ok();
    fs::read(sb.dump_file()).expect("the dump")
}

fn my_restore(sb: &Sandbox, my: &Mariadb, into: &str, create: bool, dump: &[u8]) -> Outcome {
    let target = sb.target(Engine::Mysql, my.port, &my.superuser, &my.password, "mysql");
    run(
        &restore::restore_script(&target, Some(into), create, dump.len() as u64),
        dump.to_vec(),
        // As backup-ns does: stdin stays open after the announced bytes, until the script exits.
        true,
        &sb.db_path(Engine::Mysql),
        &[],
        &sb.path("."),
        true,
    )
}

#[test]
fn mariadb_restore_round_trip_with_hostile_names_creates_and_replaces() {
    let my = Mariadb::shared();
    let sb = Sandbox::new();
    let src = my_source(my);
    let dump = my_dump(&sb, my, &src);
    let expected = my_contents(my, &src);
    assert!(expected.contains("ü.x`y"), "{expected}");

    let copy = unique("copy `x` y");
    let out = my_restore(&sb, my, &copy, true, &dump);
    let bytes = restore::parse_restore_output(&out.ok().stdout).expect("restored_bytes");
    assert_eq!(bytes, gunzip(&dump).len() as u64);
    assert_eq!(my_contents(my, &copy), expected);
    let got = my.mysql_in(
        &copy,
        &format!(
            "SET NAMES utf8mb4; SELECT GROUP_CONCAT(COALESCE(HEX({}), 'NULL') ORDER BY id) FROM {}",
            quote_ident(MY_COLUMN, '`'),
            quote_ident(MY_TABLE, '`')
        ),
    );
    let want: Vec<String> = VALUES
        .iter()
        .map(|v| {
            v.map(|v| v.bytes().map(|b| format!("{b:02X}")).collect())
                .unwrap_or_else(|| "NULL".into())
        })
        .collect();
    assert_eq!(got, want.join(","));

    my.mysql_in(
        &copy,
        "SET NAMES utf8mb4; UPDATE items SET label = 'changed'; INSERT INTO items VALUES (1000, 'extra')",
    );
    assert_ne!(my_contents(my, &copy), expected);
    my_restore(&sb, my, &copy, false, &dump).ok();
    assert_eq!(my_contents(my, &copy), expected);

    let missing = unique("missing");
    my_restore(&sb, my, &missing, false, &dump).fails("Unknown database");
}

#[test]
fn mariadb_truncated_or_failing_restore_exits_1() {
    let my = Mariadb::shared();
    let sb = Sandbox::new();
    let src = my_source(my);
    let dump = my_dump(&sb, my, &src);
    let target = unique("live");
    my_restore(&sb, my, &target, true, &dump).ok();
    let text = gunzip(&dump);
    for (bad, needle) in [
        (dump[..dump.len() - 5].to_vec(), "not a valid gzip stream"),
        (
            gzip(&text.replace("-- Dump completed", "-- cut")),
            "lacks \"-- Dump completed\"",
        ),
        (
            gzip(&insert_before(
                &text,
                "UNLOCK TABLES",
                "SELECT * FROM nosuch;\n",
            )),
            "loading the dump failed (mariadb exit status 1",
        ),
    ] {
        my_restore(&sb, my, &target, false, &bad)
            .fails(needle)
            .fails("MySQL cannot roll back DDL");
    }
}

#[test]
fn mariadb_verify_reports_tables_and_fails_clearly_on_bad_dumps() {
    let my = Mariadb::shared();
    let sb = Sandbox::new();
    let src = my_source(my);
    let dump = my_dump(&sb, my, &src);
    write_volume(&sb, "dump.sql.gz", &dump);
    let out = verify(
        &sb,
        Engine::Mysql,
        "dump.sql.gz",
        &[
            "SELECT COUNT(*) FROM items=100",
            &format!(
                "SELECT {} FROM {} WHERE id = 0=0",
                quote_ident(MY_COLUMN, '`'),
                quote_ident(MY_TABLE, '`')
            ),
            "SELECT 'a''b\\\\c' AS x, 2 AS y=0",
            "SELECT 1 FROM items WHERE id < 0=0",
        ],
    );
    let report = VerifyReport::parse(&out.ok().stdout).expect("JSON lines");
    let mut tables: Vec<(String, u64)> = report
        .tables
        .iter()
        .map(|t| (t.name.clone(), t.rows))
        .collect();
    tables.sort();
    let mut want = vec![
        ("items".to_string(), 100),
        (MY_TABLE.to_string(), VALUES.len() as u64),
    ];
    want.sort();
    assert_eq!(tables, want);
    assert_eq!(
        report.values,
        [
            Some("100".to_string()),
            VALUES[0].map(str::to_string),
            Some("a'b\\c".to_string()),
            None
        ]
    );
    assert_no_scratch_left(&sb);

    let text = gunzip(&dump);
    write_volume(&sb, "truncated.gz", &dump[..dump.len() / 2]);
    write_volume(
        &sb,
        "bad-statement.gz",
        &gzip(&insert_before(
            &text,
            "UNLOCK TABLES",
            "SELECT * FROM nosuch;\n",
        )),
    );
    write_volume(
        &sb,
        "no-trailer.gz",
        &gzip(&text.replace("-- Dump completed", "-- cut")),
    );
    for (rel, needle) in [
        (
            "missing.gz",
            "dump file missing.gz not found on the restored volume",
        ),
        ("truncated.gz", "not a valid gzip stream"),
        (
            "bad-statement.gz",
            "loading the dump failed (mariadb exit status 1",
        ),
        ("no-trailer.gz", "lacks \"-- Dump completed\""),
    ] {
        verify(&sb, Engine::Mysql, rel, &[]).fails(needle);
        assert_no_scratch_left(&sb);
    }
}

// ---------------------------------------------------------------------------------------------
// volume_check.sh

#[test]
fn volume_check_reports_files_sizes_and_missing_paths() {
    let sb = Sandbox::new();
    write_volume(&sb, "dir/a \"b\"\tü.txt", b"12345");
    fs::create_dir_all(sb.path("volume/empty dir")).unwrap();
    let paths = vec![
        "dir/a \"b\"\tü.txt".to_string(),
        "empty dir".to_string(),
        "nope/x".to_string(),
    ];
    for busybox in [false, true] {
        let out = run(
            &restore::volume_check_script(&paths),
            vec![],
            false,
            &sb.path("bin").display().to_string(),
            &[],
            &sb.path("volume"),
            busybox,
        );
        let entries = restore::parse_volume_check(&out.ok().stdout).expect("JSON lines");
        let got: Vec<(String, bool, Option<u64>)> = entries
            .into_iter()
            .map(|e| (e.path, e.exists, e.bytes))
            .collect();
        assert_eq!(
            got,
            [
                (paths[0].clone(), true, Some(5)),
                (paths[1].clone(), true, None),
                (paths[2].clone(), false, None),
            ],
            "busybox: {busybox}"
        );
    }
}
