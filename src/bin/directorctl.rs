//! `directorctl`: the director admin client (a drop-in for Dovecot 2.3's `doveadm director`).

fn main() {
    let mut sink = director::ctl::StdSink;
    let code = director::ctl::run(std::env::args_os().collect(), &mut sink);
    std::process::exit(code);
}
