//! The places that repeat the settings table, held to it: the clap arguments, the README's
//! tables and the chart's `values.schema.json`.
//!
//! `BACKUP_NS_BLESS=1 cargo test --lib settings::drift` rewrites the README's two tables from
//! the table; every other mismatch has to be fixed by hand.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::CommandFactory;
use serde_json::Value;

use super::table::{self, ChartValue, Kind, Scope, SettingSpec, OPTIONS, SETTINGS};
use crate::cli::Cli;

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

// ---------------------------------------------------------------------------------------------
// clap

/// `(subcommand, var, long, short)` of every clap argument backed by a variable; the global
/// flags as subcommand `""`, `controller syncMetadataToVsc` as `sync-labels` (the same args).
fn clap_args() -> BTreeSet<(String, String, String, Option<char>)> {
    let cli = Cli::command();
    let mut out = BTreeSet::new();
    let mut add = |cmd: &str, arg: &clap::Arg| {
        if let Some(env) = arg.get_env() {
            out.insert((
                cmd.to_owned(),
                env.to_string_lossy().into_owned(),
                arg.get_long().unwrap_or_default().to_owned(),
                arg.get_short(),
            ));
        }
    };
    for arg in cli.get_arguments().filter(|a| a.is_global_set()) {
        add("", arg);
    }
    // Nested subcommands as `parent child` (`restore pvc`), except the original's alias.
    let mut stack: Vec<(String, &clap::Command)> = cli
        .get_subcommands()
        .map(|s| (s.get_name().to_owned(), s))
        .collect();
    while let Some((name, sub)) = stack.pop() {
        let name = match sub.get_name() {
            "syncMetadataToVsc" => "sync-labels".to_owned(),
            _ => name,
        };
        for arg in sub.get_arguments().filter(|a| !a.is_global_set()) {
            add(&name, arg);
        }
        stack.extend(
            sub.get_subcommands()
                .map(|s| (format!("{name} {}", s.get_name()), s)),
        );
    }
    out
}

/// What the table says the clap arguments are.
fn table_args() -> BTreeSet<(String, String, String, Option<char>)> {
    let mut out = BTreeSet::new();
    for s in SETTINGS.iter().chain(OPTIONS) {
        let commands: Vec<&str> = match s.scope {
            Scope::Create => crate::settings::table::CREATE_COMMANDS.to_vec(),
            Scope::Global => vec![""],
            Scope::Commands => s.commands.to_vec(),
        };
        for c in commands {
            out.insert((c.to_owned(), s.var.to_owned(), s.long.to_owned(), s.short));
        }
    }
    out
}

#[test]
fn every_clap_argument_has_a_row_and_every_row_an_argument() {
    let clap = clap_args();
    let table = table_args();
    let missing_rows: Vec<_> = clap.difference(&table).collect();
    let missing_args: Vec<_> = table.difference(&clap).collect();
    assert!(
        missing_rows.is_empty() && missing_args.is_empty(),
        "clap arguments without a matching row in src/settings/table.rs \
         (subcommand, variable, long flag, short flag): {missing_rows:#?}\n\
         rows without a matching clap argument: {missing_args:#?}"
    );
}

#[test]
fn secrets_are_hidden_from_help_and_out_of_the_env_config_annotation() {
    let cli = Cli::command();
    let create = cli.find_subcommand("create").expect("create");
    for s in SETTINGS.iter().filter(|s| s.scope == Scope::Create) {
        let arg = create
            .get_arguments()
            .find(|a| a.get_long() == Some(s.long))
            .unwrap_or_else(|| panic!("--{}", s.long));
        assert_eq!(arg.is_hide_env_values_set(), s.secret, "{}", s.var);
    }
    // The annotation keeps the original's rule (no name with PASSWORD); every secret row is
    // caught by it, every other BAK_* row is recorded.
    let vars = SETTINGS
        .iter()
        .chain(OPTIONS)
        .map(|s| (s.var.to_owned(), "x".to_owned()));
    let annotation = crate::labels::env_config_annotation(vars);
    for s in SETTINGS.iter().chain(OPTIONS) {
        assert_eq!(
            annotation.contains(&format!("{}='x'", s.var)),
            s.var.starts_with("BAK_") && !s.secret,
            "{}",
            s.var
        );
    }
}

// ---------------------------------------------------------------------------------------------
// README

/// The README's table starting with `header` (up to the first line that is not a row).
fn readme_table(readme: &str, header: &str) -> Option<(usize, usize)> {
    let start = readme.find(header)?;
    let len: usize = readme[start..]
        .split_inclusive('\n')
        .take_while(|l| l.starts_with('|'))
        .map(str::len)
        .sum();
    Some((start, start + len))
}

#[test]
fn the_readme_tables_are_the_settings_table() {
    let path = repo_file("README.md");
    let mut readme = std::fs::read_to_string(&path).expect("README.md");
    let mut stale = Vec::new();
    for (header, expected) in [
        (
            "| variable | flag | default | meaning |",
            table::readme_create_table(),
        ),
        (
            "| flag | variable | default | commands | meaning |",
            table::readme_options_table(),
        ),
    ] {
        let (start, end) =
            readme_table(&readme, header).unwrap_or_else(|| panic!("README has no {header}"));
        if readme[start..end] != expected {
            stale.push(format!(
                "README:\n{}\ntable:\n{expected}",
                &readme[start..end]
            ));
            readme.replace_range(start..end, &expected);
        }
    }
    if std::env::var_os("BACKUP_NS_BLESS").is_some() {
        std::fs::write(&path, readme).expect("write README.md");
        return;
    }
    assert!(
        stale.is_empty(),
        "README.md's settings tables differ from src/settings/table.rs \
         (BACKUP_NS_BLESS=1 cargo test --lib settings::drift rewrites them):\n{}",
        stale.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Chart schema

fn schema() -> Value {
    let text = std::fs::read_to_string(repo_file("charts/backup-ns/values.schema.json"))
        .expect("values.schema.json");
    serde_json::from_str(&text).expect("values.schema.json is JSON")
}

/// The schema node of a values path such as `backups[].pvc`.
fn node<'a>(schema: &'a Value, path: &str) -> &'a Value {
    let mut n = schema;
    for part in path.split('.') {
        let (name, item) = match part.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (part, false),
        };
        n = &n["properties"][name];
        if item {
            n = &n["items"];
        }
        assert!(!n.is_null(), "no schema for {path}");
    }
    n
}

fn config_names(schema: &Value, path: &str) -> BTreeSet<String> {
    node(schema, path)["propertyNames"]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: propertyNames.enum"))
        .iter()
        .map(|v| v.as_str().expect("a name").to_owned())
        .collect()
}

#[test]
fn the_chart_config_maps_take_exactly_the_settings_the_table_allows_there() {
    let schema = schema();
    let expected: BTreeSet<String> = SETTINGS
        .iter()
        .filter(|s| s.chart_config)
        .map(|s| s.var.to_owned())
        .collect();
    for path in ["config", "backups[].env"] {
        assert_eq!(config_names(&schema, path), expected, "{path}");
    }
}

/// Whether a value passes the schema node, for the keywords the chart's settings use (`type`,
/// `enum`, `pattern`, `minLength`, `maxLength`, `minimum`, `maximum`, `not`). Patterns are
/// searched, not anchored, as JSON Schema says.
fn schema_accepts(n: &Value, v: &Value) -> bool {
    let types: Vec<&str> = match &n["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let type_ok = types.is_empty()
        || types.iter().any(|t| match *t {
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "boolean" => v.is_boolean(),
            _ => false,
        });
    if !type_ok {
        return false;
    }
    if let Some(values) = n["enum"].as_array() {
        if !values.contains(v) {
            return false;
        }
    }
    if let Some(s) = v.as_str() {
        let chars = s.chars().count() as u64;
        if n["minLength"].as_u64().is_some_and(|m| chars < m)
            || n["maxLength"].as_u64().is_some_and(|m| chars > m)
        {
            return false;
        }
        if let Some(p) = n["pattern"].as_str() {
            let re = regex::Regex::new(p).unwrap_or_else(|e| panic!("pattern {p:?}: {e}"));
            if !re.is_match(s) {
                return false;
            }
        }
    }
    if let Some(i) = v.as_i64() {
        if n["minimum"].as_i64().is_some_and(|m| i < m)
            || n["maximum"].as_i64().is_some_and(|m| i > m)
        {
            return false;
        }
    }
    if n["not"].is_object() && schema_accepts(&n["not"], v) {
        return false;
    }
    true
}

/// The ways a sample can be written in values.yaml that the node's `type` allows (an integer
/// as a number and, where strings are allowed too, quoted).
fn representations(n: &Value, sample: &str) -> Vec<Value> {
    let allows = |t: &str| match &n["type"] {
        Value::String(s) => s == t,
        Value::Array(ts) => ts.iter().any(|x| x == t),
        _ => true,
    };
    let mut out = Vec::new();
    if allows("integer") {
        if let Ok(i) = sample.parse::<i64>() {
            out.push(Value::from(i));
        }
    }
    if allows("boolean") {
        if let Ok(b) = sample.parse::<bool>() {
            out.push(Value::from(b));
        }
    }
    if out.is_empty() || allows("string") {
        out.push(Value::from(sample));
    }
    out
}

/// Values worth trying for a kind: the boundaries of what the parser takes.
fn samples(kind: Kind) -> Vec<String> {
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match kind {
        Kind::Bool => strs(&["true", "false", "yes", ""]),
        Kind::Duration { .. } => strs(&[
            "15m", "1h30m", "90s", "1.5h", ".5h", "250ms", "3h", "10us", "2d", "1w", "15", "0",
            "0s", "0.0m", "1h30", "m", "1.2.3h", "",
        ]),
        Kind::Int { min, max } => {
            let mut v = vec![
                min.to_string(),
                max.to_string(),
                (max + 1).to_string(),
                "abc".into(),
                "1.5".into(),
                "-1".into(),
                String::new(),
            ];
            if min > 0 {
                v.push((min - 1).to_string());
            }
            v
        }
        Kind::Enum(values) => {
            let mut v = strs(values);
            v.extend(strs(&["weekly", "Days", ""]));
            v
        }
        Kind::Dns1123Label => strs(&[
            "postgres",
            &"a".repeat(63),
            &"a".repeat(64),
            "Postgres",
            "-x",
            "x-",
            "a.b",
            "a_b",
            "",
        ]),
        Kind::Dns1123Subdomain => strs(&[
            "csi-hostpath-snapclass",
            "a.b",
            &"a".repeat(253),
            &"a".repeat(254),
            "a..b",
            "a.-b",
            "A",
            "-a",
            "",
        ]),
        Kind::PvcName => strs(&[
            "data",
            "data-1.old",
            &"a".repeat(63),
            &"a".repeat(64),
            "a..b",
            "a.-b",
            "Data",
            "-x",
            "a_b",
            "",
        ]),
        Kind::ExecResource => strs(&[
            "deployment/app-base",
            "deploy/x",
            "deployments.apps/x",
            "Deployment/x",
            "x",
            "pod/x",
            "po/x",
            "sts/x",
            "statefulsets.apps/x",
            "rs/x",
            "ds/x",
            "daemonset/x",
            "job/x",
            "jobs.batch/x",
            "rc/x",
            "svc/x",
            "service/a.b",
            "cronjob/x",
            "deployment.batch/x",
            "deploy/",
            "deploy/X",
            "a/b/c",
            "/x",
            "",
        ]),
        Kind::AbsPath => strs(&["/var/lib/x.gz", "/x", "relative", "/", "/dir/", "/a\nb", ""]),
        Kind::LocalPath => strs(&["dump.sql.gz", "/tmp/x.gz", "-", ""]),
        Kind::Host => strs(&[
            "127.0.0.1",
            "db.example",
            "::1",
            "-x",
            "a b",
            " x",
            "a\tb",
            "",
        ]),
        Kind::ValueRef => strs(&["${POSTGRES_USER}", "app", "it's", "a\nb", ""]),
        Kind::Charset => strs(&["utf8mb4", "latin1", "utf-8", "utf8 mb4", ""]),
        Kind::Float { .. }
        | Kind::LabelValue
        | Kind::Rand
        | Kind::Template
        | Kind::TimeZone
        | Kind::Url => {
            vec![]
        }
    }
}

/// Whether the binary takes `value` for the setting, parsed exactly as a run would parse it:
/// the command line through clap, then the command's validation.
fn binary_accepts(s: &SettingSpec, value: &str) -> bool {
    let flag = format!("--{}={value}", s.long);
    let mut argv = vec!["backup-ns".to_owned()];
    match s.scope {
        Scope::Create | Scope::Global => {
            argv.push("env".into());
            argv.push(
                if s.var.starts_with("BAK_DB_MYSQL") {
                    "--mysql"
                } else if s.var.starts_with("BAK_DB_") && s.var != "BAK_DB_DUMP_TIMEOUT" {
                    "--postgres"
                } else {
                    "--db-skip"
                }
                .into(),
            );
        }
        Scope::Commands => argv.push(s.commands[0].into()),
    }
    argv.push(flag);
    let Ok(cli) = Cli::try_parse_from_clean(&argv) else {
        return false;
    };
    use crate::cli::Command;
    use crate::commands::options::{RetainOptions, SweepOptions};
    match cli.command {
        Command::Env(a) => super::Settings::from_args(&a, None, 4).is_ok(),
        Command::Prune(a) => RetainOptions::for_prune(&a, None).is_ok(),
        Command::Retain(a) => RetainOptions::from_args(&a, None).is_ok(),
        Command::MarkAndDelete(a) => SweepOptions::from_args(&a, None).is_ok(),
        other => panic!("no parser for {other:?}"),
    }
}

impl Cli {
    /// Parses `argv` as the binary does, minus the environment: clap reads `BAK_*` variables
    /// of the test process otherwise.
    fn try_parse_from_clean(argv: &[String]) -> Result<Cli, clap::Error> {
        use clap::FromArgMatches;
        let mut cmd = Cli::command();
        cmd = cmd.mut_args(|a| a.env(None::<&str>));
        cmd = cmd.mut_subcommands(|sub| {
            sub.mut_args(|a| a.env(None::<&str>))
                .mut_subcommands(|s| s.mut_args(|a| a.env(None::<&str>)))
        });
        let matches = cmd.try_get_matches_from(argv)?;
        Cli::from_arg_matches(&matches)
    }
}

#[test]
fn the_chart_schema_accepts_and_rejects_what_the_binary_does() {
    let schema = schema();
    let mut disagreements = Vec::new();
    let mut checked = 0;
    for s in SETTINGS.iter().chain(OPTIONS) {
        for &ChartValue {
            path,
            empty_is_default,
        } in s.chart
        {
            let n = node(&schema, path);
            for sample in samples(s.kind) {
                // `{{- with … }}` renders nothing for an empty value: the setting's default.
                if sample.is_empty() && empty_is_default {
                    continue;
                }
                let binary = binary_accepts(s, &sample);
                for v in representations(n, &sample) {
                    checked += 1;
                    if schema_accepts(n, &v) != binary {
                        disagreements.push(format!(
                            "{path} = {v} ({}): the binary {} it, the schema does not",
                            s.var,
                            if binary { "takes" } else { "rejects" },
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} checks");
    assert!(
        disagreements.is_empty(),
        "charts/backup-ns/values.schema.json disagrees with the settings parser:\n{}",
        disagreements.join("\n")
    );
}

#[test]
fn the_exec_resource_pattern_is_generated_from_the_kinds() {
    let schema = schema();
    assert_eq!(
        node(&schema, "backups[].execResource")["pattern"],
        super::exec_resource_pattern(),
        "regenerate with settings::exec_resource_pattern()"
    );
}
