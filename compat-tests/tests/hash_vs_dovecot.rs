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
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use compat_tests::admin::{escape_field, AdminClient};
use compat_tests::doveadm::{Output, StandaloneDoveadm};
use compat_tests::ours::require_our_binary;
use compat_tests::usernames::{as_hash, generate, NUMERIC};
use compat_tests::{require_dovecot, Instance, InstanceBuilder};
use director::mail_hosts::parse_mail_servers;
use director::state::{Directory, Tag};
use director::username_hash::UsernameHash;
use director_parsers::ip::{ip_to_string, parse_ip};

/// Random names per host set (plus the pure-digit ones, which the admin protocol takes as
/// hashes).
const LOOKUP_USERS: usize = 1200;
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// One `director_mail_servers` value, the tags to look users up in, and the changes made
/// through the admin protocol before looking up.
struct HostSet {
    name: &'static str,
    servers: &'static str,
    tags: &'static [&'static str],
    /// HOST-UPDATE `(ip, vhost count)`.
    updates: &'static [(&'static str, u32)],
    /// HOST-DOWN.
    down: &'static [&'static str],
}

const HOST_SETS: &[HostSet] = &[
    HostSet {
        name: "ipv4-range",
        servers: "10.0.0.1-10.0.0.5",
        tags: &[""],
        updates: &[],
        down: &[],
    },
    HostSet {
        name: "ipv6-mixed",
        servers: "10.0.0.1 2001:db8::1 2001:db8::a-2001:db8::c 192.168.7.9 2001:DB8:0:0:0:0:0:ff",
        tags: &[""],
        updates: &[],
        down: &[],
    },
    HostSet {
        name: "tags",
        servers: "10.0.0.1-10.0.0.3 10.0.1.1@tagA 10.0.1.2@tagA 10.0.2.1@tagB",
        tags: &["", "tagA", "tagB", "nosuchtag"],
        updates: &[],
        down: &[],
    },
    HostSet {
        name: "vhosts-and-down",
        servers: "10.0.0.1-10.0.0.5 10.0.3.1@tagC 10.0.3.2@tagC",
        tags: &["", "tagC"],
        updates: &[
            ("10.0.0.1", 200),
            ("10.0.0.2", 50),
            ("10.0.0.3", 1),
            ("10.0.0.5", 0),
            ("10.0.3.2", 1000),
        ],
        down: &["10.0.0.4", "10.0.3.1"],
    },
];

/// The admin protocol's user argument: a pure-digit name is the hash itself.
fn admin_hash(hasher: &UsernameHash, name: &[u8]) -> u32 {
    as_hash(name).unwrap_or_else(|| hasher.hash(name))
}

fn ip_text(ip: Option<IpAddr>) -> String {
    ip.map(|ip| ip_to_string(&ip)).unwrap_or_default()
}

/// Starts a real director for `set`, applies its changes, and returns it with our directory
/// in the same state.
fn setup(dovecot: &compat_tests::Dovecot, set: &HostSet) -> (Instance, AdminClient, Directory) {
    let inst = InstanceBuilder::director(set.name, set.servers)
        .start(dovecot)
        .expect("start director");
    let mut admin =
        AdminClient::connect(&inst.path("director-admin"), ADMIN_TIMEOUT).expect("admin");
    let specs = parse_mail_servers(set.servers, &mut |name| {
        Err(format!("no DNS in tests: {name}"))
    })
    .expect("our parse of director_mail_servers");
    let mut ours = Directory::new(specs, 15 * 60);
    let now = 1_800_000_000;
    for (ip, vhosts) in set.updates {
        let reply = admin
            .request(format!("HOST-UPDATE\t{ip}\t{vhosts}").as_bytes())
            .unwrap();
        assert_eq!(reply, b"OK", "{}: HOST-UPDATE {ip} {vhosts}", set.name);
        let ip = parse_ip(ip.as_bytes()).unwrap();
        ours.host_update(ip, None, *vhosts, now);
    }
    for ip in set.down {
        let reply = admin
            .request(format!("HOST-DOWN\t{ip}").as_bytes())
            .unwrap();
        assert_eq!(reply, b"OK", "{}: HOST-DOWN {ip}", set.name);
        ours.host_down(parse_ip(ip.as_bytes()).unwrap(), now);
    }
    (inst, admin, ours)
}

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
        let (inst, mut admin, mut ours) = setup(&dovecot, set);
        for tag in set.tags {
            let requests: Vec<Vec<u8>> = users
                .iter()
                .map(|u| {
                    let mut line = b"USER-LOOKUP\t".to_vec();
                    line.extend(escape_field(u));
                    line.push(b'\t');
                    line.extend(escape_field(tag.as_bytes()));
                    line
                })
                .collect();
            let replies = admin
                .pipeline(&requests)
                .unwrap_or_else(|e| panic!("{}: {e}\n{}", set.name, inst.log()));
            let tag_value = Tag::new(tag.as_bytes());
            for (user, reply) in users.iter().zip(&replies) {
                lookups += 1;
                let fields: Vec<&[u8]> = reply.split(|&b| b == b'\t').collect();
                assert_eq!(
                    fields.len(),
                    4,
                    "{}: reply {:?}",
                    set.name,
                    reply.escape_ascii().to_string()
                );
                assert_eq!(
                    (fields[0], fields[1]),
                    (&b""[..], &b"0"[..]),
                    "nobody logged in, so no entry"
                );
                let (_, hashed, initial) =
                    ours.user_lookup(admin_hash(&hasher, user), &tag_value, 1_800_000_000);
                let (hashed, initial) = (ip_text(hashed), ip_text(initial));
                if fields[2] != hashed.as_bytes() || fields[3] != initial.as_bytes() {
                    mismatches.push(format!(
                        "{} tag {tag:?} user {:?}: dovecot hashed={} initial={}, ours hashed={hashed} initial={initial}",
                        set.name,
                        user.escape_ascii().to_string(),
                        String::from_utf8_lossy(fields[2]),
                        String::from_utf8_lossy(fields[3]),
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
const CTL_USERS: usize = 40;

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
