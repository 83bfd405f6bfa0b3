//! API versions (`1.41`) and the negotiation rules of Docker's version middleware.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// An Engine API version `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// True when `self >= major.minor` (for version-dependent fields).
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= Self::new(major, minor)
    }
}

/// Oldest API version berth serves.
pub const MIN_API_VERSION: ApiVersion = ApiVersion::new(1, 24);
/// Newest API version berth serves; also what unversioned paths get and what `Api-Version` says.
pub const MAX_API_VERSION: ApiVersion = ApiVersion::new(1, 43);

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid API version {0:?}: expected MAJOR.MINOR, such as 1.41")]
pub struct ParseVersionError(pub String);

impl FromStr for ApiVersion {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseVersionError(s.to_string());
        let (major, minor) = s.split_once('.').ok_or_else(err)?;
        let major = parse_component(major).ok_or_else(err)?;
        let minor = parse_component(minor).ok_or_else(err)?;
        Ok(Self { major, minor })
    }
}

fn parse_component(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Compares dotted version strings numerically, component by component, missing components
/// counting as 0 and non-numeric ones as 0 — the rules of Docker's `versions.compare`.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (l, r) => {
                let l: u64 = l.and_then(|s| s.parse().ok()).unwrap_or(0);
                let r: u64 = r.and_then(|s| s.parse().ok()).unwrap_or(0);
                match l.cmp(&r) {
                    Ordering::Equal => continue,
                    other => return other,
                }
            }
        }
    }
}

/// Why a requested version was refused. The `Display` text is Docker's exact message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("client version {requested} is too new. Maximum supported API version is {max}")]
    TooNew { requested: String, max: ApiVersion },
    #[error("client version {requested} is too old. Minimum supported API version is {min}, please upgrade your client to a newer version")]
    TooOld { requested: String, min: ApiVersion },
}

/// Applies Docker's version middleware to the version in the path (`None`: unversioned path,
/// which gets the newest version).
pub fn negotiate(requested: Option<&str>) -> Result<ApiVersion, VersionError> {
    let Some(requested) = requested else {
        return Ok(MAX_API_VERSION);
    };
    if compare_versions(requested, &MIN_API_VERSION.to_string()) == Ordering::Less {
        return Err(VersionError::TooOld {
            requested: requested.to_string(),
            min: MIN_API_VERSION,
        });
    }
    if compare_versions(requested, &MAX_API_VERSION.to_string()) == Ordering::Greater {
        return Err(VersionError::TooNew {
            requested: requested.to_string(),
            max: MAX_API_VERSION,
        });
    }
    // Within range; a shape like "1.41.0" is accepted by Docker, keep major.minor.
    let mut parts = requested.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    Ok(ApiVersion::new(major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let v: ApiVersion = "1.41".parse().unwrap();
        assert_eq!(v, ApiVersion::new(1, 41));
        assert_eq!(v.to_string(), "1.41");
        assert!("1".parse::<ApiVersion>().is_err());
        assert!("1.x".parse::<ApiVersion>().is_err());
        assert!("".parse::<ApiVersion>().is_err());
        assert!(ApiVersion::new(1, 9) < ApiVersion::new(1, 41));
    }

    #[test]
    fn compares_like_docker() {
        assert_eq!(compare_versions("1.9", "1.41"), Ordering::Less);
        assert_eq!(compare_versions("1.41", "1.41.0"), Ordering::Equal);
        assert_eq!(compare_versions("9.99", "1.43"), Ordering::Greater);
        assert_eq!(compare_versions("1", "1.24"), Ordering::Less);
    }

    #[test]
    fn negotiation_messages_are_dockers() {
        assert_eq!(negotiate(None).unwrap(), MAX_API_VERSION);
        assert_eq!(negotiate(Some("1.41")).unwrap(), ApiVersion::new(1, 41));
        assert_eq!(negotiate(Some("1.24")).unwrap(), MIN_API_VERSION);
        assert_eq!(negotiate(Some("1.43")).unwrap(), MAX_API_VERSION);
        assert_eq!(
            negotiate(Some("1.99")).unwrap_err().to_string(),
            "client version 1.99 is too new. Maximum supported API version is 1.43"
        );
        assert_eq!(
            negotiate(Some("1.11")).unwrap_err().to_string(),
            "client version 1.11 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
        );
    }
}
