//! `hullctl cp` between containers (running and stopped) and the host,
//! both ways, files and directories; symlinks planted in the container
//! that point out of it (absolute, relative with `..`) resolve inside
//! its root: nothing outside is read or written; a copy into a volume's
//! path lands in the volume. Real containers, a private store per test.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;
use serde_json::json;

/// busybox with /etc/passwd the test's own, a /data dir and /d/sub/f.
fn with_image(test: &str) -> Ctl {
    let ctl = Ctl::new(test);
    let mut l = Layout::new();
    let tar = TarBuf::new()
        .busybox()
        .dir("data")
        .dir("d")
        .dir("d/sub")
        .file("d/sub/f", b"deep\n", 0o640)
        .file("d/top", b"top\n", 0o755)
        .finish();
    let d = l.image(
        vec![Layer {
            tar,
            compression: "",
        }],
        json!({"Cmd": ["sh"]}),
        host_arch(),
    );
    l.tag(d, "cp:1");
    let t = ctl.dir.path().join("img.tar");
    l.tarball(&t);
    ctl.ok(&["load", "-i", t.to_str().unwrap()]);
    ctl
}

/// The container's /etc/passwd (the test image's, not the host's).
const PASSWD_START: &str = "root:x:0:0:root:/root:/bin/sh\ndaemon:";

fn wait_for(ctl: &Ctl, name: &str, path: &str) {
    for _ in 0..400 {
        if ctl
            .run(&["exec", name, "test", "-e", path])
            .status
            .success()
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("{path} never appeared in {name}");
}

fn both_ways(ctl: &Ctl, name: &str, host: &Path) {
    fs::create_dir_all(host).unwrap();
    // Out: a file (mode kept) and a directory (recursively).
    let f = host.join("top");
    ctl.ok(&["cp", &format!("{name}:/d/top"), f.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&f).unwrap(), "top\n");
    assert_eq!(fs::metadata(&f).unwrap().mode() & 0o777, 0o755);
    let d = host.join("dcopy");
    ctl.ok(&["cp", &format!("{name}:/d"), d.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(d.join("sub/f")).unwrap(), "deep\n");
    assert_eq!(fs::metadata(d.join("sub/f")).unwrap().mode() & 0o777, 0o640);
    // Into an existing directory: under the source's name.
    ctl.ok(&["cp", &format!("{name}:/d/sub"), d.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(d.join("sub/f")).unwrap(), "deep\n");
    // In: a file, and a host directory into the container's /tmp.
    let src = host.join("in.txt");
    fs::write(&src, "from the host\n").unwrap();
    ctl.ok(&["cp", src.to_str().unwrap(), &format!("{name}:/tmp/in.txt")]);
    let hd = host.join("hd");
    fs::create_dir_all(hd.join("x/y")).unwrap();
    fs::write(hd.join("x/y/z"), "zz\n").unwrap();
    ctl.ok(&["cp", hd.to_str().unwrap(), &format!("{name}:/tmp")]);
    // Read back through cp (works for stopped containers too).
    let back = host.join("back");
    fs::create_dir_all(&back).unwrap();
    ctl.ok(&["cp", &format!("{name}:/tmp/in.txt"), back.to_str().unwrap()]);
    ctl.ok(&[
        "cp",
        &format!("{name}:/tmp/hd/x/y/z"),
        back.to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read_to_string(back.join("in.txt")).unwrap(),
        "from the host\n"
    );
    assert_eq!(fs::read_to_string(back.join("z")).unwrap(), "zz\n");
    // A missing source is a clear error, and nothing is made.
    let e = ctl.fails(&[
        "cp",
        &format!("{name}:/nope"),
        back.join("n").to_str().unwrap(),
    ]);
    assert!(e.contains(&format!("container {name}: /nope")), "{e}");
    assert!(!back.join("n").exists());
}

#[test]
fn cp_running_and_stopped_both_ways() {
    if skip() {
        return;
    }
    let ctl = with_image("cp");
    let host = ctl.dir.path().join("host");
    fs::create_dir_all(&host).unwrap();
    ctl.ok(&["run", "-d", "--name", "up", "cp:1", "sleep", "1000"]);
    both_ways(&ctl, "up", &host.join("up"));
    // The running container sees what was copied in, owned by root.
    let seen = ctl.ok(&[
        "exec",
        "up",
        "sh",
        "-c",
        "cat /tmp/in.txt /tmp/hd/x/y/z; stat -c %u:%g /tmp/in.txt",
    ]);
    assert_eq!(seen, "from the host\nzz\n0:0\n");
    // The whole root, as docker's cp: the rootfs and volumes, not the
    // container's /proc, /sys or /dev mounts.
    let all = host.join("all");
    ctl.ok(&["cp", "up:/", all.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(all.join("d/sub/f")).unwrap(), "deep\n");
    assert_eq!(
        fs::read_to_string(all.join("tmp/in.txt")).unwrap(),
        "from the host\n"
    );
    for pseudo in ["proc", "sys", "dev"] {
        let n = fs::read_dir(all.join(pseudo))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(n, 0, "/{pseudo} copied");
    }

    ctl.ok(&["create", "--name", "down", "cp:1", "true"]);
    both_ways(&ctl, "down", &host.join("down"));
    // A stopped container's copy leaves its rootfs unmounted as it was.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains("containers/down/bundle/rootfs"),
        "rootfs left mounted"
    );
    // What was copied in is in its container layer.
    ctl.ok(&["start", "down"]);
    ctl.ok(&["wait", "down"]);
    let diff = ctl.ok(&["diff", "down"]);
    assert!(
        diff.contains("A /tmp/in.txt") && diff.contains("A /tmp/hd/x/y/z"),
        "{diff}"
    );
}

#[test]
fn cp_never_leaves_the_container_root() {
    if skip() {
        return;
    }
    let ctl = with_image("cpesc");
    let host = ctl.dir.path().join("host");
    fs::create_dir_all(&host).unwrap();
    // Host files the symlinks would reach if followed on the host.
    let tag = unique("cpesc");
    let secret = Path::new("/tmp").join(format!("{tag}-secret"));
    let absent = Path::new("/tmp").join(format!("{tag}-absent"));
    let etc_probe = Path::new("/etc").join(format!("{tag}-probe"));
    fs::write(&secret, "host secret\n").unwrap();
    struct Rm(Vec<std::path::PathBuf>);
    impl Drop for Rm {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = fs::remove_file(p);
            }
        }
    }
    let _rm = Rm(vec![secret.clone(), absent.clone(), etc_probe.clone()]);
    let plant = format!(
        "ln -s /etc /abs; ln -s ../../../../../../tmp /reldir; \
         ln -s ../../../../../../tmp/{tag}-absent /rel; \
         ln -s /../../etc/passwd /abspw; sleep 1000"
    );
    ctl.ok(&["run", "-d", "--name", "c", "cp:1", "sh", "-c", &plant]);
    wait_for(&ctl, "c", "/abspw");
    let src = host.join("payload");
    fs::write(&src, "payload\n").unwrap();

    // Out through an absolute symlink: the container's /etc, not the host's.
    let out = host.join("passwd");
    ctl.ok(&["cp", "c:/abs/passwd", out.to_str().unwrap()]);
    assert!(fs::read_to_string(&out).unwrap().starts_with(PASSWD_START));
    let out2 = host.join("passwd2");
    ctl.ok(&["cp", "-L", "c:/abspw", out2.to_str().unwrap()]);
    assert!(fs::read_to_string(&out2).unwrap().starts_with(PASSWD_START));
    // A trailing "/" follows the directory symlink, inside the root.
    let etc = host.join("etc");
    ctl.ok(&["cp", "c:/abs/", etc.to_str().unwrap()]);
    assert!(fs::read_to_string(etc.join("passwd"))
        .unwrap()
        .starts_with(PASSWD_START));
    // Without -L the symlink itself is copied.
    let out3 = host.join("link");
    ctl.ok(&["cp", "c:/abspw", out3.to_str().unwrap()]);
    assert_eq!(
        fs::read_link(&out3).unwrap().to_str().unwrap(),
        "/../../etc/passwd"
    );
    // Out through a relative symlink climbing out: the host's secret is
    // not there (the container's /tmp has no such file).
    let leak = host.join("leak");
    let e = ctl.fails(&[
        "cp",
        &format!("c:/reldir/{tag}-secret"),
        leak.to_str().unwrap(),
    ]);
    assert!(e.contains("No such file"), "{e}");
    assert!(!leak.exists());

    // In through the dangling relative symlink: lands in the container's
    // /tmp; the host's /tmp gets nothing.
    ctl.ok(&["cp", src.to_str().unwrap(), "c:/rel"]);
    assert!(!absent.exists(), "written outside the container");
    assert_eq!(
        ctl.ok(&["exec", "c", "cat", &format!("/tmp/{tag}-absent")]),
        "payload\n"
    );
    // In through the relative directory symlink onto the host's secret's
    // name: the host file is untouched.
    ctl.ok(&[
        "cp",
        src.to_str().unwrap(),
        &format!("c:/reldir/{tag}-secret"),
    ]);
    assert_eq!(fs::read_to_string(&secret).unwrap(), "host secret\n");
    assert_eq!(
        ctl.ok(&["exec", "c", "cat", &format!("/tmp/{tag}-secret")]),
        "payload\n"
    );
    // In through the absolute symlink: the container's /etc.
    ctl.ok(&["cp", src.to_str().unwrap(), &format!("c:/abs/{tag}-probe")]);
    assert!(!etc_probe.exists(), "written into the host's /etc");
    assert_eq!(
        ctl.ok(&["exec", "c", "cat", &format!("/etc/{tag}-probe")]),
        "payload\n"
    );
    // `..` in the given path stops at the container's root.
    ctl.ok(&[
        "cp",
        src.to_str().unwrap(),
        &format!("c:/../../../tmp/{tag}-absent"),
    ]);
    assert!(!absent.exists());

    // The same when the container is stopped (its rootfs resolved).
    ctl.ok(&["stop", "-t", "1", "c"]);
    ctl.ok(&[
        "cp",
        src.to_str().unwrap(),
        &format!("c:/reldir/{tag}-secret"),
    ]);
    ctl.ok(&["cp", src.to_str().unwrap(), "c:/rel"]);
    assert_eq!(fs::read_to_string(&secret).unwrap(), "host secret\n");
    assert!(!absent.exists());
    let out4 = host.join("passwd4");
    ctl.ok(&["cp", "c:/abs/passwd", out4.to_str().unwrap()]);
    assert!(fs::read_to_string(&out4).unwrap().starts_with(PASSWD_START));
}

#[test]
fn cp_into_a_volume_path_lands_in_the_volume() {
    if skip() {
        return;
    }
    let ctl = with_image("cpvol");
    let src = ctl.dir.path().join("f");
    fs::write(&src, "into the volume\n").unwrap();
    ctl.ok(&[
        "run",
        "-d",
        "--name",
        "v",
        "-v",
        "vol:/data",
        "cp:1",
        "sleep",
        "1000",
    ]);
    ctl.ok(&["cp", src.to_str().unwrap(), "v:/data/running"]);
    let data = ctl.root().join("volumes/vol/_data");
    assert_eq!(
        fs::read_to_string(data.join("running")).unwrap(),
        "into the volume\n"
    );
    // Stopped: the volume is found by its destination.
    ctl.ok(&["stop", "-t", "1", "v"]);
    ctl.ok(&["cp", src.to_str().unwrap(), "v:/data/stopped"]);
    assert_eq!(
        fs::read_to_string(data.join("stopped")).unwrap(),
        "into the volume\n"
    );
    let back = ctl.dir.path().join("back");
    ctl.ok(&["cp", "v:/data/running", back.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&back).unwrap(), "into the volume\n");
    // Neither is in the container layer.
    let diff = ctl.ok(&["diff", "v"]);
    assert!(!diff.contains("/data/"), "{diff}");
    // Bad endpoints are clear errors.
    let e = ctl.fails(&["cp", src.to_str().unwrap(), "/tmp/x"]);
    assert!(e.contains("one side must be NAME:PATH"), "{e}");
    let e = ctl.fails(&["cp", src.to_str().unwrap(), "nosuch:/x"]);
    assert!(e.contains("no such container: nosuch"), "{e}");
}
