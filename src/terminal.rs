//! Terminals: hand the container's pty master to `--console-socket` (the
//! contract containerd and podman use: one message carrying the fd with
//! SCM_RIGHTS), or relay it to hull's own stdio in a foreground `run`.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::error::{Error, Result};
use crate::sys;

/// Connect to the console socket and send the pty master over it.
pub fn send_to_socket(socket: &Path, master: RawFd) -> Result<()> {
    let stream = UnixStream::connect(socket).map_err(|e| Error::Sys {
        what: format!("connecting to console socket {}", socket.display()),
        source: e,
    })?;
    sys::send_with_fd(stream.as_raw_fd(), b"/dev/ptmx", Some(master))
        .map_err(|e| Error::sys(format!("sending the pty master to {}", socket.display()), e))
}

/// Raw mode on hull's own terminal for the duration of a relay.
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    pub fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: termios is plain data, filled by tcgetattr before use.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: t is a valid out-pointer.
        if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        // SAFETY: t is a valid termios.
        unsafe {
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(fd, libc::TCSANOW, &t);
        }
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring the termios read in `enter`.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// Copy hull's window size to the pty.
pub fn copy_winsize(from: RawFd, to: RawFd) {
    // SAFETY: winsize is plain data; the ioctls read/write one winsize.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// State of the stdin → master / master → stdout relay.
pub struct Relay {
    pub master: OwnedFd,
    stdin_open: bool,
    master_open: bool,
}

impl Relay {
    pub fn new(master: OwnedFd) -> Relay {
        Relay {
            master,
            stdin_open: true,
            master_open: true,
        }
    }

    /// The pollfds the relay wants (stdin, master); negative fds are ignored by poll.
    pub fn pollfds(&self) -> [libc::pollfd; 2] {
        let pf = |fd: RawFd, on: bool| libc::pollfd {
            fd: if on { fd } else { -1 },
            events: libc::POLLIN,
            revents: 0,
        };
        [
            pf(0, self.stdin_open),
            pf(self.master.as_raw_fd(), self.master_open),
        ]
    }

    /// Move bytes for whatever poll found ready.
    pub fn pump(&mut self, fds: &[libc::pollfd; 2]) {
        let mut buf = [0u8; 8192];
        if fds[0].revents != 0 {
            match sys::read(0, &mut buf) {
                Ok(0) | Err(_) => self.stdin_open = false,
                Ok(n) => {
                    let _ = sys::write_all(self.master.as_raw_fd(), &buf[..n]);
                }
            }
        }
        if fds[1].revents != 0 {
            self.drain_once(&mut buf);
        }
    }

    fn drain_once(&mut self, buf: &mut [u8]) -> bool {
        match sys::read(self.master.as_raw_fd(), buf) {
            Ok(0) | Err(_) => {
                self.master_open = false;
                false
            }
            Ok(n) => {
                let _ = sys::write_all(1, &buf[..n]);
                true
            }
        }
    }

    /// After the container exited: copy whatever output is left.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 8192];
        while self.master_open
            && sys::poll_one(self.master.as_raw_fd(), libc::POLLIN, 50).unwrap_or(false)
        {
            if !self.drain_once(&mut buf) {
                break;
            }
        }
    }
}
