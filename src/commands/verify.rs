//! `backup-ns verify SNAPSHOT|latest`: proof that a backup restores.
//!
//! A snapshot that is `readyToUse` only says the storage holds bytes. `verify` restores it the
//! way a bad night would: a temporary PVC from the snapshot and a helper pod from the database
//! container's image ([`super::workbench`]). In the helper, the verify script starts a
//! throwaway server (empty data directory in the pod's scratch space, unix socket only, trust
//! auth, no Service), loads the dump with `ON_ERROR_STOP` in one transaction, reports every
//! table with its row count and evaluates the `--expect 'SQL=MIN'` checks; then the server and
//! the workbench are gone. A volume-only snapshot is verified by mounting it and finding the
//! `--expect-file` files.
//!
//! The outcome lands on the snapshot as a label, `backup-ns.sh/verified=<date>` or
//! `backup-ns.sh/verify-failed=<date>` (each removes the other), so `list` and `status` show
//! it and `kubectl get vs -l backup-ns.sh/verify-failed` finds the bad ones. Only a check that
//! ran says something about the backup: when the workbench cannot be built (no image, no
//! quota, a timeout before the helper runs) the command fails without a label.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde_json::json;

use super::from_snapshot::{check_relative, connect_and_gather, FromSnapshot};
use super::workbench::{Purpose, CONTAINER};
use crate::cli::{OutputFormat, VerifyArgs};
use crate::db::restore::{self as checks, Expect};
use crate::exec::{self, ExecRequest};
use crate::labels;
use crate::settings::Raw;
use crate::snapshot::VolumeSnapshot;
use crate::{Error, ExitStatus, Result};

/// The helper image of a volume-only snapshot when `--image` does not say.
pub const DEFAULT_VOLUME_IMAGE: &str = "busybox:1.36";

/// One table of the loaded dump.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Table {
    pub table: String,
    pub rows: u64,
}

/// One `--expect`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Expectation {
    pub sql: String,
    pub min: i64,
    pub value: Option<String>,
    pub ok: bool,
}

/// One `--expect-file`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileCheck {
    pub path: String,
    pub exists: bool,
    pub bytes: Option<u64>,
}

/// The `-o json` document.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    namespace: String,
    snapshot: String,
    /// `postgres`, `mysql`, or `volume` for a volume-only snapshot.
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dump_path: Option<String>,
    image: String,
    workbench: String,
    dry_run: bool,
    /// `verified`, `failed`, or `error` (the check could not run; no label).
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    tables: Vec<Table>,
    expectations: Vec<Expectation>,
    files: Vec<FileCheck>,
    /// The label written (`backup-ns.sh/verified=2026-12-01`).
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    manifests: Option<Vec<serde_json::Value>>,
}

/// What the checks found, before the label.
#[derive(Debug, Default)]
struct Findings {
    tables: Vec<Table>,
    expectations: Vec<Expectation>,
    files: Vec<FileCheck>,
    /// Why the backup failed verification (`None`: it passed).
    failure: Option<String>,
}

pub async fn main(args: &VerifyArgs, output: OutputFormat) -> ExitStatus {
    match run(args, output).await {
        Ok(status) => status,
        Err(e) => super::report_error(&e),
    }
}

/// The verdict of the checks that ran: the first failed expectation or missing file.
fn verdict(f: &mut Findings) {
    if f.failure.is_some() {
        return;
    }
    if let Some(e) = f.expectations.iter().find(|e| !e.ok) {
        f.failure = Some(format!(
            "expected {} >= {}, got {}",
            e.sql,
            e.min,
            e.value.as_deref().unwrap_or("no row")
        ));
    } else if let Some(m) = f.files.iter().find(|c| !c.exists) {
        f.failure = Some(format!("{} is not on the restored volume", m.path));
    }
}

/// The labels patch for an outcome on `date`: one label set, the other removed.
pub fn outcome_patch(verified: bool, date: &str) -> serde_json::Value {
    let (set, unset) = if verified {
        (labels::VERIFIED, labels::VERIFY_FAILED)
    } else {
        (labels::VERIFY_FAILED, labels::VERIFIED)
    };
    json!({ "metadata": { "labels": { set: date, unset: null } } })
}

async fn run(args: &VerifyArgs, output: OutputFormat) -> Result<ExitStatus> {
    let opts = FromSnapshot::from_args(&args.from, &args.create)?;
    let expects: Vec<Expect> = args
        .expect
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .map(|e| {
            Expect::parse(e)
                .map_err(|reason| Error::config("BAK_VERIFY_EXPECT (--expect)", e, reason))
        })
        .collect::<Result<_>>()?;
    let files: Vec<String> = args
        .expect_file
        .iter()
        .map(|f| f.trim())
        .filter(|f| !f.is_empty())
        .map(|f| {
            check_relative(f).map_err(|reason| {
                Error::config("BAK_VERIFY_EXPECT_FILES (--expect-file)", f, reason)
            })
        })
        .collect::<Result<_>>()?;
    let image = Raw::opt("BAK_VERIFY_IMAGE", &args.image)
        .get()?
        .map(str::to_owned);
    if image
        .as_deref()
        .is_some_and(|i| i.trim().is_empty() || i.contains(char::is_whitespace))
    {
        return Err(Error::config(
            "BAK_VERIFY_IMAGE (--image)",
            image.unwrap_or_default(),
            "expected an image reference such as busybox:1.36",
        ));
    }
    let timeout = Raw::opt("BAK_VERIFY_TIMEOUT", &args.timeout).timeout_or("30m")?;
    let super::from_snapshot::Session {
        client,
        requests,
        now,
        g,
    } = connect_and_gather(&opts, &args.create, false).await?;
    let job = g.job();
    if job.is_none() && !expects.is_empty() {
        return Err(Error::config(
            "BAK_VERIFY_EXPECT (--expect)",
            expects[0].sql.clone(),
            format!(
                "volumesnapshot {} is volume-only (no database in its env-config): there is no \
                 database to query; check files with --expect-file",
                g.snapshot_name
            ),
        ));
    }
    let helper = match (job, image.as_deref()) {
        (None, i) => g.helper(Some(i.unwrap_or(DEFAULT_VOLUME_IMAGE)), opts.helper_uid)?,
        (Some(_), i) => g.helper(i, opts.helper_uid)?,
    };
    let plan = g.plan(Purpose::Verify, &helper, timeout, now)?;
    let mut report = Report {
        namespace: g.namespace.clone(),
        snapshot: g.snapshot_name.clone(),
        kind: job.map_or("volume", |j| super::dbops::engine_name(j.target.engine)),
        dump_path: g.dump_path.clone().filter(|_| job.is_some()),
        image: helper.image.clone(),
        workbench: plan.name.clone(),
        dry_run: g.settings.dry_run,
        ..Default::default()
    };
    if job.is_none() && files.is_empty() {
        tracing::warn!(
            "volume-only snapshot and no --expect-file: only checks that the volume restores and \
             mounts"
        );
    }
    if g.settings.dry_run {
        report.outcome = "dry-run";
        report.manifests = Some(vec![plan.pvc.clone(), plan.pod.clone()]);
        print(&report, output);
        return Ok(ExitStatus::Success);
    }

    let pods: Api<Pod> = Api::namespaced(client.clone(), &g.namespace);
    let checks = Checks {
        pods: &pods,
        helper: &plan.name,
        engine: job.map(|j| j.target.engine),
        dump: report.dump_path.as_deref(),
        expects: &expects,
        files: &files,
        timeout,
    };
    let result = super::workbench::within(&requests, &plan, "verification", checks.run()).await;
    let mut findings = match result {
        Ok(f) => f,
        Err(e) => {
            report.outcome = "error";
            report.reason = Some(e.to_string());
            let status = super::report_error(&e);
            tracing::error!(
                "the verification could not run; volumesnapshot {} is not labelled",
                g.snapshot_name
            );
            print(&report, output);
            return Ok(status);
        }
    };
    verdict(&mut findings);
    report.tables = findings.tables;
    report.expectations = findings.expectations;
    report.files = findings.files;
    report.reason = findings.failure.clone();
    let passed = findings.failure.is_none();
    report.outcome = if passed { "verified" } else { "failed" };
    let date = labels::daily_value(now.with_timezone(&g.settings.tz));
    let api: Api<VolumeSnapshot> = Api::namespaced(client.clone(), &g.namespace);
    let what = format!("label volumesnapshot {}/{}", g.namespace, g.snapshot_name);
    let patch = Patch::Merge(outcome_patch(passed, &date));
    let pp = PatchParams::default();
    let mut status = if passed {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    };
    match requests
        .call(&what, || api.patch(&g.snapshot_name, &pp, &patch))
        .await
    {
        Ok(_) => {
            let key = if passed {
                labels::VERIFIED
            } else {
                labels::VERIFY_FAILED
            };
            report.label = Some(format!("{key}={date}"));
        }
        Err(e) => {
            tracing::error!("{what}: {}", super::api::describe(&e));
            status = ExitStatus::Failure;
        }
    }
    if passed {
        tracing::info!(
            tables = report.tables.len(),
            "volumesnapshot {}/{} verified",
            g.namespace,
            g.snapshot_name
        );
    } else {
        tracing::error!(
            "volumesnapshot {}/{} failed verification: {}",
            g.namespace,
            g.snapshot_name,
            report.reason.as_deref().unwrap_or_default()
        );
    }
    print(&report, output);
    Ok(status)
}

fn print(report: &Report, output: OutputFormat) {
    match output {
        OutputFormat::Json => match serde_json::to_string_pretty(report) {
            Ok(s) => println!("{s}"),
            Err(e) => tracing::error!("cannot render the result: {e}"),
        },
        OutputFormat::Text => {
            if report.dry_run {
                println!(
                    "dry run: would verify volumesnapshot {}/{} in helper pod {} ({})",
                    report.namespace, report.snapshot, report.workbench, report.image
                );
                return;
            }
            if report.outcome == "error" {
                return;
            }
            println!(
                "volumesnapshot {}/{}: {}{}",
                report.namespace,
                report.snapshot,
                report.outcome,
                report
                    .reason
                    .as_deref()
                    .map_or_else(String::new, |r| format!(" ({r})"))
            );
            for t in &report.tables {
                println!("  table {}: {} rows", t.table, t.rows);
            }
            for e in &report.expectations {
                println!(
                    "  {} {} >= {}: {}",
                    if e.ok { "ok  " } else { "FAIL" },
                    e.sql,
                    e.min,
                    e.value.as_deref().unwrap_or("no row")
                );
            }
            for f in &report.files {
                println!("  {} {}", if f.exists { "ok  " } else { "FAIL" }, f.path);
            }
        }
    }
}

/// The checks run in the helper.
struct Checks<'a> {
    pods: &'a Api<Pod>,
    helper: &'a str,
    engine: Option<crate::db::Engine>,
    dump: Option<&'a str>,
    expects: &'a [Expect],
    files: &'a [String],
    timeout: std::time::Duration,
}

impl Checks<'_> {
    async fn run(&self) -> Result<Findings> {
        let mut f = Findings::default();
        if let (Some(engine), Some(dump)) = (self.engine, self.dump) {
            let script = checks::verify_script(engine, dump, self.expects);
            let out = self.exec(script, "verify").await?;
            if out.exit_code != 0 {
                f.failure = Some(crate::db::last_error_line(&out.stderr).to_owned());
                return Ok(f);
            }
            let parsed = checks::VerifyReport::parse(&out.stdout)
                .map_err(|e| Error::Exec(format!("verify in pod {}: {e}", self.helper)))?;
            f.tables = parsed
                .tables
                .iter()
                .map(|t| Table {
                    table: t.name.clone(),
                    rows: t.rows,
                })
                .collect();
            f.expectations = parsed
                .judge(self.expects)
                .into_iter()
                .map(|o| Expectation {
                    sql: o.sql,
                    min: o.min,
                    value: o.value,
                    ok: o.ok,
                })
                .collect();
        }
        if !self.files.is_empty() {
            let out = self
                .exec(checks::volume_check_script(self.files), "volume check")
                .await?;
            if out.exit_code != 0 {
                return Err(Error::Exec(format!(
                    "volume check in pod {} failed (exit {}): {}",
                    self.helper,
                    out.exit_code,
                    out.stderr_summary()
                )));
            }
            f.files = checks::parse_volume_check(&out.stdout)
                .map_err(|e| Error::Exec(format!("volume check in pod {}: {e}", self.helper)))?
                .into_iter()
                .map(|c| FileCheck {
                    path: c.path,
                    exists: c.exists,
                    bytes: c.bytes,
                })
                .collect();
        }
        Ok(f)
    }

    async fn exec(&self, script: crate::db::Script, what: &str) -> Result<exec::ExecOutput> {
        exec::run(
            self.pods,
            ExecRequest {
                pod: self.helper,
                container: CONTAINER,
                argv: script.argv,
                stdin: script.stdin,
                hold_stdin: true,
                timeout: self.timeout,
                what,
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_outcome_label_replaces_the_other() {
        let p = outcome_patch(true, "2026-12-01");
        assert_eq!(p["metadata"]["labels"][labels::VERIFIED], "2026-12-01");
        assert!(p["metadata"]["labels"][labels::VERIFY_FAILED].is_null());
        assert!(p["metadata"]["labels"]
            .as_object()
            .unwrap()
            .contains_key(labels::VERIFY_FAILED));
        let p = outcome_patch(false, "2026-12-01");
        assert_eq!(p["metadata"]["labels"][labels::VERIFY_FAILED], "2026-12-01");
        assert!(p["metadata"]["labels"][labels::VERIFIED].is_null());
    }

    #[test]
    fn the_first_failed_check_is_the_reason() {
        let mut f = Findings {
            expectations: vec![
                Expectation {
                    sql: "SELECT 1".into(),
                    min: 1,
                    value: Some("1".into()),
                    ok: true,
                },
                Expectation {
                    sql: "SELECT count(*) FROM orders".into(),
                    min: 10,
                    value: Some("3".into()),
                    ok: false,
                },
            ],
            files: vec![FileCheck {
                path: "PG_VERSION".into(),
                exists: false,
                bytes: None,
            }],
            ..Default::default()
        };
        verdict(&mut f);
        assert_eq!(
            f.failure.as_deref(),
            Some("expected SELECT count(*) FROM orders >= 10, got 3")
        );
        let mut files_only = Findings {
            files: f.files.clone(),
            ..Default::default()
        };
        verdict(&mut files_only);
        assert!(files_only.failure.unwrap().contains("PG_VERSION"));
        let mut fine = Findings::default();
        verdict(&mut fine);
        assert_eq!(fine.failure, None);
    }
}
