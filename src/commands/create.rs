//! `backup-ns create`: an application-consistent snapshot of one PVC.
//!
//! Order matters and every step fails closed: per-PVC Lease → node lock slot → PVC Bound →
//! exec targets resolved → in-pod checks (tools, `SELECT 1`, free space) for every database →
//! the clock reading → dumps (atomic, in the container) → VolumeSnapshot → wait for readyToUse →
//! claim the daily/weekly/monthly labels for this PVC. If anything before the snapshot fails, no
//! snapshot is created.
//!
//! The Lease comes before the slot so a run waiting for its PVC never holds a slot that runs for
//! other PVCs need; losing the Lease stops the dump (another run may be dumping the same PVC).
//! The one clock reading is taken when the dump starts, after every wait, so the name and labels
//! carry the day the data is from.
//!
//! What a snapshot's state means is decided in [`crate::state`]: `readyToUse: true` is ready
//! whatever `status.error` says; an error on a snapshot that is not ready is the controller's
//! last observation and the wait goes on until the deadline. A snapshot still not ready at the
//! deadline is left as it is — no period labels, not marked: `retain` claims its periods once it
//! is ready, and it counts as failed (and is swept) when it is not ready a day after its creation.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::DateTime;
use chrono_tz::Tz;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde::Serialize;

use super::dbops::{check_in_pod, dump_in_pod, engine_name};
use crate::cli::OutputFormat;
use crate::labels::{self, LabelInput, Retain};
use crate::naming::NameInput;
use crate::notify::{self, Notification, Notifier};
use crate::record::{Attempt, Outcome, Record};
use crate::retention::{claim_holders, SnapshotRecord};
use crate::settings::Settings;
use crate::snapshot::VolumeSnapshot;
use crate::state::SnapshotState;
use crate::{lease, lock, Error, ExitStatus, Result};

/// What a run may still do after SIGTERM once its snapshot exists (look at it, claim its labels
/// if it is ready): well inside Kubernetes' default 30 s termination grace period.
const AFTER_SIGNAL: Duration = Duration::from_secs(10);
/// Annotation carrying the run's identity (the Lease holder), so a run can tell its own
/// VolumeSnapshot from a namesake when a retried POST answers 409 AlreadyExists.
pub const CREATED_BY: &str = "backup-ns.sh/created-by";

/// Inputs of one run, gathered by the caller: the environment for the `env-config` annotation
/// and identities. The clock is read by [`run`] itself, when the dump starts.
pub struct CreateContext {
    pub client: kube::Client,
    pub namespace: String,
    pub settings: Settings,
    /// When the process started: checks the name template and labels before any wait, and is
    /// the attempt's start in the PVC's record (the reading that names the snapshot is taken
    /// later).
    pub started: DateTime<Tz>,
    /// The process environment (`BAK_*` variables go into the `env-config` annotation).
    pub env: Vec<(String, String)>,
    /// Random suffix when `BAK_VS_RAND` is not set.
    pub rand: String,
    /// Holder identity for the Lease; also marks the VolumeSnapshot as this run's.
    pub holder: String,
}

/// One dump, as reported.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DumpReport {
    pub engine: &'static str,
    pub pod: String,
    pub container: String,
    pub file: String,
    pub bytes: Option<u64>,
}

/// The result of a run, printed as JSON with `-o json` (also on failure, with `error`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateReport {
    pub namespace: String,
    pub pvc: String,
    pub snapshot: Option<String>,
    pub dry_run: bool,
    pub ready: bool,
    pub dumps: Vec<DumpReport>,
    pub labels: BTreeMap<String, String>,
    /// Time per phase, in the order they ran.
    pub phases: Vec<Phase>,
    pub lock_slot: Option<u32>,
    #[serde(skip)]
    pub pvc_uid: Option<String>,
    /// The VolumeSnapshot that would be created (dry run only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_snapshot: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The attempt as recorded (not for a dry run).
    #[serde(skip)]
    pub attempt: Option<Attempt>,
    /// The PVC's record as it stands after this attempt (from the patch's answer), when the
    /// record could be written.
    #[serde(skip)]
    pub recorded: Option<Record>,
}

/// How long one phase took.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    pub seconds: f64,
}

impl CreateReport {
    fn phase(&mut self, name: &str, started: Instant) {
        let seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        tracing::debug!(phase = name, seconds, "phase done");
        self.phases.push(Phase {
            name: name.to_string(),
            seconds,
        });
    }
}

/// The snapshot's identity, from one clock reading.
struct Identity {
    now: DateTime<Tz>,
    name: String,
    labels: BTreeMap<String, String>,
}

/// Name and creation labels for a snapshot taken at `now`.
fn identity(ctx: &CreateContext, now: DateTime<Tz>) -> Result<Identity> {
    let s = &ctx.settings;
    let name = s.name_template.render(&NameInput {
        pvc: &s.pvc,
        namespace: &ctx.namespace,
        now,
        rand: s.vs_rand.as_deref().unwrap_or(&ctx.rand),
    })?;
    let label_input = LabelInput {
        pvc: &s.pvc,
        vs_type: s.vs_type,
        pod: s.pod_label.as_deref().unwrap_or(""),
        retain: s.retain,
        retain_days: s.retain_days,
    };
    let labels = labels::creation_labels(&label_input, now)?;
    Ok(Identity { now, name, labels })
}

/// Runs `create`, filling `report` as it goes (so a failure still reports what happened).
pub async fn run(ctx: &CreateContext, report: &mut CreateReport) -> Result<()> {
    let s = &ctx.settings;
    report.namespace = ctx.namespace.clone();
    report.pvc = s.pvc.clone();
    report.dry_run = s.dry_run;

    // A bad template or label value fails before any wait; the reading that names the snapshot
    // is taken when the dump starts.
    identity(ctx, ctx.started)?;

    // SIGTERM (the Job's deadline, an eviction) or SIGINT stops the work in progress: dropping
    // it closes the exec connection, so the in-pod dump stops and removes its temporary file;
    // then the Lease is released and the failure recorded, instead of dying with them held.
    // Once the snapshot exists, a short bounded step still runs (see `after_signal`).
    let mut signals = Signals::install();

    // 1–2. Per-PVC Lease, then the node lock slot. Not getting them is recorded on the PVC too:
    // a backup that keeps being skipped must be visible.
    let (_slot, held) = match acquire(ctx, report, &mut signals).await {
        Ok(held) => held,
        Err(e) => {
            let failed = Err(e);
            if !s.dry_run {
                record(ctx, report, &failed).await;
            }
            return failed;
        }
    };
    let lost = held.as_ref().map(lease::PvcLease::lost);
    let result = run_held(ctx, report, &mut signals, lost).await;
    if let Some(l) = held {
        l.release().await;
    }
    if !s.dry_run {
        record(ctx, report, &result).await;
    }
    result
}

/// Records the attempt where people and `status` look: an Event on the PVC (seen for an hour)
/// and the durable record in the PVC's annotations ([`crate::record`]). Best effort, both at
/// once: failing to record is logged and never changes the run's outcome.
async fn record(ctx: &CreateContext, report: &mut CreateReport, result: &Result<()>) {
    let attempt = attempt_of(ctx, report, result);
    let ((), recorded) = tokio::join!(
        record_event(ctx, report, result),
        record_attempt(ctx, &attempt)
    );
    report.attempt = Some(attempt);
    report.recorded = recorded;
}

/// The attempt as the PVC's record: skipped for a busy Lease or node lock (exit codes 3 and 4),
/// failed for anything else that went wrong.
fn attempt_of(ctx: &CreateContext, report: &CreateReport, result: &Result<()>) -> Attempt {
    let (outcome, error) = match result {
        Ok(()) => (Outcome::Succeeded, None),
        Err(e @ (Error::Busy(_) | Error::LockTimeout(_))) => {
            (Outcome::Skipped, Some(e.to_string()))
        }
        Err(e) => (Outcome::Failed, Some(e.to_string())),
    };
    // Whole seconds, as the record keeps it: the metrics then report the same last success
    // before and after a later failure.
    let started = ctx.started.with_timezone(&chrono::Utc);
    let started = chrono::Timelike::with_nanosecond(&started, 0).unwrap_or(started);
    Attempt {
        started,
        finished: chrono::Utc::now(),
        outcome,
        error,
        snapshot: report.snapshot.clone(),
    }
}

/// Writes the attempt onto the PVC; the record as it stands afterwards, `None` when it could
/// not be written.
async fn record_attempt(ctx: &CreateContext, attempt: &Attempt) -> Option<Record> {
    let ns = ctx.namespace.as_str();
    let pvc = &ctx.settings.pvc;
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    let patch = attempt.merge_patch();
    match api
        .patch(pvc, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(updated) => {
            tracing::debug!("attempt recorded on persistentvolumeclaim {ns}/{pvc}");
            let annotations = updated.metadata.annotations.unwrap_or_default();
            Some(Record::from_annotations(&annotations))
        }
        Err(e) => {
            tracing::warn!(
                "could not record the attempt on persistentvolumeclaim {ns}/{pvc} (patch \
                 persistentvolumeclaims is needed): {e}"
            );
            None
        }
    }
}

/// The attempt's metrics, handed to the sinks `commands::run` writes at the end.
fn emit_metrics(ctx: &CreateContext, report: &CreateReport, attempt: &Attempt) {
    let dumped: Vec<u64> = report.dumps.iter().filter_map(|d| d.bytes).collect();
    crate::metrics::emit(crate::metrics::Metrics::create(
        &crate::metrics::CreateMetrics {
            namespace: ctx.namespace.clone(),
            pvc: ctx.settings.pvc.clone(),
            started: attempt.started,
            finished: attempt.finished,
            outcome: attempt.outcome,
            previous_success: report.recorded.as_ref().and_then(|r| r.last_success),
            phases: report
                .phases
                .iter()
                .map(|p| (p.name.clone(), p.seconds))
                .collect(),
            dump_bytes: (!dumped.is_empty()).then(|| dumped.iter().sum()),
        },
    ));
}

/// The run as a notification (a skipped run is a failure: no backup was made).
fn notification_of(ctx: &CreateContext, report: &CreateReport, attempt: &Attempt) -> Notification {
    let outcome = match attempt.outcome {
        Outcome::Succeeded => notify::Outcome::Success,
        Outcome::Failed | Outcome::Skipped => notify::Outcome::Failure,
    };
    let mut n = Notification::new(
        ctx.namespace.clone(),
        ctx.settings.pvc.clone(),
        outcome,
        attempt.started,
        attempt.finished,
    );
    n.snapshot = report.snapshot.clone();
    n.error = attempt.error.clone();
    n.phases = report
        .phases
        .iter()
        .map(|p| notify::PhaseTime {
            name: p.name.clone(),
            seconds: p.seconds,
        })
        .collect();
    n.dumps = report
        .dumps
        .iter()
        .map(|d| notify::DumpInfo {
            engine: d.engine.to_owned(),
            pod: d.pod.clone(),
            container: d.container.clone(),
            file: d.file.clone(),
            bytes: d.bytes,
        })
        .collect();
    n.host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty());
    n.pod = ctx.settings.pod_label.clone();
    n.log_lines = notify::LogTail::global().lines();
    n
}

/// SIGTERM and SIGINT, installed once so a signal that arrives between two waits is not lost.
struct Signals {
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        let streams = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some((term, int)),
            _ => None,
        };
        Signals { streams }
    }

    /// Resolves when SIGTERM or SIGINT arrives (never, if the handlers could not be installed).
    async fn recv(&mut self) -> &'static str {
        match &mut self.streams {
            Some((term, int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            },
            None => std::future::pending().await,
        }
    }
}

/// Takes the per-PVC Lease and then the node lock slot (a local file lock); a dry run takes
/// neither, like the original. The Lease comes first: a run that waits for its PVC's Lease holds
/// no slot meanwhile, so it never keeps runs for other PVCs on this node waiting.
async fn acquire(
    ctx: &CreateContext,
    report: &mut CreateReport,
    signals: &mut Signals,
) -> Result<(Option<lock::SlotGuard>, Option<lease::PvcLease>)> {
    let s = &ctx.settings;
    if s.dry_run {
        return Ok((None, None));
    }
    // One create per PVC at a time, across nodes.
    let t = Instant::now();
    let lease = tokio::select! {
        l = lease::acquire(
            &ctx.client,
            &ctx.namespace,
            &s.pvc,
            &ctx.holder,
            s.lease.duration,
            s.lease.wait,
        ) => l?,
        signal = signals.recv() => {
            return Err(Error::Interrupted(format!(
                "terminated by {signal} while waiting for the lease of PVC {}/{}; nothing was done",
                ctx.namespace, s.pvc
            )))
        }
    };
    report.phase("lease", t);
    let Some(f) = &s.flock else {
        return Ok((None, Some(lease)));
    };
    let t = Instant::now();
    let slot = tokio::select! {
        g = lock::acquire(&f.dir, f.count, f.timeout) => g,
        signal = signals.recv() => Err(Error::Interrupted(format!(
            "terminated by {signal} while waiting for a node lock slot; nothing was done"
        ))),
    };
    match slot {
        Ok(guard) => {
            report.lock_slot = Some(guard.slot);
            report.phase("lock", t);
            Ok((Some(guard), Some(lease)))
        }
        Err(e) => {
            lease.release().await;
            Err(e)
        }
    }
}

/// An Event on the PVC, so `kubectl describe pvc` shows the last backups and their outcome.
/// Best effort: a failure to record it is logged, never fails the run.
async fn record_event(ctx: &CreateContext, report: &CreateReport, result: &Result<()>) {
    use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
    let ns = ctx.namespace.as_str();
    let pvc = &ctx.settings.pvc;
    let snapshot = report.snapshot.as_deref().unwrap_or("-");
    let (type_, reason, message) = match result {
        Ok(()) => (
            "Normal",
            "BackupSucceeded",
            format!(
                "volumesnapshot {snapshot} created{}",
                if report.ready { " and ready" } else { "" }
            ),
        ),
        Err(e) => (
            "Warning",
            "BackupFailed",
            format!("backup of PVC {pvc} failed: {e}"),
        ),
    };
    let now = jiff::Timestamp::now();
    let event = Event {
        metadata: ObjectMeta {
            // `<pvc>.<hex nanoseconds>` like kubectl's events; the PVC part is cut so the name
            // stays within 253 characters.
            name: Some(format!(
                "{}.{:x}",
                &pvc[..pvc.len().min(200)],
                now.as_nanosecond()
            )),
            namespace: Some(ns.to_string()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            name: Some(pvc.clone()),
            namespace: Some(ns.to_string()),
            uid: report.pvc_uid.clone(),
            ..Default::default()
        },
        reason: Some(reason.into()),
        // The API server limits an Event message to 1 KiB.
        message: Some(message.chars().take(1000).collect()),
        type_: Some(type_.into()),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        action: Some("Backup".into()),
        reporting_component: Some("backup-ns".into()),
        reporting_instance: Some(ctx.holder.chars().take(128).collect()),
        source: Some(EventSource {
            component: Some("backup-ns".into()),
            host: None,
        }),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), ns);
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        tracing::warn!("could not record an event on persistentvolumeclaim {ns}/{pvc}: {e}");
    }
}

/// Everything after the Lease and the slot. `lost` resolves when the Lease is lost.
async fn run_held(
    ctx: &CreateContext,
    report: &mut CreateReport,
    signals: &mut Signals,
    lost: Option<impl std::future::Future<Output = String>>,
) -> Result<()> {
    let s = &ctx.settings;
    let ns = ctx.namespace.as_str();
    let lost = async move {
        match lost {
            Some(lost) => lost.await,
            None => std::future::pending().await,
        }
    };

    // 3–7. Up to the dumps, the work stops where it is on a signal or when the Lease is lost:
    // dropping it closes the exec connection, the in-pod dump stops and the previous one stays.
    let id = tokio::select! {
        r = prepare_and_dump(ctx, report) => r?,
        signal = signals.recv() => return Err(Error::Interrupted(format!(
            "terminated by {signal}; the in-pod dump stops when its connection closes, the previous dump stays"
        ))),
        why = lost => return Err(Error::Interrupted(format!(
            "{why}; stopped so two runs never dump PVC {ns}/{} at once: the in-pod dump stops when its connection closes, the previous dump stays",
            s.pvc
        ))),
    };
    let Identity {
        now,
        name,
        labels: mut creation_labels,
    } = id;

    // 8. The VolumeSnapshot. Without waiting, period labels are claimed now (we cannot know
    // readiness); with waiting, only once it is ready.
    let snapshots: Api<VolumeSnapshot> = Api::namespaced(ctx.client.clone(), ns);
    let claim_now = s.retain == Retain::DailyWeeklyMonthly && (!s.wait_until_ready || s.dry_run);
    if claim_now {
        let claim = claim_for(&snapshots, &s.pvc, &name, report.pvc_uid.as_deref(), now).await?;
        creation_labels.extend(labels::period_labels(&claim));
    }
    let annotations: BTreeMap<String, String> = [
        (
            labels::ENV_CONFIG.to_string(),
            labels::env_config_annotation(ctx.env.iter().cloned()),
        ),
        (CREATED_BY.to_string(), ctx.holder.clone()),
    ]
    .into();
    let vs = VolumeSnapshot::for_pvc(
        &name,
        ns,
        &s.pvc,
        s.vs_class.as_deref(),
        creation_labels.clone(),
        annotations,
    );
    report.snapshot = Some(name.clone());
    report.labels = creation_labels;
    if s.dry_run {
        report.volume_snapshot = Some(serde_json::to_value(&vs).unwrap_or_default());
        tracing::info!("dry run: would create volumesnapshot {ns}/{name}");
        return Ok(());
    }
    let t = Instant::now();
    post_snapshot(&snapshots, &vs, ns, &name, &s.pvc, &ctx.holder).await?;
    tracing::info!("created volumesnapshot {ns}/{name}");
    report.phase("snapshot", t);

    if !s.wait_until_ready {
        return Ok(());
    }

    // 9. Wait for readyToUse under one deadline. From here on a signal does not drop the
    // snapshot on the floor: a short bounded step decides what it is left as.
    let t = Instant::now();
    let waited = tokio::select! {
        w = wait_ready(&snapshots, &name, s.wait_timeout) => w,
        signal = signals.recv() => {
            report.phase("wait", t);
            return Err(after_signal(ctx, report, &snapshots, &name, now, signal).await);
        }
    };
    report.phase("wait", t);
    waited?;
    report.ready = true;

    // 10. Claim the period labels for this PVC now that the snapshot is good.
    if s.retain == Retain::DailyWeeklyMonthly {
        let t = Instant::now();
        let period = claim_labels(
            &snapshots,
            ns,
            &s.pvc,
            &name,
            report.pvc_uid.as_deref(),
            now,
        )
        .await?;
        tracing::info!("retention labels claimed: {}", describe(&period));
        report.labels.extend(period);
        report.phase("labels", t);
    }
    Ok(())
}

/// Steps 3–7: the PVC, the exec targets, the in-pod checks, the clock reading and the dumps.
/// Returns the snapshot's identity.
async fn prepare_and_dump(ctx: &CreateContext, report: &mut CreateReport) -> Result<Identity> {
    let s = &ctx.settings;
    let ns = ctx.namespace.as_str();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);

    // 3. The PVC exists and is Bound.
    let t = Instant::now();
    report.pvc_uid = check_pvc(&ctx.client, ns, &s.pvc).await?;

    // 4. Exec targets.
    let mut resolved = Vec::new();
    for job in &s.databases {
        resolved.push(super::dbops::resolve(&ctx.client, ns, job).await?);
    }
    report.phase("preflight", t);

    // 5–6. In-pod checks for every database before anything is written.
    let t = Instant::now();
    for r in &resolved {
        check_in_pod(&pods, r, s.space_threshold_percent).await?;
    }
    if !resolved.is_empty() {
        report.phase("checks", t);
    }

    // The one clock reading of this run, taken after every wait (lock, Lease, checks): it names
    // the snapshot and dates every label, so they carry the day the data is from.
    let now = chrono::Utc::now().with_timezone(&s.tz);
    tracing::info!(
        time_zone = s.tz.name(),
        source = s.tz_source,
        "backup at {}",
        now.to_rfc3339()
    );
    let mut id = identity(ctx, now)?;
    // The source volume's uid: a PVC deleted and re-created under the same name is another
    // volume, whose snapshots do not hold this one's periods.
    if let Some(uid) = report.pvc_uid.as_deref().filter(|u| !u.is_empty()) {
        id.labels
            .insert(labels::PVC_UID.to_string(), uid.to_string());
    }

    // 7. Dumps.
    for r in &resolved {
        let mut dump = DumpReport {
            engine: engine_name(r.job.target.engine),
            pod: r.pod.clone(),
            container: r.job.container.clone(),
            file: r.job.target.dump_file.clone(),
            bytes: None,
        };
        if s.dry_run {
            tracing::info!(
                "dry run: would dump {} to {} in pod {}",
                dump.engine,
                dump.file,
                r.pod
            );
        } else {
            let t = Instant::now();
            let bytes = dump_in_pod(&pods, r, s.dump_timeout).await?;
            tracing::info!(
                bytes,
                "{} dump written to {} in pod {}",
                dump.engine,
                dump.file,
                r.pod
            );
            dump.bytes = Some(bytes);
            report.phase(&format!("dump-{}", dump.engine), t);
        }
        report.dumps.push(dump);
    }
    Ok(id)
}

/// Claims the periods no other ready snapshot of this PVC (same volume) holds and writes them
/// on the snapshot; returns the labels written.
async fn claim_labels(
    api: &Api<VolumeSnapshot>,
    ns: &str,
    pvc: &str,
    name: &str,
    pvc_uid: Option<&str>,
    now: DateTime<Tz>,
) -> Result<BTreeMap<String, String>> {
    let claim = claim_for(api, pvc, name, pvc_uid, now).await?;
    let period = labels::period_labels(&claim);
    if !period.is_empty() {
        let patch = serde_json::json!({"metadata": {"labels": period}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::kube(format!("label volumesnapshot {ns}/{name}"), e))?;
    }
    Ok(period)
}

/// SIGTERM or SIGINT arrived while waiting for the snapshot to become ready. The snapshot must
/// not be left neither labelled nor accounted for, so within [`AFTER_SIGNAL`] it is looked at
/// once: ready → its period labels are claimed now; not ready → it is left as a pending snapshot
/// without period labels, which `retain` claims for once it is ready (or sweeps as failed when
/// it is not ready a day after its creation). Returns the error the run ends with.
async fn after_signal(
    ctx: &CreateContext,
    report: &mut CreateReport,
    api: &Api<VolumeSnapshot>,
    name: &str,
    now: DateTime<Tz>,
    signal: &str,
) -> Error {
    let s = &ctx.settings;
    let ns = ctx.namespace.as_str();
    let head = format!(
        "terminated by {signal} while waiting for volumesnapshot {ns}/{name} to become ready"
    );
    let pending = if s.retain == Retain::DailyWeeklyMonthly {
        "it was left in place without period labels: `retain` claims them once it is ready, and it is swept as failed if it is not ready a day after its creation"
    } else {
        "it was left in place with its delete-after label"
    };
    let step = async {
        let vs = api
            .get(name)
            .await
            .map_err(|e| Error::kube(format!("get volumesnapshot {ns}/{name}"), e))?;
        let state = vs.state(chrono::Utc::now());
        if !state.is_ready() {
            return Ok(format!("{head}; it is {state}: {pending}"));
        }
        report.ready = true;
        if s.retain != Retain::DailyWeeklyMonthly {
            return Ok(format!("{head}; it is ready and keeps its labels"));
        }
        let period = claim_labels(api, ns, &s.pvc, name, report.pvc_uid.as_deref(), now).await?;
        let claimed = describe(&period);
        report.labels.extend(period);
        Ok::<_, Error>(format!(
            "{head}; it is ready and its retention labels were claimed before exiting: {claimed}"
        ))
    };
    let message = match tokio::time::timeout(AFTER_SIGNAL, step).await {
        Ok(Ok(message)) => message,
        Ok(Err(e)) => format!("{head}; could not look at it ({e}): {pending}"),
        Err(_) => format!(
            "{head}; could not look at it within {}s: {pending}",
            AFTER_SIGNAL.as_secs()
        ),
    };
    Error::Interrupted(message)
}

fn describe(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "none (other snapshots of this PVC hold today, this week and this month)".into();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks the PVC is there and Bound; returns its uid (for the Event).
async fn check_pvc(client: &kube::Client, ns: &str, pvc: &str) -> Result<Option<String>> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let found = api
        .get_opt(pvc)
        .await
        .map_err(|e| Error::kube(format!("get persistentvolumeclaim {ns}/{pvc}"), e))?;
    let Some(found) = found else {
        return Err(Error::Precondition(format!(
            "persistentvolumeclaim {ns}/{pvc} not found (BAK_PVC_NAME)"
        )));
    };
    if found.metadata.deletion_timestamp.is_some() {
        return Err(Error::Precondition(format!(
            "persistentvolumeclaim {ns}/{pvc} is being deleted"
        )));
    }
    let phase = found
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".into());
    if phase != "Bound" {
        return Err(Error::Precondition(format!(
            "persistentvolumeclaim {ns}/{pvc} is {phase}, not Bound"
        )));
    }
    Ok(found.metadata.uid)
}

/// The existing snapshots of this PVC (never namespace-wide), for the claim: only ready ones of
/// the same volume hold a period (see [`claim_holders`]). A listing error is an error, never
/// "already claimed".
async fn claim_for(
    api: &Api<VolumeSnapshot>,
    pvc: &str,
    own: &str,
    own_pvc_uid: Option<&str>,
    now: DateTime<Tz>,
) -> Result<labels::Claim> {
    let selector = format!("{}={pvc}", labels::PVC);
    let mut group = Vec::new();
    let mut lp = ListParams::default().labels(&selector).limit(500);
    let read_at = chrono::Utc::now();
    loop {
        let page = api
            .list(&lp)
            .await
            .map_err(|e| Error::kube(format!("list volumesnapshots of PVC {pvc}"), e))?;
        group.extend(
            page.items
                .iter()
                .map(|vs| SnapshotRecord::from_snapshot(vs, read_at)),
        );
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = lp.continue_token(&token),
            None => break,
        }
    }
    let existing = claim_holders(&group, own, own_pvc_uid);
    Ok(labels::claim_periods(now, &existing))
}

/// Whether an existing VolumeSnapshot is the one this run posted: same PVC, and this run's
/// identity in [`CREATED_BY`].
fn is_own(vs: &VolumeSnapshot, pvc: &str, holder: &str) -> bool {
    vs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CREATED_BY))
        .is_some_and(|h| h == holder)
        && vs.spec.source.persistent_volume_claim_name.as_deref() == Some(pvc)
}

/// POSTs the VolumeSnapshot. A POST whose answer was lost can have gone through: kube's retry
/// layer re-sends it after a 504 and gets 409 AlreadyExists for our own object, and after a
/// dropped connection we cannot know. Either way the snapshot is looked up by name and, when it
/// is this run's ([`is_own`]), the run goes on with it; a namesake of someone else is an error.
async fn post_snapshot(
    api: &Api<VolumeSnapshot>,
    vs: &VolumeSnapshot,
    ns: &str,
    name: &str,
    pvc: &str,
    holder: &str,
) -> Result<()> {
    const ATTEMPTS: u32 = 3;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let err = match api.create(&PostParams::default(), vs).await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let already_exists =
            matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists");
        let answer_lost = !matches!(&err, kube::Error::Api(_));
        if !already_exists && !answer_lost {
            return Err(Error::kube(
                format!("create volumesnapshot {ns}/{name}"),
                err,
            ));
        }
        let found = api.get_opt(name).await.map_err(|e| {
            Error::kube(
                format!("get volumesnapshot {ns}/{name} after its POST ({err})"),
                e,
            )
        })?;
        match found {
            Some(existing) if is_own(&existing, pvc, holder) => {
                tracing::warn!(
                    "the answer to creating volumesnapshot {ns}/{name} was lost ({err}); it was created by this run, going on with it"
                );
                return Ok(());
            }
            Some(_) => {
                return Err(Error::Snapshot(format!(
                    "volumesnapshot {ns}/{name} already exists and was not created by this run \
                     (its {CREATED_BY} annotation or source PVC differ); left alone. \
                     Make names unique with BAK_VS_NAME_TEMPLATE or BAK_VS_RAND"
                )))
            }
            None if attempt < ATTEMPTS => {
                tracing::warn!(
                    "creating volumesnapshot {ns}/{name} failed ({err}) and it does not exist; trying again"
                );
            }
            None => {
                return Err(Error::kube(
                    format!("create volumesnapshot {ns}/{name}"),
                    err,
                ));
            }
        }
    }
}

/// Waits for `readyToUse` under one deadline. Ready is ready whatever `status.error` says (it is
/// logged as a warning); an error on a snapshot that is not ready is the controller's last
/// observation — it retries — so the wait goes on and the error is reported at the deadline. A
/// snapshot that is being deleted (or gone) fails at once.
async fn wait_ready(api: &Api<VolumeSnapshot>, name: &str, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(200);
    let mut last_error: Option<String> = None;
    loop {
        match api.get_opt(name).await {
            Ok(Some(vs)) => match vs.state(chrono::Utc::now()) {
                SnapshotState::Ready { warning } => {
                    match warning {
                        Some(w) => tracing::warn!(
                            "volumesnapshot {name} is ready to use; the snapshot controller still reports: {w}"
                        ),
                        None => tracing::info!("volumesnapshot {name} is ready to use"),
                    }
                    return Ok(());
                }
                SnapshotState::Terminating => {
                    return Err(Error::Snapshot(format!(
                        "volumesnapshot {name} is being deleted (deletionTimestamp is set) while waiting for it to become ready"
                    )));
                }
                SnapshotState::Pending { error } | SnapshotState::Failed { error } => {
                    if error.is_some() && error != last_error {
                        tracing::warn!(
                            "volumesnapshot {name} is not ready yet; the snapshot controller reports: {} (it retries; waiting)",
                            error.as_deref().unwrap_or_default()
                        );
                    }
                    if error.is_some() {
                        last_error = error;
                    }
                }
            },
            Ok(None) => {
                return Err(Error::Snapshot(format!(
                    "volumesnapshot {name} was deleted while waiting for it to become ready"
                )));
            }
            // A transient read error does not fail the wait; the deadline bounds it.
            Err(e) => tracing::warn!("reading volumesnapshot {name}: {e}"),
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            let last = last_error
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default();
            return Err(Error::Snapshot(format!(
                "volumesnapshot {name} not ready after {}s (BAK_VS_WAIT_UNTIL_READY_TIMEOUT){last}. \
                 It was left in place, not marked for deletion and without period labels: it may still \
                 be cutting; `retain` claims its periods once it is ready, and it counts as failed and \
                 is swept if it is not ready a day after its creation",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 3 / 2).min(Duration::from_secs(2));
    }
}

/// The `create` command: settings → client → run → result on stdout → exit status.
pub async fn main(args: &crate::cli::CreateArgs, output: OutputFormat) -> ExitStatus {
    let settings = match super::settings_from(args) {
        Ok(s) => s,
        Err(e) => return super::report_error(&e),
    };
    // Only to check the name template before any wait; the reading that names the snapshot is
    // taken when the dump starts.
    let started = chrono::Utc::now().with_timezone(&settings.tz);
    let (client, context_namespace) = match super::client(true).await {
        Ok(x) => x,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitStatus::Failure;
        }
    };
    let namespace = settings.namespace.clone().unwrap_or(context_namespace);
    if let Err(e) =
        crate::labels::validate_dns1123_label("namespace of the kube context", &namespace)
    {
        return super::report_error(&e);
    }
    let mut rng = rand::rng();
    let rand = crate::naming::random_suffix(&mut rng);
    let identity = settings
        .pod_label
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "backup-ns".into());
    let holder = format!(
        "{identity}/{}-{:04x}",
        std::process::id(),
        rand::Rng::random::<u16>(&mut rng)
    );
    // Notifications and pings go out for real runs only; `/start` now, in the background.
    let mut notifier = Notifier::from_settings(&settings);
    if !settings.dry_run {
        notifier.start();
    }
    let ctx = CreateContext {
        client,
        namespace,
        settings,
        started,
        env: std::env::vars().collect(),
        rand,
        holder,
    };
    let mut report = CreateReport::default();
    let result = run(&ctx, &mut report).await;
    let status = match &result {
        Ok(()) => ExitStatus::Success,
        Err(e) => {
            report.error = Some(e.to_string());
            super::report_error(e)
        }
    };
    if let Some(attempt) = report.attempt.clone() {
        emit_metrics(&ctx, &report, &attempt);
        // Never changes the outcome: failed deliveries are logged.
        notifier
            .finish(&notification_of(&ctx, &report, &attempt))
            .await;
    }
    print_report(&report, output);
    status
}

fn print_report(report: &CreateReport, output: OutputFormat) {
    match output {
        OutputFormat::Json => match serde_json::to_string_pretty(report) {
            Ok(s) => println!("{s}"),
            Err(e) => tracing::error!("cannot render the result: {e}"),
        },
        OutputFormat::Text => {
            if let Some(vs) = &report.volume_snapshot {
                println!("{}", serde_json::to_string_pretty(vs).unwrap_or_default());
            }
            if let Some(name) = &report.snapshot {
                let state = match (&report.error, report.dry_run, report.ready) {
                    (Some(_), _, _) => "FAILED",
                    (None, true, _) => "dry run, not created",
                    (None, false, true) => "ready",
                    (None, false, false) => "created",
                };
                println!(
                    "volumesnapshot/{name} in namespace {} ({state})",
                    report.namespace
                );
                for (k, v) in &report.labels {
                    println!("  {k}={v}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(pvc: &str, created_by: Option<&str>) -> VolumeSnapshot {
        let annotations = created_by
            .map(|h| [(CREATED_BY.to_string(), h.to_string())].into())
            .unwrap_or_default();
        VolumeSnapshot::for_pvc("data-x", "shop", pvc, None, BTreeMap::new(), annotations)
    }

    #[test]
    fn only_this_runs_snapshot_of_this_pvc_is_its_own() {
        let me = "backup-job-x1/7-0a1b";
        assert!(is_own(&snapshot("data", Some(me)), "data", me));
        assert!(!is_own(
            &snapshot("data", Some("backup-job-x1/8-ffff")),
            "data",
            me
        ));
        assert!(!is_own(&snapshot("data", None), "data", me));
        assert!(!is_own(&snapshot("other", Some(me)), "data", me));
    }
}
