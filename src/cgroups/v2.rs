//! The cgroup v2 backend: one directory; controllers enabled down the
//! path through cgroup.subtree_control; devices by an eBPF program.
//!
//! Everything takes paths, never /sys/fs/cgroup, so the same code runs
//! against a cgroup2-shaped tree in a temporary directory in tests.

use std::path::Path;

use super::devices::{self, DeviceRule};
use super::resources::{self, Resources};
use super::v1::write;
use super::Cgroup;
use crate::error::{Error, Result};

/// Enable controllers for the subtree at every level from `mount` down to
/// `leaf`'s parent, like runc: all of each level's cgroup.controllers (or
/// only `only`), falling back to one at a time; failures are left to the
/// writes that need the controller.
pub fn enable_controllers(mount: &Path, leaf: &Path, only: Option<&str>) {
    let Ok(rel) = leaf.strip_prefix(mount) else {
        return;
    };
    let mut dir = mount.to_path_buf();
    for comp in rel.components() {
        let avail = crate::sys::read_text(dir.join("cgroup.controllers")).unwrap_or_default();
        let ctrls: Vec<&str> = avail
            .split_whitespace()
            .filter(|c| only.is_none_or(|o| o == *c))
            .collect();
        if !ctrls.is_empty() {
            let all = ctrls
                .iter()
                .map(|c| format!("+{c}"))
                .collect::<Vec<_>>()
                .join(" ");
            let file = dir.join("cgroup.subtree_control");
            if std::fs::write(&file, &all).is_err() {
                for c in &ctrls {
                    let _ = std::fs::write(&file, format!("+{c}"));
                }
            }
        }
        dir.push(comp);
    }
}

/// Apply `res` (and the device rules, if given) to the cgroup2 directory.
pub fn apply(cg: &Cgroup, res: &Resources, rules: Option<&[DeviceRule]>) -> Result<()> {
    let dir = cg
        .unified
        .as_deref()
        .ok_or_else(|| Error::Usage("no cgroup2 directory recorded".into()))?;
    apply_dir(dir, res, rules)
}

/// The v2 writes for `res` into `dir`, then the device filter.
pub fn apply_dir(dir: &Path, res: &Resources, rules: Option<&[DeviceRule]>) -> Result<()> {
    for f in resources::v2_ignored(res) {
        crate::logging::warn(&format!(
            "{f}: not supported with cgroup v2; ignored (like runc)"
        ));
    }
    let bfq = dir.join("io.bfq.weight").exists();
    let enabled = dir
        .parent()
        .and_then(|p| crate::sys::read_text(p.join("cgroup.subtree_control")).ok())
        .unwrap_or_default();
    for wr in resources::v2_writes(res, bfq)? {
        if wr.controller != "cgroup" && !dir.join(&wr.file).exists() {
            let why = if enabled.split_whitespace().any(|c| c == wr.controller) {
                format!("{} does not exist", wr.file)
            } else {
                format!(
                    "the {} controller is not enabled for this cgroup",
                    wr.controller
                )
            };
            return Err(Error::config(
                &wr.field,
                format!("{}: {why}", dir.display()),
            ));
        }
        write(dir, &wr.file, &wr.value, &wr.field)?;
    }
    if let Some(rules) = rules {
        attach_device_filter(dir, rules)?;
    }
    Ok(())
}

/// Compile the rules, load the program and attach it to `dir`.
pub fn attach_device_filter(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    let prog = devices::compile(rules);
    let fd = super::bpf::load_device_program(&prog).map_err(|(e, log)| {
        Error::config(
            "linux.resources.devices",
            format!(
                "loading the eBPF device filter: {e}{}",
                if log.is_empty() {
                    String::new()
                } else {
                    format!(" ({log})")
                }
            ),
        )
    })?;
    let cgroup = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    let cgroup = std::os::fd::OwnedFd::from(cgroup);
    super::bpf::attach_device_program(&cgroup, &fd).map_err(|e| {
        Error::config(
            "linux.resources.devices",
            format!("attaching the eBPF device filter to {}: {e}", dir.display()),
        )
    })
}

/// Freeze or thaw through cgroup.freeze and wait for cgroup.events to
/// report it.
pub fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let file = dir.join("cgroup.freeze");
    std::fs::write(&file, if frozen { "1" } else { "0" }).map_err(|e| Error::io(&file, e))?;
    let want = if frozen { "frozen 1" } else { "frozen 0" };
    let events = dir.join("cgroup.events");
    for _ in 0..2000 {
        match crate::sys::read_text(&events) {
            Ok(t) if t.lines().any(|l| l.trim() == want) => return Ok(()),
            // No cgroup.events (not a kernel cgroup): nothing to wait for.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            _ => crate::sys::nanosleep_ms(1),
        }
    }
    if frozen {
        let _ = std::fs::write(&file, "0");
    }
    Err(Error::Usage(format!(
        "{}: the cgroup did not reach {want:?}",
        events.display()
    )))
}
