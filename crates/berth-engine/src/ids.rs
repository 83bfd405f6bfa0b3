//! Container and exec IDs, and container names (validation and generation).

use std::fmt::Write as _;

/// A new random 64-hex-digit ID, as Docker's: never one whose 12-digit short form is all
/// decimal digits (it would read as a number in `ps` and on the command line).
pub fn new_id() -> String {
    loop {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes);
        let mut s = String::with_capacity(64);
        for b in bytes {
            let _ = write!(s, "{b:02x}");
        }
        if !s[..12].bytes().all(|b| b.is_ascii_digit()) {
            return s;
        }
    }
}

fn fill_random(buf: &mut [u8]) {
    // getrandom only fails when the kernel has no entropy source at all; fall back to a
    // time-and-counter mix rather than refusing to create containers.
    if getrandom::fill(buf).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static CTR: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut x = t ^ CTR.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
}

fn random_index(n: usize) -> usize {
    let mut b = [0u8; 8];
    fill_random(&mut b);
    (u64::from_le_bytes(b) % n as u64) as usize
}

/// Docker's container-name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, an optional leading `/`.
pub fn valid_name(name: &str) -> bool {
    let n = name.strip_prefix('/').unwrap_or(name);
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Docker's message for an invalid name.
pub fn invalid_name_message(name: &str) -> String {
    format!("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
}

// Our own word lists (harbour-themed): an adjective and a noun, as `brave_lighthouse`.
const ADJECTIVES: &[&str] = &[
    "able", "agile", "amber", "ample", "ardent", "azure", "bold", "brave", "breezy", "bright",
    "brisk", "calm", "candid", "clever", "cosy", "crisp", "daring", "deft", "eager", "earnest",
    "fair", "fearless", "fleet", "fond", "frank", "gallant", "gentle", "glad", "golden", "grand",
    "hardy", "hearty", "humble", "jolly", "keen", "kind", "lively", "loyal", "lucid", "merry",
    "mighty", "nimble", "noble", "patient", "plucky", "polite", "proud", "quick", "quiet", "rapid",
    "ready", "robust", "salty", "serene", "sharp", "silent", "sleek", "smooth", "snug", "spry",
    "stable", "steady", "stout", "sunny", "swift", "tidy", "trusty", "vivid", "warm", "wise",
];
const NOUNS: &[&str] = &[
    "anchor",
    "atoll",
    "barge",
    "beacon",
    "bollard",
    "bosun",
    "bow",
    "breakwater",
    "buoy",
    "cabin",
    "canal",
    "capstan",
    "cargo",
    "channel",
    "cleat",
    "compass",
    "cove",
    "crane",
    "current",
    "cutter",
    "davit",
    "deck",
    "dinghy",
    "dock",
    "dory",
    "estuary",
    "ferry",
    "fjord",
    "galley",
    "gangway",
    "harbour",
    "hawser",
    "helm",
    "hull",
    "inlet",
    "jetty",
    "keel",
    "ketch",
    "lagoon",
    "lighthouse",
    "lock",
    "marina",
    "mast",
    "mooring",
    "narrows",
    "oar",
    "pier",
    "pilot",
    "port",
    "quay",
    "rudder",
    "sail",
    "schooner",
    "sextant",
    "shoal",
    "skiff",
    "slipway",
    "sloop",
    "sound",
    "spar",
    "starboard",
    "strait",
    "tide",
    "tiller",
    "trawler",
    "tugboat",
    "wake",
    "wharf",
    "windlass",
    "yawl",
];

/// A random free name: `adjective_noun`, with a number appended when many tries collide.
pub fn generate_name(taken: impl Fn(&str) -> bool) -> String {
    for attempt in 0..64 {
        let mut name = format!(
            "{}_{}",
            ADJECTIVES[random_index(ADJECTIVES.len())],
            NOUNS[random_index(NOUNS.len())]
        );
        if attempt >= 8 {
            let _ = write!(name, "{}", random_index(1000));
        }
        if !taken(&name) {
            return name;
        }
    }
    // With 4900 combinations times 1000 suffixes this is practically unreachable; an ID
    // fragment is always free.
    format!("berth_{}", &new_id()[..12])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_hex_and_unique() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let id = new_id();
            assert_eq!(id.len(), 64);
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert!(!id[..12].bytes().all(|b| b.is_ascii_digit()));
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn names_follow_dockers_rule() {
        for ok in ["web", "a1", "my_app.v2-x", "/web", "A-b"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "a", "-web", "_x", "bad name!", "a/b", "é_x", "/"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert_eq!(
            invalid_name_message("bad name!"),
            "Invalid container name (bad name!), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
        for w in ADJECTIVES.iter().chain(NOUNS) {
            assert!(valid_name(&format!("{w}_x")));
        }
    }

    #[test]
    fn generated_names_are_valid_and_avoid_taken_ones() {
        let taken: HashSet<String> = (0..200).map(|_| generate_name(|_| false)).collect();
        for _ in 0..200 {
            let n = generate_name(|n| taken.contains(n));
            assert!(valid_name(&n));
            assert!(!taken.contains(&n));
        }
        // Everything taken but suffixed names: still terminates with a valid name.
        let n = generate_name(|n| !n.chars().last().unwrap().is_ascii_digit());
        assert!(valid_name(&n));
    }
}
