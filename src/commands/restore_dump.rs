//! `backup-ns restore dump SNAPSHOT|latest`: the dump inside a snapshot, back into the live
//! database, without touching the snapshotted PVC.
//!
//! gather ([`super::from_snapshot`]: the snapshot, the database settings it was taken with, the
//! live database pod, the dump's path on the volume) → plan (the workbench and the target
//! database; `--dry-run` stops here) → confirm (on a terminal; `--yes` elsewhere) → apply:
//!
//! 1. the workbench: a temporary PVC from the snapshot and a helper pod from the database
//!    container's image ([`super::workbench`]);
//! 2. the dump is read once through [`DumpVerifier`] (gzip integrity, the engine's completion
//!    trailer, size and sha256): a corrupt or truncated dump is refused before the database is
//!    touched;
//! 3. the dump is streamed from the helper into the database container's restore script, chunk
//!    by chunk (memory stays flat): the password line, the dump's byte count, the bytes. The
//!    PostgreSQL script loads it in one transaction and commits only when all the bytes
//!    arrived, gunzip finished cleanly and the trailer was seen; anything else rolls back and
//!    the database is as it was. MySQL/MariaDB cannot roll back DDL: the command says so
//!    before asking;
//! 4. the workbench is deleted — on success, failure and SIGTERM.
//!
//! The original's `postgres|mysql restore` ([`live_main`]) is steps 2 and 3 with the database
//! container's current dump file as the source: no snapshot, no workbench.

use std::io::IsTerminal;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde::Serialize;

use super::download::{signal, DumpVerifier, VerifyingSink};
use super::from_snapshot::{connect_and_gather, FromSnapshot};
use super::workbench::{Purpose, CONTAINER};
use crate::cli::{OutputFormat, RestoreDumpArgs};
use crate::db::{self, Engine, ValueRef};
use crate::exec::{self, ExecRequest};
use crate::settings::Raw;
use crate::{Error, ExitStatus, Result};

/// Room between the helper's reads and the database's writes: a few chunks.
const PIPE: usize = 256 * 1024;

/// The `-o json` document (and what the text output says).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    namespace: String,
    /// The snapshot read (`None`: `postgres|mysql restore`, the container's current dump).
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<String>,
    engine: &'static str,
    pod: String,
    container: String,
    /// The database restored into, as configured (`$VAR` references stay references).
    database: String,
    /// `--into-database`: created when missing, the live database untouched.
    into_database: bool,
    /// The dump on the restored volume, relative to its root.
    dump_path: String,
    /// The temporary PVC and helper pod (same name).
    #[serde(skip_serializing_if = "Option::is_none")]
    workbench: Option<String>,
    dry_run: bool,
    restored: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// With `--dry-run`: the temporary PVC and helper pod it would create.
    #[serde(skip_serializing_if = "Option::is_none")]
    manifests: Option<Vec<serde_json::Value>>,
}

pub async fn main(args: &RestoreDumpArgs, output: OutputFormat) -> ExitStatus {
    match run(args, output).await {
        Ok(status) => status,
        Err(e) => super::report_error(&e),
    }
}

/// `--into-database`: a database name the scripts can quote (no NUL, no newline, not empty).
pub fn check_database_name(v: &str) -> std::result::Result<String, String> {
    if v.is_empty() {
        return Err("must not be empty".into());
    }
    if v.contains(['\0', '\n']) {
        return Err("must not contain NUL or a newline".into());
    }
    if v.len() > 63 {
        return Err("longer than 63 bytes, the PostgreSQL and MySQL limit".into());
    }
    Ok(v.to_owned())
}

fn print(report: &Report, output: OutputFormat) {
    match output {
        OutputFormat::Json => match serde_json::to_string_pretty(report) {
            Ok(s) => println!("{s}"),
            Err(e) => tracing::error!("cannot render the result: {e}"),
        },
        OutputFormat::Text if report.dry_run => println!(
            "dry run: would restore {}{} into {} database {} in pod {}{}",
            report.dump_path,
            from(report),
            report.engine,
            report.database,
            report.pod,
            report
                .workbench
                .as_deref()
                .map_or_else(String::new, |w| format!(" (helper {w})"))
        ),
        OutputFormat::Text if report.restored => println!(
            "restored {} ({} bytes, sha256 {}){} into {} database {} in pod {}",
            report.dump_path,
            report.bytes.unwrap_or_default(),
            report.sha256.as_deref().unwrap_or_default(),
            from(report),
            report.engine,
            report.database,
            report.pod
        ),
        OutputFormat::Text => {}
    }
}

/// ` from volumesnapshot NS/NAME`, or nothing for the container's own dump.
fn from(report: &Report) -> String {
    report.snapshot.as_deref().map_or_else(String::new, |s| {
        format!(" from volumesnapshot {}/{s}", report.namespace)
    })
}

/// `--into-database`, checked.
fn into_database(value: &Option<String>) -> Result<Option<String>> {
    let raw = Raw::opt("BAK_RESTORE_INTO_DATABASE", value);
    match raw.get()? {
        None => Ok(None),
        Some(v) => Ok(Some(
            check_database_name(v).map_err(|reason| raw.err(v, reason))?,
        )),
    }
}

/// Without `--yes` a terminal must be there to ask on.
fn refuse_unasked(yes: bool, dry_run: bool) -> Result<()> {
    if !yes && !dry_run && !std::io::stdin().is_terminal() {
        return Err(Error::config(
            "BAK_YES (--yes)",
            "false",
            "a restore overwrites the database and stdin is not a terminal to ask on; pass \
             --yes to restore, or --dry-run to see what would happen",
        ));
    }
    Ok(())
}

/// The database a restore writes to, as configured (`$VAR` references stay references).
fn database_of(target: &db::DbTarget, into: Option<&str>) -> String {
    match (into, &target.database) {
        (Some(d), _) => d.to_owned(),
        (None, ValueRef::Literal(v)) => v.clone(),
        (None, ValueRef::Env(name)) => format!("${name}"),
    }
}

/// Asks, unless `yes`; false: the person said no.
fn confirmed(yes: bool, what: &str, engine: Engine, report: &Report, into: bool) -> bool {
    if engine == Engine::Mysql && !into {
        tracing::warn!(
            "MySQL/MariaDB cannot roll back DDL: a restore that fails half-way leaves database \
             {} partly restored (the dump is verified before it is loaded); --into-database \
             restores next to it instead",
            report.database
        );
    }
    if yes {
        return true;
    }
    let ok = super::ask(&format!(
        "Restore {what} into {} database {} in pod {}{}?",
        report.engine,
        report.database,
        report.pod,
        if into {
            ""
        } else {
            " (its tables are dropped and re-created from the dump)"
        }
    ));
    if !ok {
        eprintln!("nothing restored");
    }
    ok
}

/// `postgres|mysql restore` (the original's): the container's current dump file, checked, into
/// its database. No snapshot, no helper: the dump is read where it lies.
pub async fn live_main(
    args: &crate::cli::DbRestoreArgs,
    engine: Engine,
    output: OutputFormat,
) -> ExitStatus {
    match live(args, engine, output).await {
        Ok(status) => status,
        Err(e) => super::report_error(&e),
    }
}

async fn live(
    args: &crate::cli::DbRestoreArgs,
    engine: Engine,
    output: OutputFormat,
) -> Result<ExitStatus> {
    let yes = Raw::opt("BAK_YES", &args.yes).bool()?;
    let into = into_database(&args.into_database)?;
    let settings = super::settings_from(&super::download::with_engine(&args.create, engine))?;
    let job = &settings.databases[0];
    refuse_unasked(yes, settings.dry_run)?;
    let (client, namespace) = super::download::connect(&settings).await?;
    let r = super::dbops::resolve(&client, &namespace, job).await?;
    let mut report = Report {
        namespace,
        engine: super::dbops::engine_name(engine),
        pod: r.pod.clone(),
        container: job.container.clone(),
        database: database_of(&job.target, into.as_deref()),
        into_database: into.is_some(),
        dump_path: job.target.dump_file.clone(),
        dry_run: settings.dry_run,
        ..Default::default()
    };
    if settings.dry_run {
        print(&report, output);
        return Ok(ExitStatus::Success);
    }
    let what = format!("{} (the current dump file)", job.target.dump_file);
    if !confirmed(yes, &what, engine, &report, into.is_some()) {
        return Ok(ExitStatus::Failure);
    }
    let pods: Api<Pod> = Api::namespaced(client, &report.namespace);
    let restore = Restore {
        pods: &pods,
        source: (&r.pod, &job.container),
        dump: &job.target.dump_file,
        db_pod: &r.pod,
        container: &job.container,
        target: &job.target,
        into: into.as_deref(),
        timeout: settings.dump_timeout,
    };
    let result = tokio::select! {
        r = restore.run() => r,
        sig = signal() => Err(Error::Interrupted(format!("{sig}: restore stopped"))),
    };
    Ok(finish(result, &mut report, output))
}

/// Logs and prints the outcome.
fn finish(result: Result<(u64, String)>, report: &mut Report, output: OutputFormat) -> ExitStatus {
    let status = match result {
        Ok((bytes, sha256)) => {
            report.restored = true;
            report.bytes = Some(bytes);
            report.sha256 = Some(sha256);
            tracing::info!(
                bytes,
                "restored {}{} into {} database {}",
                report.dump_path,
                from(report),
                report.engine,
                report.database
            );
            ExitStatus::Success
        }
        Err(e) => {
            report.error = Some(e.to_string());
            super::report_error(&e)
        }
    };
    print(report, output);
    status
}

async fn run(args: &RestoreDumpArgs, output: OutputFormat) -> Result<ExitStatus> {
    let opts = FromSnapshot::from_args(&args.from, &args.create)?;
    let yes = Raw::opt("BAK_YES", &args.yes).bool()?;
    let into = into_database(&args.into_database)?;
    let timeout = Raw::opt("BAK_RESTORE_DUMP_TIMEOUT", &args.timeout).timeout_or("2h")?;
    let dry_run = Raw::opt("BAK_DRY_RUN", &args.create.dry_run).bool()?;
    refuse_unasked(yes, dry_run)?;
    let super::from_snapshot::Session {
        client,
        requests,
        now,
        g,
    } = connect_and_gather(&opts, &args.create, true).await?;
    let (Some(job), Some(dump), Some(db_pod)) = (g.job(), g.dump_path.clone(), g.db_pod.as_ref())
    else {
        return Err(Error::Precondition(format!(
            "volumesnapshot {}/{} is a volume-only snapshot (no database in its env-config): \
             there is no dump to restore; `backup-ns restore pvc` gives you its volume",
            g.namespace, g.snapshot_name
        )));
    };
    let engine = job.target.engine;
    let helper = g.helper(None, opts.helper_uid)?;
    let plan = g.plan(Purpose::Restore, &helper, timeout, now)?;
    let pod_name = db_pod.metadata.name.clone().unwrap_or_default();
    let mut report = Report {
        namespace: g.namespace.clone(),
        snapshot: Some(g.snapshot_name.clone()),
        engine: super::dbops::engine_name(engine),
        pod: pod_name.clone(),
        container: job.container.clone(),
        database: database_of(&job.target, into.as_deref()),
        into_database: into.is_some(),
        dump_path: dump.clone(),
        workbench: Some(plan.name.clone()),
        dry_run,
        ..Default::default()
    };
    if dry_run {
        report.manifests = Some(vec![plan.pvc.clone(), plan.pod.clone()]);
        print(&report, output);
        return Ok(ExitStatus::Success);
    }
    let what = format!(
        "{dump} from volumesnapshot {}/{}",
        g.namespace, g.snapshot_name
    );
    if !confirmed(yes, &what, engine, &report, into.is_some()) {
        return Ok(ExitStatus::Failure);
    }

    let pods: Api<Pod> = Api::namespaced(client.clone(), &g.namespace);
    let restore = Restore {
        pods: &pods,
        source: (&plan.name, CONTAINER),
        dump: &dump,
        db_pod: &pod_name,
        container: &job.container,
        target: &job.target,
        into: into.as_deref(),
        timeout,
    };
    let what = if engine == Engine::Postgres {
        "restore (the transaction is rolled back)"
    } else {
        "restore"
    };
    let result = super::workbench::within(&requests, &plan, what, restore.run()).await;
    Ok(finish(result, &mut report, output))
}

/// The apply step's inputs.
struct Restore<'a> {
    pods: &'a Api<Pod>,
    /// Where the dump is read: the helper's container, or the database's own.
    source: (&'a str, &'a str),
    dump: &'a str,
    db_pod: &'a str,
    container: &'a str,
    target: &'a db::DbTarget,
    into: Option<&'a str>,
    timeout: Duration,
}

impl Restore<'_> {
    /// Verifies the dump, then streams it into the database; returns its size and sha256.
    async fn run(&self) -> Result<(u64, String)> {
        let engine = self.target.engine;
        let mut check = VerifyingSink {
            inner: tokio::io::sink(),
            verifier: DumpVerifier::new(engine),
        };
        super::dbops::stream_file(
            self.pods,
            self.source,
            self.dump,
            self.timeout,
            "reading the dump",
            &mut check,
        )
        .await?;
        let verified = check.verifier.finish().map_err(|e| {
            Error::Exec(format!(
                "{} in the snapshot: {e}; the database was not touched",
                self.dump
            ))
        })?;
        tracing::info!(
            bytes = verified.bytes,
            sha256 = verified.sha256.as_str(),
            "{} in the snapshot is whole; loading it into pod {}",
            self.dump,
            self.db_pod
        );

        let (mut into_pipe, mut from_pipe) = tokio::io::duplex(PIPE);
        let feed = async {
            let n = super::dbops::stream_file(
                self.pods,
                self.source,
                self.dump,
                self.timeout,
                "reading the dump",
                &mut into_pipe,
            )
            .await?;
            drop(into_pipe);
            if n != verified.bytes {
                return Err(Error::Exec(format!(
                    "{} changed between reads ({} then {n} bytes)",
                    self.dump, verified.bytes
                )));
            }
            Ok(())
        };
        let script = db::restore::restore_script(
            self.target,
            self.into,
            self.into.is_some(),
            verified.bytes,
        );
        let what = format!("{} restore", super::dbops::engine_name(engine));
        let load = async {
            let req = ExecRequest {
                pod: self.db_pod,
                container: self.container,
                argv: script.argv.clone(),
                stdin: script.stdin.clone(),
                hold_stdin: true,
                timeout: self.timeout,
                what: &what,
            };
            let mut out = Vec::new();
            let o = exec::run_fed(self.pods, req, &mut from_pipe, &mut out).await?;
            if o.exit_code != 0 {
                return Err(Error::Exec(format!(
                    "{what} in pod {} failed (exit {}): {}{}",
                    self.db_pod,
                    o.exit_code,
                    db::last_error_line(&o.stderr),
                    if engine == Engine::Postgres {
                        "; the transaction was rolled back, the database is as it was (objects \
                         created since the backup can block the dump's DROP statements: \
                         --into-database restores next to them)"
                    } else {
                        "; MySQL cannot roll back DDL: the database may be partly restored"
                    }
                )));
            }
            Ok(())
        };
        // The first error ends both: a failed read drops the load before its bytes are
        // complete (the script then rolls back); a failed load stops the read.
        tokio::try_join!(feed, load)?;
        Ok((verified.bytes, verified.sha256))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_the_scripts_can_carry() {
        assert_eq!(check_database_name("app_copy"), Ok("app_copy".into()));
        assert_eq!(check_database_name("Ä \"x\""), Ok("Ä \"x\"".into()));
        for bad in ["", "a\nb", "a\0b", &"x".repeat(64)] {
            assert!(check_database_name(bad).is_err(), "{bad:?}");
        }
    }
}
