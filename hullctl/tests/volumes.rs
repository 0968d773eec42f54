//! Data volumes: named ones keep data across containers and container
//! removal; a new (empty) volume is seeded from the image, an existing one
//! is not overwritten; the image's VOLUMEs become anonymous volumes that
//! `rm -v` removes; `--volumes-from` shares them; `volume prune` removes
//! only unused ones; a volume in use cannot be removed; a corrupted volume
//! gives a clear error. Real containers, a private store per test.

mod common;

use std::fs;

use common::*;
use serde_json::{json, Value};

/// busybox with /app/seed in the image and /app as its VOLUME.
fn with_image(test: &str) -> Ctl {
    let ctl = Ctl::new(test);
    let mut l = Layout::new();
    let tar = TarBuf::new()
        .busybox()
        .dir("app")
        .file("app/seed", b"from the image\n", 0o644)
        .finish();
    let d = l.image(
        vec![Layer {
            tar,
            compression: "",
        }],
        json!({"Cmd": ["sh"], "Volumes": {"/app": {}}}),
        host_arch(),
    );
    l.tag(d, "vol:1");
    let t = ctl.dir.path().join("img.tar");
    l.tarball(&t);
    ctl.ok(&["load", "-i", t.to_str().unwrap()]);
    ctl
}

fn volumes(ctl: &Ctl) -> Vec<String> {
    ctl.ok(&["volume", "ls", "-q"])
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn named_volume_outlives_containers_and_is_seeded_once() {
    if skip() {
        return;
    }
    let ctl = with_image("named");
    // New and empty: seeded from the image's /app.
    let out = ctl.ok(&[
        "run",
        "--name",
        "w",
        "-v",
        "data:/app",
        "vol:1",
        "sh",
        "-c",
        "cat /app/seed; echo kept > /app/seed; echo more > /app/more",
    ]);
    assert_eq!(out, "from the image\n");
    ctl.ok(&["rm", "-v", "w"]);
    assert_eq!(volumes(&ctl), ["data"], "a named volume is not anonymous");
    // Existing: not overwritten by the image's content.
    let out = ctl.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/app",
        "vol:1",
        "sh",
        "-c",
        "cat /app/seed /app/more",
    ]);
    assert_eq!(out, "kept\nmore\n");
    // Mounted elsewhere, still the same data; read-only when asked.
    let out = ctl.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/elsewhere:ro",
        "vol:1",
        "sh",
        "-c",
        "cat /elsewhere/more; echo x > /elsewhere/no 2>/dev/null || echo refused",
    ]);
    assert_eq!(out, "more\nrefused\n");
    let v: Value = serde_json::from_str(&ctl.ok(&["volume", "inspect", "data"])).unwrap();
    assert_eq!(v[0]["Name"], "data");
    let mp = v[0]["Mountpoint"].as_str().unwrap();
    assert_eq!(fs::read_to_string(format!("{mp}/seed")).unwrap(), "kept\n");
}

#[test]
fn anonymous_volumes_rm_v_volumes_from_prune_and_in_use() {
    if skip() {
        return;
    }
    let ctl = with_image("anon");
    ctl.ok(&["volume", "create", "spare"]);
    ctl.ok(&[
        "run",
        "-d",
        "--name",
        "a",
        "-v",
        "/scratch",
        "vol:1",
        "sh",
        "-c",
        "echo hi > /scratch/f; sleep 1000",
    ]);
    let mut vols = volumes(&ctl);
    vols.retain(|v| v != "spare");
    assert_eq!(vols.len(), 2, "the image VOLUME and -v /scratch: {vols:?}");
    // Shared with another container.
    let mut seen = String::new();
    for _ in 0..200 {
        let o = ctl.run(&[
            "run",
            "--rm",
            "--volumes-from",
            "a",
            "vol:1",
            "sh",
            "-c",
            "cat /scratch/f /app/seed",
        ]);
        seen = String::from_utf8_lossy(&o.stdout).to_string();
        if o.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(seen, "hi\nfrom the image\n");
    // In use: refused, nothing removed.
    for v in &vols {
        let e = ctl.fails(&["volume", "rm", v]);
        assert!(e.contains("in use by container(s) a"), "{e}");
    }
    // Prune removes only unused ones (with -a, unused named ones too).
    let pruned = ctl.ok(&["volume", "prune", "-a"]);
    assert_eq!(pruned.trim(), "Deleted: spare");
    assert_eq!(volumes(&ctl).len(), 2);
    ctl.ok(&["rm", "-f", "-v", "a"]);
    assert!(volumes(&ctl).is_empty(), "rm -v left {:?}", volumes(&ctl));
}

#[test]
fn corrupted_volume_and_bad_names_are_clear_errors() {
    if skip() {
        return;
    }
    let ctl = with_image("corrupt");
    ctl.ok(&["volume", "create", "broken"]);
    fs::remove_dir(ctl.root().join("volumes/broken/_data")).unwrap();
    let e = ctl.fails(&["run", "--rm", "-v", "broken:/app", "vol:1", "true"]);
    assert!(e.contains("volume broken: corrupted"), "{e}");
    let e = ctl.fails(&["volume", "inspect", "broken"]);
    assert!(e.contains("volume broken: corrupted"), "{e}");
    // Nothing was left behind by the failed run.
    assert!(ctl.ok(&["ps", "-a", "-q"]).trim().is_empty());
    assert_eq!(volumes_raw(&ctl), ["broken"]);
    let e = ctl.fails(&["volume", "create", "-bad"]);
    assert!(!e.is_empty());
    let e = ctl.fails(&["volume", "create", "a/b"]);
    assert!(e.contains("invalid volume name"), "{e}");
    ctl.ok(&["volume", "rm", "-f", "broken"]);
    assert!(volumes_raw(&ctl).is_empty());
}

fn volumes_raw(ctl: &Ctl) -> Vec<String> {
    fs::read_dir(ctl.root().join("volumes"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A tree's files and their contents (to show nothing changed).
fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if p.is_dir() {
                stack.push(p);
                out.push((rel, Vec::new()));
            } else {
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn corrupted_volume_data_or_record_changes_nothing() {
    if skip() {
        return;
    }
    let ctl = with_image("corrupt2");
    ctl.ok(&["volume", "create", "filed"]);
    ctl.ok(&["volume", "create", "trunc"]);
    ctl.ok(&["volume", "create", "fine"]);
    let vdir = ctl.root().join("volumes");
    // _data replaced by a file; volume.json cut in half.
    fs::remove_dir(vdir.join("filed/_data")).unwrap();
    fs::write(vdir.join("filed/_data"), "not a dir\n").unwrap();
    let meta = vdir.join("trunc/volume.json");
    let full = fs::read(&meta).unwrap();
    fs::write(&meta, &full[..full.len() / 2]).unwrap();
    let before = snapshot(&vdir);

    let e = ctl.fails(&["run", "--rm", "-v", "filed:/app", "vol:1", "true"]);
    assert!(
        e.contains("volume filed: corrupted") && e.contains("_data is missing or not a directory"),
        "{e}"
    );
    let e = ctl.fails(&["run", "--rm", "-v", "trunc:/app", "vol:1", "true"]);
    assert!(
        e.contains("volume trunc: corrupted") && e.contains("volume.json"),
        "{e}"
    );
    for v in ["filed", "trunc"] {
        let e = ctl.fails(&["volume", "inspect", v]);
        assert!(e.contains(&format!("volume {v}: corrupted")), "{e}");
        let e = ctl.fails(&["volume", "rm", v]);
        assert!(e.contains(&format!("volume {v}: corrupted")), "{e}");
    }
    // ls names them and lists the rest; prune leaves them alone.
    let o = ctl.run(&["volume", "ls", "-q"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "fine\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("volume filed: corrupted") && err.contains("volume trunc: corrupted"),
        "{err}"
    );
    ctl.ok(&["volume", "prune", "-a"]);
    assert!(ctl.ok(&["ps", "-a", "-q"]).trim().is_empty());
    let mut after = snapshot(&vdir);
    after.retain(|(p, _)| !p.starts_with("fine"));
    let mut want = before.clone();
    want.retain(|(p, _)| !p.starts_with("fine"));
    assert_eq!(after, want, "a failed command changed the volumes");
}

/// Regression: container creation holds the store lock while it makes
/// volumes, and on failure removes the ones it made; neither may take
/// the lock again (a second flock in the same process would wait
/// forever).
#[test]
fn failed_create_removes_its_new_volume_without_deadlock() {
    if skip() {
        return;
    }
    let ctl = with_image("vollock");
    ctl.ok(&["volume", "create", "broken"]);
    let meta = ctl.root().join("volumes/broken/volume.json");
    fs::write(&meta, b"{").unwrap();
    let mut child = ctl
        .cmd(&[
            "run",
            "--rm",
            "-v",
            "newvol:/a",
            "-v",
            "/anon",
            "-v",
            "broken:/b",
            "vol:1",
            "true",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hullctl run hung (the store lock taken twice?)");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("volume broken: corrupted"), "{err}");
    // The volumes it made (newvol, the anonymous one) are gone again.
    assert_eq!(volumes_raw(&ctl), ["broken"]);
    assert!(ctl.ok(&["ps", "-a", "-q"]).trim().is_empty());
}
