//! `backup-ns sync-labels` (also `controller syncMetadataToVsc`): make the `backup-ns.sh/*`
//! labels and the `backup-ns.sh/env-config` annotation of every bound VolumeSnapshotContent
//! equal to its snapshot's, so a content left behind (deletionPolicy `Retain`, namespace
//! deleted) still says what it is a backup of.
//!
//! The original only added labels and failed the whole job on one unbound snapshot. Here:
//! gather (one paged LIST of backup-ns snapshots, one of contents — no GET per object) → plan
//! ([`diff`], pure: added, changed *and removed* keys; other labels and annotations untouched) →
//! apply (one merge patch per content that differs, conditional on its `resourceVersion`; a
//! conflict re-reads that content and diffs again). Unbound snapshots are skipped with a
//! warning; per-item errors are counted and the run goes on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;

use crate::cli::{OutputFormat, SyncLabelsArgs};
use crate::labels::{ENV_CONFIG, PREFIX, PVC};
use crate::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use crate::ExitStatus;

use super::api::{code, describe, RequestCounts, Requests};
use super::apply::Failure;
use super::gather::{self, Scope};
use super::options::SyncOptions;
use super::report_error;

/// Re-diffs after a conflict before the content counts as failed.
const MAX_REDIFFS: usize = 3;

/// What a content's backup-ns metadata should be: its snapshot's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub namespace: String,
    pub name: String,
    /// The snapshot's uid: the content must point back to it.
    pub uid: String,
    /// `backup-ns.sh/*` labels only.
    pub labels: BTreeMap<String, String>,
    pub env_config: Option<String>,
}

impl Desired {
    /// The bound content's name and what it should carry; `None` for an unbound snapshot.
    pub fn from_snapshot(vs: &VolumeSnapshot) -> Option<(String, Desired)> {
        let content = vs
            .status
            .as_ref()?
            .bound_volume_snapshot_content_name
            .clone()?;
        let desired = Desired {
            namespace: vs.metadata.namespace.clone().unwrap_or_default(),
            name: vs.metadata.name.clone().unwrap_or_default(),
            uid: vs.metadata.uid.clone().unwrap_or_default(),
            labels: ours(vs.metadata.labels.as_ref()),
            env_config: env_config(vs.metadata.annotations.as_ref()),
        };
        Some((content, desired))
    }
}

fn ours(labels: Option<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
    labels
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn env_config(annotations: Option<&BTreeMap<String, String>>) -> Option<String> {
    annotations.and_then(|a| a.get(ENV_CONFIG).cloned())
}

/// Whether an edit is to a label or to the annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Field {
    Label,
    Annotation,
}

/// One key added (`from: None`), changed or removed (`to: None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Edit {
    pub field: Field,
    pub key: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The edits of one content: one merge patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentChange {
    pub content: String,
    /// `namespace/name` of its snapshot.
    pub snapshot: String,
    pub resource_version: String,
    pub edits: Vec<Edit>,
}

impl ContentChange {
    /// The merge patch: `null` removes; `metadata.resourceVersion` makes it conditional.
    pub fn merge_patch(&self) -> serde_json::Value {
        let mut labels = serde_json::Map::new();
        let mut annotations = serde_json::Map::new();
        for e in &self.edits {
            let value = e.to.clone().map_or(serde_json::Value::Null, Into::into);
            match e.field {
                Field::Label => labels.insert(e.key.clone(), value),
                Field::Annotation => annotations.insert(e.key.clone(), value),
            };
        }
        let mut metadata = serde_json::Map::new();
        metadata.insert(
            "resourceVersion".into(),
            self.resource_version.clone().into(),
        );
        if !labels.is_empty() {
            metadata.insert("labels".into(), labels.into());
        }
        if !annotations.is_empty() {
            metadata.insert("annotations".into(), annotations.into());
        }
        serde_json::json!({ "metadata": metadata })
    }
}

impl fmt::Display for ContentChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "volumesnapshotcontent {} (of {}):",
            self.content, self.snapshot
        )?;
        for e in &self.edits {
            let what = match e.field {
                Field::Label => "label",
                Field::Annotation => "annotation",
            };
            match (&e.from, &e.to) {
                (None, Some(to)) => write!(f, " add {what} {}={to:?}", e.key)?,
                (Some(from), Some(to)) => write!(f, " change {what} {} {from:?} -> {to:?}", e.key)?,
                (_, None) => write!(f, " remove {what} {}", e.key)?,
            }
        }
        Ok(())
    }
}

/// The change that makes `content`'s backup-ns metadata equal to `desired`; `None` if equal.
pub fn diff(desired: &Desired, content: &VolumeSnapshotContent) -> Option<ContentChange> {
    let current = ours(content.metadata.labels.as_ref());
    let keys: BTreeSet<&String> = current.keys().chain(desired.labels.keys()).collect();
    let mut edits: Vec<Edit> = keys
        .into_iter()
        .filter(|k| current.get(*k) != desired.labels.get(*k))
        .map(|k| Edit {
            field: Field::Label,
            key: k.clone(),
            from: current.get(k).cloned(),
            to: desired.labels.get(k).cloned(),
        })
        .collect();
    let annotation = env_config(content.metadata.annotations.as_ref());
    if annotation != desired.env_config {
        edits.push(Edit {
            field: Field::Annotation,
            key: ENV_CONFIG.to_owned(),
            from: annotation,
            to: desired.env_config.clone(),
        });
    }
    (!edits.is_empty()).then(|| ContentChange {
        content: content.metadata.name.clone().unwrap_or_default(),
        snapshot: format!("{}/{}", desired.namespace, desired.name),
        resource_version: content
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default(),
        edits,
    })
}

/// Whether `content` is bound to the snapshot `desired` describes.
fn points_back(desired: &Desired, content: &VolumeSnapshotContent) -> bool {
    content.spec.volume_snapshot_ref["uid"].as_str() == Some(desired.uid.as_str())
}

/// Counts of a [`SyncPlan`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncCounts {
    pub snapshots: usize,
    /// Snapshots not bound to a content (skipped).
    pub unbound: usize,
    /// Bound to a content that does not exist, or that is bound to another snapshot (skipped).
    pub mismatched: usize,
    pub in_sync: usize,
    pub to_patch: usize,
}

/// What `sync-labels` would change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncPlan {
    pub changes: Vec<ContentChange>,
    pub warnings: Vec<String>,
    pub counts: SyncCounts,
}

/// What applying it did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub patched: usize,
    pub conflicts: usize,
    /// Contents gone or re-bound meanwhile (skipped).
    pub gone: usize,
    pub failed: usize,
    pub failures: Vec<Failure>,
    #[serde(flatten)]
    pub requests: RequestCounts,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncOutput<'a> {
    command: &'static str,
    scope: String,
    dry_run: bool,
    plan: &'a SyncPlan,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a SyncReport>,
}

/// Gathers snapshots and contents and plans the changes: two paged LISTs.
async fn plan(
    requests: &Requests,
    scope: &Scope,
) -> crate::Result<(SyncPlan, HashMap<String, Desired>)> {
    let mut plan = SyncPlan::default();
    let mut wanted: HashMap<String, Desired> = HashMap::new();
    gather::snapshots(requests, scope, PVC, |vs| {
        plan.counts.snapshots += 1;
        match Desired::from_snapshot(&vs) {
            Some((content, desired)) => {
                wanted.insert(content, desired);
            }
            None => {
                plan.counts.unbound += 1;
                plan.warnings.push(format!(
                    "{}/{}: not bound to a volumesnapshotcontent (yet); skipped",
                    vs.metadata.namespace.as_deref().unwrap_or_default(),
                    vs.metadata.name.as_deref().unwrap_or_default()
                ));
            }
        }
    })
    .await?;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    if !wanted.is_empty() {
        gather::contents(requests, |c| {
            let name = c.metadata.name.clone().unwrap_or_default();
            let Some(desired) = wanted.get(&name) else {
                return;
            };
            seen.insert(name.clone());
            if !points_back(desired, &c) {
                plan.counts.mismatched += 1;
                plan.warnings.push(format!(
                    "volumesnapshotcontent {name} is not bound to {}/{} (it points to another \
                     snapshot); skipped",
                    desired.namespace, desired.name
                ));
                return;
            }
            match diff(desired, &c) {
                Some(change) => plan.changes.push(change),
                None => plan.counts.in_sync += 1,
            }
        })
        .await?;
    }
    let mut missing: Vec<(&String, &Desired)> =
        wanted.iter().filter(|(c, _)| !seen.contains(*c)).collect();
    missing.sort_by_key(|(c, _)| c.as_str());
    for (content, d) in missing {
        plan.counts.mismatched += 1;
        plan.warnings.push(format!(
            "{}/{}: its volumesnapshotcontent {content} does not exist; skipped",
            d.namespace, d.name
        ));
    }
    plan.changes.sort_by(|a, b| a.snapshot.cmp(&b.snapshot));
    plan.counts.to_patch = plan.changes.len();
    Ok((plan, wanted))
}

/// Applies one content change; on a conflict re-reads the content and diffs again.
async fn apply_one(
    requests: &Requests,
    change: &ContentChange,
    desired: &Desired,
    report: &mut SyncReport,
    echo: bool,
) {
    let api: Api<VolumeSnapshotContent> = Api::all(requests.client.clone());
    let (namespace, name) = (desired.namespace.clone(), desired.name.clone());
    let fail = |report: &mut SyncReport, error: String| {
        tracing::error!(
            "sync volumesnapshotcontent {} failed: {error}",
            change.content
        );
        report.failed += 1;
        report.failures.push(Failure {
            namespace: namespace.clone(),
            name: name.clone(),
            action: "sync content".to_owned(),
            error,
        });
    };
    let mut change = change.clone();
    for _ in 0..=MAX_REDIFFS {
        let patch = change.merge_patch();
        let merge = Patch::Merge(&patch);
        let what = format!("patch volumesnapshotcontent {}", change.content);
        let params = PatchParams::default();
        let result = requests
            .call(&what, || api.patch(&change.content, &params, &merge))
            .await;
        let err = match result {
            Ok(_) => {
                report.patched += 1;
                if echo {
                    println!("synced {change}");
                }
                return;
            }
            Err(e) => e,
        };
        match code(&err) {
            Some(404) => {
                tracing::warn!("volumesnapshotcontent {} is gone; skipped", change.content);
                report.gone += 1;
                return;
            }
            Some(409) => report.conflicts += 1,
            _ => return fail(report, describe(&err)),
        }
        let what = format!("get volumesnapshotcontent {}", change.content);
        let fresh = match requests.call(&what, || api.get_opt(&change.content)).await {
            Ok(Some(c)) if points_back(desired, &c) => c,
            Ok(_) => {
                tracing::warn!(
                    "volumesnapshotcontent {} is gone or re-bound; skipped",
                    change.content
                );
                report.gone += 1;
                return;
            }
            Err(e) => {
                return fail(
                    report,
                    format!("re-reading it after a conflict: {}", describe(&e)),
                )
            }
        };
        match diff(desired, &fresh) {
            Some(next) => change = next,
            None => return,
        }
    }
    fail(
        report,
        format!("still conflicting after {MAX_REDIFFS} re-reads"),
    );
}

pub async fn main(args: &SyncLabelsArgs, output: crate::cli::Output) -> ExitStatus {
    let format = match output.text_or_json() {
        Ok(f) => f,
        Err(e) => return report_error(&e),
    };
    let opts = match SyncOptions::from_args(args) {
        Ok(o) => o,
        Err(e) => return report_error(&e),
    };
    let (client, _) = match super::client(false).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitStatus::Failure;
        }
    };
    let requests = Requests::new(client, opts.qps);
    let scope = Scope::from_option(opts.namespace.clone());
    let (plan, wanted) = match plan(&requests, &scope).await {
        Ok(p) => p,
        Err(e) => return report_error(&e),
    };
    plan.warnings.iter().for_each(|w| tracing::warn!("{w}"));
    let c = &plan.counts;
    let summary = format!(
        "{} snapshots: {} contents to patch, {} in sync, {} unbound, {} mismatched",
        c.snapshots, c.to_patch, c.in_sync, c.unbound, c.mismatched
    );
    let mut out = SyncOutput {
        command: "sync-labels",
        scope: scope.to_string(),
        dry_run: opts.dry_run,
        plan: &plan,
        result: None,
    };
    let print = |out: &SyncOutput| match serde_json::to_string_pretty(out) {
        Ok(s) => println!("{s}"),
        Err(e) => tracing::error!("cannot render the result: {e}"),
    };
    if opts.dry_run {
        match format {
            OutputFormat::Json => print(&out),
            OutputFormat::Text => {
                plan.changes
                    .iter()
                    .for_each(|ch| println!("would sync {ch}"));
                println!("sync-labels: {summary}");
            }
        }
        return ExitStatus::Success;
    }
    let mut report = SyncReport::default();
    let echo = format == OutputFormat::Text;
    for change in &plan.changes {
        let desired = &wanted[&change.content];
        apply_one(&requests, change, desired, &mut report, echo).await;
    }
    report.requests = requests.counts();
    match format {
        OutputFormat::Json => {
            out.result = Some(&report);
            print(&out);
        }
        OutputFormat::Text => println!(
            "sync-labels: {summary}; {} patched, {} conflicts, {} gone, {} failed; {} requests ({} retries)",
            report.patched,
            report.conflicts,
            report.gone,
            report.failed,
            report.requests.requests,
            report.requests.retries
        ),
    }
    if report.failed > 0 {
        tracing::error!(
            "sync-labels: {} of {} contents failed",
            report.failed,
            plan.changes.len()
        );
        return ExitStatus::Failure;
    }
    ExitStatus::Success
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snapshot(labels: serde_json::Value, annotations: serde_json::Value) -> VolumeSnapshot {
        serde_json::from_value(json!({
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "metadata": { "name": "data-x", "namespace": "shop", "uid": "u-1",
                "labels": labels, "annotations": annotations },
            "spec": { "source": { "persistentVolumeClaimName": "data" } },
            "status": { "boundVolumeSnapshotContentName": "snapcontent-1", "readyToUse": true },
        }))
        .unwrap()
    }

    fn content(labels: serde_json::Value, annotations: serde_json::Value) -> VolumeSnapshotContent {
        serde_json::from_value(json!({
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshotContent",
            "metadata": { "name": "snapcontent-1", "resourceVersion": "42",
                "labels": labels, "annotations": annotations },
            "spec": { "deletionPolicy": "Retain", "driver": "d", "source": {},
                "volumeSnapshotRef": { "name": "data-x", "namespace": "shop", "uid": "u-1" } },
        }))
        .unwrap()
    }

    #[test]
    fn diff_adds_changes_and_removes_only_backup_ns_keys() {
        let vs = snapshot(
            json!({ "backup-ns.sh/pvc": "data", "backup-ns.sh/weekly": "w02", "app": "shop" }),
            json!({ "backup-ns.sh/env-config": "BAK_PVC_NAME='data'", "other": "x" }),
        );
        let (name, desired) = Desired::from_snapshot(&vs).unwrap();
        assert_eq!(name, "snapcontent-1");
        assert!(!desired.labels.contains_key("app"));
        let c = content(
            json!({ "backup-ns.sh/weekly": "w01", "backup-ns.sh/daily": "2025-01-01", "team": "a" }),
            json!({}),
        );
        assert!(points_back(&desired, &c));
        let change = diff(&desired, &c).unwrap();
        assert_eq!(change.snapshot, "shop/data-x");
        let summary: Vec<(&str, Option<&str>, Option<&str>)> = change
            .edits
            .iter()
            .map(|e| (e.key.as_str(), e.from.as_deref(), e.to.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                ("backup-ns.sh/daily", Some("2025-01-01"), None),
                ("backup-ns.sh/pvc", None, Some("data")),
                ("backup-ns.sh/weekly", Some("w01"), Some("w02")),
                ("backup-ns.sh/env-config", None, Some("BAK_PVC_NAME='data'")),
            ]
        );
        assert_eq!(
            change.merge_patch(),
            json!({ "metadata": {
                "resourceVersion": "42",
                "labels": { "backup-ns.sh/daily": null, "backup-ns.sh/pvc": "data",
                    "backup-ns.sh/weekly": "w02" },
                "annotations": { "backup-ns.sh/env-config": "BAK_PVC_NAME='data'" },
            }})
        );
        assert_eq!(
            change.to_string(),
            "volumesnapshotcontent snapcontent-1 (of shop/data-x): remove label \
             backup-ns.sh/daily add label backup-ns.sh/pvc=\"data\" change label \
             backup-ns.sh/weekly \"w01\" -> \"w02\" add annotation \
             backup-ns.sh/env-config=\"BAK_PVC_NAME='data'\""
        );
    }

    #[test]
    fn equal_metadata_needs_no_patch_and_a_removed_annotation_is_removed() {
        let vs = snapshot(json!({ "backup-ns.sh/pvc": "data" }), json!({}));
        let (_, desired) = Desired::from_snapshot(&vs).unwrap();
        let c = content(
            json!({ "backup-ns.sh/pvc": "data", "team": "a" }),
            json!({ "x": "y" }),
        );
        assert_eq!(diff(&desired, &c), None);
        let c = content(
            json!({ "backup-ns.sh/pvc": "data" }),
            json!({ "backup-ns.sh/env-config": "old" }),
        );
        let change = diff(&desired, &c).unwrap();
        assert_eq!(
            change.merge_patch(),
            json!({ "metadata": { "resourceVersion": "42",
                "annotations": { "backup-ns.sh/env-config": null } } })
        );
    }

    #[test]
    fn unbound_snapshots_and_foreign_contents_are_recognised() {
        let mut vs = snapshot(json!({ "backup-ns.sh/pvc": "data" }), json!({}));
        let (_, desired) = Desired::from_snapshot(&vs).unwrap();
        vs.status = None;
        assert!(Desired::from_snapshot(&vs).is_none());
        let mut c = content(json!({}), json!({}));
        c.spec.volume_snapshot_ref = json!({ "uid": "someone-else" });
        assert!(!points_back(&desired, &c));
    }
}
