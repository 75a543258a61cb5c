//! One `create` per PVC at a time, across nodes: a coordination.k8s.io Lease per (namespace, PVC).
//!
//! The node flock only spreads load on one node; two jobs for the same PVC on different nodes
//! would still dump over each other (the original's bug 3). The Lease carries the holder's
//! identity and an expiry that the holder renews, so a crashed run blocks the next one for at
//! most one lease duration. Every write carries the `resourceVersion` it was decided on, so two
//! runs racing for a free lease cannot both win.
//!
//! Holding it is only worth something while it is renewed: when another holder has taken it, it
//! is gone, or it could not be renewed for a whole lease duration (so it has expired and another
//! run may take it), [`PvcLease::lost`] resolves and `create` stops its dump. Each renewal
//! attempt is bounded by a third of the lease duration: the client's retry layer (which backs off
//! for minutes on 429/503/504) must not hold a renewal past the expiry it is meant to prevent.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::labels;
use crate::{Error, Result};

/// The Lease's name for a PVC: `backup-ns-<pvc>`, shortened with a stable hash if too long.
pub fn lease_name(pvc: &str) -> String {
    let name = format!("backup-ns-{pvc}");
    if name.len() <= 253 {
        return name;
    }
    // FNV-1a: stable across Rust versions, so every binary computes the same name.
    let hash = pvc.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    format!("{}-{hash:016x}", name[..236].trim_end_matches(['-', '.']))
}

/// What to do about the Lease as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it.
    Create,
    /// Free, expired or ours: take it (update with its resourceVersion).
    Take,
    /// Someone else holds it until the given time.
    Held { holder: String, until: Timestamp },
}

/// Decides from the current Lease (pure).
pub fn decide(lease: Option<&Lease>, me: &str, now: Timestamp) -> Decision {
    let Some(lease) = lease else {
        return Decision::Create;
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.unwrap_or_default();
    if holder.is_empty() || holder == me {
        return Decision::Take;
    }
    let renewed = spec.renew_time.or(spec.acquire_time).map(|t| t.0);
    let duration = spec.lease_duration_seconds.unwrap_or(0).max(0) as i64;
    match renewed {
        Some(r) => {
            let until = r
                .checked_add(jiff::SignedDuration::from_secs(duration))
                .unwrap_or(r);
            if until > now {
                Decision::Held { holder, until }
            } else {
                Decision::Take
            }
        }
        None => Decision::Take,
    }
}

/// A held Lease; renewed in the background until [`PvcLease::release`] (or drop).
pub struct PvcLease {
    api: Api<Lease>,
    name: String,
    me: String,
    renewer: JoinHandle<()>,
    /// Set by the renewer, once, with why the Lease is no longer ours.
    lost: watch::Receiver<Option<String>>,
}

impl Drop for PvcLease {
    fn drop(&mut self) {
        // A Lease dropped without release stops being renewed and expires by itself.
        self.renewer.abort();
    }
}

fn spec_for(
    me: &str,
    duration: Duration,
    now: Timestamp,
    previous: Option<&LeaseSpec>,
) -> LeaseSpec {
    let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
    let same_holder = previous.and_then(|p| p.holder_identity.as_deref()) == Some(me);
    LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(duration.as_secs() as i32),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if previous.is_some() && !same_holder {
            transitions + 1
        } else {
            transitions
        }),
        ..Default::default()
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Takes the Lease for (namespace, PVC). With `wait` it retries until the deadline; otherwise a
/// held Lease fails at once with [`Error::Busy`].
pub async fn acquire(
    client: &kube::Client,
    namespace: &str,
    pvc: &str,
    me: &str,
    duration: Duration,
    wait: Option<Duration>,
) -> Result<PvcLease> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let name = lease_name(pvc);
    let started = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(500);
    loop {
        let current = api
            .get_opt(&name)
            .await
            .map_err(|e| Error::kube(format!("get lease {namespace}/{name}"), e))?;
        let now = Timestamp::now();
        let attempt = match decide(current.as_ref(), me, now) {
            Decision::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(namespace.to_string()),
                        labels: Some([(labels::PVC.to_string(), pvc.to_string())].into()),
                        ..Default::default()
                    },
                    spec: Some(spec_for(me, duration, now, None)),
                };
                api.create(&PostParams::default(), &lease).await.map(|_| ())
            }
            Decision::Take => {
                let mut lease = current.clone().unwrap_or_default();
                lease.spec = Some(spec_for(me, duration, now, lease.spec.as_ref()));
                api.replace(&name, &PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            Decision::Held { holder, until } => {
                let msg = format!(
                    "another backup-ns run ({holder}) is working on PVC {namespace}/{pvc}: lease {name} is held until {until}"
                );
                match wait {
                    None => {
                        return Err(Error::Busy(format!(
                            "{msg}; not waiting (set BAK_LEASE_WAIT=true to wait)"
                        )));
                    }
                    Some(limit) if started.elapsed() >= limit => {
                        return Err(Error::LockTimeout(format!(
                            "{msg}; gave up after waiting {}s (BAK_LEASE_WAIT_TIMEOUT)",
                            limit.as_secs()
                        )));
                    }
                    Some(_) => {
                        tracing::info!("{msg}; waiting");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
        };
        match attempt {
            Ok(()) => {
                tracing::info!(lease = %name, holder = %me, "holding lease for PVC {namespace}/{pvc}");
                let (tx, lost) = watch::channel(None);
                let renewer = tokio::spawn(renew_loop(
                    api.clone(),
                    name.clone(),
                    me.to_string(),
                    duration,
                    tx,
                ));
                return Ok(PvcLease {
                    api,
                    name,
                    me: me.to_string(),
                    renewer,
                    lost,
                });
            }
            // Someone changed it between our read and our write: decide again.
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(Error::kube(format!("take lease {namespace}/{name}"), e)),
        }
    }
}

/// What one renewal attempt found.
#[derive(Debug, PartialEq, Eq)]
enum Renewal {
    Renewed,
    /// Another holder has it.
    TakenBy(String),
    /// The Lease object is gone.
    Gone,
}

async fn renew_once(api: &Api<Lease>, name: &str, me: &str) -> Result<Renewal, kube::Error> {
    let Some(mut lease) = api.get_opt(name).await? else {
        return Ok(Renewal::Gone);
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder != me {
        return Ok(Renewal::TakenBy(holder));
    }
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    api.replace(name, &PostParams::default(), &lease).await?;
    Ok(Renewal::Renewed)
}

/// Renews every third of `duration`, each attempt bounded by a third too; reports a loss on
/// `lost` and stops.
async fn renew_loop(
    api: Api<Lease>,
    name: String,
    me: String,
    duration: Duration,
    lost: watch::Sender<Option<String>>,
) {
    let period = duration / 3;
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(period).await;
        let why = match tokio::time::timeout(period, renew_once(&api, &name, &me)).await {
            Ok(Ok(Renewal::Renewed)) => {
                renewed = tokio::time::Instant::now();
                tracing::debug!(lease = %name, "renewed lease");
                continue;
            }
            Ok(Ok(Renewal::TakenBy(holder))) => {
                format!("lost lease {name}: it is now held by {holder:?}")
            }
            Ok(Ok(Renewal::Gone)) => format!("lost lease {name}: it was deleted"),
            Ok(Err(e)) if renewed.elapsed() < duration => {
                tracing::warn!(lease = %name, "renewing the lease failed (will retry): {e}");
                continue;
            }
            Err(_) if renewed.elapsed() < duration => {
                tracing::warn!(lease = %name, "renewing the lease took longer than {period:?} (will retry)");
                continue;
            }
            Ok(Err(e)) => format!(
                "lost lease {name}: not renewed for {}s, so it expired (last error: {e})",
                renewed.elapsed().as_secs()
            ),
            Err(_) => format!(
                "lost lease {name}: not renewed for {}s, so it expired (renewals time out)",
                renewed.elapsed().as_secs()
            ),
        };
        tracing::error!(lease = %name, "{why}; another run may start on this PVC");
        let _ = lost.send(Some(why));
        return;
    }
}

impl PvcLease {
    /// Resolves with the reason once the Lease is lost (taken by another holder, deleted, or not
    /// renewed for a whole lease duration); never while it is held.
    pub fn lost(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut rx = self.lost.clone();
        async move {
            loop {
                if let Some(why) = rx.borrow_and_update().clone() {
                    return why;
                }
                if rx.changed().await.is_err() {
                    // The renewer ended without a loss (released): never resolves.
                    return std::future::pending().await;
                }
            }
        }
    }

    /// Stops renewing and deletes the Lease if it is still ours (uid and resourceVersion
    /// preconditions, so a Lease someone else took over in the meantime is left alone).
    pub async fn release(self) {
        self.renewer.abort();
        let result = async {
            let Some(lease) = self.api.get_opt(&self.name).await? else {
                return Ok(());
            };
            if lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                != Some(self.me.as_str())
            {
                return Ok(());
            }
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: lease.metadata.uid.clone(),
                    resource_version: lease.metadata.resource_version.clone(),
                }),
                ..Default::default()
            };
            self.api.delete(&self.name, &dp).await.map(|_| ())
        }
        .await;
        match result {
            Ok(()) => tracing::debug!(lease = %self.name, "released lease"),
            Err(e) => {
                tracing::warn!(lease = %self.name, "could not release the lease (it expires by itself): {e}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed: &str, secs: i32) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(renewed.parse().unwrap())),
                lease_duration_seconds: Some(secs),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn decisions() {
        let now: Timestamp = "2025-01-08T12:00:00Z".parse().unwrap();
        assert_eq!(decide(None, "me", now), Decision::Create);
        assert_eq!(
            decide(Some(&lease("me", "2025-01-08T11:59:50Z", 60)), "me", now),
            Decision::Take
        );
        assert_eq!(
            decide(Some(&lease("", "2025-01-08T11:59:50Z", 60)), "me", now),
            Decision::Take
        );
        assert_eq!(
            decide(Some(&lease("other", "2025-01-08T11:58:00Z", 60)), "me", now),
            Decision::Take
        );
        assert_eq!(
            decide(Some(&lease("other", "2025-01-08T11:59:30Z", 60)), "me", now),
            Decision::Held {
                holder: "other".into(),
                until: "2025-01-08T12:00:30Z".parse().unwrap()
            }
        );
    }

    #[test]
    fn names_fit_and_are_stable() {
        assert_eq!(lease_name("data"), "backup-ns-data");
        let long = "a".repeat(253);
        let n = lease_name(&long);
        assert!(n.len() <= 253, "{}", n.len());
        assert_eq!(n, lease_name(&long));
        assert_ne!(n, lease_name(&"a".repeat(252)));
    }
}
