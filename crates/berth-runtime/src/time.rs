//! Timestamps in Go's `RFC3339Nano` shape, as Docker writes them in json-file logs and
//! container state (`2026-11-27T17:03:35.248975914Z`: UTC, fractional seconds with trailing
//! zeros trimmed, no fraction at all when it is zero).

use chrono::{DateTime, Datelike, Timelike, Utc};
use std::fmt::Write as _;

/// Formats `t` like Go's `time.RFC3339Nano` in UTC.
pub fn format_rfc3339_nano(t: &DateTime<Utc>) -> String {
    let mut s = String::with_capacity(32);
    write_rfc3339_nano(&mut s, t);
    s
}

/// Appends `t` formatted like Go's `time.RFC3339Nano` (UTC) to `out`.
pub fn write_rfc3339_nano(out: &mut String, t: &DateTime<Utc>) {
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    // Leap seconds are represented by chrono as nanosecond >= 1e9; Go never produces them.
    let mut nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let mut digits = 9;
        while nanos.is_multiple_of(10) {
            nanos /= 10;
            digits -= 1;
        }
        let _ = write!(out, ".{:0width$}", nanos, width = digits);
    }
    out.push('Z');
}

/// Parses an RFC 3339 timestamp (any offset, any fraction length) into UTC.
pub fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Serde helper: serialize a `DateTime<Utc>` as RFC3339Nano, deserialize any RFC 3339 string.
pub mod serde_rfc3339_nano {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as Go's RFC3339Nano.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_rfc3339_nano(t))
    }

    /// Deserializes any RFC 3339 timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid RFC 3339 timestamp: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_like_go() {
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 17, 3, 35).unwrap()
            + chrono::Duration::nanoseconds(248_975_914);
        assert_eq!(format_rfc3339_nano(&t), "2026-11-27T17:03:35.248975914Z");
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(format_rfc3339_nano(&t), "2026-01-02T03:04:05Z");
        let t = t + chrono::Duration::milliseconds(120);
        assert_eq!(format_rfc3339_nano(&t), "2026-01-02T03:04:05.12Z");
    }

    proptest::proptest! {
        #[test]
        fn roundtrips(secs in 0i64..4_000_000_000, nanos in 0u32..1_000_000_000) {
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            let s = format_rfc3339_nano(&t);
            proptest::prop_assert_eq!(parse_rfc3339(&s), Some(t));
        }
    }
}
