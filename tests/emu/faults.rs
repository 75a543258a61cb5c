//! Injected failures, per request: a test describes which requests (method, path, which of the
//! matching ones) get an error status, a delay or a dropped connection, to check how backup-ns
//! handles a flaky apiserver. Rules are consumed as configured.
//!
//! A fault can also strike *after* the request was served ([`Fault::after_serving`]): the object
//! is stored, then the client gets a 504 or a dropped connection instead of the answer — what a
//! client sees when a load balancer or the apiserver's own timeout loses the response of a write
//! that went through. A client that retries such a POST gets 409 AlreadyExists for its own
//! object.

use std::time::Duration;

use regex::Regex;

use super::api_error::ApiError;

/// What an injected fault does once the delay (if any) has passed.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Serve the request normally (a pure delay).
    Proceed,
    /// Answer with this error instead.
    Respond(ApiError),
    /// Close the connection without any response.
    Drop,
}

/// A fault rule. Build with [`Fault::on`], refine, then `Emu::inject` it.
///
/// ```ignore
/// emu.inject(Fault::on("POST", "/volumesnapshots").status(500));            // next POST only
/// emu.inject(Fault::on("*", "/leases/").nth(3).drop_connection());           // the 3rd match only
/// emu.inject(Fault::on("GET", "/pods").times(2).status(429).retry_after(1)); // next two
/// ```
#[derive(Clone, Debug)]
pub struct Fault {
    method: Option<String>,
    path: Regex,
    skip: usize,
    /// How many more times it fires; `None` forever.
    remaining: Option<usize>,
    seen: usize,
    delay: Option<Duration>,
    outcome: Outcome,
    after_serving: bool,
}

impl Fault {
    /// Matches requests with `method` (`"*"` for any) whose path contains `path`.
    pub fn on(method: &str, path: &str) -> Self {
        Self::on_regex(method, &regex::escape(path))
    }

    /// Matches requests with `method` (`"*"` for any) whose path matches `re`. Panics on a bad
    /// regex (it is test code).
    pub fn on_regex(method: &str, re: &str) -> Self {
        Fault {
            method: (method != "*").then(|| method.to_ascii_uppercase()),
            path: Regex::new(re).unwrap_or_else(|e| panic!("bad fault regex {re:?}: {e}")),
            skip: 0,
            remaining: Some(1),
            seen: 0,
            delay: None,
            outcome: Outcome::Proceed,
            after_serving: false,
        }
    }

    /// Fire on the `n`th matching request only (1-based), counted from injection.
    pub fn nth(mut self, n: usize) -> Self {
        self.skip = n.saturating_sub(1);
        self.remaining = Some(1);
        self
    }

    /// Fire on the next `k` matching requests (after any `nth` skip). The default is 1.
    pub fn times(mut self, k: usize) -> Self {
        self.remaining = Some(k);
        self
    }

    /// Fire on every matching request until `Emu::clear_faults`.
    pub fn always(mut self) -> Self {
        self.remaining = None;
        self
    }

    /// Answer with this HTTP code and the matching `Status` reason (500 InternalError, 429
    /// TooManyRequests, 409 Conflict, …).
    pub fn status(mut self, code: u16) -> Self {
        self.outcome = Outcome::Respond(ApiError::new(code, format!("injected fault ({code})")));
        self
    }

    /// Adds `Retry-After` (and `details.retryAfterSeconds`) to a [`Fault::status`] answer.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        if let Outcome::Respond(e) = self.outcome {
            self.outcome = Outcome::Respond(e.with_retry_after(seconds));
        }
        self
    }

    /// Wait this long before answering (combines with the other outcomes).
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }

    /// Close the socket without answering.
    pub fn drop_connection(mut self) -> Self {
        self.outcome = Outcome::Drop;
        self
    }

    /// Serve the request (a write is stored) and only then answer with the fault's error or drop
    /// the connection: the response of a write that went through is lost.
    ///
    /// ```ignore
    /// emu.inject(Fault::on("POST", "/volumesnapshots").status(504).after_serving());
    /// emu.inject(Fault::on("POST", "/volumesnapshots").drop_connection().after_serving());
    /// ```
    pub fn after_serving(mut self) -> Self {
        self.after_serving = true;
        self
    }
}

/// The fault that applies to one request.
pub struct Hit {
    pub delay: Option<Duration>,
    pub outcome: Outcome,
    /// Serve the request first (the write happens), then answer with `outcome`.
    pub after_serving: bool,
}

/// The injected rules, in order.
#[derive(Default)]
pub struct Faults(Vec<Fault>);

impl Faults {
    pub fn push(&mut self, f: Fault) {
        self.0.push(f);
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Counts the request against every matching rule and consumes the first that fires.
    pub fn hit(&mut self, method: &str, path: &str) -> Option<Hit> {
        let mut hit = None;
        for f in &mut self.0 {
            if f.method.as_deref().is_some_and(|m| m != method) || !f.path.is_match(path) {
                continue;
            }
            f.seen += 1;
            if hit.is_some() || f.seen <= f.skip {
                continue;
            }
            if let Some(r) = &mut f.remaining {
                *r = r.saturating_sub(1);
            }
            hit = Some(Hit {
                delay: f.delay,
                outcome: f.outcome.clone(),
                after_serving: f.after_serving,
            });
        }
        self.0.retain(|f| f.remaining != Some(0));
        hit
    }
}
