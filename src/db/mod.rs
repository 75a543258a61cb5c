//! Database engines: the in-container scripts and how values reach them.
//!
//! Scripts are POSIX `sh` files under `scripts/`, included with `include_str!` and run as
//! `sh -c <script> <name> <args…>`. Values are passed as positional arguments (never pasted into
//! script text); secrets (the password) travel on stdin, never in argv. A value is either a
//! literal or a reference to an environment variable of the *container* (`${POSTGRES_PASSWORD}`),
//! which the container's own shell expands from its own environment.
//!
//! PLACEHOLDER: the script helper fills this module in (see the contract in the task).

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
#[derive(Debug, Clone, PartialEq, Eq)]
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
