//! End-to-end flows through the installed chart (`#[ignore]`d; `hack/e2e.sh` runs them after it
//! installed the releases, or `cargo test --test it e2e -- --ignored --test-threads=1` with
//! `KUBECONFIG` set). They use only `KUBECONFIG`, the real binary and kube-rs:
//!
//! - a backup now through each installed CronJob (`backup-ns adhoc --from-cronjob … --wait`) for
//!   PostgreSQL, MySQL and a volume-only target: the snapshot is ready and carries `type=adhoc`,
//!   the PVC, `retain` and the period labels a snapshot taken at that time gets;
//! - the PostgreSQL snapshot restored into a new PVC, mounted by a Job that loads the dump file
//!   into a scratch server and database and finds the rows `hack/kind-up.sh` seeded;
//! - `retain` and `mark-and-delete`, and `prune` in one pass, over hand-labelled snapshots of the
//!   test PVC;
//! - the chart's verify CronJob (`E2E_PG_VERIFY_CRONJOB`, `backup-ns-db-verify`) run by hand after
//!   a PostgreSQL backup: with its own ServiceAccount and Role it restores the newest snapshot
//!   into a helper pod, loads the dump and labels the snapshot `verified`.
//!
//! The releases `hack/e2e.sh` installs (release `backup-ns`, so CronJob `backup-ns-<backup>`),
//! with the variables that name them:
//! - `E2E_PG_NAMESPACE` (`backup-ns-postgres`), `E2E_PG_CRONJOB` (`backup-ns-db`): `db: postgres`;
//! - `E2E_MYSQL_NAMESPACE` (`backup-ns-mysql`), `E2E_MYSQL_CRONJOB` (`backup-ns-db`): `db: mysql`;
//! - `E2E_VOLUME_NAMESPACE` (`backup-ns-volume`), `E2E_VOLUME_CRONJOB` (`backup-ns-volume`):
//!   `db: skip`;
//! - every target backs up PVC `E2E_PVC` (`data`) with `retain: daily_weekly_monthly`, and the
//!   chart's `timeZone` is `E2E_TIME_ZONE` (`Etc/UTC`), the zone of the period labels.
//!
//! The restore Job runs `E2E_PG_IMAGE` (`postgres:17.5-alpine`, the image of
//! `hack/kind/postgres.yaml`) as uid `E2E_PG_UID` (`70`, its `postgres` user) and reads the dump
//! at `E2E_PG_DUMP_IN_PVC` (`dump.sql.gz`: the chart's default dump file
//! `/var/lib/postgresql/data/dump.sql.gz`, relative to the PVC's root).
//!
//! Every test deletes what it created, also when it fails: snapshots with their contents (the dev
//! cluster's class is `Retain`, so a content is switched to `Delete` first), PVCs and Jobs.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::time::{Duration, Instant};

use backup_ns::labels::{self, ExistingSnapshot};
use backup_ns::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use chrono::Utc;
use chrono_tz::Tz;
use futures::FutureExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

/// Label of everything these tests create by hand (never read by backup-ns).
const TEST_LABEL: &str = "e2e.backup-ns.sh/test";
const DWM: &str = "daily_weekly_monthly";

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn kubeconfig() -> String {
    std::env::var("KUBECONFIG").expect("e2e tests need KUBECONFIG pointing at a real cluster")
}

async fn client() -> kube::Client {
    kube::Client::try_default()
        .await
        .expect("client from KUBECONFIG")
}

fn pvc_name() -> String {
    var("E2E_PVC", "data")
}

fn time_zone() -> Tz {
    var("E2E_TIME_ZONE", "Etc/UTC")
        .parse()
        .expect("E2E_TIME_ZONE: an IANA time zone")
}

/// Runs the real binary with only `PATH`, `KUBECONFIG` and `envs`: exit code, stdout as JSON.
fn backup_ns(args: &[&str], envs: &[(&str, &str)]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_backup-ns"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KUBECONFIG", kubeconfig())
        .envs(envs.iter().copied())
        .output()
        .expect("run backup-ns");
    eprintln!(
        "backup-ns {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let result = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out.stdout).into_owned()));
    (out.status.code().unwrap_or(-1), result)
}

/// Polls `check` every two seconds until it yields a value; panics after `timeout`.
async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Runs `body`, then `cleanup` whether or not `body` panicked, then re-raises the panic.
async fn with_cleanup<B, C>(body: B, cleanup: C)
where
    B: Future<Output = ()>,
    C: Future<Output = ()>,
{
    let outcome = AssertUnwindSafe(body).catch_unwind().await;
    cleanup.await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Deletes a snapshot and, through `deletionPolicy: Delete`, its content and storage.
async fn delete_snapshot(client: &kube::Client, ns: &str, name: &str) {
    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), ns);
    let Ok(Some(vs)) = snapshots.get_opt(name).await else {
        return;
    };
    if let Some(content) = vs
        .status
        .as_ref()
        .and_then(|s| s.bound_volume_snapshot_content_name.clone())
    {
        let patch = json!({"spec": {"deletionPolicy": "Delete"}});
        if let Err(e) = Api::<VolumeSnapshotContent>::all(client.clone())
            .patch(&content, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            eprintln!("cleanup: content {content} of {ns}/{name}: {e}");
        }
    }
    if let Err(e) = snapshots.delete(name, &DeleteParams::default()).await {
        eprintln!("cleanup: snapshot {ns}/{name}: {e}");
    }
}

/// Deletes every snapshot in `ns` matching `selector` (with contents).
async fn delete_snapshots(client: &kube::Client, ns: &str, selector: &str) {
    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), ns);
    match snapshots
        .list(&ListParams::default().labels(selector))
        .await
    {
        Ok(list) => {
            for vs in list.items {
                if let Some(name) = vs.metadata.name.as_deref() {
                    delete_snapshot(client, ns, name).await;
                }
            }
        }
        Err(e) => eprintln!("cleanup: list snapshots {ns} {selector}: {e}"),
    }
}

/// Waits until no snapshot of `pvc` in `ns` is being deleted (an earlier test's cleanup): the
/// period claim of the next backup counts every ready snapshot of the PVC, deleting or not.
async fn settle(snapshots: &Api<VolumeSnapshot>, pvc: &str) {
    let selector = format!("{}={pvc}", labels::PVC);
    wait_for(
        "snapshots being deleted to go",
        Duration::from_secs(120),
        || async {
            let list = snapshots
                .list(&ListParams::default().labels(&selector))
                .await
                .expect("list snapshots");
            list.items
                .iter()
                .all(|vs| vs.metadata.deletion_timestamp.is_none())
                .then_some(())
        },
    )
    .await;
}

/// The ready snapshots of `pvc` as the period claim of `create` sees them.
async fn existing_for_claim(snapshots: &Api<VolumeSnapshot>, pvc: &str) -> Vec<ExistingSnapshot> {
    let selector = format!("{}={pvc}", labels::PVC);
    let list = snapshots
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("list snapshots");
    list.items
        .iter()
        .filter(|vs| vs.state(chrono::Utc::now()).is_ready())
        .filter_map(|vs| Some(ExistingSnapshot::from_labels(vs.taken_at()?, vs.labels())))
        .collect()
}

/// What one `adhoc` run left: its Job, the snapshots its pods made (one, if all went well), and
/// what the period claim of that run saw.
struct Adhoc {
    ns: String,
    cronjob: String,
    job: String,
    job_object: Option<Job>,
    snapshots: Vec<VolumeSnapshot>,
    existing: Vec<ExistingSnapshot>,
    started: chrono::DateTime<Tz>,
    finished: chrono::DateTime<Tz>,
}

/// `backup-ns adhoc --from-cronjob CRONJOB -n NS --wait` succeeds; returns its Job and the
/// snapshots whose pod label names one of the Job's pods.
async fn adhoc_run(ns: &str, cronjob: &str) -> Adhoc {
    let client = client().await;
    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), ns);
    let pvc = pvc_name();
    let tz = time_zone();
    settle(&snapshots, &pvc).await;
    let existing = existing_for_claim(&snapshots, &pvc).await;
    let started = Utc::now().with_timezone(&tz);

    let (code, report) = backup_ns(
        &[
            "adhoc",
            "--from-cronjob",
            cronjob,
            "-n",
            ns,
            "--wait",
            "--timeout",
            "10m",
            "-o",
            "json",
        ],
        &[],
    );
    let finished = Utc::now().with_timezone(&tz);
    if code != 0 {
        if let Some(job) = report["job"].as_str() {
            eprintln!("{}", job_logs(&client, ns, job).await);
        }
    }
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["state"], "succeeded", "{report}");
    assert_eq!(report["cronjob"], cronjob, "{report}");
    let job_name = report["job"]
        .as_str()
        .expect("job in the report")
        .to_string();
    let job = Api::<Job>::namespaced(client.clone(), ns)
        .get_opt(&job_name)
        .await
        .expect("get the adhoc Job");

    // Its snapshot: the pod label names one of the Job's pods (`<job>-<suffix>`).
    let pod_prefix = format!("{job_name}-");
    let adhoc = snapshots
        .list(&ListParams::default().labels(&format!("{}=adhoc", labels::TYPE)))
        .await
        .expect("list adhoc snapshots");
    let mine: Vec<VolumeSnapshot> = adhoc
        .items
        .into_iter()
        .filter(|vs| {
            vs.labels()
                .get(labels::POD)
                .is_some_and(|p| p.starts_with(&pod_prefix))
        })
        .collect();
    Adhoc {
        ns: ns.to_string(),
        cronjob: cronjob.to_string(),
        job: job_name,
        job_object: job,
        snapshots: mine,
        existing,
        started,
        finished,
    }
}

/// Deletes the Job and the snapshots of an `adhoc` run.
async fn adhoc_cleanup(client: &kube::Client, run: &Adhoc) {
    let _ = Api::<Job>::namespaced(client.clone(), &run.ns)
        .delete(&run.job, &DeleteParams::background())
        .await;
    for vs in &run.snapshots {
        delete_snapshot(
            client,
            &run.ns,
            vs.metadata.name.as_deref().unwrap_or_default(),
        )
        .await;
    }
}

/// The run's Job is a manual run owned by the CronJob, and it made exactly one snapshot: ready,
/// of the PVC, `type=adhoc`, `retain`, and the period labels due at that time.
fn check_adhoc_snapshot(run: &Adhoc) -> &VolumeSnapshot {
    let job = run.job_object.as_ref().expect("the adhoc Job exists");
    assert_eq!(
        job.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("cronjob.kubernetes.io/instantiate"))
            .map(String::as_str),
        Some("manual")
    );
    let owners = job.metadata.owner_references.clone().unwrap_or_default();
    assert!(
        owners
            .iter()
            .any(|o| o.kind == "CronJob" && o.name == run.cronjob),
        "{owners:?}"
    );

    let pvc = pvc_name();
    assert_eq!(
        run.snapshots.len(),
        1,
        "exactly one snapshot of job {}: {:?}",
        run.job,
        run.snapshots
            .iter()
            .map(|vs| &vs.metadata.name)
            .collect::<Vec<_>>()
    );
    let vs = &run.snapshots[0];
    let name = vs.metadata.name.clone().unwrap_or_default();
    assert!(
        vs.state(chrono::Utc::now()).is_ready(),
        "{name}: {:?}",
        vs.status
    );
    assert_eq!(
        vs.spec.source.persistent_volume_claim_name.as_deref(),
        Some(pvc.as_str())
    );
    let l = vs.labels();
    assert_eq!(
        l.get(labels::TYPE).map(String::as_str),
        Some("adhoc"),
        "{l:?}"
    );
    assert_eq!(l.get(labels::PVC), Some(&pvc), "{l:?}");
    assert_eq!(
        l.get(labels::RETAIN).map(String::as_str),
        Some(DWM),
        "{l:?}"
    );
    assert!(!l.contains_key(labels::DELETE_AFTER), "{l:?}");

    // Period labels: those no other ready snapshot of the PVC held when the backup ran. Checked
    // exactly unless the run crossed midnight; either way every one names the run's period.
    let due_start = labels::period_labels(&labels::claim_periods(run.started, &run.existing));
    let due_end = labels::period_labels(&labels::claim_periods(run.finished, &run.existing));
    let got: BTreeMap<String, String> = [labels::DAILY, labels::WEEKLY, labels::MONTHLY]
        .into_iter()
        .filter_map(|k| Some((k.to_string(), l.get(k)?.clone())))
        .collect();
    if due_start == due_end {
        assert_eq!(got, due_start, "period labels of {name}");
    }
    for (k, v) in &got {
        assert!(
            due_start.get(k) == Some(v) || due_end.get(k) == Some(v),
            "{name}: {k}={v} is not the period of the run ({due_start:?} / {due_end:?})"
        );
    }
    vs
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG)"]
async fn e2e_flows_postgres_adhoc_snapshot_restores_to_the_seeded_rows() {
    let ns = var("E2E_PG_NAMESPACE", "backup-ns-postgres");
    let cronjob = var("E2E_PG_CRONJOB", "backup-ns-db");
    let client = client().await;
    let run = adhoc_run(&ns, &cronjob).await;
    let restored = format!("e2e-restore-{}", Utc::now().timestamp_millis() % 1_000_000);
    let body = async {
        let vs = check_adhoc_snapshot(&run);
        restore_and_check(&client, &ns, vs, &restored).await;
    };
    let cleanup = async {
        let _ = Api::<Job>::namespaced(client.clone(), &ns)
            .delete(&restored, &DeleteParams::background())
            .await;
        let _ = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
            .delete(&restored, &DeleteParams::default())
            .await;
        adhoc_cleanup(&client, &run).await;
    };
    with_cleanup(body, cleanup).await;
}

/// A PVC `name` from the snapshot (like the source PVC), and a Job `name` that loads the dump
/// from it into a scratch database and compares the seeded rows.
async fn restore_and_check(client: &kube::Client, ns: &str, vs: &VolumeSnapshot, name: &str) {
    let snapshot = vs.metadata.name.clone().unwrap_or_default();
    let source = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .get(&pvc_name())
        .await
        .expect("the source PVC");
    let source_spec = source.spec.clone().unwrap_or_default();
    let restore_size = vs
        .status
        .as_ref()
        .and_then(|s| s.restore_size.clone())
        .expect("status.restoreSize of a ready snapshot");
    let mut pvc_spec = json!({
        "accessModes": source_spec.access_modes.clone().unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
        "resources": {"requests": {"storage": restore_size}},
        "dataSource": {
            "apiGroup": "snapshot.storage.k8s.io",
            "kind": "VolumeSnapshot",
            "name": snapshot,
        },
    });
    if let Some(class) = &source_spec.storage_class_name {
        pvc_spec["storageClassName"] = json!(class);
    }
    if let Some(mode) = &source_spec.volume_mode {
        pvc_spec["volumeMode"] = json!(mode);
    }
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {TEST_LABEL: "restore"}},
        "spec": pvc_spec,
    }))
    .expect("PVC");
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pvc)
        .await
        .expect("create the restored PVC");

    // What hack/kind-up.sh seeds: (1, 'one'), (2, 'two'), (3, 'three').
    let script = r#"set -eu
if [ ! -s "$DUMP" ]; then
  echo "no dump at $DUMP:"; ls -la "$(dirname "$DUMP")"; exit 1
fi
export PGDATA=/tmp/scratch PGHOST=/tmp PGUSER=postgres
initdb -U postgres -A trust -D "$PGDATA" >/dev/null
pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /tmp" -w start >/dev/null
psql -v ON_ERROR_STOP=1 -q -d postgres -c "CREATE ROLE \"$DB_OWNER\"" -c 'CREATE DATABASE scratch'
gzip -cd "$DUMP" | psql -v ON_ERROR_STOP=1 -q -d scratch >/dev/null
got=$(psql -v ON_ERROR_STOP=1 -tA -d scratch -c "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM seed")
echo "seed rows: $got"
[ "$got" = "$EXPECT" ]
"#;
    let uid: i64 = var("E2E_PG_UID", "70").parse().expect("E2E_PG_UID");
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {TEST_LABEL: "restore"}},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": {TEST_LABEL: "restore"}},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"runAsUser": uid, "runAsGroup": uid, "runAsNonRoot": true},
                    "containers": [{
                        "name": "restore",
                        "image": var("E2E_PG_IMAGE", "postgres:17.5-alpine"),
                        "command": ["sh", "-c", script],
                        "env": [
                            {"name": "DUMP", "value": format!("/restore/{}", var("E2E_PG_DUMP_IN_PVC", "dump.sql.gz"))},
                            {"name": "DB_OWNER", "value": var("E2E_PG_DUMP_OWNER", "app")},
                            {"name": "EXPECT", "value": "1:one,2:two,3:three"},
                        ],
                        "volumeMounts": [{"name": "restored", "mountPath": "/restore", "readOnly": true}],
                    }],
                    "volumes": [{
                        "name": "restored",
                        "persistentVolumeClaim": {"claimName": name, "readOnly": true},
                    }],
                },
            },
        },
    }))
    .expect("Job");
    let jobs = Api::<Job>::namespaced(client.clone(), ns);
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("create the restore Job");

    let outcome = wait_for("the restore Job", Duration::from_secs(600), || async {
        let job = jobs.get(name).await.ok()?;
        let status = job.status?;
        status.conditions.iter().flatten().find_map(|c| {
            (c.status == "True" && matches!(c.type_.as_str(), "Complete" | "Failed"))
                .then(|| c.type_.clone())
        })
    })
    .await;
    let logs = job_logs(client, ns, name).await;
    eprintln!("restore job {name}:\n{logs}");
    assert_eq!(outcome, "Complete", "restore Job {name} failed:\n{logs}");
    assert!(logs.contains("seed rows: 1:one,2:two,3:three"), "{logs}");
}

async fn job_logs(client: &kube::Client, ns: &str, job: &str) -> String {
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let Ok(list) = pods
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
    else {
        return String::new();
    };
    let mut out = String::new();
    for pod in list.items {
        let name = pod.metadata.name.unwrap_or_default();
        match pods.logs(&name, &LogParams::default()).await {
            Ok(text) => out.push_str(&format!("--- pod {name}\n{text}")),
            Err(e) => out.push_str(&format!("--- pod {name}: no logs: {e}\n")),
        }
    }
    out
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG)"]
async fn e2e_flows_mysql_adhoc_snapshot_is_ready_and_labelled() {
    let ns = var("E2E_MYSQL_NAMESPACE", "backup-ns-mysql");
    let cronjob = var("E2E_MYSQL_CRONJOB", "backup-ns-db");
    let client = client().await;
    let run = adhoc_run(&ns, &cronjob).await;
    with_cleanup(
        async {
            check_adhoc_snapshot(&run);
        },
        adhoc_cleanup(&client, &run),
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG)"]
async fn e2e_flows_volume_only_adhoc_snapshot_is_ready_and_labelled() {
    let ns = var("E2E_VOLUME_NAMESPACE", "backup-ns-volume");
    let cronjob = var("E2E_VOLUME_CRONJOB", "backup-ns-volume");
    let client = client().await;
    let run = adhoc_run(&ns, &cronjob).await;
    with_cleanup(
        async {
            check_adhoc_snapshot(&run);
        },
        adhoc_cleanup(&client, &run),
    )
    .await;
}

/// The hand-labelled snapshots of the retention test, oldest first: (name suffix, labels besides
/// `pvc`). `retain` runs with `RETAIN_LAST_DAILY=2`.
fn retention_fixture() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    vec![
        // No period label and an old delete-after: swept.
        (
            "old-marked",
            vec![(labels::RETAIN, DWM), (labels::DELETE_AFTER, "2000-01-01")],
        ),
        // retain=days past its date: swept.
        (
            "days-expired",
            vec![
                (labels::RETAIN, "days"),
                (labels::RETAIN_DAYS, "1"),
                (labels::DELETE_AFTER, "2000-01-01"),
            ],
        ),
        // Pinned: never changed, never deleted.
        (
            "pinned",
            vec![
                (labels::RETAIN, DWM),
                (labels::PIN, "true"),
                (labels::DELETE_AFTER, "2000-01-01"),
            ],
        ),
        // Four daily ones: the two oldest lose `daily` and are marked today.
        (
            "daily-1",
            vec![(labels::RETAIN, DWM), (labels::DAILY, "2000-01-01")],
        ),
        (
            "daily-2",
            vec![(labels::RETAIN, DWM), (labels::DAILY, "2000-01-02")],
        ),
        (
            "daily-3",
            vec![(labels::RETAIN, DWM), (labels::DAILY, "2000-01-03")],
        ),
        (
            "daily-4",
            vec![(labels::RETAIN, DWM), (labels::DAILY, "2000-01-04")],
        ),
        // The newest ready one: its delete-after has passed, yet it survives.
        (
            "newest",
            vec![(labels::RETAIN, DWM), (labels::DELETE_AFTER, "2000-01-01")],
        ),
    ]
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG)"]
async fn e2e_flows_retain_and_mark_and_delete_over_seeded_snapshots() {
    retention_e2e(Pruning::Pair).await;
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG)"]
async fn e2e_flows_prune_over_seeded_snapshots() {
    retention_e2e(Pruning::Prune).await;
}

/// How the retention flow prunes: the original's pair of commands, or `prune` in one pass.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pruning {
    Pair,
    Prune,
}

async fn retention_e2e(pruning: Pruning) {
    let ns = var("E2E_VOLUME_NAMESPACE", "backup-ns-volume");
    let client = client().await;
    // A group of its own: the `pvc` label names a PVC nothing else backs up (the snapshots are
    // still of the real test PVC), so other snapshots in the namespace take no slot.
    let group = format!(
        "e2e-retention-{}",
        Utc::now().timestamp_millis() % 1_000_000
    );
    let which = match pruning {
        Pruning::Pair => "retention",
        Pruning::Prune => "retention-prune",
    };
    let selector = format!("{TEST_LABEL}={which}");
    delete_snapshots(&client, &ns, &selector).await; // left over by an interrupted run
    let cleanup = {
        let (client, ns, selector) = (client.clone(), ns.clone(), selector.clone());
        async move { delete_snapshots(&client, &ns, &selector).await }
    };
    with_cleanup(
        retention_flow(&client, &ns, &group, pruning, which),
        cleanup,
    )
    .await;
}

async fn retention_flow(
    client: &kube::Client,
    ns: &str,
    group: &str,
    pruning: Pruning,
    which: &str,
) {
    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), ns);
    let name = |suffix: &str| format!("{group}-{suffix}");

    // Created one after another, each ready before the next, a second apart: their order by
    // `status.creationTime` (RFC 3339, whole seconds) is the fixture's.
    for (suffix, extra) in retention_fixture() {
        let mut l: BTreeMap<String, String> = extra
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.insert(labels::PVC.into(), group.into());
        l.insert(TEST_LABEL.into(), which.into());
        let vs = VolumeSnapshot::for_pvc(&name(suffix), ns, &pvc_name(), None, l, BTreeMap::new());
        snapshots
            .create(&PostParams::default(), &vs)
            .await
            .expect("create a fixture snapshot");
        wait_for(
            &format!("snapshot {} ready", name(suffix)),
            Duration::from_secs(180),
            || async {
                let vs = snapshots.get(&name(suffix)).await.ok()?;
                let state = vs.state(chrono::Utc::now());
                if state.is_failed() || state.is_terminating() {
                    panic!("snapshot {}: {state}", name(suffix));
                }
                state.is_ready().then_some(())
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    // The contents of the two that must be swept, to see them go too.
    let mut swept = Vec::new();
    for suffix in ["old-marked", "days-expired"] {
        let vs = snapshots.get(&name(suffix)).await.expect(suffix);
        let content = vs
            .status
            .and_then(|s| s.bound_volume_snapshot_content_name)
            .expect("a ready snapshot is bound");
        swept.push((suffix, content));
    }

    let today_before = Utc::now().date_naive().format("%Y-%m-%d").to_string();
    let labels_of = |vs: &VolumeSnapshot| vs.labels().clone();
    let plan = if pruning == Pruning::Pair {
        let (code, plan) = backup_ns(
            &["retain", "-n", ns, "-o", "json"],
            &[("RETAIN_LAST_DAILY", "2")],
        );
        assert_eq!(code, 0, "retain: {plan}");
        for (suffix, has_daily) in [
            ("daily-1", false),
            ("daily-2", false),
            ("daily-3", true),
            ("daily-4", true),
        ] {
            let vs = snapshots.get(&name(suffix)).await.expect(suffix);
            assert_eq!(
                vs.labels().contains_key(labels::DAILY),
                has_daily,
                "after retain, {suffix}: {:?}",
                labels_of(&vs)
            );
        }
        let (code, plan) = backup_ns(
            &["mark-and-delete", "-n", ns, "-o", "json"],
            &[("RETAIN_LAST_DAILY", "2")],
        );
        assert_eq!(code, 0, "mark-and-delete: {plan}");
        plan
    } else {
        // A dry run first: it previews the marks and deletions the real run then makes.
        let (code, preview) = backup_ns(
            &["prune", "-n", ns, "-o", "json", "--dry-run"],
            &[("RETAIN_LAST_DAILY", "2")],
        );
        assert_eq!(code, 0, "prune --dry-run: {preview}");
        let (code, plan) = backup_ns(
            &["prune", "-n", ns, "-o", "json"],
            &[("RETAIN_LAST_DAILY", "2")],
        );
        assert_eq!(code, 0, "prune: {plan}");
        assert_eq!(preview["plan"]["deletions"], plan["plan"]["deletions"]);
        assert_eq!(plan["result"]["deleted"], 2, "{plan}");
        // daily-1 and daily-2: strip and mark in one patch each.
        assert_eq!(plan["result"]["patched"], 2, "{plan}");
        plan
    };
    let today_after = Utc::now().date_naive().format("%Y-%m-%d").to_string();

    // Swept: the snapshot and, switched from the class's Retain to Delete, its content.
    let contents = Api::<VolumeSnapshotContent>::all(client.clone());
    for (suffix, content) in &swept {
        wait_for(
            &format!("{} deleted", name(suffix)),
            Duration::from_secs(120),
            || async {
                match snapshots
                    .get_opt(&name(suffix))
                    .await
                    .expect("get snapshot")
                {
                    None => Some(()),
                    Some(vs) => {
                        assert!(
                            vs.metadata.deletion_timestamp.is_some(),
                            "{suffix} must be deleted: {plan}"
                        );
                        None
                    }
                }
            },
        )
        .await;
        wait_for(
            &format!("content {content} of {} deleted", name(suffix)),
            Duration::from_secs(120),
            || async {
                contents
                    .get_opt(content)
                    .await
                    .ok()?
                    .is_none()
                    .then_some(())
            },
        )
        .await;
    }

    let get = |suffix: &'static str| {
        let snapshots = snapshots.clone();
        let n = name(suffix);
        async move {
            snapshots
                .get(&n)
                .await
                .unwrap_or_else(|e| panic!("{n}: {e}"))
        }
    };
    // Marked today (in UTC, the default zone of mark-and-delete): no period label left.
    for suffix in ["daily-1", "daily-2"] {
        let l = labels_of(&get(suffix).await);
        let mark = l.get(labels::DELETE_AFTER).cloned().unwrap_or_default();
        assert!(
            mark == today_before || mark == today_after,
            "{suffix} marked today: {l:?}"
        );
        assert!(!l.contains_key(labels::DAILY), "{suffix}: {l:?}");
    }
    // Kept by their daily label: not marked.
    for suffix in ["daily-3", "daily-4"] {
        let l = labels_of(&get(suffix).await);
        assert!(l.contains_key(labels::DAILY), "{suffix}: {l:?}");
        assert!(!l.contains_key(labels::DELETE_AFTER), "{suffix}: {l:?}");
    }
    // Pinned: untouched.
    let l = labels_of(&get("pinned").await);
    assert_eq!(
        l.get(labels::DELETE_AFTER).map(String::as_str),
        Some("2000-01-01")
    );
    assert!(l.contains_key(labels::PIN));
    // The newest ready snapshot survives its passed delete-after.
    let newest = get("newest").await;
    assert!(newest.metadata.deletion_timestamp.is_none());
    assert!(newest.state(chrono::Utc::now()).is_ready());
    assert_eq!(
        newest
            .labels()
            .get(labels::DELETE_AFTER)
            .map(String::as_str),
        Some("2000-01-01")
    );
}

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG) with hack/e2e.sh's releases"]
async fn e2e_flows_postgres_verify_cronjob_labels_the_newest_backup_verified() {
    let ns = var("E2E_PG_NAMESPACE", "backup-ns-postgres");
    let cronjob = var("E2E_PG_CRONJOB", "backup-ns-db");
    let verify = var("E2E_PG_VERIFY_CRONJOB", "backup-ns-db-verify");
    let client = client().await;
    let run = adhoc_run(&ns, &cronjob).await;
    let body = async {
        let vs = check_adhoc_snapshot(&run);
        let name = vs.metadata.name.clone().unwrap_or_default();
        let (code, report) = backup_ns(
            &[
                "adhoc",
                "--from-cronjob",
                &verify,
                "-n",
                &ns,
                "--wait",
                "--timeout",
                "15m",
                "-o",
                "json",
            ],
            &[],
        );
        if code != 0 {
            if let Some(job) = report["job"].as_str() {
                eprintln!("{}", job_logs(&client, &ns, job).await);
            }
        }
        assert_eq!(code, 0, "{report}");
        let verified = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns)
            .get(&name)
            .await
            .expect("the snapshot");
        let l = verified.metadata.labels.unwrap_or_default();
        assert!(
            l.contains_key(labels::VERIFIED) && !l.contains_key(labels::VERIFY_FAILED),
            "the newest backup is labelled verified: {l:?}"
        );
        if let Some(job) = report["job"].as_str() {
            let _ = Api::<Job>::namespaced(client.clone(), &ns)
                .delete(job, &DeleteParams::background())
                .await;
        }
    };
    let outcome = AssertUnwindSafe(body).catch_unwind().await;
    adhoc_cleanup(&client, &run).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
