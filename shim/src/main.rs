//! containerd-shim-hull-v2: containerd's task API (ttrpc) served by one
//! single-threaded process that runs its containers in-process through
//! the hull library (no runtime binary is executed per operation).
//!
//! - `start`: bind the task socket, spawn the long-lived shim on it, print
//!   its address (containers of one pod share a shim, as with runc's);
//! - `delete`: clean up after a shim that died (container, cgroup, mounts);
//! - no action: serve (the process `start` spawned).

mod bootstrap;
mod events;
mod mounts;
mod restore;
mod server;
mod service;
mod stdio;
mod sys;
mod wire;

use std::process::ExitCode;

/// containerd's runtime name for this shim.
pub const RUNTIME: &str = "io.containerd.hull.v2";

/// The flags containerd passes (Go `flag` syntax: `-name value`,
/// `-name=value`, `--name`), and the action after them.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub namespace: String,
    pub id: String,
    pub address: String,
    pub publish_binary: String,
    pub bundle: String,
    pub socket: String,
    pub debug: bool,
    pub version: bool,
    /// The listening socket `start` bound and passed on (serve only).
    pub listen_fd: Option<i32>,
    pub action: String,
}

impl Flags {
    pub fn parse(args: &[String]) -> Result<Flags, String> {
        let mut f = Flags::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
                f.action = a.clone();
                break;
            };
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (name, None),
            };
            match name {
                "debug" => f.debug = inline.as_deref() != Some("false"),
                "v" | "version" => f.version = true,
                _ => {
                    let value = match inline {
                        Some(v) => v,
                        None => it
                            .next()
                            .cloned()
                            .ok_or_else(|| format!("flag -{name} needs a value"))?,
                    };
                    match name {
                        "namespace" => f.namespace = value,
                        "id" => f.id = value,
                        "address" => f.address = value,
                        "publish-binary" => f.publish_binary = value,
                        "bundle" => f.bundle = value,
                        "socket" => f.socket = value,
                        "listen-fd" => {
                            f.listen_fd = Some(
                                value
                                    .parse()
                                    .map_err(|_| format!("-listen-fd: not a number: {value}"))?,
                            )
                        }
                        // Flags of newer containerds this shim does not use.
                        _ => {}
                    }
                }
            }
        }
        Ok(f)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = match Flags::parse(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("containerd-shim-hull-v2: {e}");
            return ExitCode::FAILURE;
        }
    };
    if flags.version {
        println!(
            "containerd-shim-hull-v2 {} (hull {}, commit {})",
            env!("CARGO_PKG_VERSION"),
            hull::VERSION,
            hull::COMMIT
        );
        return ExitCode::SUCCESS;
    }
    let result = match flags.action.as_str() {
        "start" => bootstrap::start(&flags),
        "delete" => bootstrap::delete(&flags),
        "" => server::serve(&flags),
        other => Err(format!("unknown action {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            server::log(&e);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_flags_and_the_action() {
        let a: Vec<String> = [
            "-namespace",
            "k8s.io",
            "--address=/run/c.sock",
            "-debug",
            "-id",
            "x",
            "-publish-binary",
            "/usr/bin/containerd",
            "start",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let f = Flags::parse(&a).unwrap();
        assert_eq!(
            (f.namespace.as_str(), f.address.as_str(), f.id.as_str()),
            ("k8s.io", "/run/c.sock", "x")
        );
        assert!(f.debug);
        assert_eq!(f.action, "start");
        assert!(Flags::parse(&["-id".to_string()]).is_err());
    }
}
