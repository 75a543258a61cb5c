//! Label keys and values of backup-ns VolumeSnapshots, and the per-PVC claim of the
//! daily/weekly/monthly period labels.
//!
//! The labels are the contract with the original allaboutapps/backup-ns (same keys, same value
//! formats) and with the retention jobs, which only look at labels. Everything here is pure:
//! "now" is a parameter and the caller lists the existing snapshots. Keeping the claim pure lets
//! the caller run it *after* the new snapshot is ready and *per PVC*, which fixes the original's
//! namespace-wide, claim-before-ready lookup (its bugs 1, 2 and 7).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;

use crate::{Error, Result};

macro_rules! key {
    ($name:literal) => {
        concat!("backup-ns.sh/", $name)
    };
}

/// Prefix of every backup-ns label and annotation key.
pub const PREFIX: &str = key!("");
/// Name of the PVC the snapshot was taken of.
pub const PVC: &str = key!("pvc");
/// [`VsType`]: `adhoc`, `cronjob` or any label value `BAK_LABEL_VS_TYPE` names.
pub const TYPE: &str = key!("type");
/// Name of the pod that ran the backup (only set when known).
pub const POD: &str = key!("pod");
/// [`Retain`]: `days` or `daily_weekly_monthly`.
pub const RETAIN: &str = key!("retain");
/// `YYYY-MM-DD`: the first snapshot of that day (retain=daily_weekly_monthly).
pub const DAILY: &str = key!("daily");
/// `wNN` (ISO week, no year; v0.1 of the original wrote `YYYY-wNN`): first snapshot of the week.
pub const WEEKLY: &str = key!("weekly");
/// `YYYY-MM`: the first snapshot of that month.
pub const MONTHLY: &str = key!("monthly");
/// Number of days to keep the snapshot (retain=days).
pub const RETAIN_DAYS: &str = key!("retain-days");
/// `YYYY-MM-DD`: the snapshot may be deleted after this day.
pub const DELETE_AFTER: &str = key!("delete-after");
/// A pinned snapshot is never deleted by the retention jobs.
pub const PIN: &str = key!("pin");
/// `metadata.uid` of the PVC the snapshot was taken of (new in backup-ns; the original did not
/// write it). A PVC deleted and re-created under the same name is another volume: a new backup
/// is not judged against the old volume's periods (see `retention::claim_holders`).
pub const PVC_UID: &str = key!("pvc-uid");
/// Annotation holding the `BAK_*` configuration of the run (see [`env_config_annotation`]).
pub const ENV_CONFIG: &str = key!("env-config");
/// `YYYY-MM-DD`: the day a restore of this snapshot was last verified to work. Written by
/// `verify` (which removes [`VERIFY_FAILED`]); `status` shows the latest one per PVC.
pub const VERIFIED: &str = key!("verified");
/// `YYYY-MM-DD`: the day a verification of this snapshot last failed. Written by `verify`
/// (which removes [`VERIFIED`]).
pub const VERIFY_FAILED: &str = key!("verify-failed");
/// On a PVC made by `restore pvc`: the snapshot it was restored from (label when the name fits
/// a label value, annotation always), so `kubectl get pvc -l backup-ns.sh/restored-from` finds it.
pub const RESTORED_FROM: &str = key!("restored-from");
/// On the temporary PVC and helper pod of `restore dump`, `download SNAPSHOT` and `verify`:
/// what they are for (`restore`, `download`, `verify`). Finds leftovers of killed runs.
pub const SCRATCH: &str = key!("scratch");
/// Annotation on those objects: when (RFC 3339) they may be deleted by a later run.
pub const SCRATCH_EXPIRES: &str = key!("scratch-expires");
/// Annotation on those objects: the snapshot they read.
pub const SCRATCH_SNAPSHOT: &str = key!("snapshot");

/// A value that is not one of an enum's label values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} value {value:?}; valid values: {}", .valid.join(", "))]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
    pub valid: &'static [&'static str],
}

/// How a snapshot is retained: the value of the [`RETAIN`] label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retain {
    /// Deleted after [`RETAIN_DAYS`] days ([`DELETE_AFTER`] is set at creation).
    Days,
    /// Kept while it holds a daily, weekly or monthly label.
    DailyWeeklyMonthly,
}

impl Retain {
    pub const VALUES: &'static [&'static str] = &["days", "daily_weekly_monthly"];

    pub fn as_str(self) -> &'static str {
        match self {
            Retain::Days => "days",
            Retain::DailyWeeklyMonthly => "daily_weekly_monthly",
        }
    }
}

impl fmt::Display for Retain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Retain {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "days" => Ok(Retain::Days),
            "daily_weekly_monthly" => Ok(Retain::DailyWeeklyMonthly),
            _ => Err(UnknownValue {
                what: "retain",
                value: s.to_owned(),
                valid: Self::VALUES,
            }),
        }
    }
}

/// What started the backup: the value of the [`TYPE`] label (`BAK_LABEL_VS_TYPE`).
///
/// `adhoc` and `cronjob` are what backup-ns itself writes, but the original passed any value
/// through as an informational label that nothing selects on, so any valid label value is
/// accepted (e.g. `pre-upgrade`). The value is kept inline (a label value is at most 63 ASCII
/// bytes), which keeps the type `Copy` like the enum it replaced.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VsType {
    len: u8,
    bytes: [u8; 63],
}

/// A `BAK_LABEL_VS_TYPE` value that is not a valid label value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid type label value {value:?}: {reason}")]
pub struct InvalidVsType {
    pub value: String,
    pub reason: String,
}

impl VsType {
    /// Backups started by hand (`backup-ns adhoc`, or `create` run directly): the default.
    #[allow(non_upper_case_globals)]
    pub const Adhoc: VsType = VsType::from_static("adhoc");
    /// Backups started by the chart's CronJobs.
    #[allow(non_upper_case_globals)]
    pub const Cronjob: VsType = VsType::from_static("cronjob");
    /// The values backup-ns itself writes (any other valid label value is accepted too).
    pub const VALUES: &'static [&'static str] = &["adhoc", "cronjob"];

    const fn from_static(s: &str) -> VsType {
        let src = s.as_bytes();
        let mut bytes = [0u8; 63];
        let mut i = 0;
        while i < src.len() {
            bytes[i] = src[i];
            i += 1;
        }
        VsType {
            len: src.len() as u8,
            bytes,
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from a checked label value, which is ASCII.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for VsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VsType({:?})", self.as_str())
    }
}

impl fmt::Display for VsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VsType {
    type Err = InvalidVsType;

    /// Any valid label value (at most 63 characters of `A-Za-z0-9-_.`, alphanumeric at both
    /// ends, or empty, which the original wrote as an empty label too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_label_value(s).map_err(|reason| InvalidVsType {
            value: s.to_owned(),
            reason,
        })?;
        Ok(VsType::from_static(s))
    }
}

// ---------------------------------------------------------------------------------------------
// Validation (Kubernetes apimachinery rules)

/// Checks a label value: at most 63 characters, empty allowed, otherwise `[A-Za-z0-9]` at both
/// ends and `[A-Za-z0-9]`, `-`, `_`, `.` inside. `name` is the setting the value came from.
pub fn validate_label_value(name: &str, value: &str) -> Result<()> {
    check_label_value(value).map_err(|reason| Error::config(name, value, reason))
}

/// Checks a DNS-1123 label (namespace and most object names): 1 to 63 characters of
/// `[a-z0-9-]`, starting and ending with `[a-z0-9]`.
pub fn validate_dns1123_label(name: &str, value: &str) -> Result<()> {
    check_dns1123_label(value).map_err(|reason| Error::config(name, value, reason))
}

/// Checks a DNS-1123 subdomain (PVC and VolumeSnapshot names): at most 253 characters,
/// dot-separated parts of `[a-z0-9-]`, each starting and ending with `[a-z0-9]`.
pub fn validate_dns1123_subdomain(name: &str, value: &str) -> Result<()> {
    check_dns1123_subdomain(value).map_err(|reason| Error::config(name, value, reason))
}

fn check_label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err(format!(
            "a label value must be at most 63 characters, this one has {}",
            value.len()
        ));
    }
    for (i, c) in value.chars().enumerate() {
        if !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            return Err(format!(
                "character {c:?} at position {} is not allowed in a label value \
                 (allowed: A-Z, a-z, 0-9, '-', '_', '.')",
                i + 1
            ));
        }
    }
    check_alphanumeric_ends(value, "a label value", |c| c.is_ascii_alphanumeric())
}

fn check_dns1123_label(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err(format!(
            "a DNS-1123 label must be at most 63 characters, this one has {}",
            value.len()
        ));
    }
    check_dns1123_part(value, "a DNS-1123 label")
}

/// The reason `value` is not a DNS-1123 subdomain, if it is not one.
pub(crate) fn check_dns1123_subdomain(value: &str) -> Result<(), String> {
    if value.len() > 253 {
        return Err(format!(
            "a DNS-1123 subdomain must be at most 253 characters, this one has {}",
            value.len()
        ));
    }
    if value.is_empty() {
        return Err("a DNS-1123 subdomain must not be empty".to_owned());
    }
    value.split('.').try_for_each(|part| {
        check_dns1123_part(part, "each dot-separated part of a DNS-1123 subdomain")
    })
}

fn check_dns1123_part(part: &str, what: &str) -> Result<(), String> {
    if part.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if let Some(c) = part
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        return Err(format!(
            "{what} may only contain a-z, 0-9 and '-', found {c:?}"
        ));
    }
    check_alphanumeric_ends(part, what, |c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn check_alphanumeric_ends(
    value: &str,
    what: &str,
    ok: impl Fn(char) -> bool,
) -> Result<(), String> {
    match (value.chars().next(), value.chars().last()) {
        (Some(first), _) if !ok(first) => {
            Err(format!("{what} must start with an alphanumeric character"))
        }
        (_, Some(last)) if !ok(last) => {
            Err(format!("{what} must end with an alphanumeric character"))
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Period values

/// An ISO 8601 week: ISO week-numbering year and week number (1..=53).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Week {
    pub year: i32,
    pub week: u32,
}

impl Week {
    /// The ISO week `date` lies in.
    pub fn of(date: NaiveDate) -> Week {
        let w = date.iso_week();
        Week {
            year: w.year(),
            week: w.week(),
        }
    }

    fn monday(self) -> Option<NaiveDate> {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon)
    }
}

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    /// The month `date` lies in.
    pub fn of(date: NaiveDate) -> Month {
        Month {
            year: date.year(),
            month: date.month(),
        }
    }
}

/// A parsed [`WEEKLY`] label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeeklyValue {
    /// `wNN`, written by the original since v0.2 and by us: the year is not part of the value.
    Yearless(u32),
    /// `YYYY-wNN`, written by the original's v0.1.
    Full(Week),
}

/// The [`DAILY`] value for `now`: `YYYY-MM-DD` in `now`'s time zone.
pub fn daily_value(now: DateTime<Tz>) -> String {
    now.format("%Y-%m-%d").to_string()
}

/// The [`WEEKLY`] value for `now`: `wNN`, the two-digit ISO week in `now`'s time zone, without
/// the year (the original's v0.2+ format; [`claim_periods`] does not rely on the text alone).
pub fn weekly_value(now: DateTime<Tz>) -> String {
    format!("w{:02}", now.iso_week().week())
}

/// The [`MONTHLY`] value for `now`: `YYYY-MM` in `now`'s time zone.
pub fn monthly_value(now: DateTime<Tz>) -> String {
    now.format("%Y-%m").to_string()
}

/// The [`DELETE_AFTER`] value for retain=days: the calendar day `days` days after `now`'s day in
/// `now`'s time zone, as `YYYY-MM-DD`. Fails (naming `BAK_LABEL_VS_RETAIN_DAYS`) only when the
/// date is out of chrono's range.
pub fn delete_after_value(now: DateTime<Tz>, days: u32) -> Result<String> {
    now.date_naive()
        .checked_add_days(Days::new(days.into()))
        .filter(|d| (0..=9999).contains(&d.year()))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .ok_or_else(|| {
            Error::config(
                "BAK_LABEL_VS_RETAIN_DAYS",
                days.to_string(),
                "the delete-after date is past year 9999",
            )
        })
}

/// Parses a `YYYY-MM-DD` value ([`DAILY`] or [`DELETE_AFTER`]). Anything else, including
/// impossible dates, is `None`.
pub fn parse_daily(value: &str) -> Option<NaiveDate> {
    let (year, rest) = split_fixed(value, 4, '-')?;
    let (month, day) = split_fixed(rest, 2, '-')?;
    NaiveDate::from_ymd_opt(year.try_into().ok()?, month, digits(day, 2)?)
}

/// Parses a [`WEEKLY`] value: `wNN` (1..=53) or the old `YYYY-wNN` (a week that exists in that
/// ISO year). Anything else is `None`.
pub fn parse_weekly(value: &str) -> Option<WeeklyValue> {
    if let Some(nn) = value.strip_prefix('w') {
        let week = digits(nn, 2)?;
        return (1..=53)
            .contains(&week)
            .then_some(WeeklyValue::Yearless(week));
    }
    let (year, rest) = split_fixed(value, 4, '-')?;
    let week = Week {
        year: year.try_into().ok()?,
        week: digits(rest.strip_prefix('w')?, 2)?,
    };
    week.monday().map(|_| WeeklyValue::Full(week))
}

/// Parses a `YYYY-MM` [`MONTHLY`] value. Anything else is `None`.
pub fn parse_monthly(value: &str) -> Option<Month> {
    let (year, month) = split_fixed(value, 4, '-')?;
    let month = digits(month, 2)?;
    (1..=12).contains(&month).then_some(Month {
        year: year.try_into().ok()?,
        month,
    })
}

/// Splits `s` into a `width`-digit number and the rest after `sep`.
fn split_fixed(s: &str, width: usize, sep: char) -> Option<(u32, &str)> {
    let head = s.get(..width)?;
    let rest = s.get(width..)?.strip_prefix(sep)?;
    Some((digits(head, width)?, rest))
}

/// `s` as a number if it is exactly `width` ASCII digits.
fn digits(s: &str, width: usize) -> Option<u32> {
    if s.len() == width && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// The claim

/// An existing snapshot of the same namespace and PVC, as far as the claim needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingSnapshot {
    /// `status.creationTime`, or `metadata.creationTimestamp` when the former is missing.
    pub time: DateTime<Utc>,
    /// Value of the [`DAILY`] label, if the snapshot carries it.
    pub daily: Option<String>,
    /// Value of the [`WEEKLY`] label, if the snapshot carries it.
    pub weekly: Option<String>,
    /// Value of the [`MONTHLY`] label, if the snapshot carries it.
    pub monthly: Option<String>,
}

impl ExistingSnapshot {
    /// Takes the period labels out of a snapshot's label map.
    pub fn from_labels(time: DateTime<Utc>, labels: &BTreeMap<String, String>) -> Self {
        ExistingSnapshot {
            time,
            daily: labels.get(DAILY).cloned(),
            weekly: labels.get(WEEKLY).cloned(),
            monthly: labels.get(MONTHLY).cloned(),
        }
    }
}

/// The period labels a new snapshot gets; `None` where an existing snapshot already holds the
/// period. The values are the ones to write (`YYYY-MM-DD`, `wNN`, `YYYY-MM`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claim {
    pub daily: Option<String>,
    pub weekly: Option<String>,
    pub monthly: Option<String>,
}

/// Decides which of daily/weekly/monthly a new snapshot taken at `now` gets.
///
/// `existing` must already be filtered by the caller to the same namespace and PVC (never
/// namespace-wide: the original's bug 1); only its content is looked at. A failed listing must
/// be an error for the caller, never "label exists" (bug 2).
///
/// A period is free unless some existing snapshot *holds* it. Which period a snapshot holds for
/// a kind (daily, weekly, monthly):
/// - it holds nothing of that kind if it does not carry that label;
/// - if the label's value names a complete period (`YYYY-MM-DD`, `YYYY-wNN`, `YYYY-MM`), it holds
///   that named period, even when the snapshot's time lies elsewhere (a label set by hand wins);
/// - a yearless `wNN` holds week NN of the ISO year that puts it nearest to the snapshot's time
///   (so a normal `wNN` holds the snapshot's own week, and last year's `w05` does not block this
///   year's `w05`; a hand-set `w06` on a snapshot of week 5 holds week 6 of the same year);
/// - an unparseable value holds the period of the snapshot's time.
///
/// The snapshot's time is converted to `now`'s time zone before taking its day, ISO week (with
/// the ISO year) or month, so comparisons never depend on the yearless label text.
pub fn claim_periods(now: DateTime<Tz>, existing: &[ExistingSnapshot]) -> Claim {
    let tz = now.timezone();
    let today = now.date_naive();
    let mut claim = Claim {
        daily: Some(daily_value(now)),
        weekly: Some(weekly_value(now)),
        monthly: Some(monthly_value(now)),
    };
    for snapshot in existing {
        let date = snapshot.time.with_timezone(&tz).date_naive();
        if let Some(value) = &snapshot.daily {
            if parse_daily(value).unwrap_or(date) == today {
                claim.daily = None;
            }
        }
        if let Some(value) = &snapshot.weekly {
            let held = match parse_weekly(value) {
                Some(WeeklyValue::Full(week)) => Some(week),
                Some(WeeklyValue::Yearless(week)) => nearest_week(week, date),
                None => None,
            };
            if held.unwrap_or_else(|| Week::of(date)) == Week::of(today) {
                claim.weekly = None;
            }
        }
        if let Some(value) = &snapshot.monthly {
            if parse_monthly(value).unwrap_or_else(|| Month::of(date)) == Month::of(today) {
                claim.monthly = None;
            }
        }
    }
    claim
}

/// Week number `week` of the ISO year (the one of `date`, or the one before or after) whose
/// Monday is nearest to `date`; `None` if week 53 exists in none of them.
fn nearest_week(week: u32, date: NaiveDate) -> Option<Week> {
    let year = Week::of(date).year;
    (year - 1..=year + 1)
        .map(|year| Week { year, week })
        .filter_map(|w| Some((w.monday()?.signed_duration_since(date).num_days().abs(), w)))
        .min()
        .map(|(_, w)| w)
}

// ---------------------------------------------------------------------------------------------
// Label maps

/// What the labels of a new snapshot are made of (besides the time and the claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelInput<'a> {
    /// PVC name (`BAK_PVC_NAME`); must also be a valid label value (at most 63 characters).
    pub pvc: &'a str,
    pub vs_type: VsType,
    /// Backup pod name (`BAK_LABEL_VS_POD`); empty means no [`POD`] label.
    pub pod: &'a str,
    pub retain: Retain,
    /// `BAK_LABEL_VS_RETAIN_DAYS`; used only with [`Retain::Days`].
    pub retain_days: u32,
}

/// The labels set when the snapshot is created: pvc, type, pod (if non-empty), retain, and for
/// [`Retain::Days`] also retain-days and delete-after (now + N days). The period labels come
/// later, from [`period_labels`], once the snapshot is ready. Fails if the PVC or pod name is
/// not a valid label value.
pub fn creation_labels(
    input: &LabelInput<'_>,
    now: DateTime<Tz>,
) -> Result<BTreeMap<String, String>> {
    validate_label_value("BAK_PVC_NAME", input.pvc)?;
    validate_label_value("BAK_LABEL_VS_POD", input.pod)?;
    let mut labels = BTreeMap::new();
    labels.insert(PVC.to_owned(), input.pvc.to_owned());
    labels.insert(TYPE.to_owned(), input.vs_type.to_string());
    if !input.pod.is_empty() {
        labels.insert(POD.to_owned(), input.pod.to_owned());
    }
    labels.insert(RETAIN.to_owned(), input.retain.to_string());
    if input.retain == Retain::Days {
        labels.insert(RETAIN_DAYS.to_owned(), input.retain_days.to_string());
        labels.insert(
            DELETE_AFTER.to_owned(),
            delete_after_value(now, input.retain_days)?,
        );
    }
    Ok(labels)
}

/// The daily/weekly/monthly labels of a claim (only the claimed ones).
pub fn period_labels(claim: &Claim) -> BTreeMap<String, String> {
    [
        (DAILY, &claim.daily),
        (WEEKLY, &claim.weekly),
        (MONTHLY, &claim.monthly),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key.to_owned(), value.clone()?)))
    .collect()
}

/// All labels of a new snapshot: [`creation_labels`], plus for [`Retain::DailyWeeklyMonthly`]
/// the [`period_labels`] of `claim` (ignored for [`Retain::Days`]).
pub fn snapshot_labels(
    input: &LabelInput<'_>,
    now: DateTime<Tz>,
    claim: &Claim,
) -> Result<BTreeMap<String, String>> {
    let mut labels = creation_labels(input, now)?;
    if input.retain == Retain::DailyWeeklyMonthly {
        labels.extend(period_labels(claim));
    }
    Ok(labels)
}

/// The [`ENV_CONFIG`] annotation: every `BAK_*` variable whose name does not contain `PASSWORD`
/// (case-sensitive, as the original) and that the settings table does not mark secret (the
/// notification URLs carry tokens; see [`crate::settings::table::in_env_config`]), one
/// `KEY='value'` line each, keys sorted, joined with `\n` (no trailing newline). If a key
/// appears twice, the last value wins.
///
/// Values are quoted for POSIX shells: wrapped in single quotes, each `'` inside written as
/// `'\''`, so the annotation can be `eval`ed or sourced to reproduce the run's settings. A value
/// with a newline spans lines but stays inside its quotes.
pub fn env_config_annotation(vars: impl IntoIterator<Item = (String, String)>) -> String {
    let vars: BTreeMap<String, String> = vars
        .into_iter()
        .filter(|(key, _)| crate::settings::table::in_env_config(key))
        .collect();
    vars.iter()
        .map(|(key, value)| format!("{key}='{}'", value.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads an [`ENV_CONFIG`] annotation back: `KEY='value'` lines as [`env_config_annotation`]
/// writes them (and the original did). A malformed annotation is an error naming where it
/// breaks, never a guess.
pub fn parse_env_config(text: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut vars = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('\n') {
            rest = r;
            continue;
        }
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("expected KEY='value' at {:?}", first_line(rest)))?;
        let key = &rest[..eq];
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid variable name {key:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('\'')
            .ok_or_else(|| format!("the value of {key} is not single-quoted"))?;
        let mut value = String::new();
        loop {
            let end = rest
                .find('\'')
                .ok_or_else(|| format!("the value of {key} has no closing quote"))?;
            value.push_str(&rest[..end]);
            rest = &rest[end + 1..];
            match rest.strip_prefix("\\''") {
                Some(r) => {
                    value.push('\'');
                    rest = r;
                }
                None => break,
            }
        }
        if !(rest.is_empty() || rest.starts_with('\n')) {
            return Err(format!("unexpected text after the value of {key}"));
        }
        vars.insert(key.to_owned(), value);
    }
    Ok(vars)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_env_config_annotation_reads_back_what_was_written() {
        let vars = [
            ("BAK_DB_POSTGRES", "true"),
            ("BAK_DB_POSTGRES_DB", "it's \"quoted\""),
            ("BAK_NOTE", "two\nlines ''"),
            ("BAK_EMPTY", ""),
            ("BAK_DB_POSTGRES_PASSWORD", "never"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let text = env_config_annotation(vars.clone());
        let back = parse_env_config(&text).unwrap();
        let expected: BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| !k.contains("PASSWORD"))
            .collect();
        assert_eq!(back, expected);
        assert_eq!(parse_env_config("").unwrap(), BTreeMap::new());
        for bad in [
            "BAK_X=unquoted",
            "BAK_X='open",
            "{\"BAK_X\":\"1\"}",
            "BAK X='1'",
            "BAK_X='1'x",
        ] {
            assert!(parse_env_config(bad).is_err(), "{bad}");
        }
    }
    use chrono_tz::Europe::Vienna;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn at(tz: Tz, t: DateTime<Utc>) -> DateTime<Tz> {
        t.with_timezone(&tz)
    }

    fn snap(
        time: DateTime<Utc>,
        daily: Option<&str>,
        weekly: Option<&str>,
        monthly: Option<&str>,
    ) -> ExistingSnapshot {
        ExistingSnapshot {
            time,
            daily: daily.map(str::to_owned),
            weekly: weekly.map(str::to_owned),
            monthly: monthly.map(str::to_owned),
        }
    }

    /// A snapshot labelled the way we (and the original v0.2+) label it at `time` in `tz`.
    fn labelled(tz: Tz, time: DateTime<Utc>) -> ExistingSnapshot {
        let t = at(tz, time);
        snap(
            time,
            Some(&daily_value(t)),
            Some(&weekly_value(t)),
            Some(&monthly_value(t)),
        )
    }

    fn full_claim(now: DateTime<Tz>) -> Claim {
        Claim {
            daily: Some(daily_value(now)),
            weekly: Some(weekly_value(now)),
            monthly: Some(monthly_value(now)),
        }
    }

    #[test]
    fn keys_share_the_prefix() {
        assert_eq!(PREFIX, "backup-ns.sh/");
        for key in [
            PVC,
            TYPE,
            POD,
            RETAIN,
            DAILY,
            WEEKLY,
            MONTHLY,
            RETAIN_DAYS,
            DELETE_AFTER,
            PIN,
            ENV_CONFIG,
        ] {
            assert!(key.starts_with(PREFIX) && key.len() > PREFIX.len(), "{key}");
        }
        assert_eq!(RETAIN_DAYS, "backup-ns.sh/retain-days");
        assert_eq!(ENV_CONFIG, "backup-ns.sh/env-config");
    }

    #[test]
    fn enums_round_trip_and_name_valid_values() {
        for r in [Retain::Days, Retain::DailyWeeklyMonthly] {
            assert_eq!(r.as_str().parse::<Retain>(), Ok(r));
        }
        for t in [VsType::Adhoc, VsType::Cronjob] {
            assert_eq!(t.to_string().parse::<VsType>(), Ok(t));
        }
        let err = "weekly".parse::<Retain>().unwrap_err().to_string();
        assert_eq!(
            err,
            r#"unknown retain value "weekly"; valid values: days, daily_weekly_monthly"#
        );
        for custom in [
            "Adhoc",
            "pre-upgrade",
            "manual_2025.01",
            "",
            &"x".repeat(63),
        ] {
            assert_eq!(custom.parse::<VsType>().unwrap().as_str(), custom);
        }
        for bad in ["-x", "with space", "ünïcode", &"x".repeat(64)] {
            let err = bad.parse::<VsType>().unwrap_err().to_string();
            assert!(err.contains("invalid type label value"), "{err}");
        }
    }

    #[test]
    fn label_values() {
        for ok in ["", "a", "data", "A-b_c.9", &"x".repeat(63)] {
            validate_label_value("X", ok).unwrap();
        }
        let reason = |v: &str| match validate_label_value("BAK_LABEL_VS_POD", v).unwrap_err() {
            Error::Config {
                name,
                value,
                reason,
            } => {
                assert_eq!((name.as_str(), value.as_str()), ("BAK_LABEL_VS_POD", v));
                reason
            }
            e => panic!("{e}"),
        };
        assert!(reason(&"x".repeat(64)).contains("at most 63 characters, this one has 64"));
        assert!(reason("-a").contains("must start"));
        assert!(reason("a_").contains("must end"));
        assert!(reason("a/b").contains("'/' at position 2"));
        assert!(reason("é").contains("'é'"));
    }

    #[test]
    fn dns1123() {
        for ok in ["a", "data", "0-9", &"a".repeat(63)] {
            validate_dns1123_label("N", ok).unwrap();
        }
        for bad in ["", "A", "a.b", "-a", "a-", &"a".repeat(64)] {
            assert!(validate_dns1123_label("N", bad).is_err(), "{bad}");
        }
        for ok in [
            "a",
            "a.b",
            "data-2025-01-08-164308-dcdkes",
            &format!("{}.{}", "a".repeat(200), "b".repeat(52)),
        ] {
            validate_dns1123_subdomain("N", ok).unwrap();
        }
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "a.-b",
            "a_b",
            "Data",
            &"a".repeat(254),
        ] {
            assert!(validate_dns1123_subdomain("N", bad).is_err(), "{bad}");
        }
        let err = validate_dns1123_subdomain("BAK_PVC_NAME", "Data")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            r#"invalid BAK_PVC_NAME="Data": each dot-separated part of a DNS-1123 subdomain may only contain a-z, 0-9 and '-', found 'D'"#
        );
    }

    #[test]
    fn period_values_at_year_boundaries() {
        // Dec 31 2024 is in ISO week 1 of 2025.
        let t = at(Tz::UTC, utc(2024, 12, 31, 12, 0));
        assert_eq!(
            (daily_value(t), weekly_value(t), monthly_value(t)),
            ("2024-12-31".into(), "w01".into(), "2024-12".into())
        );
        // Jan 1 2027 is in ISO week 53 of 2026.
        let t = at(Tz::UTC, utc(2027, 1, 1, 12, 0));
        assert_eq!(
            (daily_value(t), weekly_value(t), monthly_value(t)),
            ("2027-01-01".into(), "w53".into(), "2027-01".into())
        );
        assert_eq!(
            Week::of(t.date_naive()),
            Week {
                year: 2026,
                week: 53
            }
        );
    }

    #[test]
    fn period_values_use_the_time_zone() {
        // 23:30 UTC on Dec 31 is already Jan 1 in Vienna: new day, month and year.
        let t = utc(2024, 12, 31, 23, 30);
        assert_eq!(daily_value(at(Tz::UTC, t)), "2024-12-31");
        assert_eq!(daily_value(at(Vienna, t)), "2025-01-01");
        assert_eq!(monthly_value(at(Vienna, t)), "2025-01");
        // Sunday 23:30 UTC is Monday in Vienna: next ISO week.
        let t = utc(2025, 1, 5, 23, 30);
        assert_eq!(weekly_value(at(Tz::UTC, t)), "w01");
        assert_eq!(weekly_value(at(Vienna, t)), "w02");
    }

    #[test]
    fn delete_after_counts_calendar_days_in_the_zone() {
        // Over the spring-forward night (Mar 30 2025 in Vienna) it is still N calendar days.
        let t = at(Vienna, utc(2025, 3, 29, 23, 30)); // Mar 30 00:30 CET
        assert_eq!(delete_after_value(t, 1).unwrap(), "2025-03-31");
        assert_eq!(delete_after_value(t, 0).unwrap(), "2025-03-30");
        assert_eq!(
            delete_after_value(at(Tz::UTC, utc(2024, 12, 31, 12, 0)), 30).unwrap(),
            "2025-01-30"
        );
        assert_eq!(
            delete_after_value(at(Tz::UTC, utc(2024, 2, 28, 12, 0)), 1).unwrap(),
            "2024-02-29"
        );
        let err = delete_after_value(t, u32::MAX).unwrap_err().to_string();
        assert!(err.contains("BAK_LABEL_VS_RETAIN_DAYS"), "{err}");
    }

    #[test]
    fn parsing_reads_both_weekly_formats_and_rejects_garbage() {
        assert_eq!(
            parse_daily("2025-01-08"),
            NaiveDate::from_ymd_opt(2025, 1, 8)
        );
        assert_eq!(parse_weekly("w05"), Some(WeeklyValue::Yearless(5)));
        assert_eq!(
            parse_weekly("2024-w05"),
            Some(WeeklyValue::Full(Week {
                year: 2024,
                week: 5
            }))
        );
        assert_eq!(
            parse_weekly("2026-w53"),
            Some(WeeklyValue::Full(Week {
                year: 2026,
                week: 53
            }))
        );
        assert_eq!(
            parse_monthly("2025-01"),
            Some(Month {
                year: 2025,
                month: 1
            })
        );
        for garbage in [
            "",
            "x",
            "2025-1-08",
            "2025-01-8",
            "2025-02-30",
            "2025-01-08x",
            "+2025-01-08",
            "2025/01/08",
            "２０２５-01-08",
            "ä025-01-08",
            "2025-13-01",
        ] {
            assert_eq!(parse_daily(garbage), None, "{garbage}");
        }
        for garbage in [
            "", "w", "w5", "w00", "w54", "W05", "w+5", "w005", "2025-w53", "2025-W05", "25-w05",
            "2025w05", "wé",
        ] {
            assert_eq!(parse_weekly(garbage), None, "{garbage}");
        }
        for garbage in [
            "",
            "2025-1",
            "2025-00",
            "2025-13",
            "2025-01-01",
            "202501",
            "2025-+1",
        ] {
            assert_eq!(parse_monthly(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn claim_everything_when_nothing_exists() {
        let now = at(Vienna, utc(2025, 1, 8, 15, 43));
        let claim = claim_periods(now, &[]);
        assert_eq!(
            claim,
            Claim {
                daily: Some("2025-01-08".into()),
                weekly: Some("w02".into()),
                monthly: Some("2025-01".into())
            }
        );
    }

    #[test]
    fn claim_after_an_earlier_snapshot_the_same_day() {
        let now = at(Vienna, utc(2025, 1, 8, 15, 43));
        let claim = claim_periods(now, &[labelled(Vienna, utc(2025, 1, 8, 2, 0))]);
        assert_eq!(claim, Claim::default());
        // Yesterday's snapshot held only yesterday: a new daily, same week and month.
        let claim = claim_periods(now, &[labelled(Vienna, utc(2025, 1, 7, 2, 0))]);
        assert_eq!(
            claim,
            Claim {
                daily: Some("2025-01-08".into()),
                ..Claim::default()
            }
        );
        // A snapshot that kept only its monthly label (the daily was retained away).
        let claim = claim_periods(
            now,
            &[snap(utc(2025, 1, 8, 2, 0), None, None, Some("2025-01"))],
        );
        assert_eq!(
            claim,
            Claim {
                monthly: None,
                ..full_claim(now)
            }
        );
    }

    #[test]
    fn claim_across_year_boundary() {
        // Dec 30 2024 (Mon) and Dec 31 2024 are ISO 2025-W01, like Jan 1 2025.
        let now = at(Tz::UTC, utc(2025, 1, 1, 12, 0));
        let claim = claim_periods(now, &[labelled(Tz::UTC, utc(2024, 12, 31, 12, 0))]);
        assert_eq!(
            claim,
            Claim {
                weekly: None,
                ..full_claim(now)
            }
        );
        // Jan 1 2027 is ISO 2026-W53, together with Dec 28 2026.
        let now = at(Tz::UTC, utc(2027, 1, 1, 12, 0));
        let claim = claim_periods(now, &[labelled(Tz::UTC, utc(2026, 12, 28, 12, 0))]);
        assert_eq!(
            claim,
            Claim {
                daily: Some("2027-01-01".into()),
                weekly: None,
                monthly: Some("2027-01".into())
            }
        );
        // Jan 4 2027 starts 2027-W01.
        let now = at(Tz::UTC, utc(2027, 1, 4, 12, 0));
        let claim = claim_periods(now, &[labelled(Tz::UTC, utc(2027, 1, 1, 12, 0))]);
        assert_eq!(claim.weekly.as_deref(), Some("w01"));
    }

    #[test]
    fn last_years_same_week_does_not_block() {
        let now = at(Vienna, utc(2025, 1, 29, 12, 0)); // 2025-W05
        let last_year = snap(
            utc(2024, 1, 31, 12, 0),
            Some("2024-01-31"),
            Some("w05"),
            Some("2024-01"),
        );
        assert_eq!(claim_periods(now, &[last_year]), full_claim(now));
        assert_eq!(weekly_value(now), "w05");
        // The old `YYYY-wNN` format names its year explicitly.
        let old_format = snap(utc(2024, 1, 31, 12, 0), None, Some("2024-w05"), None);
        assert_eq!(
            claim_periods(now, &[old_format]).weekly.as_deref(),
            Some("w05")
        );
        let old_format_this_year = snap(utc(2025, 1, 27, 12, 0), None, Some("2025-w05"), None);
        assert_eq!(claim_periods(now, &[old_format_this_year]).weekly, None);
    }

    #[test]
    fn claim_compares_days_in_nows_time_zone_over_dst() {
        // Spring forward: Mar 30 2025, 01:00 UTC. 00:30 UTC is Mar 30 01:30 CET; 22:30 UTC is
        // Mar 31 00:30 CEST: different days in Vienna, the same day in UTC.
        let earlier = utc(2025, 3, 30, 0, 30);
        let later = utc(2025, 3, 30, 22, 30);
        let in_vienna = claim_periods(at(Vienna, later), &[labelled(Vienna, earlier)]);
        assert_eq!(in_vienna.daily.as_deref(), Some("2025-03-31"));
        assert_eq!(in_vienna.weekly.as_deref(), Some("w14")); // Monday: a new ISO week too
        assert_eq!(
            claim_periods(at(Tz::UTC, later), &[labelled(Tz::UTC, earlier)]),
            Claim::default()
        );
        // Fall back: Oct 26 2025, 01:00 UTC. 00:30 and 01:30 UTC are 02:30 CEST and 02:30 CET,
        // the same day in Vienna.
        let claim = claim_periods(
            at(Vienna, utc(2025, 10, 26, 1, 30)),
            &[labelled(Vienna, utc(2025, 10, 26, 0, 30))],
        );
        assert_eq!(claim, Claim::default());
        // 22:30 UTC on Oct 25 is already Oct 26 in Vienna, 23:30 UTC on Oct 26 is Oct 27.
        let claim = claim_periods(
            at(Vienna, utc(2025, 10, 26, 23, 30)),
            &[labelled(Vienna, utc(2025, 10, 25, 22, 30))],
        );
        assert_eq!(claim.daily.as_deref(), Some("2025-10-27"));
    }

    #[test]
    fn claim_converts_the_snapshot_time_not_the_label_text() {
        // A snapshot labelled by a job running in UTC as Sunday w01 is, in Vienna, Monday of
        // w02: the yearless `w01` is read as the nearest week 1, i.e. this year's, which does
        // not block w02.
        let sunday_late = utc(2025, 1, 5, 23, 30);
        let labelled_in_utc = labelled(Tz::UTC, sunday_late);
        let now = at(Vienna, utc(2025, 1, 6, 12, 0));
        let claim = claim_periods(now, &[labelled_in_utc]);
        assert_eq!(claim.weekly.as_deref(), Some("w02"));
        // Its daily "2025-01-05" names Jan 5; today in Vienna is Jan 6.
        assert_eq!(claim.daily.as_deref(), Some("2025-01-06"));
    }

    #[test]
    fn hand_set_labels_hold_the_named_period() {
        let now = at(Vienna, utc(2025, 1, 8, 12, 0));
        // Taken yesterday, but labelled by hand as today's daily: today is held.
        let moved_here = snap(utc(2025, 1, 7, 12, 0), Some("2025-01-08"), None, None);
        assert_eq!(claim_periods(now, &[moved_here]).daily, None);
        // Taken today, but labelled by hand as another day's daily: today is free.
        let moved_away = snap(utc(2025, 1, 8, 2, 0), Some("2025-01-01"), None, None);
        assert_eq!(
            claim_periods(now, &[moved_away]).daily.as_deref(),
            Some("2025-01-08")
        );
        // Monthly and weekly likewise.
        let other_month = snap(utc(2025, 1, 2, 2, 0), None, Some("w03"), Some("2024-12"));
        let claim = claim_periods(now, &[other_month]);
        assert_eq!(claim.monthly.as_deref(), Some("2025-01"));
        assert_eq!(claim.weekly.as_deref(), Some("w02"));
        let this_week = snap(utc(2024, 12, 20, 2, 0), None, Some("2025-w02"), None);
        assert_eq!(claim_periods(now, &[this_week]).weekly, None);
        let this_week_yearless = snap(utc(2025, 1, 1, 2, 0), None, Some("w02"), None);
        assert_eq!(claim_periods(now, &[this_week_yearless]).weekly, None);
    }

    #[test]
    fn garbage_values_fall_back_to_the_snapshots_time() {
        let now = at(Vienna, utc(2025, 1, 8, 12, 0));
        let yesterday = snap(
            utc(2025, 1, 7, 12, 0),
            Some("garbage"),
            Some("w99"),
            Some("2025-13"),
        );
        assert_eq!(
            claim_periods(now, &[yesterday]),
            Claim {
                daily: Some("2025-01-08".into()),
                ..Claim::default()
            }
        );
        let today = snap(
            utc(2025, 1, 8, 2, 0),
            Some(""),
            Some("2025-w53"),
            Some("Jan"),
        );
        assert_eq!(claim_periods(now, &[today]), Claim::default());
        let last_month = snap(utc(2024, 12, 8, 2, 0), Some("x"), Some("y"), Some("z"));
        assert_eq!(claim_periods(now, &[last_month]), full_claim(now));
    }

    #[test]
    fn claim_only_looks_at_its_input() {
        // The caller filters by PVC: the same snapshot list with and without another PVC's
        // snapshot gives different claims, showing nothing else is consulted.
        let now = at(Vienna, utc(2025, 1, 8, 12, 0));
        let other_pvc = labelled(Vienna, utc(2025, 1, 8, 2, 0));
        let mine = vec![labelled(Vienna, utc(2024, 12, 1, 2, 0))];
        assert_eq!(claim_periods(now, &mine), full_claim(now));
        let mut unfiltered = mine.clone();
        unfiltered.push(other_pvc);
        assert_eq!(claim_periods(now, &unfiltered), Claim::default());
    }

    #[test]
    fn existing_snapshot_from_labels() {
        let labels: BTreeMap<String, String> =
            [(PVC, "data"), (DAILY, "2025-01-08"), (MONTHLY, "2025-01")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
        let s = ExistingSnapshot::from_labels(utc(2025, 1, 8, 2, 0), &labels);
        assert_eq!(
            s,
            snap(
                utc(2025, 1, 8, 2, 0),
                Some("2025-01-08"),
                None,
                Some("2025-01")
            )
        );
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_for_retain_days() {
        let now = at(Vienna, utc(2025, 1, 8, 23, 30)); // Jan 9 in Vienna
        let input = LabelInput {
            pvc: "data",
            vs_type: VsType::Cronjob,
            pod: "backup-abc",
            retain: Retain::Days,
            retain_days: 30,
        };
        let expected = map(&[
            (PVC, "data"),
            (TYPE, "cronjob"),
            (POD, "backup-abc"),
            (RETAIN, "days"),
            (RETAIN_DAYS, "30"),
            (DELETE_AFTER, "2025-02-08"),
        ]);
        assert_eq!(creation_labels(&input, now).unwrap(), expected);
        // A claim never adds period labels to a retain=days snapshot.
        assert_eq!(
            snapshot_labels(&input, now, &full_claim(now)).unwrap(),
            expected
        );
    }

    #[test]
    fn labels_for_daily_weekly_monthly() {
        let now = at(Vienna, utc(2025, 1, 8, 15, 43));
        let input = LabelInput {
            pvc: "data",
            vs_type: VsType::Adhoc,
            pod: "",
            retain: Retain::DailyWeeklyMonthly,
            retain_days: 30,
        };
        let base = [
            (PVC, "data"),
            (TYPE, "adhoc"),
            (RETAIN, "daily_weekly_monthly"),
        ];
        assert_eq!(creation_labels(&input, now).unwrap(), map(&base));
        let claim = Claim {
            daily: Some("2025-01-08".into()),
            weekly: None,
            monthly: Some("2025-01".into()),
        };
        assert_eq!(
            period_labels(&claim),
            map(&[(DAILY, "2025-01-08"), (MONTHLY, "2025-01")])
        );
        let mut expected = map(&base);
        expected.extend(period_labels(&claim));
        assert_eq!(snapshot_labels(&input, now, &claim).unwrap(), expected);
        assert_eq!(
            snapshot_labels(&input, now, &Claim::default()).unwrap(),
            map(&base)
        );
    }

    #[test]
    fn labels_reject_values_kubernetes_would_reject() {
        let now = at(Vienna, utc(2025, 1, 8, 15, 43));
        let long = "p".repeat(64);
        let input = LabelInput {
            pvc: &long,
            vs_type: VsType::Adhoc,
            pod: "",
            retain: Retain::Days,
            retain_days: 1,
        };
        assert!(creation_labels(&input, now)
            .unwrap_err()
            .to_string()
            .contains("BAK_PVC_NAME"));
        let input = LabelInput {
            pvc: "data",
            pod: "bad pod",
            ..input
        };
        assert!(creation_labels(&input, now)
            .unwrap_err()
            .to_string()
            .contains("BAK_LABEL_VS_POD"));
    }

    #[test]
    fn env_config_filters_sorts_and_quotes() {
        let vars = [
            ("BAK_PVC_NAME", "data"),
            ("BAK_DB_POSTGRES_PASSWORD", "secret"),
            ("BAK_DB_MYSQL_PASSWORD_FILE", "/x"),
            ("HOME", "/root"),
            ("bak_lower", "x"),
            ("BAK_DB_POSTGRES_USER", "${POSTGRES_USER}"),
            ("BAK_DB_password", "visible: the match is case-sensitive"),
            ("BAK_QUOTE", "it's"),
            ("BAK_EMPTY", ""),
            // Secret rows without PASSWORD in their name: tokens in URLs.
            (
                "BAK_NOTIFY_URL",
                "https://hooks.slack.com/services/T0/B0/token",
            ),
            ("BAK_HEALTHCHECK_URL", "https://hc-ping.com/5e1f-uuid"),
            ("BAK_NOTIFY_ON", "always"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(
            env_config_annotation(vars),
            "BAK_DB_POSTGRES_USER='${POSTGRES_USER}'\n\
             BAK_DB_password='visible: the match is case-sensitive'\n\
             BAK_EMPTY=''\n\
             BAK_NOTIFY_ON='always'\n\
             BAK_PVC_NAME='data'\n\
             BAK_QUOTE='it'\\''s'"
        );
        assert_eq!(env_config_annotation(Vec::new()), "");
    }
}
