//! The container process: user, capabilities, rlimits, no_new_privileges,
//! fds and the exec. `ProcessPlan::build` runs in the parent; `apply` and
//! `exec` run in the init, last, in that order.

pub mod caps;
pub mod exec;
pub mod lsm;
pub mod rlimits;
pub mod sched;
pub mod user;

use std::ffi::CString;
use std::path::Path;

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::init::channel::{self, Kind, Msg};
use crate::init::fail::{ChildResult, Step, StepContext};
use crate::namespaces::{cstring, NsPlan};
use crate::seccomp::SeccompPlan;
use crate::sys;

/// `--preserve-fds N` (plus LISTEN_FDS): fds 3..3+total must be open, or
/// one of hull's own fds could take that number and leak into the container.
pub fn check_preserved_fds(total: u32, flag: u32) -> Result<()> {
    for fd in 3..3 + total {
        if !sys::fd_is_open(fd as i32) {
            return Err(Error::Usage(format!(
                "--preserve-fds {flag}: fd {fd} is not open"
            )));
        }
    }
    Ok(())
}

#[derive(Debug)]
pub struct ProcessPlan {
    pub exec: exec::ExecPlan,
    pub user: user::UserPlan,
    pub caps: Option<caps::CapPlan>,
    pub no_new_privs: bool,
    /// (resource, soft, hard)
    pub rlimits: Vec<(u32, u64, u64)>,
    pub cwd: CString,
    pub oom_score_adj: Option<String>,
    pub terminal: bool,
    /// process.consoleSize as (rows, columns), set on the pty.
    pub console_size: Option<(u16, u16)>,
    /// fds 3..3+preserve_fds stay open in the container.
    pub preserve_fds: u32,
    /// Put on fds 0, 1, 2 before anything else (default: the runtime's).
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
    /// linux.seccomp, compiled.
    pub seccomp: Option<SeccompPlan>,
    /// ioprio_set value (process.ioPriority).
    pub io_priority: Option<libc::c_int>,
    pub scheduler: Option<sched::SchedPlan>,
    /// personality(2) value (linux.personality).
    pub personality: Option<libc::c_ulong>,
    /// AppArmor / SELinux labels for the exec.
    pub lsm: lsm::LsmPlan,
}

/// CAP_SYS_ADMIN, which loading a seccomp filter without no_new_privs needs.
const CAP_SYS_ADMIN_MASK: u64 = 1 << 21;

impl ProcessPlan {
    pub fn build(
        spec: &Spec,
        rootfs: &Path,
        ns: &NsPlan,
        extra_env: &[String],
        preserve_fds: u32,
        seccomp_cache: bool,
        warn: &mut dyn FnMut(String),
    ) -> Result<ProcessPlan> {
        let p = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::config("process", "required"))?;
        let u = p.user();
        let info = user::lookup(rootfs, u.uid());
        let mut env: Vec<String> = p.env().clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={}", info.home.as_deref().unwrap_or("/")));
        }
        env.extend(extra_env.iter().cloned());
        let args = p.args().clone().unwrap_or_default();
        let mut groups: Vec<u32> = info.groups.clone();
        for g in u.additional_gids().iter().flatten() {
            if !groups.contains(g) {
                groups.push(*g);
            }
        }
        let set_groups = !ns.in_userns() || user::current_uid() == 0;
        // As runc: the image's groups are skipped where setgroups is
        // denied, but asked-for ones are not dropped silently.
        if !set_groups && u.additional_gids().as_ref().is_some_and(|g| !g.is_empty()) {
            return Err(Error::config(
                "process.user.additionalGids",
                "cannot set additional groups as an unprivileged user (setgroups is \
                 denied in its user namespace)",
            ));
        }
        let mut rlimits = Vec::new();
        for (i, r) in p.rlimits().iter().flatten().enumerate() {
            if r.soft() > r.hard() {
                return Err(Error::config(
                    format!("process.rlimits[{i}]"),
                    format!(
                        "soft limit {} is above the hard limit {}",
                        r.soft(),
                        r.hard()
                    ),
                ));
            }
            rlimits.push((rlimits::resource(r.typ()), r.soft(), r.hard()));
        }
        let linux = spec.linux().as_ref();
        let seccomp = linux
            .and_then(|l| l.seccomp().as_ref())
            .map(|s| SeccompPlan::build(s, seccomp_cache))
            .transpose()?;
        let io_priority = p
            .io_priority()
            .as_ref()
            .map(sched::io_priority)
            .transpose()?;
        let scheduler = p.scheduler().as_ref().map(sched::scheduler).transpose()?;
        let personality = linux
            .and_then(|l| l.personality().as_ref())
            .map(|per| sched::personality(per, warn));
        Ok(ProcessPlan {
            exec: exec::ExecPlan::new(&args, &env)?,
            user: user::UserPlan {
                uid: u.uid(),
                gid: u.gid(),
                groups,
                set_groups,
                umask: u.umask(),
            },
            caps: p.capabilities().as_ref().map(|c| caps::plan(c, warn)),
            no_new_privs: p.no_new_privileges().unwrap_or(false),
            rlimits,
            cwd: cstring(&p.cwd().to_string_lossy())?,
            oom_score_adj: p.oom_score_adj().map(|v| v.to_string()),
            terminal: p.terminal().unwrap_or(false),
            console_size: p.console_size().as_ref().map(|b| {
                (
                    b.height().min(u16::MAX as u64) as u16,
                    b.width().min(u16::MAX as u64) as u16,
                )
            }),
            preserve_fds,
            stdio: None,
            seccomp,
            io_priority,
            scheduler,
            personality,
            lsm: lsm::plan(spec)?,
        })
    }

    /// The sentence for a failed process step (shared by create and exec),
    /// or None for steps that are not the process's.
    pub fn describe_failure(&self, step: Step, idx: usize, errno: sys::Errno) -> Option<String> {
        let what: String = match step {
        Step::OomScoreAdj => "process.oomScoreAdj: writing /proc/self/oom_score_adj".into(),
        Step::Rlimit => format!("process.rlimits[{idx}]: setting it"),
        Step::FdRoom => format!(
            "process.rlimits[{idx}]: RLIMIT_NOFILE leaves the init no file descriptor for the exec fifo"
        ),
        Step::Bounding => format!("process.capabilities.bounding: dropping capability {idx}"),
        Step::KeepCaps => "keeping capabilities across the user switch".into(),
        Step::Setgroups => "process.user.additionalGids: setgroups".into(),
        Step::Setgid => format!(
            "process.user.gid: switching to gid {}",
            self.user.gid
        ),
        Step::Setuid => format!(
            "process.user.uid: switching to uid {}",
            self.user.uid
        ),
        Step::Capset => "process.capabilities: applying the sets".into(),
        Step::Ambient => "process.capabilities.ambient".into(),
        Step::NoNewPrivs => "process.noNewPrivileges".into(),
        Step::Chdir => format!(
            "process.cwd: chdir to {}",
            self.cwd.to_string_lossy()
        ),
        Step::FindExecutable if idx == 1 => {
            return Some(format!("exec {:?}: {errno}", self.arg0()));
        }
        Step::FindExecutable => {
            let arg0 = self
                .exec
                .argv
                .first()
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Some(if arg0.contains('/') {
                format!(
                    "exec: {arg0:?}: no such executable file in the container (process.args[0])"
                )
            } else {
                format!("exec: {arg0:?}: executable file not found in $PATH (process.args[0])")
            });
        }
        Step::PreserveFds => format!("--preserve-fds: fd {idx}"),
        Step::Setsid => "setsid".into(),
        Step::Seccomp => "linux.seccomp: loading the filter".into(),
        Step::IoPriority => "process.ioPriority: ioprio_set".into(),
        Step::Scheduler => "process.scheduler: sched_setattr".into(),
        Step::Personality => "linux.personality: personality".into(),
        Step::Lsm => return Some(self.lsm.describe_failure(idx, errno)),
        Step::CwdOutsideRoot => {
            return Some(format!(
                "process.cwd: {} resolves outside the container's root (refused: possible breakout, CVE-2024-21626)",
                self.cwd.to_string_lossy()
            ))
        }
        Step::Pty => "creating the pty (process.terminal)".into(),
        Step::Console => "setting up /dev/console".into(),
            _ => return None,
        };
        if errno.0 == libc::EXDEV && step == Step::OomScoreAdj {
            return Some(format!(
                "{what}: /proc in the container is not a procfs mount (refused)"
            ));
        }
        Some(format!("{what}: {errno}"))
    }

    fn arg0(&self) -> String {
        self.exec
            .argv
            .first()
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Child side, before dropping privileges: oom_score_adj, rlimits, I/O
    /// priority, scheduler and personality.
    pub fn apply_limits(&self) -> ChildResult<()> {
        if let Some(v) = &self.oom_score_adj {
            sys::write_proc_file(c"/proc/self/oom_score_adj", v.as_bytes())
                .step(Step::OomScoreAdj)?;
        }
        for (i, &(res, soft, hard)) in self.rlimits.iter().enumerate() {
            sys::setrlimit(res, soft, hard).step_at(Step::Rlimit, i)?;
        }
        if let Some(prio) = self.io_priority {
            sys::ioprio_set_self(prio).step(Step::IoPriority)?;
        }
        if let Some(s) = &self.scheduler {
            sched::apply_sched(s)?;
        }
        if let Some(per) = self.personality {
            sys::personality(per).step(Step::Personality)?;
        }
        Ok(())
    }

    /// The init opens the exec fifo after its limits are set: a NOFILE
    /// limit that leaves it no fd fails the create, as in runc, rather than
    /// leaving a created container that can never start.
    pub fn check_fd_room(&self, fd: std::os::fd::RawFd) -> ChildResult<()> {
        let nofile = self.rlimits.iter().position(|r| r.0 == libc::RLIMIT_NOFILE);
        match nofile {
            Some(i) => sys::fd_room(fd).step_at(Step::FdRoom, i),
            None => Ok(()),
        }
    }

    /// Loading a seccomp filter without no_new_privs needs CAP_SYS_ADMIN:
    /// the init then keeps it (effective and permitted only) until the exec,
    /// where the kernel recomputes the sets from bounding, inheritable and
    /// ambient, so the container process never gets it from this.
    fn seccomp_needs_cap(&self) -> bool {
        self.seccomp.is_some() && !self.no_new_privs
    }

    /// Child side, before Ready: a profile with SCMP_ACT_NOTIFY rules is
    /// loaded now, and its listener fd goes to the parent (which hands it to
    /// `linux.seccomp.listenerPath`).
    pub fn seccomp_before_ready(&self, sock: std::os::fd::RawFd) -> ChildResult<()> {
        let Some(s) = self.seccomp.as_ref().filter(|s| s.notify) else {
            return Ok(());
        };
        let fd = s.install().step(Step::Seccomp)?;
        if let Some(fd) = fd {
            channel::send_fd(sock, Msg::new(Kind::SeccompFd), fd).step(Step::Seccomp)?;
            sys::close(fd);
        }
        Ok(())
    }

    /// Child side, before the identity switch and no_new_privs (create:
    /// before Ready, so a refused label fails `create`): the LSM exec labels.
    pub fn apply_labels(&self) -> ChildResult<()> {
        lsm::apply(&self.lsm)
    }

    /// Child side, the last step before execve: a seccomp profile without
    /// SCMP_ACT_NOTIFY rules (only execve runs under the filter).
    pub fn confine_before_exec(&self) -> ChildResult<()> {
        match self.seccomp.as_ref().filter(|s| !s.notify) {
            Some(s) => s.install().map(drop).step(Step::Seccomp),
            None => Ok(()),
        }
    }

    /// Child side: bounding set, user switch, capability sets, cwd,
    /// no_new_privileges. Returns the executable to run.
    pub fn apply_identity(&self) -> ChildResult<usize> {
        if let Some(c) = &self.caps {
            caps::drop_bounding(c)?;
        }
        let extra = if self.seccomp_needs_cap() {
            CAP_SYS_ADMIN_MASK
        } else {
            0
        };
        let switch_away = self.user.uid != 0;
        user::switch(
            &self.user,
            self.caps.is_some() || (extra != 0 && switch_away),
        )?;
        match &self.caps {
            Some(c) => caps::apply_sets(c, extra)?,
            None if extra != 0 && switch_away => {
                let only = sys::CapSets {
                    effective: extra,
                    permitted: extra,
                    inheritable: 0,
                };
                sys::capset(&only).step(Step::Capset)?;
            }
            None => {}
        }
        sys::chdir(&self.cwd).step(Step::Chdir)?;
        // CVE-2024-21626: a cwd such as /proc/self/fd/N could reach a host
        // directory through an fd of the runtime; refuse a cwd that is not
        // reachable from the container's root.
        let mut buf = [0u8; libc::PATH_MAX as usize];
        match sys::getcwd(&mut buf) {
            Ok(_) if buf[0] == b'/' => {}
            _ => return Err(sys::Errno(libc::EXDEV)).step(Step::CwdOutsideRoot),
        }
        if self.no_new_privs {
            sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).step(Step::NoNewPrivs)?;
        }
        self.exec.find()
    }

    /// Child side: keep fds 3..3+N open across exec, close every other one.
    pub fn seal_fds(&self) -> ChildResult<()> {
        for fd in 3..3 + self.preserve_fds {
            match sys::set_cloexec(fd as i32, false) {
                Ok(()) | Err(sys::Errno(libc::EBADF)) => {}
                Err(e) => return Err(e).step_at(Step::PreserveFds, fd as usize),
            }
        }
        sys::cloexec_from(3 + self.preserve_fds).step(Step::PreserveFds)
    }
}
