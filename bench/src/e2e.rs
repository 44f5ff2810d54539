//! End to end: IMAP logins per second through a real Dovecot 2.3 `imap-login` proxy, with
//! the real director, with ours, and with no director at all (a static `host=` in the
//! passdb). The difference to the static proxy is the director's overhead.
//!
//! Three private Dovecot instances run side by side with the same settings: `protocols =
//! imap`, `imap-login` with `service_count = 0` and two processes (so process creation
//! does not hide the director), Dovecot's own auth with a static passdb (`nopassword=y
//! proxy=y port=<backend port>`, plus `host=` for the static one). The backends are the
//! bench's fake IMAP servers on three loopback addresses ([`crate::imap_backend`]). The
//! client logs in and out on fresh connections from a few threads, variants taking turns.

use std::collections::HashMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use compat_tests::loopback::free_ip;
use compat_tests::mailclient::LineClient;
use compat_tests::{Dovecot, Instance, InstanceBuilder};

use crate::imap_backend::Backends;
use crate::phases::{first_line, Subjects};
use crate::procstat;
use crate::report::{median, Cell, Goal, Table};

/// The proxy's IMAP port.
const IMAP_PORT: u16 = 143;
/// The backends' IMAP port.
const BACKEND_PORT: u16 = 10143;
/// Bound on every client read and write.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a SIGTERM-ed `directord` gets before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(8);
/// The overhead target for ours, in percent of the static proxy's logins/s.
const OVERHEAD_TARGET_PCT: f64 = 3.0;

/// How much of the end-to-end figure to measure.
#[derive(Debug, Clone)]
pub struct E2ePlan {
    /// Length of one run.
    pub run_time: Duration,
    /// Runs per variant.
    pub reps: usize,
    /// Client threads, each logging in and out in a loop.
    pub clients: usize,
    /// Usernames picked at random.
    pub pool: u64,
    /// No run starts after this much time since program start.
    pub hard_stop: Duration,
}

/// Which director the proxy asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// None: `host=` comes from the passdb.
    Static,
    /// Dovecot's `service director` in the proxy instance.
    Real,
    /// Our `directord` serving the proxy's `base_dir`.
    Ours,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Static => "static",
            Variant::Real => "real",
            Variant::Ours => "ours",
        }
    }
}

/// A running proxy instance (and our daemon for [`Variant::Ours`]).
struct Proxy {
    variant: Variant,
    // Field order matters: our daemon stops before the master whose base_dir it serves.
    directord: Option<Child>,
    instance: Instance,
}

impl Proxy {
    fn start(
        dovecot: &Dovecot,
        variant: Variant,
        backends: &[Ipv4Addr],
        subjects: &Subjects,
    ) -> Result<Proxy, String> {
        let ip = free_ip(&[IMAP_PORT]).map_err(|e| e.to_string())?;
        let servers: Vec<String> = backends.iter().map(Ipv4Addr::to_string).collect();
        let servers = servers.join(" ");
        let name = format!("bench-e2e-{}", variant.label());
        let builder = match variant {
            Variant::Static => InstanceBuilder::new(&name),
            Variant::Real => InstanceBuilder::director(&name, &servers),
            // Mode 0 disables the built-in director's admin listener, so the path is free
            // for ours (as compat-tests' login lab does).
            Variant::Ours => InstanceBuilder::new(&name).conf(
                "service director {\n  unix_listener director-admin {\n    mode = 0\n  }\n}\n",
            ),
        };
        let (executable, host) = match variant {
            Variant::Static => ("imap-login", format!(" host={}", backends[0])),
            _ => ("imap-login director", String::new()),
        };
        let conf = format!(
            "auth_mechanisms = plain\n\
             director_user_expire = {expire}\n\
             passdb {{\n  driver = static\n  args = nopassword=y proxy=y port={BACKEND_PORT}{host}\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup\n}}\n\
             service imap-login {{\n  executable = {executable}\n  service_count = 0\n  \
             process_min_avail = 2\n  inet_listener imap {{\n    port = {IMAP_PORT}\n  }}\n  \
             inet_listener imaps {{\n    port = 0\n  }}\n}}\n",
            expire = subjects.settings.user_expire,
        );
        let instance = builder
            .listen(IpAddr::V4(ip))
            .protocols("imap")
            .conf(&conf)
            .start(dovecot)
            .map_err(|e| first_line(&e.to_string()))?;
        let mut proxy = Proxy {
            variant,
            directord: None,
            instance,
        };
        if variant == Variant::Ours {
            proxy.directord = Some(start_directord(&proxy.instance, &servers, subjects)?);
        }
        Ok(proxy)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.instance.listen_ip(), IMAP_PORT)
    }

    /// The process doing the director's work, if there is one (yet).
    fn director_pid(&self) -> Option<i32> {
        match self.variant {
            Variant::Static => None,
            Variant::Real => self.instance.child_pid("director"),
            Variant::Ours => self.directord.as_ref().map(|c| c.id() as i32),
        }
    }

    /// CPU nanoseconds so far of every process serving logins: the master, its children
    /// (imap-login, auth, log, config, director, ...) and ours, by pid.
    fn cpu_by_pid(&self) -> HashMap<i32, (String, u64)> {
        let mut out = HashMap::new();
        let mut pids: Vec<(i32, String)> = Vec::new();
        if let Some(master) = self.instance.master_pid() {
            pids.push((master, "master".into()));
            pids.extend(procstat::children(master));
        }
        if let Some(c) = &self.directord {
            pids.push((c.id() as i32, "directord".into()));
        }
        for (p, name) in pids {
            if let Ok(ns) = procstat::cpu_ns(p) {
                out.insert(p, (name, ns));
            }
        }
        out
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.directord.take() {
            compat_tests::stop::stop_child(&mut c, STOP_TIMEOUT);
        }
        if std::env::var_os("BENCH_KEEP").is_some() {
            eprintln!(
                "BENCH_KEEP: {} proxy log:\n{}",
                self.variant.label(),
                self.instance.log()
            );
        }
    }
}

/// Starts `directord` in the proxy's `base_dir` and waits for its login socket.
fn start_directord(
    instance: &Instance,
    servers: &str,
    subjects: &Subjects,
) -> Result<Child, String> {
    let base = instance.base_dir();
    let toml = format!(
        "base_dir = \"{}\"\n[director]\nmail_servers = \"{servers}\"\nuser_expire = \"{}\"\n",
        base.display(),
        subjects.settings.user_expire
    );
    let conf = instance.root().join("directord.toml");
    let log = instance.root().join("log/directord.log");
    let spawn = || -> std::io::Result<Child> {
        fs::write(&conf, toml)?;
        let out = fs::File::create(&log)?;
        Command::new(subjects.directord)
            .arg("--config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
    };
    let mut child = spawn().map_err(|e| format!("directord: {e}"))?;
    let deadline = Instant::now() + crate::target::START_TIMEOUT;
    while fs::symlink_metadata(base.join("login/director")).is_err() {
        if !matches!(child.try_wait(), Ok(None)) || Instant::now() > deadline {
            compat_tests::stop::stop_child(&mut child, STOP_TIMEOUT);
            let text = fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("directord did not start: {}", first_line(&text)));
        }
        thread::sleep(crate::target::POLL);
    }
    Ok(child)
}

/// One run's figures.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    rate: f64,
    cpu_us: f64,
    director_us: f64,
}

/// Measures logins/s and CPU per login for every variant and adds the rows.
pub fn end_to_end(plan: &E2ePlan, subjects: &Subjects, table: &mut Table) {
    let rows = match measure(plan, subjects) {
        Ok(r) => r,
        Err(e) => {
            crate::progress(&format!("end to end: {e}"));
            let e = Err::<f64, String>(e);
            table.push(
                "IMAP logins/s via imap-login + director",
                e.clone(),
                e,
                0,
                Goal::None,
            );
            return;
        }
    };
    let [st, re, ou] = rows;
    let rate = |r: &Result<Vec<Sample>, String>, f: fn(&Sample) -> f64| -> Cell {
        let v: Vec<f64> = r.as_ref().map_err(Clone::clone)?.iter().map(f).collect();
        median(&v).ok_or_else(|| "no run".to_string())
    };
    let static_rate = rate(&st, |s| s.rate);
    let static_cpu = rate(&st, |s| s.cpu_us);
    let overhead = |with: &Cell, without: &Cell, lower_is_better: bool| -> Cell {
        let (w, wo) = (with.clone()?, without.clone()?);
        if wo <= 0.0 {
            return Err("no static figure".into());
        }
        Ok(if lower_is_better {
            (w - wo) / wo * 100.0
        } else {
            (wo - w) / wo * 100.0
        })
    };
    let (real_rate, ours_rate) = (rate(&re, |s| s.rate), rate(&ou, |s| s.rate));
    table.push(
        "IMAP logins/s via imap-login + director",
        real_rate.clone(),
        ours_rate.clone(),
        0,
        Goal::RatioAtLeast(1.0),
    );
    table.push(
        "IMAP logins/s via the same imap-login, static host= (no director; both columns)",
        static_rate.clone(),
        static_rate.clone(),
        0,
        Goal::None,
    );
    table.push(
        "director overhead: % fewer logins/s than static host=",
        overhead(&real_rate, &static_rate, false),
        overhead(&ours_rate, &static_rate, false),
        1,
        Goal::OursAtMost(OVERHEAD_TARGET_PCT),
    );
    let (real_cpu, ours_cpu) = (rate(&re, |s| s.cpu_us), rate(&ou, |s| s.cpu_us));
    table.push(
        "proxy CPU µs/login (imap-login, auth, master, log, director)",
        real_cpu.clone(),
        ours_cpu.clone(),
        0,
        Goal::None,
    );
    table.push(
        "director overhead: % more proxy CPU per login than static host=",
        overhead(&real_cpu, &static_cpu, true),
        overhead(&ours_cpu, &static_cpu, true),
        1,
        Goal::None,
    );
    let share = |r: &Series| -> Cell {
        let v: Vec<f64> = r
            .as_ref()
            .map_err(Clone::clone)?
            .iter()
            .map(|s| s.director_us / s.cpu_us * 100.0)
            .collect();
        median(&v).ok_or_else(|| "no run".to_string())
    };
    table.push(
        "director's share of the proxy's CPU per login %",
        share(&re),
        share(&ou),
        1,
        Goal::None,
    );
    table.push(
        "director CPU µs/IMAP login",
        rate(&re, |s| s.director_us),
        rate(&ou, |s| s.director_us),
        1,
        Goal::RatioAtMost(1.0 / 3.0),
    );
}

type Series = Result<Vec<Sample>, String>;

fn measure(plan: &E2ePlan, subjects: &Subjects) -> Result<[Series; 3], String> {
    let dovecot = Dovecot::locate()?;
    let mut ips = Vec::new();
    while ips.len() < 3 {
        let ip = free_ip(&[BACKEND_PORT]).map_err(|e| e.to_string())?;
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    let backends = Backends::start(&ips, BACKEND_PORT).map_err(|e| format!("backends: {e}"))?;
    let variants = [Variant::Static, Variant::Real, Variant::Ours];
    let proxies: Vec<Result<Proxy, String>> = variants
        .iter()
        .map(|&v| {
            let skip = match v {
                Variant::Static => false,
                Variant::Real => subjects.only == Some(crate::target::Kind::Ours),
                Variant::Ours => subjects.only == Some(crate::target::Kind::Real),
            };
            if skip {
                return Err("skipped (--only)".to_string());
            }
            let p = Proxy::start(&dovecot, v, &ips, subjects);
            if let Err(e) = &p {
                crate::progress(&format!("end to end {}: {e}", v.label()));
            }
            p
        })
        .collect();
    // Warm-up: start the login processes and the director, create most of the pool.
    for p in proxies.iter().flatten() {
        let warm = run_clients(
            p.addr(),
            plan.clients,
            plan.pool,
            Duration::from_millis(700),
        );
        crate::progress(&format!(
            "end to end {}: warm-up {} logins, {} failed",
            p.variant.label(),
            warm.ok,
            warm.failed
        ));
    }
    let mut out: [Series; 3] = [Ok(Vec::new()), Ok(Vec::new()), Ok(Vec::new())];
    for (i, p) in proxies.iter().enumerate() {
        if let Err(e) = p {
            out[i] = Err(e.clone());
        }
    }
    for rep in 0..plan.reps {
        for k in 0..3 {
            let i = (rep + k) % 3; // rotate who goes first
            if crate::interrupted() || crate::elapsed() > plan.hard_stop {
                break;
            }
            let Ok(p) = &proxies[i] else { continue };
            let Ok(series) = &mut out[i] else { continue };
            let dir_pid = p.director_pid();
            let dir0 = dir_pid.and_then(|pid| procstat::cpu_ns(pid).ok());
            let cpu0 = p.cpu_by_pid();
            let r = run_clients(p.addr(), plan.clients, plan.pool, plan.run_time);
            let cpu1 = p.cpu_by_pid();
            let dir1 = dir_pid.and_then(|pid| procstat::cpu_ns(pid).ok());
            // CPU per process name, e.g. both imap-login processes together.
            let mut by_name: Vec<(String, u64)> = Vec::new();
            for (pid, (name, ns)) in &cpu1 {
                let spent = ns.saturating_sub(cpu0.get(pid).map_or(0, |c| c.1));
                match by_name.iter_mut().find(|(n, _)| n == name) {
                    Some(e) => e.1 += spent,
                    None => by_name.push((name.clone(), spent)),
                }
            }
            by_name.sort_by_key(|e| std::cmp::Reverse(e.1));
            let spent: u64 = by_name.iter().map(|e| e.1).sum();
            let logins = r.ok.max(1) as f64;
            let s = Sample {
                rate: r.ok as f64 / r.elapsed.as_secs_f64().max(1e-9),
                cpu_us: spent as f64 / 1000.0 / logins,
                director_us: match (dir0, dir1) {
                    (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1000.0 / logins,
                    _ => f64::NAN,
                },
            };
            let parts: Vec<String> = by_name
                .iter()
                .filter(|e| e.1 > 0)
                .map(|(n, ns)| format!("{n} {:.0}", *ns as f64 / 1000.0 / logins))
                .collect();
            crate::progress(&format!(
                "end to end {}: {:.0} logins/s ({} failed{}), proxy CPU {:.0} µs/login ({}), director {:.1} µs/login",
                p.variant.label(),
                s.rate,
                r.failed,
                r.first_error
                    .as_ref()
                    .map_or(String::new(), |e| format!(": {e}")),
                s.cpu_us,
                parts.join(", "),
                s.director_us
            ));
            if r.ok == 0 {
                out[i] = Err(r.first_error.unwrap_or_else(|| "no login succeeded".into()));
            } else {
                series.push(s);
            }
        }
    }
    crate::progress(&format!(
        "end to end: the backends accepted {} logins in all",
        backends.logins()
    ));
    Ok(out)
}

/// What the client threads saw.
#[derive(Debug, Default)]
struct ClientResult {
    ok: u64,
    failed: u64,
    first_error: Option<String>,
    elapsed: Duration,
}

/// `clients` threads log in and out on fresh connections until `time` is up; each thread
/// uses its own source address in 127.0.2.0/24, so no address runs short of ports.
fn run_clients(addr: SocketAddr, clients: usize, pool: u64, time: Duration) -> ClientResult {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let deadline = t0 + time;
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let (ok, failed) = (ok.clone(), failed.clone());
            thread::spawn(move || -> Option<String> {
                let src = IpAddr::V4(Ipv4Addr::new(127, 0, 2, 1 + (i % 250) as u8));
                let mut rng = 0x2545_f491_4f6c_dd1du64 ^ ((i as u64 + 1) << 32);
                let mut first_error = None;
                while Instant::now() < deadline && !crate::interrupted() {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let user = format!("e2e{:06}", rng % pool.max(1));
                    match login(addr, src, &user) {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            first_error.get_or_insert(e);
                            // A refusing proxy must not turn this into a busy loop.
                            thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
                first_error
            })
        })
        .collect();
    let mut first_error = None;
    for h in handles {
        if let Ok(Some(e)) = h.join() {
            first_error.get_or_insert(e);
        }
    }
    ClientResult {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        first_error,
        elapsed: t0.elapsed(),
    }
}

/// Greeting, `LOGIN`, `LOGOUT`; any other answer is an error.
fn login(addr: SocketAddr, src: IpAddr, user: &str) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let mut c = LineClient::connect(addr, Some(src), IO_TIMEOUT).map_err(io)?;
    let greeting = c.read_line().map_err(io)?;
    if !greeting.starts_with("* OK") {
        return Err(format!("greeting {greeting:?}"));
    }
    let r = c
        .command(&format!("a LOGIN {user} pass"), "a ")
        .map_err(io)?;
    if !r.starts_with("a OK") {
        return Err(format!("LOGIN: {r}"));
    }
    let r = c.command("b LOGOUT", "b ").map_err(io)?;
    if !r.starts_with("b OK") {
        return Err(format!("LOGOUT: {r}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client against the fake backend directly: a login is greeting, LOGIN, LOGOUT.
    #[test]
    fn client_logs_in_to_the_fake_backend() {
        let ip = free_ip(&[BACKEND_PORT]).unwrap();
        let b = Backends::start(&[ip], BACKEND_PORT).unwrap();
        let addr = SocketAddr::from((ip, BACKEND_PORT));
        let r = run_clients(addr, 2, 10, Duration::from_millis(200));
        assert!(r.ok > 0, "{r:?}");
        assert_eq!(r.failed, 0, "{r:?}");
        assert_eq!(b.logins(), r.ok);
    }
}
