//! hullctl networking: network records and IPAM (create/ls/inspect/rm/prune,
//! bad input changes nothing, leases never handed out twice). Real
//! commands, a private store per test; networks here get subnets in
//! 10.233.0.0/16, which nothing else on the test hosts uses.

mod common;

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
