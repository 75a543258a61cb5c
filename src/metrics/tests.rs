//! The metrics as an independent parser (`prometheus-parse`) reads them, and the sinks against
//! a local HTTP server and a temporary directory.

use std::time::{Duration, Instant};

use chrono::TimeZone;
use prometheus_parse::{Scrape, Value};

use super::*;

use crate::http::http_server::{Behaviour, TestServer};

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parseable exposition")
}

fn value(v: &Value) -> f64 {
    match v {
        Value::Counter(x) | Value::Gauge(x) | Value::Untyped(x) => *x,
        other => panic!("not a single value: {other:?}"),
    }
}

/// The value of the one sample of `metric` whose labels include `labels` exactly (and no other
/// label than `extra`).
fn sample(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = s
        .samples
        .iter()
        .filter(|x| x.metric == metric)
        .filter(|x| {
            x.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v))
        })
        .map(|x| value(&x.value))
        .collect();
    assert!(found.len() <= 1, "{metric} {labels:?} twice");
    found.first().copied()
}

fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 4, h, m, s).unwrap()
}

fn create_run(outcome: Outcome) -> CreateMetrics {
    CreateMetrics {
        namespace: "shop".into(),
        pvc: "data".into(),
        started: t(2, 0, 0),
        finished: t(2, 1, 30),
        outcome,
        previous_success: Some(t(1, 0, 0) - chrono::Duration::days(1)),
        phases: vec![
            ("lock".into(), 0.25),
            ("dump".into(), 61.5),
            ("snapshot".into(), 20.0),
        ],
        dump_bytes: Some(123_456_789),
    }
}

#[test]
fn create_metrics_parse_with_names_labels_and_values() {
    let m = Metrics::create(&create_run(Outcome::Succeeded));
    let s = parse(&m.text());
    let key = [("namespace", "shop"), ("pvc", "data")];
    let started = t(2, 0, 0).timestamp() as f64;
    assert_eq!(sample(&s, LAST_ATTEMPT, &key), Some(started));
    assert_eq!(sample(&s, LAST_SUCCESS, &key), Some(started));
    for (outcome, n) in [("succeeded", 1.0), ("failed", 0.0), ("skipped", 0.0)] {
        let labels = [key[0], key[1], ("outcome", outcome)];
        assert_eq!(sample(&s, ATTEMPTS, &labels), Some(n), "{outcome}");
    }
    for (phase, secs) in [
        ("lock", 0.25),
        ("dump", 61.5),
        ("snapshot", 20.0),
        ("total", 90.0),
    ] {
        let labels = [key[0], key[1], ("phase", phase)];
        assert_eq!(sample(&s, PHASE_DURATION, &labels), Some(secs), "{phase}");
    }
    assert_eq!(sample(&s, DUMP_BYTES, &key), Some(123_456_789.0));
    // Typed and documented as the README says.
    assert!(matches!(
        s.samples
            .iter()
            .find(|x| x.metric == ATTEMPTS)
            .unwrap()
            .value,
        Value::Counter(_)
    ));
    for d in DOCS.iter().filter(|d| d.written_by.contains("create")) {
        assert_eq!(
            s.docs.get(d.name).map(String::as_str),
            Some(d.help),
            "{}",
            d.name
        );
    }
}

#[test]
fn a_failed_attempt_keeps_the_previous_success_and_counts_a_failure() {
    let run = create_run(Outcome::Failed);
    let s = parse(&Metrics::create(&run).text());
    let key = [("namespace", "shop"), ("pvc", "data")];
    assert_eq!(
        sample(&s, LAST_SUCCESS, &key),
        Some(run.previous_success.unwrap().timestamp() as f64)
    );
    assert_eq!(
        sample(&s, ATTEMPTS, &[key[0], key[1], ("outcome", "failed")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&s, ATTEMPTS, &[key[0], key[1], ("outcome", "succeeded")]),
        Some(0.0)
    );
    // Never a success: no last-success sample at all (not 0, which would read as 1970).
    let first = CreateMetrics {
        previous_success: None,
        dump_bytes: None,
        ..run
    };
    let s = parse(&Metrics::create(&first).text());
    assert_eq!(sample(&s, LAST_SUCCESS, &key), None);
    assert_eq!(sample(&s, DUMP_BYTES, &key), None);
}

#[test]
fn retention_metrics_carry_command_and_namespace() {
    let counts = RetentionCounts {
        unlabelled: 3,
        marked: 2,
        deleted: 5,
        failed: 1,
    };
    let s = parse(&Metrics::retention("prune", None, counts).text());
    let labels = [("command", "prune"), ("namespace", "")];
    // An empty label value is the same as none to Prometheus; the encoder may leave it out.
    let get = |name| sample(&s, name, &labels).or_else(|| sample(&s, name, &labels[..1]));
    assert_eq!(get(UNLABELLED), Some(3.0));
    assert_eq!(get(MARKED), Some(2.0));
    assert_eq!(get(DELETED), Some(5.0));
    assert_eq!(get(FAILED), Some(1.0));
    let s = parse(&Metrics::retention("retain", Some("shop"), counts).text());
    assert_eq!(
        sample(
            &s,
            UNLABELLED,
            &[("command", "retain"), ("namespace", "shop")]
        ),
        Some(3.0)
    );
}

#[test]
fn push_path_is_the_grouping_key_with_base64_for_empty_values_and_slashes() {
    let m = Metrics::create(&create_run(Outcome::Succeeded));
    assert_eq!(
        m.push_path(),
        "/metrics/job/backup-ns/namespace/shop/pvc/data"
    );
    let r = Metrics::retention("prune", None, RetentionCounts::default());
    assert_eq!(
        r.push_path(),
        "/metrics/job/backup-ns-prune/namespace@base64/=/pvc@base64/="
    );
    let odd = Metrics {
        grouping: vec![("pvc", "a/b".into())],
        ..m.clone()
    };
    // "a/b" in URL-safe base64.
    assert_eq!(odd.push_path(), "/metrics/job/backup-ns/pvc@base64/YS9i");
    assert_eq!(
        push_url("http://pgw:9091/prefix/", &m),
        "http://pgw:9091/prefix/metrics/job/backup-ns/namespace/shop/pvc/data"
    );
    assert_eq!(
        Metrics::freshness(&[]).push_path(),
        "/metrics/job/backup-ns-status"
    );
}

#[test]
fn the_push_body_leaves_the_grouping_labels_to_the_path() {
    let m = Metrics::create(&create_run(Outcome::Succeeded));
    let s = parse(&m.push_body());
    assert!(!s.samples.is_empty());
    for x in &s.samples {
        assert!(
            x.labels.get("namespace").is_none() && x.labels.get("pvc").is_none(),
            "{x:?}"
        );
    }
    assert_eq!(sample(&s, ATTEMPTS, &[("outcome", "succeeded")]), Some(1.0));
}

#[test]
fn freshness_has_one_set_of_gauges_per_row() {
    let rows = vec![
        FreshnessRow {
            namespace: "shop".into(),
            pvc: "data".into(),
            last_success: Some(t(2, 0, 0)),
            last_attempt: Some(t(2, 0, 0)),
            last_outcome: Some(Outcome::Succeeded),
            newest_ready: Some(t(2, 1, 0)),
            snapshots: vec![
                ("daily".into(), "ready".into(), 7),
                ("weekly".into(), "ready".into(), 4),
                ("daily".into(), "pending".into(), 1),
            ],
        },
        FreshnessRow {
            namespace: "blog".into(),
            pvc: "db".into(),
            last_attempt: Some(t(3, 0, 0)),
            last_outcome: Some(Outcome::Failed),
            snapshots: vec![("days".into(), "failed".into(), 2)],
            ..FreshnessRow::default()
        },
    ];
    let s = parse(&freshness(&rows));
    let shop = [("namespace", "shop"), ("pvc", "data")];
    let blog = [("namespace", "blog"), ("pvc", "db")];
    assert_eq!(
        sample(&s, LAST_SUCCESS, &shop),
        Some(t(2, 0, 0).timestamp() as f64)
    );
    assert_eq!(sample(&s, LAST_SUCCESS, &blog), None);
    assert_eq!(
        sample(&s, LAST_ATTEMPT, &blog),
        Some(t(3, 0, 0).timestamp() as f64)
    );
    assert_eq!(
        sample(&s, NEWEST_READY, &shop),
        Some(t(2, 1, 0).timestamp() as f64)
    );
    assert_eq!(
        sample(&s, ATTEMPTS, &[blog[0], blog[1], ("outcome", "failed")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&s, ATTEMPTS, &[shop[0], shop[1], ("outcome", "failed")]),
        Some(0.0)
    );
    let snap = |ns: [(&'static str, &'static str); 2], class, state| {
        sample(
            &s,
            SNAPSHOTS,
            &[ns[0], ns[1], ("class", class), ("state", state)],
        )
    };
    assert_eq!(snap(shop, "daily", "ready"), Some(7.0));
    assert_eq!(snap(shop, "weekly", "ready"), Some(4.0));
    assert_eq!(snap(shop, "daily", "pending"), Some(1.0));
    assert_eq!(snap(blog, "days", "failed"), Some(2.0));
    assert_eq!(snap(blog, "daily", "ready"), None);
}

#[test]
fn the_readme_metrics_table_is_docs() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let header = "| metric | type | labels | written by | meaning |";
    let start = readme.find(header).expect("README has the metrics table");
    let len: usize = readme[start..]
        .split_inclusive('\n')
        .take_while(|l| l.starts_with('|'))
        .map(str::len)
        .sum();
    let expected = readme_table();
    if readme[start..start + len] != expected {
        if std::env::var_os("BACKUP_NS_BLESS").is_some() {
            let mut fixed = readme.clone();
            fixed.replace_range(start..start + len, &expected);
            std::fs::write(&path, fixed).unwrap();
            return;
        }
        panic!(
            "README's metrics table differs from metrics::DOCS (BACKUP_NS_BLESS=1 cargo test \
             --lib metrics rewrites it):\n{expected}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Sinks

#[test]
fn the_textfile_is_replaced_atomically_with_mode_0644() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup-ns.prom");
    std::fs::write(&path, "old").unwrap();
    let m = Metrics::create(&create_run(Outcome::Succeeded));
    write_textfile(&path, &m.text()).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), m.text());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // Only the file itself: the temporary file was renamed, not left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("backup-ns.prom")]);
    // A directory that does not exist: an error, and nothing is left.
    assert!(write_textfile(&dir.path().join("no/such.prom"), "x").is_err());
}

fn sinks(url: &str, timeout: Duration) -> Sinks {
    Sinks {
        pushgateway: Some(url.to_owned()),
        textfile: None,
        timeout,
        retry: http::Retry {
            attempts: 3,
            backoff: Duration::from_millis(10),
            retry_timeouts: false,
        },
    }
}

#[tokio::test]
async fn a_push_is_a_put_of_the_text_format_to_the_grouping_key() {
    let server = TestServer::start(Behaviour::Status(200));
    let m = Metrics::create(&create_run(Outcome::Failed));
    assert!(sinks(&server.url, Duration::from_secs(5)).write(&m).await);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.path, "/metrics/job/backup-ns/namespace/shop/pvc/data");
    assert_eq!(r.content_type.as_deref(), Some("text/plain; version=0.0.4"));
    let s = parse(&r.body);
    assert_eq!(sample(&s, ATTEMPTS, &[("outcome", "failed")]), Some(1.0));
    assert_eq!(r.authorization, None);
}

#[tokio::test]
async fn credentials_in_the_url_are_sent_as_basic_auth_and_never_logged() {
    let server = TestServer::start(Behaviour::Status(200));
    let url = server.url.replace("http://", "http://pusher:s3cret@");
    let m = Metrics::retention("prune", None, RetentionCounts::default());
    assert!(sinks(&url, Duration::from_secs(5)).write(&m).await);
    let r = &server.requests()[0];
    // base64("pusher:s3cret")
    assert_eq!(
        r.authorization.as_deref(),
        Some("Basic cHVzaGVyOnMzY3JldA==")
    );
    assert_eq!(
        r.path,
        "/metrics/job/backup-ns-prune/namespace@base64/=/pvc@base64/="
    );
}

#[tokio::test]
async fn a_500_is_retried_a_bounded_number_of_times_and_reported() {
    let server = TestServer::start(Behaviour::Status(500));
    let m = Metrics::create(&create_run(Outcome::Succeeded));
    let err = push(
        &server.url,
        &m,
        Duration::from_secs(5),
        http::Retry {
            attempts: 3,
            backoff: Duration::from_millis(10),
            retry_timeouts: false,
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            http::HttpError::Status {
                status: 500,
                attempts: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(server.requests().len(), 3);
    assert!(!sinks(&server.url, Duration::from_secs(5)).write(&m).await);
}

#[tokio::test]
async fn a_400_is_not_retried() {
    let server = TestServer::start(Behaviour::Status(400));
    let m = Metrics::create(&create_run(Outcome::Succeeded));
    assert!(!sinks(&server.url, Duration::from_secs(5)).write(&m).await);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_hanging_pushgateway_costs_one_timeout() {
    let server = TestServer::start(Behaviour::Hang);
    let m = Metrics::create(&create_run(Outcome::Succeeded));
    let start = Instant::now();
    let err = push(
        &server.url,
        &m,
        Duration::from_millis(300),
        http::Retry::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, http::HttpError::Timeout { .. }), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported_with_the_url_redacted() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://u:topsecret@127.0.0.1:{port}/?token=alsosecret");
    let m = Metrics::create(&create_run(Outcome::Succeeded));
    let err = push(
        &url,
        &m,
        Duration::from_secs(2),
        http::Retry {
            attempts: 2,
            backoff: Duration::from_millis(10),
            retry_timeouts: false,
        },
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, http::HttpError::Transport { attempts: 2, .. }),
        "{text}"
    );
    assert!(
        !text.contains("topsecret") && !text.contains("alsosecret"),
        "{text}"
    );
}

#[tokio::test]
async fn emit_hands_the_metrics_to_collect() {
    let m = Metrics::retention("retain", Some("shop"), RetentionCounts::default());
    let (out, emitted) = collect(async {
        emit(m.clone());
        7
    })
    .await;
    assert_eq!(out, 7);
    assert_eq!(emitted.map(|e| e.text()), Some(m.text()));
    let (_, none) = collect(async {}).await;
    assert!(none.is_none());
    // Outside collect: ignored, no panic.
    emit(m);
}

#[test]
fn sinks_from_args_reject_bad_values_naming_the_variable_and_redacting() {
    let args = |push: Option<&str>, file: Option<&str>, timeout: Option<&str>| GlobalArgs {
        log_format: crate::cli::LogFormat::Text,
        verbose: 0,
        quiet: 0,
        output: crate::cli::Output::Text,
        metrics_pushgateway: push.map(str::to_owned),
        metrics_textfile: file.map(str::to_owned),
        metrics_timeout: timeout.map(str::to_owned),
    };
    let ok = Sinks::from_args(&args(Some("http://pgw:9091"), Some("/m/x.prom"), None)).unwrap();
    assert_eq!(ok.timeout, Duration::from_secs(10));
    assert!(Sinks::from_args(&args(None, None, None))
        .unwrap()
        .is_empty());
    // Empty means unset (the chart renders an empty value for "off").
    assert!(Sinks::from_args(&args(Some(""), Some(""), None))
        .unwrap()
        .is_empty());

    let e = Sinks::from_args(&args(Some("ftp://u:pw@pgw/?k=v"), None, None)).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("BAK_METRICS_PUSHGATEWAY"), "{text}");
    assert!(!text.contains("pw") && !text.contains("k=v"), "{text}");
    assert_eq!(e.exit_status(), crate::ExitStatus::Usage);

    let e = Sinks::from_args(&args(None, Some("relative.prom"), None)).unwrap_err();
    assert!(e.to_string().contains("BAK_METRICS_TEXTFILE"), "{e}");
    let e = Sinks::from_args(&args(None, None, Some("0s"))).unwrap_err();
    assert!(e.to_string().contains("BAK_METRICS_TIMEOUT"), "{e}");
    let e = Sinks::from_args(&args(None, None, Some("10"))).unwrap_err();
    assert!(e.to_string().contains("BAK_METRICS_TIMEOUT"), "{e}");
}
