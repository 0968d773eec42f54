//! The thin syscall layer: every `unsafe` block of hull's container start
//! path lives here, each in a small function with its safety argument.
//!
//! Every function here is async-signal-safe: no allocation, no locks, only
//! the system call itself. That is what lets the forked children in
//! [`crate::init`] call them between `fork` and `execve`.

use std::ffi::CStr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// A raw `errno` value from a failed system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The calling thread's current errno.
    pub fn last() -> Errno {
        // SAFETY: __errno_location always returns a valid thread-local pointer.
        Errno(unsafe { *libc::__errno_location() })
    }

    /// The OS error for display purposes (allocates; parent side only).
    pub fn io(self) -> std::io::Error {
        std::io::Error::from_raw_os_error(self.0)
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.io())
    }
}

pub type SysResult<T> = Result<T, Errno>;

fn check(ret: libc::c_int) -> SysResult<libc::c_int> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

fn check_long(ret: libc::c_long) -> SysResult<libc::c_long> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// A nullable C string pointer.
fn ptr(s: Option<&CStr>) -> *const libc::c_char {
    s.map_or(std::ptr::null(), |s| s.as_ptr())
}

pub fn fork() -> SysResult<libc::pid_t> {
    // SAFETY: hull is single-threaded when it forks (checked by callers); the
    // child only runs async-signal-safe code until execve or _exit.
    check(unsafe { libc::fork() })
}

/// clone3(2)'s argument block (CLONE_ARGS_SIZE_VER2: up to `cgroup`).
#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// fork() with extra clone `flags` (e.g. CLONE_NEWPID): the child is in the
/// new namespaces from its first instruction. With `cgroup_fd`, clone3 puts
/// it into that cgroup2 directory too (CLONE_INTO_CGROUP), so it is never
/// migrated (no wait on the cgroup threadgroup lock); without, plain
/// clone(2), which every kernel has.
pub fn clone_child(flags: libc::c_int, cgroup_fd: Option<RawFd>) -> SysResult<libc::pid_t> {
    let flags = flags as u32 as u64;
    let Some(cg) = cgroup_fd else {
        // SAFETY: like fork: no CLONE_VM and a null stack (the child runs on
        // a copy of ours); the caller is single-threaded and the child runs
        // only async-signal-safe code.
        return check_long(unsafe {
            libc::syscall(
                libc::SYS_clone,
                flags | libc::SIGCHLD as u64,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        })
        .map(|pid| pid as libc::pid_t);
    };
    let args = CloneArgs {
        flags: flags | CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cg as u64,
    };
    // SAFETY: like fork: no CLONE_VM, no new stack; the caller is
    // single-threaded and the child runs only async-signal-safe code.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    })
    .map(|pid| pid as libc::pid_t)
}

/// Read a small /proc, /sys or cgroupfs file whole: one big read instead of
/// std's size probe and doubling reads (these files report size 0, and
/// each read(2) of mountinfo or status makes the kernel format more).
pub fn read_text(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path)?;
    // Plain read(2)s: File::read_to_end would also statx and lseek first.
    // Into uninitialised capacity: zeroing 16 KB per file cost a hull run
    // about 200,000 instructions (callgrind), more than the reads.
    let mut buf: Vec<u8> = Vec::with_capacity(16 << 10);
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.len());
        }
        let spare = buf.spare_capacity_mut();
        // SAFETY: read(2) writes at most spare.len() bytes into the
        // vector's unused capacity, which stays owned by `buf`.
        let n = unsafe { libc::read(f.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
        match n {
            0 => break,
            // SAFETY: the kernel initialised exactly n more bytes.
            n if n > 0 => unsafe { buf.set_len(buf.len() + n as usize) },
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// What a process needs before anything else (hull's `main` does not go
/// through std's runtime start-up): fds 0, 1 and 2 open (/dev/null where
/// one is closed, so no file opened later lands on stdout), and SIGPIPE
/// ignored (a write to a closed pipe is an EPIPE error, not death).
pub fn process_start() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the fd.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // Lowest free fd: it takes the place of the closed one.
            let _ = open(c"/dev/null", libc::O_RDWR, 0).map(|n| {
                // open() adds O_CLOEXEC; stdio must survive exec.
                // SAFETY: n was just opened here.
                unsafe { libc::fcntl(n, libc::F_SETFD, 0) };
            });
        }
    }
    // SAFETY: SIG_IGN is always a valid disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and skips atexit handlers, as a forked child must.
    unsafe { libc::_exit(code) }
}

pub fn unshare(flags: libc::c_int) -> SysResult<()> {
    // SAFETY: plain syscall with an integer argument.
    check(unsafe { libc::unshare(flags) }).map(drop)
}

pub fn setns(fd: RawFd, nstype: libc::c_int) -> SysResult<()> {
    // SAFETY: plain syscall; a bad fd yields EBADF.
    check(unsafe { libc::setns(fd, nstype) }).map(drop)
}

pub fn close(fd: RawFd) {
    // SAFETY: closing an fd we own; errors are irrelevant here.
    unsafe { libc::close(fd) };
}

/// Whether this process can still open an fd (RLIMIT_NOFILE): dups `fd`
/// and closes the copy.
pub fn fd_room(fd: RawFd) -> SysResult<()> {
    // SAFETY: F_DUPFD_CLOEXEC on an fd we own; the copy is closed at once.
    let copy = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    close(copy);
    Ok(())
}

pub fn dup2(old: RawFd, new: RawFd) -> SysResult<()> {
    // SAFETY: plain syscall on integer fds.
    check(unsafe { libc::dup2(old, new) }).map(drop)
}

pub fn set_cloexec(fd: RawFd, on: bool) -> SysResult<()> {
    let flag = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: F_SETFD takes an integer flag argument.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flag) }).map(drop)
}

/// Mark every fd from `first` upwards close-on-exec.
pub fn cloexec_from(first: u32) -> SysResult<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on fds.
    check(unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) }).map(drop)
}

pub fn open(path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> SysResult<RawFd> {
    // SAFETY: path is a valid NUL-terminated string.
    check(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode) })
}

/// open(2), the fd owned by the caller.
pub fn open_owned(path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> SysResult<OwnedFd> {
    let fd = open(path, flags, mode)?;
    // SAFETY: open just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn openat(dir: RawFd, path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> SysResult<RawFd> {
    // SAFETY: path is a valid NUL-terminated string.
    check(unsafe { libc::openat(dir, path.as_ptr(), flags | libc::O_CLOEXEC, mode) })
}

/// openat2(2) with RESOLVE_IN_ROOT: `path` is resolved as if `root` were
/// `/`, so neither `..` nor an absolute symlink can escape it.
pub fn open_in_root(
    root: RawFd,
    path: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> SysResult<RawFd> {
    openat2(
        root,
        path,
        flags,
        mode,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// Open `name` strictly beneath the directory `dir`: no `..` above it, no
/// absolute or escaping symlinks (EXDEV), no magic links.
pub fn open_beneath(dir: RawFd, name: &CStr, flags: libc::c_int) -> SysResult<RawFd> {
    openat2(
        dir,
        name,
        flags,
        0,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// openat2(2) with `resolve` (RESOLVE_* flags). EAGAIN, which RESOLVE_IN_ROOT
/// and RESOLVE_BENEATH return when a rename or mount anywhere on the host
/// raced with a `..` in the path, is retried, as openat2(2) asks (seen with
/// a relative symlink in a rootfs while other containers mounted).
pub fn openat2(
    root: RawFd,
    path: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
    resolve: u64,
) -> SysResult<RawFd> {
    let mut how: libc::open_how = open_how_zeroed();
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    let tmpfile = flags & libc::O_TMPFILE == libc::O_TMPFILE;
    how.mode = if flags & libc::O_CREAT != 0 || tmpfile {
        mode as u64
    } else {
        0
    };
    how.resolve = resolve;
    let mut tries = 0;
    loop {
        // SAFETY: how is a properly initialised open_how of the size we pass.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root,
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match check_long(ret) {
            Err(Errno(libc::EAGAIN)) if tries < 64 => tries += 1,
            r => return r.map(|fd| fd as RawFd),
        }
    }
}

/// [`openat2`], the fd owned by the caller.
pub fn openat2_owned(
    root: RawFd,
    path: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
    resolve: u64,
) -> SysResult<OwnedFd> {
    let fd = openat2(root, path, flags, mode, resolve)?;
    // SAFETY: openat2 just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_how_zeroed() -> libc::open_how {
    // SAFETY: open_how is a plain C struct of integers; all-zero is valid.
    unsafe { std::mem::zeroed() }
}

pub fn mkdirat(dir: RawFd, name: &CStr, mode: libc::mode_t) -> SysResult<()> {
    // SAFETY: name is a valid C string.
    check(unsafe { libc::mkdirat(dir, name.as_ptr(), mode) }).map(drop)
}

pub fn mknodat(dir: RawFd, name: &CStr, mode: libc::mode_t, dev: libc::dev_t) -> SysResult<()> {
    // SAFETY: name is a valid C string.
    check(unsafe { libc::mknodat(dir, name.as_ptr(), mode, dev) }).map(drop)
}

pub fn fchown(fd: RawFd, uid: u32, gid: u32) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::fchown(fd, uid, gid) }).map(drop)
}

pub fn fchownat_nofollow(dir: RawFd, name: &CStr, uid: u32, gid: u32) -> SysResult<()> {
    // SAFETY: name is a valid C string.
    check(unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })
        .map(drop)
}

pub fn symlinkat(target: &CStr, dir: RawFd, name: &CStr) -> SysResult<()> {
    // SAFETY: both are valid C strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) }).map(drop)
}

/// readlinkat into `buf`; returns the target's length.
pub fn readlinkat(dir: RawFd, name: &CStr, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: name is a valid C string; buf is a valid writable buffer.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(Errno::last());
    }
    Ok(n as usize)
}

/// getdents64(2): directory entries of `fd` into `buf` (records of
/// d_ino, d_off, d_reclen, d_type, d_name); 0 at the end.
pub fn getdents64(fd: RawFd, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is a valid writable buffer of the given length.
    let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
    check_long(n).map(|n| n as usize)
}

/// fstatat(dir, name, AT_SYMLINK_NOFOLLOW): what `name` itself is.
pub fn fstatat_nofollow(dir: RawFd, name: &CStr) -> SysResult<libc::stat> {
    // SAFETY: stat is plain data; zeroed is a valid initial value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: name is a valid C string and st a valid out-pointer.
    check(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

/// chmod(2) of a path (a /proc/self/fd/N path reaches an O_PATH fd's file).
pub fn chmod_path(path: &CStr, mode: libc::mode_t) -> SysResult<()> {
    // SAFETY: path is a valid C string.
    check(unsafe { libc::chmod(path.as_ptr(), mode) }).map(drop)
}

pub fn fchmod(fd: RawFd, mode: libc::mode_t) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::fchmod(fd, mode) }).map(drop)
}

pub fn unlinkat(dir: RawFd, name: &CStr, flags: libc::c_int) -> SysResult<()> {
    // SAFETY: name is a valid C string.
    check(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }).map(drop)
}

pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> SysResult<()> {
    // SAFETY: all pointers are NULL or valid C strings.
    check(unsafe {
        libc::mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags,
            ptr(data).cast(),
        )
    })
    .map(drop)
}

pub fn umount2(target: &CStr, flags: libc::c_int) -> SysResult<()> {
    // SAFETY: target is a valid C string.
    check(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> SysResult<()> {
    // SAFETY: both are valid C strings.
    check_long(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })
        .map(drop)
}

pub fn chroot(path: &CStr) -> SysResult<()> {
    // SAFETY: path is a valid C string.
    check(unsafe { libc::chroot(path.as_ptr()) }).map(drop)
}

pub fn chdir(path: &CStr) -> SysResult<()> {
    // SAFETY: path is a valid C string.
    check(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

pub fn fchdir(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::fchdir(fd) }).map(drop)
}

// ---- The new mount API: recursive attributes and idmapped mounts ----

/// mount_setattr(2) attribute bits (linux/mount.h).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// The access-time setting is a 3-bit field, not flags: to change it,
/// `attr_clr` must hold all of it and `attr_set` one of the values below.
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_IDMAP: u64 = 0x10_0000;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x20_0000;

/// struct mount_attr (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount tree at `path` (a /proc/self/fd/N path
/// is followed to the mount on it): set then clear attributes, on every
/// mount below it too (AT_RECURSIVE).
pub fn mount_setattr_recursive(path: &CStr, set: u64, clr: u64) -> SysResult<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: path is a valid C string; attr is a valid mount_attr of the
    // size passed, read by the kernel only during the call.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// Whether the kernel has mount_setattr(2) (Linux 5.12): a call with no
/// attributes fails with EINVAL or EBADF there, ENOSYS before.
pub fn has_mount_setattr() -> bool {
    // SAFETY: a null attribute pointer of size 0 is never dereferenced;
    // the path is a valid (empty) C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            c"".as_ptr(),
            0,
            std::ptr::null::<MountAttr>(),
            0usize,
        )
    };
    !(r < 0 && Errno::last().0 == libc::ENOSYS)
}

/// open_tree(OPEN_TREE_CLONE): a detached copy of the mount at `path`
/// (with every mount below it if `recursive`), close-on-exec.
pub fn open_tree_clone(path: &CStr, recursive: bool) -> SysResult<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: path is a valid C string; flags are plain bits.
    let fd = check_long(unsafe {
        libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags)
    })?;
    // SAFETY: fd was just returned by the kernel and is owned by nothing else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as RawFd) })
}

/// mount_setattr(MOUNT_ATTR_IDMAP) on the detached tree `tree`: its files'
/// owners are seen through the id mapping of the user namespace `userns`
/// (the top mount only, or every mount of the tree if `recursive`).
pub fn idmap_tree(tree: RawFd, userns: RawFd, recursive: bool) -> SysResult<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns as u64,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is the empty C string (AT_EMPTY_PATH: `tree`
    // itself); attr is a valid mount_attr of the size passed.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree,
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// move_mount(2): attach the detached tree `tree` at `target` (a
/// /proc/self/fd/N path is followed).
pub fn move_mount_to(tree: RawFd, target: &CStr) -> SysResult<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_SYMLINKS: libc::c_uint = 0x10;
    // SAFETY: both paths are valid C strings (the source is empty: `tree`).
    check_long(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS,
        )
    })
    .map(drop)
}

/// Mount flags (MS_*) currently in effect on the filesystem holding `path`.
pub fn mount_flags_of(path: &CStr) -> SysResult<libc::c_ulong> {
    // SAFETY: statvfs is plain data; zeroed is a valid initial value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: path is a valid C string and st a valid out-pointer.
    check(unsafe { libc::statvfs(path.as_ptr(), &mut st) })?;
    let f = st.f_flag;
    let mut out = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st_flag != 0 {
            out |= ms_flag;
        }
    }
    Ok(out)
}

/// The id of the mount `path` is on (statx STATX_MNT_ID, Linux 5.8+);
/// None where the kernel does not report it.
pub fn mount_id(path: &CStr) -> Option<u64> {
    // SAFETY: statx is plain data; zeroed is a valid initial value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: path is a valid C string and st a valid out-pointer.
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            &mut st,
        )
    };
    (r == 0 && st.stx_mask & libc::STATX_MNT_ID != 0).then_some(st.stx_mnt_id)
}

/// Whether `fd` refers to a directory.
pub fn is_dir_fd(fd: RawFd) -> SysResult<bool> {
    // SAFETY: stat is plain data; zeroed is a valid initial value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Whether `path` is a regular file that the caller may execute.
pub fn is_executable(path: &CStr) -> bool {
    // SAFETY: stat is plain data; zeroed is a valid initial value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: path is a valid C string and st a valid out-pointer.
    if unsafe { libc::stat(path.as_ptr(), &mut st) } != 0 {
        return false;
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return false;
    }
    // SAFETY: path is a valid C string.
    unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), libc::X_OK, libc::AT_EACCESS) == 0 }
}

/// flock(LOCK_EX) on `fd`; with `nonblock`, EWOULDBLOCK if already held.
pub fn flock_exclusive(fd: RawFd, nonblock: bool) -> SysResult<()> {
    let op = libc::LOCK_EX | if nonblock { libc::LOCK_NB } else { 0 };
    loop {
        // SAFETY: plain syscall.
        match check(unsafe { libc::flock(fd, op) }) {
            Err(Errno(libc::EINTR)) => continue,
            r => return r.map(drop),
        }
    }
}

pub fn getpid() -> libc::pid_t {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// Seconds and nanoseconds since the epoch (CLOCK_REALTIME).
pub fn now() -> (i64, u32) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec, ts.tv_nsec as u32)
}

pub fn sethostname(name: &[u8]) -> SysResult<()> {
    // SAFETY: pointer and length describe a valid byte slice.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

pub fn setdomainname(name: &[u8]) -> SysResult<()> {
    // SAFETY: pointer and length describe a valid byte slice.
    check(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) }).map(drop)
}

pub fn write_all(fd: RawFd, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: pointer and length describe a valid byte slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = Errno::last();
            if e.0 == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

pub fn read(fd: RawFd, buf: &mut [u8]) -> SysResult<usize> {
    loop {
        // SAFETY: pointer and length describe a valid writable buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

/// The filesystem type (fstatfs f_type) of an open fd.
pub fn fd_fs_magic(fd: RawFd) -> SysResult<i64> {
    // SAFETY: statfs is plain data; zeroed is a valid initial value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    check(unsafe { libc::fstatfs(fd, &mut st) })?;
    Ok(st.f_type as i64)
}

/// Write `data` to a file that must be on a real procfs (CVE-2019-16884,
/// CVE-2019-19921: a fake /proc in the image must not take the write).
/// A file elsewhere fails with EXDEV.
pub fn write_proc_file(path: &CStr, data: &[u8]) -> SysResult<()> {
    let fd = open(path, libc::O_WRONLY | libc::O_NOFOLLOW, 0)?;
    let r = match fd_fs_magic(fd) {
        Ok(libc::PROC_SUPER_MAGIC) => write_all(fd, data),
        Ok(_) => Err(Errno(libc::EXDEV)),
        Err(e) => Err(e),
    };
    close(fd);
    r
}

/// getcwd(2) into `buf`; the kernel prefixes a directory outside the
/// process's root with "(unreachable)", so a result not starting with '/'
/// means the cwd escaped the root.
pub fn getcwd(buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is a valid writable buffer of the given length.
    let r = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    check_long(r).map(|n| n as usize)
}

/// Write `data` to the file at `path` (opened O_WRONLY, not created).
pub fn write_file(path: &CStr, data: &[u8]) -> SysResult<()> {
    let fd = open(path, libc::O_WRONLY, 0)?;
    let r = write_all(fd, data);
    close(fd);
    r
}

pub fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> SysResult<()> {
    // SAFETY: the prctl options hull uses take integer arguments only.
    check(unsafe { libc::prctl(option, arg2, 0 as libc::c_ulong, 0 as libc::c_ulong, 0) }).map(drop)
}

pub fn prctl3(option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> SysResult<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::prctl(option, arg2, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) })
        .map(drop)
}

pub fn setresuid(uid: u32) -> SysResult<()> {
    // SAFETY: raw syscall (not the libc wrapper, which would broadcast to threads).
    check_long(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

pub fn setresgid(gid: u32) -> SysResult<()> {
    // SAFETY: raw syscall, as above.
    check_long(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

pub fn setgroups(gids: &[libc::gid_t]) -> SysResult<()> {
    // SAFETY: pointer and length describe a valid slice of gids.
    check_long(unsafe { libc::syscall(libc::SYS_setgroups, gids.len(), gids.as_ptr()) }).map(drop)
}

/// The three capability sets, as 64-bit masks.
#[derive(Debug, Clone, Copy, Default)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

pub fn capset(sets: &CapSets) -> SysResult<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let lo = |v: u64| v as u32;
    let hi = |v: u64| (v >> 32) as u32;
    let data = [
        Data {
            effective: lo(sets.effective),
            permitted: lo(sets.permitted),
            inheritable: lo(sets.inheritable),
        },
        Data {
            effective: hi(sets.effective),
            permitted: hi(sets.permitted),
            inheritable: hi(sets.inheritable),
        },
    ];
    // SAFETY: header and a two-element data array of the v3 layout.
    check_long(unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) }).map(drop)
}

pub fn setrlimit(resource: u32, soft: u64, hard: u64) -> SysResult<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: lim is a valid rlimit; pid 0 is the caller.
    check(unsafe { libc::prlimit(0, resource as _, &lim, std::ptr::null_mut()) }).map(drop)
}

pub fn umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask) }
}

pub fn setsid() -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::setsid() }).map(drop)
}

pub fn ioctl_int(fd: RawFd, req: libc::Ioctl, arg: libc::c_ulong) -> SysResult<libc::c_int> {
    // SAFETY: the requests hull passes here take an integer (or no) argument.
    check(unsafe { libc::ioctl(fd, req, arg) })
}

/// Set a terminal's window size (TIOCSWINSZ).
pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> SysResult<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize through the pointer.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// Unlock a pty master and open its peer (the slave) without a path lookup.
pub fn open_pty_peer(master: RawFd) -> SysResult<RawFd> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int through the pointer.
    check(unsafe { libc::ioctl(master, libc::TIOCSPTLCK, &unlock) })?;
    ioctl_int(
        master,
        libc::TIOCGPTPEER,
        (libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) as libc::c_ulong,
    )
}

pub fn execve(path: &CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> Errno {
    // SAFETY: argv and envp are NULL-terminated arrays of valid C strings,
    // kept alive by the caller's plan.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Errno::last()
}

pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// waitpid; returns (pid, raw status).
pub fn waitpid(pid: libc::pid_t, flags: libc::c_int) -> SysResult<(libc::pid_t, libc::c_int)> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r >= 0 {
            return Ok((r, status));
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

/// From /proc/self/status (one read): this process's number of threads
/// and the signals it ignores (bit n-1 for signal n). Parent side, before
/// a fork; (1, all signals) if it cannot be read.
pub fn self_status() -> (usize, u64) {
    let text = read_text("/proc/self/status").unwrap_or_default();
    let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).map(str::trim);
    let threads = field("Threads:").and_then(|v| v.parse().ok()).unwrap_or(1);
    let ignored = field("SigIgn:")
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or(u64::MAX);
    (threads, ignored)
}

/// Before exec: back to the default disposition for the signals in
/// `ignored` (an ignored signal stays ignored across execve; handlers are
/// reset by execve itself), and nothing blocked.
pub fn reset_ignored_signals(ignored: u64) {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || ignored & (1 << (sig - 1)) == 0 {
            continue;
        }
        set_default_disposition(sig);
    }
    set_sigmask_empty();
}

/// rt_sigaction(sig, SIG_DFL) as a raw syscall: glibc's wrappers refuse
/// the signals it keeps for itself (32 and 33), which a parent may still
/// have left ignored.
#[cfg(target_arch = "x86_64")]
fn set_default_disposition(sig: libc::c_int) {
    // The kernel's struct sigaction on x86_64: handler, flags, restorer, mask.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let act = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: act is a valid kernel sigaction; the old action is not asked for.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &act as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        )
    };
}

#[cfg(not(target_arch = "x86_64"))]
fn set_default_disposition(sig: libc::c_int) {
    // SAFETY: SIG_DFL is always a valid disposition.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// Every signal back to its default disposition, nothing blocked.
pub fn reset_signals() {
    reset_ignored_signals(u64::MAX);
}

pub fn set_sigmask_empty() {
    // SAFETY: set is initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Have `cmd`'s child start with no signal blocked and, given `mnt_ns`,
/// in that mount namespace, before it execs.
pub fn pre_exec_unblock_setns(cmd: &mut std::process::Command, mnt_ns: Option<RawFd>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls
    // sigprocmask and setns, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            set_sigmask_empty();
            if let Some(fd) = mnt_ns {
                setns(fd, libc::CLONE_NEWNS).map_err(|e| e.io())?;
            }
            Ok(())
        });
    }
}

/// Block `sigs` and return a signalfd (non-blocking, close-on-exec) for them.
pub fn signalfd_for(sigs: &[libc::c_int]) -> SysResult<OwnedFd> {
    // SAFETY: the set is initialised by sigemptyset before use; sigprocmask
    // and signalfd get valid pointers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        check(libc::sigprocmask(
            libc::SIG_BLOCK,
            &set,
            std::ptr::null_mut(),
        ))?;
        let fd = check(libc::signalfd(
            -1,
            &set,
            libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
        ))?;
        // The fd signalfd just returned is this caller's alone.
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Read one pending signal number from a signalfd, if any.
pub fn read_signalfd(fd: RawFd) -> Option<libc::c_int> {
    // SAFETY: signalfd_siginfo is plain data; read fills it whole or fails.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: info is a valid buffer of `size` bytes.
    let n = unsafe { libc::read(fd, (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
    (n == size as isize).then_some(info.ssi_signo as libc::c_int)
}

/// An inotify fd (non-blocking, close-on-exec) watching `path` for writes.
pub fn inotify_modify_watch(path: &CStr) -> SysResult<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscall.
    let fd = check(unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) })?;
    // SAFETY: fd was just created and nothing else owns it.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: path is a valid C string.
    check(unsafe { libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_MODIFY) })?;
    Ok(owned)
}

/// Read and discard whatever is queued on a non-blocking fd.
pub fn drain(fd: RawFd) {
    let mut buf = [0u8; 4096];
    while matches!(read(fd, &mut buf), Ok(n) if n > 0) {}
}

/// mkfifo(path, mode).
pub fn mkfifo(path: &CStr, mode: libc::mode_t) -> SysResult<()> {
    // SAFETY: path is a valid C string.
    check(unsafe { libc::mkfifo(path.as_ptr(), mode) }).map(drop)
}

/// Whether fd is open.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD takes no argument.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

pub fn nanosleep_ms(ms: u64) {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as _,
        tv_nsec: ((ms % 1000) * 1_000_000) as _,
    };
    // SAFETY: ts is valid; remaining time is not needed.
    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name).
pub fn join_session_keyring(name: &CStr) -> SysResult<()> {
    // SAFETY: name is a valid C string.
    check_long(unsafe { libc::syscall(libc::SYS_keyctl, 1 as libc::c_long, name.as_ptr()) })
        .map(drop)
}

pub fn pidfd_open(pid: libc::pid_t) -> SysResult<RawFd> {
    // SAFETY: plain syscall.
    check_long(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) }).map(|fd| fd as RawFd)
}

pub fn pidfd_send_signal(pidfd: RawFd, sig: libc::c_int) -> SysResult<()> {
    // SAFETY: NULL siginfo means "as if sent by kill(2)".
    check_long(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// poll() one fd for `events`; Ok(true) if ready before `timeout_ms`.
pub fn poll_one(fd: RawFd, events: libc::c_short, timeout_ms: i32) -> SysResult<bool> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = check(unsafe { libc::poll(&mut p, 1, timeout_ms) })?;
    Ok(n > 0)
}

pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> SysResult<usize> {
    // SAFETY: pointer and length describe a valid pollfd slice.
    check(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) })
        .map(|n| n as usize)
}

/// A SOCK_SEQPACKET socketpair, both ends close-on-exec.
pub fn seqpacket_pair() -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid two-element out-array.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: socketpair just returned both fds; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn pipe() -> SysResult<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid two-element out-array.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((fds[0], fds[1]))
}

/// Hand `fd` to a forked child that keeps it open until the returned
/// write end of a pipe is closed, then exits: the last close of a detached
/// mount (an RCU grace period, or a sync of the upper filesystem) happens
/// in that child instead of the caller. On success the caller's `fd` is
/// closed and it gets (child pid, release fd); on failure `fd` stays the
/// caller's. The caller reaps the child.
pub fn hold_in_child(fd: RawFd) -> Option<(libc::pid_t, RawFd)> {
    let (r, w) = pipe().ok()?;
    match fork() {
        Ok(0) => {
            // Async-signal-safe only: wait for EOF, exit (closing `fd`).
            close(w);
            let mut b = [0u8; 1];
            let _ = read(r, &mut b);
            exit_now(0)
        }
        Ok(pid) => {
            close(r);
            close(fd);
            Some((pid, w))
        }
        Err(_) => {
            close(r);
            close(w);
            None
        }
    }
}

/// Most fds one message carries (the container's v1 cgroups: about a dozen).
pub const MAX_FDS: usize = 16;

/// Control-message room for MAX_FDS fds, aligned for cmsghdr.
#[repr(C)]
union Cmsg {
    buf: [u8; 128],
    _align: libc::cmsghdr,
}

/// sendmsg `data` with `fd` attached (SCM_RIGHTS), if any.
pub fn send_with_fd(sock: RawFd, data: &[u8], fd: Option<RawFd>) -> SysResult<()> {
    match fd {
        Some(fd) => send_with_fds(sock, data, &[fd]),
        None => send_with_fds(sock, data, &[]),
    }
}

/// sendmsg `data` with `fds` attached (SCM_RIGHTS; at most MAX_FDS).
pub fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> SysResult<()> {
    if fds.len() > MAX_FDS {
        return Err(Errno(libc::E2BIG));
    }
    let mut cbuf = Cmsg { buf: [0; 128] };
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; zeroed is a valid initial value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let bytes = std::mem::size_of_val(fds) as u32;
        // SAFETY: CMSG_SPACE/LEN are pure computations; the buffer (128
        // bytes) holds the control message for MAX_FDS ints, and
        // CMSG_FIRSTHDR points into it; the fds are copied unaligned.
        unsafe {
            msg.msg_control = std::ptr::addr_of_mut!(cbuf.buf).cast();
            msg.msg_controllen = libc::CMSG_SPACE(bytes) as usize;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes) as usize;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(c),
                bytes as usize,
            );
        }
    }
    loop {
        // SAFETY: msg points at live iov and control buffers.
        let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

/// recvmsg into `data`; returns the length and the first fd received.
pub fn recv_with_fd(sock: RawFd, data: &mut [u8]) -> SysResult<(usize, Option<OwnedFd>)> {
    let mut fds = [-1; MAX_FDS];
    let (n, count) = recv_with_fds(sock, data, &mut fds)?;
    for &extra in fds.iter().take(count).skip(1) {
        close(extra);
    }
    // SAFETY: the fd just arrived via SCM_RIGHTS: this process's alone.
    Ok((
        n,
        (count > 0).then(|| unsafe { OwnedFd::from_raw_fd(fds[0]) }),
    ))
}

/// recvmsg into `data`, the fds received into `fds` (close-on-exec);
/// returns the length and the number of fds. Allocation-free.
pub fn recv_with_fds(
    sock: RawFd,
    data: &mut [u8],
    fds: &mut [RawFd; MAX_FDS],
) -> SysResult<(usize, usize)> {
    let mut cbuf = Cmsg { buf: [0; 128] };
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; zeroed is a valid initial value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = std::ptr::addr_of_mut!(cbuf).cast();
    msg.msg_controllen = 128;
    let n = loop {
        // SAFETY: msg points at live iov and control buffers.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = Errno::last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    };
    let mut count = 0;
    // SAFETY: the kernel filled msg_control; CMSG_FIRSTHDR/NXTHDR walk it
    // within msg_controllen, and each SCM_RIGHTS payload holds
    // (cmsg_len - CMSG_LEN(0)) / 4 ints, read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let len = (*c).cmsg_len - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.add(i));
                    if count < MAX_FDS {
                        fds[count] = fd;
                        count += 1;
                    } else {
                        close(fd);
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n, count))
}

/// Write the decimal form of `n` after `prefix` into `buf`, NUL-terminated,
/// without allocating. Returns the C string.
pub fn fmt_path_num<'a>(buf: &'a mut [u8; 64], prefix: &[u8], n: u64) -> &'a CStr {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let d = &digits[i..];
    let len = (prefix.len() + d.len()).min(buf.len() - 1);
    let plen = prefix.len().min(len);
    buf[..plen].copy_from_slice(&prefix[..plen]);
    buf[plen..len].copy_from_slice(&d[..len - plen]);
    buf[len] = 0;
    CStr::from_bytes_until_nul(&buf[..=len]).unwrap_or(c"")
}

/// The `/proc/self/fd/N` path of an fd, for mounting onto an fd-resolved target.
pub fn proc_fd_path(buf: &mut [u8; 64], fd: RawFd) -> &CStr {
    fmt_path_num(buf, b"/proc/self/fd/", fd as u64)
}

// ---------------------------------------------------------------------------
// Security: seccomp, I/O priority, scheduler, personality
// ---------------------------------------------------------------------------

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog): load a BPF filter. With
/// SECCOMP_FILTER_FLAG_NEW_LISTENER the result is the notify fd, else 0.
pub fn seccomp_set_filter(prog: &[libc::sock_filter], flags: libc::c_ulong) -> SysResult<RawFd> {
    if prog.is_empty() || prog.len() > u16::MAX as usize {
        return Err(Errno(libc::EINVAL));
    }
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at `prog`, which outlives the call; the kernel
    // copies the program and does not write through the pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    check_long(r).map(|fd| fd as RawFd)
}

/// An anonymous in-memory file (parent side: exporting the seccomp BPF).
pub fn memfd(name: &CStr) -> SysResult<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: name is a valid NUL-terminated string; flags are plain bits.
    let fd = check(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: fd was just created and is owned by nothing else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, prio) for the calling process.
pub fn ioprio_set_self(prio: libc::c_int) -> SysResult<()> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: plain syscall with integer arguments.
    check_long(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) })
        .map(drop)
}

/// sched_setattr(0, attr, 0) for the calling thread.
pub fn sched_setattr_self(attr: &libc::sched_attr) -> SysResult<()> {
    // SAFETY: attr is a valid sched_attr whose `size` field says its size;
    // the kernel only reads it.
    check_long(unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0,
            attr as *const libc::sched_attr,
            0,
        )
    })
    .map(drop)
}

/// personality(persona).
pub fn personality(persona: libc::c_ulong) -> SysResult<()> {
    // SAFETY: plain syscall with an integer argument.
    check(unsafe { libc::personality(persona) }).map(drop)
}

// ---- CVE-2019-5736: a sealed image of hull for the re-exec (crate::exeseal) ----

/// fsopen(2): a new, unconfigured filesystem context (close-on-exec).
pub fn fsopen(fs: &CStr) -> SysResult<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    const FSOPEN_CLOEXEC: libc::c_long = 1;
    // SAFETY: fs is a valid NUL-terminated string; flags are plain bits.
    let fd = check_long(unsafe { libc::syscall(libc::SYS_fsopen, fs.as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: fd was just returned by the kernel and is owned by nothing else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as RawFd) })
}

/// fsconfig(FSCONFIG_SET_STRING, key, value) on a filesystem context.
pub fn fsconfig_string(ctx: RawFd, key: &CStr, value: &CStr) -> SysResult<()> {
    const FSCONFIG_SET_STRING: libc::c_long = 1;
    // SAFETY: key and value are valid NUL-terminated strings; aux is unused.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx,
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    check_long(r).map(drop)
}

/// fsconfig(FSCONFIG_CMD_CREATE): make the superblock.
pub fn fsconfig_create(ctx: RawFd) -> SysResult<()> {
    const FSCONFIG_CMD_CREATE: libc::c_long = 6;
    // SAFETY: a command without key, value or aux (all null/zero).
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx,
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    check_long(r).map(drop)
}

/// fsmount(2): a detached mount of the context's superblock, read-only,
/// nosuid, nodev (close-on-exec); returns its root directory fd.
pub fn fsmount_readonly(ctx: RawFd) -> SysResult<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    const FSMOUNT_CLOEXEC: libc::c_long = 1;
    const ATTRS: libc::c_long = 0x1 | 0x2 | 0x4; // MOUNT_ATTR_RDONLY | NOSUID | NODEV
                                                 // SAFETY: plain integer arguments.
    let fd = check_long(unsafe { libc::syscall(libc::SYS_fsmount, ctx, FSMOUNT_CLOEXEC, ATTRS) })?;
    // SAFETY: fd was just returned by the kernel and is owned by nothing else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as RawFd) })
}

/// An executable, sealable memfd (MFD_EXEC where the kernel knows it, so
/// that `vm.memfd_noexec` and its warning do not apply), close-on-exec.
pub fn memfd_exec(name: &CStr) -> SysResult<std::fs::File> {
    use std::os::fd::FromRawFd;
    const MFD_EXEC: libc::c_uint = 0x10;
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: name is a valid NUL-terminated string; flags are plain bits.
    let fd = match check(unsafe { libc::memfd_create(name.as_ptr(), base | MFD_EXEC) }) {
        // Kernels before 6.3 do not know MFD_EXEC (every memfd is executable).
        // SAFETY: as above.
        Err(Errno(libc::EINVAL)) => check(unsafe { libc::memfd_create(name.as_ptr(), base) })?,
        r => r?,
    };
    // SAFETY: fd was just created and is owned by nothing else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// sendfile(2) until `len` bytes went from `src` (from its offset 0) to `dst`.
pub fn sendfile_all(dst: RawFd, src: RawFd, len: u64) -> SysResult<()> {
    let mut off: libc::off_t = 0;
    while (off as u64) < len {
        let want = (len - off as u64).min(1 << 30) as usize;
        // SAFETY: off is a valid in/out pointer; both fds are open.
        let n = unsafe { libc::sendfile(dst, src, &mut off, want) };
        if n < 0 {
            let e = Errno::last();
            if e.0 == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(Errno(libc::EIO));
        }
    }
    Ok(())
}

/// openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), owned.
pub fn openat_path(dir: RawFd, name: &CStr) -> SysResult<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let fd = openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
    // SAFETY: fd was just opened and is owned by nothing else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// fcntl(F_ADD_SEALS).
pub fn add_seals(fd: RawFd, seals: libc::c_int) -> SysResult<()> {
    // SAFETY: F_ADD_SEALS takes an int argument.
    check(unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) }).map(drop)
}

/// fcntl(F_GET_SEALS): the seals of a memfd (EINVAL on other files).
pub fn get_seals(fd: RawFd) -> SysResult<libc::c_int> {
    // SAFETY: F_GET_SEALS takes no argument.
    check(unsafe { libc::fcntl(fd, libc::F_GET_SEALS) })
}

/// The mount flags (fstatvfs f_flag, ST_RDONLY etc.) of an open fd.
pub fn fd_mount_flags(fd: RawFd) -> SysResult<libc::c_ulong> {
    // SAFETY: statvfs is plain data; zeroed is a valid initial value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    check(unsafe { libc::fstatvfs(fd, &mut st) })?;
    Ok(st.f_flag)
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH): run the file behind `fd`.
/// Returns only on failure.
pub fn execveat_fd(fd: RawFd, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> Errno {
    // SAFETY: argv and envp are NULL-terminated arrays of valid C strings,
    // kept alive by the caller; the path is the empty string.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::last()
}

/// The effective uid.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The effective gid.
pub fn getegid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_text_reads_whole_files_of_any_size() {
        let p = std::env::temp_dir().join(format!("hull-read-text-{}", std::process::id()));
        let big: String = (0..40_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        std::fs::write(&p, &big).unwrap();
        assert_eq!(read_text(&p).unwrap(), big);
        std::fs::remove_file(&p).unwrap();
        let want = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let got = read_text("/proc/self/mountinfo").unwrap();
        assert_eq!(got.lines().count(), want.lines().count());
        assert!(read_text("/nonexistent/hull").is_err());
    }

    #[test]
    fn formats_proc_fd_paths_without_allocating() {
        let mut buf = [0u8; 64];
        assert_eq!(proc_fd_path(&mut buf, 17).to_bytes(), b"/proc/self/fd/17");
        assert_eq!(proc_fd_path(&mut buf, 0).to_bytes(), b"/proc/self/fd/0");
        let mut buf = [0u8; 64];
        assert_eq!(
            fmt_path_num(&mut buf, b"x", u64::MAX).to_bytes(),
            b"x18446744073709551615"
        );
    }

    /// A `..` resolved under RESOLVE_IN_ROOT while renames happen anywhere
    /// on the host makes the kernel answer EAGAIN; `openat2` retries, so
    /// every open succeeds (a container's cwd through a relative symlink
    /// once failed "Resource temporarily unavailable" in parallel tests).
    #[test]
    fn openat2_retries_what_concurrent_renames_make_it_fail() {
        use std::ffi::CString;
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = std::env::temp_dir().join(format!("hull-openat2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("b"), "x").unwrap();
        std::fs::create_dir_all(dir.join("r/one")).unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let renamer = {
            let (stop, r) = (stop.clone(), dir.join("r"));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::rename(r.join("one"), r.join("two"));
                    let _ = std::fs::rename(r.join("two"), r.join("one"));
                }
            })
        };
        let root = open_owned(
            &CString::new(dir.as_os_str().as_bytes()).unwrap(),
            libc::O_PATH,
            0,
        )
        .unwrap();
        let path = CString::new("a/../a/../b").unwrap();
        let mut failed = Vec::new();
        for _ in 0..20_000 {
            let r = openat2_owned(
                root.as_raw_fd(),
                &path,
                libc::O_RDONLY,
                0,
                libc::RESOLVE_IN_ROOT,
            );
            if let Err(e) = r {
                failed.push(e);
            }
        }
        stop.store(true, Ordering::Relaxed);
        renamer.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            failed.is_empty(),
            "{} of 20000 opens failed: {:?}",
            failed.len(),
            failed[0]
        );
    }
}
