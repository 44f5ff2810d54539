//! Transcript rows, the format of `/work/shared/lab` and of `parsers/tests/common/mod.rs`:
//!
//! `+<seconds since start> <leg>#<conn> <from>-><to> <escaped bytes>`, one protocol line per
//! row (a row without a trailing `\n` is a partial line); `# ` rows are events. Escapes: `\t`,
//! `\n`, `\r`, `\\`, and `\xNN` for any other byte outside printable ASCII.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The explanation written under every transcript header.
pub const FORMAT_NOTE: &str = "\
format: +<seconds since scenario start> <leg>#<connection> <from>-><to> <bytes>
bytes are escaped: \\t TAB, \\n LF, \\r CR, \\\\ backslash, \\xNN other; one protocol line per row;
a row without a trailing \\n is a partial line (the rest follows in a later row).
'#' rows are events (connect, EOF, close), not bytes.";

/// Escapes bytes for one transcript row.
pub fn escape(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() + 8);
    for &b in data {
        match b {
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Reverses [`escape`]; `None` for a malformed escape.
pub fn unescape(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1)? {
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            _ => return None,
        }
        i += 2;
    }
    Some(out)
}

/// Collects rows from any number of relays (threads), time-stamped from a common start.
#[derive(Debug, Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    start: Instant,
    rows: Vec<String>,
    conns: HashMap<String, u32>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder whose clock starts now.
    pub fn new() -> Self {
        Recorder {
            inner: Arc::new(Mutex::new(Inner {
                start: Instant::now(),
                rows: Vec::new(),
                conns: HashMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking relay thread must not hide the transcript from everyone else.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a new scenario: drops the rows so far and restarts the clock. Connection
    /// numbers keep counting, so a connection that outlives a scenario keeps a unique number.
    pub fn restart(&self) {
        let mut g = self.lock();
        g.start = Instant::now();
        g.rows.clear();
    }

    /// The next connection number of `leg` (1, 2, ...).
    pub fn next_conn(&self, leg: &str) -> u32 {
        let mut g = self.lock();
        let n = g.conns.entry(leg.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    /// Records bytes that went `from` -> `to`, one row per line.
    pub fn data(&self, leg: &str, conn: u32, from: &str, to: &str, bytes: &[u8]) {
        let mut g = self.lock();
        let t = g.start.elapsed().as_secs_f64();
        for chunk in bytes.split_inclusive(|&b| b == b'\n') {
            let row = format!("+{t:.6} {leg}#{conn} {from}->{to} {}", escape(chunk));
            g.rows.push(row);
        }
    }

    /// Records an event (`connected`, `closed`, ...) as a `# ` row.
    pub fn event(&self, leg: &str, conn: u32, text: &str) {
        let mut g = self.lock();
        let t = g.start.elapsed().as_secs_f64();
        let row = format!("# +{t:.6} {leg}#{conn} {text}");
        g.rows.push(row);
    }

    /// Connections opened (a `connected` event) but not yet `closed`.
    pub fn open_connections(&self) -> usize {
        let g = self.lock();
        let opened = g
            .rows
            .iter()
            .filter(|r| r.starts_with("# ") && r.ends_with(" connected"))
            .count();
        let closed = g
            .rows
            .iter()
            .filter(|r| r.starts_with("# ") && r.ends_with(" closed"))
            .count();
        opened.saturating_sub(closed)
    }

    /// Waits (bounded) until every recorded connection has closed on both sides.
    pub fn wait_idle(&self, timeout: std::time::Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.open_connections() > 0 {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        true
    }

    /// Takes the rows recorded since the last `restart`/`take`.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().rows)
    }
}

/// A whole transcript file: `# `-prefixed header lines, the format note, then the rows.
pub fn render(header: &[String], rows: &[String]) -> String {
    let mut out = String::new();
    for h in header {
        if h.is_empty() {
            out.push_str("#\n");
        }
        for line in h.lines() {
            out.push_str(if line.is_empty() { "#" } else { "# " });
            out.push_str(line);
            out.push('\n');
        }
    }
    for line in FORMAT_NOTE.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("#\n");
    for r in rows {
        out.push_str(r);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_the_lab_relay() {
        assert_eq!(escape(b"A\tb\\c\r\n"), "A\\tb\\\\c\\r\\n");
        assert_eq!(escape(&[0x01, b' ', 0xc3, 0x7f]), "\\x01 \\xc3\\x7f");
    }

    #[test]
    fn unescape_reverses_escape() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unescape(&escape(&all)).as_deref(), Some(&all[..]));
        assert_eq!(unescape("bad\\q"), None);
        assert_eq!(unescape("cut\\x4"), None);
    }

    #[test]
    fn one_row_per_line() {
        let r = Recorder::new();
        r.data("ring", 1, "a", "b", b"X\tY\nZ\npart");
        let rows = r.take();
        assert_eq!(rows.len(), 3);
        assert!(rows[0].ends_with(" ring#1 a->b X\\tY\\n"), "{rows:?}");
        assert!(rows[2].ends_with(" ring#1 a->b part"), "{rows:?}");
    }
}
