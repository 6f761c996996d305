//! `stockade network ls|create|rm`, and the network of a `run --image` container: its
//! namespace and CNI attachment (`stockade_net`), made after the bundle and before create.

use anyhow::Context;
use stockade_image::provision::MadeBundle;
use stockade_net::{attach, NetError, NetworkMode, Networks, PortMapping, DEFAULT_NETWORK};
use stockade_runtime::platform::HOST_TARGET;
use stockade_runtime::target::Target;

use crate::args::lifecycle::RunArgs;
use crate::args::network::{NetworkArgs, NetworkCommand};

/// A network in `network ls`.
#[derive(serde::Serialize)]
struct ListedNetwork {
    name: String,
    subnets: Vec<String>,
    bridge: Option<String>,
    /// The ids of the containers attached to it.
    containers: Vec<String>,
}

impl super::listing::Listed for ListedNetwork {
    fn id(&self) -> String {
        self.name.clone()
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.subnets.join(","),
            self.bridge.clone().unwrap_or_else(|| "-".into()),
            self.containers.len().to_string(),
        ]
    }
}

pub fn run(a: &NetworkArgs) -> anyhow::Result<u8> {
    let nets = Networks::new(&a.storage_root);
    match &a.command {
        NetworkCommand::Ls { output } => {
            let list = nets
                .list()?
                .iter()
                .map(|n| -> anyhow::Result<ListedNetwork> {
                    Ok(ListedNetwork {
                        name: n.name.clone(),
                        subnets: n.subnets().iter().map(ToString::to_string).collect(),
                        bridge: n.bridge().map(str::to_string),
                        containers: attach::users(&a.storage_root, &n.name)?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let head = ["NAME", "SUBNET", "BRIDGE", "CONTAINERS"];
            super::listing::print(output, &head, &list)?;
            Ok(0)
        }
        NetworkCommand::Create { name, subnet } => {
            let subnet = subnet.as_deref().map(str::parse).transpose()?;
            let n = nets.create(name, subnet)?;
            println!("{}", n.name);
            Ok(0)
        }
        NetworkCommand::Rm { names } => {
            for name in names {
                let removed = stockade_net::remove_network(&a.storage_root, name)?;
                for (what, why) in removed.kept {
                    eprintln!("network {name}: kept {what}: {why}");
                }
                println!("{name}");
            }
            Ok(0)
        }
    }
}

/// The network of a `run --image` without `--network` on kernel `target` (a value, the
/// running backend's): the default network where networks are executed and the caller may
/// make them (Linux, root), the host's otherwise.
fn default_mode(target: Target, root: bool) -> NetworkMode {
    match target {
        Target::Linux if root => NetworkMode::Named(DEFAULT_NETWORK.to_string()),
        Target::Linux | Target::FreeBsd => NetworkMode::Host,
    }
}

/// `--network` and `--publish` of `run --image`, checked before anything is made.
pub struct RunNetwork {
    mode: NetworkMode,
    ports: Vec<PortMapping>,
}

impl RunNetwork {
    /// The flags, parsed; without `--network` the config file's `network` as root, else the
    /// default network on Linux as root (a namespace and CNI need root), the host's network
    /// otherwise (and on FreeBSD, where the vnet plan is not executed yet).
    pub fn from_args(a: &RunArgs) -> anyhow::Result<RunNetwork> {
        let root = nix::unistd::geteuid().is_root();
        let mode = match (&a.network.network, &a.default_network) {
            (Some(m), _) => m.parse()?,
            (None, Some(m)) if root => m.parse()?,
            (None, _) => default_mode(HOST_TARGET, root),
        };
        if !root && mode != NetworkMode::Host {
            anyhow::bail!(
                "--network {}: a network of its own needs root (rootless containers use the host's network)",
                a.network.network.as_deref().unwrap_or(DEFAULT_NETWORK)
            );
        }
        let ports = a
            .network
            .publish
            .iter()
            .map(|p| p.parse())
            .collect::<Result<Vec<PortMapping>, _>>()?;
        if !ports.is_empty() && matches!(mode, NetworkMode::Host | NetworkMode::None) {
            return Err(NetError::PortsWithoutNetwork.into());
        }
        Ok(RunNetwork { mode, ports })
    }

    /// Attaches container `name` (whose bundle is `made`) and points its config at the
    /// namespace, rewriting the bundle's config.json. Torn down by `delete`/`--rm` through
    /// the provisioning removal.
    pub fn attach(
        &self,
        storage_root: &std::path::Path,
        name: &str,
        made: &mut MadeBundle,
    ) -> anyhow::Result<()> {
        let Some(att) = attach::attach(storage_root, name, &self.mode, &self.ports)
            .with_context(|| format!("attaching {name} to its network"))?
        else {
            return Ok(());
        };
        let hostname = made.config["hostname"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let names = [name, hostname.as_str()];
        attach::apply_to_config(&mut made.config, &att, &made.bundle, &names)?;
        stockade_image::bundle::write_bundle(&made.bundle, &made.config)?;
        // Every container on the network, this one too, now lists the others.
        stockade_net::hosts::join(storage_root, name, &made.bundle, &names)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_network_follows_the_target_and_root() {
        let named = NetworkMode::Named(DEFAULT_NETWORK.to_string());
        assert_eq!(default_mode(Target::Linux, true), named);
        assert_eq!(default_mode(Target::Linux, false), NetworkMode::Host);
        assert_eq!(default_mode(Target::FreeBsd, true), NetworkMode::Host);
    }
}
