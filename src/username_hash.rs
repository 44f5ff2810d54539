//! The 32-bit user hash: `director_username_hash` expanded, MD5-hashed, first four bytes.
//!
//! Replaces Dovecot's `mail_user_hash()` (`src/lib-mail/mail-user-hash.c`) and the subset of
//! `var_expand()` (`src/lib/var-expand.c`) a hash format can sensibly use: `%u %n %d`,
//! `%{user} %{username} %{domain}`, `%%`, the `L`/`U` modifiers and width/offset
//! (`user-directory.md` §2). Every other variable or modifier is rejected when the format is
//! parsed, so we fail at startup instead of hashing differently from Dovecot.
//!
//! No I/O. The format is parsed once; hashing a name allocates nothing for the default `%Lu`
//! and `%u` formats.

use md5::{Digest, Md5};
use std::fmt;

/// Dovecot's `MAX_MODIFIER_COUNT`: a further modifier letter is read as the variable name.
const MAX_MODIFIER_COUNT: usize = 10;

/// Modifier letters Dovecot 2.3 knows; only `L` and `U` are supported here.
const DOVECOT_MODIFIERS: &[u8] = b"LUEXRHNMDT";

/// A parsed `director_username_hash` format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsernameHash {
    format: String,
    plan: Plan,
}

/// How a name is turned into the bytes that get hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Plan {
    /// Exactly `%u`: the name itself.
    Raw,
    /// Exactly `%Lu`: the name with ASCII upper case lowered.
    Lower,
    /// Anything else: expand piece by piece.
    Pieces(Vec<Piece>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Field(Field),
}

/// One `%[-][0]<n>[.[0][-]<m>][mods]<var>` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Field {
    var: Var,
    /// The last of the `L`/`U` modifiers wins, as they are applied left to right.
    case: Option<Case>,
    offset: i32,
    width: i32,
    zero_padding: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Var {
    User,
    Name,
    Domain,
    Percent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Lower,
    Upper,
}

/// Why a `director_username_hash` value cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Unsupported {what} '{part}' in director_username_hash={format}")]
pub struct HashFormatError {
    /// The whole format as configured.
    pub format: String,
    /// `variable` or `modifier`.
    pub what: &'static str,
    /// The offending part, e.g. `%x`, `%{pid}` or `M`.
    pub part: String,
}

impl UsernameHash {
    /// Parse a `director_username_hash` format; anything outside the supported subset fails.
    pub fn new(format: &str) -> Result<Self, HashFormatError> {
        let plan = match format {
            "%u" => Plan::Raw,
            "%Lu" => Plan::Lower,
            _ => Plan::Pieces(parse_pieces(format)?),
        };
        Ok(UsernameHash {
            format: format.to_owned(),
            plan,
        })
    }

    /// The format this was built from.
    pub fn format(&self) -> &str {
        &self.format
    }

    /// The user hash: first four MD5 bytes of the expansion, big-endian, with 0 mapped to 1.
    pub fn hash(&self, user: &[u8]) -> u32 {
        let user = c_string(user);
        let digest: [u8; 16] = match &self.plan {
            Plan::Raw => Md5::digest(user).into(),
            Plan::Lower => {
                let mut md5 = Md5::new();
                let mut buf = [0u8; 64];
                for chunk in user.chunks(buf.len()) {
                    let out = &mut buf[..chunk.len()];
                    out.copy_from_slice(chunk);
                    out.make_ascii_lowercase();
                    md5.update(&*out);
                }
                md5.finalize().into()
            }
            Plan::Pieces(_) => Md5::digest(self.expand(user)).into(),
        };
        match u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) {
            0 => 1,
            h => h,
        }
    }

    /// The bytes that get hashed for `user`.
    pub fn expand(&self, user: &[u8]) -> Vec<u8> {
        let user = c_string(user);
        match &self.plan {
            Plan::Raw => user.to_vec(),
            Plan::Lower => user.to_ascii_lowercase(),
            Plan::Pieces(pieces) => {
                let mut out = Vec::with_capacity(user.len() + 8);
                for piece in pieces {
                    match piece {
                        Piece::Literal(bytes) => out.extend_from_slice(bytes),
                        Piece::Field(field) => field.expand_into(user, &mut out),
                    }
                }
                out
            }
        }
    }
}

impl Default for UsernameHash {
    /// Dovecot's default format, `%Lu`.
    fn default() -> Self {
        UsernameHash {
            format: "%Lu".to_owned(),
            plan: Plan::Lower,
        }
    }
}

impl fmt::Display for UsernameHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format)
    }
}

/// Dovecot works on C strings: a name is cut at its first NUL byte.
fn c_string(user: &[u8]) -> &[u8] {
    match user.iter().position(|&b| b == 0) {
        Some(end) => &user[..end],
        None => user,
    }
}

fn parse_pieces(format: &str) -> Result<Vec<Piece>, HashFormatError> {
    let s = format.as_bytes();
    let err = |what: &'static str, part: String| HashFormatError {
        format: format.to_owned(),
        what,
        part,
    };
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'%' {
            literal.push(s[i]);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        let mut field = Field {
            var: Var::Percent,
            case: None,
            offset: 0,
            width: 0,
            zero_padding: false,
        };
        let mut sign = 1i32;
        if s.get(i) == Some(&b'-') {
            sign = -1;
            i += 1;
        }
        if s.get(i) == Some(&b'0') {
            field.zero_padding = true;
            i += 1;
        }
        field.width = read_number(s, &mut i);
        if s.get(i) == Some(&b'.') {
            // The number before the dot was an offset; a sign without a dot is ignored.
            field.offset = sign.wrapping_mul(field.width);
            sign = 1;
            i += 1;
            field.zero_padding = false;
            if s.get(i) == Some(&b'0') {
                field.zero_padding = true;
                i += 1;
            }
            if s.get(i) == Some(&b'-') {
                sign = -1;
                i += 1;
            }
            field.width = sign.wrapping_mul(read_number(s, &mut i));
        }
        let mut modifiers = 0;
        while modifiers < MAX_MODIFIER_COUNT {
            match s.get(i) {
                Some(b'L') => field.case = Some(Case::Lower),
                Some(b'U') => field.case = Some(Case::Upper),
                Some(&m) if DOVECOT_MODIFIERS.contains(&m) => {
                    return Err(err("modifier", char::from(m).to_string()));
                }
                _ => break,
            }
            modifiers += 1;
            i += 1;
        }
        let Some(&key) = s.get(i) else {
            // Dovecot silently drops a `%` (with its width and modifiers) at the very end.
            break;
        };
        if key == b'{' && s[i..].contains(&b'}') {
            let (name, end) = long_key(s, i);
            field.var = match name {
                b"user" => Var::User,
                b"username" => Var::Name,
                b"domain" => Var::Domain,
                _ => {
                    let part = String::from_utf8_lossy(&s[start..end.min(s.len())]);
                    return Err(err("variable", part.into_owned()));
                }
            };
            i = end;
        } else {
            field.var = match key {
                b'u' => Var::User,
                b'n' => Var::Name,
                b'd' => Var::Domain,
                b'%' => Var::Percent,
                _ => {
                    let ch = format[i..].chars().next().unwrap_or('?');
                    return Err(err("variable", format!("%{ch}")));
                }
            };
            i += 1;
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Field(field));
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

/// Decimal digits as C's `int` accumulates them (wrapping where C would overflow).
fn read_number(s: &[u8], i: &mut usize) -> i32 {
    let mut n = 0i32;
    while let Some(&d) = s.get(*i).filter(|d| d.is_ascii_digit()) {
        n = n.wrapping_mul(10).wrapping_add(i32::from(d - b'0'));
        *i += 1;
    }
    n
}

/// `%{...}` starting at `open`: nested braces count, a backslash escapes the next byte. Returns
/// the name and the index just past the closing brace (or the end of the format).
fn long_key(s: &[u8], open: usize) -> (&[u8], usize) {
    let mut depth = 1;
    let mut escape = false;
    let mut j = open + 1;
    while j < s.len() {
        let c = s[j];
        if escape {
            escape = false;
        } else if c == b'\\' {
            escape = true;
        } else if c == b'{' {
            depth += 1;
        } else if c == b'}' {
            depth -= 1;
            if depth == 0 {
                return (&s[open + 1..j], j + 1);
            }
        }
        j += 1;
    }
    (&s[open + 1..], s.len())
}

impl Field {
    fn expand_into(&self, user: &[u8], out: &mut Vec<u8>) {
        let value: &[u8] = match self.var {
            Var::User => user,
            Var::Name => match user.iter().position(|&b| b == b'@') {
                Some(at) => &user[..at],
                None => user,
            },
            Var::Domain => match user.iter().position(|&b| b == b'@') {
                Some(at) => &user[at + 1..],
                None => b"",
            },
            Var::Percent => b"%",
        };
        let mut value = match self.case {
            None => std::borrow::Cow::Borrowed(value),
            Some(Case::Lower) => std::borrow::Cow::Owned(value.to_ascii_lowercase()),
            Some(Case::Upper) => std::borrow::Cow::Owned(value.to_ascii_uppercase()),
        };
        let len = value.len();
        let skip = if self.offset < 0 {
            // Keep only the last |offset| bytes, if there are more than that.
            let keep = self.offset.unsigned_abs() as usize;
            len.saturating_sub(keep)
        } else {
            (self.offset as usize).min(len)
        };
        let value = &value.to_mut()[skip..];
        let len = value.len() as i64;
        if self.width == 0 {
            out.extend_from_slice(value);
        } else if !self.zero_padding {
            // A negative width drops that many trailing bytes; dropping more than there are
            // keeps everything (Dovecot's size_t arithmetic wraps to a huge maximum).
            let max = if self.width < 0 {
                len - i64::from(self.width.unsigned_abs())
            } else {
                i64::from(self.width)
            };
            let take = if max < 0 { len } else { max.min(len) };
            out.extend_from_slice(&value[..take as usize]);
        } else {
            for _ in len..i64::from(self.width) {
                out.push(b'0');
            }
            out.extend_from_slice(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(format: &str, user: &str) -> u32 {
        UsernameHash::new(format).unwrap().hash(user.as_bytes())
    }

    /// user-directory.md §2.4 [verified].
    #[test]
    fn spec_vectors_default_format() {
        let vectors: &[(&[u8], u32)] = &[
            (b"alice", 1669653170),
            (b"bob", 2677887420),
            (b"Alice@Example.COM", 3244357836),
            (b"john@example.com", 3569829268),
            (b"JOHN@EXAMPLE.COM", 3569829268),
            (b"user1", 617210206),
            (b"user2", 2119751227),
            (b"carol", 2845841792),
            (b"dave", 370180999),
            (b"eve", 4201288175),
            (b"info@example.net", 3921434762),
            (b"tom.smith@mail.example.org", 1707703172),
            (b"a", 214005177),
            (b"", 3558706393),
            ("ÄÖ@exämple.com".as_bytes(), 2434408683),
            (b"user620", 4294407931),
            (b"user591", 1620292),
            (b"al\tice", 348597945),
            (b"alice*master", 3053839850),
        ];
        let default = UsernameHash::default();
        let parsed = UsernameHash::new("%Lu").unwrap();
        // The same format through the general expansion path must agree with the fast path.
        let general = UsernameHash {
            format: "%Lu".into(),
            plan: Plan::Pieces(parse_pieces("%Lu").unwrap()),
        };
        for &(user, want) in vectors {
            let name = String::from_utf8_lossy(user);
            assert_eq!(default.hash(user), want, "{name:?}");
            assert_eq!(parsed.hash(user), want, "{name:?}");
            assert_eq!(general.hash(user), want, "{name:?} (general path)");
        }
    }

    /// user-directory.md §2.4, other formats [verified].
    #[test]
    fn spec_vectors_other_formats() {
        assert_eq!(h("%Ln", "Alice@Example.COM"), 1669653170);
        assert_eq!(h("%Ld", "Alice@Example.COM"), 1522187616);
        assert_eq!(h("%Ld", "bob"), 3558706393);
        assert_eq!(h("%u", "Alice@Example.COM"), 3322606254);
        assert_eq!(h("%n@%d", "bob"), 318573226);
    }

    #[test]
    fn name_and_domain_split_at_first_at() {
        let f = UsernameHash::new("%n|%d").unwrap();
        assert_eq!(f.expand(b"x@y@z"), b"x|y@z");
        assert_eq!(f.expand(b"plain"), b"plain|");
    }

    /// Real hashes printed by `doveadm -o director_username_hash=<fmt> director map -u <user>`
    /// of Dovecot 2.3.19.1 (Debian 12) on this project's machine. Columns: format, then the
    /// hash for `alice`, `Alice@Example.COM` and `x@y@z`.
    const DOVEADM_2_3_19_1: &[(&str, [u32; 3])] = &[
        ("%3u", [2251394642, 2056996523, 3791242171]),
        ("%-3u", [2251394642, 2056996523, 3791242171]),
        ("%.3u", [2251394642, 2056996523, 3791242171]),
        ("%03u", [1669653170, 3322606254, 103602303]),
        ("%010u", [1150746530, 3322606254, 2868531047]),
        ("%2.3Lu", [2078275429, 2078275429, 4080139107]),
        ("%-2.1u", [1250560240, 4052099447, 1368314517]),
        ("%LUu", [3065518128, 3142203940, 3542875996]),
        ("%ULu", [1669653170, 3244357836, 103602303]),
        ("%-3.2u", [4032438878, 1117272837, 3232486976]),
        ("%.-2u", [2251394642, 3601819503, 3791242171]),
        ("%2.-2u", [2254179339, 522547541, 1095929974]),
        ("%.-10u", [1669653170, 4265465741, 103602303]),
        ("%10.2u", [3558706393, 679740448, 3558706393]),
        ("%-10.2u", [2535992103, 1407557626, 688534744]),
        ("%.0-3u", [1669653170, 3322606254, 103602303]),
        ("%.03u", [1669653170, 3322606254, 103602303]),
        ("%.010u", [1150746530, 3322606254, 2868531047]),
        ("%0u", [1669653170, 3322606254, 103602303]),
        ("%-0u", [1669653170, 3322606254, 103602303]),
        ("%3n", [2251394642, 2056996523, 2647975009]),
        ("%.2d", [3558706393, 1869381766, 3232486976]),
        ("%-2.2d", [3558706393, 3216948231, 3232853655]),
        ("%3L{user}", [2251394642, 2251394642, 3791242171]),
        ("%{username}", [1669653170, 1682480261, 2647975009]),
        ("%U{domain}", [3558706393, 4104190971, 3992855238]),
        ("%%u", [3034911968, 3034911968, 3034911968]),
        ("a%%b", [394893675, 394893675, 394893675]),
        ("%L%", [198113732, 198113732, 198113732]),
        ("%3%", [198113732, 198113732, 198113732]),
        ("%1.u", [2545602342, 1594329438, 848949229]),
        ("%.u", [1669653170, 3322606254, 103602303]),
        ("%", [3558706393, 3558706393, 3558706393]),
        ("abc%", [2416005272, 2416005272, 2416005272]),
        ("%L", [3558706393, 3558706393, 3558706393]),
        ("%-", [3558706393, 3558706393, 3558706393]),
        ("x%Lu", [684371351, 2204316869, 261278787]),
        ("%Lu%Lu", [1469989812, 144608667, 157335264]),
        ("%.-03u", [2535992103, 2808462679, 688534744]),
        ("%-02.3u", [2605946109, 3216948231, 3232853655]),
    ];

    #[test]
    fn doveadm_width_offset_modifier_table() {
        let users = ["alice", "Alice@Example.COM", "x@y@z"];
        for (format, want) in DOVEADM_2_3_19_1 {
            let f = UsernameHash::new(format).unwrap();
            for (user, want) in users.iter().zip(want) {
                assert_eq!(
                    f.hash(user.as_bytes()),
                    *want,
                    "format {format:?} user {user:?}"
                );
            }
        }
    }

    #[test]
    fn expansion_examples() {
        let cases: &[(&str, &str, &str)] = &[
            ("%2.3Lu", "Alice@Example.COM", "ice"),
            ("%-2.1u", "alice", "c"),
            ("%.-10u", "alice", "alice"),
            ("%010u", "alice", "00000alice"),
            ("%-10.2u", "alice", "al"),
            ("%1.u", "alice", "lice"),
            ("abc%", "alice", "abc"),
        ];
        for (format, user, want) in cases {
            let got = UsernameHash::new(format).unwrap().expand(user.as_bytes());
            assert_eq!(got, want.as_bytes(), "{format:?} {user:?}");
        }
    }

    /// doveadm 2.3.19.1 reports these as `Unknown variable '...'`; we refuse them up front.
    #[test]
    fn unknown_variables_rejected() {
        let cases = [
            ("%x", "%x"),
            ("%{foo}", "%{foo}"),
            ("%{user", "%{"),
            ("%LLLLLLLLLLLu", "%L"),
            ("%{pid}", "%{pid}"),
            ("a%Lé", "%é"),
        ];
        for (format, part) in cases {
            let e = UsernameHash::new(format).unwrap_err();
            assert_eq!(e.what, "variable", "{format}");
            assert_eq!(e.part, part, "{format}");
            assert_eq!(e.format, format);
        }
        assert_eq!(
            UsernameHash::new("%x").unwrap_err().to_string(),
            "Unsupported variable '%x' in director_username_hash=%x"
        );
    }

    #[test]
    fn unsupported_modifiers_rejected() {
        let e = UsernameHash::new("%Mu").unwrap_err();
        assert_eq!((e.what, e.part.as_str()), ("modifier", "M"));
        assert!(UsernameHash::new("%LRu").is_err());
    }

    #[test]
    fn nul_ends_the_name() {
        let f = UsernameHash::default();
        assert_eq!(f.hash(b"alice\0junk"), 1669653170);
        assert_eq!(
            UsernameHash::new("%n").unwrap().hash(b"alice\0x"),
            1669653170
        );
    }
}
