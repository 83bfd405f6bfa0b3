//! `berth registry …`: the registry server face of the binary.

use clap::Args;

#[derive(Args)]
pub struct RegistryArgs {}

pub fn run(_args: RegistryArgs) -> anyhow::Result<()> {
    anyhow::bail!("berth registry: not implemented yet")
}
