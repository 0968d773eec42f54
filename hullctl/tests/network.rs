//! hullctl networking: network records and IPAM (create/ls/inspect/rm/prune,
//! bad input changes nothing, leases never handed out twice). Real
//! commands, a private store per test; networks here get subnets in
//! 10.233.0.0/16, which nothing else on the test hosts uses.

mod common;

use common::net::*;
use common::*;
use serde_json::Value;

fn inspect(ctl: &Ctl, name: &str) -> Value {
    let v: Value = serde_json::from_str(&ctl.ok(&["network", "inspect", name])).unwrap();
    v[0].clone()
}

/// A subnet unique to this test process and call.
fn subnet(n: u8) -> String {
    format!("10.233.{}.0/24", (std::process::id() % 50) as u8 * 5 + n)
}

#[test]
fn create_ls_inspect_rm_and_the_default_network() {
    if skip() {
        return;
    }
    let ctl = Ctl::new("net-crud");
    let s = subnet(0);
    let br = unique("hb").chars().rev().take(12).collect::<String>();
    let br = format!("hb{}", br.replace('-', ""));
    ctl.ok(&[
        "network",
        "create",
        "front",
        "--subnet",
        &s,
        "-o",
        &format!("bridge={br}"),
    ]);
    let v = inspect(&ctl, "front");
    assert_eq!(v["IPAM"]["Config"][0]["Subnet"], s);
    let gw = s.replace(".0/24", ".1");
    assert_eq!(v["IPAM"]["Config"][0]["Gateway"], gw);
    assert_eq!(v["Options"]["com.docker.network.bridge.name"], br);
    assert_eq!(v["Internal"], false);

    let ls = ctl.ok(&["network", "ls", "-q"]);
    let names: Vec<&str> = ls.split_whitespace().collect();
    assert_eq!(
        names,
        ["front", "hull0"],
        "ls lists the default network too"
    );
    assert_eq!(
        inspect(&ctl, "hull0")["Options"]["com.docker.network.bridge.name"],
        "hull0"
    );

    let err = ctl.fails(&["network", "create", "front", "--subnet", &subnet(1)]);
    assert!(err.contains("already exists"), "{err}");
    ctl.ok(&["network", "rm", "front"]);
    ctl.fails(&["network", "inspect", "front"]);
    let err = ctl.fails(&["network", "rm", "front"]);
    assert!(err.contains("no such network"), "{err}");
}

#[test]
fn bad_input_is_refused_and_makes_nothing() {
    if skip() {
        return;
    }
    let ctl = Ctl::new("net-bad");
    let s = subnet(2);
    ctl.ok(&["network", "create", "a", "--subnet", &s, "--internal"]);
    assert_eq!(inspect(&ctl, "a")["Internal"], true);
    let before = ctl.ok(&["network", "ls", "-q"]);
    for (args, why) in [
        (vec!["--subnet", "10.233.300.0/24"], "invalid subnet"),
        (vec!["--subnet", "banana"], "invalid subnet"),
        (vec!["--subnet", "10.233.0.0/33"], "invalid subnet"),
        (vec!["--subnet", &s], "overlaps network a"),
        (vec!["--subnet", "127.0.0.0/8"], "reserved range"),
        (
            vec!["--subnet", &subnet(3), "--gateway", "192.168.1.1"],
            "not a host address",
        ),
        (
            vec!["--subnet", &subnet(3), "--gateway", "x"],
            "invalid gateway",
        ),
    ] {
        let mut a = vec!["network", "create", "b"];
        a.extend(args.iter().copied());
        let err = ctl.fails(&a);
        assert!(err.contains(why), "{a:?}: {err}");
    }
    // The wider subnet over an existing one is refused too.
    let wide = format!("{}/16", s.split('/').next().unwrap());
    let err = ctl.fails(&["network", "create", "b", "--subnet", &wide]);
    assert!(err.contains("overlaps network a"), "{err}");
    // A subnet the host routes elsewhere (its own LAN, docker0, ...).
    let routes = std::fs::read_to_string("/proc/net/route").unwrap();
    let host_route = routes.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let dest = u32::from_be(u32::from_str_radix(f[1], 16).unwrap());
        let mask = u32::from_be(u32::from_str_radix(f[7], 16).unwrap());
        (mask != 0).then(|| {
            let ip = std::net::Ipv4Addr::from(dest);
            format!("{ip}/{}", mask.leading_ones())
        })
    });
    if let Some(r) = host_route {
        let err = ctl.fails(&["network", "create", "b", "--subnet", &r]);
        assert!(err.contains("overlaps"), "{r}: {err}");
    }
    let err = ctl.fails(&["network", "create", "../x"]);
    assert!(err.contains("invalid network name"), "{err}");
    assert_eq!(ctl.ok(&["network", "ls", "-q"]), before, "nothing was made");
}

#[test]
fn prune_keeps_the_default_network() {
    if skip() {
        return;
    }
    let ctl = Ctl::new("net-prune");
    ctl.ok(&["network", "create", "p1", "--subnet", &subnet(4)]);
    ctl.ok(&["network", "ls"]);
    let out = ctl.ok(&["network", "prune", "-f"]);
    assert_eq!(out.trim(), "p1");
    assert_eq!(ctl.ok(&["network", "ls", "-q"]).trim(), "hull0");
}

fn links_exist(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

#[test]
fn two_containers_ping_each_other_by_ip_and_name() {
    if skip() {
        return;
    }
    let mut n = Net::new("net-ping", "ht");
    n.network("front", &subnet(10), &[]);
    let ctl = &n.ctl;
    for c in ["pa", "pb"] {
        ctl.ok(&[
            "run",
            "-d",
            "--name",
            c,
            "--network",
            "front",
            "--network-alias",
            &format!("{c}-alias"),
            "bb:1",
            "sleep",
            "1000",
        ]);
    }
    let (a, b) = (n.ip_of("pa"), n.ip_of("pb"));
    assert_ne!(a, b);
    let gw = subnet(10).replace(".0/24", ".1");
    // Each reaches the host on the gateway address.
    ctl.ok(&["exec", "pa", "ping", "-c1", "-W2", &gw]);
    ctl.ok(&["exec", "pb", "ping", "-c1", "-W2", &gw]);
    // The container's own name and alias in its /etc/hosts; the others'
    // come from DNS (tests/network_names.rs), or, on a host without
    // aardvark-dns, from /etc/hosts kept current.
    let hosts = ctl.ok(&["exec", "pa", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{a}\tpa ")) && hosts.contains("pa-alias"),
        "{hosts}"
    );
    if !std::path::Path::new("/usr/lib/podman/aardvark-dns").exists() {
        assert!(
            hosts.contains(&format!("{b}\tpb ")) && hosts.contains("pb-alias"),
            "{hosts}"
        );
        assert_eq!(hosts, ctl.ok(&["exec", "pb", "cat", "/etc/hosts"]));
    }
    // Also where docker's iptables FORWARD policy is DROP (br_netfilter
    // passes bridged traffic through it): hullctl's accepts in DOCKER-USER.
    ctl.ok(&["exec", "pa", "ping", "-c1", "-W2", &b]);
    ctl.ok(&["exec", "pb", "ping", "-c1", "-W2", "pa-alias"]);
    // Only lo and eth0; a default route via the gateway.
    let links = ctl.ok(&["exec", "pa", "ls", "/sys/class/net"]);
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), ["eth0", "lo"]);
    let route = ctl.ok(&["exec", "pa", "ip", "route"]);
    assert!(
        route.contains(&format!(
            "default via {}",
            subnet(10).replace(".0/24", ".1")
        )),
        "{route}"
    );
    let insp: serde_json::Value =
        serde_json::from_str(&ctl.ok(&["network", "inspect", "front"])).unwrap();
    assert_eq!(insp[0]["Containers"].as_object().unwrap().len(), 2);
    // In use: rm refused, nothing changed.
    let err = ctl.fails(&["network", "rm", "front"]);
    assert!(err.contains("in use"), "{err}");
    ctl.ok(&["rm", "-f", "pa", "pb"]);
    let insp: serde_json::Value =
        serde_json::from_str(&ctl.ok(&["network", "inspect", "front"])).unwrap();
    assert!(
        insp[0]["Containers"].as_object().unwrap().is_empty(),
        "leases released"
    );
    let br = n.bridges[0].clone();
    assert!(links_exist(&br));
    ctl.ok(&["network", "rm", "front"]);
    assert!(!links_exist(&br), "the bridge goes with the network");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Rules of hullctl's nftables table commented `comment`.
fn nft_rules(comment: &str) -> usize {
    let o = std::process::Command::new("nft")
        .args(["-j", "list", "table", "ip", "hullctl"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["rule"]["comment"] == comment)
        .count()
}

/// GET from the host with busybox wget, retried while the server starts.
fn http_get(url: &str) -> String {
    for _ in 0..100 {
        let o = std::process::Command::new(BUSYBOX)
            .args(["wget", "-q", "-O-", url])
            .output()
            .unwrap();
        if o.status.success() {
            return String::from_utf8_lossy(&o.stdout).to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{url}: no answer");
}

#[test]
fn published_port_answers_on_127_0_0_1_and_goes_with_the_container() {
    if skip() {
        return;
    }
    let mut n = Net::new("net-port", "ht");
    n.network("web", &subnet(11), &[]);
    let ctl = &n.ctl;
    let port = free_port();
    let name = unique("web");
    ctl.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "web",
        "-p",
        &format!("{port}:80"),
        "bb:1",
        "sh",
        "-c",
        "mkdir /www && echo hello-from-hull > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    let tag = format!("{}/containers/{name}", ctl.root().display());
    assert!(nft_rules(&tag) > 0);
    // The server answers inside, and from the host at its address.
    let ip = n.ip_of(&name);
    let page = http_get(&format!("http://{ip}:80/"));
    assert_eq!(page.trim(), "hello-from-hull");
    let page = http_get(&format!("http://127.0.0.1:{port}/"));
    assert_eq!(page.trim(), "hello-from-hull");
    // The host port is taken now: a second -p of it is refused, nothing made.
    let err = ctl.fails(&[
        "run",
        "-d",
        "--name",
        "second",
        "--network",
        "web",
        "-p",
        &format!("{port}:80"),
        "bb:1",
        "true",
    ]);
    assert!(
        err.contains(&format!(
            "host port {port}/tcp is already published by container {name}"
        )),
        "{err}"
    );
    ctl.fails(&["inspect", "second"]);
    // A port something on the host binds is refused too.
    let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let bound = l.local_addr().unwrap().port();
    let err = ctl.fails(&[
        "run",
        "--rm",
        "--network",
        "web",
        "-p",
        &format!("{bound}:80"),
        "bb:1",
        "true",
    ]);
    assert!(err.contains("in use on the host"), "{err}");
    for bad in ["x:80", "80", "1:2:3:4", "80:80/sctp", "0:80"] {
        let err = ctl.fails(&["run", "--rm", "--network", "web", "-p", bad, "bb:1", "true"]);
        assert!(err.contains("-p"), "{bad}: {err}");
    }
    ctl.ok(&["rm", "-f", &name]);
    assert_eq!(nft_rules(&tag), 0, "the container's rules went with it");
    let n_left = ctl.ok(&["ps", "-a", "-q"]);
    assert!(n_left.trim().is_empty(), "{n_left}");
}

#[test]
fn none_host_container_and_internal_modes() {
    if skip() {
        return;
    }
    let mut n = Net::new("net-modes", "ht");
    n.network("inner", &subnet(12), &["--internal"]);
    let ctl = &n.ctl;
    let links = ctl.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb:1",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(links.trim(), "lo");
    // The host's interfaces there before and after the run (other tests'
    // veths come and go meanwhile) are all in the container's view.
    let host = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect()
    };
    let before = host();
    let seen = ctl.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "bb:1",
        "ls",
        "/sys/class/net",
    ]);
    let stable: Vec<String> = before.intersection(&host()).cloned().collect();
    assert!(stable.len() > 1, "{stable:?}");
    for l in &stable {
        assert!(seen.split_whitespace().any(|s| s == l), "{l} not in {seen}");
    }
    // --internal: an address, no default route.
    ctl.ok(&[
        "run",
        "-d",
        "--name",
        "a",
        "--network",
        "inner",
        "--hostname",
        "alpha",
        "--add-host",
        "db:10.1.2.3",
        "--dns",
        "10.9.9.9",
        "bb:1",
        "sh",
        "-c",
        "busybox nc -l -p 7000 -e echo hi-from-a; sleep 1000",
    ]);
    let route = ctl.ok(&["exec", "a", "ip", "route"]);
    assert!(!route.contains("default"), "{route}");
    assert_eq!(
        ctl.ok(&["exec", "a", "cat", "/etc/hostname"]).trim(),
        "alpha"
    );
    assert_eq!(ctl.ok(&["exec", "a", "hostname"]).trim(), "alpha");
    let hosts = ctl.ok(&["exec", "a", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains("10.1.2.3\tdb") && hosts.contains("a alpha"),
        "{hosts}"
    );
    assert_eq!(
        ctl.ok(&["exec", "a", "cat", "/etc/resolv.conf"]),
        "nameserver 10.9.9.9\n"
    );
    // container:a shares a's interfaces and its localhost.
    let ip_a = n.ip_of("a");
    let out = ctl.ok(&[
        "run",
        "--rm",
        "--network",
        "container:a",
        "bb:1",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; busybox nc 127.0.0.1 7000",
    ]);
    assert!(out.contains(&ip_a) && out.contains("hi-from-a"), "{out}");
    let err = ctl.fails(&[
        "run",
        "--rm",
        "--network",
        "container:nosuch",
        "bb:1",
        "true",
    ]);
    assert!(err.contains("nosuch"), "{err}");
}

#[test]
fn two_user_networks_are_isolated() {
    if skip() {
        return;
    }
    let mut n = Net::new("net-iso", "ht");
    n.network("n1", &subnet(13), &[]);
    n.network("n2", &subnet(14), &[]);
    let ctl = &n.ctl;
    ctl.ok(&[
        "run",
        "-d",
        "--name",
        "x1",
        "--network",
        "n1",
        "bb:1",
        "sleep",
        "1000",
    ]);
    ctl.ok(&[
        "run",
        "-d",
        "--name",
        "x2",
        "--network",
        "n2",
        "bb:1",
        "sleep",
        "1000",
    ]);
    let ip2 = n.ip_of("x2");
    let o = ctl.run(&["exec", "x1", "ping", "-c1", "-W1", &ip2]);
    assert!(!o.status.success(), "n1 reached n2");
    // Nor does x1 know x2's name.
    let hosts = ctl.ok(&["exec", "x1", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("x2"), "{hosts}");
    // hullctl's own drop rule for each bridge is there (on hosts without
    // docker's FORWARD policy it is what isolates them).
    for b in &n.bridges {
        assert!(nft_rules(&format!("net:{b}")) >= 2, "{b}");
    }
}

/// 50 `run -d -p` at once, then 50 `rm -f` at once (issue 18's
/// acceptance): distinct addresses, and after: no lease, no rule, no veth
/// (on the bridge or anywhere on the host), no name entry.
#[test]
fn concurrent_runs_get_distinct_addresses_and_leave_nothing() {
    if skip() {
        return;
    }
    const N: usize = 50;
    let mut n = Net::new("net-conc", "ht");
    n.network("many", &subnet(15), &[]);
    let ctl = &n.ctl;
    let names: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    // Distinct free host ports: all held at once while picked.
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("0.0.0.0:0").unwrap())
        .collect();
    let ports: Vec<u16> = held
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    drop(held);
    std::thread::scope(|s| {
        for (c, port) in names.iter().zip(&ports) {
            s.spawn(move || {
                ctl.ok(&[
                    "run",
                    "-d",
                    "--name",
                    c,
                    "--network",
                    "many",
                    "-p",
                    &format!("{port}:80"),
                    "bb:1",
                    "sleep",
                    "1000",
                ]);
            });
        }
    });
    let ids: Vec<String> = names
        .iter()
        .map(|c| {
            let v: serde_json::Value = serde_json::from_str(&ctl.ok(&["inspect", c])).unwrap();
            v[0]["Id"].as_str().unwrap().to_string()
        })
        .collect();
    let mut ips: Vec<String> = names.iter().map(|c| n.ip_of(c)).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), N, "distinct: {ips:?}");
    let root = ctl.root().display().to_string();
    let table = || {
        let o = std::process::Command::new("nft")
            .args(["-j", "list", "table", "ip", "hullctl"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    assert_eq!(table().matches(&root).count(), 3 * N, "3 rules per -p");
    std::thread::scope(|s| {
        for c in &names {
            s.spawn(move || ctl.ok(&["rm", "-f", c]));
        }
    });
    let insp: serde_json::Value =
        serde_json::from_str(&ctl.ok(&["network", "inspect", "many"])).unwrap();
    assert!(
        insp[0]["Containers"].as_object().unwrap().is_empty(),
        "no lease left"
    );
    let leases =
        std::fs::read_to_string(ctl.root().join("networks/many.leases")).unwrap_or_default();
    assert!(!leases.contains('m'), "lease file: {leases}");
    let t = table();
    assert!(!t.contains(&root), "no container rule left: {t}");
    let veths = std::fs::read_dir(format!("/sys/class/net/{}/brif", n.bridges[0]))
        .unwrap()
        .count();
    assert_eq!(veths, 0, "no veth left on the bridge");
    // The network's own rules go with it.
    ctl.ok(&["network", "rm", "many"]);
    let t = table();
    assert!(
        !t.contains(&format!("net:{}", n.bridges[0])),
        "no network rule left: {t}"
    );
    assert!(!links_exist(&n.bridges[0]));
    for id in &ids {
        assert!(!links_exist(&format!("vh{}", &id[..12])), "veth of {id}");
    }
    // Name entries: /etc/hosts files go with the containers; an aardvark-dns
    // config (if this store has one) names none of them.
    for dir in walk(&ctl.root()) {
        if dir.file_name().is_some_and(|f| f == "aardvark-dns") {
            for f in walk(&dir) {
                let text = std::fs::read_to_string(&f).unwrap_or_default();
                for c in &names {
                    assert!(
                        !text.split_whitespace().any(|w| w == c),
                        "{c} in {}",
                        f.display()
                    );
                }
            }
        }
    }
}

/// Every path under `d` (not following symlinks).
fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

/// What a failed run could leave behind on `n`'s first network: veths on
/// its bridge, rules of the store, leases, containers.
fn debris(n: &Net) -> (usize, usize, String, String) {
    let veths = std::fs::read_dir(format!("/sys/class/net/{}/brif", n.bridges[0]))
        .map(|d| d.count())
        .unwrap_or(0);
    let o = std::process::Command::new("nft")
        .args(["-j", "list", "table", "ip", "hullctl"])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&o.stdout)
        .matches(&n.ctl.root().display().to_string())
        .count();
    let leases = std::fs::read_to_string(
        n.ctl
            .root()
            .join(format!("networks/{}.leases", n.networks[0])),
    )
    .unwrap_or_default();
    (veths, rules, leases, n.ctl.ok(&["ps", "-a", "-q"]))
}

/// An image that EXPOSEs 80/tcp and serves `page` there (busybox httpd).
fn load_web_image(ctl: &Ctl, page: &str) {
    let mut l = Layout::new();
    let d = two_layer_image(
        &mut l,
        serde_json::json!({
            "ExposedPorts": {"80/tcp": {}},
            "Cmd": ["sh", "-c", format!("mkdir /www && echo {page} > /www/index.html && exec httpd -f -p 80 -h /www")],
        }),
    );
    l.tag(d, "web:1");
    let t = ctl.dir.path().join("web.tar");
    l.tarball(&t);
    ctl.ok(&["load", "-i", t.to_str().unwrap()]);
}

#[test]
fn publish_all_and_static_addresses() {
    if skip() {
        return;
    }
    let mut n = Net::new("net-pub-all", "ht");
    let s = subnet(16);
    n.network("pa", &s, &[]);
    let ctl = &n.ctl;
    load_web_image(ctl, "published-by-P");
    // -P: the EXPOSEd 80/tcp on a free host port, shown by port and inspect.
    ctl.ok(&["run", "-d", "--name", "w", "--network", "pa", "-P", "web:1"]);
    let line = ctl.ok(&["port", "w"]);
    let port: u16 = line
        .trim()
        .strip_prefix("80/tcp -> 0.0.0.0:")
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    assert!(port > 0);
    let v: serde_json::Value = serde_json::from_str(&ctl.ok(&["inspect", "w"])).unwrap();
    assert_eq!(
        v[0]["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        port.to_string()
    );
    assert_eq!(
        v[0]["NetworkSettings"]["Networks"]["pa"]["IPAddress"],
        n.ip_of("w")
    );
    let page = http_get(&format!("http://127.0.0.1:{port}/"));
    assert_eq!(page.trim(), "published-by-P");

    // --ip: honoured; the same address again refused, nothing made.
    let want = s.replace(".0/24", ".77");
    ctl.ok(&[
        "run",
        "-d",
        "--name",
        "st",
        "--network",
        "pa",
        "--ip",
        &want,
        "bb:1",
        "sleep",
        "1000",
    ]);
    assert_eq!(n.ip_of("st"), want);
    let before = debris(&n);
    let err = ctl.fails(&[
        "run",
        "-d",
        "--name",
        "st2",
        "--network",
        "pa",
        "--ip",
        &want,
        "bb:1",
        "sleep",
        "1000",
    ]);
    assert!(
        err.contains(&format!("--ip {want} is already leased to container st")),
        "{err}"
    );
    assert_eq!(debris(&n), before, "nothing half-configured");
    ctl.fails(&["inspect", "st2"]);
    for (ip, why) in [
        ("10.1.2.3", "not a free host address"),
        (&s.replace(".0/24", ".1")[..], "not a free host address"),
        (&s.replace(".0/24", ".255")[..], "not a free host address"),
        ("10.233.1", "--ip"),
    ] {
        let err = ctl.fails(&["run", "--rm", "--network", "pa", "--ip", ip, "bb:1", "true"]);
        assert!(err.contains(why), "{ip}: {err}");
        assert_eq!(
            debris(&n),
            before,
            "{ip}: nothing half-configured; {}",
            ctl.ok(&["ps", "-a"])
        );
    }
}

#[test]
fn taken_host_ports_and_networks_in_use_leave_nothing_half_configured() {
    if skip() {
        return;
    }
    let mut n = Net::new("net-taken", "ht");
    n.network("tk", &subnet(17), &[]);
    let ctl = &n.ctl;
    let port = free_port();
    ctl.ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "tk",
        "-p",
        &format!("{port}:80"),
        "bb:1",
        "sleep",
        "1000",
    ]);
    let before = debris(&n);
    assert_eq!(before.0, 1);
    // Published by another container.
    let err = ctl.fails(&[
        "run",
        "-d",
        "--name",
        "x",
        "--network",
        "tk",
        "-p",
        &format!("{port}:8080"),
        "bb:1",
        "sleep",
        "1000",
    ]);
    assert!(
        err.contains(&format!(
            "host port {port}/tcp is already published by container holder"
        )),
        "{err}"
    );
    assert_eq!(debris(&n), before);
    // Bound by a host process (udp too).
    let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let bound = l.local_addr().unwrap().port();
    let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let ubound = u.local_addr().unwrap().port();
    for spec in [format!("{bound}:80"), format!("{ubound}:53/udp")] {
        let err = ctl.fails(&[
            "run",
            "-d",
            "--name",
            "x",
            "--network",
            "tk",
            "-p",
            &spec,
            "bb:1",
            "sleep",
            "1000",
        ]);
        assert!(err.contains("is in use on the host"), "{spec}: {err}");
        assert_eq!(debris(&n), before, "{spec}");
    }
    // An unknown network, a bad network mode: nothing either.
    let err = ctl.fails(&["run", "-d", "--network", "nosuch", "bb:1", "true"]);
    assert!(err.contains("nosuch"), "{err}");
    assert_eq!(debris(&n), before);
    // In use: network rm refused, the network whole (bridge, rules, lease).
    let err = ctl.fails(&["network", "rm", "tk"]);
    assert!(err.contains("in use by container(s) holder"), "{err}");
    assert_eq!(debris(&n), before);
    assert!(links_exist(&n.bridges[0]));
    // Invalid CIDRs: nothing written.
    for bad in ["10.233.0.0/33", "10.233.0.0", "10.233.0.0/-1", ""] {
        let err = ctl.fails(&["network", "create", "bad", "--subnet", bad]);
        assert!(err.contains("invalid subnet"), "{bad:?}: {err}");
    }
    let err = ctl.fails(&["network", "create", "bad", "--ipv6", "--subnet", "::1/64x"]);
    assert!(err.contains("invalid IPv6 subnet"), "{err}");
    assert!(!n.ctl.root().join("networks/bad.json").exists());
    assert!(!n.ctl.root().join("networks/bad.leases").exists());
}

/// Another network namespace with a leg on the bridge (`addr` on it):
/// a machine on the network's LAN. Removed on drop.
struct Neighbour {
    ns: String,
    host_if: String,
}

impl Neighbour {
    fn new(bridge: &str, addr: &str, gw: &str) -> Neighbour {
        let id = std::process::id() % 100000;
        let nb = Neighbour {
            ns: format!("hullnb{id}"),
            host_if: format!("hnb{id}"),
        };
        let ip = |a: &[&str]| {
            let o = std::process::Command::new("ip").args(a).output().unwrap();
            assert!(
                o.status.success(),
                "ip {a:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &nb.ns])
            .output();
        ip(&["netns", "add", &nb.ns]);
        ip(&[
            "link",
            "add",
            &nb.host_if,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &nb.ns,
        ]);
        ip(&["link", "set", &nb.host_if, "master", bridge, "up"]);
        for c in [
            vec!["addr", "add", addr, "dev", "eth0"],
            vec!["link", "set", "eth0", "up"],
            vec!["route", "add", "default", "via", gw],
        ] {
            let mut a = vec!["netns", "exec", &nb.ns, "ip"];
            a.extend(c);
            ip(&a);
        }
        nb
    }
}

impl Drop for Neighbour {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .output();
    }
}

/// `-p 18080:80` (the example; a free port instead if something
/// on the host holds 18080): from the host at 127.0.0.1, from another
/// namespace through the bridge address, and from another container
/// through it (hairpin NAT).
#[test]
fn published_port_from_the_host_and_from_another_namespace_through_the_bridge() {
    if skip() {
        return;
    }
    let mut n = Net::new("net-18080", "ht");
    let s = subnet(18);
    n.network("pub", &s, &[]);
    let ctl = &n.ctl;
    load_web_image(ctl, "page-18080");
    let port = if std::net::TcpListener::bind("0.0.0.0:18080").is_ok() {
        18080
    } else {
        eprintln!("18080 is taken on this host: using a free port");
        free_port()
    };
    ctl.ok(&[
        "run",
        "-d",
        "--name",
        "w",
        "--network",
        "pub",
        "-p",
        &format!("{port}:80"),
        "web:1",
    ]);
    let gw = s.replace(".0/24", ".1");
    let page = http_get(&format!("http://127.0.0.1:{port}/"));
    assert_eq!(page.trim(), "page-18080");
    let nb = Neighbour::new(&n.bridges[0], &s.replace(".0/24", ".250/24"), &gw);
    let o = std::process::Command::new("ip")
        .args([
            "netns", "exec", &nb.ns, "timeout", "10", BUSYBOX, "wget", "-q", "-O-",
        ])
        .arg(format!("http://{gw}:{port}/"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "page-18080",
        "from another namespace: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    ctl.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "pub",
        "bb:1",
        "sleep",
        "1000",
    ]);
    let page = ctl.ok(&[
        "exec",
        "client",
        "wget",
        "-q",
        "-O-",
        &format!("http://{gw}:{port}/"),
    ]);
    assert_eq!(page.trim(), "page-18080");
}
