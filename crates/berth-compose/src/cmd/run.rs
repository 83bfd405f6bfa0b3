//! `run`: a one-off container of a service, as Docker Compose v2 creates it (named
//! `<project>-<service>-run-<slug>`, labelled `oneoff=True` with a slug and no number, ports
//! only with `--service-ports`/`-p`, only the container name as network alias unless
//! `--use-aliases`). The dependencies are brought up first (unless `--no-deps`); starting and
//! attaching is the caller's (the CLI's `start -a`, which forwards stdin, TTY and signals).

use std::collections::BTreeSet;

use super::up;
use super::{CmdError, CmdResult, Flags, Ui, NUMBER_LABEL, ONEOFF_LABEL};
use crate::model::{Port, Project, ServiceVolume};
use crate::yaml::{Node, Pos};

/// Compose's label with the one-off container's full slug.
pub const SLUG_LABEL: &str = "com.docker.compose.slug";

/// The created one-off container.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub id: String,
    pub name: String,
    pub detach: bool,
    pub interactive: bool,
}

/// Flags for bringing the dependencies up detached.
struct DepsUp<'a>(&'a dyn Flags);

impl Flags for DepsUp<'_> {
    fn value(&self, _: &str) -> Option<String> {
        None
    }
    fn list(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
    fn flag(&self, name: &str) -> bool {
        match name {
            "detach" => true,
            "remove-orphans" | "build" => self.0.flag(name),
            _ => false,
        }
    }
}

fn random_slug() -> CmdResult<String> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| CmdError::msg(format!("cannot read /dev/urandom: {e}")))?;
    Ok(hex::encode(b))
}

/// Creates the one-off container of `run SERVICE [COMMAND…]`. `tty`: whether a TTY is
/// allocated, `interactive`: whether stdin is kept open (the CLI decides from `-t`/`-T`/`-i`
/// and the terminal, as Compose does).
pub async fn prepare(
    client: &berth_api::client::Client,
    ui: &Ui,
    project: &mut Project,
    args: &[String],
    flags: &dyn Flags,
    tty: bool,
    interactive: bool,
) -> CmdResult<Prepared> {
    let Some(service) = args.first().cloned() else {
        return Err(CmdError::msg("\"run\" requires at least 1 argument"));
    };
    let publish = flags.list("publish");
    if !publish.is_empty() && flags.flag("service-ports") {
        return Err(CmdError::msg(
            "--service-ports and --publish are incompatible",
        ));
    }
    crate::loader::enable_services(project, std::slice::from_ref(&service))
        .map_err(|e| CmdError::msg(e.to_string()))?;
    let mut svc = project
        .services
        .get(&service)
        .cloned()
        .ok_or_else(|| CmdError::msg(format!("no such service: {service}")))?;
    let no_deps = flags.flag("no-deps");
    let deps: Vec<String> = svc.dependencies().map(str::to_string).collect();
    if !no_deps && !deps.is_empty() {
        up::up(client, ui, project, &deps, &DepsUp(flags), true).await?;
    }
    let wanted: BTreeSet<String> = BTreeSet::from([service.clone()]);
    up::ensure_networks(client, ui, project, &wanted).await?;
    up::ensure_volumes(client, ui, project, &wanted).await?;
    up::ensure_images(client, ui, project, &wanted, flags).await?;
    if !no_deps {
        for (dep, d) in &svc.depends_on {
            up::wait_condition(client, ui, project, dep, &d.condition, &[]).await?;
        }
    }

    // The run options over the service, as Compose's applyRunOptions.
    svc.tty = tty;
    svc.stdin_open = interactive;
    let command: Vec<String> = args[1..].to_vec();
    if !command.is_empty() {
        svc.command = Some(command.clone());
    }
    if let Some(u) = flags.value("user") {
        svc.user = u;
    }
    if let Some(w) = flags.value("workdir") {
        svc.working_dir = w;
    }
    if let Some(e) = flags.value("entrypoint") {
        let words =
            shlex::split(&e).ok_or_else(|| CmdError::msg(format!("invalid --entrypoint {e:?}")))?;
        svc.entrypoint = Some(words);
        if command.is_empty() {
            svc.command = Some(Vec::new());
        }
    }
    for e in flags.list("env") {
        match e.split_once('=') {
            Some((k, v)) => {
                svc.environment.insert(k.to_string(), Some(v.to_string()));
            }
            None => {
                // `-e KEY`: the value from the environment; dropped when it has none.
                if let Some(v) = project.environment.get(&e) {
                    svc.environment.insert(e.clone(), Some(v.clone()));
                }
            }
        }
    }
    for l in flags.list("label") {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| CmdError::msg("label must be set as KEY=VALUE"))?;
        svc.labels.insert(k.to_string(), v.to_string());
    }
    if !flags.flag("service-ports") {
        svc.ports = Vec::new();
        for p in &publish {
            for s in crate::canon::parse_port(p).map_err(CmdError::msg)? {
                svc.ports.push(Port {
                    host_ip: s.host_ip,
                    target: s.target,
                    published: s.published,
                    protocol: s.protocol,
                    ..Default::default()
                });
            }
        }
    }
    for v in flags.list("volume") {
        let fields = crate::canon::parse_volume(&v).map_err(CmdError::msg)?;
        let node = Node::map(fields, Pos::default());
        let mut vol: ServiceVolume = crate::de::from_node(&node, "volume")
            .map_err(|e| CmdError::msg(format!("invalid volume {v:?}: {e}")))?;
        if vol.kind == "bind" && !vol.source.starts_with('/') {
            vol.source = project
                .working_dir
                .join(&vol.source)
                .to_string_lossy()
                .into_owned();
        }
        svc.volumes.push(vol);
    }
    svc.scale = Some(1);
    svc.restart = String::new();
    if let Some(d) = svc.deploy.as_mut() {
        d.restart_policy = None;
    }
    let slug = random_slug()?;
    let name = match flags.value("name") {
        Some(n) => n,
        None if !svc.container_name.is_empty() => svc.container_name.clone(),
        None => format!("{}-{}-run-{}", project.name, svc.name, &slug[..12]),
    };
    svc.container_name = name.clone();

    let hash = crate::service_hash(&svc);
    let image_id = match client
        .image_inspect(&super::image_name(&project.name, &svc))
        .await
    {
        Ok(i) => i.id,
        Err(_) => String::new(),
    };
    let refs = up::service_refs(client, project, &svc).await?;
    let mut body = up::create_body(project, &svc, 1, &name, &hash, &image_id, &refs);
    if let Some(l) = body.config.labels.as_mut() {
        l.remove(NUMBER_LABEL);
        l.insert(ONEOFF_LABEL.into(), "True".into());
        l.insert(SLUG_LABEL.into(), slug);
    }
    body.config.attach_stdin = interactive;
    body.config.stdin_once = interactive;
    if let Some(h) = body.host_config.as_mut() {
        h.auto_remove = flags.flag("rm");
    }
    if !flags.flag("use-aliases") {
        if let Some(eps) = body
            .networking_config
            .as_mut()
            .and_then(|n| n.endpoints_config.as_mut())
        {
            for ep in eps.values_mut() {
                ep.aliases = Some(vec![name.clone()]);
            }
        }
    }
    let id = up::create_with(
        client,
        project,
        &svc,
        &name,
        &body,
        flags.flag("use-aliases"),
    )
    .await?;
    Ok(Prepared {
        id,
        name,
        detach: flags.flag("detach"),
        interactive,
    })
}
