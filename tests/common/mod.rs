//! Shared harness for hull's integration tests.
//!
//! The tests drive a runc-compatible runtime binary: `HULL_TEST_RUNTIME` if
//! set (e.g. `/usr/sbin/runc`), otherwise the `hull` binary of this package.
//! Every test gets its own `--root` state directory and its own bundle
//! directories, so tests can run in parallel, and everything is torn down on
//! drop (even when the test panics).
//!
//! Run against runc to validate the tests themselves:
//!
//! ```text
//! HULL_TEST_RUNTIME=/usr/sbin/runc CARGO_TARGET_DIR=/tmp/helper-target cargo test
//! ```
//!
//! Tests pass with a "skipped: ..." note when not run as root or when
//! /bin/busybox is missing. Each integration test file compiles this module
//! separately and uses only part of it.
#![allow(dead_code)]

pub mod daemons;
pub mod engine;

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long any single runtime command may take before the test fails.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for a container to reach some state.
pub const STATE_TIMEOUT: Duration = Duration::from_secs(20);

/// Busybox on the host; its applets make up the test rootfs.
pub const BUSYBOX: &str = "/bin/busybox";
/// runc, used by the differential test.
pub const RUNC: &str = "/usr/sbin/runc";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn next_n() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

// ---------------------------------------------------------------------------
// Environment checks
// ---------------------------------------------------------------------------

/// The `hull` binary cargo built for these tests (other workspace
/// packages that share this module, such as the shim's, have none: then
/// `hull` on PATH).
fn built_hull() -> &'static Path {
    Path::new(option_env!("CARGO_BIN_EXE_hull").unwrap_or("hull"))
}

/// The runtime binary under test.
pub fn runtime_bin() -> PathBuf {
    match std::env::var_os("HULL_TEST_RUNTIME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => built_hull().to_path_buf(),
    }
}

/// Whether the runtime under test is hull itself (and not e.g. runc).
pub fn is_hull() -> bool {
    let bin = runtime_bin();
    bin == built_hull()
        || bin
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("hull"))
}

/// Why the container tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("container tests need root".into());
    }
    if !Path::new(BUSYBOX).is_file() {
        return Some(format!("{BUSYBOX} is missing (install busybox-static)"));
    }
    None
}

/// True (after printing a "skipped: ..." note) if container tests cannot run
/// here; tests start with `if common::skip() { return; }`.
pub fn skip() -> bool {
    match skip_reason() {
        Some(reason) => {
            eprintln!("skipped: {reason}");
            true
        }
        None => false,
    }
}

/// A container id unique to this process and test, e.g. `lifecycle-1234-7`.
/// Only `[A-Za-z0-9_-]`, at most ~40 characters.
pub fn unique_id(name: &str) -> String {
    let short: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(24)
        .collect();
    format!("{short}-{}-{}", std::process::id(), next_n())
}

/// The cgroup directory name used for a container (under every hierarchy).
pub fn cgroup_name(id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("hulltest-{safe}")
}

// ---------------------------------------------------------------------------
// Temporary directories (mount-aware removal)
// ---------------------------------------------------------------------------

/// A unique directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let short: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(24)
            .collect();
        let path = std::env::temp_dir().join(format!(
            "hulltest-{}-{}-{short}",
            std::process::id(),
            next_n()
        ));
        fs::create_dir_all(&path).expect("create temp dir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        safe_remove(&self.path);
    }
}

/// Host mount points at or below `dir` (from /proc/self/mountinfo).
pub fn host_mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(dir))
        .collect()
}

fn unescape_mountinfo(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v as char);
                i += 4;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Removes `dir`, first detaching any host mounts a buggy runtime may have
/// leaked below it; never recurses into something still mounted.
pub fn safe_remove(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let mut mounts = host_mounts_under(dir);
    if !mounts.is_empty() {
        mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
        for m in &mounts {
            if let Ok(c) = CString::new(m.as_os_str().as_encoded_bytes()) {
                // SAFETY: c is a valid NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        if !host_mounts_under(dir).is_empty() {
            eprintln!(
                "warning: leaving {} behind: still has mounts below it",
                dir.display()
            );
            return;
        }
    }
    let _ = fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------

/// An OCI bundle in a temp dir: `<tmp>/bundle/{config.json,rootfs}`.
/// The rootfs is busybox with all applets linked in `/bin`.
/// `config` starts close to `runc spec` (but `terminal: false`, writable
/// rootfs and no ambient capabilities); tests tweak it and it is written out
/// by [`Bundle::save_for`] (which the [`Runtime`] helpers call).
pub struct Bundle {
    tmp: TempDir,
    pub config: Value,
}

impl Bundle {
    pub fn new(name: &str) -> Bundle {
        let tmp = TempDir::new(name);
        let dir = tmp.path().join("bundle");
        let rootfs = dir.join("rootfs");
        for d in [
            "bin",
            "etc",
            "proc",
            "sys",
            "dev",
            "tmp",
            "root",
            "home/hull",
            "var",
            "run",
        ] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox into rootfs");
        let list = Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .expect("busybox --list");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let applet = applet.trim();
            if applet.is_empty() || applet == "busybox" || applet.contains('/') {
                continue;
            }
            let _ = symlink("busybox", rootfs.join("bin").join(applet));
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n\
             hull:x:1000:1000:hull:/home/hull:/bin/sh\n\
             nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\nwheel:x:10:\ntty:x:5:\nhull:x:1000:\nnogroup:x:65534:\n",
        )
        .unwrap();
        Bundle {
            tmp,
            config: default_config(),
        }
    }

    /// The bundle directory (holds config.json and rootfs).
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("bundle")
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir().join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir().join("config.json")
    }

    /// A fresh host directory next to (not inside) the bundle, for bind mount
    /// sources, hook logs, etc. Removed with the bundle.
    pub fn host_dir(&self, name: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o777)).unwrap();
        p
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// `sh -c SCRIPT`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    pub fn env(&mut self, kv: &str) -> &mut Self {
        self.config["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!(kv));
        self
    }

    pub fn cwd(&mut self, cwd: &str) -> &mut Self {
        self.config["process"]["cwd"] = json!(cwd);
        self
    }

    pub fn hostname(&mut self, h: &str) -> &mut Self {
        self.config["hostname"] = json!(h);
        self
    }

    pub fn readonly(&mut self, ro: bool) -> &mut Self {
        self.config["root"]["readonly"] = json!(ro);
        self
    }

    pub fn terminal(&mut self, t: bool) -> &mut Self {
        self.config["process"]["terminal"] = json!(t);
        self
    }

    pub fn user(&mut self, uid: u32, gid: u32, additional: &[u32]) -> &mut Self {
        self.config["process"]["user"] = json!({
            "uid": uid,
            "gid": gid,
            "additionalGids": additional,
        });
        self
    }

    pub fn mount(&mut self, m: Value) -> &mut Self {
        self.config["mounts"].as_array_mut().unwrap().push(m);
        self
    }

    /// Bind-mounts host directory `src` at `dest` (read-write).
    pub fn bind(&mut self, src: &Path, dest: &str) -> &mut Self {
        self.mount(json!({
            "destination": dest,
            "type": "bind",
            "source": src,
            "options": ["rbind", "rw"],
        }))
    }

    /// Appends a hook of the given kind (`prestart`, `createRuntime`, ...).
    pub fn hook(&mut self, kind: &str, hook: Value) -> &mut Self {
        let hooks = &mut self.config["hooks"];
        if !hooks.is_object() {
            *hooks = json!({});
        }
        let list = &mut hooks[kind];
        if !list.is_array() {
            *list = json!([]);
        }
        list.as_array_mut().unwrap().push(hook);
        self
    }

    /// Writes config.json for container `id` (its cgroupsPath is
    /// [`cgroups_path`], so cgroup debris can be checked).
    pub fn save_for(&mut self, id: &str) {
        self.config["linux"]["cgroupsPath"] = json!(cgroups_path(id));
        self.write_config();
    }

    /// Writes `self.config` verbatim.
    pub fn write_config(&self) {
        let text = serde_json::to_string_pretty(&self.config).unwrap();
        fs::write(self.config_path(), text).expect("write config.json");
    }
}

/// A config close to `runc spec` output, minus the terminal and ambient caps,
/// with a writable rootfs.
pub fn default_config() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps
            },
            "rlimits": [
                { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }
            ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "hulltest",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            {
                "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
            },
            {
                "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
            },
            {
                "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            },
            {
                "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]
            },
            {
                "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"]
            },
            {
                "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
            }
        ],
        "linux": {
            "resources": {
                "devices": [ { "allow": false, "access": "rwm" } ]
            },
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        }
    })
}

// ---------------------------------------------------------------------------
// Running the runtime
// ---------------------------------------------------------------------------

/// What a finished runtime command produced.
#[derive(Debug, Clone)]
pub struct Out {
    pub cmdline: String,
    /// Exit code, or 128+signal if the runtime itself was killed.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "command failed:\n{self}");
        self
    }

    /// Asserts a failure: non-zero exit and an error message on stderr
    /// (for hull: a `hull: <message>` line).
    #[track_caller]
    pub fn fails(&self) -> &Self {
        assert_ne!(self.code, 0, "command unexpectedly succeeded:\n{self}");
        assert!(
            !self.stderr.trim().is_empty(),
            "failure without an error message on stderr:\n{self}"
        );
        if is_hull() {
            assert!(
                self.stderr
                    .lines()
                    .any(|l| l.starts_with("hull: ") && l.len() > "hull: ".len()),
                "hull error is not reported as `hull: <message>`:\n{self}"
            );
        }
        self
    }

    /// For hull only: asserts the error message mentions one of `words`
    /// (case-insensitive). runc's wording differs, so it is not checked.
    #[track_caller]
    pub fn hull_error_mentions(&self, words: &[&str]) -> &Self {
        if is_hull() {
            let lower = self.stderr.to_lowercase();
            assert!(
                words.iter().any(|w| lower.contains(&w.to_lowercase())),
                "error message should mention one of {words:?}:\n{self}"
            );
        }
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\nexit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--------------",
            self.cmdline, self.code, self.stdout, self.stderr
        )
    }
}

/// A runtime command that is still running. Its stdout/stderr go to files,
/// never pipes: `create`/`run -d` hand the runtime's stdio to the container,
/// so waiting for EOF on a pipe would wait for the container to exit.
pub struct Pending {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    cmdline: String,
}

impl Pending {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the runtime process has exited (without reaping output).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the runtime to exit, failing the test after `timeout`.
    #[track_caller]
    pub fn wait_timeout(mut self, timeout: Duration) -> Out {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait().expect("wait for runtime") {
                Some(st) => break st,
                None if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let out = self.collect(-1);
                    panic!("runtime command timed out after {timeout:?}:\n{out}");
                }
                None => sleep(Duration::from_millis(5)),
            }
        };
        let code = match (status.code(), status.signal()) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            _ => -1,
        };
        self.collect(code)
    }

    #[track_caller]
    pub fn wait(self) -> Out {
        self.wait_timeout(CMD_TIMEOUT)
    }

    fn collect(&self, code: i32) -> Out {
        Out {
            cmdline: self.cmdline.clone(),
            code,
            stdout: fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: fs::read_to_string(&self.err).unwrap_or_default(),
        }
    }
}

impl Drop for Pending {
    /// A runtime command abandoned by a failing test is killed (it is our
    /// own child) so that it does not outlive the test.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a runtime binary with a private `--root`. On drop, every container
/// it created is `delete --force`d and the state root is removed.
pub struct Runtime {
    bin: PathBuf,
    base: TempDir,
    ids: std::cell::RefCell<Vec<String>>,
    pids: std::cell::RefCell<Vec<(String, i32)>>,
    rootfs: std::cell::RefCell<Vec<(String, PathBuf)>>,
}

impl Runtime {
    /// The runtime under test.
    pub fn new(test: &str) -> Runtime {
        Runtime::with_bin(runtime_bin(), test)
    }

    pub fn with_bin(bin: impl Into<PathBuf>, test: &str) -> Runtime {
        let base = TempDir::new(&format!("rt-{test}"));
        fs::create_dir_all(base.path().join("io")).unwrap();
        Runtime {
            bin: bin.into(),
            base,
            ids: Default::default(),
            pids: Default::default(),
            rootfs: Default::default(),
        }
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The per-test directory holding the state root and command output.
    pub fn base(&self) -> &Path {
        self.base.path()
    }

    /// The `--root` state directory (not created in advance).
    pub fn root(&self) -> PathBuf {
        self.base.path().join("root")
    }

    /// Remembers `id` for `delete --force` on drop.
    pub fn track(&self, id: &str) {
        let mut ids = self.ids.borrow_mut();
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }

    /// Spawns `<bin> --root <root> ARGS...`; `configure` may adjust the
    /// command (stdin, pre_exec, ...) before it is spawned.
    pub fn spawn_with(&self, args: &[&str], configure: impl FnOnce(&mut Command)) -> Pending {
        let n = next_n();
        let io = self.base.path().join("io");
        let out = io.join(format!("{n}.out"));
        let err = io.join(format!("{n}.err"));
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(self.root()).args(args);
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap());
        configure(&mut cmd);
        let cmdline = format!(
            "{} --root {} {}",
            self.bin.display(),
            self.root().display(),
            args.join(" ")
        );
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", self.bin.display()));
        Pending {
            child,
            out,
            err,
            cmdline,
        }
    }

    pub fn spawn(&self, args: &[&str]) -> Pending {
        self.spawn_with(args, |_| {})
    }

    /// Runs `<bin> --root <root> ARGS...` to completion.
    #[track_caller]
    pub fn cmd(&self, args: &[&str]) -> Out {
        self.spawn(args).wait()
    }

    /// `VERB ID --bundle DIR EXTRA...`, after saving the bundle's config for
    /// `id` and tracking `id` for cleanup.
    fn bundle_cmd(&self, verb: &str, id: &str, bundle: &mut Bundle, extra: &[&str]) -> Vec<String> {
        bundle.save_for(id);
        self.track(id);
        self.rootfs
            .borrow_mut()
            .push((id.to_string(), bundle.rootfs()));
        let mut v = vec![
            verb.to_string(),
            id.to_string(),
            "--bundle".to_string(),
            bundle.dir().display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    /// `create ID --bundle DIR EXTRA...` (config saved for `id` first).
    #[track_caller]
    pub fn create(&self, id: &str, bundle: &mut Bundle, extra: &[&str]) -> Out {
        self.spawn_create(id, bundle, extra, |_| {}).wait()
    }

    /// Spawns `create ID --bundle DIR EXTRA...` without waiting for it.
    pub fn spawn_create(
        &self,
        id: &str,
        bundle: &mut Bundle,
        extra: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Pending {
        let args = self.bundle_cmd("create", id, bundle, extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn_with(&refs, configure)
    }

    /// `run ID --bundle DIR EXTRA...` (config saved for `id` first).
    #[track_caller]
    pub fn run(&self, id: &str, bundle: &mut Bundle, extra: &[&str]) -> Out {
        self.spawn_run(id, bundle, extra, |_| {}).wait()
    }

    /// Spawns `run ID --bundle DIR EXTRA...` without waiting for it.
    pub fn spawn_run(
        &self,
        id: &str,
        bundle: &mut Bundle,
        extra: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Pending {
        let args = self.bundle_cmd("run", id, bundle, extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn_with(&refs, configure)
    }

    /// `run`s a container to completion and returns what it printed,
    /// asserting exit code 0.
    #[track_caller]
    pub fn run_ok(&self, id: &str, bundle: &mut Bundle) -> Out {
        let out = self.run(id, bundle, &[]);
        out.ok();
        out
    }

    /// `state ID` parsed, or None if the command fails.
    pub fn state(&self, id: &str) -> Option<Value> {
        let out = self.cmd(&["state", id]);
        if !out.success() {
            return None;
        }
        let v = out.json();
        if let Some(pid) = v["pid"].as_i64() {
            if pid > 0 {
                self.remember_pid(id, pid as i32);
            }
        }
        Some(v)
    }

    /// `state ID`, asserting success.
    #[track_caller]
    pub fn state_ok(&self, id: &str) -> Value {
        let out = self.cmd(&["state", id]);
        out.ok();
        let v = out.json();
        if let Some(pid) = v["pid"].as_i64() {
            if pid > 0 {
                self.remember_pid(id, pid as i32);
            }
        }
        v
    }

    pub fn status(&self, id: &str) -> Option<String> {
        self.state(id)
            .and_then(|v| v["status"].as_str().map(str::to_string))
    }

    /// Polls `state` until the status is `want`.
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + STATE_TIMEOUT;
        loop {
            let st = self.state(id);
            if let Some(v) = &st {
                if v["status"] == want {
                    return v.clone();
                }
            }
            if Instant::now() > deadline {
                panic!("container {id} never reached status {want:?}; last state: {st:?}");
            }
            sleep(Duration::from_millis(20));
        }
    }

    pub fn remember_pid(&self, id: &str, pid: i32) {
        let mut pids = self.pids.borrow_mut();
        if !pids.iter().any(|(i, p)| i == id && *p == pid) {
            pids.push((id.to_string(), pid));
        }
    }

    /// Asserts that container `id` left nothing behind: no state dir under
    /// the root, no cgroup directory, no live process with any pid seen for
    /// it, and no host mount below the state root.
    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str) {
        let root = self.root();
        if is_plain_id(id) {
            let state_dir = root.join(id);
            assert!(
                !state_dir.exists(),
                "state directory {} left behind",
                state_dir.display()
            );
        } else if let Ok(rd) = fs::read_dir(&root) {
            // An id like `a/b` or `..` must not have created anything at all.
            let entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            assert!(
                entries.is_empty(),
                "state left behind for bad id {id:?}: {entries:?}"
            );
        }
        assert_no_cgroup(id);
        for (i, pid) in self.pids.borrow().iter() {
            if i == id {
                assert!(
                    !process_alive(*pid),
                    "process {pid} of container {id} is still running"
                );
            }
        }
        for (i, rootfs) in self.rootfs.borrow().iter() {
            if i == id {
                let procs = processes_rooted_at(rootfs);
                assert!(
                    procs.is_empty(),
                    "processes {procs:?} still run in container {id}'s rootfs"
                );
            }
        }
        let leaked = host_mounts_under(self.base.path());
        assert!(leaked.is_empty(), "mounts leaked onto the host: {leaked:?}");
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self
                .spawn(&["delete", "--force", id])
                .wait_timeout(Duration::from_secs(30));
        }
    }
}

/// Whether this host's /sys/fs/cgroup is a pure cgroup v2 mount (systemd
/// hosts today); otherwise it holds v1 hierarchies, maybe with a cgroup2
/// mount at `unified` beside them (hybrid).
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The parent of the tests' cgroups on a v2 host. systemd turns off the
/// root's controllers that none of its own units use (here: as soon as a
/// test's transient scope comes or goes), which would take a container's
/// cpu limits away at the root; a parent with the controllers enabled
/// below it pins them (docker's /docker does the same). It stays: tests
/// running in parallel share it.
pub const V2_PARENT: &str = "hulltest";

/// The cgroupsPath tests give container `id`: `/hulltest-<id>` on v1
/// hosts, `/hulltest/hulltest-<id>` on v2 ones ([`V2_PARENT`]).
pub fn cgroups_path(id: &str) -> String {
    if cgroup_v2() {
        format!("/{V2_PARENT}/{}", cgroup_name(id))
    } else {
        format!("/{}", cgroup_name(id))
    }
}

/// Asserts there is no cgroup directory `hulltest-<id>` left: on v1 under
/// every hierarchy (and the hybrid cgroup2 mount), on v2 under the root and
/// [`V2_PARENT`].
#[track_caller]
pub fn assert_no_cgroup(id: &str) {
    let name = cgroup_name(id);
    let mut left = Vec::new();
    let root = Path::new("/sys/fs/cgroup");
    for p in [root.join(&name), root.join(V2_PARENT).join(&name)] {
        if p.exists() {
            left.push(p);
        }
    }
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd.flatten() {
            let p = e.path().join(&name);
            if p.exists() {
                left.push(p);
            }
        }
    }
    assert!(left.is_empty(), "cgroup directories left behind: {left:?}");
}

/// The container's cgroup directory for `controller` (may not exist): on v1
/// `/sys/fs/cgroup/<controller>/hulltest-<id>` (`unified` is the hybrid
/// cgroup2 mount), on v2 `/sys/fs/cgroup/hulltest/hulltest-<id>` for every
/// controller.
pub fn cgroup_dir(controller: &str, id: &str) -> PathBuf {
    let root = Path::new("/sys/fs/cgroup");
    if cgroup_v2() {
        root.join(V2_PARENT).join(cgroup_name(id))
    } else {
        root.join(controller).join(cgroup_name(id))
    }
}

/// The cgroup of `pid` as the host sees it: on v2 the `0::` line, on v1 the
/// path in `controller`'s hierarchy.
pub fn cgroup_of(pid: i32, controller: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if cgroup_v2() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then(|| path.to_string())
    })
}

/// True if `pid` exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            // "pid (comm) S ..." - comm may contain spaces/parens.
            let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let state = after.split_whitespace().next().unwrap_or("");
            state != "Z" && state != "X"
        }
    }
}

/// Live processes whose root directory is `dir` (compared by device and
/// inode: /proc/PID/root reads as "/" for a process that pivot_root'ed).
pub fn processes_rooted_at(dir: &Path) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(want) = fs::metadata(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(m) = fs::metadata(format!("/proc/{pid}/root")) {
            if m.dev() == want.dev() && m.ino() == want.ino() && process_alive(pid) {
                found.push(pid);
            }
        }
    }
    found
}

/// Waits until `pid` is gone (or a zombie).
pub fn wait_process_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !process_alive(pid) {
            return true;
        }
        sleep(Duration::from_millis(20));
    }
    !process_alive(pid)
}

/// Appends a line to `path` (O_APPEND, like the hooks do).
pub fn append_line(path: &Path, line: &str) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

/// Polls `cond` until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        sleep(Duration::from_millis(20));
    }
}

/// `pre_exec` helper: makes `src` available as `target` in the child,
/// without close-on-exec.
///
/// # Safety
/// Must only be called from a `pre_exec` closure (after fork, before exec).
pub unsafe fn dup_to(src: i32, target: i32) -> std::io::Result<()> {
    if src == target {
        let flags = libc::fcntl(src, libc::F_GETFD);
        if flags < 0 || libc::fcntl(src, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    } else if libc::dup2(src, target) < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Adds a `pre_exec` to `cmd` that places the given `(src, target)` fds at
/// the target numbers, inheritable (sources are first moved out of the way so
/// that a source equal to another target is not clobbered).
pub fn with_fds(cmd: &mut Command, map: Vec<(i32, i32)>) {
    // SAFETY: the closure only calls async-signal-safe fcntl/dup2/close.
    unsafe {
        cmd.pre_exec(move || {
            let mut tmp = Vec::with_capacity(map.len());
            for (src, target) in &map {
                let t = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, 200);
                if t < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                tmp.push((t, *target));
            }
            for (t, target) in &tmp {
                dup_to(*t, *target)?;
                libc::close(*t);
            }
            Ok(())
        });
    }
}

/// Whether `id` is a plain single path component (not `.`/`..`).
pub fn is_plain_id(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains('/')
}

/// The sha256 of a file, as `sha256sum` prints it.
pub fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}
