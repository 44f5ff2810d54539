//! DIRECTOR-LIST entries (§6.13): one line per ring connection, or per director without one.

use std::net::IpAddr;

use crate::error::{ParseError, ParseErrorKind};

use super::fields::{
    fields, ip_at, num_at, parse_i32, parse_i64, parse_u32, parse_u64, put_ip, put_num,
};

/// `<type>` of a director host line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostType {
    /// `self`: this director.
    Local,
    /// `removed`: a director being removed from the ring (wins over `self`).
    Removed,
    /// Empty: any other known director.
    Other,
}

impl HostType {
    fn text(self) -> &'static str {
        match self {
            HostType::Local => "self",
            HostType::Removed => "removed",
            HostType::Other => "",
        }
    }
}

/// This director's ring state, on its own host line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RingStatus {
    /// `ring handshaking`
    Handshaking,
    /// `ring synced`
    Synced,
    /// `ring syncing - last sync <n> secs ago` (`%d`).
    Syncing {
        /// Seconds since the last completed sync.
        secs_ago: i32,
    },
}

impl RingStatus {
    fn parse(text: &[u8]) -> Option<RingStatus> {
        match text {
            b"ring handshaking" => Some(RingStatus::Handshaking),
            b"ring synced" => Some(RingStatus::Synced),
            _ => {
                let n = text
                    .strip_prefix(b"ring syncing - last sync ")?
                    .strip_suffix(b" secs ago")?;
                Some(RingStatus::Syncing {
                    secs_ago: parse_i32(n)?,
                })
            }
        }
    }

    fn put(&self, out: &mut Vec<u8>) {
        match self {
            RingStatus::Handshaking => out.extend_from_slice(b"ring handshaking"),
            RingStatus::Synced => out.extend_from_slice(b"ring synced"),
            RingStatus::Syncing { secs_ago } => {
                out.extend_from_slice(b"ring syncing - last sync ");
                put_num(out, secs_ago);
                out.extend_from_slice(b" secs ago");
            }
        }
    }
}

/// `<ring_status>\t<sync_ms>`, present only on this director's own host line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalStatus {
    /// Ring state.
    pub ring: RingStatus,
    /// Duration of the last completed ring SYNC round, in ms.
    pub last_sync_ms: u32,
}

/// Host line: `<ip>\t<port>\t<type>\t<last_failed>\t[<ring_status>\t<sync_ms>]`; lines of
/// other directors end with the TAB after `<last_failed>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirectorHost {
    /// Director address.
    pub ip: IpAddr,
    /// Ring port (0 for a stand-alone director's own line).
    pub port: u16,
    /// `self`, `removed` or empty.
    pub kind: HostType,
    /// Latest network or protocol failure, Unix time, 0 if never.
    pub last_failed: i64,
    /// Present exactly on this director's own line.
    pub local: Option<LocalStatus>,
}

/// `<type>` of a ring connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnType {
    /// `left`: our left neighbour.
    Left,
    /// `right`: our right neighbour.
    Right,
    /// `in`: another incoming connection.
    In,
    /// `out`: another outgoing connection.
    Out,
}

impl ConnType {
    const ALL: [ConnType; 4] = [ConnType::Left, ConnType::Right, ConnType::In, ConnType::Out];

    fn text(self) -> &'static str {
        match self {
            ConnType::Left => "left",
            ConnType::Right => "right",
            ConnType::In => "in",
            ConnType::Out => "out",
        }
    }
}

/// The director a connection belongs to: the first four fields of a connection line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnPeer {
    /// Remote director address.
    pub ip: IpAddr,
    /// Its ring port.
    pub port: u16,
    /// Connection role.
    pub kind: ConnType,
    /// Latest network or protocol failure of that director, Unix time, 0 if never.
    pub last_failed: i64,
}

/// `<conn_status>` of a ring connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnStatus {
    /// `handshaking - <n> USERs received` (incoming).
    HandshakingReceived(u32),
    /// `handshaking - <n> USERs sent` (outgoing).
    HandshakingSent(u32),
    /// `synced`
    Synced,
    /// `syncing`
    Syncing,
}

impl ConnStatus {
    fn parse(text: &[u8]) -> Option<ConnStatus> {
        match text {
            b"synced" => Some(ConnStatus::Synced),
            b"syncing" => Some(ConnStatus::Syncing),
            _ => {
                let rest = text.strip_prefix(b"handshaking - ")?;
                if let Some(n) = rest.strip_suffix(b" USERs received") {
                    return parse_u32(n).map(ConnStatus::HandshakingReceived);
                }
                let n = rest.strip_suffix(b" USERs sent")?;
                parse_u32(n).map(ConnStatus::HandshakingSent)
            }
        }
    }

    fn put(&self, out: &mut Vec<u8>) {
        match self {
            ConnStatus::Synced => out.extend_from_slice(b"synced"),
            ConnStatus::Syncing => out.extend_from_slice(b"syncing"),
            ConnStatus::HandshakingReceived(n) | ConnStatus::HandshakingSent(n) => {
                out.extend_from_slice(b"handshaking - ");
                put_num(out, n);
                out.extend_from_slice(match self {
                    ConnStatus::HandshakingReceived(_) => b" USERs received",
                    _ => b" USERs sent",
                });
            }
        }
    }
}

/// Connection line: `[<ip>\t<port>\t<type>\t<last_failed>\t]<conn_status>\t<ping_ms>\t
/// <bytes_in>\t<bytes_out>\t<buffered>\t<peak_buffered>\t<last_in>\t<last_out>`; the first
/// four fields are missing while the remote director is not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirectorConn {
    /// The remote director, once known.
    pub peer: Option<ConnPeer>,
    /// Handshake/sync state.
    pub status: ConnStatus,
    /// Last ping round trip, ms.
    pub ping_ms: u32,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Bytes waiting in the output buffer.
    pub buffered: u64,
    /// Most bytes ever waiting in the output buffer.
    pub peak_buffered: u64,
    /// Unix time of the last input.
    pub last_in: i64,
    /// Unix time of the last output.
    pub last_out: i64,
}

/// One DIRECTOR-LIST entry line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirectorLine {
    /// A director without a ring connection (or ourselves).
    Host(DirectorHost),
    /// A ring connection.
    Conn(DirectorConn),
}

impl DirectorLine {
    /// Parse one entry line; the field count tells the forms apart (5 or 6: host line,
    /// 8: connection without a known director, 12: connection).
    pub fn parse(line: &[u8]) -> Result<DirectorLine, ParseError> {
        let f = fields(line);
        let bad = |field| ParseError::new(ParseErrorKind::BadValue, field);
        let port = |i| num_at(&f, i, |t| parse_u64(t).and_then(|n| u16::try_from(n).ok()));
        match f.len() {
            5 | 6 => {
                let kind = match &*f[2] {
                    b"self" => HostType::Local,
                    b"removed" => HostType::Removed,
                    b"" => HostType::Other,
                    _ => return Err(bad(2)),
                };
                let local = match f.len() {
                    6 => Some(LocalStatus {
                        ring: RingStatus::parse(&f[4]).ok_or(bad(4))?,
                        last_sync_ms: num_at(&f, 5, parse_u32)?,
                    }),
                    _ if f[4].is_empty() => None,
                    _ => return Err(bad(4)),
                };
                Ok(DirectorLine::Host(DirectorHost {
                    ip: ip_at(&f, 0)?,
                    port: port(1)?,
                    kind,
                    last_failed: num_at(&f, 3, parse_i64)?,
                    local,
                }))
            }
            8 | 12 => {
                let peer = match f.len() {
                    12 => Some(ConnPeer {
                        ip: ip_at(&f, 0)?,
                        port: port(1)?,
                        kind: ConnType::ALL
                            .into_iter()
                            .find(|k| k.text().as_bytes() == &*f[2])
                            .ok_or(bad(2))?,
                        last_failed: num_at(&f, 3, parse_i64)?,
                    }),
                    _ => None,
                };
                let s = f.len() - 8;
                Ok(DirectorLine::Conn(DirectorConn {
                    peer,
                    status: ConnStatus::parse(&f[s]).ok_or(bad(s))?,
                    ping_ms: num_at(&f, s + 1, parse_u32)?,
                    bytes_in: num_at(&f, s + 2, parse_u64)?,
                    bytes_out: num_at(&f, s + 3, parse_u64)?,
                    buffered: num_at(&f, s + 4, parse_u64)?,
                    peak_buffered: num_at(&f, s + 5, parse_u64)?,
                    last_in: num_at(&f, s + 6, parse_i64)?,
                    last_out: num_at(&f, s + 7, parse_i64)?,
                }))
            }
            n => Err(ParseError::new(ParseErrorKind::BadArgCount, n)),
        }
    }

    /// Append the line, LF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let put_host = |out: &mut Vec<u8>, ip, port: u16, kind: &str, last_failed: i64| {
            put_ip(out, ip);
            out.push(b'\t');
            put_num(out, port);
            out.push(b'\t');
            out.extend_from_slice(kind.as_bytes());
            out.push(b'\t');
            put_num(out, last_failed);
            out.push(b'\t');
        };
        match self {
            DirectorLine::Host(h) => {
                put_host(out, &h.ip, h.port, h.kind.text(), h.last_failed);
                if let Some(local) = &h.local {
                    local.ring.put(out);
                    out.push(b'\t');
                    put_num(out, local.last_sync_ms);
                }
            }
            DirectorLine::Conn(c) => {
                if let Some(p) = &c.peer {
                    put_host(out, &p.ip, p.port, p.kind.text(), p.last_failed);
                }
                c.status.put(out);
                for n in [
                    c.ping_ms.into(),
                    c.bytes_in,
                    c.bytes_out,
                    c.buffered,
                    c.peak_buffered,
                ] {
                    out.push(b'\t');
                    put_num(out, n);
                }
                for t in [c.last_in, c.last_out] {
                    out.push(b'\t');
                    put_num(out, t);
                }
            }
        }
        out.push(b'\n');
    }
}
