//! Our user hash and host choice against the real Dovecot 2.3 binaries.
//!
//! - The real director's `USER-LOOKUP` "hashed" and "initial config" columns vs our
//!   `director::state::Directory` for ~1,200 names on four host sets (IPv4 range, IPv6 mixed
//!   with IPv4, tags, vhost counts changed with HOST-UPDATE plus a HOST-DOWN host).
//! - `doveadm director map -u` (Dovecot's own `mail_user_hash()`) vs
//!   `director::username_hash::UsernameHash` under several `director_username_hash` formats.
//! - `directorctl map -u` vs `doveadm director map -u`: stdout, stderr and exit code, byte
//!   for byte, including hash-format errors. `directorctl` is found next to this test's
//!   target directory: `cargo test --workspace` builds it; for this package alone run
//!   `cargo build --bin directorctl` first.
//!
//! Needs root and Dovecot 2.3 (see `compat_tests::require_dovecot`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;
use std::time::Instant;

use compat_tests::doveadm::{Output, StandaloneDoveadm};
use compat_tests::hostsets::{our_choice, real_choices, HOST_SETS};
use compat_tests::ours::require_our_binary;
use compat_tests::require_dovecot;
use compat_tests::usernames::{generate, NUMERIC};
use director::username_hash::UsernameHash;

/// Random names per host set (plus the pure-digit ones, which the admin protocol takes as
/// hashes).
const LOOKUP_USERS: usize = 1200;

#[test]
fn host_choice_matches_real_director() {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    let hasher = UsernameHash::new("%Lu").unwrap();
    let mut users = generate(0x2319_0001, LOOKUP_USERS);
    users.extend(NUMERIC.iter().map(|n| n.to_vec()));
    let started = Instant::now();
    let (mut lookups, mut mismatches, mut instances) = (0usize, Vec::new(), Vec::new());
    for set in HOST_SETS {
        let (inst, mut admin) = set.real_director(&dovecot).expect("real director");
        let mut ours = set.our_directory();
        for tag in set.tags {
            let real = real_choices(&mut admin, &users, tag)
                .unwrap_or_else(|e| panic!("{}: {e}\n{}", set.name, inst.log()));
            for (user, real) in users.iter().zip(real) {
                lookups += 1;
                let mine = our_choice(&mut ours, &hasher, user, tag);
                if mine != real {
                    mismatches.push(format!(
                        "{} tag {tag:?} user {:?}: dovecot {real:?}, ours {mine:?}",
                        set.name,
                        user.escape_ascii().to_string()
                    ));
                }
            }
        }
        instances.push(inst);
    }
    let elapsed = started.elapsed();
    // Each master takes a second or two to stop: stop them side by side.
    std::thread::scope(|s| {
        for inst in instances {
            s.spawn(move || drop(inst));
        }
    });
    println!(
        "USER-LOOKUP: {} names x {} host sets ({} lookups incl. every tag) compared with the real director in {:.1} s, {} mismatches",
        users.len(),
        HOST_SETS.len(),
        lookups,
        elapsed.as_secs_f64(),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Formats compared with doveadm, and how many names each (one doveadm run per name).
const DOVEADM_FORMATS: &[&str] = &["%Lu", "%u", "%Ln", "%Ld"];
const DOVEADM_USERS_PER_FORMAT: usize = 200;
/// doveadm runs in parallel (each is ~10 ms of process start-up).
const DOVEADM_THREADS: usize = 4;

#[test]
fn username_hash_matches_doveadm_map_u() {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    let doveadm = StandaloneDoveadm::new(&dovecot).expect("doveadm config");
    let users = generate(0x2319_1001, DOVEADM_USERS_PER_FORMAT);
    let jobs: Vec<(&str, &[u8])> = DOVEADM_FORMATS
        .iter()
        .flat_map(|f| users.iter().map(move |u| (*f, u.as_slice())))
        .collect();
    let started = Instant::now();
    let next = Mutex::new(0usize);
    let mismatches = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..DOVEADM_THREADS {
            scope.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some(&(format, user)) = jobs.get(i) else {
                    break;
                };
                let (real, _) = doveadm
                    .map_u(format, OsStr::from_bytes(user))
                    .unwrap_or_else(|e| {
                        panic!("doveadm map -u {:?}: {e}", user.escape_ascii().to_string())
                    });
                let ours = UsernameHash::new(format)
                    .expect("supported format")
                    .hash(user);
                if ours != real {
                    mismatches.lock().unwrap().push(format!(
                        "{format} {:?}: doveadm {real}, ours {ours}",
                        user.escape_ascii().to_string()
                    ));
                }
            });
        }
    });
    let mismatches = mismatches.into_inner().unwrap();
    println!(
        "doveadm map -u: {} formats x {} users = {} hashes compared in {:.1} s, {} mismatches",
        DOVEADM_FORMATS.len(),
        users.len(),
        jobs.len(),
        started.elapsed().as_secs_f64(),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Formats for the byte comparison: supported ones and two that fail to expand in Dovecot.
const CTL_FORMATS: &[&str] = &["%Lu", "%u", "%Ln", "%Ld", "%n@%d", "%x", "%{foo}"];
const CTL_USERS: usize = 30;

#[test]
fn directorctl_map_u_prints_what_doveadm_prints() {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    let Some(ctl) = require_our_binary("directorctl") else {
        return;
    };
    let doveadm = StandaloneDoveadm::new(&dovecot).expect("doveadm config");
    let users = generate(0x2319_0c71, CTL_USERS);
    let started = Instant::now();
    let mut differences = Vec::new();
    let mut compared = 0;
    for format in CTL_FORMATS {
        for user in &users {
            let user = OsStr::from_bytes(user);
            let real = doveadm.map_u_output(format, user).expect("run doveadm");
            let ours = Output::of(
                std::process::Command::new(&ctl)
                    .arg("-o")
                    .arg(format!("director_username_hash={format}"))
                    .args(["map", "-u", "--"])
                    .arg(user),
            )
            .expect("run directorctl");
            compared += 1;
            if ours != real {
                differences.push(format!(
                    "{format} {user:?}:\n  doveadm     {real:?}\n  directorctl {ours:?}"
                ));
            }
        }
    }
    println!(
        "directorctl map -u vs doveadm: {compared} runs ({} formats x {} users) in {:.1} s, {} differences",
        CTL_FORMATS.len(),
        users.len(),
        started.elapsed().as_secs_f64(),
        differences.len()
    );
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
