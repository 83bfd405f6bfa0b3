//! Compression detection and transparent decompression of layer and archive streams.
//!
//! Docker accepts gzip, zstd, bzip2, xz and plain tar for `docker load`, `docker import` and
//! layer blobs. berth decodes gzip and zstd (the two formats registries and `docker save`
//! produce in practice) and refuses bzip2/xz with a message that names the format.

use std::io::{self, Cursor, Read};

/// The compression a stream starts with, detected from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

impl Compression {
    /// Detects the compression from the first bytes of a stream (at least 6 are needed to
    /// recognise every format; fewer means "not compressed").
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }
}

const MAGIC_LEN: usize = 6;

/// Wraps `r` in the right decoder after peeking at its first bytes. The peeked bytes are
/// not lost: they are chained back in front of the stream.
pub fn decompress<'a, R: Read + 'a>(mut r: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut head = [0u8; MAGIC_LEN];
    let mut n = 0;
    while n < MAGIC_LEN {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let kind = Compression::detect(&head[..n]);
    let stream = Cursor::new(head[..n].to_vec()).chain(r);
    let boxed: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(stream),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(stream)?),
        Compression::Bzip2 | Compression::Xz => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}-compressed input is not supported; decompress it first or use gzip or zstd",
                    kind.name()
                ),
            ))
        }
    };
    Ok((kind, boxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::gz;

    #[test]
    fn round_trips_each_format() {
        let data: Vec<u8> = (0..10000u32).map(|i| (i % 251) as u8).collect();
        for (input, kind) in [
            (data.clone(), Compression::None),
            (gz(&data), Compression::Gzip),
            (zstd::encode_all(&data[..], 1).unwrap(), Compression::Zstd),
        ] {
            let (k, mut r) = decompress(&input[..]).unwrap();
            assert_eq!(k, kind);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn short_and_empty_inputs_are_plain() {
        for input in [&b""[..], b"a", b"abcde"] {
            let (k, mut r) = decompress(input).unwrap();
            assert_eq!(k, Compression::None);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, input);
        }
    }

    #[test]
    fn xz_is_refused_by_name() {
        let err = match decompress(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2][..]) {
            Err(e) => e,
            Ok(_) => panic!("xz accepted"),
        };
        assert!(err.to_string().contains("xz"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn plain_data_passes_through(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let kind = Compression::detect(&data);
            match decompress(&data[..]) {
                Ok((k, mut r)) => {
                    proptest::prop_assert_eq!(k, kind);
                    let mut out = Vec::new();
                    if k == Compression::None {
                        r.read_to_end(&mut out).unwrap();
                        proptest::prop_assert_eq!(&out, &data);
                    } else {
                        // random bytes behind a magic: decoding may fail but must not panic
                        let _ = r.read_to_end(&mut out);
                    }
                }
                Err(_) => proptest::prop_assert!(matches!(kind, Compression::Bzip2 | Compression::Xz | Compression::Zstd)),
            }
        }
    }
}
