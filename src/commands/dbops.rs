//! The in-pod database operations shared by `create`, `download --live` and
//! `postgres|mysql dump|info`: the checks, the atomic dump, the info query and streaming the
//! dump file out of the container. Each runs one script from [`crate::db`] in the resolved pod.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde::Serialize;

use crate::cli::{CreateArgs, DbCommand, OutputFormat};

use crate::db::{self, DbTarget, Engine};
use crate::exec::{self, ExecRequest};
use crate::settings::DbJob;
use crate::{Error, ExitStatus, Result};

/// Timeout of the quick in-pod scripts (checks, free space, info).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(120);
/// Extra time the exec gets beyond the dump timeout, so the script's own timeout fires first
/// and reports a clean error.
const DUMP_GRACE: Duration = Duration::from_secs(30);

pub fn engine_name(e: Engine) -> &'static str {
    match e {
        Engine::Postgres => "postgres",
        Engine::Mysql => "mysql",
    }
}

/// A database job with the pod it runs in.
pub struct Resolved<'a> {
    pub job: &'a DbJob,
    pub pod: String,
    /// The pod as listed when it was chosen.
    pub object: Pod,
}

/// Resolves the job's exec resource to a ready pod.
pub async fn resolve<'a>(client: &kube::Client, ns: &str, job: &'a DbJob) -> Result<Resolved<'a>> {
    let object =
        crate::workload::resolve_pod(client, ns, &job.exec_resource, &job.container).await?;
    let pod = object.metadata.name.clone().unwrap_or_default();
    tracing::info!(
        "{}: using pod {pod}, container {}",
        job.exec_resource,
        job.container
    );
    Ok(Resolved { job, pod, object })
}

fn script_request<'a>(
    r: &'a Resolved<'a>,
    script: db::Script,
    hold_stdin: bool,
    timeout: Duration,
    what: &'a str,
) -> ExecRequest<'a> {
    ExecRequest {
        pod: &r.pod,
        container: &r.job.container,
        argv: script.argv,
        stdin: script.stdin,
        hold_stdin,
        timeout,
        what,
    }
}

pub async fn check_in_pod(pods: &Api<Pod>, r: &Resolved<'_>, threshold: u8) -> Result<()> {
    let target: &DbTarget = &r.job.target;
    let engine = engine_name(target.engine);
    let what = format!("{engine} check");
    let out = exec::run(
        pods,
        script_request(r, db::check_script(target), true, CHECK_TIMEOUT, &what),
    )
    .await?;
    if out.exit_code != 0 {
        return Err(Error::Exec(format!(
            "{engine} check in pod {} failed (exit {}): {}",
            r.pod,
            out.exit_code,
            out.stderr_summary()
        )));
    }
    tracing::info!(
        "{engine} check passed in pod {}: tools present, SELECT 1 ok",
        r.pod
    );

    let what = format!("{engine} free space");
    let out = exec::run(
        pods,
        script_request(
            r,
            db::space_script(&target.dump_file),
            true,
            CHECK_TIMEOUT,
            &what,
        ),
    )
    .await?;
    if out.exit_code != 0 {
        return Err(Error::Exec(format!(
            "free-space check of {} in pod {} failed (exit {}): {}",
            target.dump_file,
            r.pod,
            out.exit_code,
            out.stderr_summary()
        )));
    }
    let space = db::SpaceReport::parse(&out.stdout)
        .map_err(|e| Error::Exec(format!("free-space check in pod {}: {e}", r.pod)))?;
    space.verdict(threshold).map_err(|e| {
        Error::Precondition(format!("not enough space for {} in pod {}: {e} (BAK_THRESHOLD_SPACE_USED_PERCENTAGE={threshold})", target.dump_file, r.pod))
    })?;
    tracing::info!("free space ok for {}: {space}", target.dump_file);
    Ok(())
}

pub async fn dump_in_pod(pods: &Api<Pod>, r: &Resolved<'_>, timeout: Duration) -> Result<u64> {
    let target = &r.job.target;
    let engine = engine_name(target.engine);
    let what = format!("{engine} dump");
    let script = db::dump_script(target, timeout.as_secs().max(1));
    let out = exec::run(
        pods,
        script_request(r, script, true, timeout + DUMP_GRACE, &what),
    )
    .await?;
    if out.exit_code != 0 {
        return Err(Error::Exec(format!(
            "{engine} dump in pod {} failed (exit {}): {}; the previous dump {} is untouched",
            r.pod,
            out.exit_code,
            out.stderr_summary(),
            target.dump_file
        )));
    }
    db::parse_dump_output(&out.stdout)
        .map_err(|e| Error::Exec(format!("{engine} dump in pod {}: {e}", r.pod)))
}

/// Runs the info script: server version, database size, the dump file's size and age.
pub async fn info_in_pod(pods: &Api<Pod>, r: &Resolved<'_>) -> Result<db::InfoReport> {
    let target = &r.job.target;
    let engine = engine_name(target.engine);
    let what = format!("{engine} info");
    let out = exec::run(
        pods,
        script_request(r, db::info_script(target), true, CHECK_TIMEOUT, &what),
    )
    .await?;
    if out.exit_code != 0 {
        return Err(Error::Exec(format!(
            "{engine} info in pod {} failed (exit {}): {}",
            r.pod,
            out.exit_code,
            out.stderr_summary()
        )));
    }
    db::InfoReport::parse(&out.stdout)
        .map_err(|e| Error::Exec(format!("{engine} info in pod {}: {e}", r.pod)))
}

/// Streams `file` (absolute, or relative to the container's working directory) out of
/// `(pod, container)` into `sink`; returns the bytes copied.
pub async fn stream_file<W>(
    pods: &Api<Pod>,
    (pod, container): (&str, &str),
    file: &str,
    timeout: Duration,
    what: &str,
    sink: &mut W,
) -> Result<u64>
where
    W: tokio::io::AsyncWrite + Unpin + ?Sized,
{
    let script = db::cat_script(file);
    let req = ExecRequest {
        pod,
        container,
        argv: script.argv,
        stdin: script.stdin,
        hold_stdin: true,
        timeout,
        what,
    };
    let out = exec::run_streaming(pods, req, sink).await?;
    if out.exit_code != 0 {
        let line = db::last_error_line(&out.stderr);
        return Err(Error::Exec(format!(
            "reading {file} in pod {pod} failed (exit {}): {line}",
            out.exit_code,
        )));
    }
    Ok(out.bytes)
}

/// `postgres|mysql dump`: the checks and the atomic dump of `create`, nothing else.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DumpCommandReport {
    pub namespace: String,
    pub dry_run: bool,
    #[serde(flatten)]
    pub dump: super::create::DumpReport,
}

/// `postgres|mysql info`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InfoCommandReport {
    pub namespace: String,
    pub engine: &'static str,
    pub pod: String,
    pub container: String,
    pub dump_file: String,
    #[serde(flatten)]
    pub info: db::InfoReport,
}

/// `postgres|mysql dump|info` with `create`'s flags; the engine is the command's. `dump` takes
/// no snapshot, no Lease and no node lock: it is the original's one-off dump, for before a
/// risky migration or to refresh the file `download --live` fetches.
pub async fn main(command: DbCommand, engine: Engine, output: OutputFormat) -> ExitStatus {
    let result = match &command {
        DbCommand::Dump(a) => dump_command(a, engine, output).await,
        DbCommand::Info(a) => info_command(a, engine, output).await,
        DbCommand::Shell(a) => return super::shell::main(a, engine, output).await,
        DbCommand::Restore(a) => return super::restore_dump::live_main(a, engine, output).await,
        DbCommand::DownloadDump(a) => {
            let args = crate::cli::DownloadArgs {
                live: Some("true".into()),
                file: a.file.clone(),
                create: super::download::with_engine(&a.create, engine),
                ..Default::default()
            };
            return super::download::main(&args, output).await;
        }
    };
    match result {
        Ok(()) => ExitStatus::Success,
        Err(e) => super::report_error(&e),
    }
}

async fn dump_command(args: &CreateArgs, engine: Engine, output: OutputFormat) -> Result<()> {
    let settings = super::settings_from(&super::download::with_engine(args, engine))?;
    let job = &settings.databases[0];
    let (client, namespace) = super::download::connect(&settings).await?;
    let r = resolve(&client, &namespace, job).await?;
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    check_in_pod(&pods, &r, settings.space_threshold_percent).await?;
    let mut dump = super::create::DumpReport {
        engine: engine_name(engine),
        pod: r.pod.clone(),
        container: job.container.clone(),
        file: job.target.dump_file.clone(),
        bytes: None,
    };
    if settings.dry_run {
        tracing::info!(
            "dry run: would dump {} to {} in pod {}",
            dump.engine,
            dump.file,
            r.pod
        );
    } else {
        let bytes = dump_in_pod(&pods, &r, settings.dump_timeout).await?;
        tracing::info!(
            bytes,
            "{} dump written to {} in pod {}",
            dump.engine,
            dump.file,
            r.pod
        );
        dump.bytes = Some(bytes);
    }
    let report = DumpCommandReport {
        namespace,
        dry_run: settings.dry_run,
        dump,
    };
    match output {
        OutputFormat::Json => println!("{}", to_json(&report)?),
        OutputFormat::Text => match report.dump.bytes {
            Some(b) => println!(
                "{} dump {} in pod {}: {b} bytes",
                report.dump.engine, report.dump.file, report.dump.pod
            ),
            None => println!(
                "dry run: {} dump {} in pod {} not written",
                report.dump.engine, report.dump.file, report.dump.pod
            ),
        },
    }
    Ok(())
}

async fn info_command(args: &CreateArgs, engine: Engine, output: OutputFormat) -> Result<()> {
    let settings = super::settings_from(&super::download::with_engine(args, engine))?;
    let job = &settings.databases[0];
    let (client, namespace) = super::download::connect(&settings).await?;
    let r = resolve(&client, &namespace, job).await?;
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let info = info_in_pod(&pods, &r).await?;
    let report = InfoCommandReport {
        namespace,
        engine: engine_name(engine),
        pod: r.pod.clone(),
        container: job.container.clone(),
        dump_file: job.target.dump_file.clone(),
        info,
    };
    match output {
        OutputFormat::Json => println!("{}", to_json(&report)?),
        OutputFormat::Text => {
            let i = &report.info;
            println!(
                "{} in pod {} (container {})",
                report.engine, report.pod, report.container
            );
            println!("  server version: {}", i.server_version);
            println!("  database size:  {} bytes", i.database_bytes);
            match (i.dump_bytes, i.dump_age_seconds) {
                (Some(b), Some(age)) => println!(
                    "  dump file:      {} ({b} bytes, {} old)",
                    report.dump_file,
                    crate::settings::format_duration(Duration::from_secs(age))
                ),
                (Some(b), None) => println!("  dump file:      {} ({b} bytes)", report.dump_file),
                _ => println!("  dump file:      {} (none yet)", report.dump_file),
            }
        }
    }
    Ok(())
}

fn to_json(v: &impl Serialize) -> Result<String> {
    serde_json::to_string_pretty(v)
        .map_err(|e| Error::Exec(format!("cannot render the result: {e}")))
}
