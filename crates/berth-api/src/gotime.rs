//! Go's value formats that both the daemon and the CLI parse: durations (`time.ParseDuration`),
//! Docker's `--since`/`--until`/`until` timestamps (`timetypes.GetTimestamp`) and Go's `%q`
//! quoting used in their error texts.

use std::fmt::Write as _;

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Go's `time.ParseDuration`: `300ms`, `1.5h`, `2h45m`, `-1s`, `0` → nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let orig = s;
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let (neg, mut s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (int, rest) = s.split_at(int_end);
        let (frac, rest) = match rest.strip_prefix('.') {
            Some(r) => {
                let e = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
                (Some(&r[..e]), &r[e..])
            }
            None => (None, rest),
        };
        if int.is_empty() && frac.is_none_or(str::is_empty) {
            return Err(invalid());
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_end);
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let mult: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(unit),
                    go_quote(orig)
                ))
            }
        };
        let iv: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| invalid())?
        };
        let mut v = iv.checked_mul(mult).ok_or_else(invalid)?;
        if let Some(f) = frac.filter(|f| !f.is_empty()) {
            let f = &f[..f.len().min(30)];
            let fv: u128 = f.parse().map_err(|_| invalid())?;
            v += fv * mult / 10u128.pow(f.len() as u32);
        }
        total = total.checked_add(v).ok_or_else(invalid)?;
        if total > i64::MAX as u128 {
            return Err(invalid());
        }
        s = rest;
    }
    let t = total as i64;
    Ok(if neg { -t } else { t })
}

/// Go's `time.Duration.String()` of `nanos`: `200ms`, `1.5s`, `1m30s`, `2h0m0s`, `0s`.
pub fn format_go_duration(nanos: i64) -> String {
    // `frac` renders v / 10^prec's fraction without trailing zeros (none when it is zero).
    fn frac(v: u64, prec: u32) -> (String, u64) {
        let div = 10u64.pow(prec);
        let f = v % div;
        if f == 0 {
            return (String::new(), v / div);
        }
        let digits = format!("{f:0width$}", width = prec as usize);
        (format!(".{}", digits.trim_end_matches('0')), v / div)
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = if u == 0 {
        return "0s".to_string();
    } else if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        let (f, i) = frac(u, 3);
        format!("{i}{f}µs")
    } else if u < 1_000_000_000 {
        let (f, i) = frac(u, 6);
        format!("{i}{f}ms")
    } else {
        let (f, secs) = frac(u, 9);
        let (mins, s) = (secs / 60, secs % 60);
        let (hours, m) = (mins / 60, mins % 60);
        if hours > 0 {
            format!("{hours}h{m}m{s}{f}s")
        } else if mins > 0 {
            format!("{m}m{s}{f}s")
        } else {
            format!("{s}{f}s")
        }
    };
    if neg {
        out.insert(0, '-');
    }
    out
}

/// Docker's `timetypes.GetTimestamp`: `--since`/`--until` values — Go durations relative to
/// now (`10m`), RFC 3339 dates and times (with or without zone, local otherwise), or Unix
/// timestamps (`1795799615`, `1795799615.123`).
pub fn parse_timestamp(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if value != "0" {
        if let Ok(d) = parse_go_duration(value) {
            let secs = (now - chrono::Duration::nanoseconds(d)).timestamp();
            return DateTime::from_timestamp(secs, 0)
                .ok_or_else(|| format!("invalid time {value:?}"));
        }
    }
    let has_zone = value.contains(['z', 'Z', '+']) || value.matches('-').count() == 3;
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    if value.contains('-') {
        let parsed = if has_zone {
            parse_zoned(value)
        } else {
            parse_local(value)
        };
        return parsed.ok_or_else(|| {
            format!(
                "parsing time {}: cannot parse as a timestamp",
                go_quote(value)
            )
        });
    }
    parse_unix(value).ok_or_else(|| {
        format!(
            "failed to parse value as time or duration: {}",
            go_quote(value)
        )
    })
}

fn parse_zoned(value: &str) -> Option<DateTime<Utc>> {
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H%:z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(&value.replace(['z', 'Z'], "+00:00"), fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    if value.len() < 10 || !value.is_char_boundary(10) {
        return None;
    }
    let (date, zone) = value.split_at(10);
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let z = zone.replace(['z', 'Z'], "+00:00");
    let t = DateTime::parse_from_str(&format!("{d}T00:00:00{z}"), "%Y-%m-%dT%H:%M:%S%:z").ok()?;
    Some(t.with_timezone(&Utc))
}

fn parse_local(value: &str) -> Option<DateTime<Utc>> {
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// `1795799615` or `1795799615.123456789`.
fn parse_unix(value: &str) -> Option<DateTime<Utc>> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.chars().all(|c| c.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    DateTime::from_timestamp(secs, nanos)
}

/// Go's `strconv.Quote` (`%q`): double quotes, Go escapes for control characters.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint` for characters above ASCII: everything but
/// control, format and separator characters other than the plain space.
fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    !(c.is_control()
        || matches!(u, 0x00a0 | 0x00ad | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x206f | 0x3000 | 0xfeff)
        || (0xfff9..=0xfffb).contains(&u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_strings() {
        for (n, s) in [
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_500, "1.5µs"),
            (1_000_000, "1ms"),
            (200_000_000, "200ms"),
            (1_250_000, "1.25ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_001, "1h2m3.000000001s"),
            (-2_000_000, "-2ms"),
        ] {
            assert_eq!(format_go_duration(n), s, "{n}");
        }
        // Round trip through the parser.
        for n in [1, 1_234, 5_000_000, 61_000_000_000, 7_200_000_000_123] {
            assert_eq!(parse_go_duration(&format_go_duration(n)).unwrap(), n);
        }
    }
}
