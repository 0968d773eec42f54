//! `exec` into running containers, and `features`.

mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use common::{Bundle, Runtime};
use serde_json::json;

/// A running `sleep` container; returns its id and init pid.
fn sleeper(rt: &Runtime, name: &str, b: &mut Bundle) -> (String, i64) {
    b.args(&["sleep", "1000"]);
    let id = common::unique_id(name);
    rt.run(&id, b, &["--detach"]).ok();
    let pid = rt.state_ok(&id)["pid"].as_i64().unwrap();
    (id, pid)
}

fn host_status_lines(pid: i64, keys: &[&str]) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .filter(|l| keys.iter().any(|k| l.starts_with(k)))
        .map(str::to_string)
        .collect()
}

#[test]
fn exec_joins_the_container() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("exec-join");
    let mut b = Bundle::new("exec-join");
    let (id, pid) = sleeper(&rt, "exec-join", &mut b);
    let out = rt.cmd(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo $$; for n in pid mnt net; do readlink /proc/self/ns/$n; done; \
         cat /proc/self/cgroup; grep -E '^(Cap|NoNewPrivs)' /proc/self/status; \
         ls /bin/busybox",
    ]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_ne!(lines[0], "1", "exec'd process must not be the init: {out}");
    for (i, ns) in ["pid", "mnt", "net"].iter().enumerate() {
        let want = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_eq!(lines[1 + i], want.display().to_string(), "{ns} ns: {out}");
    }
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cg.lines() {
        assert!(out.stdout.contains(line), "cgroup {line:?} differs: {out}");
    }
    for line in host_status_lines(pid, &["Cap", "NoNewPrivs"]) {
        assert!(
            out.stdout.contains(&line),
            "{line:?} differs from the init's: {out}"
        );
    }
    assert!(out.stdout.contains("/bin/busybox"), "{out}");
    // Seen from the host too, hierarchy by hierarchy.
    let epid = exec_detached(&rt, &id);
    assert_in_container_cgroups(&id, pid, epid);
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

/// `exec --detach ... sleep 1000` (with `configure` applied to the runtime
/// command); returns the exec'd process's host pid.
fn exec_detached_with(
    rt: &Runtime,
    id: &str,
    configure: impl FnOnce(&mut std::process::Command),
) -> i64 {
    let pid_file = rt
        .base()
        .join(format!("exec-{}.pid", common::unique_id("p")));
    let args = [
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        id,
        "sleep",
        "1000",
    ];
    rt.spawn_with(&args, configure).wait().ok();
    std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn exec_detached(rt: &Runtime, id: &str) -> i64 {
    exec_detached_with(rt, id, |_| {})
}

/// The cgroup mounts (v1 hierarchies and cgroup2) showing their whole
/// tree: (mount point, filesystem type).
fn cgroup_mounts() -> Vec<(String, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut out = Vec::new();
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(dash) = f.iter().position(|&x| x == "-") else {
            continue;
        };
        let fstype = f.get(dash + 1).copied().unwrap_or("");
        if (fstype == "cgroup" || fstype == "cgroup2") && f[3] == "/" {
            out.push((f[4].to_string(), fstype.to_string()));
        }
    }
    out
}

/// Container `id`'s directory in the hierarchy mounted at `mount` (on v2
/// the tests' cgroups have a parent: common::cgroups_path).
fn container_dir(mount: &str, id: &str) -> std::path::PathBuf {
    if common::cgroup_v2() {
        common::cgroup_dir("unified", id)
    } else {
        std::path::Path::new(mount).join(common::cgroup_name(id))
    }
}

/// Asserts that `pid` is in container `id`'s cgroup in every hierarchy:
/// its /proc/PID/cgroup equals the init's, line for line (each v1
/// hierarchy, and the cgroup2 `0::` line), and the container's directory
/// in each mounted v1 hierarchy and in the cgroup2 one lists it.
#[track_caller]
fn assert_in_container_cgroups(id: &str, init: i64, pid: i64) {
    let lines = |p: i64| {
        let text = std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
        let mut v: Vec<String> = text.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let (want, got) = (lines(init), lines(pid));
    assert_eq!(got, want, "pid {pid}'s cgroups differ from the init's");
    let mut checked = Vec::new();
    for (mount, fstype) in cgroup_mounts() {
        let dir = container_dir(&mount, id);
        // runc may leave a hierarchy out (e.g. a hybrid host's cgroup2);
        // hull makes the container's directory in every one.
        if !dir.exists() && !common::is_hull() {
            continue;
        }
        let procs = std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert!(
            procs.lines().any(|l| l.trim() == pid.to_string()),
            "pid {pid} is not in {} ({fstype}): {procs:?}",
            dir.display()
        );
        checked.push(dir);
    }
    assert!(!checked.is_empty(), "no cgroup hierarchy checked");
}

/// The exec'd process lands in every cgroup also where the kernel has no
/// clone3 or no CLONE_INTO_CGROUP (a seccomp filter plays the old kernel,
/// with each errno hull falls back on): it then joins the cgroup2
/// directory through cgroup.procs.
#[test]
fn exec_without_clone3_joins_every_cgroup() {
    if common::skip() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let rt = Runtime::new("exec-noclone3");
    let mut b = Bundle::new("exec-noclone3");
    let (id, pid) = sleeper(&rt, "exec-noclone3", &mut b);
    for errno in [libc::ENOSYS, libc::E2BIG, libc::EINVAL, libc::EPERM] {
        let epid = exec_detached_with(&rt, &id, |cmd| {
            // SAFETY: only async-signal-safe calls between fork and exec;
            // the filter program outlives the prctl that copies it.
            unsafe {
                cmd.pre_exec(move || deny_clone3(errno));
            }
        });
        assert_in_container_cgroups(&id, pid, epid);
    }
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

/// Install a seccomp filter failing clone3 with `errno` (x86-64 and
/// aarch64 share its number, 435); everything else is allowed.
fn deny_clone3(errno: i32) -> std::io::Result<()> {
    let nr_offset = 0; // seccomp_data.nr
    let filter = [
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: nr_offset,
        },
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_clone3 as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | errno as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prog points at a valid filter for the duration of the call
    // (the kernel copies it); root may install it without no_new_privs.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A container whose cgroup was removed under it (its init moved out of
/// one hierarchy's directory, then the directory removed) cannot be
/// joined: exec fails with an error naming the container and the cgroup,
/// and leaves nothing behind. Checked for a v1 hierarchy and, where one is
/// mounted, the cgroup2 directory (the clone3 path).
#[test]
fn exec_fails_clearly_when_the_cgroup_is_gone() {
    if common::skip() {
        return;
    }
    let mounts = cgroup_mounts();
    let v1 = mounts.iter().find(|m| m.1 == "cgroup");
    let v2 = mounts.iter().find(|m| m.1 == "cgroup2");
    for (n, (mount, _)) in [v1, v2].into_iter().flatten().enumerate() {
        let rt = Runtime::new("exec-nocg");
        let mut b = Bundle::new("exec-nocg");
        let (id, pid) = sleeper(&rt, &format!("exec-nocg{n}"), &mut b);
        let dir = container_dir(mount, &id);
        std::fs::write(
            std::path::Path::new(mount).join("cgroup.procs"),
            pid.to_string(),
        )
        .unwrap();
        std::fs::remove_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let out = rt.cmd(&["exec", &id, "true"]);
        out.fails();
        if common::is_hull() {
            out.hull_error_mentions(&[&id]);
            out.hull_error_mentions(&[&dir.display().to_string()]);
            out.hull_error_mentions(&["no longer exists"]);
        }
        rt.cmd(&["delete", "--force", &id]).ok();
        rt.assert_nothing_left(&id);
    }
}

#[test]
fn exec_overrides_and_exit_codes() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("exec-over");
    let mut b = Bundle::new("exec-over");
    b.config["process"]["noNewPrivileges"] = json!(false);
    let (id, _) = sleeper(&rt, "exec-over", &mut b);

    let out = rt.cmd(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7, "{out}");

    let out = rt.cmd(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        "--no-new-privs",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "-u",
        "0:0",
        "-g",
        "10",
        &id,
        "sh",
        "-c",
        "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; echo $FOO; pwd; id",
    ]);
    out.ok();
    // CAP_SYS_ADMIN is bit 21 on top of the default AUDIT_WRITE|KILL|NET_BIND_SERVICE.
    assert!(out.stdout.contains("CapEff:\t0000000020200420"), "{out}");
    assert!(out.stdout.contains("CapBnd:\t0000000020200420"), "{out}");
    assert!(out.stdout.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.stdout.contains("\nbar\n/tmp\n"), "{out}");
    assert!(out.stdout.contains("groups=10"), "{out}");

    let out = rt.cmd(&["exec", "-u", "1000", &id, "id", "-u"]);
    out.ok();
    assert_eq!(out.stdout.trim(), "1000", "{out}");

    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

#[test]
fn exec_with_process_json() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("exec-proc");
    let mut b = Bundle::new("exec-proc");
    let (id, _) = sleeper(&rt, "exec-proc", &mut b);
    let proc_file = rt.base().join("process.json");
    std::fs::write(
        &proc_file,
        json!({
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh", "-c", "echo $GREETING from $(pwd); exit 5"],
            "env": ["PATH=/bin", "GREETING=hi"],
            "cwd": "/etc"
        })
        .to_string(),
    )
    .unwrap();
    let out = rt.cmd(&["exec", "--process", proc_file.to_str().unwrap(), &id]);
    assert_eq!(out.code, 5, "{out}");
    assert_eq!(out.stdout.trim(), "hi from /etc", "{out}");
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

#[test]
fn exec_detach_writes_pid_file() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("exec-detach");
    let mut b = Bundle::new("exec-detach");
    let (id, pid) = sleeper(&rt, "exec-detach", &mut b);
    let pid_file = rt.base().join("exec.pid");
    rt.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "1000",
    ])
    .ok();
    let epid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(epid, pid);
    let cmdline = std::fs::read_to_string(format!("/proc/{epid}/cmdline")).unwrap();
    assert!(cmdline.starts_with("sleep\u{0}1000"), "{cmdline:?}");
    let a = std::fs::read_link(format!("/proc/{epid}/ns/pid")).unwrap();
    let b2 = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_eq!(a, b2);
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
    assert!(
        !std::path::Path::new(&format!("/proc/{epid}")).exists()
            || std::fs::read_to_string(format!("/proc/{epid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true),
        "exec'd process outlived the container"
    );
}

#[test]
fn exec_tty_with_console_socket() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("exec-tty");
    let mut b = Bundle::new("exec-tty");
    let (id, _) = sleeper(&rt, "exec-tty", &mut b);
    let sock = rt.base().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let run = rt.spawn(&[
        "exec",
        "--tty",
        "--detach",
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "tty; echo tty-ok; sleep 1",
    ]);
    let (conn, _) = listener.accept().unwrap();
    let master = recv_fd(conn.as_raw_fd());
    let out = run.wait();
    out.ok();
    let mut f = std::fs::File::from(master);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("tty-ok") && Instant::now() < deadline {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(seen.contains("/dev/pts/"), "{seen:?}");
    assert!(seen.contains("tty-ok"), "{seen:?}");
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

fn recv_fd(sock: i32) -> OwnedFd {
    let mut data = [0u8; 256];
    let mut cbuf = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: test-only recvmsg with valid buffers.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        assert!(libc::recvmsg(sock, &mut msg, 0) >= 0);
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(!c.is_null(), "no fd received");
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
        OwnedFd::from_raw_fd(fd)
    }
}

#[test]
fn exec_into_stopped_container_fails() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("exec-stopped");
    let mut b = Bundle::new("exec-stopped");
    b.sh("exit 0");
    let id = common::unique_id("exec-stopped");
    rt.run(&id, &mut b, &["--keep"]).ok();
    let out = rt.cmd(&["exec", &id, "true"]);
    out.fails();
    if common::is_hull() {
        out.hull_error_mentions(&["stopped"]);
    }
    rt.cmd(&["delete", &id]).ok();
    rt.assert_nothing_left(&id);
}

#[test]
fn twenty_concurrent_execs() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("exec-20");
    let mut b = Bundle::new("exec-20");
    let (id, _) = sleeper(&rt, "exec-20", &mut b);
    let runs: Vec<_> = (0..20)
        .map(|i| {
            rt.spawn(&[
                "exec",
                &id,
                "sh",
                "-c",
                &format!("echo n{i}; exit {}", i % 3),
            ])
        })
        .collect();
    for (i, r) in runs.into_iter().enumerate() {
        let out = r.wait();
        assert_eq!(out.code, (i % 3) as i32, "{out}");
        assert_eq!(out.stdout.trim(), format!("n{i}"), "{out}");
    }
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

#[test]
fn features_match_what_runs() {
    if common::skip() || !common::is_hull() {
        return;
    }
    let out = std::process::Command::new(common::runtime_bin())
        .arg("features")
        .output()
        .unwrap();
    assert!(out.status.success());
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(f["ociVersionMin"].is_string() && f["ociVersionMax"].is_string());
    let hooks: Vec<&str> = f["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(hooks.len(), 6, "{hooks:?}");

    // Every listed namespace works, all at once.
    let rt = Runtime::new("features");
    let mut b = Bundle::new("features");
    let ns: Vec<serde_json::Value> = f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| json!({"type": n}))
        .collect();
    b.config["linux"]["namespaces"] = json!(ns);
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    // Every listed capability can be put in the bounding set.
    let caps = f["linux"]["capabilities"].clone();
    b.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    b.sh("grep CapBnd /proc/self/status");
    let id = common::unique_id("features");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    let n = caps.as_array().unwrap().len();
    let mask = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    assert!(out.stdout.contains(&format!("{mask:016x}")), "{out}");
    rt.assert_nothing_left(&id);

    // Every listed seccomp action, operator, flag and architecture loads
    // (the container starts and runs under the filter).
    let sc = &f["linux"]["seccomp"];
    if sc["enabled"] == true {
        let list = |k: &str| -> Vec<String> {
            sc[k]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        let mut profiles = Vec::new();
        for a in list("actions") {
            if a == "SCMP_ACT_NOTIFY" {
                continue; // needs a listener; tests/seccomp.rs covers it
            }
            profiles.push((
                a.clone(),
                json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["acct"], "action": a}]}),
            ));
        }
        for op in list("operators") {
            profiles.push((
                op.clone(),
                json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 1, "valueTwo": 1, "op": op}]}]}),
            ));
        }
        for flag in list("supportedFlags") {
            profiles.push((
                flag.clone(),
                json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag],
                "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}),
            ));
        }
        for arch in list("archs") {
            profiles.push((
                arch.clone(),
                json!({"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": [arch],
                "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}),
            ));
        }
        assert!(
            profiles.len() > 10,
            "features lists too little seccomp: {sc}"
        );
        for (what, profile) in profiles {
            let mut b = Bundle::new("features-seccomp");
            b.config["linux"]["seccomp"] = profile;
            b.sh("echo loaded");
            let id = common::unique_id("features-seccomp");
            let out = rt.run(&id, &mut b, &[]);
            assert_eq!(out.code, 0, "seccomp {what}: {out}");
            assert_eq!(out.stdout.trim(), "loaded", "seccomp {what}: {out}");
            rt.assert_nothing_left(&id);
        }
    }

    // Every listed mount option is accepted on a tmpfs or bind mount.
    for o in f["mountOptions"].as_array().unwrap() {
        let o = o.as_str().unwrap();
        if ["remount", "mand"].contains(&o) {
            continue; // remount needs an existing mount; mand is refused by 6.x kernels
        }
        let mut b = Bundle::new("features-opt");
        let dir = b.host_dir("m");
        if o == "bind" || o == "rbind" {
            b.mount(json!({"destination": "/m", "type": "bind", "source": dir, "options": [o]}));
        } else if o == "idmap" || o == "ridmap" {
            // Bind mounts only, with a mapping (here the identity).
            let map = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
            b.mount(json!({"destination": "/m", "type": "bind", "source": dir,
                "options": ["rbind", o], "uidMappings": map, "gidMappings": map}));
        } else {
            b.mount(
                json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "options": [o]}),
            );
        }
        b.sh("true");
        let id = common::unique_id("features-opt");
        let out = rt.run(&id, &mut b, &[]);
        assert_eq!(out.code, 0, "mount option {o}: {out}");
        rt.assert_nothing_left(&id);
    }
}

/// An exec'd process starts with default signal dispositions and nothing
/// blocked, whatever the runtime was started with: including glibc's own
/// signals 32 and 33, which `signal()` refuses to reset (hull once left a
/// parent's SIG_IGN on them in place).
#[test]
fn exec_resets_inherited_signal_dispositions() {
    if common::skip() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let rt = Runtime::new("exec-sig");
    let mut b = Bundle::new("exec-sig");
    let (id, _) = sleeper(&rt, "exec-sig", &mut b);
    let out = rt
        .spawn_with(
            &[
                "exec",
                &id,
                "grep",
                "-E",
                "^Sig(Ign|Blk):",
                "/proc/self/status",
            ],
            |cmd| {
                // SAFETY: only async-signal-safe calls between fork and exec.
                unsafe {
                    cmd.pre_exec(|| {
                        for sig in [libc::SIGHUP, libc::SIGINT, 32, 33] {
                            libc::syscall(
                                libc::SYS_rt_sigaction,
                                sig,
                                &[libc::SIG_IGN, 0, 0, 0] as *const usize,
                                std::ptr::null_mut::<usize>(),
                                8usize,
                            );
                        }
                        let mut set: libc::sigset_t = std::mem::zeroed();
                        libc::sigemptyset(&mut set);
                        libc::sigaddset(&mut set, libc::SIGUSR1);
                        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                        Ok(())
                    });
                }
            },
        )
        .wait();
    out.ok();
    assert_eq!(
        out.stdout, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n",
        "{out}"
    );
}
