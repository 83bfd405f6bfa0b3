//! The events bus behind `GET /events`: live broadcast plus a bounded history for `--since`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use berth_api::models::{EventActor, EventMessage};
use berth_api::{EventsOptions, Filters};
use berth_image::store::ImageStore;
use chrono::Utc;
use tokio::sync::broadcast;

const HISTORY: usize = 1024;

pub struct EventBus {
    tx: broadcast::Sender<EventMessage>,
    history: Mutex<VecDeque<EventMessage>>,
}

impl EventBus {
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(1024);
        EventBus {
            tx,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }

    /// Publishes an event of `kind` (`container`, `image`) with `action` about `id`.
    pub fn emit(&self, kind: &str, action: &str, id: &str, attrs: BTreeMap<String, String>) {
        let now = Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        let legacy = kind == "container" || kind == "image";
        let ev = EventMessage {
            status: if legacy {
                action.to_string()
            } else {
                String::new()
            },
            id: if legacy {
                id.to_string()
            } else {
                String::new()
            },
            from: if kind == "container" {
                attrs.get("image").cloned().unwrap_or_default()
            } else {
                String::new()
            },
            kind: kind.to_string(),
            action: action.to_string(),
            actor: EventActor {
                id: id.to_string(),
                attributes: Some(attrs),
            },
            scope: "local".to_string(),
            time: now.timestamp(),
            time_nano: nanos,
        };
        {
            let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(ev.clone());
        }
        let _ = self.tx.send(ev);
    }

    /// moby's `ImageService.LogImageEvent`: an image event about `actor` whose attributes are
    /// the image's labels (while it still exists) plus `name` when given.
    pub fn image(&self, store: &ImageStore, action: &str, actor: &str, name: &str) {
        let mut attrs = BTreeMap::new();
        if let Ok(img) = store.resolve(actor) {
            if let Some(labels) = img.config.config.as_ref().and_then(|c| c.labels.as_ref()) {
                attrs.extend(labels.clone());
            }
        }
        if !name.is_empty() {
            attrs.insert("name".to_string(), name.to_string());
        }
        self.emit("image", action, actor, attrs);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EventMessage> {
        self.tx.subscribe()
    }

    /// Past events matching the options (for `since`).
    pub fn history(&self, opts: &EventsOptions) -> Vec<EventMessage> {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        h.iter()
            .filter(|e| in_window(e, opts) && matches(e, &opts.filters))
            .cloned()
            .collect()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

pub fn in_window(e: &EventMessage, opts: &EventsOptions) -> bool {
    let t = e.time_nano;
    if let Some(s) = opts.since {
        if t < s.timestamp_nanos_opt().unwrap_or(i64::MIN) {
            return false;
        }
    }
    if let Some(u) = opts.until {
        if t > u.timestamp_nanos_opt().unwrap_or(i64::MAX) {
            return false;
        }
    }
    true
}

/// moby's `daemon/events.Filter.Include`: every key must match; `container`, `network`,
/// `volume`, `daemon`, `plugin`, `node`, `service`, `secret`, `config` match the actor's ID
/// or its `name` attribute, exactly or as a prefix, whatever the event's type; `image` the
/// actor (or its `image`/`name` attribute) exactly or without its tag; `event` exactly
/// (by prefix for `exec_create`, `exec_start` and `health_status`, whose actions carry the
/// command or status); `type` and `scope` exactly; `label` the attributes.
pub fn matches(e: &EventMessage, f: &Filters) -> bool {
    let empty = BTreeMap::new();
    let attrs = e.actor.attributes.as_ref().unwrap_or(&empty);
    let exact = |key: &str, v: &str| f.exact_match(key, v);
    let fuzzy = |key: &str, v: &str| exact(key, v) || f.get(key).iter().any(|p| v.starts_with(p));
    let name = attrs.get("name").map(String::as_str).unwrap_or_default();
    let by_name = |key: &str| fuzzy(key, &e.actor.id) || fuzzy(key, name);
    let event_ok = if f
        .get("event")
        .iter()
        .any(|v| ["health_status", "exec_create", "exec_start"].contains(v))
    {
        fuzzy("event", &e.action)
    } else {
        exact("event", &e.action)
    };
    let image_ok = {
        let name_attr = if e.kind == "image" { "name" } else { "image" };
        let image_name = attrs.get(name_attr).map(String::as_str).unwrap_or_default();
        exact("image", &e.actor.id)
            || exact("image", image_name)
            || exact("image", &strip_tag(&e.actor.id))
            || exact("image", &strip_tag(image_name))
    };
    event_ok
        && exact("type", &e.kind)
        && (!f.contains("scope") || exact("scope", &e.scope))
        && [
            "daemon",
            "container",
            "plugin",
            "volume",
            "network",
            "service",
            "node",
            "secret",
            "config",
        ]
        .iter()
        .all(|k| by_name(k))
        && image_ok
        && (!f.contains("label") || f.match_kv_list("label", attrs))
}

/// `reference.FamiliarName`: the name without tag or digest (`docker.io/library/` dropped).
fn strip_tag(image: &str) -> String {
    match berth_image::reference::Reference::parse_normalized(image) {
        Ok(r) => r.familiar_name(),
        Err(_) => image.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            kind: kind.into(),
            action: action.into(),
            actor: EventActor {
                id: id.into(),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            },
            scope: "local".into(),
            ..Default::default()
        }
    }

    fn f(pairs: &[(&str, &str)]) -> Filters {
        let mut f = Filters::new();
        for (k, v) in pairs {
            f.add(*k, *v);
        }
        f
    }

    #[test]
    fn moby_filter_rules() {
        let start = ev(
            "container",
            "start",
            "abcdef123456",
            &[
                ("name", "web"),
                ("image", "busybox:latest"),
                ("tier", "front"),
            ],
        );
        assert!(matches(&start, &f(&[])));
        assert!(matches(&start, &f(&[("container", "web")])));
        assert!(matches(&start, &f(&[("container", "abc")])));
        assert!(!matches(&start, &f(&[("container", "db")])));
        assert!(matches(&start, &f(&[("image", "busybox")])));
        assert!(matches(&start, &f(&[("image", "busybox:latest")])));
        assert!(!matches(&start, &f(&[("image", "alpine")])));
        assert!(matches(&start, &f(&[("event", "start"), ("event", "die")])));
        assert!(!matches(&start, &f(&[("event", "sta")])));
        assert!(matches(&start, &f(&[("type", "container")])));
        assert!(!matches(&start, &f(&[("type", "image")])));
        assert!(matches(&start, &f(&[("label", "tier=front")])));
        assert!(matches(&start, &f(&[("label", "tier")])));
        assert!(!matches(&start, &f(&[("label", "tier=back")])));
        assert!(matches(&start, &f(&[("scope", "local")])));
        assert!(!matches(&start, &f(&[("scope", "swarm")])));
        // A volume or network filter excludes events of other objects.
        assert!(!matches(&start, &f(&[("volume", "data")])));
        assert!(!matches(&start, &f(&[("network", "net1")])));
        let vol = ev("volume", "create", "data", &[("driver", "local")]);
        assert!(matches(&vol, &f(&[("volume", "data")])));
        assert!(matches(
            &vol,
            &f(&[("type", "volume"), ("event", "create")])
        ));
        let net = ev(
            "network",
            "connect",
            "0123456789ab",
            &[("name", "net1"), ("type", "bridge")],
        );
        assert!(matches(&net, &f(&[("network", "net1")])));
        assert!(matches(&net, &f(&[("network", "0123")])));
        let daemon = ev("daemon", "reload", "D3ID", &[("name", "host1")]);
        assert!(matches(&daemon, &f(&[("daemon", "host1")])));
        assert!(!matches(&daemon, &f(&[("daemon", "other")])));
        // exec_start and health_status carry the command/status: matched by prefix.
        let exec = ev("container", "exec_start: sh -c true", "abc", &[]);
        assert!(matches(&exec, &f(&[("event", "exec_start")])));
        let health = ev("container", "health_status: healthy", "abc", &[]);
        assert!(matches(&health, &f(&[("event", "health_status")])));
        // Image events: the actor or its name attribute.
        let tag = ev("image", "tag", "sha256:aaaa", &[("name", "me/app:1")]);
        assert!(matches(&tag, &f(&[("image", "me/app")])));
        assert!(matches(&tag, &f(&[("image", "sha256:aaaa")])));
    }
}
