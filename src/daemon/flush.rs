//! The `director_flush_socket` client (`auth-proxy.md` §11): at the end of a user move the
//! director asks a flush service to flush the user on its new backend. Mirrors
//! `director_flush_user()` in Dovecot's `src/director/director.c` with the remote side of
//! `src/lib-program-client/program-client-remote.c`.
//!
//! Supported targets: `unix:<path>` (relative to base_dir) and `tcp:<host>:<port>`; `exec:`
//! programs are rejected by the configuration. The request bytes and the reply
//! classification come from the parsers crate; this file only does the I/O, with a 10 s
//! connect timeout and an overall bound (the move's own 30 s timer also covers it).

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use director_parsers::flush::{classify, FlushRequest, FlushResult};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::error;

/// Dovecot's program-client connect timeout.
const FLUSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound of one flush (the move times out after 30 s anyway).
const FLUSH_TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Output kept from a flush server (for the failure log); the rest is read and dropped.
const FLUSH_MAX_OUTPUT: usize = 64 * 1024;

/// Checks a `director_flush_socket` value at startup: a supported scheme and only known
/// `%` variables.
pub fn validate(template: &str) -> Result<(), String> {
    let probe = expand(template, IpAddr::from([192, 0, 2, 1]), None)?;
    if probe.starts_with("exec:") {
        return Err("exec: flush programs are not supported yet (use unix: or tcp:)".into());
    }
    if !(probe.starts_with("unix:") || probe.starts_with("tcp:")) {
        return Err(format!(
            "unsupported flush socket '{template}' (expected unix:<path> or tcp:<host>:<port>)"
        ));
    }
    Ok(())
}

/// Expands `%i`/`%{ip}` (new host IP), `%h`/`%{host}` (its hostname, empty if none),
/// `%{hostname}`, `%{pid}`, `%{env:NAME}` and `%%`.
pub fn expand(template: &str, ip: IpAddr, hostname: Option<&str>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (var, len) = if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated %{{ in '{template}'"))?;
            (&body[..end], end + 2)
        } else {
            let c = after
                .chars()
                .next()
                .ok_or_else(|| format!("'%' at the end of '{template}'"))?;
            (&after[..c.len_utf8()], c.len_utf8())
        };
        match var {
            "%" => out.push('%'),
            "i" | "ip" => out.push_str(&director_parsers::ip::ip_to_string(&ip)),
            "h" | "host" => out.push_str(hostname.unwrap_or("")),
            "hostname" => out.push_str(&local_hostname()),
            "pid" => out.push_str(&std::process::id().to_string()),
            v if v.starts_with("env:") => out.push_str(&std::env::var(&v[4..]).unwrap_or_default()),
            v => return Err(format!("Unknown variable '%{v}' in '{template}'")),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Runs one flush against `target` (already expanded); true if the server answered `+`.
/// Every failure is logged here.
pub async fn run(target: &str, base_dir: &Path, req: FlushRequest) -> bool {
    match tokio::time::timeout(FLUSH_TOTAL_TIMEOUT, talk(target, base_dir, req)).await {
        Ok(ok) => ok,
        Err(_) => {
            error!("{target}: flush timed out");
            false
        }
    }
}

async fn talk(target: &str, base_dir: &Path, req: FlushRequest) -> bool {
    let mut request = Vec::new();
    req.encode(&mut request);
    let output = if let Some(path) = target.strip_prefix("unix:") {
        let path = base_dir.join(path);
        match tokio::time::timeout(
            FLUSH_CONNECT_TIMEOUT,
            tokio::net::UnixStream::connect(&path),
        )
        .await
        {
            Ok(Ok(s)) => exchange(s, &request).await,
            Ok(Err(e)) => Err(format!(
                "net_connect_unix({}) failed: {}",
                path.display(),
                super::describe_io_error(&e)
            )),
            Err(_) => Err(format!("connect({}) timed out", path.display())),
        }
    } else if let Some(addr) = target.strip_prefix("tcp:") {
        match tokio::time::timeout(FLUSH_CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
        {
            Ok(Ok(s)) => exchange(s, &request).await,
            Ok(Err(e)) => Err(format!(
                "connect({addr}) failed: {}",
                super::describe_io_error(&e)
            )),
            Err(_) => Err(format!("connect({addr}) timed out")),
        }
    } else {
        Err("unsupported flush socket".to_string())
    };
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            error!("{target}: {e}");
            return false;
        }
    };
    let reply = classify(&output);
    match reply.result {
        FlushResult::Success => true,
        FlushResult::Failure => {
            let lines = reply.lines();
            let new_ip = director_parsers::ip::ip_to_string(&req.new_ip);
            if lines.is_empty() {
                error!(
                    "{target}: Failed to flush user hash {} in host {new_ip}: (no output to stdout)",
                    req.hash
                );
            }
            for line in lines {
                error!(
                    "{target}: Failed to flush user hash {} in host {new_ip}: {}",
                    req.hash,
                    super::loggable_line(line)
                );
            }
            false
        }
        FlushResult::InternalFailure => {
            error!("{target}: flush service sent no valid result (+/-) before closing");
            false
        }
    }
}

/// Writes the request, half-closes, reads until EOF.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    request: &[u8],
) -> Result<Vec<u8>, String> {
    s.write_all(request)
        .await
        .map_err(|e| format!("write() failed: {e}"))?;
    s.shutdown()
        .await
        .map_err(|e| format!("shutdown() failed: {e}"))?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s
            .read(&mut buf)
            .await
            .map_err(|e| format!("read() failed: {e}"))?;
        if n == 0 {
            return Ok(out);
        }
        // Keep the tail: the result bytes are the last two before EOF.
        out.extend_from_slice(&buf[..n]);
        if out.len() > FLUSH_MAX_OUTPUT {
            out.drain(..out.len() - FLUSH_MAX_OUTPUT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_and_validation() {
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            expand("unix:flush-%i-%{ip}-%h-%{host}-%%", ip, Some("mail2")).unwrap(),
            "unix:flush-10.0.0.2-10.0.0.2-mail2-mail2-%"
        );
        assert_eq!(expand("tcp:%h:99", ip, None).unwrap(), "tcp::99");
        assert!(expand("unix:%x", ip, None).is_err());
        assert!(validate("unix:flush").is_ok());
        assert!(validate("tcp:127.0.0.1:9999").is_ok());
        assert!(validate("exec:/bin/true")
            .unwrap_err()
            .contains("not supported"));
        assert!(validate("flush").is_err());
        assert!(validate("unix:%q").is_err());
    }
}
