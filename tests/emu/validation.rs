//! The apiserver's checks on names and labels (422 Invalid, same wording). A snapshot name built
//! from a timestamp with a `:` or an uppercase letter must fail here as it fails in a cluster, not
//! pass silently.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

const DNS1123_SUBDOMAIN: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const QUALIFIED_NAME: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";

fn full(re: &str) -> Regex {
    Regex::new(&format!("^(?:{re})$")).expect("static regex")
}

static SUBDOMAIN_RE: LazyLock<Regex> = LazyLock::new(|| full(DNS1123_SUBDOMAIN));
static QUALIFIED_RE: LazyLock<Regex> = LazyLock::new(|| full(QUALIFIED_NAME));
static VALUE_RE: LazyLock<Regex> = LazyLock::new(|| full(LABEL_VALUE));

/// An object name: a lowercase RFC 1123 subdomain of at most 253 characters.
pub fn subdomain(name: &str) -> Result<(), String> {
    if name.len() > 253 {
        return Err("must be no more than 253 characters".into());
    }
    if !SUBDOMAIN_RE.is_match(name) {
        return Err(format!(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '{DNS1123_SUBDOMAIN}')"
        ));
    }
    Ok(())
}

/// A label or annotation key: `[prefix/]name`.
pub fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Err("prefix part must be non-empty".into());
        }
        subdomain(p).map_err(|e| format!("prefix part {e}"))?;
    }
    if name.is_empty() {
        return Err("name part must be non-empty".into());
    }
    if name.len() > 63 {
        return Err("name part must be no more than 63 characters".into());
    }
    if !QUALIFIED_RE.is_match(name) {
        return Err(format!(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{QUALIFIED_NAME}')"
        ));
    }
    Ok(())
}

pub fn label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    if !VALUE_RE.is_match(value) {
        return Err(format!(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '{LABEL_VALUE}')"
        ));
    }
    Ok(())
}

/// All field errors of an object's metadata, as `(field, message)`.
pub fn metadata(obj: &Value) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let meta = &obj["metadata"];
    let name = meta["name"].as_str().unwrap_or_default();
    if let Err(e) = subdomain(name) {
        errors.push((
            "metadata.name".to_string(),
            format!("Invalid value: {name:?}: {e}"),
        ));
    }
    if let Some(labels) = meta["labels"].as_object() {
        for (k, v) in labels {
            if let Err(e) = label_key(k) {
                errors.push((
                    "metadata.labels".into(),
                    format!("Invalid value: {k:?}: {e}"),
                ));
            }
            match v.as_str() {
                Some(s) => {
                    if let Err(e) = label_value(s) {
                        errors.push((
                            "metadata.labels".into(),
                            format!("Invalid value: {s:?}: {e}"),
                        ));
                    }
                }
                None => errors.push((
                    "metadata.labels".into(),
                    format!("Invalid value: {v}: must be a string"),
                )),
            }
        }
    }
    if let Some(annotations) = meta["annotations"].as_object() {
        for (k, v) in annotations {
            if let Err(e) = label_key(k) {
                errors.push((
                    "metadata.annotations".into(),
                    format!("Invalid value: {k:?}: {e}"),
                ));
            }
            if !v.is_string() {
                errors.push((
                    "metadata.annotations".into(),
                    format!("Invalid value: {v}: must be a string"),
                ));
            }
        }
    }
    errors
}
