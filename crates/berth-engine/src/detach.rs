//! Detach keys (`ctrl-p,ctrl-q` by default): a sequence typed on an attached terminal that ends
//! the client's session without stopping the container, processed by the daemon like Docker.

use berth_api::ApiError;

pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Parses Docker's detach-keys syntax: comma-separated keys, each a single character or
/// `ctrl-<c>` with `<c>` in `a-z @ [ \ ] ^ _`.
pub fn parse(keys: &str) -> Result<Vec<u8>, ApiError> {
    let invalid = || ApiError::bad_request(format!("Invalid detach keys ({keys}) provided"));
    let mut out = Vec::new();
    for k in keys.split(',') {
        let k = k.trim();
        if let Some(rest) = k.strip_prefix("ctrl-") {
            let mut chars = rest.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(invalid());
            };
            let b = match c {
                'a'..='z' => c as u8 - b'a' + 1,
                '@' => 0,
                '[' => 27,
                '\\' => 28,
                ']' => 29,
                '^' => 30,
                '_' => 31,
                _ => return Err(invalid()),
            };
            out.push(b);
        } else {
            let mut chars = k.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii() => out.push(c as u8),
                _ => return Err(invalid()),
            }
        }
    }
    if out.is_empty() {
        return Err(invalid());
    }
    Ok(out)
}

/// Watches input for the detach sequence. Bytes that might start the sequence are held back
/// until it is clear whether they do; on a mismatch they are passed on.
pub struct Escape {
    keys: Vec<u8>,
    matched: usize,
}

impl Escape {
    pub fn new(keys: Vec<u8>) -> Escape {
        Escape { keys, matched: 0 }
    }

    /// Feeds `input`; appends what should reach the container to `out`. Returns true when the
    /// full sequence was typed (the rest of `input` is dropped).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return true;
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                    if self.keys.len() == 1 {
                        return true;
                    }
                } else {
                    out.push(b);
                }
            }
        }
        false
    }
}

/// How a client's input stream ended.
#[derive(Debug, PartialEq, Eq)]
pub enum InputEnd {
    /// The client closed its input (EOF).
    Eof,
    /// The client typed the detach sequence.
    Detached,
    /// Reading from the client or writing to the container failed.
    Failed,
}

/// Copies a client's input to the container, watching for the detach sequence when `keys` is
/// set (held-back bytes of a partial sequence are passed on as soon as it cannot match).
pub async fn copy_input<R, W>(r: &mut R, w: &mut W, keys: Option<Vec<u8>>) -> InputEnd
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut escape = keys.map(Escape::new);
    let mut buf = vec![0u8; 16 * 1024];
    let mut fwd = Vec::with_capacity(16 * 1024);
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => return InputEnd::Eof,
            Err(_) => return InputEnd::Failed,
            Ok(n) => n,
        };
        let (data, detach) = match escape.as_mut() {
            Some(e) => {
                fwd.clear();
                let d = e.feed(&buf[..n], &mut fwd);
                (&fwd[..], d)
            }
            None => (&buf[..n], false),
        };
        if !data.is_empty() && w.write_all(data).await.is_err() {
            return InputEnd::Failed;
        }
        if detach {
            return InputEnd::Detached;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_docker_syntax() {
        assert_eq!(parse(DEFAULT_DETACH_KEYS).unwrap(), vec![16, 17]);
        assert_eq!(parse("ctrl-x").unwrap(), vec![24]);
        assert_eq!(parse("a,ctrl-@,ctrl-_").unwrap(), vec![b'a', 0, 31]);
        for bad in ["", "ctrl-", "ctrl-ab", "ab", "ctrl-1", "é"] {
            assert_eq!(
                parse(bad).unwrap_err().message,
                format!("Invalid detach keys ({bad}) provided"),
                "{bad}"
            );
        }
    }

    #[test]
    fn detects_the_sequence_and_passes_other_input() {
        let mut e = Escape::new(vec![16, 17]);
        let mut out = Vec::new();
        assert!(!e.feed(b"ls\r", &mut out));
        assert!(!e.feed(&[16], &mut out));
        assert_eq!(out, b"ls\r", "a possible start is held back");
        assert!(!e.feed(b"x", &mut out));
        assert_eq!(out, b"ls\r\x10x", "a mismatch releases it");
        out.clear();
        assert!(!e.feed(&[16, 16], &mut out));
        assert!(e.feed(&[17, b'z'], &mut out));
        assert_eq!(out, vec![16]);
    }

    proptest! {
        #[test]
        fn without_the_sequence_everything_passes(data in proptest::collection::vec(0u8..=255, 0..200)) {
            let mut e = Escape::new(vec![16, 17]);
            let mut out = Vec::new();
            let detached = e.feed(&data, &mut out);
            let has_seq = data.windows(2).any(|w| w == [16, 17]);
            prop_assert_eq!(detached, has_seq);
            if !has_seq {
                // Everything but a held-back trailing ctrl-p reaches the container.
                let held = usize::from(data.last() == Some(&16));
                prop_assert_eq!(&out[..], &data[..data.len() - held]);
            }
        }
    }
}
