//! `pull` from a local registry (Debian's docker-registry, started by the
//! test on a free 127.0.0.1 port with private storage; images pushed with
//! skopeo from OCI layouts built here from the busybox rootfs): two layers
//! with a whiteout, a zstd layer in a multi-platform index, pull by
//! digest, two pulls at once, a resumed download, and refusals.
//! Skipped, saying so, where docker-registry or skopeo is not installed.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const REGISTRY: &str = "/usr/bin/docker-registry";
const SKOPEO: &str = "/usr/bin/skopeo";

struct Registry {
    creds: bool,
    child: Child,
    addr: String,
    dir: TempDir,
}

impl Registry {
    fn start() -> Registry {
        Registry::start_on("127.0.0.1", None, "")
    }
    /// On `host`, with TLS from (cert, key) files if given, and `extra`
    /// configuration (top-level YAML) appended.
    fn start_on(host: &str, tls: Option<(&Path, &Path)>, extra: &str) -> Registry {
        let dir = TempDir::new("registry");
        let port = std::net::TcpListener::bind((host, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("{host}:{port}");
        let cfg = dir.path().join("config.yml");
        let mut text = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.path().join("storage").display()
        );
        if let Some((cert, key)) = tls {
            text.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        fs::write(&cfg, text).unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY)
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "registry did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        Registry {
            creds: !extra.is_empty(),
            child,
            addr,
            dir,
        }
    }
    /// Push `tag` of the layout at `dir` (all platforms) as `repo:tag`.
    fn push(&self, layout: &Layout, tag: &str, repo: &str) {
        self.push_with(layout, tag, repo, &["--all"])
    }
    fn push_with(&self, layout: &Layout, tag: &str, repo: &str, extra: &[&str]) {
        let d = self.dir.path().join(unique("layout"));
        layout.dir(&d);
        let o = Command::new(SKOPEO)
            .args(["copy", "--dest-tls-verify=false", "-q"])
            .args(extra)
            .arg(format!("oci:{}:{tag}", d.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.addr))
            .args(if self.creds {
                vec!["--dest-creds", "hull:s3cret"]
            } else {
                vec![]
            })
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tools() -> bool {
    for t in [REGISTRY, SKOPEO] {
        if !Path::new(t).exists() {
            eprintln!("SKIP: {t} missing (apt install docker-registry skopeo)");
            return false;
        }
    }
    true
}

#[test]
fn pull_two_layers_zstd_index_digest_and_concurrent() {
    if skip() || !tools() {
        return;
    }
    let reg = Registry::start();
    let mut l = Layout::new();
    let d = two_layer_image(
        &mut l,
        json!({"Cmd": ["sh", "-c", "cat /etc/added; ls /etc/deleteme 2>&1; true"]}),
    );
    l.tag(d, "1");
    reg.push(&l, "1", "test/two");
    // The same image as a Docker v2 schema 2 manifest.
    reg.push_with(&l, "1", "test/two-v2s2", &["--format", "v2s2"]);
    let mut l = Layout::new();
    let tar = TarBuf::new()
        .busybox()
        .file("zst", b"from zstd\n", 0o644)
        .finish();
    let other = l.image(
        vec![Layer {
            tar: TarBuf::new().file("wrong", b"x\n", 0o644).finish(),
            compression: "",
        }],
        json!({"Cmd": ["cat", "/wrong"]}),
        "s390x",
    );
    let mine = l.image(
        vec![Layer {
            tar,
            compression: "zstd",
        }],
        json!({"Cmd": ["cat", "/zst"]}),
        host_arch(),
    );
    let idx = l.index_blob(vec![other, mine]);
    l.tag(idx, "1");
    reg.push(&l, "1", "test/multi");

    let ctl = Ctl::new("pull");
    let two = format!("{}/test/two:1", reg.addr);
    // Two pulls of the same image at once: both succeed, one copy results.
    let a = ctl
        .cmd(&["pull", "-q", &two])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = ctl
        .cmd(&["pull", "-q", &two])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        a.status.success() && b.status.success(),
        "{}{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    assert_eq!(a.stdout, b.stdout);
    let out = ctl.ok(&["run", "--rm", &two]);
    assert!(
        out.starts_with("added in layer 2\n") && out.contains("No such file"),
        "{out}"
    );
    assert_eq!(fs::read_dir(ctl.root().join("layers")).unwrap().count(), 2);

    let v2 = format!("{}/test/two-v2s2:1", reg.addr);
    ctl.ok(&["pull", &v2]);
    let v: serde_json::Value = serde_json::from_str(&ctl.ok(&["inspect", &v2])).unwrap();
    let m = ctl
        .root()
        .join("blobs/sha256")
        .join(&v[0]["Manifest"].as_str().unwrap()[7..]);
    assert!(fs::read_to_string(m)
        .unwrap()
        .contains("application/vnd.docker.distribution.manifest.v2+json"));
    assert_eq!(ctl.ok(&["run", "--rm", &v2]), out);

    // run pulls an image that is not here (then runs single-threaded).
    let multi = format!("{}/test/multi:1", reg.addr);
    assert_eq!(ctl.ok(&["run", "--rm", &multi]), "from zstd\n");

    // By digest (the platform manifest's).
    let id = ctl.ok(&["pull", "-q", &two]);
    let v: serde_json::Value = serde_json::from_str(&ctl.ok(&["inspect", &two])).unwrap();
    let manifest = v[0]["Manifest"].as_str().unwrap().to_string();
    let ctl2 = Ctl::new("pull-digest");
    let by_digest = format!("{}/test/two@{manifest}", reg.addr);
    assert_eq!(ctl2.ok(&["pull", "-q", &by_digest]), id);
    let tmp: Vec<_> = fs::read_dir(ctl.root().join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "debris in tmp: {tmp:?}");

    // Refusals: another platform only; an unknown tag.
    let mut l = Layout::new();
    let other = l.image(
        vec![Layer {
            tar: TarBuf::new().file("wrong", b"x\n", 0o644).finish(),
            compression: "",
        }],
        json!({}),
        "s390x",
    );
    let idx = l.index_blob(vec![other]);
    l.tag(idx, "1");
    reg.push(&l, "1", "test/foreign");
    let e = ctl.fails(&["pull", &format!("{}/test/foreign:1", reg.addr)]);
    assert!(e.contains("no manifest for this platform"), "{e}");
    let e = ctl.fails(&["pull", &format!("{}/test/none:1", reg.addr)]);
    assert!(e.contains("test/none"), "{e}");
}

#[test]
fn interrupted_download_resumes() {
    if skip() || !tools() {
        return;
    }
    let reg = Registry::start();
    // gzip here is deterministic: the same bytes as the pushed layer.
    let layer = gzip(
        &TarBuf::new()
            .busybox()
            .file("big", &vec![7u8; 3 << 20], 0o644)
            .finish(),
    );
    let mut l2 = Layout::new();
    let desc = l2.image(
        vec![Layer {
            tar: TarBuf::new()
                .busybox()
                .file("big", &vec![7u8; 3 << 20], 0o644)
                .finish(),
            compression: "gzip",
        }],
        json!({"Cmd": ["sh", "-c", "wc -c < /big"]}),
        host_arch(),
    );
    l2.tag(desc, "1");
    reg.push(&l2, "1", "test/resume");
    let name = format!("{}/test/resume:1", reg.addr);
    let hex = sha256(&layer);
    // A download cut halfway: the first half of the blob is in tmp/.
    let ctl = Ctl::new("resume");
    ctl.ok(&["images"]);
    let part = ctl.root().join(format!("tmp/partial-{hex}"));
    // Garbage of the same length proves the pull resumes (range request)
    // rather than starting over: the blob then fails verification...
    fs::write(&part, vec![0u8; layer.len() / 2]).unwrap();
    let e = ctl.fails(&["pull", &name]);
    assert!(
        e.contains("digest mismatch"),
        "resume did not use the partial file: {e}"
    );
    assert!(!part.exists(), "a failed partial download stays");
    // ...while the real first half completes into the right blob.
    fs::write(&part, &layer[..layer.len() / 2]).unwrap();
    ctl.ok(&["pull", &name]);
    assert_eq!(
        ctl.ok(&["run", "--rm", &name]).trim(),
        (3 << 20).to_string()
    );
    assert!(!part.exists());
}

/// HTTPS for a registry that is not on localhost: the certificate is
/// checked against the system's roots (SSL_CERT_FILE names a test CA
/// here); without that CA the pull is refused.
#[test]
fn pull_over_https() {
    if skip() || !tools() {
        return;
    }
    if !Path::new("/usr/bin/openssl").exists() {
        eprintln!("SKIP: /usr/bin/openssl missing");
        return;
    }
    let pki = TempDir::new("pki");
    let p = |n: &str| pki.path().join(n);
    let ssl = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(pki.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=hullctl test CA",
    ]);
    ssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "reg.key",
        "-out",
        "reg.csr",
        "-subj",
        "/CN=127.0.0.2",
    ]);
    fs::write(
        p("ext"),
        "subjectAltName=IP:127.0.0.2\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ssl(&[
        "x509",
        "-req",
        "-in",
        "reg.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "reg.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    // Basic auth (htpasswd; the registry allows it over TLS only).
    let auth = if Path::new("/usr/bin/htpasswd").exists() {
        let o = Command::new("htpasswd")
            .args(["-Bbn", "hull", "s3cret"])
            .output()
            .unwrap();
        fs::write(p("htpasswd"), &o.stdout).unwrap();
        format!(
            "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            p("htpasswd").display()
        )
    } else {
        eprintln!("note: /usr/bin/htpasswd missing (apache2-utils): no basic auth part");
        String::new()
    };
    let reg = Registry::start_on("127.0.0.2", Some((&p("reg.pem"), &p("reg.key"))), &auth);
    let mut l = Layout::new();
    let d = l.image(
        vec![Layer {
            tar: TarBuf::new()
                .busybox()
                .file("tls", b"over https\n", 0o644)
                .finish(),
            compression: "gzip",
        }],
        json!({"Cmd": ["cat", "/tls"]}),
        host_arch(),
    );
    l.tag(d, "1");
    reg.push(&l, "1", "test/tls");
    let name = format!("{}/test/tls:1", reg.addr);
    let ctl = Ctl::new("https");
    let o = ctl
        .cmd(&["pull", &name])
        .env("SSL_CERT_FILE", "/nonexistent")
        .output()
        .unwrap();
    assert!(!o.status.success(), "pulled without trusting the CA");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("certificate"), "{e}");
    let o = ctl
        .cmd(&["pull", &name])
        .env("SSL_CERT_FILE", p("ca.pem"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pull over https: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(ctl.ok(&["run", "--rm", &name]), "over https\n");
}
