//! `--init`: a tiny PID 1 (like tini). hullctl's own static binary is
//! bind-mounted read-only into the container and run as `init -- CMD...`:
//! it starts CMD, forwards every catchable signal to it, reaps every
//! zombie (orphans are re-parented to PID 1), and exits with CMD's status.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

/// The signals forwarded to the child (all but SIGCHLD, which is ours, and
/// the uncatchable SIGKILL/SIGSTOP).
fn forwarded() -> Vec<libc::c_int> {
    (1..32)
        .filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP)
        .collect()
}

/// Run `args` under the init; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let Some((prog, rest)) = args.split_first() else {
        eprintln!("hullctl init: no command given");
        return 2;
    };
    // Block the signals first (so none is lost) and read them from a
    // signalfd; the child starts with none blocked.
    let sfd = match hull::sys::signalfd_for(&forwarded()) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("hullctl init: signalfd: {e}");
            return 1;
        }
    };
    let mut cmd = Command::new(prog);
    cmd.args(rest);
    crate::sys::unblock_signals_in_child(&mut cmd);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hullctl init: {prog}: {e}");
            return if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
        }
    };
    let pid = child.id() as libc::pid_t;
    use std::os::fd::AsRawFd;
    loop {
        // Reap everything that exited; the child's status ends the init.
        loop {
            match hull::sys::waitpid(-1, libc::WNOHANG) {
                Ok((0, _)) | Err(_) => break,
                Ok((p, status)) if p == pid => {
                    return code(std::process::ExitStatus::from_raw(status));
                }
                Ok(_) => {}
            }
        }
        let _ = hull::sys::poll_one(sfd.as_raw_fd(), libc::POLLIN, -1);
        while let Some(sig) = hull::sys::read_signalfd(sfd.as_raw_fd()) {
            if sig != libc::SIGCHLD {
                let _ = crate::sys::kill(pid, sig);
            }
        }
    }
}

fn code(s: std::process::ExitStatus) -> i32 {
    match (s.code(), s.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => 1,
    }
}
