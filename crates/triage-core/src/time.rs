//! UTC timestamps with nanoseconds, formatted as RFC 3339.
//!
//! File times come from `statx` as seconds and nanoseconds since the Unix
//! epoch; records print them as `2024-02-29T13:45:07.123456789Z`, always with
//! nine fractional digits so that two scans print byte-identical text. No
//! time-zone database is involved: evidence times are reported in UTC only.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time: seconds since the Unix epoch (may be negative) plus
/// nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Nanoseconds, 0..1_000_000_000.
    pub nanos: u32,
}

impl Timestamp {
    /// From seconds and nanoseconds as `stat` reports them.
    pub fn new(secs: i64, nanos: i64) -> Self {
        // stat never gives nanos outside 0..1e9, but normalise anyway so that a
        // hostile FUSE layer cannot make us print nonsense.
        let extra = nanos.div_euclid(1_000_000_000);
        Timestamp {
            secs: secs.saturating_add(extra),
            nanos: nanos.rem_euclid(1_000_000_000) as u32,
        }
    }

    /// The current time.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp::new(d.as_secs() as i64, d.subsec_nanos() as i64),
            Err(e) => {
                let d = e.duration();
                Timestamp::new(-(d.as_secs() as i64), -(d.subsec_nanos() as i64))
            }
        }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The inverse of [`civil_from_days`]: days since 1970-01-01 of a
/// proleptic Gregorian date (also what the FAT and ISO 9660 readers need).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            y,
            m,
            d,
            sod / 3600,
            sod % 3600 / 60,
            sod % 60,
            self.nanos
        )
    }
}

/// A string that is not an RFC 3339 UTC timestamp of the form this module writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTimestamp(pub String);

impl fmt::Display for BadTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not a UTC timestamp like 2024-02-29T13:45:07.123456789Z",
            self.0
        )
    }
}

impl std::error::Error for BadTimestamp {}

impl FromStr for Timestamp {
    type Err = BadTimestamp;

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (years 0000–9999).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadTimestamp(s.to_string());
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
            return Err(bad());
        }
        if b[16] != b':' || *b.last().ok_or_else(bad)? != b'Z' {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, BadTimestamp> {
            let t = s.get(r).ok_or_else(bad)?;
            if !t.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse().map_err(|_| bad())
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
            return Err(bad());
        }
        let frac = &s[19..s.len() - 1];
        let nanos = if frac.is_empty() {
            0
        } else {
            let digits = frac.strip_prefix('.').ok_or_else(bad)?;
            if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|c| c.is_ascii_digit())
            {
                return Err(bad());
            }
            digits.parse::<u32>().map_err(|_| bad())? * 10u32.pow(9 - digits.len() as u32)
        };
        let days = days_from_civil(y, mo as u32, d as u32);
        Ok(Timestamp {
            secs: days * 86_400 + h * 3600 + mi * 60 + se,
            nanos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference strings from `date -u -d @SECS +%Y-%m-%dT%H:%M:%S`.
    #[test]
    fn formats_like_gnu_date() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000000000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.000000005Z"),
            (1_709_214_307, 123_456_789, "2024-02-29T13:45:07.123456789Z"),
            (-1, 999_999_999, "1969-12-31T23:59:59.999999999Z"),
            (-2_208_988_800, 0, "1900-01-01T00:00:00.000000000Z"),
            (253_402_300_799, 0, "9999-12-31T23:59:59.000000000Z"),
        ];
        for (secs, nanos, want) in cases {
            let t = Timestamp::new(secs, nanos);
            assert_eq!(t.to_string(), want);
            assert_eq!(want.parse::<Timestamp>().unwrap(), t, "{want}");
        }
    }

    #[test]
    fn round_trips_across_four_centuries() {
        let mut secs = -12_219_292_800i64; // 1582-10-15
        while secs < 253_402_300_799 {
            let t = Timestamp::new(secs, 7);
            assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
            secs += 86_400 * 37 + 3_601;
        }
    }

    #[test]
    fn normalises_nanoseconds_and_rejects_garbage() {
        assert_eq!(
            Timestamp::new(1, -1),
            Timestamp {
                secs: 0,
                nanos: 999_999_999
            }
        );
        assert_eq!(
            "2024-01-01T00:00:00.5Z".parse::<Timestamp>().unwrap().nanos,
            500_000_000
        );
        for s in [
            "",
            "2024-01-01 00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00.Z",
        ] {
            assert!(s.parse::<Timestamp>().is_err(), "{s}");
        }
    }
}
