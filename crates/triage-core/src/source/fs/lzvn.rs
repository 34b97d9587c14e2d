//! LZVN decompression: Apple's byte-oriented LZ77 codec, which HFS+
//! compression (decmpfs types 7 and 8) and APFS use for small blocks.
//!
//! A stream is a sequence of instructions, each a one-byte opcode and its
//! operands, copying literal bytes from the stream and matches from the
//! output already written, and ends with the end-of-stream instruction
//! (`0x06` and seven bytes). The opcode's bits (Apple's `lzvn_decode_base.c`
//! documents them; this is our reading of that layout):
//!
//! | opcode | name | literal L | match M | distance D |
//! |---|---|---|---|---|
//! | `LLMMMDDD` `D8` | small distance | 0–3 | 3–10 | 11 bits, `DDD` < 6 |
//! | `LLMMM110` | previous distance | 1–3 | 3–10 | the last one |
//! | `LLMMM111` `D16` | large distance | 0–3 | 3–10 | 16 bits LE |
//! | `101LLMMM` `D14M2` | medium distance | 0–3 | 3–34 | 14 bits |
//! | `1110LLLL` / `E0 L8` | literal | 1–15 / 16–271 | | |
//! | `1111MMMM` / `F0 M8` | match | | 1–15 / 16–271 | the last one |
//! | `06` + 7 bytes | end of stream | | | |
//! | `0E`, `16` | no operation | | | |
//!
//! Every other opcode (`1E`–`3E` by eights, `70`–`7F`, `D0`–`DF`) is
//! undefined. A distance of zero or reaching before the output's start,
//! an undefined opcode, a stream that ends inside an instruction or
//! without its end, and output beyond the size expected are errors (the
//! file fails with why): the decoder never guesses.

/// Decodes `src`, which must give exactly `want` bytes.
pub(crate) fn decode(src: &[u8], want: usize) -> Result<Vec<u8>, String> {
    let mut out: Vec<u8> = Vec::with_capacity(want);
    let mut at = 0usize;
    // The distance a previous-distance or match-only instruction reuses.
    let mut last_d = 0usize;
    let byte = |k: usize| {
        src.get(k)
            .copied()
            .ok_or_else(|| format!("the LZVN stream ends inside an instruction, at byte {k}"))
    };
    loop {
        let op = byte(at)?;
        // (instruction bytes, literal bytes, match bytes, distance)
        let (len, lit, m, d) = match op {
            0x06 => {
                if src.len() < at + 8 {
                    return Err("the LZVN stream ends inside its end-of-stream marker".into());
                }
                break;
            }
            0x0E | 0x16 => (1, 0, 0, None),
            0x70..=0x7F | 0xD0..=0xDF => return Err(undefined(op, at)),
            0xA0..=0xBF => {
                let w = u16::from_le_bytes([byte(at + 1)?, byte(at + 2)?]) as usize;
                let m = (((op as usize & 7) << 2) | (w & 3)) + 3;
                (3, (op as usize >> 3) & 3, m, Some(w >> 2))
            }
            0xE0 => (2, byte(at + 1)? as usize + 16, 0, None),
            0xE1..=0xEF => (1, op as usize & 0x0F, 0, None),
            0xF0 => (2, 0, byte(at + 1)? as usize + 16, Some(last_d)),
            0xF1..=0xFF => (1, 0, op as usize & 0x0F, Some(last_d)),
            _ => {
                let lit = op as usize >> 6;
                let m = ((op as usize >> 3) & 7) + 3;
                match op & 7 {
                    6 if lit == 0 => return Err(undefined(op, at)),
                    6 => (1, lit, m, Some(last_d)),
                    7 => {
                        let d = u16::from_le_bytes([byte(at + 1)?, byte(at + 2)?]);
                        (3, lit, m, Some(d as usize))
                    }
                    hi => (2, lit, m, Some((hi as usize) << 8 | byte(at + 1)? as usize)),
                }
            }
        };
        let literal = src
            .get(at + len..at + len + lit)
            .ok_or_else(|| format!("the LZVN stream ends inside a literal at byte {at}"))?;
        if out.len() + lit + m > want {
            return Err(format!(
                "the LZVN stream gives more than the {want} bytes expected"
            ));
        }
        out.extend_from_slice(literal);
        at += len + lit;
        if let Some(d) = d {
            if d == 0 || d > out.len() {
                return Err(format!(
                    "an LZVN match at byte {at} reaches {d} bytes back, before the output's start"
                ));
            }
            last_d = d;
            // Byte by byte: a match may overlap what it writes (D < M).
            let from = out.len() - d;
            for k in 0..m {
                let b = out[from + k];
                out.push(b);
            }
        }
    }
    if out.len() != want {
        return Err(format!(
            "the LZVN stream gives {} bytes, not {want}",
            out.len()
        ));
    }
    Ok(out)
}

fn undefined(op: u8, at: usize) -> String {
    format!("an undefined LZVN opcode 0x{op:02x} at byte {at}")
}

#[cfg(test)]
mod tests {
    use super::decode;

    const EOS: [u8; 8] = [6, 0, 0, 0, 0, 0, 0, 0];

    fn stream(ops: &[&[u8]]) -> Vec<u8> {
        let mut s: Vec<u8> = ops.concat();
        s.extend_from_slice(&EOS);
        s
    }

    #[test]
    fn every_instruction_decodes_as_the_layout_says() {
        // "abc" literal, small distance (L=1 'd', M=4, D=4): "abcd" + "abcd"
        // (the match reads "abcd" 4 back), previous distance (L=2 "xy",
        // M=3, D=4): "xy" + "cdx", medium distance (L=0, M=34, D=1),
        // large distance (L=0, M=3, D=0x0102 is too far: use D=5), a
        // match-only of 2 at the last distance, a long literal, a nop.
        let long: Vec<u8> = (0..20u8).collect();
        let mut lit16 = vec![0xE0, 4];
        lit16.extend_from_slice(&long);
        let s = stream(&[
            &[0x0E],
            &[0xE3, b'a', b'b', b'c'],
            // 01 001 000, D low byte 4
            &[0b0100_1000, 4, b'd'],
            // 10 000 110: L=2, M=3, previous distance (4)
            &[0b1000_0110, b'x', b'y'],
            // 101 00 111, then M low bits 11 and D=1: M = (7<<2|3)+3 = 34
            &[0b1010_0111, 0b0000_0111, 0],
            // 00 000 111, D = 5 (LE)
            &[0b0000_0111, 5, 0],
            // match only, M=2, last distance (5)
            &[0xF2],
            &lit16,
            &[0x16],
        ]);
        let mut want = b"abcdabcd".to_vec();
        want.extend_from_slice(b"xy");
        for _ in 0..3 {
            let b = want[want.len() - 4];
            want.push(b);
        }
        for _ in 0..34 {
            let b = want[want.len() - 1];
            want.push(b);
        }
        for _ in 0..5 {
            let b = want[want.len() - 5];
            want.push(b);
        }
        want.extend_from_slice(&long);
        assert_eq!(decode(&s, want.len()).unwrap(), want);
    }

    #[test]
    fn long_matches_and_literals_take_their_bias() {
        // "z", then a match of 16+200 at distance 1 (F0 200) after a
        // small-distance match of 3 sets the distance.
        let s = stream(&[&[0xE1, b'z'], &[0b0000_0000, 1], &[0xF0, 200]]);
        assert_eq!(decode(&s, 1 + 3 + 216).unwrap(), vec![b'z'; 220]);
    }

    #[test]
    fn damage_is_an_error_never_a_guess() {
        let ok = stream(&[&[0xE3, b'a', b'b', b'c']]);
        assert_eq!(decode(&ok, 3).unwrap(), b"abc");
        // Wrong expected size, either way.
        assert!(decode(&ok, 2).is_err());
        assert!(decode(&ok, 4).is_err());
        // No end marker; a truncated one; a cut literal.
        assert!(decode(&[0xE3, b'a', b'b', b'c'], 3).is_err());
        assert!(decode(&[0xE3, b'a', b'b', b'c', 6, 0], 3).is_err());
        assert!(decode(&[0xE3, b'a'], 3).is_err());
        // Undefined opcodes.
        for op in [0x1E, 0x3E, 0x70, 0x7F, 0xD0, 0xDF] {
            assert!(decode(&stream(&[&[op, 0, 0]]), 3).is_err(), "{op:#x}");
        }
        // A match before the start, and one of distance zero.
        assert!(decode(&stream(&[&[0xE1, b'a'], &[0b0000_0000, 2]]), 4).is_err());
        assert!(decode(&stream(&[&[0xE1, b'a'], &[0b0000_0000, 0]]), 4).is_err());
        // A match-only instruction with no distance yet.
        assert!(decode(&stream(&[&[0xE1, b'a'], &[0xF1]]), 2).is_err());
        // Random streams (opcodes and operands drawn from all 256 bytes)
        // end in a result or an error, never a panic or a longer output.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            let mut s = Vec::new();
            for _ in 0..(x % 48) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push((x >> 24) as u8);
            }
            if let Ok(out) = decode(&s, (x % 300) as usize) {
                assert_eq!(out.len(), (x % 300) as usize);
            }
        }
        // Every 1- to 3-byte input is handled without a panic.
        for a in 0..=255u8 {
            for b in [0u8, 1, 6, 0xFF] {
                let _ = decode(&[a], 8);
                let _ = decode(&[a, b], 8);
                let _ = decode(&[a, b, b], 8);
            }
        }
    }
}
