//! Replays every `doveadm director` conversation captured in the lab
//! (`/work/shared/lab/transcripts/doveadm-*.txt`: real doveadm 2.3.19.1 against the real
//! director) against `directorctl`: a fake admin socket (and, for `map`, a fake `auth-userdb`)
//! answers with the director's recorded bytes, checks that directorctl sends exactly what
//! doveadm sent, and directorctl's stdout, stderr and exit code must equal doveadm's.
//!
//! The case table below was generated from those transcripts (arguments, both byte streams,
//! doveadm's printed output split into stdout and stderr by its `Error:`/`Info:` prefixes).

mod directorctl_support;

use directorctl_support::{fake_peer, run_ctl, show, Step};

/// One recorded doveadm invocation.
pub struct LabCase {
    name: &'static str,
    /// Subcommand words (`["ring", "add"]`).
    words: &'static [&'static str],
    /// Arguments after the subcommand, without `-a` (`@USERS@` = the users file).
    args: &'static [&'static str],
    /// Admin connection script (doveadm's bytes expected, director's bytes sent).
    admin: &'static [Step],
    /// auth-userdb connection script, for `map` without `-f`.
    auth: &'static [Step],
    /// doveadm's stdout (`@SOCK@` = the admin socket path).
    stdout: &'static [u8],
    /// doveadm's stderr.
    stderr: &'static [u8],
    /// doveadm's exit code.
    code: i32,
}

/// The users file of the capture run (`lab/capture.sh`).
const USERS: &str = "early1\nearly2\nearly3\ncap01\ncap03\ncap04@example.com\n";

fn replace(hay: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8_lossy(hay).replace(from, to).into_bytes()
}

fn run_case(case: &LabCase) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sock = dir.path().join("director-admin");
    let sock_s = sock.to_str().unwrap().to_string();
    let users = dir.path().join("users.txt");
    std::fs::write(&users, USERS).map_err(|e| e.to_string())?;
    let admin = (!case.admin.is_empty()).then(|| fake_peer(&sock, case.admin.to_vec()));
    let auth = (!case.auth.is_empty())
        .then(|| fake_peer(&dir.path().join("auth-userdb"), case.auth.to_vec()));
    let base = format!("base_dir={}", dir.path().display());
    let mut args: Vec<String> = vec!["-o".into(), base];
    args.extend(case.words.iter().map(|w| w.to_string()));
    args.push("-a".into());
    args.push(sock_s.clone());
    args.extend(
        case.args
            .iter()
            .map(|a| a.replace("@USERS@", users.to_str().unwrap())),
    );
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_ctl(&argv);
    for peer in [admin, auth].into_iter().flatten() {
        peer.join().map_err(|_| "peer panicked".to_string())??;
    }
    let want_out = replace(case.stdout, "@SOCK@", &sock_s);
    if out.stdout != want_out || out.stderr != case.stderr || out.code != case.code {
        return Err(format!(
            "stdout:\n{}\nwanted:\n{}\nstderr:\n{}\nwanted:\n{}\ncode {} wanted {}",
            show(&out.stdout),
            show(&want_out),
            show(&out.stderr),
            show(case.stderr),
            out.code,
            case.code
        ));
    }
    Ok(())
}

#[test]
fn every_lab_conversation_matches_doveadm() {
    let mut failures = Vec::new();
    for case in CASES {
        if let Err(e) = run_case(case) {
            failures.push(format!("== {}: {e}", case.name));
        }
    }
    assert!(CASES.len() >= 30, "case table shrank");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const CASES: &[LabCase] = &[
    LabCase {
        name: "add-tag",
        words: &["add"],
        args: &["-t", "tagA", "127.0.1.5"],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-SET\t127.0.1.5@tagA\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "add",
        words: &["add"],
        args: &["127.0.1.4", "50"],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-SET\t127.0.1.4\t50\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "down-unknown",
        words: &["down"],
        args: &["127.0.9.9"],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-DOWN\t127.0.9.9\n"), (false, b"NOTFOUND\n")],
        auth: &[],
        stdout: b"",
        stderr: b"Error: 127.0.9.9: doesn't exist\n",
        code: 68,
    },
    LabCase {
        name: "down_1",
        words: &["down"],
        args: &["127.0.1.1"],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-DOWN\t127.0.1.1\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "down_2",
        words: &["status"],
        args: &[],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-LIST\n"), (false, b"127.0.1.1\t100\t2\t\tD\t1795955888\n"), (false, b"127.0.1.2\t100\t3\t\tU\t0\n"), (false, b"127.0.1.3\t100\t1\t\tU\t0\n"), (false, b"127.0.1.4\t10\t0\t\tU\t0\n"), (false, b"127.0.1.5\t100\t0\ttagA\tU\t0\n"), (false, b"\n")],
        auth: &[],
        stdout: b"mail server ip tag  vhosts state state changed       users           \n127.0.1.1           100    down  2026-11-29 12:38:08 2               \n127.0.1.2           100    up    -                   3               \n127.0.1.3           100    up    -                   1               \n127.0.1.4           10     up    -                   0               \n127.0.1.5      tagA 100    up    -                   0               \n",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "dump",
        words: &["dump"],
        args: &[],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-LIST\n"), (false, b"127.0.1.1\t100\t2\t\tU\t1795955889\n"), (false, b"127.0.1.2\t100\t2\t\tU\t0\n"), (false, b"127.0.1.3\t100\t0\t\tU\t0\n"), (false, b"\n"), (true, b"HOST-LIST-REMOVED\n"), (false, b"\n")],
        auth: &[],
        stdout: b"doveadm director add -a @SOCK@ 127.0.1.1 100\ndoveadm director add -a @SOCK@ 127.0.1.2 100\ndoveadm director add -a @SOCK@ 127.0.1.3 100\n",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "flush-all",
        words: &["flush"],
        args: &["all"],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-RESET-USERS\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "flush-force",
        words: &["flush"],
        args: &["-F", "127.0.1.3"],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-FLUSH\t127.0.1.3\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "flush",
        words: &["flush"],
        args: &["127.0.1.2"],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-RESET-USERS\t127.0.1.2\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "kick-alt",
        words: &["kick"],
        args: &["-f", "director_tag", "foo"],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"USER-KICK-ALT\tdirector_tag\tfoo\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "kick",
        words: &["kick"],
        args: &["cap03"],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"USER-KICK\tcap03\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "map-f",
        words: &["map"],
        args: &["-f", "@USERS@"],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"USER-LIST\n"), (false, b"1074742808\t1795956766\t127.0.1.1\n"), (false, b"706409731\t1795956766\t127.0.1.2\n"), (false, b"1642137491\t1795956766\t127.0.1.1\n"), (false, b"3131388798\t1795956776\t127.0.1.2\n"), (false, b"1180792497\t1795956777\t127.0.1.2\n"), (false, b"360517446\t1795956777\t127.0.1.3\n"), (false, b"\n")],
        auth: &[],
        stdout: b"user                      hash       mail server ip expire time        \nearly1                    1074742808 127.0.1.1      2026-11-29 12:52:46\nearly2                    706409731  127.0.1.2      2026-11-29 12:52:46\nearly3                    1642137491 127.0.1.1      2026-11-29 12:52:46\ncap03                     3131388798 127.0.1.2      2026-11-29 12:52:56\ncap01                     1180792497 127.0.1.2      2026-11-29 12:52:57\ncap04@example.com         360517446  127.0.1.3      2026-11-29 12:52:57\n",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "map-h",
        words: &["map"],
        args: &["-h", "-f", "@USERS@", "1180792497"],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n")],
        auth: &[],
        stdout: b"cap01                                     \n",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "map-host",
        words: &["map"],
        args: &["-f", "@USERS@", "127.0.1.1"],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"USER-LIST\t127.0.1.1\n"), (false, b"1074742808\t1795956766\t127.0.1.1\n"), (false, b"1642137491\t1795956766\t127.0.1.1\n"), (false, b"\n")],
        auth: &[],
        stdout: b"user                 hash       mail server ip expire time        \nearly1               1074742808 127.0.1.1      2026-11-29 12:52:46\nearly3               1642137491 127.0.1.1      2026-11-29 12:52:46\n",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "map-u",
        words: &["map"],
        args: &["-u", "cap01"],
        admin: &[],
        auth: &[],
        stdout: b"1180792497                                   \n",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "map",
        words: &["map"],
        args: &[],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"USER-LIST\n"), (false, b"1074742808\t1795956766\t127.0.1.1\n"), (false, b"706409731\t1795956766\t127.0.1.2\n"), (false, b"1642137491\t1795956766\t127.0.1.1\n"), (false, b"3131388798\t1795956776\t127.0.1.2\n"), (false, b"1180792497\t1795956777\t127.0.1.2\n"), (false, b"360517446\t1795956777\t127.0.1.3\n"), (false, b"\n")],
        auth: &[(true, b"VERSION\t1\t0\n"), (true, b"LIST\t1\n"), (false, b"VERSION\t1\t1\n"), (false, b"SPID\t29008\n"), (false, b"DONE\t1\tfail\n")],
        stdout: b"user                  hash       mail server ip expire time        \n<unknown>             1074742808 127.0.1.1      2026-11-29 12:52:46\n<unknown>             706409731  127.0.1.2      2026-11-29 12:52:46\n<unknown>             1642137491 127.0.1.1      2026-11-29 12:52:46\n<unknown>             3131388798 127.0.1.2      2026-11-29 12:52:56\n<unknown>             1180792497 127.0.1.2      2026-11-29 12:52:57\n<unknown>             360517446  127.0.1.3      2026-11-29 12:52:57\n",
        stderr: b"Error: auth-master: userdb list: User listing returned failure\nError: user listing failed\n",
        code: 75,
    },
    LabCase {
        name: "move-unknown-host",
        words: &["move"],
        args: &["cap01", "127.0.9.9"],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"USER-MOVE\t1180792497\t127.0.9.9\n"), (false, b"NOTFOUND\n")],
        auth: &[],
        stdout: b"",
        stderr: b"Error: Host '127.0.9.9' doesn't exist\n",
        code: 68,
    },
    LabCase {
        name: "move_1",
        words: &["status"],
        args: &["cap01"],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"USER-LOOKUP\tcap01\t\n"), (false, b"127.0.1.2\t1795956792\t127.0.1.2\t127.0.1.2\n")],
        auth: &[],
        stdout: b"Current: 127.0.1.2 (expires 2026-11-29 12:53:12)\nHashed: 127.0.1.2\nInitial config: 127.0.1.2\n",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "move_2",
        words: &["move"],
        args: &["cap01", "127.0.1.3"],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"USER-MOVE\t1180792497\t127.0.1.3\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "move_3",
        words: &["status"],
        args: &["cap01"],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"USER-LOOKUP\tcap01\t\n"), (false, b"127.0.1.3\t1795956792\t127.0.1.2\t127.0.1.2\n")],
        auth: &[],
        stdout: b"Current: 127.0.1.3 (expires 2026-11-29 12:53:12)\nHashed: 127.0.1.2\nInitial config: 127.0.1.2\n",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "remove-tagged",
        words: &["remove"],
        args: &["127.0.1.5"],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-REMOVE\t127.0.1.5\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "remove",
        words: &["remove"],
        args: &["127.0.1.4"],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-REMOVE\t127.0.1.4\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "ring-add",
        words: &["ring", "add"],
        args: &["127.0.0.4", "9090"],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"DIRECTOR-ADD\t127.0.0.4\t9090\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "ring-remove-unknown",
        words: &["ring", "remove"],
        args: &["127.0.0.9", "9090"],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"DIRECTOR-REMOVE\t127.0.0.9\t9090\n"), (false, b"NOTFOUND\n")],
        auth: &[],
        stdout: b"",
        stderr: b"Error: Not found\n",
        code: 68,
    },
    LabCase {
        name: "ring-remove",
        words: &["ring", "remove"],
        args: &["127.0.0.4", "9090"],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"DIRECTOR-REMOVE\t127.0.0.4\t9090\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "ring-status",
        words: &["ring", "status"],
        args: &[],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"DIRECTOR-LIST\n"), (false, b"127.0.0.2\t9090\tself\t0\tring synced\t0\n"), (false, b"127.0.0.3\t9090\tleft\t0\tsynced\t0\t449\t311\t0\t18\t1795955881\t1795955881\n"), (false, b"127.0.0.3\t9090\tright\t0\tsynced\t0\t109\t671\t0\t239\t1795955881\t1795955881\n"), (false, b"\n")],
        auth: &[],
        stdout: b"director ip port type last failed status    ping ms input output buffered buffered peak last read  last write\n127.0.0.2  9090 self never    ring synced 0    -   -    -     -       -          -         \n127.0.0.3  9090 left never    synced    0    449 311  0     18      2026-11-29 12:38:01 2026-11-29 12:38:01\n127.0.0.3  9090 right never    synced    0    109 671  0     239     2026-11-29 12:38:01 2026-11-29 12:38:01\n",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "status-user-unknown",
        words: &["status"],
        args: &["nobody"],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"USER-LOOKUP\tnobody\t\n"), (false, b"\t0\t127.0.1.2\t127.0.1.2\n")],
        auth: &[],
        stdout: b"Current: n/a (expires -1)\nHashed: 127.0.1.2\nInitial config: 127.0.1.2\n",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "status-user",
        words: &["status"],
        args: &["cap01"],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"USER-LOOKUP\tcap01\t\n"), (false, b"127.0.1.2\t1795956777\t127.0.1.2\t127.0.1.2\n")],
        auth: &[],
        stdout: b"Current: 127.0.1.2 (expires 2026-11-29 12:52:57)\nHashed: 127.0.1.2\nInitial config: 127.0.1.2\n",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "status",
        words: &["status"],
        args: &[],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-LIST\n"), (false, b"127.0.1.1\t100\t2\t\tU\t0\n"), (false, b"127.0.1.2\t100\t3\t\tU\t0\n"), (false, b"127.0.1.3\t100\t1\t\tU\t0\n"), (false, b"\n")],
        auth: &[],
        stdout: b"mail server ip tag vhosts state state changed users              \n127.0.1.1          100    up    -             2                  \n127.0.1.2          100    up    -             3                  \n127.0.1.3          100    up    -             1                  \n",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "up",
        words: &["up"],
        args: &["127.0.1.1"],
        admin: &[(true, b"VERSION\tdirector-doveadm\t1\t0\n"), (false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-UP\t127.0.1.1\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
    LabCase {
        name: "update-unknown",
        words: &["update"],
        args: &["127.0.9.9", "10"],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-UPDATE\t127.0.9.9\t10\n"), (false, b"NOTFOUND\n")],
        auth: &[],
        stdout: b"",
        stderr: b"Error: 127.0.9.9: doesn't exist\n",
        code: 75,
    },
    LabCase {
        name: "update",
        words: &["update"],
        args: &["127.0.1.4", "10"],
        admin: &[(false, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"VERSION\tdirector-doveadm\t1\t0\n"), (true, b"HOST-UPDATE\t127.0.1.4\t10\n"), (false, b"OK\n")],
        auth: &[],
        stdout: b"",
        stderr: b"",
        code: 0,
    },
];
