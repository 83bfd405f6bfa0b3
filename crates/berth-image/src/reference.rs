//! Image references, parsed and normalised exactly as Docker does
//! (`busybox` → `docker.io/library/busybox:latest`, `host:port/ns/name:tag@sha256:…`).
//!
//! The grammar is the one of Docker's `distribution/reference` package:
//!
//! ```text
//! reference      := name [ ":" tag ] [ "@" digest ]
//! name           := [domain '/'] path-component ['/' path-component]*
//! domain         := host [':' port]            host := domain-name | IPv4 | '[' IPv6 ']'
//! domain-name    := domain-component ['.' domain-component]*
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path-component := [a-z0-9]+ (separator [a-z0-9]+)*     separator := [_.] | "__" | "-"+
//! tag            := [\w][\w.-]{0,127}
//! digest         := algorithm ":" hex{32,}
//! ```
//!
//! It is parsed by hand rather than with the `regex` crate: the grammar is small, a hand parser
//! costs no start-up compilation (every CLI invocation and API call parses references), and the
//! property tests below check it against the published regular expressions.

use std::fmt;

use crate::digest::{Digest, DigestError};

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a reference was refused. The texts are Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid tag format")]
    InvalidTag,
    #[error("invalid digest format")]
    InvalidDigestFormat,
    #[error("repository name must have at least one component")]
    NameEmpty,
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    RepositoryMustBeLowercase(String),
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexRepositoryName(String),
    #[error("{0}")]
    Digest(#[from] DigestError),
}

/// A parsed, normalised reference: always has a domain; tag and digest are optional.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Docker's `ParseNormalizedNamed`: accepts familiar forms such as `busybox`, `me/app:1`,
    /// `localhost:5000/me/app@sha256:…` and fills in `docker.io` and `library/`.
    /// No default tag is added; see [`Reference::parse_docker_ref`].
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if is_full_hex_id(s) {
            return Err(ReferenceError::HexRepositoryName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => remainder.as_str(),
        };
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::RepositoryMustBeLowercase(
                remote.to_string(),
            ));
        }
        Reference::parse(&format!("{domain}/{remainder}"))
    }

    /// Docker's `ParseDockerRef`: normalised, with `:latest` added when neither tag nor digest
    /// is given, and the tag dropped when both are given (the digest wins).
    pub fn parse_docker_ref(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_normalized(s)?;
        if r.digest.is_some() {
            r.tag = None;
        } else if r.tag.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Strict parse of a fully qualified reference (`domain/path[:tag][@digest]`), as Docker's
    /// `reference.Parse`, then split into domain and path. A name without a domain component
    /// (`busybox`) is refused: use [`Reference::parse_normalized`] for familiar names.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let parts = match split_reference(s) {
            Some(p) => p,
            None => {
                if s.is_empty() {
                    return Err(ReferenceError::NameEmpty);
                }
                if split_reference(&s.to_lowercase()).is_some() {
                    return Err(ReferenceError::NameContainsUppercase);
                }
                return Err(ReferenceError::InvalidFormat);
            }
        };
        if parts.name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        let digest = match parts.digest {
            Some(d) => Some(Digest::parse(d)?),
            None => None,
        };
        let (domain, path) = match parts.name.split_once('/') {
            Some((first, rest)) if is_domain(first) => (first.to_string(), rest.to_string()),
            _ => return Err(ReferenceError::InvalidFormat),
        };
        Ok(Reference {
            domain,
            path,
            tag: parts.tag.map(str::to_string),
            digest,
        })
    }

    /// The registry host (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry (`library/busybox`, `me/app`).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short repository name Docker shows: `busybox`, `me/app`, `localhost:5000/me/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            if let Some(rest) = self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                if !rest.contains('/') {
                    return rest.to_string();
                }
            }
            return self.path.clone();
        }
        self.name()
    }

    /// The familiar form with tag and digest: `busybox:latest`, `me/app@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The same repository with a digest and no tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// Only the repository: no tag, no digest.
    pub fn repository(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// `:latest` added when there is neither tag nor digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Validates a repository path as a registry sees it in `/v2/<name>/…` (`library/busybox`,
/// `me/app`): path components only, lowercase, total length at most 255.
pub fn validate_repository_path(path: &str) -> Result<(), ReferenceError> {
    if path.is_empty() {
        return Err(ReferenceError::NameEmpty);
    }
    if path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong);
    }
    if path.split('/').all(is_path_component) {
        return Ok(());
    }
    if path.to_lowercase().split('/').all(is_path_component) {
        return Err(ReferenceError::NameContainsUppercase);
    }
    Err(ReferenceError::InvalidFormat)
}

/// Whether `s` is a valid tag.
pub fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 128 {
        return false;
    }
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    word(b[0]) && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// A 64-character lowercase hex string (an image or container ID without prefix).
pub fn is_full_hex_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            if !first.contains(['.', ':']) && first != "localhost" && first.to_lowercase() == first
            {
                (DEFAULT_DOMAIN.to_string(), name.to_string())
            } else {
                (first.to_string(), name[i + 1..].to_string())
            }
        }
        None => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

struct Parts<'a> {
    name: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Splits `name[:tag][@digest]` when the whole string matches the reference grammar.
fn split_reference(s: &str) -> Option<Parts<'_>> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => {
            if !is_digest_grammar(d) {
                return None;
            }
            (r, Some(d))
        }
        None => (s, None),
    };
    // A tag is after the last ':' that comes after the last '/'.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => {
            let i = last_slash + i;
            (&rest[..i], Some(&rest[i + 1..]))
        }
        None => (rest, None),
    };
    if let Some(t) = tag {
        if !is_tag(t) {
            return None;
        }
    }
    if !is_name(name) {
        return None;
    }
    Some(Parts { name, tag, digest })
}

/// `[domain '/'] path-component ('/' path-component)*`
fn is_name(name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    if name.split('/').all(is_path_component) {
        return true;
    }
    match name.split_once('/') {
        Some((first, rest)) => is_domain(first) && rest.split('/').all(is_path_component),
        None => false,
    }
}

/// `[a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // a separator run: ".", "_", "__", or one or more "-"
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host [':' port]`
fn is_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        // [IPv6]
        match rest.split_once(']') {
            Some((addr, after)) => {
                if !is_ipv6(addr) {
                    return false;
                }
                match after {
                    "" => return true,
                    p => match p.strip_prefix(':') {
                        Some(port) => ("", Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        if host.is_empty() {
            return d.starts_with('[');
        }
    }
    host.split('.').all(is_domain_component)
}

fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() {
        return false;
    }
    let an = |x: u8| x.is_ascii_alphanumeric();
    an(b[0]) && an(b[b.len() - 1]) && b.iter().all(|&x| an(x) || x == b'-')
}

fn is_ipv6(a: &str) -> bool {
    !a.is_empty()
        && a.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
        && a.parse::<std::net::Ipv6Addr>().is_ok()
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
fn is_digest_grammar(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    if hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    alg.split(['-', '_', '+', '.']).all(|c| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|x| x.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn n(s: &str) -> String {
        Reference::parse_docker_ref(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(n("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(n("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(n("me/app"), "docker.io/me/app:latest");
        assert_eq!(n("index.docker.io/me/app"), "docker.io/me/app:latest");
        assert_eq!(n("localhost/app"), "localhost/app:latest");
        assert_eq!(n("localhost:5000/me/app:v1"), "localhost:5000/me/app:v1");
        assert_eq!(n("127.0.0.1:5000/x"), "127.0.0.1:5000/x:latest");
        assert_eq!(n("[::1]:5000/x"), "[::1]:5000/x:latest");
        assert_eq!(
            n(&format!("busybox@{D}")),
            format!("docker.io/library/busybox@{D}")
        );
        // tag and digest: the digest wins
        assert_eq!(
            n(&format!("busybox:1@{D}")),
            format!("docker.io/library/busybox@{D}")
        );
    }

    #[test]
    fn familiar_forms() {
        let r = Reference::parse_docker_ref("busybox").unwrap();
        assert_eq!(r.familiar(), "busybox:latest");
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(r.path(), "library/busybox");
        let r = Reference::parse_docker_ref("localhost:5000/me/busybox").unwrap();
        assert_eq!(r.familiar(), "localhost:5000/me/busybox:latest");
        assert_eq!(r.domain(), "localhost:5000");
        let r = Reference::parse_docker_ref("docker.io/library/a/b").unwrap();
        assert_eq!(r.familiar_name(), "library/a/b");
    }

    #[test]
    fn docker_error_texts() {
        let e = |s: &str| Reference::parse_normalized(s).unwrap_err().to_string();
        assert_eq!(
            e("BusyBox"),
            "invalid reference format: repository name (library/BusyBox) must be lowercase"
        );
        assert_eq!(e("busybox:bad:tag"), "invalid reference format");
        assert_eq!(e(""), "invalid reference format");
        assert_eq!(e("bad name!"), "invalid reference format");
        assert_eq!(e("a/../b"), "invalid reference format");
        assert_eq!(
            e(&D[7..]),
            format!(
                "invalid repository name ({}), cannot specify 64-byte hexadecimal strings",
                &D[7..]
            )
        );
        assert_eq!(
            e(&"a".repeat(300)),
            "repository name must not be more than 255 characters"
        );
        assert_eq!(e("busybox@sha256:abc"), "invalid reference format");
        assert_eq!(
            e(&format!("busybox@md5:{}", "a".repeat(32))),
            "unsupported digest algorithm"
        );
        assert_eq!(Reference::parse("").unwrap_err(), ReferenceError::NameEmpty);
        assert_eq!(
            Reference::parse("Docker.io/Foo").unwrap_err(),
            ReferenceError::NameContainsUppercase
        );
    }

    #[test]
    fn separators_and_tags() {
        assert!(is_path_component("a__b"));
        assert!(is_path_component("a---b"));
        assert!(is_path_component("a.b_c"));
        assert!(!is_path_component("a___b"));
        assert!(!is_path_component("a..b"));
        assert!(!is_path_component("-a"));
        assert!(!is_path_component("a-"));
        assert!(is_tag("v1.0-rc_1"));
        assert!(!is_tag(".v1"));
        assert!(!is_tag(&"a".repeat(129)));
        assert!(validate_repository_path("library/busybox").is_ok());
        assert_eq!(
            validate_repository_path("Library/busybox"),
            Err(ReferenceError::NameContainsUppercase)
        );
        assert_eq!(
            validate_repository_path("a/../b"),
            Err(ReferenceError::InvalidFormat)
        );
        let r = Reference::parse_docker_ref("busybox").unwrap();
        assert_eq!(r.with_tag("bad tag"), Err(ReferenceError::InvalidTag));
    }

    /// The published regular expressions of distribution/reference, used as the oracle.
    fn oracle() -> regex::Regex {
        let alnum = "[a-z0-9]+";
        let sep = "(?:[._]|__|[-]+)";
        let comp = format!("{alnum}(?:{sep}{alnum})*");
        let dcomp = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
        let dname = format!("{dcomp}(?:\\.{dcomp})*");
        let ipv6 = r"\[(?:[a-fA-F0-9:]+)\]";
        let host = format!("(?:{dname}|{ipv6})");
        let domain = format!("{host}(?::[0-9]+)?");
        let name = format!("(?:{domain}/)?{comp}(?:/{comp})*");
        let tag = r"[\w][\w.-]{0,127}";
        let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";
        regex::Regex::new(&format!("^({name})(?::({tag}))?(?:@({digest}))?$")).unwrap()
    }

    proptest! {
        #[test]
        fn grammar_agrees_with_the_published_regex(
            s in "[a-zA-Z0-9._:/@-]{0,40}"
        ) {
            let re = oracle();
            prop_assert_eq!(split_reference(&s).is_some(), re.is_match(&s), "input {:?}", s);
        }

        #[test]
        fn structured_inputs_agree(
            dom in proptest::option::of("[a-z0-9-]{1,8}(\\.[a-z]{1,4})?(:[0-9]{1,5})?"),
            path in "[a-z0-9]{1,5}([._-][a-z0-9]{1,4}){0,2}(/[a-z0-9]{1,6}){0,2}",
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}"),
        ) {
            let mut s = String::new();
            if let Some(d) = &dom { s.push_str(d); s.push('/'); }
            s.push_str(&path);
            if let Some(t) = &tag { s.push(':'); s.push_str(t); }
            let re = oracle();
            prop_assert_eq!(split_reference(&s).is_some(), re.is_match(&s), "input {:?}", s);
        }

        #[test]
        fn normalised_references_reparse_to_themselves(s in "[a-z0-9./:_-]{1,40}") {
            if let Ok(r) = Reference::parse_normalized(&s) {
                let again = Reference::parse(&r.to_string()).unwrap();
                prop_assert_eq!(again, r);
            }
        }
    }
}
