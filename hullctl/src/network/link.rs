//! The kernel side over netlink (rtnetlink): the network's bridge, a veth
//! pair per container with one end moved into the container's network
//! namespace (found through its init's pid) and configured there as eth0.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::{new_connection, Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::Network;
use crate::error::{Error, Result};

fn nl_err(what: String) -> impl Fn(rtnetlink::Error) -> Error {
    move |e| Error::Image(format!("{what}: {e}"))
}

/// Run `f` with a netlink handle on a private current-thread runtime.
fn with_handle<F, Fut, T>(f: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    rt.block_on(async {
        let (conn, handle, _) = new_connection().map_err(|e| Error::io("netlink socket", e))?;
        tokio::spawn(conn);
        f(handle).await
    })
}

async fn index_of(h: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(l)) => Ok(Some(l.header.index)),
        Ok(None) => Ok(None),
        // ENODEV: no such link.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(nl_err(format!("looking up link {name}"))(e)),
    }
}

/// The host end's name: short (15 bytes) and unique per container.
pub fn host_ifname(container_id: &str) -> String {
    format!("vh{}", &container_id[..12.min(container_id.len())])
}

/// The host end of the container's interface `ifname`: eth0's as above,
/// ethN's (networks connected later) with N in place of the id's end.
pub fn host_ifname_on(container_id: &str, ifname: &str) -> String {
    match ifname.strip_prefix("eth").filter(|n| *n != "0") {
        Some(n) => {
            let keep = 12usize.saturating_sub(n.len() + 1).min(container_id.len());
            format!("vh{}x{n}", &container_id[..keep])
        }
        None => host_ifname(container_id),
    }
}

/// Make the bridge (up, the gateway address on it) unless it exists.
/// The caller holds the networks lock, so creators do not race.
async fn ensure_bridge(h: &Handle, net: &Network) -> Result<u32> {
    if let Some(i) = index_of(h, &net.bridge).await? {
        return Ok(i);
    }
    let what = format!("network {}: bridge {}", net.name, net.bridge);
    // A fixed MAC: a bridge without one takes its lowest port's, so it
    // would change as containers leave, and the others' ARP entries for
    // the gateway would point nowhere until they expire (tens of seconds
    // of lost DNS queries and outbound traffic).
    h.link()
        .add(
            LinkBridge::new(&net.bridge)
                .address(random_mac()?)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(nl_err(what.clone()))?;
    let i = index_of(h, &net.bridge)
        .await?
        .ok_or_else(|| Error::Image(format!("{what}: gone after creation")))?;
    h.address()
        .add(i, net.gateway.into(), net.subnet.prefix_len())
        .execute()
        .await
        .map_err(nl_err(format!("{what}: address {}", net.gateway)))?;
    if let (Some(g), Some(s)) = (net.gateway6, net.subnet6) {
        add_address(h, i, g.into(), s.prefix_len())
            .await
            .map_err(nl_err(format!("{what}: address {g}")))?;
        ipv6_sysctls(net)?;
    }
    Ok(i)
}

/// A random locally administered unicast MAC address.
fn random_mac() -> Result<Vec<u8>> {
    let mut b = vec![0u8; 6];
    let p = "/dev/urandom";
    std::io::Read::read_exact(
        &mut std::fs::File::open(p).map_err(|e| Error::io(p, e))?,
        &mut b,
    )
    .map_err(|e| Error::io(p, e))?;
    b[0] = (b[0] | 0x02) & !0x01;
    Ok(b)
}

/// An address; IPv6 ones without duplicate address detection, which
/// would leave them "tentative" (unusable) for a second or more while
/// the addresses here are unique by IPAM.
async fn add_address(
    h: &Handle,
    index: u32,
    ip: IpAddr,
    prefix: u8,
) -> std::result::Result<(), rtnetlink::Error> {
    let mut req = h.address().add(index, ip, prefix);
    if ip.is_ipv6() {
        req.message_mut()
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    req.execute().await
}

/// IPv6 on a dual-stack network's bridge: forwarding on it, and, for a
/// network with a way out, the host's IPv6 forwarding (as docker and
/// netavark set it; the kernel forwards IPv6 only with `all` on).
fn ipv6_sysctls(net: &Network) -> Result<()> {
    let mut set = vec![format!("/proc/sys/net/ipv6/conf/{}/forwarding", net.bridge)];
    if !net.internal {
        set.push("/proc/sys/net/ipv6/conf/all/forwarding".into());
    }
    for p in set {
        if std::fs::read_to_string(&p)
            .map(|v| v.trim() == "1")
            .unwrap_or(false)
        {
            continue;
        }
        std::fs::write(&p, "1").map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

/// Connect the container whose init is `pid` to `net` with address `ip`.
/// A failure removes the veth pair it made.
pub fn attach(
    net: &Network,
    container_id: &str,
    pid: i32,
    ip: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
    ifname: &str,
) -> Result<()> {
    let host = host_ifname_on(container_id, ifname);
    let peer = format!("vc{}", &host[2..]);
    let what = format!("network {}: container {container_id:.12}", net.name);
    let (host2, peer2, what2) = (host.clone(), peer.clone(), what.clone());
    with_handle(|h| async move {
        let (host, peer, what) = (host2, peer2, what2);
        let br = ensure_bridge(&h, net).await?;
        h.link()
            .add(LinkVeth::new(&host, &peer).build())
            .execute()
            .await
            .map_err(nl_err(format!("{what}: veth {host}")))?;
        let r = async {
            let pi = index_of(&h, &peer)
                .await?
                .ok_or_else(|| Error::Image(format!("{what}: veth peer {peer} vanished")))?;
            h.link()
                .set(
                    LinkUnspec::new_with_index(pi)
                        .setns_by_pid(pid as u32)
                        .build(),
                )
                .execute()
                .await
                .map_err(nl_err(format!(
                    "{what}: moving {peer} into pid {pid}'s netns"
                )))?;
            let hi = index_of(&h, &host)
                .await?
                .ok_or_else(|| Error::Image(format!("{what}: veth {host} vanished")))?;
            h.link()
                .set(LinkUnspec::new_with_index(hi).controller(br).up().build())
                .execute()
                .await
                .map_err(nl_err(format!("{what}: {host} onto {}", net.bridge)))
        }
        .await;
        if r.is_err() {
            if let Ok(Some(i)) = index_of(&h, &host).await {
                let _ = h.link().del(i).execute().await;
            }
        }
        r
    })?;
    let r = inside(pid, |h| {
        configure_inside(
            h,
            net,
            Inside {
                peer: peer.clone(),
                ifname: ifname.to_string(),
                ip,
                ip6,
            },
            what.clone(),
        )
    });
    if r.is_err() {
        detach_on(container_id, ifname);
    }
    r
}

/// What the container's end gets: its name there and addresses.
struct Inside {
    peer: String,
    ifname: String,
    ip: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
}

/// Inside the container: the veth end becomes eth0 (eth1.. for networks
/// connected later), gets the address(es) and, on the first network, the
/// default route(s) (none on an internal network); lo comes up.
async fn configure_inside(h: Handle, net: &Network, c: Inside, what: String) -> Result<()> {
    let e = |s: &str| nl_err(format!("{what}: {s}"));
    let (peer, ip) = (&c.peer, c.ip);
    let pi = index_of(&h, peer)
        .await?
        .ok_or_else(|| Error::Image(format!("{what}: {peer} not in the container")))?;
    h.link()
        .set(LinkUnspec::new_with_index(pi).name(&c.ifname).build())
        .execute()
        .await
        .map_err(e(&format!("renaming to {}", c.ifname)))?;
    h.address()
        .add(pi, ip.into(), net.subnet.prefix_len())
        .execute()
        .await
        .map_err(e(&format!("address {ip}")))?;
    if let (Some(ip6), Some(s)) = (c.ip6, net.subnet6) {
        // No DAD for the link-local address either (this thread is in the
        // container's netns, so /proc/sys/net is the container's).
        let p = format!("/proc/sys/net/ipv6/conf/{}/accept_dad", c.ifname);
        std::fs::write(&p, "0").map_err(|e| Error::io(&p, e))?;
        add_address(&h, pi, ip6.into(), s.prefix_len())
            .await
            .map_err(e(&format!("address {ip6}")))?;
    }
    h.link()
        .set(LinkUnspec::new_with_index(pi).up().build())
        .execute()
        .await
        .map_err(e(&format!("{} up", c.ifname)))?;
    if let Some(lo) = index_of(&h, "lo").await? {
        h.link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .map_err(e("lo up"))?;
    }
    if !net.internal && c.ifname == "eth0" {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(net.gateway)
            .output_interface(pi)
            .build();
        h.route()
            .add(route)
            .execute()
            .await
            .map_err(e(&format!("default route via {}", net.gateway)))?;
        if let (Some(_), Some(g)) = (c.ip6, net.gateway6) {
            let route = RouteMessageBuilder::<Ipv6Addr>::new()
                .gateway(g)
                .output_interface(pi)
                .build();
            h.route()
                .add(route)
                .execute()
                .await
                .map_err(e(&format!("default route via {g}")))?;
        }
    }
    Ok(())
}

/// Run `f` on a thread that entered `pid`'s network namespace (the
/// netlink socket it opens lives there).
fn inside<F, Fut>(pid: i32, f: F) -> Result<()>
where
    F: FnOnce(Handle) -> Fut + Send,
    Fut: std::future::Future<Output = Result<()>>,
{
    let p = format!("/proc/{pid}/ns/net");
    let ns = std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            use std::os::fd::AsRawFd;
            hull::sys::setns(ns.as_raw_fd(), libc::CLONE_NEWNET)
                .map_err(|e| Error::io(&p, e.io()))?;
            with_handle(f)
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Image(format!("{p}: netlink thread panicked"))))
    })
}

/// Remove the container's host-side veth (its peer goes with it); the
/// kernel does this itself when the namespace dies, so absence is fine.
pub fn detach(container_id: &str) {
    detach_on(container_id, "eth0")
}

/// Remove the host end of the container's interface `ifname`.
pub fn detach_on(container_id: &str, ifname: &str) {
    let host = host_ifname_on(container_id, ifname);
    let _ = with_handle(|h| async move {
        if let Some(i) = index_of(&h, &host).await? {
            let _ = h.link().del(i).execute().await;
        }
        Ok(())
    });
}

/// Remove a network's bridge (absent is fine).
pub fn delete_bridge(net: &Network) -> Result<()> {
    with_handle(|h| async move {
        if let Some(i) = index_of(&h, &net.bridge).await? {
            h.link().del(i).execute().await.map_err(nl_err(format!(
                "network {}: removing bridge {}",
                net.name, net.bridge
            )))?;
        }
        Ok(())
    })
}
