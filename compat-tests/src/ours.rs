//! Locating our own binaries (`directorctl`, `directord`) for tests in this package.
//!
//! Cargo's `CARGO_BIN_EXE_*` only covers binaries of the package under test, so they are
//! looked up in the target directory of the running test binary (`target/<profile>/deps/x`
//! → `target/<profile>/<name>`). `cargo test --workspace` builds them; when testing only this
//! package, run `cargo build --bin directorctl` first.

use std::path::PathBuf;

/// Path of our binary `name` next to the running test binary's profile directory.
pub fn our_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let path = profile_dir.join(name);
    path.is_file().then_some(path)
}

/// Like [`our_binary`], but a missing binary fails under `CI=true` and is a loud skip
/// otherwise.
pub fn require_our_binary(name: &str) -> Option<PathBuf> {
    if let Some(p) = our_binary(name) {
        return Some(p);
    }
    let msg = format!("our `{name}` binary is not built next to this test; run `cargo build --bin {name}` (or `cargo test --workspace`)");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{msg}");
    }
    // Written to fd 2 directly: libtest captures eprintln!, and a skip must be seen.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr().lock(),
        format!("!! SKIPPED: {msg}\n").as_bytes(),
    );
    None
}
