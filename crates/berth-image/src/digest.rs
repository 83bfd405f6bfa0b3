//! Content digests (`sha256:<hex>`), as used by OCI and Docker for every blob, config and layer.
//!
//! Only `sha256` and `sha512` are accepted: they are the algorithms the OCI image spec registers
//! and the only ones a registry or Docker produces in practice.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// A validated content digest: `<algorithm>:<lowercase hex>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// The digest algorithms berth accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex encoding of this algorithm's output.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// Why a string is not a digest. The texts are those of Docker's `go-digest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid checksum digest format")]
    InvalidFormat,
    #[error("unsupported digest algorithm")]
    UnsupportedAlgorithm,
    #[error("invalid checksum digest length")]
    InvalidLength,
}

impl Digest {
    /// Parses and validates `algorithm:hex`.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let (alg, hex) = s.split_once(':').ok_or(DigestError::InvalidFormat)?;
        if alg.is_empty() || hex.is_empty() {
            return Err(DigestError::InvalidFormat);
        }
        // go-digest checks the algorithm grammar before availability.
        if !valid_algorithm_grammar(alg) {
            return Err(DigestError::InvalidFormat);
        }
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(DigestError::UnsupportedAlgorithm),
        };
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::InvalidLength);
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::InvalidFormat);
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// A sha256 digest from a 64-character lowercase hex string (no `sha256:` prefix).
    pub fn from_sha256_hex(hex: &str) -> Result<Digest, DigestError> {
        Digest::parse(&format!("sha256:{hex}"))
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part, without the algorithm prefix.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as Docker shows IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

fn valid_algorithm_grammar(alg: &str) -> bool {
    // algorithm := component (separator component)*; component := [a-z0-9]+; separator := [+._-]
    let mut prev_sep = true;
    for b in alg.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' => prev_sep = false,
            b'+' | b'.' | b'_' | b'-' if !prev_sep => prev_sep = true,
            _ => return false,
        }
    }
    !prev_sep
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Incremental hasher for one algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest {
                algorithm: Algorithm::Sha256,
                hex: hex::encode(h.finalize()),
            },
            Hasher::Sha512(h) => Digest {
                algorithm: Algorithm::Sha512,
                hex: hex::encode(h.finalize()),
            },
        }
    }
}

/// A reader that hashes (and counts) everything read through it.
pub struct DigestReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> DigestReader<R> {
    pub fn new(inner: R, algorithm: Algorithm) -> Self {
        DigestReader {
            inner,
            hasher: Hasher::new(algorithm),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Finish: the digest of everything read, the byte count and the inner reader.
    pub fn finish(self) -> (Digest, u64, R) {
        (self.hasher.finish(), self.count, self.inner)
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes (and counts) everything written through it.
pub struct DigestWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> DigestWriter<W> {
    pub fn new(inner: W, algorithm: Algorithm) -> Self {
        DigestWriter {
            inner,
            hasher: Hasher::new(algorithm),
            count: 0,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn finish(self) -> (Digest, u64, W) {
        (self.hasher.finish(), self.count, self.inner)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hashes_and_displays() {
        assert_eq!(Digest::sha256_of(b"").to_string(), EMPTY);
        assert_eq!(Digest::parse(EMPTY).unwrap().short(), "e3b0c44298fc");
        let mut r = DigestReader::new(&b"abc"[..], Algorithm::Sha256);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (d, n, _) = r.finish();
        assert_eq!(n, 3);
        assert_eq!(d, Digest::sha256_of(b"abc"));
    }

    #[test]
    fn rejects_bad_digests_with_go_digest_wording() {
        assert_eq!(Digest::parse("sha256"), Err(DigestError::InvalidFormat));
        assert_eq!(Digest::parse("sha256:"), Err(DigestError::InvalidFormat));
        assert_eq!(
            Digest::parse("md5:abcd"),
            Err(DigestError::UnsupportedAlgorithm)
        );
        assert_eq!(
            Digest::parse("sha256:abcd"),
            Err(DigestError::InvalidLength)
        );
        assert_eq!(
            Digest::parse(&EMPTY.to_uppercase().replace("SHA256", "sha256")),
            Err(DigestError::InvalidFormat)
        );
        assert_eq!(
            Digest::parse(&EMPTY.replace('e', "g")),
            Err(DigestError::InvalidFormat)
        );
        assert_eq!(Digest::parse("SHA256:ab"), Err(DigestError::InvalidFormat));
    }

    #[test]
    fn serde_round_trip() {
        let d = Digest::parse(EMPTY).unwrap();
        let j = serde_json::to_string(&d).unwrap();
        assert_eq!(j, format!("\"{EMPTY}\""));
        assert_eq!(serde_json::from_str::<Digest>(&j).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:x\"").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in ".{0,140}") {
            if let Ok(d) = Digest::parse(&s) {
                prop_assert_eq!(d.to_string(), s);
            }
        }

        #[test]
        fn valid_sha256_always_parses(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let d = Digest::sha256_of(&bytes);
            prop_assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        }
    }
}
