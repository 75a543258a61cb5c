//! Notifications against local HTTP servers: what a webhook receives (JSON and Slack), the
//! healthcheck pings in order, and delivery that fails (500, a server that hangs, 4xx, nothing
//! listening) without ever failing the caller. Also `backup-ns env` and exit 2 for the
//! settings. `create` itself is wired to the notifier separately.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::http_server::{Behaviour, TestServer};
use backup_ns::http::Retry;
use backup_ns::notify::{
    DumpInfo, LogTail, Notification, Notifier, NotifyFormat, NotifyOn, NotifySettings, Outcome,
    PhaseTime, SecretUrl,
};
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

/// The secret part of every test URL: it must never show in logs or errors.
const TOKEN: &str = "T0KEN-s3cr3t";

/// How a test server answers.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    /// Reads the request, never answers.
    Hang,
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query.
    target: String,
    content_type: String,
    body: Vec<u8>,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A hyper server on 127.0.0.1 answering every request with `answer`, recording what it got.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    async fn start(answer: Answer) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let record = record.clone();
                        async move {
                            let method = req.method().to_string();
                            let target = req
                                .uri()
                                .path_and_query()
                                .map(|pq| pq.to_string())
                                .unwrap_or_default();
                            let content_type = req
                                .headers()
                                .get(http::header::CONTENT_TYPE)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            record.lock().unwrap().push(Seen {
                                method,
                                target,
                                content_type,
                                body: body.to_vec(),
                            });
                            match answer {
                                Answer::Status(code) => Ok::<_, Infallible>(
                                    hyper::Response::builder()
                                        .status(code)
                                        .body(Full::new(Bytes::from_static(b"ok")))
                                        .unwrap(),
                                ),
                                Answer::Hang => std::future::pending().await,
                            }
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Server { addr, seen }
    }

    /// `http://127.0.0.1:PORT/<path>`.
    fn url(&self, path: &str) -> SecretUrl {
        SecretUrl::parse(&format!("http://{}/{path}", self.addr)).unwrap()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// [`Notifier::RETRY`] with short pauses.
fn fast() -> Retry {
    Retry {
        backoff: Duration::from_millis(20),
        ..Notifier::RETRY
    }
}

fn run(outcome: Outcome) -> Notification {
    let start = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
    let mut n = Notification::new(
        "shop",
        "data",
        outcome,
        start,
        start + chrono::Duration::milliseconds(42_500),
    );
    n.phases = vec![PhaseTime {
        name: "dump-postgres".into(),
        seconds: 40.0,
    }];
    n.dumps = vec![DumpInfo {
        engine: "postgres".into(),
        pod: "app-0".into(),
        container: "postgres".into(),
        file: "/var/lib/postgresql/data/dump.sql.gz".into(),
        bytes: Some(1234),
    }];
    n.host = Some("backup-data-x7k".into());
    match outcome {
        Outcome::Success => n.snapshot = Some("data-20240102-030405-abcdef".into()),
        Outcome::Failure => {
            n.error = Some("postgres dump in pod app-0 failed (exit 1): disk full".into())
        }
    }
    n
}

/// Runs `f` with the log lines it produces captured.
async fn logged<F: std::future::Future>(f: F) -> (F::Output, String) {
    let tail = LogTail::new();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(tail.clone()));
    let out = f.await;
    (out, tail.lines().join("\n"))
}

#[tokio::test]
async fn a_failed_run_posts_the_json_payload_to_every_webhook() {
    let (a, b) = (
        Server::start(Answer::Status(200)).await,
        Server::start(Answer::Status(204)).await,
    );
    let mut notifier = Notifier::new(NotifySettings {
        urls: vec![a.url(&format!("hook/{TOKEN}")), b.url("other")],
        ..NotifySettings::default()
    })
    .with_retry(fast());
    let deliveries = notifier.finish(&run(Outcome::Failure)).await;
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries.iter().all(|d| d.delivered()), "{deliveries:?}");

    let seen = a.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].target, format!("/hook/{TOKEN}"));
    assert_eq!(seen[0].content_type, "application/json");
    let v = seen[0].json();
    assert_eq!(v["namespace"], "shop");
    assert_eq!(v["pvc"], "data");
    assert_eq!(v["outcome"], "failure");
    assert_eq!(
        v["error"],
        "postgres dump in pod app-0 failed (exit 1): disk full"
    );
    assert_eq!(v["snapshot"], Value::Null);
    assert_eq!(v["startedAt"], "2024-01-02T03:04:05.000Z");
    assert_eq!(v["finishedAt"], "2024-01-02T03:04:47.500Z");
    assert_eq!(v["durationSeconds"], 42.5);
    assert_eq!(v["phases"][0]["name"], "dump-postgres");
    assert_eq!(v["dumps"][0]["bytes"], 1234);
    assert_eq!(v["host"], "backup-data-x7k");
    assert_eq!(b.seen()[0].json(), v);
}

#[tokio::test]
async fn the_slack_format_posts_a_slack_message_and_always_notifies_success_too() {
    let server = Server::start(Answer::Status(200)).await;
    let mut notifier = Notifier::new(NotifySettings {
        urls: vec![server.url("services/T0/B0/x")],
        on: NotifyOn::Always,
        format: NotifyFormat::Slack,
        ..NotifySettings::default()
    })
    .with_retry(fast());
    notifier.finish(&run(Outcome::Success)).await;
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let v = seen[0].json();
    assert_eq!(
        v["text"],
        ":white_check_mark: backup-ns: backup of shop/data succeeded in 42.5s: snapshot data-20240102-030405-abcdef"
    );
    assert!(v["blocks"].is_array());
}

#[tokio::test]
async fn by_default_a_successful_run_sends_no_webhook() {
    let server = Server::start(Answer::Status(200)).await;
    let mut notifier = Notifier::new(NotifySettings {
        urls: vec![server.url("hook")],
        ..NotifySettings::default()
    });
    assert!(notifier.finish(&run(Outcome::Success)).await.is_empty());
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_server_answering_500_is_retried_a_bounded_number_of_times_then_given_up() {
    let server = Server::start(Answer::Status(500)).await;
    let mut notifier = Notifier::new(NotifySettings {
        urls: vec![server.url(&format!("hook/{TOKEN}"))],
        ..NotifySettings::default()
    })
    .with_retry(fast());
    let (deliveries, logs) = logged(notifier.finish(&run(Outcome::Failure))).await;
    assert_eq!(server.seen().len(), 3, "three attempts, then given up");
    assert_eq!(deliveries[0].attempts, 3);
    assert_eq!(
        deliveries[0].error.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );
    let shown = format!("http://{}/…", server.addr);
    assert!(
        logs.contains(&format!(
            "webhook notification to {shown} not delivered after 3 attempt(s): HTTP 500"
        )),
        "{logs}"
    );
    assert!(
        !logs.contains(TOKEN),
        "the URL's secret reached the log:\n{logs}"
    );
}

#[tokio::test]
async fn no_error_or_log_line_of_a_failed_delivery_shows_the_path_even_when_the_server_quotes_it() {
    // Both answer with a body quoting the request's path and query, token and all.
    let webhook = TestServer::start(Behaviour::Echo(503));
    let ping = TestServer::start(Behaviour::Echo(404));
    let mut notifier = Notifier::new(NotifySettings {
        urls: vec![
            SecretUrl::parse(&format!("{}/services/{TOKEN}?t={TOKEN}", webhook.url)).unwrap(),
        ],
        healthcheck: Some(SecretUrl::parse(&format!("{}/ping/{TOKEN}", ping.url)).unwrap()),
        ..NotifySettings::default()
    })
    .with_retry(fast());
    notifier.start();
    let (deliveries, logs) = logged(notifier.finish(&run(Outcome::Failure))).await;
    assert_eq!(deliveries.len(), 3, "{deliveries:?}");
    assert!(deliveries.iter().all(|d| !d.delivered()), "{deliveries:?}");
    assert_eq!(webhook.requests().len(), 3);
    assert!(webhook.requests()[0].path.contains(TOKEN));
    // The retries are logged (by the HTTP layer, with the answer's body), showing the origin.
    assert!(
        logs.contains(&format!("POST {}: HTTP 503: no such hook: /…", webhook.url)),
        "{logs}"
    );
    let reported = format!("{deliveries:?}");
    for shown in [&logs, &reported] {
        assert!(!shown.contains(TOKEN), "the URL's secret got out:\n{shown}");
    }
}

#[tokio::test]
async fn a_4xx_answer_is_not_retried() {
    let server = Server::start(Answer::Status(404)).await;
    let mut notifier = Notifier::new(NotifySettings {
        urls: vec![server.url("gone")],
        ..NotifySettings::default()
    })
    .with_retry(fast());
    let deliveries = notifier.finish(&run(Outcome::Failure)).await;
    assert_eq!(server.seen().len(), 1);
    assert_eq!(deliveries[0].attempts, 1);
    assert!(
        deliveries[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("404") && e.contains("not retried")),
        "{deliveries:?}"
    );
}

#[tokio::test]
async fn a_hanging_server_costs_at_most_the_timeouts_and_others_still_get_theirs() {
    let hang = Server::start(Answer::Hang).await;
    let ok = Server::start(Answer::Status(200)).await;
    let mut notifier = Notifier::new(NotifySettings {
        urls: vec![hang.url(&format!("hook/{TOKEN}")), ok.url("hook")],
        timeout: Duration::from_millis(300),
        ..NotifySettings::default()
    })
    .with_retry(fast());
    let bound = notifier.bound();
    let started = Instant::now();
    let (deliveries, logs) = logged(notifier.finish(&run(Outcome::Failure))).await;
    let took = started.elapsed();
    // Three attempts of 300 ms and two short backoffs: the timeout is honoured each time, and
    // the whole is bounded.
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < bound, "{took:?} ≥ {bound:?}");
    assert_eq!(hang.seen().len(), 3);
    assert_eq!(
        deliveries[0].error.as_deref(),
        Some("no answer within 300ms")
    );
    assert!(deliveries[1].delivered(), "{deliveries:?}");
    assert_eq!(ok.seen().len(), 1);
    assert!(!logs.contains(TOKEN), "{logs}");
}

#[tokio::test]
async fn a_hanging_ping_service_holds_the_end_of_the_run_at_most_the_bound() {
    let hang = Server::start(Answer::Hang).await;
    let mut notifier = Notifier::new(NotifySettings {
        healthcheck: Some(hang.url(&format!("ping/{TOKEN}"))),
        timeout: Duration::from_millis(200),
        ..NotifySettings::default()
    })
    .with_retry(fast());
    let bound = notifier.bound();
    notifier.start();
    let started = Instant::now();
    let deliveries = notifier.finish(&run(Outcome::Failure)).await;
    assert!(
        started.elapsed() < bound,
        "{:?} ≥ {bound:?}",
        started.elapsed()
    );
    assert!(deliveries.iter().all(|d| !d.delivered()), "{deliveries:?}");
}

#[tokio::test]
async fn nothing_listening_is_logged_and_returns() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = SecretUrl::parse(&format!("http://127.0.0.1:{port}/ping/{TOKEN}")).unwrap();
    let mut notifier = Notifier::new(NotifySettings {
        healthcheck: Some(url),
        ..NotifySettings::default()
    })
    .with_retry(fast());
    notifier.start();
    let (deliveries, logs) = logged(notifier.finish(&run(Outcome::Failure))).await;
    let fail = deliveries.last().unwrap();
    assert_eq!(fail.what, "healthcheck /fail ping");
    assert_eq!(fail.attempts, 3);
    assert!(
        fail.error
            .as_deref()
            .is_some_and(|e| e.starts_with("request failed")),
        "{fail:?}"
    );
    assert!(!logs.contains(TOKEN), "{logs}");
}

#[tokio::test]
async fn healthcheck_pings_start_then_success() {
    let server = Server::start(Answer::Status(200)).await;
    let mut notifier = Notifier::new(NotifySettings {
        healthcheck: Some(server.url("ping/uuid-1")),
        ..NotifySettings::default()
    })
    .with_retry(fast());
    notifier.start();
    let deliveries = notifier.finish(&run(Outcome::Success)).await;
    assert!(deliveries.iter().all(|d| d.delivered()), "{deliveries:?}");
    let seen = server.seen();
    let targets: Vec<&str> = seen.iter().map(|s| s.target.as_str()).collect();
    assert_eq!(targets.len(), 2, "{targets:?}");
    let rid = targets[0]
        .strip_prefix("/ping/uuid-1/start?rid=")
        .unwrap_or_else(|| panic!("{targets:?}"));
    assert_eq!(rid.len(), 36);
    assert_eq!(targets[1], format!("/ping/uuid-1?rid={rid}"));
    assert!(seen[1].text().contains("succeeded"), "{}", seen[1].text());
}

#[tokio::test]
async fn healthcheck_fail_ping_carries_the_error_and_the_last_log_lines() {
    let server = Server::start(Answer::Status(200)).await;
    let mut notifier = Notifier::new(NotifySettings {
        healthcheck: Some(server.url("ping/uuid-2")),
        ..NotifySettings::default()
    })
    .with_retry(fast());
    notifier.start();
    let mut n = run(Outcome::Failure);
    n.log_lines = (0..300)
        .map(|i| format!("2024-01-02T03:04:05Z  INFO step {i} {}", "x".repeat(60)))
        .collect();
    notifier.finish(&n).await;
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].target.starts_with("/ping/uuid-2/start?rid="));
    assert!(seen[1].target.starts_with("/ping/uuid-2/fail?rid="));
    let body = seen[1].text();
    assert!(body.len() <= 10 * 1024, "{}", body.len());
    assert!(
        body.starts_with(
            "backup-ns: backup of shop/data failed after 42.5s\n\
             error: postgres dump in pod app-0 failed (exit 1): disk full\n"
        ),
        "{body}"
    );
    assert!(body.contains("INFO step 299 "), "{body}");
}

// ---------------------------------------------------------------------------------------------
// Settings at the binary level

fn env_cmd(vars: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_backup-ns"))
        .args(["env", "-o", "json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BAK_DB_SKIP", "true")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run backup-ns")
}

#[test]
fn env_shows_notification_urls_redacted() {
    let out = env_cmd(&[
        (
            "BAK_NOTIFY_URL",
            "https://hooks.slack.com/services/T0KEN-s3cr3t,http://alerts.local:8080/h?t=T0KEN-s3cr3t",
        ),
        ("BAK_HEALTHCHECK_URL", "https://hc-ping.com/T0KEN-s3cr3t"),
        ("BAK_NOTIFY_ON", "always"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(TOKEN), "{stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["BAK_NOTIFY_URL"],
        "https://hooks.slack.com/…,http://alerts.local:8080/…"
    );
    assert_eq!(v["BAK_HEALTHCHECK_URL"], "https://hc-ping.com/…");
    assert_eq!(v["BAK_NOTIFY_ON"], "always");
    assert_eq!(v["BAK_NOTIFY_TIMEOUT"], "10s");
}

#[test]
fn an_invalid_notification_url_exits_2_naming_the_variable_not_the_secret() {
    for (var, value) in [
        ("BAK_NOTIFY_URL", "ftp://files.example/T0KEN-s3cr3t"),
        (
            "BAK_NOTIFY_URL",
            "https://ok.example/a,hooks.example/T0KEN-s3cr3t",
        ),
        (
            "BAK_HEALTHCHECK_URL",
            "https://user:T0KEN-s3cr3t@hc.example/x",
        ),
        ("BAK_NOTIFY_ON", "sometimes"),
        ("BAK_NOTIFY_FORMAT", "teams"),
        ("BAK_NOTIFY_TIMEOUT", "10"),
    ] {
        let out = env_cmd(&[(var, value)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{var}: {stderr}");
        assert!(!stderr.contains(TOKEN), "{var}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}
