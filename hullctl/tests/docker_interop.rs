//! Interop with docker and podman: an image saved by hullctl loads into a
//! private dockerd (and podman) and runs there with the same content
//! (whiteouts honoured); a `docker save` tarball loads into hullctl and
//! runs; containers side by side with docker's (logs per stream, the
//! detached lifecycle, ps -a, rm, the default seccomp profile). The
//! dockerd is the test's own (data-root, exec-root, socket under a temp
//! dir, no bridge, no iptables), stopped on drop. Skipped, saying so,
//! where docker.io or podman is not installed.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::docker::*;
use common::*;
use serde_json::json;

#[test]
fn hullctl_save_loads_into_docker_and_docker_save_into_hullctl() {
    if skip() {
        return;
    }
    if !Path::new(DOCKERD).exists() {
        eprintln!("SKIP: {DOCKERD} missing (apt install docker.io)");
        return;
    }
    let ctl = Ctl::new("docker");
    let mut l = Layout::new();
    let d = two_layer_image(
        &mut l,
        json!({"Cmd": ["sh", "-c", "cat /etc/added; ls /etc/deleteme 2>&1 | grep -c 'No such'"]}),
    );
    l.tag(d, "hullctl/interop:1");
    let t = ctl.dir.path().join("in.tar");
    l.tarball(&t);
    ctl.ok(&["load", "-i", t.to_str().unwrap()]);
    let saved = ctl.dir.path().join("saved.tar");
    ctl.ok(&["save", "-o", saved.to_str().unwrap(), "hullctl/interop:1"]);

    let dd = Dockerd::start();
    let out = dd.ok(&["load", "-i", saved.to_str().unwrap()]);
    assert!(out.contains("hullctl/interop:1"), "{out}");
    assert_eq!(
        dd.ok(&["run", "--rm", "--network", "none", "hullctl/interop:1"]),
        "added in layer 2\n1\n"
    );

    // docker's own image (docker import of a busybox rootfs), docker save, hullctl load.
    let rootfs = ctl.dir.path().join("rootfs.tar");
    fs::write(
        &rootfs,
        TarBuf::new()
            .busybox()
            .file("from-docker", b"docker made me\n", 0o644)
            .finish(),
    )
    .unwrap();
    dd.ok(&["import", rootfs.to_str().unwrap(), "dockermade:1"]);
    let dsave = ctl.dir.path().join("docker-save.tar");
    dd.ok(&["save", "-o", dsave.to_str().unwrap(), "dockermade:1"]);
    let out = ctl.ok(&["load", "-i", dsave.to_str().unwrap()]);
    assert!(out.contains("dockermade:1"), "{out}");
    assert_eq!(
        ctl.ok(&["run", "--rm", "dockermade:1", "cat", "/from-docker"]),
        "docker made me\n"
    );
    let docker_id = dd.ok(&["inspect", "-f", "{{.Id}}", "dockermade:1"]);
    let v: serde_json::Value = serde_json::from_str(&ctl.ok(&["inspect", "dockermade:1"])).unwrap();
    assert_eq!(
        v[0]["Id"].as_str().unwrap(),
        docker_id.trim(),
        "same image id as docker's"
    );
}

#[test]
fn hullctl_save_loads_into_podman() {
    if skip() {
        return;
    }
    if !Path::new("/usr/bin/podman").exists() {
        eprintln!("SKIP: podman missing (apt install podman)");
        return;
    }
    let ctl = Ctl::new("podman");
    let mut l = Layout::new();
    let d = two_layer_image(&mut l, json!({"Cmd": ["sh"]}));
    l.tag(d, "hullctl/pod:1");
    let t = ctl.dir.path().join("in.tar");
    l.tarball(&t);
    ctl.ok(&["load", "-i", t.to_str().unwrap()]);
    let saved = ctl.dir.path().join("saved.tar");
    ctl.ok(&["save", "-o", saved.to_str().unwrap(), "hullctl/pod:1"]);
    let p = ctl.dir.path();
    let podman = |args: &[&str]| {
        Command::new("podman")
            .arg("--root")
            .arg(p.join("proot"))
            .arg("--runroot")
            .arg(p.join("prun"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .output()
            .unwrap()
    };
    let o = podman(&["load", "-i", saved.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "podman load: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = podman(&["image", "inspect", "--format", "{{.Id}}", "hullctl/pod:1"]);
    assert!(
        o.status.success(),
        "podman image inspect: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&ctl.ok(&["inspect", "hullctl/pod:1"])).unwrap();
    assert_eq!(
        format!("sha256:{}", String::from_utf8_lossy(&o.stdout).trim()),
        v[0]["Id"].as_str().unwrap()
    );
    let _ = Command::new("umount")
        .arg("-R")
        .arg("-l")
        .arg(p.join("proot"))
        .stderr(Stdio::null())
        .status();
}

/// Add, change, touch, chmod, delete a file and a whole directory,
/// replace a directory with an opaque one, nested adds, a new symlink.
const DIFF_STEPS: &str = "echo new > /tmp/new; echo changed >> /etc/passwd; rm /etc/group; \
     rm -rf /opq; mkdir /opq; echo z > /opq/z; mkdir -p /n1/n2/n3; echo q > /n1/n2/n3/q; \
     echo f > /d/e/f; mkdir /d/e/g; touch -d @1 /keep/t; chmod 700 /keep/m; rm -rf /gone; \
     ln -s /etc/passwd /tmp/link";

fn sorted(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(String::from).collect();
    v.sort_by(|a, b| a.get(2..).cmp(&b.get(2..)));
    v
}

/// `diff` prints what docker's does for the same steps in the same image
/// (on kernel overlayfs and on both fallbacks); an image committed by
/// hullctl, saved and loaded into docker, runs there as in hullctl.
#[test]
fn diff_and_commit_match_docker() {
    if skip() {
        return;
    }
    if !Path::new(DOCKERD).exists() {
        eprintln!("SKIP: {DOCKERD} missing (apt install docker.io)");
        return;
    }
    let ctl = Ctl::new("dockerdiff");
    let rootfs = ctl.dir.path().join("rootfs.tar");
    fs::write(
        &rootfs,
        TarBuf::new()
            .busybox()
            .dir("opq")
            .file("opq/a", b"a\n", 0o644)
            .file("opq/b", b"b\n", 0o644)
            .dir("d")
            .dir("d/e")
            .dir("keep")
            .file("keep/t", b"t\n", 0o644)
            .file("keep/m", b"m\n", 0o644)
            .dir("gone")
            .dir("gone/sub")
            .file("gone/sub/x", b"x\n", 0o644)
            .finish(),
    )
    .unwrap();
    let dd = Dockerd::start();
    dd.ok(&["import", rootfs.to_str().unwrap(), "diffbase:1"]);
    ctl.ok(&["import", rootfs.to_str().unwrap(), "diffbase:1"]);
    dd.ok(&[
        "run",
        "--name",
        "dc",
        "--network",
        "none",
        "diffbase:1",
        "sh",
        "-c",
        DIFF_STEPS,
    ]);
    let docker = sorted(&dd.ok(&["diff", "dc"]));
    eprintln!("docker diff: {docker:?}");
    assert!(docker.contains(&"D /opq/a".to_string()), "{docker:?}");
    for (mode, name) in [("0", "h0"), ("1", "h1"), ("all", "h2")] {
        let o = ctl
            .cmd(&["run", "--name", name, "diffbase:1", "sh", "-c", DIFF_STEPS])
            .env("HULLCTL_NO_OVERLAY", mode)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let ours = sorted(&ctl.ok(&["diff", name]));
        assert_eq!(ours, docker, "HULLCTL_NO_OVERLAY={mode}");
    }

    // hullctl commit → save → docker load: the same filesystem there.
    let mut l = Layout::new();
    let d = two_layer_image(&mut l, json!({"Cmd": ["sh"]}));
    l.tag(d, "hullctl/base:1");
    let t = ctl.dir.path().join("in.tar");
    l.tarball(&t);
    ctl.ok(&["load", "-i", t.to_str().unwrap()]);
    ctl.ok(&[
        "run",
        "--name",
        "cm",
        "hullctl/base:1",
        "sh",
        "-c",
        "echo new > /tmp/new; echo changed > /etc/added; rm /etc/group; rm -rf /opq; \
         mkdir /opq; echo z > /opq/z; mkdir /newdir; echo x > /newdir/x; chmod 600 /newdir/x",
    ]);
    ctl.ok(&["commit", "cm", "hullctl/committed:1"]);
    let saved = ctl.dir.path().join("committed.tar");
    ctl.ok(&["save", "-o", saved.to_str().unwrap(), "hullctl/committed:1"]);
    let out = dd.ok(&["load", "-i", saved.to_str().unwrap()]);
    assert!(out.contains("hullctl/committed:1"), "{out}");
    let look = "cat /tmp/new /etc/added /newdir/x; ls -A /opq; \
                test -e /etc/group || echo nogroup; test -e /etc/deleteme || echo nodeleteme; \
                stat -c %a /newdir/x";
    let want = "new\nchanged\nx\nz\nnogroup\nnodeleteme\n600\n";
    let in_docker = dd.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "hullctl/committed:1",
        "sh",
        "-c",
        look,
    ]);
    assert_eq!(in_docker, want);
    assert_eq!(
        ctl.ok(&["run", "--rm", "hullctl/committed:1", "sh", "-c", look]),
        want
    );
    // docker sees the same layers (the committed one on top).
    let layers = dd.ok(&[
        "inspect",
        "-f",
        "{{len .RootFS.Layers}}",
        "hullctl/committed:1",
    ]);
    assert_eq!(layers.trim(), "3");
}

/// The same image, the same commands, hullctl and docker side by side:
/// `logs` per stream (plain, --tail, with a terminal), `run -d`, `exec`
/// (output, exit code), `stop` (the image's StopSignal delivered, then
/// SIGKILL after -t), `wait`, `ps -a` status strings, `rm` (refused while
/// running, -f), and the default seccomp profile (unshare refused with
/// the same error; allowed with seccomp=unconfined).
#[test]
fn containers_behave_as_docker() {
    if skip() {
        return;
    }
    if !Path::new(DOCKERD).exists() {
        eprintln!("SKIP: {DOCKERD} missing (apt install docker.io)");
        return;
    }
    let ctl = Ctl::new("docker-diff");
    let mut l = Layout::new();
    let d = two_layer_image(&mut l, json!({"Cmd": ["sh"], "StopSignal": "SIGUSR1"}));
    l.tag(d, "hullctl/diff:1");
    let t = ctl.dir.path().join("in.tar");
    l.tarball(&t);
    ctl.ok(&["load", "-i", t.to_str().unwrap()]);
    let saved = ctl.dir.path().join("saved.tar");
    ctl.ok(&["save", "-o", saved.to_str().unwrap(), "hullctl/diff:1"]);
    let dd = Dockerd::start();
    dd.ok(&["load", "-i", saved.to_str().unwrap()]);
    let img = "hullctl/diff:1";

    // Both engines, same arguments (docker gets --network none).
    let both = |args: &[&str]| -> [Output; 2] {
        let h = ctl.run(args);
        let mut a = args.to_vec();
        if a[0] == "run" {
            a.insert(1, "--network");
            a.insert(2, "none");
        }
        [h, dd.docker(&a)]
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    let same = |what: &str, o: &[Output; 2]| {
        assert_eq!(
            (o[0].status.code(), text(&o[0].stdout), text(&o[0].stderr)),
            (o[1].status.code(), text(&o[1].stdout), text(&o[1].stderr)),
            "{what}: hullctl (left) and docker (right) differ"
        );
    };
    let wait_log = |name: &str, want: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let o = both(&["logs", name]);
            if o.iter().all(|o| text(&o.stdout).contains(want)) {
                return;
            }
            assert!(Instant::now() < deadline, "no {want:?} in {name}'s logs");
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    // logs: each stream on its own fd; --tail counts lines of both.
    let script = "echo o1; echo e1 >&2; sleep 0.3; echo e2 >&2; sleep 0.3; echo o2";
    both(&["run", "-d", "--name", "streams", img, "sh", "-c", script]);
    same("wait", &both(&["wait", "streams"]));
    same("logs", &both(&["logs", "streams"]));
    same("logs --tail 2", &both(&["logs", "--tail", "2", "streams"]));
    same("logs -f (exited)", &both(&["logs", "-f", "streams"]));
    // -d -t: everything on stdout, through the pty (\r\n).
    both(&[
        "run",
        "-dt",
        "--name",
        "tty",
        img,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    same("wait (tty)", &both(&["wait", "tty"]));
    same("logs (tty)", &both(&["logs", "tty"]));

    // The lifecycle: StopSignal SIGUSR1 makes it exit 10; SIGTERM ignored.
    let script = "trap 'echo got USR1; exit 10' USR1; trap '' TERM; echo started; while :; do sleep 0.1; done";
    both(&["run", "-d", "--name", "web", img, "sh", "-c", script]);
    wait_log("web", "started");
    same("exec", &both(&["exec", "web", "cat", "/etc/added"]));
    same(
        "exec exit code",
        &both(&["exec", "web", "sh", "-c", "echo x >&2; exit 3"]),
    );
    // (hullctl's ps --format takes json; docker's a template.)
    let h = ctl.ok(&["ps", "--format", "json"]);
    assert!(h.contains("\"Status\":\"Up "), "{h}");
    let d = dd.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(d.starts_with("Up "), "{d}");
    let o = both(&["rm", "web"]);
    assert!(
        o.iter().all(|o| !o.status.success()),
        "rm of a running container"
    );
    let start = Instant::now();
    let h = ctl.run(&["stop", "web"]);
    let h_took = start.elapsed();
    let start = Instant::now();
    let d = dd.docker(&["stop", "web"]);
    let d_took = start.elapsed();
    assert!(h.status.success() && d.status.success());
    assert!(
        h_took < Duration::from_secs(5) && d_took < Duration::from_secs(5),
        "the StopSignal did not stop it: hullctl {h_took:?}, docker {d_took:?}"
    );
    same("logs after stop", &both(&["logs", "web"]));
    same("wait after stop", &both(&["wait", "web"]));
    let hs = ctl.ok(&["ps", "-a", "--format", "json"]);
    let ds = dd.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    let d_web = ds
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap()
        .to_string();
    let h_web: serde_json::Value = hs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["Names"] == "web")
        .unwrap();
    let h_web = format!("web {}", h_web["Status"].as_str().unwrap());
    for s in [&h_web, &d_web] {
        assert!(
            s.starts_with("web Exited (10) ") && s.ends_with(" ago"),
            "hullctl: {h_web:?}, docker: {d_web:?}"
        );
    }

    // stop -t 1 of a container that ignores its StopSignal: SIGKILL, 137.
    both(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        img,
        "sh",
        "-c",
        "trap '' USR1 TERM; echo up; while :; do sleep 0.1; done",
    ]);
    wait_log("stubborn", "up");
    for (who, o) in [
        ("hullctl", ctl.cmd(&["stop", "-t", "1", "stubborn"])),
        ("docker", dd.cmd(&["stop", "-t", "1", "stubborn"])),
    ] {
        let mut o = o;
        let start = Instant::now();
        assert!(o.output().unwrap().status.success(), "{who} stop");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(5),
            "{who} stop -t 1 took {took:?}"
        );
    }
    same("wait after SIGKILL", &both(&["wait", "stubborn"]));

    // rm -f of a running one, rm of stopped ones; nothing left.
    both(&["run", "-d", "--name", "busy", img, "sleep", "100"]);
    same("rm -f", &both(&["rm", "-f", "busy"]));
    same("rm", &both(&["rm", "streams", "tty", "web", "stubborn"]));
    same("ps -a -q", &both(&["ps", "-a", "-q"]));

    // Seccomp: docker's default profile, and unconfined.
    same(
        "unshare under the default profile",
        &both(&["run", "--rm", img, "unshare", "-U", "true"]),
    );
    same(
        "unshare unconfined",
        &both(&[
            "run",
            "--rm",
            "--security-opt",
            "seccomp=unconfined",
            img,
            "unshare",
            "-U",
            "true",
        ]),
    );
}
