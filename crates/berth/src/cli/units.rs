//! The small value formats of the Docker CLI: sizes, CPUs, Go durations, timestamps, IDs.
//!
//! `berth_api::units` has the daemon-side rules (`human_size`, `human_duration`); the CLI needs a
//! few more texts that Docker's client prints, with its exact error messages.

use std::cmp::Ordering;

use chrono::{DateTime, Local, TimeZone, Utc};

pub use berth_api::gotime::{parse_go_duration, parse_timestamp};
pub use berth_api::units::{human_duration, human_size};

/// go-units 0.5 `RAMInBytes` (binary multipliers), with its error texts
/// (`invalid size: '…'`, `invalid suffix: '…'`). berth_api's parser accepts the same inputs
/// but has a single error text; Docker's flag errors show the precise one.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{s}'"));
    };
    let (num, sfx) = if s.as_bytes()[sep] != b' ' {
        (&s[..=sep], &s[sep + 1..])
    } else {
        (&s[..sep], &s[sep + 1..])
    };
    let size: f64 = parse_go_float(num)?;
    if size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || Err(format!("invalid suffix: '{}'", sfx.to_lowercase()));
    if sfx.len() > 3 {
        return Err(format!("invalid suffix: '{sfx}'"));
    }
    let lower = sfx.to_lowercase();
    let b = lower.as_bytes();
    if b[0] == b'b' {
        if b.len() > 1 {
            return bad();
        }
        return Ok(size as i64);
    }
    let mul: f64 = match b[0] {
        b'k' => 1024f64,
        b'm' => 1024f64.powi(2),
        b'g' => 1024f64.powi(3),
        b't' => 1024f64.powi(4),
        b'p' => 1024f64.powi(5),
        _ => return bad(),
    };
    match b.len() {
        2 if b[1] != b'b' => return bad(),
        3 if &b[1..] != b"ib" => return bad(),
        _ => {}
    }
    Ok((size * mul) as i64)
}

/// Go's `strconv.ParseFloat` for the plain decimal forms go-units hands it.
fn parse_go_float(num: &str) -> Result<f64, String> {
    let valid = !num.is_empty()
        && num
            .trim_start_matches(['-', '+'])
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.')
        && num.matches('.').count() <= 1
        && num.trim_start_matches(['-', '+']) != ".";
    if !valid {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            super::flags::go_quote(num)
        ));
    }
    num.parse::<f64>().map_err(|_| {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            super::flags::go_quote(num)
        )
    })
}

/// Docker's `NanoCPUs.Set` (`--cpus 1.5` → 1500000000): a rational number (`1.5`, `3/2`)
/// times 1e9, which must be an integer.
pub fn parse_nano_cpus(value: &str) -> Result<i64, String> {
    let fail = || format!("failed to parse {value} as a rational number");
    let (num, den) = match value.split_once('/') {
        Some((n, d)) => (
            parse_decimal(n).ok_or_else(fail)?,
            parse_decimal(d).ok_or_else(fail)?,
        ),
        None => (parse_decimal(value).ok_or_else(fail)?, (1, 0)),
    };
    // num = (mantissa, decimals) meaning mantissa / 10^decimals.
    let (nm, nd) = num;
    let (dm, dd) = den;
    if dm == 0 {
        return Err(fail());
    }
    // nano = nm * 1e9 * 10^dd / (10^nd * dm)
    let numer = nm
        .checked_mul(1_000_000_000)
        .and_then(|v| v.checked_mul(10i128.checked_pow(dd)?))
        .ok_or_else(fail)?;
    let denom = 10i128
        .checked_pow(nd)
        .and_then(|p| p.checked_mul(dm))
        .ok_or_else(fail)?;
    if numer % denom != 0 {
        return Err("value is too precise".to_string());
    }
    i64::try_from(numer / denom).map_err(|_| fail())
}

/// `-12.345` → (-12345, 3).
fn parse_decimal(s: &str) -> Option<(i128, u32)> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) || frac.len() > 30 {
        return None;
    }
    let all = format!("{int}{frac}");
    let m: i128 = all.trim_start_matches('0').parse().unwrap_or(0);
    if all.len() > 36 {
        return None;
    }
    Some((if neg { -m } else { m }, frac.len() as u32))
}

/// Go's `%.*g` for a non-negative size: `precision` significant digits, no trailing zeros.
pub fn format_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let p = precision.max(1);
    let e_form = format!("{:.*e}", p - 1, v);
    let (mant, exp) = e_form.split_once('e').unwrap_or((e_form.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mant = trim_frac_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let decimals = (p as i32 - 1 - exp).max(0) as usize;
    trim_frac_zeros(&format!("{:.*}", decimals, v))
}

fn trim_frac_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// go-units `HumanSizeWithPrecision` (decimal units): `1.98MB` with precision 3.
pub fn human_size_precision(size: f64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g(size, precision), UNITS[i])
}

/// `now - created` as Docker prints `CREATED`: `5 minutes ago`.
pub fn since(unix: i64) -> String {
    let created = DateTime::from_timestamp(unix, 0).unwrap_or_default();
    let d = (Utc::now() - created).to_std().unwrap_or_default();
    format!("{} ago", human_duration(d))
}

/// Go's `time.Time.String()` in the local zone: `2026-11-27 16:59:51 +0000 UTC`.
pub fn go_time_string(unix: i64) -> String {
    let Some(t) = Local.timestamp_opt(unix, 0).single() else {
        return String::new();
    };
    let offset = t.offset().local_minus_utc();
    let zone = if offset == 0 {
        "UTC".to_string()
    } else {
        t.format("%z").to_string()
    };
    format!("{} {zone}", t.format("%Y-%m-%d %H:%M:%S %z"))
}

/// RFC 3339 in the local zone, seconds precision (`2026-11-27T17:05:56Z`).
pub fn rfc3339_local(unix: i64) -> String {
    match Local.timestamp_opt(unix, 0).single() {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => String::new(),
    }
}

/// Docker's `RFC3339NanoFixed` in the local zone (`2026-11-27T17:23:43.043631572Z`).
pub fn rfc3339_nano_fixed(nanos: i64) -> String {
    let t = Local.timestamp_nanos(nanos);
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Docker's `TruncateID`: drop an algorithm prefix, keep 12 characters.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, r)| r).unwrap_or(id);
    id.chars().take(12).collect()
}

/// Docker's `formatter.Ellipsis`: cut to a display width, ending with `…`.
pub fn ellipsis(s: &str, max_width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    if max_width == 0 {
        return String::new();
    }
    let chars: Vec<char> = s.chars().collect();
    if max_width == 1 {
        return chars.first().map(|c| c.to_string()).unwrap_or_default();
    }
    if s.len() == chars.len() {
        if s.len() <= max_width {
            return s.to_string();
        }
        return chars[..max_width - 1].iter().collect::<String>() + "…";
    }
    let mut widths = Vec::with_capacity(chars.len());
    let mut total = 0;
    for c in &chars {
        total += c.width().unwrap_or(0);
        widths.push(total);
    }
    if total <= max_width {
        return s.to_string();
    }
    for i in 0..widths.len().saturating_sub(1) {
        if widths[i] < max_width && widths[i + 1] >= max_width {
            return chars[..=i].iter().collect::<String>() + "…";
        }
    }
    s.to_string()
}

/// `sortorder.NaturalLess`: digit runs compare by value.
pub fn natural_less(a: &str, b: &str) -> bool {
    natural_cmp(a, b) == Ordering::Less
}

fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na = std::str::from_utf8(&a[si..i])
                .unwrap_or("")
                .trim_start_matches('0');
            let nb = std::str::from_utf8(&b[sj..j])
                .unwrap_or("")
                .trim_start_matches('0');
            let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// `net.JoinHostPort`: brackets around IPv6 hosts.
pub fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ram_sizes_and_errors() {
        assert_eq!(ram_in_bytes("512m"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1.5GiB"), Ok(1536 << 20));
        assert_eq!(ram_in_bytes("6 MB"), Ok(6 << 20));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("10b"), Ok(10));
        assert_eq!(ram_in_bytes("1x").unwrap_err(), "invalid suffix: 'x'");
        assert_eq!(ram_in_bytes("1kbb").unwrap_err(), "invalid suffix: 'kbb'");
        assert_eq!(ram_in_bytes("m").unwrap_err(), "invalid size: 'm'");
        assert_eq!(ram_in_bytes("-1").unwrap_err(), "invalid size: '-1'");
        assert_eq!(
            ram_in_bytes("1.2.3k").unwrap_err(),
            "strconv.ParseFloat: parsing \"1.2.3\": invalid syntax"
        );
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_nano_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_nano_cpus("0.000000001"), Ok(1));
        assert_eq!(parse_nano_cpus("3/2"), Ok(1_500_000_000));
        assert_eq!(parse_nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(
            parse_nano_cpus("x").unwrap_err(),
            "failed to parse x as a rational number"
        );
        assert_eq!(
            parse_nano_cpus("0.0000000001").unwrap_err(),
            "value is too precise"
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5s"), Ok(5_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("2h45m"), Ok(9_900_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_go_duration("-1s"), Ok(-1_000_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(
            parse_go_duration("x").unwrap_err(),
            "time: invalid duration \"x\""
        );
        assert_eq!(
            parse_go_duration("10").unwrap_err(),
            "time: missing unit in duration \"10\""
        );
        assert_eq!(
            parse_go_duration("10y").unwrap_err(),
            "time: unknown unit \"y\" in duration \"10y\""
        );
    }

    #[test]
    fn sizes_with_precision() {
        assert_eq!(human_size_precision(2140160.0, 3), "2.14MB");
        assert_eq!(human_size_precision(1984132.0, 3), "1.98MB");
        assert_eq!(human_size_precision(12345.0, 3), "12.3kB");
        assert_eq!(human_size_precision(2000000.0, 3), "2MB");
        assert_eq!(human_size_precision(0.0, 3), "0B");
        assert_eq!(human_size_precision(18.0, 3), "18B");
        assert_eq!(human_size_precision(999999.0, 3), "1e+03kB");
        assert_eq!(format_g(0.00001234, 3), "1.23e-05");
    }

    #[test]
    fn timestamps() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(
            parse_timestamp("10m", now).unwrap().timestamp(),
            1_800_000_000 - 600
        );
        assert_eq!(
            parse_timestamp("1795799615", now).unwrap().timestamp(),
            1_795_799_615
        );
        let t = parse_timestamp("1795799615.5", now).unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 500_000_000);
        assert_eq!(
            parse_timestamp("2026-11-27T17:03:35Z", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-27T17:03:35+00:00"
        );
        assert_eq!(
            parse_timestamp("2026-11-27T17:03:35.5+01:00", now)
                .unwrap()
                .timestamp_subsec_millis(),
            500
        );
        assert!(parse_timestamp("yesterday", now).is_err());
    }

    #[test]
    fn ids_and_ellipsis() {
        assert_eq!(
            truncate_id("sha256:e2ddf69e46c83fbbdb927db20840392598e587bdebd069fed159fbc2e64bb4ec"),
            "e2ddf69e46c8"
        );
        assert_eq!(truncate_id("<missing>"), "<missing>");
        assert_eq!(
            ellipsis(
                "/bin/sh -c #(nop)  CMD [\"sh\" \"-c\" \"cat /opt/app/app.txt\"]",
                45
            ),
            "/bin/sh -c #(nop)  CMD [\"sh\" \"-c\" \"cat /opt/…"
        );
        assert_eq!(
            ellipsis("httpd -f -p 8080 and a very long tail", 20),
            "httpd -f -p 8080 an…"
        );
        assert_eq!(ellipsis("short", 20), "short");
        assert_eq!(ellipsis("日本語のテキストです", 7), "日本語…");
    }

    #[test]
    fn natural_sort_and_host_port() {
        assert!(natural_less(
            "8080/tcp -> 0.0.0.0:8080",
            "8080/tcp -> [::]:8080"
        ));
        assert!(natural_less("a2", "a10"));
        assert!(!natural_less("a10", "a2"));
        assert_eq!(join_host_port("::", "80"), "[::]:80");
        assert_eq!(join_host_port("0.0.0.0", "80"), "0.0.0.0:80");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,16}") {
            let _ = ram_in_bytes(&s);
            let _ = parse_nano_cpus(&s);
            let _ = parse_go_duration(&s);
            let _ = parse_timestamp(&s, Utc::now());
            let _ = ellipsis(&s, 5);
        }

        #[test]
        fn ellipsis_respects_width(s in "[a-z ]{0,30}", w in 2usize..20) {
            use unicode_width::UnicodeWidthStr;
            let e = ellipsis(&s, w);
            prop_assert!(e.width() <= w);
            prop_assert!(e == s || e.ends_with('…'));
        }

        #[test]
        fn ellipsis_of_wide_text_is_a_prefix(s in "[a-z日本]{0,30}", w in 2usize..20) {
            // Docker's algorithm can return the whole text when the first character is wider
            // than the limit; it never invents characters.
            let e = ellipsis(&s, w);
            let kept = e.strip_suffix('…').unwrap_or(&e);
            prop_assert!(s.starts_with(kept));
        }

        #[test]
        fn integer_sizes_round_trip(n in 0i64..1_000_000_000_000) {
            prop_assert_eq!(ram_in_bytes(&n.to_string()), Ok(n));
        }

        #[test]
        fn durations_in_seconds(n in 0i64..1_000_000) {
            prop_assert_eq!(parse_go_duration(&format!("{n}s")), Ok(n * 1_000_000_000));
        }
    }
}
