//! Kicks, moves and flushes across a ring: two directors in a ring (127.x addresses), each
//! serving its own real Dovecot 2.3 `imap-login` proxy, every command issued against
//! director A while sessions are held open through proxy B (and A). Run with two real
//! directors (reference) and with two of our `directord` (ours), same backends and settings;
//! ours must do what the reference does.
//!
//! 1. `doveadm director kick` on A closes the user's sessions on both proxies;
//!    `directorctl kick` on A closes one held through B; `kick -f user_foo <alt>` on A closes
//!    one held through B (ring `USER-KICK`, `USER-KICK-ALT`); a bystander on B stays open.
//! 2. `doveadm move` on A (and `directorctl move` back) closes mover's session held through
//!    B; the next logins through B and A land on the new backend, and `status` on A and B
//!    agree (ring `USER-MOVE`, the `USER-KILLED` round).
//! 3. `down H` then `flush --max-parallel 3 H` on A (HOST-RESET-USERS): exactly the users on
//!    H are disconnected, on both proxies, in waves of at most 3; then `map H` lists nobody on
//!    A and B. `flush -F G` on A forgets G's users on A and B and leaves their sessions open.
//! 4. The flush program (`director_flush_socket`, answering `-`) runs only on A, the director
//!    that started the moves, with the stand-alone request bytes; B's gets nothing.
//! 5. `flush -F all` on A forgets every host's users on A and B; sessions stay open.
//! 6. With every host down, `flush G` on A kicks the users instead (only the sessions held
//!    through A: the real ring's forced kill is local) and G's users are forgotten on both.
//!
//! Both directors' `DIRECTOR-LIST` (once synced) must also look like the real ones.

use std::process::Output;
use std::time::{Duration, Instant};

use compat_tests::login_lab::flush_capture::FlushCapture;
use compat_tests::login_lab::ring_pair::RingPair;
use compat_tests::login_lab::session::{HeldSession, Watched};
use compat_tests::login_lab::tuned::{TunedProxy, Tuning};
use compat_tests::login_lab::{start_backends, Backend, ProxyKind, PASSWORD};
use compat_tests::ours::require_our_binary;
use compat_tests::require_dovecot;

/// How long a kick may take to reach the sessions (also over the ring).
const KICK_WAIT: Duration = Duration::from_secs(3);
/// Bound on the ring's first sync.
const SYNC_WAIT: Duration = Duration::from_secs(40);
/// `director_user_kick_delay`.
const KICK_DELAY_SECS: u64 = 2;
/// `--max-parallel` of the flush.
const MAX_PARALLEL: usize = 3;
/// Users of the flush step.
const FLUSH_USERS: usize = 14;
/// Closures closer together than this belong to one wave.
const WAVE_GAP: Duration = Duration::from_millis(800);
/// Where the flush program listens, relative to `base_dir`.
const FLUSH_SOCKET: &str = "flush-capture";

/// One command and the sessions it closed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    command: String,
    exit: Option<i32>,
    /// `(user, proxy)` of the closed sessions.
    closed: Vec<(String, char)>,
}

/// What one ring did.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    /// `DIRECTOR-LIST` of A and of B once synced, normalized by
    /// [`RingPair::director_list`].
    lists: Vec<Vec<Vec<String>>>,
    kicks: Vec<Step>,
    bystander_alive: bool,
    moves: Vec<Step>,
    /// Backends of the next logins of mover after each move: through B, through A.
    next_logins: Vec<(String, String)>,
    /// `Current:` of `status mover` on A and B after each move.
    status: Vec<(String, String)>,
    /// Moves: the backends mover went from and to.
    move_hosts: Vec<(String, String)>,
    flushed_host: String,
    on_flushed: Vec<String>,
    flush_closed: Vec<String>,
    waves: Vec<usize>,
    /// `map` rows on (A, B): flushed host after the flush, other host after `flush -F`.
    map_after: ((usize, usize), (usize, usize)),
    other_alive: (usize, usize),
    /// `flush -F all` on A (HOST-FLUSH for every host): users of the held sessions listed
    /// on (A, B) before and after, and the sessions still answering.
    flush_all: ((usize, usize), (usize, usize), usize),
    /// Every host down, then `flush G` on A: the users have nowhere to go and are kicked
    /// (Dovecot's forced kill) and G flushed: closed sessions `(user, proxy)`, and the
    /// users listed on G on (A, B) afterwards.
    no_host: (Vec<(String, char)>, (usize, usize)),
    /// Flush program requests seen by A and by B.
    flush_a: Vec<String>,
    flush_b: Vec<String>,
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command and returns which of `open` (tagged with their proxy) it closed.
fn step(
    open: &mut Vec<(char, HeldSession)>,
    label: &str,
    within: Duration,
    run: impl FnOnce() -> Output,
) -> (Step, Vec<(Instant, String)>) {
    // Watching starts first: HOST-RESET-USERS answers only after its last wave started.
    let watchers: Vec<_> = open
        .drain(..)
        .map(|(p, s)| (p, s.spawn_watch(within)))
        .collect();
    let out = run();
    let mut closed = Vec::new();
    let mut times = Vec::new();
    for (p, w) in watchers {
        match w.join() {
            Ok(Watched::Open(s)) => open.push((p, s)),
            Ok(Watched::Closed { user, at, .. }) => {
                times.push((at, user.clone()));
                closed.push((user, p));
            }
            Ok(Watched::Failed(e)) => closed.push((format!("(failed: {e})"), p)),
            Err(_) => closed.push(("(watcher panicked)".into(), p)),
        }
    }
    closed.sort();
    let s = Step {
        command: label.to_string(),
        exit: out.status.code(),
        closed,
    };
    if s.exit != Some(0) {
        println!("{label}: {}", text(&out));
    }
    (s, times)
}

fn hold(p: &TunedProxy, tag: char, user: &str) -> Result<(char, HeldSession), String> {
    HeldSession::open(p.ip(), user, PASSWORD)
        .map(|s| (tag, s))
        .map_err(|e| format!("cannot hold {user} via {tag}: {e}"))
}

fn current(p: &TunedProxy, backends: &[Backend], user: &str) -> String {
    let out = p.doveadm(&["status", user]);
    let ip = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Current: "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("(none)")
        .to_string();
    name_of(backends, &ip)
}

fn name_of(backends: &[Backend], ip: &str) -> String {
    backends
        .iter()
        .find(|b| b.ip().to_string() == ip)
        .map(|b| b.name.clone())
        .unwrap_or_else(|| format!("({ip})"))
}

fn ip_of(backends: &[Backend], name: &str) -> String {
    backends
        .iter()
        .find(|b| b.name == name)
        .map(|b| b.ip().to_string())
        .unwrap_or_default()
}

/// Data rows of `doveadm director map -f <users file> <ip>`.
fn map_rows(p: &TunedProxy, users_file: &str, ip: &str) -> usize {
    let out = p.doveadm(&["map", "-f", users_file, ip]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|h| h.parse::<u32>().is_ok())
        })
        .count()
}

fn waves(mut closed: Vec<(Instant, String)>) -> Vec<usize> {
    closed.sort();
    let mut waves = Vec::new();
    let mut last: Option<Instant> = None;
    for (at, _) in &closed {
        match last {
            Some(prev) if at.duration_since(prev) < WAVE_GAP => {
                if let Some(n) = waves.last_mut() {
                    *n += 1;
                }
            }
            _ => waves.push(1),
        }
        last = Some(*at);
    }
    waves
}

fn scenario(ring: &RingPair, backends: &[Backend]) -> Result<Run, String> {
    let (a, b) = (&ring.a, &ring.b);
    ring.wait_synced(SYNC_WAIT).map_err(|e| e.to_string())?;
    let lists = vec![ring.director_list(a), ring.director_list(b)];
    let cap_a = FlushCapture::start(&a.path(FLUSH_SOCKET), b"-\n").map_err(|e| e.to_string())?;
    let cap_b = FlushCapture::start(&b.path(FLUSH_SOCKET), b"-\n").map_err(|e| e.to_string())?;

    // 1. Kicks on A, sessions on B (and A).
    let mut open = vec![
        hold(b, 'B', "kuser")?,
        hold(a, 'A', "kuser")?,
        hold(b, 'B', "kuser2")?,
        hold(b, 'B', "kalt")?,
        hold(b, 'B', "stay")?,
    ];
    let kicks = vec![
        step(&mut open, "doveadm kick kuser", KICK_WAIT, || {
            a.doveadm(&["kick", "kuser"])
        })
        .0,
        step(&mut open, "directorctl kick kuser2", KICK_WAIT, || {
            a.directorctl(&["kick", "kuser2"])
        })
        .0,
        step(
            &mut open,
            "doveadm kick -f user_foo kalt-alt",
            KICK_WAIT,
            || a.doveadm(&["kick", "-f", "user_foo", "kalt-alt"]),
        )
        .0,
    ];
    let bystander_alive = open.len() == 1 && open.iter_mut().all(|(_, s)| s.noop().is_ok());
    drop(open);

    // 2. Moves on A of a user held through B.
    let mut moves = Vec::new();
    let mut next_logins = Vec::new();
    let mut status = Vec::new();
    let mut move_hosts = Vec::new();
    let held = hold(b, 'B', "mover")?;
    let first = held.1.backend.clone();
    let second = backends
        .iter()
        .map(|x| x.name.clone())
        .find(|n| *n != first)
        .ok_or("one backend only")?;
    let mut open = vec![held];
    for (label, from, to) in [
        ("doveadm move", &first, &second),
        ("directorctl move", &second, &first),
    ] {
        let to_ip = ip_of(backends, to);
        let (s, _) = step(&mut open, label, KICK_WAIT, || {
            if label.starts_with("doveadm") {
                a.doveadm(&["move", "mover", &to_ip])
            } else {
                a.directorctl(&["move", "mover", &to_ip])
            }
        });
        moves.push(s);
        move_hosts.push((from.clone(), to.clone()));
        open.clear();
        // The logins wait while the move runs (kick delay after the failed flush).
        let via_b = hold(b, 'B', "mover")?;
        let via_a = hold(a, 'A', "mover")?;
        next_logins.push((via_b.1.backend.clone(), via_a.1.backend.clone()));
        status.push((current(a, backends, "mover"), current(b, backends, "mover")));
        open.push(via_b);
        drop(via_a);
    }
    drop(open);

    // 3. HOST-RESET-USERS on A, users held through both proxies.
    let users: Vec<String> = (1..=FLUSH_USERS).map(|i| format!("rflu{i:02}")).collect();
    let users_file = a.instance.root().join("ring-users.txt");
    std::fs::write(&users_file, users.join("\n") + "\n").map_err(|e| e.to_string())?;
    let users_file = users_file.display().to_string();
    let mut open = Vec::new();
    for (i, u) in users.iter().enumerate() {
        open.push(if i % 2 == 0 {
            hold(a, 'A', u)?
        } else {
            hold(b, 'B', u)?
        });
    }
    let count = |n: &str| open.iter().filter(|(_, s)| s.backend == n).count();
    let (flushed, other) = if count(&backends[0].name) >= count(&backends[1].name) {
        (&backends[0], &backends[1])
    } else {
        (&backends[1], &backends[0])
    };
    let (h_ip, g_ip) = (flushed.ip().to_string(), other.ip().to_string());
    let mut on_flushed: Vec<String> = open
        .iter()
        .filter(|(_, s)| s.backend == flushed.name)
        .map(|(_, s)| s.user.clone())
        .collect();
    on_flushed.sort();
    let down = a.doveadm(&["down", &h_ip]);
    if down.status.code() != Some(0) {
        return Err(format!("down: {}", text(&down)));
    }
    let within = Duration::from_secs(
        on_flushed.len().div_ceil(MAX_PARALLEL) as u64 * (KICK_DELAY_SECS + 1) + 4,
    );
    let max = MAX_PARALLEL.to_string();
    let (flush_step, times) = step(&mut open, "flush", within, || {
        a.doveadm(&["flush", "--max-parallel", &max, &h_ip])
    });
    if flush_step.exit != Some(0) {
        return Err(format!("flush: {flush_step:?}"));
    }
    let mut flush_closed: Vec<String> = flush_step.closed.iter().map(|(u, _)| u.clone()).collect();
    flush_closed.sort();
    // The last moves' kick delay, so that the map shows where everyone ended.
    std::thread::sleep(Duration::from_secs(KICK_DELAY_SECS + 1));
    let map_h = (
        map_rows(a, &users_file, &h_ip),
        map_rows(b, &users_file, &h_ip),
    );
    let forget = a.doveadm(&["flush", "-F", &g_ip]);
    if forget.status.code() != Some(0) {
        return Err(format!("flush -F: {}", text(&forget)));
    }
    let map_g = (
        map_rows(a, &users_file, &g_ip),
        map_rows(b, &users_file, &g_ip),
    );
    std::thread::sleep(Duration::from_secs(1));
    let mut alive = 0;
    for (_, s) in &mut open {
        alive += usize::from(s.noop().is_ok());
    }
    // 5. `flush -F all` on A: every host's users forgotten on A and B, sessions untouched.
    let fresh: Vec<String> = (1..=4).map(|i| format!("fall{i}")).collect();
    let fresh_file = a.instance.root().join("ring-fresh.txt");
    std::fs::write(&fresh_file, fresh.join("\n") + "\n").map_err(|e| e.to_string())?;
    let fresh_file = fresh_file.display().to_string();
    let mut fresh_open = Vec::new();
    for (i, u) in fresh.iter().enumerate() {
        fresh_open.push(if i % 2 == 0 {
            hold(a, 'A', u)?
        } else {
            hold(b, 'B', u)?
        });
    }
    let listed = |p: &TunedProxy| -> usize {
        backends
            .iter()
            .map(|x| map_rows(p, &fresh_file, &x.ip().to_string()))
            .sum()
    };
    let before = (listed(a), listed(b));
    let all = a.doveadm(&["flush", "-F", "all"]);
    if all.status.code() != Some(0) {
        return Err(format!("flush -F all: {}", text(&all)));
    }
    // The HOST-FLUSH lines travel to B; give them a moment.
    std::thread::sleep(Duration::from_millis(500));
    let after = (listed(a), listed(b));
    let mut fresh_alive = 0;
    for (_, s) in &mut fresh_open {
        fresh_alive += usize::from(s.noop().is_ok());
    }
    drop(fresh_open);

    // 6. No host left: `down G`, then `flush G` on A kicks instead of moving.
    let stuck: Vec<String> = (1..=4).map(|i| format!("fk{i}")).collect();
    let stuck_file = a.instance.root().join("ring-stuck.txt");
    std::fs::write(&stuck_file, stuck.join("\n") + "\n").map_err(|e| e.to_string())?;
    let stuck_file = stuck_file.display().to_string();
    let mut stuck_open = Vec::new();
    for (i, u) in stuck.iter().enumerate() {
        stuck_open.push(if i % 2 == 0 {
            hold(a, 'A', u)?
        } else {
            hold(b, 'B', u)?
        });
    }
    let down = a.doveadm(&["down", &g_ip]);
    if down.status.code() != Some(0) {
        return Err(format!("down G: {}", text(&down)));
    }
    let (no_host, _) = step(&mut stuck_open, "flush G, no host up", KICK_WAIT, || {
        a.doveadm(&["flush", &g_ip])
    });
    if no_host.exit != Some(0) {
        return Err(format!("flush G: {no_host:?}"));
    }
    std::thread::sleep(Duration::from_millis(500));
    let no_host_map = (
        map_rows(a, &stuck_file, &g_ip),
        map_rows(b, &stuck_file, &g_ip),
    );
    let strings = |v: Vec<Vec<u8>>| -> Vec<String> {
        v.iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    };
    Ok(Run {
        lists,
        kicks,
        bystander_alive,
        moves,
        next_logins,
        status,
        move_hosts,
        flushed_host: flushed.name.clone(),
        on_flushed,
        flush_closed,
        waves: waves(times),
        map_after: (map_h, map_g),
        other_alive: (alive, open.len()),
        flush_all: (before, after, fresh_alive),
        no_host: (no_host.closed, no_host_map),
        flush_a: strings(cap_a.requests()),
        flush_b: strings(cap_b.requests()),
    })
}

fn report(label: &str, run: &Result<Run, String>) {
    let r = match run {
        Ok(r) => r,
        Err(e) => return println!("{label}: failed: {e}"),
    };
    for (who, l) in ["A", "B"].iter().zip(&r.lists) {
        println!("{label}: DIRECTOR-LIST on {who}: {l:?}");
    }
    for s in &r.kicks {
        println!(
            "{label}: {:<36} exit {:?}, closed {:?}",
            s.command, s.exit, s.closed
        );
    }
    println!("{label}: bystander alive: {}", r.bystander_alive);
    for (((s, hosts), logins), st) in r
        .moves
        .iter()
        .zip(&r.move_hosts)
        .zip(&r.next_logins)
        .zip(&r.status)
    {
        println!(
            "{label}: {:<17} {hosts:?}: exit {:?}, closed {:?}, next logins via B/A {logins:?}, status on A/B {st:?}",
            s.command, s.exit, s.closed
        );
    }
    println!(
        "{label}: flush of {}: {} users on it, {} closed in waves {:?} (max parallel {MAX_PARALLEL}); map rows after on A/B {:?}; sessions alive after -F {:?}",
        r.flushed_host,
        r.on_flushed.len(),
        r.flush_closed.len(),
        r.waves,
        r.map_after,
        r.other_alive
    );
    println!(
        "{label}: flush -F all: users listed on A/B before {:?}, after {:?}; sessions alive {}",
        r.flush_all.0, r.flush_all.1, r.flush_all.2
    );
    println!(
        "{label}: every host down, flush G: closed {:?}, users listed on G on A/B {:?}",
        r.no_host.0, r.no_host.1
    );
    println!(
        "{label}: flush program requests: A {}, B {}",
        r.flush_a.len(),
        r.flush_b.len()
    );
}

#[test]
fn kicks_moves_and_flushes_issued_on_one_director_reach_sessions_of_the_other() {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    if require_our_binary("directord").is_none() || require_our_binary("directorctl").is_none() {
        return;
    }
    let started = Instant::now();
    let backends = start_backends(&dovecot, 2).expect("start backends");
    let tuning = Tuning {
        kick_delay_secs: KICK_DELAY_SECS,
        flush_socket: Some(format!("unix:{FLUSH_SOCKET}")),
        alt_username: Some(("foo".into(), "%u-alt".into())),
        ..Tuning::default()
    };
    let reference = RingPair::start(&dovecot, ProxyKind::Reference, &backends, &tuning)
        .expect("start the real ring");
    let ours =
        RingPair::start(&dovecot, ProxyKind::Ours, &backends, &tuning).expect("start our ring");
    let (want, got) = std::thread::scope(|s| {
        let ours_run = s.spawn(|| scenario(&ours, &backends));
        let reference_run = scenario(&reference, &backends);
        (
            reference_run,
            ours_run.join().expect("our scenario panicked"),
        )
    });
    report("reference", &want);
    report("ours", &got);
    println!("total {:?}", started.elapsed());

    // The reference proves the expectations.
    let want = want.unwrap_or_else(|e| {
        panic!(
            "reference: {e}\n{}\n{}",
            reference.a.logs(),
            reference.b.logs()
        )
    });
    let closed = |v: &[(&str, char)]| -> Vec<(String, char)> {
        v.iter().map(|(u, p)| (u.to_string(), *p)).collect()
    };
    assert_eq!(
        want.kicks
            .iter()
            .map(|s| s.closed.clone())
            .collect::<Vec<_>>(),
        [
            closed(&[("kuser", 'A'), ("kuser", 'B')]),
            closed(&[("kuser2", 'B')]),
            closed(&[("kalt", 'B')]),
        ],
        "reference kicks"
    );
    assert!(want.bystander_alive, "reference bystander");
    for (((m, (_, to)), logins), st) in want
        .moves
        .iter()
        .zip(&want.move_hosts)
        .zip(&want.next_logins)
        .zip(&want.status)
    {
        assert_eq!(m.closed, closed(&[("mover", 'B')]), "reference {m:?}");
        assert_eq!(logins, &(to.clone(), to.clone()), "reference next logins");
        assert_eq!(st, &(to.clone(), to.clone()), "reference status");
    }
    let n = want.on_flushed.len();
    assert!(n > MAX_PARALLEL, "only {n} users on the flushed host");
    assert_eq!(want.flush_closed, want.on_flushed, "reference flush closed");
    assert!(
        want.waves.iter().all(|&w| w <= MAX_PARALLEL)
            && want.waves.len() >= n.div_ceil(MAX_PARALLEL),
        "reference waves {:?}",
        want.waves
    );
    assert_eq!(want.map_after, ((0, 0), (0, 0)), "reference map rows");
    assert_eq!(
        want.other_alive.0, want.other_alive.1,
        "reference -F kept sessions"
    );
    assert_eq!(
        want.flush_all,
        ((4, 4), (0, 0), 4),
        "reference flush -F all"
    );
    // With no host left the real ring kicks only the sessions of the director that ran
    // the flush (a forced kill is local; the others just forget the host's users).
    assert_eq!(
        want.no_host,
        (closed(&[("fk1", 'A'), ("fk3", 'A')]), (0, 0)),
        "reference: every host down"
    );
    assert!(
        want.flush_b.is_empty(),
        "reference: B ran the flush program"
    );
    // The two moves, then one per user the reset moved (the held ones and any earlier
    // user of the host).
    assert!(
        want.flush_a.len() >= 2 + n,
        "reference: A's flush requests {:?}",
        want.flush_a
    );

    // Ours must do the same; the flush bytes are compared as a whole, and the waves by
    // their bound (their exact split depends on timing).
    let got = got.unwrap_or_else(|e| panic!("ours: {e}\n{}\n{}", ours.a.logs(), ours.b.logs()));
    assert!(
        got.waves.iter().all(|&w| w <= MAX_PARALLEL)
            && got.waves.len() >= got.on_flushed.len().div_ceil(MAX_PARALLEL),
        "our waves {:?}",
        got.waves
    );
    // The flush requests: the two moves' in order, the reset's as a set.
    let reset_requests = |r: &Run| -> Vec<String> {
        let mut v: Vec<String> = r.flush_a.iter().skip(2).cloned().collect();
        v.sort();
        v
    };
    assert_eq!(
        (
            &got.flush_a[..2.min(got.flush_a.len())],
            reset_requests(&got)
        ),
        (&want.flush_a[..2], reset_requests(&want)),
        "our flush requests"
    );
    let comparable = |r: &Run| {
        let mut r = r.clone();
        r.waves.clear();
        r.flush_a.clear();
        r
    };
    let (w, g) = (comparable(&want), comparable(&got));
    assert_eq!(
        g,
        w,
        "ours differs from the real ring\n{}\n{}",
        ours.a.logs(),
        ours.b.logs()
    );
}
