//! The object store: every object as a `serde_json::Value`, ordered by namespace/name per
//! resource, with the apiserver's bookkeeping — one global `resourceVersion` counter, uids,
//! timestamps, `generation`, optimistic concurrency, preconditions, the status-subresource
//! split and finalizers (a DELETE of an object with `metadata.finalizers` only sets
//! `deletionTimestamp`; the object goes when the last finalizer is removed). Pure and
//! synchronous; the HTTP layer and the handle both go through it.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use rand::Rng;
use serde_json::{json, Value};

use super::api_error::ApiError;
use super::resources::ResourceType;
use super::validation;

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type Key = (String, String);

/// Who writes: requests get the apiserver's rules; the test's seeds are stored as given (status,
/// uid, timestamps, `deletionTimestamp` included) so fixtures can describe any state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Origin {
    Api,
    Seed,
}

/// Which part of an object an update may change.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    /// The main resource: `status` is kept (for resources with a status subresource).
    Main,
    /// The `/status` subresource: only `status` changes.
    Status,
    /// A seed replacement: everything as given.
    Whole,
}

/// `DeleteOptions.preconditions`.
#[derive(Default, Debug)]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

#[derive(Default)]
pub struct Store {
    rv: u64,
    tables: HashMap<(&'static str, &'static str), BTreeMap<Key, Value>>,
}

/// Now as RFC 3339 UTC with seconds, as `metav1.Time` serializes.
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now().as_second();
    jiff::Timestamp::from_second(now)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn new_uid() -> String {
    let b: u128 = rand::rng().random();
    let b = (b & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{b:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn key(rt: &ResourceType, ns: Option<&str>, name: &str) -> Key {
    let ns = if rt.namespaced {
        ns.unwrap_or_default()
    } else {
        ""
    };
    (ns.to_string(), name.to_string())
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj["metadata"][field].as_str().filter(|s| !s.is_empty())
}

/// `metadata.finalizers` holds at least one entry.
pub fn has_finalizers(obj: &Value) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
}

/// `metadata.deletionTimestamp` is set.
pub fn is_terminating(obj: &Value) -> bool {
    meta_str(obj, "deletionTimestamp").is_some()
}

fn remove(obj: &mut Value, field: &str) {
    if let Some(m) = obj.as_object_mut() {
        m.remove(field);
    }
}

/// `to.field = from.field`, removing it from `to` when `from` has none.
fn copy_field(to: &mut Value, from: &Value, field: &str) {
    match from.get(field) {
        Some(v) => to[field] = v.clone(),
        None => remove(to, field),
    }
}

/// Everything but `metadata` and `status`: what bumps `generation` when it changes.
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    remove(&mut o, "metadata");
    remove(&mut o, "status");
    o
}

impl Store {
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    pub fn get(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> Option<&Value> {
        self.tables
            .get(&(rt.group, rt.plural))?
            .get(&key(rt, ns, name))
    }

    /// Objects in key order, in one namespace (or all), strictly after `after`.
    pub fn list<'a>(
        &'a self,
        rt: &ResourceType,
        ns: Option<&'a str>,
        after: Option<Key>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        let start = match (after, ns) {
            (Some(k), _) => Bound::Excluded(k),
            (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        self.tables
            .get(&(rt.group, rt.plural))
            .into_iter()
            .flat_map(move |t| t.range((start.clone(), Bound::Unbounded)))
            .take_while(move |(k, _)| ns.is_none_or(|ns| k.0 == ns))
    }

    fn check_kind(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        if let Some(kind) = obj["kind"].as_str().filter(|k| *k != rt.kind) {
            return Err(ApiError::bad_request(format!(
                "the kind of the provided object ({kind}) does not match the resource {} (kind {})",
                rt.qualified(),
                rt.kind
            )));
        }
        if let Some(v) = obj["apiVersion"]
            .as_str()
            .filter(|v| *v != rt.api_version())
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                rt.api_version()
            )));
        }
        Ok(())
    }

    fn validate(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
        let errors = validation::metadata(obj);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                rt,
                meta_str(obj, "name").unwrap_or_default(),
                &errors,
            ))
        }
    }

    /// POST: `ns` is the namespace of the request path (`None` for seeds, which carry their own).
    pub fn create(
        &mut self,
        rt: &ResourceType,
        mut obj: Value,
        ns: Option<&str>,
        origin: Origin,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        Self::check_kind(rt, &obj)?;
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let body_ns = meta_str(&obj, "namespace").map(str::to_string);
        if rt.namespaced {
            let ns = match (ns, body_ns) {
                (Some(path), Some(body)) if path != body => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                (Some(ns), _) => ns.to_string(),
                (None, Some(ns)) => ns,
                (None, None) => {
                    return Err(ApiError::bad_request(
                        "a namespaced object needs metadata.namespace",
                    ))
                }
            };
            obj["metadata"]["namespace"] = json!(ns);
        } else {
            remove(&mut obj["metadata"], "namespace");
        }
        let ns = meta_str(&obj, "namespace").map(str::to_string);
        if meta_str(&obj, "name").is_none() {
            let Some(prefix) = meta_str(&obj, "generateName").map(str::to_string) else {
                let cause = (
                    "metadata.name".to_string(),
                    "Required value: name or generateName is required".to_string(),
                );
                return Err(ApiError::invalid(rt, "", &[cause]));
            };
            let name = (0..10)
                .map(|_| format!("{prefix}{}", random_suffix()))
                .find(|n| self.get(rt, ns.as_deref(), n).is_none())
                .unwrap_or_else(|| format!("{prefix}{}", random_suffix()));
            obj["metadata"]["name"] = json!(name);
        }
        Self::validate(rt, &obj)?;
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if self.get(rt, ns.as_deref(), &name).is_some() {
            return Err(ApiError::already_exists(rt, &name));
        }
        let meta = &mut obj["metadata"];
        if origin == Origin::Api {
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "generation",
            ] {
                remove(meta, field);
            }
            if rt.status {
                remove(&mut obj, "status");
            }
        }
        let meta = &mut obj["metadata"];
        if meta["uid"].as_str().is_none_or(str::is_empty) {
            meta["uid"] = json!(new_uid());
        }
        if meta["creationTimestamp"].as_str().is_none_or(str::is_empty) {
            meta["creationTimestamp"] = json!(now_rfc3339());
        }
        if !meta["generation"].is_i64() {
            meta["generation"] = json!(1);
        }
        if dry_run {
            remove(meta, "resourceVersion");
            return Ok(obj);
        }
        obj["metadata"]["resourceVersion"] = json!(self.next_rv());
        self.tables
            .entry((rt.group, rt.plural))
            .or_default()
            .insert(key(rt, ns.as_deref(), &name), obj.clone());
        Ok(obj)
    }

    /// PUT (and the end of every PATCH): `new` replaces the object within `scope`. A non-empty
    /// `metadata.resourceVersion` in `new` is a precondition, as is a `metadata.uid`.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        new: Value,
        scope: Scope,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let Some(current) = self.get(rt, ns, name) else {
            return Err(ApiError::not_found(rt, name));
        };
        Self::check_kind(rt, &new)?;
        if let Some(n) = meta_str(&new, "name").filter(|n| *n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        if let (true, Some(body_ns)) = (rt.namespaced, meta_str(&new, "namespace")) {
            if Some(body_ns) != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        let current_rv = meta_str(current, "resourceVersion").unwrap_or_default();
        if meta_str(&new, "resourceVersion").is_some_and(|rv| rv != current_rv) {
            return Err(ApiError::modified(rt, name));
        }
        let current_uid = meta_str(current, "uid").unwrap_or_default();
        if let Some(uid) = meta_str(&new, "uid").filter(|u| *u != current_uid) {
            return Err(ApiError::conflict(
                rt,
                name,
                &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {current_uid}"),
            ));
        }
        let mut next = match scope {
            Scope::Main | Scope::Whole => new,
            Scope::Status => {
                let mut next = current.clone();
                copy_field(&mut next, &new, "status");
                next
            }
        };
        if scope == Scope::Main && rt.status {
            copy_field(&mut next, current, "status");
        }
        next["apiVersion"] = json!(rt.api_version());
        next["kind"] = json!(rt.kind);
        if !next["metadata"].is_object() {
            next["metadata"] = json!({});
        }
        let mut fixed = vec!["name", "namespace", "uid", "creationTimestamp"];
        if scope != Scope::Whole {
            fixed.extend(["deletionTimestamp", "generation"]);
        }
        for field in fixed {
            copy_field(&mut next["metadata"], &current["metadata"], field);
        }
        if scope != Scope::Whole || !next["metadata"]["generation"].is_i64() {
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
            let changed = spec_part(current) != spec_part(&next);
            next["metadata"]["generation"] = json!(generation + i64::from(changed));
        }
        next["metadata"]["resourceVersion"] = json!(current_rv);
        if is_terminating(current) && scope != Scope::Whole {
            let had: Vec<&Value> = current["metadata"]["finalizers"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            let added = next["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|a| a.iter().any(|f| !had.contains(&f)));
            if added {
                let cause = (
                    "metadata.finalizers".to_string(),
                    "Forbidden: no new finalizers can be added if the object is being deleted"
                        .to_string(),
                );
                return Err(ApiError::invalid(rt, name, &[cause]));
            }
        }
        Self::validate(rt, &next)?;
        let last_finalizer_removed = has_finalizers(current) && !has_finalizers(&next);
        if next == *current || dry_run {
            // A no-op write keeps the resourceVersion, as in the apiserver.
            return Ok(next);
        }
        next["metadata"]["resourceVersion"] = json!(self.next_rv());
        let table = self.tables.entry((rt.group, rt.plural)).or_default();
        if is_terminating(&next) && last_finalizer_removed {
            // The last finalizer is gone: so is the object. (A pod in its grace period has
            // none and stays until the kubelet deletes it.)
            table.remove(&key(rt, ns, name));
        } else {
            table.insert(key(rt, ns, name), next.clone());
        }
        Ok(next)
    }

    /// DELETE: the object is gone at once and returned — unless it has finalizers: then it only
    /// gets `deletionTimestamp` (kept from an earlier DELETE) and stays, terminating, until an
    /// update removes the last one. No grace period, no garbage collection.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        pre: &Preconditions,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let Some(current) = self.get(rt, ns, name) else {
            return Err(ApiError::not_found(rt, name));
        };
        let uid = meta_str(current, "uid").unwrap_or_default();
        if let Some(want) = pre.uid.as_deref().filter(|u| *u != uid) {
            return Err(ApiError::conflict(
                rt,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                ),
            ));
        }
        let rv = meta_str(current, "resourceVersion").unwrap_or_default();
        if let Some(want) = pre.resource_version.as_deref().filter(|v| *v != rv) {
            return Err(ApiError::conflict(
                rt,
                name,
                &format!("Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}"),
            ));
        }
        if dry_run {
            return Ok(current.clone());
        }
        if has_finalizers(current) {
            if is_terminating(current) {
                return Ok(current.clone());
            }
            let mut terminating = current.clone();
            terminating["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
            terminating["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            terminating["metadata"]["resourceVersion"] = json!(self.next_rv());
            self.tables
                .entry((rt.group, rt.plural))
                .or_default()
                .insert(key(rt, ns, name), terminating.clone());
            return Ok(terminating);
        }
        let rv = self.next_rv();
        let mut gone = self
            .tables
            .get_mut(&(rt.group, rt.plural))
            .and_then(|t| t.remove(&key(rt, ns, name)))
            .unwrap_or_default();
        gone["metadata"]["resourceVersion"] = json!(rv);
        Ok(gone)
    }
}
