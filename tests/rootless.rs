//! Rootless: hull run by an unprivileged user, next to runc run by the
//! same user.
//!
//! Each test creates its own user with `useradd` (a unique name, no
//! automatic subordinate ids), gives it one range in /etc/subuid and
//! /etc/subgid, makes its `$XDG_RUNTIME_DIR`, and runs hull (a copy in a
//! 0755 directory the user can reach) through `runuser`. On drop the user,
//! its home, its runtime dir and its /etc/subuid and /etc/subgid lines go
//! again; edits of those files (and useradd/userdel, which edit them too)
//! hold a file lock, so tests running in parallel do not clobber each other.
//!
//! - `hull spec --rootless` writes what `runc spec --rootless` writes;
//! - `spec --rootless && run` end to end with the caller's own id only
//!   (maps written directly) and with a second range (newuidmap and
//!   newgidmap), then `list`, `exec`, `kill`, `delete` and nothing left;
//! - cgroups case by case against runc: no limits (left out, a warning),
//!   limits or a `cgroupsPath` the user may not create (refused, naming
//!   the field), a cgroup delegated to the user (limits applied);
//! - rootless podman with `--runtime <hull>` and with runc.
//!
//! Skipped (with a note) when not root, without busybox, or without
//! useradd, runuser or newuidmap (Debian's passwd, util-linux, uidmap).

mod common;

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::engine::{run_timeout, runtime_invoked, wrapper, Run};
use common::{Bundle, TempDir};
use serde_json::{json, Value};

const STEP: Duration = Duration::from_secs(120);
/// The subordinate range each test user gets.
const SUB_COUNT: u32 = 65536;
/// Held while /etc/subuid, /etc/subgid or /etc/passwd are edited.
const SUBID_LOCK: &str = "/run/lock/hull-test-subid.lock";

/// An exclusive flock, released on drop.
struct FileLock(fs::File);

impl FileLock {
    fn take() -> FileLock {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(SUBID_LOCK)
            .expect("open the subid lock");
        // SAFETY: flock on an fd we own.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(r, 0, "flock {SUBID_LOCK}");
        FileLock(f)
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: flock on an fd we own.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Why these tests cannot run here, if they cannot.
fn skip() -> bool {
    if common::skip() {
        return true;
    }
    for prog in ["useradd", "userdel", "runuser", "newuidmap", "newgidmap"] {
        if !have(prog) {
            eprintln!("skipped: {prog} is missing (packages passwd, util-linux, uidmap)");
            return true;
        }
    }
    false
}

/// A throwaway unprivileged user with one subordinate uid and gid range.
struct User {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
    xdg: PathBuf,
    /// First id of its subordinate ranges (uid and gid alike).
    sub: u32,
    /// hull, copied where the user can execute it.
    hull: PathBuf,
    _bin: TempDir,
}

impl User {
    fn new(tag: &str) -> User {
        let pid = std::process::id();
        let n = common::unique_id("u");
        let n: u32 = n.rsplit('-').next().unwrap().parse().unwrap();
        let name = format!("hrl{}{tag}{n}", pid % 100_000);
        // Distinct per process and test, above the usual 100000.. ranges.
        let sub = 1_000_000 + ((pid % 3000) * 16 + n % 16) * SUB_COUNT;
        {
            let _lock = FileLock::take();
            let st = Command::new("useradd")
                .args(["-m", "-s", "/bin/sh", "-K", "SUB_UID_COUNT=0"])
                .args(["-K", "SUB_GID_COUNT=0", &name])
                .status()
                .expect("useradd");
            assert!(st.success(), "useradd {name}");
            for file in ["/etc/subuid", "/etc/subgid"] {
                common::append_line(Path::new(file), &format!("{name}:{sub}:{SUB_COUNT}"));
            }
        }
        let id = |flag: &str| -> u32 {
            let o = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let home = PathBuf::from(format!("/home/{name}"));
        let xdg = PathBuf::from(format!("/run/user/{uid}"));
        fs::create_dir_all(&xdg).unwrap();
        std::os::unix::fs::chown(&xdg, Some(uid), Some(gid)).unwrap();
        fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).unwrap();
        let bin = TempDir::new("rootless-bin");
        let hull = bin.path().join("hull");
        fs::copy(common::runtime_bin(), &hull).unwrap();
        fs::set_permissions(&hull, fs::Permissions::from_mode(0o755)).unwrap();
        User {
            name,
            uid,
            gid,
            home,
            xdg,
            sub,
            hull,
            _bin: bin,
        }
    }

    /// `prog args` as this user in `dir`, with a login-like environment.
    fn cmd(&self, dir: &Path, prog: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", &self.name, "--", "env", "-i"])
            .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .arg(format!("HOME={}", self.home.display()))
            .arg(format!("USER={}", self.name))
            .arg(format!("LOGNAME={}", self.name))
            .arg(format!("XDG_RUNTIME_DIR={}", self.xdg.display()))
            .arg(prog)
            .args(args)
            .current_dir(dir);
        c
    }

    fn run(&self, dir: &Path, prog: &Path, args: &[&str]) -> Run {
        run_timeout(&mut self.cmd(dir, prog, args), STEP)
    }

    /// A directory the user owns, removed with the guard.
    fn dir(&self, name: &str) -> TempDir {
        let d = TempDir::new(name);
        self.chown(d.path());
        d
    }

    fn chown(&self, path: &Path) {
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success(), "chown -R {}", path.display());
    }

    /// Processes running as this user or as one of its subordinate ids.
    fn processes(&self) -> Vec<(i32, String)> {
        let mut out = Vec::new();
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(status) = fs::read_to_string(e.path().join("status")) else {
                continue;
            };
            let uid: Option<u32> = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|u| u.parse().ok());
            if uid.is_some_and(|u| u == self.uid || (self.sub..self.sub + SUB_COUNT).contains(&u)) {
                let cmd = fs::read_to_string(e.path().join("cmdline")).unwrap_or_default();
                out.push((pid, cmd.replace('\0', " ")));
            }
        }
        out
    }

    /// Nothing of `ids` is left: no state directory under the user's
    /// default root, no process of the user or its ranges.
    #[track_caller]
    fn assert_nothing_left(&self, ids: &[&str]) {
        let root = self.xdg.join("hull");
        for id in ids {
            assert!(
                !root.join(id).exists(),
                "state directory {} left behind",
                root.join(id).display()
            );
        }
        // A killed process may take a moment to be reaped.
        common::wait_until(Duration::from_secs(10), || self.processes().is_empty());
        let procs = self.processes();
        assert!(procs.is_empty(), "processes left behind: {procs:?}");
    }
}

impl Drop for User {
    fn drop(&mut self) {
        // Only this test's unique user and its ranges: whatever still runs
        // there was started by this test.
        for (pid, _) in self.processes() {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        common::wait_until(Duration::from_secs(5), || self.processes().is_empty());
        let _ = fs::remove_dir_all(&self.xdg);
        let _lock = FileLock::take();
        let _ = Command::new("userdel")
            .args(["-r", &self.name])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&self.home);
        for file in ["/etc/subuid", "/etc/subgid"] {
            let text = fs::read_to_string(file).unwrap_or_default();
            let prefix = format!("{}:", self.name);
            let kept: String = text
                .lines()
                .filter(|l| !l.starts_with(&prefix))
                .map(|l| format!("{l}\n"))
                .collect();
            if kept != text {
                let _ = fs::write(file, kept);
            }
        }
    }
}

/// A busybox bundle owned by the user, with `config.json` from
/// `hull spec --rootless` run as that user.
fn rootless_bundle(user: &User, tag: &str) -> (Bundle, Value) {
    let b = Bundle::new(tag);
    fs::set_permissions(b.rootfs().join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    user.chown(&b.dir());
    let r = user.run(&b.dir(), &user.hull, &["spec", "--rootless"]);
    assert_eq!(r.code, 0, "hull spec --rootless: {}", r.brief());
    let mut config: Value =
        serde_json::from_str(&fs::read_to_string(b.config_path()).unwrap()).unwrap();
    config["process"]["terminal"] = json!(false);
    (b, config)
}

fn write_config(b: &Bundle, config: &Value) {
    // The file stays the user's: rewritten in place.
    fs::write(b.config_path(), config.to_string()).unwrap();
}

fn several_ranges(user: &User, config: &mut Value) {
    for (key, own) in [("uidMappings", user.uid), ("gidMappings", user.gid)] {
        config["linux"][key] = json!([
            {"containerID": 0, "hostID": own, "size": 1},
            {"containerID": 1, "hostID": user.sub, "size": SUB_COUNT},
        ]);
    }
}

/// The id-map lines as the kernel prints them, whitespace collapsed.
fn map_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn spec_rootless_writes_what_runc_writes() {
    if skip() {
        return;
    }
    if !Path::new(common::RUNC).exists() {
        eprintln!("skipped: {} is missing", common::RUNC);
        return;
    }
    let user = User::new("s");
    let mut got = Vec::new();
    for rt in [user.hull.as_path(), Path::new(common::RUNC)] {
        let d = user.dir("rootless-spec");
        let r = user.run(d.path(), rt, &["spec", "--rootless"]);
        assert_eq!(r.code, 0, "{} spec --rootless: {}", rt.display(), r.brief());
        let text = fs::read_to_string(d.path().join("config.json")).unwrap();
        got.push(serde_json::from_str::<Value>(&text).unwrap());
    }
    let (mut hull, mut runc) = (got.remove(0), got.remove(0));
    // The same two differences as plain `spec`: the version hull
    // implements and its name as the hostname.
    assert_eq!(hull["ociVersion"], hull::config::OCI_VERSION);
    assert_eq!(hull["hostname"], "hull");
    for v in [&mut hull, &mut runc] {
        let o = v.as_object_mut().unwrap();
        o.remove("ociVersion");
        o.remove("hostname");
    }
    assert_eq!(
        hull,
        runc,
        "hull spec --rootless:\n{}\nrunc spec --rootless:\n{}",
        serde_json::to_string_pretty(&hull).unwrap(),
        serde_json::to_string_pretty(&runc).unwrap()
    );
    assert_eq!(
        hull["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": user.uid, "size": 1}])
    );
}

#[test]
fn spec_then_run_with_one_range_and_with_several() {
    if skip() {
        return;
    }
    let user = User::new("r");
    let (b, mut config) = rootless_bundle(&user, "rootless-run");
    config["process"]["args"] = json!([
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map /proc/self/gid_map"
    ]);
    write_config(&b, &config);
    let id1 = common::unique_id("rl-one");
    let r = user.run(&b.dir(), &user.hull, &["run", &id1]);
    assert_eq!(r.code, 0, "run with one range: {}", r.brief());
    let own = |id: u32| format!("0 {id} 1");
    assert_eq!(
        map_lines(&r.stdout),
        ["0".to_string(), own(user.uid), own(user.gid)],
        "{}",
        r.brief()
    );
    // The default state root is the user's, 0700 with the sticky bit.
    let root = fs::metadata(user.xdg.join("hull")).expect("$XDG_RUNTIME_DIR/hull");
    assert_eq!(root.mode() & 0o7777, 0o1700);
    assert_eq!(root.uid(), user.uid);

    several_ranges(&user, &mut config);
    write_config(&b, &config);
    let id2 = common::unique_id("rl-several");
    let r = user.run(&b.dir(), &user.hull, &["run", &id2]);
    assert_eq!(r.code, 0, "run with several ranges: {}", r.brief());
    let sub = format!("1 {} {SUB_COUNT}", user.sub);
    assert_eq!(
        map_lines(&r.stdout),
        [
            "0".to_string(),
            own(user.uid),
            sub.clone(),
            own(user.gid),
            sub
        ],
        "{}",
        r.brief()
    );
    user.assert_nothing_left(&[&id1, &id2]);
}

#[test]
fn list_exec_kill_delete_as_an_unprivileged_user() {
    if skip() {
        return;
    }
    let user = User::new("l");
    let (b, mut config) = rootless_bundle(&user, "rootless-life");
    several_ranges(&user, &mut config);
    config["root"]["readonly"] = json!(false);
    // Detached: its stdio must not hold the test's pipes open.
    config["process"]["args"] = json!(["sh", "-c", "exec sleep 1000 >/dev/null 2>&1"]);
    write_config(&b, &config);
    let id = common::unique_id("rl-life");
    let hull = |args: &[&str]| user.run(&b.dir(), &user.hull, args);

    let r = hull(&["run", "-d", &id]);
    assert_eq!(r.code, 0, "run -d: {}", r.brief());
    let r = hull(&["list", "-f", "json"]);
    assert_eq!(r.code, 0, "list: {}", r.brief());
    let list: Value = serde_json::from_str(&r.stdout).unwrap();
    let me = list
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == id.as_str()))
        .unwrap_or_else(|| panic!("{id} not in list: {list}"));
    assert_eq!(me["status"], "running", "{me}");
    assert_eq!(me["owner"], user.name.as_str(), "{me}");
    let pid = me["pid"].as_i64().unwrap();
    let host_uid = fs::metadata(format!("/proc/{pid}")).unwrap().uid();
    assert_eq!(host_uid, user.uid, "container root is the user on the host");

    let r = hull(&["exec", &id, "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    assert_eq!(r.code, 0, "exec: {}", r.brief());
    assert_eq!(
        map_lines(&r.stdout),
        [
            "0".to_string(),
            format!("0 {} 1", user.uid),
            format!("1 {} {SUB_COUNT}", user.sub)
        ]
    );
    // A container uid from the second range owns what it makes as the
    // matching subordinate id on the host.
    let r = hull(&["exec", "-u", "1000:1000", &id, "touch", "/tmp/by-1000"]);
    assert_eq!(r.code, 0, "exec -u 1000: {}", r.brief());
    let made = fs::metadata(b.rootfs().join("tmp/by-1000")).unwrap();
    assert_eq!((made.uid(), made.gid()), (user.sub + 999, user.sub + 999));

    let r = hull(&["kill", &id, "KILL"]);
    assert_eq!(r.code, 0, "kill: {}", r.brief());
    let stopped = common::wait_until(Duration::from_secs(20), || {
        let r = hull(&["state", &id]);
        serde_json::from_str::<Value>(&r.stdout).is_ok_and(|s| s["status"] == "stopped")
    });
    assert!(
        stopped,
        "not stopped after kill: {}",
        hull(&["state", &id]).brief()
    );
    let r = hull(&["delete", &id]);
    assert_eq!(r.code, 0, "delete: {}", r.brief());
    let r = hull(&["list", "-q"]);
    assert!(!r.stdout.contains(&id), "still listed: {}", r.brief());
    user.assert_nothing_left(&[&id]);
}

/// One cgroup case, run by hull and by runc as the user.
struct Case {
    name: &'static str,
    resources: Value,
    cgroups_path: Option<String>,
    /// What the container prints (its memory limit) when it runs.
    script: &'static str,
}

/// `cmd` (program and arguments) as the user with its output in files: a
/// created container's init holds its stdio until it execs, so pipes
/// would not reach EOF. Started in the delegated subtree if given.
fn run_to_files(user: &User, dir: &Path, cmd: &[&str], deleg: Option<&Delegated>) -> Run {
    let out = TempDir::new("rootless-out");
    let (o, e) = (out.path().join("out"), out.path().join("err"));
    let mut c = user.cmd(dir, Path::new(cmd[0]), &cmd[1..]);
    if let Some(d) = deleg {
        d.place(&mut c);
    }
    let mut child = c
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(&o).unwrap())
        .stderr(fs::File::create(&e).unwrap())
        .spawn()
        .unwrap();
    let mut code = -999;
    common::wait_until(STEP, || match child.try_wait() {
        Ok(Some(st)) => {
            code = st.code().unwrap_or(-1);
            true
        }
        _ => false,
    });
    if code == -999 {
        let _ = child.kill();
        let _ = child.wait();
    }
    Run {
        code,
        stdout: fs::read_to_string(&o).unwrap_or_default(),
        stderr: fs::read_to_string(&e).unwrap_or_default(),
    }
}

/// Create the container with `rt` (the runtime and its global flags),
/// read its cgroup and memory limit from the host side, delete it. The
/// result's stdout is the cgroup (as /proc/PID/cgroup names it) and the
/// limit, one per line.
fn limit_seen_from_host(
    user: &User,
    b: &Bundle,
    rt: &[&str],
    id: &str,
    deleg: Option<&Delegated>,
) -> Run {
    fn with<'a>(rt: &[&'a str], verb: &[&'a str]) -> Vec<&'a str> {
        rt.iter().chain(verb).copied().collect()
    }
    let mut r = run_to_files(user, &b.dir(), &with(rt, &["create", id]), deleg);
    if r.code != 0 {
        return r;
    }
    let st = run_to_files(user, &b.dir(), &with(rt, &["state", id]), None);
    let pid = serde_json::from_str::<Value>(&st.stdout)
        .ok()
        .and_then(|v| v["pid"].as_i64())
        .unwrap_or(0);
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let found = cgroups.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
        if common::cgroup_v2() && ctrl.is_empty() {
            Some((path, format!("/sys/fs/cgroup{path}/memory.max")))
        } else if ctrl.split(',').any(|c| c == "memory") {
            Some((
                path,
                format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"),
            ))
        } else {
            None
        }
    });
    r.stdout = match found {
        Some((path, f)) => format!(
            "{path}\n{}",
            fs::read_to_string(&f).unwrap_or_else(|e| format!("{f}: {e}"))
        ),
        None => format!("no memory cgroup in {cgroups:?}"),
    };
    let d = run_to_files(user, &b.dir(), &with(rt, &["delete", "-f", id]), deleg);
    r.stderr.push_str(&d.stderr);
    if d.code != 0 {
        r.code = d.code;
    }
    r
}

fn last_line(r: &Run) -> String {
    r.stdout
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A cgroup delegated to the user in every hierarchy (what an admin or
/// systemd's `Delegate=yes` does), with a `launch` child where the
/// runtime is started (cgroup2 lets a process move only inside a subtree
/// whose common ancestor's cgroup.procs it may write).
struct Delegated {
    dirs: Vec<PathBuf>,
    name: String,
    launch: Option<PathBuf>,
}

impl Delegated {
    fn new(user: &User) -> Delegated {
        let name = format!("hulltest-deleg-{}", common::unique_id("d"));
        let mut dirs = Vec::new();
        let mut launch = None;
        let mounts: Vec<PathBuf> = if common::cgroup_v2() {
            vec![PathBuf::from("/sys/fs/cgroup")]
        } else {
            fs::read_dir("/sys/fs/cgroup")
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect()
        };
        for m in mounts {
            let v2 = m.join("cgroup.controllers").exists();
            let dir = m.join(&name);
            if fs::create_dir(&dir).is_err() {
                continue;
            }
            if v2 {
                let l = dir.join("launch");
                fs::create_dir(&l).unwrap();
                launch = Some(l);
                // The memory controller down to the container's level.
                let _ = fs::write(m.join("cgroup.subtree_control"), "+memory +pids");
            }
            user.chown(&dir);
            dirs.push(dir);
        }
        Delegated { dirs, name, launch }
    }

    /// Start `cmd` in the delegated subtree (cgroup2 side).
    fn place(&self, cmd: &mut Command) {
        if let Some(l) = &self.launch {
            let procs = std::ffi::CString::new(l.join("cgroup.procs").to_str().unwrap()).unwrap();
            // SAFETY: only open/write/close, async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let r = libc::write(fd, b"0".as_ptr().cast(), 1);
                    libc::close(fd);
                    if r != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
    }

    /// Directories (container cgroups) the runtime left in the subtree.
    fn leftovers(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for d in &self.dirs {
            for e in fs::read_dir(d).into_iter().flatten().flatten() {
                if e.path().is_dir() && e.file_name() != "launch" {
                    out.push(e.path());
                }
            }
        }
        out
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        // A runtime's container cgroup empties a moment after its kill.
        common::wait_until(Duration::from_secs(5), || {
            self.leftovers().iter().all(|d| fs::remove_dir(d).is_ok())
        });
        for d in &self.dirs {
            for e in fs::read_dir(d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    let _ = fs::remove_dir(e.path());
                }
            }
            let _ = fs::remove_dir(d);
        }
    }
}

#[test]
fn cgroups_as_runc_does_them_rootless() {
    if skip() {
        return;
    }
    if !Path::new(common::RUNC).exists() {
        eprintln!("skipped: {} is missing", common::RUNC);
        return;
    }
    let user = User::new("c");
    let deleg = Delegated::new(&user);
    let limit = json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}});
    let cases = [
        Case {
            name: "no limits, no cgroupsPath: runs in the caller's cgroup",
            resources: json!({}),
            cgroups_path: None,
            script: "echo ran",
        },
        Case {
            name: "limits, no cgroupsPath, no delegation: refused",
            resources: limit.clone(),
            cgroups_path: None,
            script: "echo ran",
        },
        Case {
            name: "a cgroupsPath the user may not create: refused",
            resources: json!({}),
            cgroups_path: Some(format!("/hulltest-nodeleg-{}/c", std::process::id())),
            script: "echo ran",
        },
        Case {
            name: "limits in a delegated cgroup: applied",
            resources: limit,
            cgroups_path: Some(format!("/{}/c", deleg.name)),
            script: "exec sleep 1000",
        },
    ];
    let mut report = String::new();
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let mut results = Vec::new();
        for rt in [user.hull.as_path(), Path::new(common::RUNC)] {
            let (b, mut config) = rootless_bundle(&user, "rootless-cg");
            config["linux"]["resources"] = case.resources.clone();
            if let Some(p) = &case.cgroups_path {
                config["linux"]["cgroupsPath"] = json!(p);
            }
            config["process"]["args"] = json!(["sh", "-c", case.script]);
            write_config(&b, &config);
            let id = format!("rlcg{i}-{}", std::process::id());
            let delegated = case.cgroups_path.as_deref() == Some(&format!("/{}/c", deleg.name));
            let r = if delegated {
                // Started inside the delegated subtree; the other cases
                // from the test's own cgroup, which is not the user's.
                limit_seen_from_host(&user, &b, &[rt.to_str().unwrap()], &id, Some(&deleg))
            } else {
                run_timeout(&mut user.cmd(&b.dir(), rt, &["run", &id]), STEP)
            };
            user.assert_nothing_left(&[&id]);
            // hull's own leftovers (runc 1.1's `delete -f` may leave the
            // cgroup behind on v2: rmdir EBUSY, its report shows it).
            if rt == user.hull && !deleg.leftovers().is_empty() {
                failures.push(format!("{}: hull left {:?}", case.name, deleg.leftovers()));
            }
            report.push_str(&format!(
                "{:<60} {:<5} exit {} {}\n",
                case.name,
                if rt == user.hull { "hull" } else { "runc" },
                r.code,
                common::engine::tail(&format!("{}{}", r.stdout, r.stderr)).replace('\n', " | ")
            ));
            results.push(r);
        }
        let (h, r) = (&results[0], &results[1]);
        if (h.code == 0) != (r.code == 0) || (h.code == 0 && h.stdout != r.stdout) {
            failures.push(format!(
                "{}: hull {} / runc {}",
                case.name,
                h.brief(),
                r.brief()
            ));
        }
        // hull's own words for each case.
        let ok = match i {
            0 => h.code == 0 && h.stderr.contains("running rootless"),
            1 => {
                h.code != 0
                    && h.stderr.contains("linux.resources.memory.limit")
                    && h.stderr.contains("cannot set memory limit")
            }
            2 => h.code != 0 && h.stderr.contains("linux.cgroupsPath"),
            _ => h.code == 0 && last_line(h) == "67108864" && last_line(r) == "67108864",
        };
        if !ok {
            failures.push(format!("{}: hull said {}", case.name, h.brief()));
        }
    }
    eprintln!("{report}");
    assert!(failures.is_empty(), "{}\n{report}", failures.join("\n"));
}

#[test]
fn rootless_podman_runs_hull_like_runc() {
    if skip() {
        return;
    }
    if !have("podman") {
        eprintln!("skipped: podman is missing (tests/engine_podman.rs installs it)");
        return;
    }
    let user = User::new("p");
    // The image: the busybox rootfs as one layer, imported by the user.
    let image_src = Bundle::new("rootless-podman-image");
    let work = user.dir("rootless-podman");
    let layer = work.path().join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(image_src.rootfs())
        .arg("-cf")
        .arg(&layer)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar of the rootfs");
    user.chown(&layer);
    let podman = |runtime: Option<&Path>, args: &[&str]| -> Run {
        let root = user.home.join("storage");
        let runroot = user.xdg.join("podman-run");
        let tmp = user.xdg.join("podman-tmp");
        let mut all = vec![
            "--root".to_string(),
            root.display().to_string(),
            "--runroot".into(),
            runroot.display().to_string(),
            "--tmpdir".into(),
            tmp.display().to_string(),
            "--storage-driver".into(),
            "vfs".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "file".into(),
        ];
        if let Some(rt) = runtime {
            all.push("--runtime".into());
            all.push(rt.display().to_string());
        }
        all.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        user.run(work.path(), Path::new("podman"), &refs)
    };
    let image = "localhost/hullbox-rootless:latest";
    let r = podman(
        None,
        &[
            "import",
            "-c",
            "CMD [\"sh\"]",
            layer.to_str().unwrap(),
            image,
        ],
    );
    assert_eq!(r.code, 0, "podman import: {}", r.brief());
    // Wrappers that log each call: proof of which runtime podman ran.
    let (hull_w, hull_calls) = wrapper(work.path(), "hull", &user.hull);
    let (runc_w, runc_calls) = wrapper(work.path(), "runc", Path::new(common::RUNC));
    let mut results = Vec::new();
    for rt in [&hull_w, &runc_w] {
        // No slirp4netns (it needs /dev/net/tun); podman's default ulimits
        // exceed this host's hard limits for any runtime.
        let r = podman(
            Some(rt),
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
                image,
                "sh",
                "-c",
                "id -u; cat /proc/self/uid_map; echo hello from rootless podman",
            ],
        );
        results.push(r);
    }
    let _ = podman(None, &["rm", "-af", "-t", "0"]);
    let _ = podman(None, &["system", "migrate"]);
    let (h, r) = (&results[0], &results[1]);
    eprintln!("hull: {}\nrunc: {}", h.brief(), r.brief());
    for (name, calls) in [("hull", &hull_calls), ("runc", &runc_calls)] {
        let (step, called) = runtime_invoked(calls);
        assert!(called.is_ok(), "{name}: {step}: {called:?}");
    }
    if r.code != 0 {
        eprintln!(
            "runc cannot run rootless podman here; side by side:\n  runc: {}\n  hull: {}",
            r.brief(),
            h.brief()
        );
    } else {
        assert_eq!(h.code, 0, "hull under rootless podman: {}", h.brief());
        assert_eq!(h.stdout, r.stdout, "hull and runc containers differ");
        assert!(
            h.stdout.contains("hello from rootless podman"),
            "{}",
            h.brief()
        );
    }
    // podman's pause process holds its user namespace: ours to stop.
    if let Ok(p) = fs::read_to_string(user.xdg.join("podman-tmp/pause.pid")) {
        if let Ok(pid) = p.trim().parse::<i32>() {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    common::wait_until(Duration::from_secs(10), || user.processes().is_empty());
    user.assert_nothing_left(&[]);
}

/// What runc refuses for an unprivileged caller, hull refuses too, naming
/// the field, and leaves nothing.
#[test]
fn unprivileged_refusals_as_runc() {
    if skip() {
        return;
    }
    if !Path::new(common::RUNC).exists() {
        eprintln!("skipped: {} is missing", common::RUNC);
        return;
    }
    let user = User::new("v");
    let (b, rootless) = rootless_bundle(&user, "rootless-refuse");
    let mut no_userns = rootless.clone();
    no_userns["linux"]["namespaces"] =
        json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]);
    let linux = no_userns["linux"].as_object_mut().unwrap();
    linux.remove("uidMappings");
    linux.remove("gidMappings");
    let mut groups = rootless.clone();
    groups["process"]["user"]["additionalGids"] = json!([5]);
    let mut mount_uid = rootless.clone();
    let shm = mount_uid["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .position(|m| m["destination"] == "/dev/shm")
        .unwrap();
    mount_uid["mounts"][shm]["options"]
        .as_array_mut()
        .unwrap()
        .push(json!("uid=1000"));
    let cases = [
        (
            no_userns,
            "linux.namespaces: running as an unprivileged user needs a user namespace",
        ),
        (groups, "process.user.additionalGids"),
        (mount_uid, "mounts[3].options[5]"),
    ];
    for (i, (config, field)) in cases.iter().enumerate() {
        let mut config = config.clone();
        config["process"]["args"] = json!(["true"]);
        write_config(&b, &config);
        let id = format!("rlref{i}-{}", std::process::id());
        let h = user.run(&b.dir(), &user.hull, &["run", &id]);
        let r = user.run(&b.dir(), Path::new(common::RUNC), &["run", &id]);
        eprintln!("{field}:\n  hull: {}\n  runc: {}", h.brief(), r.brief());
        assert_ne!(r.code, 0, "runc accepted the {field} case");
        assert_ne!(h.code, 0, "hull accepted the {field} case");
        assert!(h.stderr.contains(field), "{field}: {}", h.brief());
        user.assert_nothing_left(&[&id]);
    }
}

/// systemd's user manager for the test user, stopped again on drop.
struct Linger<'u> {
    user: &'u User,
}

impl<'u> Linger<'u> {
    fn start(user: &'u User) -> Linger<'u> {
        // systemd's user@.service pulls in user-runtime-dir@ (the tmpfs at
        // /run/user/UID); started directly, no login session needed.
        let unit = format!("user@{}.service", user.uid);
        let r = run_timeout(Command::new("systemctl").args(["start", &unit]), STEP);
        assert_eq!(r.code, 0, "systemctl start {unit}: {}", r.brief());
        let linger = Linger { user };
        let bus = user.xdg.join("bus");
        let up = common::wait_until(Duration::from_secs(60), || bus.exists());
        let status = run_timeout(
            Command::new("systemctl").args(["status", "--no-pager", &unit]),
            STEP,
        );
        assert!(up, "no user bus at {}:\n{}", bus.display(), status.stdout);
        linger
    }
}

impl Drop for Linger<'_> {
    fn drop(&mut self) {
        let uid = self.user.uid;
        let units = [
            format!("user@{uid}.service"),
            format!("user-runtime-dir@{uid}.service"),
        ];
        let _ = run_timeout(Command::new("systemctl").arg("stop").args(&units), STEP);
    }
}

/// With `--systemd-cgroup`, a rootless container's scope is made by the
/// user's own systemd (its delegated subtree, cgroup v2), and the limits
/// apply there, as with runc. Only where systemd runs.
#[test]
fn systemd_user_manager_scope_gets_the_limits() {
    if skip() {
        return;
    }
    if !Path::new("/run/systemd/system").exists() {
        eprintln!("skipped: systemd is not running here (no /run/systemd/system): no user manager");
        return;
    }
    if !common::cgroup_v2() {
        eprintln!("skipped: systemd --user delegates a subtree only on cgroup v2");
        return;
    }
    if !Path::new(common::RUNC).exists() {
        eprintln!("skipped: {} is missing", common::RUNC);
        return;
    }
    let user = User::new("y");
    let linger = Linger::start(&user);
    let (b, mut config) = rootless_bundle(&user, "rootless-sd");
    config["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}});
    config["process"]["args"] = json!(["sh", "-c", "exec sleep 1000"]);
    write_config(&b, &config);
    let bus = format!(
        "DBUS_SESSION_BUS_ADDRESS=unix:path={}",
        user.xdg.join("bus").display()
    );
    let mut results = Vec::new();
    for rt in [user.hull.as_path(), Path::new(common::RUNC)] {
        let id = format!("rlsd-{}", std::process::id());
        let cmd = [
            "/usr/bin/env",
            &bus,
            rt.to_str().unwrap(),
            "--systemd-cgroup",
        ];
        let r = limit_seen_from_host(&user, &b, &cmd, &id, None);
        eprintln!("{}: {}", rt.display(), r.brief());
        let state = user.xdg.join("hull").join(&id);
        assert!(!state.exists(), "{} left behind", state.display());
        results.push(r);
    }
    let (h, r) = (&results[0], &results[1]);
    assert_eq!(r.code, 0, "runc: {}", r.brief());
    assert_eq!(h.code, 0, "hull: {}", h.brief());
    assert_eq!(last_line(h), "67108864", "{}", h.brief());
    assert_eq!(last_line(h), last_line(r));
    assert!(
        h.stdout
            .contains(&format!("user@{}.service/user.slice/hull-rlsd-", user.uid)),
        "not in the user manager's user.slice: {}",
        h.brief()
    );
    drop(linger);
    user.assert_nothing_left(&[]);
}
