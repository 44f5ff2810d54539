//! Argument parsing exactly like doveadm's: GNU `getopt_long` (argument permutation, unique
//! prefixes of long options, glibc's error texts), then positional parameters filled in order.
//!
//! doveadm describes each subcommand by a parameter list; every parameter is also a long
//! option named after it (`--socket-path`, `--host`, …), and those with a letter are short
//! options too. clap cannot reproduce these rules or messages, hence this hand-written parser.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// What kind of value a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// A flag without value.
    Bool,
    /// A string.
    Str,
    /// A signed 64-bit number; an unparsable value leaves the parameter unset.
    Int64,
}

/// One doveadm command parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Short option letter, if any.
    pub short: Option<u8>,
    /// Long option name (also the parameter's name).
    pub name: &'static str,
    /// Value type.
    pub ty: ParamType,
    /// Filled from non-option arguments, in declaration order.
    pub positional: bool,
}

/// Parsed parameter values.
#[derive(Debug, Clone, Default)]
pub struct Values {
    entries: Vec<(&'static str, Value)>,
}

/// One parsed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A set flag.
    Bool,
    /// A string value.
    Str(Vec<u8>),
    /// A number.
    Int64(i64),
}

impl Values {
    /// The string value of parameter `name`.
    pub fn str(&self, name: &str) -> Option<&[u8]> {
        self.entries.iter().find_map(|(n, v)| match v {
            Value::Str(s) if *n == name => Some(s.as_slice()),
            _ => None,
        })
    }

    /// Whether flag `name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|(n, v)| *n == name && *v == Value::Bool)
    }

    /// The number given for `name`.
    pub fn int64(&self, name: &str) -> Option<i64> {
        self.entries.iter().find_map(|(n, v)| match v {
            Value::Int64(i) if *n == name => Some(*i),
            _ => None,
        })
    }

    fn is_set(&self, name: &str) -> bool {
        self.entries.iter().any(|(n, _)| *n == name)
    }

    fn set(&mut self, param: &Param, value: &[u8]) {
        let v = match param.ty {
            ParamType::Bool => Value::Bool,
            ParamType::Str => Value::Str(value.to_vec()),
            ParamType::Int64 => match parse_int64(value) {
                Some(i) => Value::Int64(i),
                None => {
                    // doveadm marks the parameter unset again
                    self.entries.retain(|(n, _)| *n != param.name);
                    return;
                }
            },
        };
        // the last occurrence wins, like doveadm overwriting its slot
        self.entries.retain(|(n, _)| *n != param.name);
        self.entries.push((param.name, v));
    }
}

/// Parsing stopped with a usage problem; the message (already formatted, with its newline)
/// goes to stderr and the exit code is 64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub Vec<u8>);

/// Parses `args` (the words after the command name) against `params`; `prog` is the name
/// getopt puts in front of its messages (doveadm passes the last word of the command name).
pub fn parse(prog: &str, params: &[Param], args: &[OsString]) -> Result<Values, UsageError> {
    let mut values = Values::default();
    let mut positionals: Vec<&[u8]> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_bytes();
        i += 1;
        if arg == b"--" {
            positionals.extend(args[i..].iter().map(|a| a.as_bytes()));
            break;
        }
        if arg.len() < 2 || arg[0] != b'-' {
            positionals.push(arg);
            continue;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (param, value) = find_long(prog, params, long)?;
            let value: Vec<u8> = match (param.ty, value) {
                (ParamType::Bool, Some(_)) => {
                    return Err(err(format!(
                        "{prog}: option '--{}' doesn't allow an argument\n",
                        param.name
                    )));
                }
                (ParamType::Bool, None) => Vec::new(),
                (_, Some(v)) => v.to_vec(),
                (_, None) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        v.as_bytes().to_vec()
                    }
                    None => {
                        return Err(err(format!(
                            "{prog}: option '--{}' requires an argument\n",
                            param.name
                        )));
                    }
                },
            };
            values.set(param, &value);
            continue;
        }
        // a cluster of short options
        let mut j = 1;
        while j < arg.len() {
            let c = arg[j];
            j += 1;
            let Some(param) = params.iter().find(|p| p.short == Some(c)) else {
                return Err(err_bytes(prog, b": invalid option -- '", c));
            };
            if param.ty == ParamType::Bool {
                values.set(param, b"");
                continue;
            }
            let value: Vec<u8> = if j < arg.len() {
                let v = arg[j..].to_vec();
                j = arg.len();
                v
            } else if let Some(v) = args.get(i) {
                i += 1;
                v.as_bytes().to_vec()
            } else {
                return Err(err_bytes(prog, b": option requires an argument -- '", c));
            };
            values.set(param, &value);
        }
    }
    for (k, arg) in positionals.iter().enumerate() {
        let Some(param) = params
            .iter()
            .find(|p| p.positional && !values.is_set(p.name))
        else {
            let rest: Vec<&[u8]> = positionals[k..].to_vec();
            let mut msg = b"Error: Extraneous arguments found: ".to_vec();
            msg.extend_from_slice(&rest.join(&b' '));
            msg.push(b'\n');
            return Err(UsageError(msg));
        };
        values.set(param, arg);
    }
    Ok(values)
}

/// Finds a long option like glibc: an exact name, else a unique prefix (prefixes of several
/// options that take the same kind of argument and short letter count as one).
fn find_long<'p, 'a>(
    prog: &str,
    params: &'p [Param],
    text: &'a [u8],
) -> Result<(&'p Param, Option<&'a [u8]>), UsageError> {
    let (name, value) = match text.iter().position(|&b| b == b'=') {
        Some(p) => (&text[..p], Some(&text[p + 1..])),
        None => (text, None),
    };
    if let Some(p) = params.iter().find(|p| p.name.as_bytes() == name) {
        return Ok((p, value));
    }
    let matches: Vec<&Param> = params
        .iter()
        .filter(|p| p.name.as_bytes().starts_with(name))
        .collect();
    let Some(first) = matches.first() else {
        let mut msg = format!("{prog}: unrecognized option '--").into_bytes();
        msg.extend_from_slice(text);
        msg.extend_from_slice(b"'\n");
        return Err(UsageError(msg));
    };
    let differs = |p: &Param| {
        (p.ty == ParamType::Bool) != (first.ty == ParamType::Bool) || p.short != first.short
    };
    if matches.iter().any(|p| differs(p)) {
        let mut msg = format!("{prog}: option '--").into_bytes();
        msg.extend_from_slice(text);
        msg.extend_from_slice(b"' is ambiguous; possibilities:");
        let ambiguous = matches
            .iter()
            .enumerate()
            .filter(|(k, p)| *k == 0 || differs(p));
        for (_, p) in ambiguous {
            msg.extend_from_slice(format!(" '--{}'", p.name).as_bytes());
        }
        msg.push(b'\n');
        return Err(UsageError(msg));
    }
    Ok((first, value))
}

fn err(msg: String) -> UsageError {
    UsageError(msg.into_bytes())
}

fn err_bytes(prog: &str, middle: &[u8], c: u8) -> UsageError {
    let mut msg = prog.as_bytes().to_vec();
    msg.extend_from_slice(middle);
    msg.push(c);
    msg.extend_from_slice(b"'\n");
    UsageError(msg)
}

/// Dovecot's `str_to_int64`: optional `-`, decimal digits, within `i64`.
pub fn parse_int64(v: &[u8]) -> Option<i64> {
    super::timefmt::parse_time(v)
}

/// Convenience for tests and callers holding UTF-8 strings.
pub fn os_args(args: &[&str]) -> Vec<OsString> {
    args.iter()
        .map(|a| OsString::from_vec(a.as_bytes().to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn p(short: Option<u8>, name: &'static str, ty: ParamType, positional: bool) -> Param {
        Param {
            short,
            name,
            ty,
            positional,
        }
    }

    const MAP: &[Param] = &[
        p(Some(b'a'), "socket-path", ParamType::Str, false),
        p(Some(b'f'), "users-file", ParamType::Str, false),
        p(Some(b'h'), "hash-map", ParamType::Bool, false),
        p(Some(b'u'), "user-map", ParamType::Bool, false),
        p(None, "host", ParamType::Str, true),
    ];
    const STATUS: &[Param] = &[
        p(Some(b'a'), "socket-path", ParamType::Str, false),
        p(None, "user", ParamType::Str, true),
        p(None, "tag", ParamType::Str, true),
    ];
    const FLUSH: &[Param] = &[
        p(Some(b'a'), "socket-path", ParamType::Str, false),
        p(Some(b'F'), "force-flush", ParamType::Bool, false),
        p(None, "max-parallel", ParamType::Int64, false),
        p(None, "host", ParamType::Str, true),
    ];

    fn run(prog: &str, params: &[Param], args: &[&str]) -> Result<Values, String> {
        parse(prog, params, &os_args(args)).map_err(|e| String::from_utf8(e.0).unwrap())
    }

    // Expected messages below were printed by the real doveadm 2.3.19.1.
    #[test]
    fn glibc_messages() {
        assert_eq!(
            run("status", STATUS, &["-x"]).unwrap_err(),
            "status: invalid option -- 'x'\n"
        );
        assert_eq!(
            run("status", STATUS, &["--bogus"]).unwrap_err(),
            "status: unrecognized option '--bogus'\n"
        );
        assert_eq!(
            run("status", STATUS, &["--socket-path=/x", "--a=5"]).unwrap_err(),
            "status: unrecognized option '--a=5'\n"
        );
        assert_eq!(
            run("status", STATUS, &["a", "b", "c"]).unwrap_err(),
            "Error: Extraneous arguments found: c\n"
        );
        assert_eq!(
            run("status", STATUS, &["--tag"]).unwrap_err(),
            "status: option '--tag' requires an argument\n"
        );
    }

    #[test]
    fn permutation_and_prefixes() {
        let v = run("flush", FLUSH, &["10.0.0.1", "-F", "--max", "5"]).unwrap();
        assert!(v.flag("force-flush"));
        assert_eq!(v.int64("max-parallel"), Some(5));
        assert_eq!(v.str("host"), Some(&b"10.0.0.1"[..]));
        let v = run("flush", FLUSH, &["--max-parallel=x", "all"]).unwrap();
        assert_eq!(v.int64("max-parallel"), None);
        let v = run("map", MAP, &["-hf", "users", "--", "-5"]).unwrap();
        assert!(v.flag("hash-map"));
        assert_eq!(v.str("users-file"), Some(&b"users"[..]));
        assert_eq!(v.str("host"), Some(&b"-5"[..]));
        assert_eq!(
            run("map", MAP, &["--user"]).unwrap_err(),
            "map: option '--user' is ambiguous; possibilities: '--users-file' '--user-map'\n"
        );
        assert_eq!(
            run("map", MAP, &["--hash-map=1"]).unwrap_err(),
            "map: option '--hash-map' doesn't allow an argument\n"
        );
        let v = run("status", STATUS, &["--tag", "t", "u"]).unwrap();
        assert_eq!(v.str("user"), Some(&b"u"[..]));
        assert_eq!(v.str("tag"), Some(&b"t"[..]));
    }
}
