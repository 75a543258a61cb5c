//! The HTTP/1.1 server: accepts connections on 127.0.0.1, applies injected faults, hands the
//! request to the router and records it. Upgrades (exec) stay enabled on every connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::api_error::ApiError;
use super::faults::Outcome;
use super::log::{RequestRecord, Unexpected, Verb};
use super::router::{self, error_response, Handled, Query};
use super::{lock, Shared};

/// Returned by the service to make hyper close the connection without a response.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(shared.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DropConnection> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query_text = req.uri().query().unwrap_or_default().to_string();
    let query = Query::parse(&query_text);
    let target = router::parse_path(&path);
    let verb = target
        .as_ref()
        .map_or(Verb::Other, |t| router::verb(req.method(), t, &query));
    let mut record = RequestRecord {
        method,
        path,
        query: query_text,
        verb,
        resource: target.as_ref().map(|t| t.rt.plural),
        subresource: target.as_ref().and_then(|t| t.sub.clone()),
        namespace: target.as_ref().and_then(|t| t.ns.clone()),
        name: target.as_ref().and_then(|t| t.name.clone()),
        code: 0,
        exec: None,
    };
    let hit = lock(&shared.faults).hit(&record.method, &record.path);
    if let Some(d) = hit.as_ref().and_then(|h| h.delay) {
        tokio::time::sleep(d).await;
    }
    let (outcome, after_serving) = match hit {
        Some(h) => (h.outcome, h.after_serving),
        None => (Outcome::Proceed, false),
    };
    let served = match (&outcome, target) {
        // Answered by the fault alone: the request never reaches the store.
        (Outcome::Drop | Outcome::Respond(_), _) if !after_serving => None,
        (_, Some(t)) => Some(router::route(&shared, req, t, verb, &query).await),
        (_, None) => Some(Handled::Unexpected {
            code: 404,
            why: "no such resource in the emulation's table".into(),
        }),
    };
    // With `after_serving` the request took effect above and only its answer is replaced.
    let handled = match (outcome, served) {
        (Outcome::Drop, _) => {
            lock(&shared.log).requests.push(record);
            return Err(DropConnection);
        }
        (Outcome::Respond(e), _) => Handled::ok(error_response(&e)),
        (Outcome::Proceed, Some(handled)) => handled,
        (Outcome::Proceed, None) => unreachable!("a request without a fault outcome is served"),
    };
    let response = match handled {
        Handled::Served { response, exec } => {
            record.exec = exec;
            response
        }
        Handled::Unexpected { code, why } => {
            let unexpected = Unexpected {
                method: record.method.clone(),
                path: record.path.clone(),
                query: record.query.clone(),
                why,
            };
            let message = format!("the API emulation does not implement {unexpected}");
            lock(&shared.log).unexpected.push(unexpected);
            error_response(&ApiError::new(code, message))
        }
    };
    record.code = response.status().as_u16();
    lock(&shared.log).requests.push(record);
    Ok(response)
}
