//! spec, create/start/state/list/kill/delete, run exit codes, --pid-file.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{Bundle, Runtime};
use serde_json::{json, Value};

fn canon(p: &str) -> String {
    fs::canonicalize(p)
        .map(|c| c.display().to_string())
        .unwrap_or_else(|_| p.to_string())
}

fn list_ids(rt: &Runtime) -> Vec<String> {
    let out = rt.cmd(&["list", "-q"]);
    out.ok();
    out.stdout.lines().map(|l| l.trim().to_string()).collect()
}

fn list_json(rt: &Runtime) -> Vec<Value> {
    let out = rt.cmd(&["list", "--format", "json"]);
    out.ok();
    match out.json() {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => panic!("list --format json is not an array: {other}"),
    }
}

#[test]
fn spec_then_run_round_trip() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("spec");
    let mut b = Bundle::new("spec");
    let dir = b.dir().display().to_string();
    assert!(!b.config_path().exists());

    rt.cmd(&["spec", "--bundle", &dir]).ok();
    let text = fs::read_to_string(b.config_path()).expect("spec wrote no config.json");
    let spec: Value = serde_json::from_str(&text).expect("spec wrote invalid JSON");

    let version = spec["ociVersion"].as_str().expect("ociVersion missing");
    assert!(version.starts_with("1."), "odd ociVersion {version:?}");
    assert_eq!(spec["process"]["args"], json!(["sh"]));
    assert_eq!(spec["root"]["path"], "rootfs");
    let ns: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces missing")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for want in ["pid", "mount", "network", "ipc", "uts"] {
        assert!(ns.contains(&want), "namespace {want} missing from {ns:?}");
    }
    let masked = spec["linux"]["maskedPaths"]
        .as_array()
        .expect("maskedPaths missing");
    assert!(!masked.is_empty(), "maskedPaths is empty");
    assert!(spec["mounts"].as_array().is_some_and(|m| !m.is_empty()));

    // The generated spec runs as is once the terminal is turned off.
    b.config = spec;
    b.config["process"]["terminal"] = json!(false);
    b.config["process"]["args"] = json!(["sh", "-c", "echo hello"]);
    let id = common::unique_id("spec");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    assert_eq!(out.stdout, "hello\n", "{out}");
    rt.assert_nothing_left(&id);

    // A second `spec` must not clobber the existing config.json.
    let before = fs::read_to_string(b.config_path()).unwrap();
    rt.cmd(&["spec", "--bundle", &dir])
        .fails()
        .hull_error_mentions(&["config.json", "exists"]);
    assert_eq!(fs::read_to_string(b.config_path()).unwrap(), before);
}

#[test]
fn create_start_kill_delete() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("lifecycle");
    let mut b = Bundle::new("lifecycle");
    b.args(&["sleep", "100"]);
    let id = common::unique_id("lifecycle");

    rt.create(&id, &mut b, &[]).ok();
    let st = rt.state_ok(&id);
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["status"], "created", "{st}");
    let pid = st["pid"].as_i64().expect("pid missing") as i32;
    assert!(pid > 0, "{st}");
    assert!(common::process_alive(pid), "init {pid} is not alive");
    assert_eq!(
        canon(st["bundle"].as_str().expect("bundle missing")),
        canon(&b.dir().display().to_string())
    );
    assert!(st["ociVersion"].as_str().is_some(), "{st}");
    assert!(st["created"].as_str().is_some(), "{st}");
    // The container's cgroup exists while it does.
    assert!(
        common::cgroup_dir("pids", &id).exists(),
        "no pids cgroup {}",
        common::cgroup_dir("pids", &id).display()
    );

    assert_eq!(list_ids(&rt), vec![id.clone()]);
    let listed = list_json(&rt);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"], "created");
    assert_eq!(listed[0]["pid"], json!(pid));

    rt.cmd(&["start", &id]).ok();
    let st = rt.state_ok(&id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"], json!(pid));
    assert_eq!(list_json(&rt)[0]["status"], "running");

    rt.cmd(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    assert!(common::wait_process_gone(pid, Duration::from_secs(10)));
    assert_eq!(list_ids(&rt), vec![id.clone()]);

    rt.cmd(&["delete", &id]).ok();
    rt.cmd(&["state", &id])
        .fails()
        .hull_error_mentions(&["not exist", "not found", "no such"]);
    assert!(list_ids(&rt).is_empty());
    assert!(list_json(&rt).is_empty());
    rt.assert_nothing_left(&id);
}

/// `kill ID SIGTERM|TERM|15` all deliver SIGTERM (the init installs a
/// handler: a pid-namespace init ignores signals it does not handle).
#[test]
fn kill_signal_forms() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("killforms");
    for sig in ["SIGTERM", "TERM", "15"] {
        let mut b = Bundle::new("killforms");
        b.sh("trap 'echo got-term > /tmp/term; exit 0' TERM; touch /tmp/ready; sleep 100 & wait");
        let id = common::unique_id("killforms");
        rt.create(&id, &mut b, &[]).ok();
        rt.cmd(&["start", &id]).ok();
        let ready = b.rootfs().join("tmp/ready");
        assert!(
            common::wait_until(Duration::from_secs(10), || ready.exists()),
            "container never got ready"
        );
        rt.cmd(&["kill", &id, sig]).ok();
        rt.wait_status(&id, "stopped");
        let term = fs::read_to_string(b.rootfs().join("tmp/term")).unwrap_or_default();
        assert_eq!(term, "got-term\n", "kill {sig} did not deliver SIGTERM");
        rt.cmd(&["delete", &id]).ok();
        rt.assert_nothing_left(&id);
    }
}

/// `kill` on a created (not started) container, then `delete --force` on a
/// running one.
#[test]
fn delete_force_running_and_kill_created() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("delforce");
    let mut b = Bundle::new("delforce");
    b.args(&["sleep", "100"]);

    let id = common::unique_id("delforce");
    rt.create(&id, &mut b, &[]).ok();
    rt.cmd(&["start", &id]).ok();
    let pid = rt.state_ok(&id)["pid"].as_i64().unwrap() as i32;
    // A running container cannot be deleted without --force.
    rt.cmd(&["delete", &id]).fails();
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    rt.cmd(&["delete", "--force", &id]).ok();
    assert!(common::wait_process_gone(pid, Duration::from_secs(10)));
    rt.cmd(&["state", &id]).fails();
    rt.assert_nothing_left(&id);

    let id = common::unique_id("delforce");
    rt.create(&id, &mut b, &[]).ok();
    rt.cmd(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    rt.cmd(&["delete", &id]).ok();
    rt.assert_nothing_left(&id);
}

#[test]
fn run_exit_codes() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("exitcodes");
    let mut b = Bundle::new("exitcodes");
    for (script, want) in [("exit 0", 0), ("exit 3", 3), ("echo out; exit 42", 42)] {
        b.sh(script);
        let id = common::unique_id("exitcodes");
        let out = rt.run(&id, &mut b, &[]);
        assert_eq!(out.code, want, "`{script}`:\n{out}");
        rt.assert_nothing_left(&id);
    }
}

/// A foreground `run` whose container is SIGKILLed exits 128+9.
///
/// (`sh -c 'kill -9 $$'` cannot be used for this: the shell is the init of
/// the container's pid namespace, and the kernel ignores SIGKILL sent to a
/// namespace init from inside its namespace, so the shell survives.)
#[test]
fn run_killed_exits_137() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("exit137");
    let mut b = Bundle::new("exit137");
    b.args(&["sleep", "100"]);
    let id = common::unique_id("exit137");
    let run = rt.spawn_run(&id, &mut b, &[], |_| {});
    rt.wait_status(&id, "running");
    rt.cmd(&["kill", &id, "KILL"]).ok();
    let out = run.wait();
    assert_eq!(out.code, 137, "{out}");
    rt.assert_nothing_left(&id);
}

/// While `run` still sets the container up (here: in a createRuntime hook)
/// its status is not yet "running": a caller that waits for "running" and
/// then signals would otherwise kill an init still in setup, and the run
/// would fail ("exited during setup") instead of exiting 128+signal.
#[test]
fn run_is_not_running_before_the_process_starts() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("runsetup");
    let mut b = Bundle::new("runsetup");
    let dir = b.host_dir("seen");
    let seen = dir.join("status");
    let id = common::unique_id("runsetup");
    let script = format!(
        "'{}' --root '{}' state '{id}' > '{}'",
        rt.bin().display(),
        rt.root().display(),
        seen.display()
    );
    b.args(&["true"]).hook(
        "createRuntime",
        json!({ "path": "/bin/sh", "args": ["sh", "-c", script] }),
    );
    rt.run(&id, &mut b, &[]).ok();
    let state = std::fs::read_to_string(&seen).unwrap_or_default();
    let state: Value = serde_json::from_str(&state)
        .unwrap_or_else(|e| panic!("hull state in the hook printed no JSON ({e}): {state:?}"));
    assert_eq!(state["status"], "created", "{state}");
    rt.assert_nothing_left(&id);
}

#[test]
fn run_detach_and_keep() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("detach");
    let mut b = Bundle::new("detach");

    b.args(&["sleep", "100"]);
    let id = common::unique_id("detach");
    rt.run(&id, &mut b, &["--detach"]).ok();
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    rt.cmd(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    rt.cmd(&["delete", &id]).ok();
    rt.assert_nothing_left(&id);

    b.sh("exit 7");
    let id = common::unique_id("keep");
    let out = rt.run(&id, &mut b, &["--keep"]);
    assert_eq!(out.code, 7, "{out}");
    assert_eq!(rt.status(&id).as_deref(), Some("stopped"));
    rt.cmd(&["delete", &id]).ok();
    rt.assert_nothing_left(&id);
}

#[test]
fn pid_file_has_host_pid() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("pidfile");
    let mut b = Bundle::new("pidfile");
    b.args(&["sleep", "100"]);
    let id = common::unique_id("pidfile");
    let pid_file = b.host_dir("pid").join("init.pid");
    let pf = pid_file.display().to_string();
    rt.create(&id, &mut b, &["--pid-file", &pf]).ok();
    let text = fs::read_to_string(&pid_file).expect("pid file not written");
    let pid: i32 = text
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid file {text:?}: {e}"));
    assert_eq!(rt.state_ok(&id)["pid"], json!(pid));
    // It is a host pid: the process is visible here and is in the container's
    // cgroup.
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("no such host pid");
    assert!(
        cg.contains(&common::cgroup_name(&id)),
        "pid {pid} is not in the container's cgroup:\n{cg}"
    );
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

/// Started with stdout closed (a supervisor that closed it), hull must
/// not let a file it opens become fd 1: the `--log` file would then get
/// the container's output. hull fills fds 0-2 with /dev/null first (its
/// `main` skips std's runtime start-up, which used to do this).
#[test]
fn closed_stdout_is_not_reused() {
    if common::skip() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let rt = Runtime::new("closedfd");
    let mut b = Bundle::new("closedfd");
    b.args(&["echo", "from-the-container"]);
    let id = common::unique_id("closedfd");
    let log = rt.base().join("hull.log");
    let log_s = log.display().to_string();
    b.save_for(&id);
    rt.track(&id);
    let dir = b.dir().display().to_string();
    let args = ["--log", &log_s, "run", &id, "--bundle", &dir];
    let out = rt
        .spawn_with(&args, |cmd| {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::close(1);
                    Ok(())
                });
            }
        })
        .wait();
    out.ok();
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text.contains("from-the-container"),
        "the container wrote into the log file: {text:?}"
    );
    rt.assert_nothing_left(&id);
}
