//! Known-answer tests for the formatters; every expected output is a real doveadm output quoted
//! in `admin-protocol.md` §8-9 or recorded in `lab/results/doveadm-director.txt`.

use super::*;

fn status_headers(p: &mut Printer) {
    p.header_simple("mail server ip");
    p.header_simple("tag");
    p.header_simple("vhosts");
    p.header_simple("state");
    p.header("state-changed", "state changed", 0);
    p.header_simple("users");
}

fn rows(p: &mut Printer, rows: &[&[&str]]) {
    for r in rows {
        for v in *r {
            p.print(v.as_bytes()).unwrap();
        }
    }
}

const STATUS_ROWS: &[&[&str]] = &[
    &["10.0.0.1", "", "100", "up", "-", "0"],
    &["10.0.0.2", "", "100", "down", "-", "2"],
    &["10.0.0.3", "", "100", "up", "-", "1"],
];

#[test]
fn table_status_spec_example() {
    let mut p = Printer::new(Kind::Table, false, 80);
    status_headers(&mut p);
    rows(&mut p, STATUS_ROWS);
    let expected = "mail server ip tag vhosts state state changed users              \n\
                    10.0.0.1           100    up    -             0                  \n\
                    10.0.0.2           100    down  -             2                  \n\
                    10.0.0.3           100    up    -             1                  \n";
    assert_eq!(String::from_utf8(p.finish()).unwrap(), expected);
}

#[test]
fn table_status_lab_with_time_and_tag() {
    let mut p = Printer::new(Kind::Table, false, 80);
    status_headers(&mut p);
    rows(
        &mut p,
        &[
            &["127.0.1.1", "", "100", "down", "2026-11-29 12:40:21", "3"],
            &["127.0.1.2", "", "100", "up", "-", "6"],
            &["127.0.1.5", "tagA", "100", "up", "-", "0"],
        ],
    );
    let expected = "mail server ip tag  vhosts state state changed       users           \n\
                    127.0.1.1           100    down  2026-11-29 12:40:21 3               \n\
                    127.0.1.2           100    up    -                   6               \n\
                    127.0.1.5      tagA 100    up    -                   0               \n";
    assert_eq!(String::from_utf8(p.finish()).unwrap(), expected);
}

#[test]
fn table_map_expand_column() {
    let mut p = Printer::new(Kind::Table, false, 80);
    p.header("user", "user", EXPAND);
    p.header_simple("hash");
    p.header_simple("mail server ip");
    p.header_simple("expire time");
    rows(
        &mut p,
        &[
            &["alice", "1669653170", "10.0.0.2", "2023-11-14 22:28:20"],
            &["bob", "2677887420", "10.0.0.2", "2023-11-14 22:28:21"],
            &["<unknown>", "617210206", "10.0.0.3", "2023-11-14 22:28:22"],
        ],
    );
    let expected = "user                  hash       mail server ip expire time        \n\
                    alice                 1669653170 10.0.0.2       2023-11-14 22:28:20\n\
                    bob                   2677887420 10.0.0.2       2023-11-14 22:28:21\n\
                    <unknown>             617210206  10.0.0.3       2023-11-14 22:28:22\n";
    assert_eq!(String::from_utf8(p.finish()).unwrap(), expected);
}

#[test]
fn table_map_no_rows() {
    // Real doveadm `director map -f /nonexist` against an empty director.
    let mut p = Printer::new(Kind::Table, false, 80);
    p.header("user", "user", EXPAND);
    p.header_simple("hash");
    p.header_simple("mail server ip");
    p.header_simple("expire time");
    assert_eq!(
        String::from_utf8(p.finish()).unwrap(),
        "user                       hash mail server ip expire time\n"
    );
}

fn ring_headers(p: &mut Printer) {
    for t in [
        "director ip",
        "port",
        "type",
        "last failed",
        "status",
        "ping ms",
        "input",
        "output",
        "buffered",
        "buffered peak",
        "last read",
        "last write",
    ] {
        p.header_simple(t);
    }
}

#[test]
fn table_ring_status_shrinks_titles() {
    let mut p = Printer::new(Kind::Table, false, 80);
    ring_headers(&mut p);
    rows(
        &mut p,
        &[&[
            "127.0.0.1",
            "0",
            "self",
            "never",
            "ring synced",
            "0",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
        ]],
    );
    let expected = "director ip port type last failed status    ping ms input output buffered buffered peak last read last write\n\
                    127.0.0.1  0   self never    ring synced 0    -   -    -     -       -     -     \n";
    assert_eq!(String::from_utf8(p.finish()).unwrap(), expected);
}

#[test]
fn table_ring_status_lab_two_directors() {
    let mut p = Printer::new(Kind::Table, false, 80);
    ring_headers(&mut p);
    rows(
        &mut p,
        &[
            &[
                "127.0.0.2",
                "9090",
                "self",
                "never",
                "ring synced",
                "0",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
            ],
            &[
                "127.0.0.3",
                "9090",
                "right",
                "never",
                "synced",
                "0",
                "1395",
                "1667",
                "0",
                "138",
                "2026-11-29 12:40:18",
                "2026-11-29 12:40:18",
            ],
        ],
    );
    let expected = "director ip port type last failed status    ping ms input output buffered buffered peak last read  last write\n\
                    127.0.0.2  9090 self never    ring synced 0    -   -    -     -       -          -         \n\
                    127.0.0.3  9090 right never    synced    0    1395 1667 0     138     2026-11-29 12:40:18 2026-11-29 12:40:18\n";
    assert_eq!(String::from_utf8(p.finish()).unwrap(), expected);
}

#[test]
fn table_hidden_title_single_column() {
    // `map -u user01` in the lab: hash + 35 spaces.
    let mut p = Printer::new(Kind::Table, false, 80);
    p.header("hash", "hash", HIDE_TITLE);
    p.print(b"3075933655").unwrap();
    assert_eq!(
        p.finish(),
        format!("3075933655{}\n", " ".repeat(35)).into_bytes()
    );
    // `map -h -f users 3075933655`: "user01" + 37 spaces.
    let mut p = Printer::new(Kind::Table, false, 80);
    p.header("user", "user", HIDE_TITLE);
    p.print(b"user01").unwrap();
    assert_eq!(
        p.finish(),
        format!("user01{}\n", " ".repeat(37)).into_bytes()
    );
}

#[test]
fn table_utf8_width() {
    // Widths count characters, padding adds the continuation bytes back (printf pads bytes).
    let mut p = Printer::new(Kind::Table, true, 30);
    p.header_simple("a");
    p.header_simple("b");
    p.print("ä".as_bytes()).unwrap();
    p.print(b"x").unwrap();
    // max(a)=1 b=1 → total 3, W=30 → last column gets (30-3)/2 = 13 → len 14.
    let out = p.finish();
    assert_eq!(out, format!("ä x{}\n", " ".repeat(13)).into_bytes());
}

#[test]
fn table_more_than_100_rows_uses_first_100_for_widths() {
    let mut p = Printer::new(Kind::Table, true, 80);
    p.header_simple("a");
    for _ in 0..100 {
        p.print(b"x").unwrap();
    }
    p.print(b"a-much-longer-value").unwrap();
    let out = String::from_utf8(p.finish()).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 101);
    // width from the first 100 rows: 1 + (80-1)/2 = 40
    assert_eq!(lines[0].len(), 40);
    assert_eq!(lines[100], format!("a-much-longer-value{}", " ".repeat(21)));
}

#[test]
fn tab_status_spec_example() {
    let mut p = Printer::new(Kind::Tab, false, 80);
    status_headers(&mut p);
    rows(&mut p, &STATUS_ROWS[..1]);
    assert_eq!(
        p.finish(),
        b"mail server ip\ttag\tvhosts\tstate\tstate changed\tusers\n10.0.0.1\t\t100\tup\t-\t0\n"
    );
}

#[test]
fn tab_without_rows_and_hidden_titles() {
    let p = Printer::new(Kind::Tab, false, 80);
    assert_eq!(p.finish(), b"\n"); // doveadm -f tab director add …: a lone newline
    let mut p = Printer::new(Kind::Tab, true, 80);
    p.header("hash", "hash", HIDE_TITLE);
    p.print(b"1").unwrap();
    assert_eq!(p.finish(), b"1\n");
    let mut p = Printer::new(Kind::Tab, false, 80);
    p.header("hash", "hash", HIDE_TITLE);
    p.print(b"1").unwrap();
    assert_eq!(p.finish(), b"hash\n1\n");
}

#[test]
fn flow_status_spec_example() {
    let mut p = Printer::new(Kind::Flow, false, 80);
    status_headers(&mut p);
    rows(&mut p, &STATUS_ROWS[..1]);
    assert_eq!(
        p.finish(),
        b"mail server ip=10.0.0.1 tag= vhosts=100 state=up state changed=- users=0\n"
    );
}

#[test]
fn json_status_spec_example_and_empty() {
    let mut p = Printer::new(Kind::Json, false, 80);
    status_headers(&mut p);
    rows(&mut p, &STATUS_ROWS[..2]);
    assert_eq!(
        String::from_utf8(p.finish()).unwrap(),
        "[{\"mail server ip\":\"10.0.0.1\",\"tag\":\"\",\"vhosts\":\"100\",\"state\":\"up\",\"state-changed\":\"-\",\"users\":\"0\"},\
         {\"mail server ip\":\"10.0.0.2\",\"tag\":\"\",\"vhosts\":\"100\",\"state\":\"down\",\"state-changed\":\"-\",\"users\":\"2\"}]"
    );
    let p = Printer::new(Kind::Json, false, 80);
    assert_eq!(p.finish(), b"[]");
}

#[test]
fn json_escaping() {
    let mut out = Vec::new();
    json_escape_into(b"a\"b\\c\x08\x0c\n\r\t\x01\x1f\x7f", &mut out);
    assert_eq!(out, b"a\\\"b\\\\c\\b\\f\\n\\r\\t\\u0001\\u001f\x7f");
    let mut out = Vec::new();
    json_escape_into("é\u{2028}\u{2029}€".as_bytes(), &mut out);
    assert_eq!(out, "é\\u2028\\u2029€".as_bytes());
    let mut out = Vec::new();
    // invalid: lone continuation, overlong 2-byte, truncated 3-byte, surrogate
    json_escape_into(b"\x80\xc0\xafx\xe2\x82\xed\xa0\x80", &mut out);
    assert_eq!(
        out,
        "\u{fffd}\u{fffd}\u{fffd}x\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}".as_bytes()
    );
}

#[test]
fn pager_rows() {
    let mut p = Printer::new(Kind::Pager, false, 80);
    p.header_simple("a");
    p.header("b", "b", HIDE_TITLE);
    rows(&mut p, &[&["1", "2"], &["3", "4"]]);
    assert_eq!(p.finish(), b"a: 1\n2\n\x0c\na: 3\n4\n");
}

#[test]
fn formatted_status_user_and_dump() {
    let mut p = Printer::new(Kind::Formatted, false, 80);
    for h in ["status", "expires", "hashed", "initial-config"] {
        p.header_simple(h);
    }
    p.set_format(
        "Current: %{status} (expires %{expires})\nHashed: %{hashed}\nInitial config: %{initial-config}\n",
    );
    rows(&mut p, &[&["n/a", "-1", "", ""]]);
    assert_eq!(
        p.finish(),
        b"Current: n/a (expires -1)\nHashed: \nInitial config: \n"
    );

    let mut p = Printer::new(Kind::Formatted, false, 80);
    p.set_format("doveadm director %{command} %{host} %{vhost_count}\n");
    for h in ["command", "socket-path", "host", "vhost_count"] {
        p.header_simple(h);
    }
    rows(
        &mut p,
        &[
            &["add", "/run/dovecot/director-admin", "10.0.0.2@tagA", "5"],
            &["remove", "/run/dovecot/director-admin", "10.0.0.3", ""],
        ],
    );
    assert_eq!(
        p.finish(),
        b"doveadm director add 10.0.0.2@tagA 5\ndoveadm director remove 10.0.0.3 \n"
    );
}

#[test]
fn formatted_without_format_fails() {
    let mut p = Printer::new(Kind::Formatted, false, 80);
    p.header_simple("a");
    assert_eq!(p.print(b"x"), Err(FormatError::NoFormat));
}
