//! Docker's `ps --filter` semantics for `GET /containers/json`.

use std::collections::HashSet;

use berth_api::models::ContainerSummary;
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
    /// `publish`/`expose` values expanded to `port/proto` keys (moby's `portOp`).
    publish: HashSet<String>,
    expose: HashSet<String>,
}

/// Expands a `publish`/`expose` filter value (`80`, `80/udp`, `8000-8010/tcp`) into
/// `port/proto` keys, with moby's messages for bad values.
fn port_filter(key: &str, values: &[&str]) -> Result<HashSet<String>, ApiError> {
    let mut out = HashSet::new();
    for v in values {
        if v.contains(':') {
            return Err(ApiError::bad_request(format!(
                "filter for '{key}' should not contain ':': {v}"
            )));
        }
        let (range, proto) = v.split_once('/').unwrap_or((v, "tcp"));
        let proto = if proto.is_empty() { "tcp" } else { proto };
        let (lo, hi) = berth_net::ports::parse_range(range).map_err(|e| {
            ApiError::bad_request(format!("error while looking up for {key} {v}: {e}"))
        })?;
        if (hi - lo) as usize > 65535 {
            continue;
        }
        for p in lo..=hi {
            out.insert(format!("{p}/{}", proto.to_ascii_lowercase()));
        }
    }
    Ok(out)
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
            publish: port_filter("publish", &f.get("publish"))?,
            expose: port_filter("expose", &f.get("expose"))?,
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
        true
    }
}

impl ContainerFilter {
    /// The filters Docker applies to a container's list entry: `network` (a network name the
    /// container is configured on, or a prefix of its ID) and `publish`/`expose` (a published
    /// host port or a container port of `Ports`).
    pub fn matches_summary(&self, s: &ContainerSummary) -> bool {
        let nets = self.f.get("network");
        if !nets.is_empty() {
            let Some(eps) = &s.network_settings.networks else {
                return false;
            };
            let on = nets.iter().any(|v| {
                eps.contains_key(*v)
                    || eps
                        .values()
                        .any(|e| !e.network_id.is_empty() && e.network_id.starts_with(v))
            });
            if !on {
                return false;
            }
        }
        if !self.publish.is_empty() || !self.expose.is_empty() {
            return s.ports.iter().any(|p| {
                self.publish
                    .contains(&format!("{}/{}", p.public_port, p.kind))
                    || self
                        .expose
                        .contains(&format!("{}/{}", p.private_port, p.kind))
            });
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::{EndpointSettings, Port};

    fn summary(nets: &[(&str, &str)], ports: &[(u16, u16, &str)]) -> ContainerSummary {
        let mut s = ContainerSummary::default();
        s.network_settings.networks = Some(
            nets.iter()
                .map(|(n, id)| {
                    (
                        n.to_string(),
                        EndpointSettings {
                            network_id: id.to_string(),
                            ..Default::default()
                        },
                    )
                })
                .collect(),
        );
        s.ports = ports
            .iter()
            .map(|(private, public, kind)| Port {
                ip: String::new(),
                private_port: *private,
                public_port: *public,
                kind: kind.to_string(),
            })
            .collect();
        s
    }

    fn filter(json: &str) -> Result<ContainerFilter, ApiError> {
        let f = Filters::from_json(json).unwrap();
        Ok(ContainerFilter {
            f: f.clone(),
            names: Vec::new(),
            before: None,
            since: None,
            ancestors: Vec::new(),
            exited: Vec::new(),
            publish: port_filter("publish", &f.get("publish"))?,
            expose: port_filter("expose", &f.get("expose"))?,
        })
    }

    #[test]
    fn network_by_name_or_id_prefix() {
        let s = summary(&[("front", "abcdef0123"), ("bridge", "99887766")], &[]);
        assert!(filter(r#"{"network":{"front":true}}"#)
            .unwrap()
            .matches_summary(&s));
        assert!(filter(r#"{"network":{"9988":true}}"#)
            .unwrap()
            .matches_summary(&s));
        assert!(filter(r#"{"network":{"abcdef0123":true}}"#)
            .unwrap()
            .matches_summary(&s));
        assert!(!filter(r#"{"network":{"back":true}}"#)
            .unwrap()
            .matches_summary(&s));
        assert!(!filter(r#"{"network":{"fro":true}}"#)
            .unwrap()
            .matches_summary(&s));
        assert!(filter(r#"{"network":{"back":true,"front":true}}"#)
            .unwrap()
            .matches_summary(&s));
        let none = summary(&[], &[]);
        assert!(!filter(r#"{"network":{"front":true}}"#)
            .unwrap()
            .matches_summary(&none));
    }

    #[test]
    fn publish_and_expose() {
        let s = summary(
            &[],
            &[(80, 8080, "tcp"), (53, 5353, "udp"), (9000, 0, "tcp")],
        );
        let m = |j: &str| filter(j).unwrap().matches_summary(&s);
        assert!(m(r#"{"publish":{"8080":true}}"#));
        assert!(m(r#"{"publish":{"8080/tcp":true}}"#));
        assert!(!m(r#"{"publish":{"8080/udp":true}}"#));
        assert!(m(r#"{"publish":{"5350-5360/udp":true}}"#));
        assert!(!m(r#"{"publish":{"80":true}}"#));
        assert!(m(r#"{"expose":{"80":true}}"#));
        assert!(m(r#"{"expose":{"9000":true}}"#));
        assert!(!m(r#"{"expose":{"8080":true}}"#));
        assert!(m(r#"{"expose":{"1":true},"publish":{"8080":true}}"#));
        let e = filter(r#"{"publish":{"1.2.3.4:80":true}}"#).err().unwrap();
        assert_eq!(
            e.message,
            "filter for 'publish' should not contain ':': 1.2.3.4:80"
        );
        assert!(filter(r#"{"expose":{"x":true}}"#).is_err());
    }
}
