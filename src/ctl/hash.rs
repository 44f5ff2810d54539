//! Client-side user hashing (`director_username_hash`), as doveadm does for `map` and `move`.

use crate::username_hash::{HashFormatError, UsernameHash};

/// Hashes `user` with the hash format `format`; the error is the text doveadm prints after
/// `Failed to expand director_username_hash=<format>: `.
pub fn user_hash(format: &str, user: &[u8]) -> Result<u32, String> {
    UsernameHash::new(format)
        .map(|h| h.hash(user))
        .map_err(|e| expand_error(&e))
}

/// Dovecot's `var_expand` wording for a variable it does not know (`%x` → `'%x'`,
/// `%{foo}` → `'%foo'`); formats Dovecot would accept but we do not get our own text.
fn expand_error(e: &HashFormatError) -> String {
    if e.what == "variable" {
        let name = match e.part.strip_prefix("%{").and_then(|p| p.strip_suffix('}')) {
            Some(inner) => format!("%{inner}"),
            None => e.part.clone(),
        };
        format!("Unknown variable '{name}'")
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_hashes_and_errors() {
        // `doveadm director map -u` values recorded in lab/results/doveadm-director.txt
        assert_eq!(user_hash("%Lu", b"user01"), Ok(3_075_933_655));
        assert_eq!(user_hash("%Lu", b"alice@example.com"), Ok(3_244_357_836));
        // real doveadm: "Unknown variable '%x'" and "Unknown variable '%foo'"
        assert_eq!(user_hash("%x", b"foo"), Err("Unknown variable '%x'".into()));
        assert_eq!(
            user_hash("%{foo}", b"foo"),
            Err("Unknown variable '%foo'".into())
        );
    }
}
