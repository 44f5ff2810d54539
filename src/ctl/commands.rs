//! The listing subcommands: `status`, `map`, `dump`, `ring add|remove|status`.

use std::collections::HashMap;
use std::net::IpAddr;

use director_parsers::escape::split_unescaped;
use director_parsers::ip::{ip_to_string, parse_ip};

use super::authlist::list_users;
use super::cli::{Ctx, Stop};
use super::client::Fatal;
use super::format::{Kind, EXPAND, HIDE_TITLE};
use super::hash::user_hash;
use super::resolve::resolve_host;
use super::timefmt::{parse_time, parse_uint, unixdate2str};
use super::{EX_NOTFOUND, EX_PROTOCOL, EX_TEMPFAIL};

/// Splits a reply line into unescaped fields.
pub(crate) fn fields(line: &[u8]) -> Vec<Vec<u8>> {
    split_unescaped(line)
        .into_iter()
        .map(|f| f.into_owned())
        .collect()
}

/// Resolves a host argument; on failure logs doveadm's error and sets exit code 75.
pub(crate) fn get_host(ctx: &mut Ctx<'_>, host: &[u8]) -> Option<Vec<IpAddr>> {
    match resolve_host(host) {
        Ok(ips) if !ips.is_empty() => Some(ips),
        Ok(_) => None,
        Err(e) => {
            let mut msg = b"gethostname(".to_vec();
            msg.extend_from_slice(host);
            msg.extend_from_slice(format!(") failed: {e}").as_bytes());
            ctx.error(&msg);
            ctx.exit_code = EX_TEMPFAIL;
            None
        }
    }
}

/// `status [<user> [<tag>]]`.
pub fn status(ctx: &mut Ctx<'_>) -> Result<(), Stop> {
    ctx.connect()?;
    if let Some(user) = ctx.param("user") {
        return status_user(ctx, &user);
    }
    ctx.print_init(Kind::Table);
    let p = ctx.printer();
    p.header_simple("mail server ip");
    p.header_simple("tag");
    p.header_simple("vhosts");
    p.header_simple("state");
    p.header("state-changed", "state changed", 0);
    p.header_simple("users");
    ctx.send(b"HOST-LIST\n")?;
    while let Some(line) = ctx.read_line() {
        if line.is_empty() {
            break;
        }
        let a = fields(&line);
        if a.len() < 6 {
            continue;
        }
        ctx.print(&a[0])?;
        ctx.print(&a[3])?;
        ctx.print(&a[1])?;
        ctx.print(if a[4].first() == Some(&b'D') {
            b"down"
        } else {
            b"up"
        })?;
        match parse_time(&a[5]) {
            Some(ts) if ts > 0 => ctx.print(unixdate2str(ts).as_bytes())?,
            _ => ctx.print(b"-")?,
        }
        ctx.print(&a[2])?;
    }
    Ok(())
}

fn status_user(ctx: &mut Ctx<'_>, user: &[u8]) -> Result<(), Stop> {
    // user and tag go out raw, not tab-escaped, exactly like doveadm
    let mut cmd = b"USER-LOOKUP\t".to_vec();
    cmd.extend_from_slice(user);
    cmd.push(b'\t');
    cmd.extend_from_slice(&ctx.param("tag").unwrap_or_default());
    cmd.push(b'\n');
    ctx.send(&cmd)?;
    let Some(line) = ctx.read_line() else {
        return Ok(());
    };
    let a = fields(&line);
    let expires = a.get(1).and_then(|t| parse_time(t));
    let (4, Some(expires)) = (a.len(), expires) else {
        ctx.error(b"Invalid reply from director");
        ctx.exit_code = EX_PROTOCOL;
        return Ok(());
    };
    ctx.print_init(Kind::Formatted);
    let p = ctx.printer();
    for h in ["status", "expires", "hashed", "initial-config"] {
        p.header_simple(h);
    }
    p.set_format(
        "Current: %{status} (expires %{expires})\nHashed: %{hashed}\nInitial config: %{initial-config}\n",
    );
    if a[0].first().is_some_and(|&b| b != 0) {
        ctx.print(&a[0])?;
        ctx.print(unixdate2str(expires).as_bytes())?;
    } else {
        ctx.print(b"n/a")?;
        ctx.print(b"-1")?;
    }
    ctx.print(&a[2])?;
    ctx.print(&a[3])?;
    Ok(())
}

/// Known user names grouped by hash; the most recently added name first.
#[derive(Default)]
struct UserList {
    by_hash: HashMap<u32, Vec<Vec<u8>>>,
}

impl UserList {
    fn add(&mut self, ctx: &mut Ctx<'_>, name: &[u8]) {
        let fmt = ctx.settings.username_hash.clone();
        match user_hash(&fmt, name) {
            Ok(h) => self.by_hash.entry(h).or_default().push(name.to_vec()),
            Err(e) => {
                let msg = format!("Failed to expand director_username_hash={fmt}: {e}");
                ctx.error(msg.as_bytes());
            }
        }
    }

    fn names(&self, hash: u32) -> impl Iterator<Item = &Vec<u8>> {
        self.by_hash
            .get(&hash)
            .into_iter()
            .flat_map(|v| v.iter().rev())
    }
}

/// `map [-f <users file>] [-h | -u] [<host>]`.
pub fn map(ctx: &mut Ctx<'_>) -> Result<(), Stop> {
    let user_map = ctx.values.flag("user-map");
    let hash_map = ctx.values.flag("hash-map");
    if !user_map {
        ctx.connect()?;
    }
    let Some(host) = ctx.param("host") else {
        if hash_map || user_map {
            return Err(Stop::Usage);
        }
        return map_list(ctx, None);
    };
    if user_map {
        let fmt = ctx.settings.username_hash.clone();
        match user_hash(&fmt, &host) {
            Ok(h) => {
                ctx.print_init(Kind::Table);
                ctx.printer().header("hash", "hash", HIDE_TITLE);
                ctx.print(h.to_string().as_bytes())?;
            }
            Err(e) => {
                let msg = format!("Failed to expand director_username_hash={fmt}: {e}");
                ctx.error(msg.as_bytes());
            }
        }
        return Ok(());
    }
    if hash_map {
        let users = load_users(ctx);
        let Some(hash) = parse_uint(&host) else {
            return Err(Stop::Fatal(Fatal::tempfail(format!(
                "Invalid username hash: {}",
                String::from_utf8_lossy(&host)
            ))));
        };
        ctx.print_init(Kind::Table);
        ctx.printer().header("user", "user", HIDE_TITLE);
        let names: Vec<Vec<u8>> = users.names(hash).cloned().collect();
        for n in names {
            ctx.print(&n)?;
        }
        return Ok(());
    }
    let Some(ips) = get_host(ctx, &host) else {
        return Ok(());
    };
    map_list(ctx, Some(ips))
}

fn load_users(ctx: &mut Ctx<'_>) -> UserList {
    let mut users = UserList::default();
    match ctx.param("users-file") {
        Some(path) => {
            // doveadm silently lists nothing when the file cannot be read
            let data = if path == b"-" {
                let mut v = Vec::new();
                let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut v);
                v
            } else {
                use std::os::unix::ffi::OsStrExt;
                std::fs::read(std::ffi::OsStr::from_bytes(&path)).unwrap_or_default()
            };
            // only complete lines count; a CR before the LF is dropped
            let mut rest = &data[..];
            while let Some(p) = rest.iter().position(|&b| b == b'\n') {
                let mut name = &rest[..p];
                if name.last() == Some(&b'\r') {
                    name = &name[..name.len() - 1];
                }
                users.add(ctx, name);
                rest = &rest[p + 1..];
            }
        }
        None => {
            let path = format!("{}/auth-userdb", ctx.settings.base_dir);
            let listing = list_users(&path);
            for name in &listing.users {
                users.add(ctx, name);
            }
            for e in &listing.errors {
                ctx.error(e.as_bytes());
            }
            if listing.failed {
                ctx.error(b"user listing failed");
                ctx.exit_code = EX_TEMPFAIL;
            }
        }
    }
    users
}

fn map_list(ctx: &mut Ctx<'_>, ips: Option<Vec<IpAddr>>) -> Result<(), Stop> {
    let users = load_users(ctx);
    ctx.print_init(Kind::Table);
    let p = ctx.printer();
    p.header("user", "user", EXPAND);
    p.header_simple("hash");
    p.header_simple("mail server ip");
    p.header_simple("expire time");
    let cmd = match ips.as_deref() {
        Some([ip]) => format!("USER-LIST\t{}\n", ip_to_string(ip)),
        _ => "USER-LIST\n".to_string(),
    };
    ctx.send(cmd.as_bytes())?;
    while let Some(line) = ctx.read_line() {
        if line.is_empty() {
            break;
        }
        let a = fields(&line);
        let parsed =
            (a.len() >= 3).then(|| (parse_uint(&a[0]), parse_time(&a[1]), parse_ip(c_str(&a[2]))));
        let Some((Some(hash), Some(expires), Some(ip))) = parsed else {
            let mut msg = b"Invalid USER-LIST reply: ".to_vec();
            msg.extend_from_slice(&line);
            ctx.error(&msg);
            ctx.exit_code = EX_PROTOCOL;
            continue;
        };
        if ips.as_ref().is_some_and(|list| !list.contains(&ip)) {
            continue;
        }
        let when = unixdate2str(expires);
        let names: Vec<Vec<u8>> = users.names(hash).cloned().collect();
        if names.is_empty() {
            for v in [&b"<unknown>"[..], &a[0], &a[2], when.as_bytes()] {
                ctx.print(v)?;
            }
        }
        for n in names {
            for v in [&n[..], &a[0], &a[2], when.as_bytes()] {
                ctx.print(v)?;
            }
        }
    }
    Ok(())
}

fn c_str(v: &[u8]) -> &[u8] {
    v.split(|&b| b == 0).next().unwrap_or(v)
}

/// `dump`: the `doveadm director add/remove` commands that recreate the host list.
pub fn dump(ctx: &mut Ctx<'_>) -> Result<(), Stop> {
    ctx.connect()?;
    ctx.print_init(Kind::Formatted);
    let explicit = ctx.explicit_socket_path;
    let path = ctx.socket_path.clone().into_bytes();
    let p = ctx.printer();
    if explicit {
        p.set_format("doveadm director %{command} -a %{socket-path} %{host} %{vhost_count}\n");
    } else {
        p.set_format("doveadm director %{command} %{host} %{vhost_count}\n");
    }
    for h in ["command", "socket-path", "host", "vhost_count"] {
        p.header_simple(h);
    }
    ctx.send(b"HOST-LIST\n")?;
    while let Some(line) = ctx.read_line() {
        if line.is_empty() {
            break;
        }
        let a = fields(&line);
        if a.len() < 2 {
            continue;
        }
        let mut host = c_str(&a[0]).to_vec();
        if let Some(tag) = a.get(3).map(|t| c_str(t)).filter(|t| !t.is_empty()) {
            host.push(b'@');
            host.extend_from_slice(tag);
        }
        ctx.print(b"add")?;
        ctx.print(&path)?;
        ctx.print(&host)?;
        ctx.print(&a[1])?;
    }
    ctx.send(b"HOST-LIST-REMOVED\n")?;
    while let Some(line) = ctx.read_line() {
        if line.is_empty() {
            break;
        }
        ctx.print(b"remove")?;
        ctx.print(&path)?;
        ctx.print(&line)?;
        ctx.print(b"")?;
    }
    Ok(())
}

fn read_ok_reply(ctx: &mut Ctx<'_>) {
    let Some(line) = ctx.read_line() else {
        return;
    };
    if line == b"NOTFOUND" {
        ctx.error(b"Not found");
        ctx.exit_code = EX_NOTFOUND;
    } else if line != b"OK" {
        let mut msg = b"Failed: ".to_vec();
        msg.extend_from_slice(&line);
        ctx.error(&msg);
        ctx.exit_code = EX_TEMPFAIL;
    }
}

fn ring_cmd(ctx: &mut Ctx<'_>, name: &str) -> Result<(), Stop> {
    ctx.connect()?;
    let ip = ctx.param("ip").and_then(|t| parse_ip(&t));
    let port = match ctx.param("port") {
        None => Ok(None),
        Some(p) => match parse_uint(&p) {
            Some(n) if (1..=65535).contains(&n) => Ok(Some(n)),
            _ => Err(()),
        },
    };
    let (Some(ip), Ok(port)) = (ip, port) else {
        return Err(Stop::Usage);
    };
    let mut cmd = format!("{name}\t{}", ip_to_string(&ip));
    if let Some(p) = port {
        cmd.push_str(&format!("\t{p}"));
    }
    cmd.push('\n');
    ctx.send(cmd.as_bytes())?;
    read_ok_reply(ctx);
    Ok(())
}

/// `ring add <ip> [<port>]`.
pub fn ring_add(ctx: &mut Ctx<'_>) -> Result<(), Stop> {
    ring_cmd(ctx, "DIRECTOR-ADD")
}

/// `ring remove <ip> [<port>]`.
pub fn ring_remove(ctx: &mut Ctx<'_>) -> Result<(), Stop> {
    ring_cmd(ctx, "DIRECTOR-REMOVE")
}

/// `ring status`.
pub fn ring_status(ctx: &mut Ctx<'_>) -> Result<(), Stop> {
    ctx.connect()?;
    ctx.print_init(Kind::Table);
    let p = ctx.printer();
    for t in [
        "director ip",
        "port",
        "type",
        "last failed",
        "status",
        "ping ms",
        "input",
        "output",
        "buffered",
        "buffered peak",
        "last read",
        "last write",
    ] {
        p.header_simple(t);
    }
    ctx.send(b"DIRECTOR-LIST\n")?;
    while let Some(line) = ctx.read_line() {
        if line.is_empty() {
            break;
        }
        let a = fields(&line);
        for i in 0..12 {
            let Some(v) = a.get(i) else {
                ctx.print(b"-")?;
                continue;
            };
            match (i, parse_time(c_str(v))) {
                (3 | 10 | 11, Some(0)) => ctx.print(b"never")?,
                (3 | 10 | 11, Some(ts)) => ctx.print(unixdate2str(ts).as_bytes())?,
                _ => ctx.print(v)?,
            }
        }
    }
    Ok(())
}
