//! The test images, built from the host's busybox-static: a pause image
//! (the CRI plugin's `sandbox_image`) and a busybox image for containers,
//! written as one OCI image layout tarball that `ctr images import` loads
//! into the `k8s.io` namespace.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::host::run;

/// The sandbox image (named as `sandbox_image` in containerd's config).
pub const PAUSE: &str = "docker.io/hulltest/pause:cri";
/// The image every test container runs.
pub const BUSYBOX: &str = "docker.io/hulltest/busybox:cri";

/// The pause image's process: PID 1 of the sandbox, exiting on TERM.
const PAUSE_CMD: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/// A busybox root filesystem with every applet linked in /bin.
fn build_rootfs(rootfs: &Path) -> Result<(), String> {
    for d in [
        "bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/hull",
        "var",
        "run",
    ] {
        fs::create_dir_all(rootfs.join(d)).map_err(|e| format!("mkdir {d}: {e}"))?;
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
        .map_err(|e| format!("chmod tmp: {e}"))?;
    fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .map_err(|e| format!("copy /bin/busybox: {e}"))?;
    let list = run(Command::new("/bin/busybox").arg("--list"));
    for applet in list.stdout.lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let _ = symlink("busybox", rootfs.join("bin").join(applet));
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nhull:x:1000:1000:hull:/home/hull:/bin/sh\n",
    )
    .map_err(|e| format!("write etc/passwd: {e}"))?;
    fs::write(rootfs.join("etc/group"), "root:x:0:\nhull:x:1000:\n")
        .map_err(|e| format!("write etc/group: {e}"))?;
    Ok(())
}

/// Store a file as a blob; returns its descriptor fields (digest, size).
fn put_blob(blobs: &Path, src: &Path) -> Result<(String, u64), String> {
    let out = run(Command::new("sha256sum").arg(src));
    let hex = out
        .stdout
        .split_whitespace()
        .next()
        .filter(|h| h.len() == 64)
        .ok_or_else(|| format!("sha256sum {}: {}", src.display(), out.stderr))?
        .to_string();
    let size = fs::metadata(src)
        .map_err(|e| format!("{}: {e}", src.display()))?
        .len();
    fs::copy(src, blobs.join(&hex)).map_err(|e| format!("blob {hex}: {e}"))?;
    Ok((format!("sha256:{hex}"), size))
}

fn put_json(blobs: &Path, dir: &Path, name: &str, v: &Value) -> Result<(String, u64), String> {
    let p = dir.join(name);
    fs::write(&p, v.to_string()).map_err(|e| format!("{}: {e}", p.display()))?;
    put_blob(blobs, &p)
}

/// Build the two images into `dir`; returns the OCI layout tarball.
pub fn build(dir: &Path) -> Result<PathBuf, String> {
    let rootfs = dir.join("rootfs");
    build_rootfs(&rootfs)?;
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(|e| format!("mkdir blobs: {e}"))?;
    let layer = dir.join("layer.tar");
    let t = run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg("."));
    if t.code != 0 {
        return Err(format!("tar of the rootfs: {}", t.stderr));
    }
    let (layer_digest, layer_size) = put_blob(&blobs, &layer)?;
    let path_env = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let images = [
        (
            PAUSE,
            json!({"Env": [path_env], "Entrypoint": ["/bin/sh", "-c", PAUSE_CMD], "WorkingDir": "/"}),
        ),
        (
            BUSYBOX,
            json!({"Env": [path_env], "Cmd": ["sh"], "WorkingDir": "/"}),
        ),
    ];
    let mut manifests = Vec::new();
    for (i, (name, config)) in images.iter().enumerate() {
        let cfg = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]}
        });
        let (cfg_digest, cfg_size) = put_json(&blobs, dir, &format!("config{i}.json"), &cfg)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": cfg_digest, "size": cfg_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest, "size": layer_size}]
        });
        let (man_digest, man_size) =
            put_json(&blobs, dir, &format!("manifest{i}.json"), &manifest)?;
        manifests.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": man_digest, "size": man_size,
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": "cri"}
        }));
    }
    let index = json!({"schemaVersion": 2, "manifests": manifests});
    fs::write(layout.join("index.json"), index.to_string())
        .map_err(|e| format!("index.json: {e}"))?;
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(|e| format!("oci-layout: {e}"))?;
    let tarball = dir.join("images.oci.tar");
    let t = run(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&tarball)
        .args(["oci-layout", "index.json", "blobs"]));
    if t.code != 0 {
        return Err(format!("tar of the image layout: {}", t.stderr));
    }
    Ok(tarball)
}
