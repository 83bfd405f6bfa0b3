//! System wire types: version, info, df, events, auth.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{is_false, is_zero_i64, ContainerSummary, ImageSummary, Volume};

wire! {
    /// `GET /version`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct SystemVersion {
        pub platform: Option<PlatformName>,
        pub components: Option<Vec<ComponentVersion>>,
        pub version: String,
        pub api_version: String,
        #[serde(rename = "MinAPIVersion")]
        pub min_api_version: String,
        pub git_commit: String,
        pub go_version: String,
        pub os: String,
        pub arch: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub kernel_version: String,
        #[serde(skip_serializing_if = "is_false")]
        pub experimental: bool,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub build_time: String,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct PlatformName {
        pub name: String,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ComponentVersion {
        pub name: String,
        pub version: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub details: Option<BTreeMap<String, String>>,
    }
}

wire! {
    /// `GET /info` (the 1.41 field set).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct SystemInfo {
        #[serde(rename = "ID")]
        pub id: String,
        pub containers: i64,
        pub containers_running: i64,
        pub containers_paused: i64,
        pub containers_stopped: i64,
        pub images: i64,
        pub driver: String,
        pub driver_status: Option<Vec<[String; 2]>>,
        pub plugins: PluginsInfo,
        pub memory_limit: bool,
        pub swap_limit: bool,
        pub kernel_memory: bool,
        #[serde(rename = "KernelMemoryTCP")]
        pub kernel_memory_tcp: bool,
        pub cpu_cfs_period: bool,
        pub cpu_cfs_quota: bool,
        #[serde(rename = "CPUShares")]
        pub cpu_shares: bool,
        #[serde(rename = "CPUSet")]
        pub cpu_set: bool,
        pub pids_limit: bool,
        #[serde(rename = "IPv4Forwarding")]
        pub ipv4_forwarding: bool,
        pub bridge_nf_iptables: bool,
        pub bridge_nf_ip6tables: bool,
        pub debug: bool,
        #[serde(rename = "NFd")]
        pub nfd: i64,
        pub oom_kill_disable: bool,
        #[serde(rename = "NGoroutines")]
        pub ngoroutines: i64,
        pub system_time: String,
        pub logging_driver: String,
        pub cgroup_driver: String,
        pub cgroup_version: String,
        #[serde(rename = "NEventsListener")]
        pub nevents_listener: i64,
        pub kernel_version: String,
        pub operating_system: String,
        #[serde(rename = "OSVersion")]
        pub os_version: String,
        #[serde(rename = "OSType")]
        pub os_type: String,
        pub architecture: String,
        pub index_server_address: String,
        pub registry_config: Option<RegistryServiceConfig>,
        #[serde(rename = "NCPU")]
        pub ncpu: i64,
        pub mem_total: i64,
        pub generic_resources: Option<Vec<serde_json::Value>>,
        pub docker_root_dir: String,
        pub http_proxy: String,
        pub https_proxy: String,
        pub no_proxy: String,
        pub name: String,
        pub labels: Vec<String>,
        pub experimental_build: bool,
        pub server_version: String,
        pub runtimes: Option<BTreeMap<String, RuntimeInfo>>,
        pub default_runtime: String,
        pub swarm: SwarmInfo,
        pub live_restore_enabled: bool,
        pub isolation: String,
        pub init_binary: String,
        pub containerd_commit: Commit,
        pub runc_commit: Commit,
        pub init_commit: Commit,
        pub security_options: Option<Vec<String>>,
        pub warnings: Option<Vec<String>>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct PluginsInfo {
        pub volume: Option<Vec<String>>,
        pub network: Option<Vec<String>>,
        pub authorization: Option<Vec<String>>,
        pub log: Option<Vec<String>>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct RegistryServiceConfig {
        #[serde(rename = "AllowNondistributableArtifactsCIDRs")]
        pub allow_nondistributable_artifacts_cidrs: Option<Vec<String>>,
        pub allow_nondistributable_artifacts_hostnames: Option<Vec<String>>,
        #[serde(rename = "InsecureRegistryCIDRs")]
        pub insecure_registry_cidrs: Option<Vec<String>>,
        pub index_configs: Option<BTreeMap<String, IndexInfo>>,
        pub mirrors: Option<Vec<String>>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct IndexInfo {
        pub name: String,
        pub mirrors: Option<Vec<String>>,
        pub secure: bool,
        pub official: bool,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RuntimeInfo {
        pub path: String,
        #[serde(rename = "runtimeArgs", skip_serializing_if = "Option::is_none")]
        pub runtime_args: Option<Vec<String>>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct SwarmInfo {
        #[serde(rename = "NodeID")]
        pub node_id: String,
        pub node_addr: String,
        /// `inactive` for berth.
        pub local_node_state: String,
        pub control_available: bool,
        pub error: String,
        pub remote_managers: Option<Vec<serde_json::Value>>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Commit {
        #[serde(rename = "ID")]
        pub id: String,
        #[serde(rename = "Expected")]
        pub expected: String,
    }
}

wire! {
    /// `GET /system/df` (the parts berth reports; `BuildCache` stays `null` until a build cache exists).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct SystemDf {
        pub layers_size: i64,
        pub images: Option<Vec<ImageSummary>>,
        pub containers: Option<Vec<ContainerSummary>>,
        pub volumes: Option<Vec<Volume>>,
        pub build_cache: Option<Vec<serde_json::Value>>,
        pub builder_size: i64,
    }
}

wire! {
    /// One message of `GET /events`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct EventMessage {
        #[serde(skip_serializing_if = "String::is_empty")]
        pub status: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub id: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub from: String,
        /// `container`, `image`, `volume`, `network`, `daemon`, …
        #[serde(rename = "Type")]
        pub kind: String,
        #[serde(rename = "Action")]
        pub action: String,
        #[serde(rename = "Actor")]
        pub actor: EventActor,
        pub scope: String,
        #[serde(skip_serializing_if = "is_zero_i64")]
        pub time: i64,
        #[serde(rename = "timeNano", skip_serializing_if = "is_zero_i64")]
        pub time_nano: i64,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct EventActor {
        #[serde(rename = "ID")]
        pub id: String,
        #[serde(rename = "Attributes")]
        pub attributes: Option<BTreeMap<String, String>>,
    }
}

wire! {
    /// Registry credentials: the body of `POST /auth` and the JSON inside `X-Registry-Auth`.
    /// Go decodes keys case-insensitively; the capitalised spellings are accepted too.
    #[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct AuthConfig {
        #[serde(skip_serializing_if = "String::is_empty", alias = "Username")]
        pub username: String,
        #[serde(skip_serializing_if = "String::is_empty", alias = "Password")]
        pub password: String,
        #[serde(skip_serializing_if = "String::is_empty", alias = "Auth")]
        pub auth: String,
        #[serde(skip_serializing_if = "String::is_empty", alias = "Email")]
        pub email: String,
        #[serde(
            rename = "serveraddress",
            skip_serializing_if = "String::is_empty",
            alias = "ServerAddress",
            alias = "serverAddress"
        )]
        pub server_address: String,
        #[serde(
            rename = "identitytoken",
            skip_serializing_if = "String::is_empty",
            alias = "IdentityToken",
            alias = "identityToken"
        )]
        pub identity_token: String,
        #[serde(
            rename = "registrytoken",
            skip_serializing_if = "String::is_empty",
            alias = "RegistryToken",
            alias = "registryToken"
        )]
        pub registry_token: String,
    }
}

impl std::fmt::Debug for AuthConfig {
    // Never print secrets into logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field(
                "auth",
                &if self.auth.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("server_address", &self.server_address)
            .field(
                "identity_token",
                &if self.identity_token.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .finish()
    }
}

wire! {
    /// `POST /auth` response: `{"IdentityToken":"","Status":"Login Succeeded"}`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct AuthResponse {
        pub identity_token: String,
        pub status: String,
    }
}

impl AuthConfig {
    /// Decodes an `X-Registry-Auth` header: base64 (URL-safe as the Docker CLI writes it, or
    /// standard; padding optional) of the JSON credentials. `e30=` (`{}`) gives empty credentials.
    pub fn from_registry_auth_header(value: &str) -> Result<Self, AuthHeaderError> {
        use base64::Engine as _;
        let value = value.trim();
        let engines = [
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
        ];
        let decoded = engines
            .iter()
            .find_map(|engine| engine.decode(value).ok())
            .ok_or_else(|| AuthHeaderError("the value is not base64".to_string()))?;
        crate::jsonfold::from_slice(&decoded).map_err(|e| AuthHeaderError(e.to_string()))
    }

    /// Encodes these credentials for an `X-Registry-Auth` header (URL-safe base64 of JSON).
    pub fn to_registry_auth_header(&self) -> String {
        use base64::Engine as _;
        // Serializing a struct of strings cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }
}

/// An `X-Registry-Auth` header that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid X-Registry-Auth header: {0}")]
pub struct AuthHeaderError(pub String);

wire! {
    /// `POST /containers/prune`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ContainersPruneReport {
        pub containers_deleted: Option<Vec<String>>,
        pub space_reclaimed: u64,
    }
}

wire! {
    /// `POST /build/prune`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct BuildCachePruneReport {
        pub caches_deleted: Option<Vec<String>>,
        pub space_reclaimed: u64,
    }
}

wire! {
    /// `POST /images/prune`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ImagesPruneReport {
        pub images_deleted: Option<Vec<super::ImageDeleteResponseItem>>,
        pub space_reclaimed: u64,
    }
}

wire! {
    /// `POST /volumes/prune`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct VolumesPruneReport {
        pub volumes_deleted: Option<Vec<String>>,
        pub space_reclaimed: u64,
    }
}

wire! {
    /// `POST /networks/prune`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct NetworksPruneReport {
        pub networks_deleted: Option<Vec<String>>,
    }
}
