//! What the process inside the container sees: hostname, env, cwd, mounts,
//! read-only rootfs, masked paths, pid namespace, /dev.

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;

use common::{Bundle, Out, Runtime};
use serde_json::json;

/// Runs `sh -c SCRIPT` in a fresh container (after `tweak` adjusted the
/// bundle) and returns the runtime's output; asserts nothing is left.
fn run_sh(name: &str, script: &str, tweak: impl FnOnce(&mut Bundle)) -> Out {
    let rt = Runtime::new(name);
    let mut b = Bundle::new(name);
    b.sh(script);
    tweak(&mut b);
    let id = common::unique_id(name);
    let out = rt.run(&id, &mut b, &[]);
    rt.assert_nothing_left(&id);
    out
}

/// The value of the `key=value` line in `out`, or panics.
fn field<'a>(out: &'a Out, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {key}= line in output:\n{out}"))
}

fn host_hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn hostname_from_config() {
    if common::skip() {
        return;
    }
    let before = host_hostname();
    let out = run_sh("hostname", "hostname; cat /proc/sys/kernel/hostname", |b| {
        b.hostname("hull-in-a-box");
    });
    out.ok();
    assert_eq!(out.stdout, "hull-in-a-box\nhull-in-a-box\n", "{out}");
    assert_eq!(host_hostname(), before, "the host's hostname changed");
}

#[test]
fn env_and_cwd() {
    if common::skip() {
        return;
    }
    let out = run_sh("envcwd", "echo \"$FOO\"; pwd; echo \"$PATH\"", |b| {
        b.env("FOO=bar").env("SPACED=a b  c").cwd("/tmp");
    });
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"bar"), "{out}");
    assert_eq!(lines.get(1), Some(&"/tmp"), "{out}");
    assert_eq!(
        lines.get(2),
        Some(&"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        "{out}"
    );

    let out = run_sh(
        "envcwd2",
        "printf '%s|' \"$SPACED\"; env | grep -c '^SPACED='",
        |b| {
            b.env("SPACED=a b  c");
        },
    );
    out.ok();
    assert_eq!(out.stdout, "a b  c|1\n", "{out}");
}

#[test]
fn bind_and_tmpfs_mounts() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("mounts");
    let mut b = Bundle::new("mounts");
    let host = b.host_dir("shared");
    fs::write(host.join("data.txt"), "from-the-host\n").unwrap();
    b.bind(&host, "/hostdata")
        .mount(json!({
            "destination": "/scratch",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "size=1m"],
        }))
        .sh("cat /hostdata/data.txt; \
             echo written-inside > /hostdata/back.txt; \
             grep ' /scratch ' /proc/mounts; \
             echo scratch > /scratch/f && cat /scratch/f");
    let id = common::unique_id("mounts");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"from-the-host"), "{out}");
    let tmpfs = lines
        .iter()
        .find(|l| l.split(' ').nth(1) == Some("/scratch"))
        .unwrap_or_else(|| panic!("/scratch not mounted:\n{out}"));
    let f: Vec<&str> = tmpfs.split(' ').collect();
    assert_eq!(f[2], "tmpfs", "{tmpfs}");
    assert!(f[3].split(',').any(|o| o == "size=1024k"), "{tmpfs}");
    assert!(f[3].split(',').any(|o| o == "nosuid"), "{tmpfs}");
    assert_eq!(lines.last(), Some(&"scratch"), "{out}");
    // The bind mount is read-write and really is the host directory.
    assert_eq!(
        fs::read_to_string(host.join("back.txt")).unwrap_or_default(),
        "written-inside\n"
    );
    // The mount points were created inside the rootfs, nothing on the host.
    assert!(b.rootfs().join("scratch").is_dir());
    assert!(
        !b.rootfs().join("scratch/f").exists(),
        "tmpfs was not a tmpfs"
    );
    rt.assert_nothing_left(&id);
}

#[test]
fn readonly_rootfs() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("readonly");
    let mut b = Bundle::new("readonly");
    b.readonly(true).sh("touch /x");
    let id = common::unique_id("readonly");
    let out = rt.run(&id, &mut b, &[]);
    assert_ne!(out.code, 0, "touch on a read-only rootfs succeeded:\n{out}");
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert!(!b.rootfs().join("x").exists());
    rt.assert_nothing_left(&id);

    // /dev and /proc stay usable on a read-only rootfs; / is mounted ro.
    b.sh("echo x > /dev/null && echo dev-ok; grep ' / ' /proc/self/mounts | head -n 1");
    let id = common::unique_id("readonly");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    assert!(out.stdout.starts_with("dev-ok\n"), "{out}");
    let root_line = out.stdout.lines().nth(1).unwrap_or("");
    let opts = root_line.split(' ').nth(3).unwrap_or("");
    assert!(opts.split(',').any(|o| o == "ro"), "/ not ro: {root_line}");
    rt.assert_nothing_left(&id);
}

/// Bytes readable from a file, or entries of a directory, on the host
/// (None if the path does not exist).
fn host_content(p: &str) -> Option<usize> {
    let path = Path::new(p);
    if path.is_dir() {
        return Some(fs::read_dir(path).map(|d| d.count()).unwrap_or(0));
    }
    let mut buf = [0u8; 64];
    fs::File::open(path)
        .ok()
        .map(|mut f| f.read(&mut buf).unwrap_or(0))
}

#[test]
fn masked_and_readonly_paths() {
    if common::skip() {
        return;
    }
    // Every masked path that shows something on the host must show nothing
    // inside: files read as empty, directories list as empty. /proc/kcore
    // and /sys/firmware are the classic ones (when the host has them).
    let masked: Vec<String> = common::default_config()["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(masked.iter().any(|m| m == "/proc/kcore"));
    assert!(masked.iter().any(|m| m == "/sys/firmware"));
    let visible: Vec<&String> = masked
        .iter()
        .filter(|m| host_content(m).is_some_and(|n| n > 0))
        .collect();
    assert!(
        !visible.is_empty(),
        "host has nothing that masking would hide: {masked:?}"
    );

    let mut script = String::new();
    for m in &masked {
        script.push_str(&format!(
            "if [ -d {m} ]; then echo {m}=$(ls -A {m} | wc -l); \
             elif [ -e {m} ]; then echo {m}=$(head -c 64 {m} 2>/dev/null | wc -c); \
             else echo {m}=absent; fi\n"
        ));
    }
    // readonlyPaths that exist on the host must be read-only mounts.
    let readonly: Vec<String> = common::default_config()["linux"]["readonlyPaths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .filter(|p| Path::new(p).exists())
        .collect();
    assert!(readonly.iter().any(|p| p == "/proc/sys"));
    for p in &readonly {
        script.push_str(&format!(
            "echo ro:{p}=$(grep ' {p} ' /proc/self/mounts | tail -n 1 | cut -d' ' -f4)\n"
        ));
    }
    let out = run_sh("masked", &script, |_| {});
    out.ok();
    for m in visible {
        let got = field(&out, m);
        // A masked file may also be made unreadable; it must not leak bytes.
        assert!(
            got == "0" || got == "absent",
            "{m} not masked ({got} bytes/entries visible):\n{out}"
        );
    }
    if Path::new("/proc/kcore").exists() {
        assert_eq!(field(&out, "/proc/kcore"), "0", "{out}");
    }
    for p in &readonly {
        let opts = field(&out, &format!("ro:{p}"));
        assert!(
            opts.split(',').any(|o| o == "ro"),
            "{p} not read-only: {opts:?}\n{out}"
        );
    }
}

#[test]
fn pid_namespace() {
    if common::skip() {
        return;
    }
    let out = run_sh("pidns", "echo $$; ps", |_| {});
    out.ok();
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("1"), "{out}");
    let procs: Vec<&str> = lines.filter(|l| !l.contains("PID")).collect();
    assert!(
        !procs.is_empty() && procs.len() <= 3,
        "expected only sh and ps, got {procs:?}\n{out}"
    );
}

#[test]
fn dev_contents() {
    if common::skip() {
        return;
    }
    let script = r#"
for d in null zero full random urandom tty; do
  if [ -c /dev/$d ]; then echo "char $d $(stat -c '%t:%T' /dev/$d)"; else echo "notchar $d"; fi
done
for l in ptmx fd stdin stdout stderr; do
  if [ -L /dev/$l ]; then echo "link $l $(readlink /dev/$l)"; else echo "nolink $l"; fi
done
grep -E ' /dev/(shm|pts|mqueue) ' /proc/self/mounts | while read -r src dst fs rest; do echo "mount $dst $fs"; done
echo x > /dev/null && echo null-writable
if echo x > /dev/full 2>/dev/null; then echo full-wrote; else echo full-enospc; fi
echo zero=$(head -c 5 /dev/zero | wc -c) urandom=$(head -c 8 /dev/urandom | wc -c)
"#;
    let out = run_sh("dev", script, |_| {});
    out.ok();
    let have = |line: &str| out.stdout.lines().any(|l| l == line);
    for (dev, nums) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ] {
        let want = format!("char {dev} {nums}");
        assert!(have(&want), "missing `{want}`:\n{out}");
    }
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let want = format!("link {link} {target}");
        assert!(have(&want), "missing `{want}`:\n{out}");
    }
    for m in [
        "mount /dev/shm tmpfs",
        "mount /dev/pts devpts",
        "mount /dev/mqueue mqueue",
    ] {
        assert!(have(m), "missing `{m}`:\n{out}");
    }
    assert!(have("null-writable"), "{out}");
    assert!(have("full-enospc"), "{out}");
    assert!(have("zero=5 urandom=8"), "{out}");
}

/// Signals the runtime was started with ignored (nohup's SIGHUP, a shell's
/// SIGINT/SIGQUIT for background jobs) or blocked must not reach the
/// container's process: an ignored disposition survives execve. hull resets
/// exactly the ones it finds ignored, so this checks that bookkeeping.
#[test]
fn inherited_ignored_and_blocked_signals_are_reset() {
    if common::skip() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let name = "sigreset";
    let rt = Runtime::new(name);
    let mut b = Bundle::new(name);
    // No shell: ash ignores SIGQUIT itself.
    b.args(&["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"]);
    let id = common::unique_id(name);
    let out = rt
        .spawn_run(&id, &mut b, &[], |cmd| {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGUSR2] {
                        libc::signal(sig, libc::SIG_IGN);
                    }
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, libc::SIGUSR1);
                    libc::sigaddset(&mut set, libc::SIGRTMIN() + 3);
                    libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                    Ok(())
                });
            }
        })
        .wait();
    rt.assert_nothing_left(&id);
    out.ok();
    assert_eq!(
        out.stdout, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n",
        "{out}"
    );
}
