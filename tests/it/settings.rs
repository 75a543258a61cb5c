//! Settings at the binary level: what an empty variable means (the original's `os.LookupEnv`),
//! `BAK_LABEL_VS_TYPE` as any label value, and every `[TYPE/]NAME` `kubectl exec` takes as
//! `BAK_DB_*_EXEC_RESOURCE`, resolved through the API emulation.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::emu::{fixtures, Emu};

const NS: &str = "shop";

fn backup_ns(kubeconfig: Option<&PathBuf>, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backup-ns"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(vars.iter().copied())
        .stdin(Stdio::null());
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k).env("BAK_NAMESPACE", NS);
    }
    cmd.output().expect("run backup-ns")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `backup-ns env -o json` with `vars`: the printed settings, or the exit code and stderr.
fn env_json(vars: &[(&str, &str)]) -> Result<Value, (i32, String)> {
    let out = backup_ns(None, &["env", "-o", "json"], vars);
    match out.status.code() {
        Some(0) => Ok(serde_json::from_slice(&out.stdout).expect("env prints JSON")),
        code => Err((code.unwrap_or(-1), stderr(&out))),
    }
}

#[test]
fn an_empty_variable_is_set_as_with_the_originals_lookup_env() {
    // Typed settings: the original's parsers rejected "" (and fell back silently); we stop
    // with exit 2 and say that the variable is set but empty.
    for var in [
        "BAK_DRY_RUN",
        "BAK_LABEL_VS_RETAIN_DAYS",
        "BAK_VS_WAIT_UNTIL_READY_TIMEOUT",
        "BAK_PVC_NAME",
        "BAK_NAMESPACE",
        "BAK_DB_POSTGRES_PORT",
        "BAK_DB_POSTGRES_EXEC_RESOURCE",
    ] {
        let (code, err) = env_json(&[("BAK_DB_POSTGRES", "true"), (var, "")]).unwrap_err();
        assert_eq!(code, 2, "{var}: {err}");
        assert!(
            err.contains(&format!("invalid {var} (--"))
                && err.contains("=\"\"")
                && err.contains("set but empty"),
            "{var}: {err}"
        );
    }
    // Where the original made "" mean the default, it still does.
    let shown = env_json(&[
        ("BAK_DB_SKIP", "true"),
        ("BAK_VS_CLASS_NAME", ""),
        ("BAK_LABEL_VS_POD", ""),
        ("BAK_TZ", ""),
    ])
    .unwrap();
    assert_eq!(shown["BAK_VS_CLASS_NAME"], "<cluster default>");
    assert_eq!(shown["BAK_LABEL_VS_POD"], "");
    assert_eq!(shown["BAK_TZ"], "UTC (from default (UTC))");
    // And where "" is a value (an empty password, user or type label), it is passed on.
    let shown = env_json(&[
        ("BAK_DB_MYSQL", "true"),
        ("BAK_DB_MYSQL_PASSWORD", ""),
        ("BAK_DB_MYSQL_USER", ""),
    ])
    .unwrap();
    assert_eq!(shown["BAK_DB_MYSQL_USER"], "");
    assert_eq!(shown["BAK_DB_MYSQL_PASSWORD"], "<redacted>");
}

#[tokio::test(flavor = "multi_thread")]
async fn any_label_value_is_a_type_label() {
    let emu = Emu::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = emu.write_kubeconfig(dir.path()).expect("kubeconfig");
    emu.create(fixtures::pvc(NS, "data", true));

    let run = |vs_type: &str| {
        backup_ns(
            Some(&kubeconfig),
            &["create", "-o", "json"],
            &[
                ("BAK_DB_SKIP", "true"),
                ("BAK_VS_WAIT_UNTIL_READY", "false"),
                ("BAK_LABEL_VS_TYPE", vs_type),
            ],
        )
    };
    let out = run("pre-upgrade");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let result: Value = serde_json::from_slice(&out.stdout).expect("JSON result");
    let name = result["snapshot"].as_str().expect("snapshot name");
    let vs = emu
        .get(
            "snapshot.storage.k8s.io/v1",
            "volumesnapshots",
            Some(NS),
            name,
        )
        .expect("snapshot");
    assert_eq!(vs["metadata"]["labels"]["backup-ns.sh/type"], "pre-upgrade");

    // Only what is not a label value is refused, before any request.
    emu.clear_requests();
    let out = run("pre upgrade!");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid BAK_LABEL_VS_TYPE (--type)=\"pre upgrade!\""),
        "{}",
        stderr(&out)
    );
    assert!(emu.requests().is_empty());
}

/// Every form `kubectl exec` takes resolves through the object's selector (or name) to its
/// pod; here that pod is not Ready, so the run stops naming it: proof the right object was read
/// and its selector used, without a database.
#[tokio::test(flavor = "multi_thread")]
async fn every_exec_resource_kubectl_takes_resolves_to_its_pods() {
    let emu = Emu::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = emu.write_kubeconfig(dir.path()).expect("kubeconfig");
    emu.create(fixtures::pvc(NS, "data", true));
    let objects = [
        fixtures::deployment(NS, "w-deploy", &[("app", "deploy")], &[]),
        fixtures::statefulset(NS, "w-sts", &[("app", "sts")], &[]),
        fixtures::replicaset(NS, "w-rs", &[("app", "rs")]),
        fixtures::daemonset(NS, "w-ds", &[("app", "ds")]),
        fixtures::job(NS, "w-job", &[("app", "job")]),
        fixtures::replicationcontroller(NS, "w-rc", &[("app", "rc")]),
        fixtures::service(NS, "w-svc", &[("app", "svc")]),
    ];
    for object in objects {
        emu.create(object);
    }
    for app in ["deploy", "sts", "rs", "ds", "job", "rc", "svc", "pod"] {
        emu.create(fixtures::pod(
            NS,
            &format!("p-{app}"),
            &[("app", app)],
            &[("postgres", &[])],
            "Running",
            false,
            false,
        ));
    }
    let cases = [
        ("p-pod", "pod/p-pod", "p-pod"),
        ("pod/p-pod", "pod/p-pod", "p-pod"),
        ("pods/p-pod", "pod/p-pod", "p-pod"),
        ("po/p-pod", "pod/p-pod", "p-pod"),
        ("deploy/w-deploy", "deployment/w-deploy", "p-deploy"),
        ("deployment/w-deploy", "deployment/w-deploy", "p-deploy"),
        ("deployments/w-deploy", "deployment/w-deploy", "p-deploy"),
        (
            "deployments.apps/w-deploy",
            "deployment/w-deploy",
            "p-deploy",
        ),
        ("Deployment/w-deploy", "deployment/w-deploy", "p-deploy"),
        ("sts/w-sts", "statefulset/w-sts", "p-sts"),
        ("statefulset/w-sts", "statefulset/w-sts", "p-sts"),
        ("statefulsets/w-sts", "statefulset/w-sts", "p-sts"),
        ("rs/w-rs", "replicaset/w-rs", "p-rs"),
        ("replicaset/w-rs", "replicaset/w-rs", "p-rs"),
        ("ds/w-ds", "daemonset/w-ds", "p-ds"),
        ("daemonset/w-ds", "daemonset/w-ds", "p-ds"),
        ("job/w-job", "job/w-job", "p-job"),
        ("jobs.batch/w-job", "job/w-job", "p-job"),
        ("rc/w-rc", "replicationcontroller/w-rc", "p-rc"),
        ("svc/w-svc", "service/w-svc", "p-svc"),
        ("service/w-svc", "service/w-svc", "p-svc"),
    ];
    for (value, shown, pod) in cases {
        let out = backup_ns(
            Some(&kubeconfig),
            &["create", "-o", "json"],
            &[
                ("BAK_DB_POSTGRES", "true"),
                ("BAK_DB_POSTGRES_EXEC_RESOURCE", value),
                ("BAK_DRY_RUN", "true"),
            ],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{value}: {err}");
        assert!(
            err.contains(&format!("{shown} in namespace {NS}"))
                && err.contains(pod)
                && err.contains("not Ready"),
            "{value}: {err}"
        );
    }
    // What kubectl cannot exec into is a usage error, before any request.
    emu.clear_requests();
    for value in ["cronjob/w", "configmap/w", "deployment.batch/w", "deploy/"] {
        let out = backup_ns(
            Some(&kubeconfig),
            &["create"],
            &[
                ("BAK_DB_POSTGRES", "true"),
                ("BAK_DB_POSTGRES_EXEC_RESOURCE", value),
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{value}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("BAK_DB_POSTGRES_EXEC_RESOURCE"),
            "{value}"
        );
    }
    assert!(emu.requests().is_empty());
    emu.assert_no_unexpected();
}

/// Helm from `BACKUP_NS_HELM`, else on PATH (`hack/install-helm.sh` installs one), as for the
/// chart tests.
fn helm_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BACKUP_NS_HELM").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("helm"))
        .find(|p| p.is_file())
        .expect("no Helm: run hack/install-helm.sh and export BACKUP_NS_HELM")
}

/// Whether `helm template` takes a backup whose `key` is `value` (the schema's verdict, with
/// Helm's own regular-expression engine).
fn helm_takes(db: &str, key: &str, value: &str) -> bool {
    let values = serde_json::json!({
        "backups": [{ "name": "db", "pvc": "data", "db": db, key: value }],
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("values.json");
    std::fs::write(&file, values.to_string()).expect("values");
    let chart = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("charts/backup-ns");
    Command::new(helm_bin())
        .args(["template", "rel", "--namespace", NS])
        .arg(chart)
        .arg("-f")
        .arg(&file)
        .output()
        .expect("run helm")
        .status
        .success()
}

/// The chart's schema, as Helm applies it, takes a value exactly when the binary does (the
/// schema once took `dumpTimeout: 2d` and refused `1h30m`, and took 253-character PVC names).
#[test]
fn the_chart_takes_what_the_binary_takes() {
    let long = "a".repeat(64);
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "dumpTimeout",
            "BAK_DB_DUMP_TIMEOUT",
            "postgres",
            &["1h30m", "1.5h", "90s", "2d", "15", "0s"],
        ),
        (
            "pvc",
            "BAK_PVC_NAME",
            "skip",
            &["data", "a.b", &long, "a..b", "Data"],
        ),
        (
            "execResource",
            "BAK_DB_POSTGRES_EXEC_RESOURCE",
            "postgres",
            &[
                "rs/db",
                "Deployment/db",
                "db",
                "jobs.batch/db",
                "cronjob/db",
                "deploy/",
            ],
        ),
        (
            "container",
            "BAK_DB_POSTGRES_EXEC_CONTAINER",
            "postgres",
            &["pg", "Pg", &long],
        ),
        (
            "dumpFile",
            "BAK_DB_POSTGRES_DUMP_FILE",
            "postgres",
            &["/d/dump.gz", "/dir/", "rel"],
        ),
        (
            "host",
            "BAK_DB_POSTGRES_HOST",
            "postgres",
            &["db.example", "-x", "a b"],
        ),
        (
            "port",
            "BAK_DB_POSTGRES_PORT",
            "postgres",
            &["5432", "65536", "0"],
        ),
    ];
    for (key, var, db, values) in cases {
        for value in *values {
            let selector = match *db {
                "postgres" => ("BAK_DB_POSTGRES", "true"),
                _ => ("BAK_DB_SKIP", "true"),
            };
            let binary = env_json(&[selector, (var, value)]).is_ok();
            assert_eq!(
                helm_takes(db, key, value),
                binary,
                "backups[].{key}={value:?} vs {var}: the binary {}",
                if binary { "takes it" } else { "rejects it" }
            );
        }
    }
}
