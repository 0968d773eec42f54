//! hullctl networking, continued: container names over DNS (aardvark-dns),
//! the default network, IPv6 (dual stack), `network connect`/`disconnect`,
//! and the /etc files (--hostname, --add-host, --dns). Real containers
//! from busybox on the tests' own bridges; subnets in 10.235.0.0/16 and
//! fd00:235::/32, which nothing else on the test hosts uses.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::net::*;
use common::*;
use serde_json::Value;

fn slot() -> u32 {
    std::process::id() % 25
}

/// A subnet unique to this test process and call (n < 10: each test
/// its own, as they run in parallel).
fn subnet(n: u32) -> String {
    format!("10.235.{}.0/24", slot() * 10 + n)
}

fn gateway(n: u32) -> String {
    format!("10.235.{}.1", slot() * 10 + n)
}

fn subnet6(n: u32) -> String {
    format!("fd00:235:{:x}:{n}::/64", std::process::id() % 0xffff)
}

fn gateway6(n: u32) -> String {
    format!("fd00:235:{:x}:{n}::1", std::process::id() % 0xffff)
}

const AARDVARK: &str = "/usr/lib/podman/aardvark-dns";

/// Whether the host has aardvark-dns (Debian's package); if not, the
/// names tests say so and check the /etc/hosts fallback only.
fn have_aardvark() -> bool {
    let ok = Path::new(AARDVARK).exists();
    if !ok {
        eprintln!("SKIP DNS: {AARDVARK} missing (apt-get install aardvark-dns)");
    }
    ok
}

/// `nslookup NAME` inside `c` (the server from its resolv.conf), retried
/// for a while (the server reloads on each change): the addresses, or
/// None when the name does not resolve.
fn lookup(ctl: &Ctl, c: &str, name: &str) -> Option<Vec<String>> {
    let start = Instant::now();
    loop {
        let o = ctl.run(&["exec", c, "nslookup", name]);
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        if o.status.success() {
            // busybox: "Name: x" then "Address: ip" lines after the server's.
            let addrs: Vec<String> = out
                .split("Name:")
                .skip(1)
                .flat_map(|b| {
                    b.lines()
                        .filter_map(|l| l.trim().strip_prefix("Address:"))
                        .map(|a| a.split_whitespace().next().unwrap_or("").to_string())
                        .collect::<Vec<_>>()
                })
                .collect();
            return Some(addrs);
        }
        if out.contains("NXDOMAIN") {
            return None;
        }
        // No answer at all is a failure, never "the name is gone".
        if start.elapsed() > Duration::from_secs(10) {
            let state = ctl.run(&["inspect", c]);
            panic!(
                "{c}: nslookup {name}: no answer: {out}{}\n{}",
                String::from_utf8_lossy(&o.stderr),
                String::from_utf8_lossy(&state.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ip_of(ctl: &Ctl, c: &str, dev: &str, fam: &str) -> String {
    let out = ctl.ok(&[
        "exec", c, "ip", fam, "-o", "addr", "show", dev, "scope", "global",
    ]);
    let kw = if fam == "-6" { "inet6" } else { "inet" };
    out.split_whitespace()
        .skip_while(|w| *w != kw)
        .nth(1)
        .unwrap_or_else(|| panic!("{c} {dev}: no address in {out}"))
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn names_resolve_over_dns_including_later_containers_and_go_with_them() {
    if skip() {
        return;
    }
    let mut n = Net::new("dns-names", "hx");
    n.network("front", &subnet(0), &[]);
    let ctl = &n.ctl;
    n.run("a", &["--network", "front", "--network-alias", "alpha"]);
    let resolv = ctl.ok(&["exec", "a", "cat", "/etc/resolv.conf"]);
    if !have_aardvark() {
        assert!(!resolv.contains(&gateway(0)), "{resolv}");
        return;
    }
    assert!(
        resolv.starts_with(&format!("nameserver {}\n", gateway(0))),
        "resolv.conf points at the gateway: {resolv}"
    );
    let server = aardvark_pid(&n.dns_dir()).expect("aardvark-dns runs");
    // B starts after A: A resolves it by name, alias and short id.
    n.run("b", &["--network", "front", "--network-alias", "bravo"]);
    let ip_b = ip_of(ctl, "b", "eth0", "-4");
    assert_eq!(lookup(ctl, "a", "b"), Some(vec![ip_b.clone()]));
    assert_eq!(lookup(ctl, "a", "bravo"), Some(vec![ip_b.clone()]));
    let id_b = n.id_of("b");
    assert_eq!(lookup(ctl, "a", &id_b[..12]), Some(vec![ip_b.clone()]));
    assert_eq!(
        lookup(ctl, "b", "alpha"),
        Some(vec![ip_of(ctl, "a", "eth0", "-4")])
    );
    // Names come from DNS: A's /etc/hosts knows only A.
    let hosts = ctl.ok(&["exec", "a", "cat", "/etc/hosts"]);
    assert!(
        !hosts.contains("bravo") && hosts.contains("alpha"),
        "{hosts}"
    );
    ctl.ok(&["exec", "a", "ping", "-c1", "-W2", "bravo"]);
    assert!(n.dns_config("front").contains(&id_b));
    // B stopped: its name is gone; started again: back.
    ctl.ok(&["stop", "-t", "1", "b"]);
    assert!(
        !n.dns_config("front").contains(&id_b),
        "{}",
        n.dns_config("front")
    );
    assert_eq!(
        lookup(ctl, "a", "bravo"),
        None,
        "a stopped container's name"
    );
    ctl.ok(&["start", "b"]);
    assert_eq!(
        lookup(ctl, "a", "bravo"),
        Some(vec![ip_b.clone()]),
        "back on start"
    );
    // Removed: the name is gone and no entry is left.
    ctl.ok(&["rm", "-f", "b"]);
    assert_eq!(lookup(ctl, "a", "b"), None);
    assert_eq!(lookup(ctl, "a", "bravo"), None);
    assert!(!n.dns_config("front").contains(&id_b));
    assert_eq!(
        aardvark_pid(&n.dns_dir()),
        Some(server),
        "one server all along"
    );
    // A foreground `run --rm` resolves too, and leaves no entry; a
    // foreground run kept after exit neither.
    let out = ctl.ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "bb:1",
        "nslookup",
        "alpha",
    ]);
    assert!(out.contains(&ip_of(ctl, "a", "eth0", "-4")), "{out}");
    ctl.ok(&["run", "--name", "fg", "--network", "front", "bb:1", "true"]);
    assert_eq!(
        n.dns_config("front").lines().count(),
        2,
        "{}",
        n.dns_config("front")
    );
    ctl.ok(&["rm", "fg"]);
    // The last container gone: no config, no server.
    ctl.ok(&["rm", "-f", "a"]);
    assert_eq!(n.dns_config("front"), "");
    assert!(aardvark_pid(&n.dns_dir()).is_none(), "aardvark-dns stopped");
    assert!(exits(server), "aardvark-dns {server} still runs");
}

/// Whether process `pid` ends (or is a zombie) within 5 s.
fn exits(pid: u32) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(s) if s.rsplit(") ").next().is_some_and(|r| r.starts_with('Z')) => return true,
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}

#[test]
fn default_network_containers_reach_each_other_by_ip_and_name() {
    if skip() {
        return;
    }
    let mut n = Net::new("dns-default", "hx");
    // The store's default network, on a subnet and bridge of this test.
    n.network("hull0", &subnet(1), &[]);
    let ctl = &n.ctl;
    n.run("d1", &["--network", "bridge"]);
    n.run("d2", &["--network", "bridge"]);
    let (ip1, ip2) = (
        ip_of(ctl, "d1", "eth0", "-4"),
        ip_of(ctl, "d2", "eth0", "-4"),
    );
    assert!(ip1.starts_with(&subnet(1)[..subnet(1).len() - 4]), "{ip1}");
    if have_aardvark() {
        assert_eq!(lookup(ctl, "d1", "d2"), Some(vec![ip2.clone()]));
        assert_eq!(lookup(ctl, "d2", "d1"), Some(vec![ip1.clone()]));
    }
    ctl.ok(&["exec", "d1", "ping", "-c1", "-W2", &gateway(1)]);
    ctl.ok(&["exec", "d1", "ping", "-c1", "-W2", &ip2]);
    ctl.ok(&["exec", "d1", "ping", "-c1", "-W2", "d2"]);
    ctl.ok(&["exec", "d2", "ping", "-c1", "-W2", "d1"]);
}

/// Rules of hullctl's nftables table of `family` whose comment is `tag`.
fn nft_rules(family: &str, tag: &str) -> usize {
    let o = std::process::Command::new("nft")
        .args(["-j", "list", "table", family, "hullctl"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["rule"]["comment"] == tag)
        .count()
}

#[test]
fn dual_stack_containers_ping_each_other_over_ipv6() {
    if skip() {
        return;
    }
    if std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6")
        .map(|s| s.trim() != "0")
        .unwrap_or(true)
    {
        eprintln!("SKIP: IPv6 is disabled on this host (net.ipv6.conf.all.disable_ipv6)");
        return;
    }
    let mut n = Net::new("net-v6", "hx");
    let s6 = subnet6(2);
    n.network("dual", &subnet(2), &["--ipv6", "--subnet", &s6]);
    n.network("dual2", &subnet(8), &["--ipv6", "--subnet", &subnet6(8)]);
    n.network("v4only", &subnet(9), &[]);
    let ctl = &n.ctl;
    let v: Value = serde_json::from_str(&ctl.ok(&["network", "inspect", "dual"])).unwrap();
    assert_eq!(v[0]["EnableIPv6"], true);
    assert_eq!(v[0]["IPAM"]["Config"][1]["Subnet"], s6);
    assert_eq!(v[0]["IPAM"]["Config"][1]["Gateway"], gateway6(2));
    n.run("v1", &["--network", "dual"]);
    n.run("v2", &["--network", "dual"]);
    let (a, b) = (
        ip_of(ctl, "v1", "eth0", "-6"),
        ip_of(ctl, "v2", "eth0", "-6"),
    );
    assert_ne!(a, b);
    let prefix = s6.trim_end_matches("::/64");
    assert!(a.starts_with(prefix) && b.starts_with(prefix), "{a} {b}");
    // Usable at once (no duplicate address detection pending).
    let addr = ctl.ok(&["exec", "v1", "ip", "-6", "addr", "show", "dev", "eth0"]);
    assert!(!addr.contains("tentative"), "{addr}");
    let route = ctl.ok(&["exec", "v1", "ip", "-6", "route"]);
    assert!(
        route.contains(&format!("default via {}", gateway6(2))),
        "{route}"
    );
    ctl.ok(&["exec", "v1", "ping", "-6", "-c1", "-W2", &gateway6(2)]);
    ctl.ok(&["exec", "v1", "ping", "-6", "-c1", "-W2", &b]);
    ctl.ok(&["exec", "v2", "ping", "-6", "-c1", "-W2", &a]);
    if have_aardvark() {
        let got = lookup(ctl, "v1", "v2").unwrap_or_default();
        assert!(got.contains(&b), "AAAA of v2: {got:?}");
        let resolv = ctl.ok(&["exec", "v1", "cat", "/etc/resolv.conf"]);
        assert!(resolv.contains(&gateway6(2)), "{resolv}");
    }
    let v: Value = serde_json::from_str(&ctl.ok(&["network", "inspect", "dual"])).unwrap();
    assert_eq!(
        v[0]["Containers"]["v1"]["IPv6Address"],
        format!("{a}/64"),
        "{v}"
    );
    // Another dual-stack network cannot reach this one over IPv6 (the
    // host forwards IPv6 now; hullctl's ip6 forward rules isolate).
    n.run("w1", &["--network", "dual2"]);
    ctl.ok(&["exec", "w1", "ping", "-6", "-c1", "-W2", &gateway6(8)]);
    let o = ctl.run(&["exec", "w1", "ping", "-6", "-c1", "-W1", &a]);
    assert!(!o.status.success(), "dual2 reached dual over IPv6");
    ctl.ok(&["rm", "-f", "w1"]);
    // IPv6 NAT: a masquerade rule per container, gone with it.
    let tag = |c: &str| format!("{}/containers/{c}", ctl.root().display());
    assert_eq!(nft_rules("ip6", &tag("v1")), 1);
    ctl.ok(&["rm", "-f", "v1"]);
    assert_eq!(nft_rules("ip6", &tag("v1")), 0, "v1's ip6 rules went");
    assert_eq!(nft_rules("ip6", &tag("v2")), 1, "v2's stay");
    // v1's address is free again and the next container may get it.
    let v: Value = serde_json::from_str(&ctl.ok(&["network", "inspect", "dual"])).unwrap();
    assert!(v[0]["Containers"]["v1"].is_null());
    ctl.ok(&["rm", "-f", "v2"]);
    assert_eq!(nft_rules("ip6", &tag("v2")), 0);
    // --ip6: the address asked for, on run and on network connect.
    let want = format!("{prefix}::42");
    n.run("v3", &["--network", "dual", "--ip6", &want]);
    assert_eq!(ip_of(ctl, "v3", "eth0", "-6"), want);
    let want8 = subnet6(8).replace("::/64", "::7");
    ctl.ok(&["network", "connect", "--ip6", &want8, "dual2", "v3"]);
    assert_eq!(ip_of(ctl, "v3", "eth1", "-6"), want8);
    // Taken, outside the subnet, the gateway, malformed, or on a network
    // without IPv6: refused naming why, and nothing made.
    let leases6 = ctl.root().join("networks/dual.leases6");
    let before = std::fs::read(&leases6).unwrap();
    let gw6 = gateway6(2);
    for (net, ip, why) in [
        ("dual", want.as_str(), "is already leased to container v3"),
        (
            "dual",
            "fd00:1::5",
            "is not a free host address of network dual",
        ),
        (
            "dual",
            gw6.as_str(),
            "is not a free host address of network dual",
        ),
        ("dual", "fd00::zz", "--ip6 \"fd00::zz\""),
        ("v4only", want.as_str(), "network v4only has no IPv6 subnet"),
    ] {
        let a = [
            "run",
            "-d",
            "--name",
            "v4",
            "--network",
            net,
            "--ip6",
            ip,
            "bb:1",
            "sleep",
            "1000",
        ];
        let err = ctl.fails(&a);
        assert!(err.contains(why), "{a:?}: {err}");
        ctl.fails(&["inspect", "v4"]);
        assert_eq!(std::fs::read(&leases6).unwrap(), before, "{a:?}: no lease");
    }
    let err = ctl.fails(&["network", "connect", "--ip6", &want, "v4only", "v3"]);
    assert!(err.contains("network v4only has no IPv6 subnet"), "{err}");
    ctl.ok(&["rm", "-f", "v3"]);
    // Bad IPv6 input: a clear error, nothing made.
    for (args, why) in [
        (vec!["--subnet", "fd00:235::/64"], "add --ipv6"),
        (
            vec!["--ipv6", "--subnet", "fd00:zz::/64"],
            "invalid IPv6 subnet",
        ),
        (vec!["--ipv6", "--subnet", &s6], "overlaps network dual"),
    ] {
        let mut a = vec!["network", "create", "bad6"];
        a.extend(args.iter().copied());
        let err = ctl.fails(&a);
        assert!(err.contains(why), "{a:?}: {err}");
    }
    ctl.fails(&["network", "inspect", "bad6"]);
    // The network's ip6 forward rules live as long as its bridge: they
    // stay with no container and go with `network rm` (with the dns
    // config and the leases).
    let net_tag = format!("net:{}", n.bridges[0]);
    assert!(nft_rules("ip6", &net_tag) >= 2, "dual's ip6 forward rules");
    ctl.ok(&["network", "rm", "dual"]);
    assert_eq!(nft_rules("ip6", &net_tag), 0, "dual's ip6 rules went");
    assert_eq!(nft_rules("ip", &net_tag), 0, "dual's ip rules went");
    for f in ["dual.leases", "dual.leases6", "aardvark/dual"] {
        assert!(!ctl.root().join("networks").join(f).exists(), "{f}");
    }
}

/// The host end of a container's interface exists.
fn host_veths_of(id: &str) -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(&format!("vh{}", &id[..8])))
        .collect()
}

fn links(ctl: &Ctl, c: &str) -> Vec<String> {
    let mut l: Vec<String> = ctl
        .ok(&["exec", c, "ls", "/sys/class/net"])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    l.sort();
    l
}

#[test]
fn connect_and_disconnect_a_running_container() {
    if skip() {
        return;
    }
    let mut n = Net::new("net-connect", "hx");
    n.network("n1", &subnet(3), &[]);
    n.network("n2", &subnet(4), &[]);
    let ctl = &n.ctl;
    n.run("c1", &["--network", "n1"]);
    n.run("c2", &["--network", "n2", "--network-alias", "two"]);
    let id1 = n.id_of("c1");
    ctl.ok(&["network", "connect", "n2", "c1", "--alias", "one-on-two"]);
    assert_eq!(links(ctl, "c1"), ["eth0", "eth1", "lo"]);
    let ip1 = ip_of(ctl, "c1", "eth1", "-4");
    assert!(
        ip1.starts_with(&gateway(4)[..gateway(4).len() - 1]),
        "{ip1}"
    );
    assert_eq!(host_veths_of(&id1).len(), 2);
    // The default route stays on the first network; n2 is reached on eth1.
    let route = ctl.ok(&["exec", "c1", "ip", "route"]);
    assert!(
        route.contains(&format!("default via {}", gateway(3))),
        "{route}"
    );
    ctl.ok(&["exec", "c1", "ping", "-c1", "-W2", &gateway(4)]);
    let v: Value = serde_json::from_str(&ctl.ok(&["network", "inspect", "n2"])).unwrap();
    assert_eq!(v[0]["Containers"]["c1"]["IPv4Address"], format!("{ip1}/24"));
    if have_aardvark() {
        // c2 finds c1 by name and alias at c1's n2 address; c1 finds c2.
        assert_eq!(lookup(ctl, "c2", "one-on-two"), Some(vec![ip1.clone()]));
        assert_eq!(lookup(ctl, "c2", "c1"), Some(vec![ip1.clone()]));
        let ip2 = ip_of(ctl, "c2", "eth0", "-4");
        assert_eq!(lookup(ctl, "c1", "two"), Some(vec![ip2.clone()]));
        ctl.ok(&["exec", "c1", "ping", "-c1", "-W2", "two"]);
    }
    // Refused, nothing changed: twice, a taken --ip, a stopped container,
    // the first network.
    let err = ctl.fails(&["network", "connect", "n2", "c1"]);
    assert!(err.contains("already connected"), "{err}");
    n.run("c3", &["--network", "n1"]);
    let err = ctl.fails(&["network", "connect", "--ip", &ip1, "n2", "c3"]);
    assert!(err.contains("already leased"), "{err}");
    assert_eq!(links(ctl, "c3"), ["eth0", "lo"]);
    let v: Value = serde_json::from_str(&ctl.ok(&["network", "inspect", "n2"])).unwrap();
    assert!(v[0]["Containers"]["c3"].is_null(), "no lease left: {v}");
    ctl.ok(&["stop", "-t", "1", "c3"]);
    let err = ctl.fails(&["network", "connect", "n2", "c3"]);
    assert!(err.contains("not running"), "{err}");
    let err = ctl.fails(&["network", "disconnect", "n1", "c1"]);
    assert!(err.contains("started on"), "{err}");
    // Disconnect: interface, lease, DNS name and host veth go.
    ctl.ok(&["network", "disconnect", "n2", "c1"]);
    assert_eq!(links(ctl, "c1"), ["eth0", "lo"]);
    assert_eq!(host_veths_of(&id1).len(), 1);
    let v: Value = serde_json::from_str(&ctl.ok(&["network", "inspect", "n2"])).unwrap();
    assert!(v[0]["Containers"]["c1"].is_null(), "{v}");
    assert!(!n.dns_config("n2").contains(&id1));
    if have_aardvark() {
        assert_eq!(lookup(ctl, "c2", "one-on-two"), None);
    }
    let err = ctl.fails(&["network", "disconnect", "n2", "c1"]);
    assert!(err.contains("not connected"), "{err}");
    // Connected again, then removed: both leases and veths go.
    ctl.ok(&["network", "connect", "n2", "c1"]);
    ctl.ok(&["rm", "-f", "c1"]);
    assert!(host_veths_of(&id1).is_empty());
    for net in ["n1", "n2"] {
        let v: Value = serde_json::from_str(&ctl.ok(&["network", "inspect", net])).unwrap();
        assert!(v[0]["Containers"]["c1"].is_null(), "{net}: {v}");
        assert!(!n.dns_config(net).contains(&id1), "{net}");
    }
}

#[test]
fn hostname_add_host_and_dns_are_written_into_the_container() {
    if skip() {
        return;
    }
    let mut n = Net::new("net-etc", "hx");
    n.network("etc", &subnet(5), &[]);
    let ctl = &n.ctl;
    n.run(
        "e1",
        &[
            "--network",
            "etc",
            "--hostname",
            "web-1",
            "--add-host",
            "db:10.1.2.3",
            "--add-host",
            "v6db:fd00::5",
            "--dns",
            "10.9.9.9",
            "--dns",
            "10.9.9.8",
        ],
    );
    assert_eq!(ctl.ok(&["exec", "e1", "cat", "/etc/hostname"]), "web-1\n");
    assert_eq!(ctl.ok(&["exec", "e1", "hostname"]).trim(), "web-1");
    let hosts = ctl.ok(&["exec", "e1", "cat", "/etc/hosts"]);
    let ip = ip_of(ctl, "e1", "eth0", "-4");
    for want in [
        "127.0.0.1\tlocalhost".to_string(),
        "10.1.2.3\tdb\n".to_string(),
        "fd00::5\tv6db\n".to_string(),
        format!("{ip}\te1 web-1"),
    ] {
        assert!(hosts.contains(&want), "{want:?} in {hosts}");
    }
    // getaddrinfo in the container reads them.
    let o = ctl.ok(&["exec", "e1", "ping", "-c1", "-W1", "web-1"]);
    assert!(o.contains(&ip), "{o}");
    // --dns replaces the nameservers (the network's resolver is not used).
    assert_eq!(
        ctl.ok(&["exec", "e1", "cat", "/etc/resolv.conf"]),
        "nameserver 10.9.9.9\nnameserver 10.9.9.8\n"
    );
    // Without --dns: the gateway when aardvark-dns serves names, and the
    // host's search/options lines.
    n.run("e2", &["--network", "etc"]);
    let resolv = ctl.ok(&["exec", "e2", "cat", "/etc/resolv.conf"]);
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for l in host
        .lines()
        .filter(|l| l.starts_with("search") || l.starts_with("options"))
    {
        assert!(resolv.contains(l), "{l} in {resolv}");
    }
    if have_aardvark() {
        assert!(
            resolv.starts_with(&format!("nameserver {}\n", gateway(5))),
            "{resolv}"
        );
        // e1's names are served with its --dns as its upstream.
        let id = n.id_of("e1");
        let cfg = n.dns_config("etc");
        let line = cfg.lines().find(|l| l.starts_with(&id)).unwrap_or_default();
        assert!(line.ends_with(" 10.9.9.9,10.9.9.8"), "{cfg}");
    }
    // Bad values: clear errors, no container.
    for (flag, v, why) in [
        ("--add-host", "nohost", "HOST:IP"),
        ("--add-host", "x:999.1.1.1", "HOST:IP"),
        ("--dns", "nope", "--dns"),
        ("--network-alias", "a,b", "--network-alias"),
        ("--hostname", "a b", "hostname"),
    ] {
        let err = ctl.fails(&[
            "run",
            "-d",
            "--name",
            "bad",
            "--network",
            "etc",
            flag,
            v,
            "bb:1",
            "true",
        ]);
        assert!(err.contains(why), "{flag} {v}: {err}");
        ctl.fails(&["inspect", "bad"]);
    }
}

#[test]
fn dns_entries_of_crashed_containers_go_with_the_next_change() {
    if skip() || !have_aardvark() {
        return;
    }
    let mut n = Net::new("dns-crash", "hx");
    n.network("crash", &subnet(6), &[]);
    let ctl = &n.ctl;
    n.run("k1", &["--network", "crash"]);
    n.run("k2", &["--network", "crash"]);
    let id2 = n.id_of("k2");
    assert!(n.dns_config("crash").contains(&id2));
    // k2 and its monitor die at once (SIGKILL): nobody tells DNS.
    let v: Value = serde_json::from_str(&ctl.ok(&["inspect", "k2"])).unwrap();
    let pid = v[0]["State"]["Pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i64 = stat
        .rsplit(") ")
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    for p in [ppid, pid] {
        std::process::Command::new("kill")
            .args(["-9", &p.to_string()])
            .status()
            .unwrap();
    }
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The next container's start rebuilds the config without k2.
    n.run("k3", &["--network", "crash"]);
    let cfg = n.dns_config("crash");
    assert!(!cfg.contains(&id2), "{cfg}");
    assert!(cfg.contains(&n.id_of("k3")), "{cfg}");
    assert_eq!(lookup(ctl, "k1", "k2"), None);
}

#[test]
fn concurrent_starts_all_get_dns_entries_and_leave_none() {
    if skip() || !have_aardvark() {
        return;
    }
    let mut n = Net::new("dns-conc", "hx");
    n.network("many", &subnet(7), &[]);
    let names: Vec<String> = (0..8).map(|i| format!("q{i}")).collect();
    std::thread::scope(|s| {
        for c in &names {
            let n = &n;
            s.spawn(move || n.run(c, &["--network", "many"]));
        }
    });
    let cfg = n.dns_config("many");
    let server = aardvark_pid(&n.dns_dir()).expect("aardvark-dns runs");
    for c in &names {
        assert!(cfg.contains(&n.id_of(c)), "{c} in {cfg}");
    }
    assert_eq!(
        lookup(&n.ctl, "q0", "q7"),
        Some(vec![ip_of(&n.ctl, "q7", "eth0", "-4")])
    );
    std::thread::scope(|s| {
        for c in &names {
            let ctl = &n.ctl;
            s.spawn(move || ctl.ok(&["rm", "-f", c]));
        }
    });
    assert_eq!(n.dns_config("many"), "");
    assert!(aardvark_pid(&n.dns_dir()).is_none());
    assert!(exits(server), "aardvark-dns {server} still runs");
}
