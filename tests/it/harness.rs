//! What the binary-level tests share: a cluster (the API emulation with a kubeconfig on disk)
//! and runs of the real `backup-ns` binary in a clean environment, so every test sees only the
//! variables it sets itself.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::emu::Emu;

/// The emulation and a kubeconfig pointing at it.
pub struct Cluster {
    pub emu: Emu,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub fn new(emu: Emu) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = emu.write_kubeconfig(dir.path()).expect("kubeconfig");
        Cluster {
            emu,
            kubeconfig,
            _dir: dir,
        }
    }

    /// `backup-ns ARGS` with only `KUBECONFIG` and a high `BAK_API_QPS` (plus `envs`), stdin
    /// closed, stdout and stderr captured.
    pub fn command(&self, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_backup-ns"));
        cmd.args(args)
            .env_clear()
            .env("KUBECONFIG", &self.kubeconfig)
            .env("BAK_API_QPS", "1000")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `backup-ns ARGS` to completion (the emulation serves from its own thread).
    pub fn run(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        Run::from(self.command(args, envs).output().expect("run backup-ns"))
    }
}

/// One finished run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    /// stdout as the one JSON document `-o json` prints.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
