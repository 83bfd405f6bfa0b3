//! Test helpers: a tar writer that can produce hostile archives (names with `..`, absolute
//! names, arbitrary link targets), which the `tar` crate's safe setters refuse to write.

use std::io::Write;

#[derive(Clone, Debug)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(Vec<u8>),
    Hardlink(Vec<u8>),
    Char(u32, u32),
    Fifo,
}

#[derive(Clone, Debug)]
pub struct Ent {
    pub name: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub pax: Vec<(String, Vec<u8>)>,
}

impl Ent {
    pub fn new(name: impl AsRef<[u8]>, kind: Kind) -> Ent {
        let mode = match kind {
            Kind::Dir => 0o755,
            Kind::Symlink(_) => 0o777,
            _ => 0o644,
        };
        Ent {
            name: name.as_ref().to_vec(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
            pax: Vec::new(),
        }
    }
    pub fn file(name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> Ent {
        Ent::new(name, Kind::File(data.as_ref().to_vec()))
    }
    pub fn dir(name: impl AsRef<[u8]>) -> Ent {
        Ent::new(name, Kind::Dir)
    }
    pub fn symlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Ent {
        Ent::new(name, Kind::Symlink(target.as_ref().to_vec()))
    }
    pub fn hardlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Ent {
        Ent::new(name, Kind::Hardlink(target.as_ref().to_vec()))
    }
    pub fn mode(mut self, m: u32) -> Ent {
        self.mode = m;
        self
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> Ent {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn mtime(mut self, t: u64) -> Ent {
        self.mtime = t;
        self
    }
    pub fn pax(mut self, k: &str, v: impl AsRef<[u8]>) -> Ent {
        self.pax.push((k.to_string(), v.as_ref().to_vec()));
        self
    }
}

/// Writes the entries as a tar stream. Names and link targets longer than the header fields
/// go into PAX records; shorter ones are copied into the header bytes verbatim (no checks).
pub fn tar_of(entries: &[Ent]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut pax: Vec<(String, Vec<u8>)> = e.pax.clone();
        let mut h = tar::Header::new_ustar();
        let (ty, data, link): (tar::EntryType, &[u8], &[u8]) = match &e.kind {
            Kind::File(d) => (tar::EntryType::Regular, d, b""),
            Kind::Dir => (tar::EntryType::Directory, b"", b""),
            Kind::Symlink(t) => (tar::EntryType::Symlink, b"", t),
            Kind::Hardlink(t) => (tar::EntryType::Link, b"", t),
            Kind::Char(..) => (tar::EntryType::Char, b"", b""),
            Kind::Fifo => (tar::EntryType::Fifo, b"", b""),
        };
        if let Kind::Char(ma, mi) = e.kind {
            h.set_device_major(ma).unwrap();
            h.set_device_minor(mi).unwrap();
        }
        h.set_entry_type(ty);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(data.len() as u64);
        {
            let old = h.as_old_mut();
            if e.name.len() <= old.name.len() {
                old.name[..e.name.len()].copy_from_slice(&e.name);
            } else {
                pax.push(("path".into(), e.name.clone()));
                old.name[..10].copy_from_slice(b"longname!!");
            }
            if link.len() <= old.linkname.len() {
                old.linkname[..link.len()].copy_from_slice(link);
            } else {
                pax.push(("linkpath".into(), link.to_vec()));
            }
        }
        h.set_cksum();
        if !pax.is_empty() {
            b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .unwrap();
        }
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `data` gzipped (fast level), as a registry or `docker save` would ship a layer.
pub fn gz(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
