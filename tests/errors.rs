//! Error paths: each fails non-zero with a message and leaves nothing.

mod common;

use std::collections::BTreeSet;
use std::fs;

use common::{Bundle, Runtime};

fn entries(dir: &std::path::Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn duplicate_id_fails_and_first_survives() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("dupid");
    let mut first = Bundle::new("dupid1");
    first.args(&["sleep", "100"]);
    let mut second = Bundle::new("dupid2");
    second.args(&["sleep", "100"]);
    let id = common::unique_id("dupid");

    rt.create(&id, &mut first, &[]).ok();
    let before = rt.state_ok(&id);
    rt.create(&id, &mut second, &[])
        .fails()
        .hull_error_mentions(&["exist"]);

    // The first container is untouched and still works.
    let after = rt.state_ok(&id);
    assert_eq!(after["pid"], before["pid"], "{after}");
    assert_eq!(after["bundle"], before["bundle"], "{after}");
    assert_eq!(after["status"], "created", "{after}");
    let list = rt.cmd(&["list", "-q"]);
    assert_eq!(list.stdout.lines().filter(|l| l.trim() == id).count(), 1);
    rt.cmd(&["start", &id]).ok();
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    // Starting it again is an error too.
    rt.cmd(&["start", &id]).fails();
    rt.cmd(&["kill", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped");
    rt.cmd(&["delete", &id]).ok();
    rt.assert_nothing_left(&id);
}

#[test]
fn invalid_ids_are_rejected() {
    if common::skip() {
        return;
    }
    for bad in ["a/b", "..", "../escape", "."] {
        let rt = Runtime::new("badid");
        let mut b = Bundle::new("badid");
        b.args(&["sleep", "100"]);
        // Control: the bundle works with a good id.
        let good = common::unique_id("badid");
        rt.create(&good, &mut b, &[]).ok();
        rt.cmd(&["delete", "--force", &good]).ok();
        rt.assert_nothing_left(&good);
        let mut base_before = entries(rt.base());
        base_before.remove("root");
        rt.create(bad, &mut b, &[])
            .fails()
            .hull_error_mentions(&["id"]);
        rt.cmd(&["state", bad]).fails();
        rt.assert_nothing_left(bad);
        // Nothing escaped the state root either.
        let mut base_after = entries(rt.base());
        base_after.remove("root");
        assert_eq!(
            base_after, base_before,
            "{bad:?} created files next to the root"
        );
        assert!(!rt.root().join("a").exists());
        let list = rt.cmd(&["list", "-q"]);
        assert!(list.stdout.trim().is_empty(), "{list}");
    }
}

#[test]
fn missing_rootfs_fails_cleanly() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("norootfs");
    let mut b = Bundle::new("norootfs");
    b.args(&["sleep", "100"]);
    // Control: the bundle works while its rootfs exists.
    let id = common::unique_id("norootfs");
    rt.create(&id, &mut b, &[]).ok();
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);

    fs::remove_dir_all(b.rootfs()).unwrap();
    let id = common::unique_id("norootfs");
    rt.create(&id, &mut b, &[])
        .fails()
        .hull_error_mentions(&["rootfs", "root"]);
    rt.cmd(&["state", &id]).fails();
    rt.assert_nothing_left(&id);
    assert!(
        !b.rootfs().exists(),
        "the runtime created the missing rootfs"
    );

    let id = common::unique_id("norootfs");
    rt.run(&id, &mut b, &[]).fails();
    rt.assert_nothing_left(&id);
}

#[test]
fn malformed_config_fails_cleanly() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("badjson");
    let mut b = Bundle::new("badjson");
    let dir = b.dir().display().to_string();
    // Control: the bundle works with a good config.
    b.args(&["sleep", "100"]);
    let id = common::unique_id("badjson");
    rt.create(&id, &mut b, &[]).ok();
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);

    fs::write(b.config_path(), "{not json").unwrap();
    let id = common::unique_id("badjson");
    rt.track(&id);
    rt.cmd(&["create", &id, "--bundle", &dir])
        .fails()
        .hull_error_mentions(&["config", "json"]);
    rt.cmd(&["state", &id]).fails();
    rt.assert_nothing_left(&id);

    // Valid JSON but not an object of the right shape.
    fs::write(b.config_path(), "[1, 2, 3]").unwrap();
    let id = common::unique_id("badjson");
    rt.track(&id);
    rt.cmd(&["create", &id, "--bundle", &dir]).fails();
    rt.assert_nothing_left(&id);

    // No config.json at all.
    fs::remove_file(b.config_path()).unwrap();
    let id = common::unique_id("badjson");
    rt.track(&id);
    rt.cmd(&["create", &id, "--bundle", &dir])
        .fails()
        .hull_error_mentions(&["config"]);
    rt.cmd(&["run", &id, "--bundle", &dir]).fails();
    rt.assert_nothing_left(&id);
}

#[test]
fn commands_on_unknown_container_fail() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("unknown");
    let id = common::unique_id("unknown");
    for args in [
        vec!["state", &id],
        vec!["start", &id],
        vec!["kill", &id, "KILL"],
        vec!["delete", &id],
    ] {
        rt.cmd(&args).fails();
    }
    // Like runc, `delete --force` of a container that does not exist is not
    // an error (it is what cleanup code calls unconditionally).
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id);
}
