//! The [`Ring`] facade: state, event dispatch and the output helpers every layer uses.

use super::conn::{Conn, ConnRole};
use super::peer::{DirAddr, Peers};
use super::{ConnId, LogLevel, RingEffect, RingEvent};
use crate::state::Directory;
use director_parsers::ring::{command_name, Command, Context, DIRECTOR_VERSION_MINOR};
use director_parsers::ParseErrorKind;
use std::collections::BTreeMap;

/// How a connection ended, for the failure marks of §9.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CloseKind {
    /// EOF, error, timeout: network failure mark if short-lived.
    Network,
    /// Invalid data from the peer: 60 s ban.
    Protocol,
    /// A handler refused the peer without a ban (QUIT, wrong ME, banned peer): no mark,
    /// "Reconnecting after error".
    Error,
    /// Writing failed or the output buffer filled up: no mark.
    Write,
    /// Our own decision (replaced, CONNECT, removed): no mark.
    Deliberate,
}

/// One director's ring state machine. See the module doc of [`crate::ring`].
#[derive(Debug)]
pub struct Ring {
    pub(super) peers: Peers,
    pub(super) dir: Directory,
    pub(super) conns: BTreeMap<ConnId, Conn>,
    pub(super) left: Option<ConnId>,
    pub(super) right: Option<ConnId>,
    pub(super) sync_seq: u32,
    pub(super) handshaked: bool,
    pub(super) synced: bool,
    pub(super) ring_min_version: u32,
    pub(super) ring_change_counter: u64,
    pub(super) last_sync_sent_ring_change_counter: u64,
    pub(super) last_sync_resend_sec: u64,
    pub(super) self_last_seq: u32,
    pub(super) now_ms: u64,
    pub(super) out: Vec<RingEffect>,
    pub(super) resync_pending: bool,
    pub(super) in_batch: bool,
    /// §6.5 resend timer while unsynced (ms).
    pub(super) sync_timer_at: Option<u64>,
    /// Alone-grace retries (1 s) or reconnect to the preferred right (30 s), in ms.
    pub(super) reconnect_at: Option<u64>,
    /// End of the once-per-process 20 s "alone" grace (s); `None` until first needed.
    pub(super) alone_grace_until: Option<u64>,
    pub(super) next_outgoing: u64,
    pub(super) armed: Option<u64>,
    pub(super) reported_synced: bool,
    pub(super) shutting_down: bool,
    /// "We're joining a ring - replace all hosts" already happened in this process.
    pub(super) hosts_replaced: bool,
    /// Moving users' deadlines (ms): 30 s timeout or the kick delay.
    pub(super) move_deadlines: BTreeMap<(u32, u32), u64>,
    /// `director_ping_idle_timeout` (ms).
    pub(super) ping_idle_ms: u64,
    /// `director_ping_max_timeout` (ms).
    pub(super) ping_max_ms: u64,
    /// `director_user_kick_delay` (ms).
    pub(super) kick_delay_ms: u64,
    /// `director_flush_socket` is set: moves we start run it ([`RingEffect::Flush`]).
    pub(super) flush_configured: bool,
    /// When our last SYNC round started, and how long the last one that synced took (ms).
    pub(super) sync_started_ms: u64,
    pub(super) last_sync_ms: u32,
    /// Connections created so far (numbers them for [`Ring::connections`]).
    pub(super) conns_created: u64,
    /// See [`Ring::state_changes`].
    pub(super) state_changes: u64,
}

impl Ring {
    /// A director `me` whose `director_servers` are `servers` (self may be listed or not),
    /// with its configured hosts and users in `dir`.
    pub fn new(me: DirAddr, servers: &[DirAddr], dir: Directory) -> Self {
        Ring {
            peers: Peers::new(me, servers),
            dir,
            conns: BTreeMap::new(),
            left: None,
            right: None,
            sync_seq: 0,
            handshaked: false,
            synced: false,
            ring_min_version: DIRECTOR_VERSION_MINOR,
            ring_change_counter: 0,
            last_sync_sent_ring_change_counter: 0,
            last_sync_resend_sec: 0,
            self_last_seq: 0,
            now_ms: 0,
            out: Vec::new(),
            resync_pending: false,
            in_batch: false,
            sync_timer_at: None,
            reconnect_at: None,
            alone_grace_until: None,
            next_outgoing: 0,
            armed: None,
            reported_synced: false,
            shutting_down: false,
            hosts_replaced: false,
            move_deadlines: BTreeMap::new(),
            ping_idle_ms: 30_000,
            ping_max_ms: 60_000,
            kick_delay_ms: super::moves::KICK_DELAY_MS,
            flush_configured: false,
            sync_started_ms: 0,
            last_sync_ms: 0,
            conns_created: 0,
            state_changes: 0,
        }
    }

    /// `director_user_kick_delay` and whether a flush program is configured.
    pub fn with_move_settings(mut self, kick_delay_ms: u64, flush_configured: bool) -> Self {
        self.kick_delay_ms = kick_delay_ms;
        self.flush_configured = flush_configured;
        self
    }

    /// A ring whose [`Directory`] the caller keeps and lends to every [`Ring::handle_in`]
    /// (the daemon's state owner): one directory, never copied.
    pub fn new_lent(me: DirAddr, servers: &[DirAddr]) -> Self {
        Ring::new(me, servers, Directory::new(Vec::new(), 0))
    }

    /// [`Ring::handle`] on the caller's directory: it is swapped in for the event and back
    /// out afterwards (O(1)), so the caller's reads and writes between events are the ring's.
    pub fn handle_in(
        &mut self,
        dir: &mut Directory,
        event: RingEvent,
        now_ms: u64,
    ) -> Vec<RingEffect> {
        std::mem::swap(&mut self.dir, dir);
        let out = self.handle(event, now_ms);
        std::mem::swap(&mut self.dir, dir);
        out
    }

    /// Our own ring address.
    pub fn me(&self) -> DirAddr {
        self.peers.me
    }

    /// The hosts and users (of a ring built with [`Ring::new`]; a lent ring's is empty).
    pub fn directory(&self) -> &Directory {
        &self.dir
    }

    /// Counts changes that may let a waiting login through (hosts or the ring changed, a
    /// weak user became normal); a moving user's end shows in the directory's move count.
    pub fn state_changes(&self) -> u64 {
        self.state_changes
    }

    /// The first ring sync completed (or we decided we are alone).
    pub fn is_handshaked(&self) -> bool {
        self.handshaked
    }

    /// The ring is synced.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// Our current SYNC round number.
    pub fn sync_seq(&self) -> u32 {
        self.sync_seq
    }

    /// Lowest minor version in the ring, learnt from our last returned SYNC.
    pub fn ring_min_version(&self) -> u32 {
        self.ring_min_version
    }

    /// [`Ring::handle_in`] of one input line borrowed from the connection's read buffer:
    /// the same as a [`RingEvent::Line`] without copying the line into an event.
    pub fn handle_line_in(
        &mut self,
        dir: &mut Directory,
        conn: ConnId,
        line: &[u8],
        now_ms: u64,
    ) -> Vec<RingEffect> {
        std::mem::swap(&mut self.dir, dir);
        self.now_ms = self.now_ms.max(now_ms);
        self.in_batch = true;
        self.on_line(conn, line);
        let out = self.finish_event();
        std::mem::swap(&mut self.dir, dir);
        out
    }

    /// Process one event at `now_ms` (milliseconds on the daemon's clock; must not go back).
    pub fn handle(&mut self, event: RingEvent, now_ms: u64) -> Vec<RingEffect> {
        self.now_ms = self.now_ms.max(now_ms);
        self.in_batch = true;
        match event {
            RingEvent::Start => self.connect_procedure("Initial connection"),
            RingEvent::Connected {
                conn,
                incoming,
                peer_ip,
            } => self.on_connected(conn, incoming, peer_ip),
            RingEvent::Line { conn, bytes } => self.on_line(conn, &bytes),
            RingEvent::Closed { conn } => self.on_eof(conn),
            RingEvent::Failed { conn, failure } => self.on_failed(conn, failure),
            RingEvent::Writable { conn } => self.send_users_chunk(conn),
            RingEvent::Timer => self.on_timer(),
            RingEvent::Admin(cmd) => {
                let r = self.admin(cmd);
                self.out.push(RingEffect::AdminDone(r));
            }
            RingEvent::Login { tag, hash } => {
                let routing = self.login(&tag, hash);
                self.out.push(RingEffect::Routed { hash, routing });
            }
            RingEvent::Refresh { hash } => self.notify_refresh(hash),
            RingEvent::KickDone { hash } => self.kick_done(hash),
            RingEvent::FlushDone { key, success } => self.flush_done(key, success),
            RingEvent::Shutdown => self.shutdown(),
        }
        self.finish_event()
    }

    /// What every event ends with: a deferred resync, the synced report, the timer.
    fn finish_event(&mut self) -> Vec<RingEffect> {
        self.in_batch = false;
        if self.resync_pending {
            self.resync_pending = false;
            self.resync_now();
        }
        if self.synced != self.reported_synced {
            self.reported_synced = self.synced;
            self.out.push(RingEffect::SyncedChanged(self.synced));
        }
        self.rearm();
        std::mem::take(&mut self.out)
    }

    /// Current time in whole seconds.
    pub(super) fn secs(&self) -> u64 {
        self.now_ms / 1000
    }

    pub(super) fn log(&mut self, level: LogLevel, text: String) {
        self.out.push(RingEffect::Log { level, text });
    }

    pub(super) fn log_error(&mut self, text: String) {
        self.log(LogLevel::Error, text);
    }

    /// Dovecot's connection name: `ip:port/left|right|out`, and `ip/in` for an accepted
    /// connection until it becomes the left (the name is only set at accept and at
    /// assignment).
    pub(super) fn conn_name(&self, id: ConnId) -> String {
        let Some(c) = self.conns.get(&id) else {
            return format!("{id:?}");
        };
        let pending_in = c.incoming && c.role == ConnRole::Pending;
        let who = match (c.peer, c.remote_ip) {
            (_, Some(ip)) if pending_in => director_parsers::ip::ip_to_string(&ip),
            (Some(p), _) => p.to_string(),
            (None, Some(ip)) => director_parsers::ip::ip_to_string(&ip),
            _ => "?".into(),
        };
        let dir = match (c.role, c.incoming) {
            (ConnRole::Left, _) => "left",
            (ConnRole::Right, _) => "right",
            (ConnRole::Pending, true) => "in",
            (ConnRole::Pending, false) => "out",
        };
        format!("{who}/{dir}")
    }

    /// Send one command on a connection (if it is up).
    pub(super) fn send(&mut self, id: ConnId, cmd: &Command) {
        if self.conns.get(&id).is_some_and(|c| c.connected) {
            self.out.push(RingEffect::Send {
                conn: id,
                line: cmd.to_line(),
            });
        }
    }

    /// §5.1: send on every live connection whose peer is not `except` and whose minor is high
    /// enough for the line.
    pub(super) fn broadcast(&mut self, cmd: &Command, except: Option<DirAddr>) {
        let line = cmd.to_line();
        let min = cmd.min_minor();
        let ids: Vec<ConnId> = self
            .conns
            .values()
            .filter(|c| c.connected && c.close_at.is_none())
            .filter(|c| except.is_none() || c.peer != except)
            .filter(|c| c.minor0() >= min)
            .map(|c| c.id)
            .collect();
        for id in ids {
            self.out.push(RingEffect::Send {
                conn: id,
                line: line.clone(),
            });
        }
    }

    /// The next origin seq for a command we originate (§5.2).
    pub(super) fn next_origin(&mut self) -> director_parsers::ring::Origin {
        self.self_last_seq += 1;
        director_parsers::ring::Origin {
            ip: self.peers.me.ip,
            port: self.peers.me.port,
            seq: self.self_last_seq,
        }
    }

    /// Close a connection we decided to drop, sending QUIT first when the peer knows it.
    pub(super) fn close_conn(&mut self, id: ConnId, reason: &str, kind: CloseKind) {
        let Some(c) = self.conns.get(&id) else {
            return;
        };
        if c.connected && c.minor0() >= 3 && !reason.is_empty() {
            let quit = Command::Quit {
                reason: Some(reason.as_bytes().to_vec()),
            };
            self.send(id, &quit);
        }
        let c = self.conns.remove(&id).expect("checked above");
        self.out.push(RingEffect::Close {
            conn: id,
            reason: reason.to_string(),
        });
        self.after_close(c, kind);
    }

    /// A protocol error on `id`: log Dovecot's text, ban the peer, close.
    pub(super) fn protocol_error(&mut self, id: ConnId, cmd: &str, reason: &str, line: &[u8]) {
        let name = self.conn_name(id);
        self.log_error(format!(
            "director({name}): Command {cmd}: {reason} (input: {})",
            String::from_utf8_lossy(line)
        ));
        let text = format!("Invalid input: {cmd}");
        self.close_conn(id, &text, CloseKind::Protocol);
    }

    fn on_connected(&mut self, id: ConnId, incoming: bool, peer_ip: std::net::IpAddr) {
        if incoming {
            let listed = self
                .peers
                .list
                .iter()
                .any(|p| p.addr.ip == peer_ip && !p.removed);
            if !listed {
                self.log(
                    LogLevel::Info,
                    format!(
                        "Connection from {}: Server not listed in director_servers, dropping",
                        director_parsers::ip::ip_to_string(&peer_ip)
                    ),
                );
                self.out.push(RingEffect::Close {
                    conn: id,
                    reason: String::new(),
                });
                return;
            }
            let mut c = Conn::new(id, true, None, self.now_ms);
            c.remote_ip = Some(peer_ip);
            self.conns.insert(id, c);
            self.conn_created(id);
            self.log(
                LogLevel::Info,
                format!(
                    "Incoming connection from director {}/in",
                    director_parsers::ip::ip_to_string(&peer_ip)
                ),
            );
            self.set_handshake_timer(id, super::liveness::ME_TIMEOUT_MS);
            self.send_greeting(id, true);
        } else {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            c.connected = true;
            c.created_ms = self.now_ms;
            self.set_handshake_timer(id, super::liveness::ME_TIMEOUT_MS);
            self.send_greeting(id, false);
        }
    }

    /// One input line; afterwards, as any input does, it restarts the connection's
    /// `to_ping` timer. After we sent CONNECT, input is discarded unread.
    fn on_line(&mut self, id: ConnId, line: &[u8]) {
        if !self.conns.get(&id).is_some_and(|c| c.close_at.is_none()) {
            return;
        }
        self.handle_line(id, line);
        self.input_seen(id);
    }

    fn handle_line(&mut self, id: ConnId, line: &[u8]) {
        let Some(c) = self.conns.get(&id) else {
            return;
        };
        let ctx = if c.in_host_list {
            Context::HostList
        } else if c.incoming && !c.done && c.minor0() < 9 {
            Context::LegacyHandshakeUsers
        } else {
            Context::Ring
        };
        let (got_version, got_me, done, in_host_list) =
            (c.minor.is_some(), c.got_me, c.done, c.in_host_list);
        // Borrowed in the common case (an ASCII name): no allocation per line.
        let raw_name = command_name(line);
        let name = String::from_utf8_lossy(&raw_name);
        let cmd = match Command::parse_in(line, ctx) {
            Ok(cmd) => cmd,
            Err(e) => {
                let reason = match e.kind {
                    ParseErrorKind::UnknownCommand => format!("Unknown command {name}"),
                    _ if !got_version => "Incompatible protocol".to_string(),
                    _ => "Invalid parameters".to_string(),
                };
                self.protocol_error(id, &name, &reason, line);
                return;
            }
        };
        if !got_version {
            match cmd {
                Command::Version { minor, .. } => self.on_version(id, minor),
                _ => self.protocol_error(id, &name, "Incompatible protocol", line),
            }
            return;
        }
        if !got_me {
            match cmd {
                Command::Me {
                    ip,
                    port,
                    timestamp,
                    ..
                } => self.on_me(id, DirAddr::new(ip, port), timestamp),
                _ => self.protocol_error(id, &name, "Expecting ME command first", line),
            }
            return;
        }
        if in_host_list {
            match cmd {
                Command::HandshakeHost(h) => self.on_handshake_host(id, h),
                Command::HostHandEnd { .. } => {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.in_host_list = false;
                        c.ignore_hosts = false;
                    }
                }
                _ => self.protocol_error(id, &name, "Unexpected command during host list", line),
            }
            return;
        }
        let handshake_only = matches!(
            cmd,
            Command::Version { .. }
                | Command::Me { .. }
                | Command::HostHandStart { .. }
                | Command::HostHandEnd { .. }
                | Command::HandshakeUser(_)
                | Command::LegacyHandshakeUser(_)
                | Command::Options { .. }
                | Command::Done { .. }
        );
        if handshake_only && done {
            self.protocol_error(id, &name, &format!("Unknown command {name}"), line);
            return;
        }
        self.dispatch(id, cmd, &name, line);
    }

    fn dispatch(&mut self, id: ConnId, cmd: Command, name: &str, line: &[u8]) {
        let incoming = self.conns.get(&id).is_some_and(|c| c.incoming);
        match cmd {
            Command::Version { .. } | Command::Me { .. } => {
                let why = if matches!(cmd, Command::Me { .. }) {
                    "Duplicate ME"
                } else {
                    "Duplicate VERSION"
                };
                self.protocol_error(id, name, why, line);
            }
            Command::HostHandStart { handshaked, .. } => {
                if !incoming {
                    self.protocol_error(
                        id,
                        name,
                        "Host list is only for incoming connections",
                        line,
                    );
                } else {
                    self.on_host_hand_start(id, handshaked);
                }
            }
            Command::HandshakeUser(u) | Command::LegacyHandshakeUser(u) => {
                if !incoming {
                    self.protocol_error(id, name, &format!("Unknown command {name}"), line);
                } else {
                    self.on_handshake_user(id, u);
                }
            }
            Command::Options { options } => {
                let ok = options
                    .iter()
                    .any(|o| o == director_parsers::ring::DIRECTOR_OPT_CONSISTENT_HASHING);
                if !ok {
                    self.log_error(
                        "director_consistent_hashing settings differ between directors. \
                         Set director_consistent_hashing=yes on all directors"
                            .into(),
                    );
                    self.close_conn(id, "Invalid input: OPTIONS", CloseKind::Error);
                }
            }
            Command::Done { .. } => self.on_done(id),
            Command::Director { ip, port, .. } => self.on_director(id, DirAddr::new(ip, port)),
            Command::DirectorRemove { ip, port, .. } => {
                self.on_director_remove(Some(id), DirAddr::new(ip, port));
            }
            Command::HandshakeHost(_) => unreachable!("only parsed inside a host list"),
            Command::HostHandEnd { .. } => {
                self.protocol_error(id, name, "Unexpected HOST-HAND-END", line)
            }
            Command::Host { origin, host } => self.on_ring_host(id, origin, host),
            Command::HostRemove { origin, ip } => self.on_host_remove(id, origin, ip),
            Command::HostFlush { origin, ip } => self.on_host_flush(id, origin, ip),
            Command::User {
                hash,
                ip,
                timestamp,
                ..
            } => self.on_user(id, hash, ip, timestamp),
            Command::UserWeak { origin, hash, ip } => self.on_user_weak(id, origin, hash, ip),
            Command::UserMove { origin, hash, ip } => self.on_user_move(id, origin, hash, ip),
            Command::UserKilled { hash } => self.on_user_killed(hash),
            Command::UserKilledEverywhere { origin, hash } => {
                self.on_user_killed_everywhere(id, origin, hash)
            }
            Command::UserKick { origin, username } => self.on_user_kick(id, origin, username),
            Command::UserKickAlt {
                origin,
                field,
                value,
            } => self.on_user_kick_alt(id, origin, field, value),
            Command::UserKickHash {
                origin,
                hash,
                except_ip,
            } => self.on_user_kick_hash(id, origin, hash, except_ip),
            Command::Sync(s) => self.on_sync(id, s),
            Command::Connect { ip, port } => self.on_connect_cmd(id, DirAddr::new(ip, port)),
            Command::Ping(p) => self.on_ping(id, &p),
            Command::Pong(_) => self.on_pong(id),
            Command::Quit { reason } => {
                let text = reason
                    .map(|r| String::from_utf8_lossy(&Command::quit_reason_text(&r)).into_owned())
                    .unwrap_or_default();
                let n = self.conn_name(id);
                self.log(
                    LogLevel::Warning,
                    format!("Director {n} disconnected us with reason: {text}"),
                );
                // Real directors answer with their own QUIT carrying this reason (captured
                // in lab/transcripts/ring-director-leaves.txt).
                self.close_conn(id, "Invalid input: QUIT", CloseKind::Error);
            }
        }
    }

    fn shutdown(&mut self) {
        self.shutting_down = true;
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.close_conn(id, "Shutting down", CloseKind::Deliberate);
        }
    }
}
