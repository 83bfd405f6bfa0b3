//! `volume create|ls|inspect|rm|prune`, as docker-cli's `cli/command/volume` does them.

use std::collections::BTreeMap;

use berth_api::models::{Volume, VolumeCreateBody};
use berth_api::Filters;

use super::container::parse_filters;
use super::flags::{Flag, Matches, NArgs, Spec};
use super::format::{self, template::string_map, Listing, Row};
use super::units::human_size;
use super::{CliError, CliResult, Ctx, Verb};

const VOLUME_TABLE: &str = "table {{.Driver}}\t{{.Name}}";
pub(crate) const VOLUME_HEADERS: &[(&str, &str)] = &[
    ("Name", "VOLUME NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
    ("Group", "GROUP"),
    ("Availability", "AVAILABILITY"),
    ("Status", "STATUS"),
];

pub fn spec(verb: Verb, path: &str) -> Spec {
    match verb {
        Verb::VolumeCreate => super::spec(
            path,
            "[OPTIONS] [VOLUME]",
            NArgs::Range(0, 1),
            vec![
                Flag::value("driver", "string", "Specify volume driver name")
                    .short('d')
                    .default("\"local\""),
                Flag::list("label", "list", "Set metadata for a volume"),
                Flag::value("name", "string", "Specify volume name").hidden(),
                Flag::list("opt", "map", "Set driver specific options").short('o'),
            ],
        ),
        Verb::VolumeLs => super::spec(
            path,
            "[OPTIONS]",
            NArgs::Exact(0),
            vec![
                Flag::list(
                    "filter",
                    "filter",
                    "Provide filter values (e.g. \"dangling=true\")",
                )
                .short('f'),
                super::container::format_flag(),
                Flag::bool("quiet", "Only display volume names").short('q'),
            ],
        ),
        Verb::VolumeRm => super::spec(
            path,
            "[OPTIONS] VOLUME [VOLUME...]",
            NArgs::Min(1),
            vec![Flag::bool("force", "Force the removal of one or more volumes").short('f')],
        ),
        Verb::VolumePrune => super::spec(
            path,
            "[OPTIONS]",
            NArgs::Exact(0),
            vec![
                Flag::bool("all", "Remove all unused volumes, not just anonymous ones").short('a'),
                Flag::list(
                    "filter",
                    "filter",
                    "Provide filter values (e.g. \"label=<label>\")",
                ),
                Flag::bool("force", "Do not prompt for confirmation").short('f'),
            ],
        ),
        _ => super::inspect::spec(verb, path),
    }
}

pub async fn run(ctx: &Ctx, verb: Verb, m: Matches) -> CliResult<()> {
    match verb {
        Verb::VolumeCreate => create(ctx, m).await,
        Verb::VolumeLs => list(ctx, m).await,
        Verb::VolumeRm => remove(ctx, m).await,
        Verb::VolumePrune => prune(ctx, m).await,
        _ => super::inspect::run(ctx, verb, m).await,
    }
}

/// `key=value` list items as a map (docker-cli's `ConvertKVStringsToMap` / `MapOpts`): a bare
/// key gets an empty value.
fn kv_map(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (i.clone(), String::new()),
        })
        .collect()
}

async fn create(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let mut name = m.string("name").unwrap_or_default();
    if let Some(arg) = m.args.first() {
        if !name.is_empty() {
            return Err(CliError::msg(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg",
            ));
        }
        name = arg.clone();
    }
    let body = VolumeCreateBody {
        name,
        driver: m.string("driver").unwrap_or_else(|| "local".to_string()),
        driver_opts: Some(kv_map(&m.list("opt"))),
        labels: Some(kv_map(&m.list("label"))),
    };
    let v = ctx.client()?.volume_create(&body).await?;
    super::println_out(&v.name)
}

/// The fields of docker-cli's `volumeContext`.
pub(crate) fn volume_row(v: &Volume) -> Row {
    let labels = v.labels.clone().unwrap_or_default();
    let joined: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let (links, size) = match &v.usage_data {
        Some(u) => (u.ref_count.to_string(), human_size(u.size as f64)),
        None => ("N/A".to_string(), "N/A".to_string()),
    };
    Row {
        ctx: string_map([
            ("Name", v.name.clone()),
            ("Driver", v.driver.clone()),
            ("Scope", v.scope.clone()),
            ("Mountpoint", v.mountpoint.clone()),
            ("Labels", joined.join(",")),
            ("Links", links),
            ("Size", size),
            ("Group", "N/A".to_string()),
            ("Availability", "N/A".to_string()),
            ("Status", "N/A".to_string()),
        ]),
        labels,
    }
}

/// `sortorder.NaturalLess`: digit runs compare as numbers.
pub(crate) fn natural_less(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (na, nb) = (
                std::str::from_utf8(&a[si..i])
                    .unwrap_or("")
                    .trim_start_matches('0'),
                std::str::from_utf8(&b[sj..j])
                    .unwrap_or("")
                    .trim_start_matches('0'),
            );
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
            let o = (i - si).cmp(&(j - sj));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

async fn list(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let resp = ctx
        .client()?
        .volume_list(&parse_filters(&m.list("filter")))
        .await?;
    let mut vols = resp.volumes.unwrap_or_default();
    vols.sort_by(|a, b| natural_less(&a.name, &b.name));
    let quiet = m.flag("quiet");
    let format = m.string("format").unwrap_or_default();
    let format = match (format.as_str(), quiet) {
        ("" | "table", true) => "{{.Name}}".to_string(),
        ("" | "table", false) => VOLUME_TABLE.to_string(),
        _ => format,
    };
    let rows: Vec<Row> = vols.iter().map(volume_row).collect();
    let out = format::render(
        &format,
        &Listing {
            default_table: VOLUME_TABLE,
            headers: VOLUME_HEADERS,
        },
        &rows,
    )?;
    super::print_out(&out)
}

async fn remove(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let client = ctx.client()?;
    let force = m.flag("force");
    let mut errs = Vec::new();
    for name in &m.args {
        match client.volume_remove(name, force).await {
            Ok(()) => super::println_out(name)?,
            Err(e) => errs.push(e.to_string()),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(errs.join("\n")))
    }
}

const UNUSED_WARNING: &str =
    "WARNING! This will remove anonymous local volumes not used by at least one container.";
const ALL_WARNING: &str =
    "WARNING! This will remove all local volumes not used by at least one container.";

async fn prune(ctx: &Ctx, m: Matches) -> CliResult<()> {
    let mut filters = parse_filters(&m.list("filter"));
    let mut warning = UNUSED_WARNING;
    if m.flag("all") {
        if filters.contains("all") {
            return Err(CliError::msg(
                "conflicting options: cannot specify both --all and --filter all=1",
            ));
        }
        filters.add("all", "true");
        warning = ALL_WARNING;
    }
    if !m.flag("force") && !super::ops::confirm(warning)? {
        return Ok(());
    }
    let (reclaimed, output) = run_prune(ctx, filters).await?;
    super::ops::print_prune(reclaimed, &output)
}

/// docker-cli's volume pruner: the space reclaimed and its `Deleted Volumes:` block.
pub(crate) async fn run_prune(ctx: &Ctx, filters: Filters) -> CliResult<(u64, String)> {
    let report = ctx.client()?.volume_prune(&filters).await?;
    let mut out = String::new();
    let mut reclaimed = 0;
    if let Some(names) = report.volumes_deleted.filter(|v| !v.is_empty()) {
        out.push_str("Deleted Volumes:\n");
        for n in names {
            out.push_str(&n);
            out.push('\n');
        }
        reclaimed = report.space_reclaimed;
    }
    Ok((reclaimed, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn natural_order() {
        assert_eq!(natural_less("vol2", "vol10"), Ordering::Less);
        assert_eq!(natural_less("a", "b"), Ordering::Less);
        assert_eq!(natural_less("v10", "v9"), Ordering::Greater);
        assert_eq!(natural_less("x", "x"), Ordering::Equal);
        assert_eq!(natural_less("x", "x1"), Ordering::Less);
    }

    #[test]
    fn kv_items() {
        let m = kv_map(&["a=b=c".into(), "bare".into()]);
        assert_eq!(m.get("a").map(String::as_str), Some("b=c"));
        assert_eq!(m.get("bare").map(String::as_str), Some(""));
    }

    #[test]
    fn list_table_like_docker() {
        let v: Volume = serde_json::from_str(
            r#"{"CreatedAt":"2026-11-27T17:13:41Z","Driver":"local","Labels":{"b":"2","a":"1"},"Mountpoint":"/var/lib/docker/volumes/tr-vol/_data","Name":"tr-vol","Options":null,"Scope":"local"}"#,
        )
        .unwrap();
        let out = format::render(
            "",
            &Listing {
                default_table: VOLUME_TABLE,
                headers: VOLUME_HEADERS,
            },
            &[volume_row(&v)],
        )
        .unwrap();
        assert_eq!(out, "DRIVER    VOLUME NAME\nlocal     tr-vol\n");
        let out = format::render(
            "{{.Name}} {{.Labels}} {{.Label \"b\"}} {{.Links}}",
            &Listing {
                default_table: VOLUME_TABLE,
                headers: VOLUME_HEADERS,
            },
            &[volume_row(&v)],
        )
        .unwrap();
        assert_eq!(out, "tr-vol a=1,b=2 2 N/A\n");
    }
}
