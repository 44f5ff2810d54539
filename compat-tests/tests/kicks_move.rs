//! `move <user> <host>` disconnects the user's open session, the flush program is told
//! about it, and the next login lands on the new backend: real director (reference) and our
//! `directord` (ours), side by side, same backends, same settings.
//!
//! Per proxy, with `director_flush_socket = unix:flush-capture` served by the test
//! ([`FlushCapture`], answering `+` in one test and `-` in the other):
//! 1. `doveadm director move mover <other backend>`: mover's session closes (the proxy logs
//!    `Kicked via director`, i.e. ipc `KICK-DIRECTOR-HASH`), sessions of other users on the
//!    same backend stay open, the flush socket gets one request, the next login reaches the
//!    new backend and `status mover` shows it;
//! 2. our `directorctl move mover <first backend>`: the same, back.
//!
//! A login of mover started right after the move waits for the move to end: not at all when
//! the flush answered `+`, the kick delay (3 s) when it answered `-`.
//!
//! The flush requests must be byte for byte what the real director sends, which in turn
//! must be `VERSION\tscript\t4\t0\n-\nFLUSH\n<hash>\n<old ip>\n<new ip>\nup\n100\n\n`
//! (`auth-proxy.md` §11), with `<hash>` as `doveadm director map -u` computes it.

use std::collections::BTreeMap;
use std::process::Output;
use std::time::{Duration, Instant};

use compat_tests::login_lab::flush_capture::FlushCapture;
use compat_tests::login_lab::session::{HeldSession, Watched};
use compat_tests::login_lab::tuned::{TunedProxy, Tuning};
use compat_tests::login_lab::{start_backends, Backend, ProxyKind, PASSWORD};
use compat_tests::ours::require_our_binary;
use compat_tests::require_dovecot;

/// How long a move's kick may take to reach the sessions.
const KICK_WAIT: Duration = Duration::from_secs(3);
/// The user who is moved.
const MOVER: &str = "mover";
/// Other users; those on mover's backend must not be disconnected.
const OTHERS: usize = 10;
/// `director_user_kick_delay`: how long a move lasts when the flush does not succeed.
const KICK_DELAY_SECS: u64 = 3;
/// Where the flush program listens, relative to `base_dir`.
const FLUSH_SOCKET: &str = "flush-capture";

/// What one move did.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MoveResult {
    command: String,
    exit: Option<i32>,
    output: String,
    /// Users whose sessions closed.
    closed: Vec<String>,
    /// The backend the next login of mover reached.
    next_login: String,
    /// Whether that login waited (at least half) the kick delay.
    login_waited: bool,
    /// `Current:` of `doveadm director status mover`.
    current: String,
}

/// Everything one proxy did.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    mover_first: String,
    moves: Vec<MoveResult>,
    /// Other users seen on mover's first backend (all must survive both moves).
    bystanders: Vec<String>,
    bystanders_alive: bool,
    flush_requests: Vec<String>,
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn current_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Current: "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("(no Current line)")
        .to_string()
}

fn ip_of(backends: &[Backend], name: &str) -> String {
    backends
        .iter()
        .find(|b| b.name == name)
        .map(|b| b.ip().to_string())
        .unwrap_or_default()
}

fn name_of(backends: &[Backend], ip: &str) -> String {
    backends
        .iter()
        .find(|b| b.ip().to_string() == ip)
        .map(|b| b.name.clone())
        .unwrap_or_else(|| format!("({ip})"))
}

/// Moves mover (session `held`) with `run`, watches every session, logs mover in again.
fn one_move(
    proxy: &TunedProxy,
    backends: &[Backend],
    held: HeldSession,
    others: &mut Vec<HeldSession>,
    label: &str,
    run: impl FnOnce() -> Output,
) -> (MoveResult, Option<HeldSession>) {
    let out = run();
    let mut watchers = vec![held.spawn_watch(KICK_WAIT)];
    watchers.extend(others.drain(..).map(|s| s.spawn_watch(KICK_WAIT)));
    // At once, while the move is still running: the login waits for the move to end.
    let started = Instant::now();
    let next = HeldSession::open(proxy.ip(), MOVER, PASSWORD);
    let waited = started.elapsed();
    let mut closed = Vec::new();
    for w in watchers {
        match w.join() {
            Ok(Watched::Open(s)) if s.user == MOVER => closed.push("(mover stayed open)".into()),
            Ok(Watched::Open(s)) => others.push(s),
            Ok(Watched::Closed { user, .. }) => closed.push(user),
            Ok(Watched::Failed(e)) => closed.push(format!("(failed: {e})")),
            Err(_) => closed.push("(watcher panicked)".into()),
        }
    }
    closed.sort();
    let next_login = match &next {
        Ok(s) => s.backend.clone(),
        Err(e) => format!("(login failed: {e})"),
    };
    println!(
        "{}: {label}: next login of {MOVER} took {waited:?}",
        proxy.kind.label(),
    );
    let current = name_of(backends, &current_of(&proxy.doveadm(&["status", MOVER])));
    let result = MoveResult {
        command: label.to_string(),
        exit: out.status.code(),
        output: text(&out),
        closed,
        next_login,
        login_waited: waited >= Duration::from_secs(KICK_DELAY_SECS) / 2,
        current,
    };
    (result, next.ok())
}

fn scenario(
    proxy: &TunedProxy,
    backends: &[Backend],
    flush_reply: &'static [u8],
) -> Result<Run, String> {
    let capture = FlushCapture::start(&proxy.path(FLUSH_SOCKET), flush_reply)
        .map_err(|e| format!("flush capture: {e}"))?;
    let mover = HeldSession::open(proxy.ip(), MOVER, PASSWORD).map_err(|e| e.to_string())?;
    let mut others = Vec::new();
    for i in 1..=OTHERS {
        let user = format!("other{i:02}");
        others.push(HeldSession::open(proxy.ip(), &user, PASSWORD).map_err(|e| e.to_string())?);
    }
    let first = mover.backend.clone();
    let second = backends
        .iter()
        .map(|b| b.name.clone())
        .find(|n| *n != first)
        .ok_or("one backend only")?;
    let bystanders: Vec<String> = others
        .iter()
        .filter(|s| s.backend == first)
        .map(|s| s.user.clone())
        .collect();

    let to_second = ip_of(backends, &second);
    let (m1, held) = one_move(proxy, backends, mover, &mut others, "doveadm move", || {
        proxy.doveadm(&["move", MOVER, &to_second])
    });
    let held = held.ok_or_else(|| format!("no session after the first move: {m1:?}"))?;
    let to_first = ip_of(backends, &first);
    let (m2, _held) = one_move(
        proxy,
        backends,
        held,
        &mut others,
        "directorctl move",
        || proxy.directorctl(&["move", MOVER, &to_first]),
    );
    let mut bystanders_alive = others.len() == OTHERS;
    for s in &mut others {
        bystanders_alive &= s.noop().is_ok();
    }
    let flush_requests = capture
        .wait_for(2, Duration::from_secs(5))
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect();
    Ok(Run {
        mover_first: first,
        moves: vec![m1, m2],
        bystanders,
        bystanders_alive,
        flush_requests,
    })
}

#[test]
fn moves_disconnect_the_user_and_a_flush_success_ends_the_move_at_once() {
    check(b"+\n", false);
}

#[test]
fn moves_disconnect_the_user_and_a_flush_failure_delays_the_next_login() {
    check(b"-\n", true);
}

/// The scenario with the flush program answering `flush_reply`; the next login waits the
/// kick delay exactly when `login_waits` (`user-directory.md` §7.1 steps 6-7).
fn check(flush_reply: &'static [u8], login_waits: bool) {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    if require_our_binary("directord").is_none() || require_our_binary("directorctl").is_none() {
        return;
    }
    let started = Instant::now();
    let backends = start_backends(&dovecot, 2).expect("start backends");
    let tuning = Tuning {
        flush_socket: Some(format!("unix:{FLUSH_SOCKET}")),
        kick_delay_secs: KICK_DELAY_SECS,
        ..Tuning::default()
    };
    let reference = TunedProxy::start(&dovecot, ProxyKind::Reference, &backends, &tuning)
        .expect("start the reference proxy");
    let ours = TunedProxy::start(&dovecot, ProxyKind::Ours, &backends, &tuning)
        .expect("start our proxy (directord)");
    let (want, got) = std::thread::scope(|s| {
        let ours_run = s.spawn(|| scenario(&ours, &backends, flush_reply));
        let reference_run = scenario(&reference, &backends, flush_reply);
        (
            reference_run,
            ours_run.join().expect("our scenario panicked"),
        )
    });
    for (label, run) in [("reference", &want), ("ours", &got)] {
        match run {
            Ok(r) => {
                println!(
                    "{label}: {MOVER} on {}, bystanders on the same backend {:?} (alive at the end: {})",
                    r.mover_first, r.bystanders, r.bystanders_alive
                );
                for m in &r.moves {
                    println!(
                        "{label}: {:<17} exit {:?}, {} session(s) closed {:?}, next login on {} (waited the kick delay: {}), status Current {}",
                        m.command, m.exit, m.closed.len(), m.closed, m.next_login, m.login_waited, m.current
                    );
                }
                for f in &r.flush_requests {
                    println!("{label}: flush request {f:?}");
                }
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
    let first = want.mover_first.clone();
    let second = backends
        .iter()
        .map(|b| b.name.clone())
        .find(|n| *n != first)
        .unwrap_or_default();
    for (m, land) in want.moves.iter().zip([&second, &first]) {
        assert_eq!(m.exit, Some(0), "reference {m:?}");
        assert_eq!(m.closed, [MOVER], "reference {m:?}");
        assert_eq!((&m.next_login, &m.current), (land, land), "reference {m:?}");
        assert_eq!(m.login_waited, login_waits, "reference {m:?}");
    }
    assert!(want.bystanders_alive, "reference: a bystander was closed");
    assert_eq!(
        ref_reasons,
        BTreeMap::from([((MOVER.to_string(), "Kicked via director".to_string()), 2)]),
        "reference proxy log"
    );
    let hash_out = reference.doveadm(&["map", "-u", MOVER]);
    let hash = String::from_utf8_lossy(&hash_out.stdout).trim().to_string();
    let spec_request = |old: &str, new: &str| {
        format!(
            "VERSION\tscript\t4\t0\n-\nFLUSH\n{hash}\n{}\n{}\nup\n100\n\n",
            ip_of(&backends, old),
            ip_of(&backends, new)
        )
    };
    assert_eq!(
        want.flush_requests,
        [spec_request(&first, &second), spec_request(&second, &first)],
        "the real director's flush requests"
    );

    // Ours must match, flush bytes included.
    assert_eq!(
        (got.as_ref().ok(), &our_reasons),
        (Some(&want), &ref_reasons),
        "ours differs from the real director: {got:?}\n{}",
        ours.logs()
    );
}
