//! The lifecycle commands (`retain`, `mark-and-delete`, `list`, `delete`, `sync-labels`) as the
//! real binary, against the API emulation through a kubeconfig: outcomes on seeded histories,
//! the requests they cost (from the emulation's log), dry runs that write nothing, injected
//! conflicts, 500s, 429s and dropped connections, the brake, and compatibility with snapshots
//! labelled exactly as the original writes them.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::emu::{Emu, Fault, Verb};
use crate::harness::{Cluster, Run};

const GROUP: &str = "snapshot.storage.k8s.io/v1";
const PVC: &str = "backup-ns.sh/pvc";
const TYPE: &str = "backup-ns.sh/type";
const POD: &str = "backup-ns.sh/pod";
const RETAIN: &str = "backup-ns.sh/retain";
const RETAIN_DAYS: &str = "backup-ns.sh/retain-days";
const DAILY: &str = "backup-ns.sh/daily";
const WEEKLY: &str = "backup-ns.sh/weekly";
const MONTHLY: &str = "backup-ns.sh/monthly";
const DELETE_AFTER: &str = "backup-ns.sh/delete-after";
const PIN: &str = "backup-ns.sh/pin";
const DWM: &str = "daily_weekly_monthly";

async fn cluster() -> Cluster {
    Cluster::new(Emu::start().await)
}

/// `backup-ns ARGS`, dates in UTC.
fn command(c: &Cluster, args: &[&str]) -> Command {
    c.command(args, &[("BAK_TZ", "UTC")])
}

fn finish(out: std::process::Output) -> Run {
    Run::from(out)
}

/// Runs `backup-ns ARGS` to completion (the emulation serves from its own thread).
fn run(c: &Cluster, args: &[&str]) -> Run {
    c.run(args, &[("BAK_TZ", "UTC")])
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn day(offset: i64) -> String {
    (today() + chrono::Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

/// A snapshot to seed, as a cluster would return it.
#[derive(Clone)]
struct Snap {
    ns: String,
    name: String,
    pvc: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    time: DateTime<Utc>,
    ready: bool,
    bound: bool,
    policy: &'static str,
    /// Seeded with a `deletionTimestamp` and the snapshot controller's finalizers.
    terminating: bool,
}

impl Snap {
    /// A ready, bound (`Retain` content) `retain=daily_weekly_monthly` cronjob snapshot taken
    /// `age` ago.
    fn new(ns: &str, pvc: &str, name: &str, age: chrono::Duration) -> Snap {
        let labels = [(PVC, pvc), (TYPE, "cronjob"), (RETAIN, DWM)]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        Snap {
            ns: ns.into(),
            name: name.into(),
            pvc: pvc.into(),
            labels,
            annotations: BTreeMap::new(),
            time: Utc::now() - age,
            ready: true,
            bound: true,
            policy: "Retain",
            terminating: false,
        }
    }

    fn days_ago(ns: &str, pvc: &str, name: &str, days: i64) -> Snap {
        Snap::new(
            ns,
            pvc,
            name,
            chrono::Duration::days(days) + chrono::Duration::minutes(10),
        )
    }

    fn label(mut self, k: &str, v: &str) -> Snap {
        self.labels.insert(k.into(), v.into());
        self
    }

    fn without(mut self, k: &str) -> Snap {
        self.labels.remove(k);
        self
    }

    /// Period labels as the snapshot's own day, ISO week (`wNN`) and month.
    fn periods(self, daily: bool, weekly: bool, monthly: bool) -> Snap {
        let d = self.time.date_naive();
        let mut s = self;
        if daily {
            s = s.label(DAILY, &d.format("%Y-%m-%d").to_string());
        }
        if weekly {
            s = s.label(WEEKLY, &format!("w{:02}", d.iso_week().week()));
        }
        if monthly {
            s = s.label(MONTHLY, &d.format("%Y-%m").to_string());
        }
        s
    }

    fn terminating(mut self) -> Snap {
        self.terminating = true;
        self
    }

    fn unbound(mut self) -> Snap {
        self.bound = false;
        self
    }

    fn content(&self) -> String {
        format!("snapcontent-{}", self.name)
    }

    /// Seeds the snapshot and, when bound, its content; returns the snapshot's uid.
    fn seed(&self, emu: &Emu) -> String {
        let mut status = json!({
            "readyToUse": self.ready,
            "creationTime": self.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "restoreSize": "1Gi",
        });
        if self.bound {
            status["boundVolumeSnapshotContentName"] = json!(self.content());
        }
        let mut metadata = json!({
            "namespace": self.ns, "name": self.name,
            "labels": self.labels, "annotations": self.annotations,
        });
        if self.terminating {
            metadata["deletionTimestamp"] = json!(Utc::now().to_rfc3339());
            metadata["finalizers"] = json!(crate::emu::SNAPSHOT_FINALIZERS);
        }
        let vs = emu.create(json!({
            "apiVersion": GROUP,
            "kind": "VolumeSnapshot",
            "metadata": metadata,
            "spec": { "source": { "persistentVolumeClaimName": self.pvc } },
            "status": status,
        }));
        let uid = vs["metadata"]["uid"].as_str().unwrap().to_owned();
        if self.bound {
            emu.create(json!({
                "apiVersion": GROUP,
                "kind": "VolumeSnapshotContent",
                "metadata": { "name": self.content() },
                "spec": {
                    "deletionPolicy": self.policy,
                    "driver": "emu.csi.k8s.io",
                    "source": { "volumeHandle": format!("pvc-{}", self.pvc) },
                    "volumeSnapshotRef": {
                        "apiVersion": GROUP, "kind": "VolumeSnapshot",
                        "name": self.name, "namespace": self.ns, "uid": uid,
                    },
                },
                "status": { "readyToUse": self.ready, "snapshotHandle": format!("h-{uid}") },
            }));
        }
        uid
    }
}

fn seed_all(emu: &Emu, snaps: &[Snap]) {
    for s in snaps {
        s.seed(emu);
    }
}

fn get_vs(emu: &Emu, ns: &str, name: &str) -> Option<Value> {
    emu.get(GROUP, "volumesnapshots", Some(ns), name)
}

fn labels_of(emu: &Emu, ns: &str, name: &str) -> BTreeMap<String, String> {
    let vs = get_vs(emu, ns, name).unwrap_or_else(|| panic!("{ns}/{name} is gone"));
    serde_json::from_value(vs["metadata"]["labels"].clone()).unwrap_or_default()
}

fn content_policy(emu: &Emu, name: &str) -> Option<String> {
    emu.get(GROUP, "volumesnapshotcontents", None, name)
        .map(|c| {
            c["spec"]["deletionPolicy"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
}

/// `namespace/name` of every snapshot in the emulation.
fn existing(emu: &Emu) -> BTreeSet<String> {
    emu.list("volumesnapshots", None)
        .iter()
        .map(|v| {
            format!(
                "{}/{}",
                v["metadata"]["namespace"].as_str().unwrap(),
                v["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn writes(emu: &Emu) -> Vec<String> {
    emu.requests()
        .iter()
        .filter(|r| !matches!(r.verb, Verb::Get | Verb::List))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| {
            format!(
                "{}/{}",
                x["namespace"].as_str().unwrap(),
                x["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A small history with every case the policy distinguishes, for `--retain-last-daily 3
/// --retain-last-weekly 2 --retain-last-monthly 1`.
///
/// shop/data: d0 (daily, weekly, monthly), d1, d2 (daily), d3 (daily: the 4th, loses it), w8
/// (weekly: 2nd), w15 (weekly: 3rd, loses it), m40 (monthly: 2nd, loses it), old1 (marked three
/// days ago, bound: deleted with its content), old2 (marked two days ago, unbound), pinned (no
/// labels, old date: never touched), garbage (invalid delete-after: skipped), days1 (retain=days,
/// due), days2 (retain=days, not yet), forever (retain removed: kept forever).
/// shop/uploads: up (due, but the newest ready snapshot of its PVC: kept).
/// blog/data: b-old (due, bound, content already `Delete`: no content patch), b-new (daily).
fn history() -> Vec<Snap> {
    let s = |name: &str, days| Snap::days_ago("shop", "data", name, days);
    vec![
        s("d0", 0).periods(true, true, true),
        s("d1", 1).periods(true, false, false),
        s("d2", 2).periods(true, false, false),
        s("d3", 3).periods(true, false, false),
        s("w8", 8).periods(false, true, false),
        s("w15", 15).periods(false, true, false),
        s("m40", 40).periods(false, false, true),
        s("old1", 50).label(DELETE_AFTER, &day(-3)),
        s("old2", 51).label(DELETE_AFTER, &day(-2)).unbound(),
        s("pinned", 52)
            .label(DELETE_AFTER, &day(-5))
            .label(PIN, "true"),
        s("garbage", 53).label(DELETE_AFTER, "someday"),
        s("days1", 20)
            .label(RETAIN, "days")
            .label(RETAIN_DAYS, "7")
            .label(DELETE_AFTER, &day(-1))
            .label(TYPE, "adhoc"),
        s("days2", 5)
            .label(RETAIN, "days")
            .label(RETAIN_DAYS, "30")
            .label(DELETE_AFTER, &day(25))
            .label(TYPE, "adhoc"),
        s("forever", 60)
            .without(RETAIN)
            .label(DELETE_AFTER, &day(-30)),
        Snap::days_ago("shop", "uploads", "up", 9).label(DELETE_AFTER, &day(-4)),
        Snap::days_ago("blog", "data", "b-old", 30).label(DELETE_AFTER, &day(-2)),
        Snap::days_ago("blog", "data", "b-new", 0).periods(true, false, false),
    ]
}

fn with_policy(b_old_policy: &'static str, mut snaps: Vec<Snap>) -> Vec<Snap> {
    for s in &mut snaps {
        if s.name == "b-old" {
            s.policy = b_old_policy;
        }
    }
    snaps
}

const KEEP: [&str; 6] = [
    "--retain-last-daily",
    "3",
    "--retain-last-weekly",
    "2",
    "--retain-last-monthly",
    "1",
];

fn retain_args(extra: &[&'static str]) -> Vec<&'static str> {
    let mut a = vec!["retain"];
    a.extend(KEEP);
    a.extend(extra);
    a
}

/// What the sweep deletes from [`history`] once retain has run.
const DUE: [&str; 4] = ["blog/b-old", "shop/days1", "shop/old1", "shop/old2"];
/// What mark-and-delete marks once retain has run.
const MARKED: [&str; 3] = ["shop/d3", "shop/m40", "shop/w15"];

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_dry_runs_print_the_plan_and_write_nothing() {
    let c = cluster().await;
    seed_all(&c.emu, &history());
    let before = c.emu.list("volumesnapshots", None);

    let r = run(&c, &retain_args(&["--dry-run"]));
    assert_eq!(r.code, 0, "{r:?}");
    for name in ["shop/d3", "shop/w15", "shop/m40"] {
        assert!(
            r.stdout.contains(&format!("would relabel {name}: remove")),
            "{name}: {r:?}"
        );
    }
    assert!(!r.stdout.contains("would relabel shop/d2"), "{r:?}");

    // A dry-run sweep sees the labels retain has not removed: nothing new to mark.
    let r = run(&c, &["mark-and-delete", "--dry-run", "-o", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.json();
    assert_eq!(out["dryRun"], true);
    assert!(out.get("result").is_none(), "{out}");
    let deletions: BTreeSet<String> = out["plan"]["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["namespace"].as_str().unwrap(),
                d["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(deletions, set(&DUE));
    assert_eq!(out["plan"]["counts"]["protectedLastReady"], 1, "{out}");
    assert_eq!(out["plan"]["counts"]["skippedInvalid"], 1, "{out}");
    assert!(
        r.stderr.contains("someday"),
        "the invalid date is warned about: {r:?}"
    );

    assert_eq!(
        writes(&c.emu),
        Vec::<String>::new(),
        "a dry run writes nothing"
    );
    assert_eq!(c.emu.count(Verb::List, "volumesnapshots"), 2);
    assert_eq!(c.emu.count(Verb::List, "volumesnapshotcontents"), 0);
    assert_eq!(c.emu.list("volumesnapshots", None), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_retain_then_mark_and_delete_on_a_seeded_history() {
    let c = cluster().await;
    let snaps = with_policy("Delete", history());
    seed_all(&c.emu, &snaps);
    let all: BTreeSet<String> = snaps
        .iter()
        .map(|s| format!("{}/{}", s.ns, s.name))
        .collect();

    // retain: one LIST, one PATCH per changed snapshot, nothing else.
    let r = run(&c, &retain_args(&[]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("unlabel shop/d3: backup-ns.sh/daily-"),
        "{r:?}"
    );
    assert_eq!(c.emu.count(Verb::List, "volumesnapshots"), 1);
    assert_eq!(c.emu.count(Verb::Patch, "volumesnapshots"), 3);
    assert_eq!(writes(&c.emu).len(), 3, "{:?}", writes(&c.emu));
    assert!(!labels_of(&c.emu, "shop", "d3").contains_key(DAILY));
    assert!(!labels_of(&c.emu, "shop", "w15").contains_key(WEEKLY));
    assert!(!labels_of(&c.emu, "shop", "m40").contains_key(MONTHLY));
    assert!(labels_of(&c.emu, "shop", "d2").contains_key(DAILY));
    assert!(labels_of(&c.emu, "shop", "w8").contains_key(WEEKLY));
    assert!(labels_of(&c.emu, "shop", "d0").contains_key(MONTHLY));
    c.emu.clear_requests();

    // mark-and-delete: marks, then deletions; the bound ones' contents switched to Delete
    // first (b-old's already is: no patch), the unbound one deleted alone.
    let today_before = day(0);
    let r = run(&c, &["mark-and-delete", "-o", "json"]);
    let today_after = day(0);
    assert_eq!(r.code, 0, "{r:?}");
    let result = &r.json()["result"];
    assert_eq!(result["patched"], 3, "{result}");
    assert_eq!(result["deleted"], 4, "{result}");
    assert_eq!(result["contentsPatched"], 2, "old1 and days1: {result}");
    assert_eq!(result["failed"], 0, "{result}");
    for name in MARKED {
        let (ns, n) = name.split_once('/').unwrap();
        let mark = labels_of(&c.emu, ns, n)[DELETE_AFTER].clone();
        assert!(
            mark == today_before || mark == today_after,
            "{name}: {mark}"
        );
    }
    let gone: BTreeSet<String> = all.difference(&existing(&c.emu)).cloned().collect();
    assert_eq!(gone, set(&DUE), "exactly the due snapshots are gone");
    for content in ["snapcontent-old1", "snapcontent-days1", "snapcontent-b-old"] {
        assert_eq!(
            content_policy(&c.emu, content),
            None,
            "{content} freed with its snapshot"
        );
    }
    assert_eq!(
        content_policy(&c.emu, "snapcontent-pinned").as_deref(),
        Some("Retain")
    );
    assert_eq!(
        labels_of(&c.emu, "shop", "garbage")[DELETE_AFTER],
        "someday"
    );

    // Minimal requests: one LIST of snapshots, one of contents, one PATCH per mark and per
    // content to switch, one DELETE per deletion; no GET at all.
    assert_eq!(c.emu.count(Verb::List, "volumesnapshots"), 1);
    assert_eq!(c.emu.count(Verb::List, "volumesnapshotcontents"), 1);
    assert_eq!(c.emu.count(Verb::Patch, "volumesnapshots"), 3);
    assert_eq!(c.emu.count(Verb::Patch, "volumesnapshotcontents"), 2);
    assert_eq!(c.emu.count(Verb::Delete, "volumesnapshots"), 4);
    assert_eq!(c.emu.count(Verb::Get, "volumesnapshots"), 0);
    let deletes: Vec<_> = c
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.verb == Verb::Delete)
        .collect();
    assert!(deletes.iter().all(|r| r.code == 200), "{deletes:?}");

    // Nothing policy keeps was touched, and a second run has nothing left to do.
    let pinned_requests: Vec<_> = c
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/pinned") || r.path.contains("snapcontent-pinned"))
        .collect();
    assert!(pinned_requests.is_empty(), "{pinned_requests:?}");
    c.emu.clear_requests();
    assert_eq!(run(&c, &retain_args(&[])).code, 0);
    let r = run(&c, &["mark-and-delete"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(writes(&c.emu), Vec::<String>::new());
    assert!(r.stdout.contains("0 patched, 0 deleted"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_injected_conflict_replans_only_that_snapshot() {
    let c = cluster().await;
    seed_all(&c.emu, &history());
    c.emu
        .inject(Fault::on("PATCH", "/volumesnapshots/w15").status(409));
    let r = run(&c, &retain_args(&["-o", "json"]));
    assert_eq!(r.code, 0, "{r:?}");
    let result = &r.json()["result"];
    assert_eq!(
        (result["patched"].as_u64(), result["conflicts"].as_u64()),
        (Some(3), Some(1)),
        "{result}"
    );
    let gets: Vec<_> = c
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.verb == Verb::Get)
        .collect();
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(
        gets[0].name.as_deref(),
        Some("w15"),
        "only the conflicting snapshot is re-read"
    );
    assert_eq!(c.emu.count(Verb::Patch, "volumesnapshots"), 4);
    assert!(!labels_of(&c.emu, "shop", "w15").contains_key(WEEKLY));
}

/// Waits until the emulation has answered a LIST of `resource`.
fn wait_for_list(emu: &Emu, resource: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !emu
        .requests()
        .iter()
        .any(|r| r.verb == Verb::List && r.resource == Some(resource))
    {
        assert!(Instant::now() < deadline, "no LIST of {resource}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Changes a seeded snapshot as a user would with `kubectl label` (bumping its
/// resourceVersion).
fn relabel(
    emu: &Emu,
    ns: &str,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>),
) {
    let mut vs = get_vs(emu, ns, name).unwrap();
    edit(vs["metadata"]["labels"].as_object_mut().unwrap());
    emu.replace(vs);
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_snapshot_pinned_during_the_run_is_left_alone() {
    let c = cluster().await;
    seed_all(&c.emu, &history());
    // Hold the first label patch long enough to pin d3 after the LIST.
    c.emu
        .inject(Fault::on("PATCH", "/volumesnapshots/").delay(Duration::from_millis(1500)));
    let child = command(&c, &retain_args(&["-o", "json"])).spawn().unwrap();
    wait_for_list(&c.emu, "volumesnapshots");
    relabel(&c.emu, "shop", "d3", |l| {
        l.insert(PIN.into(), json!("true"));
    });
    let r = finish(child.wait_with_output().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    let result = &r.json()["result"];
    assert_eq!(result["conflicts"], 1, "{result}");
    assert_eq!(result["settledByReplan"], 1, "{result}");
    assert_eq!(result["patched"], 2, "{result}");
    let d3 = labels_of(&c.emu, "shop", "d3");
    assert!(
        d3.contains_key(DAILY) && d3.contains_key(PIN),
        "pinned meanwhile: untouched {d3:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_snapshot_pinned_before_its_deletion_keeps_its_content_policy() {
    let c = cluster().await;
    seed_all(&c.emu, &history());
    assert_eq!(run(&c, &retain_args(&[])).code, 0);
    // Hold the first content patch (old1's or days1's) and pin both meanwhile: their DELETEs
    // then conflict, the re-plan keeps them, and their contents go back to Retain.
    c.emu
        .inject(Fault::on("PATCH", "/volumesnapshotcontents/").delay(Duration::from_millis(1500)));
    c.emu.clear_requests();
    let child = command(&c, &["mark-and-delete", "-o", "json"])
        .spawn()
        .unwrap();
    wait_for_list(&c.emu, "volumesnapshotcontents");
    for name in ["old1", "days1"] {
        relabel(&c.emu, "shop", name, |l| {
            l.insert(PIN.into(), json!(""));
        });
    }
    let r = finish(child.wait_with_output().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    let result = &r.json()["result"];
    assert_eq!(result["deleted"], 2, "old2 and b-old: {result}");
    assert_eq!(result["settledByReplan"], 2, "{result}");
    assert_eq!(result["contentsRestored"], 2, "{result}");
    for name in ["old1", "days1"] {
        assert!(get_vs(&c.emu, "shop", name).is_some(), "{name} kept");
        assert_eq!(
            content_policy(&c.emu, &format!("snapcontent-{name}")).as_deref(),
            Some("Retain")
        );
    }
    let gets: BTreeSet<String> = c
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.verb == Verb::Get)
        .filter_map(|r| r.name)
        .collect();
    assert_eq!(
        gets,
        set(&["days1", "old1"]),
        "only the conflicting snapshots are re-read"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_transient_errors_during_apply_are_retried_or_counted() {
    let c = cluster().await;
    seed_all(&c.emu, &history());
    assert_eq!(run(&c, &retain_args(&[])).code, 0);
    let all = existing(&c.emu);
    c.emu.clear_requests();
    // 429 with Retry-After on the first mark, a 503 on the first content patch, a dropped
    // connection on days1's delete: each retried once. old2's delete fails five times: failed.
    c.emu.inject(
        Fault::on("PATCH", "/volumesnapshots/")
            .status(429)
            .retry_after(1),
    );
    c.emu
        .inject(Fault::on("PATCH", "/volumesnapshotcontents/").status(503));
    c.emu
        .inject(Fault::on("DELETE", "/volumesnapshots/days1").drop_connection());
    c.emu.inject(
        Fault::on("DELETE", "/volumesnapshots/old2")
            .times(5)
            .status(500),
    );
    let started = Instant::now();
    let r = run(&c, &["mark-and-delete", "-o", "json"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let result = &r.json()["result"];
    assert_eq!(result["patched"], 3, "{result}");
    assert_eq!(result["deleted"], 3, "{result}");
    assert_eq!(result["failed"], 1, "{result}");
    assert_eq!(result["retries"], 7, "1 + 1 + 1 + 4: {result}");
    assert_eq!(result["failures"][0]["name"], "old2", "{result}");
    assert_eq!(result["failures"][0]["action"], "delete", "{result}");
    assert!(r.stderr.contains("old2"), "{r:?}");

    let gone: BTreeSet<String> = all.difference(&existing(&c.emu)).cloned().collect();
    assert_eq!(gone, set(&["blog/b-old", "shop/days1", "shop/old1"]));
    // A second run finishes the job.
    let r = run(&c, &["mark-and-delete"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(get_vs(&c.emu, "shop", "old2").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_brake_deletes_nothing_and_fails() {
    let c = cluster().await;
    seed_all(&c.emu, &history());
    assert_eq!(run(&c, &retain_args(&[])).code, 0);
    let all = existing(&c.emu);
    c.emu.clear_requests();
    let r = run(&c, &["mark-and-delete", "--max-deletions", "3"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("BRAKE: 4 deletions planned, more than the maximum of 3"),
        "{r:?}"
    );
    for d in DUE {
        assert!(
            r.stdout.contains(&format!("would delete {d}")),
            "{d}: {r:?}"
        );
    }
    assert_eq!(existing(&c.emu), all, "nothing deleted");
    assert_eq!(c.emu.count(Verb::Delete, "volumesnapshots"), 0);
    assert_eq!(c.emu.count(Verb::Patch, "volumesnapshotcontents"), 0);
    // Marks only date a later deletion: they are applied.
    assert_eq!(c.emu.count(Verb::Patch, "volumesnapshots"), 3);
    // The environment variable works like the flag.
    let r = finish(
        command(&c, &["mark-and-delete", "--dry-run"])
            .env("BAK_MAX_DELETIONS", "4")
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_unbound_snapshot_is_deleted_without_blocking_the_others() {
    let c = cluster().await;
    // The unbound snapshot comes first in the plan (newest of its PVC group).
    let snaps = vec![
        Snap::days_ago("a", "data", "a-keep", 0).periods(true, false, false),
        Snap::days_ago("a", "data", "a-unbound", 5)
            .label(DELETE_AFTER, &day(-1))
            .unbound(),
        Snap::days_ago("a", "data", "a-bound", 6).label(DELETE_AFTER, &day(-1)),
        Snap::days_ago("b", "data", "b-keep", 0).periods(true, false, false),
        Snap::days_ago("b", "data", "b-bound", 6).label(DELETE_AFTER, &day(-1)),
    ];
    seed_all(&c.emu, &snaps);
    let r = run(&c, &["mark-and-delete"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("delete a/a-unbound: deleted (not bound to a content)"),
        "{r:?}"
    );
    assert_eq!(existing(&c.emu), set(&["a/a-keep", "b/b-keep"]));
    assert_eq!(c.emu.count(Verb::Patch, "volumesnapshotcontents"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_one_namespace_only() {
    let c = cluster().await;
    seed_all(&c.emu, &history());
    let r = run(&c, &["mark-and-delete", "-n", "blog", "-o", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["result"]["deleted"], 1);
    assert!(get_vs(&c.emu, "blog", "b-old").is_none());
    assert!(get_vs(&c.emu, "shop", "old1").is_some());
    let lists: Vec<String> = c
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.verb == Verb::List && r.resource == Some("volumesnapshots"))
        .map(|r| r.path)
        .collect();
    assert_eq!(
        lists,
        ["/apis/snapshot.storage.k8s.io/v1/namespaces/blog/volumesnapshots"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_lists_are_paged() {
    let c = cluster().await;
    for i in 0..1203 {
        Snap::days_ago("ns", &format!("p{}", i % 7), &format!("s{i:04}"), 1)
            .periods(true, false, false)
            .unbound()
            .seed(&c.emu);
    }
    let r = run(
        &c,
        &retain_args(&["--dry-run", "-o", "json", "--max-deletions", "5000"]),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["plan"]["counts"]["snapshots"], 1203);
    let queries: Vec<String> = c.emu.requests().into_iter().map(|r| r.query).collect();
    assert_eq!(queries.len(), 3, "{queries:?}");
    assert!(
        queries.iter().all(|q| q.contains("limit=500")),
        "{queries:?}"
    );
    assert!(queries[1].contains("continue=") && queries[2].contains("continue="));
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_invalid_settings_exit_2_before_any_request() {
    let c = cluster().await;
    let r = finish(
        command(&c, &["retain"])
            .env("RETAIN_LAST_DAILY", "seven")
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("RETAIN_LAST_DAILY (--retain-last-daily)"),
        "{r:?}"
    );
    let r = run(&c, &["mark-and-delete", "--qps", "0"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = run(&c, &["retain", "-o", "wide"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(c.emu.requests().is_empty());
}

fn content_labels(emu: &Emu, name: &str) -> (BTreeMap<String, String>, Option<String>) {
    let c = emu
        .get(GROUP, "volumesnapshotcontents", None, name)
        .unwrap();
    let labels = serde_json::from_value(c["metadata"]["labels"].clone()).unwrap_or_default();
    let annotation = c["metadata"]["annotations"]["backup-ns.sh/env-config"]
        .as_str()
        .map(str::to_owned);
    (labels, annotation)
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_sync_labels_adds_changes_and_removes() {
    let c = cluster().await;
    let mut a = Snap::days_ago("shop", "data", "a", 1).periods(true, true, false);
    a.annotations.insert(
        "backup-ns.sh/env-config".into(),
        "BAK_PVC_NAME='data'".into(),
    );
    let b = Snap::days_ago("shop", "data", "b", 2).periods(true, false, false);
    let unbound = Snap::days_ago("shop", "data", "pending", 0).unbound();
    seed_all(&c.emu, &[a.clone(), b.clone(), unbound]);
    // a's content: a stale weekly, a delete-after the snapshot no longer has, no daily, no
    // annotation, and a label of someone else's that stays.
    let mut content = c
        .emu
        .get(GROUP, "volumesnapshotcontents", None, "snapcontent-a")
        .unwrap();
    content["metadata"]["labels"] = json!({
        WEEKLY: "w01", DELETE_AFTER: "2020-01-01", PVC: "data", "team": "payments",
    });
    c.emu.replace(content);
    // b's content is in sync already.
    let mut content = c
        .emu
        .get(GROUP, "volumesnapshotcontents", None, "snapcontent-b")
        .unwrap();
    content["metadata"]["labels"] = serde_json::to_value(&b.labels).unwrap();
    c.emu.replace(content);

    let r = run(&c, &["sync-labels", "--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let line = "would sync volumesnapshotcontent snapcontent-a (of shop/a): add label \
                backup-ns.sh/daily=";
    assert!(r.stdout.contains(line), "{r:?}");
    assert!(
        r.stdout
            .contains("remove label backup-ns.sh/delete-after add label"),
        "{r:?}"
    );
    assert!(r.stdout.contains(line), "{r:?}");
    assert!(
        r.stdout
            .contains("change label backup-ns.sh/weekly \"w01\" -> "),
        "{r:?}"
    );
    assert!(!r.stdout.contains("snapcontent-b"), "in sync: {r:?}");
    assert!(r.stderr.contains("shop/pending: not bound"), "{r:?}");
    assert_eq!(writes(&c.emu), Vec::<String>::new());

    let r = run(&c, &["sync-labels", "-o", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.json();
    assert_eq!(out["plan"]["counts"]["unbound"], 1, "{out}");
    assert_eq!(out["plan"]["counts"]["inSync"], 1, "{out}");
    assert_eq!(out["result"]["patched"], 1, "{out}");
    let (labels, annotation) = content_labels(&c.emu, "snapcontent-a");
    let mut want = a.labels.clone();
    want.insert("team".into(), "payments".into());
    assert_eq!(labels, want);
    assert_eq!(annotation.as_deref(), Some("BAK_PVC_NAME='data'"));
    assert_eq!(c.emu.count(Verb::Get, "volumesnapshotcontents"), 0);
    assert_eq!(c.emu.count(Verb::Patch, "volumesnapshotcontents"), 1);

    // The original's command name; a label removed from the snapshot goes from the content.
    relabel(&c.emu, "shop", "a", |l| {
        l.remove(WEEKLY);
    });
    c.emu.clear_requests();
    let r = run(&c, &["controller", "syncMetadataToVsc"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!content_labels(&c.emu, "snapcontent-a")
        .0
        .contains_key(WEEKLY));
    assert_eq!(c.emu.count(Verb::Patch, "volumesnapshotcontents"), 1);
    c.emu.clear_requests();
    assert_eq!(run(&c, &["sync-labels"]).code, 0);
    assert_eq!(writes(&c.emu), Vec::<String>::new(), "in sync: no patch");
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_delete_asks_or_needs_yes() {
    let c = cluster().await;
    let x = Snap::days_ago("shop", "data", "x", 3);
    let pinned = Snap::days_ago("shop", "data", "p", 4).label(PIN, "true");
    seed_all(&c.emu, &[x, pinned]);

    let r = run(&c, &["delete", "x", "-n", "shop"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--yes"), "{r:?}");
    assert!(c.emu.requests().is_empty(), "refused before any request");

    let r = run(&c, &["delete", "x", "-n", "shop", "--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("would delete volumesnapshot shop/x of PVC data"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("deletionPolicy Retain -> Delete"),
        "{r:?}"
    );

    let r = run(&c, &["delete", "p", "-n", "shop", "--yes"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("pinned"), "{r:?}");
    assert_eq!(writes(&c.emu), Vec::<String>::new());

    let r = run(&c, &["delete", "x", "-n", "shop", "--yes"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(get_vs(&c.emu, "shop", "x").is_none());
    assert_eq!(
        content_policy(&c.emu, "snapcontent-x"),
        None,
        "storage freed"
    );
    assert_eq!(c.emu.count(Verb::Patch, "volumesnapshotcontents"), 1);
    assert_eq!(
        run(&c, &["delete", "x", "-n", "shop", "-y"]).code,
        1,
        "not found"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_list_table_sorting_filters_and_formats() {
    let c = cluster().await;
    let snaps = vec![
        Snap::days_ago("shop", "data", "data-new", 1).periods(true, true, true),
        Snap::days_ago("shop", "data", "data-old", 3).periods(false, true, false),
        Snap::days_ago("shop", "uploads", "up-1", 2)
            .label(TYPE, "adhoc")
            .label(PIN, "true"),
        Snap::days_ago("shop", "data", "data-kept", 9).without(RETAIN),
        Snap::days_ago("default", "data", "def-1", 0).label(DELETE_AFTER, &day(1)),
        Snap::days_ago("blog", "data", "blog-1", 5),
    ];
    seed_all(&c.emu, &snaps);
    // A snapshot that is not backup-ns's is not listed.
    c.emu.create(crate::emu::fixtures::volume_snapshot(
        "shop",
        "foreign",
        "data",
        &[],
    ));

    let r = run(&c, &["list", "-A"]);
    assert_eq!(r.code, 0, "{r:?}");
    let rows: Vec<Vec<&str>> = r
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "NAMESPACE",
            "NAME",
            "PVC",
            "TYPE",
            "READY",
            "CREATED",
            "SIZE",
            "DAILY",
            "WEEKLY",
            "MONTHLY",
            "DELETE-AFTER",
            "PINNED",
            "VERIFIED"
        ]
    );
    let order: Vec<&str> = rows[1..].iter().map(|r| r[1]).collect();
    assert_eq!(
        order,
        [
            "blog-1",
            "def-1",
            "data-kept",
            "data-old",
            "data-new",
            "up-1"
        ]
    );
    assert_eq!(rows[3][10], "never", "retain removed: kept forever");
    assert_eq!(rows[2][10], day(1));
    assert_eq!(rows[6][11], "yes");
    assert_eq!(rows[6][3], "adhoc");
    assert_eq!((rows[5][5], rows[5][6]), ("24h", "1Gi"));

    // The context's namespace by default; filters.
    let r = run(&c, &["list"]);
    assert_eq!(r.stdout.lines().count(), 2, "{r:?}");
    assert!(
        r.stdout.contains("def-1") && !r.stdout.starts_with("NAMESPACE"),
        "{r:?}"
    );
    let json = |args: &[&str]| {
        let r = run(&c, args);
        assert_eq!(r.code, 0, "{r:?}");
        names(&r.json())
    };
    assert_eq!(
        json(&["list", "-n", "shop", "--daily", "-o", "json"]),
        set(&["shop/data-new"])
    );
    assert_eq!(
        json(&["list", "-n", "shop", "--daily", "--weekly", "-o", "json"]),
        set(&["shop/data-new", "shop/data-old"])
    );
    assert_eq!(
        json(&["list", "-n", "shop", "--adhoc", "-o", "json"]),
        set(&["shop/up-1"])
    );
    assert_eq!(
        json(&["list", "-A", "--pvc", "data", "--cronjob", "-o", "json"]),
        set(&[
            "blog/blog-1",
            "default/def-1",
            "shop/data-kept",
            "shop/data-new",
            "shop/data-old"
        ])
    );
    let r = run(&c, &["list", "-n", "shop", "-o", "json"]);
    let items = r.json();
    let kept = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "data-kept")
        .unwrap();
    assert_eq!(
        (kept["keptForever"].clone(), kept["retain"].clone()),
        (json!(true), Value::Null)
    );
    assert_eq!(kept["content"], "snapcontent-data-kept");

    let r = run(&c, &["list", "-n", "shop", "-o", "yaml"]);
    let parsed: Value = serde_yaml::from_str(&r.stdout).unwrap();
    assert_eq!(parsed, items, "yaml and json carry the same rows");
    let r = run(&c, &["list", "-n", "shop", "-o", "wide"]);
    let header: Vec<&str> = r
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(header[12..], ["RETAIN", "TIME", "CONTENT"], "{r:?}");
    assert!(r.stdout.contains("<removed: kept forever>"), "{r:?}");
    assert_eq!(c.emu.count(Verb::Get, "volumesnapshots"), 0);
}

/// What `retain.sh` then `mark-and-delete.sh` of the original do with a set of snapshots (per
/// PVC and class: the N newest by `status.creationTime` keep the label; snapshots left with no
/// period label and no `delete-after` get today's date; `delete-after` before today and a
/// `retain` label: deleted), as a reference model.
fn original_outcome(
    snaps: &[Snap],
    today: &str,
) -> BTreeMap<String, Option<BTreeMap<String, String>>> {
    let mut out: BTreeMap<String, Option<BTreeMap<String, String>>> = snaps
        .iter()
        .map(|s| (s.name.clone(), Some(s.labels.clone())))
        .collect();
    for (class, keep) in [(DAILY, 7), (WEEKLY, 4), (MONTHLY, 12)] {
        let mut carriers: Vec<&Snap> = snaps
            .iter()
            .filter(|s| {
                s.labels.get(RETAIN).map(String::as_str) == Some(DWM)
                    && s.labels.contains_key(class)
            })
            .collect();
        carriers.sort_by_key(|s| std::cmp::Reverse(s.time));
        for s in carriers.into_iter().skip(keep) {
            out.get_mut(&s.name)
                .unwrap()
                .as_mut()
                .unwrap()
                .remove(class);
        }
    }
    for s in snaps {
        let labels = out.get_mut(&s.name).unwrap();
        let l = labels.as_mut().unwrap();
        let due = l.get(DELETE_AFTER).is_some_and(|d| d.as_str() < today) && l.contains_key(RETAIN);
        let unlabelled = l.get(RETAIN).map(String::as_str) == Some(DWM)
            && ![DAILY, WEEKLY, MONTHLY, DELETE_AFTER]
                .iter()
                .any(|k| l.contains_key(*k));
        if due {
            *labels = None;
        } else if unlabelled {
            l.insert(DELETE_AFTER.into(), today.into());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_compatible_with_snapshots_labelled_by_the_original() {
    let c = cluster().await;
    let now = Utc::now();
    let mut snaps = Vec::new();
    let mut claimed_weeks = BTreeSet::new();
    let mut claimed_months = BTreeSet::new();
    // 30 nightly cronjob backups at ~02:00, labelled as the original's v0.2+ create does
    // (first of day / ISO week / month; `wNN` without the year), the pruner not run since.
    for d in (0..30).rev() {
        let t = now - chrono::Duration::days(d) - chrono::Duration::minutes(1);
        let date = t.date_naive();
        let name = format!("data-{}-{}", t.format("%Y-%m-%d-%H%M%S"), "abcdef");
        let mut s = Snap::new("app", "data", &name, now - t)
            .label(POD, "backup-data-29000000-x7k2p")
            .label(DAILY, &date.format("%Y-%m-%d").to_string());
        s.annotations.insert(
            "backup-ns.sh/env-config".into(),
            "BAK_DB_POSTGRES='true'\nBAK_LABEL_VS_RETAIN='daily_weekly_monthly'".into(),
        );
        if claimed_weeks.insert(date.iso_week()) {
            s = s.label(WEEKLY, &format!("w{:02}", date.iso_week().week()));
        }
        if claimed_months.insert((date.year(), date.month())) {
            s = s.label(MONTHLY, &date.format("%Y-%m").to_string());
        }
        snaps.push(s);
    }
    // Older monthly survivors over 16 months; the oldest from v0.1 with `YYYY-wNN` weeklies.
    for m in 2..18 {
        let t = now - chrono::Duration::days(30 * m + 3);
        let date = t.date_naive();
        let name = format!("data-{}-{}", t.format("%Y-%m-%d-%H%M%S"), "qwerty");
        let mut s = Snap::new("app", "data", &name, now - t)
            .label(MONTHLY, &date.format("%Y-%m").to_string());
        if m >= 12 {
            s = s.label(
                WEEKLY,
                &format!("{}-w{:02}", date.iso_week().year(), date.iso_week().week()),
            );
        }
        snaps.push(s);
    }
    // Marked by the original's earlier runs: two due, one marked today.
    for (name, days, mark) in [
        ("data-marked-a", 60, day(-3)),
        ("data-marked-b", 61, day(-1)),
        ("data-marked-c", 62, day(0)),
    ] {
        snaps.push(Snap::days_ago("app", "data", name, days).label(DELETE_AFTER, &mark));
    }
    // retain=days ad-hoc backups, as `BAK_LABEL_VS_RETAIN=days` writes them.
    for (name, days, retain_days) in [("data-adhoc-old", 40, 30), ("data-adhoc-new", 10, 30)] {
        let t = now - chrono::Duration::days(days);
        let delete_after = (t.date_naive() + chrono::Duration::days(retain_days))
            .format("%Y-%m-%d")
            .to_string();
        snaps.push(
            Snap::days_ago("app", "data", name, days)
                .label(TYPE, "adhoc")
                .label(RETAIN, "days")
                .label(RETAIN_DAYS, &retain_days.to_string())
                .label(DELETE_AFTER, &delete_after),
        );
    }
    seed_all(&c.emu, &snaps);

    let today_before = day(0);
    // The original's pruner runs `retain` then `mark-and-delete` with these variables.
    for args in [&["retain"][..], &["mark-and-delete"][..]] {
        let r = finish(
            command(&c, args)
                .env("RETAIN_LAST_DAILY", "7")
                .env("RETAIN_LAST_WEEKLY", "4")
                .env("RETAIN_LAST_MONTHLY", "12")
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
    }
    assert_eq!(
        today_before,
        day(0),
        "the test ran across midnight; run it again"
    );
    let expected = original_outcome(&snaps, &today_before);
    let mut deleted = 0;
    for (name, want) in &expected {
        let got = get_vs(&c.emu, "app", name).map(|_| labels_of(&c.emu, "app", name));
        assert_eq!(&got, want, "{name}");
        deleted += usize::from(want.is_none());
    }
    assert_eq!(
        deleted, 3,
        "two marked earlier, the expired retain=days one"
    );
    let unlabelled = expected
        .values()
        .flatten()
        .filter(|l| l.get(DELETE_AFTER) == Some(&today_before))
        .count();
    assert!(
        unlabelled > 20,
        "most old nightlies lost every label and were marked: {unlabelled}"
    );
}

// ---------------------------------------------------------------------------------------------
// prune: retain, mark and sweep as one plan in one pass (issue 7 D)

fn prune_args(extra: &[&'static str]) -> Vec<&'static str> {
    let mut a = vec!["prune"];
    a.extend(KEEP);
    a.extend(extra);
    a
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_prune_is_retain_and_mark_and_delete_in_one_pass() {
    // The same history, once through the old pair and once through prune.
    let pair = cluster().await;
    let one = cluster().await;
    let snaps = with_policy("Delete", history());
    seed_all(&pair.emu, &snaps);
    seed_all(&one.emu, &snaps);
    assert_eq!(run(&pair, &retain_args(&[])).code, 0);
    assert_eq!(run(&pair, &["mark-and-delete"]).code, 0);
    let pair_requests = pair.emu.requests().len();

    let r = run(&one, &prune_args(&["-o", "json"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        existing(&one.emu),
        existing(&pair.emu),
        "the same snapshots are left"
    );
    for name in existing(&one.emu) {
        let (ns, n) = name.split_once('/').unwrap();
        let mut got = labels_of(&one.emu, ns, n);
        let mut want = labels_of(&pair.emu, ns, n);
        // Marks carry the run's date; both runs were today.
        got.remove(DELETE_AFTER).zip(want.remove(DELETE_AFTER));
        assert_eq!(got, want, "{name}");
    }
    for name in MARKED {
        let (ns, n) = name.split_once('/').unwrap();
        assert!(
            labels_of(&one.emu, ns, n).contains_key(DELETE_AFTER),
            "{name}"
        );
    }
    // One LIST of snapshots, one of contents, ONE patch per changed snapshot (its strip and its
    // mark together), a content patch and a DELETE per deletion; no GET.
    let result = &r.json()["result"];
    assert_eq!(result["patched"], 3, "{result}");
    assert_eq!(result["deleted"], 4, "{result}");
    assert_eq!(one.emu.count(Verb::List, "volumesnapshots"), 1);
    assert_eq!(one.emu.count(Verb::List, "volumesnapshotcontents"), 1);
    assert_eq!(one.emu.count(Verb::Patch, "volumesnapshots"), 3);
    assert_eq!(one.emu.count(Verb::Patch, "volumesnapshotcontents"), 2);
    assert_eq!(one.emu.count(Verb::Delete, "volumesnapshots"), 4);
    assert_eq!(one.emu.count(Verb::Get, "volumesnapshots"), 0);
    let requests = one.emu.requests().len();
    assert_eq!(requests, 1 + 1 + 3 + 2 + 4);
    assert!(requests < pair_requests, "{requests} vs {pair_requests}");
    // A second run has nothing to do.
    one.emu.clear_requests();
    let r = run(&one, &prune_args(&[]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(writes(&one.emu), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_prune_dry_run_previews_the_whole_outcome() {
    let c = cluster().await;
    seed_all(&c.emu, &history());
    let before = c.emu.list("volumesnapshots", None);
    let r = run(&c, &prune_args(&["--dry-run", "-o", "json"]));
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.json();
    assert_eq!(out["command"], "prune");
    assert_eq!(out["dryRun"], true);
    assert_eq!(names(&out["plan"]["deletions"]), set(&DUE));
    // The marks of the snapshots retain strips show, in the same patch as the strip.
    let marked: BTreeSet<String> = out["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["edits"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["label"] == DELETE_AFTER && e["to"].is_string())
        })
        .map(|c| {
            format!(
                "{}/{}",
                c["namespace"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(marked, set(&MARKED), "{out}");
    let r = run(&c, &prune_args(&["--dry-run"]));
    assert!(
        r.stdout
            .contains("would relabel shop/d3: remove backup-ns.sh/daily="),
        "{r:?}"
    );
    assert!(r.stdout.contains("would delete shop/old1"), "{r:?}");
    assert_eq!(
        writes(&c.emu),
        Vec::<String>::new(),
        "a dry run writes nothing"
    );
    assert_eq!(c.emu.list("volumesnapshots", None), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_prune_brake_changes_nothing_and_fails() {
    let c = cluster().await;
    seed_all(&c.emu, &history());
    let before = c.emu.list("volumesnapshots", None);
    let r = run(&c, &prune_args(&["--max-deletions", "3"]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("BRAKE: 4 deletions"), "{r:?}");
    assert_eq!(writes(&c.emu), Vec::<String>::new());
    assert_eq!(c.emu.list("volumesnapshots", None), before);
}

/// Issue 7 C14: `retain` brakes like deletions.
#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_retain_brakes_instead_of_stripping_everything() {
    let c = cluster().await;
    seed_all(&c.emu, &history());
    let before = c.emu.list("volumesnapshots", None);
    let r = run(
        &c,
        &[
            "retain",
            "--retain-last-daily",
            "0",
            "--retain-last-weekly",
            "0",
            "--retain-last-monthly",
            "0",
            "--max-deletions",
            "2",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("BRAKE: "), "{r:?}");
    assert!(r.stderr.contains("BAK_MAX_DELETIONS"), "{r:?}");
    assert_eq!(writes(&c.emu), Vec::<String>::new());
    assert_eq!(c.emu.list("volumesnapshots", None), before);
}

/// Issue 7 C4: one snapshot whose patch keeps failing does not stop the deletions.
#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_prune_isolates_a_failing_patch_from_the_deletions() {
    let c = cluster().await;
    seed_all(&c.emu, &history());
    c.emu.inject(
        Fault::on("PATCH", "/namespaces/shop/volumesnapshots/d3")
            .always()
            .status(500),
    );
    let r = run(&c, &prune_args(&["-o", "json"]));
    assert_eq!(r.code, 1, "{r:?}");
    let result = &r.json()["result"];
    assert_eq!(result["failed"], 1, "{result}");
    assert_eq!(result["failures"][0]["name"], "d3", "{result}");
    assert_eq!(result["deleted"], 4, "{result}");
    assert_eq!(result["patched"], 2, "{result}");
    for d in DUE {
        let (ns, n) = d.split_once('/').unwrap();
        assert!(get_vs(&c.emu, ns, n).is_none(), "{d} is deleted");
    }
}

/// Issue 7 C5: a DELETE that fails after the content was switched to `Delete` switches it back.
#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_failed_delete_restores_the_content_policy() {
    let c = cluster().await;
    seed_all(&c.emu, &history());
    c.emu.inject(
        Fault::on("DELETE", "/namespaces/shop/volumesnapshots/old1")
            .always()
            .status(500),
    );
    let r = run(&c, &prune_args(&["-o", "json"]));
    assert_eq!(r.code, 1, "{r:?}");
    let result = &r.json()["result"];
    assert_eq!(result["failures"][0]["name"], "old1", "{result}");
    let error = result["failures"][0]["error"].as_str().unwrap();
    assert!(
        error.contains(
            "deletionPolicy=Retain is restored on volumesnapshotcontent snapcontent-old1"
        ),
        "{result}"
    );
    assert!(get_vs(&c.emu, "shop", "old1").is_some());
    assert_eq!(
        content_policy(&c.emu, "snapcontent-old1").as_deref(),
        Some("Retain"),
        "the surviving snapshot's content is back on Retain"
    );
    assert_eq!(result["contentsRestored"], 1, "{result}");
    // The other deletions went through.
    assert!(get_vs(&c.emu, "shop", "days1").is_none());
}

/// Issue 7 B: operators' label edits, as the original's README describes them.
#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_operator_delete_after_edits_are_honoured_as_written() {
    let c = cluster().await;
    let s = |name: &str, days| Snap::days_ago("shop", "data", name, days);
    seed_all(
        &c.emu,
        &[
            s("d0", 0).periods(true, true, true),
            s("d1", 1).periods(true, false, false),
            s("d2", 2).periods(true, false, false),
            // Marked by hand although it holds a period label: deleted after that date.
            s("by-hand", 3)
                .periods(true, false, false)
                .label(DELETE_AFTER, &day(-1)),
            // Its mark moved later by hand; it is about to lose its last label.
            s("later", 4)
                .periods(true, false, false)
                .label(DELETE_AFTER, &day(10)),
        ],
    );
    let r = run(&c, &prune_args(&["-o", "json"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(get_vs(&c.emu, "shop", "by-hand").is_none(), "{r:?}");
    let later = labels_of(&c.emu, "shop", "later");
    assert!(!later.contains_key(DAILY), "{later:?}");
    assert_eq!(later[DELETE_AFTER], day(10), "not re-marked with today");
    // The same with the old pair of commands.
    let c = cluster().await;
    seed_all(
        &c.emu,
        &[
            s("d0", 0).periods(true, true, true),
            s("d1", 1).periods(true, false, false),
            s("d2", 2).periods(true, false, false),
            s("later", 4)
                .periods(true, false, false)
                .label(DELETE_AFTER, &day(10)),
        ],
    );
    assert_eq!(run(&c, &retain_args(&[])).code, 0);
    assert_eq!(run(&c, &["mark-and-delete"]).code, 0);
    assert_eq!(labels_of(&c.emu, "shop", "later")[DELETE_AFTER], day(10));
}

/// Issue 7 A: a snapshot being deleted (a `deletionTimestamp`, held by the snapshot controller's
/// finalizers) is gone for every purpose: never the newest ready one, never touched again.
#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_prune_leaves_terminating_snapshots_alone() {
    let c = cluster().await;
    let s = |name: &str, days| Snap::days_ago("shop", "data", name, days);
    seed_all(
        &c.emu,
        &[
            s("going", 0)
                .periods(true, true, true)
                .label(DELETE_AFTER, &day(-1))
                .terminating(),
            s("ready", 1).label(DELETE_AFTER, &day(-1)),
            s("older", 2).label(DELETE_AFTER, &day(-1)),
        ],
    );
    let r = run(&c, &prune_args(&["-o", "json"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["plan"]["sweep"]["terminating"], 1, "{r:?}");
    // "ready" is the newest ready snapshot now: kept although due; "older" goes.
    assert!(get_vs(&c.emu, "shop", "ready").is_some());
    assert!(get_vs(&c.emu, "shop", "older").is_none());
    let touched: Vec<_> = c
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/going"))
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
    assert!(
        get_vs(&c.emu, "shop", "going").is_some(),
        "still held by its finalizers"
    );
}

/// Issue 7 A: a snapshot whose create gave up waiting joins retention once it is ready.
#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_prune_claims_the_periods_of_a_snapshot_that_became_ready_late() {
    let c = cluster().await;
    let s = |name: &str, days| Snap::days_ago("shop", "data", name, days);
    let late = s("late", 1);
    let late_day = late.time.date_naive().format("%Y-%m-%d").to_string();
    seed_all(&c.emu, &[s("today", 0).periods(true, true, true), late]);
    let r = run(&c, &prune_args(&["-o", "json"]));
    assert_eq!(r.code, 0, "{r:?}");
    let l = labels_of(&c.emu, "shop", "late");
    assert_eq!(l.get(DAILY), Some(&late_day), "{l:?}");
    assert!(!l.contains_key(DELETE_AFTER), "not marked: {l:?}");
    // A second run leaves it as it is.
    c.emu.clear_requests();
    assert_eq!(run(&c, &prune_args(&[])).code, 0);
    assert_eq!(writes(&c.emu), Vec::<String>::new());
}
