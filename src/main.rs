//! The `backup-ns` binary: parse → telemetry → run → exit code. Everything else is the library.

use std::process::ExitCode;

use anyhow::Context;
use backup_ns::cli::{Cli, Command, CreateArgs, GlobalArgs, LogFormat, OutputFormat};
use backup_ns::commands::{create, env};
use backup_ns::settings::Settings;
use backup_ns::{Error, ExitStatus};
use clap::Parser;
use rand::Rng;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.global);
    let status = match cli.command {
        Command::Env(args) => run_env(&args, &cli.global),
        Command::Create(args) => run_async(run_create(*args, cli.global.output)),
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},kube=warn,hyper=warn,tower=warn")));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match g.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

/// One current-thread runtime: a backup run does a handful of requests at a time, and one thread
/// keeps the footprint small.
fn run_async(fut: impl std::future::Future<Output = ExitStatus>) -> ExitStatus {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            ExitStatus::Failure
        }
    }
}

fn settings_from(args: &CreateArgs) -> Result<Settings, Error> {
    let tz = std::env::var("TZ").ok();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    Settings::from_args(args, tz.as_deref(), cpus)
}

fn report_error(e: &Error) -> ExitStatus {
    tracing::error!("{e}");
    e.exit_status()
}

fn run_env(args: &CreateArgs, g: &GlobalArgs) -> ExitStatus {
    let settings = match settings_from(args) {
        Ok(s) => s,
        Err(e) => return report_error(&e),
    };
    match g.output {
        OutputFormat::Json => println!("{}", env::render_json(&settings)),
        OutputFormat::Text => print!("{}", env::render(&settings)),
    }
    ExitStatus::Success
}

async fn client_and_namespace(settings: &Settings) -> anyhow::Result<(kube::Client, String)> {
    let config = kube::Config::infer().await.context("cannot load a kubeconfig or in-cluster config")?;
    let namespace = settings.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).context("cannot build the Kubernetes client")?;
    Ok((client, namespace))
}

async fn run_create(args: CreateArgs, output: OutputFormat) -> ExitStatus {
    let settings = match settings_from(&args) {
        Ok(s) => s,
        Err(e) => return report_error(&e),
    };
    // The one clock reading of this run: it names the snapshot and dates every label.
    let now = chrono::Utc::now().with_timezone(&settings.tz);
    tracing::info!(time_zone = settings.tz.name(), source = settings.tz_source, "backup at {}", now.to_rfc3339());
    let (client, namespace) = match client_and_namespace(&settings).await {
        Ok(x) => x,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitStatus::Failure;
        }
    };
    if let Err(e) = backup_ns::labels::validate_dns1123_label("namespace of the kube context", &namespace) {
        return report_error(&e);
    }
    let mut rng = rand::rng();
    let rand: String = backup_ns::naming::random_suffix(&mut rng);
    let identity = std::env::var("BAK_LABEL_VS_POD")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "backup-ns".into());
    let holder = format!("{identity}/{}-{:04x}", std::process::id(), rng.random::<u16>());
    let ctx = create::CreateContext { client, namespace, settings, now, env: std::env::vars().collect(), rand, holder };
    let mut report = create::CreateReport::default();
    let result = create::run(&ctx, &mut report).await;
    let status = match &result {
        Ok(()) => ExitStatus::Success,
        Err(e) => {
            report.error = Some(e.to_string());
            report_error(e)
        }
    };
    print_report(&report, output);
    status
}

fn print_report(report: &create::CreateReport, output: OutputFormat) {
    match output {
        OutputFormat::Json => match serde_json::to_string_pretty(report) {
            Ok(s) => println!("{s}"),
            Err(e) => tracing::error!("cannot render the result: {e}"),
        },
        OutputFormat::Text => {
            if let Some(vs) = &report.volume_snapshot {
                println!("{}", serde_json::to_string_pretty(vs).unwrap_or_default());
            }
            if let Some(name) = &report.snapshot {
                let state = match (&report.error, report.dry_run, report.ready) {
                    (Some(_), _, _) => "FAILED",
                    (None, true, _) => "dry run, not created",
                    (None, false, true) => "ready",
                    (None, false, false) => "created",
                };
                println!("volumesnapshot/{name} in namespace {} ({state})", report.namespace);
                for (k, v) in &report.labels {
                    println!("  {k}={v}");
                }
            }
        }
    }
}
