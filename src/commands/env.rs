//! `backup-ns env`: the effective settings, secrets redacted, one `KEY=value` line each.

use crate::cli::{CreateArgs, OutputFormat};
use crate::settings::{table, Settings};
use crate::ExitStatus;

/// The settings that apply, in the order of the settings table (and the README).
fn in_table_order(settings: &Settings) -> impl Iterator<Item = (&'static str, &str)> {
    table::SETTINGS.iter().filter_map(|spec| {
        settings
            .described
            .iter()
            .find(|(k, _)| *k == spec.var)
            .map(|(k, v)| (*k, v.as_str()))
    })
}

/// Renders the settings as `KEY=value` lines in the order they are documented.
pub fn render(settings: &Settings) -> String {
    in_table_order(settings)
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect()
}

/// Renders the settings as one JSON object.
pub fn render_json(settings: &Settings) -> serde_json::Value {
    in_table_order(settings)
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_owned())))
        .collect()
}

pub fn main(args: &CreateArgs, output: OutputFormat) -> ExitStatus {
    let settings = match super::settings_from(args) {
        Ok(s) => s,
        Err(e) => return super::report_error(&e),
    };
    match output {
        OutputFormat::Json => println!("{}", render_json(&settings)),
        OutputFormat::Text => print!("{}", render(&settings)),
    }
    ExitStatus::Success
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every setting `create` reads is printed, once, in the table's order, and nothing else.
    #[test]
    fn env_prints_every_create_setting_in_table_order() {
        let args = CreateArgs {
            postgres: Some("true".into()),
            mysql: Some("true".into()),
            ..CreateArgs::default()
        };
        let settings = Settings::from_args(&args, None, 4).unwrap();
        let rendered = render(&settings);
        let printed: Vec<&str> = rendered
            .lines()
            .map(|l| l.split_once('=').unwrap().0)
            .collect();
        let expected: Vec<&str> = table::SETTINGS
            .iter()
            .filter(|s| s.scope == table::Scope::Create)
            .map(|s| s.var)
            .collect();
        assert_eq!(printed, expected);
        assert_eq!(
            settings.described.len(),
            expected.len(),
            "a setting described twice"
        );
    }
}
