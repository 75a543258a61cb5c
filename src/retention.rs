//! The retention planner behind `backup-ns prune`, `retain` and `mark-and-delete`.
//!
//! Retention is where backups are lost, so every decision is made here, by pure functions of
//! (snapshot records, now, policy) → plan: no I/O, "now" (with its time zone) is a parameter, and
//! the plan is plain data that a dry run prints ([`fmt::Display`]), `-o json` serialises
//! ([`Serialize`]) and the commands apply: one merge patch per changed snapshot
//! ([`LabelChange::merge_patch`]) and one delete per deleted snapshot ([`Deletion`]). The
//! original did this in bash with one `kubectl` call per object, no dry run, and left failed
//! snapshots labelled (its bugs 9 and 10); it also never protected the last good snapshot.
//!
//! The planners take the records of one paged LIST (see [`SnapshotRecord::from_snapshot`]), group
//! them by (namespace, PVC) once and sort each group newest first: O(n log n) overall. What a
//! snapshot's state means (ready, pending, failed, terminating) is decided in [`crate::state`].
//!
//! # Rules
//!
//! **Groups and order.** A snapshot belongs to the PVC named by its `backup-ns.sh/pvc` label
//! (else `spec.source.persistentVolumeClaimName`, else the empty name): groups are keyed by
//! (namespace, PVC name), as the original and `kubectl` users see them, so a PVC re-created
//! under its name continues its history and old snapshots age out by the same slots. Which
//! *volume* a snapshot was taken of (`backup-ns.sh/pvc-uid`, written since backup-ns) only
//! matters for claims: a new backup is never judged against another volume's periods (see
//! [`claim_holders`]). A snapshot's time is `status.creationTime`, else
//! `metadata.creationTimestamp`; "newest" always means by that time (ties by name), never by
//! label text, so the year-less `wNN` weekly value and the old `YYYY-wNN` one are read alike. A
//! snapshot with no time at all is never changed (warning). The *newest ready snapshot of a PVC*
//! is the newest ready one of its group, whatever its `retain` value and whether pinned or not.
//!
//! **Terminating snapshots** (a `deletionTimestamp`) are gone for every purpose: never the
//! newest ready one, never a holder of a period, never patched, marked or deleted again.
//!
//! **Pins.** A snapshot with the label `backup-ns.sh/pin` (any value) is never changed or deleted
//! and does not take one of the N slots of a class.
//!
//! **`retain`** (only snapshots with `retain=daily_weekly_monthly` take part; others are left
//! alone and take no slot). *Claim*: a ready snapshot with neither a period label nor a
//! `delete-after` missed its claim (its `create` gave up waiting while it was still being cut);
//! it gets, oldest first, the periods of its own time that no other ready snapshot of its volume
//! holds — exactly what `create` would have given it. *Slots*: for each class (daily, weekly,
//! monthly) the N newest *ready* snapshots carrying the class's label keep it, older ready ones
//! lose it (a claimed label takes its slot like any other, so a claim on an old snapshot is
//! dropped again in the same plan). A label is recognised by its presence: a garbage value is
//! counted like a good one (and warned about). A *pending* snapshot keeps its labels without
//! taking a slot (it may still become the newest good one); a *failed* one loses all of them (it
//! is no backup). The newest ready snapshot of a PVC never loses its last period label: if the
//! policy would strip all of them (only possible with a `keep_*` of 0) it keeps the
//! longest-lived one (monthly, else weekly, else daily). `retain` never touches `delete-after`.
//! *Brake*: more snapshots losing their last period label than [`Policy::max_deletions`] (each
//! would be marked and deleted a day later) make the plan [`RetainPlan::braked`]: nothing is
//! applied.
//!
//! **`mark-and-delete`**. *Mark*: an unpinned `retain=daily_weekly_monthly` snapshot without a
//! `delete-after` gets `delete-after=<today>` (today in `now`'s time zone) when it is ready and
//! carries no daily, weekly or monthly label, or when it failed. A pending one is not marked:
//! it gets its period labels once it is ready. Only a snapshot without `delete-after` is ever
//! marked: a date set by hand, earlier or later, stays as written. *Sweep*: a snapshot with any
//! `retain` label and a `delete-after` strictly before today is deleted, whatever period labels
//! it still carries (an operator's date is honoured as written). Never deleted: a snapshot
//! without `retain`, a pinned one, a terminating one, one whose `delete-after` is not a valid
//! `YYYY-MM-DD` date (warned about, counted, skipped), and the newest ready snapshot of its PVC
//! (unless [`Policy::allow_deleting_last_ready`]). Snapshots marked in a run get today's date and
//! so are never deleted in the same run. *Brake*: more planned deletions than
//! [`Policy::max_deletions`] make the plan [`SweepPlan::braked`]: nothing may be deleted, the
//! caller prints the plan and exits non-zero (marks are still safe to apply: they only set the
//! date from which a later, unbraked run may delete).
//!
//! **`prune`** ([`plan_prune`]) is `retain` and then `mark-and-delete` on the labels `retain`
//! leaves, as one plan: one patch per snapshot (a strip and its mark together), one brake over
//! both halves (braked: nothing at all is applied).
//!
//! **Manual edits** (the original's README is the contract). Removing `delete-after` by hand
//! saves a snapshot from the current mark only: if it still has no period label on the next run,
//! it is marked again (with that run's date) and deleted the day after. Setting `delete-after`
//! by hand (earlier or later than a mark) deletes the snapshot after that day, period labels or
//! not. Adding `daily=…` (or weekly/monthly) by hand puts the snapshot into that class: it keeps
//! the label while it is among the N newest ready ones of the class and is not marked while it
//! carries one — but a `delete-after` it already has still applies, so remove that too. To keep
//! a snapshot for good, pin it (or remove its `retain` label).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::labels::{
    claim_periods, parse_daily, parse_monthly, parse_weekly, ExistingSnapshot, Retain, DAILY,
    DELETE_AFTER, MONTHLY, PIN, PVC, PVC_UID, RETAIN, WEEKLY,
};
use crate::snapshot::VolumeSnapshot;
use crate::state::SnapshotState;

/// `RETAIN_LAST_DAILY` of the original.
pub const DEFAULT_KEEP_DAILY: usize = 7;
/// `RETAIN_LAST_WEEKLY` of the original.
pub const DEFAULT_KEEP_WEEKLY: usize = 4;
/// `RETAIN_LAST_MONTHLY` of the original.
pub const DEFAULT_KEEP_MONTHLY: usize = 12;
/// Default mass-deletion brake. A PVC backed up daily loses about one snapshot a day in steady
/// state, so this lets a cluster of a few hundred PVCs run unattended while stopping a run that
/// would wipe out whole histories.
pub const DEFAULT_MAX_DELETIONS: usize = 500;

/// What the planners keep and how much they may delete in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Ready snapshots per PVC that keep their daily label (`RETAIN_LAST_DAILY`).
    pub keep_daily: usize,
    /// Ready snapshots per PVC that keep their weekly label (`RETAIN_LAST_WEEKLY`).
    pub keep_weekly: usize,
    /// Ready snapshots per PVC that keep their monthly label (`RETAIN_LAST_MONTHLY`).
    pub keep_monthly: usize,
    /// Let the sweep delete the newest ready snapshot of a PVC when its `delete-after` passed.
    pub allow_deleting_last_ready: bool,
    /// More planned deletions than this brake the sweep (nothing is deleted).
    pub max_deletions: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            keep_daily: DEFAULT_KEEP_DAILY,
            keep_weekly: DEFAULT_KEEP_WEEKLY,
            keep_monthly: DEFAULT_KEEP_MONTHLY,
            allow_deleting_last_ready: false,
            max_deletions: DEFAULT_MAX_DELETIONS,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Input

/// What the planners need to know about one VolumeSnapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub namespace: String,
    pub name: String,
    /// `metadata.uid`, for the delete precondition.
    pub uid: String,
    /// `metadata.resourceVersion`, for the patch precondition.
    pub resource_version: String,
    /// The PVC it belongs to: the `backup-ns.sh/pvc` label, else the snapshot's source PVC.
    pub pvc: String,
    /// The `backup-ns.sh/pvc-uid` label: which volume of that name it was taken of, if known.
    pub pvc_uid: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `status.creationTime`, else `metadata.creationTimestamp`.
    pub time: Option<DateTime<Utc>>,
    /// Its state when it was read (see [`crate::state`]).
    pub state: SnapshotState,
    /// `status.boundVolumeSnapshotContentName`.
    pub bound_content: Option<String>,
}

impl SnapshotRecord {
    /// Takes what the planners need out of a VolumeSnapshot read at `now`.
    pub fn from_snapshot(vs: &VolumeSnapshot, now: DateTime<Utc>) -> SnapshotRecord {
        let labels = vs.labels().clone();
        let pvc = labels
            .get(PVC)
            .cloned()
            .or_else(|| vs.spec.source.persistent_volume_claim_name.clone())
            .unwrap_or_default();
        SnapshotRecord {
            namespace: vs.metadata.namespace.clone().unwrap_or_default(),
            name: vs.metadata.name.clone().unwrap_or_default(),
            uid: vs.metadata.uid.clone().unwrap_or_default(),
            resource_version: vs.metadata.resource_version.clone().unwrap_or_default(),
            pvc,
            pvc_uid: labels.get(PVC_UID).filter(|u| !u.is_empty()).cloned(),
            labels,
            time: vs.taken_at(),
            state: vs.state(now),
            bound_content: vs
                .status
                .as_ref()
                .and_then(|s| s.bound_volume_snapshot_content_name.clone()),
        }
    }

    /// Carries the `backup-ns.sh/pin` label (any value).
    pub fn is_pinned(&self) -> bool {
        self.labels.contains_key(PIN)
    }

    fn is_daily_weekly_monthly(&self) -> bool {
        self.labels.get(RETAIN).map(String::as_str) == Some(Retain::DailyWeeklyMonthly.as_str())
    }

    fn has_period_label(&self) -> bool {
        Class::ALL.iter().any(|c| self.labels.contains_key(c.key()))
    }

    fn target(&self) -> Target {
        Target {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            resource_version: self.resource_version.clone(),
            pvc: self.pvc.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Output

/// The snapshot an action applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub pvc: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One label set or removed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelEdit {
    /// Full label key (`backup-ns.sh/daily`).
    pub label: String,
    /// Value before the change (`None`: absent).
    pub from: Option<String>,
    /// Value after the change (`None`: removed).
    pub to: Option<String>,
    pub reason: String,
}

impl LabelEdit {
    fn remove(label: &str, value: &str, reason: String) -> LabelEdit {
        LabelEdit {
            label: label.to_owned(),
            from: Some(value.to_owned()),
            to: None,
            reason,
        }
    }
}

impl fmt::Display for LabelEdit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.from, &self.to) {
            (_, Some(to)) => write!(f, "set {}={}", self.label, to)?,
            (Some(from), None) => write!(f, "remove {}={}", self.label, from)?,
            (None, None) => write!(f, "remove {}", self.label)?,
        }
        write!(f, " because {}", self.reason)
    }
}

/// The label edits of one snapshot: one merge patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelChange {
    #[serde(flatten)]
    pub target: Target,
    pub edits: Vec<LabelEdit>,
}

impl LabelChange {
    /// The JSON merge patch applying the edits: `null` removes a label. It carries
    /// `metadata.resourceVersion` (when known), so the API server rejects it with 409 Conflict if
    /// the snapshot changed since it was listed.
    pub fn merge_patch(&self) -> serde_json::Value {
        let labels: serde_json::Map<String, serde_json::Value> = self
            .edits
            .iter()
            .map(|e| {
                let value = e.to.clone().map_or(serde_json::Value::Null, Into::into);
                (e.label.clone(), value)
            })
            .collect();
        let mut metadata = serde_json::Map::new();
        if !self.target.resource_version.is_empty() {
            metadata.insert(
                "resourceVersion".into(),
                self.target.resource_version.clone().into(),
            );
        }
        metadata.insert("labels".into(), labels.into());
        serde_json::json!({ "metadata": metadata })
    }
}

/// A snapshot to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deletion {
    #[serde(flatten)]
    pub target: Target,
    pub delete_after: String,
    /// The bound VolumeSnapshotContent: set its `deletionPolicy` to `Delete` first, so the
    /// storage is freed too. `None`: unbound, delete the snapshot alone.
    pub bound_content: Option<String>,
    pub reason: String,
}

/// Why a snapshot the plan would otherwise have touched is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SkipKind {
    /// `delete-after` is not a `YYYY-MM-DD` date.
    InvalidDeleteAfter,
    /// The newest ready snapshot of its PVC.
    NewestReady,
    /// Neither `status.creationTime` nor `metadata.creationTimestamp`.
    NoTime,
}

/// A snapshot left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skip {
    #[serde(flatten)]
    pub target: Target,
    pub kind: SkipKind,
    pub reason: String,
}

/// Counts of a [`RetainPlan`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetainCounts {
    /// Snapshots looked at.
    pub snapshots: usize,
    /// Snapshots whose labels change (= patches).
    pub relabelled: usize,
    /// Period labels removed.
    pub labels_removed: usize,
    /// Period labels added to ready snapshots that missed their claim.
    pub labels_claimed: usize,
    /// Snapshots without a period label that get one (they missed their claim).
    pub claimed: usize,
    /// Snapshots that lose their last period label (and so become due for a mark): the brake
    /// counts these.
    pub stripped: usize,
    /// Period labels kept on unpinned `daily_weekly_monthly` snapshots.
    pub labels_kept: usize,
    /// Pinned snapshots (left alone).
    pub pinned: usize,
    /// Pending snapshots that keep their period labels without taking a slot.
    pub pending_kept: usize,
    /// Newest ready snapshots that keep their last period label against the policy.
    pub protected_last_ready: usize,
    /// Snapshots whose `retain` is not `daily_weekly_monthly` (left alone).
    pub ignored: usize,
    /// Snapshots being deleted (left alone, and no other snapshot is judged against them).
    pub terminating: usize,
    /// Snapshots without a time (left alone).
    pub no_time: usize,
}

/// What `retain` would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetainPlan {
    /// Today in the plan's time zone, `YYYY-MM-DD`.
    pub today: String,
    pub time_zone: String,
    pub policy: Policy,
    /// One entry per snapshot to patch, grouped by namespace and PVC, newest first.
    pub changes: Vec<LabelChange>,
    /// Snapshots kept against the policy or left alone.
    pub skipped: Vec<Skip>,
    /// More snapshots would lose their last period label than `policy.max_deletions`: nothing
    /// may be applied.
    pub braked: bool,
    /// Things to log as warnings (garbage label values, missing times).
    pub warnings: Vec<String>,
    pub counts: RetainCounts,
}

/// Counts of a [`SweepPlan`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepCounts {
    /// Snapshots looked at.
    pub snapshots: usize,
    /// Snapshots to get `delete-after=<today>`.
    pub marked: usize,
    /// Planned deletions (none is applied if the plan is braked).
    pub deleted: usize,
    /// Snapshots not planned for deletion.
    pub kept: usize,
    /// Invalid `delete-after` or no time: warned about and left alone.
    pub skipped_invalid: usize,
    /// Newest ready snapshots kept although their `delete-after` passed.
    pub protected_last_ready: usize,
    /// Pinned snapshots (left alone).
    pub pinned: usize,
    /// Pending snapshots not marked yet.
    pub pending: usize,
    /// Snapshots without a `retain` label (kept forever).
    pub unretained: usize,
    /// Snapshots being deleted (left alone).
    pub terminating: usize,
}

/// What `mark-and-delete` would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepPlan {
    /// Today in the plan's time zone, `YYYY-MM-DD`: the date marks set, and the sweep deletes
    /// snapshots whose `delete-after` is strictly before it.
    pub today: String,
    pub time_zone: String,
    pub policy: Policy,
    /// Snapshots to get `delete-after=<today>`.
    pub marks: Vec<LabelChange>,
    /// Snapshots to delete (unless braked).
    pub deletions: Vec<Deletion>,
    /// Snapshots left alone although due, and why.
    pub skipped: Vec<Skip>,
    /// More deletions than `policy.max_deletions`: nothing may be deleted.
    pub braked: bool,
    /// Things to log as warnings.
    pub warnings: Vec<String>,
    pub counts: SweepCounts,
}

/// What `prune` would change: [`RetainPlan`] and [`SweepPlan`] as one plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrunePlan {
    /// Today in the plan's time zone, `YYYY-MM-DD`.
    pub today: String,
    pub time_zone: String,
    pub policy: Policy,
    /// One patch per snapshot whose labels change: claims, removals and the mark together.
    pub changes: Vec<LabelChange>,
    /// Snapshots to delete.
    pub deletions: Vec<Deletion>,
    /// Snapshots kept against the policy or left alone, and why.
    pub skipped: Vec<Skip>,
    /// The brake: nothing may be applied.
    pub braked: bool,
    pub warnings: Vec<String>,
    /// The label half's counts.
    pub retain: RetainCounts,
    /// The sweep half's counts (on the labels as the label half leaves them).
    pub sweep: SweepCounts,
}

impl RetainPlan {
    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Applies the plan to in-memory records (matched by namespace and name) the way the API
    /// server applies the patches: for previews (a dry-run `retain` followed by a dry-run
    /// `mark-and-delete`) and tests.
    pub fn apply_to(&self, records: &mut [SnapshotRecord]) {
        apply_label_changes(self.changes.iter(), records);
    }
}

impl SweepPlan {
    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.marks.is_empty() && self.deletions.is_empty()
    }

    /// Whether the deletions may be applied (the plan is not braked).
    pub fn deletions_allowed(&self) -> bool {
        !self.braked
    }

    /// Applies the plan to in-memory records: the marks, and (unless braked) the deletions.
    /// For previews and tests.
    pub fn apply_to(&self, records: &mut Vec<SnapshotRecord>) {
        apply_label_changes(self.marks.iter(), records);
        if self.deletions_allowed() {
            remove_deleted(&self.deletions, records);
        }
    }
}

impl PrunePlan {
    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.deletions.is_empty()
    }

    /// Applies the plan to in-memory records, all or (braked) nothing. For previews and tests.
    pub fn apply_to(&self, records: &mut Vec<SnapshotRecord>) {
        if self.braked {
            return;
        }
        apply_label_changes(self.changes.iter(), records);
        remove_deleted(&self.deletions, records);
    }
}

fn remove_deleted(deletions: &[Deletion], records: &mut Vec<SnapshotRecord>) {
    if deletions.is_empty() {
        return;
    }
    let gone: HashSet<(&str, &str)> = deletions
        .iter()
        .map(|d| (d.target.namespace.as_str(), d.target.name.as_str()))
        .collect();
    records.retain(|r| !gone.contains(&(r.namespace.as_str(), r.name.as_str())));
}

fn apply_label_changes<'a>(
    changes: impl Iterator<Item = &'a LabelChange>,
    records: &mut [SnapshotRecord],
) {
    let by_name: HashMap<(&str, &str), &LabelChange> = changes
        .map(|c| ((c.target.namespace.as_str(), c.target.name.as_str()), c))
        .collect();
    if by_name.is_empty() {
        return;
    }
    for record in records {
        if let Some(change) = by_name.get(&(record.namespace.as_str(), record.name.as_str())) {
            apply_edits(record, change);
        }
    }
}

/// Applies one change's edits to a record's labels, as the merge patch does.
fn apply_edits(record: &mut SnapshotRecord, change: &LabelChange) {
    for edit in &change.edits {
        match &edit.to {
            Some(value) => record.labels.insert(edit.label.clone(), value.clone()),
            None => record.labels.remove(&edit.label),
        };
    }
}

// ---------------------------------------------------------------------------------------------
// Planning

/// The period label classes, shortest-lived first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Class {
    Daily,
    Weekly,
    Monthly,
}

impl Class {
    const ALL: [Class; 3] = [Class::Daily, Class::Weekly, Class::Monthly];

    fn key(self) -> &'static str {
        match self {
            Class::Daily => DAILY,
            Class::Weekly => WEEKLY,
            Class::Monthly => MONTHLY,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Class::Daily => "daily",
            Class::Weekly => "weekly",
            Class::Monthly => "monthly",
        }
    }

    fn keep(self, policy: &Policy) -> usize {
        match self {
            Class::Daily => policy.keep_daily,
            Class::Weekly => policy.keep_weekly,
            Class::Monthly => policy.keep_monthly,
        }
    }

    fn is_valid(self, value: &str) -> bool {
        match self {
            Class::Daily => parse_daily(value).is_some(),
            Class::Weekly => parse_weekly(value).is_some(),
            Class::Monthly => parse_monthly(value).is_some(),
        }
    }

    fn format(self) -> &'static str {
        match self {
            Class::Daily => "YYYY-MM-DD",
            Class::Weekly => "wNN or YYYY-wNN",
            Class::Monthly => "YYYY-MM",
        }
    }
}

/// Records with a time, sorted by (namespace, PVC, newest first, name), and those without.
fn sort_into_groups<'a>(
    records: impl IntoIterator<Item = &'a SnapshotRecord>,
) -> (Vec<&'a SnapshotRecord>, Vec<&'a SnapshotRecord>) {
    let (mut timed, untimed): (Vec<_>, Vec<_>) =
        records.into_iter().partition(|r| r.time.is_some());
    timed.sort_unstable_by(|a, b| {
        (&a.namespace, &a.pvc)
            .cmp(&(&b.namespace, &b.pvc))
            .then_with(|| b.time.cmp(&a.time))
            .then_with(|| a.name.cmp(&b.name))
    });
    (timed, untimed)
}

fn same_group(a: &&SnapshotRecord, b: &&SnapshotRecord) -> bool {
    a.namespace == b.namespace && a.pvc == b.pvc
}

/// The snapshots of a group that still exist for every purpose (not terminating), in order.
fn live<'a>(group: &[&'a SnapshotRecord]) -> Vec<&'a SnapshotRecord> {
    group
        .iter()
        .copied()
        .filter(|r| !r.state.is_terminating())
        .collect()
}

/// Index of the newest ready snapshot in a group sorted newest first.
fn newest_ready(group: &[&SnapshotRecord]) -> Option<usize> {
    group.iter().position(|r| r.state.is_ready())
}

/// Whether two snapshots of one PVC name were taken of the same volume: only when both carry
/// `backup-ns.sh/pvc-uid` can they be told apart (older snapshots count as the same volume).
fn same_volume(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// The snapshots a snapshot named `own` of volume `own_pvc_uid` is judged against when it claims
/// its daily/weekly/monthly periods: the *ready* snapshots of its group (same namespace and PVC
/// name, which the caller selects) other than itself, not terminating, and not of another volume
/// of that name (a PVC deleted and re-created). `create` asks this after its snapshot is ready;
/// `retain` asks it for a ready snapshot that missed its claim.
pub fn claim_holders<'a>(
    group: impl IntoIterator<Item = &'a SnapshotRecord>,
    own: &str,
    own_pvc_uid: Option<&str>,
) -> Vec<ExistingSnapshot> {
    group
        .into_iter()
        .filter(|r| r.name != own && r.state.is_ready())
        .filter(|r| same_volume(r.pvc_uid.as_deref(), own_pvc_uid))
        .filter_map(|r| Some(ExistingSnapshot::from_labels(r.time?, &r.labels)))
        .collect()
}

fn no_time_skip(r: &SnapshotRecord) -> (Skip, String) {
    let reason =
        "has neither status.creationTime nor metadata.creationTimestamp, so it cannot be ordered; \
         left alone"
            .to_owned();
    let warning = format!("{}/{}: {reason}", r.namespace, r.name);
    let skip = Skip {
        target: r.target(),
        kind: SkipKind::NoTime,
        reason,
    };
    (skip, warning)
}

fn format_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// `1st`, `2nd`, `3rd`, `4th`, …, `11th`, …, `21st`, …
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The period labels of one snapshot while a group is planned: `[daily, weekly, monthly]`.
type Periods = [Option<String>; 3];

fn periods_of(r: &SnapshotRecord) -> Periods {
    Class::ALL.map(|c| r.labels.get(c.key()).cloned())
}

/// Step 1 of `retain` for one group (newest first, terminating ones left out): a ready,
/// unpinned `daily_weekly_monthly` snapshot that carries no period label and no `delete-after`
/// missed its claim (its `create` gave up waiting before it became ready, or it was taken by a
/// tool that labels nothing): it claims, oldest first, the periods of its own time that no other
/// ready snapshot of its volume holds — exactly what `create` would have given it. Returns the
/// period labels after the claims.
fn claim_missed(group: &[&SnapshotRecord], tz: Tz) -> Vec<Periods> {
    let mut periods: Vec<Periods> = group.iter().map(|r| periods_of(r)).collect();
    for i in (0..group.len()).rev() {
        let r = group[i];
        let missed = r.state.is_ready()
            && !r.is_pinned()
            && r.is_daily_weekly_monthly()
            && periods[i].iter().all(Option::is_none)
            && !r.labels.contains_key(DELETE_AFTER);
        let Some(time) = r.time.filter(|_| missed) else {
            continue;
        };
        // The holders as planned so far (earlier claims count), not the labels as listed.
        let holders: Vec<ExistingSnapshot> = group
            .iter()
            .zip(&periods)
            .filter(|(h, _)| {
                h.name != r.name
                    && h.state.is_ready()
                    && same_volume(h.pvc_uid.as_deref(), r.pvc_uid.as_deref())
            })
            .filter_map(|(h, p)| {
                Some(ExistingSnapshot {
                    time: h.time?,
                    daily: p[0].clone(),
                    weekly: p[1].clone(),
                    monthly: p[2].clone(),
                })
            })
            .collect();
        let claim = claim_periods(time.with_timezone(&tz), &holders);
        periods[i] = [claim.daily, claim.weekly, claim.monthly];
    }
    periods
}

/// Plans `retain`: which daily/weekly/monthly labels ready snapshots that missed their claim
/// get, and which labels go, per (namespace, PVC). See the module documentation for the rules.
pub fn plan_retain(records: &[SnapshotRecord], now: DateTime<Tz>, policy: &Policy) -> RetainPlan {
    let mut plan = RetainPlan {
        today: format_date(now.date_naive()),
        time_zone: now.timezone().name().to_owned(),
        policy: policy.clone(),
        changes: Vec::new(),
        skipped: Vec::new(),
        braked: false,
        warnings: Vec::new(),
        counts: RetainCounts::default(),
    };
    let (timed, untimed) = sort_into_groups(records);
    for group in timed.chunk_by(same_group) {
        plan.counts.snapshots += group.len();
        let all = group.len();
        let group = live(group);
        plan.counts.terminating += all - group.len();
        let newest_ready = newest_ready(&group);
        let claimed = claim_missed(&group, now.timezone());
        // Ready snapshots seen so far carrying each class, newest first.
        let mut ready_seen = [0usize; 3];
        for (i, record) in group.iter().enumerate() {
            if record.is_pinned() {
                plan.counts.pinned += 1;
                continue;
            }
            if !record.is_daily_weekly_monthly() {
                plan.counts.ignored += 1;
                continue;
            }
            let mut edits = Vec::new();
            let mut carried = 0;
            let mut kept = 0;
            // The labels removed against the policy, in class order (for the last-ready rule).
            let mut removed: Vec<(Class, String, String)> = Vec::new();
            for (slot, class) in Class::ALL.into_iter().enumerate() {
                let listed = record.labels.get(class.key());
                let Some(value) = &claimed[i][slot] else {
                    continue;
                };
                carried += 1;
                if listed.is_some() && !class.is_valid(value) {
                    plan.warnings.push(format!(
                        "{}/{}: {} value {value:?} is not {}; it counts as a {} label by the \
                         snapshot's time",
                        record.namespace,
                        record.name,
                        class.key(),
                        class.format(),
                        class.name()
                    ));
                }
                let removal = match &record.state {
                    SnapshotState::Pending { .. } | SnapshotState::Terminating => None,
                    SnapshotState::Failed { .. } => Some(format!(
                        "{}: the snapshot {}; a failed snapshot keeps no retention label",
                        class.name(),
                        record.state
                    )),
                    SnapshotState::Ready { .. } => {
                        ready_seen[slot] += 1;
                        let nth = ready_seen[slot];
                        let keep = class.keep(policy);
                        (nth > keep).then(|| {
                            format!(
                                "{}: {} newest ready of {keep} kept",
                                class.name(),
                                ordinal(nth)
                            )
                        })
                    }
                };
                match removal {
                    Some(reason) => removed.push((class, value.clone(), reason)),
                    None => kept += 1,
                }
            }
            if carried > 0 && kept == 0 && Some(i) == newest_ready {
                // In class order, so the last one is the longest-lived label.
                if let Some((class, value, reason)) = removed.pop() {
                    kept += 1;
                    plan.counts.protected_last_ready += 1;
                    plan.skipped.push(Skip {
                        target: record.target(),
                        kind: SkipKind::NewestReady,
                        reason: format!(
                            "newest ready snapshot of PVC {}/{}: keeps its last retention label \
                             {}={value} (policy: {reason})",
                            record.namespace,
                            record.pvc,
                            class.key(),
                        ),
                    });
                }
            }
            if carried > 0 && record.state.is_pending() {
                plan.counts.pending_kept += 1;
            }
            let gone: HashSet<Class> = removed.iter().map(|(c, _, _)| *c).collect();
            for (class, value, reason) in removed {
                if record.labels.contains_key(class.key()) {
                    plan.counts.labels_removed += 1;
                    edits.push(LabelEdit::remove(class.key(), &value, reason));
                }
            }
            for (slot, class) in Class::ALL.into_iter().enumerate() {
                let (Some(value), None) = (&claimed[i][slot], record.labels.get(class.key()))
                else {
                    continue;
                };
                if gone.contains(&class) {
                    continue;
                }
                plan.counts.labels_claimed += 1;
                edits.push(LabelEdit {
                    label: class.key().to_owned(),
                    from: None,
                    to: Some(value.clone()),
                    reason: format!(
                        "{}: ready, and no other ready snapshot of this PVC holds {value} (its \
                         backup did not claim it)",
                        class.name()
                    ),
                });
            }
            plan.counts.labels_kept += kept;
            let had_period = record.has_period_label();
            if had_period && kept == 0 {
                plan.counts.stripped += 1;
            }
            if !edits.is_empty() {
                if !had_period {
                    plan.counts.claimed += 1;
                }
                plan.counts.relabelled += 1;
                plan.changes.push(LabelChange {
                    target: record.target(),
                    edits,
                });
            }
        }
    }
    for record in untimed {
        plan.counts.snapshots += 1;
        plan.counts.no_time += 1;
        let (skip, warning) = no_time_skip(record);
        plan.skipped.push(skip);
        plan.warnings.push(warning);
    }
    plan.braked = plan.counts.stripped > policy.max_deletions;
    plan
}

/// Plans `mark-and-delete`: which snapshots get `delete-after=<today>` and which are deleted.
/// See the module documentation for the rules.
pub fn plan_mark_and_delete(
    records: &[SnapshotRecord],
    now: DateTime<Tz>,
    policy: &Policy,
) -> SweepPlan {
    plan_sweep(records.iter(), now, policy)
}

/// [`plan_mark_and_delete`] over references, so `prune` can plan on the labels `retain` leaves
/// without copying every record.
fn plan_sweep<'a>(
    records: impl IntoIterator<Item = &'a SnapshotRecord>,
    now: DateTime<Tz>,
    policy: &Policy,
) -> SweepPlan {
    let today = now.date_naive();
    let mut plan = SweepPlan {
        today: format_date(today),
        time_zone: now.timezone().name().to_owned(),
        policy: policy.clone(),
        marks: Vec::new(),
        deletions: Vec::new(),
        skipped: Vec::new(),
        braked: false,
        warnings: Vec::new(),
        counts: SweepCounts::default(),
    };
    let (timed, untimed) = sort_into_groups(records);
    for group in timed.chunk_by(same_group) {
        plan.counts.snapshots += group.len();
        let all = group.len();
        let group = live(group);
        plan.counts.terminating += all - group.len();
        let newest_ready = newest_ready(&group);
        for (i, record) in group.iter().enumerate() {
            if record.is_pinned() {
                plan.counts.pinned += 1;
                continue;
            }
            let Some(retain) = record.labels.get(RETAIN) else {
                plan.counts.unretained += 1;
                continue;
            };
            let Some(value) = record.labels.get(DELETE_AFTER) else {
                if retain != Retain::DailyWeeklyMonthly.as_str() {
                    continue;
                }
                let reason = match &record.state {
                    SnapshotState::Failed { .. } => format!("the snapshot {}", record.state),
                    SnapshotState::Ready { .. } if !record.has_period_label() => {
                        "retain=daily_weekly_monthly and no daily, weekly or monthly label left"
                            .to_owned()
                    }
                    SnapshotState::Pending { .. } => {
                        plan.counts.pending += 1;
                        continue;
                    }
                    _ => continue,
                };
                plan.counts.marked += 1;
                plan.marks.push(LabelChange {
                    target: record.target(),
                    edits: vec![LabelEdit {
                        label: DELETE_AFTER.to_owned(),
                        from: None,
                        to: Some(plan.today.clone()),
                        reason,
                    }],
                });
                continue;
            };
            let Some(date) = parse_daily(value) else {
                let reason = format!("delete-after {value:?} is not a YYYY-MM-DD date; skipped");
                plan.warnings
                    .push(format!("{}/{}: {reason}", record.namespace, record.name));
                plan.counts.skipped_invalid += 1;
                plan.skipped.push(Skip {
                    target: record.target(),
                    kind: SkipKind::InvalidDeleteAfter,
                    reason,
                });
                continue;
            };
            if date >= today {
                continue;
            }
            if Some(i) == newest_ready && !policy.allow_deleting_last_ready {
                plan.counts.protected_last_ready += 1;
                plan.skipped.push(Skip {
                    target: record.target(),
                    kind: SkipKind::NewestReady,
                    reason: format!(
                        "newest ready snapshot of PVC {}/{}: kept although delete-after {value} \
                         is before {}",
                        record.namespace, record.pvc, plan.today
                    ),
                });
                continue;
            }
            plan.deletions.push(Deletion {
                target: record.target(),
                delete_after: value.clone(),
                bound_content: record.bound_content.clone(),
                reason: format!(
                    "retain={retain} and delete-after {value} is before {}",
                    plan.today
                ),
            });
        }
    }
    for record in untimed {
        plan.counts.snapshots += 1;
        plan.counts.skipped_invalid += 1;
        let (skip, warning) = no_time_skip(record);
        plan.skipped.push(skip);
        plan.warnings.push(warning);
    }
    plan.counts.deleted = plan.deletions.len();
    plan.counts.kept = plan.counts.snapshots - plan.counts.deleted;
    plan.braked = plan.deletions.len() > policy.max_deletions;
    plan
}

/// Plans `prune`: `retain` and `mark-and-delete` as one plan over one LIST. The sweep is planned
/// on the labels as `retain` leaves them, so a snapshot that loses its last period label is
/// marked in the same run, and its label edits (claims, removals, the mark) form one patch.
/// One brake covers the whole plan: more snapshots losing their last period label, or more
/// deletions, than [`Policy::max_deletions`] and nothing is applied.
pub fn plan_prune(records: &[SnapshotRecord], now: DateTime<Tz>, policy: &Policy) -> PrunePlan {
    let retain = plan_retain(records, now, policy);
    // The sweep sees the labels as retain leaves them: copies of the changed records only.
    let mut relabelled: HashMap<(&str, &str), SnapshotRecord> = HashMap::new();
    let by_key: HashMap<(&str, &str), &SnapshotRecord> = records
        .iter()
        .map(|r| ((r.namespace.as_str(), r.name.as_str()), r))
        .collect();
    for change in &retain.changes {
        let key = (
            change.target.namespace.as_str(),
            change.target.name.as_str(),
        );
        if let Some(&r) = by_key.get(&key) {
            let mut r = r.clone();
            apply_edits(&mut r, change);
            relabelled.insert(key, r);
        }
    }
    let sweep = plan_sweep(
        records.iter().map(|r| {
            relabelled
                .get(&(r.namespace.as_str(), r.name.as_str()))
                .unwrap_or(r)
        }),
        now,
        policy,
    );
    drop(relabelled);

    let mut changes = retain.changes;
    let mut index: HashMap<(String, String), usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.target.namespace.clone(), c.target.name.clone()), i))
        .collect();
    for mark in sweep.marks {
        let key = (mark.target.namespace.clone(), mark.target.name.clone());
        match index.get(&key) {
            Some(&i) => changes[i].edits.extend(mark.edits),
            None => {
                index.insert(key, changes.len());
                changes.push(mark);
            }
        }
    }
    let mut warnings = retain.warnings;
    let seen: HashSet<String> = warnings.iter().cloned().collect();
    warnings.extend(sweep.warnings.into_iter().filter(|w| !seen.contains(w)));
    let mut skipped = retain.skipped;
    skipped.extend(
        sweep
            .skipped
            .into_iter()
            .filter(|s| s.kind != SkipKind::NoTime),
    );
    // A snapshot deleted in this run needs no patch (and a patch would only change its
    // resourceVersion under the delete's precondition).
    let deleted: HashSet<(&str, &str)> = sweep
        .deletions
        .iter()
        .map(|d| (d.target.namespace.as_str(), d.target.name.as_str()))
        .collect();
    changes.retain(|c| !deleted.contains(&(c.target.namespace.as_str(), c.target.name.as_str())));
    let braked = retain.braked || sweep.braked;
    PrunePlan {
        today: sweep.today,
        time_zone: sweep.time_zone,
        policy: policy.clone(),
        changes,
        deletions: sweep.deletions,
        skipped,
        braked,
        warnings,
        retain: retain.counts,
        sweep: sweep.counts,
    }
}

// ---------------------------------------------------------------------------------------------
// Text rendering (dry runs)

fn write_changes(f: &mut fmt::Formatter<'_>, changes: &[LabelChange]) -> fmt::Result {
    for change in changes {
        let edits: Vec<String> = change.edits.iter().map(ToString::to_string).collect();
        writeln!(f, "would relabel {}: {}", change.target, edits.join("; "))?;
    }
    Ok(())
}

fn write_deletions(f: &mut fmt::Formatter<'_>, deletions: &[Deletion]) -> fmt::Result {
    for d in deletions {
        let content = match &d.bound_content {
            Some(c) => format!("content {c} gets deletionPolicy=Delete first"),
            None => "not bound to a content".to_owned(),
        };
        writeln!(
            f,
            "would delete {} ({content}) because {}",
            d.target, d.reason
        )?;
    }
    Ok(())
}

fn write_skips_and_warnings(
    f: &mut fmt::Formatter<'_>,
    skipped: &[Skip],
    warnings: &[String],
) -> fmt::Result {
    for skip in skipped {
        writeln!(f, "keep {}: {}", skip.target, skip.reason)?;
    }
    for warning in warnings {
        writeln!(f, "warning: {warning}")?;
    }
    Ok(())
}

impl fmt::Display for RetainCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} snapshots: {} to relabel ({} labels removed, {} claimed; {} lose their last), {} \
             labels kept, {} pinned, {} pending kept, {} protected as newest ready, {} not \
             daily_weekly_monthly, {} being deleted, {} without time",
            self.snapshots,
            self.relabelled,
            self.labels_removed,
            self.labels_claimed,
            self.stripped,
            self.labels_kept,
            self.pinned,
            self.pending_kept,
            self.protected_last_ready,
            self.ignored,
            self.terminating,
            self.no_time
        )
    }
}

impl fmt::Display for SweepCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} snapshots: {} to mark, {} to delete, {} kept, {} skipped as invalid, {} \
             protected as newest ready, {} pinned, {} pending, {} without retain, {} being \
             deleted",
            self.snapshots,
            self.marked,
            self.deleted,
            self.kept,
            self.skipped_invalid,
            self.protected_last_ready,
            self.pinned,
            self.pending,
            self.unretained,
            self.terminating
        )
    }
}

impl fmt::Display for RetainPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "retain plan for {} ({}): keep daily {}, weekly {}, monthly {}; at most {} snapshots \
             may lose their last period label",
            self.today,
            self.time_zone,
            self.policy.keep_daily,
            self.policy.keep_weekly,
            self.policy.keep_monthly,
            self.policy.max_deletions
        )?;
        write_changes(f, &self.changes)?;
        write_skips_and_warnings(f, &self.skipped, &self.warnings)?;
        if self.braked {
            writeln!(
                f,
                "BRAKE: {} snapshots would lose their last period label, more than the maximum \
                 of {}; nothing will be changed",
                self.counts.stripped, self.policy.max_deletions
            )?;
        }
        write!(f, "{}", self.counts)
    }
}

impl fmt::Display for SweepPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "mark-and-delete plan for {} ({}): at most {} deletions",
            self.today, self.time_zone, self.policy.max_deletions
        )?;
        for change in &self.marks {
            for edit in &change.edits {
                writeln!(f, "would mark {}: {edit}", change.target)?;
            }
        }
        write_deletions(f, &self.deletions)?;
        write_skips_and_warnings(f, &self.skipped, &self.warnings)?;
        if self.braked {
            writeln!(
                f,
                "BRAKE: {} deletions planned, more than the maximum of {}; nothing will be deleted",
                self.deletions.len(),
                self.policy.max_deletions
            )?;
        }
        write!(f, "{}", self.counts)
    }
}

impl fmt::Display for PrunePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "prune plan for {} ({}): keep daily {}, weekly {}, monthly {}; at most {} deletions \
             and {} snapshots losing their last period label",
            self.today,
            self.time_zone,
            self.policy.keep_daily,
            self.policy.keep_weekly,
            self.policy.keep_monthly,
            self.policy.max_deletions,
            self.policy.max_deletions
        )?;
        write_changes(f, &self.changes)?;
        write_deletions(f, &self.deletions)?;
        write_skips_and_warnings(f, &self.skipped, &self.warnings)?;
        if self.braked {
            writeln!(
                f,
                "BRAKE: {} deletions and {} snapshots losing their last period label planned, \
                 more than the maximum of {}; nothing will be changed or deleted",
                self.deletions.len(),
                self.retain.stripped,
                self.policy.max_deletions
            )?;
        }
        writeln!(f, "labels: {}", self.retain)?;
        write!(f, "sweep: {}", self.sweep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{claim_periods, ExistingSnapshot, Month, Week};
    use chrono::TimeZone;
    use chrono_tz::Europe::Vienna;
    use fixtures::Rec;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeSet;

    mod fixtures {
        use super::super::*;
        use crate::labels::{RETAIN_DAYS, TYPE};

        /// Builds a [`SnapshotRecord`]: `Rec::new("ns", "data").at("2025-01-08T10:00:00Z")
        /// .daily("2025-01-08").ready()`. Starts as the original labels a cronjob snapshot
        /// (`pvc`, `type=cronjob`, `retain=daily_weekly_monthly`), ready and bound.
        pub struct Rec {
            record: SnapshotRecord,
            bound: bool,
        }

        impl Rec {
            pub fn new(namespace: &str, pvc: &str) -> Rec {
                let labels = [
                    (PVC, pvc),
                    (TYPE, "cronjob"),
                    (RETAIN, "daily_weekly_monthly"),
                ]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
                Rec {
                    record: SnapshotRecord {
                        namespace: namespace.to_owned(),
                        name: String::new(),
                        uid: String::new(),
                        resource_version: "1".to_owned(),
                        pvc: pvc.to_owned(),
                        labels,
                        time: None,
                        pvc_uid: None,
                        state: SnapshotState::Ready { warning: None },
                        bound_content: None,
                    },
                    bound: true,
                }
            }

            pub fn at(self, rfc3339: &str) -> Rec {
                let time = DateTime::parse_from_rfc3339(rfc3339).expect("RFC 3339 time");
                self.at_time(time.with_timezone(&Utc))
            }

            pub fn at_time(mut self, time: DateTime<Utc>) -> Rec {
                self.record.time = Some(time);
                self
            }

            pub fn name(mut self, name: &str) -> Rec {
                self.record.name = name.to_owned();
                self
            }

            pub fn label(mut self, key: &str, value: &str) -> Rec {
                self.record.labels.insert(key.to_owned(), value.to_owned());
                self
            }

            pub fn without(mut self, key: &str) -> Rec {
                self.record.labels.remove(key);
                self
            }

            pub fn daily(self, value: &str) -> Rec {
                self.label(DAILY, value)
            }

            pub fn weekly(self, value: &str) -> Rec {
                self.label(WEEKLY, value)
            }

            pub fn monthly(self, value: &str) -> Rec {
                self.label(MONTHLY, value)
            }

            pub fn delete_after(self, value: &str) -> Rec {
                self.label(DELETE_AFTER, value)
            }

            pub fn pin(self) -> Rec {
                self.label(PIN, "")
            }

            /// `retain=days` with `retain-days` and `delete-after`, as an adhoc backup.
            pub fn days(self, days: u32, delete_after: &str) -> Rec {
                self.label(RETAIN, "days")
                    .label(TYPE, "adhoc")
                    .label(RETAIN_DAYS, &days.to_string())
                    .delete_after(delete_after)
            }

            pub fn ready(mut self) -> Rec {
                self.record.state = SnapshotState::Ready { warning: None };
                self
            }

            pub fn pending(mut self) -> Rec {
                self.record.state = SnapshotState::Pending { error: None };
                self
            }

            /// Not ready for longer than the grace: failed, with the last error.
            pub fn failed(mut self, message: &str) -> Rec {
                self.record.state = SnapshotState::Failed {
                    error: Some(message.to_owned()),
                };
                self
            }

            /// `metadata.deletionTimestamp` set.
            pub fn terminating(mut self) -> Rec {
                self.record.state = SnapshotState::Terminating;
                self
            }

            /// The `backup-ns.sh/pvc-uid` label.
            pub fn pvc_uid(mut self, uid: &str) -> Rec {
                self.record.pvc_uid = Some(uid.to_owned());
                self.label(PVC_UID, uid)
            }

            pub fn unbound(mut self) -> Rec {
                self.bound = false;
                self
            }

            pub fn build(self) -> SnapshotRecord {
                let mut r = self.record;
                if r.name.is_empty() {
                    r.name = match r.time {
                        Some(t) => format!("{}-{}-test", r.pvc, t.format("%Y-%m-%d-%H%M%S")),
                        None => format!("{}-no-time", r.pvc),
                    };
                }
                r.uid = format!("uid-{}-{}", r.namespace, r.name);
                if self.bound {
                    r.bound_content = Some(format!("snapcontent-{}", r.uid));
                }
                r
            }
        }

        impl From<Rec> for SnapshotRecord {
            fn from(rec: Rec) -> Self {
                rec.build()
            }
        }
    }

    fn records(recs: impl IntoIterator<Item = Rec>) -> Vec<SnapshotRecord> {
        recs.into_iter().map(Rec::build).collect()
    }

    fn vienna(rfc3339: &str) -> DateTime<Tz> {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("RFC 3339 time")
            .with_timezone(&Vienna)
    }

    fn policy(daily: usize, weekly: usize, monthly: usize) -> Policy {
        Policy {
            keep_daily: daily,
            keep_weekly: weekly,
            keep_monthly: monthly,
            ..Policy::default()
        }
    }

    fn change_names(changes: &[LabelChange]) -> Vec<&str> {
        changes.iter().map(|c| c.target.name.as_str()).collect()
    }

    fn deletion_names(plan: &SweepPlan) -> Vec<&str> {
        plan.deletions
            .iter()
            .map(|d| d.target.name.as_str())
            .collect()
    }

    fn prune_deletions(plan: &PrunePlan) -> Vec<&str> {
        plan.deletions
            .iter()
            .map(|d| d.target.name.as_str())
            .collect()
    }

    /// What the chart's old pruner did — `retain`, then `mark-and-delete` on its result — as
    /// one [`PrunePlan`] (patches not merged).
    fn prune_in_two_steps(recs: &[SnapshotRecord], now: DateTime<Tz>, p: &Policy) -> PrunePlan {
        let retain = plan_retain(recs, now, p);
        let mut after = recs.to_vec();
        retain.apply_to(&mut after);
        let sweep = plan_mark_and_delete(&after, now, p);
        PrunePlan {
            today: sweep.today,
            time_zone: sweep.time_zone,
            policy: p.clone(),
            changes: retain.changes.into_iter().chain(sweep.marks).collect(),
            deletions: sweep.deletions,
            skipped: Vec::new(),
            braked: retain.braked || sweep.braked,
            warnings: Vec::new(),
            retain: retain.counts,
            sweep: sweep.counts,
        }
    }

    fn removed(change: &LabelChange) -> Vec<(&str, &str)> {
        change
            .edits
            .iter()
            .map(|e| (e.label.as_str(), e.reason.as_str()))
            .collect()
    }

    /// `n` ready daily snapshots of ns/data, Jan 1.. of 2025 at 02:00 Vienna, named `d01`….
    fn dailies(n: u32) -> Vec<Rec> {
        (1..=n)
            .map(|d| {
                Rec::new("ns", "data")
                    .at(&format!("2025-01-{d:02}T01:00:00Z"))
                    .name(&format!("d{d:02}"))
                    .daily(&format!("2025-01-{d:02}"))
            })
            .collect()
    }

    // -----------------------------------------------------------------------------------------
    // retain

    #[test]
    fn retain_keeps_the_newest_n_ready_per_class() {
        let recs = records(dailies(10));
        let plan = plan_retain(
            &recs,
            vienna("2025-01-11T03:00:00+01:00"),
            &policy(7, 4, 12),
        );
        assert_eq!(change_names(&plan.changes), ["d03", "d02", "d01"]);
        assert_eq!(
            removed(&plan.changes[0]),
            [(DAILY, "daily: 8th newest ready of 7 kept")]
        );
        assert_eq!(
            removed(&plan.changes[2]),
            [(DAILY, "daily: 10th newest ready of 7 kept")]
        );
        assert_eq!(plan.counts.labels_kept, 7);
        assert_eq!(plan.counts.relabelled, 3);
        assert_eq!(plan.counts.labels_removed, 3);
        assert_eq!(plan.today, "2025-01-11");
        assert_eq!(plan.time_zone, "Europe/Vienna");
    }

    #[test]
    fn retain_orders_by_time_not_by_input_order_or_name() {
        let mut recs = records(dailies(4));
        recs.reverse();
        // Names that sort the other way round than the times.
        for (i, r) in recs.iter_mut().enumerate() {
            r.name = format!("z{i}");
        }
        let plan = plan_retain(
            &recs,
            vienna("2025-01-11T03:00:00+01:00"),
            &policy(2, 4, 12),
        );
        let gone: Vec<_> = plan
            .changes
            .iter()
            .map(|c| c.edits[0].from.clone().unwrap())
            .collect();
        assert_eq!(gone, ["2025-01-02", "2025-01-01"]);
    }

    #[test]
    fn retain_groups_by_namespace_and_pvc() {
        let mut recs = Vec::new();
        for ns in ["a", "b"] {
            for pvc in ["data", "uploads"] {
                for d in 1..=3 {
                    recs.push(
                        Rec::new(ns, pvc)
                            .at(&format!("2025-01-0{d}T01:00:00Z"))
                            .daily(&format!("2025-01-0{d}"))
                            .build(),
                    );
                }
            }
        }
        let plan = plan_retain(
            &recs,
            vienna("2025-01-04T03:00:00+01:00"),
            &policy(2, 4, 12),
        );
        let got: Vec<_> = plan
            .changes
            .iter()
            .map(|c| format!("{}/{}", c.target.namespace, c.target.name))
            .collect();
        assert_eq!(
            got,
            [
                "a/data-2025-01-01-010000-test",
                "a/uploads-2025-01-01-010000-test",
                "b/data-2025-01-01-010000-test",
                "b/uploads-2025-01-01-010000-test"
            ]
        );
    }

    #[test]
    fn pending_keeps_its_labels_without_a_slot_and_failed_loses_them() {
        let recs = records([
            Rec::new("ns", "data")
                .at("2025-01-05T01:00:00Z")
                .name("pending")
                .daily("2025-01-05")
                .pending(),
            Rec::new("ns", "data")
                .at("2025-01-04T01:00:00Z")
                .name("failed")
                .daily("2025-01-04")
                .weekly("w01")
                .failed("boom"),
            Rec::new("ns", "data")
                .at("2025-01-03T01:00:00Z")
                .name("r3")
                .daily("2025-01-03"),
            Rec::new("ns", "data")
                .at("2025-01-02T01:00:00Z")
                .name("r2")
                .daily("2025-01-02"),
            Rec::new("ns", "data")
                .at("2025-01-01T01:00:00Z")
                .name("r1")
                .daily("2025-01-01"),
        ]);
        let plan = plan_retain(
            &recs,
            vienna("2025-01-06T03:00:00+01:00"),
            &policy(2, 4, 12),
        );
        assert_eq!(change_names(&plan.changes), ["failed", "r1"]);
        let failed = removed(&plan.changes[0]);
        assert_eq!(failed.len(), 2);
        assert!(failed[0].1.contains("(last error: boom)"), "{failed:?}");
        assert_eq!(failed[1].0, WEEKLY);
        assert_eq!(
            removed(&plan.changes[1]),
            [(DAILY, "daily: 3rd newest ready of 2 kept")]
        );
        assert_eq!(plan.counts.pending_kept, 1);
    }

    #[test]
    fn pinned_snapshots_are_never_changed_and_take_no_slot() {
        let recs = records([
            Rec::new("ns", "data")
                .at("2025-01-04T01:00:00Z")
                .name("pin4")
                .daily("x")
                .pin(),
            Rec::new("ns", "data")
                .at("2025-01-03T01:00:00Z")
                .name("r3")
                .daily("2025-01-03"),
            Rec::new("ns", "data")
                .at("2025-01-02T01:00:00Z")
                .name("r2")
                .daily("2025-01-02"),
            Rec::new("ns", "data")
                .at("2025-01-01T01:00:00Z")
                .name("pin1")
                .daily("2025-01-01")
                .failed("x")
                .label(PIN, "forever"),
        ]);
        let plan = plan_retain(
            &recs,
            vienna("2025-01-06T03:00:00+01:00"),
            &policy(1, 4, 12),
        );
        assert_eq!(change_names(&plan.changes), ["r2"]);
        assert_eq!(plan.counts.pinned, 2);
        // A garbage value on a pinned snapshot is not even looked at.
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    }

    #[test]
    fn the_newest_ready_snapshot_keeps_its_longest_lived_label() {
        let recs = records([
            Rec::new("ns", "data")
                .at("2025-01-05T01:00:00Z")
                .name("pending")
                .daily("2025-01-05")
                .pending(),
            Rec::new("ns", "data")
                .at("2025-01-04T01:00:00Z")
                .name("newest-ready")
                .daily("2025-01-04")
                .weekly("w01"),
            Rec::new("ns", "data")
                .at("2025-01-03T01:00:00Z")
                .name("older")
                .daily("2025-01-03"),
        ]);
        let plan = plan_retain(&recs, vienna("2025-01-06T03:00:00+01:00"), &policy(0, 0, 0));
        assert_eq!(change_names(&plan.changes), ["newest-ready", "older"]);
        assert_eq!(
            removed(&plan.changes[0]),
            [(DAILY, "daily: 1st newest ready of 0 kept")]
        );
        assert_eq!(plan.counts.protected_last_ready, 1);
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].kind, SkipKind::NewestReady);
        assert!(
            plan.skipped[0].reason.contains("weekly=w01"),
            "{}",
            plan.skipped[0].reason
        );
    }

    #[test]
    fn weekly_formats_are_read_alike_and_ordered_by_time_across_the_year() {
        // Dec 29 2025 is in ISO week 1 of 2026; the yearless "w01" sorts before "w52" as text.
        let recs = records([
            Rec::new("ns", "data")
                .at("2026-01-05T01:00:00Z")
                .name("jan05")
                .weekly("w02"),
            Rec::new("ns", "data")
                .at("2025-12-29T01:00:00Z")
                .name("dec29")
                .weekly("w01"),
            Rec::new("ns", "data")
                .at("2025-12-22T01:00:00Z")
                .name("dec22")
                .weekly("2025-w52"),
            Rec::new("ns", "data")
                .at("2025-12-15T01:00:00Z")
                .name("dec15")
                .weekly("w51"),
            Rec::new("ns", "data")
                .at("2025-12-08T01:00:00Z")
                .name("dec08")
                .weekly("2025-w50"),
        ]);
        let plan = plan_retain(
            &recs,
            vienna("2026-01-06T03:00:00+01:00"),
            &policy(7, 3, 12),
        );
        assert_eq!(change_names(&plan.changes), ["dec15", "dec08"]);
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    }

    #[test]
    fn garbage_period_values_count_by_time_and_are_warned_about() {
        let recs = records([
            Rec::new("ns", "data")
                .at("2025-01-03T01:00:00Z")
                .name("new")
                .daily("garbage"),
            Rec::new("ns", "data")
                .at("2025-01-02T01:00:00Z")
                .name("mid")
                .daily("2025-01-02")
                .weekly("w99"),
            Rec::new("ns", "data")
                .at("2025-01-01T01:00:00Z")
                .name("old")
                .daily("2025-13-01")
                .monthly("2025-13"),
        ]);
        let plan = plan_retain(
            &recs,
            vienna("2025-01-04T03:00:00+01:00"),
            &policy(2, 4, 12),
        );
        assert_eq!(change_names(&plan.changes), ["old"]);
        assert_eq!(
            removed(&plan.changes[0]).len(),
            1,
            "monthly stays: 1st of 12"
        );
        assert_eq!(plan.warnings.len(), 4, "{:?}", plan.warnings);
        assert!(plan.warnings[0].contains("ns/new: backup-ns.sh/daily value \"garbage\""));
    }

    #[test]
    fn retain_leaves_other_retain_values_and_untimed_snapshots_alone() {
        let mut no_time = Rec::new("ns", "data").daily("2025-01-01").build();
        no_time.time = None;
        let recs = vec![
            Rec::new("ns", "data")
                .at("2025-01-03T01:00:00Z")
                .name("days")
                .daily("2025-01-03")
                .days(3, "2025-01-06")
                .build(),
            Rec::new("ns", "data")
                .at("2025-01-02T01:00:00Z")
                .name("unretained")
                .daily("2025-01-02")
                .without(RETAIN)
                .build(),
            Rec::new("ns", "data")
                .at("2025-01-01T01:00:00Z")
                .name("dwm")
                .daily("2025-01-01")
                .build(),
            no_time,
        ];
        let plan = plan_retain(
            &recs,
            vienna("2025-01-04T03:00:00+01:00"),
            &policy(1, 4, 12),
        );
        assert!(plan.is_empty(), "{plan}");
        assert_eq!(plan.counts.ignored, 2);
        assert_eq!(plan.counts.no_time, 1);
        assert_eq!(plan.counts.labels_kept, 1);
        assert_eq!(plan.skipped[0].kind, SkipKind::NoTime);
    }

    #[test]
    fn retain_never_touches_delete_after() {
        let recs = records([
            Rec::new("ns", "data")
                .at("2025-01-03T01:00:00Z")
                .name("new")
                .daily("2025-01-03"),
            // Marked on Jan 2, then someone added daily by hand.
            Rec::new("ns", "data")
                .at("2025-01-01T01:00:00Z")
                .name("hand")
                .daily("2025-01-01")
                .delete_after("2025-01-02"),
        ]);
        let now = vienna("2025-01-04T03:00:00+01:00");
        let plan = plan_retain(&recs, now, &policy(1, 4, 12));
        assert_eq!(change_names(&plan.changes), ["hand"]);
        let labels: Vec<_> = plan.changes[0]
            .edits
            .iter()
            .map(|e| e.label.as_str())
            .collect();
        assert_eq!(labels, [DAILY]);
        // The date is honoured as written: the sweep deletes it, it is not marked afresh.
        let mut after = recs.clone();
        plan.apply_to(&mut after);
        let sweep = plan_mark_and_delete(&after, now, &Policy::default());
        assert_eq!(deletion_names(&sweep), ["hand"]);
        assert!(sweep.marks.is_empty());
    }

    /// Issue 7 B: an operator's `kubectl label vs/x backup-ns.sh/delete-after=…` on a snapshot
    /// that still holds period labels deletes it after that date, as the original's README says.
    #[test]
    fn a_hand_set_delete_after_deletes_a_labelled_snapshot_after_that_date() {
        let recs = records([
            Rec::new("ns", "data")
                .at("2026-11-30T01:00:00Z")
                .name("newest")
                .daily("2026-11-30"),
            Rec::new("ns", "data")
                .at("2026-11-01T01:00:00Z")
                .name("marked-by-hand")
                .daily("2026-11-01")
                .weekly("w44")
                .monthly("2026-11")
                .delete_after("2026-11-28"),
        ]);
        let now = vienna("2026-12-01T00:30:00+01:00");
        for plan in [
            plan_prune(&recs, now, &Policy::default()),
            prune_in_two_steps(&recs, now, &Policy::default()),
        ] {
            assert_eq!(prune_deletions(&plan), ["marked-by-hand"], "{plan}");
            assert!(
                !plan
                    .changes
                    .iter()
                    .flat_map(|c| &c.edits)
                    .any(|e| e.label == DELETE_AFTER),
                "{plan}"
            );
        }
        // Not before the date: on Nov 28 itself it is kept.
        let plan = plan_prune(
            &recs,
            vienna("2026-11-28T23:00:00+01:00"),
            &Policy::default(),
        );
        assert!(plan.deletions.is_empty(), "{plan}");
    }

    /// Issue 7 B: a `delete-after` moved *later* by an operator survives the loss of the last
    /// period label: it is not re-marked with today and not deleted before the date asked for.
    #[test]
    fn a_delete_after_moved_later_is_kept_when_the_last_period_label_goes() {
        let mut recs = records(dailies(8));
        let oldest = recs.iter_mut().find(|r| r.name == "d01").unwrap();
        oldest
            .labels
            .insert(DELETE_AFTER.to_owned(), "2025-01-20".to_owned());
        let now = vienna("2025-01-09T03:00:00+01:00");
        let plan = plan_prune(&recs, now, &policy(7, 4, 12));
        assert_eq!(change_names(&plan.changes), ["d01"]);
        assert_eq!(
            plan.changes[0].edits,
            [LabelEdit::remove(
                DAILY,
                "2025-01-01",
                "daily: 8th newest ready of 7 kept".into()
            )]
        );
        assert!(plan.deletions.is_empty(), "{plan}");
        let mut after = recs.clone();
        plan.apply_to(&mut after);
        // Every night until the date: nothing to do; the day after it: deleted.
        for day in 10..=20 {
            let now = vienna(&format!("2025-01-{day:02}T03:00:00+01:00"));
            let p = plan_prune(&after, now, &policy(7, 4, 12));
            assert!(p.is_empty(), "Jan {day}: {p}");
        }
        let p = plan_prune(
            &after,
            vienna("2025-01-21T03:00:00+01:00"),
            &policy(7, 4, 12),
        );
        assert_eq!(prune_deletions(&p), ["d01"]);
    }

    /// Issue 7 C14: `RETAIN_LAST_DAILY=0` by mistake would strip the whole cluster in one run.
    #[test]
    fn retain_brakes_when_too_many_snapshots_lose_their_last_label() {
        let recs = records(dailies(10));
        let now = vienna("2025-01-11T03:00:00+01:00");
        let zero = Policy {
            keep_daily: 0,
            max_deletions: 8,
            ..Policy::default()
        };
        let plan = plan_retain(&recs, now, &zero);
        // The newest keeps its last label; the other nine would lose theirs.
        assert_eq!(plan.counts.stripped, 9);
        assert!(plan.braked, "{plan}");
        assert!(plan.to_string().contains("BRAKE: 9 snapshots would lose"));
        let prune = plan_prune(&recs, now, &zero);
        assert!(prune.braked);
        let mut after = recs.clone();
        prune.apply_to(&mut after);
        assert_eq!(after, recs, "a braked prune changes nothing");
        let plan = plan_retain(
            &recs,
            now,
            &Policy {
                max_deletions: 9,
                ..zero
            },
        );
        assert!(!plan.braked);
        // Labels removed that leave another one do not count.
        let recs = records(dailies(10).into_iter().map(|r| r.weekly("w01")));
        let plan = plan_retain(&recs, now, &zero);
        assert_eq!(plan.counts.stripped, 6, "{plan}");
    }

    /// Issue 7 A: a snapshot whose backup gave up waiting joins retention once it is ready.
    #[test]
    fn a_ready_snapshot_that_missed_its_claim_claims_the_free_periods() {
        let recs = records([
            // Cut for an hour: its create timed out, so it has no period label; ready now.
            Rec::new("ns", "data")
                .at("2025-01-06T01:00:00Z")
                .name("late"),
            // The next day's backup could not see it as ready and claimed its own periods.
            Rec::new("ns", "data")
                .at("2025-01-07T01:00:00Z")
                .name("next")
                .daily("2025-01-07"),
            Rec::new("ns", "data")
                .at("2025-01-05T01:00:00Z")
                .name("prev")
                .daily("2025-01-05")
                .weekly("w01")
                .monthly("2025-01"),
            // A second backup of Jan 5: the day is held, nothing to claim; it gets marked.
            Rec::new("ns", "data")
                .at("2025-01-05T13:00:00Z")
                .name("second"),
            // Still cutting: not yet.
            Rec::new("ns", "data")
                .at("2025-01-04T01:00:00Z")
                .name("pending")
                .pending(),
        ]);
        let now = vienna("2025-01-08T00:30:00+01:00");
        let plan = plan_prune(&recs, now, &Policy::default());
        let late = plan
            .changes
            .iter()
            .find(|c| c.target.name == "late")
            .expect("late is relabelled");
        let set: Vec<_> = late
            .edits
            .iter()
            .map(|e| (e.label.as_str(), e.to.as_deref().unwrap()))
            .collect();
        // Monday Jan 6 starts ISO week 2: the day and the week are free, the month is held.
        assert_eq!(set, [(DAILY, "2025-01-06"), (WEEKLY, "w02")]);
        assert_eq!(plan.retain.claimed, 1);
        assert_eq!(plan.retain.labels_claimed, 2);
        let marked: Vec<_> = plan
            .changes
            .iter()
            .filter(|c| c.edits.iter().any(|e| e.label == DELETE_AFTER))
            .map(|c| c.target.name.as_str())
            .collect();
        assert_eq!(marked, ["second"]);
        // Claimed labels take their slot like any: with one daily kept, only the newest keeps it.
        let plan = plan_retain(&recs, now, &policy(1, 4, 12));
        let late = plan
            .changes
            .iter()
            .find(|c| c.target.name == "late")
            .unwrap();
        assert_eq!(late.edits.len(), 1, "{plan}");
        assert_eq!(late.edits[0].label, WEEKLY);
    }

    /// Issue 7 A: a PVC deleted and re-created under its name is another volume; snapshots of
    /// the old one do not hold the new one's periods.
    #[test]
    fn claims_are_judged_per_volume_when_the_pvc_uid_is_known() {
        let old = Rec::new("ns", "data")
            .at("2025-01-06T01:00:00Z")
            .name("old-volume")
            .pvc_uid("uid-old")
            .daily("2025-01-06")
            .weekly("w02")
            .monthly("2025-01");
        let unknown = Rec::new("ns", "data")
            .at("2025-01-06T00:30:00Z")
            .name("before-upgrade")
            .daily("2025-01-06");
        let new = Rec::new("ns", "data")
            .at("2025-01-06T09:00:00Z")
            .name("new-volume")
            .pvc_uid("uid-new");
        let recs = records([old, unknown, new]);
        let holders = claim_holders(&recs, "new-volume", Some("uid-new"));
        assert_eq!(
            holders.len(),
            1,
            "the old volume's snapshot is not a holder"
        );
        assert_eq!(holders[0].daily.as_deref(), Some("2025-01-06"));
        let claim = claim_periods(vienna("2025-01-06T10:00:00+01:00"), &holders);
        assert_eq!(claim.daily, None);
        assert_eq!(claim.weekly.as_deref(), Some("w02"));
        assert_eq!(claim.monthly.as_deref(), Some("2025-01"));
        // Without a uid of its own, every snapshot of the name counts.
        assert_eq!(claim_holders(&recs, "new-volume", None).len(), 2);
    }

    /// Issue 7 A: a terminating snapshot is gone for every purpose.
    #[test]
    fn a_terminating_snapshot_is_never_newest_ready_holds_nothing_and_is_left_alone() {
        let recs = records([
            Rec::new("ns", "data")
                .at("2025-01-10T01:00:00Z")
                .name("terminating")
                .daily("2025-01-10")
                .delete_after("2025-01-01")
                .terminating(),
            Rec::new("ns", "data")
                .at("2025-01-09T01:00:00Z")
                .name("ready")
                .delete_after("2025-01-01"),
            Rec::new("ns", "data")
                .at("2025-01-08T01:00:00Z")
                .name("older")
                .delete_after("2025-01-01"),
            Rec::new("ns", "data")
                .at("2025-01-07T01:00:00Z")
                .name("terminating-unlabelled")
                .terminating(),
        ]);
        let now = vienna("2025-01-10T03:00:00+01:00");
        let plan = plan_prune(&recs, now, &Policy::default());
        // "ready" is the newest ready one (the terminating one is not), so it survives.
        assert_eq!(prune_deletions(&plan), ["older"]);
        assert!(plan.changes.is_empty(), "{plan}");
        assert_eq!(plan.sweep.terminating, 2);
        assert_eq!(plan.retain.terminating, 2);
        assert!(claim_holders(&recs, "x", None)
            .iter()
            .all(|h| h.daily.is_none()));
    }

    // -----------------------------------------------------------------------------------------
    // mark-and-delete

    #[test]
    fn marks_only_unlabelled_unpinned_settled_daily_weekly_monthly_snapshots() {
        let recs = records([
            Rec::new("ns", "data")
                .at("2025-03-30T10:00:00Z")
                .name("mark-me"),
            Rec::new("ns", "data")
                .at("2025-03-30T09:00:00Z")
                .name("failed")
                .failed("x"),
            Rec::new("ns", "data")
                .at("2025-03-30T08:00:00Z")
                .name("pending")
                .pending(),
            Rec::new("ns", "data")
                .at("2025-03-30T07:00:00Z")
                .name("labelled")
                .monthly("2025-03"),
            Rec::new("ns", "data")
                .at("2025-03-30T06:00:00Z")
                .name("marked")
                .delete_after("2025-03-31"),
            Rec::new("ns", "data")
                .at("2025-03-30T05:00:00Z")
                .name("pinned")
                .pin(),
            Rec::new("ns", "data")
                .at("2025-03-30T04:00:00Z")
                .name("days")
                .days(30, "2025-04-29"),
            Rec::new("ns", "data")
                .at("2025-03-30T03:00:00Z")
                .name("unretained")
                .without(RETAIN),
            Rec::new("ns", "data")
                .at("2025-03-30T02:00:00Z")
                .name("odd-retain")
                .label(RETAIN, "weekly"),
        ]);
        // 00:30 on Mar 31 in Vienna (summer time since the night before) is still Mar 30 in UTC.
        let now = vienna("2025-03-30T22:30:00Z");
        let plan = plan_mark_and_delete(&recs, now, &Policy::default());
        assert_eq!(change_names(&plan.marks), ["mark-me", "failed"]);
        assert_eq!(
            plan.marks[0].edits,
            [LabelEdit {
                label: DELETE_AFTER.into(),
                from: None,
                to: Some("2025-03-31".into()),
                reason: "retain=daily_weekly_monthly and no daily, weekly or monthly label left"
                    .into(),
            }]
        );
        assert!(plan.deletions.is_empty());
        let c = &plan.counts;
        assert_eq!((c.marked, c.pending, c.pinned, c.unretained), (2, 1, 1, 1));
        assert_eq!(c.kept, 9);
    }

    #[test]
    fn sweep_deletes_strictly_before_today_bound_or_not() {
        let recs = records([
            Rec::new("ns", "data")
                .at("2025-01-10T01:00:00Z")
                .name("newest")
                .daily("2025-01-10"),
            Rec::new("ns", "data")
                .at("2025-01-09T01:00:00Z")
                .name("tomorrow")
                .delete_after("2025-01-11"),
            Rec::new("ns", "data")
                .at("2025-01-08T01:00:00Z")
                .name("today")
                .delete_after("2025-01-10"),
            Rec::new("ns", "data")
                .at("2025-01-07T01:00:00Z")
                .name("yesterday")
                .delete_after("2025-01-09"),
            Rec::new("ns", "data")
                .at("2025-01-06T01:00:00Z")
                .name("unbound")
                .delete_after("2025-01-07")
                .unbound(),
            Rec::new("ns", "data")
                .at("2025-01-05T01:00:00Z")
                .name("days")
                .days(3, "2025-01-08"),
            Rec::new("ns", "data")
                .at("2025-01-04T01:00:00Z")
                .name("odd-retain")
                .label(RETAIN, "x")
                .delete_after("2025-01-01"),
        ]);
        let plan = plan_mark_and_delete(
            &recs,
            vienna("2025-01-10T03:00:00+01:00"),
            &Policy::default(),
        );
        assert_eq!(
            deletion_names(&plan),
            ["yesterday", "unbound", "days", "odd-retain"]
        );
        let d = &plan.deletions[0];
        assert_eq!(
            d.bound_content.as_deref(),
            Some("snapcontent-uid-ns-yesterday")
        );
        assert_eq!(d.delete_after, "2025-01-09");
        assert_eq!(d.target.uid, "uid-ns-yesterday");
        assert_eq!(
            d.reason,
            "retain=daily_weekly_monthly and delete-after 2025-01-09 is before 2025-01-10"
        );
        assert_eq!(plan.deletions[1].bound_content, None);
        assert!(!plan.braked);
        assert_eq!((plan.counts.deleted, plan.counts.kept), (4, 3));
    }

    #[test]
    fn sweep_never_deletes_pinned_unretained_or_invalid_dates() {
        let recs = records([
            Rec::new("ns", "data")
                .at("2025-01-10T01:00:00Z")
                .name("newest")
                .daily("2025-01-10"),
            Rec::new("ns", "data")
                .at("2025-01-09T01:00:00Z")
                .name("pinned")
                .delete_after("2025-01-01")
                .pin(),
            Rec::new("ns", "data")
                .at("2025-01-08T01:00:00Z")
                .name("unretained")
                .delete_after("2025-01-01")
                .without(RETAIN),
            Rec::new("ns", "data")
                .at("2025-01-07T01:00:00Z")
                .name("feb30")
                .delete_after("2025-02-30"),
            Rec::new("ns", "data")
                .at("2025-01-06T01:00:00Z")
                .name("soon")
                .delete_after("soon"),
            Rec::new("ns", "data")
                .at("2025-01-05T01:00:00Z")
                .name("empty")
                .delete_after(""),
        ]);
        let plan = plan_mark_and_delete(
            &recs,
            vienna("2025-01-10T03:00:00+01:00"),
            &Policy::default(),
        );
        assert!(plan.is_empty(), "{plan}");
        assert_eq!(plan.counts.skipped_invalid, 3);
        assert_eq!(plan.warnings.len(), 3);
        assert!(plan
            .skipped
            .iter()
            .all(|s| s.kind == SkipKind::InvalidDeleteAfter));
        assert!(plan.warnings[0]
            .contains("ns/feb30: delete-after \"2025-02-30\" is not a YYYY-MM-DD date"));
    }

    #[test]
    fn sweep_keeps_the_newest_ready_snapshot_unless_allowed() {
        let recs = records([
            Rec::new("ns", "data")
                .at("2025-01-10T01:00:00Z")
                .name("failed")
                .failed("x")
                .delete_after("2025-01-01"),
            Rec::new("ns", "data")
                .at("2025-01-09T01:00:00Z")
                .name("pending")
                .pending(),
            Rec::new("ns", "data")
                .at("2025-01-08T01:00:00Z")
                .name("ready")
                .delete_after("2025-01-01"),
            Rec::new("ns", "data")
                .at("2025-01-07T01:00:00Z")
                .name("older")
                .delete_after("2025-01-01"),
            Rec::new("ns", "other")
                .at("2025-01-07T01:00:00Z")
                .name("other")
                .days(1, "2025-01-01"),
        ]);
        let now = vienna("2025-01-10T03:00:00+01:00");
        let plan = plan_mark_and_delete(&recs, now, &Policy::default());
        assert_eq!(deletion_names(&plan), ["failed", "older"]);
        assert_eq!(plan.counts.protected_last_ready, 2);
        let kept: Vec<_> = plan
            .skipped
            .iter()
            .map(|s| (s.target.name.as_str(), s.kind))
            .collect();
        assert_eq!(
            kept,
            [
                ("ready", SkipKind::NewestReady),
                ("other", SkipKind::NewestReady)
            ]
        );
        assert!(plan.skipped[0]
            .reason
            .starts_with("newest ready snapshot of PVC ns/data"));

        let allow = Policy {
            allow_deleting_last_ready: true,
            ..Policy::default()
        };
        let plan = plan_mark_and_delete(&recs, now, &allow);
        assert_eq!(deletion_names(&plan), ["failed", "ready", "older", "other"]);
    }

    #[test]
    fn a_hand_added_period_label_does_not_cancel_a_delete_after() {
        let recs = records([
            Rec::new("ns", "data")
                .at("2025-01-10T01:00:00Z")
                .name("newest")
                .daily("2025-01-10"),
            Rec::new("ns", "data")
                .at("2025-01-05T01:00:00Z")
                .name("hand")
                .delete_after("2025-01-06")
                .daily("2025-01-05"),
            Rec::new("ns", "data")
                .at("2025-01-04T01:00:00Z")
                .name("days")
                .days(1, "2025-01-05")
                .daily("2025-01-04"),
        ]);
        let now = vienna("2025-01-10T03:00:00+01:00");
        let plan = plan_mark_and_delete(&recs, now, &Policy::default());
        assert!(plan.marks.is_empty());
        // To keep a marked snapshot, remove its delete-after (README: manual edits).
        assert_eq!(deletion_names(&plan), ["hand", "days"]);
    }

    #[test]
    fn a_hand_removed_delete_after_is_marked_again_on_the_next_run() {
        let newest = Rec::new("ns", "data")
            .at("2025-01-10T01:00:00Z")
            .name("newest")
            .daily("2025-01-10");
        // Marked on Jan 8, delete-after removed by hand on Jan 9.
        let saved = Rec::new("ns", "data")
            .at("2025-01-07T01:00:00Z")
            .name("saved");
        let mut recs = records([newest, saved]);
        let jan10 = vienna("2025-01-10T03:00:00+01:00");
        let plan = plan_mark_and_delete(&recs, jan10, &Policy::default());
        assert_eq!(change_names(&plan.marks), ["saved"]);
        assert!(plan.deletions.is_empty());
        plan.apply_to(&mut recs);
        let plan = plan_mark_and_delete(
            &recs,
            vienna("2025-01-11T03:00:00+01:00"),
            &Policy::default(),
        );
        assert_eq!(deletion_names(&plan), ["saved"]);
    }

    #[test]
    fn the_brake_triggers_exactly_above_max_deletions() {
        let mut recs = records((1..=5).map(|d| {
            Rec::new("ns", "data")
                .at(&format!("2025-01-0{d}T01:00:00Z"))
                .delete_after("2025-01-06")
        }));
        recs.push(
            Rec::new("ns", "data")
                .at("2025-01-09T01:00:00Z")
                .name("newest")
                .daily("x")
                .build(),
        );
        recs.push(
            Rec::new("ns", "data")
                .at("2025-01-08T01:00:00Z")
                .name("to-mark")
                .build(),
        );
        let now = vienna("2025-01-10T03:00:00+01:00");
        for (max, braked) in [(6, false), (5, false), (4, true), (0, true)] {
            let policy = Policy {
                max_deletions: max,
                ..Policy::default()
            };
            let plan = plan_mark_and_delete(&recs, now, &policy);
            assert_eq!(plan.deletions.len(), 5);
            assert_eq!(plan.braked, braked, "max {max}");
            assert_eq!(plan.deletions_allowed(), !braked);
            let mut after = recs.clone();
            plan.apply_to(&mut after);
            assert_eq!(after.len(), if braked { 7 } else { 2 });
            // Marks are applied either way.
            assert!(after
                .iter()
                .any(|r| r.name == "to-mark" && r.labels.contains_key(DELETE_AFTER)));
            assert_eq!(
                plan.to_string().contains("BRAKE: 5 deletions planned"),
                braked
            );
        }
    }

    // -----------------------------------------------------------------------------------------
    // Plumbing: records from snapshots, patches, rendering

    #[test]
    fn record_from_snapshot() {
        let vs: VolumeSnapshot = serde_json::from_value(serde_json::json!({
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "metadata": {
                "name": "data-2025-01-08-164308-dcdkes", "namespace": "shop", "uid": "u-1",
                "resourceVersion": "42", "creationTimestamp": "2025-01-08T16:43:10Z",
                "labels": {"backup-ns.sh/pvc": "data", "backup-ns.sh/retain": "daily_weekly_monthly"}
            },
            "spec": {"source": {"persistentVolumeClaimName": "ignored-when-labelled"}},
            "status": {"creationTime": "2025-01-08T16:43:08Z", "readyToUse": true,
                       "boundVolumeSnapshotContentName": "snapcontent-1"}
        }))
        .unwrap();
        let now = DateTime::parse_from_rfc3339("2025-01-09T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let r = SnapshotRecord::from_snapshot(&vs, now);
        assert_eq!(
            (
                r.namespace.as_str(),
                r.name.as_str(),
                r.uid.as_str(),
                r.resource_version.as_str()
            ),
            ("shop", "data-2025-01-08-164308-dcdkes", "u-1", "42")
        );
        assert_eq!(r.pvc, "data");
        assert_eq!(r.time.unwrap().to_rfc3339(), "2025-01-08T16:43:08+00:00");
        assert!(r.state.is_ready());
        assert_eq!(r.pvc_uid, None);
        assert_eq!(r.bound_content.as_deref(), Some("snapcontent-1"));
        assert_eq!(r.labels.len(), 2);

        let vs: VolumeSnapshot = serde_json::from_value(serde_json::json!({
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": "x", "namespace": "shop"},
            "spec": {"source": {"persistentVolumeClaimName": "uploads"}}
        }))
        .unwrap();
        let r = SnapshotRecord::from_snapshot(&vs, now);
        assert_eq!(
            (r.pvc.as_str(), r.time, r.state, r.bound_content),
            (
                "uploads",
                None,
                SnapshotState::Pending { error: None },
                None
            )
        );
    }

    #[test]
    fn merge_patches_remove_with_null_and_carry_the_resource_version() {
        let recs = records([
            Rec::new("ns", "data")
                .at("2025-01-02T01:00:00Z")
                .daily("2025-01-02"),
            Rec::new("ns", "data")
                .at("2025-01-01T01:00:00Z")
                .daily("2025-01-01")
                .weekly("w01"),
        ]);
        let now = vienna("2025-01-03T03:00:00+01:00");
        let plan = plan_retain(&recs, now, &policy(1, 0, 12));
        assert_eq!(
            plan.changes[0].merge_patch(),
            serde_json::json!({"metadata": {"resourceVersion": "1", "labels": {
                "backup-ns.sh/daily": null, "backup-ns.sh/weekly": null
            }}})
        );
        let mut after = recs.clone();
        plan.apply_to(&mut after);
        let mut sweep = plan_mark_and_delete(&after, now, &Policy::default());
        sweep.marks[0].target.resource_version.clear();
        assert_eq!(
            sweep.marks[0].merge_patch(),
            serde_json::json!({"metadata": {"labels": {"backup-ns.sh/delete-after": "2025-01-03"}}})
        );
        // prune strips and marks in one patch, under the listed resourceVersion.
        let prune = plan_prune(&recs, now, &policy(1, 0, 12));
        assert_eq!(prune.changes.len(), 1);
        assert_eq!(
            prune.changes[0].merge_patch(),
            serde_json::json!({"metadata": {"resourceVersion": "1", "labels": {
                "backup-ns.sh/daily": null, "backup-ns.sh/weekly": null,
                "backup-ns.sh/delete-after": "2025-01-03"
            }}})
        );
    }

    #[test]
    fn plans_render_as_text_and_json() {
        let recs = records([
            Rec::new("ns", "data")
                .at("2025-01-03T01:00:00Z")
                .name("c")
                .daily("2025-01-03"),
            Rec::new("ns", "data")
                .at("2025-01-02T01:00:00Z")
                .name("b")
                .daily("2025-01-02"),
            Rec::new("ns", "data")
                .at("2025-01-01T01:00:00Z")
                .name("a")
                .delete_after("2025-01-02")
                .unbound(),
        ]);
        let now = vienna("2025-01-03T03:00:00+01:00");
        let retain = plan_retain(&recs, now, &policy(1, 4, 12));
        let text = retain.to_string();
        assert!(
            text.contains(
                "would relabel ns/b: remove backup-ns.sh/daily=2025-01-02 because daily: 2nd \
                 newest ready of 1 kept"
            ),
            "{text}"
        );
        assert!(text.starts_with(
            "retain plan for 2025-01-03 (Europe/Vienna): keep daily 1, weekly 4, monthly 12; at \
             most 500 snapshots may lose their last period label\n"
        ));
        let json = serde_json::to_value(&retain).unwrap();
        assert_eq!(json["changes"][0]["name"], "b");
        assert_eq!(json["changes"][0]["namespace"], "ns");
        assert_eq!(
            json["changes"][0]["edits"][0]["to"],
            serde_json::Value::Null
        );
        assert_eq!(json["counts"]["labelsRemoved"], 1);
        assert_eq!(json["policy"]["keepDaily"], 1);

        let mut after = recs.clone();
        retain.apply_to(&mut after);
        let sweep = plan_mark_and_delete(&after, now, &Policy::default());
        let text = sweep.to_string();
        assert!(text.contains("would mark ns/b: set backup-ns.sh/delete-after=2025-01-03 because retain=daily_weekly_monthly and no daily, weekly or monthly label left"), "{text}");
        assert!(text.contains("would delete ns/a (not bound to a content) because retain=daily_weekly_monthly and delete-after 2025-01-02 is before 2025-01-03"), "{text}");
        assert!(text.ends_with("3 snapshots: 1 to mark, 1 to delete, 2 kept, 0 skipped as invalid, 0 protected as newest ready, 0 pinned, 0 pending, 0 without retain, 0 being deleted"), "{text}");
        let json = serde_json::to_value(&sweep).unwrap();
        assert_eq!(
            json["deletions"][0]["boundContent"],
            serde_json::Value::Null
        );
        assert_eq!(json["deletions"][0]["deleteAfter"], "2025-01-02");
        assert_eq!(json["braked"], false);
        assert_eq!(json["counts"]["protectedLastReady"], 0);

        // prune previews the whole outcome: the strip and the mark of b in one line, and a's
        // deletion.
        let prune = plan_prune(&recs, now, &policy(1, 4, 12));
        let text = prune.to_string();
        assert!(text.contains("would relabel ns/b: remove backup-ns.sh/daily=2025-01-02 because daily: 2nd newest ready of 1 kept; set backup-ns.sh/delete-after=2025-01-03 because retain=daily_weekly_monthly and no daily, weekly or monthly label left"), "{text}");
        assert!(
            text.contains("would delete ns/a (not bound to a content)"),
            "{text}"
        );
        let json = serde_json::to_value(&prune).unwrap();
        assert_eq!(json["retain"]["stripped"], 1);
        assert_eq!(json["sweep"]["marked"], 1);
        assert_eq!(json["sweep"]["deleted"], 1);
    }

    #[test]
    fn ordinals() {
        let got: Vec<_> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111, 112]
            .map(ordinal)
            .into();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd",
                "101st", "111th", "112th"
            ]
        );
    }

    // -----------------------------------------------------------------------------------------
    // Compatibility with the original's labels and scripts

    /// A snapshot exactly as the original's cronjob writes it: taken at 02:00 Vienna (01:00Z in
    /// winter), named `data-YYYY-MM-DD-020000-<rand>`, labels pvc/type/retain.
    fn original(day: &str) -> Rec {
        Rec::new("shop", "data")
            .at(&format!("{day}T01:00:00Z"))
            .name(&format!("data-{day}-020000-qwerty"))
    }

    #[test]
    fn compatible_with_the_originals_retain_and_mark_and_delete() {
        let mut recs = records([
            original("2024-11-01").monthly("2024-11"),
            original("2024-12-01").monthly("2024-12").weekly("w48"),
            original("2024-12-09").weekly("w50"),
            // Written by the original's v0.1.
            original("2024-12-16").weekly("2024-w51"),
            original("2024-12-20").delete_after("2024-12-21"),
            original("2024-12-23").weekly("w52"),
            original("2024-12-28").delete_after("2025-01-05").unbound(),
            // Its delete-after was removed by hand on an earlier day.
            original("2024-12-29"),
            original("2024-12-30").delete_after("2025-01-12"),
            original("2024-12-31").delete_after("2025-01-11"),
            original("2025-01-01")
                .daily("2025-01-01")
                .weekly("w01")
                .monthly("2025-01"),
            original("2025-01-02").daily("2025-01-02"),
            original("2025-01-03").daily("2025-01-03"),
            original("2025-01-04").daily("2025-01-04"),
            original("2025-01-05").daily("2025-01-05"),
            original("2025-01-06").daily("2025-01-06").weekly("w02"),
            original("2025-01-07").daily("2025-01-07"),
            original("2025-01-08").daily("2025-01-08"),
            original("2025-01-09").daily("2025-01-09"),
            original("2025-01-10").daily("2025-01-10"),
            original("2025-01-11").daily("2025-01-11"),
            // Its retain label was removed by hand: kept forever.
            original("2024-12-10")
                .delete_after("2024-12-15")
                .without(RETAIN),
            // Adhoc backups with retain=days.
            Rec::new("shop", "data")
                .at("2025-01-03T13:00:00Z")
                .name("data-2025-01-03-140000-adhocx")
                .days(5, "2025-01-08"),
            Rec::new("shop", "data")
                .at("2025-01-02T13:00:00Z")
                .name("data-2025-01-02-140000-adhocy")
                .days(30, "2025-02-01"),
        ]);
        let name = |day: &str| format!("data-{day}-020000-qwerty");
        let names = |days: &[&str]| days.iter().map(|d| name(d)).collect::<Vec<_>>();

        // Day 1: the pruner runs at 01:00 on Jan 12, before that day's backup.
        let now = vienna("2025-01-12T01:00:00+01:00");
        let retain = plan_retain(&recs, now, &Policy::default());
        let got: Vec<_> = retain
            .changes
            .iter()
            .map(|c| {
                (
                    c.target.name.clone(),
                    removed(c)
                        .into_iter()
                        .map(|(l, r)| format!("{l}: {r}"))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let expect = |day: &str, label: &str, why: &str| {
            (name(day), vec![format!("backup-ns.sh/{label}: {why}")])
        };
        assert_eq!(
            got,
            [
                expect("2025-01-04", "daily", "daily: 8th newest ready of 7 kept"),
                expect("2025-01-03", "daily", "daily: 9th newest ready of 7 kept"),
                expect("2025-01-02", "daily", "daily: 10th newest ready of 7 kept"),
                expect("2025-01-01", "daily", "daily: 11th newest ready of 7 kept"),
                expect("2024-12-09", "weekly", "weekly: 5th newest ready of 4 kept"),
                expect("2024-12-01", "weekly", "weekly: 6th newest ready of 4 kept"),
            ]
        );
        assert!(retain.warnings.is_empty() && retain.skipped.is_empty());
        retain.apply_to(&mut recs);

        let sweep = plan_mark_and_delete(&recs, now, &Policy::default());
        assert_eq!(
            change_names(&sweep.marks),
            names(&[
                "2025-01-04",
                "2025-01-03",
                "2025-01-02",
                "2024-12-29",
                "2024-12-09"
            ])
        );
        assert!(sweep
            .marks
            .iter()
            .all(|m| m.edits[0].to.as_deref() == Some("2025-01-12")));
        assert_eq!(
            deletion_names(&sweep),
            [
                "data-2025-01-03-140000-adhocx".to_owned(),
                name("2024-12-31"),
                name("2024-12-28"),
                name("2024-12-20"),
            ]
        );
        assert_eq!(
            sweep.deletions[2].bound_content, None,
            "unbound: deleted without a content patch"
        );
        assert!(sweep.skipped.is_empty() && !sweep.braked);
        sweep.apply_to(&mut recs);

        // Day 2: the Jan 12 backup, then the pruner at 01:00 on Jan 13.
        recs.push(original("2025-01-12").daily("2025-01-12").build());
        let now = vienna("2025-01-13T01:00:00+01:00");
        let retain = plan_retain(&recs, now, &Policy::default());
        assert_eq!(change_names(&retain.changes), names(&["2025-01-05"]));
        retain.apply_to(&mut recs);
        let sweep = plan_mark_and_delete(&recs, now, &Policy::default());
        assert_eq!(change_names(&sweep.marks), names(&["2025-01-05"]));
        assert_eq!(
            deletion_names(&sweep),
            names(&[
                "2025-01-04",
                "2025-01-03",
                "2025-01-02",
                "2024-12-30",
                "2024-12-29",
                "2024-12-09"
            ])
        );
        sweep.apply_to(&mut recs);

        let mut left: Vec<_> = recs.iter().map(|r| r.name.as_str()).collect();
        left.sort_unstable();
        let mut expected = names(&[
            "2024-11-01",
            "2024-12-01",
            "2024-12-10",
            "2024-12-16",
            "2024-12-23",
            "2025-01-01",
            "2025-01-05",
            "2025-01-06",
            "2025-01-07",
            "2025-01-08",
            "2025-01-09",
            "2025-01-10",
            "2025-01-11",
            "2025-01-12",
        ]);
        expected.push("data-2025-01-02-140000-adhocy".to_owned());
        expected.sort_unstable();
        assert_eq!(left, expected);
    }

    // -----------------------------------------------------------------------------------------
    // Generated histories and the properties every plan must have

    mod generate {
        use super::super::*;
        use crate::labels::{Month, Week, RETAIN_DAYS, TYPE};
        use chrono::{Datelike, Days, NaiveTime, TimeZone};
        use chrono_tz::Europe::Vienna;
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        pub struct History {
            pub records: Vec<SnapshotRecord>,
            pub now: DateTime<Tz>,
            pub policy: Policy,
        }

        /// A local time in Vienna, or `None` inside the spring-forward gap.
        pub fn local(date: NaiveDate, h: u32, m: u32) -> Option<DateTime<Tz>> {
            let time = NaiveTime::from_hms_opt(h, m, 0)?;
            Vienna.from_local_datetime(&date.and_time(time)).earliest()
        }

        fn pick<'a>(rng: &mut StdRng, values: &[&'a str]) -> &'a str {
            values[rng.random_range(0..values.len())]
        }

        /// About two years of backups of 1–6 PVCs in 1–2 namespaces, as the original and we
        /// write them, after earlier pruner runs of unknown quality, with gaps, two backups on
        /// some days, times around midnight and in the DST switch hours, failed and pending
        /// snapshots, pins, hand edits, both weekly formats and garbage values; plus a random
        /// policy and a "now" after the last backup.
        pub fn history(seed: u64) -> History {
            let mut rng = StdRng::seed_from_u64(seed);
            let start =
                NaiveDate::from_ymd_opt(2025, 6, 1).unwrap() + Days::new(rng.random_range(0..60));
            let days = 730u64;
            let end = start + Days::new(days);
            let mut records = Vec::new();
            let mut counter = 0u32;
            for ns in 0..rng.random_range(1..=2) {
                let namespace = format!("tenant-{ns}");
                for pvc in ["data", "uploads", "db"]
                    .into_iter()
                    .take(rng.random_range(1..=3))
                {
                    // The original's v0.1 wrote `YYYY-wNN` with the calendar year (%Y-w%V).
                    let old_weekly = rng.random_bool(0.3);
                    // The original claims labels before the snapshot is ready (its bug 2).
                    let claim_before_ready = rng.random_bool(0.5);
                    let mut last: (Option<NaiveDate>, Option<Week>, Option<Month>) =
                        (None, None, None);
                    let mut day = 0;
                    while day < days {
                        if rng.random_bool(0.004) {
                            day += rng.random_range(3..20);
                            continue;
                        }
                        let date = start + Days::new(day);
                        day += 1;
                        if rng.random_bool(0.07) {
                            continue;
                        }
                        let per_day = if rng.random_bool(0.1) { 2 } else { 1 };
                        for k in 0..per_day {
                            let (h, m) = match rng.random_range(0..10) {
                                0 => (2, 30),
                                1 => (23, 59),
                                2 => (0, 1),
                                _ => (
                                    rng.random_range(k * 12..k * 12 + 12),
                                    rng.random_range(0..60),
                                ),
                            };
                            let Some(t) = local(date, h, m) else { continue };
                            counter += 1;
                            let name =
                                format!("{pvc}-{}-{counter:06}", t.format("%Y-%m-%d-%H%M%S"));
                            let state = match rng.random_range(0..200) {
                                0..8 => SnapshotState::Failed {
                                    error: Some("generated".into()),
                                },
                                8..12 => SnapshotState::Pending { error: None },
                                12..14 => SnapshotState::Terminating,
                                14..16 => SnapshotState::Ready {
                                    warning: Some("a stale error".into()),
                                },
                                _ => SnapshotState::Ready { warning: None },
                            };
                            let mut labels = BTreeMap::new();
                            labels.insert(PVC.to_owned(), pvc.to_owned());
                            labels.insert(TYPE.to_owned(), "cronjob".to_owned());
                            let kind = rng.random_range(0..100);
                            if kind < 5 {
                                let n = rng.random_range(1..40);
                                labels.insert(TYPE.to_owned(), "adhoc".to_owned());
                                labels.insert(RETAIN.to_owned(), "days".to_owned());
                                labels.insert(RETAIN_DAYS.to_owned(), n.to_string());
                                labels.insert(
                                    DELETE_AFTER.to_owned(),
                                    format_date(date + Days::new(n)),
                                );
                            } else if kind < 7 {
                                // retain removed by hand: kept forever.
                                if rng.random_bool(0.5) {
                                    labels.insert(DELETE_AFTER.to_owned(), format_date(date));
                                }
                            } else {
                                let retain = if kind < 8 {
                                    "weekly"
                                } else {
                                    "daily_weekly_monthly"
                                };
                                labels.insert(RETAIN.to_owned(), retain.to_owned());
                                if state.is_ready() || claim_before_ready {
                                    let (week, month) = (Week::of(date), Month::of(date));
                                    if last.0 != Some(date) {
                                        last.0 = Some(date);
                                        labels.insert(DAILY.to_owned(), format_date(date));
                                    }
                                    if last.1 != Some(week) {
                                        last.1 = Some(week);
                                        let value = if old_weekly {
                                            format!("{}-w{:02}", date.year(), week.week)
                                        } else {
                                            format!("w{:02}", week.week)
                                        };
                                        labels.insert(WEEKLY.to_owned(), value);
                                    }
                                    if last.2 != Some(month) {
                                        last.2 = Some(month);
                                        labels.insert(
                                            MONTHLY.to_owned(),
                                            date.format("%Y-%m").to_string(),
                                        );
                                    }
                                }
                                // Earlier pruner runs stripped old labels and marked them.
                                let age = (end - date).num_days();
                                if age > 40 && rng.random_bool(0.6) {
                                    for key in [DAILY, WEEKLY, MONTHLY] {
                                        if rng.random_bool(0.9) {
                                            labels.remove(key);
                                        }
                                    }
                                    if rng.random_bool(0.8) {
                                        let marked = date + Days::new(rng.random_range(0..=3));
                                        labels.insert(DELETE_AFTER.to_owned(), format_date(marked));
                                    }
                                }
                                // Hand edits: a period label added to a marked snapshot.
                                if labels.contains_key(DELETE_AFTER) && rng.random_bool(0.02) {
                                    labels.insert(DAILY.to_owned(), format_date(date));
                                }
                            }
                            for key in [DAILY, WEEKLY, MONTHLY, DELETE_AFTER] {
                                if labels.contains_key(key) && rng.random_bool(0.015) {
                                    let garbage = pick(
                                        &mut rng,
                                        &[
                                            "",
                                            "garbage",
                                            "w99",
                                            "2025-13",
                                            "2025-02-30",
                                            "W05",
                                            "2026-w53x",
                                        ],
                                    );
                                    labels.insert(key.to_owned(), garbage.to_owned());
                                }
                            }
                            if rng.random_bool(0.02) {
                                let value = pick(&mut rng, &["", "true", "keep-forever"]);
                                labels.insert(PIN.to_owned(), value.to_owned());
                            }
                            records.push(SnapshotRecord {
                                namespace: namespace.clone(),
                                name: name.clone(),
                                uid: format!("uid-{counter}"),
                                resource_version: counter.to_string(),
                                pvc: pvc.to_owned(),
                                pvc_uid: None,
                                labels,
                                time: Some(t.with_timezone(&Utc)),
                                state,
                                bound_content: rng
                                    .random_bool(0.9)
                                    .then(|| format!("snapcontent-{counter}")),
                            });
                        }
                    }
                }
            }
            let policy = Policy {
                keep_daily: rng.random_range(0..=10),
                keep_weekly: rng.random_range(0..=6),
                keep_monthly: rng.random_range(0..=14),
                allow_deleting_last_ready: rng.random_bool(0.2),
                max_deletions: rng.random_range(0..=3000),
            };
            let now = local(end, rng.random_range(0..24), rng.random_range(0..60))
                .unwrap_or_else(|| local(end, 12, 0).unwrap());
            History {
                records,
                now,
                policy,
            }
        }
    }

    type GroupKey = (String, String);

    /// Records by (namespace, PVC), newest first (ties by name), as the planners order them.
    fn by_group(records: &[SnapshotRecord]) -> BTreeMap<GroupKey, Vec<&SnapshotRecord>> {
        let mut groups: BTreeMap<GroupKey, Vec<&SnapshotRecord>> = BTreeMap::new();
        for r in records.iter().filter(|r| r.time.is_some()) {
            groups
                .entry((r.namespace.clone(), r.pvc.clone()))
                .or_default()
                .push(r);
        }
        for group in groups.values_mut() {
            group.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.name.cmp(&b.name)));
        }
        groups
    }

    /// Name of the newest ready snapshot of each PVC.
    fn newest_ready_names(records: &[SnapshotRecord]) -> BTreeMap<GroupKey, String> {
        by_group(records)
            .into_iter()
            .filter_map(|(k, g)| {
                Some((k, g.into_iter().find(|r| r.state.is_ready())?.name.clone()))
            })
            .collect()
    }

    fn is_dwm(r: &SnapshotRecord) -> bool {
        r.labels.get(RETAIN).map(String::as_str) == Some("daily_weekly_monthly")
    }

    /// Records by (namespace, name).
    struct Index<'a>(HashMap<(&'a str, &'a str), &'a SnapshotRecord>);

    impl<'a> Index<'a> {
        fn new(records: &'a [SnapshotRecord]) -> Self {
            Index(
                records
                    .iter()
                    .map(|r| ((r.namespace.as_str(), r.name.as_str()), r))
                    .collect(),
            )
        }

        fn get(&self, target: &Target) -> &'a SnapshotRecord {
            self.0[&(target.namespace.as_str(), target.name.as_str())]
        }
    }

    /// Checks every property of `retain` then `mark-and-delete` (twice), and of `prune`, over
    /// one history.
    fn check_properties(
        records: &[SnapshotRecord],
        now: DateTime<Tz>,
        policy: &Policy,
        what: &str,
    ) {
        let today = now.date_naive();
        let newest_ready = newest_ready_names(records);

        // retain touches only unpinned, live daily_weekly_monthly snapshots, and only their
        // period labels: it removes labels that are there, and adds (claims) labels only on a
        // ready snapshot without any period label or delete-after, for periods of its own time
        // that no other ready snapshot of its group held.
        let retain = plan_retain(records, now, policy);
        let index = Index::new(records);
        let groups_before = by_group(records);
        for change in &retain.changes {
            let r = index.get(&change.target);
            assert!(
                !r.is_pinned() && is_dwm(r) && !r.state.is_terminating(),
                "{what}: retain changes {}",
                change.target
            );
            assert_eq!(change.target.uid, r.uid);
            assert_eq!(change.target.resource_version, r.resource_version);
            for e in &change.edits {
                assert!(
                    [DAILY, WEEKLY, MONTHLY].contains(&e.label.as_str()),
                    "{what}"
                );
                assert_eq!(e.from.as_ref(), r.labels.get(&e.label), "{what}");
                let Some(to) = &e.to else { continue };
                assert!(
                    r.state.is_ready()
                        && !r.has_period_label()
                        && !r.labels.contains_key(DELETE_AFTER),
                    "{what}: claims for {}",
                    r.name
                );
                let group = &groups_before[&(r.namespace.clone(), r.pvc.clone())];
                let holders = claim_holders(group.iter().copied(), &r.name, None);
                let free = crate::labels::period_labels(&claim_periods(
                    r.time.unwrap().with_timezone(&now.timezone()),
                    &holders,
                ));
                assert_eq!(
                    free.get(&e.label),
                    Some(to),
                    "{what}: {} claims {to}",
                    r.name
                );
            }
        }
        let mut after_retain = records.to_vec();
        retain.apply_to(&mut after_retain);
        for (before, after) in records.iter().zip(&after_retain) {
            let others = |r: &SnapshotRecord| {
                let mut l = r.labels.clone();
                l.retain(|k, _| ![DAILY, WEEKLY, MONTHLY].contains(&k.as_str()));
                l
            };
            assert_eq!(others(before), others(after), "{what}: {}", before.name);
            if before.is_pinned() || !is_dwm(before) || before.state.is_terminating() {
                assert_eq!(
                    before.labels, after.labels,
                    "{what}: {} changed",
                    before.name
                );
            }
            if before.state.is_pending() {
                assert_eq!(
                    before.labels, after.labels,
                    "{what}: pending {}",
                    before.name
                );
            }
            if before.state.is_failed() && is_dwm(before) && !before.is_pinned() {
                assert!(!after.has_period_label(), "{what}: failed {}", before.name);
            }
        }

        // Per PVC and class: no more ready carriers than the policy keeps (plus the newest ready
        // one keeping its last label), and a ready snapshot only loses a label to newer ones.
        let groups_after = by_group(&after_retain);
        for (key, after) in &groups_after {
            let protected = newest_ready.get(key);
            let live_ready: Vec<&&SnapshotRecord> = after
                .iter()
                .filter(|r| r.state.is_ready() && !r.is_pinned() && is_dwm(r))
                .collect();
            for class in Class::ALL {
                let keep = class.keep(policy);
                let carriers: Vec<&str> = live_ready
                    .iter()
                    .filter(|r| r.labels.contains_key(class.key()))
                    .map(|r| r.name.as_str())
                    .collect();
                let rescued = usize::from(
                    carriers.len() > keep
                        && protected.is_some_and(|p| carriers.contains(&p.as_str())),
                );
                assert!(
                    carriers.len() <= keep + rescued,
                    "{what}: {} {} labels in {key:?}",
                    carriers.len(),
                    class.name()
                );
                for (i, r) in live_ready.iter().enumerate() {
                    let b = index.get(&r.target());
                    if b.labels.contains_key(class.key()) && !r.labels.contains_key(class.key()) {
                        let newer = live_ready[..i]
                            .iter()
                            .filter(|n| n.labels.contains_key(class.key()))
                            .count();
                        assert!(newer >= keep, "{what}: {} lost {}", r.name, class.name());
                    }
                }
            }
            // The newest ready snapshot never loses its last period label.
            if let Some(name) = protected {
                let b = index.get(&after.iter().find(|r| &r.name == name).unwrap().target());
                let a = after.iter().find(|r| &r.name == name).unwrap();
                if b.has_period_label() && is_dwm(b) && !b.is_pinned() {
                    assert!(
                        a.has_period_label(),
                        "{what}: newest ready {name} lost its last label"
                    );
                }
            }
        }
        // The brake counts snapshots that lose their last period label.
        let stripped = records
            .iter()
            .zip(&after_retain)
            .filter(|(b, a)| b.has_period_label() && !a.has_period_label())
            .count();
        assert_eq!(retain.counts.stripped, stripped, "{what}");
        assert_eq!(retain.braked, stripped > policy.max_deletions, "{what}");

        // mark-and-delete: never deletes what must be kept.
        let sweep = plan_mark_and_delete(&after_retain, now, policy);
        let index = Index::new(&after_retain);
        for d in &sweep.deletions {
            let r = index.get(&d.target);
            assert!(!r.is_pinned(), "{what}: deletes pinned {}", r.name);
            assert!(
                !r.state.is_terminating(),
                "{what}: deletes terminating {}",
                r.name
            );
            assert!(
                r.labels.contains_key(RETAIN),
                "{what}: deletes unretained {}",
                r.name
            );
            let date = parse_daily(&r.labels[DELETE_AFTER]).expect("valid delete-after");
            assert!(date < today, "{what}: {} not due", r.name);
            assert_eq!(d.bound_content, r.bound_content);
            assert_eq!(d.target.uid, r.uid);
        }
        for m in &sweep.marks {
            let r = index.get(&m.target);
            assert!(
                is_dwm(r) && !r.is_pinned() && !r.labels.contains_key(DELETE_AFTER),
                "{what}: marks {}",
                r.name
            );
            assert!(
                r.state.is_failed() || (r.state.is_ready() && !r.has_period_label()),
                "{what}: marks {} ({})",
                r.name,
                r.state
            );
            assert_eq!(m.edits[0].to.as_deref(), Some(format_date(today).as_str()));
        }
        // The brake triggers exactly above the maximum.
        assert_eq!(
            sweep.braked,
            sweep.deletions.len() > policy.max_deletions,
            "{what}"
        );
        let at = |max| {
            plan_mark_and_delete(
                &after_retain,
                now,
                &Policy {
                    max_deletions: max,
                    ..policy.clone()
                },
            )
            .braked
        };
        assert!(!at(sweep.deletions.len()), "{what}");
        if !sweep.deletions.is_empty() {
            assert!(at(sweep.deletions.len() - 1), "{what}");
        }

        let mut after_sweep = after_retain.clone();
        sweep.apply_to(&mut after_sweep);
        let left: HashSet<&str> = after_sweep.iter().map(|r| r.name.as_str()).collect();
        for r in records {
            if r.is_pinned()
                || !r.labels.contains_key(RETAIN)
                || sweep.braked
                || r.state.is_terminating()
            {
                assert!(left.contains(r.name.as_str()), "{what}: {} is gone", r.name);
            }
        }
        if !policy.allow_deleting_last_ready {
            for name in newest_ready.values() {
                assert!(
                    left.contains(name.as_str()),
                    "{what}: newest ready {name} is gone"
                );
            }
        }

        // prune is the two steps in one plan: the same outcome, one patch per snapshot.
        let prune = plan_prune(records, now, policy);
        assert_eq!(prune.braked, retain.braked || sweep.braked, "{what}");
        let mut pruned = records.to_vec();
        prune.apply_to(&mut pruned);
        if prune.braked {
            assert_eq!(pruned, records, "{what}: a braked prune changes nothing");
        } else {
            assert_eq!(
                pruned, after_sweep,
                "{what}: prune differs from the two steps"
            );
        }
        let patched: HashSet<&str> = prune
            .changes
            .iter()
            .map(|c| c.target.name.as_str())
            .collect();
        assert_eq!(patched.len(), prune.changes.len(), "{what}: one patch each");
        let deleted: HashSet<&str> = sweep
            .deletions
            .iter()
            .map(|d| d.target.name.as_str())
            .collect();
        let two_step: HashSet<&str> = retain
            .changes
            .iter()
            .chain(&sweep.marks)
            .map(|c| c.target.name.as_str())
            .filter(|n| !deleted.contains(n))
            .collect();
        assert_eq!(patched, two_step, "{what}");

        // A second run plans nothing new.
        let retain2 = plan_retain(&after_sweep, now, policy);
        assert!(retain2.is_empty(), "{what}: second retain: {retain2}");
        let sweep2 = plan_mark_and_delete(&after_sweep, now, policy);
        assert!(sweep2.marks.is_empty(), "{what}: second sweep: {sweep2}");
        if sweep.braked {
            assert_eq!(sweep2.deletions, sweep.deletions, "{what}");
        } else {
            assert!(
                sweep2.deletions.is_empty(),
                "{what}: second sweep: {sweep2}"
            );
        }
    }

    #[test]
    fn properties_hold_over_generated_histories() {
        let mut seen = RetainCounts::default();
        let mut deletions = 0;
        let mut braked = 0;
        for seed in 0..30 {
            let h = generate::history(seed);
            check_properties(&h.records, h.now, &h.policy, &format!("seed {seed}"));
            let retain = plan_retain(&h.records, h.now, &h.policy);
            seen.pending_kept += retain.counts.pending_kept;
            seen.protected_last_ready += retain.counts.protected_last_ready;
            seen.pinned += retain.counts.pinned;
            seen.claimed += retain.counts.claimed;
            seen.terminating += retain.counts.terminating;
            let mut after = h.records.clone();
            retain.apply_to(&mut after);
            let sweep = plan_mark_and_delete(&after, h.now, &h.policy);
            deletions += sweep.deletions.len();
            braked += usize::from(sweep.braked);
        }
        // The generator exercises what the properties are about.
        assert!(
            seen.pending_kept > 0 && seen.protected_last_ready > 0,
            "{seen:?}"
        );
        assert!(
            seen.pinned > 0 && seen.claimed > 0 && seen.terminating > 0,
            "{seen:?}"
        );
        assert!(
            deletions > 0 && braked > 0 && braked < 30,
            "{deletions} {braked}"
        );
    }

    #[test]
    fn properties_hold_for_the_default_policy() {
        for seed in 100..110 {
            let h = generate::history(seed);
            check_properties(
                &h.records,
                h.now,
                &Policy {
                    max_deletions: usize::MAX,
                    ..Policy::default()
                },
                &format!("seed {seed}"),
            );
        }
    }

    /// The day, ISO week and month a snapshot claimed (each only if it did).
    type Claimed = (Option<NaiveDate>, Option<Week>, Option<Month>);

    /// Runs the pruner (`prune`, i.e. retain then mark-and-delete) every night at 00:30 Vienna and backs up
    /// each PVC once a day with our own claim, from November 2025 (ISO week 1 of 2026 starts on
    /// Dec 29) through week 53 of 2026 to March 2027, across four DST switches.
    fn simulate(seed: u64, hand_edits: bool) {
        let mut rng = StdRng::seed_from_u64(seed);
        let policy = Policy {
            max_deletions: 50,
            ..Policy::default()
        };
        let pvcs = [("shop", "data"), ("shop", "uploads"), ("blog", "data")];
        let mut records: Vec<SnapshotRecord> = Vec::new();
        let mut pinned: Vec<String> = Vec::new();
        // Per PVC: the periods each snapshot claimed (in create, or later in retain), by time.
        let mut claimed: BTreeMap<GroupKey, BTreeMap<DateTime<Utc>, Claimed>> = BTreeMap::new();
        let mut counter = 0;
        let start = NaiveDate::from_ymd_opt(2025, 11, 1).unwrap();
        let end = NaiveDate::from_ymd_opt(2027, 3, 15).unwrap();
        let mut date = start;
        while date <= end {
            // The pruner.
            let now = generate::local(date, 0, 30).unwrap();
            let what = format!("seed {seed} on {date}");
            check_properties(&records, now, &policy, &what);
            let newest = newest_ready_names(&records);
            let prune = plan_prune(&records, now, &policy);
            assert!(!prune.braked, "{what}: {prune}");
            // Late claims: a snapshot that became ready after its backup gave up on it.
            for change in &prune.changes {
                for e in change.edits.iter().filter(|e| e.from.is_none()) {
                    let r = records
                        .iter()
                        .find(|r| r.name == change.target.name)
                        .unwrap();
                    let t = r.time.unwrap();
                    let day = t.with_timezone(&Vienna).date_naive();
                    let c = claimed
                        .entry((r.namespace.clone(), r.pvc.clone()))
                        .or_default()
                        .entry(t)
                        .or_default();
                    match e.label.as_str() {
                        DAILY => c.0 = Some(day),
                        WEEKLY => c.1 = Some(Week::of(day)),
                        MONTHLY => c.2 = Some(Month::of(day)),
                        _ => {}
                    }
                }
            }
            prune.apply_to(&mut records);
            for name in newest.values().chain(&pinned) {
                assert!(
                    records.iter().any(|r| &r.name == name),
                    "{what}: {name} is gone"
                );
            }
            for (ns, pvc) in pvcs {
                let unpinned = records
                    .iter()
                    .filter(|r| r.namespace == ns && r.pvc == pvc && !r.is_pinned())
                    .count();
                assert!(
                    unpinned <= 7 + 4 + 12 + 6,
                    "{what}: {unpinned} snapshots of {ns}/{pvc}"
                );
            }

            // Pending snapshots of yesterday are ready now (their backup gave up on them: no labels).
            for r in &mut records {
                if r.state.is_pending() {
                    r.state = SnapshotState::Ready { warning: None };
                }
            }
            if hand_edits && !records.is_empty() {
                let i = rng.random_range(0..records.len());
                let r = &mut records[i];
                match rng.random_range(0..100) {
                    0..2 => {
                        r.labels.insert(PIN.to_owned(), "true".to_owned());
                        pinned.push(r.name.clone());
                    }
                    2..6 if r.labels.contains_key(DELETE_AFTER) => {
                        r.labels.remove(DELETE_AFTER);
                    }
                    6..10 if r.labels.contains_key(DELETE_AFTER) => {
                        let day = r.time.unwrap().with_timezone(&Vienna).date_naive();
                        r.labels.insert(DAILY.to_owned(), format_date(day));
                    }
                    _ => {}
                }
            }

            // The backups of the day: our create command claims labels once the snapshot is ready.
            for (ns, pvc) in pvcs {
                if rng.random_bool(0.08) {
                    continue;
                }
                let (h, m) = match rng.random_range(0..4) {
                    0 => (2, 30),
                    1 => (23, 50),
                    _ => (rng.random_range(1..23), rng.random_range(0..60)),
                };
                let t = generate::local(date, h, m)
                    .unwrap_or_else(|| generate::local(date, 3, 30).unwrap());
                counter += 1;
                let state = match rng.random_range(0..100) {
                    0..4 => SnapshotState::Failed {
                        error: Some("sim".into()),
                    },
                    4..7 => SnapshotState::Pending { error: None },
                    _ => SnapshotState::Ready { warning: None },
                };
                let mut rec = Rec::new(ns, pvc)
                    .at_time(t.with_timezone(&Utc))
                    .name(&format!("{pvc}-{counter:05}"))
                    .build();
                rec.state = state.clone();
                if state.is_ready() {
                    let existing: Vec<ExistingSnapshot> = records
                        .iter()
                        .filter(|r| r.namespace == ns && r.pvc == pvc)
                        .map(|r| ExistingSnapshot::from_labels(r.time.unwrap(), &r.labels))
                        .collect();
                    let claim = claim_periods(t, &existing);
                    let day = t.date_naive();
                    if claim.daily.is_some() || claim.weekly.is_some() || claim.monthly.is_some() {
                        claimed
                            .entry((ns.to_owned(), pvc.to_owned()))
                            .or_default()
                            .insert(
                                t.with_timezone(&Utc),
                                (
                                    claim.daily.as_ref().map(|_| day),
                                    claim.weekly.as_ref().map(|_| Week::of(day)),
                                    claim.monthly.as_ref().map(|_| Month::of(day)),
                                ),
                            );
                    }
                    rec.labels.extend(crate::labels::period_labels(&claim));
                }
                records.push(rec);
            }
            date = date.succ_opt().unwrap();
        }

        if hand_edits {
            return;
        }
        // A last pruner run after the last backups.
        let now = generate::local(date, 0, 30).unwrap();
        plan_prune(&records, now, &policy).apply_to(&mut records);
        // Calendar-true GFS: the labels left are those of the 7 newest days, 4 newest ISO weeks
        // and 12 newest months that had a good backup — across week 53 and year ends.
        let tz = Vienna;
        for (key, claims) in &claimed {
            let carriers = |label: &str| -> BTreeSet<NaiveDate> {
                records
                    .iter()
                    .filter(|r| {
                        (&r.namespace, &r.pvc) == (&key.0, &key.1) && r.labels.contains_key(label)
                    })
                    .map(|r| r.time.unwrap().with_timezone(&tz).date_naive())
                    .collect()
            };
            let claims: Vec<&Claimed> = claims.values().collect();
            let days: BTreeSet<NaiveDate> =
                claims.iter().filter_map(|c| c.0).rev().take(7).collect();
            assert_eq!(carriers(DAILY), days, "{key:?}");
            let weeks: Vec<Week> = carriers(WEEKLY).into_iter().map(Week::of).collect();
            let expected: Vec<Week> = {
                let mut w: Vec<Week> = claims.iter().filter_map(|c| c.1).rev().take(4).collect();
                w.reverse();
                w
            };
            assert_eq!(weeks, expected, "{key:?}");
            let months: Vec<Month> = carriers(MONTHLY).into_iter().map(Month::of).collect();
            let expected: Vec<Month> = {
                let mut m: Vec<Month> = claims.iter().filter_map(|c| c.2).rev().take(12).collect();
                m.reverse();
                m
            };
            assert_eq!(months, expected, "{key:?}");
            assert_eq!(months.len(), 12);
        }
    }

    #[test]
    fn nightly_pruning_keeps_calendar_true_gfs_across_year_ends_and_dst() {
        for seed in 0..3 {
            simulate(seed, false);
        }
    }

    #[test]
    fn nightly_pruning_with_hand_edits_keeps_its_promises() {
        for seed in 10..13 {
            simulate(seed, true);
        }
    }

    #[test]
    fn week_53_and_week_1_in_december_are_seen_by_the_simulation() {
        // The calendar facts the simulation relies on.
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(
            Week::of(d(2025, 12, 29)),
            Week {
                year: 2026,
                week: 1
            }
        );
        assert_eq!(
            Week::of(d(2026, 12, 31)),
            Week {
                year: 2026,
                week: 53
            }
        );
        assert_eq!(
            Week::of(d(2027, 1, 3)),
            Week {
                year: 2026,
                week: 53
            }
        );
        assert!(
            generate::local(d(2026, 3, 29), 2, 30).is_none(),
            "spring-forward gap"
        );
        let fall_back = generate::local(d(2026, 10, 25), 2, 30).unwrap();
        assert_eq!(fall_back.to_rfc3339(), "2026-10-25T02:30:00+02:00");
    }

    #[test]
    fn ten_thousand_snapshots_plan_fast() {
        // 200 namespaces, 500 PVCs, 20 snapshots each over two years.
        let mut recs = Vec::with_capacity(10_000);
        let base = Utc.with_ymd_and_hms(2025, 1, 1, 1, 0, 0).unwrap();
        for p in 0..500 {
            let ns = format!("ns-{}", p % 200);
            let pvc = format!("pvc-{p}");
            for i in 0..20i64 {
                let t = base + chrono::Duration::days(i * 36);
                let day = t.with_timezone(&Vienna).date_naive();
                let mut rec = Rec::new(&ns, &pvc)
                    .at_time(t)
                    .name(&format!("{pvc}-{i}"))
                    .daily(&format_date(day));
                if i % 2 == 0 {
                    rec = rec.monthly(&day.format("%Y-%m").to_string());
                }
                if i < 5 {
                    rec = rec
                        .without(DAILY)
                        .without(MONTHLY)
                        .delete_after("2025-01-02");
                }
                recs.push(rec.build());
            }
        }
        let now = vienna("2027-01-01T03:00:00+01:00");
        let started = std::time::Instant::now();
        let retain = plan_retain(&recs, now, &Policy::default());
        retain.apply_to(&mut recs);
        let sweep = plan_mark_and_delete(
            &recs,
            now,
            &Policy {
                max_deletions: usize::MAX,
                ..Policy::default()
            },
        );
        let elapsed = started.elapsed();
        assert_eq!(retain.counts.snapshots, 10_000);
        assert_eq!(sweep.deletions.len(), 2_500);
        assert_eq!(retain.changes.len(), 500 * 8);
        // Generous for unoptimised test builds on a loaded machine; quadratic would take minutes.
        assert!(elapsed.as_secs() < 5, "{elapsed:?}");
    }
}
