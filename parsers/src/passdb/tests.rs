//! Known-answer and property tests for [`super`] (auth-proxy.md §§2-8).

use super::*;
use proptest::prelude::*;
use ReplyKind::{AuthOk, UserdbPass};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ex(line: &[u8], kind: ReplyKind) -> Examined<'_> {
    examine(line, kind).unwrap_or_else(|| panic!("not examined: {}", line.escape_ascii()))
}

/// §4.1 [verified]: these pass unchanged.
#[test]
fn pass_through_unchanged() {
    for line in [
        &b"OK\t1\tuser=alice"[..],
        b"OK\t2\tuser=alice\tproxy\thost=192.0.2.1",
        b"OK\t4\tuser=alice\tproxy_maybe",
        b"OK\t11\tproxy",
    ] {
        assert!(!ex(line, AuthOk).needs_host(), "{}", line.escape_ascii());
    }
}

/// §3 [verified]: only `OK\t` on auth/authreply, only `PASS\t` on userdb.
#[test]
fn only_the_kinds_prefix_is_examined() {
    for (line, kind) in [
        (&b"PASS\t1\tuser=alice\tproxy"[..], AuthOk),
        (b"whatever\tfoo", AuthOk),
        (b"OK\t1\tuser=alice\tproxy", UserdbPass),
        (
            b"USER\t2\talice\tuid=103\tgid=106\thome=/home/alice",
            UserdbPass,
        ),
        (b"FAIL\t1\tuser=cap02", AuthOk),
        (b"OK", AuthOk),
        (b"PASS", UserdbPass),
    ] {
        assert_eq!(examine(line, kind), None, "{}", line.escape_ascii());
    }
}

/// The [verified] decoration examples of §2.3, §6.1, §7 and §8, and dovecot-2.4.md §4.
#[test]
fn decorate_known_answers() {
    type Case<'a> = (&'a [u8], ReplyKind, u32, &'a str, Option<&'a str>, &'a [u8]);
    let cases: &[Case] = &[
        (
            b"OK\t1\tuser=alice\tproxy\tport=11143\tlip=127.0.5.1\tlport=11143\tpass=secret",
            AuthOk, 10, "127.0.5.11", None,
            b"OK\t1\tuser=alice\tproxy\tport=11143\tlip=127.0.5.1\tlport=11143\tpass=secret\tproxy_refresh=10\thost=127.0.5.11\n",
        ),
        (
            b"PASS\t1\tuser=alice\tproxy=y\tlip=127.0.5.1\tlport=24",
            UserdbPass, 450, "10.0.0.2", None,
            b"PASS\t1\tuser=alice\tproxy=y\tlip=127.0.5.1\tlport=24\tproxy_refresh=450\thost=10.0.0.2\n",
        ),
        (
            b"OK\t1\tuser=alice\tproxy",
            AuthOk, 450, "10.0.0.2", None,
            b"OK\t1\tuser=alice\tproxy\tproxy_refresh=450\thost=10.0.0.2\n",
        ),
        (
            b"OK\t1\tuser=alice\tproxy",
            AuthOk, 450, "localhost", Some("127.0.0.1"),
            b"OK\t1\tuser=alice\tproxy\tproxy_refresh=450\thost=localhost\thostip=127.0.0.1\n",
        ),
        (
            b"PASS\t1\tuser=named01\tproxy=yes\tlip=127.0.4.10\tlport=24",
            UserdbPass, 450, "localhost", Some("127.0.4.12"),
            b"PASS\t1\tuser=named01\tproxy=yes\tlip=127.0.4.10\tlport=24\tproxy_refresh=450\thost=localhost\thostip=127.0.4.12\n",
        ),
    ];
    for (line, kind, refresh, host, hostip, want) in cases {
        let e = ex(line, *kind);
        assert!(e.needs_host(), "{}", line.escape_ascii());
        let mut out = Vec::new();
        decorate(line, *refresh, host, *hostip, &mut out);
        assert_eq!(
            out.escape_ascii().to_string(),
            want.escape_ascii().to_string()
        );
    }
}

/// dovecot-2.4.md §6.5 (a), as the 2.4 lab relay sent it.
#[test]
fn decorate_with_hash_known_answer() {
    let line = b"OK\t10\tuser=kick03\tproxy=yes\tlip=127.0.4.10\tlport=143\tpass=pass";
    let mut out = Vec::new();
    decorate_with_hash(
        line,
        450,
        "127.0.4.12",
        None,
        "user_director_hash",
        245949797,
        &mut out,
    );
    let want: &[u8] = b"OK\t10\tuser=kick03\tproxy=yes\tlip=127.0.4.10\tlport=143\tpass=pass\tproxy_refresh=450\thost=127.0.4.12\tuser_director_hash=245949797\n";
    assert_eq!(
        out.escape_ascii().to_string(),
        want.escape_ascii().to_string()
    );
}

/// §6.2 [verified]: `FAIL\t<id>\tcode=temp_fail` for OK and PASS lines.
#[test]
fn temp_fail_known_answers() {
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"PASS\t1\tuser=fail01\tproxy=yes\tlip=127.0.4.10\tlport=24",
            b"FAIL\t1\tcode=temp_fail\n",
        ),
        (b"OK\t42\tuser=alice\tproxy", b"FAIL\t42\tcode=temp_fail\n"),
        (b"OK\t7", b"FAIL\t7\tcode=temp_fail\n"),
        (b"OK\t", b"FAIL\t\tcode=temp_fail\n"),
        (b"OK", b"FAIL\t\tcode=temp_fail\n"),
    ];
    for (line, want) in cases {
        let mut out = Vec::new();
        temp_fail(line, &mut out);
        assert_eq!(&out, want, "{}", line.escape_ascii());
    }
    assert_eq!(ex(b"OK\t42\tuser=a", AuthOk).id, b"42");
}

/// §4 field table: first matching rule per field, destuser beats user, first user wins,
/// last tag wins, `proxy=<any>` is the proxy flag, `proxy_maybe`/`proxyx` are not.
#[test]
fn field_rules() {
    let e = ex(
        b"OK\t1\tuser=first\tdestuser=d1\tuser=second\tdestuser=d2",
        AuthOk,
    );
    assert_eq!(e.username.as_deref(), Some(&b"d2"[..]));
    let e = ex(b"OK\t1\tdestuser=d\tuser=u", AuthOk);
    assert_eq!(e.username.as_deref(), Some(&b"d"[..]));
    let e = ex(b"OK\t1\tuser=first\tuser=second", AuthOk);
    assert_eq!(e.username.as_deref(), Some(&b"first"[..]));
    let e = ex(b"OK\t1\tdirector_tag=a\tdirector_tag=b", AuthOk);
    assert_eq!(&*e.tag, b"b");
    let e = ex(b"OK\t1\tdirector_tag=a\tdirector_tag=", AuthOk);
    assert_eq!(&*e.tag, b"");
    for (field, proxy) in [
        ("proxy", true),
        ("proxy=n", true),
        ("proxy=", true),
        ("proxy_maybe", false),
        ("proxyx", false),
        ("proxy_refresh=5", false),
        ("Proxy", false),
    ] {
        let line = format!("OK\t1\tuser=a\t{field}");
        assert_eq!(ex(line.as_bytes(), AuthOk).proxy, proxy, "{field}");
    }
    for (field, maybe) in [
        ("director_proxy_maybe", true),
        ("director_proxy_maybe=n", true),
        ("director_proxy_maybex", false),
        ("proxy_maybe", false),
    ] {
        let line = format!("OK\t1\tuser=a\t{field}");
        assert_eq!(ex(line.as_bytes(), AuthOk).proxy_maybe, maybe, "{field}");
    }
    let e = ex(b"OK\t1\tuser=a\tdirector_proxy_maybe", AuthOk);
    assert!(e.needs_host());
    let e = ex(b"OK\t1\tuser=a\tproxy\thost=", AuthOk);
    assert!(e.host_present && !e.needs_host());
    let e = ex(b"OK\t1\tuser=a\tproxy\thostip=10.0.0.1", AuthOk);
    assert!(!e.host_present && e.needs_host());
    // the ID is skipped even when it looks like a field
    let e = ex(b"OK\tuser=x\tproxy", AuthOk);
    assert!(e.username.is_none() && !e.needs_host());
}

#[test]
fn fields_are_unescaped_first() {
    let e = ex(
        b"OK\t1\tuser=al\x01tice\tproxy\tdirector_tag=t\x011",
        AuthOk,
    );
    assert_eq!(e.username.as_deref(), Some(&b"al\tice"[..]));
    assert_eq!(&*e.tag, b"t\x01");
    // an escaped byte can complete a prefix, as in Dovecot
    let e = ex(b"OK\t1\tuser=a\tprox\x01y", AuthOk);
    assert!(e.proxy);
}

#[test]
fn addresses_and_ports() {
    let e = ex(
        b"OK\t1\tuser=a\tproxy\tlip=127.0.5.1\tlport=0143\tport=11143",
        AuthOk,
    );
    assert_eq!(
        (e.lip, e.lport, e.port),
        (Some(ip("127.0.5.1")), Some(143), Some(11143))
    );
    assert!(e.bad_fields.is_empty());
    // failures are reported and leave the earlier value
    let e = ex(
        b"OK\t1\tlip=10.0.0.1\tlip=bogus\tlport=7\tlport=0\tport=65536\tport=x\tlport=",
        AuthOk,
    );
    assert_eq!(
        (e.lip, e.lport, e.port),
        (Some(ip("10.0.0.1")), Some(7), None)
    );
    let bad: Vec<_> = e
        .bad_fields
        .iter()
        .map(|b| (b.name, b.value.as_slice()))
        .collect();
    assert_eq!(
        bad,
        [
            ("lip", &b"bogus"[..]),
            ("lport", b"0"),
            ("port", b"65536"),
            ("port", b"x"),
            ("lport", b"")
        ]
    );
    let e = ex(b"OK\t1\tlip=2001:DB8::1\tlport=65535", AuthOk);
    assert_eq!((e.lip, e.lport), (Some(ip("2001:db8::1")), Some(65535)));
    assert_eq!(parse_port(b"000000000000000000000080"), Some(80));
    assert_eq!(parse_port(b"99999999999999999999999"), None);
}

/// Dovecot sees lines and unescaped fields as C strings.
#[test]
fn nul_ends_lines_and_fields() {
    assert_eq!(c_string(b"OK\t1\0\tproxy"), b"OK\t1");
    let e = ex(b"OK\t1\tuser=alice\0\tproxy", AuthOk);
    assert!(!e.proxy && !e.needs_host());
    let e = ex(
        b"OK\t1\tuser=al\x010ice\tproxy\x010x\tdestuser\x010=b",
        AuthOk,
    );
    assert_eq!(e.username.as_deref(), Some(&b"al"[..]));
    assert!(e.proxy && e.needs_host());
    let mut out = Vec::new();
    decorate(b"OK\t1\tuser=a\tproxy\0junk", 5, "10.0.0.1", None, &mut out);
    assert_eq!(
        out,
        b"OK\t1\tuser=a\tproxy\tproxy_refresh=5\thost=10.0.0.1\n"
    );
    let mut out = Vec::new();
    temp_fail(b"OK\t12\x003\tuser=a", &mut out);
    assert_eq!(out, b"FAIL\t12\tcode=temp_fail\n");
}

/// §6.1 self rule.
#[test]
fn proxy_maybe_self() {
    let e = ex(
        b"OK\t1\tuser=a\tdirector_proxy_maybe\tlip=10.0.0.2\tlport=143",
        AuthOk,
    );
    assert!(e.is_self(ip("10.0.0.2")));
    assert!(!e.is_self(ip("10.0.0.3")));
    let e = ex(
        b"OK\t1\tuser=a\tdirector_proxy_maybe\tlip=10.0.0.2\tlport=143\tport=143",
        AuthOk,
    );
    assert!(e.is_self(ip("10.0.0.2")));
    let e = ex(
        b"OK\t1\tuser=a\tdirector_proxy_maybe\tlip=10.0.0.2\tlport=143\tport=993",
        AuthOk,
    );
    assert!(!e.is_self(ip("10.0.0.2")));
    let e = ex(
        b"OK\t1\tuser=a\tdirector_proxy_maybe\tlip=10.0.0.2\tport=993",
        AuthOk,
    );
    assert!(e.is_self(ip("10.0.0.2")));
    let e = ex(b"OK\t1\tuser=a\tdirector_proxy_maybe\tlport=143", AuthOk);
    assert!(!e.is_self(ip("0.0.0.0")));
}

/// §4.3: cut before the separator's first character.
#[test]
fn master_user_separator() {
    assert_eq!(master_user_cut(b"alice*master", Some(b'*')), b"alice");
    assert_eq!(master_user_cut(b"alice*master", None), b"alice*master");
    assert_eq!(master_user_cut(b"alice", Some(b'*')), b"alice");
    assert_eq!(master_user_cut(b"*x", Some(b'*')), b"");
    let e = ex(b"OK\t1\tuser=alice*master\tproxy", AuthOk);
    assert_eq!(e.lookup_name(Some(b'*')), Some(&b"alice"[..]));
    assert_eq!(e.lookup_name(None), Some(&b"alice*master"[..]));
}

proptest! {
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80), pass in any::<bool>()) {
        let kind = if pass { UserdbPass } else { AuthOk };
        let mut line = kind.prefix().to_vec();
        line.extend_from_slice(&bytes);
        let e = examine(&line, kind).expect("has the prefix");
        let _ = (e.needs_host(), e.is_self(IpAddr::from([127, 0, 0, 1])), e.lookup_name(Some(b'*')));
        let mut out = Vec::new();
        temp_fail(&line, &mut out);
        prop_assert!(out.starts_with(b"FAIL\t") && out.ends_with(b"\tcode=temp_fail\n"));
        let _ = examine(&bytes, kind);
    }

    #[test]
    fn decorate_appends_exactly(line in proptest::collection::vec(any::<u8>(), 0..40), n in any::<u32>()) {
        let mut out = Vec::new();
        decorate(&line, n, "10.0.0.1", None, &mut out);
        let kept = c_string(&line);
        prop_assert!(out.starts_with(kept));
        let suffix = format!("\tproxy_refresh={n}\thost=10.0.0.1\n");
        prop_assert_eq!(&out[kept.len()..], suffix.as_bytes());
    }

    #[test]
    fn decorator_matches_decorate(
        line in proptest::collection::vec(any::<u8>(), 0..40),
        n in any::<u32>(),
        v4 in any::<[u8; 4]>(),
        v6 in any::<[u8; 16]>(),
    ) {
        let d = Decorator::new(n);
        for ip in [IpAddr::from(v4), IpAddr::from(v6)] {
            let text = crate::ip::ip_to_string(&ip);
            let (mut want, mut got) = (Vec::new(), Vec::new());
            decorate(&line, n, &text, None, &mut want);
            d.decorate_ip(&line, &ip, &mut got);
            prop_assert_eq!(&got, &want);
            let (mut want, mut got) = (Vec::new(), Vec::new());
            decorate(&line, n, "mail.example", Some(&text), &mut want);
            d.decorate(&line, "mail.example", Some(&text), &mut got);
            prop_assert_eq!(&got, &want);
        }
    }
}
