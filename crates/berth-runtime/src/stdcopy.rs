//! Docker's stream multiplexing format ("stdcopy"), used by non-tty attach, exec and logs.
//!
//! Every frame is an 8-byte header followed by the payload:
//! byte 0 = stream (0 stdin, 1 stdout, 2 stderr, 3 system error), bytes 1–3 zero,
//! bytes 4–7 = payload length, big-endian u32.

use std::io::{self, Read, Write};

/// Length of a frame header.
pub const HEADER_LEN: usize = 8;

/// Largest payload [`Decoder`] accepts in one frame (Docker never sends frames this large;
/// the limit keeps a hostile stream from making us allocate gigabytes).
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// The stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StdStream {
    /// 0
    Stdin,
    /// 1
    Stdout,
    /// 2
    Stderr,
    /// 3: an error message from the daemon (Docker's `Systemerr`).
    SystemErr,
}

impl StdStream {
    /// The header byte.
    pub fn as_byte(self) -> u8 {
        match self {
            StdStream::Stdin => 0,
            StdStream::Stdout => 1,
            StdStream::Stderr => 2,
            StdStream::SystemErr => 3,
        }
    }

    /// Parses the header byte.
    pub fn from_byte(b: u8) -> Option<StdStream> {
        match b {
            0 => Some(StdStream::Stdin),
            1 => Some(StdStream::Stdout),
            2 => Some(StdStream::Stderr),
            3 => Some(StdStream::SystemErr),
            _ => None,
        }
    }

    /// "stdout", "stderr", … as used in json-file logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StdStream::Stdin => "stdin",
            StdStream::Stdout => "stdout",
            StdStream::Stderr => "stderr",
            StdStream::SystemErr => "systemerr",
        }
    }
}

/// Errors of the decoder.
#[derive(Debug, thiserror::Error)]
pub enum StdcopyError {
    /// The header's stream byte is not 0–3.
    #[error("unrecognized input header: {0}")]
    BadStream(u8),
    /// The frame is larger than [`MAX_FRAME`].
    #[error("stdcopy frame of {0} bytes is larger than the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// The stream ended inside a frame.
    #[error("unexpected EOF inside a stdcopy frame")]
    Truncated,
    /// An I/O error of the underlying reader or writers.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Builds the 8-byte header of a frame.
pub fn header(stream: StdStream, len: u32) -> [u8; HEADER_LEN] {
    let l = len.to_be_bytes();
    [stream.as_byte(), 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Appends one frame (header + payload) to `out`. Payloads larger than `u32::MAX` are split.
pub fn encode_into(out: &mut Vec<u8>, stream: StdStream, payload: &[u8]) {
    if payload.is_empty() {
        out.extend_from_slice(&header(stream, 0));
        return;
    }
    for chunk in payload.chunks(u32::MAX as usize) {
        out.extend_from_slice(&header(stream, chunk.len() as u32));
        out.extend_from_slice(chunk);
    }
}

/// Returns one frame (header + payload).
pub fn encode(stream: StdStream, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + payload.len());
    encode_into(&mut v, stream, payload);
    v
}

/// Incremental decoder: feed bytes with [`Decoder::push`], take frames with [`Decoder::next_frame`].
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    pos: usize,
}

impl Decoder {
    /// A new, empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Returns the next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<(StdStream, Vec<u8>)>, StdcopyError> {
        let avail = &self.buf[self.pos..];
        if avail.len() < HEADER_LEN {
            return Ok(None);
        }
        let stream = StdStream::from_byte(avail[0]).ok_or(StdcopyError::BadStream(avail[0]))?;
        let len = u32::from_be_bytes([avail[4], avail[5], avail[6], avail[7]]) as usize;
        if len > MAX_FRAME {
            return Err(StdcopyError::TooLarge(len));
        }
        if avail.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let payload = avail[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.pos += HEADER_LEN + len;
        Ok(Some((stream, payload)))
    }

    /// True when no partial frame is buffered.
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// Demultiplexes a whole stream (blocking): stdout frames go to `stdout`, stderr frames to
/// `stderr`. A system-error frame ends the copy with an error carrying its text.
/// Returns the number of payload bytes written.
pub fn demux<R: Read, O: Write, E: Write>(
    mut input: R,
    mut stdout: O,
    mut stderr: E,
) -> Result<u64, StdcopyError> {
    let mut dec = Decoder::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return if dec.is_empty() {
                Ok(total)
            } else {
                Err(StdcopyError::Truncated)
            };
        }
        dec.push(&buf[..n]);
        while let Some((stream, payload)) = dec.next_frame()? {
            match stream {
                StdStream::Stdout | StdStream::Stdin => stdout.write_all(&payload)?,
                StdStream::Stderr => stderr.write_all(&payload)?,
                StdStream::SystemErr => {
                    return Err(StdcopyError::Io(io::Error::other(
                        String::from_utf8_lossy(&payload).into_owned(),
                    )))
                }
            }
            total += payload.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_shape() {
        assert_eq!(
            header(StdStream::Stderr, 0x0102_0304),
            [2, 0, 0, 0, 1, 2, 3, 4]
        );
        assert_eq!(encode(StdStream::Stdout, b"hi"), b"\x01\0\0\0\0\0\0\x02hi");
    }

    #[test]
    fn demux_splits_streams() {
        let mut s = encode(StdStream::Stdout, b"out1\n");
        s.extend(encode(StdStream::Stderr, b"err\n"));
        s.extend(encode(StdStream::Stdout, b"out2\n"));
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert_eq!(demux(&s[..], &mut o, &mut e).unwrap(), 14);
        assert_eq!(o, b"out1\nout2\n");
        assert_eq!(e, b"err\n");
    }

    #[test]
    fn rejects_bad_stream_and_truncation() {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert!(matches!(
            demux(&b"\x07\0\0\0\0\0\0\x01x"[..], &mut o, &mut e),
            Err(StdcopyError::BadStream(7))
        ));
        assert!(matches!(
            demux(&b"\x01\0\0\0\0\0\0\x05ab"[..], &mut o, &mut e),
            Err(StdcopyError::Truncated)
        ));
        let big = header(StdStream::Stdout, u32::MAX);
        assert!(matches!(
            demux(&big[..], &mut o, &mut e),
            Err(StdcopyError::TooLarge(_))
        ));
    }

    proptest! {
        #[test]
        fn roundtrip_any_chunking(
            frames in proptest::collection::vec((1u8..3, proptest::collection::vec(any::<u8>(), 0..300)), 0..20),
            split in 1usize..50,
        ) {
            let mut wire = Vec::new();
            for (s, p) in &frames {
                encode_into(&mut wire, StdStream::from_byte(*s).unwrap(), p);
            }
            let mut dec = Decoder::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(split) {
                dec.push(chunk);
                while let Some(f) = dec.next_frame().unwrap() {
                    got.push((f.0.as_byte(), f.1));
                }
            }
            prop_assert!(dec.is_empty());
            prop_assert_eq!(got, frames);
        }

        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut dec = Decoder::new();
            dec.push(&data);
            while let Ok(Some(_)) = dec.next_frame() {}
        }
    }
}
