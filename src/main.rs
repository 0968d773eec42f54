//! The `hull` command line: runc's commands and flags over the hull library.
// No Rust runtime start-up: see `main` below.
#![no_main]

use std::io::Write;
use std::path::PathBuf;

use hull::cli::{self, opt, switch, App, Cmd, Flag, Outcome, Parsed};
use hull::container::{self, delete::delete_by_id, Container, CreateOptions};
use hull::error::{Error, Result};
use hull::logging;
use hull::state::StateStore;

static GLOBALS: [Flag; 8] = [
    opt(
        "root",
        None,
        "DIR",
        "Root directory for container state (default /run/hull; $XDG_RUNTIME_DIR/hull when not root).",
    ),
    opt("log", None, "FILE", "Log file (default: stderr only)."),
    opt(
        "log-format",
        None,
        "text|json",
        "Log format (default text).",
    ),
    switch("debug", None, "Log debug messages."),
    switch(
        "systemd-cgroup",
        None,
        "Use systemd for cgroups (a transient scope per container, over D-Bus).",
    ),
    opt(
        "rootless",
        None,
        "auto|true|false",
        "Cgroups as an unprivileged user: only where delegated (default auto: not root, or in a user namespace).",
    ),
    opt(
        "criu",
        None,
        "PATH",
        "The criu binary used by checkpoint and restore (default criu).",
    ),
    switch("version", Some('v'), "Print the version."),
];

/// create, run and restore.
const CREATE_FLAGS: [Flag; 6] = [
    opt(
        "bundle",
        Some('b'),
        "DIR",
        "Path to the bundle (the directory holding config.json; default .).",
    ),
    opt(
        "console-socket",
        None,
        "PATH",
        "Unix socket that receives the pty master (process.terminal).",
    ),
    opt(
        "pid-file",
        None,
        "FILE",
        "File to write the container init's pid to.",
    ),
    switch(
        "no-pivot",
        None,
        "Use MS_MOVE + chroot instead of pivot_root.",
    ),
    switch(
        "no-new-keyring",
        None,
        "Do not create a new session keyring.",
    ),
    opt(
        "preserve-fds",
        None,
        "N",
        "Pass N extra fds (3..3+N) into the container.",
    ),
];
static CREATE: [Flag; 6] = CREATE_FLAGS;
static RUN: [Flag; 8] = {
    let c = CREATE_FLAGS;
    let [a, b, d, e, f, g] = c;
    [
        a,
        b,
        d,
        e,
        f,
        g,
        switch("detach", Some('d'), "Return once the container is started."),
        switch("keep", None, "Do not delete the container after it exits."),
    ]
};
/// checkpoint and restore.
const CRIU_FLAGS: [Flag; 7] = [
    opt(
        "image-path",
        None,
        "DIR",
        "Directory for the CRIU image files (default ./checkpoint).",
    ),
    opt(
        "work-path",
        None,
        "DIR",
        "Directory for CRIU's work files and logs (default: the image path).",
    ),
    switch("tcp-established", None, "Allow open TCP connections."),
    switch("ext-unix-sk", None, "Allow external unix sockets."),
    switch("shell-job", None, "Allow shell jobs."),
    switch("file-locks", None, "Handle file locks."),
    opt(
        "manage-cgroups-mode",
        None,
        "MODE",
        "Cgroup mode for CRIU: soft, full, strict or ignore.",
    ),
];
static CHECKPOINT: [Flag; 10] = {
    let [a, b, c, d, e, f, g] = CRIU_FLAGS;
    [
        a,
        b,
        c,
        d,
        e,
        f,
        g,
        opt(
            "parent-path",
            None,
            "DIR",
            "Directory of a previous (pre-)dump.",
        ),
        switch(
            "leave-running",
            None,
            "Leave the container running after the checkpoint.",
        ),
        switch(
            "pre-dump",
            None,
            "Only dump memory (iterative migration); the container keeps running.",
        ),
    ]
};
static RESTORE: [Flag; 14] = {
    let [a, b, c, d, e, f] = CREATE_FLAGS;
    let [g, h, i, j, k, l, m] = CRIU_FLAGS;
    [
        a,
        b,
        c,
        d,
        e,
        f,
        g,
        h,
        i,
        j,
        k,
        l,
        m,
        switch(
            "detach",
            Some('d'),
            "Return once the container is restored.",
        ),
    ]
};
static LIST: [Flag; 2] = [
    opt(
        "format",
        Some('f'),
        "table|json",
        "Output format (default table).",
    ),
    switch("quiet", Some('q'), "Print only the ids."),
];
static KILL: [Flag; 1] = [switch(
    "all",
    Some('a'),
    "Signal every process in the container.",
)];
static EXEC: [Flag; 15] = [
    opt(
        "process",
        Some('p'),
        "FILE",
        "A JSON file with a full OCI process object.",
    ),
    switch("tty", Some('t'), "Allocate a pty."),
    opt(
        "console-socket",
        None,
        "PATH",
        "Unix socket that receives the pty master.",
    ),
    opt(
        "cwd",
        None,
        "DIR",
        "Working directory inside the container.",
    ),
    opt(
        "env",
        Some('e'),
        "KEY=VALUE",
        "Add to the environment (repeatable).",
    ),
    opt("user", Some('u'), "UID[:GID]", "User to run as."),
    opt(
        "additional-gids",
        Some('g'),
        "GID",
        "Additional gids (repeatable).",
    ),
    opt("cap", Some('c'), "CAP", "Capabilities to add (repeatable)."),
    switch("no-new-privs", None, "Set no_new_privileges."),
    opt("apparmor", None, "PROFILE", "AppArmor profile."),
    opt("process-label", None, "LABEL", "SELinux process label."),
    switch("detach", Some('d'), "Do not wait for the process."),
    opt(
        "pid-file",
        None,
        "FILE",
        "File to write the process's host pid to.",
    ),
    opt(
        "preserve-fds",
        None,
        "N",
        "Pass N extra fds (3..3+N) into the process.",
    ),
    switch("ignore-paused", None, "Allow exec into a paused container."),
];
static UPDATE: [Flag; 15] = [
    opt("resources", Some('r'), "FILE", "File with the resources (linux.resources JSON), or - for stdin; other flags are then ignored."),
    opt("memory", None, "BYTES", "Memory limit (k, m, g suffixes; -1 unlimited)."),
    opt("memory-swap", None, "BYTES", "Total memory usage (memory + swap); -1 for unlimited swap."),
    opt("memory-reservation", None, "BYTES", "Memory reservation or soft limit."),
    opt("kernel-memory", None, "BYTES", "Kernel memory limit (ignored by current kernels, like runc)."),
    opt("kernel-memory-tcp", None, "BYTES", "Kernel TCP buffer memory limit."),
    opt("cpu-share", None, "N", "CPU shares (relative weight vs. other containers).").alias(&["cpu-shares"]),
    opt("cpu-quota", None, "USECS", "CPU CFS hardcap limit per period; -1 unlimited."),
    opt("cpu-period", None, "USECS", "CPU CFS period."),
    opt("cpu-rt-period", None, "USECS", "CPU realtime period."),
    opt("cpu-rt-runtime", None, "USECS", "CPU realtime hardcap limit per period."),
    opt("cpuset-cpus", None, "CPUS", "CPUs to use."),
    opt("cpuset-mems", None, "NODES", "Memory nodes to use."),
    opt("pids-limit", None, "N", "Maximum number of pids; -1 unlimited."),
    opt("blkio-weight", None, "N", "Block IO weight (10..1000)."),
];
static EVENTS: [Flag; 2] = [
    switch("stats", None, "Print one stats event and exit."),
    opt(
        "interval",
        None,
        "DURATION",
        "How often to print stats (default 5s; e.g. 500ms).",
    ),
];
static PS: [Flag; 1] = [opt(
    "format",
    Some('f'),
    "table|json",
    "Output format (default table).",
)];
static DELETE: [Flag; 1] = [switch(
    "force",
    Some('f'),
    "Kill a running container first.",
)];
static SPEC: [Flag; 2] = [
    opt(
        "bundle",
        Some('b'),
        "DIR",
        "The bundle directory (default .).",
    ),
    switch(
        "rootless",
        None,
        "A config for running without root (user namespace, id maps).",
    ),
];
static CHECK: [Flag; 1] = [switch("json", None, "Machine-readable output.")];

const fn cmd(
    name: &'static str,
    about: &'static str,
    args: &'static [&'static str],
    flags: &'static [Flag],
) -> Cmd {
    Cmd {
        name,
        aliases: &[],
        about,
        args,
        trailing: None,
        flags,
    }
}

static CMDS: [Cmd; 19] = [
    cmd(
        "spec",
        "Write a default config.json into the bundle.",
        &[],
        &SPEC,
    ),
    cmd(
        "create",
        "Create a container; its process waits for `start`.",
        &["ID"],
        &CREATE,
    ),
    cmd(
        "start",
        "Start a created container's process.",
        &["ID"],
        &[],
    ),
    cmd(
        "run",
        "Create and start a container; in the foreground, wait for it.",
        &["ID"],
        &RUN,
    ),
    cmd("state", "Print a container's state as JSON.", &["ID"], &[]),
    Cmd {
        aliases: &["ls"],
        ..cmd("list", "List containers.", &[], &LIST)
    },
    cmd(
        "kill",
        "Send a signal (default SIGTERM) to a container's init.",
        &["ID", "[SIGNAL]"],
        &KILL,
    ),
    Cmd {
        trailing: Some("COMMAND"),
        ..cmd(
            "exec",
            "Run a process in a running container.",
            &["ID"],
            &EXEC,
        )
    },
    cmd(
        "features",
        "Print the features this build of hull supports (runtime-spec JSON).",
        &[],
        &[],
    ),
    cmd(
        "check",
        "Report what this host supports, with a verdict per item.",
        &[],
        &CHECK,
    ),
    cmd(
        "checkpoint",
        "Checkpoint a running container with CRIU.",
        &["ID"],
        &CHECKPOINT,
    ),
    cmd(
        "restore",
        "Restore a container from a CRIU checkpoint.",
        &["ID"],
        &RESTORE,
    ),
    cmd(
        "update",
        "Change a container's resource limits.",
        &["ID"],
        &UPDATE,
    ),
    cmd(
        "events",
        "Print resource usage and OOM events as JSON lines.",
        &["ID"],
        &EVENTS,
    ),
    cmd(
        "pause",
        "Freeze every process of a container.",
        &["ID"],
        &[],
    ),
    cmd("resume", "Thaw a paused container.", &["ID"], &[]),
    Cmd {
        trailing: Some("PS_OPTIONS"),
        ..cmd(
            "ps",
            "List a container's processes (ps options after the id, or after --; default -ef).",
            &["ID"],
            &PS,
        )
    },
    cmd(
        "delete",
        "Delete a container and everything it holds.",
        &["ID"],
        &DELETE,
    ),
    cmd("help", "Describe a command.", &["[COMMAND]"], &[]),
];

static APP: App = App {
    name: "hull",
    about: "hull: a runc-compatible OCI container runtime",
    globals: &GLOBALS,
    cmds: &CMDS,
};

fn usage_error(msg: &str) -> ! {
    eprintln!("hull: {msg}");
    std::process::exit(2)
}

/// The process entry point, called by libc. std's runtime start-up is
/// skipped: on Linux it reads and parses /proc/self/maps to find the main
/// thread's stack guard (a tenth of a millisecond of every call, for a
/// nicer stack-overflow message). What of it matters is done in
/// [`hull::sys::process_start`]: fds 0-2 open, SIGPIPE ignored.
/// `std::env::args` does not depend on it (glibc hands argv to std).
#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    hull::sys::process_start();
    run();
    0
}

fn run() {
    let p = match cli::parse(&APP, std::env::args().skip(1)) {
        Ok(Outcome::Run(p)) => p,
        Ok(Outcome::Help(text)) => {
            print!("{text}");
            return;
        }
        Err(e) => usage_error(&e),
    };
    if p.has("version") {
        println!(
            "hull version {}\ncommit: {}\nspec: {}",
            hull::VERSION,
            hull::COMMIT,
            hull::config::OCI_VERSION
        );
        return;
    }
    let format = match p.value("log-format").unwrap_or("text") {
        "text" => logging::Format::Text,
        "json" => logging::Format::Json,
        other => usage_error(&format!("--log-format: {other:?} is not text or json")),
    };
    let log = p.value("log").map(PathBuf::from);
    if let Err(e) = logging::init(log.as_deref(), format, p.has("debug")) {
        eprintln!("hull: opening log file: {e}");
        std::process::exit(1);
    }
    let Some(command) = p.cmd else {
        eprintln!("hull: no command given (try `hull --help`)");
        std::process::exit(1);
    };
    if let Err(e) = hull::rootless::Mode::parse(p.value("rootless")) {
        usage_error(&e.to_string());
    }
    let store = match p.value("root") {
        Some(root) => StateStore::new(root),
        None => {
            // As runc: $XDG_RUNTIME_DIR/hull when not root.
            let (root, xdg) = hull::rootless::default_root(|k| std::env::var(k).ok());
            if xdg {
                if let Err(e) = hull::rootless::prepare_xdg_root(&root) {
                    logging::error(&e.to_string());
                    std::process::exit(1);
                }
            }
            StateStore::new(root)
        }
    };
    match dispatch(&store, command.name, &p) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            logging::error(&e.to_string());
            std::process::exit(1);
        }
    }
}

fn path(p: &Parsed, long: &str) -> Option<PathBuf> {
    p.value(long).map(PathBuf::from)
}

fn usage(e: String) -> Error {
    Error::Usage(e)
}

fn create_options(p: &Parsed) -> Result<CreateOptions> {
    Ok(CreateOptions {
        id: p.arg(0),
        bundle: path(p, "bundle").unwrap_or_else(|| PathBuf::from(".")),
        pid_file: path(p, "pid-file"),
        console_socket: path(p, "console-socket"),
        no_pivot: p.has("no-pivot"),
        no_new_keyring: p.has("no-new-keyring"),
        preserve_fds: p.num("preserve-fds").map_err(usage)?.unwrap_or(0),
        keep_pty: false,
        systemd_cgroup: p.has("systemd-cgroup"),
        rootless: hull::rootless::Mode::parse(p.value("rootless"))?.enabled(),
        autostart: false,
        stdio: None,
    })
}

fn image_path(p: &Parsed) -> PathBuf {
    path(p, "image-path").unwrap_or_else(|| {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("."))
            .join("checkpoint")
    })
}

fn list_format(p: &Parsed) -> Result<bool> {
    match p.value("format").unwrap_or("table") {
        "table" => Ok(false),
        "json" => Ok(true),
        other => Err(Error::Usage(format!(
            "--format: {other:?} is not table or json"
        ))),
    }
}

fn dispatch(store: &StateStore, command: &str, p: &Parsed) -> Result<i32> {
    use container::checkpoint::{restore, CheckpointOptions, RestoreOptions};
    let id = p.arg(0);
    let criu = path(p, "criu").unwrap_or_else(|| PathBuf::from("criu"));
    match command {
        "checkpoint" => {
            let o = CheckpointOptions {
                criu,
                image_path: image_path(p),
                work_path: path(p, "work-path"),
                parent_path: path(p, "parent-path"),
                leave_running: p.has("leave-running"),
                tcp_established: p.has("tcp-established"),
                ext_unix_sk: p.has("ext-unix-sk"),
                shell_job: p.has("shell-job"),
                file_locks: p.has("file-locks"),
                pre_dump: p.has("pre-dump"),
                manage_cgroups_mode: p.value("manage-cgroups-mode").map(String::from),
            };
            Container::load(store, &id)?.checkpoint(&o).map(|_| 0)
        }
        "restore" => {
            let o = RestoreOptions {
                create: create_options(p)?,
                criu,
                image_path: image_path(p),
                work_path: path(p, "work-path"),
                detach: p.has("detach"),
                tcp_established: p.has("tcp-established"),
                ext_unix_sk: p.has("ext-unix-sk"),
                shell_job: p.has("shell-job"),
                file_locks: p.has("file-locks"),
                manage_cgroups_mode: p.value("manage-cgroups-mode").map(String::from),
            };
            restore(store, &o)
        }
        "spec" => spec(
            &path(p, "bundle").unwrap_or_else(|| PathBuf::from(".")),
            p.has("rootless"),
        ),
        "create" => container::create(store, &create_options(p)?).map(|_| 0),
        "start" => Container::load(store, &id)?.start().map(|_| 0),
        "run" => container::run::run(store, &create_options(p)?, p.has("detach"), p.has("keep")),
        "state" => {
            let c = Container::load(store, &id)?;
            let text = serde_json::to_string_pretty(&c.oci_state())
                .map_err(|e| Error::Usage(e.to_string()))?;
            println!("{text}");
            Ok(0)
        }
        "list" => list(store, list_format(p)?, p.has("quiet")),
        "kill" => {
            let name = p.args.get(1).map_or("SIGTERM", String::as_str);
            let sig = hull::signal::parse(name)
                .ok_or_else(|| Error::Usage(format!("unknown signal {name:?}")))?;
            Container::load(store, &id)?
                .kill(sig, p.has("all"))
                .map(|_| 0)
        }
        "delete" => delete_by_id(store, &id, p.has("force")).map(|_| 0),
        "update" => {
            let o = container::update::UpdateOptions {
                resources_file: path(p, "resources"),
                memory: p.value("memory").map(String::from),
                memory_swap: p.value("memory-swap").map(String::from),
                memory_reservation: p.value("memory-reservation").map(String::from),
                kernel_memory: p.value("kernel-memory").map(String::from),
                kernel_memory_tcp: p.value("kernel-memory-tcp").map(String::from),
                cpu_shares: p.num("cpu-share").map_err(usage)?,
                cpu_quota: p.num("cpu-quota").map_err(usage)?,
                cpu_period: p.num("cpu-period").map_err(usage)?,
                cpu_rt_period: p.num("cpu-rt-period").map_err(usage)?,
                cpu_rt_runtime: p.num("cpu-rt-runtime").map_err(usage)?,
                cpuset_cpus: p.value("cpuset-cpus").map(String::from),
                cpuset_mems: p.value("cpuset-mems").map(String::from),
                pids_limit: p.num("pids-limit").map_err(usage)?,
                blkio_weight: p.num("blkio-weight").map_err(usage)?,
            };
            Container::load(store, &id)?.update(&o).map(|_| 0)
        }
        "events" => {
            let interval = p.value("interval").unwrap_or("5s");
            let every = container::events::parse_duration(interval).ok_or_else(|| {
                Error::Usage(format!("--interval {interval:?}: not a duration like 5s"))
            })?;
            let c = Container::load(store, &id)?;
            c.events(p.has("stats"), every, &mut std::io::stdout())
                .map(|_| 0)
        }
        "pause" => Container::load(store, &id)?.pause().map(|_| 0),
        "resume" => Container::load(store, &id)?.resume().map(|_| 0),
        "ps" => {
            let f = if list_format(p)? {
                container::ps::PsFormat::Json
            } else {
                container::ps::PsFormat::Table
            };
            let text = Container::load(store, &id)?.ps(f, &p.trailing)?;
            std::io::stdout()
                .write_all(text.as_bytes())
                .map_err(|e| Error::io("stdout", e))?;
            Ok(0)
        }
        "exec" => {
            let o = container::exec::ExecOptions {
                id,
                process: path(p, "process"),
                args: p.trailing.clone(),
                tty: p.has("tty"),
                console_socket: path(p, "console-socket"),
                cwd: p.value("cwd").map(String::from),
                env: p.values("env"),
                user: p.value("user").map(String::from),
                additional_gids: p.nums("additional-gids").map_err(usage)?,
                caps: p.values("cap"),
                no_new_privs: p.has("no-new-privs"),
                apparmor: p.value("apparmor").map(String::from),
                process_label: p.value("process-label").map(String::from),
                detach: p.has("detach"),
                pid_file: path(p, "pid-file"),
                preserve_fds: p.num("preserve-fds").map_err(usage)?.unwrap_or(0),
                ignore_paused: p.has("ignore-paused"),
                stdio: None,
            };
            container::exec::exec(store, &o)
        }
        "check" => {
            let items = hull::check::run(&criu);
            if p.has("json") {
                let text = serde_json::to_string_pretty(&items)
                    .map_err(|e| Error::Usage(e.to_string()))?;
                println!("{text}");
            } else {
                print!("{}", hull::check::render(&items));
            }
            let missing = items
                .iter()
                .any(|i| i.verdict == hull::check::Verdict::Missing);
            Ok(i32::from(missing))
        }
        "features" => {
            let text = serde_json::to_string_pretty(&hull::features::features())
                .map_err(|e| Error::Usage(e.to_string()))?;
            println!("{text}");
            Ok(0)
        }
        // `help` is answered by the parser; anything else is not in CMDS.
        other => Err(Error::Usage(format!("unknown command {other:?}"))),
    }
}

fn spec(bundle: &std::path::Path, rootless: bool) -> Result<i32> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(Error::Usage(format!(
            "{} already exists; remove it first",
            path.display()
        )));
    }
    let text = serde_json::to_string_pretty(&hull::config::default_spec(rootless))
        .map_err(|e| Error::Usage(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .map_err(|e| Error::io(&path, e))?;
    Ok(0)
}

fn owner_name(path: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(path).map(|m| m.uid()).unwrap_or(0);
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

fn list(store: &StateStore, json: bool, quiet: bool) -> Result<i32> {
    let mut states = Vec::new();
    for id in store.list()? {
        if let Ok(c) = Container::load(store, &id) {
            let mut s = c.oci_state();
            s.owner = owner_name(&store.dir(&id));
            states.push(s);
        }
    }
    let mut out = String::new();
    if quiet {
        for s in &states {
            out.push_str(&s.id);
            out.push('\n');
        }
    } else if json {
        out = serde_json::to_string(&states).map_err(|e| Error::Usage(e.to_string()))?;
        out.push('\n');
    } else {
        let mut rows = vec![[
            "ID".to_string(),
            "PID".into(),
            "STATUS".into(),
            "BUNDLE".into(),
            "CREATED".into(),
            "OWNER".into(),
        ]];
        for s in &states {
            rows.push([
                s.id.clone(),
                s.pid.to_string(),
                s.status.to_string(),
                s.bundle.display().to_string(),
                s.created.clone(),
                s.owner.clone(),
            ]);
        }
        // Like Go's tabwriter(minwidth 12, padding 3) that runc uses.
        let mut widths = [0usize; 6];
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max((cell.len() + 3).max(12));
            }
        }
        for r in &rows {
            let mut line = String::new();
            for (i, cell) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}", w = widths[i]));
                }
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    std::io::stdout()
        .write_all(out.as_bytes())
        .map_err(|e| Error::io("stdout", e))?;
    Ok(0)
}
