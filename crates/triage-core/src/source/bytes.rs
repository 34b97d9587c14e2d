//! Fixed-width integers from on-disk structures, for every reader of
//! `source/`. Out-of-range reads give 0, so a short (damaged) structure
//! never panics: its fields read as zero and fail the checks that follow.

/// The `N` bytes at `at`, if the slice holds them.
fn field<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Little-endian `u16` at `at`.
pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    field(b, at).map_or(0, u16::from_le_bytes)
}

/// Little-endian `u32` at `at`.
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    field(b, at).map_or(0, u32::from_le_bytes)
}

/// Little-endian `u64` at `at`.
pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    field(b, at).map_or(0, u64::from_le_bytes)
}

/// Big-endian `u16` at `at`.
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    field(b, at).map_or(0, u16::from_be_bytes)
}

/// Big-endian `u32` at `at`.
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    field(b, at).map_or(0, u32::from_be_bytes)
}

/// Big-endian `u64` at `at`.
pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    field(b, at).map_or(0, u64::from_be_bytes)
}

/// A reflected CRC-32 with polynomial `poly` (reversed form), initial and
/// final value all ones: IEEE 802.3 (`0xEDB8_8320`, GPT) and Castagnoli
/// (`0x82F6_3B78`, VHDX) are this with their polynomials.
pub(crate) fn crc32_reflected(poly: u32, data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
        }
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_in_their_byte_order_and_zero_past_the_end() {
        let b = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(le16(&b, 0), 0x0201);
        assert_eq!(le32(&b, 4), 0x0807_0605);
        assert_eq!(le64(&b, 0), 0x0807_0605_0403_0201);
        assert_eq!(be32(&b, 0), 0x0102_0304);
        assert_eq!(be64(&b, 0), 0x0102_0304_0506_0708);
        assert_eq!(
            (le32(&b, 6), be64(&b, 1), le16(&b, usize::MAX - 1)),
            (0, 0, 0)
        );
    }
}
