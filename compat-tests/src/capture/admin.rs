//! Admin-protocol fixtures: every `doveadm director` subcommand, plus raw request lines
//! (pipelined and error cases), against a real stand-alone director through a recording
//! relay on `director-admin`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Scenario, Session};
use crate::admin::{AdminClient, HANDSHAKE};
use crate::dovecot::Dovecot;
use crate::instance::{Instance, InstanceBuilder};
use crate::relay::{Access, Leg, Relay};

const MAIL_SERVERS: &str = "10.0.0.1-10.0.0.3";
const TIMEOUT: Duration = Duration::from_secs(10);

/// `(file name, description, doveadm director argument lists)`; `$USERS` is the users file
/// and `$HASH` the hash of `user1`.
const DOVEADM: &[(&str, &str, &[&[&str]])] = &[
    (
        "status",
        "status: the host list (HOST-LIST)",
        &[&["status"]],
    ),
    (
        "status-user-unknown",
        "status <user never seen> (USER-LOOKUP)",
        &[&["status", "nobody"]],
    ),
    (
        "ring-status",
        "ring status (DIRECTOR-LIST) of a stand-alone director",
        &[&["ring", "status"]],
    ),
    (
        "add",
        "add <host> <vhosts> (HOST-SET)",
        &[&["add", "10.0.0.4", "50"]],
    ),
    (
        "add-tag",
        "add -t <tag> <host> (HOST-SET ip@tag)",
        &[&["add", "-t", "tagA", "10.0.1.5"]],
    ),
    (
        "add-tag-suffix",
        "add <host>@<tag> (HOST-SET ip@tag)",
        &[&["add", "10.0.1.6@tagB"]],
    ),
    (
        "add-tag-change",
        "add -t <other tag> <tagged host>: error reply",
        &[&["add", "-t", "tagB", "10.0.1.5"]],
    ),
    (
        "add-vhosts-too-large",
        "add <host> 1001: error reply",
        &[&["add", "10.0.0.9", "1001"]],
    ),
    (
        "update",
        "update <host> <vhosts> (HOST-UPDATE)",
        &[&["update", "10.0.0.4", "10"]],
    ),
    (
        "update-unknown",
        "update <unknown host> (NOTFOUND)",
        &[&["update", "10.9.9.9", "10"]],
    ),
    (
        "down",
        "down <host> (HOST-DOWN), then status",
        &[&["down", "10.0.0.1"], &["status"]],
    ),
    (
        "down-unknown",
        "down <unknown host> (NOTFOUND)",
        &[&["down", "10.9.9.9"]],
    ),
    ("up", "up <host> (HOST-UP)", &[&["up", "10.0.0.1"]]),
    (
        "move",
        "move <user> <host> (USER-MOVE hash ip) for three users, creating their entries",
        &[
            &["move", "user1", "10.0.0.2"],
            &["move", "user2", "10.0.0.3"],
            &["move", "Alice@Example.COM", "10.0.0.1"],
        ],
    ),
    (
        "move-unknown-host",
        "move <user> <unknown host> (NOTFOUND)",
        &[&["move", "user1", "10.9.9.9"]],
    ),
    (
        "status-user",
        "status <known user> (USER-LOOKUP)",
        &[&["status", "user1"]],
    ),
    (
        "status-user-tag",
        "status <user> <tag> (USER-LOOKUP user tag)",
        &[&["status", "user1", "tagA"]],
    ),
    (
        "map",
        "map without a users file (USER-LIST; doveadm's userdb listing fails)",
        &[&["map"]],
    ),
    (
        "map-f",
        "map -f <users file> (USER-LIST)",
        &[&["map", "-f", "$USERS"]],
    ),
    (
        "map-host",
        "map -f <users file> <host> (USER-LIST ip)",
        &[&["map", "-f", "$USERS", "10.0.0.2"]],
    ),
    (
        "map-h",
        "map -h -f <users file> <hash>: handshake only",
        &[&["map", "-h", "-f", "$USERS", "$HASH"]],
    ),
    ("kick", "kick <user> (USER-KICK)", &[&["kick", "user1"]]),
    (
        "kick-alt",
        "kick -f <passdb field> <value> (USER-KICK-ALT)",
        &[&["kick", "-f", "director_tag", "foo"]],
    ),
    (
        "flush",
        "flush <host> (HOST-RESET-USERS ip)",
        &[&["flush", "10.0.0.2"]],
    ),
    (
        "flush-unknown",
        "flush <unknown host> (NOTFOUND)",
        &[&["flush", "10.9.9.9"]],
    ),
    (
        "flush-max-parallel",
        "flush --max-parallel 5 <host>",
        &[&["flush", "--max-parallel", "5", "10.0.0.3"]],
    ),
    (
        "flush-force",
        "move <user> (may answer TRYAGAIN while an earlier flush still moves it), then flush -F <host> (HOST-FLUSH ip)",
        &[&["move", "user2", "10.0.0.3"], &["flush", "-F", "10.0.0.3"]],
    ),
    (
        "flush-all",
        "flush all (HOST-RESET-USERS)",
        &[&["flush", "all"]],
    ),
    (
        "flush-force-all",
        "flush -F all (HOST-FLUSH)",
        &[&["flush", "-F", "all"]],
    ),
    (
        "dump",
        "dump (HOST-LIST, HOST-LIST-REMOVED)",
        &[&["remove", "10.0.0.3"], &["dump"], &["add", "10.0.0.3"]],
    ),
    (
        "remove",
        "remove <host> (HOST-REMOVE)",
        &[&["remove", "10.0.0.4"]],
    ),
    (
        "remove-unknown",
        "remove <unknown host> (NOTFOUND)",
        &[&["remove", "10.9.9.9"]],
    ),
    (
        "remove-tagged",
        "remove <tagged host> (HOST-REMOVE plain ip)",
        &[&["remove", "10.0.1.5"]],
    ),
    (
        "ring-add",
        "ring add <ip> <port> (DIRECTOR-ADD; nothing runs there)",
        &[&["ring", "add", "127.0.0.4", "9090"]],
    ),
    (
        "ring-remove",
        "ring remove <ip> <port> (DIRECTOR-REMOVE)",
        &[&["ring", "remove", "127.0.0.4", "9090"]],
    ),
    (
        "ring-remove-unknown",
        "ring remove <unknown ip> (NOTFOUND)",
        &[&["ring", "remove", "127.0.0.9", "9090"]],
    ),
    (
        "usage-error",
        "add without arguments: a usage error after the handshake",
        &[&["add"]],
    ),
];

/// Whether a raw request gets one line or a list ending in an empty line.
#[derive(Clone, Copy)]
enum Reply {
    Line,
    List,
}

/// Requests in exactly the form doveadm sends them, one after the other on one connection,
/// sent by the harness's own client (numeric user = hash, escaped TAB, unknown tag, empty tag
/// suffix, vhost counts 0 and 1000, IPv6, repeated state changes).
const RAW_OK: &[(&[u8], Reply)] = &[
    (b"USER-LOOKUP\tuser1\t", Reply::Line),
    (b"USER-LOOKUP\t12345\t", Reply::Line),
    (b"USER-LOOKUP\tal\x01tice\t", Reply::Line),
    (b"USER-LOOKUP\tuser1\ttagA", Reply::Line),
    (b"USER-LOOKUP\tuser1\tnosuchtag", Reply::Line),
    (b"USER-MOVE\t617210206\t10.0.0.1", Reply::Line),
    (b"USER-MOVE\t2119751227\t10.0.0.2", Reply::Line),
    (b"USER-LOOKUP\tuser1\t", Reply::Line),
    (b"USER-LIST", Reply::List),
    (b"USER-LIST\t10.0.0.2", Reply::List),
    (b"HOST-LIST-REMOVED", Reply::List),
    (b"HOST-SET\t10.0.0.7@", Reply::Line),
    (b"HOST-SET\t10.0.0.8\t0", Reply::Line),
    (b"HOST-SET\t10.0.0.8", Reply::Line),
    (b"HOST-UPDATE\t10.0.0.8\t1000", Reply::Line),
    (b"HOST-SET\t2001:db8::1\t7", Reply::Line),
    (b"HOST-DOWN\t2001:db8::1", Reply::Line),
    (b"HOST-DOWN\t2001:db8::1", Reply::Line),
    (b"HOST-LIST", Reply::List),
    (b"HOST-REMOVE\t10.0.0.7", Reply::Line),
    (b"HOST-REMOVE\t10.0.0.8", Reply::Line),
    (b"HOST-REMOVE\t2001:db8::1", Reply::Line),
    (b"USER-KICK\tuser1", Reply::Line),
    (b"HOST-RESET-USERS\t\t5", Reply::Line),
    (b"HOST-FLUSH", Reply::Line),
    (b"DIRECTOR-LIST", Reply::List),
];

/// Requests the director accepts although doveadm never sends them so: extra fields, missing
/// arguments, a trailing CR, a non-canonical IPv6 spelling, an empty IP field.
const RAW_EDGE: &[(&[u8], Reply)] = &[
    (b"HOST-LIST\textra", Reply::List),
    (b"USER-LOOKUP", Reply::Line),
    (b"USER-LOOKUP\t12345", Reply::Line),
    (b"USER-LOOKUP\tuser1\r", Reply::Line),
    (b"HOST-SET\t2001:DB8::0001\t7", Reply::Line),
    (b"HOST-UP\t10.0.0.1\textra", Reply::Line),
    (b"HOST-REMOVE\t2001:db8::1", Reply::Line),
    (b"USER-LIST\t", Reply::List),
    (b"HOST-FLUSH\t", Reply::Line),
];

/// Lines that make the director drop the connection without a reply.
const RAW_FAIL: &[(&str, &[u8])] = &[
    ("raw-bad-handshake", b"VERSION\tdirector-doveadm\t2\t0"),
    ("raw-unknown-command", b"NO-SUCH-COMMAND\tx"),
    ("raw-empty-line", b""),
    ("raw-invalid-ip", b"HOST-SET\tnot-an-ip"),
    ("raw-invalid-vhosts", b"HOST-UPDATE\t10.0.0.1\tabc"),
    ("raw-update-without-count", b"HOST-UPDATE\t10.0.0.1"),
    ("raw-invalid-max-parallel", b"HOST-RESET-USERS\t10.0.0.1\t0"),
];

/// Starts a stand-alone director, records every scenario into `<out>/admin/`.
pub fn capture(dovecot: &Dovecot, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let inst = InstanceBuilder::director("capture-admin", MAIL_SERVERS)
        .conf("passdb {\n  driver = static\n  args = nopassword=y\n}\nuserdb {\n  driver = static\n  args = uid=dovecot gid=dovecot\n}\n")
        .start(dovecot)?;
    let setup = format!(
        "stand-alone real director: director_mail_servers = {MAIL_SERVERS}, director_servers empty, \
         static passdb/userdb; a relay sits on its director-admin socket"
    );
    let mut s = Session::new(dovecot, out, "admin", &setup)?;
    let relay_path = inst.root().join("admin-relay");
    let users = inst.root().join("users.txt");
    std::fs::write(&users, "user1\nuser2\nuser3\nAlice@Example.COM\n")?;
    s.hide(&relay_path, "$RELAY");
    s.hide(&users, "$USERS");
    s.hide(inst.root(), "$ROOT");
    let _relay = Relay::unix(
        &relay_path,
        &inst.path("director-admin"),
        &s.rec,
        Leg::new("director-admin", "doveadm", "director"),
        Access::OPEN,
    )?;
    // user1's hash (`%Lu`), from the spec's verified vectors; `map -h` needs it.
    let hash_user1 = "617210206";
    for (name, desc, cmds) in DOVEADM {
        let mut sc = s.begin(
            &format!("doveadm-{name}"),
            &format!("doveadm director {desc}"),
        );
        for args in *cmds {
            run_doveadm(&s, &mut sc, &inst, &relay_path, &users, hash_user1, args)?;
        }
        s.end(sc)?;
    }
    raw_requests(
        &mut s,
        &relay_path,
        "raw-requests",
        RAW_OK,
        "raw request lines in doveadm's own forms",
    )?;
    let mut written = std::mem::take(&mut s.written);
    drop(_relay);

    // Lines doveadm never sends go to their own leg, so round-trip tests of canonical traffic
    // can skip them while parser tests can still check that we accept or reject them.
    let edge_setup =
        format!("{setup} (leg renamed director-admin-edge: non-canonical or rejected requests)");
    let mut e = Session::new(dovecot, out, "admin-edge", &edge_setup)?;
    let edge_path = inst.root().join("admin-edge-relay");
    e.hide(inst.root(), "$ROOT");
    let _edge = Relay::unix(
        &edge_path,
        &inst.path("director-admin"),
        &e.rec,
        Leg::new("director-admin-edge", "doveadm", "director"),
        Access::OPEN,
    )?;
    raw_requests(
        &mut e,
        &edge_path,
        "raw-noncanonical",
        RAW_EDGE,
        "request lines the director accepts but doveadm never sends",
    )?;
    for (name, line) in RAW_FAIL {
        let mut sc = e.begin(
            name,
            "a request line the director rejects by closing the connection without a reply",
        );
        e.note(
            &mut sc,
            &format!("harness client sends: {}", line.escape_ascii()),
        );
        raw_fail(&edge_path, line)?;
        e.end(sc)?;
    }
    written.append(&mut e.written);
    Ok(written)
}

fn run_doveadm(
    s: &Session,
    sc: &mut Scenario,
    inst: &Instance,
    relay: &Path,
    users: &Path,
    hash: &str,
    args: &[&str],
) -> std::io::Result<()> {
    // Subcommand words first, then `-a`, then the rest, as an operator would type it.
    let words = if args[0] == "ring" { 2 } else { 1 };
    let mut cmd = inst.doveadm();
    cmd.arg("director")
        .args(&args[..words])
        .arg("-a")
        .arg(relay);
    let mut shown = format!("doveadm director {} -a $RELAY", args[..words].join(" "));
    for a in &args[words..] {
        match *a {
            "$USERS" => cmd.arg(users),
            "$HASH" => cmd.arg(hash),
            other => cmd.arg(other),
        };
        shown.push(' ');
        shown.push_str(if *a == "$HASH" { hash } else { a });
    }
    s.run(sc, &shown, &mut cmd)?;
    Ok(())
}

fn raw_requests(
    s: &mut Session,
    relay: &Path,
    name: &str,
    lines: &[(&[u8], Reply)],
    what: &str,
) -> std::io::Result<()> {
    let sc = s.begin(
        name,
        &format!("{what}, sent one after the other on one connection by the harness's own client"),
    );
    let mut c = AdminClient::connect(relay, TIMEOUT)?;
    for (line, reply) in lines {
        c.send(line)?;
        match reply {
            Reply::Line => drop(c.read_line()?),
            Reply::List => drop(c.read_list()?),
        }
    }
    drop(c);
    s.end(sc)?;
    Ok(())
}

fn raw_fail(relay: &Path, line: &[u8]) -> std::io::Result<()> {
    let mut c = UnixStream::connect(relay)?;
    c.set_read_timeout(Some(TIMEOUT))?;
    if !line.starts_with(b"VERSION") {
        c.write_all(HANDSHAKE)?;
    }
    let mut buf = line.to_vec();
    buf.push(b'\n');
    c.write_all(&buf)?;
    // The director closes the connection; reading to EOF (bounded) waits for that.
    let mut sink = Vec::new();
    let _ = c.read_to_end(&mut sink);
    Ok(())
}
