//! Dovecot's tab-escaping (`str_tabescape` / `str_tabunescape` in `src/lib/strescape.c`).
//!
//! Inside a TAB-separated field, NUL, 0x01, TAB, CR and LF are written as 0x01 followed by
//! `0`, `1`, `t`, `r`, `n`. Decoding maps 0x01 + any other byte to that byte and drops a
//! trailing lone 0x01, exactly as Dovecot does.

use std::borrow::Cow;

const ESC: u8 = 0x01;

/// Tab-escape `field` (the inverse of [`unescape`]); borrows when nothing needs escaping.
pub fn escape(field: &[u8]) -> Cow<'_, [u8]> {
    if !field.iter().any(|&b| needs_escape(b)) {
        return Cow::Borrowed(field);
    }
    let mut out = Vec::with_capacity(field.len() + 8);
    escape_into(field, &mut out);
    Cow::Owned(out)
}

/// Append the tab-escaped form of `field` to `out`.
pub fn escape_into(field: &[u8], out: &mut Vec<u8>) {
    for &b in field {
        match b {
            0 => out.extend_from_slice(&[ESC, b'0']),
            ESC => out.extend_from_slice(&[ESC, b'1']),
            b'\t' => out.extend_from_slice(&[ESC, b't']),
            b'\r' => out.extend_from_slice(&[ESC, b'r']),
            b'\n' => out.extend_from_slice(&[ESC, b'n']),
            _ => out.push(b),
        }
    }
}

fn needs_escape(b: u8) -> bool {
    matches!(b, 0 | ESC | b'\t' | b'\r' | b'\n')
}

/// Undo tab-escaping; borrows when the field holds no 0x01.
pub fn unescape(field: &[u8]) -> Cow<'_, [u8]> {
    if !field.contains(&ESC) {
        return Cow::Borrowed(field);
    }
    let mut out = Vec::with_capacity(field.len());
    let mut it = field.iter();
    while let Some(&b) = it.next() {
        if b != ESC {
            out.push(b);
            continue;
        }
        match it.next() {
            Some(b'0') => out.push(0),
            Some(b'1') => out.push(ESC),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(&other) => out.push(other),
            None => {} // trailing lone 0x01 is dropped
        }
    }
    Cow::Owned(out)
}

/// Split a line (without its LF) on every TAB. An empty line yields no fields, as in
/// Dovecot's `t_strsplit_tabescaped`.
pub fn split_tabs(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let empty = line.is_empty();
    line.split(|&b| b == b'\t').filter(move |_| !empty)
}

/// Split a line on TABs and unescape every field.
pub fn split_unescaped(line: &[u8]) -> Vec<Cow<'_, [u8]>> {
    split_tabs(line).map(unescape).collect()
}

/// Join already-unescaped fields with TABs, escaping each one.
pub fn join_escaped<'a>(fields: impl IntoIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        escape_into(f, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_answers() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"alice", b"alice"),
            (b"al\tice", b"al\x01tice"),
            (b"\x01", b"\x011"),
            (b"a\r\nb", b"a\x01r\x01nb"),
            (b"\0", b"\x010"),
        ];
        for (raw, esc) in cases {
            assert_eq!(&*escape(raw), *esc, "escape {raw:?}");
            assert_eq!(&*unescape(esc), *raw, "unescape {esc:?}");
        }
    }

    #[test]
    fn lenient_decoding_like_dovecot() {
        assert_eq!(&*unescape(b"a\x01x"), b"ax");
        assert_eq!(&*unescape(b"abc\x01"), b"abc");
    }

    #[test]
    fn split_keeps_empty_fields() {
        let f: Vec<_> = split_tabs(b"HOST\t10.0.0.1\t100\t\tU0\t").collect();
        assert_eq!(f, vec![&b"HOST"[..], b"10.0.0.1", b"100", b"", b"U0", b""]);
        assert_eq!(split_tabs(b"").count(), 0);
    }

    proptest! {
        #[test]
        fn roundtrip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let e = escape(&bytes).into_owned();
            prop_assert!(!e.contains(&b'\t') && !e.contains(&b'\n') && !e.contains(&b'\r'));
            prop_assert_eq!(unescape(&e).into_owned(), bytes);
        }
    }
}
