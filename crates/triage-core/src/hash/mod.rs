//! Hash stage: one pass over a file's bytes feeds every selected digest.
//!
//! Input: byte slices, in file order. Output: [`Digests`], one value per
//! selected [`Algorithm`]. This stage cannot fail; I/O errors belong to the
//! read stage.
//!
//! [`MultiHasher`] is the only type the rest of the pipeline uses. Its fast
//! path is hidden: the selected algorithms are split into two groups of about
//! equal cost (MD5 alone costs about as much as SHA-1 + SHA-256 + BLAKE3
//! together on SHA-NI/AVX-512 hardware), and [`MultiHasher::update_parallel`]
//! runs the two groups on two rayon threads over the same bytes, so a single
//! large file keeps both cores busy. When no thread is idle, rayon runs both
//! halves on the calling thread, so small files and busy pools pay nothing.
//!
//! Many files at once: [`lanes`] hashes up to 16 messages side by side, one
//! per SIMD lane, with the kernels of [`md5x`] (MD5, AVX-512F/AVX2) and
//! [`sha256x`] (SHA-256, AVX-512F); the scan's lane groups use them for the
//! digests they compute faster than one stream, and `MultiHasher` for the
//! rest.

pub mod lanes;
pub mod md5x;
pub mod sha1x;
pub mod sha256x;

use std::fmt;
use std::str::FromStr;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

/// A cryptographic digest algorithm `triage` computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// MD5 (RFC 1321): what most agency hash sets still carry.
    Md5,
    /// SHA-1 (FIPS 180-4): Project VIC and NSRL carry it.
    Sha1,
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// BLAKE3: fast, used for the tool's own integrity records.
    Blake3,
}

impl Algorithm {
    /// Every algorithm, in output column order.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Md5,
        Algorithm::Sha1,
        Algorithm::Sha256,
        Algorithm::Blake3,
    ];

    /// The lower-case name used on the command line and in every output.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Blake3 => "blake3",
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 | Algorithm::Blake3 => 32,
        }
    }

    /// Relative cost per byte, in nanoseconds per KiB as measured on the
    /// development machine (MD5 ~0.76, SHA-1 ~1.9, SHA-256 ~1.76, BLAKE3
    /// ~4.7 GB/s per core). Only the ratios matter: they balance the two
    /// groups of [`MultiHasher::update_parallel`].
    fn cost(self) -> u32 {
        match self {
            Algorithm::Md5 => 1347,
            Algorithm::Sha1 => 539,
            Algorithm::Sha256 => 582,
            Algorithm::Blake3 => 218,
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An algorithm name that `triage` does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAlgorithm(pub String);

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown hash algorithm '{}': choose from md5, sha1, sha256, blake3",
            self.0
        )
    }
}

impl std::error::Error for UnknownAlgorithm {}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "md5" | "md-5" => Ok(Algorithm::Md5),
            "sha1" | "sha-1" => Ok(Algorithm::Sha1),
            "sha256" | "sha-256" => Ok(Algorithm::Sha256),
            "blake3" => Ok(Algorithm::Blake3),
            _ => Err(UnknownAlgorithm(s.to_string())),
        }
    }
}

/// A set of [`Algorithm`]s, iterated in [`Algorithm::ALL`] order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AlgorithmSet(u8);

impl AlgorithmSet {
    /// All four algorithms: the default for a scan.
    pub fn all() -> Self {
        Algorithm::ALL.into_iter().collect()
    }

    /// No algorithm.
    pub fn empty() -> Self {
        AlgorithmSet(0)
    }

    /// Whether `alg` is in the set.
    pub fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }

    /// This set with `alg` added.
    pub fn with(self, alg: Algorithm) -> Self {
        AlgorithmSet(self.0 | alg.bit())
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of algorithms in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The algorithms, in output column order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |a| self.contains(*a))
    }

    /// Parses a comma-separated list such as `md5,sha256`.
    ///
    /// ```
    /// use triage_core::{Algorithm, AlgorithmSet};
    /// let set = AlgorithmSet::parse_list("sha256, md5").unwrap();
    /// assert_eq!(set.iter().collect::<Vec<_>>(), [Algorithm::Md5, Algorithm::Sha256]);
    /// assert!(AlgorithmSet::parse_list("crc32").is_err());
    /// ```
    pub fn parse_list(list: &str) -> Result<Self, UnknownAlgorithm> {
        let mut set = AlgorithmSet::empty();
        for name in list.split(',').filter(|s| !s.trim().is_empty()) {
            set = set.with(name.parse()?);
        }
        if set.is_empty() {
            return Err(UnknownAlgorithm(list.to_string()));
        }
        Ok(set)
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        iter.into_iter()
            .fold(AlgorithmSet::empty(), AlgorithmSet::with)
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Algorithm::name).collect();
        f.write_str(&names.join(","))
    }
}

/// The digests of one byte stream; `None` for algorithms not selected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    /// MD5, 16 bytes.
    pub md5: Option<[u8; 16]>,
    /// SHA-1, 20 bytes.
    pub sha1: Option<[u8; 20]>,
    /// SHA-256, 32 bytes.
    pub sha256: Option<[u8; 32]>,
    /// BLAKE3, 32 bytes.
    pub blake3: Option<[u8; 32]>,
}

impl Digests {
    /// The raw digest for `alg`, if it was computed.
    pub fn get(&self, alg: Algorithm) -> Option<&[u8]> {
        match alg {
            Algorithm::Md5 => self.md5.as_ref().map(|d| &d[..]),
            Algorithm::Sha1 => self.sha1.as_ref().map(|d| &d[..]),
            Algorithm::Sha256 => self.sha256.as_ref().map(|d| &d[..]),
            Algorithm::Blake3 => self.blake3.as_ref().map(|d| &d[..]),
        }
    }

    /// The digest for `alg` as lower-case hex, if it was computed.
    pub fn hex(&self, alg: Algorithm) -> Option<String> {
        self.get(alg).map(to_hex)
    }

    /// Sets the digest for `alg` from raw bytes; `false` if the length is wrong.
    pub fn set(&mut self, alg: Algorithm, bytes: &[u8]) -> bool {
        fn arr<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
            b.try_into().ok()
        }
        match alg {
            Algorithm::Md5 => self.md5 = arr(bytes),
            Algorithm::Sha1 => self.sha1 = arr(bytes),
            Algorithm::Sha256 => self.sha256 = arr(bytes),
            Algorithm::Blake3 => self.blake3 = arr(bytes),
        }
        self.get(alg).is_some()
    }

    /// Which algorithms this value holds.
    pub fn algorithms(&self) -> AlgorithmSet {
        Algorithm::ALL
            .into_iter()
            .filter(|a| self.get(*a).is_some())
            .collect()
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Parses hex (either case) into bytes; `None` on odd length or a non-hex digit.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

/// One group of hashers that runs on one thread.
#[derive(Clone, Default)]
struct Group {
    md5: Option<Md5>,
    sha1: Option<Sha1>,
    sha256: Option<Sha256>,
    blake3: Option<Box<blake3::Hasher>>,
}

impl Group {
    fn add(&mut self, alg: Algorithm) {
        match alg {
            Algorithm::Md5 => self.md5 = Some(Md5::new()),
            Algorithm::Sha1 => self.sha1 = Some(Sha1::new()),
            Algorithm::Sha256 => self.sha256 = Some(Sha256::new()),
            Algorithm::Blake3 => self.blake3 = Some(Box::new(blake3::Hasher::new())),
        }
    }

    fn is_empty(&self) -> bool {
        self.md5.is_none() && self.sha1.is_none() && self.sha256.is_none() && self.blake3.is_none()
    }

    fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.md5 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        if let Some(h) = &mut self.blake3 {
            h.update(data);
        }
    }

    fn finalize_into(self, out: &mut Digests) {
        if let Some(h) = self.md5 {
            out.md5 = Some(h.finalize().into());
        }
        if let Some(h) = self.sha1 {
            out.sha1 = Some(h.finalize().into());
        }
        if let Some(h) = self.sha256 {
            out.sha256 = Some(h.finalize().into());
        }
        if let Some(h) = self.blake3 {
            out.blake3 = Some(*h.finalize().as_bytes());
        }
    }
}

/// Computes every selected digest from one pass over the bytes.
///
/// ```
/// use triage_core::{AlgorithmSet, MultiHasher, Algorithm};
/// let mut h = MultiHasher::new(AlgorithmSet::all());
/// h.update(b"abc");
/// let d = h.finalize();
/// assert_eq!(d.hex(Algorithm::Md5).unwrap(), "900150983cd24fb0d6963f7d28e17f72");
/// ```
#[derive(Clone)]
pub struct MultiHasher {
    groups: [Group; 2],
    /// Index of the group with the lower cost: it also does the side work
    /// of [`MultiHasher::update_parallel_with`].
    lighter: usize,
    algorithms: AlgorithmSet,
}

impl MultiHasher {
    /// A hasher for the given algorithms.
    pub fn new(algorithms: AlgorithmSet) -> Self {
        // Greedy balance: costliest first, each into the lighter group.
        let mut algs: Vec<Algorithm> = algorithms.iter().collect();
        algs.sort_by_key(|a| std::cmp::Reverse(a.cost()));
        let mut groups = [Group::default(), Group::default()];
        let mut load = [0u32; 2];
        for alg in algs {
            let g = if load[0] <= load[1] { 0 } else { 1 };
            groups[g].add(alg);
            load[g] += alg.cost();
        }
        let lighter = if load[0] <= load[1] { 0 } else { 1 };
        MultiHasher {
            groups,
            lighter,
            algorithms,
        }
    }

    /// The algorithms this hasher computes.
    pub fn algorithms(&self) -> AlgorithmSet {
        self.algorithms
    }

    /// Feeds `data` to every hasher on the calling thread.
    pub fn update(&mut self, data: &[u8]) {
        for g in &mut self.groups {
            g.update(data);
        }
    }

    /// Feeds `data` to every hasher, the two groups on two rayon threads when
    /// one is idle. Worth it for chunks of a few hundred KiB and up; the result
    /// is identical to [`MultiHasher::update`].
    pub fn update_parallel(&mut self, data: &[u8]) {
        self.update_parallel_with(data, &mut || {});
    }

    /// As [`MultiHasher::update_parallel`], and runs `side` (typically the
    /// read of the next chunk) alongside the lighter group, so the read
    /// overlaps the heavier group's hashing.
    pub fn update_parallel_with(&mut self, data: &[u8], side: &mut (dyn FnMut() + Send)) {
        let lighter = self.lighter;
        let [a, b] = &mut self.groups;
        if a.is_empty() || b.is_empty() {
            self.update(data);
            return side();
        }
        let (heavy, light) = if lighter == 1 { (a, b) } else { (b, a) };
        rayon::join(
            || heavy.update(data),
            || {
                light.update(data);
                side();
            },
        );
    }

    /// The digests of everything fed so far.
    pub fn finalize(self) -> Digests {
        let mut out = Digests::default();
        for g in self.groups {
            g.finalize_into(&mut out);
        }
        out
    }
}

/// Digests of an in-memory buffer.
///
/// ```
/// use triage_core::{hash_bytes, Algorithm, AlgorithmSet};
/// let d = hash_bytes(AlgorithmSet::all(), b"");
/// assert_eq!(d.hex(Algorithm::Sha1).unwrap(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
/// ```
pub fn hash_bytes(algorithms: AlgorithmSet, data: &[u8]) -> Digests {
    let mut h = MultiHasher::new(algorithms);
    h.update(data);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_all(data: &[u8]) -> [String; 4] {
        let d = hash_bytes(AlgorithmSet::all(), data);
        Algorithm::ALL.map(|a| d.hex(a).unwrap())
    }

    /// Published vectors: RFC 1321 §A.5 (MD5), FIPS 180-2 appendices (SHA-1,
    /// SHA-256), and the BLAKE3 reference for the empty input and "abc".
    #[test]
    fn published_test_vectors() {
        assert_eq!(
            hex_all(b""),
            [
                "d41d8cd98f00b204e9800998ecf8427e".to_string(),
                "da39a3ee5e6b4b0d3255bfef95601890afd80709".to_string(),
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_string(),
                "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262".to_string(),
            ]
        );
        assert_eq!(
            hex_all(b"abc"),
            [
                "900150983cd24fb0d6963f7d28e17f72".to_string(),
                "a9993e364706816aba3e25717850c26c9cd0d89d".to_string(),
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string(),
                "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85".to_string(),
            ]
        );
        let d = hash_bytes(
            AlgorithmSet::all(),
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        );
        assert_eq!(
            d.hex(Algorithm::Sha1).unwrap(),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            d.hex(Algorithm::Sha256).unwrap(),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        let d = hash_bytes(
            AlgorithmSet::all(),
            b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
        );
        assert_eq!(
            d.hex(Algorithm::Md5).unwrap(),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    /// FIPS 180-2: one million repetitions of 'a', fed in odd-sized pieces so
    /// block boundaries fall everywhere.
    #[test]
    fn million_a_in_odd_pieces() {
        let data = vec![b'a'; 1_000_000];
        let mut h = MultiHasher::new(AlgorithmSet::all());
        let mut rest = &data[..];
        let mut step = 1;
        while !rest.is_empty() {
            let n = step.min(rest.len());
            h.update_parallel(&rest[..n]);
            rest = &rest[n..];
            step = step * 7 % 65_537 + 1;
        }
        let d = h.finalize();
        assert_eq!(
            d.hex(Algorithm::Md5).unwrap(),
            "7707d6ae4e027c70eea2a935c2296f21"
        );
        assert_eq!(
            d.hex(Algorithm::Sha1).unwrap(),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
        assert_eq!(
            d.hex(Algorithm::Sha256).unwrap(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
        assert_eq!(d, hash_bytes(AlgorithmSet::all(), &data));
    }

    #[test]
    fn groups_balance_md5_against_the_rest() {
        let h = MultiHasher::new(AlgorithmSet::all());
        assert!(h.groups[0].md5.is_some());
        assert!(h.groups[0].sha1.is_none() && h.groups[0].sha256.is_none());
        assert!(h.groups[1].sha1.is_some() && h.groups[1].sha256.is_some());
        assert!(h.groups[1].blake3.is_some());
    }

    #[test]
    fn subsets_compute_only_what_was_asked() {
        let set = AlgorithmSet::parse_list("blake3").unwrap();
        let d = hash_bytes(set, b"abc");
        assert_eq!(d.algorithms(), set);
        assert!(d.md5.is_none());
    }

    #[test]
    fn hex_round_trip() {
        let b: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&b)).unwrap(), b);
        assert_eq!(from_hex("ABcd").unwrap(), vec![0xab, 0xcd]);
        assert!(from_hex("abc").is_none());
        assert!(from_hex("zz").is_none());
    }
}
