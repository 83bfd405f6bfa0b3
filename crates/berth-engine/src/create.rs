//! `POST /containers/create`: validate the request with Docker's rules and messages, merge the
//! image's defaults, prepare the rw layer and the container's files, persist the record.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use berth_api::models::{
    ContainerConfig, ContainerCreateBody, ContainerCreateResponse, HostConfig,
};
use berth_api::ApiError;
use chrono::Utc;

use crate::config::LogOptions;
use crate::container::{Container, ContainerRecord, StateRecord};
use crate::resources::{self, HostSupport};
use crate::{ids, netfiles, Engine};

impl Engine {
    pub(crate) async fn create_container(
        self: &Arc<Self>,
        name: Option<String>,
        body: ContainerCreateBody,
    ) -> Result<ContainerCreateResponse, ApiError> {
        let mut config = body.config;
        let mut hc = body.host_config.unwrap_or_default();
        let mut warnings = Vec::new();

        if config.image.is_empty() {
            return Err(ApiError::bad_request(
                "Config cannot be empty in order to create a container",
            ));
        }
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                if !ids::valid_name(&n) {
                    return Err(ApiError::bad_request(ids::invalid_name_message(&n)));
                }
                Some(n.trim_start_matches('/').to_string())
            }
            None => None,
        };
        validate_host_config(&hc)?;
        crate::health::validate(config.healthcheck.as_ref())?;
        warnings.extend(resources::verify(
            &mut hc,
            HostSupport::get(self.cgroup_mode),
            false,
        )?);
        resources::verify_storage_opt(&hc)?;
        // moby's adaptContainerSettings: memory+swap defaults to twice the memory limit (the
        // limit `update` later checks a new memory limit against).
        if hc.memory > 0 && hc.memory_swap == 0 {
            hc.memory_swap = hc.memory * 2;
        }

        let image = self.image_for_create(&config.image).await?;
        merge_image_config(&mut config, &image.config);
        let (path, args) = command_of(&config)?;

        let runtime = if hc.runtime.is_empty() {
            self.cfg.default_runtime.clone()
        } else {
            hc.runtime.clone()
        };
        self.runtime(&runtime)?;
        hc.runtime = runtime.clone();

        let network_mode = self.network_mode(&hc, &mut warnings)?;
        let endpoints_config =
            self.endpoints_config(&network_mode, body.networking_config.as_ref())?;
        let anonymous: Vec<String> = config
            .volumes
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        let mount_plan = crate::volumes::mounts::plan(&hc, &anonymous)?;

        // Logging: the daemon's json-file defaults unless the container overrides them.
        let (log_enabled, log_max_size, log_max_file) = self.log_settings(&mut hc)?;

        let id = ids::new_id();
        let hostname = if config.hostname.is_empty() {
            if network_mode == "host" {
                nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| id[..12].to_string())
            } else {
                id[..12].to_string()
            }
        } else {
            config.hostname.clone()
        };
        config.hostname = hostname.clone();
        let extra_hosts = hc
            .extra_hosts
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|e| {
                netfiles::parse_extra_host(e, self.host_gateway()).map_err(ApiError::bad_request)
            })
            .collect::<Result<Vec<_>, _>>()?;

        let dir = self.container_dir(&id);
        let rec = ContainerRecord {
            id: id.clone(),
            name: String::new(),
            created: Utc::now(),
            path,
            args,
            image_id: image.id.clone(),
            image_name: config.image.clone(),
            config,
            host_config: hc,
            state: StateRecord::default(),
            restart_count: 0,
            runtime,
            network_mode: network_mode.clone(),
            log_path: if log_enabled {
                dir.join(format!("{id}-json.log"))
                    .to_string_lossy()
                    .into_owned()
            } else {
                String::new()
            },
            hostname_path: dir.join("hostname").to_string_lossy().into_owned(),
            hosts_path: dir.join("hosts").to_string_lossy().into_owned(),
            resolv_conf_path: dir.join("resolv.conf").to_string_lossy().into_owned(),
            mounts: Vec::new(),
            has_been_started: false,
            log_max_size,
            log_max_file,
            log_enabled,
            endpoints_config,
            sandbox: None,
        };

        // Reserve the name before doing any work, so two creates cannot both take it.
        let name = self.reserve_name(&id, name)?;
        let result = self
            .materialize(rec, &name, &image, &hostname, &extra_hosts, mount_plan)
            .await;
        match result {
            Ok(c) => {
                let attrs = self.event_attrs(&c);
                self.events.emit("container", "create", &id, attrs);
                Ok(ContainerCreateResponse { id, warnings })
            }
            Err(e) => {
                self.release_name(&name);
                let _ = std::fs::remove_dir_all(&dir);
                self.remove_rw_layer(&id).await;
                Err(e)
            }
        }
    }

    async fn materialize(
        self: &Arc<Self>,
        mut rec: ContainerRecord,
        name: &str,
        image: &crate::images::ImageRef,
        hostname: &str,
        extra_hosts: &[(String, String)],
        mount_plan: crate::volumes::MountPlan,
    ) -> Result<Arc<Container>, ApiError> {
        rec.name = name.to_string();
        let dir = self.container_dir(&rec.id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", dir.display())))?;
        self.create_rw_layer(&rec.id, image).await?;
        let tmpfs: Vec<String> = rec
            .host_config
            .tmpfs
            .iter()
            .flatten()
            .map(|(d, _)| crate::volumes::mounts::clean_path(d))
            .collect();
        rec.mounts = self.attach_volumes(&rec.id, mount_plan, &tmpfs).await?;
        let saved = write_net_files(
            &dir,
            &rec,
            hostname,
            extra_hosts,
            self.daemon_dns(),
            &self.cfg.net.host_resolv_conf,
        )
        .map_err(|e| ApiError::internal(format!("cannot write the container's files: {e}")))
        .and_then(|()| {
            let c = Container::new(rec.clone(), &self.cfg.data_root, &self.cfg.exec_root);
            c.save()
                .map(|()| c)
                .map_err(|e| ApiError::internal(format!("cannot save the container record: {e}")))
        });
        let c = match saved {
            Ok(c) => c,
            Err(e) => {
                self.detach_volumes(&rec.id, &rec.mounts, true).await;
                return Err(e);
            }
        };
        let mut cs = self.containers.write().unwrap_or_else(|p| p.into_inner());
        cs.by_id.insert(c.id.clone(), c.clone());
        Ok(c)
    }

    /// Takes `name` (or a generated one) for `id`; 409 with Docker's text when taken.
    pub(crate) fn reserve_name(&self, id: &str, name: Option<String>) -> Result<String, ApiError> {
        let mut cs = self.containers.write().unwrap_or_else(|p| p.into_inner());
        let name = match name {
            Some(n) => {
                if let Some(other) = cs.names.get(&n) {
                    return Err(ApiError::conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    )));
                }
                n
            }
            None => ids::generate_name(|n| cs.names.contains_key(n)),
        };
        cs.names.insert(name.clone(), id.to_string());
        Ok(name)
    }

    pub(crate) fn release_name(&self, name: &str) {
        let mut cs = self.containers.write().unwrap_or_else(|p| p.into_inner());
        cs.names.remove(name);
    }

    /// The network mode the container gets, as stored in the record.
    fn network_mode(
        &self,
        hc: &HostConfig,
        warnings: &mut Vec<String>,
    ) -> Result<String, ApiError> {
        let requested = hc.network_mode.as_str();
        let has_ports = hc.port_bindings.as_ref().is_some_and(|p| {
            p.values()
                .any(|v| v.as_ref().is_some_and(|b| !b.is_empty()))
        }) || hc.publish_all_ports;
        let mode = match requested {
            "" | "default" | "bridge" => {
                if self.net.find("bridge").is_err() {
                    if requested == "bridge" {
                        return Err(ApiError::not_found("network bridge not found"));
                    }
                    if has_ports {
                        return Err(ApiError::bad_request(
                            "publishing ports (-p/-P) needs the default bridge network, which this daemon runs without (\"bridge\": \"none\" in daemon.json)",
                        ));
                    }
                    // Without a default bridge the container gets its own network namespace
                    // with only a loopback interface, and inspect reports "none".
                    "none".to_string()
                } else if requested.is_empty() {
                    "default".to_string()
                } else {
                    requested.to_string()
                }
            }
            "none" => {
                if has_ports {
                    return Err(ApiError::bad_request(
                        "conflicting options: port publishing and the container type network mode",
                    ));
                }
                "none".to_string()
            }
            "host" => {
                if has_ports {
                    warnings.push(
                        "Published ports are discarded when using host network mode".to_string(),
                    );
                }
                "host".to_string()
            }
            other => {
                if let Some(target) = other.strip_prefix("container:") {
                    if has_ports {
                        return Err(ApiError::bad_request(
                            "conflicting options: port publishing and the container type network mode",
                        ));
                    }
                    let c = self.lookup(target)?;
                    format!("container:{}", c.id)
                } else {
                    self.net.find(other)?.rec.name.clone()
                }
            }
        };
        Ok(mode)
    }

    /// The create request's `EndpointsConfig`, keyed by network name; Docker's checks of
    /// static addresses and aliases.
    fn endpoints_config(
        &self,
        mode: &str,
        nc: Option<&berth_api::models::NetworkingConfig>,
    ) -> Result<BTreeMap<String, berth_api::models::EndpointSettings>, ApiError> {
        let mut out = BTreeMap::new();
        if !crate::network::is_bridged(mode) {
            return Ok(out);
        }
        let primary = crate::network::mode_network(mode).to_string();
        for (k, e) in nc
            .and_then(|n| n.endpoints_config.clone())
            .unwrap_or_default()
        {
            let name = match k.as_str() {
                "default" | "" => primary.clone(),
                other => self.net.find(other)?.rec.name.clone(),
            };
            let is_default = name == "bridge";
            let ip = e
                .ipam_config
                .as_ref()
                .map(|i| i.ipv4_address.clone())
                .unwrap_or_default();
            if is_default && !ip.is_empty() {
                return Err(ApiError::bad_request(
                    "user specified IP address is supported on user defined networks only",
                ));
            }
            if !ip.is_empty() && ip.parse::<std::net::Ipv4Addr>().is_err() {
                return Err(ApiError::bad_request(format!("invalid IPv4 address: {ip}")));
            }
            if is_default && e.aliases.as_ref().is_some_and(|a| !a.is_empty()) {
                return Err(ApiError::bad_request(
                    "network-scoped alias is supported only for containers in user defined networks",
                ));
            }
            if !e.mac_address.is_empty() {
                berth_net::ipam::parse_mac(&e.mac_address)
                    .map_err(|err| ApiError::bad_request(err.to_string()))?;
            }
            out.insert(name, e);
        }
        out.entry(primary).or_default();
        Ok(out)
    }

    fn log_settings(&self, hc: &mut HostConfig) -> Result<(bool, Option<u64>, u32), ApiError> {
        let kind = if hc.log_config.kind.is_empty() {
            self.cfg.log_driver.clone()
        } else {
            hc.log_config.kind.clone()
        };
        match kind.as_str() {
            "none" => {
                hc.log_config.kind = kind;
                Ok((false, None, 1))
            }
            "json-file" => {
                // dockerd's mergeAndVerifyLogConfig: the daemon's log-opts fill the keys the
                // container leaves out when it uses the daemon's driver.
                let mut opts = hc.log_config.config.clone().unwrap_or_default();
                if kind == self.cfg.log_driver {
                    for (k, v) in &self.cfg.log_opts.raw {
                        opts.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                // Unknown keys are refused at create (dockerd's ValidateLogOpt); bad values
                // fail there too, with the message dockerd gives when the driver starts.
                LogOptions::check_keys(&opts).map_err(ApiError::bad_request)?;
                let parsed = LogOptions::parse_values(&opts).map_err(|e| {
                    ApiError::bad_request(format!("failed to initialize logging driver: {e}"))
                })?;
                hc.log_config.kind = kind;
                hc.log_config.config = Some(opts);
                Ok((true, parsed.max_size, parsed.max_file))
            }
            other => Err(ApiError::bad_request(
                crate::config::check_log_driver(other)
                    .err()
                    .unwrap_or_default(),
            )),
        }
    }
}

/// Docker's host-config checks other than resources (those are `resources::verify`).
fn validate_host_config(hc: &HostConfig) -> Result<(), ApiError> {
    let bad = |m: &str| Err(ApiError::bad_request(m.to_string()));
    validate_restart_policy(hc, true)?;
    for mode in [&hc.ipc_mode, &hc.pid_mode, &hc.uts_mode] {
        if !matches!(mode.as_str(), "" | "host" | "private" | "shareable") {
            return Err(ApiError::bad_request(format!(
                "namespace mode {mode} is not supported by berth yet (host or private)"
            )));
        }
    }
    if hc.uts_mode == "host" && hc.network_mode != "host" {
        // Docker allows it; nothing to check.
    }
    if !hc.userns_mode.is_empty() && hc.userns_mode != "host" {
        return bad("user namespaces (--userns) are not supported by berth yet");
    }
    if !hc.cgroupns_mode.is_empty() && hc.cgroupns_mode != "host" && hc.cgroupns_mode != "private" {
        return Err(ApiError::bad_request(format!(
            "invalid cgroup namespace mode: {}",
            hc.cgroupns_mode
        )));
    }
    if hc.links.as_ref().is_some_and(|v| !v.is_empty()) {
        return bad("--link (legacy container links) is not supported by berth; put the containers on a user-defined network, where they resolve each other by name");
    }
    if !hc.volume_driver.is_empty() && hc.volume_driver != "local" {
        return Err(ApiError::bad_request(format!(
            "volume driver {} is not supported by berth",
            hc.volume_driver
        )));
    }
    if hc.device_requests.as_ref().is_some_and(|v| !v.is_empty()) {
        return bad("device requests (--gpus) are not supported by berth");
    }
    Ok(())
}

/// Docker's restart-policy checks (create, and update with `create == false`, where
/// AutoRemove is checked against the container instead).
pub(crate) fn validate_restart_policy(hc: &HostConfig, create: bool) -> Result<(), ApiError> {
    match hc.restart_policy.name.as_str() {
        "" | "no" => {}
        "always" | "unless-stopped" | "on-failure" => {
            if create && hc.auto_remove {
                return Err(ApiError::bad_request(
                    "can't create 'AutoRemove' container with restart policy",
                ));
            }
            if hc.restart_policy.name != "on-failure" && hc.restart_policy.maximum_retry_count != 0
            {
                return Err(ApiError::bad_request(format!(
                    "maximum retry count cannot be used with restart policy '{}'",
                    hc.restart_policy.name
                )));
            }
            if hc.restart_policy.maximum_retry_count < 0 {
                return Err(ApiError::bad_request(
                    "maximum retry count cannot be negative",
                ));
            }
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid restart policy '{other}'"
            )))
        }
    }
    Ok(())
}

/// Fills what the request leaves empty from the image, as Docker's `merge` does.
pub(crate) fn merge_image_config(c: &mut ContainerConfig, img: &ContainerConfig) {
    if c.user.is_empty() {
        c.user = img.user.clone();
    }
    match (&mut c.exposed_ports, &img.exposed_ports) {
        (None, Some(p)) => c.exposed_ports = Some(p.clone()),
        (Some(mine), Some(p)) => {
            for (k, v) in p {
                mine.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        _ => {}
    }
    // Env: the request's, then the image's variables it does not set (moby's `merge`).
    let mut env: Vec<String> = c.env.clone().unwrap_or_default();
    for e in img.env.iter().flatten() {
        let key = e.split('=').next().unwrap_or("");
        if !env.iter().any(|x| x.split('=').next().unwrap_or("") == key) {
            env.push(e.clone());
        }
    }
    // Nothing from either side stays null, as in dockerd's inspect.
    c.env = (!env.is_empty() || c.env.is_some()).then_some(env);
    if c.labels.is_none() {
        c.labels = img.labels.clone();
    } else if let (Some(mine), Some(theirs)) = (&mut c.labels, &img.labels) {
        for (k, v) in theirs {
            mine.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    // Entrypoint and Cmd: an explicit entrypoint drops the image's cmd (Docker's rule).
    let ep_set = c.entrypoint.as_ref().is_some_and(|e| !e.is_empty());
    if !ep_set {
        if c.entrypoint.is_none() {
            c.entrypoint = img.entrypoint.clone();
        }
        if c.cmd.as_ref().is_none_or(|x| x.is_empty()) {
            c.cmd = img.cmd.clone();
        }
    }
    if c.working_dir.is_empty() {
        c.working_dir = img.working_dir.clone();
    }
    crate::health::merge_config(&mut c.healthcheck, img.healthcheck.as_ref());
    if c.stop_signal.is_empty() {
        c.stop_signal = img.stop_signal.clone();
    }
    if c.stop_timeout.is_none() {
        c.stop_timeout = img.stop_timeout;
    }
    // Volumes: the union of the request's and the image's (moby's `merge`).
    match (&mut c.volumes, &img.volumes) {
        (Some(mine), Some(theirs)) => {
            for (k, v) in theirs {
                mine.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        (None, Some(theirs)) => c.volumes = Some(theirs.clone()),
        _ => {}
    }
    if c.on_build.is_none() {
        c.on_build = img.on_build.clone();
    }
    if c.shell.is_none() {
        c.shell = img.shell.clone();
    }
    if c.domainname.is_empty() {
        c.domainname = img.domainname.clone();
    }
}

/// Path and Args from Entrypoint + Cmd; 400 when there is no command at all.
pub(crate) fn command_of(c: &ContainerConfig) -> Result<(String, Vec<String>), ApiError> {
    let mut argv: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    argv.extend(c.cmd.clone().unwrap_or_default());
    if argv.is_empty() {
        return Err(ApiError::bad_request("No command specified"));
    }
    let path = argv.remove(0);
    Ok((path, argv))
}

/// Writes /etc/hostname, /etc/hosts and /etc/resolv.conf for the container (world-readable, as
/// Docker: processes of any user read them). They are derived from the record, so they are
/// written without fsyncs and rewritten at start when missing.
pub(crate) fn write_net_files(
    dir: &Path,
    rec: &ContainerRecord,
    hostname: &str,
    extra_hosts: &[(String, String)],
    daemon_dns: (&[String], &[String], &[String]),
    host_resolv_conf: &Path,
) -> std::io::Result<()> {
    let host_mode = rec.network_mode == "host";
    let hosts = if host_mode {
        let host = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        netfiles::host_mode_hosts_file(&host, extra_hosts)
    } else {
        netfiles::hosts_file(hostname, &rec.config.domainname, &[], extra_hosts)
    };
    // Rewritten at every start (the networks may change meanwhile); the embedded DNS server's
    // 127.0.0.11 on user-defined networks.
    let host_resolv = std::fs::read_to_string(host_resolv_conf).unwrap_or_default();
    let networks: Vec<String> = if crate::network::is_bridged(&rec.network_mode) {
        crate::Engine::endpoint_order(rec)
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    } else {
        Vec::new()
    };
    let resolv = crate::dns::resolv_plan(rec, &networks, daemon_dns, &host_resolv);
    let resolv = resolv.content();
    berth_image::fsutil::write_replace(
        dir,
        "hostname",
        netfiles::hostname_file(hostname).as_bytes(),
        0o644,
    )?;
    berth_image::fsutil::write_replace(dir, "hosts", hosts.as_bytes(), 0o644)?;
    berth_image::fsutil::write_replace(dir, "resolv.conf", resolv.as_bytes(), 0o644)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> ContainerConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn merges_like_docker() {
        let img = cfg(
            r#"{"Env":["PATH=/bin","A=img"],"Cmd":["sh"],"Entrypoint":null,"WorkingDir":"/w","Labels":{"x":"1"},"User":"nobody"}"#,
        );
        let mut c =
            cfg(r#"{"Env":["A=mine","B=2"],"Cmd":null,"Image":"busybox","Labels":{"y":"2"}}"#);
        merge_image_config(&mut c, &img);
        assert_eq!(
            c.env.as_ref().unwrap(),
            &vec!["A=mine".to_string(), "B=2".into(), "PATH=/bin".into()]
        );
        assert_eq!(c.cmd.as_ref().unwrap(), &vec!["sh".to_string()]);
        assert_eq!(c.working_dir, "/w");
        assert_eq!(c.user, "nobody");
        assert_eq!(c.labels.as_ref().unwrap().len(), 2);
        assert_eq!(command_of(&c).unwrap(), ("sh".to_string(), vec![]));

        // An explicit entrypoint drops the image's cmd.
        let mut c = cfg(r#"{"Entrypoint":["echo"],"Image":"busybox"}"#);
        merge_image_config(&mut c, &img);
        assert_eq!(c.cmd, None);
        assert_eq!(command_of(&c).unwrap(), ("echo".to_string(), vec![]));

        let mut c = cfg(r#"{"Image":"x"}"#);
        merge_image_config(&mut c, &ContainerConfig::default());
        assert_eq!(command_of(&c).unwrap_err().message, "No command specified");
    }

    #[test]
    fn host_config_rules() {
        let hc = |j: &str| serde_json::from_str::<HostConfig>(j).unwrap();
        assert!(validate_host_config(&hc(
            r#"{"RestartPolicy":{"Name":"always"},"AutoRemove":true}"#
        ))
        .is_err());
        assert!(validate_host_config(&hc(r#"{"RestartPolicy":{"Name":"sometimes"}}"#)).is_err());
        assert!(validate_host_config(&hc(r#"{"Memory":10000000,"NanoCpus":500000000}"#)).is_ok());
    }
}
