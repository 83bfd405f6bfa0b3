//! The `Backend` trait: one method per API operation, implemented by `berth-engine`.
//!
//! The server parses the request (path, query, headers, JSON body) into typed parameters,
//! calls the method, and turns the result into Docker's response. Every method has a default
//! implementation returning `501 Not Implemented` with a message naming the operation, so the
//! engine can implement operations one at a time and clients get a clear error meanwhile.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use futures_util::Stream;

use crate::models::*;
use crate::{ApiError, ApiVersion, Filters, Hijacked};

/// Raw bytes for the client: logs (already multiplexed/framed by the engine), `docker save`
/// tars, archive tars, stats lines.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A request body streamed from the client (tar for load/import/build/archive).
pub type BodyStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// JSON progress messages, written as `json\r\n` lines in a chunked `200`. An `Err` item ends
/// the stream with a final `{"errorDetail":…,"error":…}` line. If the *first* item is an `Err`,
/// nothing has been sent yet and the client gets a plain error status instead (Docker writes its
/// headers lazily, e.g. pull of a missing tag is a 404, not a 200 with errorDetail).
pub type ProgressStream = Pin<Box<dyn Stream<Item = Result<JsonMessage, ApiError>> + Send>>;

/// Event messages for `GET /events`, written as `json\n` lines.
pub type EventStream = Pin<Box<dyn Stream<Item = EventMessage> + Send>>;

/// Resolves when the wait condition is met; the server has already sent the `200` headers.
/// Dropped when the client goes away.
pub type WaitFuture = BoxFuture<'static, ContainerWaitResponse>;

/// Runs a hijacked attach/exec session on the upgraded connection. The backend has validated
/// the request before returning it (so 404/409 are normal error responses); the server then
/// answers `101 UPGRADED` (or `200` with a raw stream when the client sent no `Upgrade`) and
/// calls the handler. The connection closes when the handler's future ends.
pub type HijackHandler = Box<dyn FnOnce(Hijacked) -> BoxFuture<'static, ()> + Send>;

/// Per-request facts the backend may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestContext {
    /// The negotiated API version (from the `/v1.NN/` prefix, else the newest).
    pub api_version: ApiVersion,
}

/// Result of start/stop: done (204), or already in that state (304, empty body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    Done,
    NotModified,
}

/// The name the brief and the stop route use for [`ChangeOutcome`].
pub type StopOutcome = ChangeOutcome;

/// `condition` of `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    /// Default: return when the container is not running (immediately if it is not).
    #[default]
    NotRunning,
    /// The next exit, even if the container is not running yet (`docker run`).
    NextExit,
    /// When the container has been removed (`docker run --rm`).
    Removed,
}

/// `GET /containers/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerListOptions {
    pub all: bool,
    /// `None` or a negative value: no limit.
    pub limit: Option<i64>,
    pub size: bool,
    pub filters: Filters,
}

/// `DELETE /containers/{id}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerRemoveOptions {
    pub force: bool,
    /// `v`: remove anonymous volumes.
    pub volumes: bool,
    pub link: bool,
}

/// `GET /containers/{id}/logs`. At least one of `stdout`/`stderr` is set (the server rejects
/// requests with neither, as Docker does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub timestamps: bool,
    /// `None`: all lines.
    pub tail: Option<u64>,
    /// Prefix each line with the log driver's attributes (`k=v,k2=v2 `).
    pub details: bool,
}

/// `POST /containers/{id}/attach`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachOptions {
    pub stream: bool,
    pub logs: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub detach_keys: Option<String>,
}

/// `GET /containers/{id}/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsOptions {
    /// Default true.
    pub stream: bool,
    pub one_shot: bool,
}

/// `PUT /containers/{id}/archive`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchivePutOptions {
    pub path: String,
    pub no_overwrite_dir_non_dir: bool,
    pub copy_uid_gid: bool,
}

/// What `POST /exec/{id}/start` does.
pub enum ExecStartOutcome {
    /// `Detach: true`: started, `200` with an empty body.
    Detached,
    /// Run the session on the hijacked connection.
    Attached(HijackHandler),
}

impl std::fmt::Debug for ExecStartOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Detached => f.write_str("Detached"),
            Self::Attached(_) => f.write_str("Attached(..)"),
        }
    }
}

/// `GET /images/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageListOptions {
    pub all: bool,
    pub filters: Filters,
    pub digests: bool,
    pub shared_size: bool,
}

/// `DELETE /images/{name}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageDeleteOptions {
    pub force: bool,
    pub noprune: bool,
}

/// `POST /images/create`: pull (`fromImage`) or import (`fromSrc`).
pub enum ImageCreateRequest {
    Pull {
        /// `localhost:5000/me/extra`, possibly with `:tag` or `@digest` already.
        from_image: String,
        tag: Option<String>,
        platform: Option<String>,
        auth: AuthConfig,
    },
    Import {
        /// `-` (the body is the tar) or a URL.
        from_src: String,
        repo: Option<String>,
        tag: Option<String>,
        message: Option<String>,
        changes: Vec<String>,
        platform: Option<String>,
        body: BodyStream,
    },
}

impl std::fmt::Debug for ImageCreateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pull {
                from_image,
                tag,
                platform,
                auth,
            } => f
                .debug_struct("Pull")
                .field("from_image", from_image)
                .field("tag", tag)
                .field("platform", platform)
                .field("auth", auth)
                .finish(),
            Self::Import {
                from_src,
                repo,
                tag,
                message,
                changes,
                platform,
                ..
            } => f
                .debug_struct("Import")
                .field("from_src", from_src)
                .field("repo", repo)
                .field("tag", tag)
                .field("message", message)
                .field("changes", changes)
                .field("platform", platform)
                .finish_non_exhaustive(),
        }
    }
}

/// `POST /commit`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitOptions {
    pub container: String,
    /// Fully qualified as the CLI sends it (`docker.io/library/tr-committed`), or `None`.
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub comment: String,
    pub author: String,
    /// Default true.
    pub pause: bool,
    /// Dockerfile instructions (`ENV A=1`, `CMD [...]`), one per `changes` parameter.
    pub changes: Vec<String>,
    /// Optional body: a `ContainerConfig` to merge.
    pub config: Option<ContainerConfig>,
}

/// `POST /build` (the legacy builder's parameters).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildOptions {
    /// `t`, repeatable.
    pub tags: Vec<String>,
    /// Default `Dockerfile`.
    pub dockerfile: String,
    pub quiet: bool,
    pub no_cache: bool,
    /// Default true.
    pub rm: bool,
    pub force_rm: bool,
    pub pull: bool,
    pub build_args: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub cache_from: Vec<String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub network_mode: Option<String>,
    pub extra_hosts: Option<String>,
    pub shm_size: Option<i64>,
    pub memory: Option<i64>,
    pub memswap: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub squash: bool,
    /// `1` legacy builder, `2` BuildKit.
    pub version: String,
    pub remote: Option<String>,
    /// `X-Registry-Config`: registry host → credentials.
    pub registry_config: BTreeMap<String, AuthConfig>,
    /// berth's extension (`berthtrace=1`): also send structured progress, as
    /// `{"id":"berth.build.trace","aux":{…}}` messages. Docker's clients never ask for it.
    pub trace: bool,
}

/// `POST /build/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildPruneOptions {
    /// Remove all cache, not only unused entries.
    pub all: bool,
    /// Keep this many bytes of cache (least recently used goes first); 0 = keep none.
    pub keep_storage: i64,
    pub filters: Filters,
}

/// `GET /events`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventsOptions {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub filters: Filters,
}

macro_rules! not_implemented {
    ($what:expr) => {
        async { Err(ApiError::not_implemented($what)) }
    };
}

/// The daemon's operations. See the module docs; every default returns `501`.
///
/// Ids and names are passed as the client sent them (full id, id prefix or name; image
/// references unparsed), so the engine resolves them with Docker's rules and error messages.
pub trait Backend: Send + Sync + 'static {
    // ----- system -----

    /// `GET /version`.
    fn version(
        &self,
        _ctx: RequestContext,
    ) -> impl Future<Output = Result<SystemVersion, ApiError>> + Send {
        not_implemented!("GET /version")
    }

    /// `GET /info`.
    fn info(
        &self,
        _ctx: RequestContext,
    ) -> impl Future<Output = Result<SystemInfo, ApiError>> + Send {
        not_implemented!("GET /info")
    }

    /// `GET /system/df`.
    fn system_df(
        &self,
        _ctx: RequestContext,
    ) -> impl Future<Output = Result<SystemDf, ApiError>> + Send {
        not_implemented!("GET /system/df")
    }

    /// `GET /events`.
    fn events(
        &self,
        _ctx: RequestContext,
        _opts: EventsOptions,
    ) -> impl Future<Output = Result<EventStream, ApiError>> + Send {
        not_implemented!("GET /events")
    }

    /// `POST /auth`: check credentials against the registry.
    fn auth(
        &self,
        _ctx: RequestContext,
        _config: AuthConfig,
    ) -> impl Future<Output = Result<AuthResponse, ApiError>> + Send {
        not_implemented!("POST /auth")
    }

    // ----- containers -----

    /// `POST /containers/create?name=&platform=` → 201.
    fn container_create(
        &self,
        _ctx: RequestContext,
        _name: Option<String>,
        _platform: Option<String>,
        _body: ContainerCreateBody,
    ) -> impl Future<Output = Result<ContainerCreateResponse, ApiError>> + Send {
        not_implemented!("POST /containers/create")
    }

    /// `GET /containers/json`.
    fn container_list(
        &self,
        _ctx: RequestContext,
        _opts: ContainerListOptions,
    ) -> impl Future<Output = Result<Vec<ContainerSummary>, ApiError>> + Send {
        not_implemented!("GET /containers/json")
    }

    /// `GET /containers/{id}/json?size=`.
    fn container_inspect(
        &self,
        _ctx: RequestContext,
        _id: String,
        _size: bool,
    ) -> impl Future<Output = Result<ContainerInspect, ApiError>> + Send {
        not_implemented!("GET /containers/{id}/json")
    }

    /// `POST /containers/{id}/start` → 204, or 304 when already running.
    fn container_start(
        &self,
        _ctx: RequestContext,
        _id: String,
        _detach_keys: Option<String>,
    ) -> impl Future<Output = Result<ChangeOutcome, ApiError>> + Send {
        not_implemented!("POST /containers/{id}/start")
    }

    /// `POST /containers/{id}/stop?signal=&t=` → 204, or 304 when not running.
    fn container_stop(
        &self,
        _ctx: RequestContext,
        _id: String,
        _signal: Option<String>,
        _timeout: Option<i64>,
    ) -> impl Future<Output = Result<StopOutcome, ApiError>> + Send {
        not_implemented!("POST /containers/{id}/stop")
    }

    /// `POST /containers/{id}/restart?signal=&t=` → 204.
    fn container_restart(
        &self,
        _ctx: RequestContext,
        _id: String,
        _signal: Option<String>,
        _timeout: Option<i64>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_implemented!("POST /containers/{id}/restart")
    }

    /// `POST /containers/{id}/kill?signal=` → 204 (`None`: SIGKILL).
    fn container_kill(
        &self,
        _ctx: RequestContext,
        _id: String,
        _signal: Option<String>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_implemented!("POST /containers/{id}/kill")
    }

    /// `POST /containers/{id}/wait?condition=`. Validate (404), then return the future; the
    /// server sends the 200 headers before awaiting it.
    fn container_wait(
        &self,
        _ctx: RequestContext,
        _id: String,
        _condition: WaitCondition,
    ) -> impl Future<Output = Result<WaitFuture, ApiError>> + Send {
        not_implemented!("POST /containers/{id}/wait")
    }

    /// `DELETE /containers/{id}?force=&v=&link=` → 204.
    fn container_remove(
        &self,
        _ctx: RequestContext,
        _id: String,
        _opts: ContainerRemoveOptions,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_implemented!("DELETE /containers/{id}")
    }

    /// `POST /containers/{id}/pause` → 204.
    fn container_pause(
        &self,
        _ctx: RequestContext,
        _id: String,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_implemented!("POST /containers/{id}/pause")
    }

    /// `POST /containers/{id}/unpause` → 204.
    fn container_unpause(
        &self,
        _ctx: RequestContext,
        _id: String,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_implemented!("POST /containers/{id}/unpause")
    }

    /// `POST /containers/{id}/update`: new resource limits (applied to a running container at
    /// once) and restart policy.
    fn container_update(
        &self,
        _ctx: RequestContext,
        _id: String,
        _config: UpdateConfig,
    ) -> impl Future<Output = Result<ContainerUpdateResponse, ApiError>> + Send {
        not_implemented!("POST /containers/{id}/update")
    }

    /// `POST /containers/{id}/rename?name=` → 204.
    fn container_rename(
        &self,
        _ctx: RequestContext,
        _id: String,
        _new_name: String,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_implemented!("POST /containers/{id}/rename")
    }

    /// `GET /containers/{id}/top?ps_args=`.
    fn container_top(
        &self,
        _ctx: RequestContext,
        _id: String,
        _ps_args: Option<String>,
    ) -> impl Future<Output = Result<ContainerTopResponse, ApiError>> + Send {
        not_implemented!("GET /containers/{id}/top")
    }

    /// `GET /containers/{id}/logs`: bytes already framed (stdcopy) unless the container has a TTY.
    fn container_logs(
        &self,
        _ctx: RequestContext,
        _id: String,
        _opts: LogsOptions,
    ) -> impl Future<Output = Result<ByteStream, ApiError>> + Send {
        not_implemented!("GET /containers/{id}/logs")
    }

    /// `POST /containers/{id}/attach`.
    fn container_attach(
        &self,
        _ctx: RequestContext,
        _id: String,
        _opts: AttachOptions,
    ) -> impl Future<Output = Result<HijackHandler, ApiError>> + Send {
        not_implemented!("POST /containers/{id}/attach")
    }

    /// `POST /containers/{id}/resize?h=&w=` → 200.
    fn container_resize(
        &self,
        _ctx: RequestContext,
        _id: String,
        _height: u16,
        _width: u16,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_implemented!("POST /containers/{id}/resize")
    }

    /// `GET /containers/{id}/changes`.
    fn container_changes(
        &self,
        _ctx: RequestContext,
        _id: String,
    ) -> impl Future<Output = Result<Vec<FilesystemChange>, ApiError>> + Send {
        not_implemented!("GET /containers/{id}/changes")
    }

    /// `GET /containers/{id}/stats`: newline-separated JSON documents.
    fn container_stats(
        &self,
        _ctx: RequestContext,
        _id: String,
        _opts: StatsOptions,
    ) -> impl Future<Output = Result<ByteStream, ApiError>> + Send {
        not_implemented!("GET /containers/{id}/stats")
    }

    /// `HEAD /containers/{id}/archive?path=`.
    fn container_archive_stat(
        &self,
        _ctx: RequestContext,
        _id: String,
        _path: String,
    ) -> impl Future<Output = Result<ContainerPathStat, ApiError>> + Send {
        not_implemented!("HEAD /containers/{id}/archive")
    }

    /// `GET /containers/{id}/archive?path=`: the stat (sent as a header) and a tar stream.
    fn container_archive_get(
        &self,
        _ctx: RequestContext,
        _id: String,
        _path: String,
    ) -> impl Future<Output = Result<(ContainerPathStat, ByteStream), ApiError>> + Send {
        not_implemented!("GET /containers/{id}/archive")
    }

    /// `PUT /containers/{id}/archive`: extract the tar body at `opts.path` → 200.
    fn container_archive_put(
        &self,
        _ctx: RequestContext,
        _id: String,
        _opts: ArchivePutOptions,
        _body: BodyStream,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_implemented!("PUT /containers/{id}/archive")
    }

    /// `GET /containers/{id}/export`: the container's filesystem as a tar.
    fn container_export(
        &self,
        _ctx: RequestContext,
        _id: String,
    ) -> impl Future<Output = Result<ByteStream, ApiError>> + Send {
        not_implemented!("GET /containers/{id}/export")
    }

    /// `POST /containers/prune?filters=`.
    fn container_prune(
        &self,
        _ctx: RequestContext,
        _filters: Filters,
    ) -> impl Future<Output = Result<ContainersPruneReport, ApiError>> + Send {
        not_implemented!("POST /containers/prune")
    }

    // ----- exec -----

    /// `POST /containers/{id}/exec` → 201 `{"Id"}`.
    fn exec_create(
        &self,
        _ctx: RequestContext,
        _container: String,
        _config: ExecConfig,
    ) -> impl Future<Output = Result<IdResponse, ApiError>> + Send {
        not_implemented!("POST /containers/{id}/exec")
    }

    /// `POST /exec/{id}/start`.
    fn exec_start(
        &self,
        _ctx: RequestContext,
        _id: String,
        _config: ExecStartConfig,
    ) -> impl Future<Output = Result<ExecStartOutcome, ApiError>> + Send {
        not_implemented!("POST /exec/{id}/start")
    }

    /// `POST /exec/{id}/resize?h=&w=` → 200.
    fn exec_resize(
        &self,
        _ctx: RequestContext,
        _id: String,
        _height: u16,
        _width: u16,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_implemented!("POST /exec/{id}/resize")
    }

    /// `GET /exec/{id}/json`.
    fn exec_inspect(
        &self,
        _ctx: RequestContext,
        _id: String,
    ) -> impl Future<Output = Result<ExecInspect, ApiError>> + Send {
        not_implemented!("GET /exec/{id}/json")
    }

    // ----- images -----

    /// `GET /images/json`.
    fn image_list(
        &self,
        _ctx: RequestContext,
        _opts: ImageListOptions,
    ) -> impl Future<Output = Result<Vec<ImageSummary>, ApiError>> + Send {
        not_implemented!("GET /images/json")
    }

    /// `GET /images/{name}/json`.
    fn image_inspect(
        &self,
        _ctx: RequestContext,
        _name: String,
    ) -> impl Future<Output = Result<ImageInspect, ApiError>> + Send {
        not_implemented!("GET /images/{name}/json")
    }

    /// `GET /images/{name}/history`.
    fn image_history(
        &self,
        _ctx: RequestContext,
        _name: String,
    ) -> impl Future<Output = Result<Vec<HistoryItem>, ApiError>> + Send {
        not_implemented!("GET /images/{name}/history")
    }

    /// `POST /images/{name}/tag?repo=&tag=` → 201.
    fn image_tag(
        &self,
        _ctx: RequestContext,
        _name: String,
        _repo: String,
        _tag: Option<String>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_implemented!("POST /images/{name}/tag")
    }

    /// `DELETE /images/{name}?force=&noprune=`.
    fn image_delete(
        &self,
        _ctx: RequestContext,
        _name: String,
        _opts: ImageDeleteOptions,
    ) -> impl Future<Output = Result<Vec<ImageDeleteResponseItem>, ApiError>> + Send {
        not_implemented!("DELETE /images/{name}")
    }

    /// `POST /images/create` (pull or import).
    fn image_create(
        &self,
        _ctx: RequestContext,
        _request: ImageCreateRequest,
    ) -> impl Future<Output = Result<ProgressStream, ApiError>> + Send {
        not_implemented!("POST /images/create")
    }

    /// `POST /images/{name}/push?tag=` with `X-Registry-Auth`.
    fn image_push(
        &self,
        _ctx: RequestContext,
        _name: String,
        _tag: Option<String>,
        _auth: AuthConfig,
    ) -> impl Future<Output = Result<ProgressStream, ApiError>> + Send {
        not_implemented!("POST /images/{name}/push")
    }

    /// `POST /images/load?quiet=` with a tar body.
    fn images_load(
        &self,
        _ctx: RequestContext,
        _body: BodyStream,
        _quiet: bool,
    ) -> impl Future<Output = Result<ProgressStream, ApiError>> + Send {
        not_implemented!("POST /images/load")
    }

    /// `GET /images/get?names=a&names=b` and `GET /images/{name}/get`: a `docker save` tar.
    fn images_get(
        &self,
        _ctx: RequestContext,
        _names: Vec<String>,
    ) -> impl Future<Output = Result<ByteStream, ApiError>> + Send {
        not_implemented!("GET /images/get")
    }

    /// `POST /images/prune?filters=`.
    fn image_prune(
        &self,
        _ctx: RequestContext,
        _filters: Filters,
    ) -> impl Future<Output = Result<ImagesPruneReport, ApiError>> + Send {
        not_implemented!("POST /images/prune")
    }

    /// `POST /commit` → 201 `{"Id":"sha256:…"}`.
    fn commit(
        &self,
        _ctx: RequestContext,
        _opts: CommitOptions,
    ) -> impl Future<Output = Result<IdResponse, ApiError>> + Send {
        not_implemented!("POST /commit")
    }

    /// `POST /build` with the context tar as body.
    fn build(
        &self,
        _ctx: RequestContext,
        _opts: BuildOptions,
        _context: BodyStream,
    ) -> impl Future<Output = Result<ProgressStream, ApiError>> + Send {
        not_implemented!("POST /build")
    }

    /// `POST /build/prune`.
    fn build_prune(
        &self,
        _ctx: RequestContext,
        _opts: BuildPruneOptions,
    ) -> impl Future<Output = Result<BuildCachePruneReport, ApiError>> + Send {
        not_implemented!("POST /build/prune")
    }

    /// `GET /distribution/{name}/json` with `X-Registry-Auth`.
    fn distribution_inspect(
        &self,
        _ctx: RequestContext,
        _name: String,
        _auth: AuthConfig,
    ) -> impl Future<Output = Result<DistributionInspect, ApiError>> + Send {
        not_implemented!("GET /distribution/{name}/json")
    }

    // ----- volumes -----

    /// `GET /volumes?filters=`.
    fn volume_list(
        &self,
        _ctx: RequestContext,
        _filters: Filters,
    ) -> impl Future<Output = Result<VolumeListResponse, ApiError>> + Send {
        not_implemented!("GET /volumes")
    }

    /// `POST /volumes/create` → 201.
    fn volume_create(
        &self,
        _ctx: RequestContext,
        _body: VolumeCreateBody,
    ) -> impl Future<Output = Result<Volume, ApiError>> + Send {
        not_implemented!("POST /volumes/create")
    }

    /// `GET /volumes/{name}`.
    fn volume_inspect(
        &self,
        _ctx: RequestContext,
        _name: String,
    ) -> impl Future<Output = Result<Volume, ApiError>> + Send {
        not_implemented!("GET /volumes/{name}")
    }

    /// `DELETE /volumes/{name}?force=` → 204.
    fn volume_remove(
        &self,
        _ctx: RequestContext,
        _name: String,
        _force: bool,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_implemented!("DELETE /volumes/{name}")
    }

    /// `POST /volumes/prune?filters=`.
    fn volume_prune(
        &self,
        _ctx: RequestContext,
        _filters: Filters,
    ) -> impl Future<Output = Result<VolumesPruneReport, ApiError>> + Send {
        not_implemented!("POST /volumes/prune")
    }

    // ----- networks -----

    /// `GET /networks?filters=`.
    fn network_list(
        &self,
        _ctx: RequestContext,
        _filters: Filters,
    ) -> impl Future<Output = Result<Vec<NetworkResource>, ApiError>> + Send {
        not_implemented!("GET /networks")
    }

    /// `GET /networks/{id}?verbose=&scope=`.
    fn network_inspect(
        &self,
        _ctx: RequestContext,
        _id: String,
        _verbose: bool,
        _scope: Option<String>,
    ) -> impl Future<Output = Result<NetworkResource, ApiError>> + Send {
        not_implemented!("GET /networks/{id}")
    }

    /// `POST /networks/create` → 201.
    fn network_create(
        &self,
        _ctx: RequestContext,
        _body: NetworkCreateRequest,
    ) -> impl Future<Output = Result<NetworkCreateResponse, ApiError>> + Send {
        not_implemented!("POST /networks/create")
    }

    /// `DELETE /networks/{id}` → 204.
    fn network_remove(
        &self,
        _ctx: RequestContext,
        _id: String,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_implemented!("DELETE /networks/{id}")
    }

    /// `POST /networks/{id}/connect` → 200.
    fn network_connect(
        &self,
        _ctx: RequestContext,
        _id: String,
        _body: NetworkConnectRequest,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_implemented!("POST /networks/{id}/connect")
    }

    /// `POST /networks/{id}/disconnect` → 200.
    fn network_disconnect(
        &self,
        _ctx: RequestContext,
        _id: String,
        _body: NetworkDisconnectRequest,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        not_implemented!("POST /networks/{id}/disconnect")
    }

    /// `POST /networks/prune?filters=`.
    fn network_prune(
        &self,
        _ctx: RequestContext,
        _filters: Filters,
    ) -> impl Future<Output = Result<NetworksPruneReport, ApiError>> + Send {
        not_implemented!("POST /networks/prune")
    }
}
