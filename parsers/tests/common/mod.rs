//! Loader for captured wire transcripts (`parsers/tests/fixtures/**/*.txt`).
//!
//! Format (one row per protocol chunk, as written by `compat-tests`' capture relay):
//! `+<seconds> <leg>#<conn> <from>-><to> <escaped bytes>`; `#` rows are comments/events.
//! Escapes: `\t` TAB, `\n` LF, `\r` CR, `\\` backslash, `\xNN` any other byte. A row without a
//! trailing `\n` is a partial line; concatenating one direction's rows gives the byte stream.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One direction of one connection: every complete line (LF removed, CR kept).
#[derive(Debug)]
pub struct Stream {
    /// The file it came from.
    pub file: PathBuf,
    /// Leg name, e.g. `director-admin`, `login/director`, `ring`.
    pub leg: String,
    /// Connection number within the file.
    pub conn: String,
    /// Sender, e.g. `doveadm`, `director`, `dir1:9090`.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Complete lines in order.
    pub lines: Vec<Vec<u8>>,
}

fn unescape_row(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b't' => out.push(b'\t'),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b'\\' => out.push(b'\\'),
                b'x' if i + 3 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 4;
                    continue;
                }
                other => out.push(other),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Fixture directory: `parsers/tests/fixtures`, or `$DIRECTOR_FIXTURES` when set.
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("DIRECTOR_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "txt") {
            out.push(p);
        }
    }
}

/// Every stream of every fixture file whose leg satisfies `want_leg`.
pub fn load_streams(want_leg: impl Fn(&str) -> bool) -> Vec<Stream> {
    let mut files = Vec::new();
    collect_files(&fixtures_dir(), &mut files);
    files.sort();
    let mut streams = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut bufs: BTreeMap<(String, String, String, String), Vec<u8>> = BTreeMap::new();
        for row in text.lines() {
            if !row.starts_with('+') {
                continue;
            }
            let mut parts = row.splitn(4, ' ');
            let (_t, legconn, dir) = (parts.next(), parts.next(), parts.next());
            let bytes = parts.next().unwrap_or("");
            let (Some(legconn), Some(dir)) = (legconn, dir) else {
                continue;
            };
            let Some((leg, conn)) = legconn.rsplit_once('#') else {
                continue;
            };
            let Some((from, to)) = dir.split_once("->") else {
                continue;
            };
            if !want_leg(leg) {
                continue;
            }
            bufs.entry((leg.into(), conn.into(), from.into(), to.into()))
                .or_default()
                .extend(unescape_row(bytes));
        }
        for ((leg, conn, from, to), data) in bufs {
            let lines = data
                .split_inclusive(|&b| b == b'\n')
                .filter(|l| l.ends_with(b"\n"))
                .map(|l| l[..l.len() - 1].to_vec())
                .collect();
            streams.push(Stream {
                file: file.clone(),
                leg,
                conn,
                from,
                to,
                lines,
            });
        }
    }
    streams
}

/// Printable form of a line for assertion messages.
pub fn show(line: &[u8]) -> String {
    line.escape_ascii().to_string()
}
