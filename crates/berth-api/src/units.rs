//! Docker's human units: sizes (`512m`, `1.984MB`) and durations (`Up 2 minutes`).
//!
//! Both the daemon (ps `Status` text, daemon.json `max-size`) and the CLI (`-m 512m`, SIZE
//! columns) need the exact texts Docker prints, so they live here, next to the wire models.
//! The rules are those of Docker's `go-units` package, re-implemented: a few string rules do not
//! justify a dependency, and no Rust crate reproduces Go's `%.4g` output.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size: '{0}'")]
pub struct InvalidSize(pub String);

const DECIMAL_ABBRS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_ABBRS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// Sizes in decimal units with four significant digits: `2.14MB`, `1.984MB`, `512B`.
pub fn human_size(size: f64) -> String {
    custom_size(size, 1000.0, &DECIMAL_ABBRS)
}

/// Sizes in binary units with four significant digits: `1.5GiB`, `64MiB`.
pub fn bytes_size(size: f64) -> String {
    custom_size(size, 1024.0, &BINARY_ABBRS)
}

fn custom_size(mut size: f64, base: f64, abbrs: &[&str]) -> String {
    let mut i = 0;
    while size >= base && i < abbrs.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", format_g4(size), abbrs[i])
}

/// Go's `%.4g`: four significant digits, trailing zeros removed, exponent form only for very
/// small or large magnitudes (which sizes never reach after scaling, but stay correct anyway).
fn format_g4(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let exp = v.abs().log10().floor() as i32;
    // Round to 4 significant digits first: rounding can bump the exponent (9999.5 -> 1e4).
    let e_form = format!("{:.3e}", v);
    let (mant, e) = e_form.split_once('e').unwrap_or((e_form.as_str(), "0"));
    let exp_rounded: i32 = e.parse().unwrap_or(exp);
    if !(-4..4).contains(&exp_rounded) {
        let mant = trim_zeros(mant);
        let sign = if exp_rounded < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp_rounded.abs());
    }
    let decimals = (3 - exp_rounded).max(0) as usize;
    trim_zeros(&format!("{:.*}", decimals, v))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// Docker's `RAMInBytes`: `512m`, `1g`, `1.5GiB`, `100` — binary multipliers (k = 1024).
pub fn ram_in_bytes(s: &str) -> Result<i64, InvalidSize> {
    parse_size(s, 1024.0)
}

/// Docker's `FromHumanSize`: `10m`, `2.5GB` — decimal multipliers (k = 1000).
pub fn from_human_size(s: &str) -> Result<i64, InvalidSize> {
    parse_size(s, 1000.0)
}

/// Parses `^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$` (go-units' grammar).
fn parse_size(s: &str, base: f64) -> Result<i64, InvalidSize> {
    let err = || InvalidSize(s.to_string());
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, mut rest) = s.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.contains("..") {
        return Err(err());
    }
    let value: f64 = if num.matches('.').count() > 1 {
        // go-units accepts "1.2.3" in its regexp but ParseFloat then fails.
        return Err(err());
    } else {
        num.parse().map_err(|_| err())?
    };
    if let Some(r) = rest.strip_prefix(' ') {
        rest = r;
    }
    let mut chars = rest.chars().peekable();
    let mut mult = 1.0;
    if let Some(&c) = chars.peek() {
        let power = match c.to_ascii_lowercase() {
            'k' => Some(1),
            'm' => Some(2),
            'g' => Some(3),
            't' => Some(4),
            'p' => Some(5),
            _ => None,
        };
        if let Some(p) = power {
            mult = base.powi(p);
            chars.next();
        }
    }
    if matches!(chars.peek(), Some('i') | Some('I')) {
        chars.next();
    }
    if matches!(chars.peek(), Some('b') | Some('B')) {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(err());
    }
    Ok((value * mult) as i64)
}

/// Docker's `HumanDuration`: `Less than a second`, `5 seconds`, `About a minute`, `3 hours`…
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let minutes = d.as_secs_f64() / 60.0;
    let hours = (d.as_secs_f64() / 3600.0 + 0.5) as u64;
    if secs < 1 {
        "Less than a second".to_string()
    } else if secs == 1 {
        "1 second".to_string()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes as u64 == 1 {
        "About a minute".to_string()
    } else if minutes < 60.0 {
        format!("{} minutes", minutes as u64)
    } else if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", (d.as_secs_f64() / 3600.0 / 24.0 / 365.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_as_docker_prints_them() {
        assert_eq!(human_size(2140160.0), "2.14MB");
        assert_eq!(human_size(1984132.0), "1.984MB");
        assert_eq!(human_size(19968.0), "19.97kB");
        assert_eq!(human_size(121.0), "121B");
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(999999.0), "1000kB");
        assert_eq!(bytes_size(1536.0 * 1024.0 * 1024.0), "1.5GiB");
        assert_eq!(bytes_size(65536.0 * 1024.0), "64MiB");
    }

    #[test]
    fn parses_sizes_like_go_units() {
        assert_eq!(ram_in_bytes("512m"), Ok(512 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1g"), Ok(1024 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1.5GiB"), Ok(1536 * 1024 * 1024));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("6 MB"), Ok(6 * 1024 * 1024));
        assert_eq!(from_human_size("10m"), Ok(10_000_000));
        assert_eq!(from_human_size("2.5kB"), Ok(2500));
        for bad in ["", "m", "1x", "-1", "1.2.3", "1mb5", ".5m"] {
            assert_eq!(
                ram_in_bytes(bad),
                Err(InvalidSize(bad.to_string())),
                "{bad}"
            );
        }
        assert_eq!(
            ram_in_bytes("1x").unwrap_err().to_string(),
            "invalid size: '1x'"
        );
    }

    #[test]
    fn durations_as_docker_prints_them() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(59)), "59 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(119)), "About a minute");
        assert_eq!(human_duration(s(120)), "2 minutes");
        assert_eq!(human_duration(s(3599)), "59 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(5400)), "2 hours");
        assert_eq!(human_duration(s(47 * 3600)), "47 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
        assert_eq!(human_duration(s(20 * 86400)), "2 weeks");
        assert_eq!(human_duration(s(90 * 86400)), "3 months");
        assert_eq!(human_duration(s(800 * 86400)), "2 years");
    }

    proptest! {
        #[test]
        fn size_parser_never_panics(s in ".{0,20}") {
            let _ = ram_in_bytes(&s);
            let _ = from_human_size(&s);
        }

        #[test]
        fn integers_round_trip(n in 0i64..1_000_000_000) {
            prop_assert_eq!(ram_in_bytes(&n.to_string()), Ok(n));
        }

        #[test]
        fn human_size_has_at_most_four_significant_digits(n in 0u64..u64::MAX / 2) {
            let s = human_size(n as f64);
            let digits = s.chars().filter(|c| c.is_ascii_digit()).count();
            prop_assert!(digits <= 4, "{}", s);
        }
    }
}
