//! `update`: change a live container's resource limits (runc's flags, or
//! a `linux.resources`-shaped JSON file with `-r`), validated like the
//! config, applied to the cgroup and recorded in state.json.

use std::path::PathBuf;

use super::Container;
use crate::cgroups::resources::{self, BlockIo, Cpu, Memory, Pids, Resources};
use crate::error::{Error, Result};
use crate::state::Status;

/// runc's `update` flags. Sizes accept runc's forms ("64m", "1G", "-1").
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// `-r FILE` (or `-`: stdin): a JSON LinuxResources; flags are then ignored.
    pub resources_file: Option<PathBuf>,
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub memory_reservation: Option<String>,
    pub kernel_memory: Option<String>,
    pub kernel_memory_tcp: Option<String>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
}

/// A size like docker's RAMInBytes: "1024", "64m", "1.5G", "512KiB"
/// (binary units); "-1" is unlimited.
pub fn parse_size(flag: &str, s: &str) -> Result<i64> {
    let bad = || Error::Usage(format!("invalid value for --{flag}: {s:?}"));
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let n = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let num: f64 = t[..n].parse().map_err(|_| bad())?;
    let unit = t[n..].trim().to_ascii_lowercase();
    let unit = unit.trim_end_matches('b').trim_end_matches('i');
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    Ok((num * mult) as i64)
}

impl UpdateOptions {
    /// The resources these options set (only those).
    pub fn resources(&self) -> Result<Resources> {
        if let Some(path) = &self.resources_file {
            let text = if path.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                    .map_err(|e| Error::io("stdin", e))?;
                s
            } else {
                std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?
            };
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| Error::ConfigParse {
                    path: path.clone(),
                    msg: format!("malformed JSON: {e}"),
                })?;
            return Resources::from_value(v, "linux.resources");
        }
        let size =
            |flag: &str, v: &Option<String>| v.as_deref().map(|s| parse_size(flag, s)).transpose();
        let mut r = Resources::default();
        let mem = Memory {
            limit: size("memory", &self.memory)?,
            swap: size("memory-swap", &self.memory_swap)?,
            reservation: size("memory-reservation", &self.memory_reservation)?,
            kernel: size("kernel-memory", &self.kernel_memory)?,
            kernel_tcp: size("kernel-memory-tcp", &self.kernel_memory_tcp)?,
            ..Default::default()
        };
        if mem != Memory::default() {
            r.memory = Some(mem);
        }
        let cpu = Cpu {
            shares: self.cpu_shares,
            quota: self.cpu_quota,
            period: self.cpu_period,
            realtime_period: self.cpu_rt_period,
            realtime_runtime: self.cpu_rt_runtime,
            cpus: self.cpuset_cpus.clone(),
            mems: self.cpuset_mems.clone(),
            ..Default::default()
        };
        if cpu != Cpu::default() {
            r.cpu = Some(cpu);
        }
        r.pids = self.pids_limit.map(|limit| Pids { limit });
        if let Some(w) = self.blkio_weight {
            r.block_io = Some(BlockIo {
                weight: Some(w),
                ..Default::default()
            });
        }
        Ok(r)
    }
}

impl Container {
    /// Apply `opts` to the live cgroup and record the new resources.
    pub fn update(&mut self, opts: &UpdateOptions) -> Result<()> {
        // The field names stay, but the values came from the command line
        // or `-r`, not from config.json.
        self.update_inner(opts).map_err(|e| match e {
            Error::Config { field, msg } => Error::Usage(format!(
                "container {:?}: update: {field}: {msg}",
                self.state.id
            )),
            e => e,
        })
    }

    fn update_inner(&mut self, opts: &UpdateOptions) -> Result<()> {
        let id = self.id().to_string();
        let _lock = self.store.lock(&id)?;
        if self.status() == Status::Stopped {
            return Err(Error::bad_state(&id, "cannot update a stopped container"));
        }
        let change = opts.resources()?;
        let mut merged = self.state.cgroup.resources.clone().unwrap_or_default();
        // Unlimited memory with no swap given: unlimited swap (runc).
        if let Some(m) = &change.memory {
            if m.limit == Some(-1) && m.swap.is_none() {
                merged.memory.get_or_insert_with(Default::default).swap = Some(-1);
            }
        }
        merged.merge(&change);
        resources::validate(&merged, &crate::cgroups::host_info(&merged)?)?;
        let mut cg = self.state.cgroup.clone();
        if let Some(unit) = &cg.unit {
            // systemd driver: the unit's properties first (systemd would
            // re-apply the old ones on daemon-reload), then the files.
            crate::cgroups::systemd::set_unit_properties(unit, &merged, cg.v2)?;
        }
        // Devices are left as they are: only the other limits change.
        let devices = std::mem::take(&mut merged.devices);
        cg.apply(&merged, None)?;
        merged.devices = devices;
        cg.resources = Some(merged);
        self.state.cgroup = cg;
        self.store.save(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_runc() {
        assert_eq!(parse_size("memory", "1024").unwrap(), 1024);
        assert_eq!(parse_size("memory", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("memory", "64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("memory", "1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("memory", "2KiB").unwrap(), 2048);
        assert_eq!(parse_size("memory", "-1").unwrap(), -1);
        assert!(parse_size("memory", "12x").is_err());
    }

    #[test]
    fn flags_set_only_their_fields() {
        let o = UpdateOptions {
            memory: Some("32m".into()),
            pids_limit: Some(10),
            ..Default::default()
        };
        let r = o.resources().unwrap();
        assert_eq!(r.memory.unwrap().limit, Some(32 << 20));
        assert!(r.cpu.is_none());
        assert_eq!(r.pids.unwrap().limit, 10);
    }
}
