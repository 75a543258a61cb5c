//! Running a command inside a container over the pod exec WebSocket.
//!
//! stdout and stderr are read concurrently (an unread stream stalls the session); stderr lines
//! are logged as they arrive so a long dump shows its warnings live. Both are decoded lossily:
//! a byte that is not UTF-8 (a LATIN1 name in a tool's warning) becomes U+FFFD, never an error
//! that fails a command which succeeded. stdin carries the secrets and then stays open for as
//! long as the command runs: the in-pod scripts treat stdin EOF as "backup-ns is gone" and stop
//! themselves, and API servers before 1.30 speak only the v4 exec protocol, which has no way to
//! close stdin alone: kube closes the whole WebSocket, and the exit status is lost with it. A
//! timeout drops the connection, which closes stdin in the container, so the remote pipeline
//! stops too.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::{Error, Result};

/// Output kept from one stream; scripts print a few lines, dumps go to files, never to stdout.
const MAX_CAPTURE: usize = 256 * 1024;

/// A stderr line longer than this is logged in pieces, so a stream without newlines cannot grow
/// a line buffer without bound.
const MAX_LINE: usize = 16 * 1024;

/// What a finished command produced; stdout and stderr decoded lossily.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

impl ExecOutput {
    /// The last non-empty stderr line, for error messages.
    pub fn stderr_summary(&self) -> String {
        self.stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string()
    }
}

/// One command to run in one container.
#[derive(Debug, Clone)]
pub struct ExecRequest<'a> {
    pub pod: &'a str,
    pub container: &'a str,
    pub argv: Vec<String>,
    /// Written to stdin first (secrets travel here, never in argv).
    pub stdin: String,
    /// Keep stdin open until the command exits (the dump's watchdog needs it). `false` closes
    /// stdin after writing `stdin`, which a v4-only API server (before 1.30) takes as the end
    /// of the whole session: the exit status never arrives. Every script runs with `true`.
    pub hold_stdin: bool,
    pub timeout: Duration,
    /// Short name for logs, e.g. `postgres check`.
    pub what: &'a str,
}

/// Runs the command and returns its output and exit code. A non-zero exit is not an error here;
/// a lost connection, a missing status or the timeout is. stdout is captured up to
/// [`MAX_CAPTURE`] bytes and drained past it (an unread stream would stall the session).
pub async fn run(pods: &Api<Pod>, req: ExecRequest<'_>) -> Result<ExecOutput> {
    let mut capture = Capture::default();
    let out = run_streaming(pods, req, &mut capture).await?;
    Ok(ExecOutput {
        stdout: String::from_utf8_lossy(&capture.kept).into_owned(),
        stderr: out.stderr,
        exit_code: out.exit_code,
    })
}

/// The sink of [`run`]: keeps the first [`MAX_CAPTURE`] bytes, accepts and drops the rest.
#[derive(Default)]
struct Capture {
    kept: Vec<u8>,
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let room = MAX_CAPTURE.saturating_sub(self.kept.len()).min(buf.len());
        self.kept.extend_from_slice(&buf[..room]);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// What a streamed command left besides the bytes it streamed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOutput {
    /// Bytes copied from stdout into the sink.
    pub bytes: u64,
    pub stderr: String,
    pub exit_code: i32,
}

/// Size of one stdout chunk copied to the sink: memory stays at a few of these whatever the
/// size of the output.
const STREAM_CHUNK: usize = 64 * 1024;

/// Runs the command with stdout copied chunk by chunk into `sink`, so memory does not grow with
/// the output (a dump streamed out of the container); [`run`] is this with a capturing sink.
/// stderr is read concurrently and logged. A failed write to the sink is an error and drops the
/// connection, which stops the command in the container. The sink is flushed, not shut down. A
/// failed write to stdin is not an error by itself: the command then sees EOF, and its exit
/// status (or the missing one) says what happened.
pub async fn run_streaming<W>(
    pods: &Api<Pod>,
    req: ExecRequest<'_>,
    sink: &mut W,
) -> Result<StreamOutput>
where
    W: tokio::io::AsyncWrite + Unpin + ?Sized,
{
    run_piped(pods, req, None, sink).await
}

/// [`run_streaming`] that also copies `source` into stdin after [`ExecRequest::stdin`], chunk by
/// chunk (a dump streamed into the database): memory stays flat. Stdin is then held or closed
/// as the request says. A failed read from `source` is an error and drops the connection.
pub async fn run_fed<W>(
    pods: &Api<Pod>,
    req: ExecRequest<'_>,
    source: &mut (dyn tokio::io::AsyncRead + Unpin + Send),
    sink: &mut W,
) -> Result<StreamOutput>
where
    W: tokio::io::AsyncWrite + Unpin + ?Sized,
{
    run_piped(pods, req, Some(source), sink).await
}

async fn run_piped<W>(
    pods: &Api<Pod>,
    req: ExecRequest<'_>,
    source: Option<&mut (dyn tokio::io::AsyncRead + Unpin + Send)>,
    sink: &mut W,
) -> Result<StreamOutput>
where
    W: tokio::io::AsyncWrite + Unpin + ?Sized,
{
    let params = AttachParams::default()
        .container(req.container)
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .max_stdout_buf_size(STREAM_CHUNK)
        .max_stderr_buf_size(64 * 1024);
    let what = req.what;
    let mut attached = pods
        .exec(req.pod, req.argv.clone(), &params)
        .await
        .map_err(|e| {
            Error::Exec(format!(
                "{what}: cannot exec in pod {}/{}: {e}",
                req.pod, req.container
            ))
        })?;
    let mut stdin = attached
        .stdin()
        .ok_or_else(|| Error::Exec(format!("{what}: no stdin stream")))?;
    let mut stdout = attached
        .stdout()
        .ok_or_else(|| Error::Exec(format!("{what}: no stdout stream")))?;
    let stderr = attached
        .stderr()
        .ok_or_else(|| Error::Exec(format!("{what}: no stderr stream")))?;
    let status = attached
        .take_status()
        .ok_or_else(|| Error::Exec(format!("{what}: no status stream")))?;

    let work = async move {
        let feed = async {
            stdin
                .write_all(req.stdin.as_bytes())
                .await
                .map_err(StreamError::Stdin)?;
            if let Some(source) = source {
                let mut chunk = vec![0u8; STREAM_CHUNK];
                loop {
                    let n = source.read(&mut chunk).await.map_err(StreamError::Source)?;
                    if n == 0 {
                        break;
                    }
                    stdin
                        .write_all(&chunk[..n])
                        .await
                        .map_err(StreamError::Stdin)?;
                }
            }
            stdin.flush().await.map_err(StreamError::Stdin)?;
            if req.hold_stdin {
                // Keep the writer alive until the command is done: dropping it would close the
                // remote stdin (protocol v5) and trip the script's watchdog.
                Ok::<_, StreamError>(Some(stdin))
            } else {
                stdin.shutdown().await.map_err(StreamError::Stdin)?;
                Ok(None)
            }
        };
        let feed = async {
            match feed.await {
                Ok(held) => Ok(held),
                Err(StreamError::Stdin(e)) => {
                    tracing::debug!("{what}: writing stdin: {e}");
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        };
        let copy = async {
            let mut chunk = vec![0u8; STREAM_CHUNK];
            let mut total = 0u64;
            loop {
                let n = stdout.read(&mut chunk).await.map_err(StreamError::Read)?;
                if n == 0 {
                    sink.flush().await.map_err(StreamError::Write)?;
                    return Ok::<_, StreamError>(total);
                }
                sink.write_all(&chunk[..n])
                    .await
                    .map_err(StreamError::Write)?;
                total += n as u64;
            }
        };
        let read_err = async { log_stderr(stderr, what).await.map_err(StreamError::Stderr) };
        // `try_join`: a failed write ends the session at once; waiting for stderr and the
        // status of a command whose output nobody takes would hang until the timeout.
        let outputs = async { tokio::try_join!(copy, read_err) };
        tokio::pin!(feed, outputs);
        let mut held = None;
        let mut fed = false;
        let (bytes, err) = loop {
            tokio::select! {
                // stdout and stderr closed: the command is done. A feed still writing (a
                // command that stopped reading, e.g. a restore that failed half-way) is
                // dropped rather than waited for: nobody will read the rest.
                o = &mut outputs => break o?,
                f = &mut feed, if !fed => {
                    held = f?;
                    fed = true;
                }
            }
        };
        let status = status.await;
        drop(held);
        Ok::<_, StreamError>((bytes, err, status))
    };

    let result = match tokio::time::timeout(req.timeout, work).await {
        Ok(r) => r,
        Err(_) => {
            attached.abort();
            return Err(Error::Exec(format!(
                "{what}: timed out after {}s; the connection was closed so the command stops in the container",
                req.timeout.as_secs()
            )));
        }
    };
    let (bytes, stderr, status) = match result {
        Ok(r) => r,
        Err(e) => {
            // Dropping the session closes stdin in the container: the command stops.
            attached.abort();
            let e = match e {
                StreamError::Read(e) => format!("reading stdout: {e}"),
                StreamError::Write(e) => format!("writing the output: {e}"),
                StreamError::Stderr(e) => format!("reading stderr: {e}"),
                StreamError::Source(e) => format!("reading what goes to stdin: {e}"),
                StreamError::Stdin(e) => format!("writing stdin: {e}"),
            };
            return Err(Error::Exec(format!("{what}: {e}")));
        }
    };
    let status = status.ok_or_else(|| {
        Error::Exec(format!(
            "{what}: the connection to pod {} closed before the command reported its exit status",
            req.pod
        ))
    })?;
    let exit_code = exit_code_of(&status).map_err(|m| Error::Exec(format!("{what}: {m}")))?;
    Ok(StreamOutput {
        bytes,
        stderr,
        exit_code,
    })
}

enum StreamError {
    /// Writing stdin failed: the command sees EOF and its exit status says the rest.
    Stdin(std::io::Error),
    /// Reading the source of stdin failed.
    Source(std::io::Error),
    Read(std::io::Error),
    Write(std::io::Error),
    Stderr(std::io::Error),
}

/// Logs stderr line by line (bytes, lossily decoded) and keeps the first [`MAX_CAPTURE`].
async fn log_stderr(
    stderr: impl tokio::io::AsyncRead + Unpin,
    what: &str,
) -> std::io::Result<String> {
    let mut stderr = BufReader::new(stderr);
    let (mut kept, mut line) = (String::new(), Vec::new());
    loop {
        line.clear();
        let n = (&mut stderr)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(kept);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        tracing::info!(target: "backup_ns::pod", "{what}: {text}");
        if kept.len() < MAX_CAPTURE {
            kept.push_str(text);
            kept.push('\n');
        }
    }
}

/// Reads the exit code from the exec status the way kubectl does: `Success` is 0, a
/// `NonZeroExitCode` failure carries the code in `details.causes[reason=ExitCode]`; any other
/// failure (e.g. the container is gone) is an error.
pub fn exit_code_of(
    status: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
) -> Result<i32, String> {
    match status.status.as_deref() {
        Some("Success") => Ok(0),
        _ if status.reason.as_deref() == Some("NonZeroExitCode") => status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
            .and_then(|c| c.message.as_deref())
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| {
                format!(
                    "non-zero exit without an exit code: {}",
                    status.message.clone().unwrap_or_default()
                )
            }),
        _ => Err(format!(
            "exec failed: {} {}",
            status.reason.clone().unwrap_or_default(),
            status.message.clone().unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

    fn status(v: serde_json::Value) -> Status {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn exit_codes_from_kubelet_status() {
        assert_eq!(
            exit_code_of(&status(serde_json::json!({"status": "Success"}))),
            Ok(0)
        );
        let failed = status(serde_json::json!({
            "status": "Failure", "reason": "NonZeroExitCode",
            "message": "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}
        }));
        assert_eq!(exit_code_of(&failed), Ok(3));
        let other = status(
            serde_json::json!({"status": "Failure", "reason": "InternalError", "message": "container not found"}),
        );
        assert!(exit_code_of(&other)
            .unwrap_err()
            .contains("container not found"));
    }

    #[test]
    fn stderr_summary_is_the_last_line() {
        let o = ExecOutput {
            stdout: String::new(),
            stderr: "warn\nbackup-ns: pg_dump not found\n\n".into(),
            exit_code: 1,
        };
        assert_eq!(o.stderr_summary(), "backup-ns: pg_dump not found");
    }
}
