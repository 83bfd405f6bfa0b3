//! Network wire types, including the per-network endpoint settings used by containers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

wire! {
    /// A container's endpoint on one network (create body `NetworkingConfig.EndpointsConfig`,
    /// inspect `NetworkSettings.Networks`, list `NetworkSettings.Networks`).
    ///
    /// Field order is the 1.41 response order; `GwPriority` (1.48) and `DNSNames` (1.44), which
    /// the CLI 28 sends, are accepted and only emitted when set.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct EndpointSettings {
        #[serde(rename = "IPAMConfig")]
        pub ipam_config: Option<EndpointIpamConfig>,
        #[serde(rename = "Links")]
        pub links: Option<Vec<String>>,
        #[serde(rename = "Aliases")]
        pub aliases: Option<Vec<String>>,
        #[serde(rename = "NetworkID")]
        pub network_id: String,
        #[serde(rename = "EndpointID")]
        pub endpoint_id: String,
        #[serde(rename = "Gateway")]
        pub gateway: String,
        #[serde(rename = "IPAddress")]
        pub ip_address: String,
        #[serde(rename = "IPPrefixLen")]
        pub ip_prefix_len: i64,
        #[serde(rename = "IPv6Gateway")]
        pub ipv6_gateway: String,
        #[serde(rename = "GlobalIPv6Address")]
        pub global_ipv6_address: String,
        #[serde(rename = "GlobalIPv6PrefixLen")]
        pub global_ipv6_prefix_len: i64,
        #[serde(rename = "MacAddress")]
        pub mac_address: String,
        #[serde(rename = "DriverOpts")]
        pub driver_opts: Option<BTreeMap<String, String>>,
        #[serde(rename = "GwPriority", skip_serializing_if = "super::is_zero_i64")]
        pub gw_priority: i64,
        #[serde(rename = "DNSNames", skip_serializing_if = "Option::is_none")]
        pub dns_names: Option<Vec<String>>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct EndpointIpamConfig {
        #[serde(rename = "IPv4Address", skip_serializing_if = "String::is_empty")]
        pub ipv4_address: String,
        #[serde(rename = "IPv6Address", skip_serializing_if = "String::is_empty")]
        pub ipv6_address: String,
        #[serde(rename = "LinkLocalIPs", skip_serializing_if = "Option::is_none")]
        pub link_local_ips: Option<Vec<String>>,
    }
}

wire! {
    /// `GET /networks/{id}`, an item of `GET /networks`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct NetworkResource {
        pub name: String,
        pub id: String,
        /// RFC 3339 with nanoseconds.
        pub created: String,
        pub scope: String,
        pub driver: String,
        #[serde(rename = "EnableIPv6")]
        pub enable_ipv6: bool,
        #[serde(rename = "IPAM")]
        pub ipam: Ipam,
        pub internal: bool,
        pub attachable: bool,
        pub ingress: bool,
        pub config_from: ConfigReference,
        pub config_only: bool,
        pub containers: Option<BTreeMap<String, NetworkEndpointResource>>,
        pub options: Option<BTreeMap<String, String>>,
        pub labels: Option<BTreeMap<String, String>>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct Ipam {
        pub driver: String,
        pub options: Option<BTreeMap<String, String>>,
        pub config: Option<Vec<IpamConfig>>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct IpamConfig {
        #[serde(skip_serializing_if = "String::is_empty")]
        pub subnet: String,
        #[serde(rename = "IPRange", skip_serializing_if = "String::is_empty")]
        pub ip_range: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub gateway: String,
        #[serde(rename = "AuxiliaryAddresses", skip_serializing_if = "Option::is_none")]
        pub auxiliary_addresses: Option<BTreeMap<String, String>>,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ConfigReference {
        pub network: String,
    }
}

wire! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct NetworkEndpointResource {
        pub name: String,
        #[serde(rename = "EndpointID")]
        pub endpoint_id: String,
        pub mac_address: String,
        #[serde(rename = "IPv4Address")]
        pub ipv4_address: String,
        #[serde(rename = "IPv6Address")]
        pub ipv6_address: String,
    }
}

wire! {
    /// Body of `POST /networks/create`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct NetworkCreateRequest {
        pub name: String,
        pub check_duplicate: bool,
        pub driver: String,
        pub scope: String,
        #[serde(rename = "EnableIPv6")]
        pub enable_ipv6: bool,
        /// API 1.47 (`--ipv4=false`); absent means true.
        #[serde(rename = "EnableIPv4")]
        pub enable_ipv4: Option<bool>,
        #[serde(rename = "IPAM")]
        pub ipam: Option<Ipam>,
        pub internal: bool,
        pub attachable: bool,
        pub ingress: bool,
        pub config_only: bool,
        pub config_from: Option<ConfigReference>,
        pub options: Option<BTreeMap<String, String>>,
        pub labels: Option<BTreeMap<String, String>>,
    }
}

wire! {
    /// `201 {"Id":"…","Warning":""}`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct NetworkCreateResponse {
        pub id: String,
        pub warning: String,
    }
}

wire! {
    /// Body of `POST /networks/{id}/connect`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct NetworkConnectRequest {
        pub container: String,
        pub endpoint_config: Option<EndpointSettings>,
    }
}

wire! {
    /// Body of `POST /networks/{id}/disconnect`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct NetworkDisconnectRequest {
        pub container: String,
        pub force: bool,
    }
}
