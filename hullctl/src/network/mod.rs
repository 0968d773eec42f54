//! Networks: records, IPAM and the commands (`network create|ls|inspect|rm|prune`).
//!
//! ```text
//! networks/<name>.json      a network: subnet, gateway, bridge, internal
//! networks/<name>.leases    its IPAM leases: address -> container name
//! networks/lock             flock: held around every record or lease change
//! ```
//!
//! The default network `hull0` is made on first use with the defaults
//! below, unless `network create hull0 ...` made it first (which is how
//! a store picks another subnet or bridge for it). A network's bridge is
//! made when a container first joins it (issue 18, step 2).

pub mod attach;
pub mod dns;
pub mod fw;
pub mod ipam;
pub mod link;
pub mod nft;
pub mod nft6;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::store::{write_atomic, Store};

pub const DEFAULT_NETWORK: &str = "hull0";
pub const DEFAULT_SUBNET: &str = "10.89.0.0/24";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub name: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// The host bridge's interface name.
    pub bridge: String,
    /// No masquerade, no route out: containers reach only each other.
    pub internal: bool,
    pub created: String,
    /// Dual stack (`--ipv6`): the IPv6 subnet and gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<Ipv6Net>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
}

/// What `network create` was asked for.
#[derive(Debug, Default, Clone)]
pub struct CreateRequest {
    pub name: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub bridge: Option<String>,
    pub internal: bool,
    /// `--ipv6`: dual stack, on `subnet6` (a free fd89:…::/64 if None).
    pub ipv6: bool,
    pub subnet6: Option<String>,
    pub gateway6: Option<String>,
}

/// The networks lock, held while alive.
pub struct NetLock(#[allow(dead_code)] File);

fn dir(store: &Store) -> PathBuf {
    store.root().join("networks")
}

fn record_path(store: &Store, name: &str) -> PathBuf {
    dir(store).join(format!("{name}.json"))
}

pub fn lock(store: &Store) -> Result<NetLock> {
    let d = dir(store);
    std::fs::create_dir_all(&d).at(&d)?;
    let p = d.join("lock");
    Ok(NetLock(crate::sys::lock_file(&p, libc::LOCK_EX).at(&p)?))
}

fn usage(name: &str, msg: impl std::fmt::Display) -> Error {
    Error::Usage(format!("network {name}: {msg}"))
}

/// Network names double as file names and (by default) bridge suffixes.
fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid network name {name:?} (letters, digits, - _ . only)"
        )))
    }
}

/// Interface names: at most 15 bytes, no '/' or whitespace.
fn validate_ifname(name: &str, ifname: &str) -> Result<()> {
    if ifname.is_empty()
        || ifname.len() > 15
        || ifname.bytes().any(|b| b == b'/' || b.is_ascii_whitespace())
    {
        return Err(usage(name, format!("invalid bridge name {ifname:?}")));
    }
    Ok(())
}

pub fn load(store: &Store, name: &str) -> Result<Network> {
    let p = record_path(store, name);
    match std::fs::read(&p) {
        Ok(d) => serde_json::from_slice(&d).map_err(|e| Error::json(p.display().to_string(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::not_found("network", name))
        }
        Err(e) => Err(Error::io(&p, e)),
    }
}

/// All networks, by name (the default one included once it exists).
pub fn list(store: &Store) -> Result<Vec<Network>> {
    let d = dir(store);
    let rd = match std::fs::read_dir(&d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&d, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.at(&d)?;
        let n = e.file_name().to_string_lossy().to_string();
        if let Some(name) = n.strip_suffix(".json") {
            out.push(load(store, name)?);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// IPv4 routes the host has (from /proc/net/route): a new network must
/// not overlap one, or its traffic would go the wrong way.
fn host_routes() -> Vec<(String, Ipv4Net)> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            if mask == 0 {
                return None; // the default route overlaps everything
            }
            let dest = Ipv4Addr::from(u32::from_be(dest));
            let prefix = u32::from_be(mask).leading_ones() as u8;
            Some((f[0].to_string(), Ipv4Net::new(dest, prefix).ok()?))
        })
        .collect()
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first free /24 in 10.89.0.0/16 (as podman picks 10.89.x.0/24).
fn free_subnet(taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    (0u8..=255)
        .filter_map(|i| Ipv4Net::new(Ipv4Addr::new(10, 89, i, 0), 24).ok())
        .find(|s| !taken.iter().any(|t| overlaps(s, t)))
}

/// `network create`: validate everything first, then write the record;
/// nothing is made on bad input.
pub fn create(store: &Store, req: &CreateRequest) -> Result<Network> {
    let _l = lock(store)?;
    create_locked(store, req)
}

fn create_locked(store: &Store, req: &CreateRequest) -> Result<Network> {
    let name = &req.name;
    validate_name(name)?;
    if record_path(store, name).exists() {
        return Err(usage(name, "already exists"));
    }
    let existing = list(store)?;
    let mut taken: Vec<Ipv4Net> = existing.iter().map(|n| n.subnet).collect();
    let routes = host_routes();
    let subnet = match &req.subnet {
        Some(s) => {
            let net: Ipv4Net = s
                .parse()
                .map_err(|e| usage(name, format!("invalid subnet {s:?}: {e}")))?;
            if net.prefix_len() > 30 {
                return Err(usage(
                    name,
                    format!("subnet {s} is too small (at most /30)"),
                ));
            }
            let net = net.trunc();
            if net.addr().is_loopback() || net.addr().is_multicast() || net.addr().octets()[0] == 0
            {
                return Err(usage(name, format!("subnet {net} is a reserved range")));
            }
            net
        }
        None => {
            taken.extend(routes.iter().map(|r| r.1));
            free_subnet(&taken).ok_or_else(|| usage(name, "no free subnet in 10.89.0.0/16"))?
        }
    };
    if let Some(o) = existing.iter().find(|n| overlaps(&n.subnet, &subnet)) {
        return Err(usage(
            name,
            format!("subnet {subnet} overlaps network {} ({})", o.name, o.subnet),
        ));
    }
    let bridge = req
        .bridge
        .clone()
        .unwrap_or_else(|| default_bridge(name, &existing));
    validate_ifname(name, &bridge)?;
    if let Some(o) = existing.iter().find(|n| n.bridge == bridge) {
        return Err(usage(
            name,
            format!("bridge {bridge} is network {}'s", o.name),
        ));
    }
    // A host route over the subnet through another interface than our own
    // bridge means the subnet is in use on this host.
    if let Some((dev, r)) = routes
        .iter()
        .find(|(dev, r)| *dev != bridge && overlaps(r, &subnet))
    {
        return Err(usage(
            name,
            format!("subnet {subnet} overlaps the host's route {r} on {dev}"),
        ));
    }
    let gateway = match &req.gateway {
        Some(g) => {
            let ip: Ipv4Addr = g
                .parse()
                .map_err(|e| usage(name, format!("invalid gateway {g:?}: {e}")))?;
            if !ipam::usable(&subnet, ip) {
                return Err(usage(
                    name,
                    format!("gateway {ip} is not a host address of {subnet}"),
                ));
            }
            ip
        }
        None => ipam::first_host(&subnet),
    };
    let (subnet6, gateway6) = ipv6_config(req, &existing)?;
    let net = Network {
        name: name.clone(),
        subnet,
        gateway,
        bridge,
        internal: req.internal,
        created: hull::timefmt::now(true),
        subnet6,
        gateway6,
    };
    save(store, &net)?;
    Ok(net)
}

/// The IPv6 half of `network create --ipv6 [--subnet CIDR6] [--gateway IP6]`.
fn ipv6_config(
    req: &CreateRequest,
    existing: &[Network],
) -> Result<(Option<Ipv6Net>, Option<Ipv6Addr>)> {
    let name = &req.name;
    if !req.ipv6 {
        if let Some(s) = req.subnet6.as_ref().or(req.gateway6.as_ref()) {
            return Err(usage(name, format!("{s} is IPv6: add --ipv6")));
        }
        return Ok((None, None));
    }
    let taken: Vec<Ipv6Net> = existing.iter().filter_map(|n| n.subnet6).collect();
    let overlaps6 = |a: &Ipv6Net, b: &Ipv6Net| a.contains(&b.network()) || b.contains(&a.network());
    let subnet = match &req.subnet6 {
        Some(s) => {
            let net: Ipv6Net = s
                .parse()
                .map_err(|e| usage(name, format!("invalid IPv6 subnet {s:?}: {e}")))?;
            if net.prefix_len() > 120 {
                return Err(usage(
                    name,
                    format!("IPv6 subnet {s} is too small (at most /120)"),
                ));
            }
            let net = net.trunc();
            let a = net.addr();
            if a.is_loopback() || a.is_multicast() || a.is_unspecified() {
                return Err(usage(
                    name,
                    format!("IPv6 subnet {net} is a reserved range"),
                ));
            }
            net
        }
        None => (0u16..=0xffff)
            .filter_map(|i| format!("fd89:0:0:{i:x}::/64").parse::<Ipv6Net>().ok())
            .find(|s| !taken.iter().any(|t| overlaps6(s, t)))
            .ok_or_else(|| usage(name, "no free IPv6 subnet in fd89::/48"))?,
    };
    if let Some(o) = existing
        .iter()
        .find(|n| n.subnet6.is_some_and(|t| overlaps6(&t, &subnet)))
    {
        return Err(usage(
            name,
            format!("IPv6 subnet {subnet} overlaps network {}", o.name),
        ));
    }
    let gateway = match &req.gateway6 {
        Some(g) => {
            let ip: Ipv6Addr = g
                .parse()
                .map_err(|e| usage(name, format!("invalid IPv6 gateway {g:?}: {e}")))?;
            if !ipam::usable6(&subnet, ip) {
                return Err(usage(
                    name,
                    format!("gateway {ip} is not a host address of {subnet}"),
                ));
            }
            ip
        }
        None => ipam::first_host6(&subnet),
    };
    Ok((Some(subnet), Some(gateway)))
}

/// `hull0` for the default network, `hull-<name>` (cut to 15 bytes, made
/// unique with a counter) for the others.
fn default_bridge(name: &str, existing: &[Network]) -> String {
    if name == DEFAULT_NETWORK {
        return DEFAULT_NETWORK.to_string();
    }
    let base: String = format!("hull-{name}").chars().take(15).collect();
    let mut cand = base.clone();
    let mut i = 1;
    while existing.iter().any(|n| n.bridge == cand) {
        let suffix = i.to_string();
        cand = format!("{}{suffix}", &base[..base.len().min(15 - suffix.len())]);
        i += 1;
    }
    cand
}

fn save(store: &Store, net: &Network) -> Result<()> {
    let data = serde_json::to_vec_pretty(net).map_err(|e| Error::json(&net.name, e))?;
    write_atomic(&record_path(store, &net.name), &data)
}

/// The network a container joins, the default one made on first use.
pub fn get_or_default(store: &Store, name: &str) -> Result<Network> {
    match load(store, name) {
        Err(Error::NotFound { .. }) if name == DEFAULT_NETWORK => {
            let _l = lock(store)?;
            match load(store, name) {
                Err(Error::NotFound { .. }) => create_locked(
                    store,
                    &CreateRequest {
                        name: name.to_string(),
                        ..Default::default()
                    },
                ),
                r => r,
            }
        }
        r => r,
    }
}

/// `network rm`: refused while a container holds a lease on it.
pub fn remove(store: &Store, name: &str) -> Result<()> {
    let _l = lock(store)?;
    load(store, name)?;
    let leases = ipam::live_leases(store, name)?;
    if !leases.is_empty() {
        let users: Vec<&str> = leases.values().map(String::as_str).collect();
        return Err(usage(
            name,
            format!("in use by container(s) {}", users.join(", ")),
        ));
    }
    remove_locked(store, name)?;
    drop(_l);
    // The server stops serving the gone network's gateway.
    dns::sync(store, None)
}

fn remove_locked(store: &Store, name: &str) -> Result<()> {
    let net = load(store, name)?;
    link::delete_bridge(&net)?;
    nft::remove_network(&net)?;
    nft6::remove_network(&net)?;
    for lp in [
        ipam::leases_path(store, name),
        ipam::leases6_path(store, name),
        dns::config_dir(store).join(name),
    ] {
        if let Err(e) = std::fs::remove_file(&lp) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(Error::io(&lp, e));
            }
        }
    }
    let p = record_path(store, name);
    std::fs::remove_file(&p).at(&p)
}

/// `network prune`: every network no container uses, but the default one.
pub fn prune(store: &Store) -> Result<Vec<String>> {
    let _l = lock(store)?;
    let mut out = Vec::new();
    for n in list(store)? {
        if n.name != DEFAULT_NETWORK && ipam::live_leases(store, &n.name)?.is_empty() {
            remove_locked(store, &n.name)?;
            out.push(n.name);
        }
    }
    drop(_l);
    if !out.is_empty() {
        dns::sync(store, None)?;
    }
    Ok(out)
}

/// `network inspect`, docker's shape.
pub fn inspect(store: &Store, net: &Network) -> Result<serde_json::Value> {
    let leases = ipam::leases(store, &net.name)?;
    let leases6 = ipam::leases6(store, &net.name)?;
    let containers: BTreeMap<String, serde_json::Value> = leases
        .iter()
        .map(|(ip, c)| {
            let v6 = match (leases6.iter().find(|(_, o)| *o == c), net.subnet6) {
                (Some((a, _)), Some(s)) => format!("{a}/{}", s.prefix_len()),
                _ => String::new(),
            };
            (
                c.clone(),
                serde_json::json!({"Name": c, "IPv4Address": format!("{ip}/{}", net.subnet.prefix_len()),
                    "IPv6Address": v6}),
            )
        })
        .collect();
    let mut config = vec![
        serde_json::json!({"Subnet": net.subnet.to_string(), "Gateway": net.gateway.to_string()}),
    ];
    if let (Some(s), Some(g)) = (net.subnet6, net.gateway6) {
        config.push(serde_json::json!({"Subnet": s.to_string(), "Gateway": g.to_string()}));
    }
    Ok(serde_json::json!({
        "Name": net.name,
        "Driver": "bridge",
        "Created": net.created,
        "Internal": net.internal,
        "EnableIPv6": net.subnet6.is_some(),
        "IPAM": {"Driver": "default", "Config": config},
        "Options": {"com.docker.network.bridge.name": net.bridge},
        "Containers": containers,
    }))
}

/// Give back every lease `container` holds (on its removal).
pub fn release_all(store: &Store, container: &str) -> Result<()> {
    for n in list(store)? {
        ipam::release(store, &n.name, container)?;
    }
    Ok(())
}
