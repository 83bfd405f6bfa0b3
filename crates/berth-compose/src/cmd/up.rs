//! `up` and `create`: networks, volumes, images, then the containers of every service in
//! dependency order (independent services in parallel), reusing unchanged containers (same
//! config hash) and recreating changed ones, as Docker Compose v2's convergence does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_api::backend::ContainerRemoveOptions;
use berth_api::client::Client;
use berth_api::models::*;
use tokio::sync::watch;

use super::{
    cname, container_name, image_name, label, number, project_containers, select, service_labels,
    CmdError, CmdResult, Flags, Ui, COMPOSE_VERSION, DEPENDS_ON_LABEL, HASH_LABEL, IMAGE_LABEL,
    NETWORK_LABEL, NUMBER_LABEL, PROJECT_LABEL, SERVICE_LABEL, VERSION_LABEL, VOLUME_LABEL,
};
use crate::model::{Project, Service};

/// How one service ended up (for its dependents).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Done {
    Pending,
    Ok,
    Failed(String),
}

/// `up` (start = true) or `create`.
pub async fn up(
    client: &Client,
    ui: &Ui,
    project: &mut Project,
    args: &[String],
    flags: &dyn Flags,
    start: bool,
) -> CmdResult {
    let detach = flags.flag("detach") || flags.flag("wait");
    let start = start && !flags.flag("no-start");
    let no_deps = flags.flag("no-deps");
    if flags.flag("force-recreate") && flags.flag("no-recreate") {
        return Err(CmdError::msg(
            "--force-recreate and --no-recreate are incompatible",
        ));
    }
    if flags.flag("abort-on-container-exit") && detach {
        return Err(CmdError::msg(
            "--abort-on-container-exit and --detach are incompatible",
        ));
    }
    if !args.is_empty() {
        crate::loader::enable_services(project, args).map_err(|e| CmdError::msg(e.to_string()))?;
    }
    for s in flags.list("scale") {
        let (svc, n) = s
            .split_once('=')
            .ok_or_else(|| CmdError::msg(format!("invalid --scale {s:?}: use SERVICE=NUM")))?;
        let n: i64 = n
            .parse()
            .map_err(|_| CmdError::msg(format!("invalid --scale {s:?}: NUM must be a number")))?;
        let sv = project
            .services
            .get_mut(svc)
            .ok_or_else(|| CmdError::msg(format!("no such service: {svc}")))?;
        sv.scale = Some(n);
        if let Some(d) = sv.deploy.as_mut() {
            d.replicas = Some(n);
        }
    }
    // The services to converge: the named ones and (unless --no-deps) what they depend on.
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let roots: Vec<String> = if args.is_empty() {
        project.services.keys().cloned().collect()
    } else {
        select(project, args)?
            .iter()
            .map(|s| s.name.clone())
            .collect()
    };
    let mut queue = roots.clone();
    while let Some(n) = queue.pop() {
        if wanted.insert(n.clone()) && !no_deps {
            if let Some(s) = project.services.get(&n) {
                queue.extend(s.dependencies().map(str::to_string));
            }
        }
    }

    let existing = project_containers(client, &project.name, true, false).await?;
    // Orphans: containers of services the project no longer has.
    let known: BTreeSet<&str> = project
        .services
        .keys()
        .chain(project.disabled.keys())
        .map(String::as_str)
        .collect();
    let orphans: Vec<&ContainerSummary> = existing
        .iter()
        .filter(|c| !known.contains(label(c, SERVICE_LABEL)))
        .collect();
    if !orphans.is_empty() {
        if flags.flag("remove-orphans") {
            for c in &orphans {
                let n = cname(c);
                ui.event(&format!("Container {n}"), "Removing");
                let _ = client.container_stop(&c.id, None, None).await;
                client
                    .container_remove(&c.id, ContainerRemoveOptions::default())
                    .await?;
                ui.event(&format!("Container {n}"), "Removed");
            }
        } else {
            let names: Vec<String> = orphans.iter().map(|c| cname(c)).collect();
            ui.warn(&format!("Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.", names.join(" ")));
        }
    }

    ensure_networks(client, ui, project, &wanted).await?;
    ensure_volumes(client, ui, project, &wanted).await?;
    ensure_images(client, ui, project, &wanted, flags).await?;

    // Converge: one task per service, each waiting for its dependencies' conditions.
    let project_arc = Arc::new(project.clone());
    let client = Arc::new(super::reconnect(client)?);
    let existing = Arc::new(existing);
    let mut status: HashMap<String, watch::Sender<Done>> = HashMap::new();
    let mut receivers: HashMap<String, watch::Receiver<Done>> = HashMap::new();
    for n in &wanted {
        let (tx, rx) = watch::channel(Done::Pending);
        status.insert(n.clone(), tx);
        receivers.insert(n.clone(), rx);
    }
    let force = flags.flag("force-recreate");
    let no_recreate = flags.flag("no-recreate");
    let mut tasks = Vec::new();
    for n in &wanted {
        let svc = project.services[n].clone();
        let deps: Vec<(String, String, watch::Receiver<Done>)> = svc
            .depends_on
            .iter()
            .filter_map(|(d, dep)| {
                receivers
                    .get(d)
                    .map(|r| (d.clone(), dep.condition.clone(), r.clone()))
            })
            .collect();
        let tx = status
            .remove(n)
            .ok_or_else(|| CmdError::msg("internal: no status"))?;
        let (client, project, existing, ui) = (
            client.clone(),
            project_arc.clone(),
            existing.clone(),
            ui.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = converge_service(
                &client,
                &ui,
                &project,
                &svc,
                &existing,
                deps,
                start,
                force,
                no_recreate,
            )
            .await;
            let _ = tx.send(match &r {
                Ok(()) => Done::Ok,
                Err(e) => Done::Failed(e.message.clone()),
            });
            r
        }));
    }
    let mut first_err: Option<CmdError> = None;
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(CmdError::msg(format!("internal error: {e}")));
                }
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    if !start {
        return Ok(());
    }
    if flags.flag("wait") {
        let timeout = flags
            .value("wait-timeout")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        return wait_ready(&client, ui, project, &wanted, timeout).await;
    }
    if detach {
        return Ok(());
    }
    super::ops::attach_and_wait(&client, ui, project, &wanted, flags).await
}

pub(super) async fn ensure_networks(
    client: &Client,
    ui: &Ui,
    project: &Project,
    wanted: &BTreeSet<String>,
) -> CmdResult {
    let used: BTreeSet<&String> = wanted
        .iter()
        .filter_map(|n| project.services.get(n))
        .flat_map(|s| s.networks.keys())
        .collect();
    for key in used {
        let Some(net) = project.networks.get(key) else {
            continue;
        };
        match client.network_inspect(&net.name).await {
            Ok(_) => continue,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        if net.external {
            return Err(CmdError::msg(format!(
                "network {} declared as external, but could not be found",
                net.name
            )));
        }
        let res = format!("Network {}", net.name);
        ui.event(&res, "Creating");
        let mut labels = net.labels.clone();
        labels.insert(PROJECT_LABEL.into(), project.name.clone());
        labels.insert(NETWORK_LABEL.into(), key.clone());
        labels.insert(VERSION_LABEL.into(), COMPOSE_VERSION.into());
        let ipam = if net.ipam.driver.is_empty() && net.ipam.config.is_empty() {
            None
        } else {
            Some(Ipam {
                driver: if net.ipam.driver.is_empty() {
                    "default".into()
                } else {
                    net.ipam.driver.clone()
                },
                options: None,
                config: Some(
                    net.ipam
                        .config
                        .iter()
                        .map(|p| IpamConfig {
                            subnet: p.subnet.clone(),
                            ip_range: p.ip_range.clone(),
                            gateway: p.gateway.clone(),
                            auxiliary_addresses: (!p.aux_addresses.is_empty())
                                .then(|| p.aux_addresses.clone()),
                        })
                        .collect(),
                ),
            })
        };
        let req = NetworkCreateRequest {
            name: net.name.clone(),
            check_duplicate: true,
            driver: if net.driver.is_empty() {
                "bridge".into()
            } else {
                net.driver.clone()
            },
            enable_ipv6: net.enable_ipv6.unwrap_or(false),
            ipam,
            internal: net.internal,
            attachable: net.attachable,
            options: (!net.driver_opts.is_empty()).then(|| net.driver_opts.clone()),
            labels: Some(labels),
            ..Default::default()
        };
        client
            .network_create(&req)
            .await
            .map_err(|e| CmdError::msg(format!("failed to create network {}: {e}", net.name)))?;
        ui.event(&res, "Created");
    }
    Ok(())
}

pub(super) async fn ensure_volumes(
    client: &Client,
    ui: &Ui,
    project: &Project,
    wanted: &BTreeSet<String>,
) -> CmdResult {
    let used: BTreeSet<&String> = wanted
        .iter()
        .filter_map(|n| project.services.get(n))
        .flat_map(|s| s.volumes.iter())
        .filter(|v| v.kind == "volume" && !v.source.is_empty())
        .map(|v| &v.source)
        .collect();
    for key in used {
        let Some(vol) = project.volumes.get(key) else {
            continue;
        };
        match client.volume_inspect(&vol.name).await {
            Ok(_) => continue,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        if vol.external {
            return Err(CmdError::msg(format!(
                "external volume \"{}\" not found",
                vol.name
            )));
        }
        let res = format!("Volume \"{}\"", vol.name);
        ui.event(&res, "Creating");
        let mut labels = vol.labels.clone();
        labels.insert(PROJECT_LABEL.into(), project.name.clone());
        labels.insert(VOLUME_LABEL.into(), key.clone());
        labels.insert(VERSION_LABEL.into(), COMPOSE_VERSION.into());
        client
            .volume_create(&VolumeCreateBody {
                name: vol.name.clone(),
                driver: if vol.driver.is_empty() {
                    "local".into()
                } else {
                    vol.driver.clone()
                },
                driver_opts: (!vol.driver_opts.is_empty()).then(|| vol.driver_opts.clone()),
                labels: Some(labels),
            })
            .await
            .map_err(|e| CmdError::msg(format!("failed to create volume {}: {e}", vol.name)))?;
        ui.event(&res, "Created");
    }
    Ok(())
}

/// Pulls the images that are missing (or always, per `pull_policy` / `--pull`); services that
/// build are refused with a clear message until the builder is wired in.
pub(super) async fn ensure_images(
    client: &Client,
    ui: &Ui,
    project: &Project,
    wanted: &BTreeSet<String>,
    flags: &dyn Flags,
) -> CmdResult {
    let pull_flag = flags.value("pull").unwrap_or_else(|| "policy".into());
    for n in wanted {
        let s = &project.services[n];
        let image = image_name(&project.name, s);
        let policy = if pull_flag == "policy" {
            if s.pull_policy.is_empty() {
                "missing".to_string()
            } else {
                s.pull_policy.clone()
            }
        } else {
            pull_flag.clone()
        };
        let present = match client.image_inspect(&image).await {
            Ok(_) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => return Err(e.into()),
        };
        let must_build = s.build.is_some()
            && (flags.flag("build") || policy == "build" || (!present && s.image.is_empty()));
        if must_build && !flags.flag("no-build") {
            super::build::build_service(client, ui, project, s).await?;
            continue;
        }
        if present && policy != "always" {
            continue;
        }
        if s.build.is_some() && !present && policy != "always" {
            super::build::build_service(client, ui, project, s).await?;
            continue;
        }
        if policy == "never" {
            return Err(CmdError::msg(format!("No such image: {image}")));
        }
        super::ops::pull_image(client, ui, n, &image).await?;
    }
    Ok(())
}

/// Creates/recreates/starts the containers of one service once its dependencies allow it.
#[allow(clippy::too_many_arguments)]
async fn converge_service(
    client: &Client,
    ui: &Ui,
    project: &Project,
    svc: &Service,
    existing: &[ContainerSummary],
    deps: Vec<(String, String, watch::Receiver<Done>)>,
    start: bool,
    force: bool,
    no_recreate: bool,
) -> CmdResult {
    // Our containers must exist before dependents start; conditions are checked before we
    // start ours.
    for (dep, _, mut rx) in deps.clone() {
        loop {
            let v = rx.borrow().clone();
            match v {
                Done::Ok => break,
                Done::Failed(_) => {
                    return Err(CmdError::msg(format!(
                        "dependency failed to start: service {dep} failed"
                    )))
                }
                Done::Pending => {
                    if rx.changed().await.is_err() {
                        return Err(CmdError::msg(format!("dependency {dep} did not converge")));
                    }
                }
            }
        }
    }
    let hash = crate::service_hash(svc);
    let mine: Vec<&ContainerSummary> = existing
        .iter()
        .filter(|c| label(c, SERVICE_LABEL) == svc.name)
        .collect();
    let replicas = svc.replicas().max(0);
    let image_id = match client.image_inspect(&image_name(&project.name, svc)).await {
        Ok(i) => i.id,
        Err(_) => String::new(),
    };
    let mut ids: Vec<(String, String, bool)> = Vec::new(); // (id, name, needs_start)
    for c in &mine {
        let n = number(c);
        if n > replicas || n < 1 {
            let name = cname(c);
            ui.event(&format!("Container {name}"), "Stopping");
            let _ = client.container_stop(&c.id, None, stop_timeout(svc)).await;
            ui.event(&format!("Container {name}"), "Stopped");
            ui.event(&format!("Container {name}"), "Removing");
            client
                .container_remove(&c.id, ContainerRemoveOptions::default())
                .await?;
            ui.event(&format!("Container {name}"), "Removed");
        }
    }
    for n in 1..=replicas {
        let current = mine.iter().find(|c| number(c) == n);
        let name = container_name(&project.name, svc, n);
        let res = format!("Container {name}");
        match current {
            Some(c)
                if no_recreate
                    || (!force
                        && label(c, HASH_LABEL) == hash
                        && (image_id.is_empty()
                            || label(c, IMAGE_LABEL).is_empty()
                            || label(c, IMAGE_LABEL) == image_id)) =>
            {
                let running = c.state == "running";
                if running {
                    ui.event(&res, "Running");
                }
                ids.push((c.id.clone(), name, !running));
            }
            Some(c) => {
                ui.event(&res, "Recreate");
                let _ = client.container_stop(&c.id, None, stop_timeout(svc)).await;
                client
                    .container_remove(&c.id, ContainerRemoveOptions::default())
                    .await?;
                let id = create_container(client, project, svc, n, &name, &hash, &image_id).await?;
                ui.event(&res, "Recreated");
                ids.push((id, name, true));
            }
            None => {
                ui.event(&res, "Creating");
                let id = create_container(client, project, svc, n, &name, &hash, &image_id).await?;
                ui.event(&res, "Created");
                ids.push((id, name, true));
            }
        }
    }
    if !start {
        return Ok(());
    }
    // Conditions on dependencies.
    for (dep, cond, _) in &deps {
        wait_condition(client, ui, project, dep, cond, &ids).await?;
    }
    for (id, name, needs_start) in &ids {
        if !*needs_start {
            continue;
        }
        let res = format!("Container {name}");
        ui.event(&res, "Starting");
        client.container_start(id).await.map_err(|e| {
            CmdError::msg(format!(
                "Error response from daemon: failed to start service {} (container {name}): {}",
                svc.name,
                e.daemon_message().unwrap_or(&e.to_string())
            ))
        })?;
        ui.event(&res, "Started");
    }
    Ok(())
}

fn stop_timeout(s: &Service) -> Option<i64> {
    s.stop_grace_period.map(|d| d.nanos() / 1_000_000_000)
}

async fn dep_containers(
    client: &Client,
    project: &str,
    service: &str,
) -> CmdResult<Vec<ContainerSummary>> {
    Ok(project_containers(client, project, true, false)
        .await?
        .into_iter()
        .filter(|c| label(c, SERVICE_LABEL) == service)
        .collect())
}

/// Waits until `dep` satisfies `condition` (`service_started` is satisfied by ordering).
pub(super) async fn wait_condition(
    client: &Client,
    ui: &Ui,
    project: &Project,
    dep: &str,
    condition: &str,
    _ours: &[(String, String, bool)],
) -> CmdResult {
    if condition != "service_healthy" && condition != "service_completed_successfully" {
        return Ok(());
    }
    let containers = dep_containers(client, &project.name, dep).await?;
    for c in containers {
        let name = cname(&c);
        let res = format!("Container {name}");
        ui.event(&res, "Waiting");
        loop {
            let i = client.container_inspect(&c.id, false).await?;
            let state = i.state.clone().unwrap_or_default();
            if condition == "service_healthy" {
                let health = state
                    .health
                    .as_ref()
                    .map(|h| h.status.as_str())
                    .unwrap_or("");
                match health {
                    "healthy" => {
                        ui.event(&res, "Healthy");
                        break;
                    }
                    "unhealthy" => {
                        ui.event(&res, "Error");
                        return Err(CmdError::msg(format!(
                            "dependency failed to start: container {name} is unhealthy"
                        )));
                    }
                    "" => {
                        return Err(CmdError::msg(format!(
                            "container {name} has no healthcheck configured"
                        )))
                    }
                    _ => {}
                }
                if !state.running && !state.restarting {
                    ui.event(&res, "Error");
                    return Err(CmdError::msg(format!(
                        "dependency failed to start: container {name} exited ({})",
                        state.exit_code
                    )));
                }
            } else if !state.running && !state.restarting && state.status != "created" {
                if state.exit_code == 0 {
                    ui.event(&res, "Exited");
                    break;
                }
                ui.event(&res, "Error");
                return Err(CmdError::msg(format!(
                    "service {dep:?} didn't complete successfully: exit {}",
                    state.exit_code
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// `--wait`: every container running (healthy when it has a healthcheck).
async fn wait_ready(
    client: &Client,
    ui: &Ui,
    project: &Project,
    wanted: &BTreeSet<String>,
    timeout: Option<Duration>,
) -> CmdResult {
    let deadline = timeout.map(|t| Instant::now() + t);
    let list = project_containers(client, &project.name, true, false).await?;
    for c in list
        .iter()
        .filter(|c| wanted.contains(label(c, SERVICE_LABEL)))
    {
        let name = cname(c);
        let res = format!("Container {name}");
        ui.event(&res, "Waiting");
        loop {
            let i = client.container_inspect(&c.id, false).await?;
            let st = i.state.unwrap_or_default();
            let health = st.health.as_ref().map(|h| h.status.clone());
            match (st.running, health.as_deref()) {
                (true, None) | (true, Some("healthy")) => {
                    ui.event(&res, "Healthy");
                    break;
                }
                (_, Some("unhealthy")) => {
                    return Err(CmdError::msg(format!("container {name} is unhealthy")))
                }
                (false, _) if st.status == "exited" || st.status == "dead" => {
                    return Err(CmdError::msg(format!(
                        "container {name} exited ({})",
                        st.exit_code
                    )))
                }
                _ => {}
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Err(CmdError::msg(
                    "timeout waiting for the project to be running|healthy",
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// The create request for container `n` of `svc`, as Compose v2 builds it.
pub fn create_body(
    project: &Project,
    svc: &Service,
    n: i64,
    name: &str,
    hash: &str,
    image_id: &str,
    container_ids: &BTreeMap<String, String>,
) -> ContainerCreateBody {
    let mut labels = service_labels(project, svc);
    labels.insert(NUMBER_LABEL.into(), n.to_string());
    labels.insert(HASH_LABEL.into(), hash.to_string());
    let deps: Vec<String> = svc
        .depends_on
        .iter()
        .map(|(s, d)| format!("{s}:{}:{}", d.condition, d.restart))
        .collect();
    labels.insert(DEPENDS_ON_LABEL.into(), deps.join(","));
    if !image_id.is_empty() {
        labels.insert(IMAGE_LABEL.into(), image_id.to_string());
    }
    let env: Vec<String> = svc
        .environment
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    let mut exposed: PortSet = BTreeMap::new();
    let mut bindings: PortMap = BTreeMap::new();
    for p in &svc.ports {
        let key = format!("{}/{}", p.target, p.protocol);
        exposed.insert(key.clone(), EmptyObject {});
        let entry = bindings.entry(key).or_insert_with(|| Some(Vec::new()));
        if let Some(v) = entry.as_mut() {
            v.push(PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: p.published.clone(),
            });
        }
    }
    for e in &svc.expose {
        let key = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        exposed.insert(key, EmptyObject {});
    }
    let healthcheck = svc.healthcheck.as_ref().map(|h| {
        let test = if h.disable {
            Some(vec!["NONE".to_string()])
        } else if h.test.is_empty() {
            None
        } else {
            Some(h.test.clone())
        };
        HealthConfig {
            test,
            interval: h.interval.map(|d| d.nanos()).unwrap_or(0),
            timeout: h.timeout.map(|d| d.nanos()).unwrap_or(0),
            start_period: h.start_period.map(|d| d.nanos()).unwrap_or(0),
            start_interval: h.start_interval.map(|d| d.nanos()).unwrap_or(0),
            retries: h.retries.map(|r| r as i64).unwrap_or(0),
        }
    });
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    for v in &svc.volumes {
        match v.kind.as_str() {
            "bind" => {
                let mut opts = Vec::new();
                if v.read_only {
                    opts.push("ro".to_string());
                }
                if let Some(b) = &v.bind {
                    if !b.selinux.is_empty() {
                        opts.push(b.selinux.clone());
                    }
                    if !b.propagation.is_empty() {
                        opts.push(b.propagation.clone());
                    }
                }
                let mut s = format!("{}:{}", v.source, v.target);
                if !opts.is_empty() {
                    s.push(':');
                    s.push_str(&opts.join(","));
                }
                binds.push(s);
            }
            "volume" => {
                let source = if v.source.is_empty() {
                    String::new()
                } else {
                    project
                        .volumes
                        .get(&v.source)
                        .map(|x| x.name.clone())
                        .unwrap_or_else(|| v.source.clone())
                };
                mounts.push(Mount {
                    kind: "volume".into(),
                    source,
                    target: v.target.clone(),
                    read_only: v.read_only,
                    volume_options: v
                        .volume
                        .as_ref()
                        .filter(|x| x.nocopy)
                        .map(|_| VolumeOptions {
                            no_copy: true,
                            ..Default::default()
                        }),
                    ..Default::default()
                });
            }
            "tmpfs" => {
                mounts.push(Mount {
                    kind: "tmpfs".into(),
                    target: v.target.clone(),
                    read_only: v.read_only,
                    tmpfs_options: v.tmpfs.as_ref().map(|t| TmpfsOptions {
                        size_bytes: t.size.0,
                        mode: u64::from(t.mode),
                    }),
                    ..Default::default()
                });
            }
            _ => {}
        }
    }
    for (refs, defs, dir) in [
        (&svc.secrets, &project.secrets, "/run/secrets/"),
        (&svc.configs, &project.configs, "/"),
    ] {
        for r in refs {
            if let Some(d) = defs.get(&r.source) {
                if !d.file.is_empty() {
                    let target = if r.target.is_empty() {
                        format!("{dir}{}", r.source)
                    } else if r.target.starts_with('/') {
                        r.target.clone()
                    } else {
                        format!("{dir}{}", r.target)
                    };
                    binds.push(format!("{}:{target}:ro", d.file));
                }
            }
        }
    }
    let network_mode = if !svc.network_mode.is_empty() {
        match svc.network_mode.strip_prefix("service:") {
            Some(other) => container_ids
                .get(other)
                .map(|id| format!("container:{id}"))
                .unwrap_or_else(|| svc.network_mode.clone()),
            None => svc.network_mode.clone(),
        }
    } else {
        svc.networks_by_priority()
            .first()
            .and_then(|k| project.networks.get(k))
            .map(|n| n.name.clone())
            .unwrap_or_else(|| "default".into())
    };
    let networking_config = if svc.network_mode.is_empty() {
        svc.networks_by_priority().first().and_then(|k| {
            let net = project.networks.get(k)?;
            Some(NetworkingConfig {
                endpoints_config: Some(BTreeMap::from([(
                    net.name.clone(),
                    endpoint(svc, name, k),
                )])),
            })
        })
    } else {
        None
    };
    let restart = {
        let r = svc.restart.as_str();
        let (name, count) = match r.split_once(':') {
            Some((n, c)) => (n.to_string(), c.parse().unwrap_or(0)),
            None => (r.to_string(), 0),
        };
        RestartPolicy {
            name: if name.is_empty() { "no".into() } else { name },
            maximum_retry_count: count,
        }
    };
    let limits = svc.deploy.as_ref().and_then(|d| d.resources.limits.clone());
    let memory = limits
        .as_ref()
        .map(|l| l.memory.0)
        .filter(|m| *m != 0)
        .unwrap_or(svc.mem_limit.0);
    let cpus = limits
        .as_ref()
        .map(|l| l.cpus)
        .filter(|c| *c != 0.0)
        .unwrap_or(svc.cpus);
    let pids = limits
        .as_ref()
        .map(|l| l.pids)
        .filter(|p| *p != 0)
        .unwrap_or(svc.pids_limit);
    let opt_vec = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let log_config = match &svc.logging {
        Some(l) => LogConfig {
            kind: l.driver.clone(),
            config: (!l.options.is_empty()).then(|| l.options.clone()),
        },
        None => LogConfig::default(),
    };
    let host_config = HostConfig {
        binds: (!binds.is_empty()).then_some(binds),
        mounts: (!mounts.is_empty()).then_some(mounts),
        network_mode,
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        restart_policy: restart,
        log_config,
        volumes_from: opt_vec(&svc.volumes_from).map(|v| {
            v.into_iter()
                .map(|f| match f.strip_prefix("container:") {
                    Some(c) => c.to_string(),
                    None => {
                        let (svcname, mode) = f.split_once(':').unwrap_or((&f, ""));
                        let id = container_ids
                            .get(svcname)
                            .cloned()
                            .unwrap_or_else(|| svcname.to_string());
                        if mode.is_empty() {
                            id
                        } else {
                            format!("{id}:{mode}")
                        }
                    }
                })
                .collect()
        }),
        cap_add: opt_vec(&svc.cap_add),
        cap_drop: opt_vec(&svc.cap_drop),
        dns: opt_vec(&svc.dns),
        dns_options: opt_vec(&svc.dns_opt),
        dns_search: opt_vec(&svc.dns_search),
        extra_hosts: (!svc.extra_hosts.is_empty()).then(|| svc.extra_hosts.as_list(":")),
        group_add: opt_vec(&svc.group_add),
        ipc_mode: svc.ipc.clone(),
        pid_mode: svc.pid.clone(),
        uts_mode: svc.uts.clone(),
        userns_mode: svc.userns_mode.clone(),
        privileged: svc.privileged,
        readonly_rootfs: svc.read_only,
        security_opt: opt_vec(&svc.security_opt),
        shm_size: svc.shm_size.0,
        sysctls: (!svc.sysctls.is_empty()).then(|| svc.sysctls.clone()),
        tmpfs: (!svc.tmpfs.is_empty()).then(|| {
            svc.tmpfs
                .iter()
                .map(|t| match t.split_once(':') {
                    Some((p, o)) => (p.to_string(), o.to_string()),
                    None => (t.clone(), String::new()),
                })
                .collect()
        }),
        init: svc.init,
        memory,
        memory_reservation: svc.mem_reservation.0,
        nano_cpus: (cpus as f64 * 1e9) as i64,
        pids_limit: (pids != 0).then_some(pids),
        cpu_shares: svc.cpu_shares,
        cpu_period: svc.cpu_period,
        cpu_quota: svc.cpu_quota,
        cpuset_cpus: svc.cpuset.clone(),
        oom_score_adj: svc.oom_score_adj,
        ulimits: (!svc.ulimits.is_empty()).then(|| {
            svc.ulimits
                .iter()
                .map(|(n, u)| Ulimit {
                    name: n.clone(),
                    soft: if u.single != 0 { u.single } else { u.soft },
                    hard: if u.single != 0 { u.single } else { u.hard },
                })
                .collect()
        }),
        cgroup_parent: svc.cgroup_parent.clone(),
        runtime: svc.runtime.clone(),
        ..Default::default()
    };
    let config = ContainerConfig {
        hostname: svc.hostname.clone(),
        domainname: svc.domainname.clone(),
        user: svc.user.clone(),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        tty: svc.tty,
        open_stdin: svc.stdin_open,
        attach_stdout: true,
        attach_stderr: true,
        env: Some(env),
        cmd: svc.command.clone(),
        entrypoint: svc.entrypoint.clone(),
        healthcheck,
        image: image_name(&project.name, svc),
        working_dir: svc.working_dir.clone(),
        labels: Some(labels),
        stop_signal: svc.stop_signal.clone(),
        stop_timeout: stop_timeout(svc),
        mac_address: svc.mac_address.clone(),
        ..Default::default()
    };
    ContainerCreateBody {
        config,
        host_config: Some(host_config),
        networking_config,
    }
}

fn endpoint(svc: &Service, name: &str, key: &str) -> EndpointSettings {
    let cfg = svc.networks.get(key).cloned().flatten();
    let mut aliases = vec![name.to_string(), svc.name.clone()];
    if let Some(c) = &cfg {
        aliases.extend(c.aliases.iter().cloned());
    }
    EndpointSettings {
        aliases: Some(aliases),
        ipam_config: cfg
            .as_ref()
            .filter(|c| !c.ipv4_address.is_empty() || !c.ipv6_address.is_empty())
            .map(|c| EndpointIpamConfig {
                ipv4_address: c.ipv4_address.clone(),
                ipv6_address: c.ipv6_address.clone(),
                link_local_ips: None,
            }),
        ..Default::default()
    }
}

async fn create_container(
    client: &Client,
    project: &Project,
    svc: &Service,
    n: i64,
    name: &str,
    hash: &str,
    image_id: &str,
) -> CmdResult<String> {
    let ids = service_refs(client, project, svc).await?;
    let body = create_body(project, svc, n, name, hash, image_id, &ids);
    create_with(client, project, svc, name, &body, true).await
}

/// Containers of the services `svc` shares namespaces or volumes with (its dependencies).
pub(super) async fn service_refs(
    client: &Client,
    project: &Project,
    svc: &Service,
) -> CmdResult<BTreeMap<String, String>> {
    let mut ids = BTreeMap::new();
    for dep in svc.depends_on.keys() {
        if let Some(c) = dep_containers(client, &project.name, dep).await?.first() {
            ids.insert(dep.clone(), c.id.clone());
        }
    }
    Ok(ids)
}

/// Creates the container from `body` and connects its further networks before the start
/// (with the service's aliases when `aliases`, else only the container name).
pub(super) async fn create_with(
    client: &Client,
    project: &Project,
    svc: &Service,
    name: &str,
    body: &ContainerCreateBody,
    aliases: bool,
) -> CmdResult<String> {
    let r = client
        .container_create(Some(name), None, body)
        .await
        .map_err(|e| CmdError::msg(e.to_string()))?;
    for key in svc.networks_by_priority().iter().skip(1) {
        if let Some(net) = project.networks.get(key) {
            let mut ep = endpoint(svc, name, key);
            if !aliases {
                ep.aliases = Some(vec![name.to_string()]);
            }
            client
                .network_connect(
                    &net.name,
                    &NetworkConnectRequest {
                        container: r.id.clone(),
                        endpoint_config: Some(ep),
                    },
                )
                .await?;
        }
    }
    Ok(r.id)
}
