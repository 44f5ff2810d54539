//! Golden answers from the real Dovecot 2.3.19.1 director (authreply socket, stand-alone,
//! `director_user_expire = 20s`, `director_mail_servers = 10.0.0.1 10.0.0.2 10.0.0.3
//! 10.0.0.4`), captured 2026-11-29 for the edge cases of auth-proxy.md §§4 and 6.1.
//! Each row: the line sent, the name the director hashed (checked afterwards with
//! `doveadm director status <name>`: that name had a live entry, the other candidates had
//! none), the host it chose, and the line it answered (LF removed).

use super::*;

const REAL: &[(&[u8], &str, &str, &[u8])] = &[
    (b"OK\t1\tuser=alice\tproxy", "alice", "10.0.0.4", b"OK\t1\tuser=alice\tproxy\tproxy_refresh=10\thost=10.0.0.4"),
    (b"OK\t2\tuser=alice\0junk\tproxy", "", "", b"OK\t2\tuser=alice"),
    (b"OK\t3\tuser=bob\x010ice\tproxy", "bob", "10.0.0.2", b"OK\t3\tuser=bob\x010ice\tproxy\tproxy_refresh=10\thost=10.0.0.2"),
    (b"OK\t4\tuser=carol\tprox\x01y", "carol", "10.0.0.2", b"OK\t4\tuser=carol\tprox\x01y\tproxy_refresh=10\thost=10.0.0.2"),
    (b"OK\t5\tuser=dave\tproxy\x010junk", "dave", "10.0.0.2", b"OK\t5\tuser=dave\tproxy\x010junk\tproxy_refresh=10\thost=10.0.0.2"),
    (b"OK\t6\tdestuser=erin\tuser=frank\tproxy", "erin", "10.0.0.4", b"OK\t6\tdestuser=erin\tuser=frank\tproxy\tproxy_refresh=10\thost=10.0.0.4"),
    (b"OK\t7\tuser=gina\tuser=hank\tproxy", "gina", "10.0.0.2", b"OK\t7\tuser=gina\tuser=hank\tproxy\tproxy_refresh=10\thost=10.0.0.2"),
    (b"OK\t8\tuser=ivan\tproxy=n\tdirector_tag=", "ivan", "10.0.0.4", b"OK\t8\tuser=ivan\tproxy=n\tdirector_tag=\tproxy_refresh=10\thost=10.0.0.4"),
    (b"OK\t9\tuser=judy\tproxy\tport=x\tlport=0\tlip=bogus", "judy", "10.0.0.4", b"OK\t9\tuser=judy\tproxy\tport=x\tlport=0\tlip=bogus\tproxy_refresh=10\thost=10.0.0.4"),
    (b"OK\t10\tuser=kim\tproxy\thostip=1.2.3.4", "kim", "10.0.0.4", b"OK\t10\tuser=kim\tproxy\thostip=1.2.3.4\tproxy_refresh=10\thost=10.0.0.4"),
    (b"PASS\t11\tuser=leo\tproxy", "", "", b"PASS\t11\tuser=leo\tproxy"),
    (b"OK\t12\tuser=mia\tproxyx", "", "", b"OK\t12\tuser=mia\tproxyx"),
    (b"OK\t13\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.9", "ned", "10.0.0.3", b"OK\t13\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.9\tproxy_refresh=10\thost=10.0.0.3"),
    (b"OK\t0014\tuser=olga\tproxy", "olga", "10.0.0.1", b"OK\t0014\tuser=olga\tproxy\tproxy_refresh=10\thost=10.0.0.1"),
    (b"OK", "", "", b"OK"),
    (b"OK\t", "", "", b"OK\t"),
    (b"OK\t15", "", "", b"OK\t15"),
    (b"OK\t20\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3", "ned", "10.0.0.3", b"OK\t20\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3"),
    (b"OK\t21\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlport=143\tport=993", "ned", "10.0.0.3", b"OK\t21\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlport=143\tport=993\tproxy_refresh=10\thost=10.0.0.3"),
    (b"OK\t22\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlip=bogus", "ned", "10.0.0.3", b"OK\t22\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlip=bogus"),
    (b"OK\t23\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlip=9.9.9.9x", "ned", "10.0.0.3", b"OK\t23\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlip=9.9.9.9x\tproxy_refresh=10\thost=10.0.0.3"),
    (b"OK\t24\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlport=143\tport=0143", "ned", "10.0.0.3", b"OK\t24\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlport=143\tport=0143"),
    (b"OK\t25\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlport=143\tport=99999", "ned", "10.0.0.3", b"OK\t25\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlport=143\tport=99999"),
    (b"OK\t26\tuser=ned\tdirector_proxy_maybe\tlip=0x0a000003", "ned", "10.0.0.3", b"OK\t26\tuser=ned\tdirector_proxy_maybe\tlip=0x0a000003"),
    (b"OK\t27\tuser=ned\tdirector_proxy_maybe\tlip=10.3", "ned", "10.0.0.3", b"OK\t27\tuser=ned\tdirector_proxy_maybe\tlip=10.3"),
    (b"OK\t28\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlip=10.0.0.256", "ned", "10.0.0.3", b"OK\t28\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlip=10.0.0.256"),
    (b"OK\t29\tuser=ned\tdirector_proxy_maybe\tlip=9.9.9.9\tlip=10.0.0.3x", "ned", "10.0.0.3", b"OK\t29\tuser=ned\tdirector_proxy_maybe\tlip=9.9.9.9\tlip=10.0.0.3x"),
    (b"OK\t30\tuser=ned\tdirector_proxy_maybe\tproxy\tlip=10.0.0.3", "ned", "10.0.0.3", b"OK\t30\tuser=ned\tdirector_proxy_maybe\tproxy\tlip=10.0.0.3"),
    (b"OK\t31\tuser=ned\tdirector_proxy_maybe=no\tlip=10.0.0.3\tport=5", "ned", "10.0.0.3", b"OK\t31\tuser=ned\tdirector_proxy_maybe=no\tlip=10.0.0.3\tport=5"),
    (b"OK\t40\tuser=ned\tdirector_proxy_maybe\tlip=0010.0.0.3", "ned", "10.0.0.3", b"OK\t40\tuser=ned\tdirector_proxy_maybe\tlip=0010.0.0.3"),
    (b"OK\t41\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlip=1.2.300.4", "ned", "10.0.0.3", b"OK\t41\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlip=1.2.300.4\tproxy_refresh=10\thost=10.0.0.3"),
    (b"OK\t42\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlip=10.0.300.9", "ned", "10.0.0.3", b"OK\t42\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlip=10.0.300.9"),
    (b"OK\t43\tuser=ned\tdirector_proxy_maybe\tlip=::1\tlip=10.0.0.3x", "ned", "10.0.0.3", b"OK\t43\tuser=ned\tdirector_proxy_maybe\tlip=::1\tlip=10.0.0.3x\tproxy_refresh=10\thost=10.0.0.3"),
    (b"OK\t44\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3x", "ned", "10.0.0.3", b"OK\t44\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3x\tproxy_refresh=10\thost=10.0.0.3"),
    (b"OK\t45\tuser=ned\tdirector_proxy_maybe\tlip=167772163", "ned", "10.0.0.3", b"OK\t45\tuser=ned\tdirector_proxy_maybe\tlip=167772163"),
    (b"OK\t46\tuser=ned\tdirector_proxy_maybe\tlip=[::ffff:10.0.0.3]", "ned", "10.0.0.3", b"OK\t46\tuser=ned\tdirector_proxy_maybe\tlip=[::ffff:10.0.0.3]\tproxy_refresh=10\thost=10.0.0.3"),
    (b"OK\t47\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlip=4294967296", "ned", "10.0.0.3", b"OK\t47\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlip=4294967296"),
    (b"OK\t48\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlip=10.0.0.3.4", "ned", "10.0.0.3", b"OK\t48\tuser=ned\tdirector_proxy_maybe\tlip=10.0.0.3\tlip=10.0.0.3.4"),
    (b"OK\t49\tuser=ned\tdirector_proxy_maybe\tlip=9.9.9.9\tlip=10.0.0.3.", "ned", "10.0.0.3", b"OK\t49\tuser=ned\tdirector_proxy_maybe\tlip=9.9.9.9\tlip=10.0.0.3."),
];

/// What we answer for `line` when the host lookup yields `host` (`proxy_refresh` 10).
fn answer(line: &[u8], host: &str) -> Vec<u8> {
    let mut out = Vec::new();
    match examine(line, ReplyKind::AuthOk) {
        Some(ex) if ex.needs_host() => {
            let ip: IpAddr = host.parse().expect("a host for every examined row");
            if ex.proxy_maybe && ex.is_self(ip) {
                out.extend_from_slice(c_string(line));
                out.push(b'\n');
            } else {
                decorate(line, 10, host, None, &mut out);
            }
        }
        _ => {
            out.extend_from_slice(c_string(line));
            out.push(b'\n');
        }
    }
    out
}

#[test]
fn real_director_answers() {
    for (line, hashed, host, real) in REAL {
        let ours = answer(line, host);
        assert_eq!(
            ours.escape_ascii().to_string(),
            [*real, b"\n"].concat().escape_ascii().to_string(),
            "{}",
            line.escape_ascii()
        );
        let name = examine(line, ReplyKind::AuthOk)
            .filter(Examined::needs_host)
            .and_then(|ex| ex.lookup_name(None).map(<[u8]>::to_vec));
        let want = (!hashed.is_empty()).then(|| hashed.as_bytes().to_vec());
        assert_eq!(name, want, "{}", line.escape_ascii());
    }
}
