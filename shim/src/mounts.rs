//! The rootfs mounts containerd passes in Create (a snapshot: overlay,
//! bind, ...), mounted on the bundle's `rootfs` and unmounted on Delete.

use std::ffi::CString;
use std::path::Path;

use containerd_shim_protos::types::mount::Mount;
use hull::sys;

fn cstr(s: &str, what: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{what}: NUL byte in {s:?}"))
}

/// Mount each of `mounts` on `target`, in order. On failure the ones made
/// are unmounted again. Returns whether anything was mounted.
pub fn mount_rootfs(mounts: &[Mount], target: &Path) -> Result<bool, String> {
    if mounts.is_empty() {
        return Ok(false);
    }
    std::fs::create_dir_all(target).map_err(|e| format!("{}: {e}", target.display()))?;
    let t = cstr(&target.to_string_lossy(), "rootfs")?;
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, &t) {
            if i > 0 {
                unmount_rootfs(target);
            }
            return Err(format!(
                "rootfs mount {i} ({} {} on {}): {e}",
                m.type_,
                m.source,
                target.display()
            ));
        }
    }
    Ok(true)
}

fn mount_one(m: &Mount, target: &CString) -> Result<(), String> {
    let o = hull::rootfs::options::parse(&m.options);
    let mut flags = o.flags;
    if o.bind || m.type_ == "bind" || m.type_ == "rbind" {
        flags |= libc::MS_BIND;
        if o.recursive || m.type_ == "rbind" {
            flags |= libc::MS_REC;
        }
    }
    let source = cstr(&m.source, "source")?;
    let fstype = cstr(&m.type_, "type")?;
    let data = cstr(&o.data.join(","), "options")?;
    let data = (!o.data.is_empty()).then_some(data.as_c_str());
    sys::mount(Some(&source), target, Some(&fstype), flags, data).map_err(|e| e.to_string())?;
    // A read-only bind needs a remount to take effect.
    if flags & libc::MS_BIND != 0 && flags & libc::MS_RDONLY != 0 {
        sys::mount(None, target, None, flags | libc::MS_REMOUNT, None)
            .map_err(|e| format!("remounting read-only: {e}"))?;
    }
    Ok(())
}

/// Unmount everything stacked on `target` (lazily: a process still in it
/// keeps its view, the host loses the mount).
pub fn unmount_rootfs(target: &Path) {
    let Ok(t) = CString::new(target.as_os_str().as_encoded_bytes()) else {
        return;
    };
    detach_all(&t);
}

fn detach_all(t: &CString) {
    for _ in 0..16 {
        if sys::umount2(t, libc::MNT_DETACH).is_err() {
            break;
        }
    }
}

/// [`unmount_rootfs`] for the serving shim's Delete: the last reference
/// to an unmounted overlay makes the kernel sync its upper filesystem
/// (the whole of it: 25 ms measured on the loaded machine) in the task
/// that drops it. A child holding an fd on the rootfs keeps that
/// reference while the mounts are detached, then exits and pays the sync
/// instead of the Delete's caller. The child is reaped by the loop like
/// any other process.
pub fn unmount_rootfs_in_background(target: &Path) {
    let Ok(t) = CString::new(target.as_os_str().as_encoded_bytes()) else {
        return;
    };
    let holder = sys::open(&t, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC, 0)
        .ok()
        .and_then(|fd| {
            sys::hold_in_child(fd)
                .map(|(_, release)| release)
                .or_else(|| {
                    sys::close(fd);
                    None
                })
        });
    detach_all(&t);
    if let Some(release) = holder {
        sys::close(release);
    }
}
