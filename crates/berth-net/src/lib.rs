//! berth-net: Docker's networking model for berth. Bridges, veth pairs and network namespaces
//! are set up through netlink, addresses come from a persistent IPAM, published ports are
//! forwarded by the kernel (a table of berth's own) or a userland proxy, and user-defined
//! networks get an embedded DNS server (`dns`). The engine calls this crate; it knows no HTTP.
