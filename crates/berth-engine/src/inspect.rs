//! `GET /containers/{id}/json` and `GET /containers/json`: the record rendered with Docker's
//! field set, state strings and human status text.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_api::models::{
    ContainerInspect, ContainerState, ContainerSummary, EndpointSettings, GraphDriverData,
    NetworkSettings, SummaryHostConfig, SummaryNetworkSettings,
};
use berth_api::units::human_duration;
use berth_api::{ApiError, ContainerListOptions};
use chrono::Utc;

use crate::container::{docker_time, Container, ContainerRecord, Status};
use crate::Engine;

/// Docker's `State.StateString()`.
pub(crate) fn state_string(r: &ContainerRecord) -> &'static str {
    match r.state.status {
        Status::Running | Status::Paused | Status::Restarting | Status::Removing | Status::Dead => {
            r.state.status.as_str()
        }
        Status::Created | Status::Exited => {
            if r.state.started_at.is_none() {
                "created"
            } else {
                "exited"
            }
        }
    }
}

/// Docker's `State.String()`: `Up 2 minutes`, `Exited (0) 3 seconds ago`, `Created`…
pub(crate) fn status_text(r: &ContainerRecord) -> String {
    let now = Utc::now();
    let since = |t: Option<chrono::DateTime<Utc>>| {
        let d = t
            .map(|t| (now - t).to_std().unwrap_or_default())
            .unwrap_or_default();
        human_duration(d)
    };
    match r.state.status {
        Status::Running => match &r.state.health {
            Some(h) => format!(
                "Up {} ({})",
                since(r.state.started_at),
                if h.status == crate::health::STARTING {
                    "health: starting"
                } else {
                    h.status.as_str()
                }
            ),
            None => format!("Up {}", since(r.state.started_at)),
        },
        Status::Paused => format!("Up {} (Paused)", since(r.state.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            since(r.state.finished_at)
        ),
        Status::Removing => "Removal In Progress".to_string(),
        Status::Dead => "Dead".to_string(),
        Status::Created | Status::Exited => {
            if r.state.started_at.is_none() {
                "Created".to_string()
            } else if r.state.finished_at.is_none() {
                String::new()
            } else {
                format!(
                    "Exited ({}) {} ago",
                    r.state.exit_code,
                    since(r.state.finished_at)
                )
            }
        }
    }
}

impl Engine {
    /// The network ID berth reports for its predefined networks (`none`, `host`).
    pub(crate) fn network_id(&self, name: &str) -> String {
        berth_image::Digest::sha256_of(format!("{}/network/{name}", self.engine_id).as_bytes())
            .hex()
            .to_string()
    }

    fn endpoints(&self, r: &ContainerRecord, running: bool) -> BTreeMap<String, EndpointSettings> {
        let mut m = self.endpoint_settings(r);
        if running && !crate::network::is_bridged(&r.network_mode) {
            for e in m.values_mut() {
                e.endpoint_id =
                    berth_image::Digest::sha256_of(format!("{}/endpoint", r.id).as_bytes())
                        .hex()
                        .to_string();
            }
        }
        m
    }

    pub(crate) async fn inspect_container(
        &self,
        c: &Arc<Container>,
        size: bool,
    ) -> Result<ContainerInspect, ApiError> {
        // A container's init can end right after its start (a shell that cannot fork once a
        // fork bomb has filled its pids cgroup exits with 2) while the supervisor's report
        // of the exit is still on its way: answer with the exit, never with a running state
        // whose PID no longer exists.
        let (status, pid) = c.with(|r| (r.state.status, r.state.pid));
        if status == Status::Running && pid > 0 && !crate::start::process_alive(pid as i32) {
            let mut rx = c.subscribe();
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                rx.wait_for(|s| s.status != Status::Running),
            )
            .await;
        }
        let r = c.record();
        let running = r.state.status.is_running();
        let mut hc = r.host_config.clone();
        hc.network_mode = r.network_mode.clone();
        let (size_rw, size_root) = if size {
            let (rw, root) = self.container_sizes(&r).await;
            (Some(rw), Some(root))
        } else {
            (None, None)
        };
        let execs = c.exec_ids.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(ContainerInspect {
            id: r.id.clone(),
            created: docker_time(Some(r.created)),
            path: r.path.clone(),
            args: r.args.clone(),
            state: Some(ContainerState {
                status: state_string(&r).to_string(),
                running,
                paused: r.state.status == Status::Paused,
                restarting: r.state.status == Status::Restarting,
                oom_killed: r.state.oom_killed,
                dead: r.state.status == Status::Dead,
                pid: if running { r.state.pid } else { 0 },
                exit_code: r.state.exit_code,
                error: r.state.error.clone(),
                started_at: docker_time(r.state.started_at),
                finished_at: docker_time(r.state.finished_at),
                health: r.state.health.clone(),
            }),
            image: r.image_id.clone(),
            resolv_conf_path: r.resolv_conf_path.clone(),
            hostname_path: r.hostname_path.clone(),
            hosts_path: r.hosts_path.clone(),
            log_path: r.log_path.clone(),
            name: format!("/{}", r.name),
            restart_count: r.restart_count,
            driver: "overlay2".into(),
            platform: "linux".into(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: if execs.is_empty() { None } else { Some(execs) },
            host_config: Some(hc),
            graph_driver: GraphDriverData {
                data: Some(self.graph_driver_data(&r)),
                name: "overlay2".into(),
            },
            size_rw,
            size_root_fs: size_root,
            mounts: crate::volumes::inspect_points(&r),
            config: Some(r.config.clone()),
            network_settings: Some({
                let sb = r.sandbox.as_ref().filter(|_| running);
                let mut ns = NetworkSettings {
                    sandbox_id: match sb {
                        Some(s) => s.id.clone(),
                        None if running => {
                            berth_image::Digest::sha256_of(format!("{}/sandbox", r.id).as_bytes())
                                .hex()
                                .to_string()
                        }
                        None => String::new(),
                    },
                    sandbox_key: match sb {
                        Some(s) => s.key.clone(),
                        None if running && r.network_mode == "none" => {
                            format!("/proc/{}/ns/net", r.state.pid)
                        }
                        None => String::new(),
                    },
                    ports: Some(self.port_map(&r)),
                    networks: Some(self.endpoints(&r, running)),
                    ..NetworkSettings::default()
                };
                if let Some(ep) = self.primary_endpoint(&r) {
                    ns.endpoint_id = ep.endpoint_id.clone();
                    ns.gateway = ep.gateway.to_string();
                    ns.ip_address = ep.ip.to_string();
                    ns.ip_prefix_len = ep.prefix as i64;
                    ns.mac_address = ep.mac.clone();
                    if let Some(a) = ep.ip6 {
                        ns.global_ipv6_address = a.to_string();
                        ns.global_ipv6_prefix_len = ep.prefix6 as i64;
                        ns.ipv6_gateway = ep.gateway6.map(|g| g.to_string()).unwrap_or_default();
                    }
                }
                ns
            }),
        })
    }

    fn summary(&self, r: &ContainerRecord) -> ContainerSummary {
        let running = r.state.status.is_running();
        let mut command = r.path.clone();
        for a in &r.args {
            command.push(' ');
            command.push_str(a);
        }
        ContainerSummary {
            id: r.id.clone(),
            names: vec![format!("/{}", r.name)],
            image: r.image_name.clone(),
            image_id: r.image_id.clone(),
            command,
            created: r.created.timestamp(),
            ports: self.port_list(r),
            size_rw: None,
            size_root_fs: None,
            labels: Some(r.config.labels.clone().unwrap_or_default()),
            state: state_string(r).to_string(),
            status: status_text(r),
            host_config: SummaryHostConfig {
                network_mode: r.network_mode.clone(),
            },
            network_settings: SummaryNetworkSettings {
                networks: Some(self.endpoints(r, running)),
            },
            mounts: crate::volumes::inspect_points(r),
        }
    }

    pub(crate) async fn list_containers(
        &self,
        o: ContainerListOptions,
    ) -> Result<Vec<ContainerSummary>, ApiError> {
        let f = crate::filters::ContainerFilter::new(&o.filters, self)?;
        let mut recs: Vec<ContainerRecord> =
            self.all_containers().iter().map(|c| c.record()).collect();
        // Newest first, as Docker lists them.
        recs.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        let limit = o.limit.filter(|l| *l > 0).map(|l| l as usize);
        let all = o.all || limit.is_some();
        let mut out = Vec::new();
        for r in &recs {
            if !all && !r.state.status.is_running() && !f.wants_status() {
                continue;
            }
            if !f.matches(r, &recs) {
                continue;
            }
            let mut s = self.summary(r);
            if !f.matches_summary(&s) {
                continue;
            }
            if o.size {
                let (rw, root) = self.container_sizes(r).await;
                s.size_rw = Some(rw);
                s.size_root_fs = Some(root);
            }
            out.push(s);
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    /// Attributes of container events: image and name, plus labels.
    pub(crate) fn event_attrs(&self, c: &Container) -> BTreeMap<String, String> {
        c.with(|r| {
            let mut m: BTreeMap<String, String> = r.config.labels.clone().unwrap_or_default();
            m.insert("image".into(), r.image_name.clone());
            m.insert("name".into(), r.name.clone());
            m
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::StateRecord;

    fn rec(status: Status, started: bool, finished: bool, code: i64) -> ContainerRecord {
        let now = Utc::now() - chrono::Duration::seconds(5);
        ContainerRecord {
            id: "a".repeat(64),
            name: "x".into(),
            created: now,
            path: "sh".into(),
            args: vec![],
            config: Default::default(),
            host_config: Default::default(),
            image_id: String::new(),
            image_name: String::new(),
            state: StateRecord {
                status,
                exit_code: code,
                started_at: started.then_some(now),
                finished_at: finished.then_some(now),
                ..Default::default()
            },
            restart_count: 0,
            runtime: "runc".into(),
            network_mode: "none".into(),
            log_path: String::new(),
            hostname_path: String::new(),
            hosts_path: String::new(),
            resolv_conf_path: String::new(),
            mounts: vec![],
            has_been_started: started,
            log_max_size: None,
            log_max_file: 1,
            log_enabled: true,
            endpoints_config: Default::default(),
            sandbox: None,
        }
    }

    #[test]
    fn status_texts_like_docker() {
        assert_eq!(
            status_text(&rec(Status::Created, false, false, 0)),
            "Created"
        );
        assert_eq!(
            status_text(&rec(Status::Running, true, false, 0)),
            "Up 5 seconds"
        );
        assert_eq!(
            status_text(&rec(Status::Paused, true, false, 0)),
            "Up 5 seconds (Paused)"
        );
        assert_eq!(
            status_text(&rec(Status::Exited, true, true, 137)),
            "Exited (137) 5 seconds ago"
        );
        // A start that failed leaves the container "created" with the failure's exit code.
        assert_eq!(
            status_text(&rec(Status::Created, false, false, 127)),
            "Created"
        );
        assert_eq!(
            state_string(&rec(Status::Created, false, false, 127)),
            "created"
        );
        assert_eq!(state_string(&rec(Status::Exited, true, true, 0)), "exited");
        assert_eq!(
            status_text(&rec(Status::Restarting, true, true, 3)),
            "Restarting (3) 5 seconds ago"
        );
        assert_eq!(
            state_string(&rec(Status::Restarting, true, true, 3)),
            "restarting"
        );
    }

    #[test]
    fn status_texts_with_health() {
        let with = |status: Status, h: &str| {
            let mut r = rec(status, true, status != Status::Running, 0);
            r.state.health = Some(berth_api::models::Health {
                status: h.into(),
                ..Default::default()
            });
            status_text(&r)
        };
        assert_eq!(
            with(Status::Running, "starting"),
            "Up 5 seconds (health: starting)"
        );
        assert_eq!(with(Status::Running, "healthy"), "Up 5 seconds (healthy)");
        assert_eq!(
            with(Status::Running, "unhealthy"),
            "Up 5 seconds (unhealthy)"
        );
        // Paused and stopped containers show no health (Docker's State.String()).
        assert_eq!(with(Status::Paused, "unhealthy"), "Up 5 seconds (Paused)");
        assert_eq!(
            with(Status::Exited, "unhealthy"),
            "Exited (0) 5 seconds ago"
        );
    }
}
