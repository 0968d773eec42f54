//! Private daemons for tests: a dockerd or a containerd with its roots,
//! state, sockets and log under a directory the caller owns. The caller
//! removes that directory after the daemon is dropped (declare the daemon
//! before the temp dir in a struct). Self-contained (std and libc only) so
//! hull's, the shim's and hullctl's tests all include this one file.
#![allow(dead_code)]

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::{sleep, JoinHandle};
use std::time::{Duration, Instant};

pub const DOCKERD: &str = "/usr/sbin/dockerd";
pub const DOCKER: &str = "/usr/bin/docker";
pub const CONTAINERD: &str = "containerd";
pub const CTR: &str = "ctr";

/// `cmd`'s output, or None if it did not finish within `limit` (it is
/// killed then): a wedged daemon must not hang a test. The pipes are read
/// while it runs, so any amount of output fits.
pub fn output_within(cmd: &mut Command, limit: Duration) -> io::Result<Option<Output>> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let (out, err) = (reader(child.stdout.take()), reader(child.stderr.take()));
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(Output {
                status,
                stdout: out.join().unwrap_or_default(),
                stderr: err.join().unwrap_or_default(),
            }));
        }
        if Instant::now() >= deadline {
            // A grandchild may still hold the pipes: the readers are left
            // to end with it.
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        sleep(Duration::from_millis(20));
    }
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut v);
        }
        v
    })
}

/// Whether `cmd` succeeded within `limit`.
fn succeeds_within(cmd: &mut Command, limit: Duration) -> bool {
    matches!(output_within(cmd, limit), Ok(Some(o)) if o.status.success())
}

/// SIGTERM, then SIGKILL if `child` has not exited within `grace`; reaped.
pub fn stop_child(child: &mut Child, grace: Duration) {
    // SAFETY: kill on our own (unreaped) child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `umount -R -l path`, quietly (nothing mounted is fine).
fn umount_tree(path: &Path) {
    let _ = Command::new("umount")
        .args(["-R", "-l"])
        .arg(path)
        .stderr(Stdio::null())
        .status();
}

/// A log file opened for appending, as a child's stdout and stderr.
fn log_to(path: &Path) -> (Stdio, Stdio) {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (log.try_clone().expect("dup log fd").into(), log.into())
}

/// Poll `up` until it holds; panic with `log`'s text after `limit`.
fn wait_up(what: &str, limit: Duration, log: &Path, mut up: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !up() {
        assert!(
            Instant::now() < deadline,
            "{what} did not come up; log:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        sleep(Duration::from_millis(100));
    }
}

/// The FORWARD chains whose policy was ACCEPT (iptables, ip6tables):
/// dockerd sets DROP and leaves it so when it stops.
fn forward_accepting() -> Vec<&'static str> {
    ["iptables", "ip6tables"]
        .into_iter()
        .filter(|t| {
            let o = output_within(
                Command::new(t).args(["-w", "-S", "FORWARD"]),
                Duration::from_secs(30),
            );
            matches!(o, Ok(Some(o)) if String::from_utf8_lossy(&o.stdout).contains("-P FORWARD ACCEPT"))
        })
        .collect()
}

/// A dockerd with data-root, exec-root, pidfile, socket and log
/// (`dockerd.log`) under `dir`. Dropping it removes every container,
/// stops the daemon, unmounts what it left under `dir` and puts back a
/// FORWARD policy of ACCEPT that it turned to DROP (its own chains stay,
/// as docker leaves them).
pub struct Dockerd {
    child: Child,
    /// `unix://DIR/docker.sock`, for `docker -H`.
    pub sock: String,
    pub dir: PathBuf,
    forward_accepting: Vec<&'static str>,
}

impl Dockerd {
    /// Start one with `extra` flags (e.g. `--config-file`, `--bridge
    /// none`, `--iptables=false`) and wait until it answers.
    pub fn start(dir: &Path, extra: &[&str]) -> Dockerd {
        let forward_accepting = forward_accepting();
        let sock = format!("unix://{}", dir.join("docker.sock").display());
        let (out, err) = log_to(&dir.join("dockerd.log"));
        let child = Command::new(DOCKERD)
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args(["-H", &sock])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start dockerd");
        let d = Dockerd {
            child,
            sock,
            dir: dir.to_path_buf(),
            forward_accepting,
        };
        wait_up("dockerd", Duration::from_secs(60), &d.log_path(), || {
            succeeds_within(&mut d.cmd(&["version"]), Duration::from_secs(10))
        });
        d
    }

    /// `docker -H SOCK args...`, not run yet.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.args(["-H", &self.sock]).args(args);
        c
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("dockerd.log")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let limit = Duration::from_secs(60);
        if let Ok(Some(ps)) = output_within(&mut self.cmd(&["ps", "-aq"]), limit) {
            for id in String::from_utf8_lossy(&ps.stdout).split_whitespace() {
                let _ = output_within(&mut self.cmd(&["rm", "-f", id]), limit);
            }
        }
        stop_child(&mut self.child, Duration::from_secs(20));
        for sub in ["exec", "data"] {
            umount_tree(&self.dir.join(sub));
        }
        for tool in &self.forward_accepting {
            let _ = output_within(
                Command::new(tool).args(["-w", "-P", "FORWARD", "ACCEPT"]),
                Duration::from_secs(30),
            );
        }
    }
}

/// A containerd with root, state, sockets (`c.sock`, `c.sock.ttrpc`),
/// config (`config.toml`, CRI off) and log (`containerd.log`) under `dir`.
/// It can be stopped and launched again with the same config (a restart).
/// Dropping it stops the daemon and unmounts its root; shims outlive it.
pub struct Containerd {
    child: Option<Child>,
    pub sock: PathBuf,
    pub dir: PathBuf,
    /// Put first on the daemon's PATH (where it finds shims).
    path_first: Option<PathBuf>,
}

impl Containerd {
    pub fn start(dir: &Path, path_first: Option<&Path>) -> Containerd {
        let sock = dir.join("c.sock");
        let config = format!(
            "version = 2\nroot = \"{r}\"\nstate = \"{s}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{k}\"\n[ttrpc]\n  address = \"{k}.ttrpc\"\n",
            r = dir.join("root").display(),
            s = dir.join("state").display(),
            k = sock.display()
        );
        fs::write(dir.join("config.toml"), config).expect("write containerd config");
        let mut c = Containerd {
            child: None,
            sock,
            dir: dir.to_path_buf(),
            path_first: path_first.map(Path::to_path_buf),
        };
        c.launch();
        c
    }

    /// Start the daemon (again) and wait until it answers.
    pub fn launch(&mut self) {
        let (out, err) = log_to(&self.log_path());
        let mut cmd = Command::new(CONTAINERD);
        cmd.arg("--config").arg(self.dir.join("config.toml"));
        if let Some(first) = &self.path_first {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", first.display()));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start containerd");
        self.child = Some(child);
        let log = self.log_path();
        wait_up("containerd", Duration::from_secs(30), &log, || {
            succeeds_within(
                &mut self.ctr_cmd("default", &["version"]),
                Duration::from_secs(10),
            )
        });
    }

    /// Stop the daemon (its shims and tasks go on).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(10));
        }
    }

    /// `ctr --address SOCK --namespace NS args...`, not run yet.
    pub fn ctr_cmd(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new(CTR);
        c.arg("--address")
            .arg(&self.sock)
            .args(["--namespace", ns])
            .args(args);
        c
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop();
        umount_tree(&self.dir.join("root"));
    }
}
