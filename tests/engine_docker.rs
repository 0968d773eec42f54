//! Engine integration: dockerd (Debian's docker.io 20.10) drives hull as an
//! extra runtime (`daemon.json` `runtimes`), next to runc, in the same run.
//!
//! The test installs docker.io with apt if `dockerd` is missing, starts its
//! own dockerd in the background (data-root, exec-root, pidfile and socket
//! under a temp dir; it starts its own containerd), `docker import`s the
//! busybox-static rootfs, and runs the same steps with `--runtime hull` and
//! `--runtime runc-ref` (both registered through wrapper scripts that log
//! their calls, which proves which runtime ran): output, exit code, `-e`,
//! `-w`, `-u`, `--read-only`, `-m`, `--pids-limit`, `--cap-drop/--cap-add`,
//! `no-new-privileges`, the default seccomp profile (a blocked syscall fails,
//! and works with `seccomp=unconfined`), `-v`, `-p` (HTTP from the host),
//! `docker exec`, `docker stop` (SIGTERM, then SIGKILL after the timeout),
//! `pause/unpause`, `top`, `stats --no-stream`, `-it` through `script`,
//! `--init`, and a failing create whose error must carry the runtime's
//! message. hull must pass every step runc passes. Docker passes a seccomp
//! profile on every run: without seccomp support hull fails each run with
//! its own error, which this test then shows.
//!
//! Not covered: `live-restore` across a daemon restart.
//!
//! Skipped (with a note) when not root, without busybox, or when docker.io
//! cannot be installed.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::daemons::{Dockerd, DOCKER, DOCKERD};
use common::engine::{compare_steps, run_timeout, runtime_invoked, wrapper, Run, Steps};
use common::{Bundle, TempDir};

const IMAGE: &str = "hullbox:latest";
const STEP_TIMEOUT: Duration = Duration::from_secs(90);

fn ensure_docker() -> Result<(), String> {
    if Path::new(DOCKERD).exists() && Path::new(DOCKER).exists() {
        return Ok(());
    }
    let r = run_timeout(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "docker.io"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        Duration::from_secs(900),
    );
    if r.code != 0 || !Path::new(DOCKERD).exists() {
        return Err(format!("apt-get install docker.io failed: {}", r.brief()));
    }
    Ok(())
}

/// A dockerd with everything under a temp dir and the given runtimes.
struct Daemon {
    /// Taken on drop: the daemon stops before its cgroup parent goes.
    d: Option<Dockerd>,
    _tmp: TempDir,
}

impl Daemon {
    fn start(tmp: TempDir, runtimes: &[(&str, &Path)]) -> Daemon {
        let mut rts = serde_json::Map::new();
        for (name, path) in runtimes {
            rts.insert(
                name.to_string(),
                serde_json::json!({ "path": path.to_str().unwrap() }),
            );
        }
        let config = tmp.path().join("daemon.json");
        fs::write(&config, serde_json::json!({ "runtimes": rts }).to_string()).unwrap();
        let d = Dockerd::start(tmp.path(), &["--config-file", config.to_str().unwrap()]);
        Daemon {
            d: Some(d),
            _tmp: tmp,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        self.d.as_ref().expect("daemon running").cmd(args)
    }

    fn docker(&self, args: &[&str]) -> Run {
        run_timeout(&mut self.cmd(args), STEP_TIMEOUT)
    }

    fn sock(&self) -> &str {
        &self.d.as_ref().expect("daemon running").sock
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        drop(self.d.take());
        common::engine::remove_empty_cgroup_parent("docker");
    }
}

fn expect(r: &Run, ok: impl FnOnce(&Run) -> bool) -> Result<(), String> {
    if ok(r) {
        Ok(())
    } else {
        Err(r.brief())
    }
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn http_get(port: u16) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = String::new();
    while Instant::now() < deadline {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                if body.contains("hull-http-ok") {
                    return Ok(body);
                }
                last = body;
            }
            Err(e) => last = e.to_string(),
        }
        sleep(Duration::from_millis(300));
    }
    Err(format!("no page on 127.0.0.1:{port}: {last:?}"))
}

/// The host pid of a running container.
fn container_pid(d: &Daemon, id: &str) -> Option<u32> {
    d.docker(&["inspect", "-f", "{{.State.Pid}}", id])
        .stdout
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

/// A value read from the container's v1 (or v2) cgroup, seen from the host.
fn host_cgroup_value(pid: u32, controller: &str, file_v1: &str, file_v2: &str) -> Option<String> {
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in cg.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        if ctrls.split(',').any(|c| c == controller) {
            let p = format!("/sys/fs/cgroup/{controller}{path}/{file_v1}");
            return fs::read_to_string(p).ok().map(|s| s.trim().to_string());
        }
    }
    let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?;
    fs::read_to_string(format!("/sys/fs/cgroup{path}/{file_v2}"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn scenario(d: &Daemon, rt: &str, calls: &Path, work: &Path) -> Steps {
    let mut steps: Steps = Vec::new();
    let run = |extra: &[&str], cmd: &[&str]| -> Run {
        let mut v = vec!["run", "--rm", "--runtime", rt];
        v.extend_from_slice(extra);
        v.push(IMAGE);
        v.extend_from_slice(cmd);
        d.docker(&v)
    };

    let r = run(&[], &["echo", "hello from docker"]);
    steps.push((
        "run: output",
        expect(&r, |r| {
            r.code == 0 && r.stdout.contains("hello from docker")
        }),
    ));
    let r = run(&[], &["sh", "-c", "exit 7"]);
    steps.push(("run: exit code", expect(&r, |r| r.code == 7)));
    let r = run(&["-e", "HULL_VAR=v1"], &["sh", "-c", "echo var=$HULL_VAR"]);
    steps.push(("-e", expect(&r, |r| r.stdout.contains("var=v1"))));
    let r = run(&["-w", "/tmp"], &["pwd"]);
    steps.push(("-w", expect(&r, |r| r.stdout.trim() == "/tmp")));
    let r = run(
        &["-u", "1000:1001"],
        &["sh", "-c", "echo $(id -u):$(id -g)"],
    );
    steps.push(("-u", expect(&r, |r| r.stdout.trim() == "1000:1001")));
    let r = run(
        &["--read-only"],
        &[
            "sh",
            "-c",
            "touch /x 2>/dev/null && echo w=yes || echo w=no",
        ],
    );
    steps.push((
        "--read-only",
        expect(&r, |r| r.code == 0 && r.stdout.contains("w=no")),
    ));
    let r = run(
        &["-m", "64m"],
        &["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"],
    );
    steps.push((
        "-m 64m (container's cgroup)",
        expect(&r, |r| r.stdout.trim() == "67108864"),
    ));

    // pids limit, seen from the host in the container's cgroup
    let name = format!("{rt}-pids");
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        rt,
        "--pids-limit",
        "42",
        IMAGE,
        "sleep",
        "60",
    ]);
    let res = if r.code != 0 {
        Err(r.brief())
    } else {
        match container_pid(d, &name)
            .and_then(|p| host_cgroup_value(p, "pids", "pids.max", "pids.max"))
        {
            Some(v) if v == "42" => Ok(()),
            other => Err(format!("pids.max = {other:?}")),
        }
    };
    steps.push(("--pids-limit 42", res));
    let _ = d.docker(&["rm", "-f", &name]);

    let r = run(
        &["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"],
        &["grep", "CapEff", "/proc/self/status"],
    );
    steps.push((
        "--cap-drop ALL --cap-add NET_BIND_SERVICE",
        expect(&r, |r| r.stdout.contains("0000000000000400")),
    ));
    let r = run(
        &["--security-opt", "no-new-privileges"],
        &["grep", "NoNewPrivs", "/proc/self/status"],
    );
    steps.push((
        "no-new-privileges",
        expect(&r, |r| r.stdout.split_whitespace().last() == Some("1")),
    ));
    let r = run(&[], &["sh", "-c", "grep '^Seccomp:' /proc/self/status; unshare -U true 2>/dev/null && echo blocked=no || echo blocked=yes"]);
    let r2 = run(
        &["--security-opt", "seccomp=unconfined"],
        &["sh", "-c", "unshare -U true && echo ran=yes"],
    );
    steps.push((
        "default seccomp profile (unshare blocked; allowed unconfined)",
        if r.code == 0
            && r.stdout.contains("2")
            && r.stdout.contains("blocked=yes")
            && r2.stdout.contains("ran=yes")
        {
            Ok(())
        } else {
            Err(format!(
                "default: {} / unconfined: {}",
                r.brief(),
                r2.brief()
            ))
        },
    ));

    let host = work.join(format!("{rt}-vol"));
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("f"), "from-host\n").unwrap();
    let vol = format!("{}:/data", host.display());
    let r = run(
        &["-v", &vol],
        &["sh", "-c", "cat /data/f; echo back > /data/g"],
    );
    steps.push((
        "-v bind mount",
        expect(&r, |r| {
            r.stdout.contains("from-host") && host.join("g").exists()
        }),
    ));

    // -p: busybox httpd in the container, HTTP from the host
    let port = free_port();
    let name = format!("{rt}-http");
    let publish = format!("127.0.0.1:{port}:8080");
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        rt,
        "-p",
        &publish,
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /www && echo hull-http-ok > /www/index.html && exec httpd -f -p 8080 -h /www",
    ]);
    let res = if r.code != 0 {
        Err(r.brief())
    } else {
        http_get(port).map(|_| ())
    };
    steps.push(("-p publish (HTTP from the host)", res));
    let _ = d.docker(&["rm", "-f", &name]);

    // a long-running container: exec, pause/unpause, top, stats, stop
    let name = format!("{rt}-long");
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        rt,
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.2; done",
    ]);
    let up = r.code == 0;
    steps.push(("run -d", expect(&r, |r| r.code == 0)));
    if up {
        let r = d.docker(&["exec", &name, "sh", "-c", "echo exec-ok"]);
        steps.push((
            "docker exec",
            expect(&r, |r| r.code == 0 && r.stdout.contains("exec-ok")),
        ));
        let r = d.docker(&["pause", &name]);
        let paused = d.docker(&["inspect", "-f", "{{.State.Paused}}", &name]);
        let r2 = d.docker(&["unpause", &name]);
        let running = d.docker(&[
            "inspect",
            "-f",
            "{{.State.Paused}} {{.State.Running}}",
            &name,
        ]);
        steps.push((
            "docker pause / unpause",
            if r.code == 0
                && paused.stdout.trim() == "true"
                && r2.code == 0
                && running.stdout.trim() == "false true"
            {
                Ok(())
            } else {
                Err(format!(
                    "pause: {} / paused: {} / unpause: {} / after: {}",
                    r.brief(),
                    paused.brief(),
                    r2.brief(),
                    running.brief()
                ))
            },
        ));
        let r = d.docker(&["top", &name]);
        steps.push((
            "docker top",
            expect(&r, |r| r.code == 0 && r.stdout.contains("sh -c")),
        ));
        let r = d.docker(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}} {{.PIDs}}",
            &name,
        ]);
        steps.push((
            "docker stats --no-stream",
            expect(&r, |r| r.code == 0 && r.stdout.contains(&name)),
        ));
        let t0 = Instant::now();
        let r = d.docker(&["stop", "-t", "10", &name]);
        let code = d.docker(&["inspect", "-f", "{{.State.ExitCode}}", &name]);
        steps.push((
            "docker stop (SIGTERM honoured)",
            if r.code == 0 && code.stdout.trim() == "0" && t0.elapsed() < Duration::from_secs(8) {
                Ok(())
            } else {
                Err(format!(
                    "stop: {} / exit code: {}",
                    r.brief(),
                    code.stdout.trim()
                ))
            },
        ));
    }
    let _ = d.docker(&["rm", "-f", &name]);

    let name = format!("{rt}-stubborn");
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        rt,
        IMAGE,
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 0.2; done",
    ]);
    let res = if r.code != 0 {
        Err(r.brief())
    } else {
        let r = d.docker(&["stop", "-t", "1", &name]);
        let code = d.docker(&["inspect", "-f", "{{.State.ExitCode}}", &name]);
        if r.code == 0 && code.stdout.trim() == "137" {
            Ok(())
        } else {
            Err(format!(
                "stop: {} / exit code: {}",
                r.brief(),
                code.stdout.trim()
            ))
        }
    };
    steps.push(("docker stop (SIGKILL after the timeout)", res));
    let _ = d.docker(&["rm", "-f", &name]);

    // -it through script(1), which gives docker a pty
    let line = format!(
        "{DOCKER} -H {} run -it --rm --runtime {rt} {IMAGE} sh -c 'tty; echo tty-ok'",
        d.sock()
    );
    let r = run_timeout(
        Command::new("script").args(["-qec", &line, "/dev/null"]),
        STEP_TIMEOUT,
    );
    steps.push((
        "-it (pty)",
        expect(&r, |r| {
            r.code == 0 && r.stdout.contains("/dev/pts/") && r.stdout.contains("tty-ok")
        }),
    ));

    let r = run(&["--init"], &["cat", "/proc/1/comm"]);
    steps.push((
        "--init (docker-init is pid 1)",
        expect(&r, |r| r.code == 0 && r.stdout.contains("docker-init")),
    ));

    let r = run(&[], &["nosuch-binary"]);
    steps.push((
        "create failure: runtime's message in docker's error",
        expect(&r, |r| {
            r.code != 0
                && r.stderr.contains("nosuch-binary")
                && r.stderr.contains("executable file not found")
        }),
    ));

    steps.push(runtime_invoked(calls));
    steps
}

#[test]
fn dockerd_runs_hull_like_runc() {
    if common::skip() {
        return;
    }
    if let Err(e) = ensure_docker() {
        eprintln!("skipped: {e}");
        return;
    }
    let tmp = TempDir::new("engine-docker");
    let work = tmp.path().to_path_buf();
    let hull = common::runtime_bin();
    let (hw, hcalls) = wrapper(&work, "hull", &hull);
    let (rw, rcalls) = wrapper(&work, "runc", Path::new(common::RUNC));
    let daemon = Daemon::start(TempDir::new("dockerd"), &[("hull", &hw), ("runc-ref", &rw)]);

    // docker import of the busybox rootfs
    let bundle = Bundle::new("docker-image");
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
    let r = daemon.docker(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        layer.to_str().unwrap(),
        IMAGE,
    ]);
    assert_eq!(r.code, 0, "docker import: {}", r.brief());

    let hull_steps = scenario(&daemon, "hull", &hcalls, &work);
    let runc_steps = if Path::new(common::RUNC).exists() {
        scenario(&daemon, "runc-ref", &rcalls, &work)
    } else {
        Vec::new()
    };

    let regressions = compare_steps(&hull_steps, &runc_steps);
    drop(daemon);
    assert!(
        regressions.is_empty(),
        "hull fails steps that runc passes under dockerd:\n{}",
        regressions.join("\n")
    );
}
