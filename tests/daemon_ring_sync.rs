//! A ring director whose ring is not handshaked or not synced (`auth-proxy.md` §5,
//! `ring-protocol.md` §6.6, `admin-protocol.md` §6.13): requests wait, Dovecot's warnings
//! appear after 2 s, queued requests fail after the 30 s timer with the ring's reason, and
//! continue when the ring syncs. The daemon runs in-process; its clock is advanced and the
//! ring state is set by events, as the ring state machine would.

mod daemon_support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use daemon_support::*;
use director::config::Config;
use director::daemon::events::Event;
use director::daemon::RunningDaemon;

fn log_buffer() -> Arc<Mutex<String>> {
    static LOG: OnceLock<Arc<Mutex<String>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(String::new()));
        let w = buf.clone();
        let make = move || LogWriter(w.clone());
        tracing_subscriber::fmt()
            .with_writer(make)
            .with_ansi(false)
            .with_target(false)
            .init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<String>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().push_str(&String::from_utf8_lossy(b));
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log() -> String {
    log_buffer().lock().unwrap().clone()
}

struct InProc {
    rt: tokio::runtime::Runtime,
    daemon: Option<RunningDaemon>,
    _dir: tempfile::TempDir,
    base: std::path::PathBuf,
}

impl InProc {
    fn start(config: &str) -> InProc {
        log_buffer();
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        let config = Config::from_toml(config, &base).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let daemon = rt.block_on(director::daemon::start(config)).unwrap();
        InProc {
            rt,
            daemon: Some(daemon),
            _dir: dir,
            base,
        }
    }

    /// Sends an owner event and waits until it has been applied (an admin round trip on the
    /// same queue follows it); returns the DIRECTOR-LIST of that round trip.
    fn event(&self, admin: &mut Admin, ev: Event) -> String {
        let owner = self.daemon.as_ref().unwrap().owner().clone();
        assert!(self.rt.block_on(owner.send(ev)));
        admin.list("DIRECTOR-LIST")
    }

    fn advance(&self, admin: &mut Admin, secs: u64) -> String {
        self.event(admin, Event::AdvanceClock(Duration::from_secs(secs)))
    }
}

impl Drop for InProc {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            self.rt.block_on(d.shutdown());
        }
    }
}

fn authreply(path: &std::path::Path) -> std::os::unix::net::UnixStream {
    let mut s = connect(path);
    assert_eq!(
        read_lines(&mut s, 1),
        b"VERSION\tdirector-authreply-server\t1\t0\n"
    );
    s.write_all(b"VERSION\tdirector-authreply-client\t1\t0\n")
        .unwrap();
    s
}

/// No reply arrives on `s` within a short while.
fn silent(s: &mut std::os::unix::net::UnixStream) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut b = [0u8; 64];
    let quiet = matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        || e.kind() == std::io::ErrorKind::TimedOut);
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    quiet
}

fn self_line(list: &str) -> &str {
    list.lines()
        .find(|l| l.contains("\tself\t"))
        .expect("self line")
}

#[test]
fn requests_wait_for_the_ring_and_continue_when_it_syncs() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = InProc::start(&format!(
        "[director]\nmail_servers = \"10.0.0.1-10.0.0.3\"\nlisten = \"127.0.0.1:{port}\"\n\
         servers = \"127.0.0.1 127.0.0.9\"\n[listeners.\"director-authreply\"]\nmode = \"0600\"\n"
    ));
    let mut a = Admin::connect(&d.base.join("director-admin"));
    let mut s = authreply(&d.base.join("director-authreply"));
    let list = a.list("DIRECTOR-LIST");
    assert_eq!(
        list,
        format!("127.0.0.1\t{port}\tself\t0\tring handshaking\t0\n127.0.0.9\t{port}\t\t0\t\n\n")
    );

    // Not handshaked: every request waits; the warning comes after 2 s, once.
    s.write_all(b"OK\t1\tuser=carol\tproxy\n").unwrap();
    assert!(silent(&mut s));
    d.advance(&mut a, 1);
    assert!(!log().contains("Delaying all requests"));
    d.advance(&mut a, 1);
    assert_eq!(
        log()
            .matches("Delaying all requests until all directors have connected")
            .count(),
        1
    );
    // After the 30 s timer: temp_fail with the ring's reason and state.
    d.advance(&mut a, 28);
    assert_eq!(
        show(&read_lines(&mut s, 1)),
        show(b"FAIL\t1\tcode=temp_fail\n")
    );
    // Whole seconds of a wall clock that started mid-second: 30 or 31.
    let logged = log();
    let line = logged
        .lines()
        .find(|l| l.contains("director: User carol host lookup failed: "))
        .expect("timeout logged");
    let (_, msg) = line.split_once("failed: ").unwrap();
    assert!(
        msg.starts_with("Timeout because ring not handshaked - queued for 3")
            && msg.contains(" secs (Ring has never been synced, hash=")
            && msg.ends_with(')'),
        "{line}"
    );

    // A queued request continues when the ring handshakes (and syncs).
    s.write_all(b"OK\t2\tuser=alice\tproxy\n").unwrap();
    assert!(silent(&mut s));
    d.advance(&mut a, 2);
    // Dovecot warns once until the ring handshakes.
    assert_eq!(log().matches("Delaying all requests").count(), 1);
    let list = d.event(
        &mut a,
        Event::RingState {
            handshaked: true,
            synced: true,
        },
    );
    assert_eq!(
        self_line(&list),
        format!("127.0.0.1\t{port}\tself\t0\tring synced\t0")
    );
    assert!(log().contains("Directors have been connected, continuing delayed requests"));
    assert_eq!(
        show(&read_lines(&mut s, 1)),
        show(b"OK\t2\tuser=alice\tproxy\tproxy_refresh=450\thost=10.0.0.2\n")
    );

    // Unsynced: known users are served, new ones wait for the sync.
    let list = d.event(
        &mut a,
        Event::RingState {
            handshaked: true,
            synced: false,
        },
    );
    assert_eq!(
        self_line(&list),
        format!("127.0.0.1\t{port}\tself\t0\tring syncing - last sync 0 secs ago\t0")
    );
    s.write_all(b"OK\t3\tuser=alice\tproxy\n").unwrap();
    assert_eq!(
        show(&read_lines(&mut s, 1)),
        show(b"OK\t3\tuser=alice\tproxy\tproxy_refresh=450\thost=10.0.0.2\n")
    );
    s.write_all(b"OK\t4\tuser=bob\tproxy\n").unwrap();
    assert!(silent(&mut s));
    let list = d.advance(&mut a, 3);
    assert!(self_line(&list).contains("ring syncing - last sync 3 secs ago"));
    assert!(log().contains("Delaying new user requests until ring is synced"));
    d.event(
        &mut a,
        Event::RingState {
            handshaked: true,
            synced: true,
        },
    );
    assert!(
        log().contains(
            "Ring is synced, continuing delayed requests (syncing took 3 secs, hosts_hash="
        ),
        "{}",
        log()
    );
    assert_eq!(
        show(&read_lines(&mut s, 1)),
        show(b"OK\t4\tuser=bob\tproxy\tproxy_refresh=450\thost=10.0.0.2\n")
    );
}

/// `U` or `D` of 10.0.0.1 in HOST-LIST.
fn state_of_first_host(a: &mut Admin) -> String {
    let list = a.list("HOST-LIST");
    let line = list.lines().find(|l| l.starts_with("10.0.0.1\t")).unwrap();
    line.split('\t').nth(4).unwrap().to_string()
}

#[test]
fn admin_changes_wait_for_the_ring_sync() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = InProc::start(&format!(
        "[director]\nmail_servers = \"10.0.0.1-10.0.0.3\"\nlisten = \"127.0.0.1:{port}\"\n\
         servers = \"127.0.0.1 127.0.0.9\"\n"
    ));
    let mut a = Admin::connect(&d.base.join("director-admin"));
    let mut waiting = Admin::connect(&d.base.join("director-admin"));

    // Reads are immediate; a PRE-SYNC command is parked whole, not executed.
    assert_eq!(state_of_first_host(&mut a), "U");
    waiting.s.write_all(b"HOST-DOWN\t10.0.0.1\n").unwrap();
    assert!(silent(&mut waiting.s));
    assert_eq!(state_of_first_host(&mut a), "U");
    // 30 s later: the wait times out and the connection reads commands again.
    d.advance(&mut a, 29);
    assert!(silent(&mut waiting.s));
    d.advance(&mut a, 1);
    assert_eq!(
        show(&read_lines(&mut waiting.s, 1)),
        show(b"Ring sync timed out\n")
    );
    assert_eq!(state_of_first_host(&mut a), "U");

    // Parked again, then run when the ring syncs.
    waiting.s.write_all(b"HOST-DOWN\t10.0.0.1\n").unwrap();
    assert!(silent(&mut waiting.s));
    d.event(
        &mut a,
        Event::RingState {
            handshaked: true,
            synced: true,
        },
    );
    assert_eq!(show(&read_lines(&mut waiting.s, 1)), show(b"OK\n"));
    assert_eq!(state_of_first_host(&mut a), "D");
    // Synced: immediate.
    assert_eq!(waiting.line("HOST-UP\t10.0.0.1"), "OK\n");
}
