//! A process's stdio as containerd names it: FIFO paths (ctr, CRI),
//! `file://` and `binary://` log URIs; with a terminal, the pty master
//! copied to and from the FIFOs by the shim's loop.
//!
//! Without a terminal the process gets the output FIFOs themselves (no
//! copy): the write ends are opened with a transient read end of our own
//! so the open cannot block, and closed here once handed over, so the
//! reader sees EOF when the process's copies close. Stdin goes through a
//! pipe the loop fills from the FIFO: the process must see EOF when the
//! client closes its end (or on CloseIO), which a FIFO read end given to
//! the process directly would report too early (before the client opened
//! it) or, held open by the shim, never.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use hull::sys;

#[derive(Default)]
pub struct Io {
    /// The process's 0, 1, 2 until it has them.
    child: Vec<OwnedFd>,
    /// Stdin: the FIFO (read end, non-blocking), the pipe to the process
    /// (write end, non-blocking), what did not fit in the pipe yet, and
    /// whether the FIFO reached EOF (the pipe closes once drained).
    stdin_src: Option<File>,
    stdin_dst: Option<File>,
    stdin_buf: Vec<u8>,
    stdin_eof: bool,
    /// Terminal: the pty master, and the FIFOs it is copied from and to.
    pty: Option<OwnedFd>,
    tty_in: Option<File>,
    tty_out: Option<File>,
}

fn open(path: &str, read: bool, write: bool, flags: i32) -> Result<File, String> {
    OpenOptions::new()
        .read(read)
        .write(write)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| format!("{path}: {e}"))
}

/// An output: a FIFO, a `file://` log, or nothing (/dev/null).
fn output(uri: &str) -> Result<File, String> {
    if uri.is_empty() {
        return open("/dev/null", false, true, 0);
    }
    if let Some(path) = uri.strip_prefix("file://") {
        return OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| format!("{path}: {e}"));
    }
    let path = uri.strip_prefix("fifo://").unwrap_or(uri);
    // Our own read end first, so that opening the write end never blocks
    // (containerd's reader may not be open yet); dropped on return.
    let _reader = open(path, true, true, libc::O_NONBLOCK)?;
    open(path, false, true, 0)
}

/// Whose output a logging binary gets (its environment).
pub struct Owner<'a> {
    pub id: &'a str,
    pub namespace: &'a str,
}

/// `binary:///path?key=value`: containerd's logging-binary protocol. The
/// binary gets the read ends of the stdout and stderr pipes as fds 3 and
/// 4 and the write end of a third pipe as fd 5, which it closes once
/// ready; CONTAINER_ID and CONTAINER_NAMESPACE in its environment; the
/// query as arguments (`key value`). Returns the pipes' write ends.
fn log_binary(uri: &str, owner: &Owner) -> Result<(File, File), String> {
    let rest = uri.trim_start_matches("binary://");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut args = Vec::new();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        args.push(k.to_string());
        if !v.is_empty() {
            args.push(v.to_string());
        }
    }
    let pipe = |what: &str| std::io::pipe().map_err(|e| format!("{uri}: {what} pipe: {e}"));
    let (out_r, out_w) = pipe("stdout")?;
    let (err_r, err_w) = pipe("stderr")?;
    let (ready_r, ready_w) = pipe("ready")?;
    let mut cmd = std::process::Command::new(path);
    cmd.args(&args)
        .env("CONTAINER_ID", owner.id)
        .env("CONTAINER_NAMESPACE", owner.namespace)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let fds = [out_r.as_raw_fd(), err_r.as_raw_fd(), ready_w.as_raw_fd()];
    let spawned = crate::sys::spawn_with_fds(&mut cmd, fds);
    drop((out_r, err_r, ready_w));
    spawned.map_err(|e| format!("{uri}: starting {path}: {e}"))?;
    // Ready when fd 5 closes (EOF); the shim reaps the logger later (an
    // unknown child to its loop).
    let mut ready = File::from(OwnedFd::from(ready_r));
    if !sys::poll_one(ready.as_raw_fd(), libc::POLLIN, 10_000).unwrap_or(false) {
        return Err(format!("{uri}: {path} did not get ready in 10 s"));
    }
    let _ = ready.read(&mut [0u8; 1]);
    Ok((
        File::from(OwnedFd::from(out_w)),
        File::from(OwnedFd::from(err_w)),
    ))
}

impl Io {
    pub fn open(
        stdin: &str,
        stdout: &str,
        stderr: &str,
        terminal: bool,
        owner: &Owner,
    ) -> Result<Io, String> {
        let mut io = Io::default();
        let logger = if stdout.starts_with("binary://") {
            Some(log_binary(stdout, owner)?)
        } else {
            None
        };
        let input = if stdin.is_empty() {
            open("/dev/null", true, false, 0)?
        } else if terminal {
            // Copied to the pty; a read-write open does not block and never
            // reports EOF (a terminal gets no EOF from the client anyway).
            io.tty_in = Some(open(stdin, true, true, 0)?);
            open("/dev/null", true, false, 0)?
        } else {
            io.stdin_src = Some(open(stdin, true, false, libc::O_NONBLOCK)?);
            let (r, w) = std::io::pipe().map_err(|e| format!("{stdin}: pipe: {e}"))?;
            // The same pipe opened again, non-blocking for the shim alone.
            let w_path = format!("/proc/self/fd/{}", w.as_raw_fd());
            io.stdin_dst = Some(open(&w_path, false, true, libc::O_NONBLOCK)?);
            drop(w);
            File::from(OwnedFd::from(r))
        };
        if terminal {
            // The shim is the FIFO's only writer: it keeps a read end too,
            // so output made before the client opens its end is kept
            // (non-blocking: a client that stops reading loses output
            // rather than stalling the shim).
            io.tty_out = Some(
                match (logger, stdout.strip_prefix("fifo://").unwrap_or(stdout)) {
                    (Some((out, _)), _) => out,
                    (None, "") => open("/dev/null", false, true, 0)?,
                    (None, p) if p.starts_with("file://") => output(p)?,
                    (None, p) => open(p, true, true, libc::O_NONBLOCK)?,
                },
            );
            return Ok(io);
        }
        if let Some((out, err)) = logger {
            io.child = vec![input.into(), out.into(), err.into()];
            return Ok(io);
        }
        let out = output(stdout)?;
        let err = if stderr.is_empty() || stderr == stdout {
            out.try_clone().map_err(|e| format!("{stdout}: {e}"))?
        } else {
            output(stderr)?
        };
        io.child = vec![input.into(), out.into(), err.into()];
        Ok(io)
    }

    /// The fds for the process's 0, 1, 2 (None with a terminal: the init
    /// puts the pty there).
    pub fn child_fds(&self) -> Option<[RawFd; 3]> {
        match self.child.as_slice() {
            [a, b, c] => Some([a.as_raw_fd(), b.as_raw_fd(), c.as_raw_fd()]),
            _ => None,
        }
    }

    /// The process has its copies: close ours.
    pub fn handed_over(&mut self) {
        self.child.clear();
    }

    pub fn attach_pty(&mut self, master: OwnedFd) {
        self.pty = Some(master);
    }

    pub fn pty(&self) -> Option<RawFd> {
        self.pty.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// CloseIO: no more input.
    pub fn close_stdin(&mut self) {
        self.stdin_src = None;
        self.stdin_dst = None;
        self.stdin_buf.clear();
        self.tty_in = None;
    }

    /// fds the loop polls for this process, with the events wanted.
    pub fn poll_fds(&self) -> Vec<(RawFd, libc::c_short)> {
        let mut v = Vec::new();
        if let Some(p) = &self.pty {
            if self.tty_out.is_some() {
                v.push((p.as_raw_fd(), libc::POLLIN));
            }
            if let Some(i) = &self.tty_in {
                v.push((i.as_raw_fd(), libc::POLLIN));
            }
        }
        match (&self.stdin_src, &self.stdin_dst) {
            (_, Some(d)) if !self.stdin_buf.is_empty() => v.push((d.as_raw_fd(), libc::POLLOUT)),
            (Some(s), Some(_)) => v.push((s.as_raw_fd(), libc::POLLIN)),
            _ => {}
        }
        v
    }

    /// `fd` is ready (or hung up): copy one chunk.
    pub fn pump(&mut self, fd: RawFd) {
        let mut buf = [0u8; 8192];
        if self.stdin_src.as_ref().map(AsRawFd::as_raw_fd) == Some(fd) {
            self.pump_stdin();
            return;
        }
        if self.stdin_dst.as_ref().map(AsRawFd::as_raw_fd) == Some(fd) {
            self.flush_stdin();
            return;
        }
        let Some(pty) = self.pty.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        if fd == pty {
            match sys::read(pty, &mut buf) {
                Ok(n) if n > 0 => {
                    if let Some(out) = self.tty_out.as_mut() {
                        let _ = out.write_all(&buf[..n]);
                    }
                }
                // EIO: every slave closed (the process exited).
                _ => self.tty_out = None,
            }
        } else if let Some(input) = self.tty_in.as_mut() {
            match input.read(&mut buf) {
                Ok(n) if n > 0 => {
                    let _ = sys::write_all(pty, &buf[..n]);
                }
                _ => self.tty_in = None,
            }
        }
    }

    /// The stdin FIFO is readable or hung up (polled for only while the
    /// pipe has room: nothing is buffered).
    fn pump_stdin(&mut self) {
        let Some(src) = self.stdin_src.as_mut() else {
            return;
        };
        let mut buf = [0u8; 16384];
        match src.read(&mut buf) {
            Ok(0) => self.stdin_eof = true,
            Ok(n) => self.stdin_buf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return,
            Err(_) => self.stdin_eof = true,
        }
        if self.stdin_eof {
            self.stdin_src = None;
        }
        self.flush_stdin();
    }

    /// Write what is buffered into the process's pipe; close it once the
    /// FIFO ended and everything went through.
    fn flush_stdin(&mut self) {
        if let Some(dst) = self.stdin_dst.as_mut() {
            while !self.stdin_buf.is_empty() {
                match dst.write(&self.stdin_buf) {
                    Ok(n) if n > 0 => {
                        self.stdin_buf.drain(..n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // The process closed its stdin: nothing more to do.
                    _ => {
                        self.close_stdin();
                        return;
                    }
                }
            }
        }
        if self.stdin_eof {
            self.stdin_dst = None;
        }
    }

    /// The process exited: copy what the pty still holds, then close
    /// everything (the reader sees EOF).
    pub fn finish(&mut self) {
        while let (Some(p), true) = (self.pty(), self.tty_out.is_some()) {
            if !sys::poll_one(p, libc::POLLIN, 0).unwrap_or(false) {
                break;
            }
            self.pump(p);
        }
        *self = Io::default();
    }
}
