//! `postgres|mysql shell`: the script that opens an interactive client in the database
//! container with the same credentials as `create`, the password never in argv.
//!
//! The script prints [`READY_MARKER`] once it is ready for the password (with a terminal, after
//! switching its echo off: a tty echoes input as it arrives, so a password written at once would
//! show on the screen). The caller waits for the marker, strips it from the output, writes
//! [`Script::stdin`], and only then hands its own stdin to the client.

use super::{password_line, DbTarget, Engine, Script};

/// Args: host port user database; stdin: password line after the marker, then psql's input.
pub const POSTGRES_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/shell_common.sh"),
    include_str!("scripts/postgres_shell.sh")
);

/// Args: host port user database charset; stdin: password line after the marker, then the
/// client's input.
pub const MYSQL_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/mysql_options.sh"),
    include_str!("scripts/shell_common.sh"),
    include_str!("scripts/mysql_shell.sh")
);

/// What the script prints when it is ready for the password line: an OSC sequence, which a
/// terminal ignores should it ever get one.
pub const READY_MARKER: &[u8] = b"\x1b]backup-ns;shell-ready\x07";

/// The client the script opens, for messages.
pub fn client_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => "psql",
        Engine::Mysql => "mariadb (or mysql)",
    }
}

/// The shell script for `target`.
pub fn shell_script(target: &DbTarget) -> Script {
    let mut args = vec![
        target.host.clone(),
        target.port.to_string(),
        target.user.encode(),
        target.database.encode(),
    ];
    let (text, name) = match target.engine {
        Engine::Postgres => (POSTGRES_SCRIPT, "backup-ns-postgres-shell"),
        Engine::Mysql => {
            args.push(target.default_character_set.clone());
            (MYSQL_SCRIPT, "backup-ns-mysql-shell")
        }
    };
    Script::new(text, name, args, password_line(target))
}

/// Finds [`READY_MARKER`] in output that arrives in chunks: everything before it is passed on,
/// the marker is dropped, and what follows it is the client's output.
#[derive(Debug, Default)]
pub struct MarkerScan {
    /// Bytes that may be the start of the marker, held back until the next chunk says.
    pending: Vec<u8>,
}

/// What one chunk held.
#[derive(Debug, PartialEq, Eq)]
pub enum Scanned {
    /// No marker yet: pass these bytes on.
    Before(Vec<u8>),
    /// The marker: pass `before` on, then `after` (the client's first output).
    Found { before: Vec<u8>, after: Vec<u8> },
}

impl MarkerScan {
    pub fn push(&mut self, chunk: &[u8]) -> Scanned {
        self.pending.extend_from_slice(chunk);
        if let Some(at) = find(&self.pending, READY_MARKER) {
            let after = self.pending.split_off(at + READY_MARKER.len());
            self.pending.truncate(at);
            return Scanned::Found {
                before: std::mem::take(&mut self.pending),
                after,
            };
        }
        // Keep the longest tail that is a prefix of the marker.
        let keep = (1..READY_MARKER.len())
            .rev()
            .find(|&n| self.pending.ends_with(&READY_MARKER[..n]))
            .unwrap_or(0);
        let tail = self.pending.split_off(self.pending.len() - keep);
        Scanned::Before(std::mem::replace(&mut self.pending, tail))
    }

    /// The output ended without the marker: what was held back.
    pub fn finish(self) -> Vec<u8> {
        self.pending
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::ValueRef;

    fn target(engine: Engine) -> DbTarget {
        DbTarget {
            engine,
            host: "127.0.0.1".into(),
            port: 3306,
            user: ValueRef::Literal("root".into()),
            password: ValueRef::Literal("s3cr'et $x".into()),
            database: ValueRef::parse("${MYSQL_DATABASE}"),
            dump_file: "/data/dump.sql.gz".into(),
            default_character_set: "utf8mb4".into(),
        }
    }

    #[test]
    fn the_password_is_on_stdin_and_never_in_argv() {
        for engine in [Engine::Postgres, Engine::Mysql] {
            let s = shell_script(&target(engine));
            assert_eq!(s.stdin, "=s3cr'et $x\n");
            assert!(s.argv.iter().all(|a| !a.contains("s3cr")), "{:?}", s.argv);
        }
    }

    #[test]
    fn argv_layout_matches_the_scripts() {
        let pg = shell_script(&target(Engine::Postgres));
        assert_eq!(pg.argv[..3], ["sh", "-c", POSTGRES_SCRIPT]);
        assert_eq!(
            pg.argv[3..],
            [
                "backup-ns-postgres-shell",
                "127.0.0.1",
                "3306",
                "=root",
                "$MYSQL_DATABASE"
            ]
        );
        let my = shell_script(&target(Engine::Mysql));
        assert_eq!(my.argv[2], MYSQL_SCRIPT);
        assert_eq!(my.argv[3], "backup-ns-mysql-shell");
        assert_eq!(my.argv[8], "utf8mb4");
        for text in [POSTGRES_SCRIPT, MYSQL_SCRIPT] {
            assert!(text.starts_with(include_str!("scripts/common.sh")));
            assert!(!text.contains("#!/"), "no shebang: run as sh -c");
            assert!(text.contains(r"printf '\033]backup-ns;shell-ready\007'"));
        }
    }

    #[test]
    fn the_marker_is_found_across_chunk_boundaries_and_stripped() {
        let mut stream = b"warning: x\n".to_vec();
        stream.extend_from_slice(READY_MARKER);
        stream.extend_from_slice(b"psql (15.8)\n\x1b]other\x07");
        for size in 1..=stream.len() {
            let mut scan = MarkerScan::default();
            let (mut before, mut after, mut found) = (Vec::new(), Vec::new(), false);
            for chunk in stream.chunks(size) {
                if found {
                    after.extend_from_slice(chunk);
                    continue;
                }
                match scan.push(chunk) {
                    Scanned::Before(b) => before.extend(b),
                    Scanned::Found {
                        before: b,
                        after: a,
                    } => {
                        before.extend(b);
                        after.extend(a);
                        found = true;
                    }
                }
            }
            assert!(found, "chunk size {size}");
            assert_eq!(before, b"warning: x\n", "chunk size {size}");
            assert_eq!(after, b"psql (15.8)\n\x1b]other\x07", "chunk size {size}");
        }
    }

    #[test]
    fn output_without_the_marker_is_passed_on_whole() {
        let mut scan = MarkerScan::default();
        let mut out = Vec::new();
        for chunk in [&b"backup-ns: psql not found"[..], b" in PATH\n\x1b]back"] {
            match scan.push(chunk) {
                Scanned::Before(b) => out.extend(b),
                Scanned::Found { .. } => panic!("no marker"),
            }
        }
        out.extend(scan.finish());
        assert_eq!(out, b"backup-ns: psql not found in PATH\n\x1b]back");
    }
}
