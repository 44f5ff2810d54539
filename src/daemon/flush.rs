//! The daemon's use of `director_flush_socket` (`auth-proxy.md` §11): checking the setting
//! at startup and running one flush per move through [`crate::kick::flush::FlushRunner`],
//! which implements `unix:`, `tcp:` and `exec:` as Dovecot's program client does.

use std::net::IpAddr;
use std::path::Path;

use director_parsers::flush::{FlushRequest, FlushResult};

use crate::kick::flush::{FlushRunner, MAX_FLUSH_RUN};
use crate::kick::{FlushTarget, FlushTemplate};

/// Checks a `director_flush_socket` value at startup: only known `%` variables and a
/// scheme the program client supports (`unix:`, `tcp:`, `exec:`).
pub fn validate(template: &str) -> Result<(), String> {
    let parsed = FlushTemplate::parse(template).map_err(|e| e.message)?;
    // The scheme never depends on the expansion in a sane setting; probe with a test IP.
    let probe = parsed.expand(IpAddr::from([192, 0, 2, 1]), Some("probe"));
    FlushTarget::parse(&probe, Path::new("/"))
        .map(|_| ())
        .map_err(|e| format!("{e} in '{template}' (expected unix:, tcp: or exec:)"))
}

/// Runs one flush for a user moved to `req.new_ip` (named `hostname`); true if it
/// succeeded. Every failure is logged by the runner; the move's 30 s timer bounds it too.
pub async fn run(
    template: &str,
    base_dir: &Path,
    req: FlushRequest,
    hostname: Option<&str>,
) -> bool {
    let template = match FlushTemplate::parse(template) {
        Ok(t) => t,
        Err(e) => {
            // Checked at startup, so only reachable if the setting changed meanwhile.
            tracing::error!("{e}");
            return false;
        }
    };
    let runner = FlushRunner::new(template, base_dir.to_path_buf(), MAX_FLUSH_RUN);
    runner.run(&req, hostname).await == FlushResult::Success
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_accepts_every_program_client_scheme() {
        assert!(validate("unix:flush-%i-%{host}").is_ok());
        assert!(validate("tcp:127.0.0.1:9999").is_ok());
        assert!(validate("exec:/bin/true").is_ok());
        assert!(validate("flush").is_err());
        assert!(validate("http:%i").unwrap_err().contains("Unsupported"));
        assert!(validate("unix:%q")
            .unwrap_err()
            .contains("unknown variable %q"));
    }
}
