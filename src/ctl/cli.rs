//! Global options, subcommand lookup, the shared run context and doveadm's usage texts.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use super::client::{Conn, Fatal, Line};
use super::format::{Kind, Printer};
use super::getopt::{self, Param, ParamType, Values};
use super::settings::Settings;
use super::{commands, hostcmds, Sink, EX_FATAL_DEFAULT, EX_TEMPFAIL, EX_USAGE};

/// doveadm's `usage_prefix("director")` text.
pub const DIRECTOR_USAGE: &str = "\
usage: doveadm [-Dv] [-f <formatter>] director <command> [<args>]
  add          [-a <director socket path>] [-t <tag>] <host> [<vhost count>]
  down         [-a <director socket path>] <host>
  dump         [-a <director socket path>]
  flush        [-a <director socket path>] [-F] [--max-parallel <n>] <host>|all
  kick         [-a <director socket path>] [-f <passdb field>] <user>
  map          [-a <director socket path>] [-f <users file>] [-h | -u] [<host>]
  move         [-a <director socket path>] <user> <host>
  remove       [-a <director socket path>] <host>
  ring         add|remove|status
  status       [-a <director socket path>] [<user>] [<tag>]
  up           [-a <director socket path>] <host>
  update       [-a <director socket path>] <host> <vhost count>
";

const HELP: &str = "\
directorctl - administer a Dovecot-compatible director (drop-in for `doveadm director`)

usage: directorctl [-Dvh] [-f <formatter>] [-a <socket>] [-c <config>] [-o <key>=<value>] <command> [<args>]

global options:
  -f <formatter>  flow, tab, table, json, pager or formatted
  -h              hide table/tab titles
  -a <socket>     admin socket (path, or host:port); a subcommand's own -a wins
  -v, -D          print Info: lines for successful changes
  -c <config>     TOML config file (reads base_dir and [director] username_hash)
  -o <key>=<val>  override base_dir or director_username_hash

commands:
";

/// Why a subcommand stopped early.
#[derive(Debug)]
pub enum Stop {
    /// `Fatal: …`, exit with the given code.
    Fatal(Fatal),
    /// Print the subcommand's usage line, exit 64.
    Usage,
}

impl From<Fatal> for Stop {
    fn from(f: Fatal) -> Self {
        Stop::Fatal(f)
    }
}

/// A subcommand: its doveadm name, usage text, parameters and implementation.
pub struct CmdDef {
    /// Words after `director` (`"ring add"`).
    pub name: &'static str,
    /// The usage text doveadm prints after the name.
    pub usage: &'static str,
    /// Parameters in doveadm's declaration order.
    pub params: &'static [Param],
    /// The implementation.
    pub run: fn(&mut Ctx<'_>) -> Result<(), Stop>,
}

const fn opt(short: u8, name: &'static str, ty: ParamType) -> Param {
    Param {
        short: Some(short),
        name,
        ty,
        positional: false,
    }
}

const fn pos(name: &'static str) -> Param {
    Param {
        short: None,
        name,
        ty: ParamType::Str,
        positional: true,
    }
}

const SOCK: Param = opt(b'a', "socket-path", ParamType::Str);
const SOCK_USAGE: &str = "[-a <director socket path>]";

/// Every subcommand, in doveadm's registration order.
pub const COMMANDS: &[CmdDef] = &[
    CmdDef {
        name: "status",
        usage: "[-a <director socket path>] [<user>] [<tag>]",
        params: &[SOCK, pos("user"), pos("tag")],
        run: commands::status,
    },
    CmdDef {
        name: "map",
        usage: "[-a <director socket path>] [-f <users file>] [-h | -u] [<host>]",
        params: &[
            SOCK,
            opt(b'f', "users-file", ParamType::Str),
            opt(b'h', "hash-map", ParamType::Bool),
            opt(b'u', "user-map", ParamType::Bool),
            pos("host"),
        ],
        run: commands::map,
    },
    CmdDef {
        name: "add",
        usage: "[-a <director socket path>] [-t <tag>] <host> [<vhost count>]",
        params: &[
            SOCK,
            opt(b't', "tag", ParamType::Str),
            pos("host"),
            pos("vhost-count"),
        ],
        run: hostcmds::add,
    },
    CmdDef {
        name: "update",
        usage: "[-a <director socket path>] <host> <vhost count>",
        params: &[SOCK, pos("host"), pos("vhost-count")],
        run: hostcmds::update,
    },
    CmdDef {
        name: "up",
        usage: "[-a <director socket path>] <host>",
        params: &[SOCK, pos("host")],
        run: hostcmds::up,
    },
    CmdDef {
        name: "down",
        usage: "[-a <director socket path>] <host>",
        params: &[SOCK, pos("host")],
        run: hostcmds::down,
    },
    CmdDef {
        name: "remove",
        usage: "[-a <director socket path>] <host>",
        params: &[SOCK, pos("host")],
        run: hostcmds::remove,
    },
    CmdDef {
        name: "move",
        usage: "[-a <director socket path>] <user> <host>",
        params: &[SOCK, pos("user"), pos("host")],
        run: hostcmds::move_user,
    },
    CmdDef {
        name: "kick",
        usage: "[-a <director socket path>] [-f <passdb field>] <user>",
        params: &[SOCK, opt(b'f', "passdb-field", ParamType::Str), pos("user")],
        run: hostcmds::kick,
    },
    CmdDef {
        name: "flush",
        usage: "[-a <director socket path>] [-F] [--max-parallel <n>] <host>|all",
        params: &[
            SOCK,
            opt(b'F', "force-flush", ParamType::Bool),
            Param {
                short: None,
                name: "max-parallel",
                ty: ParamType::Int64,
                positional: false,
            },
            pos("host"),
        ],
        run: hostcmds::flush,
    },
    CmdDef {
        name: "dump",
        usage: SOCK_USAGE,
        params: &[SOCK],
        run: commands::dump,
    },
    CmdDef {
        name: "ring add",
        usage: "[-a <director socket path>] <ip> [<port>]",
        params: &[SOCK, pos("ip"), pos("port")],
        run: commands::ring_add,
    },
    CmdDef {
        name: "ring remove",
        usage: "[-a <director socket path>] <ip> [<port>]",
        params: &[SOCK, pos("ip"), pos("port")],
        run: commands::ring_remove,
    },
    CmdDef {
        name: "ring status",
        usage: SOCK_USAGE,
        params: &[SOCK],
        run: commands::ring_status,
    },
];

/// Everything a running subcommand needs.
pub struct Ctx<'s> {
    /// Output destination.
    pub sink: &'s mut dyn Sink,
    /// Parsed subcommand parameters.
    pub values: Values,
    /// Effective settings.
    pub settings: Settings,
    /// `-v`/`-D`.
    pub verbose: bool,
    /// The process exit code so far (doveadm's `doveadm_exit_code`).
    pub exit_code: i32,
    /// The admin socket path (given or default).
    pub socket_path: String,
    /// Whether `-a` was given.
    pub explicit_socket_path: bool,
    /// The admin connection, once made.
    pub conn: Option<Conn>,
    printer: Option<Printer>,
    hide_titles: bool,
    columns: usize,
}

impl Ctx<'_> {
    /// `Error: <msg>` on stderr.
    pub fn error(&mut self, msg: &[u8]) {
        self.log(b"Error: ", msg);
    }
    /// `Warning: <msg>` on stderr.
    pub fn warning(&mut self, msg: &[u8]) {
        self.log(b"Warning: ", msg);
    }
    /// `Info: <msg>` on stderr.
    pub fn info(&mut self, msg: &[u8]) {
        self.log(b"Info: ", msg);
    }
    fn log(&mut self, prefix: &[u8], msg: &[u8]) {
        let mut line = prefix.to_vec();
        line.extend_from_slice(msg);
        line.push(b'\n');
        self.sink.err(&line);
    }

    /// Chooses the formatter unless `-f` already forced one.
    pub fn print_init(&mut self, kind: Kind) {
        if self.printer.is_none() {
            self.printer = Some(Printer::new(kind, self.hide_titles, self.columns));
        }
    }

    /// The formatter chosen by [`Ctx::print_init`].
    pub fn printer(&mut self) -> &mut Printer {
        self.printer
            .get_or_insert_with(|| Printer::new(Kind::Flow, true, 80))
    }

    /// Prints one field value; a failure is fatal, as in doveadm.
    pub fn print(&mut self, value: &[u8]) -> Result<(), Stop> {
        self.printer()
            .print(value)
            .map_err(|e| Stop::Fatal(Fatal::tempfail(e.to_string())))
    }

    /// Connects and handshakes (doveadm's `director_connect`).
    pub fn connect(&mut self) -> Result<(), Stop> {
        self.conn = Some(Conn::connect(&self.socket_path)?);
        Ok(())
    }

    /// Sends raw bytes on the admin connection.
    pub fn send(&mut self, data: &[u8]) -> Result<(), Stop> {
        match self.conn.as_mut() {
            Some(c) => Ok(c.send(data)?),
            None => Ok(()),
        }
    }

    /// Reads a reply line; `None` after reporting a disconnect (exit code 75).
    pub fn read_line(&mut self) -> Option<Vec<u8>> {
        let line = match self.conn.as_mut() {
            Some(c) => c.read_line(),
            None => Line::Eof,
        };
        match line {
            Line::Data(l) => Some(l),
            Line::Eof => {
                let msg = format!("{} unexpectedly disconnected", self.socket_path);
                self.error(msg.as_bytes());
                self.exit_code = EX_TEMPFAIL;
                None
            }
            Line::Error(e) => {
                let msg = format!("read({}) failed: {e}", self.socket_path);
                self.error(msg.as_bytes());
                self.exit_code = EX_TEMPFAIL;
                None
            }
        }
    }

    /// A string parameter.
    pub fn param(&self, name: &str) -> Option<Vec<u8>> {
        self.values.str(name).map(<[u8]>::to_vec)
    }
}

/// Runs directorctl with `args` (including the program name) and returns the exit code.
pub fn run(args: Vec<OsString>, sink: &mut dyn Sink) -> i32 {
    let prog = args
        .first()
        .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned())
        .unwrap_or_else(|| "directorctl".to_string());
    let mut settings = Settings::default();
    let mut forced: Option<Kind> = None;
    let mut hide_titles = false;
    let mut verbose = false;
    let mut config: Option<String> = None;
    let mut overrides: Vec<String> = Vec::new();
    // not a doveadm global option, but `directorctl -a <socket> status` reads naturally
    let mut global_socket: Option<String> = None;

    // Global options stop at the first non-option ("+Df:hva:c:o:" in getopt terms; -a is ours).
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_bytes();
        if a == b"--" {
            i += 1;
            break;
        }
        if a == b"--help" {
            let mut text = HELP.to_string();
            for c in COMMANDS {
                text.push_str(&format!("  {:<12} {}\n", c.name, c.usage));
            }
            sink.out(text.as_bytes());
            return 0;
        }
        if a.len() < 2 || a[0] != b'-' {
            break;
        }
        if a.starts_with(b"--") {
            let msg = format!(
                "{prog}: unrecognized option '{}'\n",
                String::from_utf8_lossy(a)
            );
            sink.err(msg.as_bytes());
            return EX_FATAL_DEFAULT;
        }
        i += 1;
        let mut j = 1;
        while j < a.len() {
            let c = a[j];
            j += 1;
            match c {
                b'D' | b'v' => verbose = true,
                b'h' => hide_titles = true,
                b'f' | b'c' | b'o' | b'a' => {
                    let value = if j < a.len() {
                        let v = a[j..].to_vec();
                        j = a.len();
                        v
                    } else if let Some(v) = args.get(i) {
                        i += 1;
                        v.as_bytes().to_vec()
                    } else {
                        let msg =
                            format!("{prog}: option requires an argument -- '{}'\n", c as char);
                        sink.err(msg.as_bytes());
                        return EX_FATAL_DEFAULT;
                    };
                    let value = String::from_utf8_lossy(&value).into_owned();
                    match c {
                        // like doveadm, only the first -f counts (later ones are not checked)
                        b'f' if forced.is_some() => {}
                        b'f' => match Kind::from_name(&value) {
                            Some(k) => forced = Some(k),
                            None => {
                                let msg =
                                    format!("{prog}: Fatal: Unknown print formatter: {value}\n");
                                sink.err(msg.as_bytes());
                                return EX_TEMPFAIL;
                            }
                        },
                        b'c' => config = Some(value),
                        b'a' => global_socket = Some(value),
                        _ => overrides.push(value),
                    }
                }
                _ => {
                    let msg = format!("{prog}: invalid option -- '{}'\n", c as char);
                    sink.err(msg.as_bytes());
                    return EX_FATAL_DEFAULT;
                }
            }
        }
    }
    if let Some(path) = &config {
        if let Err(e) = settings.load_file(path) {
            sink.err(format!("Fatal: {e}\n").as_bytes());
            return EX_TEMPFAIL;
        }
    }
    for o in &overrides {
        if let Err(e) = settings.apply_override(o) {
            sink.err(format!("Fatal: {e}\n").as_bytes());
            return EX_TEMPFAIL;
        }
    }

    // Optional leading "director" so `directorctl director status` works too.
    let mut rest = &args[i..];
    if rest.first().map(|a| a.as_bytes()) == Some(b"director") {
        rest = &rest[1..];
    }
    let Some((cmd, skip)) = find_command(rest) else {
        sink.err(DIRECTOR_USAGE.as_bytes());
        return EX_USAGE;
    };
    // getopt reports errors under the last word of the command name, like doveadm.
    let getopt_prog = cmd.name.rsplit(' ').next().unwrap_or(cmd.name);
    let values = match getopt::parse(getopt_prog, cmd.params, &rest[skip..]) {
        Ok(v) => v,
        Err(e) => {
            sink.err(&e.0);
            return EX_USAGE;
        }
    };
    let (socket_path, explicit) = match (values.str("socket-path"), global_socket) {
        (Some(p), _) => (String::from_utf8_lossy(p).into_owned(), true),
        (None, Some(p)) => (p, true),
        (None, None) => (format!("{}/director-admin", settings.base_dir), false),
    };
    let mut ctx = Ctx {
        sink,
        values,
        settings,
        verbose,
        exit_code: 0,
        socket_path,
        explicit_socket_path: explicit,
        conn: None,
        printer: None,
        hide_titles,
        columns: super::format::terminal_columns(),
    };
    if let Some(k) = forced {
        ctx.print_init(k);
    }
    let result = (cmd.run)(&mut ctx);
    finish(ctx, cmd, result)
}

fn finish(mut ctx: Ctx<'_>, cmd: &CmdDef, result: Result<(), Stop>) -> i32 {
    match result {
        Ok(()) => {
            if let Some(p) = ctx.printer.take() {
                let out = p.finish();
                ctx.sink.out(&out);
            }
            ctx.exit_code
        }
        Err(Stop::Usage) => {
            let line = format!("doveadm director {} {}\n", cmd.name, cmd.usage);
            ctx.sink.err(line.as_bytes());
            EX_USAGE
        }
        Err(Stop::Fatal(f)) => {
            ctx.sink.err(format!("Fatal: {}\n", f.msg).as_bytes());
            f.code
        }
    }
}

/// Matches the leading words of `args` against the command names; returns the command and
/// how many words its name used.
fn find_command(args: &[OsString]) -> Option<(&'static CmdDef, usize)> {
    COMMANDS.iter().find_map(|c| {
        let words: Vec<&str> = c.name.split(' ').collect();
        let matches = words.len() <= args.len()
            && words
                .iter()
                .zip(args)
                .all(|(w, a)| w.as_bytes() == a.as_bytes());
        matches.then_some((c, words.len()))
    })
}
