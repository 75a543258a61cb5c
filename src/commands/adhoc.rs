//! `backup-ns adhoc --from-cronjob NAME`: a backup now, exactly as the CronJob would run it.
//!
//! Like `kubectl create job --from=cronjob/NAME`, but it refuses while a Job of that CronJob is
//! still active (two dumps of one database would only queue on the per-PVC Lease), marks the
//! snapshot `type=adhoc`, and can wait for the outcome. The Job is owned by the CronJob, so it
//! is cleaned up with it.

use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ListParams, PostParams};
use serde::Serialize;

use crate::cli::{AdhocArgs, OutputFormat};
use crate::settings::{format_duration, Raw};
use crate::{labels, Error, ExitStatus, Result};

/// Annotation `kubectl create job --from` sets, so tools can tell a manual run.
const INSTANTIATE: &str = "cronjob.kubernetes.io/instantiate";

/// Validated `adhoc` options.
#[derive(Debug, Clone, PartialEq)]
pub struct AdhocOptions {
    pub cronjob: String,
    pub namespace: Option<String>,
    /// `None`: do not wait.
    pub wait: Option<Duration>,
}

impl AdhocOptions {
    pub fn from_args(a: &AdhocArgs) -> Result<AdhocOptions> {
        labels::validate_dns1123_subdomain(
            "BAK_ADHOC_FROM_CRONJOB (--from-cronjob)",
            &a.from_cronjob,
        )?;
        let namespace = Raw::new("BAK_NAMESPACE", "--namespace", &a.namespace).namespace()?;
        let wait = Raw::new("BAK_ADHOC_WAIT", "--wait", &a.wait).bool_or(false)?;
        let timeout = Raw::new("BAK_ADHOC_TIMEOUT", "--timeout", &a.timeout).duration_or("1h")?;
        Ok(AdhocOptions {
            cronjob: a.from_cronjob.clone(),
            namespace,
            wait: wait.then_some(timeout),
        })
    }
}

/// The Job for a manual run of `cj`, named `name` (pure).
pub fn job_from_cronjob(cj: &CronJob, name: &str) -> Result<Job, String> {
    let template = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .ok_or("the CronJob has no spec")?;
    let mut spec = template
        .spec
        .ok_or("the CronJob's jobTemplate has no spec")?;
    if let Some(pod) = spec.template.spec.as_mut() {
        for c in &mut pod.containers {
            // An explicit entry wins over envFrom (the chart's ConfigMap says `cronjob`).
            let env = c.env.get_or_insert_with(Vec::new);
            env.retain(|e| e.name != "BAK_LABEL_VS_TYPE");
            env.push(k8s_openapi::api::core::v1::EnvVar {
                name: "BAK_LABEL_VS_TYPE".into(),
                value: Some("adhoc".into()),
                ..Default::default()
            });
        }
    }
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(INSTANTIATE.into(), "manual".into());
    let owner = OwnerReference {
        api_version: "batch/v1".into(),
        kind: "CronJob".into(),
        name: cj.metadata.name.clone().unwrap_or_default(),
        uid: cj.metadata.uid.clone().ok_or("the CronJob has no uid")?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    Ok(Job {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            namespace: cj.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// The Job name: `<cronjob>-adhoc-<rand>`, within the 63 characters a Job name may have.
pub fn job_name(cronjob: &str, rand: &str) -> String {
    let base = &cronjob[..cronjob.len().min(63 - "-adhoc-".len() - rand.len())];
    format!("{}-adhoc-{rand}", base.trim_end_matches(['-', '.']))
}

/// How a Job stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "message")]
pub enum JobState {
    Running,
    Succeeded,
    Failed(String),
}

/// Reads a Job's state from its conditions (`Complete`/`Failed`, as the Job controller sets
/// them), falling back to the counters.
pub fn job_state(job: &Job) -> JobState {
    let Some(status) = &job.status else {
        return JobState::Running;
    };
    for c in status
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.status == "True")
    {
        match c.type_.as_str() {
            "Complete" | "SuccessCriteriaMet" => return JobState::Succeeded,
            "Failed" | "FailureTarget" => {
                let why = [c.reason.clone(), c.message.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ");
                return JobState::Failed(if why.is_empty() { "failed".into() } else { why });
            }
            _ => {}
        }
    }
    if status.succeeded.unwrap_or(0) > 0 && status.active.unwrap_or(0) == 0 {
        return JobState::Succeeded;
    }
    JobState::Running
}

/// Names of the Jobs of `cj` (by owner uid) that have not finished.
pub fn active_jobs<'a>(cj_uid: &str, jobs: &'a [Job]) -> Vec<&'a str> {
    jobs.iter()
        .filter(|j| {
            j.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == cj_uid)
        })
        .filter(|j| job_state(j) == JobState::Running)
        .filter_map(|j| j.metadata.name.as_deref())
        .collect()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AdhocReport<'a> {
    namespace: &'a str,
    cronjob: &'a str,
    job: &'a str,
    #[serde(flatten)]
    state: Option<&'a JobState>,
}

pub async fn main(args: &AdhocArgs, output: OutputFormat) -> ExitStatus {
    let opts = match AdhocOptions::from_args(args) {
        Ok(o) => o,
        Err(e) => return super::report_error(&e),
    };
    let (client, context_ns) = match super::client(true).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitStatus::Failure;
        }
    };
    let ns = opts.namespace.clone().unwrap_or(context_ns);
    match run(&client, &ns, &opts).await {
        Ok((job, state)) => {
            let report = AdhocReport {
                namespace: &ns,
                cronjob: &opts.cronjob,
                job: &job,
                state: state.as_ref(),
            };
            match output {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                ),
                OutputFormat::Text => match &state {
                    None => println!(
                        "job/{job} created from cronjob/{} in namespace {ns}",
                        opts.cronjob
                    ),
                    Some(JobState::Succeeded) => println!("job/{job} succeeded"),
                    Some(JobState::Failed(why)) => println!("job/{job} failed: {why}"),
                    Some(JobState::Running) => println!("job/{job} still running"),
                },
            }
            match state {
                Some(JobState::Failed(_)) => ExitStatus::Failure,
                _ => ExitStatus::Success,
            }
        }
        Err(e) => super::report_error(&e),
    }
}

async fn run(
    client: &kube::Client,
    ns: &str,
    opts: &AdhocOptions,
) -> Result<(String, Option<JobState>)> {
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), ns);
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let cj = cronjobs
        .get_opt(&opts.cronjob)
        .await
        .map_err(|e| Error::kube(format!("get cronjob {ns}/{}", opts.cronjob), e))?
        .ok_or_else(|| {
            Error::Precondition(format!(
                "cronjob {ns}/{} not found (--from-cronjob)",
                opts.cronjob
            ))
        })?;
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let existing = jobs
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::kube(format!("list jobs in {ns}"), e))?;
    let active = active_jobs(&uid, &existing.items);
    if !active.is_empty() {
        return Err(Error::Busy(format!(
            "cronjob {ns}/{} has an active job ({}); not starting another",
            opts.cronjob,
            active.join(", ")
        )));
    }
    let name = job_name(
        &opts.cronjob,
        &crate::naming::random_suffix(&mut rand::rng()),
    );
    let job = job_from_cronjob(&cj, &name)
        .map_err(|e| Error::Precondition(format!("cronjob {ns}/{}: {e}", opts.cronjob)))?;
    jobs.create(&PostParams::default(), &job)
        .await
        .map_err(|e| Error::kube(format!("create job {ns}/{name}"), e))?;
    tracing::info!("created job {ns}/{name} from cronjob {}", opts.cronjob);
    let Some(timeout) = opts.wait else {
        return Ok((name, None));
    };

    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match jobs.get(&name).await {
            Ok(job) => match job_state(&job) {
                JobState::Running => {}
                done => return Ok((name, Some(done))),
            },
            Err(e) => tracing::warn!("reading job {name}: {e}"),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Exec(format!(
                "job {ns}/{name} did not finish within {} (--timeout); it keeps running",
                format_duration(timeout)
            )));
        }
        tokio::time::sleep(Duration::from_secs(2).min(deadline - tokio::time::Instant::now()))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cronjob() -> CronJob {
        serde_json::from_value(json!({
            "metadata": {"name": "backup-db", "namespace": "shop", "uid": "cj-uid"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {
                "metadata": {"labels": {"app": "backup-ns"}},
                "spec": {"backoffLimit": 2, "template": {"spec": {"restartPolicy": "Never", "containers": [{
                    "name": "backup", "image": "backup-ns",
                    "env": [{"name": "BAK_LABEL_VS_TYPE", "value": "cronjob"}, {"name": "BAK_PVC_NAME", "value": "data"}]
                }]}}}
            }}
        }))
        .unwrap()
    }

    fn job(owner: &str, status: serde_json::Value) -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": format!("j-{owner}"), "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "x", "uid": owner}]},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn job_copies_the_template_and_marks_it_adhoc() {
        let j = job_from_cronjob(&cronjob(), "backup-db-adhoc-abcdef").unwrap();
        assert_eq!(j.metadata.annotations.unwrap()[INSTANTIATE], "manual");
        assert_eq!(j.metadata.labels.unwrap()["app"], "backup-ns");
        let owner = &j.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("CronJob", "cj-uid", Some(true))
        );
        let spec = j.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(2));
        let env = spec.template.spec.unwrap().containers[0]
            .env
            .clone()
            .unwrap();
        let types: Vec<_> = env
            .iter()
            .filter(|e| e.name == "BAK_LABEL_VS_TYPE")
            .collect();
        assert_eq!(types.len(), 1);
        assert_eq!(types[0].value.as_deref(), Some("adhoc"));
        assert!(env.iter().any(|e| e.name == "BAK_PVC_NAME"));
    }

    #[test]
    fn json_report_shape() {
        let ok = AdhocReport {
            namespace: "shop",
            cronjob: "db",
            job: "db-adhoc-x",
            state: Some(&JobState::Succeeded),
        };
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            json!({"namespace": "shop", "cronjob": "db", "job": "db-adhoc-x", "state": "succeeded"})
        );
        let failed = JobState::Failed("BackoffLimitExceeded".into());
        let v = serde_json::to_value(AdhocReport {
            state: Some(&failed),
            ..ok
        })
        .unwrap();
        assert_eq!(
            (v["state"].as_str(), v["message"].as_str()),
            (Some("failed"), Some("BackoffLimitExceeded"))
        );
        let v = serde_json::to_value(AdhocReport { state: None, ..ok }).unwrap();
        assert!(v.get("state").is_none(), "{v}");
    }

    #[test]
    fn names_fit_in_63() {
        assert_eq!(job_name("backup-db", "abcdef"), "backup-db-adhoc-abcdef");
        let n = job_name(&"x".repeat(52), "abcdef");
        assert!(n.len() <= 63, "{n}");
    }

    #[test]
    fn states_and_active_jobs() {
        let running = job("cj-uid", json!({"active": 1}));
        let done = job(
            "cj-uid",
            json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}),
        );
        let failed = job(
            "cj-uid",
            json!({"failed": 3, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}),
        );
        let other = job("other-uid", json!({"active": 1}));
        assert_eq!(job_state(&running), JobState::Running);
        assert_eq!(job_state(&done), JobState::Succeeded);
        assert_eq!(
            job_state(&failed),
            JobState::Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            )
        );
        let jobs = [running, done, failed, other];
        assert_eq!(active_jobs("cj-uid", &jobs), ["j-cj-uid"]);
    }
}
