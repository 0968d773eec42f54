//! `hull check`: what this host supports, item by item with a verdict (like
//! lxc-checkconfig): namespaces, the cgroup layout and controllers, seccomp,
//! overlayfs, user namespaces, LSMs, CRIU; then what a Kubernetes node
//! (kubelet + containerd's CRI plugin + hull) would miss here.

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
    let max_userns = max;
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

    out.extend(kubernetes_node(&NodeFacts::read(overlay, max_userns)));

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

/// The host facts the Kubernetes node section judges.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub cgroup_v2: bool,
    /// systemd runs as init (`/run/systemd/system`), so the systemd cgroup
    /// driver (`SystemdCgroup = true`) can be used.
    pub systemd: bool,
    /// Where CNI plugins are, with the ones found of those a pod needs.
    pub cni: Vec<(String, Vec<String>)>,
    pub overlay: bool,
    pub max_user_namespaces: Option<u64>,
    /// Kernel (major, minor).
    pub kernel: Option<(u32, u32)>,
    pub swap_on: bool,
    /// CAP_SYS_RESOURCE in this process's effective set.
    pub cap_sys_resource: bool,
}

/// The CNI plugins containerd's CRI plugin and a bridge network need.
const CNI_NEEDED: [&str; 3] = ["bridge", "host-local", "loopback"];

impl NodeFacts {
    fn read(overlay: bool, max_user_namespaces: Option<u64>) -> NodeFacts {
        let cgroup_v2 = matches!(
            crate::cgroups::layout::discover(),
            Ok((crate::cgroups::Layout::V2, _))
        );
        let cni = ["/opt/cni/bin", "/usr/lib/cni"]
            .iter()
            .map(|dir| {
                let found = CNI_NEEDED
                    .iter()
                    .filter(|p| Path::new(dir).join(p).is_file())
                    .map(|p| p.to_string())
                    .collect();
                (dir.to_string(), found)
            })
            .collect();
        let kernel = read("/proc/sys/kernel/osrelease").and_then(|r| {
            let mut it = r.split(|c: char| !c.is_ascii_digit());
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        });
        let swap_on = read("/proc/swaps").is_some_and(|s| s.lines().count() > 1);
        let cap_eff = read("/proc/self/status")
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .unwrap_or(0);
        NodeFacts {
            cgroup_v2,
            systemd: Path::new("/run/systemd/system").is_dir(),
            cni,
            overlay,
            max_user_namespaces,
            kernel,
            swap_on,
            cap_sys_resource: crate::process::caps::number("CAP_SYS_RESOURCE")
                .is_some_and(|n| cap_eff & (1 << n) != 0),
        }
    }
}

/// The "Kubernetes node" section: what the kubelet and containerd's CRI
/// plugin running pods with hull would lack here. Warnings only: hull
/// itself runs containers without any of it.
pub fn kubernetes_node(f: &NodeFacts) -> Vec<Item> {
    let warn_or_ok = |ok: bool| if ok { Verdict::Ok } else { Verdict::Warn };
    let mut out = Vec::new();
    out.push(item(
        "k8s: cgroup v2",
        warn_or_ok(f.cgroup_v2),
        if f.cgroup_v2 {
            "unified hierarchy (recommended)"
        } else {
            "v1 or hybrid: pods run (tests-cri runs them so), but Kubernetes recommends \
             cgroup v2 and keeps v1 in maintenance"
        },
    ));
    out.push(item(
        "k8s: systemd cgroup driver",
        warn_or_ok(f.systemd),
        if f.systemd {
            "systemd runs: use SystemdCgroup = true and the kubelet's cgroupDriver: systemd"
        } else {
            "systemd is not init here: cgroupfs driver only (SystemdCgroup = false, \
             cgroupDriver: cgroupfs)"
        },
    ));
    let complete = f
        .cni
        .iter()
        .find(|(_, found)| found.len() == CNI_NEEDED.len());
    out.push(match complete {
        Some((dir, _)) => item(
            "k8s: CNI plugins",
            Verdict::Ok,
            format!("{} in {dir} (CRI bin_dir)", CNI_NEEDED.join(", ")),
        ),
        None => item(
            "k8s: CNI plugins",
            Verdict::Warn,
            format!(
                "{} not all in {}: pods get no network (install containernetworking-plugins)",
                CNI_NEEDED.join(", "),
                f.cni
                    .iter()
                    .map(|(d, _)| d.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ),
    });
    out.push(item(
        "k8s: overlayfs snapshotter",
        warn_or_ok(f.overlay),
        if f.overlay {
            "overlay available (containerd's default snapshotter)"
        } else {
            "no overlay: containerd falls back to the slow native snapshotter"
        },
    ));
    let userns = f.max_user_namespaces.is_some_and(|n| n > 0);
    // hostUsers: false needs idmapped mounts on every volume type the pod
    // uses; tmpfs got them in Linux 6.3.
    let idmap = f.kernel.is_some_and(|k| k >= (6, 3));
    let kernel = f
        .kernel
        .map_or("unknown".to_string(), |(a, b)| format!("{a}.{b}"));
    out.push(item(
        "k8s: hostUsers: false",
        warn_or_ok(userns && idmap),
        match (userns, idmap) {
            (true, true) => format!("user namespaces on, kernel {kernel} has idmapped tmpfs"),
            (false, _) => "user namespaces are off (max_user_namespaces 0)".to_string(),
            (true, false) => format!("kernel {kernel}: idmapped tmpfs mounts need 6.3"),
        },
    ));
    out.push(item(
        "k8s: swap",
        warn_or_ok(!f.swap_on),
        if f.swap_on {
            "swap is on: the kubelet refuses to start unless failSwapOn: false"
        } else {
            "off"
        },
    ));
    out.push(item(
        "k8s: oom_score_adj",
        warn_or_ok(f.cap_sys_resource),
        if f.cap_sys_resource {
            "CAP_SYS_RESOURCE held: the sandbox's oomScoreAdj -998 can be set"
        } else {
            "no CAP_SYS_RESOURCE: the sandbox's oomScoreAdj -998 is refused; set \
             restrict_oom_score_adj = true in containerd's CRI config"
        },
    ));
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
            "k8s: cgroup v2",
            "k8s: CNI plugins",
            "k8s: oom_score_adj",
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

    #[test]
    fn kubernetes_node_section_judges_the_facts() {
        let good = NodeFacts {
            cgroup_v2: true,
            systemd: true,
            cni: vec![(
                "/usr/lib/cni".into(),
                CNI_NEEDED.iter().map(|s| s.to_string()).collect(),
            )],
            overlay: true,
            max_user_namespaces: Some(100),
            kernel: Some((6, 3)),
            swap_on: false,
            cap_sys_resource: true,
        };
        let items = kubernetes_node(&good);
        assert_eq!(items.len(), 7);
        assert!(items.iter().all(|i| i.verdict == Verdict::Ok), "{items:?}");
        assert!(items[2].detail.contains("/usr/lib/cni"), "{:?}", items[2]);

        let bad = NodeFacts {
            cni: vec![("/opt/cni/bin".into(), vec!["bridge".into()])],
            max_user_namespaces: Some(5),
            kernel: Some((6, 1)),
            swap_on: true,
            ..NodeFacts::default()
        };
        let items = kubernetes_node(&bad);
        assert!(
            items.iter().all(|i| i.verdict == Verdict::Warn),
            "{items:?}"
        );
        let detail = |name: &str| {
            items
                .iter()
                .find(|i| i.name == name)
                .map(|i| i.detail.clone())
                .unwrap_or_default()
        };
        assert!(detail("k8s: CNI plugins").contains("containernetworking-plugins"));
        assert!(detail("k8s: hostUsers: false").contains("kernel 6.1"));
        assert!(detail("k8s: swap").contains("failSwapOn"));
        assert!(detail("k8s: oom_score_adj").contains("restrict_oom_score_adj = true"));
        assert!(detail("k8s: systemd cgroup driver").contains("cgroupfs"));
    }
}
