//! Mount and namespace features of runtime-spec 1.1/1.2 (issue 13):
//!
//! - the recursive mount attributes (`rro`, `rnoexec`, ... all 18), each
//!   checked on the top of a bind source and on a submount of it, with a
//!   control run without the option that must see the host's opposite;
//! - unknown mount options: refused on a bind mount, passed to the
//!   filesystem otherwise (as runc);
//! - a user namespace as root: id 0 inside, the mapped uid on the host,
//!   several ranges, a namespace joined by path, groups, a host block
//!   device that cannot be mounted, sysfs/mqueue as runc handles them;
//! - idmapped bind mounts;
//! - time namespaces: offsets seen by the clocks, a namespace joined by path.

mod common;
mod secutil;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Bundle, Runtime, TempDir};
use serde_json::{json, Value};

/// Run a host command, panicking with its output if it fails.
#[track_caller]
fn host(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------
// Recursive mount attributes
// ---------------------------------------------------------------------------

/// A host tree to bind into the container: a tmpfs at `top` with another
/// tmpfs at `top/sub`, both holding the same fixtures, both bind-remounted
/// with the host options of a case. Unmounted on drop.
struct Tree {
    top: PathBuf,
    _tmp: TempDir,
}

const OLD: i64 = 946_684_800; // 2000-01-01
/// An atime after every other time of the file (its ctime is when the
/// times were set): relatime leaves it, strictatime replaces it.
const FUTURE: i64 = 4_102_444_800; // 2100-01-01

impl Tree {
    fn new(name: &str, host_opts: &str) -> Tree {
        let tmp = TempDir::new(name);
        let top = tmp.path().join("top");
        fs::create_dir_all(&top).unwrap();
        let tree = Tree { top, _tmp: tmp };
        host(
            "mount",
            &["-t", "tmpfs", "tmpfs", tree.top.to_str().unwrap()],
        );
        let sub = tree.sub();
        fs::create_dir(&sub).unwrap();
        host("mount", &["-t", "tmpfs", "tmpfs", sub.to_str().unwrap()]);
        for d in [&tree.top, &sub] {
            populate(d);
            if !host_opts.is_empty() {
                let o = format!("remount,bind,{host_opts}");
                host("mount", &["-o", &o, d.to_str().unwrap()]);
            }
        }
        tree
    }

    fn sub(&self) -> PathBuf {
        self.top.join("sub")
    }

    /// Set the fixtures' times for an atime check (see `populate`).
    fn reset_times(&self) {
        let now = SystemTime::now();
        let at = |secs: i64| UNIX_EPOCH + Duration::from_secs(secs as u64);
        for d in [self.top.clone(), self.sub()] {
            set_times(&d.join("old"), at(OLD), now - Duration::from_secs(7200));
            set_times(&d.join("new"), at(FUTURE), at(OLD));
            set_times(&d.join("d"), at(FUTURE), at(OLD));
        }
    }

    /// Which of `old`, `new`, `d` got a new atime since `reset_times`, per
    /// mount: the atime mode the container's mount had.
    fn atime_updates(&self, path: &Path) -> (bool, bool, bool) {
        let atime = |p: &Path| fs::metadata(p).unwrap().atime();
        (
            atime(&path.join("old")) != OLD,
            atime(&path.join("new")) != FUTURE,
            atime(&path.join("d")) != FUTURE,
        )
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        for d in [self.sub(), self.top.clone()] {
            // Not every Tree mounts both (an idmap source may be a plain
            // directory): the "not mounted" complaints are expected.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&d)
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

fn set_times(p: &Path, atime: SystemTime, mtime: SystemTime) {
    let f = fs::File::open(p).unwrap();
    f.set_times(fs::FileTimes::new().set_accessed(atime).set_modified(mtime))
        .unwrap();
}

/// The fixtures of one mount: `busybox` (to exec), `probe` (setuid
/// root: prints the effective uid), `null` (a device node), `link` (a
/// symlink to `file`), and for the access times `old` (atime before
/// mtime: relatime updates it), `new` (atime after every other time: only
/// strictatime updates it) and the directory `d` (like `new`).
fn populate(d: &Path) {
    // Named so: busybox picks the applet from argv[0] or argv[1].
    fs::copy(common::BUSYBOX, d.join("busybox")).unwrap();
    if let Some(probe) = secutil::probe_bin() {
        let p = d.join("probe");
        fs::copy(probe, &p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o4755)).unwrap();
    }
    host(
        "mknod",
        &["-m", "666", d.join("null").to_str().unwrap(), "c", "1", "3"],
    );
    fs::write(d.join("file"), "hello\n").unwrap();
    std::os::unix::fs::symlink("file", d.join("link")).unwrap();
    fs::write(d.join("old"), "old\n").unwrap();
    fs::write(d.join("new"), "new\n").unwrap();
    fs::create_dir(d.join("d")).unwrap();
    fs::write(d.join("d/x"), "x\n").unwrap();
    fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
}

/// What a case looks at, from inside (one word per mount) or from the host.
#[derive(Clone, Copy)]
enum Check {
    Write,
    Exec,
    Suid,
    Dev,
    Symfollow,
    Atime,
    Diratime,
}

/// The shell snippet printing the verdict for mount directory `$D`.
fn script(check: Check) -> &'static str {
    match check {
        Check::Write => "touch $D/w 2>/dev/null && echo rw || echo ro",
        Check::Exec => "$D/busybox true 2>/dev/null && echo exec || echo noexec",
        Check::Suid => {
            "case $($D/probe sys 107) in 'ok 0') echo suid;; 'ok 1000') echo nosuid;; *) echo what;; esac"
        }
        Check::Dev => "cat $D/null 2>/dev/null && echo dev || echo nodev",
        Check::Symfollow => "cat $D/link >/dev/null 2>&1 && echo symfollow || echo nosymfollow",
        Check::Atime | Check::Diratime => "cat $D/old $D/new >/dev/null; ls $D/d >/dev/null; echo read",
    }
}

/// Run one container binding the tree at /mnt with `options`; the
/// verdicts for /mnt and /mnt/sub.
fn verdicts(rt: &Runtime, tree: &Tree, check: Check, options: &[&str]) -> [String; 2] {
    let mut b = Bundle::new("rattr");
    let s = script(check);
    b.sh(&format!("for D in /mnt /mnt/sub; do {s}; done"));
    b.mount(json!({"destination": "/mnt", "type": "bind", "source": tree.top, "options": options}));
    if matches!(check, Check::Suid) {
        b.user(1000, 1000, &[]);
        b.config["process"]["noNewPrivileges"] = json!(false);
    }
    if matches!(check, Check::Atime | Check::Diratime) {
        tree.reset_times();
    }
    let id = common::unique_id("rattr");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    rt.assert_nothing_left(&id);
    let words: Vec<String> = out.stdout.split_whitespace().map(str::to_string).collect();
    assert_eq!(words.len(), 2, "{out}");
    match check {
        Check::Atime | Check::Diratime => [tree.top.clone(), tree.sub()].map(|p| {
            let (old, new, d) = tree.atime_updates(&p);
            match check {
                Check::Diratime => if d { "diratime" } else { "nodiratime" }.to_string(),
                _ => match (old, new) {
                    (false, false) => "noatime".to_string(),
                    (true, false) => "relatime".to_string(),
                    (true, true) => "strictatime".to_string(),
                    (false, true) => "what".to_string(),
                },
            }
        }),
        _ => [words[0].clone(), words[1].clone()],
    }
}

/// `rbind,OPTION` gives `with` on the top and on the submount; plain
/// `rbind` keeps the host's `without` (so the test fails if the option
/// were ignored).
fn attr_case(option: &str, host_opts: &str, check: Check, with: &str, without: &str) {
    if common::skip() {
        return;
    }
    if matches!(check, Check::Suid) && secutil::probe_bin().is_none() {
        eprintln!("skipped: no static probe (cc -static) to be the setuid program");
        return;
    }
    let rt = Runtime::new("rattr");
    let tree = Tree::new(&format!("rattr-{option}"), host_opts);
    let control = verdicts(&rt, &tree, check, &["rbind"]);
    assert_eq!(
        control,
        [without, without],
        "host options {host_opts:?}, rbind only"
    );
    let got = verdicts(&rt, &tree, check, &["rbind", option]);
    assert_eq!(got, [with, with], "rbind,{option} (top, submount)");
    if common::is_hull() && Path::new(common::RUNC).exists() {
        runc_side_by_side(&tree, check, option, with, without);
    }
}

/// The same case through runc 1.1.5, which applies these attributes with
/// mount_setattr too: the same verdicts, except where hull deliberately
/// differs (README, "Deliberate differences from runc").
fn runc_side_by_side(tree: &Tree, check: Check, option: &str, with: &str, without: &str) {
    let runc = Runtime::with_bin(common::RUNC, "rattr-runc");
    match option {
        // runc clears one bit of the access-time field: EINVAL.
        "ratime" | "rnostrictatime" => {
            let mut b = Bundle::new("rattr-runc");
            b.sh("true");
            b.mount(json!({"destination": "/mnt", "type": "bind", "source": tree.top, "options": ["rbind", option]}));
            let id = common::unique_id("rattr-runc");
            let out = runc.run(&id, &mut b, &[]);
            assert!(
                !out.success() && out.stderr.contains("invalid argument"),
                "runc, {option}:\n{out}"
            );
            runc.assert_nothing_left(&id);
        }
        // runc clears nothing (relatime is 0 in the field).
        "rnorelatime" => {
            let got = verdicts(&runc, tree, check, &["rbind", option]);
            assert_eq!(got, [without, without], "runc, rbind,{option}");
        }
        _ => {
            let got = verdicts(&runc, tree, check, &["rbind", option]);
            assert_eq!(got, [with, with], "runc, rbind,{option} (top, submount)");
        }
    }
}

macro_rules! attr_tests {
    ($($name:ident: $opt:literal, $host:literal, $check:ident, $with:literal, $without:literal;)*) => {
        $(
            #[test]
            fn $name() {
                attr_case($opt, $host, Check::$check, $with, $without);
            }
        )*
    };
}

attr_tests! {
    rro_makes_submounts_read_only: "rro", "", Write, "ro", "rw";
    rrw_makes_submounts_writable: "rrw", "ro", Write, "rw", "ro";
    rnoexec_refuses_exec_on_submounts: "rnoexec", "", Exec, "noexec", "exec";
    rexec_allows_exec_on_submounts: "rexec", "noexec", Exec, "exec", "noexec";
    rnosuid_ignores_setuid_on_submounts: "rnosuid", "", Suid, "nosuid", "suid";
    rsuid_honours_setuid_on_submounts: "rsuid", "nosuid", Suid, "suid", "nosuid";
    rnodev_refuses_devices_on_submounts: "rnodev", "", Dev, "nodev", "dev";
    rdev_allows_devices_on_submounts: "rdev", "nodev", Dev, "dev", "nodev";
    rnosymfollow_refuses_symlinks_on_submounts: "rnosymfollow", "", Symfollow, "nosymfollow", "symfollow";
    rsymfollow_follows_symlinks_on_submounts: "rsymfollow", "nosymfollow", Symfollow, "symfollow", "nosymfollow";
    rnoatime_on_submounts: "rnoatime", "", Atime, "noatime", "relatime";
    ratime_on_submounts: "ratime", "noatime", Atime, "relatime", "noatime";
    rrelatime_on_submounts: "rrelatime", "strictatime", Atime, "relatime", "strictatime";
    rnorelatime_on_submounts: "rnorelatime", "", Atime, "strictatime", "relatime";
    rstrictatime_on_submounts: "rstrictatime", "", Atime, "strictatime", "relatime";
    rnostrictatime_on_submounts: "rnostrictatime", "strictatime", Atime, "relatime", "strictatime";
    rnodiratime_on_submounts: "rnodiratime", "strictatime", Diratime, "nodiratime", "diratime";
    rdiratime_on_submounts: "rdiratime", "strictatime,nodiratime", Diratime, "diratime", "nodiratime";
}

/// A recursive attribute on a filesystem mount applies too (runc 1.1.5
/// ignores it there: a tmpfs asked for `rro` stays writable), and on a
/// `cgroup` mount to every hierarchy below it.
#[test]
fn recursive_attribute_on_a_tmpfs() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("rattr-tmpfs");
    let mut b = Bundle::new("rattr-tmpfs");
    b.mount(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["rro", "rnoexec"]}));
    // The cgroup mount too: on v1 a tmpfs with a bind per hierarchy below.
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["type"] == "cgroup" {
            m["options"].as_array_mut().unwrap().push(json!("rnoatime"));
        }
    }
    b.sh("touch /scratch/x 2>/dev/null && echo rw || echo ro; grep -E ' /scratch | /sys/fs/cgroup' /proc/self/mountinfo");
    let id = common::unique_id("rattr-tmpfs");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    assert!(out.stdout.starts_with("ro\n"), "{out}");
    assert!(out.stdout.contains(" /scratch ro,noexec"), "{out}");
    let cgroup: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains(" /sys/fs/cgroup"))
        .collect();
    assert!(
        !cgroup.is_empty() && cgroup.iter().all(|l| l.contains(",noatime")),
        "{out}"
    );
    rt.assert_nothing_left(&id);
}

/// An option word hull does not know is never dropped: on a bind mount
/// (which takes no filesystem data) it is refused naming it; on a
/// filesystem mount it goes to the filesystem as data, as runc passes it,
/// and tmpfs refuses it.
#[test]
fn unknown_mount_options_are_never_dropped() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("unknown-opt");
    let mut b = Bundle::new("unknown-opt");
    let dir = b.host_dir("src");
    b.mount(json!({"destination": "/mnt", "type": "bind", "source": dir, "options": ["rbind", "rnoexce"]}));
    let n = b.config["mounts"].as_array().unwrap().len() - 1;
    let id = common::unique_id("unknown-opt");
    let out = rt.run(&id, &mut b, &[]);
    out.fails()
        .hull_error_mentions(&[&format!("mounts[{n}].options[1]: \"rnoexce\"")]);
    rt.assert_nothing_left(&id);

    let mut b = Bundle::new("unknown-opt");
    b.mount(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "nosiud"]}));
    let id = common::unique_id("unknown-opt");
    let out = rt.run(&id, &mut b, &[]);
    out.fails()
        .hull_error_mentions(&[&format!(
            "mounts[{n}]: tmpfs mount on /scratch: Invalid argument"
        )])
        .hull_error_mentions(&["size=1m,nosiud"]);
    rt.assert_nothing_left(&id);

    // runc's tmpcopyup extension is for tmpfs: elsewhere said, not dropped
    // silently.
    let mut b = Bundle::new("unknown-opt");
    b.mount(json!({"destination": "/scratch", "type": "mqueue", "source": "mqueue", "options": ["tmpcopyup"]}));
    b.sh("true");
    let id = common::unique_id("unknown-opt");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    if common::is_hull() {
        let want = format!("mounts[{n}].options[0]: tmpcopyup applies to tmpfs only");
        assert!(out.stderr.contains(&want), "{out}");
    }
    rt.assert_nothing_left(&id);
}

/// `tmpcopyup` (runc's extension, which podman asks for on every
/// `--tmpfs`): the tmpfs starts with the image's files at its
/// destination, with their modes, owners and symlinks, as runc makes it;
/// what the container writes there stays out of the image.
#[test]
fn tmpcopyup_copies_the_image_into_the_tmpfs() {
    if common::skip() {
        return;
    }
    let listing = |rt: &Runtime, fifo: bool| -> String {
        let mut b = Bundle::new("copyup");
        let d = b.rootfs().join("data");
        fs::create_dir_all(d.join("sub/deeper")).unwrap();
        fs::write(d.join("a"), "alpha\n").unwrap();
        fs::write(d.join("sub/deeper/b"), "beta\n").unwrap();
        std::os::unix::fs::symlink("../a", d.join("sub/link")).unwrap();
        fs::write(d.join("s"), "").unwrap();
        host(
            "chown",
            &[
                "1000:1000",
                d.join("a").to_str().unwrap(),
                d.join("s").to_str().unwrap(),
            ],
        );
        host(
            "chown",
            &["-h", "1000:10", d.join("sub/link").to_str().unwrap()],
        );
        for (p, mode) in [
            ("a", 0o604),
            ("s", 0o4755),
            ("sub", 0o710),
            ("sub/deeper", 0o700),
        ] {
            fs::set_permissions(d.join(p), fs::Permissions::from_mode(mode)).unwrap();
        }
        if fifo {
            host("mkfifo", &["-m", "620", d.join("fifo").to_str().unwrap()]);
        }
        b.mount(
            json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
            "options": ["tmpcopyup", "mode=755"]}),
        );
        b.sh("grep -q ' /data tmpfs' /proc/mounts || echo not-a-tmpfs; \
              cd /data && find . | sort | while read f; do stat -c '%n %A %u %g' \"$f\"; done; \
              cat a sub/link sub/deeper/b; readlink sub/link; echo new > new");
        let id = common::unique_id("copyup");
        let out = rt.run(&id, &mut b, &[]);
        out.ok();
        rt.assert_nothing_left(&id);
        assert!(!d.join("new").exists(), "the write reached the image");
        out.stdout
    };
    let rt = Runtime::new("copyup");
    let got = listing(&rt, true);
    for want in [
        "./a -rw----r-- 1000 1000",
        "./s -rwsr-xr-x 1000 1000",
        "./sub drwx--x--- 0 0",
        "./sub/deeper drwx------ 0 0",
        "./sub/deeper/b -rw-r--r-- 0 0",
        "./sub/link lrwxrwxrwx 1000 10",
        "./fifo prw--w---- 0 0",
        "alpha\nalpha\nbeta\n../a\n",
    ] {
        assert!(got.contains(want), "missing {want:?} in:\n{got}");
    }
    assert!(!got.contains("not-a-tmpfs"), "{got}");
    if common::is_hull() && Path::new(common::RUNC).exists() {
        // runc 1.1.5 fails on a fifo ("lchown .../fifo: no such file or
        // directory": it does not copy them); the rest is the same.
        let runc = Runtime::with_bin(common::RUNC, "copyup-runc");
        let without_fifo: String = got
            .lines()
            .filter(|l| !l.contains("fifo"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(listing(&runc, false), without_fifo, "runc and hull differ");
    }
}

/// The kernel's (major, minor).
fn kernel_version() -> (u32, u32) {
    let rel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel.trim().split(['.', '-']);
    let major = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    (major, minor)
}

/// `hull check` says whether mount_setattr (Linux 5.12) is there, and
/// `hull features` lists the recursive options and idmap.
#[test]
fn check_and_features_report_mount_setattr() {
    if common::skip() || !common::is_hull() {
        return;
    }
    let out = Command::new(common::runtime_bin())
        .args(["check", "--json"])
        .output()
        .unwrap();
    let items: Value = serde_json::from_slice(&out.stdout).unwrap();
    let item = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "mount_setattr")
        .cloned()
        .unwrap_or_else(|| panic!("no mount_setattr in {items}"));
    let want = if kernel_version() >= (5, 12) {
        "ok"
    } else {
        "warn"
    };
    assert_eq!(item["verdict"], want, "{item}");
    let out = Command::new(common::runtime_bin())
        .arg("features")
        .output()
        .unwrap();
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    let opts: Vec<&str> = f["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for o in [
        "rro",
        "rrw",
        "rnosuid",
        "rsuid",
        "rnodev",
        "rdev",
        "rnoexec",
        "rexec",
        "rnoatime",
        "ratime",
        "rnodiratime",
        "rdiratime",
        "rrelatime",
        "rnorelatime",
        "rstrictatime",
        "rnostrictatime",
        "rnosymfollow",
        "rsymfollow",
        "idmap",
        "ridmap",
    ] {
        assert!(opts.contains(&o), "{o} not in {opts:?}");
    }
}

// ---------------------------------------------------------------------------
// User namespaces, as root
// ---------------------------------------------------------------------------

/// Container ids 0..1000 are host 100000.., 1000..2000 are host 300000..:
/// two ranges, both unprivileged on the host.
/// The mount points are made in advance: the image belongs to host root,
/// which the container's root is not.
fn userns(b: &mut Bundle) {
    for d in ["mnt", "data"] {
        fs::create_dir_all(b.rootfs().join(d)).unwrap();
    }
    let maps = json!([
        {"containerID": 0, "hostID": 100000, "size": 1000},
        {"containerID": 1000, "hostID": 300000, "size": 1000}
    ]);
    b.config["linux"]["uidMappings"] = maps.clone();
    b.config["linux"]["gidMappings"] = maps;
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
}

/// The host's view of a process's ids (`Uid:`/`Gid:` of /proc/PID/status).
fn host_ids(pid: i64) -> (String, String) {
    let st = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        st.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    (field("Uid:"), field("Gid:"))
}

/// Root inside, an unprivileged uid on the host: `id` says 0, the host
/// sees 100000, files made in a bind mount belong to the mapped ids (both
/// ranges), supplementary groups are set (setgroups allowed as root).
#[test]
fn userns_root_is_an_unprivileged_host_uid() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("userns-root");
    let mut b = Bundle::new("userns-root");
    userns(&mut b);
    b.user(0, 0, &[10]);
    let caps = json!(["CAP_CHOWN"]);
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set] = caps.clone();
    }
    let data = b.host_dir("data");
    b.bind(&data, "/data");
    b.sh(
        "touch /data/by-root /data/by-1000; chown 1000:1000 /data/by-1000; \
          echo $(id -u) $(id -G) > /data/ready.tmp; mv /data/ready.tmp /data/ready; sleep 30",
    );
    let id = common::unique_id("userns-root");
    rt.create(&id, &mut b, &[]).ok();
    let pid = rt.state_ok(&id)["pid"].as_i64().unwrap();
    assert_eq!(host_ids(pid), ("100000".into(), "100000".into()));
    rt.cmd(&["start", &id]).ok();
    let deadline = std::time::Instant::now() + common::STATE_TIMEOUT;
    while !data.join("ready").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never wrote /data/ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let owner = |n: &str| {
        let m = fs::metadata(data.join(n)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(fs::read_to_string(data.join("ready")).unwrap(), "0 0 10\n");
    assert_eq!(owner("by-root"), (100000, 100000));
    assert_eq!(owner("by-1000"), (300000, 300000));
    // The exec'd process is in the same namespace: root inside only.
    let out = rt.cmd(&["exec", &id, "id", "-u"]);
    out.ok();
    assert_eq!(out.stdout.trim(), "0");
    rt.cmd(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    rt.cmd(&["delete", &id]).ok();
    rt.assert_nothing_left(&id);
}

/// In a user namespace the restricting recursive attributes apply to the
/// bind source and its submount; changing the access-time mode of mounts
/// from the host is refused by the kernel (runc fails the same way), and
/// hull says why.
#[test]
fn userns_recursive_attributes() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("userns-rattr");
    let tree = Tree::new("userns-rattr", "");
    let mut b = Bundle::new("userns-rattr");
    userns(&mut b);
    b.mount(
        json!({"destination": "/mnt", "type": "bind", "source": tree.top,
        "options": ["rbind", "rro", "rnosuid", "rnodev", "rnoexec"]}),
    );
    b.sh("grep ' /mnt' /proc/self/mountinfo");
    let id = common::unique_id("userns-rattr");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for l in lines {
        assert!(l.contains(" ro,nosuid,nodev,noexec"), "{out}");
    }
    rt.assert_nothing_left(&id);

    let mut b = Bundle::new("userns-rattr");
    userns(&mut b);
    b.mount(json!({"destination": "/mnt", "type": "bind", "source": tree.top, "options": ["rbind", "rnoatime"]}));
    b.sh("true");
    let id = common::unique_id("userns-rattr");
    let out = rt.run(&id, &mut b, &[]);
    out.fails()
        .hull_error_mentions(&["with mount_setattr: Operation not permitted"])
        .hull_error_mentions(&[
            "access-time mode (rnoatime, rrelatime, ...) of mounts from the host is locked",
        ]);
    rt.assert_nothing_left(&id);
}

/// A loop device with an empty ext4 on it: a host block device the
/// container gets as /dev/hostdisk. Detached on drop.
struct LoopDisk {
    dev: String,
    _tmp: TempDir,
}

impl LoopDisk {
    fn new() -> Result<LoopDisk, String> {
        if !Path::new("/dev/loop-control").exists() {
            return Err("no /dev/loop-control (loop devices) on this host".into());
        }
        let tmp = TempDir::new("loopdisk");
        let img = tmp.path().join("disk.img");
        fs::File::create(&img)
            .and_then(|f| f.set_len(16 << 20))
            .map_err(|e| e.to_string())?;
        let mkfs = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&img)
            .output();
        match mkfs {
            Ok(o) if o.status.success() => {}
            Ok(o) => return Err(format!("mkfs.ext4: {}", String::from_utf8_lossy(&o.stderr))),
            Err(e) => return Err(format!("mkfs.ext4: {e}")),
        }
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&img)
            .output()
            .map_err(|e| format!("losetup: {e}"))?;
        if !out.status.success() {
            return Err(format!("losetup: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(LoopDisk {
            dev: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            _tmp: tmp,
        })
    }

    /// The bundle gets the device (bound in, allowed by the device cgroup).
    fn give_to(&self, b: &mut Bundle) {
        let rdev = fs::metadata(&self.dev).unwrap().rdev();
        let (major, minor) = (libc::major(rdev), libc::minor(rdev));
        b.mount(json!({"destination": "/dev/hostdisk", "type": "bind", "source": self.dev, "options": ["bind"]}));
        b.config["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(
                json!({"allow": true, "type": "b", "major": major, "minor": minor, "access": "rw"}),
            );
        b.sh("mkdir -p /tmp/m; mount -t ext4 /dev/hostdisk /tmp/m 2>&1 && echo mounted || echo refused");
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// Capabilities inside a user namespace do not reach host resources: with
/// CAP_SYS_ADMIN, root in the container cannot mount a host block device;
/// the same container without the user namespace can (the control).
#[test]
fn userns_cannot_mount_a_host_block_device() {
    if common::skip() {
        return;
    }
    let disk = match LoopDisk::new() {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let rt = Runtime::new("userns-disk");
    let caps = json!(["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE", "CAP_MKNOD"]);
    for (with_userns, want) in [(false, "mounted"), (true, "refused")] {
        let mut b = Bundle::new("userns-disk");
        for set in ["bounding", "effective", "permitted"] {
            b.config["process"]["capabilities"][set] = caps.clone();
        }
        if with_userns {
            userns(&mut b);
        }
        disk.give_to(&mut b);
        let id = common::unique_id("userns-disk");
        let out = rt.run(&id, &mut b, &[]);
        out.ok();
        assert!(
            out.stdout.trim_end().ends_with(want),
            "user namespace {with_userns}: want {want}:\n{out}"
        );
        if with_userns {
            assert!(
                out.stdout.contains("ermission denied") || out.stdout.contains("not permitted"),
                "{out}"
            );
        }
        rt.assert_nothing_left(&id);
    }
}

/// A user namespace joined by path: a second container enters the first
/// one's, without mappings of its own, and is root there (the host sees
/// the first one's mapped uid).
#[test]
fn userns_joined_by_path() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("userns-join");
    let mut a = Bundle::new("userns-join-a");
    userns(&mut a);
    a.sh("sleep 30");
    let ida = common::unique_id("userns-join-a");
    rt.create(&ida, &mut a, &[]).ok();
    let pida = rt.state_ok(&ida)["pid"].as_i64().unwrap();

    let mut b = Bundle::new("userns-join-b");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user", "path": format!("/proc/{pida}/ns/user")}));
    if !common::is_hull() {
        // runc 1.1.5 wants the mappings repeated (README, deliberate
        // differences); hull takes the joined namespace's own.
        b.config["linux"]["uidMappings"] = a.config["linux"]["uidMappings"].clone();
        b.config["linux"]["gidMappings"] = a.config["linux"]["gidMappings"].clone();
    }
    b.sh("id -u; readlink /proc/self/ns/user; sleep 30");
    let idb = common::unique_id("userns-join-b");
    rt.create(&idb, &mut b, &[]).ok();
    let pidb = rt.state_ok(&idb)["pid"].as_i64().unwrap();
    assert_eq!(host_ids(pidb).0, "100000");
    let ns = |pid: i64| fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    assert_eq!(ns(pidb), ns(pida));
    for id in [&idb, &ida] {
        rt.cmd(&["delete", "--force", id]).ok();
        rt.assert_nothing_left(id);
    }
}

/// sysfs and mqueue in a user namespace: mounted where the container has
/// its own network and IPC namespaces; without them the kernel refuses, as
/// runc 1.1.5 reports it too, and hull says why.
#[test]
fn userns_sysfs_and_mqueue() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("userns-sysfs");
    let mut b = Bundle::new("userns-sysfs");
    userns(&mut b);
    b.sh("grep -E ' /sys | /dev/mqueue ' /proc/self/mountinfo");
    let id = common::unique_id("userns-sysfs");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    assert!(
        out.stdout.contains(" /sys ro,") && out.stdout.contains(" - sysfs "),
        "{out}"
    );
    assert!(out.stdout.contains(" - mqueue "), "{out}");
    rt.assert_nothing_left(&id);

    for (drop_ns, fs, why) in [
        ("network", "sysfs", "network namespace of its own"),
        ("ipc", "mqueue", "IPC namespace of its own"),
    ] {
        let mut b = Bundle::new("userns-sysfs");
        userns(&mut b);
        b.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != drop_ns);
        b.sh("true");
        let id = common::unique_id("userns-sysfs");
        let out = rt.run(&id, &mut b, &[]);
        out.fails()
            .hull_error_mentions(&[&format!("{fs} mount on")])
            .hull_error_mentions(&[why]);
        rt.assert_nothing_left(&id);
    }
}

// ---------------------------------------------------------------------------
// Idmapped mounts
// ---------------------------------------------------------------------------

/// Where an idmappable source can live: a tmpfs from Linux 6.3, else a
/// directory on the temp dir's filesystem if that is ext4 or xfs (both
/// idmappable since 5.12); otherwise why not.
fn idmap_fs() -> Result<bool, String> {
    if kernel_version() >= (6, 3) {
        return Ok(true);
    }
    let out = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(std::env::temp_dir())
        .output()
        .map_err(|e| e.to_string())?;
    let fs = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if fs == "xfs" || fs.starts_with("ext") {
        return Ok(false);
    }
    let (major, minor) = kernel_version();
    Err(format!(
        "tmpfs is idmappable from Linux 6.3 (this is {major}.{minor}) and the temp dir is on {fs}"
    ))
}

/// A source holding `f`, owned by host uid/gid 1000 (the directory too):
/// a tmpfs, or a plain directory (see [`idmap_fs`]).
fn idmap_source(name: &str, tmpfs: bool) -> (Tree, PathBuf) {
    let tmp = TempDir::new(name);
    let top = tmp.path().join("src");
    fs::create_dir_all(&top).unwrap();
    if tmpfs {
        host(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                "mode=755",
                "tmpfs",
                top.to_str().unwrap(),
            ],
        );
    }
    fs::write(top.join("f"), "f\n").unwrap();
    host("chown", &["-R", "1000:1000", top.to_str().unwrap()]);
    let tree = Tree {
        top: top.clone(),
        _tmp: tmp,
    };
    (tree, top)
}

/// In a container whose root is host uid 100000, a file owned by host uid
/// 1000 appears as uid 0 through a bind mount mapped 1000 -> 100000, and
/// what the container's root creates there belongs to 1000 on the host.
/// Without the mapping (the control) the file is unmapped (65534).
#[test]
fn idmapped_bind_mount_in_a_user_namespace() {
    if common::skip() {
        return;
    }
    let tmpfs = match idmap_fs() {
        Ok(t) => t,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let rt = Runtime::new("idmap");
    let (_tree, src) = idmap_source("idmap", tmpfs);
    let map = json!([{"containerID": 1000, "hostID": 100000, "size": 1}]);
    for (idmapped, want) in [(false, "65534:65534"), (true, "0:0")] {
        let mut b = Bundle::new("idmap");
        userns(&mut b);
        let mut m =
            json!({"destination": "/mnt", "type": "bind", "source": src, "options": ["rbind"]});
        if idmapped {
            m["uidMappings"] = map.clone();
            m["gidMappings"] = map.clone();
        }
        b.mount(m);
        b.sh("stat -c %u:%g /mnt/f; touch /mnt/made 2>/dev/null && echo made || echo refused");
        let id = common::unique_id("idmap");
        let out = rt.run(&id, &mut b, &[]);
        out.ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.first(), Some(&want), "idmapped {idmapped}:\n{out}");
        if idmapped {
            assert_eq!(lines.get(1), Some(&"made"), "{out}");
            let m = fs::metadata(src.join("made")).unwrap();
            assert_eq!((m.uid(), m.gid()), (1000, 1000));
        }
        rt.assert_nothing_left(&id);
    }
}

/// Without a user namespace: host uid 1000 seen as root through a mount
/// mapped 1000 -> 0; and `idmap` without mappings takes the container's
/// user namespace mappings (root-owned files stay root's).
#[test]
fn idmapped_bind_mount_variants() {
    if common::skip() {
        return;
    }
    let tmpfs = match idmap_fs() {
        Ok(t) => t,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let rt = Runtime::new("idmap-var");
    let (_tree, src) = idmap_source("idmap-var", tmpfs);
    let map = json!([{"containerID": 1000, "hostID": 0, "size": 1}]);
    let mut b = Bundle::new("idmap-var");
    b.mount(json!({"destination": "/mnt", "type": "bind", "source": src,
        "options": ["rbind", "idmap"], "uidMappings": map, "gidMappings": map}));
    b.sh("stat -c %u:%g /mnt/f");
    let id = common::unique_id("idmap-var");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    assert_eq!(out.stdout.trim(), "0:0", "{out}");
    rt.assert_nothing_left(&id);

    // `idmap` alone, in a user namespace: the container's mappings.
    host("chown", &["0:0", src.join("f").to_str().unwrap()]);
    for (opts, want) in [
        (json!(["rbind"]), "65534:65534"),
        (json!(["rbind", "idmap"]), "0:0"),
    ] {
        let mut b = Bundle::new("idmap-var");
        userns(&mut b);
        b.mount(json!({"destination": "/mnt", "type": "bind", "source": src, "options": opts}));
        b.sh("stat -c %u:%g /mnt/f");
        let id = common::unique_id("idmap-var");
        let out = rt.run(&id, &mut b, &[]);
        out.ok();
        assert_eq!(out.stdout.trim(), want, "{opts}:\n{out}");
        rt.assert_nothing_left(&id);
    }
}

/// `ridmap` idmaps every mount of an rbind, `idmap` (or the mappings
/// alone) only its top: a file of host uid 1000 on the source's submount
/// shows as 0 through the first and stays 1000 through the second.
#[test]
fn ridmap_idmaps_submounts_too() {
    if common::skip() {
        return;
    }
    if kernel_version() < (6, 3) {
        eprintln!(
            "skipped: the submount is a tmpfs, idmappable from Linux 6.3 (this is {:?})",
            kernel_version()
        );
        return;
    }
    let rt = Runtime::new("ridmap");
    let (tree, src) = idmap_source("ridmap", true);
    let sub = tree.sub();
    fs::create_dir(&sub).unwrap();
    host(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "mode=755",
            "tmpfs",
            sub.to_str().unwrap(),
        ],
    );
    fs::write(sub.join("f"), "f\n").unwrap();
    host("chown", &["1000:1000", sub.join("f").to_str().unwrap()]);
    let map = json!([{"containerID": 1000, "hostID": 0, "size": 1}]);
    for (opts, want) in [
        (json!(["rbind", "ridmap"]), "0:0 0:0"),
        (json!(["rbind", "idmap"]), "0:0 1000:1000"),
        (json!(["rbind"]), "0:0 1000:1000"),
    ] {
        let mut b = Bundle::new("ridmap");
        b.mount(json!({"destination": "/mnt", "type": "bind", "source": src,
            "options": opts, "uidMappings": map, "gidMappings": map}));
        b.sh("echo $(stat -c %u:%g /mnt/f /mnt/sub/f)");
        let id = common::unique_id("ridmap");
        let out = rt.run(&id, &mut b, &[]);
        out.ok();
        assert_eq!(out.stdout.trim(), want, "{opts}:\n{out}");
        rt.assert_nothing_left(&id);
    }
}

/// Idmapping refused: a filesystem that cannot be idmapped (procfs)
/// fails naming the mount and the kernel's reason; `idmap` on a tmpfs
/// mount, mappings on one side only, `idmap` without any mapping: refused
/// naming the field. Nothing is left behind.
#[test]
fn idmapped_mount_errors() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("idmap-err");
    let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"destination": "/mnt", "type": "bind", "source": "/proc/sys",
                "options": ["rbind"], "uidMappings": map, "gidMappings": map}),
            "idmapping /proc/sys (its filesystem cannot be idmapped on this kernel): Invalid argument",
        ),
        (
            json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
            "options[0]: idmap and ridmap are for bind mounts only",
        ),
        (
            json!({"destination": "/mnt", "type": "bind", "source": "/tmp", "options": ["rbind"], "uidMappings": map}),
            "gidMappings: required with uidMappings",
        ),
        (
            json!({"destination": "/mnt", "type": "bind", "source": "/tmp", "options": ["rbind", "ridmap"]}),
            "options[1]: idmap without the mount's uidMappings/gidMappings",
        ),
    ];
    for (m, want) in cases {
        let mut b = Bundle::new("idmap-err");
        b.mount(m.clone());
        let n = b.config["mounts"].as_array().unwrap().len() - 1;
        b.sh("true");
        let id = common::unique_id("idmap-err");
        let out = rt.run(&id, &mut b, &[]);
        out.fails()
            .hull_error_mentions(&[&format!("mounts[{n}]")])
            .hull_error_mentions(&[want]);
        rt.assert_nothing_left(&id);
    }
}

// ---------------------------------------------------------------------------
// Time namespaces
// ---------------------------------------------------------------------------

fn time_ns_missing() -> Option<String> {
    (!Path::new("/proc/self/ns/time").exists())
        .then(|| "this kernel has no time namespaces (/proc/self/ns/time)".to_string())
}

/// The host's (monotonic, boottime) whole seconds, from the probe.
fn host_clocks() -> (i64, i64) {
    let probe = secutil::probe_bin().unwrap();
    let out = Command::new(probe).arg("clocks").output().unwrap();
    parse_clocks(&String::from_utf8_lossy(&out.stdout))
}

fn parse_clocks(s: &str) -> (i64, i64) {
    let w: Vec<&str> = s.split_whitespace().collect();
    let at = |k: &str| {
        w.iter()
            .position(|x| *x == k)
            .and_then(|i| w.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {s:?}"))
    };
    (at("monotonic"), at("boottime"))
}

const MONO_OFF: i64 = 1000 * 86400;
const BOOT_OFF: i64 = 365 * 86400;

/// linux.timeOffsets move the container's monotonic and boottime clocks
/// (and /proc/uptime) by the offsets; a second container joining the time
/// namespace by path, and a process `exec`'d into the first, see the same
/// shifted clocks.
#[test]
fn time_namespace_offsets_and_join() {
    if common::skip() {
        return;
    }
    if let Some(why) = time_ns_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    if secutil::probe_bin().is_none() {
        eprintln!("skipped: no static probe (cc -static) to read the clocks");
        return;
    }
    let rt = Runtime::new("timens");
    let mut a = Bundle::new("timens-a");
    assert!(secutil::install_probe(&a));
    a.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    a.config["linux"]["timeOffsets"] = json!({
        "monotonic": {"secs": MONO_OFF, "nanosecs": 0},
        "boottime": {"secs": BOOT_OFF, "nanosecs": 500000000u32}
    });
    a.sh("probe clocks; cut -d. -f1 /proc/uptime; sleep 30");
    let ida = common::unique_id("timens-a");
    let before = host_clocks();
    let pending = rt.spawn_run(&ida, &mut a, &[], |_| {});
    let pida = rt.wait_status(&ida, "running")["pid"].as_i64().unwrap();

    let mut b = Bundle::new("timens-b");
    assert!(secutil::install_probe(&b));
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time", "path": format!("/proc/{pida}/ns/time")}));
    b.sh("probe clocks; cut -d. -f1 /proc/uptime");
    let idb = common::unique_id("timens-b");
    let outb = rt.run(&idb, &mut b, &[]);
    // An exec'd process joins the container's time namespace too.
    let exec = rt.cmd(&["exec", &ida, "probe", "clocks"]);
    rt.cmd(&["kill", &ida, "KILL"]).ok();
    let outa = pending.wait();
    let after = host_clocks();
    outb.ok();
    exec.ok();
    let (mono, boot) = parse_clocks(&exec.stdout);
    assert!(
        mono >= before.0 + MONO_OFF && boot >= before.1 + BOOT_OFF,
        "exec: {exec}"
    );
    for out in [&outa, &outb] {
        let (mono, boot) = parse_clocks(&out.stdout);
        assert!(
            mono >= before.0 + MONO_OFF && mono <= after.0 + MONO_OFF + 1,
            "monotonic {mono} not host {before:?}..{after:?} + {MONO_OFF}:\n{out}"
        );
        assert!(
            boot >= before.1 + BOOT_OFF && boot <= after.1 + BOOT_OFF + 1,
            "boottime {boot} not host {before:?}..{after:?} + {BOOT_OFF}:\n{out}"
        );
        let uptime: i64 = out
            .stdout
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap();
        assert!(
            uptime >= before.1 + BOOT_OFF - 1 && uptime <= after.1 + BOOT_OFF + 1,
            "/proc/uptime {uptime}:\n{out}"
        );
    }
    rt.assert_nothing_left(&idb);
    rt.cmd(&["delete", "--force", &ida]);
    rt.assert_nothing_left(&ida);
}

/// Offsets need a new time namespace and a known clock: refused naming
/// the field, before anything is made.
#[test]
fn time_offsets_errors() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("timens-err");
    let with_ns = |b: &mut Bundle| {
        b.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
    };
    type Setup = fn(&mut Bundle);
    let cases: Vec<(Setup, bool, &str)> = vec![
        (
            |_| {},
            false,
            "linux.timeOffsets: needs a new time namespace",
        ),
        (
            |b| b.config["linux"]["timeOffsets"] = json!({"realtime": {"secs": 5}}),
            true,
            "linux.timeOffsets.realtime: unknown clock",
        ),
        (
            |b| {
                b.config["linux"]["timeOffsets"] =
                    json!({"boottime": {"secs": 5, "nanosecs": 1000000000u32}})
            },
            true,
            "linux.timeOffsets.boottime.nanosecs",
        ),
    ];
    for (setup, ns, want) in cases {
        let mut b = Bundle::new("timens-err");
        b.config["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 5}});
        setup(&mut b);
        if ns {
            with_ns(&mut b);
        }
        b.sh("true");
        let id = common::unique_id("timens-err");
        let out = rt.run(&id, &mut b, &[]);
        out.fails().hull_error_mentions(&[want]);
        rt.assert_nothing_left(&id);
    }
}
