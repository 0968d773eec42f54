//! Pod start latency through containerd's CRI, per runtime handler: the
//! kubelet's RunPodSandbox + CreateContainer + StartContainer for one
//! busybox container, timed from the CRI client; teardown untimed. The
//! handlers are interleaved per round so background load hits them alike.
//!
//! ```text
//! cargo build --release -p hull -p containerd-shim-hull
//! HULL_BIN_DIR=$PWD/target/x86_64-unknown-linux-gnu/release \
//!     cargo run -p hull-tests-cri --example pod_start [-- ROUNDS]
//! ```
//!
//! Prints a Markdown table (median, min, p90, max in ms; failures).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hull_tests_cri::cri::{self, v1};
use hull_tests_cri::host;
use hull_tests_cri::node::{self, Handler, Node};

const WARMUP: usize = 2;

fn main() {
    if let Some(r) = host::skip_reason() {
        eprintln!("skipped: {r}");
        return;
    }
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let hull = match node::hull_binary() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("pod_start: {e}");
            std::process::exit(1);
        }
    };
    let mut handlers = vec![
        Handler {
            name: "runc",
            binary: Some(PathBuf::from("/usr/sbin/runc")),
        },
        Handler {
            name: "hull",
            binary: Some(hull.clone()),
        },
    ];
    match node::hull_shim_binary() {
        Ok(_) => handlers.push(Handler {
            name: "hull-shim",
            binary: None,
        }),
        Err(why) => eprintln!("hull-shim left out: {why}"),
    }
    let node = match Node::start("bench", &handlers) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("pod_start: {e}");
            std::process::exit(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pod_start: tokio: {e}");
            std::process::exit(1);
        }
    };
    let times = rt.block_on(measure(&node, &handlers, rounds));
    println!(
        "hull: {} ({} rounds after {WARMUP} warm-up, containerd {})",
        hull.display(),
        rounds,
        host::run(std::process::Command::new("containerd").arg("--version"))
            .stdout
            .split_whitespace()
            .nth(2)
            .unwrap_or("?")
    );
    println!("| handler | median ms | min ms | p90 ms | max ms | failed |");
    println!("|---|--:|--:|--:|--:|--:|");
    for (h, (mut ok, failed)) in handlers.iter().zip(times) {
        ok.sort();
        let ms = |d: Option<&Duration>| {
            d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
        };
        let p90 = ok.get((ok.len() * 9).div_ceil(10).saturating_sub(1));
        println!(
            "| {} | {} | {} | {} | {} | {failed} |",
            h.name,
            ms(ok.get(ok.len() / 2)),
            ms(ok.first()),
            ms(p90),
            ms(ok.last()),
        );
    }
}

/// Per handler: the start latencies and the number of failed starts.
async fn measure(node: &Node, handlers: &[Handler], rounds: usize) -> Vec<(Vec<Duration>, usize)> {
    let mut out: Vec<(Vec<Duration>, usize)> = handlers.iter().map(|_| (Vec::new(), 0)).collect();
    let mut cli = match cri::connect(&node.sock).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pod_start: {e}");
            return out;
        }
    };
    for round in 0..WARMUP + rounds {
        for (i, h) in handlers.iter().enumerate() {
            let uid = format!("bench-{}-{round}", h.name);
            let log_dir = node.dir.join("logs").join(&uid);
            let _ = std::fs::create_dir_all(&log_dir);
            let sandbox = cri::sandbox_config("bench", &uid, &log_dir, &node.cgroup_parent, &[]);
            let t0 = Instant::now();
            let started = start_pod(&mut cli, &sandbox, h.name).await;
            let took = t0.elapsed();
            let sid = match &started {
                Ok(sid) | Err((Some(sid), _)) => Some(sid.clone()),
                Err((None, _)) => None,
            };
            if let Some(sid) = sid {
                let _ = cli
                    .stop_pod_sandbox(v1::StopPodSandboxRequest {
                        pod_sandbox_id: sid.clone(),
                    })
                    .await;
                let _ = cli
                    .remove_pod_sandbox(v1::RemovePodSandboxRequest {
                        pod_sandbox_id: sid,
                    })
                    .await;
            }
            match started {
                Ok(_) if round >= WARMUP => out[i].0.push(took),
                Ok(_) => {}
                Err((_, e)) => {
                    eprintln!("{}: {e}", h.name);
                    out[i].1 += 1;
                }
            }
        }
    }
    out
}

/// RunPodSandbox + CreateContainer + StartContainer; the sandbox id, also
/// with the error when a later step failed (for the teardown).
async fn start_pod(
    cli: &mut cri::Client,
    sandbox: &v1::PodSandboxConfig,
    handler: &str,
) -> Result<String, (Option<String>, String)> {
    let sid = cli
        .run_pod_sandbox(v1::RunPodSandboxRequest {
            config: Some(sandbox.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .map_err(|e| (None, format!("RunPodSandbox: {e}")))?
        .into_inner()
        .pod_sandbox_id;
    let fail = |what: &str, e: tonic::Status| (Some(sid.clone()), format!("{what}: {e}"));
    let cid = cli
        .create_container(v1::CreateContainerRequest {
            pod_sandbox_id: sid.clone(),
            config: Some(cri::container_config(
                "main",
                &["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
            )),
            sandbox_config: Some(sandbox.clone()),
        })
        .await
        .map_err(|e| fail("CreateContainer", e))?
        .into_inner()
        .container_id;
    cli.start_container(v1::StartContainerRequest { container_id: cid })
        .await
        .map_err(|e| fail("StartContainer", e))?;
    Ok(sid)
}
