//! The cgroup v2 backend, run for real against a cgroup2-shaped directory
//! tree in a temp dir (this machine cannot mount a v2 hierarchy with
//! controllers): the directories made, the controllers enabled down the
//! path, the exact file values written for each resource, freezing, and
//! stats read back. Plus the eBPF device filter loaded and attached to a
//! real cgroup2 directory (/sys/fs/cgroup/unified here), where it must
//! deny a device the same process could open without it.

use std::fs;
use std::path::{Path, PathBuf};

use hull::cgroups::devices::{container_rules, DeviceRule};
use hull::cgroups::resources::{validate, Host};
use hull::cgroups::{Cgroup, Hierarchy, Layout, Resources};
use serde_json::json;

/// The interface files a kernel would create in a v2 cgroup with these
/// controllers enabled (the subset hull writes or reads).
const FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.freeze",
    "cgroup.max.depth",
    "cgroup.max.descendants",
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpu.stat",
    "cpuset.cpus",
    "cpuset.mems",
    "cpuset.cpus.effective",
    "cpuset.mems.effective",
    "memory.max",
    "memory.low",
    "memory.high",
    "memory.swap.max",
    "memory.current",
    "memory.swap.current",
    "memory.peak",
    "memory.stat",
    "memory.events",
    "pids.max",
    "pids.current",
    "io.weight",
    "io.max",
    "io.stat",
    "hugetlb.2MB.max",
    "hugetlb.2MB.current",
    "hugetlb.2MB.events",
    "rdma.max",
];

struct Tree {
    root: PathBuf,
}

impl Tree {
    /// /tmp/...: a cgroup2 root with controllers, a `pod` level below it,
    /// and the container directory `pod/ctr` with its interface files.
    fn new(name: &str, files: &[&str]) -> Tree {
        let root = std::env::temp_dir().join(format!("hull-v2tree-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let ctrls = "cpuset cpu io memory hugetlb pids rdma misc";
        fs::create_dir_all(root.join("pod/ctr")).unwrap();
        fs::write(root.join("cgroup.controllers"), ctrls).unwrap();
        fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        fs::write(root.join("pod/cgroup.controllers"), ctrls).unwrap();
        fs::write(root.join("pod/cgroup.subtree_control"), "").unwrap();
        for f in files {
            fs::write(root.join("pod/ctr").join(f), "").unwrap();
        }
        fs::write(
            root.join("pod/ctr/cgroup.events"),
            "populated 0\nfrozen 0\n",
        )
        .unwrap();
        Tree { root }
    }

    fn hier(&self) -> Vec<Hierarchy> {
        vec![Hierarchy {
            mount: self.root.clone(),
            mount_root: "/".into(),
            controllers: Vec::new(),
            v2: true,
        }]
    }

    fn ctr(&self) -> PathBuf {
        self.root.join("pod/ctr")
    }

    fn read(&self, file: &str) -> String {
        fs::read_to_string(self.ctr().join(file))
            .unwrap()
            .trim()
            .to_string()
    }

    fn create(&self) -> Cgroup {
        Cgroup::create_in(Layout::V2, &self.hier(), "0::/\n", "/pod/ctr").unwrap()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn res(v: serde_json::Value) -> Resources {
    Resources::from_value(v, "linux.resources").unwrap()
}

#[test]
fn creates_the_path_and_enables_controllers() {
    let t = Tree::new("enable", FILES);
    let cg = t.create();
    assert!(cg.v2);
    assert_eq!(cg.paths, vec![t.ctr()]);
    assert_eq!(cg.unified.as_deref(), Some(t.ctr().as_path()));
    let all = "+cpuset +cpu +io +memory +hugetlb +pids +rdma +misc";
    assert_eq!(
        fs::read_to_string(t.root.join("cgroup.subtree_control")).unwrap(),
        all
    );
    assert_eq!(
        fs::read_to_string(t.root.join("pod/cgroup.subtree_control")).unwrap(),
        all
    );
    // The state.json shape round-trips.
    let json = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cg);
}

#[test]
fn writes_every_resource_with_runc_values() {
    let t = Tree::new("writes", FILES);
    let mut cg = t.create();
    let r = res(json!({
        "memory": {"limit": 268435456, "swap": 402653184, "reservation": 134217728},
        "cpu": {"shares": 512, "quota": 25000, "period": 50000, "burst": 1000, "idle": 0,
                "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 99},
        "blockIO": {"weight": 100, "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
        "rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 1000}},
        "unified": {"memory.high": "200000000", "cgroup.max.depth": "3"}
    }));
    let host = Host {
        v2: true,
        cpus: vec![0, 1],
        mems: vec![0],
        v2_controllers: "cpuset cpu io memory hugetlb pids rdma misc"
            .split(' ')
            .map(String::from)
            .collect(),
        hugepage_sizes: vec!["2MB".into()],
    };
    validate(&r, &host).unwrap();
    cg.apply(&r, None).unwrap();
    for (file, want) in [
        ("cpu.weight", "20"), // runc: 1 + (512-2)*9999/262142
        ("cpu.max", "25000 50000"),
        ("cpu.max.burst", "1000"),
        ("cpu.idle", "0"),
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
        ("memory.max", "268435456"),
        ("memory.swap.max", "134217728"), // swap - limit
        ("memory.low", "134217728"),
        ("memory.high", "200000000"),
        ("pids.max", "99"),
        ("io.weight", "910"), // runc: 1 + (100-10)*9999/990
        ("io.max", "8:16 wiops=300"),
        ("hugetlb.2MB.max", "2097152"),
        ("rdma.max", "mlx5_0 hca_handle=3 hca_object=1000"),
        ("cgroup.max.depth", "3"),
    ] {
        assert_eq!(t.read(file), want, "{file}");
    }
    assert_eq!(cg.resources.as_ref(), Some(&r));
    // Unlimited values are "max".
    cg.apply(&res(json!({"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1, "period": 100000}})), None)
        .unwrap();
    assert_eq!(t.read("memory.max"), "max");
    assert_eq!(t.read("memory.swap.max"), "max");
    assert_eq!(t.read("pids.max"), "max");
    assert_eq!(t.read("cpu.max"), "max 100000");
}

#[test]
fn bfq_gets_the_unconverted_weight() {
    let mut files = FILES.to_vec();
    files.push("io.bfq.weight");
    let t = Tree::new("bfq", &files);
    let mut cg = t.create();
    cg.apply(&res(json!({"blockIO": {"weight": 100}})), None)
        .unwrap();
    assert_eq!(t.read("io.bfq.weight"), "100");
    assert_eq!(t.read("io.weight"), "");
}

#[test]
fn missing_controller_is_an_error_naming_the_field() {
    let files: Vec<&str> = FILES
        .iter()
        .copied()
        .filter(|f| !f.starts_with("hugetlb."))
        .collect();
    let t = Tree::new("missing", &files);
    // The parent did not enable hugetlb for its children.
    fs::write(t.root.join("pod/cgroup.controllers"), "cpu memory pids").unwrap();
    let mut cg = t.create();
    let e = cg
        .apply(
            &res(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]})),
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("linux.resources.hugepageLimits[0]"), "{e}");
    assert!(e.contains("hugetlb controller is not enabled"), "{e}");
    // Swap without a memory limit cannot be expressed in v2.
    let e = cg
        .apply(&res(json!({"memory": {"swap": 1000}})), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("linux.resources.memory.swap"), "{e}");
}

#[test]
fn unified_keys_are_validated_before_anything() {
    let host = Host {
        v2: true,
        v2_controllers: vec!["memory".into(), "pids".into()],
        ..Host::default()
    };
    for (key, ok) in [
        ("memory.high", true),
        ("pids.max", true),
        ("cgroup.max.depth", true),
        ("cgroup.procs", false),
        ("io.max", false),
        ("memory", false),
        ("memory.high/../../x", false),
    ] {
        let r = res(json!({"unified": {key: "1"}}));
        assert_eq!(validate(&r, &host).is_ok(), ok, "{key}");
    }
    // v1 and hybrid hosts refuse `unified` altogether, like runc.
    let r = res(json!({"unified": {"memory.high": "1"}}));
    assert!(validate(&r, &Host::default()).is_err());
}

#[test]
fn freeze_and_stats_read_the_v2_files() {
    let t = Tree::new("stats", FILES);
    let cg = t.create();
    let w = |f: &str, v: &str| fs::write(t.ctr().join(f), v).unwrap();
    w("cgroup.events", "populated 1\nfrozen 1\n");
    cg.freeze(true).unwrap();
    assert_eq!(t.read("cgroup.freeze"), "1");
    assert!(cg.is_frozen());
    w("cgroup.events", "populated 1\nfrozen 0\n");
    cg.freeze(false).unwrap();
    assert!(!cg.is_frozen());

    w("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 30\n");
    w("memory.current", "4096\n");
    w("memory.max", "1048576\n");
    w("memory.peak", "8192\n");
    w("memory.swap.current", "100\n");
    w("memory.swap.max", "max\n");
    w("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
    w("memory.stat", "anon 1024\nfile 2048\n");
    w("pids.current", "4\n");
    w("pids.max", "max\n");
    w(
        "io.stat",
        "8:0 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n",
    );
    let s = serde_json::to_value(cg.stats()).unwrap();
    assert_eq!(s["cpu"]["usage"]["total"], 1_500_000);
    assert_eq!(s["cpu"]["usage"]["user"], 1_000_000);
    assert_eq!(s["cpu"]["usage"]["kernel"], 500_000);
    assert_eq!(
        s["cpu"]["throttling"],
        json!({"periods": 7, "throttledPeriods": 2, "throttledTime": 30000})
    );
    assert_eq!(
        s["memory"]["usage"],
        json!({"limit": 1048576, "usage": 4096, "max": 8192, "failcnt": 3})
    );
    // Swap is reported as memory+swap, like v1 and runc.
    assert_eq!(s["memory"]["swap"]["usage"], 4196);
    assert_eq!(s["memory"]["swap"]["limit"], u64::MAX);
    assert_eq!(s["memory"]["cache"], 2048);
    assert_eq!(s["pids"], json!({"current": 4}));
    assert_eq!(
        s["blkio"]["ioServiceBytesRecursive"],
        json!([{"major": 8, "op": "Read", "value": 512}, {"major": 8, "op": "Write", "value": 1024}])
    );
    assert_eq!(cg.oom_kills(), Some(1));
}

// ---------------------------------------------------------------------------
// The eBPF device filter on a real cgroup2 directory
// ---------------------------------------------------------------------------

fn cgroup2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mount = pre.split(' ').nth(4)?;
        post.starts_with("cgroup2 ").then(|| PathBuf::from(mount))
    })
}

/// Run `script` with busybox sh in a child placed in `cgroup` (None: not
/// moved), returning its combined output.
fn run_in(cgroup: Option<&Path>, script: &str) -> String {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("/bin/busybox");
    cmd.args(["sh", "-c", script]);
    if let Some(dir) = cgroup {
        let procs = std::ffi::CString::new(dir.join("cgroup.procs").to_str().unwrap()).unwrap();
        // SAFETY: only async-signal-safe calls (open, write, close) after fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            });
        }
    }
    let out = cmd.output().expect("run busybox");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn ebpf_device_filter_denies_on_a_real_cgroup2() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0
        || !Path::new("/bin/busybox").exists()
        || !Path::new("/dev/fuse").exists()
    {
        eprintln!("skipped: needs root, /bin/busybox and /dev/fuse");
        return;
    }
    let Some(mount) = cgroup2_mount() else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let dir = mount.join(format!("hulltest-bpf-{}", std::process::id()));
    fs::create_dir(&dir).unwrap();
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            for _ in 0..100 {
                if fs::remove_dir(&self.0).is_ok() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
    let _rm = Rm(dir.clone());
    let script = "(exec 3</dev/fuse) 2>&1 && echo fuse-ok; (exec 3</dev/null) && echo null-ok; \
                  (exec 3</dev/zero) && echo zero-ok";
    // Control: without a filter, root opens /dev/fuse.
    let before = run_in(Some(&dir), script);
    assert!(
        before.contains("fuse-ok"),
        "control run could not open /dev/fuse: {before}"
    );

    let deny_all = DeviceRule {
        allow: false,
        access: Some("rwm".into()),
        ..Default::default()
    };
    hull::cgroups::v2::attach_device_filter(&dir, &container_rules(&[deny_all])).unwrap();
    let after = run_in(Some(&dir), script);
    assert!(
        !after.contains("fuse-ok"),
        "filter did not deny /dev/fuse: {after}"
    );
    assert!(after.contains("Operation not permitted"), "{after}");
    assert!(
        after.contains("null-ok") && after.contains("zero-ok"),
        "default devices denied: {after}"
    );
    // Outside the cgroup nothing changed.
    assert!(run_in(None, script).contains("fuse-ok"));
}
