//! `kick` really disconnects sessions held open through a real Dovecot `imap-login` proxy,
//! with the real director (reference) and with our `directord` (ours), side by side:
//!
//! 1. `doveadm director kick alice` closes both of alice's sessions and nothing else;
//! 2. our `directorctl kick bob` closes bob's session;
//! 3. `doveadm director kick -f user_foo carol-alt` (passdb field `user_foo=%u-alt`, an
//!    alternative username) closes carol's session;
//! 4. `directorctl kick -f user_foo erin-alt` closes erin's session;
//! 5. `doveadm director kick Dave` closes nothing (login names match exactly, case included);
//!
//! while dave's session stays usable throughout. The client just sees the connection
//! close (2.3.19.1 sends no `* BYE`); the proxy logs `Disconnected by proxy: Kicked by admin`
//! for each (the reason of the ipc `KICK`/`KICK-ALT` commands, `auth-proxy.md` §10).
//! Ours must do exactly what the reference does.

use std::collections::BTreeMap;
use std::process::Output;
use std::time::{Duration, Instant};

use compat_tests::login_lab::session::{HeldSession, Watched};
use compat_tests::login_lab::tuned::{TunedProxy, Tuning};
use compat_tests::login_lab::{start_backends, ProxyKind, PASSWORD};
use compat_tests::ours::require_our_binary;
use compat_tests::require_dovecot;

/// How long a kick may take to reach the sessions (the admin OK does not wait for it).
const KICK_WAIT: Duration = Duration::from_secs(3);
/// Sessions held open: alice twice, then one each.
const SESSIONS: [&str; 6] = ["alice", "alice", "bob", "carol", "dave", "erin"];

/// One kick: which client ran it, with what, and which sessions it closed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    command: String,
    exit: Option<i32>,
    output: String,
    /// Login names of the closed sessions, with the last line each client saw.
    closed: Vec<(String, String)>,
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `kick` and returns which of `open` it closed; the rest are put back.
fn kick(open: &mut Vec<HeldSession>, label: &str, run: impl FnOnce() -> Output) -> Step {
    let out = run();
    let watchers: Vec<_> = open.drain(..).map(|s| s.spawn_watch(KICK_WAIT)).collect();
    let mut closed = Vec::new();
    for w in watchers {
        match w.join() {
            Ok(Watched::Open(s)) => open.push(s),
            Ok(c @ Watched::Closed { .. }) => {
                if let Watched::Closed { user, .. } = &c {
                    closed.push((user.clone(), c.last_line().to_string()));
                }
            }
            Ok(Watched::Failed(e)) => closed.push(("(failed)".into(), e)),
            Err(_) => closed.push(("(watcher panicked)".into(), String::new())),
        }
    }
    closed.sort();
    Step {
        command: label.to_string(),
        exit: out.status.code(),
        output: text(&out),
        closed,
    }
}

/// The whole scenario against one proxy.
fn scenario(proxy: &TunedProxy) -> (Vec<Step>, Result<(), String>) {
    let mut open = Vec::new();
    for user in SESSIONS {
        match HeldSession::open(proxy.ip(), user, PASSWORD) {
            Ok(s) => open.push(s),
            Err(e) => return (Vec::new(), Err(format!("cannot hold {user}: {e}"))),
        }
    }
    let steps = vec![
        kick(&mut open, "doveadm kick alice", || {
            proxy.doveadm(&["kick", "alice"])
        }),
        kick(&mut open, "directorctl kick bob", || {
            proxy.directorctl(&["kick", "bob"])
        }),
        kick(&mut open, "doveadm kick -f user_foo carol-alt", || {
            proxy.doveadm(&["kick", "-f", "user_foo", "carol-alt"])
        }),
        kick(&mut open, "directorctl kick -f user_foo erin-alt", || {
            proxy.directorctl(&["kick", "-f", "user_foo", "erin-alt"])
        }),
        kick(&mut open, "doveadm kick Dave", || {
            proxy.doveadm(&["kick", "Dave"])
        }),
    ];
    let mut survivors = Ok(());
    for s in &mut open {
        if let Err(e) = s.noop() {
            survivors = Err(format!("{} no longer answers: {e}", s.user));
        }
    }
    let left: Vec<&str> = open.iter().map(|s| s.user.as_str()).collect();
    if left != ["dave"] {
        survivors = Err(format!("sessions left open: {left:?}, want only dave"));
    }
    (steps, survivors)
}

#[test]
fn kicks_close_the_sessions_of_the_kicked_user_only() {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    if require_our_binary("directord").is_none() || require_our_binary("directorctl").is_none() {
        return;
    }
    let started = Instant::now();
    let backends = start_backends(&dovecot, 2).expect("start backends");
    let tuning = Tuning {
        alt_username: Some(("foo".into(), "%u-alt".into())),
        ..Tuning::default()
    };
    let reference = TunedProxy::start(&dovecot, ProxyKind::Reference, &backends, &tuning)
        .expect("start the reference proxy");
    let ours = TunedProxy::start(&dovecot, ProxyKind::Ours, &backends, &tuning)
        .expect("start our proxy (directord)");

    // Both at once: each runs on its own proxy, directors and sessions.
    let ((ref_steps, ref_left), (our_steps, our_left)) = std::thread::scope(|s| {
        let ours_run = s.spawn(|| scenario(&ours));
        let reference_run = scenario(&reference);
        (
            reference_run,
            ours_run.join().expect("our scenario panicked"),
        )
    });
    for (label, steps, left) in [
        ("reference", &ref_steps, &ref_left),
        ("ours", &our_steps, &our_left),
    ] {
        for st in steps {
            let users: Vec<&str> = st.closed.iter().map(|(u, _)| u.as_str()).collect();
            println!(
                "{label}: {:<36} exit {:?}, {} session(s) kicked {users:?}, last lines {:?}",
                st.command,
                st.exit,
                st.closed.len(),
                st.closed
                    .iter()
                    .map(|(_, l)| l.as_str())
                    .collect::<Vec<_>>()
            );
        }
        println!("{label}: survivors: {left:?}");
    }
    let ref_reasons = reference.proxy_disconnects();
    let our_reasons = ours.proxy_disconnects();
    println!("proxy log, sessions closed per (user, reason): reference {ref_reasons:?}, ours {our_reasons:?}");
    println!("total {:?}", started.elapsed());

    // The reference proves the expectations.
    assert_eq!(ref_left, Ok(()), "reference\n{}", reference.logs());
    let kicked: Vec<Vec<&str>> = ref_steps
        .iter()
        .map(|st| st.closed.iter().map(|(u, _)| u.as_str()).collect())
        .collect();
    assert_eq!(
        kicked,
        [
            vec!["alice", "alice"],
            vec!["bob"],
            vec!["carol"],
            vec!["erin"],
            vec![]
        ],
        "the real director kicked otherwise: {ref_steps:#?}\n{}",
        reference.logs()
    );
    for st in &ref_steps {
        assert_eq!(st.exit, Some(0), "reference {st:?}");
    }
    let want_reasons: BTreeMap<(String, String), usize> =
        [("alice", 2), ("bob", 1), ("carol", 1), ("erin", 1)]
            .map(|(u, n)| ((u.to_string(), "Kicked by admin".to_string()), n))
            .into();
    assert_eq!(ref_reasons, want_reasons, "reference proxy log");

    // Ours must match, step by step.
    assert_eq!(
        (&our_steps, &our_left, &our_reasons),
        (&ref_steps, &ref_left, &ref_reasons),
        "ours differs from the real director\n{}",
        ours.logs()
    );
}
