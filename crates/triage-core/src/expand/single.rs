//! Single compressed streams, bzip2, xz and zstd (gzip, whose header may
//! name its content, is `gzip.rs`): the content is one member, named by
//! the container's name less its ending (`a.tar.xz` → `a.tar`, `a.tbz2` →
//! `a.tar`). Concatenated streams are one content, as the command-line
//! tools give it; each format's own checks (bzip2's block CRCs, xz's
//! check field, zstd's optional checksum) are the decoder's: a mismatch
//! fails the content.

use super::codecs;
use super::stream::{Decoded, Reader};
use super::{Body, Budget, Kind, Member, Members, member_meta};
use crate::path::RawPath;
use crate::source::Source;

/// The members of a `kind` stream of `size` bytes inside `parent`.
pub(crate) fn members<'a>(
    kind: Kind,
    src: &'a dyn Source,
    size: u64,
    parent: &RawPath,
    budget: &'a Budget,
) -> Result<Members<'a>, String> {
    let open: super::stream::Open<'a> = match kind {
        Kind::Bzip2 => Box::new(move || Ok(codecs::bzip2(Reader::new(src, 0, size)))),
        Kind::Xz => Box::new(move || Ok(codecs::xz(Reader::new(src, 0, size)))),
        Kind::Zstd => Box::new(move || Ok(codecs::zstd(Reader::new(src, 0, size)))),
        other => return Err(format!("{} is not a single stream", other.name())),
    };
    let member = Member {
        name: RawPath::from_bytes(content_name(parent, kind)),
        offset: None,
        meta: member_meta(0, libc::S_IFREG | 0o644, 0),
        crc32: None,
        checksums: Vec::new(),
        found: None,
        body: Body::Read {
            src: Box::new(Decoded::new(open, None, size, budget)),
            to_end: true,
            stored: false,
        },
    };
    Ok(Box::new(std::iter::once(Ok(member))))
}

/// The content's name from the container's: its last part, less the
/// stream's ending (a tar's short form becomes `.tar`), or the name itself
/// when it has no such ending.
pub(crate) fn content_name(parent: &RawPath, kind: Kind) -> Vec<u8> {
    let endings: &[(&[u8], &[u8])] = match kind {
        Kind::Gzip => &[(b".tgz", b".tar"), (b".svgz", b".svg"), (b".gz", b"")],
        Kind::Bzip2 => &[(b".tbz2", b".tar"), (b".tbz", b".tar"), (b".bz2", b"")],
        Kind::Xz => &[(b".txz", b".tar"), (b".xz", b"")],
        Kind::Zstd => &[(b".tzst", b".tar"), (b".zst", b"")],
        _ => &[],
    };
    let full = parent.as_bytes();
    let base = full
        .rsplit(|&c| c == b'/' || c == b'!')
        .next()
        .unwrap_or(full);
    let lower = base.to_ascii_lowercase();
    for (end, with) in endings {
        if lower.ends_with(end) && base.len() > end.len() {
            let mut n = base[..base.len() - end.len()].to_vec();
            n.extend_from_slice(with);
            return n;
        }
    }
    base.to_vec()
}

/// The expander of one compressed stream: bzip2, xz or zstd.
pub(crate) struct Single(pub(crate) Kind);

impl super::Expander for Single {
    fn members<'a>(
        &self,
        src: &'a dyn Source,
        size: u64,
        path: &RawPath,
        budget: &'a super::Budget,
    ) -> Result<Members<'a>, String> {
        members(self.0, src, size, path, budget)
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, content_name};
    use crate::path::RawPath;

    #[test]
    fn the_content_is_named_after_the_stream() {
        let n = |p: &str, k| {
            String::from_utf8(content_name(&RawPath::from_bytes(p.as_bytes().to_vec()), k)).unwrap()
        };
        assert_eq!(n("dir/a.tar.gz", Kind::Gzip), "a.tar");
        assert_eq!(n("a.TGZ", Kind::Gzip), "a.tar");
        assert_eq!(n("x.zip!pic.svgz", Kind::Gzip), "pic.svg");
        assert_eq!(n("notes", Kind::Gzip), "notes");
        assert_eq!(n(".gz", Kind::Gzip), ".gz");
        assert_eq!(n("b.tbz2", Kind::Bzip2), "b.tar");
        assert_eq!(n("c.log.xz", Kind::Xz), "c.log");
        assert_eq!(n("d.tzst", Kind::Zstd), "d.tar");
    }
}
