//! MySQL and MariaDB: the check and dump scripts (`mariadb-dump` or `mysqldump`, `mariadb` or
//! `mysql`, `gzip` in the container).
//!
//! The user and the password reach the client through an option file that is a pipe
//! (`--defaults-extra-file=/dev/fd/4`), so they are neither in argv nor on disk. The dump uses
//! `--single-transaction` (a consistent InnoDB snapshot without `--lock-tables`, which blocked
//! writers in the original) and includes routines, events and triggers.

/// Args: host port user database; stdin: password line.
pub const CHECK_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/mysql_options.sh"),
    include_str!("scripts/mysql_check.sh")
);

/// Args: host port user database dump_file timeout_secs charset; stdin: password line, then kept
/// open.
pub const DUMP_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/mysql_options.sh"),
    include_str!("scripts/dump_common.sh"),
    include_str!("scripts/mysql_dump.sh")
);

/// Args: host port user database dump_file; stdin: password line.
pub const INFO_SCRIPT: &str = concat!(
    include_str!("scripts/common.sh"),
    include_str!("scripts/mysql_options.sh"),
    include_str!("scripts/dump_info.sh"),
    include_str!("scripts/mysql_info.sh")
);
