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
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
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
