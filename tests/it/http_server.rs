//! A local HTTP server for tests of outgoing requests (Pushgateway, notifications): it records
//! every request and answers with a fixed status, or never answers. It serves from its own
//! thread and runtime, so a test can run the binary synchronously meanwhile. Shared by the
//! integration tests and the library's unit tests (`#[path]`).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// How the server answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// This status, empty body.
    Status(u16),
    /// This status, the body quoting the request's path and query (as servers explaining a
    /// 404 do).
    Echo(u16),
    /// Reads the request, never answers.
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: String,
}

pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl TestServer {
    pub fn start(behaviour: Behaviour) -> TestServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let recorded = recorded.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                            let recorded = recorded.clone();
                            async move {
                                let header = |name: &str| {
                                    req.headers()
                                        .get(name)
                                        .and_then(|v| v.to_str().ok())
                                        .map(str::to_owned)
                                };
                                let mut r = Recorded {
                                    method: req.method().to_string(),
                                    path: req
                                        .uri()
                                        .path_and_query()
                                        .map(|p| p.to_string())
                                        .unwrap_or_default(),
                                    content_type: header("content-type"),
                                    authorization: header("authorization"),
                                    body: String::new(),
                                };
                                let body = req.into_body().collect().await;
                                r.body = body
                                    .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                                    .unwrap_or_default();
                                let echo = format!("no such hook: {}", r.path);
                                recorded.lock().unwrap().push(r);
                                match behaviour {
                                    Behaviour::Echo(code) => Ok::<_, Infallible>(
                                        Response::builder()
                                            .status(code)
                                            .body(Full::new(Bytes::from(echo)))
                                            .unwrap(),
                                    ),
                                    Behaviour::Status(code) => Ok::<_, Infallible>(
                                        Response::builder()
                                            .status(code)
                                            .body(Full::new(Bytes::new()))
                                            .unwrap(),
                                    ),
                                    Behaviour::Hang => {
                                        tokio::time::sleep(Duration::from_secs(3600)).await;
                                        unreachable!("the client gave up long ago")
                                    }
                                }
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        TestServer { url, requests }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}
