//! Deferred flushes of pulled layers and blobs (`<data-root>/pending-sync/`).
//!
//! A layer is extracted through the page cache; making it durable before it becomes visible
//! costs a `syncfs` (the whole extracted tree) — about a fifth of a pull on a small machine.
//! Pulls therefore make a layer (and its blob) visible at once and flush in the background,
//! without giving up the store's promise that it always loads and never shows a half layer:
//!
//! * Before a layer or blob is renamed into place, a durable marker naming it and the current
//!   boot (`/proc/sys/kernel/random/boot_id`) is written here.
//! * After the pull, [`Pending::flush`] runs `syncfs` on the data root and then removes the
//!   markers it covered.
//! * The page cache survives anything that happens to the daemon process — a crash or
//!   `kill -9` loses nothing that was written. Only a crash of the kernel or the machine can,
//!   and that always starts a new boot with a new boot ID. So when the store opens,
//!   [`Pending::recover`] finds markers of the current boot (the daemon died, the data is
//!   intact: flush now) or of an earlier boot (the machine went down before the flush: the
//!   layer may be incomplete, so it is removed — the images using it are dropped and can be
//!   pulled again — and the blob is kept only if it still hashes to its digest).
//!
//! When the boot ID cannot be read, nothing is deferred: layers are flushed before they
//! become visible, as `load` and `import` always do.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::cas::ContentStore;
use crate::digest::{Digest, DigestReader};
use crate::fsutil::{self, fsync_dir};
use crate::layer::{ChainId, LayerStore};

const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// Something committed without a flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unflushed {
    /// A layer snapshot (`overlay2/<chain-id-hex>`).
    Layer(ChainId),
    /// A blob in the content store.
    Blob(Digest),
}

impl Unflushed {
    fn marker_name(&self) -> String {
        match self {
            Unflushed::Layer(c) => format!("layer-{}-{}", c.algorithm().as_str(), c.hex()),
            Unflushed::Blob(d) => format!("blob-{}-{}", d.algorithm().as_str(), d.hex()),
        }
    }

    fn from_marker_name(name: &str) -> Option<Unflushed> {
        let (kind, rest) = name.split_once('-')?;
        let (alg, hex) = rest.split_once('-')?;
        let d = Digest::parse(&format!("{alg}:{hex}")).ok()?;
        match kind {
            "layer" => Some(Unflushed::Layer(d)),
            "blob" => Some(Unflushed::Blob(d)),
            _ => None,
        }
    }
}

/// The deferred-flush journal of one data root.
#[derive(Debug)]
pub struct Pending {
    dir: PathBuf,
    data_root: PathBuf,
    boot: Option<String>,
}

/// What [`Pending::recover`] did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Layers removed because the machine went down before they were flushed.
    pub lost_layers: HashSet<ChainId>,
    /// Blobs removed for the same reason (they no longer matched their digest).
    pub lost_blobs: Vec<Digest>,
    /// Markers of the current boot that were flushed and cleared.
    pub flushed: usize,
}

impl Pending {
    /// Opens (creating) `<data_root>/pending-sync`.
    pub fn open(data_root: &Path) -> io::Result<Pending> {
        let dir = data_root.join("pending-sync");
        fs::create_dir_all(&dir)?;
        fsutil::clean_atomic_leftovers(&dir)?;
        let boot = fs::read_to_string(BOOT_ID)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        if boot.is_none() {
            tracing::warn!("cannot read {BOOT_ID}: pulled layers are flushed before use");
        }
        Ok(Pending {
            dir,
            data_root: data_root.to_path_buf(),
            boot,
        })
    }

    #[cfg(test)]
    fn with_boot(data_root: &Path, boot: Option<&str>) -> io::Result<Pending> {
        let mut p = Pending::open(data_root)?;
        p.boot = boot.map(str::to_string);
        Ok(p)
    }

    /// Whether commits may be deferred (the boot ID is known).
    pub fn enabled(&self) -> bool {
        self.boot.is_some()
    }

    /// Durably records that `item` is about to be committed without a flush. Must return
    /// before the item is renamed into place.
    pub fn mark(&self, item: &Unflushed) -> io::Result<()> {
        let boot = self
            .boot
            .as_deref()
            .ok_or_else(|| io::Error::other("boot ID unknown: flushes cannot be deferred"))?;
        // A nonce after the boot ID: a flush removes a marker only if it is unchanged, so a
        // marker rewritten for the same item while the flush ran (removed and pulled again)
        // is kept for the next flush.
        let content = format!("{boot} {}", fsutil::random_hex(8));
        fsutil::write_atomic(&self.dir, &item.marker_name(), content.as_bytes())
    }

    fn markers(&self) -> io::Result<Vec<(String, Option<Unflushed>)>> {
        let mut out = Vec::new();
        for ent in fs::read_dir(&self.dir)? {
            let name = ent?.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let item = Unflushed::from_marker_name(&name);
            out.push((name, item));
        }
        Ok(out)
    }

    /// Flushes the data root's file system and clears the markers written before the flush
    /// started. Returns how many were cleared.
    pub fn flush(&self) -> io::Result<usize> {
        let names: Vec<(String, Vec<u8>)> = self
            .markers()?
            .into_iter()
            .filter_map(|(name, _)| {
                let content = fs::read(self.dir.join(&name)).ok()?;
                Some((name, content))
            })
            .collect();
        if names.is_empty() {
            return Ok(0);
        }
        let root = fs::File::open(&self.data_root)?;
        rustix::fs::syncfs(&root)?;
        for (name, content) in &names {
            let path = self.dir.join(name);
            if fs::read(&path).ok().as_ref() != Some(content) {
                continue; // rewritten meanwhile: covered by the next flush
            }
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        // Not strictly needed (a marker that comes back after a power failure only costs a
        // needless re-pull), but keeps that rare.
        fsync_dir(&self.dir)?;
        Ok(names.len())
    }

    /// Settles the markers left by an earlier run (see the module docs).
    pub fn recover(&self, cas: &ContentStore, layers: &LayerStore) -> io::Result<Recovery> {
        let mut rec = Recovery::default();
        let mut same_boot = false;
        for (name, item) in self.markers()? {
            let path = self.dir.join(&name);
            let content = fs::read_to_string(&path).unwrap_or_default();
            let boot = content.split_whitespace().next().unwrap_or_default();
            let intact = self.boot.is_some() && self.boot.as_deref() == Some(boot);
            if intact {
                same_boot = true;
                continue;
            }
            match item {
                Some(Unflushed::Layer(c)) => {
                    if layers
                        .remove_unflushed(&c)
                        .map_err(|e| io::Error::other(e.to_string()))?
                    {
                        tracing::warn!(
                            chain_id = %c,
                            "removing a layer that was not yet on disk when the machine went down; pull its images again"
                        );
                        rec.lost_layers.insert(c);
                    }
                }
                Some(Unflushed::Blob(d)) => {
                    if cas.exists(&d) && !blob_intact(cas, &d) {
                        tracing::warn!(digest = %d, "removing a blob damaged when the machine went down");
                        cas.delete(&d)
                            .map_err(|e| io::Error::other(e.to_string()))?;
                        rec.lost_blobs.push(d);
                    }
                }
                None => tracing::warn!(marker = %name, "ignoring an unknown pending-sync marker"),
            }
            fs::remove_file(&path)?;
        }
        if same_boot {
            rec.flushed = self.flush()?;
        } else {
            fsync_dir(&self.dir)?;
        }
        Ok(rec)
    }
}

/// Whether the stored blob still hashes to its digest.
fn blob_intact(cas: &ContentStore, d: &Digest) -> bool {
    let Ok(f) = cas.open_blob(d) else {
        return false;
    };
    let mut r = DigestReader::new(io::BufReader::with_capacity(1 << 20, f), d.algorithm());
    if io::copy(&mut r, &mut io::sink()).is_err() {
        return false;
    }
    r.finish().0 == *d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_names_round_trip_and_junk_is_ignored() {
        let d = Digest::sha256_of(b"x");
        for item in [Unflushed::Layer(d.clone()), Unflushed::Blob(d.clone())] {
            assert_eq!(
                Unflushed::from_marker_name(&item.marker_name()),
                Some(item.clone())
            );
        }
        for junk in [
            "",
            "layer",
            "layer-sha256",
            "layer-sha256-zz",
            "tree-sha256-00",
            "a-b-c",
        ] {
            assert_eq!(Unflushed::from_marker_name(junk), None, "{junk}");
        }
    }

    #[test]
    fn flush_clears_markers_and_recover_keeps_current_boot_work() {
        let (dir, cas, layers, p, c) = fixture();
        p.mark(&Unflushed::Layer(c.clone())).unwrap();
        assert_eq!(p.markers().unwrap().len(), 1);
        // The daemon died and came back in the same boot: nothing is lost.
        let rec = Pending::with_boot(dir.path(), Some("boot-a"))
            .unwrap()
            .recover(&cas, &layers)
            .unwrap();
        assert!(rec.lost_layers.is_empty());
        assert_eq!(rec.flushed, 1);
        assert!(layers.exists(&c));
        assert!(p.markers().unwrap().is_empty());
        assert_eq!(p.flush().unwrap(), 0);
    }

    #[test]
    fn recover_after_a_reboot_drops_unflushed_layers_and_bad_blobs() {
        let (dir, cas, layers, p, c) = fixture();
        let good = cas.put_bytes(b"good blob").unwrap();
        let bad = cas.put_bytes(b"bad blob").unwrap();
        // A blob whose bytes did not all reach the disk.
        let bad_path = cas.path(&bad);
        let mut perm = fs::metadata(&bad_path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        fs::set_permissions(&bad_path, perm).unwrap();
        fs::write(&bad_path, b"bad bl\0\0").unwrap();
        for item in [
            Unflushed::Layer(c.clone()),
            Unflushed::Blob(good.clone()),
            Unflushed::Blob(bad.clone()),
        ] {
            p.mark(&item).unwrap();
        }
        let rec = Pending::with_boot(dir.path(), Some("boot-b"))
            .unwrap()
            .recover(&cas, &layers)
            .unwrap();
        assert!(rec.lost_layers.contains(&c));
        assert!(!layers.exists(&c));
        assert_eq!(rec.lost_blobs, vec![bad.clone()]);
        assert!(cas.exists(&good));
        assert!(!cas.exists(&bad));
        assert!(p.markers().unwrap().is_empty());
    }

    /// A store with one layer, and a journal of boot "boot-a".
    fn fixture() -> (
        tempfile::TempDir,
        ContentStore,
        LayerStore,
        Pending,
        ChainId,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cas = ContentStore::open(dir.path()).unwrap();
        let layers = LayerStore::open(dir.path()).unwrap();
        let p = Pending::with_boot(dir.path(), Some("boot-a")).unwrap();
        let c = layers
            .apply(None, &mut &tiny_tar()[..], None)
            .unwrap()
            .meta
            .chain_id
            .clone();
        (dir, cas, layers, p, c)
    }

    fn tiny_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "hello.txt", &b"hello"[..]).unwrap();
        b.into_inner().unwrap()
    }
}
