//! Compiled filters kept in a cache directory, so a profile is compiled
//! once per boot, not on every create: libseccomp takes about 15 ms for
//! docker's default profile (some 350 rules, three x86 ABIs), and docker,
//! podman and the CRI plugin pass that profile to every container.
//!
//! The directory is `$HULL_CACHE_DIR/seccomp`, else `hull-cache/seccomp`
//! beside the default state root (`/run/hull-cache`, or
//! `$XDG_RUNTIME_DIR/hull-cache` where the root is `$XDG_RUNTIME_DIR/hull`):
//! tmpfs, emptied by a reboot, and not inside any state root, which holds
//! containers only. hull makes it 0700 and uses it only while it is owned
//! by the caller and writable by nobody else: an entry is a program the
//! kernel will enforce, so it needs the trust of the state files.
//!
//! An entry is found by a hash of its key and used only if the key stored
//! in it equals the profile's byte for byte; the key is the profile's JSON
//! and what else decides the program: this build of hull (version, commit,
//! a hash of the compiler's source) and the libseccomp it links. Any
//! damage or mismatch reads as a miss; a failed write is ignored (the
//! filter was compiled anyway). A full cache (old builds' entries, or a
//! host where every container brings its own profile) is emptied.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;

use super::compile::Compiled;

const MAGIC: &[u8; 8] = b"HULLSCM1";
/// At this many entries the cache is emptied before the next write.
const MAX_ENTRIES: usize = 64;

/// FNV-1a at compile time: a change to the compiler's source is a new key
/// even without a new commit (a dirty tree's build).
const fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}
const SOURCE: u64 = fnv(include_bytes!("compile.rs")) ^ fnv(include_bytes!("profile.rs"));

/// The cache key of `s`: None if it cannot be serialised (never cached).
pub fn key(s: &LinuxSeccomp) -> Option<Vec<u8>> {
    let v = libseccomp::ScmpVersion::current().ok()?;
    let mut k = format!(
        "hull {} {} {SOURCE:x} libseccomp {}.{}.{} {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("HULL_COMMIT"),
        v.major,
        v.minor,
        v.micro,
        std::env::consts::ARCH,
    )
    .into_bytes();
    serde_json::to_writer(&mut k, s).ok()?;
    Some(k)
}

fn entry(dir: &Path, key: &[u8]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    dir.join(format!("{:016x}", h.finish()))
}

/// The cache directory (see the module text).
pub fn dir() -> PathBuf {
    crate::state::cache_dir().join("seccomp")
}

/// The program for `key` from `dir`, else `compile`'s, kept for next time.
pub fn load_or_compile(
    dir: &Path,
    key: &[u8],
    compile: impl FnOnce() -> crate::Result<Compiled>,
) -> crate::Result<Compiled> {
    if let Some(c) = load(dir, key) {
        crate::logging::debug("linux.seccomp: program taken from the cache");
        return Ok(c);
    }
    let c = compile()?;
    save(dir, key, &c);
    crate::logging::debug("linux.seccomp: compiled and cached");
    Ok(c)
}

/// The compiled filter for `key`, if cached, trusted and intact.
fn load(dir: &Path, key: &[u8]) -> Option<Compiled> {
    if !trusted(dir) {
        return None;
    }
    let data = std::fs::read(entry(dir, key)).ok()?;
    decode(&data, key)
}

/// Owned by the caller, writable by no one else (`$HULL_CACHE_DIR` may
/// name any directory; the default ones could have been made by another).
fn trusted(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == crate::rootless::euid() && m.mode() & 0o022 == 0)
}

/// Keep `c` for `key` (best effort; atomic: temp file + rename).
fn save(dir: &Path, key: &[u8], c: &Compiled) {
    use std::os::unix::fs::DirBuilderExt;
    let made = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    if made.is_err() || !trusted(dir) {
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let entries: Vec<_> = entries.flatten().collect();
        if entries.len() >= MAX_ENTRIES {
            for e in entries {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let _ = crate::state::write_atomic(&entry(dir, key), &encode(key, c));
}

fn encode(key: &[u8], c: &Compiled) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + c.bpf.len() * 8 + 64);
    out.extend_from_slice(MAGIC);
    put(&mut out, key);
    out.push(c.notify as u8);
    out.extend_from_slice(&(c.unknown.len() as u32).to_le_bytes());
    for name in &c.unknown {
        put(&mut out, name.as_bytes());
    }
    out.extend_from_slice(&(c.bpf.len() as u32).to_le_bytes());
    for i in &c.bpf {
        out.extend_from_slice(&i.code.to_le_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_le_bytes());
    }
    out
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads an entry; None unless it is whole and holds exactly `key`.
fn decode(data: &[u8], key: &[u8]) -> Option<Compiled> {
    let mut r = Reader(data);
    if r.take(MAGIC.len())? != MAGIC || r.bytes()? != key {
        return None;
    }
    let notify = r.take(1)?[0] != 0;
    let mut unknown = Vec::new();
    for _ in 0..r.u32()? {
        unknown.push(String::from_utf8(r.bytes()?.to_vec()).ok()?);
    }
    let n = r.u32()? as usize;
    if n > super::compile::MAX_INSNS {
        return None;
    }
    let mut bpf = Vec::with_capacity(n);
    for _ in 0..n {
        let b = r.take(8)?;
        bpf.push(libc::sock_filter {
            code: u16::from_le_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        });
    }
    r.0.is_empty().then_some(Compiled {
        bpf,
        notify,
        unknown,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(errno: u32) -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["unshare", "no_such_call"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": errno}]
        }))
        .unwrap()
    }

    #[test]
    fn round_trips_and_refuses_other_keys_and_damage() {
        let dir = std::env::temp_dir().join(format!("hull-scmp-cache-{}", std::process::id()));
        let s = profile(1);
        let k = key(&s).unwrap();
        let c = super::super::compile::compile(&s).unwrap();
        assert!(load(&dir, &k).is_none());
        save(&dir, &k, &c);
        let got = load(&dir, &k).unwrap();
        assert_eq!(got.unknown, vec!["no_such_call".to_string()]);
        assert_eq!(got.notify, c.notify);
        let words = |b: &[libc::sock_filter]| -> Vec<(u16, u8, u8, u32)> {
            b.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect()
        };
        assert_eq!(words(&got.bpf), words(&c.bpf));
        // Another profile is another key, never this entry.
        let k2 = key(&profile(2)).unwrap();
        assert_ne!(k, k2);
        assert!(load(&dir, &k2).is_none());
        // An entry holding another key (a hash collision) is a miss.
        std::fs::write(entry(&dir, &k2), encode(&k, &c)).unwrap();
        assert!(load(&dir, &k2).is_none());
        // A cut-short entry is a miss.
        let full = encode(&k, &c);
        std::fs::write(entry(&dir, &k), &full[..full.len() - 3]).unwrap();
        assert!(load(&dir, &k).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
