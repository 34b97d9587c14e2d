//! Lossless paths: evidence names are bytes, not text.
//!
//! Names on seized media may be invalid UTF-8 (Latin-1 from old Windows
//! installs, Shift-JIS, deliberate garbage) or contain newlines and escape
//! sequences. [`RawPath`] keeps the exact bytes; machine output stores UTF-8
//! names as text and anything else as base64 under a different key, and human
//! output escapes what a terminal would interpret.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A path relative to the evidence root, as raw bytes with `/` separators.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RawPath(Vec<u8>);

impl RawPath {
    /// Wraps raw bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        RawPath(bytes.into())
    }

    /// The bytes of a filesystem path.
    pub fn from_path(p: &Path) -> Self {
        RawPath(p.as_os_str().as_bytes().to_vec())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The path as `&str` when it is valid UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// As an OS path, for system calls.
    pub fn as_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.0))
    }

    /// `self/name`, or `name` when `self` is empty.
    pub fn join(&self, name: &[u8]) -> RawPath {
        let mut v = Vec::with_capacity(self.0.len() + 1 + name.len());
        v.extend_from_slice(&self.0);
        if !v.is_empty() {
            v.push(b'/');
        }
        v.extend_from_slice(name);
        RawPath(v)
    }

    /// A child item's path: `self!member` (`photos.zip!DCIM/a.jpg`). The
    /// parts are recorded apart too ([`crate::item::Within`]): a `!` in a
    /// name does not make this ambiguous there.
    pub fn join_member(&self, member: &RawPath) -> RawPath {
        let mut v = Vec::with_capacity(self.0.len() + 1 + member.0.len());
        v.extend_from_slice(&self.0);
        v.push(b'!');
        v.extend_from_slice(&member.0);
        RawPath(v)
    }

    /// `root/self` as an OS path.
    pub fn under(&self, root: &Path) -> PathBuf {
        if self.0.is_empty() {
            root.to_path_buf()
        } else {
            root.join(self.as_path())
        }
    }

    /// The final extension (after the last `.` of the last component), if any.
    pub fn extension(&self) -> Option<&[u8]> {
        let name = self.0.rsplit(|&b| b == b'/').next()?;
        let dot = name.iter().rposition(|&b| b == b'.')?;
        // ".bashrc" has no extension; "x." has an empty one, which is none.
        if dot == 0 || dot + 1 == name.len() {
            return None;
        }
        Some(&name[dot + 1..])
    }

    /// A form safe to print on a terminal: valid UTF-8 printed as is except
    /// control, bidi-override and zero-width characters, which become `\u{..}`
    /// escapes; invalid bytes become `\xNN`. Not reversible; machine output
    /// uses the raw bytes.
    pub fn escaped(&self) -> String {
        escape_bytes(&self.0)
    }
}

/// Terminal-safe rendering of arbitrary bytes; see [`RawPath::escaped`].
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_dangerous(c) {
                out.push_str(&c.escape_unicode().to_string());
            } else if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}' // zero-width and LRM/RLM
            | '\u{202a}'..='\u{202e}' // bidi embedding and override
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{feff}')
}

impl fmt::Debug for RawPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawPath(\"{}\")", self.escaped())
    }
}

impl fmt::Display for RawPath {
    /// The terminal-safe form, [`RawPath::escaped`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.escaped())
    }
}

impl From<&str> for RawPath {
    fn from(s: &str) -> Self {
        RawPath(s.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_rules() {
        assert_eq!(RawPath::from("a/b.JPG").extension(), Some(&b"JPG"[..]));
        assert_eq!(RawPath::from("a.d/b").extension(), None);
        assert_eq!(RawPath::from(".bashrc").extension(), None);
        assert_eq!(RawPath::from("x.").extension(), None);
        assert_eq!(RawPath::from("x.tar.gz").extension(), Some(&b"gz"[..]));
    }

    #[test]
    fn escapes_what_a_terminal_would_interpret() {
        let p = RawPath::from_bytes(b"a\nb\x1b[31m\xff\xfe\\c\xe2\x80\xaed".to_vec());
        assert_eq!(p.escaped(), "a\\u{a}b\\u{1b}[31m\\xff\\xfe\\\\c\\u{202e}d");
        assert_eq!(RawPath::from("ảnh/ทดสอบ.jpg").escaped(), "ảnh/ทดสอบ.jpg");
    }

    #[test]
    fn join_and_under() {
        let p = RawPath::default().join(b"a").join(b"b\xff");
        assert_eq!(p.as_bytes(), b"a/b\xff");
        assert_eq!(
            p.under(Path::new("/r")).as_os_str().as_bytes(),
            b"/r/a/b\xff"
        );
        assert_eq!(RawPath::default().under(Path::new("/r")), Path::new("/r"));
    }
}
