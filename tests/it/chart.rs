//! The Helm chart (`charts/backup-ns`) rendered by a real Helm and checked as parsed YAML: the
//! RBAC rules exactly, the environment each container gets, schedules and time zone, security
//! context, one CronJob per backup target, and the schema rejecting typos and wrong types.
//!
//! Helm comes from `BACKUP_NS_HELM`, else `helm` on PATH; `hack/install-helm.sh` installs a
//! pinned one (CI runs it). Without one these tests fail, on purpose: a skipped chart test is a
//! chart nobody checked.

use serde::Deserialize;
use serde_yaml::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/backup-ns")
}

fn helm_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BACKUP_NS_HELM").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("helm"))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "no Helm for the chart tests: run `hack/install-helm.sh` and export \
             BACKUP_NS_HELM=<the path it prints> (or put helm on PATH)"
        )
    })
}

fn helm(args: &[&str], values: &str) -> Output {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(values.as_bytes()).unwrap();
    let out = Command::new(helm_bin())
        .args(args)
        .arg(chart_dir())
        .arg("-f")
        .arg(file.path())
        .output()
        .expect("run helm");
    out
}

/// `helm template` of the chart with these values; every rendered document, parsed.
fn render(values: &str) -> Vec<Value> {
    let out = helm(&["template", "rel", "--namespace", "shop"], values);
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn render_err(values: &str) -> String {
    let out = helm(&["template", "rel", "--namespace", "shop"], values);
    assert!(!out.status.success(), "helm template accepted {values}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], k: &str, name: &str) -> &'a Value {
    let found: Vec<_> = kind(docs, k)
        .into_iter()
        .filter(|d| d["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "{k}/{name} in {docs:#?}");
    found[0]
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

/// Rules as sorted (group, resource, verbs) triples, one per resource.
fn rules(role: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for rule in role["rules"].as_sequence().unwrap() {
        let list = |k: &str| -> Vec<String> {
            rule[k]
                .as_sequence()
                .map(|s| s.iter().map(s_owned).collect())
                .unwrap_or_default()
        };
        assert!(rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none());
        for g in list("apiGroups") {
            for r in list("resources") {
                let mut verbs = list("verbs");
                verbs.sort();
                out.push((g.clone(), r, verbs));
            }
        }
    }
    out.sort();
    out
}

fn s_owned(v: &Value) -> String {
    s(v).to_owned()
}

fn triple(g: &str, r: &str, verbs: &[&str]) -> (String, String, Vec<String>) {
    let mut verbs: Vec<String> = verbs.iter().map(|v| v.to_string()).collect();
    verbs.sort();
    (g.into(), r.into(), verbs)
}

fn pod_spec(cronjob: &Value) -> &Value {
    &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
}

fn container<'a>(cronjob: &'a Value, name: &str) -> &'a Value {
    let spec = pod_spec(cronjob);
    spec["containers"]
        .as_sequence()
        .into_iter()
        .chain(spec["initContainers"].as_sequence())
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("container {name} in {spec:#?}"))
}

/// The container's `env` as (name, value or `field:<path>` / `secret:<name>/<key>`).
fn env(c: &Value) -> Vec<(String, String)> {
    c["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| {
            let v = if let Some(v) = e.get("value") {
                s_owned(v)
            } else if let Some(f) = e["valueFrom"].get("fieldRef") {
                format!("field:{}", s(&f["fieldPath"]))
            } else {
                let k = &e["valueFrom"]["secretKeyRef"];
                format!("secret:{}/{}", s(&k["name"]), s(&k["key"]))
            };
            (s_owned(&e["name"]), v)
        })
        .collect()
}

fn env_of(c: &Value, name: &str) -> Option<String> {
    let all = env(c);
    let hits: Vec<_> = all.iter().filter(|(n, _)| n == name).collect();
    assert!(hits.len() <= 1, "{name} set twice: {all:?}");
    hits.first().map(|(_, v)| v.clone())
}

const NAMESPACE_RELEASE: &str = r#"
timeZone: Europe/Vienna
schedule: "0 3 * * *"
backups:
  - name: pg
    pvc: data
    db: postgres
    execResource: deployment/postgres
    container: postgres
    dumpFile: /var/lib/postgresql/data/dump.sql.gz
    schedule: "30 1 * * *"
    retain: daily_weekly_monthly
    passwordSecret: {name: pg, key: password}
  - name: my
    pvc: mysql-data
    db: mysql
    execResource: statefulset/mysql
    container: mysql
    defaultCharacterSet: utf8mb4
  - name: files
    pvc: uploads
    db: skip
    retain: days
    retainDays: 14
    vsClassName: csi-hostpath-snapclass
"#;

#[test]
fn chart_namespace_release_role_is_exactly_what_create_needs() {
    let docs = render(NAMESPACE_RELEASE);
    assert!(kind(&docs, "ClusterRole").is_empty() && kind(&docs, "ClusterRoleBinding").is_empty());
    let role = one(&docs, "Role", "rel-backup-ns");
    assert_eq!(
        rules(role),
        vec![
            triple("", "events", &["create"]),
            // Issue 9: patch records the last attempt in the PVC's annotations.
            triple("", "persistentvolumeclaims", &["get", "patch"]),
            triple("", "pods", &["get", "list"]),
            triple("", "pods/exec", &["create", "get"]),
            // Issue 7 C7: every exec resource kind kubectl accepts, get by name only.
            triple("", "replicationcontrollers", &["get"]),
            triple("", "services", &["get"]),
            triple("apps", "daemonsets", &["get"]),
            triple("apps", "deployments", &["get"]),
            triple("apps", "replicasets", &["get"]),
            triple("apps", "statefulsets", &["get"]),
            triple("batch", "jobs", &["get"]),
            triple(
                "coordination.k8s.io",
                "leases",
                &["create", "delete", "get", "update"]
            ),
            triple(
                "snapshot.storage.k8s.io",
                "volumesnapshots",
                &["create", "get", "list", "patch"]
            ),
        ]
    );
    for r in rules(role) {
        assert!(
            r.0 != "*" && r.1 != "*" && !r.2.iter().any(|v| v == "*"),
            "{r:?}"
        );
    }
    let binding = one(&docs, "RoleBinding", "rel-backup-ns");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["roleRef"]["name"], "rel-backup-ns");
    assert_eq!(binding["subjects"][0]["kind"], "ServiceAccount");
    assert_eq!(binding["subjects"][0]["name"], "rel-backup-ns");
    assert_eq!(binding["subjects"][0]["namespace"], "shop");
    one(&docs, "ServiceAccount", "rel-backup-ns");
    for cj in kind(&docs, "CronJob") {
        assert_eq!(pod_spec(cj)["serviceAccountName"], "rel-backup-ns");
    }

    // `rbac.adhoc` adds exactly what `backup-ns adhoc` needs.
    let docs = render(&format!("{NAMESPACE_RELEASE}\nrbac: {{adhoc: true}}\n"));
    let r = rules(one(&docs, "Role", "rel-backup-ns"));
    assert!(r.contains(&triple("batch", "cronjobs", &["get"])));
    assert!(r.contains(&triple("batch", "jobs", &["create", "get", "list"])));
    assert_eq!(r.len(), 15);
}

#[test]
fn chart_rbac_restore_is_a_role_of_its_own_with_what_the_restore_commands_need() {
    // Off by default: nothing that can create a volume.
    let docs = render(NAMESPACE_RELEASE);
    assert!(kind(&docs, "Role")
        .iter()
        .all(|r| r["metadata"]["name"] != "rel-backup-ns-restore"));
    let default_role = rules(one(&docs, "Role", "rel-backup-ns"));

    let docs = render(&format!("{NAMESPACE_RELEASE}\nrbac: {{restore: true}}\n"));
    // The CronJob's Role is unchanged.
    assert_eq!(rules(one(&docs, "Role", "rel-backup-ns")), default_role);
    // restore pvc, and the workbench of restore dump / download SNAPSHOT: a temporary PVC and
    // a helper pod, exec into it (and into the database pod), the database's workload read.
    assert_eq!(
        rules(one(&docs, "Role", "rel-backup-ns-restore")),
        workbench_rules(&["get", "list"])
    );
    let binding = one(&docs, "RoleBinding", "rel-backup-ns-restore");
    assert_eq!(binding["roleRef"]["name"], "rel-backup-ns-restore");
    assert_eq!(binding["subjects"][0]["name"], "rel-backup-ns");
    // Storage classes are cluster-scoped; the name carries the namespace (one per release).
    assert_eq!(
        rules(one(&docs, "ClusterRole", "rel-backup-ns-shop-restore")),
        vec![triple("storage.k8s.io", "storageclasses", &["get"])]
    );
    let cluster_binding = one(&docs, "ClusterRoleBinding", "rel-backup-ns-shop-restore");
    assert_eq!(cluster_binding["subjects"][0]["namespace"], "shop");
    assert!(render_err(&format!(
        "{NAMESPACE_RELEASE}\nrbac: {{restore: yes-please}}\n"
    ))
    .contains("restore"));
}

/// The rules `restore dump`, `download SNAPSHOT` and `verify` share, with these verbs on
/// volumesnapshots.
fn workbench_rules(snapshot_verbs: &[&str]) -> Vec<(String, String, Vec<String>)> {
    let mut r = vec![
        triple("", "events", &["list"]),
        triple(
            "",
            "persistentvolumeclaims",
            &["create", "delete", "get", "list"],
        ),
        triple("", "pods", &["create", "delete", "get", "list"]),
        triple("", "pods/exec", &["create", "get"]),
        triple("", "replicationcontrollers", &["get"]),
        triple("", "services", &["get"]),
        triple("apps", "daemonsets", &["get"]),
        triple("apps", "deployments", &["get"]),
        triple("apps", "replicasets", &["get"]),
        triple("apps", "statefulsets", &["get"]),
        triple("batch", "jobs", &["get"]),
        triple("snapshot.storage.k8s.io", "volumesnapshots", snapshot_verbs),
    ];
    r.sort();
    r
}

const VERIFY_RELEASE: &str = r#"
verify: {enabled: true}
backups:
  - name: pg
    pvc: data
    db: postgres
    execResource: deployment/postgres
    container: postgres
    dumpFile: /var/lib/postgresql/data/dump.sql.gz
    passwordSecret: {name: pg, key: password}
    env: {BAK_DB_POSTGRES_DB: shop}
    verify:
      expect: ["SELECT count(*) FROM orders=1", "SELECT count(*) FROM users WHERE a = 'b'=2"]
  - name: files
    pvc: uploads
    db: skip
    verify: {expectFiles: [index.html, "a b/c.txt"], image: "busybox:1.37"}
  - name: cache
    pvc: cache
    db: skip
    verify: {enabled: false}
"#;

fn cronjob_names(docs: &[Value]) -> Vec<String> {
    let mut names: Vec<_> = kind(docs, "CronJob")
        .iter()
        .map(|c| s_owned(&c["metadata"]["name"]))
        .collect();
    names.sort();
    names
}

#[test]
fn chart_verify_cronjobs_are_off_by_default() {
    // Nothing about verify, or per-backup verify settings without `enabled`: no verify objects.
    let without = VERIFY_RELEASE.replace("verify: {enabled: true}\n", "");
    for values in [NAMESPACE_RELEASE, without.as_str()] {
        let docs = render(values);
        let names = cronjob_names(&docs);
        assert!(names.iter().all(|n| !n.ends_with("-verify")), "{names:?}");
        for k in [
            "Role",
            "RoleBinding",
            "ClusterRole",
            "ClusterRoleBinding",
            "ServiceAccount",
        ] {
            assert!(
                kind(&docs, k)
                    .iter()
                    .all(|d| !s(&d["metadata"]["name"]).ends_with("-verify")),
                "{k}"
            );
        }
    }
}

#[test]
fn chart_verify_cronjob_per_target_runs_verify_latest_with_the_backups_settings() {
    let docs = render(VERIFY_RELEASE);
    assert_eq!(
        cronjob_names(&docs),
        [
            "rel-backup-ns-cache",
            "rel-backup-ns-files",
            "rel-backup-ns-files-verify",
            "rel-backup-ns-pg",
            "rel-backup-ns-pg-verify",
        ],
        "one per target, none for the one that opts out"
    );
    let cj = one(&docs, "CronJob", "rel-backup-ns-pg-verify");
    assert_eq!(cj["spec"]["schedule"], "0 5 * * 0");
    assert_eq!(cj["spec"]["timeZone"], "Etc/UTC");
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Forbid");
    assert_eq!(
        cj["metadata"]["labels"]["app.kubernetes.io/component"],
        "verify"
    );
    assert_eq!(cj["spec"]["jobTemplate"]["spec"]["backoffLimit"], 0);
    // 30m + job.deadlineMarginSeconds (900).
    assert_eq!(deadline(&docs, "rel-backup-ns-pg-verify"), 1800 + 900);
    assert_eq!(pod_spec(cj)["serviceAccountName"], "rel-backup-ns-verify");
    let c = container(cj, "backup-ns");
    let args: Vec<String> = c["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(s_owned)
        .collect();
    assert_eq!(args, ["verify", "latest", "--pvc", "data"]);
    assert_eq!(env_of(c, "BAK_VERIFY_TIMEOUT").as_deref(), Some("30m"));
    assert_eq!(
        env_of(c, "BAK_VERIFY_EXPECT").as_deref(),
        Some("SELECT count(*) FROM orders=1\nSELECT count(*) FROM users WHERE a = 'b'=2")
    );
    assert_eq!(env_of(c, "BAK_VERIFY_EXPECT_FILES"), None);
    assert_eq!(env_of(c, "BAK_VERIFY_IMAGE"), None);
    // The database settings are the backup's own, the ConfigMap too; nothing only create uses.
    let backup = container(one(&docs, "CronJob", "rel-backup-ns-pg"), "backup-ns");
    let db = |c: &Value| -> Vec<(String, String)> {
        env(c)
            .into_iter()
            .filter(|(n, _)| n.starts_with("BAK_DB_") || n == "TZ" || n == "BAK_NAMESPACE")
            .collect()
    };
    assert_eq!(db(c), db(backup));
    assert!(db(c).contains(&(
        "BAK_DB_POSTGRES_PASSWORD".into(),
        "secret:pg/password".into()
    )));
    assert!(db(c).contains(&("BAK_DB_POSTGRES_DB".into(), "shop".into())));
    assert_eq!(c["envFrom"], backup["envFrom"]);
    for create_only in ["BAK_LABEL_VS_TYPE", "BAK_LABEL_VS_POD", "BAK_PVC_NAME"] {
        assert_eq!(env_of(c, create_only), None, "{create_only}");
    }
    assert_eq!(c["securityContext"], backup["securityContext"]);
    assert_eq!(c["resources"]["requests"]["cpu"], "10m");

    let files = container(
        one(&docs, "CronJob", "rel-backup-ns-files-verify"),
        "backup-ns",
    );
    assert_eq!(files["args"][3], "uploads");
    assert_eq!(env_of(files, "BAK_DB_SKIP").as_deref(), Some("true"));
    assert_eq!(
        env_of(files, "BAK_VERIFY_EXPECT_FILES").as_deref(),
        Some("index.html,a b/c.txt")
    );
    assert_eq!(
        env_of(files, "BAK_VERIFY_IMAGE").as_deref(),
        Some("busybox:1.37")
    );

    // Schedule, timeout, deadline and resources from the values; a backup may opt in alone.
    let docs = render(&format!(
        "{}\nverify: {{enabled: false, schedule: '0 6 * * 6', timeout: 1h, \
         resources: {{requests: {{cpu: 50m}}}}}}\n",
        VERIFY_RELEASE
            .replace("verify: {enabled: true}\n", "")
            .replace(
                "verify: {expectFiles",
                "verify: {enabled: true, expectFiles"
            )
    ));
    assert_eq!(
        cronjob_names(&docs),
        [
            "rel-backup-ns-cache",
            "rel-backup-ns-files",
            "rel-backup-ns-files-verify",
            "rel-backup-ns-pg",
        ]
    );
    let cj = one(&docs, "CronJob", "rel-backup-ns-files-verify");
    assert_eq!(cj["spec"]["schedule"], "0 6 * * 6");
    assert_eq!(deadline(&docs, "rel-backup-ns-files-verify"), 3600 + 900);
    let c = container(cj, "backup-ns");
    assert_eq!(env_of(c, "BAK_VERIFY_TIMEOUT").as_deref(), Some("1h"));
    assert_eq!(c["resources"]["requests"]["cpu"], "50m");
    assert!(one(&docs, "Role", "rel-backup-ns-verify")["rules"].is_sequence());

    // An explicit deadline must exceed the timeout.
    let docs = render(&format!(
        "{VERIFY_RELEASE}\nverify: {{enabled: true, activeDeadlineSeconds: 4000}}\n"
    ));
    assert_eq!(deadline(&docs, "rel-backup-ns-pg-verify"), 4000);
    let err = render_err(&format!(
        "{VERIFY_RELEASE}\nverify: {{enabled: true, activeDeadlineSeconds: 1800}}\n"
    ));
    assert!(
        err.contains("verify.activeDeadlineSeconds=1800") && err.contains("(1800s)"),
        "{err}"
    );
    let err = render_err(&format!(
        "{VERIFY_RELEASE}\nverify: {{enabled: true, timeout: soon}}\n"
    ));
    assert!(err.contains("timeout"), "{err}");
    // What the binary would reject is rejected at install time.
    for bad in [
        "expect: ['SELECT 1']",
        "expectFiles: ['a,b']",
        "expekt: ['SELECT 1=1']",
    ] {
        let values = VERIFY_RELEASE.replace(
            "verify: {expectFiles: [index.html, \"a b/c.txt\"], image: \"busybox:1.37\"}",
            &format!("verify: {{{bad}}}"),
        );
        render_err(&values);
    }
}

#[test]
fn chart_verify_has_its_own_service_account_and_role_and_the_backup_role_is_unchanged() {
    let default_role = rules(one(
        &render(
            VERIFY_RELEASE
                .replace("verify: {enabled: true}\n", "")
                .as_str(),
        ),
        "Role",
        "rel-backup-ns",
    ));
    let docs = render(VERIFY_RELEASE);
    assert_eq!(rules(one(&docs, "Role", "rel-backup-ns")), default_role);
    assert!(!default_role
        .iter()
        .any(|r| r.2.iter().any(|v| v == "delete" && r.1 != "leases")));
    assert_eq!(
        rules(one(&docs, "Role", "rel-backup-ns-verify")),
        workbench_rules(&["get", "list", "patch"])
    );
    let binding = one(&docs, "RoleBinding", "rel-backup-ns-verify");
    assert_eq!(binding["roleRef"]["name"], "rel-backup-ns-verify");
    assert_eq!(binding["subjects"][0]["name"], "rel-backup-ns-verify");
    assert_eq!(binding["subjects"][0]["namespace"], "shop");
    one(&docs, "ServiceAccount", "rel-backup-ns-verify");
    assert_eq!(
        rules(one(&docs, "ClusterRole", "rel-backup-ns-shop-verify")),
        vec![triple("storage.k8s.io", "storageclasses", &["get"])]
    );
    let cb = one(&docs, "ClusterRoleBinding", "rel-backup-ns-shop-verify");
    assert_eq!(cb["subjects"][0]["name"], "rel-backup-ns-verify");
    // The backups still run as the release's ServiceAccount, which the verify Role is not bound to.
    for name in ["rel-backup-ns-pg", "rel-backup-ns-files"] {
        assert_eq!(
            pod_spec(one(&docs, "CronJob", name))["serviceAccountName"],
            "rel-backup-ns"
        );
    }
    // Without a created ServiceAccount the verify one must be named.
    let err = render_err(&format!(
        "{VERIFY_RELEASE}\nserviceAccount: {{create: false, name: bak}}\n"
    ));
    assert!(err.contains("verify.serviceAccountName"), "{err}");
    let docs = render(&format!(
        "{VERIFY_RELEASE}\nserviceAccount: {{create: false, name: bak}}\nverify: {{enabled: true, serviceAccountName: bak-verify}}\n"
    ));
    assert!(kind(&docs, "ServiceAccount").is_empty());
    assert_eq!(
        pod_spec(one(&docs, "CronJob", "rel-backup-ns-pg-verify"))["serviceAccountName"],
        "bak-verify"
    );
    assert_eq!(
        one(&docs, "RoleBinding", "rel-backup-ns-verify")["subjects"][0]["name"],
        "bak-verify"
    );
    // rbac.create false: no RBAC at all.
    let docs = render(&format!("{VERIFY_RELEASE}\nrbac: {{create: false}}\n"));
    assert!(kind(&docs, "Role").is_empty() && kind(&docs, "ClusterRole").is_empty());
}

#[test]
fn chart_one_cronjob_per_target_with_schedule_and_time_zone() {
    let docs = render(NAMESPACE_RELEASE);
    let mut names: Vec<_> = kind(&docs, "CronJob")
        .iter()
        .map(|c| s_owned(&c["metadata"]["name"]))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "rel-backup-ns-files",
            "rel-backup-ns-my",
            "rel-backup-ns-pg"
        ]
    );
    let schedule = |n: &str| s_owned(&one(&docs, "CronJob", n)["spec"]["schedule"]);
    assert_eq!(schedule("rel-backup-ns-pg"), "30 1 * * *");
    assert_eq!(schedule("rel-backup-ns-my"), "0 3 * * *");
    for cj in kind(&docs, "CronJob") {
        let spec = &cj["spec"];
        assert_eq!(spec["timeZone"], "Europe/Vienna");
        assert_eq!(spec["concurrencyPolicy"], "Forbid");
        assert_eq!(spec["jobTemplate"]["spec"]["backoffLimit"], 2);
        let c = container(cj, "backup-ns");
        assert_eq!(
            env_of(c, "TZ").as_deref(),
            Some("Europe/Vienna"),
            "TZ and timeZone agree"
        );
        assert_eq!(c["args"][0], "create");
        assert_eq!(pod_spec(cj)["restartPolicy"], "Never");
    }
    // No pruner in a namespace release, no backups in an empty one.
    assert!(render("").is_empty());
}

#[test]
fn chart_env_names_and_values() {
    let docs = render(NAMESPACE_RELEASE);
    let pg = container(one(&docs, "CronJob", "rel-backup-ns-pg"), "backup-ns");
    let mut got = env(pg);
    got.sort();
    let mut want: Vec<(String, String)> = [
        ("TZ", "Europe/Vienna"),
        ("BAK_LOG_FORMAT", "json"),
        ("BAK_NAMESPACE", "field:metadata.namespace"),
        ("BAK_LABEL_VS_POD", "field:metadata.name"),
        ("BAK_LABEL_VS_TYPE", "cronjob"),
        ("BAK_PVC_NAME", "data"),
        ("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly"),
        ("BAK_DB_POSTGRES", "true"),
        ("BAK_DB_POSTGRES_EXEC_RESOURCE", "deployment/postgres"),
        ("BAK_DB_POSTGRES_EXEC_CONTAINER", "postgres"),
        (
            "BAK_DB_POSTGRES_DUMP_FILE",
            "/var/lib/postgresql/data/dump.sql.gz",
        ),
        ("BAK_DB_POSTGRES_PASSWORD", "secret:pg/password"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(pg["envFrom"][0]["configMapRef"]["name"], "rel-backup-ns");

    let my = container(one(&docs, "CronJob", "rel-backup-ns-my"), "backup-ns");
    assert_eq!(env_of(my, "BAK_DB_MYSQL").as_deref(), Some("true"));
    assert_eq!(
        env_of(my, "BAK_DB_MYSQL_EXEC_RESOURCE").as_deref(),
        Some("statefulset/mysql")
    );
    assert_eq!(
        env_of(my, "BAK_DB_MYSQL_DEFAULT_CHARACTER_SET").as_deref(),
        Some("utf8mb4")
    );
    assert_eq!(env_of(my, "BAK_DB_POSTGRES"), None);
    assert_eq!(
        env_of(my, "BAK_DB_MYSQL_PASSWORD"),
        None,
        "default: the container's ${{MYSQL_ROOT_PASSWORD}}"
    );

    let files = container(one(&docs, "CronJob", "rel-backup-ns-files"), "backup-ns");
    assert_eq!(env_of(files, "BAK_DB_SKIP").as_deref(), Some("true"));
    assert_eq!(
        env_of(files, "BAK_LABEL_VS_RETAIN").as_deref(),
        Some("days")
    );
    assert_eq!(
        env_of(files, "BAK_LABEL_VS_RETAIN_DAYS").as_deref(),
        Some("14")
    );
    assert_eq!(
        env_of(files, "BAK_VS_CLASS_NAME").as_deref(),
        Some("csi-hostpath-snapclass")
    );
    assert!(env(files)
        .iter()
        .all(|(n, _)| !n.starts_with("BAK_DB_POSTGRES") && !n.starts_with("BAK_DB_MYSQL")));

    let cm = one(&docs, "ConfigMap", "rel-backup-ns");
    assert_eq!(cm["data"]["BAK_FLOCK"], "true");
    assert_eq!(cm["data"]["BAK_FLOCK_DIR"], "/mnt/host-backup-locks");
    assert_eq!(cm["data"]["BAK_FLOCK_TIMEOUT_SEC"], "3600");
    assert_eq!(cm["data"]["BAK_LABEL_VS_RETAIN"], "daily_weekly_monthly");
    // Every name the chart sets is one the binary reads (src/cli.rs), and no password is in it.
    let cli =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli.rs")).unwrap();
    let names = env(pg)
        .into_iter()
        .chain(env(my))
        .chain(env(files))
        .map(|(n, _)| n)
        .chain(cm["data"].as_mapping().unwrap().keys().map(s_owned));
    for n in names.filter(|n| n != "TZ") {
        assert!(
            cli.contains(&format!("env = \"{n}\"")),
            "{n} is not read by backup-ns"
        );
    }
    assert!(cm["data"]
        .as_mapping()
        .unwrap()
        .keys()
        .all(|k| !s(k).contains("PASSWORD")));
}

#[test]
fn chart_pods_run_non_root_read_only_and_lock_dir_is_a_host_path() {
    let docs = render(NAMESPACE_RELEASE);
    let cj = one(&docs, "CronJob", "rel-backup-ns-pg");
    let pod = pod_spec(cj);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = container(cj, "backup-ns");
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["image"], "ghcr.io/backup-ns/backup-ns:0.1.0");
    let locks = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "locks")
        .unwrap();
    assert_eq!(locks["hostPath"]["path"], "/tmp/backup-ns-locks");
    assert_eq!(locks["hostPath"]["type"], "DirectoryOrCreate");
    assert!(c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "locks" && m["mountPath"] == "/mnt/host-backup-locks"));

    let docs = render(&format!(
        "{NAMESPACE_RELEASE}\nnodeSelector: {{disk: ssd}}\n\
         tolerations: [{{key: backup, operator: Exists}}]\nimagePullSecrets: [{{name: reg}}]\n\
         podAnnotations: {{a: b}}\npodLabels: {{team: x}}\n"
    ));
    let cj = one(&docs, "CronJob", "rel-backup-ns-pg");
    let pod = pod_spec(cj);
    assert_eq!(pod["nodeSelector"]["disk"], "ssd");
    assert_eq!(pod["tolerations"][0]["key"], "backup");
    assert_eq!(pod["imagePullSecrets"][0]["name"], "reg");
    let meta = &cj["spec"]["jobTemplate"]["spec"]["template"]["metadata"];
    assert_eq!(meta["annotations"]["a"], "b");
    assert_eq!(meta["labels"]["team"], "x");

    let docs = render(&format!("{NAMESPACE_RELEASE}\nflock: {{enabled: false}}\n"));
    let cj = one(&docs, "CronJob", "rel-backup-ns-pg");
    assert!(!serde_yaml::to_string(pod_spec(cj))
        .unwrap()
        .contains("hostPath"));
    assert_eq!(
        one(&docs, "ConfigMap", "rel-backup-ns")["data"]["BAK_FLOCK"],
        "false"
    );
}

#[test]
fn chart_central_release_prunes_with_a_snapshot_only_cluster_role() {
    let docs = render("pruner: {enabled: true, maxDeletions: 50}\n");
    assert!(kind(&docs, "Role").is_empty() && kind(&docs, "RoleBinding").is_empty());
    let role = one(&docs, "ClusterRole", "rel-backup-ns-pruner");
    assert_eq!(
        rules(role),
        vec![
            triple("", "events", &["create"]),
            triple(
                "snapshot.storage.k8s.io",
                "volumesnapshotcontents",
                &["get", "list", "patch"]
            ),
            triple(
                "snapshot.storage.k8s.io",
                "volumesnapshots",
                &["delete", "get", "list", "patch"]
            ),
        ]
    );
    let binding = one(&docs, "ClusterRoleBinding", "rel-backup-ns-pruner");
    assert_eq!(binding["subjects"][0]["name"], "rel-backup-ns-pruner");
    assert_eq!(binding["subjects"][0]["namespace"], "shop");

    let pruner = one(&docs, "CronJob", "rel-backup-ns-pruner");
    let pod = pod_spec(pruner);
    assert_eq!(pod["serviceAccountName"], "rel-backup-ns-pruner");
    // Issue 7 C4/D: one `prune` container, no retain init container whose one failing patch
    // would stop every deletion in the cluster.
    assert!(pod.get("initContainers").is_none(), "{pod:#?}");
    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    let prune = container(pruner, "prune");
    let args: Vec<&str> = prune["args"].as_sequence().unwrap().iter().map(s).collect();
    assert_eq!(args, ["prune", "--all-namespaces"]);
    assert_eq!(env_of(prune, "RETAIN_LAST_DAILY").as_deref(), Some("7"));
    assert_eq!(env_of(prune, "RETAIN_LAST_WEEKLY").as_deref(), Some("4"));
    assert_eq!(env_of(prune, "RETAIN_LAST_MONTHLY").as_deref(), Some("12"));
    assert_eq!(env_of(prune, "BAK_NAMESPACE"), None, "cluster-wide");
    assert_eq!(env_of(prune, "BAK_MAX_DELETIONS").as_deref(), Some("50"));
    assert_eq!(pruner["spec"]["schedule"], "0 4 * * *");
    assert_eq!(pruner["spec"]["timeZone"], "Etc/UTC");
    assert_eq!(pruner["spec"]["concurrencyPolicy"], "Forbid");

    let sync = one(&docs, "CronJob", "rel-backup-ns-pruner-sync-labels");
    assert_eq!(container(sync, "sync-labels")["args"][0], "sync-labels");
    assert_eq!(kind(&docs, "CronJob").len(), 2);
}

/// The kubelet creates a missing hostPath directory root-owned 0755, where the backup container
/// (uid 65532) cannot create its lock files: on a node nobody prepared, every backup failed. By
/// default an init container makes the directory 1777 first, as root with FOWNER only, while
/// the backup container stays non-root; clusters that forbid root turn it off.
#[test]
fn chart_lock_dir_is_made_writable_by_default_by_a_root_init_container_with_only_fowner() {
    let docs = render(NAMESPACE_RELEASE);
    for cj in kind(&docs, "CronJob") {
        let pod = pod_spec(cj);
        let inits = pod["initContainers"]
            .as_sequence()
            .unwrap_or_else(|| panic!("no init container by default: {pod:#?}"));
        assert_eq!(inits.len(), 1, "{inits:#?}");
        let init = &inits[0];
        assert_eq!(init["name"], "lock-dir");
        assert_eq!(init["image"], "busybox:1.37");
        let command: Vec<&str> = init["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(s)
            .collect();
        assert_eq!(command, ["chmod", "1777", "/mnt/host-backup-locks"]);
        assert_eq!(init["volumeMounts"][0]["name"], "locks");
        assert_eq!(
            init["volumeMounts"][0]["mountPath"],
            "/mnt/host-backup-locks"
        );
        let locks = pod["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "locks")
            .unwrap();
        assert_eq!(locks["hostPath"]["type"], "DirectoryOrCreate");

        let sc = &init["securityContext"];
        assert_eq!(sc["runAsUser"], 0, "chmod of a root-owned directory");
        assert_eq!(
            sc["runAsNonRoot"], false,
            "overrides the pod's runAsNonRoot"
        );
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["privileged"], false);
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_yaml::from_str::<Value>("[ALL]").unwrap()
        );
        assert_eq!(
            sc["capabilities"]["add"],
            serde_yaml::from_str::<Value>("[FOWNER]").unwrap(),
            "only what chmod of a directory someone else owns needs"
        );
        assert!(init["resources"]["limits"]["memory"].is_string());

        // The backup container is still non-root (the pod's 65532).
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], 65532);
        let main = container(cj, "backup-ns");
        assert_eq!(main["securityContext"]["runAsNonRoot"], true);
        assert!(main["securityContext"].get("runAsUser").is_none());
        assert!(main["securityContext"]["capabilities"].get("add").is_none());
    }

    // Turned off (policy forbids root: prepare the nodes), or no lock at all: no init container.
    for values in [
        "flock: {initContainer: {enabled: false}}",
        "flock: {enabled: false}",
    ] {
        let docs = render(&format!("{NAMESPACE_RELEASE}\n{values}\n"));
        for cj in kind(&docs, "CronJob") {
            assert!(
                pod_spec(cj).get("initContainers").is_none(),
                "{values}: {:#?}",
                pod_spec(cj)
            );
        }
    }
    let docs = render(&format!(
        "{NAMESPACE_RELEASE}\nflock: {{initContainer: {{enabled: false}}}}\n"
    ));
    let pod = pod_spec(one(&docs, "CronJob", "rel-backup-ns-pg"));
    assert!(pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|v| v["name"] == "locks"));
}

fn deadline(docs: &[Value], cronjob: &str) -> u64 {
    one(docs, "CronJob", cronjob)["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .unwrap_or_else(|| panic!("{cronjob}: no activeDeadlineSeconds"))
}

/// The Job's deadline was 3h, the default dump timeout alone: a long dump was killed by the Job
/// (DeadlineExceeded, no snapshot, no word of why) before backup-ns's own timeouts could fire.
/// It now exceeds the lock wait + dump + snapshot wait (+ Lease wait) of each backup.
#[test]
fn chart_job_deadline_exceeds_the_backups_own_timeouts() {
    const FLOCK: u64 = 3600; // flock.timeoutSec
    const DUMP: u64 = 3 * 3600; // the binary's default BAK_DB_DUMP_TIMEOUT
    const WAIT: u64 = 15 * 60; // config.BAK_VS_WAIT_UNTIL_READY_TIMEOUT

    let docs = render(NAMESPACE_RELEASE);
    for (cj, longest) in [
        ("rel-backup-ns-pg", FLOCK + DUMP + WAIT),
        ("rel-backup-ns-my", FLOCK + DUMP + WAIT),
        ("rel-backup-ns-files", FLOCK + WAIT),
    ] {
        let d = deadline(&docs, cj);
        assert!(d > longest, "{cj}: activeDeadlineSeconds {d} <= {longest}");
        assert!(d <= longest + 3600, "{cj}: {d} is far beyond {longest}");
    }

    // A custom dump timeout (the backup's own field, the release's config), a longer snapshot
    // wait, a Lease wait: each counts.
    let docs = render(&format!(
        "{NAMESPACE_RELEASE}\nconfig: {{BAK_DB_DUMP_TIMEOUT: 6h, BAK_VS_WAIT_UNTIL_READY_TIMEOUT: 1h, \
         BAK_LEASE_WAIT: 'true', BAK_LEASE_WAIT_TIMEOUT: 2h}}\n"
    ));
    assert!(deadline(&docs, "rel-backup-ns-my") > 2 * 3600 + FLOCK + 6 * 3600 + 3600);
    assert!(deadline(&docs, "rel-backup-ns-files") > 2 * 3600 + FLOCK + 3600);
    let docs = render(&NAMESPACE_RELEASE.replace(
        "    retain: daily_weekly_monthly\n    passwordSecret",
        "    retain: daily_weekly_monthly\n    dumpTimeout: 8h\n    passwordSecret",
    ));
    assert!(deadline(&docs, "rel-backup-ns-pg") > FLOCK + 8 * 3600 + WAIT);
    assert!(deadline(&docs, "rel-backup-ns-my") < FLOCK + 8 * 3600 + WAIT);

    // An explicit deadline is used when it is long enough, and refused with the sum otherwise.
    let docs = render(&format!(
        "{NAMESPACE_RELEASE}\njob: {{activeDeadlineSeconds: 30000}}\n"
    ));
    assert_eq!(deadline(&docs, "rel-backup-ns-pg"), 30000);
    let err = render_err(&format!(
        "{NAMESPACE_RELEASE}\njob: {{activeDeadlineSeconds: 10800}}\n"
    ));
    assert!(
        err.contains("job.activeDeadlineSeconds=10800")
            && err.contains("backups[0] (pg)")
            && err.contains(&format!("= {}s", FLOCK + DUMP + WAIT)),
        "{err}"
    );
    // A timeout the deadline cannot be derived from is named, not silently taken as 0.
    let err = render_err(&format!(
        "{NAMESPACE_RELEASE}\nconfig: {{BAK_VS_WAIT_UNTIL_READY_TIMEOUT: soon}}\n"
    ));
    assert!(
        err.contains("BAK_VS_WAIT_UNTIL_READY_TIMEOUT") && err.contains("\"soon\""),
        "{err}"
    );

    // The pruner's Jobs have their own deadline.
    let docs = render("pruner: {enabled: true, activeDeadlineSeconds: 1800}\n");
    assert_eq!(deadline(&docs, "rel-backup-ns-pruner"), 1800);
    assert_eq!(deadline(&docs, "rel-backup-ns-pruner-sync-labels"), 1800);
}

/// The FailJob rules of a CronJob's podFailurePolicy: (containerName, exit codes).
fn fail_job_rules(cronjob: &Value) -> Vec<(Option<String>, Vec<u64>)> {
    let job = &cronjob["spec"]["jobTemplate"]["spec"];
    job["podFailurePolicy"]["rules"]
        .as_sequence()
        .unwrap_or_else(|| panic!("no podFailurePolicy: {job:#?}"))
        .iter()
        .filter(|r| r["action"] == "FailJob")
        .map(|r| {
            let on = &r["onExitCodes"];
            assert_eq!(on["operator"], "In", "{r:?}");
            let codes = on["values"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            (on.get("containerName").map(s_owned), codes)
        })
        .collect()
}

/// Exit 2 (bad setting) and 4 (another run holds this PVC's Lease) were retried backoffLimit
/// times for nothing; the Job now fails at once on them.
#[test]
fn chart_job_fails_at_once_on_bad_configuration_and_busy_pvc() {
    let docs = render(NAMESPACE_RELEASE);
    for cj in kind(&docs, "CronJob") {
        assert_eq!(
            fail_job_rules(cj),
            [(Some("backup-ns".to_owned()), vec![2, 4])]
        );
        assert_eq!(
            pod_spec(cj)["restartPolicy"],
            "Never",
            "podFailurePolicy needs it"
        );
        assert_eq!(cj["spec"]["jobTemplate"]["spec"]["backoffLimit"], 2);
        // A node drain's eviction is retried without using up backoffLimit; `status` spelt out
        // for API servers whose OpenAPI still requires it (a helm install validates against it).
        let rules = &cj["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"];
        let ignore = rules
            .as_sequence()
            .unwrap()
            .iter()
            .find(|r| r["action"] == "Ignore")
            .unwrap();
        assert_eq!(ignore["onPodConditions"][0]["type"], "DisruptionTarget");
        assert_eq!(ignore["onPodConditions"][0]["status"], "True");
    }
    let docs = render("pruner: {enabled: true}\n");
    for cj in kind(&docs, "CronJob") {
        assert_eq!(fail_job_rules(cj), [(None, vec![2])]);
        assert_eq!(pod_spec(cj)["restartPolicy"], "Never");
    }
}

#[test]
fn chart_schema_rejects_typos_and_wrong_types() {
    let err = render_err("backups: [{name: db, pvc: data, db: postgres, shedule: '0 1 * * *'}]\n");
    assert!(err.contains("shedule"), "{err}");
    let err = render_err("confg: {}\n");
    assert!(err.contains("confg"), "{err}");
    let err = render_err("config: {BAK_VS_CLAS_NAME: x}\n");
    assert!(
        err.contains("BAK_VS_CLAS_NAME") || err.contains("config"),
        "{err}"
    );
    let err = render_err("job: {backoffLimit: two}\n");
    assert!(err.contains("backoffLimit"), "{err}");
    let err = render_err("backups: [{name: db, pvc: data, db: postgresql}]\n");
    assert!(err.contains("db"), "{err}");
    let err = render_err("backups: [{name: db, pvc: data}]\n");
    assert!(err.contains("db"), "{err}");
    let err = render_err("pruner: {enabled: yes-please}\n");
    assert!(err.contains("enabled"), "{err}");
    render_err("backups: [{name: db, pvc: data, db: skip, execResource: deployment/x}]\n");
}

#[test]
fn chart_helm_lint_is_clean() {
    for values in ["", NAMESPACE_RELEASE, "pruner: {enabled: true}\n"] {
        let out = helm(&["lint", "--strict"], values);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success()
                && text.contains("0 chart(s) failed")
                && !text.contains("[WARNING]"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics (README "Monitoring")

const METRICS_RELEASE: &str = r#"
backups:
  - {name: pg, pvc: data, db: postgres}
  - {name: files, pvc: uploads, db: skip}
pruner: {enabled: true}
metrics:
  pushgateway: http://pushgateway.monitoring:9091
  textfile: {enabled: true, hostPath: /var/lib/node-exporter/textfile}
"#;

fn volume<'a>(cronjob: &'a Value, name: &str) -> Option<&'a Value> {
    pod_spec(cronjob)["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == name)
}

fn mounts(c: &Value) -> Vec<(String, String)> {
    c["volumeMounts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|m| (s_owned(&m["name"]), s_owned(&m["mountPath"])))
        .collect()
}

#[test]
fn chart_metrics_are_off_by_default() {
    let docs = render(&format!("{NAMESPACE_RELEASE}pruner: {{enabled: true}}\n"));
    for cj in kind(&docs, "CronJob") {
        let spec = pod_spec(cj);
        for c in spec["containers"].as_sequence().unwrap() {
            let names: Vec<String> = env(c).into_iter().map(|(n, _)| n).collect();
            assert!(
                !names.iter().any(|n| n.starts_with("BAK_METRICS_")),
                "{names:?}"
            );
        }
        assert!(volume(cj, "metrics-textfile").is_none());
    }
}

#[test]
fn chart_metrics_go_to_the_pushgateway_and_a_textfile_per_cronjob() {
    let docs = render(METRICS_RELEASE);
    let mut files = Vec::new();
    for (cronjob, c) in [
        ("rel-backup-ns-pg", "backup-ns"),
        ("rel-backup-ns-files", "backup-ns"),
        ("rel-backup-ns-pruner", "prune"),
    ] {
        let cj = one(&docs, "CronJob", cronjob);
        let main = container(cj, c);
        assert_eq!(
            env_of(main, "BAK_METRICS_PUSHGATEWAY").as_deref(),
            Some("http://pushgateway.monitoring:9091"),
            "{cronjob}"
        );
        let file = env_of(main, "BAK_METRICS_TEXTFILE").expect("BAK_METRICS_TEXTFILE");
        assert_eq!(file, format!("/mnt/metrics-textfile/shop_{cronjob}.prom"));
        files.push(file);
        assert!(
            mounts(main).contains(&("metrics-textfile".into(), "/mnt/metrics-textfile".into())),
            "{cronjob}: {:?}",
            mounts(main)
        );
        let v = volume(cj, "metrics-textfile").expect("the textfile volume");
        assert_eq!(v["hostPath"]["path"], "/var/lib/node-exporter/textfile");
        assert_eq!(v["hostPath"]["type"], "DirectoryOrCreate");
        // The kubelet creates the directory root-owned 0755: made writable as the lock
        // directory is, by root with FOWNER only.
        let init = container(cj, "metrics-dir");
        let cmd: Vec<&str> = init["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(s)
            .collect();
        assert_eq!(cmd, ["chmod", "1777", "/mnt/metrics-textfile"]);
        assert_eq!(init["securityContext"]["capabilities"]["add"][0], "FOWNER");
        assert_eq!(init["securityContext"]["allowPrivilegeEscalation"], false);
        // The main container stays non-root.
        assert_eq!(main["securityContext"]["runAsNonRoot"], true);
    }
    // One file per CronJob: node-exporter rejects the same series from two files.
    let unique: std::collections::BTreeSet<_> = files.iter().collect();
    assert_eq!(unique.len(), files.len(), "{files:?}");
    // sync-labels writes no metrics.
    let sync = one(&docs, "CronJob", "rel-backup-ns-pruner-sync-labels");
    assert_eq!(
        env_of(container(sync, "sync-labels"), "BAK_METRICS_PUSHGATEWAY"),
        None
    );
}

#[test]
fn chart_metrics_pushgateway_url_can_come_from_a_secret() {
    let docs = render(
        "backups: [{name: pg, pvc: data, db: postgres}]\n\
         metrics: {pushgatewaySecret: {name: pgw, key: url}}\n",
    );
    let cj = one(&docs, "CronJob", "rel-backup-ns-pg");
    assert_eq!(
        env_of(container(cj, "backup-ns"), "BAK_METRICS_PUSHGATEWAY").as_deref(),
        Some("secret:pgw/url")
    );
    assert!(volume(cj, "metrics-textfile").is_none());
    // The textfile without the init container: the directory is prepared on the nodes.
    let docs = render(
        "backups: [{name: pg, pvc: data, db: postgres}]\n\
         metrics: {textfile: {enabled: true, initContainer: false}}\n",
    );
    let cj = one(&docs, "CronJob", "rel-backup-ns-pg");
    let inits: Vec<&Value> = pod_spec(cj)["initContainers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter(|c| c["name"] == "metrics-dir")
        .collect();
    assert!(inits.is_empty());
    assert!(volume(cj, "metrics-textfile").is_some());
}

#[test]
fn chart_schema_rejects_bad_metrics_values() {
    let err = render_err("metrics: {pushgateway: 'pushgateway:9091'}\n");
    assert!(err.contains("pushgateway"), "{err}");
    let err = render_err("metrics: {textfile: {enabled: true, hostPath: relative}}\n");
    assert!(err.contains("hostPath"), "{err}");
    let err = render_err("metrics: {pushgatewaySecret: {name: pgw}}\n");
    assert!(err.contains("key"), "{err}");
    let err = render_err("metrics: {textfle: {}}\n");
    assert!(err.contains("textfle"), "{err}");
}

/// Issue 9: notification URLs reach the backup containers only from Secrets.
#[test]
fn chart_notifications_come_from_secrets() {
    let docs = render(NAMESPACE_RELEASE);
    for cj in kind(&docs, "CronJob") {
        let c = &pod_spec(cj)["containers"][0];
        assert_eq!(env_of(c, "BAK_NOTIFY_URL"), None, "off by default");
    }
    let docs = render(&format!(
        "{NAMESPACE_RELEASE}\nnotify:\n  urlSecret: {{name: hooks, key: url}}\n  when: always\n  \
         format: slack\n  healthcheckSecret: {{name: hc, key: ping}}\n"
    ));
    for cj in kind(&docs, "CronJob") {
        let c = &pod_spec(cj)["containers"][0];
        let var = |name: &str| {
            c["env"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|e| e["name"] == name)
                .unwrap_or_else(|| panic!("{name}"))
                .clone()
        };
        assert_eq!(
            var("BAK_NOTIFY_URL")["valueFrom"]["secretKeyRef"]["name"],
            "hooks"
        );
        assert!(var("BAK_NOTIFY_URL").get("value").is_none());
        assert_eq!(
            var("BAK_HEALTHCHECK_URL")["valueFrom"]["secretKeyRef"]["key"],
            "ping"
        );
        assert_eq!(env_of(c, "BAK_NOTIFY_ON").as_deref(), Some("always"));
        assert_eq!(env_of(c, "BAK_NOTIFY_FORMAT").as_deref(), Some("slack"));
    }
    let err = render_err(&format!(
        "{NAMESPACE_RELEASE}\nnotify:\n  urlSecret: {{name: hooks}}\n"
    ));
    assert!(err.contains("key"), "{err}");
}

/// Issue 9 §2: the central release can run `status -A` on a schedule; only then does its
/// ClusterRole list PVCs.
#[test]
fn chart_status_cronjob_is_opt_in_and_reads_pvcs() {
    let docs = render("pruner: {enabled: true}\n");
    assert!(
        !rules(one(&docs, "ClusterRole", "rel-backup-ns-pruner"))
            .iter()
            .any(|r| r.1 == "persistentvolumeclaims"),
        "no PVC rights by default"
    );
    assert_eq!(kind(&docs, "CronJob").len(), 2);
    let docs = render(
        "pruner: {enabled: true, status: {enabled: true, maxAge: 30h}}\nmetrics: {pushgateway: \
         'http://pushgateway.monitoring:9091'}\n",
    );
    let rules = rules(one(&docs, "ClusterRole", "rel-backup-ns-pruner"));
    assert!(rules.contains(&(
        String::new(),
        "persistentvolumeclaims".into(),
        vec!["list".into()]
    )));
    let status = one(&docs, "CronJob", "rel-backup-ns-pruner-status");
    let c = container(status, "status");
    let args: Vec<&str> = c["args"].as_sequence().unwrap().iter().map(s).collect();
    assert_eq!(args, ["status", "--all-namespaces"]);
    assert_eq!(env_of(c, "BAK_STATUS_MAX_AGE").as_deref(), Some("30h"));
    assert_eq!(
        env_of(c, "BAK_METRICS_PUSHGATEWAY").as_deref(),
        Some("http://pushgateway.monitoring:9091")
    );
    assert_eq!(status["spec"]["jobTemplate"]["spec"]["backoffLimit"], 0);
    assert!(render_err("pruner: {enabled: true, status: {maxAge: 2d}}\n").contains("maxAge"));
}
