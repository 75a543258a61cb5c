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

use std::io::IsTerminal;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde::Serialize;

use super::download::{signal, DumpVerifier, VerifyingSink};
use super::from_snapshot::{gather, FromSnapshot};
use super::workbench::{Purpose, Workbench, CONTAINER};
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
    snapshot: String,
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
    workbench: String,
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
            "dry run: would restore {} from volumesnapshot {}/{} into {} database {} in pod {} \
             (helper {})",
            report.dump_path,
            report.namespace,
            report.snapshot,
            report.engine,
            report.database,
            report.pod,
            report.workbench
        ),
        OutputFormat::Text if report.restored => println!(
            "restored {} ({} bytes, sha256 {}) from volumesnapshot {}/{} into {} database {} in \
             pod {}",
            report.dump_path,
            report.bytes.unwrap_or_default(),
            report.sha256.as_deref().unwrap_or_default(),
            report.namespace,
            report.snapshot,
            report.engine,
            report.database,
            report.pod
        ),
        OutputFormat::Text => {}
    }
}

async fn run(args: &RestoreDumpArgs, output: OutputFormat) -> Result<ExitStatus> {
    let opts = FromSnapshot::from_args(&args.from, &args.create)?;
    let yes = Raw::opt("BAK_YES", &args.yes).bool()?;
    let into_raw = Raw::opt("BAK_RESTORE_INTO_DATABASE", &args.into_database);
    let into = match into_raw.get()? {
        None => None,
        Some(v) => Some(check_database_name(v).map_err(|reason| into_raw.err(v, reason))?),
    };
    let timeout_raw = Raw::opt("BAK_RESTORE_DUMP_TIMEOUT", &args.timeout);
    let timeout = timeout_raw.duration_or("2h")?;
    if timeout.is_zero() {
        return Err(timeout_raw.err("0", "must be greater than zero, e.g. 2h"));
    }
    let dry_run = Raw::opt("BAK_DRY_RUN", &args.create.dry_run).bool()?;
    if !yes && !dry_run && !std::io::stdin().is_terminal() {
        return Err(Error::config(
            "BAK_YES (--yes)",
            "false",
            "restore dump overwrites the database and stdin is not a terminal to ask on; pass \
             --yes to restore, or --dry-run to see what would happen",
        ));
    }
    let (client, context_ns) = super::client(false)
        .await
        .map_err(|e| Error::Exec(format!("{e:#}")))?;
    let requests = super::api::Requests::new(client.clone(), super::api::DEFAULT_QPS);
    let now = chrono::Utc::now();
    let g = gather(
        &requests,
        &client,
        &context_ns,
        &opts,
        &args.create,
        true,
        now,
    )
    .await?;
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
    let database = match &into {
        Some(d) => d.clone(),
        None => match &job.target.database {
            ValueRef::Literal(v) => v.clone(),
            ValueRef::Env(name) => format!("${name}"),
        },
    };
    let mut report = Report {
        namespace: g.namespace.clone(),
        snapshot: g.snapshot_name.clone(),
        engine: super::dbops::engine_name(engine),
        pod: pod_name.clone(),
        container: job.container.clone(),
        database,
        into_database: into.is_some(),
        dump_path: dump.clone(),
        workbench: plan.name.clone(),
        dry_run,
        ..Default::default()
    };
    if dry_run {
        report.manifests = Some(vec![plan.pvc.clone(), plan.pod.clone()]);
        print(&report, output);
        return Ok(ExitStatus::Success);
    }
    if engine == Engine::Mysql && into.is_none() {
        tracing::warn!(
            "MySQL/MariaDB cannot roll back DDL: a restore that fails half-way leaves database \
             {} partly restored (the dump is verified before it is loaded); --into-database \
             restores next to it instead",
            report.database
        );
    }
    if !yes
        && !super::ask(&format!(
            "Restore {dump} from volumesnapshot {}/{} into {} database {} in pod {}{}?",
            g.namespace,
            g.snapshot_name,
            report.engine,
            report.database,
            pod_name,
            if into.is_some() {
                ""
            } else {
                " (its tables are dropped and re-created from the dump)"
            }
        ))
    {
        eprintln!("nothing restored");
        return Ok(ExitStatus::Failure);
    }

    let pods: Api<Pod> = Api::namespaced(client.clone(), &g.namespace);
    let mut bench = Workbench::new(&plan);
    let restore = Restore {
        pods: &pods,
        helper: &plan.name,
        dump: &dump,
        db_pod: &pod_name,
        container: &job.container,
        target: &job.target,
        into: into.as_deref(),
        timeout,
    };
    let result = tokio::select! {
        r = async {
            bench.open(&requests, &plan).await?;
            restore.run().await
        } => r,
        sig = signal() => Err(Error::Interrupted(format!(
            "{sig}: restore stopped{}",
            if engine == Engine::Postgres { "; the transaction is rolled back" } else { "" }
        ))),
    };
    bench.close(&requests).await;
    let status = match result {
        Ok((bytes, sha256)) => {
            report.restored = true;
            report.bytes = Some(bytes);
            report.sha256 = Some(sha256);
            tracing::info!(
                bytes,
                "restored {dump} from volumesnapshot {}/{} into {} database {}",
                g.namespace,
                g.snapshot_name,
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
    print(&report, output);
    Ok(status)
}

/// The apply step's inputs.
struct Restore<'a> {
    pods: &'a Api<Pod>,
    helper: &'a str,
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
            (self.helper, CONTAINER),
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
                (self.helper, CONTAINER),
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
