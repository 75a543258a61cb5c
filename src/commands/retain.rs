//! `backup-ns retain`: keep the daily/weekly/monthly labels on the newest N ready snapshots of
//! each PVC and remove them from the rest.
//!
//! Gather (one paged LIST of `retain`-labelled snapshots) → plan ([`plan_retain`], pure) →
//! apply (one conditional merge patch per changed snapshot, see [`super::apply`]). A dry run
//! prints the plan and sends nothing but the LIST. A plan in which more snapshots would lose
//! their last period label than the brake allows (`RETAIN_LAST_DAILY=0` by mistake) is printed,
//! nothing is applied, and the run fails.

use chrono::Utc;

use crate::cli::{OutputFormat, RetainArgs};
use crate::retention::{plan_retain, SnapshotRecord};
use crate::ExitStatus;

use super::apply::{emit_retention_metrics, Applier, ApplyReport, RunOutput};
use super::gather;
use super::options::RetainOptions;
use super::report_error;

pub async fn main(args: &RetainArgs, output: crate::cli::Output) -> ExitStatus {
    let format = match output.text_or_json() {
        Ok(f) => f,
        Err(e) => return report_error(&e),
    };
    let opts = match RetainOptions::from_args(args, std::env::var("TZ").ok().as_deref()) {
        Ok(o) => o,
        Err(e) => return report_error(&e),
    };
    let (requests, scope, records) = match gather::start(opts.qps, opts.namespace.clone()).await {
        Ok(x) => x,
        Err(status) => return status,
    };
    let now = Utc::now().with_timezone(&opts.tz);

    let plan = plan_retain(&records, now, &opts.policy);
    plan.warnings.iter().for_each(|w| tracing::warn!("{w}"));
    let out = RunOutput {
        command: "retain",
        scope: scope.to_string(),
        dry_run: opts.dry_run,
        plan: &plan,
        result: None,
    };
    if plan.braked {
        tracing::error!(
            "BRAKE: {} snapshots would lose their last period label, more than the maximum of {} \
             (BAK_MAX_DELETIONS, --max-deletions); nothing is changed",
            plan.counts.stripped,
            opts.policy.max_deletions
        );
    }
    if opts.dry_run || plan.braked {
        out.print_plan(format);
        if plan.braked {
            // Braked: nothing changed.
            emit_retention_metrics(
                "retain",
                opts.namespace.as_deref(),
                "unlabel",
                &[],
                &ApplyReport::default(),
            );
        }
        return if plan.braked {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        };
    }

    let mut applier = Applier::new(&requests, &records, format == OutputFormat::Text);
    let replan = |group: &[SnapshotRecord], name: &str| {
        plan_retain(group, now, &opts.policy)
            .changes
            .into_iter()
            .find(|c| c.target.name == name)
    };
    for change in &plan.changes {
        applier.patch(change, "unlabel", &replan).await;
    }
    let report = applier.finish();
    emit_retention_metrics(
        "retain",
        opts.namespace.as_deref(),
        "unlabel",
        &plan.changes,
        &report,
    );
    let planned = plan.changes.len();
    out.finish(format, &report, records.len(), planned, ExitStatus::Success)
}
