//! PostgreSQL: the check and dump scripts (`pg_dump`, `psql`, `gzip` in the container).
//!
//! Connection values reach the tools as `PGHOST`/`PGPORT`/`PGUSER`/`PGDATABASE`/`PGPASSWORD`,
//! never as a conninfo string, so any database name stays a name. The dump is plain SQL with
//! `--clean --if-exists`, restorable with `gzip -cd | psql -v ON_ERROR_STOP=1`.

/// Args: host port user database; stdin: password line.
pub const CHECK_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/postgres_check.sh")
);

/// Args: host port user database dump_file timeout_secs; stdin: password line, then kept open.
pub const DUMP_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/dump_common.sh"),
    include_str!("scripts/postgres_dump.sh")
);

/// Args: host port user database dump_file; stdin: password line.
pub const INFO_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/dump_info.sh"),
    include_str!("scripts/postgres_info.sh")
);
