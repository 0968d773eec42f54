//! mounts[].options: the mount(8)-style words turned into mount(2) flags,
//! recursive mount attributes (mount_setattr), propagation changes, idmap
//! and filesystem data.

use libc::c_ulong;

use crate::sys;

/// Parsed mount options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// MS_* flags to pass to mount(2).
    pub flags: c_ulong,
    /// Propagation changes (MS_SHARED, MS_PRIVATE|MS_REC, ...), applied in order after mounting.
    pub propagation: Vec<c_ulong>,
    /// Filesystem-specific options (size=, mode=, ...), comma-joined for mount(2)'s data.
    pub data: Vec<String>,
    /// The index in the option list of each `data` word (for errors).
    pub data_index: Vec<usize>,
    pub bind: bool,
    pub recursive: bool,
    /// The recursive attributes (rro, rnoexec, ...): MOUNT_ATTR_* bits to
    /// set and to clear with mount_setattr(AT_RECURSIVE).
    pub attr_set: u64,
    pub attr_clr: u64,
    /// `idmap` (Some(false)) or `ridmap` (Some(true)), and its index.
    pub idmap: Option<(bool, usize)>,
    /// The index of `tmpcopyup` (runc's extension: a tmpfs starts with a
    /// copy of the image's files at its destination).
    pub tmpcopyup: Option<usize>,
}

impl MountOptions {
    /// Whether a recursive attribute was asked for.
    pub fn has_attrs(&self) -> bool {
        self.attr_set != 0 || self.attr_clr != 0
    }
}

/// Every option word hull understands (as `hull features` lists them).
pub const KNOWN: [&str; 57] = [
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
    // runtime-spec 1.1: recursive attributes (mount_setattr, AT_RECURSIVE).
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnoatime",
    "ratime",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rstrictatime",
    "rnostrictatime",
    "rnosymfollow",
    "rsymfollow",
    // runtime-spec 1.2: idmapped bind mounts.
    "idmap",
    "ridmap",
    // runc's extension: a tmpfs starts with the image's files.
    "tmpcopyup",
];

/// What a recursive attribute does to mount_setattr's (set, clear) bits.
enum Attr {
    Set(u64),
    Clear(u64),
    /// One value of the access-time field (which is not a set of flags).
    Atime(u64),
}

/// The recursive attributes. The access-time ones pick the mode the
/// mount(8) word means: `ratime` (no noatime) and `rnostrictatime` are
/// the kernel's default, relatime; `rnorelatime` (neither relatime nor
/// noatime) is strictatime. runc 1.1.5 instead clears a single bit of the
/// field for `ratime`/`rnostrictatime`, which the kernel refuses (EINVAL),
/// and for `rnorelatime` clears nothing.
fn attr_option(o: &str) -> Option<Attr> {
    use Attr::*;
    Some(match o {
        "rro" => Set(sys::MOUNT_ATTR_RDONLY),
        "rrw" => Clear(sys::MOUNT_ATTR_RDONLY),
        "rnosuid" => Set(sys::MOUNT_ATTR_NOSUID),
        "rsuid" => Clear(sys::MOUNT_ATTR_NOSUID),
        "rnodev" => Set(sys::MOUNT_ATTR_NODEV),
        "rdev" => Clear(sys::MOUNT_ATTR_NODEV),
        "rnoexec" => Set(sys::MOUNT_ATTR_NOEXEC),
        "rexec" => Clear(sys::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => Set(sys::MOUNT_ATTR_NODIRATIME),
        "rdiratime" => Clear(sys::MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => Set(sys::MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => Clear(sys::MOUNT_ATTR_NOSYMFOLLOW),
        "rnoatime" => Atime(sys::MOUNT_ATTR_NOATIME),
        "ratime" | "rrelatime" | "rnostrictatime" => Atime(sys::MOUNT_ATTR_RELATIME),
        "rstrictatime" | "rnorelatime" => Atime(sys::MOUNT_ATTR_STRICTATIME),
        _ => return None,
    })
}

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
    for (j, o) in options.iter().enumerate() {
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
        } else if let Some(a) = attr_option(o) {
            // Later words win, as for the flags.
            match a {
                Attr::Set(b) => {
                    out.attr_set |= b;
                    out.attr_clr &= !b;
                }
                Attr::Clear(b) => {
                    out.attr_clr |= b;
                    out.attr_set &= !b;
                }
                Attr::Atime(v) => {
                    out.attr_set = (out.attr_set & !sys::MOUNT_ATTR__ATIME) | v;
                    out.attr_clr |= sys::MOUNT_ATTR__ATIME;
                }
            }
        } else if o == "idmap" || o == "ridmap" {
            out.idmap = Some((o == "ridmap", j));
        } else if o == "tmpcopyup" {
            out.tmpcopyup = Some(j);
        } else if o.is_empty() {
        } else {
            out.data.push(o.to_string());
            out.data_index.push(j);
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
    fn recursive_attributes() {
        let o = opts(&[
            "rbind",
            "rro",
            "rnosuid",
            "rnodev",
            "rnoexec",
            "rnosymfollow",
        ]);
        assert_eq!(
            o.attr_set,
            sys::MOUNT_ATTR_RDONLY
                | sys::MOUNT_ATTR_NOSUID
                | sys::MOUNT_ATTR_NODEV
                | sys::MOUNT_ATTR_NOEXEC
                | sys::MOUNT_ATTR_NOSYMFOLLOW
        );
        assert_eq!(o.attr_clr, 0);
        assert_eq!(o.flags, 0, "recursive attributes are not mount(2) flags");
        let o = opts(&["rro", "rrw"]);
        assert_eq!((o.attr_set, o.attr_clr), (0, sys::MOUNT_ATTR_RDONLY));
        // The access time is one field: the whole of it is cleared, one
        // value set (the kernel refuses anything else).
        for (word, value) in [
            ("rnoatime", sys::MOUNT_ATTR_NOATIME),
            ("ratime", sys::MOUNT_ATTR_RELATIME),
            ("rrelatime", sys::MOUNT_ATTR_RELATIME),
            ("rnostrictatime", sys::MOUNT_ATTR_RELATIME),
            ("rstrictatime", sys::MOUNT_ATTR_STRICTATIME),
            ("rnorelatime", sys::MOUNT_ATTR_STRICTATIME),
        ] {
            let o = opts(&["rnodiratime", "rnoatime", word]);
            assert_eq!(o.attr_clr, sys::MOUNT_ATTR__ATIME, "{word}");
            assert_eq!(o.attr_set, sys::MOUNT_ATTR_NODIRATIME | value, "{word}");
        }
        assert!(!opts(&["ro"]).has_attrs());
    }

    #[test]
    fn idmap_and_unknown_words_are_recorded_with_their_index() {
        let o = opts(&["rbind", "ridmap", "size=1m", "foo"]);
        assert_eq!(o.idmap, Some((true, 1)));
        assert_eq!(o.data, ["size=1m", "foo"]);
        assert_eq!(o.data_index, [2, 3]);
        assert_eq!(opts(&["idmap"]).idmap, Some((false, 0)));
    }

    #[test]
    fn later_options_win() {
        assert_eq!(opts(&["ro", "rw"]).flags, 0);
        assert_eq!(opts(&["rw", "ro"]).flags, libc::MS_RDONLY);
    }
}
