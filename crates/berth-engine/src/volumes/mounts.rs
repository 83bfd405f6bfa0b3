//! A container's mounts from its create request: `Binds` (`-v`), `Mounts` (`--mount`),
//! `VolumesFrom` and `Config.Volumes`, parsed and validated with the rules and messages of
//! moby's Linux mount parser (`volume/mounts/linux_parser.go`). Pure code: no volume is
//! created here (see `volumes::attach` for that).

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use berth_api::models::{HostConfig, Mount, MountPoint};
use berth_api::ApiError;
use serde::{Deserialize, Serialize};

/// A mount as the container record keeps it: what inspect shows (`point`) plus what berth
/// needs to set it up again at every start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRecord {
    #[serde(flatten)]
    pub point: MountPoint,
    /// A volume made for this container without a name: removed by `rm -v` / `run --rm`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub anonymous: bool,
    /// `bind-nonrecursive`: a plain bind instead of a recursive one.
    #[serde(default, skip_serializing_if = "is_false")]
    pub non_recursive: bool,
    /// tmpfs mount options (`size=…,mode=…,ro`), Docker's conversion of `TmpfsOptions`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tmpfs_options: String,
    /// A `--mount` bind: its source must exist (a `-v` bind source is created at start).
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_source_creation: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Deref for MountRecord {
    type Target = MountPoint;
    fn deref(&self) -> &MountPoint {
        &self.point
    }
}

impl DerefMut for MountRecord {
    fn deref_mut(&mut self) -> &mut MountPoint {
        &mut self.point
    }
}

/// A volume a mount needs: made (or looked up) when the container is created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeRequest {
    /// `None`: an anonymous volume.
    pub name: Option<String>,
    pub driver: String,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Copy the image's content at the mount point into the volume when it is empty.
    pub copy_data: bool,
}

/// One mount of the request, before its volume exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlannedMount {
    pub rec: MountRecord,
    pub volume: Option<VolumeRequest>,
}

/// Everything the request asks to mount, in Docker's order of precedence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountPlan {
    /// `--volumes-from`: (container, `ro`/`rw`).
    pub volumes_from: Vec<(String, String)>,
    /// `Binds` then `Mounts`; destinations are unique among them.
    pub mounts: Vec<PlannedMount>,
    /// `Config.Volumes` (image and request): anonymous volumes unless something else is
    /// mounted there.
    pub anonymous: Vec<String>,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg.into())
}

fn invalid_spec(raw: &str) -> String {
    format!("invalid volume specification: '{raw}'")
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "slave", "rslave", "shared", "rshared",
];

/// moby's `linuxValidMountMode`: every word known, at most one of each kind.
pub fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0usize; 5];
    for o in mode.split(',') {
        let kind = match o {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            p if PROPAGATIONS.contains(&p) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        counts[kind] += 1;
    }
    counts.iter().all(|c| *c <= 1)
}

fn mode_read_write(mode: &str) -> bool {
    !mode.split(',').any(|o| o == "ro")
}

fn mode_propagation(mode: &str) -> Option<&str> {
    mode.split(',').find(|o| PROPAGATIONS.contains(o))
}

/// Go's `path.Clean` for absolute container paths.
pub fn clean_path(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    let joined = out.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// The checks of moby's `validateMountConfigImpl` shared by `-v` and `--mount`; the message
/// is the part after `invalid mount config for type "…": `.
fn validate_target(target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err("field Target must not be empty".to_string());
    }
    if clean_path(target) == "/" {
        return Err("invalid specification: destination can't be '/'".to_string());
    }
    if !target.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{target}' mount path must be absolute"
        ));
    }
    Ok(())
}

fn mount_config_err(kind: &str, e: String) -> String {
    format!("invalid mount config for type \"{kind}\": {e}")
}

/// Docker's `ConvertTmpfsOptions`.
pub fn tmpfs_options(size: i64, mode: u64, read_only: bool) -> String {
    let mut o = Vec::new();
    if read_only {
        o.push("ro".to_string());
    }
    if mode != 0 {
        o.push(format!("mode={mode:o}"));
    }
    if size != 0 {
        let (mut n, mut suffix) = (size, "");
        for (s, d) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
            if size % d == 0 {
                n = size / d;
                suffix = s;
                break;
            }
        }
        o.push(format!("size={n}{suffix}"));
    }
    o.join(",")
}

/// One `Binds` entry (`-v src:dst[:mode]`, `-v name:dst`, `-v /dst`), moby's `ParseMountRaw`.
pub fn parse_bind(raw: &str, volume_driver: &str) -> Result<PlannedMount, String> {
    let arr: Vec<&str> = raw.splitn(4, ':').collect();
    if arr[0].is_empty() {
        return Err(invalid_spec(raw));
    }
    let (source, target, mode) = match arr.as_slice() {
        [t] => ("", *t, ""),
        [s, t] => {
            if valid_mode(t) {
                // `/foo:rw`: a destination with a mode but no source.
                return Err(invalid_spec(raw));
            }
            (*s, *t, "")
        }
        [s, t, m] => (*s, *t, *m),
        _ => return Err(invalid_spec(raw)),
    };
    if !valid_mode(mode) {
        return Err(format!("invalid mode: {mode}"));
    }
    let is_bind = source.starts_with('/');
    let kind = if is_bind { "bind" } else { "volume" };
    let rw = mode_read_write(mode);
    let nocopy = mode.split(',').any(|o| o == "nocopy");
    let prop = mode_propagation(mode);
    let spec_err = |e: String| format!("{}: {}", invalid_spec(raw), mount_config_err(kind, e));
    // moby's exclusive-option check: a copy mode makes VolumeOptions, a propagation makes
    // BindOptions, and each belongs to one mount type only.
    if is_bind && nocopy {
        return Err(spec_err("field VolumeOptions must not be specified".into()));
    }
    if !is_bind && prop.is_some() {
        return Err(spec_err("field BindOptions must not be specified".into()));
    }
    validate_target(target).map_err(spec_err)?;
    let destination = clean_path(target);
    let point = if is_bind {
        MountPoint {
            kind: "bind".into(),
            source: clean_path(source),
            destination,
            mode: mode.to_string(),
            rw,
            propagation: prop.unwrap_or("rprivate").to_string(),
            ..MountPoint::default()
        }
    } else {
        MountPoint {
            kind: "volume".into(),
            name: source.to_string(),
            destination,
            driver: volume_driver.to_string(),
            mode: mode.to_string(),
            rw,
            ..MountPoint::default()
        }
    };
    let volume = (!is_bind).then(|| VolumeRequest {
        name: (!source.is_empty()).then(|| source.to_string()),
        driver: volume_driver.to_string(),
        copy_data: !nocopy,
        ..VolumeRequest::default()
    });
    Ok(PlannedMount {
        rec: MountRecord {
            anonymous: !is_bind && source.is_empty(),
            point,
            ..MountRecord::default()
        },
        volume,
    })
}

/// One `Mounts` entry (`--mount`), moby's `ParseMountSpec` (a bind source must exist).
pub fn parse_mount(m: &Mount) -> Result<PlannedMount, String> {
    let kind = m.kind.as_str();
    let err = |e: String| mount_config_err(kind, e);
    // Options of another mount type.
    if kind != "bind" && m.bind_options.is_some() {
        return Err(err("field BindOptions must not be specified".into()));
    }
    if kind != "volume" && m.volume_options.is_some() {
        return Err(err("field VolumeOptions must not be specified".into()));
    }
    if kind != "tmpfs" && m.tmpfs_options.is_some() {
        return Err(err("field TmpfsOptions must not be specified".into()));
    }
    validate_target(&m.target).map_err(err)?;
    let destination = clean_path(&m.target);
    match kind {
        "bind" => {
            if m.source.is_empty() {
                return Err(err("field Source must not be empty".into()));
            }
            let prop = m
                .bind_options
                .as_ref()
                .map(|b| b.propagation.clone())
                .unwrap_or_default();
            if !prop.is_empty() && !PROPAGATIONS.contains(&prop.as_str()) {
                return Err(err(format!("invalid propagation mode: {prop}")));
            }
            if !m.source.starts_with('/') {
                return Err(err(format!(
                    "invalid mount path: '{}' mount path must be absolute",
                    m.source
                )));
            }
            match std::fs::symlink_metadata(&m.source) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(err(format!(
                        "bind source path does not exist: {}",
                        m.source
                    )))
                }
                Err(e) => return Err(err(format!("stat {}: {e}", m.source))),
            }
            Ok(PlannedMount {
                rec: MountRecord {
                    point: MountPoint {
                        kind: "bind".into(),
                        source: clean_path(&m.source),
                        destination,
                        rw: !m.read_only,
                        propagation: if prop.is_empty() {
                            "rprivate".into()
                        } else {
                            prop
                        },
                        ..MountPoint::default()
                    },
                    non_recursive: m.bind_options.as_ref().is_some_and(|b| b.non_recursive),
                    skip_source_creation: true,
                    ..MountRecord::default()
                },
                volume: None,
            })
        }
        "volume" => {
            let vo = m.volume_options.clone().unwrap_or_default();
            let dc = vo.driver_config.clone().unwrap_or_default();
            let named = !m.source.is_empty();
            Ok(PlannedMount {
                rec: MountRecord {
                    point: MountPoint {
                        kind: "volume".into(),
                        name: m.source.clone(),
                        destination,
                        driver: dc.name.clone(),
                        rw: !m.read_only,
                        ..MountPoint::default()
                    },
                    anonymous: !named,
                    ..MountRecord::default()
                },
                volume: Some(VolumeRequest {
                    name: named.then(|| m.source.clone()),
                    driver: dc.name,
                    options: dc.options.unwrap_or_default(),
                    labels: vo.labels.unwrap_or_default(),
                    copy_data: !vo.no_copy,
                }),
            })
        }
        "tmpfs" => {
            if !m.source.is_empty() {
                return Err(err("field Source must not be specified".into()));
            }
            let t = m.tmpfs_options.clone().unwrap_or_default();
            if t.size_bytes < 0 {
                return Err(err(format!("invalid tmpfs size: {}", t.size_bytes)));
            }
            Ok(PlannedMount {
                rec: MountRecord {
                    point: MountPoint {
                        kind: "tmpfs".into(),
                        destination,
                        rw: !m.read_only,
                        ..MountPoint::default()
                    },
                    tmpfs_options: tmpfs_options(t.size_bytes, t.mode, m.read_only),
                    ..MountRecord::default()
                },
                volume: None,
            })
        }
        "" => Err(err("mount type unknown".into())),
        "npipe" | "cluster" | "image" => Err(format!(
            "mounts of type \"{kind}\" are not supported by berth (bind, volume, tmpfs)"
        )),
        _ => Err(err("mount type unknown".into())),
    }
}

/// moby's `ParseVolumesFrom`: `container[:ro|rw]`.
pub fn parse_volumes_from(spec: &str) -> Result<(String, String), String> {
    if spec.is_empty() {
        return Err("volumes-from specification cannot be an empty string".to_string());
    }
    let (id, mode) = spec.split_once(':').unwrap_or((spec, ""));
    if mode.is_empty() {
        return Ok((id.to_string(), "rw".to_string()));
    }
    let copy_mode = mode.split(',').any(|o| o == "nocopy");
    if !valid_mode(mode) || mode_propagation(mode).is_some() || copy_mode {
        return Err(format!("invalid mode: {mode}"));
    }
    Ok((id.to_string(), mode.to_string()))
}

/// Whether a `--volumes-from` mode keeps the mounts writable.
pub fn volumes_from_rw(mode: &str) -> bool {
    mode_read_write(mode)
}

/// Parses and validates every mount of a create request (no side effects, 400 on bad
/// input). `volumes` are the merged `Config.Volumes` (image and request).
pub fn plan(hc: &HostConfig, volumes: &[String]) -> Result<MountPlan, ApiError> {
    let mut out = MountPlan::default();
    for v in hc.volumes_from.iter().flatten() {
        out.volumes_from.push(parse_volumes_from(v).map_err(bad)?);
    }
    let tmpfs_dests: Vec<String> = hc
        .tmpfs
        .iter()
        .flatten()
        .map(|(d, _)| clean_path(d))
        .collect();
    let mut seen: Vec<String> = Vec::new();
    let dup = |d: &str| bad(format!("Duplicate mount point: {d}"));
    for b in hc.binds.iter().flatten() {
        let pm = parse_bind(b, &hc.volume_driver).map_err(bad)?;
        if seen.contains(&pm.rec.destination) || tmpfs_dests.contains(&pm.rec.destination) {
            return Err(dup(&pm.rec.destination));
        }
        seen.push(pm.rec.destination.clone());
        out.mounts.push(pm);
    }
    for m in hc.mounts.iter().flatten() {
        let pm = parse_mount(m).map_err(bad)?;
        if seen.contains(&pm.rec.destination) {
            return Err(dup(&m.target));
        }
        seen.push(pm.rec.destination.clone());
        out.mounts.push(pm);
    }
    for (dest, _) in hc.tmpfs.iter().flatten() {
        validate_target(dest).map_err(|e| bad(format!("invalid tmpfs mount: {e}")))?;
    }
    for v in volumes {
        let d = clean_path(v);
        if !v.starts_with('/') {
            return Err(bad(format!(
                "invalid mount path: '{v}' mount path must be absolute"
            )));
        }
        if d == "/" {
            return Err(bad("invalid specification: destination can't be '/'"));
        }
        if !out.anonymous.contains(&d) {
            out.anonymous.push(d);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn modes() {
        for ok in [
            "",
            "ro",
            "rw",
            "z",
            "Z",
            "ro,z",
            "nocopy",
            "rshared",
            "ro,rslave,Z",
            "cached",
        ] {
            assert!(valid_mode(ok), "{ok}");
        }
        for bad in [
            "bogus",
            "ro,rw",
            "z,Z",
            "rshared,private",
            "nocopy,nocopy",
            "ro,",
        ] {
            assert!(!valid_mode(bad), "{bad}");
        }
    }

    #[test]
    fn clean() {
        assert_eq!(clean_path("/a/b/../c/"), "/a/c");
        assert_eq!(clean_path("/../x"), "/x");
        assert_eq!(clean_path("//a//./b"), "/a/b");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(clean_path("a/../.."), "..");
    }

    #[test]
    fn binds_like_moby() {
        let b = parse_bind("/tmp:/data:ro", "").unwrap();
        assert_eq!(b.rec.kind, "bind");
        assert_eq!(
            (b.rec.source.as_str(), b.rec.destination.as_str()),
            ("/tmp", "/data")
        );
        assert!(!b.rec.rw);
        assert_eq!(b.rec.mode, "ro");
        assert_eq!(b.rec.propagation, "rprivate");
        assert!(b.volume.is_none());

        let v = parse_bind("data:/srv/data/", "").unwrap();
        assert_eq!(v.rec.kind, "volume");
        assert_eq!(v.rec.name, "data");
        assert_eq!(v.rec.destination, "/srv/data");
        assert!(v.rec.rw && !v.rec.anonymous);
        let req = v.volume.unwrap();
        assert_eq!(req.name.as_deref(), Some("data"));
        assert!(req.copy_data);

        let v = parse_bind("data:/d:ro,nocopy,Z", "").unwrap();
        assert!(!v.rec.rw);
        assert!(!v.volume.unwrap().copy_data);
        assert_eq!(v.rec.mode, "ro,nocopy,Z");

        let a = parse_bind("/anon", "").unwrap();
        assert!(a.rec.anonymous);
        assert_eq!(a.volume.unwrap().name, None);

        let p = parse_bind("/h:/c:rshared", "").unwrap();
        assert_eq!(p.rec.propagation, "rshared");

        assert_eq!(
            parse_bind("/foo:rw", "").unwrap_err(),
            "invalid volume specification: '/foo:rw'"
        );
        assert_eq!(
            parse_bind(":/x", "").unwrap_err(),
            "invalid volume specification: ':/x'"
        );
        assert_eq!(
            parse_bind("/a:/b:c:d", "").unwrap_err(),
            "invalid volume specification: '/a:/b:c:d'"
        );
        assert_eq!(
            parse_bind("/a:/b:bogus", "").unwrap_err(),
            "invalid mode: bogus"
        );
        assert_eq!(
            parse_bind("/tmp:data", "").unwrap_err(),
            "invalid volume specification: '/tmp:data': invalid mount config for type \"bind\": invalid mount path: 'data' mount path must be absolute"
        );
        assert_eq!(
            parse_bind("/tmp:/", "").unwrap_err(),
            "invalid volume specification: '/tmp:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        );
        assert!(parse_bind("/tmp:/x:nocopy", "")
            .unwrap_err()
            .contains("field VolumeOptions must not be specified"));
        assert!(parse_bind("v:/x:rshared", "")
            .unwrap_err()
            .contains("field BindOptions must not be specified"));
        // A relative host path is a volume name; its validation happens at volume create.
        let rel = parse_bind("foo/bar:/x", "").unwrap();
        assert_eq!(rel.rec.kind, "volume");
        assert_eq!(rel.volume.unwrap().name.as_deref(), Some("foo/bar"));
    }

    fn m(json: &str) -> Mount {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn mounts_like_moby() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().to_str().unwrap();
        let b = parse_mount(&m(&format!(
            r#"{{"Type":"bind","Source":"{src}","Target":"/x","ReadOnly":true,"BindOptions":{{"Propagation":"rslave","NonRecursive":true}}}}"#
        )))
        .unwrap();
        assert_eq!(b.rec.propagation, "rslave");
        assert!(b.rec.non_recursive && !b.rec.rw);
        assert_eq!(b.rec.mode, "");
        assert_eq!(
            parse_mount(&m(r#"{"Type":"bind","Source":"/nonexistent-berth-x","Target":"/x"}"#))
                .unwrap_err(),
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-berth-x"
        );
        assert_eq!(
            parse_mount(&m(r#"{"Type":"bind","Target":"/x"}"#)).unwrap_err(),
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        assert_eq!(
            parse_mount(&m(r#"{"Type":"volume","Source":"v","Target":""}"#)).unwrap_err(),
            "invalid mount config for type \"volume\": field Target must not be empty"
        );
        let v = parse_mount(&m(
            r#"{"Type":"volume","Source":"v","Target":"/d","VolumeOptions":{"NoCopy":true,"Labels":{"a":"b"},"DriverConfig":{"Name":"local","Options":{"type":"tmpfs","device":"tmpfs"}}}}"#,
        ))
        .unwrap();
        let req = v.volume.unwrap();
        assert!(!req.copy_data);
        assert_eq!(req.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(req.options.len(), 2);
        let anon = parse_mount(&m(r#"{"Type":"volume","Target":"/d"}"#)).unwrap();
        assert!(anon.rec.anonymous);
        let t = parse_mount(&m(
            r#"{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":10485760,"Mode":1777}}"#,
        ))
        .unwrap();
        assert_eq!(t.rec.tmpfs_options, "mode=3361,size=10m");
        assert_eq!(
            parse_mount(&m(r#"{"Type":"tmpfs","Source":"x","Target":"/t"}"#)).unwrap_err(),
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
        assert_eq!(
            parse_mount(&m(r#"{"Type":"bogus","Target":"/t"}"#)).unwrap_err(),
            "invalid mount config for type \"bogus\": mount type unknown"
        );
        assert_eq!(
            parse_mount(&m(
                r#"{"Type":"tmpfs","Target":"/t","VolumeOptions":{"NoCopy":true}}"#
            ))
            .unwrap_err(),
            "invalid mount config for type \"tmpfs\": field VolumeOptions must not be specified"
        );
    }

    #[test]
    fn tmpfs_option_text() {
        assert_eq!(tmpfs_options(0, 0, false), "");
        assert_eq!(tmpfs_options(1 << 30, 0o700, true), "ro,mode=700,size=1g");
        assert_eq!(tmpfs_options(1000, 0, false), "size=1000");
    }

    #[test]
    fn volumes_from() {
        assert_eq!(
            parse_volumes_from("c1").unwrap(),
            ("c1".into(), "rw".into())
        );
        assert_eq!(
            parse_volumes_from("c1:ro").unwrap(),
            ("c1".into(), "ro".into())
        );
        assert!(!volumes_from_rw("ro"));
        assert_eq!(
            parse_volumes_from("c1:rshared").unwrap_err(),
            "invalid mode: rshared"
        );
        assert_eq!(
            parse_volumes_from("c1:nocopy").unwrap_err(),
            "invalid mode: nocopy"
        );
        assert!(parse_volumes_from("").is_err());
    }

    #[test]
    fn plan_checks_duplicates() {
        let hc: HostConfig = serde_json::from_str(r#"{"Binds":["/tmp:/a","v:/a/"]}"#).unwrap();
        assert_eq!(
            plan(&hc, &[]).unwrap_err().message,
            "Duplicate mount point: /a"
        );
        let hc: HostConfig =
            serde_json::from_str(r#"{"Binds":["/tmp:/a"],"Tmpfs":{"/a":""}}"#).unwrap();
        assert!(plan(&hc, &[]).is_err());
        let hc: HostConfig = serde_json::from_str(
            r#"{"Binds":["v:/a"],"Mounts":[{"Type":"volume","Source":"w","Target":"/a"}]}"#,
        )
        .unwrap();
        assert_eq!(
            plan(&hc, &[]).unwrap_err().message,
            "Duplicate mount point: /a"
        );
        let hc: HostConfig = serde_json::from_str(r#"{"Binds":["v:/a"]}"#).unwrap();
        let p = plan(&hc, &["/data/".to_string(), "/data".to_string()]).unwrap();
        assert_eq!(p.anonymous, vec!["/data".to_string()]);
        assert!(plan(&hc, &["rel".to_string()]).is_err());
    }

    #[test]
    fn records_read_old_mount_points() {
        let old = r#"{"Type":"bind","Source":"/a","Destination":"/b","Mode":"","RW":true,"Propagation":"rprivate"}"#;
        let r: MountRecord = serde_json::from_str(old).unwrap();
        assert_eq!(r.source, "/a");
        assert!(!r.anonymous);
        let back = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<MountRecord>(&back).unwrap(), r);
        assert!(!back.contains("anonymous"));
    }

    proptest! {
        #[test]
        fn bind_parser_never_panics(s in "\\PC{0,40}") {
            let _ = parse_bind(&s, "");
            let _ = parse_volumes_from(&s);
        }

        #[test]
        fn parsed_destinations_are_clean_and_absolute(s in "[a-z/:.]{1,30}") {
            if let Ok(p) = parse_bind(&s, "") {
                prop_assert!(p.rec.destination.starts_with('/'));
                prop_assert_ne!(p.rec.destination.as_str(), "/");
                prop_assert_eq!(clean_path(&p.rec.destination), p.rec.destination.clone());
            }
        }
    }
}
