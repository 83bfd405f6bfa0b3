//! Streaming a layer blob into the store: the bytes of a registry download (compressed with
//! gzip or zstd, or plain) are stored in the content store *and* extracted into a layer
//! snapshot in one pass, with both digests verified — the blob's sha256 (against the
//! manifest's descriptor) and the uncompressed tar's sha256 (against the config's diff ID).
//! Nothing is written twice and no temporary copy of the blob or the tar is made.
//!
//! ```text
//!  reader ──► tee: sha256 + content/ingest/<random> ──► decompress ──► channel ──┐
//!  (caller's thread)                                                              │
//!                          (second thread) tar apply into overlay2/.tmp-*/diff ◄──┘
//! ```
//!
//! Decompression and extraction run on two threads (each is roughly half of the CPU work of
//! a pull), so even a single-layer image uses both cores of a small machine. If either side
//! fails the other stops at once; the staging directory and the ingest file are removed, so
//! a failed or interrupted pull leaves nothing behind (and a crash leaves only leftovers that
//! [`crate::store::ImageStore::open`] removes).
//!
//! The result is a [`crate::layer::StagedLayer`] plus the stored blob; the caller commits the
//! staged layers of an image in order with [`crate::layer::LayerStore::commit_staged`].

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::cas::{BlobInfo, CasError, Ingest};
use crate::compress::{self, Compression};
use crate::digest::Digest;
use crate::error::ImageError;
use crate::layer::{DiffId, LayerError, LayerPin, StagedLayer};
use crate::store::ImageStore;

/// Size of the pieces handed from the decompressing thread to the extracting thread.
const PIPE_CHUNK: usize = 256 * 1024;
/// How many pieces may wait in between (bounds memory to about 2 MiB per layer).
const PIPE_DEPTH: usize = 8;

/// A layer blob that was stored and extracted (not yet committed as a layer).
#[derive(Debug)]
pub struct IngestedLayer {
    /// The extracted layer, to be committed with `LayerStore::commit_staged`.
    pub staged: StagedLayer,
    /// The blob as stored in the content store.
    pub blob: BlobInfo,
    /// Keeps the blob from garbage collection until the image is recorded.
    pub blob_pin: LayerPin,
    /// The compression the blob was found to use.
    pub compression: Compression,
}

/// What to check while ingesting a blob.
#[derive(Debug, Clone, Copy)]
pub struct IngestExpect<'a> {
    /// The blob's digest (from the manifest).
    pub digest: &'a Digest,
    /// The blob's size (from the manifest); more bytes than this are refused at once.
    pub size: Option<u64>,
    /// The uncompressed tar's digest (from the image config).
    pub diff_id: Option<&'a DiffId>,
}

impl ImageStore {
    /// Stores the blob read from `r` and extracts it into a staged layer at the same time.
    /// `progress` is called with the number of blob bytes consumed so far (from the calling
    /// thread). On any failure — a read error, a digest, size or diff ID mismatch, an unsafe
    /// tar entry — nothing is kept.
    pub fn ingest_layer(
        &self,
        r: &mut dyn Read,
        expect: IngestExpect<'_>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<IngestedLayer, ImageError> {
        let blob_pin = self.pin_blob(expect.digest);
        let ingest = self.content().ingest(expect.digest.algorithm())?;
        let mut tee = Tee {
            inner: r,
            ingest: Some(ingest),
            limit: expect.size,
            count: 0,
            progress,
            failure: None,
            failed: false,
        };
        let (compression, staged) = match self.extract_pipelined(&mut tee, expect.digest) {
            Ok(x) => x,
            Err(e) => {
                // A corrupt blob often breaks decompression or the tar before its digest can
                // be checked: read the rest (within the announced size) so a digest mismatch
                // is reported as such rather than as a broken archive.
                if !tee.failed {
                    if let Some(mismatch) = tee.verify_rest(expect.digest) {
                        return Err(mismatch);
                    }
                }
                return Err(e);
            }
        };
        let ingest = tee
            .ingest
            .take()
            .ok_or_else(|| ImageError::Internal("blob ingest lost".into()))?;
        let blob = ingest.commit_deferred(
            self.content(),
            Some(expect.digest),
            expect.size,
            self.pending(),
        )?;
        check_diff_id(&staged, expect.diff_id)?;
        Ok(IngestedLayer {
            staged,
            blob,
            blob_pin,
            compression,
        })
    }

    /// Extracts a blob that is already in the content store into a staged layer (a layer
    /// whose snapshot was removed while its blob was kept).
    pub fn stage_stored_blob(
        &self,
        blob: &Digest,
        expected_diff_id: Option<&DiffId>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<IngestedLayer, ImageError> {
        let blob_pin = self.pin_blob(blob);
        let size = self.content().size(blob)?;
        let f = self.content().open_blob(blob)?;
        let mut counted = Counted {
            inner: f,
            count: 0,
            progress,
        };
        let (compression, staged) = self.extract_pipelined(&mut counted, blob)?;
        check_diff_id(&staged, expected_diff_id)?;
        Ok(IngestedLayer {
            staged,
            blob: BlobInfo {
                digest: blob.clone(),
                size,
            },
            blob_pin,
            compression,
        })
    }

    /// Decompresses `r` on this thread and extracts the tar on a second one. `r` is read to
    /// its end (so a tee sees the whole blob).
    fn extract_pipelined<R: Read + TeeFailure>(
        &self,
        r: &mut R,
        blob: &Digest,
    ) -> Result<(Compression, StagedLayer), ImageError> {
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(PIPE_DEPTH);
        let layers = self.layers();
        std::thread::scope(|s| {
            let extractor = s.spawn(move || {
                let mut pipe = PipeReader {
                    rx,
                    cur: Vec::new(),
                    pos: 0,
                };
                layers.stage(&mut pipe)
            });
            let produced = produce(r, &tx);
            // Closing the channel ends the extractor's stream (with an error if we failed).
            if let Err(e) = &produced {
                let _ = tx.send(Err(io::Error::other(e.to_string())));
            }
            drop(tx);
            let extracted = extractor
                .join()
                .map_err(|_| ImageError::Internal("layer extraction thread panicked".into()))?;
            // Our own failure is the cause when both sides failed.
            if let Some(e) = r.failure() {
                return Err(e);
            }
            let compression = match produced {
                Ok(c) => c,
                Err(e) => {
                    let hint = match e.kind() {
                        io::ErrorKind::InvalidData
                        | io::ErrorKind::InvalidInput
                        | io::ErrorKind::UnexpectedEof => "; the blob is corrupt or truncated",
                        _ => "",
                    };
                    return Err(ImageError::InvalidInput(format!("layer {blob}: {e}{hint}")));
                }
            };
            let staged = extracted.map_err(|e| match e {
                LayerError::Apply(a) if a.is_input_error() => {
                    ImageError::InvalidInput(format!("layer {blob}: {a}"))
                }
                other => other.into(),
            })?;
            Ok((compression, staged))
        })
    }
}

/// Refuses a staged layer whose diff ID is not the expected one.
fn check_diff_id(staged: &StagedLayer, expected: Option<&DiffId>) -> Result<(), ImageError> {
    match expected {
        Some(want) if *want != staged.stats.diff_id => Err(LayerError::DiffIdMismatch {
            expected: want.clone(),
            actual: staged.stats.diff_id.clone(),
        }
        .into()),
        _ => Ok(()),
    }
}

/// Reads `r` through the right decoder and sends the uncompressed bytes down the pipe; then
/// reads whatever follows the compressed stream so every byte of the blob is consumed.
fn produce<R: Read>(r: &mut R, tx: &SyncSender<io::Result<Vec<u8>>>) -> io::Result<Compression> {
    let compression;
    {
        let (kind, mut dec) = compress::decompress(&mut *r)?;
        compression = kind;
        loop {
            let mut buf = vec![0u8; PIPE_CHUNK];
            let mut filled = 0;
            // Fill whole chunks: fewer, larger hand-overs.
            while filled < PIPE_CHUNK {
                match dec.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            if filled == 0 {
                break;
            }
            buf.truncate(filled);
            if tx.send(Ok(buf)).is_err() {
                // The extractor stopped (it failed); its error is reported.
                return Ok(compression);
            }
        }
    }
    // Trailing bytes after the compressed stream still belong to the blob (and its digest).
    io::copy(r, &mut io::sink())?;
    Ok(compression)
}

/// The extractor's side of the pipe.
struct PipeReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Lets the pipeline ask the source for the error behind a failed read (a tee that could not
/// write the blob, or got more bytes than the manifest announced).
trait TeeFailure {
    fn failure(&mut self) -> Option<ImageError>;
}

/// Copies everything read into the content store ingest, enforcing the size limit.
struct Tee<'a> {
    inner: &'a mut dyn Read,
    ingest: Option<Ingest>,
    limit: Option<u64>,
    count: u64,
    progress: &'a mut dyn FnMut(u64),
    failure: Option<ImageError>,
    /// The tee itself failed (size limit, disk): no point reading further.
    failed: bool,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Ok(0);
        }
        self.count += n as u64;
        if let Some(limit) = self.limit {
            if self.count > limit {
                let e = CasError::SizeMismatch {
                    digest: "blob".into(),
                    expected: limit,
                    actual: self.count,
                };
                let msg =
                    format!("the registry sent more than the {limit} bytes the manifest announced");
                self.failure = Some(ImageError::InvalidInput(format!("{msg} ({e})")));
                self.failed = true;
                return Err(io::Error::other(msg));
            }
        }
        if let Some(ing) = self.ingest.as_mut() {
            if let Err(e) = ing.write(&buf[..n]) {
                let msg = e.to_string();
                self.failure = Some(e.into());
                self.failed = true;
                return Err(io::Error::other(msg));
            }
        }
        (self.progress)(self.count);
        Ok(n)
    }
}

impl Tee<'_> {
    /// Reads what is left of the blob and compares its digest; `Some` with the mismatch
    /// error when the blob is not what the manifest promised. Nothing is stored.
    fn verify_rest(&mut self, expected: &Digest) -> Option<ImageError> {
        let mut sink = io::sink();
        if io::copy(self, &mut sink).is_err() {
            return None;
        }
        let (actual, _) = self.ingest.take()?.discard();
        (actual != *expected).then(|| {
            CasError::DigestMismatch {
                expected: expected.clone(),
                actual,
            }
            .into()
        })
    }
}

impl TeeFailure for Tee<'_> {
    fn failure(&mut self) -> Option<ImageError> {
        self.failure.take()
    }
}

/// A reader that reports progress (for blobs already in the store).
struct Counted<'a, R> {
    inner: R,
    count: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        (self.progress)(self.count);
        Ok(n)
    }
}

impl<R> TeeFailure for Counted<'_, R> {
    fn failure(&mut self) -> Option<ImageError> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{gz, tar_of, Ent};

    fn ingest_is_empty(root: &std::path::Path) -> bool {
        std::fs::read_dir(root.join("content/ingest"))
            .unwrap()
            .next()
            .is_none()
    }

    fn no_staging(root: &std::path::Path) -> bool {
        std::fs::read_dir(root.join("overlay2"))
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.'))
    }

    #[test]
    fn stores_and_extracts_each_compression() {
        let d = tempfile::tempdir().unwrap();
        let store = ImageStore::open(d.path()).unwrap();
        let entries: Vec<Ent> = (0..50)
            .map(|i| Ent::file(format!("dir/f{i}"), vec![b'a' + (i % 26) as u8; 40_000]))
            .collect();
        let tar = tar_of(&entries);
        let diff_id = Digest::sha256_of(&tar);
        for (blob, kind) in [
            (gz(&tar), Compression::Gzip),
            (zstd::encode_all(&tar[..], 3).unwrap(), Compression::Zstd),
            (tar.clone(), Compression::None),
        ] {
            let digest = Digest::sha256_of(&blob);
            let mut seen = 0;
            let got = store
                .ingest_layer(
                    &mut &blob[..],
                    IngestExpect {
                        digest: &digest,
                        size: Some(blob.len() as u64),
                        diff_id: Some(&diff_id),
                    },
                    &mut |n| seen = n,
                )
                .unwrap();
            assert_eq!(seen, blob.len() as u64);
            assert_eq!(got.compression, kind);
            assert_eq!(got.blob.digest, digest);
            assert_eq!(store.content().read(&digest).unwrap(), blob);
            assert_eq!(got.staged.stats.diff_id, diff_id);
            assert!(got.staged.path().join("diff/dir/f7").is_file());
            let applied = store
                .layers()
                .commit_staged(got.staged, None, Some(&diff_id))
                .unwrap();
            assert_eq!(applied.meta.chain_id, diff_id);
        }
        assert!(ingest_is_empty(d.path()));
        assert!(no_staging(d.path()));
    }

    #[test]
    fn wrong_digest_size_or_diff_id_keeps_nothing() {
        let d = tempfile::tempdir().unwrap();
        let store = ImageStore::open(d.path()).unwrap();
        let tar = tar_of(&[Ent::file("a", "1")]);
        let blob = gz(&tar);
        let digest = Digest::sha256_of(&blob);
        let wrong = Digest::sha256_of(b"nope");
        let err = store
            .ingest_layer(
                &mut &blob[..],
                IngestExpect {
                    digest: &wrong,
                    size: None,
                    diff_id: None,
                },
                &mut |_| {},
            )
            .unwrap_err();
        assert!(err.to_string().contains(&wrong.to_string()), "{err}");
        let err = store
            .ingest_layer(
                &mut &blob[..],
                IngestExpect {
                    digest: &digest,
                    size: Some(blob.len() as u64 - 1),
                    diff_id: None,
                },
                &mut |_| {},
            )
            .unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
        let err = store
            .ingest_layer(
                &mut &blob[..],
                IngestExpect {
                    digest: &digest,
                    size: None,
                    diff_id: Some(&wrong),
                },
                &mut |_| {},
            )
            .unwrap_err();
        assert!(err.to_string().contains("diff ID mismatch"), "{err}");
        assert!(store.content().list().unwrap().iter().all(|b| *b != wrong));
        assert!(ingest_is_empty(d.path()));
        assert!(no_staging(d.path()));
    }

    #[test]
    fn corrupt_blobs_are_reported_as_digest_mismatches() {
        let d = tempfile::tempdir().unwrap();
        let store = ImageStore::open(d.path()).unwrap();
        let tar = tar_of(&[Ent::file("a", "1"), Ent::file("b", vec![5u8; 5000])]);
        let digest = Digest::sha256_of(&tar);
        let mut bad = tar.clone();
        bad[100] ^= 1; // inside the first header: the tar itself breaks
        let err = store
            .ingest_layer(
                &mut &bad[..],
                IngestExpect {
                    digest: &digest,
                    size: Some(bad.len() as u64),
                    diff_id: None,
                },
                &mut |_| {},
            )
            .unwrap_err();
        assert!(
            matches!(err, ImageError::Cas(CasError::DigestMismatch { .. })),
            "{err}"
        );
        assert!(ingest_is_empty(d.path()));
        assert!(no_staging(d.path()));
    }

    #[test]
    fn hostile_tar_and_broken_streams_keep_nothing() {
        let d = tempfile::tempdir().unwrap();
        let store = ImageStore::open(d.path()).unwrap();
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let evil = tar_of(&[Ent::file("ok", "1"), Ent::file("../../outside/x", "2")]);
        let blob = gz(&evil);
        let digest = Digest::sha256_of(&blob);
        let err = store
            .ingest_layer(
                &mut &blob[..],
                IngestExpect {
                    digest: &digest,
                    size: None,
                    diff_id: None,
                },
                &mut |_| {},
            )
            .unwrap_err();
        assert!(err.to_string().contains(".."), "{err}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        // truncated gzip
        let good = gz(&tar_of(&[Ent::file("big", vec![7u8; 300_000])]));
        let cut = &good[..good.len() / 2];
        let digest = Digest::sha256_of(cut);
        assert!(store
            .ingest_layer(
                &mut &cut[..],
                IngestExpect {
                    digest: &digest,
                    size: None,
                    diff_id: None,
                },
                &mut |_| {},
            )
            .is_err());
        // a reader that fails midway (connection reset)
        struct Reset<'a>(&'a [u8], usize);
        impl Read for Reset<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.1 >= self.0.len() / 2 {
                    return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
                }
                let n = buf.len().min(1000).min(self.0.len() - self.1);
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let digest = Digest::sha256_of(&good);
        let err = store
            .ingest_layer(
                &mut Reset(&good, 0),
                IngestExpect {
                    digest: &digest,
                    size: None,
                    diff_id: None,
                },
                &mut |_| {},
            )
            .unwrap_err();
        assert!(err.to_string().contains("reset"), "{err}");
        assert!(store.content().list().unwrap().is_empty());
        assert!(ingest_is_empty(d.path()));
        assert!(no_staging(d.path()));
    }

    #[test]
    fn stages_a_stored_blob() {
        let d = tempfile::tempdir().unwrap();
        let store = ImageStore::open(d.path()).unwrap();
        let tar = tar_of(&[Ent::file("x", "y")]);
        let blob = gz(&tar);
        let digest = store.content().put_bytes(&blob).unwrap();
        let got = store
            .stage_stored_blob(&digest, Some(&Digest::sha256_of(&tar)), &mut |_| {})
            .unwrap();
        assert_eq!(got.blob.size, blob.len() as u64);
        assert!(got.staged.path().join("diff/x").is_file());
    }
}
