//! Restore and verification: the in-pod scripts that put a dump back into a database or prove
//! that it loads, their argument layout, and the parsing of what they print.
//!
//! `restore_*.sh` run in the database container and read the gzipped dump from stdin after the
//! password line, so backup-ns streams the dump straight from the helper pod into the database
//! without keeping it. PostgreSQL restores are one transaction that commits only after a clean
//! gzip stream ending in pg_dump's completion trailer; MySQL cannot roll back DDL, so a failed
//! MySQL restore may leave the database partly restored (the script says so). `verify_*.sh` run
//! in a helper pod from the database's image, start a throwaway server in `$TMPDIR`, load the
//! dump the same guarded way and print JSON lines; `volume_check.sh` looks for files on a
//! restored volume. Everything here is pure; the scripts are tested against real servers in
//! `tests/it/db_restore.rs`.

use std::fmt;

use super::{password_line, DbTarget, Engine, Script, ValueRef};

/// Args: host port user database create_if_missing; stdin: password line, then the gzipped dump.
pub const RESTORE_POSTGRES_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/restore_common.sh"),
    include_str!("scripts/restore_postgres.sh")
);

/// Args: host port user database create_if_missing charset; stdin: password line, then the
/// gzipped dump.
pub const RESTORE_MYSQL_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/mysql_options.sh"),
    include_str!("scripts/restore_common.sh"),
    include_str!("scripts/restore_mysql.sh")
);

/// Args: dump path (relative to cwd), expectation SQL…; no stdin.
pub const VERIFY_POSTGRES_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/restore_common.sh"),
    include_str!("scripts/verify_common.sh"),
    include_str!("scripts/verify_postgres.sh")
);

/// Args: dump path (relative to cwd), expectation SQL…; no stdin.
pub const VERIFY_MYSQL_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/restore_common.sh"),
    include_str!("scripts/verify_common.sh"),
    include_str!("scripts/verify_mysql.sh")
);

/// Args: paths relative to cwd; no stdin.
pub const VOLUME_CHECK_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/volume_check.sh")
);

/// The restore script for `target` and a dump of `dump_bytes` bytes. `database` overrides the
/// target's database (`--into-database`, a literal name); `create_if_missing` creates it when it
/// does not exist. The caller writes [`Script::stdin`] (the password line and the byte count),
/// then streams exactly `dump_bytes` bytes of the gzipped dump, and may keep stdin open until
/// the script exits; parse stdout with [`parse_restore_output`].
pub fn restore_script(
    target: &DbTarget,
    database: Option<&str>,
    create_if_missing: bool,
    dump_bytes: u64,
) -> Script {
    let database = match database {
        Some(name) => ValueRef::Literal(name.to_string()).encode(),
        None => target.database.encode(),
    };
    let mut args = vec![
        target.host.clone(),
        target.port.to_string(),
        target.user.encode(),
        database,
        if create_if_missing { "1" } else { "0" }.to_string(),
    ];
    let (text, name) = match target.engine {
        Engine::Postgres => (RESTORE_POSTGRES_SCRIPT, "backup-ns-postgres-restore"),
        Engine::Mysql => {
            args.push(target.default_character_set.clone());
            (RESTORE_MYSQL_SCRIPT, "backup-ns-mysql-restore")
        }
    };
    let stdin = format!("{}{dump_bytes}\n", password_line(target));
    Script::new(text, name, args, stdin)
}

/// The size of the restored SQL text from a restore script's stdout (`restored_bytes=N` on the
/// last non-empty line).
pub fn parse_restore_output(stdout: &str) -> Result<u64, String> {
    super::last_count(stdout, "restored_bytes")
}

/// One `--expect 'SQL=MIN'` check: the first column of the first row of `sql`, read as an
/// integer, must be at least `min`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Expect {
    pub sql: String,
    pub min: i64,
}

impl Expect {
    /// Parses `SQL=MIN`, split at the *last* `=` so that SQL may contain `=` itself
    /// (`SELECT count(*) FROM t WHERE a = 1=5`).
    pub fn parse(s: &str) -> Result<Expect, String> {
        let Some((sql, min)) = s.rsplit_once('=') else {
            return Err(format!(
                "expectation {s:?}: expected SQL=MIN, e.g. 'SELECT count(*) FROM orders=1'"
            ));
        };
        let sql = sql.trim();
        if sql.is_empty() {
            return Err(format!(
                "expectation {s:?}: the SQL before the last '=' is empty"
            ));
        }
        if sql.contains('\0') {
            return Err(format!("expectation {s:?}: the SQL must not contain NUL"));
        }
        let min = min.trim();
        let min = min.parse().map_err(|_| {
            format!(
                "expectation {s:?}: the minimum after the last '=' must be an integer, not {min:?}"
            )
        })?;
        Ok(Expect {
            sql: sql.to_string(),
            min,
        })
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.sql, self.min)
    }
}

/// The verify script for a dump at `dump_rel` (relative to the restored volume's root, checked
/// with [`validate_relative_path`]); parse stdout with [`VerifyReport::parse`].
pub fn verify_script(engine: Engine, dump_rel: &str, expects: &[Expect]) -> Script {
    let (text, name) = match engine {
        Engine::Postgres => (VERIFY_POSTGRES_SCRIPT, "backup-ns-postgres-verify"),
        Engine::Mysql => (VERIFY_MYSQL_SCRIPT, "backup-ns-mysql-verify"),
    };
    let mut args = vec![dump_rel.to_string()];
    args.extend(expects.iter().map(|e| e.sql.clone()));
    Script::new(text, name, args, String::new())
}

/// A restored table and its exact row count.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCount {
    /// `schema.name` for PostgreSQL, `name` for MySQL (as the server spells it, unquoted).
    pub name: String,
    pub rows: u64,
}

/// What a verify script reported.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct VerifyReport {
    pub tables: Vec<TableCount>,
    /// Per expectation, in order: the first column of the first row as text (`None`: no row, or
    /// SQL NULL).
    pub values: Vec<Option<String>>,
}

/// One expectation judged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExpectOutcome {
    pub sql: String,
    pub min: i64,
    pub value: Option<String>,
    pub ok: bool,
}

impl VerifyReport {
    /// Parses the JSON lines of a verify script: `{"table":…,"rows":N}` and
    /// `{"expect":I,"value":…}` (I counting from 0, in order).
    pub fn parse(stdout: &str) -> Result<VerifyReport, String> {
        let mut report = VerifyReport::default();
        for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
            let bad = |why: &str| format!("unexpected verify script output {line:?}: {why}");
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
            if let Some(table) = v.get("table") {
                let name = table.as_str().ok_or_else(|| bad("table is not a string"))?;
                let rows = v
                    .get("rows")
                    .and_then(serde_json::Value::as_u64)
                    .ok_or_else(|| bad("rows is not a count"))?;
                report.tables.push(TableCount {
                    name: name.to_string(),
                    rows,
                });
            } else if let Some(index) = v.get("expect") {
                let index = index
                    .as_u64()
                    .ok_or_else(|| bad("expect is not an index"))?;
                if index != report.values.len() as u64 {
                    return Err(bad(&format!(
                        "expected expectation {} next",
                        report.values.len()
                    )));
                }
                let value = match v.get("value") {
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(serde_json::Value::Null) => None,
                    _ => return Err(bad("value is neither a string nor null")),
                };
                report.values.push(value);
            } else {
                return Err(bad("neither a table nor an expectation"));
            }
        }
        Ok(report)
    }

    /// Judges each expectation against its reported value: it passes when the value is an
    /// integer of at least `min`; no row, NULL, a non-numeric value or a missing report fail.
    pub fn judge(&self, expects: &[Expect]) -> Vec<ExpectOutcome> {
        expects
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let value = self.values.get(i).cloned().flatten();
                let ok = value
                    .as_deref()
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .is_some_and(|n| n >= e.min);
                ExpectOutcome {
                    sql: e.sql.clone(),
                    min: e.min,
                    value,
                    ok,
                }
            })
            .collect()
    }
}

/// The volume check script for `paths` (relative to the restored volume's root, each checked
/// with [`validate_relative_path`]); parse stdout with [`parse_volume_check`].
pub fn volume_check_script(paths: &[String]) -> Script {
    Script::new(
        VOLUME_CHECK_SCRIPT,
        "backup-ns-volume-check",
        paths.to_vec(),
        String::new(),
    )
}

/// One path as the volume check saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct VolumeEntry {
    pub path: String,
    pub exists: bool,
    /// Size of a regular file; `None` when missing or not a regular file.
    pub bytes: Option<u64>,
}

/// Parses the JSON lines of the volume check script.
pub fn parse_volume_check(stdout: &str) -> Result<Vec<VolumeEntry>, String> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .map_err(|e| format!("unexpected volume check output {line:?}: {e}"))
        })
        .collect()
}

/// Checks a path relative to a restored volume's root: not empty, not absolute, no `..`
/// component (it must stay on the volume), no NUL or newline (argv and JSON lines carry it).
pub fn validate_relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".to_string());
    }
    if path.starts_with('/') {
        return Err(format!(
            "{path:?} must be relative to the volume's root, not absolute"
        ));
    }
    if path.contains(['\0', '\n', '\r']) {
        return Err(format!("{path:?} must not contain NUL or line breaks"));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(format!("{path:?} must not contain a '..' component"));
    }
    if path.ends_with('/') {
        return Err(format!("{path:?} must name a file, not a directory"));
    }
    Ok(())
}

/// The dump's path on a restored volume: `dump_file` (absolute, in the database container)
/// without the `mount_path` of the snapshotted volume in that container. Fails when the dump is
/// not under the mount (it is not in the snapshot).
pub fn relative_dump_path(mount_path: &str, dump_file: &str) -> Result<String, String> {
    if !mount_path.starts_with('/') {
        return Err(format!("mount path {mount_path:?} is not absolute"));
    }
    let mount = mount_path.trim_end_matches('/');
    let rel = dump_file
        .strip_prefix(mount)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(|| {
            format!(
                "dump file {dump_file:?} is not on the volume mounted at {mount_path:?}: it is not in the snapshot (use --dump-path)"
            )
        })?
        .trim_start_matches('/');
    validate_relative_path(rel).map_err(|e| format!("dump file {dump_file:?}: {e}"))?;
    Ok(rel.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(engine: Engine) -> DbTarget {
        DbTarget {
            engine,
            host: "127.0.0.1".into(),
            port: 5432,
            user: ValueRef::parse("${POSTGRES_USER}"),
            password: ValueRef::Literal("s3cret'\"$(x)".into()),
            database: ValueRef::parse("$POSTGRES_DB"),
            dump_file: "/var/lib/postgresql/data/dump.sql.gz".into(),
            default_character_set: "utf8mb4".into(),
        }
    }

    #[test]
    fn restore_argv_matches_the_scripts_and_keeps_the_password_on_stdin() {
        let pg = restore_script(&target(Engine::Postgres), None, false, 1234);
        assert_eq!(pg.argv[2], RESTORE_POSTGRES_SCRIPT);
        assert_eq!(
            pg.argv[3..],
            [
                "backup-ns-postgres-restore",
                "127.0.0.1",
                "5432",
                "$POSTGRES_USER",
                "$POSTGRES_DB",
                "0"
            ]
        );
        assert_eq!(
            pg.stdin, "=s3cret'\"$(x)\n1234\n",
            "password, then the dump's size"
        );
        assert!(pg.argv.iter().all(|a| !a.contains("s3cret")));

        let into = restore_script(&target(Engine::Postgres), Some("$copy"), true, 1);
        assert_eq!(into.argv[7..], ["=$copy", "1"], "an override is a literal");

        let my = restore_script(&target(Engine::Mysql), Some("copy"), true, 1);
        assert_eq!(my.argv[2], RESTORE_MYSQL_SCRIPT);
        assert_eq!(
            my.argv[3..],
            [
                "backup-ns-mysql-restore",
                "127.0.0.1",
                "5432",
                "$POSTGRES_USER",
                "=copy",
                "1",
                "utf8mb4"
            ]
        );
    }

    #[test]
    fn scripts_are_whole_and_start_with_the_shared_helpers() {
        for text in [
            RESTORE_POSTGRES_SCRIPT,
            RESTORE_MYSQL_SCRIPT,
            VERIFY_POSTGRES_SCRIPT,
            VERIFY_MYSQL_SCRIPT,
            VOLUME_CHECK_SCRIPT,
        ] {
            assert!(text.starts_with(include_str!("scripts/common.sh")));
            assert!(!text.contains("#!/"), "no shebang: run as sh -c");
        }
        assert!(RESTORE_MYSQL_SCRIPT.contains("bns_with_credentials"));
        assert!(RESTORE_POSTGRES_SCRIPT.contains("bns_load 1 psql"));
    }

    #[test]
    fn restore_output_is_restored_bytes() {
        assert_eq!(parse_restore_output("restored_bytes=1394\n"), Ok(1394));
        for bad in ["", "bytes=1", "restored_bytes=x", "restored_bytes=1\nmore"] {
            assert!(parse_restore_output(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expect_splits_at_the_last_equals_sign() {
        assert_eq!(
            Expect::parse("SELECT count(*) FROM t WHERE a = 'x=y'=5"),
            Ok(Expect {
                sql: "SELECT count(*) FROM t WHERE a = 'x=y'".into(),
                min: 5
            })
        );
        assert_eq!(
            Expect::parse(" SELECT 1 = -3 ").map(|e| (e.sql, e.min)),
            Ok(("SELECT 1".into(), -3))
        );
        let e = Expect::parse("SELECT count(*) FROM orders=1").unwrap();
        assert_eq!(e.to_string(), "SELECT count(*) FROM orders=1");
    }

    #[test]
    fn expect_errors_name_the_bad_value() {
        let err = Expect::parse("SELECT 1").unwrap_err();
        assert!(
            err.contains("\"SELECT 1\"") && err.contains("SQL=MIN"),
            "{err}"
        );
        let err = Expect::parse("SELECT count(*) FROM t=many").unwrap_err();
        assert!(err.contains("\"many\"") && err.contains("integer"), "{err}");
        let err = Expect::parse("=3").unwrap_err();
        assert!(err.contains("empty"), "{err}");
        let err = Expect::parse("  =3").unwrap_err();
        assert!(err.contains("empty"), "{err}");
        assert!(Expect::parse("SELECT 1=").is_err());
        assert!(Expect::parse("SELECT 1=1.5").is_err());
        assert!(Expect::parse("SELECT '\0'=1").is_err());
    }

    #[test]
    fn verify_argv_is_the_dump_then_the_sql() {
        let expects = [
            Expect::parse("SELECT count(*) FROM orders=1").unwrap(),
            Expect::parse("SELECT 'a''b'=0").unwrap(),
        ];
        let s = verify_script(Engine::Postgres, ".backup-ns/dump.sql.gz", &expects);
        assert_eq!(s.argv[2], VERIFY_POSTGRES_SCRIPT);
        assert_eq!(
            s.argv[3..],
            [
                "backup-ns-postgres-verify",
                ".backup-ns/dump.sql.gz",
                "SELECT count(*) FROM orders",
                "SELECT 'a''b'"
            ]
        );
        assert_eq!(s.stdin, "");
        let m = verify_script(Engine::Mysql, "dump.sql.gz", &[]);
        assert_eq!(m.argv[2], VERIFY_MYSQL_SCRIPT);
        assert_eq!(m.argv[3..], ["backup-ns-mysql-verify", "dump.sql.gz"]);
    }

    #[test]
    fn verify_report_parses_tables_and_values() {
        let r = VerifyReport::parse(
            "{\"table\" : \"public.we\\\"ird\\nt ü\", \"rows\" : 2}\n\
             {\"table\": \"app.big\", \"rows\": 1000000}\n\n\
             {\"expect\" : 0, \"value\" : \"1\"}\n\
             {\"expect\": 1, \"value\": null}\n",
        )
        .unwrap();
        assert_eq!(
            r.tables,
            [
                TableCount {
                    name: "public.we\"ird\nt ü".into(),
                    rows: 2
                },
                TableCount {
                    name: "app.big".into(),
                    rows: 1_000_000
                }
            ]
        );
        assert_eq!(r.values, [Some("1".to_string()), None]);
        assert_eq!(VerifyReport::parse(""), Ok(VerifyReport::default()));
        for bad in [
            "garbage",
            "{\"table\": 1, \"rows\": 1}",
            "{\"table\": \"t\", \"rows\": -1}",
            "{\"table\": \"t\"}",
            "{\"expect\": 1, \"value\": \"1\"}",
            "{\"expect\": 0, \"value\": 1}",
            "{\"other\": 0}",
        ] {
            assert!(VerifyReport::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn judge_needs_an_integer_of_at_least_min() {
        let expects: Vec<Expect> = [
            "SELECT a=5",
            "SELECT b=5",
            "SELECT c=0",
            "SELECT d=1",
            "SELECT e=1",
            "SELECT f=-2",
            "SELECT g=1",
        ]
        .iter()
        .map(|s| Expect::parse(s).unwrap())
        .collect();
        let report = VerifyReport {
            tables: vec![],
            values: vec![
                Some("5".into()),
                Some("4".into()),
                None,
                Some("1.0".into()),
                Some("many".into()),
                Some(" -2 ".into()),
            ],
        };
        let ok: Vec<bool> = report.judge(&expects).iter().map(|o| o.ok).collect();
        // equal passes; below fails; NULL/no row fails even for 0; non-integers fail; a missing
        // report fails.
        assert_eq!(ok, [true, false, false, false, false, true, false]);
        let first = &report.judge(&expects)[0];
        assert_eq!(
            (first.sql.as_str(), first.min, first.value.as_deref()),
            ("SELECT a", 5, Some("5"))
        );
    }

    #[test]
    fn volume_check_round_trip() {
        let s = volume_check_script(&["a b/c".to_string(), "x".to_string()]);
        assert_eq!(s.argv[2], VOLUME_CHECK_SCRIPT);
        assert_eq!(s.argv[3..], ["backup-ns-volume-check", "a b/c", "x"]);
        let entries = parse_volume_check(
            "{\"path\":\"a \\\"b\\\"\\n\",\"exists\":true,\"bytes\":12}\n{\"path\":\"x\",\"exists\":false,\"bytes\":null}\n",
        )
        .unwrap();
        assert_eq!(
            entries,
            [
                VolumeEntry {
                    path: "a \"b\"\n".into(),
                    exists: true,
                    bytes: Some(12)
                },
                VolumeEntry {
                    path: "x".into(),
                    exists: false,
                    bytes: None
                }
            ]
        );
        assert!(parse_volume_check("{\"path\":\"x\"}").is_err());
    }

    #[test]
    fn relative_dump_path_strips_the_mount() {
        assert_eq!(
            relative_dump_path(
                "/var/lib/postgresql/data",
                "/var/lib/postgresql/data/.backup-ns/dump.sql.gz"
            ),
            Ok(".backup-ns/dump.sql.gz".to_string())
        );
        assert_eq!(
            relative_dump_path("/data/", "/data/dump.sql.gz"),
            Ok("dump.sql.gz".to_string())
        );
        assert_eq!(
            relative_dump_path("/", "/dump.sql.gz"),
            Ok("dump.sql.gz".to_string())
        );
        let err = relative_dump_path("/var/lib/mysql", "/var/lib/mysqlx/dump.sql.gz").unwrap_err();
        assert!(
            err.contains("not on the volume mounted at \"/var/lib/mysql\""),
            "{err}"
        );
        for (mount, dump) in [
            ("/data", "/data"),
            ("/data", "/data/"),
            ("/data", "/data/../etc/passwd"),
            ("/data", "/data/a\nb"),
            ("data", "data/x"),
            ("/data", "/other/x"),
        ] {
            assert!(relative_dump_path(mount, dump).is_err(), "{mount} {dump}");
        }
    }

    #[test]
    fn relative_paths_stay_on_the_volume() {
        assert_eq!(validate_relative_path("a/b..c/.d"), Ok(()));
        for bad in ["", "/abs", "a/../b", "..", "a/..", "a\0b", "a\nb", "dir/"] {
            let err = validate_relative_path(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad:?}");
        }
    }
}
