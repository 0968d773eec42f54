//! Regression tests for runc's known container-breakout CVEs. Each one
//! sets up what the exploit needs and asserts that the container cannot
//! reach the host; each fails if hull's defence is removed.

mod common;
mod secutil;

use std::fs;
use std::os::fd::AsRawFd;

use common::{Bundle, Runtime};
use serde_json::json;

fn probe_bundle(name: &str) -> Option<Bundle> {
    if common::skip() {
        return None;
    }
    let b = Bundle::new(name);
    secutil::install_probe(&b).then_some(b)
}

fn fd_numbers(out: &str) -> Vec<u32> {
    out.lines()
        .filter_map(|l| l.split(" -> ").next()?.trim().parse().ok())
        .collect()
}

/// CVE-2024-21626: no fd of the runtime (nor one it inherited without
/// --preserve-fds) reaches the container, and the cwd is inside it.
#[test]
fn cve_2024_21626_no_host_fd_leaks_into_the_container() {
    let Some(mut b) = probe_bundle("cve-fds") else {
        return;
    };
    // An inheritable host directory fd in the runtime's environment.
    let host = b.host_dir("host-secret");
    fs::write(host.join("marker"), "host").unwrap();
    let dir = fs::File::open(&host).unwrap();
    b.sh("probe fds; echo cwd=$(readlink /proc/self/cwd)");
    let rt = Runtime::new("cve-fds");
    let id = common::unique_id("cve-fds");
    let out = rt
        .spawn_run(&id, &mut b, &[], |cmd| {
            common::with_fds(cmd, vec![(dir.as_raw_fd(), 7)])
        })
        .wait();
    out.ok();
    rt.assert_nothing_left(&id);
    assert_eq!(fd_numbers(&out.stdout), [0, 1, 2], "{out}");
    assert!(out.stdout.contains("cwd=/\n"), "{out}");

    // With --preserve-fds 1, exactly fd 3 more.
    let mut b = probe_bundle("cve-fds2").unwrap();
    b.sh("probe fds");
    let id = common::unique_id("cve-fds2");
    let out = rt
        .spawn_run(&id, &mut b, &["--preserve-fds", "1"], |cmd| {
            common::with_fds(cmd, vec![(dir.as_raw_fd(), 3), (dir.as_raw_fd(), 7)])
        })
        .wait();
    out.ok();
    assert_eq!(fd_numbers(&out.stdout), [0, 1, 2, 3], "{out}");
}

/// CVE-2024-21626 proper: process.cwd = /proc/self/fd/N where N is an fd
/// the runtime holds on a host directory. The container must not start
/// with its cwd on the host.
#[test]
fn cve_2024_21626_cwd_through_a_leaked_fd_is_refused() {
    let Some(mut b) = probe_bundle("cve-cwd") else {
        return;
    };
    let host = b.host_dir("host-cwd");
    fs::write(host.join("marker"), "host").unwrap();
    let dir = fs::File::open(&host).unwrap();
    let rt = Runtime::new("cve-cwd");
    for fd in 3..12 {
        b.cwd(&format!("/proc/self/fd/{fd}"));
        b.sh("ls; touch escaped");
        let id = common::unique_id("cve-cwd");
        let out = rt
            .spawn_run(&id, &mut b, &[], |cmd| {
                common::with_fds(cmd, vec![(dir.as_raw_fd(), 7)])
            })
            .wait();
        assert!(
            !out.stdout.contains("marker"),
            "fd {fd}: the container saw the host directory:\n{out}"
        );
        assert!(
            !host.join("escaped").exists(),
            "fd {fd}: the container wrote into the host directory:\n{out}"
        );
        rt.assert_nothing_left(&id);
    }
}

/// CVE-2019-5736 and CVE-2016-9962: while the init still runs hull's code
/// (created, waiting for start), a process in the container can neither
/// get a handle on its /proc/<pid>/exe (the host binary) nor ptrace it.
#[test]
fn cve_2019_5736_init_exe_is_not_reachable_from_the_container() {
    let Some(mut b) = probe_bundle("cve-exe") else {
        return;
    };
    b.args(&["sleep", "100"]);
    let rt = Runtime::new("cve-exe");
    let id = common::unique_id("cve-exe");
    rt.create(&id, &mut b, &[]).ok();
    let st = rt.state_ok(&id);
    assert_eq!(st["status"], "created");
    let host_pid = st["pid"].as_i64().unwrap();
    // The init is still the runtime's image (or a sealed copy of it).
    assert!(fs::read_link(format!("/proc/{host_pid}/exe")).is_ok());

    let probe = |args: &[&str]| {
        let mut a = vec!["exec", id.as_str(), "/bin/probe"];
        a.extend_from_slice(args);
        rt.cmd(&a)
    };
    // A handle (O_PATH) for reopening it for writing once it exits. (runc
    // runs its init from a sealed memfd copy, so the handle is harmless
    // there; hull's init is the host binary, kept non-dumpable until exec.)
    let out = probe(&["open", "/proc/1/exe", "path"]);
    if common::is_hull() {
        assert!(
            out.stdout.starts_with("errno"),
            "opened the init's exe:\n{out}"
        );
    }
    let out = probe(&["reopen", "/proc/1/exe"]);
    assert!(
        out.stdout.starts_with("errno"),
        "reopened the init's exe for writing:\n{out}"
    );
    // CVE-2016-9962: PTRACE_ATTACH (16) to the init, and its memory. (runc
    // 1.1's init is ptrace-able by container root while it waits; hull's
    // is not.)
    if common::is_hull() {
        let out = probe(&["sys", "101", "16", "1", "0", "0"]);
        assert!(
            out.stdout.starts_with("errno"),
            "attached to the init:\n{out}"
        );
        let out = probe(&["open", "/proc/1/mem", "r"]);
        assert!(
            out.stdout.starts_with("errno"),
            "opened the init's memory:\n{out}"
        );
    }

    rt.cmd(&["start", &id]).ok();
    rt.wait_status(&id, "running");
    // After the exec the container process's own exe cannot be rewritten.
    let out = probe(&["reopen", "/proc/self/exe"]);
    assert!(out.stdout.starts_with("errno"), "{out}");
    rt.cmd(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    rt.cmd(&["delete", &id]).ok();
    rt.assert_nothing_left(&id);
}

/// CVE-2019-5736 with CAP_SYS_PTRACE granted (bounding, effective and
/// permitted) and no user namespace: non-dumpable no longer keeps the
/// container away from the waiting init's /proc/1/exe. Opening it for
/// writing must fail directly (O_WRONLY, O_RDWR), through an O_PATH handle
/// reopened via /proc/self/fd/N, and -- the real attack -- through a
/// handle taken while the init waits and reopened once the init has
/// exec'd and no runtime process runs the image any more (ETXTBSY gone).
/// The runtime under test is a private copy of the binary, so that other
/// tests' runtime processes cannot keep it busy; the probe only opens and
/// closes, never writes, and the copy's sha256 is checked anyway.
#[test]
fn cve_2019_5736_ptrace_granted_cannot_reopen_the_runtime_for_writing() {
    if !common::is_hull() {
        return;
    }
    let Some(mut b) = probe_bundle("cve-ptrace") else {
        return;
    };
    let bin_dir = b.host_dir("bin");
    let bin = bin_dir.join("hull");
    fs::copy(common::runtime_bin(), &bin).unwrap();
    let before = common::sha256(&bin);
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_PTRACE"));
    }
    b.args(&["sleep", "100"]);
    let rt = Runtime::with_bin(&bin, "cve-ptrace");
    let id = common::unique_id("cve-ptrace");
    rt.create(&id, &mut b, &[]).ok();
    assert_eq!(rt.state_ok(&id)["status"], "created");
    let probe = |args: &[&str]| {
        let mut a = vec!["exec", id.as_str(), "/bin/probe"];
        a.extend_from_slice(args);
        rt.cmd(&a)
    };
    // CAP_SYS_PTRACE does reach the init: a handle is taken.
    let out = probe(&["open", "/proc/1/exe", "path"]);
    assert!(out.stdout.starts_with("ok"), "{out}");
    for (how, args) in [
        ("O_WRONLY", ["open", "/proc/1/exe", "w"].as_slice()),
        ("O_RDWR", ["open", "/proc/1/exe", "rw"].as_slice()),
        (
            "O_PATH, reopened O_WRONLY",
            ["reopen", "/proc/1/exe"].as_slice(),
        ),
    ] {
        let out = probe(args);
        assert!(
            out.stdout.starts_with("errno"),
            "opened the waiting init's exe for writing ({how}):\n{out}"
        );
    }

    // A process made before start holds an O_PATH handle on the init's
    // exe; `exec -d`, so that no runtime process is left once it runs.
    let script = "/bin/probe hold /proc/1/exe /go > /held.out 2>&1";
    rt.cmd(&["exec", "-d", &id, "sh", "-c", script]).ok();
    let held = b.rootfs().join("held.out");
    let read_held = || fs::read_to_string(&held).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !read_held().contains("held") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(read_held().starts_with("held"), "{}", read_held());
    rt.cmd(&["start", &id]).ok();
    rt.wait_status(&id, "running");
    // The init has exec'd and every runtime process has exited: the image
    // is executed by nobody, so ETXTBSY no longer protects it.
    fs::write(b.rootfs().join("go"), "").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !read_held().contains("rw ") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let result = read_held();
    rt.cmd(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    rt.cmd(&["delete", &id]).ok();
    rt.assert_nothing_left(&id);
    assert_eq!(common::sha256(&bin), before, "the runtime binary changed");
    assert!(
        result.contains("w refused") && result.contains("rw refused"),
        "a handle on the init's exe taken before start was reopened for \
         writing after the runtime exited:\n{result}"
    );
}

/// The same attack through `exec --cap CAP_SYS_PTRACE` into a created
/// container whose config did not need the sealed image: refused while the
/// init waits (it runs hull's plain image), allowed once it has exec'd.
#[test]
fn cve_2019_5736_exec_with_ptrace_into_a_waiting_plain_init_is_refused() {
    if !common::is_hull() {
        return;
    }
    let Some(mut b) = probe_bundle("cve-ptrace-exec") else {
        return;
    };
    b.args(&["sleep", "100"]);
    let rt = Runtime::new("cve-ptrace-exec");
    let id = common::unique_id("cve-ptrace-exec");
    rt.create(&id, &mut b, &[]).ok();
    let exec = |rt: &Runtime| {
        rt.cmd(&[
            "exec",
            "--cap",
            "CAP_SYS_PTRACE",
            &id,
            "/bin/probe",
            "open",
            "/proc/1/exe",
            "path",
        ])
    };
    exec(&rt).fails().hull_error_mentions(&["CVE-2019-5736"]);
    rt.cmd(&["start", &id]).ok();
    rt.wait_status(&id, "running");
    let out = exec(&rt);
    out.ok();
    assert!(out.stdout.starts_with("ok"), "{out}");
    rt.cmd(&["delete", "-f", &id]).ok();
    rt.assert_nothing_left(&id);
}

/// CVE-2019-16884 / CVE-2019-19921 / CVE-2021-30465: a mount destination
/// that is (or goes through) a symlink in the image is resolved inside the
/// rootfs, never on the host.
#[test]
fn symlinked_mount_destination_cannot_escape() {
    if common::skip() {
        return;
    }
    let mut b = Bundle::new("cve-symlink");
    let host = b.host_dir("host-target");
    fs::write(host.join("marker"), "host").unwrap();
    // /evil -> the host directory's absolute path; /up -> ../../../..
    std::os::unix::fs::symlink(&host, b.rootfs().join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", b.rootfs().join("up")).unwrap();
    let up_dest = format!("/up{}", host.display());
    b.mount(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}));
    b.mount(json!({"destination": up_dest, "type": "tmpfs", "source": "tmpfs"}));
    b.sh(&format!("touch /evil/pwned {up_dest}/pwned2; ls /evil"));
    let rt = Runtime::new("cve-symlink");
    let id = common::unique_id("cve-symlink");
    let out = rt.run(&id, &mut b, &[]);
    rt.assert_nothing_left(&id);
    let mut names: Vec<_> = fs::read_dir(&host)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["marker"], "the host directory was touched:\n{out}");
    assert!(common::host_mounts_under(&host).is_empty(), "{out}");
}

/// A fake /proc (anything but procfs) is refused: hull writes
/// oom_score_adj and sysctls there, and a bind-mounted host directory at
/// /proc would take those writes.
#[test]
fn fake_proc_is_refused() {
    if common::skip() {
        return;
    }
    for (name, mount) in [
        (
            "cve-proc-tmpfs",
            json!({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}),
        ),
        (
            "cve-proc-bind",
            json!({"destination": "/proc", "type": "bind", "options": ["rbind"]}),
        ),
        (
            "cve-proc-untyped",
            json!({"destination": "/proc", "options": ["rbind"]}),
        ),
    ] {
        let mut b = Bundle::new(name);
        b.args(&["true"]);
        let fake = b.host_dir("fakeproc");
        fs::create_dir_all(fake.join("self")).unwrap();
        fs::write(fake.join("self/oom_score_adj"), "0").unwrap();
        let mut mount = mount;
        if mount["type"] != "tmpfs" {
            mount["source"] = json!(fake);
        }
        b.config["mounts"][0] = mount;
        b.config["process"]["oomScoreAdj"] = json!(100);
        let rt = Runtime::new(name);
        let id = common::unique_id(name);
        rt.create(&id, &mut b, &[])
            .fails()
            .hull_error_mentions(&["/proc", "procfs"]);
        rt.assert_nothing_left(&id);
        assert_eq!(
            fs::read_to_string(fake.join("self/oom_score_adj")).unwrap(),
            "0",
            "{name}: the runtime wrote into the fake /proc on the host"
        );
    }
}
