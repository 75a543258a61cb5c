//! `postgres|mysql shell`: the database's own client in its container, logged in the way
//! `create` logs in (same target resolution, same credentials), the password never in argv.
//!
//! With a terminal on stdin the exec asks for a tty, like `kubectl exec -it`: the local terminal
//! goes raw for the session (every key, Ctrl-C included, is the client's), its size is sent at
//! the start and on SIGWINCH, and it is restored however the session ends. Without one, the exec
//! is a plain one: stdin is the client's input, its stdout and stderr come back on ours, so SQL
//! can be piped through it. Either way the exit status is the client's.
//!
//! The password travels after a handshake (see [`crate::db::shell`]): the script prints a marker
//! once the remote terminal no longer echoes, and only then do we write the password line and
//! start forwarding our stdin.

use std::io::Read;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, TerminalSize};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::cli::{CreateArgs, OutputFormat};
use crate::db::shell::{self as dbshell, MarkerScan, Scanned};
use crate::db::{Engine, Script};
use crate::terminal::{self, RawMode};
use crate::{Error, ExitStatus, Result};

use super::dbops::{self, engine_name, Resolved};

/// How long the script may take to be ready for the password (it checks its arguments and finds
/// the client first): long enough for a loaded node, short enough not to hang a script forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// One chunk of forwarded input or output.
const CHUNK: usize = 16 * 1024;

/// What `--dry-run` prints: the session it would open.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShellPlan {
    pub namespace: String,
    pub engine: &'static str,
    pub pod: String,
    pub container: String,
    pub client: &'static str,
    /// A tty exec (stdin is a terminal) or a plain one.
    pub tty: bool,
    /// The script's name and arguments (`sh -c <script>` before them); no secret.
    pub command: Vec<String>,
    pub dry_run: bool,
}

pub async fn main(args: &CreateArgs, engine: Engine, output: OutputFormat) -> ExitStatus {
    match run(args, engine, output).await {
        Ok(status) => status,
        Err(e) => super::report_error(&e),
    }
}

async fn run(args: &CreateArgs, engine: Engine, output: OutputFormat) -> Result<ExitStatus> {
    let settings = super::settings_from(&super::download::with_engine(args, engine))?;
    if output == OutputFormat::Json && !settings.dry_run {
        return Err(Error::config(
            "BAK_OUTPUT (-o)",
            "json",
            "shell is an interactive session whose output is the client's; -o json only goes \
             with --dry-run (the session it would open)",
        ));
    }
    let job = &settings.databases[0];
    let (client, namespace) = super::download::connect(&settings).await?;
    let r = dbops::resolve(&client, &namespace, job).await?;
    let script = dbshell::shell_script(&job.target);
    let tty = terminal::stdin_is_terminal();
    let plan = ShellPlan {
        namespace: namespace.clone(),
        engine: engine_name(engine),
        pod: r.pod.clone(),
        container: job.container.clone(),
        client: dbshell::client_name(engine),
        tty,
        command: script.argv.get(3..).unwrap_or_default().to_vec(),
        dry_run: settings.dry_run,
    };
    if settings.dry_run {
        match output {
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&plan)
                    .map_err(|e| Error::Exec(format!("cannot render the result: {e}")))?
            ),
            OutputFormat::Text => println!(
                "dry run: would open {} in pod {}/{}, container {} ({} exec): sh -c <script> {}",
                plan.client,
                plan.namespace,
                plan.pod,
                plan.container,
                if tty { "tty" } else { "plain" },
                plan.command.join(" ")
            ),
        }
        return Ok(ExitStatus::Success);
    }
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let code = session(&pods, &r, script, tty, engine).await?;
    if code == 0 {
        return Ok(ExitStatus::Success);
    }
    tracing::info!("{} in pod {} exited with status {code}", plan.client, r.pod);
    Ok(ExitStatus::Client(u8::try_from(code).unwrap_or(1)))
}

/// Runs the session to the client's exit code.
async fn session(
    pods: &Api<Pod>,
    r: &Resolved<'_>,
    script: Script,
    tty: bool,
    engine: Engine,
) -> Result<i32> {
    let what = format!("{} shell", engine_name(engine));
    // A tty merges stderr into stdout; the API server refuses to attach both.
    let params = AttachParams::default()
        .container(&r.job.container)
        .stdin(true)
        .stdout(true)
        .stderr(!tty)
        .tty(tty)
        .max_stdout_buf_size(CHUNK)
        .max_stderr_buf_size(CHUNK);
    let mut attached = pods
        .exec(&r.pod, script.argv.clone(), &params)
        .await
        .map_err(|e| {
            Error::Exec(format!(
                "{what}: cannot exec in pod {}/{}: {e}",
                r.pod, r.job.container
            ))
        })?;
    let missing = |s: &str| Error::Exec(format!("{what}: no {s} stream"));
    let mut remote_in = attached.stdin().ok_or_else(|| missing("stdin"))?;
    let mut remote_out = attached.stdout().ok_or_else(|| missing("stdout"))?;
    let remote_err = attached.stderr();
    let status = attached.take_status().ok_or_else(|| missing("status"))?;
    let resize = attached.terminal_size();

    // Raw from here to the end of this function: the guard restores the terminal on every
    // return, error or not.
    let _raw = match tty {
        true => Some(RawMode::enable().map_err(|e| {
            Error::Exec(format!("{what}: cannot put the terminal in raw mode: {e}"))
        })?),
        false => None,
    };
    let mut terminate = Signals::new().map_err(|e| Error::Exec(format!("{what}: {e}")))?;
    let mut local_out = tokio::io::stdout();
    let err_copy = async {
        if let Some(remote_err) = remote_err {
            // A failed local stderr is not worth ending the session for.
            let _ = copy(remote_err, &mut tokio::io::stderr()).await;
        }
    };

    let work = async {
        // 1. Until the marker: pass output on, hold our input back.
        let rest = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            until_marker(&mut remote_out, &mut local_out),
        )
        .await
        .map_err(|_| {
            format!(
                "the script in the container was not ready within {}s",
                HANDSHAKE_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("reading the client's output: {e}"))?;
        let ready = rest.is_some();
        if let Some(rest) = rest {
            local_out
                .write_all(&rest)
                .await
                .map_err(|e| e.to_string())?;
            local_out.flush().await.map_err(|e| e.to_string())?;
            // 2. The password line, then our stdin.
            remote_in
                .write_all(script.stdin.as_bytes())
                .await
                .map_err(|e| format!("writing the password: {e}"))?;
        }
        let input = async {
            if ready {
                let mut local_in = spawn_stdin_reader();
                while let Some(chunk) = local_in.recv().await {
                    if remote_in.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
            }
            // Our stdin ended (or the script never got that far): so does the client's. Over
            // the v4 protocol (API servers before 1.30) this closes the whole session.
            let _ = remote_in.shutdown().await;
            drop(remote_in);
            std::future::pending::<()>().await
        };
        let sizes = async {
            if let Some(mut tx) = resize {
                // A full queue drops a size: the next SIGWINCH sends the current one again.
                let mut send = || {
                    if let Some((width, height)) = terminal::size() {
                        let _ = tx.try_send(TerminalSize { width, height });
                    }
                };
                send();
                if let Ok(mut winch) = signal(SignalKind::window_change()) {
                    while winch.recv().await.is_some() {
                        send();
                    }
                }
            }
            std::future::pending::<()>().await
        };
        let output = async {
            let copied = copy(&mut remote_out, &mut local_out).await;
            err_copy.await;
            copied.map_err(|e| format!("forwarding the client's output: {e}"))?;
            Ok::<_, String>(status.await)
        };
        tokio::select! {
            r = output => r,
            _ = input => unreachable!("pending"),
            _ = sizes => unreachable!("pending"),
        }
    };
    let result = tokio::select! {
        r = work => r,
        sig = terminate.recv() => Err(format!("{sig}: the session was closed")),
    };
    let status = match result {
        Ok(s) => s,
        Err(m) => {
            attached.abort();
            return Err(Error::Exec(format!("{what} in pod {}: {m}", r.pod)));
        }
    };
    let status = status.ok_or_else(|| {
        // Over exec protocol v4 kube can only close stdin by closing the whole session.
        let hint = if tty {
            ""
        } else {
            " (an API server before Kubernetes 1.30 ends the session when stdin ends; use the \
             shell from a terminal there)"
        };
        Error::Exec(format!(
            "{what}: the connection to pod {} closed before the client reported its exit \
             status{hint}",
            r.pod
        ))
    })?;
    crate::exec::exit_code_of(&status).map_err(|m| Error::Exec(format!("{what}: {m}")))
}

/// Reads the client's output up to the ready marker, passing on what comes before it. `Some`
/// with the output after the marker, `None` when the output ended without one (the script
/// failed first: its message has been passed on).
async fn until_marker<R, W>(from: &mut R, to: &mut W) -> std::io::Result<Option<Vec<u8>>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut scan = MarkerScan::default();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            to.write_all(&scan.finish()).await?;
            to.flush().await?;
            return Ok(None);
        }
        match scan.push(&buf[..n]) {
            Scanned::Before(b) => to.write_all(&b).await?,
            Scanned::Found { before, after } => {
                to.write_all(&before).await?;
                return Ok(Some(after));
            }
        }
        to.flush().await?;
    }
}

/// Copies until EOF, flushing each chunk (an interactive client's prompt has no newline).
async fn copy<R, W>(mut from: R, to: &mut W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
    }
}

/// Our stdin in chunks, read on a thread of its own: a read from a terminal blocks until a key
/// is pressed, and a plain thread (unlike a task of the runtime's blocking pool) does not keep
/// the process alive once the session is over.
fn spawn_stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(4);
    let reader = move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; CHUNK];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(reader)
    {
        tracing::warn!("cannot read stdin: {e}");
    }
    rx
}

/// SIGTERM and SIGHUP end the session cleanly (the terminal restored) rather than killing us
/// with the terminal left raw.
struct Signals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}
