//! Engine integration: podman (Debian's podman 4.3) runs hull with
//! `podman --runtime <hull>`, next to runc, in the same run.
//!
//! The test installs podman with apt if it is missing and keeps all of its
//! state under a temp dir (`--root`, `--runroot`, `--tmpdir`, the vfs storage
//! driver, the cgroupfs manager, file events: no systemd needed). It
//! `podman import`s the busybox-static rootfs and runs the same steps with
//! hull and with runc, each through a wrapper script that logs its calls:
//! output, exit code, `--memory` (visible in the container's cgroup),
//! `run -d` + `exec` + `stop`, and a failing create whose error must carry
//! the runtime's message. hull must pass every step runc passes.
//!
//! Every run passes `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024`:
//! podman asks for its large defaults, which a host without
//! CAP_SYS_RESOURCE in its bounding set (like this test machine) refuses
//! for runc and hull alike. `--userns=keep-id` is rootless-only and not
//! covered (the test runs as root).
//!
//! Skipped (with a note) when not root, without busybox, or when podman
//! cannot be installed.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::engine::{compare_steps, run_timeout, runtime_invoked, wrapper, Run, Steps};
use common::{Bundle, TempDir};

const IMAGE: &str = "localhost/hullbox:latest";
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

fn ensure_podman() -> Result<(), String> {
    let have = Command::new("sh")
        .args(["-c", "command -v podman"])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if have {
        return Ok(());
    }
    let r = run_timeout(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "podman"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        Duration::from_secs(900),
    );
    if r.code != 0 {
        return Err(format!("apt-get install podman failed: {}", r.brief()));
    }
    Ok(())
}

/// podman with all of its state under one temp dir.
struct Podman {
    tmp: TempDir,
}

impl Podman {
    fn cmd(&self, runtime: Option<&Path>, args: &[&str]) -> Command {
        let d = self.tmp.path();
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ]);
        if let Some(rt) = runtime {
            c.arg("--runtime").arg(rt);
        }
        c.args(args);
        c
    }

    fn podman(&self, runtime: Option<&Path>, args: &[&str]) -> Run {
        run_timeout(&mut self.cmd(runtime, args), STEP_TIMEOUT)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.podman(None, &["rm", "-af", "-t", "0"]);
        let _ = Command::new("umount")
            .arg("-R")
            .arg("-l")
            .arg(self.tmp.path().join("root"))
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("umount")
            .arg("-R")
            .arg("-l")
            .arg(self.tmp.path().join("runroot"))
            .stderr(Stdio::null())
            .status();
        common::engine::remove_empty_cgroup_parent("libpod_parent");
    }
}

fn expect(r: &Run, ok: impl FnOnce(&Run) -> bool) -> Result<(), String> {
    if ok(r) {
        Ok(())
    } else {
        Err(r.brief())
    }
}

fn scenario(p: &Podman, name: &str, rt: &Path, calls: &Path) -> Steps {
    let mut steps: Steps = Vec::new();
    let run = |extra: &[&str], cmd: &[&str]| -> Run {
        let mut v = vec!["run", "--rm"];
        v.extend_from_slice(&ULIMITS);
        v.extend_from_slice(extra);
        v.push(IMAGE);
        v.extend_from_slice(cmd);
        p.podman(Some(rt), &v)
    };
    let r = run(&[], &["echo", "hello from podman"]);
    steps.push((
        "run: output",
        expect(&r, |r| {
            r.code == 0 && r.stdout.contains("hello from podman")
        }),
    ));
    let r = run(&[], &["sh", "-c", "exit 7"]);
    steps.push(("run: exit code", expect(&r, |r| r.code == 7)));
    let r = run(
        &["--memory", "64m"],
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        ],
    );
    steps.push((
        "--memory 64m (container's cgroup)",
        expect(&r, |r| r.stdout.trim() == "67108864"),
    ));

    let cname = format!("{name}-long");
    let mut v = vec!["run", "-d", "--name", &cname];
    v.extend_from_slice(&ULIMITS);
    v.extend_from_slice(&[
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.2; done",
    ]);
    let r = p.podman(Some(rt), &v);
    let up = r.code == 0;
    steps.push(("run -d", expect(&r, |r| r.code == 0)));
    if up {
        let r = p.podman(Some(rt), &["exec", &cname, "sh", "-c", "echo exec-ok"]);
        steps.push((
            "exec",
            expect(&r, |r| r.code == 0 && r.stdout.contains("exec-ok")),
        ));
        let r = p.podman(Some(rt), &["stop", "-t", "10", &cname]);
        let code = p.podman(Some(rt), &["inspect", "-f", "{{.State.ExitCode}}", &cname]);
        steps.push((
            "stop (SIGTERM honoured)",
            if r.code == 0 && code.stdout.trim() == "0" {
                Ok(())
            } else {
                Err(format!("stop: {} / exit code: {}", r.brief(), code.brief()))
            },
        ));
    }
    let _ = p.podman(Some(rt), &["rm", "-f", "-t", "0", &cname]);

    let r = run(&[], &["nosuch-binary"]);
    let all = format!("{}{}", r.stdout, r.stderr);
    steps.push((
        "create failure: runtime's message in podman's error",
        if r.code != 0 && all.contains("nosuch-binary") && all.contains("executable file not found")
        {
            Ok(())
        } else {
            Err(r.brief())
        },
    ));

    steps.push(runtime_invoked(calls));
    steps
}

#[test]
fn podman_runs_hull_like_runc() {
    if common::skip() {
        return;
    }
    if let Err(e) = ensure_podman() {
        eprintln!("skipped: {e}");
        return;
    }
    let tmp = TempDir::new("engine-podman");
    let work = tmp.path().to_path_buf();
    let hull = common::runtime_bin();
    let (hw, hcalls) = wrapper(&work, "hull", &hull);
    let (rw, rcalls) = wrapper(&work, "runc", Path::new(common::RUNC));
    let pm = Podman {
        tmp: TempDir::new("podman-state"),
    };

    let bundle = Bundle::new("podman-image");
    let layer = work.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(bundle.rootfs())
        .arg("-cf")
        .arg(&layer)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar of the rootfs");
    let r = pm.podman(
        None,
        &[
            "import",
            "-c",
            "CMD [\"sh\"]",
            "-c",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            layer.to_str().unwrap(),
            IMAGE,
        ],
    );
    assert_eq!(r.code, 0, "podman import: {}", r.brief());

    let hull_steps = scenario(&pm, "hull", &hw, &hcalls);
    let runc_steps = if Path::new(common::RUNC).exists() {
        scenario(&pm, "runc", &rw, &rcalls)
    } else {
        Vec::new()
    };

    let regressions = compare_steps(&hull_steps, &runc_steps);
    drop(pm);
    assert!(
        regressions.is_empty(),
        "hull fails steps that runc passes under podman:\n{}",
        regressions.join("\n")
    );
}
