//! `backup-ns env`: the effective settings, secrets redacted, one `KEY=value` line each.

use crate::settings::Settings;

/// Renders the settings as `KEY=value` lines in the order they are documented.
pub fn render(settings: &Settings) -> String {
    settings.described.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// Renders the settings as one JSON object.
pub fn render_json(settings: &Settings) -> serde_json::Value {
    settings.described.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone()))).collect()
}
