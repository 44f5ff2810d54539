//! Replays captured ring traffic of real Dovecot directors: every line must parse and
//! re-encode to the identical bytes. Fixtures: `parsers/tests/fixtures` or `$DIRECTOR_FIXTURES`.

mod common;

use director_parsers::ring::{Command, Context};

#[test]
fn ring_lines_round_trip_byte_exact() {
    let streams = common::load_streams(|leg| leg == "ring");
    let mut checked = 0usize;
    for s in &streams {
        // Each direction of a connection is its own parse context.
        let mut ctx = Context::Ring;
        for line in &s.lines {
            let where_ = format!(
                "{} {}#{} {}->{}: {}",
                s.file.display(),
                s.leg,
                s.conn,
                s.from,
                s.to,
                common::show(line)
            );
            let cmd = Command::parse_in(line, ctx).unwrap_or_else(|e| panic!("{where_}: {e}"));
            let mut want = line.clone();
            want.push(b'\n');
            assert_eq!(
                common::show(&cmd.to_line()),
                common::show(&want),
                "{where_}"
            );
            ctx = match cmd {
                Command::HostHandStart { .. } => Context::HostList,
                Command::HostHandEnd { .. } => Context::Ring,
                _ => ctx,
            };
            checked += 1;
        }
    }
    println!(
        "ring transcripts: {checked} lines in {} streams round-tripped",
        streams.len()
    );
}
