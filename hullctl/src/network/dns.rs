//! Container names over DNS with aardvark-dns (Debian's package, podman's
//! resolver), as docker's embedded DNS does: every running container of a
//! network resolves the others by name, short id and `--network-alias`,
//! including containers started after it, and the names go when a
//! container stops or is removed.
//!
//! ```text
//! networks/aardvark/<network>   aardvark's config: "GATEWAY[,GATEWAY6]" then
//!                               "ID IPV4 IPV6 NAME,ALIAS.. [DNS,..]" per container
//! networks/aardvark/aardvark.pid  the running server (aardvark writes it)
//! ```
//!
//! Every change rebuilds the whole directory from the leases and the
//! containers' states (under the networks lock), so an entry of a
//! container that crashed or vanished with a reboot is dropped by the
//! next change; then the server is started (it serves on each network's
//! gateway, port 53), told to reload (SIGHUP), or stopped when no
//! container is left.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{attach, ipam, Network};
use crate::error::{Error, IoContext, Result};
use crate::store::{write_atomic, Store};

const PID_FILE: &str = "aardvark.pid";

/// aardvark-dns where podman's packages put it (or HULLCTL_AARDVARK_DNS).
pub fn aardvark() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HULLCTL_AARDVARK_DNS") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    [
        "/usr/lib/podman/aardvark-dns",
        "/usr/libexec/podman/aardvark-dns",
        "/usr/local/lib/podman/aardvark-dns",
        "/usr/local/libexec/podman/aardvark-dns",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// Whether names are served by DNS (else /etc/hosts carries them).
pub fn available() -> bool {
    aardvark().is_some()
}

pub fn config_dir(store: &Store) -> PathBuf {
    super::dir(store).join("aardvark")
}

/// A container counts while its init lives (created, running, paused).
/// hull records the state only after the create hooks, so a container
/// another run's hook is setting up right now is known by the init the
/// hook noted (attach::note_init), else two concurrent starts could each
/// rebuild the config without the other.
fn live(store: &Store, name: &str) -> bool {
    match crate::container::status(store, name) {
        Some(hull::Status::Running | hull::Status::Paused | hull::Status::Created) => true,
        Some(hull::Status::Stopped) => false,
        _ => attach::noted_init_alive(store, name),
    }
}

/// The DNS names of a container: name, short id, aliases (aardvark splits
/// on ',' and ' ', which aliases are checked not to hold).
fn names(name: &str, id: &str, aliases: &[String]) -> String {
    let mut n = vec![name.to_string(), id[..12.min(id.len())].to_string()];
    n.extend(aliases.iter().cloned());
    n.dedup();
    n.join(",")
}

/// One network's config file text; None when no container of it is live.
fn network_config(store: &Store, net: &Network, starting: Option<&str>) -> Result<Option<String>> {
    let v4 = ipam::leases(store, &net.name)?;
    let v6 = ipam::leases6(store, &net.name)?;
    let mut gateways = vec![net.gateway.to_string()];
    gateways.extend(net.gateway6.map(|g| g.to_string()));
    let mut text = format!("{}\n", gateways.join(","));
    let mut any = false;
    for (ip, c) in &v4 {
        if Some(c.as_str()) != starting && !live(store, c) {
            continue;
        }
        let (Ok(rec), Some(s)) = (
            crate::container::record::find(store, c),
            attach::load_settings(store, c),
        ) else {
            continue;
        };
        let ip6 = v6
            .iter()
            .find(|(_, o)| *o == c)
            .map(|(a, _)| a.to_string())
            .unwrap_or_default();
        let aliases = s.aliases_on(&net.name);
        text.push_str(&format!(
            "{} {ip} {ip6} {}",
            rec.id,
            names(c, &rec.id, &aliases)
        ));
        if !s.dns.is_empty() {
            text.push_str(&format!(" {}", s.dns.join(",")));
        }
        text.push('\n');
        any = true;
    }
    Ok(any.then_some(text))
}

/// Rebuild the config for every network and start, reload or stop the
/// server to match. `starting`: a container in its setup hook, counted
/// live already. A host without aardvark-dns: nothing to do.
pub fn sync(store: &Store, starting: Option<&str>) -> Result<()> {
    let Some(exe) = aardvark() else {
        return Ok(());
    };
    let _l = super::lock(store)?;
    let dir = config_dir(store);
    std::fs::create_dir_all(&dir).at(&dir)?;
    let nets = super::list(store)?;
    let mut serving = Vec::new();
    for net in &nets {
        let p = dir.join(&net.name);
        match network_config(store, net, starting)? {
            Some(text) => {
                if std::fs::read_to_string(&p).ok().as_deref() != Some(&text) {
                    write_atomic(&p, text.as_bytes())?;
                }
                serving.push(net);
            }
            None => remove_if_there(&p)?,
        }
    }
    // Files of networks that are gone (network rm).
    for e in std::fs::read_dir(&dir).at(&dir)? {
        let e = e.at(&dir)?;
        let n = e.file_name().to_string_lossy().to_string();
        if n != PID_FILE && !n.starts_with('.') && !nets.iter().any(|x| x.name == n) {
            remove_if_there(&e.path())?;
        }
    }
    let pid = server_pid(&dir);
    match (serving.is_empty(), pid) {
        (true, Some(pid)) => {
            let _ = crate::sys::kill(pid, libc::SIGTERM);
            remove_if_there(&dir.join(PID_FILE))?;
        }
        (true, None) => {}
        (false, Some(pid)) => {
            // aardvark drops a SIGHUP that arrives while it reloads, so
            // wait (holding the lock) until it serves from new sockets.
            let old: Vec<u64> = udp_bound().into_iter().map(|(_, i)| i).collect();
            crate::sys::kill(pid, libc::SIGHUP).at(format!("aardvark-dns pid {pid}"))?;
            wait_serving(&serving, &old)?;
        }
        (false, None) => {
            start(&exe, &dir)?;
            wait_serving(&serving, &[])?;
        }
    }
    Ok(())
}

fn remove_if_there(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(p, e)),
        _ => Ok(()),
    }
}

/// The pid in aardvark.pid if that process is our server (not a pid
/// reused since, e.g. after a reboot).
pub fn server_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let want = dir.as_os_str().as_encoded_bytes();
    let ours = cmdline.split(|b| *b == 0).any(|a| a == want);
    ours.then_some(pid)
}

/// aardvark forks itself into the background and returns once it wrote
/// its pid file (before it binds: see [`wait_serving`]).
fn start(exe: &Path, dir: &Path) -> Result<()> {
    let mut cmd = Command::new(exe);
    cmd.arg("--config")
        .arg(dir)
        .args(["-p", "53", "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    crate::sys::unblock_signals_in_child(&mut cmd);
    let out = cmd.output().map_err(|e| Error::io(exe, e))?;
    if !out.status.success() {
        return Err(Error::Image(format!(
            "{} --config {}: {}",
            exe.display(),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Wait (up to 5 s) until something listens on UDP port 53 of each
/// network's gateway(s) on a socket not in `old`, so a container's first
/// query is answered by the server with the new config.
fn wait_serving(nets: &[&Network], old: &[u64]) -> Result<()> {
    let want: Vec<IpAddr> = nets
        .iter()
        .flat_map(|n| std::iter::once(IpAddr::V4(n.gateway)).chain(n.gateway6.map(IpAddr::V6)))
        .collect();
    let start = Instant::now();
    loop {
        let bound = udp_bound();
        let missing: Vec<&IpAddr> = want
            .iter()
            .filter(|a| !bound.iter().any(|(b, i)| b == *a && !old.contains(i)))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(5) {
            return Err(Error::Image(format!(
                "aardvark-dns does not listen on port 53 of {missing:?} (is something else bound there?)"
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Local addresses with UDP port 53 bound and their sockets' inodes
/// (from /proc/net/udp{,6}; the kernel prints each 32-bit word of the
/// address in host byte order).
fn udp_bound() -> Vec<(IpAddr, u64)> {
    let mut out = Vec::new();
    for f in ["/proc/net/udp", "/proc/net/udp6"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            let Some((addr, port)) = f.get(1).and_then(|a| a.split_once(':')) else {
                continue;
            };
            let inode: u64 = f.get(9).and_then(|i| i.parse().ok()).unwrap_or(0);
            if port != "0035" {
                continue;
            }
            let words: Vec<u32> = (0..addr.len() / 8)
                .filter_map(|i| u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16).ok())
                .collect();
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
            let ip = match bytes.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(&bytes[..]).unwrap_or_default()),
                16 => IpAddr::from(<[u8; 16]>::try_from(&bytes[..]).unwrap_or_default()),
                _ => continue,
            };
            out.push((ip, inode));
        }
    }
    out
}
