//! The kubelet's side: a CRI v1 client (k8s-cri over tonic) on containerd's
//! socket, the request shapes the kubelet sends, and the streaming
//! (Exec/Attach) client for the URLs the CRI plugin's streaming server
//! hands out (WebSocket, `v4.channel.k8s.io`, on 127.0.0.1).

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

pub use k8s_cri::v1;

pub type Client = RuntimeServiceClient<Channel>;

/// Connect to the CRI service on a containerd socket.
pub async fn connect(sock: &Path) -> Result<Client, String> {
    let sock = sock.to_path_buf();
    let endpoint =
        Endpoint::try_from("http://[::1]:50051").map_err(|e| format!("endpoint: {e}"))?;
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let sock = sock.clone();
            async move {
                let s = tokio::net::UnixStream::connect(&sock).await?;
                Ok::<_, std::io::Error>(TokioIo::new(s))
            }
        }))
        .await
        .map_err(|e| format!("connect to the CRI socket: {e}"))?;
    Ok(RuntimeServiceClient::new(channel))
}

/// A pod sandbox config as the kubelet sends it: its own cgroup parent
/// (cgroupfs driver), pod-wide network and IPC namespaces, a container-wide
/// PID namespace, a log directory, labels to find it by.
pub fn sandbox_config(
    name: &str,
    uid: &str,
    log_dir: &Path,
    cgroup_parent: &str,
    labels: &[(&str, &str)],
) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: "hulltest".into(),
            attempt: 0,
        }),
        hostname: "hullpod".into(),
        log_directory: log_dir.to_string_lossy().into_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: format!("{cgroup_parent}/pod{uid}"),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Pod as i32,
                    pid: cri::NamespaceMode::Container as i32,
                    ipc: cri::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A container config running `command` in the busybox image, logging to
/// `<name>.log` in the pod's log directory.
pub fn container_config(name: &str, command: &[&str]) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: crate::image::BUSYBOX.into(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        labels: HashMap::from([("container".to_string(), name.to_string())]),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources::default()),
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Pod as i32,
                    pid: cri::NamespaceMode::Container as i32,
                    ipc: cri::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// What a streaming session returned.
#[derive(Debug, Default)]
pub struct Streamed {
    pub stdout: String,
    pub stderr: String,
    /// The error channel's message (v4: a JSON Status with the exit code).
    pub status: String,
}

/// Run one Exec or Attach session against a streaming URL: send `stdin`
/// (if any), collect the channels until the server closes, or until
/// `done` says the output so far is enough (then close). 20 s at most.
pub fn stream(
    url: &str,
    stdin: Option<&[u8]>,
    done: impl Fn(&Streamed) -> bool,
) -> Result<Streamed, String> {
    let ws_url = url
        .strip_prefix("http://")
        .map(|rest| format!("ws://{rest}"))
        .ok_or_else(|| format!("streaming URL {url}: not http:// on the local server"))?;
    let mut req = ws_url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("{ws_url}: {e}"))?;
    let h = req.headers_mut();
    h.insert(
        "Sec-WebSocket-Protocol",
        "v4.channel.k8s.io"
            .parse()
            .map_err(|e| format!("header: {e}"))?,
    );
    h.insert(
        "Origin",
        "http://127.0.0.1"
            .parse()
            .map_err(|e| format!("header: {e}"))?,
    );
    let host = ws_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let tcp = TcpStream::connect(&host).map_err(|e| format!("connect {host}: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    let (mut ws, _resp) = tungstenite::client(req, tcp)
        .map_err(|e| format!("WebSocket handshake with {url}: {e}"))?;
    if let Some(data) = stdin {
        let mut frame = vec![0u8];
        frame.extend_from_slice(data);
        ws.send(Message::binary(frame))
            .map_err(|e| format!("send stdin: {e}"))?;
    }
    let mut out = Streamed::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if done(&out) {
            let _ = ws.close(None);
            return Ok(out);
        }
        if Instant::now() > deadline {
            return Err(format!("stream {url}: no end after 20 s; got {out:?}"));
        }
        match ws.read() {
            Ok(Message::Binary(b)) => take_frame(&mut out, &b),
            Ok(Message::Text(t)) => take_frame(&mut out, t.as_bytes()),
            Ok(Message::Close(_)) => return Ok(out),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ok(out)
            }
            Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )) => return Ok(out),
            Err(e) => return Err(format!("stream {url}: {e}; got {out:?}")),
        }
    }
}

/// One v4.channel.k8s.io frame: the first byte names the channel.
fn take_frame(out: &mut Streamed, frame: &[u8]) {
    let Some((&ch, data)) = frame.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    match ch {
        1 => out.stdout.push_str(&text),
        2 => out.stderr.push_str(&text),
        3 => out.status.push_str(&text),
        _ => {}
    }
}
