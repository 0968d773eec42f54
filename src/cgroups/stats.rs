//! Resource usage read from the cgroup files, in the JSON shape runc's
//! `events` prints (types/events.go: field names and omitempty rules).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::Cgroup;

fn zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: serde_json::Map<String, serde_json::Value>,
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuUsage {
    /// Nanoseconds.
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u32>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u32>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// "key value" lines (memory.stat, cpu.stat, memory.events...).
pub fn keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn read(dir: &Path, file: &str) -> String {
    crate::sys::read_text(dir.join(file)).unwrap_or_default()
}

/// A number file; "max" (v2 unlimited) reads as u64::MAX.
fn num(dir: &Path, file: &str) -> u64 {
    let s = read(dir, file);
    let s = s.trim();
    if s == "max" {
        u64::MAX
    } else {
        s.parse().unwrap_or(0)
    }
}

fn list(dir: &Path, file: &str) -> Vec<u32> {
    super::resources::parse_list(&read(dir, file)).unwrap_or_default()
}

/// Huge page sizes of this host, as cgroup file names use them.
fn page_sizes() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let kb = n
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(super::resources::hugepage_name(kb))
        })
        .collect();
    v.sort();
    v
}

/// "8:0 Read 4096" lines (v1 blkio), skipping the "Total N" line.
fn blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 3 {
                return None;
            }
            let (ma, mi) = f[0].split_once(':')?;
            Some(BlkioEntry {
                major: ma.parse().ok()?,
                minor: mi.parse().ok()?,
                op: f[1].to_string(),
                value: f[2].parse().ok()?,
            })
        })
        .collect()
}

/// Stats of a v1 cgroup (each controller's directory).
pub fn v1(cg: &Cgroup) -> Stats {
    let mut s = Stats::default();
    if let Some(d) = cg.v1_dir("cpuacct") {
        s.cpu.usage.total = num(d, "cpuacct.usage");
        s.cpu.usage.percpu = read(d, "cpuacct.usage_percpu")
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        for line in read(d, "cpuacct.usage_all").lines().skip(1) {
            let f: Vec<u64> = line
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if f.len() == 3 {
                s.cpu.usage.percpu_user.push(f[1]);
                s.cpu.usage.percpu_kernel.push(f[2]);
            }
        }
        let st = keyed(&read(d, "cpuacct.stat"));
        // USER_HZ ticks → ns.
        let hz = 100;
        s.cpu.usage.user = st.get("user").copied().unwrap_or(0) * (1_000_000_000 / hz);
        s.cpu.usage.kernel = st.get("system").copied().unwrap_or(0) * (1_000_000_000 / hz);
    }
    if let Some(d) = cg.v1_dir("cpu") {
        let st = keyed(&read(d, "cpu.stat"));
        let g = |k: &str| st.get(k).copied().unwrap_or(0);
        s.cpu.throttling = Throttling {
            periods: g("nr_periods"),
            throttled_periods: g("nr_throttled"),
            throttled_time: g("throttled_time"),
        };
    }
    if let Some(d) = cg.v1_dir("cpuset") {
        s.cpuset = CpuSet {
            cpus: list(d, "cpuset.cpus"),
            cpu_exclusive: num(d, "cpuset.cpu_exclusive"),
            mems: list(d, "cpuset.mems"),
            mem_hardwall: num(d, "cpuset.mem_hardwall"),
            mem_exclusive: num(d, "cpuset.mem_exclusive"),
            memory_migrate: num(d, "cpuset.memory_migrate"),
            memory_spread_page: num(d, "cpuset.memory_spread_page"),
            memory_spread_slab: num(d, "cpuset.memory_spread_slab"),
            memory_pressure: num(d, "cpuset.memory_pressure"),
            sched_load_balance: num(d, "cpuset.sched_load_balance"),
            sched_relax_domain_level: read(d, "cpuset.sched_relax_domain_level")
                .trim()
                .parse()
                .unwrap_or(0),
        };
    }
    if let Some(d) = cg.v1_dir("memory") {
        let entry = |prefix: &str| MemoryEntry {
            limit: num(d, &format!("{prefix}.limit_in_bytes")),
            usage: num(d, &format!("{prefix}.usage_in_bytes")),
            max: num(d, &format!("{prefix}.max_usage_in_bytes")),
            failcnt: num(d, &format!("{prefix}.failcnt")),
        };
        s.memory = Memory {
            usage: entry("memory"),
            swap: entry("memory.memsw"),
            kernel: entry("memory.kmem"),
            kernel_tcp: entry("memory.kmem.tcp"),
            raw: keyed(&read(d, "memory.stat")),
            cache: 0,
        };
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
    }
    if let Some(d) = cg.v1_dir("pids") {
        s.pids = pids(d);
    }
    if let Some(d) = cg.v1_dir("blkio") {
        let (bytes, ios) = if d.join("blkio.io_service_bytes_recursive").exists() {
            (
                "blkio.io_service_bytes_recursive",
                "blkio.io_serviced_recursive",
            )
        } else if d.join("blkio.bfq.io_service_bytes_recursive").exists() {
            (
                "blkio.bfq.io_service_bytes_recursive",
                "blkio.bfq.io_serviced_recursive",
            )
        } else {
            (
                "blkio.throttle.io_service_bytes_recursive",
                "blkio.throttle.io_serviced_recursive",
            )
        };
        s.blkio.io_service_bytes_recursive = blkio_v1(&read(d, bytes));
        s.blkio.io_serviced_recursive = blkio_v1(&read(d, ios));
        // BFQ counts nothing for devices it does not schedule: fall back.
        if s.blkio.io_service_bytes_recursive.is_empty() {
            s.blkio.io_service_bytes_recursive =
                blkio_v1(&read(d, "blkio.throttle.io_service_bytes_recursive"));
            s.blkio.io_serviced_recursive =
                blkio_v1(&read(d, "blkio.throttle.io_serviced_recursive"));
        }
    }
    for size in page_sizes() {
        if let Some(d) = cg.v1_dir("hugetlb") {
            s.hugetlb.insert(
                size.clone(),
                Hugetlb {
                    usage: num(d, &format!("hugetlb.{size}.usage_in_bytes")),
                    max: num(d, &format!("hugetlb.{size}.max_usage_in_bytes")),
                    failcnt: num(d, &format!("hugetlb.{size}.failcnt")),
                },
            );
        } else if let Some(d) = cg.unified.as_deref() {
            // Hybrid hosts with hugetlb on the cgroup2 mount.
            if d.join(format!("hugetlb.{size}.current")).exists() {
                s.hugetlb.insert(size.clone(), hugetlb_v2(d, &size));
            }
        }
    }
    s
}

fn pids(d: &Path) -> Pids {
    let limit = num(d, "pids.max");
    Pids {
        current: num(d, "pids.current"),
        limit: if limit == u64::MAX { 0 } else { limit },
    }
}

fn hugetlb_v2(d: &Path, size: &str) -> Hugetlb {
    Hugetlb {
        usage: num(d, &format!("hugetlb.{size}.current")),
        max: 0,
        failcnt: keyed(&read(d, &format!("hugetlb.{size}.events")))
            .get("max")
            .copied()
            .unwrap_or(0),
    }
}

/// Stats of a v2 cgroup directory (runc's fs2 conversions: µs → ns, swap
/// reported as memory+swap like v1).
pub fn v2(d: &Path) -> Stats {
    let mut s = Stats::default();
    let cpu = keyed(&read(d, "cpu.stat"));
    let g = |k: &str| cpu.get(k).copied().unwrap_or(0);
    s.cpu.usage.total = g("usage_usec") * 1000;
    s.cpu.usage.user = g("user_usec") * 1000;
    s.cpu.usage.kernel = g("system_usec") * 1000;
    s.cpu.throttling = Throttling {
        periods: g("nr_periods"),
        throttled_periods: g("nr_throttled"),
        throttled_time: g("throttled_usec") * 1000,
    };
    s.cpuset.cpus = list(d, "cpuset.cpus.effective");
    s.cpuset.mems = list(d, "cpuset.mems.effective");
    let events = keyed(&read(d, "memory.events"));
    let usage = MemoryEntry {
        usage: num(d, "memory.current"),
        limit: num(d, "memory.max"),
        max: num(d, "memory.peak"),
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    let swap_limit = num(d, "memory.swap.max");
    let swap = MemoryEntry {
        usage: num(d, "memory.swap.current") + usage.usage,
        limit: if swap_limit == u64::MAX {
            u64::MAX
        } else {
            swap_limit.saturating_add(usage.limit)
        },
        max: 0,
        failcnt: 0,
    };
    s.memory.raw = keyed(&read(d, "memory.stat"));
    s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
    s.memory.usage = usage;
    s.memory.swap = swap;
    s.pids = pids(d);
    for line in read(d, "io.stat").lines() {
        let mut f = line.split_whitespace();
        let Some((ma, mi)) = f.next().and_then(|dev| dev.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let value = v.parse().unwrap_or(0);
            let (list, op) = match k {
                "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    for size in page_sizes() {
        if d.join(format!("hugetlb.{size}.current")).exists() {
            s.hugetlb.insert(size.clone(), hugetlb_v2(d, &size));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_matches_runc() {
        let s = Stats::default();
        let v = serde_json::to_value(&s).unwrap();
        // What runc prints for an idle container (omitempty rules).
        assert_eq!(
            v["cpu"]["usage"],
            serde_json::json!({"kernel": 0, "user": 0})
        );
        assert_eq!(v["cpu"]["throttling"], serde_json::json!({}));
        assert_eq!(
            v["memory"]["kernelTCP"],
            serde_json::json!({"limit": 0, "failcnt": 0})
        );
        assert_eq!(v["pids"], serde_json::json!({}));
        assert_eq!(v["blkio"], serde_json::json!({}));
        assert_eq!(v["hugetlb"], serde_json::json!({}));
        assert_eq!(v["network_interfaces"], serde_json::Value::Null);
    }

    #[test]
    fn parses_blkio_lines() {
        let e = blkio_v1("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (8, 0, "Read", 4096)
        );
    }
}
