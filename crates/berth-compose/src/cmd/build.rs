//! Building a service's image through the classic `POST /build` (what Compose v2 does against
//! a daemon without BuildKit sessions): the context directory sent as a tar, tagged with the
//! service's image name.

use std::path::{Path, PathBuf};

use berth_api::backend::BuildOptions;
use berth_api::client::Client;
use bytes::Bytes;
use futures_util::StreamExt;

use super::{image_name, CmdError, CmdResult, Ui};
use crate::model::{Project, Service};

/// Writes the build context `dir` as a tar (`.dockerignore` is not applied yet: the whole
/// directory is sent, which only costs transfer time).
fn context_tar(dir: &Path, inline: Option<&str>) -> CmdResult<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    if dir.is_dir() {
        b.append_dir_all(".", dir).map_err(|e| {
            CmdError::msg(format!(
                "cannot read the build context {}: {e}",
                dir.display()
            ))
        })?;
    }
    if let Some(text) = inline {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "Dockerfile.berth-inline", text.as_bytes())
            .map_err(|e| CmdError::msg(e.to_string()))?;
    }
    b.into_inner().map_err(|e| CmdError::msg(e.to_string()))
}

/// Builds the image of `s` (tagged `image` or `<project>-<service>`).
pub async fn build_service(client: &Client, ui: &Ui, project: &Project, s: &Service) -> CmdResult {
    let Some(b) = &s.build else {
        return Ok(());
    };
    if b.ssh.is_some() {
        return Err(CmdError::msg(format!(
            "service {:?}: build.ssh is not supported by berth compose (the classic builder has no SSH forwarding)",
            s.name
        )));
    }
    if !b.secrets.is_empty() {
        return Err(CmdError::msg(format!(
            "service {:?}: build.secrets is not supported by berth compose (the classic builder has no build secrets)",
            s.name
        )));
    }
    if !b.additional_contexts.is_empty() {
        return Err(CmdError::msg(format!(
            "service {:?}: build.additional_contexts is not supported by the classic builder",
            s.name
        )));
    }
    let dir = PathBuf::from(&b.context);
    if !dir.is_dir() {
        return Err(CmdError::msg(format!(
            "unable to prepare context: path {:?} not found",
            b.context
        )));
    }
    let inline = (!b.dockerfile_inline.is_empty()).then_some(b.dockerfile_inline.as_str());
    let tar = context_tar(&dir, inline)?;
    let tag = image_name(&project.name, s);
    let res = format!("Image {tag}");
    ui.event(&res, "Building");
    let mut labels = b.labels.clone();
    labels.insert(super::PROJECT_LABEL.into(), project.name.clone());
    labels.insert(super::SERVICE_LABEL.into(), s.name.clone());
    labels.insert(super::VERSION_LABEL.into(), super::COMPOSE_VERSION.into());
    let mut tags = vec![tag.clone()];
    tags.extend(b.tags.iter().cloned());
    let opts = BuildOptions {
        tags,
        dockerfile: if inline.is_some() {
            "Dockerfile.berth-inline".into()
        } else {
            b.dockerfile.clone()
        },
        rm: true,
        no_cache: b.no_cache,
        pull: b.pull,
        build_args: b.args.clone(),
        labels,
        cache_from: b.cache_from.clone(),
        target: (!b.target.is_empty()).then(|| b.target.clone()),
        network_mode: (!b.network.is_empty()).then(|| b.network.clone()),
        shm_size: (b.shm_size.0 != 0).then_some(b.shm_size.0),
        version: "1".into(),
        ..Default::default()
    };
    let body: berth_api::backend::BodyStream =
        Box::pin(futures_util::stream::once(
            async move { Ok(Bytes::from(tar)) },
        ));
    let mut stream = client.build(&opts, body).await.map_err(|e| {
        CmdError::msg(format!(
            "failed to build service {:?}: {}",
            s.name,
            e.daemon_message().unwrap_or(&e.to_string())
        ))
    })?;
    while let Some(m) = stream.next().await {
        let m = m?;
        if let Some(e) = m.error.or(m.error_detail.map(|d| d.message)) {
            return Err(CmdError::msg(format!(
                "failed to build service {:?}: {e}",
                s.name
            )));
        }
    }
    ui.event(&res, "Built");
    Ok(())
}

/// `compose build`.
pub async fn build(client: &Client, ui: &Ui, project: &Project, args: &[String]) -> CmdResult {
    for s in super::select(project, args)? {
        if s.build.is_some() {
            build_service(client, ui, project, s).await?;
        }
    }
    Ok(())
}
