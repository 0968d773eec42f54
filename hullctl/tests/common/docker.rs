//! A private dockerd per test: data-root, exec-root and socket under a
//! temp dir, no docker0 (`--bridge none`); containers removed and the
//! daemon stopped on drop.

use std::fs;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

pub const DOCKERD: &str = "/usr/sbin/dockerd";
pub const DOCKER: &str = "/usr/bin/docker";

pub struct Dockerd {
    child: Child,
    pub sock: String,
    dir: TempDir,
}

impl Dockerd {
    /// Without iptables rules: nothing of the host's firewall changes.
    pub fn start() -> Dockerd {
        Dockerd::start_with("dockerd", &["--iptables=false", "--ip-masq=false"])
    }

    /// With docker's own iptables rules (FORWARD policy DROP, DOCKER-USER,
    /// br_netfilter), as a host running docker has them.
    pub fn start_with_iptables() -> Dockerd {
        Dockerd::start_with("dockerd-net", &[])
    }

    fn start_with(name: &str, extra: &[&str]) -> Dockerd {
        let dir = TempDir::new(name);
        let d = dir.path();
        let sock = format!("unix://{}", d.join("docker.sock").display());
        let log = fs::File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new(DOCKERD)
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .args(["-H", &sock, "--bridge", "none"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let dd = Dockerd { child, sock, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !dd.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up: {}",
                fs::read_to_string(dd.dir.path().join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        dd
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .args(["-H", &self.sock])
            .args(args)
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ps = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ps.stdout).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for sub in ["exec", "data"] {
            let _ = Command::new("umount")
                .arg("-R")
                .arg("-l")
                .arg(self.dir.path().join(sub))
                .stderr(Stdio::null())
                .status();
        }
    }
}
