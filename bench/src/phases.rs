//! The measurements: auth throughput/CPU at several concurrency levels, then memory and
//! `USER-LIST` time with many users. Real and ours alternate run by run, so slow drift of
//! the (shared, noisy) machine hits both alike.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::admin;
use crate::e2e::E2ePlan;
use crate::load::{self, Load, LoadResult, Users};
use crate::report::{median, Cell, Goal, Table};
use crate::ring::RingPlan;
use crate::target::{Kind, Settings, Target};
use crate::{ours, real};

/// How much to measure.
#[derive(Debug, Clone)]
pub struct Plan {
    /// (connections, requests in flight per connection) levels.
    pub levels: Vec<(usize, usize)>,
    /// Length of one throughput run.
    pub run_time: Duration,
    /// Runs per target and level.
    pub reps: usize,
    /// Known users the throughput runs pick from.
    pub pool: u64,
    /// Tracked-user counts at which memory is read; `USER-LIST` is timed at the last.
    pub user_steps: Vec<u64>,
    /// Time limit for creating one step's users.
    pub fill_limit: Duration,
    /// No user creation starts or goes on after this much time since program start, so
    /// a slow director cannot stretch the whole run beyond it.
    pub budget: Duration,
    /// `USER-LIST` runs per target.
    pub list_reps: usize,
    /// Ring joins.
    pub ring: RingPlan,
    /// IMAP logins through a real imap-login proxy.
    pub e2e: E2ePlan,
}

impl Plan {
    /// The full run (about 5 minutes here).
    pub fn full() -> Plan {
        Plan {
            levels: vec![(1, 1), (1, 32), (4, 32), (8, 64)],
            run_time: Duration::from_secs(5),
            reps: 3,
            pool: 1000,
            user_steps: vec![100_000, 1_000_000],
            fill_limit: Duration::from_secs(120),
            budget: Duration::from_secs(330),
            list_reps: 3,
            ring: RingPlan {
                steps: vec![100_000, 1_000_000],
                reps: 3,
                fill_limit: Duration::from_secs(60),
                budget: Duration::from_secs(480),
                hard_stop: Duration::from_secs(540),
                join_timeout: Duration::from_secs(15),
            },
            e2e: E2ePlan {
                run_time: Duration::from_millis(2500),
                reps: 5,
                clients: 16,
                pool: 10_000,
                hard_stop: Duration::from_secs(570),
            },
        }
    }

    /// `--quick`: under a minute.
    pub fn quick() -> Plan {
        Plan {
            levels: vec![(1, 1), (1, 32), (4, 32), (8, 64)],
            run_time: Duration::from_millis(1500),
            reps: 1,
            pool: 1000,
            user_steps: vec![100_000],
            fill_limit: Duration::from_secs(20),
            budget: Duration::from_secs(30),
            list_reps: 2,
            ring: RingPlan {
                steps: vec![100_000],
                reps: 1,
                fill_limit: Duration::from_secs(10),
                budget: Duration::from_secs(38),
                hard_stop: Duration::from_secs(45),
                join_timeout: Duration::from_secs(4),
            },
            e2e: E2ePlan {
                run_time: Duration::from_millis(1500),
                reps: 1,
                clients: 16,
                pool: 10_000,
                hard_stop: Duration::from_secs(55),
            },
        }
    }
}

/// Which binaries to compare.
pub struct Subjects<'a> {
    /// Shared settings.
    pub settings: &'a Settings,
    /// Our daemon's binary.
    pub directord: &'a Path,
    /// Run only this one (`--only`), e.g. to profile ours.
    pub only: Option<Kind>,
}

impl Subjects<'_> {
    fn start(&self, kind: Kind) -> Result<Target, String> {
        self.start_with(kind, self.settings)
    }

    /// Starts `kind` with `settings` instead of the shared ones (a ring member).
    pub fn start_with(&self, kind: Kind, settings: &Settings) -> Result<Target, String> {
        if self.only.is_some_and(|k| k != kind) {
            return Err("skipped (--only)".into());
        }
        let r = match kind {
            Kind::Real => real::start(settings),
            Kind::Ours => ours::start(settings, self.directord),
        };
        match r {
            Ok(t) => {
                crate::progress(&format!(
                    "{}: director pid {}, base_dir {}",
                    kind.label(),
                    t.pid,
                    t.base_dir.display()
                ));
                Ok(t)
            }
            Err(e) => {
                crate::progress(&format!("{}: cannot start: {e}", kind.label()));
                Err(format!("did not start: {}", first_line(&e.to_string())))
            }
        }
    }
}

/// One throughput run's figures.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rate: f64,
    p50: f64,
    p99: f64,
    cpu_us: f64,
    sys_share: f64,
}

/// Runs `load` against `t`, reading the director's CPU time around it. Returns the result,
/// the CPU µs per reply, and the share of it spent in the kernel.
fn measured(t: &Target, load: &Load) -> Result<(LoadResult, f64, f64), String> {
    if crate::interrupted() {
        return Err("interrupted".into());
    }
    let (u0, s0) = t.cpu_split_ns().map_err(|e| e.to_string())?;
    let asked = t.auth_answered();
    let r = load::run(load).map_err(|e| first_line(&e.to_string()))?;
    let (u1, s1) = t.cpu_split_ns().map_err(|e| e.to_string())?;
    let asked = t.auth_answered() - asked;
    if asked != r.replies() {
        crate::progress(&format!(
            "{}: {} replies but the fake auth server answered {asked}",
            t.kind.label(),
            r.replies()
        ));
    }
    let (user, sys) = (u1.saturating_sub(u0), s1.saturating_sub(s0));
    let cpu_us = (user + sys) as f64 / 1000.0 / r.replies().max(1) as f64;
    let sys_share = sys as f64 / (user + sys).max(1) as f64;
    if r.fail > 0 || r.without_host > 0 {
        crate::progress(&format!(
            "{}: {} FAIL replies, {} OK without host= of {}",
            t.kind.label(),
            r.fail,
            r.without_host,
            r.replies()
        ));
    }
    Ok((r, cpu_us, sys_share))
}

/// Auth requests/s, latency and director CPU per request at every level.
pub fn throughput(plan: &Plan, subjects: &Subjects, table: &mut Table) {
    let mut targets: Vec<(Kind, Result<Target, String>)> = [Kind::Real, Kind::Ours]
        .into_iter()
        .map(|k| (k, subjects.start(k)))
        .collect();
    // Warm-up: create the pool's users, then a short random run.
    for (kind, t) in &mut targets {
        let Ok(tt) = t else { continue };
        let socket = tt.login_socket();
        let create = Load {
            socket: socket.clone(),
            conns: 4,
            window: 32,
            users: Users::Distinct {
                prefix: "auth".into(),
                start: 0,
            },
            max_requests: plan.pool,
            max_time: Duration::from_secs(10),
        };
        let warm = Load {
            users: Users::Pool {
                prefix: "auth".into(),
                size: plan.pool,
            },
            max_requests: 1_000_000,
            max_time: Duration::from_millis(500),
            ..create.clone()
        };
        if let Err(e) = load::run(&create).and_then(|_| load::run(&warm)) {
            crate::progress(&format!("{}: warm-up failed: {e}", kind.label()));
            *t = Err(format!("warm-up failed: {}", first_line(&e.to_string())));
        }
    }
    for &(conns, window) in &plan.levels {
        let mut samples: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
        let mut errors: [Option<String>; 2] = [None, None];
        for rep in 0..plan.reps {
            // Alternate which one goes first, so drift within a pair cancels too.
            let order: [usize; 2] = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let (kind, t) = &targets[i];
                let Ok(t) = t else { continue };
                let l = Load {
                    socket: t.login_socket(),
                    conns,
                    window,
                    users: Users::Pool {
                        prefix: "auth".into(),
                        size: plan.pool,
                    },
                    max_requests: 5_000_000,
                    max_time: plan.run_time,
                };
                match measured(t, &l) {
                    Ok((r, cpu_us, sys_share)) => {
                        crate::progress(&format!(
                            "{conns}x{window} {}: {:.0} req/s p50 {:.2} ms p99 {:.2} ms, {cpu_us:.1} µs CPU/req ({:.0}% kernel)",
                            kind.label(),
                            r.rate(),
                            r.latency_ms(0.5),
                            r.latency_ms(0.99),
                            sys_share * 100.0
                        ));
                        samples[i].push(Sample {
                            rate: r.rate(),
                            p50: r.latency_ms(0.5),
                            p99: r.latency_ms(0.99),
                            cpu_us,
                            sys_share,
                        });
                    }
                    Err(e) => {
                        crate::progress(&format!("{conns}x{window} {}: {e}", kind.label()));
                        errors[i].get_or_insert(e);
                    }
                }
            }
        }
        let pick = |i: usize, f: fn(&Sample) -> f64| -> Cell {
            if let Err(e) = &targets[i].1 {
                return Err(e.clone());
            }
            let v: Vec<f64> = samples[i].iter().map(f).collect();
            median(&v).ok_or_else(|| errors[i].clone().unwrap_or_else(|| "no run".into()))
        };
        let lvl = format!("{conns} conn × {window} in flight");
        table.push(
            format!("auth req/s, {lvl}"),
            pick(0, |s| s.rate),
            pick(1, |s| s.rate),
            0,
            Goal::RatioAtLeast(1.0),
        );
        table.push(
            format!("p50 latency ms, {lvl}"),
            pick(0, |s| s.p50),
            pick(1, |s| s.p50),
            2,
            Goal::None,
        );
        table.push(
            format!("p99 latency ms, {lvl}"),
            pick(0, |s| s.p99),
            pick(1, |s| s.p99),
            2,
            Goal::None,
        );
        table.push(
            format!("director CPU µs/request, {lvl}"),
            pick(0, |s| s.cpu_us),
            pick(1, |s| s.cpu_us),
            2,
            Goal::RatioAtMost(1.0 / 3.0),
        );
        table.push(
            format!("of which in the kernel %, {lvl}"),
            pick(0, |s| s.sys_share * 100.0),
            pick(1, |s| s.sys_share * 100.0),
            0,
            Goal::None,
        );
    }
}

/// Per-target state of the memory phase.
struct Tracked {
    target: Result<Target, String>,
    created: u64,
    base_rss: u64,
    base_users: u64,
}

/// Users created by auth requests: creation rate, RSS per user, `USER-LIST` time.
pub fn users(plan: &Plan, subjects: &Subjects, table: &mut Table) {
    const BASE: u64 = 1000;
    let mut tracked: Vec<Tracked> = [Kind::Real, Kind::Ours]
        .into_iter()
        .map(|k| Tracked {
            target: subjects.start(k),
            created: 0,
            base_rss: 0,
            base_users: 0,
        })
        .collect();
    // Baseline after the first users, so start-up allocations are not counted per user.
    for tr in &mut tracked {
        if let Err(e) = fill(tr, BASE, plan) {
            tr.target = Err(e);
            continue;
        }
        if let Ok(t) = &tr.target {
            tr.base_rss = t.rss().unwrap_or(0);
            tr.base_users = admin::user_list(&t.admin_socket())
                .map(|l| l.users)
                .unwrap_or(tr.created);
        }
    }
    let last = plan.user_steps.last().copied().unwrap_or(0);
    for &step in &plan.user_steps {
        let mut rate: [Cell; 2] = [Err(String::new()), Err(String::new())];
        let mut cpu: [Cell; 2] = rate.clone();
        let mut per_user: [Cell; 2] = rate.clone();
        let mut rss_mb: [Cell; 2] = rate.clone();
        for (i, tr) in tracked.iter_mut().enumerate() {
            let kind = if i == 0 { Kind::Real } else { Kind::Ours };
            let t0 = Instant::now();
            let cpu0 = tr
                .target
                .as_ref()
                .ok()
                .and_then(|t| t.cpu_ns().ok())
                .unwrap_or(0);
            let from = tr.created;
            let r = fill(tr, step, plan);
            let elapsed = t0.elapsed().as_secs_f64();
            let t = match (&tr.target, &r) {
                (Ok(t), Ok(())) => t,
                (Err(e), _) | (_, Err(e)) => {
                    let e = e.clone();
                    for c in [&mut rate[i], &mut cpu[i], &mut per_user[i], &mut rss_mb[i]] {
                        *c = Err(e.clone());
                    }
                    continue;
                }
            };
            let made = (tr.created - from) as f64;
            rate[i] = Ok(made / elapsed.max(1e-9));
            cpu[i] = t
                .cpu_ns()
                .map(|c| (c.saturating_sub(cpu0)) as f64 / 1000.0 / made.max(1.0))
                .map_err(|e| e.to_string());
            std::thread::sleep(Duration::from_millis(200));
            let rss = t.rss().map_err(|e| e.to_string());
            rss_mb[i] = rss.clone().map(|b| b as f64 / 1e6);
            let hwm = t.hwm().unwrap_or(0) as f64 / 1e6;
            let listed = admin::user_list(&t.admin_socket());
            per_user[i] = match (&rss, &listed) {
                (Ok(rss), Ok(l)) if l.users > tr.base_users => {
                    Ok((*rss as f64 - tr.base_rss as f64) / (l.users - tr.base_users) as f64)
                }
                (Ok(_), Ok(l)) => Err(format!("USER-LIST lists {} users", l.users)),
                (Err(e), _) => Err(e.clone()),
                (_, Err(e)) => Err(format!("USER-LIST: {}", first_line(&e.to_string()))),
            };
            crate::progress(&format!(
                "{} users {}: {:.0} new users/s, RSS {:.1} MB (peak {hwm:.1}), USER-LIST {}",
                step,
                kind.label(),
                made / elapsed.max(1e-9),
                rss.as_ref().map_or(0.0, |b| *b as f64 / 1e6),
                match &listed {
                    Ok(l) => format!(
                        "{} users, {} bytes in {:.1} ms",
                        l.users,
                        l.bytes,
                        l.elapsed.as_secs_f64() * 1e3
                    ),
                    Err(e) => e.to_string(),
                }
            ));
        }
        let n = human(step);
        let [r0, r1] = rate;
        table.push(
            format!("new users/s (4 × 32), up to {n}"),
            r0,
            r1,
            0,
            Goal::RatioAtLeast(1.0),
        );
        let [c0, c1] = cpu;
        table.push(
            format!("director CPU µs/new user, up to {n}"),
            c0,
            c1,
            2,
            Goal::RatioAtMost(1.0 / 3.0),
        );
        let [m0, m1] = rss_mb;
        table.push(format!("RSS MB at {n} users"), m0, m1, 1, Goal::None);
        let [p0, p1] = per_user;
        table.push(
            format!("RSS bytes/user at {n} users"),
            p0,
            p1,
            1,
            Goal::OursAtMost(40.0),
        );
        if step == last {
            user_list_times(plan, &tracked, &n, table);
        }
    }
}

fn user_list_times(plan: &Plan, tracked: &[Tracked], n: &str, table: &mut Table) {
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut cpu: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut errs: [Option<String>; 2] = [None, None];
    for rep in 0..plan.list_reps {
        if rep > 0 && crate::elapsed() > plan.budget {
            break; // one listing each is enough when time is short
        }
        let order: [usize; 2] = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let Ok(t) = &tracked[i].target else { continue };
            let cpu0 = t.cpu_ns().ok();
            match admin::user_list(&t.admin_socket()) {
                Ok(l) => {
                    times[i].push(l.elapsed.as_secs_f64() * 1e3);
                    if let (Some(c0), Ok(c1)) = (cpu0, t.cpu_ns()) {
                        cpu[i].push(c1.saturating_sub(c0) as f64 / 1e6);
                    }
                }
                Err(e) => {
                    errs[i].get_or_insert(first_line(&e.to_string()));
                }
            }
        }
    }
    let cell = |i: usize, v: &[Vec<f64>; 2]| -> Cell {
        match &tracked[i].target {
            Err(e) => Err(e.clone()),
            Ok(_) => median(&v[i]).ok_or_else(|| errs[i].clone().unwrap_or_default()),
        }
    };
    table.push(
        format!("USER-LIST ms at {n} users (median of {})", plan.list_reps),
        cell(0, &times),
        cell(1, &times),
        1,
        Goal::OursAtMost(1000.0),
    );
    // Wall time on a busy machine is mostly waiting for a core; the CPU time is not.
    table.push(
        format!("USER-LIST director CPU ms at {n} users"),
        cell(0, &cpu),
        cell(1, &cpu),
        0,
        Goal::None,
    );
    // Listing may build the whole reply in memory first: the peak shows what that costs.
    let peak = |i: usize| -> Cell {
        let t = tracked[i].target.as_ref().map_err(Clone::clone)?;
        t.hwm().map(|b| b as f64 / 1e6).map_err(|e| e.to_string())
    };
    table.push(
        format!("peak RSS MB (VmHWM) after USER-LIST at {n} users"),
        peak(0),
        peak(1),
        1,
        Goal::None,
    );
}

/// Creates users by auth requests until `to` exist (or the time limit).
fn fill(tr: &mut Tracked, to: u64, plan: &Plan) -> Result<(), String> {
    let t = tr.target.as_ref().map_err(Clone::clone)?;
    if tr.created >= to {
        return Ok(());
    }
    let left = plan.budget.saturating_sub(crate::elapsed());
    if left < Duration::from_secs(1) {
        return Err(format!(
            "skipped: run time budget of {:?} used up",
            plan.budget
        ));
    }
    let limit = plan.fill_limit.min(left);
    let l = Load {
        socket: t.login_socket(),
        conns: 4,
        window: 32,
        users: Users::Distinct {
            prefix: "u".into(),
            start: tr.created,
        },
        max_requests: to - tr.created,
        max_time: limit,
    };
    let r = load::run(&l).map_err(|e| first_line(&e.to_string()))?;
    tr.created += r.replies();
    if r.fail > 0 || r.without_host > 0 {
        crate::progress(&format!(
            "{}: {} FAIL, {} OK without host= while creating users",
            t.kind.label(),
            r.fail,
            r.without_host
        ));
    }
    if tr.created < to {
        return Err(format!(
            "only {} users created within {:?}",
            tr.created, limit
        ));
    }
    Ok(())
}

/// `100k`, `1M`: a user count for row names.
pub fn human(n: u64) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// The first line of a message (table cells are one line).
pub fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}
