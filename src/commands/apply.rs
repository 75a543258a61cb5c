//! Applying a retention plan: one merge patch per snapshot whose labels change, one delete per
//! deleted snapshot (after setting its bound content's `deletionPolicy` to `Delete`), each sent
//! through [`Requests`] (paced, transient failures retried).
//!
//! The plan was made from one LIST; the cluster may have moved since. Every write is
//! conditional — patches carry the listed `resourceVersion`, deletes the uid *and* the
//! `resourceVersion` — so a snapshot changed in between (pinned, relabelled by hand, recreated)
//! answers 409. Then that one snapshot is re-read and re-planned within its PVC's group, with
//! the other snapshots as listed, and the fresh decision is applied (or nothing, if the change
//! settled it). A per-item failure is logged, counted and reported; it never stops the run.

use std::collections::{HashMap, HashSet};

use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde::Serialize;

use crate::cli::OutputFormat;
use crate::metrics::RetentionCounts;
use crate::retention::{Deletion, LabelChange, SnapshotRecord, Target};
use crate::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use crate::ExitStatus;

use super::api::{code, describe, RequestCounts, Requests};

/// Re-plans after a conflict: a 409 that persists this many times fails the item.
const MAX_REPLANS: usize = 3;

/// One item that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub namespace: String,
    pub name: String,
    /// `unlabel`, `mark`, `unmark`, `delete`, `patch content`.
    pub action: String,
    pub error: String,
}

/// What applying a plan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    /// Snapshots whose labels were patched.
    pub patched: usize,
    pub deleted: usize,
    /// Contents whose `deletionPolicy` was set to `Delete` before their snapshot's deletion.
    pub contents_patched: usize,
    /// Contents set back to their old `deletionPolicy` because the re-plan kept the snapshot.
    pub contents_restored: usize,
    /// 409 answers (each followed by a re-read and a re-plan of that snapshot).
    pub conflicts: usize,
    /// Items the re-plan after a conflict left alone (pinned, relabelled by hand meanwhile).
    pub settled_by_replan: usize,
    /// Snapshots already gone (deleted or recreated under the same name meanwhile).
    pub gone: usize,
    pub failed: usize,
    pub failures: Vec<Failure>,
    #[serde(flatten)]
    pub requests: RequestCounts,
}

impl std::fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} patched, {} deleted ({} contents set to deletionPolicy=Delete, {} restored), {} \
             conflicts re-planned ({} settled by the re-plan), {} gone, {} failed; {} requests \
             ({} retries)",
            self.patched,
            self.deleted,
            self.contents_patched,
            self.contents_restored,
            self.conflicts,
            self.settled_by_replan,
            self.gone,
            self.failed,
            self.requests.requests,
            self.requests.retries
        )
    }
}

/// The `-o json` document of `retain` and `mark-and-delete`: the plan, and what applying it did
/// (absent in a dry run).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunOutput<'a, P: Serialize> {
    pub command: &'static str,
    pub scope: String,
    pub dry_run: bool,
    pub plan: &'a P,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a ApplyReport>,
}

impl<P: Serialize> RunOutput<'_, P> {
    /// Writes the document to stdout as it is serialised (a plan at 10,000 snapshots is
    /// megabytes of JSON: never held as one string).
    pub fn print(&self) {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let written = serde_json::to_writer_pretty(&mut out, self)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
        if let Err(e) = written {
            tracing::error!("cannot write the result: {e}");
        }
    }
}

impl<'a, P: Serialize + std::fmt::Display> RunOutput<'a, P> {
    /// Prints the plan alone (a dry run, or a braked plan): the JSON document, or the plan's
    /// text with a reason per item.
    pub fn print_plan(&self, format: OutputFormat) {
        match format {
            OutputFormat::Json => self.print(),
            OutputFormat::Text => println!("{}", self.plan),
        }
    }

    /// Prints what applying `planned` items did and decides the exit status: 1 when any item
    /// failed (each is logged and listed), else `status`.
    pub fn finish(
        mut self,
        format: OutputFormat,
        report: &'a ApplyReport,
        snapshots: usize,
        planned: usize,
        status: ExitStatus,
    ) -> ExitStatus {
        match format {
            OutputFormat::Json => {
                self.result = Some(report);
                self.print();
            }
            OutputFormat::Text => println!("{}: {snapshots} snapshots: {report}", self.command),
        }
        if report.failed > 0 {
            tracing::error!(
                "{}: {} of {planned} changes and deletions failed",
                self.command,
                report.failed
            );
            return ExitStatus::Failure;
        }
        status
    }
}

/// Hands a retention run's metrics to the sinks: what was applied (a label change whose patch
/// failed — `action` in the report's failures — changed nothing). A braked run or a dry run
/// passes no changes and an empty report.
pub fn emit_retention_metrics(
    command: &str,
    namespace: Option<&str>,
    action: &str,
    changes: &[LabelChange],
    report: &ApplyReport,
) {
    let failed = |t: &Target| {
        report
            .failures
            .iter()
            .any(|f| f.namespace == t.namespace && f.name == t.name && f.action == action)
    };
    let (unlabelled, marked) = RetentionCounts::label_changes(changes, failed);
    crate::metrics::emit(crate::metrics::Metrics::retention(
        command,
        namespace,
        RetentionCounts {
            unlabelled,
            marked,
            deleted: report.deleted as u64,
            failed: report.failed as u64,
        },
    ));
}

/// `deletionPolicy` and owner of a VolumeSnapshotContent, from the contents LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentInfo {
    pub deletion_policy: String,
    /// `spec.volumeSnapshotRef.uid`: the snapshot it is bound to.
    pub snapshot_uid: String,
}

impl ContentInfo {
    pub fn from_content(c: &VolumeSnapshotContent) -> ContentInfo {
        ContentInfo {
            deletion_policy: c.spec.deletion_policy.clone(),
            snapshot_uid: c.spec.volume_snapshot_ref["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// The contents the deletions are bound to, by name; `None` when they could not be listed.
pub type Contents = Option<HashMap<String, ContentInfo>>;

/// The contents the deletions are bound to, from one paged LIST of contents (`None` if it
/// failed; no request when no due snapshot is bound).
pub async fn bound_contents(requests: &Requests, deletions: &[Deletion]) -> Contents {
    let wanted: HashSet<&str> = deletions
        .iter()
        .filter_map(|d| d.bound_content.as_deref())
        .collect();
    let mut found = HashMap::new();
    if wanted.is_empty() {
        return Some(found);
    }
    let listed = super::gather::contents(requests, |c| {
        if let Some(name) = c.metadata.name.as_deref().filter(|n| wanted.contains(n)) {
            found.insert(name.to_owned(), ContentInfo::from_content(&c));
        }
    })
    .await;
    match listed {
        Ok(pages) => {
            tracing::info!(
                "{} of {} bound contents found ({pages} LIST pages)",
                found.len(),
                wanted.len()
            );
            Some(found)
        }
        Err(e) => {
            tracing::error!("{e}; bound snapshots are not deleted in this run");
            None
        }
    }
}

/// `backup-ns.sh/daily- backup-ns.sh/delete-after=2025-01-08`: the edits as `kubectl label`
/// arguments.
pub fn edits_as_kubectl(change: &LabelChange) -> String {
    let args: Vec<String> = change
        .edits
        .iter()
        .map(|e| match &e.to {
            Some(v) => format!("{}={v}", e.label),
            None => format!("{}-", e.label),
        })
        .collect();
    args.join(" ")
}

/// The outcome of one conditional write.
enum Sent {
    Done,
    Gone,
    Conflict,
    Failed(String),
}

fn outcome<T>(result: Result<T, kube::Error>) -> Sent {
    match result {
        Ok(_) => Sent::Done,
        Err(e) => match code(&e) {
            Some(404) => Sent::Gone,
            Some(409) => Sent::Conflict,
            _ => Sent::Failed(describe(&e)),
        },
    }
}

/// A fresh read after a conflict.
enum Reread {
    Fresh(Box<SnapshotRecord>),
    Gone,
    Failed(String),
}

/// Applies label changes and deletions of one plan, remembering what happened.
pub struct Applier<'a> {
    requests: &'a Requests,
    /// The records the plan was made from: a conflicting snapshot is re-planned among them.
    records: &'a [SnapshotRecord],
    /// Print one line per applied item on stdout (text output).
    echo: bool,
    pub report: ApplyReport,
}

impl<'a> Applier<'a> {
    pub fn new(requests: &'a Requests, records: &'a [SnapshotRecord], echo: bool) -> Self {
        Applier {
            requests,
            records,
            echo,
            report: ApplyReport::default(),
        }
    }

    /// The report, with the request counts of the whole run so far.
    pub fn finish(mut self) -> ApplyReport {
        self.report.requests = self.requests.counts();
        self.report
    }

    fn api(&self, namespace: &str) -> Api<VolumeSnapshot> {
        Api::namespaced(self.requests.client.clone(), namespace)
    }

    fn fail(&mut self, target: &Target, action: &str, error: String) {
        tracing::error!("{action} {target} failed: {error}");
        self.report.failed += 1;
        self.report.failures.push(Failure {
            namespace: target.namespace.clone(),
            name: target.name.clone(),
            action: action.to_owned(),
            error,
        });
    }

    fn gone(&mut self, target: &Target) {
        tracing::warn!("volumesnapshot {target} is gone (deleted or recreated meanwhile); skipped");
        self.report.gone += 1;
    }

    fn settled(&mut self, target: &Target, action: &str) {
        tracing::info!(
            "{target} changed since it was listed; re-planned: no {action} needed any more"
        );
        self.report.settled_by_replan += 1;
    }

    /// Re-reads one snapshot after a conflict. A namesake with another uid counts as gone.
    async fn reread(&self, target: &Target) -> Reread {
        let api = self.api(&target.namespace);
        let what = format!("get volumesnapshot {target}");
        match self
            .requests
            .call(&what, || api.get_opt(&target.name))
            .await
        {
            Ok(Some(vs)) => {
                let fresh = SnapshotRecord::from_snapshot(&vs, chrono::Utc::now());
                if fresh.uid == target.uid {
                    Reread::Fresh(Box::new(fresh))
                } else {
                    Reread::Gone
                }
            }
            Ok(None) => Reread::Gone,
            Err(e) => Reread::Failed(describe(&e)),
        }
    }

    /// The fresh record's PVC group as listed, with the fresh record in place of the old one.
    fn group_with(&self, fresh: SnapshotRecord) -> Vec<SnapshotRecord> {
        let mut group: Vec<SnapshotRecord> = self
            .records
            .iter()
            .filter(|r| {
                r.namespace == fresh.namespace && r.pvc == fresh.pvc && r.name != fresh.name
            })
            .cloned()
            .collect();
        group.push(fresh);
        group
    }

    /// Re-reads and re-plans after a conflict: `Ok(Some(x))` the fresh decision, `Ok(None)`
    /// nothing left to do (already counted), `Err(())` failed or gone (already counted).
    async fn replan<T>(
        &mut self,
        target: &Target,
        action: &str,
        replan: &dyn Fn(&[SnapshotRecord], &str) -> Option<T>,
    ) -> Result<Option<T>, ()> {
        self.report.conflicts += 1;
        match self.reread(target).await {
            Reread::Fresh(fresh) => {
                let group = self.group_with(*fresh);
                let next = replan(&group, &target.name);
                if next.is_none() {
                    self.settled(target, action);
                }
                Ok(next)
            }
            Reread::Gone => {
                self.gone(target);
                Err(())
            }
            Reread::Failed(e) => {
                self.fail(
                    target,
                    action,
                    format!("re-reading it after a conflict: {e}"),
                );
                Err(())
            }
        }
    }

    /// Applies one label change (`action`: `unlabel`, `mark`, `unmark`); `replan` gives the
    /// change for a snapshot name in a group of records.
    pub async fn patch(
        &mut self,
        change: &LabelChange,
        action: &str,
        replan: &dyn Fn(&[SnapshotRecord], &str) -> Option<LabelChange>,
    ) {
        let api = self.api(&change.target.namespace);
        let mut change = change.clone();
        for _ in 0..=MAX_REPLANS {
            let patch = change.merge_patch();
            let merge = Patch::Merge(&patch);
            let what = format!("{action} volumesnapshot {}", change.target);
            let params = PatchParams::default();
            let sent = outcome(
                self.requests
                    .call(&what, || api.patch(&change.target.name, &params, &merge))
                    .await,
            );
            match sent {
                Sent::Done => {
                    self.report.patched += 1;
                    if self.echo {
                        println!("{action} {}: {}", change.target, edits_as_kubectl(&change));
                    }
                    return;
                }
                Sent::Gone => return self.gone(&change.target),
                Sent::Failed(e) => return self.fail(&change.target, action, e),
                Sent::Conflict => match self.replan(&change.target, action, replan).await {
                    Ok(Some(next)) => change = next,
                    Ok(None) | Err(()) => return,
                },
            }
        }
        let e = format!("still conflicting after {MAX_REPLANS} re-plans");
        self.fail(&change.target, action, e);
    }

    /// Sets a content's `deletionPolicy`.
    async fn set_policy(&self, content: &str, policy: &str) -> Result<(), kube::Error> {
        let api: Api<VolumeSnapshotContent> = Api::all(self.requests.client.clone());
        let patch = serde_json::json!({ "spec": { "deletionPolicy": policy } });
        let merge = Patch::Merge(&patch);
        let what = format!("set deletionPolicy={policy} on volumesnapshotcontent {content}");
        let params = PatchParams::default();
        self.requests
            .call(&what, || api.patch(content, &params, &merge))
            .await
            .map(drop)
    }

    /// Makes the bound content free its storage with the snapshot. `Ok(Some(old))`: patched from
    /// policy `old`; `Ok(None)`: nothing to patch (unbound, already `Delete`, missing or bound
    /// elsewhere — the snapshot is deleted alone); `Err`: the snapshot must not be deleted.
    async fn prepare_content(
        &mut self,
        d: &Deletion,
        contents: &Contents,
    ) -> Result<Option<(String, String)>, String> {
        let Some(name) = &d.bound_content else {
            return Ok(None);
        };
        let Some(contents) = contents else {
            return Err(format!(
                "the volumesnapshotcontents could not be listed, so the deletionPolicy of {name} \
                 is unknown; not deleted (its storage would be left behind)"
            ));
        };
        let info = match contents.get(name) {
            Some(info) if info.snapshot_uid == d.target.uid => info,
            Some(_) => {
                tracing::warn!(
                    "volumesnapshotcontent {name} is bound to another snapshot; deleting {} \
                     without touching it",
                    d.target
                );
                return Ok(None);
            }
            None => {
                tracing::warn!(
                    "volumesnapshotcontent {name} of {} does not exist",
                    d.target
                );
                return Ok(None);
            }
        };
        if info.deletion_policy == "Delete" {
            return Ok(None);
        }
        match self.set_policy(name, "Delete").await {
            Ok(()) => {
                self.report.contents_patched += 1;
                Ok(Some((name.clone(), info.deletion_policy.clone())))
            }
            Err(e) if code(&e) == Some(404) => Ok(None),
            Err(e) => Err(format!(
                "setting deletionPolicy=Delete on volumesnapshotcontent {name}: {}; not deleted \
                 (its storage would be left behind)",
                describe(&e)
            )),
        }
    }

    /// Deletes one snapshot: its bound content first gets `deletionPolicy: Delete` (unless it
    /// has it), then the snapshot is deleted under its uid and `resourceVersion`. `replan` gives
    /// the deletion of a snapshot name in a group of records, if it is still due.
    pub async fn delete(
        &mut self,
        deletion: &Deletion,
        contents: &Contents,
        replan: &dyn Fn(&[SnapshotRecord], &str) -> Option<Deletion>,
    ) {
        let content = match self.prepare_content(deletion, contents).await {
            Ok(c) => c,
            Err(e) => return self.fail(&deletion.target, "delete", e),
        };
        let api = self.api(&deletion.target.namespace);
        let mut target = deletion.target.clone();
        for _ in 0..=MAX_REPLANS {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: Some(target.uid.clone()),
                    resource_version: Some(target.resource_version.clone()),
                }),
                ..DeleteParams::default()
            };
            let what = format!("delete volumesnapshot {target}");
            let sent = outcome(
                self.requests
                    .call(&what, || api.delete(&target.name, &params))
                    .await,
            );
            match sent {
                Sent::Done => {
                    self.report.deleted += 1;
                    if self.echo {
                        let how = match (&deletion.bound_content, &content) {
                            (None, _) => "not bound to a content".to_owned(),
                            (Some(c), Some((_, old))) => {
                                format!("content {c}: deletionPolicy {old} -> Delete")
                            }
                            (Some(c), None) => format!("content {c}: deletionPolicy unchanged"),
                        };
                        println!("delete {target}: deleted ({how})");
                    }
                    return;
                }
                Sent::Gone => return self.gone(&target),
                Sent::Failed(e) => return self.kept(&target, content, e).await,
                Sent::Conflict => match self.replan(&target, "delete", replan).await {
                    Ok(Some(next)) => target = next.target,
                    Ok(None) => return self.restore(&target, content).await,
                    // Failed or gone: counted. A failed re-read leaves the snapshot, so its
                    // content must not stay switched.
                    Err(()) => return self.restore(&target, content).await,
                },
            }
        }
        let e = format!("still conflicting after {MAX_REPLANS} re-plans");
        self.kept(&target, content, e).await;
    }

    /// The delete failed and the snapshot survives: its content gets its old `deletionPolicy`
    /// back (a content left on `Delete` would take the storage along whenever the snapshot is
    /// deleted later, by anyone), and the failure says so.
    async fn kept(&mut self, target: &Target, content: Option<(String, String)>, error: String) {
        let error = match &content {
            Some((name, old)) => format!(
                "{error}; the snapshot is kept, deletionPolicy={old} is restored on \
                 volumesnapshotcontent {name}"
            ),
            None => error,
        };
        self.fail(target, "delete", error);
        self.restore(target, content).await;
    }

    /// The re-plan kept a snapshot whose content was already switched to `Delete`: switch it
    /// back, so the snapshot is kept exactly as it was.
    async fn restore(&mut self, target: &Target, content: Option<(String, String)>) {
        let Some((name, old)) = content else {
            return;
        };
        match self.set_policy(&name, &old).await {
            Ok(()) => self.report.contents_restored += 1,
            Err(e) => self.fail(
                target,
                "patch content",
                format!(
                    "the snapshot is kept, but restoring deletionPolicy={old} on \
                     volumesnapshotcontent {name} failed: {}",
                    describe(&e)
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::LabelEdit;

    #[test]
    fn edits_read_like_kubectl_label_arguments() {
        let change = LabelChange {
            target: Target {
                namespace: "ns".into(),
                name: "x".into(),
                uid: "u".into(),
                resource_version: "7".into(),
                pvc: "data".into(),
            },
            edits: vec![
                LabelEdit {
                    label: "backup-ns.sh/daily".into(),
                    from: Some("2025-01-01".into()),
                    to: None,
                    reason: "r".into(),
                },
                LabelEdit {
                    label: "backup-ns.sh/delete-after".into(),
                    from: None,
                    to: Some("2025-01-08".into()),
                    reason: "r".into(),
                },
            ],
        };
        assert_eq!(
            edits_as_kubectl(&change),
            "backup-ns.sh/daily- backup-ns.sh/delete-after=2025-01-08"
        );
    }

    #[test]
    fn content_info_reads_policy_and_owner() {
        let c: VolumeSnapshotContent = serde_json::from_value(serde_json::json!({
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshotContent",
            "metadata": { "name": "snapcontent-1" },
            "spec": {
                "deletionPolicy": "Retain",
                "driver": "d",
                "source": {},
                "volumeSnapshotRef": { "name": "x", "namespace": "ns", "uid": "u-1" },
            },
        }))
        .unwrap();
        assert_eq!(
            ContentInfo::from_content(&c),
            ContentInfo {
                deletion_policy: "Retain".into(),
                snapshot_uid: "u-1".into()
            }
        );
    }
}
