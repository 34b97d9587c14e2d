//! A PDF picture's samples as a BMP: the layout its dictionary gives
//! (size, bits, colour space, palette, predictor), and a reader that
//! makes the BMP row by row from the decoded samples (PNG and TIFF
//! predictors undone), so no picture is held whole.

use std::io::{self, Read};

use super::super::damaged;
use super::lex::Val;
use super::{Found, MAX_SIDE, get, int, parms, predictor};

/// How a picture's samples are laid out, and how they become BMP rows.
#[derive(Clone, Debug)]
pub(super) struct Pixels {
    width: u64,
    height: u64,
    /// Bits per sample: 1, 2, 4, 8 or 16.
    bpc: u64,
    /// Samples per pixel: 1 (gray or an index) or 3 (RGB).
    comps: u64,
    /// Indexed colours (RGB triples), or for gray at under 8 bits none.
    palette: Option<Vec<[u8; 3]>>,
    /// `/Decode [1 0]` on gray: 0 is white.
    inverted: bool,
    /// 1: none; 2: TIFF; 10–15: PNG (each row says its filter).
    predictor: i64,
}

impl Pixels {
    pub(super) fn of(d: &[(Vec<u8>, Val)], f: &Found) -> Result<Pixels, String> {
        let dim = |k: &[u8]| match int(d, k) {
            Some(n) if n > 0 && n as u64 <= MAX_SIDE => Ok(n as u64),
            Some(n) => Err(format!(
                "its /{} of {n} is not a size triage turns into a picture",
                String::from_utf8_lossy(k)
            )),
            None => Err(format!("it gives no /{}", String::from_utf8_lossy(k))),
        };
        let (width, height) = (dim(b"Width")?, dim(b"Height")?);
        let mask = matches!(get(d, b"ImageMask"), Some(Val::Kw(k)) if k == b"true");
        let bpc = if mask {
            1
        } else {
            int(d, b"BitsPerComponent").unwrap_or(8) as u64
        };
        if !matches!(bpc, 1 | 2 | 4 | 8 | 16) {
            return Err(format!(
                "{bpc} bits per sample: not a picture triage decodes"
            ));
        }
        let inverted = match get(d, b"Decode") {
            Some(Val::Arr(a)) => matches!(a.as_slice(), [Val::Int(1), Val::Int(0)]),
            _ => false,
        };
        let comps_of = |cs: &Val| -> Result<u64, String> {
            match cs {
                Val::Name(n) => match n.as_slice() {
                    b"DeviceGray" | b"G" | b"CalGray" => Ok(1),
                    b"DeviceRGB" | b"RGB" | b"CalRGB" => Ok(3),
                    other => Err(format!(
                        "its colour space /{} is not turned into a picture",
                        String::from_utf8_lossy(other)
                    )),
                },
                Val::Arr(a) => match a.as_slice() {
                    [Val::Name(n), ..] if n == b"CalGray" => Ok(1),
                    [Val::Name(n), ..] if n == b"CalRGB" => Ok(3),
                    [Val::Name(n), Val::Ref(r, _)] if n == b"ICCBased" => match f.ns.get(r) {
                        Some(1) => Ok(1),
                        Some(3) => Ok(3),
                        Some(n) => Err(format!(
                            "its ICC colour space has {n} components: not turned into a picture"
                        )),
                        None => Err("its ICC profile's /N was not found".into()),
                    },
                    [Val::Name(n), ..] => Err(format!(
                        "its colour space /{} is not turned into a picture",
                        String::from_utf8_lossy(n)
                    )),
                    _ => Err("its colour space is not one triage reads".into()),
                },
                _ => Err("its colour space is not one triage reads".into()),
            }
        };
        let (comps, palette) = if mask {
            (1, None)
        } else {
            match get(d, b"ColorSpace").or_else(|| get(d, b"CS")) {
                None => return Err("it gives no /ColorSpace".into()),
                Some(Val::Arr(a)) if matches!(a.first(), Some(Val::Name(n)) if n == b"Indexed" || n == b"I") =>
                {
                    let [_, base, Val::Int(hival), Val::Str(lookup)] = a.as_slice() else {
                        return Err(
                            "its indexed colour space's palette is not given in place".into()
                        );
                    };
                    let per = comps_of(base)? as usize;
                    let n = (*hival).clamp(0, 255) as usize + 1;
                    let palette = (0..n)
                        .map(|i| {
                            let at = |c: usize| lookup.get(i * per + c).copied().unwrap_or(0);
                            if per == 1 {
                                [at(0); 3]
                            } else {
                                [at(0), at(1), at(2)]
                            }
                        })
                        .collect();
                    if bpc == 16 {
                        return Err("16-bit indexed colours: not a picture".into());
                    }
                    (1, Some(palette))
                }
                Some(cs) => (comps_of(cs)?, None),
            }
        };
        if comps == 3 && bpc < 8 {
            return Err(format!("{bpc}-bit RGB samples: not turned into a picture"));
        }
        let p = parms(d, 0);
        let predictor = predictor(&p);
        if predictor != 1 {
            if !(predictor == 2 || (10..=15).contains(&predictor)) {
                return Err(format!("its predictor {predictor} is not one PDF defines"));
            }
            let colors = int(&p, b"Colors").unwrap_or(1) as u64;
            let pbpc = int(&p, b"BitsPerComponent").unwrap_or(8) as u64;
            let columns = int(&p, b"Columns").unwrap_or(1) as u64;
            if (colors, pbpc, columns) != (comps, bpc, width) {
                return Err(
                    "its predictor's /Colors, /BitsPerComponent, /Columns disagree with the picture's".into(),
                );
            }
            if predictor == 2 && bpc != 8 {
                return Err("a TIFF predictor on samples of other than 8 bits".into());
            }
        }
        Ok(Pixels {
            width,
            height,
            bpc,
            comps,
            palette,
            inverted,
            predictor,
        })
    }

    /// Bytes of one row of samples as stored.
    fn row_in(&self) -> usize {
        (self.width * self.comps * self.bpc).div_ceil(8) as usize
    }

    /// BMP bits per pixel: 24 (RGB), or 1/4/8 with a palette.
    fn bmp_bits(&self) -> u64 {
        match (self.comps, self.bpc) {
            (3, _) => 24,
            (_, 1) => 1,
            (_, 2 | 4) => 4,
            _ => 8,
        }
    }

    fn row_out(&self) -> usize {
        ((self.width * self.bmp_bits()).div_ceil(32) * 4) as usize
    }

    fn palette_len(&self) -> u64 {
        match self.bmp_bits() {
            24 => 0,
            b => 1 << b,
        }
    }

    pub(super) fn bmp_size(&self) -> u64 {
        54 + 4 * self.palette_len() + self.row_out() as u64 * self.height
    }

    /// BITMAPFILEHEADER, BITMAPINFOHEADER (negative height: top-down
    /// rows, as the PDF stores them) and the palette.
    fn bmp_header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(54 + 1024);
        let off = 54 + 4 * self.palette_len() as u32;
        h.extend_from_slice(b"BM");
        h.extend_from_slice(&(self.bmp_size() as u32).to_le_bytes());
        h.extend_from_slice(&[0; 4]);
        h.extend_from_slice(&off.to_le_bytes());
        h.extend_from_slice(&40u32.to_le_bytes());
        h.extend_from_slice(&(self.width as i32).to_le_bytes());
        h.extend_from_slice(&(-(self.height as i32)).to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&(self.bmp_bits() as u16).to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&((self.row_out() as u64 * self.height) as u32).to_le_bytes());
        h.extend_from_slice(&2835u32.to_le_bytes());
        h.extend_from_slice(&2835u32.to_le_bytes());
        h.extend_from_slice(&(self.palette_len() as u32).to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        let n = self.palette_len() as usize;
        for i in 0..n {
            let rgb = match &self.palette {
                Some(p) => p.get(i).copied().unwrap_or([0; 3]),
                None => {
                    // Gray levels for `bpc` bits (a 2-bit sample is widened
                    // to 4 bits below, so its levels are 0..3).
                    let levels = (1u64 << self.bpc.min(8)) - 1;
                    let v = ((i as u64).min(levels) * 255 / levels) as u8;
                    let v = if self.inverted { 255 - v } else { v };
                    [v; 3]
                }
            };
            h.extend_from_slice(&[rgb[2], rgb[1], rgb[0], 0]);
        }
        h
    }
}

/// A BMP of a picture's decoded samples, made as it is read: the header,
/// then each stored row undone from its predictor and laid out as BMP
/// wants it.
pub(super) struct Bmp<R> {
    px: Pixels,
    raw: R,
    out: Vec<u8>,
    out_at: usize,
    prev: Vec<u8>,
    cur: Vec<u8>,
    rows: u64,
}

impl<R: Read> Bmp<R> {
    pub(super) fn new(px: Pixels, raw: R) -> Bmp<R> {
        let header = px.bmp_header();
        let n = px.row_in();
        Bmp {
            px,
            raw,
            out: header,
            out_at: 0,
            prev: vec![0; n],
            cur: vec![0; n],
            rows: 0,
        }
    }

    /// The next row into `out`.
    fn row(&mut self) -> io::Result<()> {
        let px = &self.px;
        let png = px.predictor >= 10;
        let mut filter = [0u8; 1];
        if png {
            read_full(&mut self.raw, &mut filter, self.rows, px.height)?;
        }
        read_full(&mut self.raw, &mut self.cur, self.rows, px.height)?;
        let bpp = ((px.comps * px.bpc).div_ceil(8)) as usize;
        if png {
            unfilter(filter[0], &mut self.cur, &self.prev, bpp)?;
        } else if px.predictor == 2 {
            for i in bpp..self.cur.len() {
                self.cur[i] = self.cur[i].wrapping_add(self.cur[i - bpp]);
            }
        }
        self.out.clear();
        self.out_at = 0;
        let row = &self.cur;
        match (px.comps, px.bpc) {
            (3, 8) => {
                for p in row.chunks_exact(3) {
                    self.out.extend_from_slice(&[p[2], p[1], p[0]]);
                }
            }
            (3, _) => {
                // 16 bits: the high byte of each sample.
                for p in row.chunks_exact(6) {
                    self.out.extend_from_slice(&[p[4], p[2], p[0]]);
                }
            }
            (_, 16) => self.out.extend(row.chunks_exact(2).map(|s| s[0])),
            (_, 2) => {
                // 2-bit samples widened to BMP's 4 bits.
                for i in 0..px.width as usize {
                    let s = (row[i / 4] >> (6 - 2 * (i % 4))) & 3;
                    if i % 2 == 0 {
                        self.out.push(s << 4);
                    } else if let Some(last) = self.out.last_mut() {
                        *last |= s;
                    }
                }
            }
            _ => self.out.extend_from_slice(row),
        }
        self.out.resize(px.row_out(), 0);
        std::mem::swap(&mut self.prev, &mut self.cur);
        self.rows += 1;
        Ok(())
    }
}

impl<R: Read> Read for Bmp<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out_at == self.out.len() {
            if self.rows == self.px.height {
                return Ok(0);
            }
            self.row()?;
        }
        let n = (self.out.len() - self.out_at).min(buf.len());
        buf[..n].copy_from_slice(&self.out[self.out_at..self.out_at + n]);
        self.out_at += n;
        Ok(n)
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8], row: u64, rows: u64) -> io::Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            damaged(format!("its pixel data ends in row {} of {rows}", row + 1))
        } else {
            e
        }
    })
}

/// Undoes one PNG row filter (RFC 2083 §6) in place.
fn unfilter(kind: u8, cur: &mut [u8], prev: &[u8], bpp: usize) -> io::Result<()> {
    match kind {
        0 => {}
        1 => {
            for i in bpp..cur.len() {
                cur[i] = cur[i].wrapping_add(cur[i - bpp]);
            }
        }
        2 => {
            for (c, p) in cur.iter_mut().zip(prev) {
                *c = c.wrapping_add(*p);
            }
        }
        3 => {
            for i in 0..cur.len() {
                let left = if i >= bpp { cur[i - bpp] } else { 0 };
                cur[i] = cur[i].wrapping_add(((left as u16 + prev[i] as u16) / 2) as u8);
            }
        }
        4 => {
            for i in 0..cur.len() {
                let (a, c) = if i >= bpp {
                    (cur[i - bpp] as i16, prev[i - bpp] as i16)
                } else {
                    (0, 0)
                };
                let b = prev[i] as i16;
                let p = a + b - c;
                let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                let pred = if pa <= pb && pa <= pc {
                    a
                } else if pb <= pc {
                    b
                } else {
                    c
                };
                cur[i] = cur[i].wrapping_add(pred as u8);
            }
        }
        k => return Err(damaged(format!("a PNG row filter of {k} (0–4 exist)"))),
    }
    Ok(())
}
