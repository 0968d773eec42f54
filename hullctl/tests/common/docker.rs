//! A private dockerd per test: data-root, exec-root and socket under a
//! temp dir, no docker0 (`--bridge none`); containers removed and the
//! daemon stopped on drop (the shared `tests/common/daemons.rs`).

use std::process::{Command, Output};

use super::daemons;
use super::TempDir;

pub const DOCKERD: &str = daemons::DOCKERD;
pub const DOCKER: &str = daemons::DOCKER;

pub struct Dockerd {
    d: daemons::Dockerd,
    _dir: TempDir,
}

impl Dockerd {
    /// Without iptables rules: nothing of the host's firewall changes.
    pub fn start() -> Dockerd {
        Dockerd::start_with("dockerd", &["--iptables=false", "--ip-masq=false"])
    }

    /// With docker's own iptables rules (FORWARD policy DROP, DOCKER-USER,
    /// br_netfilter), as a host running docker has them; ip6tables' too
    /// (`--ip6tables`, experimental in 20.10).
    pub fn start_with_iptables() -> Dockerd {
        Dockerd::start_with("dockerd-net", &["--experimental", "--ip6tables"])
    }

    fn start_with(name: &str, extra: &[&str]) -> Dockerd {
        let dir = TempDir::new(name);
        let mut args = vec!["--bridge", "none"];
        args.extend_from_slice(extra);
        let d = daemons::Dockerd::start(dir.path(), &args);
        Dockerd { d, _dir: dir }
    }

    /// `docker -H SOCK args...`, not run yet.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.d.cmd(args)
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
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
