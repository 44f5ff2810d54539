//! The real `doveadm director` against the real Dovecot director and against our `directord`:
//! every subcommand and error case must print the same stdout and stderr and exit the same.
//! Our `directorctl` with the same arguments against ours must print what doveadm printed.
//!
//! Three targets get the same scripted sequence of commands, so their states stay equal:
//! a stand-alone real director (Dovecot instance), `directord` A driven by the real
//! `doveadm -c <the real instance's config>`, and `directord` B driven by `directorctl`.
//! Outputs are compared after replacing each target's admin socket path with `<admin>` and
//! masking the digits of `YYYY-MM-DD HH:MM:SS` times (expiry and state-change times may
//! differ by a second); everything runs with `TZ=UTC`. `COMPAT_VERBOSE=1` prints the real
//! director's output of every case.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use compat_tests::doveadm::Output;
use compat_tests::login_lab::bounded::TIMED_OUT;
use compat_tests::login_lab::{bounded, Directord, DirectordConfig};
use compat_tests::ours::require_our_binary;
use compat_tests::{require_dovecot, Instance, InstanceBuilder};

/// `director_mail_servers` on all three targets.
const MAIL_SERVERS: &str = "10.0.0.1-10.0.0.3 10.0.1.1@tagA";

/// `(case name, doveadm director arguments)`; global options (`-f`, `-h`, `-v`) come first.
/// `$USERS` is a users file, `$HASH` the hash of `user1`. `-a <socket>` is inserted after
/// the subcommand's name (after `ring <x>` for ring commands).
const CASES: &[(&str, &[&str])] = &[
    ("status", &["status"]),
    ("status -f tab", &["-f", "tab", "status"]),
    ("status -h (no titles)", &["-h", "status"]),
    ("status user (unassigned)", &["status", "user1"]),
    ("status user tag", &["status", "user1", "tagA"]),
    ("status user unknown tag", &["status", "user1", "nosuchtag"]),
    ("ring status", &["ring", "status"]),
    ("add", &["add", "10.0.0.4"]),
    ("add with vhosts", &["add", "10.0.0.5", "50"]),
    ("add -t", &["add", "-t", "tagA", "10.0.1.5"]),
    ("add host@tag with vhosts", &["add", "10.0.1.6@tagB", "20"]),
    ("add -v existing host", &["-v", "add", "10.0.0.4", "100"]),
    ("add vhost too large", &["add", "10.0.0.9", "5000"]),
    ("add vhost 1001", &["add", "10.0.0.9", "1001"]),
    ("update", &["update", "10.0.0.4", "10"]),
    ("update unknown", &["update", "10.9.9.9", "10"]),
    ("status after add/update", &["status"]),
    ("down", &["down", "10.0.0.1"]),
    ("status after down", &["status"]),
    ("down unknown", &["down", "10.9.9.9"]),
    ("up", &["up", "10.0.0.1"]),
    ("up -v", &["-v", "up", "10.0.0.2"]),
    ("move", &["move", "user1", "10.0.0.2"]),
    ("move -v", &["-v", "move", "user2", "10.0.0.3"]),
    (
        "move mixed-case user",
        &["move", "Alice@Example.COM", "10.0.1.1"],
    ),
    ("move unknown host", &["move", "user3", "10.9.9.9"]),
    ("status user (moved)", &["status", "user1"]),
    ("status user -f flow", &["-f", "flow", "status", "user2"]),
    ("status after moves", &["status"]),
    ("map", &["map"]),
    ("map -f", &["map", "-f", "$USERS"]),
    ("map host", &["map", "-f", "$USERS", "10.0.0.2"]),
    ("map -u", &["map", "-u", "Alice@Example.COM"]),
    ("map -h", &["map", "-h", "-f", "$USERS", "$HASH"]),
    ("kick", &["kick", "user1"]),
    ("kick -v", &["-v", "kick", "user2"]),
    ("kick -f", &["kick", "-f", "director_tag", "foo"]),
    ("flush host", &["flush", "10.0.0.2"]),
    ("flush -F host", &["flush", "-F", "10.0.0.3"]),
    ("flush unknown", &["flush", "10.9.9.9"]),
    (
        "flush --max-parallel host",
        &["flush", "--max-parallel", "5", "10.0.0.2"],
    ),
    ("flush all", &["flush", "all"]),
    (
        "flush --max-parallel all",
        &["flush", "--max-parallel", "5", "all"],
    ),
    ("flush -F all", &["flush", "-F", "all"]),
    ("status after flush", &["status"]),
    ("status -f json", &["-f", "json", "status"]),
    ("map after flush", &["map", "-f", "$USERS"]),
    ("map -f tab", &["-f", "tab", "map", "-f", "$USERS"]),
    ("dump", &["dump"]),
    ("remove", &["remove", "10.0.0.4"]),
    ("remove -v", &["-v", "remove", "10.0.0.5"]),
    ("remove unknown", &["remove", "10.9.9.9"]),
    ("remove a configured host", &["remove", "10.0.0.3"]),
    ("dump after remove (HOST-LIST-REMOVED)", &["dump"]),
    ("dump -f tab", &["-f", "tab", "dump"]),
    ("ring add", &["ring", "add", "127.0.0.4", "9090"]),
    ("ring status after ring add", &["ring", "status"]),
    ("ring remove", &["ring", "remove", "127.0.0.4", "9090"]),
    (
        "ring remove unknown",
        &["ring", "remove", "127.0.0.9", "9090"],
    ),
    ("ring status after ring add/remove", &["ring", "status"]),
    (
        "ring remove of a removed director",
        &["ring", "remove", "127.0.0.4", "9090"],
    ),
    (
        "ring add of a removed director",
        &["ring", "add", "127.0.0.4", "9090"],
    ),
    (
        "ring status after re-adding a removed director",
        &["ring", "status"],
    ),
    ("usage: add without host", &["add"]),
    ("usage: update without vhost count", &["update", "10.0.0.1"]),
    ("usage: add numeric host", &["add", "12345"]),
    ("usage: add vhost not a number", &["add", "10.0.0.1", "x"]),
    ("usage: move without host", &["move", "user1"]),
    ("usage: status unknown option", &["status", "-x"]),
    ("usage: map -h without hash", &["map", "-h"]),
    ("usage: ring add not an ip", &["ring", "add", "notanip"]),
    ("usage: unknown subcommand", &["bogus"]),
    ("usage: no subcommand", &[]),
    ("status at the end", &["status"]),
];

/// Longest any one client run may take (they normally need well under a second).
const CLIENT_LIMIT: Duration = Duration::from_secs(20);

/// Global options of `doveadm` that take a value.
const GLOBAL_WITH_VALUE: &[&str] = &["-f"];

/// One command target: where its admin socket is and what to replace in its output.
struct Target {
    admin: PathBuf,
    root: PathBuf,
}

/// Splits `case` into (global options, subcommand words, rest), substituting placeholders.
fn split(case: &[&str], users: &Path, hash: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let fix = |a: &&str| match *a {
        "$USERS" => users.display().to_string(),
        "$HASH" => hash.to_string(),
        other => other.to_string(),
    };
    let mut i = 0;
    while i < case.len() && case[i].starts_with('-') {
        i += if GLOBAL_WITH_VALUE.contains(&case[i]) {
            2
        } else {
            1
        };
    }
    let i = i.min(case.len());
    let words = match case.get(i) {
        None => 0,
        Some(&"ring") => 2.min(case.len() - i),
        Some(_) => 1,
    };
    (
        case[..i].iter().map(fix).collect(),
        case[i..i + words].iter().map(fix).collect(),
        case[i + words..].iter().map(fix).collect(),
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

/// (stdout, stderr, exit code) with the target's paths and the clock masked.
fn normalized(out: &Output, t: &Target) -> (String, String, i32) {
    let fix = |b: &[u8]| {
        let s = String::from_utf8_lossy(b)
            .replace(&t.admin.display().to_string(), "<admin>")
            .replace(&t.root.display().to_string(), "<root>");
        mask_times(&s)
    };
    (fix(&out.stdout), fix(&out.stderr), out.code)
}

fn doveadm(
    real: &Instance,
    t: &Target,
    global: &[String],
    sub: &[String],
    rest: &[String],
) -> Output {
    let mut cmd = real.doveadm();
    cmd.env("TZ", "UTC").args(global).arg("director").args(sub);
    if !sub.is_empty() {
        cmd.arg("-a").arg(&t.admin);
    }
    cmd.args(rest);
    Output::of(&mut bounded(&cmd, CLIENT_LIMIT)).expect("run doveadm")
}

/// `directorctl` with doveadm's `base_dir` (`map` without `-f` lists users from its
/// `auth-userdb`), so both clients see the same environment apart from the director.
fn directorctl(
    ctl: &Path,
    base_dir: &Path,
    t: &Target,
    global: &[String],
    sub: &[String],
    rest: &[String],
) -> Output {
    let mut cmd = Command::new(ctl);
    cmd.env("TZ", "UTC")
        .arg("-o")
        .arg(format!("base_dir={}", base_dir.display()))
        .args(global)
        .args(sub);
    if !sub.is_empty() {
        cmd.arg("-a").arg(&t.admin);
    }
    cmd.args(rest);
    Output::of(&mut bounded(&cmd, CLIENT_LIMIT)).expect("run directorctl")
}

fn start_ours(dir: &Path) -> Directord {
    let base_dir = dir.join("run");
    fs::create_dir_all(base_dir.join("login")).expect("create base_dir");
    let cfg = DirectordConfig {
        base_dir,
        mail_servers: MAIL_SERVERS.to_string(),
        user_expire_secs: 15 * 60,
        extra: String::new(),
    };
    Directord::start(&cfg, dir).expect("start directord")
}

#[test]
fn doveadm_prints_the_same_against_ours_as_against_the_real_director() {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    let Some(ctl) = require_our_binary("directorctl") else {
        return;
    };
    if require_our_binary("directord").is_none() {
        return;
    }
    let real = InstanceBuilder::director("doveadm-vs-ours", MAIL_SERVERS)
        .setting("director_user_expire", "15 min")
        // An auth service that answers: `map` without `-f` lists users through it.
        .conf("passdb {\n  driver = static\n  args = nopassword=y\n}\nuserdb {\n  driver = static\n  args = uid=nobody gid=nogroup\n}\n")
        .start(&dovecot)
        .expect("start the real director");
    let users = real.root().join("users.txt");
    fs::write(&users, "user1\nuser2\nuser3\nAlice@Example.COM\nbob\n").expect("users file");
    let dir_a = tempfile::Builder::new()
        .prefix("dcompat-ours-a-")
        .tempdir()
        .unwrap();
    let dir_b = tempfile::Builder::new()
        .prefix("dcompat-ours-b-")
        .tempdir()
        .unwrap();
    let ours_a = start_ours(dir_a.path());
    let ours_b = start_ours(dir_b.path());
    let t_real = Target {
        admin: real.path("director-admin"),
        root: real.root().to_path_buf(),
    };
    let t_a = Target {
        admin: ours_a.admin_socket(),
        root: dir_a.path().to_path_buf(),
    };
    let t_b = Target {
        admin: ours_b.admin_socket(),
        root: dir_b.path().to_path_buf(),
    };
    let hash_out = doveadm(
        &real,
        &t_real,
        &[],
        &["map".into()],
        &["-u".into(), "user1".into()],
    );
    let hash = hash_out.stdout_text().trim().to_string();
    assert!(hash.parse::<u32>().is_ok(), "map -u user1 printed {hash:?}");

    let mut report = Vec::new();
    let mut failures = Vec::new();
    let (mut same_doveadm, mut same_ctl) = (0, 0);
    // A daemon that made one client time out is not asked again: that keeps the run bounded.
    let hung = || {
        (
            String::new(),
            "(not run: an earlier case timed out)".into(),
            -1,
        )
    };
    let (mut a_hung, mut b_hung) = (false, false);
    for (name, case) in CASES {
        let (global, sub, rest) = split(case, &users, &hash);
        let want = normalized(&doveadm(&real, &t_real, &global, &sub, &rest), &t_real);
        assert_ne!(
            want.2, TIMED_OUT,
            "the real director did not answer {case:?}"
        );
        let via_doveadm = if a_hung {
            hung()
        } else {
            normalized(&doveadm(&real, &t_a, &global, &sub, &rest), &t_a)
        };
        let via_ctl = if b_hung {
            hung()
        } else {
            normalized(
                &directorctl(&ctl, &real.base_dir(), &t_b, &global, &sub, &rest),
                &t_b,
            )
        };
        a_hung |= via_doveadm.2 == TIMED_OUT;
        b_hung |= via_ctl.2 == TIMED_OUT;
        if std::env::var_os("COMPAT_VERBOSE").is_some() {
            println!("{name}: {want:?}");
        }
        let ok_d = via_doveadm == want;
        let ok_c = via_ctl == want;
        same_doveadm += usize::from(ok_d);
        same_ctl += usize::from(ok_c);
        report.push(format!(
            "  [{}] [{}] {name}",
            if ok_d { "same" } else { "DIFF" },
            if ok_c { "same" } else { "DIFF" },
        ));
        if !ok_d || !ok_c {
            failures.push(format!(
                "case {name:?} (doveadm director {}):\n  real director     {want:?}\n  doveadm -> ours   {via_doveadm:?}\n  directorctl->ours {via_ctl:?}",
                case.join(" ")
            ));
        }
    }
    println!("cases: [doveadm->ours vs doveadm->real] [directorctl->ours vs doveadm->real] name");
    println!("{}", report.join("\n"));
    println!(
        "{} cases: doveadm->ours matched {same_doveadm}, directorctl->ours matched {same_ctl}",
        CASES.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}\n--- directord A log ---\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n"),
        ours_a.log()
    );
}
