//! `director-bench`: the real Dovecot 2.3 director and our `directord` side by side, with the
//! same configuration and the same instant fake auth server behind both, on loopback.
//!
//! ```text
//! director-bench [--quick] [--directord PATH] [--only real|ours] [--levels CxW,...]
//!                [--reps N] [--skip-throughput] [--skip-users] [--skip-ring]
//!                [--skip-e2e] [--ring-users N,...]
//! ```
//!
//! Needs root (a private Dovecot master) and Dovecot 2.3 (`/usr/sbin/dovecot`). `directord` is
//! looked for next to this binary unless `--directord` says otherwise, so
//! `cargo build --release -p director -p director-bench` builds both. Prints progress on
//! stderr and a Markdown table on stdout. See BENCHMARKS.md.

mod admin;
mod b64;
mod e2e;
mod fake_auth;
mod imap_backend;
mod load;
mod ours;
mod phases;
mod procstat;
mod real;
mod report;
mod ring;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use phases::{Plan, Subjects};
use report::Table;
use target::Settings;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Whether SIGINT/SIGTERM arrived: every load loop stops early, then targets are stopped.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Time since the program started.
pub fn elapsed() -> std::time::Duration {
    START.get_or_init(Instant::now).elapsed()
}

/// A progress line on stderr, with the seconds since start.
pub fn progress(msg: &str) {
    let t = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("[{t:6.1}s] {msg}");
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

const USAGE: &str = "usage: director-bench [--quick] [--directord PATH] [--only real|ours]\n\
    [--levels CxW,...] [--reps N] [--skip-throughput] [--skip-users] [--skip-ring]\n\
    [--skip-e2e] [--ring-users N,...]\n\
    env: BENCH_OURS_WRAPPER=\"valgrind --tool=callgrind\" runs directord under a profiler;\n\
    BENCH_KEEP=1 keeps the instances' directories (configs, logs)";

fn main() -> ExitCode {
    START.get_or_init(Instant::now);
    let mut quick = false;
    let mut directord = None;
    let mut only = None;
    let mut levels = None;
    let mut reps = None;
    let mut skip_users = false;
    let mut skip_ring = false;
    let mut skip_e2e = false;
    let mut ring_users = None;
    let mut skip_throughput = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--directord" => match args.next() {
                Some(p) => directord = Some(PathBuf::from(p)),
                None => return usage("--directord needs a path"),
            },
            "--only" => match args.next().as_deref() {
                Some("real") => only = Some(target::Kind::Real),
                Some("ours") => only = Some(target::Kind::Ours),
                _ => return usage("--only needs real or ours"),
            },
            "--levels" => match args.next().as_deref().map(parse_levels) {
                Some(Some(l)) => levels = Some(l),
                _ => return usage("--levels needs e.g. 1x1,4x32"),
            },
            "--reps" => match args.next().and_then(|n| n.parse::<usize>().ok()) {
                Some(n) if (1..=20).contains(&n) => reps = Some(n),
                _ => return usage("--reps needs 1..20"),
            },
            "--skip-users" => skip_users = true,
            "--skip-ring" => skip_ring = true,
            "--skip-e2e" => skip_e2e = true,
            "--ring-users" => match args.next().as_deref().map(parse_counts) {
                Some(Some(c)) => ring_users = Some(c),
                _ => return usage("--ring-users needs e.g. 100000,1000000"),
            },
            "--skip-throughput" => skip_throughput = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let directord = directord.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("directord")))
            .unwrap_or_else(|| PathBuf::from("directord"))
    });
    if !directord.is_file() {
        eprintln!(
            "director-bench: {} not found; build it with `cargo build --release -p director` or pass --directord",
            directord.display()
        );
        return ExitCode::from(2);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "director-bench: must run as root (the real director needs a private Dovecot master)"
        );
        return ExitCode::from(2);
    }
    let dovecot = match real::version() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("director-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }

    let mut plan = if quick { Plan::quick() } else { Plan::full() };
    if let Some(l) = levels {
        plan.levels = l;
    }
    if let Some(n) = reps {
        plan.reps = n;
        plan.ring.reps = n;
        plan.e2e.reps = n;
    }
    if let Some(c) = ring_users {
        plan.ring.steps = c;
    }
    let settings = Settings {
        mail_servers: "127.0.1.1-127.0.1.3".into(),
        user_expire: "15 min".into(),
        ring: None,
    };
    let subjects = Subjects {
        settings: &settings,
        directord: &directord,
        only,
    };
    let load_before = loadavg();
    progress(&format!(
        "{} run; Dovecot {dovecot}; directord {}; load average {load_before}",
        if quick { "quick" } else { "full" },
        directord.display()
    ));
    let mut table = Table::default();
    if !skip_throughput {
        phases::throughput(&plan, &subjects, &mut table);
    }
    if !interrupted() && !skip_users {
        phases::users(&plan, &subjects, &mut table);
    }
    if !interrupted() && !skip_ring {
        ring::ring_join(&plan.ring, &subjects, &mut table);
    }
    if !interrupted() && !skip_e2e {
        e2e::end_to_end(&plan.e2e, &subjects, &mut table);
    }
    let took = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    println!("## director-bench{}\n", if quick { " --quick" } else { "" });
    println!("- machine: {}", machine());
    println!("- Dovecot {dovecot}; ours: {}", directord.display());
    println!(
        "- settings (both): director_mail_servers = {}, director_user_expire = {}, stand-alone",
        settings.mail_servers, settings.user_expire
    );
    println!(
        "- load average before: {load_before}; after: {}; run took {took:.0} s\n",
        loadavg()
    );
    println!("{}", table.markdown());
    if interrupted() {
        eprintln!("director-bench: interrupted; partial results");
        return ExitCode::from(130);
    }
    ExitCode::SUCCESS
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("director-bench: {msg}\n{USAGE}");
    ExitCode::from(2)
}

/// `1000,100000` → [1000, 100000]; each count 1..=10M.
fn parse_counts(text: &str) -> Option<Vec<u64>> {
    text.split(',')
        .map(|n| {
            n.parse::<u64>()
                .ok()
                .filter(|n| (1..=10_000_000).contains(n))
        })
        .collect()
}

/// `1x1,4x32` → [(1, 1), (4, 32)]; each number 1..=1000.
fn parse_levels(text: &str) -> Option<Vec<(usize, usize)>> {
    let num = |s: &str| s.parse::<usize>().ok().filter(|n| (1..=1000).contains(n));
    text.split(',')
        .map(|lvl| {
            let (c, w) = lvl.split_once('x')?;
            Some((num(c)?, num(w)?))
        })
        .collect()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores, {cpu}, Linux {}", kernel.trim())
}

#[cfg(test)]
mod tests {
    use super::{parse_counts, parse_levels};

    #[test]
    fn levels() {
        assert_eq!(parse_levels("1x1,4x32"), Some(vec![(1, 1), (4, 32)]));
        assert_eq!(parse_levels("8x64"), Some(vec![(8, 64)]));
        assert_eq!(parse_levels("0x1"), None);
        assert_eq!(parse_levels("4*32"), None);
        assert_eq!(parse_levels(""), None);
    }

    #[test]
    fn counts() {
        assert_eq!(parse_counts("1000,100000"), Some(vec![1000, 100_000]));
        assert_eq!(parse_counts("0"), None);
        assert_eq!(parse_counts("1k"), None);
    }
}
