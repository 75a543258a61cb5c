//! Node-level lock slots (`BAK_FLOCK`): at most `BAK_FLOCK_COUNT` backups dump and snapshot at
//! the same time on one node, so that many namespaces' CronJobs firing together do not saturate
//! its disks.
//!
//! A slot is the file `<BAK_FLOCK_DIR>/<k>.lock`, k in 1..=count, held with `flock(2)` (std's
//! `File::try_lock`), the same mechanism and file names as the original's Go version, so old and
//! new binaries on one node share the slots. The kernel frees the slot of a crashed holder when
//! its file is closed. Lock files are created when missing (mode 0666, so jobs running under
//! other uids can share them) and are never truncated or removed: removing a lock file while
//! someone holds it would let a second holder lock a new file of the same name.
//!
//! Unlike the original, which picked one random slot and polled it every second even when other
//! slots were free, [`acquire`] tries every slot without blocking, in a random order (to spread
//! the load over the slots), and takes the first free one. Only when all slots are busy does it
//! wait, retrying all slots after a jittered backoff that grows from 100 ms to 1 s: no thread
//! blocks in `flock` per slot, the latency after a release is at most about a second, and
//! waiters on one node do not retry in lockstep. Waiting is not FIFO; the timeout bounds it.

use std::fs::{File, OpenOptions, Permissions, TryLockError};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use tokio::time::Instant;

use crate::{Error, Result};

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A held lock slot. Dropping it closes the lock file, which releases the slot.
#[derive(Debug)]
pub struct SlotGuard {
    /// The slot number, 1..=count.
    pub slot: u32,
    /// `<dir>/<slot>.lock`.
    pub path: PathBuf,
    /// How long [`acquire`] waited for it.
    pub waited: Duration,
    file: File,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        // Closing the file would release the flock too; unlocking first makes the release
        // explicit and independent of any other handle to the same open file description.
        match self.file.unlock() {
            Ok(()) => {
                tracing::debug!(slot = self.slot, path = %self.path.display(), "released node lock slot")
            }
            Err(e) => tracing::warn!(
                slot = self.slot,
                path = %self.path.display(),
                error = %e,
                "unlocking the node lock slot failed; closing the file releases it"
            ),
        }
    }
}

/// The default `BAK_FLOCK_COUNT`: half the node's CPUs, at least 1.
pub fn default_count(cpus: usize) -> u32 {
    u32::try_from(cpus / 2).unwrap_or(u32::MAX).max(1)
}

/// The kernel's lists of the node's CPUs, most to least like the original's `nproc --all`
/// (which counts the present CPUs).
const CPU_LISTS: [&str; 2] = [
    "/sys/devices/system/cpu/present",
    "/sys/devices/system/cpu/online",
];

/// Every CPU of the node, the basis of the default slot count.
///
/// The slots are shared by every backup pod on the node, so their number must not depend on
/// which pod computes it: `std::thread::available_parallelism` honours this container's CPU
/// limit (cgroup quota) and cpuset, so a pod limited to one CPU would shrink the whole node to
/// one slot while its neighbours use more. The kernel's CPU list (visible in every container
/// through `/sys`) is the node's; only when it cannot be read does this fall back.
pub fn node_cpus() -> usize {
    node_cpus_from(
        |path| std::fs::read_to_string(path).ok(),
        std::thread::available_parallelism().ok().map(|n| n.get()),
    )
}

/// [`node_cpus`] with the file reader and this process's usable CPUs passed in.
fn node_cpus_from(read: impl Fn(&str) -> Option<String>, usable: Option<usize>) -> usize {
    CPU_LISTS
        .iter()
        .find_map(|path| parse_cpu_list(&read(path)?))
        .or(usable)
        .unwrap_or(1)
        .max(1)
}

/// Counts the CPUs of a kernel CPU list such as `0-3,8,10-11` (see `cpuset(7)`, "List
/// format"). `None` for anything that is not such a list, or an empty one.
pub fn parse_cpu_list(list: &str) -> Option<usize> {
    let list = list.trim();
    if list.is_empty() {
        return None;
    }
    let mut count = 0usize;
    for part in list.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?),
            None => {
                let n = part.parse::<usize>().ok()?;
                (n, n)
            }
        };
        if last < first {
            return None;
        }
        count = count.checked_add(last - first + 1)?;
    }
    Some(count)
}

/// Takes a free slot among `<dir>/1.lock` ..= `<dir>/<count>.lock`, waiting up to `timeout` when
/// all are busy (see the module documentation for the order and the backoff).
///
/// Errors: count 0 (names `BAK_FLOCK_COUNT`); a missing directory or a lock file that cannot be
/// created or opened (names `BAK_FLOCK_DIR`); all slots still busy after `timeout`
/// ([`Error::LockTimeout`], naming `BAK_FLOCK_TIMEOUT_SEC`, the directory and the count).
pub async fn acquire(dir: &Path, count: u32, timeout: Duration) -> Result<SlotGuard> {
    if count == 0 {
        return Err(Error::config("BAK_FLOCK_COUNT", "0", "must be at least 1"));
    }
    let dir_error =
        |reason: String| Error::config("BAK_FLOCK_DIR", dir.display().to_string(), reason);
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(dir_error("not a directory".to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(dir_error("directory does not exist".to_owned()))
        }
        Err(e) => return Err(dir_error(format!("cannot access the directory: {e}"))),
    }
    let mut slots = Vec::with_capacity(count as usize);
    for slot in 1..=count {
        let path = dir.join(format!("{slot}.lock"));
        let file = open_slot(&path)
            .map_err(|e| dir_error(format!("cannot open lock file {}: {e}", path.display())))?;
        slots.push((slot, path, file));
    }

    let start = Instant::now();
    let deadline = start + timeout;
    let mut backoff = FIRST_BACKOFF;
    loop {
        slots.shuffle(&mut rand::rng());
        if let Some(i) = first_free(&slots)? {
            let (slot, path, file) = slots.swap_remove(i);
            let waited = start.elapsed();
            tracing::info!(
                slot,
                path = %path.display(),
                waited_ms = waited.as_millis() as u64,
                "holding node lock slot"
            );
            return Ok(SlotGuard {
                slot,
                path,
                waited,
                file,
            });
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::LockTimeout(format!(
                "all {count} node lock slots in {} stayed busy for {timeout:?}; raise BAK_FLOCK_TIMEOUT_SEC \
                 (or BAK_FLOCK_COUNT) or find what holds the slots",
                dir.display()
            )));
        }
        if backoff == FIRST_BACKOFF {
            tracing::info!(
                dir = %dir.display(),
                count,
                timeout_sec = timeout.as_secs(),
                "all node lock slots are busy; waiting (BAK_FLOCK_TIMEOUT_SEC)"
            );
        }
        let pause = rand::rng()
            .random_range(backoff / 2..=backoff)
            .min(deadline - now);
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Tries to lock each slot in turn without blocking; the index of the first one locked.
fn first_free(slots: &[(u32, PathBuf, File)]) -> Result<Option<usize>> {
    for (i, (_, path, file)) in slots.iter().enumerate() {
        match file.try_lock() {
            Ok(()) => return Ok(Some(i)),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(
                    format!("locking {} (BAK_FLOCK_DIR)", path.display()),
                    e,
                ))
            }
        }
    }
    Ok(None)
}

/// Opens (creating if missing, never truncating) a lock file. flock works on a read-only file
/// too, which lets us share a lock file another uid created without write permission for us.
fn open_slot(path: &Path) -> io::Result<File> {
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(path)
    {
        Ok(file) => {
            // The umask usually removes group/other write; other uids must be able to open it.
            if let Err(e) = file.set_permissions(Permissions::from_mode(0o666)) {
                tracing::debug!(path = %path.display(), error = %e, "cannot make the lock file world-writable");
            }
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .or_else(|e| match e.kind() {
                io::ErrorKind::PermissionDenied => File::open(path),
                _ => Err(e),
            }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::os::unix::fs::MetadataExt;

    /// Holds slot `k` through a separate open file description, as another process would.
    fn hold(dir: &Path, k: u32) -> File {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(format!("{k}.lock")))
            .unwrap();
        file.try_lock().unwrap();
        file
    }

    fn is_free(dir: &Path, k: u32) -> bool {
        let file = File::open(dir.join(format!("{k}.lock"))).unwrap();
        match file.try_lock() {
            Ok(()) => true,
            Err(TryLockError::WouldBlock) => false,
            Err(TryLockError::Error(e)) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn takes_the_free_slot_without_waiting_when_another_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let _held = hold(dir.path(), 1);
        // Zero timeout: every attempt must find slot 2 in its first round, whatever the order.
        for _ in 0..20 {
            let guard = acquire(dir.path(), 2, Duration::ZERO).await.unwrap();
            assert_eq!(guard.slot, 2);
            assert_eq!(guard.path, dir.path().join("2.lock"));
            assert!(
                guard.waited < Duration::from_millis(100),
                "{:?}",
                guard.waited
            );
        }
    }

    #[tokio::test]
    async fn waits_for_a_slot_released_while_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let held = hold(dir.path(), 1);
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let guard = acquire(dir.path(), 1, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(guard.slot, 1);
        assert!(
            guard.waited >= Duration::from_millis(250),
            "{:?}",
            guard.waited
        );
        // Retries at most 1 s apart: picked up well before the timeout.
        assert!(guard.waited < Duration::from_secs(3), "{:?}", guard.waited);
        releaser.join().unwrap();
    }

    #[tokio::test]
    async fn times_out_naming_the_variable_when_all_slots_are_busy() {
        let dir = tempfile::tempdir().unwrap();
        let _held = [hold(dir.path(), 1), hold(dir.path(), 2)];
        let start = std::time::Instant::now();
        let err = acquire(dir.path(), 2, Duration::from_millis(300))
            .await
            .unwrap_err();
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
            "{elapsed:?}"
        );
        assert!(matches!(err, Error::LockTimeout(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("BAK_FLOCK_TIMEOUT_SEC"), "{msg}");
        assert!(
            msg.contains(&format!(
                "all 2 node lock slots in {}",
                dir.path().display()
            )),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn spreads_over_the_slots() {
        let dir = tempfile::tempdir().unwrap();
        let mut chosen = BTreeSet::new();
        for _ in 0..40 {
            chosen.insert(acquire(dir.path(), 4, Duration::ZERO).await.unwrap().slot);
        }
        assert!(chosen.len() > 1, "{chosen:?}");
        assert!(chosen.iter().all(|k| (1..=4).contains(k)), "{chosen:?}");
    }

    #[tokio::test]
    async fn dropping_the_guard_releases_the_slot() {
        let dir = tempfile::tempdir().unwrap();
        let guard = acquire(dir.path(), 1, Duration::ZERO).await.unwrap();
        assert!(!is_free(dir.path(), 1));
        assert!(acquire(dir.path(), 1, Duration::ZERO).await.is_err());
        drop(guard);
        assert!(is_free(dir.path(), 1));
        acquire(dir.path(), 1, Duration::ZERO).await.unwrap();
    }

    #[tokio::test]
    async fn creates_shareable_lock_files_and_keeps_existing_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("2.lock"), "kept").unwrap();
        let guard = acquire(dir.path(), 3, Duration::ZERO).await.unwrap();
        for k in 1..=3 {
            assert!(dir.path().join(format!("{k}.lock")).exists());
        }
        assert_eq!(
            std::fs::metadata(dir.path().join("1.lock")).unwrap().mode() & 0o777,
            0o666
        );
        drop(guard);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("2.lock")).unwrap(),
            "kept"
        );
    }

    #[tokio::test]
    async fn configuration_errors_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let err = acquire(dir.path(), 0, Duration::ZERO).await.unwrap_err();
        assert!(
            matches!(&err, Error::Config { name, .. } if name == "BAK_FLOCK_COUNT"),
            "{err:?}"
        );

        let missing = dir.path().join("missing");
        let err = acquire(&missing, 2, Duration::ZERO)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid BAK_FLOCK_DIR=") && err.contains("does not exist"),
            "{err}"
        );

        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = acquire(&file, 2, Duration::ZERO)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid BAK_FLOCK_DIR=") && err.contains("not a directory"),
            "{err}"
        );

        // Root may write anywhere; the check only means something for other uids.
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            let read_only = dir.path().join("ro");
            std::fs::create_dir(&read_only).unwrap();
            std::fs::set_permissions(&read_only, Permissions::from_mode(0o555)).unwrap();
            let err = acquire(&read_only, 1, Duration::ZERO)
                .await
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("invalid BAK_FLOCK_DIR=") && err.contains("1.lock"),
                "{err}"
            );
        }
    }

    #[test]
    fn acquire_can_run_on_a_multi_threaded_runtime() {
        fn assert_send<T: Send>(_: &T) {}
        assert_send(&acquire(Path::new("/nonexistent"), 1, Duration::ZERO));
    }

    #[test]
    fn default_count_is_half_the_cpus_at_least_one() {
        assert_eq!(default_count(0), 1);
        assert_eq!(default_count(1), 1);
        assert_eq!(default_count(2), 1);
        assert_eq!(default_count(5), 2);
        assert_eq!(default_count(64), 32);
        assert_eq!(default_count(usize::MAX), u32::MAX);
    }

    #[test]
    fn cpu_lists_are_counted_like_the_kernel_writes_them() {
        assert_eq!(parse_cpu_list("0\n"), Some(1));
        assert_eq!(parse_cpu_list("0-63\n"), Some(64));
        assert_eq!(parse_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(parse_cpu_list("1,3"), Some(2));
        for bad in ["", "\n", "x", "0-", "-3", "3-1", "0,,1", "0-3 4"] {
            assert_eq!(parse_cpu_list(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn node_cpus_are_the_nodes_not_the_containers_limit() {
        // A 16-CPU node, this container limited to 1 CPU: the slots stay the node's 8.
        let node = |path: &str| path.ends_with("/present").then(|| "0-15\n".to_owned());
        assert_eq!(node_cpus_from(node, Some(1)), 16);
        assert_eq!(default_count(node_cpus_from(node, Some(1))), 8);
        // `present` unreadable: `online`; neither: the usable CPUs; nothing at all: 1.
        let online = |path: &str| path.ends_with("/online").then(|| "0-3".to_owned());
        assert_eq!(node_cpus_from(online, Some(1)), 4);
        assert_eq!(node_cpus_from(|_| None, Some(3)), 3);
        assert_eq!(node_cpus_from(|_| Some("garbage".into()), None), 1);
    }
}
