//! Examining and rewriting passdb reply lines: `OK\t` from `auth-login` (and authreply
//! clients) and `PASS\t` from `auth-userdb` (auth-proxy.md §§3-6).
//!
//! Mirrors `auth_input_line` and `login_host_callback` in `src/director/login-connection.c`.
//! The daemon calls [`examine`] on every upstream line; `None` or
//! [`Examined::needs_host`]` == false` means "forward the line unchanged". Otherwise it
//! looks up a host for [`Examined::lookup_name`] and [`Examined::tag`], then answers with
//! [`decorate`] (or the original line when [`Examined::is_self`] applies) or [`temp_fail`].
//! No I/O.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::escape::{split_tabs, unescape};
use crate::field::push_u32;

mod c_ip;
#[cfg(test)]
mod golden;

/// Which reply lines a connection examines (auth-proxy.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// auth and authreply connections: lines starting `OK\t`.
    AuthOk,
    /// userdb connections (`director-userdb`): lines starting `PASS\t`.
    UserdbPass,
}

impl ReplyKind {
    /// The 3 or 5 bytes that make a line examined.
    pub fn prefix(self) -> &'static [u8] {
        match self {
            Self::AuthOk => b"OK\t",
            Self::UserdbPass => b"PASS\t",
        }
    }
}

/// A `lip=`, `lport=` or `port=` field whose value did not parse (logged, then ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadField {
    /// The field name: `lip`, `lport` or `port`.
    pub name: &'static str,
    /// Its (unescaped) value.
    pub value: Vec<u8>,
}

/// What the director learns from an examined reply line (auth-proxy.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Examined<'a> {
    /// Raw text between the first TAB and the next one: the request ID, as echoed by
    /// [`temp_fail`].
    pub id: &'a [u8],
    /// A field `proxy` or `proxy=<anything>` was present.
    pub proxy: bool,
    /// A `host=` field was present.
    pub host_present: bool,
    /// A field `director_proxy_maybe` or `director_proxy_maybe=<anything>` was present.
    pub proxy_maybe: bool,
    /// The local IP as Dovecot's parser leaves it after every `lip=` field: normally the
    /// last valid one, but a value failing half-way may have overwritten leading octets
    /// (see `passdb/c_ip.rs`).
    pub lip: Option<IpAddr>,
    /// The last `lport=` that parsed as a port (1..65535).
    pub lport: Option<u16>,
    /// The last `port=` that parsed as a port (1..65535).
    pub port: Option<u16>,
    /// The last `destuser=` value, else the first `user=` value (unescaped).
    pub username: Option<Cow<'a, [u8]>>,
    /// The last `director_tag=` value (unescaped); empty is the default tag.
    pub tag: Cow<'a, [u8]>,
    /// Fields that did not parse, in line order, for the daemon to log.
    pub bad_fields: Vec<BadField>,
}

impl Examined<'_> {
    /// Whether a host must be looked up (§4.1); `false` means forward the line unchanged.
    pub fn needs_host(&self) -> bool {
        (self.proxy || self.proxy_maybe) && !self.host_present && self.username.is_some()
    }

    /// The `director_proxy_maybe` "self" rule (§6.1): the chosen host is this login's own
    /// `lip`, and not (both `port` and `lport` given and different). Without `lip`, never.
    /// Only meaningful when [`Examined::proxy_maybe`] is set.
    pub fn is_self(&self, chosen: IpAddr) -> bool {
        self.lip == Some(chosen) && !matches!((self.port, self.lport), (Some(p), Some(l)) if p != l)
    }

    /// The name to hash: the username cut by the master-user separator (§4.3).
    pub fn lookup_name(&self, separator: Option<u8>) -> Option<&[u8]> {
        self.username
            .as_deref()
            .map(|u| master_user_cut(u, separator))
    }
}

/// Examine `line` (without its LF) per the field rules of auth-proxy.md §4; `None` when it
/// does not start with `kind`'s prefix (forward it unchanged).
pub fn examine(line: &[u8], kind: ReplyKind) -> Option<Examined<'_>> {
    let params = c_string(line).strip_prefix(kind.prefix())?;
    let mut fields = split_tabs(params);
    let id = fields.next().unwrap_or_default();
    let mut ex = Examined {
        id,
        ..Examined::default()
    };
    let mut lip = c_ip::CIpAddr::default();
    // Lines without a 0x01 (nearly all) have nothing to unescape, and `c_string` already
    // cut them at their first NUL: one scan here instead of two per field.
    let escaped = memchr::memchr(0x01, params).is_some();
    for raw in fields {
        let field = if escaped {
            cut_at_nul(unescape(raw))
        } else {
            Cow::Borrowed(raw)
        };
        // First matching rule wins, in Dovecot's order. The rules' names start with five
        // different letters, so dispatching on the first byte keeps that order (rules with
        // the same letter stay in it) and spares most fields the whole list of compares.
        match field.first() {
            Some(b'p') => {
                if is_flag(&field, b"proxy") {
                    ex.proxy = true;
                } else if let Some(v) = field.strip_prefix(b"port=") {
                    record(&mut ex.port, parse_port(v), "port", v, &mut ex.bad_fields);
                }
            }
            Some(b'h') if field.starts_with(b"host=") => ex.host_present = true,
            Some(b'l') => {
                if let Some(v) = field.strip_prefix(b"lip=") {
                    if !lip.parse_into(v) {
                        ex.bad_fields.push(BadField {
                            name: "lip",
                            value: v.to_vec(),
                        });
                    }
                } else if let Some(v) = field.strip_prefix(b"lport=") {
                    record(&mut ex.lport, parse_port(v), "lport", v, &mut ex.bad_fields);
                }
            }
            Some(b'd') => {
                if field.starts_with(b"destuser=") {
                    ex.username = Some(tail(field, 9));
                } else if field.starts_with(b"director_tag=") {
                    ex.tag = tail(field, 13);
                } else if is_flag(&field, b"director_proxy_maybe") {
                    ex.proxy_maybe = true;
                }
            }
            Some(b'u') if field.starts_with(b"user=") && ex.username.is_none() => {
                ex.username = Some(tail(field, 5));
            }
            _ => {}
        }
    }
    ex.lip = lip.get();
    Some(ex)
}

/// What Dovecot's director sees, and forwards, of a line: the bytes before the first NUL.
///
/// The director handles lines as C strings, so a raw NUL ends the line for examination,
/// for the forwarded copy and for the [`decorate`]/[`temp_fail`] answers (which apply this
/// themselves). Real auth servers never send a raw NUL (they escape it as `\x01` `0`).
pub fn c_string(line: &[u8]) -> &[u8] {
    memchr::memchr(0, line).map_or(line, |i| &line[..i])
}

/// Keep a value that parsed; report one that did not and keep the earlier value.
fn record<T>(
    slot: &mut Option<T>,
    parsed: Option<T>,
    name: &'static str,
    value: &[u8],
    bad: &mut Vec<BadField>,
) {
    match parsed {
        Some(v) => *slot = Some(v),
        None => bad.push(BadField {
            name,
            value: value.to_vec(),
        }),
    }
}

/// An unescaped field as a C string: an escaped NUL ends it too.
fn cut_at_nul(field: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    match field {
        Cow::Borrowed(b) => Cow::Borrowed(c_string(b)),
        Cow::Owned(mut v) => {
            v.truncate(c_string(&v).len());
            Cow::Owned(v)
        }
    }
}

/// `name` exactly, or `name=<anything>`.
fn is_flag(field: &[u8], name: &[u8]) -> bool {
    field
        .strip_prefix(name)
        .is_some_and(|rest| rest.is_empty() || rest[0] == b'=')
}

/// The part of an unescaped field after its `n`-byte prefix, still borrowing when it can.
fn tail(field: Cow<'_, [u8]>, n: usize) -> Cow<'_, [u8]> {
    match field {
        Cow::Borrowed(b) => Cow::Borrowed(&b[n..]),
        Cow::Owned(mut v) => {
            v.drain(..n);
            Cow::Owned(v)
        }
    }
}

/// Dovecot's `net_str2port`: decimal digits (any count of leading zeros), 1..65535.
fn parse_port(text: &[u8]) -> Option<u16> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let digits = &text[text.iter().position(|&b| b != b'0').unwrap_or(text.len())..];
    if digits.len() > 5 {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'));
    u16::try_from(n).ok().filter(|&p| p != 0)
}

/// Cut `username` before the first `separator` byte (§4.3; the separator setting's first
/// character). `None` leaves it whole.
pub fn master_user_cut(username: &[u8], separator: Option<u8>) -> &[u8] {
    match separator.and_then(|s| memchr::memchr(s, username)) {
        Some(i) => &username[..i],
        None => username,
    }
}

/// Append the success reply (§6.1): the original line bytes, then
/// `\tproxy_refresh=<n>\thost=<host>[\thostip=<ip>]\n` (the line cut at a NUL, see
/// [`c_string`]).
///
/// `host` is the host's configured name when it has one (then pass its IP as `hostip`),
/// else its IP in canonical text ([`crate::ip::ip_to_string`]) and `hostip = None`.
/// `proxy_refresh` is `director_user_expire / 2` in whole seconds.
pub fn decorate(
    line: &[u8],
    proxy_refresh: u32,
    host: &str,
    hostip: Option<&str>,
    out: &mut Vec<u8>,
) {
    push_decoration(line, proxy_refresh, host, hostip, out);
    out.push(b'\n');
}

/// [`decorate`], then `\t<field>=<hash>` before the LF: the optional Dovecot 2.4 extension
/// (dovecot-2.4.md §6.5 (a)) that makes sessions kickable by hash through anvil's
/// `KICK-ALT-USER`. `field` must be a `user_*` name such as `user_director_hash`.
pub fn decorate_with_hash(
    line: &[u8],
    proxy_refresh: u32,
    host: &str,
    hostip: Option<&str>,
    field: &str,
    hash: u32,
    out: &mut Vec<u8>,
) {
    push_decoration(line, proxy_refresh, host, hostip, out);
    out.push(b'\t');
    out.extend_from_slice(field.as_bytes());
    out.push(b'=');
    push_u32(out, hash);
    out.push(b'\n');
}

fn push_decoration(
    line: &[u8],
    proxy_refresh: u32,
    host: &str,
    hostip: Option<&str>,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(c_string(line));
    out.extend_from_slice(b"\tproxy_refresh=");
    push_u32(out, proxy_refresh);
    out.extend_from_slice(b"\thost=");
    out.extend_from_slice(host.as_bytes());
    if let Some(ip) = hostip {
        out.extend_from_slice(b"\thostip=");
        out.extend_from_slice(ip.as_bytes());
    }
}

/// [`decorate`] for one `proxy_refresh` value, with the constant middle of the reply
/// (`\tproxy_refresh=<n>\thost=`) rendered once instead of per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decorator {
    middle: Vec<u8>,
}

impl Decorator {
    /// The decoration for `proxy_refresh` seconds.
    pub fn new(proxy_refresh: u32) -> Self {
        let mut middle = b"\tproxy_refresh=".to_vec();
        push_u32(&mut middle, proxy_refresh);
        middle.extend_from_slice(b"\thost=");
        Decorator { middle }
    }

    /// The same bytes as [`decorate`] with this `proxy_refresh`.
    pub fn decorate(&self, line: &[u8], host: &str, hostip: Option<&str>, out: &mut Vec<u8>) {
        out.extend_from_slice(c_string(line));
        out.extend_from_slice(&self.middle);
        out.extend_from_slice(host.as_bytes());
        if let Some(ip) = hostip {
            out.extend_from_slice(b"\thostip=");
            out.extend_from_slice(ip.as_bytes());
        }
        out.push(b'\n');
    }

    /// [`Decorator::decorate`] for a host without a name: its address text as `host=`.
    pub fn decorate_ip(&self, line: &[u8], ip: &IpAddr, out: &mut Vec<u8>) {
        out.extend_from_slice(c_string(line));
        out.extend_from_slice(&self.middle);
        crate::ip::push_ip(out, ip);
        out.push(b'\n');
    }
}

/// Append the failure reply (§6.2): `FAIL\t<id>\tcode=temp_fail\n`, `<id>` being the raw
/// text between the first TAB of `line` and the next one (empty if `line` has no TAB).
pub fn temp_fail(line: &[u8], out: &mut Vec<u8>) {
    let line = c_string(line);
    let params = memchr::memchr(b'\t', line).map_or(&[][..], |i| &line[i + 1..]);
    let id = memchr::memchr(b'\t', params).map_or(params, |i| &params[..i]);
    out.extend_from_slice(b"FAIL\t");
    out.extend_from_slice(id);
    out.extend_from_slice(b"\tcode=temp_fail\n");
}

#[cfg(test)]
mod tests;
