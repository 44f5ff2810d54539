//! A bounded IMAP login load through the members' real login proxies: a few threads log
//! users in one after another (`LOGIN` + `ID` + `LOGOUT`), each login through the next
//! proxy in turn, until told to stop, a login count or a time limit is reached. Every
//! login is recorded with its time, so the ones during a fault can be counted.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::login_lab::clients::{imap_login, Login};
use crate::login_lab::PASSWORD;

/// Pause between two logins of one thread (keeps a 2-core machine usable).
const PAUSE: Duration = Duration::from_millis(10);

/// One login attempt.
#[derive(Debug, Clone)]
pub struct Record {
    /// When it ended.
    pub at: Instant,
    /// The login name.
    pub user: String,
    /// The proxy it went through.
    pub via: IpAddr,
    /// The backend reached (`be1`, ...), or why not.
    pub outcome: Result<String, String>,
}

/// A running load.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Record>>>,
}

impl Load {
    /// Starts `threads` threads logging `users` in through `proxies`, at most `max_logins`
    /// logins in all and for at most `max_time`.
    pub fn start(
        proxies: Vec<IpAddr>,
        users: Vec<String>,
        threads: usize,
        max_logins: usize,
        max_time: Duration,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let end = Instant::now() + max_time;
        let threads = (0..threads.max(1))
            .map(|_| {
                let (stop, next) = (stop.clone(), next.clone());
                let (proxies, users) = (proxies.clone(), users.clone());
                std::thread::spawn(move || {
                    let mut out = Vec::new();
                    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= max_logins || users.is_empty() || proxies.is_empty() {
                            break;
                        }
                        let user = &users[i % users.len()];
                        // Each round over the users shifts the proxy, so every user goes
                        // through every proxy.
                        let via = proxies[(i + i / users.len()) % proxies.len()];
                        let outcome = login(via, user);
                        out.push(Record {
                            at: Instant::now(),
                            user: user.clone(),
                            via,
                            outcome,
                        });
                        std::thread::sleep(PAUSE);
                    }
                    out
                })
            })
            .collect();
        Load { stop, threads }
    }

    /// Waits until the load ends by itself (login count or time limit); returns every login.
    pub fn finish_when_done(self) -> Vec<Record> {
        self.threads
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect()
    }

    /// Stops the load and returns every login, in no particular order.
    pub fn finish(self) -> Vec<Record> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect()
    }
}

/// For each of `users` in turn, one login through every proxy at the same moment (a
/// barrier): new users reach several directors at once, which must still agree on one
/// backend. `users.len() * proxies.len()` logins in all.
pub fn burst(proxies: &[IpAddr], users: &[String]) -> Vec<Record> {
    let mut out = Vec::new();
    for user in users {
        let gate = Arc::new(std::sync::Barrier::new(proxies.len()));
        let threads: Vec<_> = proxies
            .iter()
            .map(|&via| {
                let (gate, user) = (gate.clone(), user.clone());
                std::thread::spawn(move || {
                    gate.wait();
                    let outcome = login(via, &user);
                    Record {
                        at: Instant::now(),
                        user,
                        via,
                        outcome,
                    }
                })
            })
            .collect();
        out.extend(threads.into_iter().filter_map(|t| t.join().ok()));
    }
    out
}

/// One IMAP login through `via`; the backend it reached or why not.
pub fn login(via: IpAddr, user: &str) -> Result<String, String> {
    match imap_login(via, user, PASSWORD, None) {
        Ok(Login::Reached(set)) if set.len() == 1 => Ok(set.into_iter().next().unwrap_or_default()),
        Ok(Login::Reached(set)) => Err(format!("backends {set:?}")),
        Ok(Login::Refused(line)) => Err(line),
        Err(e) => Err(e.to_string()),
    }
}

/// Counts of a set of logins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Logins attempted.
    pub logins: usize,
    /// Logins that reached a backend.
    pub ok: usize,
    /// Logins that did not.
    pub failed: usize,
    /// Up to 5 failures as `user via proxy: why`.
    pub examples: Vec<String>,
}

/// Counts the logins that ended within `[from, to)` (all of them when `None`).
pub fn summarize(records: &[Record], window: Option<(Instant, Instant)>) -> Summary {
    let mut s = Summary::default();
    for r in records {
        if window.is_some_and(|(from, to)| r.at < from || r.at >= to) {
            continue;
        }
        s.logins += 1;
        match &r.outcome {
            Ok(_) => s.ok += 1,
            Err(why) => {
                s.failed += 1;
                if s.examples.len() < 5 {
                    s.examples.push(format!("{} via {}: {why}", r.user, r.via));
                }
            }
        }
    }
    s
}

/// Users that reached more than one backend (double routing), with the backends.
pub fn double_routed(records: &[Record]) -> BTreeMap<String, BTreeSet<String>> {
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in records {
        if let Ok(be) = &r.outcome {
            seen.entry(r.user.clone()).or_default().insert(be.clone());
        }
    }
    seen.retain(|_, s| s.len() > 1);
    seen
}
