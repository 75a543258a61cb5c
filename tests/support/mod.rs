//! Test support: real database servers (PostgreSQL, MariaDB) in temporary directories.
//!
//! The dump scripts are only worth what they do against real servers, so tests, benches and the
//! demo start real ones here: each in its own temporary directory, on a free 127.0.0.1 port, as
//! an unprivileged user (`nobody` when we are root, since neither server runs as root; the
//! current user otherwise), with a password-protected superuser, stopped and removed on drop.
//! Servers are spawned from one long-lived thread with `PR_SET_PDEATHSIG`, so they die with the
//! test process even when it is killed. [`Postgres::shared`] and [`Mariadb::shared`] give one
//! server per process for tests that can share it; those are stopped by an `atexit` hook.
//!
//! Needs `/usr/lib/postgresql/*/bin/{initdb,postgres,psql,pg_dump}` (Debian: postgresql) and
//! `mariadb-install-db`, `mariadbd`, `mariadb`, `mariadb-dump` (Debian: mariadb-server,
//! mariadb-client). Dependencies: libc and tempfile only.

mod mariadb;
mod postgres;
mod proxy;

pub use mariadb::Mariadb;
pub use postgres::Postgres;
pub use proxy::StallProxy;

use std::fs;
use std::io;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The uid and gid that servers and scripts run as when we are root (`nobody`), or `None` when
/// we are not root (then everything runs as the current user).
pub fn unprivileged() -> Option<(u32, u32)> {
    // SAFETY: getuid cannot fail; getpwnam returns null or a pointer to a static passwd entry,
    // read at once.
    unsafe {
        if libc::getuid() != 0 {
            return None;
        }
        let pw = libc::getpwnam(c"nobody".as_ptr());
        if pw.is_null() {
            Some((65534, 65534))
        } else {
            Some(((*pw).pw_uid, (*pw).pw_gid))
        }
    }
}

/// Makes `cmd` run as the unprivileged user (a no-op when we are not root).
pub fn as_unprivileged(cmd: &mut Command) -> &mut Command {
    if let Some((uid, gid)) = unprivileged() {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// Gives `path` to the unprivileged user (a no-op when we are not root).
pub fn give_to_unprivileged(path: &Path) {
    if let Some((uid, gid)) = unprivileged() {
        chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

/// A temporary directory owned by the unprivileged user, mode 0755 so that we can look inside
/// when we are not root either.
pub fn unprivileged_temp_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create a temporary directory");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
        .expect("chmod temporary directory");
    give_to_unprivileged(dir.path());
    dir
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Runs `cmd` to completion, panicking with its output if it fails.
pub fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Polls `ready` every 50 ms until it is true or `timeout` passes; returns whether it became true.
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns a server process that is killed (SIGKILL) when this process ends, however it ends.
/// The parent-death signal fires when the spawning *thread* exits, so all servers are spawned
/// by one thread that lives as long as the process.
fn spawn_tied(mut cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("db-server-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("start the server spawner thread");
        tx
    });
    // SAFETY: prctl is async-signal-safe; it only sets a flag of the child process.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .send((cmd, reply_tx))
        .expect("server spawner thread is gone");
    reply_rx.recv().expect("server spawner thread is gone")
}

/// Stops a server: `signal` (its fast shutdown), then SIGKILL if it is still there after 15 s.
fn stop_child(child: &mut Child, signal: libc::c_int) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: kill with the pid of our own child, which has not been reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
    let exited = wait_until(Duration::from_secs(15), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !exited {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Runs `hook` when the process exits normally (the test harness ends with `exit`), for servers
/// held in statics, which are never dropped.
fn at_exit(hook: fn()) {
    static HOOKS: Mutex<Vec<fn()>> = Mutex::new(Vec::new());
    static REGISTERED: OnceLock<()> = OnceLock::new();
    extern "C" fn run_hooks() {
        let hooks = std::mem::take(&mut *HOOKS.lock().unwrap_or_else(|e| e.into_inner()));
        for hook in hooks {
            hook();
        }
    }
    HOOKS.lock().unwrap_or_else(|e| e.into_inner()).push(hook);
    REGISTERED.get_or_init(|| {
        // SAFETY: registers a function without arguments that does not unwind.
        unsafe {
            libc::atexit(run_hooks);
        }
    });
}

/// Quotes an SQL identifier with `quote` (`"` for PostgreSQL, `` ` `` for MariaDB), doubling it
/// inside.
pub fn quote_ident(name: &str, quote: char) -> String {
    let doubled = name.replace(quote, &format!("{quote}{quote}"));
    format!("{quote}{doubled}{quote}")
}

/// Quotes an SQL string literal standard-style (`'` doubled; no backslash escapes: use it with
/// PostgreSQL, and with MariaDB only for text without backslashes).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Feeds `sql` to a client on stdin; its stdout (without the last newline) or its stderr.
pub fn pipe_sql(mut cmd: Command, sql: &str) -> Result<String, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let sql = sql.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(sql.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("wait for the client: {e}"))?;
    let _ = writer.join();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Waits for a child and returns its exit status and peak RSS in KiB: the child's own `VmHWM`
/// from `/proc/PID/status`, read every 20 ms until it exits (the high-water mark only grows, so
/// the last reading is the peak up to the last 20 ms). `wait4`'s `ru_maxrss` would be wrong:
/// Linux carries the parent's high-water mark across `exec` (`signal->maxrss`), so a child of a
/// test binary busy with other tests reports the test binary's memory, not its own.
pub fn wait_peak_rss(mut child: std::process::Child) -> (std::process::ExitStatus, u64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = fs::read_to_string(&status_file) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak = peak.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().expect("wait") {
            return (status, peak);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A whole-number knob of a benchmark (`BENCH_ROUNDS`), `default` when unset or unreadable.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `PATH` for a "database container" here: PostgreSQL's tools first (the server's own
/// version), then the system's.
pub fn tool_path() -> String {
    format!(
        "{}:/usr/local/bin:/usr/bin:/bin",
        Postgres::bin_dir().display()
    )
}
