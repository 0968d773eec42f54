//! The container layer: `diff`, `commit` (the new layer holds only the
//! changes, in OCI whiteout form; a commit of a committed image's
//! container stacks another layer) and `export` (the merged view).
//! Real containers, a private store per test.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;

use common::*;
use serde_json::{json, Value};

/// A store with `name` loaded: busybox in two layers (see common).
fn with_image(test: &str, name: &str) -> Ctl {
    let ctl = Ctl::new(test);
    let mut l = Layout::new();
    let d = two_layer_image(&mut l, json!({"Cmd": ["sh"]}));
    l.tag(d, name);
    let t = ctl.dir.path().join("img.tar");
    l.tarball(&t);
    ctl.ok(&["load", "-i", t.to_str().unwrap()]);
    ctl
}

fn inspect(ctl: &Ctl, name: &str) -> Value {
    let v: Value = serde_json::from_str(&ctl.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

/// The entries of a tar file: path → (type, mode, uid, gid, content).
type Entries = BTreeMap<String, (u8, u32, u64, u64, Vec<u8>)>;

fn tar_entries(data: &[u8]) -> Entries {
    let mut ar = tar::Archive::new(data);
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = String::from_utf8_lossy(&e.path_bytes())
            .trim_end_matches('/')
            .to_string();
        let h = e.header().clone();
        let mut c = Vec::new();
        if h.entry_type().is_symlink() {
            c = e.link_name_bytes().unwrap().to_vec();
        } else {
            e.read_to_end(&mut c).unwrap();
        }
        out.insert(
            p,
            (
                h.entry_type().as_byte(),
                h.mode().unwrap() & 0o7777,
                h.uid().unwrap(),
                h.gid().unwrap(),
                c,
            ),
        );
    }
    out
}

/// The last layer of an image, as tar entries (hullctl stores committed
/// layers uncompressed: the blob is the tar).
fn last_layer(ctl: &Ctl, image: &str) -> Entries {
    let img = inspect(ctl, image);
    let d = img["Layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let p = ctl
        .root()
        .join("blobs/sha256")
        .join(d.trim_start_matches("sha256:"));
    tar_entries(&fs::read(p).unwrap())
}

const CHANGES: &str = "echo new > /tmp/new; echo changed > /etc/added; rm /etc/group; \
     rm -rf /opq; mkdir /opq; echo z > /opq/z; mkdir /newdir; echo x > /newdir/x; \
     chmod 600 /newdir/x";

#[test]
fn commit_holds_only_the_changes_and_runs_with_them() {
    if skip() {
        return;
    }
    let ctl = with_image("commit", "lay:1");
    ctl.ok(&["run", "--name", "c1", "lay:1", "sh", "-c", CHANGES]);

    let diff = ctl.ok(&["diff", "c1"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in [
        "C /etc",
        "C /etc/added",
        "D /etc/group",
        "A /tmp/new",
        "C /opq",
        "D /opq/c",
        "A /opq/z",
        "A /newdir",
        "A /newdir/x",
    ] {
        assert!(lines.contains(&want), "diff lacks {want:?}:\n{diff}");
    }
    assert!(
        !lines
            .iter()
            .any(|l| l.ends_with("/bin/busybox") || l.ends_with("/opq/a")),
        "diff lists unchanged or already hidden files:\n{diff}"
    );

    let out = ctl.ok(&["commit", "-m", "step two", "c1", "lay:2"]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    let layer = last_layer(&ctl, "lay:2");
    for want in [
        "etc/added",
        "etc/.wh.group",
        "tmp/new",
        "opq/.wh..wh..opq",
        "opq/z",
        "newdir/x",
    ] {
        assert!(
            layer.contains_key(want),
            "new layer lacks {want}: {:?}",
            layer.keys()
        );
    }
    assert_eq!(layer["etc/added"].4, b"changed\n");
    assert_eq!(layer["newdir/x"].1, 0o600);
    for absent in ["bin/busybox", "etc/passwd", "opq/c", "opq/a"] {
        assert!(
            !layer.contains_key(absent),
            "new layer holds unchanged {absent}"
        );
    }
    let img = inspect(&ctl, "lay:2");
    assert_eq!(img["RootFS"]["diff_ids"].as_array().unwrap().len(), 3);

    // A container of the committed image sees all of it.
    let seen = ctl.ok(&[
        "run",
        "--rm",
        "lay:2",
        "sh",
        "-c",
        "cat /tmp/new /etc/added /newdir/x; ls /opq; test -e /etc/group || echo nogroup; \
         stat -c %a /newdir/x",
    ]);
    assert_eq!(seen, "new\nchanged\nx\nz\nnogroup\n600\n");

    // A commit of a committed image's container stacks a third layer.
    ctl.ok(&[
        "run",
        "--name",
        "c2",
        "lay:2",
        "sh",
        "-c",
        "echo third > /third; rm /opq/z",
    ]);
    ctl.ok(&["commit", "c2", "lay:3"]);
    let img3 = inspect(&ctl, "lay:3");
    let ids = img3["RootFS"]["diff_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[..3], img["RootFS"]["diff_ids"].as_array().unwrap()[..]);
    let layer3 = last_layer(&ctl, "lay:3");
    assert_eq!(
        layer3.keys().cloned().collect::<Vec<_>>(),
        ["opq", "opq/.wh.z", "third"]
    );
    let seen = ctl.ok(&[
        "run",
        "--rm",
        "lay:3",
        "sh",
        "-c",
        "cat /third /tmp/new; ls -A /opq | wc -l",
    ]);
    assert_eq!(seen, "third\nnew\n0\n");
    let hist = ctl.ok(&["history", "lay:2"]);
    assert!(hist.contains("hullctl commit c1"), "{hist}");
}

/// The counters /tmp/a and /tmp/z of the busy container, as a committed
/// layer holds them (None: empty, just truncated by the shell's `>`).
/// The loop writes a, then z, so at any one moment a is z or z + 1, or
/// one of them is being rewritten; a layer read while the loop runs finds
/// z ahead of a (z is read later).
fn counters(ctl: &Ctl, image: &str) -> (Option<u64>, Option<u64>) {
    let layer = last_layer(ctl, image);
    let n = |k: &str| {
        let s = String::from_utf8_lossy(&layer[k].4).to_string();
        if s.is_empty() {
            return None;
        }
        let v = s.strip_suffix('\n').and_then(|s| s.parse::<u64>().ok());
        assert!(v.is_some(), "{k} torn: {s:?}");
        v
    };
    (n("tmp/a"), n("tmp/z"))
}

/// /tmp/m (8 MB, written once) lies between a and z in the layer, so a
/// commit that did not pause would read z a while after a.
const BUSY: &str = "dd if=/dev/zero of=/tmp/m bs=1M count=8 2>/dev/null; \
     i=0; while :; do i=$((i+1)); echo $i > /tmp/a; echo $i > /tmp/z; done";

#[test]
fn commit_of_a_running_container_pauses_it() {
    if skip() {
        return;
    }
    let ctl = with_image("commitrun", "lay:1");
    // The container writes all the time; the layer must be one moment's.
    ctl.ok(&["run", "-d", "--name", "busy", "lay:1", "sh", "-c", BUSY]);
    let mut waited = 0;
    while !ctl.ok(&["diff", "busy"]).contains("/tmp/z\n") {
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited += 1;
        assert!(waited < 400, "the container never wrote /tmp/z");
    }
    for round in 0..5 {
        let img = format!("lay:busy{round}");
        ctl.ok(&["commit", "busy", &img]);
        let ps = ctl.ok(&["ps"]);
        assert!(
            ps.contains("busy") && !ps.contains("Paused"),
            "not resumed: {ps}"
        );
        match counters(&ctl, &img) {
            (Some(a), Some(b)) => {
                assert!(a == b || a == b + 1, "inconsistent layer: a={a} b={b}")
            }
            (None, None) => panic!("both counters empty"),
            _ => {} // one being rewritten at the moment of the pause
        }
    }
    // --pause=false: not paused (the container goes on counting); the
    // commit still succeeds and runs.
    ctl.ok(&["commit", "--pause=false", "busy", "lay:nopause"]);
    let out = ctl.ok(&[
        "run",
        "--rm",
        "lay:nopause",
        "sh",
        "-c",
        "test -f /tmp/z && echo ok",
    ]);
    assert_eq!(out, "ok\n");
    ctl.ok(&["rm", "-f", "busy"]);
}

#[test]
fn export_equals_the_merged_view() {
    if skip() {
        return;
    }
    let ctl = with_image("export", "lay:1");
    ctl.ok(&["run", "--name", "c1", "lay:1", "sh", "-c", CHANGES]);
    let out = ctl.dir.path().join("c1.tar");
    ctl.ok(&["export", "-o", out.to_str().unwrap(), "c1"]);
    let exported = tar_entries(&fs::read(&out).unwrap());

    // The merged view, mounted here read-only: the container's upper dir
    // as the topmost of overlayfs' lower dirs (whiteouts and opaque
    // directories apply as they do in the container).
    let c = inspect(&ctl, "c1");
    let img = inspect(&ctl, "lay:1");
    let mut lowers = vec![c["GraphDriver"]["Data"]["UpperDir"]
        .as_str()
        .unwrap()
        .to_string()];
    for l in img["GraphDriver"]["Data"]["LowerDirs"].as_array().unwrap() {
        lowers.push(l.as_str().unwrap().to_string());
    }
    let view = ctl.dir.path().join("view");
    fs::create_dir_all(&view).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!("ro,lowerdir={}", lowers.join(":")))
        .arg(&view)
        .status()
        .unwrap();
    assert!(st.success());
    let expected = walk(&view); // TempDir's drop unmounts it
    assert_eq!(
        exported.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (k, v) in &expected {
        let e = &exported[k];
        assert_eq!((e.0, e.1, e.2, e.3), (v.0, v.1, v.2, v.3), "{k}");
        assert_eq!(e.4, v.4, "{k} content");
    }
    assert!(exported.contains_key("newdir/x") && !exported.contains_key("etc/group"));
    assert!(!exported.contains_key("opq/c") && exported.contains_key("opq/z"));
    assert_eq!(exported["etc/added"].4, b"changed\n");
}

/// A directory tree as tar-like entries.
fn walk(root: &std::path::Path) -> Entries {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            let (t, c) = if m.is_dir() {
                stack.push(p.clone());
                (b'5', vec![])
            } else if m.file_type().is_symlink() {
                (
                    b'2',
                    fs::read_link(&p)
                        .unwrap()
                        .as_os_str()
                        .as_encoded_bytes()
                        .to_vec(),
                )
            } else {
                (b'0', fs::read(&p).unwrap())
            };
            out.insert(
                rel,
                (t, m.mode() & 0o7777, m.uid() as u64, m.gid() as u64, c),
            );
        }
    }
    out
}
