//! The container process's confinement as the process sees it:
//! capability sets (root and non-root, ambient), no_new_privs, rlimits,
//! umask, additional groups, oom_score_adj, masked and read-only paths,
//! I/O priority, scheduler, personality; and the warnings and errors for
//! unknown capabilities and rlimits. `HULL_TEST_RUNTIME=/usr/sbin/runc`
//! checks the expectations against runc (hull-only features are skipped).

mod common;
mod secutil;

use common::{Bundle, Runtime};
use secutil::{mask, status_field};
use serde_json::json;

// Capability numbers.
const CHOWN: u32 = 0;
const KILL: u32 = 5;
const NET_BIND_SERVICE: u32 = 10;
const NET_RAW: u32 = 13;
const AUDIT_WRITE: u32 = 29;

fn run_ok(test: &str, b: &mut Bundle) -> String {
    let rt = Runtime::new(test);
    let id = common::unique_id(test);
    let out = rt.run(&id, b, &[]);
    out.ok();
    rt.assert_nothing_left(&id);
    out.stdout
}

fn set_caps(b: &mut Bundle, sets: &[(&str, &[&str])]) {
    let mut caps = json!({});
    for (set, names) in sets {
        caps[*set] = json!(names);
    }
    b.config["process"]["capabilities"] = caps;
}

const STATUS: &str = "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status";

#[test]
fn root_gets_the_bounding_set_and_no_inheritable() {
    if common::skip() {
        return;
    }
    let mut b = Bundle::new("caps-root");
    set_caps(
        &mut b,
        &[
            (
                "bounding",
                &[
                    "CAP_CHOWN",
                    "CAP_KILL",
                    "CAP_NET_BIND_SERVICE",
                    "CAP_AUDIT_WRITE",
                ],
            ),
            ("effective", &["CAP_CHOWN", "CAP_KILL"]),
            (
                "permitted",
                &["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            ),
        ],
    );
    b.sh(STATUS);
    let out = run_ok("caps-root", &mut b);
    let bnd = mask(&[CHOWN, KILL, NET_BIND_SERVICE, AUDIT_WRITE]);
    assert_eq!(status_field(&out, "CapBnd"), Some(bnd.clone()), "{out}");
    // With no_new_privs, exec cannot raise uid 0's permitted set to the
    // bounding set: it stays what was configured (and effective follows).
    let prm = mask(&[CHOWN, KILL, NET_BIND_SERVICE]);
    assert_eq!(status_field(&out, "CapPrm"), Some(prm.clone()), "{out}");
    assert_eq!(status_field(&out, "CapEff"), Some(prm), "{out}");
    // CVE-2022-29162: the inheritable set is not filled from anything.
    assert_eq!(status_field(&out, "CapInh"), Some(mask(&[])), "{out}");
    assert_eq!(status_field(&out, "CapAmb"), Some(mask(&[])), "{out}");
    assert_eq!(
        status_field(&out, "NoNewPrivs").as_deref(),
        Some("1"),
        "{out}"
    );
}

#[test]
fn non_root_gets_exactly_the_ambient_sets() {
    if common::skip() {
        return;
    }
    let mut b = Bundle::new("caps-amb");
    b.user(1000, 1000, &[]);
    let keep: &[&str] = &["CAP_NET_BIND_SERVICE", "CAP_KILL"];
    set_caps(
        &mut b,
        &[
            (
                "bounding",
                &["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_NET_RAW"],
            ),
            ("effective", keep),
            ("permitted", keep),
            ("inheritable", keep),
            ("ambient", keep),
        ],
    );
    b.sh(STATUS);
    let out = run_ok("caps-amb", &mut b);
    let want = mask(&[NET_BIND_SERVICE, KILL]);
    for f in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(status_field(&out, f), Some(want.clone()), "{f}: {out}");
    }
    assert_eq!(
        status_field(&out, "CapBnd"),
        Some(mask(&[NET_BIND_SERVICE, KILL, NET_RAW])),
        "{out}"
    );

    // Without ambient capabilities a non-root process has none at all.
    let mut b = Bundle::new("caps-nonroot");
    b.user(1000, 1000, &[]);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.sh(STATUS);
    let out = run_ok("caps-nonroot", &mut b);
    for f in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(status_field(&out, f), Some(mask(&[])), "{f}: {out}");
    }
    assert_eq!(
        status_field(&out, "NoNewPrivs").as_deref(),
        Some("0"),
        "{out}"
    );
}

#[test]
fn rlimits_umask_groups_and_oom_score_adj() {
    if common::skip() {
        return;
    }
    let mut b = Bundle::new("proc-limits");
    b.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400}
    ]);
    b.config["process"]["user"] = json!({
        "uid": 1000, "gid": 1000, "additionalGids": [10, 5], "umask": 0o027
    });
    b.config["process"]["oomScoreAdj"] = json!(123);
    b.sh(
        "ulimit -n; ulimit -Hn; ulimit -c; ulimit -u; umask; id -u; id -g; \
          id -G | tr ' ' '\\n' | sort -n | tr '\\n' ' '; echo; cat /proc/self/oom_score_adj",
    );
    let out = run_ok("proc-limits", &mut b);
    let l: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(
        l,
        [
            "512",
            "2048",
            "0",
            "300",
            "0027",
            "1000",
            "1000",
            "5 10 1000",
            "123"
        ],
        "{out}"
    );
}

#[test]
fn masked_and_readonly_paths() {
    if common::skip() {
        return;
    }
    let mut b = Bundle::new("paths");
    std::fs::create_dir_all(b.rootfs().join("secret")).unwrap();
    std::fs::write(b.rootfs().join("secret/key"), "hunter2").unwrap();
    std::fs::write(b.rootfs().join("etc/hidden"), "hidden").unwrap();
    std::fs::create_dir_all(b.rootfs().join("ro")).unwrap();
    b.config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .extend([json!("/secret"), json!("/etc/hidden")]);
    b.config["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/ro"));
    b.sh("ls /secret | wc -l; cat /etc/hidden | wc -c; \
          touch /ro/x 2>/dev/null && echo ro-writable || echo ro-ok; \
          touch /secret/x 2>/dev/null && echo mask-writable || echo mask-ok; \
          echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo sys-writable || echo sys-ok; \
          touch /tmp/rw && echo rw-ok");
    let out = run_ok("paths", &mut b);
    let l: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(
        l,
        ["0", "0", "ro-ok", "mask-ok", "sys-ok", "rw-ok"],
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("secret/key")).unwrap(),
        "hunter2"
    );
}

#[test]
fn unknown_capability_is_ignored_with_a_warning_naming_it() {
    if common::skip() {
        return;
    }
    let mut b = Bundle::new("caps-unknown");
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_HULL_FROM_THE_FUTURE"));
    }
    b.sh(STATUS);
    let rt = Runtime::new("caps-unknown");
    let id = common::unique_id("caps-unknown");
    let log = rt.base().join("runtime.log");
    let log_s = log.to_string_lossy().into_owned();
    b.save_for(&id);
    rt.track(&id);
    let out = rt.cmd(&[
        "--log",
        &log_s,
        "run",
        &id,
        "--bundle",
        &b.dir().to_string_lossy(),
    ]);
    out.ok();
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("CAP_HULL_FROM_THE_FUTURE")
            || out.stderr.contains("CAP_HULL_FROM_THE_FUTURE"),
        "no warning naming the capability:\n{out}\nlog: {logged}"
    );
    if common::is_hull() {
        assert!(out.stderr.contains("CAP_HULL_FROM_THE_FUTURE"), "{out}");
        assert!(
            logged.contains("warning") && logged.contains("CAP_HULL_FROM_THE_FUTURE"),
            "{logged}"
        );
    }
    // The known ones still apply.
    let bnd = mask(&[KILL, NET_BIND_SERVICE, AUDIT_WRITE]);
    assert_eq!(status_field(&out.stdout, "CapBnd"), Some(bnd), "{out}");
    rt.assert_nothing_left(&id);
}

#[test]
fn unknown_rlimit_is_refused_naming_the_field() {
    if common::skip() {
        return;
    }
    let mut b = Bundle::new("rlimit-bad");
    b.args(&["true"]);
    b.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
        {"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}
    ]);
    let rt = Runtime::new("rlimit-bad");
    let id = common::unique_id("rlimit-bad");
    rt.create(&id, &mut b, &[])
        .fails()
        .hull_error_mentions(&["process.rlimits[1]"]);
    rt.assert_nothing_left(&id);
}

#[test]
fn io_priority_scheduler_and_personality() {
    if common::skip() {
        return;
    }
    if !common::is_hull() {
        eprintln!("skipped: runc 1.1 does not implement ioPriority/scheduler/personality");
        return;
    }
    let mut b = Bundle::new("sched");
    if !secutil::install_probe(&b) {
        return;
    }
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    b.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    // ioprio_get(IOPRIO_WHO_PROCESS, 0); sched_getscheduler(0); nice; uname -m.
    b.sh("probe sys 252 1 0; probe sys 145 0; cut -d' ' -f19 /proc/self/stat; uname -m");
    let out = run_ok("sched", &mut b);
    let l: Vec<&str> = out.lines().map(str::trim).collect();
    let arch32 = if cfg!(target_arch = "x86_64") {
        "i686"
    } else {
        "armv8l"
    };
    assert_eq!(
        l,
        [&*format!("ok {}", (2 << 13) | 6), "ok 3", "7", arch32],
        "{out}"
    );

    // Out-of-range values are refused before anything is made.
    let mut b = Bundle::new("sched-bad");
    b.args(&["true"]);
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 9});
    let rt = Runtime::new("sched-bad");
    let id = common::unique_id("sched-bad");
    rt.create(&id, &mut b, &[])
        .fails()
        .hull_error_mentions(&["process.ioPriority.priority"]);
    rt.assert_nothing_left(&id);
}

/// AppArmor/SELinux labels on a host without that LSM: refused, naming the
/// field (runc refuses these too), nothing left behind. Hosts with the LSM
/// are covered by `apparmor_profiles_apply_where_apparmor_is_enabled`.
#[test]
fn lsm_labels_without_the_lsm_are_refused() {
    if common::skip() {
        return;
    }
    let apparmor = apparmor_enabled();
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    type Case = (&'static str, &'static str, bool, fn(&mut Bundle));
    let cases: [Case; 3] = [
        ("lsm-aa", "process.apparmorProfile", apparmor, |b| {
            b.config["process"]["apparmorProfile"] = json!("hull-test")
        }),
        ("lsm-se", "process.selinuxLabel", selinux, |b| {
            b.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0")
        }),
        ("lsm-ml", "linux.mountLabel", selinux, |b| {
            b.config["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0")
        }),
    ];
    for (name, field, enabled, tweak) in cases {
        if enabled {
            // SELinux hosts are not among the ones this project runs on.
            eprintln!("{name}: not applicable, this host has the LSM ({field})");
            continue;
        }
        let mut b = Bundle::new(name);
        b.args(&["true"]);
        tweak(&mut b);
        let rt = Runtime::new(name);
        let id = common::unique_id(name);
        rt.create(&id, &mut b, &[])
            .fails()
            .hull_error_mentions(&[field]);
        rt.assert_nothing_left(&id);
    }
}

/// AppArmor is on (runc's test: securityfs has it and the module says Y).
fn apparmor_enabled() -> bool {
    std::path::Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.starts_with('Y'))
}

/// Where AppArmor is enabled (the tests/vm guest's Debian kernel): a
/// profile the kernel knows confines the process (`unconfined` always
/// exists), and one it does not know fails create with a clear error and
/// leaves nothing behind.
#[test]
fn apparmor_profiles_apply_where_apparmor_is_enabled() {
    if common::skip() {
        return;
    }
    if !apparmor_enabled() {
        eprintln!("not applicable: AppArmor is not enabled on this host (lsm_labels_without_the_lsm_are_refused covers it)");
        return;
    }
    let rt = Runtime::new("aa");
    let mut b = Bundle::new("aa");
    b.config["process"]["apparmorProfile"] = json!("unconfined");
    b.sh("cat /proc/self/attr/current");
    let id = common::unique_id("aa");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    assert_eq!(out.stdout.trim(), "unconfined", "{out}");
    rt.assert_nothing_left(&id);

    // Refused at create, as runc does (the label is set before Ready),
    // naming the field and the profile.
    let mut b = Bundle::new("aa-missing");
    b.config["process"]["apparmorProfile"] = json!("hull-test-no-such-profile");
    b.args(&["true"]);
    let id = common::unique_id("aa-missing");
    rt.create(&id, &mut b, &[])
        .fails()
        .hull_error_mentions(&["process.apparmorProfile"])
        .hull_error_mentions(&["hull-test-no-such-profile"]);
    rt.assert_nothing_left(&id);
}
