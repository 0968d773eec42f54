//! A container on a network: what `run --network` decides at create time
//! (containers/<name>/network.json, the bind-mounted /etc files, a
//! createRuntime hook), and the hook itself, which runs between hull's
//! create and start with the container's init pid: lease, veth, address,
//! route, then the /etc/hosts of every container on the network.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::nft::{self, Publish};
use super::{dns, ipam, link, nft6, Network};
use crate::error::{Error, IoContext, Result};
use crate::store::Store;

/// The per-container options of `run`.
#[derive(Debug, Default, Clone)]
pub struct NetOptions {
    pub ip: Option<String>,
    pub ip6: Option<String>,
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
    /// `--ip6` (on a dual-stack network).
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    pub aliases: Vec<String>,
    pub add_hosts: Vec<(String, String)>,
    pub dns: Vec<String>,
    pub hostname: String,
    #[serde(default)]
    pub ports: Vec<Publish>,
    /// Networks joined by `network connect` while running (eth1, ...).
    #[serde(default)]
    pub connected: Vec<Connected>,
}

/// A network connected to a running container after its start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connected {
    pub network: String,
    /// The container's interface for it (eth1, eth2, ...).
    pub ifname: String,
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    pub aliases: Vec<String>,
}

impl Settings {
    /// The container's --network-alias names on `network`.
    pub fn aliases_on(&self, network: &str) -> Vec<String> {
        if network == self.network {
            return self.aliases.clone();
        }
        self.connected
            .iter()
            .find(|c| c.network == network)
            .map(|c| c.aliases.clone())
            .unwrap_or_default()
    }
    /// Every network the container is on, with its interface there.
    pub fn networks(&self) -> Vec<(String, String)> {
        std::iter::once((self.network.clone(), "eth0".to_string()))
            .chain(
                self.connected
                    .iter()
                    .map(|c| (c.network.clone(), c.ifname.clone())),
            )
            .collect()
    }
}

/// Names (aliases, hostnames) go into DNS config lines and /etc/hosts:
/// letters, digits, '-', '_', '.'.
fn check_name(container: &str, what: &str, n: &str) -> Result<()> {
    let ok = !n.is_empty()
        && n.len() <= 253
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "container {container}: {what} {n:?}: letters, digits, '-', '_', '.' only"
        )))
    }
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
    // The hostname lands in /etc/hosts and /etc/hostname.
    if let Some(h) = config["hostname"].as_str() {
        check_name(name, "--hostname", h)?;
    }
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
    let ip =
        o.ip.as_deref()
            .map(|s| want_ip(&net, s))
            .transpose()
            .map_err(bad)?;
    let ip6 = o
        .ip6
        .as_deref()
        .map(|s| want_ip6(&net, s))
        .transpose()
        .map_err(bad)?;
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
    for a in &o.aliases {
        check_name(name, "--network-alias", a)?;
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
        ip6,
        aliases: o.aliases.clone(),
        add_hosts,
        dns: o.dns.clone(),
        hostname,
        ports,
        connected: Vec::new(),
    }))
}

/// `--ip ADDR`: a host address of `net`'s subnet (whether another
/// container holds it is the lease's question, at start).
fn want_ip(net: &Network, s: &str) -> std::result::Result<Ipv4Addr, String> {
    let ip: Ipv4Addr = s.parse().map_err(|e| format!("--ip {s:?}: {e}"))?;
    if !ipam::usable(&net.subnet, ip) || ip == net.gateway {
        return Err(format!(
            "--ip {ip} is not a free host address of network {} ({})",
            net.name, net.subnet
        ));
    }
    Ok(ip)
}

/// `--ip6 ADDR`: the same for `net`'s IPv6 subnet.
fn want_ip6(net: &Network, s: &str) -> std::result::Result<Ipv6Addr, String> {
    let ip: Ipv6Addr = s.parse().map_err(|e| format!("--ip6 {s:?}: {e}"))?;
    match (net.subnet6, net.gateway6) {
        (Some(sub), Some(g)) if ipam::usable6(&sub, ip) && ip != g => Ok(ip),
        (Some(sub), _) => Err(format!(
            "--ip6 {ip} is not a free host address of network {} ({sub})",
            net.name
        )),
        (None, _) => Err(format!(
            "--ip6 {ip}: network {} has no IPv6 subnet (network create --ipv6 --subnet CIDR6)",
            net.name
        )),
    }
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
    let served = super::load(store, &s.network)
        .ok()
        .filter(|_| dns::available());
    std::fs::write(&p, resolv_conf(&s.dns, served.as_ref())).at(&p)?;
    let p = d.join("hosts");
    std::fs::write(&p, "127.0.0.1\tlocalhost\n").at(&p)
}

/// --dns if given; else the network's gateway when aardvark-dns serves
/// names there (it forwards other names to the host's nameservers), else
/// the host's nameservers (loopback ones cannot be reached from the
/// container). The host's search and options lines are kept.
fn resolv_conf(dns: &[String], served: Option<&Network>) -> String {
    let mut out = String::new();
    if dns.is_empty() {
        if let Some(net) = served {
            out.push_str(&format!("nameserver {}\n", net.gateway));
            if let Some(g) = net.gateway6 {
                out.push_str(&format!("nameserver {g}\n"));
            }
        }
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        for l in host.lines() {
            let mut f = l.split_whitespace();
            match (f.next(), f.next()) {
                (Some("nameserver"), Some(a))
                    if served.is_none() && !a.starts_with("127.") && a != "::1" =>
                {
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

/// Whether the container a rule's tag names may still exist: a tag that
/// is a directory (IPv6 ones of ethN: `DIR#ethN`) is stale once the
/// directory is gone; an id tag (a long path) is never judged stale.
fn live_tag(t: &str) -> bool {
    let dir = t.split('#').next().unwrap_or(t);
    !dir.starts_with('/') || std::path::Path::new(dir).is_dir()
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
    note_init(store, name, pid)?;
    join(store, name, id, pid, &net, "eth0", (s.ip, s.ip6), &s.ports)?;
    if let Err(e) = refresh_hosts(store, &net).and_then(|()| dns::sync(store, Some(name))) {
        let _ = teardown(store, name, id);
        return Err(e);
    }
    Ok(())
}

/// The start time of process `pid` (field 22 of /proc/PID/stat): with
/// the pid, it names one process even across pid reuse.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(") ")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    if matches!(f.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    f.get(19)?.parse().ok()
}

fn init_path(store: &Store, name: &str) -> PathBuf {
    dir(store, name).join("network.init")
}

/// Note the init the hook set up ("PID STARTTIME"), for [`noted_init_alive`].
fn note_init(store: &Store, name: &str, pid: i32) -> Result<()> {
    let st = start_time(pid).unwrap_or(0);
    crate::store::write_replace(
        &init_path(store, name),
        format!("{pid} {st}").as_bytes(),
        false,
    )
}

/// Whether the init noted by the container's last setup still lives.
pub fn noted_init_alive(store: &Store, name: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(init_path(store, name)) else {
        return false;
    };
    let mut f = text
        .split_whitespace()
        .filter_map(|x| x.parse::<u64>().ok());
    match (f.next(), f.next()) {
        (Some(pid), Some(st)) => i32::try_from(pid)
            .ok()
            .and_then(start_time)
            .is_some_and(|s| s == st),
        _ => false,
    }
}

/// The tag of a container's IPv6 rules for its interface `ifname`.
fn tag6(store: &Store, name: &str, ifname: &str) -> String {
    let t = rule_tag(store, name);
    if ifname == "eth0" {
        t
    } else {
        format!("{t}#{ifname}")
    }
}

/// Connect the running container (init `pid`) to `net` as `ifname`:
/// leases, veth, addresses, nftables rules. A failure undoes all of it.
#[allow(clippy::too_many_arguments)]
fn join(
    store: &Store,
    name: &str,
    id: &str,
    pid: i32,
    net: &Network,
    ifname: &str,
    (want, want6): (Option<Ipv4Addr>, Option<Ipv6Addr>),
    ports: &[Publish],
) -> Result<()> {
    let leased = (|| -> Result<(Ipv4Addr, Option<Ipv6Addr>)> {
        let ip = ipam::allocate(store, net, name, want)?;
        let ip6 = match (net.subnet6, net.gateway6) {
            (Some(s), Some(g)) => Some(ipam::allocate6(store, net, &s, g, name, want6)?),
            _ => None,
        };
        Ok((ip, ip6))
    })();
    let (ip, ip6) = match leased {
        Ok(x) => x,
        Err(e) => {
            let _ = ipam::release(store, &net.name, name);
            return Err(e);
        }
    };
    let tag = rule_tag(store, name);
    let attached = (|| {
        // One setup at a time: the bridge and the network's masquerade
        // rule are made by whoever comes first.
        let _l = super::lock(store)?;
        link::attach(net, id, pid, ip, ip6, ifname)?;
        if !ports.is_empty() {
            nft::route_localnet(&net.bridge)?;
        }
        // Repair after a crash as well: rules of containers that are gone.
        nft::add(net, &tag, ip, ports, live_tag)?;
        if let Some(ip6) = ip6 {
            nft6::add(net, &tag6(store, name, ifname), ip6, live_tag)?;
        }
        Ok(())
    })();
    if let Err(e) = attached {
        link::detach_on(id, ifname);
        if ifname == "eth0" {
            let _ = nft::remove(&tag);
        }
        let _ = nft6::remove(&tag6(store, name, ifname));
        let _ = ipam::release(store, &net.name, name);
        return Err(e);
    }
    Ok(())
}

/// The pid of a running container's init.
fn running_pid(store: &Store, name: &str) -> Option<i32> {
    hull::Container::load(&crate::container::hull_store(store), name)
        .ok()
        .filter(|c| matches!(c.status(), hull::Status::Running | hull::Status::Paused))
        .map(|c| c.state.pid)
}

/// `network connect NET CONTAINER`: a running container joins one more
/// network as eth1, eth2, ... (with its leases, rules and DNS names).
pub fn connect(
    store: &Store,
    network: &str,
    container: &str,
    ip: Option<&str>,
    ip6: Option<&str>,
    aliases: &[String],
) -> Result<()> {
    let rec = crate::container::record::find(store, container)?;
    let name = rec.name.clone();
    let bad = |m: String| Error::Usage(format!("network connect {network} {name}: {m}"));
    let mut s = load_settings(store, &name).ok_or_else(|| {
        bad("the container has no network of hullctl's (--network none, host or container:)".into())
    })?;
    let pid =
        running_pid(store, &name).ok_or_else(|| bad("the container is not running".into()))?;
    let net = super::get_or_default(store, network)?;
    if s.networks().iter().any(|(n, _)| *n == net.name) {
        return Err(bad("already connected".into()));
    }
    for a in aliases {
        check_name(&name, "--alias", a)?;
    }
    let want = ip.map(|t| want_ip(&net, t)).transpose().map_err(bad)?;
    let want6 = ip6.map(|t| want_ip6(&net, t)).transpose().map_err(bad)?;
    let used: Vec<String> = s.networks().into_iter().map(|(_, i)| i).collect();
    let ifname = (1..)
        .map(|i| format!("eth{i}"))
        .find(|i| !used.contains(i))
        .unwrap_or_else(|| "eth1".into());
    let before = s.clone();
    s.connected.push(Connected {
        network: net.name.clone(),
        ifname: ifname.clone(),
        ip: want,
        ip6: want6,
        aliases: aliases.to_vec(),
    });
    save_settings(store, &name, &s)?;
    let joined = join(
        store,
        &name,
        &rec.id,
        pid,
        &net,
        &ifname,
        (want, want6),
        &[],
    )
    .and_then(|()| refresh_hosts(store, &net))
    .and_then(|()| dns::sync(store, None));
    if let Err(e) = joined {
        link::detach_on(&rec.id, &ifname);
        let _ = nft6::remove(&tag6(store, &name, &ifname));
        let _ = ipam::release(store, &net.name, &name);
        let _ = save_settings(store, &name, &before);
        let _ = dns::sync(store, None);
        return Err(e);
    }
    Ok(())
}

/// `network disconnect NET CONTAINER`: undo a `network connect`.
pub fn disconnect(store: &Store, network: &str, container: &str) -> Result<()> {
    let rec = crate::container::record::find(store, container)?;
    let name = rec.name.clone();
    let bad = |m: String| Error::Usage(format!("network disconnect {network} {name}: {m}"));
    let mut s = load_settings(store, &name)
        .ok_or_else(|| bad("the container is on no network of hullctl's".into()))?;
    if s.network == network {
        return Err(bad(
            "that is the network the container was started on (rm the container instead)".into(),
        ));
    }
    let Some(pos) = s.connected.iter().position(|c| c.network == network) else {
        return Err(bad("not connected".into()));
    };
    let c = s.connected.remove(pos);
    link::detach_on(&rec.id, &c.ifname);
    nft6::remove(&tag6(store, &name, &c.ifname))?;
    ipam::release(store, &c.network, &name)?;
    save_settings(store, &name, &s)?;
    if let Ok(net) = super::load(store, &c.network) {
        refresh_hosts(store, &net)?;
    }
    dns::sync(store, None)
}

fn save_settings(store: &Store, name: &str, s: &Settings) -> Result<()> {
    let data = serde_json::to_vec_pretty(s).map_err(|e| Error::json("network.json", e))?;
    crate::store::write_replace(&settings_path(store, name), &data, false)
}

/// The container stopped: its names leave DNS (its lease stays until rm,
/// so a restart gets the same address).
pub fn stopped(store: &Store, name: &str) -> Result<()> {
    if load_settings(store, name).is_none() {
        return Ok(()); // on no network of ours: nothing to do
    }
    dns::sync(store, None)
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
        ip6: None,
        aliases: Vec::new(),
        add_hosts: Vec::new(),
        dns: Vec::new(),
        hostname: name.to_string(),
        ports,
        connected: Vec::new(),
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

/// Rewrite /etc/hosts of every container on `net` (in place: it is
/// bind-mounted). With aardvark-dns serving names, each lists itself
/// only (as docker's do: names of others come from DNS, current at every
/// query); without, each lists every container of the network.
pub fn refresh_hosts(store: &Store, net: &Network) -> Result<()> {
    let leases = ipam::leases(store, &net.name)?;
    let line = |ip: &Ipv4Addr, c: &String| {
        let mut names = vec![c.clone()];
        if let Some(s) = load_settings(store, c) {
            if s.hostname != *c {
                names.push(s.hostname.clone());
            }
            names.extend(s.aliases_on(&net.name));
        }
        format!("{ip}\t{}\n", names.join(" "))
    };
    let by_dns = dns::available();
    let entries: String = leases.iter().map(|(ip, c)| line(ip, c)).collect();
    for (ip, c) in &leases {
        let Some(s) = load_settings(store, c) else {
            continue;
        };
        if s.network != net.name {
            continue; // its hosts file is its first network's
        }
        let mut text =
            String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for (h, a) in &s.add_hosts {
            text.push_str(&format!("{a}\t{h}\n"));
        }
        if by_dns {
            text.push_str(&line(ip, c));
        } else {
            text.push_str(&entries);
        }
        let p = dir(store, c).join("hosts");
        if std::fs::read_to_string(&p).is_ok_and(|old| old == text) {
            continue; // unchanged (with DNS, the others' always are)
        }
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

/// docker's `NetworkSettings` of a container: its networks (the first
/// and the connected ones) with their addresses, and published ports (`{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}`).
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
    let mut networks = serde_json::Map::new();
    for (n, _) in s.networks() {
        let ip = ipam::leases(store, &n)
            .ok()
            .and_then(|l| l.into_iter().find(|(_, c)| c == name).map(|(ip, _)| ip));
        let ip6 = ipam::leases6(store, &n)
            .ok()
            .and_then(|l| l.into_iter().find(|(_, c)| c == name).map(|(ip, _)| ip));
        let net = super::load(store, &n).ok();
        networks.insert(
            n.clone(),
            json!({
                "IPAddress": ip.map(|i| i.to_string()).unwrap_or_default(),
                "IPPrefixLen": net.as_ref().map(|n| n.subnet.prefix_len()).unwrap_or(0),
                "GlobalIPv6Address": ip6.map(|i| i.to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": net
                    .as_ref()
                    .and_then(|n| n.subnet6)
                    .map(|s| s.prefix_len())
                    .unwrap_or(0),
                "Aliases": s.aliases_on(&n),
            }),
        );
    }
    json!({
        "Networks": networks,
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

/// On removal: the leases, the host veths (if the namespace outlived
/// us), the rules, the DNS names and the other containers' /etc/hosts.
pub fn teardown(store: &Store, name: &str, id: &str) -> Result<()> {
    let s = load_settings(store, name);
    let nets = s.as_ref().map(Settings::networks).unwrap_or_default();
    for (_, ifname) in &nets {
        link::detach_on(id, ifname);
    }
    if s.is_none() {
        link::detach(id);
    }
    if s.is_some() {
        let tag = rule_tag(store, name);
        nft::remove(&tag)?;
        let prefix = format!("{tag}#");
        nft6::remove_where(|t| t == tag || t.starts_with(&prefix))?;
    }
    super::release_all(store, name)?;
    for (n, _) in &nets {
        if let Ok(net) = super::load(store, n) {
            refresh_hosts(store, &net)?;
        }
    }
    if s.is_some() {
        dns::sync(store, None)?;
    }
    Ok(())
}
