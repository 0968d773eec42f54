//! hullctl networking and the host's own firewall: alongside a private
//! dockerd with its iptables rules (FORWARD policy DROP, DOCKER-USER,
//! br_netfilter), and in a network namespace of the test's own where the
//! whole nftables ruleset is visible (nothing left behind, not even an
//! empty table). Traffic stays on this machine: the tests' bridges, a
//! namespace standing for another host, loopback.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::docker::*;
use common::net::*;
use common::*;

const BR_NF: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";
const BR_NF6: &str = "/proc/sys/net/bridge/bridge-nf-call-ip6tables";

fn sh(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).output().unwrap()
}

fn sh_ok(cmd: &str, args: &[&str]) -> String {
    let o = sh(cmd, args);
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn iptables_s() -> String {
    String::from_utf8_lossy(&sh("iptables", &["-w", "-S"]).stdout).to_string()
}

fn ip6tables_s() -> String {
    String::from_utf8_lossy(&sh("ip6tables", &["-w", "-S"]).stdout).to_string()
}

fn ipv6_enabled() -> bool {
    fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6").is_ok_and(|s| s.trim() == "0")
}

/// The br_netfilter switches the test turns on, put back on drop (the
/// FORWARD policies dockerd turns to DROP are put back by `Dockerd`;
/// docker's own empty chains stay as docker leaves them, and with the
/// policy back they pass everything).
struct BrNetfilter([(&'static str, Option<String>); 2]);

impl BrNetfilter {
    fn save() -> BrNetfilter {
        BrNetfilter([BR_NF, BR_NF6].map(|p| (p, fs::read_to_string(p).ok())))
    }
}

impl Drop for BrNetfilter {
    fn drop(&mut self) {
        for (path, v) in &self.0 {
            if let Some(v) = v {
                let _ = fs::write(path, v.trim());
            }
        }
    }
}

/// A network namespace standing for another host: a veth pair from the
/// host (`host_ip`) to it (`ns_ip`), both in a /30 of 10.233.250.0/24.
struct OtherHost {
    ns: String,
    host_if: String,
    host_ip: String,
    ns_ip: String,
}

impl OtherHost {
    fn new(n: u8) -> OtherHost {
        let id = std::process::id() % 100000;
        let ns = format!("hullt{id}o{n}");
        let host_if = format!("ho{id}x{n}");
        let base = (id % 60) as u8 * 4;
        let host_ip = format!("10.233.250.{}", base + 1);
        let ns_ip = format!("10.233.250.{}", base + 2);
        let _ = sh("ip", &["netns", "del", &ns]);
        let _ = sh("ip", &["link", "del", &host_if]);
        sh_ok("ip", &["netns", "add", &ns]);
        let o = OtherHost {
            ns,
            host_if,
            host_ip,
            ns_ip,
        };
        sh_ok(
            "ip",
            &[
                "link", "add", &o.host_if, "type", "veth", "peer", "name", "eth0", "netns", &o.ns,
            ],
        );
        sh_ok(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/30", o.host_ip),
                "dev",
                &o.host_if,
            ],
        );
        sh_ok("ip", &["link", "set", &o.host_if, "up"]);
        o.exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", o.ns_ip),
            "dev",
            "eth0",
        ]);
        o.exec_ok(&["ip", "link", "set", "eth0", "up"]);
        o.exec_ok(&["ip", "link", "set", "lo", "up"]);
        o.exec_ok(&["ip", "route", "add", "default", "via", &o.host_ip]);
        o
    }
    fn exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["netns", "exec", &self.ns];
        a.extend(args);
        sh("ip", &a)
    }
    fn exec_ok(&self, args: &[&str]) -> String {
        let o = self.exec(args);
        assert!(
            o.status.success(),
            "in {}: {args:?}: {}",
            self.ns,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }
}

impl Drop for OtherHost {
    fn drop(&mut self) {
        let _ = sh("ip", &["link", "del", &self.host_if]);
        let _ = sh("ip", &["netns", "del", &self.ns]);
    }
}

/// GET with busybox wget, run as `prefix... wget` (e.g. in a netns),
/// retried while the server starts.
fn http_get(prefix: &[&str], url: &str) -> String {
    for _ in 0..50 {
        // (busybox 1.35's wget -T crashes: timeout instead)
        let mut a: Vec<&str> = prefix.to_vec();
        a.extend(["timeout", "5", BUSYBOX, "wget", "-q", "-O-", url]);
        let r = sh(a[0], &a[1..]);
        if r.status.success() {
            return String::from_utf8_lossy(&r.stdout).to_string();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{prefix:?} {url}: no answer");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn works_alongside_dockers_iptables_rules_and_leaves_none_in_its_chains() {
    if skip() {
        return;
    }
    for tool in [DOCKERD, DOCKER] {
        if !Path::new(tool).exists() {
            eprintln!("SKIP: {tool} missing (apt install docker.io)");
            return;
        }
    }
    let _br_nf = BrNetfilter::save();
    let dd = Dockerd::start_with_iptables();
    // docker's rules are in force: FORWARD drops by policy, bridged
    // traffic goes through it; with --ip6tables, for IPv6 too (docker
    // 20.10 makes no DOCKER-USER there: hullctl's accepts go in FORWARD).
    // docker sets the IPv4 DROP policy only when it turns ip_forward on
    // itself, as at boot on a docker host; here forwarding may be on
    // already (other tests, tools), so the test sets what such a host
    // has, for IPv6 as well. (`Dockerd` puts ACCEPT back when it stops.)
    for tool in ["iptables", "ip6tables"] {
        sh_ok(tool, &["-w", "-P", "FORWARD", "DROP"]);
    }
    let rules = iptables_s();
    assert!(rules.contains("-P FORWARD DROP"), "{rules}");
    assert!(rules.contains("-N DOCKER-USER"), "{rules}");
    let rules6 = ip6tables_s();
    assert!(rules6.contains("-P FORWARD DROP"), "{rules6}");
    let chain6 = if rules6.contains("-N DOCKER-USER") {
        "DOCKER-USER"
    } else {
        "FORWARD"
    };
    for br_nf in [BR_NF, BR_NF6] {
        if Path::new(br_nf).exists() {
            fs::write(br_nf, "1").unwrap();
        }
    }

    let subnet = "10.233.251.0/24".to_string();
    let mut s = Net::new("net-docker", "hd");
    let bridge = s.network("net", &subnet, &[]);
    let v6 = ipv6_enabled();
    if !v6 {
        eprintln!(
            "SKIP the IPv6 part: IPv6 is disabled on this host (net.ipv6.conf.all.disable_ipv6)"
        );
    }
    let bridge6 = v6.then(|| {
        s.network(
            "net6",
            "10.233.252.0/24",
            &["--ipv6", "--subnet", "fd00:233:252::/64"],
        )
    });
    let ctl = &s.ctl;
    let gw = subnet.replace(".0/24", ".1");
    let other = OtherHost::new(0);
    for c in ["da", "db"] {
        ctl.ok(&[
            "run",
            "-d",
            "--name",
            c,
            "--network",
            "net",
            "bb:1",
            "sleep",
            "1000",
        ]);
    }
    let port = free_port();
    ctl.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "net",
        "-p",
        &format!("{port}:80"),
        "bb:1",
        "sh",
        "-c",
        "mkdir /www && echo hull-web > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    // hullctl's accepts are in DOCKER-USER (above docker's RETURN).
    let user = sh_ok("iptables", &["-w", "-S", "DOCKER-USER"]);
    let tag = format!("hullctl:{bridge}");
    assert_eq!(user.matches(&tag).count(), 2, "{user}");

    // Two containers on one bridge (bridged: br_netfilter, FORWARD).
    let b = s.ip_of("db");
    ctl.ok(&["exec", "da", "ping", "-c1", "-W2", &b]);
    ctl.ok(&["exec", "db", "ping", "-c1", "-W2", "da"]);
    // A server the test runs on the gateway address.
    let l = std::net::TcpListener::bind((gw.as_str(), 0)).unwrap();
    let gport = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let (mut c, _) = l.accept().unwrap();
        c.write_all(b"from-the-gateway\n").unwrap();
    });
    let got = ctl.ok(&["exec", "da", "nc", &gw, &gport.to_string()]);
    assert_eq!(got.trim(), "from-the-gateway");
    server.join().unwrap();
    // Outbound: routed through FORWARD (and masqueraded) to another
    // "host", the replies back.
    ctl.ok(&["exec", "da", "ping", "-c1", "-W2", &other.ns_ip]);
    // The published port: from the host's 127.0.0.1 and from the other
    // "host" through the host's address facing it.
    let page = http_get(&[], &format!("http://127.0.0.1:{port}/"));
    assert_eq!(page.trim(), "hull-web");
    let page = http_get(
        &["ip", "netns", "exec", &other.ns],
        &format!("http://{}:{port}/", other.host_ip),
    );
    assert_eq!(page.trim(), "hull-web");

    // Two containers of a dual-stack network over IPv6 (bridged:
    // br_netfilter hands it to ip6tables' FORWARD): hullctl's accepts are
    // in ip6tables too; they go with the network.
    if let Some(bridge6) = &bridge6 {
        for c in ["e1", "e2"] {
            ctl.ok(&[
                "run",
                "-d",
                "--name",
                c,
                "--network",
                "net6",
                "bb:1",
                "sleep",
                "1000",
            ]);
        }
        let out = ctl.ok(&[
            "exec", "e2", "ip", "-6", "-o", "addr", "show", "eth0", "scope", "global",
        ]);
        let e2 = out
            .split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .unwrap_or_else(|| panic!("no IPv6 address: {out}"))
            .to_string();
        ctl.ok(&["exec", "e1", "ping", "-6", "-c1", "-W2", &e2]);
        let tag6 = format!("hullctl:{bridge6}");
        let user6 = sh_ok("ip6tables", &["-w", "-S", chain6]);
        assert_eq!(user6.matches(&tag6).count(), 2, "{user6}");
        ctl.ok(&["rm", "-f", "e1", "e2"]);
        ctl.ok(&["network", "rm", "net6"]);
        let rules6 = ip6tables_s();
        assert!(!rules6.contains(&tag6), "{rules6}");
        assert!(
            !iptables_s().contains(&tag6),
            "net6's IPv4 accepts went too"
        );
    }

    // Everything removed: no hullctl rule in docker's chains.
    // (The accepts live as long as the bridge.)
    ctl.ok(&["rm", "-f", "da", "db", "web"]);
    let rules = iptables_s();
    assert_eq!(rules.matches(&tag).count(), 2, "{rules}");
    ctl.ok(&["network", "rm", "net"]);
    let rules = iptables_s();
    assert!(!rules.contains("hullctl:"), "{rules}");
    let rules6 = ip6tables_s();
    assert!(!rules6.contains("hullctl:"), "{rules6}");
    drop(dd);
}

/// A store whose hullctl runs in a network namespace of the test's own:
/// there the nftables ruleset and the links are only what hullctl made.
struct InNetns {
    ctl: Ctl,
    ns: String,
}

impl InNetns {
    fn new(test: &str) -> InNetns {
        let ns = format!("hullt{}{test}", std::process::id() % 100000);
        let _ = sh("ip", &["netns", "del", &ns]);
        sh_ok("ip", &["netns", "add", &ns]);
        let me = InNetns {
            ctl: Ctl::new(test),
            ns,
        };
        me.exec_ok(&["ip", "link", "set", "lo", "up"]);
        let mut l = Layout::new();
        let d = two_layer_image(&mut l, serde_json::json!({"Cmd": ["sh"]}));
        l.tag(d, "bb:1");
        let t = me.ctl.dir.path().join("img.tar");
        l.tarball(&t);
        me.ctl.ok(&["load", "-i", t.to_str().unwrap()]);
        me
    }
    fn exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["netns", "exec", &self.ns];
        a.extend(args);
        sh("ip", &a)
    }
    fn exec_ok(&self, args: &[&str]) -> String {
        let o = self.exec(args);
        assert!(
            o.status.success(),
            "in {}: {args:?}: {}",
            self.ns,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }
    fn hullctl(&self, args: &[&str]) -> String {
        let root = self.ctl.root().display().to_string();
        let mut a = vec![env!("CARGO_BIN_EXE_hullctl"), "--root", &root];
        a.extend(args);
        self.exec_ok(&a)
    }
    fn ruleset(&self) -> String {
        self.exec_ok(&["nft", "list", "ruleset"])
    }
}

impl Drop for InNetns {
    fn drop(&mut self) {
        let root = self.ctl.root().display().to_string();
        let h = env!("CARGO_BIN_EXE_hullctl");
        if let Ok(o) = self.ctl.cmd(&["ps", "-a", "-q"]).output() {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.exec(&[h, "--root", &root, "rm", "-f", id]);
            }
        }
        let _ = sh("ip", &["netns", "del", &self.ns]);
    }
}

/// Regression: the last container's removal left an empty `table ip
/// hullctl` (its chains) behind for good. Now a container's rules go with
/// it, the network's with the network, and the table with its last rule;
/// for a dual-stack network, the `ip6 hullctl` table as well.
#[test]
fn nothing_is_left_in_the_ruleset_not_even_an_empty_table() {
    if skip() {
        return;
    }
    let n = InNetns::new("tbl");
    n.hullctl(&[
        "network",
        "create",
        "n",
        "--subnet",
        "10.233.249.0/24",
        "--ipv6",
        "--subnet",
        "fd00:233:249::/64",
        "-o",
        "bridge=hn0",
    ]);
    assert_eq!(n.ruleset().trim(), "", "nothing before the first container");
    for (c, p) in [("a", "8080:80"), ("b", "8081:80")] {
        n.hullctl(&[
            "run",
            "-d",
            "--name",
            c,
            "--network",
            "n",
            "-p",
            p,
            "bb:1",
            "sleep",
            "1000",
        ]);
    }
    let r = n.ruleset();
    assert!(
        r.contains("table ip hullctl") && r.contains("dnat to"),
        "{r}"
    );
    // Dual stack: the ip6 table too (forward rules, a masquerade each).
    assert!(r.contains("table ip6 hullctl"), "{r}");
    n.hullctl(&["rm", "-f", "a"]);
    let r = n.ruleset();
    assert!(r.contains("net:hn0") && r.contains("8081"), "{r}");
    assert!(!r.contains("8080"), "a's rules went with a: {r}");
    n.hullctl(&["rm", "-f", "b"]);
    n.hullctl(&[
        "run",
        "--rm",
        "--network",
        "n",
        "-p",
        "8082:80",
        "bb:1",
        "true",
    ]);
    let r = n.ruleset();
    assert!(
        !r.contains("dnat to") && !r.contains("containers/"),
        "only the network's rules: {r}"
    );
    // The bridge and its rules stay with the network, and go with it,
    // the table with them.
    let links = n.exec_ok(&["ls", "/sys/class/net"]);
    assert!(links.contains("hn0"), "{links}");
    n.hullctl(&["network", "rm", "n"]);
    let links = n.exec_ok(&["ls", "/sys/class/net"]);
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    assert_eq!(n.ruleset().trim(), "", "no table left");
}
