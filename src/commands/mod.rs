//! Commands: each gathers from the cluster, plans with the pure modules, then applies.
//!
//! [`run`] is the one dispatch point; each command returns an [`ExitStatus`] rather than
//! exiting, and errors are logged once, here or in the command.

use anyhow::Context;

use crate::cli::{Command, CreateArgs, GlobalArgs};
use crate::settings::Settings;
use crate::{Error, ExitStatus};

pub mod create;
pub mod env;

/// Runs one command to its exit status.
pub async fn run(command: Command, global: &GlobalArgs) -> ExitStatus {
    match command {
        Command::Env(args) => env::main(&args, global.output),
        Command::Create(args) => create::main(&args, global.output).await,
    }
}

/// Logs an error once and maps it to its exit status.
pub fn report_error(e: &Error) -> ExitStatus {
    tracing::error!("{e}");
    e.exit_status()
}

/// Settings from the arguments, `TZ` and the CPU count of this machine.
pub fn settings_from(args: &CreateArgs) -> Result<Settings, Error> {
    let tz = std::env::var("TZ").ok();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    Settings::from_args(args, tz.as_deref(), cpus)
}

/// A client from the kubeconfig (or in-cluster config) and the namespace to work in: the given
/// one, else the kube context's.
pub async fn client(namespace: Option<&str>) -> anyhow::Result<(kube::Client, String)> {
    let config = kube::Config::infer().await.context("cannot load a kubeconfig or in-cluster config")?;
    let namespace = namespace.map(str::to_string).unwrap_or_else(|| config.default_namespace.clone());
    crate::labels::validate_dns1123_label("namespace", &namespace)?;
    let client = kube::Client::try_from(config).context("cannot build the Kubernetes client")?;
    Ok((client, namespace))
}
