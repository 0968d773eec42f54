//! `run`: create + start, and in the foreground wait for the container,
//! forwarding signals and relaying its pty; exit with its status.

use std::os::fd::{AsRawFd, OwnedFd};

use super::{create, Container, CreateOptions};
use crate::error::{Error, Result};
use crate::state::StateStore;
use crate::sys;
use crate::terminal::{self, RawMode, Relay};

/// Signals a foreground `run` forwards to the container (plus SIGCHLD and
/// SIGWINCH, which it handles itself).
const FORWARDED: [libc::c_int; 12] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGALRM,
    libc::SIGPWR,
];

/// Run a container. Returns the exit code for hull: 0 when detached, else
/// the container's exit status (128 + signal if it was killed).
pub fn run(store: &StateStore, opts: &CreateOptions, detach: bool, keep: bool) -> Result<i32> {
    if detach {
        let auto = CreateOptions {
            autostart: true,
            ..opts.clone()
        };
        let created = create(store, &auto)?;
        let mut c = created.container;
        let r = if created.started {
            c.mark_started()
        } else {
            c.start()
        };
        return match r {
            Ok(()) => Ok(0),
            Err(e) => {
                let _ = c.delete(true);
                Err(e)
            }
        };
    }
    let sfd = foreground()?;

    let opts = CreateOptions {
        keep_pty: opts.console_socket.is_none(),
        autostart: true,
        ..opts.clone()
    };
    let created = create(store, &opts)?;
    let started = created.started;
    let mut c = created.container;
    let mut relay = created.pty.map(Relay::new);
    let _raw = match &relay {
        Some(r) => {
            terminal::copy_winsize(0, r.master.as_raw_fd());
            RawMode::enter(0)
        }
        None => None,
    };
    let r = if started { c.mark_started() } else { c.start() };
    if let Err(e) = r {
        let _ = c.delete(true);
        return Err(e);
    }
    let st = c.state.clone();
    let forward = |sig| {
        let _ = super::kill::signal_init(&st, sig);
    };
    let status = wait_for(c.state.pid, &forward, &sfd, relay.as_mut());
    if let Some(r) = relay.as_mut() {
        r.drain();
    }
    drop(_raw);
    if !keep {
        if let Ok(c) = Container::load(store, &c.state.id) {
            let _ = c.delete(true);
        }
    }
    Ok(status)
}

/// Prepare to wait in the foreground: become a child subreaper (the
/// container's process is re-parented to us once stage 1 exits) and block
/// the signals we forward, reading them from a signalfd instead. Call before
/// forking.
pub fn foreground() -> Result<OwnedFd> {
    sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1)
        .map_err(|e| Error::sys("becoming a child subreaper", e))?;
    let mut sigs = FORWARDED.to_vec();
    sigs.push(libc::SIGCHLD);
    sigs.push(libc::SIGWINCH);
    sys::signalfd_for(&sigs).map_err(|e| Error::sys("creating a signalfd", e))
}

/// Wait for `target` (our child) to exit, passing signals to `forward` and
/// pumping the pty; returns its exit code.
pub fn wait_for(
    target: libc::pid_t,
    forward: &dyn Fn(libc::c_int),
    sfd: &OwnedFd,
    mut relay: Option<&mut Relay>,
) -> i32 {
    let init = target;
    loop {
        // Reap whatever exited; the init's status is ours.
        loop {
            match sys::waitpid(-1, libc::WNOHANG) {
                Ok((0, _)) | Err(_) => break,
                Ok((pid, status)) if pid == init => return exit_code(status),
                Ok(_) => {}
            }
        }
        let mut fds = [
            libc::pollfd {
                fd: sfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: -1,
                events: 0,
                revents: 0,
            },
            libc::pollfd {
                fd: -1,
                events: 0,
                revents: 0,
            },
        ];
        if let Some(r) = relay.as_deref() {
            let [a, b] = r.pollfds();
            fds[1] = a;
            fds[2] = b;
        }
        if sys::poll(&mut fds, 1000).is_err() {
            continue;
        }
        if let Some(r) = relay.as_deref_mut() {
            r.pump(&[fds[1], fds[2]]);
        }
        if fds[0].revents != 0 {
            while let Some(sig) = sys::read_signalfd(sfd.as_raw_fd()) {
                match sig {
                    libc::SIGCHLD => {}
                    libc::SIGWINCH => {
                        if let Some(r) = relay.as_deref() {
                            terminal::copy_winsize(0, r.master.as_raw_fd());
                        }
                    }
                    s => forward(s),
                }
            }
        }
    }
}

/// A wait status as a shell-style exit code.
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}
