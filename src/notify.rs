//! Notifications after a `create` run: webhooks (the run as JSON, or a Slack-compatible
//! message) and healthchecks.io-style pings.
//!
//! A nightly CronJob that fails quietly is how backups are lost: the Event a failed run leaves
//! expires after an hour and nobody reads Job logs. A webhook tells someone now; a
//! healthchecks-style ping also tells them when the run never happened at all (the service
//! alerts when the success ping stops coming).
//!
//! Delivery is best effort and bounded: requests go through [`crate::http`] (the Pushgateway's
//! transport too), every request has a timeout, connection errors, timeouts, 429 and 5xx
//! answers are retried a few times with backoff ([`Notifier::RETRY`]; other 4xx answers are
//! not: they will not get better), all targets are sent to concurrently, and the whole of it is
//! bounded ([`Notifier::bound`]). A notification that cannot be delivered is logged and never
//! changes the backup's outcome or exit code.
//!
//! The URLs are secrets (a webhook's path is its token, a ping URL's UUID lets anyone report
//! success): [`SecretUrl`] prints only `scheme://host/…`, in `Debug` too, and requests are sent
//! with [`http::Shown::Origin`], so their errors and log lines show no more than
//! `scheme://host` and are scrubbed of the path and query, should a server quote them.
//!
//! Independent of `create`'s types: the caller fills a [`Notification`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ::http::{Method, Uri};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::http::{self, Retry};

/// The largest body of a healthcheck `/fail` ping (healthchecks.io keeps 100 KB; the error and
/// some context fit in far less, and a small body is delivered quickly).
pub const FAIL_BODY_MAX: usize = 10 * 1024;

/// Log lines kept for the `/fail` ping by [`LogTail`].
pub const LOG_TAIL_LINES: usize = 40;

/// The longest error text put into a Slack message (a section's text is limited to 3000).
const SLACK_ERROR_MAX: usize = 2800;

// ---------------------------------------------------------------------------------------------
// Settings

/// A notification URL. Its path and query are secret (tokens), so it only ever shows as
/// `scheme://host[:port]/…`; [`SecretUrl::uri`] is for sending.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(Uri);

impl SecretUrl {
    /// An absolute `http`/`https` URL with a host and no user info. The reason on error never
    /// repeats the value (it is a secret).
    pub fn parse(s: &str) -> Result<SecretUrl, &'static str> {
        let uri: Uri = s
            .trim()
            .parse()
            .map_err(|_| "not a valid URL (expected http://HOST/… or https://HOST/…)")?;
        match uri.scheme_str() {
            Some(scheme)
                if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {}
            Some(_) => return Err("expected an http:// or https:// URL"),
            None => return Err("expected an absolute URL starting with http:// or https://"),
        }
        let Some(authority) = uri.authority() else {
            return Err("expected a host after http:// or https://");
        };
        if authority.as_str().contains('@') {
            return Err(
                "user info (user:password@) is not sent; put the token in the path or query",
            );
        }
        if authority.host().is_empty() {
            return Err("expected a host after http:// or https://");
        }
        Ok(SecretUrl(uri))
    }

    /// `https://hooks.slack.com/…`: what logs, errors and `backup-ns env` show.
    pub fn redacted(&self) -> String {
        let scheme = self.0.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let authority = self.0.authority().map_or("", |a| a.as_str());
        format!("{scheme}://{authority}/…")
    }

    /// The whole URL, for the request only.
    pub fn uri(&self) -> &Uri {
        &self.0
    }

    /// `<url>/<suffix>` (no suffix: the URL itself) with `query` appended to its own query:
    /// healthchecks' `/start` and `/fail` endpoints and its `rid` parameter.
    fn ping_uri(&self, suffix: Option<&str>, query: Option<&str>) -> Uri {
        let path = self.0.path();
        let mut path_and_query = match suffix {
            Some(s) => format!("{}/{s}", path.trim_end_matches('/')),
            None => path.to_owned(),
        };
        let queries: Vec<&str> = self.0.query().into_iter().chain(query).collect();
        if !queries.is_empty() {
            path_and_query = format!("{path_and_query}?{}", queries.join("&"));
        }
        let mut parts = self.0.clone().into_parts();
        // A path built from a valid path and a plain suffix is valid; keep the URL otherwise.
        match path_and_query.parse() {
            Ok(pq) => parts.path_and_query = Some(pq),
            Err(_) => return self.0.clone(),
        }
        Uri::from_parts(parts).unwrap_or_else(|_| self.0.clone())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({})", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `BAK_NOTIFY_ON`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOn {
    /// Only failed runs send webhooks (the default: a message every night is noise).
    Failure,
    /// Every run sends them.
    Always,
}

/// `BAK_NOTIFY_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    /// The run as a JSON object ([`json_payload`]).
    Json,
    /// A Slack-compatible incoming-webhook message ([`slack_payload`]).
    Slack,
}

/// The validated `BAK_NOTIFY_*` and `BAK_HEALTHCHECK_URL` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifySettings {
    pub urls: Vec<SecretUrl>,
    pub on: NotifyOn,
    pub format: NotifyFormat,
    pub healthcheck: Option<SecretUrl>,
    /// Timeout of one request (each attempt).
    pub timeout: Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            urls: Vec::new(),
            on: NotifyOn::Failure,
            format: NotifyFormat::Json,
            healthcheck: None,
            timeout: Duration::from_secs(10),
        }
    }
}

impl NotifySettings {
    /// Nothing to send to.
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty() && self.healthcheck.is_none()
    }
}

// ---------------------------------------------------------------------------------------------
// What is sent

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

/// How long one phase of the run took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseTime {
    pub name: String,
    pub seconds: f64,
}

/// One database dump of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DumpInfo {
    pub engine: String,
    pub pod: String,
    pub container: String,
    pub file: String,
    pub bytes: Option<u64>,
}

/// One finished run, as the caller describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub namespace: String,
    pub pvc: String,
    /// The VolumeSnapshot's name, once it is known.
    pub snapshot: Option<String>,
    pub outcome: Outcome,
    /// The error of a failed run.
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub phases: Vec<PhaseTime>,
    pub dumps: Vec<DumpInfo>,
    /// Where the run ran (`HOSTNAME`: the pod's name in a Job).
    pub host: Option<String>,
    /// The `pod` label of the snapshot (`BAK_LABEL_VS_POD`).
    pub pod: Option<String>,
    /// The last lines the run logged (e.g. [`LogTail::lines`]), for the healthcheck `/fail`
    /// ping; not in the webhook payloads.
    pub log_lines: Vec<String>,
}

impl Notification {
    /// A run of `namespace/pvc` with no details yet.
    pub fn new(
        namespace: impl Into<String>,
        pvc: impl Into<String>,
        outcome: Outcome,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
    ) -> Self {
        Notification {
            namespace: namespace.into(),
            pvc: pvc.into(),
            snapshot: None,
            outcome,
            error: None,
            started_at,
            finished_at,
            phases: Vec::new(),
            dumps: Vec::new(),
            host: None,
            pod: None,
            log_lines: Vec::new(),
        }
    }

    fn duration_seconds(&self) -> f64 {
        let ms = (self.finished_at - self.started_at)
            .num_milliseconds()
            .max(0);
        ms as f64 / 1000.0
    }

    /// `backup of ns/pvc failed after 1m 5s`: the one-line summary of every format.
    pub fn summary(&self) -> String {
        let took = human_duration(self.duration_seconds());
        let target = format!("{}/{}", self.namespace, self.pvc);
        match (self.outcome, &self.snapshot) {
            (Outcome::Success, Some(s)) => {
                format!("backup of {target} succeeded in {took}: snapshot {s}")
            }
            (Outcome::Success, None) => format!("backup of {target} succeeded in {took}"),
            (Outcome::Failure, _) => format!("backup of {target} failed after {took}"),
        }
    }
}

/// `12.3s`, `4m 5s`, `2h 3m`.
fn human_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{:.1}s", seconds);
    }
    let s = seconds.round() as u64;
    if s < 3600 {
        format!("{}m {}s", s / 60, s % 60)
    } else {
        format!("{}h {}m", s / 3600, s / 60 % 60)
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The `json` format: the run as one object.
pub fn json_payload(n: &Notification) -> Value {
    json!({
        "namespace": n.namespace,
        "pvc": n.pvc,
        "snapshot": n.snapshot,
        "outcome": n.outcome,
        "error": n.error,
        "startedAt": timestamp(n.started_at),
        "finishedAt": timestamp(n.finished_at),
        "durationSeconds": n.duration_seconds(),
        "phases": n.phases,
        "dumps": n.dumps,
        "host": n.host,
        "pod": n.pod,
    })
}

/// Slack's mrkdwn treats these three as control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The first `max` bytes of `s`, cut at a character boundary, marked when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The `slack` format: an incoming-webhook message. `text` alone carries everything (the
/// summary line, then the error), for Slack-compatible receivers that ignore `blocks`
/// (Mattermost, Rocket.Chat, Discord's `/slack` endpoint) and for notifications; `blocks` lay
/// the same out for Slack itself.
pub fn slack_payload(n: &Notification) -> Value {
    let icon = match n.outcome {
        Outcome::Success => ":white_check_mark:",
        Outcome::Failure => ":x:",
    };
    let summary = format!("{icon} backup-ns: {}", slack_escape(&n.summary()));
    let error = n
        .error
        .as_deref()
        .map(|e| slack_escape(&truncate(e, SLACK_ERROR_MAX)));
    let text = match &error {
        Some(e) => format!("{summary}\nerror: {e}"),
        None => summary.clone(),
    };
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("*{summary}*")},
    })];
    if let Some(e) = &error {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("```{}```", e.replace("```", "'''"))},
        }));
    }
    let mut context = vec![format!("started {}", timestamp(n.started_at))];
    if let Some(s) = &n.snapshot {
        context.push(format!("snapshot `{}`", slack_escape(s)));
    }
    if let Some(h) = &n.host {
        context.push(format!("on `{}`", slack_escape(h)));
    }
    if !n.phases.is_empty() {
        let phases: Vec<String> = n
            .phases
            .iter()
            .map(|p| format!("{} {}", slack_escape(&p.name), human_duration(p.seconds)))
            .collect();
        context.push(format!("phases: {}", phases.join(", ")));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": context.join(" · ")}],
    }));
    json!({"text": text, "blocks": blocks})
}

/// The body of the healthcheck `/fail` ping: the summary, the error, then as many of the last
/// log lines as fit in [`FAIL_BODY_MAX`] bytes (the newest kept).
pub fn fail_body(n: &Notification) -> String {
    let mut head = format!("backup-ns: {}\n", n.summary());
    if let Some(e) = &n.error {
        head += &format!("error: {}\n", truncate(e, FAIL_BODY_MAX / 2));
    }
    let title = "\nlast log lines:\n";
    let mut budget = FAIL_BODY_MAX.saturating_sub(head.len() + title.len());
    let mut tail: Vec<&str> = Vec::new();
    for line in n.log_lines.iter().rev() {
        if line.len() + 1 > budget {
            break;
        }
        budget -= line.len() + 1;
        tail.push(line);
    }
    if tail.is_empty() {
        return head;
    }
    tail.reverse();
    let mut body = head + title;
    for line in tail {
        body += line;
        body.push('\n');
    }
    body
}

// ---------------------------------------------------------------------------------------------
// Log tail

/// The last [`LOG_TAIL_LINES`] events the process logged, for the healthcheck `/fail` ping: a
/// `tracing_subscriber` layer (`registry().with(fmt_layer).with(LogTail::global().clone())`).
#[derive(Clone, Default)]
pub struct LogTail {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl LogTail {
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide tail (what `main` registers and `create` reads).
    pub fn global() -> &'static LogTail {
        static TAIL: OnceLock<LogTail> = OnceLock::new();
        TAIL.get_or_init(LogTail::new)
    }

    pub fn push(&self, line: String) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == LOG_TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect()
    }
}

/// Formats an event's fields as `message key=value …`.
#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl tracing::field::Visit for LineVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.fields += &format!(" {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields += &format!(" {}={value:?}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogTail {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut v = LineVisitor::default();
        event.record(&mut v);
        self.push(format!(
            "{} {:>5} {}{}",
            Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            event.metadata().level(),
            v.message,
            v.fields
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Delivery

/// What happened to one notification or ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// What was sent (`webhook`, `healthcheck /fail ping`, …).
    pub what: String,
    /// The target, redacted.
    pub target: String,
    pub attempts: u32,
    /// `None`: delivered. The reason never contains the URL's secret part.
    pub error: Option<String>,
}

impl Delivery {
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

/// One request to send.
struct Message {
    what: String,
    uri: Uri,
    shown: String,
    content_type: &'static str,
    body: Bytes,
}

/// The reason a delivery failed, as [`Delivery::error`] and the log say it: short, without
/// the URL (the target is said separately, and the path is a secret).
fn reason(e: &http::HttpError) -> String {
    use http::HttpError;
    match e {
        HttpError::InvalidUrl { reason, .. } => reason.clone(),
        HttpError::Timeout { after, .. } => {
            format!(
                "no answer within {}",
                crate::settings::format_duration(*after)
            )
        }
        HttpError::Transport { error, .. } => format!("request failed: {error}"),
        HttpError::Status { status, .. } => {
            let shown = ::http::StatusCode::from_u16(*status)
                .map_or_else(|_| status.to_string(), |s| s.to_string());
            if http::retryable_status(*status) {
                format!("HTTP {shown}")
            } else {
                format!("HTTP {shown} (not retried)")
            }
        }
    }
}

/// Sends one message through [`http`], retrying per `retry`; logs the outcome. Errors and log
/// lines show the URL's origin only ([`http::Shown::Origin`]).
async fn deliver(retry: Retry, timeout: Duration, m: Message) -> Delivery {
    let sent = http::send_with(
        Method::POST,
        &m.uri.to_string(),
        http::Shown::Origin,
        m.content_type,
        m.body,
        timeout,
        retry,
    )
    .await;
    let (attempts, error) = match sent {
        Ok(reply) => {
            tracing::info!("{} sent to {}", m.what, m.shown);
            (reply.attempts, None)
        }
        Err(e) => {
            let (attempts, reason) = (e.attempts(), reason(&e));
            tracing::warn!(
                "{} to {} not delivered after {attempts} attempt(s): {reason}; the backup's \
                 outcome is unchanged",
                m.what,
                m.shown
            );
            (attempts, Some(reason))
        }
    };
    Delivery {
        what: m.what,
        target: m.shown,
        attempts,
        error,
    }
}

/// Sends a run's notifications: `start()` when it begins, `finish()` when it ends.
///
/// ```no_run
/// # async fn example(settings: &backup_ns::settings::Settings) {
/// use backup_ns::notify::{Notification, Notifier, Outcome};
/// let mut notifier = Notifier::from_settings(settings);
/// let started = chrono::Utc::now();
/// notifier.start();
/// // … the backup …
/// let mut n = Notification::new("ns", "data", Outcome::Success, started, chrono::Utc::now());
/// n.snapshot = Some("data-20240102-030405-abcdef".into());
/// notifier.finish(&n).await; // logs failures; never an error
/// # }
/// ```
pub struct Notifier {
    settings: NotifySettings,
    retry: Retry,
    /// healthchecks' run id: pairs this run's `/start` with its end, so the service measures
    /// the run's duration even when runs overlap.
    run_id: String,
    start: Option<JoinHandle<Delivery>>,
}

impl Notifier {
    /// The notifier of `create`'s settings.
    pub fn from_settings(settings: &crate::settings::Settings) -> Self {
        Self::new(settings.notify.clone())
    }

    pub fn new(settings: NotifySettings) -> Self {
        Notifier {
            settings,
            retry: Self::RETRY,
            run_id: run_id(),
            start: None,
        }
    }

    /// 3 attempts, 1 s then 2 s apart, a timeout retried too: a notification is the run's only
    /// report to a person, so a hiccup of the service should not lose it; [`Notifier::bound`]
    /// keeps the whole short.
    pub const RETRY: Retry = Retry {
        attempts: 3,
        backoff: Duration::from_secs(1),
        retry_timeouts: true,
    };

    /// Another retry policy than [`Notifier::RETRY`] (tests; embedding).
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The longest one `finish()` (or `start()`) can take: every attempt timing out, with the
    /// backoff between them ([`Retry::bound`]), plus a second. Targets are sent to concurrently.
    pub fn bound(&self) -> Duration {
        self.retry.bound(self.settings.timeout) + Duration::from_secs(1)
    }

    fn message(
        &self,
        what: &str,
        url: &SecretUrl,
        uri: Uri,
        content_type: &'static str,
        body: Bytes,
    ) -> Message {
        Message {
            what: what.to_owned(),
            uri,
            shown: url.redacted(),
            content_type,
            body,
        }
    }

    fn rid_query(&self) -> String {
        format!("rid={}", self.run_id)
    }

    /// Pings `<healthcheck>/start` in the background, so a slow or dead ping service never
    /// delays the backup; [`Notifier::finish`] waits for it first (the order matters to the
    /// service). Needs a Tokio runtime.
    pub fn start(&mut self) {
        let Some(url) = &self.settings.healthcheck else {
            return;
        };
        let uri = url.ping_uri(Some("start"), Some(&self.rid_query()));
        let m = self.message(
            "healthcheck /start ping",
            url,
            uri,
            "text/plain; charset=utf-8",
            Bytes::new(),
        );
        self.start = Some(tokio::spawn(deliver(self.retry, self.settings.timeout, m)));
    }

    /// The requests `finish(n)` sends; `true` marks the healthcheck's end ping.
    fn finish_messages(&self, n: &Notification) -> Vec<(Message, bool)> {
        let mut out = Vec::new();
        if n.outcome == Outcome::Failure || self.settings.on == NotifyOn::Always {
            let body = match self.settings.format {
                NotifyFormat::Json => json_payload(n),
                NotifyFormat::Slack => slack_payload(n),
            };
            let body = Bytes::from(body.to_string());
            for url in &self.settings.urls {
                out.push((
                    self.message(
                        "webhook notification",
                        url,
                        url.uri().clone(),
                        "application/json",
                        body.clone(),
                    ),
                    false,
                ));
            }
        }
        if let Some(url) = &self.settings.healthcheck {
            let rid = self.rid_query();
            let m = match n.outcome {
                Outcome::Success => self.message(
                    "healthcheck success ping",
                    url,
                    url.ping_uri(None, Some(&rid)),
                    "text/plain; charset=utf-8",
                    Bytes::from(format!("backup-ns: {}\n", n.summary())),
                ),
                Outcome::Failure => self.message(
                    "healthcheck /fail ping",
                    url,
                    url.ping_uri(Some("fail"), Some(&rid)),
                    "text/plain; charset=utf-8",
                    Bytes::from(fail_body(n)),
                ),
            };
            out.push((m, true));
        }
        out
    }

    /// Sends the run's notifications concurrently and waits for them, at most
    /// [`Notifier::bound`] in all. The healthcheck's end ping waits for its `/start` ping if
    /// that is still under way (the order matters to the service); webhooks do not wait.
    /// Failures are logged and returned, never raised: a notification never changes the run's
    /// outcome.
    pub async fn finish(&mut self, n: &Notification) -> Vec<Delivery> {
        // Taken by the end ping (always configured when there is a start ping).
        let mut start = self.start.take();
        if self.settings.is_empty() {
            return Vec::new();
        }
        let deadline = tokio::time::Instant::now() + self.bound();
        let mut tasks = Vec::new();
        for (m, is_ping) in self.finish_messages(n) {
            let (what, shown) = (m.what.clone(), m.shown.clone());
            let send = deliver(self.retry, self.settings.timeout, m);
            let before = if is_ping { start.take() } else { None };
            let task = tokio::spawn(async move {
                let mut out = Vec::new();
                if let Some(before) = before {
                    // A panicked or aborted start task has nothing to report.
                    out.extend(before.await.ok());
                }
                out.push(send.await);
                out
            });
            tasks.push((what, shown, task));
        }
        let mut out = Vec::new();
        for (what, shown, mut task) in tasks {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(deliveries)) => out.extend(deliveries),
                Ok(Err(e)) => {
                    tracing::warn!("{what} to {shown}: {e}; the backup's outcome is unchanged")
                }
                Err(_) => {
                    task.abort();
                    let error = format!(
                        "gave up after {}",
                        crate::settings::format_duration(self.bound())
                    );
                    tracing::warn!("{what} to {shown}: {error}; the backup's outcome is unchanged");
                    out.push(Delivery {
                        what,
                        target: shown,
                        attempts: 0,
                        error: Some(error),
                    });
                }
            }
        }
        out
    }
}

/// A random UUID (version 4) for healthchecks' `rid`.
fn run_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const TOKEN: &str = "T000/B000/XXXXsecretXXXX";

    fn url(s: &str) -> SecretUrl {
        SecretUrl::parse(s).unwrap()
    }

    fn failed() -> Notification {
        let start = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        let mut n = Notification::new(
            "shop",
            "data",
            Outcome::Failure,
            start,
            start + chrono::Duration::milliseconds(65_250),
        );
        n.error = Some("postgres dump in pod app-0 failed (exit 1): <disk full> & more".into());
        n.phases = vec![
            PhaseTime {
                name: "lock".into(),
                seconds: 0.25,
            },
            PhaseTime {
                name: "dump-postgres".into(),
                seconds: 65.0,
            },
        ];
        n.dumps = vec![DumpInfo {
            engine: "postgres".into(),
            pod: "app-0".into(),
            container: "postgres".into(),
            file: "/var/lib/postgresql/data/dump.sql.gz".into(),
            bytes: None,
        }];
        n.host = Some("backup-data-28391-x7k".into());
        n
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        for ok in [
            "https://hooks.slack.com/services/T0/B0/x",
            "http://127.0.0.1:8080/hook?token=1",
            "HTTPS://Example.com",
            "http://[::1]:9/x",
        ] {
            assert!(SecretUrl::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://example.com/s3cr3t",
            "hooks.slack.com/services/s3cr3t",
            "/relative/s3cr3t",
            "http://",
            "https://user:s3cr3t@example.com/x",
            "http://exa mple.com/s3cr3t",
            "",
            "mailto:s3cr3t@example.com",
        ] {
            let reason = SecretUrl::parse(bad).expect_err(bad);
            assert!(
                !reason.contains("s3cr3t") && !reason.contains("example"),
                "{bad}: the reason repeats the URL: {reason}"
            );
        }
    }

    #[test]
    fn a_secret_url_shows_only_scheme_and_host() {
        let u = url(&format!("https://hooks.slack.com/services/{TOKEN}?x=1"));
        assert_eq!(u.redacted(), "https://hooks.slack.com/…");
        assert_eq!(u.to_string(), "https://hooks.slack.com/…");
        let s = NotifySettings {
            urls: vec![u],
            healthcheck: Some(url(&format!("http://hc.local:8000/ping/{TOKEN}"))),
            ..NotifySettings::default()
        };
        let debug = format!("{s:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("http://hc.local:8000/…"), "{debug}");
    }

    #[test]
    fn ping_urls_append_the_endpoint_and_keep_the_query() {
        let u = url("https://hc-ping.com/abc-123/");
        assert_eq!(
            u.ping_uri(Some("start"), Some("rid=r1")).to_string(),
            "https://hc-ping.com/abc-123/start?rid=r1"
        );
        let u = url("https://hc-ping.com/key/backup-shop?create=1");
        assert_eq!(
            u.ping_uri(Some("fail"), Some("rid=r1")).to_string(),
            "https://hc-ping.com/key/backup-shop/fail?create=1&rid=r1"
        );
        assert_eq!(
            u.ping_uri(None, Some("rid=r1")).to_string(),
            "https://hc-ping.com/key/backup-shop?create=1&rid=r1"
        );
    }

    #[test]
    fn the_json_payload_describes_the_run() {
        let mut n = failed();
        n.log_lines = vec!["not in the webhook".into()];
        let v = json_payload(&n);
        assert_eq!(v["namespace"], "shop");
        assert_eq!(v["pvc"], "data");
        assert_eq!(v["snapshot"], Value::Null);
        assert_eq!(v["outcome"], "failure");
        assert_eq!(
            v["error"],
            "postgres dump in pod app-0 failed (exit 1): <disk full> & more"
        );
        assert_eq!(v["startedAt"], "2024-01-02T03:04:05.000Z");
        assert_eq!(v["finishedAt"], "2024-01-02T03:05:10.250Z");
        assert_eq!(v["durationSeconds"], 65.25);
        assert_eq!(
            v["phases"][1],
            json!({"name": "dump-postgres", "seconds": 65.0})
        );
        assert_eq!(v["dumps"][0]["engine"], "postgres");
        assert_eq!(
            v["dumps"][0]["file"],
            "/var/lib/postgresql/data/dump.sql.gz"
        );
        assert_eq!(v["host"], "backup-data-28391-x7k");
        assert!(!v.to_string().contains("not in the webhook"));
    }

    #[test]
    fn the_slack_message_has_a_one_line_summary_and_the_error() {
        let v = slack_payload(&failed());
        let text = v["text"].as_str().unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            ":x: backup-ns: backup of shop/data failed after 1m 5s"
        );
        // Slack's control characters are escaped.
        assert_eq!(
            lines.next().unwrap(),
            "error: postgres dump in pod app-0 failed (exit 1): &lt;disk full&gt; &amp; more"
        );
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "section");
        assert!(blocks[1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("&lt;disk full&gt;"));
        let context = blocks[2]["elements"][0]["text"].as_str().unwrap();
        assert!(context.contains("dump-postgres 1m 5s"), "{context}");

        let start = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        let mut ok = Notification::new(
            "shop",
            "data",
            Outcome::Success,
            start,
            start + chrono::Duration::seconds(12),
        );
        ok.snapshot = Some("data-20240102-030405-abcdef".into());
        let v = slack_payload(&ok);
        assert_eq!(
            v["text"],
            ":white_check_mark: backup-ns: backup of shop/data succeeded in 12.0s: snapshot data-20240102-030405-abcdef"
        );
    }

    #[test]
    fn a_long_error_is_cut_for_slack() {
        let mut n = failed();
        n.error = Some("é".repeat(5000));
        let v = slack_payload(&n);
        let section = v["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(section.len() < 3000, "{}", section.len());
    }

    #[test]
    fn the_fail_ping_body_keeps_the_error_and_the_newest_lines_within_10_kb() {
        let mut n = failed();
        n.log_lines = (0..500)
            .map(|i| format!("line {i:03} {}", "x".repeat(100)))
            .collect();
        let body = fail_body(&n);
        assert!(body.len() <= FAIL_BODY_MAX, "{}", body.len());
        assert!(body.starts_with(
            "backup-ns: backup of shop/data failed after 1m 5s\nerror: postgres dump"
        ));
        assert!(body
            .trim_end()
            .ends_with(&format!("line 499 {}", "x".repeat(100))));
        assert!(!body.contains("line 000"));
        // A huge error is cut too.
        n.error = Some("e".repeat(50_000));
        assert!(fail_body(&n).len() <= FAIL_BODY_MAX);
    }

    #[test]
    fn the_log_tail_keeps_the_last_lines() {
        use tracing_subscriber::layer::SubscriberExt;
        let tail = LogTail::new();
        let subscriber = tracing_subscriber::registry().with(tail.clone());
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..(LOG_TAIL_LINES + 5) {
                tracing::info!(pvc = "data", "step {i}");
            }
            tracing::error!("the dump failed");
        });
        let lines = tail.lines();
        assert_eq!(lines.len(), LOG_TAIL_LINES);
        assert!(lines[0].ends_with("step 6 pvc=data"), "{}", lines[0]);
        assert!(
            lines.last().unwrap().ends_with("ERROR the dump failed"),
            "{:?}",
            lines.last()
        );
    }

    #[test]
    fn the_bound_covers_every_attempt_and_backoff() {
        let n = Notifier::new(NotifySettings {
            timeout: Duration::from_secs(10),
            ..NotifySettings::default()
        });
        // 3 × 10s + 1s + 2s + 1s.
        assert_eq!(n.bound(), Duration::from_secs(34));
    }

    #[test]
    fn webhooks_follow_notify_on_and_pings_follow_the_outcome() {
        let settings = NotifySettings {
            urls: vec![url("http://a.example/hook"), url("http://b.example/hook")],
            healthcheck: Some(url("http://hc.example/ping/k")),
            ..NotifySettings::default()
        };
        let notifier = Notifier::new(settings.clone());
        let mut ok = failed();
        ok.outcome = Outcome::Success;
        ok.error = None;
        let sent: Vec<String> = notifier
            .finish_messages(&ok)
            .iter()
            .map(|(m, _)| m.uri.to_string())
            .collect();
        assert_eq!(
            sent,
            [format!("http://hc.example/ping/k?rid={}", notifier.run_id)]
        );
        let sent: Vec<String> = notifier
            .finish_messages(&failed())
            .iter()
            .map(|(m, _)| m.uri.to_string())
            .collect();
        assert_eq!(
            sent,
            [
                "http://a.example/hook".to_owned(),
                "http://b.example/hook".to_owned(),
                format!("http://hc.example/ping/k/fail?rid={}", notifier.run_id)
            ]
        );
        let always = Notifier::new(NotifySettings {
            on: NotifyOn::Always,
            ..settings
        });
        assert_eq!(always.finish_messages(&ok).len(), 3);
    }

    #[test]
    fn delivery_reasons_are_short_and_say_what_is_not_retried() {
        use crate::http::HttpError;
        let status = |status, attempts| HttpError::Status {
            method: Method::POST,
            url: "http://h".into(),
            status,
            body: "quoted /ping/secret".into(),
            attempts,
        };
        assert_eq!(reason(&status(500, 3)), "HTTP 500 Internal Server Error");
        assert_eq!(reason(&status(429, 3)), "HTTP 429 Too Many Requests");
        assert_eq!(reason(&status(404, 1)), "HTTP 404 Not Found (not retried)");
        let timeout = HttpError::Timeout {
            method: Method::POST,
            url: "http://h".into(),
            after: Duration::from_millis(300),
            attempts: 3,
        };
        assert_eq!(reason(&timeout), "no answer within 300ms");
    }

    #[test]
    fn run_ids_are_uuids() {
        let id = run_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, run_id());
    }
}
