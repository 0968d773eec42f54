//! Runtime logging: `--log FILE` with `--log-format text|json`. JSON lines
//! are runc's (logrus) shape — {"level","msg","time"} — because containerd
//! reads the last error from that file when a runtime call fails.

use std::io::Write;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<std::fs::File>,
    format: Format,
    debug: bool,
}

static LOGGER: Mutex<Logger> = Mutex::new(Logger {
    file: None,
    format: Format::Text,
    debug: false,
});

/// Send log lines to `path` (appending) in `format`.
pub fn init(path: Option<&std::path::Path>, format: Format, debug: bool) -> std::io::Result<()> {
    let file = match path {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => None,
    };
    if let Ok(mut l) = LOGGER.lock() {
        *l = Logger {
            file,
            format,
            debug,
        };
    }
    Ok(())
}

/// One log line as the configured format renders it.
pub fn render(format: Format, level: &str, msg: &str, time: &str) -> String {
    match format {
        Format::Json => {
            let v = serde_json::json!({"level": level, "msg": msg, "time": time});
            format!("{v}\n")
        }
        Format::Text => format!("time=\"{time}\" level={level} msg={msg:?}\n"),
    }
}

fn log(level: &str, msg: &str, also_stderr: bool) {
    let Ok(mut l) = LOGGER.lock() else {
        return;
    };
    if level == "debug" && !l.debug {
        return;
    }
    let format = l.format;
    match l.file.as_mut() {
        Some(f) => {
            let _ = f.write_all(render(format, level, msg, &crate::timefmt::now(false)).as_bytes());
            if also_stderr {
                eprintln!("hull: {msg}");
            }
        }
        None => eprintln!(
            "hull: {}{msg}",
            if level == "error" { "" } else { "warning: " }
        ),
    }
}

/// A failure the CLI reports: the log file (if any) and stderr.
pub fn error(msg: &str) {
    log("error", msg, true);
}

/// Something the user should know but that does not stop the operation.
pub fn warn(msg: &str) {
    // A runtime re-executed from a sealed image (crate::exeseal) repeats
    // what the first one did before it re-executed: those warnings were
    // given already. `exeseal::ensure` clears the marker.
    if crate::exeseal::reexecuted() {
        return;
    }
    log("warning", msg, true);
}

pub fn debug(msg: &str) {
    log("debug", msg, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_runc_shaped() {
        let line = render(Format::Json, "error", "boom \"x\"", "2026-01-01T00:00:00Z");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert_eq!(v["time"], "2026-01-01T00:00:00Z");
        assert!(line.ends_with('\n'));
    }
}
