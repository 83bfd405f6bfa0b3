//! The raw, bidirectional connection of attach and exec (after `101 UPGRADED`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// A hijacked connection: read = client's stdin bytes (raw), write = output for the client
/// (already framed by the engine when the session has no TTY).
///
/// When hyper's upgraded connection is our own socket type it is unwrapped to the plain
/// `UnixStream`/`TcpStream` (no extra buffering layer); bytes hyper had already read past the
/// request head are kept and returned first.
///
/// Reading EOF only means the client half-closed its write side (the Docker CLI does that
/// right away when there is no stdin); output must keep flowing until the handler ends. When
/// the handler drops the `Hijacked`, the connection closes.
pub struct Hijacked {
    prefix: Bytes,
    io: Io,
}

enum Io {
    Unix(UnixStream),
    Tcp(TcpStream),
    Upgraded(TokioIo<Upgraded>),
    Duplex(tokio::io::DuplexStream),
}

impl std::fmt::Debug for Hijacked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.io {
            Io::Unix(_) => "unix",
            Io::Tcp(_) => "tcp",
            Io::Upgraded(_) => "upgraded",
            Io::Duplex(_) => "duplex",
        };
        f.debug_struct("Hijacked")
            .field("io", &kind)
            .field("prefix_len", &self.prefix.len())
            .finish()
    }
}

impl Hijacked {
    /// Wraps hyper's upgraded connection, unwrapping it to the raw socket when possible.
    pub fn from_upgraded(upgraded: Upgraded) -> Self {
        let upgraded = match upgraded.downcast::<TokioIo<UnixStream>>() {
            Ok(parts) => {
                return Self {
                    prefix: parts.read_buf,
                    io: Io::Unix(parts.io.into_inner()),
                };
            }
            Err(upgraded) => upgraded,
        };
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => Self {
                prefix: parts.read_buf,
                io: Io::Tcp(parts.io.into_inner()),
            },
            Err(upgraded) => Self {
                prefix: Bytes::new(),
                io: Io::Upgraded(TokioIo::new(upgraded)),
            },
        }
    }

    /// An in-memory hijack (plain `200` attach without `Upgrade`, tests).
    pub fn from_duplex(stream: tokio::io::DuplexStream) -> Self {
        Self {
            prefix: Bytes::new(),
            io: Io::Duplex(stream),
        }
    }

    /// True when this is the raw socket (the fast path), not a wrapper.
    pub fn is_raw_socket(&self) -> bool {
        matches!(self.io, Io::Unix(_) | Io::Tcp(_))
    }
}

impl AsyncRead for Hijacked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        match &mut this.io {
            Io::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Io::Upgraded(s) => Pin::new(s).poll_read(cx, buf),
            Io::Duplex(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Hijacked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Io::Upgraded(s) => Pin::new(s).poll_write(cx, buf),
            Io::Duplex(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Upgraded(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Duplex(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Unix(s) => s.is_write_vectored(),
            Io::Tcp(s) => s.is_write_vectored(),
            Io::Upgraded(s) => s.is_write_vectored(),
            Io::Duplex(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Unix(s) => Pin::new(s).poll_flush(cx),
            Io::Tcp(s) => Pin::new(s).poll_flush(cx),
            Io::Upgraded(s) => Pin::new(s).poll_flush(cx),
            Io::Duplex(s) => Pin::new(s).poll_flush(cx),
        }
    }

    /// Half-closes the write side (`shutdown(SHUT_WR)` on sockets).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Io::Upgraded(s) => Pin::new(s).poll_shutdown(cx),
            Io::Duplex(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
