//! `pull` from a local registry (Debian's docker-registry, started by the
//! test on a free 127.0.0.1 port with private storage; images pushed with
//! skopeo from OCI layouts built here from the busybox rootfs): two layers
//! with a whiteout, a zstd layer in a multi-platform index, pull by
//! digest, two pulls at once, a resumed download (and a real pull killed
//! mid-blob behind a throttling proxy), token auth, and refusals.
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
        text.push_str(extra);
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

/// A TCP proxy in front of the registry that counts the bytes it passes
/// back to the client and, while `delay` is set, sends them in 16 KiB
/// steps with a pause between (so a test can stop a pull mid-blob).
struct Proxy {
    addr: String,
    down: std::sync::Arc<std::sync::atomic::AtomicU64>,
    slow: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        use std::sync::atomic::{AtomicBool, AtomicU64};
        use std::sync::Arc;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let down = Arc::new(AtomicU64::new(0));
        let slow = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, sl, st, up) = (
            down.clone(),
            slow.clone(),
            stop.clone(),
            upstream.to_string(),
        );
        l.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                let Ok(s) = std::net::TcpStream::connect(&up) else {
                    continue;
                };
                let (mut c2, mut s2) = (c.try_clone().unwrap(), s.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut s2);
                    let _ = s2.shutdown(std::net::Shutdown::Write);
                });
                let (d, sl) = (d.clone(), sl.clone());
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let (mut s, mut c) = (s, c);
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if c.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        d.fetch_add(n as u64, std::sync::atomic::Ordering::SeqCst);
                        if sl.load(std::sync::atomic::Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                    let _ = c.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Proxy {
            addr,
            down,
            slow,
            stop,
        }
    }
    fn bytes(&self) -> u64 {
        self.down.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A real `hullctl pull` killed (SIGKILL) mid-blob, behind a throttling
/// proxy: nothing in the store looks complete (no blob under its digest,
/// no layer, no image); the next pull completes with the right content
/// and fetches only what was missing (bytes counted through the proxy).
#[test]
fn killed_pull_resumes_without_fetching_again() {
    if skip() || !tools() {
        return;
    }
    let reg = Registry::start();
    // Incompressible content: the gzip layer is as big as its data.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..(4 << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let tar = TarBuf::new()
        .busybox()
        .file("noise", &noise, 0o644)
        .finish();
    let diff_id = sha256(&tar);
    let layer = gzip(&tar);
    let mut l = Layout::new();
    let d = l.image(
        vec![Layer {
            tar,
            compression: "gzip",
        }],
        json!({"Cmd": ["sh", "-c", "sha256sum /noise"]}),
        host_arch(),
    );
    l.tag(d, "1");
    reg.push(&l, "1", "test/killed");
    let proxy = Proxy::start(&reg.addr);
    let name = format!("{}/test/killed:1", proxy.addr);
    let hex = sha256(&layer);
    let ctl = Ctl::new("killed");
    let mut child = ctl
        .cmd(&["pull", "-q", &name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once a third of the layer went through the proxy.
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.bytes() < layer.len() as u64 / 3 {
        assert!(Instant::now() < deadline, "the pull made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let part = ctl.root().join(format!("tmp/partial-{hex}"));
    let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    assert!(
        have > (256 << 10) && have < layer.len() as u64,
        "partial download: {have} of {} bytes",
        layer.len()
    );
    assert!(
        !ctl.root().join("blobs/sha256").join(&hex).exists(),
        "a partial blob under its digest"
    );
    assert!(
        !ctl.root().join("layers").join(&diff_id).exists(),
        "an unpacked layer from a partial blob"
    );
    assert!(
        !ctl.ok(&["images", "-q"])
            .contains(|c: char| c.is_ascii_hexdigit()),
        "an image from a killed pull"
    );

    // The second pull, at full speed: it asks for the rest only.
    proxy
        .slow
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let before = proxy.bytes();
    ctl.ok(&["pull", "-q", &name]);
    let fetched = proxy.bytes() - before;
    let rest = layer.len() as u64 - have;
    assert!(
        fetched < rest + (64 << 10),
        "fetched {fetched} bytes again; {rest} were missing"
    );
    assert!(fetched >= rest, "fetched {fetched} < {rest} missing bytes");
    assert!(!part.exists(), "the partial file stays after the pull");
    assert_eq!(
        ctl.ok(&["run", "--rm", &name]),
        format!("{}  /noise\n", sha256(&noise))
    );
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
    if !auth.is_empty() {
        // Basic auth: refused without credentials, then `login`.
        let o = ctl
            .cmd(&["pull", &name])
            .env("SSL_CERT_FILE", p("ca.pem"))
            .output()
            .unwrap();
        assert!(!o.status.success(), "pulled without credentials");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("hullctl login"), "{e}");
        ctl.ok(&["login", "-u", "hull", "-p", "s3cret", &reg.addr]);
    }
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

/// A token service for the registry's `auth: token:` (as Docker Hub's):
/// for the basic credentials hull:s3cret it issues a JWT (RS256, signed
/// with openssl by the test's key, its certificate in `x5c`) granting the
/// scopes asked for; anything else gets 401.
struct TokenServer {
    addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    issued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn b64url(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

impl TokenServer {
    fn start(key: &Path, cert_der: &[u8]) -> TokenServer {
        use base64::Engine as _;
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let issued = std::sync::Arc::new(AtomicUsize::new(0));
        let (st, iss) = (stop.clone(), issued.clone());
        let key = key.to_path_buf();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert_der);
        let good = base64::engine::general_purpose::STANDARD.encode("hull:s3cret");
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let Ok((c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut req = String::new();
                let _ = r.read_line(&mut req);
                let mut authz = String::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            authz = v.trim().to_string();
                        }
                    }
                }
                let target = req.split_whitespace().nth(1).unwrap_or("").to_string();
                let query = target.split_once('?').map(|x| x.1).unwrap_or("");
                let mut access = Vec::new();
                for kv in query.split('&') {
                    if let Some(scope) = kv.strip_prefix("scope=") {
                        let scope = scope
                            .replace("%3A", ":")
                            .replace("%2F", "/")
                            .replace("%2C", ",");
                        let parts: Vec<&str> = scope.splitn(3, ':').collect();
                        if let [t, n, a] = parts.as_slice() {
                            access.push(json!({"type": t, "name": n, "actions": a.split(',').collect::<Vec<_>>()}));
                        }
                    }
                }
                let mut c = c;
                if authz != format!("Basic {good}") {
                    let body = r#"{"details":"invalid username or password"}"#;
                    let _ = write!(
                        c,
                        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    continue;
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let header = json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
                let claims = json!({
                    "iss": "hullctl-test-issuer", "sub": "hull", "aud": "hullctl-test-registry",
                    "exp": now + 600, "nbf": now - 60, "iat": now,
                    "jti": unique("jti"), "access": access,
                });
                let signing = format!(
                    "{}.{}",
                    b64url(header.to_string().as_bytes()),
                    b64url(claims.to_string().as_bytes())
                );
                let mut sign = Command::new("openssl")
                    .args(["dgst", "-sha256", "-sign"])
                    .arg(&key)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                sign.stdin
                    .take()
                    .unwrap()
                    .write_all(signing.as_bytes())
                    .unwrap();
                let sig = sign.wait_with_output().unwrap().stdout;
                let token = format!("{signing}.{}", b64url(&sig));
                let body =
                    json!({"token": token, "access_token": token, "expires_in": 600}).to_string();
                iss.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenServer { addr, stop, issued }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The registry with `auth: token:` and the test's token service: pull
/// without credentials or with wrong ones fails, saying so; after
/// `login` it succeeds (oci-client does the token dance with them).
#[test]
fn pull_with_token_auth() {
    if skip() || !tools() {
        return;
    }
    if !Path::new("/usr/bin/openssl").exists() {
        eprintln!("SKIP: /usr/bin/openssl missing");
        return;
    }
    let pki = TempDir::new("token-pki");
    let p = |n: &str| pki.path().join(n);
    let o = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(p("token.key"))
        .arg("-out")
        .arg(p("token.pem"))
        .args(["-days", "2", "-subj", "/CN=hullctl test token signer"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(p("token.pem"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let tokens = TokenServer::start(&p("token.key"), &o.stdout);
    let auth = format!(
        "auth:\n  token:\n    realm: http://{}/token\n    service: hullctl-test-registry\n    issuer: hullctl-test-issuer\n    rootcertbundle: {}\n",
        tokens.addr,
        p("token.pem").display()
    );
    let reg = Registry::start_on("127.0.0.1", None, &auth);
    let mut l = Layout::new();
    let d = l.image(
        vec![Layer {
            tar: TarBuf::new()
                .busybox()
                .file("tok", b"behind a token\n", 0o644)
                .finish(),
            compression: "gzip",
        }],
        json!({"Cmd": ["cat", "/tok"]}),
        host_arch(),
    );
    l.tag(d, "1");
    reg.push(&l, "1", "test/tok");
    let name = format!("{}/test/tok:1", reg.addr);
    let ctl = Ctl::new("token");
    let e = ctl.fails(&["pull", &name]);
    assert!(e.contains("hullctl login"), "no credentials: {e}");
    ctl.ok(&["login", "-u", "hull", "-p", "wrong", &reg.addr]);
    let e = ctl.fails(&["pull", &name]);
    assert!(e.contains("hullctl login"), "wrong credentials: {e}");
    assert_eq!(ctl.ok(&["images", "-q"]), "");
    let issued = tokens.issued.load(std::sync::atomic::Ordering::SeqCst);
    let mut c = ctl.cmd(&["login", "-u", "hull", "--password-stdin", &reg.addr]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    }
    assert!(child.wait_with_output().unwrap().status.success());
    let cfg = fs::read_to_string(ctl.dir.path().join("docker-config/config.json")).unwrap();
    assert!(cfg.contains(&reg.addr), "{cfg}");
    ctl.ok(&["pull", &name]);
    assert!(
        tokens.issued.load(std::sync::atomic::Ordering::SeqCst) > issued,
        "no token was issued for the pull"
    );
    assert_eq!(ctl.ok(&["run", "--rm", &name]), "behind a token\n");
    assert!(ctl.ok(&["logout", &reg.addr]).contains("Removing"));
    ctl.ok(&["rmi", &name]);
    let e = ctl.fails(&["pull", &name]);
    assert!(e.contains("hullctl login"), "after logout: {e}");
}
