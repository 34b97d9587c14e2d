//! HEIF pictures (HEIC, AVIF): the thumbnails a phone stores beside the
//! photo. A HEIF file is ISO BMFF boxes; its `meta` box lists *items*
//! (`iinf`), where each one's bytes lie (`iloc`), how items refer to each
//! other (`iref`: `thmb` marks a thumbnail of the item it names, `cdsc` a
//! description, such as the EXIF block) and the properties each item has
//! (`iprp`: `hvcC`/`av1C` decoder setup, `ispe` size, rotation…), as
//! ISO/IEC 23008-12 lays them out.
//!
//! Members, in item order:
//! - `thumbnail` (`thumbnail~2`, … for more): each thumbnail item. A
//!   JPEG thumbnail is a file of its own, read where it lies. An HEVC or
//!   AV1 thumbnail is coded data that is no file by itself: the member is
//!   a HEIF file made of that item alone (its own properties, its data,
//!   as stored), so it decodes and gets the picture's perceptual hashes,
//!   and the scan compares them with the photo's; its digests are of
//!   that made file, which no other tool makes (they match nothing), and
//!   its `offset` is where the item's data starts in the photo.
//! - `exif-thumbnail`: the JPEG in the EXIF item's IFD1, as for a JPEG
//!   (`exif.rs`), read where it lies.
//!
//! The primary picture itself (a grid of tiles included, which libheif
//! puts together) is decoded as the file's own picture (`perceptual`).
//! Every size and offset is checked against the file; the `meta` box is
//! read into memory up to [`MAX_META`].

use super::stream::Slice;
use super::{Body, Member, Members, member_meta};
use crate::path::RawPath;
use crate::source::Source;
use crate::source::tree::{MemSource, read_exact};

/// The largest `meta` box read (a phone's is a few KiB; a photo of many
/// grid tiles tens of KiB).
const MAX_META: u64 = 16 << 20;

/// The largest thumbnail item made into a file of its own, and the
/// largest EXIF item read when it is not stored in one piece.
const MAX_ITEM: u64 = 16 << 20;

/// One item: its type, where its bytes are, its properties.
#[derive(Default, Debug, Clone)]
struct Item {
    id: u32,
    kind: [u8; 4],
    /// (construction method, base offset, extents (offset, length)).
    method: u8,
    extents: Vec<(u64, u64)>,
    /// Property indexes into `ipco` (1-based), with their essential bit.
    props: Vec<(u16, bool)>,
}

/// What the `meta` box says.
#[derive(Default, Debug)]
struct Meta {
    items: Vec<Item>,
    /// (reference type, from, to).
    refs: Vec<([u8; 4], u32, Vec<u32>)>,
    /// The `ipco` boxes, whole (header included).
    ipco: Vec<Vec<u8>>,
    /// Where `idat`'s data starts in the file, and its length.
    idat: Option<(u64, u64)>,
    primary: Option<u32>,
}

/// A box's header at `at` of a file of `end` bytes: (type, where its
/// body starts, where it ends).
fn box_at(b: &[u8], at: usize) -> Result<([u8; 4], usize, usize), String> {
    let h = b
        .get(at..at + 8)
        .ok_or_else(|| "a box header runs past its parent".to_string())?;
    let mut size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
    let kind = [h[4], h[5], h[6], h[7]];
    let mut body = at + 8;
    if size == 1 {
        let l = b
            .get(at + 8..at + 16)
            .ok_or_else(|| "a box header runs past its parent".to_string())?;
        size = u64::from_be_bytes([l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7]]);
        body = at + 16;
    } else if size == 0 {
        size = (b.len() - at) as u64;
    }
    let end = (at as u64)
        .checked_add(size)
        .filter(|&e| e <= b.len() as u64 && e >= body as u64)
        .ok_or_else(|| {
            format!(
                "the '{}' box at {at} claims {size} bytes, past its parent",
                String::from_utf8_lossy(&kind)
            )
        })?;
    Ok((kind, body, end as usize))
}

/// The boxes of `b[from..to]`, in order.
fn children(b: &[u8], from: usize, to: usize) -> Result<Vec<([u8; 4], usize, usize)>, String> {
    let mut out = Vec::new();
    let mut at = from;
    let part = &b[..to];
    while at + 8 <= to {
        let bx = box_at(part, at)?;
        at = bx.2;
        out.push(bx);
    }
    Ok(out)
}

/// Big-endian fields of a box body, every read checked.
struct Fields<'b> {
    b: &'b [u8],
    at: usize,
}

impl Fields<'_> {
    fn uint(&mut self, n: usize) -> Result<u64, String> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or_else(|| "a box ends early".to_string())?;
        self.at += n;
        Ok(s.iter().fold(0u64, |v, &x| v << 8 | x as u64))
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.uint(1)? as u8)
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(self.uint(2)? as u16)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(self.uint(4)? as u32)
    }
    fn fourcc(&mut self) -> Result<[u8; 4], String> {
        Ok(self.u32()?.to_be_bytes())
    }
    /// A FullBox's version and flags.
    fn full(&mut self) -> Result<(u8, u32), String> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0xFF_FFFF))
    }
    /// A count of entries of at least `each` bytes still to come.
    fn count(&mut self, n: u64, each: usize) -> Result<usize, String> {
        if n > ((self.b.len() - self.at.min(self.b.len())) / each.max(1)) as u64 {
            return Err(format!("a box counts {n} entries it has no room for"));
        }
        Ok(n as usize)
    }
}

/// Parses the `meta` box (its bytes `b`, found at `file_at` in the file).
fn meta(b: &[u8], file_at: u64) -> Result<Meta, String> {
    let mut m = Meta::default();
    // A FullBox: its children follow the version and flags.
    for (kind, body, end) in children(b, 4, b.len())? {
        let mut f = Fields {
            b: &b[..end],
            at: body,
        };
        match &kind {
            b"pitm" => {
                let (v, _) = f.full()?;
                m.primary = Some(if v == 0 { f.u16()? as u32 } else { f.u32()? });
            }
            b"iinf" => {
                let (v, _) = f.full()?;
                let n = if v == 0 {
                    f.u16()? as u64
                } else {
                    f.u32()? as u64
                };
                let n = f.count(n, 12)?;
                for (k, ib, ie) in children(b, f.at, end)?.into_iter().take(n) {
                    if &k != b"infe" {
                        continue;
                    }
                    let mut e = Fields {
                        b: &b[..ie],
                        at: ib,
                    };
                    let (v, _) = e.full()?;
                    if v < 2 {
                        continue;
                    }
                    let id = if v == 2 { e.u16()? as u32 } else { e.u32()? };
                    let _protection = e.u16()?;
                    let kind = e.fourcc()?;
                    item(&mut m, id).kind = kind;
                }
            }
            b"iloc" => {
                let (v, _) = f.full()?;
                let sizes = f.u16()?;
                let (off_size, len_size, base_size) = (
                    (sizes >> 12) as usize,
                    ((sizes >> 8) & 15) as usize,
                    ((sizes >> 4) & 15) as usize,
                );
                let index_size = if v == 1 || v == 2 {
                    (sizes & 15) as usize
                } else {
                    0
                };
                if [off_size, len_size, base_size, index_size]
                    .iter()
                    .any(|s| ![0, 4, 8].contains(s))
                {
                    return Err("its iloc box gives field sizes other than 0, 4 or 8".into());
                }
                let n = if v < 2 {
                    f.u16()? as u64
                } else {
                    f.u32()? as u64
                };
                let n = f.count(n, 6)?;
                for _ in 0..n {
                    let id = if v < 2 { f.u16()? as u32 } else { f.u32()? };
                    let method = if v == 1 || v == 2 {
                        (f.u16()? & 15) as u8
                    } else {
                        0
                    };
                    let _data_ref = f.u16()?;
                    let base = f.uint(base_size)?;
                    let ne = f.u16()? as u64;
                    let ne = f.count(ne, off_size + len_size + index_size)?;
                    let mut extents = Vec::with_capacity(ne);
                    for _ in 0..ne {
                        f.uint(index_size)?;
                        let o = f.uint(off_size)?;
                        let l = f.uint(len_size)?;
                        let o = base
                            .checked_add(o)
                            .ok_or_else(|| "an item's offset overflows".to_string())?;
                        extents.push((o, l));
                    }
                    let it = item(&mut m, id);
                    it.method = method;
                    it.extents = extents;
                }
            }
            b"iref" => {
                let (v, _) = f.full()?;
                for (k, rb, re) in children(b, f.at, end)? {
                    let mut r = Fields {
                        b: &b[..re],
                        at: rb,
                    };
                    let id = |r: &mut Fields<'_>| -> Result<u32, String> {
                        if v == 0 { Ok(r.u16()? as u32) } else { r.u32() }
                    };
                    let from = id(&mut r)?;
                    let n = r.u16()? as u64;
                    let n = r.count(n, 2)?;
                    let to = (0..n).map(|_| id(&mut r)).collect::<Result<_, _>>()?;
                    m.refs.push((k, from, to));
                }
            }
            b"iprp" => {
                for (k, pb, pe) in children(b, body, end)? {
                    match &k {
                        b"ipco" => {
                            m.ipco = children(b, pb, pe)?
                                .into_iter()
                                .map(|(_, _, e)| e)
                                .scan(pb, |start, e| {
                                    let s = *start;
                                    *start = e;
                                    Some(b[s..e].to_vec())
                                })
                                .collect();
                        }
                        b"ipma" => {
                            let mut a = Fields {
                                b: &b[..pe],
                                at: pb,
                            };
                            let (v, flags) = a.full()?;
                            let n = a.u32()? as u64;
                            let n = a.count(n, 3)?;
                            for _ in 0..n {
                                let id = if v < 1 { a.u16()? as u32 } else { a.u32()? };
                                let k = a.u8()? as u64;
                                let k = a.count(k, 1)?;
                                let mut props = Vec::with_capacity(k);
                                for _ in 0..k {
                                    let (ess, idx) = if flags & 1 != 0 {
                                        let x = a.u16()?;
                                        (x & 0x8000 != 0, x & 0x7FFF)
                                    } else {
                                        let x = a.u8()?;
                                        (x & 0x80 != 0, (x & 0x7F) as u16)
                                    };
                                    props.push((idx, ess));
                                }
                                item(&mut m, id).props = props;
                            }
                        }
                        _ => {}
                    }
                }
            }
            b"idat" => m.idat = Some((file_at + body as u64, (end - body) as u64)),
            _ => {}
        }
    }
    Ok(m)
}

/// The item `id`, added if new (items are few: boxes bound them).
fn item(m: &mut Meta, id: u32) -> &mut Item {
    let i = match m.items.iter().position(|it| it.id == id) {
        Some(i) => i,
        None => {
            m.items.push(Item {
                id,
                ..Item::default()
            });
            m.items.len() - 1
        }
    };
    &mut m.items[i]
}

/// Where an item's bytes lie in the file: (offset, length) per extent,
/// checked against the file's `size`.
fn places(m: &Meta, it: &Item, size: u64) -> Result<Vec<(u64, u64)>, String> {
    let (base, limit) = match it.method {
        0 => (0, size),
        1 => m
            .idat
            .ok_or_else(|| format!("item {} lies in an idat box the file lacks", it.id))?,
        other => {
            return Err(format!(
                "item {} is built from other items (iloc construction method {other})",
                it.id
            ));
        }
    };
    let mut out = Vec::with_capacity(it.extents.len());
    for &(o, l) in &it.extents {
        // A length of 0: to the end (of the file or idat).
        let l = if l == 0 { limit.saturating_sub(o) } else { l };
        if o.checked_add(l).is_none_or(|e| e > limit) {
            return Err(format!(
                "item {} claims {l} bytes at {o}, past the end ({limit})",
                it.id
            ));
        }
        out.push((base + o, l));
    }
    if out.is_empty() {
        return Err(format!("item {} has no data", it.id));
    }
    Ok(out)
}

/// The item's bytes, read into memory (at most [`MAX_ITEM`]).
fn read_item(src: &dyn Source, places: &[(u64, u64)]) -> Result<Vec<u8>, String> {
    let total: u64 = places.iter().map(|p| p.1).sum();
    if total > MAX_ITEM {
        return Err(format!(
            "its {total} bytes are over the {MAX_ITEM}-byte limit for one item"
        ));
    }
    let mut data = vec![0u8; total as usize];
    let mut at = 0usize;
    for &(o, l) in places {
        read_exact(src, &mut data[at..at + l as usize], o)
            .map_err(|e| format!("reading it: {e}"))?;
        at += l as usize;
    }
    Ok(data)
}

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + body.len());
    v.extend_from_slice(&(8 + body.len() as u32).to_be_bytes());
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

fn full_box(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut b = ((version as u32) << 24 | flags).to_be_bytes().to_vec();
    b.extend_from_slice(body);
    bx(kind, &b)
}

/// A HEIF file holding one coded picture (`kind` `hvc1` or `av01`), with
/// the properties `props` (whole boxes, with their essential bits), and
/// its data.
fn single_item_file(
    kind: &[u8; 4],
    props: &[(&[u8], bool)],
    data: &[u8],
) -> Result<Vec<u8>, String> {
    if props.len() > 127 || data.len() as u64 > u32::MAX as u64 {
        return Err("too many properties or bytes for a thumbnail".into());
    }
    let brand: &[u8; 4] = if kind == b"av01" { b"avif" } else { b"heic" };
    let mut ftyp = brand.to_vec();
    ftyp.extend_from_slice(&0u32.to_be_bytes());
    ftyp.extend_from_slice(b"mif1");
    ftyp.extend_from_slice(brand);
    if kind == b"av01" {
        ftyp.extend_from_slice(b"miaf");
    }
    let ftyp = bx(b"ftyp", &ftyp);
    let mut hdlr = vec![0u8; 4];
    hdlr.extend_from_slice(b"pict");
    hdlr.extend_from_slice(&[0u8; 13]);
    let hdlr = full_box(b"hdlr", 0, 0, &hdlr);
    let pitm = full_box(b"pitm", 0, 0, &1u16.to_be_bytes());
    let mut infe = vec![0, 1, 0, 0];
    infe.extend_from_slice(kind);
    infe.push(0);
    let mut iinf = 1u16.to_be_bytes().to_vec();
    iinf.extend(full_box(b"infe", 2, 0, &infe));
    let iinf = full_box(b"iinf", 0, 0, &iinf);
    let ipco: Vec<u8> = props.iter().flat_map(|(p, _)| p.to_vec()).collect();
    let mut ipma = 1u32.to_be_bytes().to_vec();
    ipma.extend_from_slice(&1u16.to_be_bytes());
    ipma.push(props.len() as u8);
    for (i, (_, essential)) in props.iter().enumerate() {
        ipma.push((i as u8 + 1) | if *essential { 0x80 } else { 0 });
    }
    let mut iprp = bx(b"ipco", &ipco);
    iprp.extend(full_box(b"ipma", 0, 0, &ipma));
    let iprp = bx(b"iprp", &iprp);
    let iloc_body = |offset: u32| {
        let mut v = vec![0x44, 0x00];
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&0u16.to_be_bytes());
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&offset.to_be_bytes());
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        full_box(b"iloc", 0, 0, &v)
    };
    let meta_len = 12 + hdlr.len() + pitm.len() + iinf.len() + iprp.len() + iloc_body(0).len();
    let offset = (ftyp.len() + meta_len + 8) as u32;
    let mut meta = Vec::with_capacity(meta_len - 12);
    for part in [hdlr, pitm, iinf, iprp, iloc_body(offset)] {
        meta.extend(part);
    }
    let mut out = ftyp;
    out.extend(full_box(b"meta", 0, 0, &meta));
    out.extend(bx(b"mdat", data));
    Ok(out)
}

/// The `meta` box of a HEIF file of `size` bytes: its bytes and offset.
fn find_meta(src: &dyn Source, size: u64) -> Result<Option<(Vec<u8>, u64)>, String> {
    let mut at = 0u64;
    for _ in 0..64 {
        if at + 8 > size {
            return Ok(None);
        }
        let mut h = [0u8; 16];
        let n = (size - at).min(16) as usize;
        read_exact(src, &mut h[..n], at).map_err(|e| format!("reading its boxes: {e}"))?;
        let mut len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
        let mut head = 8;
        if len == 1 {
            if n < 16 {
                return Ok(None);
            }
            len = u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
            head = 16;
        } else if len == 0 {
            len = size - at;
        }
        if len < head || at.checked_add(len).is_none_or(|e| e > size) {
            // Damage before the item list: no thumbnails can be found, and
            // the picture's own decoding says the file is damaged.
            return Ok(None);
        }
        if &h[4..8] == b"meta" {
            if len > MAX_META {
                return Err(format!(
                    "its meta box of {len} bytes is over the {MAX_META}-byte limit"
                ));
            }
            let mut b = vec![0u8; (len - head) as usize];
            read_exact(src, &mut b, at + head).map_err(|e| format!("reading its meta box: {e}"))?;
            return Ok(Some((b, at + head)));
        }
        at += len;
    }
    Ok(None)
}

/// The thumbnails of a HEIF file of `size` bytes.
pub(crate) fn members<'a>(src: &'a dyn Source, size: u64) -> Result<Members<'a>, String> {
    let Some((b, at)) = find_meta(src, size)? else {
        return Ok(Box::new(std::iter::empty()));
    };
    let m = meta(&b, at)?;
    let mut out: Vec<Result<Member<'a>, String>> = Vec::new();
    let file = |name: Vec<u8>, offset, body: Body<'a>, len| Member {
        name: RawPath::from_bytes(name),
        offset,
        meta: member_meta(len, libc::S_IFREG | 0o644, 0),
        crc32: None,
        checksums: Vec::new(),
        found: None,
        body,
    };
    // Thumbnails: items with a `thmb` reference, in item order.
    let mut thumbs: Vec<&Item> = m
        .items
        .iter()
        .filter(|it| {
            m.refs
                .iter()
                .any(|(k, from, _)| k == b"thmb" && *from == it.id)
        })
        .collect();
    thumbs.sort_by_key(|it| it.id);
    for (n, it) in thumbs.iter().enumerate() {
        let name = if n == 0 {
            b"thumbnail".to_vec()
        } else {
            format!("thumbnail~{}", n + 1).into_bytes()
        };
        let made = places(&m, it, size).and_then(|p| {
            if &it.kind == b"jpeg" && p.len() == 1 {
                let (o, l) = p[0];
                return Ok((
                    Some(o),
                    Body::Read {
                        src: Box::new(Slice {
                            src,
                            offset: o,
                            len: l,
                        }),
                        to_end: false,
                        stored: true,
                    },
                    l,
                ));
            }
            let data = read_item(src, &p)?;
            let bytes = if &it.kind == b"jpeg" {
                data
            } else if &it.kind == b"hvc1" || &it.kind == b"av01" {
                let mut props = Vec::with_capacity(it.props.len());
                for &(idx, ess) in &it.props {
                    let p = m.ipco.get((idx as usize).wrapping_sub(1)).ok_or_else(|| {
                        format!("item {} names property {idx}, which is not there", it.id)
                    })?;
                    props.push((p.as_slice(), ess));
                }
                single_item_file(&it.kind, &props, &data)?
            } else {
                return Err(format!(
                    "a thumbnail coded as {}, which triage does not make a picture of",
                    String::from_utf8_lossy(&it.kind)
                ));
            };
            let len = bytes.len() as u64;
            Ok((
                Some(p[0].0),
                Body::Read {
                    src: Box::new(MemSource(bytes)),
                    to_end: false,
                    stored: false,
                },
                len,
            ))
        });
        out.push(Ok(match made {
            Ok((offset, body, len)) => file(name, offset, body, len),
            Err(why) => file(
                name,
                None,
                Body::Failed(format!("thumbnail item {}: {why}", it.id)),
                0,
            ),
        }));
    }
    // The EXIF block: 4 bytes giving where its TIFF header starts, then
    // the block. Only one stored in one piece in the file is read in
    // place (what encoders write).
    for it in m.items.iter().filter(|it| &it.kind == b"Exif") {
        let Ok(p) = places(&m, it, size) else {
            continue;
        };
        if p.len() != 1 || p[0].1 < 4 {
            continue;
        }
        let (o, l) = p[0];
        let mut skip = [0u8; 4];
        read_exact(src, &mut skip, o).map_err(|e| format!("reading its EXIF item: {e}"))?;
        let tiff_at = o + 4 + u32::from_be_bytes(skip) as u64;
        if tiff_at >= o + l {
            continue;
        }
        match super::exif::tiff(src, tiff_at, o + l) {
            Ok(Some((at, len))) => out.push(Ok(file(
                super::exif::NAME.to_vec(),
                Some(at),
                Body::Read {
                    src: Box::new(Slice {
                        src,
                        offset: at,
                        len,
                    }),
                    to_end: false,
                    stored: true,
                },
                len,
            ))),
            Ok(None) => {}
            Err(why) => out.push(Err(why)),
        }
        break;
    }
    Ok(Box::new(out.into_iter()))
}

/// The HEIF expander ([`super::Kind::Heif`]).
pub(crate) struct Heif;

impl super::Expander for Heif {
    fn members<'a>(
        &self,
        src: &'a dyn Source,
        size: u64,
        _path: &RawPath,
        _budget: &'a super::Budget,
    ) -> Result<Members<'a>, String> {
        members(src, size)
    }

    fn random_access(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_made_file_parses_back_to_its_one_item() {
        let hvcc = super::bx(b"hvcC", &[1, 2, 3]);
        let ispe = super::full_box(b"ispe", 0, 0, &[0, 0, 0, 160, 0, 0, 0, 120]);
        let made =
            super::single_item_file(b"hvc1", &[(&hvcc, true), (&ispe, false)], b"coded").unwrap();
        let src = crate::source::tree::MemSource(made.clone());
        let (b, at) = super::find_meta(&src, made.len() as u64).unwrap().unwrap();
        let m = super::meta(&b, at).unwrap();
        assert_eq!(m.primary, Some(1));
        let it = &m.items[0];
        assert_eq!(&it.kind, b"hvc1");
        assert_eq!(it.props, [(1, true), (2, false)]);
        assert_eq!(m.ipco, [hvcc, ispe]);
        let p = super::places(&m, it, made.len() as u64).unwrap();
        assert_eq!(super::read_item(&src, &p).unwrap(), b"coded");
    }

    #[test]
    fn boxes_that_claim_more_than_they_hold_are_refused() {
        // A file cut before its item list: nothing to list (the picture's
        // decoding reports the damage).
        let mut f = super::bx(b"ftyp", b"heic\0\0\0\0mif1");
        f.extend_from_slice(&1000u32.to_be_bytes());
        f.extend_from_slice(b"meta");
        let src = crate::source::tree::MemSource(f.clone());
        assert!(super::find_meta(&src, f.len() as u64).unwrap().is_none());
        // An iloc counting more items than it holds.
        let mut iloc = vec![0x44, 0x00, 0xFF, 0xFF];
        iloc.extend_from_slice(&[0; 4]);
        let meta = super::full_box(b"meta", 0, 0, &super::full_box(b"iloc", 0, 0, &iloc));
        let err = super::meta(&meta[8..], 0).unwrap_err();
        assert!(err.contains("no room"), "{err}");
    }
}
