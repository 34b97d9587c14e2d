//! DFXML: the log as a Digital Forensics XML hash list, and a lenient reader.
//!
//! The writer emits what the DFXML schema (`fixtures/dfxml-schema/`) accepts,
//! children in the schema's order: `metadata` (Dublin Core type, and the
//! case and verification facts under our namespace), `creator` (program,
//! version, crate versions, execution environment), `source` (the evidence
//! root), one `fileobject` per entry. The schema has no BLAKE3 or PDQ, so
//! those, names that are not valid XML text, skip reasons and hash-set hits
//! go in elements of the [`NS`] namespace after the standard ones.
//!
//! The reader is namespace-blind and order-insensitive, as DFXML from other
//! tools needs (fiwalk's own output does not validate).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use quick_xml::events::Event;

use super::{ReportError, VerifiedLog, escape_markup as escape};
use crate::hash::Algorithm;
use crate::item::{FileKind, FileMeta, SkipReason};
use crate::path::RawPath;
use crate::record::{Entry, Outcome};

/// The namespace of our extension elements.
pub const NS: &str = "urn:triage:dfxml:1";

fn element<W: Write>(out: &mut W, indent: &str, name: &str, text: &str) -> std::io::Result<()> {
    writeln!(out, "{indent}<{name}>{}</{name}>", escape(text))
}

/// Writes the verified log as DFXML.
pub fn write<W: Write>(log: &VerifiedLog, out: &mut W) -> Result<(), ReportError> {
    let h = log.header();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<dfxml xmlns="http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:triage="{NS}" version="1.2.0">"#
    )?;
    writeln!(out, "  <metadata>")?;
    element(out, "    ", "dc:type", "Hash List")?;
    element(out, "    ", "dc:identifier", &h.run_id)?;
    if let Some(c) = &h.case {
        write!(
            out,
            r#"    <triage:case case_id="{}" examiner="{}""#,
            escape(&c.case_id),
            escape(&c.examiner)
        )?;
        for (k, v) in [
            ("evidence_id", &c.evidence_id),
            ("agency", &c.agency),
            ("notes", &c.notes),
        ] {
            if let Some(v) = v {
                write!(out, r#" {k}="{}""#, escape(v))?;
            }
        }
        writeln!(out, "/>")?;
    }
    writeln!(
        out,
        r#"    <triage:log status="{:?}" chain_head="{}" entries="{}"/>"#,
        log.status(),
        crate::hash::to_hex(&log.check.head()),
        log.check.state.tally.entries()
    )?;
    writeln!(out, "  </metadata>")?;
    writeln!(out, r#"  <creator version="1.0">"#)?;
    element(out, "    ", "program", "triage")?;
    element(out, "    ", "version", &h.tool_version)?;
    writeln!(out, "    <build_environment>")?;
    for (name, version) in &h.build.crates {
        writeln!(
            out,
            r#"      <library name="{}" version="{}"/>"#,
            escape(name),
            escape(version)
        )?;
    }
    writeln!(out, "    </build_environment>")?;
    writeln!(out, "    <execution_environment>")?;
    let e = &h.host;
    for (k, v) in [
        ("os_sysname", &e.os_sysname),
        ("os_release", &e.os_release),
        ("os_version", &e.os_version),
        ("host", &e.hostname),
        ("arch", &e.arch),
    ] {
        element(out, "      ", k, v)?;
    }
    element(out, "      ", "command_line", &h.command_line.join(" "))?;
    element(out, "      ", "uid", &e.uid.to_string())?;
    if let Some(u) = &e.username {
        element(out, "      ", "username", u)?;
    }
    element(out, "      ", "start_time", &h.started.to_string())?;
    writeln!(out, "    </execution_environment>")?;
    writeln!(out, "  </creator>")?;
    writeln!(out, "  <source>")?;
    element(out, "    ", "image_filename", &h.root.display().to_string())?;
    writeln!(out, "  </source>")?;
    for e in log.entries()? {
        fileobject(out, &e?)?;
    }
    writeln!(out, "</dfxml>")?;
    Ok(())
}

fn name_type(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Regular => "r",
        FileKind::Directory => "d",
        FileKind::Symlink => "l",
        FileKind::Fifo => "p",
        FileKind::Socket => "s",
        FileKind::BlockDevice => "b",
        FileKind::CharDevice => "c",
        FileKind::Unknown => "-",
    }
}

fn fileobject<W: Write>(out: &mut W, e: &Entry) -> std::io::Result<()> {
    const I: &str = "    ";
    writeln!(out, "  <fileobject>")?;
    // The name as text; when that text is not the exact name (not UTF-8,
    // control characters, backslashes escaped), the bytes follow in base64.
    let shown = e.path.escaped();
    element(out, I, "filename", &shown)?;
    if let Outcome::Failed(f) = &e.outcome {
        element(out, I, "error", &f.kind.to_string())?;
    }
    if let Some(m) = &e.meta {
        meta(out, m)?;
    }
    if let Outcome::Skipped(SkipReason::Symlink { target: Some(t) }) = &e.outcome {
        element(out, I, "link_target", &t.escaped())?;
    }
    if let Outcome::Hashed(h) = &e.outcome {
        for alg in [Algorithm::Md5, Algorithm::Sha1, Algorithm::Sha256] {
            if let Some(hex) = h.digests.hex(alg) {
                writeln!(
                    out,
                    r#"{I}<hashdigest type="{}">{hex}</hashdigest>"#,
                    alg.name()
                )?;
            }
        }
        if let Some(hex) = h.digests.hex(Algorithm::Blake3) {
            writeln!(out, "{I}<triage:blake3>{hex}</triage:blake3>")?;
        }
    }
    if Some(shown.as_str()) != e.path.to_str() {
        writeln!(
            out,
            "{I}<triage:filename_b64>{}</triage:filename_b64>",
            B64.encode(e.path.as_bytes())
        )?;
    }
    // A member of a container: DFXML's `parent_object` names a parent
    // directory by inode, which a zip member has not; triage's element
    // names the container's fileobject by its filename.
    if let Some(w) = &e.within {
        write!(
            out,
            r#"{I}<triage:within parent="{}" member="{}" container="{}" depth="{}""#,
            escape(&w.parent.escaped()),
            escape(&w.member.escaped()),
            w.container,
            w.depth
        )?;
        if let Some(at) = w.offset {
            write!(out, r#" offset="{at}""#)?;
        }
        if let Some(c) = w.crc32 {
            write!(out, r#" crc32="{:08x}""#, c.stored)?;
            if let Some(v) = c.computed {
                write!(out, r#" crc32_read="{v:08x}""#)?;
            }
        }
        writeln!(out, "/>")?;
    }
    match &e.outcome {
        Outcome::Hashed(h) => {
            writeln!(
                out,
                r#"{I}<triage:type mime="{}">{}</triage:type>"#,
                escape(h.file_type.mime()),
                h.file_type.name()
            )?;
            for p in &h.perceptual {
                let (hash, quality) = match p {
                    crate::perceptual::Perceptual::Pdq { hash, quality, .. } => {
                        (hash.to_string(), format!(r#" quality="{quality}""#))
                    }
                    crate::perceptual::Perceptual::Img { hash, .. } => {
                        (crate::hash::to_hex(hash), String::new())
                    }
                };
                writeln!(
                    out,
                    r#"{I}<triage:perceptual tag="{}"{quality}>{hash}</triage:perceptual>"#,
                    p.tag()
                )?;
            }
            for m in &h.matches {
                write!(
                    out,
                    r#"{I}<triage:match set="{}" kind="{}" alg="{}""#,
                    escape(&m.set),
                    m.kind.name(),
                    m.alg.name()
                )?;
                if let Some(d) = m.distance {
                    write!(out, r#" distance="{d}""#)?;
                }
                if let Some(t) = &m.transform {
                    write!(out, r#" transform="{}""#, escape(t))?;
                }
                if let Some(c) = m.category {
                    write!(
                        out,
                        r#" category_scheme="{}" category_code="{}" category_label="{}""#,
                        c.scheme.name(),
                        c.scheme.code_text(c.code),
                        escape(c.label())
                    )?;
                }
                if m.empty_file_digest {
                    write!(out, r#" empty_file_digest="true""#)?;
                }
                if let Some(f) = m.frame {
                    write!(out, r#" frame="{f}""#)?;
                }
                if let Some(v) = &m.video {
                    write!(
                        out,
                        r#" known_percent="{:.2}" query_percent="{:.2}" matched_at="{}""#,
                        v.known_percent(),
                        v.query_percent(),
                        v.frames
                            .iter()
                            .map(|(_, t)| format!("{t:.3}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )?;
                }
                writeln!(out, "/>")?;
            }
            match h.video.as_deref() {
                None => {}
                Some(Err(e)) => writeln!(
                    out,
                    r#"{I}<triage:video_error kind="{}">{}</triage:video_error>"#,
                    e.code(),
                    escape(e.detail())
                )?,
                Some(Ok(v)) => {
                    let i = &v.info;
                    write!(
                        out,
                        r#"{I}<triage:video tag="{}" codec="{}" width="{}" height="{}" frame_rate="{}/{}" every="{}""#,
                        crate::perceptual::video::VPDQ_TAG,
                        escape(&i.codec),
                        i.width,
                        i.height,
                        i.frame_rate.0,
                        i.frame_rate.1,
                        v.every
                    )?;
                    if let Some(d) = i.duration {
                        write!(out, r#" duration="{d:.3}""#)?;
                    }
                    writeln!(out, ">")?;
                    for f in &v.frames {
                        writeln!(
                            out,
                            r#"{I}  <triage:frame number="{}" quality="{}" timestamp="{:.3}">{}</triage:frame>"#,
                            f.frame, f.quality, f.timestamp, f.hash
                        )?;
                    }
                    writeln!(out, "{I}</triage:video>")?;
                }
            }
        }
        Outcome::Skipped(r) => writeln!(
            out,
            r#"{I}<triage:skipped reason="{}">{}</triage:skipped>"#,
            r.code(),
            escape(&r.to_string())
        )?,
        Outcome::Failed(f) => writeln!(
            out,
            r#"{I}<triage:failed stage="{}" bytes_read="{}"/>"#,
            f.stage.code(),
            f.bytes_read
        )?,
    }
    writeln!(out, "  </fileobject>")
}

fn meta<W: Write>(out: &mut W, m: &FileMeta) -> std::io::Result<()> {
    const I: &str = "    ";
    element(out, I, "name_type", name_type(m.kind()))?;
    element(out, I, "filesize", &m.size.to_string())?;
    element(out, I, "inode", &m.ino.to_string())?;
    element(out, I, "mode", &(m.mode & 0o7777).to_string())?;
    element(out, I, "nlink", &m.nlink.to_string())?;
    element(out, I, "uid", &m.uid.to_string())?;
    element(out, I, "gid", &m.gid.to_string())?;
    element(out, I, "mtime", &m.mtime.to_string())?;
    element(out, I, "ctime", &m.ctime.to_string())?;
    element(out, I, "atime", &m.atime.to_string())?;
    if let Some(b) = m.btime {
        element(out, I, "crtime", &b.to_string())?;
    }
    Ok(())
}

/// A `fileobject` as read back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileObject {
    /// The exact name (from `filename_b64` when present).
    pub filename: RawPath,
    /// `filesize`.
    pub size: Option<u64>,
    /// `error`, for entries that could not be read.
    pub error: Option<String>,
    /// Digests by lower-case type (`md5`, `sha1`, `sha256`, and `blake3`
    /// from our extension).
    pub hashes: BTreeMap<String, String>,
}

/// Reads the `fileobject`s of a DFXML document (ours or another tool's).
pub fn read<R: BufRead>(input: R) -> Result<Vec<FileObject>, String> {
    let mut reader = quick_xml::Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut files = Vec::new();
    let mut current: Option<FileObject> = None;
    let mut text = String::new();
    let mut hash_type = String::new();
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("byte {at}: {e}"))?;
        match event {
            Event::Start(s) => {
                text.clear();
                let name = s.local_name();
                match name.as_ref() {
                    b"fileobject" => current = Some(FileObject::default()),
                    b"hashdigest" => {
                        hash_type = s
                            .try_get_attribute("type")
                            .map_err(|e| e.to_string())?
                            .map(|a| String::from_utf8_lossy(&a.value).to_ascii_lowercase())
                            .unwrap_or_default();
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                let t = t.decode().map_err(|e| e.to_string())?;
                text.push_str(&quick_xml::escape::unescape(&t).map_err(|e| e.to_string())?);
            }
            Event::End(e) => {
                let Some(f) = current.as_mut() else {
                    buf.clear();
                    continue;
                };
                match e.local_name().as_ref() {
                    b"filename" => f.filename = RawPath::from(text.as_str()),
                    b"filename_b64" => {
                        f.filename =
                            RawPath::from_bytes(B64.decode(text.trim()).map_err(|e| e.to_string())?)
                    }
                    b"filesize" => f.size = text.trim().parse().ok(),
                    b"error" => f.error = Some(text.clone()),
                    b"hashdigest" => {
                        f.hashes
                            .insert(hash_type.clone(), text.trim().to_ascii_lowercase());
                    }
                    b"blake3" => {
                        f.hashes
                            .insert("blake3".to_string(), text.trim().to_ascii_lowercase());
                    }
                    b"fileobject" => files.extend(current.take()),
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(files)
}
