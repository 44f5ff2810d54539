//! Connection liveness (§9): the handshake timeouts, PING/PONG with the idle and max
//! timeouts, and what the socket layer reports (EOF, too long lines, a full output buffer,
//! errors). Mirrors the `to_ping`/`to_pong` timers of Dovecot's `director-connection.c`.

use super::conn::{ConnTimer, TimerKind};
use super::facade::{CloseKind, Ring};
use super::{ConnFailure, ConnId, LogLevel};
use director_parsers::ring::{Command, Pulse};

/// connect() must finish in this long ("Connect timed out").
pub(super) const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// ME must arrive this soon after connecting ("Handshaking ME timed out").
pub(super) const ME_TIMEOUT_MS: u64 = 10_000;
/// The outgoing side's handshake must progress this often ("Sending handshake timed out").
pub(super) const SEND_USERS_TIMEOUT_MS: u64 = 30_000;
/// The incoming side waits this long for DONE ("Handshaking DONE timed out").
pub(super) const DONE_TIMEOUT_MS: u64 = 40_000;
/// PING after this long without input on a synced connection.
const PING_INTERVAL_MS: u64 = 15_000;
/// PING after this long without input while the connection is not synced.
const PING_SYNC_INTERVAL_MS: u64 = 1_000;
/// PING/PONG round trips slower than this are logged.
const PINGPONG_WARN_MS: u64 = 5_000;

/// `12.345` for a duration in ms, as Dovecot prints seconds.
pub(super) fn secs3(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

impl Ring {
    /// With these PONG waits (`director_ping_idle_timeout`, `director_ping_max_timeout`, ms).
    pub fn with_ping_timeouts(mut self, idle_ms: u64, max_ms: u64) -> Self {
        self.ping_idle_ms = idle_ms.max(1);
        self.ping_max_ms = max_ms.max(1);
        self
    }

    /// (Re)starts a connection's handshake timer.
    pub(super) fn set_handshake_timer(&mut self, id: ConnId, len_ms: u64) {
        let now = self.now_ms;
        if let Some(c) = self.conns.get_mut(&id) {
            c.to_ping = Some(ConnTimer::new(TimerKind::Handshake, len_ms, now));
        }
    }

    /// Dovecot's `director_connection_set_ping_timeout`: PING after 15 s without input, or
    /// 1 s while the connection is not synced.
    pub(super) fn set_ping_timeout(&mut self, id: ConnId) {
        let now = self.now_ms;
        if let Some(c) = self.conns.get_mut(&id) {
            let len = if c.synced || !c.done {
                PING_INTERVAL_MS
            } else {
                PING_SYNC_INTERVAL_MS
            };
            c.to_ping = Some(ConnTimer::new(TimerKind::Ping, len, now));
        }
    }

    /// Input arrived: restart whatever `to_ping` is (handshake, interval or idle wait).
    pub(super) fn input_seen(&mut self, id: ConnId) {
        let now = self.now_ms;
        if let Some(t) = self.conns.get_mut(&id).and_then(|c| c.to_ping.as_mut()) {
            t.at_ms = now + t.len_ms;
        }
    }

    /// Switches the left and right connections' ping interval when the ring's synced state
    /// changes (`director_connection_set_synced`).
    pub(super) fn set_neighbours_synced(&mut self, synced: bool) {
        for id in [self.left, self.right].into_iter().flatten() {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            if c.synced == synced {
                continue;
            }
            c.synced = synced;
            if !c.ping_outstanding {
                self.set_ping_timeout(id);
            }
        }
    }

    /// The earliest per-connection deadline. A connection waiting for its CONNECT close
    /// only has that one: its other timers are not served, and a past deadline that is never
    /// served would keep the ring's timer from being re-armed.
    pub(super) fn next_conn_deadline(&self) -> Option<u64> {
        self.conns
            .values()
            .flat_map(|c| match c.close_at {
                Some(t) => [Some(t), None, None],
                None => [None, c.to_ping.map(|t| t.at_ms), c.pong_at],
            })
            .flatten()
            .min()
    }

    /// Fires the due `to_ping`/`to_pong` timers.
    pub(super) fn conn_timers_due(&mut self) {
        let now = self.now_ms;
        let due: Vec<(ConnId, Option<TimerKind>, bool)> = self
            .conns
            .values()
            .filter(|c| c.close_at.is_none())
            .map(|c| {
                let t = c.to_ping.filter(|t| t.at_ms <= now).map(|t| t.kind);
                (c.id, t, c.pong_at.is_some_and(|t| t <= now))
            })
            .filter(|(_, t, pong)| t.is_some() || *pong)
            .collect();
        for (id, kind, pong_late) in due {
            if !self.conns.contains_key(&id) {
                continue;
            }
            match kind {
                Some(TimerKind::Handshake) => {
                    self.handshake_timeout(id);
                    continue;
                }
                Some(TimerKind::PingIdle) => {
                    let waited = now - self.conns[&id].ping_sent_ms;
                    self.log_disconnect(id, &format!("Ping timed out in {} secs", secs3(waited)));
                    self.close_conn(id, "Ping timeout", CloseKind::Network);
                    continue;
                }
                Some(TimerKind::Ping) => {
                    // Dovecot's timeouts repeat: while a PONG is awaited this just re-arms.
                    if let Some(t) = self.conns.get_mut(&id).and_then(|c| c.to_ping.as_mut()) {
                        t.at_ms = now + t.len_ms;
                    }
                    self.ping(id);
                }
                None => {}
            }
            if pong_late && self.conns.contains_key(&id) {
                let waited = now - self.conns[&id].ping_sent_ms;
                self.log_disconnect(
                    id,
                    &format!(
                        "PONG reply not received in {} secs, although other input keeps coming",
                        secs3(waited)
                    ),
                );
                self.close_conn(id, "Pong timeout", CloseKind::Network);
            }
        }
    }

    /// `director_connection_init_timeout`: the handshake did not finish in time.
    fn handshake_timeout(&mut self, id: ConnId) {
        let c = &self.conns[&id];
        let (what, since) = if !c.connected {
            ("Connect timed out", c.created_ms)
        } else if !c.got_me {
            ("Handshaking ME timed out", c.created_ms)
        } else if !c.incoming {
            ("Sending handshake timed out", c.me_ms)
        } else {
            ("Handshaking DONE timed out", c.me_ms)
        };
        let (sent, name) = (c.stats.users_sent, self.conn_name(id));
        let waited = self.now_ms.saturating_sub(since);
        self.log_error(format!(
            "director({name}): {what} ({} secs, {sent} USERs sent in handshake)",
            secs3(waited)
        ));
        self.close_conn(id, "Handshake timeout", CloseKind::Network);
    }

    /// Dovecot's `director_connection_log_disconnect` (an error, or the CONNECT warning).
    fn log_disconnect(&mut self, id: ConnId, err: &str) {
        let name = self.conn_name(id);
        let text = if err.is_empty() {
            format!("director({name}): Director {name} disconnected: Connection closed")
        } else {
            format!("director({name}): Director {name} disconnected: Connection closed: {err}")
        };
        self.log_error(text);
    }

    /// PING a connection unless a PONG is pending: the idle wait replaces the interval
    /// timer, and the max wait starts.
    pub(super) fn ping(&mut self, id: ConnId) {
        let (now, idle, max) = (self.now_ms, self.ping_idle_ms, self.ping_max_ms);
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.ping_outstanding || !c.connected {
            return;
        }
        c.ping_outstanding = true;
        c.ping_sent_ms = now;
        c.stats.ping_sent(now);
        c.to_ping = Some(ConnTimer::new(TimerKind::PingIdle, idle, now));
        c.pong_at = Some(now + max);
        let ping = Command::Ping(Pulse::Stats {
            time: self.secs(),
            buffered: 0,
            extra: Vec::new(),
        });
        self.send(id, &ping);
    }

    /// PING: answer PONG, warn when it took long to arrive.
    pub(super) fn on_ping(&mut self, id: ConnId, pulse: &Pulse) {
        if let Pulse::Stats { time, buffered, .. } = pulse {
            let diff = self.secs() as i64 - *time as i64;
            if diff * 1000 + 500 > PINGPONG_WARN_MS as i64 {
                let name = self.conn_name(id);
                self.log(
                    LogLevel::Warning,
                    format!(
                        "director({name}): PING response took {diff} secs to receive \
                         (send buffer was {buffered} bytes)"
                    ),
                );
            }
        }
        let pong = Command::Pong(Pulse::Stats {
            time: self.secs(),
            buffered: 0,
            extra: Vec::new(),
        });
        self.send(id, &pong);
    }

    /// PONG: ignored unless a PING is outstanding; ends the waits, restarts the interval,
    /// and finishes a left verification (§4.3 step 6).
    pub(super) fn on_pong(&mut self, id: ConnId) {
        let now = self.now_ms;
        let (verifying, took) = match self.conns.get_mut(&id) {
            Some(c) if c.ping_outstanding => {
                c.ping_outstanding = false;
                c.pong_at = None;
                c.stats.pong_received(now);
                (std::mem::take(&mut c.verifying), now - c.ping_sent_ms)
            }
            _ => return,
        };
        if took > PINGPONG_WARN_MS {
            let name = self.conn_name(id);
            self.log(
                LogLevel::Warning,
                format!("director({name}): PONG response took {} secs", secs3(took)),
            );
        }
        if verifying && self.left == Some(id) {
            self.left_verified();
        }
        self.set_ping_timeout(id);
    }

    /// The remote side closed the connection.
    pub(super) fn on_eof(&mut self, id: ConnId) {
        if !self.conns.contains_key(&id) {
            return;
        }
        if self.conns[&id].connected {
            self.log_disconnect(id, "");
        }
        if let Some(c) = self.conns.remove(&id) {
            self.after_close(c, CloseKind::Network);
        }
    }

    /// The socket layer gave up on a connection (§9.3, §9.4). After a too long line it still
    /// writes (the QUIT), otherwise the socket is already gone.
    pub(super) fn on_failed(&mut self, id: ConnId, failure: ConnFailure) {
        if !self.conns.contains_key(&id) {
            return;
        }
        let connected = self.conns[&id].connected;
        let kind = match failure {
            ConnFailure::TooLongLine => {
                // Dovecot reports it through director_cmd_error() with no current command,
                // which prints exactly this (observed on 2.3.19.1).
                let name = self.conn_name(id);
                self.log_error(format!(
                    "director({name}): Command (null): Director sent us more than {} bytes \
                     (input: )",
                    director_parsers::framing::DIRECTOR_MAX_LINE
                ));
                // The socket layer stopped reading but still writes: QUIT goes out first.
                self.close_conn(id, "Too long input line", CloseKind::Protocol);
                return;
            }
            ConnFailure::OutputFull(n) => {
                self.log_disconnect(id, &format!("Output buffer full at {n}"));
                CloseKind::Write
            }
            ConnFailure::Io(text) => {
                if connected {
                    self.log_disconnect(id, &text);
                } else {
                    let name = self.conn_name(id);
                    self.log_error(format!("director({name}): {text}"));
                }
                CloseKind::Network
            }
        };
        if let Some(c) = self.conns.remove(&id) {
            self.after_close(c, kind);
        }
    }
}
