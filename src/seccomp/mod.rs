//! Seccomp: `linux.seccomp` → a BPF program, compiled in the parent and
//! loaded by the init with a raw seccomp(2) as late as possible.
//!
//! - [`profile`]: names, field-naming checks of the raw JSON, NOTIFY rules
//! - [`compile`]: libseccomp → exported BPF (`Vec<sock_filter>`)
//! - [`cache`]: compiled programs kept under the state root
//! - [`install`](SeccompPlan::install): child side, allocation-free
//! - [`notify`]: parent side of SCMP_ACT_NOTIFY: the listener fd and the
//!   container process state go to `listenerPath`
//!
//! When the filter goes in: right before `execve` (after the exec fifo and
//! the startContainer hooks), so none of hull's own steps run under it.
//! With SCMP_ACT_NOTIFY rules it must go in before the init reports Ready,
//! because the listener fd exists only once the filter is loaded and must
//! reach the parent over the init socket; then the fifo wait and the hooks
//! run under the filter (runc does the same). Without noNewPrivileges,
//! loading a filter needs CAP_SYS_ADMIN: the init keeps it in its effective
//! and permitted sets until the exec, where the kernel recomputes the sets
//! from the bounding, inheritable and ambient sets (see `process`).

pub mod cache;
pub mod compile;
pub mod notify;
pub mod profile;

use std::os::fd::RawFd;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompFilterFlag};

use crate::error::Result;
use crate::sys::{self, SysResult};

/// What the init needs to load the filter.
#[derive(Debug, Default)]
pub struct SeccompPlan {
    pub bpf: Vec<libc::sock_filter>,
    /// seccomp(2) SECCOMP_FILTER_FLAG_* bits.
    pub flags: libc::c_ulong,
    /// Some rule is SCMP_ACT_NOTIFY: load early and hand the fd over.
    pub notify: bool,
    pub listener_path: Option<PathBuf>,
    pub listener_metadata: String,
}

impl SeccompPlan {
    /// Parent side: validate and compile (or, with `cached`, take the
    /// program compiled before from `cache::dir()`). Unknown syscall names
    /// are skipped with a debug line, as runc does.
    pub fn build(s: &LinuxSeccomp, cached: bool) -> Result<SeccompPlan> {
        profile::validate(s)?;
        let c = match cached.then(|| cache::key(s)).flatten() {
            Some(key) => cache::load_or_compile(&cache::dir(), &key, || compile::compile(s))?,
            None => compile::compile(s)?,
        };
        for name in &c.unknown {
            crate::logging::debug(&format!(
                "linux.seccomp: unknown syscall {name:?} on this architecture; rule skipped"
            ));
        }
        let mut flags: libc::c_ulong = 0;
        for f in s.flags().iter().flatten() {
            flags |= match f {
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                    libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                }
                LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                    libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
                }
            };
        }
        if !c.notify {
            // Only meaningful for a notify listener; the kernel refuses it
            // (EINVAL) without one, so a profile with no NOTIFY rule drops it.
            flags &= !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
        }
        if c.notify {
            flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
            if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
                // The kernel refuses TSYNC with NEW_LISTENER unless told to
                // report a failed sync as ESRCH (the init is single-threaded).
                flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
            }
        }
        Ok(SeccompPlan {
            bpf: c.bpf,
            flags,
            notify: c.notify,
            listener_path: s.listener_path().clone(),
            listener_metadata: s.listener_metadata().clone().unwrap_or_default(),
        })
    }

    /// Child side: load the filter. Returns the notify listener fd when the
    /// profile has SCMP_ACT_NOTIFY rules.
    pub fn install(&self) -> SysResult<Option<RawFd>> {
        let fd = sys::seccomp_set_filter(&self.bpf, self.flags)?;
        Ok(self.notify.then_some(fd))
    }
}
