//! The `contrib/dovecot-2.4/` directord examples are valid configurations as shipped (the
//! lab of `dovecot24_login.rs` runs them with its own paths substituted).

use std::process::Command;

use compat_tests::dovecot24::directord_binary;

#[test]
fn directord_accepts_the_contrib_examples() {
    let bin = match directord_binary() {
        Ok(b) => b,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("{e}");
            }
            let _ = std::io::Write::write_all(
                &mut std::io::stderr().lock(),
                format!("!! SKIPPED: {e}\n").as_bytes(),
            );
            return;
        }
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/dovecot-2.4");
    for name in [
        "directord-in-base-dir.toml",
        "directord-outside-base-dir.toml",
    ] {
        let out = Command::new(&bin)
            .arg("--check-config")
            .arg("--config")
            .arg(dir.join(name))
            .output()
            .expect("run directord --check-config");
        assert!(
            out.status.success(),
            "directord --check-config {name}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
