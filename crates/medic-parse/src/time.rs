//! Wall-clock timestamps as nginx writes them.
//!
//! nginx writes local time without a zone in the error log (`2026/11/20 14:32:10`) and local time
//! with an offset in `$time_local` (`20/Nov/2026:14:32:10 +0100`). Both come from the same clock of
//! the same process, so the two logs are joined on the wall-clock reading itself; the offset is
//! kept only for display. [`LogTime`] therefore counts seconds since 1970-01-01 00:00:00 *of the
//! wall clock*, as if it were UTC.

use std::fmt;

/// Seconds since 1970-01-01 00:00:00 on nginx's wall clock (no zone applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogTime(pub i64);

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

impl LogTime {
    /// From a civil date and time; `None` when a field is out of range.
    pub fn from_civil(y: i64, m: u32, d: u32, hh: u32, mm: u32, ss: u32) -> Option<LogTime> {
        if !(1..=12).contains(&m)
            || d == 0
            || d > days_in_month(y, m)
            || hh > 23
            || mm > 59
            || ss > 60
        {
            return None;
        }
        let days = days_from_civil(y, m, d);
        Some(LogTime(days * 86_400 + i64::from(hh * 3600 + mm * 60 + ss)))
    }

    /// Parses the error log's `YYYY/MM/DD HH:MM:SS` (exactly 19 bytes).
    #[inline]
    pub fn parse_error_log(b: &[u8]) -> Option<LogTime> {
        if b.len() < 19
            || b[4] != b'/'
            || b[7] != b'/'
            || b[10] != b' '
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let y = digits(&b[0..4])?;
        let m = digits(&b[5..7])?;
        let d = digits(&b[8..10])?;
        let hh = digits(&b[11..13])?;
        let mi = digits(&b[14..16])?;
        let s = digits(&b[17..19])?;
        LogTime::from_civil(i64::from(y), m, d, hh, mi, s)
    }

    /// Parses `$time_local`: `DD/Mon/YYYY:HH:MM:SS +ZZZZ` (the zone is neither read nor applied: see the module doc).
    #[inline]
    pub fn parse_time_local(b: &[u8]) -> Option<LogTime> {
        if b.len() < 20
            || b[2] != b'/'
            || b[6] != b'/'
            || b[11] != b':'
            || b[14] != b':'
            || b[17] != b':'
        {
            return None;
        }
        let d = digits(&b[0..2])?;
        let mon = &b[3..6];
        let m = MONTHS.iter().position(|x| x.as_slice() == mon)? as u32 + 1;
        let y = digits(&b[7..11])?;
        let hh = digits(&b[12..14])?;
        let mi = digits(&b[15..17])?;
        let s = digits(&b[18..20])?;
        LogTime::from_civil(i64::from(y), m, d, hh, mi, s)
    }

    /// Parses `$time_iso8601` (`2026-11-20T14:32:10+01:00`) and the CLI's `2026-11-20 14:32[:10]`.
    pub fn parse_iso(b: &[u8]) -> Option<LogTime> {
        if b.len() < 16
            || b[4] != b'-'
            || b[7] != b'-'
            || !(b[10] == b'T' || b[10] == b' ')
            || b[13] != b':'
        {
            return None;
        }
        let y = digits(&b[0..4])?;
        let m = digits(&b[5..7])?;
        let d = digits(&b[8..10])?;
        let hh = digits(&b[11..13])?;
        let mi = digits(&b[14..16])?;
        let s = if b.len() >= 19 && b[16] == b':' {
            digits(&b[17..19])?
        } else {
            0
        };
        LogTime::from_civil(i64::from(y), m, d, hh, mi, s)
    }

    /// Parses `$msec` (`1700000000.123`, seconds since the epoch in UTC).
    pub fn parse_msec(b: &[u8]) -> Option<LogTime> {
        let int = b.split(|&c| c == b'.').next()?;
        if int.is_empty() || int.len() > 12 {
            return None;
        }
        Some(LogTime(digits_u64(int)? as i64))
    }

    /// The start of the minute this time falls in.
    #[inline]
    pub fn minute(self) -> LogTime {
        LogTime(self.0.div_euclid(60) * 60)
    }

    /// (year, month, day, hour, minute, second)
    pub fn to_civil(self) -> (i64, u32, u32, u32, u32, u32) {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
    }

    /// `YYYY-MM-DDTHH:MM` for per-minute keys.
    pub fn minute_string(self) -> String {
        let (y, m, d, hh, mi, _) = self.to_civil();
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mi:02}")
    }
}

impl fmt::Display for LogTime {
    /// ISO 8601 without a zone, as in the JSON contract (`2026-11-20T14:32:10`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d, hh, mi, s) = self.to_civil();
        let Ok(year @ 0..=9999) = u32::try_from(y) else {
            return write!(f, "{y:04}-{m:02}-{d:02}T{hh:02}:{mi:02}:{s:02}");
        };
        // Digits placed by hand: `write!` with its padding took 2,400 instructions a time,
        // and a log report prints two times for each of thousands of cells.
        let mut b = *b"0000-00-00T00:00:00";
        let mut put = |at: usize, width: usize, mut v: u32| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, m);
        put(8, 2, d);
        put(11, 2, hh);
        put(14, 2, mi);
        put(17, 2, s);
        f.write_str(std::str::from_utf8(&b).unwrap_or_default())
    }
}

/// As the JSON contract writes times: ISO 8601 without a zone (`2026-11-20T14:32:10`).
impl serde::Serialize for LogTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for LogTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<LogTime, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        LogTime::parse_iso(s.as_bytes())
            .ok_or_else(|| serde::de::Error::custom(format!("not an ISO time: {s:?}")))
    }
}

#[inline]
fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u32::from(d);
    }
    Some(v)
}

/// Decimal digits to u64; `None` on anything else or overflow.
#[inline]
pub fn digits_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let mut v = 0u64;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    Some(v)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days: exact for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_log_and_time_local_agree() {
        let a = LogTime::parse_error_log(b"2026/11/20 14:32:10").unwrap();
        let b = LogTime::parse_time_local(b"20/Nov/2026:14:32:10 +0100").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2026-11-20T14:32:10");
        assert_eq!(a.minute().minute_string(), "2026-11-20T14:32");
        assert_eq!(LogTime::parse_iso(b"2026-11-20T14:32:10+01:00"), Some(a));
    }

    #[test]
    fn rejects_impossible_dates() {
        assert!(LogTime::parse_error_log(b"2026/02/30 00:00:00").is_none());
        assert!(LogTime::parse_error_log(b"2026/1x/20 14:32:10").is_none());
        assert!(LogTime::parse_time_local(b"20/Foo/2026:14:32:10 +0100").is_none());
        assert!(LogTime::parse_error_log(b"2026/11/20 24:00:00").is_none());
    }

    /// The digits placed by hand print what `write!` with its padding prints, the years it
    /// leaves to `write!` (before 0, after 9999) included.
    #[test]
    fn display_as_padded_write() {
        for t in [
            -70_000_000_000i64,
            -62_167_219_201,
            -62_167_219_200,
            -1,
            0,
            59,
            3_661,
            1_700_000_000,
            253_402_300_799,
            253_402_300_800,
            300_000_000_000,
        ] {
            let t = LogTime(t);
            let (y, m, d, hh, mi, s) = t.to_civil();
            let want = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mi:02}:{s:02}");
            assert_eq!(t.to_string(), want);
        }
    }

    #[test]
    fn civil_roundtrip() {
        for days in [-800_000i64, -1, 0, 1, 19_000, 20_000, 2_000_000] {
            let t = LogTime(days * 86_400 + 3661);
            let (y, m, d, hh, mi, s) = t.to_civil();
            assert_eq!(LogTime::from_civil(y, m, d, hh, mi, s), Some(t));
        }
    }
}
