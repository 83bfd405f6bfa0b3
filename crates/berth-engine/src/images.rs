//! Images for the API (list, inspect, history, tag, rmi, load, save, import) and the container
//! rw layers, on top of `berth_image::store::ImageStore`. The store is synchronous; its slow
//! operations run on blocking threads.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use berth_api::models::*;
use berth_api::{
    ApiError, BodyStream, ByteStream, ImageCreateRequest, ImageDeleteOptions, ImageListOptions,
    ProgressStream,
};
use berth_image::archive::{self, LoadProgress};
use berth_image::error::ImageError;
use berth_image::store::{DeleteItem, Image};
use berth_image::{Digest, Reference};
use bytes::Bytes;
use futures_util::StreamExt;
use http::StatusCode;

use crate::container::ContainerRecord;
use crate::Engine;

/// What create needs of an image.
pub(crate) struct ImageRef {
    pub id: String,
    pub top: Option<berth_image::layer::ChainId>,
    pub config: ContainerConfig,
}

pub(crate) fn api_err(e: ImageError) -> ApiError {
    let status =
        StatusCode::from_u16(e.kind().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::new(status, e.to_string())
}

pub(crate) fn join_err(e: tokio::task::JoinError) -> ApiError {
    ApiError::internal(format!("internal error: {e}"))
}

/// The image's container config in wire form.
pub(crate) fn wire_config(img: &Image) -> ContainerConfig {
    img.config
        .config
        .as_ref()
        .and_then(|c| serde_json::to_value(c).ok())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

fn wire_container_config(img: &Image) -> Option<ContainerConfig> {
    img.config
        .container_config
        .as_ref()
        .and_then(|c| serde_json::to_value(c).ok())
        .and_then(|v| serde_json::from_value(v).ok())
}

/// A `Write` that forwards chunks to an async channel (for streaming `save` from a blocking
/// thread). A closed receiver (the client left) turns into a write error that stops the save.
pub(crate) struct ChannelWriter {
    pub(crate) tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    pub(crate) buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 256 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

/// A blocking reader over a request body stream.
pub(crate) fn body_reader(body: BodyStream) -> impl Read + Send {
    let async_read = tokio_util::io::StreamReader::new(body);
    tokio_util::io::SyncIoBridge::new(async_read)
}

pub(crate) fn stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

impl Engine {
    pub(crate) async fn image_for_create(&self, name: &str) -> Result<ImageRef, ApiError> {
        let img = self.images.resolve(name).map_err(api_err)?;
        Ok(ImageRef {
            id: img.id.to_string(),
            top: img.top_chain_id().cloned(),
            config: wire_config(&img),
        })
    }

    pub(crate) async fn create_rw_layer(&self, id: &str, image: &ImageRef) -> Result<(), ApiError> {
        let store = self.images.clone();
        let id = id.to_string();
        let top = image.top.clone();
        tokio::task::spawn_blocking(move || store.layers().create_rw(&id, top.as_ref()))
            .await
            .map_err(join_err)?
            .map_err(|e| {
                ApiError::internal(format!("cannot create the container's filesystem: {e}"))
            })
    }

    pub(crate) async fn mount_rw_layer(&self, id: &str) -> Result<PathBuf, ApiError> {
        let store = self.images.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || store.layers().mount_rw(&id))
            .await
            .map_err(join_err)?
            .map_err(|e| {
                ApiError::internal(format!("cannot mount the container's filesystem: {e}"))
            })
    }

    pub(crate) async fn unmount_rw_layer(&self, id: &str) {
        let store = self.images.clone();
        let id2 = id.to_string();
        match tokio::task::spawn_blocking(move || store.layers().unmount_rw(&id2)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(id, "unmount of the container's filesystem: {e}"),
            Err(e) => tracing::warn!(id, "unmount task: {e}"),
        }
    }

    pub(crate) async fn remove_rw_layer(&self, id: &str) {
        let store = self.images.clone();
        let id2 = id.to_string();
        match tokio::task::spawn_blocking(move || store.layers().remove_rw(&id2)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(id, "removal of the container's filesystem: {e}"),
            Err(e) => tracing::warn!(id, "removal task: {e}"),
        }
    }

    pub(crate) fn rw_mount_path(&self, id: &str) -> PathBuf {
        self.images
            .layers()
            .rw_merged(id)
            .unwrap_or_else(|_| self.cfg.data_root.join("overlay2").join(id).join("merged"))
    }

    /// (SizeRw, SizeRootFs).
    pub(crate) async fn container_sizes(&self, r: &ContainerRecord) -> (i64, i64) {
        let store = self.images.clone();
        let id = r.id.clone();
        let image = r.image_id.clone();
        tokio::task::spawn_blocking(move || {
            let rw = store.layers().rw_size(&id).unwrap_or(0) as i64;
            let img = store.resolve(&image).map(|i| i.size() as i64).unwrap_or(0);
            (rw, rw + img)
        })
        .await
        .unwrap_or((0, 0))
    }

    pub(crate) fn graph_driver_data(&self, r: &ContainerRecord) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let layers = self.images.layers();
        if let Ok(img) = self.images.resolve(&r.image_id) {
            if let Ok(dirs) = self.images.layer_dirs(&img) {
                let lower: Vec<String> = dirs
                    .iter()
                    .map(|d| d.to_string_lossy().into_owned())
                    .collect();
                m.insert("LowerDir".into(), lower.join(":"));
            }
        }
        if let Ok(p) = layers.rw_merged(&r.id) {
            m.insert("MergedDir".into(), p.to_string_lossy().into_owned());
        }
        if let Ok(p) = layers.rw_diff_dir(&r.id) {
            if let Some(parent) = p.parent() {
                m.insert(
                    "WorkDir".into(),
                    parent.join("work").to_string_lossy().into_owned(),
                );
            }
            m.insert("UpperDir".into(), p.to_string_lossy().into_owned());
        }
        m
    }

    pub(crate) fn image_id_for_filter(&self, name: &str) -> Option<String> {
        self.images.resolve(name).ok().map(|i| i.id.to_string())
    }

    pub(crate) fn image_count(&self) -> usize {
        self.images.list().len()
    }

    fn image_graph_driver(&self, img: &Image) -> GraphDriverData {
        let mut data = BTreeMap::new();
        if let Ok(mut dirs) = self.images.layer_dirs(img) {
            if !dirs.is_empty() {
                let upper = dirs.remove(0);
                if let Some(parent) = upper.parent() {
                    data.insert(
                        "MergedDir".into(),
                        parent.join("merged").to_string_lossy().into_owned(),
                    );
                    data.insert(
                        "WorkDir".into(),
                        parent.join("work").to_string_lossy().into_owned(),
                    );
                }
                data.insert("UpperDir".into(), upper.to_string_lossy().into_owned());
                if !dirs.is_empty() {
                    let lower: Vec<String> = dirs
                        .iter()
                        .map(|d| d.to_string_lossy().into_owned())
                        .collect();
                    data.insert("LowerDir".into(), lower.join(":"));
                }
            }
        }
        GraphDriverData {
            data: Some(data),
            name: "overlay2".into(),
        }
    }

    pub(crate) async fn image_list(
        &self,
        o: ImageListOptions,
    ) -> Result<Vec<ImageSummary>, ApiError> {
        o.filters
            .validate(&["dangling", "label", "before", "since", "reference", "until"])?;
        let dangling = o.filters.bool_value("dangling")?;
        let refs: Vec<String> = o
            .filters
            .get("reference")
            .iter()
            .map(|s| s.to_string())
            .collect();
        let point = |key: &str| -> Result<Option<i64>, ApiError> {
            match o.filters.get(key).first() {
                None => Ok(None),
                Some(v) => self
                    .images
                    .resolve(v)
                    .map(|i| Some(i.created_unix()))
                    .map_err(api_err),
            }
        };
        let before = point("before")?;
        let since = point("since")?;
        let until = crate::ops::until(&o.filters)?;
        let all = self.images.list();
        // Parents of other images are intermediate layers, hidden without -a when untagged.
        let parents: std::collections::HashSet<Digest> =
            all.iter().filter_map(|i| i.parent.clone()).collect();
        let mut out = Vec::new();
        for img in &all {
            let tags = img.familiar_tags();
            let is_dangling = tags.is_empty();
            if !o.all && is_dangling && parents.contains(&img.id) {
                continue;
            }
            if let Some(d) = dangling {
                if d != is_dangling {
                    continue;
                }
            }
            let cfg = wire_config(img);
            let labels = cfg.labels.clone().unwrap_or_default();
            if o.filters.contains("label") && !o.filters.match_kv_list("label", &labels) {
                continue;
            }
            if before.is_some_and(|b| img.created_unix() >= b)
                || since.is_some_and(|s| img.created_unix() <= s)
                || until.is_some_and(|u| img.created_unix() >= u)
            {
                continue;
            }
            let mut shown_tags = tags.clone();
            if !refs.is_empty() {
                shown_tags.retain(|t| refs.iter().any(|p| reference_matches(p, t)));
                if shown_tags.is_empty() {
                    continue;
                }
            }
            let size = img.size() as i64;
            out.push(ImageSummary {
                containers: -1,
                created: img.created_unix(),
                id: img.id.to_string(),
                labels: cfg.labels.clone(),
                parent_id: img
                    .parent
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                repo_digests: if img.repo_digests.is_empty() && is_dangling {
                    Some(vec!["<none>@<none>".into()])
                } else if img.repo_digests.is_empty() {
                    None
                } else {
                    Some(img.familiar_digests())
                },
                repo_tags: if is_dangling {
                    Some(vec!["<none>:<none>".into()])
                } else {
                    Some(shown_tags)
                },
                shared_size: -1,
                size,
                virtual_size: size,
            });
        }
        Ok(out)
    }

    pub(crate) async fn image_inspect(&self, name: &str) -> Result<ImageInspect, ApiError> {
        let img = self.images.resolve(name).map_err(|e| match e.kind() {
            berth_image::error::ErrorKind::NotFound => {
                ApiError::not_found(format!("no such image: {name}: {e}"))
            }
            _ => api_err(e),
        })?;
        let c = &img.config;
        let size = img.size() as i64;
        Ok(ImageInspect {
            id: img.id.to_string(),
            repo_tags: Some(img.familiar_tags()),
            repo_digests: Some(img.familiar_digests()),
            parent: img
                .parent
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            comment: c.comment.clone(),
            created: c
                .created
                .clone()
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            container: c.container.clone(),
            container_config: wire_container_config(&img)
                .or_else(|| Some(ContainerConfig::default())),
            docker_version: c.docker_version.clone(),
            author: c.author.clone(),
            config: Some(wire_config(&img)),
            architecture: c.architecture.clone(),
            variant: c.variant.clone(),
            os: c.os.clone(),
            os_version: String::new(),
            size,
            virtual_size: size,
            graph_driver: self.image_graph_driver(&img),
            root_fs: RootFs {
                kind: "layers".into(),
                layers: Some(img.layers.iter().map(|l| l.diff_id.to_string()).collect()),
                base_layer: String::new(),
            },
            metadata: ImageMetadata {
                last_tag_time: img
                    .last_tag_time
                    .clone()
                    .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            },
        })
    }

    pub(crate) async fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>, ApiError> {
        let items = self.images.history(name).map_err(api_err)?;
        Ok(items
            .into_iter()
            .map(|h| HistoryItem {
                comment: h.comment,
                created: h.created,
                created_by: h.created_by,
                id: h.id,
                size: h.size,
                tags: if h.tags.is_empty() {
                    None
                } else {
                    Some(h.tags)
                },
            })
            .collect())
    }

    pub(crate) async fn image_tag(
        &self,
        name: &str,
        repo: &str,
        tag: Option<&str>,
    ) -> Result<(), ApiError> {
        let r =
            Reference::parse_normalized(repo).map_err(|e| ApiError::bad_request(e.to_string()))?;
        if r.digest().is_some() {
            return Err(ApiError::bad_request(
                "refusing to create a tag with a digest reference",
            ));
        }
        let target = match tag.filter(|t| !t.is_empty()) {
            Some(t) => r
                .with_tag(t)
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
            None => r.with_default_tag(),
        };
        let img = self.images.tag(name, &target).map_err(api_err)?;
        let id = img.id.to_string();
        self.events
            .image(&self.images, "tag", &id, &target.familiar());
        Ok(())
    }

    pub(crate) async fn image_delete(
        &self,
        name: &str,
        o: ImageDeleteOptions,
    ) -> Result<Vec<ImageDeleteResponseItem>, ApiError> {
        let store = self.images.clone();
        let name2 = name.to_string();
        // The image each reference names, for the untag events (moby's actor is the image ID).
        let untag_ids: std::collections::HashMap<String, String> = self
            .images
            .list()
            .iter()
            .flat_map(|img| {
                let id = img.id.to_string();
                img.repo_tags
                    .iter()
                    .chain(img.repo_digests.iter())
                    .map(move |r| (r.familiar(), id.clone()))
            })
            .collect();
        // Which containers use which image, captured up front: the store calls the callback
        // under its own lock.
        let users: std::collections::HashMap<String, (String, bool)> = self
            .all_containers()
            .iter()
            .map(|c| {
                c.with(|r| {
                    (
                        r.image_id.clone(),
                        (c.id.clone(), r.state.status.is_running()),
                    )
                })
            })
            .fold(
                std::collections::HashMap::new(),
                |mut m, (img, (id, running))| {
                    let e = m.entry(img).or_insert((id.clone(), running));
                    if running && !e.1 {
                        *e = (id, running);
                    }
                    m
                },
            );
        let items = tokio::task::spawn_blocking(move || {
            store.delete(&name2, o.force, !o.noprune, &|d: &Digest| {
                users.get(&d.to_string()).cloned()
            })
        })
        .await
        .map_err(join_err)?
        .map_err(api_err)?;
        let mut out = Vec::new();
        for it in items {
            match it {
                DeleteItem::Untagged(r) => {
                    // moby logs the image ID (as actor and name), not the reference.
                    let id = untag_ids.get(&r).cloned().unwrap_or_else(|| r.clone());
                    self.events.image(&self.images, "untag", &id, &id);
                    out.push(ImageDeleteResponseItem {
                        untagged: Some(r),
                        deleted: None,
                    })
                }
                DeleteItem::Deleted(id) => {
                    self.events.image(&self.images, "delete", &id, &id);
                    out.push(ImageDeleteResponseItem {
                        untagged: None,
                        deleted: Some(id),
                    })
                }
            }
        }
        Ok(out)
    }

    pub(crate) async fn image_create(
        &self,
        req: ImageCreateRequest,
    ) -> Result<ProgressStream, ApiError> {
        match req {
            ImageCreateRequest::Pull {
                from_image,
                tag,
                platform,
                auth,
            } => self.pull_image(from_image, tag, platform, auth).await,
            ImageCreateRequest::Import {
                from_src,
                repo,
                tag,
                message,
                changes,
                body,
                ..
            } => {
                if from_src != "-" {
                    return Err(ApiError::not_implemented(
                        "importing from a URL (fromSrc=<url>)",
                    ));
                }
                let target = match repo.filter(|r| !r.is_empty()) {
                    Some(r) => {
                        let r = Reference::parse_normalized(&r)
                            .map_err(|e| ApiError::bad_request(e.to_string()))?;
                        Some(match tag.filter(|t| !t.is_empty()) {
                            Some(t) => r
                                .with_tag(&t)
                                .map_err(|e| ApiError::bad_request(e.to_string()))?,
                            None => r.with_default_tag(),
                        })
                    }
                    None => None,
                };
                let store = self.images.clone();
                let id = tokio::task::spawn_blocking(move || {
                    let mut reader = body_reader(body);
                    archive::import(
                        &store,
                        &mut reader,
                        &changes,
                        message.as_deref(),
                        target.as_ref(),
                    )
                })
                .await
                .map_err(join_err)?
                .map_err(api_err)?;
                let id_s = id.to_string();
                self.events.image(&self.images, "import", &id_s, &id_s);
                let msg = JsonMessage {
                    status: Some(id.to_string()),
                    ..Default::default()
                };
                Ok(Box::pin(futures_util::stream::iter(vec![Ok(msg)])))
            }
        }
    }

    pub(crate) async fn images_load(
        &self,
        body: BodyStream,
        quiet: bool,
    ) -> Result<ProgressStream, ApiError> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<JsonMessage, ApiError>>(64);
        let store = self.images.clone();
        let events_tx = tx.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let mut reader = body_reader(body);
            let mut on_progress = |p: LoadProgress| {
                let msg = match &p {
                    LoadProgress::LoadingLayer { id, current, total } => {
                        if quiet {
                            return;
                        }
                        JsonMessage {
                            status: Some("Loading layer".into()),
                            progress_detail: Some(ProgressDetail {
                                current: *current as i64,
                                total: *total as i64,
                                ..Default::default()
                            }),
                            progress: Some(crate::distribution::progress_text(*current, *total)),
                            id: Some(id.clone()),
                            ..Default::default()
                        }
                    }
                    other => JsonMessage {
                        stream: Some(format!("{}\n", other.message())),
                        ..Default::default()
                    },
                };
                let _ = events_tx.blocking_send(Ok(msg));
            };
            archive::load(&store, &mut reader, &mut on_progress)
        });
        let engine_events = self.events_handle();
        let images = self.images.clone();
        tokio::spawn(async move {
            match handle.await {
                Ok(Ok(loaded)) => {
                    for img in loaded {
                        let id = img.id.to_string();
                        engine_events.image(&images, "load", &id, &id);
                    }
                }
                Ok(Err(e)) => {
                    let _ = tx.send(Err(api_err(e))).await;
                }
                Err(e) => {
                    let _ = tx.send(Err(join_err(e))).await;
                }
            }
        });
        Ok(Box::pin(stream_from(rx)))
    }

    pub(crate) async fn images_get(&self, names: Vec<String>) -> Result<ByteStream, ApiError> {
        if names.is_empty() {
            return Err(ApiError::bad_request("no image names given"));
        }
        let mut ids = Vec::new();
        for n in &names {
            let id = self.images.resolve(n).map_err(api_err)?.id.to_string();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
        let store = self.images.clone();
        let events = self.events_handle();
        tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(256 * 1024),
            };
            let r = archive::save(&store, &names, &mut w).and_then(|_| {
                w.flush()
                    .map_err(|e| ImageError::Internal(format!("sending the archive: {e}")))
            });
            match r {
                // moby logs one `save` per image, once the archive is written.
                Ok(()) => {
                    for id in &ids {
                        events.image(&store, "save", id, id);
                    }
                }
                Err(e) => {
                    tracing::warn!("save failed: {e}");
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                }
            }
        });
        Ok(Box::pin(stream_from(rx).map(|r| r)))
    }
}

/// Docker's `reference` filter: a glob on `name:tag` (or the name alone).
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let (name, _) = tag.rsplit_once(':').unwrap_or((tag, ""));
    glob_match(pattern, tag) || glob_match(pattern, name)
}

/// `*`, `?` glob matching where `*` does not cross `/` (Go's path.Match).
fn glob_match(p: &str, s: &str) -> bool {
    fn rec(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                if rec(&p[1..], s) {
                    return true;
                }
                match s.first() {
                    Some(c) if *c != b'/' => rec(p, &s[1..]),
                    _ => false,
                }
            }
            (Some(b'?'), Some(c)) if *c != b'/' => rec(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => rec(&p[1..], &s[1..]),
            _ => false,
        }
    }
    rec(p.as_bytes(), s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_filter_globs() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:latest"));
        assert!(reference_matches("busybox:lat*", "busybox:latest"));
        assert!(!reference_matches("busy", "busybox:latest"));
        assert!(!reference_matches("*", "me/app:1"));
        assert!(reference_matches("*/*", "me/app:1"));
    }
}
