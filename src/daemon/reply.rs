//! Examining and rewriting result lines (`OK\t` / `PASS\t`) for the auth, userdb and authreply
//! connection kinds (`auth-proxy.md` §§3-6). Mirrors `director-request.c` and the reply
//! handling of `login-connection.c`.
//!
//! PLUMBING STAGE: lines are forwarded unchanged until the passdb examiner lands.

use std::future::Future;
use std::pin::Pin;

use super::events::OwnerHandle;

/// Which result lines a connection examines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultPrefix {
    /// `OK\t` (auth and authreply kinds).
    Ok,
    /// `PASS\t` (userdb kind).
    Pass,
}

/// What to do with one line.
pub enum Processed {
    /// Write these bytes now (LF included).
    Now(Vec<u8>),
    /// Write the bytes this future yields when it completes (a delayed lookup).
    Later(Pin<Box<dyn Future<Output = Vec<u8>> + Send>>),
    /// The state owner is gone: the daemon is stopping.
    Shutdown,
}

/// Per-listener-kind line processing, shared by all connections of that kind.
#[derive(Debug)]
pub struct ReplyRewriter {
    prefix: ResultPrefix,
    #[allow(dead_code)]
    owner: OwnerHandle,
}

impl ReplyRewriter {
    /// A rewriter for lines starting with `prefix`.
    pub fn new(prefix: ResultPrefix, owner: OwnerHandle) -> Self {
        Self { prefix, owner }
    }

    /// The examined prefix.
    pub fn prefix(&self) -> ResultPrefix {
        self.prefix
    }

    /// Processes one line (without its LF).
    pub async fn process(&self, line: &[u8]) -> Processed {
        Processed::Now(with_lf(line))
    }
}

fn with_lf(line: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(line.len() + 1);
    v.extend_from_slice(line);
    v.push(b'\n');
    v
}
