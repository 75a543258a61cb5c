//! `backup-ns prune`: `retain`, mark and sweep as one plan in one pass — what the chart's
//! pruner runs.
//!
//! The chart used to run `retain` and then `mark-and-delete`: two LISTs, a patch to strip a
//! snapshot's last label and another to mark it, a dry run of the pair that could not show the
//! marks and deletions (the second planned against labels the first had not changed), and
//! `retain` as an init container whose one failing patch stopped every deletion in the cluster.
//! Here: gather (one paged LIST of `retain`-labelled snapshots; one of contents when bound
//! snapshots are due) → plan ([`plan_prune`], pure: who loses or claims which label, who is
//! marked, who is deleted, and why) → apply (one conditional patch per changed snapshot, then
//! the deletions), each item's failure isolated and counted. One brake covers the whole plan:
//! braked, the plan is printed, nothing is applied, and the run fails. `--dry-run` prints the
//! whole outcome.

use chrono::Utc;

use crate::cli::{OutputFormat, PruneArgs};
use crate::retention::{plan_prune, SnapshotRecord};
use crate::ExitStatus;

use super::apply::{bound_contents, emit_retention_metrics, Applier, ApplyReport, RunOutput};
use super::gather;
use super::options::RetainOptions;
use super::report_error;

pub async fn main(args: &PruneArgs, output: crate::cli::Output) -> ExitStatus {
    let format = match output.text_or_json() {
        Ok(f) => f,
        Err(e) => return report_error(&e),
    };
    let opts = match RetainOptions::for_prune(args, std::env::var("TZ").ok().as_deref()) {
        Ok(o) => o,
        Err(e) => return report_error(&e),
    };
    let (requests, scope, records) = match gather::start(opts.qps, opts.namespace.clone()).await {
        Ok(x) => x,
        Err(status) => return status,
    };
    let now = Utc::now().with_timezone(&opts.tz);
    let policy = &opts.policy;

    let plan = plan_prune(&records, now, policy);
    plan.warnings.iter().for_each(|w| tracing::warn!("{w}"));
    if plan.braked {
        tracing::error!(
            "BRAKE: {} deletions and {} snapshots losing their last period label planned, more \
             than the maximum of {} (BAK_MAX_DELETIONS, --max-deletions); nothing is changed",
            plan.deletions.len(),
            plan.retain.stripped,
            policy.max_deletions
        );
    }
    let out = RunOutput {
        command: "prune",
        scope: scope.to_string(),
        dry_run: opts.dry_run,
        plan: &plan,
        result: None,
    };
    if opts.dry_run || plan.braked {
        out.print_plan(format);
        if plan.braked {
            // Braked: nothing changed.
            emit_retention_metrics(
                "prune",
                opts.namespace.as_deref(),
                "relabel",
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
    let replan_change = |group: &[SnapshotRecord], name: &str| {
        plan_prune(group, now, policy)
            .changes
            .into_iter()
            .find(|c| c.target.name == name)
    };
    for change in &plan.changes {
        applier.patch(change, "relabel", &replan_change).await;
    }
    if !plan.deletions.is_empty() {
        let contents = bound_contents(&requests, &plan.deletions).await;
        let replan_deletion = |group: &[SnapshotRecord], name: &str| {
            plan_prune(group, now, policy)
                .deletions
                .into_iter()
                .find(|d| d.target.name == name)
        };
        for deletion in &plan.deletions {
            applier.delete(deletion, &contents, &replan_deletion).await;
        }
    }

    let report = applier.finish();
    emit_retention_metrics(
        "prune",
        opts.namespace.as_deref(),
        "relabel",
        &plan.changes,
        &report,
    );
    let planned = plan.changes.len() + plan.deletions.len();
    out.finish(format, &report, records.len(), planned, ExitStatus::Success)
}
