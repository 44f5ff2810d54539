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
use crate::ip::parse_ip;

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
    /// The last `lip=` that parsed as an IP address.
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
    for raw in fields {
        let field = cut_at_nul(unescape(raw));
        // first matching rule wins, in Dovecot's order
        if is_flag(&field, b"proxy") {
            ex.proxy = true;
        } else if field.starts_with(b"host=") {
            ex.host_present = true;
        } else if let Some(v) = field.strip_prefix(b"lip=") {
            record(&mut ex.lip, parse_ip(v), "lip", v, &mut ex.bad_fields);
        } else if let Some(v) = field.strip_prefix(b"lport=") {
            record(&mut ex.lport, parse_port(v), "lport", v, &mut ex.bad_fields);
        } else if let Some(v) = field.strip_prefix(b"port=") {
            record(&mut ex.port, parse_port(v), "port", v, &mut ex.bad_fields);
        } else if field.starts_with(b"destuser=") {
            ex.username = Some(tail(field, 9));
        } else if field.starts_with(b"director_tag=") {
            ex.tag = tail(field, 13);
        } else if is_flag(&field, b"director_proxy_maybe") {
            ex.proxy_maybe = true;
        } else if field.starts_with(b"user=") && ex.username.is_none() {
            ex.username = Some(tail(field, 5));
        }
    }
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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ReplyKind::{AuthOk, UserdbPass};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ex(line: &[u8], kind: ReplyKind) -> Examined<'_> {
        examine(line, kind).unwrap_or_else(|| panic!("not examined: {}", line.escape_ascii()))
    }

    /// §4.1 [verified]: these pass unchanged.
    #[test]
    fn pass_through_unchanged() {
        for line in [
            &b"OK\t1\tuser=alice"[..],
            b"OK\t2\tuser=alice\tproxy\thost=192.0.2.1",
            b"OK\t4\tuser=alice\tproxy_maybe",
            b"OK\t11\tproxy",
        ] {
            assert!(!ex(line, AuthOk).needs_host(), "{}", line.escape_ascii());
        }
    }

    /// §3 [verified]: only `OK\t` on auth/authreply, only `PASS\t` on userdb.
    #[test]
    fn only_the_kinds_prefix_is_examined() {
        for (line, kind) in [
            (&b"PASS\t1\tuser=alice\tproxy"[..], AuthOk),
            (b"whatever\tfoo", AuthOk),
            (b"OK\t1\tuser=alice\tproxy", UserdbPass),
            (
                b"USER\t2\talice\tuid=103\tgid=106\thome=/home/alice",
                UserdbPass,
            ),
            (b"FAIL\t1\tuser=cap02", AuthOk),
            (b"OK", AuthOk),
            (b"PASS", UserdbPass),
        ] {
            assert_eq!(examine(line, kind), None, "{}", line.escape_ascii());
        }
    }

    /// The [verified] decoration examples of §2.3, §6.1, §7 and §8, and dovecot-2.4.md §4.
    #[test]
    fn decorate_known_answers() {
        type Case<'a> = (&'a [u8], ReplyKind, u32, &'a str, Option<&'a str>, &'a [u8]);
        let cases: &[Case] = &[
            (
                b"OK\t1\tuser=alice\tproxy\tport=11143\tlip=127.0.5.1\tlport=11143\tpass=secret",
                AuthOk, 10, "127.0.5.11", None,
                b"OK\t1\tuser=alice\tproxy\tport=11143\tlip=127.0.5.1\tlport=11143\tpass=secret\tproxy_refresh=10\thost=127.0.5.11\n",
            ),
            (
                b"PASS\t1\tuser=alice\tproxy=y\tlip=127.0.5.1\tlport=24",
                UserdbPass, 450, "10.0.0.2", None,
                b"PASS\t1\tuser=alice\tproxy=y\tlip=127.0.5.1\tlport=24\tproxy_refresh=450\thost=10.0.0.2\n",
            ),
            (
                b"OK\t1\tuser=alice\tproxy",
                AuthOk, 450, "10.0.0.2", None,
                b"OK\t1\tuser=alice\tproxy\tproxy_refresh=450\thost=10.0.0.2\n",
            ),
            (
                b"OK\t1\tuser=alice\tproxy",
                AuthOk, 450, "localhost", Some("127.0.0.1"),
                b"OK\t1\tuser=alice\tproxy\tproxy_refresh=450\thost=localhost\thostip=127.0.0.1\n",
            ),
            (
                b"PASS\t1\tuser=named01\tproxy=yes\tlip=127.0.4.10\tlport=24",
                UserdbPass, 450, "localhost", Some("127.0.4.12"),
                b"PASS\t1\tuser=named01\tproxy=yes\tlip=127.0.4.10\tlport=24\tproxy_refresh=450\thost=localhost\thostip=127.0.4.12\n",
            ),
        ];
        for (line, kind, refresh, host, hostip, want) in cases {
            let e = ex(line, *kind);
            assert!(e.needs_host(), "{}", line.escape_ascii());
            let mut out = Vec::new();
            decorate(line, *refresh, host, *hostip, &mut out);
            assert_eq!(
                out.escape_ascii().to_string(),
                want.escape_ascii().to_string()
            );
        }
    }

    /// dovecot-2.4.md §6.5 (a), as the 2.4 lab relay sent it.
    #[test]
    fn decorate_with_hash_known_answer() {
        let line = b"OK\t10\tuser=kick03\tproxy=yes\tlip=127.0.4.10\tlport=143\tpass=pass";
        let mut out = Vec::new();
        decorate_with_hash(
            line,
            450,
            "127.0.4.12",
            None,
            "user_director_hash",
            245949797,
            &mut out,
        );
        let want: &[u8] = b"OK\t10\tuser=kick03\tproxy=yes\tlip=127.0.4.10\tlport=143\tpass=pass\tproxy_refresh=450\thost=127.0.4.12\tuser_director_hash=245949797\n";
        assert_eq!(
            out.escape_ascii().to_string(),
            want.escape_ascii().to_string()
        );
    }

    /// §6.2 [verified]: `FAIL\t<id>\tcode=temp_fail` for OK and PASS lines.
    #[test]
    fn temp_fail_known_answers() {
        let cases: &[(&[u8], &[u8])] = &[
            (
                b"PASS\t1\tuser=fail01\tproxy=yes\tlip=127.0.4.10\tlport=24",
                b"FAIL\t1\tcode=temp_fail\n",
            ),
            (b"OK\t42\tuser=alice\tproxy", b"FAIL\t42\tcode=temp_fail\n"),
            (b"OK\t7", b"FAIL\t7\tcode=temp_fail\n"),
            (b"OK\t", b"FAIL\t\tcode=temp_fail\n"),
            (b"OK", b"FAIL\t\tcode=temp_fail\n"),
        ];
        for (line, want) in cases {
            let mut out = Vec::new();
            temp_fail(line, &mut out);
            assert_eq!(&out, want, "{}", line.escape_ascii());
        }
        assert_eq!(ex(b"OK\t42\tuser=a", AuthOk).id, b"42");
    }

    /// §4 field table: first matching rule per field, destuser beats user, first user wins,
    /// last tag wins, `proxy=<any>` is the proxy flag, `proxy_maybe`/`proxyx` are not.
    #[test]
    fn field_rules() {
        let e = ex(
            b"OK\t1\tuser=first\tdestuser=d1\tuser=second\tdestuser=d2",
            AuthOk,
        );
        assert_eq!(e.username.as_deref(), Some(&b"d2"[..]));
        let e = ex(b"OK\t1\tdestuser=d\tuser=u", AuthOk);
        assert_eq!(e.username.as_deref(), Some(&b"d"[..]));
        let e = ex(b"OK\t1\tuser=first\tuser=second", AuthOk);
        assert_eq!(e.username.as_deref(), Some(&b"first"[..]));
        let e = ex(b"OK\t1\tdirector_tag=a\tdirector_tag=b", AuthOk);
        assert_eq!(&*e.tag, b"b");
        let e = ex(b"OK\t1\tdirector_tag=a\tdirector_tag=", AuthOk);
        assert_eq!(&*e.tag, b"");
        for (field, proxy) in [
            ("proxy", true),
            ("proxy=n", true),
            ("proxy=", true),
            ("proxy_maybe", false),
            ("proxyx", false),
            ("proxy_refresh=5", false),
            ("Proxy", false),
        ] {
            let line = format!("OK\t1\tuser=a\t{field}");
            assert_eq!(ex(line.as_bytes(), AuthOk).proxy, proxy, "{field}");
        }
        for (field, maybe) in [
            ("director_proxy_maybe", true),
            ("director_proxy_maybe=n", true),
            ("director_proxy_maybex", false),
            ("proxy_maybe", false),
        ] {
            let line = format!("OK\t1\tuser=a\t{field}");
            assert_eq!(ex(line.as_bytes(), AuthOk).proxy_maybe, maybe, "{field}");
        }
        let e = ex(b"OK\t1\tuser=a\tdirector_proxy_maybe", AuthOk);
        assert!(e.needs_host());
        let e = ex(b"OK\t1\tuser=a\tproxy\thost=", AuthOk);
        assert!(e.host_present && !e.needs_host());
        let e = ex(b"OK\t1\tuser=a\tproxy\thostip=10.0.0.1", AuthOk);
        assert!(!e.host_present && e.needs_host());
        // the ID is skipped even when it looks like a field
        let e = ex(b"OK\tuser=x\tproxy", AuthOk);
        assert!(e.username.is_none() && !e.needs_host());
    }

    #[test]
    fn fields_are_unescaped_first() {
        let e = ex(
            b"OK\t1\tuser=al\x01tice\tproxy\tdirector_tag=t\x011",
            AuthOk,
        );
        assert_eq!(e.username.as_deref(), Some(&b"al\tice"[..]));
        assert_eq!(&*e.tag, b"t\x01");
        // an escaped byte can complete a prefix, as in Dovecot
        let e = ex(b"OK\t1\tuser=a\tprox\x01y", AuthOk);
        assert!(e.proxy);
    }

    #[test]
    fn addresses_and_ports() {
        let e = ex(
            b"OK\t1\tuser=a\tproxy\tlip=127.0.5.1\tlport=0143\tport=11143",
            AuthOk,
        );
        assert_eq!(
            (e.lip, e.lport, e.port),
            (Some(ip("127.0.5.1")), Some(143), Some(11143))
        );
        assert!(e.bad_fields.is_empty());
        // failures are reported and leave the earlier value
        let e = ex(
            b"OK\t1\tlip=10.0.0.1\tlip=bogus\tlport=7\tlport=0\tport=65536\tport=x\tlport=",
            AuthOk,
        );
        assert_eq!(
            (e.lip, e.lport, e.port),
            (Some(ip("10.0.0.1")), Some(7), None)
        );
        let bad: Vec<_> = e
            .bad_fields
            .iter()
            .map(|b| (b.name, b.value.as_slice()))
            .collect();
        assert_eq!(
            bad,
            [
                ("lip", &b"bogus"[..]),
                ("lport", b"0"),
                ("port", b"65536"),
                ("port", b"x"),
                ("lport", b"")
            ]
        );
        let e = ex(b"OK\t1\tlip=2001:DB8::1\tlport=65535", AuthOk);
        assert_eq!((e.lip, e.lport), (Some(ip("2001:db8::1")), Some(65535)));
        assert_eq!(parse_port(b"000000000000000000000080"), Some(80));
        assert_eq!(parse_port(b"99999999999999999999999"), None);
    }

    /// Dovecot sees lines and unescaped fields as C strings.
    #[test]
    fn nul_ends_lines_and_fields() {
        assert_eq!(c_string(b"OK\t1\0\tproxy"), b"OK\t1");
        let e = ex(b"OK\t1\tuser=alice\0\tproxy", AuthOk);
        assert!(!e.proxy && !e.needs_host());
        let e = ex(
            b"OK\t1\tuser=al\x010ice\tproxy\x010x\tdestuser\x010=b",
            AuthOk,
        );
        assert_eq!(e.username.as_deref(), Some(&b"al"[..]));
        assert!(e.proxy && e.needs_host());
        let mut out = Vec::new();
        decorate(b"OK\t1\tuser=a\tproxy\0junk", 5, "10.0.0.1", None, &mut out);
        assert_eq!(
            out,
            b"OK\t1\tuser=a\tproxy\tproxy_refresh=5\thost=10.0.0.1\n"
        );
        let mut out = Vec::new();
        temp_fail(b"OK\t12\x003\tuser=a", &mut out);
        assert_eq!(out, b"FAIL\t12\tcode=temp_fail\n");
    }

    /// §6.1 self rule.
    #[test]
    fn proxy_maybe_self() {
        let e = ex(
            b"OK\t1\tuser=a\tdirector_proxy_maybe\tlip=10.0.0.2\tlport=143",
            AuthOk,
        );
        assert!(e.is_self(ip("10.0.0.2")));
        assert!(!e.is_self(ip("10.0.0.3")));
        let e = ex(
            b"OK\t1\tuser=a\tdirector_proxy_maybe\tlip=10.0.0.2\tlport=143\tport=143",
            AuthOk,
        );
        assert!(e.is_self(ip("10.0.0.2")));
        let e = ex(
            b"OK\t1\tuser=a\tdirector_proxy_maybe\tlip=10.0.0.2\tlport=143\tport=993",
            AuthOk,
        );
        assert!(!e.is_self(ip("10.0.0.2")));
        let e = ex(
            b"OK\t1\tuser=a\tdirector_proxy_maybe\tlip=10.0.0.2\tport=993",
            AuthOk,
        );
        assert!(e.is_self(ip("10.0.0.2")));
        let e = ex(b"OK\t1\tuser=a\tdirector_proxy_maybe\tlport=143", AuthOk);
        assert!(!e.is_self(ip("0.0.0.0")));
    }

    /// §4.3: cut before the separator's first character.
    #[test]
    fn master_user_separator() {
        assert_eq!(master_user_cut(b"alice*master", Some(b'*')), b"alice");
        assert_eq!(master_user_cut(b"alice*master", None), b"alice*master");
        assert_eq!(master_user_cut(b"alice", Some(b'*')), b"alice");
        assert_eq!(master_user_cut(b"*x", Some(b'*')), b"");
        let e = ex(b"OK\t1\tuser=alice*master\tproxy", AuthOk);
        assert_eq!(e.lookup_name(Some(b'*')), Some(&b"alice"[..]));
        assert_eq!(e.lookup_name(None), Some(&b"alice*master"[..]));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80), pass in any::<bool>()) {
            let kind = if pass { UserdbPass } else { AuthOk };
            let mut line = kind.prefix().to_vec();
            line.extend_from_slice(&bytes);
            let e = examine(&line, kind).expect("has the prefix");
            let _ = (e.needs_host(), e.is_self(IpAddr::from([127, 0, 0, 1])), e.lookup_name(Some(b'*')));
            let mut out = Vec::new();
            temp_fail(&line, &mut out);
            prop_assert!(out.starts_with(b"FAIL\t") && out.ends_with(b"\tcode=temp_fail\n"));
            let _ = examine(&bytes, kind);
        }

        #[test]
        fn decorate_appends_exactly(line in proptest::collection::vec(any::<u8>(), 0..40), n in any::<u32>()) {
            let mut out = Vec::new();
            decorate(&line, n, "10.0.0.1", None, &mut out);
            let kept = c_string(&line);
            prop_assert!(out.starts_with(kept));
            let suffix = format!("\tproxy_refresh={n}\thost=10.0.0.1\n");
            prop_assert_eq!(&out[kept.len()..], suffix.as_bytes());
        }
    }
}
