//! The syscalls std lacks, as safe wrappers returning `io::Result`. The
//! only `unsafe` in hullctl.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub fn cstr(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: `path` must stay
/// under `dir` and go through no symlink at all (ELOOP/EXDEV otherwise).
/// With O_PATH|O_NOFOLLOW a trailing symlink is opened itself.
pub fn open_beneath_nolinks(dir: RawFd, path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    hull::sys::openat2_owned(dir, path, flags, 0, resolve).map_err(|e| e.io())
}

/// openat relative to `dir` (no symlink followed at the last component).
pub fn openat(
    dir: RawFd,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    // SAFETY: name is a valid C string.
    let fd = check(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: fresh fd, owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn mkdirat(dir: RawFd, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: name is a valid C string.
    check(unsafe { libc::mkdirat(dir, name.as_ptr(), mode) }).map(drop)
}

pub fn mknodat(dir: RawFd, name: &CStr, mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    // SAFETY: name is a valid C string.
    check(unsafe { libc::mknodat(dir, name.as_ptr(), mode, dev) }).map(drop)
}

pub fn symlinkat(target: &CStr, dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: both are valid C strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) }).map(drop)
}

/// Hard-link the file open at `fd` (O_PATH) as `name` in `dir`.
pub fn link_fd(fd: &OwnedFd, dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: the empty path and name are valid C strings; fd is open.
    check(unsafe {
        libc::linkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            dir,
            name.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    })
    .map(drop)
}

pub fn unlinkat(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: name is a valid C string.
    check(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }).map(drop)
}

pub fn fchownat_nofollow(dir: RawFd, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: name is a valid C string.
    check(unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })
        .map(drop)
}

pub fn fchmodat(dir: RawFd, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: name is a valid C string (the target is not a symlink here).
    check(unsafe { libc::fchmodat(dir, name.as_ptr(), mode, 0) }).map(drop)
}

/// Set the mtime (and atime) of `name` in `dir`, not following a symlink.
pub fn set_mtime(dir: RawFd, name: &CStr, secs: i64) -> io::Result<()> {
    let t = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: name is a C string; times points at two timespecs.
    check(unsafe {
        libc::utimensat(
            dir,
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

pub fn fsetxattr(fd: RawFd, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: name is a C string; value is a valid buffer of its length.
    check(unsafe { libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
        .map(drop)
}

/// An extended attribute of `path` (not following a final symlink); at
/// most 256 bytes are read (enough for overlayfs' markers).
pub fn lgetxattr(path: &CStr, name: &CStr) -> io::Result<Vec<u8>> {
    lgetxattr_max(path, name, 256)
}

/// An extended attribute of at most `max` bytes (ERANGE if longer).
fn lgetxattr_max(path: &CStr, name: &CStr, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; max];
    // SAFETY: path and name are C strings; buf is valid for its length.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

pub fn flock(fd: RawFd, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: plain syscall.
        match check(unsafe { libc::flock(fd, op) }) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// Open (creating) the lock file `path` and flock it with `op`; the lock
/// lasts as long as the returned file.
pub fn lock_file(path: &std::path::Path, op: libc::c_int) -> io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    flock(f.as_raw_fd(), op)?;
    Ok(f)
}

pub fn makedev(major: u32, minor: u32) -> libc::dev_t {
    libc::makedev(major, minor)
}

pub fn mount(
    source: &CStr,
    target: &CStr,
    fstype: &CStr,
    flags: libc::c_ulong,
    data: &CStr,
) -> io::Result<()> {
    // SAFETY: all are valid C strings.
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    })
    .map(drop)
}

pub fn umount(target: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: target is a valid C string.
    check(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

pub fn setsid() -> io::Result<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::setsid() }).map(drop)
}

pub fn dup2(old: RawFd, new: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall on fds we own or stdio.
    check(unsafe { libc::dup2(old, new) }).map(drop)
}

pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::kill(pid, sig) }).map(drop)
}

pub fn getpid() -> libc::pid_t {
    // SAFETY: cannot fail.
    unsafe { libc::getpid() }
}

pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::isatty(fd) == 1 }
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid two-element out-array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned both fds; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// fork(2) for a process that goes on running ordinary code in the child
/// (the monitor). Refused unless this process is single-threaded.
pub fn fork_single_threaded() -> io::Result<libc::pid_t> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(0);
    if threads != 1 {
        return Err(io::Error::other(format!(
            "fork refused: this process has {threads} threads"
        )));
    }
    // SAFETY: single-threaded (checked above), so no lock is held by a
    // thread that would be missing in the child; the child may allocate.
    check(unsafe { libc::fork() })
}

pub fn waitpid(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        match check(unsafe { libc::waitpid(pid, &mut status, 0) }) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            r => return r.map(|_| status),
        }
    }
}

pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process; nothing to unwind (the forked child
    // must not run the parent's atexit handlers or flush its buffers twice).
    unsafe { libc::_exit(code) }
}

/// Make `cmd`'s child start with no signal blocked (the init blocks them
/// all before spawning, so none is lost; the child must not inherit that).
pub fn unblock_signals_in_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls sigemptyset and sigprocmask, both async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            check(libc::sigprocmask(
                libc::SIG_SETMASK,
                &set,
                std::ptr::null_mut(),
            ))
            .map(drop)
        });
    }
}

/// openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: `path` is
/// resolved as if `root` were `/` (neither `..` nor an absolute symlink
/// leaves it); symlinks are followed inside it, unless O_NOFOLLOW asks
/// for a final one to be opened itself (with O_PATH).
pub fn open_in_root(
    root: RawFd,
    path: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    hull::sys::openat2_owned(root, path, flags, mode, resolve).map_err(|e| e.io())
}

/// fstatat without following a final symlink (`name` empty: `dir` itself).
pub fn lstatat(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: stat is a plain C struct; all-zero is valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let flags = if name.is_empty() {
        libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: name is a C string; st is a valid out-pointer.
    check(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, flags) })?;
    Ok(st)
}

/// readlinkat: the target of the symlink `name` in `dir`.
pub fn readlinkat(dir: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: name is a C string; buf is valid for its length.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

pub fn fchown(fd: RawFd, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain syscall on an open fd.
    check(unsafe { libc::fchown(fd, uid, gid) }).map(drop)
}

pub fn fchmod(fd: RawFd, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: plain syscall on an open fd.
    check(unsafe { libc::fchmod(fd, mode) }).map(drop)
}

/// Set atime and mtime of `name` in `dir` (a final symlink itself).
pub fn utimensat_nofollow(
    dir: RawFd,
    name: &CStr,
    atime: libc::timespec,
    mtime: libc::timespec,
) -> io::Result<()> {
    let times = [atime, mtime];
    let flags = if name.is_empty() {
        libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: name is a C string; times points at two timespecs.
    check(unsafe { libc::utimensat(dir, name.as_ptr(), times.as_ptr(), flags) }).map(drop)
}

/// The names of `path`'s extended attributes (a final symlink itself).
pub fn llistxattr(path: &CStr) -> io::Result<Vec<CString>> {
    // SAFETY: path is a C string; a null buffer asks for the size.
    let n = unsafe { libc::llistxattr(path.as_ptr(), std::ptr::null_mut(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; n as usize];
    // SAFETY: buf is valid for its length.
    let n = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| CString::new(s).ok())
        .collect())
}

/// A whole extended attribute value (a final symlink itself).
pub fn lgetxattr_all(path: &CStr, name: &CStr) -> io::Result<Vec<u8>> {
    // SAFETY: C strings; a null buffer asks for the size.
    let n = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    lgetxattr_max(path, name, n as usize)
}

pub fn lsetxattr(path: &CStr, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: C strings; value is a valid buffer of its length.
    check(unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(drop)
}

pub fn geteuid_egid() -> (u32, u32) {
    // SAFETY: cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// fchownat on `name` in `dir` without following it, or on `dir` itself
/// when `name` is empty.
pub fn fchownat_empty_or_nofollow(dir: RawFd, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    let flags = if name.is_empty() {
        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: name is a valid C string.
    check(unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, flags) }).map(drop)
}
