//! `backup-ns rebind CONTENT` (the original's `rebindVsc`) and the orphans `list --orphans`
//! shows: a VolumeSnapshotContent left behind with `deletionPolicy: Retain` after its snapshot
//! (or the whole namespace) was deleted still holds a backup, but nothing in any namespace can
//! restore from it.
//!
//! Why a *new* content and not the old one: a content the controller provisioned dynamically has
//! `spec.source.volumeHandle`, and the snapshot controller binds a pre-provisioned VolumeSnapshot
//! (`spec.source.volumeSnapshotContentName`) only to a content whose source is a
//! `snapshotHandle` (external-snapshotter#290 closed the loophole of repointing a dynamic
//! content's `volumeSnapshotRef`; `spec.source` is immutable). The Kubernetes way is therefore a
//! new content with `source.snapshotHandle` = the old content's `status.snapshotHandle`, same
//! driver, and a VolumeSnapshot naming it. The old content is not touched: deleting it would be
//! harmless with `Retain`, but it is the only record of where the backup came from, and the
//! user decides.
//!
//! Two contents then point at one stored snapshot. That is safe as long as at most one of them
//! may delete it: the old content must be `Retain` (a `Delete` one is refused), the new one is
//! created `Retain` and only switched to `Delete` (`--deletion-policy Delete`) once its snapshot
//! exists, so an undo on failure never deletes data. The new snapshot carries the old content's
//! `backup-ns.sh/*` labels and `env-config` annotation, without `delete-after` (a deletion mark
//! from before would make the next sweep delete the recovered backup) and pinned
//! (`backup-ns.sh/pin=rebind`), because the retention jobs would otherwise reap an old backup
//! within days and switch its content to `Delete` on the way.
//!
//! Gather (one GET of the content, of the snapshot it names and of the target name, one paged
//! LIST of contents for handles already rebound, one GET of the class) → plan ([`plan`], pure) →
//! confirm → apply (create the content, then the snapshot; undo the content if the snapshot
//! cannot be created).

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;

use chrono::{DateTime, Utc};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde::Serialize;

use crate::cli::{OutputFormat, RebindArgs};
use crate::labels::{self, DELETE_AFTER, ENV_CONFIG, PIN, PREFIX};
use crate::snapshot::{
    VolumeSnapshot, VolumeSnapshotContent, VolumeSnapshotContentSpec, VolumeSnapshotSource,
    VolumeSnapshotSpec,
};
use crate::ExitStatus;

use super::api::{code, describe, Requests};
use super::gather;
use super::options::{DeletionPolicy, RebindOptions};
use super::report_error;

const GROUP_VERSION: &str = "snapshot.storage.k8s.io/v1";
/// The value of the pin label a rebound snapshot gets when it had none.
pub const PIN_VALUE: &str = "rebind";
/// Annotations of the old content that name the secrets the driver needs to delete the stored
/// snapshot: the new content needs them as much as the old one.
const DELETION_SECRET_PREFIX: &str = "snapshot.storage.kubernetes.io/deletion-secret-";

/// Why a content is an orphan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Orphaned {
    /// No snapshot of that namespace and name exists.
    Missing,
    /// One exists, but it is another object (re-created under the same name).
    UidMismatch,
}

impl Orphaned {
    pub fn word(self) -> &'static str {
        match self {
            Orphaned::Missing => "missing",
            Orphaned::UidMismatch => "uid-mismatch",
        }
    }
}

/// The snapshot a content's `spec.volumeSnapshotRef` names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotRef {
    pub namespace: String,
    pub name: String,
    /// Empty until the controller bound the content.
    pub uid: String,
}

impl SnapshotRef {
    pub fn of(c: &VolumeSnapshotContent) -> SnapshotRef {
        let r = &c.spec.volume_snapshot_ref;
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
        SnapshotRef {
            namespace: s("namespace"),
            name: s("name"),
            uid: s("uid"),
        }
    }
}

/// The live snapshots: `(namespace, name)` → uid.
pub type LiveSnapshots = HashMap<(String, String), String>;

/// Whether `c` is an orphan, judged against the live snapshots: its snapshot is gone, or the
/// snapshot of that name is another object. A content not yet bound (empty uid) whose snapshot
/// exists is not an orphan: the controller is about to bind them.
pub fn orphaned(c: &VolumeSnapshotContent, live: &LiveSnapshots) -> Option<Orphaned> {
    let r = SnapshotRef::of(c);
    match live.get(&(r.namespace, r.name)) {
        None => Some(Orphaned::Missing),
        Some(uid) if !r.uid.is_empty() && *uid != r.uid => Some(Orphaned::UidMismatch),
        Some(_) => None,
    }
}

fn handle(c: &VolumeSnapshotContent) -> Option<String> {
    c.status
        .as_ref()
        .and_then(|s| s.snapshot_handle.clone())
        .filter(|h| !h.is_empty())
}

fn name_of(c: &VolumeSnapshotContent) -> String {
    c.metadata.name.clone().unwrap_or_default()
}

/// `backup-ns.sh/*` labels of an object.
fn ours(labels: Option<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
    labels
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Every content's name by storage handle: which contents point at the same stored snapshot.
pub fn by_handle(contents: &[VolumeSnapshotContent]) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for c in contents {
        if let Some(h) = handle(c) {
            out.entry(h).or_default().push(name_of(c));
        }
    }
    out
}

/// One orphaned content; also the JSON/YAML shape of `list --orphans`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrphanRow {
    pub content: String,
    /// `namespace/name` of the snapshot that is gone.
    pub snapshot: String,
    pub orphaned: Orphaned,
    pub pvc: Option<String>,
    #[serde(rename = "type")]
    pub vs_type: Option<String>,
    pub daily: Option<String>,
    pub weekly: Option<String>,
    pub monthly: Option<String>,
    /// Every `backup-ns.sh/*` label (copied there by `sync-labels`).
    pub labels: BTreeMap<String, String>,
    pub deletion_policy: String,
    pub driver: String,
    pub handle: Option<String>,
    pub class: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub created: Option<DateTime<Utc>>,
    /// `Retain` with a handle: `backup-ns rebind` takes it.
    pub rebindable: bool,
    /// Other contents on the same storage handle (a rebind made before).
    pub shares_handle_with: Vec<String>,
}

fn rfc3339<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        None => s.serialize_none(),
    }
}

/// The orphans among `contents`, sorted by the namespace and name of their gone snapshot.
pub fn orphans(contents: &[VolumeSnapshotContent], live: &LiveSnapshots) -> Vec<OrphanRow> {
    let handles = by_handle(contents);
    let mut rows: Vec<OrphanRow> = contents
        .iter()
        .filter_map(|c| {
            let why = orphaned(c, live)?;
            let r = SnapshotRef::of(c);
            let l = ours(c.metadata.labels.as_ref());
            let label = |k: &str| l.get(k).cloned();
            let h = handle(c);
            let me = name_of(c);
            let shares = h
                .as_ref()
                .and_then(|h| handles.get(h))
                .into_iter()
                .flatten()
                .filter(|n| **n != me)
                .cloned()
                .collect();
            Some(OrphanRow {
                snapshot: format!("{}/{}", r.namespace, r.name),
                orphaned: why,
                pvc: label(labels::PVC),
                vs_type: label(labels::TYPE),
                daily: label(labels::DAILY),
                weekly: label(labels::WEEKLY),
                monthly: label(labels::MONTHLY),
                labels: l,
                rebindable: c.spec.deletion_policy == "Retain" && h.is_some(),
                deletion_policy: c.spec.deletion_policy.clone(),
                driver: c.spec.driver.clone(),
                handle: h,
                class: c.spec.volume_snapshot_class_name.clone(),
                created: c.metadata.creation_timestamp.as_ref().and_then(|t| {
                    DateTime::<Utc>::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond() as u32)
                }),
                shares_handle_with: shares,
                content: me,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.snapshot, a.created, &a.content).cmp(&(&b.snapshot, b.created, &b.content))
    });
    rows
}

/// The `list --orphans` table; `wide` adds DRIVER, HANDLE, CLASS and SHARES-HANDLE-WITH.
pub fn orphan_table(rows: &[OrphanRow], now: DateTime<Utc>, wide: bool) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut header = vec![
        "CONTENT", "SNAPSHOT", "ORPHANED", "PVC", "TYPE", "DAILY", "WEEKLY", "MONTHLY", "POLICY",
        "AGE",
    ];
    if wide {
        header.extend(["DRIVER", "HANDLE", "CLASS", "SHARES-HANDLE-WITH"]);
    }
    let mut lines: Vec<Vec<String>> = vec![header.into_iter().map(str::to_owned).collect()];
    for r in rows {
        let mut line = vec![
            r.content.clone(),
            r.snapshot.clone(),
            r.orphaned.word().to_owned(),
            dash(&r.pvc),
            dash(&r.vs_type),
            dash(&r.daily),
            dash(&r.weekly),
            dash(&r.monthly),
            r.deletion_policy.clone(),
            r.created
                .map_or_else(|| "-".into(), |t| super::list::age(now, t)),
        ];
        if wide {
            line.push(r.driver.clone());
            line.push(dash(&r.handle));
            line.push(dash(&r.class));
            line.push(if r.shares_handle_with.is_empty() {
                "-".into()
            } else {
                r.shares_handle_with.join(",")
            });
        }
        lines.push(line);
    }
    super::list::columns(&lines)
}

/// What the cluster says, as far as a rebind of one content cares.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub content: &'a VolumeSnapshotContent,
    /// uid of the snapshot that the content's `volumeSnapshotRef` names, if one exists.
    pub ref_snapshot_uid: Option<String>,
    /// Namespace of the new snapshot.
    pub namespace: String,
    /// `--name`, if given.
    pub name: Option<String>,
    /// A snapshot of the new name exists in the namespace.
    pub name_taken: bool,
    /// Every content's name by storage handle.
    pub handles: HashMap<String, Vec<String>>,
    /// Whether the content's VolumeSnapshotClass still exists (`None`: could not tell).
    pub class_exists: Option<bool>,
    pub deletion_policy: DeletionPolicy,
}

/// Why a content is not rebound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "volumesnapshotcontent {content} is bound to volumesnapshot {snapshot}, which still \
         exists: it is not an orphan; use that snapshot (backup-ns list -n {namespace})"
    )]
    NotOrphaned {
        content: String,
        snapshot: String,
        namespace: String,
    },
    #[error(
        "volumesnapshotcontent {content} has deletionPolicy Delete: with its snapshot gone the \
         snapshot controller deletes it and the stored data (or already tried to), so a new \
         content on its handle would point at data being deleted. If the data must be kept and \
         still exists, switch it to Retain first (kubectl patch volumesnapshotcontent {content} \
         --type merge -p '{{\"spec\":{{\"deletionPolicy\":\"Retain\"}}}}') and run rebind again"
    )]
    DeletePolicy { content: String },
    #[error(
        "volumesnapshotcontent {content} has no status.snapshotHandle: the storage system never \
         reported a snapshot for it, there is nothing to rebind"
    )]
    NoHandle { content: String },
    #[error("volumesnapshotcontent {content} is being deleted")]
    Terminating { content: String },
    #[error(
        "volumesnapshot {namespace}/{name} already exists; choose another name with --name \
         (BAK_REBIND_NAME)"
    )]
    NameTaken { namespace: String, name: String },
    #[error(
        "the stored snapshot of volumesnapshotcontent {content} (handle {handle}) is already \
         used by volumesnapshotcontent {others}: it was rebound before; use that one (backup-ns \
         list --orphans -o wide shows it), or delete it first"
    )]
    HandleShared {
        content: String,
        handle: String,
        others: String,
    },
    #[error(
        "volumesnapshotcontent {content} names no snapshot (spec.volumeSnapshotRef.name is \
         empty); give the new snapshot a name with --name (BAK_REBIND_NAME)"
    )]
    NoName { content: String },
}

impl Refusal {
    /// A missing name is a usage error (a flag fixes it); everything else is the cluster's state.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Refusal::NoName { .. } => ExitStatus::Usage,
            _ => ExitStatus::Failure,
        }
    }
}

/// What a rebind creates.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The old content, left as it is.
    pub old_content: String,
    /// `namespace/name` of its gone snapshot.
    pub old_snapshot: String,
    pub orphaned: Orphaned,
    pub handle: String,
    pub volume_snapshot_content: VolumeSnapshotContent,
    pub volume_snapshot: VolumeSnapshot,
    /// `Delete`: the new content is switched to it once its snapshot exists.
    pub deletion_policy: &'static str,
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn content_name(&self) -> String {
        name_of(&self.volume_snapshot_content)
    }

    pub fn namespace(&self) -> String {
        self.volume_snapshot
            .metadata
            .namespace
            .clone()
            .unwrap_or_default()
    }

    pub fn name(&self) -> String {
        self.volume_snapshot
            .metadata
            .name
            .clone()
            .unwrap_or_default()
    }

    /// One line saying what happens.
    pub fn summary(&self) -> String {
        format!(
            "volumesnapshot {}/{} from volumesnapshotcontent {} (snapshot {} {}; handle {}, \
             driver {}) through a new volumesnapshotcontent {} (deletionPolicy {}); {} is left \
             as it is",
            self.namespace(),
            self.name(),
            self.old_content,
            self.old_snapshot,
            self.orphaned.word(),
            self.handle,
            self.volume_snapshot_content.spec.driver,
            self.content_name(),
            self.deletion_policy,
            self.old_content,
        )
    }
}

/// FNV-1a (32 bits): a short, stable tag of the new snapshot's `namespace/name`, so the same
/// rebind always names its content alike (and a dry run shows the real name).
fn tag(s: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// The new content's name: the old one's with `-rebind-<tag>`, within the 253 characters of an
/// object name.
pub fn new_content_name(old: &str, namespace: &str, name: &str) -> String {
    let suffix = format!("-rebind-{}", tag(&format!("{namespace}/{name}")));
    let keep = 253 - suffix.len();
    let base: String = old.chars().take(keep).collect();
    format!("{}{suffix}", base.trim_end_matches(['-', '.']))
}

/// The plan of a rebind, or why there is none. Pure.
pub fn plan(f: &Facts) -> Result<Plan, Refusal> {
    let c = f.content;
    let old = name_of(c);
    let r = SnapshotRef::of(c);
    let mut live = LiveSnapshots::new();
    if let Some(uid) = &f.ref_snapshot_uid {
        live.insert((r.namespace.clone(), r.name.clone()), uid.clone());
    }
    let Some(why) = orphaned(c, &live) else {
        return Err(Refusal::NotOrphaned {
            content: old,
            snapshot: format!("{}/{}", r.namespace, r.name),
            namespace: r.namespace,
        });
    };
    if c.metadata.deletion_timestamp.is_some() {
        return Err(Refusal::Terminating { content: old });
    }
    if c.spec.deletion_policy != "Retain" {
        return Err(Refusal::DeletePolicy { content: old });
    }
    let Some(h) = handle(c) else {
        return Err(Refusal::NoHandle { content: old });
    };
    let others: Vec<&String> = f
        .handles
        .get(&h)
        .into_iter()
        .flatten()
        .filter(|n| **n != old)
        .collect();
    if !others.is_empty() {
        return Err(Refusal::HandleShared {
            content: old,
            handle: h,
            others: others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let name = match &f.name {
        Some(n) => n.clone(),
        None if r.name.is_empty() => return Err(Refusal::NoName { content: old }),
        None => r.name.clone(),
    };
    if f.name_taken {
        return Err(Refusal::NameTaken {
            namespace: f.namespace.clone(),
            name,
        });
    }

    let mut warnings = Vec::new();
    let class = match (&c.spec.volume_snapshot_class_name, f.class_exists) {
        (Some(class), Some(false)) => {
            warnings.push(format!(
                "volumesnapshotclass {class} no longer exists: the new objects name no class"
            ));
            None
        }
        (class, _) => class.clone(),
    };
    let mut new_labels = ours(c.metadata.labels.as_ref());
    new_labels.remove(DELETE_AFTER);
    new_labels
        .entry(PIN.to_owned())
        .or_insert_with(|| PIN_VALUE.to_owned());
    let annotations = c.metadata.annotations.clone().unwrap_or_default();
    let env_config: BTreeMap<String, String> = annotations
        .get(ENV_CONFIG)
        .map(|v| (ENV_CONFIG.to_owned(), v.clone()))
        .into_iter()
        .collect();
    let mut content_annotations = env_config.clone();
    content_annotations.extend(
        annotations
            .iter()
            .filter(|(k, _)| k.starts_with(DELETION_SECRET_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone())),
    );

    let content_name = new_content_name(&old, &f.namespace, &name);
    let mut content = VolumeSnapshotContent::new(
        &content_name,
        VolumeSnapshotContentSpec {
            // Always created Retain: an undo (deleting it) must never delete the stored data.
            deletion_policy: "Retain".to_owned(),
            driver: c.spec.driver.clone(),
            source: serde_json::json!({ "snapshotHandle": h }),
            volume_snapshot_ref: serde_json::json!({
                "apiVersion": GROUP_VERSION,
                "kind": "VolumeSnapshot",
                "namespace": f.namespace,
                "name": name,
            }),
            volume_snapshot_class_name: class.clone(),
        },
    );
    content.metadata.labels = Some(new_labels.clone());
    content.metadata.annotations = (!content_annotations.is_empty()).then_some(content_annotations);

    let mut vs = VolumeSnapshot::new(
        &name,
        VolumeSnapshotSpec {
            source: VolumeSnapshotSource {
                volume_snapshot_content_name: Some(content_name),
                ..Default::default()
            },
            volume_snapshot_class_name: class,
        },
    );
    vs.metadata.namespace = Some(f.namespace.clone());
    vs.metadata.labels = Some(new_labels);
    vs.metadata.annotations = (!env_config.is_empty()).then_some(env_config);

    Ok(Plan {
        old_content: old,
        old_snapshot: format!("{}/{}", r.namespace, r.name),
        orphaned: why,
        handle: h,
        volume_snapshot_content: content,
        volume_snapshot: vs,
        deletion_policy: f.deletion_policy.as_str(),
        warnings,
    })
}

/// The `-o json` document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RebindOutput<'a> {
    dry_run: bool,
    #[serde(flatten)]
    plan: &'a Plan,
    /// Both objects created (always `false` in a dry run).
    created: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn pretty<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("<cannot render: {e}>"))
}

pub async fn main(args: &RebindArgs, output: crate::cli::Output) -> ExitStatus {
    let format = match output.text_or_json() {
        Ok(f) => f,
        Err(e) => return report_error(&e),
    };
    let opts = match RebindOptions::from_args(args) {
        Ok(o) => o,
        Err(e) => return report_error(&e),
    };
    let ask = !opts.yes && !opts.dry_run;
    if ask && !std::io::stdin().is_terminal() {
        tracing::error!(
            "refusing to rebind volumesnapshotcontent {} without confirmation: stdin is not a \
             terminal; pass --yes (BAK_YES=true) to rebind, or --dry-run to see what would be \
             created",
            opts.content
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
    let namespace = opts.namespace.clone().unwrap_or(context_ns);
    let requests = Requests::new(client, opts.qps);
    let g = match gather(&requests, &opts, &namespace).await {
        Ok(g) => g,
        Err(status) => return status,
    };
    let facts = Facts {
        content: &g.content,
        ref_snapshot_uid: g.ref_snapshot_uid,
        namespace: namespace.clone(),
        name: opts.name.clone(),
        name_taken: g.name_taken,
        handles: g.handles,
        class_exists: g.class_exists,
        deletion_policy: opts.deletion_policy,
    };
    let plan = match plan(&facts) {
        Ok(p) => p,
        Err(refusal) => {
            tracing::error!("{refusal}");
            return refusal.exit_status();
        }
    };
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    let mut out = RebindOutput {
        dry_run: opts.dry_run,
        plan: &plan,
        created: false,
        error: None,
    };
    if opts.dry_run {
        match format {
            OutputFormat::Json => println!("{}", pretty(&out)),
            OutputFormat::Text => {
                println!("would create {}", plan.summary());
                println!(
                    "would create volumesnapshotcontent {}:\n{}",
                    plan.content_name(),
                    pretty(&plan.volume_snapshot_content)
                );
                println!(
                    "would create volumesnapshot {}/{}:\n{}",
                    plan.namespace(),
                    plan.name(),
                    pretty(&plan.volume_snapshot)
                );
                if opts.deletion_policy == DeletionPolicy::Delete {
                    println!(
                        "would then set deletionPolicy Delete on volumesnapshotcontent {}",
                        plan.content_name()
                    );
                }
            }
        }
        return ExitStatus::Success;
    }
    if ask && !super::ask(&format!("Create {}?", plan.summary())) {
        eprintln!("nothing created");
        return ExitStatus::Failure;
    }
    let status = match apply(&requests, &plan, opts.deletion_policy).await {
        Ok(()) => {
            out.created = true;
            if format == OutputFormat::Text {
                println!("created {}", plan.summary());
                println!(
                    "wait for it: kubectl -n {} wait volumesnapshot/{} \
                     --for=jsonpath='{{.status.readyToUse}}'=true",
                    plan.namespace(),
                    plan.name()
                );
            }
            ExitStatus::Success
        }
        Err(e) => {
            tracing::error!("{e}");
            out.error = Some(e);
            ExitStatus::Failure
        }
    };
    if format == OutputFormat::Json {
        println!("{}", pretty(&out));
    }
    status
}

/// What [`gather`] read (see [`Facts`]).
struct Gathered {
    content: VolumeSnapshotContent,
    ref_snapshot_uid: Option<String>,
    name_taken: bool,
    handles: HashMap<String, Vec<String>>,
    class_exists: Option<bool>,
}

/// Reads the facts of a rebind. Errors are logged; the caller exits with the status.
async fn gather(
    requests: &Requests,
    opts: &RebindOptions,
    namespace: &str,
) -> Result<Gathered, ExitStatus> {
    let contents: Api<VolumeSnapshotContent> = Api::all(requests.client.clone());
    let what = format!("get volumesnapshotcontent {}", opts.content);
    let content = match requests
        .call(&what, || contents.get_opt(&opts.content))
        .await
    {
        Ok(Some(c)) => c,
        Ok(None) => {
            tracing::error!(
                "volumesnapshotcontent {} not found (backup-ns list --orphans lists the \
                 candidates)",
                opts.content
            );
            return Err(ExitStatus::Failure);
        }
        Err(e) => {
            tracing::error!("{what}: {}", describe(&e));
            return Err(ExitStatus::Failure);
        }
    };
    let get_vs = |ns: String, name: String| async move {
        if ns.is_empty() || name.is_empty() {
            return Ok(None);
        }
        let api: Api<VolumeSnapshot> = Api::namespaced(requests.client.clone(), &ns);
        let what = format!("get volumesnapshot {ns}/{name}");
        requests
            .call(&what, || api.get_opt(&name))
            .await
            .map_err(|e| {
                tracing::error!("{what}: {}", describe(&e));
                ExitStatus::Failure
            })
    };
    let r = SnapshotRef::of(&content);
    let ref_snapshot_uid = get_vs(r.namespace.clone(), r.name.clone())
        .await?
        .map(|vs| vs.metadata.uid.unwrap_or_default());
    let target = opts.name.clone().unwrap_or_else(|| r.name.clone());
    let name_taken = get_vs(namespace.to_owned(), target).await?.is_some();
    let mut all = Vec::new();
    if let Err(e) = gather::contents(requests, |c| all.push(c)).await {
        return Err(report_error(&e));
    }
    let class_exists = match &content.spec.volume_snapshot_class_name {
        None => None,
        Some(class) => {
            let api: Api<kube::api::DynamicObject> = Api::all_with(
                requests.client.clone(),
                &kube::api::ApiResource {
                    group: "snapshot.storage.k8s.io".into(),
                    version: "v1".into(),
                    api_version: GROUP_VERSION.into(),
                    kind: "VolumeSnapshotClass".into(),
                    plural: "volumesnapshotclasses".into(),
                },
            );
            let what = format!("get volumesnapshotclass {class}");
            match requests.call(&what, || api.get_opt(class)).await {
                Ok(found) => Some(found.is_some()),
                Err(e) => {
                    tracing::warn!(
                        "{what}: {}; keeping the class name on the new objects",
                        describe(&e)
                    );
                    None
                }
            }
        }
    };
    Ok(Gathered {
        content,
        ref_snapshot_uid,
        name_taken,
        handles: by_handle(&all),
        class_exists,
    })
}

/// Creates the content, then the snapshot; if the snapshot cannot be created, deletes the content
/// again (under its uid; it is `Retain`, so the stored data is not touched). With
/// `--deletion-policy Delete`, the content is switched once the snapshot exists.
async fn apply(requests: &Requests, plan: &Plan, policy: DeletionPolicy) -> Result<(), String> {
    let contents: Api<VolumeSnapshotContent> = Api::all(requests.client.clone());
    let post = PostParams::default();
    let content_name = plan.content_name();
    let what = format!("create volumesnapshotcontent {content_name}");
    let created = requests
        .call(&what, || {
            contents.create(&post, &plan.volume_snapshot_content)
        })
        .await
        .map_err(|e| format!("{what}: {}", describe(&e)))?;
    tracing::info!(
        "created volumesnapshotcontent {content_name} (handle {})",
        plan.handle
    );

    let ns = plan.namespace();
    let snapshots: Api<VolumeSnapshot> = Api::namespaced(requests.client.clone(), &ns);
    let what = format!("create volumesnapshot {ns}/{}", plan.name());
    if let Err(e) = requests
        .call(&what, || snapshots.create(&post, &plan.volume_snapshot))
        .await
    {
        let mut message = format!("{what}: {}", describe(&e));
        if code(&e) == Some(409) {
            message.push_str("; choose another name with --name (BAK_REBIND_NAME)");
        }
        let undo = format!("delete volumesnapshotcontent {content_name} (undo)");
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: created.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match requests
            .call(&undo, || contents.delete(&content_name, &params))
            .await
        {
            Ok(_) => message.push_str(&format!(
                "; volumesnapshotcontent {content_name} deleted again, nothing changed"
            )),
            Err(e) => message.push_str(&format!(
                "; {undo} failed too ({}): delete it by hand (deletionPolicy Retain: the stored \
                 data stays)",
                describe(&e)
            )),
        }
        return Err(message);
    }
    tracing::info!("created volumesnapshot {ns}/{}", plan.name());

    if policy == DeletionPolicy::Delete {
        let what = format!("patch volumesnapshotcontent {content_name} deletionPolicy Delete");
        let patch = Patch::Merge(serde_json::json!({"spec": {"deletionPolicy": "Delete"}}));
        let params = PatchParams::default();
        requests
            .call(&what, || contents.patch(&content_name, &params, &patch))
            .await
            .map_err(|e| {
                format!(
                    "{what}: {}; volumesnapshot {ns}/{} exists, its content stays Retain",
                    describe(&e),
                    plan.name()
                )
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(json: serde_json::Value) -> VolumeSnapshotContent {
        serde_json::from_value(json).unwrap()
    }

    /// A content like one the controller provisioned for `shop/data-1` (uid `u1`), Retain,
    /// with the labels `sync-labels` copied.
    fn orphan() -> serde_json::Value {
        serde_json::json!({
            "apiVersion": GROUP_VERSION,
            "kind": "VolumeSnapshotContent",
            "metadata": {
                "name": "snapcontent-u1",
                "creationTimestamp": "2025-01-08T10:00:00Z",
                "labels": {
                    "backup-ns.sh/pvc": "data", "backup-ns.sh/type": "cronjob",
                    "backup-ns.sh/retain": "daily_weekly_monthly",
                    "backup-ns.sh/daily": "2025-01-08", "backup-ns.sh/weekly": "w02",
                    "backup-ns.sh/delete-after": "2025-01-09", "other.io/x": "y",
                },
                "annotations": {
                    "backup-ns.sh/env-config": "{\"BAK_DB_POSTGRES\":\"true\"}",
                    "snapshot.storage.kubernetes.io/deletion-secret-name": "s",
                    "unrelated": "z",
                },
            },
            "spec": {
                "deletionPolicy": "Retain",
                "driver": "hostpath.csi.k8s.io",
                "source": { "volumeHandle": "vol-1" },
                "volumeSnapshotClassName": "csi-hostpath-snapclass",
                "volumeSnapshotRef": {
                    "apiVersion": GROUP_VERSION, "kind": "VolumeSnapshot",
                    "namespace": "shop", "name": "data-1", "uid": "u1",
                },
            },
            "status": { "snapshotHandle": "h-1", "readyToUse": true, "restoreSize": 1073741824 },
        })
    }

    fn facts(c: &VolumeSnapshotContent) -> Facts<'_> {
        Facts {
            content: c,
            ref_snapshot_uid: None,
            namespace: "restore".into(),
            name: None,
            name_taken: false,
            handles: by_handle(std::slice::from_ref(c)),
            class_exists: Some(true),
            deletion_policy: DeletionPolicy::Retain,
        }
    }

    fn live(entries: &[(&str, &str, &str)]) -> LiveSnapshots {
        entries
            .iter()
            .map(|(ns, n, u)| ((ns.to_string(), n.to_string()), u.to_string()))
            .collect()
    }

    #[test]
    fn an_orphan_is_a_content_whose_snapshot_is_gone_or_another_object() {
        let c = content(orphan());
        assert_eq!(orphaned(&c, &live(&[])), Some(Orphaned::Missing));
        assert_eq!(
            orphaned(&c, &live(&[("other", "data-1", "u1")])),
            Some(Orphaned::Missing)
        );
        assert_eq!(
            orphaned(&c, &live(&[("shop", "data-1", "u2")])),
            Some(Orphaned::UidMismatch)
        );
        assert_eq!(orphaned(&c, &live(&[("shop", "data-1", "u1")])), None);
        // Not yet bound (pre-provisioned, uid empty) and its snapshot exists: about to bind.
        let mut v = orphan();
        v["spec"]["volumeSnapshotRef"]["uid"] = serde_json::json!("");
        assert_eq!(
            orphaned(&content(v), &live(&[("shop", "data-1", "u9")])),
            None
        );
    }

    #[test]
    fn orphan_rows_carry_labels_policy_handle_and_shared_handles() {
        let mut bound = orphan();
        bound["metadata"]["name"] = serde_json::json!("snapcontent-u2");
        bound["spec"]["volumeSnapshotRef"]["name"] = serde_json::json!("data-2");
        bound["spec"]["volumeSnapshotRef"]["uid"] = serde_json::json!("u2");
        bound["status"]["snapshotHandle"] = serde_json::json!("h-2");
        let mut rebound = orphan();
        rebound["metadata"]["name"] = serde_json::json!("snapcontent-u1-rebind-x");
        rebound["spec"]["volumeSnapshotRef"] =
            serde_json::json!({"namespace": "restore", "name": "data-1", "uid": "u3"});
        let contents = [content(orphan()), content(bound), content(rebound)];
        let rows = orphans(
            &contents,
            &live(&[("shop", "data-2", "u2"), ("restore", "data-1", "u3")]),
        );
        assert_eq!(rows.len(), 1, "{rows:#?}");
        let r = &rows[0];
        assert_eq!(
            (r.content.as_str(), r.snapshot.as_str(), r.orphaned),
            ("snapcontent-u1", "shop/data-1", Orphaned::Missing)
        );
        assert_eq!(r.pvc.as_deref(), Some("data"));
        assert_eq!(r.daily.as_deref(), Some("2025-01-08"));
        assert!(!r.labels.contains_key("other.io/x"));
        assert_eq!(r.handle.as_deref(), Some("h-1"));
        assert_eq!(r.shares_handle_with, ["snapcontent-u1-rebind-x"]);
        assert!(r.rebindable);
        let now = DateTime::parse_from_rfc3339("2025-01-10T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let text = orphan_table(&rows, now, true);
        let cells: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "snapcontent-u1",
                "shop/data-1",
                "missing",
                "data",
                "cronjob",
                "2025-01-08",
                "w02",
                "-",
                "Retain",
                "2d",
                "hostpath.csi.k8s.io",
                "h-1",
                "csi-hostpath-snapclass",
                "snapcontent-u1-rebind-x"
            ]
        );
    }

    #[test]
    fn the_plan_is_a_pre_provisioned_pair_on_the_same_handle() {
        let c = content(orphan());
        let p = plan(&facts(&c)).unwrap();
        let vsc = serde_json::to_value(&p.volume_snapshot_content).unwrap();
        let vs = serde_json::to_value(&p.volume_snapshot).unwrap();
        let content_name = new_content_name("snapcontent-u1", "restore", "data-1");
        assert!(
            content_name.starts_with("snapcontent-u1-rebind-"),
            "{content_name}"
        );
        assert_eq!(vsc["metadata"]["name"], content_name.as_str());
        assert_eq!(
            vsc["spec"]["source"],
            serde_json::json!({"snapshotHandle": "h-1"})
        );
        assert_eq!(vsc["spec"]["driver"], "hostpath.csi.k8s.io");
        assert_eq!(vsc["spec"]["deletionPolicy"], "Retain");
        assert_eq!(
            vsc["spec"]["volumeSnapshotClassName"],
            "csi-hostpath-snapclass"
        );
        assert_eq!(
            vsc["spec"]["volumeSnapshotRef"],
            serde_json::json!({"apiVersion": GROUP_VERSION, "kind": "VolumeSnapshot",
                "namespace": "restore", "name": "data-1"})
        );
        assert_eq!(
            vsc["metadata"]["annotations"]["snapshot.storage.kubernetes.io/deletion-secret-name"],
            "s"
        );
        assert!(vsc.get("status").is_none(), "{vsc}");
        assert_eq!(vs["metadata"]["namespace"], "restore");
        assert_eq!(vs["metadata"]["name"], "data-1");
        assert_eq!(
            vs["spec"],
            serde_json::json!({"source": {"volumeSnapshotContentName": content_name},
                "volumeSnapshotClassName": "csi-hostpath-snapclass"})
        );
        // The backup-ns labels come back, without the old deletion mark, pinned.
        assert_eq!(
            vs["metadata"]["labels"],
            serde_json::json!({
                "backup-ns.sh/pvc": "data", "backup-ns.sh/type": "cronjob",
                "backup-ns.sh/retain": "daily_weekly_monthly",
                "backup-ns.sh/daily": "2025-01-08", "backup-ns.sh/weekly": "w02",
                "backup-ns.sh/pin": "rebind",
            })
        );
        assert_eq!(
            vs["metadata"]["annotations"],
            serde_json::json!({"backup-ns.sh/env-config": "{\"BAK_DB_POSTGRES\":\"true\"}"})
        );
        assert_eq!(
            (p.orphaned, p.deletion_policy),
            (Orphaned::Missing, "Retain")
        );

        // --name, a gone class, and an existing pin kept as it was.
        let mut v = orphan();
        v["metadata"]["labels"]["backup-ns.sh/pin"] = serde_json::json!("audit");
        let c = content(v);
        let f = Facts {
            name: Some("recovered".into()),
            class_exists: Some(false),
            deletion_policy: DeletionPolicy::Delete,
            ..facts(&c)
        };
        let p = plan(&f).unwrap();
        assert_eq!(p.name(), "recovered");
        assert_eq!(p.volume_snapshot.spec.volume_snapshot_class_name, None);
        assert_eq!(
            p.volume_snapshot_content.spec.volume_snapshot_class_name,
            None
        );
        assert_eq!(p.warnings.len(), 1);
        assert_eq!(p.volume_snapshot.labels()["backup-ns.sh/pin"], "audit");
        // Created Retain even when Delete is asked for: switched only once the snapshot exists.
        assert_eq!(p.volume_snapshot_content.spec.deletion_policy, "Retain");
        assert_eq!(p.deletion_policy, "Delete");
    }

    #[test]
    fn refusals() {
        let c = content(orphan());
        let f = Facts {
            ref_snapshot_uid: Some("u1".into()),
            ..facts(&c)
        };
        assert!(matches!(plan(&f), Err(Refusal::NotOrphaned { .. })));
        // Re-created under the same name: the content is an orphan after all.
        let f = Facts {
            ref_snapshot_uid: Some("other".into()),
            ..facts(&c)
        };
        assert_eq!(plan(&f).unwrap().orphaned, Orphaned::UidMismatch);

        let mut v = orphan();
        v["spec"]["deletionPolicy"] = serde_json::json!("Delete");
        let c = content(v);
        let e = plan(&facts(&c)).unwrap_err();
        assert!(matches!(e, Refusal::DeletePolicy { .. }));
        assert!(e.to_string().contains("snapcontent-u1"), "{e}");

        let mut v = orphan();
        v["status"] = serde_json::json!({"readyToUse": false});
        let c = content(v);
        assert!(matches!(plan(&facts(&c)), Err(Refusal::NoHandle { .. })));

        let c = content(orphan());
        let f = Facts {
            name_taken: true,
            ..facts(&c)
        };
        let e = plan(&f).unwrap_err();
        assert_eq!(
            e.to_string(),
            "volumesnapshot restore/data-1 already exists; choose another name with --name \
             (BAK_REBIND_NAME)"
        );
        assert_eq!(e.exit_status(), ExitStatus::Failure);

        let mut handles = facts(&c).handles;
        handles
            .get_mut("h-1")
            .unwrap()
            .push("snapcontent-u1-rebind-x".into());
        let f = Facts {
            handles,
            ..facts(&c)
        };
        let e = plan(&f).unwrap_err();
        assert!(e.to_string().contains("snapcontent-u1-rebind-x"), "{e}");

        let mut v = orphan();
        v["spec"]["volumeSnapshotRef"] = serde_json::json!({});
        let c = content(v);
        let e = plan(&facts(&c)).unwrap_err();
        assert_eq!(e.exit_status(), ExitStatus::Usage);
    }

    #[test]
    fn content_names_are_stable_and_valid() {
        let a = new_content_name("snapcontent-u1", "restore", "data-1");
        assert_eq!(a, new_content_name("snapcontent-u1", "restore", "data-1"));
        assert_ne!(a, new_content_name("snapcontent-u1", "restore", "data-2"));
        let long = "a".repeat(253);
        let n = new_content_name(&long, "ns", "x");
        assert_eq!(n.len(), 253);
        labels::validate_dns1123_subdomain("x", &n).unwrap();
    }
}
