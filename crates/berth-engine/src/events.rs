//! The events bus behind `GET /events`: live broadcast plus a bounded history for `--since`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use berth_api::models::{EventActor, EventMessage};
use berth_api::{EventsOptions, Filters};
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

/// Docker's event filters: type, event/action, container, image, label.
pub fn matches(e: &EventMessage, f: &Filters) -> bool {
    let attrs = e.actor.attributes.clone().unwrap_or_default();
    for (key, values) in f.iter() {
        let ok = match key {
            "type" => values.contains(&e.kind.as_str()),
            "event" => values
                .iter()
                .any(|v| *v == e.action || e.action.split(':').next() == Some(v)),
            "container" => {
                e.kind == "container"
                    && values.iter().any(|v| {
                        e.actor.id.starts_with(v)
                            || attrs.get("name").map(String::as_str) == Some(v)
                    })
            }
            "image" => values.iter().any(|v| {
                (e.kind == "image" && (e.actor.id.contains(v)))
                    || attrs.get("image").map(String::as_str) == Some(v)
                    || attrs.get("name").map(String::as_str) == Some(v) && e.kind == "image"
            }),
            "label" => f.match_kv_list("label", &attrs),
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}
