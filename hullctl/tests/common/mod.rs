//! Shared test helpers: a private store per test, the hullctl binary,
//! busybox rootfs tarballs and OCI layouts built here (no registry needed).
#![allow(dead_code)]

#[path = "../../../tests/common/daemons.rs"]
pub mod daemons;
pub mod docker;
pub mod net;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

pub const BUSYBOX: &str = "/bin/busybox";

/// Why this host cannot run the tests (not root, no busybox), if so.
pub fn skip() -> bool {
    let root = fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    let reason = if !root {
        Some("not root".to_string())
    } else if !Path::new(BUSYBOX).exists() {
        Some(format!("{BUSYBOX} missing (install busybox-static)"))
    } else {
        None
    };
    if let Some(r) = &reason {
        eprintln!("SKIP: {r}");
    }
    reason.is_some()
}

static N: AtomicUsize = AtomicUsize::new(0);

pub fn unique(name: &str) -> String {
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temp dir removed on drop (unmounting what is mounted below it first).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(&format!("hullctl-{name}")));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.0.display().to_string();
        let mut targets: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|t| t.starts_with(&prefix))
            .collect();
        targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
        for t in targets {
            let _ = Command::new("umount").args(["-l", t]).status();
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A private store; its containers are force-removed on drop.
pub struct Ctl {
    pub dir: TempDir,
}

impl Ctl {
    pub fn new(name: &str) -> Ctl {
        Ctl {
            dir: TempDir::new(name),
        }
    }
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hullctl"));
        c.arg("--root").arg(self.root()).args(args);
        // Credentials (`login`) are the test's own, never the host user's.
        c.env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        c
    }
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    /// Run; assert success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "hullctl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }
    /// Run; assert failure; stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "hullctl {args:?} should fail: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stderr).to_string()
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        if let Ok(o) = self.cmd(&["ps", "-a", "-q"]).output() {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
    }
}

pub fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A tar archive built in memory.
pub struct TarBuf(pub tar::Builder<Vec<u8>>);

impl TarBuf {
    pub fn new() -> TarBuf {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Deterministic);
        TarBuf(b)
    }
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }
    pub fn dir(&mut self, path: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }
    pub fn file(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }
    /// A raw entry name (the tar crate refuses `..` in its safe setters).
    pub fn raw_file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64);
        let name = path.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }
    pub fn raw_symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.0.append(&h, &[][..]).unwrap();
        self
    }
    /// busybox with its applets, /etc/passwd and /etc/group.
    pub fn busybox(&mut self) -> &mut Self {
        self.dir("bin").dir("etc").dir("tmp").dir("root");
        let bb = fs::read(BUSYBOX).unwrap();
        self.file("bin/busybox", &bb, 0o755);
        let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
        for a in String::from_utf8_lossy(&list.stdout).lines() {
            if !a.is_empty() && a != "busybox" && !a.contains('/') {
                self.symlink(&format!("bin/{a}"), "busybox");
            }
        }
        self.file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
            0o644,
        );
        self.file(
            "etc/group",
            b"root:x:0:\ndaemon:x:1:nobody\nnogroup:x:65534:\n",
            0o644,
        );
        self
    }
    pub fn finish(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// zstd through Debian's zstd tool.
pub fn zstd(data: &[u8]) -> Vec<u8> {
    let mut c = Command::new("zstd")
        .args(["-q", "-c", "-1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("zstd (apt install zstd)");
    let mut stdin = c.stdin.take().unwrap();
    let d = data.to_vec();
    let t = std::thread::spawn(move || stdin.write_all(&d));
    let o = c.wait_with_output().unwrap();
    t.join().unwrap().unwrap();
    o.stdout
}

/// One layer for [`Layout`]: the tar, and how it is shipped.
pub struct Layer {
    pub tar: Vec<u8>,
    pub compression: &'static str, // "", "gzip", "zstd"
}

/// An OCI image layout, built in memory, written as a tarball or a dir.
pub struct Layout {
    pub blobs: Vec<(String, Vec<u8>)>,
    pub manifests: Vec<Value>,
}

impl Layout {
    pub fn new() -> Layout {
        Layout {
            blobs: Vec::new(),
            manifests: Vec::new(),
        }
    }
    pub fn blob(&mut self, data: Vec<u8>) -> (String, u64) {
        let d = format!("sha256:{}", sha256(&data));
        let n = data.len() as u64;
        if !self.blobs.iter().any(|(x, _)| *x == d) {
            self.blobs.push((d.clone(), data));
        }
        (d, n)
    }
    /// Add an image; returns its manifest descriptor (not yet in the index).
    pub fn image(&mut self, layers: Vec<Layer>, config: Value, arch: &str) -> Value {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for l in layers {
            diff_ids.push(format!("sha256:{}", sha256(&l.tar)));
            let (data, mt) = match l.compression {
                "gzip" => (gzip(&l.tar), "application/vnd.oci.image.layer.v1.tar+gzip"),
                "zstd" => (zstd(&l.tar), "application/vnd.oci.image.layer.v1.tar+zstd"),
                _ => (l.tar, "application/vnd.oci.image.layer.v1.tar"),
            };
            let (d, n) = self.blob(data);
            descs.push(json!({"mediaType": mt, "digest": d, "size": n}));
        }
        let cfg = json!({
            "architecture": arch, "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "test layer 1"}, {"created_by": "test layer 2"}],
        });
        let (cd, cn) = self.blob(serde_json::to_vec(&cfg).unwrap());
        let m = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
            "layers": descs,
        });
        let (md, mn) = self.blob(serde_json::to_vec(&m).unwrap());
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
               "platform": {"architecture": arch, "os": "linux"}})
    }
    /// An index over `manifests`, as a blob; returns its descriptor.
    pub fn index_blob(&mut self, manifests: Vec<Value>) -> Value {
        let idx = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        let (d, n) = self.blob(serde_json::to_vec(&idx).unwrap());
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": n})
    }
    pub fn tag(&mut self, mut desc: Value, name: &str) {
        desc["annotations"] = json!({"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit_once(':').map(|x| x.1).unwrap_or(name)});
        self.manifests.push(desc);
    }
    fn index_json(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": self.manifests})).unwrap()
    }
    pub fn tarball(&self, path: &Path) {
        let mut t = TarBuf::new();
        t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, 0o644);
        t.file("index.json", &self.index_json(), 0o644);
        for (d, data) in &self.blobs {
            t.file(&format!("blobs/sha256/{}", &d[7..]), data, 0o644);
        }
        fs::write(path, t.finish()).unwrap();
    }
    pub fn dir(&self, path: &Path) {
        fs::create_dir_all(path.join("blobs/sha256")).unwrap();
        fs::write(
            path.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        fs::write(path.join("index.json"), self.index_json()).unwrap();
        for (d, data) in &self.blobs {
            fs::write(path.join("blobs/sha256").join(&d[7..]), data).unwrap();
        }
    }
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// The test image: busybox + /etc/deleteme + /opq/{a,b} in layer 1; layer
/// 2 (gzip) whites out /etc/deleteme, makes /opq opaque with only /opq/c,
/// and adds /etc/added.
pub fn two_layer_image(layout: &mut Layout, config: Value) -> Value {
    let l1 = TarBuf::new()
        .busybox()
        .file("etc/deleteme", b"doomed\n", 0o644)
        .dir("opq")
        .file("opq/a", b"a\n", 0o644)
        .file("opq/b", b"b\n", 0o644)
        .finish();
    let l2 = TarBuf::new()
        .dir("etc")
        .file("etc/.wh.deleteme", b"", 0o644)
        .file("etc/added", b"added in layer 2\n", 0o644)
        .dir("opq")
        .file("opq/.wh..wh..opq", b"", 0o644)
        .file("opq/c", b"c\n", 0o644)
        .finish();
    layout.image(
        vec![
            Layer {
                tar: l1,
                compression: "",
            },
            Layer {
                tar: l2,
                compression: "gzip",
            },
        ],
        config,
        host_arch(),
    )
}
