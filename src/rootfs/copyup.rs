//! Child side: runc's `tmpcopyup` extension. A tmpfs mounted with it
//! starts with a copy of what the image has at its destination (modes,
//! owners, symlinks, device nodes, fifos), so a tmpfs over /etc or /run
//! does not hide the image's files. Allocation-free (fixed buffers, a
//! bounded depth), for the init.

use std::ffi::CStr;
use std::os::fd::RawFd;

use crate::sys::{self, Errno, SysResult};

/// Directory levels copied at most (each holds a 4 KiB entry buffer on
/// the stack).
const MAX_DEPTH: usize = 32;

/// Copy the contents of directory `src` into directory `dst` (both open
/// with O_RDONLY|O_DIRECTORY).
pub fn copy_dir(src: RawFd, dst: RawFd) -> SysResult<()> {
    copy_level(src, dst, 0)
}

fn copy_level(src: RawFd, dst: RawFd, depth: usize) -> SysResult<()> {
    if depth >= MAX_DEPTH {
        return Err(Errno(libc::ELOOP));
    }
    let mut buf = [0u8; 4096];
    loop {
        let n = sys::getdents64(src, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut off = 0;
        while off + 19 < n {
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen == 0 || off + reclen > n {
                return Err(Errno(libc::EIO));
            }
            let name = CStr::from_bytes_until_nul(&buf[off + 19..off + reclen])
                .map_err(|_| Errno(libc::EIO))?;
            off += reclen;
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            copy_entry(src, dst, name, depth)?;
        }
    }
}

/// Copy one entry, then give it the source's owner and mode.
fn copy_entry(src: RawFd, dst: RawFd, name: &CStr, depth: usize) -> SysResult<()> {
    let st = sys::fstatat_nofollow(src, name)?;
    let kind = st.st_mode & libc::S_IFMT;
    let perm = st.st_mode & 0o7777;
    match kind {
        libc::S_IFDIR => {
            sys::mkdirat(dst, name, 0o700)?;
            let from = sys::openat(
                src,
                name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )?;
            let to = match sys::openat(
                dst,
                name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            ) {
                Ok(fd) => fd,
                Err(e) => {
                    sys::close(from);
                    return Err(e);
                }
            };
            let r = copy_level(from, to, depth + 1).and_then(|()| own(to, &st, perm));
            sys::close(from);
            sys::close(to);
            r
        }
        libc::S_IFREG => {
            let from = sys::openat(src, name, libc::O_RDONLY | libc::O_NOFOLLOW, 0)?;
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
            let to = match sys::openat(dst, name, flags, 0o600) {
                Ok(fd) => fd,
                Err(e) => {
                    sys::close(from);
                    return Err(e);
                }
            };
            let r =
                sys::sendfile_all(to, from, st.st_size as u64).and_then(|()| own(to, &st, perm));
            sys::close(from);
            sys::close(to);
            r
        }
        libc::S_IFLNK => {
            let mut target = [0u8; 4096];
            let len = sys::readlinkat(src, name, &mut target[..4095])?;
            target[len] = 0;
            let target =
                CStr::from_bytes_until_nul(&target[..=len]).map_err(|_| Errno(libc::EIO))?;
            sys::symlinkat(target, dst, name)?;
            sys::fchownat_nofollow(dst, name, st.st_uid, st.st_gid)
        }
        // Device nodes, fifos, sockets: made anew (mode applied below).
        _ => {
            sys::mknodat(dst, name, kind | 0o600, st.st_rdev)?;
            sys::fchownat_nofollow(dst, name, st.st_uid, st.st_gid)?;
            chmod_at(dst, name, perm)
        }
    }
}

/// Owner first: chown clears the setuid/setgid bits the mode then sets.
fn own(fd: RawFd, st: &libc::stat, perm: libc::mode_t) -> SysResult<()> {
    sys::fchown(fd, st.st_uid, st.st_gid)?;
    sys::fchmod(fd, perm)
}

/// chmod of a node that is not opened (a device or fifo must not be).
fn chmod_at(dir: RawFd, name: &CStr, perm: libc::mode_t) -> SysResult<()> {
    let fd = sys::openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
    let mut buf = [0u8; 64];
    let r = sys::chmod_path(sys::proc_fd_path(&mut buf, fd), perm);
    sys::close(fd);
    r
}
