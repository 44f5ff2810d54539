//! Which 2.4 login services really end a session that anvil kicks (`dovecot-2.4.md` §6.4),
//! learned by watching the first kicks, and the fallback for those that do not.
//!
//! In 2.4's default login mode (`restart_request_count = 1`, one client per process) anvil
//! answers a kick with a count but the login process ignores it. Nothing outside Dovecot's
//! config tells the modes apart without a kick (the processes' environment is overwritten
//! by their process titles), so the first kick that reaches a service's sessions is
//! checked: `CONNECT-DUMP` again until the kicked sessions are gone, for at most
//! [`PROBE_TIMEOUT`]. A service whose sessions stay is marked [`Mode::IgnoresAnvil`], warned
//! about once, and from then on its sessions are kicked through each process's admin socket
//! ([`super::admin_socket`]), which works in either mode. What was learned is forgotten when
//! the anvil connection is re-made (Dovecot may have restarted with another config).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use director_parsers::anvil::ConnectDumpSession;
use tracing::{error, info, warn};

use super::admin_socket;

/// How long a kicked session may take to leave anvil's list before its service is taken
/// to ignore anvil's kicks (a honoured kick clears it within milliseconds).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between the probe's dumps.
pub const PROBE_STEP: Duration = Duration::from_millis(50);

/// What a login service does with anvil's kicks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Closes the session (`restart_request_count` > 1: kick type `A`).
    HonoursAnvil,
    /// Acknowledged by anvil, ignored by the process (2.4's default mode: kick type `W`).
    IgnoresAnvil,
}

/// The per-service modes of one anvil connection, and the warnings already given (those
/// for the whole run of directord, so each is logged once).
#[derive(Debug, Default)]
pub struct LoginModes {
    modes: HashMap<Vec<u8>, Mode>,
    warned_ignores: HashSet<Vec<u8>>,
    warned_unreachable: HashSet<Vec<u8>>,
}

/// Sessions the fallback could not end (anvil counted them, yet they carry on).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    /// Sessions ended through admin sockets.
    pub kicked: u32,
    /// Sessions of services that ignore anvil which could not be kicked at all.
    pub ignored: u32,
    /// Sessions handed to the fallback (anvil counted them but they stayed).
    pub handled: u32,
}

impl LoginModes {
    /// Forget the modes (a new anvil connection: maybe a new Dovecot).
    pub fn reset(&mut self) {
        self.modes.clear();
    }

    /// The mode learned for `service`, if any.
    pub fn get(&self, service: &[u8]) -> Option<Mode> {
        self.modes.get(service).copied()
    }

    /// Of `targets`, those whose service's mode is not known yet.
    pub fn unknown<'a>(&self, targets: &'a [ConnectDumpSession]) -> Vec<&'a ConnectDumpSession> {
        targets
            .iter()
            .filter(|s| self.get(&s.service.unescaped()).is_none())
            .collect()
    }

    /// Record what the probe saw: `probed` were kicked through anvil, `stayed` (a subset)
    /// are still listed afterwards.
    pub fn learn(&mut self, probed: &[&ConnectDumpSession], stayed: &[&ConnectDumpSession]) {
        for s in probed {
            let service = s.service.unescaped().into_owned();
            let ignores = stayed
                .iter()
                .any(|t| t.service.unescaped().as_ref() == service.as_slice());
            let mode = if ignores {
                Mode::IgnoresAnvil
            } else {
                Mode::HonoursAnvil
            };
            if self.modes.insert(service.clone(), mode) == Some(mode) {
                continue;
            }
            let name = String::from_utf8_lossy(&service);
            if mode == Mode::HonoursAnvil {
                info!("anvil: {name} sessions end when kicked through anvil");
            } else if self.warned_ignores.insert(service.clone()) {
                warn!(
                    "anvil: {name} runs in Dovecot 2.4's default login mode \
                     (restart_request_count = 1): its processes acknowledge anvil's kicks but \
                     ignore them. directord kicks its sessions through srv.{name}/<pid> instead \
                     (needs root); set `service {name} {{ restart_request_count = unlimited }}` \
                     so that anvil's kicks (and doveadm kick) work"
                );
            }
        }
    }

    /// Kick `sessions` (of services that ignore anvil) through their admin sockets.
    pub async fn fallback(&mut self, anvil: &Path, sessions: &[&ConnectDumpSession]) -> Fallback {
        let mut out = Fallback::default();
        for s in sessions {
            out.handled += 1;
            match admin_socket::kick_session(anvil, s).await {
                Ok(n) => out.kicked = out.kicked.saturating_add(n),
                Err(e) => {
                    out.ignored += 1;
                    let service = s.service.unescaped().into_owned();
                    let name = String::from_utf8_lossy(&service).into_owned();
                    if self.warned_unreachable.insert(service) {
                        error!(
                            "anvil: cannot kick {name} sessions: Dovecot 2.4's default login \
                             mode ignores anvil's kicks and the process's admin socket failed \
                             ({e}); set `service {name} {{ restart_request_count = unlimited }}`"
                        );
                    }
                }
            }
        }
        out
    }
}
