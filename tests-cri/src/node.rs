//! A Kubernetes node's runtime side, private to one test: containerd 1.6
//! with its CRI plugin (root, state, sockets, runtime roots, CNI config and
//! IPAM state in a temp dir), a test-only CNI bridge and subnet, the test
//! images in `k8s.io`, and the runtime handlers `runc`, `hull` (the runc
//! shim with `BinaryName` = hull) and `hull-shim` (containerd-shim-hull-v2).
//! Drop stops the daemon and removes the bridge, the pod cgroup parent and
//! every file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::host::{self, next_n, run, TempDir};
use crate::image;

/// A runtime handler: its name in the CRI config, what runs the pods.
#[derive(Clone, Debug)]
pub struct Handler {
    pub name: &'static str,
    /// `hull`/`runc` for the runc shim's binary; `None` for hull's own shim.
    pub binary: Option<PathBuf>,
}

/// Where this build's binaries are: `HULL_BIN_DIR` if set (e.g. the
/// release directory, for the benchmark), else next to the running
/// executable, which sits in `<target>/<triple>/<profile>/deps/` (tests) or
/// `.../<profile>/examples/` (this also follows CARGO_TARGET_DIR).
pub fn profile_dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("HULL_BIN_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{}: not under <profile>/deps", exe.display()))
}

/// The hull binary of this workspace. `cargo test --workspace` builds it
/// before any test runs; `cargo test -p hull-tests-cri` alone does not, so
/// when it is missing or older than the runtime's sources it is built here
/// (not with `HULL_BIN_DIR`, which names a binary to use as it is).
pub fn hull_binary() -> Result<PathBuf, String> {
    let bin = profile_dir()?.join("hull");
    if std::env::var_os("HULL_BIN_DIR").is_some() {
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("{} is missing (HULL_BIN_DIR)", bin.display()))
        };
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let sources = [
        workspace.join("src"),
        workspace.join("Cargo.toml"),
        workspace.join("Cargo.lock"),
        workspace.join("build.rs"),
    ]
    .iter()
    .filter_map(|p| newest_mtime(p))
    .max();
    if built.is_none() || sources > built {
        let b = run(Command::new(env!("CARGO"))
            .args(["build", "-p", "hull", "--bin", "hull", "--manifest-path"])
            .arg(workspace.join("Cargo.toml")));
        if b.code != 0 || !bin.is_file() {
            return Err(format!("cargo build -p hull: {}", b.stderr));
        }
    }
    Ok(bin)
}

/// The newest modification time of a file or of anything below a directory.
fn newest_mtime(path: &Path) -> Option<std::time::SystemTime> {
    let meta = fs::symlink_metadata(path).ok()?;
    let own = meta.modified().ok();
    if !meta.is_dir() {
        return own;
    }
    fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|e| newest_mtime(&e.path()))
        .chain(own)
        .max()
}

/// containerd-shim-hull-v2 of this workspace, unless it is missing or
/// still the placeholder (which exits 1 saying "not implemented yet");
/// Err says which. Anything else is taken as the shim and tested (a shim
/// that is broken must fail the tests, not skip them).
pub fn hull_shim_binary() -> Result<PathBuf, String> {
    let bin = profile_dir()?.join("containerd-shim-hull-v2");
    if !bin.is_file() {
        return Err(format!(
            "{} is not built (cargo build -p containerd-shim-hull)",
            bin.display()
        ));
    }
    let v = run(Command::new("timeout").arg("10").arg(&bin).arg("-v"));
    let said = format!("{}{}", v.stdout, v.stderr);
    if said.contains("not implemented yet") {
        return Err(format!(
            "{} is the placeholder: {}",
            bin.display(),
            said.trim()
        ));
    }
    Ok(bin)
}

/// A running containerd with the CRI plugin, private to one test.
pub struct Node {
    child: Option<Child>,
    pub sock: PathBuf,
    pub dir: PathBuf,
    /// The CNI bridge (test-only name) and its subnet's first three octets.
    pub bridge: String,
    pub subnet_prefix: String,
    pub net_name: String,
    /// host-local's lease directory for this network.
    pub ipam_dir: PathBuf,
    /// The cgroup parent the test's pods use (cgroupfs driver), removed on drop.
    pub cgroup_parent: String,
    /// The runtime root each runc-shim handler's binary keeps its state in.
    pub runtime_roots: Vec<(&'static str, PathBuf)>,
    tmp: Option<TempDir>,
}

/// A /24 under 10.0.0.0/8 that no host route touches, and a bridge name.
fn pick_subnet() -> Result<(String, String), String> {
    let routes = run(Command::new("ip").args(["-4", "route", "show", "table", "all"])).stdout;
    let addrs = run(Command::new("ip").args(["-4", "-o", "addr"])).stdout;
    let seed = std::process::id() as usize + next_n() * 7;
    for k in 0..200 {
        let x = 20 + (seed + k) % 200;
        let prefix = format!("10.231.{x}");
        let probe = format!("{prefix}.");
        if routes.contains(&probe) || addrs.contains(&probe) || routes.contains("10.231.0.0/16") {
            continue;
        }
        let bridge = format!("hcri{}x{x}", std::process::id() % 100_000);
        if host::link_exists(&bridge) {
            continue;
        }
        return Ok((prefix, bridge));
    }
    Err("no free 10.231.x.0/24 subnet on this host".into())
}

impl Node {
    /// Start containerd with the given handlers and import the images.
    pub fn start(test: &str, handlers: &[Handler]) -> Result<Node, String> {
        for b in ["containerd", "ctr", "containerd-shim-runc-v2"] {
            if !host::have(b) {
                return Err(format!("{b} is missing (apt-get install containerd)"));
            }
        }
        for p in ["bridge", "host-local", "loopback"] {
            if !Path::new("/usr/lib/cni").join(p).is_file() {
                return Err(format!(
                    "/usr/lib/cni/{p} is missing (apt-get install containernetworking-plugins)"
                ));
            }
        }
        let tmp = TempDir::new(test);
        let dir = tmp.path().to_path_buf();
        let (subnet_prefix, bridge) = pick_subnet()?;
        let net_name = format!("hullcri-{}-{}", std::process::id(), next_n());
        let mut node = Node {
            child: None,
            sock: dir.join("cd.sock"),
            ipam_dir: dir.join("ipam").join(&net_name),
            cgroup_parent: format!("/hullcri-{}-{}", std::process::id(), next_n()),
            runtime_roots: Vec::new(),
            dir,
            bridge,
            subnet_prefix,
            net_name,
            tmp: Some(tmp),
        };
        node.write_cni_config()?;
        node.write_config(handlers)?;
        node.spawn()?;
        node.import_images()?;
        Ok(node)
    }

    fn write_cni_config(&self) -> Result<(), String> {
        let netd = self.dir.join("net.d");
        fs::create_dir_all(&netd).map_err(|e| format!("mkdir net.d: {e}"))?;
        // No gateway and no masquerade: the bridge gets no address, the
        // host no ip_forward change or NAT rule; the CRI plugin adds the
        // loopback plugin itself.
        let conf = serde_json::json!({
            "cniVersion": "0.4.0",
            "name": self.net_name,
            "plugins": [{
                "type": "bridge",
                "bridge": self.bridge,
                "isGateway": false,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": format!("{}.0/24", self.subnet_prefix)}]],
                    "dataDir": self.dir.join("ipam"),
                }
            }]
        });
        fs::write(netd.join("10-hullcri.conflist"), conf.to_string())
            .map_err(|e| format!("write CNI config: {e}"))
    }

    fn write_config(&mut self, handlers: &[Handler]) -> Result<(), String> {
        let d = &self.dir;
        let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
        let mut runtimes = String::new();
        for h in handlers {
            match &h.binary {
                Some(bin) => {
                    let root = d.join(format!("{}-root", h.name));
                    runtimes += &format!(
                        "[{cri}.containerd.runtimes.{n}]\n  runtime_type = \"io.containerd.runc.v2\"\n\
                         [{cri}.containerd.runtimes.{n}.options]\n  BinaryName = \"{bin}\"\n  Root = \"{root}\"\n",
                        n = h.name,
                        bin = bin.display(),
                        root = root.display()
                    );
                    self.runtime_roots.push((h.name, root));
                }
                None => {
                    runtimes += &format!(
                        "[{cri}.containerd.runtimes.{n}]\n  runtime_type = \"io.containerd.hull.v2\"\n",
                        n = h.name
                    );
                }
            }
        }
        let config = format!(
            "version = 2\n\
             root = \"{root}\"\n\
             state = \"{state}\"\n\
             [grpc]\n  address = \"{sock}\"\n\
             [ttrpc]\n  address = \"{sock}.ttrpc\"\n\
             [{cri}]\n\
             \x20 sandbox_image = \"{pause}\"\n\
             \x20 restrict_oom_score_adj = true\n\
             \x20 netns_mounts_under_state_dir = true\n\
             \x20 stream_server_address = \"127.0.0.1\"\n\
             \x20 stream_server_port = \"0\"\n\
             [{cri}.containerd]\n\
             \x20 snapshotter = \"overlayfs\"\n\
             \x20 default_runtime_name = \"{default}\"\n\
             {runtimes}\
             [{cri}.cni]\n\
             \x20 bin_dir = \"/usr/lib/cni\"\n\
             \x20 conf_dir = \"{netd}\"\n\
             \x20 max_conf_num = 1\n",
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = self.sock.display(),
            pause = image::PAUSE,
            default = handlers.first().map_or("runc", |h| h.name),
            netd = d.join("net.d").display(),
        );
        fs::write(d.join("config.toml"), config).map_err(|e| format!("write config.toml: {e}"))
    }

    /// Start the daemon; containerd finds shims in its PATH, so this
    /// build's profile directory (containerd-shim-hull-v2) goes first.
    fn spawn(&mut self) -> Result<(), String> {
        let log = fs::File::create(self.dir.join("containerd.log"))
            .map_err(|e| format!("containerd.log: {e}"))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("containerd.log: {e}"))?;
        let path = format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            profile_dir()?.display()
        );
        let child = Command::new("containerd")
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("start containerd: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.ctr(&["version"]).code != 0 {
            if Instant::now() > deadline {
                return Err(format!("containerd did not come up; log:\n{}", self.log()));
            }
            sleep(Duration::from_millis(100));
        }
        // The CRI plugin is skipped, not fatal, when its config is wrong.
        let plugins = self.ctr(&["plugins", "ls"]).stdout;
        let cri_ok = plugins.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&"io.containerd.grpc.v1")
                && f.get(1) == Some(&"cri")
                && f.last() == Some(&"ok")
        });
        if !cri_ok {
            let why: Vec<String> = self
                .log()
                .lines()
                .filter(|l| l.contains("io.containerd.grpc.v1.cri") && !l.contains("level=info"))
                .map(str::to_string)
                .collect();
            return Err(format!(
                "containerd's CRI plugin did not load: {}",
                why.join("\n")
            ));
        }
        Ok(())
    }

    fn import_images(&self) -> Result<(), String> {
        let tarball = image::build(&self.dir.join("image"))?;
        let tar = tarball.to_string_lossy().into_owned();
        let r = self.ctr(&["images", "import", &tar]);
        if r.code != 0 {
            return Err(format!("ctr images import: {}{}", r.stdout, r.stderr));
        }
        Ok(())
    }

    /// `ctr` against this daemon, in the CRI plugin's namespace.
    pub fn ctr(&self, args: &[&str]) -> host::Out {
        run(Command::new("ctr")
            .arg("--address")
            .arg(&self.sock)
            .args(["--namespace", "k8s.io"])
            .args(args))
    }

    /// containerd's log so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// The state root a runc-shim handler's binary gets (`--root`): the
    /// shim appends the namespace to the configured `Root`.
    pub fn runtime_root(&self, handler: &str) -> Option<PathBuf> {
        self.runtime_roots
            .iter()
            .find(|(n, _)| *n == handler)
            .map(|(_, p)| p.join("k8s.io"))
    }

    /// IPs host-local still holds for this network (one file per lease).
    pub fn ip_leases(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(rd) = fs::read_dir(&self.ipam_dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with(&self.subnet_prefix) {
                    out.push(n);
                }
            }
        }
        out
    }

    /// Files left in a directory of this node (entries' names).
    pub fn entries(&self, rel: &str) -> Vec<String> {
        fs::read_dir(self.dir.join(rel))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Kill and delete every task and container of this daemon.
    fn kill_every_task(&self) {
        let tasks = self.ctr(&["tasks", "ls", "-q"]).stdout;
        for id in tasks.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]);
            let _ = self.ctr(&["tasks", "rm", "-f", id]);
        }
        let containers = self.ctr(&["containers", "ls", "-q"]).stdout;
        for id in containers.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let _ = self.ctr(&["containers", "rm", id]);
        }
    }

    /// Stop the daemon (TERM, then KILL after 10 s).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::daemons::stop_child(&mut child, Duration::from_secs(10));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // After a failed test some pod may still run: this daemon is the
        // test's own, so every task in it goes (shims exit with their last).
        self.kill_every_task();
        self.stop();
        if host::link_exists(&self.bridge) {
            let _ = run(Command::new("ip").args(["link", "del", &self.bridge]));
        }
        host::remove_cgroup_tree(&self.cgroup_parent);
        // TempDir's drop detaches what is still mounted below it (the
        // snapshotter's and netns mounts after a failed test) and removes it.
        self.tmp.take();
    }
}
