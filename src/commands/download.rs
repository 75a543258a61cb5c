//! `download --live`: the current dump file out of the running database container (the
//! original's `downloadDump`), streamed chunk by chunk, verified while it streams, then renamed.
//!
//! The bytes go through [`VerifyingSink`], which writes them on, hashes them (sha256) and
//! decompresses them into a small window ([`DumpVerifier`]): memory stays at a few chunks
//! whatever the size of the dump. A file is written under a temporary name in the target's
//! directory and renamed over the target only when the gzip stream was whole (CRC and length
//! trailer) and the decompressed text ends with the engine's completion trailer, so an
//! existing file is only ever replaced by a complete dump; a failed, corrupt or interrupted
//! download removes the temporary file and exits 1. With `-f -` the bytes go to stdout as
//! they arrive: the verdict is the exit status.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::dbops::{self, engine_name};
use crate::cli::{CreateArgs, DownloadArgs, OutputFormat};
use crate::db::Engine;
use crate::settings::{DbJob, Raw, Settings};
use crate::{Error, ExitStatus, Result};

/// How much decompressed text is kept to look for the completion trailer.
const TAIL: usize = 8 * 1024;

/// The line each engine's dump tool writes last when the dump finished.
pub fn completion_trailer(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => "-- PostgreSQL database dump complete",
        // mysqldump and mariadb-dump alike: `-- Dump completed on 2024-…`.
        Engine::Mysql => "-- Dump completed",
    }
}

/// The last [`TAIL`]..2×[`TAIL`] bytes of the decompressed text.
#[derive(Default)]
struct Tail {
    buf: Vec<u8>,
}

impl Write for Tail {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf
            .extend_from_slice(&b[b.len().saturating_sub(2 * TAIL)..]);
        if self.buf.len() > 2 * TAIL {
            let cut = self.buf.len() - TAIL;
            self.buf.drain(..cut);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A verified download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub bytes: u64,
    pub sha256: String,
}

/// Checks a gzipped dump as it streams by: the sha256 of the bytes, the gzip stream (every
/// member's CRC-32 and length trailer; a truncated stream has none) and the engine's completion
/// trailer near the end of the text. Pure: feed it chunks, then [`DumpVerifier::finish`].
pub struct DumpVerifier {
    engine: Engine,
    decoder: flate2::write::MultiGzDecoder<Tail>,
    sha: Sha256,
    bytes: u64,
    error: Option<String>,
}

impl DumpVerifier {
    pub fn new(engine: Engine) -> DumpVerifier {
        DumpVerifier {
            engine,
            decoder: flate2::write::MultiGzDecoder::new(Tail::default()),
            sha: Sha256::new(),
            bytes: 0,
            error: None,
        }
    }

    /// Takes the next chunk; an error means the stream is not (or no longer) a valid gzip
    /// stream, and stays.
    pub fn update(&mut self, chunk: &[u8]) -> std::result::Result<(), String> {
        self.sha.update(chunk);
        self.bytes += chunk.len() as u64;
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if let Err(e) = self.decoder.write_all(chunk) {
            let e = format!("not a valid gzip stream at byte {}: {e}", self.bytes);
            self.error = Some(e.clone());
            return Err(e);
        }
        Ok(())
    }

    /// The verdict once every chunk is in.
    pub fn finish(mut self) -> std::result::Result<Verified, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.bytes == 0 {
            return Err("the dump is empty".into());
        }
        self.decoder.try_finish().map_err(|e| {
            format!(
                "the gzip stream is incomplete or corrupt after {} bytes ({e}): a truncated dump",
                self.bytes
            )
        })?;
        let trailer = completion_trailer(self.engine);
        let tail = String::from_utf8_lossy(&self.decoder.get_ref().buf);
        if !tail.contains(trailer) {
            return Err(format!(
                "the dump does not end with {trailer:?}: the dump tool did not finish"
            ));
        }
        let sha256 = self
            .sha
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Verified {
            bytes: self.bytes,
            sha256,
        })
    }
}

/// Writes to `inner` and feeds what was written to a [`DumpVerifier`]; a chunk that breaks the
/// gzip stream fails the write, which ends the exec session at once.
pub struct VerifyingSink<W> {
    pub inner: W,
    pub verifier: DumpVerifier,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for VerifyingSink<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => match this.verifier.update(&buf[..n]) {
                Ok(()) => Poll::Ready(Ok(n)),
                Err(e) => Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e))),
            },
            other => other,
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Where the download goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Stdout,
    File(PathBuf),
}

/// The result, printed as JSON with `-o json` (on stderr with `-f -`, where stdout is the dump).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadReport {
    pub namespace: String,
    pub engine: &'static str,
    pub pod: String,
    pub container: String,
    /// The dump file in the container (from a snapshot: on the restored volume, relative to
    /// its root).
    pub source: String,
    /// The snapshot read (`None`: `--live`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// With `--dry-run` from a snapshot: the temporary PVC and helper pod it would create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifests: Option<Vec<serde_json::Value>>,
    /// The local file, or `-`.
    pub file: String,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The one database of a command that takes `create`'s database flags.
fn one_database<'a>(settings: &'a Settings, command: &str) -> Result<&'a DbJob> {
    match settings.databases.as_slice() {
        [job] => Ok(job),
        [] => Err(Error::config(
            "BAK_DB_SKIP (--db-skip)",
            "true",
            format!("{command} needs a database: set BAK_DB_POSTGRES=true or BAK_DB_MYSQL=true"),
        )),
        _ => Err(Error::config(
            "BAK_DB_POSTGRES / BAK_DB_MYSQL",
            "true",
            format!("{command} takes one database; set only one of them"),
        )),
    }
}

/// `-f`: a file (an existing directory means the dump file's name in it), or stdout. The
/// directory must exist: checked before anything is read.
fn target_of(file: Option<&str>, dump_file: &str) -> Result<Target> {
    let base = dump_file.rsplit('/').next().unwrap_or("dump.sql.gz");
    let path = match file {
        Some("-") => return Ok(Target::Stdout),
        None => PathBuf::from(base),
        Some(f) if Path::new(f).is_dir() => Path::new(f).join(base),
        Some(f) => PathBuf::from(f),
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::config(
            "BAK_DOWNLOAD_FILE (--file)",
            path.display().to_string(),
            format!("directory {} does not exist", dir.display()),
        ));
    }
    Ok(Target::File(path))
}

/// The temporary name in the target's directory (the rename stays on one filesystem).
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dump".into());
    path.with_file_name(format!(".{name}.backup-ns-{}.part", std::process::id()))
}

pub async fn main(args: &DownloadArgs, output: OutputFormat) -> ExitStatus {
    match run(args, output).await {
        Ok(status) => status,
        Err(e) => super::report_error(&e),
    }
}

async fn run(args: &DownloadArgs, output: OutputFormat) -> Result<ExitStatus> {
    let live = Raw::opt("BAK_DOWNLOAD_LIVE", &args.live).bool()?;
    let file = Raw::opt("BAK_DOWNLOAD_FILE", &args.file).get()?;
    let from_snapshot = args.from.snapshot.is_some() || args.from.before.is_some();
    match (live, from_snapshot) {
        (true, true) => Err(Error::config(
            "BAK_DOWNLOAD_LIVE (--live)",
            "true",
            "give a snapshot or --live, not both",
        )),
        (false, false) => Err(Error::config(
            "SNAPSHOT",
            "",
            "required: a VolumeSnapshot name, `latest --pvc PVC`, `--before TIME --pvc PVC`, or \
             --live for the running database's current dump file",
        )),
        (true, false) => run_live(args, output, file).await,
        (false, true) => run_snapshot(args, output, file).await,
    }
}

/// `download SNAPSHOT`: the dump on a volume restored from the snapshot, read by a helper pod.
async fn run_snapshot(
    args: &DownloadArgs,
    output: OutputFormat,
    file: Option<&str>,
) -> Result<ExitStatus> {
    use super::from_snapshot::{connect_and_gather, FromSnapshot};
    use super::workbench::{Purpose, CONTAINER};
    let opts = FromSnapshot::from_args(&args.from, &args.create)?;
    let timeout = Raw::opt("BAK_DOWNLOAD_TIMEOUT", &args.timeout).timeout_or("30m")?;
    let super::from_snapshot::Session {
        client,
        requests,
        now,
        g,
    } = connect_and_gather(&opts, &args.create, false).await?;
    let (Some(job), Some(dump)) = (g.job(), g.dump_path.clone()) else {
        return Err(Error::Precondition(format!(
            "volumesnapshot {}/{} is a volume-only snapshot (no database in its env-config): \
             there is no dump to download; `backup-ns restore pvc` gives you its volume",
            g.namespace, g.snapshot_name
        )));
    };
    let engine = job.target.engine;
    let target = target_of(file, &dump)?;
    // `cat` runs in any image: without the database's pod (gone, or the app scaled down) the
    // helper runs the one a volume-only verify uses.
    let image = g
        .db_pod
        .is_none()
        .then_some(super::verify::DEFAULT_VOLUME_IMAGE);
    let helper = g.helper(image, opts.helper_uid)?;
    let plan = g.plan(Purpose::Download, &helper, timeout, now)?;
    let mut report = DownloadReport {
        namespace: g.namespace.clone(),
        engine: engine_name(engine),
        pod: plan.name.clone(),
        container: CONTAINER.into(),
        source: dump.clone(),
        snapshot: Some(g.snapshot_name.clone()),
        file: match &target {
            Target::Stdout => "-".into(),
            Target::File(p) => p.display().to_string(),
        },
        ..Default::default()
    };
    if g.settings.dry_run {
        tracing::info!(
            "dry run: would restore volumesnapshot {} into a temporary PVC, read {dump} in helper \
             pod {} ({}) and write it to {}",
            g.snapshot_name,
            plan.name,
            helper.image,
            report.file
        );
        report.manifests = Some(vec![plan.pvc.clone(), plan.pod.clone()]);
        print_report(&report, output, target == Target::Stdout);
        return Ok(ExitStatus::Success);
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &g.namespace);
    let work = download(
        &pods,
        (&plan.name, CONTAINER),
        &dump,
        timeout,
        engine,
        &target,
    );
    let result = super::workbench::within(&requests, &plan, "download", work).await;
    finish(result, &mut report, output, &target)
}

/// Logs and prints the outcome; no partial file stays behind.
fn finish(
    result: Result<Verified>,
    report: &mut DownloadReport,
    output: OutputFormat,
    target: &Target,
) -> Result<ExitStatus> {
    // Whatever happened, no partial file stays behind (the future that wrote it is gone).
    if let Target::File(p) = target {
        let _ = std::fs::remove_file(temp_path(p));
    }
    let status = match result {
        Ok(v) => {
            tracing::info!(
                bytes = v.bytes,
                sha256 = v.sha256.as_str(),
                "downloaded {} from pod {} to {}",
                report.source,
                report.pod,
                report.file
            );
            report.bytes = Some(v.bytes);
            report.sha256 = Some(v.sha256);
            ExitStatus::Success
        }
        Err(e) => {
            report.error = Some(e.to_string());
            super::report_error(&e)
        }
    };
    print_report(report, output, *target == Target::Stdout);
    Ok(status)
}

/// `download --live`: the current dump file of the running database container.
async fn run_live(
    args: &DownloadArgs,
    output: OutputFormat,
    file: Option<&str>,
) -> Result<ExitStatus> {
    let settings = super::settings_from(&args.create)?;
    let job = one_database(&settings, "download")?;
    let target = target_of(file, &job.target.dump_file)?;

    let (client, namespace) = connect(&settings).await?;
    let r = dbops::resolve(&client, &namespace, job).await?;
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let mut report = DownloadReport {
        namespace,
        engine: engine_name(job.target.engine),
        pod: r.pod.clone(),
        container: job.container.clone(),
        source: job.target.dump_file.clone(),
        file: match &target {
            Target::Stdout => "-".into(),
            Target::File(p) => p.display().to_string(),
        },
        ..Default::default()
    };
    if settings.dry_run {
        // `create`'s flags include --dry-run: resolve the pod, read and write nothing.
        tracing::info!(
            "dry run: would download {} from pod {} to {}",
            report.source,
            report.pod,
            report.file
        );
        print_report(&report, output, target == Target::Stdout);
        return Ok(ExitStatus::Success);
    }
    let result = tokio::select! {
        r = download(
            &pods,
            (&r.pod, &job.container),
            &job.target.dump_file,
            settings.dump_timeout,
            job.target.engine,
            &target,
        ) => r,
        sig = signal() => Err(Error::Exec(format!("{sig}: download stopped"))),
    };
    finish(result, &mut report, output, &target)
}

/// SIGTERM or SIGINT (never, if the handlers cannot be installed).
pub async fn signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => std::future::pending().await,
    }
}

pub(crate) async fn connect(settings: &Settings) -> Result<(kube::Client, String)> {
    let (client, context_namespace) = super::client(true)
        .await
        .map_err(|e| Error::Exec(format!("{e:#}")))?;
    let namespace = settings.namespace.clone().unwrap_or(context_namespace);
    crate::labels::validate_dns1123_label("namespace of the kube context", &namespace)?;
    Ok((client, namespace))
}

async fn download(
    pods: &Api<Pod>,
    (pod, container): (&str, &str),
    file: &str,
    timeout: std::time::Duration,
    engine: Engine,
    target: &Target,
) -> Result<Verified> {
    let what = format!("{file} in pod {pod}");
    let stream_what = format!("{} download", engine_name(engine));
    let verify = |verifier: DumpVerifier| {
        verifier
            .finish()
            .map_err(|e| Error::Exec(format!("{what}: {e}")))
    };
    match target {
        Target::Stdout => {
            let mut sink = VerifyingSink {
                inner: tokio::io::stdout(),
                verifier: DumpVerifier::new(engine),
            };
            dbops::stream_file(
                pods,
                (pod, container),
                file,
                timeout,
                &stream_what,
                &mut sink,
            )
            .await?;
            sink.inner
                .flush()
                .await
                .map_err(|e| Error::Exec(format!("stdout: {e}")))?;
            verify(sink.verifier)
        }
        Target::File(path) => {
            let temp = temp_path(path);
            let out = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)
                .await
                .map_err(|e| Error::Exec(format!("cannot create {}: {e}", temp.display())))?;
            let mut sink = VerifyingSink {
                inner: tokio::io::BufWriter::with_capacity(256 * 1024, out),
                verifier: DumpVerifier::new(engine),
            };
            dbops::stream_file(
                pods,
                (pod, container),
                file,
                timeout,
                &stream_what,
                &mut sink,
            )
            .await?;
            let write_err = |e: std::io::Error| Error::Exec(format!("{}: {e}", temp.display()));
            sink.inner.flush().await.map_err(write_err)?;
            sink.inner.get_ref().sync_all().await.map_err(write_err)?;
            let v = verify(sink.verifier)?;
            tokio::fs::rename(&temp, path).await.map_err(|e| {
                Error::Exec(format!(
                    "cannot rename {} to {}: {e}",
                    temp.display(),
                    path.display()
                ))
            })?;
            Ok(v)
        }
    }
}

fn print_report(report: &DownloadReport, output: OutputFormat, to_stderr: bool) {
    let text = match output {
        OutputFormat::Json => match serde_json::to_string_pretty(report) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot render the result: {e}");
                return;
            }
        },
        OutputFormat::Text => match (&report.bytes, &report.sha256) {
            (Some(bytes), Some(sha)) => format!(
                "{}: {bytes} bytes, sha256 {sha} (from {} in pod {})",
                report.file, report.source, report.pod
            ),
            _ => return,
        },
    };
    if to_stderr {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

/// `create`'s arguments for a `postgres …`/`mysql …` command: its engine only.
pub fn with_engine(args: &CreateArgs, engine: Engine) -> CreateArgs {
    let mut a = args.clone();
    let (on, off) = match engine {
        Engine::Postgres => (&mut a.postgres, &mut a.mysql),
        Engine::Mysql => (&mut a.mysql, &mut a.postgres),
    };
    *on = Some("true".into());
    *off = Some("false".into());
    a.db_skip = Some("false".into());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    fn verify(bytes: &[u8], engine: Engine) -> std::result::Result<Verified, String> {
        let mut v = DumpVerifier::new(engine);
        // Odd chunk sizes: the verdict must not depend on where chunks end.
        for chunk in bytes.chunks(7) {
            v.update(chunk)?;
        }
        v.finish()
    }

    const PG: &[u8] = b"--\n-- PostgreSQL database dump\n--\nCREATE TABLE t (id int);\n--\n-- PostgreSQL database dump complete\n--\n\n";

    #[test]
    fn a_complete_dump_verifies_with_its_sha256() {
        let mut text = b"INSERT INTO t VALUES (1);\n".repeat(5000);
        text.extend_from_slice(PG);
        let gz = gzip(&text);
        let v = verify(&gz, Engine::Postgres).unwrap();
        assert_eq!(v.bytes, gz.len() as u64);
        let expected: String = Sha256::digest(&gz)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(v.sha256, expected);
        let my = gzip(b"-- MariaDB dump\nCREATE TABLE t (id int);\n-- Dump completed on 2026-12-01  3:00:00\n");
        assert!(verify(&my, Engine::Mysql).is_ok());
    }

    #[test]
    fn a_truncated_dump_is_refused() {
        let gz = gzip(PG);
        for cut in [1, 4, 8, gz.len() / 2] {
            let e = verify(&gz[..gz.len() - cut], Engine::Postgres).unwrap_err();
            assert!(e.contains("incomplete or corrupt"), "cut {cut}: {e}");
        }
        assert!(verify(&[], Engine::Postgres).unwrap_err().contains("empty"));
    }

    #[test]
    fn a_corrupt_stream_is_refused() {
        let mut gz = gzip(PG);
        // The CRC-32 in the trailer.
        let n = gz.len();
        gz[n - 8] ^= 0xff;
        assert!(verify(&gz, Engine::Postgres).is_err());
        let e = verify(b"CREATE TABLE t (id int);\n", Engine::Postgres).unwrap_err();
        assert!(e.contains("not a valid gzip stream"), "{e}");
    }

    #[test]
    fn a_dump_without_the_engines_trailer_is_refused() {
        let gz = gzip(b"--\n-- PostgreSQL database dump\n--\nCREATE TABLE t (id int);\n");
        let e = verify(&gz, Engine::Postgres).unwrap_err();
        assert!(e.contains("PostgreSQL database dump complete"), "{e}");
        // The other engine's trailer is not this one's.
        assert!(verify(&gzip(PG), Engine::Mysql).is_err());
    }

    #[test]
    fn the_temporary_file_is_beside_the_target() {
        let t = temp_path(Path::new("/backups/dump.sql.gz"));
        assert_eq!(t.parent(), Some(Path::new("/backups")));
        assert!(t
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".dump.sql.gz.backup-ns-"));
    }
}
