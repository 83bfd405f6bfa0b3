//! Docker's `ps --filter` semantics for `GET /containers/json`.

use berth_api::{ApiError, Filters};
use chrono::{DateTime, Utc};

use crate::container::ContainerRecord;
use crate::inspect::state_string;
use crate::Engine;

const ACCEPTED: &[&str] = &[
    "ancestor",
    "before",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
    "expose",
];
const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

pub(crate) struct ContainerFilter {
    f: Filters,
    names: Vec<regex::Regex>,
    before: Option<DateTime<Utc>>,
    since: Option<DateTime<Utc>>,
    ancestors: Vec<String>,
    exited: Vec<i64>,
}

impl ContainerFilter {
    pub fn new(f: &Filters, engine: &Engine) -> Result<ContainerFilter, ApiError> {
        f.validate(ACCEPTED)?;
        for s in f.get("status") {
            if !STATUSES.contains(&s) {
                return Err(ApiError::bad_request(format!(
                    "Invalid filter 'status={s}'"
                )));
            }
        }
        for h in f.get("health") {
            if !["starting", "healthy", "unhealthy", "none"].contains(&h) {
                return Err(ApiError::bad_request(format!(
                    "Unrecognised filter value for health: {h}"
                )));
            }
        }
        let names = f
            .get("name")
            .iter()
            .map(|n| {
                regex::Regex::new(n)
                    .map_err(|e| ApiError::bad_request(format!("Invalid filter 'name={n}': {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let point = |key: &str| -> Result<Option<DateTime<Utc>>, ApiError> {
            match f.get(key).first() {
                None => Ok(None),
                Some(v) => {
                    let c = engine.lookup(v)?;
                    Ok(Some(c.with(|r| r.created)))
                }
            }
        };
        let exited = f
            .get("exited")
            .iter()
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::bad_request(format!("Invalid filter 'exited={v}'")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut ancestors = Vec::new();
        for a in f.get("ancestor") {
            // An image name or ID: resolve it to image IDs (unknown names match nothing).
            if let Some(id) = engine.image_id_for_filter(a) {
                ancestors.push(id);
            } else {
                ancestors.push(format!("unresolved:{a}"));
            }
        }
        Ok(ContainerFilter {
            f: f.clone(),
            names,
            before: point("before")?,
            since: point("since")?,
            ancestors,
            exited,
        })
    }

    /// `status` filters name non-running states, so they widen a list without `-a`.
    pub fn wants_status(&self) -> bool {
        !self.f.get("status").is_empty()
    }

    pub fn matches(&self, r: &ContainerRecord, _all: &[ContainerRecord]) -> bool {
        let f = &self.f;
        let ids = f.get("id");
        if !ids.is_empty() && !ids.iter().any(|i| r.id.starts_with(i)) {
            return false;
        }
        if !self.names.is_empty() {
            let n = format!("/{}", r.name);
            if !self.names.iter().any(|re| re.is_match(&n)) {
                return false;
            }
        }
        let labels = r.config.labels.clone().unwrap_or_default();
        if f.contains("label") && !f.match_kv_list("label", &labels) {
            return false;
        }
        let st = f.get("status");
        if !st.is_empty() && !st.contains(&state_string(r)) {
            return false;
        }
        if !self.exited.is_empty()
            && (state_string(r) != "exited" || !self.exited.contains(&r.state.exit_code))
        {
            return false;
        }
        if let Some(b) = self.before {
            if r.created >= b {
                return false;
            }
        }
        if let Some(s) = self.since {
            if r.created <= s {
                return false;
            }
        }
        if !self.ancestors.is_empty() && !self.ancestors.contains(&r.image_id) {
            return false;
        }
        let nets = f.get("network");
        if !nets.is_empty() && !nets.contains(&r.network_mode.as_str()) {
            return false;
        }
        let health = f.get("health");
        if !health.is_empty() {
            let h = r
                .state
                .health
                .as_ref()
                .map(|h| h.status.as_str())
                .unwrap_or("none");
            if !health.contains(&h) {
                return false;
            }
        }
        if let Some(v) = f.get("is-task").first() {
            if *v == "true" || *v == "1" {
                return false;
            }
        }
        let vols = f.get("volume");
        if !vols.is_empty()
            && !r.mounts.iter().any(|m| {
                vols.contains(&m.source.as_str())
                    || vols.contains(&m.destination.as_str())
                    || vols.contains(&m.name.as_str())
            })
        {
            return false;
        }
        for key in ["publish", "expose"] {
            let want = f.get(key);
            if want.is_empty() {
                continue;
            }
            let exposed: Vec<String> = r
                .config
                .exposed_ports
                .clone()
                .unwrap_or_default()
                .keys()
                .cloned()
                .collect();
            // Nothing is published without the bridge network.
            if key == "publish" {
                return false;
            }
            if !want.iter().any(|w| {
                exposed
                    .iter()
                    .any(|e| e == w || e.split('/').next() == Some(w))
            }) {
                return false;
            }
        }
        true
    }
}
