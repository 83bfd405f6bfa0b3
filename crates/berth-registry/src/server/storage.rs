//! The registry's on-disk store.
//!
//! ```text
//! <root>/
//!   blobs/<alg>/<hex[0..2]>/<hex>          every blob and manifest, shared by all repositories
//!   repositories/<name>/
//!     _layers/<alg>/<hex>                  empty file: the repository may serve this blob
//!     _manifests/revisions/<alg>/<hex>     the manifest's media type: the repository has it
//!     _manifests/tags/<tag>                the digest the tag points at
//!     _referrers/<alg>/<subject hex>/<alg>-<hex>   JSON descriptor of a manifest whose subject it is
//!   uploads/<uuid>/data, uploads/<uuid>/state.json   uploads in progress
//!   tmp/                                   temporary files; emptied at start
//!   lock                                   flock'ed by the server and by gc
//! ```
//!
//! Every file that has content is written to `tmp/`, fsync'ed and renamed into place (then
//! the directory is fsync'ed), so a crash never leaves a partial blob, manifest, tag or link.
//! Repository path components can't start with `_`, so `_layers` & co never clash with names.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use berth_image::digest::{Algorithm, Digest, DigestReader};
use serde::{Deserialize, Serialize};

use super::manifest::Descriptor;

/// The store rooted at one directory.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

/// What is kept about an upload between requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadState {
    pub repository: String,
    pub started_at: String,
}

/// One repository's manifest revision as found on disk.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    // getrandom only fails when the OS has no entropy source at all.
    if getrandom::fill(&mut b).is_err() {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i % 16) * 8)) as u8 ^ (std::process::id() as u8);
        }
    }
    hex::encode(b)
}

/// A fresh upload id in UUID form.
pub fn new_upload_id() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Whether `s` is an upload id this registry could have made (also keeps paths safe).
pub fn valid_upload_id(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// fsync a directory so a rename or create in it survives a crash of the machine.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Storage {
    /// Opens (creating if needed) the store at `root` and empties its tmp directory.
    pub fn open(root: &Path) -> io::Result<Storage> {
        let s = Storage {
            root: root.to_path_buf(),
        };
        for d in ["blobs", "repositories", "uploads", "tmp"] {
            fs::create_dir_all(root.join(d))?;
        }
        if let Ok(rd) = fs::read_dir(root.join("tmp")) {
            for e in rd.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens the lock file; the caller flocks it.
    pub fn lock_file(&self) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("lock"))
    }

    fn tmp_path(&self) -> PathBuf {
        self.root.join("tmp").join(random_hex(12))
    }

    /// Creates `dir` and any missing parents, fsyncing each new directory's parent.
    fn ensure_dir(&self, dir: &Path) -> io::Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            self.ensure_dir(parent)?;
        }
        match fs::create_dir(dir) {
            Ok(()) => {
                if let Some(parent) = dir.parent() {
                    sync_dir(parent)?;
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes `bytes` to `path` atomically and durably (tmp, fsync, rename, fsync dir).
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.tmp_path();
        let res = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            let parent = path
                .parent()
                .ok_or_else(|| io::Error::other("path without parent"))?;
            self.ensure_dir(parent)?;
            fs::rename(&tmp, path)?;
            sync_dir(parent)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }

    // ---------------------------------------------------------------- blobs

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().as_str())
            .join(&d.hex()[..2])
            .join(d.hex())
    }

    /// Size of a stored blob, `None` if absent.
    pub fn blob_size(&self, d: &Digest) -> io::Result<Option<u64>> {
        match fs::metadata(self.blob_path(d)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Moves a complete, verified file into the blob store (fsync, rename, fsync dir).
    /// If the blob is already there the file is simply removed: same digest, same bytes.
    pub fn commit_blob_file(&self, file: &Path, d: &Digest) -> io::Result<()> {
        let dest = self.blob_path(d);
        if dest.exists() {
            let _ = fs::remove_file(file);
            return Ok(());
        }
        File::open(file)?.sync_all()?;
        let parent = dest
            .parent()
            .ok_or_else(|| io::Error::other("blob path without parent"))?;
        self.ensure_dir(parent)?;
        fs::rename(file, &dest)?;
        sync_dir(parent)
    }

    /// Stores bytes (whose digest the caller computed) as a blob.
    pub fn put_blob_bytes(&self, d: &Digest, bytes: &[u8]) -> io::Result<()> {
        let dest = self.blob_path(d);
        if !dest.exists() {
            self.write_atomic(&dest, bytes)?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- repositories

    pub fn repo_dir(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    /// Whether the repository exists (has ever had a blob or manifest).
    pub fn repo_exists(&self, name: &str) -> bool {
        let d = self.repo_dir(name);
        d.join("_layers").is_dir() || d.join("_manifests").is_dir()
    }

    fn layer_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_layers")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    /// The blob's size if the repository may serve it (linked there and present).
    pub fn repo_blob(&self, name: &str, d: &Digest) -> io::Result<Option<u64>> {
        if !self.layer_link(name, d).exists() {
            return Ok(None);
        }
        self.blob_size(d)
    }

    /// Lets the repository serve a blob already in the store.
    pub fn link_blob(&self, name: &str, d: &Digest) -> io::Result<()> {
        let link = self.layer_link(name, d);
        if link.exists() {
            return Ok(());
        }
        let parent = link
            .parent()
            .ok_or_else(|| io::Error::other("link without parent"))?;
        self.ensure_dir(parent)?;
        // An empty file has no partial state: create is atomic.
        match OpenOptions::new().write(true).create_new(true).open(&link) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        sync_dir(parent)
    }

    /// Removes a blob link; `false` if there was none.
    pub fn unlink_blob(&self, name: &str, d: &Digest) -> io::Result<bool> {
        match fs::remove_file(self.layer_link(name, d)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    // ---------------------------------------------------------------- manifests

    fn revision_path(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests/revisions")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    fn tag_path(&self, name: &str, tag: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests/tags").join(tag)
    }

    fn referrer_dir(&self, name: &str, subject: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_referrers")
            .join(subject.algorithm().as_str())
            .join(subject.hex())
    }

    /// The manifest revision `d` of the repository, if it has it.
    pub fn manifest_by_digest(&self, name: &str, d: &Digest) -> io::Result<Option<StoredManifest>> {
        let media_type = match fs::read_to_string(self.revision_path(name, d)) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(self.blob_size(d)?.map(|size| StoredManifest {
            digest: d.clone(),
            media_type,
            size,
        }))
    }

    /// The digest a tag points at.
    pub fn tag_digest(&self, name: &str, tag: &str) -> io::Result<Option<Digest>> {
        match fs::read_to_string(self.tag_path(name, tag)) {
            Ok(s) => Ok(Digest::parse(s.trim()).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores a validated manifest: blob, revision link, referrer entry, then the tag.
    pub fn put_manifest(
        &self,
        name: &str,
        d: &Digest,
        bytes: &[u8],
        media_type: &str,
        tag: Option<&str>,
        referrer_of: Option<(&Digest, &Descriptor)>,
    ) -> io::Result<()> {
        self.put_blob_bytes(d, bytes)?;
        self.write_atomic(&self.revision_path(name, d), media_type.as_bytes())?;
        if let Some((subject, desc)) = referrer_of {
            let json = serde_json::to_vec(desc).map_err(io::Error::other)?;
            let file = self.referrer_dir(name, subject).join(format!(
                "{}-{}",
                d.algorithm().as_str(),
                d.hex()
            ));
            self.write_atomic(&file, &json)?;
        }
        if let Some(tag) = tag {
            self.write_atomic(&self.tag_path(name, tag), d.to_string().as_bytes())?;
        }
        Ok(())
    }

    /// Deletes a manifest revision, the tags that point at it and its referrer entry.
    pub fn delete_manifest(
        &self,
        name: &str,
        d: &Digest,
        subject: Option<&Digest>,
    ) -> io::Result<bool> {
        match fs::remove_file(self.revision_path(name, d)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        }
        for t in self.tags(name)?.unwrap_or_default() {
            if self.tag_digest(name, &t)?.as_ref() == Some(d) {
                let _ = fs::remove_file(self.tag_path(name, &t));
            }
        }
        if let Some(s) = subject {
            let _ = fs::remove_file(self.referrer_dir(name, s).join(format!(
                "{}-{}",
                d.algorithm().as_str(),
                d.hex()
            )));
        }
        Ok(true)
    }

    /// Deletes a tag only.
    pub fn delete_tag(&self, name: &str, tag: &str) -> io::Result<bool> {
        match fs::remove_file(self.tag_path(name, tag)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// All tags of a repository, sorted; `None` if the repository does not exist.
    pub fn tags(&self, name: &str) -> io::Result<Option<Vec<String>>> {
        if !self.repo_exists(name) {
            return Ok(None);
        }
        let mut out = Vec::new();
        match fs::read_dir(self.repo_dir(name).join("_manifests/tags")) {
            Ok(rd) => {
                for e in rd {
                    let e = e?;
                    if let Some(n) = e.file_name().to_str() {
                        out.push(n.to_string());
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        out.sort();
        Ok(Some(out))
    }

    /// All manifest revisions of a repository.
    pub fn revisions(&self, name: &str) -> io::Result<Vec<Digest>> {
        let mut out = Vec::new();
        let base = self.repo_dir(name).join("_manifests/revisions");
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            match fs::read_dir(base.join(alg.as_str())) {
                Ok(rd) => {
                    for e in rd.flatten() {
                        if let Some(h) = e.file_name().to_str() {
                            if let Ok(d) = Digest::parse(&format!("{}:{h}", alg.as_str())) {
                                out.push(d);
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// All blob links of a repository.
    pub fn layer_links(&self, name: &str) -> io::Result<Vec<Digest>> {
        let mut out = Vec::new();
        let base = self.repo_dir(name).join("_layers");
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            match fs::read_dir(base.join(alg.as_str())) {
                Ok(rd) => {
                    for e in rd.flatten() {
                        if let Some(h) = e.file_name().to_str() {
                            if let Ok(d) = Digest::parse(&format!("{}:{h}", alg.as_str())) {
                                out.push(d);
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The descriptors of the manifests whose subject is `subject`, sorted by digest.
    pub fn referrers(&self, name: &str, subject: &Digest) -> io::Result<Vec<Descriptor>> {
        let mut out = Vec::new();
        match fs::read_dir(self.referrer_dir(name, subject)) {
            Ok(rd) => {
                for e in rd.flatten() {
                    let bytes = fs::read(e.path())?;
                    if let Ok(desc) = serde_json::from_slice::<Descriptor>(&bytes) {
                        // Only list referrers whose manifest is still there.
                        if self.revision_path(name, &desc.digest).exists() {
                            out.push(desc);
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    /// All repository names, sorted.
    pub fn repositories(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let base = self.root.join("repositories");
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let mut is_repo = false;
            for e in rd.flatten() {
                let n = e.file_name();
                let Some(n) = n.to_str() else { continue };
                if n.starts_with('_') {
                    is_repo = true;
                } else if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(e.path());
                }
            }
            if is_repo {
                if let Ok(rel) = dir.strip_prefix(&base) {
                    if let Some(s) = rel.to_str() {
                        out.push(s.to_string());
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    // ---------------------------------------------------------------- uploads

    fn upload_dir(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    pub fn upload_data_path(&self, id: &str) -> PathBuf {
        self.upload_dir(id).join("data")
    }

    /// Starts an upload for `repository`; returns its id.
    pub fn create_upload(&self, repository: &str) -> io::Result<String> {
        let id = new_upload_id();
        let dir = self.upload_dir(&id);
        fs::create_dir(&dir)?;
        File::create(dir.join("data"))?;
        let state = UploadState {
            repository: repository.to_string(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let json = serde_json::to_vec(&state).map_err(io::Error::other)?;
        self.write_atomic(&dir.join("state.json"), &json)?;
        Ok(id)
    }

    /// The upload's state and current size, if it exists and belongs to `repository`.
    pub fn upload(&self, repository: &str, id: &str) -> io::Result<Option<(UploadState, u64)>> {
        if !valid_upload_id(id) {
            return Ok(None);
        }
        let dir = self.upload_dir(id);
        let state: UploadState = match fs::read(dir.join("state.json")) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(s) => s,
                Err(_) => return Ok(None),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if state.repository != repository {
            return Ok(None);
        }
        let size = match fs::metadata(dir.join("data")) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some((state, size)))
    }

    /// Removes an upload and its data.
    pub fn remove_upload(&self, id: &str) -> io::Result<()> {
        if !valid_upload_id(id) {
            return Ok(());
        }
        match fs::remove_dir_all(self.upload_dir(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Hashes an upload's data from the start (after a restart the in-memory hash is gone).
    pub fn hash_upload(&self, id: &str, alg: Algorithm) -> io::Result<(Digest, u64)> {
        let f = File::open(self.upload_data_path(id))?;
        let mut r = DigestReader::new(io::BufReader::with_capacity(1 << 20, f), alg);
        io::copy(&mut r, &mut io::sink())?;
        let (d, n, _) = r.finish();
        Ok((d, n))
    }

    /// Removes uploads untouched for longer than `expiry`; returns how many.
    pub fn sweep_uploads(&self, expiry: Duration) -> io::Result<usize> {
        let now = SystemTime::now();
        let mut n = 0;
        for e in fs::read_dir(self.root.join("uploads"))?.flatten() {
            let path = e.path();
            let newest = ["data", "state.json"]
                .iter()
                .filter_map(|f| fs::metadata(path.join(f)).and_then(|m| m.modified()).ok())
                .max()
                .or_else(|| e.metadata().and_then(|m| m.modified()).ok());
            // Touched after `now` (a request in flight): not idle at all.
            let idle = match newest {
                Some(t) => now.duration_since(t).unwrap_or(Duration::ZERO),
                None => Duration::MAX,
            };
            if idle >= expiry && fs::remove_dir_all(&path).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Reads a whole (small) blob: manifests.
    pub fn read_blob(&self, d: &Digest, max: u64) -> io::Result<Vec<u8>> {
        let f = File::open(self.blob_path(d))?;
        let mut out = Vec::new();
        f.take(max).read_to_end(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_links_manifests_tags() {
        let t = tempfile::tempdir().unwrap();
        let s = Storage::open(t.path()).unwrap();
        let d = Digest::sha256_of(b"hello");
        s.put_blob_bytes(&d, b"hello").unwrap();
        assert_eq!(s.blob_size(&d).unwrap(), Some(5));
        assert_eq!(s.repo_blob("a/b", &d).unwrap(), None);
        s.link_blob("a/b", &d).unwrap();
        assert_eq!(s.repo_blob("a/b", &d).unwrap(), Some(5));
        assert_eq!(s.repo_blob("a/c", &d).unwrap(), None);
        let m = Digest::sha256_of(b"{}");
        s.put_manifest("a/b", &m, b"{}", "application/x", Some("v1"), None)
            .unwrap();
        assert_eq!(s.tag_digest("a/b", "v1").unwrap(), Some(m.clone()));
        assert_eq!(
            s.manifest_by_digest("a/b", &m).unwrap().unwrap().media_type,
            "application/x"
        );
        assert_eq!(s.tags("a/b").unwrap(), Some(vec!["v1".to_string()]));
        assert_eq!(s.tags("zz").unwrap(), None);
        s.link_blob("a/b/c", &d).unwrap();
        assert_eq!(s.repositories().unwrap(), vec!["a/b", "a/b/c"]);
        assert!(s.delete_manifest("a/b", &m, None).unwrap());
        assert_eq!(s.tags("a/b").unwrap(), Some(vec![]));
        assert!(s.unlink_blob("a/b", &d).unwrap());
        assert!(!s.unlink_blob("a/b", &d).unwrap());
        // Nothing left behind in tmp.
        assert_eq!(fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn uploads_are_scoped_and_swept() {
        let t = tempfile::tempdir().unwrap();
        let s = Storage::open(t.path()).unwrap();
        let id = s.create_upload("r").unwrap();
        assert!(valid_upload_id(&id));
        assert!(s.upload("other", &id).unwrap().is_none());
        assert_eq!(s.upload("r", &id).unwrap().unwrap().1, 0);
        assert!(s.upload("r", "../../etc").unwrap().is_none());
        assert_eq!(s.sweep_uploads(Duration::from_secs(3600)).unwrap(), 0);
        assert_eq!(s.sweep_uploads(Duration::ZERO).unwrap(), 1);
        assert!(s.upload("r", &id).unwrap().is_none());
    }
}
