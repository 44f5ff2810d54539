//! The harness itself against real Dovecot: a private director answers as the spec's
//! [verified] vectors say, and the recording relay sees doveadm's exact bytes.

use std::time::Duration;

use compat_tests::admin::AdminClient;
use compat_tests::relay::{Access, Leg, Relay};
use compat_tests::transcript::Recorder;
use compat_tests::{require_dovecot, InstanceBuilder};

const TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn private_director_answers_and_relay_records() {
    let Some(dovecot) = require_dovecot() else {
        return;
    };
    let mut dir = InstanceBuilder::director("harness", "10.0.0.1-10.0.0.3")
        .start(&dovecot)
        .expect("start director");
    let admin = dir.path("director-admin");

    // user-directory.md §4.1 (verified): alice -> 10.0.0.2, john@example.com -> 10.0.0.3.
    let mut c = AdminClient::connect(&admin, TIMEOUT).expect("admin connect");
    assert_eq!(
        c.request(b"USER-LOOKUP\talice").unwrap(),
        b"\t0\t10.0.0.2\t10.0.0.2"
    );
    assert_eq!(
        c.request(b"USER-LOOKUP\tjohn@example.com\t").unwrap(),
        b"\t0\t10.0.0.3\t10.0.0.3"
    );
    c.send(b"HOST-LIST").unwrap();
    let hosts = c.read_list().unwrap();
    assert_eq!(
        hosts,
        [
            &b"10.0.0.1\t100\t0\t\tU\t0"[..],
            b"10.0.0.2\t100\t0\t\tU\t0",
            b"10.0.0.3\t100\t0\t\tU\t0"
        ]
    );
    let replies = c
        .pipeline(&[b"USER-LOOKUP\tbob".to_vec(), b"USER-LOOKUP\teve".to_vec()])
        .unwrap();
    assert_eq!(
        replies,
        [&b"\t0\t10.0.0.2\t10.0.0.2"[..], b"\t0\t10.0.0.1\t10.0.0.1"]
    );
    drop(c);

    let rec = Recorder::new();
    let relay = Relay::unix(
        &dir.root().join("admin-relay"),
        &admin,
        &rec,
        Leg::new("director-admin", "doveadm", "director"),
        Access::OPEN,
    )
    .unwrap();
    let relay_path = dir.root().join("admin-relay");
    let out = dir
        .doveadm()
        .args(["director", "status", "alice", "-a"])
        .arg(&relay_path)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Current: n/a (expires -1)\nHashed: 10.0.0.2\nInitial config: 10.0.0.2\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The director closes after doveadm does; let the relay see both EOFs.
    assert!(rec.wait_idle(TIMEOUT), "relayed connection never closed");
    drop(relay);
    let rows: Vec<String> = rec
        .take()
        .into_iter()
        .filter(|r| r.starts_with('+'))
        .collect();
    // Both sides send VERSION at once, so only each direction's own order is fixed.
    let direction = |dir: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r.contains(&format!(" director-admin#1 {dir} ")))
            .map(|r| r.splitn(4, ' ').nth(3).unwrap().to_string())
            .collect()
    };
    assert_eq!(
        direction("doveadm->director"),
        [
            "VERSION\\tdirector-doveadm\\t1\\t0\\n",
            "USER-LOOKUP\\talice\\t\\n"
        ],
        "{rows:#?}"
    );
    assert_eq!(
        direction("director->doveadm"),
        [
            "VERSION\\tdirector-doveadm\\t1\\t0\\n",
            "\\t0\\t10.0.0.2\\t10.0.0.2\\n"
        ],
        "{rows:#?}"
    );
    assert_eq!(rows.len(), 4, "{rows:#?}");

    let pid = dir.master_pid().unwrap();
    dir.stop();
    assert!(
        !compat_tests::instance::alive(pid),
        "master {pid} still running"
    );
}
