//! `backup-ns adhoc --from-cronjob`: the real binary against the API emulation.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::emu::{Emu, Verb};

const NS: &str = "shop";

fn cronjob() -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"namespace": NS, "name": "backup-data"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {
            "metadata": {"labels": {"app.kubernetes.io/name": "backup-ns"}},
            "spec": {"backoffLimit": 2, "template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "backup", "image": "ghcr.io/backup-ns/backup-ns:0.1.0", "args": ["create"],
                "env": [{"name": "BAK_LABEL_VS_TYPE", "value": "cronjob"}]
            }]}}}
        }}
    })
}

fn adhoc(emu: &Emu, dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let kubeconfig = emu.write_kubeconfig(dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_backup-ns"))
        .arg("adhoc")
        .args(args)
        .env_clear()
        .env("KUBECONFIG", kubeconfig)
        .env("BAK_NAMESPACE", NS)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn jobs(emu: &Emu) -> Vec<Value> {
    emu.list("jobs", Some(NS))
}

#[tokio::test(flavor = "multi_thread")]
async fn adhoc_creates_a_job_from_the_cronjob_marked_adhoc() {
    let emu = Emu::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cj = emu.create(cronjob());
    let (code, out, err) = adhoc(&emu, dir.path(), &["--from-cronjob", "backup-data"]);
    assert_eq!(code, 0, "{out}{err}");
    let jobs = jobs(&emu);
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    let name = job["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("backup-data-adhoc-"), "{name}");
    assert!(out.contains(&format!("job/{name} created")), "{out}");
    assert_eq!(
        job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(
        job["metadata"]["ownerReferences"][0]["uid"],
        cj["metadata"]["uid"]
    );
    assert_eq!(job["spec"]["backoffLimit"], 2);
    let env = &job["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env,
        &json!([{"name": "BAK_LABEL_VS_TYPE", "value": "adhoc"}])
    );
    emu.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread")]
async fn adhoc_refuses_while_a_job_of_the_cronjob_is_active() {
    let emu = Emu::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cj = emu.create(cronjob());
    emu.create(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"namespace": NS, "name": "backup-data-29000000",
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "backup-data", "uid": cj["metadata"]["uid"]}]},
        "spec": {"template": {"spec": {"containers": [{"name": "backup", "image": "x"}]}}},
        "status": {"active": 1},
    }));
    let (code, out, err) = adhoc(&emu, dir.path(), &["--from-cronjob", "backup-data"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains("backup-data-29000000"), "{err}");
    assert_eq!(jobs(&emu).len(), 1);
    assert_eq!(emu.count(Verb::Create, "jobs"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn adhoc_wait_reports_the_jobs_outcome() {
    for (condition, want_code, want_text) in [
        ("Complete", 0, "succeeded"),
        ("Failed", 1, "failed: BackoffLimitExceeded"),
    ] {
        let emu = Emu::start().await;
        let dir = tempfile::tempdir().unwrap();
        emu.create(cronjob());
        std::thread::scope(|s| {
            // Play the Job controller: finish the Job a moment after it appears.
            s.spawn(|| {
                assert!(crate::support::wait_until(Duration::from_secs(10), || !jobs(&emu).is_empty()));
                std::thread::sleep(Duration::from_millis(500));
                let mut job = jobs(&emu).remove(0);
                job["status"] = json!({"conditions": [{"type": condition, "status": "True", "reason": "BackoffLimitExceeded"}]});
                emu.replace(job);
            });
            let (code, out, err) = adhoc(
                &emu,
                dir.path(),
                &[
                    "--from-cronjob",
                    "backup-data",
                    "--wait",
                    "--timeout",
                    "30s",
                ],
            );
            assert_eq!(code, want_code, "{out}{err}");
            assert!(out.contains(want_text), "{out}");
        });
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn adhoc_wait_times_out_and_bad_input_is_refused() {
    let emu = Emu::start().await;
    let dir = tempfile::tempdir().unwrap();
    emu.create(cronjob());
    let (code, _, err) = adhoc(
        &emu,
        dir.path(),
        &["--from-cronjob", "backup-data", "--wait", "--timeout", "1s"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("did not finish within 1s"), "{err}");

    emu.clear_requests();
    let (code, _, err) = adhoc(&emu, dir.path(), &["--from-cronjob", "Bad_Name"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("BAK_ADHOC_FROM_CRONJOB"), "{err}");
    let (code, _, err) = adhoc(
        &emu,
        dir.path(),
        &["--from-cronjob", "backup-data", "--wait", "--timeout", "10"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(emu.requests().is_empty());

    let (code, _, err) = adhoc(&emu, dir.path(), &["--from-cronjob", "nope"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cronjob shop/nope not found"), "{err}");
}
