//! OCI hooks: order, state on stdin, and a failing createRuntime hook.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{Bundle, Runtime};
use serde_json::{json, Value};

const PATH_ENV: &str = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

/// A hook running `/bin/sh` that appends `BEGIN name`, its stdin and
/// `END name` to `log` (`/bin/sh` and `log` are resolved wherever the hook
/// runs: on the host for most hooks, inside the container for
/// startContainer). The record is one printf, so one O_APPEND write: a
/// poststart hook runs beside the container's process, which appends to
/// the same log, and line-by-line writes could interleave.
fn logging_hook(name: &str, log: &str) -> Value {
    let script =
        format!("s=$(cat); printf 'BEGIN %s\\n%s\\nEND %s\\n' '{name}' \"$s\" '{name}' >> '{log}'");
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", script],
        "env": [PATH_ENV],
    })
}

#[derive(Debug)]
enum Event {
    Hook(String, Value),
    Marker(String),
}

/// Parses the log: `TEST <marker>` lines and BEGIN/END hook records.
fn parse_log(text: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(m) = line.strip_prefix("TEST ") {
            events.push(Event::Marker(m.to_string()));
        } else if let Some(name) = line.strip_prefix("BEGIN ") {
            let mut body = String::new();
            let end = format!("END {name}");
            for l in lines.by_ref() {
                if l == end {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            let state = serde_json::from_str(body.trim()).unwrap_or_else(|e| {
                panic!("hook {name} got no JSON state on stdin ({e}): {body:?}\nlog:\n{text}")
            });
            events.push(Event::Hook(name.to_string(), state));
        } else if !line.trim().is_empty() {
            panic!("unexpected line {line:?} in hook log:\n{text}");
        }
    }
    events
}

fn position(events: &[Event], what: &str) -> usize {
    events
        .iter()
        .position(|e| match e {
            Event::Hook(n, _) => n == what,
            Event::Marker(m) => m == what,
        })
        .unwrap_or_else(|| panic!("{what} missing from {events:#?}"))
}

fn hook_state<'a>(events: &'a [Event], name: &str) -> &'a Value {
    events
        .iter()
        .find_map(|e| match e {
            Event::Hook(n, s) if n == name => Some(s),
            _ => None,
        })
        .unwrap()
}

fn count(events: &[Event], name: &str) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Hook(n, _) if n == name))
        .count()
}

/// The six hook kinds, in the order a container's life runs them.
const ALL_HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// All six hook kinds, each appending its name and state to one log file
/// (also bound into the container at /hooklog); returns the log's path.
fn log_every_hook(b: &mut Bundle) -> std::path::PathBuf {
    let dir = b.host_dir("hooklog");
    let log = dir.join("log");
    let host_log = log.display().to_string();
    b.bind(&dir, "/hooklog");
    for kind in ALL_HOOKS {
        // startContainer runs inside the container: the container's
        // /bin/sh, and the log through the bind mount.
        let path = if kind == "startContainer" {
            "/hooklog/log"
        } else {
            host_log.as_str()
        };
        b.hook(kind, logging_hook(kind, path));
    }
    log
}

#[test]
fn hooks_run_in_order_with_state() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("hooks");
    let mut b = Bundle::new("hooks");
    b.args(&["sleep", "100"]);
    let log = log_every_hook(&mut b);

    let id = common::unique_id("hooks");
    common::append_line(&log, "TEST before-create");
    rt.create(&id, &mut b, &[]).ok();
    common::append_line(&log, "TEST after-create");
    let pid = rt.state_ok(&id)["pid"].as_i64().unwrap();

    common::append_line(&log, "TEST before-start");
    rt.cmd(&["start", &id]).ok();
    common::append_line(&log, "TEST after-start");
    // startContainer runs in the container's init just before it execs the
    // process, which may be after `start` returned.
    assert!(
        common::wait_until(Duration::from_secs(10), || {
            fs::read_to_string(&log).is_ok_and(|t| t.contains("END startContainer"))
        }),
        "startContainer hook never ran:\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    );

    rt.cmd(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    common::append_line(&log, "TEST before-delete");
    rt.cmd(&["delete", &id]).ok();
    common::append_line(&log, "TEST after-delete");
    rt.assert_nothing_left(&id);

    let text = fs::read_to_string(&log).unwrap();
    let ev = parse_log(&text);
    let p = |what: &str| position(&ev, what);
    for kind in ALL_HOOKS {
        assert_eq!(count(&ev, kind), 1, "{kind} ran not exactly once:\n{text}");
    }
    // create: prestart/createRuntime (runtime namespace), then
    // createContainer (container namespace).
    assert!(p("before-create") < p("prestart"), "{text}");
    assert!(p("before-create") < p("createRuntime"), "{text}");
    assert!(p("prestart") < p("createContainer"), "{text}");
    assert!(p("createRuntime") < p("createContainer"), "{text}");
    assert!(p("createContainer") < p("after-create"), "{text}");
    // start: startContainer runs after `start` is called.
    assert!(p("before-start") < p("startContainer"), "{text}");
    // poststart: the spec wants it after the process started, before `start`
    // returns; runc 1.1 runs it at the end of `create` instead
    // (opencontainers/runc#4347, moved to `start` by runc PR #5186). Accept both: after the create-time hooks,
    // before `start` returns.
    assert!(p("createContainer") < p("poststart"), "{text}");
    assert!(p("poststart") < p("after-start"), "{text}");
    // delete: poststop.
    assert!(p("before-delete") < p("poststop"), "{text}");
    assert!(p("poststop") < p("after-delete"), "{text}");

    for kind in ALL_HOOKS {
        let st = hook_state(&ev, kind);
        assert_eq!(st["id"], id.as_str(), "{kind} state: {st}");
        assert!(st["ociVersion"].is_string(), "{kind} state: {st}");
        let bundle = st["bundle"].as_str().unwrap_or_default();
        assert_eq!(
            fs::canonicalize(bundle).ok(),
            fs::canonicalize(b.dir()).ok(),
            "{kind} state: {st}"
        );
        assert!(st["status"].is_string(), "{kind} state: {st}");
    }
    // Hooks in the runtime namespace see the init's host pid. The ones in
    // the container namespace get it too per the spec, but runc passes the
    // pid as seen in the container's pid namespace (1); accept either.
    for kind in ["prestart", "createRuntime", "poststart"] {
        let st = hook_state(&ev, kind);
        assert_eq!(st["pid"], json!(pid), "{kind} state: {st}");
    }
    for kind in ["createContainer", "startContainer"] {
        let st = hook_state(&ev, kind);
        let got = st["pid"].as_i64().unwrap_or(0);
        assert!(got == pid || got == 1, "{kind} state: {st}");
    }
    assert_eq!(hook_state(&ev, "createRuntime")["status"], "creating");
    let poststart = &hook_state(&ev, "poststart")["status"];
    assert!(
        poststart == "running" || poststart == "created",
        "poststart status {poststart}"
    );
    assert_eq!(hook_state(&ev, "poststop")["status"], "stopped");
}

/// Hooks also run for `run`, with exactly the configured argv and env
/// (nothing inherited from the runtime's own environment).
#[test]
fn hook_args_and_env() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("hookargs");
    let mut b = Bundle::new("hookargs");
    let dir = b.host_dir("hooklog");
    let out = dir.join("out");
    let script = "{ tr '\\0' ' ' < /proc/$$/cmdline; echo; \
                  echo \"$0 $HOOKVAR ${HULL_LEAK:-not-leaked}\"; \
                  grep SigBlk /proc/self/status; } > \"$1\"";
    b.sh("echo container-ran").hook(
        "createRuntime",
        json!({
            "path": "/bin/sh",
            "args": ["hook-argv0", "-c", script, "zero", out.display().to_string()],
            "env": [PATH_ENV, "HOOKVAR=from-env"],
        }),
    );
    let id = common::unique_id("hookargs");
    let res = rt
        .spawn_run(&id, &mut b, &[], |c| {
            c.env("HULL_LEAK", "leaked");
        })
        .wait();
    res.ok();
    assert_eq!(res.stdout, "container-ran\n", "{res}");
    let got = fs::read_to_string(&out).unwrap_or_default();
    let lines: Vec<&str> = got.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("hook-argv0 -c ")),
        "hook argv wrong: {got:?}"
    );
    assert_eq!(lines.get(1), Some(&"zero from-env not-leaked"), "{got:?}");
    // `run` in the foreground blocks the signals it forwards; the hook
    // must not inherit that (a shell's `wait`, a TERM would not work).
    assert_eq!(
        lines.get(2),
        Some(&"SigBlk:\t0000000000000000"),
        "hook started with signals blocked: {got:?}"
    );
    rt.assert_nothing_left(&id);
}

#[test]
fn failing_create_runtime_hook_fails_create_cleanly() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("hookfail");
    let mut b = Bundle::new("hookfail");
    let dir = b.host_dir("marker");
    let marker = dir.join("ran");
    b.args(&["sleep", "100"])
        .hook("createRuntime", json!({ "path": "/bin/false" }))
        .hook(
            "startContainer",
            json!({ "path": "/bin/touch", "args": ["touch", "/should-not-run"] }),
        )
        .hook(
            "poststart",
            json!({
                "path": "/bin/sh",
                "args": ["sh", "-c", format!("touch '{}'", marker.display())],
            }),
        );
    // Control: with a succeeding createRuntime hook the bundle is fine.
    b.config["hooks"]["createRuntime"][0]["path"] = json!("/bin/true");
    let id = common::unique_id("hookfail");
    rt.create(&id, &mut b, &[]).ok();
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
    let _ = fs::remove_file(&marker);

    b.config["hooks"]["createRuntime"][0]["path"] = json!("/bin/false");
    let id = common::unique_id("hookfail");
    let out = rt.create(&id, &mut b, &[]);
    out.fails();
    rt.cmd(&["state", &id]).fails();
    let ids = rt.cmd(&["list", "-q"]);
    assert!(!ids.stdout.lines().any(|l| l.trim() == id), "{ids}");
    rt.assert_nothing_left(&id);
    assert!(
        !Path::new(&marker).exists(),
        "poststart ran after a failed create"
    );
    assert!(!b.rootfs().join("should-not-run").exists());
    // assert_nothing_left above also checked that no process survived
    // (nothing in the cgroup, nothing rooted in the bundle's rootfs).
}

/// `run` (which starts the process without the exec fifo round trip) runs
/// every hook once, in the spec's order around the process: startContainer
/// before it, poststart after it started, poststop after it ended.
#[test]
fn run_runs_every_hook_once_in_order() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("runhooks");
    let mut b = Bundle::new("runhooks");
    b.sh("echo 'TEST process' >> /hooklog/log");
    let log = log_every_hook(&mut b);
    let id = common::unique_id("runhooks");
    common::append_line(&log, "TEST before-run");
    rt.run(&id, &mut b, &[]).ok();
    common::append_line(&log, "TEST after-run");
    rt.assert_nothing_left(&id);

    let text = fs::read_to_string(&log).unwrap();
    let ev = parse_log(&text);
    let p = |what: &str| position(&ev, what);
    for kind in ALL_HOOKS {
        assert_eq!(count(&ev, kind), 1, "{kind} ran not exactly once:\n{text}");
        assert_eq!(hook_state(&ev, kind)["id"], id.as_str(), "{text}");
    }
    assert!(p("before-run") < p("prestart"), "{text}");
    assert!(p("createRuntime") < p("createContainer"), "{text}");
    assert!(p("createContainer") < p("startContainer"), "{text}");
    assert!(p("startContainer") < p("process"), "{text}");
    assert!(p("startContainer") < p("poststart"), "{text}");
    assert!(p("process") < p("poststop"), "{text}");
    assert!(p("poststop") < p("after-run"), "{text}");
}
