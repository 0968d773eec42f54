//! NAT with nftables through nft's JSON interface (`nft -j -f -`), in a
//! table of hullctl's own (`ip hullctl`); nothing else in the host's
//! ruleset is read or changed. Every rule carries its container's name as
//! its comment, which is how exactly its rules go when it goes.
//!
//! - postrouting: masquerade what a network sends out (not `--internal`
//!   ones), and what the host sends from 127.0.0.1 to a published port
//! - prerouting + output: published ports (DNAT), for traffic arriving
//!   from elsewhere and from the host itself (127.0.0.1 needs the bridge's
//!   route_localnet)
//! - forward: per network, replies and DNATed connections into its bridge
//!   pass, other new connections into it are dropped (isolation)
//!
//! The table is host-wide (shared by every store), so every change to it
//! happens under a host-wide lock ([`host_lock`]). A container's rules
//! live as long as it; a network's (forward, masquerade) as long as its
//! bridge: made with its first container, removed by `network rm`. The
//! table itself goes when no rule is left in it: a host without hullctl
//! networks has no `ip hullctl` table (docker and netavark keep their
//! empty chains; hullctl leaves nothing, as its tests check).

use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::fw::Family;
use super::Network;
use crate::error::{Error, Result};

const TABLE: &str = "hullctl";

/// One `-p`: host address (None: any), host port, container port, proto.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Publish {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: String,
}

/// The host-wide lock around changes to hullctl's table and to its rules
/// in other tools' chains (fw): /run/hullctl/host.lock.
pub struct HostLock(#[allow(dead_code)] File);

pub fn host_lock() -> Result<HostLock> {
    let d = std::path::Path::new("/run/hullctl");
    std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    let p = d.join("host.lock");
    let f = crate::sys::lock_file(&p, libc::LOCK_EX).map_err(|e| Error::io(&p, e))?;
    Ok(HostLock(f))
}

/// nft by absolute path: the hook runs with the container's hook
/// environment, which has no PATH.
fn nft_path() -> &'static str {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nft")
}

pub(super) fn nft(cmds: Vec<Value>, what: &str) -> Result<String> {
    let input = json!({"nftables": cmds}).to_string();
    let mut child = Command::new(nft_path())
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("nft", e))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(input.as_bytes())
            .map_err(|e| Error::io("nft stdin", e))?;
    }
    let out = child.wait_with_output().map_err(|e| Error::io("nft", e))?;
    if !out.status.success() {
        return Err(Error::Image(format!(
            "nftables: {what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

fn chain(name: &str, hook: &str, prio: i32) -> Value {
    json!({"add": {"chain": {"family": "ip", "table": TABLE, "name": name,
        "type": "nat", "hook": hook, "prio": prio, "policy": "accept"}}})
}

/// The table and its chains (adding what exists is a no-op).
fn base() -> Vec<Value> {
    vec![
        json!({"add": {"table": {"family": "ip", "name": TABLE}}}),
        chain("prerouting", "prerouting", -100),
        chain("output", "output", -100),
        chain("postrouting", "postrouting", 100),
        json!({"add": {"chain": {"family": "ip", "table": TABLE, "name": "forward",
            "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}}),
    ]
}

fn rule(chain: &str, comment: &str, expr: Vec<Value>) -> Value {
    rule_in("ip", chain, comment, expr)
}

/// A rule of `family`'s table, tagged `comment` (what it belongs to).
pub(super) fn rule_in(family: &str, chain: &str, comment: &str, expr: Vec<Value>) -> Value {
    json!({"add": {"rule": {"family": family, "table": TABLE, "chain": chain,
        "comment": comment, "expr": expr}}})
}

/// Deleting a rule of `family`'s table by its handle.
pub(super) fn delete_rule(family: &str, chain: &str, handle: u64) -> Value {
    json!({"delete": {"rule": {"family": family, "table": TABLE, "chain": chain, "handle": handle}}})
}

pub(super) fn m(left: Value, op: &str, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn payload(proto: &str, field: &str) -> Value {
    json!({"payload": {"protocol": proto, "field": field}})
}

fn prefix(net: &Network) -> Value {
    json!({"prefix": {"addr": net.subnet.network().to_string(), "len": net.subnet.prefix_len()}})
}

/// Set up NAT for `container` (its tag: see attach::rule_tag) at `ip` on `net`: masquerade for the
/// network and a DNAT per published port. All in one nft transaction.
///
/// The same transaction removes the rules of containers that are gone
/// (`live` says which still exist: a crash between setup and teardown),
/// so a setup lists the table once and runs nft twice.
pub fn add(
    net: &Network,
    container: &str,
    ip: Ipv4Addr,
    ports: &[Publish],
    live: impl Fn(&str) -> bool,
) -> Result<()> {
    let _l = host_lock()?;
    let mut cmds = base();
    let tag = net_tag(net);
    let iif = |op: &str, b: &str| m(json!({"meta": {"key": "iifname"}}), op, json!(b));
    let oif = |op: &str, b: &str| m(json!({"meta": {"key": "oifname"}}), op, json!(b));
    let existing = rules("ip")?;
    let new_network = !existing.iter().any(|r| r.2 == tag);
    cmds.extend(gone_containers("ip", &existing, &live));
    if new_network {
        // Isolation: nothing from elsewhere opens a connection into the
        // network but published ports (DNAT); replies to the containers'
        // own connections come back; internal ones send nothing out.
        cmds.push(rule(
            "forward",
            &tag,
            vec![
                oif("==", &net.bridge),
                iif("!=", &net.bridge),
                json!({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}),
                json!({"accept": null}),
            ],
        ));
        cmds.push(rule(
            "forward",
            &tag,
            vec![
                oif("==", &net.bridge),
                iif("!=", &net.bridge),
                json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}),
                json!({"accept": null}),
            ],
        ));
        cmds.push(rule(
            "forward",
            &tag,
            vec![
                oif("==", &net.bridge),
                iif("!=", &net.bridge),
                json!({"drop": null}),
            ],
        ));
        if net.internal {
            cmds.push(rule(
                "forward",
                &tag,
                vec![
                    iif("==", &net.bridge),
                    oif("!=", &net.bridge),
                    json!({"drop": null}),
                ],
            ));
        }
    }
    if !net.internal && new_network {
        cmds.push(rule(
            "postrouting",
            &tag,
            vec![
                m(payload("ip", "saddr"), "==", prefix(net)),
                m(payload("ip", "daddr"), "!=", prefix(net)),
                json!({"masquerade": null}),
            ],
        )); // Hairpin: a container (or anything on the bridge) reaching a
            // published port through the gateway or another host address
            // must get the reply back through the host, not straight from
            // the container it was sent to.
        cmds.push(rule(
            "postrouting",
            &tag,
            vec![
                m(payload("ip", "saddr"), "==", prefix(net)),
                m(payload("ip", "daddr"), "==", prefix(net)),
                json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}),
                json!({"masquerade": null}),
            ],
        ));
    }
    for p in ports {
        let mut e = vec![
            json!({"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}}),
        ];
        if let Some(h) = p.host_ip {
            e.push(m(payload("ip", "daddr"), "==", json!(h.to_string())));
        }
        e.push(m(payload(&p.proto, "dport"), "==", json!(p.host_port)));
        e.push(json!({"dnat": {"addr": ip.to_string(), "port": p.container_port}}));
        cmds.push(rule("prerouting", container, e.clone()));
        cmds.push(rule("output", container, e));
        // From the host's 127.0.0.1: the reply must come back to us.
        cmds.push(rule(
            "postrouting",
            container,
            vec![
                m(
                    payload("ip", "saddr"),
                    "==",
                    json!({"prefix": {"addr": "127.0.0.0", "len": 8}}),
                ),
                m(payload("ip", "daddr"), "==", json!(ip.to_string())),
                m(payload(&p.proto, "dport"), "==", json!(p.container_port)),
                json!({"masquerade": null}),
            ],
        ));
    }
    nft(
        cmds,
        &format!("container {container} on network {}", net.name),
    )?;
    // Bridged IPv6 meets ip6tables' FORWARD the same way (br_netfilter).
    let families: &[Family] = match net.subnet6 {
        Some(_) => &[Family::V4, Family::V6],
        None => &[Family::V4],
    };
    super::fw::ensure(&net.bridge, families)
}

/// The rules of `family`'s table as (chain, handle, comment); none if
/// there is no table yet.
pub(super) fn rules(family: &str) -> Result<Vec<(String, u64, String)>> {
    let list = json!({"list": {"table": {"family": family, "name": TABLE}}});
    let Ok(out) = nft(vec![list], &format!("listing the {family} table")) else {
        return Ok(Vec::new());
    };
    let v: Value = serde_json::from_str(&out).map_err(|e| Error::json("nft -j list", e))?;
    Ok(v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            let r = &o["rule"];
            Some((
                r["chain"].as_str()?.to_string(),
                r["handle"].as_u64()?,
                r["comment"].as_str()?.to_string(),
            ))
        })
        .collect())
}

/// Deleting the rules in `existing` of containers that are gone (`live`
/// says which tags still stand for one; a network's own rules stay).
pub(super) fn gone_containers(
    family: &str,
    existing: &[(String, u64, String)],
    live: impl Fn(&str) -> bool,
) -> Vec<Value> {
    existing
        .iter()
        .filter(|r| !r.2.starts_with("net:") && !live(&r.2))
        .map(|(chain, handle, _)| delete_rule(family, chain, *handle))
        .collect()
}

/// Delete the rules of `family`'s table that `doomed` picks, and the table
/// with them when no other rule is left in it. The caller holds the host
/// lock.
pub(super) fn delete_where(family: &str, doomed: impl Fn(&str) -> bool, what: &str) -> Result<()> {
    let (gone, kept): (Vec<_>, Vec<_>) = rules(family)?.into_iter().partition(|r| doomed(&r.2));
    let cmds: Vec<Value> = if gone.is_empty() {
        return Ok(());
    } else if kept.is_empty() {
        vec![json!({"delete": {"table": {"family": family, "name": TABLE}}})]
    } else {
        gone.iter()
            .map(|(chain, handle, _)| delete_rule(family, chain, *handle))
            .collect()
    };
    nft(cmds, what).map(drop)
}

/// Remove every rule tagged `comment` (a container's tag, see
/// attach::rule_tag).
pub fn remove(comment: &str) -> Result<()> {
    let _l = host_lock()?;
    delete_where(
        "ip",
        |c| c == comment,
        &format!("removing {comment}'s rules"),
    )
}

/// Remove a network's own rules (forward, masquerade) and its accepts in
/// other tools' chains: they live as long as its bridge.
pub fn remove_network(net: &Network) -> Result<()> {
    let _l = host_lock()?;
    let tag = net_tag(net);
    delete_where(
        "ip",
        |c| c == tag,
        &format!("removing network {}'s rules", net.name),
    )?;
    super::fw::remove(&net.bridge)
}

/// A network's rules are tagged by its bridge (unique on the host, while
/// network names are per store).
pub fn net_tag(net: &Network) -> String {
    format!("net:{}", net.bridge)
}

/// Let the host's 127.0.0.1 be routed to the bridge (for published ports).
pub fn route_localnet(bridge: &str) -> Result<()> {
    let p = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    std::fs::write(&p, "1").map_err(|e| Error::io(&p, e))
}
