//! The VolumeSnapshot name, from `BAK_VS_NAME_TEMPLATE`.
//!
//! The original renders a Go template (default `{{ .pvcName }}-{{ .timestamp }}-{{ .rand }}`,
//! e.g. `data-2025-01-08-164308-dcdkes`). We keep that syntax for the few placeholders that make
//! sense, parse the template once when the settings are read (so a typo fails before anything
//! is done) and check the rendered name against Kubernetes' rules before the API would. The
//! time is a parameter: the caller passes the same `now` it uses for the labels, so the name and
//! the labels cannot straddle midnight (the original's bug 7).

use std::fmt::Write as _;

use chrono::DateTime;
use chrono_tz::Tz;
use rand::Rng;

use crate::labels::check_dns1123_subdomain;
use crate::{Error, Result};

/// The original's default `BAK_VS_NAME_TEMPLATE`.
pub const DEFAULT_TEMPLATE: &str = "{{ .pvcName }}-{{ .timestamp }}-{{ .rand }}";

const SETTING: &str = "BAK_VS_NAME_TEMPLATE";

/// The placeholders a template may use, as written after the dot.
const PLACEHOLDERS: &str = ".pvcName, .namespace, .timestamp, .date, .rand";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    /// The PVC name.
    PvcName,
    /// The namespace.
    Namespace,
    /// `YYYY-MM-DD-HHMMSS` in the configured time zone.
    Timestamp,
    /// `YYYY-MM-DD` in the configured time zone.
    Date,
    /// `BAK_VS_RAND`, or 6 random lowercase letters.
    Rand,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder(Placeholder),
}

/// A parsed, validated `BAK_VS_NAME_TEMPLATE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// What a name is rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameInput<'a> {
    pub pvc: &'a str,
    pub namespace: &'a str,
    /// The backup's time, already in the configured time zone.
    pub now: DateTime<Tz>,
    /// `BAK_VS_RAND` or [`random_suffix`].
    pub rand: &'a str,
}

/// Parses a name template: literal text and `{{ .placeholder }}` actions (whitespace inside the
/// braces optional). Fails, naming `BAK_VS_NAME_TEMPLATE`, on an empty template, an unclosed
/// `{{`, an unknown placeholder or any other Go template action, and on literal text that can
/// never be part of a VolumeSnapshot name (anything but `a-z`, `0-9`, `-`, `.`).
pub fn parse_template(source: &str) -> Result<Template> {
    let fail = |reason: String| Error::config(SETTING, source, reason);
    if source.is_empty() {
        return Err(fail("the template must not be empty".to_owned()));
    }
    let mut parts = Vec::new();
    let mut rest = source;
    while !rest.is_empty() {
        let (literal, after) = match rest.find("{{") {
            Some(open) => (&rest[..open], Some(&rest[open + 2..])),
            None => (rest, None),
        };
        if let Some(c) = literal
            .chars()
            .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.')))
        {
            return Err(fail(format!(
                "text outside {{{{ }}}} may only contain a-z, 0-9, '-' and '.' (a VolumeSnapshot name is a \
                 DNS-1123 subdomain), found {c:?}"
            )));
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal.to_owned()));
        }
        let Some(after) = after else { break };
        let close = after.find("}}").ok_or_else(|| {
            fail(format!(
                "unclosed {{{{ before {:?}",
                after.chars().take(20).collect::<String>()
            ))
        })?;
        let action = after[..close].trim();
        let placeholder = match action {
            ".pvcName" => Placeholder::PvcName,
            ".namespace" => Placeholder::Namespace,
            ".timestamp" => Placeholder::Timestamp,
            ".date" => Placeholder::Date,
            ".rand" => Placeholder::Rand,
            _ => {
                return Err(fail(format!(
                    "unknown placeholder {{{{ {action} }}}}; supported: {PLACEHOLDERS}"
                )))
            }
        };
        parts.push(Part::Placeholder(placeholder));
        rest = &after[close + 2..];
    }
    Ok(Template {
        source: source.to_owned(),
        parts,
    })
}

impl Template {
    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Renders the name and checks it is a DNS-1123 subdomain of at most 253 characters; the
    /// error names `BAK_VS_NAME_TEMPLATE` and the rendered name.
    pub fn render(&self, input: &NameInput<'_>) -> Result<String> {
        let mut name = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => name.push_str(text),
                Part::Placeholder(Placeholder::PvcName) => name.push_str(input.pvc),
                Part::Placeholder(Placeholder::Namespace) => name.push_str(input.namespace),
                Part::Placeholder(Placeholder::Rand) => name.push_str(input.rand),
                Part::Placeholder(Placeholder::Timestamp) => {
                    write!(name, "{}", input.now.format("%Y-%m-%d-%H%M%S"))
                        .expect("writing to a String")
                }
                Part::Placeholder(Placeholder::Date) => {
                    write!(name, "{}", input.now.format("%Y-%m-%d")).expect("writing to a String")
                }
            }
        }
        check_dns1123_subdomain(&name).map_err(|reason| {
            Error::config(
                SETTING,
                &self.source,
                format!(
                    "it renders to {name:?}, which is not a valid VolumeSnapshot name: {reason}"
                ),
            )
        })?;
        Ok(name)
    }
}

impl Default for Template {
    /// [`DEFAULT_TEMPLATE`], parsed.
    fn default() -> Self {
        parse_template(DEFAULT_TEMPLATE).expect("the default template is valid")
    }
}

/// Six random lowercase letters, the original's default name suffix.
pub fn random_suffix<R: Rng + ?Sized>(rng: &mut R) -> String {
    (0..6)
        .map(|_| char::from(rng.random_range(b'a'..=b'z')))
        .collect()
}

/// Checks `BAK_VS_RAND`: non-empty, only lowercase letters and digits.
pub fn validate_rand(value: &str) -> Result<()> {
    let fail = |reason: &str| Err(Error::config("BAK_VS_RAND", value, reason));
    if value.is_empty() {
        return fail("must not be empty (unset it for a random suffix)");
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return fail("may only contain a-z and 0-9");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use chrono_tz::Europe::Vienna;

    fn input(now: DateTime<Tz>) -> NameInput<'static> {
        NameInput {
            pvc: "data",
            namespace: "shop",
            now,
            rand: "dcdkes",
        }
    }

    fn reason(err: Error) -> String {
        match err {
            Error::Config { name, reason, .. } => {
                assert_eq!(name, SETTING);
                reason
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn default_template_renders_the_originals_example() {
        let now = Utc
            .with_ymd_and_hms(2025, 1, 8, 16, 43, 8)
            .unwrap()
            .with_timezone(&Tz::UTC);
        assert_eq!(
            Template::default().render(&input(now)).unwrap(),
            "data-2025-01-08-164308-dcdkes"
        );
        assert_eq!(Template::default().as_str(), DEFAULT_TEMPLATE);
    }

    #[test]
    fn whitespace_inside_braces_is_optional() {
        let now = Utc
            .with_ymd_and_hms(2025, 1, 8, 16, 43, 8)
            .unwrap()
            .with_timezone(&Tz::UTC);
        let t = parse_template("{{.namespace}}.{{  .pvcName\t}}-{{ .date}}-x").unwrap();
        assert_eq!(t.render(&input(now)).unwrap(), "shop.data-2025-01-08-x");
        assert_eq!(
            t,
            parse_template("{{.namespace}}.{{  .pvcName\t}}-{{ .date}}-x").unwrap()
        );
    }

    #[test]
    fn timestamp_and_date_are_in_the_given_time_zone() {
        // 23:30:05 UTC on Dec 31 is 00:30:05 on Jan 1 in Vienna.
        let t = Utc.with_ymd_and_hms(2024, 12, 31, 23, 30, 5).unwrap();
        let template = parse_template("{{ .timestamp }}-{{ .date }}").unwrap();
        assert_eq!(
            template.render(&input(t.with_timezone(&Tz::UTC))).unwrap(),
            "2024-12-31-233005-2024-12-31"
        );
        assert_eq!(
            template.render(&input(t.with_timezone(&Vienna))).unwrap(),
            "2025-01-01-003005-2025-01-01"
        );
        // Summer time: UTC+2.
        let t = Utc
            .with_ymd_and_hms(2025, 7, 1, 10, 0, 0)
            .unwrap()
            .with_timezone(&Vienna);
        assert_eq!(
            template.render(&input(t)).unwrap(),
            "2025-07-01-120000-2025-07-01"
        );
    }

    #[test]
    fn invalid_templates_are_rejected_up_front() {
        let cases = [
            ("", "must not be empty"),
            ("{{ .pvcName }}-{{ .timestamp", "unclosed {{"),
            (
                "x{{ .rand }}{{ ééééééééééééééééééééé",
                "unclosed {{ before \" éééé",
            ),
            (
                "{{ .pvcname }}",
                "unknown placeholder {{ .pvcname }}; supported: .pvcName",
            ),
            ("{{ .pvcName | upper }}", "unknown placeholder"),
            ("{{- .pvcName }}", "unknown placeholder"),
            ("{{}}", "unknown placeholder {{  }}"),
            ("{{ .pvcName }}_{{ .rand }}", "found '_'"),
            ("Backup-{{ .rand }}", "found 'B'"),
            ("{{ .rand }}}}", "found '}'"),
        ];
        for (template, expected) in cases {
            let reason = reason(parse_template(template).unwrap_err());
            assert!(reason.contains(expected), "{template:?}: {reason}");
        }
        let err = parse_template("{{ .foo }}").unwrap_err().to_string();
        assert!(
            err.starts_with(r#"invalid BAK_VS_NAME_TEMPLATE="{{ .foo }}""#),
            "{err}"
        );
    }

    #[test]
    fn rendered_names_are_validated() {
        let now = Utc
            .with_ymd_and_hms(2025, 1, 8, 16, 43, 8)
            .unwrap()
            .with_timezone(&Tz::UTC);
        let long_pvc = "p".repeat(229);
        let long = NameInput {
            pvc: &long_pvc,
            ..input(now)
        };
        let reason = reason(Template::default().render(&long).unwrap_err());
        assert!(
            reason.contains(&format!(
                "renders to \"{long_pvc}-2025-01-08-164308-dcdkes\""
            )),
            "{reason}"
        );
        assert!(
            reason.contains("at most 253 characters, this one has 254"),
            "{reason}"
        );
        // 228 + 25 = 253: fits exactly.
        let ok_pvc = "p".repeat(228);
        assert_eq!(
            Template::default()
                .render(&NameInput {
                    pvc: &ok_pvc,
                    ..input(now)
                })
                .unwrap()
                .len(),
            253
        );
        // Placeholders can produce what the literal text may not.
        let bad_rand = NameInput {
            rand: "",
            ..input(now)
        };
        let reason = self::reason(
            parse_template("{{ .pvcName }}.{{ .rand }}")
                .unwrap()
                .render(&bad_rand)
                .unwrap_err(),
        );
        assert!(reason.contains("\"data.\""), "{reason}");
    }

    #[test]
    fn random_suffix_is_six_lowercase_letters() {
        let mut rng = rand::rng();
        let suffixes: Vec<String> = (0..20).map(|_| random_suffix(&mut rng)).collect();
        for s in &suffixes {
            assert_eq!(s.len(), 6);
            assert!(s.chars().all(|c| c.is_ascii_lowercase()), "{s}");
            validate_rand(s).unwrap();
        }
        assert!(suffixes.iter().any(|s| s != &suffixes[0]));
    }

    #[test]
    fn rand_validation() {
        validate_rand("abc123").unwrap();
        for bad in ["", "ABC", "a-b", "a b", "é"] {
            let err = validate_rand(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid BAK_VS_RAND="), "{err}");
        }
    }
}
