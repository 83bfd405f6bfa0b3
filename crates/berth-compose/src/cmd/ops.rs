//! Project-wide commands that need no convergence: `ls`.

use std::collections::BTreeMap;

use berth_api::backend::ContainerListOptions;
use berth_api::client::Client;
use berth_api::Filters;

use super::{label, CmdError, CmdResult, Ui, CONFIG_FILES_LABEL, PROJECT_LABEL};

/// `compose ls` options.
#[derive(Debug, Clone, Default)]
pub struct LsOptions {
    pub all: bool,
    pub quiet: bool,
    pub format: String,
    pub filters: Vec<String>,
}

/// `compose ls`: projects found from container labels, with their status counts.
pub async fn ls(client: &Client, ui: &Ui, o: &LsOptions) -> CmdResult {
    let mut f = Filters::new();
    f.add("label", PROJECT_LABEL);
    let list = client
        .container_list(&ContainerListOptions {
            all: o.all,
            limit: None,
            size: false,
            filters: f,
        })
        .await?;
    // project → (state → count, config files)
    let mut projects: BTreeMap<String, (BTreeMap<String, usize>, String)> = BTreeMap::new();
    for c in &list {
        let p = projects
            .entry(label(c, PROJECT_LABEL).to_string())
            .or_default();
        *p.0.entry(c.state.clone()).or_default() += 1;
        if p.1.is_empty() {
            p.1 = label(c, CONFIG_FILES_LABEL).to_string();
        }
    }
    let mut name_filter: Option<String> = None;
    for flt in &o.filters {
        match flt.split_once('=') {
            Some(("name", v)) => name_filter = Some(v.to_string()),
            _ => {
                return Err(CmdError::msg(format!(
                    "invalid filter {flt:?}: only name is supported"
                )))
            }
        }
    }
    let rows: Vec<(String, String, String)> = projects
        .into_iter()
        .filter(|(n, _)| name_filter.as_ref().is_none_or(|f| n.contains(f.as_str())))
        .map(|(n, (states, files))| {
            let status = states
                .iter()
                .map(|(s, c)| format!("{s}({c})"))
                .collect::<Vec<_>>()
                .join(", ");
            (n, status, files)
        })
        .collect();
    let mut out = String::new();
    if o.quiet {
        for (n, _, _) in &rows {
            out.push_str(n);
            out.push('\n');
        }
    } else if o.format == "json" {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(n, s, f)| serde_json::json!({"Name": n, "Status": s, "ConfigFiles": f}))
            .collect();
        out = serde_json::to_string(&v).unwrap_or_default();
        out.push('\n');
    } else {
        let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(4) + 3;
        let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(6) + 3;
        out.push_str(&format!("{:<w0$}{:<w1$}CONFIG FILES\n", "NAME", "STATUS"));
        for (n, s, f) in &rows {
            out.push_str(&format!("{n:<w0$}{s:<w1$}{f}\n"));
        }
    }
    ui.out(&out)
}
