//! doveadm's output formatters (`table`, `tab`, `flow`, `json`, `pager`, `formatted`), byte for
//! byte. Output is collected in memory and written by the caller at exit, like doveadm's corked
//! output stream.
//!
//! Model (doveadm-print): a formatter is chosen once (a forced `-f` wins over the one the
//! subcommand asks for); the subcommand declares headers, then prints values one field at a
//! time, row after row.

/// Header flag: the title is not shown (table/flow/pager).
pub const HIDE_TITLE: u8 = 1;
/// Header flag: the table gives this column the spare width.
pub const EXPAND: u8 = 2;

/// Terminal width used when stdout is not a terminal.
pub const DEFAULT_COLUMNS: usize = 80;
/// Smallest terminal width honoured.
const MIN_COLUMNS: usize = 30;
/// The table computes column widths from at most this many buffered rows.
const MAX_BUFFER_LINES: usize = 100;

/// Which formatter is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `name=value` pairs per row.
    Flow,
    /// TAB-separated values with a title line.
    Tab,
    /// Padded columns.
    Table,
    /// `title: value` lines, rows separated by form feeds.
    Pager,
    /// A JSON array of objects.
    Json,
    /// `%{key}` substitution into a per-command format.
    Formatted,
}

impl Kind {
    /// The formatter with doveadm's name `name`.
    pub fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "flow" => Kind::Flow,
            "tab" => Kind::Tab,
            "table" => Kind::Table,
            "pager" => Kind::Pager,
            "json" => Kind::Json,
            "formatted" => Kind::Formatted,
            _ => return None,
        })
    }
}

/// A formatter could not print (doveadm makes this fatal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// `formatted` was forced on a subcommand that has no format.
    #[error("formatted formatter cannot be used without a format.")]
    NoFormat,
}

#[derive(Debug, Clone)]
struct Header {
    key: Vec<u8>,
    title: Vec<u8>,
    flags: u8,
    min: usize,
    max: usize,
    len: usize,
}

/// One doveadm output formatter instance and the bytes it produced so far.
#[derive(Debug)]
pub struct Printer {
    kind: Kind,
    hide_titles: bool,
    columns: usize,
    headers: Vec<Header>,
    idx: usize,
    out: Vec<u8>,
    // table
    buffered: Vec<Vec<u8>>,
    lengths_set: bool,
    // tab
    tab_header_written: bool,
    // json
    json_first_row: bool,
    json_flushed: bool,
    // pager
    pager_first_page: bool,
    // formatted
    format: Option<Vec<u8>>,
    row: Vec<Vec<u8>>,
}

impl Printer {
    /// A new formatter; `columns` is the terminal width for `table` (see [`terminal_columns`]).
    pub fn new(kind: Kind, hide_titles: bool, columns: usize) -> Printer {
        Printer {
            kind,
            hide_titles,
            columns,
            headers: Vec::new(),
            idx: 0,
            out: Vec::new(),
            buffered: Vec::new(),
            lengths_set: false,
            tab_header_written: false,
            json_first_row: true,
            json_flushed: false,
            pager_first_page: true,
            format: None,
            row: Vec::new(),
        }
    }

    /// The formatter in use.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Sets the format of the `formatted` formatter (ignored by the others).
    pub fn set_format(&mut self, format: &str) {
        self.format = Some(format.as_bytes().to_vec());
    }

    /// Declares the next column.
    pub fn header(&mut self, key: &str, title: &str, flags: u8) {
        if self.kind == Kind::Tab && !self.hide_titles {
            if !self.headers.is_empty() {
                self.out.push(b'\t');
            }
            self.out.extend_from_slice(title.as_bytes());
        }
        let l = title.len();
        self.headers.push(Header {
            key: key.as_bytes().to_vec(),
            title: title.as_bytes().to_vec(),
            flags,
            min: l,
            max: l,
            len: l,
        });
    }

    /// Declares a column whose key and title are the same.
    pub fn header_simple(&mut self, key_title: &str) {
        self.header(key_title, key_title, 0);
    }

    /// Prints the next field value.
    pub fn print(&mut self, value: &[u8]) -> Result<(), FormatError> {
        if self.headers.is_empty() {
            // doveadm would index past its header array; nothing sensible to print.
            return Ok(());
        }
        match self.kind {
            Kind::Table => self.table_print(value),
            Kind::Tab => self.tab_print(value),
            Kind::Flow => self.flow_print(value),
            Kind::Pager => self.pager_print(value),
            Kind::Json => self.json_print(value),
            Kind::Formatted => return self.formatted_print(value),
        }
        Ok(())
    }

    /// Ends the output (doveadm's flush at deinit) and returns every byte produced.
    pub fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.out
    }

    fn flush(&mut self) {
        match self.kind {
            Kind::Table => {
                if !self.lengths_set && !self.headers.is_empty() {
                    self.table_buffer_flush();
                }
            }
            Kind::Tab => self.tab_flush_header(),
            Kind::Flow | Kind::Pager => {
                if self.idx != 0 {
                    self.out.push(b'\n');
                    self.idx = 0;
                }
            }
            Kind::Json => {
                if !self.json_flushed {
                    self.json_flushed = true;
                    if self.json_first_row {
                        self.out.extend_from_slice(b"[]");
                    } else {
                        self.out.push(b']');
                    }
                }
            }
            Kind::Formatted => {}
        }
    }

    fn next_idx(&mut self) -> bool {
        self.idx += 1;
        if self.idx == self.headers.len() {
            self.idx = 0;
            true
        } else {
            false
        }
    }

    // ---- table -------------------------------------------------------------------------

    fn table_print(&mut self, value: &[u8]) {
        if !self.lengths_set {
            let lines = self.buffered.len() / self.headers.len();
            if lines < MAX_BUFFER_LINES {
                self.buffered.push(value.to_vec());
                return;
            }
            self.table_buffer_flush();
        }
        self.table_next(value);
    }

    fn table_buffer_flush(&mut self) {
        self.calc_lengths();
        self.table_titles();
        let values = std::mem::take(&mut self.buffered);
        for v in &values {
            self.table_next(v);
        }
    }

    fn calc_lengths(&mut self) {
        self.lengths_set = true;
        let n = self.headers.len();
        for (i, v) in self.buffered.iter().enumerate() {
            let h = &mut self.headers[i % n];
            let l = utf8_strlen(v);
            h.min = h.min.min(l);
            if h.max < l {
                h.max = l;
                h.len = l;
            }
        }
        let mut total: usize = self.headers.iter().map(|h| h.max + 1).sum::<usize>() - 1;
        let columns = self.columns;
        while total > columns {
            let orig = total;
            for i in (0..n).rev() {
                let h = &mut self.headers[i];
                let diff = h.len - h.min;
                if total - diff <= columns {
                    let d = total - columns;
                    h.len -= d;
                    total -= d;
                    break;
                }
                if diff > 0 {
                    h.len -= if diff == 1 { 1 } else { diff / 2 };
                }
            }
            if total == orig {
                break;
            }
        }
        if total < columns {
            let i = self
                .headers
                .iter()
                .position(|h| h.flags & EXPAND != 0)
                .unwrap_or(n - 1);
            self.headers[i].len += (columns - total) / 2;
        }
    }

    fn table_titles(&mut self) {
        if self.hide_titles || self.headers.iter().all(|h| h.flags & HIDE_TITLE != 0) {
            return;
        }
        for i in 0..self.headers.len() {
            if i > 0 {
                self.out.push(b' ');
            }
            let h = &self.headers[i];
            self.out.extend_from_slice(&h.title);
            let pad = h.len.saturating_sub(h.title.len());
            self.out.extend(std::iter::repeat(b' ').take(pad));
        }
        self.out.push(b'\n');
    }

    fn table_next(&mut self, value: &[u8]) {
        // C strings end at NUL; printf pads to `len` bytes plus the UTF-8 continuation bytes.
        let value = c_str(value);
        let h = &self.headers[self.idx];
        let width = h.len + value.iter().filter(|&&b| b & 0xc0 == 0x80).count();
        self.out.extend_from_slice(value);
        let pad = width.saturating_sub(value.len());
        self.out.extend(std::iter::repeat(b' ').take(pad));
        if self.next_idx() {
            self.out.push(b'\n');
        } else {
            self.out.push(b' ');
        }
    }

    // ---- tab ---------------------------------------------------------------------------

    fn tab_flush_header(&mut self) {
        if !self.tab_header_written {
            if !self.hide_titles {
                self.out.push(b'\n');
            }
            self.tab_header_written = true;
        }
    }

    fn tab_print(&mut self, value: &[u8]) {
        self.tab_flush_header();
        if self.idx > 0 {
            self.out.push(b'\t');
        }
        self.out.extend_from_slice(c_str(value));
        if self.next_idx() {
            self.out.push(b'\n');
        }
    }

    // ---- flow --------------------------------------------------------------------------

    fn flow_print(&mut self, value: &[u8]) {
        let h = &self.headers[self.idx];
        if h.flags & HIDE_TITLE == 0 {
            self.out.extend_from_slice(&h.title);
            self.out.push(b'=');
        }
        self.out.extend_from_slice(c_str(value));
        if self.next_idx() {
            self.out.push(b'\n');
        } else {
            self.out.push(b' ');
        }
    }

    // ---- pager -------------------------------------------------------------------------

    fn pager_print(&mut self, value: &[u8]) {
        if self.idx == 0 && !self.pager_first_page {
            self.out.extend_from_slice(b"\x0c\n");
        }
        self.pager_first_page = false;
        let h = &self.headers[self.idx];
        if h.flags & HIDE_TITLE == 0 {
            self.out.extend_from_slice(&h.title);
            self.out.extend_from_slice(b": ");
        }
        self.out.extend_from_slice(c_str(value));
        self.out.push(b'\n');
        self.next_idx();
    }

    // ---- json --------------------------------------------------------------------------

    fn json_print(&mut self, value: &[u8]) {
        if self.idx == 0 {
            if self.json_first_row {
                self.json_first_row = false;
                self.out.push(b'[');
            } else {
                self.out.push(b',');
            }
            self.out.push(b'{');
        } else {
            self.out.push(b',');
        }
        self.out.push(b'"');
        let key = self.headers[self.idx].key.clone();
        json_escape_into(&key, &mut self.out);
        self.out.extend_from_slice(b"\":\"");
        json_escape_into(c_str(value), &mut self.out);
        self.out.push(b'"');
        if self.next_idx() {
            self.out.push(b'}');
        }
    }

    // ---- formatted ---------------------------------------------------------------------

    fn formatted_print(&mut self, value: &[u8]) -> Result<(), FormatError> {
        let Some(format) = self.format.clone() else {
            return Err(FormatError::NoFormat);
        };
        self.row.push(c_str(value).to_vec());
        if self.row.len() >= self.headers.len() {
            let row = std::mem::take(&mut self.row);
            self.expand_format(&format, &row);
        }
        Ok(())
    }

    /// `%{key}` → value, `%%` → `%`; the formats doveadm uses contain nothing else.
    fn expand_format(&mut self, format: &[u8], row: &[Vec<u8>]) {
        let mut i = 0;
        while i < format.len() {
            let c = format[i];
            if c == b'%' && format.get(i + 1) == Some(&b'%') {
                self.out.push(b'%');
                i += 2;
            } else if c == b'%' && format.get(i + 1) == Some(&b'{') {
                let rest = &format[i + 2..];
                let Some(end) = rest.iter().position(|&b| b == b'}') else {
                    self.out.extend_from_slice(&format[i..]);
                    return;
                };
                let key = &rest[..end];
                if let Some(pos) = self.headers.iter().position(|h| h.key == key) {
                    if let Some(v) = row.get(pos) {
                        self.out.extend_from_slice(v);
                    }
                }
                i += 2 + end + 1;
            } else {
                self.out.push(c);
                i += 1;
            }
        }
    }
}

/// The terminal width doveadm's table uses: stdout's column count (at least 30) when stdout is
/// a terminal, else 80.
pub fn terminal_columns() -> usize {
    // SAFETY: `ws` is a plain C struct valid when zeroed; TIOCGWINSZ writes only into it and
    // fails harmlessly when fd 1 is not a terminal.
    let cols = unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 {
            Some(usize::from(ws.ws_col))
        } else {
            None
        }
    };
    match cols {
        Some(c) => c.max(MIN_COLUMNS),
        None => DEFAULT_COLUMNS,
    }
}

/// The part of `v` a C string would hold (up to the first NUL).
fn c_str(v: &[u8]) -> &[u8] {
    match memchr_nul(v) {
        Some(p) => &v[..p],
        None => v,
    }
}

fn memchr_nul(v: &[u8]) -> Option<usize> {
    v.iter().position(|&b| b == 0)
}

/// Dovecot's `uni_utf8_strlen`: characters counted by lead-byte length, an incomplete
/// trailing sequence not counted.
pub fn utf8_strlen(v: &[u8]) -> usize {
    let v = c_str(v);
    let mut i = 0;
    let mut n = 0;
    while i < v.len() {
        let step = utf8_char_bytes(v[i]);
        if i + step > v.len() {
            break;
        }
        i += step;
        n += 1;
    }
    n
}

fn utf8_char_bytes(b: u8) -> usize {
    match b {
        0..=0xc1 => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        0xf8..=0xfb => 5,
        0xfc..=0xfd => 6,
        _ => 1,
    }
}

/// Decodes one UTF-8 character like Dovecot's `uni_utf8_get_char_n`; `None` when the bytes at
/// the start of `v` are not a complete, valid, shortest-form sequence of a valid code point.
fn utf8_decode(v: &[u8]) -> Option<(u32, usize)> {
    let b0 = v[0];
    if b0 < 0x80 {
        return Some((u32::from(b0), 1));
    }
    let len = utf8_char_bytes(b0);
    let mut chr = u32::from(b0)
        & match len {
            2 => 0x1f,
            3 => 0x0f,
            4 => 0x07,
            5 => 0x03,
            6 => 0x01,
            _ => return None,
        };
    if len > v.len() {
        return None;
    }
    for &b in &v[1..len] {
        if b & 0xc0 != 0x80 {
            return None;
        }
        chr = (chr << 6) | u32::from(b & 0x3f);
    }
    let lowest = [0, 0, 0x80, 0x800, 0x10000, 0x20_0000, 0x400_0000][len];
    if (0xd800..=0xdfff).contains(&chr) || chr > 0x10_ffff || chr < lowest {
        return None;
    }
    Some((chr, len))
}

/// Dovecot's `json_append_escaped`: `\b \f \n \r \t \" \\`, other controls as `\u00xx`,
/// U+2028/U+2029 as `\u2028`/`\u2029`, each byte of invalid UTF-8 as U+FFFD.
pub fn json_escape_into(v: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < v.len() {
        match utf8_decode(&v[i..]) {
            Some((chr, n)) => {
                if chr < 0x80 {
                    let c = chr as u8;
                    match c {
                        0x08 => out.extend_from_slice(b"\\b"),
                        0x0c => out.extend_from_slice(b"\\f"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'"' => out.extend_from_slice(b"\\\""),
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        c if c < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c).as_bytes()),
                        c => out.push(c),
                    }
                } else if chr == 0x2028 || chr == 0x2029 {
                    out.extend_from_slice(format!("\\u{:04x}", chr).as_bytes());
                } else {
                    out.extend_from_slice(&v[i..i + n]);
                }
                i += n;
            }
            None => {
                out.extend_from_slice("\u{fffd}".as_bytes());
                i += 1;
            }
        }
    }
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
