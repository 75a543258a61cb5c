//! backup-ns: application-consistent backups of Kubernetes namespaces with CSI VolumeSnapshots.
//!
//! The library holds everything; `main.rs` only parses, sets up telemetry and maps the outcome to
//! an exit code. Pure policy (settings, labels, names, retention) sits at the bottom and takes
//! "now" as a parameter; commands on top gather → plan → apply through the kube client.

pub mod cli;
pub mod commands;
pub mod db;
pub mod exec;
pub mod exit;
pub mod http;
pub mod labels;
pub mod lease;
pub mod lock;
pub mod metrics;
pub mod naming;
pub mod notify;
pub mod record;
pub mod retention;
pub mod settings;
pub mod snapshot;
pub mod state;
pub mod terminal;
pub mod workload;

pub use exit::ExitStatus;

/// Errors of the library. Each variant maps to one exit code (see [`Error::exit_status`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value (env var or flag) is invalid. Nothing has been done yet.
    #[error("invalid {name}={value:?}: {reason}")]
    Config {
        name: String,
        value: String,
        reason: String,
    },
    /// The node lock or the per-PVC lease could not be taken in time.
    #[error("{0}")]
    LockTimeout(String),
    /// Another run holds the per-PVC lease.
    #[error("{0}")]
    Busy(String),
    /// A Kubernetes API call failed.
    #[error("{context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
    /// A precondition in the cluster does not hold (PVC not bound, no ready pod, …).
    #[error("{0}")]
    Precondition(String),
    /// A command run inside the database container failed.
    #[error("{0}")]
    Exec(String),
    /// The snapshot failed or did not become ready.
    #[error("{0}")]
    Snapshot(String),
    /// SIGTERM or SIGINT arrived (e.g. the Job's deadline); the run stopped cleanly.
    #[error("{0}")]
    Interrupted(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn config(
        name: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Config {
            name: name.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    pub fn kube(context: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            context: context.into(),
            source,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit status this error leads to.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Config { .. } => ExitStatus::Usage,
            Error::LockTimeout(_) => ExitStatus::LockTimeout,
            Error::Busy(_) => ExitStatus::Busy,
            _ => ExitStatus::Failure,
        }
    }
}
