//! Differential tests: the same bundle run by runc and by the runtime under
//! test must show the container the same world. (With
//! `HULL_TEST_RUNTIME=/usr/sbin/runc` this compares runc with itself.)

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Bundle, Runtime};

/// Prints one `@@name` header per section; the output is split on those.
const PROBE: &str = r#"
echo @@hostname; hostname
echo @@pid; echo $$
echo @@id; id
echo @@env; env | sort
echo @@mounts; cat /proc/self/mountinfo
echo @@caps; grep -E '^(Cap(Eff|Prm|Bnd|Inh|Amb)|NoNewPrivs):' /proc/self/status
echo @@dev; ls -A /dev | sort
echo @@cwd; pwd
echo @@limits; ulimit -n
echo @@umask; umask
"#;

fn sections(stdout: &str) -> BTreeMap<String, Vec<String>> {
    let mut map = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in stdout.lines() {
        if let Some(name) = line.strip_prefix("@@") {
            current = Some(name.to_string());
            map.insert(name.to_string(), Vec::new());
        } else if let Some(c) = &current {
            map.get_mut(c).unwrap().push(line.to_string());
        }
    }
    map
}

/// mountinfo reduced to sorted `mountpoint fstype` (ids, sources and host
/// paths differ between runs).
fn reduce_mounts(lines: &[String]) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let mountpoint = fields.get(4)?;
            let sep = fields.iter().position(|f| *f == "-")?;
            let fstype = fields.get(sep + 1)?;
            Some(format!("{mountpoint} {fstype}"))
        })
        .collect();
    v.sort();
    v
}

fn probe(rt: &Runtime, tweak: &dyn Fn(&mut Bundle)) -> BTreeMap<String, Vec<String>> {
    let mut b = Bundle::new("diff");
    b.sh(PROBE);
    tweak(&mut b);
    let id = common::unique_id("diff");
    let out = rt.run(&id, &mut b, &[]);
    out.ok();
    rt.assert_nothing_left(&id);
    let mut s = sections(&out.stdout);
    let mounts = reduce_mounts(&s["mounts"]);
    s.insert("mounts".into(), mounts);
    s
}

fn compare(name: &str, tweak: &dyn Fn(&mut Bundle)) {
    if common::skip() {
        return;
    }
    if !Path::new(common::RUNC).is_file() {
        eprintln!("skipped: {} is not installed", common::RUNC);
        return;
    }
    let reference = Runtime::with_bin(common::RUNC, &format!("{name}-runc"));
    let tested = Runtime::new(&format!("{name}-tested"));
    let want = probe(&reference, tweak);
    let got = probe(&tested, tweak);
    // Shown with `--nocapture`.
    eprintln!("[{name}] runc saw: {want:#?}");
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "different probe sections"
    );
    let mut diffs = Vec::new();
    for (section, want_lines) in &want {
        let got_lines = &got[section];
        if want_lines != got_lines {
            diffs.push(format!(
                "== {section}\n-- runc:\n{}\n-- {}:\n{}",
                want_lines.join("\n"),
                tested.bin().display(),
                got_lines.join("\n")
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "[{name}] the container saw a different world:\n{}",
        diffs.join("\n")
    );
    // The probe itself must have produced something for every section.
    for s in ["hostname", "id", "env", "mounts", "caps", "dev"] {
        assert!(
            want.get(s).is_some_and(|v| !v.is_empty()),
            "runc probe section {s} is empty: {want:?}"
        );
    }
}

#[test]
fn differential_root_user() {
    compare("root", &|b| {
        b.hostname("diff-root").env("EXTRA=1");
    });
}

#[test]
fn differential_unprivileged_user() {
    compare("user", &|b| {
        b.hostname("diff-user")
            .user(1000, 1000, &[10])
            .env("EXTRA=two words")
            .cwd("/tmp");
    });
}

#[test]
fn differential_readonly_rootfs_with_mounts() {
    compare("ro", &|b| {
        b.readonly(true).mount(serde_json::json!({
            "destination": "/data",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "noexec", "size=2m", "mode=0700"],
        }));
        let caps = serde_json::json!(["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"]);
        b.config["process"]["capabilities"] = serde_json::json!({
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"],
        });
        b.config["process"]["noNewPrivileges"] = serde_json::json!(false);
    });
}
