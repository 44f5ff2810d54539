//! Our `directord`, started with the same settings as the real director, as a child process.

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::fake_auth::FakeAuth;
use crate::target::{self, Kind, Owned, Settings, Target};

/// Starts `directord --config <root>/directord.toml`.
pub fn start(settings: &Settings, directord: &Path) -> io::Result<Target> {
    let root = target::make_root(Kind::Ours)?;
    let run = root.join("run");
    let ring = settings.ring.as_ref().map_or(String::new(), |r| {
        format!(
            "servers = \"{}\"\nlisten = \"{}:{}\"\n",
            r.servers, r.me, r.port
        )
    });
    let conf = format!(
        "# director-bench: the same settings as the real director\n\
         base_dir = \"{run}\"\n\n\
         [director]\n\
         mail_servers = \"{mail}\"\n\
         user_expire = \"{expire}\"\n{ring}",
        run = run.display(),
        mail = settings.mail_servers,
        expire = settings.user_expire,
    );
    let conf_path = root.join("directord.toml");
    fs::write(&conf_path, conf)?;
    // The upstream must exist before the first login connection; start it first.
    let auth = FakeAuth::start(&run.join("auth-login"))?;
    let log = fs::File::create(root.join("log/directord.log"))?;
    // BENCH_OURS_WRAPPER="valgrind --tool=callgrind ..." runs directord under a profiler
    // (valgrind runs the program in its own process, so the pid and /proc figures stay valid).
    let wrapper = std::env::var("BENCH_OURS_WRAPPER").unwrap_or_default();
    let mut argv: Vec<&str> = wrapper.split_whitespace().collect();
    let program = argv.first().copied();
    let mut cmd = match program {
        Some(p) => {
            argv.remove(0);
            let mut c = Command::new(p);
            c.args(&argv).arg(directord);
            c
        }
        None => Command::new(directord),
    };
    let mut child = cmd
        .arg("--config")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", directord.display())))?;
    let pid = child.id() as i32;
    let wait = target::wait_for_paths(
        &root,
        &[run.join("login/director"), run.join("director-admin")],
        || matches!(child.try_wait(), Ok(None)),
    );
    let mut t = Target::new(Kind::Ours, pid, root, Owned::Child(child));
    t.attach_auth(auth);
    wait.map(|()| t)
}
