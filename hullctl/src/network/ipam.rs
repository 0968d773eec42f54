//! IPAM: per-network leases (address -> container), persisted next to the
//! network's record and changed only under the networks lock, so two
//! concurrent runs never get the same address. A lease whose container is
//! gone (a crash, a reboot) is reclaimed the next time leases are read
//! for a change.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ipnet::{Ipv4Net, Ipv6Net};

use super::{lock, Network};
use crate::error::{Error, Result};
use crate::store::{write_atomic, Store};

pub type Leases = BTreeMap<Ipv4Addr, String>;
/// The IPv6 leases of a dual-stack network (networks/<name>.leases6).
pub type Leases6 = BTreeMap<Ipv6Addr, String>;

pub fn leases_path(store: &Store, network: &str) -> PathBuf {
    super::dir(store).join(format!("{network}.leases"))
}

/// A host address of `net`: neither its network nor broadcast address.
pub fn usable(net: &Ipv4Net, ip: Ipv4Addr) -> bool {
    net.contains(&ip) && ip != net.network() && ip != net.broadcast()
}

pub fn first_host(net: &Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + 1)
}

/// The leases as stored (no repair).
pub fn leases(store: &Store, network: &str) -> Result<Leases> {
    let p = leases_path(store, network);
    match std::fs::read(&p) {
        Ok(d) => serde_json::from_slice(&d).map_err(|e| Error::json(p.display().to_string(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Leases::new()),
        Err(e) => Err(Error::io(&p, e)),
    }
}

fn save(store: &Store, network: &str, l: &Leases) -> Result<()> {
    let data = serde_json::to_vec_pretty(l).map_err(|e| Error::json(network, e))?;
    write_atomic(&leases_path(store, network), &data)
}

fn container_exists(store: &Store, name: &str) -> bool {
    store.containers_dir().join(name).is_dir()
}

/// The leases of containers that still exist; stale ones are dropped and
/// the file rewritten. The caller holds the networks lock.
pub fn live_leases(store: &Store, network: &str) -> Result<Leases> {
    let all = leases(store, network)?;
    let live: Leases = all
        .iter()
        .filter(|(_, c)| container_exists(store, c))
        .map(|(ip, c)| (*ip, c.clone()))
        .collect();
    if live.len() != all.len() {
        save(store, network, &live)?;
    }
    Ok(live)
}

/// Lease an address of `net` to `container`: `want` if given (and free),
/// else the lowest free one. A container holding a lease keeps it.
pub fn allocate(
    store: &Store,
    net: &Network,
    container: &str,
    want: Option<Ipv4Addr>,
) -> Result<Ipv4Addr> {
    let _l = lock(store)?;
    let mut l = live_leases(store, &net.name)?;
    let err = |msg: String| {
        Error::Usage(format!(
            "network {}: container {container}: {msg}",
            net.name
        ))
    };
    if let Some((ip, _)) = l.iter().find(|(_, c)| *c == container) {
        return Ok(*ip);
    }
    let ip = match want {
        Some(ip) => {
            if !usable(&net.subnet, ip) || ip == net.gateway {
                return Err(err(format!(
                    "--ip {ip} is not a free host address of {}",
                    net.subnet
                )));
            }
            if let Some(c) = l.get(&ip) {
                return Err(err(format!("--ip {ip} is already leased to container {c}")));
            }
            ip
        }
        None => net
            .subnet
            .hosts()
            .find(|ip| *ip != net.gateway && !l.contains_key(ip))
            .ok_or_else(|| err(format!("no free address left in {}", net.subnet)))?,
    };
    l.insert(ip, container.to_string());
    save(store, &net.name, &l)?;
    Ok(ip)
}

/// Give back `container`'s leases on `network` (if any).
pub fn release(store: &Store, network: &str, container: &str) -> Result<()> {
    let _l = lock(store)?;
    let mut l = leases(store, network)?;
    let n = l.len();
    l.retain(|_, c| c != container);
    if l.len() != n {
        save(store, network, &l)?;
    }
    let mut l6 = leases6(store, network)?;
    let n = l6.len();
    l6.retain(|_, c| c != container);
    if l6.len() != n {
        save6(store, network, &l6)?;
    }
    Ok(())
}

pub fn leases6_path(store: &Store, network: &str) -> PathBuf {
    super::dir(store).join(format!("{network}.leases6"))
}

pub fn leases6(store: &Store, network: &str) -> Result<Leases6> {
    let p = leases6_path(store, network);
    match std::fs::read(&p) {
        Ok(d) => serde_json::from_slice(&d).map_err(|e| Error::json(p.display().to_string(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Leases6::new()),
        Err(e) => Err(Error::io(&p, e)),
    }
}

fn save6(store: &Store, network: &str, l: &Leases6) -> Result<()> {
    let data = serde_json::to_vec_pretty(l).map_err(|e| Error::json(network, e))?;
    write_atomic(&leases6_path(store, network), &data)
}

/// A host address of an IPv6 subnet (not its subnet-router anycast
/// address, the all-zero host part).
pub fn usable6(net: &Ipv6Net, ip: Ipv6Addr) -> bool {
    net.contains(&ip) && ip != net.network()
}

pub fn first_host6(net: &Ipv6Net) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(net.network()) + 1)
}

/// The IPv6 twin of [`allocate`] on a dual-stack network: `want`, else
/// the lowest free address; stale leases reclaimed the same way.
pub fn allocate6(
    store: &Store,
    net: &Network,
    subnet: &Ipv6Net,
    gateway: Ipv6Addr,
    container: &str,
    want: Option<Ipv6Addr>,
) -> Result<Ipv6Addr> {
    let _l = lock(store)?;
    let all = leases6(store, &net.name)?;
    let mut l: Leases6 = all
        .iter()
        .filter(|(_, c)| container_exists(store, c))
        .map(|(ip, c)| (*ip, c.clone()))
        .collect();
    if let Some((ip, _)) = l.iter().find(|(_, c)| *c == container) {
        let ip = *ip;
        if l.len() != all.len() {
            save6(store, &net.name, &l)?;
        }
        return Ok(ip);
    }
    let err = |msg: String| {
        Error::Usage(format!(
            "network {}: container {container}: {msg}",
            net.name
        ))
    };
    let ip = match want {
        Some(ip) => {
            if !usable6(subnet, ip) || ip == gateway {
                return Err(err(format!(
                    "--ip6 {ip} is not a free host address of {subnet}"
                )));
            }
            if let Some(c) = l.get(&ip) {
                return Err(err(format!(
                    "--ip6 {ip} is already leased to container {c}"
                )));
            }
            ip
        }
        None => {
            let base = u128::from(subnet.network());
            let size = 1u128
                .checked_shl(128 - u32::from(subnet.prefix_len()))
                .unwrap_or(u128::MAX);
            (1..size.min(1 << 20))
                .map(|i| Ipv6Addr::from(base + i))
                .find(|ip| *ip != gateway && !l.contains_key(ip))
                .ok_or_else(|| err(format!("no free address left in {subnet}")))?
        }
    };
    l.insert(ip, container.to_string());
    save6(store, &net.name, &l)?;
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{create, CreateRequest};

    /// Threads take the networks lock through their own open file (flock
    /// is per open file), as concurrent hullctl processes do.
    #[test]
    fn concurrent_allocations_are_distinct_and_released() {
        let dir = std::env::temp_dir().join(crate::store::tmp_name("ipam-test"));
        let store = Store::open(&dir).unwrap();
        let net = create(
            &store,
            &CreateRequest {
                name: "n".into(),
                subnet: Some("10.234.7.0/24".into()),
                bridge: Some("hull-ipamtest".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let names: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
        for n in &names {
            std::fs::create_dir_all(store.containers_dir().join(n)).unwrap();
        }
        let got: Vec<Ipv4Addr> = std::thread::scope(|s| {
            let hs: Vec<_> = names
                .chunks(5)
                .map(|chunk| {
                    let (store, net) = (&store, &net);
                    s.spawn(move || {
                        chunk
                            .iter()
                            .map(|c| allocate(store, net, c, None).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let mut uniq = got.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 40, "distinct addresses: {got:?}");
        assert!(!got.contains(&net.gateway));
        // A requested address already leased is refused.
        let taken = got[0];
        let err = allocate(&store, &net, "other", Some(taken)).unwrap_err();
        assert!(err.to_string().contains("already leased"), "{err}");
        // Removed containers' leases are reclaimed; released ones go.
        std::fs::remove_dir_all(store.containers_dir().join("c0")).unwrap();
        for n in &names[1..20] {
            release(&store, "n", n).unwrap();
        }
        let live = live_leases(&store, "n").unwrap();
        assert_eq!(live.len(), 20);
        assert!(!live.values().any(|c| c == "c0"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
