//! Listing users through the auth master socket (`<base_dir>/auth-userdb`), as doveadm's
//! `director map` does without `-f`: `VERSION\t1\t0` + `LIST\t1`, then `LIST\t1\t<user>`
//! lines until `DONE\t1` (or `DONE\t1\tfail`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use director_parsers::escape::split_unescaped;

use super::resolve::io_strerror;

/// How long the whole listing may take between two replies (Dovecot's lookup timeout).
const TIMEOUT: Duration = Duration::from_secs(30);
/// Prefix of every error logged by the listing.
const PREFIX: &str = "auth-master: userdb list: ";

/// The user names the userdb listed, and the error lines (without `Error: `) logged on the way.
/// `failed` is set when the listing did not end with a clean `DONE`.
#[derive(Debug, Default)]
pub struct Listing {
    /// Names in the order received.
    pub users: Vec<Vec<u8>>,
    /// Errors to print, in order.
    pub errors: Vec<String>,
    /// doveadm then prints `Error: user listing failed` and exits 75.
    pub failed: bool,
}

/// Lists all users of the userdb behind the auth master socket at `path`.
pub fn list_users(path: &str) -> Listing {
    let mut out = Listing::default();
    let stream = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(e) => {
            out.errors.push(format!(
                "{PREFIX}connect({path}) failed: {}",
                io_strerror(&e)
            ));
            out.failed = true;
            return out;
        }
    };
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(e) => {
            out.errors.push(format!(
                "{PREFIX}write(auth socket) failed: {}",
                io_strerror(&e)
            ));
            out.failed = true;
            return out;
        }
    };
    if let Err(e) = writer.write_all(b"VERSION\t1\t0\nLIST\t1\n") {
        out.errors.push(format!(
            "{PREFIX}write(auth socket) failed: {}",
            io_strerror(&e)
        ));
        out.failed = true;
        return out;
    }
    let mut reader = BufReader::new(stream);
    let mut handshake_done = false;
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => {
                out.errors
                    .push(format!("{PREFIX}Disconnected unexpectedly"));
                out.failed = true;
                return out;
            }
            Ok(_) if line.last() != Some(&b'\n') => {
                out.errors
                    .push(format!("{PREFIX}Disconnected unexpectedly"));
                out.failed = true;
                return out;
            }
            Ok(_) => {}
            Err(e) => {
                let what = if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) {
                    if handshake_done {
                        "Request timed out".to_string()
                    } else {
                        "Connecting timed out".to_string()
                    }
                } else {
                    format!("read failed: {}", io_strerror(&e))
                };
                out.errors.push(format!("{PREFIX}{what}"));
                out.failed = true;
                return out;
            }
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let args = split_unescaped(&line);
        let cmd: &[u8] = args.first().map(|a| a.as_ref()).unwrap_or(b"");
        if !handshake_done {
            if cmd == b"VERSION" && args.len() >= 3 {
                if args[1].as_ref() != b"1" {
                    out.errors.push(format!(
                        "{PREFIX}Socket supports major version {}, but we support only 1 (mixed old and new binaries?)",
                        String::from_utf8_lossy(&args[1])
                    ));
                    out.failed = true;
                    return out;
                }
            } else if cmd == b"SPID" {
                handshake_done = true;
            }
            continue;
        }
        let id: &[u8] = args.get(1).map(|a| a.as_ref()).unwrap_or(b"");
        if id != b"1" {
            out.errors.push(format!(
                "{PREFIX}BUG: Unexpected input: {}",
                String::from_utf8_lossy(&line)
            ));
            out.failed = true;
            return out;
        }
        match cmd {
            b"DONE" => {
                if args.get(2).map(|a| a.as_ref()) == Some(&b"fail"[..]) {
                    out.errors
                        .push(format!("{PREFIX}User listing returned failure"));
                    out.failed = true;
                }
                return out;
            }
            b"LIST" if args.len() >= 3 => {
                let name = args[2].as_ref();
                // doveadm ignores empty names (it takes them for "no user yet")
                if !name.is_empty() {
                    out.users.push(name.to_vec());
                }
            }
            _ => {
                out.errors
                    .push(format!("{PREFIX}User listing returned invalid input"));
                out.failed = true;
                return out;
            }
        }
    }
}
