//! Which daemon to talk to: `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the default.

use crate::DEFAULT_HOST;

/// Resolves the daemon address from the `-H` flag and the environment.
pub fn resolve_host(flag: Option<&str>) -> String {
    resolve_host_with(flag, |name| std::env::var(name).ok())
}

/// [`resolve_host`] with an injectable environment (for tests).
pub fn resolve_host_with(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> String {
    flag.filter(|h| !h.is_empty())
        .map(str::to_string)
        .or_else(|| env("BERTH_HOST").filter(|h| !h.is_empty()))
        .or_else(|| env("DOCKER_HOST").filter(|h| !h.is_empty()))
        .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let env = |name: &str| match name {
            "BERTH_HOST" => Some("unix:///b.sock".to_string()),
            "DOCKER_HOST" => Some("unix:///d.sock".to_string()),
            _ => None,
        };
        assert_eq!(
            resolve_host_with(Some("tcp://1.2.3.4:5"), env),
            "tcp://1.2.3.4:5"
        );
        assert_eq!(resolve_host_with(None, env), "unix:///b.sock");
        let docker_only =
            |name: &str| (name == "DOCKER_HOST").then(|| "unix:///d.sock".to_string());
        assert_eq!(resolve_host_with(None, docker_only), "unix:///d.sock");
        assert_eq!(
            resolve_host_with(None, |_| None),
            "unix:///run/berth/berth.sock"
        );
        assert_eq!(
            resolve_host_with(Some(""), |_| Some(String::new())),
            DEFAULT_HOST
        );
    }
}
