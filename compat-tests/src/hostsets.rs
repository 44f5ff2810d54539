//! The host sets our host choice is compared on, set up identically on a real director
//! (through the admin protocol) and in our `director::state::Directory`.

use std::net::IpAddr;
use std::time::Duration;

use director::mail_hosts::parse_mail_servers;
use director::state::{Directory, Tag};
use director::username_hash::UsernameHash;
use director_parsers::ip::{ip_to_string, parse_ip};

use crate::admin::{escape_field, AdminClient};
use crate::dovecot::Dovecot;
use crate::err;
use crate::instance::{Instance, InstanceBuilder};
use crate::usernames::as_hash;

/// "Now" for our directory: no user entries exist, so only host state changes use it.
const NOW: u64 = 1_800_000_000;
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// One `director_mail_servers` value, the tags to look users up in, and the changes made
/// through the admin protocol before looking up.
#[derive(Debug)]
pub struct HostSet {
    /// Short name, used in messages and the golden file.
    pub name: &'static str,
    /// `director_mail_servers`.
    pub servers: &'static str,
    /// Tags to look up in (`""` = default; unknown tags are allowed).
    pub tags: &'static [&'static str],
    /// HOST-UPDATE `(ip, vhost count)`, applied first.
    pub updates: &'static [(&'static str, u32)],
    /// HOST-DOWN, applied after the updates.
    pub down: &'static [&'static str],
}

/// (a) IPv4 range, (b) IPv6 mixed with IPv4, (c) tags, (d) vhost counts and down hosts.
pub const HOST_SETS: &[HostSet] = &[
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

impl HostSet {
    /// One line describing the set (for headers and messages).
    pub fn describe(&self) -> String {
        format!(
            "{}: director_mail_servers = {}; tags {:?}; HOST-UPDATE {:?}; HOST-DOWN {:?}",
            self.name, self.servers, self.tags, self.updates, self.down
        )
    }

    /// Our directory for this set, with its changes applied.
    pub fn our_directory(&self) -> Directory {
        let specs = parse_mail_servers(self.servers, &mut |name| {
            Err(format!("no DNS here: {name}"))
        })
        .unwrap_or_else(|e| panic!("{}: our parse of director_mail_servers: {e}", self.name));
        let mut dir = Directory::new(specs, 15 * 60);
        for (ip, vhosts) in self.updates {
            dir.host_update(ip_of(ip), None, *vhosts, NOW);
        }
        for ip in self.down {
            dir.host_down(ip_of(ip), NOW);
        }
        dir
    }

    /// A real stand-alone director for this set, with its changes applied, and an admin
    /// connection to it.
    pub fn real_director(&self, dovecot: &Dovecot) -> std::io::Result<(Instance, AdminClient)> {
        let inst = InstanceBuilder::director(self.name, self.servers).start(dovecot)?;
        let mut admin = AdminClient::connect(&inst.path("director-admin"), ADMIN_TIMEOUT)?;
        let mut expect_ok = |line: String| -> std::io::Result<()> {
            match admin.request(line.as_bytes())? {
                r if r == b"OK" => Ok(()),
                r => Err(err(format!(
                    "{}: {line}: {:?}",
                    self.name,
                    r.escape_ascii().to_string()
                ))),
            }
        };
        for (ip, vhosts) in self.updates {
            expect_ok(format!("HOST-UPDATE\t{ip}\t{vhosts}"))?;
        }
        for ip in self.down {
            expect_ok(format!("HOST-DOWN\t{ip}"))?;
        }
        Ok((inst, admin))
    }
}

fn ip_of(text: &str) -> IpAddr {
    parse_ip(text.as_bytes()).unwrap_or_else(|| panic!("bad IP in a host set: {text}"))
}

/// The "hashed" and "initial config" columns of one USER-LOOKUP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Host of the current vhost ring (empty: none).
    pub hashed: String,
    /// Host of the startup configuration's ring (empty: none).
    pub initial: String,
}

/// Asks the real director `USER-LOOKUP` for every user in `tag` (pipelined). Nobody has
/// logged in, so every reply must start with an empty current host and expiry 0.
pub fn real_choices(
    admin: &mut AdminClient,
    users: &[Vec<u8>],
    tag: &str,
) -> std::io::Result<Vec<Choice>> {
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
    let replies = admin.pipeline(&requests)?;
    replies
        .iter()
        .map(|r| {
            let f: Vec<&[u8]> = r.split(|&b| b == b'\t').collect();
            if f.len() != 4 || f[0] != b"" || f[1] != b"0" {
                return Err(err(format!(
                    "unexpected USER-LOOKUP reply {:?}",
                    r.escape_ascii().to_string()
                )));
            }
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            Ok(Choice {
                hashed: text(f[2]),
                initial: text(f[3]),
            })
        })
        .collect()
}

/// What our directory answers for `user` in `tag` (a pure-digit name is the hash itself, as
/// in the admin protocol).
pub fn our_choice(dir: &mut Directory, hasher: &UsernameHash, user: &[u8], tag: &str) -> Choice {
    let hash = as_hash(user).unwrap_or_else(|| hasher.hash(user));
    let (_, hashed, initial) = dir.user_lookup(hash, &Tag::new(tag.as_bytes()), NOW);
    let text = |ip: Option<IpAddr>| ip.map(|ip| ip_to_string(&ip)).unwrap_or_default();
    Choice {
        hashed: text(hashed),
        initial: text(initial),
    }
}
