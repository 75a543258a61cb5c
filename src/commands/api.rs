//! Every API request of the lifecycle commands (`retain`, `mark-and-delete`, `list`, `delete`,
//! `sync-labels`) goes through [`Requests::call`]: paced by the client-side rate limit
//! (`--qps`/`BAK_API_QPS`), and retried a bounded number of times when the failure is transient
//! — 429, 5xx, a dropped connection — honouring the server's `Retry-After`. Anything else, or a
//! transient failure that outlasts the retries, goes back to the caller, which counts the item
//! as failed and carries on.
//!
//! The client is built without kube's own retry layer (`super::client(false)`: up to 15 silent
//! retries of 429/503/504 with delays growing to minutes): retries here are bounded, logged,
//! counted and paced like every other request.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::ratelimit::TokenBucket;

/// Default of `--qps`/`BAK_API_QPS`: gentle on a shared API server, ~70,000 requests an hour.
pub const DEFAULT_QPS: f64 = 20.0;
/// Attempts per request (the first included) before a transient failure is final.
const ATTEMPTS: u32 = 5;
/// First backoff; doubled per retry up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured; a longer one is capped rather than stalling the run.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Request and retry counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// Requests sent, retries included.
    pub requests: usize,
    /// Retries after a transient failure.
    pub retries: usize,
}

/// The paced, retrying way to the API server.
pub struct Requests {
    pub client: kube::Client,
    bucket: Mutex<TokenBucket>,
    counts: Mutex<RequestCounts>,
}

/// If `e` is transient, the server's `Retry-After` (if it sent one): 429 and 5xx other than 501,
/// and transport failures (a dropped connection, a timeout). Every write backup-ns sends is safe
/// to repeat: patches carry a `resourceVersion` and deletes a uid, so a repeat of one that did
/// land gets 409 or 404, which the caller handles.
pub fn transient(e: &kube::Error) -> Option<Option<Duration>> {
    match e {
        kube::Error::Api(status)
            if status.code == 429 || (status.code >= 500 && status.code != 501) =>
        {
            let after = status.details.as_ref().map_or(0, |d| d.retry_after_seconds);
            Some((after > 0).then(|| Duration::from_secs(after.into())))
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => Some(None),
        _ => None,
    }
}

/// The HTTP status code of an API error, if it is one.
pub fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// A one-line description: the API server's message and code, or the transport error.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({} {})", s.message, s.code, s.reason),
        other => other.to_string(),
    }
}

/// How long to wait before retry number `retry` (1-based): the server's `Retry-After` when it
/// sent one (capped), else exponential backoff with jitter in `[d/2, d]`.
fn backoff(retry: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    if let Some(after) = retry_after {
        return after.min(MAX_RETRY_AFTER);
    }
    let full = FIRST_BACKOFF
        .saturating_mul(1 << (retry - 1).min(16))
        .min(MAX_BACKOFF);
    full.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

impl Requests {
    pub fn new(client: kube::Client, qps: f64) -> Requests {
        Requests {
            client,
            bucket: Mutex::new(TokenBucket::new(qps)),
            counts: Mutex::default(),
        }
    }

    pub fn counts(&self) -> RequestCounts {
        *self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn pace(&self) {
        let wait = self
            .bucket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .requests += 1;
    }

    /// Sends the request `send` makes, paced, retrying transient failures. `what` names it in
    /// logs (`patch volumesnapshot ns/name`).
    pub async fn call<T, F, Fut>(&self, what: &str, mut send: F) -> Result<T, kube::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut attempt = 1;
        loop {
            self.pace().await;
            let err = match send().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let Some(retry_after) = transient(&err).filter(|_| attempt < ATTEMPTS) else {
                return Err(err);
            };
            let delay = backoff(attempt, retry_after, rand::random());
            tracing::warn!(
                "{what}: {}; retry {attempt} of {} in {} ms",
                describe(&err),
                ATTEMPTS - 1,
                delay.as_millis()
            );
            self.counts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retries += 1;
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, retry_after: u32) -> kube::Error {
        let mut status = Status::failure("x", "Reason").with_code(code);
        if retry_after > 0 {
            let details = serde_json::json!({ "retryAfterSeconds": retry_after });
            status.details = Some(serde_json::from_value(details).unwrap());
        }
        kube::Error::Api(status.boxed())
    }

    #[test]
    fn transient_failures_are_429_5xx_and_transport() {
        assert_eq!(transient(&api(429, 0)), Some(None));
        assert_eq!(transient(&api(429, 3)), Some(Some(Duration::from_secs(3))));
        assert_eq!(transient(&api(500, 0)), Some(None));
        assert_eq!(transient(&api(503, 1)), Some(Some(Duration::from_secs(1))));
        for final_code in [400, 403, 404, 409, 422, 501] {
            assert_eq!(transient(&api(final_code, 0)), None, "{final_code}");
        }
        let transport = kube::Error::Service("connection closed before message completed".into());
        assert_eq!(transient(&transport), Some(None));
        let serde = kube::Error::SerdeError(serde_json::from_str::<u8>("x").unwrap_err());
        assert_eq!(transient(&serde), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        assert_eq!(backoff(1, None, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(1, None, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(3, None, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(30, None, 1.0), MAX_BACKOFF);
        assert_eq!(
            backoff(1, Some(Duration::from_secs(2)), 0.0),
            Duration::from_secs(2)
        );
        assert_eq!(
            backoff(1, Some(Duration::from_secs(3600)), 0.0),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn describe_is_one_line() {
        assert_eq!(describe(&api(409, 0)), "x (409 Reason)");
    }
}
