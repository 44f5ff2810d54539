//! `director_flush_socket`: its %-expansion and the program client schemes it names.
//!
//! Replaces the template handling of `director_flush_user` (`src/director/director.c`) and
//! the scheme dispatch of `program_client_create` (`src/lib-program-client/`)
//! (`auth-proxy.md` §11). The template is checked when the configuration is read; it is
//! expanded per move with the user's new host.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use director_parsers::ip::ip_to_string;

/// A `director_flush_socket` template with an unknown `%` variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushConfigError {
    /// What is wrong, naming the variable.
    pub message: String,
}

impl fmt::Display for FlushConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "director_flush_socket: {}", self.message)
    }
}

impl std::error::Error for FlushConfigError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// `%i`, `%{ip}`: the new host's IP.
    Ip,
    /// `%h`, `%{host}`: the new host's name from `director_mail_servers` (empty if none).
    Host,
    /// `%{hostname}`: this machine's name.
    Hostname,
    /// `%{pid}`: our process ID.
    Pid,
    /// `%{env:NAME}`.
    Env(String),
}

/// A parsed `director_flush_socket` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushTemplate {
    source: String,
    parts: Vec<Part>,
}

impl FlushTemplate {
    /// Parse the setting: `%i`/`%{ip}`, `%h`/`%{host}`, `%{hostname}`, `%{pid}`,
    /// `%{env:NAME}` and `%%`; anything else is an error.
    pub fn parse(source: &str) -> Result<FlushTemplate, FlushConfigError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(at) = rest.find('%') {
            text.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (part, used) = match after.chars().next() {
                Some('%') => {
                    text.push('%');
                    rest = &after[1..];
                    continue;
                }
                Some('i') => (Part::Ip, 1),
                Some('h') => (Part::Host, 1),
                Some('{') => {
                    let end = after.find('}').ok_or_else(|| FlushConfigError {
                        message: format!("unterminated %{{ in {source:?}"),
                    })?;
                    let name = &after[1..end];
                    let part = match name {
                        "ip" => Part::Ip,
                        "host" => Part::Host,
                        "hostname" => Part::Hostname,
                        "pid" => Part::Pid,
                        _ => match name.strip_prefix("env:") {
                            Some(var) => Part::Env(var.to_string()),
                            None => {
                                return Err(FlushConfigError {
                                    message: format!("unknown variable %{{{name}}}"),
                                })
                            }
                        },
                    };
                    (part, end + 1)
                }
                Some(c) => {
                    return Err(FlushConfigError {
                        message: format!("unknown variable %{c}"),
                    })
                }
                None => {
                    return Err(FlushConfigError {
                        message: format!("lone % at the end of {source:?}"),
                    })
                }
            };
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(part);
            rest = &after[used..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(FlushTemplate {
            source: source.to_string(),
            parts,
        })
    }

    /// The setting as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Expand for a user moved to `ip` (named `hostname` in `director_mail_servers`).
    pub fn expand(&self, ip: IpAddr, hostname: Option<&str>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Ip => out.push_str(&ip_to_string(&ip)),
                Part::Host => out.push_str(hostname.unwrap_or("")),
                Part::Hostname => out.push_str(&local_hostname()),
                Part::Pid => out.push_str(&std::process::id().to_string()),
                Part::Env(var) => out.push_str(&std::env::var(var).unwrap_or_default()),
            }
        }
        out
    }
}

fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success
    // when the name fits, and the last byte stays 0 otherwise.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return String::new();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// Where an expanded `director_flush_socket` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlushTarget {
    /// `unix:<path>`: a script-protocol server on a UNIX socket.
    Unix(PathBuf),
    /// `tcp:<host>:<port>`: a script-protocol server over TCP.
    Tcp {
        /// Host name or IP (`[...]` around an IPv6 address removed).
        host: String,
        /// Port, never 0.
        port: u16,
    },
    /// `exec:<program>`: run the program locally; the flush arguments are its argv.
    Exec(PathBuf),
}

impl FlushTarget {
    /// Parse an expanded value; relative paths are relative to `base_dir` (the director's
    /// working directory and chroot in Dovecot). The error text is what gets logged.
    pub fn parse(expanded: &str, base_dir: &Path) -> Result<FlushTarget, String> {
        let path = |p: &str| {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base_dir.join(p)
            }
        };
        if let Some(p) = expanded.strip_prefix("unix:") {
            return Ok(FlushTarget::Unix(path(p)));
        }
        if let Some(p) = expanded.strip_prefix("exec:") {
            return Ok(FlushTarget::Exec(path(p)));
        }
        if let Some(hp) = expanded.strip_prefix("tcp:") {
            let (host, port) =
                split_host_port(hp).ok_or_else(|| "Invalid tcp syntax".to_string())?;
            return Ok(FlushTarget::Tcp {
                host: host.to_string(),
                port,
            });
        }
        let scheme = expanded.split(':').next().unwrap_or("");
        Err(format!("Unsupported program client scheme '{scheme}'"))
    }
}

/// `host:port` or `[ipv6]:port`, port 1-65535.
fn split_host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']')?;
            (host, after.strip_prefix(':')?)
        }
        None => text.rsplit_once(':')?,
    };
    let port: u16 = port.parse().ok()?;
    (!host.is_empty() && port != 0).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn expands_ip_host_and_percent() {
        let t = FlushTemplate::parse("unix:flush-%i-%{ip}-%h-%{host}-100%%").unwrap();
        assert_eq!(
            t.expand(ip("10.0.0.1"), Some("mx1")),
            "unix:flush-10.0.0.1-10.0.0.1-mx1-mx1-100%"
        );
        assert_eq!(t.expand(ip("::1"), None), "unix:flush-::1-::1---100%");
        let p = FlushTemplate::parse("x%{pid}").unwrap();
        assert_eq!(
            p.expand(ip("10.0.0.1"), None),
            format!("x{}", std::process::id())
        );
    }

    #[test]
    fn rejects_unknown_variables_at_config_time() {
        for bad in ["unix:%u", "unix:%{user}", "unix:%", "unix:%{ip", "%{env}"] {
            let err = FlushTemplate::parse(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("director_flush_socket: "),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn schemes() {
        let base = Path::new("/run/dovecot");
        assert_eq!(
            FlushTarget::parse("unix:flush", base),
            Ok(FlushTarget::Unix("/run/dovecot/flush".into()))
        );
        assert_eq!(
            FlushTarget::parse("unix:/tmp/f", base),
            Ok(FlushTarget::Unix("/tmp/f".into()))
        );
        assert_eq!(
            FlushTarget::parse("exec:/usr/bin/flush", base),
            Ok(FlushTarget::Exec("/usr/bin/flush".into()))
        );
        assert_eq!(
            FlushTarget::parse("tcp:127.0.0.1:4000", base),
            Ok(FlushTarget::Tcp {
                host: "127.0.0.1".into(),
                port: 4000
            })
        );
        assert_eq!(
            FlushTarget::parse("tcp:[::1]:4000", base),
            Ok(FlushTarget::Tcp {
                host: "::1".into(),
                port: 4000
            })
        );
        for bad in ["tcp:host", "tcp:host:0", "tcp::12", "tcp:h:70000"] {
            assert_eq!(
                FlushTarget::parse(bad, base),
                Err("Invalid tcp syntax".into()),
                "{bad}"
            );
        }
        assert_eq!(
            FlushTarget::parse("http://x", base),
            Err("Unsupported program client scheme 'http'".into())
        );
    }
}
