use super::*;
use crate::testutil::{tar_of, Ent, Kind};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

/// A temp dir with `root/` (the apply target) and `outside/sentinel` next to it.
pub(crate) struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/sentinel"), b"untouched").unwrap();
        Sandbox { dir }
    }
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    pub fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }
    /// Everything in the sandbox except `root/`, with contents and link targets.
    pub fn snapshot_outside(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out.sort();
        out
    }
    pub fn apply(&self, entries: &[Ent]) -> Result<ApplyStats, ApplyError> {
        let data = tar_of(entries);
        apply_tar(&self.root(), &mut &data[..])
    }
}

fn walk(base: &std::path::Path, p: &std::path::Path, out: &mut Vec<String>) {
    for e in fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let path = e.path();
        let rel = path.strip_prefix(base).unwrap().display().to_string();
        if rel == "root" {
            continue;
        }
        let m = fs::symlink_metadata(&path).unwrap();
        if m.file_type().is_symlink() {
            out.push(format!(
                "{rel}:link:{}",
                fs::read_link(&path).unwrap().display()
            ));
        } else if m.is_dir() {
            out.push(format!("{rel}:dir"));
            walk(base, &path, out);
        } else if !m.is_file() {
            out.push(format!("{rel}:special:{:o}", m.mode()));
        } else {
            out.push(format!(
                "{rel}:file:{}:{}",
                m.len(),
                String::from_utf8_lossy(&fs::read(&path).unwrap_or_default())
            ));
        }
    }
}

fn assert_refused(sb: &Sandbox, entries: &[Ent], needle: &str) {
    let before = sb.snapshot_outside();
    let err = sb.apply(entries).expect_err("hostile archive was accepted");
    let msg = err.to_string();
    assert!(
        msg.contains(needle),
        "error {msg:?} does not contain {needle:?}"
    );
    assert_eq!(
        sb.snapshot_outside(),
        before,
        "something outside the target changed"
    );
    assert_eq!(
        fs::read(sb.outside().join("sentinel")).unwrap(),
        b"untouched"
    );
}

#[test]
fn refuses_dotdot_paths() {
    let sb = Sandbox::new();
    assert_refused(
        &sb,
        &[Ent::file("../outside/sentinel", "pwned")],
        "'..' path components",
    );
    assert_refused(
        &sb,
        &[Ent::dir("a/"), Ent::file("a/../../outside/x", "pwned")],
        "'..'",
    );
    assert_refused(&sb, &[Ent::file("a/..", "x")], "\"a/..\"");
}

#[test]
fn refuses_absolute_paths() {
    let sb = Sandbox::new();
    let abs = format!("{}/sentinel", sb.outside().display());
    assert_refused(&sb, &[Ent::file(&abs, "pwned")], "absolute paths");
    assert_refused(&sb, &[Ent::file("/etc/x", "pwned")], "absolute");
}

#[test]
fn refuses_hardlinks_outside_or_missing() {
    let sb = Sandbox::new();
    assert_refused(
        &sb,
        &[Ent::hardlink("passwd", "/etc/passwd")],
        "absolute paths",
    );
    assert_refused(&sb, &[Ent::hardlink("s", "../outside/sentinel")], "'..'");
    assert_refused(&sb, &[Ent::hardlink("s", "nothere")], "does not exist");
    // through a symlink that leaves the layer
    let out = sb.outside().display().to_string();
    assert_refused(
        &sb,
        &[Ent::symlink("o", &out), Ent::hardlink("s", "o/sentinel")],
        "outside the layer",
    );
    // the hard link itself must not have been created in any of these cases
    assert!(fs::symlink_metadata(sb.root().join("s")).is_err());
}

#[test]
fn refuses_writes_through_symlinks_leading_outside() {
    let sb = Sandbox::new();
    let out = sb.outside().display().to_string();
    // absolute symlink, then a file under it
    assert_refused(
        &sb,
        &[Ent::symlink("a", &out), Ent::file("a/file", "pwned")],
        "outside the layer",
    );
    // relative symlink climbing out
    assert_refused(
        &sb,
        &[
            Ent::symlink("b", "../outside"),
            Ent::file("b/sentinel", "pwned"),
        ],
        "outside the layer",
    );
    // a chain of symlinks, the last one climbing out
    assert_refused(
        &sb,
        &[
            Ent::symlink("c1", "c2"),
            Ent::symlink("c2", "c3"),
            Ent::symlink("c3", ".."),
            Ent::file("c1/outside/sentinel", "pwned"),
        ],
        "outside the layer",
    );
    // a directory replaced by a symlink mid-archive
    assert_refused(
        &sb,
        &[
            Ent::dir("d/"),
            Ent::file("d/ok", "fine"),
            Ent::symlink("d", &out),
            Ent::file("d/sentinel", "pwned"),
        ],
        "outside the layer",
    );
    // directory entries and hard links under such a symlink are refused the same way
    assert_refused(
        &sb,
        &[Ent::symlink("e", &out), Ent::dir("e/newdir/")],
        "outside the layer",
    );
    // /proc magic links are not followed either
    assert_refused(
        &sb,
        &[
            Ent::symlink("p", "/proc/self/root/tmp"),
            Ent::file("p/x", "pwned"),
        ],
        "outside the layer",
    );
}

#[test]
fn final_symlink_is_replaced_not_followed() {
    let sb = Sandbox::new();
    let target = format!("{}/sentinel", sb.outside().display());
    let before = sb.snapshot_outside();
    sb.apply(&[
        Ent::symlink("l", &target),
        Ent::file("l", "new content"),
        Ent::symlink("m", &target),
        Ent::hardlink("h", "m"),
        Ent::file("h", "again"),
        Ent::symlink("n", &target),
        Ent::dir("n/"),
    ])
    .unwrap();
    assert_eq!(sb.snapshot_outside(), before);
    assert_eq!(fs::read(sb.root().join("l")).unwrap(), b"new content");
    assert!(fs::symlink_metadata(sb.root().join("m"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(sb.root().join("h")).unwrap(), b"again");
    assert!(fs::symlink_metadata(sb.root().join("n")).unwrap().is_dir());
}

#[test]
fn in_layer_symlinks_are_followed_for_parents() {
    let sb = Sandbox::new();
    sb.apply(&[
        Ent::dir("usr/"),
        Ent::dir("usr/lib/"),
        Ent::symlink("lib", "usr/lib"),
        Ent::file("lib/libc.so", "elf"),
    ])
    .unwrap();
    assert_eq!(fs::read(sb.root().join("usr/lib/libc.so")).unwrap(), b"elf");
}

#[test]
fn metadata_is_applied() {
    if !crate::testutil::is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let sb = Sandbox::new();
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(130));
    let stats = sb
        .apply(&[
            Ent::dir("./").mode(0o755),
            Ent::dir("bin/")
                .mode(0o711)
                .owner(3, 4)
                .mtime(1_600_000_000),
            Ent::file("bin/su", "su-binary").mode(0o4755).owner(0, 0),
            Ent::file("bin/g", "g").mode(0o2711).owner(5, 6),
            Ent::dir("tmp/").mode(0o1777),
            Ent::file("cap", "x")
                .pax(
                    "SCHILY.xattr.security.capability",
                    [1u8, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                )
                .pax("SCHILY.xattr.user.note", "hello")
                .pax("SCHILY.xattr.trusted.overlay.opaque", "y"),
            Ent::file(&long, "long name"),
            Ent::symlink("bin/sh", "busybox").owner(7, 8),
            Ent::hardlink("bin/su2", "bin/su"),
            Ent::new("dev/null", Kind::Char(1, 3)).mode(0o666),
            Ent::new("fifo", Kind::Fifo).mode(0o600),
            Ent::file("bigid", "x")
                .pax("uid", "100000")
                .pax("gid", "200000"),
            Ent::file("frac", "x").pax("mtime", "1700000000.5"),
        ])
        .unwrap();
    let r = sb.root();
    let m = fs::metadata(r.join("bin")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o711);
    assert_eq!((m.uid(), m.gid()), (3, 4));
    assert_eq!(
        m.mtime(),
        1_600_000_000,
        "directory mtime set after its contents"
    );
    let su = fs::metadata(r.join("bin/su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(su.nlink(), 2);
    assert_eq!(
        fs::metadata(r.join("bin/g")).unwrap().permissions().mode() & 0o7777,
        0o2711
    );
    assert_eq!(
        fs::metadata(r.join("tmp")).unwrap().permissions().mode() & 0o7777,
        0o1777
    );
    assert_eq!(fs::read(r.join(&long)).unwrap(), b"long name");
    let sh = fs::symlink_metadata(r.join("bin/sh")).unwrap();
    assert!(sh.file_type().is_symlink());
    assert_eq!((sh.uid(), sh.gid()), (7, 8));
    let null = fs::symlink_metadata(r.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.permissions().mode() & 0o777, 0o666);
    assert!(fs::symlink_metadata(r.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let big = fs::metadata(r.join("bigid")).unwrap();
    assert_eq!((big.uid(), big.gid()), (100000, 200000));
    let frac = fs::metadata(r.join("frac")).unwrap();
    assert_eq!(
        (frac.mtime(), frac.mtime_nsec()),
        (1_700_000_000, 500_000_000)
    );
    let mut buf = [0u8; 64];
    let n = rustix::fs::lgetxattr(r.join("cap"), "user.note", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"hello");
    let n = rustix::fs::lgetxattr(r.join("cap"), "security.capability", &mut buf[..]).unwrap();
    assert_eq!(n, 20);
    assert!(
        rustix::fs::lgetxattr(r.join("cap"), "trusted.overlay.opaque", &mut buf[..]).is_err(),
        "overlay xattrs from archives must be dropped"
    );
    // content size counts files once (the hard link adds nothing) and symlink targets
    assert_eq!(
        stats.content_size,
        (9 + 1 + 1 + 9 + 1 + 1 + "busybox".len()) as u64
    );
    assert_eq!(stats.entries, 13);
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    if !crate::testutil::is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let sb = Sandbox::new();
    sb.apply(&[
        Ent::dir("etc/"),
        Ent::file("etc/.wh.passwd", ""),
        Ent::dir("var/"),
        Ent::file("var/.wh..wh..opq", ""),
        Ent::file("var/.wh..wh.plnk", ""),
        Ent::file(".wh.gone", ""),
    ])
    .unwrap();
    let r = sb.root();
    let wh = fs::symlink_metadata(r.join("etc/passwd")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(fs::symlink_metadata(r.join("gone"))
        .unwrap()
        .file_type()
        .is_char_device());
    let mut buf = [0u8; 4];
    let n = rustix::fs::lgetxattr(r.join("var"), OVERLAY_OPAQUE_XATTR, &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert!(fs::symlink_metadata(r.join("var/.wh..wh.plnk")).is_err());
    assert!(fs::symlink_metadata(r.join("var/.wh..wh..opq")).is_err());
    // whiteout of a dot name is refused
    let sb = Sandbox::new();
    assert_refused(&sb, &[Ent::file("a/.wh...", "")], "whiteout");
}

#[test]
fn diff_id_is_sha256_of_the_whole_stream() {
    let sb = Sandbox::new();
    let mut data = tar_of(&[Ent::file("a", "1"), Ent::dir("b/")]);
    data.extend_from_slice(&[0u8; 4096]); // extra padding after the end blocks
    let stats = apply_tar(&sb.root(), &mut &data[..]).unwrap();
    assert_eq!(stats.diff_id, Digest::sha256_of(&data));
    assert_eq!(stats.tar_size, data.len() as u64);
}

#[test]
fn truncated_stream_is_an_error() {
    let sb = Sandbox::new();
    let data = tar_of(&[Ent::file("big", vec![7u8; 10000])]);
    let err = apply_tar(&sb.root(), &mut &data[..3000]).unwrap_err();
    assert!(matches!(err, ApplyError::Tar(_)), "{err}");
}

#[test]
fn later_entries_replace_earlier_ones() {
    let sb = Sandbox::new();
    sb.apply(&[
        Ent::dir("x/"),
        Ent::file("x/inner", "1"),
        Ent::file("x", "now a file"),
        Ent::file("y", "file"),
        Ent::dir("y/"),
        Ent::file("y/z", "in dir"),
        Ent::file("f", "one"),
        Ent::file("f", "two"),
    ])
    .unwrap();
    let r = sb.root();
    assert_eq!(fs::read(r.join("x")).unwrap(), b"now a file");
    assert_eq!(fs::read(r.join("y/z")).unwrap(), b"in dir");
    assert_eq!(fs::read(r.join("f")).unwrap(), b"two");
}

#[test]
fn missing_parents_are_created() {
    let sb = Sandbox::new();
    sb.apply(&[Ent::file("a/b/c/d", "deep")]).unwrap();
    let m = fs::metadata(sb.root().join("a/b")).unwrap();
    assert!(m.is_dir());
    assert_eq!(m.permissions().mode() & 0o777, 0o755);
}

#[test]
fn clean_components_rules() {
    assert_eq!(
        clean_components(b"./a//b/./c/").unwrap(),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
    assert!(clean_components(b".").unwrap().is_empty());
    assert!(clean_components(b"/a").is_err());
    assert!(clean_components(b"a/../b").is_err());
    assert!(clean_components(b"a\0b").is_err());
    assert_eq!(clean_components(b"...").unwrap(), vec![b"...".to_vec()]);
}

#[test]
fn pax_time_parsing() {
    assert_eq!(
        parse_pax_time(b"12").map(|t| (t.tv_sec, t.tv_nsec)),
        Some((12, 0))
    );
    assert_eq!(
        parse_pax_time(b"12.25").map(|t| (t.tv_sec, t.tv_nsec)),
        Some((12, 250_000_000))
    );
    assert_eq!(
        parse_pax_time(b"-1.5").map(|t| (t.tv_sec, t.tv_nsec)),
        Some((-2, 500_000_000))
    );
    assert_eq!(parse_pax_time(b"x"), None);
    assert_eq!(parse_pax_time(b"1.x"), None);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn name_strategy() -> impl Strategy<Value = Vec<u8>> {
        let comp = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("c".to_string()),
            Just("..".to_string()),
            Just(".".to_string()),
            Just(".wh.a".to_string()),
            Just(".wh..wh..opq".to_string()),
            Just("".to_string()),
        ];
        (any::<bool>(), proptest::collection::vec(comp, 1..4)).prop_map(|(abs, comps)| {
            let mut s = comps.join("/");
            if abs {
                s.insert(0, '/');
            }
            s.into_bytes()
        })
    }

    fn target_strategy(outside: String) -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            name_strategy(),
            Just(outside.clone().into_bytes()),
            Just(format!("{outside}/sentinel").into_bytes()),
            Just(b"../outside".to_vec()),
            Just(b"../../..".to_vec()),
            Just(b"/".to_vec()),
            Just(b"/proc/self/root".to_vec()),
        ]
    }

    fn entry_strategy(outside: String) -> impl Strategy<Value = Ent> {
        (name_strategy(), 0..5u8, target_strategy(outside)).prop_map(|(name, k, t)| {
            let kind = match k {
                0 => Kind::File(b"pwned".to_vec()),
                1 => Kind::Dir,
                2 => Kind::Symlink(t),
                3 => Kind::Hardlink(t),
                _ => Kind::Fifo,
            };
            Ent::new(name, kind)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]
        #[test]
        fn apply_never_writes_outside_the_target(seed in any::<u64>()) {
            let sb = Sandbox::new();
            let outside = sb.outside().display().to_string();
            let mut runner = proptest::test_runner::TestRunner::new_with_rng(
                ProptestConfig::default(),
                proptest::test_runner::TestRng::from_seed(
                    proptest::test_runner::RngAlgorithm::ChaCha,
                    &{ let mut s = [0u8; 32]; s[..8].copy_from_slice(&seed.to_le_bytes()); s },
                ),
            );
            let entries = proptest::collection::vec(entry_strategy(outside), 1..12)
                .new_tree(&mut runner).unwrap();
            let entries = proptest::strategy::ValueTree::current(&entries);
            let before = sb.snapshot_outside();
            let _ = sb.apply(&entries);
            prop_assert_eq!(sb.snapshot_outside(), before, "entries: {:?}", entries);
            prop_assert_eq!(fs::read(sb.outside().join("sentinel")).unwrap(), b"untouched".to_vec());
        }
    }
}

#[test]
fn empty_numeric_fields_read_as_zero_garbage_is_refused() {
    let sb = Sandbox::new();
    let mut h = tar::Header::new_ustar();
    h.set_path("f").unwrap();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"x"[..]).unwrap();
    let data = b.into_inner().unwrap();
    apply_tar(&sb.root(), &mut &data[..]).unwrap();
    assert_eq!(fs::read(sb.root().join("f")).unwrap(), b"x");
    let mut h = tar::Header::new_ustar();
    h.set_path("g").unwrap();
    h.set_size(0);
    h.set_mode(0o644);
    h.as_old_mut().uid[..2].copy_from_slice(b"zz");
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b""[..]).unwrap();
    let data = b.into_inner().unwrap();
    let err = apply_tar(&sb.root(), &mut &data[..]).unwrap_err();
    assert!(err.to_string().contains("invalid uid"), "{err}");
}

/// The archive API's extraction: `root/` plays the container's root, `root/dest` the
/// destination directory.
fn copy_into(sb: &Sandbox, entries: &[Ent], opts: CopyOptions) -> Result<ApplyStats, ApplyError> {
    let data = tar_of(entries);
    let root = rfs::open(
        sb.root(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    apply_copy(root.as_fd(), &mut &data[..], opts)
}

fn dest_opts() -> CopyOptions {
    CopyOptions {
        dest: vec![b"dest".to_vec()],
        ..CopyOptions::default()
    }
}

fn copy_sandbox() -> Sandbox {
    let sb = Sandbox::new();
    fs::create_dir(sb.root().join("dest")).unwrap();
    sb
}

#[test]
fn copy_places_names_like_moby() {
    let sb = copy_sandbox();
    copy_into(
        &sb,
        &[
            Ent::dir("./"),
            Ent::file("/abs/file", "a"),
            Ent::file("x/../y", "b"),
            Ent::file(".wh.not-a-whiteout", "c"),
        ],
        dest_opts(),
    )
    .unwrap();
    assert_eq!(fs::read(sb.root().join("dest/abs/file")).unwrap(), b"a");
    assert_eq!(fs::read(sb.root().join("dest/y")).unwrap(), b"b");
    assert_eq!(
        fs::read(sb.root().join("dest/.wh.not-a-whiteout")).unwrap(),
        b"c"
    );
    // Missing parents are made with mode 0755.
    let m = fs::metadata(sb.root().join("dest/abs")).unwrap();
    assert_eq!(m.mode() & 0o777, 0o755);
    for (entries, needle) in [
        (
            vec![Ent::file("../escape", "x")],
            "\"../escape\" is outside of \"/dest\"",
        ),
        (vec![Ent::file("a/../../escape", "x")], "is outside of"),
        (
            vec![Ent::symlink("l", "../../outside")],
            "invalid symlink \"/dest/l\" -> \"../../outside\"",
        ),
        (vec![Ent::hardlink("h", "../x")], "invalid hardlink"),
    ] {
        let before = sb.snapshot_outside();
        let e = copy_into(&sb, &entries, dest_opts()).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
        assert_eq!(sb.snapshot_outside(), before);
        assert!(!sb.root().join("escape").exists());
    }
    // An absolute symlink target is fine: it stays inside the root when followed.
    copy_into(&sb, &[Ent::symlink("abslink", "/etc/passwd")], dest_opts()).unwrap();
    assert_eq!(
        fs::read_link(sb.root().join("dest/abslink")).unwrap(),
        PathBuf::from("/etc/passwd")
    );
}

#[test]
fn copy_resolves_existing_symlinks_inside_the_root() {
    let sb = copy_sandbox();
    let out = sb.outside().display().to_string();
    std::os::unix::fs::symlink("/", sb.root().join("dest/up")).unwrap();
    std::os::unix::fs::symlink("../../../../..", sb.root().join("dest/rel")).unwrap();
    std::os::unix::fs::symlink(&out, sb.root().join("dest/host")).unwrap();
    let before = sb.snapshot_outside();
    // While the link's target does not exist inside the root, writing through it fails (as
    // in Docker's chroot) and touches nothing outside.
    assert!(copy_into(&sb, &[Ent::file("host/sentinel", "3")], dest_opts()).is_err());
    assert_eq!(sb.snapshot_outside(), before);
    fs::create_dir_all(sb.root().join(out.trim_start_matches('/'))).unwrap();
    copy_into(
        &sb,
        &[
            Ent::file("up/etc/x", "1"),
            Ent::file("rel/y", "2"),
            Ent::file("host/sentinel", "3"),
        ],
        dest_opts(),
    )
    .unwrap();
    assert_eq!(
        sb.snapshot_outside(),
        before,
        "nothing outside the root changed"
    );
    assert_eq!(fs::read(sb.root().join("etc/x")).unwrap(), b"1");
    assert_eq!(fs::read(sb.root().join("y")).unwrap(), b"2");
    // The absolute host path was followed as a path inside the root.
    let inside = sb.root().join(out.trim_start_matches('/')).join("sentinel");
    assert_eq!(fs::read(inside).unwrap(), b"3");
}

#[test]
fn copy_no_overwrite_dir_non_dir_and_chown() {
    let sb = copy_sandbox();
    fs::create_dir(sb.root().join("dest/d")).unwrap();
    fs::write(sb.root().join("dest/f"), b"old").unwrap();
    let strict = CopyOptions {
        no_overwrite_dir_non_dir: true,
        ..dest_opts()
    };
    let e = copy_into(&sb, &[Ent::file("d", "x")], strict.clone()).unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot overwrite directory \"/dest/d\" with non-directory \"/dest\""),
        "{e}"
    );
    let e = copy_into(&sb, &[Ent::dir("f/")], strict.clone()).unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot overwrite non-directory \"/dest/f\" with directory \"/dest\""),
        "{e}"
    );
    assert!(sb.root().join("dest/d").is_dir());
    assert_eq!(fs::read(sb.root().join("dest/f")).unwrap(), b"old");
    // Same kinds replace each other; without the option anything goes.
    copy_into(&sb, &[Ent::file("f", "new"), Ent::dir("d/")], strict).unwrap();
    assert_eq!(fs::read(sb.root().join("dest/f")).unwrap(), b"new");
    copy_into(&sb, &[Ent::file("d", "now a file")], dest_opts()).unwrap();
    assert!(sb.root().join("dest/d").is_file());
    if crate::testutil::is_root() {
        let mut e = Ent::file("owned", "x");
        e.uid = 7;
        e.gid = 8;
        copy_into(
            &sb,
            &[e],
            CopyOptions {
                chown: Some((1000, 1001)),
                ..dest_opts()
            },
        )
        .unwrap();
        let m = fs::metadata(sb.root().join("dest/owned")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 1001));
    }
}

mod copy_fuzz {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = Vec<u8>> {
        let comp = prop_oneof![
            Just("a"),
            Just("b"),
            Just(".."),
            Just("."),
            Just("up"),
            Just(""),
        ];
        (any::<bool>(), proptest::collection::vec(comp, 1..4)).prop_map(|(abs, c)| {
            let mut s = c.join("/");
            if abs {
                s.insert(0, '/');
            }
            s.into_bytes()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]
        #[test]
        fn copy_never_writes_outside_the_root(
            entries in proptest::collection::vec((name(), 0..4u8, name()), 1..10)
        ) {
            let sb = copy_sandbox();
            let out = sb.outside().display().to_string();
            std::os::unix::fs::symlink(&out, sb.root().join("dest/up")).unwrap();
            let ents: Vec<Ent> = entries
                .into_iter()
                .map(|(n, k, t)| {
                    let kind = match k {
                        0 => Kind::File(b"pwned".to_vec()),
                        1 => Kind::Dir,
                        2 => Kind::Symlink(if t.is_empty() { out.clone().into_bytes() } else { t }),
                        _ => Kind::Hardlink(t),
                    };
                    Ent::new(n, kind)
                })
                .collect();
            let before = sb.snapshot_outside();
            let _ = copy_into(&sb, &ents, dest_opts());
            prop_assert_eq!(sb.snapshot_outside(), before, "entries: {:?}", ents);
        }
    }
}
