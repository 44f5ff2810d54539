//! Our user hash and host choice against the real Dovecot 2.3 binaries.
//!
//! - `doveadm director map -u` (Dovecot's own `mail_user_hash()`) vs
//!   `director::username_hash::UsernameHash` under several `director_username_hash` formats.
//!
//! Needs root and Dovecot 2.3 (see `compat_tests::require_dovecot`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;
use std::time::Instant;

use compat_tests::doveadm::StandaloneDoveadm;
use compat_tests::require_dovecot;
use compat_tests::usernames::generate;
use director::username_hash::UsernameHash;

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
