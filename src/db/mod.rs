//! Database engines: the in-container scripts and how values reach them.
//!
//! Scripts are POSIX `sh` files under `scripts/`, included with `include_str!` and run as
//! `sh -c <script> <name> <args…>`, so the database container needs no bash and nothing is ever
//! pasted into script text. Values are positional arguments, each encoded as `=literal` or
//! `$NAME` (a variable of the *container's* environment, which the script expands itself after
//! checking the name: the original's `${POSTGRES_PASSWORD}` defaults keep working). The password
//! is the first line of stdin, never in argv (which reaches the API server's audit log and `ps`);
//! the dump scripts also watch stdin and kill the dump when it closes, so the caller keeps it open
//! until the script exits.
//!
//! Everything here is pure: building [`Script`]s and parsing their output. Running them is the
//! exec module's job; the scripts themselves are tested against real servers in
//! `tests/it/db_scripts.rs`.

use std::fmt;

pub mod mysql;
pub mod postgres;
pub mod restore;
pub mod shell;

/// `space.sh`: `used_percent=N avail_bytes=N prev_bytes=N|-` for the dump file's directory.
pub const SPACE_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/space.sh")
);

/// `dump_cat.sh`: the dump file on stdout (`download --live`).
pub const CAT_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/dump_cat.sh")
);

/// Which database a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Mysql,
}

/// A value as configured: a literal, or `${NAME}` / `$NAME` naming a variable of the container's
/// environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueRef {
    Literal(String),
    Env(String),
}

/// Everything the scripts need to reach one database and write its dump.
#[derive(Clone, PartialEq, Eq)]
pub struct DbTarget {
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub user: ValueRef,
    pub password: ValueRef,
    pub database: ValueRef,
    /// Absolute path of the dump file inside the container.
    pub dump_file: String,
    /// MySQL only: `--default-character-set`.
    pub default_character_set: String,
}

/// `Debug` without the password: targets end up in logs and error messages.
impl fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = match &self.password {
            ValueRef::Env(name) => format!("Env({name:?})"),
            ValueRef::Literal(_) => "<redacted>".to_string(),
        };
        f.debug_struct("DbTarget")
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &format_args!("{password}"))
            .field("database", &self.database)
            .field("dump_file", &self.dump_file)
            .field("default_character_set", &self.default_character_set)
            .finish()
    }
}

/// True for a shell variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl ValueRef {
    /// `${NAME}` or `$NAME` with a valid variable name is a reference, anything else a literal.
    pub fn parse(s: &str) -> ValueRef {
        let name = match s.strip_prefix("${") {
            Some(rest) => rest.strip_suffix('}'),
            None => s.strip_prefix('$'),
        };
        match name {
            Some(name) if is_env_name(name) => ValueRef::Env(name.to_string()),
            _ => ValueRef::Literal(s.to_string()),
        }
    }

    /// The argument form the scripts decode: `=literal` or `$NAME`.
    pub fn encode(&self) -> String {
        match self {
            ValueRef::Literal(v) => format!("={v}"),
            ValueRef::Env(name) => format!("${name}"),
        }
    }
}

/// One script invocation: the exec command and what to write to its stdin.
///
/// The caller writes `stdin` and keeps stdin open until the process exits: the dump scripts abort
/// when stdin closes (that is how a dump dies with its backup-ns). The scripts exit 0 on success,
/// 1 on failure and 2 on an invalid invocation, and end stderr with one `backup-ns: …` line on
/// failure (see [`last_error_line`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Script {
    /// `["sh", "-c", SCRIPT, "backup-ns-<name>", args…]`; holds no secret.
    pub argv: Vec<String>,
    /// The encoded password line (`=…\n` or `$NAME\n`), or empty.
    pub stdin: String,
}

/// `Debug` shows the script's name and arguments, not its text or the password.
impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("argv", &self.argv.get(3..).unwrap_or_default())
            .field(
                "stdin",
                &if self.stdin.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .finish()
    }
}

impl Script {
    pub(crate) fn new(text: &str, name: &str, args: Vec<String>, stdin: String) -> Script {
        let mut argv = vec![
            "sh".to_string(),
            "-c".to_string(),
            text.to_string(),
            name.to_string(),
        ];
        argv.extend(args);
        Script { argv, stdin }
    }
}

/// The password line for stdin.
pub(crate) fn password_line(target: &DbTarget) -> String {
    format!("{}\n", target.password.encode())
}

/// Checks what the scripts cannot carry. Settings already reject most of this when parsing the
/// environment; the script builders rely on it (a password with a newline would be cut at the
/// newline and fail to authenticate, nothing worse).
pub fn validate(target: &DbTarget) -> Result<(), String> {
    let values = [
        ("user", &target.user),
        ("password", &target.password),
        ("database", &target.database),
    ];
    for (what, value) in values {
        match value {
            ValueRef::Env(name) if !is_env_name(name) => {
                return Err(format!(
                    "{what}: invalid environment variable name {name:?}"
                ));
            }
            ValueRef::Env(name) if name.starts_with("bns_") => {
                return Err(format!(
                    "{what}: environment variable names starting with bns_ are reserved"
                ));
            }
            ValueRef::Literal(v) if v.contains('\0') => {
                return Err(format!("{what} must not contain NUL"))
            }
            ValueRef::Literal(v) if what == "password" && v.contains('\n') => {
                return Err("password must not contain a newline".to_string());
            }
            _ => {}
        }
    }
    if target.host.is_empty() || target.host.contains(['\0', '\n']) || target.host.starts_with('-')
    {
        return Err(format!("invalid host {:?}", target.host));
    }
    if !target.dump_file.starts_with('/')
        || target.dump_file.ends_with('/')
        || target.dump_file.contains('\0')
    {
        return Err(format!(
            "dump file must be an absolute file path, not {:?}",
            target.dump_file
        ));
    }
    if target.engine == Engine::Mysql {
        let cs = &target.default_character_set;
        if cs.is_empty() || !cs.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid default character set {cs:?}"));
        }
    }
    Ok(())
}

/// The check script: tools present and a `SELECT 1` round trip. Silent on success.
pub fn check_script(target: &DbTarget) -> Script {
    let (text, name) = match target.engine {
        Engine::Postgres => (postgres::CHECK_SCRIPT, "backup-ns-postgres-check"),
        Engine::Mysql => (mysql::CHECK_SCRIPT, "backup-ns-mysql-check"),
    };
    let args = vec![
        target.host.clone(),
        target.port.to_string(),
        target.user.encode(),
        target.database.encode(),
    ];
    Script::new(text, name, args, password_line(target))
}

/// The space script for `dump_file`; parse its stdout with [`SpaceReport::parse`].
pub fn space_script(dump_file: &str) -> Script {
    Script::new(
        SPACE_SCRIPT,
        "backup-ns-space",
        vec![dump_file.to_string()],
        String::new(),
    )
}

/// The dump script: atomic dump with a `timeout_secs` watchdog (0: none); parse its stdout with
/// [`parse_dump_output`]. Keep stdin open until it exits.
pub fn dump_script(target: &DbTarget, timeout_secs: u64) -> Script {
    let mut args = vec![
        target.host.clone(),
        target.port.to_string(),
        target.user.encode(),
        target.database.encode(),
        target.dump_file.clone(),
        timeout_secs.to_string(),
    ];
    let (text, name) = match target.engine {
        Engine::Postgres => (postgres::DUMP_SCRIPT, "backup-ns-postgres-dump"),
        Engine::Mysql => {
            args.push(target.default_character_set.clone());
            (mysql::DUMP_SCRIPT, "backup-ns-mysql-dump")
        }
    };
    Script::new(text, name, args, password_line(target))
}

/// `user_id.sh`: the uid of the engine's system user in the database container's image.
pub const USER_ID_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/user_id.sh")
);

/// The user-id script for `engine`'s system user; its stdout is the uid.
pub fn user_id_script(engine: Engine) -> Script {
    let users = match engine {
        Engine::Postgres => vec!["postgres".to_string()],
        Engine::Mysql => vec!["mysql".to_string()],
    };
    Script::new(USER_ID_SCRIPT, "backup-ns-user-id", users, String::new())
}

/// The cat script: the dump file on stdout, streamed by the caller.
pub fn cat_script(dump_file: &str) -> Script {
    Script::new(
        CAT_SCRIPT,
        "backup-ns-dump-cat",
        vec![dump_file.to_string()],
        String::new(),
    )
}

/// The info script; parse its stdout with [`InfoReport::parse`].
pub fn info_script(target: &DbTarget) -> Script {
    let (text, name) = match target.engine {
        Engine::Postgres => (postgres::INFO_SCRIPT, "backup-ns-postgres-info"),
        Engine::Mysql => (mysql::INFO_SCRIPT, "backup-ns-mysql-info"),
    };
    let args = vec![
        target.host.clone(),
        target.port.to_string(),
        target.user.encode(),
        target.database.encode(),
        target.dump_file.clone(),
    ];
    Script::new(text, name, args, password_line(target))
}

/// What the info script reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InfoReport {
    pub server_version: String,
    pub database_bytes: u64,
    /// `None`: there is no dump file yet.
    pub dump_bytes: Option<u64>,
    /// `None`: no dump file, or its age could not be read.
    pub dump_age_seconds: Option<u64>,
}

impl InfoReport {
    /// Parses the `key=value` lines of the info script.
    pub fn parse(stdout: &str) -> Result<InfoReport, String> {
        let get = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::trim)
                .ok_or_else(|| format!("no {key} in the info script's output {stdout:?}"))
        };
        let optional = |key: &str| -> Result<Option<u64>, String> {
            match get(key)? {
                "-" => Ok(None),
                v => v
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("{key}: not a number: {v:?}")),
            }
        };
        let database_bytes = get("database_bytes")?;
        Ok(InfoReport {
            server_version: get("server_version")?.to_string(),
            database_bytes: database_bytes
                .parse()
                .map_err(|_| format!("database_bytes: not a number: {database_bytes:?}"))?,
            dump_bytes: optional("dump_bytes")?,
            dump_age_seconds: optional("dump_age_seconds")?,
        })
    }
}

/// What `space.sh` saw beside the dump file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceReport {
    /// `df -P` capacity of the filesystem (may exceed 100 when reserved blocks are in use).
    pub used_percent: u32,
    /// Bytes available to the container's user.
    pub avail_bytes: u64,
    /// Size of the previous dump, if there is one.
    pub prev_bytes: Option<u64>,
}

impl SpaceReport {
    /// Parses the last non-empty line of `space.sh`'s stdout; unknown keys are ignored.
    pub fn parse(stdout: &str) -> Result<SpaceReport, String> {
        let line = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let (mut used, mut avail, mut prev) = (None, None, None);
        for field in line.split_whitespace() {
            let Some((key, value)) = field.split_once('=') else {
                return Err(format!("unexpected space report {line:?}"));
            };
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("unexpected {key} in space report {line:?}"))
            };
            match key {
                "used_percent" => {
                    let n = number()?;
                    used = Some(
                        u32::try_from(n)
                            .map_err(|_| format!("unexpected {key} in space report {line:?}"))?,
                    );
                }
                "avail_bytes" => avail = Some(number()?),
                "prev_bytes" if value == "-" => prev = Some(None),
                "prev_bytes" => prev = Some(Some(number()?)),
                _ => {}
            }
        }
        match (used, avail, prev) {
            (Some(used_percent), Some(avail_bytes), Some(prev_bytes)) => Ok(SpaceReport {
                used_percent,
                avail_bytes,
                prev_bytes,
            }),
            _ => Err(format!("incomplete space report {line:?}")),
        }
    }

    /// Is there room for a new dump? Fails when the volume is at least `threshold_percent` full,
    /// or when a previous dump exists and the free space is not larger than it: the new dump is
    /// written beside the old one before replacing it.
    pub fn verdict(&self, threshold_percent: u8) -> Result<(), String> {
        if self.used_percent >= u32::from(threshold_percent) {
            return Err(format!(
                "the volume is {}% full, the threshold is {threshold_percent}%",
                self.used_percent
            ));
        }
        if let Some(prev) = self.prev_bytes {
            if self.avail_bytes <= prev {
                return Err(format!(
                    "{} bytes free, not more than the {prev} bytes of the previous dump (the new dump is written beside it)",
                    self.avail_bytes
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for SpaceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}% used, {} bytes free",
            self.used_percent, self.avail_bytes
        )?;
        match self.prev_bytes {
            Some(prev) => write!(f, ", previous dump {prev} bytes"),
            None => write!(f, ", no previous dump"),
        }
    }
}

/// The size of the new dump from a dump script's stdout (`bytes=N` on the last non-empty line).
pub fn parse_dump_output(stdout: &str) -> Result<u64, String> {
    last_count(stdout, "bytes")
}

/// `KEY=N` on the last non-empty line of a script's stdout: how the scripts report a size.
pub(crate) fn last_count(stdout: &str, key: &str) -> Result<u64, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    line.strip_prefix(key)
        .and_then(|rest| rest.strip_prefix('='))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("unexpected script output {line:?} (expected {key}=N)"))
}

/// The line that says why a script failed: the last `backup-ns: …` line of its stderr, else its
/// last non-empty line.
pub fn last_error_line(stderr: &str) -> &str {
    let mut lines = stderr
        .lines()
        .rev()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    let last = lines.clone().next().unwrap_or("");
    lines.find(|l| l.starts_with("backup-ns: ")).unwrap_or(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASTY: &str = "p'a\"s$(touch /tmp/x)\\`;x y ünï 🦀 \t\r";

    fn target(engine: Engine) -> DbTarget {
        DbTarget {
            engine,
            host: "127.0.0.1".into(),
            port: 5432,
            user: ValueRef::parse("${POSTGRES_USER}"),
            password: ValueRef::Literal(NASTY.into()),
            database: ValueRef::Literal("d'b $(x)".into()),
            dump_file: "/var/lib/postgresql/data/dump.sql.gz".into(),
            default_character_set: "utf8mb4".into(),
        }
    }

    #[test]
    fn parse_recognises_env_references_only_with_valid_names() {
        assert_eq!(
            ValueRef::parse("${POSTGRES_PASSWORD}"),
            ValueRef::Env("POSTGRES_PASSWORD".into())
        );
        assert_eq!(
            ValueRef::parse("$POSTGRES_PASSWORD"),
            ValueRef::Env("POSTGRES_PASSWORD".into())
        );
        assert_eq!(ValueRef::parse("$_x9"), ValueRef::Env("_x9".into()));
        for literal in [
            "", "$", "${}", "${A", "$A}", "${1A}", "$1A", "${A-b}", "${A}x", "x$A", "$A B", "$Ä",
            "root",
        ] {
            assert_eq!(
                ValueRef::parse(literal),
                ValueRef::Literal(literal.into()),
                "{literal:?}"
            );
        }
    }

    #[test]
    fn encode_keeps_nasty_values_verbatim_after_the_marker() {
        assert_eq!(
            ValueRef::Literal(NASTY.into()).encode(),
            format!("={NASTY}")
        );
        assert_eq!(ValueRef::Literal("=x".into()).encode(), "==x");
        assert_eq!(
            ValueRef::Literal("$NOT_A_REF".into()).encode(),
            "=$NOT_A_REF"
        );
        assert_eq!(ValueRef::Literal(String::new()).encode(), "=");
        assert_eq!(
            ValueRef::Env("MYSQL_ROOT_PASSWORD".into()).encode(),
            "$MYSQL_ROOT_PASSWORD"
        );
    }

    #[test]
    fn the_password_is_on_stdin_and_never_in_argv() {
        for engine in [Engine::Postgres, Engine::Mysql] {
            let t = target(engine);
            for script in [check_script(&t), dump_script(&t, 60)] {
                assert_eq!(script.stdin, format!("={NASTY}\n"));
                assert!(
                    script.argv.iter().all(|a| !a.contains("p'a\"s")),
                    "{engine:?}: {:?}",
                    script.argv
                );
                assert!(!format!("{script:?}").contains("p'a\"s"));
            }
        }
        assert!(!format!("{:?}", target(Engine::Postgres)).contains("p'a\"s"));
    }

    #[test]
    fn argv_layout_matches_the_scripts() {
        let pg = target(Engine::Postgres);
        let check = check_script(&pg);
        assert_eq!(&check.argv[..2], ["sh", "-c"]);
        assert_eq!(check.argv[2], postgres::CHECK_SCRIPT);
        assert_eq!(
            check.argv[3..],
            [
                "backup-ns-postgres-check",
                "127.0.0.1",
                "5432",
                "$POSTGRES_USER",
                "=d'b $(x)"
            ]
        );

        let dump = dump_script(&pg, 0);
        assert_eq!(dump.argv[2], postgres::DUMP_SCRIPT);
        assert_eq!(dump.argv[3], "backup-ns-postgres-dump");
        assert_eq!(
            dump.argv[8..],
            ["/var/lib/postgresql/data/dump.sql.gz", "0"]
        );

        let my = DbTarget {
            port: 3306,
            ..target(Engine::Mysql)
        };
        let dump = dump_script(&my, 3600);
        assert_eq!(dump.argv[2], mysql::DUMP_SCRIPT);
        assert_eq!(dump.argv[3], "backup-ns-mysql-dump");
        assert_eq!(
            dump.argv[5..],
            [
                "3306",
                "$POSTGRES_USER",
                "=d'b $(x)",
                "/var/lib/postgresql/data/dump.sql.gz",
                "3600",
                "utf8mb4"
            ]
        );
        assert_eq!(check_script(&my).argv[2], mysql::CHECK_SCRIPT);

        let space = space_script("/data/dump.sql.gz");
        assert_eq!(
            space.argv[2..],
            [SPACE_SCRIPT, "backup-ns-space", "/data/dump.sql.gz"]
        );
        assert_eq!(space.stdin, "");
    }

    #[test]
    fn scripts_are_whole_and_start_with_the_shared_helpers() {
        for text in [
            SPACE_SCRIPT,
            postgres::CHECK_SCRIPT,
            postgres::DUMP_SCRIPT,
            mysql::CHECK_SCRIPT,
            mysql::DUMP_SCRIPT,
            CAT_SCRIPT,
            postgres::INFO_SCRIPT,
            mysql::INFO_SCRIPT,
        ] {
            assert!(text.starts_with(include_str!("scripts/common.sh")));
            assert!(!text.contains("#!/"), "no shebang: run as sh -c");
        }
        assert!(postgres::DUMP_SCRIPT.contains("bns_dump pg_dump"));
        assert!(mysql::DUMP_SCRIPT.contains("--single-transaction"));
        assert!(!mysql::DUMP_SCRIPT.contains("\t--lock-tables"));
    }

    #[test]
    fn validate_rejects_what_the_scripts_cannot_carry() {
        assert_eq!(validate(&target(Engine::Postgres)), Ok(()));
        let bad = [
            DbTarget {
                password: ValueRef::Literal("a\nb".into()),
                ..target(Engine::Postgres)
            },
            DbTarget {
                user: ValueRef::Literal("a\0b".into()),
                ..target(Engine::Postgres)
            },
            DbTarget {
                database: ValueRef::Env("1X".into()),
                ..target(Engine::Postgres)
            },
            DbTarget {
                password: ValueRef::Env("bns_password".into()),
                ..target(Engine::Postgres)
            },
            DbTarget {
                host: String::new(),
                ..target(Engine::Postgres)
            },
            DbTarget {
                host: "-oProxy".into(),
                ..target(Engine::Postgres)
            },
            DbTarget {
                dump_file: "dump.sql.gz".into(),
                ..target(Engine::Postgres)
            },
            DbTarget {
                dump_file: "/data/".into(),
                ..target(Engine::Postgres)
            },
            DbTarget {
                default_character_set: "utf8; x".into(),
                ..target(Engine::Mysql)
            },
            DbTarget {
                default_character_set: String::new(),
                ..target(Engine::Mysql)
            },
        ];
        for t in bad {
            let err = validate(&t).expect_err(&format!("{t:?}"));
            assert!(!err.contains("p'a\"s"), "{err}");
        }
        // Newlines are fine in user and database names: they are argv elements.
        let t = DbTarget {
            user: ValueRef::Literal("a\nb".into()),
            ..target(Engine::Postgres)
        };
        assert_eq!(validate(&t), Ok(()));
    }

    #[test]
    fn space_report_parses_the_script_line() {
        let r = SpaceReport::parse("used_percent=42 avail_bytes=123456 prev_bytes=789\n").unwrap();
        assert_eq!(
            r,
            SpaceReport {
                used_percent: 42,
                avail_bytes: 123456,
                prev_bytes: Some(789)
            }
        );
        let r =
            SpaceReport::parse("noise\nused_percent=100 avail_bytes=0 prev_bytes=- future=1\n\n")
                .unwrap();
        assert_eq!(
            r,
            SpaceReport {
                used_percent: 100,
                avail_bytes: 0,
                prev_bytes: None
            }
        );
        assert_eq!(r.to_string(), "100% used, 0 bytes free, no previous dump");
        for bad in [
            "",
            "used_percent=1 avail_bytes=2",
            "used_percent=x avail_bytes=2 prev_bytes=-",
            "garbage",
            "used_percent=-1 avail_bytes=2 prev_bytes=3",
        ] {
            assert!(SpaceReport::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn verdict_edges() {
        let r = |used_percent, avail_bytes, prev_bytes| SpaceReport {
            used_percent,
            avail_bytes,
            prev_bytes,
        };
        assert_eq!(r(89, 1000, None).verdict(90), Ok(()));
        assert!(
            r(90, 1000, None)
                .verdict(90)
                .unwrap_err()
                .contains("90% full"),
            "used == threshold fails"
        );
        assert!(r(120, 1000, None).verdict(90).is_err());
        assert!(
            r(0, 1000, None).verdict(0).is_err(),
            "threshold 0 always fails"
        );
        assert_eq!(r(10, 1001, Some(1000)).verdict(90), Ok(()));
        assert!(
            r(10, 1000, Some(1000))
                .verdict(90)
                .unwrap_err()
                .contains("previous dump"),
            "avail == prev fails"
        );
        assert!(r(10, 999, Some(1000)).verdict(90).is_err());
        assert_eq!(
            r(10, 0, Some(0)).verdict(90).map_err(|_| ()),
            Err(()),
            "even an empty previous dump needs room"
        );
        assert_eq!(
            r(10, 0, None).verdict(90),
            Ok(()),
            "nothing to compare without a previous dump"
        );
    }

    #[test]
    fn info_report_parses_the_script_lines() {
        let r = InfoReport::parse(
            "server_version=15.8 (Debian 15.8-1)\ndatabase_bytes=7654321\ndump_bytes=123\ndump_age_seconds=60\n",
        )
        .unwrap();
        assert_eq!(r.server_version, "15.8 (Debian 15.8-1)");
        assert_eq!(r.database_bytes, 7654321);
        assert_eq!((r.dump_bytes, r.dump_age_seconds), (Some(123), Some(60)));
        let none = InfoReport::parse(
            "server_version=10.11.6-MariaDB\ndatabase_bytes=0\ndump_bytes=-\ndump_age_seconds=-\n",
        )
        .unwrap();
        assert_eq!((none.dump_bytes, none.dump_age_seconds), (None, None));
        assert!(InfoReport::parse("server_version=15\n").is_err());
        assert!(InfoReport::parse(
            "server_version=15\ndatabase_bytes=x\ndump_bytes=-\ndump_age_seconds=-"
        )
        .is_err());
    }

    #[test]
    fn dump_output_is_bytes_on_the_last_line() {
        assert_eq!(parse_dump_output("bytes=42479482\n"), Ok(42479482));
        assert_eq!(parse_dump_output("bytes=0"), Ok(0));
        for bad in [
            "",
            "\n",
            "bytes=",
            "bytes=-1",
            "bytes=12 extra",
            "bytes=1\nsomething else\n",
        ] {
            assert!(parse_dump_output(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn last_error_line_prefers_our_line() {
        assert_eq!(
            last_error_line(
                "pg_dump: error: x\nbackup-ns: pg_dump failed (exit status 1)\nTerminated\n"
            ),
            "backup-ns: pg_dump failed (exit status 1)"
        );
        assert_eq!(last_error_line("sh: 1: oops\n\n"), "sh: 1: oops");
        assert_eq!(last_error_line(""), "");
    }
}
