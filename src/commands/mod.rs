//! Commands: each gathers from the cluster, plans with the pure modules, then applies.
//!
//! [`run`] is the one dispatch point; each command returns an [`ExitStatus`] rather than
//! exiting, and errors are logged once, here or in the command.

use anyhow::Context;

use crate::cli::{Command, ControllerCommand, CreateArgs, GlobalArgs};
use crate::settings::Settings;
use crate::{Error, ExitStatus};

pub mod adhoc;
pub mod api;
pub mod apply;
pub mod create;
pub mod dbops;
pub mod delete;
pub mod download;
pub mod env;
pub mod from_snapshot;
pub mod gather;
pub mod list;
pub mod mark_and_delete;
pub mod options;
pub mod prune;
pub mod ratelimit;
pub mod rebind;
pub mod restore;
pub mod restore_dump;
pub mod retain;
pub mod shell;
pub mod status;
pub mod sync_labels;
pub mod verify;
pub mod workbench;

/// Runs one command to its exit status, then writes the metrics it emitted
/// ([`crate::metrics::emit`]) to the sinks of `BAK_METRICS_PUSHGATEWAY` and
/// `BAK_METRICS_TEXTFILE`. Their values are checked first (a bad one is a usage error before
/// anything happens); a sink that fails is logged and leaves the exit status as it is.
pub async fn run(command: Command, global: &GlobalArgs) -> ExitStatus {
    let sinks = match crate::metrics::Sinks::from_args(global) {
        Ok(s) => s,
        Err(e) => return report_error(&e),
    };
    let (status, emitted) = crate::metrics::collect(dispatch(command, global)).await;
    match emitted {
        Some(m) if !sinks.is_empty() => {
            sinks.write(&m).await;
        }
        _ => {}
    }
    status
}

async fn dispatch(command: Command, global: &GlobalArgs) -> ExitStatus {
    match command {
        Command::Env(args) => match global.output.text_or_json() {
            Ok(output) => env::main(&args, output),
            Err(e) => report_error(&e),
        },
        Command::Create(args) => match global.output.text_or_json() {
            Ok(output) => create::main(&args, output).await,
            Err(e) => report_error(&e),
        },
        Command::Prune(args) => prune::main(&args, global.output).await,
        Command::Retain(args) => retain::main(&args, global.output).await,
        Command::MarkAndDelete(args) => mark_and_delete::main(&args, global.output).await,
        Command::List(args) => list::main(&args, global.output).await,
        Command::Status(args) => status::main(&args, global.output).await,
        Command::Delete(args) => delete::main(&args, global.output).await,
        Command::SyncLabels(args) => sync_labels::main(&args, global.output).await,
        Command::Adhoc(args) => match global.output.text_or_json() {
            Ok(output) => adhoc::main(&args, output).await,
            Err(e) => report_error(&e),
        },
        Command::Restore(args) => match &args.command {
            Some(crate::cli::RestoreCommand::Dump(a)) => match global.output.text_or_json() {
                Ok(output) => restore_dump::main(a, output).await,
                Err(e) => report_error(&e),
            },
            _ => restore::main(&args, global.output).await,
        },
        Command::Verify(args) => match global.output.text_or_json() {
            Ok(output) => verify::main(&args, output).await,
            Err(e) => report_error(&e),
        },
        Command::Rebind(args) => rebind::main(&args, global.output).await,
        Command::Download(args) => match global.output.text_or_json() {
            Ok(output) => download::main(&args, output).await,
            Err(e) => report_error(&e),
        },
        Command::Postgres(c) => match global.output.text_or_json() {
            Ok(output) => dbops::main(c.command, crate::db::Engine::Postgres, output).await,
            Err(e) => report_error(&e),
        },
        Command::Mysql(c) => match global.output.text_or_json() {
            Ok(output) => dbops::main(c.command, crate::db::Engine::Mysql, output).await,
            Err(e) => report_error(&e),
        },
        Command::Controller(c) => match c.command {
            ControllerCommand::SyncMetadataToVsc(args) => {
                sync_labels::main(&args, global.output).await
            }
        },
    }
}

/// `y` or `yes`, any case: anything else is no.
pub fn confirmed(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Asks `question` on the terminal (stderr, so stdout stays the command's); true only for an
/// explicit yes. Callers have checked that stdin is a terminal.
pub fn ask(question: &str) -> bool {
    use std::io::{BufRead, Write};
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && confirmed(&answer)
}

/// Logs an error once and maps it to its exit status.
pub fn report_error(e: &Error) -> ExitStatus {
    tracing::error!("{e}");
    e.exit_status()
}

/// Settings from the arguments, `TZ` and the CPU count of the node (not of this container: see
/// [`crate::lock::node_cpus`]).
pub fn settings_from(args: &CreateArgs) -> Result<Settings, Error> {
    let tz = std::env::var("TZ").ok();
    Settings::from_args(args, tz.as_deref(), crate::lock::node_cpus())
}

/// A client from the kubeconfig (or in-cluster config), and the kube context's namespace.
///
/// `kube_retry` keeps kube's own retry layer (429/503/504 retried with a growing delay, bounded
/// at 15 attempts): right for `create`, which makes a handful of requests and should ride out a
/// busy API server. The lifecycle commands turn it off and retry in [`api::Requests`], bounded,
/// logged, counted and paced.
pub async fn client(kube_retry: bool) -> anyhow::Result<(kube::Client, String)> {
    let mut config = kube::Config::infer()
        .await
        .context("cannot load a kubeconfig or in-cluster config")?;
    config.default_retry = kube_retry;
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).context("cannot build the Kubernetes client")?;
    Ok((client, namespace))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_yes_confirms() {
        for yes in ["y", "Y", "yes\n", " YES "] {
            assert!(super::confirmed(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yep", "j"] {
            assert!(!super::confirmed(no), "{no:?}");
        }
    }
}
