//! `backup-ns delete NAME`: delete one snapshot and the storage behind it, deliberately.
//!
//! The original deleted without asking. Here the snapshot is described first (PVC, time,
//! readiness, content and its `deletionPolicy`); on a terminal the user confirms, elsewhere
//! `--yes` is required (exit 2 without it, before any request). A pinned snapshot is refused
//! (remove the pin first). The deletion itself is the sweep's: the bound content gets
//! `deletionPolicy: Delete` unless it has it, then the snapshot is deleted under its uid and
//! `resourceVersion` (a conflict re-reads it; pinned meanwhile means not deleted).

use std::collections::HashMap;
use std::io::IsTerminal;

use kube::api::Api;
use serde::Serialize;

use crate::cli::{DeleteArgs, OutputFormat};
use crate::labels;
use crate::retention::{Deletion, SnapshotRecord, Target};
use crate::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use crate::ExitStatus;

use super::api::{describe, Requests};
use super::apply::{Applier, ApplyReport, ContentInfo};
use super::options::DeleteOptions;
use super::report_error;

/// The `-o json` document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DeleteOutput<'a> {
    namespace: &'a str,
    name: &'a str,
    content: Option<&'a str>,
    content_deletion_policy: Option<&'a str>,
    dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a ApplyReport>,
}

/// The sweep's deletion of `r`, done by hand.
fn deletion_of(r: &SnapshotRecord) -> Deletion {
    Deletion {
        target: Target {
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            uid: r.uid.clone(),
            resource_version: r.resource_version.clone(),
            pvc: r.pvc.clone(),
        },
        delete_after: r
            .labels
            .get(labels::DELETE_AFTER)
            .cloned()
            .unwrap_or_default(),
        bound_content: r.bound_content.clone(),
        reason: "deleted by hand (backup-ns delete)".to_owned(),
    }
}

/// One line saying what will go.
fn summary(r: &SnapshotRecord, content: Option<&ContentInfo>) -> String {
    let ready = &r.state;
    let time = r
        .time
        .map_or_else(|| "unknown time".to_owned(), |t| t.to_rfc3339());
    let storage = match (&r.bound_content, content) {
        (None, _) => "not bound to a content".to_owned(),
        (Some(c), None) => format!("content {c} not found"),
        (Some(c), Some(i)) if i.deletion_policy == "Delete" => {
            format!("content {c} (deletionPolicy Delete): its storage is freed")
        }
        (Some(c), Some(i)) => format!(
            "content {c} (deletionPolicy {} -> Delete): its storage is freed",
            i.deletion_policy
        ),
    };
    format!(
        "volumesnapshot {}/{} of PVC {}, taken {time}, {ready}; {storage}",
        r.namespace, r.name, r.pvc
    )
}

pub async fn main(args: &DeleteArgs, output: crate::cli::Output) -> ExitStatus {
    let format = match output.text_or_json() {
        Ok(f) => f,
        Err(e) => return report_error(&e),
    };
    let opts = match DeleteOptions::from_args(args) {
        Ok(o) => o,
        Err(e) => return report_error(&e),
    };
    let ask = !opts.yes && !opts.dry_run;
    if ask && !std::io::stdin().is_terminal() {
        tracing::error!(
            "refusing to delete volumesnapshot {} without confirmation: stdin is not a terminal; \
             pass --yes (BAK_YES=true) to delete, or --dry-run to see what would be deleted",
            opts.name
        );
        return ExitStatus::Usage;
    }
    let (client, context_ns) = match super::client(false).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitStatus::Failure;
        }
    };
    let ns = opts.namespace.clone().unwrap_or(context_ns);
    let requests = Requests::new(client, opts.qps);

    let snapshots: Api<VolumeSnapshot> = Api::namespaced(requests.client.clone(), &ns);
    let what = format!("get volumesnapshot {ns}/{}", opts.name);
    let record = match requests.call(&what, || snapshots.get_opt(&opts.name)).await {
        Ok(Some(vs)) => SnapshotRecord::from_snapshot(&vs, chrono::Utc::now()),
        Ok(None) => {
            tracing::error!("volumesnapshot {ns}/{} not found", opts.name);
            return ExitStatus::Failure;
        }
        Err(e) => {
            tracing::error!("{what}: {}", describe(&e));
            return ExitStatus::Failure;
        }
    };
    if record.is_pinned() {
        tracing::error!(
            "volumesnapshot {ns}/{} is pinned ({}); remove the pin first: kubectl -n {ns} label \
             volumesnapshot {} {}-",
            opts.name,
            labels::PIN,
            opts.name,
            labels::PIN
        );
        return ExitStatus::Failure;
    }
    let mut contents = HashMap::new();
    if let Some(name) = &record.bound_content {
        let api: Api<VolumeSnapshotContent> = Api::all(requests.client.clone());
        let what = format!("get volumesnapshotcontent {name}");
        match requests.call(&what, || api.get_opt(name)).await {
            Ok(Some(c)) => {
                contents.insert(name.clone(), ContentInfo::from_content(&c));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!("{what}: {}", describe(&e));
                return ExitStatus::Failure;
            }
        }
    }
    let content = record.bound_content.as_ref().and_then(|c| contents.get(c));
    let line = summary(&record, content);
    let mut out = DeleteOutput {
        namespace: &ns,
        name: &opts.name,
        content: record.bound_content.as_deref(),
        content_deletion_policy: content.map(|c| c.deletion_policy.as_str()),
        dry_run: opts.dry_run,
        result: None,
    };
    let print = |out: &DeleteOutput| match serde_json::to_string_pretty(out) {
        Ok(s) => println!("{s}"),
        Err(e) => tracing::error!("cannot render the result: {e}"),
    };
    if opts.dry_run {
        match format {
            OutputFormat::Json => print(&out),
            OutputFormat::Text => println!("would delete {line}"),
        }
        return ExitStatus::Success;
    }
    if ask && !super::ask(&format!("Delete {line}?")) {
        eprintln!("not deleted");
        return ExitStatus::Failure;
    }

    let deletion = deletion_of(&record);
    let records = std::slice::from_ref(&record);
    let mut applier = Applier::new(&requests, records, format == OutputFormat::Text);
    let replan = |group: &[SnapshotRecord], name: &str| {
        group
            .iter()
            .find(|r| r.name == name && !r.is_pinned())
            .map(deletion_of)
    };
    applier
        .delete(&deletion, &Some(contents.clone()), &replan)
        .await;
    let report = applier.finish();
    if format == OutputFormat::Json {
        out.result = Some(&report);
        print(&out);
    }
    if report.deleted + report.gone == 1 {
        ExitStatus::Success
    } else {
        if report.settled_by_replan > 0 {
            tracing::error!(
                "volumesnapshot {ns}/{} changed meanwhile and is now pinned; not deleted",
                opts.name
            );
        }
        ExitStatus::Failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::SnapshotRecord;

    #[test]
    fn the_summary_says_what_happens_to_the_storage() {
        let record = SnapshotRecord {
            namespace: "shop".into(),
            name: "data-x".into(),
            uid: "u".into(),
            resource_version: "1".into(),
            pvc: "data".into(),
            labels: Default::default(),
            time: None,
            pvc_uid: None,
            state: crate::state::SnapshotState::Ready { warning: None },
            bound_content: Some("snapcontent-1".into()),
        };
        let retain = ContentInfo {
            deletion_policy: "Retain".into(),
            snapshot_uid: "u".into(),
        };
        assert_eq!(
            summary(&record, Some(&retain)),
            "volumesnapshot shop/data-x of PVC data, taken unknown time, ready; content \
             snapcontent-1 (deletionPolicy Retain -> Delete): its storage is freed"
        );
        assert!(summary(&record, None).ends_with("content snapcontent-1 not found"));
        let d = deletion_of(&record);
        assert_eq!(
            (d.target.uid.as_str(), d.bound_content.as_deref()),
            ("u", Some("snapcontent-1"))
        );
    }
}
