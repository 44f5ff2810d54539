//! Two and three real `directord`s on 127.0.0.x form a ring over TCP (`ring-protocol.md`
//! §§3-6): every director's DIRECTOR-LIST says `ring synced`, with its neighbours as left
//! and right connections; a host change made on one director and a user created by a login
//! on one show on all of them, and so does a user moved on one; proxy-notify refreshes on
//! one director keep the user alive on all (`auth-proxy.md` §9).

mod daemon_support;

use std::time::{Duration, Instant};

use std::io::Write;

use daemon_support::{connect, read_lines, Daemon, HOSTS3};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts one director per IP, all listing each other on `port`.
fn ring(ips: &[&str], port: u16) -> Vec<Daemon> {
    ring_with(ips, port, "")
}

/// [`ring`] with extra `[director]` settings lines.
fn ring_with(ips: &[&str], port: u16, extra: &str) -> Vec<Daemon> {
    let servers = ips.join(" ");
    ips.iter()
        .map(|ip| {
            Daemon::start(&format!(
                "{HOSTS3}{extra}listen = \"{ip}:{port}\"\nservers = \"{servers}\"\n\
                 [listeners.\"director-authreply\"]\nmode = \"0600\"\n"
            ))
        })
        .collect()
}

/// Waits (bounded) until every director's self line says `ring synced`; returns the lists.
fn wait_synced(ds: &[Daemon]) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let lists: Vec<String> = ds.iter().map(|d| d.admin().list("DIRECTOR-LIST")).collect();
        let all = lists.iter().all(|l| {
            l.lines()
                .all(|x| !x.contains("handshaking") && !x.contains("syncing"))
        });
        if all {
            return lists;
        }
        if Instant::now() > end {
            let logs: Vec<String> = ds.iter().map(|d| d.log()).collect();
            panic!("ring did not sync: {lists:#?}\n{}", logs.join("\n-----\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether a DIRECTOR-LIST has a synced `kind` connection to `ip:port` (any `last_failed`:
/// a connect that failed while the others were still starting leaves a mark).
fn synced_conn(list: &str, ip: &str, port: u16, kind: &str) -> bool {
    list.lines().any(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        f.len() > 4 && f[0] == ip && f[1] == port.to_string() && f[2] == kind && f[4] == "synced"
    })
}

#[test]
fn two_directors_form_a_ring() {
    let port = free_port();
    let ds = ring(&["127.0.0.1", "127.0.0.2"], port);
    let lists = wait_synced(&ds);
    for (i, l) in lists.iter().enumerate() {
        let other = if i == 0 { "127.0.0.2" } else { "127.0.0.1" };
        assert!(synced_conn(l, other, port, "left"), "{l}");
        assert!(synced_conn(l, other, port, "right"), "{l}");
    }
    // A director stopping says so to the other (ring-protocol.md §9.4).
    let mut ds = ds;
    let status = ds[1].stop();
    assert!(status.success(), "{status:?}");
    ds[0].wait_log(&format!(
        "Director 127.0.0.2:{port}/left disconnected us with reason: Shutting down"
    ));
}

#[test]
fn three_directors_form_a_ring() {
    let port = free_port();
    let ds = ring(&["127.0.0.11", "127.0.0.12", "127.0.0.13"], port);
    let lists = wait_synced(&ds);
    // Ring order: .11 → .12 → .13 → .11; each connects to its right.
    let right = ["127.0.0.12", "127.0.0.13", "127.0.0.11"];
    let left = ["127.0.0.13", "127.0.0.11", "127.0.0.12"];
    for (i, l) in lists.iter().enumerate() {
        assert!(synced_conn(l, right[i], port, "right"), "{l}");
        assert!(synced_conn(l, left[i], port, "left"), "{l}");
    }
}

/// A login through `d`'s authreply socket; returns the reply line.
fn login(d: &Daemon, user: &str) -> String {
    let mut s = connect(&d.path("director-authreply"));
    read_lines(&mut s, 1);
    s.write_all(
        format!("VERSION\tdirector-authreply-client\t1\t0\nOK\t1\tuser={user}\tproxy\n").as_bytes(),
    )
    .unwrap();
    String::from_utf8_lossy(&read_lines(&mut s, 1)).into_owned()
}

/// Polls `cmd` on every director until `ok` holds for all answers (bounded).
fn wait_all(ds: &[Daemon], cmd: &str, ok: impl Fn(&str) -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let answers: Vec<String> = ds.iter().map(|d| d.admin().list(cmd)).collect();
        if answers.iter().all(|a| ok(a)) {
            return;
        }
        assert!(Instant::now() < end, "{cmd}: {answers:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn changes_and_users_reach_every_director() {
    let port = free_port();
    let ds = ring(&["127.0.0.21", "127.0.0.22", "127.0.0.23"], port);
    wait_synced(&ds);

    // alice → 10.0.0.2 (admin-protocol.md §6.8 vector), created on one, known on all.
    assert!(login(&ds[0], "alice").ends_with("\thost=10.0.0.2\n"));
    wait_all(&ds, "USER-LIST", |l| {
        l.starts_with("alice\t") || l.contains("\t10.0.0.2\n")
    });
    for d in &ds {
        let l = d.admin().line("USER-LOOKUP\talice");
        assert!(l.starts_with("10.0.0.2\t"), "{l}");
    }

    // A move on the third director moves the user everywhere (its kill goes through ipc,
    // which is absent here: the failed kick ends the kill step).
    assert_eq!(ds[2].admin().line("USER-MOVE\talice\t10.0.0.1"), "OK\n");
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let hosts: Vec<String> = ds
            .iter()
            .map(|d| d.admin().line("USER-LOOKUP\talice"))
            .collect();
        if hosts.iter().all(|l| l.starts_with("10.0.0.1\t")) {
            break;
        }
        assert!(Instant::now() < end, "{hosts:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Refusals answer like a stand-alone director (admin-protocol.md §6.3), without a change.
    let mut a = ds[0].admin();
    assert_eq!(a.line("HOST-UPDATE\t10.9.9.9\t50"), "NOTFOUND\n");
    assert_eq!(
        a.line("HOST-SET\t10.0.0.1\t1001"),
        "vhost count too large\n"
    );
    assert_eq!(
        a.line("HOST-SET\t10.0.0.1@gold"),
        "host tag can't be changed\n"
    );
    assert!(!a.list("HOST-LIST").contains("10.9.9.9"));

    // A host marked down on the second director is down everywhere.
    assert_eq!(ds[1].admin().line("HOST-DOWN\t10.0.0.3"), "OK\n");
    wait_all(&ds, "HOST-LIST", |l| {
        l.lines()
            .find(|x| x.starts_with("10.0.0.3\t"))
            .is_some_and(|x| x.split('\t').nth(4) == Some("D"))
    });
}

/// `USER-LIST` as (hash, expire) pairs.
fn user_list(d: &Daemon) -> Vec<(u32, u64)> {
    d.admin()
        .list("USER-LIST")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap())
        })
        .collect()
}

/// Polls until every director lists exactly `n` users (bounded); returns the lists.
fn wait_users(ds: &[Daemon], n: usize) -> Vec<Vec<(u32, u64)>> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let lists: Vec<_> = ds.iter().map(user_list).collect();
        if lists.iter().all(|l| l.len() == n) {
            return lists;
        }
        assert!(Instant::now() < end, "{lists:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// auth-proxy.md §9 with ring-protocol.md §8.1: a user refreshed through one director's
/// proxy-notify FIFO stays alive past `director_user_expire` on every director (the refresh
/// goes round as `USER` with the new timestamp); an unrefreshed user expires everywhere.
#[test]
fn notify_refreshes_keep_a_user_alive_on_every_director() {
    let port = free_port();
    let ds = ring_with(
        &["127.0.0.31", "127.0.0.32"],
        port,
        "user_expire = \"10s\"\n",
    );
    wait_synced(&ds);

    assert!(login(&ds[0], "alice").ends_with("\thost=10.0.0.2\n"));
    let lists = wait_users(&ds, 1);
    let alice = lists[0][0].0;
    let alice_expire_b = lists[1][0].1;
    login(&ds[0], "bob");
    let lists = wait_users(&ds, 2);
    let bob = lists[0].iter().find(|u| u.0 != alice).unwrap().0;
    let bob_logged_in = Instant::now();

    // The login process writes the proxy user every few seconds while the session lasts.
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(ds[0].path("login/proxy-notify"))
        .unwrap();
    while bob_logged_in.elapsed() < Duration::from_secs(13) {
        fifo.write_all(b"alice\n").unwrap();
        std::thread::sleep(Duration::from_secs(2));
    }
    fifo.write_all(b"alice\n").unwrap();

    // bob (10 s, never refreshed) is gone everywhere; alice is listed on both, and B's
    // expiry moved on by the refreshes A sent round (at least 12 s of them).
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let lists: Vec<_> = ds.iter().map(user_list).collect();
        let ok = lists
            .iter()
            .all(|l| l.iter().any(|u| u.0 == alice) && !l.iter().any(|u| u.0 == bob))
            && lists[1]
                .iter()
                .any(|u| u.0 == alice && u.1 >= alice_expire_b + 12);
        if ok {
            break;
        }
        assert!(
            Instant::now() < end,
            "alice={alice} (B expire was {alice_expire_b}) bob={bob}: {lists:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
