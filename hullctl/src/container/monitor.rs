//! The per-container monitor of detached containers (like conmon): forked
//! by `run -d`/`start`, it outlives the command, holds the container as its
//! child (subreaper), copies its output (two pipes, or the pty master with
//! `-t`) into the json-lines log, and records its exit code.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use super::record::{ContainerRecord, Paths};
use crate::error::{Error, IoContext, Result};
use crate::store::Store;
use crate::sys;

/// Fork the monitor (double fork: it is re-parented to init) and wait
/// until it reports the container started, or why it did not.
pub fn spawn(
    store: &Store,
    rec: &ContainerRecord,
    opts: hull::CreateOptions,
    tty: bool,
) -> Result<()> {
    let paths = Paths::new(store, &rec.name);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths.log())
        .at(paths.log())?;
    let (r, w) = sys::pipe().at("pipe")?;
    let pid = sys::fork_single_threaded().at("fork")?;
    if pid == 0 {
        drop(r);
        let code = match sys::fork_single_threaded() {
            Ok(0) => monitor(store, rec, opts, w, log, tty),
            Ok(_) => 0,
            Err(e) => {
                report(&w, &format!("forking the monitor: {e}"));
                1
            }
        };
        sys::exit_now(code);
    }
    drop(w);
    let _ = sys::waitpid(pid);
    let mut msg = String::new();
    let _ = std::fs::File::from(r).read_to_string(&mut msg);
    match msg.strip_prefix("ok") {
        Some(_) => Ok(()),
        None if msg.is_empty() => Err(Error::Image(format!(
            "container {}: its monitor exited without a word",
            rec.name
        ))),
        None => Err(Error::Image(format!("container {}: {msg}", rec.name))),
    }
}

fn report(w: &OwnedFd, msg: &str) {
    let _ = hull::sys::write_all(w.as_raw_fd(), msg.as_bytes());
}

/// Where the container's output goes: two pipes (stdout, stderr) or,
/// with a terminal, the pty master the monitor keeps.
enum Output {
    Pipes { out: OwnedFd, err: OwnedFd },
    Pty(OwnedFd),
}

/// The monitor itself: returns its exit code.
fn monitor(
    store: &Store,
    rec: &ContainerRecord,
    opts: hull::CreateOptions,
    w: OwnedFd,
    log: std::fs::File,
    tty: bool,
) -> i32 {
    let _ = sys::setsid();
    // The monitor's own stdio: nothing (the container's goes to the log
    // through the monitor).
    let null = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        Ok(f) => f,
        Err(e) => {
            report(&w, &format!("opening /dev/null: {e}"));
            return 1;
        }
    };
    for fd in 0..3 {
        let _ = sys::dup2(null.as_raw_fd(), fd);
    }
    let hs = super::hull_store(store);
    let started = (|| -> hull::Result<(hull::Container, OwnedFd, Output)> {
        let sfd = hull::container::run::foreground()?;
        let pipes = if tty {
            None
        } else {
            let pipe = || {
                sys::pipe().map_err(|e| hull::Error::Sys {
                    what: "creating the output pipes".into(),
                    source: e,
                })
            };
            let ((or, ow), (er, ew)) = (pipe()?, pipe()?);
            Some((or, ow, er, ew))
        };
        let opts = hull::CreateOptions {
            autostart: true,
            keep_pty: tty,
            stdio: pipes
                .as_ref()
                .map(|(_, ow, _, ew)| [null.as_raw_fd(), ow.as_raw_fd(), ew.as_raw_fd()]),
            ..opts
        };
        let created = hull::container::create::create(&hs, &opts)?;
        let mut c = created.container;
        let r = if created.started {
            c.mark_started()
        } else {
            c.start()
        };
        if let Err(e) = r {
            let _ = c.delete(true);
            return Err(e);
        }
        // Only the container holds the write ends now: its exit is EOF.
        let output = match (pipes, created.pty) {
            (Some((or, _ow, er, _ew)), _) => Output::Pipes { out: or, err: er },
            (None, Some(m)) => Output::Pty(m),
            (None, None) => {
                return Err(hull::Error::Usage(
                    "the container's pty master did not arrive".into(),
                ))
            }
        };
        Ok((c, sfd, output))
    })();
    drop(null);
    let (c, sfd, output) = match started {
        Ok(x) => x,
        Err(e) => {
            report(&w, &e.to_string());
            return 1;
        }
    };
    report(&w, "ok");
    drop(w);
    let forward = |sig| {
        let _ = c.kill(sig, false);
    };
    let mut logw = super::logfile::Writer::new(log);
    let code = pump(c.state.pid, &forward, &sfd, &output, &mut logw);
    // Names out of DNS before the exit code is there: `stop` returns once
    // it is.
    if !rec.auto_remove {
        let _ = crate::network::attach::stopped(store, &rec.name);
    }
    let _ = crate::store::write_replace(
        &Paths::new(store, &rec.name).exit(),
        code.to_string().as_bytes(),
        false,
    );
    if rec.auto_remove {
        let _ = super::remove(store, rec, true);
    }
    0
}

/// Copy the container's output into the log until its init exits (then
/// drain what is left); forward signals; returns the init's exit code.
fn pump(
    init: libc::pid_t,
    forward: &dyn Fn(libc::c_int),
    sfd: &OwnedFd,
    output: &Output,
    log: &mut super::logfile::Writer,
) -> i32 {
    let fds: Vec<(i32, usize)> = match output {
        Output::Pipes { out, err } => vec![(out.as_raw_fd(), 0), (err.as_raw_fd(), 1)],
        Output::Pty(m) => vec![(m.as_raw_fd(), 0)],
    };
    let mut open = vec![true; fds.len()];
    let mut buf = vec![0u8; 32 * 1024];
    let mut code = None;
    loop {
        while code.is_none() {
            match hull::sys::waitpid(-1, libc::WNOHANG) {
                Ok((0, _)) | Err(_) => break,
                Ok((pid, status)) if pid == init => {
                    code = Some(hull::container::run::exit_code(status))
                }
                Ok(_) => {}
            }
        }
        if let Some(c) = code {
            // The init is gone, so is its pid namespace: the output ends
            // (EOF, or EIO on a pty) once the kernel has torn it down.
            if !open.iter().any(|&o| o) {
                for (_, s) in &fds {
                    log.flush(*s);
                }
                return c;
            }
        }
        let mut pfds: Vec<libc::pollfd> = vec![libc::pollfd {
            fd: sfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        for (i, (fd, _)) in fds.iter().enumerate() {
            pfds.push(libc::pollfd {
                fd: if open[i] { *fd } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // After the exit, give stragglers a bounded time (a pipe a
        // process outside the container holds would never end).
        let timeout = if code.is_some() { 2000 } else { 1000 };
        let n = hull::sys::poll(&mut pfds, timeout).unwrap_or(0);
        if n == 0 && code.is_some() {
            open.iter_mut().for_each(|o| *o = false);
            continue;
        }
        for (i, (fd, stream)) in fds.iter().enumerate() {
            if !open[i] || pfds[i + 1].revents == 0 {
                continue;
            }
            match hull::sys::read(*fd, &mut buf) {
                Ok(0) | Err(_) => {
                    open[i] = false;
                    log.flush(*stream);
                }
                Ok(k) => log.feed(*stream, &buf[..k]),
            }
        }
        if pfds[0].revents != 0 {
            while let Some(sig) = hull::sys::read_signalfd(sfd.as_raw_fd()) {
                match sig {
                    libc::SIGCHLD | libc::SIGWINCH => {}
                    s => forward(s),
                }
            }
        }
    }
}
