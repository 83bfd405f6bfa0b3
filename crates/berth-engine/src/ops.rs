//! `POST /containers/prune`, `POST /images/prune`, `GET /system/df` and
//! `GET /containers/{id}/changes`, `GET /containers/{id}/export` and `POST /commit`, as dockerd
//! does them,
//! and the `until` filter they share with `GET /images/json`.

use std::collections::{BTreeMap, HashMap, HashSet};

use berth_api::filters::Filters;
use berth_api::gotime::parse_timestamp;
use berth_api::models::{ContainersPruneReport, ImagesPruneReport, SystemDf};
use berth_api::{ApiError, ContainerListOptions, ImageDeleteOptions, ImageListOptions};

use crate::container::Status;
use crate::images::{join_err, wire_config};
use crate::Engine;

/// Mount points every container gets (dockerd's init layer): not changes of the container.
const INIT_PATHS: &[&str] = &[
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
    "etc/mtab",
    "dev",
    "proc",
    "sys",
    ".dockerenv",
];

/// The `until` filter of the prune endpoints (moby's `getUntilFromPruneFilters`): one value,
/// a Go duration before now, an RFC 3339 time or a Unix timestamp.
pub(crate) fn until(f: &Filters) -> Result<Option<i64>, ApiError> {
    let values = f.get("until");
    match values.as_slice() {
        [] => Ok(None),
        [v] => parse_timestamp(v, chrono::Utc::now())
            .map(|t| Some(t.timestamp()))
            .map_err(ApiError::bad_request),
        _ => Err(ApiError::bad_request(
            "more than one until filter specified",
        )),
    }
}

/// moby's `matchLabels`: every `label` must match and no `label!` may.
pub(crate) fn labels_match(f: &Filters, labels: &BTreeMap<String, String>) -> bool {
    if !f.match_kv_list("label", labels) {
        return false;
    }
    !(f.contains("label!") && f.match_kv_list("label!", labels))
}

impl Engine {
    /// Removes every container that is not running (created, exited or dead).
    pub(crate) async fn containers_prune(
        &self,
        filters: Filters,
    ) -> Result<ContainersPruneReport, ApiError> {
        filters.validate(&["until", "label", "label!"])?;
        let until = until(&filters)?;
        let mut report = ContainersPruneReport::default();
        let mut deleted = Vec::new();
        for c in self.all_containers() {
            let (candidate, record) = c.with(|r| {
                let labels = r.config.labels.clone().unwrap_or_default();
                let ok = !r.state.status.is_running()
                    && until.is_none_or(|u| r.created.timestamp() < u)
                    && labels_match(&filters, &labels);
                (ok, r.clone())
            });
            if !candidate {
                continue;
            }
            let (rw, _) = self.container_sizes(&record).await;
            match self.remove_container(&c, false, false).await {
                Ok(()) => {
                    report.space_reclaimed += rw.max(0) as u64;
                    deleted.push(c.id.clone());
                }
                // Started or removed meanwhile: not pruned, as dockerd.
                Err(e) => tracing::debug!(id = %c.id, "prune: not removed: {}", e.message),
            }
        }
        report.containers_deleted = (!deleted.is_empty()).then_some(deleted);
        let mut attrs = BTreeMap::new();
        attrs.insert("reclaimed".to_string(), report.space_reclaimed.to_string());
        self.events.emit("container", "prune", "", attrs);
        Ok(report)
    }

    /// Removes unused images: untagged ones (`dangling=true`, the default) or every image no
    /// container uses (`dangling=false`, `docker image prune -a`).
    pub(crate) async fn images_prune(
        &self,
        filters: Filters,
    ) -> Result<ImagesPruneReport, ApiError> {
        filters.validate(&["dangling", "until", "label", "label!"])?;
        let dangling_only = filters.bool_value("dangling")?.unwrap_or(true);
        let until = until(&filters)?;
        let used: HashSet<String> = self
            .all_containers()
            .iter()
            .map(|c| c.with(|r| r.image_id.clone()))
            .collect();
        let layers_before = self.layers_size().await;
        let mut items = Vec::new();
        // Passes until nothing more goes: a parent is kept while its child exists, and goes
        // in the next pass once the child went (as moby's prune of children does).
        let mut skipped: HashSet<String> = HashSet::new();
        loop {
            let all = self.images.list();
            let parents: HashSet<String> = all
                .iter()
                .filter_map(|i| i.parent.as_ref().map(|p| p.to_string()))
                .collect();
            let mut progress = false;
            for img in &all {
                let id = img.id.to_string();
                let tags = img.familiar_tags();
                if skipped.contains(&id)
                    || used.contains(&id)
                    || (dangling_only && !tags.is_empty())
                    || parents.contains(&id)
                    || until.is_some_and(|u| img.created_unix() >= u)
                {
                    continue;
                }
                let labels = wire_config(img).labels.unwrap_or_default();
                if !labels_match(&filters, &labels) {
                    skipped.insert(id);
                    continue;
                }
                // Every reference first (an image in several repositories cannot be deleted
                // by ID without force), then the image.
                let opts = ImageDeleteOptions {
                    force: false,
                    noprune: false,
                };
                let mut refs = tags.clone();
                refs.extend(img.familiar_digests());
                for r in refs {
                    match self.image_delete(&r, opts).await {
                        Ok(mut v) => items.append(&mut v),
                        Err(e) => tracing::debug!(image = %r, "prune: {}", e.message),
                    }
                }
                if self.images.resolve(&id).is_ok() {
                    match self.image_delete(&id, opts).await {
                        Ok(mut v) => items.append(&mut v),
                        Err(e) => tracing::debug!(image = %id, "prune: {}", e.message),
                    }
                }
                if self.images.resolve(&id).is_ok() {
                    skipped.insert(id);
                } else {
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
        let layers_after = self.layers_size().await;
        let report = ImagesPruneReport {
            images_deleted: (!items.is_empty()).then_some(items),
            space_reclaimed: layers_before.saturating_sub(layers_after),
        };
        let mut attrs = BTreeMap::new();
        attrs.insert("reclaimed".to_string(), report.space_reclaimed.to_string());
        self.events.emit("image", "prune", "", attrs);
        Ok(report)
    }

    /// `GET /containers/{id}/changes` (`docker diff`).
    pub(crate) async fn container_changes(
        &self,
        id: &str,
    ) -> Result<Vec<berth_api::models::FilesystemChange>, ApiError> {
        let c = self.lookup(id)?;
        let (cid, image) = c.with(|r| (r.id.clone(), r.image_id.clone()));
        let store = self.images.clone();
        let changes = tokio::task::spawn_blocking(move || {
            let lowers = match store.resolve(&image) {
                Ok(img) => store.layer_dirs(&img).unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            store.layers().rw_changes(&cid, &lowers, INIT_PATHS)
        })
        .await
        .map_err(join_err)?
        .map_err(|e| ApiError::internal(format!("cannot list the container's changes: {e}")))?;
        Ok(changes
            .into_iter()
            .map(|(kind, path)| berth_api::models::FilesystemChange {
                path,
                kind: kind.code(),
            })
            .collect())
    }

    /// `GET /containers/{id}/export`: the container's filesystem as a tar stream. The
    /// container's operation lock is held while it is read (no start, stop or removal in
    /// between); a stopped container's layer is mounted for the export and unmounted after.
    pub(crate) async fn container_export(
        self: &std::sync::Arc<Self>,
        id: &str,
    ) -> Result<berth_api::ByteStream, ApiError> {
        let c = self.lookup(id)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
        let engine = self.clone();
        tokio::spawn(async move {
            let _op = c.op.lock().await;
            let cid = c.id.clone();
            let store = engine.images.clone();
            let id2 = cid.clone();
            let was_mounted = tokio::task::spawn_blocking(move || {
                store.layers().is_mounted(&id2).unwrap_or(false)
            })
            .await
            .unwrap_or(false);
            let mounted = if was_mounted {
                Ok(())
            } else {
                engine
                    .mount_rw_layer(&cid)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.message)
            };
            let res = match mounted {
                Err(e) => Err(format!("cannot mount the container's filesystem: {e}")),
                Ok(()) => {
                    let store = engine.images.clone();
                    let id2 = cid.clone();
                    let tx2 = tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let mut w = crate::images::ChannelWriter {
                            tx: tx2,
                            buf: Vec::with_capacity(256 * 1024),
                        };
                        store
                            .layers()
                            .export_rw(&id2, &mut w)
                            .map_err(|e| e.to_string())
                            .and_then(|()| std::io::Write::flush(&mut w).map_err(|e| e.to_string()))
                    })
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()))
                }
            };
            if let Err(e) = res {
                tracing::warn!(id = %cid, "export failed: {e}");
                let _ = tx.send(Err(std::io::Error::other(e))).await;
            }
            if !was_mounted && !c.status().is_running() {
                engine.unmount_rw_layer(&cid).await;
            }
        });
        Ok(Box::pin(crate::images::stream_from(rx)))
    }

    /// `POST /commit`: the container's writable layer as a new image (paused meanwhile when
    /// running, unless `pause=false`).
    pub(crate) async fn commit_container(
        &self,
        o: berth_api::CommitOptions,
    ) -> Result<berth_api::models::IdResponse, ApiError> {
        let c = self.lookup(&o.container)?;
        let tag = match o.repo.as_deref().filter(|r| !r.is_empty()) {
            None => None,
            Some(repo) => {
                let s = match o.tag.as_deref().filter(|t| !t.is_empty()) {
                    Some(t) => format!("{repo}:{t}"),
                    None => repo.to_string(),
                };
                let r = berth_image::Reference::parse_normalized(&s)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                Some(if r.digest().is_some() {
                    return Err(ApiError::bad_request(format!(
                        "invalid reference format: {s} (a commit is tagged, not digested)"
                    )));
                } else {
                    r.with_default_tag()
                })
            }
        };
        let (image_id, wire, cmd) = c.with(|r| {
            (
                r.image_id.clone(),
                r.config.clone(),
                r.config.cmd.clone().unwrap_or_default(),
            )
        });
        let convert = |v: serde_json::Result<serde_json::Value>| {
            v.and_then(serde_json::from_value::<berth_image::config::ContainerConfig>)
                .map_err(|e| ApiError::bad_request(format!("invalid config: {e}")))
        };
        let container_config = convert(serde_json::to_value(&wire))?;
        let user_config = match &o.config {
            Some(cfg) => Some(convert(serde_json::to_value(cfg))?),
            None => None,
        };
        let paused =
            o.pause && c.status() == Status::Running && self.pause_container(&c).await.is_ok();
        let res = {
            let _op = c.op.lock().await;
            let store = self.images.clone();
            let cid = c.id.clone();
            tokio::task::spawn_blocking(move || {
                let base = store.resolve(&image_id)?;
                store.commit(berth_image::commit::CommitSpec {
                    container_id: &cid,
                    base: &base,
                    container_config,
                    config: user_config,
                    changes: &o.changes,
                    comment: &o.comment,
                    author: &o.author,
                    created_by: cmd.join(" "),
                    tag: tag.as_ref(),
                })
            })
            .await
        };
        if paused {
            if let Err(e) = self.unpause_container(&c).await {
                tracing::warn!(id = %c.id, "unpause after commit: {}", e.message);
            }
        }
        let id = res.map_err(join_err)?.map_err(crate::images::api_err)?;
        let attrs = self.event_attrs(&c);
        self.events.emit("container", "commit", &c.id, attrs);
        Ok(berth_api::models::IdResponse { id: id.to_string() })
    }

    /// The bytes held by all layer snapshots.
    async fn layers_size(&self) -> u64 {
        let store = self.images.clone();
        tokio::task::spawn_blocking(move || {
            let layers = store.layers();
            layers
                .list()
                .unwrap_or_default()
                .iter()
                .filter_map(|c| layers.meta(c).ok())
                .map(|m| m.size)
                .sum()
        })
        .await
        .unwrap_or(0)
    }

    /// `GET /system/df`: images (with how many containers use each and the bytes they share
    /// with other images), containers (with their writable layer's size) and all layers.
    pub(crate) async fn system_df(&self) -> Result<SystemDf, ApiError> {
        let mut images = self
            .image_list(ImageListOptions {
                all: false,
                filters: Filters::new(),
                ..Default::default()
            })
            .await?;
        let mut containers = self
            .list_containers(ContainerListOptions {
                all: true,
                size: true,
                ..Default::default()
            })
            .await?;
        // Per image: its layers; per layer: how many images hold it.
        let store = self.images.clone();
        let ids: Vec<String> = images.iter().map(|i| i.id.clone()).collect();
        let layer_info = tokio::task::spawn_blocking(move || {
            let mut per_image: HashMap<String, Vec<(String, u64)>> = HashMap::new();
            for id in ids {
                if let Ok(img) = store.resolve(&id) {
                    let ls = img
                        .layers
                        .iter()
                        .map(|l| (l.chain_id.to_string(), l.size))
                        .collect();
                    per_image.insert(id, ls);
                }
            }
            per_image
        })
        .await
        .map_err(join_err)?;
        let mut holders: HashMap<&str, usize> = HashMap::new();
        for ls in layer_info.values() {
            for (c, _) in ls {
                *holders.entry(c.as_str()).or_default() += 1;
            }
        }
        let mut users: HashMap<String, i64> = HashMap::new();
        for c in &containers {
            *users.entry(c.image_id.clone()).or_default() += 1;
        }
        for img in &mut images {
            img.containers = users.get(&img.id).copied().unwrap_or(0);
            img.shared_size = layer_info
                .get(&img.id)
                .map(|ls| {
                    ls.iter()
                        .filter(|(c, _)| holders.get(c.as_str()).copied().unwrap_or(0) > 1)
                        .map(|(_, s)| *s as i64)
                        .sum()
                })
                .unwrap_or(0);
        }
        for c in &mut containers {
            c.size_root_fs = c.size_root_fs.or(Some(0));
            c.size_rw = c.size_rw.or(Some(0));
        }
        let (build_cache, builder_size) = self.build_cache_df()?;
        Ok(SystemDf {
            layers_size: self.layers_size().await as i64,
            images: Some(images),
            containers: Some(containers),
            volumes: Some(self.volumes_usage().await?),
            build_cache: Some(build_cache),
            builder_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &str)]) -> Filters {
        let mut f = Filters::new();
        for (k, v) in pairs {
            f.add(*k, *v);
        }
        f
    }

    #[test]
    fn label_filters_follow_moby() {
        let mut labels = BTreeMap::new();
        labels.insert("env".to_string(), "ci".to_string());
        assert!(labels_match(&f(&[]), &labels));
        assert!(labels_match(&f(&[("label", "env")]), &labels));
        assert!(labels_match(&f(&[("label", "env=ci")]), &labels));
        assert!(!labels_match(&f(&[("label", "env=prod")]), &labels));
        assert!(!labels_match(&f(&[("label!", "env")]), &labels));
        assert!(labels_match(&f(&[("label!", "env=prod")]), &labels));
        assert!(labels_match(&f(&[("label!", "other")]), &labels));
    }

    #[test]
    fn until_takes_one_time_or_duration() {
        assert_eq!(until(&f(&[])).unwrap(), None);
        assert_eq!(
            until(&f(&[("until", "1700000000")])).unwrap(),
            Some(1_700_000_000)
        );
        let now = chrono::Utc::now().timestamp();
        let t = until(&f(&[("until", "1h")])).unwrap().unwrap();
        assert!((now - 3600 - t).abs() <= 2, "{t} vs {now}");
        let e = until(&f(&[("until", "soon")])).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(e.message.contains("soon"), "{}", e.message);
        assert!(until(&f(&[("until", "1h"), ("until", "2h")])).is_err());
    }
}
