//! The `hull` command line: runc's commands and flags over the hull library.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use hull::container::{self, delete::delete_by_id, Container, CreateOptions};
use hull::error::{Error, Result};
use hull::logging;
use hull::state::StateStore;

#[derive(Parser)]
#[command(
    name = "hull",
    about = "hull: a runc-compatible OCI container runtime",
    disable_version_flag = true
)]
struct Cli {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = "/run/hull")]
    root: PathBuf,
    /// Log file (default: stderr only).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format.
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log debug messages.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd for cgroups (a transient scope per container, over D-Bus).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility (auto|true|false).
    #[arg(id = "global_rootless", long = "rootless", hide = true)]
    _rootless: Option<String>,
    /// Path to the criu binary used by checkpoint and restore.
    #[arg(long = "criu", global = true, default_value = "criu")]
    criu: PathBuf,
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ListFormat {
    Table,
    Json,
}

#[derive(clap::Args, Clone, Default)]
struct CreateArgs {
    /// Container id.
    id: String,
    /// Path to the bundle (the directory holding config.json).
    #[arg(short = 'b', long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master (process.terminal).
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// File to write the container init's pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass N extra fds (3..3+N) into the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            keep_pty: false,
            systemd_cgroup: SYSTEMD_CGROUP.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// `--systemd-cgroup`, for the create options.
static SYSTEMD_CGROUP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// runc's `update` flags.
#[derive(clap::Args, Clone, Default)]
struct UpdateArgs {
    id: String,
    /// File with the resources (linux.resources JSON), or `-` for stdin; other flags are then ignored.
    #[arg(short = 'r', long = "resources")]
    resources: Option<PathBuf>,
    /// Memory limit (in bytes; k, m, g suffixes; -1 unlimited).
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Total memory usage (memory + swap); -1 for unlimited swap.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Memory reservation or soft limit.
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Kernel memory limit (ignored by current kernels, like runc).
    #[arg(long = "kernel-memory", allow_hyphen_values = true)]
    kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit.
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight vs. other containers).
    #[arg(long = "cpu-share", visible_alias = "cpu-shares")]
    cpu_shares: Option<u64>,
    /// CPU CFS hardcap limit (in usecs) per period; -1 unlimited.
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU CFS period (in usecs).
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    /// CPU realtime period (in usecs).
    #[arg(long = "cpu-rt-period")]
    cpu_rt_period: Option<u64>,
    /// CPU realtime hardcap limit (in usecs) per period.
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    cpu_rt_runtime: Option<i64>,
    /// CPUs to use.
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Maximum number of pids; -1 unlimited.
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block IO weight (10..1000).
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
}

impl UpdateArgs {
    fn options(&self) -> container::update::UpdateOptions {
        container::update::UpdateOptions {
            resources_file: self.resources.clone(),
            memory: self.memory.clone(),
            memory_swap: self.memory_swap.clone(),
            memory_reservation: self.memory_reservation.clone(),
            kernel_memory: self.kernel_memory.clone(),
            kernel_memory_tcp: self.kernel_memory_tcp.clone(),
            cpu_shares: self.cpu_shares,
            cpu_quota: self.cpu_quota,
            cpu_period: self.cpu_period,
            cpu_rt_period: self.cpu_rt_period,
            cpu_rt_runtime: self.cpu_rt_runtime,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            pids_limit: self.pids_limit,
            blkio_weight: self.blkio_weight,
        }
    }
}

#[derive(clap::Args, Clone, Default)]
struct ExecArgs {
    /// Container id.
    id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
    /// A JSON file with a full OCI process object.
    #[arg(short = 'p', long)]
    process: Option<PathBuf>,
    /// Allocate a pty.
    #[arg(short = 't', long)]
    tty: bool,
    /// Unix socket that receives the pty master.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    cwd: Option<String>,
    /// KEY=value to add to the environment (repeatable).
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// uid[:gid] to run as.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Additional gids (repeatable).
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Capabilities to add (repeatable).
    #[arg(short = 'c', long = "cap")]
    cap: Vec<String>,
    /// Set no_new_privileges.
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// AppArmor profile.
    #[arg(long)]
    apparmor: Option<String>,
    /// SELinux process label.
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// Do not wait for the process.
    #[arg(short = 'd', long)]
    detach: bool,
    /// File to write the process's host pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Pass N extra fds (3..3+N) into the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Allow exec into a paused container.
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
}

impl ExecArgs {
    fn options(&self) -> container::exec::ExecOptions {
        container::exec::ExecOptions {
            id: self.id.clone(),
            process: self.process.clone(),
            args: self.command.clone(),
            tty: self.tty,
            console_socket: self.console_socket.clone(),
            cwd: self.cwd.clone(),
            env: self.env.clone(),
            user: self.user.clone(),
            additional_gids: self.additional_gids.clone(),
            caps: self.cap.clone(),
            no_new_privs: self.no_new_privs,
            apparmor: self.apparmor.clone(),
            process_label: self.process_label.clone(),
            detach: self.detach,
            pid_file: self.pid_file.clone(),
            preserve_fds: self.preserve_fds,
            ignore_paused: self.ignore_paused,
        }
    }
}

#[derive(clap::Args, Clone, Default)]
struct CriuArgs {
    /// Directory for the CRIU image files (default: ./checkpoint).
    #[arg(long = "image-path")]
    image_path: Option<PathBuf>,
    /// Directory for CRIU's work files and logs (default: the image path).
    #[arg(long = "work-path")]
    work_path: Option<PathBuf>,
    /// Allow open TCP connections.
    #[arg(long = "tcp-established")]
    tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long = "ext-unix-sk")]
    ext_unix_sk: bool,
    /// Allow shell jobs.
    #[arg(long = "shell-job")]
    shell_job: bool,
    /// Handle file locks.
    #[arg(long = "file-locks")]
    file_locks: bool,
    /// Cgroup mode for CRIU: soft, full, strict or ignore.
    #[arg(long = "manage-cgroups-mode")]
    manage_cgroups_mode: Option<String>,
}

impl CriuArgs {
    fn image_path(&self) -> PathBuf {
        self.image_path.clone().unwrap_or_else(|| {
            std::env::current_dir()
                .unwrap_or_else(|_| PathBuf::from("."))
                .join("checkpoint")
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Write a default config.json into the bundle.
    Spec {
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
        /// A config for running without root (user namespace, id maps).
        #[arg(long)]
        rootless: bool,
    },
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Start a created container's process.
    Start { id: String },
    /// Create and start a container; in the foreground, wait for it.
    Run {
        #[command(flatten)]
        args: CreateArgs,
        /// Return once the container is started.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Do not delete the container after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Print a container's state as JSON.
    State { id: String },
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Print only the ids.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Send a signal (default SIGTERM) to a container's init.
    Kill {
        id: String,
        signal: Option<String>,
        /// Signal every process in the container.
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Run a process in a running container.
    Exec(Box<ExecArgs>),
    /// Print the features this build of hull supports (runtime-spec JSON).
    Features,
    /// Report what this host supports, with a verdict per item.
    Check {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Checkpoint a running container with CRIU.
    Checkpoint {
        id: String,
        #[command(flatten)]
        criu: CriuArgs,
        /// Directory of a previous (pre-)dump.
        #[arg(long = "parent-path")]
        parent_path: Option<PathBuf>,
        /// Leave the container running after the checkpoint.
        #[arg(long = "leave-running")]
        leave_running: bool,
        /// Only dump memory (iterative migration); the container keeps running.
        #[arg(long = "pre-dump")]
        pre_dump: bool,
    },
    /// Restore a container from a CRIU checkpoint.
    Restore {
        #[command(flatten)]
        args: CreateArgs,
        #[command(flatten)]
        criu: CriuArgs,
        /// Return once the container is restored.
        #[arg(short = 'd', long)]
        detach: bool,
    },
    /// Change a container's resource limits.
    Update(UpdateArgs),
    /// Print resource usage and OOM events as JSON lines.
    Events {
        id: String,
        /// Print one stats event and exit.
        #[arg(long)]
        stats: bool,
        /// How often to print stats (e.g. 5s, 500ms).
        #[arg(long, default_value = "5s")]
        interval: String,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List a container's processes (`ps` options after `--`).
    Ps {
        id: String,
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Options passed to ps (default -ef), after the id like runc
        /// (`ps ID -o pid,comm`) or after `--`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Delete a container and everything it holds.
    Delete {
        id: String,
        /// Kill a running container first.
        #[arg(short = 'f', long)]
        force: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    if cli.version {
        println!(
            "hull version {}\ncommit: {}\nspec: {}",
            hull::VERSION,
            hull::COMMIT,
            hull::config::OCI_VERSION
        );
        return;
    }
    let format = match cli.log_format {
        LogFormat::Text => logging::Format::Text,
        LogFormat::Json => logging::Format::Json,
    };
    if let Err(e) = logging::init(cli.log.as_deref(), format, cli.debug) {
        eprintln!("hull: opening log file: {e}");
        std::process::exit(1);
    }
    let Some(command) = cli.command else {
        eprintln!("hull: no command given (try `hull --help`)");
        std::process::exit(1);
    };
    let store = StateStore::new(&cli.root);
    SYSTEMD_CGROUP.store(cli.systemd_cgroup, std::sync::atomic::Ordering::Relaxed);
    match dispatch(&store, command, cli.criu) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            logging::error(&e.to_string());
            std::process::exit(1);
        }
    }
}

fn dispatch(store: &StateStore, command: Command, criu: PathBuf) -> Result<i32> {
    use container::checkpoint::{restore, CheckpointOptions, RestoreOptions};
    match command {
        Command::Checkpoint {
            id,
            criu: c,
            parent_path,
            leave_running,
            pre_dump,
        } => {
            let o = CheckpointOptions {
                criu,
                image_path: c.image_path(),
                work_path: c.work_path.clone(),
                parent_path,
                leave_running,
                tcp_established: c.tcp_established,
                ext_unix_sk: c.ext_unix_sk,
                shell_job: c.shell_job,
                file_locks: c.file_locks,
                pre_dump,
                manage_cgroups_mode: c.manage_cgroups_mode.clone(),
            };
            Container::load(store, &id)?.checkpoint(&o).map(|_| 0)
        }
        Command::Restore {
            args,
            criu: c,
            detach,
        } => {
            let o = RestoreOptions {
                create: args.options(),
                criu,
                image_path: c.image_path(),
                work_path: c.work_path.clone(),
                detach,
                tcp_established: c.tcp_established,
                ext_unix_sk: c.ext_unix_sk,
                shell_job: c.shell_job,
                file_locks: c.file_locks,
                manage_cgroups_mode: c.manage_cgroups_mode.clone(),
            };
            restore(store, &o)
        }
        Command::Spec { bundle, rootless } => spec(&bundle, rootless),
        Command::Create(args) => container::create(store, &args.options()).map(|_| 0),
        Command::Start { id } => Container::load(store, &id)?.start().map(|_| 0),
        Command::Run { args, detach, keep } => {
            container::run::run(store, &args.options(), detach, keep)
        }
        Command::State { id } => {
            let c = Container::load(store, &id)?;
            let text = serde_json::to_string_pretty(&c.oci_state())
                .map_err(|e| Error::Usage(e.to_string()))?;
            println!("{text}");
            Ok(0)
        }
        Command::List { format, quiet } => list(store, format, quiet),
        Command::Kill { id, signal, all } => {
            let name = signal.as_deref().unwrap_or("SIGTERM");
            let sig = hull::signal::parse(name)
                .ok_or_else(|| Error::Usage(format!("unknown signal {name:?}")))?;
            Container::load(store, &id)?.kill(sig, all).map(|_| 0)
        }
        Command::Delete { id, force } => delete_by_id(store, &id, force).map(|_| 0),
        Command::Update(args) => Container::load(store, &args.id)?
            .update(&args.options())
            .map(|_| 0),
        Command::Events {
            id,
            stats,
            interval,
        } => {
            let every = container::events::parse_duration(&interval).ok_or_else(|| {
                Error::Usage(format!("--interval {interval:?}: not a duration like 5s"))
            })?;
            let c = Container::load(store, &id)?;
            c.events(stats, every, &mut std::io::stdout()).map(|_| 0)
        }
        Command::Pause { id } => Container::load(store, &id)?.pause().map(|_| 0),
        Command::Resume { id } => Container::load(store, &id)?.resume().map(|_| 0),
        Command::Ps {
            id,
            format,
            ps_args,
        } => {
            let f = match format {
                ListFormat::Table => container::ps::PsFormat::Table,
                ListFormat::Json => container::ps::PsFormat::Json,
            };
            let text = Container::load(store, &id)?.ps(f, &ps_args)?;
            std::io::stdout()
                .write_all(text.as_bytes())
                .map_err(|e| Error::io("stdout", e))?;
            Ok(0)
        }
        Command::Exec(args) => container::exec::exec(store, &args.options()),
        Command::Check { json } => {
            let items = hull::check::run(&criu);
            if json {
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
        Command::Features => {
            let text = serde_json::to_string_pretty(&hull::features::features())
                .map_err(|e| Error::Usage(e.to_string()))?;
            println!("{text}");
            Ok(0)
        }
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

fn list(store: &StateStore, format: ListFormat, quiet: bool) -> Result<i32> {
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
    } else if format == ListFormat::Json {
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
