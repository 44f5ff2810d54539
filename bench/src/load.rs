//! The load client: login-process-like connections to `login/director`, each keeping a
//! window of pipelined `AUTH` requests in flight (what imap-login does, only faster).
//!
//! One thread per connection with blocking I/O: a handful of connections is all the figures
//! need, and threads keep the client's own CPU cost per request small and predictable.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::b64;

/// How long one read may block before the run is declared stuck.
const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Latency samples kept per run (the rest are counted, not timed).
const MAX_SAMPLES: usize = 4_000_000;

/// Which usernames the requests carry.
#[derive(Debug, Clone)]
pub enum Users {
    /// Random picks from `<prefix>0000000 ..` `size` names (known users after a warm-up).
    Pool {
        /// Name prefix.
        prefix: String,
        /// Pool size.
        size: u64,
    },
    /// `<prefix><start> ..`, each name once, in order: every request creates a user.
    Distinct {
        /// Name prefix.
        prefix: String,
        /// First index.
        start: u64,
    },
}

/// One load run.
#[derive(Debug, Clone)]
pub struct Load {
    /// The director's `login/director` socket.
    pub socket: PathBuf,
    /// Parallel connections.
    pub conns: usize,
    /// Requests in flight per connection.
    pub window: usize,
    /// Usernames.
    pub users: Users,
    /// Stop after this many requests ...
    pub max_requests: u64,
    /// ... or after this long, whichever comes first.
    pub max_time: Duration,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// `OK` replies.
    pub ok: u64,
    /// `FAIL` (or other non-OK result) replies.
    pub fail: u64,
    /// `OK` replies without `host=` (the director did not pick a backend).
    pub without_host: u64,
    /// Wall time from the first request to the last reply.
    pub elapsed: Duration,
    /// Sorted latencies in microseconds.
    lat_us: Vec<u32>,
}

impl LoadResult {
    /// Replies per second.
    pub fn rate(&self) -> f64 {
        (self.ok + self.fail) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// All replies.
    pub fn replies(&self) -> u64 {
        self.ok + self.fail
    }

    /// Latency quantile `q` (0..1) in milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        if self.lat_us.is_empty() {
            return 0.0;
        }
        let i = ((q * self.lat_us.len() as f64) as usize).min(self.lat_us.len() - 1);
        f64::from(self.lat_us[i]) / 1000.0
    }
}

/// Runs the load; bounded by `max_requests`, `max_time` and the interrupt flag.
pub fn run(load: &Load) -> io::Result<LoadResult> {
    let claimed = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(load.conns + 1));
    let start_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let mut handles = Vec::new();
    for i in 0..load.conns {
        let (load, claimed, barrier, start_at) = (
            load.clone(),
            claimed.clone(),
            barrier.clone(),
            start_at.clone(),
        );
        handles.push(
            thread::Builder::new()
                .name(format!("load-{i}"))
                .spawn(move || conn_worker(&load, i, &claimed, &barrier, &start_at))?,
        );
    }
    barrier.wait(); // every connection finished its handshake (or failed)
    let t0 = Instant::now();
    if let Ok(mut s) = start_at.lock() {
        *s = Some(t0);
    }
    barrier.wait(); // go
    let mut total = LoadResult::default();
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(r)) => {
                total.ok += r.ok;
                total.fail += r.fail;
                total.without_host += r.without_host;
                total.lat_us.extend(r.lat_us);
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert(io::Error::other("load thread panicked"));
            }
        }
    }
    total.elapsed = t0.elapsed();
    if let Some(e) = first_err {
        return Err(e);
    }
    total.lat_us.sort_unstable();
    Ok(total)
}

struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    have: usize,
}

fn conn_worker(
    load: &Load,
    index: usize,
    claimed: &AtomicU64,
    barrier: &Barrier,
    start_at: &std::sync::Mutex<Option<Instant>>,
) -> io::Result<LoadResult> {
    let conn = handshake(load, index);
    barrier.wait();
    barrier.wait();
    let mut conn = conn?;
    let t0 = start_at
        .lock()
        .ok()
        .and_then(|s| *s)
        .unwrap_or_else(Instant::now);
    let deadline = t0 + load.max_time;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (index as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let mut res = LoadResult::default();
    let sample_cap = MAX_SAMPLES / load.conns.max(1);
    let mut inflight: HashMap<u32, Instant> = HashMap::with_capacity(load.window * 2);
    let mut next_id = 1u32;
    let mut out = Vec::with_capacity(load.window * 160);
    let mut stopped = false;
    loop {
        while !stopped && inflight.len() < load.window {
            let now = Instant::now();
            if now >= deadline || crate::interrupted() {
                stopped = true;
                break;
            }
            let n = claimed.fetch_add(1, Ordering::Relaxed);
            if n >= load.max_requests {
                stopped = true;
                break;
            }
            let user = match &load.users {
                Users::Pool { prefix, size } => {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    format!("{prefix}{:07}", rng % size.max(&1))
                }
                Users::Distinct { prefix, start } => format!("{prefix}{:07}", start + n),
            };
            push_request(&mut out, next_id, &user);
            inflight.insert(next_id, now);
            next_id = next_id.wrapping_add(1).max(1);
        }
        if !out.is_empty() {
            conn.stream.write_all(&out)?;
            out.clear();
        }
        if inflight.is_empty() {
            break;
        }
        read_replies(&mut conn, &mut inflight, &mut res, sample_cap)?;
    }
    Ok(res)
}

fn handshake(load: &Load, index: usize) -> io::Result<Conn> {
    let stream = UnixStream::connect(&load.socket).map_err(|e| {
        io::Error::new(e.kind(), format!("connect({}): {e}", load.socket.display()))
    })?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut conn = Conn {
        stream,
        buf: vec![0u8; 256 * 1024],
        have: 0,
    };
    let cpid = std::process::id() as usize * 100 + index;
    conn.stream
        .write_all(format!("VERSION\t1\t2\nCPID\t{cpid}\n").as_bytes())?;
    loop {
        let n = conn.stream.read(&mut conn.buf[conn.have..])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "director closed the connection during the handshake",
            ));
        }
        conn.have += n;
        let data = &conn.buf[..conn.have];
        if let Some(p) = find(data, b"DONE\n") {
            if p == 0 || data[p - 1] == b'\n' {
                let rest = p + 5;
                conn.buf.copy_within(rest..conn.have, 0);
                conn.have -= rest;
                return Ok(conn);
            }
        }
        if conn.have == conn.buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "handshake too long",
            ));
        }
    }
}

fn push_request(out: &mut Vec<u8>, id: u32, user: &str) {
    let mut plain = Vec::with_capacity(user.len() + 8);
    plain.push(0);
    plain.extend_from_slice(user.as_bytes());
    plain.push(0);
    plain.extend_from_slice(b"pass");
    let _ = write!(
        out,
        "AUTH\t{id}\tPLAIN\tservice=imap\tsecured\tlip=127.0.0.2\trip=127.0.0.1\tlport=143\trport={}\tresp=",
        1024 + id % 60000
    );
    b64::encode_into(&plain, out);
    out.push(b'\n');
}

fn read_replies(
    conn: &mut Conn,
    inflight: &mut HashMap<u32, Instant>,
    res: &mut LoadResult,
    sample_cap: usize,
) -> io::Result<()> {
    if conn.have == conn.buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "reply line too long",
        ));
    }
    let n = conn.stream.read(&mut conn.buf[conn.have..]).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "read from login/director: {e} ({} in flight)",
                inflight.len()
            ),
        )
    })?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "director closed the connection with {} requests in flight",
                inflight.len()
            ),
        ));
    }
    conn.have += n;
    let now = Instant::now();
    let mut start = 0;
    while let Some(pos) = conn.buf[start..conn.have].iter().position(|&b| b == b'\n') {
        let line = &conn.buf[start..start + pos];
        start += pos + 1;
        let mut f = line.split(|&b| b == b'\t');
        let kind = f.next().unwrap_or_default();
        let id = f
            .next()
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse::<u32>().ok());
        let Some(sent) = id.and_then(|id| inflight.remove(&id)) else {
            continue;
        };
        if kind == b"OK" {
            res.ok += 1;
            if !f.any(|x| x.starts_with(b"host=")) {
                res.without_host += 1;
            }
        } else {
            res.fail += 1;
        }
        if res.lat_us.len() < sample_cap {
            let us = now.duration_since(sent).as_micros();
            res.lat_us.push(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }
    conn.buf.copy_within(start..conn.have, 0);
    conn.have -= start;
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_auth::FakeAuth;

    #[test]
    fn pipelined_load_against_the_fake_auth_server_directly() {
        let dir = std::env::temp_dir().join(format!("load-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("auth-login");
        let srv = FakeAuth::start(&path).unwrap();
        let l = Load {
            socket: path.clone(),
            conns: 3,
            window: 16,
            users: Users::Distinct {
                prefix: "t".into(),
                start: 5,
            },
            max_requests: 10_000,
            max_time: Duration::from_secs(30),
        };
        let r = run(&l).unwrap();
        assert_eq!((r.ok, r.fail), (10_000, 0));
        // Straight from auth, so no director added host=.
        assert_eq!(r.without_host, 10_000);
        assert_eq!(srv.answered(), 10_000);
        assert!(r.latency_ms(0.5) <= r.latency_ms(0.99));
        let timed = Load {
            users: Users::Pool {
                prefix: "t".into(),
                size: 10,
            },
            max_requests: u64::MAX,
            max_time: Duration::from_millis(200),
            ..l
        };
        let t0 = Instant::now();
        let r = run(&timed).unwrap();
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert!(r.ok > 0 && r.fail == 0);
        drop(srv);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn request_lines_carry_the_user_in_a_plain_response() {
        let mut out = Vec::new();
        push_request(&mut out, 7, "cap01");
        assert_eq!(
            out,
            b"AUTH\t7\tPLAIN\tservice=imap\tsecured\tlip=127.0.0.2\trip=127.0.0.1\tlport=143\trport=1031\tresp=AGNhcDAxAHBhc3M=\n"
        );
    }
}
