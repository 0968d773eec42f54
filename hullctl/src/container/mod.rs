//! Containers made from images, on the hull library (in process).
//!
//! A container is a directory containers/<name>/ holding its record, an OCI
//! bundle (config.json + the rootfs mount point), its container layer
//! (upper/ and work/, the overlayfs upperdir/workdir over the image's layer
//! directories) and, when detached, its log. The hull state lives in the
//! store's run/ directory under the container's name.
//!
//! Detached containers are watched by a monitor: a process forked by
//! `run -d`/`start` that starts a new session, creates and starts the
//! container as its child subreaper with its stdout and stderr on two pipes
//! (or a pty it keeps the master of, for `-t`), tells the caller it runs,
//! then copies the output into a json-lines log (docker's json-file format:
//! `logs` gives each stream back on its own fd) until the container exits,
//! records the exit code (and removes it for `--rm`).

pub mod cp;
pub mod layer;
pub mod logfile;
pub mod monitor;
pub mod record;
pub mod spec;
pub mod storage;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::{Error, IoContext, Result};
use crate::image;
use crate::store::{remove_tree, Store};
use record::{ContainerRecord, Paths};
pub use spec::RunOptions;

/// The hull state store for this store's containers.
/// Every container's cgroup is `/hullctl/<id>`: one parent for all stores
/// (ids are unique across them), removed with the last container.
pub const CGROUP_PARENT: &str = "/hullctl";

pub fn hull_store(store: &Store) -> hull::StateStore {
    hull::StateStore::new(store.run_dir())
}

pub(crate) fn random_hex(n: usize) -> Result<String> {
    let mut b = vec![0u8; n / 2];
    let p = Path::new("/dev/urandom");
    std::io::Read::read_exact(&mut std::fs::File::open(p).at(p)?, &mut b).at(p)?;
    Ok(crate::digest::hex(&b))
}

/// `create`: the record, the bundle and the container layer. Nothing is
/// mounted or started yet. A failure removes what was made.
pub fn create(
    store: &Store,
    image_ref: &str,
    name: Option<&str>,
    cmd: &[String],
    o: &RunOptions,
    auto_remove: bool,
) -> Result<ContainerRecord> {
    let img = store.resolve(image_ref)?;
    let cfg = image::config(store, &img)?;
    let id = random_hex(64)?;
    let name = match name {
        Some(n) => {
            hull::state::validate_id(n).map_err(|e| Error::Usage(format!("--name {n:?}: {e}")))?;
            n.to_string()
        }
        None => format!("hull_{}", &id[..12]),
    };
    let layers: Vec<_> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
    let (o, mut wanted) = split_volumes(store, o)?;
    let o = &o;
    let config = spec::build(
        &spec::Inputs {
            store,
            layers: &layers,
            image_config: &cfg,
            cmd,
            hostname: &id[..12],
        },
        o,
    )?;
    let paths = Paths::new(store, &name);
    let mut config = config;
    // The cgroup by id, not hull's default `/<name>`: containers of one
    // name in two stores would share it, and `rm -f` of one (a cgroup-wide
    // kill) would kill the other.
    config["linux"]["cgroupsPath"] = json!(format!("{CGROUP_PARENT}/{id}"));
    image_volumes(&cfg, &config, &mut wanted);
    let mode = o.network.as_deref().unwrap_or("none");
    let mut net_opts = o.net.clone();
    net_opts.exposed = cfg["config"]["ExposedPorts"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let net = crate::network::attach::prepare(store, &name, mode, &net_opts, &mut config)?;
    seal_if_needed(&config)?;
    let (storage, note) = storage::choose(store);
    // The copy fallback's rootfs is made before the store lock is taken
    // (it may take a while), in tmp/, and renamed into place.
    let copied = match storage {
        storage::Storage::Copy => Some(copy_rootfs(store, &img, &name)?),
        _ => None,
    };
    let _l = store.lock()?;
    match std::fs::create_dir(&paths.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Usage(format!(
                "the container name {name:?} is already in use"
            )))
        }
        Err(e) => return Err(Error::io(&paths.dir, e)),
    }
    let rec = ContainerRecord {
        id,
        name: name.clone(),
        image: img.id.clone(),
        image_ref: image_ref.to_string(),
        created: hull::timefmt::now(true),
        command: config["process"]["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        stop_signal: cfg["config"]["StopSignal"]
            .as_str()
            .unwrap_or("SIGTERM")
            .to_string(),
        auto_remove,
        storage,
    };
    if let Some(note) = note {
        eprintln!("hullctl: container {name}: {note}");
    }
    let mut made_volumes = Vec::new();
    let made = (|| {
        for d in [paths.rootfs(), paths.upper(), paths.work()] {
            std::fs::create_dir_all(&d).at(&d)?;
        }
        if let Some(t) = &copied {
            let rootfs = paths.rootfs();
            std::fs::remove_dir(&rootfs).at(&rootfs)?;
            std::fs::rename(t.0.join("rootfs"), &rootfs).at(&rootfs)?;
        }
        let seed = attach_volumes(store, &rec.name, &wanted, &mut config, &mut made_volumes)?;
        let data = serde_json::to_vec_pretty(&config).map_err(|e| Error::json("config.json", e))?;
        crate::store::write_replace(&paths.bundle().join("config.json"), &data, false)?;
        if let Some(s) = &net {
            crate::network::attach::write_files(store, &name, s)?;
        }
        if !seed.is_empty() {
            seed_volumes(store, &rec, &seed)?;
        }
        // The record last: a directory without one is not a container.
        record::save(store, &rec)
    })();
    if let Err(e) = made {
        umount_rootfs(store, &name);
        let _ = remove_tree(&paths.dir);
        for v in &made_volumes {
            let _ = crate::volume::remove(store, v, true);
        }
        return Err(e);
    }
    Ok(rec)
}

/// A directory in tmp/, removed when dropped (unless moved away).
struct TmpTree(std::path::PathBuf);

impl Drop for TmpTree {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = remove_tree(&self.0);
        }
    }
}

/// The copy fallback: the image's layers copied into tmp/…/rootfs.
fn copy_rootfs(store: &Store, img: &crate::store::ImageRecord, name: &str) -> Result<TmpTree> {
    let t = TmpTree(store.tmp().join(crate::store::tmp_name("rootfscopy")));
    let rootfs = t.0.join("rootfs");
    std::fs::create_dir_all(&rootfs).at(&rootfs)?;
    let layers: Vec<_> = img
        .layers
        .iter()
        .map(|l| store.layer_diff(&l.diff_id))
        .collect();
    storage::copy_layers(&layers, &rootfs)
        .map_err(|e| Error::Image(format!("container {name}: copying the image's layers: {e}")))?;
    Ok(t)
}

/// A volume a container wants: by name (None: a new anonymous one), or
/// one shared from another container (`--volumes-from`).
struct WantedVolume {
    name: Option<String>,
    dest: String,
    ro: bool,
}

/// Take the volume forms of -v (`NAME:/path[:ro]`, `/path`) and
/// --volumes-from out of the options; host binds stay for spec::build.
fn split_volumes(store: &Store, o: &RunOptions) -> Result<(RunOptions, Vec<WantedVolume>)> {
    let mut rest = o.clone();
    rest.volumes.clear();
    let mut wanted = Vec::new();
    for v in &o.volumes {
        let parts: Vec<&str> = v.split(':').collect();
        match parts.as_slice() {
            [d] if d.starts_with('/') => wanted.push(WantedVolume {
                name: None,
                dest: d.trim_end_matches('/').to_string(),
                ro: false,
            }),
            [n, d, ..] if !n.starts_with('/') && !n.is_empty() => {
                if !d.starts_with('/') {
                    return Err(Error::Usage(format!(
                        "-v {v:?}: the container path must be absolute"
                    )));
                }
                wanted.push(WantedVolume {
                    name: Some(n.to_string()),
                    dest: d.trim_end_matches('/').to_string(),
                    ro: parts
                        .get(2)
                        .is_some_and(|o| o.split(',').any(|o| o == "ro")),
                })
            }
            _ => rest.volumes.push(v.clone()),
        }
    }
    for from in &o.volumes_from {
        let (cname, mode) = from.split_once(':').unwrap_or((from, ""));
        let c = record::find(store, cname)?;
        for (name, m) in crate::volume::mounts_of(store, &c.name) {
            let was_ro = m["options"]
                .as_array()
                .is_some_and(|a| a.iter().any(|o| o == "ro"));
            wanted.push(WantedVolume {
                name: Some(name),
                dest: m["destination"].as_str().unwrap_or_default().to_string(),
                ro: if mode.is_empty() {
                    was_ro
                } else {
                    mode == "ro"
                },
            });
        }
    }
    Ok((rest, wanted))
}

/// The image's `Volumes` that no mount or wanted volume covers become
/// anonymous volumes (as docker does).
fn image_volumes(cfg: &Value, config: &Value, wanted: &mut Vec<WantedVolume>) {
    let mut taken: Vec<String> = config["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["destination"].as_str())
        .map(|d| d.trim_end_matches('/').to_string())
        .collect();
    taken.extend(wanted.iter().map(|w| w.dest.clone()));
    for dest in cfg["config"]["Volumes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        let d = dest.trim_end_matches('/');
        if d.starts_with('/') && !taken.iter().any(|t| t == d) {
            taken.push(d.to_string());
            wanted.push(WantedVolume {
                name: None,
                dest: d.to_string(),
                ro: false,
            });
        }
    }
}

/// Create (on first use) the wanted volumes and add their bind mounts to
/// config.json. Volumes made now are pushed to `made` (the caller removes
/// them on failure). Returns the (container path, data dir) pairs to seed
/// from the image: docker copies the image's content into a volume only
/// while the volume is empty.
fn attach_volumes(
    store: &Store,
    container: &str,
    wanted: &[WantedVolume],
    config: &mut Value,
    made: &mut Vec<String>,
) -> Result<Vec<(String, std::path::PathBuf)>> {
    let mut seed = Vec::new();
    for w in wanted {
        let (v, new) = crate::volume::create(store, w.name.as_deref()).map_err(|e| {
            Error::Usage(format!("container {container}: volume for {}: {e}", w.dest))
        })?;
        if new {
            made.push(v.name.clone());
        }
        let data = crate::volume::data_dir(store, &v.name);
        let empty = std::fs::read_dir(&data).at(&data)?.next().is_none();
        if empty {
            seed.push((w.dest.clone(), data.clone()));
        }
        let mut opts = vec!["rbind", "rprivate"];
        if w.ro {
            opts.push("ro");
        }
        if let Some(a) = config["mounts"].as_array_mut() {
            a.push(json!({"destination": w.dest, "type": "bind", "source": data, "options": opts}));
        }
    }
    Ok(seed)
}

/// Make the volume directories, each seeded (as docker does) with what
/// the image has at its path: the path is opened inside the mounted
/// rootfs with RESOLVE_IN_ROOT (an image symlink there cannot point the
/// copy at a host directory) and copied with `cp -a` from that fd.
fn seed_volumes(
    store: &Store,
    rec: &ContainerRecord,
    volumes: &[(String, std::path::PathBuf)],
) -> Result<()> {
    use std::os::fd::AsRawFd;
    let rootfs = Paths::new(store, &rec.name).rootfs();
    mount_rootfs(store, rec)?;
    let res = (|| {
        let root = std::fs::File::open(&rootfs).at(&rootfs)?;
        for (dest, host) in volumes {
            std::fs::create_dir_all(host).at(host)?;
            let c = crate::sys::cstr(dest.as_bytes()).at(host)?;
            let Ok(fd) = crate::sys::open_in_root(
                root.as_raw_fd(),
                &c,
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
            ) else {
                continue; // nothing there in the image (or not a directory)
            };
            let src = format!("/proc/{}/fd/{}/.", crate::sys::getpid(), fd.as_raw_fd());
            let out = std::process::Command::new("cp")
                .arg("-a")
                .arg(&src)
                .arg(host)
                .output()
                .at("cp")?;
            if !out.status.success() {
                return Err(Error::Image(format!(
                    "container {}: seeding volume {dest}: {}",
                    rec.name,
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
        Ok(())
    })();
    umount_rootfs(store, &rec.name);
    res
}

/// CVE-2019-5736: a container that could reach its init's exe (hull's
/// code, here hullctl's binary) must be created from a sealed image of it.
/// hull does that by re-executing the process with the same arguments, so
/// it must happen before hullctl has made anything (the re-executed
/// hullctl starts over); then hull's own check passes.
fn seal_if_needed(config: &Value) -> Result<()> {
    let text = serde_json::to_string(config).map_err(|e| Error::json("config.json", e))?;
    let spec = hull::config::parse(&text).map_err(|e| Error::Usage(format!("config.json: {e}")))?;
    hull::exeseal::ensure(&spec, false).map_err(|e| Error::hull("(new)", e))
}

fn bundle_config(store: &Store, name: &str) -> Result<Value> {
    let p = Paths::new(store, name).bundle().join("config.json");
    let data = std::fs::read(&p).at(&p)?;
    serde_json::from_slice(&data).map_err(|e| Error::json(p.display().to_string(), e))
}

/// Mount the overlayfs rootfs unless it is mounted (a copied rootfs is
/// a plain directory: nothing to mount).
pub fn mount_rootfs(store: &Store, rec: &ContainerRecord) -> Result<()> {
    let paths = Paths::new(store, &rec.name);
    let rootfs = paths.rootfs();
    if rec.storage == storage::Storage::Copy || is_mountpoint(&rootfs) {
        return Ok(());
    }
    let img = store.image(&rec.image)?;
    let lower: Vec<String> = img
        .layers
        .iter()
        .rev()
        .map(|l| store.layer_diff(&l.diff_id).display().to_string())
        .collect();
    if rec.storage == storage::Storage::FuseOverlayfs {
        return storage::mount_fuse(&rec.name, &lower, &paths.upper(), &paths.work(), &rootfs);
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        paths.upper().display(),
        paths.work().display()
    );
    let c = |s: &str| crate::sys::cstr(s.as_bytes()).at(&rootfs);
    crate::sys::mount(
        &c("overlay")?,
        &c(&rootfs.display().to_string())?,
        &c("overlay")?,
        0,
        &c(&data)?,
    )
    .map_err(|e| {
        Error::Image(format!(
            "container {}: mounting its overlayfs rootfs ({} bytes of options): {e}",
            rec.name,
            data.len()
        ))
    })
}

pub(crate) fn is_mountpoint(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(p), p.parent().map(std::fs::metadata)) {
        (Ok(a), Some(Ok(b))) => a.dev() != b.dev(),
        _ => false,
    }
}

pub fn umount_rootfs(store: &Store, name: &str) {
    let rootfs = Paths::new(store, name).rootfs();
    if is_mountpoint(&rootfs) {
        if let Ok(c) = crate::sys::cstr(rootfs.as_os_str().as_encoded_bytes()) {
            let _ = crate::sys::umount(&c, libc::MNT_DETACH);
        }
    }
}

/// The container's status as hull sees it (None: never started or gone).
pub fn status(store: &Store, name: &str) -> Option<hull::Status> {
    hull::Container::load(&hull_store(store), name)
        .ok()
        .map(|c| c.status())
}

fn hull_opts(store: &Store, name: &str) -> hull::CreateOptions {
    hull::CreateOptions {
        id: name.to_string(),
        bundle: Paths::new(store, name).bundle(),
        ..Default::default()
    }
}

/// Forget the hull state of an earlier run (so the container can start again).
fn clear_old_state(store: &Store, name: &str) -> Result<()> {
    match status(store, name) {
        None => Ok(()),
        Some(hull::Status::Stopped) => {
            hull::container::delete::delete_by_id(&hull_store(store), name, true)
                .map_err(|e| Error::hull(name, e))
        }
        Some(s) => Err(Error::Usage(format!(
            "container {name} is {s}; stop it first"
        ))),
    }
}

/// Start in the foreground (attached): returns the exit code.
pub fn run_attached(store: &Store, rec: &ContainerRecord) -> Result<i32> {
    seal_if_needed(&bundle_config(store, &rec.name)?)?;
    clear_old_state(store, &rec.name)?;
    mount_rootfs(store, rec)?;
    let paths = Paths::new(store, &rec.name);
    let _ = std::fs::remove_file(paths.exit());
    crate::store::write_replace(&paths.started(), b"", false)?;
    let code = hull::container::run::run(
        &hull_store(store),
        &hull_opts(store, &rec.name),
        false,
        !rec.auto_remove,
    );
    let code = match code {
        Ok(c) => c,
        Err(e) => {
            if rec.auto_remove {
                let _ = remove(store, rec, true);
            }
            return Err(Error::hull(&rec.name, e));
        }
    };
    if rec.auto_remove {
        remove_soon(store, rec)?;
    } else {
        crate::store::write_replace(&paths.exit(), code.to_string().as_bytes(), false)?;
        crate::network::attach::stopped(store, &rec.name)?;
    }
    Ok(code)
}

/// `run --rm`'s removal of a stopped container: the container leaves the
/// store at once (its directory is renamed into tmp/, so its name is free
/// and no listing shows it), and a detached child unmounts the rootfs and
/// removes the directory. The unmount waits for an RCU grace period, which
/// under load takes from a few to hundreds of milliseconds; the caller
/// need not wait for it. `system prune` leaves a directory in tmp/ alone
/// while something is mounted below it.
fn remove_soon(store: &Store, rec: &ContainerRecord) -> Result<()> {
    if status(store, &rec.name).is_some() {
        hull::container::delete::delete_by_id(&hull_store(store), &rec.name, true)
            .map_err(|e| Error::hull(&rec.name, e))?;
    }
    remove_empty_cgroup_parent();
    crate::network::attach::teardown(store, &rec.name, &rec.id)?;
    let dir = Paths::new(store, &rec.name).dir;
    let gone = store.tmp().join(crate::store::tmp_name("rm"));
    {
        let _l = store.lock()?;
        std::fs::rename(&dir, &gone).at(&dir)?;
    }
    let rootfs = gone.join("bundle/rootfs");
    let clean = move || {
        if is_mountpoint(&rootfs) {
            if let Ok(c) = crate::sys::cstr(rootfs.as_os_str().as_encoded_bytes()) {
                let _ = crate::sys::umount(&c, libc::MNT_DETACH);
            }
        }
        let _ = remove_tree(&gone);
    };
    match crate::sys::fork_single_threaded() {
        Ok(0) => {
            // The child: detach (a second fork) so nobody waits for us.
            let code = match crate::sys::fork_single_threaded() {
                Ok(0) => {
                    let _ = crate::sys::setsid();
                    clean();
                    0
                }
                _ => 0,
            };
            crate::sys::exit_now(code);
        }
        Ok(pid) => {
            let _ = crate::sys::waitpid(pid);
            Ok(())
        }
        // No child: clean up here.
        Err(_) => {
            clean();
            Ok(())
        }
    }
}

/// Start detached, under a monitor; returns once the container runs.
pub fn start_detached(store: &Store, rec: &ContainerRecord) -> Result<()> {
    seal_if_needed(&bundle_config(store, &rec.name)?)?;
    clear_old_state(store, &rec.name)?;
    mount_rootfs(store, rec)?;
    let _ = std::fs::remove_file(Paths::new(store, &rec.name).exit());
    crate::store::write_replace(&Paths::new(store, &rec.name).started(), b"", false)?;
    let tty = bundle_config(store, &rec.name)?["process"]["terminal"] == json!(true);
    monitor::spawn(store, rec, hull_opts(store, &rec.name), tty)
}

/// Signal the container's init (`sig` by name or number).
pub fn kill(store: &Store, rec: &ContainerRecord, sig: &str) -> Result<()> {
    let n =
        hull::signal::parse(sig).ok_or_else(|| Error::Usage(format!("invalid signal {sig:?}")))?;
    let c = hull::Container::load(&hull_store(store), &rec.name)
        .map_err(|_| Error::Usage(format!("container {} is not running", rec.name)))?;
    if c.status() != hull::Status::Running && c.status() != hull::Status::Paused {
        return Err(Error::Usage(format!(
            "container {} is not running",
            rec.name
        )));
    }
    c.kill(n, false).map_err(|e| Error::hull(&rec.name, e))
}

/// Wait until the container is not running (or the deadline passes).
pub fn wait_stopped(store: &Store, name: &str, timeout: Option<Duration>) -> bool {
    let start = Instant::now();
    loop {
        match status(store, name) {
            Some(hull::Status::Running)
            | Some(hull::Status::Paused)
            | Some(hull::Status::Created) => {}
            _ => return true,
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `stop`: the image's StopSignal, then SIGKILL after `timeout`.
pub fn stop(store: &Store, rec: &ContainerRecord, timeout: Duration) -> Result<()> {
    if !matches!(
        status(store, &rec.name),
        Some(hull::Status::Running) | Some(hull::Status::Paused)
    ) {
        return Ok(());
    }
    if status(store, &rec.name) == Some(hull::Status::Paused) {
        let _ = pause(store, rec, false);
    }
    kill(store, rec, &rec.stop_signal)?;
    if !wait_stopped(store, &rec.name, Some(timeout)) {
        let _ = kill(store, rec, "SIGKILL");
        wait_stopped(store, &rec.name, None);
    }
    // The monitor records the exit code; wait for it briefly.
    wait_exit_code(store, rec);
    Ok(())
}

/// `wait`: block until the container stopped; its exit code.
pub fn wait(store: &Store, rec: &ContainerRecord) -> Result<i32> {
    wait_stopped(store, &rec.name, None);
    Ok(wait_exit_code(store, rec).unwrap_or(-1))
}

fn wait_exit_code(store: &Store, rec: &ContainerRecord) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(c) = record::exit_code(store, &rec.name) {
            return Some(c);
        }
        if !Paths::new(store, &rec.name).dir.exists() || start.elapsed() > Duration::from_secs(5) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `rm`: refuse a running container unless `force` (then kill it).
pub fn remove(store: &Store, rec: &ContainerRecord, force: bool) -> Result<()> {
    let hs = hull_store(store);
    match status(store, &rec.name) {
        Some(hull::Status::Running) | Some(hull::Status::Paused) if !force => {
            return Err(Error::Usage(format!(
                "cannot remove container {}: it is running (stop it first, or rm -f)",
                rec.name
            )))
        }
        Some(_) => hull::container::delete::delete_by_id(&hs, &rec.name, true)
            .map_err(|e| Error::hull(&rec.name, e))?,
        None => {}
    }
    umount_rootfs(store, &rec.name);
    remove_empty_cgroup_parent();
    crate::network::attach::teardown(store, &rec.name, &rec.id)?;
    let _l = store.lock()?;
    remove_tree(&Paths::new(store, &rec.name).dir)
}

/// The containers' parent cgroup (`/hullctl`, see [`CGROUP_PARENT`]) goes
/// with the last container, in every hierarchy: rmdir fails while any
/// container's cgroup is still in it (of this store or another), which is
/// then left alone. A create racing with it makes the parent again (hull
/// retries a parent that vanished).
fn remove_empty_cgroup_parent() {
    let Ok((_, hier)) = hull::cgroups::discover() else {
        return;
    };
    for h in hier {
        let _ = std::fs::remove_dir(h.mount.join(CGROUP_PARENT.trim_start_matches('/')));
    }
}

pub fn pause(store: &Store, rec: &ContainerRecord, on: bool) -> Result<()> {
    let c = hull::Container::load(&hull_store(store), &rec.name)
        .map_err(|e| Error::hull(&rec.name, e))?;
    if on { c.pause() } else { c.resume() }.map_err(|e| Error::hull(&rec.name, e))
}

/// docker's STATUS column: "Up 3 seconds", "Up 2 minutes (Paused)",
/// "Exited (0) 5 seconds ago", "Created".
pub fn status_text(store: &Store, rec: &ContainerRecord) -> (String, bool) {
    let paths = Paths::new(store, &rec.name);
    let since = |p: std::path::PathBuf| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .map(human_duration)
    };
    let up = || match since(paths.started()) {
        Some(d) => format!("Up {d}"),
        None => "Up".to_string(),
    };
    match status(store, &rec.name) {
        Some(hull::Status::Running) => (up(), true),
        Some(hull::Status::Paused) => (format!("{} (Paused)", up()), true),
        Some(hull::Status::Creating) | Some(hull::Status::Created) => ("Created".into(), false),
        Some(hull::Status::Stopped) | None => match record::exit_code(store, &rec.name) {
            Some(c) => match since(paths.exit()) {
                Some(d) => (format!("Exited ({c}) {d} ago"), false),
                None => (format!("Exited ({c})"), false),
            },
            None => ("Created".into(), false),
        },
    }
}

/// A duration as docker says it (go-units' HumanDuration).
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (m, h) = (s / 60, s / 3600);
    if d < Duration::from_secs(1) {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if m == 1 {
        "About a minute".into()
    } else if m < 60 {
        format!("{m} minutes")
    } else if h == 1 {
        "About an hour".into()
    } else if h < 48 {
        format!("{h} hours")
    } else if h < 24 * 7 * 2 {
        format!("{} days", h / 24)
    } else if h < 24 * 30 * 2 {
        format!("{} weeks", h / 24 / 7)
    } else if h < 24 * 365 * 2 {
        format!("{} months", h / 24 / 30)
    } else {
        format!("{} years", h / 24 / 365)
    }
}

/// `inspect` of a container.
pub fn inspect(store: &Store, rec: &ContainerRecord) -> Value {
    let paths = Paths::new(store, &rec.name);
    let (st, running) = status_text(store, rec);
    let pid = hull::Container::load(&hull_store(store), &rec.name)
        .map(|c| c.state.pid)
        .unwrap_or(0);
    json!({
        "Id": rec.id,
        "Name": rec.name,
        "Created": rec.created,
        "Image": rec.image.as_str(),
        "Config": {"Image": rec.image_ref, "Cmd": rec.command, "StopSignal": rec.stop_signal},
        "State": {"Status": st, "Running": running, "Pid": pid, "ExitCode": record::exit_code(store, &rec.name)},
        "HostConfig": {"AutoRemove": rec.auto_remove},
        "GraphDriver": {"Name": rec.storage.name(), "Data": {
            "UpperDir": paths.upper(), "WorkDir": paths.work(), "MergedDir": paths.rootfs()
        }},
        "LogPath": paths.log(),
        "NetworkSettings": crate::network::attach::network_settings(store, &rec.name),
    })
}
