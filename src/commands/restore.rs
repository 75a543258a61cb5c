//! `backup-ns restore pvc SNAPSHOT --to NEW_PVC` (and the original's `restore SNAPSHOT -p
//! NEW_PVC`): a new PVC whose `dataSource` is a ready snapshot.
//!
//! The original hard-coded `ReadWriteOnce`, dropped `volumeMode` (a Block volume came back as a
//! Filesystem claim that never binds) and sized the claim from `restoreSize` alone. Here the new
//! claim copies the storage class, access modes and volumeMode of the snapshotted PVC while it
//! exists (else the cluster's default class and `ReadWriteOnce`, unless flags say otherwise);
//! its size is the larger of `restoreSize` and that PVC's request, because a volume grown after
//! the snapshot holds data that expects the room. `--size` may grow it, never shrink it below
//! `restoreSize` (the provisioner would refuse and leave the claim Pending).
//!
//! Gather (the snapshot, the target name, the snapshotted PVC) → plan (pure: [`plan`]) → apply
//! (create, then with `--wait` poll until Bound). An existing PVC is never touched: the command
//! only creates, so it needs no confirmation. A `WaitForFirstConsumer` class binds only when a
//! pod uses the claim; waiting for that would always time out, so the command says so and stops.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams, PostParams};
use serde::Serialize;
use serde_json::{json, Value};

use crate::cli::{OutputFormat, RestoreArgs};
use crate::labels;
use crate::retention::SnapshotRecord;
use crate::snapshot::VolumeSnapshot;
use crate::{Error, ExitStatus};

use super::api::{code, describe, Requests};
use super::gather::{self, Scope};
use super::options::RestoreOptions;
use super::report_error;

/// The snapshot argument naming the newest ready snapshot of `--pvc`.
pub const LATEST: &str = "latest";
/// The access modes a PVC takes.
const ACCESS_MODES: [&str; 4] = [
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];
/// Without the snapshotted PVC and without `--access-mode`: what most volumes are.
const DEFAULT_ACCESS_MODE: &str = "ReadWriteOnce";
const WAIT_FOR_FIRST_CONSUMER: &str = "WaitForFirstConsumer";
const POLL: Duration = Duration::from_millis(500);

/// Which snapshot to restore.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotChoice {
    Name(String),
    /// The newest ready snapshot of `--pvc`.
    Latest,
    /// The newest ready snapshot of `--pvc` taken strictly before this time.
    Before(DateTime<Utc>),
}

/// A storage quantity as typed (`20Gi`) and in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Size {
    pub text: String,
    pub bytes: u128,
}

impl Size {
    /// A Kubernetes quantity: a decimal number with an optional binary (`Ki`…`Ei`) or decimal
    /// (`k`, `M`…`E`) suffix. Milli (`m`) and exponents are not sizes anyone means for a disk.
    pub fn parse(q: &str) -> Option<Size> {
        let q = q.trim();
        let split = q
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(q.len());
        let (number, unit) = q.split_at(split);
        let mult: u128 = match unit {
            "" => 1,
            "k" => 1000,
            "M" => 1000u128.pow(2),
            "G" => 1000u128.pow(3),
            "T" => 1000u128.pow(4),
            "P" => 1000u128.pow(5),
            "E" => 1000u128.pow(6),
            "Ki" => 1 << 10,
            "Mi" => 1 << 20,
            "Gi" => 1 << 30,
            "Ti" => 1 << 40,
            "Pi" => 1 << 50,
            "Ei" => 1 << 60,
            _ => return None,
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() || frac.len() > 9 {
            return None;
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let frac_bytes = if frac.is_empty() {
            0
        } else {
            let digits: u128 = frac.parse().ok()?;
            (digits * mult).div_ceil(10u128.pow(frac.len() as u32))
        };
        let bytes = whole.checked_mul(mult)?.checked_add(frac_bytes)?;
        (bytes > 0).then(|| Size {
            text: q.to_owned(),
            bytes,
        })
    }

    /// A quantity as the API returns it: a string, or a plain number of bytes.
    fn from_value(v: &Value) -> Option<Size> {
        match v {
            Value::String(s) => Size::parse(s),
            Value::Number(n) => n.as_u64().and_then(|b| Size::parse(&b.to_string())),
            _ => None,
        }
    }
}

/// What the flags say about the new PVC; each `Some` wins over the snapshotted PVC.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub storage_class: Option<String>,
    pub access_modes: Option<Vec<String>>,
    pub size: Option<Size>,
}

/// `--access-mode`: comma-separated PVC access modes.
pub fn parse_access_modes(v: &str) -> Result<Vec<String>, String> {
    let mut modes: Vec<String> = Vec::new();
    for m in v.split(',').map(str::trim) {
        if !ACCESS_MODES.contains(&m) {
            return Err(format!(
                "{m:?} is not an access mode; expected one or more of {}, comma-separated",
                ACCESS_MODES.join(", ")
            ));
        }
        if !modes.iter().any(|x| x == m) {
            modes.push(m.to_owned());
        }
    }
    Ok(modes)
}

/// `--before`: an RFC 3339 time, or a date meaning the midnight that starts it in `tz`.
pub fn parse_before(v: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| {
        "expected an RFC 3339 time (2025-01-08T16:00:00Z, 2025-01-08T17:00:00+01:00) or a \
         date (2025-01-08)"
            .to_owned()
    })?;
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("midnight of {date} does not exist in {tz}"))
}

/// The newest ready snapshot of `pvc` (taken before the time of [`SnapshotChoice::Before`]).
/// Readiness is [`crate::state`]'s: pending, failed and terminating snapshots are no restore
/// source. The error says what there was instead.
pub fn choose<'a>(
    records: &'a [SnapshotRecord],
    pvc: &str,
    choice: &SnapshotChoice,
) -> Result<&'a SnapshotRecord, String> {
    let before = match choice {
        SnapshotChoice::Before(t) => Some(*t),
        _ => None,
    };
    let of_pvc: Vec<&SnapshotRecord> = records.iter().filter(|r| r.pvc == pvc).collect();
    let candidates = of_pvc
        .iter()
        .filter(|r| r.state.is_ready())
        .filter(|r| before.is_none_or(|b| r.time.is_some_and(|t| t < b)));
    if let Some(best) = candidates.max_by(|a, b| (a.time, &a.name).cmp(&(b.time, &b.name))) {
        return Ok(best);
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &of_pvc {
        let word = match &r.state {
            s if s.is_ready() => "ready but not before that time",
            s if s.is_pending() => "not ready yet",
            s if s.is_failed() => "failed",
            _ => "being deleted",
        };
        *counts.entry(word).or_default() += 1;
    }
    let when = before.map_or_else(String::new, |b| format!(" taken before {}", b.to_rfc3339()));
    let found = if counts.is_empty() {
        "it has no backup-ns snapshots".to_owned()
    } else {
        let parts: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
        format!("its snapshots: {}", parts.join(", "))
    };
    Err(format!(
        "no ready snapshot of PVC {pvc}{when} ({found}); `backup-ns list --pvc {pvc}` shows them"
    ))
}

/// What the new PVC copies from the snapshotted one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceInfo {
    pub name: String,
    pub storage_class: Option<String>,
    pub access_modes: Vec<String>,
    pub volume_mode: Option<String>,
    pub request: Option<Size>,
}

impl SourceInfo {
    pub fn from_pvc(p: &PersistentVolumeClaim) -> SourceInfo {
        let spec = p.spec.as_ref();
        SourceInfo {
            name: p.metadata.name.clone().unwrap_or_default(),
            storage_class: spec
                .and_then(|s| s.storage_class_name.clone())
                .filter(|c| !c.is_empty()),
            access_modes: spec
                .and_then(|s| s.access_modes.clone())
                .unwrap_or_default(),
            volume_mode: spec.and_then(|s| s.volume_mode.clone()),
            request: spec
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .and_then(|q| Size::parse(&q.0)),
        }
    }
}

/// The PVC to create and where its fields came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub name: String,
    /// `None`: the field is omitted and the cluster's default class applies.
    pub storage_class: Option<String>,
    pub access_modes: Vec<String>,
    pub volume_mode: Option<String>,
    pub size: String,
    /// The snapshotted PVC the fields were copied from, when it still exists.
    pub copied_from: Option<String>,
    #[serde(skip)]
    pub manifest: Value,
}

/// The new PVC for `snapshot` in `namespace`, from the snapshotted PVC (when it still exists)
/// and the flags. Errors (exit 2) when `--size` is below the snapshot's `restoreSize`, or when
/// no size can be known.
pub fn plan(
    namespace: &str,
    to: &str,
    snapshot: &VolumeSnapshot,
    source: Option<&SourceInfo>,
    overrides: &Overrides,
) -> Result<Plan, Error> {
    let snapshot_name = snapshot.metadata.name.clone().unwrap_or_default();
    let restore_size = snapshot
        .status
        .as_ref()
        .and_then(|s| s.restore_size.as_ref())
        .and_then(Size::from_value);
    let size_name = "BAK_RESTORE_SIZE (--size)";
    let size = match (&overrides.size, &restore_size) {
        (Some(wanted), Some(min)) if wanted.bytes < min.bytes => {
            return Err(Error::config(
                size_name,
                &wanted.text,
                format!(
                    "smaller than the snapshot's restoreSize {}: the provisioner refuses a \
                     volume smaller than the snapshot",
                    min.text
                ),
            ))
        }
        (Some(wanted), _) => wanted.clone(),
        (None, _) => {
            let request = source.and_then(|s| s.request.clone());
            match (restore_size, request) {
                (Some(r), Some(q)) => {
                    if q.bytes > r.bytes {
                        q
                    } else {
                        r
                    }
                }
                (Some(r), None) => r,
                (None, Some(q)) => q,
                (None, None) => {
                    return Err(Error::config(
                        size_name,
                        "",
                        format!(
                            "volumesnapshot {snapshot_name} has no restoreSize and its PVC is \
                             gone: give the size, e.g. --size 10Gi"
                        ),
                    ))
                }
            }
        }
    };
    let storage_class = overrides
        .storage_class
        .clone()
        .or_else(|| source.and_then(|s| s.storage_class.clone()));
    let access_modes = overrides
        .access_modes
        .clone()
        .or_else(|| {
            source
                .map(|s| s.access_modes.clone())
                .filter(|m| !m.is_empty())
        })
        .unwrap_or_else(|| vec![DEFAULT_ACCESS_MODE.to_owned()]);
    let volume_mode = source.and_then(|s| s.volume_mode.clone());

    let mut metadata = json!({
        "name": to,
        "namespace": namespace,
        "annotations": { labels::RESTORED_FROM: snapshot_name },
    });
    // A label value holds at most 63 characters; a longer snapshot name is in the annotation.
    if labels::validate_label_value(labels::RESTORED_FROM, &snapshot_name).is_ok() {
        metadata["labels"] = json!({ labels::RESTORED_FROM: snapshot_name });
    }
    let mut spec = json!({
        "accessModes": access_modes,
        "resources": { "requests": { "storage": size.text } },
        "dataSource": {
            "apiGroup": "snapshot.storage.k8s.io",
            "kind": "VolumeSnapshot",
            "name": snapshot_name,
        },
    });
    if let Some(c) = &storage_class {
        spec["storageClassName"] = json!(c);
    }
    if let Some(m) = &volume_mode {
        spec["volumeMode"] = json!(m);
    }
    let manifest = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata,
        "spec": spec,
    });
    Ok(Plan {
        name: to.to_owned(),
        storage_class,
        access_modes,
        volume_mode,
        size: size.text,
        copied_from: source.map(|s| s.name.clone()),
        manifest,
    })
}

/// The `-o json` document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RestoreOutput<'a> {
    namespace: &'a str,
    snapshot: &'a str,
    /// The PVC the snapshot was taken of.
    snapshot_pvc: Option<&'a str>,
    pvc: &'a Plan,
    dry_run: bool,
    created: bool,
    /// The new PVC's phase when the command stopped looking (`None`: not looked).
    phase: Option<String>,
    /// Its class binds only when a pod uses it.
    wait_for_first_consumer: bool,
    /// The PVC as sent (with `--dry-run`: as it would be sent).
    manifest: &'a Value,
}

fn print_json(out: &RestoreOutput) {
    match serde_json::to_string_pretty(out) {
        Ok(s) => println!("{s}"),
        Err(e) => tracing::error!("cannot render the result: {e}"),
    }
}

pub async fn main(args: &RestoreArgs, output: crate::cli::Output) -> ExitStatus {
    let format = match output.text_or_json() {
        Ok(f) => f,
        Err(e) => return report_error(&e),
    };
    let tz = std::env::var("TZ").ok();
    let opts = match RestoreOptions::from_args(args, tz.as_deref()) {
        Ok(o) => o,
        Err(e) => return report_error(&e),
    };
    let (client, context_ns) = match super::client(false).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitStatus::Failure;
        }
    };
    let ns = opts.namespace.clone().unwrap_or(context_ns);
    let requests = Requests::new(client, opts.qps);
    match run(&requests, &ns, &opts, format).await {
        Ok(status) => status,
        Err(e) => report_error(&e),
    }
}

/// The snapshot `choice` names (`latest` and `--before` among those of `source_pvc`), read at
/// `now`; not-ready ones are refused.
pub async fn snapshot(
    requests: &Requests,
    ns: &str,
    choice: &SnapshotChoice,
    source_pvc: Option<&str>,
    now: DateTime<Utc>,
) -> Result<VolumeSnapshot, Error> {
    let vs = match choice {
        SnapshotChoice::Name(name) => {
            let api: Api<VolumeSnapshot> = Api::namespaced(requests.client.clone(), ns);
            let what = format!("get volumesnapshot {ns}/{name}");
            requests
                .call(&what, || api.get_opt(name))
                .await
                .map_err(|e| Error::kube(&what, e))?
                .ok_or_else(|| {
                    Error::Precondition(format!(
                        "volumesnapshot {ns}/{name} not found; `backup-ns list -n {ns}` shows \
                         the snapshots there"
                    ))
                })?
        }
        choice => {
            let pvc = source_pvc.unwrap_or_default();
            let selector = format!("{}={pvc}", labels::PVC);
            let mut all = Vec::new();
            gather::snapshots(
                requests,
                &Scope::Namespace(ns.to_owned()),
                &selector,
                |vs| all.push(vs),
            )
            .await?;
            let records: Vec<SnapshotRecord> = all
                .iter()
                .map(|vs| SnapshotRecord::from_snapshot(vs, now))
                .collect();
            let chosen = choose(&records, pvc, choice)
                .map_err(|e| Error::Precondition(format!("{e} (namespace {ns})")))?
                .name
                .clone();
            let vs = all
                .into_iter()
                .find(|v| v.metadata.name.as_deref() == Some(chosen.as_str()))
                .expect("the chosen record is one of the snapshots");
            tracing::info!(
                "using volumesnapshot {ns}/{chosen}, taken {}",
                vs.taken_at()
                    .map_or_else(|| "at an unknown time".into(), |t| t.to_rfc3339())
            );
            vs
        }
    };
    let state = vs.state(now);
    if !state.is_ready() {
        return Err(Error::Precondition(format!(
            "volumesnapshot {ns}/{} is {state}: a PVC restored from it would stay Pending; \
             choose a ready one (`backup-ns list -n {ns}`)",
            vs.metadata.name.as_deref().unwrap_or_default()
        )));
    }
    if let Some(w) = state.error() {
        tracing::warn!("the snapshot controller still reports on it: {w}");
    }
    Ok(vs)
}

async fn run(
    requests: &Requests,
    ns: &str,
    opts: &RestoreOptions,
    format: OutputFormat,
) -> Result<ExitStatus, Error> {
    let vs = snapshot(
        requests,
        ns,
        &opts.choice,
        opts.source_pvc.as_deref(),
        Utc::now(),
    )
    .await?;
    let vs_name = vs.metadata.name.clone().unwrap_or_default();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(requests.client.clone(), ns);

    let what = format!("get persistentvolumeclaim {ns}/{}", opts.to);
    if requests
        .call(&what, || pvcs.get_opt(&opts.to))
        .await
        .map_err(|e| Error::kube(&what, e))?
        .is_some()
    {
        return Err(exists(ns, &opts.to));
    }

    let source_name = vs.spec.source.persistent_volume_claim_name.clone();
    let source = match &source_name {
        Some(name) => {
            let what = format!("get persistentvolumeclaim {ns}/{name}");
            let found = requests
                .call(&what, || pvcs.get_opt(name))
                .await
                .map_err(|e| Error::kube(&what, e))?;
            if found.is_none() {
                tracing::info!(
                    "PVC {ns}/{name} (the snapshotted one) is gone: storage class {}, access \
                     modes {}",
                    opts.overrides
                        .storage_class
                        .as_deref()
                        .unwrap_or("the cluster default"),
                    opts.overrides
                        .access_modes
                        .as_ref()
                        .map_or_else(|| DEFAULT_ACCESS_MODE.to_owned(), |m| m.join(","))
                );
            }
            found.as_ref().map(SourceInfo::from_pvc)
        }
        None => None,
    };
    let plan = plan(ns, &opts.to, &vs, source.as_ref(), &opts.overrides)?;
    let mut out = RestoreOutput {
        namespace: ns,
        snapshot: &vs_name,
        snapshot_pvc: source_name.as_deref(),
        pvc: &plan,
        dry_run: opts.dry_run,
        created: false,
        phase: None,
        wait_for_first_consumer: false,
        manifest: &plan.manifest,
    };
    let summary = format!(
        "persistentvolumeclaim {ns}/{} from volumesnapshot {vs_name}: {}, {}, storage class {}{}",
        plan.name,
        plan.size,
        plan.access_modes.join(","),
        plan.storage_class.as_deref().unwrap_or("(cluster default)"),
        plan.volume_mode
            .as_deref()
            .map_or_else(String::new, |m| format!(", volumeMode {m}")),
    );
    if opts.dry_run {
        match format {
            OutputFormat::Json => print_json(&out),
            OutputFormat::Text => {
                println!("would create {summary}");
                println!(
                    "{}",
                    serde_json::to_string_pretty(&plan.manifest).unwrap_or_default()
                );
            }
        }
        return Ok(ExitStatus::Success);
    }

    let pvc: PersistentVolumeClaim = serde_json::from_value(plan.manifest.clone())
        .map_err(|e| Error::Precondition(format!("cannot build the PVC: {e}")))?;
    let what = format!("create persistentvolumeclaim {ns}/{}", plan.name);
    let params = PostParams::default();
    let created = match requests.call(&what, || pvcs.create(&params, &pvc)).await {
        Ok(c) => c,
        Err(e) if code(&e) == Some(409) => return Err(exists(ns, &opts.to)),
        Err(e) => return Err(Error::kube(&what, e)),
    };
    out.created = true;
    tracing::info!("created {summary}");
    if format == OutputFormat::Text {
        println!("created {summary}");
    }

    let mut status = ExitStatus::Success;
    if opts.wait {
        // The class the API server settled on (the default class is filled in on create).
        let class = created
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.clone());
        match wait(requests, ns, &plan.name, class.as_deref(), opts.timeout).await {
            Waited::Bound => {
                out.phase = Some("Bound".into());
                if format == OutputFormat::Text {
                    println!("persistentvolumeclaim {ns}/{} is Bound", plan.name);
                }
            }
            Waited::FirstConsumer(class) => {
                out.phase = Some("Pending".into());
                out.wait_for_first_consumer = true;
                let line = format!(
                    "persistentvolumeclaim {ns}/{} stays Pending until a pod uses it: storage \
                     class {class} has volumeBindingMode WaitForFirstConsumer (the volume is \
                     provisioned from the snapshot when that pod is scheduled)",
                    plan.name
                );
                tracing::info!("{line}");
                if format == OutputFormat::Text {
                    println!("{line}");
                }
            }
            Waited::TimedOut { phase, event } => {
                tracing::error!(
                    "persistentvolumeclaim {ns}/{} is still {phase} after {}{}; it was left in \
                     place (`kubectl -n {ns} describe pvc {}`)",
                    plan.name,
                    crate::settings::format_duration(opts.timeout),
                    event.map_or_else(String::new, |e| format!("; last event: {e}")),
                    plan.name
                );
                out.phase = Some(phase);
                status = ExitStatus::Failure;
            }
            Waited::Failed(e) => {
                tracing::error!("{e}");
                status = ExitStatus::Failure;
            }
        }
    }
    if format == OutputFormat::Json {
        print_json(&out);
    }
    Ok(status)
}

fn exists(ns: &str, name: &str) -> Error {
    Error::Precondition(format!(
        "persistentvolumeclaim {ns}/{name} already exists; nothing changed. Restore into a new \
         name (--to), or delete that PVC first if you mean to replace it"
    ))
}

enum Waited {
    Bound,
    FirstConsumer(String),
    TimedOut {
        phase: String,
        event: Option<String>,
    },
    Failed(String),
}

/// Polls the PVC until Bound, up to `timeout`. A `WaitForFirstConsumer` class ends the wait at
/// once; a class that cannot be read (no RBAC for storage classes) is waited on like any other.
async fn wait(
    requests: &Requests,
    ns: &str,
    name: &str,
    class: Option<&str>,
    timeout: Duration,
) -> Waited {
    if let Some(class) = class {
        let api: Api<StorageClass> = Api::all(requests.client.clone());
        let what = format!("get storageclass {class}");
        match requests.call(&what, || api.get_opt(class)).await {
            Ok(Some(sc)) if sc.volume_binding_mode.as_deref() == Some(WAIT_FOR_FIRST_CONSUMER) => {
                return Waited::FirstConsumer(class.to_owned());
            }
            Ok(Some(_)) => {}
            Ok(None) => tracing::warn!(
                "storage class {class} does not exist: the PVC cannot be provisioned until it does"
            ),
            Err(e) => tracing::warn!(
                "{what}: {}; cannot tell whether it binds only when a pod uses the PVC, waiting \
                 for Bound",
                describe(&e)
            ),
        }
    }
    let api: Api<PersistentVolumeClaim> = Api::namespaced(requests.client.clone(), ns);
    let what = format!("get persistentvolumeclaim {ns}/{name}");
    let deadline = Instant::now() + timeout;
    loop {
        let phase = match requests.call(&what, || api.get_opt(name)).await {
            Ok(Some(p)) => p.status.and_then(|s| s.phase).unwrap_or_default(),
            Ok(None) => {
                return Waited::Failed(format!("persistentvolumeclaim {ns}/{name} is gone"))
            }
            Err(e) => return Waited::Failed(format!("{what}: {}", describe(&e))),
        };
        if phase == "Bound" {
            return Waited::Bound;
        }
        if Instant::now() + POLL > deadline {
            let phase = if phase.is_empty() {
                "Pending".to_owned()
            } else {
                phase
            };
            return Waited::TimedOut {
                phase,
                event: last_event(requests, ns, name).await,
            };
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The newest event about the PVC (the provisioner says there why it does not bind), if it can
/// be read.
pub(crate) async fn last_event(requests: &Requests, ns: &str, name: &str) -> Option<String> {
    let api: Api<Event> = Api::namespaced(requests.client.clone(), ns);
    let params = ListParams::default().fields(&format!(
        "involvedObject.kind=PersistentVolumeClaim,involvedObject.name={name}"
    ));
    let what = format!("list events of persistentvolumeclaim {ns}/{name}");
    match requests.call(&what, || api.list(&params)).await {
        Ok(list) => list
            .items
            .into_iter()
            .max_by_key(|e| {
                e.last_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .or_else(|| e.event_time.as_ref().map(|t| t.0))
            })
            .map(|e| {
                format!(
                    "{} {}: {}",
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            }),
        Err(e) => {
            tracing::debug!("{what}: {}", describe(&e));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SnapshotState;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn vs(status: Value) -> VolumeSnapshot {
        serde_json::from_value(json!({
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "metadata": { "name": "data-2025-01-08-164308-dcdkes", "namespace": "shop" },
            "spec": { "source": { "persistentVolumeClaimName": "data" } },
            "status": status,
        }))
        .unwrap()
    }

    fn source() -> SourceInfo {
        SourceInfo {
            name: "data".into(),
            storage_class: Some("fast".into()),
            access_modes: vec!["ReadWriteMany".into()],
            volume_mode: Some("Block".into()),
            request: Size::parse("20Gi"),
        }
    }

    fn size(s: &str) -> Size {
        Size::parse(s).unwrap()
    }

    #[test]
    fn quantities_parse_to_bytes() {
        assert_eq!(size("1Gi").bytes, 1 << 30);
        assert_eq!(size("500M").bytes, 500_000_000);
        assert_eq!(size("1.5Gi").bytes, 3 << 29);
        assert_eq!(size("1073741824").bytes, 1 << 30);
        assert_eq!(size("2k").bytes, 2000);
        for bad in ["", "Gi", "1GB", "-1Gi", "100m", "1e3", "0", "1..5Gi", "one"] {
            assert!(Size::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(Size::from_value(&json!(1024)).unwrap().bytes, 1024);
    }

    #[test]
    fn the_new_pvc_copies_class_access_modes_and_volume_mode_of_the_source() {
        // The original hard-coded ReadWriteOnce and dropped volumeMode (its bug 11).
        let p = plan(
            "shop",
            "restored",
            &vs(json!({"readyToUse": true, "restoreSize": "10Gi"})),
            Some(&source()),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(p.storage_class.as_deref(), Some("fast"));
        assert_eq!(p.access_modes, ["ReadWriteMany"]);
        assert_eq!(p.volume_mode.as_deref(), Some("Block"));
        // The source grew to 20Gi after the snapshot: the larger size wins.
        assert_eq!(p.size, "20Gi");
        assert_eq!(p.copied_from.as_deref(), Some("data"));
        let m = &p.manifest;
        assert_eq!(
            m["spec"]["dataSource"],
            json!({"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
                   "name": "data-2025-01-08-164308-dcdkes"})
        );
        assert_eq!(m["spec"]["storageClassName"], "fast");
        assert_eq!(m["spec"]["volumeMode"], "Block");
        assert_eq!(m["spec"]["accessModes"], json!(["ReadWriteMany"]));
        assert_eq!(m["spec"]["resources"]["requests"]["storage"], "20Gi");
        assert_eq!(
            m["metadata"]["labels"][labels::RESTORED_FROM],
            "data-2025-01-08-164308-dcdkes"
        );
        assert_eq!(m["metadata"]["namespace"], "shop");
        let pvc: PersistentVolumeClaim = serde_json::from_value(m.clone()).unwrap();
        assert_eq!(pvc.metadata.name.as_deref(), Some("restored"));
    }

    #[test]
    fn without_the_source_the_default_class_and_read_write_once_unless_flags_say() {
        let snap = vs(json!({"readyToUse": true, "restoreSize": "10Gi"}));
        let p = plan("shop", "r", &snap, None, &Overrides::default()).unwrap();
        assert_eq!(p.storage_class, None);
        assert!(p.manifest["spec"].get("storageClassName").is_none());
        assert!(p.manifest["spec"].get("volumeMode").is_none());
        assert_eq!(p.access_modes, ["ReadWriteOnce"]);
        assert_eq!(p.size, "10Gi");
        assert_eq!(p.copied_from, None);

        let flags = Overrides {
            storage_class: Some("standard".into()),
            access_modes: Some(vec!["ReadOnlyMany".into()]),
            size: Some(size("15Gi")),
        };
        // Flags win over the source too.
        for src in [None, Some(source())] {
            let p = plan("shop", "r", &snap, src.as_ref(), &flags).unwrap();
            assert_eq!(p.storage_class.as_deref(), Some("standard"));
            assert_eq!(p.access_modes, ["ReadOnlyMany"]);
            assert_eq!(p.size, "15Gi");
        }
    }

    #[test]
    fn size_is_never_below_restore_size() {
        let snap = vs(json!({"readyToUse": true, "restoreSize": "10Gi"}));
        let small = Overrides {
            size: Some(size("9Gi")),
            ..Overrides::default()
        };
        let e = plan("shop", "r", &snap, Some(&source()), &small).unwrap_err();
        assert_eq!(e.exit_status(), ExitStatus::Usage);
        let text = e.to_string();
        assert!(
            text.contains("BAK_RESTORE_SIZE (--size)") && text.contains("10Gi"),
            "{text}"
        );
        // Equal (in other units) is fine; a smaller source request does not shrink it.
        let equal = Overrides {
            size: Some(size("10240Mi")),
            ..Overrides::default()
        };
        assert_eq!(
            plan("shop", "r", &snap, None, &equal).unwrap().size,
            "10240Mi"
        );
        let mut small_source = source();
        small_source.request = Some(size("5Gi"));
        let p = plan(
            "shop",
            "r",
            &snap,
            Some(&small_source),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(p.size, "10Gi");
        // No restoreSize: the source's request; neither: ask for --size.
        let bare = vs(json!({"readyToUse": true}));
        let p = plan("shop", "r", &bare, Some(&source()), &Overrides::default()).unwrap();
        assert_eq!(p.size, "20Gi");
        let e = plan("shop", "r", &bare, None, &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("--size"), "{e}");
    }

    #[test]
    fn a_long_snapshot_name_is_an_annotation_only() {
        let mut snap = vs(json!({"readyToUse": true, "restoreSize": "1Gi"}));
        let long = format!("{}-2025-01-08-164308-dcdkes", "a".repeat(50));
        snap.metadata.name = Some(long.clone());
        let p = plan("shop", "r", &snap, None, &Overrides::default()).unwrap();
        assert!(p.manifest["metadata"].get("labels").is_none());
        assert_eq!(
            p.manifest["metadata"]["annotations"][labels::RESTORED_FROM],
            json!(long)
        );
    }

    fn record(name: &str, pvc: &str, time: &str, state: SnapshotState) -> SnapshotRecord {
        SnapshotRecord {
            namespace: "shop".into(),
            name: name.into(),
            uid: name.into(),
            resource_version: "1".into(),
            pvc: pvc.into(),
            pvc_uid: None,
            labels: Default::default(),
            time: Some(at(time)),
            state,
            bound_content: None,
        }
    }

    fn ready() -> SnapshotState {
        SnapshotState::Ready { warning: None }
    }

    fn records() -> Vec<SnapshotRecord> {
        vec![
            record("old", "data", "2025-01-05T02:00:00Z", ready()),
            record("mid", "data", "2025-01-06T02:00:00Z", ready()),
            record(
                "with-warning",
                "data",
                "2025-01-06T12:00:00Z",
                SnapshotState::Ready {
                    warning: Some("old error".into()),
                },
            ),
            record(
                "failed",
                "data",
                "2025-01-07T02:00:00Z",
                SnapshotState::Failed { error: None },
            ),
            record(
                "deleting",
                "data",
                "2025-01-07T12:00:00Z",
                SnapshotState::Terminating,
            ),
            record(
                "pending",
                "data",
                "2025-01-08T02:00:00Z",
                SnapshotState::Pending { error: None },
            ),
            // Another volume's newer snapshot is never chosen.
            record("other", "uploads", "2025-01-09T02:00:00Z", ready()),
        ]
    }

    #[test]
    fn latest_is_the_newest_ready_snapshot_of_that_pvc() {
        let r = records();
        assert_eq!(
            choose(&r, "data", &SnapshotChoice::Latest).unwrap().name,
            "with-warning"
        );
        assert_eq!(
            choose(&r, "uploads", &SnapshotChoice::Latest).unwrap().name,
            "other"
        );
    }

    #[test]
    fn before_is_strictly_before_and_only_ready_ones() {
        let r = records();
        let before =
            |t: &str| choose(&r, "data", &SnapshotChoice::Before(at(t))).map(|r| r.name.clone());
        assert_eq!(before("2025-01-09T00:00:00Z").unwrap(), "with-warning");
        assert_eq!(before("2025-01-06T12:00:00Z").unwrap(), "mid");
        assert_eq!(before("2025-01-06T02:00:01Z").unwrap(), "mid");
        assert_eq!(before("2025-01-06T02:00:00Z").unwrap(), "old");
        let e = before("2025-01-05T02:00:00Z").unwrap_err();
        assert!(
            e.contains("no ready snapshot of PVC data taken before"),
            "{e}"
        );
        assert!(e.contains("3 ready but not before that time"), "{e}");
    }

    #[test]
    fn no_ready_snapshot_says_what_there_is() {
        let r: Vec<_> = records()
            .into_iter()
            .filter(|r| !r.state.is_ready())
            .collect();
        let e = choose(&r, "data", &SnapshotChoice::Latest).unwrap_err();
        assert!(
            e.contains("1 being deleted")
                && e.contains("1 failed")
                && e.contains("1 not ready yet"),
            "{e}"
        );
        let e = choose(&r, "nothing", &SnapshotChoice::Latest).unwrap_err();
        assert!(e.contains("it has no backup-ns snapshots"), "{e}");
    }

    #[test]
    fn before_takes_rfc3339_or_a_date_in_the_time_zone() {
        assert_eq!(
            parse_before("2025-01-08T17:00:00+01:00", Tz::UTC).unwrap(),
            at("2025-01-08T16:00:00Z")
        );
        assert_eq!(
            parse_before("2025-01-08", chrono_tz::Europe::Vienna).unwrap(),
            at("2025-01-07T23:00:00Z")
        );
        assert!(parse_before("yesterday", Tz::UTC).is_err());
        assert!(parse_before("2025-13-01", Tz::UTC).is_err());
    }

    #[test]
    fn access_modes_are_checked_and_deduplicated() {
        assert_eq!(
            parse_access_modes("ReadWriteOnce, ReadOnlyMany,ReadWriteOnce").unwrap(),
            ["ReadWriteOnce", "ReadOnlyMany"]
        );
        assert!(parse_access_modes("RWO").unwrap_err().contains("RWO"));
        assert!(parse_access_modes("").is_err());
    }
}
