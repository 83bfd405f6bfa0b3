//! How the CLI reaches the daemon: the host (`-H`, `BERTH_HOST`, `DOCKER_HOST`) and TLS
//! (`--tls`, `--tlsverify`, `--tlscacert/--tlscert/--tlskey`, `DOCKER_TLS`,
//! `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`), with the Docker CLI's rules.

use std::path::{Path, PathBuf};

use berth_api::tls::TlsData;

use super::flags::Matches;

/// The TLS settings of the global flags and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOpts {
    /// Verify the daemon's certificate against `ca` (`--tlsverify`); else any certificate.
    pub verify: bool,
    pub ca: PathBuf,
    /// A client certificate and key; `None` when the defaults do not exist and no flag named
    /// them (as the Docker CLI drops them).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Docker's rules: `--tlsverify` (given with any value, or `DOCKER_TLS_VERIFY` non-empty)
/// implies TLS; `--tls` or `DOCKER_TLS` asks for TLS without verifying the daemon. The files
/// default to `ca.pem`, `cert.pem`, `key.pem` in `DOCKER_CERT_PATH`, else the config
/// directory.
pub fn tls_opts(
    m: &Matches,
    config_dir: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Option<TlsOpts> {
    let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
    let verify = if m.changed("tlsverify") {
        m.flag("tlsverify")
    } else {
        set("DOCKER_TLS_VERIFY")
    };
    let tls_flag = if m.changed("tls") {
        m.flag("tls")
    } else {
        set("DOCKER_TLS")
    };
    if !(m.changed("tlsverify") || verify || tls_flag) {
        return None;
    }
    let dir = env("DOCKER_CERT_PATH")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| config_dir.to_path_buf());
    let file = |flag: &str, default: &str| -> Option<PathBuf> {
        match m.value(flag) {
            Some(v) => Some(PathBuf::from(v)),
            None => {
                let p = dir.join(default);
                p.exists().then_some(p)
            }
        }
    };
    Some(TlsOpts {
        verify,
        ca: m
            .value("tlscacert")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("ca.pem")),
        cert: file("tlscert", "cert.pem"),
        key: file("tlskey", "key.pem"),
    })
}

impl TlsOpts {
    /// The PEM files read (the CA only when it is used).
    pub fn data(&self) -> Result<TlsData, berth_api::tls::TlsError> {
        TlsData::from_files(
            self.verify.then_some(self.ca.as_path()),
            self.cert.as_deref(),
            self.key.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::{Flag, Spec};

    fn parse(args: &[&str]) -> Matches {
        Spec::new("berth", "", "")
            .flags(vec![
                Flag::bool("tls", ""),
                Flag::bool("tlsverify", ""),
                Flag::value("tlscacert", "string", ""),
                Flag::value("tlscert", "string", ""),
                Flag::value("tlskey", "string", ""),
            ])
            .parse_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap()
    }

    #[test]
    fn no_tls_by_default() {
        assert_eq!(tls_opts(&parse(&[]), Path::new("/c"), |_| None), None);
        assert_eq!(
            tls_opts(&parse(&["--tls=false"]), Path::new("/c"), |_| None),
            None
        );
    }

    #[test]
    fn tlsverify_implies_tls_and_defaults_to_the_config_dir() {
        let o = tls_opts(&parse(&["--tlsverify"]), Path::new("/c"), |_| None).unwrap();
        assert!(o.verify);
        assert_eq!(o.ca, PathBuf::from("/c/ca.pem"));
        // Default client files that do not exist are dropped.
        assert_eq!(o.cert, None);
        assert_eq!(o.key, None);
        // --tlsverify=false still means TLS (without verifying the daemon).
        let o = tls_opts(&parse(&["--tlsverify=false"]), Path::new("/c"), |_| None).unwrap();
        assert!(!o.verify);
    }

    #[test]
    fn environment() {
        let env = |k: &str| match k {
            "DOCKER_TLS_VERIFY" => Some("1".to_string()),
            "DOCKER_CERT_PATH" => Some("/certs".to_string()),
            _ => None,
        };
        let o = tls_opts(&parse(&[]), Path::new("/c"), env).unwrap();
        assert!(o.verify);
        assert_eq!(o.ca, PathBuf::from("/certs/ca.pem"));
        let o = tls_opts(&parse(&["--tlscert", "/x/c.pem"]), Path::new("/c"), env).unwrap();
        assert_eq!(o.cert, Some(PathBuf::from("/x/c.pem")));
        // An empty DOCKER_TLS_VERIFY is unset (Docker checks for != "").
        let empty = |k: &str| (k == "DOCKER_TLS_VERIFY").then(String::new);
        assert_eq!(tls_opts(&parse(&[]), Path::new("/c"), empty), None);
        let tls_only = |k: &str| (k == "DOCKER_TLS").then(|| "1".to_string());
        let o = tls_opts(&parse(&[]), Path::new("/c"), tls_only).unwrap();
        assert!(!o.verify);
    }
}
