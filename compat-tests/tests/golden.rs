//! Our host choice against the committed golden answers of a real Dovecot director
//! (`compat-tests/golden/user-hosts.txt`, see `compat_tests::golden`). Needs no Dovecot, so
//! the comparison also runs where Dovecot is not installed; `hash_vs_dovecot.rs` does the
//! same live, with more names.

use std::collections::BTreeMap;

use compat_tests::golden::{golden_path, golden_users, parse};
use compat_tests::hostsets::{our_choice, HOST_SETS};
use director::username_hash::UsernameHash;

#[test]
fn host_choice_matches_golden_file() {
    let text = std::fs::read_to_string(golden_path()).expect("committed golden file");
    let rows = parse(&text).expect("golden file parses");
    // Every (set, tag, name) must be there: a truncated file would prove less than it claims.
    let names = golden_users().len();
    let expected: usize = HOST_SETS.iter().map(|s| s.tags.len() * names).sum();
    assert_eq!(rows.len(), expected, "golden rows");

    let hasher = UsernameHash::new("%Lu").unwrap();
    let mut dirs: BTreeMap<&str, _> = HOST_SETS
        .iter()
        .map(|s| (s.name, s.our_directory()))
        .collect();
    let mut mismatches = Vec::new();
    for row in &rows {
        let dir = dirs
            .get_mut(row.set.as_str())
            .unwrap_or_else(|| panic!("unknown set {}", row.set));
        let ours = our_choice(dir, &hasher, &row.user, &row.tag);
        if ours != row.choice {
            mismatches.push(format!(
                "{} tag {:?} user {:?}: dovecot {:?}, ours {ours:?}",
                row.set,
                row.tag,
                row.user.escape_ascii().to_string(),
                row.choice
            ));
        }
    }
    println!(
        "golden: {} USER-LOOKUP answers of a real director checked, {} mismatches",
        rows.len(),
        mismatches.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
