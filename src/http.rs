//! Outgoing HTTP for the side channels of a run (the Pushgateway, notifications): one request
//! with a body, a timeout per attempt and a few retries, on the hyper/rustls stack kube already
//! brings.
//!
//! These requests report on a run; they must never hang it or change its outcome. So every
//! attempt is bounded by a timeout, only failures that a retry can fix are retried (connection
//! errors, 5xx, 429: up to [`Retry::attempts`]; a timeout only if the caller's [`Retry`] says
//! so), and the caller gets an error it logs. The whole of a request is bounded by
//! [`Retry::bound`].
//!
//! URLs carry secrets: credentials (`https://user:token@host/…`, `?key=…`), which every caller
//! has, and for some callers the path itself (a Slack webhook's token, a healthchecks UUID).
//! The caller says how its URL may be shown ([`Shown`]); every error and log line of this module
//! shows it only that way, and text the server or the network stack sends back is scrubbed of
//! the hidden parts. Userinfo is sent as basic auth; whether a URL may carry it is the caller's
//! rule.

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How often and how patiently a request is retried. Connection errors, 5xx and 429 are always
/// retried (up to `attempts`), other answers never; a timeout per `retry_timeouts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Pause before the second attempt; doubled before each further one.
    pub backoff: Duration,
    /// Whether an attempt that timed out is retried. The Pushgateway's is not: a server that did
    /// not answer in time would most likely hang again while the run waits. A notification's
    /// is: it is the run's only report to a person, a ping service's hiccup should not lose it,
    /// and the notifier bounds the whole ([`Retry::bound`]).
    pub retry_timeouts: bool,
}

impl Default for Retry {
    /// The Pushgateway's: 3 attempts, 500 ms then 1 s apart, a timeout not retried.
    fn default() -> Self {
        Retry {
            attempts: 3,
            backoff: Duration::from_millis(500),
            retry_timeouts: false,
        }
    }
}

impl Retry {
    /// The longest a request can take with `timeout` per attempt: every attempt running into
    /// its timeout (a connection error can come just before it), with the backoff between them.
    pub fn bound(&self, timeout: Duration) -> Duration {
        let attempts = self.attempts.max(1);
        let backoffs: Duration = (0..attempts - 1)
            .map(|i| self.backoff * 2u32.saturating_pow(i))
            .sum();
        timeout * attempts + backoffs
    }
}

/// Whether an answer with this status is worth another attempt: 5xx and 429 (the server may
/// be back, or less busy); another 4xx will not get better.
pub fn retryable_status(status: u16) -> bool {
    status >= 500 || status == 429
}

/// How a request's URL shows in errors and log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shown {
    /// [`redact`]: without userinfo and query, the path kept (a Pushgateway's grouping key
    /// tells the reader which push failed).
    #[default]
    Redacted,
    /// [`origin`]: only `scheme://host[:port]`, for URLs whose path is itself the secret.
    Origin,
}

impl Shown {
    /// `url` as this shows it.
    pub fn show(self, url: &str) -> String {
        match self {
            Shown::Redacted => redact(url),
            Shown::Origin => origin(url),
        }
    }
}

/// A 2xx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Attempts it took.
    pub attempts: u32,
}

/// Why a request was not answered with 2xx. Its URL is shown as the caller chose ([`Shown`]),
/// and the texts in it are scrubbed of what that hides.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{method} {url}: no answer within {after:?} (after {attempts} attempts)")]
    Timeout {
        method: Method,
        url: String,
        after: Duration,
        attempts: u32,
    },
    #[error("{method} {url}: {error} (after {attempts} attempts)")]
    Transport {
        method: Method,
        url: String,
        error: String,
        attempts: u32,
    },
    #[error("{method} {url}: HTTP {status}{} (after {attempts} attempts)", body_suffix(.body))]
    Status {
        method: Method,
        url: String,
        status: u16,
        /// The start of the answer's body (servers explain a 400 there).
        body: String,
        attempts: u32,
    },
}

impl HttpError {
    /// Requests sent before giving up (0: none could be).
    pub fn attempts(&self) -> u32 {
        match self {
            HttpError::InvalidUrl { .. } => 0,
            HttpError::Timeout { attempts, .. }
            | HttpError::Transport { attempts, .. }
            | HttpError::Status { attempts, .. } => *attempts,
        }
    }
}

fn body_suffix(body: &str) -> String {
    if body.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", body.trim())
    }
}

/// The answer's body is cut to this many characters in errors.
const MAX_BODY_CHARS: usize = 300;

/// `url` without userinfo, query and fragment: what logs and errors may show.
/// `https://user:pw@push.example:9091/metrics/job/x?token=y` → `https://push.example:9091/metrics/job/x`.
pub fn redact(url: &str) -> String {
    match url.parse::<Uri>() {
        Ok(uri) => match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => {
                let host = authority.as_str().rsplit('@').next().unwrap_or_default();
                format!("{scheme}://{host}{}", uri.path())
            }
            _ => "<URL without scheme or host>".into(),
        },
        Err(_) => "<invalid URL>".into(),
    }
}

/// Only `scheme://host[:port]`: for URLs whose path is itself a secret (Slack webhooks,
/// healthchecks.io ping URLs).
pub fn origin(url: &str) -> String {
    let redacted = redact(url);
    match redacted.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or("")),
        None => redacted,
    }
}

/// Checks that `url` is an absolute `http` or `https` URL with a host, as the settings take it.
pub fn validate_url(url: &str) -> Result<(), String> {
    let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("expected an http:// or https:// URL".into()),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => Ok(()),
        _ => Err("the URL has no host".into()),
    }
}

/// Sends `body` with `method` to `url` once per attempt until a 2xx answer, with
/// [`Retry::default`]. `timeout` bounds each attempt (connect, send, read the answer); errors
/// and log lines show the URL as `shown` says.
pub async fn send(
    method: Method,
    url: &str,
    shown: Shown,
    content_type: &str,
    body: impl Into<Bytes>,
    timeout: Duration,
) -> Result<Reply, HttpError> {
    send_with(
        method,
        url,
        shown,
        content_type,
        body,
        timeout,
        Retry::default(),
    )
    .await
}

/// [`send`] with an explicit retry policy.
pub async fn send_with(
    method: Method,
    url: &str,
    shown: Shown,
    content_type: &str,
    body: impl Into<Bytes>,
    timeout: Duration,
    retry: Retry,
) -> Result<Reply, HttpError> {
    let hidden = hidden_parts(url, shown);
    let scrub = |text: &str| scrub(text, &hidden);
    let shown = shown.show(url);
    let invalid = |reason: String| HttpError::InvalidUrl {
        url: shown.clone(),
        reason,
    };
    validate_url(url).map_err(invalid)?;
    let (uri, auth) = split_userinfo(url).map_err(invalid)?;
    let body: Bytes = body.into();
    let client = Sender::new(uri.scheme_str() == Some("https")).map_err(invalid)?;

    let attempts = retry.attempts.max(1);
    let mut pause = retry.backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(uri.clone())
            .header(CONTENT_TYPE, content_type)
            .header(http::header::USER_AGENT, USER_AGENT);
        if let Some(auth) = &auth {
            builder = builder.header(AUTHORIZATION, auth.as_str());
        }
        let request = builder
            .body(Full::new(body.clone()))
            .map_err(|e| invalid(e.to_string()))?;
        let outcome = tokio::time::timeout(timeout, client.call(request)).await;
        let retryable = match outcome {
            Err(_) => {
                let error = HttpError::Timeout {
                    method: method.clone(),
                    url: shown.clone(),
                    after: timeout,
                    attempts: attempt,
                };
                if retry.retry_timeouts {
                    error
                } else {
                    return Err(error);
                }
            }
            Ok(Ok((status, _))) if (200..300).contains(&status) => {
                return Ok(Reply {
                    status,
                    attempts: attempt,
                })
            }
            Ok(Ok((status, text))) => {
                let error = HttpError::Status {
                    method: method.clone(),
                    url: shown.clone(),
                    status,
                    body: scrub(&text),
                    attempts: attempt,
                };
                if retryable_status(status) {
                    error
                } else {
                    return Err(error);
                }
            }
            Ok(Err(error)) => HttpError::Transport {
                method: method.clone(),
                url: shown.clone(),
                error: scrub(&error),
                attempts: attempt,
            },
        };
        if attempt >= attempts {
            return Err(retryable);
        }
        tracing::debug!("{retryable}; retrying in {pause:?}");
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
}

/// The parts of `url` that errors must not show when it is `shown` so, longest first: the URL
/// itself, then (origin only) its path and query, its query, its userinfo and password.
fn hidden_parts(url: &str, shown: Shown) -> Vec<(String, &'static str)> {
    let mut parts = vec![(url.to_owned(), "<url>")];
    if let Ok(uri) = url.parse::<Uri>() {
        if shown == Shown::Origin {
            if let Some(pq) = uri.path_and_query() {
                parts.push((pq.as_str().to_owned(), "/…"));
                parts.push((uri.path().to_owned(), "/…"));
            }
        }
        if let Some(q) = uri.query() {
            parts.push((q.to_owned(), "…"));
        }
        if let Some((userinfo, _)) = uri.authority().and_then(|a| a.as_str().rsplit_once('@')) {
            parts.push((userinfo.to_owned(), "…"));
            if let Some((_, password)) = userinfo.split_once(':') {
                parts.push((password.to_owned(), "…"));
            }
        }
    }
    // A part of one character (`/`, an empty password) is no secret and would mangle the text.
    parts.retain(|(p, _)| p.len() > 1);
    parts
}

/// `text` (a server's answer, a network error) without the hidden parts, should it quote them.
fn scrub(text: &str, hidden: &[(String, &'static str)]) -> String {
    hidden.iter().fold(text.to_owned(), |t, (part, with)| {
        t.replace(part.as_str(), with)
    })
}

const USER_AGENT: &str = concat!("backup-ns/", env!("CARGO_PKG_VERSION"));

/// The URL without userinfo, and the userinfo as a basic `Authorization` header value.
fn split_userinfo(url: &str) -> Result<(Uri, Option<String>), String> {
    let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    let Some(authority) = uri.authority() else {
        return Ok((uri, None));
    };
    let Some((userinfo, host)) = authority.as_str().rsplit_once('@') else {
        return Ok((uri, None));
    };
    let mut parts = uri.clone().into_parts();
    parts.authority = Some(host.parse().map_err(|e| format!("invalid host: {e}"))?);
    let uri = Uri::from_parts(parts).map_err(|e| e.to_string())?;
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let credentials = format!("{}:{}", percent_decode(user), percent_decode(password));
    Ok((
        uri,
        Some(format!(
            "Basic {}",
            base64(credentials.as_bytes(), STANDARD)
        )),
    ))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) const STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub(crate) const URL_SAFE: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 with padding in the given alphabet (RFC 4648 §4 or §5).
pub(crate) fn base64(input: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A client for one scheme: plain HTTP needs no CA certificates, so it works even where they
/// cannot be loaded.
enum Sender {
    Plain(Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>),
    Tls(
        Client<
            hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
            Full<Bytes>,
        >,
    ),
}

impl Sender {
    fn new(tls: bool) -> Result<Sender, String> {
        let builder = Client::builder(TokioExecutor::new());
        if !tls {
            return Ok(Sender::Plain(builder.build_http()));
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("cannot load the CA certificates for https: {e}"))?
            .https_only()
            .enable_http1()
            .build();
        Ok(Sender::Tls(builder.build(connector)))
    }

    /// One exchange: the status and the start of the body, or the transport error.
    async fn call(&self, request: Request<Full<Bytes>>) -> Result<(u16, String), String> {
        let response = match self {
            Sender::Plain(c) => c.request(request).await,
            Sender::Tls(c) => c.request(request).await,
        }
        .map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let body = match response.into_body().collect().await {
            Ok(b) => {
                let bytes = b.to_bytes();
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(MAX_BODY_CHARS)
                    .collect()
            }
            Err(_) => String::new(),
        };
        Ok((status, body))
    }
}

/// The error and its causes on one line (hyper's own message alone is only "client error").
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// The integration tests' local server, for the unit tests of every module that sends (declared
/// once for the crate, and here: a `#[path]` inside `mod tests` would be resolved under
/// `src/http/tests/`).
#[cfg(test)]
#[path = "../tests/it/http_server.rs"]
#[allow(dead_code)]
pub(crate) mod http_server;

#[cfg(test)]
mod tests {
    use super::http_server::{Behaviour, TestServer};
    use super::*;

    fn fast(attempts: u32, retry_timeouts: bool) -> Retry {
        Retry {
            attempts,
            backoff: Duration::from_millis(10),
            retry_timeouts,
        }
    }

    #[tokio::test]
    async fn a_timeout_is_retried_only_when_the_policy_says_so() {
        let server = TestServer::start(Behaviour::Hang);
        let timeout = Duration::from_millis(150);
        let err = send_with(
            Method::POST,
            &server.url,
            Shown::Redacted,
            "text/plain",
            "x",
            timeout,
            fast(3, false),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, HttpError::Timeout { attempts: 1, .. }),
            "{err}"
        );
        assert_eq!(server.requests().len(), 1);

        let server = TestServer::start(Behaviour::Hang);
        let retry = fast(3, true);
        let started = std::time::Instant::now();
        let err = send_with(
            Method::POST,
            &server.url,
            Shown::Redacted,
            "text/plain",
            "x",
            timeout,
            retry,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, HttpError::Timeout { attempts: 3, .. }),
            "{err}"
        );
        assert_eq!(err.attempts(), 3);
        assert_eq!(server.requests().len(), 3);
        let took = started.elapsed();
        assert!(took >= timeout * 3, "{took:?}");
        assert!(
            took < retry.bound(timeout) + Duration::from_secs(1),
            "{took:?}"
        );
    }

    #[test]
    fn the_bound_is_every_attempt_timing_out_plus_the_backoffs() {
        let retry = Retry {
            attempts: 3,
            backoff: Duration::from_secs(1),
            retry_timeouts: true,
        };
        // 3 × 10s + 1s + 2s.
        assert_eq!(
            retry.bound(Duration::from_secs(10)),
            Duration::from_secs(33)
        );
        let once = Retry {
            attempts: 0,
            ..retry
        };
        assert_eq!(once.bound(Duration::from_secs(10)), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn shown_as_origin_no_error_or_log_line_has_the_path_even_if_the_server_echoes_it() {
        use tracing_subscriber::layer::SubscriberExt;
        let tail = crate::notify::LogTail::new();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(tail.clone()));
        let server = TestServer::start(Behaviour::Echo(503));
        let url = format!(
            "{}/services/T0/B0/s3cr3t-path?token=s3cr3t-query",
            server.url
        );
        let err = send_with(
            Method::POST,
            &url,
            Shown::Origin,
            "application/json",
            "{}",
            Duration::from_secs(5),
            fast(2, true),
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        let logs = tail.lines().join("\n");
        assert!(
            matches!(
                err,
                HttpError::Status {
                    status: 503,
                    attempts: 2,
                    ..
                }
            ),
            "{text}"
        );
        // The server did get the whole URL, and echoed it.
        assert!(server.requests()[0].path.contains("s3cr3t-path"));
        assert!(logs.contains("retrying"), "{logs}");
        for shown in [&text, &logs] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
        assert!(
            text.starts_with(&format!("POST {}: HTTP 503", server.url)),
            "{text}"
        );

        // The Pushgateway's way: the path shows, the query does not, not even echoed.
        let err = send_with(
            Method::PUT,
            &url,
            Shown::Redacted,
            "text/plain",
            "x",
            Duration::from_secs(5),
            fast(1, false),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("/services/T0/B0/s3cr3t-path"), "{err}");
        assert!(!err.contains("s3cr3t-query"), "{err}");
    }

    #[test]
    fn scrub_hides_what_the_url_is_shown_without() {
        let url = "https://u:pw-s3cr3t@hooks.example/services/T0/path-s3cr3t?k=query-s3cr3t";
        let text =
            format!("cannot reach {url}: /services/T0/path-s3cr3t, k=query-s3cr3t, pw-s3cr3t");
        let origin = scrub(&text, &hidden_parts(url, Shown::Origin));
        assert!(!origin.contains("s3cr3t"), "{origin}");
        assert!(origin.starts_with("cannot reach <url>: /…"), "{origin}");
        let redacted = scrub(&text, &hidden_parts(url, Shown::Redacted));
        assert!(redacted.contains("path-s3cr3t"), "{redacted}");
        assert!(
            !redacted.contains("query-s3cr3t") && !redacted.contains("pw-s3cr3t"),
            "{redacted}"
        );
        // Nothing secret in a bare URL: the text is left alone.
        assert_eq!(
            scrub("a / b", &hidden_parts("http://h/", Shown::Origin)),
            "a / b"
        );
    }

    #[test]
    fn redact_drops_userinfo_query_and_fragment() {
        assert_eq!(
            redact("https://user:s3cret@push.example:9091/metrics/job/x?token=abc#f"),
            "https://push.example:9091/metrics/job/x"
        );
        assert_eq!(redact("http://push.example"), "http://push.example/");
        assert_eq!(redact("not a url at all"), "<invalid URL>");
        assert_eq!(redact("/relative"), "<URL without scheme or host>");
        assert_eq!(
            origin("https://hooks.slack.example/services/T0/B0/secret?x=1"),
            "https://hooks.slack.example"
        );
        let url = "https://u:pw@push.example:9091/metrics/job/x?token=abc";
        assert_eq!(
            Shown::Redacted.show(url),
            "https://push.example:9091/metrics/job/x"
        );
        assert_eq!(Shown::Origin.show(url), "https://push.example:9091");
    }

    #[test]
    fn validate_url_takes_http_and_https_with_a_host() {
        assert!(validate_url("http://pushgateway:9091").is_ok());
        assert!(validate_url("https://u:p@push.example/base").is_ok());
        assert!(validate_url("ftp://push.example").is_err());
        assert!(validate_url("pushgateway:9091").is_err());
        assert!(validate_url("http://").is_err());
        assert!(validate_url("").is_err());
    }

    #[test]
    fn userinfo_becomes_basic_auth_and_leaves_the_uri() {
        let (uri, auth) = split_userinfo("http://ali%40ce:p%3Aw@push.example:9091/p?q=1").unwrap();
        assert_eq!(uri.to_string(), "http://push.example:9091/p?q=1");
        // "ali@ce:p:w"
        assert_eq!(auth.as_deref(), Some("Basic YWxpQGNlOnA6dw=="));
        assert_eq!(split_userinfo("http://h/x").unwrap().1, None);
    }

    #[test]
    fn base64_matches_rfc_4648_test_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes(), STANDARD), encoded);
        }
        assert_eq!(base64(&[0xfb, 0xff], URL_SAFE), "-_8=");
    }
}
