//! The shim's own `unsafe`: placing fds in a spawned child, and taking
//! over the listening socket `start` passed (the rest of its system calls
//! go through hull's `sys`).

use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Spawn `cmd` with `fds[i]` on fd 3+i in the child (other fds keep
/// their close-on-exec flags).
pub fn spawn_with_fds(cmd: &mut Command, fds: [RawFd; 3]) -> std::io::Result<Child> {
    let place = move || -> std::io::Result<()> {
        // Nothing blocked in the child: the shim blocks SIGCHLD and SIGTERM
        // (it reads them from a signalfd), which an exec'd program would
        // inherit.
        hull::sys::set_sigmask_empty();
        // First above every target, so that a source that is itself 3, 4
        // or 5 is not overwritten before it is moved.
        let mut high = [0; 3];
        for (h, &fd) in high.iter_mut().zip(fds.iter()) {
            // SAFETY: fcntl(F_DUPFD_CLOEXEC) on an fd number (the copy closes
            // on exec); async-signal-safe.
            *h = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
            if *h < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        for (i, &h) in high.iter().enumerate() {
            // SAFETY: dup2 between fd numbers (clears close-on-exec on the
            // target); async-signal-safe.
            if unsafe { libc::dup2(h, 3 + i as RawFd) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls sigprocmask, fcntl and dup2 (async-signal-safe), allocating
    // nothing.
    unsafe { cmd.pre_exec(place) };
    cmd.spawn()
}

/// Give freed heap memory back to the kernel (the shim idles for the
/// container's whole life after a burst of work at create).
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks and releases glibc's own free lists.
    unsafe { libc::malloc_trim(0) };
}

/// The listening socket inherited as fd `fd` (checked open by the caller).
pub fn adopt_listener(fd: RawFd) -> std::os::unix::net::UnixListener {
    use std::os::fd::FromRawFd;
    // SAFETY: fd is open and this process's only handle on the socket
    // (inherited from `start`; nothing else in the shim uses the number).
    unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) }
}

/// Unmap the pages of the shim's own code (the executable mappings of
/// its binary) from this process: after a burst of work (a create maps
/// most of the 2.7 MB of text, the kernel mapping cached pages around
/// each fault) the idle loop needs a small part of it, which faults back
/// in from the page cache. Only `r-xp` mappings of the binary: never
/// written, so nothing is lost (a relocated read-only segment would be).
pub fn drop_text_pages() {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return;
    };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    let exe = exe.to_string_lossy();
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        if perms != "r-xp" || f.nth(3) != Some(exe.as_ref()) {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        else {
            continue;
        };
        // SAFETY: MADV_DONTNEED on a private, never-written file mapping
        // of our own binary only drops page-table entries; the next access
        // faults the same contents back in from the file.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}
