//! Cgroup limits on this host's hierarchies (v1, hybrid, or pure v2 as in
//! the tests/vm guest): resources applied at create and read back from the
//! files (outside) and from the container's own cgroup mount (inside); OOM
//! kill seen by `events`; pids limit against a fork loop; devices;
//! pause/resume; update; ps; events --stats; bad input. Every test ends with
//! nothing left behind. Where the layouts differ (file names, cpu.shares as
//! cpu.weight), each test states both.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{cgroup_dir, wait_until, Bundle, Runtime};
use serde_json::{json, Value};

fn skip() -> bool {
    common::skip()
}

/// A pure cgroup v2 host (see common::cgroup_v2).
fn v2() -> bool {
    common::cgroup_v2()
}

fn read(hier: &str, id: &str, file: &str) -> String {
    let p = cgroup_dir(hier, id).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_string()
}

fn resources(b: &mut Bundle, r: Value) {
    let res = &mut b.config["linux"]["resources"];
    for (k, v) in r.as_object().unwrap() {
        res[k] = v.clone();
    }
}

/// Run detached (`run -d`), asserting success.
fn run_detached(rt: &Runtime, id: &str, b: &mut Bundle) {
    rt.run(id, b, &["-d"]).ok();
    rt.wait_status(id, "running");
}

/// CPU time used by the container's cgroup, in ns.
fn cpu_usage(id: &str) -> u64 {
    if v2() {
        let stat = read("cpu", id, "cpu.stat");
        let usec = stat
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .unwrap_or_else(|| panic!("no usage_usec in cpu.stat:\n{stat}"));
        usec.parse::<u64>().unwrap() * 1000
    } else {
        read("cpuacct", id, "cpuacct.usage").parse().unwrap()
    }
}

/// On v2 the container's cgroup is its own /sys/fs/cgroup only inside a
/// cgroup namespace (runc's spec adds one there too).
fn cgroupns_on_v2(b: &mut Bundle) {
    if v2() {
        b.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}));
    }
}

#[test]
fn limits_are_applied_before_start_and_seen_inside() {
    if skip() {
        return;
    }
    let rt = Runtime::new("cg-limits");
    let id = common::unique_id("cg-limits");
    let mut b = Bundle::new("cg-limits");
    resources(
        &mut b,
        json!({
            "memory": {"limit": 67108864, "swap": 67108864, "reservation": 33554432},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 64}
        }),
    );
    cgroupns_on_v2(&mut b);
    if v2() {
        b.sh("cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/pids.max; sleep 1000");
    } else {
        b.sh("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/pids/pids.max; sleep 1000");
    }
    let out_file = rt.base().join("limits.out");
    let pending = rt.spawn_create(&id, &mut b, &[], |cmd| {
        cmd.stdout(fs::File::create(&out_file).unwrap());
    });
    pending.wait().ok();
    // Created, not started: the limits are already there.
    if v2() {
        // swap = limit + swap.max; shares 512 is weight 20 (runc's mapping).
        assert_eq!(read("memory", &id, "memory.max"), "67108864");
        assert_eq!(read("memory", &id, "memory.swap.max"), "0");
        assert_eq!(read("memory", &id, "memory.low"), "33554432");
        assert_eq!(read("cpu", &id, "cpu.weight"), "20");
        assert_eq!(read("cpu", &id, "cpu.max"), "50000 100000");
    } else {
        assert_eq!(read("memory", &id, "memory.limit_in_bytes"), "67108864");
        assert_eq!(
            read("memory", &id, "memory.memsw.limit_in_bytes"),
            "67108864"
        );
        assert_eq!(
            read("memory", &id, "memory.soft_limit_in_bytes"),
            "33554432"
        );
        assert_eq!(read("cpu", &id, "cpu.shares"), "512");
        assert_eq!(read("cpu", &id, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", &id, "cpu.cfs_period_us"), "100000");
    }
    assert_eq!(read("cpuset", &id, "cpuset.cpus"), "0");
    assert_eq!(read("cpuset", &id, "cpuset.mems"), "0");
    assert_eq!(read("pids", &id, "pids.max"), "64");
    let st = rt.state_ok(&id);
    let pid = st["pid"].as_i64().unwrap();
    // The init is in the container's cgroup in every hierarchy.
    let procs = read("memory", &id, "cgroup.procs");
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "pid {pid} not in {procs}"
    );
    let affinity = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        affinity
            .lines()
            .any(|l| l.starts_with("Cpus_allowed_list:") && l.ends_with("\t0")),
        "cpuset not in effect:\n{affinity}"
    );
    rt.cmd(&["start", &id]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || fs::read_to_string(&out_file)
            .is_ok_and(|s| s.lines().count() >= 3)),
        "container printed nothing"
    );
    let inside = fs::read_to_string(&out_file).unwrap();
    let cpu = if v2() { "20" } else { "512" };
    assert_eq!(
        inside.lines().collect::<Vec<_>>(),
        ["67108864", cpu, "64"],
        "inside view"
    );
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

/// The block schedulers this host's disks offer, e.g. "none mq-deadline
/// kyber" (each name once).
fn block_schedulers() -> String {
    let mut names: Vec<String> = Vec::new();
    for e in fs::read_dir("/sys/block").into_iter().flatten().flatten() {
        let text = fs::read_to_string(e.path().join("queue/scheduler")).unwrap_or_default();
        for n in text.split_whitespace() {
            let n = n.trim_matches(|c| c == '[' || c == ']').to_string();
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names.join(" ")
}

/// The file a blkio weight lands in on this host and how it reads back, or
/// why the host has none. Weight files come from BFQ (CFQ before 5.0) and,
/// on v2, also from blk-iocost (io.weight, converted like runc).
fn blkio_weight_file(weight: u16) -> Result<(&'static str, String), String> {
    let schedulers = block_schedulers();
    let has = |s: &str| schedulers.split_whitespace().any(|n| n == s);
    let bfq = has("bfq") || Path::new("/sys/module/bfq").exists();
    if v2() {
        if bfq {
            return Ok(("io.bfq.weight", weight.to_string()));
        }
        // io.cost.qos is a root-only file of blk-iocost.
        if Path::new("/sys/fs/cgroup/io.cost.qos").exists() {
            let w = 1 + (u64::from(weight) - 10) * 9999 / 990;
            return Ok(("io.weight", w.to_string()));
        }
        return Err(format!(
            "no io weight files on this host: no blk-iocost (/sys/fs/cgroup/io.cost.qos) \
             and no BFQ (block schedulers: {schedulers})"
        ));
    }
    if bfq {
        Ok(("blkio.bfq.weight", weight.to_string()))
    } else if has("cfq") {
        Ok(("blkio.weight", weight.to_string()))
    } else {
        Err(format!(
            "no blkio weight files on this kernel: no BFQ or CFQ (block schedulers: {schedulers})"
        ))
    }
}

/// A blkio weight lands in this host's weight file; a host without one (no
/// BFQ, as on some kernels here) gets hull's clear refusal naming the field,
/// and runc refuses that config too.
#[test]
fn blkio_weight_is_applied_or_refused_clearly() {
    if skip() {
        return;
    }
    let rt = Runtime::new("cg-blkio");
    let id = common::unique_id("cg-blkio");
    let mut b = Bundle::new("cg-blkio");
    resources(&mut b, json!({"blockIO": {"weight": 500}}));
    b.args(&["sleep", "1000"]);
    match blkio_weight_file(500) {
        Ok((file, want)) => {
            rt.create(&id, &mut b, &[]).ok();
            let got = read("blkio", &id, file);
            // "500", or "default 500" for the BFQ and io.weight files.
            assert_eq!(got.split_whitespace().last(), Some(&*want), "{file}: {got}");
            rt.cmd(&["delete", "--force", &id]).ok();
        }
        Err(host) => {
            eprintln!("note: {host}: expecting a refusal");
            rt.create(&id, &mut b, &[])
                .fails()
                .hull_error_mentions(&["blockIO.weight"])
                .hull_error_mentions(&["no blkio weight files"]);
            if common::is_hull() && Path::new(common::RUNC).exists() {
                let runc = Runtime::with_bin(common::RUNC, "cg-blkio-runc");
                let rid = common::unique_id("cg-blkio-runc");
                let out = runc.create(&rid, &mut b, &[]);
                assert!(!out.success(), "runc accepted it:\n{out}");
                runc.assert_nothing_left(&rid);
            }
        }
    }
    rt.assert_nothing_left(&id);
}

#[test]
fn oom_kill_shows_in_events_and_delete_cleans_up() {
    if skip() {
        return;
    }
    let rt = Runtime::new("cg-oom");
    let id = common::unique_id("cg-oom");
    let mut b = Bundle::new("cg-oom");
    let host = b.host_dir("host");
    b.bind(&host, "/host");
    resources(
        &mut b,
        json!({"memory": {"limit": 16777216, "swap": 16777216}}),
    );
    b.sh("while [ ! -e /host/go ]; do sleep 0.05; done; dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd=$? > /host/done; sleep 1000");
    run_detached(&rt, &id, &mut b);
    let events = rt.spawn(&["events", "--interval", "1s", &id]);
    std::thread::sleep(Duration::from_millis(700));
    fs::write(host.join("go"), "").unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || host.join("done").exists()),
        "allocation never finished"
    );
    // memory.oom_control (v1) and memory.events (v2) both count oom_kill.
    let oom = if v2() {
        read("memory", &id, "memory.events")
    } else {
        read("memory", &id, "memory.oom_control")
    };
    assert!(
        oom.lines()
            .any(|l| l.starts_with("oom_kill ") && l != "oom_kill 0"),
        "no OOM kill counted:\n{oom}"
    );
    let done = fs::read_to_string(host.join("done")).unwrap();
    assert_ne!(
        done.trim(),
        "dd=0",
        "dd survived a 64M allocation under a 16M limit"
    );
    // events prints stats each second and the oom.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while std::time::Instant::now() < deadline {
        seen = events_output(&rt);
        if seen.lines().any(|l| l.contains("\"oom\"")) && seen.contains("\"stats\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(events);
    let oom_line = seen
        .lines()
        .find(|l| l.contains("\"oom\""))
        .unwrap_or_else(|| panic!("no oom event in:\n{seen}"));
    let v: Value = serde_json::from_str(oom_line).unwrap();
    assert_eq!(v["type"], "oom");
    assert_eq!(v["id"], id.as_str());
    let stats_line = seen.lines().find(|l| l.contains("\"stats\"")).unwrap();
    let v: Value = serde_json::from_str(stats_line).unwrap();
    assert_eq!(v["data"]["memory"]["usage"]["limit"], 16777216);
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

/// The stdout of the most recent runtime command started by `rt` (the
/// harness writes each command's output to `<base>/io/<n>.out`).
fn events_output(rt: &Runtime) -> String {
    let mut all = String::new();
    for e in fs::read_dir(rt.base().join("io")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "out") {
            let text = fs::read_to_string(e.path()).unwrap_or_default();
            if text.contains("\"type\"") {
                all.push_str(&text);
            }
        }
    }
    all
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    if skip() {
        return;
    }
    let rt = Runtime::new("cg-pids");
    let id = common::unique_id("cg-pids");
    let mut b = Bundle::new("cg-pids");
    let host = b.host_dir("host");
    b.bind(&host, "/host");
    resources(&mut b, json!({"pids": {"limit": 10}}));
    // A child shell forks until it fails (ash exits on a failed fork);
    // the init then uses only builtins and exec.
    b.sh("sh -c 'i=0; while [ $i -lt 40 ]; do sleep 1000 & i=$((i+1)); done' 2>/dev/null; echo ok > /host/done; exec sleep 1000");
    run_detached(&rt, &id, &mut b);
    assert!(
        wait_until(Duration::from_secs(20), || host.join("done").exists()),
        "the loop never finished"
    );
    let current: usize = read("pids", &id, "pids.current").parse().unwrap();
    assert!((2..=10).contains(&current), "pids.current {current}");
    let events = read("pids", &id, "pids.events");
    assert!(
        events.starts_with("max ") && events != "max 0",
        "no fork was refused: {events}"
    );
    let ps = rt.cmd(&["ps", "--format", "json", &id]);
    ps.ok();
    assert_eq!(ps.json().as_array().unwrap().len(), current);
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

#[test]
fn devices_denied_unless_allowed() {
    if skip() {
        return;
    }
    if !Path::new("/dev/fuse").exists() {
        eprintln!("skipped: this host has no /dev/fuse to allow or deny");
        return;
    }
    let rt = Runtime::new("cg-dev");
    for allow in [false, true] {
        let id = common::unique_id("cg-dev");
        let mut b = Bundle::new("cg-dev");
        b.config["linux"]["devices"] = json!([
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}
        ]);
        if allow {
            b.config["linux"]["resources"]["devices"]
                .as_array_mut()
                .unwrap()
                .push(
                    json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}),
                );
        }
        b.sh("(exec 3</dev/fuse) 2>&1 && echo fuse-opened; head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok");
        let out = rt.run(&id, &mut b, &[]);
        out.ok();
        if allow {
            assert!(
                out.stdout.contains("fuse-opened"),
                "allowed device not opened:\n{out}"
            );
        } else {
            assert!(
                !out.stdout.contains("fuse-opened"),
                "denied device opened:\n{out}"
            );
            assert!(out.stdout.contains("Operation not permitted"), "{out}");
        }
        assert!(
            out.stdout.contains("null-ok") && out.stdout.contains('4'),
            "{out}"
        );
        rt.assert_nothing_left(&id);
    }
}

#[test]
fn pause_freezes_and_resume_thaws() {
    if skip() {
        return;
    }
    let rt = Runtime::new("cg-pause");
    let id = common::unique_id("cg-pause");
    let mut b = Bundle::new("cg-pause");
    b.sh("while :; do :; done");
    run_detached(&rt, &id, &mut b);
    rt.cmd(&["resume", &id]).fails();
    rt.cmd(&["pause", &id]).ok();
    assert_eq!(rt.state_ok(&id)["status"], "paused");
    assert!(frozen(&id), "not frozen after pause");
    let a = cpu_usage(&id);
    std::thread::sleep(Duration::from_millis(400));
    let b2 = cpu_usage(&id);
    assert!(
        b2 - a < 5_000_000,
        "frozen container used {} ns of CPU",
        b2 - a
    );
    rt.cmd(&["pause", &id]).fails();
    rt.cmd(&["resume", &id]).ok();
    assert_eq!(rt.state_ok(&id)["status"], "running");
    assert!(!frozen(&id), "still frozen after resume");
    std::thread::sleep(Duration::from_millis(400));
    let c = cpu_usage(&id);
    assert!(
        c - b2 > 50_000_000,
        "resumed container used only {} ns",
        c - b2
    );
    // Deleting a paused container works and leaves nothing.
    rt.cmd(&["pause", &id]).ok();
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

/// Whether the container's cgroup is frozen, from the kernel's own view:
/// freezer.state (v1) or cgroup.events (v2).
fn frozen(id: &str) -> bool {
    if v2() {
        let events = read("cpu", id, "cgroup.events");
        events.lines().any(|l| l == "frozen 1")
    } else {
        read("freezer", id, "freezer.state") == "FROZEN"
    }
}

#[test]
fn kill_all_while_paused_kills_everything() {
    if skip() {
        return;
    }
    let rt = Runtime::new("cg-killp");
    let id = common::unique_id("cg-killp");
    let mut b = Bundle::new("cg-killp");
    b.sh("sleep 1000 & sleep 1000 & wait");
    run_detached(&rt, &id, &mut b);
    rt.cmd(&["pause", &id]).ok();
    rt.cmd(&["kill", "--all", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    assert!(
        wait_until(Duration::from_secs(5), || read("pids", &id, "cgroup.procs")
            .is_empty()),
        "processes left after kill --all"
    );
    rt.cmd(&["delete", &id]).ok();
    rt.assert_nothing_left(&id);
}

#[test]
fn update_changes_live_limits() {
    if skip() {
        return;
    }
    let rt = Runtime::new("cg-update");
    let id = common::unique_id("cg-update");
    let mut b = Bundle::new("cg-update");
    resources(
        &mut b,
        json!({"memory": {"limit": 67108864}, "cpu": {"shares": 512}, "pids": {"limit": 100}}),
    );
    b.args(&["sleep", "1000"]);
    run_detached(&rt, &id, &mut b);
    rt.cmd(&[
        "update",
        "--memory",
        "128M",
        "--cpu-share",
        "256",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "100000",
        "--pids-limit",
        "50",
        "--cpuset-cpus",
        "0",
        &id,
    ])
    .ok();
    if v2() {
        // shares 256 is weight 10 (runc's mapping).
        assert_eq!(read("memory", &id, "memory.max"), "134217728");
        assert_eq!(read("cpu", &id, "cpu.weight"), "10");
        assert_eq!(read("cpu", &id, "cpu.max"), "20000 100000");
    } else {
        assert_eq!(read("memory", &id, "memory.limit_in_bytes"), "134217728");
        assert_eq!(read("cpu", &id, "cpu.shares"), "256");
        assert_eq!(read("cpu", &id, "cpu.cfs_quota_us"), "20000");
    }
    assert_eq!(read("pids", &id, "pids.max"), "50");
    assert_eq!(read("cpuset", &id, "cpuset.cpus"), "0");
    // -r: a resources JSON file; unlimited pids; -1 memory.
    let file = rt.base().join("res.json");
    fs::write(
        &file,
        r#"{"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}}"#,
    )
    .unwrap();
    rt.cmd(&["update", "-r", file.to_str().unwrap(), &id]).ok();
    assert_eq!(read("pids", &id, "pids.max"), "max");
    if v2() {
        assert_eq!(read("cpu", &id, "cpu.max"), "max 100000");
        assert_eq!(read("memory", &id, "memory.max"), "max");
        // The earlier update is kept: weight stays 10.
        assert_eq!(read("cpu", &id, "cpu.weight"), "10");
    } else {
        assert_eq!(read("cpu", &id, "cpu.cfs_quota_us"), "-1");
        assert!(
            read("memory", &id, "memory.limit_in_bytes")
                .parse::<u64>()
                .unwrap()
                > 1 << 40
        );
        // The earlier update is kept: shares stay 256.
        assert_eq!(read("cpu", &id, "cpu.shares"), "256");
    }
    // Bad values fail and change nothing.
    rt.cmd(&["update", "--cpuset-cpus", "0-4095", &id])
        .fails()
        .hull_error_mentions(&["cpu"]);
    assert_eq!(read("cpuset", &id, "cpuset.cpus"), "0");
    rt.cmd(&["update", "--memory", "12x", &id]).fails();
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.cmd(&["update", "--memory", "1M", &id]).fails();
    rt.assert_nothing_left(&id);
}

#[test]
fn ps_lists_the_container_processes() {
    if skip() {
        return;
    }
    let rt = Runtime::new("cg-ps");
    let id = common::unique_id("cg-ps");
    let mut b = Bundle::new("cg-ps");
    b.sh("sleep 1001 & sleep 1002 & wait");
    run_detached(&rt, &id, &mut b);
    assert!(wait_until(Duration::from_secs(5), || read(
        "pids",
        &id,
        "cgroup.procs"
    )
    .lines()
    .count()
        == 3));
    let out = rt.cmd(&["ps", "-f", "json", &id]);
    out.ok();
    let mut pids: Vec<i64> = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    let mut want: Vec<i64> = read("pids", &id, "cgroup.procs")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    pids.sort();
    want.sort();
    assert_eq!(pids, want);
    let init = rt.state_ok(&id)["pid"].as_i64().unwrap();
    assert!(pids.contains(&init));
    let table = rt.cmd(&["ps", &id]);
    table.ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].contains("PID") && lines[0].contains("CMD"),
        "{table}"
    );
    assert_eq!(lines.len(), 4, "{table}");
    assert!(table.stdout.contains("sleep 1001") && table.stdout.contains("sleep 1002"));
    // ps options follow the id (runc's form); hull also takes them after `--`.
    let custom = rt.cmd(&["ps", &id, "-o", "pid,comm"]);
    custom.ok();
    assert_eq!(custom.stdout.lines().count(), 4, "{custom}");
    assert!(
        custom
            .stdout
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .eq(["PID", "COMMAND"]),
        "{custom}"
    );
    if common::is_hull() {
        let dashed = rt.cmd(&["ps", &id, "--", "-o", "pid,comm"]);
        assert_eq!(dashed.stdout, custom.stdout);
    }
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

#[test]
fn events_stats_match_the_cgroup_files() {
    if skip() {
        return;
    }
    let rt = Runtime::new("cg-stats");
    let id = common::unique_id("cg-stats");
    let mut b = Bundle::new("cg-stats");
    resources(
        &mut b,
        json!({"memory": {"limit": 50331648}, "pids": {"limit": 30}}),
    );
    b.sh("sleep 1000 & sleep 1000 & i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; wait");
    run_detached(&rt, &id, &mut b);
    std::thread::sleep(Duration::from_millis(300));
    rt.cmd(&["pause", &id]).ok();
    let out = rt.cmd(&["events", "--stats", &id]);
    out.ok();
    let v = out.json();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], id.as_str());
    let d = &v["data"];
    let num = |s: String| s.parse::<u64>().unwrap();
    assert_eq!(d["memory"]["usage"]["limit"], 50331648);
    // Paused, so usage holds still between the runtime's read and ours.
    let (usage, peak) = if v2() {
        ("memory.current", "memory.peak")
    } else {
        ("memory.usage_in_bytes", "memory.max_usage_in_bytes")
    };
    assert_eq!(
        d["memory"]["usage"]["usage"],
        num(read("memory", &id, usage))
    );
    if cgroup_dir("memory", &id).join(peak).exists() {
        assert_eq!(d["memory"]["usage"]["max"], num(read("memory", &id, peak)));
    }
    assert_eq!(d["pids"]["current"], num(read("pids", &id, "pids.current")));
    assert_eq!(d["pids"]["limit"], 30);
    assert_eq!(d["cpu"]["usage"]["total"], cpu_usage(&id));
    let raw = &d["memory"]["raw"];
    if v2() {
        // cgroup2 has no per-CPU usage (runc reports none either).
        assert!(raw["anon"].is_u64() && raw["file"].is_u64(), "{raw}");
    } else {
        let percpu: u64 = d["cpu"]["usage"]["percpu"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .sum();
        assert!(percpu > 0 && percpu <= cpu_usage(&id) + 1000, "{percpu}");
        assert!(raw["total_rss"].is_u64() || raw["rss"].is_u64(), "{raw}");
    }
    assert!(d["hugetlb"].is_object() && d["blkio"].is_object());
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.cmd(&["events", "--stats", &id]).fails();
    rt.assert_nothing_left(&id);
}

#[test]
fn bad_resources_fail_naming_the_field_and_leave_nothing() {
    if skip() {
        return;
    }
    let rt = Runtime::new("cg-bad");
    // `unified` is for cgroup2 only: refused on v1, and on v2 a key that
    // names no file of the cgroup is refused.
    let unified = if v2() {
        json!({"unified": {"memory.nonexistent": "1"}})
    } else {
        json!({"unified": {"memory.high": "1000000"}})
    };
    let cases = [
        (json!({"memory": {"limit": -5}}), "memory.limit"),
        (unified, "unified"),
        (json!({"cpu": {"cpus": "0-4095"}}), "cpu.cpus"),
        (json!({"cpu": {"shares": -3}}), "cpu.shares"),
        // runc ignores unknown access letters; hull refuses them.
        (
            json!({"devices": [{"allow": true, "access": "rwx"}]}),
            "devices",
        ),
    ];
    let mut cases = cases.to_vec();
    // A limit the kernel cannot take fails when it is written (after the
    // cgroup was made), and that cgroup is removed again.
    if Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists() {
        // A runtime longer than its period: EINVAL from the kernel.
        cases.push((
            json!({"cpu": {"realtimePeriod": 100000, "realtimeRuntime": 200000}}),
            "cpu.realtimeRuntime",
        ));
    }
    for (res, field) in cases {
        if field == "devices" && !common::is_hull() {
            continue;
        }
        let id = common::unique_id("cg-bad");
        let mut b = Bundle::new("cg-bad");
        resources(&mut b, res.clone());
        let out = rt.create(&id, &mut b, &[]);
        out.fails().hull_error_mentions(&[field]);
        rt.assert_nothing_left(&id);
    }
}

#[test]
fn cgroup_namespace_shows_the_container_cgroup_as_root() {
    if skip() {
        return;
    }
    let rt = Runtime::new("cg-ns");
    // A cgroup2 view: the host's own on v2; on a hybrid host a cgroup2
    // mount of the container's own. Without a cgroup namespace it shows the
    // whole tree, within one only the container's subtree.
    let hybrid = !v2() && Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists();
    // hull's `cgroup` mount on v2 without a cgroup namespace binds the
    // container's own cgroup (as on v1); runc mounts the whole tree.
    let own_without_ns = v2() && common::is_hull();
    let cg2 = if v2() { "/sys/fs/cgroup" } else { "/tmp/cg2" };
    for with_ns in [false, true] {
        let id = common::unique_id("cg-ns");
        let mut b = Bundle::new("cg-ns");
        if with_ns {
            b.config["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "cgroup"}));
        }
        resources(&mut b, json!({"memory": {"limit": 41943040}}));
        if hybrid {
            b.mount(json!({"destination": cg2, "type": "cgroup2", "source": "cgroup2"}));
        }
        // The limit as the container reads it from its cgroup mount.
        let limit = if v2() && (with_ns || own_without_ns) {
            "$(cat /sys/fs/cgroup/memory.max)"
        } else if v2() {
            "$(cat /sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)/memory.max)"
        } else {
            "$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
        };
        b.sh(&format!(
            "cat /proc/self/cgroup; echo limit={limit}; \
             [ -d {cg2} ] && echo siblings=$(ls {cg2} | grep -c hulltest) procs=$(wc -l < {cg2}/cgroup.procs)"
        ));
        let out = rt.run(&id, &mut b, &[]);
        out.ok();
        if hybrid || v2() {
            let line = out
                .stdout
                .lines()
                .find(|l| l.starts_with("siblings="))
                .unwrap_or_else(|| panic!("no cgroup2 listing:\n{out}"));
            if with_ns || own_without_ns {
                // Only its own subtree: no other cgroups, its processes.
                assert!(
                    line.starts_with("siblings=0 ") && !line.ends_with("procs=0"),
                    "{line}"
                );
            } else {
                assert!(
                    !line.starts_with("siblings=0 "),
                    "whole tree expected: {line}"
                );
            }
        }
        // The memory hierarchy's line (v1), or the only one (v2: "0::").
        let marker = if v2() { "0::" } else { ":memory:" };
        let mem_line = out
            .stdout
            .lines()
            .find(|l| l.contains(marker))
            .unwrap_or_else(|| panic!("no {marker} line:\n{out}"));
        if with_ns {
            assert!(mem_line.ends_with(&format!("{marker}/")), "{mem_line}");
        } else {
            assert!(mem_line.ends_with(&common::cgroup_name(&id)), "{mem_line}");
        }
        assert!(out.stdout.contains("limit=41943040"), "{out}");
        rt.assert_nothing_left(&id);
    }
}

/// Where systemd is PID 1 (the tests/vm guest) the systemd driver puts the
/// container in a transient scope that delete removes; where it is not
/// (these CI hosts), the driver is a clear error. Either way a cgroupsPath
/// that is not slice:prefix:name is refused by name.
#[test]
fn systemd_driver_makes_a_scope_or_says_systemd_is_unreachable() {
    if skip() {
        return;
    }
    let rt = Runtime::new("cg-systemd");
    let id = common::unique_id("cg-systemd");
    let mut b = Bundle::new("cg-systemd");
    b.args(&["sleep", "1000"]);
    b.save_for(&id);
    b.config["linux"]["cgroupsPath"] = json!(format!("system.slice:hulltest:{id}"));
    b.write_config();
    rt.track(&id);
    let bundle = b.dir().display().to_string();
    let create = ["--systemd-cgroup", "create", &id, "--bundle", &bundle];
    let scope = format!("system.slice/hulltest-{id}.scope");
    // sd_booted(3): systemd runs as the init system.
    if Path::new("/run/systemd/system").is_dir() {
        rt.cmd(&create).ok();
        let pid = rt.state_ok(&id)["pid"].as_i64().unwrap() as i32;
        let cg = common::cgroup_of(pid, "memory").unwrap_or_default();
        assert!(cg.ends_with(&scope), "init {pid} in {cg:?}, not {scope}");
        let dir = if v2() {
            Path::new("/sys/fs/cgroup").join(&scope)
        } else {
            Path::new("/sys/fs/cgroup/memory").join(&scope)
        };
        assert!(dir.is_dir(), "{} missing", dir.display());
        rt.cmd(&["delete", "--force", &id]).ok();
        assert!(
            wait_until(Duration::from_secs(10), || !dir.exists()),
            "scope {} left after delete",
            dir.display()
        );
    } else if common::is_hull() {
        rt.cmd(&create)
            .fails()
            .hull_error_mentions(&["systemd is not reachable"]);
        assert!(!Path::new(&format!("/sys/fs/cgroup/memory/{scope}")).exists());
    }
    rt.assert_nothing_left(&id);
    b.config["linux"]["cgroupsPath"] = json!("/not/a/slice");
    b.write_config();
    rt.cmd(&create)
        .fails()
        .hull_error_mentions(&["linux.cgroupsPath"]);
    rt.assert_nothing_left(&id);
}

/// Where this host keeps its hugetlb controller: the cgroup directory
/// "controller" for common::cgroup_dir and the limit file of a page size,
/// or why there is none.
fn hugetlb_home(size: &str) -> Result<(&'static str, String), String> {
    let has_ctrl = |dir: &str| {
        fs::read_to_string(format!("{dir}/cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "hugetlb"))
    };
    if v2() && has_ctrl("/sys/fs/cgroup") {
        Ok(("hugetlb", format!("hugetlb.{size}.max")))
    } else if Path::new("/sys/fs/cgroup/hugetlb").is_dir() {
        Ok(("hugetlb", format!("hugetlb.{size}.limit_in_bytes")))
    } else if has_ctrl("/sys/fs/cgroup/unified") {
        // Hybrid: hugetlb only on the cgroup2 mount, which hull uses.
        Ok(("unified", format!("hugetlb.{size}.max")))
    } else {
        Err("no hugetlb cgroup controller on this host".into())
    }
}

#[test]
fn hugetlb_limit_lands_where_the_host_keeps_hugetlb() {
    if skip() {
        return;
    }
    if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        eprintln!(
            "skipped: no 2 MB huge pages on this host (/sys/kernel/mm/hugepages/hugepages-2048kB)"
        );
        return;
    }
    let (ctrl, file) = match hugetlb_home("2MB") {
        Ok(home) => home,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    // runc 1.1 ignores the hybrid host's cgroup2 mount for hugetlb.
    if ctrl == "unified" && !common::is_hull() {
        return;
    }
    let rt = Runtime::new("cg-huge");
    let id = common::unique_id("cg-huge");
    let mut b = Bundle::new("cg-huge");
    resources(
        &mut b,
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}),
    );
    b.args(&["sleep", "1000"]);
    run_detached(&rt, &id, &mut b);
    assert_eq!(read(ctrl, &id, &file), "4194304");
    let stats = rt.cmd(&["events", "--stats", &id]);
    stats.ok();
    assert!(
        stats.json()["data"]["hugetlb"]["2MB"].is_object(),
        "{stats}"
    );
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

/// The JSON paths (keys, array elements collapsed) of a value.
fn shape(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                // Which raw memory.stat keys exist, and which hugetlb page
                // sizes, depend on the kernel, not the runtime.
                if prefix.ends_with(".raw") || prefix.ends_with(".hugetlb") {
                    continue;
                }
                // Page-cache state, not the runtime: on v2 io.stat has a
                // line and memory.stat a nonzero `file` (runc: `cache`,
                // omitted when 0) only if this container read the disk; the
                // first of the two runs warms the cache for the second.
                if common::cgroup_v2()
                    && (k == "blkio" || (prefix == ".data.memory" && k == "cache"))
                {
                    continue;
                }
                shape(x, &format!("{prefix}.{k}"), out);
            }
        }
        Value::Array(a) => {
            if let Some(x) = a.first() {
                shape(x, &format!("{prefix}[]"), out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn events_stats_have_runcs_shape() {
    if skip() || !common::is_hull() {
        return;
    }
    if !Path::new(common::RUNC).exists() {
        eprintln!("skipped: {} is not installed", common::RUNC);
        return;
    }
    let mut shapes = Vec::new();
    for bin in [common::RUNC.into(), common::runtime_bin()] {
        let rt = Runtime::with_bin(bin, "cg-shape");
        let id = common::unique_id("cg-shape");
        let mut b = Bundle::new("cg-shape");
        resources(
            &mut b,
            json!({"memory": {"limit": 33554432}, "pids": {"limit": 20}, "cpu": {"quota": 20000, "period": 100000}}),
        );
        b.sh("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 1000");
        run_detached(&rt, &id, &mut b);
        std::thread::sleep(Duration::from_millis(500));
        let out = rt.cmd(&["events", "--stats", &id]);
        out.ok();
        let mut s = Vec::new();
        shape(&out.json(), "", &mut s);
        s.sort();
        shapes.push(s);
        rt.cmd(&["delete", "--force", &id]).ok();
        rt.assert_nothing_left(&id);
    }
    // Deliberate extras on v2, where runc 1.1's fs2 reads less than on v1:
    // the effective cpuset (as v1 reports it) and memory.peak (kernel 5.19+).
    if common::cgroup_v2() {
        let extras = [
            ".data.cpuset.cpus[]",
            ".data.cpuset.mems[]",
            ".data.memory.usage.max",
        ];
        shapes[1].retain(|p| !extras.contains(&p.as_str()));
    }
    assert_eq!(
        shapes[0], shapes[1],
        "runc's (left) and hull's events --stats differ"
    );
}
