//! A corpus of hostile bundles (issue 19): symlinks in the image that point
//! out of the rootfs and are used as mount destinations, device paths,
//! /proc, /dev, /sys, masked and read-only paths and the cwd; a root.path
//! that is a symlink; host device nodes shipped in the image; FIFOs where
//! files are expected; a bundle on a read-only filesystem; newlines and
//! commas in mount fields; symlinked bind sources; /proc/self tricks.
//!
//! Every case is run through hull and through runc. Before and after each
//! run the host files the attack aims at (a sentinel directory next to the
//! bundle, the bundle's own directory, /etc/hostname) are snapshotted —
//! types, modes, owners, sizes, mtimes and contents — and must be
//! unchanged; nothing may be left behind. hull must refuse (with an error
//! naming the field) or contain the effect inside the rootfs, as each case
//! says; runc's result is only recorded, and a table of both is printed at
//! the end. The attacks aim at sentinels in temp dirs, never at real system
//! files, so that a runtime following them cannot harm the host.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Bundle, Out, Runtime};
use serde_json::json;

/// How long one `run` may take; a FIFO that blocks the runtime is a hang.
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// Where a case aims: a host directory outside the bundle with a file, a
/// node-like file owned by someone else and a subdirectory.
struct Target {
    dir: PathBuf,
}

impl Target {
    fn new(b: &Bundle) -> Target {
        let dir = b.host_dir("sentinel");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join("file"), "sentinel\n").unwrap();
        fs::write(dir.join("node"), "not a device\n").unwrap();
        fs::set_permissions(dir.join("node"), fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(dir.join("node"), Some(1234), Some(1234)).unwrap();
        fs::create_dir(dir.join("dir")).unwrap();
        fs::write(dir.join("dir/inner"), "inner\n").unwrap();
        Target { dir }
    }

    /// `../../..` up to the rootfs's root (and beyond, on the host), then
    /// the sentinel's absolute path.
    fn relative(&self) -> String {
        format!("../../../../../../../../..{}", self.dir.display())
    }

    /// Where the sentinel path lands when resolved inside the rootfs.
    fn inside(&self, b: &Bundle) -> PathBuf {
        b.rootfs().join(self.dir.strip_prefix("/").unwrap())
    }
}

/// One line per file: type, mode, owner, size, mtime, rdev and (regular
/// files only: FIFOs and devices are never opened) a hash of the contents.
fn snapshot(paths: &[PathBuf], skip: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, skip, &mut out);
    }
    out
}

fn walk(p: &Path, skip: &[PathBuf], out: &mut Vec<String>) {
    if skip.iter().any(|s| s == p) {
        return;
    }
    let Ok(m) = fs::symlink_metadata(p) else {
        out.push(format!("{}: missing", p.display()));
        return;
    };
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "link"
    } else if ft.is_file() {
        "file"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_block_device() {
        "blk"
    } else if ft.is_char_device() {
        "chr"
    } else {
        "other"
    };
    let extra = if ft.is_file() {
        let data = fs::read(p).unwrap_or_default();
        let sum = data.iter().fold(0xcbf29ce484222325u64, |h, &c| {
            (h ^ c as u64).wrapping_mul(0x100000001b3)
        });
        format!("fnv={sum:x}")
    } else if ft.is_symlink() {
        format!("-> {:?}", fs::read_link(p).unwrap_or_default())
    } else {
        String::new()
    };
    out.push(format!(
        "{}: {kind} mode={:o} uid={} gid={} size={} mtime={}.{} ctime={}.{} rdev={} {extra}",
        p.display(),
        m.mode(),
        m.uid(),
        m.gid(),
        if ft.is_dir() { 0 } else { m.size() },
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.rdev(),
    ));
    if ft.is_dir() {
        let mut names: Vec<_> = fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        names.sort();
        for n in names {
            walk(&n, skip, out);
        }
    }
}

/// What hull must do with a case.
#[derive(Clone, Copy)]
enum Expect {
    /// Fail, with an error mentioning one of these words.
    Refuse(&'static [&'static str]),
    /// Run, with the container's output containing this.
    Contain(&'static str),
    /// Either run, or fail mentioning one of these words.
    Either(&'static [&'static str]),
}

/// How a runtime's `run` ended.
enum Outcome {
    Ran(Out),
    Refused(Out),
    Hung,
}

impl Outcome {
    fn short(&self) -> String {
        match self {
            Outcome::Ran(_) => "accept".into(),
            Outcome::Refused(o) => {
                let msg = o
                    .stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .to_string();
                // The gist: no timestamps, runtime or container names.
                let msg = msg.rsplit("msg=\"").next().unwrap_or("");
                let msg = msg.trim_start_matches("runc run failed: ");
                let msg = match msg.strip_prefix("hull: container \"") {
                    Some(rest) => rest.split_once("\": ").map_or(rest, |(_, m)| m),
                    None => msg.trim_start_matches("hull: "),
                };
                let msg: String = msg.chars().take(90).collect();
                format!("refuse ({msg})")
            }
            Outcome::Hung => "HANG".into(),
        }
    }
}

/// Builds a case's bundle; may return a different `--bundle` directory
/// (the read-only bundle) and extra host paths to snapshot.
type Build = fn(&mut Bundle, &Target) -> Setup;

#[derive(Default)]
struct Setup {
    bundle_dir: Option<PathBuf>,
    watch: Vec<PathBuf>,
    /// Checked after the run (whatever it did) for hull.
    after: Option<fn(&Bundle, &Target, &Outcome)>,
}

struct Case {
    name: &'static str,
    build: Build,
    hull: Expect,
}

fn no_dev_tmpfs(b: &mut Bundle) {
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/dev");
}

fn tmpfs_at(b: &mut Bundle, dest: &str) {
    b.mount(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs"}));
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o644) },
        0,
        "mkfifo {p:?}"
    );
}

fn mknod(p: &Path, mode: libc::mode_t, dev: libc::dev_t) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mknod(c.as_ptr(), mode, dev) },
        0,
        "mknod {p:?}"
    );
}

fn push(b: &mut Bundle, list: &str, path: &str) {
    b.config["linux"][list]
        .as_array_mut()
        .unwrap()
        .push(json!(path));
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "mount-dest-abs-symlink",
            build: |b, t| {
                symlink(&t.dir, b.rootfs().join("evil")).unwrap();
                tmpfs_at(b, "/evil");
                b.sh("touch /evil/pwned && echo CONTAINED");
                Setup {
                    after: Some(|b, t, _| {
                        assert!(t.inside(b).is_dir(), "mount point not made in the rootfs");
                    }),
                    ..Setup::default()
                }
            },
            hull: Expect::Contain("CONTAINED"),
        },
        Case {
            name: "mount-dest-rel-symlink",
            build: |b, t| {
                symlink("../../../../../../../../..", b.rootfs().join("up")).unwrap();
                tmpfs_at(b, &format!("/up{}", t.dir.display()));
                b.sh(&format!(
                    "touch /up{}/pwned && echo CONTAINED",
                    t.dir.display()
                ));
                Setup::default()
            },
            hull: Expect::Contain("CONTAINED"),
        },
        Case {
            name: "bind-file-dest-symlink",
            build: |b, t| {
                let payload = b.host_dir("payload").join("p");
                fs::write(&payload, "payload\n").unwrap();
                symlink(t.dir.join("file"), b.rootfs().join("etc/evilfile")).unwrap();
                b.mount(json!({"destination": "/etc/evilfile", "type": "bind",
                    "source": payload, "options": ["bind", "ro"]}));
                b.sh("cat /etc/evilfile && echo CONTAINED");
                Setup {
                    after: Some(|b, t, o| {
                        if matches!(o, Outcome::Ran(_)) {
                            assert!(
                                t.inside(b).join("file").is_file(),
                                "mountpoint not in rootfs"
                            );
                        }
                    }),
                    ..Setup::default()
                }
            },
            hull: Expect::Contain("payload\nCONTAINED"),
        },
        Case {
            name: "device-path-symlink",
            build: |b, t| {
                no_dev_tmpfs(b);
                symlink(t.dir.join("node"), b.rootfs().join("dev/evil")).unwrap();
                b.config["linux"]["devices"] = json!([{"path": "/dev/evil", "type": "c",
                    "major": 1, "minor": 3, "fileMode": 438, "uid": 4321, "gid": 4321}]);
                b.sh("echo x > /dev/evil; echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Contain("CONTAINED"),
        },
        Case {
            name: "device-path-dotdot",
            build: |b, t| {
                let path = format!("/dev/../../../../../..{}/node", t.dir.display());
                b.config["linux"]["devices"] = json!([{"path": path, "type": "c",
                    "major": 1, "minor": 3, "fileMode": 438, "uid": 4321, "gid": 4321}]);
                b.sh("echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Either(&["linux.devices[0]"]),
        },
        Case {
            name: "mount-dest-dotdot",
            build: |b, t| {
                tmpfs_at(b, &format!("/../../../../../..{}", t.dir.display()));
                b.sh(&format!(
                    "touch {}/pwned && echo CONTAINED",
                    t.dir.display()
                ));
                Setup::default()
            },
            hull: Expect::Contain("CONTAINED"),
        },
        Case {
            name: "dev-abs-symlink-no-tmpfs",
            build: |b, t| {
                no_dev_tmpfs(b);
                fs::remove_dir(b.rootfs().join("dev")).unwrap();
                symlink(&t.dir, b.rootfs().join("dev")).unwrap();
                b.sh("echo x > /dev/null && echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Either(&["/dev", "devices", "mounts["]),
        },
        Case {
            name: "dev-rel-symlink-tmpfs",
            build: |b, t| {
                fs::remove_dir(b.rootfs().join("dev")).unwrap();
                symlink(t.relative(), b.rootfs().join("dev")).unwrap();
                b.sh("echo x > /dev/null && touch /dev/pwned && echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Contain("CONTAINED"),
        },
        Case {
            name: "dev-pts-symlink",
            build: |b, t| {
                no_dev_tmpfs(b);
                symlink(&t.dir, b.rootfs().join("dev/pts")).unwrap();
                b.sh("ls /dev/pts >/dev/null && echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Contain("CONTAINED"),
        },
        Case {
            name: "dev-shm-rel-symlink",
            build: |b, t| {
                no_dev_tmpfs(b);
                symlink(t.relative(), b.rootfs().join("dev/shm")).unwrap();
                b.sh("touch /dev/shm/pwned && echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Contain("CONTAINED"),
        },
        Case {
            name: "proc-abs-symlink",
            build: |b, t| {
                fs::remove_dir(b.rootfs().join("proc")).unwrap();
                symlink(&t.dir, b.rootfs().join("proc")).unwrap();
                b.args(&["true"]);
                Setup::default()
            },
            hull: Expect::Either(&["/proc", "mounts[0]"]),
        },
        Case {
            name: "proc-rel-symlink",
            build: |b, t| {
                fs::remove_dir(b.rootfs().join("proc")).unwrap();
                symlink(t.relative(), b.rootfs().join("proc")).unwrap();
                b.args(&["true"]);
                Setup::default()
            },
            hull: Expect::Either(&["/proc", "mounts[0]"]),
        },
        Case {
            name: "sys-abs-symlink",
            build: |b, t| {
                fs::remove_dir(b.rootfs().join("sys")).unwrap();
                symlink(&t.dir, b.rootfs().join("sys")).unwrap();
                b.sh("ls /sys/fs/cgroup >/dev/null && echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Either(&["/sys", "mounts["]),
        },
        Case {
            name: "masked-path-symlinks",
            build: |b, t| {
                symlink(t.dir.join("file"), b.rootfs().join("etc/masked-file")).unwrap();
                symlink(t.relative(), b.rootfs().join("masked-dir")).unwrap();
                push(b, "maskedPaths", "/etc/masked-file");
                push(b, "maskedPaths", "/masked-dir");
                b.sh("cat /etc/masked-file; ls /masked-dir; echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Contain("CONTAINED"),
        },
        Case {
            name: "readonly-path-symlinks",
            build: |b, t| {
                symlink(&t.dir, b.rootfs().join("ro-abs")).unwrap();
                symlink(t.relative(), b.rootfs().join("ro-rel")).unwrap();
                push(b, "readonlyPaths", "/ro-abs");
                push(b, "readonlyPaths", "/ro-rel/dir");
                b.sh("touch /ro-abs/pwned /ro-rel/dir/pwned; echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Contain("CONTAINED"),
        },
        Case {
            name: "cwd-abs-symlink",
            build: |b, t| {
                symlink(&t.dir, b.rootfs().join("work")).unwrap();
                b.cwd("/work");
                b.sh("touch pwned && echo CONTAINED");
                Setup {
                    after: Some(|b, t, o| {
                        if matches!(o, Outcome::Ran(_)) {
                            assert!(t.inside(b).join("pwned").exists(), "cwd not in rootfs");
                        }
                    }),
                    ..Setup::default()
                }
            },
            hull: Expect::Contain("CONTAINED"),
        },
        Case {
            name: "cwd-rel-symlink",
            build: |b, t| {
                symlink(t.relative(), b.rootfs().join("work")).unwrap();
                b.cwd("/work/dir");
                b.sh("touch pwned && echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Contain("CONTAINED"),
        },
        Case {
            name: "cwd-proc-self-cwd",
            build: |b, _| {
                b.cwd("/proc/self/cwd");
                b.sh("pwd; echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Either(&["cwd"]),
        },
        Case {
            name: "root-path-symlink-to-rootfs",
            build: |b, _| {
                fs::rename(b.rootfs(), b.dir().join("real-rootfs")).unwrap();
                symlink("real-rootfs", b.rootfs()).unwrap();
                b.args(&["true"]);
                Setup::default()
            },
            hull: Expect::Refuse(&["root.path"]),
        },
        Case {
            name: "root-path-symlink-to-host-dir",
            build: |b, t| {
                let real = b.dir().join("real-rootfs");
                fs::rename(b.rootfs(), &real).unwrap();
                symlink(&t.dir, b.rootfs()).unwrap();
                // The sentinel holds a usable rootfs: a runtime that follows
                // the link would run in (and write to) the host directory.
                fs::create_dir(t.dir.join("bin")).unwrap();
                fs::copy(real.join("bin/busybox"), t.dir.join("bin/true")).unwrap();
                b.args(&["/bin/true"]);
                Setup::default()
            },
            hull: Expect::Refuse(&["root.path"]),
        },
        Case {
            name: "root-path-fifo",
            build: |b, _| {
                fs::rename(b.rootfs(), b.dir().join("real-rootfs")).unwrap();
                mkfifo(&b.rootfs());
                b.args(&["true"]);
                Setup::default()
            },
            hull: Expect::Refuse(&["root.path"]),
        },
        Case {
            name: "shipped-host-disk-node",
            build: |b, _| {
                let dev = fs::metadata("/").unwrap().dev();
                mknod(&b.rootfs().join("hostdisk"), libc::S_IFBLK | 0o666, dev);
                b.sh(
                    "if head -c1 /hostdisk >/dev/null 2>&1; then echo OPENED; else echo DENIED; fi",
                );
                Setup::default()
            },
            hull: Expect::Contain("DENIED"),
        },
        Case {
            name: "shipped-disk-node-as-dev-null",
            build: |b, _| {
                no_dev_tmpfs(b);
                let dev = fs::metadata("/").unwrap().dev();
                mknod(&b.rootfs().join("dev/null"), libc::S_IFBLK | 0o666, dev);
                b.sh("if [ -b /dev/null ] && dd if=/dev/null of=/dev/zero bs=1 count=1 2>/dev/null; \
                      then echo OPENED; \
                      elif head -c1 /proc/kcore >/dev/null 2>&1; then echo OPENED; \
                      else echo DENIED; fi");
                Setup::default()
            },
            hull: Expect::Either(&["/dev/null", "devices"]),
        },
        Case {
            name: "fifo-etc-hostname",
            build: |b, _| {
                mkfifo(&b.rootfs().join("etc/hostname"));
                b.sh("hostname && echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Contain("hulltest\nCONTAINED"),
        },
        Case {
            name: "fifo-etc-passwd-group",
            build: |b, _| {
                fs::remove_file(b.rootfs().join("etc/passwd")).unwrap();
                fs::remove_file(b.rootfs().join("etc/group")).unwrap();
                mkfifo(&b.rootfs().join("etc/passwd"));
                mkfifo(&b.rootfs().join("etc/group"));
                b.user(1000, 1000, &[]);
                // Nothing in the container reads them: only the runtime.
                b.sh("echo \"home=$HOME\" && echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Contain("home=/\nCONTAINED"),
        },
        Case {
            name: "zero-node-as-etc-passwd",
            build: |b, _| {
                // Endless zeros where the runtime looks the user up.
                fs::remove_file(b.rootfs().join("etc/passwd")).unwrap();
                mknod(
                    &b.rootfs().join("etc/passwd"),
                    libc::S_IFCHR | 0o644,
                    libc::makedev(1, 5),
                );
                b.user(1000, 1000, &[]);
                b.sh("echo \"home=$HOME\" && echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Contain("home=/\nCONTAINED"),
        },
        Case {
            name: "fifo-masked-and-ro-path",
            build: |b, _| {
                mkfifo(&b.rootfs().join("fifo-masked"));
                mkfifo(&b.rootfs().join("fifo-ro"));
                push(b, "maskedPaths", "/fifo-masked");
                push(b, "readonlyPaths", "/fifo-ro");
                b.sh("echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Contain("CONTAINED"),
        },
        Case {
            name: "fifo-mount-dest",
            build: |b, _| {
                let payload = b.host_dir("payload").join("p");
                fs::write(&payload, "payload\n").unwrap();
                mkfifo(&b.rootfs().join("etc/fifo-dest"));
                b.mount(json!({"destination": "/etc/fifo-dest", "type": "bind",
                    "source": payload, "options": ["bind", "ro"]}));
                b.sh("cat /etc/fifo-dest && echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Contain("payload\nCONTAINED"),
        },
        Case {
            name: "fifo-cwd",
            build: |b, _| {
                mkfifo(&b.rootfs().join("fifo-cwd"));
                b.cwd("/fifo-cwd");
                b.args(&["true"]);
                Setup::default()
            },
            hull: Expect::Refuse(&["cwd"]),
        },
        Case {
            name: "read-only-bundle",
            build: |b, _| read_only_bundle(b),
            hull: Expect::Contain("CONTAINED"),
        },
        Case {
            name: "read-only-bundle-no-mountpoint",
            build: |b, _| {
                fs::remove_dir(b.rootfs().join("proc")).unwrap();
                read_only_bundle(b)
            },
            hull: Expect::Refuse(&["mounts[0]", "/proc"]),
        },
        Case {
            name: "newline-comma-dest",
            build: |b, _| {
                b.mount(json!({"destination": "/mnt/a,b\nc", "type": "tmpfs",
                    "source": "tmp,fs\nx", "options": ["ro", "mode=755"]}));
                b.sh(
                    "ls -d '/mnt/a,b\nc' >/dev/null && ! touch '/mnt/a,b\nc/x' 2>/dev/null \
                      && echo CONTAINED",
                );
                Setup::default()
            },
            hull: Expect::Contain("CONTAINED"),
        },
        Case {
            name: "newline-comma-bind-source",
            build: |b, t| {
                let src = b.host_dir("src,dir\nx");
                fs::write(src.join("f"), "from source\n").unwrap();
                let _ = t;
                b.mount(json!({"destination": "/mnt/s,\n", "type": "bind",
                    "source": src, "options": ["rbind", "ro"]}));
                b.sh("cat '/mnt/s,\n/f' && ! touch '/mnt/s,\n/x' 2>/dev/null && echo CONTAINED");
                Setup {
                    watch: vec![b.dir().parent().unwrap().join("src,dir\nx")],
                    ..Setup::default()
                }
            },
            hull: Expect::Contain("from source\nCONTAINED"),
        },
        Case {
            name: "comma-newline-in-options",
            build: |b, _| {
                b.mount(
                    json!({"destination": "/mnt/o", "type": "tmpfs", "source": "tmpfs",
                    "options": ["mode=700,uid=4321", "size=1m\nnr_inodes=9"]}),
                );
                b.sh("stat -c %u /mnt/o && echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Either(&["mounts[7]"]),
        },
        Case {
            name: "bind-source-host-symlink",
            build: |b, t| {
                symlink(t.dir.join("dir"), t.dir.join("link")).unwrap();
                b.mount(json!({"destination": "/mnt/b", "type": "bind",
                    "source": t.dir.join("link"), "options": ["rbind", "ro"]}));
                b.sh("cat /mnt/b/inner && echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Contain("inner\nCONTAINED"),
        },
        Case {
            name: "bind-source-image-symlink",
            build: |b, t| {
                // A relative source is a host path (under the bundle): an
                // image symlink on it is followed on the host, as by runc.
                symlink(t.dir.join("dir"), b.rootfs().join("src-link")).unwrap();
                b.mount(json!({"destination": "/mnt/b", "type": "bind",
                    "source": "rootfs/src-link", "options": ["rbind", "ro"]}));
                b.sh("cat /mnt/b/inner && echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Contain("inner\nCONTAINED"),
        },
        Case {
            name: "dest-symlink-proc-self-root",
            build: |b, t| {
                symlink(
                    format!("/proc/self/root{}", t.dir.display()),
                    b.rootfs().join("evil"),
                )
                .unwrap();
                tmpfs_at(b, "/evil");
                b.sh("touch /evil/pwned && echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Either(&["mounts[7]"]),
        },
        Case {
            name: "dest-through-proc-self-root",
            build: |b, t| {
                tmpfs_at(b, &format!("/proc/self/root{}", t.dir.display()));
                b.sh("echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Refuse(&["mounts[7]"]),
        },
        Case {
            name: "dest-symlink-proc-self-cwd",
            build: |b, _| {
                symlink("/proc/self/cwd", b.rootfs().join("evil")).unwrap();
                tmpfs_at(b, "/evil/x");
                b.sh("echo CONTAINED");
                Setup::default()
            },
            hull: Expect::Either(&["mounts[7]"]),
        },
    ]
}

/// Bind-mounts the bundle read-only next to itself and runs from there.
fn read_only_bundle(b: &mut Bundle) -> Setup {
    b.sh("echo CONTAINED");
    let ro = b.host_dir("ro-bundle");
    let st = std::process::Command::new("mount")
        .args(["--bind", "-o", "ro"])
        .arg(b.dir())
        .arg(&ro)
        .status()
        .unwrap();
    assert!(st.success());
    let st = std::process::Command::new("mount")
        .args(["-o", "remount,bind,ro"])
        .arg(&ro)
        .status()
        .unwrap();
    assert!(st.success());
    Setup {
        bundle_dir: Some(ro),
        ..Setup::default()
    }
}

/// Runs one case through one runtime, checks the host is untouched and
/// nothing is left, and returns how it ended.
fn run_case(case: &Case, bin: &Path, label: &str) -> Outcome {
    let tag = format!("{}-{label}", case.name);
    let mut b = Bundle::new(&tag);
    let t = Target::new(&b);
    let rt = Runtime::with_bin(bin, &tag);
    let id = common::unique_id(&tag);
    let setup = (case.build)(&mut b, &t);
    // bundle_cmd writes it again (same contents, new mtime): not watched.
    b.save_for(&id);
    let tmp = b.dir().parent().unwrap().to_path_buf();
    let mut watch = vec![tmp.clone(), PathBuf::from("/etc/hostname")];
    watch.extend(setup.watch.iter().cloned());
    let mut skip = vec![b.config_path(), b.rootfs(), b.dir().join("real-rootfs")];
    if let Some(ro) = &setup.bundle_dir {
        skip.push(ro.clone());
    }
    let before = snapshot(&watch, &skip);
    let pending = match &setup.bundle_dir {
        None => rt.spawn_run(&id, &mut b, &[], |_| {}),
        Some(dir) => {
            rt.track(&id);
            let dir = dir.display().to_string();
            rt.spawn(&["run", &id, "--bundle", &dir])
        }
    };
    let mut pending = pending;
    let deadline = Instant::now() + RUN_TIMEOUT;
    let outcome = loop {
        if pending.has_exited() {
            let out = pending.wait();
            break if out.success() {
                Outcome::Ran(out)
            } else {
                Outcome::Refused(out)
            };
        }
        if Instant::now() > deadline {
            drop(pending);
            let _ = rt.cmd(&["delete", "--force", &id]);
            break Outcome::Hung;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let after = snapshot(&watch, &skip);
    let show = match &outcome {
        Outcome::Ran(o) | Outcome::Refused(o) => o.to_string(),
        Outcome::Hung => "(hung)".into(),
    };
    let changed: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
    let gone: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
    assert!(
        changed.is_empty() && gone.is_empty(),
        "{tag}: host files changed:\nnow: {changed:#?}\nwas: {gone:#?}\n{show}"
    );
    // A runtime killed while it hangs leaves its cgroup: say why.
    assert!(
        label != "hull" || !matches!(outcome, Outcome::Hung),
        "{tag}: hull hung"
    );
    rt.assert_nothing_left(&id);
    if let Some(f) = setup.after {
        if label == "hull" {
            f(&b, &t, &outcome);
        }
    }
    // The read-only bind goes before the bundle (TempDir removal copes too).
    if let Some(ro) = &setup.bundle_dir {
        common::safe_remove(ro);
    }
    outcome
}

fn check_hull(case: &Case, o: &Outcome) {
    let name = case.name;
    match (case.hull, o) {
        (_, Outcome::Hung) => panic!("{name}: hull hung"),
        (Expect::Refuse(words), Outcome::Refused(out)) => {
            out.fails().hull_error_mentions(words);
        }
        (Expect::Refuse(_), Outcome::Ran(out)) => panic!("{name}: hull accepted:\n{out}"),
        (Expect::Contain(want), Outcome::Ran(out)) => {
            assert!(out.stdout.contains(want), "{name}: wanted {want:?}:\n{out}")
        }
        (Expect::Contain(_), Outcome::Refused(out)) => panic!("{name}: hull refused:\n{out}"),
        (Expect::Either(words), Outcome::Refused(out)) => {
            out.fails().hull_error_mentions(words);
        }
        (Expect::Either(_), Outcome::Ran(out)) => {
            assert!(
                !out.stdout.contains("OPENED"),
                "{name}: the container opened a host device:\n{out}"
            );
        }
    }
}

fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The whole corpus: hull must hold on every case; runc is recorded.
/// `HOSTILE_CASE=name` runs the cases whose name contains it.
#[test]
fn hostile_bundle_corpus() {
    if common::skip() {
        return;
    }
    let only = std::env::var("HOSTILE_CASE").ok();
    let runc = Path::new(common::RUNC);
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for case in cases() {
        if only.as_deref().is_some_and(|o| !case.name.contains(o)) {
            continue;
        }
        let bin = common::runtime_bin();
        let hull = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let o = run_case(&case, &bin, "hull");
            check_hull(&case, &o);
            o.short()
        }));
        let hull = hull.unwrap_or_else(|e| {
            failures.push(format!("{}: {}", case.name, panic_text(e)));
            "FAILED".into()
        });
        let runc_out = if runc.exists() && common::is_hull() {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_case(&case, runc, "runc").short()
            }))
            .unwrap_or_else(|e| {
                let msg = panic_text(e);
                eprintln!("runc, {}: {msg}", case.name);
                if msg.contains("host files changed") {
                    "HOST FILES CHANGED (see above)".into()
                } else {
                    "CHECK FAILED (see above)".into()
                }
            })
        } else {
            "-".into()
        };
        table.push((case.name, hull, runc_out));
    }
    eprintln!("\n| case | hull | runc |\n|---|---|---|");
    for (name, h, r) in &table {
        eprintln!("| {name} | {h} | {r} |");
    }
    assert!(
        failures.is_empty(),
        "hull failed cases:\n{}",
        failures.join("\n")
    );
}
