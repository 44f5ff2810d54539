//! Seeded random usernames for comparing our user hash and host choice with Dovecot's.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Names that exercise the edges: empty, master-user syntax, spaces, several `@`, non-ASCII,
/// control bytes the admin protocol must escape, and case variants.
pub const SPECIAL: &[&[u8]] = &[
    b"",
    b"alice",
    b"Alice",
    b"ALICE",
    b"alice*master",
    b"Alice@Example.COM",
    b"john@example.com",
    b"JOHN@EXAMPLE.COM",
    b"a b",
    b" leading",
    b"trailing ",
    b"x@y@z",
    b"@",
    b"@domain.example",
    b"user@",
    b"al\tice",
    b"semi;colon,comma",
    b"back\\slash",
    b"ctl\x01byte",
    b"%u%n",
    "ÄÖ@exämple.com".as_bytes(),
    "日本語@例え.jp".as_bytes(),
    "ÉMILE@Straße.DE".as_bytes(),
];

/// Pure-digit names: the admin protocol reads these as hash values, not names.
pub const NUMERIC: &[&[u8]] = &[
    b"0",
    b"1",
    b"007",
    b"12345",
    b"4294967295",
    b"4294967296",
    b"99999999999",
];

const ASCII: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+";
const UNICODE: &[&str] = &[
    "ä", "Ö", "ß", "é", "Ω", "ж", "日", "本", "😀", "ñ", "İ", "ı",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "Example.COM",
    "mail.example.org",
    "exämple.net",
    "x.y",
    "b.c",
];

/// Whether Dovecot's admin protocol would take `name` as a 32-bit hash (`<uint>`).
pub fn as_hash(name: &[u8]) -> Option<u32> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// `count` random names from `seed` (never pure digits), after the [`SPECIAL`] ones.
pub fn generate(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out: Vec<Vec<u8>> = SPECIAL.iter().map(|s| s.to_vec()).collect();
    while out.len() < count {
        let name = random_name(&mut rng);
        if as_hash(&name).is_none() {
            out.push(name);
        }
    }
    out.truncate(count);
    out
}

fn random_name(rng: &mut SmallRng) -> Vec<u8> {
    // Mostly short names; one in twenty is long (up to ~200 bytes).
    let len = if rng.gen_ratio(1, 20) {
        rng.gen_range(60..=190)
    } else {
        rng.gen_range(1..=20)
    };
    let mut name = Vec::with_capacity(len + 24);
    while name.len() < len {
        match rng.gen_range(0..100) {
            0..=84 => name.push(ASCII[rng.gen_range(0..ASCII.len())]),
            85..=94 => name.extend_from_slice(UNICODE[rng.gen_range(0..UNICODE.len())].as_bytes()),
            _ => name.push(b' '),
        }
    }
    // Half the names are e-mail addresses.
    if rng.gen_bool(0.5) {
        name.push(b'@');
        name.extend_from_slice(DOMAINS[rng.gen_range(0..DOMAINS.len())].as_bytes());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_never_numeric() {
        let a = generate(7, 500);
        assert_eq!(a, generate(7, 500));
        assert_eq!(a.len(), 500);
        assert!(a.iter().all(|n| as_hash(n).is_none()));
        assert!(a.iter().any(|n| n.len() > 150));
        assert!(a.iter().any(|n| n.contains(&b'@')));
    }

    #[test]
    fn numeric_names_are_hashes() {
        assert_eq!(as_hash(b"007"), Some(7));
        assert_eq!(as_hash(b"4294967295"), Some(u32::MAX));
        assert_eq!(as_hash(b"4294967296"), None);
        assert_eq!(as_hash(b"12a"), None);
    }
}
