//! The bpffs the datapath pins its maps in. `ip netns exec` gives a process
//! its own /sys, where /sys/fs/bpf may not be mounted: rvs mounts a bpffs of
//! its own in its run directory when the one asked for is not one.

use crate::error::BpfError;
use std::path::Path;

/// `statfs` magic of a bpffs.
pub const BPFFS_MAGIC: i64 = 0xcafe_4a11;

/// Make `dir` a bpffs: nothing to do when it is one, else create it and
/// mount a bpffs on it. True when this call mounted it.
pub fn ensure_bpffs(dir: &Path) -> Result<bool, BpfError> {
    let err = |source| BpfError::Pin {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let st = nix::sys::statfs::statfs(dir).map_err(|e| err(e.into()))?;
    if st.filesystem_type().0 as i64 == BPFFS_MAGIC {
        return Ok(false);
    }
    nix::mount::mount(
        Some("bpf"),
        dir,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| err(e.into()))?;
    Ok(true)
}

/// Unmount the bpffs [`ensure_bpffs`] mounted on `dir` (lazily: a process
/// still holding a pin open keeps its map, never the mount point busy).
pub fn unmount_bpffs(dir: &Path) -> Result<(), BpfError> {
    nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH).map_err(|e| BpfError::Pin {
        path: dir.to_path_buf(),
        source: e.into(),
    })
}
