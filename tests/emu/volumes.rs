//! The data behind PVCs and snapshots, as local directories: a test points a PVC at the
//! directory its database pod writes into ([`super::Emu::set_pvc_dir`]); the snapshot controller
//! copies that directory when a VolumeSnapshot of the PVC is created (a snapshot is a point in
//! time: later writes must not show in it); the provisioner gives a PVC restored from a snapshot
//! its own copy of the snapshot's copy (writes in the restored volume must not reach the
//! snapshot), and an empty directory to any other PVC it provisions. Copies preserve modes (and
//! owners when the emulation runs as root), as a block-level snapshot does. Every directory the
//! emulation makes lives under one temporary root, removed with the emulation.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Directories of PVCs (by namespace/name) and of cut snapshots (by snapshot handle).
#[derive(Default)]
pub struct Volumes {
    root: Option<tempfile::TempDir>,
    pvcs: HashMap<(String, String), PathBuf>,
    snapshots: HashMap<String, PathBuf>,
    seq: u64,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Copies `from` into the new directory `to`, recursively: modes, symlinks, and owners when
/// running as root. Sockets, fifos and devices are skipped.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    std::fs::create_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ft = entry.file_type()?;
        if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
            if is_root() {
                let m = std::fs::symlink_metadata(&src)?;
                let _ = std::os::unix::fs::lchown(&dst, Some(m.uid()), Some(m.gid()));
            }
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
            let m = entry.metadata()?;
            if is_root() {
                let _ = std::os::unix::fs::lchown(&dst, Some(m.uid()), Some(m.gid()));
            }
            std::fs::set_permissions(&dst, m.permissions())?;
        }
    }
    if is_root() {
        let _ = std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()));
    }
    std::fs::set_permissions(to, meta.permissions())
}

impl Volumes {
    /// The emulation's own temporary root (created on first use, world-traversable so exec
    /// children running as another uid reach their directories).
    pub fn root(&mut self) -> PathBuf {
        if self.root.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("kube-emu-")
                .tempdir()
                .expect("a temporary directory for the emulation's volumes");
            let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755));
            self.root = Some(dir);
        }
        self.root
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default()
    }

    /// A fresh path under the root: `<root>/<kind>/<name>-<n>` (the parent exists, 0755).
    pub fn fresh(&mut self, kind: &str, name: &str) -> PathBuf {
        let parent = self.root().join(kind);
        let _ = std::fs::create_dir_all(&parent);
        let _ = std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o755));
        self.seq += 1;
        parent.join(format!("{name}-{}", self.seq))
    }

    pub fn set_pvc_dir(&mut self, ns: &str, pvc: &str, path: PathBuf) {
        self.pvcs.insert((ns.to_string(), pvc.to_string()), path);
    }

    pub fn pvc_dir(&self, ns: &str, pvc: &str) -> Option<PathBuf> {
        self.pvcs.get(&(ns.to_string(), pvc.to_string())).cloned()
    }

    /// The PVC's directory, an empty one made now when it has none (a volume the kubelet
    /// mounts always exists).
    pub fn pvc_dir_or_new(&mut self, ns: &str, pvc: &str) -> PathBuf {
        if let Some(dir) = self.pvc_dir(ns, pvc) {
            return dir;
        }
        let dir = self.fresh("pvcs", pvc);
        let _ = std::fs::create_dir(&dir);
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
        self.set_pvc_dir(ns, pvc, dir.clone());
        dir
    }

    /// A PVC is gone: its directory mapping goes too (an emulation-owned directory is removed,
    /// as the `Delete` reclaim policy removes the volume; a test's own directory is left alone).
    pub fn pvc_gone(&mut self, ns: &str, pvc: &str) {
        let Some(dir) = self.pvcs.remove(&(ns.to_string(), pvc.to_string())) else {
            return;
        };
        let owned = self
            .root
            .as_ref()
            .is_some_and(|r| dir.starts_with(r.path()));
        if owned {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// The snapshot controller cuts a snapshot: a copy of the PVC's directory as it is now,
    /// kept under the snapshot's handle. Nothing when the PVC has no directory.
    pub fn cut_snapshot(&mut self, ns: &str, pvc: &str, handle: &str) {
        let Some(src) = self.pvc_dir(ns, pvc) else {
            return;
        };
        let dst = self.fresh("snapshots", handle);
        if let Err(e) = copy_tree(&src, &dst) {
            panic!(
                "the emulated snapshot controller could not copy {} to {}: {e}",
                src.display(),
                dst.display()
            );
        }
        self.snapshots.insert(handle.to_string(), dst);
    }

    /// The directory of a cut snapshot.
    pub fn snapshot_dir(&self, handle: &str) -> Option<PathBuf> {
        self.snapshots.get(handle).cloned()
    }

    /// The provisioner made a volume for a PVC: its own copy of the snapshot's data when it is
    /// restored from one that has data, else an empty directory. A directory the test set
    /// beforehand is kept.
    pub fn provisioned(&mut self, ns: &str, pvc: &str, snapshot_handle: Option<&str>) {
        if self.pvc_dir(ns, pvc).is_some() {
            return;
        }
        let Some(src) = snapshot_handle.and_then(|h| self.snapshot_dir(h)) else {
            self.pvc_dir_or_new(ns, pvc);
            return;
        };
        let dst = self.fresh("pvcs", pvc);
        if let Err(e) = copy_tree(&src, &dst) {
            panic!(
                "the emulated provisioner could not copy {} to {}: {e}",
                src.display(),
                dst.display()
            );
        }
        self.set_pvc_dir(ns, pvc, dst);
    }
}
