//! Identify stage: the content type of a file from its leading bytes.
//!
//! Input: the first bytes of a file (up to [`SNIFF_LEN`]) and its name.
//! Output: a [`FileType`] and whether the extension fits it. Never fails: what
//! is not recognised is [`FileType::Unknown`].
//!
//! Names lie (a JPEG renamed `.dll` is an old way to hide pictures); content
//! signatures do not. The type decides later which files get perceptual
//! hashes, and the mismatch flag points the examiner at disguised files.

/// How many leading bytes [`sniff`] looks at.
pub const SNIFF_LEN: usize = 8192;

macro_rules! file_types {
    ($( $(#[$doc:meta])* $var:ident => $name:literal, $mime:literal, [$($ext:literal),*]; )*) => {
        /// A content type recognised from file signatures.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum FileType {
            $( $(#[$doc])* $var, )*
        }

        impl FileType {
            /// Every type, in declaration order.
            pub const ALL: &'static [FileType] = &[$(FileType::$var),*];

            /// The stable short name used in records (`jpeg`, `zip`, ...).
            pub fn name(self) -> &'static str {
                match self { $(FileType::$var => $name,)* }
            }

            /// The MIME type.
            pub fn mime(self) -> &'static str {
                match self { $(FileType::$var => $mime,)* }
            }

            /// Extensions (lower case) that fit this type. Empty for types
            /// where any name is normal.
            pub fn extensions(self) -> &'static [&'static str] {
                match self { $(FileType::$var => &[$($ext),*],)* }
            }
        }
    };
}

file_types! {
    /// JPEG/JFIF/EXIF image.
    Jpeg => "jpeg", "image/jpeg", ["jpg", "jpeg", "jpe", "jfif", "jfi", "thm"];
    /// PNG image.
    Png => "png", "image/png", ["png", "apng"];
    /// GIF image.
    Gif => "gif", "image/gif", ["gif"];
    /// Windows bitmap.
    Bmp => "bmp", "image/bmp", ["bmp", "dib"];
    /// TIFF image (and TIFF-based camera RAW).
    Tiff => "tiff", "image/tiff", ["tif", "tiff", "dng", "nef", "cr2", "arw", "orf", "rw2", "pef", "srw", "raf"];
    /// WebP image.
    Webp => "webp", "image/webp", ["webp"];
    /// HEIF/HEIC image (iPhone photos).
    Heif => "heif", "image/heif", ["heic", "heif", "hif"];
    /// AVIF image.
    Avif => "avif", "image/avif", ["avif"];
    /// JPEG XL image.
    Jxl => "jxl", "image/jxl", ["jxl"];
    /// Windows icon.
    Ico => "ico", "image/vnd.microsoft.icon", ["ico", "cur"];
    /// Photoshop document.
    Psd => "psd", "image/vnd.adobe.photoshop", ["psd", "psb"];
    /// Canon CR3 RAW.
    Cr3 => "cr3", "image/x-canon-cr3", ["cr3"];
    /// MPEG-4 video (ISO base media).
    Mp4 => "mp4", "video/mp4", ["mp4", "m4v", "m4a", "m4p", "3gp", "3g2", "mov", "f4v"];
    /// QuickTime movie.
    Mov => "mov", "video/quicktime", ["mov", "qt", "mp4", "m4v"];
    /// AVI video.
    Avi => "avi", "video/x-msvideo", ["avi", "divx"];
    /// Matroska video.
    Mkv => "mkv", "video/x-matroska", ["mkv", "mka", "mks", "mk3d"];
    /// WebM video.
    Webm => "webm", "video/webm", ["webm", "mkv"];
    /// MPEG program/transport stream.
    Mpeg => "mpeg", "video/mpeg", ["mpg", "mpeg", "vob", "ts", "m2ts", "mts"];
    /// Flash video.
    Flv => "flv", "video/x-flv", ["flv"];
    /// Windows Media (ASF) video/audio.
    Asf => "asf", "video/x-ms-asf", ["asf", "wmv", "wma"];
    /// WAV audio.
    Wav => "wav", "audio/wav", ["wav"];
    /// MP3 audio.
    Mp3 => "mp3", "audio/mpeg", ["mp3"];
    /// FLAC audio.
    Flac => "flac", "audio/flac", ["flac"];
    /// Ogg container.
    Ogg => "ogg", "audio/ogg", ["ogg", "oga", "ogv", "opus", "spx"];
    /// ZIP archive (not one of the ZIP-based formats below).
    Zip => "zip", "application/zip", ["zip", "jar", "apk", "ipa", "xpi", "kmz", "cbz", "aar"];
    /// Office Open XML document (docx/xlsx/pptx).
    Ooxml => "ooxml", "application/vnd.openxmlformats-officedocument", ["docx", "docm", "xlsx", "xlsm", "pptx", "pptm", "dotx", "xltx", "potx", "vsdx"];
    /// OpenDocument.
    Odf => "odf", "application/vnd.oasis.opendocument", ["odt", "ods", "odp", "odg", "ott", "ots", "otp"];
    /// EPUB e-book.
    Epub => "epub", "application/epub+zip", ["epub"];
    /// RAR archive.
    Rar => "rar", "application/vnd.rar", ["rar", "cbr"];
    /// 7-Zip archive.
    SevenZip => "7z", "application/x-7z-compressed", ["7z"];
    /// gzip stream.
    Gzip => "gzip", "application/gzip", ["gz", "tgz", "svgz"];
    /// bzip2 stream.
    Bzip2 => "bzip2", "application/x-bzip2", ["bz2", "tbz", "tbz2"];
    /// xz stream.
    Xz => "xz", "application/x-xz", ["xz", "txz"];
    /// Zstandard stream.
    Zstd => "zstd", "application/zstd", ["zst", "tzst"];
    /// tar archive.
    Tar => "tar", "application/x-tar", ["tar"];
    /// PDF document.
    Pdf => "pdf", "application/pdf", ["pdf", "ai"];
    /// Compound File Binary (legacy Office, MSI, thumbs.db).
    Cfb => "cfb", "application/x-cfb", ["doc", "xls", "ppt", "msi", "msg", "db", "pub", "vsd", "dot", "xlt", "pps"];
    /// SQLite database (chat apps, browsers, NSRL RDS v3).
    Sqlite => "sqlite", "application/vnd.sqlite3", ["sqlite", "sqlite3", "db", "db3", "sqlitedb", "storedata"];
    /// Windows PE executable or DLL.
    Pe => "pe", "application/vnd.microsoft.portable-executable", ["exe", "dll", "sys", "ocx", "scr", "cpl", "drv", "efi", "mui", "com"];
    /// ELF executable or library.
    Elf => "elf", "application/x-elf", [];
    /// Mach-O executable.
    MachO => "macho", "application/x-mach-binary", [];
    /// Apple binary property list.
    Bplist => "bplist", "application/x-bplist", ["plist", "bplist"];
    /// Windows shortcut.
    Lnk => "lnk", "application/x-ms-shortcut", ["lnk"];
    /// Windows registry hive.
    Regf => "regf", "application/x-ms-registry", ["dat", "hve", "hiv"];
    /// Windows event log (EVTX).
    Evtx => "evtx", "application/x-ms-evtx", ["evtx"];
    /// Windows thumbnail cache.
    Thumbcache => "thumbcache", "application/x-ms-thumbcache", ["db"];
    /// EnCase evidence file (E01).
    Ewf => "ewf", "application/x-ewf", ["e01", "ex01", "l01", "lx01", "s01"];
    /// Text (UTF-8 or ASCII, no NUL bytes in the first block).
    Text => "text", "text/plain", [];
    /// Zero-length file.
    Empty => "empty", "application/x-empty", [];
    /// No known signature.
    Unknown => "unknown", "application/octet-stream", [];
}

impl FileType {
    /// The type with [`FileType::name`] `name`.
    pub fn from_name(name: &str) -> Option<FileType> {
        FileType::ALL.iter().copied().find(|t| t.name() == name)
    }

    /// Whether the perceptual stage should try to decode it as a still image.
    pub fn is_image(self) -> bool {
        matches!(
            self,
            FileType::Jpeg
                | FileType::Png
                | FileType::Gif
                | FileType::Bmp
                | FileType::Tiff
                | FileType::Webp
                | FileType::Heif
                | FileType::Avif
                | FileType::Jxl
                | FileType::Ico
                | FileType::Psd
                | FileType::Cr3
        )
    }

    /// Whether `ext` (any case) is unexpected for this type: `None` when the
    /// question does not apply (no extension, or a type with no fixed names).
    pub fn ext_mismatch(self, ext: Option<&[u8]>) -> Option<bool> {
        let ext = ext?;
        let known = self.extensions();
        if known.is_empty() {
            return None;
        }
        Some(!known.iter().any(|k| k.as_bytes().eq_ignore_ascii_case(ext)))
    }
}

fn at(buf: &[u8], off: usize, sig: &[u8]) -> bool {
    buf.get(off..off + sig.len()) == Some(sig)
}

/// The content type of a file whose first bytes are `head` (at most
/// [`SNIFF_LEN`] are looked at) and whose total size is `size`.
///
/// ```
/// use triage_core::identify::{sniff, FileType};
/// assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0", 11), FileType::Jpeg);
/// assert_eq!(FileType::Jpeg.ext_mismatch(Some(b"DLL")), Some(true));
/// ```
pub fn sniff(head: &[u8], size: u64) -> FileType {
    if size == 0 {
        return FileType::Empty;
    }
    let h = &head[..head.len().min(SNIFF_LEN)];
    let riff = |kind: &[u8]| at(h, 0, b"RIFF") && at(h, 8, kind);
    if at(h, 0, b"\xFF\xD8\xFF") {
        FileType::Jpeg
    } else if at(h, 0, b"\x89PNG\r\n\x1a\n") {
        FileType::Png
    } else if at(h, 0, b"GIF87a") || at(h, 0, b"GIF89a") {
        FileType::Gif
    } else if riff(b"WEBP") {
        FileType::Webp
    } else if riff(b"AVI ") {
        FileType::Avi
    } else if riff(b"WAVE") {
        FileType::Wav
    } else if at(h, 4, b"ftyp") {
        sniff_isobmff(h)
    } else if at(h, 0, b"II*\0") || at(h, 0, b"MM\0*") {
        FileType::Tiff
    } else if at(h, 0, b"BM") && h.len() >= 26 && is_bmp(h) {
        FileType::Bmp
    } else if at(h, 0, b"\xFF\x0A") || at(h, 0, b"\0\0\0\x0CJXL \r\n\x87\n") {
        FileType::Jxl
    } else if at(h, 0, b"8BPS") {
        FileType::Psd
    } else if at(h, 0, b"\0\0\x01\0") && h.len() >= 6 && h[4] != 0
        || at(h, 0, b"\0\0\x02\0") && h.len() >= 6 && h[4] != 0
    {
        FileType::Ico
    } else if at(h, 0, b"\x1A\x45\xDF\xA3") {
        // EBML: the DocType element says which flavour.
        if h.windows(4).any(|w| w == b"webm") {
            FileType::Webm
        } else {
            FileType::Mkv
        }
    } else if at(h, 0, b"\0\0\x01\xBA")
        || at(h, 0, b"\x47") && at(h, 188, b"\x47") && at(h, 376, b"\x47")
    {
        FileType::Mpeg
    } else if at(h, 0, b"FLV\x01") {
        FileType::Flv
    } else if at(h, 0, b"\x30\x26\xB2\x75\x8E\x66\xCF\x11") {
        FileType::Asf
    } else if at(h, 0, b"ID3")
        || (h.len() >= 2 && h[0] == 0xFF && (h[1] & 0xE6) == 0xE2)
            && h.len() >= 4
            && h[2] & 0xF0 != 0xF0
    {
        FileType::Mp3
    } else if at(h, 0, b"fLaC") {
        FileType::Flac
    } else if at(h, 0, b"OggS") {
        FileType::Ogg
    } else if at(h, 0, b"PK\x03\x04") || at(h, 0, b"PK\x05\x06") {
        sniff_zip(h)
    } else if at(h, 0, b"Rar!\x1A\x07") {
        FileType::Rar
    } else if at(h, 0, b"7z\xBC\xAF\x27\x1C") {
        FileType::SevenZip
    } else if at(h, 0, b"\x1F\x8B") {
        FileType::Gzip
    } else if at(h, 0, b"BZh") && h.len() > 3 && (b'1'..=b'9').contains(&h[3]) {
        FileType::Bzip2
    } else if at(h, 0, b"\xFD7zXZ\0") {
        FileType::Xz
    } else if at(h, 0, b"\x28\xB5\x2F\xFD") {
        FileType::Zstd
    } else if at(h, 257, b"ustar") {
        FileType::Tar
    } else if at(h, 0, b"%PDF-") {
        FileType::Pdf
    } else if at(h, 0, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        FileType::Cfb
    } else if at(h, 0, b"SQLite format 3\0") {
        FileType::Sqlite
    } else if at(h, 0, b"MZ") && is_pe(h) {
        FileType::Pe
    } else if at(h, 0, b"\x7FELF") {
        FileType::Elf
    } else if [
        &b"\xFE\xED\xFA\xCE"[..],
        b"\xFE\xED\xFA\xCF",
        b"\xCE\xFA\xED\xFE",
        b"\xCF\xFA\xED\xFE",
        b"\xCA\xFE\xBA\xBE",
    ]
    .iter()
    .any(|s| at(h, 0, s))
    {
        FileType::MachO
    } else if at(h, 0, b"bplist0") {
        FileType::Bplist
    } else if at(h, 0, b"\x4C\0\0\0\x01\x14\x02\0") {
        FileType::Lnk
    } else if at(h, 0, b"regf") {
        FileType::Regf
    } else if at(h, 0, b"ElfFile\0") {
        FileType::Evtx
    } else if at(h, 0, b"CMMM") {
        FileType::Thumbcache
    } else if at(h, 0, b"EVF\x09\x0D\x0A\xFF\0")
        || at(h, 0, b"EVF2\r\n\x81\0")
        || at(h, 0, b"LVF\x09\x0D\x0A\xFF\0")
    {
        FileType::Ewf
    } else if is_text(h) {
        FileType::Text
    } else {
        FileType::Unknown
    }
}

fn is_bmp(h: &[u8]) -> bool {
    // BITMAPFILEHEADER reserved fields are zero and the DIB header size is one
    // of the known ones; "BM" alone matches too much text.
    let reserved = &h[6..10] == b"\0\0\0\0";
    let dib = u32::from_le_bytes([h[14], h[15], h[16], h[17]]);
    reserved && matches!(dib, 12 | 16 | 40 | 52 | 56 | 64 | 108 | 124)
}

fn is_pe(h: &[u8]) -> bool {
    let Some(off) = h.get(0x3C..0x40) else {
        return false;
    };
    let off = u32::from_le_bytes([off[0], off[1], off[2], off[3]]) as usize;
    // A DOS stub without a PE header is not called PE: "MZ" alone matches
    // too much. Headers beyond the sniffed block are not looked for.
    at(h, off, b"PE\0\0")
}

fn sniff_isobmff(h: &[u8]) -> FileType {
    let box_len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let end = box_len.clamp(12, 256).min(h.len());
    // The major brand at 8, then compatible brands from 16 to the box end.
    let mut brands = vec![&h[8..12.min(h.len())]];
    let mut i = 16;
    while i + 4 <= end {
        brands.push(&h[i..i + 4]);
        i += 4;
    }
    let has = |set: &[&[u8]]| brands.iter().any(|b| set.contains(b));
    let major = brands[0];
    if [&b"avif"[..], b"avis"].contains(&major) {
        FileType::Avif
    } else if [
        &b"heic"[..],
        b"heix",
        b"hevc",
        b"hevx",
        b"heim",
        b"heis",
        b"mif1",
        b"msf1",
    ]
    .contains(&major)
    {
        if has(&[b"avif", b"avis"]) && !has(&[b"heic", b"heix"]) {
            FileType::Avif
        } else {
            FileType::Heif
        }
    } else if major == b"crx " {
        FileType::Cr3
    } else if major == b"qt  " {
        FileType::Mov
    } else {
        FileType::Mp4
    }
}

fn sniff_zip(h: &[u8]) -> FileType {
    // The first local file header's name, and any names visible in the block.
    let first_name = h
        .get(26..28)
        .map(|n| u16::from_le_bytes([n[0], n[1]]) as usize)
        .and_then(|n| h.get(30..30 + n))
        .unwrap_or(&[]);
    let contains = |s: &[u8]| h.windows(s.len()).any(|w| w == s);
    if first_name == b"mimetype" {
        if contains(b"application/epub+zip") {
            return FileType::Epub;
        }
        if contains(b"application/vnd.oasis.opendocument") {
            return FileType::Odf;
        }
    }
    if first_name == b"[Content_Types].xml"
        || first_name.starts_with(b"word/")
        || first_name.starts_with(b"xl/")
        || first_name.starts_with(b"ppt/")
        || first_name == b"_rels/.rels"
    {
        return FileType::Ooxml;
    }
    FileType::Zip
}

fn is_text(h: &[u8]) -> bool {
    if h.contains(&0) {
        return false;
    }
    // Allow a UTF-8 sequence cut at the end of the sniffed block.
    match std::str::from_utf8(h) {
        Ok(s) => s
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\x0c')),
        Err(e) => e.error_len().is_none() && h.len() - e.valid_up_to() < 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pad(sig: &[u8]) -> Vec<u8> {
        let mut v = sig.to_vec();
        v.resize(64.max(sig.len()), 0);
        v
    }

    #[test]
    fn recognises_signatures() {
        let mut zip_ooxml = b"PK\x03\x04".to_vec();
        zip_ooxml.resize(26, 0);
        zip_ooxml.extend_from_slice(&19u16.to_le_bytes());
        zip_ooxml.extend_from_slice(&[0, 0]);
        zip_ooxml.extend_from_slice(b"[Content_Types].xml");
        let mut tar = vec![b'a'; 512];
        tar[100] = 0;
        tar[257..262].copy_from_slice(b"ustar");
        let mut bmp = b"BM\x36\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0".to_vec();
        bmp.resize(64, 0);
        let cases: Vec<(Vec<u8>, FileType)> = vec![
            (pad(b"\xFF\xD8\xFF\xDB"), FileType::Jpeg),
            (pad(b"\x89PNG\r\n\x1a\n"), FileType::Png),
            (pad(b"GIF89a"), FileType::Gif),
            (bmp, FileType::Bmp),
            (pad(b"II*\0"), FileType::Tiff),
            (pad(b"RIFF\0\0\0\0WEBPVP8 "), FileType::Webp),
            (pad(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"), FileType::Heif),
            (
                pad(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf"),
                FileType::Avif,
            ),
            (pad(b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif"), FileType::Avif),
            (pad(b"\0\0\0\x14ftypqt  \0\0\0\0qt  "), FileType::Mov),
            (pad(b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2"), FileType::Mp4),
            (pad(b"RIFF\0\0\0\0AVI LIST"), FileType::Avi),
            (
                pad(b"\x1A\x45\xDF\xA3\x9f\x42\x86\x81\x01\x42\x82\x84webm"),
                FileType::Webm,
            ),
            (
                pad(b"\x1A\x45\xDF\xA3\xa3\x42\x82\x88matroska"),
                FileType::Mkv,
            ),
            (pad(b"PK\x03\x04\x14\0"), FileType::Zip),
            (zip_ooxml, FileType::Ooxml),
            (pad(b"Rar!\x1A\x07\x01\0"), FileType::Rar),
            (pad(b"7z\xBC\xAF\x27\x1C"), FileType::SevenZip),
            (pad(b"%PDF-1.7"), FileType::Pdf),
            (pad(b"SQLite format 3\0"), FileType::Sqlite),
            (tar, FileType::Tar),
            (pad(b"\x7FELF\x02\x01"), FileType::Elf),
            (b"hello, world\n".to_vec(), FileType::Text),
            ("Xin chào thế giới\n".as_bytes().to_vec(), FileType::Text),
            (vec![0x01, 0x02, 0x00, 0xff], FileType::Unknown),
        ];
        for (head, want) in cases {
            assert_eq!(sniff(&head, head.len() as u64), want, "{head:02x?}");
        }
        assert_eq!(sniff(b"", 0), FileType::Empty);
    }

    #[test]
    fn pe_needs_its_header() {
        let mut mz = vec![0u8; 256];
        mz[..2].copy_from_slice(b"MZ");
        mz[0x3C] = 0x80;
        mz[0x80..0x84].copy_from_slice(b"PE\0\0");
        assert_eq!(sniff(&mz, 256), FileType::Pe);
        mz[0x80] = b'X';
        assert_ne!(sniff(&mz, 256), FileType::Pe);
    }

    #[test]
    fn extension_mismatch() {
        assert_eq!(FileType::Jpeg.ext_mismatch(Some(b"dll")), Some(true));
        assert_eq!(FileType::Jpeg.ext_mismatch(Some(b"JPG")), Some(false));
        assert_eq!(FileType::Jpeg.ext_mismatch(None), None);
        assert_eq!(FileType::Unknown.ext_mismatch(Some(b"jpg")), None);
        assert_eq!(FileType::Text.ext_mismatch(Some(b"jpg")), None);
    }

    #[test]
    fn names_round_trip() {
        for t in FileType::ALL {
            assert_eq!(FileType::from_name(t.name()), Some(*t));
        }
    }
}
