//! `flush <host>` (HOST-RESET-USERS) after `down <host>` moves every user of that host, at
//! most `--max-parallel` at a time, disconnecting their sessions; `flush -F <host>`
//! (HOST-FLUSH) only forgets the host's users and leaves sessions open. Real director
//! (reference) and our `directord` (ours), side by side, same backends and settings.
//!
//! Per proxy, with sessions of [`USERS`] users held open over two backends:
//! 1. `down H`, then `flush --max-parallel 3 H` (H = the backend with more users): exactly the users
//!    on H are disconnected (`Kicked via director`), in waves no larger than 3 that are one
//!    kick delay apart (`user-directory.md` §7: a move holds its slot until the delay ends);
//!    the director logs `Moved <n> users in 1 hosts ... (max parallel=3)`; afterwards
//!    `map H` lists nobody;
//! 2. `flush -F G` (G = the other backend): `map G` lists nobody, and every session still
//!    open on G still answers.

use std::process::Output;
use std::time::{Duration, Instant};

use compat_tests::login_lab::session::{HeldSession, Watched};
use compat_tests::login_lab::tuned::{TunedProxy, Tuning};
use compat_tests::login_lab::{start_backends, Backend, ProxyKind, PASSWORD};
use compat_tests::ours::require_our_binary;
use compat_tests::require_dovecot;

/// Users with a session held open.
const USERS: usize = 16;
/// `--max-parallel` of the flush.
const MAX_PARALLEL: usize = 3;
/// `director_user_kick_delay`: the spacing of the waves.
const KICK_DELAY_SECS: u64 = 2;
/// Closures closer together than this belong to one wave.
const WAVE_GAP: Duration = Duration::from_millis(800);

/// Everything one proxy did.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    flushed_host: String,
    /// Users on the flushed host (by their sessions' backend).
    on_flushed: Vec<String>,
    /// Exit codes and outputs of `down`, `flush`, `flush -F`.
    commands: Vec<(String, Option<i32>, String)>,
    /// Users whose sessions the flush closed.
    closed: Vec<String>,
    /// Sizes of the waves of closures, in time order.
    waves: Vec<usize>,
    /// `Moved <n> users in <m> hosts ... (max parallel=<p>)`, as `(n, m, p)`.
    moved_log: Vec<(String, String, String)>,
    /// `map` rows of the flushed host: before and after the flush.
    map_flushed: (usize, usize),
    /// `map` rows of the other host: before and after `flush -F`.
    map_other: (usize, usize),
    /// Sessions left on the other host that still answer after `flush -F`, of how many.
    other_alive: (usize, usize),
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Data rows of `doveadm director map -f <users file> <ip>` (the header is not counted).
fn map_rows(proxy: &TunedProxy, users_file: &str, ip: &str) -> usize {
    let out = proxy.doveadm(&["map", "-f", users_file, ip]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|h| h.parse::<u32>().is_ok())
        })
        .count()
}

fn moved_lines(log: &str) -> Vec<(String, String, String)> {
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find("Moved ")? + 6..];
            let mut w = rest.split_whitespace();
            let n = w.next()?.to_string();
            let hosts = w.nth(2)?.to_string();
            let p = rest.split("max parallel=").nth(1)?.trim_end_matches(')');
            Some((n, hosts, p.to_string()))
        })
        .collect()
}

fn scenario(proxy: &TunedProxy, backends: &[Backend]) -> Result<Run, String> {
    let users: Vec<String> = (1..=USERS).map(|i| format!("fluser{i:02}")).collect();
    let users_file = proxy.instance.root().join("users.txt");
    std::fs::write(&users_file, users.join("\n") + "\n").map_err(|e| e.to_string())?;
    let users_file = users_file.display().to_string();
    let mut sessions = Vec::new();
    for u in &users {
        sessions.push(HeldSession::open(proxy.ip(), u, PASSWORD).map_err(|e| e.to_string())?);
    }
    // The backend with more users is flushed, so that it has more than one wave of them.
    let count = |b: &Backend| sessions.iter().filter(|s| s.backend == b.name).count();
    let (flushed, other) = if count(&backends[0]) >= count(&backends[1]) {
        (&backends[0], &backends[1])
    } else {
        (&backends[1], &backends[0])
    };
    let (h_ip, g_ip) = (flushed.ip().to_string(), other.ip().to_string());
    let on_flushed: Vec<String> = sessions
        .iter()
        .filter(|s| s.backend == flushed.name)
        .map(|s| s.user.clone())
        .collect();
    let map_h_before = map_rows(proxy, &users_file, &h_ip);
    let mut commands = Vec::new();
    let down = proxy.doveadm(&["down", &h_ip]);
    commands.push(("down".to_string(), down.status.code(), text(&down)));

    let waves_max = on_flushed.len().div_ceil(MAX_PARALLEL) as u64;
    let within = Duration::from_secs(waves_max * KICK_DELAY_SECS + 4);
    let watchers: Vec<_> = sessions.drain(..).map(|s| s.spawn_watch(within)).collect();
    let max = MAX_PARALLEL.to_string();
    let flush = proxy.doveadm(&["flush", "--max-parallel", &max, &h_ip]);
    commands.push(("flush".to_string(), flush.status.code(), text(&flush)));
    let mut closed = Vec::new();
    for w in watchers {
        match w.join() {
            Ok(Watched::Open(s)) => sessions.push(s),
            Ok(Watched::Closed { user, at, .. }) => closed.push((at, user)),
            Ok(Watched::Failed(e)) => return Err(e),
            Err(_) => return Err("watcher panicked".into()),
        }
    }
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
    let mut closed: Vec<String> = closed.into_iter().map(|(_, u)| u).collect();
    closed.sort();
    let map_h_after = map_rows(proxy, &users_file, &h_ip);

    let map_g_before = map_rows(proxy, &users_file, &g_ip);
    let forget = proxy.doveadm(&["flush", "-F", &g_ip]);
    commands.push(("flush -F".to_string(), forget.status.code(), text(&forget)));
    let map_g_after = map_rows(proxy, &users_file, &g_ip);
    // Give a wrong kick time to arrive before asking the sessions.
    std::thread::sleep(Duration::from_secs(1));
    let mut alive = 0;
    for s in &mut sessions {
        alive += usize::from(s.noop().is_ok());
    }
    Ok(Run {
        flushed_host: flushed.name.clone(),
        on_flushed,
        commands,
        closed,
        waves,
        moved_log: moved_lines(&proxy.director_log()),
        map_flushed: (map_h_before, map_h_after),
        map_other: (map_g_before, map_g_after),
        other_alive: (alive, sessions.len()),
    })
}

#[test]
fn flush_moves_a_down_hosts_users_in_bounded_waves_and_flush_f_only_forgets() {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    if require_our_binary("directord").is_none() {
        return;
    }
    let started = Instant::now();
    let backends = start_backends(&dovecot, 2).expect("start backends");
    let tuning = Tuning {
        kick_delay_secs: KICK_DELAY_SECS,
        ..Tuning::default()
    };
    let reference = TunedProxy::start(&dovecot, ProxyKind::Reference, &backends, &tuning)
        .expect("start the reference proxy");
    let ours = TunedProxy::start(&dovecot, ProxyKind::Ours, &backends, &tuning)
        .expect("start our proxy (directord)");
    let (want, got) = std::thread::scope(|s| {
        let ours_run = s.spawn(|| scenario(&ours, &backends));
        let reference_run = scenario(&reference, &backends);
        (
            reference_run,
            ours_run.join().expect("our scenario panicked"),
        )
    });
    for (label, run) in [("reference", &want), ("ours", &got)] {
        match run {
            Ok(r) => {
                println!(
                    "{label}: {} users on {}: {:?}",
                    r.on_flushed.len(),
                    r.flushed_host,
                    r.on_flushed
                );
                for (c, code, out) in &r.commands {
                    println!("{label}: {c}: exit {code:?} {out:?}");
                }
                println!(
                    "{label}: flush closed {} session(s) in waves {:?} (max parallel {MAX_PARALLEL}); log {:?}",
                    r.closed.len(),
                    r.waves,
                    r.moved_log
                );
                println!(
                    "{label}: map rows of flushed host before/after {:?}, of the other host before/after -F {:?}; sessions on it alive after -F {:?}",
                    r.map_flushed, r.map_other, r.other_alive
                );
            }
            Err(e) => println!("{label}: failed: {e}"),
        }
    }
    let ref_reasons = reference.proxy_disconnects();
    let our_reasons = ours.proxy_disconnects();
    println!("proxy log, sessions closed per (user, reason): reference {ref_reasons:?}, ours {our_reasons:?}");
    println!("total {:?}", started.elapsed());

    // The reference proves the expectations.
    let want = want.unwrap_or_else(|e| panic!("reference: {e}\n{}", reference.logs()));
    let n = want.on_flushed.len();
    assert!(
        n > MAX_PARALLEL,
        "only {n} users on the flushed host: waves would prove nothing"
    );
    assert!(
        want.commands.iter().all(|(_, code, _)| *code == Some(0)),
        "reference {:?}",
        want.commands
    );
    assert_eq!(want.closed, want.on_flushed, "reference closed");
    assert!(
        want.waves.iter().all(|&w| w <= MAX_PARALLEL)
            && want.waves.len() >= n.div_ceil(MAX_PARALLEL),
        "reference waves {:?}",
        want.waves
    );
    assert_eq!(
        want.moved_log,
        [(n.to_string(), "1".to_string(), MAX_PARALLEL.to_string())],
        "reference log"
    );
    assert_eq!(
        want.map_flushed,
        (n, 0),
        "reference map of the flushed host"
    );
    assert_eq!(
        want.map_other,
        (USERS, 0),
        "reference map of the other host"
    );
    assert_eq!(
        want.other_alive,
        (USERS - n, USERS - n),
        "reference after -F"
    );
    assert!(
        ref_reasons
            .iter()
            .all(|((_, why), &c)| why == "Kicked via director" && c == 1)
            && ref_reasons.len() == n,
        "reference proxy log {ref_reasons:?}"
    );

    // Ours must match.
    assert_eq!(
        (got.as_ref().ok(), &our_reasons),
        (Some(&want), &ref_reasons),
        "ours differs from the real director: {got:?}\n{}",
        ours.logs()
    );
}

/// What `flush H` did with every host down.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NoHostRun {
    on_flushed: Vec<String>,
    commands: Vec<(String, Option<i32>, String)>,
    closed: Vec<String>,
    /// `map` rows of the flushed host before/after, and of the other host after.
    maps: (usize, usize, usize),
    moved_log: Vec<(String, String, String)>,
}

fn no_host_scenario(proxy: &TunedProxy, backends: &[Backend]) -> Result<NoHostRun, String> {
    let users: Vec<String> = (1..=8).map(|i| format!("nohost{i:02}")).collect();
    let users_file = proxy.instance.root().join("users.txt");
    std::fs::write(&users_file, users.join("\n") + "\n").map_err(|e| e.to_string())?;
    let users_file = users_file.display().to_string();
    let mut sessions = Vec::new();
    for u in &users {
        sessions.push(HeldSession::open(proxy.ip(), u, PASSWORD).map_err(|e| e.to_string())?);
    }
    let count = |b: &Backend| sessions.iter().filter(|s| s.backend == b.name).count();
    let (flushed, other) = if count(&backends[0]) >= count(&backends[1]) {
        (&backends[0], &backends[1])
    } else {
        (&backends[1], &backends[0])
    };
    let (h_ip, g_ip) = (flushed.ip().to_string(), other.ip().to_string());
    let on_flushed: Vec<String> = sessions
        .iter()
        .filter(|s| s.backend == flushed.name)
        .map(|s| s.user.clone())
        .collect();
    let before = map_rows(proxy, &users_file, &h_ip);
    let mut commands = Vec::new();
    for (label, args) in [
        ("down H", vec!["down", h_ip.as_str()]),
        ("down G", vec!["down", g_ip.as_str()]),
        ("flush H", vec!["flush", h_ip.as_str()]),
    ] {
        let out = proxy.doveadm(&args);
        commands.push((label.to_string(), out.status.code(), text(&out)));
    }
    let watchers: Vec<_> = sessions
        .drain(..)
        .map(|s| s.spawn_watch(Duration::from_secs(3)))
        .collect();
    let mut closed = Vec::new();
    for w in watchers {
        match w.join() {
            Ok(Watched::Open(_)) => {}
            Ok(Watched::Closed { user, .. }) => closed.push(user),
            Ok(Watched::Failed(e)) => return Err(e),
            Err(_) => return Err("watcher panicked".into()),
        }
    }
    closed.sort();
    Ok(NoHostRun {
        on_flushed,
        commands,
        closed,
        maps: (
            before,
            map_rows(proxy, &users_file, &h_ip),
            map_rows(proxy, &users_file, &g_ip),
        ),
        moved_log: moved_lines(&proxy.director_log()),
    })
}

/// `user-directory.md`/`admin-protocol.md` §6.7: with no host left, `flush H` kicks H's
/// users (`KICK-DIRECTOR-HASH`, forced) and then forgets H's entries; the other host's
/// users are neither kicked nor forgotten.
#[test]
fn flush_with_no_host_left_kicks_and_forgets_the_hosts_users() {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    if require_our_binary("directord").is_none() {
        return;
    }
    let backends = start_backends(&dovecot, 2).expect("start backends");
    let tuning = Tuning {
        kick_delay_secs: 1,
        ..Tuning::default()
    };
    let reference = TunedProxy::start(&dovecot, ProxyKind::Reference, &backends, &tuning)
        .expect("start the reference proxy");
    let ours = TunedProxy::start(&dovecot, ProxyKind::Ours, &backends, &tuning)
        .expect("start our proxy (directord)");
    let (want, got) = std::thread::scope(|s| {
        let ours_run = s.spawn(|| no_host_scenario(&ours, &backends));
        let reference_run = no_host_scenario(&reference, &backends);
        (
            reference_run,
            ours_run.join().expect("our scenario panicked"),
        )
    });
    println!("reference: {want:?}\nours:      {got:?}");
    let ref_reasons = reference.proxy_disconnects();
    let our_reasons = ours.proxy_disconnects();
    println!("proxy log, sessions closed per (user, reason): reference {ref_reasons:?}, ours {our_reasons:?}");

    let want = want.unwrap_or_else(|e| panic!("reference: {e}\n{}", reference.logs()));
    let n = want.on_flushed.len();
    assert!(
        want.commands.iter().all(|(_, code, _)| *code == Some(0)),
        "reference {:?}",
        want.commands
    );
    assert_eq!(want.closed, want.on_flushed, "reference closed");
    assert_eq!(want.maps, (n, 0, 8 - n), "reference maps");
    assert!(
        ref_reasons
            .iter()
            .all(|((_, why), &c)| why == "Kicked via director" && c == 1)
            && ref_reasons.len() == n,
        "reference proxy log {ref_reasons:?}"
    );
    assert_eq!(
        (got.as_ref().ok(), &our_reasons),
        (Some(&want), &ref_reasons),
        "ours differs from the real director: {got:?}\n{}",
        ours.logs()
    );
}
