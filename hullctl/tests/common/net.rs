//! A store for the network tests: busybox loaded as `bb:1`, networks made
//! through it on the tests' own bridges; on drop its containers, networks,
//! bridges and aardvark-dns server go (in that order).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use super::{two_layer_image, Ctl, Layout};

pub struct Net {
    pub ctl: Ctl,
    /// Bridge-name prefix of the test file (two letters).
    tag: &'static str,
    pub networks: Vec<String>,
    pub bridges: Vec<String>,
}

impl Net {
    pub fn new(test: &str, tag: &'static str) -> Net {
        let ctl = Ctl::new(test);
        let mut l = Layout::new();
        let d = two_layer_image(&mut l, serde_json::json!({"Cmd": ["sh"]}));
        l.tag(d, "bb:1");
        let t = ctl.dir.path().join("img.tar");
        l.tarball(&t);
        ctl.ok(&["load", "-i", t.to_str().unwrap()]);
        Net {
            ctl,
            tag,
            networks: Vec::new(),
            bridges: Vec::new(),
        }
    }

    /// `network create NAME --subnet SUBNET EXTRA...` on a bridge whose
    /// name is unique to this process and call; returns the bridge.
    pub fn network(&mut self, name: &str, subnet: &str, extra: &[&str]) -> String {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let br = format!("{}{}x{n}", self.tag, std::process::id() % 100000);
        let o = format!("bridge={br}");
        let mut a = vec!["network", "create", name, "--subnet", subnet, "-o", &o];
        a.extend(extra);
        self.ctl.ok(&a);
        self.networks.push(name.to_string());
        self.bridges.push(br.clone());
        br
    }

    /// `run -d --name NAME EXTRA... bb:1 sleep 1000`.
    pub fn run(&self, name: &str, extra: &[&str]) {
        let mut a = vec!["run", "-d", "--name", name];
        a.extend(extra);
        a.extend(["bb:1", "sleep", "1000"]);
        self.ctl.ok(&a);
    }

    /// The IPv4 address of container `c`'s eth0.
    pub fn ip_of(&self, c: &str) -> String {
        let out = self
            .ctl
            .ok(&["exec", c, "ip", "-4", "-o", "addr", "show", "eth0"]);
        out.split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    }

    pub fn id_of(&self, c: &str) -> String {
        let v: Value = serde_json::from_str(&self.ctl.ok(&["inspect", c])).unwrap();
        v[0]["Id"].as_str().unwrap().to_string()
    }

    pub fn dns_dir(&self) -> PathBuf {
        self.ctl.root().join("networks/aardvark")
    }

    /// The aardvark-dns config of `network` (empty: none).
    pub fn dns_config(&self, network: &str) -> String {
        std::fs::read_to_string(self.dns_dir().join(network)).unwrap_or_default()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Ok(o) = self.ctl.cmd(&["ps", "-a", "-q"]).output() {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.ctl.cmd(&["rm", "-f", id]).output();
            }
        }
        for n in &self.networks {
            let _ = self.ctl.cmd(&["network", "rm", n]).output();
        }
        for b in &self.bridges {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", b])
                .output();
        }
        if let Some(pid) = aardvark_pid(&self.dns_dir()) {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
    }
}

/// The aardvark-dns serving `dir`, if it runs.
pub fn aardvark_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("aardvark.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let want = dir.to_str()?.as_bytes();
    cmd.split(|b| *b == 0).any(|a| a == want).then_some(pid)
}
