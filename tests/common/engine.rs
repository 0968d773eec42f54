//! Shared by the engine tests (containerd, docker, podman): running a
//! command with a timeout, and a logging wrapper around a runtime binary
//! (its log proves which runtime an engine really invoked).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

/// Output of a command run with a timeout.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn brief(&self) -> String {
        format!(
            "exit {} stdout={:?} stderr={:?}",
            self.code,
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

pub fn tail(s: &str) -> String {
    let s = s.trim();
    let start = s.len().saturating_sub(300);
    let mut i = start;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    s[i..].to_string()
}

/// Run `cmd` to completion (killed after `timeout`), capturing its output.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Run {
    match super::daemons::output_within(cmd, timeout) {
        Ok(Some(o)) => Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        },
        Ok(None) => Run {
            code: -999,
            stdout: String::from("(timed out)"),
            stderr: String::new(),
        },
        Err(e) => panic!("spawn {cmd:?}: {e}"),
    }
}

/// One engine scenario's results: (step, Ok or what went wrong).
pub type Steps = Vec<(&'static str, Result<(), String>)>;

/// The last step of every engine scenario: the wrapper's log shows that
/// the engine really called this runtime for create, start and delete.
pub fn runtime_invoked(calls: &Path) -> (&'static str, Result<(), String>) {
    let calls = fs::read_to_string(calls).unwrap_or_default();
    let called = |verb: &str| {
        calls
            .lines()
            .any(|l| l.split_whitespace().any(|w| w == verb))
    };
    (
        "runtime invoked (create/start/delete via its wrapper)",
        if ["create", "start", "delete"].iter().all(|v| called(v)) {
            Ok(())
        } else {
            Err(format!("calls: {calls:?}"))
        },
    )
}

/// A wrapper that logs each invocation and execs the real runtime.
pub fn wrapper(dir: &Path, name: &str, bin: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join(format!("{name}.calls"));
    let path = dir.join(format!("{name}-wrapper"));
    fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            bin.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    (path, log)
}

/// Engines put their containers under a parent cgroup of their own
/// (`/<namespace>` for containerd, `/docker`, `/libpod_parent` with podman's
/// `conmon` child) and never remove it: remove it, children first, once
/// empty (rmdir fails harmlessly on a cgroup still in use).
pub fn remove_empty_cgroup_parent(name: &str) {
    fn rmdir_tree(dir: &Path) {
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    rmdir_tree(&e.path());
                }
            }
        }
        let _ = fs::remove_dir(dir);
    }
    // v1/hybrid: one per hierarchy; pure v2: directly under the root.
    let mut dirs = vec![Path::new("/sys/fs/cgroup").join(name)];
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        dirs.extend(rd.flatten().map(|h| h.path().join(name)));
    }
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        rmdir_tree(dir);
    }
}

/// Print hull's and runc's results per step side by side and return hull's
/// regressions: steps hull fails that runc passes (or that runc did not
/// run), and any failed "runtime invoked" check.
pub fn compare_steps(
    hull: &[(&'static str, Result<(), String>)],
    runc: &[(&'static str, Result<(), String>)],
) -> Vec<String> {
    eprintln!("{:<62} {:<5} runc", "step", "hull");
    let mut regressions = Vec::new();
    for (i, (step, res)) in hull.iter().enumerate() {
        let runc = runc.get(i).map(|(_, r)| r);
        let v = |r: &Result<(), String>| if r.is_ok() { "PASS" } else { "FAIL" };
        eprintln!("{:<62} {:<5} {}", step, v(res), runc.map(v).unwrap_or("-"));
        if let Err(e) = res {
            eprintln!("    hull: {e}");
        }
        if let Some(Err(e)) = runc {
            eprintln!("    runc: {e}");
        }
        let runc_ok = runc.map(|r| r.is_ok()).unwrap_or(true);
        if let Err(e) = res {
            if runc_ok || step.starts_with("runtime invoked") {
                regressions.push(format!("{step}: {e}"));
            }
        }
    }
    regressions
}

/// Write `bytes` as a blob; returns (digest, size).
fn put_blob(blobs: &Path, src: &Path) -> (String, u64) {
    let hex = super::sha256(src);
    let size = fs::metadata(src).unwrap().len();
    fs::copy(src, blobs.join(&hex)).unwrap();
    (format!("sha256:{hex}"), size)
}

/// An OCI image layout tarball of the busybox rootfs, named `image`
/// (for `ctr image import`).
pub fn build_image(image: &str, dir: &Path) -> PathBuf {
    let bundle = super::Bundle::new("ctr-image");
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let layer = dir.join("layer.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(bundle.rootfs())
        .arg("-cf")
        .arg(&layer)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar of the rootfs");
    let (layer_digest, layer_size) = put_blob(&blobs, &layer);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "WorkingDir": "/"
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}
    });
    let cfg_path = dir.join("config.json");
    fs::write(&cfg_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let (cfg_digest, cfg_size) = put_blob(&blobs, &cfg_path);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cfg_digest, "size": cfg_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer_size}]
    });
    let man_path = dir.join("manifest.json");
    fs::write(&man_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let (man_digest, man_size) = put_blob(&blobs, &man_path);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": man_digest, "size": man_size,
            "annotations": {"io.containerd.image.name": image,
                            "org.opencontainers.image.ref.name": "latest"}
        }]
    });
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let tarball = dir.join("hullbox.oci.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&tarball)
        .args(["oci-layout", "index.json", "blobs"])
        .status()
        .unwrap();
    assert!(st.success(), "tar of the image layout");
    tarball
}
