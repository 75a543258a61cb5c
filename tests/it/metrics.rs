//! Metrics as the real binary writes them (`BAK_METRICS_TEXTFILE`, `BAK_METRICS_PUSHGATEWAY`):
//! `prune` against the API emulation, the textfile and the push parsed by an independent parser
//! (`prometheus-parse`) and compared with what the run did; a Pushgateway that answers 500 or
//! hangs never changes the exit status; a bad sink setting is exit 2 before anything happens.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use prometheus_parse::{Scrape, Value as Sample};
use serde_json::{json, Value};

use crate::emu::Emu;
use crate::http_server::{Behaviour, TestServer};

const GROUP: &str = "snapshot.storage.k8s.io/v1";

struct Cluster {
    emu: Emu,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

async fn cluster() -> Cluster {
    let emu = Emu::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = emu.write_kubeconfig(dir.path()).unwrap();
    Cluster {
        emu,
        dir,
        kubeconfig,
    }
}

fn day(offset: i64) -> String {
    (Utc::now().date_naive() + chrono::Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

/// A ready, bound `daily_weekly_monthly` snapshot of shop/data taken `days` ago.
fn seed(emu: &Emu, name: &str, days: i64, extra: &[(&str, String)]) {
    let mut labels: BTreeMap<String, String> = [
        ("backup-ns.sh/pvc", "data".to_owned()),
        ("backup-ns.sh/type", "cronjob".to_owned()),
        ("backup-ns.sh/retain", "daily_weekly_monthly".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        labels.insert((*k).to_owned(), v.clone());
    }
    let time = Utc::now() - chrono::Duration::days(days) - chrono::Duration::minutes(10);
    let content = format!("snapcontent-{name}");
    let vs = emu.create(json!({
        "apiVersion": GROUP, "kind": "VolumeSnapshot",
        "metadata": { "namespace": "shop", "name": name, "labels": labels },
        "spec": { "source": { "persistentVolumeClaimName": "data" } },
        "status": {
            "readyToUse": true,
            "creationTime": time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "restoreSize": "1Gi",
            "boundVolumeSnapshotContentName": content,
        },
    }));
    let uid = vs["metadata"]["uid"].as_str().unwrap().to_owned();
    emu.create(json!({
        "apiVersion": GROUP, "kind": "VolumeSnapshotContent",
        "metadata": { "name": content },
        "spec": {
            "deletionPolicy": "Retain", "driver": "emu.csi.k8s.io",
            "source": { "volumeHandle": "pvc-data" },
            "volumeSnapshotRef": {
                "apiVersion": GROUP, "kind": "VolumeSnapshot",
                "name": name, "namespace": "shop", "uid": uid,
            },
        },
        "status": { "readyToUse": true, "snapshotHandle": format!("h-{uid}") },
    }));
}

/// Today's snapshot keeps its daily label; yesterday's loses it and is marked; an old one
/// whose delete-after passed is deleted: 1 unlabelled, 1 marked, 1 deleted.
fn seed_history(emu: &Emu) {
    seed(emu, "data-today", 0, &[("backup-ns.sh/daily", day(0))]);
    seed(emu, "data-yesterday", 1, &[("backup-ns.sh/daily", day(-1))]);
    seed(
        emu,
        "data-old",
        10,
        &[("backup-ns.sh/delete-after", day(-3))],
    );
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} after {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.took, self.stdout, self.stderr
        )
    }
}

fn prune(c: &Cluster, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backup-ns"));
    cmd.args([
        "prune",
        "-A",
        "--retain-last-daily=1",
        "--retain-last-weekly=0",
        "--retain-last-monthly=0",
        "-o",
        "json",
    ])
    .env_clear()
    .env("KUBECONFIG", &c.kubeconfig)
    .env("BAK_TZ", "UTC")
    .env("BAK_API_QPS", "1000")
    .envs(env.iter().copied())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let start = Instant::now();
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    }
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parseable exposition")
}

/// `metric` → value of its one sample (with any labels).
fn values(s: &Scrape) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for x in &s.samples {
        let v = match x.value {
            Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => v,
            _ => panic!("{x:?}"),
        };
        assert!(
            out.insert(x.metric.clone(), v).is_none(),
            "{} twice",
            x.metric
        );
    }
    out
}

fn expected(deleted: f64, failed: f64) -> BTreeMap<String, f64> {
    [
        ("backup_ns_retention_unlabelled_total", 1.0),
        ("backup_ns_retention_marked_total", 1.0),
        ("backup_ns_retention_deleted_total", deleted),
        ("backup_ns_retention_failed_total", failed),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_prune_writes_the_textfile_and_pushes_what_it_did() {
    let c = cluster().await;
    seed_history(&c.emu);
    let server = TestServer::start(Behaviour::Status(200));
    let metrics_dir = c.dir.path().join("textfile");
    std::fs::create_dir(&metrics_dir).unwrap();
    let file = metrics_dir.join("prune.prom");
    let url = server.url.replace("http://", "http://pusher:s3cret@");
    let run = prune(
        &c,
        &[
            ("BAK_METRICS_TEXTFILE", file.to_str().unwrap()),
            ("BAK_METRICS_PUSHGATEWAY", &url),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let out: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["result"]["deleted"], 1, "{run:?}");
    assert_eq!(out["result"]["failed"], 0, "{run:?}");
    // The run did what the metrics say.
    assert!(c
        .emu
        .get(GROUP, "volumesnapshots", Some("shop"), "data-old")
        .is_none());
    let yesterday = c
        .emu
        .get(GROUP, "volumesnapshots", Some("shop"), "data-yesterday")
        .unwrap();
    let labels = &yesterday["metadata"]["labels"];
    assert!(labels.get("backup-ns.sh/daily").is_none(), "{labels}");
    assert_eq!(labels["backup-ns.sh/delete-after"], day(0));

    // The textfile: parseable, the run's values, labelled, 0644, no temporary file left.
    let text = std::fs::read_to_string(&file).unwrap();
    let scrape = parse(&text);
    assert_eq!(values(&scrape), expected(1.0, 0.0), "{text}");
    for x in &scrape.samples {
        assert_eq!(x.labels.get("command"), Some("prune"), "{x:?}");
    }
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    assert_eq!(files_in(&metrics_dir), ["prune.prom"]);

    // The push: one PUT of the same values to the run's group, credentials as basic auth.
    let pushes = server.requests();
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    let p = &pushes[0];
    assert_eq!(p.method, "PUT");
    assert_eq!(
        p.path,
        "/metrics/job/backup-ns-prune/namespace@base64/=/pvc@base64/="
    );
    assert_eq!(p.content_type.as_deref(), Some("text/plain; version=0.0.4"));
    assert_eq!(
        p.authorization.as_deref(),
        Some("Basic cHVzaGVyOnMzY3JldA==")
    );
    assert_eq!(values(&parse(&p.body)), expected(1.0, 0.0), "{}", p.body);
    assert!(!run.stderr.contains("s3cret"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_a_pushgateway_answering_500_is_retried_logged_and_leaves_the_exit_status() {
    let c = cluster().await;
    seed_history(&c.emu);
    let server = TestServer::start(Behaviour::Status(500));
    let file = c.dir.path().join("prune.prom");
    let url = format!(
        "{}/?token=hidden",
        server.url.replace("http://", "http://u:pw1@")
    );
    let run = prune(
        &c,
        &[
            ("BAK_METRICS_TEXTFILE", file.to_str().unwrap()),
            ("BAK_METRICS_PUSHGATEWAY", &url),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(server.requests().len(), 3, "bounded retries");
    assert!(run.stderr.contains("HTTP 500"), "{run:?}");
    assert!(
        !run.stderr.contains("pw1") && !run.stderr.contains("hidden"),
        "{run:?}"
    );
    // The other sink is written all the same.
    assert_eq!(
        values(&parse(&std::fs::read_to_string(&file).unwrap())),
        expected(1.0, 0.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_a_hanging_pushgateway_costs_one_timeout_and_a_failed_run_keeps_its_status() {
    let c = cluster().await;
    seed_history(&c.emu);
    let server = TestServer::start(Behaviour::Hang);
    // The brake holds (one deletion planned, at most zero allowed): exit 1, nothing changed.
    let run = prune(
        &c,
        &[
            ("BAK_METRICS_PUSHGATEWAY", server.url.as_str()),
            ("BAK_METRICS_TIMEOUT", "1s"),
            ("BAK_MAX_DELETIONS", "0"),
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.took < Duration::from_secs(8), "{run:?}");
    assert!(run.stderr.contains("no answer within"), "{run:?}");
    assert_eq!(server.requests().len(), 1, "a timeout is not retried");
    assert!(c
        .emu
        .get(GROUP, "volumesnapshots", Some("shop"), "data-old")
        .is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_a_bad_sink_setting_is_exit_2_before_anything_happens() {
    let c = cluster().await;
    seed_history(&c.emu);
    let before = c.emu.requests().len();
    for (var, value) in [
        ("BAK_METRICS_PUSHGATEWAY", "pushgateway:9091"),
        ("BAK_METRICS_TEXTFILE", "metrics.prom"),
        ("BAK_METRICS_TIMEOUT", "10"),
    ] {
        let run = prune(&c, &[(var, value)]);
        assert_eq!(run.code, 2, "{var}: {run:?}");
        assert!(run.stderr.contains(var), "{var}: {run:?}");
    }
    assert_eq!(c.emu.requests().len(), before, "no API request");
}
