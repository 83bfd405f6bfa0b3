//! `berth_api::Backend` for the engine: thin translations from API calls to engine operations.
//! Operations the engine does not implement yet keep the trait's default (501 with a message).

use std::future::Future;
use std::sync::Arc;

use berth_api::models::*;
use berth_api::*;

use crate::Engine;

/// The engine as the API server's backend.
#[derive(Clone)]
pub struct Daemon(pub Arc<Engine>);

impl Backend for Daemon {
    fn version(
        &self,
        _ctx: RequestContext,
    ) -> impl Future<Output = Result<SystemVersion, ApiError>> + Send {
        let e = self.0.clone();
        async move { Ok(e.version_info()) }
    }

    fn info(
        &self,
        _ctx: RequestContext,
    ) -> impl Future<Output = Result<SystemInfo, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.system_info() }
    }

    fn system_df(
        &self,
        _ctx: RequestContext,
    ) -> impl Future<Output = Result<SystemDf, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.system_df().await }
    }

    fn container_changes(
        &self,
        _ctx: RequestContext,
        id: String,
    ) -> impl Future<Output = Result<Vec<FilesystemChange>, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.container_changes(&id).await }
    }

    fn container_export(
        &self,
        _ctx: RequestContext,
        id: String,
    ) -> impl Future<Output = Result<ByteStream, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.container_export(&id).await }
    }

    fn container_archive_stat(
        &self,
        _ctx: RequestContext,
        id: String,
        path: String,
    ) -> impl Future<Output = Result<ContainerPathStat, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.archive_stat(&id, &path).await }
    }

    fn container_archive_get(
        &self,
        _ctx: RequestContext,
        id: String,
        path: String,
    ) -> impl Future<Output = Result<(ContainerPathStat, ByteStream), ApiError>> + Send {
        let e = self.0.clone();
        async move { e.archive_get(&id, &path).await }
    }

    fn container_archive_put(
        &self,
        _ctx: RequestContext,
        id: String,
        opts: ArchivePutOptions,
        body: BodyStream,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let e = self.0.clone();
        async move { e.archive_put(&id, opts, body).await }
    }

    fn container_stats(
        &self,
        _ctx: RequestContext,
        id: String,
        opts: StatsOptions,
    ) -> impl Future<Output = Result<ByteStream, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.container_stats(&id, opts).await }
    }

    fn commit(
        &self,
        _ctx: RequestContext,
        opts: CommitOptions,
    ) -> impl Future<Output = Result<IdResponse, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.commit_container(opts).await }
    }

    fn container_prune(
        &self,
        _ctx: RequestContext,
        filters: Filters,
    ) -> impl Future<Output = Result<ContainersPruneReport, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.containers_prune(filters).await }
    }

    fn image_prune(
        &self,
        _ctx: RequestContext,
        filters: Filters,
    ) -> impl Future<Output = Result<ImagesPruneReport, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.images_prune(filters).await }
    }

    fn events(
        &self,
        _ctx: RequestContext,
        opts: EventsOptions,
    ) -> impl Future<Output = Result<EventStream, ApiError>> + Send {
        let e = self.0.clone();
        async move {
            opts.filters.validate(&[
                "container",
                "event",
                "image",
                "label",
                "type",
                "volume",
                "network",
                "daemon",
                "plugin",
                "scope",
                "node",
                "service",
                "secret",
                "config",
            ])?;
            Ok(e.events_stream(opts))
        }
    }

    fn container_create(
        &self,
        _ctx: RequestContext,
        name: Option<String>,
        _platform: Option<String>,
        body: ContainerCreateBody,
    ) -> impl Future<Output = Result<ContainerCreateResponse, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.create_container(name, body).await }
    }

    fn container_list(
        &self,
        _ctx: RequestContext,
        opts: ContainerListOptions,
    ) -> impl Future<Output = Result<Vec<ContainerSummary>, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.list_containers(opts).await }
    }

    fn container_inspect(
        &self,
        _ctx: RequestContext,
        id: String,
        size: bool,
    ) -> impl Future<Output = Result<ContainerInspect, ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&id)?;
            e.inspect_container(&c, size).await
        }
    }

    fn container_start(
        &self,
        _ctx: RequestContext,
        id: String,
        _detach_keys: Option<String>,
    ) -> impl Future<Output = Result<ChangeOutcome, ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&id)?;
            Ok(if e.start_container(&c).await? {
                ChangeOutcome::Done
            } else {
                ChangeOutcome::NotModified
            })
        }
    }

    fn container_stop(
        &self,
        _ctx: RequestContext,
        id: String,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> impl Future<Output = Result<StopOutcome, ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&id)?;
            Ok(if e.stop_container(&c, signal, timeout).await? {
                ChangeOutcome::Done
            } else {
                ChangeOutcome::NotModified
            })
        }
    }

    fn container_restart(
        &self,
        _ctx: RequestContext,
        id: String,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&id)?;
            e.restart_container(&c, signal, timeout).await
        }
    }

    fn container_kill(
        &self,
        _ctx: RequestContext,
        id: String,
        signal: Option<String>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&id)?;
            e.kill_container(&c, signal).await
        }
    }

    fn container_wait(
        &self,
        _ctx: RequestContext,
        id: String,
        condition: WaitCondition,
    ) -> impl Future<Output = Result<WaitFuture, ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&id)?;
            Ok(e.wait_container(&c, condition))
        }
    }

    fn container_remove(
        &self,
        _ctx: RequestContext,
        id: String,
        opts: ContainerRemoveOptions,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let e = self.0.clone();
        async move {
            if opts.link {
                return Err(ApiError::bad_request("links are not supported by berth"));
            }
            let c = e.lookup(&id)?;
            e.remove_container(&c, opts.force, opts.volumes).await
        }
    }

    fn container_pause(
        &self,
        _ctx: RequestContext,
        id: String,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&id)?;
            e.pause_container(&c).await
        }
    }

    fn container_unpause(
        &self,
        _ctx: RequestContext,
        id: String,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&id)?;
            e.unpause_container(&c).await
        }
    }

    fn container_update(
        &self,
        _ctx: RequestContext,
        id: String,
        config: UpdateConfig,
    ) -> impl Future<Output = Result<ContainerUpdateResponse, ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&id)?;
            e.update_container(&c, config).await
        }
    }

    fn container_rename(
        &self,
        _ctx: RequestContext,
        id: String,
        new_name: String,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&id)?;
            e.rename_container(&c, &new_name).await
        }
    }

    fn container_top(
        &self,
        _ctx: RequestContext,
        id: String,
        ps_args: Option<String>,
    ) -> impl Future<Output = Result<ContainerTopResponse, ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&id)?;
            e.top_container(&c, ps_args).await
        }
    }

    fn container_logs(
        &self,
        _ctx: RequestContext,
        id: String,
        opts: LogsOptions,
    ) -> impl Future<Output = Result<ByteStream, ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&id)?;
            e.logs_stream(&c, opts).await
        }
    }

    fn container_attach(
        &self,
        _ctx: RequestContext,
        id: String,
        opts: AttachOptions,
    ) -> impl Future<Output = Result<HijackHandler, ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&id)?;
            e.attach_container(c, opts)
        }
    }

    fn container_resize(
        &self,
        _ctx: RequestContext,
        id: String,
        height: u16,
        width: u16,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&id)?;
            e.resize_container(&c, height, width).await
        }
    }

    fn exec_create(
        &self,
        _ctx: RequestContext,
        container: String,
        config: ExecConfig,
    ) -> impl Future<Output = Result<IdResponse, ApiError>> + Send {
        let e = self.0.clone();
        async move {
            let c = e.lookup(&container)?;
            Ok(IdResponse {
                id: e.exec_create(&c, config)?,
            })
        }
    }

    fn exec_start(
        &self,
        _ctx: RequestContext,
        id: String,
        config: ExecStartConfig,
    ) -> impl Future<Output = Result<ExecStartOutcome, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.exec_start(&id, config).await }
    }

    fn exec_resize(
        &self,
        _ctx: RequestContext,
        id: String,
        height: u16,
        width: u16,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let e = self.0.clone();
        async move { e.exec_resize(&id, height, width) }
    }

    fn exec_inspect(
        &self,
        _ctx: RequestContext,
        id: String,
    ) -> impl Future<Output = Result<ExecInspect, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.exec_inspect(&id) }
    }

    fn image_list(
        &self,
        _ctx: RequestContext,
        opts: ImageListOptions,
    ) -> impl Future<Output = Result<Vec<ImageSummary>, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.image_list(opts).await }
    }

    fn image_inspect(
        &self,
        _ctx: RequestContext,
        name: String,
    ) -> impl Future<Output = Result<ImageInspect, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.image_inspect(&name).await }
    }

    fn image_history(
        &self,
        _ctx: RequestContext,
        name: String,
    ) -> impl Future<Output = Result<Vec<HistoryItem>, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.image_history(&name).await }
    }

    fn image_tag(
        &self,
        _ctx: RequestContext,
        name: String,
        repo: String,
        tag: Option<String>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let e = self.0.clone();
        async move { e.image_tag(&name, &repo, tag.as_deref()).await }
    }

    fn image_delete(
        &self,
        _ctx: RequestContext,
        name: String,
        opts: ImageDeleteOptions,
    ) -> impl Future<Output = Result<Vec<ImageDeleteResponseItem>, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.image_delete(&name, opts).await }
    }

    fn build_prune(
        &self,
        _ctx: RequestContext,
        opts: BuildPruneOptions,
    ) -> impl Future<Output = Result<BuildCachePruneReport, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.build_prune(opts).await }
    }

    fn build(
        &self,
        _ctx: RequestContext,
        opts: BuildOptions,
        context: BodyStream,
    ) -> impl Future<Output = Result<ProgressStream, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.build(opts, context).await }
    }

    fn image_create(
        &self,
        _ctx: RequestContext,
        request: ImageCreateRequest,
    ) -> impl Future<Output = Result<ProgressStream, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.image_create(request).await }
    }

    fn image_push(
        &self,
        _ctx: RequestContext,
        name: String,
        tag: Option<String>,
        auth: AuthConfig,
    ) -> impl Future<Output = Result<ProgressStream, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.push_image(name, tag, auth).await }
    }

    fn auth(
        &self,
        _ctx: RequestContext,
        config: AuthConfig,
    ) -> impl Future<Output = Result<AuthResponse, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.registry_login(config).await }
    }

    fn distribution_inspect(
        &self,
        _ctx: RequestContext,
        name: String,
        auth: AuthConfig,
    ) -> impl Future<Output = Result<DistributionInspect, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.distribution_inspect(name, auth).await }
    }

    fn images_load(
        &self,
        _ctx: RequestContext,
        body: BodyStream,
        quiet: bool,
    ) -> impl Future<Output = Result<ProgressStream, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.images_load(body, quiet).await }
    }

    fn images_get(
        &self,
        _ctx: RequestContext,
        names: Vec<String>,
    ) -> impl Future<Output = Result<ByteStream, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.images_get(names).await }
    }

    fn volume_list(
        &self,
        _ctx: RequestContext,
        filters: Filters,
    ) -> impl Future<Output = Result<VolumeListResponse, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.volume_list(filters).await }
    }

    fn volume_create(
        &self,
        _ctx: RequestContext,
        body: VolumeCreateBody,
    ) -> impl Future<Output = Result<Volume, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.volume_create(body).await }
    }

    fn volume_inspect(
        &self,
        _ctx: RequestContext,
        name: String,
    ) -> impl Future<Output = Result<Volume, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.volume_inspect(&name).await }
    }

    fn volume_remove(
        &self,
        _ctx: RequestContext,
        name: String,
        force: bool,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let e = self.0.clone();
        async move { e.volume_remove(&name, force).await }
    }

    fn volume_prune(
        &self,
        ctx: RequestContext,
        filters: Filters,
    ) -> impl Future<Output = Result<VolumesPruneReport, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.volume_prune(ctx.api_version, filters).await }
    }

    fn network_list(
        &self,
        _ctx: RequestContext,
        filters: Filters,
    ) -> impl Future<Output = Result<Vec<NetworkResource>, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.network_list(filters).await }
    }

    fn network_inspect(
        &self,
        _ctx: RequestContext,
        id: String,
        _verbose: bool,
        _scope: Option<String>,
    ) -> impl Future<Output = Result<NetworkResource, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.network_inspect(&id).await }
    }

    fn network_create(
        &self,
        _ctx: RequestContext,
        body: NetworkCreateRequest,
    ) -> impl Future<Output = Result<NetworkCreateResponse, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.network_create(body).await }
    }

    fn network_remove(
        &self,
        _ctx: RequestContext,
        id: String,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let e = self.0.clone();
        async move { e.network_remove(&id).await }
    }

    fn network_connect(
        &self,
        _ctx: RequestContext,
        id: String,
        body: NetworkConnectRequest,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let e = self.0.clone();
        async move { e.network_connect(&id, body).await }
    }

    fn network_disconnect(
        &self,
        _ctx: RequestContext,
        id: String,
        body: NetworkDisconnectRequest,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let e = self.0.clone();
        async move { e.network_disconnect(&id, body).await }
    }

    fn network_prune(
        &self,
        _ctx: RequestContext,
        filters: Filters,
    ) -> impl Future<Output = Result<NetworksPruneReport, ApiError>> + Send {
        let e = self.0.clone();
        async move { e.network_prune(filters).await }
    }
}

impl Engine {
    pub(crate) fn predefined_network(&self, name: &str) -> NetworkResource {
        let mut containers = std::collections::BTreeMap::new();
        for c in self.all_containers() {
            let (mode, running, cname) = c.with(|r| {
                (
                    r.network_mode.clone(),
                    r.state.status.is_running(),
                    r.name.clone(),
                )
            });
            if mode == name && running {
                containers.insert(
                    c.id.clone(),
                    NetworkEndpointResource {
                        name: cname,
                        ..Default::default()
                    },
                );
            }
        }
        NetworkResource {
            name: name.to_string(),
            id: self.network_id(name),
            created: "0001-01-01T00:00:00Z".into(),
            scope: "local".into(),
            driver: if name == "host" { "host" } else { "null" }.into(),
            ipam: Ipam {
                driver: "default".into(),
                config: Some(Vec::new()),
                ..Default::default()
            },
            containers: Some(containers),
            options: Some(Default::default()),
            labels: Some(Default::default()),
            ..Default::default()
        }
    }
}
