//! `/version`, `/info` and `/events`.

use std::collections::BTreeMap;

use berth_api::models::{
    ComponentVersion, PlatformName, RegistryServiceConfig, RuntimeInfo, SystemInfo, SystemVersion,
};
use berth_api::{ApiError, EventStream, EventsOptions, MAX_API_VERSION, MIN_API_VERSION};
use futures_util::StreamExt;

use crate::container::Status;
use crate::Engine;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (get("PRETTY_NAME"), get("VERSION_ID"))
}

impl Engine {
    pub(crate) fn version_info(&self) -> SystemVersion {
        let mut details = BTreeMap::new();
        details.insert("ApiVersion".into(), MAX_API_VERSION.to_string());
        details.insert("Arch".into(), arch().to_string());
        details.insert("BuildTime".into(), String::new());
        details.insert("Experimental".into(), "false".into());
        details.insert("GitCommit".into(), String::new());
        details.insert("GoVersion".into(), "n/a (Rust)".into());
        details.insert("KernelVersion".into(), kernel_version());
        details.insert("MinAPIVersion".into(), MIN_API_VERSION.to_string());
        details.insert("Os".into(), "linux".into());
        let mut components = vec![ComponentVersion {
            name: "Engine".into(),
            version: VERSION.into(),
            details: Some(details),
        }];
        let versions = self.runtime_versions.get_or_init(|| {
            self.runtimes
                .iter()
                .map(|(n, rt)| (n.clone(), runtime_version(&rt.path)))
                .collect()
        });
        for (name, version) in versions {
            components.push(ComponentVersion {
                name: name.clone(),
                version: version.clone(),
                details: None,
            });
        }
        SystemVersion {
            platform: Some(PlatformName {
                name: format!("berth {VERSION}"),
            }),
            components: Some(components),
            version: VERSION.into(),
            api_version: MAX_API_VERSION.to_string(),
            min_api_version: MIN_API_VERSION.to_string(),
            git_commit: String::new(),
            go_version: "n/a (Rust)".into(),
            os: "linux".into(),
            arch: arch().into(),
            kernel_version: kernel_version(),
            experimental: false,
            build_time: String::new(),
        }
    }

    pub(crate) fn system_info(&self) -> Result<SystemInfo, ApiError> {
        let mut running = 0;
        let mut paused = 0;
        let mut stopped = 0;
        let all = self.all_containers();
        for c in &all {
            match c.status() {
                Status::Running | Status::Restarting => running += 1,
                Status::Paused => paused += 1,
                _ => stopped += 1,
            }
        }
        let (os, os_version) = os_release();
        let mem_total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| {
                        v.split_whitespace()
                            .next()
                            .and_then(|n| n.parse::<i64>().ok())
                    })
            })
            .unwrap_or(0)
            * 1024;
        let cgroup_version = match self.cgroup_mode {
            berth_runtime::cgroups::CgroupMode::V2 => "2",
            _ => "1",
        };
        let runtimes = self
            .runtimes
            .iter()
            .map(|(n, r)| {
                (
                    n.clone(),
                    RuntimeInfo {
                        path: r.path.to_string_lossy().into_owned(),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let mut insecure = vec!["127.0.0.0/8".to_string()];
        insecure.extend(self.cfg.insecure_registries.iter().cloned());
        Ok(SystemInfo {
            id: self.engine_id.clone(),
            containers: all.len() as i64,
            containers_running: running,
            containers_paused: paused,
            containers_stopped: stopped,
            images: self.image_count() as i64,
            driver: "overlay2".into(),
            driver_status: Some(vec![
                ["Backing Filesystem".into(), "extfs".into()],
                ["Supports d_type".into(), "true".into()],
                ["Native Overlay Diff".into(), "true".into()],
            ]),
            memory_limit: true,
            swap_limit: berth_runtime::cgroups::swap_accounting(self.cgroup_mode),
            cpu_cfs_period: true,
            cpu_cfs_quota: true,
            cpu_shares: true,
            cpu_set: true,
            pids_limit: true,
            ipv4_forwarding: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .map(|s| s.trim() == "1")
                .unwrap_or(false),
            oom_kill_disable: true,
            nfd: std::fs::read_dir("/proc/self/fd")
                .map(|d| d.count() as i64)
                .unwrap_or(0),
            ngoroutines: 0,
            system_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            logging_driver: self.cfg.log_driver.clone(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: cgroup_version.into(),
            kernel_version: kernel_version(),
            operating_system: os,
            os_version,
            os_type: "linux".into(),
            architecture: std::env::consts::ARCH.into(),
            index_server_address: "https://index.docker.io/v1/".into(),
            registry_config: Some(RegistryServiceConfig {
                insecure_registry_cidrs: Some(insecure),
                mirrors: Some(self.cfg.registry_mirrors.clone()),
                ..Default::default()
            }),
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get() as i64)
                .unwrap_or(1),
            mem_total,
            docker_root_dir: self.cfg.data_root.to_string_lossy().into_owned(),
            name: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            server_version: VERSION.into(),
            runtimes: Some(runtimes),
            default_runtime: self.cfg.default_runtime.clone(),
            live_restore_enabled: true,
            init_binary: "docker-init".into(),
            security_options: Some(vec!["name=seccomp,profile=builtin".into()]),
            ..Default::default()
        })
    }

    pub(crate) fn events_stream(&self, opts: EventsOptions) -> EventStream {
        let past = if opts.since.is_some() {
            self.events.history(&opts)
        } else {
            Vec::new()
        };
        let rx = self.events.subscribe();
        let until = opts.until;
        let filters = opts.filters.clone();
        let live = futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => return Some((e, rx)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return None,
                }
            }
        })
        .filter(move |e| {
            let ok = crate::events::matches(e, &filters);
            async move { ok }
        });
        let past = futures_util::stream::iter(past);
        match until {
            // With `until`, Docker sends what happened in the window and ends.
            Some(u) if u <= chrono::Utc::now() => Box::pin(past),
            Some(u) => {
                let deadline = tokio::time::Instant::now()
                    + (u - chrono::Utc::now()).to_std().unwrap_or_default();
                let live = live.take_until(tokio::time::sleep_until(deadline));
                Box::pin(past.chain(live))
            }
            None => Box::pin(past.chain(live)),
        }
    }
}

fn runtime_version(path: &std::path::Path) -> String {
    std::process::Command::new(path)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().last().map(str::to_string))
        })
        .unwrap_or_default()
}
