//! Recording fixture transcripts of real Dovecot for `parsers/tests/fixtures/<protocol>/`.
//!
//! A [`Session`] owns the [`Recorder`] the relays write to; each [`Scenario`] restarts it,
//! runs commands (showing them and their output in the file header) and writes one file.

pub mod admin;
pub mod login;
pub mod ring;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::doveadm::Output;
use crate::dovecot::Dovecot;
use crate::transcript::{render, Recorder};

/// How long a scenario waits for its connections to close before writing the file.
const SETTLE: Duration = Duration::from_secs(3);

/// Where fixtures go, what records them, and which text to hide in headers.
#[derive(Debug)]
pub struct Session {
    /// The recorder every relay of this session writes to.
    pub rec: Recorder,
    /// The installed Dovecot.
    pub dovecot: Dovecot,
    out: PathBuf,
    protocol: String,
    setup: String,
    replace: Vec<(String, String)>,
    /// Files written so far.
    pub written: Vec<PathBuf>,
}

/// One scenario being recorded; finish it with [`Session::end`].
#[derive(Debug)]
pub struct Scenario {
    name: String,
    header: Vec<String>,
}

impl Session {
    /// Fixtures for `protocol` go to `<out>/<protocol>/`; `setup` describes the instances.
    pub fn new(
        dovecot: &Dovecot,
        out: &Path,
        protocol: &str,
        setup: &str,
    ) -> std::io::Result<Session> {
        std::fs::create_dir_all(out.join(protocol))?;
        Ok(Session {
            rec: Recorder::new(),
            dovecot: dovecot.clone(),
            out: out.to_path_buf(),
            protocol: protocol.to_string(),
            setup: setup.to_string(),
            replace: Vec::new(),
            written: Vec::new(),
        })
    }

    /// Shows `from` as `to` in headers (temporary paths, e.g. the relay socket as `$RELAY`).
    pub fn hide(&mut self, from: &Path, to: &str) {
        self.replace
            .push((from.display().to_string(), to.to_string()));
    }

    fn clean(&self, text: &str) -> String {
        let mut t = text.to_string();
        for (from, to) in &self.replace {
            t = t.replace(from, to);
        }
        t
    }

    /// Starts a scenario: forgets earlier traffic and restarts the clock.
    pub fn begin(&mut self, name: &str, description: &str) -> Scenario {
        self.rec.wait_idle(SETTLE);
        self.rec.restart();
        eprintln!("== {}/{name}", self.protocol);
        let header = vec![
            format!("scenario: {}/{name}", self.protocol),
            format!(
                "Dovecot {}; captured {} by compat-tests/src/bin/capture_fixtures.rs",
                self.dovecot.version,
                utc_now()
            ),
            self.setup.clone(),
            String::new(),
            description.to_string(),
            String::new(),
        ];
        Scenario {
            name: name.to_string(),
            header,
        }
    }

    /// Runs `cmd`, shows it as `$ <shown>` with its output and exit code in the header.
    pub fn run(
        &self,
        sc: &mut Scenario,
        shown: &str,
        cmd: &mut Command,
    ) -> std::io::Result<Output> {
        let out = Output::of(cmd)?;
        sc.header.push(format!("$ {shown}"));
        for (stream, bytes) in [("", &out.stdout), ("stderr: ", &out.stderr)] {
            for line in String::from_utf8_lossy(bytes).lines() {
                sc.header.push(self.clean(&format!("  | {stream}{line}")));
            }
        }
        sc.header.push(format!("  (exit code {})", out.code));
        Ok(out)
    }

    /// Adds a free-text line to the header.
    pub fn note(&self, sc: &mut Scenario, text: &str) {
        sc.header.push(self.clean(text));
    }

    /// Waits for the scenario's connections to close and writes its file.
    pub fn end(&mut self, sc: Scenario) -> std::io::Result<PathBuf> {
        if !self.rec.wait_idle(SETTLE) {
            sc_warn(&sc.name);
        }
        let rows = self.rec.take();
        let path = self
            .out
            .join(&self.protocol)
            .join(format!("{}.txt", sc.name));
        std::fs::write(&path, render(&sc.header, &rows))?;
        self.written.push(path.clone());
        Ok(path)
    }
}

fn sc_warn(name: &str) {
    eprintln!("warning: {name}: a connection was still open when the scenario ended");
}

/// Current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
