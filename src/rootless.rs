//! Running without root: `--rootless auto|true|false` (as runc decides
//! it), the state root under `$XDG_RUNTIME_DIR`, the checks a config must
//! pass when the caller is not root, and the setuid helpers
//! (newuidmap/newgidmap) that write id maps with several ranges.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// The `--rootless` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Auto,
    On,
    Off,
}

impl Mode {
    /// runc's parseBoolOrAuto: "auto" or empty, or a Go boolean
    /// (1, t, T, TRUE, true, True and their false forms).
    pub fn parse(s: Option<&str>) -> Result<Mode> {
        match s.unwrap_or("auto") {
            "" | "auto" => Ok(Mode::Auto),
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Mode::On),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Mode::Off),
            other => Err(Error::Usage(format!(
                "--rootless: {other:?} is not auto, true or false"
            ))),
        }
    }

    /// Whether cgroups are handled as rootless: as runc, `auto` means not
    /// root, or root inside a user namespace (whose owner may not be).
    pub fn enabled(self) -> bool {
        match self {
            Mode::On => true,
            Mode::Off => false,
            Mode::Auto => euid() != 0 || running_in_userns(),
        }
    }
}

/// The effective uid (decides rootless as in runc: `os.Geteuid`).
pub fn euid() -> u32 {
    crate::sys::geteuid()
}

/// The effective gid (the id an unprivileged caller may map itself).
pub fn egid() -> u32 {
    crate::sys::getegid()
}

/// Whether this process is in a user namespace other than the initial one:
/// the initial one maps the whole range 0..2^32-1 onto itself.
pub fn running_in_userns() -> bool {
    let text = crate::sys::read_text("/proc/self/uid_map").unwrap_or_default();
    !is_initial_uid_map(&text)
}

fn is_initial_uid_map(text: &str) -> bool {
    let fields: Vec<&str> = text.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// The default state root: `$XDG_RUNTIME_DIR/hull` where runc would use
/// `$XDG_RUNTIME_DIR/runc` (not root, or root in a user namespace whose
/// `$USER` is not root), else `/run/hull`.
pub fn default_root(env: impl Fn(&str) -> Option<String>) -> (PathBuf, bool) {
    let xdg = env("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    let honor = match &xdg {
        None => false,
        Some(_) if euid() != 0 => true,
        Some(_) if !running_in_userns() => false,
        Some(_) => env("USER").is_none_or(|u| u != "root"),
    };
    match xdg {
        Some(d) if honor => (Path::new(&d).join("hull"), true),
        _ => (PathBuf::from("/run/hull"), false),
    }
}

/// Make the `$XDG_RUNTIME_DIR/hull` root: mode 0700 with the sticky bit,
/// which keeps the XDG runtime-dir cleaner from pruning it (as runc).
pub fn prepare_xdg_root(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            Error::Usage(format!(
                "the state root {} (from $XDG_RUNTIME_DIR) must be writable by this user: {e}",
                dir.display()
            ))
        })?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1700))
        .map_err(|e| Error::io(dir, e))
}

/// What runc checks of a config when the caller is not root (its
/// rootlessEUID validator): a user namespace of its own with uid and gid
/// mappings, and `uid=`/`gid=` mount options only for mapped ids.
pub fn validate(spec: &Spec) -> Result<()> {
    if euid() == 0 {
        return Ok(());
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::config("linux", "required"))?;
    let has_userns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User);
    if !has_userns {
        return Err(Error::config(
            "linux.namespaces",
            "running as an unprivileged user needs a user namespace (add {\"type\": \"user\"}; \
             `hull spec --rootless` writes such a config)",
        ));
    }
    let uids = linux.uid_mappings().as_deref().unwrap_or(&[]);
    let gids = linux.gid_mappings().as_deref().unwrap_or(&[]);
    for (field, maps) in [("linux.uidMappings", uids), ("linux.gidMappings", gids)] {
        if maps.is_empty() {
            return Err(Error::config(
                field,
                "running as an unprivileged user needs at least one mapping",
            ));
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        for (j, opt) in m.options().iter().flatten().enumerate() {
            let (maps, id) = if let Some(v) = opt.strip_prefix("uid=") {
                (uids, v)
            } else if let Some(v) = opt.strip_prefix("gid=") {
                (gids, v)
            } else {
                continue;
            };
            let mapped = id.parse::<u32>().is_ok_and(|id| {
                maps.iter()
                    .any(|m| id >= m.container_id() && id - m.container_id() < m.size())
            });
            if !mapped {
                return Err(Error::config(
                    format!("mounts[{i}].options[{j}]"),
                    format!("{opt:?}: the id is not mapped in the user namespace (running as an unprivileged user)"),
                ));
            }
        }
    }
    Ok(())
}

/// Whether the kernel lets this (unprivileged) process write `maps` into
/// its child's uid_map or gid_map itself: a single mapping of its own id.
pub fn writable_directly(maps: &[LinuxIdMapping], own: u32) -> bool {
    matches!(maps, [m] if m.host_id() == own && m.size() == 1)
}

/// Write an id map through the setuid helper (`newuidmap` or
/// `newgidmap`, Debian's `uidmap` package), which checks the ranges
/// against /etc/subuid or /etc/subgid. `map` is the uid_map text.
pub fn write_with_helper(helper: &str, pid: libc::pid_t, map: &str, field: &str) -> Result<()> {
    let Some(bin) = find_in_path(helper) else {
        return Err(Error::config(
            field,
            format!(
                "{} needs the setuid helper {helper} to map several ranges as an \
                 unprivileged user, and it is not in $PATH (install the uidmap package)",
                map.trim().replace('\n', ", ")
            ),
        ));
    };
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg(pid.to_string());
    cmd.args(map.split_whitespace());
    let out = cmd.output().map_err(|e| Error::io(&bin, e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::config(
        field,
        format!(
            "{} {}: {} (the ranges must be granted to this user in /etc/sub{}id)",
            bin.display(),
            map.trim().replace('\n', " "),
            String::from_utf8_lossy(&out.stderr).trim(),
            if helper == "newuidmap" { "u" } else { "g" }
        ),
    ))
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_like_runc() {
        assert_eq!(Mode::parse(None).unwrap(), Mode::Auto);
        assert_eq!(Mode::parse(Some("auto")).unwrap(), Mode::Auto);
        assert_eq!(Mode::parse(Some("true")).unwrap(), Mode::On);
        assert_eq!(Mode::parse(Some("1")).unwrap(), Mode::On);
        assert_eq!(Mode::parse(Some("False")).unwrap(), Mode::Off);
        let err = Mode::parse(Some("yes")).unwrap_err().to_string();
        assert!(err.contains("--rootless") && err.contains("yes"), "{err}");
        assert!(Mode::On.enabled() && !Mode::Off.enabled());
    }

    #[test]
    fn the_initial_user_namespace_is_recognised() {
        assert!(is_initial_uid_map("         0          0 4294967295\n"));
        assert!(!is_initial_uid_map("         0       1000          1\n"));
        assert!(!is_initial_uid_map(""));
    }

    #[test]
    fn only_a_single_own_id_is_written_directly() {
        let m: Vec<LinuxIdMapping> = serde_json::from_str(
            r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":100000,"size":65536}]"#,
        )
        .unwrap();
        assert!(writable_directly(&m[..1], 1000));
        assert!(!writable_directly(&m[..1], 1001));
        assert!(!writable_directly(&m, 1000));
    }

    #[test]
    fn the_xdg_root_is_used_only_without_root() {
        let env = |k: &str| (k == "XDG_RUNTIME_DIR").then(|| "/run/user/1000".to_string());
        let (root, xdg) = default_root(env);
        if euid() != 0 {
            assert_eq!((root, xdg), (PathBuf::from("/run/user/1000/hull"), true));
        } else if !running_in_userns() {
            assert_eq!((root, xdg), (PathBuf::from("/run/hull"), false));
        }
        assert_eq!(default_root(|_| None), (PathBuf::from("/run/hull"), false));
    }
}
