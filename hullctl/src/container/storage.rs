//! How a container's rootfs is made: kernel overlayfs (the image's layer
//! directories as lower dirs, the container layer as upper dir), or, where
//! overlayfs cannot be used (some rootless setups, a store on a file
//! system overlayfs refuses as upper dir, or forced with
//! HULLCTL_NO_OVERLAY), fuse-overlayfs over the same directories, or a
//! copied rootfs: the merged layers copied into the container once.
//!
//! HULLCTL_NO_OVERLAY=1 skips kernel overlayfs; HULLCTL_NO_OVERLAY=all
//! skips fuse-overlayfs too (the copy). HULLCTL_FUSE_OVERLAYFS names the
//! fuse-overlayfs binary (default: found in PATH).

use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::store::{remove_tree, tmp_name, Store};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Storage {
    #[default]
    #[serde(rename = "overlay")]
    Overlay,
    #[serde(rename = "fuse-overlayfs")]
    FuseOverlayfs,
    #[serde(rename = "copy")]
    Copy,
}

impl Storage {
    pub fn name(self) -> &'static str {
        match self {
            Storage::Overlay => "overlay",
            Storage::FuseOverlayfs => "fuse-overlayfs",
            Storage::Copy => "copy",
        }
    }
}

pub const NO_OVERLAY_ENV: &str = "HULLCTL_NO_OVERLAY";
pub const FUSE_ENV: &str = "HULLCTL_FUSE_OVERLAYFS";

/// The storage for a new container and, for a fallback, the message
/// saying why and which one.
pub fn choose(store: &Store) -> (Storage, Option<String>) {
    let forced = std::env::var(NO_OVERLAY_ENV).unwrap_or_default();
    let forced = forced.trim();
    let why = if !forced.is_empty() && forced != "0" {
        format!("{NO_OVERLAY_ENV}={forced} is set")
    } else {
        match probe_overlay(store) {
            Ok(()) => return (Storage::Overlay, None),
            Err(why) => why,
        }
    };
    let fuse = if forced == "all" {
        Err(format!("{NO_OVERLAY_ENV}=all"))
    } else {
        fuse_overlayfs()
    };
    match fuse {
        Ok(bin) => (
            Storage::FuseOverlayfs,
            Some(format!(
                "overlayfs cannot be used ({why}); using fuse-overlayfs ({})",
                bin.display()
            )),
        ),
        Err(no_fuse) => (
            Storage::Copy,
            Some(format!(
                "overlayfs cannot be used ({why}) and fuse-overlayfs is not available \
                 ({no_fuse}); using a copied rootfs (the image's layers are copied into \
                 the container)"
            )),
        ),
    }
}

/// Whether kernel overlayfs works on this store (a trial mount in its
/// containers/ directory, on the file system that holds the upper dirs).
/// A success is remembered in the store; a failure is probed again next
/// time.
fn probe_overlay(store: &Store) -> std::result::Result<(), String> {
    let ok_mark = store.root().join("overlay-ok");
    if ok_mark.exists() {
        return Ok(());
    }
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
    {
        return Err("the kernel has no overlay file system (/proc/filesystems)".into());
    }
    let t = store
        .containers_dir()
        .join(format!(".{}", tmp_name("overlay-probe")));
    let r = (|| {
        for d in ["l", "u", "w", "m"] {
            std::fs::create_dir_all(t.join(d)).map_err(|e| format!("{}: {e}", t.display()))?;
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            t.join("l").display(),
            t.join("u").display(),
            t.join("w").display()
        );
        let c = |s: &str| crate::sys::cstr(s.as_bytes()).map_err(|e| e.to_string());
        let m = t.join("m").display().to_string();
        crate::sys::mount(&c("overlay")?, &c(&m)?, &c("overlay")?, 0, &c(&data)?)
            .map_err(|e| format!("a trial overlay mount in {} failed: {e}", t.display()))?;
        let _ = crate::sys::umount(&c(&m)?, libc::MNT_DETACH);
        Ok(())
    })();
    let _ = remove_tree(&t);
    if r.is_ok() {
        let _ = std::fs::write(&ok_mark, b"");
    }
    r
}

/// The fuse-overlayfs binary, or why there is none.
fn fuse_overlayfs() -> std::result::Result<PathBuf, String> {
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse is missing".into());
    }
    if let Some(p) = std::env::var_os(FUSE_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{FUSE_ENV}={} is not a file", p.display()))
        };
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|d| d.join("fuse-overlayfs"))
        .find(|p| p.is_file())
        .ok_or_else(|| "not installed (Debian: apt install fuse-overlayfs)".into())
}

/// Mount `rootfs` with fuse-overlayfs (it daemonizes once mounted).
pub fn mount_fuse(
    name: &str,
    lowers: &[String],
    upper: &Path,
    work: &Path,
    rootfs: &Path,
) -> Result<()> {
    let bin = fuse_overlayfs().map_err(|e| {
        Error::Image(format!(
            "container {name}: made with fuse-overlayfs, which is not available now: {e}"
        ))
    })?;
    let out = std::process::Command::new(&bin)
        .arg("-o")
        .arg(format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            upper.display(),
            work.display()
        ))
        .arg(rootfs)
        .stdin(std::process::Stdio::null())
        .output()
        .at(&bin)?;
    if !out.status.success() {
        return Err(Error::Image(format!(
            "container {name}: fuse-overlayfs mount of its rootfs failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The copy fallback: the image's layers (bottom first, in overlay form:
/// whiteouts as 0/0 character devices, opaque directories marked with
/// trusted.overlay.opaque) applied one after the other onto `rootfs`,
/// keeping owners, modes, times, xattrs, hard links and devices.
pub fn copy_layers(layers_bottom_first: &[PathBuf], rootfs: &Path) -> Result<()> {
    for l in layers_bottom_first {
        let mut links = std::collections::HashMap::new();
        apply_dir(l, rootfs, &mut links)?;
        // The root directory's own metadata from the layer.
        let m = std::fs::symlink_metadata(l).at(l)?;
        set_meta(rootfs, &m, l)?;
    }
    Ok(())
}

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn cpath(p: &Path) -> Result<CString> {
    crate::sys::cstr(p.as_os_str().as_encoded_bytes()).at(p)
}

/// Apply the layer directory `src` onto `dst` (a real directory).
fn apply_dir(
    src: &Path,
    dst: &Path,
    links: &mut std::collections::HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .at(src)?
        .collect::<std::io::Result<Vec<_>>>()
        .at(src)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let s = e.path();
        let d = dst.join(e.file_name());
        let m = std::fs::symlink_metadata(&s).at(&s)?;
        let existing = std::fs::symlink_metadata(&d).ok();
        if is_whiteout(&m) {
            if existing.is_some() {
                remove_tree(&d)?;
            }
            continue;
        }
        if m.is_dir() {
            let opaque = crate::sys::lgetxattr(&cpath(&s)?, c"trusted.overlay.opaque")
                .is_ok_and(|v| v == b"y");
            // A directory replaces what is not one; an opaque one hides
            // everything below it in the layers under it.
            if existing.as_ref().is_some_and(|x| !x.is_dir() || opaque) {
                remove_tree(&d)?;
            }
            if !d.exists() {
                std::fs::create_dir(&d).at(&d)?;
            }
            apply_dir(&s, &d, links)?;
            set_meta(&d, &m, &s)?;
            continue;
        }
        if existing.is_some() {
            remove_tree(&d)?;
        }
        let ft = m.file_type();
        if m.nlink() > 1 && !ft.is_symlink() {
            if let Some(first) = links.get(&(m.dev(), m.ino())) {
                std::fs::hard_link(first, &d).at(&d)?;
                continue;
            }
            links.insert((m.dev(), m.ino()), d.clone());
        }
        if ft.is_symlink() {
            let t = std::fs::read_link(&s).at(&s)?;
            std::os::unix::fs::symlink(&t, &d).at(&d)?;
        } else if ft.is_file() {
            std::fs::copy(&s, &d).at(&d)?;
        } else {
            let dev = if ft.is_char_device() || ft.is_block_device() {
                m.rdev()
            } else {
                0
            };
            let name = cpath(&d)?;
            crate::sys::mknodat(libc::AT_FDCWD, &name, m.mode() as libc::mode_t, dev).at(&d)?;
        }
        set_meta(&d, &m, &s)?;
    }
    Ok(())
}

/// Owner, mode (after the owner: chown clears set-id bits), xattrs (not
/// overlayfs' own) and times of `dst` as `m` (of `src`) has them.
fn set_meta(dst: &Path, m: &std::fs::Metadata, src: &Path) -> Result<()> {
    let d = cpath(dst)?;
    crate::sys::fchownat_nofollow(libc::AT_FDCWD, &d, m.uid(), m.gid()).at(dst)?;
    if !m.file_type().is_symlink() {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(m.mode() & 0o7777))
            .at(dst)?;
    }
    let s = cpath(src)?;
    for name in crate::sys::llistxattr(&s).unwrap_or_default() {
        if name.to_bytes().starts_with(b"trusted.overlay.") {
            continue;
        }
        if let Ok(v) = crate::sys::lgetxattr_all(&s, &name) {
            crate::sys::lsetxattr(&d, &name, &v).at(dst)?;
        }
    }
    let ts = |s: i64, ns: i64| libc::timespec {
        tv_sec: s as libc::time_t,
        tv_nsec: ns as _,
    };
    crate::sys::utimensat_nofollow(
        libc::AT_FDCWD,
        &d,
        ts(m.atime(), m.atime_nsec()),
        ts(m.mtime(), m.mtime_nsec()),
    )
    .at(dst)
}
