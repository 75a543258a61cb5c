//! `backup-ns mark-and-delete`: mark snapshots that no period label keeps any more with
//! `delete-after=<today>`, and delete those whose `delete-after` day has passed.
//!
//! Gather (one paged LIST of `retain`-labelled snapshots; one paged LIST of contents when
//! bound snapshots are due) → plan ([`plan_mark_and_delete`], pure) → apply: marks and unmarks
//! as conditional merge patches, then each deletion (content to `deletionPolicy: Delete`
//! unless it already is, then the snapshot under its uid). The original ran this with fixed
//! sleeps, aborted on the first error and let one unbound snapshot block every deletion; here
//! per-item errors are counted and the rest goes on. A plan with more deletions than
//! `--max-deletions` is *braked*: it is printed, its marks are applied (they only date a later
//! deletion), nothing is deleted, and the run fails.

use chrono::Utc;

use crate::cli::{MarkAndDeleteArgs, OutputFormat};
use crate::retention::{plan_mark_and_delete, Deletion, LabelChange, SnapshotRecord};
use crate::ExitStatus;

use super::apply::{bound_contents, emit_retention_metrics, Applier, RunOutput};
use super::gather;
use super::options::SweepOptions;
use super::report_error;

pub async fn main(args: &MarkAndDeleteArgs, output: crate::cli::Output) -> ExitStatus {
    let format = match output.text_or_json() {
        Ok(f) => f,
        Err(e) => return report_error(&e),
    };
    let opts = match SweepOptions::from_args(args, std::env::var("TZ").ok().as_deref()) {
        Ok(o) => o,
        Err(e) => return report_error(&e),
    };
    let (requests, scope, records) = match gather::start(opts.qps, opts.namespace.clone()).await {
        Ok(x) => x,
        Err(status) => return status,
    };
    let now = Utc::now().with_timezone(&opts.tz);

    let plan = plan_mark_and_delete(&records, now, &opts.policy);
    plan.warnings.iter().for_each(|w| tracing::warn!("{w}"));
    if plan.braked {
        tracing::error!(
            "BRAKE: {} deletions planned, more than the maximum of {} (BAK_MAX_DELETIONS, \
             --max-deletions); nothing is deleted",
            plan.deletions.len(),
            opts.policy.max_deletions
        );
    }
    let out = RunOutput {
        command: "mark-and-delete",
        scope: scope.to_string(),
        dry_run: opts.dry_run,
        plan: &plan,
        result: None,
    };
    let braked_status = if plan.braked {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    };
    if opts.dry_run {
        out.print_plan(format);
        return braked_status;
    }

    let mut applier = Applier::new(&requests, &records, format == OutputFormat::Text);
    let policy = &opts.policy;
    let replan_label = |group: &[SnapshotRecord], name: &str| -> Option<LabelChange> {
        let p = plan_mark_and_delete(group, now, policy);
        p.marks.into_iter().find(|c| c.target.name == name)
    };
    for mark in &plan.marks {
        applier.patch(mark, "mark", &replan_label).await;
    }
    if plan.braked {
        if format == OutputFormat::Text {
            println!("{plan}");
        }
    } else if !plan.deletions.is_empty() {
        let contents = bound_contents(&requests, &plan.deletions).await;
        // The group's own plan may brake; the run's did not, so its deletions stand.
        let replan_deletion = |group: &[SnapshotRecord], name: &str| -> Option<Deletion> {
            plan_mark_and_delete(group, now, policy)
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
        "mark-and-delete",
        opts.namespace.as_deref(),
        "mark",
        &plan.marks,
        &report,
    );
    let planned = plan.marks.len() + plan.deletions.len();
    out.finish(format, &report, records.len(), planned, braked_status)
}
