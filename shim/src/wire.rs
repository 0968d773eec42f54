//! ttrpc framing over a unix socket: a 10-byte header (length u32,
//! stream id u32, type u8, flags u8, big-endian) and a protobuf
//! `ttrpc.Request` or `ttrpc.Response`. The message types come from the
//! `ttrpc` crate (through containerd-shim-protos); the loop that reads and
//! writes them is the shim's own, single-threaded (see README, Design).

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::ttrpc::get_status;
use containerd_shim_protos::ttrpc::proto::{Code, Request, Response};

const HEADER: usize = 10;
const TYPE_REQUEST: u8 = 1;
const TYPE_RESPONSE: u8 = 2;
/// ttrpc's own limit on a message.
const MAX_MESSAGE: usize = 4 << 20;

/// One frame: its stream id, type and body.
#[derive(Debug)]
pub struct Frame {
    pub stream: u32,
    pub kind: u8,
    pub body: Vec<u8>,
}

/// Take every complete frame off the front of `buf`. Err: a frame longer
/// than ttrpc allows (the connection is dropped).
pub fn split_frames(buf: &mut Vec<u8>) -> Result<Vec<Frame>, String> {
    let mut frames = Vec::new();
    let mut at = 0;
    while buf.len() - at >= HEADER {
        let h = &buf[at..at + HEADER];
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if len > MAX_MESSAGE {
            return Err(format!(
                "ttrpc message of {len} bytes (limit {MAX_MESSAGE})"
            ));
        }
        if buf.len() - at < HEADER + len {
            break;
        }
        frames.push(Frame {
            stream: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            kind: h[8],
            body: buf[at + HEADER..at + HEADER + len].to_vec(),
        });
        at += HEADER + len;
    }
    buf.drain(..at);
    Ok(frames)
}

/// A frame as bytes.
fn encode_frame(stream: u32, kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&stream.to_be_bytes());
    out.push(kind);
    out.push(0);
    out.extend_from_slice(body);
    out
}

/// Decode a request frame; None if it is not one.
pub fn request(frame: &Frame) -> Option<Request> {
    if frame.kind != TYPE_REQUEST {
        return None;
    }
    Request::parse_from_bytes(&frame.body).ok()
}

/// An OK response carrying `msg`.
pub fn ok<M: Message>(msg: &M) -> Response {
    let mut r = Response::new();
    r.status = Some(get_status(Code::OK, "")).into();
    r.payload = msg.write_to_bytes().unwrap_or_default();
    r
}

/// An error response.
pub fn error(code: Code, msg: impl ToString) -> Response {
    let mut r = Response::new();
    r.status = Some(get_status(code, msg)).into();
    r
}

/// Write `res` for `stream`. The socket may be non-blocking: wait for
/// room rather than drop a reply.
pub fn send_response(sock: &mut UnixStream, stream: u32, res: &Response) -> std::io::Result<()> {
    let body = res
        .write_to_bytes()
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e.to_string()))?;
    write_all(sock, &encode_frame(stream, TYPE_RESPONSE, &body))
}

fn write_all(sock: &mut UnixStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match sock.write(data) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let _ = hull::sys::poll_one(sock.as_raw_fd(), libc::POLLOUT, 1000);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A blocking ttrpc call on a fresh connection (events to containerd):
/// the response's status as an error if it is not OK.
pub fn call(address: &str, service: &str, method: &str, payload: Vec<u8>) -> Result<(), String> {
    let path = address.strip_prefix("unix://").unwrap_or(address);
    let mut sock = UnixStream::connect(path).map_err(|e| format!("connecting to {path}: {e}"))?;
    let timeout = Some(Duration::from_secs(5));
    let _ = sock.set_read_timeout(timeout);
    let _ = sock.set_write_timeout(timeout);
    let mut req = Request::new();
    req.service = service.to_string();
    req.method = method.to_string();
    req.payload = payload;
    let body = req.write_to_bytes().map_err(|e| e.to_string())?;
    write_all(&mut sock, &encode_frame(1, TYPE_REQUEST, &body)).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock
            .read(&mut chunk)
            .map_err(|e| format!("reading the reply: {e}"))?;
        if n == 0 {
            return Err("connection closed before the reply".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(f) = split_frames(&mut buf)?.into_iter().next() {
            let res = Response::parse_from_bytes(&f.body).map_err(|e| e.to_string())?;
            let code = res.status.code.enum_value_or(Code::UNKNOWN);
            if code != Code::OK {
                return Err(format!("{code:?}: {}", res.status.message));
            }
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_at_boundaries_and_keep_the_rest() {
        let mut buf = encode_frame(3, TYPE_REQUEST, b"abc");
        buf.extend_from_slice(&encode_frame(5, TYPE_RESPONSE, b"")[..4]);
        let frames = split_frames(&mut buf).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!((frames[0].stream, frames[0].kind), (3, TYPE_REQUEST));
        assert_eq!(frames[0].body, b"abc");
        assert_eq!(buf.len(), 4, "the partial frame stays");
    }

    #[test]
    fn an_oversized_frame_is_refused() {
        let mut buf = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 1, 0];
        assert!(split_frames(&mut buf).unwrap_err().contains("limit"));
    }
}
