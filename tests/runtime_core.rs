//! The rest of the runtime core's scope: user namespaces with id maps,
//! joining namespaces by path, --no-pivot, sysctls, signal forwarding in a
//! foreground `run`, the pty relay of `run`, JSON logs and --version.

mod common;

use std::time::{Duration, Instant};

use common::{Bundle, Runtime};
use serde_json::json;

fn set_linux(b: &mut Bundle, key: &str, v: serde_json::Value) {
    b.config["linux"][key] = v;
}

#[test]
fn user_namespace_with_id_maps() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("userns");
    let mut b = Bundle::new("userns");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    set_linux(
        &mut b,
        "uidMappings",
        json!([{"containerID": 0, "hostID": 200000, "size": 65536}]),
    );
    set_linux(
        &mut b,
        "gidMappings",
        json!([{"containerID": 0, "hostID": 200000, "size": 65536}]),
    );
    if let Some(l) = b.config["linux"].as_object_mut() {
        l.remove("resources");
    }
    b.sh("id -u; cat /proc/self/uid_map; [ -c /dev/null ] && echo null-ok; echo x > /dev/null && echo write-ok");
    let id = common::unique_id("userns");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", "200000", "65536"], "{out}");
    assert!(
        out.stdout.contains("null-ok") && out.stdout.contains("write-ok"),
        "{out}"
    );
    rt.assert_nothing_left(&id);
}

#[test]
fn joins_a_namespace_by_path() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("joinns");
    let mut a = Bundle::new("joinns-a");
    a.args(&["sleep", "100"]);
    let ida = common::unique_id("joinns-a");
    rt.run(&ida, &mut a, &["--detach"]).ok();
    let pid = rt.state_ok(&ida)["pid"].as_i64().unwrap();
    let want = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();

    let mut b = Bundle::new("joinns-b");
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    for n in ns.iter_mut() {
        if n["type"] == "network" {
            n["path"] = json!(format!("/proc/{pid}/ns/net"));
        }
    }
    b.sh("readlink /proc/self/ns/net");
    let idb = common::unique_id("joinns-b");
    let out = rt.run(&idb, &mut b, &[]);
    out.ok();
    assert_eq!(out.stdout.trim(), want.display().to_string(), "{out}");
    rt.cmd(&["delete", "--force", &ida]).ok();
    rt.assert_nothing_left(&ida);
    rt.assert_nothing_left(&idb);
}

#[test]
fn no_pivot_moves_the_root() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("nopivot");
    let mut b = Bundle::new("nopivot");
    b.sh("ls /bin/busybox && cat /proc/self/mountinfo | head -1");
    let id = common::unique_id("nopivot");
    let out = rt.run(&id, &mut b, &["--no-pivot"]);
    out.ok();
    assert!(out.stdout.contains("/bin/busybox"), "{out}");
    rt.assert_nothing_left(&id);
}

#[test]
fn sysctl_and_domainname() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("sysctl");
    let mut b = Bundle::new("sysctl");
    set_linux(&mut b, "sysctl", json!({"net.ipv4.ip_forward": "1"}));
    b.config["domainname"] = json!("example.test");
    b.sh("cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/kernel/domainname");
    let id = common::unique_id("sysctl");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["1", "example.test"],
        "{out}"
    );
    rt.assert_nothing_left(&id);
}

#[test]
fn foreground_run_forwards_signals() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("fwd");
    let mut b = Bundle::new("fwd");
    let dir = b.host_dir("shared");
    b.bind(&dir, "/shared");
    b.sh("trap 'exit 42' TERM; touch /shared/ready; while :; do sleep 0.1; done");
    let id = common::unique_id("fwd");
    let run = rt.spawn_run(&id, &mut b, &[], |_| {});
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join("ready").exists() {
        assert!(Instant::now() < deadline, "container never got ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGTERM to the runtime process, which must pass it on.
    // SAFETY: plain kill(2) on a child we spawned.
    unsafe { libc::kill(run.pid() as i32, libc::SIGTERM) };
    let out = run.wait_timeout(Duration::from_secs(20));
    assert_eq!(out.code, 42, "{out}");
    rt.assert_nothing_left(&id);
}

#[test]
fn foreground_run_relays_the_pty() {
    if common::skip() || !common::is_hull() {
        return;
    }
    let rt = Runtime::new("relay");
    let mut b = Bundle::new("relay");
    b.terminal(true);
    b.sh("[ -t 0 ] && [ -t 1 ] && echo on-a-tty; tty");
    let id = common::unique_id("relay");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    assert!(out.stdout.contains("on-a-tty"), "{out}");
    assert!(out.stdout.contains("/dev/pts/0"), "{out}");
    rt.assert_nothing_left(&id);
}

#[test]
fn json_log_lines_on_failure() {
    if common::skip() || !common::is_hull() {
        return;
    }
    let rt = Runtime::new("jsonlog");
    let mut b = Bundle::new("jsonlog");
    let id = common::unique_id("jsonlog");
    b.save_for(&id);
    std::fs::write(b.config_path(), "{not json").unwrap();
    let log = rt.base().join("log.json");
    let bundle = b.dir().display().to_string();
    let out = rt.cmd(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        &id,
        "--bundle",
        &bundle,
    ]);
    out.fails();
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error", "{text}");
    assert!(
        last["msg"].as_str().unwrap().contains("config.json"),
        "{text}"
    );
    assert!(last["time"].as_str().unwrap().ends_with('Z'), "{text}");
    rt.assert_nothing_left(&id);
}

#[test]
fn version_names_spec_and_commit() {
    if !common::is_hull() {
        return;
    }
    let out = std::process::Command::new(common::runtime_bin())
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.starts_with("hull version "), "{text}");
    assert!(text.contains("\ncommit: "), "{text}");
    assert!(text.contains("\nspec: 1.2.0"), "{text}");
}

#[test]
fn unknown_signal_is_refused() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("badsig");
    let mut b = Bundle::new("badsig");
    b.args(&["sleep", "100"]);
    let id = common::unique_id("badsig");
    rt.create(&id, &mut b, &[]).ok();
    rt.cmd(&["kill", &id, "SIGNOPE"]).fails();
    assert_eq!(rt.status(&id).as_deref(), Some("created"));
    rt.cmd(&["delete", &id]).ok();
    rt.assert_nothing_left(&id);
}

/// Regression: `start` raced with a process that execs and exits at once
/// and reported "exited before exec" (seen under load).
#[test]
fn start_of_a_process_that_exits_at_once() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("quick");
    let mut b = Bundle::new("quick");
    b.args(&["true"]);
    for _ in 0..20 {
        let id = common::unique_id("quick");
        rt.create(&id, &mut b, &[]).ok();
        // Let the start's poll see the process exit between its reads.
        rt.cmd(&["start", &id]).ok();
        rt.wait_status(&id, "stopped");
        rt.cmd(&["delete", &id]).ok();
        rt.assert_nothing_left(&id);
    }
}

/// Regression (runtime-tools linux_ns_itype): without a mount namespace the
/// container has no /proc of its own, and the init must still reach the
/// exec fifo and wait for `start`.
#[test]
fn runs_without_a_mount_namespace() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("nomntns");
    let mut b = Bundle::new("nomntns");
    b.config["linux"]["namespaces"] = json!([{"type": "pid"}]);
    if let Some(o) = b.config.as_object_mut() {
        o.remove("hostname");
    }
    // Masked and read-only paths need a mount namespace (runc refuses them
    // without one too).
    if let Some(l) = b.config["linux"].as_object_mut() {
        l.remove("maskedPaths");
        l.remove("readonlyPaths");
    }
    b.sh("echo no-mntns-ok");
    let id = common::unique_id("nomntns");
    rt.create(&id, &mut b, &[]).ok();
    assert_eq!(rt.status(&id).as_deref(), Some("created"));
    rt.cmd(&["start", &id]).ok();
    rt.wait_status(&id, "stopped");
    rt.cmd(&["delete", &id]).ok();
    rt.assert_nothing_left(&id);
    let out = rt.run(&common::unique_id("nomntns"), &mut b, &[]);
    out.ok();
    assert!(out.stdout.contains("no-mntns-ok"), "{out}");
}

/// runtime.md: a failing poststart or poststop hook is a warning, and the
/// remaining hooks of that kind still run.
#[test]
fn failing_poststart_and_poststop_hooks_do_not_stop_the_rest() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("hookwarn");
    let mut b = Bundle::new("hookwarn");
    let dir = b.host_dir("marks");
    for kind in ["poststart", "poststop"] {
        b.hook(kind, json!({"path": "/bin/false", "args": ["false"]}));
        let mark = dir.join(kind);
        b.hook(
            kind,
            json!({"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", mark.display())]}),
        );
    }
    b.args(&["sleep", "100"]);
    let id = common::unique_id("hookwarn");
    rt.create(&id, &mut b, &[]).ok();
    rt.cmd(&["start", &id]).ok();
    assert!(
        dir.join("poststart").exists(),
        "second poststart hook did not run"
    );
    rt.cmd(&["delete", "--force", &id]).ok();
    assert!(
        dir.join("poststop").exists(),
        "second poststop hook did not run"
    );
    rt.assert_nothing_left(&id);
}

/// process.consoleSize is the pty's window size (engines rely on it with
/// --console-socket; here the foreground relay shows it, as hull's own
/// stdin is not a terminal and so does not override it).
#[test]
fn console_size_is_applied() {
    if common::skip() || !common::is_hull() {
        return;
    }
    let rt = Runtime::new("consize");
    let mut b = Bundle::new("consize");
    b.terminal(true);
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    b.sh("stty size");
    let id = common::unique_id("consize");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    assert_eq!(out.stdout.trim(), "33 101", "{out}");
    rt.assert_nothing_left(&id);
}

#[test]
fn check_reports_the_host() {
    if common::skip() || !common::is_hull() {
        return;
    }
    let out = std::process::Command::new(common::runtime_bin())
        .args(["check", "--json"])
        .output()
        .unwrap();
    let items: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let find = |name: &str| {
        items
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {items}"))
    };
    for ns in ["mount", "pid", "network", "ipc", "uts", "user"] {
        assert_eq!(find(&format!("namespace: {ns}"))["verdict"], "ok");
    }
    let layout = find("cgroup layout");
    assert!(
        ["V1", "V2", "Hybrid"].contains(&layout["detail"].as_str().unwrap()),
        "{layout}"
    );
    // The CRIU verdict matches what `criu check` says on this host.
    let criu_ok = std::process::Command::new("criu")
        .arg("check")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let criu = find("criu");
    assert_eq!(criu["verdict"] == "ok", criu_ok, "{criu}");
    // AppArmor as the kernel module says (securityfs must show it too).
    let aa_param = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.starts_with('Y'));
    let aa = find("lsm: apparmor");
    let detail = aa["detail"].as_str().unwrap();
    if aa_param && std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        assert_eq!(aa["verdict"], "ok", "{aa}");
        assert!(detail.starts_with("enabled"), "{aa}");
        if let Ok(list) = std::fs::read_to_string("/sys/kernel/security/apparmor/profiles") {
            let n = list.lines().filter(|l| !l.trim().is_empty()).count();
            assert!(detail.contains(&format!("{n} profile")), "{n} loaded: {aa}");
        }
    } else if !aa_param {
        assert_eq!(aa["verdict"], "warn", "{aa}");
        assert!(detail.starts_with("not enabled"), "{aa}");
    }
    // The Kubernetes node section, each verdict as the host says.
    let k8s_ok = |name: &str| find(name)["verdict"] == "ok";
    assert_eq!(
        k8s_ok("k8s: cgroup v2"),
        layout["detail"] == "V2",
        "{}",
        find("k8s: cgroup v2")
    );
    assert_eq!(
        k8s_ok("k8s: systemd cgroup driver"),
        std::path::Path::new("/run/systemd/system").is_dir()
    );
    let cni_complete = ["/opt/cni/bin", "/usr/lib/cni"].iter().any(|d| {
        ["bridge", "host-local", "loopback"]
            .iter()
            .all(|p| std::path::Path::new(d).join(p).is_file())
    });
    assert_eq!(k8s_ok("k8s: CNI plugins"), cni_complete);
    let swap_on = std::fs::read_to_string("/proc/swaps").is_ok_and(|s| s.lines().count() > 1);
    assert_eq!(k8s_ok("k8s: swap"), !swap_on);
    let oom = find("k8s: oom_score_adj");
    if oom["verdict"] == "warn" {
        assert!(
            oom["detail"]
                .as_str()
                .unwrap()
                .contains("restrict_oom_score_adj = true"),
            "{oom}"
        );
    }
    assert!(
        out.status.success(),
        "nothing is missing on a host that runs these tests"
    );
    let text = std::process::Command::new(common::runtime_bin())
        .arg("check")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("verdict: "));
}
