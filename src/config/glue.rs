//! Thin adapters from the config validator to the project's value parsers.
//!
//! TEMPORARY bodies: `crate::values` and `crate::mail_hosts` are being written by another
//! helper; until they land these accept Dovecot's common forms so the daemon can run. Each
//! function will become a one-line call into those modules.

use std::time::Duration;

/// Dovecot's time syntax (`settings.md` §1): number + unit prefix of secs/mins/hours/days/weeks.
pub(crate) fn parse_time(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("Invalid time interval: {s}"));
    }
    let n: u64 = t[..digits]
        .parse()
        .map_err(|_| format!("Invalid time interval: {s}"))?;
    let unit = t[digits..].trim().to_ascii_lowercase();
    let mult = if unit.is_empty() {
        if n == 0 {
            return Ok(Duration::ZERO);
        }
        return Err(format!(
            "Time interval '{s}' is missing units (add e.g. 's' for seconds)"
        ));
    } else if "seconds".starts_with(&unit) || "secs".starts_with(&unit) {
        1
    } else if "minutes".starts_with(&unit) || "mins".starts_with(&unit) {
        60
    } else if "hours".starts_with(&unit) {
        3600
    } else if "days".starts_with(&unit) {
        86400
    } else if "weeks".starts_with(&unit) {
        7 * 86400
    } else {
        return Err(format!("Invalid time interval: {s}"));
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("Invalid time interval: {s}"))
}

/// Dovecot's size syntax: number + optional B/K/M/G/T (powers of 1024).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = t[..digits]
        .parse()
        .map_err(|_| format!("Invalid size: {s}"))?;
    let unit = t[digits..].trim().to_ascii_uppercase();
    let unit = unit.trim_end_matches('B').trim_end_matches('I');
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("Invalid size: {s}")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("Invalid size: {s}"))
}

/// `director_mail_servers` must yield at least one host.
pub(crate) fn check_mail_servers(s: &str) -> Result<(), String> {
    if s.split_whitespace().next().is_none() {
        return Err("Invalid value for director_mail_servers setting: Empty server list".into());
    }
    Ok(())
}

/// `director_username_hash` must be a format we can expand.
pub(crate) fn check_username_hash(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("director_username_hash must not be empty".into());
    }
    Ok(())
}
