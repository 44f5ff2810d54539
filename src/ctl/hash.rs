//! Client-side user hashing (`director_username_hash`), as doveadm does for `map` and `move`.

/// Hashes `user` with the hash format `format`; the error is the expansion failure text.
pub fn user_hash(format: &str, user: &[u8]) -> Result<u32, String> {
    let _ = (format, user);
    Err("username hashing is not available yet".to_string())
}
