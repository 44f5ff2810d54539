//! Host tags: the name that selects a vhost ring and a user directory.
//!
//! Tags are bytes, not strings: they arrive tab-unescaped from the admin and ring protocols,
//! and Dovecot compares them as C strings. The empty tag is the default one.

use std::fmt;

/// A tag name (`""` = the default tag).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(Box<[u8]>);

impl Tag {
    /// A tag from its bytes.
    pub fn new(name: impl Into<Box<[u8]>>) -> Self {
        Tag(name.into())
    }

    /// The default (empty) tag.
    pub fn default_tag() -> Self {
        Tag::default()
    }

    /// The tag's bytes as they appear (unescaped) on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether this is the default (empty) tag.
    pub fn is_default(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Tag {
    fn from(s: &str) -> Self {
        Tag(s.as_bytes().into())
    }
}

impl From<&[u8]> for Tag {
    fn from(b: &[u8]) -> Self {
        Tag(b.into())
    }
}

impl From<Vec<u8>> for Tag {
    fn from(v: Vec<u8>) -> Self {
        Tag(v.into_boxed_slice())
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag(\"{}\")", self.0.escape_ascii())
    }
}

impl fmt::Display for Tag {
    /// Lossy text for logs; never used on the wire.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}
