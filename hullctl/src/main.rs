//! hullctl: the CLI (thin: parsing and printing; the work is in the library).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use hullctl::container::{self, record, RunOptions};
use hullctl::error::{Error, Result};
use hullctl::image::{self, archive};
use hullctl::store::Store;

#[derive(Parser)]
#[command(name = "hullctl", version = hull::VERSION, about = "Images and containers without a daemon, on the hull runtime")]
struct Cli {
    /// The store: blobs, layers, images, containers.
    #[arg(long, global = true, default_value = hullctl::store::DEFAULT_ROOT)]
    root: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pull an image from a registry (plain HTTP for localhost ones).
    Pull {
        reference: String,
        /// Print nothing but the image id.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Keep credentials for a registry (docker's config.json:
    /// $DOCKER_CONFIG, else ~/.docker); pull hands them to the registry's
    /// token service or basic auth.
    Login {
        #[arg(short, long)]
        username: String,
        #[arg(short, long)]
        password: Option<String>,
        /// Read the password from stdin.
        #[arg(long)]
        password_stdin: bool,
        server: String,
    },
    /// Forget a registry's credentials.
    Logout {
        server: String,
    },
    /// Load images from a docker-save or OCI layout tarball.
    Load {
        #[arg(short, long)]
        input: PathBuf,
    },
    /// Save images as an OCI layout tarball (docker and podman load it).
    Save {
        #[arg(short, long)]
        output: PathBuf,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Make a one-layer image from a rootfs tarball.
    Import {
        file: PathBuf,
        reference: String,
    },
    /// List images.
    Images(Listing),
    /// Show an image or a container as JSON.
    Inspect {
        names: Vec<String>,
    },
    /// Remove images (their layers stay while another image uses them).
    Rmi {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Give an image another name.
    Tag {
        source: String,
        target: String,
    },
    /// Show an image's history.
    History {
        image: String,
        #[arg(long)]
        format: Option<String>,
    },
    /// Store maintenance.
    System {
        #[command(subcommand)]
        cmd: SystemCmd,
    },
    /// Manage networks.
    Network {
        #[command(subcommand)]
        cmd: NetworkCmd,
    },
    /// Create a container from an image.
    Create(CreateArgs),
    /// Create and start a container.
    Run {
        /// Remove the container when it exits.
        #[arg(long)]
        rm: bool,
        /// Run in the background; print the container id.
        #[arg(short, long)]
        detach: bool,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Start stopped or created containers (in the background).
    Start {
        names: Vec<String>,
    },
    /// Stop containers: the image's StopSignal, then SIGKILL after -t seconds.
    Stop {
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Send a signal to containers.
    Kill {
        #[arg(short, long, default_value = "SIGKILL")]
        signal: String,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Run a command in a running container.
    Exec {
        #[arg(short, long)]
        interactive: bool,
        #[arg(short, long)]
        tty: bool,
        #[arg(short, long)]
        env: Vec<String>,
        #[arg(short, long)]
        user: Option<String>,
        #[arg(short, long)]
        workdir: Option<String>,
        #[arg(short, long)]
        detach: bool,
        name: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<String>,
    },
    /// Print a container's output (detached containers): its stdout to
    /// stdout, its stderr to stderr.
    Logs {
        /// Follow the log until the container exits.
        #[arg(short, long)]
        follow: bool,
        /// Show only the last N lines (or "all").
        #[arg(short = 'n', long, default_value = "all")]
        tail: String,
        /// Prefix each line with its RFC 3339 timestamp.
        #[arg(short, long)]
        timestamps: bool,
        name: String,
    },
    /// List containers.
    Ps {
        #[arg(short, long)]
        all: bool,
        #[command(flatten)]
        listing: Listing,
    },
    /// Remove containers.
    Rm {
        #[arg(short, long)]
        force: bool,
        /// Also remove the container's anonymous volumes.
        #[arg(short, long)]
        volumes: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Wait for containers to stop; print their exit codes.
    Wait {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// The processes of a container.
    Top {
        name: String,
    },
    /// A container's published ports (`80/tcp -> 0.0.0.0:8080`).
    Port {
        name: String,
    },
    /// A container's resource usage (cgroup statistics), once.
    Stats {
        name: String,
        /// (Always one sample, as docker's --no-stream.)
        #[arg(long)]
        no_stream: bool,
        #[arg(long)]
        format: Option<String>,
    },
    Pause {
        names: Vec<String>,
    },
    Unpause {
        names: Vec<String>,
    },
    /// List the container's changed files: A added, C changed, D deleted.
    Diff {
        name: String,
    },
    /// Make an image of a container's changes (pausing it while running).
    Commit {
        /// A commit message (the history entry's comment).
        #[arg(short, long, default_value = "")]
        message: String,
        /// Pause a running container during the commit (`--pause=false`: not).
        #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
        pause: bool,
        name: String,
        reference: String,
    },
    /// Copy files between a container and the host: `cp NAME:PATH HOSTPATH`
    /// or `cp HOSTPATH NAME:PATH` (running or stopped containers).
    Cp {
        /// Keep the owners (uid/gid) of what is copied.
        #[arg(short, long)]
        archive: bool,
        /// Follow the source's final symlink.
        #[arg(short = 'L', long)]
        follow_link: bool,
        src: String,
        dst: String,
    },
    /// Write a container's filesystem as a tar archive.
    Export {
        #[arg(short, long)]
        output: PathBuf,
        name: String,
    },
    /// Manage data volumes.
    Volume {
        #[command(subcommand)]
        cmd: VolumeCmd,
    },
    /// The `--init` PID 1 (run inside containers).
    #[command(hide = true)]
    Init {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
}

#[derive(Subcommand)]
enum NetworkCmd {
    /// Make a bridge network.
    Create {
        name: String,
        /// Subnet (CIDR): IPv4 (a free 10.89.x.0/24 when not given), and an
        /// IPv6 one with --ipv6 (a free fd89:0:0:x::/64 when not given).
        #[arg(long)]
        subnet: Vec<String>,
        /// Gateway address (per subnet); the first host address by default.
        #[arg(long)]
        gateway: Vec<String>,
        /// Dual stack: IPv6 addresses too.
        #[arg(long)]
        ipv6: bool,
        /// No outbound traffic (no masquerade).
        #[arg(long)]
        internal: bool,
        /// Driver options; `bridge=NAME` names the host bridge.
        #[arg(short = 'o', long = "opt")]
        opt: Vec<String>,
    },
    /// List networks.
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show networks as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks (refused while a container uses one).
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every network no container uses (but the default one).
    Prune {
        #[arg(short, long)]
        force: bool,
    },
    /// Connect a running container to one more network (eth1, eth2, ...).
    Connect {
        network: String,
        container: String,
        /// Its IPv4 address there.
        #[arg(long)]
        ip: Option<String>,
        /// Its IPv6 address there (a dual-stack network).
        #[arg(long)]
        ip6: Option<String>,
        /// More names it has there.
        #[arg(long)]
        alias: Vec<String>,
    },
    /// Disconnect a container from a network it was connected to.
    Disconnect {
        network: String,
        container: String,
        /// Accepted for docker compatibility.
        #[arg(short, long)]
        force: bool,
    },
    /// The createRuntime hook that connects a container (OCI state on stdin).
    #[command(hide = true)]
    Hook,
    /// What the hook does, for the network namespace of PID and no
    /// container (bench/network.sh's per-container figure).
    #[command(hide = true)]
    Attach {
        name: String,
        #[arg(long)]
        network: String,
        #[arg(long)]
        pid: i32,
        #[arg(short = 'p', long = "publish")]
        publish: Vec<String>,
    },
    /// Undo `network attach NAME`.
    #[command(hide = true)]
    Detach { name: String },
}

#[derive(Subcommand)]
enum VolumeCmd {
    /// Create a named volume (an existing one is left as it is).
    Create { name: String },
    /// List volumes.
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show volumes as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes no container uses.
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused anonymous volumes (all unused ones with -a).
    Prune {
        #[arg(short, long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum SystemCmd {
    /// Remove stopped containers, dangling images, unreferenced blobs and layers.
    Prune {
        /// Also images no container uses.
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Args)]
struct Listing {
    /// Only ids.
    #[arg(short, long)]
    quiet: bool,
    /// `json`: one JSON object per line.
    #[arg(long)]
    format: Option<String>,
}

#[derive(Args)]
struct CreateArgs {
    #[arg(long)]
    name: Option<String>,
    #[arg(short, long)]
    interactive: bool,
    #[arg(short, long)]
    tty: bool,
    #[arg(short, long)]
    env: Vec<String>,
    #[arg(long)]
    env_file: Vec<PathBuf>,
    #[arg(short, long)]
    workdir: Option<String>,
    #[arg(short, long)]
    user: Option<String>,
    #[arg(short, long)]
    volume: Vec<String>,
    #[arg(long)]
    mount: Vec<String>,
    /// Mount the volumes of another container (NAME[:ro|rw]).
    #[arg(long)]
    volumes_from: Vec<String>,
    #[arg(long)]
    read_only: bool,
    #[arg(long)]
    tmpfs: Vec<String>,
    #[arg(short, long)]
    memory: Option<String>,
    #[arg(long)]
    cpus: Option<f64>,
    #[arg(long)]
    pids_limit: Option<i64>,
    #[arg(long)]
    cap_add: Vec<String>,
    #[arg(long)]
    cap_drop: Vec<String>,
    #[arg(long)]
    privileged: bool,
    #[arg(long)]
    security_opt: Vec<String>,
    #[arg(long)]
    hostname: Option<String>,
    #[arg(long, alias = "net")]
    network: Option<String>,
    /// The container's address on its network.
    #[arg(long)]
    ip: Option<String>,
    /// The container's IPv6 address on its (dual-stack) network.
    #[arg(long)]
    ip6: Option<String>,
    /// HOST:IP lines for /etc/hosts.
    #[arg(long)]
    add_host: Vec<String>,
    #[arg(long)]
    dns: Vec<String>,
    /// More names the container has on its network.
    #[arg(long)]
    network_alias: Vec<String>,
    /// Publish a port: [hostip:]hostport:containerport[/tcp|udp].
    #[arg(short, long)]
    publish: Vec<String>,
    /// Publish the image's EXPOSEd ports on free host ports.
    #[arg(short = 'P', long)]
    publish_all: bool,
    #[arg(long)]
    init: bool,
    #[arg(long)]
    entrypoint: Option<String>,
    image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

impl CreateArgs {
    fn options(&self) -> RunOptions {
        RunOptions {
            env: self.env.clone(),
            env_files: self.env_file.clone(),
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            volumes: self.volume.clone(),
            volumes_from: self.volumes_from.clone(),
            mounts: self.mount.clone(),
            read_only: self.read_only,
            tmpfs: self.tmpfs.clone(),
            memory: self.memory.clone(),
            cpus: self.cpus,
            pids_limit: self.pids_limit,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            privileged: self.privileged,
            security_opt: self.security_opt.clone(),
            hostname: self.hostname.clone(),
            network: self.network.clone(),
            init: self.init,
            tty: self.tty,
            interactive: self.interactive,
            entrypoint: self.entrypoint.clone(),
            net: hullctl::network::attach::NetOptions {
                ip: self.ip.clone(),
                ip6: self.ip6.clone(),
                add_hosts: self.add_host.clone(),
                dns: self.dns.clone(),
                aliases: self.network_alias.clone(),
                publish: self.publish.clone(),
                publish_all: self.publish_all,
                exposed: Vec::new(),
            },
        }
    }
    fn create(&self, store: &Store, auto_remove: bool) -> Result<record::ContainerRecord> {
        // As docker: an image that is not here is pulled first.
        if let Err(Error::NotFound { .. }) = store.resolve(&self.image) {
            eprintln!("Unable to find image '{}' locally", self.image);
            let (id, name) = image::pull::pull(store, &self.image, hullctl::sys::isatty(2))?;
            eprintln!("Pulled {name} ({})", id.short());
        }
        container::create(
            store,
            &self.image,
            self.name.as_deref(),
            &self.cmd,
            &self.options(),
            auto_remove,
        )
    }
}

fn main() {
    // The init must not parse hullctl's options or open a store.
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("init") {
        let rest = match argv.get(2).map(String::as_str) {
            Some("--") => &argv[3..],
            _ => &argv[2..],
        };
        std::process::exit(hullctl::init::main(rest));
    }
    let cli = Cli::parse();
    // Remembered for --init across a re-exec from a sealed copy (see
    // container::seal_if_needed); set while single-threaded.
    if std::env::var_os(container::spec::EXE_ENV).is_none() {
        if let Ok(exe) = std::env::current_exe() {
            std::env::set_var(container::spec::EXE_ENV, exe);
        }
    }
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("hullctl: {e}");
            std::process::exit(match e {
                Error::Usage(_) => 125,
                _ => 1,
            });
        }
    }
}

fn network_cmd(store: &Store, cmd: NetworkCmd) -> Result<i32> {
    use hullctl::network;
    match cmd {
        NetworkCmd::Create {
            name,
            subnet,
            gateway,
            ipv6,
            internal,
            opt,
        } => {
            let mut bridge = None;
            for o in &opt {
                match o.split_once('=') {
                    Some(("bridge" | "com.docker.network.bridge.name", v)) => {
                        bridge = Some(v.to_string())
                    }
                    _ => {
                        return Err(Error::Usage(format!(
                            "network create: unknown option {o:?}"
                        )))
                    }
                }
            }
            // IPv4 and IPv6 values of --subnet/--gateway, told apart by form.
            let split = |v: Vec<String>, what: &str| -> Result<(Option<String>, Option<String>)> {
                let (six, four): (Vec<String>, Vec<String>) =
                    v.into_iter().partition(|s| s.contains(':'));
                if four.len() > 1 || six.len() > 1 {
                    return Err(Error::Usage(format!(
                        "network create {name}: at most one IPv4 and one IPv6 --{what}"
                    )));
                }
                Ok((four.into_iter().next(), six.into_iter().next()))
            };
            let (subnet, subnet6) = split(subnet, "subnet")?;
            let (gateway, gateway6) = split(gateway, "gateway")?;
            let req = network::CreateRequest {
                name,
                subnet,
                gateway,
                bridge,
                internal,
                ipv6,
                subnet6,
                gateway6,
            };
            println!("{}", network::create(store, &req)?.name);
        }
        NetworkCmd::Ls { quiet } => {
            // The default network is listed even before its first use.
            network::get_or_default(store, network::DEFAULT_NETWORK)?;
            let nets = network::list(store)?;
            if !quiet {
                println!(
                    "{:<20} {:<18} {:<15} {:<16} INTERNAL",
                    "NAME", "SUBNET", "GATEWAY", "BRIDGE"
                );
            }
            for n in nets {
                if quiet {
                    println!("{}", n.name);
                } else {
                    println!(
                        "{:<20} {:<18} {:<15} {:<16} {}",
                        n.name, n.subnet, n.gateway, n.bridge, n.internal
                    );
                }
            }
        }
        NetworkCmd::Inspect { names } => {
            let mut out = Vec::new();
            for n in &names {
                out.push(network::inspect(
                    store,
                    &network::get_or_default(store, n)?,
                )?);
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&out).map_err(|e| Error::json("inspect", e))?
            );
        }
        NetworkCmd::Rm { names } => {
            for n in &names {
                network::remove(store, n)?;
                println!("{n}");
            }
        }
        NetworkCmd::Hook => network::attach::hook(store)?,
        NetworkCmd::Connect {
            network,
            container,
            ip,
            ip6,
            alias,
        } => network::attach::connect(
            store,
            &network,
            &container,
            ip.as_deref(),
            ip6.as_deref(),
            &alias,
        )?,
        NetworkCmd::Disconnect {
            network,
            container,
            force: _,
        } => network::attach::disconnect(store, &network, &container)?,
        NetworkCmd::Attach {
            name,
            network,
            pid,
            publish,
        } => network::attach::attach_pid(store, &name, &network, pid, publish)?,
        NetworkCmd::Detach { name } => network::attach::detach_pid(store, &name)?,
        NetworkCmd::Prune { force: _ } => {
            for n in network::prune(store)? {
                println!("{n}");
            }
        }
    }
    Ok(0)
}

fn json_line(v: &Value) {
    println!("{v}");
}

fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Login {
            username,
            password,
            password_stdin,
            server,
        } => {
            let password = match (password, password_stdin) {
                (Some(p), false) => p,
                (None, true) => {
                    let mut p = String::new();
                    std::io::stdin()
                        .read_line(&mut p)
                        .map_err(|e| Error::io("stdin", e))?;
                    p.trim_end_matches(['\n', '\r']).to_string()
                }
                _ => {
                    return Err(Error::Usage(
                        "login: give exactly one of --password and --password-stdin".into(),
                    ))
                }
            };
            let path = image::pull::login(&server, &username, &password)?;
            // Unlike docker, not checked against the registry here: the
            // next pull does (a wrong password fails it, saying so).
            println!("Credentials for {server} saved in {}", path.display());
            return Ok(0);
        }
        Cmd::Logout { server } => {
            if image::pull::logout(&server)? {
                println!("Removing login credentials for {server}");
            } else {
                println!("Not logged in to {server}");
            }
            return Ok(0);
        }
        _ => {}
    }
    let store = Store::open(&cli.root)?;
    let store = &store;
    match cli.cmd {
        Cmd::Init { .. } | Cmd::Login { .. } | Cmd::Logout { .. } => Ok(2),
        Cmd::Network { cmd } => network_cmd(store, cmd),
        Cmd::Pull { reference, quiet } => {
            let progress = !quiet && hullctl::sys::isatty(2);
            let (id, name) = image::pull::pull(store, &reference, progress)?;
            if quiet {
                println!("{id}");
            } else {
                println!("Digest: {id}\nStatus: pulled {name}");
            }
            Ok(0)
        }
        Cmd::Load { input } => {
            for l in archive::load(store, &input)? {
                if l.tags.is_empty() {
                    println!("Loaded image ID: {}", l.id);
                }
                for t in l.tags {
                    println!("Loaded image: {t}");
                }
            }
            Ok(0)
        }
        Cmd::Save { output, images } => archive::save(store, &images, &output).map(|()| 0),
        Cmd::Import { file, reference } => {
            println!("{}", archive::import(store, &file, &reference)?);
            Ok(0)
        }
        Cmd::Images(l) => images(store, &l),
        Cmd::Inspect { names } => {
            let mut out = Vec::new();
            for n in &names {
                out.push(inspect(store, n)?);
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&out).map_err(|e| Error::json("inspect", e))?
            );
            Ok(0)
        }
        Cmd::Rmi { force, images } => {
            for i in &images {
                for line in hullctl::store::rmi(store, i, force)? {
                    println!("{line}");
                }
            }
            Ok(0)
        }
        Cmd::Tag { source, target } => {
            image::check_ref(&target)?;
            let rec = store.resolve(&source)?;
            store
                .tag(&image::normalize_ref(&target), &rec.id)
                .map(|()| 0)
        }
        Cmd::History {
            image: name,
            format,
        } => history(store, &name, format.as_deref()),
        Cmd::System {
            cmd: SystemCmd::Prune { all, force: _ },
        } => {
            for line in hullctl::store::prune(store, all)? {
                println!("deleted: {line}");
            }
            Ok(0)
        }
        Cmd::Create(a) => {
            let rec = a.create(store, false)?;
            println!("{}", rec.id);
            Ok(0)
        }
        Cmd::Run { rm, detach, create } => {
            let rec = create.create(store, rm)?;
            if detach {
                if let Err(e) = container::start_detached(store, &rec) {
                    let _ = container::remove(store, &rec, true);
                    return Err(e);
                }
                println!("{}", rec.id);
                Ok(0)
            } else {
                container::run_attached(store, &rec)
            }
        }
        Cmd::Start { names } => each(store, &names, |rec| {
            container::start_detached(store, rec)?;
            println!("{}", rec.name);
            Ok(())
        }),
        Cmd::Stop { time, names } => each(store, &names, |rec| {
            container::stop(store, rec, Duration::from_secs(time))?;
            println!("{}", rec.name);
            Ok(())
        }),
        Cmd::Kill { signal, names } => each(store, &names, |rec| {
            container::kill(store, rec, &signal)?;
            println!("{}", rec.name);
            Ok(())
        }),
        Cmd::Exec {
            interactive: _,
            tty,
            env,
            user,
            workdir,
            detach,
            name,
            cmd,
        } => {
            let rec = record::find(store, &name)?;
            let o = hull::container::exec::ExecOptions {
                id: rec.name.clone(),
                args: cmd,
                tty,
                env,
                user: user.map(|u| exec_user(store, &rec, &u)).transpose()?,
                cwd: workdir,
                detach,
                ..Default::default()
            };
            hull::container::exec::exec(&container::hull_store(store), &o)
                .map_err(|e| Error::hull(&rec.name, e))
        }
        Cmd::Logs {
            follow,
            tail,
            timestamps,
            name,
        } => logs(store, &name, follow, &tail, timestamps),
        Cmd::Ps { all, listing } => ps(store, all, &listing),
        Cmd::Rm {
            force,
            volumes,
            names,
        } => each(store, &names, |rec| {
            let anon = hullctl::volume::anonymous_of(store, &rec.name);
            container::remove(store, rec, force)?;
            if volumes {
                for v in anon {
                    // Still shared through --volumes-from: kept, as docker does.
                    if hullctl::volume::users(store, &v, None)?.is_empty() {
                        hullctl::volume::remove(store, &v, false)?;
                    }
                }
            }
            println!("{}", rec.name);
            Ok(())
        }),
        Cmd::Wait { names } => each(store, &names, |rec| {
            println!("{}", container::wait(store, rec)?);
            Ok(())
        }),
        Cmd::Port { name } => {
            let rec = record::find(store, &name)?;
            for l in hullctl::network::attach::port_lines(store, &rec.name) {
                println!("{l}");
            }
            Ok(0)
        }
        Cmd::Top { name } => {
            let rec = record::find(store, &name)?;
            let c = hull::Container::load(&container::hull_store(store), &rec.name)
                .map_err(|e| Error::hull(&rec.name, e))?;
            print!(
                "{}",
                c.ps(hull::container::ps::PsFormat::Table, &[])
                    .map_err(|e| Error::hull(&rec.name, e))?
            );
            Ok(0)
        }
        Cmd::Stats {
            name,
            no_stream: _,
            format,
        } => stats(store, &name, format.as_deref()),
        Cmd::Diff { name } => {
            let rec = record::find(store, &name)?;
            for c in container::layer::diff(store, &rec)? {
                println!("{} {}", c.kind, c.path);
            }
            Ok(0)
        }
        Cmd::Commit {
            message,
            pause,
            name,
            reference,
        } => {
            let rec = record::find(store, &name)?;
            println!(
                "{}",
                container::layer::commit(store, &rec, &reference, &message, pause)?
            );
            Ok(0)
        }
        Cmd::Cp {
            archive,
            follow_link,
            src,
            dst,
        } => {
            use container::cp;
            let o = cp::CpOptions {
                archive,
                follow: follow_link,
            };
            cp::cp(store, &cp::parse(&src), &cp::parse(&dst), o).map(|()| 0)
        }
        Cmd::Export { output, name } => {
            let rec = record::find(store, &name)?;
            container::layer::export(store, &rec, &output).map(|()| 0)
        }
        Cmd::Volume { cmd } => volume(store, cmd),
        Cmd::Pause { names } => each(store, &names, |rec| container::pause(store, rec, true)),
        Cmd::Unpause { names } => each(store, &names, |rec| container::pause(store, rec, false)),
    }
}

fn volume(store: &Store, cmd: VolumeCmd) -> Result<i32> {
    use hullctl::volume as vol;
    match cmd {
        VolumeCmd::Create { name } => {
            println!("{}", vol::create(store, Some(&name))?.0.name);
        }
        VolumeCmd::Ls { quiet } => {
            if !quiet {
                println!("DRIVER    VOLUME NAME");
            }
            for v in vol::list(store)? {
                if quiet {
                    println!("{}", v.name);
                } else {
                    println!("{:<10}{}", "local", v.name);
                }
            }
        }
        VolumeCmd::Inspect { names } => {
            let mut out = Vec::new();
            for n in &names {
                out.push(vol::inspect(store, &vol::get(store, n)?));
            }
            json_line(&Value::Array(out));
        }
        VolumeCmd::Rm { force, names } => {
            for n in &names {
                vol::remove(store, n, force)?;
                println!("{n}");
            }
        }
        VolumeCmd::Prune { all } => {
            for n in vol::prune(store, all)? {
                println!("Deleted: {n}");
            }
        }
    }
    Ok(0)
}

/// One line of docker-style stats: CPU % over half a second, memory
/// usage / limit, pids; from hull's cgroup statistics.
fn stats(store: &Store, name: &str, format: Option<&str>) -> Result<i32> {
    let rec = record::find(store, name)?;
    let c = hull::Container::load(&container::hull_store(store), &rec.name)
        .map_err(|e| Error::hull(&rec.name, e))?;
    let sample = || -> Result<(Value, std::time::Instant)> {
        let mut buf = Vec::new();
        c.events(true, Duration::from_secs(1), &mut buf)
            .map_err(|e| Error::hull(&rec.name, e))?;
        let v: Value = serde_json::from_slice(&buf).map_err(|e| Error::json("stats", e))?;
        Ok((v["data"].clone(), std::time::Instant::now()))
    };
    let (a, ta) = sample()?;
    std::thread::sleep(Duration::from_millis(500));
    let (b, tb) = sample()?;
    let cpu_ns = b["cpu"]["usage"]["total"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(a["cpu"]["usage"]["total"].as_u64().unwrap_or(0));
    let cpu = cpu_ns as f64 / (tb - ta).as_nanos().max(1) as f64 * 100.0;
    let mem = b["memory"]["usage"]["usage"].as_u64().unwrap_or(0);
    let limit = b["memory"]["usage"]["limit"].as_u64().unwrap_or(0);
    let pids = b["pids"]["current"].as_u64().unwrap_or(0);
    if format == Some("json") {
        json_line(
            &json!({"ID": rec.id, "Name": rec.name, "CPUPerc": cpu, "MemUsage": mem, "MemLimit": limit, "PIDs": pids}),
        );
    } else {
        println!(
            "{:<14} {:<20} {:>8} {:>24} {:>6}",
            "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS"
        );
        let lim = if limit == 0 || limit >= i64::MAX as u64 / 2 {
            "-".to_string()
        } else {
            human(limit)
        };
        println!(
            "{:<14} {:<20} {:>7.2}% {:>24} {:>6}",
            rec.short_id(),
            rec.name,
            cpu,
            format!("{} / {lim}", human(mem)),
            pids
        );
    }
    Ok(0)
}

/// `-u name[:group]` for exec: resolved in the container's image.
fn exec_user(store: &Store, rec: &record::ContainerRecord, u: &str) -> Result<String> {
    let img = store.image(&rec.image)?;
    let layers: Vec<_> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
    let v = container::spec::resolve_user(store, &layers, u)?;
    Ok(format!("{}:{}", v["uid"], v["gid"]))
}

/// Apply `f` to each named container; report failures, exit 1 if any.
fn each(
    store: &Store,
    names: &[String],
    mut f: impl FnMut(&record::ContainerRecord) -> Result<()>,
) -> Result<i32> {
    let mut code = 0;
    for n in names {
        if let Err(e) = record::find(store, n).and_then(|rec| f(&rec)) {
            eprintln!("hullctl: {e}");
            code = 1;
        }
    }
    Ok(code)
}

fn images(store: &Store, l: &Listing) -> Result<i32> {
    let refs = store.refs()?;
    let json = l.format.as_deref() == Some("json");
    if !l.quiet && !json {
        println!(
            "{:<40} {:<12} {:<14} {:>10}",
            "REPOSITORY", "TAG", "IMAGE ID", "SIZE"
        );
    }
    for img in store.images()? {
        let size: u64 = img.layers.iter().map(|l| l.size).sum();
        let mut names: Vec<&String> = refs
            .iter()
            .filter(|(_, d)| **d == img.id)
            .map(|(r, _)| r)
            .collect();
        if l.quiet {
            println!("{}", img.id.short());
            continue;
        }
        let none = "<none>:<none>".to_string();
        if names.is_empty() {
            names.push(&none);
        }
        for n in names {
            let (repo, tag) = n.rsplit_once(':').unwrap_or((n, "latest"));
            if json {
                json_line(
                    &json!({"Repository": repo, "Tag": tag, "ID": img.id.as_str(), "Size": size}),
                );
            } else {
                println!(
                    "{:<40} {:<12} {:<14} {:>10}",
                    repo,
                    tag,
                    img.id.short(),
                    human(size)
                );
            }
        }
    }
    Ok(0)
}

fn human(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.2}GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.2}MB", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.2}kB", f / 1e3)
    } else {
        format!("{n}B")
    }
}

fn inspect(store: &Store, name: &str) -> Result<Value> {
    if let Ok(rec) = record::find(store, name) {
        return Ok(container::inspect(store, &rec));
    }
    let img = store.resolve(name)?;
    let cfg = image::config(store, &img)?;
    Ok(json!({
        "Id": img.id.as_str(),
        "RepoTags": image::tags_of(store, &img.id)?,
        "RepoDigests": [],
        "Manifest": img.manifest.as_str(),
        "Created": cfg["created"],
        "Architecture": cfg["architecture"],
        "Os": cfg["os"],
        "Config": cfg["config"],
        "RootFS": cfg["rootfs"],
        "Layers": img.layers,
        "GraphDriver": {"Name": "overlay", "Data": {
            "LowerDirs": img.layers.iter().rev().map(|l| store.layer_diff(&l.diff_id)).collect::<Vec<_>>()
        }},
    }))
}

fn history(store: &Store, name: &str, format: Option<&str>) -> Result<i32> {
    let img = store.resolve(name)?;
    let cfg = image::config(store, &img)?;
    let json = format == Some("json");
    if !json {
        println!("{:<22} {:<60} COMMENT", "CREATED", "CREATED BY");
    }
    for h in cfg["history"].as_array().into_iter().flatten().rev() {
        let s = |k: &str| h[k].as_str().unwrap_or("").to_string();
        if json {
            json_line(h);
        } else {
            let by: String = s("created_by").chars().take(60).collect();
            println!("{:<22} {:<60} {}", s("created"), by, s("comment"));
        }
    }
    Ok(0)
}

fn logs(store: &Store, name: &str, follow: bool, tail: &str, timestamps: bool) -> Result<i32> {
    use container::logfile;
    use std::io::{Read, Write};
    let tail: Option<usize> = match tail {
        "all" | "-1" => None,
        n => Some(
            n.parse()
                .map_err(|_| Error::Usage(format!("--tail {n:?}: expected a number or \"all\"")))?,
        ),
    };
    let rec = record::find(store, name)?;
    let paths = record::Paths::new(store, &rec.name);
    let path = paths.log();
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(&path, e)),
    };
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    let mut pending = Vec::new();
    let mut first = true;
    let mut stopped_at = None;
    loop {
        if let Some(f) = f.as_mut() {
            f.read_to_end(&mut pending)
                .map_err(|e| Error::io(&path, e))?;
        }
        let (mut recs, used) = logfile::parse(&pending);
        pending.drain(..used);
        if first {
            if let Some(n) = tail {
                let skip = recs.len().saturating_sub(n);
                recs.drain(..skip);
            }
            first = false;
        }
        for r in &recs {
            let w: &mut dyn Write = if r.stream == "stderr" {
                &mut err
            } else {
                &mut out
            };
            let res = if timestamps {
                w.write_all(format!("{} {}", r.time, r.log).as_bytes())
            } else {
                w.write_all(r.log.as_bytes())
            };
            res.and_then(|()| w.flush())
                .map_err(|e| Error::io("output", e))?;
        }
        // Following ends once the container stopped and its monitor has
        // written the last of the output (it records the exit code after,
        // within seconds); at once for one that never ran.
        let more = match container::status(store, &rec.name) {
            Some(hull::Status::Running) | Some(hull::Status::Paused) => true,
            Some(hull::Status::Stopped) => {
                !paths.exit().exists()
                    && paths.dir.exists()
                    && stopped_at
                        .get_or_insert_with(std::time::Instant::now)
                        .elapsed()
                        < Duration::from_secs(5)
            }
            _ => false,
        };
        if !follow || !more {
            return Ok(0);
        }
        if f.is_none() {
            f = std::fs::File::open(&path).ok();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ps(store: &Store, all: bool, l: &Listing) -> Result<i32> {
    let json = l.format.as_deref() == Some("json");
    if !l.quiet && !json {
        println!(
            "{:<14} {:<24} {:<24} {:<20} NAMES",
            "CONTAINER ID", "IMAGE", "COMMAND", "STATUS"
        );
    }
    for rec in record::list(store)? {
        let (status, running) = container::status_text(store, &rec);
        if !all && !running {
            continue;
        }
        let cmd = format!("\"{}\"", rec.command.join(" "));
        if l.quiet {
            println!("{}", rec.short_id());
        } else if json {
            json_line(
                &json!({"ID": rec.id, "Image": rec.image_ref, "Command": rec.command, "Status": status, "Names": rec.name, "Created": rec.created}),
            );
        } else {
            let cmd: String = cmd.chars().take(22).collect();
            println!(
                "{:<14} {:<24} {:<24} {:<20} {}",
                rec.short_id(),
                rec.image_ref,
                cmd,
                status,
                rec.name
            );
        }
    }
    Ok(0)
}
