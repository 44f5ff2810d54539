//! The changing subcommands: `add`, `update`, `up`, `down`, `remove`, `move`, `kick`, `flush`.

use std::net::IpAddr;

use director_parsers::escape::escape_into;
use director_parsers::ip::{ip_to_string, parse_ip};

use super::cli::{Ctx, Stop};
use super::commands::get_host;
use super::hash::user_hash;
use super::timefmt::parse_uint;
use super::{EX_NOTFOUND, EX_TEMPFAIL};

fn msg(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn add_or_update(ctx: &mut Ctx<'_>, update: bool) -> Result<(), Stop> {
    let cmd_name = if update { "HOST-UPDATE" } else { "HOST-SET" };
    ctx.connect()?;
    let mut tag = ctx.param("tag").filter(|t| !t.is_empty());
    let Some(host_arg) = ctx.param("host") else {
        return Err(Stop::Usage);
    };
    let vhosts = match ctx.param("vhost-count") {
        Some(v) => Some(parse_uint(&v).ok_or(Stop::Usage)?),
        None if update => return Err(Stop::Usage),
        None => None,
    };
    if parse_uint(&host_arg).is_some() {
        // a bare number would be taken as an IPv4 address; doveadm refuses it
        ctx.error(&msg(&[b"Invalid host '", &host_arg, b"'"]));
        return Err(Stop::Usage);
    }
    let mut host = host_arg.clone();
    if tag.is_none() {
        if let Some(at) = host_arg.iter().position(|&b| b == b'@') {
            tag = Some(host_arg[at + 1..].to_vec());
            host = host_arg[..at].to_vec();
        }
    }
    let Some(ips) = get_host(ctx, &host) else {
        return Ok(());
    };
    for ip in &ips {
        let mut cmd = format!("{cmd_name}\t{}", ip_to_string(ip)).into_bytes();
        if let Some(t) = &tag {
            cmd.push(b'@');
            cmd.extend_from_slice(t);
        }
        if let Some(n) = vhosts {
            cmd.extend_from_slice(format!("\t{n}").as_bytes());
        }
        cmd.push(b'\n');
        ctx.send(&cmd)?;
    }
    for ip in &ips {
        let ip_s = ip_to_string(ip);
        let Some(line) = ctx.read_line() else {
            continue;
        };
        if line != b"OK" {
            let text: &[u8] = if line == b"NOTFOUND" {
                b"doesn't exist"
            } else {
                &line
            };
            ctx.error(&msg(&[ip_s.as_bytes(), b": ", text]));
            ctx.exit_code = EX_TEMPFAIL;
        } else if ctx.verbose {
            ctx.info(format!("{ip_s}: OK").as_bytes());
        }
    }
    Ok(())
}

/// `add [-t <tag>] <host> [<vhost count>]`.
pub fn add(ctx: &mut Ctx<'_>) -> Result<(), Stop> {
    add_or_update(ctx, false)
}

/// `update <host> <vhost count>`.
pub fn update(ctx: &mut Ctx<'_>) -> Result<(), Stop> {
    add_or_update(ctx, true)
}

fn ip_cmd(ctx: &mut Ctx<'_>, cmd_name: &str, success: &str) -> Result<(), Stop> {
    ctx.connect()?;
    let Some(host) = ctx.param("host") else {
        return Err(Stop::Usage);
    };
    let Some(ips) = get_host(ctx, &host) else {
        return Ok(());
    };
    for ip in &ips {
        ctx.send(format!("{cmd_name}\t{}\n", ip_to_string(ip)).as_bytes())?;
    }
    for ip in &ips {
        let ip_s = ip_to_string(ip);
        let Some(line) = ctx.read_line() else {
            continue;
        };
        if line == b"NOTFOUND" {
            ctx.error(format!("{ip_s}: doesn't exist").as_bytes());
            if ctx.exit_code == 0 {
                ctx.exit_code = EX_NOTFOUND;
            }
        } else if line != b"OK" {
            ctx.error(&msg(&[ip_s.as_bytes(), b": ", &line]));
            ctx.exit_code = EX_TEMPFAIL;
        } else if ctx.verbose {
            ctx.info(format!("{ip_s}: {success}").as_bytes());
        }
    }
    Ok(())
}

/// `up <host>`.
pub fn up(ctx: &mut Ctx<'_>) -> Result<(), Stop> {
    ip_cmd(ctx, "HOST-UP", "up")
}

/// `down <host>`.
pub fn down(ctx: &mut Ctx<'_>) -> Result<(), Stop> {
    ip_cmd(ctx, "HOST-DOWN", "down")
}

/// `remove <host>`.
pub fn remove(ctx: &mut Ctx<'_>) -> Result<(), Stop> {
    ip_cmd(ctx, "HOST-REMOVE", "removed")
}

/// `move <user> <host>`.
pub fn move_user(ctx: &mut Ctx<'_>) -> Result<(), Stop> {
    ctx.connect()?;
    let (Some(user), Some(host)) = (ctx.param("user"), ctx.param("host")) else {
        return Err(Stop::Usage);
    };
    let fmt = ctx.settings.username_hash.clone();
    let hash = match user_hash(&fmt, &user) {
        Ok(h) => h,
        Err(e) => {
            ctx.error(format!("Failed to expand director_username_hash={fmt}: {e}").as_bytes());
            return Ok(());
        }
    };
    let Some(ips) = get_host(ctx, &host) else {
        return Ok(());
    };
    let ip_s = ip_to_string(&ips[0]);
    ctx.send(format!("USER-MOVE\t{hash}\t{ip_s}\n").as_bytes())?;
    let Some(line) = ctx.read_line() else {
        return Ok(());
    };
    match &line[..] {
        b"OK" => {
            if ctx.verbose {
                ctx.info(format!("User hash {hash} moved to {ip_s}").as_bytes());
            }
        }
        b"NOTFOUND" => {
            ctx.error(format!("Host '{ip_s}' doesn't exist").as_bytes());
            ctx.exit_code = EX_NOTFOUND;
        }
        b"TRYAGAIN" => {
            ctx.error(b"User is already being moved, wait a while for it to be finished");
            ctx.exit_code = EX_TEMPFAIL;
        }
        _ => {
            ctx.error(&msg(&[b"failed: ", &line]));
            ctx.exit_code = EX_TEMPFAIL;
        }
    }
    Ok(())
}

/// `kick [-f <passdb field>] <user>`.
pub fn kick(ctx: &mut Ctx<'_>) -> Result<(), Stop> {
    ctx.connect()?;
    let Some(user) = ctx.param("user") else {
        return Err(Stop::Usage);
    };
    let mut cmd = Vec::new();
    match ctx.param("passdb-field") {
        None => {
            cmd.extend_from_slice(b"USER-KICK\t");
            escape_into(&user, &mut cmd);
        }
        Some(field) => {
            cmd.extend_from_slice(b"USER-KICK-ALT\t");
            escape_into(&field, &mut cmd);
            cmd.push(b'\t');
            escape_into(&user, &mut cmd);
        }
    }
    cmd.push(b'\n');
    ctx.send(&cmd)?;
    let Some(line) = ctx.read_line() else {
        return Ok(());
    };
    if line == b"OK" {
        if ctx.verbose {
            ctx.info(&msg(&[b"User ", &user, b" kicked"]));
        }
    } else {
        ctx.error(&msg(&[b"failed: ", &line]));
        ctx.exit_code = EX_TEMPFAIL;
    }
    Ok(())
}

/// `flush [-F] [--max-parallel <n>] <host>|all`.
pub fn flush(ctx: &mut Ctx<'_>) -> Result<(), Stop> {
    ctx.connect()?;
    let Some(host) = ctx.param("host") else {
        return Err(Stop::Usage);
    };
    let force = ctx.values.flag("force-flush");
    let max_parallel = ctx.values.int64("max-parallel").filter(|&n| n > 0);
    if host == b"all" {
        let cmd = if force {
            "HOST-FLUSH\n".to_string()
        } else if let Some(n) = max_parallel {
            format!("HOST-RESET-USERS\t\t{n}\n")
        } else {
            "HOST-RESET-USERS\n".to_string()
        };
        ctx.send(cmd.as_bytes())?;
        let Some(line) = ctx.read_line() else {
            return Ok(());
        };
        if line != b"OK" {
            ctx.error(&msg(&[b"failed: ", &line]));
            ctx.exit_code = EX_TEMPFAIL;
        } else if ctx.verbose {
            ctx.info(b"flushed");
        }
        return Ok(());
    }
    let ips: Vec<IpAddr> = match parse_ip(&host) {
        Some(ip) => vec![ip],
        None => match get_host(ctx, &host) {
            Some(ips) => ips,
            None => return Ok(()),
        },
    };
    for ip in &ips {
        let cmd = if force {
            format!("HOST-FLUSH\t{}\n", ip_to_string(ip))
        } else if let Some(n) = max_parallel {
            format!("HOST-RESET-USERS\t{}\t{n}\n", ip_to_string(ip))
        } else {
            format!("HOST-RESET-USERS\t{}\n", ip_to_string(ip))
        };
        ctx.send(cmd.as_bytes())?;
    }
    for ip in &ips {
        let ip_s = ip_to_string(ip);
        let Some(line) = ctx.read_line() else {
            continue;
        };
        if line == b"NOTFOUND" {
            ctx.warning(format!("{ip_s}: doesn't exist").as_bytes());
            if ctx.exit_code == 0 {
                ctx.exit_code = EX_NOTFOUND;
            }
        } else if line != b"OK" {
            ctx.warning(&msg(&[ip_s.as_bytes(), b": ", &line]));
            ctx.exit_code = EX_TEMPFAIL;
        } else if ctx.verbose {
            ctx.info(format!("{ip_s}: flushed").as_bytes());
        }
    }
    Ok(())
}
