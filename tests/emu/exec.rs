//! `pods/exec` over WebSocket, as the apiserver speaks it to kube-rs: the `v5.channel.k8s.io` and
//! `v4.channel.k8s.io` subprotocols (kube offers both, v5 first; v5 adds the client's stdin close
//! signal on channel 255), one-byte channel prefixes, and the exit status as a JSON `Status` on
//! channel 3. A server before 1.30 speaks only v4 ([`ExecProtocols::V4Only`]): there a client
//! closes stdin by closing the WebSocket. A WebSocket close from the client ends the session, as
//! on a real server: the child's stdin is closed and nothing more is sent, the exit status
//! included. The command runs on this machine as a child process in a per-pod working
//! directory, with the pod spec's literal env, as the emulation's own user (root in the test
//! suite, like the official database images' exec) unless [`ExecEnv::uid_gid`] says otherwise,
//! so in-pod scripts are exercised for real: output streams as it comes, and a client that goes
//! away closes the child's stdin (never kills it). For a pod created through the API the kubelet
//! stand-in decides cwd, `TMPDIR`, user and groups from the pod spec
//! ([`super::kubelet::exec_plan`]), refuses a pod that is not running (400 without a node; the
//! kubelet's "container not found" otherwise: an `InternalError` status on the error channel for
//! v5, as 1.30+ API servers translate it, a plain 500 for v4) and kills the child's process group
//! with the pod.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::api_error::ApiError;
use super::kubelet::NotRunning;
use super::log::ExecCall;
use super::resources::ResourceType;
use super::router::{error_response, Handled, Query};
use super::{lock, Shared};

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const CLOSE: u8 = 255;

/// How exec children of one pod run on this machine (`Emu::set_pod_exec`).
#[derive(Clone, Debug, Default)]
pub struct ExecEnv {
    /// Working directory; the emulation's own cwd when `None`.
    pub cwd: Option<PathBuf>,
    /// `PATH` for the child; the host's `PATH` when `None`.
    pub path: Option<String>,
    /// Run the child as this uid/gid (e.g. not as root, for PostgreSQL tools); as the
    /// emulation's own user (root in CI, like the official database images' exec) when `None`.
    pub uid_gid: Option<(u32, u32)>,
    /// Extra environment, after the pod spec's.
    pub extra_env: Vec<(String, String)>,
}

/// Which exec subprotocols the emulated API server accepts (`EmuBuilder::exec_protocols`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExecProtocols {
    /// `v5.channel.k8s.io` and `v4.channel.k8s.io`, as 1.30 and later.
    #[default]
    V5AndV4,
    /// Only `v4.channel.k8s.io`, as before 1.30 (v5 was alpha and off by default in 1.29).
    V4Only,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    V4,
    V5,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::V4 => "v4.channel.k8s.io",
            Protocol::V5 => "v5.channel.k8s.io",
        }
    }

    /// The first protocol in the client's list that we speak, as the apiserver chooses.
    fn negotiate(offered: &str, speak: ExecProtocols) -> Option<Self> {
        offered.split(',').map(str::trim).find_map(|p| match p {
            "v5.channel.k8s.io" if speak == ExecProtocols::V5AndV4 => Some(Protocol::V5),
            "v4.channel.k8s.io" => Some(Protocol::V4),
            _ => None,
        })
    }

    fn supported(speak: ExecProtocols) -> &'static str {
        match speak {
            ExecProtocols::V5AndV4 => "v5.channel.k8s.io v4.channel.k8s.io",
            ExecProtocols::V4Only => "v4.channel.k8s.io",
        }
    }
}

/// Everything the session needs once upgraded.
struct Session {
    protocol: Protocol,
    argv: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    /// stderr merged into stdout, as a terminal does.
    tty: bool,
    env: Vec<(String, String)>,
    exec_env: ExecEnv,
    /// A container of a pod the kubelet runs: the kubelet's refusal when it is not running,
    /// else the child's supplementary groups and its pod (to be killed with it).
    kubelet: Option<KubeletSession>,
}

struct KubeletSession {
    refuse: Option<String>,
    groups: Vec<u32>,
    shared: Arc<Shared>,
    uid: String,
}

fn header(req: &Request<Incoming>, name: http::header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn fail(e: ApiError, exec: Option<ExecCall>) -> Handled {
    Handled::Served {
        response: error_response(&e),
        exec,
    }
}

/// The env of a container: `PATH`, `HOSTNAME`, the spec's literal `env` values, then extras.
fn environment(container: &Value, name: &str, exec_env: &ExecEnv) -> Vec<(String, String)> {
    let path = exec_env
        .path
        .clone()
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    let mut env = vec![
        ("PATH".to_string(), path),
        ("HOSTNAME".to_string(), name.to_string()),
    ];
    let literal = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_string(),
                e["value"].as_str().unwrap_or_default().to_string(),
            ))
            .filter(|_| e.get("valueFrom").is_none())
        });
    env.extend(literal);
    env.extend(exec_env.extra_env.iter().cloned());
    env
}

/// Checks the request like the apiserver does before upgrading, then upgrades and spawns the
/// session.
pub async fn handle(
    shared: &Arc<Shared>,
    mut req: Request<Incoming>,
    ns: &str,
    pod_name: &str,
    q: &Query,
) -> Handled {
    let pods = ResourceType::find("", "v1", "pods").expect("pods in the table");
    let Some(pod) = lock(&shared.store).get(pods, Some(ns), pod_name).cloned() else {
        return fail(ApiError::not_found(pods, pod_name), None);
    };
    let containers: Vec<&Value> = pod["spec"]["containers"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let container = match (q.get("container"), names.as_slice()) {
        (Some(c), _) if !c.is_empty() => c.to_string(),
        (_, [only]) => only.to_string(),
        _ => {
            let message = format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                names.join(" ")
            );
            return fail(ApiError::bad_request(message), None);
        }
    };
    let Some(spec) = containers.iter().find(|c| c["name"] == container.as_str()) else {
        return fail(
            ApiError::bad_request(format!(
                "container {container} is not valid for pod {pod_name}"
            )),
            None,
        );
    };
    if let Some(phase @ ("Succeeded" | "Failed")) = pod["status"]["phase"].as_str() {
        let message =
            format!("cannot exec into a container in a completed pod; current phase is {phase}");
        return fail(ApiError::bad_request(message), None);
    }
    // A pod created through the API runs as its spec says (unless the test set how).
    let explicit = lock(&shared.exec_envs)
        .get(&(ns.to_string(), pod_name.to_string()))
        .cloned();
    let plan = match explicit {
        Some(_) => None,
        None => super::kubelet::exec_plan(shared, &pod, spec),
    };
    let (kubelet_env, kubelet) = match plan {
        None => (None, None),
        Some(Err(NotRunning::NoHost)) => {
            let message = format!("pod {pod_name} does not have a host assigned");
            return fail(ApiError::bad_request(message), None);
        }
        Some(Err(NotRunning::ContainerNotFound)) => {
            let refuse = Some(format!("container not found (\"{container}\")"));
            let (shared, uid) = (shared.clone(), String::new());
            let groups = Vec::new();
            (
                None,
                Some(KubeletSession {
                    refuse,
                    groups,
                    shared,
                    uid,
                }),
            )
        }
        Some(Ok(p)) => {
            let (shared, uid, groups) = (shared.clone(), p.uid, p.groups);
            let session = KubeletSession {
                refuse: None,
                groups,
                shared,
                uid,
            };
            (Some(p.env), Some(session))
        }
    };
    // A tty exec: the kubelet drops stderr (its output goes to the terminal, i.e. stdout) and
    // takes resize messages on channel 4. No pseudo-terminal here: the child's stderr is merged
    // into stdout and resizes are ignored.
    let tty = q.flag("tty");
    if !(q.flag("stdin") || q.flag("stdout") || q.flag("stderr")) {
        let message = "you must specify at least one of stdin, stdout, stderr";
        return fail(ApiError::bad_request(message), None);
    }
    let argv = q.all("command");
    if argv.is_empty() {
        return fail(
            ApiError::bad_request("you must specify at least 1 command"),
            None,
        );
    }
    let call = ExecCall {
        pod: pod_name.to_string(),
        container: container.clone(),
        argv: argv.clone(),
    };
    let upgrade =
        header(&req, http::header::UPGRADE).is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let Some(key) = header(&req, http::header::SEC_WEBSOCKET_KEY).filter(|_| upgrade) else {
        return fail(
            ApiError::bad_request("Upgrade request required"),
            Some(call),
        );
    };
    let offered = header(&req, http::header::SEC_WEBSOCKET_PROTOCOL).unwrap_or_default();
    let speak = shared.exec_protocols;
    let Some(protocol) = Protocol::negotiate(offered, speak) else {
        let why = format!(
            "requested protocol(s) are not supported: [{offered}]; supports [{}]",
            Protocol::supported(speak)
        );
        return Handled::Unexpected { code: 400, why };
    };
    if let (Some(refuse), Protocol::V4) =
        (kubelet.as_ref().and_then(|k| k.refuse.as_ref()), protocol)
    {
        // Before 1.30 the API server proxies the upgrade to the kubelet, whose error response
        // reaches the client as is.
        let mut response = Response::new(Full::new(refuse.clone().into()));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return Handled::Served {
            response,
            exec: Some(call),
        };
    }
    let accept = derive_accept_key(key.as_bytes());
    let exec_env = kubelet_env.or(explicit).unwrap_or_default();
    let session = Session {
        protocol,
        env: environment(spec, pod_name, &exec_env),
        argv,
        stdin: q.flag("stdin"),
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr") && !tty,
        tty,
        exec_env,
        kubelet,
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(run(on_upgrade, session));
    let mut response = Response::new(Full::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("websocket"),
    );
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        http::HeaderValue::from_static(protocol.name()),
    );
    if let Ok(v) = http::HeaderValue::from_str(&accept) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    Handled::Served {
        response,
        exec: Some(call),
    }
}

type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// The sending half; once the client is gone, frames are dropped (the child's output is still
/// drained so it never blocks on a full pipe).
struct Out {
    sink: SplitSink<Ws, Message>,
    alive: bool,
}

impl Out {
    async fn send(&mut self, frame: Vec<u8>) {
        if self.alive && self.sink.send(Message::binary(frame)).await.is_err() {
            self.alive = false;
        }
    }

    /// The client closed the WebSocket: the session is over, nothing more reaches it.
    async fn end(&mut self) {
        if self.alive {
            self.alive = false;
            let _ = self.sink.close().await;
        }
    }

    fn framed(channel: u8, data: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(data.len() + 1);
        f.push(channel);
        f.extend_from_slice(data);
        f
    }
}

#[derive(Serialize)]
struct Cause {
    reason: &'static str,
    message: String,
}

#[derive(Serialize)]
struct Details {
    causes: Vec<Cause>,
}

/// The `Status` the kubelet writes on the error channel, field order included.
#[derive(Serialize)]
struct ExitStatusBody {
    metadata: Value,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
}

fn exit_code(status: std::io::Result<ExitStatus>) -> i32 {
    match status {
        Ok(s) => s
            .code()
            .or_else(|| s.signal().map(|sig| 128 + sig))
            .unwrap_or(1),
        Err(_) => 1,
    }
}

fn status_frame(argv: &[String], code: i32) -> Vec<u8> {
    let body = if code == 0 {
        ExitStatusBody {
            metadata: Value::Object(Default::default()),
            status: "Success",
            message: None,
            reason: None,
            details: None,
        }
    } else {
        ExitStatusBody {
            metadata: Value::Object(Default::default()),
            status: "Failure",
            message: Some(format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                argv.join(" ")
            )),
            reason: Some("NonZeroExitCode"),
            details: Some(Details { causes: vec![Cause { reason: "ExitCode", message: code.to_string() }] }),
        }
    };
    Out::framed(ERROR, &serde_json::to_vec(&body).unwrap_or_default())
}

/// Copies one output pipe into frames until EOF.
async fn pump(mut pipe: impl AsyncRead + Unpin, channel: u8, tx: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; 32 * 1024];
    while let Ok(n @ 1..) = pipe.read(&mut buf).await {
        // The receiver lives until every pump ends; a failed send cannot happen.
        let _ = tx.send(Out::framed(channel, &buf[..n])).await;
    }
}

/// Feeds stdin frames to the child; closes its stdin on the v5 close signal. A WebSocket close
/// from the client (how kube closes stdin on v4) or a dropped connection ends the session: the
/// child's stdin is closed and `ended` fires.
async fn feed_stdin(
    mut stream: SplitStream<Ws>,
    mut stdin: Option<ChildStdin>,
    protocol: Protocol,
    ended: oneshot::Sender<()>,
) {
    while let Some(Ok(msg)) = stream.next().await {
        match msg {
            Message::Binary(b) => match (b.first(), b.get(1)) {
                (Some(&STDIN), _) => {
                    if let Some(pipe) = stdin.as_mut() {
                        if pipe.write_all(&b[1..]).await.is_err() {
                            stdin = None;
                        }
                    }
                }
                (Some(&CLOSE), Some(&STDIN)) if protocol == Protocol::V5 => stdin = None,
                // Resize (4) needs a tty, which the emulation does not give.
                _ => {}
            },
            Message::Close(_) => break,
            _ => {}
        }
    }
    drop(stdin);
    let _ = ended.send(());
}

async fn run(on_upgrade: OnUpgrade, s: Session) {
    let Ok(upgraded) = on_upgrade.await else {
        return;
    };
    let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
    let (sink, stream) = ws.split();
    let mut out = Out { sink, alive: true };
    if let Some(refuse) = s.kubelet.as_ref().and_then(|k| k.refuse.as_ref()) {
        // From 1.30 the API server upgrades a v5 client itself and reports the kubelet's
        // refusal as an internal error on the error channel.
        let cause = format!("unable to upgrade connection: {refuse}");
        let body = serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("Internal error occurred: {cause}"),
            "reason": "InternalError",
            "details": { "causes": [{ "message": cause }] },
            "code": 500,
        });
        out.send(Out::framed(
            ERROR,
            &serde_json::to_vec(&body).unwrap_or_default(),
        ))
        .await;
        let _ = out.sink.close().await;
        return;
    }
    let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    let mut cmd = if s.tty {
        let mut c = Command::new("sh");
        c.args(["-c", "exec \"$0\" \"$@\" 2>&1"]).args(&s.argv);
        c
    } else {
        let mut c = Command::new(&s.argv[0]);
        c.args(&s.argv[1..]);
        c
    };
    cmd.env_clear()
        .envs(s.env.iter().map(|(k, v)| (k, v)))
        .stdin(pipe(s.stdin))
        .stdout(pipe(s.stdout))
        .stderr(pipe(s.stderr));
    if let Some(cwd) = &s.exec_env.cwd {
        cmd.current_dir(cwd);
    }
    match (s.exec_env.uid_gid, &s.kubelet) {
        (Some((uid, gid)), Some(k)) => {
            let groups = k.groups.clone();
            // SAFETY: only async-signal-safe calls between fork and exec. std would drop the
            // supplementary groups (fsGroup) that a container has, so set them here.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        (Some((uid, gid)), None) => {
            cmd.uid(uid).gid(gid);
        }
        (None, _) => {}
    }
    if s.kubelet.is_some() {
        // Its own process group, so that stopping the pod kills everything it started.
        cmd.process_group(0);
    }
    // The apiserver opens each channel with an empty frame (kube-rs skips them).
    for (on, channel) in [(s.stdout, STDOUT), (s.stderr, STDERR), (true, ERROR)] {
        if on {
            out.send(vec![channel]).await;
        }
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let message = format!(
                "OCI runtime exec failed: exec failed: unable to start container process: exec: {:?}: {e}: unknown\r\n",
                s.argv[0]
            );
            if s.stderr {
                out.send(Out::framed(STDERR, message.as_bytes())).await;
            }
            out.send(status_frame(&s.argv, 126)).await;
            let _ = out.sink.close().await;
            return;
        }
    };
    let pid = child.id().unwrap_or_default();
    if let Some(k) = &s.kubelet {
        super::kubelet::child_started(&k.shared, &k.uid, pid);
    }
    let (ended_tx, mut ended) = oneshot::channel();
    let stdin_task = tokio::spawn(feed_stdin(stream, child.stdin.take(), s.protocol, ended_tx));
    let (tx, mut rx) = mpsc::channel(16);
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(pump(stdout, STDOUT, tx.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(pump(stderr, STDERR, tx.clone()));
    }
    drop(tx);
    // The child's output is drained to its end even after the session ended (a full pipe would
    // block it); only the client stops getting it.
    let mut session = true;
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Some(frame) => out.send(frame).await,
                None => break,
            },
            _ = &mut ended, if session => {
                session = false;
                out.end().await;
            }
        }
    }
    let code = exit_code(child.wait().await);
    if let Some(k) = &s.kubelet {
        super::kubelet::child_ended(&k.shared, &k.uid, pid);
    }
    out.send(status_frame(&s.argv, code)).await;
    let _ = out.sink.close().await;
    stdin_task.abort();
}
