//! The cgroup v1 backend: one directory per controller hierarchy.

use std::path::Path;

use super::devices::{self, DeviceRule};
use super::resources::{self, Resources, Write};
use super::{v2, Cgroup};
use crate::error::{Error, Result};

/// A new v1 cpuset cgroup starts with empty cpus/mems, and no process may
/// join it until they are set: copy them down from the parent at each level.
pub fn init_cpuset(mount: &Path, leaf: &Path) {
    let Ok(rel) = leaf.strip_prefix(mount) else {
        return;
    };
    let mut dir = mount.to_path_buf();
    for comp in rel.components() {
        let parent = dir.clone();
        dir.push(comp);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let cur = crate::sys::read_text(dir.join(file)).unwrap_or_default();
            if cur.trim().is_empty() {
                if let Ok(v) = crate::sys::read_text(parent.join(file)) {
                    let _ = std::fs::write(dir.join(file), v.trim());
                }
            }
        }
    }
}

/// Write one cgroup file (no create: a missing file is an error, the
/// kernel decides what exists). The error names the config field.
pub fn write(dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
    use std::io::Write as _;
    let path = dir.join(file);
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| write_error(&path, value, field, e))
}

fn write_error(path: &Path, value: &str, field: &str, e: std::io::Error) -> Error {
    let weight_file = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("blkio.") && n.contains("weight"));
    let why = match e.raw_os_error() {
        // Weight files come with a proportional I/O scheduler (BFQ, or CFQ
        // before 5.0); kernels without one have none (runc refuses too).
        Some(libc::ENOENT) if weight_file => {
            "this kernel has no blkio weight files (no BFQ or CFQ I/O scheduler: \
             see /sys/block/*/queue/scheduler)"
                .to_string()
        }
        Some(libc::ENOENT) => {
            "the file does not exist (controller or feature not available on this kernel)"
                .to_string()
        }
        Some(libc::EINVAL) => format!("the kernel rejected {value:?} (invalid value)"),
        _ => e.to_string(),
    };
    Error::config(
        field,
        format!("writing {value:?} to {}: {why}", path.display()),
    )
}

fn read_u64(path: &Path) -> Option<u64> {
    crate::sys::read_text(path).ok()?.trim().parse().ok()
}

/// Apply `res` (and the device rules, if given) to a v1 cgroup.
pub fn apply(cg: &Cgroup, res: &Resources, rules: Option<&[DeviceRule]>) -> Result<()> {
    // The host's facts are probed only for the limits that need them.
    let mem = cg.v1_dir("memory").filter(|_| res.memory.is_some());
    let facts = resources::V1Facts {
        current_memory_limit: mem
            .and_then(|d| read_u64(&d.join("memory.limit_in_bytes")))
            .unwrap_or(u64::MAX),
        swap_accounting: mem.is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists()),
        bfq: cg
            .v1_dir("blkio")
            .filter(|_| res.block_io.is_some())
            .is_some_and(|d| {
                !d.join("blkio.weight").exists() && d.join("blkio.bfq.weight").exists()
            }),
    };
    if res
        .memory
        .as_ref()
        .is_some_and(|m| m.kernel.is_some_and(|k| k != 0))
    {
        crate::logging::warn("linux.resources.memory.kernel is not supported by the kernel any more; ignored (like runc)");
    }
    for wr in resources::v1_writes(res, facts) {
        apply_one(cg, &wr)?;
    }
    if let Some(rules) = rules {
        match cg.v1_dir("devices") {
            Some(dir) => {
                // One open per file: each write(2) is one rule.
                let mut open: Option<(&str, std::fs::File)> = None;
                for (file, line) in devices::v1_writes(rules) {
                    if open.as_ref().is_none_or(|(f, _)| *f != file) {
                        let path = dir.join(file);
                        let f = std::fs::OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .map_err(|e| write_error(&path, &line, "linux.resources.devices", e))?;
                        open = Some((file, f));
                    }
                    if let Some((_, f)) = open.as_mut() {
                        std::io::Write::write_all(f, line.as_bytes()).map_err(|e| {
                            write_error(&dir.join(file), &line, "linux.resources.devices", e)
                        })?;
                    }
                }
            }
            None => {
                // Like runc: no devices controller is a security problem.
                return Err(Error::config(
                    "linux.resources.devices",
                    "the devices cgroup controller is not mounted on this host",
                ));
            }
        }
    }
    Ok(())
}

fn apply_one(cg: &Cgroup, wr: &Write) -> Result<()> {
    if let Some(dir) = cg.v1_dir(wr.controller) {
        write(dir, &wr.file, &wr.value, &wr.field)?;
        if wr.file == "cpu.shares" {
            // The kernel clamps; runc reports a clamped value as an error.
            let got = read_u64(&dir.join("cpu.shares"));
            if got.is_some_and(|g| g.to_string() != wr.value) {
                return Err(Error::config(
                    &wr.field,
                    format!(
                        "the kernel set cpu.shares to {} instead of {}",
                        got.unwrap_or(0),
                        wr.value
                    ),
                ));
            }
        }
        return Ok(());
    }
    // Hybrid hosts may have a controller only on the cgroup2 mount (this
    // is how hugetlb ends up on kernels that keep the rest on v1).
    if wr.controller == "hugetlb" {
        if let Some(dir) = cg.unified.as_deref() {
            if let Some(mount) = v2_mount_of(dir) {
                v2::enable_controllers(&mount, dir, Some("hugetlb"));
                let file = wr.file.replace(".limit_in_bytes", ".max");
                return write(dir, &file, &wr.value, &wr.field);
            }
        }
    }
    // As runc: a limit that cannot be applied fails the create ("cannot
    // set net_cls limit: container could not join or create cgroup").
    Err(Error::config(
        &wr.field,
        format!(
            "the {} cgroup controller is not mounted on this host",
            wr.controller
        ),
    ))
}

/// The mount point of the cgroup2 hierarchy holding `dir`.
fn v2_mount_of(dir: &Path) -> Option<std::path::PathBuf> {
    let (_, hier) = super::discover().ok()?;
    hier.into_iter()
        .filter(|h| h.v2 && dir.starts_with(&h.mount))
        .map(|h| h.mount)
        .next()
}

/// Freeze or thaw through freezer.state and wait for the kernel to get
/// there (FREEZING → FROZEN may take a moment with busy tasks).
pub fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let file = dir.join("freezer.state");
    for attempt in 0..1000 {
        if attempt % 50 == 0 {
            std::fs::write(&file, want).map_err(|e| Error::io(&file, e))?;
        }
        let now = crate::sys::read_text(&file).map_err(|e| Error::io(&file, e))?;
        if now.trim() == want {
            return Ok(());
        }
        crate::sys::nanosleep_ms(1);
    }
    // Give up frozen halfway: thaw rather than leave it FREEZING.
    let _ = std::fs::write(&file, "THAWED");
    Err(Error::Usage(format!(
        "{}: the cgroup did not reach {want}",
        file.display()
    )))
}
