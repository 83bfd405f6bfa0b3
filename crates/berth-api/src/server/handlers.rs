//! Turns a routed request into a `Backend` call and the result into Docker's response.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{stream, FutureExt, StreamExt, TryStreamExt};
use http::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyDataStream, BodyExt, Limited};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;
use tokio_util::task::TaskTracker;

use super::response::{self, Body, Headers, JSON, MULTIPLEXED_STREAM, RAW_STREAM, TAR, TEXT_PLAIN};
use super::router::{route, NoSwarm, PluginOp, Route};
use crate::backend::*;
use crate::models::*;
use crate::{negotiate, ApiError, Hijacked, Query};

/// JSON request bodies larger than this are refused (Docker has no limit; this only guards
/// the daemon's memory against a runaway client).
const MAX_JSON_BODY: usize = 32 * 1024 * 1024;

pub(crate) struct Shared<B> {
    pub backend: Arc<B>,
    /// Hijacked sessions run as tracked tasks so shutdown can wait for them…
    pub tracker: TaskTracker,
    /// …and end them when the grace period is over.
    pub force: tokio_util::sync::CancellationToken,
}

/// Entry point of every request.
pub(crate) async fn handle<B: Backend>(
    shared: Arc<Shared<B>>,
    req: Request<Incoming>,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let response = handle_inner(shared, req).await;
    tracing::debug!(
        method = %method,
        path = %raw_path,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "api request"
    );
    response
}

async fn handle_inner<B: Backend>(
    shared: Arc<Shared<B>>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = percent_encoding::percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned();
    let Some(matched) = route(req.method(), &path) else {
        return response::page_not_found();
    };
    let api_version = match negotiate(matched.version.as_deref()) {
        Ok(v) => v,
        Err(e) => {
            return response::error_with(
                ApiError::bad_request(e.to_string()),
                Headers::VersionError,
            )
        }
    };
    let ctx = RequestContext { api_version };
    let query = Query::parse(req.uri().query().unwrap_or(""));
    match dispatch(&shared, ctx, matched.route, query, req).await {
        Ok(resp) => resp,
        Err(e) => response::error(e),
    }
}

type Result<T, E = ApiError> = std::result::Result<T, E>;

async fn dispatch<B: Backend>(
    shared: &Shared<B>,
    ctx: RequestContext,
    route: Route,
    q: Query,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let b = &*shared.backend;
    use Route::*;
    let ok = StatusCode::OK;
    let created = StatusCode::CREATED;
    let resp = match route {
        Ping => ping(req.method() == Method::HEAD),
        Version => response::json(ok, &b.version(ctx).await?),
        Info => response::json(ok, &b.info(ctx).await?),
        SystemDf => response::json(ok, &b.system_df(ctx).await?),
        Events => {
            let opts = EventsOptions {
                since: timestamp(&q, "since")?,
                until: timestamp(&q, "until")?,
                filters: q.filters()?,
            };
            let events = b.events(ctx, opts).await?;
            let lines = events.map(|event| response::json_line(&event).map_err(io::Error::other));
            streaming(JSON, response::stream_body(lines))
        }
        Auth => {
            let config: AuthConfig = read_json(req, true).await?;
            response::json(ok, &b.auth(ctx, config).await?)
        }

        ContainerCreate => {
            let name = q.get_nonempty("name").map(str::to_string);
            let platform = q.get_nonempty("platform").map(str::to_string);
            let mut body = read_create_body(req).await?;
            if ctx.api_version.at_least(1, 42) {
                // Removed from the API in 1.42: "any value it is set to will be ignored".
                if let Some(hc) = body.host_config.as_mut() {
                    hc.kernel_memory = 0;
                }
            }
            response::json(
                created,
                &b.container_create(ctx, name, platform, body).await?,
            )
        }
        ContainerList => {
            let opts = ContainerListOptions {
                all: q.bool("all"),
                limit: q.i64("limit")?,
                size: q.bool("size"),
                filters: q.filters()?,
            };
            response::json(ok, &b.container_list(ctx, opts).await?)
        }
        ContainerInspect(id) => {
            response::json(ok, &b.container_inspect(ctx, id, q.bool("size")).await?)
        }
        ContainerStart(id) => {
            let keys = q.get_nonempty("detachKeys").map(str::to_string);
            change(b.container_start(ctx, id, keys).await?)
        }
        ContainerStop(id) => {
            let signal = q.get_nonempty("signal").map(str::to_string);
            change(b.container_stop(ctx, id, signal, q.i64("t")?).await?)
        }
        ContainerRestart(id) => {
            let signal = q.get_nonempty("signal").map(str::to_string);
            b.container_restart(ctx, id, signal, q.i64("t")?).await?;
            response::no_body(StatusCode::NO_CONTENT)
        }
        ContainerKill(id) => {
            let signal = q.get_nonempty("signal").map(str::to_string);
            b.container_kill(ctx, id, signal).await?;
            response::no_body(StatusCode::NO_CONTENT)
        }
        ContainerWait(id) => {
            let condition = match q.get_nonempty("condition") {
                None | Some("not-running") => WaitCondition::NotRunning,
                Some("next-exit") => WaitCondition::NextExit,
                Some("removed") => WaitCondition::Removed,
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "invalid condition: {other:?}"
                    )))
                }
            };
            let wait = b.container_wait(ctx, id, condition).await?;
            // Headers go out now; the body when the future resolves. If the client goes away,
            // hyper drops the body and with it the future.
            let body = stream::once(
                wait.map(|result| response::json_line(&result).map_err(io::Error::other)),
            );
            streaming(JSON, response::stream_body(body))
        }
        ContainerDelete(id) => {
            let opts = ContainerRemoveOptions {
                force: q.bool("force"),
                volumes: q.bool("v"),
                link: q.bool("link"),
            };
            b.container_remove(ctx, id, opts).await?;
            response::no_body(StatusCode::NO_CONTENT)
        }
        ContainerPause(id) => {
            b.container_pause(ctx, id).await?;
            response::no_body(StatusCode::NO_CONTENT)
        }
        ContainerUnpause(id) => {
            b.container_unpause(ctx, id).await?;
            response::no_body(StatusCode::NO_CONTENT)
        }
        ContainerUpdate(id) => {
            let mut config: UpdateConfig = read_json(req, true).await?;
            // moby's postContainerUpdate: no pids limit before 1.40, no per-device block I/O
            // limits before 1.55, kernel memory removed in 1.42; a pids limit of 0 or less
            // means "unlimited".
            if !ctx.api_version.at_least(1, 40) {
                config.pids_limit = None;
            }
            if !ctx.api_version.at_least(1, 55) {
                config.blkio_weight_device = None;
                config.blkio_device_read_bps = None;
                config.blkio_device_write_bps = None;
                config.blkio_device_read_iops = None;
                config.blkio_device_write_iops = None;
            }
            if ctx.api_version.at_least(1, 42) {
                config.kernel_memory = 0;
            }
            if config.pids_limit.is_some_and(|p| p <= 0) {
                config.pids_limit = Some(0);
            }
            response::json(ok, &b.container_update(ctx, id, config).await?)
        }
        ContainerRename(id) => {
            let name = q
                .get_nonempty("name")
                .ok_or_else(|| ApiError::bad_request("name cannot be empty"))?;
            b.container_rename(ctx, id, name.to_string()).await?;
            response::no_body(StatusCode::NO_CONTENT)
        }
        ContainerTop(id) => {
            let ps_args = q.get_nonempty("ps_args").map(str::to_string);
            response::json(ok, &b.container_top(ctx, id, ps_args).await?)
        }
        ContainerLogs(id) => {
            let opts = LogsOptions {
                follow: q.bool("follow"),
                stdout: q.bool("stdout"),
                stderr: q.bool("stderr"),
                since: timestamp(&q, "since")?,
                until: timestamp(&q, "until")?,
                timestamps: q.bool("timestamps"),
                tail: tail(&q)?,
                details: q.bool("details"),
            };
            if !(opts.stdout || opts.stderr) {
                return Err(ApiError::bad_request(
                    "Bad parameters: you must choose at least one stream",
                ));
            }
            let logs = b.container_logs(ctx, id, opts).await?;
            // Like Docker 20.10: no Content-Type on logs.
            response::build(
                ok,
                Headers::Api,
                None,
                HeaderMap::new(),
                response::stream_body(logs),
            )
        }
        ContainerAttach(id) => {
            let opts = AttachOptions {
                stream: q.bool("stream"),
                logs: q.bool("logs"),
                stdin: q.bool("stdin"),
                stdout: q.bool("stdout"),
                stderr: q.bool("stderr"),
                detach_keys: q.get_nonempty("detachKeys").map(str::to_string),
            };
            let (on_upgrade, _req) = take_upgrade(req);
            let handler = b.container_attach(ctx, id, opts).await?;
            hijack(
                &shared.tracker,
                &shared.force,
                on_upgrade,
                handler,
                HijackKind::Attach,
            )
        }
        ContainerResize(id) => {
            let (h, w) = size(&q)?;
            b.container_resize(ctx, id, h, w).await?;
            response::no_body(ok)
        }
        ContainerChanges(id) => response::json(ok, &b.container_changes(ctx, id).await?),
        ContainerStats(id) => {
            let opts = StatsOptions {
                stream: q.bool_or("stream", true),
                one_shot: q.bool("one-shot"),
            };
            let stats = b.container_stats(ctx, id, opts).await?;
            streaming(JSON, response::stream_body(stats))
        }
        ContainerArchiveStat(id) => {
            let stat = b.container_archive_stat(ctx, id, archive_path(&q)?).await?;
            response::build(
                ok,
                Headers::Api,
                None,
                path_stat_header(&stat)?,
                response::empty_body(),
            )
        }
        ContainerArchiveGet(id) => {
            let (stat, tar) = b.container_archive_get(ctx, id, archive_path(&q)?).await?;
            response::build(
                ok,
                Headers::Api,
                Some(TAR),
                path_stat_header(&stat)?,
                response::stream_body(tar),
            )
        }
        ContainerArchivePut(id) => {
            let opts = ArchivePutOptions {
                path: archive_path(&q)?,
                no_overwrite_dir_non_dir: q.bool("noOverwriteDirNonDir"),
                copy_uid_gid: q.bool("copyUIDGID"),
            };
            b.container_archive_put(ctx, id, opts, body_stream(req))
                .await?;
            response::no_body(ok)
        }

        ExecCreate(id) => {
            let config: ExecConfig = read_json(req, true).await?;
            response::json(created, &b.exec_create(ctx, id, config).await?)
        }
        ExecStart(id) => {
            let (on_upgrade, req) = take_upgrade(req);
            let config: ExecStartConfig = read_json(req, false).await?;
            // The stream is multiplexed unless the start request says Tty; API 1.42 and
            // later name it so in the upgrade's Content-Type (moby's postContainerExecStart).
            let multiplexed = !config.tty && ctx.api_version.at_least(1, 42);
            match b.exec_start(ctx, id, config).await? {
                ExecStartOutcome::Detached => response::no_body(ok),
                ExecStartOutcome::Attached(handler) => hijack(
                    &shared.tracker,
                    &shared.force,
                    on_upgrade,
                    handler,
                    HijackKind::Exec { multiplexed },
                ),
            }
        }
        ExecResize(id) => {
            let (h, w) = size(&q)?;
            b.exec_resize(ctx, id, h, w).await?;
            response::no_body(ok)
        }
        ExecInspect(id) => response::json(ok, &b.exec_inspect(ctx, id).await?),

        ImageList => {
            let opts = ImageListOptions {
                all: q.bool("all"),
                filters: q.filters()?,
                digests: q.bool("digests"),
                shared_size: q.bool("shared-size"),
            };
            response::json(ok, &b.image_list(ctx, opts).await?)
        }
        ImageInspect(name) => response::json(ok, &b.image_inspect(ctx, name).await?),
        ImageHistory(name) => response::json(ok, &b.image_history(ctx, name).await?),
        ImageTag(name) => {
            let repo = q
                .get_nonempty("repo")
                .ok_or_else(|| ApiError::bad_request("repository name (repo) cannot be empty"))?;
            let tag = q.get_nonempty("tag").map(str::to_string);
            b.image_tag(ctx, name, repo.to_string(), tag).await?;
            response::no_body(created)
        }
        ImageDelete(name) => {
            let opts = ImageDeleteOptions {
                force: q.bool("force"),
                noprune: q.bool("noprune"),
            };
            response::json(ok, &b.image_delete(ctx, name, opts).await?)
        }
        ImageCreate => {
            let auth = registry_auth(req.headers());
            let platform = q.get_nonempty("platform").map(str::to_string);
            let tag = q.get_nonempty("tag").map(str::to_string);
            let request = if let Some(from_image) = q.get_nonempty("fromImage") {
                ImageCreateRequest::Pull {
                    from_image: from_image.to_string(),
                    tag,
                    platform,
                    auth,
                }
            } else if let Some(from_src) = q.get_nonempty("fromSrc") {
                ImageCreateRequest::Import {
                    from_src: from_src.to_string(),
                    repo: q.get_nonempty("repo").map(str::to_string),
                    tag,
                    message: q.get_nonempty("message").map(str::to_string),
                    changes: q.get_all("changes"),
                    platform,
                    body: body_stream(req),
                }
            } else {
                return Err(ApiError::bad_request(
                    "either fromImage or fromSrc must be given",
                ));
            };
            progress(b.image_create(ctx, request).await?).await?
        }
        ImagePush(name) => {
            let auth = registry_auth(req.headers());
            let tag = q.get_nonempty("tag").map(str::to_string);
            progress(b.image_push(ctx, name, tag, auth).await?).await?
        }
        ImageLoad => {
            // dockerd answers 200 and reports every failure of a load in the JSON stream
            // (even an archive that is no tar at all); clients read the stream.
            let quiet = q.bool("quiet");
            match b.images_load(ctx, body_stream(req), quiet).await {
                Ok(messages) => progress_stream(messages),
                Err(e) => progress_stream(Box::pin(stream::iter([Err(e)]))),
            }
        }
        ImagesGet => {
            let tar = b.images_get(ctx, q.get_all("names")).await?;
            streaming(TAR, response::stream_body(tar))
        }
        ImageGet(name) => {
            let tar = b.images_get(ctx, vec![name]).await?;
            streaming(TAR, response::stream_body(tar))
        }
        Commit => {
            let opts = CommitOptions {
                container: q.get("container").unwrap_or_default().to_string(),
                repo: q.get_nonempty("repo").map(str::to_string),
                tag: q.get_nonempty("tag").map(str::to_string),
                comment: q.get("comment").unwrap_or_default().to_string(),
                author: q.get("author").unwrap_or_default().to_string(),
                pause: q.bool_or("pause", true),
                changes: q.get_all("changes"),
                config: read_json::<Option<ContainerConfig>>(req, false).await?,
            };
            response::json(created, &b.commit(ctx, opts).await?)
        }
        Build => {
            let opts = build_options(&q, req.headers())?;
            progress(b.build(ctx, opts, body_stream(req)).await?).await?
        }
        DistributionInspect(name) => {
            let auth = registry_auth(req.headers());
            response::json(ok, &b.distribution_inspect(ctx, name, auth).await?)
        }

        VolumeList => response::json(ok, &b.volume_list(ctx, q.filters()?).await?),
        VolumeCreate => {
            let body: VolumeCreateBody = read_json(req, false).await?;
            response::json(created, &b.volume_create(ctx, body).await?)
        }
        VolumeInspect(name) => response::json(ok, &b.volume_inspect(ctx, name).await?),
        VolumeDelete(name) => {
            b.volume_remove(ctx, name, q.bool("force")).await?;
            response::no_body(StatusCode::NO_CONTENT)
        }

        NetworkList => response::json(ok, &b.network_list(ctx, q.filters()?).await?),
        NetworkCreate => {
            let body: NetworkCreateRequest = read_json(req, true).await?;
            response::json(created, &b.network_create(ctx, body).await?)
        }
        NetworkInspect(id) => {
            let scope = q.get_nonempty("scope").map(str::to_string);
            response::json(
                ok,
                &b.network_inspect(ctx, id, q.bool("verbose"), scope).await?,
            )
        }
        NetworkDelete(id) => {
            b.network_remove(ctx, id).await?;
            response::no_body(StatusCode::NO_CONTENT)
        }
        NetworkConnect(id) => {
            let body: NetworkConnectRequest = read_json(req, true).await?;
            b.network_connect(ctx, id, body).await?;
            response::no_body(ok)
        }
        NetworkDisconnect(id) => {
            let body: NetworkDisconnectRequest = read_json(req, true).await?;
            b.network_disconnect(ctx, id, body).await?;
            response::no_body(ok)
        }

        ContainerExport(id) => {
            let tar = b.container_export(ctx, id).await?;
            streaming(TAR, response::stream_body(tar))
        }
        ContainerPrune => response::json(ok, &b.container_prune(ctx, q.filters()?).await?),
        ImagePrune => response::json(ok, &b.image_prune(ctx, q.filters()?).await?),
        BuildPrune => {
            let opts = BuildPruneOptions {
                all: q.bool("all"),
                keep_storage: q.i64("keep-storage")?.unwrap_or(0),
                filters: q.filters()?,
            };
            response::json(ok, &b.build_prune(ctx, opts).await?)
        }
        VolumePrune => response::json(ok, &b.volume_prune(ctx, q.filters()?).await?),
        NetworkPrune => response::json(ok, &b.network_prune(ctx, q.filters()?).await?),
        Unsupported(what) => return Err(ApiError::not_implemented(what)),
        NoSwarm(answer) => return Err(no_swarm(answer, &q)),
        PluginMissing(name, op) => return Err(plugin_missing(&name, op, &q)),

        // berth has no plugin system: the list is truthfully empty and every name is unknown
        // (the Docker CLI's `inspect` of an unknown object ends with this lookup).
        PluginList => response::json(ok, &Vec::<serde_json::Value>::new()),
        PluginInspect(name) => {
            return Err(ApiError::not_found(format!("plugin \"{name}\" not found")))
        }
    };
    Ok(resp)
}

const NOT_SWARM_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

/// dockerd's answers on a node that is not part of a swarm (clients treat the 503 as normal:
/// test suites call `POST /swarm/leave` in their teardown).
fn no_swarm(answer: NoSwarm, q: &Query) -> ApiError {
    let unavailable = |m: &str| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m);
    match answer {
        NoSwarm::NotManager => unavailable(NOT_SWARM_MANAGER),
        NoSwarm::NotPart => unavailable("This node is not part of a swarm"),
        NoSwarm::Update(kind) => {
            let raw = q.get("version").unwrap_or("");
            if raw.parse::<u64>().is_ok() {
                unavailable(NOT_SWARM_MANAGER)
            } else if kind == "secret" || kind == "config" {
                ApiError::bad_request(format!("invalid {kind} version"))
            } else {
                ApiError::bad_request(format!(
                    "invalid {kind} version '{raw}': strconv.ParseUint: parsing {raw:?}: invalid syntax"
                ))
            }
        }
        NoSwarm::Logs => {
            if q.bool("stdout") || q.bool("stderr") {
                unavailable(NOT_SWARM_MANAGER)
            } else {
                ApiError::bad_request("must specify at least one of 'stdout' or 'stderr'")
            }
        }
    }
}

/// dockerd's answers for operations on a plugin that is not installed (berth has none).
fn plugin_missing(name: &str, op: PluginOp, q: &Query) -> ApiError {
    if op == PluginOp::Enable {
        let t = q.get("timeout").unwrap_or("");
        if t.parse::<i64>().is_err() {
            return ApiError::internal(format!("strconv.Atoi: parsing {t:?}: invalid syntax"));
        }
    }
    let shown = if op == PluginOp::Upgrade && !has_tag_or_digest(name) {
        format!("{name}:latest")
    } else {
        name.to_string()
    };
    ApiError::not_found(format!("plugin \"{shown}\" not found"))
}

/// Whether the last path component of a reference names a tag or digest.
fn has_tag_or_digest(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.contains(':') || last.contains('@')
}

/// `GET`/`HEAD /_ping` with Docker's headers.
fn ping(head: bool) -> Response<Body> {
    let mut resp = Response::new(if head {
        response::empty_body()
    } else {
        response::full_body("OK")
    });
    let h = resp.headers_mut();
    h.insert("api-version", response::api_version_value());
    h.insert(
        "cache-control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    if head {
        h.insert("content-length", HeaderValue::from_static("0"));
        h.insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    }
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    h.insert("ostype", HeaderValue::from_static("linux"));
    h.insert("pragma", HeaderValue::from_static("no-cache"));
    h.insert("server", HeaderValue::from_static(response::SERVER_HEADER));
    if let Ok(date) = HeaderValue::from_str(&response::http_date()) {
        h.insert("date", date);
    }
    if !head {
        h.insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    }
    resp
}

fn change(outcome: ChangeOutcome) -> Response<Body> {
    match outcome {
        ChangeOutcome::Done => response::no_body(StatusCode::NO_CONTENT),
        ChangeOutcome::NotModified => response::error(ApiError::not_modified()),
    }
}

/// A `200` whose body is streamed (chunked).
fn streaming(content_type: &'static str, body: Body) -> Response<Body> {
    response::build(
        StatusCode::OK,
        Headers::Api,
        Some(content_type),
        HeaderMap::new(),
        body,
    )
}

/// A JSON-message stream: waits for the first message so that an error before any output is
/// a normal error status (as Docker's lazily written headers do), then streams `json\r\n`
/// lines; a later error becomes the final `errorDetail` line.
async fn progress(mut messages: ProgressStream) -> Result<Response<Body>> {
    let first = match messages.next().await {
        Some(Err(e)) => return Err(e),
        Some(Ok(m)) => Some(m),
        None => None,
    };
    Ok(progress_stream(Box::pin(
        stream::iter(first.map(Ok)).chain(messages),
    )))
}

/// A `200` JSON-message stream; an error becomes its last message.
fn progress_stream(messages: ProgressStream) -> Response<Body> {
    let lines = messages.scan(false, |failed, item| {
        let out = if *failed {
            None
        } else {
            let message = match item {
                Ok(m) => m,
                Err(e) => {
                    *failed = true;
                    JsonMessage::error(0, e.message)
                }
            };
            Some(progress_line(&message))
        };
        futures_util::future::ready(out)
    });
    streaming(JSON, response::stream_body(lines))
}

fn progress_line(message: &JsonMessage) -> io::Result<Bytes> {
    let mut buf = serde_json::to_vec(message).map_err(io::Error::other)?;
    buf.extend_from_slice(b"\r\n");
    Ok(Bytes::from(buf))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HijackKind {
    Attach,
    Exec { multiplexed: bool },
}

/// Takes hyper's pending upgrade out of the request when the client asked for one.
fn take_upgrade(mut req: Request<Incoming>) -> (Option<OnUpgrade>, Request<Incoming>) {
    let wants = req.version() == Version::HTTP_11 && req.headers().contains_key(UPGRADE);
    let on_upgrade = wants.then(|| hyper::upgrade::on(&mut req));
    (on_upgrade, req)
}

/// Answers `101 UPGRADED` and runs the handler on the upgraded connection, or, without an
/// `Upgrade` request header, streams the handler's output as a plain `200` raw stream (the
/// handler then reads EOF at once: there is no way for the client to send stdin).
fn hijack(
    tracker: &TaskTracker,
    force: &tokio_util::sync::CancellationToken,
    on_upgrade: Option<OnUpgrade>,
    handler: HijackHandler,
    kind: HijackKind,
) -> Response<Body> {
    match on_upgrade {
        Some(on_upgrade) => {
            let force = force.clone();
            tracker.spawn(async move {
                let session = async move {
                    match on_upgrade.await {
                        Ok(upgraded) => handler(Hijacked::from_upgraded(upgraded)).await,
                        Err(e) => tracing::debug!(error = %e, "client went away before the connection was upgraded"),
                    }
                };
                tokio::select! {
                    _ = session => {}
                    _ = force.cancelled() => {}
                }
            });
            let mut resp = Response::new(response::empty_body());
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            resp.extensions_mut()
                .insert(hyper::ext::ReasonPhrase::from_static(b"UPGRADED"));
            let h = resp.headers_mut();
            let ct = match kind {
                HijackKind::Exec { multiplexed: true } => MULTIPLEXED_STREAM,
                _ => RAW_STREAM,
            };
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(UPGRADE, HeaderValue::from_static("tcp"));
            if matches!(kind, HijackKind::Exec { .. }) {
                h.insert("api-version", response::api_version_value());
                h.insert("docker-experimental", HeaderValue::from_static("false"));
                h.insert("ostype", HeaderValue::from_static("linux"));
                h.insert("server", HeaderValue::from_static(response::SERVER_HEADER));
            }
            resp
        }
        None => {
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            let (reader, mut writer) = tokio::io::split(ours);
            let force = force.clone();
            tracker.spawn(async move {
                // No stdin without an upgrade: the handler reads EOF immediately.
                let _ = writer.shutdown().await;
                tokio::select! {
                    _ = handler(Hijacked::from_duplex(theirs)) => {}
                    _ = force.cancelled() => {}
                }
            });
            streaming(RAW_STREAM, response::stream_body(ReaderStream::new(reader)))
        }
    }
}

/// The request body as a stream of bytes.
fn body_stream(req: Request<Incoming>) -> BodyStream {
    Box::pin(BodyDataStream::new(req.into_body()).map_err(io::Error::other))
}

async fn read_bytes(req: Request<Incoming>) -> Result<(HeaderMap, Bytes)> {
    let (parts, body) = req.into_parts();
    let collected = Limited::new(body, MAX_JSON_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read request body: {e}")))?;
    Ok((parts.headers, collected.to_bytes()))
}

/// Docker's `CheckForJSON`: a non-empty body must be `application/json`.
fn check_json_content_type(headers: &HeaderMap, body: &[u8]) -> Result<()> {
    if body.is_empty() {
        return Ok(());
    }
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == JSON {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Content-Type specified ({ct}) must be 'application/json'"
        )))
    }
}

/// Every JSON request body is decoded here: struct field names match in any case, as Go's
/// decoder matches them for dockerd (`crate::jsonfold`).
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    crate::jsonfold::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// Reads a JSON body. An empty body is an error when `required`, else `T::default()`.
async fn read_json<T: DeserializeOwned + Default>(
    req: Request<Incoming>,
    required: bool,
) -> Result<T> {
    let (headers, body) = read_bytes(req).await?;
    check_json_content_type(&headers, &body)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return if required {
            Err(ApiError::bad_request(
                "invalid JSON: got EOF while reading request body",
            ))
        } else {
            Ok(T::default())
        };
    }
    parse_json(&body)
}

/// The create body, with Docker's "Config cannot be empty" rule: the `Config` part is absent
/// when the object has no key other than `HostConfig`/`NetworkingConfig`.
async fn read_create_body(req: Request<Incoming>) -> Result<ContainerCreateBody> {
    let (headers, body) = read_bytes(req).await?;
    check_json_content_type(&headers, &body)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid JSON: got EOF while reading request body",
        ));
    }
    let value: serde_json::Value = parse_json(&body)?;
    let has_config = match &value {
        serde_json::Value::Object(map) => map.keys().any(|k| {
            !k.eq_ignore_ascii_case("HostConfig") && !k.eq_ignore_ascii_case("NetworkingConfig")
        }),
        _ => false,
    };
    if !has_config {
        return Err(ApiError::bad_request(
            "Config cannot be empty in order to create a container",
        ));
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// `X-Registry-Auth`; absent or undecodable gives empty credentials, as Docker does for
/// pull and push ("to increase compatibility with the existing API").
fn registry_auth(headers: &HeaderMap) -> AuthConfig {
    match headers.get("x-registry-auth").and_then(|v| v.to_str().ok()) {
        None | Some("") => AuthConfig::default(),
        Some(value) => AuthConfig::from_registry_auth_header(value).unwrap_or_else(|e| {
            tracing::debug!(error = %e, "ignoring undecodable X-Registry-Auth");
            AuthConfig::default()
        }),
    }
}

/// `since`/`until`: Unix seconds with an optional fraction (`1795799615.000000000`), as the
/// CLI sends them; empty → `None`.
fn timestamp(q: &Query, key: &str) -> Result<Option<DateTime<Utc>>> {
    let Some(value) = q.get_nonempty(key) else {
        return Ok(None);
    };
    parse_timestamp(value).map(Some).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid value for \"{key}\": {value:?} is not a Unix timestamp"
        ))
    })
}

pub(crate) fn parse_timestamp(value: &str) -> Option<DateTime<Utc>> {
    let (secs, frac) = match value.split_once('.') {
        Some((s, f)) => (s, f),
        None => (value, ""),
    };
    let secs: i64 = secs.parse().ok()?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{frac:0<9}").parse().ok()?
    };
    DateTime::from_timestamp(secs, nanos)
}

/// `tail`: `all`/empty → all lines, a number → that many, negative → all.
fn tail(q: &Query) -> Result<Option<u64>> {
    match q.get_nonempty("tail") {
        None | Some("all") => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n < 0 => Ok(None),
            Ok(n) => Ok(Some(n as u64)),
            Err(_) => Err(ApiError::bad_request(format!(
                "invalid value for \"tail\": {v:?}"
            ))),
        },
    }
}

/// `h` and `w` of the resize endpoints.
fn size(q: &Query) -> Result<(u16, u16)> {
    let parse = |key: &str| -> Result<u16> {
        let v = q.get(key).unwrap_or("");
        v.parse::<u16>()
            .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}")))
    };
    Ok((parse("h")?, parse("w")?))
}

fn archive_path(q: &Query) -> Result<String> {
    q.get_nonempty("path")
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("Bad parameter: 'path' cannot be empty"))
}

fn path_stat_header(stat: &ContainerPathStat) -> Result<HeaderMap> {
    use base64::Engine as _;
    let json = serde_json::to_vec(stat).map_err(|e| ApiError::internal(e.to_string()))?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(json);
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&encoded).map_err(|e| ApiError::internal(e.to_string()))?;
    headers.insert("x-docker-container-path-stat", value);
    Ok(headers)
}

fn build_options(q: &Query, headers: &HeaderMap) -> Result<BuildOptions> {
    let registry_config = match headers
        .get("x-registry-config")
        .and_then(|v| v.to_str().ok())
    {
        None | Some("") => BTreeMap::new(),
        Some(value) => {
            use base64::Engine as _;
            let engines = [
                &base64::engine::general_purpose::URL_SAFE,
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                &base64::engine::general_purpose::STANDARD_NO_PAD,
            ];
            engines
                .iter()
                .find_map(|e| e.decode(value.trim()).ok())
                .and_then(|json| crate::jsonfold::from_slice(&json).ok())
                .unwrap_or_default()
        }
    };
    Ok(BuildOptions {
        tags: q
            .get_all("t")
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect(),
        dockerfile: q
            .get_nonempty("dockerfile")
            .unwrap_or("Dockerfile")
            .to_string(),
        quiet: q.bool("q"),
        no_cache: q.bool("nocache"),
        rm: q.bool_or("rm", true),
        force_rm: q.bool("forcerm"),
        pull: q.bool("pull"),
        build_args: q.json("buildargs")?,
        labels: q.json("labels")?,
        cache_from: q.json("cachefrom")?,
        target: q.get_nonempty("target").map(str::to_string),
        platform: q.get_nonempty("platform").map(str::to_string),
        network_mode: q.get_nonempty("networkmode").map(str::to_string),
        extra_hosts: q.get_nonempty("extrahosts").map(str::to_string),
        shm_size: q.i64("shmsize")?,
        memory: q.i64("memory")?,
        memswap: q.i64("memswap")?,
        cpu_shares: q.i64("cpushares")?,
        cpu_period: q.i64("cpuperiod")?,
        cpu_quota: q.i64("cpuquota")?,
        cpuset_cpus: q.get_nonempty("cpusetcpus").map(str::to_string),
        cpuset_mems: q.get_nonempty("cpusetmems").map(str::to_string),
        squash: q.bool("squash"),
        version: q.get_nonempty("version").unwrap_or("1").to_string(),
        trace: q.bool("berthtrace"),
        remote: q.get_nonempty("remote").map(str::to_string),
        registry_config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp("1795799615").unwrap().timestamp(),
            1795799615
        );
        let t = parse_timestamp("1795799615.5").unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 500_000_000);
        assert_eq!(
            parse_timestamp("1795799615.000000001")
                .unwrap()
                .timestamp_subsec_nanos(),
            1
        );
        assert!(parse_timestamp("x").is_none());
        assert!(parse_timestamp("1.0000000001").is_none());
        assert!(parse_timestamp("1.-5").is_none());
    }

    #[test]
    fn tail_and_size() {
        assert_eq!(tail(&Query::parse("tail=all")).unwrap(), None);
        assert_eq!(tail(&Query::parse("tail=2")).unwrap(), Some(2));
        assert_eq!(tail(&Query::parse("tail=-1")).unwrap(), None);
        assert!(tail(&Query::parse("tail=x")).is_err());
        assert_eq!(size(&Query::parse("h=40&w=120")).unwrap(), (40, 120));
        assert!(size(&Query::parse("h=40")).is_err());
        assert!(size(&Query::parse("h=x&w=1")).is_err());
    }

    #[test]
    fn json_content_type_check() {
        let mut h = HeaderMap::new();
        assert!(check_json_content_type(&h, b"").is_ok());
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(
            check_json_content_type(&h, b"{}").unwrap_err().message,
            "Content-Type specified (application/x-www-form-urlencoded) must be 'application/json'"
        );
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(check_json_content_type(&h, b"{}").is_ok());
        assert!(check_json_content_type(&HeaderMap::new(), b"{}").is_err());
    }
}
