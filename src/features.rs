//! `hull features`: the runtime-spec features document, generated from
//! what this build's code actually supports (the tables the code uses).

use serde_json::{json, Value};

use crate::config::OCI_VERSION;
use crate::hooks;
use crate::process::caps;
use crate::rootfs::options;

/// The namespace types hull can create or join.
pub const NAMESPACES: [&str; 8] = [
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

pub fn features() -> Value {
    let last = caps::last_cap() as usize;
    let capabilities: Vec<&str> = caps::NAMES.iter().take(last + 1).copied().collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": [
            hooks::PRESTART, hooks::CREATE_RUNTIME, hooks::CREATE_CONTAINER,
            hooks::START_CONTAINER, hooks::POSTSTART, hooks::POSTSTOP
        ],
        "mountOptions": options::KNOWN.to_vec(),
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": capabilities,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": false,
                "systemdUser": false,
                "rdma": false
            },
            "seccomp": seccomp(),
            "apparmor": {"enabled": crate::process::lsm::apparmor_enabled()},
            "selinux": {"enabled": crate::process::lsm::selinux_enabled()},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "io.github.hull.version": crate::VERSION,
            "io.github.hull.commit": crate::COMMIT,
            "org.opencontainers.runtime-spec.version": OCI_VERSION
        }
    })
}

fn seccomp() -> Value {
    use crate::seccomp::profile;
    json!({
        "enabled": true,
        "actions": profile::ACTIONS,
        "operators": profile::OPERATORS,
        "archs": crate::seccomp::compile::loadable_arches(),
        "knownFlags": profile::FLAGS,
        "supportedFlags": profile::FLAGS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_what_the_code_knows() {
        let f = features();
        assert_eq!(f["ociVersionMax"], OCI_VERSION);
        for o in f["mountOptions"].as_array().unwrap() {
            let o = o.as_str().unwrap();
            let p = options::parse(&[o.to_string()]);
            assert!(p.data.is_empty(), "{o} is listed but not understood");
        }
        assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
        for c in f["linux"]["capabilities"].as_array().unwrap() {
            assert!(caps::number(c.as_str().unwrap()).is_some());
        }
        for ns in f["linux"]["namespaces"].as_array().unwrap() {
            let t: oci_spec::runtime::LinuxNamespaceType =
                serde_json::from_value(ns.clone()).unwrap();
            assert_eq!(crate::namespaces::type_name(t), ns.as_str().unwrap());
        }
    }
}
