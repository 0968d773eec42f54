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

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

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
    json!({"add": {"rule": {"family": "ip", "table": TABLE, "chain": chain,
        "comment": comment, "expr": expr}}})
}

fn m(left: Value, op: &str, right: Value) -> Value {
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
pub fn add(net: &Network, container: &str, ip: Ipv4Addr, ports: &[Publish]) -> Result<()> {
    let mut cmds = base();
    let tag = net_tag(net);
    let iif = |op: &str, b: &str| m(json!({"meta": {"key": "iifname"}}), op, json!(b));
    let oif = |op: &str, b: &str| m(json!({"meta": {"key": "oifname"}}), op, json!(b));
    if !has_rule(&tag)? {
        // Isolation: nothing from elsewhere opens a connection into the
        // network but published ports (DNAT); internal ones send nothing out.
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
    if !net.internal && !has_rule(&tag)? {
        cmds.push(rule(
            "postrouting",
            &tag,
            vec![
                m(payload("ip", "saddr"), "==", prefix(net)),
                m(payload("ip", "daddr"), "!=", prefix(net)),
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
    )
    .map(drop)
}

/// The rules of the table as (chain, handle, comment).
fn rules() -> Result<Vec<(String, u64, String)>> {
    let out = match nft(
        vec![json!({"list": {"table": {"family": "ip", "name": TABLE}}})],
        "listing",
    ) {
        Ok(o) => o,
        Err(_) => return Ok(Vec::new()), // no table yet
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

fn has_rule(comment: &str) -> Result<bool> {
    Ok(rules()?.iter().any(|r| r.2 == comment))
}

/// Remove every rule tagged `comment` (a container's name, or
/// `net:NAME` for a network's masquerade).
pub fn remove(comment: &str) -> Result<()> {
    let cmds: Vec<Value> = rules()?
        .into_iter()
        .filter(|r| r.2 == comment)
        .map(|(chain, handle, _)| {
            json!({"delete": {"rule": {"family": "ip", "table": TABLE, "chain": chain, "handle": handle}}})
        })
        .collect();
    if cmds.is_empty() {
        return Ok(());
    }
    nft(cmds, &format!("removing {comment}'s rules")).map(drop)
}

/// A network's rules are tagged by its bridge (unique on the host, while
/// network names are per store).
pub fn net_tag(net: &Network) -> String {
    format!("net:{}", net.bridge)
}

/// Remove the rules of containers that no longer exist (a crash between
/// setup and teardown): `live` says whether a container still exists.
pub fn remove_stale(live: impl Fn(&str) -> bool) -> Result<()> {
    let cmds: Vec<Value> = rules()?
        .into_iter()
        .filter(|r| !r.2.starts_with("net:") && !live(&r.2))
        .map(|(chain, handle, _)| {
            json!({"delete": {"rule": {"family": "ip", "table": TABLE, "chain": chain, "handle": handle}}})
        })
        .collect();
    if cmds.is_empty() {
        return Ok(());
    }
    nft(cmds, "removing stale rules").map(drop)
}

/// Let the host's 127.0.0.1 be routed to the bridge (for published ports).
pub fn route_localnet(bridge: &str) -> Result<()> {
    let p = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    std::fs::write(&p, "1").map_err(|e| Error::io(&p, e))
}
