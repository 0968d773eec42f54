//! The shim's own `unsafe`: placing fds in a spawned child (the rest of
//! its system calls go through hull's `sys`).

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
