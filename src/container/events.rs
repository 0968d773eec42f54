//! `events`: runc's JSON event stream — `stats` every interval and `oom`
//! when the kernel OOM-kills a process in the container — or, with
//! `--stats`, one stats event.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Container;
use crate::cgroups::stats::Stats;
use crate::error::{Error, Result};
use crate::state::Status;

/// One line of `events` output.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub typ: &'static str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

/// A Go-style duration: "5s", "100ms", "1m30s", "1.5s".
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += v * mult;
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

impl Container {
    fn emit(&self, out: &mut dyn Write, ev: &Event) -> Result<()> {
        let mut line = serde_json::to_vec(ev).map_err(|e| Error::Usage(e.to_string()))?;
        line.push(b'\n');
        out.write_all(&line)
            .and_then(|_| out.flush())
            .map_err(|e| Error::io("stdout", e))
    }

    /// Print events to `out` until the container stops (or once, `stats_only`).
    pub fn events(&self, stats_only: bool, interval: Duration, out: &mut dyn Write) -> Result<()> {
        let id = self.id();
        if self.status() == Status::Stopped {
            return Err(Error::bad_state(id, "container is not running"));
        }
        let stats = |c: &Container| Event {
            typ: "stats",
            id,
            data: Some(c.state.cgroup.stats()),
        };
        if stats_only {
            return self.emit(out, &stats(self));
        }
        // On cgroup2, wake as soon as memory.events changes: with the
        // systemd driver the scope's cgroup (and the counter) is removed
        // right after its last process dies, so a slow poll can miss an OOM.
        let watch = self
            .state
            .cgroup
            .oom_notify_file()
            .and_then(|p| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).ok())
            .and_then(|c| crate::sys::inotify_modify_watch(&c).ok());
        let mut ooms = self.state.cgroup.oom_kills().unwrap_or(0);
        let mut next = Instant::now();
        loop {
            if let Some(n) = self.state.cgroup.oom_kills() {
                if n > ooms {
                    self.emit(
                        out,
                        &Event {
                            typ: "oom",
                            id,
                            data: None,
                        },
                    )?;
                }
                ooms = n;
            }
            if self.status() == Status::Stopped {
                return Ok(());
            }
            if !interval.is_zero() && Instant::now() >= next {
                self.emit(out, &stats(self))?;
                next = Instant::now() + interval;
            }
            match &watch {
                Some(fd) => {
                    use std::os::fd::AsRawFd;
                    let _ = crate::sys::poll_one(fd.as_raw_fd(), libc::POLLIN, 50);
                    crate::sys::drain(fd.as_raw_fd());
                }
                None => crate::sys::nanosleep_ms(50),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("x"), None);
    }
}
