//! LSM labels: `process.apparmorProfile`, `process.selinuxLabel` and
//! `linux.mountLabel`. Applied when the host has that LSM enabled; a clear
//! error when one is set but the LSM is not there (runc refuses those
//! configs too, so configs behave the same under both runtimes).

use std::ffi::CString;
use std::path::Path;

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::init::fail::{ChildResult, Step, StepContext};
use crate::namespaces::cstring;
use crate::sys;

/// AppArmor is enabled (runc's test: securityfs has it and the module says Y).
pub fn apparmor_enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.starts_with('Y'))
}

/// SELinux is enabled (selinuxfs is mounted).
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// One label the init writes to /proc/thread-self/attr before the exec.
#[derive(Debug)]
pub struct LabelWrite {
    pub file: CString,
    pub data: CString,
    /// The config field it comes from, for the error.
    pub field: &'static str,
    /// The label as the config gave it.
    pub label: String,
}

/// What the init writes to /proc/self/attr before the exec.
#[derive(Debug, Default)]
pub struct LsmPlan {
    pub writes: Vec<LabelWrite>,
}

impl LsmPlan {
    /// The sentence for a failed write `idx` with `errno`.
    pub fn describe_failure(&self, idx: usize, errno: crate::sys::Errno) -> String {
        let Some(w) = self.writes.get(idx) else {
            return format!("applying an LSM label: {errno}");
        };
        // The kernel's ENOENT for an exec label: no such profile/context.
        let hint = match (w.field, errno.0) {
            ("process.apparmorProfile", libc::ENOENT) => {
                " (no such AppArmor profile is loaded: see /sys/kernel/security/apparmor/profiles)"
            }
            (_, libc::EINVAL) => " (the kernel does not know this label)",
            _ => "",
        };
        format!(
            "{}: applying {:?} ({}): {errno}{hint}",
            w.field,
            w.label,
            w.file.to_string_lossy()
        )
    }
}

pub fn plan(spec: &Spec) -> Result<LsmPlan> {
    let mut out = LsmPlan::default();
    let process = spec.process().as_ref();
    if let Some(p) = process
        .and_then(|p| p.apparmor_profile().as_deref())
        .filter(|p| !p.is_empty())
    {
        if !apparmor_enabled() {
            return Err(Error::config(
                "process.apparmorProfile",
                format!("{p:?} is set but AppArmor is not enabled on this host"),
            ));
        }
        let file = if Path::new("/proc/self/attr/apparmor/exec").exists() {
            "/proc/thread-self/attr/apparmor/exec"
        } else {
            "/proc/thread-self/attr/exec"
        };
        out.writes.push(LabelWrite {
            file: cstring(file)?,
            data: cstring(&format!("exec {p}"))?,
            field: "process.apparmorProfile",
            label: p.to_string(),
        });
    }
    if let Some(l) = process
        .and_then(|p| p.selinux_label().as_deref())
        .filter(|l| !l.is_empty())
    {
        if !selinux_enabled() {
            return Err(Error::config(
                "process.selinuxLabel",
                format!("{l:?} is set but SELinux is disabled or not supported on this host"),
            ));
        }
        out.writes.push(LabelWrite {
            file: cstring("/proc/thread-self/attr/exec")?,
            data: cstring(l)?,
            field: "process.selinuxLabel",
            label: l.to_string(),
        });
    }
    if let Some(l) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref())
        .filter(|l| !l.is_empty())
    {
        let why = if selinux_enabled() {
            "mount labels are not supported by this build of hull yet"
        } else {
            "SELinux is disabled or not supported on this host"
        };
        return Err(Error::config(
            "linux.mountLabel",
            format!("{l:?} is set but {why}"),
        ));
    }
    Ok(out)
}

/// Child side, before Ready: the labels take effect at the next execve of
/// this thread, so they can be set early, and a label the kernel refuses
/// then fails `create` (as with runc), not the process after `start`.
pub fn apply(p: &LsmPlan) -> ChildResult<()> {
    for (i, w) in p.writes.iter().enumerate() {
        sys::write_proc_file(&w.file, w.data.to_bytes()).step_at(Step::Lsm, i)?;
    }
    Ok(())
}
