//! The child side of `exec`: join a running container instead of making
//! one (runc's setns init). Same two stages as create, fewer steps:
//!
//! ```text
//! hull exec ──clone3(INTO_CGROUP)──► stage 1 ──fork──► process (in the container's pid ns)
//!   (opens the cgroup files first)    "0" → each v1 tasks, setns(user) first, then the others
//!                      ◄─InitPid──   exits
//!              ──Go───────────────────► setsid, console, LSM labels, rlimits,
//!                      ◄─PtyMaster──   user, caps, no_new_privs, fds sealed, execve
//!   socket EOF (close-on-exec) = the exec happened; a Fail message = it did not
//! ```
//!
//! Stage 1 joins the container's cgroups the way create's init does: it is
//! cloned straight into the cgroup2 directory (`CLONE_INTO_CGROUP`) and
//! moves itself into each v1 hierarchy by writing "0" to its `tasks` file
//! (inherited open). Neither is a migration by pid, so neither waits for
//! the cgroup threadgroup lock's RCU grace period (writing `cgroup.procs`
//! did, on every exec). Where the kernel cannot clone into a cgroup, stage 1
//! writes the cgroup2 `cgroup.procs` itself.

use std::os::fd::RawFd;

use super::channel::{self, Kind, Msg};
use super::fail::{ChildResult, Fail, Step, StepContext};
use crate::namespaces::{self, NsPlan};
use crate::process::ProcessPlan;
use crate::sys;

/// What the exec'd process needs, prepared before the fork.
#[derive(Debug)]
pub struct SetnsPlan {
    pub ns: NsPlan,
    pub process: ProcessPlan,
    /// The parent's fds the children must not keep.
    pub parent_fds: Vec<RawFd>,
    /// The container's v1 `tasks` files, open for writing (stage 1
    /// inherits them and writes "0" to each).
    pub cgroup_tasks: Vec<RawFd>,
    /// The container's cgroup2 directory, if it has one.
    pub cgroup2: Option<RawFd>,
}

/// Stage 1; `in_cgroup2`: it was cloned into `plan.cgroup2` already.
pub fn stage1(plan: &SetnsPlan, sock: RawFd, in_cgroup2: bool) -> ! {
    let code = match stage1_steps(plan, sock, in_cgroup2) {
        Ok(()) => 0,
        Err(f) => {
            super::report(sock, f);
            1
        }
    };
    sys::exit_now(code)
}

fn stage1_steps(plan: &SetnsPlan, sock: RawFd, in_cgroup2: bool) -> ChildResult<()> {
    for &fd in &plan.parent_fds {
        sys::close(fd);
    }
    super::set_stdio(&plan.process)?;
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    // Non-dumpable until exec: processes already in the container must not
    // ptrace us or open /proc/<pid>/exe (the hull binary) — CVE-2019-5736.
    sys::prctl(libc::PR_SET_DUMPABLE, 0).step(Step::Protocol)?;
    // The cgroups first, while the host's cgroup files are still ours to
    // write (not yet in the container's user namespace); the process
    // forked below inherits them.
    let mut joined = super::join_v1_self(&plan.cgroup_tasks);
    if let Some(cg) = plan.cgroup2 {
        if joined.is_ok() && !in_cgroup2 {
            joined = super::join_cgroup2(cg);
        }
        sys::close(cg);
    }
    joined?;
    namespaces::enter_user(&plan.ns)?;
    namespaces::enter_rest(&plan.ns, 0)?;
    let pid = sys::fork().step(Step::ForkInit)?;
    if pid == 0 {
        process(plan, sock);
    }
    let mut msg = Msg::new(Kind::InitPid);
    msg.a = pid;
    channel::send(sock, msg).step(Step::Protocol)
}

fn process(plan: &SetnsPlan, sock: RawFd) -> ! {
    match process_steps(plan, sock) {
        Ok(which) => {
            // The container's seccomp filter, last.
            if let Err(f) = plan.process.confine_before_exec() {
                super::report(sock, f);
                sys::exit_now(1)
            }
            let e = plan.process.exec.exec(which);
            super::report(
                sock,
                Fail {
                    step: Step::FindExecutable,
                    idx: 1,
                    errno: e,
                },
            );
            sys::exit_now(127)
        }
        Err(f) => {
            super::report(sock, f);
            sys::exit_now(1)
        }
    }
}

fn process_steps(plan: &SetnsPlan, sock: RawFd) -> ChildResult<usize> {
    channel::expect(sock, Kind::Go).step(Step::Protocol)?;
    sys::reset_signals();
    sys::setsid().step(Step::Setsid)?;
    if plan.process.terminal {
        let master = sys::open(c"/dev/ptmx", libc::O_RDWR | libc::O_NOCTTY, 0).step(Step::Pty)?;
        let slave = sys::open_pty_peer(master).step(Step::Pty)?;
        if let Some((rows, cols)) = plan.process.console_size {
            sys::set_winsize(master, rows, cols).step(Step::Pty)?;
        }
        channel::send_fd(sock, Msg::new(Kind::PtyMaster), master).step(Step::Pty)?;
        sys::close(master);
        sys::ioctl_int(slave, libc::TIOCSCTTY, 0).step(Step::Console)?;
        for fd in 0..3 {
            sys::dup2(slave, fd).step(Step::Console)?;
        }
        if slave > 2 {
            sys::close(slave);
        }
    }
    // The LSM exec labels while still root and before no_new_privs (set
    // by apply_identity): AppArmor refuses a profile change under
    // no_new_privs unless it only narrows the current confinement, and
    // runc changes the profile first too.
    plan.process.apply_labels()?;
    plan.process.apply_limits()?;
    let which = plan.process.apply_identity()?;
    plan.process.seal_fds()?;
    // SCMP_ACT_NOTIFY profiles: the listener fd goes to the parent first.
    plan.process.seccomp_before_ready(sock)?;
    Ok(which)
}
