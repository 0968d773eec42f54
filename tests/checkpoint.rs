//! checkpoint/restore through CRIU. Where CRIU cannot work on this kernel,
//! the round trip is skipped with CRIU's exact error, and the tests check
//! that hull reports that error and leaves the container running.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Bundle, Runtime};

/// None if `criu check` passes; else CRIU's own error output.
fn criu_broken() -> Option<String> {
    match std::process::Command::new("criu").arg("check").output() {
        Err(e) => Some(format!("criu not runnable: {e}")),
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(
            String::from_utf8_lossy(&o.stderr).trim().to_string()
                + String::from_utf8_lossy(&o.stdout).trim(),
        ),
    }
}

fn counter(b: &mut Bundle) -> std::path::PathBuf {
    let dir = b.host_dir("count");
    b.bind(&dir, "/count");
    // stdio on the container's own /dev/null: CRIU cannot dump an fd on a
    // file outside the container's mounts (the runtime's, i.e. the test's,
    // /dev/null); containerd hands runtimes pipes for this reason. The
    // count is renamed into place: the checkpoint kills the shell wherever
    // it is, and `echo > n` killed after its truncation left n empty (read
    // as 0: "frozen >= before" failed once in the guest).
    b.sh("exec </dev/null >/dev/null 2>&1; i=0; while :; do i=$((i+1)); echo $i > /count/t; mv /count/t /count/n; sleep 0.05; done");
    dir
}

fn read_count(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("n"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn wait_count_above(dir: &Path, n: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = read_count(dir);
        if c > n {
            return c;
        }
        assert!(Instant::now() < deadline, "counter stuck at {c}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn checkpoint_restore_round_trip() {
    if common::skip() {
        return;
    }
    if let Some(err) = criu_broken() {
        println!("skipped: CRIU cannot work on this kernel: {err}");
        return;
    }
    let rt = Runtime::new("criu-rt");
    let mut b = Bundle::new("criu-rt");
    let dir = counter(&mut b);
    let id = common::unique_id("criu-rt");
    rt.run(&id, &mut b, &["--detach"]).ok();
    let before = wait_count_above(&dir, 5);
    let img = rt.base().join("img");
    rt.cmd(&["checkpoint", "--image-path", img.to_str().unwrap(), &id])
        .ok();
    let frozen = read_count(&dir);
    assert!(frozen >= before);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read_count(&dir), frozen, "counter ran on after checkpoint");
    let bundle = b.dir().display().to_string();
    rt.track(&id);
    rt.cmd(&[
        "restore",
        "--detach",
        "--image-path",
        img.to_str().unwrap(),
        "--bundle",
        &bundle,
        &id,
    ])
    .ok();
    let after = wait_count_above(&dir, frozen);
    assert!(
        after > frozen,
        "counter did not continue: {frozen} -> {after}"
    );
    assert!(
        after < frozen + 100,
        "counter restarted instead of continuing"
    );
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

#[test]
fn checkpoint_failure_reports_criu_error_and_keeps_running() {
    if common::skip() || !common::is_hull() {
        return;
    }
    let Some(err) = criu_broken() else {
        println!("skipped: CRIU works here; the round trip test covers it");
        return;
    };
    let rt = Runtime::new("criu-fail");
    let mut b = Bundle::new("criu-fail");
    let dir = counter(&mut b);
    let id = common::unique_id("criu-fail");
    rt.run(&id, &mut b, &["--detach"]).ok();
    wait_count_above(&dir, 2);
    let img = rt.base().join("img");
    let out = rt.cmd(&["checkpoint", "--image-path", img.to_str().unwrap(), &id]);
    out.fails();
    // CRIU's last error line, as `criu check` printed it, is in hull's message.
    let last = err
        .lines()
        .rfind(|l| l.contains("Error"))
        .and_then(|l| l.split("): ").nth(1))
        .unwrap_or("")
        .to_string();
    assert!(
        out.stderr.contains(&last),
        "hull hid CRIU's error {last:?}: {out}"
    );
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    let n = read_count(&dir);
    wait_count_above(&dir, n);
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}

#[test]
fn missing_criu_is_a_clear_error() {
    if common::skip() || !common::is_hull() {
        return;
    }
    let rt = Runtime::new("criu-missing");
    let mut b = Bundle::new("criu-missing");
    b.args(&["sleep", "100"]);
    let id = common::unique_id("criu-missing");
    rt.run(&id, &mut b, &["--detach"]).ok();
    let out = rt.cmd(&["--criu", "/nonexistent/criu", "checkpoint", &id]);
    out.fails()
        .hull_error_mentions(&["CRIU", "/nonexistent/criu"]);
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}
