//! Maps `(method, path)` to a [`Route`].
//!
//! Hand-written instead of a path router (axum/matchit, routerify): Docker paths carry image
//! names that contain slashes — `/images/localhost:5000/me/busybox/push`,
//! `/images/{name}/json`, `/distribution/{name}/json`, `DELETE /images/a/b/c` — i.e. a
//! multi-segment parameter *followed by* a literal suffix, which those routers cannot express
//! (matchit's catch-all must be the last segment). Rust slice patterns
//! (`["images", name @ .., "json"]`) express exactly Docker's table, in priority order.

use http::Method;

/// One API operation with its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Ping,
    Version,
    Info,
    SystemDf,
    Events,
    Auth,
    ContainerList,
    ContainerCreate,
    ContainerInspect(String),
    ContainerTop(String),
    ContainerLogs(String),
    ContainerChanges(String),
    ContainerStats(String),
    ContainerResize(String),
    ContainerStart(String),
    ContainerStop(String),
    ContainerRestart(String),
    ContainerKill(String),
    ContainerPause(String),
    ContainerUnpause(String),
    ContainerRename(String),
    ContainerAttach(String),
    ContainerWait(String),
    ContainerDelete(String),
    ContainerArchiveStat(String),
    ContainerArchiveGet(String),
    ContainerArchivePut(String),
    ExecCreate(String),
    ExecStart(String),
    ExecResize(String),
    ExecInspect(String),
    ImageList,
    ImageCreate,
    ImageLoad,
    ImagesGet,
    ImageGet(String),
    ImageInspect(String),
    ImageHistory(String),
    ImagePush(String),
    ImageTag(String),
    ImageDelete(String),
    Build,
    Commit,
    DistributionInspect(String),
    VolumeList,
    VolumeCreate,
    VolumeInspect(String),
    VolumeDelete(String),
    NetworkList,
    NetworkCreate,
    NetworkInspect(String),
    NetworkDelete(String),
    NetworkConnect(String),
    NetworkDisconnect(String),
    PluginList,
    PluginInspect(String),
    ContainerExport(String),
    ContainerPrune,
    ImagePrune,
    BuildPrune,
    VolumePrune,
    NetworkPrune,
    ContainerUpdate(String),
    /// A swarm endpoint (swarm, services, nodes, tasks, secrets, configs): berth is a node
    /// without swarm mode and answers as dockerd does then.
    NoSwarm(NoSwarm),
    /// A plugin operation on a named plugin: berth has no plugins, so dockerd's "not found".
    PluginMissing(String, PluginOp),
    /// A Docker endpoint berth does not offer (swarm init/join, plugin installation, search):
    /// answered with 501 and the operation's name instead of `page not found`.
    Unsupported(&'static str),
}

/// How dockerd answers a swarm endpoint when the node is not part of a swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSwarm {
    /// 503 `This node is not a swarm manager. Use "docker swarm init" …`.
    NotManager,
    /// 503 `This node is not part of a swarm` (`POST /swarm/leave`).
    NotPart,
    /// An update: its `version` query parameter is checked first (400 with the message for
    /// this kind of object), then [`NoSwarm::NotManager`].
    Update(&'static str),
    /// Service or task logs: `stdout`/`stderr` checked first (400), then `NotManager`.
    Logs,
}

/// Operations on one plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginOp {
    Enable,
    Disable,
    Remove,
    Upgrade,
    Set,
    Push,
}

/// A matched request: the version from a `/v1.NN` prefix (if any) and the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub version: Option<String>,
    pub route: Route,
}

/// Matches a percent-decoded path. `None`: Docker's `404 page not found`.
pub fn route(method: &Method, path: &str) -> Option<Matched> {
    let rest = path.strip_prefix('/')?;
    let mut segments: Vec<&str> = rest.split('/').collect();
    // Docker's mux never matches empty segments (`//`, trailing `/`), except "/" itself.
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let mut version = None;
    if let Some(first) = segments.first() {
        if let Some(v) = first.strip_prefix('v') {
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                version = Some(v.to_string());
                segments.remove(0);
            }
        }
    }
    let route = match_route(method, &segments)?;
    Some(Matched { version, route })
}

fn join(parts: &[&str]) -> String {
    parts.join("/")
}

fn match_route(method: &Method, segs: &[&str]) -> Option<Route> {
    use Route::*;
    let s = |v: &&str| v.to_string();
    let m = method.clone();
    let route = if m == Method::GET || m == Method::HEAD {
        let is_head = m == Method::HEAD;
        match segs {
            ["_ping"] => Ping,
            _ if is_head => match segs {
                ["containers", id, "archive"] => ContainerArchiveStat(s(id)),
                _ => return None,
            },
            ["version"] => Version,
            ["info"] => Info,
            ["system", "df"] => SystemDf,
            ["events"] => Events,
            ["containers", "json"] => ContainerList,
            ["containers", id, "json"] => ContainerInspect(s(id)),
            ["containers", id, "top"] => ContainerTop(s(id)),
            ["containers", id, "logs"] => ContainerLogs(s(id)),
            ["containers", id, "changes"] => ContainerChanges(s(id)),
            ["containers", id, "stats"] => ContainerStats(s(id)),
            ["containers", id, "archive"] => ContainerArchiveGet(s(id)),
            ["containers", id, "export"] => ContainerExport(s(id)),
            ["images", "search"] => Unsupported("GET /images/search"),
            ["exec", id, "json"] => ExecInspect(s(id)),
            ["images", "json"] => ImageList,
            ["images", "get"] => ImagesGet,
            ["images", name @ .., "get"] if !name.is_empty() => ImageGet(join(name)),
            ["images", name @ .., "json"] if !name.is_empty() => ImageInspect(join(name)),
            ["images", name @ .., "history"] if !name.is_empty() => ImageHistory(join(name)),
            ["distribution", name @ .., "json"] if !name.is_empty() => {
                DistributionInspect(join(name))
            }
            ["volumes"] => VolumeList,
            ["volumes", name] => VolumeInspect(s(name)),
            ["networks"] => NetworkList,
            ["networks", id] => NetworkInspect(s(id)),
            ["plugins"] => PluginList,
            ["plugins", "privileges"] => Unsupported("plugin installation"),
            ["services", _, "logs"] | ["tasks", _, "logs"] => NoSwarm(self::NoSwarm::Logs),
            ["swarm"]
            | ["swarm", "unlockkey"]
            | ["services"]
            | ["services", _]
            | ["nodes"]
            | ["nodes", _]
            | ["tasks"]
            | ["tasks", _]
            | ["secrets"]
            | ["secrets", _]
            | ["configs"]
            | ["configs", _] => NoSwarm(self::NoSwarm::NotManager),
            ["plugins", name @ .., "json"] if !name.is_empty() => PluginInspect(join(name)),
            _ => return None,
        }
    } else if m == Method::POST {
        match segs {
            ["auth"] => Auth,
            ["build"] => Build,
            ["commit"] => Commit,
            ["containers", "create"] => ContainerCreate,
            ["containers", id, "resize"] => ContainerResize(s(id)),
            ["containers", id, "start"] => ContainerStart(s(id)),
            ["containers", id, "stop"] => ContainerStop(s(id)),
            ["containers", id, "restart"] => ContainerRestart(s(id)),
            ["containers", id, "kill"] => ContainerKill(s(id)),
            ["containers", id, "pause"] => ContainerPause(s(id)),
            ["containers", id, "unpause"] => ContainerUnpause(s(id)),
            ["containers", id, "rename"] => ContainerRename(s(id)),
            ["containers", id, "attach"] => ContainerAttach(s(id)),
            ["containers", id, "wait"] => ContainerWait(s(id)),
            ["containers", id, "exec"] => ExecCreate(s(id)),
            ["exec", id, "start"] => ExecStart(s(id)),
            ["exec", id, "resize"] => ExecResize(s(id)),
            ["images", "create"] => ImageCreate,
            ["containers", "prune"] => ContainerPrune,
            ["images", "prune"] => ImagePrune,
            ["volumes", "prune"] => VolumePrune,
            ["networks", "prune"] => NetworkPrune,
            ["build", "prune"] => BuildPrune,
            ["containers", id, "update"] => ContainerUpdate(s(id)),
            ["session"] => Unsupported("POST /session (BuildKit)"),
            ["swarm", "init"] | ["swarm", "join"] => Unsupported("swarm mode"),
            ["swarm", "leave"] => NoSwarm(self::NoSwarm::NotPart),
            ["swarm", "unlock"] => NoSwarm(self::NoSwarm::NotManager),
            ["swarm", "update"] => NoSwarm(self::NoSwarm::Update("swarm")),
            ["services", "create"] | ["secrets", "create"] | ["configs", "create"] => {
                NoSwarm(self::NoSwarm::NotManager)
            }
            ["services", _, "update"] => NoSwarm(self::NoSwarm::Update("service")),
            ["nodes", _, "update"] => NoSwarm(self::NoSwarm::Update("node")),
            ["secrets", _, "update"] => NoSwarm(self::NoSwarm::Update("secret")),
            ["configs", _, "update"] => NoSwarm(self::NoSwarm::Update("config")),
            ["plugins", "pull"] | ["plugins", "create"] => Unsupported("plugin installation"),
            ["plugins", name @ .., op] if !name.is_empty() => {
                let op = match *op {
                    "enable" => PluginOp::Enable,
                    "disable" => PluginOp::Disable,
                    "upgrade" => PluginOp::Upgrade,
                    "set" => PluginOp::Set,
                    "push" => PluginOp::Push,
                    _ => return None,
                };
                PluginMissing(join(name), op)
            }
            ["images", "load"] => ImageLoad,
            ["images", name @ .., "push"] if !name.is_empty() => ImagePush(join(name)),
            ["images", name @ .., "tag"] if !name.is_empty() => ImageTag(join(name)),
            ["volumes", "create"] => VolumeCreate,
            ["networks", "create"] => NetworkCreate,
            ["networks", id, "connect"] => NetworkConnect(s(id)),
            ["networks", id, "disconnect"] => NetworkDisconnect(s(id)),
            _ => return None,
        }
    } else if m == Method::PUT {
        match segs {
            ["containers", id, "archive"] => ContainerArchivePut(s(id)),
            _ => return None,
        }
    } else if m == Method::DELETE {
        match segs {
            ["containers", id] => ContainerDelete(s(id)),
            ["images", name @ ..] if !name.is_empty() => ImageDelete(join(name)),
            ["volumes", name] => VolumeDelete(s(name)),
            ["networks", id] => NetworkDelete(s(id)),
            ["services", _] | ["nodes", _] | ["secrets", _] | ["configs", _] => {
                NoSwarm(self::NoSwarm::NotManager)
            }
            ["plugins", name @ ..] if !name.is_empty() => {
                PluginMissing(join(name), PluginOp::Remove)
            }
            _ => return None,
        }
    } else {
        return None;
    };
    Some(route)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(method: Method, path: &str) -> Option<Route> {
        route(&method, path).map(|m| m.route)
    }

    #[test]
    fn versions_are_optional_prefixes() {
        let m = route(&Method::GET, "/v1.41/version").unwrap();
        assert_eq!(m.version.as_deref(), Some("1.41"));
        assert_eq!(m.route, Route::Version);
        let m = route(&Method::GET, "/version").unwrap();
        assert_eq!(m.version, None);
        let m = route(&Method::GET, "/v9.99/version").unwrap();
        assert_eq!(m.version.as_deref(), Some("9.99"));
        assert_eq!(r(Method::HEAD, "/_ping"), Some(Route::Ping));
        assert_eq!(r(Method::GET, "/v1.41/_ping"), Some(Route::Ping));
    }

    #[test]
    fn image_names_with_slashes_and_ports() {
        assert_eq!(
            r(Method::POST, "/v1.41/images/localhost:5000/me/busybox/push"),
            Some(Route::ImagePush("localhost:5000/me/busybox".into()))
        );
        assert_eq!(
            r(Method::GET, "/v1.41/images/tr-app:1/json"),
            Some(Route::ImageInspect("tr-app:1".into()))
        );
        assert_eq!(
            r(Method::DELETE, "/v1.41/images/localhost:5000/me/busybox"),
            Some(Route::ImageDelete("localhost:5000/me/busybox".into()))
        );
        assert_eq!(
            r(
                Method::GET,
                "/v1.41/distribution/localhost:5000/me/x@sha256:abc/json"
            ),
            Some(Route::DistributionInspect(
                "localhost:5000/me/x@sha256:abc".into()
            ))
        );
        assert_eq!(r(Method::GET, "/images/json"), Some(Route::ImageList));
        assert_eq!(
            r(Method::GET, "/images/json/json"),
            Some(Route::ImageInspect("json".into()))
        );
        assert_eq!(
            r(Method::GET, "/images/a/b/history"),
            Some(Route::ImageHistory("a/b".into()))
        );
        assert_eq!(
            r(Method::POST, "/images/busybox/tag"),
            Some(Route::ImageTag("busybox".into()))
        );
        assert_eq!(r(Method::GET, "/images/get"), Some(Route::ImagesGet));
        assert_eq!(
            r(Method::GET, "/images/busybox/get"),
            Some(Route::ImageGet("busybox".into()))
        );
        assert_eq!(r(Method::POST, "/images/load"), Some(Route::ImageLoad));
    }

    #[test]
    fn containers_and_exec() {
        assert_eq!(
            r(Method::GET, "/v1.41/containers/json"),
            Some(Route::ContainerList)
        );
        assert_eq!(
            r(Method::GET, "/v1.41/containers/web/json"),
            Some(Route::ContainerInspect("web".into()))
        );
        assert_eq!(
            r(Method::POST, "/containers/abc/wait"),
            Some(Route::ContainerWait("abc".into()))
        );
        assert_eq!(
            r(Method::DELETE, "/containers/abc"),
            Some(Route::ContainerDelete("abc".into()))
        );
        assert_eq!(
            r(Method::HEAD, "/containers/abc/archive"),
            Some(Route::ContainerArchiveStat("abc".into()))
        );
        assert_eq!(
            r(Method::PUT, "/containers/abc/archive"),
            Some(Route::ContainerArchivePut("abc".into()))
        );
        assert_eq!(
            r(Method::POST, "/exec/e1/start"),
            Some(Route::ExecStart("e1".into()))
        );
        assert_eq!(
            r(Method::GET, "/exec/e1/json"),
            Some(Route::ExecInspect("e1".into()))
        );
        assert_eq!(
            r(Method::GET, "/plugins/doesnotexist/json"),
            Some(Route::PluginInspect("doesnotexist".into()))
        );
    }

    #[test]
    fn prune_export_and_unsupported() {
        assert_eq!(
            r(Method::POST, "/v1.41/containers/prune"),
            Some(Route::ContainerPrune)
        );
        assert_eq!(r(Method::POST, "/images/prune"), Some(Route::ImagePrune));
        assert_eq!(r(Method::POST, "/volumes/prune"), Some(Route::VolumePrune));
        assert_eq!(
            r(Method::POST, "/networks/prune"),
            Some(Route::NetworkPrune)
        );
        assert_eq!(
            r(Method::GET, "/containers/x/export"),
            Some(Route::ContainerExport("x".into()))
        );
        assert_eq!(
            r(Method::GET, "/v1.41/swarm"),
            Some(Route::NoSwarm(NoSwarm::NotManager))
        );
        assert_eq!(
            r(Method::GET, "/services/abc"),
            Some(Route::NoSwarm(NoSwarm::NotManager))
        );
        assert_eq!(
            r(Method::POST, "/swarm/leave"),
            Some(Route::NoSwarm(NoSwarm::NotPart))
        );
        assert_eq!(
            r(Method::POST, "/services/abc/update"),
            Some(Route::NoSwarm(NoSwarm::Update("service")))
        );
        assert_eq!(
            r(Method::GET, "/tasks/abc/logs"),
            Some(Route::NoSwarm(NoSwarm::Logs))
        );
        assert_eq!(
            r(Method::DELETE, "/secrets/abc"),
            Some(Route::NoSwarm(NoSwarm::NotManager))
        );
        assert_eq!(
            r(Method::POST, "/swarm/init"),
            Some(Route::Unsupported("swarm mode"))
        );
        assert_eq!(
            r(Method::POST, "/containers/x/update"),
            Some(Route::ContainerUpdate("x".into()))
        );
        assert_eq!(r(Method::GET, "/plugins"), Some(Route::PluginList));
        assert_eq!(
            r(Method::POST, "/plugins/pull"),
            Some(Route::Unsupported("plugin installation"))
        );
        assert_eq!(
            r(Method::POST, "/plugins/vieux/sshfs:latest/enable"),
            Some(Route::PluginMissing(
                "vieux/sshfs:latest".into(),
                PluginOp::Enable
            ))
        );
        assert_eq!(
            r(Method::DELETE, "/plugins/x"),
            Some(Route::PluginMissing("x".into(), PluginOp::Remove))
        );
    }

    #[test]
    fn unknown_paths_and_methods() {
        assert_eq!(r(Method::GET, "/v1.41/nosuchendpoint"), None);
        assert_eq!(r(Method::DELETE, "/v1.41/info"), None);
        assert_eq!(r(Method::GET, "/containers//json"), None);
        assert_eq!(r(Method::GET, "/containers/json/"), None);
        assert_eq!(r(Method::GET, "/"), None);
        assert_eq!(r(Method::GET, ""), None);
        assert_eq!(r(Method::HEAD, "/version"), None);
        assert_eq!(r(Method::PATCH, "/containers/json"), None);
        assert_eq!(r(Method::GET, "/images//json"), None);
    }

    proptest! {
        #[test]
        fn router_never_panics(path in "(/[a-z0-9:._v-]{0,6}){0,6}/?") {
            for m in [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::DELETE] {
                let _ = route(&m, &path);
            }
        }

        #[test]
        fn any_image_name_round_trips(parts in prop::collection::vec("[a-z0-9][a-z0-9:._@-]{0,8}", 1..5)) {
            let name = parts.join("/");
            prop_assert_eq!(r(Method::GET, &format!("/v1.41/images/{name}/history")), Some(Route::ImageHistory(name.clone())));
            prop_assert_eq!(r(Method::POST, &format!("/images/{name}/push")), Some(Route::ImagePush(name.clone())));
            prop_assert_eq!(r(Method::DELETE, &format!("/images/{name}")), Some(Route::ImageDelete(name)));
        }
    }
}
