//! Examining and rewriting result lines (`OK\t` / `PASS\t`) for the auth, userdb and authreply
//! connection kinds (`auth-proxy.md` §§3-6). Mirrors `director-request.c` and the reply
//! handling of `login-connection.c`. The user hash is computed here, in the connection task;
//! only the host choice goes through the state owner.
//!

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use director_parsers::ip::{ip_to_string, ipv4_text, IPV4_MAX};
use director_parsers::passdb::{self, Decorator, Examined, ReplyKind};
use tracing::{error, warn};

use super::events::{HostOutcome, HostQuery, LookupAnswer, OwnerHandle};
use crate::username_hash::UsernameHash;

/// What to do with one line.
pub enum Processed {
    /// The reply (LF included) was appended to the output buffer.
    Done,
    /// Write the bytes this future yields when it completes (a delayed lookup).
    Later(Pin<Box<dyn Future<Output = Vec<u8>> + Send>>),
    /// The state owner is gone: the daemon is stopping.
    Shutdown,
}

/// A line after [`ReplyRewriter::ask`], waiting for [`ReplyRewriter::answer`].
pub enum Asked {
    /// Forward the line unchanged.
    Forward(Bytes),
    /// The line's host request is in the batch for the state owner.
    Lookup(Lookup),
}

/// A line whose host request goes to the state owner.
pub struct Lookup {
    line: Bytes,
    self_rule: Option<Examined<'static>>,
}

/// Per-listener-kind line processing, shared by all connections of that kind.
#[derive(Debug)]
pub struct ReplyRewriter {
    kind: ReplyKind,
    hasher: Arc<UsernameHash>,
    separator: Option<u8>,
    decorator: Arc<Decorator>,
    owner: OwnerHandle,
}

impl ReplyRewriter {
    /// A rewriter for `kind`'s result lines.
    pub fn new(
        kind: ReplyKind,
        hasher: Arc<UsernameHash>,
        separator: Option<u8>,
        proxy_refresh: u32,
        owner: OwnerHandle,
    ) -> Self {
        Self {
            kind,
            hasher,
            separator,
            decorator: Arc::new(Decorator::new(proxy_refresh)),
            owner,
        }
    }

    /// First half of processing one line (without its LF): examine it and, if it needs a
    /// host, add its request to `queries`. A connection collects the requests of every
    /// line it has read and sends them to the state owner as one batch
    /// ([`ReplyRewriter::lookup`]), so the owner is woken and answers once per read.
    pub fn ask(&self, line: Bytes, queries: &mut Vec<HostQuery>) -> Asked {
        let Some(ex) = passdb::examine(&line, self.kind) else {
            return Asked::Forward(line);
        };
        for bad in &ex.bad_fields {
            warn!(
                "auth: Invalid {} field: {}",
                bad.name,
                String::from_utf8_lossy(&bad.value)
            );
        }
        if !ex.needs_host() {
            return Asked::Forward(line);
        }
        let Some(name) = ex.lookup_name(self.separator) else {
            return Asked::Forward(line);
        };
        queries.push(HostQuery {
            tag: part_of(&line, &ex.tag),
            hash: self.hasher.hash(name),
            username: part_of(&line, name),
            answer: None,
        });
        // The proxy_maybe "self" rule needs lip/port/lport after the lookup; nothing else
        // of the examination is needed again.
        let self_rule = ex.proxy_maybe.then(|| Examined {
            lip: ex.lip,
            port: ex.port,
            lport: ex.lport,
            ..Examined::default()
        });
        Asked::Lookup(Lookup { line, self_rule })
    }

    /// Sends a batch of [`ReplyRewriter::ask`] requests to the state owner and waits for the
    /// answers (in place, in order). `None` if the owner is gone (shutting down).
    pub async fn lookup(&self, queries: Vec<HostQuery>) -> Option<Vec<HostQuery>> {
        self.owner.lookup_hosts(queries).await
    }

    /// Second half: the reply for an [`Asked`] line given the owner's `answer` to its request,
    /// appended to `out` when it is decided now (forward, decorate or temp_fail), or held
    /// back. A lookup without an answer means the owner is gone.
    pub fn answer(
        &self,
        asked: Asked,
        answer: Option<LookupAnswer>,
        out: &mut Vec<u8>,
    ) -> Processed {
        let Lookup { line, self_rule } = match asked {
            Asked::Forward(line) => {
                out.extend_from_slice(&line);
                out.push(b'\n');
                return Processed::Done;
            }
            Asked::Lookup(lookup) => lookup,
        };
        match answer {
            None => Processed::Shutdown,
            Some(LookupAnswer::Done(outcome)) => {
                finish(&line, &outcome, &self.decorator, self_rule.as_ref(), out);
                Processed::Done
            }
            Some(LookupAnswer::Queued(rx)) => {
                let decorator = self.decorator.clone();
                Processed::Later(Box::pin(async move {
                    let mut out = Vec::with_capacity(line.len() + 64);
                    match rx.await {
                        Ok(outcome) => {
                            finish(&line, &outcome, &decorator, self_rule.as_ref(), &mut out)
                        }
                        Err(_) => {
                            // The owner dropped the request (shutting down): fail it.
                            error!("director: host lookup aborted");
                            passdb::temp_fail(&line, &mut out);
                        }
                    }
                    out
                }))
            }
        }
    }
}

/// `part` as a `Bytes` sharing `line`'s buffer when it is a slice of it (no copy, no
/// allocation), else a copy (an unescaped field).
fn part_of(line: &Bytes, part: &[u8]) -> Bytes {
    let start = line.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    if part.is_empty() {
        Bytes::new()
    } else if at >= start && at + part.len() <= start + line.len() {
        line.slice_ref(part)
    } else {
        Bytes::copy_from_slice(part)
    }
}

/// The reply for a decided lookup (`auth-proxy.md` §6).
/// `self_rule` carries the line's `lip`/`port`/`lport` when it had `director_proxy_maybe`.
fn finish(
    line: &[u8],
    outcome: &HostOutcome,
    decorator: &Decorator,
    self_rule: Option<&Examined<'static>>,
    out: &mut Vec<u8>,
) {
    let is_self = |ip| self_rule.is_some_and(|ex| ex.is_self(ip));
    match outcome {
        HostOutcome::Host { ip, .. } if is_self(*ip) => {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        HostOutcome::Host { ip, hostname } => match hostname {
            Some(name) => {
                let mut v4 = [0; IPV4_MAX];
                let v6;
                let ip_text = match ip {
                    IpAddr::V4(a) => ipv4_text(a, &mut v4),
                    IpAddr::V6(_) => {
                        v6 = ip_to_string(ip);
                        v6.as_str()
                    }
                };
                decorator.decorate(line, name, Some(ip_text), out)
            }
            None => decorator.decorate_ip(line, ip, out),
        },
        HostOutcome::Failed => passdb::temp_fail(line, out),
    }
}
