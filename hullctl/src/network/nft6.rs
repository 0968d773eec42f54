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

use super::nft::{delete_where, gone_containers, host_lock, m, net_tag, nft, rule_in, rules};
use super::Network;
use crate::error::Result;

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
    rule_in("ip6", chain, comment, expr)
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
    let existing = rules("ip6")?;
    let new_network = !existing.iter().any(|r| r.2 == tag);
    cmds.extend(gone_containers("ip6", &existing, &live));
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

/// Remove the ip6 rules whose tag `gone` says to remove, and the table
/// with them when no other rule is left in it.
pub fn remove_where(gone: impl Fn(&str) -> bool) -> Result<()> {
    let _l = host_lock()?;
    delete_where("ip6", gone, "removing ip6 rules")
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
