//! Container wire types: create body, inspect, list, wait, top, exec, archive.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{is_false, is_zero_i64, is_zero_u64, EndpointSettings};

/// `{"8080/tcp": {}}`: a set of ports, as Docker encodes `nat.PortSet`.
pub type PortSet = BTreeMap<String, EmptyObject>;
/// `{"8080/tcp": [{"HostIp": "", "HostPort": "8080"}]}`; a `null` list means "exposed, not published".
pub type PortMap = BTreeMap<String, Option<Vec<PortBinding>>>;

/// The `{}` in `ExposedPorts` and `Volumes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyObject {}

wire! {
    /// Container configuration (`Config` in create, inspect, image config). Docker's `container.Config`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ContainerConfig {
        pub hostname: String,
        pub domainname: String,
        pub user: String,
        pub attach_stdin: bool,
        pub attach_stdout: bool,
        pub attach_stderr: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub exposed_ports: Option<PortSet>,
        pub tty: bool,
        pub open_stdin: bool,
        pub stdin_once: bool,
        pub env: Option<Vec<String>>,
        pub cmd: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub healthcheck: Option<HealthConfig>,
        #[serde(skip_serializing_if = "is_false")]
        pub args_escaped: bool,
        pub image: String,
        pub volumes: Option<BTreeMap<String, EmptyObject>>,
        pub working_dir: String,
        pub entrypoint: Option<Vec<String>>,
        #[serde(skip_serializing_if = "is_false")]
        pub network_disabled: bool,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub mac_address: String,
        pub on_build: Option<Vec<String>>,
        pub labels: Option<BTreeMap<String, String>>,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub stop_signal: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub stop_timeout: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub shell: Option<Vec<String>>,
    }
}

wire! {
    /// Health check configuration. Durations are nanoseconds; 0 means "inherit/default".
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct HealthConfig {
        /// `[]` inherit, `["NONE"]` disabled, `["CMD", ...]`, `["CMD-SHELL", "cmd"]`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub test: Option<Vec<String>>,
        #[serde(skip_serializing_if = "is_zero_i64")]
        pub interval: i64,
        #[serde(skip_serializing_if = "is_zero_i64")]
        pub timeout: i64,
        #[serde(skip_serializing_if = "is_zero_i64")]
        pub start_period: i64,
        #[serde(skip_serializing_if = "is_zero_i64")]
        pub start_interval: i64,
        #[serde(skip_serializing_if = "is_zero_i64")]
        pub retries: i64,
    }
}

wire! {
    /// Docker's `container.HostConfig` (with `Resources` inlined), as the CLI 28 sends it and
    /// as 20.10 returns it in inspect.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct HostConfig {
        pub binds: Option<Vec<String>>,
        #[serde(rename = "ContainerIDFile")]
        pub container_id_file: String,
        pub log_config: LogConfig,
        pub network_mode: String,
        pub port_bindings: Option<PortMap>,
        pub restart_policy: RestartPolicy,
        pub auto_remove: bool,
        pub volume_driver: String,
        pub volumes_from: Option<Vec<String>>,
        pub cap_add: Option<Vec<String>>,
        pub cap_drop: Option<Vec<String>>,
        pub cgroupns_mode: String,
        pub dns: Option<Vec<String>>,
        pub dns_options: Option<Vec<String>>,
        pub dns_search: Option<Vec<String>>,
        pub extra_hosts: Option<Vec<String>>,
        pub group_add: Option<Vec<String>>,
        pub ipc_mode: String,
        pub cgroup: String,
        pub links: Option<Vec<String>>,
        pub oom_score_adj: i64,
        pub pid_mode: String,
        pub privileged: bool,
        pub publish_all_ports: bool,
        pub readonly_rootfs: bool,
        pub security_opt: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub storage_opt: Option<BTreeMap<String, String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub tmpfs: Option<BTreeMap<String, String>>,
        #[serde(rename = "UTSMode")]
        pub uts_mode: String,
        pub userns_mode: String,
        pub shm_size: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub sysctls: Option<BTreeMap<String, String>>,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub runtime: String,
        /// `[height, width]`.
        pub console_size: [u64; 2],
        pub isolation: String,
        // --- Resources ---
        pub cpu_shares: i64,
        pub memory: i64,
        pub nano_cpus: i64,
        pub cgroup_parent: String,
        pub blkio_weight: u16,
        pub blkio_weight_device: Option<Vec<WeightDevice>>,
        pub blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
        pub blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
        #[serde(rename = "BlkioDeviceReadIOps")]
        pub blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
        #[serde(rename = "BlkioDeviceWriteIOps")]
        pub blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
        pub cpu_period: i64,
        pub cpu_quota: i64,
        pub cpu_realtime_period: i64,
        pub cpu_realtime_runtime: i64,
        pub cpuset_cpus: String,
        pub cpuset_mems: String,
        pub devices: Option<Vec<DeviceMapping>>,
        pub device_cgroup_rules: Option<Vec<String>>,
        pub device_requests: Option<Vec<DeviceRequest>>,
        pub kernel_memory: i64,
        #[serde(rename = "KernelMemoryTCP")]
        pub kernel_memory_tcp: i64,
        pub memory_reservation: i64,
        pub memory_swap: i64,
        pub memory_swappiness: Option<i64>,
        pub oom_kill_disable: Option<bool>,
        pub pids_limit: Option<i64>,
        pub ulimits: Option<Vec<Ulimit>>,
        pub cpu_count: i64,
        pub cpu_percent: i64,
        #[serde(rename = "IOMaximumIOps")]
        pub io_maximum_iops: u64,
        #[serde(rename = "IOMaximumBandwidth")]
        pub io_maximum_bandwidth: u64,
        // --- end of Resources ---
        #[serde(skip_serializing_if = "Option::is_none")]
        pub mounts: Option<Vec<Mount>>,
        pub masked_paths: Option<Vec<String>>,
        pub readonly_paths: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub init: Option<bool>,
    }
}

wire! {
    /// Body of `POST /containers/{id}/update`: Docker's `UpdateConfig`, the resource fields of
    /// a HostConfig plus the restart policy.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct UpdateConfig {
        pub cpu_shares: i64,
        pub memory: i64,
        pub nano_cpus: i64,
        pub cgroup_parent: String,
        pub blkio_weight: u16,
        pub blkio_weight_device: Option<Vec<WeightDevice>>,
        pub blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
        pub blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
        #[serde(rename = "BlkioDeviceReadIOps")]
        pub blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
        #[serde(rename = "BlkioDeviceWriteIOps")]
        pub blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
        pub cpu_period: i64,
        pub cpu_quota: i64,
        pub cpu_realtime_period: i64,
        pub cpu_realtime_runtime: i64,
        pub cpuset_cpus: String,
        pub cpuset_mems: String,
        pub devices: Option<Vec<DeviceMapping>>,
        pub device_cgroup_rules: Option<Vec<String>>,
        pub device_requests: Option<Vec<DeviceRequest>>,
        pub kernel_memory: i64,
        #[serde(rename = "KernelMemoryTCP")]
        pub kernel_memory_tcp: i64,
        pub memory_reservation: i64,
        pub memory_swap: i64,
        pub memory_swappiness: Option<i64>,
        pub oom_kill_disable: Option<bool>,
        pub pids_limit: Option<i64>,
        pub ulimits: Option<Vec<Ulimit>>,
        pub cpu_count: i64,
        pub cpu_percent: i64,
        #[serde(rename = "IOMaximumIOps")]
        pub io_maximum_iops: u64,
        #[serde(rename = "IOMaximumBandwidth")]
        pub io_maximum_bandwidth: u64,
        pub restart_policy: RestartPolicy,
    }
}

wire! {
    /// `200 {"Warnings":[…]}` of `POST /containers/{id}/update` (null without warnings).
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ContainerUpdateResponse {
        pub warnings: Option<Vec<String>>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct LogConfig {
        #[serde(rename = "Type")]
        pub kind: String,
        pub config: Option<BTreeMap<String, String>>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct RestartPolicy {
        /// `""`, `"no"`, `"always"`, `"unless-stopped"`, `"on-failure"`.
        pub name: String,
        pub maximum_retry_count: i64,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct PortBinding {
        pub host_ip: String,
        pub host_port: String,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct WeightDevice {
        pub path: String,
        pub weight: u16,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ThrottleDevice {
        pub path: String,
        pub rate: u64,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct DeviceMapping {
        pub path_on_host: String,
        pub path_in_container: String,
        pub cgroup_permissions: String,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct DeviceRequest {
        pub driver: String,
        pub count: i64,
        #[serde(rename = "DeviceIDs")]
        pub device_ids: Option<Vec<String>>,
        pub capabilities: Option<Vec<Vec<String>>>,
        pub options: Option<BTreeMap<String, String>>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct Ulimit {
        pub name: String,
        pub soft: i64,
        pub hard: i64,
    }
}

wire! {
    /// `HostConfig.Mounts` entry (`--mount`).
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct Mount {
        /// `bind`, `volume`, `tmpfs`, `npipe`.
        #[serde(rename = "Type", skip_serializing_if = "String::is_empty")]
        pub kind: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub source: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub target: String,
        #[serde(skip_serializing_if = "is_false")]
        pub read_only: bool,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub consistency: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub bind_options: Option<BindOptions>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub volume_options: Option<VolumeOptions>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub tmpfs_options: Option<TmpfsOptions>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct BindOptions {
        #[serde(skip_serializing_if = "String::is_empty")]
        pub propagation: String,
        #[serde(skip_serializing_if = "is_false")]
        pub non_recursive: bool,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct VolumeOptions {
        #[serde(skip_serializing_if = "is_false")]
        pub no_copy: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub labels: Option<BTreeMap<String, String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub driver_config: Option<VolumeDriverConfig>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct VolumeDriverConfig {
        #[serde(skip_serializing_if = "String::is_empty")]
        pub name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub options: Option<BTreeMap<String, String>>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct TmpfsOptions {
        #[serde(skip_serializing_if = "is_zero_i64")]
        pub size_bytes: i64,
        #[serde(skip_serializing_if = "is_zero_u64")]
        pub mode: u64,
    }
}

wire! {
    /// `NetworkingConfig` of the create body.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct NetworkingConfig {
        pub endpoints_config: Option<BTreeMap<String, EndpointSettings>>,
    }
}

/// Body of `POST /containers/create`: the `Config` fields at top level plus `HostConfig` and
/// `NetworkingConfig` (Docker's `ContainerConfigWrapper`).
///
/// Decoded by hand rather than with `#[serde(flatten)]`: flattening hides the struct's field
/// names from the deserializer, and request field names match in any case
/// ([`crate::jsonfold`]), as with dockerd.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateBody {
    #[serde(flatten)]
    pub config: ContainerConfig,
    pub host_config: Option<HostConfig>,
    pub networking_config: Option<NetworkingConfig>,
}

impl<'de> Deserialize<'de> for ContainerCreateBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut m = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        // An exact key first, else one equal ignoring case (Go's rule).
        let mut take = |name: &str| {
            let key = if m.contains_key(name) {
                Some(name.to_string())
            } else {
                m.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
            };
            key.and_then(|k| m.remove(&k)).filter(|v| !v.is_null())
        };
        let host_config = take("HostConfig")
            .map(crate::jsonfold::from_value::<HostConfig>)
            .transpose()
            .map_err(D::Error::custom)?;
        let networking_config = take("NetworkingConfig")
            .map(crate::jsonfold::from_value::<NetworkingConfig>)
            .transpose()
            .map_err(D::Error::custom)?;
        let config = crate::jsonfold::from_value::<ContainerConfig>(serde_json::Value::Object(m))
            .map_err(D::Error::custom)?;
        Ok(ContainerCreateBody {
            config,
            host_config,
            networking_config,
        })
    }
}

wire! {
    /// `201 {"Id":"…","Warnings":[]}`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ContainerCreateResponse {
        pub id: String,
        pub warnings: Vec<String>,
    }
}

wire! {
    /// One item of `GET /containers/json`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ContainerSummary {
        pub id: String,
        pub names: Vec<String>,
        pub image: String,
        #[serde(rename = "ImageID")]
        pub image_id: String,
        pub command: String,
        /// Unix seconds.
        pub created: i64,
        pub ports: Vec<Port>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub size_rw: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub size_root_fs: Option<i64>,
        pub labels: Option<BTreeMap<String, String>>,
        /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`.
        pub state: String,
        /// Human text: `Up 2 seconds`, `Exited (137) 3 minutes ago`.
        pub status: String,
        pub host_config: SummaryHostConfig,
        pub network_settings: SummaryNetworkSettings,
        pub mounts: Vec<MountPoint>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Port {
        #[serde(rename = "IP", skip_serializing_if = "String::is_empty")]
        pub ip: String,
        #[serde(rename = "PrivatePort")]
        pub private_port: u16,
        #[serde(rename = "PublicPort", skip_serializing_if = "is_zero_u16")]
        pub public_port: u16,
        #[serde(rename = "Type")]
        pub kind: String,
    }
}

fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct SummaryHostConfig {
        pub network_mode: String,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct SummaryNetworkSettings {
        pub networks: Option<BTreeMap<String, EndpointSettings>>,
    }
}

wire! {
    /// A mount as reported by inspect and list (`types.MountPoint`).
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct MountPoint {
        #[serde(rename = "Type", skip_serializing_if = "String::is_empty")]
        pub kind: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub name: String,
        pub source: String,
        pub destination: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub driver: String,
        pub mode: String,
        #[serde(rename = "RW")]
        pub rw: bool,
        pub propagation: String,
    }
}

wire! {
    /// `State` of `GET /containers/{id}/json`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ContainerState {
        pub status: String,
        pub running: bool,
        pub paused: bool,
        pub restarting: bool,
        #[serde(rename = "OOMKilled")]
        pub oom_killed: bool,
        pub dead: bool,
        pub pid: i64,
        pub exit_code: i64,
        pub error: String,
        /// RFC 3339 with nanoseconds; `0001-01-01T00:00:00Z` when never started.
        pub started_at: String,
        pub finished_at: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub health: Option<Health>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct Health {
        /// `none`, `starting`, `healthy`, `unhealthy`.
        pub status: String,
        pub failing_streak: i64,
        pub log: Vec<HealthcheckResult>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct HealthcheckResult {
        pub start: String,
        pub end: String,
        pub exit_code: i64,
        pub output: String,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct GraphDriverData {
        pub data: Option<BTreeMap<String, String>>,
        pub name: String,
    }
}

wire! {
    /// `GET /containers/{id}/json`, field for field as Docker 20.10 (API 1.41) returns it.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ContainerInspect {
        pub id: String,
        /// RFC 3339 with nanoseconds.
        pub created: String,
        pub path: String,
        pub args: Vec<String>,
        pub state: Option<ContainerState>,
        pub image: String,
        pub resolv_conf_path: String,
        pub hostname_path: String,
        pub hosts_path: String,
        pub log_path: String,
        /// With the leading slash: `/web`.
        pub name: String,
        pub restart_count: i64,
        pub driver: String,
        pub platform: String,
        pub mount_label: String,
        pub process_label: String,
        pub app_armor_profile: String,
        #[serde(rename = "ExecIDs")]
        pub exec_ids: Option<Vec<String>>,
        pub host_config: Option<HostConfig>,
        pub graph_driver: GraphDriverData,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub size_rw: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub size_root_fs: Option<i64>,
        pub mounts: Vec<MountPoint>,
        pub config: Option<ContainerConfig>,
        pub network_settings: Option<NetworkSettings>,
    }
}

wire! {
    /// `NetworkSettings` of container inspect.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct NetworkSettings {
        pub bridge: String,
        #[serde(rename = "SandboxID")]
        pub sandbox_id: String,
        pub hairpin_mode: bool,
        #[serde(rename = "LinkLocalIPv6Address")]
        pub link_local_ipv6_address: String,
        #[serde(rename = "LinkLocalIPv6PrefixLen")]
        pub link_local_ipv6_prefix_len: i64,
        pub ports: Option<PortMap>,
        pub sandbox_key: String,
        #[serde(rename = "SecondaryIPAddresses")]
        pub secondary_ip_addresses: Option<Vec<Address>>,
        #[serde(rename = "SecondaryIPv6Addresses")]
        pub secondary_ipv6_addresses: Option<Vec<Address>>,
        #[serde(rename = "EndpointID")]
        pub endpoint_id: String,
        pub gateway: String,
        #[serde(rename = "GlobalIPv6Address")]
        pub global_ipv6_address: String,
        #[serde(rename = "GlobalIPv6PrefixLen")]
        pub global_ipv6_prefix_len: i64,
        #[serde(rename = "IPAddress")]
        pub ip_address: String,
        #[serde(rename = "IPPrefixLen")]
        pub ip_prefix_len: i64,
        #[serde(rename = "IPv6Gateway")]
        pub ipv6_gateway: String,
        pub mac_address: String,
        pub networks: Option<BTreeMap<String, EndpointSettings>>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct Address {
        pub addr: String,
        pub prefix_len: i64,
    }
}

wire! {
    /// Body of the wait response: `{"Error":null,"StatusCode":0}`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ContainerWaitResponse {
        pub error: Option<WaitExitError>,
        pub status_code: i64,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct WaitExitError {
        pub message: String,
    }
}

wire! {
    /// `GET /containers/{id}/top`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ContainerTopResponse {
        pub processes: Vec<Vec<String>>,
        pub titles: Vec<String>,
    }
}

wire! {
    /// One item of `GET /containers/{id}/changes`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct FilesystemChange {
        pub path: String,
        /// 0 modified, 1 added, 2 deleted.
        pub kind: u8,
    }
}

wire! {
    /// Body of `POST /containers/{id}/exec`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ExecConfig {
        pub user: String,
        pub privileged: bool,
        pub tty: bool,
        /// `[height, width]`, API 1.42+.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub console_size: Option<[u64; 2]>,
        pub attach_stdin: bool,
        pub attach_stderr: bool,
        pub attach_stdout: bool,
        pub detach: bool,
        pub detach_keys: String,
        pub env: Option<Vec<String>>,
        pub working_dir: String,
        pub cmd: Option<Vec<String>>,
    }
}

wire! {
    /// Body of `POST /exec/{id}/start`: `{"Detach":false,"Tty":false}`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ExecStartConfig {
        pub detach: bool,
        pub tty: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub console_size: Option<[u64; 2]>,
    }
}

wire! {
    /// `GET /exec/{id}/json`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ExecInspect {
        #[serde(rename = "ID")]
        pub id: String,
        pub running: bool,
        /// `null` while the process has not exited.
        pub exit_code: Option<i64>,
        pub process_config: Option<ExecProcessConfig>,
        pub open_stdin: bool,
        pub open_stderr: bool,
        pub open_stdout: bool,
        pub can_remove: bool,
        #[serde(rename = "ContainerID")]
        pub container_id: String,
        pub detach_keys: String,
        pub pid: i64,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ExecProcessConfig {
        pub tty: bool,
        pub entrypoint: String,
        pub arguments: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub privileged: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub user: Option<String>,
    }
}

wire! {
    /// `X-Docker-Container-Path-Stat` (base64 JSON) of the archive endpoints.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ContainerPathStat {
        pub name: String,
        pub size: i64,
        /// Go `os.FileMode` bits (type bits in the high bits, permissions in the low 9).
        pub mode: u32,
        /// RFC 3339.
        pub mtime: String,
        pub link_target: String,
    }
}
