//! What `restore dump`, `download SNAPSHOT` and `verify` gather before they plan: the snapshot
//! (a name, `latest` or `--before`), the database settings it was taken with, the live
//! database pod, and where the dump lies on the restored volume.
//!
//! A snapshot remembers how it was made: its `env-config` annotation holds the run's `BAK_*`
//! settings (passwords never). Flags and variables given now win; what they leave unset comes
//! from the annotation, so `backup-ns verify latest --pvc data` needs nothing else in the
//! namespace the backup CronJob runs in. The dump file's path is the database container's;
//! on the restored volume it is that path relative to where the container mounts the
//! snapshotted PVC (`--dump-path` says it when the pod is gone or mounts it oddly).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clap::Args;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::Api;
use serde_json::Value;

use super::api::Requests;
use super::restore::{self, SnapshotChoice, SourceInfo};
use super::workbench::{self, HelperImage, Purpose};
use crate::cli::{CreateArgs, FromSnapshotArgs};
use crate::labels;
use crate::settings::{DbJob, Raw, Settings};
use crate::snapshot::VolumeSnapshot;
use crate::{Error, Result};

/// The checked snapshot arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct FromSnapshot {
    pub choice: SnapshotChoice,
    pub source_pvc: Option<String>,
    /// `--dump-path`: relative to the volume's root, checked.
    pub dump_path: Option<String>,
    pub helper_uid: Option<i64>,
}

impl FromSnapshot {
    pub fn from_args(a: &FromSnapshotArgs, create: &CreateArgs) -> Result<FromSnapshot> {
        let tz_env = std::env::var("TZ").ok();
        let (choice, source_pvc) = super::options::snapshot_choice(
            a.snapshot.as_deref(),
            &create.pvc,
            &a.before,
            &create.tz,
            tz_env.as_deref(),
        )?;
        let raw = Raw::opt("BAK_RESTORE_DUMP_PATH", &a.dump_path);
        let dump_path = match raw.get()? {
            None => None,
            Some(p) => Some(check_relative(p).map_err(|reason| raw.err(p, reason))?),
        };
        let raw = Raw::opt("BAK_HELPER_UID", &a.helper_uid);
        let helper_uid =
            match raw.get()? {
                None => None,
                Some(v) => match v.trim().parse::<i64>() {
                    Ok(u) if (1..=2_147_483_647).contains(&u) => Some(u),
                    _ => return Err(raw.err(
                        v,
                        "expected a non-root uid (1 to 2147483647): the helper never runs as root",
                    )),
                },
            };
        Ok(FromSnapshot {
            choice,
            source_pvc,
            dump_path,
            helper_uid,
        })
    }
}

/// A path on the restored volume ([`crate::db::restore::validate_relative_path`]), `./` dropped.
pub fn check_relative(p: &str) -> std::result::Result<String, String> {
    let p = p.trim_start_matches("./");
    crate::db::restore::validate_relative_path(p)?;
    Ok(p.to_owned())
}

/// Where `dump_file` (a path in `container`) lies on the volume of PVC `claim`: relative to
/// the container's mount of it (with its `subPath`).
pub fn dump_on_volume(
    pod: &Pod,
    container: &str,
    claim: &str,
    dump_file: &str,
) -> std::result::Result<String, String> {
    let spec = pod.spec.as_ref().ok_or("the pod has no spec")?;
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|p| p.claim_name == claim)
        })
        .ok_or_else(|| format!("the pod mounts no volume of PVC {claim}"))?;
    let c = spec
        .containers
        .iter()
        .find(|c| c.name == container)
        .ok_or_else(|| format!("the pod has no container {container}"))?;
    let mounts: Vec<_> = c
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| m.name == volume.name)
        .collect();
    for m in &mounts {
        if let Ok(rest) = crate::db::restore::relative_dump_path(&m.mount_path, dump_file) {
            let sub = m.sub_path.as_deref().unwrap_or_default().trim_matches('/');
            return if sub.is_empty() {
                Ok(rest)
            } else {
                check_relative(&format!("{sub}/{rest}"))
            };
        }
    }
    match mounts.first() {
        None => Err(format!(
            "container {container} does not mount PVC {claim} (volume {})",
            volume.name
        )),
        Some(m) => Err(format!(
            "the dump file {dump_file} is not on PVC {claim}, which container {container} \
             mounts at {}: the snapshot holds no dump",
            m.mount_path
        )),
    }
}

/// Fills what `args` leaves unset from a snapshot's `env-config` variables (flags and the
/// environment win). Only variables that are `create` settings are taken.
pub fn with_env_config(
    args: &CreateArgs,
    env_config: &BTreeMap<String, String>,
) -> Result<CreateArgs> {
    let cmd = <CreateArgs as Args>::augment_args(clap::Command::new("create"));
    let mut value = serde_json::to_value(args)
        .map_err(|e| Error::Precondition(format!("cannot read the arguments: {e}")))?;
    for arg in cmd.get_arguments() {
        let Some(var) = arg.get_env().and_then(|e| e.to_str()) else {
            continue;
        };
        let Some(from_snapshot) = env_config.get(var) else {
            continue;
        };
        let id = arg.get_id().as_str();
        if value.get(id) == Some(&Value::Null) {
            value[id] = Value::String(from_snapshot.clone());
        }
    }
    serde_json::from_value(value)
        .map_err(|e| Error::Precondition(format!("cannot read the arguments: {e}")))
}

/// Everything gathered for one snapshot command.
pub struct Gathered {
    pub namespace: String,
    pub snapshot: VolumeSnapshot,
    pub snapshot_name: String,
    pub settings: Settings,
    /// The running database pod and its container (when the snapshot has a database and the
    /// pod could be found).
    pub db_pod: Option<Pod>,
    /// The dump on the restored volume, relative to its root (`None`: volume-only).
    pub dump_path: Option<String>,
    pub source: Option<SourceInfo>,
    /// The uid of the database's system user in its image (`id -u postgres` in the container).
    pub db_user_uid: Option<i64>,
}

impl Gathered {
    /// The database of the snapshot (`None`: a volume-only snapshot).
    pub fn job(&self) -> Option<&DbJob> {
        self.settings.databases.first()
    }

    /// The workbench for `purpose`, with the helper image given.
    pub fn plan(
        &self,
        purpose: Purpose,
        helper: &HelperImage,
        timeout: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<workbench::Plan> {
        let name = workbench::name(purpose);
        let pvc = restore::plan(
            &self.namespace,
            &name,
            &self.snapshot,
            self.source.as_ref(),
            &restore::Overrides::default(),
        )?;
        Ok(workbench::plan(
            purpose,
            &name,
            pvc.manifest,
            helper,
            timeout,
            now,
        ))
    }

    /// The helper's image and user from the database pod (or `image`, for a snapshot without
    /// one or when the pod is gone).
    pub fn helper(&self, image: Option<&str>, uid: Option<i64>) -> Result<HelperImage> {
        match (&self.db_pod, self.job(), image) {
            (_, _, Some(image)) => Ok(HelperImage {
                image: image.to_owned(),
                image_pull_secrets: Vec::new(),
                uid: uid.unwrap_or(workbench::DEFAULT_UID),
                gid: uid.unwrap_or(workbench::DEFAULT_UID),
            }),
            (Some(pod), Some(job), None) => {
                HelperImage::of_pod(pod, &job.container, uid, self.db_user_uid)
            }
            _ => Err(Error::config(
                "BAK_VERIFY_IMAGE (--image)",
                "",
                "required: the snapshot has no running database pod to take the helper's image \
                 from",
            )),
        }
    }
}

/// A connection and what was gathered for one snapshot command.
pub struct Session {
    pub client: kube::Client,
    pub requests: Requests,
    /// When the command started: the snapshot's state, the workbench's expiry, labels' dates.
    pub now: DateTime<Utc>,
    pub g: Gathered,
}

/// Connects (kubeconfig or in-cluster) and [`gather`]s.
pub async fn connect_and_gather(
    opts: &FromSnapshot,
    create: &CreateArgs,
    need_pod: bool,
) -> Result<Session> {
    let (client, context_ns) = super::client(false)
        .await
        .map_err(|e| Error::Exec(format!("{e:#}")))?;
    let requests = Requests::new(client.clone(), super::api::DEFAULT_QPS);
    let now = Utc::now();
    let g = gather(&requests, &client, &context_ns, opts, create, need_pod, now).await?;
    Ok(Session {
        client,
        requests,
        now,
        g,
    })
}

/// Gathers for `opts`: `need_pod` says the live database pod is required (`restore dump`);
/// otherwise a missing pod is fine when `--dump-path` says where the dump is.
pub async fn gather(
    requests: &Requests,
    client: &kube::Client,
    context_ns: &str,
    opts: &FromSnapshot,
    create: &CreateArgs,
    need_pod: bool,
    now: DateTime<Utc>,
) -> Result<Gathered> {
    let ns = match Raw::opt("BAK_NAMESPACE", &create.namespace).namespace()? {
        Some(ns) => ns,
        None => context_ns.to_owned(),
    };
    let snapshot =
        restore::snapshot(requests, &ns, &opts.choice, opts.source_pvc.as_deref(), now).await?;
    let snapshot_name = snapshot.metadata.name.clone().unwrap_or_default();
    let env_config = match snapshot
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::ENV_CONFIG))
    {
        None => BTreeMap::new(),
        Some(text) => labels::parse_env_config(text).map_err(|e| {
            Error::Precondition(format!(
                "volumesnapshot {ns}/{snapshot_name}: its {} annotation is malformed ({e}); \
                 nothing was changed. Give the database flags (BAK_DB_*) yourself",
                labels::ENV_CONFIG
            ))
        })?,
    };
    let mut merged = with_env_config(create, &env_config)?;
    // The namespace is the snapshot's, whatever the run that made it said.
    merged.namespace = Some(ns.clone());
    let settings = super::settings_from(&merged)?;
    if settings.databases.len() > 1 {
        return Err(Error::config(
            "BAK_DB_POSTGRES / BAK_DB_MYSQL",
            "true",
            "the snapshot names two databases; set BAK_DB_POSTGRES=false or BAK_DB_MYSQL=false \
             to choose one",
        ));
    }
    let claim = snapshot.spec.source.persistent_volume_claim_name.clone();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let source = match &claim {
        Some(name) => {
            let what = format!("get persistentvolumeclaim {ns}/{name}");
            requests
                .call(&what, || pvcs.get_opt(name))
                .await
                .map_err(|e| Error::kube(&what, e))?
                .as_ref()
                .map(SourceInfo::from_pvc)
        }
        None => None,
    };
    let mut db_pod = None;
    let mut db_user_uid = None;
    let mut dump_path = opts.dump_path.clone();
    if let Some(job) = settings.databases.first() {
        match super::dbops::resolve(client, &ns, job).await {
            Ok(r) => {
                let pod = r.object;
                if dump_path.is_none() {
                    let claim = claim.as_deref().unwrap_or_default();
                    dump_path = Some(
                        dump_on_volume(&pod, &job.container, claim, &job.target.dump_file)
                            .map_err(|e| {
                                Error::Precondition(format!(
                                    "pod {ns}/{}: {e}; give the dump's path on the volume \
                                     with --dump-path",
                                    r.pod
                                ))
                            })?,
                    );
                }
                db_user_uid = user_uid(client, &ns, &r.pod, job).await;
                db_pod = Some(pod);
            }
            Err(e) if !need_pod && dump_path.is_some() => {
                tracing::warn!(
                    "{e}; going on with --dump-path {}",
                    dump_path.as_deref().unwrap_or_default()
                );
            }
            Err(e) if !need_pod => {
                return Err(Error::Precondition(format!(
                    "{e}; without the database's pod, give the dump's path on the restored \
                     volume with --dump-path (e.g. dump.sql.gz)"
                )))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Gathered {
        namespace: ns,
        snapshot,
        snapshot_name,
        settings,
        db_pod,
        dump_path,
        source,
        db_user_uid,
    })
}

/// The uid of the engine's system user in the database container's image, if it can be found
/// (a failure only means the helper falls back to the default uid).
async fn user_uid(client: &kube::Client, ns: &str, pod: &str, job: &DbJob) -> Option<i64> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let script = crate::db::user_id_script(job.target.engine);
    let out = crate::exec::run(
        &pods,
        crate::exec::ExecRequest {
            pod,
            container: &job.container,
            argv: script.argv,
            stdin: script.stdin,
            hold_stdin: true,
            timeout: super::dbops::CHECK_TIMEOUT,
            what: "database user id",
        },
    )
    .await;
    match out {
        Ok(o) if o.exit_code == 0 => o.stdout.trim().parse().ok(),
        Ok(o) => {
            tracing::info!(
                "no database system user in pod {pod}: {}",
                crate::db::last_error_line(&o.stderr)
            );
            None
        }
        Err(e) => {
            tracing::warn!("{e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(mount: &str, sub_path: Option<&str>) -> Pod {
        let mut m = json!({"name": "data", "mountPath": mount});
        if let Some(s) = sub_path {
            m["subPath"] = json!(s);
        }
        serde_json::from_value(json!({
            "metadata": {"name": "db-0"},
            "spec": {
                "containers": [{"name": "postgres", "image": "postgres:15", "volumeMounts": [m]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn the_dump_path_on_the_volume_is_relative_to_the_mount() {
        let p = pod("/var/lib/postgresql/data", None);
        assert_eq!(
            dump_on_volume(
                &p,
                "postgres",
                "data-db-0",
                "/var/lib/postgresql/data/backup/dump.sql.gz"
            ),
            Ok("backup/dump.sql.gz".to_owned())
        );
        let sub = pod("/var/lib/postgresql/data/", Some("pgdata"));
        assert_eq!(
            dump_on_volume(
                &sub,
                "postgres",
                "data-db-0",
                "/var/lib/postgresql/data/dump.sql.gz"
            ),
            Ok("pgdata/dump.sql.gz".to_owned())
        );
        let elsewhere =
            dump_on_volume(&p, "postgres", "data-db-0", "/tmp/dump.sql.gz").unwrap_err();
        assert!(elsewhere.contains("not on PVC data-db-0"), "{elsewhere}");
        // A prefix of a directory name is not that directory.
        assert!(dump_on_volume(
            &p,
            "postgres",
            "data-db-0",
            "/var/lib/postgresql/database/d.gz"
        )
        .is_err());
        assert!(
            dump_on_volume(&p, "postgres", "other", "/var/lib/postgresql/data/d.gz")
                .unwrap_err()
                .contains("no volume of PVC other")
        );
        assert!(dump_on_volume(&p, "mysql", "data-db-0", "/var/lib/postgresql/data/d.gz").is_err());
    }

    #[test]
    fn relative_paths_stay_on_the_volume() {
        assert_eq!(
            check_relative("./backup/dump.sql.gz"),
            Ok("backup/dump.sql.gz".into())
        );
        for bad in ["", "/abs/dump.sql.gz", "../etc/passwd", "a/../../b", "a\nb"] {
            assert!(check_relative(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_snapshots_env_config_fills_only_what_is_unset() {
        let given = CreateArgs {
            postgres_db: Some("from-flag".into()),
            ..Default::default()
        };
        let env_config = BTreeMap::from(
            [
                ("BAK_DB_POSTGRES", "true"),
                ("BAK_DB_POSTGRES_DB", "from-snapshot"),
                ("BAK_DB_POSTGRES_DUMP_FILE", "/data/dump.sql.gz"),
                ("BAK_NOT_A_SETTING", "x"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let merged = with_env_config(&given, &env_config).unwrap();
        assert_eq!(merged.postgres.as_deref(), Some("true"));
        assert_eq!(merged.postgres_db.as_deref(), Some("from-flag"));
        assert_eq!(
            merged.postgres_dump_file.as_deref(),
            Some("/data/dump.sql.gz")
        );
        assert_eq!(merged.mysql, None);
    }
}
