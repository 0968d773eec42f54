//! `ps`: the container's processes, as a JSON list of host pids or as the
//! host `ps` table (default `ps -ef`) filtered to the container's pids.

use super::Container;
use crate::error::{Error, Result};

/// Output of `ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsFormat {
    Table,
    Json,
}

impl Container {
    /// What `hull ps` prints.
    pub fn ps(&self, format: PsFormat, ps_args: &[String]) -> Result<String> {
        let pids = self.state.cgroup.procs();
        if format == PsFormat::Json {
            let mut s = serde_json::to_string(&pids).map_err(|e| Error::Usage(e.to_string()))?;
            s.push('\n');
            return Ok(s);
        }
        let args: Vec<String> = if ps_args.is_empty() {
            vec!["-ef".into()]
        } else {
            ps_args.to_vec()
        };
        let out = std::process::Command::new("ps")
            .args(&args)
            .output()
            .map_err(|e| Error::Sys {
                what: "running ps".into(),
                source: e,
            })?;
        if !out.status.success() {
            return Err(Error::Usage(format!(
                "ps {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        filter_table(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

/// Keep the header and the lines whose PID column is one of `pids`.
pub fn filter_table(text: &str, pids: &[libc::pid_t]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| Error::Usage("ps output has no PID column (use -o pid,...)".into()))?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_container_pids() {
        let t = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\n";
        assert_eq!(
            filter_table(t, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sleep\n"
        );
        assert!(filter_table("A B\n", &[1]).is_err());
    }
}
