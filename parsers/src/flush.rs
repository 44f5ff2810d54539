//! The `director_flush_socket` program protocol (auth-proxy.md §11).
//!
//! Mirrors `director_flush_user` / `director_flush_user_continue` in
//! `src/director/director.c` and the remote side of
//! `src/lib-program-client/program-client-remote.c` (script protocol 4.0). The director
//! writes one [`FlushRequest`], half-closes, reads everything until EOF and hands it to
//! [`classify`]. No I/O.

use std::net::IpAddr;

use crate::error::{ParseError, ParseErrorKind};
use crate::escape::{escape_into, unescape};
use crate::field::{parse_u32, version_string_verify};
use crate::ip::{ip_to_string, parse_ip};

/// `PROGRAM_CLIENT_VERSION_MAJOR`.
pub const SCRIPT_PROTOCOL_MAJOR_VERSION: u32 = 4;
/// The request's first line (LF included).
pub const SCRIPT_VERSION_LINE: &[u8] = b"VERSION\tscript\t4\t0\n";

/// The flush request sent at the end of a user move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushRequest {
    /// The user's hash.
    pub hash: u32,
    /// The user's previous host.
    pub old_ip: IpAddr,
    /// The user's new host.
    pub new_ip: IpAddr,
    /// Whether the old host was down when the move started (`down`, else `up`).
    pub old_host_down: bool,
    /// The old host's vhost count when the move started.
    pub old_vhost_count: u32,
}

impl FlushRequest {
    /// Append the whole request: `VERSION\tscript\t4\t0\n-\nFLUSH\n<hash>\n<old_ip>\n`
    /// `<new_ip>\n<up|down>\n<old_vhost_count>\n\n` (`-` = reply wanted; one tab-escaped
    /// argument per line; an empty line ends them).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(SCRIPT_VERSION_LINE);
        out.extend_from_slice(b"-\n");
        let args = [
            b"FLUSH".to_vec(),
            self.hash.to_string().into_bytes(),
            ip_to_string(&self.old_ip).into_bytes(),
            ip_to_string(&self.new_ip).into_bytes(),
            if self.old_host_down {
                b"down".to_vec()
            } else {
                b"up".to_vec()
            },
            self.old_vhost_count.to_string().into_bytes(),
        ];
        for arg in &args {
            escape_into(arg, out);
            out.push(b'\n');
        }
        out.push(b'\n');
    }

    /// Parse a complete request as a flush server receives it (for tests and fake servers):
    /// version 4.x, optional `env_` lines, `-`, the six arguments, the empty line, nothing
    /// after. `field` in errors is the line index.
    pub fn parse(request: &[u8]) -> Result<Self, ParseError> {
        let body = request
            .strip_suffix(b"\n\n")
            .ok_or(ParseError::new(ParseErrorKind::BadArgCount, 0))?;
        let mut lines = body.split(|&b| b == b'\n').enumerate().peekable();
        let (_, version) = lines
            .next()
            .ok_or(ParseError::new(ParseErrorKind::Empty, 0))?;
        version_string_verify(version, b"script", SCRIPT_PROTOCOL_MAJOR_VERSION)?;
        while lines.next_if(|(_, l)| l.starts_with(b"env_")).is_some() {}
        match lines.next() {
            Some((_, b"-")) => {}
            Some((i, _)) => return Err(ParseError::new(ParseErrorKind::BadValue, i)),
            None => return Err(ParseError::new(ParseErrorKind::BadArgCount, 1)),
        }
        let args: Vec<(usize, Vec<u8>)> =
            lines.map(|(i, l)| (i, unescape(l).into_owned())).collect();
        let [cmd, hash, old_ip, new_ip, state, count] = args.as_slice() else {
            let at = args.first().map_or(2, |(i, _)| i + args.len().min(6));
            return Err(ParseError::new(ParseErrorKind::BadArgCount, at));
        };
        if cmd.1 != b"FLUSH" {
            return Err(ParseError::new(ParseErrorKind::UnknownCommand, cmd.0));
        }
        let ip = |(i, text): &(usize, Vec<u8>)| {
            parse_ip(text).ok_or(ParseError::new(ParseErrorKind::BadIp, *i))
        };
        Ok(Self {
            hash: parse_u32(&hash.1, hash.0)?,
            old_ip: ip(old_ip)?,
            new_ip: ip(new_ip)?,
            old_host_down: match state.1.as_slice() {
                b"down" => true,
                b"up" => false,
                _ => return Err(ParseError::new(ParseErrorKind::BadValue, state.0)),
            },
            old_vhost_count: parse_u32(&count.1, count.0)?,
        })
    }
}

/// How the flush ended (`PROGRAM_CLIENT_EXIT_STATUS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushResult {
    /// `+\n` ended the output: the move ends at once.
    Success,
    /// `-\n` ended the output: the output lines are logged, the move waits for the kick delay.
    Failure,
    /// No output, no final LF, or another result byte: the move waits for the kick delay.
    InternalFailure,
}

/// The server's complete output (everything read until EOF), classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushReply<'a> {
    /// The result.
    pub result: FlushResult,
    /// The output before the two result bytes (all bytes for an internal failure).
    pub output: &'a [u8],
}

impl<'a> FlushReply<'a> {
    /// The output's lines for logging: split on LF, a CR before it dropped, a final partial
    /// line kept. None when there was no output (Dovecot then logs `(no output to stdout)`).
    pub fn lines(&self) -> Vec<&'a [u8]> {
        if self.output.is_empty() {
            return Vec::new();
        }
        let body = self.output.strip_suffix(b"\n").unwrap_or(self.output);
        body.split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect()
    }
}

/// Classify a flush server's output: the last two bytes before EOF must be `+\n` or `-\n`.
pub fn classify(output: &[u8]) -> FlushReply<'_> {
    let internal = FlushReply {
        result: FlushResult::InternalFailure,
        output,
    };
    let [rest @ .., code, b'\n'] = output else {
        return internal;
    };
    let result = match code {
        b'+' => FlushResult::Success,
        b'-' => FlushResult::Failure,
        _ => return internal,
    };
    FlushReply {
        result,
        output: rest,
    }
}

/// Append the server's side (for fake flush servers in tests): `output`, then `+\n`/`-\n`.
pub fn encode_reply(output: &[u8], success: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(output);
    out.extend_from_slice(if success { b"+\n" } else { b"-\n" });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_errors;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// §11 [verified] example.
    #[test]
    fn known_request() {
        let req = FlushRequest {
            hash: 1669653170,
            old_ip: ip("10.0.0.2"),
            new_ip: ip("10.0.0.1"),
            old_host_down: false,
            old_vhost_count: 100,
        };
        let wire: &[u8] =
            b"VERSION\tscript\t4\t0\n-\nFLUSH\n1669653170\n10.0.0.2\n10.0.0.1\nup\n100\n\n";
        let mut out = Vec::new();
        req.encode(&mut out);
        assert_eq!(
            out.escape_ascii().to_string(),
            wire.escape_ascii().to_string()
        );
        assert_eq!(FlushRequest::parse(wire), Ok(req));
        let down = FlushRequest {
            old_host_down: true,
            old_ip: ip("2001:db8::1"),
            ..req
        };
        let mut out = Vec::new();
        down.encode(&mut out);
        assert_eq!(
            &out[..],
            &b"VERSION\tscript\t4\t0\n-\nFLUSH\n1669653170\n2001:db8::1\n10.0.0.1\ndown\n100\n\n"[..]
        );
        assert_eq!(FlushRequest::parse(&out), Ok(down));
        // a newer minor and env_ lines are accepted
        let v41 = b"VERSION\tscript\t4\t1\nenv_X=1\n-\nFLUSH\n1\n10.0.0.2\n10.0.0.1\nup\n0\n\n";
        assert!(FlushRequest::parse(v41).is_ok());
    }

    #[test]
    fn request_errors() {
        use ParseErrorKind::*;
        let cases: &[(&[u8], ParseErrorKind, usize)] = &[
            (
                b"VERSION\tscript\t4\t0\n-\nFLUSH\n1\n10.0.0.2\n10.0.0.1\nup\n100\n",
                BadArgCount,
                0,
            ),
            (
                b"VERSION\tscript\t3\t0\n-\nFLUSH\n1\n10.0.0.2\n10.0.0.1\nup\n100\n\n",
                BadHandshake,
                2,
            ),
            (
                b"VERSION\tscript\t4\t0\nnoreply\nFLUSH\n1\n10.0.0.2\n10.0.0.1\nup\n100\n\n",
                BadValue,
                1,
            ),
            (
                b"VERSION\tscript\t4\t0\n-\nFLUSH\n1\n10.0.0.2\n10.0.0.1\nup\n\n",
                BadArgCount,
                7,
            ),
            (
                b"VERSION\tscript\t4\t0\n-\nFLUSH\nx\n10.0.0.2\n10.0.0.1\nup\n100\n\n",
                BadNumber,
                3,
            ),
            (
                b"VERSION\tscript\t4\t0\n-\nFLUSH\n1\nhost\n10.0.0.1\nup\n100\n\n",
                BadIp,
                4,
            ),
            (
                b"VERSION\tscript\t4\t0\n-\nFLUSH\n1\n10.0.0.2\n10.0.0.1\nmaybe\n100\n\n",
                BadValue,
                6,
            ),
            (
                b"VERSION\tscript\t4\t0\n-\nPURGE\n1\n10.0.0.2\n10.0.0.1\nup\n100\n\n",
                UnknownCommand,
                2,
            ),
        ];
        assert_errors(FlushRequest::parse, cases);
    }

    /// §11: the last two bytes before EOF decide.
    #[test]
    fn classify_known_outputs() {
        use FlushResult::*;
        type Case<'a> = (&'a [u8], FlushResult, &'a [&'a [u8]]);
        let cases: &[Case] = &[
            (b"+\n", Success, &[]),
            (b"-\n", Failure, &[]),
            (b"flushed 3 files\n+\n", Success, &[b"flushed 3 files"]),
            (
                b"nfs: stale handle\r\nsecond\n-\n",
                Failure,
                &[b"nfs: stale handle", b"second"],
            ),
            (b"partial\n-\n", Failure, &[b"partial"]),
            (b"", InternalFailure, &[]),
            (b"\n", InternalFailure, &[b""]),
            (b"+", InternalFailure, &[b"+"]),
            (b"ok\n", InternalFailure, &[b"ok"]),
            (b"+\n\n", InternalFailure, &[b"+", b""]),
        ];
        for (output, result, lines) in cases {
            let r = classify(output);
            assert_eq!(r.result, *result, "{}", output.escape_ascii());
            assert_eq!(r.lines(), *lines, "{}", output.escape_ascii());
        }
        let mut out = Vec::new();
        encode_reply(b"x\n", false, &mut out);
        assert_eq!(
            classify(&out),
            FlushReply {
                result: Failure,
                output: b"x\n"
            }
        );
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from)
        ]
    }

    proptest! {
        #[test]
        fn request_roundtrip(hash in any::<u32>(), old_ip in any_ip(), new_ip in any_ip(), down in any::<bool>(), count in any::<u32>()) {
            let req = FlushRequest { hash, old_ip, new_ip, old_host_down: down, old_vhost_count: count };
            let mut out = Vec::new();
            req.encode(&mut out);
            prop_assert_eq!(FlushRequest::parse(&out), Ok(req));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(req) = FlushRequest::parse(&bytes) {
                let mut out = Vec::new();
                req.encode(&mut out);
                prop_assert_eq!(FlushRequest::parse(&out), Ok(req));
            }
            let r = classify(&bytes);
            prop_assert!(r.output.len() <= bytes.len());
            let _ = r.lines();
        }

        #[test]
        fn reply_roundtrip(output in proptest::collection::vec(any::<u8>(), 0..40), ok in any::<bool>()) {
            let mut out = Vec::new();
            encode_reply(&output, ok, &mut out);
            let r = classify(&out);
            prop_assert_eq!(r.result, if ok { FlushResult::Success } else { FlushResult::Failure });
            prop_assert_eq!(r.output, &output[..]);
        }
    }
}
