//! CVE-2019-5736: when a container could reach hull's image, re-exec hull
//! from a sealed copy of itself before anything is made.
//!
//! hull clones the container's init (and forks `exec` processes) without
//! re-executing itself, so until that process's `execve` its
//! `/proc/<pid>/exe` is hull's binary on the host. It is non-dumpable for
//! that whole time, which keeps the container away unless a container
//! process holds CAP_SYS_PTRACE over hull's user namespace: then it can take
//! an `O_PATH` handle on that exe and, once nothing executes the image any
//! more (no ETXTBSY), reopen it for writing and replace the host binary.
//! For those containers ([`reason`]) the runtime process first re-execs
//! itself ([`reexec`]) from
//!
//! 1. the binary seen through a detached, read-only overlayfs mount whose
//!    only layers are the binary's directory and an empty one (no upper
//!    layer: the superblock cannot be made writable; no copy, the page
//!    cache is shared), else
//! 2. a memfd copy sealed against writes, shrinking and growing.
//!
//! The init it then clones has that file as its exe: an open for writing
//! fails (EROFS; the memfd's seals refuse every write), however it is
//! reached. Every other container takes the plain fork path untouched.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use oci_spec::runtime::{Capability, LinuxNamespaceType, Spec};

use crate::error::{Error, Result};
use crate::sys;

/// Set in the environment of the re-executed runtime: if its image still
/// is not sealed, it fails instead of re-executing again.
const MARKER: &str = "_HULL_SEALED_EXE";
/// The empty second layer of the overlay (overlayfs without an upper
/// layer needs two lower ones), in `state::cache_dir()`.
const EMPTY_LAYER: &str = "sealed-exe-lower";
/// The overlay mount fd [`seal_self`] kept open across its re-exec.
const KEPT_MOUNT: &str = "_HULL_SEALED_MOUNT_FD";
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// Why a process started from `spec` needs a sealed runtime image, or
/// None (the common path). `other_ptrace`: another process of the
/// container may hold CAP_SYS_PTRACE (`exec`: the container's own
/// `process.capabilities` grant it).
///
/// - CAP_SYS_PTRACE in any of `process.capabilities`' sets and no user
///   namespace: a container process may hold CAP_SYS_PTRACE over the
///   host's user namespace, which non-dumpable does not stop.
/// - The PID namespace is joined by path: processes of another container
///   (with their own capabilities) see the init while it waits.
///
/// With a user namespace the container's capabilities do not reach the
/// init's memory, which belongs to the host's user namespace. Without a
/// PID namespace the init is visible to every host process, but a
/// container that shares the host's PID namespace *and* holds
/// CAP_SYS_PTRACE can ptrace any host process anyway.
pub fn reason(spec: &Spec, other_ptrace: bool) -> Option<&'static str> {
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    if namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_some())
    {
        return Some("the PID namespace is joined");
    }
    let userns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User);
    let ptrace = other_ptrace
        || spec
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().as_ref())
            .is_some_and(|c| {
                [
                    c.bounding(),
                    c.effective(),
                    c.permitted(),
                    c.inheritable(),
                    c.ambient(),
                ]
                .into_iter()
                .flatten()
                .any(|set| set.contains(&Capability::SysPtrace))
            });
    (ptrace && !userns).then_some("CAP_SYS_PTRACE without a user namespace")
}

/// Whether a `process` object of a config (JSON) lists CAP_SYS_PTRACE in
/// any capability set.
pub fn process_grants_ptrace(process: &serde_json::Value) -> bool {
    process["capabilities"].as_object().is_some_and(|sets| {
        sets.values()
            .filter_map(serde_json::Value::as_array)
            .flatten()
            .any(|c| {
                c.as_str()
                    .is_some_and(|c| c.trim_start_matches("CAP_") == "SYS_PTRACE")
            })
    })
}

/// Whether this process is the re-executed runtime and has not passed
/// [`ensure`] yet (it repeats the first one's steps up to there).
pub fn reexecuted() -> bool {
    std::env::var_os(MARKER).is_some()
}

/// Whether this process runs from a sealed image: a memfd sealed against
/// writes, or a file on a read-only overlayfs mount.
pub fn running_sealed() -> bool {
    exe_is_sealed("/proc/self/exe")
}

/// Whether `exe` (a `/proc/<pid>/exe`) is a sealed image, as
/// [`running_sealed`] means it.
pub fn exe_is_sealed(exe: &str) -> bool {
    let Ok(fd) = std::fs::File::open(exe) else {
        return false;
    };
    if let Ok(seals) = sys::get_seals(fd.as_raw_fd()) {
        let need = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
        return seals & need == need;
    }
    sys::fd_fs_magic(fd.as_raw_fd()) == Ok(OVERLAYFS_SUPER_MAGIC)
        && sys::fd_mount_flags(fd.as_raw_fd()).is_ok_and(|f| f & libc::ST_RDONLY != 0)
}

/// If `spec` needs it ([`reason`]) and this process does not run from a
/// sealed image yet, re-exec it (same argv and environment) from one.
/// Returns Ok only when nothing had to be done; call it before anything
/// is made (the re-executed process starts over).
pub fn ensure(spec: &Spec, other_ptrace: bool) -> Result<()> {
    let again = reexecuted();
    // Not passed on (hooks, nested runtimes); later warnings are new.
    std::env::remove_var(MARKER);
    let Some(why) = reason(spec, other_ptrace) else {
        return Ok(());
    };
    if running_sealed() {
        return Ok(());
    }
    if again {
        return Err(Error::Usage(format!(
            "{why}: re-executed from a sealed copy of hull, but /proc/self/exe is still not sealed"
        )));
    }
    let err = reexec(false);
    Err(Error::Usage(format!(
        "{why}: cannot re-execute from a sealed copy of hull: {err}"
    )))
}

/// Re-exec this process (same argv and environment) from a sealed image
/// unless it runs from one: a long-lived caller that clones containers'
/// processes for every request (the shim) does this once at start instead
/// of [`ensure`] per container. Returns Ok only when running sealed.
///
/// The overlay's mount fd is handed to the re-executed process open
/// (found by [`release_kept_mount`]) instead of being closed before the
/// exec: closing the last fd of a detached mount dissolves it, which waits
/// for an RCU grace period (20–60 ms measured on a loaded 2-vCPU machine),
/// and the caller can have that wait happen elsewhere.
pub fn seal_self() -> Result<()> {
    let again = reexecuted();
    std::env::remove_var(MARKER);
    if running_sealed() {
        return Ok(());
    }
    if again {
        return Err(Error::Usage(
            "re-executed from a sealed copy, but /proc/self/exe is still not sealed".into(),
        ));
    }
    let err = reexec(true);
    Err(Error::Usage(format!(
        "cannot re-execute from a sealed copy of the binary: {err}"
    )))
}

/// Drop the overlay mount fd [`seal_self`] kept open across its re-exec
/// without waiting for the detached mount to dissolve: a child holding
/// the last copy exits once this process closed its own, and pays the
/// wait. Returns the child's pid (the caller reaps it), None if no fd was
/// kept (memfd image, or not re-executed).
pub fn release_kept_mount() -> Option<libc::pid_t> {
    let fd: RawFd = std::env::var(KEPT_MOUNT).ok()?.parse().ok()?;
    std::env::remove_var(KEPT_MOUNT);
    if sys::fd_fs_magic(fd) != Ok(OVERLAYFS_SUPER_MAGIC) {
        return None;
    }
    match sys::hold_in_child(fd) {
        Some((pid, release)) => {
            // Released at once: the child exits, closing the last copy.
            sys::close(release);
            Some(pid)
        }
        None => {
            sys::close(fd);
            None
        }
    }
}

/// Re-exec from a sealed image; returns only on failure (its description).
/// `keep_mount`: the overlay's mount fd stays open across the exec, its
/// number in the environment (see [`seal_self`]).
fn reexec(keep_mount: bool) -> String {
    let (exe, mnt) = match overlay_image() {
        Ok((fd, mnt)) => (fd, Some(mnt)),
        Err(overlay) => match memfd_image() {
            Ok(fd) => (fd, None),
            Err(memfd) => return format!("overlayfs: {overlay}; memfd: {memfd}"),
        },
    };
    // Not kept: closed here, before the exec, as always.
    let mnt = if keep_mount { mnt } else { None };
    let kept = mnt
        .as_ref()
        .filter(|m| sys::set_cloexec(m.as_raw_fd(), false).is_ok())
        .map(|m| m.as_raw_fd());
    let cstr = |s: OsString| CString::new(s.into_vec()).ok();
    let Some(argv) = std::env::args_os().map(cstr).collect::<Option<Vec<_>>>() else {
        return "NUL byte in an argument".into();
    };
    let mut env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    env.push(CString::new(format!("{MARKER}=1")).unwrap_or_default());
    if let Some(fd) = kept {
        env.push(CString::new(format!("{KEPT_MOUNT}={fd}")).unwrap_or_default());
    }
    let ptrs = |v: &[CString]| {
        let mut p: Vec<*const libc::c_char> = v.iter().map(|s| s.as_ptr()).collect();
        p.push(std::ptr::null());
        p
    };
    let (argv_p, env_p) = (ptrs(&argv), ptrs(&env));
    let e = sys::execveat_fd(exe.as_raw_fd(), &argv_p, &env_p);
    format!("execveat: {e}")
}

/// The running binary through a detached read-only overlayfs mount
/// (layers: its directory, then an empty one), as an O_PATH fd, and the
/// mount's fd (dropping it dissolves the detached mount once the file is
/// no longer used).
fn overlay_image() -> std::result::Result<(OwnedFd, OwnedFd), String> {
    let path = std::fs::read_link("/proc/self/exe").map_err(|e| format!("/proc/self/exe: {e}"))?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(format!("{}: no directory", path.display()));
    };
    let empty = crate::state::cache_dir().join(EMPTY_LAYER);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&empty)
        .map_err(|e| format!("{}: {e}", empty.display()))?;
    // ':' separates layers and '\' escapes; both are escaped in the paths.
    let escape = |p: &Path| {
        let mut out = Vec::new();
        for &b in p.as_os_str().as_bytes() {
            if b == b':' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out
    };
    let mut lower = escape(dir);
    lower.push(b':');
    lower.extend(escape(&empty));
    let lower = CString::new(lower).map_err(|e| e.to_string())?;
    let name = CString::new(name.as_bytes()).map_err(|e| e.to_string())?;
    let ctx = sys::fsopen(c"overlay").map_err(|e| format!("fsopen: {e}"))?;
    sys::fsconfig_string(ctx.as_raw_fd(), c"lowerdir", &lower)
        .map_err(|e| format!("lowerdir={}: {e}", lower.to_string_lossy()))?;
    // Only to keep xino's notes out of the kernel log where it applies.
    let _ = sys::fsconfig_string(ctx.as_raw_fd(), c"xino", c"off");
    sys::fsconfig_create(ctx.as_raw_fd()).map_err(|e| format!("creating the overlay: {e}"))?;
    let mnt = sys::fsmount_readonly(ctx.as_raw_fd()).map_err(|e| format!("fsmount: {e}"))?;
    let file = sys::openat_path(mnt.as_raw_fd(), &name)
        .map_err(|e| format!("{} in the overlay: {e}", name.to_string_lossy()))?;
    Ok((file, mnt))
}

/// A copy of the running binary in a memfd sealed against writes,
/// shrinking, growing and further seal changes.
fn memfd_image() -> std::result::Result<OwnedFd, String> {
    let src = std::fs::File::open("/proc/self/exe").map_err(|e| format!("/proc/self/exe: {e}"))?;
    let len = src.metadata().map_err(|e| e.to_string())?.len();
    let mem = sys::memfd_exec(c"hull").map_err(|e| format!("memfd_create: {e}"))?;
    sys::sendfile_all(mem.as_raw_fd(), src.as_raw_fd(), len)
        .map_err(|e| format!("copying: {e}"))?;
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    sys::add_seals(mem.as_raw_fd(), seals).map_err(|e| format!("sealing: {e}"))?;
    Ok(OwnedFd::from(mem))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(caps: serde_json::Value, namespaces: serde_json::Value) -> Spec {
        serde_json::from_value(json!({
            "ociVersion": "1.0.2",
            "process": {"cwd": "/", "args": ["true"], "user": {"uid": 0, "gid": 0},
                        "capabilities": caps},
            "root": {"path": "rootfs"},
            "linux": {"namespaces": namespaces},
        }))
        .unwrap()
    }

    #[test]
    fn the_common_path_needs_no_sealed_image() {
        let caps = json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]});
        let ns = json!([{"type": "pid"}, {"type": "mount"}]);
        assert_eq!(reason(&spec(caps, ns), false), None);
    }

    #[test]
    fn ptrace_in_any_set_without_a_user_namespace_does() {
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            let caps = json!({ set: ["CAP_SYS_PTRACE"] });
            let ns = json!([{"type": "pid"}, {"type": "mount"}]);
            assert!(reason(&spec(caps, ns), false).is_some(), "{set}");
        }
        // exec: the container's own processes hold it.
        let ns = json!([{"type": "pid"}]);
        assert!(reason(&spec(json!({}), ns), true).is_some());
    }

    #[test]
    fn a_user_namespace_keeps_ptrace_away_from_the_init() {
        let caps = json!({"bounding": ["CAP_SYS_PTRACE"]});
        let ns = json!([{"type": "pid"}, {"type": "user"}]);
        assert_eq!(reason(&spec(caps, ns), false), None);
    }

    #[test]
    fn a_joined_pid_namespace_does() {
        let ns = json!([{"type": "pid", "path": "/proc/1/ns/pid"}, {"type": "user"}]);
        assert!(reason(&spec(json!({}), ns), false).is_some());
    }

    #[test]
    fn ptrace_is_found_in_a_process_object() {
        assert!(process_grants_ptrace(
            &json!({"capabilities": {"ambient": ["CAP_SYS_PTRACE"]}})
        ));
        assert!(!process_grants_ptrace(
            &json!({"capabilities": {"bounding": ["CAP_KILL"]}})
        ));
        assert!(!process_grants_ptrace(&json!({})));
    }

    #[test]
    fn the_memfd_image_is_sealed() {
        let fd = memfd_image().unwrap();
        let seals = sys::get_seals(fd.as_raw_fd()).unwrap();
        for s in [
            libc::F_SEAL_WRITE,
            libc::F_SEAL_GROW,
            libc::F_SEAL_SHRINK,
            libc::F_SEAL_SEAL,
        ] {
            assert_ne!(seals & s, 0, "seal {s:#x} missing");
        }
        let mut f = std::fs::File::from(fd);
        use std::io::Write;
        assert!(f.write_all(b"x").is_err());
    }
}
