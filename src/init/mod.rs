//! The child side of `create`.
//!
//! Usually the runtime clones the init directly ([`direct`]), with its new
//! PID namespace (and into its cgroup2 directory on v2), and the two work in
//! parallel:
//!
//! ```text
//! hull create (parent) ──clone(NEWPID)──► init (PID 1 of the container)
//!   v1 cgroups made, limits  ─Placed─►     unshare(mount, net, uts, ipc), setns(path)
//!   state.json               ─Go(state)─►  joins the cgroups, cgroup ns, rootfs: mounts, devices
//!   prestart, createRuntime, ◄─MountsReady─ (only if such hooks exist; waits)
//!   createContainer hooks    ─Continue──►  pivot_root, console, masked/ro paths,
//!                            ◄─PtyMaster──  hostname, sysctl, LSM labels, rlimits,
//!   pid file                 ◄─Ready──────  user, caps, no_new_privs, fds sealed
//!   (create returns)                        blocks on exec.fifo ... `start` reads it
//!                                           startContainer hooks, execve(process.args)
//! ```
//!
//! With a user namespace (it must come first, its id maps written from
//! outside), or a PID/time namespace joined by path, an intermediate
//! [`stage1`] enters the namespaces and forks the init:
//!
//! ```text
//! hull create ──fork──► stage 1 ──fork──► init
//!   placement ─Placed─►  user ns (UsernsReady/MapsDone: parent writes maps)
//!                        setns(path) / unshare(new)
//!             ◄─InitPid─  exits;  then Go, ... as above
//! ```
//!
//! The children only run allocation-free, async-signal-safe code: everything
//! they need was prepared by the parent in an [`InitPlan`] before the fork.
//! A failure is sent to the parent as (step, errno, index); the parent turns
//! it into a sentence.

pub mod channel;
pub mod fail;
pub mod setns;

use std::ffi::CString;
use std::os::fd::RawFd;

use channel::{Kind, Msg};
use fail::{ChildResult, Fail, Step, StepContext};

use crate::hooks::ChildHook;
use crate::namespaces::{self, NsPlan};
use crate::process::ProcessPlan;
use crate::rootfs::{self, RootfsPlan};
use crate::sys::{self, Errno};

/// Everything the two stages need, prepared before the fork.
#[derive(Debug)]
pub struct InitPlan {
    pub ns: NsPlan,
    pub rootfs: RootfsPlan,
    pub process: ProcessPlan,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
    /// (/proc/sys/... path, value)
    pub sysctls: Vec<(CString, CString)>,
    /// `/proc/self/fd/N` of the O_PATH fd of the exec fifo.
    pub fifo: CString,
    /// Session keyring name, unless --no-new-keyring.
    pub keyring: Option<CString>,
    pub start_hooks: Vec<ChildHook>,
    /// prestart/createRuntime/createContainer hooks exist: stop before
    /// pivot_root so the parent can run them (else no round trip).
    pub hooks_before_pivot: bool,
    /// The container's cgroup2 directory: the init is forked into it.
    pub init_cgroup: Option<RawFd>,
    /// The init was cloned into `init_cgroup` (else it joins it itself).
    pub init_in_cgroup: bool,
    /// The container's v1 `tasks` files (for messages): they are made
    /// after the fork, while the child creates its namespaces, and arrive
    /// open with `Placed`; the child writes "0" (itself) to each.
    pub cgroup_tasks: Vec<CString>,
    /// The init is cloned by the runtime itself ([`direct`]), not by stage 1.
    pub direct: bool,
    /// Exec right after Ready, without waiting on the exec fifo (`run`).
    pub autostart: bool,
    /// The runtime's ignored signals, set back to default in the init.
    pub ignored_signals: u64,
    /// Receives the state JSON for the startContainer hooks.
    pub state_buf: Vec<u8>,
    /// The parent's fds that the children must not keep (the state lock).
    pub parent_fds: Vec<RawFd>,
}

/// Stage 1: enter the namespaces, fork the init, report its pid, exit.
pub fn stage1(plan: &mut InitPlan, sock: RawFd) -> ! {
    let code = match stage1_steps(plan, sock) {
        Ok(()) => 0,
        Err(f) => {
            report(sock, f);
            1
        }
    };
    sys::exit_now(code)
}

fn stage1_steps(plan: &mut InitPlan, sock: RawFd) -> ChildResult<()> {
    for &fd in &plan.parent_fds {
        sys::close(fd);
    }
    set_stdio(&plan.process)?;
    // Die with the runtime if it dies before the container is handed over.
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    // Not dumpable: nothing in the container may ptrace or open
    // /proc/<pid>/exe of the half-made init (it is still the hull binary).
    sys::prctl(libc::PR_SET_DUMPABLE, 0).step(Step::Protocol)?;
    if plan.ns.user == namespaces::UserNs::Host {
        // No user namespace to own the others: create them at once (with
        // the systemd driver the parent is meanwhile starting the scope).
        // The cgroup namespace comes later, in the init, once it is in the
        // container's cgroups.
        namespaces::enter_rest(&plan.ns, 0)?;
        join_cgroups(plan, sock, true)?;
    } else {
        // Inside the new user namespace the host's cgroup files are not
        // ours to write: join them all first, and fork plainly later.
        join_cgroups(plan, sock, false)?;
        if namespaces::enter_user(&plan.ns)? {
            // The parent writes the maps; /proc/<pid>/*_map needs us dumpable.
            sys::prctl(libc::PR_SET_DUMPABLE, 1).step(Step::Protocol)?;
            channel::send(sock, Msg::new(Kind::UsernsReady)).step(Step::Protocol)?;
            channel::expect(sock, Kind::MapsDone).step(Step::Protocol)?;
            sys::prctl(libc::PR_SET_DUMPABLE, 0).step(Step::Protocol)?;
            namespaces::become_ns_root()?;
        }
        namespaces::enter_rest(&plan.ns, 0)?;
    }
    namespaces::write_time_offsets(&plan.ns)?;
    let into = plan
        .init_cgroup
        .filter(|_| plan.ns.user == namespaces::UserNs::Host);
    let pid = match into {
        Some(cg) => match sys::clone_child(0, Some(cg)) {
            Ok(pid) => pid,
            // No clone3/CLONE_INTO_CGROUP: join the cgroup2 directory
            // ourselves, then fork.
            Err(_) => {
                join_cgroup2(cg)?;
                sys::fork().step(Step::ForkInit)?
            }
        },
        None => sys::fork().step(Step::ForkInit)?,
    };
    if pid == 0 {
        container_init(plan, sock);
    }
    let mut msg = Msg::new(Kind::InitPid);
    msg.a = pid;
    channel::send(sock, msg).step(Step::Protocol)
}

/// The init, cloned by the runtime with its new PID namespace (and into
/// its cgroup2 directory): it creates the other namespaces while the
/// runtime makes the v1 cgroups and applies the limits, joins them on
/// `Placed`, and goes on as the container's PID 1.
pub fn direct(plan: &mut InitPlan, sock: RawFd) -> ! {
    if let Err(f) = direct_steps(plan, sock) {
        report(sock, f);
        sys::exit_now(1)
    }
    container_init(plan, sock)
}

fn direct_steps(plan: &mut InitPlan, sock: RawFd) -> ChildResult<()> {
    for &fd in &plan.parent_fds {
        sys::close(fd);
    }
    set_stdio(&plan.process)?;
    // Die with the runtime until the container is handed over (cleared
    // before Ready); not dumpable, as in stage 1.
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    sys::prctl(libc::PR_SET_DUMPABLE, 0).step(Step::Protocol)?;
    namespaces::enter_rest(&plan.ns, libc::CLONE_NEWPID)?;
    join_cgroups(plan, sock, plan.init_in_cgroup)
}

/// The caller's chosen stdio onto fds 0, 1, 2 (the copies above 2 are
/// close-on-exec or closed with the rest).
pub(crate) fn set_stdio(p: &crate::process::ProcessPlan) -> ChildResult<()> {
    if let Some(fds) = p.stdio {
        for (to, from) in fds.into_iter().enumerate() {
            if from != to as RawFd {
                sys::dup2(from, to as RawFd).step(Step::Protocol)?;
            }
        }
    }
    Ok(())
}

/// Wait for `Placed` and move this process into the container's cgroups:
/// "0" in each v1 `tasks` file (the parent made them meanwhile and sends
/// them open; a thread moving itself skips the cgroup threadgroup lock and
/// its RCU grace period), and, unless the init is or will be cloned into
/// it, the cgroup2 directory.
fn join_cgroups(plan: &InitPlan, sock: RawFd, init_via_clone: bool) -> ChildResult<()> {
    let mut fds = [-1; sys::MAX_FDS];
    let n = channel::expect_fds(sock, Kind::Placed, &mut fds).step(Step::Protocol)?;
    join_v1_self(&fds[..n])?;
    match plan.init_cgroup {
        Some(cg) if !init_via_clone => join_cgroup2(cg),
        _ => Ok(()),
    }
}

/// Write "0" (this thread) to each open v1 `tasks` file and close them
/// all; a failure names the file's index. The caller must be
/// single-threaded: only the calling thread moves.
pub(crate) fn join_v1_self(tasks: &[RawFd]) -> ChildResult<()> {
    let mut r = Ok(());
    for (i, &fd) in tasks.iter().enumerate() {
        if r.is_ok() {
            r = sys::write_all(fd, b"0").step_at(Step::CgroupJoin, i);
        }
        sys::close(fd);
    }
    r
}

/// Join the cgroup2 directory `cg` through its `cgroup.procs` (the slow
/// way: a process migration), where the kernel cannot clone into it.
/// Failures have index [`CGROUP2_JOIN`].
pub(crate) fn join_cgroup2(cg: RawFd) -> ChildResult<()> {
    let procs = sys::openat(cg, c"cgroup.procs", libc::O_WRONLY, 0)
        .step_at(Step::CgroupJoin, CGROUP2_JOIN)?;
    let r = sys::write_all(procs, b"0");
    sys::close(procs);
    r.step_at(Step::CgroupJoin, CGROUP2_JOIN)
}

/// The `Step::CgroupJoin` index of the cgroup2 directory (the v1
/// hierarchies are numbered from 0).
pub(crate) const CGROUP2_JOIN: usize = 99;

/// "N" of "/proc/self/fd/N" (the fifo entry in a /proc/self/fd dirfd).
fn fifo_name(path: &CString) -> &std::ffi::CStr {
    let bytes = path.as_bytes_with_nul();
    let start = bytes.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    std::ffi::CStr::from_bytes_with_nul(&bytes[start..]).unwrap_or(c"")
}

/// Send a failure to the parent (best effort: it may be gone).
pub(crate) fn report(sock: RawFd, f: Fail) {
    let msg = Msg {
        kind: Kind::Fail,
        a: f.step as i32,
        b: f.errno.0,
        c: f.idx,
    };
    let _ = channel::send(sock, msg);
}

/// The container's PID 1 until it execs the user's program.
fn container_init(plan: &mut InitPlan, sock: RawFd) -> ! {
    match init_steps(plan, sock) {
        Ok(which) => {
            // The seccomp filter goes in last: only execve runs under it.
            if let Err(f) = plan.process.confine_before_exec() {
                let _ =
                    sys::write_all(2, b"hull: linux.seccomp: loading the filter failed: errno ");
                let mut buf = [0u8; 64];
                let _ = sys::write_all(
                    2,
                    sys::fmt_path_num(&mut buf, b"", f.errno.0 as u64).to_bytes(),
                );
                let _ = sys::write_all(2, b"\n");
                sys::exit_now(1);
            }
            let e = plan.process.exec.exec(which);
            // Too late to tell the parent (start has returned): say it on stderr.
            let _ = sys::write_all(2, b"hull: exec of the container process failed: errno ");
            let mut buf = [0u8; 64];
            let _ = sys::write_all(2, sys::fmt_path_num(&mut buf, b"", e.0 as u64).to_bytes());
            let _ = sys::write_all(2, b"\n");
            sys::exit_now(127)
        }
        Err(f) => {
            report(sock, f);
            sys::exit_now(1)
        }
    }
}

fn init_steps(plan: &mut InitPlan, sock: RawFd) -> ChildResult<usize> {
    // Go: the parent knows our pid; it carries the state for the hooks.
    let (msg, len, _) = channel::recv(sock, &mut plan.state_buf).step(Step::Protocol)?;
    if msg.kind != Kind::Go {
        return Err(Errno(libc::EPROTO)).step(Step::Protocol);
    }
    let state_len = len;
    // The cgroup namespace, rooted at the container's cgroups (which this
    // process is in by now, v1 and v2 alike).
    namespaces::unshare_only(&plan.ns, libc::CLONE_NEWCGROUP)?;
    // The runtime's /proc/self/fd, kept to reopen the exec fifo after
    // pivot_root: the container may have no /proc of its own.
    let proc_fds =
        sys::open(c"/proc/self/fd", libc::O_PATH | libc::O_DIRECTORY, 0).step(Step::Protocol)?;
    sys::reset_ignored_signals(plan.ignored_signals);
    sys::setsid().step(Step::Setsid)?;
    if let Some(name) = &plan.keyring {
        // Not fatal where keyrings are unavailable (ENOSYS, EPERM, EDQUOT).
        let _ = sys::join_session_keyring(name);
    }

    // Root filesystem, up to pivot_root.
    let r = &plan.rootfs;
    if plan.ns.has_mount_ns {
        rootfs::mount::prepare_root(r)?;
        let root =
            sys::open(&r.rootfs, libc::O_PATH | libc::O_DIRECTORY, 0).step(Step::OpenRootfs)?;
        rootfs::mount::mount_all(r, root)?;
        rootfs::devices::create_all(r, root)?;
        rootfs::resolve::mkdir_all(root, plan.process.cwd.to_bytes()).step(Step::CwdCreate)?;
        sys::close(root);
    }
    if plan.hooks_before_pivot {
        channel::send(sock, Msg::new(Kind::MountsReady)).step(Step::Protocol)?;
        channel::expect(sock, Kind::Continue).step(Step::Protocol)?;
    }
    if plan.ns.has_mount_ns {
        rootfs::pivot::enter_root(r)?;
    } else {
        sys::chroot(&r.rootfs).step(Step::MoveRoot)?;
        sys::chdir(c"/").step(Step::MoveRoot)?;
    }
    if plan.process.terminal {
        setup_console(sock, plan.ns.has_mount_ns, plan.process.console_size)?;
    }
    // Hostname and sysctls (through the container's /proc/sys, while it is
    // still writable), then the masked and read-only paths, as runc orders them.
    if let Some(h) = &plan.hostname {
        sys::sethostname(h.to_bytes()).step(Step::Hostname)?;
    }
    if let Some(d) = &plan.domainname {
        sys::setdomainname(d.to_bytes()).step(Step::Domainname)?;
    }
    for (i, (path, value)) in plan.sysctls.iter().enumerate() {
        sys::write_proc_file(path, value.to_bytes()).step_at(Step::Sysctl, i)?;
    }
    if plan.ns.has_mount_ns {
        rootfs::paths::mask(r)?;
        rootfs::paths::readonly(r)?;
        rootfs::paths::finish_root(r)?;
    }
    // The LSM exec labels before no_new_privs and the identity switch (see
    // init/setns.rs); they take effect at the execve.
    plan.process.apply_labels()?;
    plan.process.apply_limits()?;
    let which = plan.process.apply_identity()?;
    plan.process.seal_fds()?;
    // SCMP_ACT_NOTIFY profiles only: the listener fd must reach the parent.
    plan.process.seccomp_before_ready(sock)?;

    if !plan.autostart {
        plan.process.check_fd_room(proc_fds)?;
    }
    // Wait for `start`, outliving the runtime from here on.
    if plan.direct {
        let _ = sys::prctl(libc::PR_SET_PDEATHSIG, 0);
    }
    channel::send(sock, Msg::new(Kind::Ready)).step(Step::Protocol)?;
    if plan.autostart {
        // No fifo: the socket (close-on-exec) tells the runtime we exec'd.
        sys::close(proc_fds);
        return start_hooks_then(plan, state_len, which);
    }
    sys::close(sock);
    let fifo = match sys::openat(proc_fds, fifo_name(&plan.fifo), libc::O_WRONLY, 0) {
        Ok(fd) => fd,
        Err(_) => {
            let _ = sys::write_all(2, b"hull: the container init cannot open the exec fifo\n");
            sys::exit_now(1)
        }
    };
    sys::close(proc_fds);
    if sys::write_all(fifo, b"0").is_err() {
        sys::exit_now(1);
    }
    // The fifo stays open (close-on-exec): `start` sees EOF once we exec,
    // so poststart hooks run after startContainer hooks and the exec.
    start_hooks_then(plan, state_len, which)
}

/// Run the startContainer hooks (in the container, before the exec); a
/// failing one ends the init.
fn start_hooks_then(plan: &InitPlan, state_len: usize, which: usize) -> ChildResult<usize> {
    let state = &plan.state_buf[channel::HEADER..channel::HEADER + state_len];
    for h in &plan.start_hooks {
        if h.run(state).is_err() {
            let _ = sys::write_all(2, b"hull: a startContainer hook failed\n");
            sys::exit_now(1);
        }
    }
    Ok(which)
}

/// Create the container's pty (in its own devpts), make the slave the
/// controlling terminal and stdio, bind it at /dev/console, and hand the
/// master to the parent.
fn setup_console(sock: RawFd, has_mount_ns: bool, size: Option<(u16, u16)>) -> ChildResult<()> {
    let master = sys::open(c"/dev/ptmx", libc::O_RDWR | libc::O_NOCTTY, 0).step(Step::Pty)?;
    let slave = sys::open_pty_peer(master).step(Step::Pty)?;
    if let Some((rows, cols)) = size {
        sys::set_winsize(master, rows, cols).step(Step::Pty)?;
    }
    if has_mount_ns {
        let root = sys::open(c"/", libc::O_PATH | libc::O_DIRECTORY, 0).step(Step::Console)?;
        let r = rootfs::resolve::open(root, b"/dev", libc::O_PATH | libc::O_DIRECTORY);
        sys::close(root);
        if let Ok(dev) = r {
            // An empty file at /dev/console to bind the pty slave onto.
            if let Ok(fd) = sys::openat(
                dev,
                c"console",
                libc::O_CREAT | libc::O_RDONLY | libc::O_NOCTTY,
                0o600,
            ) {
                sys::close(fd);
            }
            sys::close(dev);
            let mut buf = [0u8; 64];
            sys::mount(
                Some(sys::proc_fd_path(&mut buf, slave)),
                c"/dev/console",
                None,
                libc::MS_BIND,
                None,
            )
            .step(Step::Console)?;
        }
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
    Ok(())
}
