//! Overlay fallbacks: with kernel overlayfs unusable (forced with
//! HULLCTL_NO_OVERLAY, or a store on a file system overlayfs refuses as
//! upper dir) containers run through fuse-overlayfs, else a copied
//! rootfs, with a message saying why and which; diff, commit, export and
//! rm work on both, and give what the kernel overlayfs container gives;
//! rm leaves no mount, directory or fuse-overlayfs process.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const FUSE: &str = "/usr/bin/fuse-overlayfs";

/// The steps of tests/layer.rs: add, change, delete, an opaque directory.
const CHANGES: &str = "echo new > /tmp/new; echo changed > /etc/added; rm /etc/group; \
     rm -rf /opq; mkdir /opq; echo z > /opq/z; mkdir -p /newdir/in; echo x > /newdir/in/x; \
     chmod 600 /newdir/in/x; chmod 700 /special";

/// What a container of the image shows of the special files.
const LOOK: &str = "stat -c '%n %u:%g %a %h' /special/suid /special/a /special/b; \
     stat -c '%n %t:%T' /special/null; test /special/a -ef /special/b && echo linked; \
     ls /opq; cat /etc/added";

/// The layer tests' image, plus a layer of special files: a hard link,
/// a set-uid file owned 1:1, a character device and a user xattr.
fn with_image(test: &str) -> Ctl {
    let ctl = Ctl::new(test);
    let mut l = Layout::new();
    let mut b = tar::Builder::new(Vec::new());
    let hdr = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    };
    let mut h = hdr(tar::EntryType::Directory, 0o755, 0);
    b.append_data(&mut h, "special/", &[][..]).unwrap();
    let mut h = hdr(tar::EntryType::Regular, 0o644, 5);
    b.append_pax_extensions([("SCHILY.xattr.user.hullctl", &b"kept"[..])])
        .unwrap();
    b.append_data(&mut h, "special/a", &b"aaaa\n"[..]).unwrap();
    let mut h = hdr(tar::EntryType::Link, 0o644, 0);
    b.append_link(&mut h, "special/b", "special/a").unwrap();
    let mut h = hdr(tar::EntryType::Regular, 0o4755, 3);
    h.set_uid(1);
    h.set_gid(1);
    b.append_data(&mut h, "special/suid", &b"su\n"[..]).unwrap();
    let mut h = hdr(tar::EntryType::Char, 0o666, 0);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    b.append_data(&mut h, "special/null", &[][..]).unwrap();
    let special = b.into_inner().unwrap();
    // two_layer_image's two layers, then the special one.
    let d = two_layer_image(&mut l, json!({"Cmd": ["sh"]}));
    let m = manifest_of(&l, &d);
    let mut layers = Vec::new();
    for ld in m["layers"].as_array().unwrap() {
        let digest = ld["digest"].as_str().unwrap();
        let data = l.blobs.iter().find(|(x, _)| x == digest).unwrap().1.clone();
        let tar = if ld["mediaType"].as_str().unwrap().ends_with("gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&data[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        } else {
            data
        };
        layers.push(Layer {
            tar,
            compression: "",
        });
    }
    layers.push(Layer {
        tar: special,
        compression: "",
    });
    let d = l.image(layers, json!({"Cmd": ["sh"]}), host_arch());
    l.tag(d, "fb:1");
    let t = ctl.dir.path().join("img.tar");
    l.tarball(&t);
    ctl.ok(&["load", "-i", t.to_str().unwrap()]);
    ctl
}

fn manifest_of(l: &Layout, desc: &Value) -> Value {
    let d = desc["digest"].as_str().unwrap();
    serde_json::from_slice(&l.blobs.iter().find(|(x, _)| x == d).unwrap().1).unwrap()
}

/// Run `args` with HULLCTL_NO_OVERLAY=`mode`: (stdout, stderr).
fn run_with(ctl: &Ctl, mode: &str, args: &[&str]) -> (String, String) {
    let o = ctl
        .cmd(args)
        .env("HULLCTL_NO_OVERLAY", mode)
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert!(o.status.success(), "hullctl {args:?}: {err}");
    (out, err)
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(String::from).collect();
    v.sort();
    v
}

/// (type, mode, uid, gid, content) of each entry of a tar file.
fn tar_entries(p: &Path) -> BTreeMap<String, (u8, u32, u64, u64, Vec<u8>)> {
    let data = fs::read(p).unwrap();
    let mut ar = tar::Archive::new(&data[..]);
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes())
            .trim_end_matches('/')
            .to_string();
        let h = e.header().clone();
        let mut c = Vec::new();
        if h.entry_type().is_symlink() {
            c = e.link_name_bytes().unwrap().to_vec();
        } else {
            e.read_to_end(&mut c).unwrap();
        }
        let t = h.entry_type().as_byte();
        out.insert(
            name,
            (
                t,
                h.mode().unwrap() & 0o7777,
                h.uid().unwrap(),
                h.gid().unwrap(),
                c,
            ),
        );
    }
    out
}

/// The kernel overlayfs container's results: diff, LOOK, export.
struct Reference {
    diff: Vec<String>,
    look: String,
    export: BTreeMap<String, (u8, u32, u64, u64, Vec<u8>)>,
}

fn reference(ctl: &Ctl) -> Reference {
    let (_, err) = run_with(
        ctl,
        "0",
        &["run", "--name", "ref", "fb:1", "sh", "-c", CHANGES],
    );
    assert!(!err.contains("overlayfs cannot be used"), "{err}");
    let look = ctl.ok(&["run", "--rm", "fb:1", "sh", "-c", LOOK]);
    let diff = sorted_lines(&ctl.ok(&["diff", "ref"]));
    let out = ctl.dir.path().join("ref.tar");
    ctl.ok(&["export", "-o", out.to_str().unwrap(), "ref"]);
    Reference {
        diff,
        look,
        export: tar_entries(&out),
    }
}

/// Nothing of container `name` is left: directory, mount, fuse daemon.
fn assert_gone(ctl: &Ctl, name: &str) {
    let dir = ctl.root().join("containers").join(name);
    assert!(!dir.exists(), "{} left", dir.display());
    let prefix = dir.display().to_string();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&prefix), "a mount left under {prefix}");
    let mut left = Vec::new();
    for _ in 0..100 {
        left.clear();
        for e in fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(c) = fs::read(e.path().join("cmdline")) {
                if String::from_utf8_lossy(&c).contains(&prefix) {
                    left.push(e.file_name());
                }
            }
        }
        if left.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("processes left for {prefix}: {left:?}");
}

/// One fallback (HULLCTL_NO_OVERLAY=`mode`): the message, then the
/// results compared with kernel overlayfs', commit, export, rm.
fn check_fallback(ctl: &Ctl, mode: &str, want_msg: &str, driver: &str) {
    let r = reference(ctl);
    let (_, err) = run_with(
        ctl,
        mode,
        &["run", "--name", "fb", "fb:1", "sh", "-c", CHANGES],
    );
    assert!(err.contains(want_msg), "message: {err}");
    let v: Value = serde_json::from_str(&ctl.ok(&["inspect", "fb"])).unwrap();
    assert_eq!(v[0]["GraphDriver"]["Name"], driver);
    // diff: as on kernel overlayfs.
    assert_eq!(sorted_lines(&ctl.ok(&["diff", "fb"])), r.diff);
    // export: the same merged view.
    let out = ctl.dir.path().join("fb.tar");
    ctl.ok(&["export", "-o", out.to_str().unwrap(), "fb"]);
    let exported = tar_entries(&out);
    assert_eq!(
        exported.keys().collect::<Vec<_>>(),
        r.export.keys().collect::<Vec<_>>()
    );
    for (k, v) in &r.export {
        assert_eq!(&exported[k], v, "{k}");
    }
    // The special files as kernel overlayfs shows them (a fresh container).
    let (look, err) = run_with(ctl, mode, &["run", "--rm", "fb:1", "sh", "-c", LOOK]);
    assert!(err.contains(want_msg), "{err}");
    assert_eq!(look, r.look);
    assert!(
        look.contains("/special/suid 1:1 4755 1") && look.contains("linked"),
        "{look}"
    );
    // commit: the image runs with the changes.
    ctl.ok(&["commit", "fb", "fb:2"]);
    let seen = ctl.ok(&[
        "run",
        "--rm",
        "fb:2",
        "sh",
        "-c",
        "cat /tmp/new /etc/added /newdir/in/x; ls /opq; test -e /etc/group || echo nogroup; \
         stat -c %a /newdir/in/x /special",
    ]);
    assert_eq!(seen, "new\nchanged\nx\nz\nnogroup\n600\n700\n");
    // A detached one, then rm -f while it runs.
    let (_, err) = run_with(
        ctl,
        mode,
        &["run", "-d", "--name", "bg", "fb:1", "sleep", "100"],
    );
    assert!(err.contains(want_msg), "{err}");
    assert_eq!(ctl.ok(&["exec", "bg", "cat", "/special/a"]), "aaaa\n");
    ctl.ok(&["rm", "-f", "bg", "fb", "ref"]);
    for n in ["bg", "fb", "ref"] {
        assert_gone(ctl, n);
    }
    // (run --rm's detached cleaner may still be at work: waited for.)
    let mut tmp = Vec::new();
    for _ in 0..100 {
        tmp = fs::read_dir(ctl.root().join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        if tmp.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(tmp.is_empty(), "tmp/ debris: {tmp:?}");
}

#[test]
fn fuse_overlayfs_fallback() {
    if skip() {
        return;
    }
    if !Path::new(FUSE).exists() || !Path::new("/dev/fuse").exists() {
        eprintln!("SKIP: {FUSE} or /dev/fuse missing (apt install fuse-overlayfs)");
        return;
    }
    let ctl = with_image("fbfuse");
    check_fallback(
        &ctl,
        "1",
        "overlayfs cannot be used (HULLCTL_NO_OVERLAY=1 is set); using fuse-overlayfs",
        "fuse-overlayfs",
    );
}

#[test]
fn copied_rootfs_fallback() {
    if skip() {
        return;
    }
    let ctl = with_image("fbcopy");
    check_fallback(
        &ctl,
        "all",
        "overlayfs cannot be used (HULLCTL_NO_OVERLAY=all is set) and fuse-overlayfs is not \
         available (HULLCTL_NO_OVERLAY=all); using a copied rootfs",
        "copy",
    );
    // The copy kept the layer's xattr (checked on the host: busybox has
    // no getfattr).
    run_with(&ctl, "all", &["create", "--name", "x", "fb:1"]);
    let o = std::process::Command::new("getfattr")
        .args(["--only-values", "-n", "user.hullctl"])
        .arg(ctl.root().join("containers/x/bundle/rootfs/special/a"))
        .output()
        .expect("getfattr (apt install attr)");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "kept");
}

/// Without the switch: a store whose containers/ directory is on
/// overlayfs (which kernel overlayfs refuses as an upper dir) falls back
/// by itself, saying why.
#[test]
fn store_on_overlayfs_falls_back_by_itself() {
    if skip() {
        return;
    }
    let ctl = with_image("fbprobe");
    let base = ctl.dir.path().join("ovl");
    for d in ["l", "u", "w"] {
        fs::create_dir_all(base.join(d)).unwrap();
    }
    let st = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!(
            "lowerdir={},upperdir={},workdir={}",
            base.join("l").display(),
            base.join("u").display(),
            base.join("w").display()
        ))
        .arg(ctl.root().join("containers")) // TempDir's drop unmounts it
        .status()
        .unwrap();
    assert!(st.success());
    let o = ctl
        .cmd(&["run", "--name", "p", "fb:1", "cat", "/etc/added"])
        .env_remove("HULLCTL_NO_OVERLAY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    if o.status.success() && !err.contains("overlayfs cannot be used") {
        eprintln!("SKIP: this kernel accepts an overlayfs upper dir on overlayfs");
        return;
    }
    assert!(o.status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "added in layer 2\n");
    assert!(
        err.contains("overlayfs cannot be used (a trial overlay mount in")
            && err.contains("; using fuse-overlayfs"),
        "{err}"
    );
    eprintln!("fell back: {err}");
    ctl.ok(&["rm", "p"]);
    assert_gone(&ctl, "p");
}

/// An overlay probe left mounted by a process that died is cleared by
/// `system prune` (unmounted, removed); a live process's is kept.
#[test]
fn prune_clears_a_dead_overlay_probe() {
    if skip() {
        return;
    }
    let ctl = with_image("fbprune");
    let dead = ctl.root().join("containers/.overlay-probe-999999999-0-1");
    let live = ctl.root().join(format!(
        "containers/.overlay-probe-{}-0-1",
        std::process::id()
    ));
    for d in ["l", "u", "w", "m"] {
        fs::create_dir_all(dead.join(d)).unwrap();
        fs::create_dir_all(live.join(d)).unwrap();
    }
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(dead.join("m"))
        .status()
        .unwrap();
    assert!(st.success());
    let out = ctl.ok(&["system", "prune"]);
    assert!(
        out.contains("overlay probe .overlay-probe-999999999"),
        "{out}"
    );
    assert!(!dead.exists());
    assert!(live.exists(), "a live process's probe removed");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&dead.display().to_string()));
}
