//! `backup-ns env`: the effective settings, secrets redacted, one `KEY=value` line each.

use crate::cli::{CreateArgs, OutputFormat};
use crate::settings::Settings;
use crate::ExitStatus;

/// Renders the settings as `KEY=value` lines in the order they are documented.
pub fn render(settings: &Settings) -> String {
    settings
        .described
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect()
}

/// Renders the settings as one JSON object.
pub fn render_json(settings: &Settings) -> serde_json::Value {
    settings
        .described
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
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
