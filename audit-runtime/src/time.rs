//! UTC timestamps with nanosecond precision, over the whole range of `i64`
//! nanoseconds (1677-09-21 to 2262-04-11): dates before 1970 included.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC point in time, in nanoseconds since the Unix epoch. Serializes as RFC 3339
/// with nanoseconds (`2026-11-23T09:30:00.123456789Z`); dates before 1970 are as
/// valid as any other.
///
/// ```
/// use audit_runtime::Timestamp;
/// let t = Timestamp::from_nanos(1_700_000_000_123_456_789);
/// assert_eq!(t.to_string(), "2023-11-14T22:13:20.123456789Z");
/// assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
/// let archive = Timestamp::from_nanos(-1);
/// assert_eq!(archive.to_string(), "1969-12-31T23:59:59.999999999Z");
/// assert_eq!("1969-12-31T23:59:59.999999999Z".parse::<Timestamp>().unwrap(), archive);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Now.
    pub fn now() -> Self {
        SystemTime::now().into()
    }

    /// From nanoseconds since the epoch.
    pub const fn from_nanos(ns: i64) -> Self {
        Timestamp(ns)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// As a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_nanos(self.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_nanos(self.0.unsigned_abs())
        }
    }

    /// From nanoseconds since the epoch held in an `i128` (what `time` and `jiff`
    /// give), saturated to the range of [`Timestamp`].
    pub fn from_nanos_i128(ns: i128) -> Self {
        Timestamp(ns.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }

    /// `self + d`, or `None` past the range (year 2262).
    ///
    /// ```
    /// use std::time::Duration;
    /// use audit_runtime::Timestamp;
    /// let t = Timestamp::from_nanos(0);
    /// assert_eq!(t + Duration::from_secs(90), Timestamp::from_nanos(90_000_000_000));
    /// assert_eq!(t - Duration::from_secs(1), Timestamp::from_nanos(-1_000_000_000));
    /// assert_eq!((t + Duration::from_secs(5)).duration_since(t), Some(Duration::from_secs(5)));
    /// assert_eq!(t.duration_since(t + Duration::from_secs(5)), None);
    /// assert_eq!(Timestamp::from_nanos(i64::MAX).checked_add(Duration::from_nanos(1)), None);
    /// ```
    pub fn checked_add(self, d: Duration) -> Option<Self> {
        i64::try_from(d.as_nanos())
            .ok()
            .and_then(|n| self.0.checked_add(n))
            .map(Timestamp)
    }

    /// `self - d`, or `None` before the range (year 1677).
    pub fn checked_sub(self, d: Duration) -> Option<Self> {
        i64::try_from(d.as_nanos())
            .ok()
            .and_then(|n| self.0.checked_sub(n))
            .map(Timestamp)
    }

    /// How long after `earlier` this is (`None` if it is before `earlier`).
    pub fn duration_since(self, earlier: Timestamp) -> Option<Duration> {
        let d = i128::from(self.0) - i128::from(earlier.0);
        (d >= 0).then(|| Duration::from_nanos(d as u64))
    }

    /// The RFC 3339 text, `"` excluded: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, always 30
    /// bytes (every `i64` of nanoseconds has a four-digit year).
    pub(crate) fn rfc3339(self) -> [u8; 30] {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000) as u32;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
        let (year, month, day) = civil_from_days(days);
        let mut buf = *b"0000-00-00T00:00:00.000000000Z";
        let mut put = |at: usize, width: usize, mut n: u32| {
            for k in (at..at + width).rev() {
                buf[k] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year as u32);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, rem / 3600);
        put(14, 2, rem / 60 % 60);
        put(17, 2, rem % 60);
        put(20, 9, nanos);
        buf
    }
}

/// (year, month, day) of a day count since 1970-01-01 (negative before), after Howard
/// Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Panics past the range of [`Timestamp`] (as `SystemTime + Duration` does past its
/// own); [`Timestamp::checked_add`] does not.
impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        self.checked_add(d)
            .expect("timestamp out of range (1677-2262)")
    }
}

/// Panics before the range of [`Timestamp`]; [`Timestamp::checked_sub`] does not.
impl std::ops::Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        self.checked_sub(d)
            .expect("timestamp out of range (1677-2262)")
    }
}

impl std::ops::AddAssign<Duration> for Timestamp {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl std::ops::SubAssign<Duration> for Timestamp {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> SystemTime {
        t.to_system_time()
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(d.as_nanos().min(i64::MAX as u128) as i64),
            Err(e) => Timestamp(-(e.duration().as_nanos().min(i64::MAX as u128) as i64)),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buf = self.rfc3339();
        // The buffer is ASCII digits and separators.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

/// Why a text is not an RFC 3339 timestamp this crate can hold.
///
/// ```
/// use audit_runtime::Timestamp;
/// let e = "2026-13-01T00:00:00Z".parse::<Timestamp>().unwrap_err();
/// assert!(e.to_string().contains("month"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampError(&'static str);

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an RFC 3339 timestamp: {}", self.0)
    }
}

impl std::error::Error for TimestampError {}

/// Reads `YYYY-MM-DD`, `T` or a space, `HH:MM:SS`, an optional fraction of up to nine
/// digits, and `Z`, an offset `±HH:MM`, or nothing (UTC).
impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let num = |at: usize, width: usize, what: &'static str| -> Result<u32, TimestampError> {
            let digits = b.get(at..at + width).ok_or(TimestampError(what))?;
            digits.iter().try_fold(0u32, |n, &d| {
                d.is_ascii_digit()
                    .then(|| n * 10 + u32::from(d - b'0'))
                    .ok_or(TimestampError(what))
            })
        };
        let sep = |at: usize, ok: &[u8], what: &'static str| match b.get(at) {
            Some(c) if ok.contains(c) => Ok(()),
            _ => Err(TimestampError(what)),
        };
        let year = num(0, 4, "a four-digit year")?;
        sep(4, b"-", "`-` after the year")?;
        let month = num(5, 2, "a two-digit month")?;
        sep(7, b"-", "`-` after the month")?;
        let day = num(8, 2, "a two-digit day")?;
        sep(10, b"Tt ", "`T` between date and time")?;
        let hour = num(11, 2, "a two-digit hour")?;
        sep(13, b":", "`:` after the hour")?;
        let minute = num(14, 2, "two-digit minutes")?;
        sep(16, b":", "`:` after the minutes")?;
        let second = num(17, 2, "two-digit seconds")?;
        let mut at = 19;
        let mut nanos = 0u32;
        if b.get(at) == Some(&b'.') {
            let digits = b[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits == 0 || digits > 9 {
                return Err(TimestampError("one to nine digits of fraction"));
            }
            nanos = num(at + 1, digits, "a fraction")? * 10u32.pow(9 - digits as u32);
            at += 1 + digits;
        }
        let offset_secs: i64 = match b.get(at) {
            None => 0,
            Some(b'Z' | b'z') if at + 1 == b.len() => 0,
            Some(&sign @ (b'+' | b'-')) if at + 6 == b.len() => {
                let h = num(at + 1, 2, "a two-digit offset hour")?;
                sep(at + 3, b":", "`:` in the offset")?;
                let m = num(at + 4, 2, "two-digit offset minutes")?;
                if h > 23 || m > 59 {
                    return Err(TimestampError("an offset within ±23:59"));
                }
                let o = i64::from(h * 3600 + m * 60);
                if sign == b'-' { -o } else { o }
            }
            Some(_) => return Err(TimestampError("`Z` or an offset at the end")),
        };
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let month_days = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if !(1..=12).contains(&month) {
            return Err(TimestampError("a month from 01 to 12"));
        }
        if day < 1 || day > month_days[month as usize - 1] {
            return Err(TimestampError("a day that exists in its month"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(TimestampError("a time from 00:00:00 to 23:59:59"));
        }
        let secs = days_from_civil(i64::from(year), month, day) * 86_400
            + i64::from(hour * 3600 + minute * 60 + second)
            - offset_secs;
        let ns = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        i64::try_from(ns)
            .map(Timestamp)
            .map_err(|_| TimestampError("a time from 1677-09-21 to 2262-04-11"))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nanosecond_count_formats_and_parses_back() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut cases = vec![0, 1, -1, i64::MIN, i64::MAX, -86_400_000_000_000];
        cases.extend((0..20_000).map(|_| rng.i64(..)));
        for ns in cases {
            let t = Timestamp::from_nanos(ns);
            let text = t.to_string();
            assert_eq!(text.len(), 30, "{text}");
            assert_eq!(text.parse::<Timestamp>(), Ok(t), "{text}");
        }
    }

    #[test]
    fn agrees_with_humantime_after_1970() {
        let mut rng = fastrand::Rng::with_seed(5);
        for _ in 0..5000 {
            let t = Timestamp::from_nanos(rng.i64(0..i64::MAX));
            assert_eq!(
                t.to_string(),
                humantime::format_rfc3339_nanos(t.to_system_time()).to_string()
            );
        }
    }

    #[test]
    fn known_dates_before_1970() {
        let cases = [
            ("1969-07-20T20:17:40.000000000Z", -14_182_940),
            ("1900-01-01T00:00:00.000000000Z", -2_208_988_800),
            ("1700-01-01T00:00:00.000000000Z", -8_520_336_000),
        ];
        for (text, secs) in cases {
            let t = Timestamp::from_nanos(secs * 1_000_000_000);
            assert_eq!(t.to_string(), text);
            assert_eq!(text.parse::<Timestamp>().unwrap(), t);
        }
    }

    #[test]
    fn lenient_forms_and_offsets() {
        let t: Timestamp = "2026-11-23T09:30:00Z".parse().unwrap();
        assert_eq!("2026-11-23 09:30:00".parse::<Timestamp>().unwrap(), t);
        assert_eq!("2026-11-23T10:30:00+01:00".parse::<Timestamp>().unwrap(), t);
        assert_eq!(
            "2026-11-23T09:30:00.5Z"
                .parse::<Timestamp>()
                .unwrap()
                .as_nanos()
                - t.as_nanos(),
            500_000_000
        );
        for bad in [
            "",
            "2026-11-23",
            "2026-02-29T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T09:30:00.Z",
            "2026-11-23T09:30:00.1234567890Z",
            "2026-11-23T09:30:00Zx",
            "9999-01-01T00:00:00Z",
            "1600-01-01T00:00:00Z",
            "2026-11-23T09:30:00+1:00",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }
}
