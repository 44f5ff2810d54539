//! Records fixture transcripts of real Dovecot 2.3 for the parser tests.
//!
//! Usage: `cargo run -p compat-tests --bin capture_fixtures -- [admin|auth|ring|golden|all] [--out DIR]`
//! (default DIR: `parsers/tests/fixtures` of this workspace). `golden` writes
//! `compat-tests/golden/user-hosts.txt` instead. Needs root and Dovecot 2.3.

use std::path::PathBuf;
use std::process::ExitCode;

use compat_tests::capture;
use compat_tests::Dovecot;

fn main() -> ExitCode {
    let mut what = "all".to_string();
    let mut out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../parsers/tests/fixtures");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => match args.next() {
                Some(d) => out = PathBuf::from(d),
                None => return usage(),
            },
            "admin" | "auth" | "ring" | "golden" | "all" => what = a,
            _ => return usage(),
        }
    }
    let dovecot = match Dovecot::locate() {
        Ok(d) => d,
        Err(why) => {
            eprintln!("capture_fixtures: {why}");
            return ExitCode::FAILURE;
        }
    };
    let mut written = Vec::new();
    if what == "admin" || what == "all" {
        match capture::admin::capture(&dovecot, &out) {
            Ok(files) => written.extend(files),
            Err(e) => {
                eprintln!("capture_fixtures: admin: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if what == "auth" || what == "all" {
        match capture::login::capture(&dovecot, &out) {
            Ok(files) => written.extend(files),
            Err(e) => {
                eprintln!("capture_fixtures: auth: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if what == "ring" || what == "all" {
        match capture::ring::capture(&dovecot, &out) {
            Ok(files) => written.extend(files),
            Err(e) => {
                eprintln!("capture_fixtures: ring: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if what == "golden" || what == "all" {
        let path = compat_tests::golden::golden_path();
        let written_ok = compat_tests::golden::generate_file(&dovecot).and_then(|text| {
            std::fs::create_dir_all(path.parent().unwrap_or(&out))
                .and_then(|_| std::fs::write(&path, text))
        });
        match written_ok {
            Ok(()) => written.push(path),
            Err(e) => {
                eprintln!("capture_fixtures: golden: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    for path in &written {
        eprintln!("wrote {}", path.display());
    }
    eprintln!("{} files written", written.len());
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("usage: capture_fixtures [admin|auth|ring|golden|all] [--out DIR]");
    ExitCode::from(64)
}
