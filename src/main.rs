//! The `backup-ns` binary: parse → telemetry → run → exit code. Everything else is the library.

use std::process::ExitCode;

use backup_ns::cli::{Cli, GlobalArgs, LogFormat};
use backup_ns::{commands, ExitStatus};
use clap::Parser;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.global);
    // One current-thread runtime: a run does a handful of requests at a time, and one thread
    // keeps the footprint small.
    let status = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(commands::run(cli.command, &cli.global)),
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            ExitStatus::Failure
        }
    };
    ExitCode::from(status.code())
}

fn init_tracing(g: &GlobalArgs) {
    let level = match (g.verbose, g.quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},kube=warn,hyper=warn,tower=warn"))
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // The last log lines also go to a small ring buffer: the healthcheck `/fail` ping carries
    // them (see `notify::LogTail`).
    let tail = backup_ns::notify::LogTail::global().clone();
    let registry = tracing_subscriber::registry().with(filter).with(tail);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match g.log_format {
        LogFormat::Json => registry.with(fmt.json()).init(),
        LogFormat::Text => registry.with(fmt.with_target(false)).init(),
    }
}
