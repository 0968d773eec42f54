//! mounts[].options: the mount(8)-style words turned into mount(2) flags,
//! propagation changes and filesystem data.

use libc::c_ulong;

/// Parsed mount options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// MS_* flags to pass to mount(2).
    pub flags: c_ulong,
    /// Propagation changes (MS_SHARED, MS_PRIVATE|MS_REC, ...), applied in order after mounting.
    pub propagation: Vec<c_ulong>,
    /// Filesystem-specific options (size=, mode=, ...), comma-joined for mount(2)'s data.
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive: bool,
}

/// Every option word hull understands (as `hull features` lists them).
pub const KNOWN: [&str; 36] = [
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "rbind",
    "relatime",
    "remount",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "ro",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
];

/// Flags an option sets (true) or clears (false).
fn flag_option(o: &str) -> Option<(bool, c_ulong)> {
    Some(match o {
        "async" => (false, libc::MS_SYNCHRONOUS),
        "atime" => (false, libc::MS_NOATIME),
        "defaults" => (true, 0),
        "dev" => (false, libc::MS_NODEV),
        "diratime" => (false, libc::MS_NODIRATIME),
        "dirsync" => (true, libc::MS_DIRSYNC),
        "exec" => (false, libc::MS_NOEXEC),
        "mand" => (true, libc::MS_MANDLOCK),
        "noatime" => (true, libc::MS_NOATIME),
        "nodev" => (true, libc::MS_NODEV),
        "nodiratime" => (true, libc::MS_NODIRATIME),
        "noexec" => (true, libc::MS_NOEXEC),
        "nomand" => (false, libc::MS_MANDLOCK),
        "norelatime" => (false, libc::MS_RELATIME),
        "nostrictatime" => (false, libc::MS_STRICTATIME),
        "nosuid" => (true, libc::MS_NOSUID),
        "nosymfollow" => (true, libc::MS_NOSYMFOLLOW),
        "relatime" => (true, libc::MS_RELATIME),
        "remount" => (true, libc::MS_REMOUNT),
        "ro" => (true, libc::MS_RDONLY),
        "rw" => (false, libc::MS_RDONLY),
        "silent" => (true, libc::MS_SILENT),
        "loud" => (false, libc::MS_SILENT),
        "strictatime" => (true, libc::MS_STRICTATIME),
        "suid" => (false, libc::MS_NOSUID),
        "sync" => (true, libc::MS_SYNCHRONOUS),
        _ => return None,
    })
}

fn propagation_option(o: &str) -> Option<c_ulong> {
    Some(match o {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

/// The propagation flag for linux.rootfsPropagation, if the value is known.
pub fn rootfs_propagation(value: &str) -> Option<c_ulong> {
    propagation_option(value)
}

pub fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    for o in options {
        let o = o.as_str();
        if o == "bind" {
            out.bind = true;
        } else if o == "rbind" {
            out.bind = true;
            out.recursive = true;
        } else if let Some((set, f)) = flag_option(o) {
            if set {
                out.flags |= f;
            } else {
                out.flags &= !f;
            }
        } else if let Some(p) = propagation_option(o) {
            out.propagation.push(p);
        } else if o == "tmpcopyup" || o.is_empty() {
            // runc extension: copy the image's content into a tmpfs; not
            // supported yet, and harmless to skip (the tmpfs starts empty).
        } else {
            out.data.push(o.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data, ["mode=755", "size=65536k"]);
        assert!(!o.bind);

        let o = opts(&["rbind", "ro", "rprivate"]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.flags, libc::MS_RDONLY);
        assert_eq!(o.propagation, [libc::MS_PRIVATE | libc::MS_REC]);
    }

    #[test]
    fn every_known_option_is_understood() {
        for o in KNOWN {
            let p = opts(&[o]);
            assert!(p.data.is_empty(), "{o} fell through to filesystem data");
        }
    }

    #[test]
    fn later_options_win() {
        assert_eq!(opts(&["ro", "rw"]).flags, 0);
        assert_eq!(opts(&["rw", "ro"]).flags, libc::MS_RDONLY);
    }
}
