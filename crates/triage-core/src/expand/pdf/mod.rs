//! PDF files: the pictures they embed (image XObjects), each a child item
//! named by its object (`report.pdf!object-12.jpg`).
//!
//! The file is read from start to end as a stream of PDF tokens, not
//! through its cross-reference table: a damaged or missing table loses
//! nothing, and the pictures of earlier revisions an incremental save
//! left in the file (a replaced or "deleted" page) are found as well.
//! Stream data is stepped over by its `/Length` (direct, or an integer
//! object resolved once the file is read) and checked against the
//! `endstream` that follows it; where they disagree, the data ends at
//! `endstream`.
//!
//! What a picture becomes:
//! - `/DCTDecode` (JPEG) and `/JPXDecode` (JPEG 2000) data is a file as it
//!   was put in: the member is those bytes, read where they lie
//!   (`.jpg`, `.jp2`); wrapped in `/FlateDecode`, they are decompressed
//!   first. A JPEG put into a PDF by img2pdf, LibreOffice or most scanners
//!   keeps its digests.
//! - Pixels stored with `/FlateDecode` or no filter (how a PNG or any
//!   bitmap goes into a PDF, with or without PNG/TIFF predictors) are no
//!   file of their own: the member is a BMP made of the decoded pixels
//!   (`.bmp`, top-down rows), so they get perceptual hashes that match the
//!   picture they came from; its digests are of that BMP, named so in
//!   docs/expand.md. Gray, RGB, ICC-based (by the profile's `/N`) and
//!   indexed colours at 1, 4, 8 or 16 bits; other colour spaces and other
//!   filters (CCITT, JBIG2, LZW, run-length, ASCII) fail that member with
//!   the reason.
//!
//! Not looked at: pictures inside content streams (inline images), files
//! attached to the PDF, and encrypted PDFs (every picture is recorded as
//! `encrypted`: the data is not read).

use std::collections::HashMap;
use std::io::{self, Read};

use super::stream::{Decoded, Reader, Slice};
use super::{Body, Budget, Member, Members, member_meta};
use crate::item::SkipReason;
use crate::path::RawPath;
use crate::source::Source;

mod lex;
mod pixels;

use lex::{Lex, Tok, Val};
use pixels::{Bmp, Pixels};

/// The widest or tallest picture turned into a BMP.
const MAX_SIDE: u64 = 65_535;
/// Integer objects kept to resolve indirect `/Length`s and `/N`s.
const MAX_INTS: usize = 1 << 20;
/// Bytes of a string kept (an indexed colour space's palette).
const MAX_STR: usize = 4096;
/// Nesting of arrays and dictionaries followed.
const MAX_DEPTH: u32 = 32;
/// Entries of one array or dictionary kept.
const MAX_ENTRIES: usize = 512;

/// The pictures of a PDF of `size` bytes.
pub(crate) fn members<'a>(
    src: &'a dyn Source,
    size: u64,
    budget: &'a Budget,
) -> Result<Members<'a>, String> {
    let mut found = scan(src, size, budget.limits.members)?;
    let pictures = std::mem::take(&mut found.pictures);
    let mut names: HashMap<String, u32> = HashMap::new();
    let list: Vec<_> = pictures
        .into_iter()
        .map(|p| {
            let (body, ext, offset, len) = body(&p, &found, src, budget);
            let base = match p.obj {
                Some((n, 0)) => format!("object-{n}"),
                Some((n, g)) => format!("object-{n}-{g}"),
                None => format!("stream-at-{}", p.start),
            };
            // The same object number again: a later revision's copy.
            let seen = names.entry(base.clone()).or_insert(0);
            *seen += 1;
            let name = if *seen == 1 {
                format!("{base}.{ext}")
            } else {
                format!("{base}~{seen}.{ext}")
            };
            Ok(Member {
                name: RawPath::from_bytes(name.into_bytes()),
                offset,
                meta: member_meta(len, libc::S_IFREG | 0o644, 0),
                crc32: None,
                checksums: Vec::new(),
                found: None,
                body,
            })
        })
        .collect();
    Ok(Box::new(list.into_iter()))
}

/// A picture's stream, as the file holds it.
#[derive(Debug)]
struct Picture {
    obj: Option<(u64, u64)>,
    /// Where its data starts.
    start: u64,
    /// Where it ends by `endstream` (or the file's end).
    end_kw: u64,
    /// `/Length`: where it ends by its dictionary, resolved after the scan.
    length: Option<Val>,
    /// Whether `endstream` was found at all.
    ended: bool,
    dict: Vec<(Vec<u8>, Val)>,
}

/// What the scan found.
struct Found {
    pictures: Vec<Picture>,
    /// Integer objects (`7 0 obj 1234 endobj`).
    ints: HashMap<u64, i64>,
    /// `/N` of stream objects (ICC profiles' component counts).
    ns: HashMap<u64, i64>,
    encrypted: bool,
}

/// Reads the file's tokens from start to end.
fn scan(src: &dyn Source, size: u64, max_members: u64) -> Result<Found, String> {
    let mut lx = Lex::new(src, size);
    let mut f = Found {
        pictures: Vec::new(),
        ints: HashMap::new(),
        ns: HashMap::new(),
        encrypted: false,
    };
    // The last two integers, for `N G obj`.
    let mut ints: [Option<i64>; 2] = [None, None];
    while let Some(t) = lx.token()? {
        match t {
            Tok::Int(n) => {
                ints = [ints[1], Some(n)];
                continue;
            }
            Tok::Kw(k) if k == b"obj" => {
                let obj = match ints {
                    [Some(n), Some(g)] if n >= 0 && g >= 0 => Some((n as u64, g as u64)),
                    _ => None,
                };
                ints = [None, None];
                let Some(t) = lx.token()? else { break };
                match t {
                    Tok::Int(v) => {
                        if let Some((n, _)) = obj
                            && f.ints.len() < MAX_INTS
                        {
                            f.ints.insert(n, v);
                        }
                    }
                    Tok::DictOpen => {
                        let d = lx.dict(0)?;
                        stream_or_not(&mut lx, &mut f, obj, d, max_members)?;
                    }
                    other => lx.back(other),
                }
                continue;
            }
            Tok::Kw(k) if k == b"trailer" => {
                if let Some(Tok::DictOpen) = lx.token()? {
                    let d = lx.dict(0)?;
                    f.encrypted |= get(&d, b"Encrypt").is_some();
                }
            }
            // A dictionary outside `N G obj` (damage): still a stream's.
            Tok::DictOpen => {
                let d = lx.dict(0)?;
                stream_or_not(&mut lx, &mut f, None, d, max_members)?;
            }
            // `stream` without a dictionary read: its data is stepped over.
            Tok::Kw(k) if k == b"stream" => {
                let start = lx.after_stream_keyword()?;
                lx.past_endstream(start)?;
            }
            _ => {}
        }
        ints = [None, None];
    }
    Ok(f)
}

/// After a dictionary: if `stream` follows, steps over its data and keeps
/// it when it is a picture.
fn stream_or_not(
    lx: &mut Lex<'_>,
    f: &mut Found,
    obj: Option<(u64, u64)>,
    dict: Vec<(Vec<u8>, Val)>,
    max_members: u64,
) -> Result<(), String> {
    match lx.token()? {
        Some(Tok::Kw(k)) if k == b"stream" => {}
        Some(other) => {
            lx.back(other);
            return Ok(());
        }
        None => return Ok(()),
    }
    // A cross-reference stream's dictionary is the trailer's.
    if name_is(get(&dict, b"Type"), b"XRef") && get(&dict, b"Encrypt").is_some() {
        f.encrypted = true;
    }
    if let (Some((n, _)), Some(Val::Int(v))) = (obj, get(&dict, b"N"))
        && f.ns.len() < MAX_INTS
    {
        f.ns.insert(n, *v);
    }
    let start = lx.after_stream_keyword()?;
    let length = get(&dict, b"Length").cloned();
    // Step over the data by a direct length when `endstream` is there.
    let mut end_kw = None;
    if let Some(Val::Int(n)) = length
        && n >= 0
        && lx.endstream_at(start.saturating_add(n as u64))?
    {
        end_kw = Some(start + n as u64);
    }
    let (end_kw, ended) = match end_kw {
        Some(e) => (e, true),
        None => lx.past_endstream(start)?,
    };
    if name_is(get(&dict, b"Subtype"), b"Image") {
        if f.pictures.len() as u64 >= max_members {
            return Err(format!(
                "more than {max_members} pictures: the limit for one container (--max-members)"
            ));
        }
        f.pictures.push(Picture {
            obj,
            start,
            end_kw,
            length,
            ended,
            dict,
        });
    }
    Ok(())
}

/// A picture's member: its body, name extension, offset where it lies as
/// it is, and size.
fn body<'a>(
    p: &Picture,
    f: &Found,
    src: &'a dyn Source,
    budget: &'a Budget,
) -> (Body<'a>, &'static str, Option<u64>, u64) {
    // Its data: by `/Length` where that fits before `endstream`, else up
    // to the end of line before `endstream`.
    let by_kw = p.end_kw - eol_before(src, p.start, p.end_kw);
    let len = match &p.length {
        // The scan stepped over it by this length (and `endstream` was there).
        Some(Val::Int(n)) if *n >= 0 && p.start + *n as u64 == p.end_kw => *n as u64,
        // The length object is read after the scan went past the data:
        // it stands where `endstream` follows it, even past an
        // `endstream` the data itself holds.
        Some(Val::Ref(r, _)) => match f.ints.get(r) {
            Some(&n)
                if n >= 0
                    && (p.start + n as u64 <= p.end_kw
                        || Lex::new(src, u64::MAX).endstream_at(p.start + n as u64)
                            == Ok(true)) =>
            {
                n as u64
            }
            _ => by_kw - p.start,
        },
        _ => by_kw - p.start,
    };
    let filters = filters(&p.dict);
    let ext = match filters.last().map(Vec::as_slice) {
        Some(b"DCTDecode" | b"DCT") => "jpg",
        Some(b"JPXDecode") => "jp2",
        _ => "bmp",
    };
    if f.encrypted {
        return (Body::Skipped(SkipReason::Encrypted), ext, None, len);
    }
    if !p.ended {
        return (
            Body::Failed(format!(
                "its data has no end: the file ends {} bytes into it, before `endstream` (cut short)",
                p.end_kw - p.start
            )),
            ext,
            Some(p.start),
            len,
        );
    }
    let flate = |f: &[u8]| matches!(f, b"FlateDecode" | b"Fl");
    let names: Vec<&[u8]> = filters.iter().map(Vec::as_slice).collect();
    let (start, data) = (p.start, len);
    let stored = |ext| {
        let body = Body::Read {
            src: Box::new(Slice {
                src,
                offset: start,
                len: data,
            }),
            to_end: false,
            stored: true,
        };
        (body, ext, Some(start), data)
    };
    let zlib = move || -> io::Result<Box<dyn Read + Send + 'a>> {
        Ok(Box::new(flate2::read::ZlibDecoder::new(Reader::new(
            src, start, data,
        ))))
    };
    match names.as_slice() {
        [b"DCTDecode" | b"DCT"] => stored("jpg"),
        [b"JPXDecode"] => stored("jp2"),
        [fl, b"DCTDecode" | b"DCT" | b"JPXDecode"] if flate(fl) => {
            if predictor(&parms(&p.dict, 0)) > 1 {
                return (
                    Body::Failed("its compressed picture uses a predictor: not decoded".into()),
                    ext,
                    None,
                    0,
                );
            }
            let body = Body::Read {
                src: Box::new(Decoded::new(Box::new(zlib), None, data, budget)),
                to_end: true,
                stored: false,
            };
            (body, ext, None, 0)
        }
        [] | [_] if names.first().is_none_or(|f| flate(f)) => match Pixels::of(&p.dict, f) {
            Err(why) => (Body::Failed(why), "bmp", None, 0),
            Ok(px) => {
                let bmp = px.bmp_size();
                let is_flate = !names.is_empty();
                let open = move || -> io::Result<Box<dyn Read + Send + 'a>> {
                    let raw: Box<dyn Read + Send + 'a> = if is_flate {
                        zlib()?
                    } else {
                        Box::new(Reader::new(src, start, data))
                    };
                    Ok(Box::new(Bmp::new(px.clone(), raw)))
                };
                let body = Body::Read {
                    src: Box::new(Decoded::new(Box::new(open), Some(bmp), data, budget)),
                    to_end: false,
                    stored: false,
                };
                (body, "bmp", None, bmp)
            }
        },
        _ => {
            let list: Vec<String> = names
                .iter()
                .map(|n| format!("/{}", String::from_utf8_lossy(n)))
                .collect();
            (
                Body::Failed(format!(
                    "its pixels are stored with {}, which triage does not decode",
                    list.join(" ")
                )),
                ext,
                Some(start),
                data,
            )
        }
    }
}

/// The end of line before `endstream` at `kw` (not part of the data).
fn eol_before(src: &dyn Source, start: u64, kw: u64) -> u64 {
    let mut b = [0u8; 2];
    if kw >= start + 2 && crate::source::tree::read_exact(src, &mut b, kw - 2).is_ok() {
        if b == *b"\r\n" {
            return 2;
        }
        if b[1] == b'\n' || b[1] == b'\r' {
            return 1;
        }
    } else if kw > start
        && crate::source::tree::read_exact(src, &mut b[..1], kw - 1).is_ok()
        && (b[0] == b'\n' || b[0] == b'\r')
    {
        return 1;
    }
    0
}

/// `/Filter`'s names in order.
fn filters(d: &[(Vec<u8>, Val)]) -> Vec<Vec<u8>> {
    match get(d, b"Filter") {
        Some(Val::Name(n)) => vec![n.clone()],
        Some(Val::Arr(a)) => a
            .iter()
            .filter_map(|v| match v {
                Val::Name(n) => Some(n.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `/DecodeParms` of the `i`th filter.
fn parms(d: &[(Vec<u8>, Val)], i: usize) -> Vec<(Vec<u8>, Val)> {
    match get(d, b"DecodeParms").or_else(|| get(d, b"DP")) {
        Some(Val::Dict(p)) if i == 0 => p.clone(),
        Some(Val::Arr(a)) => match a.get(i) {
            Some(Val::Dict(p)) => p.clone(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn predictor(p: &[(Vec<u8>, Val)]) -> i64 {
    int(p, b"Predictor").unwrap_or(1)
}

fn get<'v>(d: &'v [(Vec<u8>, Val)], key: &[u8]) -> Option<&'v Val> {
    d.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn int(d: &[(Vec<u8>, Val)], key: &[u8]) -> Option<i64> {
    match get(d, key) {
        Some(Val::Int(n)) => Some(*n),
        _ => None,
    }
}

fn name_is(v: Option<&Val>, name: &[u8]) -> bool {
    matches!(v, Some(Val::Name(n)) if n == name)
}

/// The PDF picture expander ([`super::Kind::Pdf`]).
pub(crate) struct Pdf;

impl super::Expander for Pdf {
    fn members<'a>(
        &self,
        src: &'a dyn Source,
        size: u64,
        _path: &RawPath,
        budget: &'a super::Budget,
    ) -> Result<Members<'a>, String> {
        members(src, size, budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::{Budget, Limits};
    use crate::source::tree::MemSource;

    fn list(pdf: &[u8]) -> Vec<(String, Result<Vec<u8>, String>)> {
        let src = MemSource(pdf.to_vec());
        let limits = Limits::default();
        let budget = Budget::new(&limits, Budget::scan_total(&limits));
        let members = members(&src, pdf.len() as u64, &budget).unwrap();
        members
            .map(|m| {
                let m = m.unwrap();
                let name = m.name.to_string();
                let bytes = match m.body {
                    Body::Read { src, .. } => {
                        let mut out = Vec::new();
                        let mut buf = [0u8; 1000];
                        loop {
                            match src.read_at(&mut buf, out.len() as u64) {
                                Ok(0) => break Ok(out),
                                Ok(n) => out.extend_from_slice(&buf[..n]),
                                Err(e) => break Err(e.to_string()),
                            }
                        }
                    }
                    Body::Skipped(s) => Err(format!("skipped {}", s.code())),
                    Body::Failed(f) => Err(f),
                };
                (name, bytes)
            })
            .collect()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(data).unwrap();
        z.finish().unwrap()
    }

    fn obj(n: u32, dict: &str, data: &[u8]) -> Vec<u8> {
        let mut v = format!("{n} 0 obj\n<< {dict} >>\nstream\r\n").into_bytes();
        v.extend_from_slice(data);
        v.extend_from_slice(b"\r\nendstream\nendobj\n");
        v
    }

    #[test]
    fn jpegs_are_cut_out_by_length_direct_or_indirect_and_by_endstream() {
        let jpeg = b"\xFF\xD8\xFF\xE0 a jpeg with endstream-like bytes: endstrea \xFF\xD9";
        let mut pdf = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
        pdf.extend(obj(
            4,
            &format!(
                "/Type /XObject /Subtype /Image /Filter /DCTDecode /Length {}",
                jpeg.len()
            ),
            jpeg,
        ));
        // Indirect length, resolved by object 9 after it.
        pdf.extend(obj(
            5,
            "/Subtype/Image/Filter[/DCTDecode]/Length 9 0 R",
            jpeg,
        ));
        pdf.extend(format!("9 0 obj {} endobj\n", jpeg.len()).into_bytes());
        // A wrong length: the data ends at endstream's line.
        pdf.extend(obj(6, "/Subtype /Image /Filter /DCTDecode /Length 3", jpeg));
        // Flate around DCT.
        let z = zlib(jpeg);
        pdf.extend(obj(
            7,
            &format!(
                "/Subtype /Image /Filter [/FlateDecode /DCTDecode] /Length {}",
                z.len()
            ),
            &z,
        ));
        // Not a picture: not a member.
        pdf.extend(obj(8, "/Length 5", b"hello"));
        // An incremental save's new object 4: both revisions' pictures.
        pdf.extend(obj(
            4,
            &format!("/Subtype /Image /Filter /DCT /Length {}", jpeg.len()),
            jpeg,
        ));
        pdf.extend(b"trailer << /Root 1 0 R >>\n%%EOF\n");
        let got = list(&pdf);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "object-4.jpg",
                "object-5.jpg",
                "object-6.jpg",
                "object-7.jpg",
                "object-4~2.jpg"
            ]
        );
        for (name, bytes) in &got {
            assert_eq!(bytes.as_deref(), Ok(&jpeg[..]), "{name}");
        }
    }

    #[test]
    fn pixels_become_a_bmp_through_png_predictors_and_palettes() {
        // 3×2 RGB, PNG predictors (Sub on row 1, Paeth on row 2).
        let rows: [[u8; 9]; 2] = [
            [10, 20, 30, 40, 50, 60, 70, 80, 90],
            [1, 2, 3, 200, 100, 50, 9, 8, 7],
        ];
        let mut filtered = vec![1u8];
        filtered.push(rows[0][0]);
        filtered.push(rows[0][1]);
        filtered.push(rows[0][2]);
        for i in 3..9 {
            filtered.push(rows[0][i].wrapping_sub(rows[0][i - 3]));
        }
        filtered.push(4);
        for i in 0..9 {
            let a = if i >= 3 { rows[1][i - 3] as i16 } else { 0 };
            let b = rows[0][i] as i16;
            let c = if i >= 3 { rows[0][i - 3] as i16 } else { 0 };
            let p = a + b - c;
            let pred = if (p - a).abs() <= (p - b).abs() && (p - a).abs() <= (p - c).abs() {
                a
            } else if (p - b).abs() <= (p - c).abs() {
                b
            } else {
                c
            };
            filtered.push(rows[1][i].wrapping_sub(pred as u8));
        }
        let z = zlib(&filtered);
        let mut pdf = b"%PDF-1.5\n".to_vec();
        pdf.extend(obj(
            3,
            &format!(
                "/Subtype /Image /Width 3 /Height 2 /ColorSpace /DeviceRGB /BitsPerComponent 8 \
                 /Filter /FlateDecode /DecodeParms << /Predictor 15 /Colors 3 /Columns 3 >> /Length {}",
                z.len()
            ),
            &z,
        ));
        // 2×1 indexed, no filter: palette entries 1 and 0.
        pdf.extend(obj(
            4,
            "/Subtype /Image /Width 2 /Height 1 /BitsPerComponent 8 \
             /ColorSpace [/Indexed /DeviceRGB 1 <FF0000 00FF00>] /Length 2",
            &[1, 0],
        ));
        let got = list(&pdf);
        assert_eq!(got[0].0, "object-3.bmp");
        assert_eq!(got[1].0, "object-4.bmp");
        for (_, b) in &got {
            let b = b.as_ref().unwrap();
            assert_eq!(&b[..2], b"BM");
            assert_eq!(
                u32::from_le_bytes(b[2..6].try_into().unwrap()) as usize,
                b.len()
            );
        }
        // The BMP decodes (by the image crate, a decoder of its own) to the
        // pixels the PDF holds.
        let rgb = image::load_from_memory_with_format(
            got[0].1.as_ref().unwrap(),
            image::ImageFormat::Bmp,
        )
        .unwrap()
        .to_rgb8();
        assert_eq!((rgb.width(), rgb.height()), (3, 2));
        assert_eq!(rgb.as_raw()[..9], rows[0]);
        assert_eq!(rgb.as_raw()[9..], rows[1]);
        let idx = image::load_from_memory_with_format(
            got[1].1.as_ref().unwrap(),
            image::ImageFormat::Bmp,
        )
        .unwrap()
        .to_rgb8();
        assert_eq!(idx.as_raw()[..], [0, 255, 0, 255, 0, 0]);
    }

    #[test]
    fn encryption_damage_and_unknown_filters_are_said() {
        let mut pdf = b"%PDF-1.4\n".to_vec();
        pdf.extend(obj(
            2,
            "/Subtype /Image /Filter /JBIG2Decode /Length 3",
            b"abc",
        ));
        pdf.extend(obj(
            3,
            "/Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray /Filter /FlateDecode /Length 4",
            &zlib(&[1, 2]),
        ));
        let got = list(&pdf);
        assert!(
            got[0].1.as_ref().unwrap_err().contains("/JBIG2Decode"),
            "{:?}",
            got[0]
        );
        let short = got[1].1.as_ref().unwrap_err();
        assert!(short.contains("row"), "{short}");

        let mut enc = pdf.clone();
        enc.extend(b"trailer << /Encrypt 9 0 R /Root 1 0 R >>\n");
        let got = list(&enc);
        assert!(
            got.iter()
                .all(|(_, b)| b.as_ref().unwrap_err() == "skipped encrypted")
        );

        // Cut inside a stream: that picture fails, saying so.
        let mut cut = b"%PDF-1.4\n".to_vec();
        cut.extend(obj(
            2,
            "/Subtype /Image /Filter /DCTDecode /Length 99",
            b"\xFF\xD8 jpeg",
        ));
        cut.truncate(cut.len() - 20);
        let got = list(&cut);
        assert!(
            got[0].1.as_ref().unwrap_err().contains("cut short"),
            "{:?}",
            got[0]
        );
    }

    #[test]
    fn hostile_tokens_end_without_panic_or_loop() {
        for pdf in [
            &b"1 0 obj << /A [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ "[..],
            b"1 0 obj << /Subtype /Image stream\n",
            b"(((((((((((\\",
            b"<<<<<<>>>>>> stream endstream",
            b"<4",
            b"/#4",
        ] {
            let _ = list(pdf);
        }
    }
}
