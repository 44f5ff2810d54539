//! What `/proc` says about a process: CPU time (utime+stime) and resident memory.

use std::fs;
use std::io;

/// CPU time of a whole process (all threads), in nanoseconds, from `/proc/<pid>/stat`
/// utime+stime. The kernel counts in clock ticks (10 ms at `CLK_TCK` = 100), so runs must be
/// long enough to make that granularity negligible.
pub fn cpu_ns(pid: i32) -> io::Result<u64> {
    cpu_split_ns(pid).map(|(user, sys)| user + sys)
}

/// CPU time of a whole process split into (user, system) nanoseconds.
pub fn cpu_split_ns(pid: i32) -> io::Result<(u64, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // "pid (comm) state ppid ...": comm may contain spaces, so split at the last ')'.
    let tail = stat
        .rsplit_once(')')
        .map(|(_, t)| t)
        .ok_or_else(|| bad(pid, "no ')'"))?;
    let f: Vec<&str> = tail.split_whitespace().collect();
    // After the ')' field 0 is the state (stat field 3); utime and stime are fields 14 and 15.
    let ticks = |i: usize| -> io::Result<u64> {
        f.get(i)
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad(pid, "short stat"))
    };
    let ns = 1_000_000_000 / clock_ticks_per_sec();
    Ok((ticks(11)? * ns, ticks(12)? * ns))
}

/// `VmRSS` of a process in bytes.
pub fn rss_bytes(pid: i32) -> io::Result<u64> {
    status_kb(pid, "VmRSS:").map(|kb| kb * 1024)
}

/// `VmHWM` (peak resident memory) of a process in bytes.
pub fn hwm_bytes(pid: i32) -> io::Result<u64> {
    status_kb(pid, "VmHWM:").map(|kb| kb * 1024)
}

fn status_kb(pid: i32, key: &str) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad(pid, key))
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// The pid of the process named `comm` whose parent is `parent`.
pub fn child_named(parent: i32, comm: &str) -> Option<i32> {
    children(parent)
        .into_iter()
        .find(|(_, name)| name == comm)
        .map(|(pid, _)| pid)
}

/// The direct children of `parent`, as (pid, process name).
pub fn children(parent: i32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head.split_once('(').map(|(_, n)| n).unwrap_or("");
        let ppid = tail.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(parent) {
            out.push((pid, name.to_string()));
        }
    }
    out
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, t)| t.split_whitespace().next())
            .is_some_and(|s| s != "Z"),
        Err(_) => false,
    }
}

/// Sends `sig` to `pid` (a process this program started or whose pid file it read).
pub fn signal(pid: i32, sig: i32) {
    if pid > 1 {
        // SAFETY: kill has no memory-safety preconditions; pid > 1 never targets a group.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

fn bad(pid: i32, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("/proc/{pid}: cannot parse ({what})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id() as i32;
        // Burn a little CPU so the counter is not trivially zero on a fast machine.
        let t0 = std::time::Instant::now();
        let mut x = 0u64;
        while t0.elapsed() < std::time::Duration::from_millis(50) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert!(x != 1);
        assert!(cpu_ns(me).unwrap() > 0);
        let rss = rss_bytes(me).unwrap();
        assert!(rss > 100_000, "rss {rss}");
        assert!(hwm_bytes(me).unwrap() >= rss);
        assert!(alive(me));
    }
}
