//! A container on a network: what `run --network` decides at create time
//! (containers/<name>/network.json, the bind-mounted /etc files, a
//! createRuntime hook), and the hook itself, which runs between hull's
//! create and start with the container's init pid: lease, veth, address,
//! route, then the /etc/hosts of every container on the network.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::nft::{self, Publish};
use super::{ipam, link, Network};
use crate::error::{Error, IoContext, Result};
use crate::store::Store;

/// The per-container options of `run`.
#[derive(Debug, Default, Clone)]
pub struct NetOptions {
    pub ip: Option<String>,
    pub add_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub aliases: Vec<String>,
    /// -p specs; -P publishes `exposed` on free host ports.
    pub publish: Vec<String>,
    pub publish_all: bool,
    /// The image's ExposedPorts ("80/tcp").
    pub exposed: Vec<String>,
}

/// containers/<name>/network.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub network: String,
    pub ip: Option<Ipv4Addr>,
    pub aliases: Vec<String>,
    pub add_hosts: Vec<(String, String)>,
    pub dns: Vec<String>,
    pub hostname: String,
    #[serde(default)]
    pub ports: Vec<Publish>,
}

fn dir(store: &Store, name: &str) -> PathBuf {
    store.containers_dir().join(name)
}

fn settings_path(store: &Store, name: &str) -> PathBuf {
    dir(store, name).join("network.json")
}

pub fn load_settings(store: &Store, name: &str) -> Option<Settings> {
    let d = std::fs::read(settings_path(store, name)).ok()?;
    serde_json::from_slice(&d).ok()
}

/// Decide the container's networking from `--network` and friends and
/// shape `config` for it. Validates everything; makes nothing (see
/// [`write_files`]). None: no hullctl network (none, host, container:).
pub fn prepare(
    store: &Store,
    name: &str,
    mode: &str,
    o: &NetOptions,
    config: &mut Value,
) -> Result<Option<Settings>> {
    if let Some(other) = mode.strip_prefix("container:") {
        join_container(store, name, other, config)?;
        return Ok(None);
    }
    let net_name = match mode {
        "none" | "host" => return Ok(None),
        "bridge" | "default" => super::DEFAULT_NETWORK,
        n => n,
    };
    let net = super::get_or_default(store, net_name)?;
    let bad = |m: String| Error::Usage(format!("container {name}: {m}"));
    let ip = match &o.ip {
        Some(s) => {
            let ip: Ipv4Addr = s.parse().map_err(|e| bad(format!("--ip {s:?}: {e}")))?;
            if !ipam::usable(&net.subnet, ip) || ip == net.gateway {
                return Err(bad(format!(
                    "--ip {ip} is not a free host address of network {} ({})",
                    net.name, net.subnet
                )));
            }
            Some(ip)
        }
        None => None,
    };
    let mut add_hosts = Vec::new();
    for h in &o.add_hosts {
        let (host, addr) = h
            .split_once(':')
            .filter(|(h, a)| !h.is_empty() && a.parse::<std::net::IpAddr>().is_ok())
            .ok_or_else(|| bad(format!("--add-host {h:?}: want HOST:IP")))?;
        add_hosts.push((host.to_string(), addr.to_string()));
    }
    for d in &o.dns {
        d.parse::<std::net::IpAddr>()
            .map_err(|e| bad(format!("--dns {d:?}: {e}")))?;
    }
    let ports = publish(store, name, o)?;
    let hostname = config["hostname"].as_str().unwrap_or(name).to_string();
    let exe = std::env::current_exe().map_err(|e| Error::io("/proc/self/exe", e))?;
    let root = store.root().display().to_string();
    config["hooks"]["createRuntime"] = json!([{
        "path": exe,
        "args": ["hullctl", "--root", root, "network", "hook"],
    }]);
    for f in ["hosts", "hostname", "resolv.conf"] {
        if let Some(a) = config["mounts"].as_array_mut() {
            a.push(json!({"destination": format!("/etc/{f}"), "type": "bind",
                "source": dir(store, name).join(f), "options": ["rbind", "rprivate"]}));
        }
    }
    Ok(Some(Settings {
        network: net.name,
        ip,
        aliases: o.aliases.clone(),
        add_hosts,
        dns: o.dns.clone(),
        hostname,
        ports,
    }))
}

/// Parse `-p [hostip:]hostport:containerport[/tcp|udp]` and `-P`; refuse a
/// host port another container publishes or something on the host binds.
fn publish(store: &Store, name: &str, o: &NetOptions) -> Result<Vec<Publish>> {
    let bad = |m: String| Error::Usage(format!("container {name}: {m}"));
    let mut out = Vec::new();
    for spec in &o.publish {
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, p @ ("tcp" | "udp"))) => (r, p),
            Some(_) => return Err(bad(format!("-p {spec:?}: the protocol is tcp or udp"))),
            None => (spec.as_str(), "tcp"),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let port = |s: &str| {
            s.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad(format!("-p {spec:?}: invalid port {s:?}")))
        };
        let (host_ip, hp, cp) = match parts.as_slice() {
            [h, c] => (None, port(h)?, port(c)?),
            [ip, h, c] => {
                let ip: Ipv4Addr = ip.parse().map_err(|e| bad(format!("-p {spec:?}: {e}")))?;
                (Some(ip), port(h)?, port(c)?)
            }
            _ => {
                return Err(bad(format!(
                    "-p {spec:?}: want [hostip:]hostport:containerport[/proto]"
                )))
            }
        };
        out.push(Publish {
            host_ip,
            host_port: hp,
            container_port: cp,
            proto: proto.into(),
        });
    }
    if o.publish_all {
        for e in &o.exposed {
            let (p, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
            let Ok(cp) = p.parse::<u16>() else { continue };
            let hp = free_port(proto).map_err(|e| bad(format!("-P: no free port: {e}")))?;
            out.push(Publish {
                host_ip: None,
                host_port: hp,
                container_port: cp,
                proto: proto.into(),
            });
        }
    }
    for p in &out {
        let taken = crate::container::record::list(store)?
            .into_iter()
            .find(|r| {
                load_settings(store, &r.name).is_some_and(|s| {
                    s.ports
                        .iter()
                        .any(|q| q.host_port == p.host_port && q.proto == p.proto)
                })
            });
        if let Some(r) = taken {
            return Err(bad(format!(
                "host port {}/{} is already published by container {}",
                p.host_port, p.proto, r.name
            )));
        }
        if let Err(e) = bindable(p) {
            return Err(bad(format!(
                "host port {}/{} is in use on the host: {e}",
                p.host_port, p.proto
            )));
        }
    }
    Ok(out)
}

fn bindable(p: &Publish) -> std::io::Result<()> {
    let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    match p.proto.as_str() {
        "udp" => std::net::UdpSocket::bind((ip, p.host_port)).map(drop),
        _ => std::net::TcpListener::bind((ip, p.host_port)).map(drop),
    }
}

/// A port the kernel has free now (bind to port 0, read it, let go).
fn free_port(proto: &str) -> std::io::Result<u16> {
    match proto {
        "udp" => std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?
            .local_addr()
            .map(|a| a.port()),
        _ => std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?
            .local_addr()
            .map(|a| a.port()),
    }
}

/// `--network container:OTHER`: OTHER's namespace (it must run) and its
/// /etc files.
fn join_container(store: &Store, name: &str, other: &str, config: &mut Value) -> Result<()> {
    let rec = crate::container::record::find(store, other)?;
    let pid = hull::Container::load(&crate::container::hull_store(store), &rec.name)
        .ok()
        .filter(|c| c.status() == hull::Status::Running)
        .map(|c| c.state.pid)
        .ok_or_else(|| {
            Error::Usage(format!(
                "container {name}: --network container:{other}: {other} is not running"
            ))
        })?;
    if let Some(ns) = config["linux"]["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "network", "path": format!("/proc/{pid}/ns/net")}));
    }
    for f in ["hosts", "resolv.conf"] {
        let src = dir(store, &rec.name).join(f);
        if src.exists() {
            if let Some(a) = config["mounts"].as_array_mut() {
                a.push(json!({"destination": format!("/etc/{f}"), "type": "bind",
                    "source": src, "options": ["rbind", "rprivate"]}));
            }
        }
    }
    Ok(())
}

/// Write network.json and the /etc files (placeholders the hook fills
/// in place: they are bind-mounted, so their inodes must stay).
pub fn write_files(store: &Store, name: &str, s: &Settings) -> Result<()> {
    let d = dir(store, name);
    let data = serde_json::to_vec_pretty(s).map_err(|e| Error::json("network.json", e))?;
    crate::store::write_replace(&settings_path(store, name), &data, false)?;
    let p = d.join("hostname");
    std::fs::write(&p, format!("{}\n", s.hostname)).at(&p)?;
    let p = d.join("resolv.conf");
    std::fs::write(&p, resolv_conf(&s.dns)).at(&p)?;
    let p = d.join("hosts");
    std::fs::write(&p, "127.0.0.1\tlocalhost\n").at(&p)
}

/// The host's nameservers (loopback ones cannot be reached from the
/// container), or --dns.
fn resolv_conf(dns: &[String]) -> String {
    let mut out = String::new();
    if dns.is_empty() {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        for l in host.lines() {
            let mut f = l.split_whitespace();
            match (f.next(), f.next()) {
                (Some("nameserver"), Some(a)) if !a.starts_with("127.") && a != "::1" => {
                    out.push_str(&format!("nameserver {a}\n"))
                }
                (Some("search" | "options"), _) => out.push_str(&format!("{l}\n")),
                _ => {}
            }
        }
    }
    for d in dns {
        out.push_str(&format!("nameserver {d}\n"));
    }
    out
}

/// The comment on a container's nftables rules: its directory, so the
/// next setup can tell a stale rule (directory gone) from one of another
/// store's container; the id when the path is too long for a comment.
pub fn rule_tag(store: &Store, name: &str) -> String {
    let p = dir(store, name).display().to_string();
    if p.len() <= 120 {
        return p;
    }
    crate::container::record::find(store, name)
        .map(|r| r.id)
        .unwrap_or_else(|_| name.to_string())
}

/// `network hook` (createRuntime): the OCI state on stdin names the
/// container and its init pid.
pub fn hook(store: &Store) -> Result<()> {
    let mut state = String::new();
    std::io::stdin().read_to_string(&mut state).at("stdin")?;
    let v: Value = serde_json::from_str(&state).map_err(|e| Error::json("hook state", e))?;
    let name = v["id"].as_str().unwrap_or_default().to_string();
    let pid = v["pid"].as_i64().unwrap_or(0) as i32;
    let s = load_settings(store, &name)
        .ok_or_else(|| Error::not_found("network settings of container", &name))?;
    let rec = crate::container::record::find(store, &name)?;
    setup(store, &name, &rec.id, pid, &s)
}

/// Lease, veth, address and route, rules; on failure all of it undone.
fn setup(store: &Store, name: &str, id: &str, pid: i32, s: &Settings) -> Result<()> {
    let net = super::load(store, &s.network)?;
    let ip = ipam::allocate(store, &net, name, s.ip)?;
    let attached = (|| {
        // One setup at a time: the bridge and the network's masquerade
        // rule are made by whoever comes first.
        let _l = super::lock(store)?;
        link::attach(&net, id, pid, ip)?;
        if !s.ports.is_empty() {
            nft::route_localnet(&net.bridge)?;
        }
        // Repair after a crash as well: rules of containers that are gone.
        nft::add(&net, &rule_tag(store, name), ip, &s.ports, |t| {
            !t.starts_with('/') || std::path::Path::new(t).is_dir()
        })
    })();
    if let Err(e) = attached {
        link::detach(id);
        let _ = nft::remove(&rule_tag(store, name));
        let _ = ipam::release(store, &net.name, name);
        return Err(e);
    }
    refresh_hosts(store, &net)
}

/// `network attach` (hidden): [`hook`]'s work for the namespace of `pid`
/// without a container (a directory with network.json stands for it).
pub fn attach_pid(
    store: &Store,
    name: &str,
    network: &str,
    pid: i32,
    publish_specs: Vec<String>,
) -> Result<()> {
    hull::state::validate_id(name).map_err(|e| Error::Usage(format!("{name:?}: {e}")))?;
    let o = NetOptions {
        publish: publish_specs,
        ..Default::default()
    };
    let net = super::load(store, network)?;
    let ports = publish(store, name, &o)?;
    let d = dir(store, name);
    std::fs::create_dir(&d).at(&d)?;
    let s = Settings {
        network: net.name,
        ip: None,
        aliases: Vec::new(),
        add_hosts: Vec::new(),
        dns: Vec::new(),
        hostname: name.to_string(),
        ports,
    };
    let r = write_files(store, name, &s).and_then(|()| setup(store, name, name, pid, &s));
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&d);
    }
    r
}

/// `network detach` (hidden): undo [`attach_pid`].
pub fn detach_pid(store: &Store, name: &str) -> Result<()> {
    let d = dir(store, name);
    if load_settings(store, name).is_none() {
        return Err(Error::not_found("network attachment", name));
    }
    teardown(store, name, name)?;
    std::fs::remove_dir_all(&d).at(&d)
}

/// Rewrite /etc/hosts of every container on `net` (in place): each sees
/// every other by name and alias, including ones started later.
pub fn refresh_hosts(store: &Store, net: &Network) -> Result<()> {
    let leases = ipam::leases(store, &net.name)?;
    let mut entries = String::new();
    for (ip, c) in &leases {
        let mut names = vec![c.clone()];
        if let Some(s) = load_settings(store, c) {
            if s.hostname != *c {
                names.push(s.hostname.clone());
            }
            names.extend(s.aliases);
        }
        entries.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    for c in leases.values() {
        let Some(s) = load_settings(store, c) else {
            continue;
        };
        let mut text =
            String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for (h, a) in &s.add_hosts {
            text.push_str(&format!("{a}\t{h}\n"));
        }
        text.push_str(&entries);
        let p = dir(store, c).join("hosts");
        // Truncate and write the same inode: the container bind-mounts it.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
        {
            f.write_all(text.as_bytes()).at(&p)?;
        }
    }
    Ok(())
}

/// docker's `NetworkSettings` of a container: its network, address and
/// published ports (`{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}`).
pub fn network_settings(store: &Store, name: &str) -> Value {
    let Some(s) = load_settings(store, name) else {
        return json!({"Networks": {}, "Ports": {}});
    };
    let mut ports = serde_json::Map::new();
    for p in &s.ports {
        let e = ports
            .entry(format!("{}/{}", p.container_port, p.proto))
            .or_insert_with(|| json!([]));
        if let Some(a) = e.as_array_mut() {
            a.push(json!({
                "HostIp": p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
                "HostPort": p.host_port.to_string(),
            }));
        }
    }
    let ip = ipam::leases(store, &s.network)
        .ok()
        .and_then(|l| l.into_iter().find(|(_, c)| c == name).map(|(ip, _)| ip));
    let prefix = super::load(store, &s.network)
        .map(|n| n.subnet.prefix_len())
        .unwrap_or(0);
    json!({
        "Networks": {s.network.clone(): {
            "IPAddress": ip.map(|i| i.to_string()).unwrap_or_default(),
            "IPPrefixLen": prefix,
            "Aliases": s.aliases,
        }},
        "Ports": ports,
    })
}

/// `port NAME`: docker's lines, `80/tcp -> 0.0.0.0:8080`.
pub fn port_lines(store: &Store, name: &str) -> Vec<String> {
    load_settings(store, name)
        .map(|s| {
            s.ports
                .iter()
                .map(|p| {
                    format!(
                        "{}/{} -> {}:{}",
                        p.container_port,
                        p.proto,
                        p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                        p.host_port
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// On removal: the lease, the host veth (if the namespace outlived us),
/// and the other containers' /etc/hosts.
pub fn teardown(store: &Store, name: &str, id: &str) -> Result<()> {
    let s = load_settings(store, name);
    link::detach(id);
    if s.is_some() {
        nft::remove(&rule_tag(store, name))?;
    }
    super::release_all(store, name)?;
    if let Some(s) = s {
        if let Ok(net) = super::load(store, &s.network) {
            refresh_hosts(store, &net)?;
        }
    }
    Ok(())
}
