//! Idmapped bind mounts (runtime-spec 1.2: a mount's `uidMappings` /
//! `gidMappings`, the `idmap` and `ridmap` options), prepared by the
//! runtime before the fork.
//!
//! The kernel idmaps only a detached mount, and only for a caller with
//! CAP_SYS_ADMIN over the filesystem's user namespace: the host's, which
//! the init no longer has once it is in the container's user namespace. So
//! the runtime clones the source with open_tree(OPEN_TREE_CLONE), idmaps
//! the copy with mount_setattr(MOUNT_ATTR_IDMAP) and a user namespace that
//! carries the mapping, and hands the detached tree to the init, which
//! attaches it with move_mount (as runc 1.2 does). A filesystem that
//! cannot be idmapped fails here, naming the mount and the kernel's reason,
//! before any process of the container exists.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};
use crate::sys;

/// A user namespace whose only purpose is to carry an id mapping: made by
/// a child that does nothing but wait, with the maps written from here.
fn userns_with_maps(uid_map: &str, gid_map: &str) -> std::io::Result<OwnedFd> {
    let (rd, wr) = sys::pipe().map_err(|e| e.io())?;
    let pid = match sys::clone_child(libc::CLONE_NEWUSER, None) {
        Ok(pid) => pid,
        Err(e) => {
            sys::close(rd);
            sys::close(wr);
            return Err(e.io());
        }
    };
    if pid == 0 {
        // Async-signal-safe only: wait for the runtime to close its end.
        sys::close(wr);
        let mut b = [0u8; 1];
        let _ = sys::read(rd, &mut b);
        sys::exit_now(0);
    }
    sys::close(rd);
    let r = (|| {
        std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)?;
        std::fs::write(format!("/proc/{pid}/gid_map"), gid_map)?;
        std::fs::File::open(format!("/proc/{pid}/ns/user")).map(OwnedFd::from)
    })();
    // The child sees EOF and exits; the namespace lives on in the fd.
    sys::close(wr);
    let _ = sys::waitpid(pid, 0);
    r
}

/// Where the mapping of an idmapped mount comes from.
pub enum Mapping<'a> {
    /// `uid_map`/`gid_map` lines (the mount's own, or the container's).
    Maps { uid: &'a str, gid: &'a str },
    /// The user namespace the container joins (open at this fd).
    Userns(RawFd),
}

/// A detached, idmapped copy of the mount tree at `source` (the top mount,
/// or with `recursive` every mount below it too); `ridmap` idmaps every
/// mount of the copy, `idmap` the top one. `what` names the mount for errors.
pub fn detached_tree(
    what: &str,
    source: &CStr,
    recursive: bool,
    ridmap: bool,
    mapping: Mapping,
) -> Result<OwnedFd> {
    let owned;
    let userns = match mapping {
        Mapping::Userns(fd) => fd,
        Mapping::Maps { uid, gid } => {
            owned = userns_with_maps(uid, gid).map_err(|e| Error::Sys {
                what: format!(
                    "{what}: making a user namespace with its mapping ({})",
                    uid.trim().replace('\n', ", ")
                ),
                source: e,
            })?;
            owned.as_raw_fd()
        }
    };
    let tree = sys::open_tree_clone(source, recursive).map_err(|e| {
        Error::sys(
            format!("{what}: cloning {} for idmapping", source.to_string_lossy()),
            e,
        )
    })?;
    sys::idmap_tree(tree.as_raw_fd(), userns, ridmap).map_err(|e| {
        let why = match e.0 {
            libc::EINVAL => " (its filesystem cannot be idmapped on this kernel)",
            libc::EPERM => " (not allowed over this filesystem's user namespace)",
            _ => "",
        };
        Error::sys(
            format!("{what}: idmapping {}{why}", source.to_string_lossy()),
            e,
        )
    })?;
    Ok(tree)
}
