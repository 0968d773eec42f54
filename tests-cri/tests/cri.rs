//! Kubernetes through containerd's CRI: a CRI client makes the kubelet's
//! calls against Debian's containerd 1.6 (CRI plugin, private root/state/
//! socket, CNI bridge + host-local + loopback on a test-only bridge and
//! subnet), and checks from inside the pod what a kubelet relies on. Every
//! check runs for each runtime handler: `hull` (the runc shim with
//! BinaryName = hull), `hull-shim` (containerd-shim-hull-v2, skipped with
//! its reason until the workspace builds a real one) and `runc`, and what
//! hull's pods saw must equal what runc's saw. After RemovePodSandbox
//! nothing may be left: process, mount, cgroup, veth, IP lease, state dir.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hull_tests_cri::cri::{self, v1, Client};
use hull_tests_cri::host::{self, run};
use hull_tests_cri::node::{self, Handler, Node};

const MIB: i64 = 1024 * 1024;

/// Check `cond`, or fail the pod's checks with `what`.
macro_rules! ensure {
    ($cond:expr, $($what:tt)+) => {
        if !$cond {
            return Err(format!($($what)+));
        }
    };
}

/// What one handler's pod showed, for the differential against runc.
type Seen = BTreeMap<String, String>;

/// The handlers to test; prints why hull's shim is left out, if it is.
fn handlers() -> Vec<Handler> {
    let hull = node::hull_binary().expect("the hull binary");
    let mut hs = vec![
        Handler {
            name: "hull",
            binary: Some(hull),
        },
        Handler {
            name: "runc",
            binary: Some(PathBuf::from("/usr/sbin/runc")),
        },
    ];
    match node::hull_shim_binary() {
        Ok(_) => hs.push(Handler {
            name: "hull-shim",
            binary: None,
        }),
        Err(why) => eprintln!("skipped: handler hull-shim (io.containerd.hull.v2): {why}"),
    }
    hs
}

fn skip() -> bool {
    match host::skip_reason() {
        Some(r) => {
            eprintln!("skipped: {r}");
            true
        }
        None => false,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------------------
// Small CRI helpers
// ---------------------------------------------------------------------------

async fn status(cli: &mut Client, id: &str) -> Result<v1::ContainerStatusResponse, String> {
    cli.container_status(v1::ContainerStatusRequest {
        container_id: id.into(),
        verbose: true,
    })
    .await
    .map(|r| r.into_inner())
    .map_err(|e| format!("ContainerStatus {id}: {e}"))
}

fn state_of(s: &v1::ContainerStatusResponse) -> i32 {
    s.status.as_ref().map(|s| s.state).unwrap_or(-1)
}

/// The container's init pid, from ContainerStatus's verbose info.
fn pid_of(s: &v1::ContainerStatusResponse) -> Result<u32, String> {
    let info = s
        .info
        .get("info")
        .ok_or("ContainerStatus: no verbose info")?;
    let v: serde_json::Value =
        serde_json::from_str(info).map_err(|e| format!("ContainerStatus info: {e}"))?;
    v["pid"]
        .as_u64()
        .map(|p| p as u32)
        .ok_or_else(|| format!("ContainerStatus info has no pid: {info}"))
}

async fn wait_exited(cli: &mut Client, id: &str) -> Result<v1::ContainerStatus, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(cli, id).await?;
        if state_of(&s) == v1::ContainerState::ContainerExited as i32 {
            return s
                .status
                .ok_or_else(|| format!("ContainerStatus {id}: empty"));
        }
        ensure!(
            Instant::now() < deadline,
            "container {id} did not exit: {:?}",
            s.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// ExecSync: (exit code, stdout, stderr).
async fn exec_sync(
    cli: &mut Client,
    id: &str,
    cmd: &[&str],
) -> Result<(i32, String, String), String> {
    let r = cli
        .exec_sync(v1::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 20,
        })
        .await
        .map_err(|e| format!("ExecSync {cmd:?} in {id}: {e}"))?
        .into_inner();
    Ok((
        r.exit_code,
        String::from_utf8_lossy(&r.stdout).into_owned(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    ))
}

/// ExecSync that must succeed; its stdout, trimmed.
async fn sh(cli: &mut Client, id: &str, script: &str) -> Result<String, String> {
    let (code, out, err) = exec_sync(cli, id, &["sh", "-c", script]).await?;
    ensure!(code == 0, "`{script}` in {id} exited {code}: {out}{err}");
    Ok(out.trim().to_string())
}

async fn create_start(
    cli: &mut Client,
    sid: &str,
    sandbox: &v1::PodSandboxConfig,
    config: v1::ContainerConfig,
) -> Result<String, String> {
    let name = config
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let cid = cli
        .create_container(v1::CreateContainerRequest {
            pod_sandbox_id: sid.into(),
            config: Some(config),
            sandbox_config: Some(sandbox.clone()),
        })
        .await
        .map_err(|e| format!("CreateContainer {name}: {e}"))?
        .into_inner()
        .container_id;
    cli.start_container(v1::StartContainerRequest {
        container_id: cid.clone(),
    })
    .await
    .map_err(|e| format!("StartContainer {name} ({cid}): {e}"))?;
    Ok(cid)
}

async fn run_sandbox(
    cli: &mut Client,
    config: &v1::PodSandboxConfig,
    handler: &str,
) -> Result<String, String> {
    cli.run_pod_sandbox(v1::RunPodSandboxRequest {
        config: Some(config.clone()),
        runtime_handler: handler.into(),
    })
    .await
    .map(|r| r.into_inner().pod_sandbox_id)
    .map_err(|e| format!("RunPodSandbox (handler {handler}): {e}"))
}

/// StopPodSandbox + RemovePodSandbox (which also removes its containers),
/// as the kubelet tears a pod down; used on every path, failure included.
async fn teardown(cli: &mut Client, sid: &str) -> Result<(), String> {
    cli.stop_pod_sandbox(v1::StopPodSandboxRequest {
        pod_sandbox_id: sid.into(),
    })
    .await
    .map_err(|e| format!("StopPodSandbox {sid}: {e}"))?;
    cli.remove_pod_sandbox(v1::RemovePodSandboxRequest {
        pod_sandbox_id: sid.into(),
    })
    .await
    .map_err(|e| format!("RemovePodSandbox {sid}: {e}"))?;
    Ok(())
}

/// Poll `f` until it returns Ok, at most 20 s; the last error otherwise.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => return Err(format!("{what}: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

// ---------------------------------------------------------------------------
// Host-side checks
// ---------------------------------------------------------------------------

/// A cgroup value of the container's init, v1 file first, then v2's.
fn cgroup_value(pid: u32, controller: &str, v1_file: &str, v2_file: &str) -> String {
    host::cgroup_file_of(pid, controller, v1_file)
        .or_else(|| host::cgroup_file_of(pid, controller, v2_file))
        .unwrap_or_else(|| format!("<no {v1_file} or {v2_file} for pid {pid}>"))
}

/// The limits as one comparable line: memory, CPU quota/period, shares.
fn limits(pid: u32) -> String {
    let mem = cgroup_value(pid, "memory", "memory.limit_in_bytes", "memory.max");
    let quota = match host::cgroup_file_of(pid, "cpu", "cpu.cfs_quota_us") {
        Some(q) => format!(
            "{q} {}",
            host::cgroup_file_of(pid, "cpu", "cpu.cfs_period_us").unwrap_or_default()
        ),
        None => cgroup_value(pid, "cpu", "-", "cpu.max"),
    };
    let shares = cgroup_value(pid, "cpu", "cpu.shares", "cpu.weight");
    format!("memory={mem} cpu={quota} shares={shares}")
}

/// Expected limits line (v1 or v2 spelling, whichever this host has).
fn expected_limits(pid: u32, mem: i64, quota: i64, shares: i64) -> String {
    if host::cgroup_file_of(pid, "memory", "memory.limit_in_bytes").is_some() {
        format!("memory={mem} cpu={quota} 100000 shares={shares}")
    } else {
        // runc's shares→weight conversion: 1 + ((shares-2)*9999)/262142.
        let weight = 1 + ((shares - 2) * 9999) / 262142;
        format!("memory={mem} cpu={quota} 100000 shares={weight}")
    }
}

/// Every line of a CRI log file: `<RFC 3339 nano> <stdout|stderr> <F|P> <text>`.
fn check_cri_log(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = Vec::new();
    for l in text.lines() {
        let mut f = l.splitn(4, ' ');
        let (ts, stream, tag, msg) = (
            f.next().unwrap_or(""),
            f.next().unwrap_or(""),
            f.next().unwrap_or(""),
            f.next().unwrap_or(""),
        );
        let ts_ok = ts.len() >= 20
            && ts.as_bytes()[4] == b'-'
            && ts.as_bytes()[10] == b'T'
            && (ts.ends_with('Z') || ts[19..].contains('+') || ts[19..].contains('-'));
        ensure!(
            ts_ok && (stream == "stdout" || stream == "stderr") && (tag == "F" || tag == "P"),
            "{}: not a CRI log line: {l:?}",
            path.display()
        );
        lines.push((stream.to_string(), msg.to_string()));
    }
    Ok(lines)
}

/// What the pod left on the host after RemovePodSandbox; empty if nothing.
/// What the pod with these ids left on the host; `global` adds what is
/// shared by every pod of the node (veths on the bridge, IP leases, netns
/// mounts), which is empty only once no pod runs.
fn leftovers(
    node: &Node,
    handler: &str,
    pod_cgroup: &str,
    ids: &[String],
    global: bool,
) -> Vec<String> {
    let mut left = Vec::new();
    for p in host::processes_mentioning(ids) {
        left.push(format!("process {p}"));
    }
    for m in host::mount_points() {
        let s = m.to_string_lossy();
        if ids.iter().any(|id| s.contains(id.as_str())) {
            left.push(format!("mount {s}"));
        }
    }
    for d in host::cgroup_dirs(pod_cgroup) {
        for c in host::child_cgroups(&d) {
            left.push(format!("cgroup {}", c.display()));
        }
    }
    if global {
        for l in host::links_on_bridge(&node.bridge) {
            left.push(format!("veth {l} on {}", node.bridge));
        }
        for ip in node.ip_leases() {
            left.push(format!("IP lease {ip}"));
        }
        for ns in node
            .entries("state/io.containerd.grpc.v1.cri/netns")
            .into_iter()
            .chain(node.entries("state/netns"))
        {
            left.push(format!("netns {ns}"));
        }
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(root) = node.runtime_root(handler) {
        dirs.extend(ids.iter().map(|id| root.join(id)));
    }
    for id in ids {
        dirs.push(
            node.dir
                .join("state/io.containerd.runtime.v2.task/k8s.io")
                .join(id),
        );
        for kind in ["sandboxes", "containers"] {
            dirs.push(
                node.dir
                    .join("root/io.containerd.grpc.v1.cri")
                    .join(kind)
                    .join(id),
            );
            dirs.push(
                node.dir
                    .join("state/io.containerd.grpc.v1.cri")
                    .join(kind)
                    .join(id),
            );
        }
    }
    for d in dirs {
        if d.exists() {
            left.push(format!("state {}", d.display()));
        }
    }
    left
}

/// Wait (20 s at most) until the pod left nothing; shims exit shortly
/// after RemovePodSandbox returns.
async fn assert_nothing_left(
    node: &Node,
    handler: &str,
    pod_cgroup: &str,
    ids: &[String],
) -> Result<(), String> {
    eventually("nothing left after RemovePodSandbox", || async {
        let left = leftovers(node, handler, pod_cgroup, ids, true);
        if left.is_empty() {
            Ok(())
        } else {
            Err(left.join("\n  "))
        }
    })
    .await
}

// ---------------------------------------------------------------------------
// The pod: every call the kubelet makes, every semantic checked from inside
// ---------------------------------------------------------------------------

/// The ids of what one pod made, for the teardown and leftover checks.
#[derive(Default)]
struct PodIds {
    sandbox: String,
    containers: Vec<String>,
}

impl PodIds {
    fn all(&self) -> Vec<String> {
        std::iter::once(self.sandbox.clone())
            .chain(self.containers.iter().cloned())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Run the whole pod for `handler`; what it saw goes to `seen`.
async fn pod_checks(
    node: &Node,
    cli: &mut Client,
    handler: &str,
    seen: &mut Seen,
) -> Result<(), String> {
    let uid = format!("{}-{}", handler, host::next_n());
    let log_dir = node.dir.join("logs").join(&uid);
    fs::create_dir_all(&log_dir).map_err(|e| format!("mkdir {}: {e}", log_dir.display()))?;
    let run_label = uid.clone();
    let sandbox = cri::sandbox_config(
        "pod",
        &uid,
        &log_dir,
        &node.cgroup_parent,
        &[("hulltest-run", &run_label)],
    );
    let mut run = PodRun {
        node,
        cli: cli.clone(),
        handler,
        sandbox,
        log_dir,
        ids: PodIds::default(),
        seen: Seen::new(),
        sid: String::new(),
        ip: String::new(),
        server_id: String::new(),
        client_id: String::new(),
    };
    let result = pod_body(&mut run).await;
    seen.append(&mut run.seen);
    let (ids, sandbox) = (run.ids, run.sandbox);
    // Tear down whatever was made, also after a failed check.
    let torn = if ids.sandbox.is_empty() {
        Ok(())
    } else {
        teardown(cli, &ids.sandbox).await
    };
    result?;
    torn?;
    // The CRI lists no longer show it.
    let pods = cli
        .list_pod_sandbox(v1::ListPodSandboxRequest {
            filter: Some(v1::PodSandboxFilter {
                label_selector: [("hulltest-run".to_string(), run_label)].into(),
                ..Default::default()
            }),
        })
        .await
        .map_err(|e| format!("ListPodSandbox: {e}"))?
        .into_inner()
        .items;
    ensure!(pods.is_empty(), "ListPodSandbox after removal: {pods:?}");
    let ctrs = cli
        .list_containers(v1::ListContainersRequest {
            filter: Some(v1::ContainerFilter {
                pod_sandbox_id: ids.sandbox.clone(),
                ..Default::default()
            }),
        })
        .await
        .map_err(|e| format!("ListContainers: {e}"))?
        .into_inner()
        .containers;
    ensure!(ctrs.is_empty(), "ListContainers after removal: {ctrs:?}");
    assert_nothing_left(node, handler, &pod_cgroup(&sandbox), &ids.all()).await
}

/// The pod's own cgroup (the kubelet's pod<uid> under the node's parent).
fn pod_cgroup(sandbox: &v1::PodSandboxConfig) -> String {
    sandbox
        .linux
        .as_ref()
        .map(|l| l.cgroup_parent.clone())
        .unwrap_or_default()
}

/// One pod's run: what its phases share.
struct PodRun<'a> {
    node: &'a Node,
    cli: Client,
    handler: &'a str,
    sandbox: v1::PodSandboxConfig,
    log_dir: PathBuf,
    ids: PodIds,
    seen: Seen,
    sid: String,
    ip: String,
    server_id: String,
    client_id: String,
}

/// The pod's phases, in the kubelet's order.
async fn pod_body(p: &mut PodRun<'_>) -> Result<(), String> {
    sandbox_ready(p).await?;
    two_containers_share_the_pod(p).await?;
    security_context(p).await?;
    container_view(p).await?;
    cgroup_limits(p).await?;
    stats(p).await?;
    streams(p).await?;
    logs(p).await?;
    exit_reasons(p).await?;
    list_and_stop(p).await?;
    Ok(())
}

/// The sandbox: ready, on the CNI bridge, run by the handler.
async fn sandbox_ready(p: &mut PodRun<'_>) -> Result<(), String> {
    let node = p.node;
    let handler = p.handler;
    let sandbox = &p.sandbox;
    let ids = &mut p.ids;
    let seen = &mut p.seen;
    let cli = &mut p.cli;
    ids.sandbox = run_sandbox(cli, sandbox, handler).await?;
    let sid = ids.sandbox.clone();
    let st = cli
        .pod_sandbox_status(v1::PodSandboxStatusRequest {
            pod_sandbox_id: sid.clone(),
            verbose: true,
        })
        .await
        .map_err(|e| format!("PodSandboxStatus: {e}"))?
        .into_inner();
    let pst = st.status.ok_or("PodSandboxStatus: no status")?;
    ensure!(
        pst.state == v1::PodSandboxState::SandboxReady as i32,
        "sandbox not ready: {pst:?}"
    );
    ensure!(
        pst.runtime_handler == handler,
        "sandbox runtime_handler {:?}",
        pst.runtime_handler
    );
    let ip = pst
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default();
    ensure!(
        ip.starts_with(&format!("{}.", node.subnet_prefix)),
        "pod IP {ip:?} is not in the test subnet {}.0/24",
        node.subnet_prefix
    );
    let veths = host::links_on_bridge(&node.bridge);
    ensure!(veths.len() == 1, "veths on {}: {veths:?}", node.bridge);
    seen.insert(
        "sandbox".into(),
        "ready, IP in the CNI subnet, one veth on the bridge".into(),
    );
    if let (Some(root), Some(bin)) = (node.runtime_root(handler), runtime_binary(node, handler)) {
        // The handler's runtime (not some other) holds the sandbox.
        let s = run(Command::new(&bin)
            .arg("--root")
            .arg(&root)
            .args(["state", &sid]));
        ensure!(
            s.code == 0 && s.stdout.contains("\"running\""),
            "{} --root {} state {sid}: {}{}",
            bin.display(),
            root.display(),
            s.stdout,
            s.stderr
        );
    }
    p.sid = sid;
    p.ip = ip;
    Ok(())
}

/// Two containers sharing the pod's network and IPC namespaces.
async fn two_containers_share_the_pod(p: &mut PodRun<'_>) -> Result<(), String> {
    let node = p.node;
    let handler = p.handler;
    let sid = p.sid.clone();
    let ip = p.ip.clone();
    let sandbox = &p.sandbox;
    let ids = &mut p.ids;
    let seen = &mut p.seen;
    let cli = &mut p.cli;
    let mut server = cri::container_config(
        "server",
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; mkdir -p /tmp/www && echo hello-from-server > /tmp/www/index.html \
             && echo shm-from-server > /dev/shm/s && httpd -p 127.0.0.1:8080 -h /tmp/www \
             && echo started && echo warning >&2; while :; do echo tick; sleep 1; done",
        ],
    );
    if let Some(r) = server.linux.as_mut().and_then(|l| l.resources.as_mut()) {
        r.cpu_period = 100_000;
        r.cpu_quota = 50_000;
        r.cpu_shares = 512;
        r.memory_limit_in_bytes = 64 * MIB;
    }
    let server_id = create_start(cli, &sid, sandbox, server).await?;
    ids.containers.push(server_id.clone());

    let mut client = cri::container_config(
        "client",
        &["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
    );
    if let Some(sc) = client
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
    {
        sc.run_as_user = Some(v1::Int64Value { value: 1000 });
        sc.readonly_rootfs = true;
        sc.no_new_privs = true;
        sc.capabilities = Some(v1::Capability {
            drop_capabilities: vec!["ALL".into()],
            add_capabilities: vec!["NET_BIND_SERVICE".into()],
            ..Default::default()
        });
        sc.seccomp = Some(v1::SecurityProfile {
            profile_type: v1::security_profile::ProfileType::RuntimeDefault as i32,
            ..Default::default()
        });
    }
    let client_id = create_start(cli, &sid, sandbox, client).await?;
    ids.containers.push(client_id.clone());

    for id in [&server_id, &client_id] {
        let s = status(cli, id).await?;
        ensure!(
            state_of(&s) == v1::ContainerState::ContainerRunning as i32,
            "container {id} not running: {:?}",
            s.status
        );
    }
    // The leftover probe sees the running pod everywhere it looks, so its
    // empty answer after RemovePodSandbox means something.
    let live = leftovers(node, handler, &pod_cgroup(sandbox), &ids.all(), true);
    for kind in [
        "process", "mount", "cgroup", "veth", "IP lease", "state", "netns",
    ] {
        ensure!(
            live.iter().any(|l| l.starts_with(kind)),
            "the leftover probe does not see the running pod's {kind}: {live:#?}"
        );
    }

    // Shared localhost: the client reaches the server's 127.0.0.1:8080.
    let page = eventually("the server's page over the pod's localhost", || {
        let mut c = cli.clone();
        let id = client_id.clone();
        async move { sh(&mut c, &id, "wget -qO- http://127.0.0.1:8080/index.html").await }
    })
    .await?;
    ensure!(page == "hello-from-server", "page: {page:?}");
    seen.insert("localhost shared".into(), page);
    // Shared IPC: the pod's /dev/shm and the same IPC and network namespaces.
    let shm = sh(cli, &client_id, "cat /dev/shm/s").await?;
    ensure!(shm == "shm-from-server", "/dev/shm: {shm:?}");
    seen.insert("/dev/shm shared".into(), shm);
    let ns = "for n in net ipc pid; do readlink /proc/self/ns/$n; done";
    let ns_s = sh(cli, &server_id, ns).await?;
    let ns_c = sh(cli, &client_id, ns).await?;
    let (s_lines, c_lines): (Vec<_>, Vec<_>) = (ns_s.lines().collect(), ns_c.lines().collect());
    ensure!(
        s_lines.len() == 3 && c_lines.len() == 3,
        "namespaces: {ns_s:?} {ns_c:?}"
    );
    ensure!(
        s_lines[0] == c_lines[0],
        "net namespaces differ: {ns_s:?} vs {ns_c:?}"
    );
    ensure!(
        s_lines[1] == c_lines[1],
        "IPC namespaces differ: {ns_s:?} vs {ns_c:?}"
    );
    seen.insert(
        "namespaces shared (net ipc pid)".into(),
        format!(
            "{} {} {}",
            s_lines[0] == c_lines[0],
            s_lines[1] == c_lines[1],
            s_lines[2] == c_lines[2]
        ),
    );
    // The pod IP is on the pod's eth0, the hostname the sandbox's.
    let addr = sh(cli, &server_id, "ip -o -4 addr show eth0").await?;
    ensure!(
        addr.contains(&format!("inet {ip}/24")),
        "eth0: {addr:?} (pod IP {ip})"
    );
    seen.insert("pod IP on eth0".into(), "yes".into());
    seen.insert("hostname".into(), sh(cli, &client_id, "hostname").await?);
    p.server_id = server_id;
    p.client_id = client_id;
    Ok(())
}

/// What the containers see of themselves (mounts, devices, identity,
/// limits, files the CRI plugin writes), normalized of ids and paths that
/// differ per pod, for the differential against runc: the server with the
/// defaults, the client with its securityContext.
async fn container_view(p: &mut PodRun<'_>) -> Result<(), String> {
    let server_id = p.server_id.clone();
    let client_id = p.client_id.clone();
    let cli = &mut p.cli;
    let seen = &mut p.seen;
    let probes = [
        ("mounts", "cat /proc/self/mounts"),
        (
            "devices",
            "cd /dev && for f in *; do stat -c '%n %F %a %t:%T %u:%g' \"$f\"; done",
        ),
        (
            "identity",
            "id; umask; grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status",
        ),
        ("limits", "ulimit -a; cat /proc/self/oom_score_adj"),
        ("cgroup", "cat /proc/self/cgroup"),
        ("env", "env | sort"),
        (
            "files",
            "cat /etc/hostname /etc/hosts /etc/resolv.conf; stat -c '%n %a %U:%G %F' /tmp /dev/shm",
        ),
        (
            "sysctls",
            "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range",
        ),
    ];
    for (who, id) in [("server", &server_id), ("client", &client_id)] {
        for (name, script) in probes {
            let mut out = normalize(&sh(cli, id, script).await?);
            if name == "mounts" {
                out = split_cgroup_tmpfs_flag(who, &out, seen);
            }
            seen.insert(format!("{who} view: {name}"), out);
        }
    }
    Ok(())
}

/// Where hull deliberately differs from runc 1.1.5 in what a pod sees
/// (README, "Deliberate differences from runc"): the observation, what
/// hull must show there, and why.
const DELIBERATE: [(&str, &str, &str); 2] = [
    (
        "server view: /sys/fs/cgroup tmpfs rw/ro",
        "ro",
        CGROUP_TMPFS_WHY,
    ),
    (
        "client view: /sys/fs/cgroup tmpfs rw/ro",
        "ro",
        CGROUP_TMPFS_WHY,
    ),
];

const CGROUP_TMPFS_WHY: &str =
    "cgroup v1: the tmpfs holding the hierarchies is read-only when the \
     cgroup mount asks for ro (containerd's does); runc leaves it writable";

/// Moves the rw/ro flag of the cgroup v1 tmpfs at /sys/fs/cgroup into its
/// own observation (see DELIBERATE); the rest of the mounts are compared.
fn split_cgroup_tmpfs_flag(who: &str, mounts: &str, seen: &mut Seen) -> String {
    let prefix = "tmpfs /sys/fs/cgroup tmpfs ";
    let key = format!("{who} view: /sys/fs/cgroup tmpfs rw/ro");
    mounts
        .lines()
        .map(|l| match l.strip_prefix(prefix) {
            Some(rest) => {
                let (flag, more) = rest.split_once(',').unwrap_or((rest, ""));
                seen.insert(key.clone(), flag.to_string());
                format!("{prefix}<{key}>,{more}")
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Replace what differs per pod (64-hex ids, snapshot numbers in overlay
/// options, pod uids in cgroup paths, the pod IP) with placeholders.
fn normalize(text: &str) -> String {
    let mut out = Vec::new();
    for line in text.lines() {
        let words: Vec<String> = line
            .split(' ')
            .map(|w| {
                if w.contains("lowerdir=") || w.contains("upperdir=") {
                    return "<overlay options>".to_string();
                }
                let mut w = w.to_string();
                for part in w.clone().split(|c: char| !c.is_ascii_alphanumeric()) {
                    if part.len() == 64 && part.bytes().all(|b| b.is_ascii_hexdigit()) {
                        w = w.replace(part, "<id>");
                    }
                }
                if let Some(i) = w.find("/podhull").or_else(|| w.find("/podrunc")) {
                    let end = w[i + 1..].find('/').map_or(w.len(), |j| i + 1 + j);
                    w.replace_range(i..end, "/pod<uid>");
                }
                if w.starts_with("10.231.") {
                    w = "<pod ip>".into();
                }
                w
            })
            .collect();
        out.push(words.join(" "));
    }
    out.join("\n")
}

/// securityContext, seen from inside the client.
async fn security_context(p: &mut PodRun<'_>) -> Result<(), String> {
    let client_id = p.client_id.clone();
    let seen = &mut p.seen;
    let cli = &mut p.cli;
    let id_u = sh(cli, &client_id, "id -u").await?;
    ensure!(id_u == "1000", "runAsUser: id -u = {id_u}");
    seen.insert("id -u".into(), id_u);
    let (code, _, err) = exec_sync(cli, &client_id, &["touch", "/written"]).await?;
    ensure!(
        code != 0 && err.contains("Read-only file system"),
        "readOnlyRootFilesystem: touch / exited {code}: {err}"
    );
    seen.insert(
        "touch / (read-only root)".into(),
        format!("exit {code}: {}", err.trim()),
    );
    let status_lines = sh(
        cli,
        &client_id,
        "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status",
    )
    .await?;
    for want in [
        "CapBnd:\t0000000000000400",
        "CapEff:\t0000000000000000",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
    ] {
        ensure!(
            status_lines.contains(want),
            "client /proc/self/status lacks {want:?}:\n{status_lines}"
        );
    }
    seen.insert("client /proc/self/status".into(), status_lines);
    // RuntimeDefault refuses unshare without CAP_SYS_ADMIN; the
    // unconfined server (root, no profile) may make a user namespace.
    let (code, _, err) = exec_sync(cli, &client_id, &["unshare", "-U", "true"]).await?;
    ensure!(code != 0, "unshare -U under RuntimeDefault succeeded");
    seen.insert(
        "unshare -U (RuntimeDefault)".into(),
        format!("exit {code}: {}", err.trim()),
    );
    Ok(())
}

/// Limits in the cgroups; then UpdateContainerResources.
async fn cgroup_limits(p: &mut PodRun<'_>) -> Result<(), String> {
    let server_id = p.server_id.clone();
    let sandbox = &p.sandbox;
    let seen = &mut p.seen;
    let cli = &mut p.cli;
    let pid = pid_of(&status(cli, &server_id).await?)?;
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let pod_cgroup = pod_cgroup(sandbox);
    ensure!(
        cg.contains(&pod_cgroup),
        "server's cgroups are not under {pod_cgroup}: {cg}"
    );
    let want = expected_limits(pid, 64 * MIB, 50_000, 512);
    let got = limits(pid);
    ensure!(got == want, "limits in the cgroup: {got} (want {want})");
    seen.insert("limits".into(), got);
    cli.update_container_resources(v1::UpdateContainerResourcesRequest {
        container_id: server_id.clone(),
        linux: Some(v1::LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 25_000,
            cpu_shares: 256,
            memory_limit_in_bytes: 96 * MIB,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .map_err(|e| format!("UpdateContainerResources: {e}"))?;
    let want = expected_limits(pid, 96 * MIB, 25_000, 256);
    let got = limits(pid);
    ensure!(
        got == want,
        "limits after UpdateContainerResources: {got} (want {want})"
    );
    seen.insert("limits after update".into(), got);
    Ok(())
}

/// ContainerStats.
async fn stats(p: &mut PodRun<'_>) -> Result<(), String> {
    let server_id = p.server_id.clone();
    let seen = &mut p.seen;
    let cli = &mut p.cli;
    let stats = cli
        .container_stats(v1::ContainerStatsRequest {
            container_id: server_id.clone(),
        })
        .await
        .map_err(|e| format!("ContainerStats: {e}"))?
        .into_inner()
        .stats
        .ok_or("ContainerStats: empty")?;
    let cpu = stats
        .cpu
        .as_ref()
        .and_then(|c| c.usage_core_nano_seconds.as_ref())
        .map(|v| v.value)
        .unwrap_or(0);
    let mem = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes.as_ref())
        .map(|v| v.value)
        .unwrap_or(0);
    ensure!(
        cpu > 0 && mem > 0,
        "ContainerStats: cpu {cpu} ns, working set {mem} bytes"
    );
    seen.insert("stats".into(), "cpu and working set reported".into());
    Ok(())
}

/// Exec and Attach through the streaming server on 127.0.0.1.
async fn streams(p: &mut PodRun<'_>) -> Result<(), String> {
    let sid = p.sid.clone();
    let client_id = p.client_id.clone();
    let sandbox = &p.sandbox;
    let ids = &mut p.ids;
    let seen = &mut p.seen;
    let cli = &mut p.cli;
    let url = cli
        .exec(v1::ExecRequest {
            container_id: client_id.clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "echo out; echo err >&2; exit 7".into(),
            ],
            stdout: true,
            stderr: true,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("Exec: {e}"))?
        .into_inner()
        .url;
    let ex = tokio::task::spawn_blocking(move || cri::stream(&url, None, |_| false))
        .await
        .map_err(|e| format!("exec stream task: {e}"))??;
    ensure!(
        ex.stdout == "out\n" && ex.stderr == "err\n" && ex.status.contains("\"message\":\"7\""),
        "Exec stream: {ex:?}"
    );
    seen.insert(
        "exec stream".into(),
        format!("{:?} {:?} exit 7", ex.stdout, ex.stderr),
    );

    let mut echo = cri::container_config("echo", &["cat"]);
    echo.stdin = true;
    let echo_id = create_start(cli, &sid, sandbox, echo).await?;
    ids.containers.push(echo_id.clone());
    let url = cli
        .attach(v1::AttachRequest {
            container_id: echo_id.clone(),
            stdin: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("Attach: {e}"))?
        .into_inner()
        .url;
    let at = tokio::task::spawn_blocking(move || {
        cri::stream(&url, Some(b"ping through attach\n"), |s| {
            s.stdout.contains('\n')
        })
    })
    .await
    .map_err(|e| format!("attach stream task: {e}"))??;
    ensure!(
        at.stdout == "ping through attach\n",
        "Attach stream: {at:?}"
    );
    seen.insert("attach stream".into(), at.stdout);
    Ok(())
}

/// Logs in the CRI format; ReopenContainerLog.
async fn logs(p: &mut PodRun<'_>) -> Result<(), String> {
    let server_id = p.server_id.clone();
    let log_dir = p.log_dir.as_path();
    let seen = &mut p.seen;
    let cli = &mut p.cli;
    let log = log_dir.join("server.log");
    let lines = eventually("the server's log", || async {
        let lines = check_cri_log(&log)?;
        if lines.iter().any(|(s, m)| s == "stdout" && m == "tick") {
            Ok(lines)
        } else {
            Err(format!("no tick yet: {lines:?}"))
        }
    })
    .await?;
    ensure!(
        lines.contains(&("stdout".into(), "started".into()))
            && lines.contains(&("stderr".into(), "warning".into())),
        "server.log: {lines:?}"
    );
    seen.insert(
        "log lines".into(),
        "stdout started, stderr warning, stdout tick".into(),
    );
    let rotated = log_dir.join("server.log.1");
    fs::rename(&log, &rotated).map_err(|e| format!("rotate server.log: {e}"))?;
    cli.reopen_container_log(v1::ReopenContainerLogRequest {
        container_id: server_id.clone(),
    })
    .await
    .map_err(|e| format!("ReopenContainerLog: {e}"))?;
    eventually("a tick in the reopened log", || async {
        let lines = check_cri_log(&log)?;
        ensure!(
            lines.iter().any(|(_, m)| m == "tick"),
            "reopened log: {lines:?}"
        );
        Ok(())
    })
    .await?;
    seen.insert("reopened log".into(), "new file gets the output".into());
    Ok(())
}

/// A container that fails, and one that is OOM-killed.
async fn exit_reasons(p: &mut PodRun<'_>) -> Result<(), String> {
    let sid = p.sid.clone();
    let server_id = p.server_id.clone();
    let sandbox = &p.sandbox;
    let log_dir = p.log_dir.as_path();
    let ids = &mut p.ids;
    let seen = &mut p.seen;
    let cli = &mut p.cli;
    let failer = cri::container_config("failer", &["sh", "-c", "echo bye; echo oops >&2; exit 3"]);
    let failer_id = create_start(cli, &sid, sandbox, failer).await?;
    ids.containers.push(failer_id.clone());
    let fs_ = wait_exited(cli, &failer_id).await?;
    ensure!(
        fs_.exit_code == 3 && fs_.reason == "Error",
        "failer: exit {} reason {:?}",
        fs_.exit_code,
        fs_.reason
    );
    seen.insert(
        "failer".into(),
        format!("exit {} reason {}", fs_.exit_code, fs_.reason),
    );
    let flines = check_cri_log(&log_dir.join("failer.log"))?;
    ensure!(
        flines
            == [
                ("stdout".into(), "bye".into()),
                ("stderr".into(), "oops".into())
            ]
            || flines
                == [
                    ("stderr".into(), "oops".into()),
                    ("stdout".into(), "bye".into())
                ],
        "failer.log: {flines:?}"
    );

    let mut oom = cri::container_config(
        "oom",
        &[
            "sh",
            "-c",
            "while [ ! -e /dev/shm/oom-go ]; do sleep 0.05; done; \
             exec dd if=/dev/zero of=/dev/null bs=64M count=1",
        ],
    );
    if let Some(r) = oom.linux.as_mut().and_then(|l| l.resources.as_mut()) {
        r.memory_limit_in_bytes = 16 * MIB;
    }
    let oom_id = create_start(cli, &sid, sandbox, oom).await?;
    ids.containers.push(oom_id.clone());
    // Allocate only once StartContainer has returned: the runc shim
    // watches the cgroup's OOM events from the end of its Start on, and an
    // OOM kill before that shows as reason "Error" (with runc as well).
    sh(cli, &server_id, "touch /dev/shm/oom-go").await?;
    let os = wait_exited(cli, &oom_id).await?;
    ensure!(
        os.reason == "OOMKilled" && os.exit_code == 137,
        "oom: exit {} reason {:?}",
        os.exit_code,
        os.reason
    );
    seen.insert(
        "oom".into(),
        format!("exit {} reason {}", os.exit_code, os.reason),
    );
    Ok(())
}

/// Lists, then the kubelet's stop and remove of each container.
async fn list_and_stop(p: &mut PodRun<'_>) -> Result<(), String> {
    let handler = p.handler;
    let sid = p.sid.clone();
    let server_id = p.server_id.clone();
    let ids = &mut p.ids;
    let seen = &mut p.seen;
    let cli = &mut p.cli;
    let listed = cli
        .list_containers(v1::ListContainersRequest {
            filter: Some(v1::ContainerFilter {
                pod_sandbox_id: sid.clone(),
                ..Default::default()
            }),
        })
        .await
        .map_err(|e| format!("ListContainers: {e}"))?
        .into_inner()
        .containers;
    let mut names: Vec<String> = listed
        .iter()
        .filter_map(|c| c.metadata.as_ref().map(|m| m.name.clone()))
        .collect();
    names.sort();
    ensure!(
        names == ["client", "echo", "failer", "oom", "server"],
        "ListContainers: {names:?}"
    );
    let pods = cli
        .list_pod_sandbox(v1::ListPodSandboxRequest {
            filter: Some(v1::PodSandboxFilter {
                id: sid.clone(),
                ..Default::default()
            }),
        })
        .await
        .map_err(|e| format!("ListPodSandbox: {e}"))?
        .into_inner()
        .items;
    ensure!(
        pods.len() == 1 && pods[0].runtime_handler == handler,
        "ListPodSandbox: {pods:?}"
    );

    for id in &ids.containers {
        cli.stop_container(v1::StopContainerRequest {
            container_id: id.clone(),
            timeout: 10,
        })
        .await
        .map_err(|e| format!("StopContainer {id}: {e}"))?;
    }
    let ss = status(cli, &server_id)
        .await?
        .status
        .ok_or("ContainerStatus: empty")?;
    ensure!(
        ss.state == v1::ContainerState::ContainerExited as i32
            && ss.exit_code == 0
            && ss.reason == "Completed",
        "server after StopContainer (TERM handled): exit {} reason {:?}",
        ss.exit_code,
        ss.reason
    );
    seen.insert(
        "server stopped".into(),
        format!("exit {} reason {}", ss.exit_code, ss.reason),
    );
    for id in &ids.containers {
        cli.remove_container(v1::RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await
        .map_err(|e| format!("RemoveContainer {id}: {e}"))?;
    }
    Ok(())
}

/// The binary a runc-shim handler runs (to ask it for the sandbox's state).
fn runtime_binary(_node: &Node, handler: &str) -> Option<PathBuf> {
    match handler {
        "hull" => node::hull_binary().ok(),
        "runc" => Some(PathBuf::from("/usr/sbin/runc")),
        _ => None,
    }
}

/// The pod checks for every handler, and hull's views against runc's.
#[test]
fn pod_semantics_per_handler_match_runc() {
    if skip() {
        return;
    }
    let handlers = handlers();
    let node = Node::start("pod", &handlers).expect("containerd with the CRI plugin");
    let rt = rt();
    let mut seen_by: Vec<(&str, Seen)> = Vec::new();
    let mut failures = Vec::new();
    rt.block_on(async {
        let mut cli = cri::connect(&node.sock).await.expect("CRI client");
        for h in &handlers {
            let mut seen = Seen::new();
            match pod_checks(&node, &mut cli, h.name, &mut seen).await {
                Ok(()) => seen_by.push((h.name, seen)),
                Err(e) => failures.push(format!("handler {}: {e}", h.name)),
            }
        }
    });
    if !failures.is_empty() {
        panic!(
            "{}\n--- containerd log (tail):\n{}",
            failures.join("\n"),
            tail(&node.log(), 40)
        );
    }
    let runc = &seen_by
        .iter()
        .find(|(n, _)| *n == "runc")
        .expect("runc's view")
        .1;
    for (name, seen) in &seen_by {
        for (key, want, why) in DELIBERATE {
            if *name != "runc" {
                if let Some(got) = seen.get(key) {
                    assert_eq!(got, want, "{name}: {key} ({why})");
                    eprintln!(
                        "deliberate difference: {key}: runc {:?}, {name} {got:?} ({why})",
                        runc.get(key)
                    );
                }
            }
        }
        let diff: Vec<String> = runc
            .keys()
            .chain(seen.keys())
            .filter(|k| !DELIBERATE.iter().any(|(d, _, _)| d == k))
            .filter(|k| runc.get(*k) != seen.get(*k))
            .map(|k| format!("{k}: runc {:?} / {name} {:?}", runc.get(k), seen.get(k)))
            .collect();
        assert!(
            diff.is_empty(),
            "{name} differs from runc:\n{}",
            diff.join("\n")
        );
        eprintln!("handler {name}: {} checks, same as runc", seen.len());
    }
}

/// How many pods run at once in the concurrency test.
const MANY: usize = 20;

/// One small pod: sandbox, one container, an ExecSync, then every pod of
/// the batch waits for the others (all MANY run at once), then teardown.
async fn small_pod(
    node: Arc<Node>,
    mut cli: Client,
    handler: &'static str,
    barrier: Arc<tokio::sync::Barrier>,
) -> Result<(String, PodIds), String> {
    let uid = format!("{handler}-many-{}", host::next_n());
    let log_dir = node.dir.join("logs").join(&uid);
    fs::create_dir_all(&log_dir).map_err(|e| format!("mkdir {}: {e}", log_dir.display()))?;
    let sandbox = cri::sandbox_config(
        "many",
        &uid,
        &log_dir,
        &node.cgroup_parent,
        &[("hulltest-many", handler)],
    );
    let mut ids = PodIds::default();
    let result = small_pod_body(&node, &mut cli, handler, &sandbox, &mut ids, &barrier).await;
    let torn = if ids.sandbox.is_empty() {
        Ok(())
    } else {
        teardown(&mut cli, &ids.sandbox).await
    };
    result?;
    torn?;
    Ok((pod_cgroup(&sandbox), ids))
}

async fn small_pod_body(
    node: &Node,
    cli: &mut Client,
    handler: &str,
    sandbox: &v1::PodSandboxConfig,
    ids: &mut PodIds,
    barrier: &tokio::sync::Barrier,
) -> Result<(), String> {
    ids.sandbox = run_sandbox(cli, sandbox, handler).await?;
    let main = cri::container_config(
        "main",
        &["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
    );
    let cid = create_start(cli, &ids.sandbox, sandbox, main).await?;
    ids.containers.push(cid.clone());
    let h = sh(cli, &cid, "hostname").await?;
    ensure!(h == "hullpod", "hostname in a pod: {h:?}");
    let wait = tokio::time::timeout(Duration::from_secs(120), barrier.wait())
        .await
        .map_err(|_| "another pod of the batch never came up".to_string())?;
    if wait.is_leader() {
        // All MANY pods run now: one veth and one IP lease each.
        let veths = host::links_on_bridge(&node.bridge).len();
        let leases = node.ip_leases().len();
        ensure!(
            veths == MANY && leases == MANY,
            "{MANY} pods running: {veths} veths, {leases} IP leases"
        );
    }
    Ok(())
}

/// MANY pods created and removed concurrently through CRI, per handler,
/// leave nothing behind.
#[test]
fn many_pods_at_once_leave_nothing() {
    if skip() {
        return;
    }
    let handlers = handlers();
    let node = Arc::new(Node::start("many", &handlers).expect("containerd with the CRI plugin"));
    let rt = rt();
    let mut failures = Vec::new();
    rt.block_on(async {
        let cli = cri::connect(&node.sock).await.expect("CRI client");
        for h in &handlers {
            let barrier = Arc::new(tokio::sync::Barrier::new(MANY));
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..MANY {
                set.spawn(small_pod(
                    node.clone(),
                    cli.clone(),
                    h.name,
                    barrier.clone(),
                ));
            }
            let mut pods = Vec::new();
            while let Some(r) = set.join_next().await {
                match r {
                    Ok(Ok(p)) => pods.push(p),
                    Ok(Err(e)) => failures.push(format!("handler {}: {e}", h.name)),
                    Err(e) => failures.push(format!("handler {}: task: {e}", h.name)),
                }
            }
            if pods.len() != MANY {
                continue;
            }
            let left = eventually("nothing left after the batch", || async {
                let mut left = Vec::new();
                for (i, (cg, ids)) in pods.iter().enumerate() {
                    left.extend(leftovers(&node, h.name, cg, &ids.all(), i == 0));
                }
                if left.is_empty() {
                    Ok(())
                } else {
                    Err(left.join("\n  "))
                }
            })
            .await;
            match left {
                Ok(()) => eprintln!("handler {}: {MANY} pods at once, nothing left", h.name),
                Err(e) => failures.push(format!("handler {}: {e}", h.name)),
            }
        }
    });
    assert!(
        failures.is_empty(),
        "{}\n--- containerd log (tail):\n{}",
        failures.join("\n"),
        tail(&node.log(), 40)
    );
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
