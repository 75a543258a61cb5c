//! Exit codes, decided in one place. Commands return an [`ExitStatus`] (or an error that maps to
//! one); `main` turns it into the process exit code. Documented in the README.

/// The process exit status. Numeric values are part of the CLI contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    /// Everything succeeded.
    Success,
    /// The command ran and something failed (API error, dump failed, snapshot not ready, …).
    Failure,
    /// Invalid usage or configuration; nothing was done.
    Usage,
    /// The node lock slot (`BAK_FLOCK_TIMEOUT_SEC`) or the per-PVC lease wait timed out.
    LockTimeout,
    /// Another backup-ns run holds the per-PVC lease (fail-fast mode).
    Busy,
    /// The non-zero exit status of the interactive client of `postgres|mysql shell`, passed
    /// through as it is: scripts piping SQL into the shell see the client's own status.
    Client(u8),
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::LockTimeout => 3,
            ExitStatus::Busy => 4,
            ExitStatus::Client(code) => code,
        }
    }

    /// Merge two outcomes of one run: the more severe wins. Usage beats everything because it
    /// means the run should not have started; otherwise any failure beats success.
    pub fn merge(self, other: ExitStatus) -> ExitStatus {
        use ExitStatus::*;
        match (self, other) {
            (Usage, _) | (_, Usage) => Usage,
            (Success, x) | (x, Success) => x,
            (a, b) => a.max(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExitStatus::*;

    #[test]
    fn merge_keeps_the_most_severe() {
        assert_eq!(Success.merge(Success), Success);
        assert_eq!(Success.merge(Failure), Failure);
        assert_eq!(Failure.merge(Success), Failure);
        assert_eq!(Failure.merge(Usage), Usage);
        assert_eq!(LockTimeout.merge(Failure), LockTimeout);
        assert_eq!(Busy.merge(Success), Busy);
    }

    #[test]
    fn codes_are_the_documented_ones() {
        assert_eq!(Success.code(), 0);
        assert_eq!(Failure.code(), 1);
        assert_eq!(Usage.code(), 2);
        assert_eq!(LockTimeout.code(), 3);
        assert_eq!(Busy.code(), 4);
        assert_eq!(Client(3).code(), 3);
    }
}
