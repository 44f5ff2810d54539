//! The two settings directorctl needs, read from the project's TOML config (`-c FILE`):
//! top-level `base_dir` and `[director] username_hash`, overridable with `-o key=value`
//! (`base_dir=…`, `director_username_hash=…`). Every other key is ignored.

use serde::Deserialize;

/// doveadm's compiled-in `base_dir` on Debian.
pub const DEFAULT_BASE_DIR: &str = "/run/dovecot";
/// Dovecot's default `director_username_hash`.
pub const DEFAULT_USERNAME_HASH: &str = "%Lu";

/// Effective client settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Directory holding `director-admin` and `auth-userdb`.
    pub base_dir: String,
    /// The hash format used for `map` and `move`.
    pub username_hash: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            base_dir: DEFAULT_BASE_DIR.to_string(),
            username_hash: DEFAULT_USERNAME_HASH.to_string(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    base_dir: Option<String>,
    #[serde(default)]
    director: DirectorSection,
}

#[derive(Debug, Default, Deserialize)]
struct DirectorSection {
    username_hash: Option<String>,
}

impl Settings {
    /// Applies the config file `path` on top of the current values.
    pub fn load_file(&mut self, path: &str) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("open({path}) failed: {}", super::resolve::io_strerror(&e)))?;
        self.load_str(&text)
            .map_err(|e| format!("Error in configuration file {path}: {e}"))
    }

    /// Applies TOML `text` on top of the current values.
    pub fn load_str(&mut self, text: &str) -> Result<(), String> {
        let cfg: FileConfig = toml::from_str(text).map_err(|e| e.message().to_string())?;
        if let Some(b) = cfg.base_dir {
            self.base_dir = b;
        }
        if let Some(h) = cfg.director.username_hash {
            self.username_hash = h;
        }
        Ok(())
    }

    /// Applies one `-o key=value` override.
    pub fn apply_override(&mut self, kv: &str) -> Result<(), String> {
        let Some((key, value)) = kv.split_once('=') else {
            return Err(format!("Invalid -o parameter: {kv}"));
        };
        match key {
            "base_dir" => self.base_dir = value.to_string(),
            "director_username_hash" => self.username_hash = value.to_string(),
            // doveadm accepts any setting; the others do not affect the director commands
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_what_it_needs() {
        let mut s = Settings::default();
        s.load_str(
            "base_dir = \"/tmp/x\"\nlisten = 1\n[director]\nusername_hash = \"%Ln\"\nmail_servers = [\"a\"]\n[other]\nk = 2\n",
        )
        .unwrap();
        assert_eq!(s.base_dir, "/tmp/x");
        assert_eq!(s.username_hash, "%Ln");
        let mut s = Settings::default();
        s.load_str("").unwrap();
        assert_eq!(s, Settings::default());
        assert!(s.load_str("base_dir = 5").is_err());
        s.apply_override("director_username_hash=%Lu@x").unwrap();
        assert_eq!(s.username_hash, "%Lu@x");
        assert!(s.apply_override("nokey").is_err());
    }
}
