//! IPv6 NAT and isolation for dual-stack networks, in a table of
//! hullctl's own for the ip6 family (`ip6 hullctl`), next to the IPv4 one
//! in nft.rs and through the same `nft -j`:
//!
//! - postrouting: masquerade what a container sends out of its network
//!   (one rule per container, tagged like its IPv4 rules, so it goes
//!   exactly when the container goes)
//! - forward: per bridge (tagged by the network), nothing from elsewhere
//!   opens a connection into the network; internal networks send nothing out
//!
//! Like the ip table, it changes only under the host-wide lock
//! (nft::host_lock), a setup lists it once and changes it in one
//! transaction (the rules of containers that are gone removed with it),
//! and the table goes when no rule is left in it.

use std::net::Ipv6Addr;

use serde_json::{json, Value};

use super::nft::{host_lock, net_tag, nft};
use super::Network;
use crate::error::{Error, Result};

const TABLE: &str = "hullctl";

fn base() -> Vec<Value> {
    vec![
        json!({"add": {"table": {"family": "ip6", "name": TABLE}}}),
        json!({"add": {"chain": {"family": "ip6", "table": TABLE, "name": "postrouting",
            "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}}}),
        json!({"add": {"chain": {"family": "ip6", "table": TABLE, "name": "forward",
            "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}}),
    ]
}

fn rule(chain: &str, comment: &str, expr: Vec<Value>) -> Value {
    json!({"add": {"rule": {"family": "ip6", "table": TABLE, "chain": chain,
        "comment": comment, "expr": expr}}})
}

fn m(left: Value, op: &str, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

/// The network's forward rules (once) and the container's masquerade;
/// in the same transaction, the rules of containers that are gone (`live`
/// says which tags still stand for one).
pub fn add(
    net: &Network,
    container: &str,
    ip: Ipv6Addr,
    live: impl Fn(&str) -> bool,
) -> Result<()> {
    let Some(subnet) = net.subnet6 else {
        return Ok(());
    };
    let _l = host_lock()?;
    let mut cmds = base();
    let tag = net_tag(net);
    let iif = |op: &str| m(json!({"meta": {"key": "iifname"}}), op, json!(net.bridge));
    let oif = |op: &str| m(json!({"meta": {"key": "oifname"}}), op, json!(net.bridge));
    let existing = rules()?;
    let new_network = !existing.iter().any(|r| r.2 == tag);
    for (chain, handle, _) in existing
        .into_iter()
        .filter(|r| !r.2.starts_with("net:") && !live(&r.2))
    {
        cmds.push(delete_rule(&chain, handle));
    }
    if new_network {
        cmds.push(rule(
            "forward",
            &tag,
            vec![
                oif("=="),
                iif("!="),
                m(
                    json!({"ct": {"key": "state"}}),
                    "in",
                    json!(["established", "related"]),
                ),
                json!({"accept": null}),
            ],
        ));
        cmds.push(rule(
            "forward",
            &tag,
            vec![oif("=="), iif("!="), json!({"drop": null})],
        ));
        if net.internal {
            cmds.push(rule(
                "forward",
                &tag,
                vec![iif("=="), oif("!="), json!({"drop": null})],
            ));
        }
    }
    if !net.internal {
        let prefix =
            json!({"prefix": {"addr": subnet.network().to_string(), "len": subnet.prefix_len()}});
        let field = |f: &str| json!({"payload": {"protocol": "ip6", "field": f}});
        cmds.push(rule(
            "postrouting",
            container,
            vec![
                m(field("saddr"), "==", json!(ip.to_string())),
                m(field("daddr"), "!=", prefix),
                json!({"masquerade": null}),
            ],
        ));
    }
    nft(
        cmds,
        &format!("ip6: container {container} on network {}", net.name),
    )
    .map(drop)
}

/// The rules of the ip6 table as (chain, handle, comment).
pub fn rules() -> Result<Vec<(String, u64, String)>> {
    let Ok(out) = nft(
        vec![json!({"list": {"table": {"family": "ip6", "name": TABLE}}})],
        "listing ip6",
    ) else {
        return Ok(Vec::new()); // no table yet
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

fn delete_rule(chain: &str, handle: u64) -> Value {
    json!({"delete": {"rule": {"family": "ip6", "table": TABLE, "chain": chain, "handle": handle}}})
}

/// Remove the ip6 rules whose tag `gone` says to remove, and the table
/// with them when no other rule is left in it.
pub fn remove_where(gone: impl Fn(&str) -> bool) -> Result<()> {
    let _l = host_lock()?;
    let (doomed, kept): (Vec<_>, Vec<_>) = rules()?.into_iter().partition(|r| gone(&r.2));
    let cmds: Vec<Value> = if doomed.is_empty() {
        return Ok(());
    } else if kept.is_empty() {
        vec![json!({"delete": {"table": {"family": "ip6", "name": TABLE}}})]
    } else {
        doomed
            .iter()
            .map(|(chain, handle, _)| delete_rule(chain, *handle))
            .collect()
    };
    nft(cmds, "removing ip6 rules").map(drop)
}

/// Remove every ip6 rule tagged `comment`.
pub fn remove(comment: &str) -> Result<()> {
    remove_where(|t| t == comment)
}

/// Remove a network's own ip6 rules (forward): `network rm`.
pub fn remove_network(net: &Network) -> Result<()> {
    let tag = net_tag(net);
    remove_where(|t| t == tag)
}
