//! `docker commit`: a container's writable layer becomes a new layer on top of its image.
//!
//! The diff is written as a layer tar (overlay whiteouts as `.wh.` entries, see
//! [`crate::layer::LayerStore::diff_rw`]) into the store's spool, applied as a snapshot on top
//! of the image's top layer, kept as its blob, and recorded in a new image whose config is the
//! request's config with the `changes` applied and its unset fields taken from the container's
//! config (moby's `merge`), and whose history gains one entry.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use crate::changes;
use crate::config::{self, ContainerConfig, History, ImageConfig};
use crate::digest::Digest;
use crate::error::ImageError;
use crate::fsutil;
use crate::layer::{AppliedLayer, ChainId};
use crate::reference::Reference;
use crate::store::{CreateOptions, Image, ImageLayer, ImageStore, MEDIA_TYPE_DOCKER_LAYER_TAR};

/// What to commit.
#[derive(Debug)]
pub struct CommitSpec<'a> {
    /// The container (its writable layer has the same ID).
    pub container_id: &'a str,
    /// The container's image.
    pub base: &'a Image,
    /// The container's own config (what it ran with).
    pub container_config: ContainerConfig,
    /// The config sent with the request, if any.
    pub config: Option<ContainerConfig>,
    /// Dockerfile instructions (`CMD ["sh"]`, `ENV A=1`).
    pub changes: &'a [String],
    pub comment: &'a str,
    pub author: &'a str,
    /// The history's `created_by` (the container's command).
    pub created_by: String,
    pub tag: Option<&'a Reference>,
}

/// moby's `merge(userConf, imageConf)`: unset fields of `user` come from `container`.
pub fn merge(user: &mut ContainerConfig, container: &ContainerConfig) {
    if user.user.is_empty() {
        user.user = container.user.clone();
    }
    match (&mut user.exposed_ports, &container.exposed_ports) {
        (Some(u), Some(c)) if !u.is_empty() => {
            for (k, v) in c {
                u.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        (u, c) => {
            if u.as_ref().is_none_or(|m| m.is_empty()) {
                *u = c.clone();
            }
        }
    }
    match &mut user.env {
        Some(u) if !u.is_empty() => {
            for e in container.env.iter().flatten() {
                let key = e.split('=').next().unwrap_or_default();
                if !u.iter().any(|x| x.split('=').next() == Some(key)) {
                    u.push(e.clone());
                }
            }
        }
        u => *u = container.env.clone(),
    }
    let labels = user.labels.get_or_insert_with(Default::default);
    for (k, v) in container.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = container.cmd.clone();
            user.args_escaped = container.args_escaped;
        }
        if user.entrypoint.is_none() {
            user.entrypoint = container.entrypoint.clone();
        }
    }
    if user.healthcheck.is_none() {
        user.healthcheck = container.healthcheck.clone();
    }
    if user.working_dir.is_empty() {
        user.working_dir = container.working_dir.clone();
    }
    match (&mut user.volumes, &container.volumes) {
        (Some(u), Some(c)) if !u.is_empty() => {
            for (k, v) in c {
                u.insert(k.clone(), v.clone());
            }
        }
        (u, c) => {
            if u.as_ref().is_none_or(|m| m.is_empty()) {
                *u = c.clone();
            }
        }
    }
    if user.stop_signal.is_empty() {
        user.stop_signal = container.stop_signal.clone();
    }
}

/// The diff ID of an empty layer tar (1024 zero bytes): Docker's `DigestSHA256EmptyTar`.
pub const EMPTY_TAR_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

impl ImageStore {
    /// Turns the writable layer `rw_id` (unmounted or quiescent) into a layer on top of
    /// `parent`: its diff is written as a tar into the spool, applied as a snapshot and kept
    /// as the layer's blob. The layer stays pinned while the returned [`AppliedLayer`] lives.
    pub fn layer_from_rw(
        &self,
        rw_id: &str,
        parent: Option<&ChainId>,
    ) -> Result<(ImageLayer, AppliedLayer), ImageError> {
        let spool = self.tmp_dir("commit-")?;
        let tar_path = spool.path().join("layer.tar");
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tar_path)
            .map_err(fsutil::ctx("create", &tar_path))?;
        let stats = self.layers().diff_rw(rw_id, &mut out)?;
        out.flush().map_err(fsutil::ctx("write", &tar_path))?;
        drop(out);
        let mut tar = File::open(&tar_path).map_err(fsutil::ctx("open", &tar_path))?;
        let applied = self
            .layers()
            .apply(parent, &mut tar, Some(&stats.diff_id))?;
        drop(tar);
        let _blob_pin = self.pin_blob(&stats.diff_id);
        let info = self.content().put_file(&tar_path, Some(&stats.diff_id))?;
        let layer = ImageLayer::from_applied(
            &applied,
            info.digest,
            MEDIA_TYPE_DOCKER_LAYER_TAR,
            info.size,
        );
        Ok((layer, applied))
    }

    /// Commits a container's writable layer as a new image; returns its ID. The caller keeps
    /// the container from changing state meanwhile (and pauses it if asked).
    pub fn commit(&self, spec: CommitSpec<'_>) -> Result<Digest, ImageError> {
        // Bad changes are refused before any work.
        let parsed = changes::parse(spec.changes)?;
        let mut cfg = spec.config.clone().unwrap_or_default();
        changes::apply(&mut cfg, &parsed)?;
        merge(&mut cfg, &spec.container_config);

        let parent = spec.base.top_chain_id().cloned();
        let (layer, applied) = self.layer_from_rw(spec.container_id, parent.as_ref())?;

        let base = &spec.base.config;
        let created = config::now_rfc3339();
        let mut history = base.history.clone();
        history.push(History {
            created: Some(created.clone()),
            created_by: spec.created_by.clone(),
            author: spec.author.to_string(),
            comment: spec.comment.to_string(),
            ..Default::default()
        });
        let mut rootfs = base.rootfs.clone();
        rootfs.kind = "layers".into();
        rootfs.diff_ids.push(layer.diff_id.clone());
        let image_config = ImageConfig {
            architecture: base.architecture.clone(),
            os: base.os.clone(),
            variant: base.variant.clone(),
            created: Some(created),
            author: spec.author.to_string(),
            comment: spec.comment.to_string(),
            container: spec.container_id.to_string(),
            container_config: Some(spec.container_config.clone()),
            config: Some(cfg),
            rootfs,
            history,
            ..Default::default()
        };
        let bytes = image_config.to_bytes()?;
        let mut layers = spec.base.layers.clone();
        layers.push(layer);
        let img = self.create_image(
            &bytes,
            &layers,
            CreateOptions {
                parent: Some(spec.base.id.clone()),
                extra_blobs: Vec::new(),
            },
        )?;
        drop(applied);
        if let Some(t) = spec.tag {
            self.tag_id(&img.id, t)?;
        }
        Ok(img.id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: serde_json::Value) -> ContainerConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn merge_fills_unset_fields_like_moby() {
        let container = cfg(serde_json::json!({
            "User": "nobody", "Env": ["PATH=/bin", "A=1"], "Cmd": ["sleep", "1"],
            "WorkingDir": "/w", "Labels": {"x": "1", "y": "2"}, "StopSignal": "SIGINT",
            "ExposedPorts": {"80/tcp": {}}
        }));
        let mut user = cfg(serde_json::json!({"Env": ["A=2"], "Labels": {"x": "9"}}));
        merge(&mut user, &container);
        assert_eq!(user.user, "nobody");
        assert_eq!(
            user.env.as_deref().unwrap(),
            ["A=2".to_string(), "PATH=/bin".to_string()]
        );
        assert_eq!(user.cmd.as_deref().unwrap(), ["sleep", "1"]);
        assert_eq!(user.working_dir, "/w");
        let labels = user.labels.unwrap();
        assert_eq!(labels["x"], "9");
        assert_eq!(labels["y"], "2");
        assert_eq!(user.stop_signal, "SIGINT");
        assert!(user.exposed_ports.unwrap().contains_key("80/tcp"));

        // An entrypoint in the request keeps the container's cmd out.
        let mut user = cfg(serde_json::json!({"Entrypoint": ["/bin/app"]}));
        merge(&mut user, &container);
        assert_eq!(user.cmd, None);
        assert_eq!(user.entrypoint.as_deref().unwrap(), ["/bin/app"]);
    }
}
