//! Living with docker's (or another tool's) iptables FORWARD policy.
//!
//! nftables runs every base chain on a hook and a drop in any of them is
//! final, so an accept in hullctl's own table cannot undo docker's
//! `iptables -P FORWARD DROP` (which, with br_netfilter, also sees traffic
//! between two ports of one bridge). The only way through is an accept in
//! that chain itself. docker documents `DOCKER-USER` as the chain for other
//! software's rules, evaluated before its own; so, where iptables' filter
//! table has it, hullctl inserts there, per bridge:
//!
//! ```text
//! -A DOCKER-USER -i BRIDGE -m comment --comment "hullctl:BRIDGE" -j ACCEPT
//! -A DOCKER-USER -o BRIDGE -m comment --comment "hullctl:BRIDGE" -j ACCEPT
//! ```
//!
//! Without DOCKER-USER but with a `FORWARD` policy of DROP (docker's rules
//! left behind, another tool's) the same two go at the top of `FORWARD`,
//! as netavark and the CNI bridge plugin do with their own chains. Nothing
//! else is read or changed. The accepts only neutralise the foreign policy:
//! hullctl's own forward chain still drops new connections into a bridge
//! and everything out of an `--internal` one, and its drop is final too.
//!
//! IPv6 is the same with `ip6tables` (docker's `--ip6tables` makes the
//! same chains and policy there), for dual-stack networks.
//!
//! The `iptables` command is used (not nft on `ip filter`) so the rules
//! land in whichever backend docker used (iptables-nft or legacy). The
//! rules are made when a network's first container is set up (and checked
//! again at every setup, so a dockerd started later is caught at the next
//! run) and live as long as the bridge: `network rm` (or prune) removes
//! them. The caller holds the host-wide lock (nft::HostLock).

use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The iptables command of one address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn path(self) -> Option<&'static str> {
        let paths = match self {
            Family::V4 => ["/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables"],
            Family::V6 => [
                "/usr/sbin/ip6tables",
                "/sbin/ip6tables",
                "/usr/bin/ip6tables",
            ],
        };
        paths.into_iter().find(|p| std::path::Path::new(p).exists())
    }
}

/// `iptables -S` of the filter table; None where there is no iptables or
/// it cannot list (no tables at all: nothing of docker's to live with).
fn listing(ipt: &str) -> Option<String> {
    let o = Command::new(ipt)
        .args(["-w", "-S"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The chain hullctl's accepts go in, if one is needed.
fn target_chain(listing: &str) -> Option<&'static str> {
    if listing.lines().any(|l| l == "-N DOCKER-USER") {
        Some("DOCKER-USER")
    } else if listing.lines().any(|l| l == "-P FORWARD DROP") {
        Some("FORWARD")
    } else {
        None
    }
}

fn comment(bridge: &str) -> String {
    format!("hullctl:{bridge}")
}

/// The two rules' specs (without the chain) and their `-S` lines.
fn specs(bridge: &str) -> [Vec<String>; 2] {
    ["-i", "-o"].map(|dir| {
        [
            dir,
            bridge,
            "-m",
            "comment",
            "--comment",
            &comment(bridge),
            "-j",
            "ACCEPT",
        ]
        .map(String::from)
        .to_vec()
    })
}

fn line(chain: &str, spec: &[String]) -> String {
    // -S quotes the comment.
    let s = spec.join(" ").replace(
        &format!("--comment {}", spec[5]),
        &format!("--comment \"{}\"", spec[5]),
    );
    format!("-A {chain} {s}")
}

fn run(ipt: &str, args: &[String], what: &str) -> Result<()> {
    let tool = ipt.rsplit('/').next().unwrap_or(ipt);
    let o = Command::new(ipt)
        .arg("-w")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(ipt, e))?;
    if !o.status.success() {
        return Err(Error::Image(format!(
            "{tool}: {what}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(())
}

/// Make sure `bridge`'s accepts are in the chain that needs them, in
/// `families`' tables.
pub fn ensure(bridge: &str, families: &[Family]) -> Result<()> {
    families.iter().try_for_each(|f| ensure_in(*f, bridge))
}

fn ensure_in(family: Family, bridge: &str) -> Result<()> {
    let Some(ipt) = family.path() else {
        return Ok(());
    };
    let Some(l) = listing(ipt) else {
        return Ok(());
    };
    let Some(chain) = target_chain(&l) else {
        return Ok(());
    };
    for spec in specs(bridge) {
        if l.lines().any(|x| x == line(chain, &spec)) {
            continue;
        }
        let mut args = vec!["-I".to_string(), chain.to_string(), "1".to_string()];
        args.extend(spec);
        run(ipt, &args, &format!("accepting bridge {bridge} in {chain}"))?;
    }
    Ok(())
}

/// Remove `bridge`'s accepts from wherever they are, in both families'
/// tables (absent is fine).
pub fn remove(bridge: &str) -> Result<()> {
    [Family::V4, Family::V6]
        .into_iter()
        .try_for_each(|f| remove_in(f, bridge))
}

fn remove_in(family: Family, bridge: &str) -> Result<()> {
    let Some(ipt) = family.path() else {
        return Ok(());
    };
    let Some(l) = listing(ipt) else {
        return Ok(());
    };
    for chain in ["DOCKER-USER", "FORWARD"] {
        for spec in specs(bridge) {
            let want = line(chain, &spec);
            for _ in l.lines().filter(|x| *x == want) {
                let mut args = vec!["-D".to_string(), chain.to_string()];
                args.extend(spec.iter().cloned());
                run(
                    ipt,
                    &args,
                    &format!("removing bridge {bridge}'s rule from {chain}"),
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_choice_and_rule_lines() {
        let docker = "-P INPUT ACCEPT\n-P FORWARD DROP\n-N DOCKER-USER\n-A DOCKER-USER -j RETURN\n";
        assert_eq!(target_chain(docker), Some("DOCKER-USER"));
        assert_eq!(
            target_chain("-P INPUT ACCEPT\n-P FORWARD DROP\n"),
            Some("FORWARD")
        );
        assert_eq!(target_chain("-P FORWARD ACCEPT\n"), None);
        let [i, _] = specs("hb1");
        assert_eq!(
            line("DOCKER-USER", &i),
            "-A DOCKER-USER -i hb1 -m comment --comment \"hullctl:hb1\" -j ACCEPT"
        );
    }
}
