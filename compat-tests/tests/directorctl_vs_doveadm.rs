//! `directorctl` against the real `doveadm director`, both talking to real Dovecot directors.
//!
//! Two identical stand-alone real directors: every step runs `doveadm director <args>` on the
//! first and `directorctl <args>` on the second, and stdout, stderr and the exit code must be
//! identical (after swapping the instance paths and masking `YYYY-MM-DD HH:MM:SS` times,
//! which may differ by a second between the two directors). Read-only and mutating steps
//! alternate, so both directors stay in the same state.
//!
//! `directorctl` is found next to this test's target directory (`cargo test --workspace`
//! builds it; for this package alone run `cargo build --bin directorctl` first).

use std::path::Path;
use std::process::Command;

use compat_tests::doveadm::Output;
use compat_tests::ours::require_our_binary;
use compat_tests::{require_dovecot, Instance, InstanceBuilder};

const MAIL_SERVERS: &str = "10.0.0.1-10.0.0.3 10.0.1.1@tagA";

/// `doveadm director` arguments, in order (`$USERS`: a users file). Global options
/// (`-f`, `-h`) come first, as with doveadm.
const STEPS: &[&[&str]] = &[
    &["status"],
    &["-f", "tab", "status"],
    &["-h", "status"],
    &["status", "nobody"],
    &["status", "user1", "tagA"],
    &["status", "user1", "nosuchtag"],
    &["ring", "status"],
    &["add", "10.0.0.4", "50"],
    &["add", "-t", "tagA", "10.0.1.5"],
    &["add", "10.0.1.6@tagB"],
    &["add", "-t", "tagB", "10.0.1.5"],
    &["add", "10.0.0.9", "1001"],
    &["add", "2001:DB8::1", "7"],
    &["update", "10.0.0.4", "10"],
    &["update", "10.9.9.9", "10"],
    &["down", "10.0.0.1"],
    &["status"],
    &["down", "10.9.9.9"],
    &["up", "10.0.0.1"],
    &["move", "user1", "10.0.0.2"],
    &["move", "user2", "10.0.0.3"],
    &["move", "Alice@Example.COM", "10.0.1.1"],
    &["move", "user1", "10.9.9.9"],
    &["status", "user1"],
    &["-f", "flow", "status", "user2"],
    &["map", "-f", "$USERS"],
    &["map", "-f", "$USERS", "10.0.0.2"],
    &["map", "-h", "-f", "$USERS", "617210206"],
    &["map"],
    &["map", "-u", "Alice@Example.COM"],
    &["kick", "user1"],
    &["kick", "-f", "director_tag", "foo"],
    &["flush", "10.9.9.9"],
    &["flush", "-F", "10.0.0.3"],
    &["dump"],
    &["remove", "10.0.0.4"],
    &["remove", "10.9.9.9"],
    &["ring", "add", "127.0.0.4", "9090"],
    &["ring", "status"],
    &["ring", "remove", "127.0.0.4", "9090"],
    &["ring", "remove", "127.0.0.9", "9090"],
    &["add"],
    &["status", "-x"],
    &["flush", "all"],
    &["status"],
];

fn start(dovecot: &compat_tests::Dovecot, name: &str) -> Instance {
    let inst = InstanceBuilder::director(name, MAIL_SERVERS)
        .conf("passdb {\n  driver = static\n  args = nopassword=y\n}\nuserdb {\n  driver = static\n  args = uid=nobody gid=nogroup\n}\n")
        .start(dovecot)
        .expect("start director");
    std::fs::write(
        inst.root().join("users.txt"),
        "user1\nuser2\nuser3\nAlice@Example.COM\n",
    )
    .unwrap();
    inst
}

/// Splits `step` into global options and the subcommand's words, replacing `$USERS`.
fn args(step: &[&str], root: &Path) -> (Vec<String>, Vec<String>) {
    let split = step
        .iter()
        .position(|a| !a.starts_with('-') && !["tab", "flow"].contains(a))
        .unwrap_or(0);
    let fix = |a: &&str| {
        if *a == "$USERS" {
            root.join("users.txt").display().to_string()
        } else {
            a.to_string()
        }
    };
    (
        step[..split].iter().map(fix).collect(),
        step[split..].iter().map(fix).collect(),
    )
}

/// Replaces the digits of every `YYYY-MM-DD HH:MM:SS` with `#`.
fn mask_times(text: &str) -> String {
    const SHAPE: &[u8] = b"dddd-dd-dd dd:dd:dd";
    let mut b = text.as_bytes().to_vec();
    let mut i = 0;
    while i + SHAPE.len() <= b.len() {
        let fits = SHAPE.iter().zip(&b[i..]).all(|(s, c)| {
            if *s == b'd' {
                c.is_ascii_digit()
            } else {
                s == c
            }
        });
        if fits {
            for (s, c) in SHAPE.iter().zip(&mut b[i..]) {
                if *s == b'd' {
                    *c = b'#';
                }
            }
            i += SHAPE.len();
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn normalized(out: &Output, from: &Path, to: &Path) -> (String, String, i32) {
    let fix = |b: &[u8]| {
        mask_times(
            &String::from_utf8_lossy(b)
                .replace(&from.display().to_string(), &to.display().to_string()),
        )
    };
    (fix(&out.stdout), fix(&out.stderr), out.code)
}

#[test]
fn directorctl_matches_doveadm_against_real_directors() {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    let Some(ctl) = require_our_binary("directorctl") else {
        return;
    };
    let real = start(&dovecot, "doveadm-side");
    let ours = start(&dovecot, "directorctl-side");
    let mut differences = Vec::new();
    for step in STEPS {
        let (global, sub) = args(step, real.root());
        let mut cmd = real.doveadm();
        cmd.args(&global).arg("director").args(&sub);
        let want = Output::of(&mut cmd).expect("run doveadm");
        let (global, sub) = args(step, ours.root());
        let mut cmd = Command::new(&ctl);
        cmd.arg("-o")
            .arg(format!("base_dir={}", ours.base_dir().display()))
            .args(&global)
            .args(&sub);
        let got = Output::of(&mut cmd).expect("run directorctl");
        let want = normalized(&want, real.root(), ours.root());
        let got = normalized(&got, ours.root(), ours.root());
        if want != got {
            differences.push(format!(
                "step {step:?}:\n  doveadm     {want:?}\n  directorctl {got:?}"
            ));
        }
    }
    println!(
        "directorctl vs doveadm against real directors: {} steps, {} differences",
        STEPS.len(),
        differences.len()
    );
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
