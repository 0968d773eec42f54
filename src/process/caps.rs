//! Capabilities: names → bits (parent side), and applying the five sets in
//! the right order around the uid switch (child side).

use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::init::fail::{ChildResult, Step, StepContext};
use crate::sys::{self, CapSets};

/// Every capability hull knows, by number (index = capability number).
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capability number for a name (with or without the CAP_ prefix).
pub fn number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    NAMES.iter().position(|n| *n == full).map(|i| i as u32)
}

/// The highest capability the running kernel supports.
pub fn last_cap() -> u32 {
    crate::sys::read_text("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// What the init applies.
#[derive(Debug, Clone, Copy)]
pub struct CapPlan {
    pub bounding: u64,
    pub sets: CapSets,
    pub ambient: u64,
    pub last_cap: u32,
}

/// Turn the config's capability sets into masks. Capabilities the running
/// kernel does not have are left out, with a warning naming them.
pub fn plan(caps: &LinuxCapabilities, warn: &mut dyn FnMut(String)) -> CapPlan {
    let last = last_cap();
    let mut mask = |set: &Option<Capabilities>, field: &str| -> u64 {
        let mut m = 0u64;
        for c in set.iter().flatten() {
            let name = format!("CAP_{c}");
            match number(&name) {
                Some(n) if n <= last => m |= 1 << n,
                _ => warn(format!(
                    "process.capabilities.{field}: {name} is not supported by the running kernel; ignored"
                )),
            }
        }
        m
    };
    CapPlan {
        bounding: mask(caps.bounding(), "bounding"),
        sets: CapSets {
            effective: mask(caps.effective(), "effective"),
            permitted: mask(caps.permitted(), "permitted"),
            inheritable: mask(caps.inheritable(), "inheritable"),
        },
        ambient: mask(caps.ambient(), "ambient"),
        last_cap: last,
    }
}

/// Child side, while still privileged: drop what is not in the bounding set.
pub fn drop_bounding(p: &CapPlan) -> ChildResult<()> {
    for cap in 0..=p.last_cap {
        if p.bounding & (1 << cap) == 0 {
            match sys::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong) {
                Ok(()) | Err(sys::Errno(libc::EINVAL)) => {}
                Err(e) => return Err(e).step_at(Step::Bounding, cap as usize),
            }
        }
    }
    Ok(())
}

/// Child side, after the uid switch: set the exact sets, then raise ambient
/// capabilities (like runc, one that cannot be raised is skipped). `extra`
/// is added to the effective and permitted sets until the exec (CAP_SYS_ADMIN
/// for loading seccomp without no_new_privs); execve recomputes both from
/// the bounding, inheritable and ambient sets, so it does not survive.
pub fn apply_sets(p: &CapPlan, extra: u64) -> ChildResult<()> {
    let sets = CapSets {
        effective: p.sets.effective | extra,
        permitted: p.sets.permitted | extra,
        inheritable: p.sets.inheritable,
    };
    sys::capset(&sets).step(Step::Capset)?;
    let _ = sys::prctl3(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    );
    for cap in 0..=p.last_cap {
        if p.ambient & (1 << cap) != 0 {
            let _ = sys::prctl3(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap as libc::c_ulong,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_kernel_numbers() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("kill"), Some(5));
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NOPE"), None);
    }

    #[test]
    fn plan_builds_masks() {
        let caps: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_KILL","CAP_CHOWN"],"effective":["CAP_KILL"]}"#,
        )
        .unwrap();
        let mut warnings = Vec::new();
        let p = plan(&caps, &mut |w| warnings.push(w));
        assert_eq!(p.bounding, 0b100001);
        assert_eq!(p.sets.effective, 0b100000);
        assert_eq!(p.sets.permitted, 0);
        assert!(warnings.is_empty());
    }
}
