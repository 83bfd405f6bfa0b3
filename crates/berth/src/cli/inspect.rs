//! `inspect`, `container inspect`, `image inspect`: indented JSON or `-f` templates.

use berth_api::client::{Client, ClientError};

use super::flags::{Flag, Matches, NArgs, Spec};
use super::format;
use super::{CliError, CliResult, Ctx, Verb};

const FORMAT_HELP: &str = "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

pub fn spec(verb: Verb, path: &str) -> Spec {
    let mut flags = vec![Flag::value("format", "string", FORMAT_HELP).short('f')];
    let usage = match verb {
        Verb::Inspect => {
            flags.push(
                Flag::bool("size", "Display total file sizes if the type is container").short('s'),
            );
            flags.push(Flag::value(
                "type",
                "string",
                "Only inspect objects of the given type",
            ));
            "[OPTIONS] NAME|ID [NAME|ID...]"
        }
        Verb::ContainerInspect => {
            flags.push(Flag::bool("size", "Display total file sizes").short('s'));
            "[OPTIONS] CONTAINER [CONTAINER...]"
        }
        Verb::VolumeInspect => "[OPTIONS] VOLUME [VOLUME...]",
        _ => "[OPTIONS] IMAGE [IMAGE...]",
    };
    super::spec(path, usage, NArgs::Min(1), flags)
}

/// An inspected object, as JSON in the daemon model's field order (indented and compact).
struct Object {
    pretty: String,
    compact: String,
}

fn object<T: serde::Serialize>(v: &T) -> CliResult<Object> {
    let compact = serde_json::to_string(v).map_err(|e| CliError::msg(e.to_string()))?;
    Ok(Object {
        pretty: format::pretty(v),
        compact,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Container,
    Image,
    Network,
    Volume,
}

async fn fetch(
    client: &Client,
    kind: Kind,
    name: &str,
    size: bool,
) -> Result<CliResult<Object>, ClientError> {
    Ok(match kind {
        Kind::Container => object(&client.container_inspect(name, size).await?),
        Kind::Image => object(&client.image_inspect(name).await?),
        Kind::Network => object(&client.network_inspect(name).await?),
        Kind::Volume => object(&client.volume_inspect(name).await?),
    })
}

/// Finds `name` among the kinds (Docker's order: container, image, network, volume).
async fn find(client: &Client, kinds: &[Kind], name: &str, size: bool) -> Result<Object, String> {
    let constrained = kinds.len() == 1;
    for (i, kind) in kinds.iter().enumerate() {
        match fetch(client, *kind, name, size && *kind == Kind::Container).await {
            Ok(obj) => {
                if size && *kind != Kind::Container && !constrained {
                    super::eprintln_err(&format!(
                        "WARNING: --size ignored for {}",
                        format!("{kind:?}").to_lowercase()
                    ));
                }
                return obj.map_err(|e| e.message);
            }
            Err(e) if !constrained && e.is_not_found() && i + 1 < kinds.len() => continue,
            Err(e) if !constrained && e.is_not_found() => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("Error: No such object: {name}"))
}

pub async fn run(ctx: &Ctx, verb: Verb, m: Matches) -> CliResult<()> {
    let kinds: Vec<Kind> = match verb {
        Verb::ContainerInspect => vec![Kind::Container],
        Verb::ImageInspect => vec![Kind::Image],
        Verb::NetworkInspect => vec![Kind::Network],
        Verb::VolumeInspect => vec![Kind::Volume],
        _ => match m.value("type").unwrap_or("") {
            "" => vec![Kind::Container, Kind::Image, Kind::Network, Kind::Volume],
            "container" => vec![Kind::Container],
            "image" => vec![Kind::Image],
            "network" => vec![Kind::Network],
            "volume" => vec![Kind::Volume],
            t @ ("config" | "node" | "plugin" | "secret" | "service" | "task") => {
                return Err(CliError::msg(format!(
                    "berth: inspecting objects of type {t:?} is not implemented (berth has no swarm or plugins)"
                )))
            }
            t => {
                return Err(CliError::msg(format!(
                    "{} is not a valid value for --type",
                    super::flags::go_quote(t)
                )))
            }
        },
    };
    let fmt = m.string("format").unwrap_or_default();
    let tmpl = if fmt.is_empty() || fmt == "json" {
        None
    } else {
        Some(format::document_template(&fmt).map_err(|e| CliError::new(64, e.message))?)
    };
    let client = ctx.client()?;
    let size = m.flag("size");
    let mut found = Vec::new();
    let mut errs = Vec::new();
    for name in &m.args {
        match find(&client, &kinds, name, size).await {
            Ok(o) => found.push(o),
            Err(e) => errs.push(e),
        }
    }
    let out = match &tmpl {
        Some(t) => {
            let mut s = String::new();
            for o in &found {
                match format::execute_document(t, &o.compact) {
                    Ok(r) => {
                        s.push_str(&r);
                        s.push('\n');
                    }
                    Err(e) => errs.push(format!(
                        "template parsing error: {}",
                        e.message.trim_start_matches("template: ")
                    )),
                }
            }
            s
        }
        None if fmt == "json" => {
            let items: Vec<&str> = found.iter().map(|o| o.compact.as_str()).collect();
            format!("[{}]\n", items.join(","))
        }
        None => {
            let items: Vec<String> = found.iter().map(|o| o.pretty.clone()).collect();
            format!("{}\n", format::pretty_array(&items))
        }
    };
    super::print_out(&out)?;
    if errs.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(errs.join("\n")))
    }
}
