//! config.json from an image config and `docker run`-style options.

use std::path::Path;

use serde_json::{json, Value};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::Store;

/// The `create`/`run` options that shape the OCI config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub env: Vec<String>,
    pub env_files: Vec<std::path::PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub volumes: Vec<String>,
    pub volumes_from: Vec<String>,
    pub mounts: Vec<String>,
    pub read_only: bool,
    pub tmpfs: Vec<String>,
    pub memory: Option<String>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub security_opt: Vec<String>,
    pub hostname: Option<String>,
    pub network: Option<String>,
    pub init: bool,
    pub tty: bool,
    pub interactive: bool,
    pub entrypoint: Option<String>,
    /// --ip, --add-host, --dns, --network-alias (see crate::network).
    pub net: crate::network::attach::NetOptions,
}

/// docker's default capability set.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Where `--init` puts hullctl (read-only) in the container.
pub const INIT_PATH: &str = "/.hullctl-init";

/// Inputs besides the options: the image config and where its layers are.
pub struct Inputs<'a> {
    pub store: &'a Store,
    pub layers: &'a [Digest],
    pub image_config: &'a Value,
    pub cmd: &'a [String],
    pub hostname: &'a str,
}

pub fn build(inp: &Inputs, o: &RunOptions) -> Result<Value> {
    let ic = &inp.image_config["config"];
    let mut spec = hull::config::default_spec(false);
    let args = command(ic, inp.cmd, o)?;
    spec["process"]["args"] = json!(args);
    spec["process"]["terminal"] = json!(o.tty);
    spec["process"]["env"] = json!(environment(ic, o, inp.hostname)?);
    spec["process"]["cwd"] = json!(o
        .workdir
        .clone()
        .or_else(|| ic["WorkingDir"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string))
        .unwrap_or_else(|| "/".to_string()));
    let user = o.user.clone().or_else(|| {
        ic["User"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    });
    if let Some(u) = user {
        spec["process"]["user"] = resolve_user(inp.store, inp.layers, &u)?;
    }
    spec["process"]["noNewPrivileges"] = json!(false);
    spec["hostname"] = json!(o
        .hostname
        .clone()
        .unwrap_or_else(|| inp.hostname.to_string()));
    spec["root"]["readonly"] = json!(o.read_only);
    if let Some(labels) = ic["Labels"].as_object() {
        spec["annotations"] = Value::Object(labels.clone());
    }
    capabilities(&mut spec, o)?;
    security(&mut spec, o)?;
    resources(&mut spec, o)?;
    mounts(&mut spec, o)?;
    network(&mut spec, o)?;
    Ok(spec)
}

/// Entrypoint + Cmd, with the command line replacing Cmd, and `--init` in front.
fn command(ic: &Value, cmd: &[String], o: &RunOptions) -> Result<Vec<String>> {
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let mut args = match &o.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => strs(&ic["Entrypoint"]),
    };
    if !cmd.is_empty() {
        args.extend(cmd.iter().cloned());
    } else if o.entrypoint.is_none() {
        args.extend(strs(&ic["Cmd"]));
    }
    if args.is_empty() {
        return Err(Error::Usage(
            "no command specified (the image has no Entrypoint or Cmd)".into(),
        ));
    }
    if o.init {
        let mut a = vec![INIT_PATH.to_string(), "init".to_string(), "--".to_string()];
        a.extend(args);
        return Ok(a);
    }
    Ok(args)
}

/// The image's Env, then --env-file, then -e (later wins, as docker).
fn environment(ic: &Value, o: &RunOptions, hostname: &str) -> Result<Vec<String>> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |kv: &str, from: &str| -> Result<()> {
        let (k, v) = match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match std::env::var(kv) {
                Ok(v) => (kv.to_string(), v),
                Err(_) => return Ok(()),
            },
        };
        if k.is_empty() {
            return Err(Error::Usage(format!(
                "{from}: invalid environment variable {kv:?}"
            )));
        }
        env.retain(|(ek, _)| *ek != k);
        env.push((k, v));
        Ok(())
    };
    set(
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "default",
    )?;
    set(&format!("HOSTNAME={hostname}"), "default")?;
    for e in ic["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        set(e, "image Env")?;
    }
    if o.tty {
        set("TERM=xterm", "default")?;
    }
    for f in &o.env_files {
        let text = std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?;
        for line in text.lines() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                set(line, &format!("--env-file {}", f.display()))?;
            }
        }
    }
    for e in &o.env {
        set(e, "-e")?;
    }
    Ok(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// Read `path` (e.g. etc/passwd) from the image: the topmost layer that
/// has it, resolved inside each layer (RESOLVE_IN_ROOT); a whiteout ends
/// the search.
pub fn read_image_file(store: &Store, layers: &[Digest], path: &str) -> Option<String> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileTypeExt;
    let c = std::ffi::CString::new(path).ok()?;
    for l in layers.iter().rev() {
        let dir = store.layer_diff(l);
        let p = dir.join(path.trim_start_matches('/'));
        if let Ok(m) = std::fs::symlink_metadata(&p) {
            if m.file_type().is_char_device() {
                return None;
            }
        }
        let root = std::fs::File::open(&dir).ok()?;
        let Ok(fd) = crate::sys::open_in_root(root.as_raw_fd(), &c, libc::O_RDONLY, 0) else {
            continue;
        };
        let mut f = std::fs::File::from(fd);
        let mut s = String::new();
        f.read_to_string(&mut s).ok()?;
        return Some(s);
    }
    None
}

/// `-u user[:group]` through the image's /etc/passwd and /etc/group.
pub fn resolve_user(store: &Store, layers: &[Digest], spec: &str) -> Result<Value> {
    let passwd = read_image_file(store, layers, "etc/passwd").unwrap_or_default();
    let group = read_image_file(store, layers, "etc/group").unwrap_or_default();
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let pw = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == u || f[2] == u));
    let (uid, mut gid, uname) = match (&pw, u.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse::<u32>()
                .map_err(|_| Error::Image(format!("image /etc/passwd: bad uid for {u}")))?,
            f[3].parse::<u32>().unwrap_or(0),
            f[0].to_string(),
        ),
        (None, Ok(n)) => (n, 0, String::new()),
        (None, Err(_)) => {
            return Err(Error::Usage(format!(
                "unable to find user {u}: no matching entries in the image's /etc/passwd"
            )))
        }
    };
    if let Some(g) = g {
        gid = match group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && f[0] == g)
        {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g.parse().map_err(|_| {
                Error::Usage(format!(
                    "unable to find group {g}: no matching entries in the image's /etc/group"
                ))
            })?,
        };
    }
    let extra: Vec<u32> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4 && !uname.is_empty() && f[3].split(',').any(|m| m == uname))
        .filter_map(|f| f[2].parse().ok())
        .filter(|&g| g != gid)
        .collect();
    let mut v = json!({"uid": uid, "gid": gid});
    if !extra.is_empty() {
        v["additionalGids"] = json!(extra);
    }
    Ok(v)
}

fn capabilities(spec: &mut Value, o: &RunOptions) -> Result<()> {
    let norm = |c: &str| {
        let c = c.to_ascii_uppercase();
        if c.starts_with("CAP_") || c == "ALL" {
            c
        } else {
            format!("CAP_{c}")
        }
    };
    // "ALL" (and --privileged) is what this process may grant: its
    // bounding set (a host or sandbox may lack some, e.g. CAP_SYS_RESOURCE).
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| {
            st.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    let last = hull::process::caps::last_cap() as usize;
    let known: Vec<String> = hull::process::caps::NAMES
        .iter()
        .take(last + 1)
        .map(|s| s.to_string())
        .collect();
    let all: Vec<String> = known
        .iter()
        .enumerate()
        .filter(|(i, _)| bounding & (1u64 << i) != 0)
        .map(|(_, s)| s.clone())
        .collect();
    let mut caps: Vec<String> = if o.privileged {
        all.clone()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    // As docker: drops first (ALL empties the set), then adds.
    for c in &o.cap_drop {
        let c = norm(c);
        if c == "ALL" {
            caps.clear();
        } else if !known.contains(&c) {
            return Err(Error::Usage(format!(
                "--cap-drop: unknown capability {c:?}"
            )));
        } else {
            caps.retain(|x| *x != c);
        }
    }
    for c in &o.cap_add {
        let c = norm(c);
        if c == "ALL" {
            caps = all.clone();
        } else if !known.contains(&c) {
            return Err(Error::Usage(format!("--cap-add: unknown capability {c:?}")));
        } else if !caps.contains(&c) {
            caps.push(c);
        }
    }
    spec["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    Ok(())
}

fn security(spec: &mut Value, o: &RunOptions) -> Result<()> {
    if o.privileged {
        spec["linux"]["maskedPaths"] = json!([]);
        spec["linux"]["readonlyPaths"] = json!([]);
        spec["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    // docker's default seccomp profile for the container's capabilities,
    // unless --privileged (as docker) or a --security-opt below says else.
    let caps: Vec<String> = spec["process"]["capabilities"]["bounding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    if let Some(l) = spec["linux"].as_object_mut() {
        l.remove("seccomp");
    }
    if !o.privileged {
        spec["linux"]["seccomp"] = default_seccomp(&caps)?;
    }
    for s in &o.security_opt {
        match s.split_once(['=', ':']) {
            Some(("seccomp", "unconfined")) => {
                spec["linux"].as_object_mut().map(|l| l.remove("seccomp"));
            }
            Some(("seccomp", file)) => {
                let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
                let v: Value = serde_json::from_str(&text)
                    .map_err(|e| Error::json(format!("--security-opt seccomp={file}"), e))?;
                spec["linux"]["seccomp"] = from_docker_format(v, &caps);
            }
            None if s == "no-new-privileges" => spec["process"]["noNewPrivileges"] = json!(true),
            Some(("no-new-privileges", v)) => {
                spec["process"]["noNewPrivileges"] = json!(v == "true" || v.is_empty())
            }
            _ => return Err(Error::Usage(format!("--security-opt {s:?}: unsupported"))),
        }
    }
    Ok(())
}

/// docker's default seccomp profile (seccomp/default.json, generated from
/// docker by seccomp/generate.sh): the rules for docker's default
/// capabilities, changed per capability the container has beyond them (or
/// lacks of them) as docker's profile does.
const DEFAULT_SECCOMP: &str = include_str!("../../seccomp/default.json");

pub fn default_seccomp(caps: &[String]) -> Result<Value> {
    let table: Value = serde_json::from_str(DEFAULT_SECCOMP)
        .map_err(|e| Error::json("hullctl's built-in seccomp profile", e))?;
    let mut profile = table["base"].clone();
    let mut rules: Vec<Value> = profile["syscalls"].as_array().cloned().unwrap_or_default();
    for (cap, change) in table["caps"].as_object().into_iter().flatten() {
        let has = caps.iter().any(|c| c == cap);
        if has == DEFAULT_CAPS.contains(&cap.as_str()) {
            continue; // as in the base
        }
        let (add, remove) = if has {
            ("add", "remove")
        } else {
            ("remove", "add")
        };
        for r in change[remove].as_array().into_iter().flatten() {
            rules.retain(|x| x != r);
        }
        for r in change[add].as_array().into_iter().flatten() {
            if !rules.contains(r) {
                rules.push(r.clone());
            }
        }
    }
    profile["syscalls"] = json!(rules);
    // The table was generated on x86_64; elsewhere, the native ABIs.
    match std::env::consts::ARCH {
        "x86_64" => {}
        "aarch64" => profile["architectures"] = json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
        _ => {
            profile.as_object_mut().map(|p| p.remove("architectures"));
        }
    }
    Ok(profile)
}

/// A seccomp=FILE profile in docker's format (moby's default.json: an
/// `archMap`, rules with `includes`/`excludes` by capability and
/// architecture) becomes the OCI form for this container; an OCI profile
/// passes through.
fn from_docker_format(mut v: Value, caps: &[String]) -> Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let scmp = match arch {
        "amd64" => "SCMP_ARCH_X86_64",
        "arm64" => "SCMP_ARCH_AARCH64",
        _ => "",
    };
    if let Some(map) = v.get("archMap").and_then(Value::as_array).cloned() {
        if let Some(m) = map.iter().find(|m| m["architecture"] == json!(scmp)) {
            let mut arches = vec![m["architecture"].clone()];
            arches.extend(
                m["subArchitectures"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            v["architectures"] = json!(arches);
        }
    }
    let applies = |cond: &Value, want: bool| -> bool {
        let has_cap = cond["caps"].as_array().is_some_and(|a| {
            a.iter()
                .any(|c| caps.iter().any(|x| Some(x.as_str()) == c.as_str()))
        });
        let has_arch = cond["arches"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == arch));
        let hit = has_cap || has_arch;
        let empty = cond["caps"].as_array().is_none_or(Vec::is_empty)
            && cond["arches"].as_array().is_none_or(Vec::is_empty);
        if want {
            // includes: every list given must match
            let caps_ok = cond["caps"].as_array().is_none_or(|a| {
                a.is_empty()
                    || a.iter()
                        .all(|c| caps.iter().any(|x| Some(x.as_str()) == c.as_str()))
            });
            let arch_ok = cond["arches"]
                .as_array()
                .is_none_or(|a| a.is_empty() || a.iter().any(|x| x == arch));
            empty || (caps_ok && arch_ok)
        } else {
            empty || !hit
        }
    };
    if let Some(rules) = v["syscalls"].as_array_mut() {
        rules.retain(|r| applies(&r["includes"], true) && applies(&r["excludes"], false));
        for r in rules.iter_mut() {
            if let Some(o) = r.as_object_mut() {
                for k in ["includes", "excludes", "comment"] {
                    o.remove(k);
                }
            }
        }
    }
    if let Some(o) = v.as_object_mut() {
        for k in ["archMap", "defaultErrno"] {
            o.remove(k);
        }
    }
    v
}

fn resources(spec: &mut Value, o: &RunOptions) -> Result<()> {
    let r = &mut spec["linux"]["resources"];
    if let Some(m) = &o.memory {
        let n = hull::container::update::parse_size("-m", m)
            .map_err(|e| Error::Usage(e.to_string()))?;
        r["memory"] = json!({"limit": n});
    }
    if let Some(c) = o.cpus {
        if !(c > 0.0 && c.is_finite()) {
            return Err(Error::Usage(format!(
                "--cpus {c}: must be a positive number"
            )));
        }
        r["cpu"] = json!({"quota": (c * 100_000.0) as i64, "period": 100_000});
    }
    if let Some(p) = o.pids_limit {
        r["pids"] = json!({"limit": p});
    }
    Ok(())
}

fn mounts(spec: &mut Value, o: &RunOptions) -> Result<()> {
    let mut add = |m: Value| {
        if let Some(a) = spec["mounts"].as_array_mut() {
            a.push(m);
        }
    };
    if o.init {
        let exe = init_binary()?;
        add(
            json!({"destination": INIT_PATH, "type": "bind", "source": exe, "options": ["bind", "ro", "nosuid", "nodev"]}),
        );
    }
    for v in &o.volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, o] => (*s, *d, *o),
            _ => {
                return Err(Error::Usage(format!(
                    "-v {v:?}: expected HOST:CONTAINER[:ro]"
                )))
            }
        };
        if !src.starts_with('/') {
            return Err(Error::Usage(format!(
                "-v {v:?}: named volumes come with issue 17; give an absolute host path"
            )));
        }
        bind(
            &mut add,
            src,
            dst,
            opts.split(',').any(|o| o == "ro"),
            &format!("-v {v}"),
        )?;
    }
    for m in &o.mounts {
        let mut kv = std::collections::BTreeMap::new();
        for p in m.split(',') {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            kv.insert(k, v);
        }
        let get = |k: &[&str]| k.iter().find_map(|k| kv.get(k).copied());
        let dst = get(&["target", "destination", "dst"])
            .ok_or_else(|| Error::Usage(format!("--mount {m:?}: no target")))?;
        let ro = get(&["readonly", "ro"]).is_some_and(|v| v.is_empty() || v == "true" || v == "1");
        match get(&["type"]).unwrap_or("volume") {
            "bind" => {
                let src = get(&["source", "src"])
                    .ok_or_else(|| Error::Usage(format!("--mount {m:?}: no source")))?;
                bind(&mut add, src, dst, ro, &format!("--mount {m}"))?;
            }
            "tmpfs" => {
                let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                if let Some(s) = get(&["tmpfs-size"]) {
                    opts.push(format!("size={s}"));
                }
                if let Some(s) = get(&["tmpfs-mode"]) {
                    opts.push(format!("mode={s}"));
                }
                add(
                    json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": opts}),
                );
            }
            t => {
                return Err(Error::Usage(format!(
                    "--mount {m:?}: type {t:?} unsupported (bind, tmpfs)"
                )))
            }
        }
    }
    for t in &o.tmpfs {
        let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
        let mut opts: Vec<&str> = opts.split(',').filter(|s| !s.is_empty()).collect();
        opts.extend(["nosuid", "nodev", "noexec"]);
        add(json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": opts}));
    }
    Ok(())
}

/// hullctl's binary on the host, for `--init`: remembered at start-up
/// (main sets HULLCTL_EXE), since a re-executed hullctl runs from a sealed
/// copy that cannot be bind-mounted.
pub fn init_binary() -> Result<std::path::PathBuf> {
    match std::env::var_os(EXE_ENV) {
        Some(p) => Ok(p.into()),
        None => std::env::current_exe().map_err(|e| Error::io("/proc/self/exe", e)),
    }
}

/// Where main records hullctl's own path.
pub const EXE_ENV: &str = "HULLCTL_EXE";

fn bind(add: &mut dyn FnMut(Value), src: &str, dst: &str, ro: bool, what: &str) -> Result<()> {
    if !dst.starts_with('/') {
        return Err(Error::Usage(format!(
            "{what}: the container path must be absolute"
        )));
    }
    if !Path::new(src).exists() {
        return Err(Error::Usage(format!(
            "{what}: host path {src} does not exist"
        )));
    }
    let mut opts = vec!["rbind", "rprivate"];
    if ro {
        opts.push("ro");
    }
    add(json!({"destination": dst, "type": "bind", "source": src, "options": opts}));
    Ok(())
}

fn network(spec: &mut Value, o: &RunOptions) -> Result<()> {
    match o.network.as_deref().unwrap_or("none") {
        "none" => Ok(()),
        "host" => {
            if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
                ns.retain(|n| n["type"] != "network");
            }
            for f in ["/etc/resolv.conf", "/etc/hosts"] {
                if Path::new(f).exists() {
                    if let Some(a) = spec["mounts"].as_array_mut() {
                        a.push(json!({"destination": f, "type": "bind", "source": f, "options": ["rbind", "ro"]}));
                    }
                }
            }
            Ok(())
        }
        // A network or container:NAME: crate::network::attach::prepare.
        _ => Ok(()),
    }
}
