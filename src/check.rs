//! `hull check`: what this host supports, item by item with a verdict (like
//! lxc-checkconfig): namespaces, the cgroup layout and controllers, seccomp,
//! overlayfs, user namespaces, LSMs, CRIU.

use std::path::Path;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Works.
    Ok,
    /// Missing or limited, but containers run without it.
    Warn,
    /// Missing, and containers that need it will fail.
    Missing,
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub name: String,
    pub verdict: Verdict,
    pub detail: String,
}

fn item(name: &str, verdict: Verdict, detail: impl Into<String>) -> Item {
    Item {
        name: name.to_string(),
        verdict,
        detail: detail.into(),
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Run every check.
pub fn run(criu: &Path) -> Vec<Item> {
    let mut out = Vec::new();
    for (ns, file) in [
        ("mount", "mnt"),
        ("pid", "pid"),
        ("network", "net"),
        ("ipc", "ipc"),
        ("uts", "uts"),
        ("user", "user"),
        ("cgroup", "cgroup"),
        ("time", "time"),
    ] {
        let ok = Path::new(&format!("/proc/self/ns/{file}")).exists();
        let (v, d) = if ok {
            (Verdict::Ok, "available".to_string())
        } else if ns == "time" || ns == "cgroup" {
            (Verdict::Warn, format!("/proc/self/ns/{file} missing"))
        } else {
            (Verdict::Missing, format!("/proc/self/ns/{file} missing"))
        };
        out.push(item(&format!("namespace: {ns}"), v, d));
    }

    let max = read("/proc/sys/user/max_user_namespaces").and_then(|s| s.parse::<u64>().ok());
    out.push(match max {
        Some(0) => item(
            "user namespaces",
            Verdict::Missing,
            "user.max_user_namespaces is 0",
        ),
        Some(n) => item(
            "user namespaces",
            Verdict::Ok,
            format!("max_user_namespaces {n}"),
        ),
        None => item(
            "user namespaces",
            Verdict::Warn,
            "cannot read max_user_namespaces",
        ),
    });

    match crate::cgroups::layout::discover() {
        Ok((layout, hier)) => {
            out.push(item("cgroup layout", Verdict::Ok, format!("{layout:?}")));
            let ctrls: Vec<String> = hier
                .iter()
                .flat_map(|h| {
                    if h.v2 {
                        read(&format!("{}/cgroup.controllers", h.mount.display()))
                            .unwrap_or_default()
                            .split_whitespace()
                            .map(str::to_string)
                            .collect::<Vec<_>>()
                    } else {
                        h.controllers.clone()
                    }
                })
                .collect();
            for want in [
                "cpu", "cpuset", "memory", "pids", "devices", "freezer", "blkio|io",
            ] {
                let found = want.split('|').any(|w| ctrls.iter().any(|c| c == w));
                let v2_builtin = matches!(layout, crate::cgroups::Layout::V2)
                    && (want == "devices" || want == "freezer");
                let (v, d) = if found || v2_builtin {
                    (Verdict::Ok, "available".to_string())
                } else {
                    (
                        Verdict::Warn,
                        "not mounted; its limits are refused or ignored".into(),
                    )
                };
                out.push(item(&format!("cgroup controller: {want}"), v, d));
            }
        }
        Err(e) => out.push(item("cgroup layout", Verdict::Missing, e.to_string())),
    }

    out.push(if crate::sys::has_mount_setattr() {
        item(
            "mount_setattr",
            Verdict::Ok,
            "recursive mount options (rro, rnoexec, ...) and idmapped mounts",
        )
    } else {
        item(
            "mount_setattr",
            Verdict::Warn,
            "kernel before 5.12: recursive mount options and idmapped mounts are refused",
        )
    });

    let seccomp = read("/proc/sys/kernel/seccomp/actions_avail");
    out.push(match seccomp {
        Some(a) => item("seccomp", Verdict::Ok, format!("kernel actions: {a}")),
        None => item(
            "seccomp",
            Verdict::Missing,
            "no /proc/sys/kernel/seccomp (kernel without CONFIG_SECCOMP_FILTER?)",
        ),
    });

    let fs = read("/proc/filesystems").unwrap_or_default();
    let overlay = fs
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"));
    out.push(if overlay {
        item("overlayfs", Verdict::Ok, "in /proc/filesystems")
    } else {
        item(
            "overlayfs",
            Verdict::Warn,
            "not in /proc/filesystems (modprobe overlay; needed for layered images)",
        )
    });

    out.push(apparmor());
    let lsm = read("/sys/kernel/security/lsm").unwrap_or_default();
    let on = lsm.split(',').any(|l| l == "selinux");
    out.push(item(
        "lsm: selinux",
        if on { Verdict::Ok } else { Verdict::Warn },
        if on {
            "enabled".to_string()
        } else {
            format!("not enabled (active LSMs: {lsm}); process labels are refused")
        },
    ));

    out.push(match crate::container::checkpoint::criu_version(criu) {
        Err(e) => item("criu", Verdict::Warn, e.to_string()),
        Ok((maj, min)) => {
            let check = std::process::Command::new(criu).arg("check").output();
            match check {
                Ok(o) if o.status.success() => item(
                    "criu",
                    Verdict::Ok,
                    format!("CRIU {maj}.{min}, `criu check` passes"),
                ),
                Ok(o) => {
                    let err = String::from_utf8_lossy(&o.stderr);
                    let errors: Vec<&str> = err
                        .lines()
                        .filter(|l| l.contains("Error"))
                        .map(str::trim)
                        .collect();
                    let last = errors.join(" | ");
                    item(
                        "criu",
                        Verdict::Warn,
                        format!("CRIU {maj}.{min} installed, but `criu check` fails: {last}"),
                    )
                }
                Err(e) => item("criu", Verdict::Warn, format!("running `criu check`: {e}")),
            }
        }
    });
    out
}

/// AppArmor, by the test `process.apparmorProfile` uses (securityfs has it
/// and the module says Y), with the loaded profiles by mode.
fn apparmor() -> Item {
    const NAME: &str = "lsm: apparmor";
    if !crate::process::lsm::apparmor_enabled() {
        let param = read("/sys/module/apparmor/parameters/enabled")
            .map_or("missing".to_string(), |v| format!("{v:?}"));
        return item(
            NAME,
            Verdict::Warn,
            format!(
                "not enabled (/sys/module/apparmor/parameters/enabled: {param}); \
                 process.apparmorProfile is refused"
            ),
        );
    }
    let path = "/sys/kernel/security/apparmor/profiles";
    match std::fs::read_to_string(path) {
        Ok(list) => item(
            NAME,
            Verdict::Ok,
            format!("enabled, {}", profile_summary(&list)),
        ),
        Err(e) => item(NAME, Verdict::Ok, format!("enabled (reading {path}: {e})")),
    }
}

/// "N profiles loaded (E enforce, C complain)" from the kernel's list, one
/// `name (mode)` a line.
fn profile_summary(list: &str) -> String {
    let mut modes: Vec<(&str, usize)> = Vec::new();
    let mut total = 0;
    for line in list.lines().filter(|l| !l.trim().is_empty()) {
        total += 1;
        let mode = line
            .rsplit_once(" (")
            .and_then(|(_, m)| m.strip_suffix(')'))
            .unwrap_or("unknown");
        match modes.iter_mut().find(|(m, _)| *m == mode) {
            Some((_, n)) => *n += 1,
            None => modes.push((mode, 1)),
        }
    }
    let by_mode: Vec<String> = modes.iter().map(|(m, n)| format!("{n} {m}")).collect();
    let noun = if total == 1 { "profile" } else { "profiles" };
    if by_mode.is_empty() {
        format!("{total} {noun} loaded")
    } else {
        format!("{total} {noun} loaded ({})", by_mode.join(", "))
    }
}

/// The text report: one line per item, then the overall verdict.
pub fn render(items: &[Item]) -> String {
    let mut s = String::new();
    for i in items {
        let tag = match i.verdict {
            Verdict::Ok => "ok     ",
            Verdict::Warn => "warn   ",
            Verdict::Missing => "MISSING",
        };
        s.push_str(&format!("{tag} {:<28} {}\n", i.name, i.detail));
    }
    let missing = items
        .iter()
        .filter(|i| i.verdict == Verdict::Missing)
        .count();
    let warn = items.iter().filter(|i| i.verdict == Verdict::Warn).count();
    s.push_str(&format!(
        "verdict: {} ({missing} missing, {warn} warnings)\n",
        if missing == 0 {
            "hull can run containers here"
        } else {
            "some containers cannot run here"
        }
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_area() {
        let items = run(Path::new("/nonexistent/criu"));
        for prefix in [
            "namespace: mount",
            "user namespaces",
            "cgroup layout",
            "seccomp",
            "overlayfs",
            "lsm: apparmor",
            "criu",
        ] {
            assert!(
                items.iter().any(|i| i.name.starts_with(prefix)),
                "{prefix} missing"
            );
        }
        let criu = items.iter().find(|i| i.name == "criu").unwrap();
        assert_eq!(criu.verdict, Verdict::Warn);
        assert!(criu.detail.contains("/nonexistent/criu"), "{}", criu.detail);
        assert!(render(&items).contains("verdict: "));
    }

    #[test]
    fn apparmor_profiles_are_counted_by_mode() {
        let list = "hull-test-deny (enforce)\n/usr/bin/man (enforce)\nlsb_release (complain)\n\
                    a profile (with) parens (enforce)\n";
        assert_eq!(
            profile_summary(list),
            "4 profiles loaded (3 enforce, 1 complain)"
        );
        assert_eq!(profile_summary(""), "0 profiles loaded");
        assert_eq!(profile_summary("x (kill)\n"), "1 profile loaded (1 kill)");
    }
}
