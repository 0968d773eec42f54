//! The container process: user, capabilities, rlimits, no_new_privileges,
//! fds and the exec. `ProcessPlan::build` runs in the parent; `apply` and
//! `exec` run in the init, last, in that order.

pub mod caps;
pub mod exec;
pub mod rlimits;
pub mod user;

use std::ffi::CString;
use std::path::Path;

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::init::fail::{ChildResult, Step, StepContext};
use crate::namespaces::{cstring, NsPlan};
use crate::sys;

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
    /// fds 3..3+preserve_fds stay open in the container.
    pub preserve_fds: u32,
}

impl ProcessPlan {
    pub fn build(
        spec: &Spec,
        rootfs: &Path,
        ns: &NsPlan,
        extra_env: &[String],
        preserve_fds: u32,
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
            preserve_fds,
        })
    }

    /// Child side, before dropping privileges: rlimits and oom_score_adj.
    pub fn apply_limits(&self) -> ChildResult<()> {
        if let Some(v) = &self.oom_score_adj {
            sys::write_file(c"/proc/self/oom_score_adj", v.as_bytes()).step(Step::OomScoreAdj)?;
        }
        for (i, &(res, soft, hard)) in self.rlimits.iter().enumerate() {
            sys::setrlimit(res, soft, hard).step_at(Step::Rlimit, i)?;
        }
        Ok(())
    }

    /// Child side: bounding set, user switch, capability sets, cwd,
    /// no_new_privileges. Returns the executable to run.
    pub fn apply_identity(&self) -> ChildResult<usize> {
        if let Some(c) = &self.caps {
            caps::drop_bounding(c)?;
        }
        user::switch(&self.user, self.caps.is_some())?;
        if let Some(c) = &self.caps {
            caps::apply_sets(c)?;
        }
        sys::chdir(&self.cwd).step(Step::Chdir)?;
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
