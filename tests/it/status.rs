//! `backup-ns status` as the real binary against the API emulation: a generated population of
//! PVCs (healthy, stale, failed attempt with and without a snapshot, no backups at all, PVC
//! gone) checked through the table, JSON, YAML and the exit code, and what it costs: exactly
//! one paged LIST of snapshots and one of PVCs, nothing else.

use std::collections::BTreeMap;
use std::process::Command;

use backup_ns::record;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::emu::{fixtures, Emu, Verb};
use crate::harness::{Cluster, Run};

/// Healthy generated PVCs: with one snapshot each, more than one LIST page of each kind.
const GENERATED: usize = 620;

async fn cluster() -> Cluster {
    Cluster::new(Emu::start().await)
}

fn run(c: &Cluster, args: &[&str]) -> Run {
    let mut all = vec!["status"];
    all.extend_from_slice(args);
    c.run(&all, &[])
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A ready snapshot of `ns/pvc` taken `age` ago, with extra `labels`.
fn snapshot(emu: &Emu, ns: &str, pvc: &str, name: &str, age: Duration, labels: &[(&str, &str)]) {
    let mut all = vec![
        ("backup-ns.sh/pvc", pvc),
        ("backup-ns.sh/type", "cronjob"),
        ("backup-ns.sh/retain", "daily_weekly_monthly"),
    ];
    all.extend_from_slice(labels);
    let mut vs = fixtures::volume_snapshot(ns, name, pvc, &all);
    vs["status"] = json!({
        "readyToUse": true,
        "creationTime": rfc3339(Utc::now() - age),
        "restoreSize": "1Gi",
    });
    emu.create(vs);
}

/// A PVC with the record `annotations`.
fn pvc(emu: &Emu, ns: &str, name: &str, annotations: &[(&str, String)]) {
    let mut p = fixtures::pvc(ns, name, true);
    let a: BTreeMap<&str, &str> = annotations.iter().map(|(k, v)| (*k, v.as_str())).collect();
    p["metadata"]["annotations"] = json!(a);
    emu.create(p);
}

fn success(ago: Duration) -> Vec<(&'static str, String)> {
    let at = rfc3339(Utc::now() - ago);
    vec![
        (record::LAST_ATTEMPT, at.clone()),
        (record::LAST_OUTCOME, "succeeded".into()),
        (record::LAST_SUCCESS, at),
        (record::LAST_DURATION, "42.000".into()),
    ]
}

fn failure(
    ago: Duration,
    error: &str,
    last_success: Option<Duration>,
) -> Vec<(&'static str, String)> {
    let mut a = vec![
        (record::LAST_ATTEMPT, rfc3339(Utc::now() - ago)),
        (record::LAST_OUTCOME, "failed".into()),
        (record::LAST_ERROR, error.into()),
        (record::LAST_DURATION, "5.000".into()),
    ];
    if let Some(s) = last_success {
        a.push((record::LAST_SUCCESS, rfc3339(Utc::now() - s)));
    }
    a
}

/// The population; returns the number of rows `status -A` should print.
///
/// - `tenant-NNN/data` ×[`GENERATED`]: healthy (a snapshot 3h ago, a success record);
/// - `shop/data`: healthy, three ready snapshots, one of them due for deletion;
/// - `shop/uploads`: stale (newest ready backup 3 days ago, last attempt succeeded then);
/// - `blog/data`: fresh snapshot, but the last attempt failed (failed);
/// - `blog/cache`: a failure before any snapshot existed: a record, no backups (failed);
/// - `blog/tmp`: a PVC with neither backups nor a record: not ours, not listed;
/// - `old/data`: snapshots of a PVC that is gone (listed, does not fail the run).
fn population(emu: &Emu) -> usize {
    let h = Duration::hours;
    for i in 0..GENERATED {
        let ns = format!("tenant-{i:03}");
        snapshot(
            emu,
            &ns,
            "data",
            &format!("data-{i:03}"),
            h(3),
            &[("backup-ns.sh/daily", "x")],
        );
        pvc(emu, &ns, "data", &success(h(3)));
    }
    let due = (Utc::now() - Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    snapshot(
        emu,
        "shop",
        "data",
        "data-new",
        h(2),
        &[("backup-ns.sh/daily", "d")],
    );
    snapshot(
        emu,
        "shop",
        "data",
        "data-weekly",
        h(50),
        &[("backup-ns.sh/weekly", "w")],
    );
    snapshot(
        emu,
        "shop",
        "data",
        "data-due",
        h(200),
        &[("backup-ns.sh/delete-after", &due)],
    );
    pvc(emu, "shop", "data", &success(h(2)));
    snapshot(
        emu,
        "shop",
        "uploads",
        "uploads-old",
        h(72),
        &[("backup-ns.sh/daily", "d")],
    );
    pvc(emu, "shop", "uploads", &success(h(72)));
    snapshot(emu, "blog", "data", "blog-data", h(5), &[]);
    pvc(
        emu,
        "blog",
        "data",
        &failure(h(1), "snapshot blog/x not ready within 15m", Some(h(5))),
    );
    pvc(
        emu,
        "blog",
        "cache",
        &failure(h(1), "lock timeout: no node slot within 3600s", None),
    );
    pvc(emu, "blog", "tmp", &[]);
    snapshot(
        emu,
        "old",
        "data",
        "old-data",
        h(24 * 40),
        &[("backup-ns.sh/monthly", "m")],
    );
    GENERATED + 5
}

fn by_key(rows: &Value) -> BTreeMap<String, Value> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!(
                    "{}/{}",
                    r["namespace"].as_str().unwrap(),
                    r["pvc"].as_str().unwrap()
                ),
                r.clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_over_a_population_reports_stale_and_failed_pvcs_and_exits_1() {
    let c = cluster().await;
    let expected = population(&c.emu);
    c.emu.clear_requests();

    let r = run(&c, &["-A", "-o", "json"]);
    assert_eq!(r.code, 1, "stale and failed PVCs exist: {r:?}");
    let rows = by_key(&r.json());
    assert_eq!(
        rows.len(),
        expected,
        "{:?}",
        rows.keys().take(10).collect::<Vec<_>>()
    );
    assert!(
        !rows.contains_key("blog/tmp"),
        "a PVC we never backed up is not listed"
    );
    let status = |k: &str| rows[k]["status"].as_str().unwrap().to_owned();
    assert_eq!(status("shop/data"), "ok");
    assert_eq!(status("tenant-000/data"), "ok");
    assert_eq!(status("shop/uploads"), "stale");
    assert_eq!(status("blog/data"), "failed");
    assert_eq!(status("blog/cache"), "failed");
    assert_eq!(status("old/data"), "gone");
    let healthy = &rows["shop/data"];
    assert_eq!(healthy["newestReady"], "data-new");
    assert_eq!(healthy["lastOutcome"], "succeeded");
    assert_eq!(
        (healthy["ready"].as_u64(), healthy["daily"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(healthy["weekly"], 1);
    assert_eq!(healthy["nextDeletionSnapshot"], "data-due");
    assert_eq!(healthy["lastDurationSeconds"], 42.0);
    let failed = &rows["blog/data"];
    assert_eq!(failed["stale"], false);
    assert_eq!(failed["attemptFailed"], true);
    assert_eq!(failed["lastError"], "snapshot blog/x not ready within 15m");
    assert_eq!(rows["blog/cache"]["newestReady"], Value::Null);
    assert_eq!(
        rows["blog/cache"]["lastError"],
        "lock timeout: no node slot within 3600s"
    );
    assert_eq!(rows["old/data"]["pvcExists"], false);

    // Exactly one paged LIST per kind: > 500 of each, so two pages each, and nothing else.
    let requests: Vec<(Verb, Option<&str>, String)> = c
        .emu
        .requests()
        .into_iter()
        .map(|r| (r.verb, r.resource, r.query))
        .collect();
    let lists = |kind: &str| -> Vec<String> {
        requests
            .iter()
            .filter(|(v, r, _)| *v == Verb::List && *r == Some(kind))
            .map(|(_, _, q)| q.clone())
            .collect()
    };
    let snapshots = lists("volumesnapshots");
    let claims = lists("persistentvolumeclaims");
    assert_eq!(requests.len(), 4, "{requests:?}");
    assert_eq!((snapshots.len(), claims.len()), (2, 2), "{requests:?}");
    for pages in [&snapshots, &claims] {
        assert!(pages.iter().all(|q| q.contains("limit=500")), "{pages:?}");
        assert!(!pages[0].contains("continue=") && pages[1].contains("continue="));
    }
    assert!(
        snapshots[0].contains("labelSelector=backup-ns.sh%2Fpvc"),
        "{snapshots:?}"
    );
    c.emu.assert_no_unexpected();

    // The table: kubectl columns, no colour when stdout is not a terminal.
    let r = run(&c, &["-A"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!r.stdout.contains('\x1b'), "{r:?}");
    let lines: Vec<Vec<&str>> = r
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "NAMESPACE",
            "PVC",
            "LAST-BACKUP",
            "LAST-ATTEMPT",
            "OUTCOME",
            "DAILY",
            "WEEKLY",
            "MONTHLY",
            "DAYS",
            "PENDING",
            "FAILED",
            "NEXT-DELETION",
            "STATUS"
        ]
    );
    let line = |ns: &str, pvc: &str| -> Vec<&str> {
        lines
            .iter()
            .find(|l| l[0] == ns && l[1] == pvc)
            .unwrap_or_else(|| panic!("no line {ns}/{pvc}:\n{}", r.stdout))
            .clone()
    };
    assert_eq!(
        line("blog", "data")[4..],
        ["failed", "0", "0", "0", "0", "0", "0", "-", "failed"]
    );
    assert_eq!(line("blog", "cache")[2..5], ["<none>", "60m", "failed"]);
    assert_eq!(line("shop", "uploads")[2], "3d");
    assert_eq!(*line("shop", "uploads").last().unwrap(), "stale");
    assert_eq!(line("old", "data")[3..5], ["-", "-"]);
    assert_eq!(*line("old", "data").last().unwrap(), "gone");
    // Sorted by namespace, then PVC.
    let keys: Vec<(&str, &str)> = lines[1..].iter().map(|l| (l[0], l[1])).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    // YAML says the same as JSON.
    let yaml = run(&c, &["-A", "-o", "yaml"]);
    let parsed: Value = serde_yaml::from_str(&yaml.stdout).unwrap();
    assert_eq!(by_key(&parsed).len(), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_of_healthy_pvcs_exits_0_and_max_age_decides_staleness() {
    let c = cluster().await;
    population(&c.emu);
    let r = run(&c, &["-n", "shop", "--pvc", "data", "-o", "wide"]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{r:?}");
    assert!(lines[0].starts_with("PVC "), "{r:?}");
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cells[0], "data");
    assert_eq!(cells[11..], ["data-new", "42s", "-", "-", "ok"], "{r:?}");

    // Three days old: stale at the default 26h, fresh with --max-age 80h.
    let r = run(&c, &["-n", "shop", "--pvc", "uploads", "-o", "json"]);
    assert_eq!((r.code, r.json()[0]["status"].clone()), (1, json!("stale")));
    let r = run(
        &c,
        &[
            "-n",
            "shop",
            "--pvc",
            "uploads",
            "--max-age",
            "80h",
            "-o",
            "json",
        ],
    );
    assert_eq!(
        (r.code, r.json()[0]["status"].clone()),
        (0, json!("ok")),
        "{r:?}"
    );

    // A PVC gone is no reason to alert.
    let r = run(&c, &["-n", "old"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(" gone"), "{r:?}");

    // A PVC you name is listed, and stale, when it has no backup at all.
    let r = run(&c, &["-n", "blog", "--pvc", "tmp", "-o", "json"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()[0]["status"], "stale");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_bad_input_exits_2_before_any_request() {
    let c = cluster().await;
    for args in [
        &["--max-age", "0"][..],
        &["--max-age", "26"],
        &["--pvc", "not a name"],
        &["-n", "Bad_NS"],
        &["-A", "--qps", "0"],
    ] {
        let r = run(&c, args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stdout.is_empty(), "{r:?}");
    }
    let r = run(&c, &["--max-age", "0"]);
    assert!(r.stderr.contains("BAK_STATUS_MAX_AGE (--max-age)"), "{r:?}");
    assert!(c.emu.requests().is_empty(), "{:?}", c.emu.requests());
}

/// Issue 9 §3: `status -o prometheus` prints the freshness gauges, read back with an
/// independent parser.
#[tokio::test(flavor = "multi_thread")]
async fn status_prints_the_freshness_gauges_for_prometheus() {
    let c = cluster().await;
    let last = Utc::now() - Duration::hours(3);
    let mut record = success(Duration::hours(3));
    record[0].1 = rfc3339(last);
    record[2].1 = rfc3339(last);
    pvc(&c.emu, "shop", "data", &record);
    snapshot(
        &c.emu,
        "shop",
        "data",
        "data-a",
        Duration::hours(3),
        &[("backup-ns.sh/daily", "x")],
    );
    snapshot(&c.emu, "shop", "data", "data-b", Duration::hours(27), &[]);
    pvc(
        &c.emu,
        "blog",
        "cache",
        &failure(Duration::hours(1), "dump failed", None),
    );

    let r = run(&c, &["-A", "-o", "prometheus"]);
    assert_eq!(r.code, 1, "blog/cache failed: {r:?}");
    let lines = r.stdout.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition format");
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("{name}: {other:?}"),
            })
    };
    let shop = [("namespace", "shop"), ("pvc", "data")];
    let success = value("backup_ns_last_success_timestamp_seconds", &shop).expect("shop success");
    assert_eq!(success as i64, last.timestamp(), "{}", r.stdout);
    let mut ready_daily = shop.to_vec();
    ready_daily.extend([("class", "daily"), ("state", "ready")]);
    assert_eq!(value("backup_ns_snapshots", &ready_daily), Some(1.0));
    let mut ready_any = shop.to_vec();
    ready_any.extend([("class", "any"), ("state", "ready")]);
    assert_eq!(value("backup_ns_snapshots", &ready_any), Some(2.0));
    let blog = [("namespace", "blog"), ("pvc", "cache")];
    assert_eq!(
        value("backup_ns_last_success_timestamp_seconds", &blog),
        None
    );
    assert!(value("backup_ns_last_attempt_timestamp_seconds", &blog).is_some());
    // `list` has no such format.
    let out = Command::new(env!("CARGO_BIN_EXE_backup-ns"))
        .args(["list", "-A", "-o", "prometheus"])
        .env_clear()
        .env("KUBECONFIG", &c.kubeconfig)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
