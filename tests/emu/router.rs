//! From an HTTP request to a store operation: parses `/api/v1/…` and `/apis/G/V/…` paths against
//! the resource table, classifies the verb, and implements GET/LIST/POST/PUT/PATCH/DELETE with
//! the apiserver's status codes and bodies. What it cannot emulate it reports as unexpected.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::Value;

use super::api_error::ApiError;
use super::log::{ExecCall, Verb};
use super::patch;
use super::resources::ResourceType;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{Key, Origin, Preconditions, Scope, Store};
use super::{controller, exec, lock, Shared};

/// The resource a request addresses.
#[derive(Debug)]
pub struct Target {
    pub rt: &'static ResourceType,
    pub ns: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

/// The outcome of routing one request.
pub enum Handled {
    /// Answered as the apiserver would answer.
    Served {
        response: Response<Full<Bytes>>,
        exec: Option<ExecCall>,
    },
    /// Not emulated: the server answers `code` with a `Status` naming the request, and records
    /// it as unexpected.
    Unexpected { code: u16, why: String },
}

impl Handled {
    pub fn ok(response: Response<Full<Bytes>>) -> Self {
        Handled::Served {
            response,
            exec: None,
        }
    }
}

pub fn json_response(code: u16, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn object_response(code: u16, obj: &Value) -> Response<Full<Bytes>> {
    json_response(code, serde_json::to_vec(obj).unwrap_or_default())
}

pub fn error_response(e: &ApiError) -> Response<Full<Bytes>> {
    let mut r = json_response(e.code, e.body());
    if let Some(secs) = e.retry_after {
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
    }
    r
}

/// Decodes one form-urlencoded query component (`+` is a space, `%XX` a byte).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(v)) => {
                out.push(v);
                i += 2;
            }
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded query string, repeated keys kept (`command=sh&command=-c`).
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: &str) -> Self {
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `true`/`1` as the apiserver's boolean parameters accept.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// Parses a path into the resource it addresses; `None` when it names nothing we serve.
pub fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect();
    if segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let owned = |s: Option<&&str>| s.map(|s| s.to_string());
    if let ["namespaces", ns, plural, tail @ ..] = rest {
        if let Some(rt) = ResourceType::find(group, version, plural).filter(|rt| rt.namespaced) {
            return (tail.len() <= 2).then(|| Target {
                rt,
                ns: Some(ns.to_string()),
                name: owned(tail.first()),
                sub: owned(tail.get(1)),
            });
        }
    }
    let [plural, tail @ ..] = rest else {
        return None;
    };
    let rt = ResourceType::find(group, version, plural)?;
    if tail.len() > 2 || (rt.namespaced && !tail.is_empty()) {
        return None;
    }
    Some(Target {
        rt,
        ns: None,
        name: owned(tail.first()),
        sub: owned(tail.get(1)),
    })
}

/// The apiserver's verb for a request on `t`.
pub fn verb(method: &Method, t: &Target, q: &Query) -> Verb {
    let sub = t.sub.as_deref();
    let sub_ok = match sub {
        None => true,
        Some("status") => t.rt.status,
        Some("exec") => t.rt.is("", "pods"),
        Some(_) => false,
    };
    if !sub_ok {
        return Verb::Other;
    }
    match (method.as_str(), t.name.is_some(), sub) {
        ("GET" | "POST", true, Some("exec")) => Verb::Exec,
        (_, _, Some("exec")) => Verb::Other,
        ("GET", false, _) if q.flag("watch") => Verb::Watch,
        ("GET", false, _) => Verb::List,
        ("GET", true, _) => Verb::Get,
        ("POST", false, _) if t.ns.is_some() || !t.rt.namespaced => Verb::Create,
        ("PUT", true, _) => Verb::Update,
        ("PATCH", true, _) => Verb::Patch,
        ("DELETE", true, None) => Verb::Delete,
        _ => Verb::Other,
    }
}

fn is_dry_run(q: &Query) -> bool {
    q.all("dryRun").iter().any(|v| v == "All")
}

async fn body_json(req: Request<Incoming>, allow_empty: bool) -> Result<Value, ApiError> {
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?
        .to_bytes();
    if allow_empty && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

/// Serves a recognized request (everything but faults, which the server applies first).
pub async fn route(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    target: Target,
    verb: Verb,
    q: &Query,
) -> Handled {
    let Target { rt, ns, name, sub } = target;
    let ns = ns.as_deref();
    let name = name.unwrap_or_default();
    let result: Reply = match verb {
        Verb::Get => lock(&shared.store)
            .get(rt, ns, &name)
            .map(|o| object_response(200, o))
            .ok_or_else(|| ApiError::not_found(rt, &name).into()),
        Verb::List => list(shared, rt, ns, q),
        Verb::Create => create(shared, req, rt, ns, q).await,
        Verb::Update => update(shared, req, rt, ns, &name, sub.as_deref(), q).await,
        Verb::Patch => patch(shared, req, rt, ns, &name, sub.as_deref(), q).await,
        Verb::Delete => delete(shared, req, rt, ns, &name, q).await,
        Verb::Exec => return exec::handle(shared, req, ns.unwrap_or_default(), &name, q).await,
        Verb::Watch => Err(Fail::Unexpected(
            501,
            "watch is not emulated (backup-ns polls)".into(),
        )),
        Verb::Other => Err(Fail::Unexpected(
            405,
            "no such verb or subresource on this resource".into(),
        )),
    };
    match result {
        Ok(r) => Handled::ok(r),
        Err(Fail::Api(e)) => Handled::ok(error_response(&e)),
        Err(Fail::Unexpected(code, why)) => Handled::Unexpected { code, why },
    }
}

/// Why a request got no success response.
enum Fail {
    /// What the apiserver would answer too.
    Api(ApiError),
    /// Something the emulation does not implement.
    Unexpected(u16, String),
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail::Api(e)
    }
}

type Reply = Result<Response<Full<Bytes>>, Fail>;

#[derive(Serialize)]
struct ListMeta {
    #[serde(rename = "resourceVersion")]
    resource_version: String,
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    continue_: Option<String>,
}

#[derive(Serialize)]
struct List<'a> {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: ListMeta,
    items: Vec<&'a Value>,
}

fn encode_continue((ns, name): &Key) -> String {
    format!("{ns}/{name}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> Option<Key> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let s = String::from_utf8(bytes?).ok()?;
    let (ns, name) = s.split_once('/')?;
    Some((ns.to_string(), name.to_string()))
}

fn list(shared: &Shared, rt: &ResourceType, ns: Option<&str>, q: &Query) -> Reply {
    let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or_default(), rt)
        .map_err(ApiError::bad_request)?;
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        None => usize::MAX,
        Some(l) => match l.parse::<usize>() {
            Ok(0) => usize::MAX,
            Ok(n) => n,
            Err(_) => return Err(ApiError::bad_request(format!("invalid limit {l:?}")).into()),
        },
    };
    let after = match q.get("continue").filter(|c| !c.is_empty()) {
        None => None,
        Some(token) => Some(decode_continue(token).ok_or_else(|| {
            ApiError::bad_request(format!("continue key is not valid: {token:?}"))
        })?),
    };
    let store = lock(&shared.store);
    let mut matching = store
        .list(rt, ns, after)
        .filter(|(_, o)| labels.matches(o["metadata"].get("labels")) && fields.matches(o));
    let page: Vec<(&Key, &Value)> = matching.by_ref().take(limit).collect();
    let more = page.len() == limit && matching.next().is_some();
    let body = List {
        kind: format!("{}List", rt.kind),
        api_version: rt.api_version(),
        metadata: ListMeta {
            resource_version: store.resource_version().to_string(),
            continue_: more
                .then(|| page.last().map(|(k, _)| encode_continue(k)))
                .flatten(),
        },
        items: page.iter().map(|(_, v)| *v).collect(),
    };
    Ok(json_response(
        200,
        serde_json::to_vec(&body).unwrap_or_default(),
    ))
}

async fn create(
    shared: &Shared,
    req: Request<Incoming>,
    rt: &'static ResourceType,
    ns: Option<&str>,
    q: &Query,
) -> Reply {
    let body = body_json(req, false).await?;
    let obj = shared.create_object(rt, body, ns, Origin::Api, is_dry_run(q))?;
    Ok(object_response(201, &obj))
}

fn scope(sub: Option<&str>) -> Scope {
    if sub == Some("status") {
        Scope::Status
    } else {
        Scope::Main
    }
}

async fn update(
    shared: &Shared,
    req: Request<Incoming>,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    sub: Option<&str>,
    q: &Query,
) -> Reply {
    let body = body_json(req, false).await?;
    let mut store = lock(&shared.store);
    let obj = store.update(rt, ns, name, body, scope(sub), is_dry_run(q))?;
    finalized(&mut store, rt, ns, name, &obj);
    Ok(object_response(200, &obj))
}

/// After an update: a terminating snapshot whose last finalizer was removed is gone, and takes
/// a `Delete`-policy content along.
fn finalized(store: &mut Store, rt: &ResourceType, ns: Option<&str>, name: &str, obj: &Value) {
    if rt.is("snapshot.storage.k8s.io", "volumesnapshots")
        && obj["metadata"]["deletionTimestamp"].is_string()
        && store.get(rt, ns, name).is_none()
    {
        controller::delete_content(store, obj);
    }
}

async fn patch(
    shared: &Shared,
    req: Request<Incoming>,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    sub: Option<&str>,
    q: &Query,
) -> Reply {
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let json_patch = match content_type.as_str() {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => false,
        "application/json-patch+json" => true,
        "application/apply-patch+yaml" => {
            return Err(Fail::Unexpected(
                415,
                "server-side apply is not emulated".into(),
            ));
        }
        other => {
            return Err(ApiError::new(
                415,
                format!("the body of the request was in an unknown format ({other:?}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"),
            )
            .into());
        }
    };
    let body = body_json(req, false).await?;
    let mut store = lock(&shared.store);
    let current = store
        .get(rt, ns, name)
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    let next = if json_patch {
        patch::json_patch(current, &body).map_err(|e| ApiError::new(422, e))?
    } else {
        let mut next = current.clone();
        patch::merge(&mut next, &body);
        next
    };
    let obj = store.update(rt, ns, name, next, scope(sub), is_dry_run(q))?;
    finalized(&mut store, rt, ns, name, &obj);
    Ok(object_response(200, &obj))
}

async fn delete(
    shared: &Shared,
    req: Request<Incoming>,
    rt: &'static ResourceType,
    ns: Option<&str>,
    name: &str,
    q: &Query,
) -> Reply {
    let body = body_json(req, true).await?;
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let pre = Preconditions {
        uid: text(&body["preconditions"]["uid"]),
        resource_version: text(&body["preconditions"]["resourceVersion"]),
    };
    let dry_run = is_dry_run(q)
        || body["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let grace = body["gracePeriodSeconds"]
        .as_i64()
        .or_else(|| q.get("gracePeriodSeconds").and_then(|g| g.parse().ok()));
    let obj = shared.delete_object(rt, ns, name, &pre, grace, dry_run)?;
    Ok(object_response(200, &obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_resources() {
        let t =
            parse_path("/apis/snapshot.storage.k8s.io/v1/namespaces/ns/volumesnapshots/x/status")
                .unwrap();
        assert_eq!(
            (
                t.rt.plural,
                t.ns.as_deref(),
                t.name.as_deref(),
                t.sub.as_deref()
            ),
            ("volumesnapshots", Some("ns"), Some("x"), Some("status"))
        );
        let t = parse_path("/api/v1/namespaces/ns").unwrap();
        assert_eq!((t.rt.plural, t.name.as_deref()), ("namespaces", Some("ns")));
        assert!(parse_path("/api/v1/pods/x").is_none());
        assert!(parse_path("/apis/apps/v1/namespaces/ns/controllerrevisions").is_none());
        assert_eq!(
            Query::parse("&command=sh&command=a+b%3Bc").all("command"),
            ["sh", "a b;c"]
        );
    }
}
