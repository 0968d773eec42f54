//! Container logs as docker's json-file driver writes them: one JSON
//! object a line, `{"log": "...\n", "stream": "stdout"|"stderr", "time":
//! RFC 3339 with nanoseconds}`, so `logs` can give each stream back on its
//! own fd, in order, with timestamps.

use std::io::Write;

use serde::Deserialize;
use serde_json::json;

/// A line longer than this is cut into records (docker: 16 KiB).
const MAX_LINE: usize = 16 * 1024;

/// Splits a stream's bytes into lines and appends one record per line.
pub struct Writer {
    file: std::fs::File,
    partial: [Vec<u8>; 2],
}

impl Writer {
    pub fn new(file: std::fs::File) -> Writer {
        Writer {
            file,
            partial: [Vec::new(), Vec::new()],
        }
    }

    /// `stream`: 0 stdout, 1 stderr.
    pub fn feed(&mut self, stream: usize, mut data: &[u8]) {
        while !data.is_empty() {
            let buf = &mut self.partial[stream];
            let room = MAX_LINE - buf.len();
            match data.iter().position(|&b| b == b'\n') {
                Some(i) if i < room => {
                    buf.extend_from_slice(&data[..=i]);
                    data = &data[i + 1..];
                    self.flush(stream);
                }
                _ => {
                    let n = room.min(data.len());
                    buf.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if self.partial[stream].len() >= MAX_LINE {
                        self.flush(stream);
                    }
                }
            }
        }
    }

    /// Write what is buffered for `stream` as a record (an unfinished
    /// line at the end of the output goes out as it is).
    pub fn flush(&mut self, stream: usize) {
        let line = std::mem::take(&mut self.partial[stream]);
        if line.is_empty() {
            return;
        }
        let rec = json!({
            "log": String::from_utf8_lossy(&line),
            "stream": if stream == 0 { "stdout" } else { "stderr" },
            "time": hull::timefmt::now(true),
        });
        let mut text = rec.to_string();
        text.push('\n');
        // One write per record: a reader never sees half a line.
        let _ = self.file.write_all(text.as_bytes());
    }
}

/// One record of the log.
#[derive(Debug, Deserialize)]
pub struct Record {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Parse the complete lines of `text`; returns the records and how many
/// bytes were consumed (a trailing partial line is left for later).
pub fn parse(text: &[u8]) -> (Vec<Record>, usize) {
    let mut out = Vec::new();
    let mut used = 0;
    while let Some(i) = text[used..].iter().position(|&b| b == b'\n') {
        let line = &text[used..used + i];
        used += i + 1;
        if let Ok(r) = serde_json::from_slice::<Record>(line) {
            out.push(r);
        }
    }
    (out, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_and_round_trip() {
        let p = std::env::temp_dir().join(format!("hullctl-logfile-{}", std::process::id()));
        let f = std::fs::File::create(&p).unwrap();
        let mut w = Writer::new(f);
        w.feed(0, b"a\nb");
        w.feed(1, b"err\n");
        w.feed(0, b"c\n");
        w.feed(0, &vec![b'x'; MAX_LINE + 5]);
        w.flush(0);
        let text = std::fs::read(&p).unwrap();
        let _ = std::fs::remove_file(&p);
        let (recs, used) = parse(&text);
        assert_eq!(used, text.len());
        let got: Vec<(&str, &str)> = recs
            .iter()
            .map(|r| (r.stream.as_str(), r.log.as_str()))
            .take(3)
            .collect();
        assert_eq!(
            got,
            [("stdout", "a\n"), ("stderr", "err\n"), ("stdout", "bc\n")]
        );
        assert_eq!(recs[3].log.len(), MAX_LINE);
        assert_eq!(recs[4].log.len(), 5);
        assert!(recs[0].time.ends_with('Z'));
    }
}
