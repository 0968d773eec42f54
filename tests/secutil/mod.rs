//! Helpers for the security tests (seccomp, capabilities, CVE
//! regressions): a static C probe installed into a bundle's rootfs, the
//! Docker-shaped seccomp profile fixture, and `/proc/self/status` parsing.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::common::Bundle;

/// The fixture directory (`HULL_TEST_FIXTURES` where the tests run away
/// from the source tree, as in the tests/vm guest).
pub fn fixtures() -> PathBuf {
    match std::env::var_os("HULL_TEST_FIXTURES") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
    }
}

/// The probe binary, compiled once per test process (None, with a note,
/// if there is no C compiler with a static libc).
pub fn probe_bin() -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        // A probe built elsewhere (tests/vm ships one: the guest has no cc).
        if let Some(p) = std::env::var_os("HULL_TEST_PROBE").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        // Kept in the target's temp dir and reused while newer than its source.
        let src = fixtures().join("probe.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hull-probe");
        let fresh = |p: &Path| -> Option<bool> {
            Some(
                std::fs::metadata(p).ok()?.modified().ok()?
                    >= std::fs::metadata(&src).ok()?.modified().ok()?,
            )
        };
        if fresh(&out) == Some(true) {
            return Some(out);
        }
        let tmp = out.with_extension(std::process::id().to_string());
        let st = Command::new("cc")
            .args(["-static", "-O1", "-o"])
            .arg(&tmp)
            .arg(&src)
            .status();
        match st {
            Ok(s) if s.success() && std::fs::rename(&tmp, &out).is_ok() => Some(out),
            _ => {
                eprintln!("note: cannot build the static probe (cc -static); probe tests skipped");
                None
            }
        }
    })
    .clone()
}

/// Copies the probe into the bundle as /bin/probe; false if unavailable.
pub fn install_probe(b: &Bundle) -> bool {
    match probe_bin() {
        Some(p) => {
            std::fs::copy(p, b.rootfs().join("bin/probe")).expect("copy probe");
            true
        }
        None => false,
    }
}

/// The Docker-shaped default seccomp profile fixture.
pub fn docker_profile() -> Value {
    let text = std::fs::read_to_string(fixtures().join("docker-default-seccomp.json"))
        .expect("read the docker profile fixture");
    serde_json::from_str(&text).expect("the docker profile fixture is JSON")
}

/// `Key:\tvalue` lines of /proc/self/status output, as (key, value).
pub fn status_field(out: &str, key: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// A capability mask as /proc shows it (16 hex digits).
pub fn mask(bits: &[u32]) -> String {
    format!("{:016x}", bits.iter().fold(0u64, |m, b| m | (1 << b)))
}
