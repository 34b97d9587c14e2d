//! HTML: one self-contained page for the examiner and the prosecutor.
//!
//! Sections: verification of the log, case, scan, hash sets used, totals,
//! matches by category (most serious first), failures. No scripts, no
//! external resources. Thumbnails of matched images only on request, and
//! then small (≤ [`THUMB_MAX`] px), greyscale in the pixels themselves and
//! blurred until the examiner clicks one (a checkbox, no script): people
//! who read these reports should not see more than they must. A thumbnail
//! is made only if the file at the evidence path still has the digests in
//! the log; otherwise the page says why it is missing. A matched video
//! shows up to six of its matched frames the same way, decoded again by
//! the FFmpeg worker.

use std::collections::BTreeMap;
use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{ReportError, ReportOptions, VerifiedLog, escape_markup as esc};
use crate::hash::{Algorithm, hash_bytes, to_hex};
use crate::item::SkipReason;
use crate::matching::most_serious;
use crate::perceptual::decode::{DecodeLimits, decode_rgb8};
use crate::record::{Hashed, Outcome};
use crate::source::{ItemRef, SourceOptions, Tree};
use crate::verify::Status;

/// Longest side of a thumbnail, in pixels.
pub const THUMB_MAX: u32 = 128;
/// Files larger than this are not read for thumbnails.
const THUMB_FILE_MAX: u64 = 64 << 20;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:75em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#eee}code{font-size:.9em;word-break:break-all}.ok{color:#060}.bad{color:#a00;font-weight:bold}\
.thumb input{display:none}.thumb img{filter:blur(10px);cursor:pointer}.thumb input:checked+img{filter:none}\
.note{color:#555;font-size:.9em}.exact{color:#a00;font-weight:bold}.near{color:#a60;font-weight:bold}hr{border:0;border-top:1px solid #ddd}";

/// Writes the verified log as one HTML page.
pub fn write<W: Write>(
    log: &VerifiedLog,
    options: &ReportOptions,
    out: &mut W,
) -> Result<(), ReportError> {
    let h = log.header();
    let t = log.totals();
    let title = match &h.case {
        Some(c) => format!("triage report: case {}", c.case_id),
        None => "triage report (no case)".to_string(),
    };
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        esc(&title)
    )?;
    writeln!(out, "<h1>{}</h1>", esc(&title))?;

    // Verification first: everything below stands on it.
    let (class, verdict) = match log.status() {
        Status::Complete => (
            "ok",
            "VERIFIED: every line of the log is intact and the totals match",
        ),
        Status::Interrupted => (
            "bad",
            "INTACT BUT INTERRUPTED: the scan was stopped before it finished",
        ),
        Status::Incomplete => (
            "bad",
            "INTACT BUT INCOMPLETE: the scan was killed; the log has no footer",
        ),
        Status::Failed => ("bad", "DOES NOT VERIFY"),
    };
    writeln!(
        out,
        "<h2>Audit log</h2><p class=\"{class}\">{verdict}</p><table>"
    )?;
    let signed = match &h.signing_key {
        Some(k) if options.pubkey.is_some() => format!(
            "{} signatures by {} (the key given to the report)",
            log.check.signatures,
            k.fingerprint()
        ),
        Some(k) => format!(
            "{} signatures by {} (the key named in the log; verify with the lab's public key to prove who signed)",
            log.check.signatures,
            k.fingerprint()
        ),
        None => "not signed (SHA-256 seals only)".to_string(),
    };
    row(
        out,
        "Chain head (SHA-256 of the last line)",
        &to_hex(&log.check.head()),
    )?;
    row(out, "Lines verified", &log.check.lines.to_string())?;
    row(out, "Signatures", &signed)?;
    row(out, "Resumed", &format!("{} time(s)", log.check.resumes))?;
    writeln!(out, "</table>")?;

    writeln!(out, "<h2>Case</h2><table>")?;
    match &h.case {
        Some(c) => {
            row(out, "Case", &c.case_id)?;
            row(
                out,
                "Evidence item",
                c.evidence_id.as_deref().unwrap_or("—"),
            )?;
            row(out, "Examiner", &c.examiner)?;
            row(out, "Agency", c.agency.as_deref().unwrap_or("—"))?;
            row(out, "Notes", c.notes.as_deref().unwrap_or("—"))?;
        }
        None => row(out, "Case", "none given (--no-case)")?,
    }
    writeln!(out, "</table>")?;

    writeln!(out, "<h2>Scan</h2><table>")?;
    row(out, "Evidence root", &h.root.display().to_string())?;
    row(out, "Started (UTC)", &h.started.to_string())?;
    row(
        out,
        "Finished (UTC)",
        &t.finished
            .map_or_else(|| "—".to_string(), |f| f.to_string()),
    )?;
    row(
        out,
        "Tool",
        &format!(
            "triage {} (commit {}, {})",
            h.tool_version,
            h.build.git_commit.as_deref().unwrap_or("unknown"),
            h.build.target
        ),
    )?;
    row(
        out,
        "Host",
        &format!(
            "{} ({} {} {}), user {}",
            h.host.hostname,
            h.host.os_sysname,
            h.host.os_release,
            h.host.arch,
            h.host.username.as_deref().unwrap_or("?")
        ),
    )?;
    row(out, "Command line", &shell_line(&h.command_line))?;
    let algs: Vec<&str> = h.algorithms.iter().map(Algorithm::name).collect();
    row(out, "Digests", &algs.join(", "))?;
    row(out, "Perceptual hashes", &h.perceptual.join(", "))?;
    row(out, "Run id", &h.run_id)?;
    writeln!(out, "</table>")?;

    writeln!(out, "<h2>Hash sets used</h2>")?;
    if h.hashsets.is_empty() {
        writeln!(out, "<p>None.</p>")?;
    } else {
        writeln!(
            out,
            "<table><tr><th>Name</th><th>Kind</th><th>Entries</th><th>Index BLAKE3</th><th>Sources (SHA-256)</th></tr>"
        )?;
        for s in &h.hashsets {
            let entries = s.meta.records;
            let sources: Vec<String> = s
                .meta
                .sources
                .iter()
                .map(|src| {
                    format!(
                        "{} ({}; {} rejected lines)",
                        esc(&src.file),
                        esc(&src.sha256),
                        src.rejected
                    )
                })
                .collect();
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{entries}</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&s.meta.name),
                s.meta.kind.name(),
                esc(&s.blake3),
                sources.join("<br>")
            )?;
        }
        writeln!(out, "</table>")?;
    }

    writeln!(out, "<h2>Totals</h2><table>")?;
    row(out, "Entries recorded", &t.entries().to_string())?;
    row(
        out,
        "Files hashed",
        &format!("{} ({} bytes)", t.files_hashed, t.bytes_hashed),
    )?;
    row(
        out,
        "Files matching alert sets",
        &t.files_matched.to_string(),
    )?;
    row(
        out,
        "Files only in known-good sets",
        &t.files_known.to_string(),
    )?;
    let by = |m: &BTreeMap<String, u64>| {
        if m.is_empty() {
            "0".to_string()
        } else {
            m.iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    row(
        out,
        "Matched files by most serious category",
        &by(&t.files_by_category),
    )?;
    row(out, "Skipped", &by(&t.skipped))?;
    row(out, "Failed", &by(&t.failed))?;
    writeln!(out, "</table>")?;

    // Matches grouped by the file's most serious category, most serious first.
    let root = log.evidence_root(options.evidence.as_deref());
    let tree = options
        .thumbnails
        .then(|| crate::source::open(&root, &SourceOptions::default()).map_err(|e| e.to_string()));
    // Each row: the path, what matched, the thumbnail (or why not).
    type Row = (String, Hashed, Result<Vec<Thumb>, String>);
    let mut groups: BTreeMap<(std::cmp::Reverse<u8>, String), Vec<Row>> = BTreeMap::new();
    // A disk image's files with several names were read at one: the
    // others, by that name, to show beside a match.
    let mut other_names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut failures = Vec::new();
    // Containers looked inside, by path: how to find a member's bytes
    // again for its thumbnail.
    let mut containers: BTreeMap<crate::path::RawPath, crate::record::Entry> = BTreeMap::new();
    for e in log.entries()? {
        let e = e?;
        if let Outcome::Hashed(h) = &e.outcome
            && matches!(
                h.expansion.as_deref(),
                Some(crate::item::Expansion::Expanded { .. })
            )
        {
            containers.insert(e.path.clone(), e.clone());
        }
        match &e.outcome {
            Outcome::Hashed(hashed) if hashed.matches.iter().any(|m| m.is_find()) => {
                let worst = most_serious(&hashed.matches);
                let key = (
                    std::cmp::Reverse(worst.map_or(0, |c| c.scheme.severity(c.code))),
                    worst.map_or_else(|| "uncategorised".to_string(), |c| c.to_string()),
                );
                let thumb = if options.thumbnails {
                    thumbnail(tree.as_ref(), &e, hashed, &containers)
                } else {
                    Err("--thumbnails not given".to_string())
                };
                let mut shown = e.path.escaped();
                if let Some(w) = &e.within {
                    shown = format!("{shown}\u{0}{}\u{0}{}", w.parent.escaped(), w.container);
                }
                groups
                    .entry(key)
                    .or_default()
                    .push((shown, hashed.clone(), thumb));
            }
            Outcome::Skipped(SkipReason::HardLink { first }) => other_names
                .entry(first.escaped())
                .or_default()
                .push(e.path.escaped()),
            Outcome::Failed(f) => failures.push(format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.path.escaped()),
                f.stage.code(),
                esc(&f.kind.to_string()),
                f.bytes_read
            )),
            _ => {}
        }
    }
    writeln!(out, "<h2>Matches</h2>")?;
    if options.thumbnails {
        writeln!(
            out,
            "<p class=\"note\">Thumbnails are greyscale and blurred; click one to see it unblurred.</p>"
        )?;
    }
    if groups.is_empty() {
        writeln!(out, "<p>No file matched an alert set.</p>")?;
    }
    for ((_, category), rows) in &groups {
        writeln!(
            out,
            "<h3>{} ({} files)</h3><table><tr><th>File</th><th>Hits</th><th>Thumbnail</th></tr>",
            esc(category),
            rows.len()
        )?;
        for (shown, hashed, thumb) in rows {
            // A member: its path, then the container it is inside.
            let mut parts = shown.split('\u{0}');
            let path = parts.next().unwrap_or_default();
            let inside = parts
                .next()
                .map(|parent| (parent, parts.next().unwrap_or_default()));
            let names = other_names.get(path).map_or(&[][..], Vec::as_slice);
            writeln!(out, "{}", match_row(path, inside, names, hashed, thumb))?;
        }
        writeln!(out, "</table>")?;
    }
    writeln!(out, "<h2>Failures</h2>")?;
    if failures.is_empty() {
        writeln!(
            out,
            "<p>None: every entry was hashed or skipped with a reason.</p>"
        )?;
    } else {
        writeln!(
            out,
            "<table><tr><th>Path</th><th>Stage</th><th>Error</th><th>Bytes read</th></tr>"
        )?;
        for f in &failures {
            writeln!(out, "{f}")?;
        }
        writeln!(out, "</table>")?;
    }
    writeln!(out, "</body></html>")?;
    Ok(())
}

fn row<W: Write>(out: &mut W, k: &str, v: &str) -> std::io::Result<()> {
    writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v))
}

/// The command line as a shell would take it back: each argument quoted
/// when it holds anything but plain characters (POSIX single quotes).
fn shell_line(args: &[String]) -> String {
    args.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// One hit as a line of the report: exact or near (the near ones need a
/// person to look), the set, the entry it hit and where that entry came
/// from, the distance and the file's PDQ quality, the category.
fn hit_line(m: &crate::matching::Match, h: &Hashed) -> String {
    let mut s = match (m.distance, &m.video) {
        (_, Some(v)) => {
            let at: Vec<String> = v
                .frames
                .iter()
                .take(40)
                .map(|(_, t)| format!("{t:.1}"))
                .collect();
            format!(
                "<span class=\"near\">NEAR: similar video, needs review</span> {}: {:.1}% of the known video's {} frames matched, {:.1}% of this video's {}\
                 <br><span class=\"note\">matched at {} s{}</span>",
                esc(m.alg.name()),
                v.known_percent(),
                v.known_frames,
                v.query_percent(),
                v.query_frames,
                at.join(", "),
                if v.frames.len() > at.len() {
                    " …"
                } else {
                    ""
                }
            )
        }
        (None, None) => format!(
            "<span class=\"exact\">EXACT</span> {} digest",
            esc(m.alg.name())
        ),
        (Some(d), None) => {
            let bits = m.alg.width() * 8;
            let quality = h
                .perceptual
                .iter()
                .find_map(|p| match p {
                    crate::perceptual::Perceptual::Pdq { quality, frame, .. }
                        if m.alg == crate::hashset::KeyAlg::Pdq && *frame == m.frame =>
                    {
                        Some(format!(", PDQ quality {quality}"))
                    }
                    _ => None,
                })
                .unwrap_or_default();
            format!(
                "<span class=\"near\">NEAR: similar, needs review</span> {} at distance {d} of {bits} bits{}",
                esc(m.alg.name()),
                esc(&quality)
            )
        }
    };
    if let Some(t) = &m.transform {
        s.push_str(&format!(", as {}", esc(t)));
    }
    if let Some(f) = m.frame {
        match h.video.as_deref() {
            Some(Ok(v)) => {
                let t = v
                    .frames
                    .iter()
                    .find(|x| x.frame == f as u64)
                    .map(|x| x.timestamp);
                s.push_str(&format!(
                    ", video frame {f}{}",
                    t.map(|t| format!(" at {t:.3} s")).unwrap_or_default()
                ));
            }
            _ => s.push_str(&format!(", frame {f}")),
        }
    }
    s.push_str(&format!(
        "<br><span class=\"note\">set <b>{}</b> ({}), entry {}:{}",
        esc(&m.set),
        m.kind.name(),
        esc(&m.source),
        m.at
    ));
    if !m.entry.is_empty() && m.entry != "{}" {
        s.push_str(&format!(" <code>{}</code>", esc(&m.entry)));
    }
    s.push_str("</span>");
    if let Some(c) = m.category {
        s.push_str(&format!("<br>category {}", esc(&c.to_string())));
    }
    if m.empty_file_digest {
        s.push_str(" (empty-file digest: not a find)");
    }
    s
}

/// One matched file: `inside`, the container it is a member of (path,
/// kind); `names`, its other names (hard links), if any.
fn match_row(
    path: &str,
    inside: Option<(&str, &str)>,
    names: &[String],
    h: &Hashed,
    thumb: &Result<Vec<Thumb>, String>,
) -> String {
    let hits: Vec<String> = h.matches.iter().map(|m| hit_line(m, h)).collect();
    let cell = match thumb {
        Ok(thumbs) => thumbs
            .iter()
            .map(|t| {
                format!(
                    "<label class=\"thumb\"><input type=\"checkbox\"><img alt=\"thumbnail\" src=\"data:image/png;base64,{}\"></label>{}",
                    t.png,
                    t.caption
                        .as_ref()
                        .map(|c| format!("<br><span class=\"note\">{}</span><br>", esc(c)))
                        .unwrap_or_default()
                )
            })
            .collect(),
        Err(why) => format!("<span class=\"note\">{}</span>", esc(why)),
    };
    let mut also: String = names
        .iter()
        .map(|n| format!("<br>also named <code>{}</code> (hard link)", esc(n)))
        .collect();
    if let Some((parent, kind)) = inside {
        also.push_str(&format!(
            "<br>inside <code>{}</code> ({} member)",
            esc(parent),
            esc(kind)
        ));
    }
    format!(
        "<tr><td><code>{}</code>{also}<br><span class=\"note\">SHA-256 {}</span></td><td>{}</td><td>{cell}</td></tr>",
        esc(path),
        h.digests.hex(Algorithm::Sha256).unwrap_or_default(),
        hits.join("<hr>")
    )
}

/// One picture of a matched file: a greyscale PNG (base64), and for a
/// video frame its time.
struct Thumb {
    png: String,
    caption: Option<String>,
}

/// Videos larger than this are not read again for their frames' pictures.
const VIDEO_THUMB_FILE_MAX: u64 = 4 << 30;
/// Frames of a matched video shown at most.
const VIDEO_THUMBS: usize = 6;

/// Greyscale PNGs of at most [`THUMB_MAX`] px of the file at entry `e` in
/// the evidence, if it still has the logged digests: the picture, or for
/// a video up to [`VIDEO_THUMBS`] of its matched frames.
fn thumbnail(
    tree: Option<&Result<Box<dyn Tree>, String>>,
    e: &crate::record::Entry,
    h: &Hashed,
    containers: &BTreeMap<crate::path::RawPath, crate::record::Entry>,
) -> Result<Vec<Thumb>, String> {
    let tree = match tree {
        None => return Err("--thumbnails not given".to_string()),
        Some(Err(why)) => return Err(format!("not shown: {why}")),
        Some(Ok(t)) => t,
    };
    if let Some(Ok(v)) = h.video.as_deref() {
        if e.within.is_some() {
            return Err(
                "not shown: frames of videos inside containers are not extracted for reports"
                    .into(),
            );
        }
        return video_thumbnails(tree.as_ref(), e, h, v);
    }
    if h.perceptual.is_empty() && h.image.is_none() {
        return Err("not a decodable image".to_string());
    }
    // A member is found again through its containers, from the walked
    // file that holds them all.
    let mut top = e;
    let mut chain = Vec::new();
    while let Some(w) = &top.within {
        let kind = crate::expand::Kind::from_name(w.container)
            .ok_or_else(|| format!("not shown: unknown container {}", w.container))?;
        chain.push((kind, w.member.clone()));
        top = containers
            .get(&w.parent)
            .ok_or("not shown: its container is not in the log")?;
    }
    chain.reverse();
    let item = ItemRef {
        path: &top.path,
        expect: None,
        location: top.location.as_ref(),
    };
    let (src, meta) = tree
        .open(item, None)
        .map_err(|f| format!("not shown: {}", f.kind))?;
    let bytes = if chain.is_empty() {
        if meta.size > THUMB_FILE_MAX {
            return Err("not shown: file too large for a thumbnail".to_string());
        }
        crate::read::read_whole(&*src, meta.size).map_err(|e| format!("not shown: {e}"))?
    } else {
        crate::expand::read_member(&*src, meta.size, &top.path, &chain, THUMB_FILE_MAX)
            .map_err(|e| format!("not shown: {e}"))?
    };
    if hash_bytes(h.digests.algorithms(), &bytes) != h.digests {
        return Err("not shown: the file no longer has the digests in the log".to_string());
    }
    let rgb =
        decode_rgb8(&bytes, DecodeLimits::default()).map_err(|e| format!("not shown: {e}"))?;
    let img = image::RgbImage::from_raw(rgb.width as u32, rgb.height as u32, rgb.pixels)
        .ok_or("not shown: decoder returned a short buffer")?;
    let grey = image::DynamicImage::ImageRgb8(img)
        .thumbnail(THUMB_MAX, THUMB_MAX)
        .into_luma8();
    let mut png = Vec::new();
    grey.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("not shown: {e}"))?;
    Ok(vec![Thumb {
        png: B64.encode(png),
        caption: None,
    }])
}

/// Pictures of a matched video's matched frames (evenly chosen, at most
/// [`VIDEO_THUMBS`]), decoded again by FFmpeg from the evidence once its
/// digests are checked.
fn video_thumbnails(
    tree: &dyn Tree,
    e: &crate::record::Entry,
    h: &Hashed,
    v: &crate::perceptual::video::VideoHashes,
) -> Result<Vec<Thumb>, String> {
    use crate::perceptual::video::{VideoConfig, grey_frames};
    let mut frames: Vec<u64> = h
        .matches
        .iter()
        .filter(|m| m.is_find())
        .flat_map(|m| match &m.video {
            Some(vm) => vm.frames.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            None => m.frame.map(u64::from).into_iter().collect(),
        })
        .collect();
    frames.sort_unstable();
    frames.dedup();
    if frames.len() > VIDEO_THUMBS {
        let n = frames.len();
        frames = (0..VIDEO_THUMBS)
            .map(|i| frames[i * (n - 1) / (VIDEO_THUMBS - 1)])
            .collect();
    }
    let decoder =
        crate::perceptual::ffmpeg::Decoder::find().map_err(|e| format!("not shown: {e}"))?;
    let item = ItemRef {
        path: &e.path,
        expect: None,
        location: e.location.as_ref(),
    };
    let (src, meta) = tree
        .open(item, None)
        .map_err(|f| format!("not shown: {}", f.kind))?;
    if meta.size > VIDEO_THUMB_FILE_MAX {
        return Err("not shown: video too large to read again for pictures".to_string());
    }
    // The digests first, streaming: a video is too large to hold whole.
    let mut hasher = crate::hash::MultiHasher::new(h.digests.algorithms());
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < meta.size {
        let want = (meta.size - at).min(buf.len() as u64) as usize;
        crate::source::tree::read_exact(&*src, &mut buf[..want], at)
            .map_err(|e| format!("not shown: {e}"))?;
        hasher.update(&buf[..want]);
        at += want as u64;
    }
    if hasher.finalize() != h.digests {
        return Err("not shown: the file no longer has the digests in the log".to_string());
    }
    let config = VideoConfig::default();
    let grabbed = grey_frames(
        &decoder,
        &*src,
        meta.size,
        h.file_type,
        &frames,
        THUMB_MAX,
        &config,
    )
    .map_err(|e| format!("not shown: {e}"))?;
    let fps = v.info.fps();
    grabbed
        .into_iter()
        .map(|g| {
            let n = g.frame;
            let img = image::GrayImage::from_raw(g.width, g.height, g.pixels)
                .ok_or("not shown: short frame")?;
            let mut png = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .map_err(|e| format!("not shown: {e}"))?;
            Ok(Thumb {
                png: B64.encode(png),
                caption: Some(format!(
                    "frame {n}, {:.3} s",
                    crate::perceptual::video::timestamp(n, fps)
                )),
            })
        })
        .collect()
}
