//! `backup-ns create`: an application-consistent snapshot of one PVC.
//!
//! Order matters and every step fails closed: node lock slot → per-PVC Lease → PVC Bound →
//! exec targets resolved → in-pod checks (tools, `SELECT 1`, free space) for every database →
//! dumps (atomic, in the container) → VolumeSnapshot → wait for readyToUse → claim the
//! daily/weekly/monthly labels for this PVC. If anything before the snapshot fails, no snapshot
//! is created. A snapshot that fails or times out keeps no period labels and is marked for the
//! next sweep.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::DateTime;
use chrono_tz::Tz;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde::Serialize;

use crate::cli::OutputFormat;
use crate::db::{self, DbTarget, Engine};
use crate::exec::{self, ExecRequest};
use crate::labels::{self, LabelInput, Retain};
use crate::naming::NameInput;
use crate::retention::{claim_holders, SnapshotRecord};
use crate::settings::{DbJob, Settings};
use crate::snapshot::VolumeSnapshot;
use crate::state::SnapshotState;
use crate::{lease, lock, workload, Error, ExitStatus, Result};

/// Timeout of the quick in-pod scripts (checks, free space).
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);
/// Extra time the exec gets beyond the dump timeout, so the script's own timeout fires first
/// and reports a clean error.
const DUMP_GRACE: Duration = Duration::from_secs(30);

/// Inputs of one run, gathered by the caller: the one clock reading, the environment for the
/// `env-config` annotation, and identities.
pub struct CreateContext {
    pub client: kube::Client,
    pub namespace: String,
    pub settings: Settings,
    /// The one clock reading of this run, in the configured time zone.
    pub now: DateTime<Tz>,
    /// The process environment (`BAK_*` variables go into the `env-config` annotation).
    pub env: Vec<(String, String)>,
    /// Random suffix when `BAK_VS_RAND` is not set.
    pub rand: String,
    /// Holder identity for the Lease.
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

fn engine_name(e: Engine) -> &'static str {
    match e {
        Engine::Postgres => "postgres",
        Engine::Mysql => "mysql",
    }
}

/// A database job with the pod it runs in.
struct Resolved<'a> {
    job: &'a DbJob,
    pod: String,
}

/// Runs `create`, filling `report` as it goes (so a failure still reports what happened).
pub async fn run(ctx: &CreateContext, report: &mut CreateReport) -> Result<()> {
    let s = &ctx.settings;
    let ns = ctx.namespace.as_str();
    report.namespace = ns.to_string();
    report.pvc = s.pvc.clone();
    report.dry_run = s.dry_run;

    // Everything about the snapshot's identity is decided up front from the one clock reading,
    // so a bad template fails before any work.
    let name = s.name_template.render(&NameInput {
        pvc: &s.pvc,
        namespace: ns,
        now: ctx.now,
        rand: s.vs_rand.as_deref().unwrap_or(&ctx.rand),
    })?;
    let label_input = LabelInput {
        pvc: &s.pvc,
        vs_type: s.vs_type,
        pod: s.pod_label.as_deref().unwrap_or(""),
        retain: s.retain,
        retain_days: s.retain_days,
    };
    let mut creation_labels = labels::creation_labels(&label_input, ctx.now)?;
    let annotation = labels::env_config_annotation(ctx.env.iter().cloned());
    let annotations: BTreeMap<String, String> =
        [(labels::ENV_CONFIG.to_string(), annotation)].into();

    // 1–2. Node lock slot and per-PVC Lease. Not getting them is recorded on the PVC too: a
    // backup that keeps being skipped must be visible.
    let (_slot, held) = match acquire(ctx, report).await {
        Ok(held) => held,
        Err(e) => {
            let failed = Err(e);
            if !s.dry_run {
                record_event(ctx, report, &failed).await;
            }
            return failed;
        }
    };

    // SIGTERM (the Job's deadline, an eviction) or SIGINT stops the work in progress: dropping
    // it closes the exec connection, so the in-pod dump stops and removes its temporary file;
    // then the Lease is released and the failure recorded, instead of dying with them held.
    let result = tokio::select! {
        r = run_locked(ctx, report, &name, &mut creation_labels, annotations) => r,
        signal = terminated() => Err(Error::Interrupted(format!(
            "terminated by {signal}; the in-pod dump stops when its connection closes, the previous dump stays"
        ))),
    };
    if let Some(l) = held {
        l.release().await;
    }
    if !s.dry_run {
        record_event(ctx, report, &result).await;
    }
    result
}

/// Takes the node lock slot (a local file lock) and the per-PVC Lease; a dry run takes
/// neither, like the original.
async fn acquire(
    ctx: &CreateContext,
    report: &mut CreateReport,
) -> Result<(Option<lock::SlotGuard>, Option<lease::PvcLease>)> {
    let s = &ctx.settings;
    if s.dry_run {
        return Ok((None, None));
    }
    let slot = match &s.flock {
        Some(f) => {
            let t = Instant::now();
            let guard = lock::acquire(&f.dir, f.count, f.timeout).await?;
            report.lock_slot = Some(guard.slot);
            report.phase("lock", t);
            Some(guard)
        }
        None => None,
    };
    // One create per PVC at a time, across nodes.
    let t = Instant::now();
    let lease = lease::acquire(
        &ctx.client,
        &ctx.namespace,
        &s.pvc,
        &ctx.holder,
        s.lease.duration,
        s.lease.wait,
    )
    .await?;
    report.phase("lease", t);
    Ok((slot, Some(lease)))
}

/// Resolves when SIGTERM or SIGINT arrives (never, if the handlers cannot be installed).
async fn terminated() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => std::future::pending().await,
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

async fn run_locked(
    ctx: &CreateContext,
    report: &mut CreateReport,
    name: &str,
    creation_labels: &mut BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
) -> Result<()> {
    let s = &ctx.settings;
    let ns = ctx.namespace.as_str();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);

    // 3. The PVC exists and is Bound.
    let t = Instant::now();
    report.pvc_uid = check_pvc(&ctx.client, ns, &s.pvc).await?;

    // 4. Exec targets.
    let mut resolved = Vec::new();
    for job in &s.databases {
        let pod =
            workload::resolve_pod(&ctx.client, ns, &job.exec_resource, &job.container).await?;
        tracing::info!(
            "{}: using pod {pod}, container {}",
            job.exec_resource,
            job.container
        );
        resolved.push(Resolved { job, pod });
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

    // 8. The VolumeSnapshot. Without waiting, period labels are claimed now (we cannot know
    // readiness); with waiting, only once it is ready.
    let snapshots: Api<VolumeSnapshot> = Api::namespaced(ctx.client.clone(), ns);
    let claim_now = s.retain == Retain::DailyWeeklyMonthly && (!s.wait_until_ready || s.dry_run);
    if claim_now {
        let claim = claim_for(&snapshots, &s.pvc, name, ctx.now).await?;
        creation_labels.extend(labels::period_labels(&claim));
    }
    let vs = VolumeSnapshot::for_pvc(
        name,
        ns,
        &s.pvc,
        s.vs_class.as_deref(),
        creation_labels.clone(),
        annotations,
    );
    report.snapshot = Some(name.to_string());
    report.labels = creation_labels.clone();
    if s.dry_run {
        report.volume_snapshot = Some(serde_json::to_value(&vs).unwrap_or_default());
        tracing::info!("dry run: would create volumesnapshot {ns}/{name}");
        return Ok(());
    }
    let t = Instant::now();
    snapshots
        .create(&PostParams::default(), &vs)
        .await
        .map_err(|e| Error::kube(format!("create volumesnapshot {ns}/{name}"), e))?;
    tracing::info!("created volumesnapshot {ns}/{name}");
    report.phase("snapshot", t);

    if !s.wait_until_ready {
        return Ok(());
    }

    // 9. Wait for readyToUse under one deadline; status.error fails at once.
    let t = Instant::now();
    let waited = wait_ready(&snapshots, name, s.wait_timeout).await;
    report.phase("wait", t);
    if let Err(e) = waited {
        if mark_failed(&snapshots, name, ctx.now).await {
            for key in [labels::DAILY, labels::WEEKLY, labels::MONTHLY] {
                report.labels.remove(key);
            }
            report.labels.insert(
                labels::DELETE_AFTER.to_string(),
                labels::daily_value(ctx.now),
            );
        }
        return Err(e);
    }
    report.ready = true;

    // 10. Claim the period labels for this PVC now that the snapshot is good.
    if s.retain == Retain::DailyWeeklyMonthly {
        let t = Instant::now();
        let claim = claim_for(&snapshots, &s.pvc, name, ctx.now).await?;
        let period = labels::period_labels(&claim);
        if !period.is_empty() {
            let patch = serde_json::json!({"metadata": {"labels": period}});
            snapshots
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::kube(format!("label volumesnapshot {ns}/{name}"), e))?;
        }
        tracing::info!("retention labels claimed: {}", describe(&period));
        report.labels.extend(period);
        report.phase("labels", t);
    }
    Ok(())
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

fn script_request<'a>(
    r: &'a Resolved<'a>,
    script: db::Script,
    hold_stdin: bool,
    timeout: Duration,
    what: &'a str,
) -> ExecRequest<'a> {
    ExecRequest {
        pod: &r.pod,
        container: &r.job.container,
        argv: script.argv,
        stdin: script.stdin,
        hold_stdin,
        timeout,
        what,
    }
}

async fn check_in_pod(pods: &Api<Pod>, r: &Resolved<'_>, threshold: u8) -> Result<()> {
    let target: &DbTarget = &r.job.target;
    let engine = engine_name(target.engine);
    let what = format!("{engine} check");
    let out = exec::run(
        pods,
        script_request(r, db::check_script(target), true, CHECK_TIMEOUT, &what),
    )
    .await?;
    if out.exit_code != 0 {
        return Err(Error::Exec(format!(
            "{engine} check in pod {} failed (exit {}): {}",
            r.pod,
            out.exit_code,
            out.stderr_summary()
        )));
    }
    tracing::info!(
        "{engine} check passed in pod {}: tools present, SELECT 1 ok",
        r.pod
    );

    let what = format!("{engine} free space");
    let out = exec::run(
        pods,
        script_request(
            r,
            db::space_script(&target.dump_file),
            true,
            CHECK_TIMEOUT,
            &what,
        ),
    )
    .await?;
    if out.exit_code != 0 {
        return Err(Error::Exec(format!(
            "free-space check of {} in pod {} failed (exit {}): {}",
            target.dump_file,
            r.pod,
            out.exit_code,
            out.stderr_summary()
        )));
    }
    let space = db::SpaceReport::parse(&out.stdout)
        .map_err(|e| Error::Exec(format!("free-space check in pod {}: {e}", r.pod)))?;
    space.verdict(threshold).map_err(|e| {
        Error::Precondition(format!("not enough space for {} in pod {}: {e} (BAK_THRESHOLD_SPACE_USED_PERCENTAGE={threshold})", target.dump_file, r.pod))
    })?;
    tracing::info!("free space ok for {}: {space}", target.dump_file);
    Ok(())
}

async fn dump_in_pod(pods: &Api<Pod>, r: &Resolved<'_>, timeout: Duration) -> Result<u64> {
    let target = &r.job.target;
    let engine = engine_name(target.engine);
    let what = format!("{engine} dump");
    let script = db::dump_script(target, timeout.as_secs().max(1));
    let out = exec::run(
        pods,
        script_request(r, script, true, timeout + DUMP_GRACE, &what),
    )
    .await?;
    if out.exit_code != 0 {
        return Err(Error::Exec(format!(
            "{engine} dump in pod {} failed (exit {}): {}; the previous dump {} is untouched",
            r.pod,
            out.exit_code,
            out.stderr_summary(),
            target.dump_file
        )));
    }
    db::parse_dump_output(&out.stdout)
        .map_err(|e| Error::Exec(format!("{engine} dump in pod {}: {e}", r.pod)))
}

/// The existing ready snapshots of this PVC (never namespace-wide), for the claim. A listing
/// error is an error, never "already claimed".
async fn claim_for(
    api: &Api<VolumeSnapshot>,
    pvc: &str,
    own: &str,
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
    let existing = claim_holders(&group, own, None);
    Ok(labels::claim_periods(now, &existing))
}

async fn wait_ready(api: &Api<VolumeSnapshot>, name: &str, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(200);
    loop {
        match api.get(name).await {
            Ok(vs) => match vs.state(chrono::Utc::now()) {
                SnapshotState::Ready { .. } => {
                    tracing::info!("volumesnapshot {name} is ready to use");
                    return Ok(());
                }
                SnapshotState::Pending { error: Some(msg) }
                | SnapshotState::Failed { error: Some(msg) } => {
                    return Err(Error::Snapshot(format!(
                        "volumesnapshot {name} failed: {msg}"
                    )));
                }
                _ => {}
            },
            // A transient read error does not fail the wait; the deadline bounds it.
            Err(e) => tracing::warn!("reading volumesnapshot {name}: {e}"),
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(Error::Snapshot(format!(
                "volumesnapshot {name} not ready after {}s (BAK_VS_WAIT_UNTIL_READY_TIMEOUT)",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 3 / 2).min(Duration::from_secs(2));
    }
}

/// A failed or timed-out snapshot keeps no period labels and is marked for the next sweep
/// (`delete-after` = today), whatever its retention mode.
async fn mark_failed(api: &Api<VolumeSnapshot>, name: &str, now: DateTime<Tz>) -> bool {
    let patch = serde_json::json!({"metadata": {"labels": {
        labels::DAILY: null,
        labels::WEEKLY: null,
        labels::MONTHLY: null,
        labels::DELETE_AFTER: labels::daily_value(now),
    }}});
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::warn!(
                "volumesnapshot {name} marked for deletion (delete-after={})",
                labels::daily_value(now)
            );
            true
        }
        Err(e) => {
            tracing::error!("could not mark failed volumesnapshot {name} for deletion: {e}");
            false
        }
    }
}

/// The `create` command: settings → client → run → result on stdout → exit status.
pub async fn main(args: &crate::cli::CreateArgs, output: OutputFormat) -> ExitStatus {
    let settings = match super::settings_from(args) {
        Ok(s) => s,
        Err(e) => return super::report_error(&e),
    };
    // The one clock reading of this run: it names the snapshot and dates every label.
    let now = chrono::Utc::now().with_timezone(&settings.tz);
    tracing::info!(
        time_zone = settings.tz.name(),
        source = settings.tz_source,
        "backup at {}",
        now.to_rfc3339()
    );
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
    let ctx = CreateContext {
        client,
        namespace,
        settings,
        now,
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
