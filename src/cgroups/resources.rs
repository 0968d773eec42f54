//! `linux.resources`: hull's own serde model of it (the OCI field names, so
//! the same type reads config.json, `update -r FILE` and state.json),
//! validation that names the field, and the translation into the files
//! each cgroup version wants, with runc's v1→v2 conversions.
//!
//! The translation is pure: it returns a list of [`Write`]s, which the v1
//! and v2 backends carry out in order. Tests check the lists directly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::devices::DeviceRule;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    #[serde(default, rename = "blockIO", skip_serializing_if = "Option::is_none")]
    pub block_io: Option<BlockIo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hugepage_limits: Vec<HugepageLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rdma: BTreeMap<String, Rdma>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unified: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<i64>,
    #[serde(default, rename = "kernelTCP", skip_serializing_if = "Option::is_none")]
    pub kernel_tcp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    #[serde(
        default,
        rename = "disableOOMKiller",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_oom_killer: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_hierarchy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_before_update: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_runtime: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pids {
    pub limit: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockIo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_read_bps_device: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_write_bps_device: Vec<ThrottleDevice>,
    #[serde(
        default,
        rename = "throttleReadIOPSDevice",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_read_iops_device: Vec<ThrottleDevice>,
    #[serde(
        default,
        rename = "throttleWriteIOPSDevice",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_write_iops_device: Vec<ThrottleDevice>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleDevice {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HugepageLimit {
    pub page_size: String,
    pub limit: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    #[serde(default, rename = "classID", skip_serializing_if = "Option::is_none")]
    pub class_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priorities: Vec<InterfacePriority>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfacePriority {
    pub name: String,
    pub priority: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rdma {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hca_handles: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hca_objects: Option<u32>,
}

impl Resources {
    /// From the spec's `linux.resources` (already parsed by oci-spec).
    pub fn from_spec(spec: &oci_spec::runtime::Spec) -> Result<Resources> {
        let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) else {
            return Ok(Resources::default());
        };
        let v =
            serde_json::to_value(r).map_err(|e| Error::config("linux.resources", e.to_string()))?;
        Resources::from_value(v, "linux.resources")
    }

    /// From JSON (e.g. `update -r FILE`); errors name the field under `prefix`.
    pub fn from_value(v: serde_json::Value, prefix: &str) -> Result<Resources> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                prefix.to_string()
            } else {
                format!("{prefix}.{path}")
            };
            Error::config(field, e.inner().to_string())
        })
    }

    /// Overlay the fields `other` sets onto `self` (for `update`).
    pub fn merge(&mut self, other: &Resources) {
        macro_rules! take {
            ($dst:expr, $src:expr, $($f:ident),*) => {
                $( if $src.$f.is_some() { $dst.$f = $src.$f.clone(); } )*
            };
        }
        if let Some(m) = &other.memory {
            let d = self.memory.get_or_insert_with(Default::default);
            take!(
                d,
                m,
                limit,
                reservation,
                swap,
                kernel,
                kernel_tcp,
                swappiness,
                disable_oom_killer,
                use_hierarchy,
                check_before_update
            );
        }
        if let Some(c) = &other.cpu {
            let d = self.cpu.get_or_insert_with(Default::default);
            take!(
                d,
                c,
                shares,
                quota,
                burst,
                period,
                realtime_runtime,
                realtime_period,
                cpus,
                mems,
                idle
            );
        }
        if other.pids.is_some() {
            self.pids = other.pids.clone();
        }
        if let Some(b) = &other.block_io {
            let d = self.block_io.get_or_insert_with(Default::default);
            take!(d, b, weight, leaf_weight);
            for (dst, src) in [(&mut d.weight_device, &b.weight_device)] {
                if !src.is_empty() {
                    *dst = src.clone();
                }
            }
            for (dst, src) in [
                (&mut d.throttle_read_bps_device, &b.throttle_read_bps_device),
                (
                    &mut d.throttle_write_bps_device,
                    &b.throttle_write_bps_device,
                ),
                (
                    &mut d.throttle_read_iops_device,
                    &b.throttle_read_iops_device,
                ),
                (
                    &mut d.throttle_write_iops_device,
                    &b.throttle_write_iops_device,
                ),
            ] {
                if !src.is_empty() {
                    *dst = src.clone();
                }
            }
        }
        if !other.hugepage_limits.is_empty() {
            self.hugepage_limits = other.hugepage_limits.clone();
        }
        if other.network.is_some() {
            self.network = other.network.clone();
        }
        self.rdma
            .extend(other.rdma.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.unified
            .extend(other.unified.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

// ---------------------------------------------------------------------------
// Conversions (runc's numbers)
// ---------------------------------------------------------------------------

/// cpu.shares (v1, 2..262144) → cpu.weight (v2, 1..10000), as runc:
/// `1 + ((shares-2)*9999)/262142`; 0 means unset.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// blkio.weight (v1, 10..1000) → io.weight (v2, 1..10000), as runc:
/// `1 + (weight-10)*9999/990`; 0 means unset.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// OCI memory.swap is memory+swap (v1 memsw); v2 memory.swap.max is swap
/// alone. runc's ConvertMemorySwapToCgroupV2Value: returns the v2 value
/// (-1 = max, 0 = leave unset).
pub fn swap_to_v2(swap: i64, limit: i64) -> std::result::Result<i64, &'static str> {
    if limit == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if limit == 0 || limit == -1 {
        return Err("unable to set a swap limit without a memory limit");
    }
    if limit < 0 {
        return Err("invalid memory limit");
    }
    if swap < limit {
        return Err("memory+swap limit must be >= the memory limit");
    }
    Ok(swap - limit)
}

/// A v2 number: -1 → "max", else the number.
fn v2_num(v: i64) -> String {
    if v == -1 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// What validation needs to know about the host.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// Pure cgroup v2 (unified) host.
    pub v2: bool,
    /// CPUs and memory nodes the container may use (the root cpuset).
    pub cpus: Vec<u32>,
    pub mems: Vec<u32>,
    /// Controllers available in the v2 hierarchy (for `unified` keys).
    pub v2_controllers: Vec<String>,
    /// Supported huge page sizes, as in file names ("2MB", "1GB").
    pub hugepage_sizes: Vec<String>,
}

/// Parse a cpuset list ("0-3,5") into numbers.
pub fn parse_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if a > b || b - a > 65536 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

/// Huge page size as the kernel names it in cgroup files, from the
/// /sys/kernel/mm/hugepages directory name ("hugepages-2048kB" → "2MB").
pub fn hugepage_name(kb: u64) -> String {
    if kb >= 1 << 20 && kb.is_multiple_of(1 << 20) {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb.is_multiple_of(1 << 10) {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

/// `swappiness: -1` as Go's uint64 (18446744073709551615): engines write it
/// for "the kernel's default", and runc skips it.
pub const SWAPPINESS_UNSET: u64 = u64::MAX;

/// Check every resource value before anything is created; errors name the
/// field (`linux.resources.memory.limit: must be >= 0 or -1 (unlimited)`).
pub fn validate(r: &Resources, host: &Host) -> Result<()> {
    let f = |name: &str| format!("linux.resources.{name}");
    let limit_ok = |name: &str, v: Option<i64>| -> Result<()> {
        match v {
            Some(v) if v < -1 => Err(Error::config(
                f(name),
                format!("must be >= 0 or -1 (unlimited), got {v}"),
            )),
            _ => Ok(()),
        }
    };
    if let Some(m) = &r.memory {
        limit_ok("memory.limit", m.limit)?;
        limit_ok("memory.reservation", m.reservation)?;
        limit_ok("memory.swap", m.swap)?;
        // memory.kernel is not checked: it is ignored (like runc). kernelTCP
        // is, as hull still writes it on v1 (runc 1.1.5 ignores it too).
        limit_ok("memory.kernelTCP", m.kernel_tcp)?;
        if let Some(s) = m.swappiness.filter(|&s| s != SWAPPINESS_UNSET) {
            if s > 100 {
                return Err(Error::config(
                    f("memory.swappiness"),
                    format!("must be 0..100, got {s}"),
                ));
            }
        }
        if let (Some(l), Some(s)) = (m.limit, m.swap) {
            if l > 0 && s > 0 && s < l {
                return Err(Error::config(
                    f("memory.swap"),
                    format!("is memory+swap and must be >= memory.limit ({s} < {l})"),
                ));
            }
        }
    }
    if let Some(c) = &r.cpu {
        if let Some(s) = c.shares {
            if s != 0 && !(2..=262144).contains(&s) {
                return Err(Error::config(
                    f("cpu.shares"),
                    format!("must be 2..262144, got {s}"),
                ));
            }
        }
        if let Some(q) = c.quota {
            if q < -1 || (0 < q && q < 1000) {
                return Err(Error::config(
                    f("cpu.quota"),
                    format!("must be >= 1000 (µs) or -1 (unlimited), got {q}"),
                ));
            }
        }
        if let Some(p) = c.period {
            if p != 0 && !(1000..=1_000_000).contains(&p) {
                return Err(Error::config(
                    f("cpu.period"),
                    format!("must be 1000..1000000 (µs), got {p}"),
                ));
            }
        }
        if let Some(rt) = c.realtime_runtime {
            if rt < -1 {
                return Err(Error::config(
                    f("cpu.realtimeRuntime"),
                    format!("must be >= 0 or -1, got {rt}"),
                ));
            }
        }
        if host.v2
            && (c.realtime_runtime.is_some_and(|v| v != 0)
                || c.realtime_period.is_some_and(|v| v != 0))
        {
            return Err(Error::config(
                f("cpu.realtimeRuntime"),
                "realtime scheduling is not supported with cgroup v2",
            ));
        }
        if let Some(i) = c.idle {
            if i != 0 && i != 1 {
                return Err(Error::config(
                    f("cpu.idle"),
                    format!("must be 0 or 1, got {i}"),
                ));
            }
        }
        for (name, val, have) in [
            ("cpu.cpus", &c.cpus, &host.cpus),
            ("cpu.mems", &c.mems, &host.mems),
        ] {
            let Some(s) = val.as_deref().filter(|s| !s.trim().is_empty()) else {
                continue;
            };
            let Some(list) = parse_list(s) else {
                return Err(Error::config(
                    f(name),
                    format!("{s:?} is not a list like \"0-2,4\""),
                ));
            };
            if !have.is_empty() {
                if let Some(bad) = list.iter().find(|n| !have.contains(n)) {
                    return Err(Error::config(
                        f(name),
                        format!(
                            "{s:?}: {bad} is not available on this host (have {})",
                            fmt_list(have)
                        ),
                    ));
                }
            }
        }
    }
    if let Some(b) = &r.block_io {
        let weight_ok = |name: String, w: Option<u16>| -> Result<()> {
            match w {
                Some(w) if w != 0 && !(10..=1000).contains(&w) => {
                    Err(Error::config(name, format!("must be 10..1000, got {w}")))
                }
                _ => Ok(()),
            }
        };
        weight_ok(f("blockIO.weight"), b.weight)?;
        weight_ok(f("blockIO.leafWeight"), b.leaf_weight)?;
        for (i, d) in b.weight_device.iter().enumerate() {
            weight_ok(f(&format!("blockIO.weightDevice[{i}].weight")), d.weight)?;
            weight_ok(
                f(&format!("blockIO.weightDevice[{i}].leafWeight")),
                d.leaf_weight,
            )?;
        }
        for (name, list) in [
            ("throttleReadBpsDevice", &b.throttle_read_bps_device),
            ("throttleWriteBpsDevice", &b.throttle_write_bps_device),
            ("throttleReadIOPSDevice", &b.throttle_read_iops_device),
            ("throttleWriteIOPSDevice", &b.throttle_write_iops_device),
        ] {
            for (i, d) in list.iter().enumerate() {
                if d.major < 0 || d.minor < 0 {
                    return Err(Error::config(
                        f(&format!("blockIO.{name}[{i}]")),
                        "major and minor must be >= 0",
                    ));
                }
            }
        }
    }
    for (i, h) in r.hugepage_limits.iter().enumerate() {
        if h.limit < 0 {
            return Err(Error::config(
                f(&format!("hugepageLimits[{i}].limit")),
                format!("must be >= 0, got {}", h.limit),
            ));
        }
        if !host.hugepage_sizes.is_empty() && !host.hugepage_sizes.contains(&h.page_size) {
            return Err(Error::config(
                f(&format!("hugepageLimits[{i}].pageSize")),
                format!(
                    "{:?} is not a huge page size of this host (have {})",
                    h.page_size,
                    host.hugepage_sizes.join(", ")
                ),
            ));
        }
    }
    for (i, d) in r.devices.iter().enumerate() {
        d.validate(&f(&format!("devices[{i}]")))?;
    }
    if !r.unified.is_empty() && !host.v2 {
        return Err(Error::config(
            f("unified"),
            "needs a cgroup v2 host (this host's controllers are on cgroup v1)",
        ));
    }
    for k in r.unified.keys() {
        let field = f(&format!("unified.{k}"));
        let Some((ctrl, file)) = k.split_once('.') else {
            return Err(Error::config(
                field,
                "not a cgroup v2 file name (<controller>.<file>)",
            ));
        };
        if k.contains('/') || ctrl.is_empty() || file.is_empty() {
            return Err(Error::config(
                field,
                "not a cgroup v2 file name (<controller>.<file>)",
            ));
        }
        if ctrl == "cgroup" {
            if !matches!(file, "max.depth" | "max.descendants") {
                return Err(Error::config(
                    field,
                    "only cgroup.max.depth and cgroup.max.descendants may be set",
                ));
            }
        } else if !host.v2_controllers.iter().any(|c| c == ctrl) {
            return Err(Error::config(
                field,
                format!(
                    "unknown controller {ctrl:?} (available: {})",
                    host.v2_controllers.join(" ")
                ),
            ));
        }
    }
    Ok(())
}

fn fmt_list(l: &[u32]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < l.len() {
        let mut j = i;
        while j + 1 < l.len() && l[j + 1] == l[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            l[i].to_string()
        } else {
            format!("{}-{}", l[i], l[j])
        });
        i = j + 1;
    }
    out.join(",")
}

// ---------------------------------------------------------------------------
// Translation into file writes
// ---------------------------------------------------------------------------

/// One cgroup file write: which controller's directory (v1; on v2 all go
/// to the one directory), the file, the value, and the config field it
/// comes from (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: String,
    pub value: String,
    pub field: String,
}

fn w(
    controller: &'static str,
    file: impl Into<String>,
    value: impl ToString,
    field: &str,
) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
        field: format!("linux.resources.{field}"),
    }
}

/// What the v1 planner needs to know about the live cgroup.
#[derive(Debug, Clone, Copy, Default)]
pub struct V1Facts {
    /// memory.limit_in_bytes now (decides the memory/memsw write order).
    pub current_memory_limit: u64,
    /// memsw files exist (swap accounting).
    pub swap_accounting: bool,
    /// Only the BFQ weight files exist (blkio.bfq.weight).
    pub bfq: bool,
}

/// cpu.idle and the cpuset: the same files on v1 and v2.
fn idle_and_cpuset_writes(c: &Cpu, out: &mut Vec<Write>) {
    if let Some(i) = c.idle {
        out.push(w("cpu", "cpu.idle", i, "cpu.idle"));
    }
    if let Some(s) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
        out.push(w("cpuset", "cpuset.cpus", s, "cpu.cpus"));
    }
    if let Some(s) = c.mems.as_deref().filter(|s| !s.is_empty()) {
        out.push(w("cpuset", "cpuset.mems", s, "cpu.mems"));
    }
}

/// The v1 writes for `r`, in order. Devices are separate (devices.rs).
pub fn v1_writes(r: &Resources, facts: V1Facts) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(c) = &r.cpu {
        // Realtime first (runc sets it before the tasks join).
        if let Some(p) = c.realtime_period.filter(|&p| p != 0) {
            out.push(w("cpu", "cpu.rt_period_us", p, "cpu.realtimePeriod"));
        }
        if let Some(rt) = c.realtime_runtime.filter(|&v| v != 0) {
            out.push(w("cpu", "cpu.rt_runtime_us", rt, "cpu.realtimeRuntime"));
        }
        if let Some(s) = c.shares.filter(|&s| s != 0) {
            out.push(w("cpu", "cpu.shares", s, "cpu.shares"));
        }
        if let Some(p) = c.period.filter(|&p| p != 0) {
            out.push(w("cpu", "cpu.cfs_period_us", p, "cpu.period"));
        }
        if let Some(q) = c.quota.filter(|&q| q != 0) {
            out.push(w("cpu", "cpu.cfs_quota_us", q, "cpu.quota"));
        }
        if let Some(b) = c.burst {
            out.push(w("cpu", "cpu.cfs_burst_us", b, "cpu.burst"));
        }
        idle_and_cpuset_writes(c, &mut out);
    }
    if let Some(m) = &r.memory {
        let limit = m.limit.unwrap_or(0);
        let mut swap = m.swap.unwrap_or(0);
        // Unlimited memory with swap unset means unlimited swap too.
        if limit == -1 && swap == 0 && facts.swap_accounting {
            swap = -1;
        }
        let mem_w =
            (limit != 0).then(|| w("memory", "memory.limit_in_bytes", limit, "memory.limit"));
        let swap_w = (swap != 0 && facts.swap_accounting)
            .then(|| w("memory", "memory.memsw.limit_in_bytes", swap, "memory.swap"));
        // The kernel requires memory <= memsw at every step: raise memsw
        // first when growing, lower memory first when shrinking.
        let swap_first =
            limit != 0 && swap != 0 && (swap == -1 || facts.current_memory_limit < swap as u64);
        if swap_first {
            out.extend(swap_w);
            out.extend(mem_w);
        } else {
            out.extend(mem_w);
            out.extend(swap_w);
        }
        if let Some(v) = m.reservation.filter(|&v| v != 0) {
            out.push(w(
                "memory",
                "memory.soft_limit_in_bytes",
                v,
                "memory.reservation",
            ));
        }
        if let Some(v) = m.kernel_tcp.filter(|&v| v != 0) {
            out.push(w(
                "memory",
                "memory.kmem.tcp.limit_in_bytes",
                v,
                "memory.kernelTCP",
            ));
        }
        if let Some(v) = m.swappiness.filter(|&v| v != SWAPPINESS_UNSET) {
            out.push(w("memory", "memory.swappiness", v, "memory.swappiness"));
        }
        if m.disable_oom_killer == Some(true) {
            out.push(w(
                "memory",
                "memory.oom_control",
                1,
                "memory.disableOOMKiller",
            ));
        }
        if m.use_hierarchy == Some(true) {
            out.push(w(
                "memory",
                "memory.use_hierarchy",
                1,
                "memory.useHierarchy",
            ));
        }
    }
    if let Some(p) = &r.pids {
        if p.limit != 0 {
            let v = if p.limit > 0 {
                p.limit.to_string()
            } else {
                "max".into()
            };
            out.push(w("pids", "pids.max", v, "pids.limit"));
        }
    }
    if let Some(b) = &r.block_io {
        let (wf, wdf) = if facts.bfq {
            ("blkio.bfq.weight", "blkio.bfq.weight_device")
        } else {
            ("blkio.weight", "blkio.weight_device")
        };
        if let Some(x) = b.weight.filter(|&x| x != 0) {
            out.push(w("blkio", wf, x, "blockIO.weight"));
        }
        if let Some(x) = b.leaf_weight.filter(|&x| x != 0) {
            out.push(w("blkio", "blkio.leaf_weight", x, "blockIO.leafWeight"));
        }
        for (i, d) in b.weight_device.iter().enumerate() {
            if let Some(x) = d.weight.filter(|&x| x != 0) {
                let field = format!("blockIO.weightDevice[{i}]");
                out.push(w(
                    "blkio",
                    wdf,
                    format!("{}:{} {x}", d.major, d.minor),
                    &field,
                ));
            }
            if let Some(x) = d.leaf_weight.filter(|&x| x != 0) {
                let field = format!("blockIO.weightDevice[{i}]");
                let v = format!("{}:{} {x}", d.major, d.minor);
                out.push(w("blkio", "blkio.leaf_weight_device", v, &field));
            }
        }
        for (name, file, list) in throttles(b) {
            for (i, d) in list.iter().enumerate() {
                let v = format!("{}:{} {}", d.major, d.minor, d.rate);
                out.push(w(
                    "blkio",
                    format!("blkio.throttle.{file}_device"),
                    v,
                    &format!("blockIO.{name}[{i}]"),
                ));
            }
        }
    }
    for (i, h) in r.hugepage_limits.iter().enumerate() {
        let file = format!("hugetlb.{}.limit_in_bytes", h.page_size);
        out.push(w("hugetlb", file, h.limit, &format!("hugepageLimits[{i}]")));
    }
    if let Some(n) = &r.network {
        if let Some(c) = n.class_id {
            out.push(w("net_cls", "net_cls.classid", c, "network.classID"));
        }
        for (i, p) in n.priorities.iter().enumerate() {
            let v = format!("{} {}", p.name, p.priority);
            out.push(w(
                "net_prio",
                "net_prio.ifpriomap",
                v,
                &format!("network.priorities[{i}]"),
            ));
        }
    }
    out.extend(rdma_writes(r));
    out
}

fn throttles(b: &BlockIo) -> [(&'static str, &'static str, &Vec<ThrottleDevice>); 4] {
    [
        (
            "throttleReadBpsDevice",
            "read_bps",
            &b.throttle_read_bps_device,
        ),
        (
            "throttleWriteBpsDevice",
            "write_bps",
            &b.throttle_write_bps_device,
        ),
        (
            "throttleReadIOPSDevice",
            "read_iops",
            &b.throttle_read_iops_device,
        ),
        (
            "throttleWriteIOPSDevice",
            "write_iops",
            &b.throttle_write_iops_device,
        ),
    ]
}

fn rdma_writes(r: &Resources) -> Vec<Write> {
    r.rdma
        .iter()
        .filter(|(_, v)| v.hca_handles.is_some() || v.hca_objects.is_some())
        .map(|(dev, v)| {
            let mut s = dev.clone();
            if let Some(h) = v.hca_handles {
                s.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = v.hca_objects {
                s.push_str(&format!(" hca_object={o}"));
            }
            w("rdma", "rdma.max", s, &format!("rdma.{dev}"))
        })
        .collect()
}

/// The v2 writes for `r`, in order (runc's fs2). `bfq`: io.bfq.weight
/// exists (then the blkio weight goes there unconverted, like runc).
/// Devices are separate (an eBPF program).
pub fn v2_writes(r: &Resources, bfq: bool) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    if let Some(c) = &r.cpu {
        if let Some(s) = c.shares.filter(|&s| s != 0) {
            out.push(w("cpu", "cpu.weight", shares_to_weight(s), "cpu.shares"));
        }
        let quota = c.quota.unwrap_or(0);
        let period = c.period.unwrap_or(0);
        if quota != 0 || period != 0 {
            let mut v = if quota > 0 {
                quota.to_string()
            } else {
                "max".to_string()
            };
            if period != 0 {
                v.push_str(&format!(" {period}"));
            }
            out.push(w("cpu", "cpu.max", v, "cpu.quota"));
        }
        if let Some(b) = c.burst {
            out.push(w("cpu", "cpu.max.burst", b, "cpu.burst"));
        }
        idle_and_cpuset_writes(c, &mut out);
    }
    if let Some(m) = &r.memory {
        let limit = m.limit.unwrap_or(0);
        let memsw = m.swap.unwrap_or(0);
        let swap = swap_to_v2(memsw, limit)
            .map_err(|e| Error::config("linux.resources.memory.swap", e))?;
        // 0 is "unset", except when memory+swap equals the memory limit:
        // then no swap at all (runc writes 0 too).
        if swap != 0 || memsw > 0 {
            out.push(w("memory", "memory.swap.max", v2_num(swap), "memory.swap"));
        }
        if limit != 0 {
            out.push(w("memory", "memory.max", v2_num(limit), "memory.limit"));
        }
        if let Some(v) = m.reservation.filter(|&v| v != 0) {
            out.push(w("memory", "memory.low", v2_num(v), "memory.reservation"));
        }
    }
    if let Some(p) = &r.pids {
        if p.limit != 0 {
            let v = if p.limit > 0 {
                p.limit.to_string()
            } else {
                "max".into()
            };
            out.push(w("pids", "pids.max", v, "pids.limit"));
        }
    }
    if let Some(b) = &r.block_io {
        if let Some(x) = b.weight.filter(|&x| x != 0) {
            if bfq {
                out.push(w("io", "io.bfq.weight", x, "blockIO.weight"));
            } else {
                out.push(w(
                    "io",
                    "io.weight",
                    blkio_weight_to_io_weight(x),
                    "blockIO.weight",
                ));
            }
        }
        if bfq {
            for (i, d) in b.weight_device.iter().enumerate() {
                if let Some(x) = d.weight.filter(|&x| x != 0) {
                    let v = format!("{}:{} {x}", d.major, d.minor);
                    out.push(w(
                        "io",
                        "io.bfq.weight",
                        v,
                        &format!("blockIO.weightDevice[{i}]"),
                    ));
                }
            }
        }
        for (name, file, list) in throttles(b) {
            let key = match file {
                "read_bps" => "rbps",
                "write_bps" => "wbps",
                "read_iops" => "riops",
                _ => "wiops",
            };
            for (i, d) in list.iter().enumerate() {
                let v = format!("{}:{} {key}={}", d.major, d.minor, d.rate);
                out.push(w("io", "io.max", v, &format!("blockIO.{name}[{i}]")));
            }
        }
    }
    for (i, h) in r.hugepage_limits.iter().enumerate() {
        let file = format!("hugetlb.{}.max", h.page_size);
        out.push(w("hugetlb", file, h.limit, &format!("hugepageLimits[{i}]")));
    }
    out.extend(rdma_writes(r));
    for (k, v) in &r.unified {
        let ctrl = match k.split_once('.').map(|p| p.0) {
            Some("cpu") => "cpu",
            Some("cpuset") => "cpuset",
            Some("memory") => "memory",
            Some("io") => "io",
            Some("pids") => "pids",
            Some("hugetlb") => "hugetlb",
            Some("rdma") => "rdma",
            Some("misc") => "misc",
            _ => "cgroup",
        };
        out.push(w(ctrl, k.clone(), v, &format!("unified.{k}")));
    }
    Ok(out)
}

/// Fields v2 cannot express: a warning each (runc ignores them too).
pub fn v2_ignored(r: &Resources) -> Vec<&'static str> {
    let mut out = Vec::new();
    if let Some(m) = &r.memory {
        if m.kernel.is_some_and(|v| v != 0) {
            out.push("linux.resources.memory.kernel");
        }
        if m.kernel_tcp.is_some_and(|v| v != 0) {
            out.push("linux.resources.memory.kernelTCP");
        }
        if m.swappiness.is_some() {
            out.push("linux.resources.memory.swappiness");
        }
        if m.disable_oom_killer == Some(true) {
            out.push("linux.resources.memory.disableOOMKiller");
        }
    }
    if r.network.is_some() {
        out.push("linux.resources.network");
    }
    if r.block_io.as_ref().is_some_and(|b| b.leaf_weight.is_some()) {
        out.push("linux.resources.blockIO.leafWeight");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_shares_to_weight_matches_runc() {
        // Values from runc's TestConvertCPUSharesToCgroupV2Value.
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(100), 4);
    }

    #[test]
    fn blkio_weight_to_io_weight_matches_runc() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(100), 910);
    }

    #[test]
    fn swap_semantics_match_runc() {
        // runc's TestConvertMemorySwapToCgroupV2Value cases.
        assert_eq!(swap_to_v2(0, 0), Ok(0));
        assert_eq!(swap_to_v2(-1, 0), Ok(-1));
        assert_eq!(swap_to_v2(-1, -1), Ok(-1));
        assert_eq!(swap_to_v2(0, -1), Ok(-1));
        assert_eq!(swap_to_v2(-1, 1000), Ok(-1));
        assert_eq!(swap_to_v2(0, 1000), Ok(0));
        assert_eq!(swap_to_v2(1000, 1000), Ok(0));
        assert_eq!(swap_to_v2(1500, 1000), Ok(500));
        assert!(swap_to_v2(999, 1000).is_err());
        assert!(swap_to_v2(1000, 0).is_err());
        assert!(swap_to_v2(1000, -1).is_err());
    }

    fn res(v: serde_json::Value) -> Resources {
        Resources::from_value(v, "linux.resources").unwrap()
    }

    /// memory+swap equal to the memory limit means no swap: memory.swap.max
    /// is written as 0, not left at the kernel's "max" (found in the v2
    /// guest: such containers could swap without bound).
    #[test]
    fn v2_swap_equal_to_the_limit_disables_swap() {
        let swap_max = |v| -> Option<String> {
            v2_writes(&res(v), false)
                .unwrap()
                .into_iter()
                .find(|w| w.file == "memory.swap.max")
                .map(|w| w.value)
        };
        use serde_json::json;
        assert_eq!(
            swap_max(json!({"memory": {"limit": 1000, "swap": 1000}})),
            Some("0".into())
        );
        assert_eq!(
            swap_max(json!({"memory": {"limit": 1000, "swap": 1500}})),
            Some("500".into())
        );
        assert_eq!(
            swap_max(json!({"memory": {"limit": 1000, "swap": -1}})),
            Some("max".into())
        );
        assert_eq!(swap_max(json!({"memory": {"limit": 1000}})), None);
        assert_eq!(
            swap_max(json!({"memory": {"limit": 1000, "swap": 0}})),
            None
        );
    }

    #[test]
    fn v1_memory_write_order_follows_the_current_limit() {
        let r = res(serde_json::json!({"memory": {"limit": 1000, "swap": 2000}}));
        let files =
            |facts| -> Vec<String> { v1_writes(&r, facts).into_iter().map(|w| w.file).collect() };
        let grow = V1Facts {
            current_memory_limit: 500,
            swap_accounting: true,
            bfq: false,
        };
        assert_eq!(
            files(grow),
            ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
        );
        let shrink = V1Facts {
            current_memory_limit: 5000,
            ..grow
        };
        assert_eq!(
            files(shrink),
            ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        );
        let noswap = V1Facts {
            swap_accounting: false,
            ..grow
        };
        assert_eq!(files(noswap), ["memory.limit_in_bytes"]);
    }

    #[test]
    fn v2_writes_cover_every_resource() {
        let r = res(serde_json::json!({
            "memory": {"limit": 1048576, "swap": 3145728, "reservation": 524288},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 42},
            "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "unified": {"memory.high": "900000"}
        }));
        let got: Vec<(String, String)> = v2_writes(&r, false)
            .unwrap()
            .into_iter()
            .map(|w| (w.file, w.value))
            .collect();
        let want: Vec<(String, String)> = [
            ("cpu.weight", "39"),
            ("cpu.max", "50000 100000"),
            ("cpuset.cpus", "0"),
            ("cpuset.mems", "0"),
            ("memory.swap.max", "2097152"),
            ("memory.max", "1048576"),
            ("memory.low", "524288"),
            ("pids.max", "42"),
            ("io.weight", "4950"),
            ("io.max", "8:0 rbps=1000"),
            ("hugetlb.2MB.max", "4194304"),
            ("memory.high", "900000"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
        // Unlimited: "max".
        let r = res(
            serde_json::json!({"memory": {"limit": -1}, "cpu": {"quota": -1}, "pids": {"limit": -1}}),
        );
        let got: Vec<String> = v2_writes(&r, false)
            .unwrap()
            .into_iter()
            .map(|w| format!("{}={}", w.file, w.value))
            .collect();
        assert_eq!(
            got,
            [
                "cpu.max=max",
                "memory.swap.max=max",
                "memory.max=max",
                "pids.max=max"
            ]
        );
    }

    #[test]
    fn validation_names_the_field() {
        let host = Host {
            cpus: vec![0, 1],
            mems: vec![0],
            ..Host::default()
        };
        let err = |v| validate(&res(v), &host).unwrap_err().to_string();
        assert!(err(serde_json::json!({"memory": {"limit": -5}}))
            .contains("linux.resources.memory.limit: must be >= 0"));
        // Ignored like runc: kernel memory; swappiness -1 as Go's uint64.
        let ok = |v| validate(&res(v), &host).is_ok();
        assert!(ok(serde_json::json!({"memory": {"kernel": -2}})));
        assert!(ok(serde_json::json!({"memory": {"swappiness": u64::MAX}})));
        assert!(!ok(serde_json::json!({"memory": {"swappiness": 101}})));
        assert!(
            err(serde_json::json!({"cpu": {"cpus": "0-3"}})).contains("linux.resources.cpu.cpus")
        );
        assert!(err(serde_json::json!({"unified": {"memory.high": "1"}}))
            .contains("linux.resources.unified"));
        let v2 = Host {
            v2: true,
            v2_controllers: vec!["memory".into()],
            ..host.clone()
        };
        assert!(validate(
            &res(serde_json::json!({"unified": {"memory.high": "1"}})),
            &v2
        )
        .is_ok());
        let e = validate(
            &res(serde_json::json!({"unified": {"bogus.file": "1"}})),
            &v2,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("linux.resources.unified.bogus.file"),
            "{e}"
        );
        assert!(validate(&res(serde_json::json!({"unified": {"../x": "1"}})), &v2).is_err());
        assert!(validate(
            &res(serde_json::json!({"memory": {"limit": -1}, "cpu": {"cpus": "0-1"}})),
            &host
        )
        .is_ok());
        let e = Resources::from_value(
            serde_json::json!({"cpu": {"shares": -3}}),
            "linux.resources",
        )
        .unwrap_err();
        assert!(e.to_string().contains("linux.resources.cpu.shares"), "{e}");
    }

    #[test]
    fn every_oci_field_survives_oci_spec() {
        // linux.resources as a runtime-spec config spells it, through
        // oci-spec's types (what create uses) into ours.
        let r = serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
            "memory": {"limit": 1, "reservation": 2, "swap": 3, "kernel": 4, "kernelTCP": 5,
                       "swappiness": 6, "disableOOMKiller": true, "useHierarchy": true},
            "cpu": {"shares": 7, "quota": 8, "burst": 9, "period": 10, "realtimeRuntime": 11,
                    "realtimePeriod": 12, "cpus": "0", "mems": "0", "idle": 1},
            "pids": {"limit": 13},
            "blockIO": {"weight": 14, "leafWeight": 15,
                        "weightDevice": [{"major": 8, "minor": 0, "weight": 16, "leafWeight": 17}],
                        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 18}],
                        "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 19}],
                        "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 20}],
                        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 21}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 22}],
            "network": {"classID": 23, "priorities": [{"name": "eth0", "priority": 24}]},
            "rdma": {"mlx5_0": {"hcaHandles": 25, "hcaObjects": 26}},
            "unified": {"memory.high": "27"}
        });
        let spec: oci_spec::runtime::Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "linux": {"resources": r.clone()}
        }))
        .unwrap();
        let ours = Resources::from_spec(&spec).unwrap();
        assert_eq!(ours, res(r.clone()));
        let back = serde_json::to_value(&ours).unwrap();
        assert_eq!(back, r, "our serde shape is the OCI one");
    }

    #[test]
    fn lists_and_page_sizes() {
        assert_eq!(parse_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_list("3-1"), None);
        assert_eq!(fmt_list(&[0, 1, 2, 5]), "0-2,5");
        assert_eq!(hugepage_name(2048), "2MB");
        assert_eq!(hugepage_name(1048576), "1GB");
        assert_eq!(hugepage_name(64), "64KB");
    }
}
