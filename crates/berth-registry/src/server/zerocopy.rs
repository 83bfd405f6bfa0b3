//! Blob bodies: shared memory maps, and zero-copy sends to remote peers.
//!
//! Every blob body is a `Bytes` backed by a read-only memory map of the (immutable) blob file.
//! Maps are cached for a few seconds after their last use ([`cached_map`]), so concurrent and
//! repeated pulls of the same blob share one map whose page-table entries are already filled:
//! no page faults, unmaps or TLB shootdowns per request.
//!
//! Zero-copy sends:
//! hyper has no `sendfile(2)` support: a response body is a stream of `Bytes` that hyper hands
//! to the connection's writer. Blob bodies are `Bytes` backed by a read-only memory map of the
//! (immutable) blob file, and each map is registered here with the file it maps. The
//! connection writer, [`SendfileStream`], looks up every buffer it is asked to write: when the
//! buffer lies inside a registered map it sends the same bytes with `sendfile(2)` straight from
//! the page cache — the kernel attaches the cached pages to the socket instead of copying them,
//! and the map's pages are never touched, so they never count towards the registry's RSS.
//! Any other buffer (headers, manifests, TLS records, HTTP/2 frames) is written normally, and
//! so is a mapped body on a connection that is not plain TCP: the map then simply serves its
//! bytes. No crate provides this for hyper, hence the small amount of code here.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Largest single `sendfile(2)` call.
const MAX_SENDFILE: usize = 4 << 20;

/// One registered map: its end address and the file it maps from offset 0.
struct Region {
    end: usize,
    file: Arc<File>,
}

/// Start address of each live map → its region. Entries are added when a map is made and
/// removed (before the unmap) when the last `Bytes` referring to it is dropped, so an address
/// found here always belongs to a live map of that file.
static REGIONS: LazyLock<Mutex<BTreeMap<usize, Region>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

/// The file and offset holding `buf`'s bytes, when `buf` lies entirely inside a registered map.
fn lookup(buf: &[u8]) -> Option<(Arc<File>, u64)> {
    if buf.is_empty() {
        return None;
    }
    let start = buf.as_ptr() as usize;
    let end = start.checked_add(buf.len())?;
    let regions = REGIONS.lock().ok()?;
    let (&base, region) = regions.range(..=start).next_back()?;
    (end <= region.end).then(|| (region.file.clone(), (start - base) as u64))
}

/// Owner of a registered map; unregisters it before unmapping.
struct MappedFile {
    map: memmap2::Mmap,
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // Runs before the `map` field is dropped (and unmapped).
        if let Ok(mut regions) = REGIONS.lock() {
            regions.remove(&(self.map.as_ptr() as usize));
        }
    }
}

/// Maps `file` (exactly `len` bytes long, non-empty, never modified while mapped) read-only
/// and registers the map for [`SendfileStream`].
pub(crate) fn map_file(file: File, len: u64) -> io::Result<Bytes> {
    // SAFETY: mmap(2) of a read-only file descriptor. The callers only map blob files, which
    // are immutable once renamed into the store (never written or truncated in place; gc only
    // unlinks, which keeps the mapping valid), so the mapped bytes cannot change or vanish.
    let map = unsafe { memmap2::MmapOptions::new().len(len as usize).map(&file)? };
    let start = map.as_ptr() as usize;
    let region = Region {
        end: start + map.len(),
        file: Arc::new(file),
    };
    let owner = MappedFile { map };
    if let Ok(mut regions) = REGIONS.lock() {
        regions.insert(start, region);
    }
    Ok(Bytes::from_owner(owner))
}

/// How many blob maps the cache keeps at most (the least recently used go first).
const MAX_CACHED_MAPS: usize = 256;

/// A cached map: the identity of the file it maps, the bytes and when it was last handed out.
struct CachedMap {
    dev: u64,
    ino: u64,
    bytes: Bytes,
    used: Instant,
}

static MAPS: LazyLock<Mutex<HashMap<PathBuf, CachedMap>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The bytes of the blob file at `path`, which must be exactly `size` bytes long, as a shared
/// map: the cached one while it still maps the same file (same device and inode — a blob
/// deleted and stored again is mapped afresh), otherwise a new one.
pub(crate) fn cached_map(path: &Path, size: u64) -> io::Result<Bytes> {
    let meta = std::fs::metadata(path)?;
    if meta.len() != size {
        return Err(io::Error::other(format!(
            "blob {} changed size ({size} -> {})",
            path.display(),
            meta.len()
        )));
    }
    let now = Instant::now();
    if let Ok(mut maps) = MAPS.lock() {
        if let Some(m) = maps.get_mut(path) {
            if m.dev == meta.dev() && m.ino == meta.ino() && m.bytes.len() as u64 == size {
                m.used = now;
                return Ok(m.bytes.clone());
            }
        }
    }
    let file = File::open(path)?;
    let opened = file.metadata()?;
    if opened.len() != size {
        return Err(io::Error::other(format!(
            "blob {} changed size ({size} -> {})",
            path.display(),
            opened.len()
        )));
    }
    let bytes = map_file(file, size)?;
    if let Ok(mut maps) = MAPS.lock() {
        if maps.len() >= MAX_CACHED_MAPS {
            if let Some(oldest) = maps
                .iter()
                .min_by_key(|(_, m)| m.used)
                .map(|(p, _)| p.clone())
            {
                maps.remove(&oldest);
            }
        }
        maps.insert(
            path.to_path_buf(),
            CachedMap {
                dev: opened.dev(),
                ino: opened.ino(),
                bytes: bytes.clone(),
                used: now,
            },
        );
    }
    Ok(bytes)
}

/// Drops cached maps not handed out for `idle` (responses still sending keep theirs alive).
pub(crate) fn expire_maps(idle: Duration) {
    if let Ok(mut maps) = MAPS.lock() {
        maps.retain(|_, m| m.used.elapsed() < idle);
        if maps.is_empty() {
            maps.shrink_to_fit();
        }
    }
}

/// A plain TCP connection whose writes of mapped blob bytes go out with `sendfile(2)`.
pub(crate) struct SendfileStream {
    inner: TcpStream,
    /// Whether mapped bytes go out with sendfile(2); otherwise every write is a plain one.
    zero_copy: bool,
}

impl SendfileStream {
    pub(crate) fn new(inner: TcpStream, zero_copy: bool) -> Self {
        Self { inner, zero_copy }
    }

    /// The file and offset of `buf` when it is to be sent with sendfile(2).
    fn mapped(&self, buf: &[u8]) -> Option<(Arc<File>, u64)> {
        if self.zero_copy {
            lookup(buf)
        } else {
            None
        }
    }

    fn poll_sendfile(
        &self,
        cx: &mut Context<'_>,
        file: &File,
        offset: u64,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let count = len.min(MAX_SENDFILE);
        loop {
            ready!(self.inner.poll_write_ready(cx))?;
            let res = self.inner.try_io(Interest::WRITABLE, || {
                let mut off = offset as nix::libc::off_t;
                nix::sys::sendfile::sendfile(&self.inner, file, Some(&mut off), count)
                    .map_err(io::Error::from)
            });
            match res {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "blob file ended before its mapped length",
                    )))
                }
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for SendfileStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.mapped(buf) {
            Some((file, offset)) => this.poll_sendfile(cx, &file, offset, buf.len()),
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(first) = bufs.iter().position(|b| !b.is_empty()) else {
            return Poll::Ready(Ok(0));
        };
        if let Some((file, offset)) = this.mapped(&bufs[first]) {
            return this.poll_sendfile(cx, &file, offset, bufs[first].len());
        }
        // Write the ordinary buffers up to the next mapped one in one writev(2); a short
        // count is fine, the caller comes back for the rest.
        let upto = bufs[first..]
            .iter()
            .position(|b| this.mapped(b).is_some())
            .map_or(bufs.len(), |i| first + i);
        Pin::new(&mut this.inner).poll_write_vectored(cx, &bufs[first..upto])
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn temp_file(data: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(data)
            .unwrap();
        let f = File::open(&path).unwrap();
        (dir, f)
    }

    #[test]
    fn lookup_finds_only_slices_inside_live_maps() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (_dir, f) = temp_file(&data);
        let bytes = map_file(f, data.len() as u64).unwrap();
        let part = bytes.slice(1000..5000);
        let (_, off) = lookup(&part).unwrap();
        assert_eq!(off, 1000);
        assert!(lookup(&data[..]).is_none(), "heap bytes are not a map");
        let ptr = bytes.as_ptr() as usize;
        drop(part);
        drop(bytes);
        assert!(
            !REGIONS.lock().unwrap().contains_key(&ptr),
            "unregistered when the last Bytes goes"
        );
    }

    #[test]
    fn cached_map_is_shared_and_remapped_when_the_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::write(&path, vec![1u8; 100_000]).unwrap();
        let a = cached_map(&path, 100_000).unwrap();
        let b = cached_map(&path, 100_000).unwrap();
        assert_eq!(
            a.as_ptr(),
            b.as_ptr(),
            "the second request shares the first map"
        );
        assert!(
            cached_map(&path, 99_999).is_err(),
            "a size mismatch is refused"
        );
        // Replaced by a different file (new inode) under the same path: mapped afresh.
        let tmp = dir.path().join("new");
        std::fs::write(&tmp, vec![2u8; 100_000]).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let c = cached_map(&path, 100_000).unwrap();
        assert_eq!(c[0], 2);
        assert_eq!(
            a[0], 1,
            "the old map stays valid for responses still using it"
        );
        std::fs::remove_file(&path).unwrap();
        assert!(
            cached_map(&path, 100_000).is_err(),
            "a deleted blob is not served"
        );
        expire_maps(Duration::ZERO);
        assert!(!MAPS.lock().unwrap().contains_key(&path));
    }

    #[tokio::test]
    async fn mapped_and_plain_writes_arrive_in_order_and_intact() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let (_dir, f) = temp_file(&data);
        let bytes = map_file(f, data.len() as u64).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut w = SendfileStream::new(TcpStream::connect(addr).await.unwrap(), true);
        let mut want = b"HEAD".to_vec();
        // A vectored write mixing a plain buffer and a mapped one, like hyper's headers + body.
        let mid = bytes.slice(10..2_000_010);
        let mut bufs = vec![io::IoSlice::new(b"HEAD"), io::IoSlice::new(&mid)];
        let mut left = 4 + mid.len();
        let mut skip = 0usize;
        while left > 0 {
            let n = w.write_vectored(&bufs).await.unwrap();
            assert!(n > 0);
            left -= n;
            skip += n;
            let (h, m) = (4usize.saturating_sub(skip), skip.saturating_sub(4));
            bufs = vec![
                io::IoSlice::new(&b"HEAD"[4 - h..]),
                io::IoSlice::new(&mid[m..]),
            ];
        }
        want.extend_from_slice(&data[10..2_000_010]);
        w.write_all(&bytes[2_000_010..]).await.unwrap();
        want.extend_from_slice(&data[2_000_010..]);
        w.write_all(b"TAIL").await.unwrap();
        want.extend_from_slice(b"TAIL");
        w.shutdown().await.unwrap();
        drop(w);
        let got = reader.await.unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "bytes differ");
    }
}
