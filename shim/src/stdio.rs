//! A process's stdio as containerd names it: FIFO paths (ctr, CRI),
//! `file://` and `binary://` log URIs; with a terminal, the pty master
//! copied to and from the FIFOs by the shim's loop.
//!
//! Without a terminal the process gets the FIFOs themselves (no copy):
//! the write ends are opened with a transient read end of our own so the
//! open cannot block, and closed here once handed over, so the reader sees
//! EOF when the process's copies close. The shim keeps a read-write hold
//! on the stdin FIFO until CloseIO, so the process sees EOF only then.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use hull::sys;

#[derive(Default)]
pub struct Io {
    /// The process's 0, 1, 2 until it has them.
    child: Vec<OwnedFd>,
    /// Read-write hold on the stdin FIFO (the process sees EOF once the
    /// client's writer and this are closed).
    stdin_hold: Option<File>,
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
        let mut hold = None;
        let input = if stdin.is_empty() {
            open("/dev/null", true, false, 0)?
        } else {
            let h = open(stdin, true, true, 0)?;
            // A writer (ours) exists, so this does not block.
            let r = open(stdin, true, false, 0)?;
            hold = Some(h);
            r
        };
        if terminal {
            io.tty_in = hold.take();
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
        io.stdin_hold = hold;
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
        self.stdin_hold = None;
        self.tty_in = None;
    }

    /// fds the loop polls for this process (terminal copies).
    pub fn poll_fds(&self) -> Vec<RawFd> {
        let mut v = Vec::new();
        if let (Some(p), Some(_)) = (&self.pty, &self.tty_out) {
            v.push(p.as_raw_fd());
        }
        if let (Some(_), Some(i)) = (&self.pty, &self.tty_in) {
            v.push(i.as_raw_fd());
        }
        v
    }

    /// `fd` is readable (or hung up): copy one chunk.
    pub fn pump(&mut self, fd: RawFd) {
        let mut buf = [0u8; 8192];
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
