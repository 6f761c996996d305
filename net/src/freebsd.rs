//! The FreeBSD plan — data only, NOT executed by stockade yet. On FreeBSD a container with
//! a network of its own is a vnet jail (`freebsd.jail.vnet: "new"` in its config), one
//! jail per container, and FreeBSD's CNI plugins (the `net/containernetworking-plugins`
//! port, in `/usr/local/libexec/cni`) take the jail's name where Linux's take a namespace
//! path: `CNI_NETNS=<jail name>`. The plugins configure the jail from outside with
//! `ifconfig -j`/`route -j` (FreeBSD 14), so the ADD runs after the jail exists and before
//! its process starts, i.e. between the runtime's create and start; DEL runs before the
//! jail is removed. Published ports would go through pf rdr rules (FreeBSD's portmap).
//! This module builds that sequence so that it is reviewed and golden-tested as data.

use std::path::PathBuf;

use serde_json::{json, Map, Value};

use crate::cni::{self, Attachment, Invocation, Verb};
use crate::config::Network;
use crate::ports::PortMapping;
use crate::NetError;

/// What attaching container `id` to a network would do on FreeBSD.
#[derive(Debug, Clone, PartialEq)]
pub struct VnetPlan {
    /// The jail's name (the container id), which the plugins take as CNI_NETNS.
    pub jail: String,
    /// The config.json change: a vnet jail of its own.
    pub config_patch: Value,
    /// ADD, in order, after `create`; each one's result is the next one's `prevResult`
    /// when executed (not known in the plan).
    pub add: Vec<Invocation>,
    /// DEL, in reverse order, before `delete` removes the jail.
    pub del: Vec<Invocation>,
}

/// The plan for container `id` on `network` with `ports`.
pub fn vnet_plan(
    id: &str,
    network: &Network,
    ports: &[PortMapping],
    plugin_dirs: &[PathBuf],
) -> Result<VnetPlan, NetError> {
    let mut rc = Map::new();
    if !ports.is_empty() {
        rc.insert(
            "portMappings".into(),
            serde_json::to_value(ports).unwrap_or_default(),
        );
    }
    let at = Attachment {
        container_id: id,
        netns: id,
        ifname: crate::attach::IFNAME,
        runtime_config: &rc,
    };
    let add = network
        .plugins()
        .iter()
        .map(|p| cni::invocation(network, p, Verb::Add, &at, plugin_dirs, None))
        .collect::<Result<Vec<_>, _>>()?;
    let del = network
        .plugins()
        .iter()
        .rev()
        .map(|p| cni::invocation(network, p, Verb::Del, &at, plugin_dirs, None))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(VnetPlan {
        jail: id.to_string(),
        config_patch: json!({"freebsd": {"jail": {"vnet": "new"}}}),
        add,
        del,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{new_list, DEFAULT_SUBNET};

    /// The golden plan: the default network on FreeBSD with one published port.
    #[test]
    fn golden_vnet_plan_for_the_default_network() {
        let dirs = vec![PathBuf::from("/usr/local/libexec/cni")];
        let net = Network {
            name: "stockade".into(),
            list: new_list("stockade", DEFAULT_SUBNET, &dirs),
        };
        let ports = ["127.0.0.1:8081:8080".parse().unwrap()];
        let plan = vnet_plan("web", &net, &ports, &dirs).unwrap();
        assert_eq!(plan.jail, "web");
        assert_eq!(plan.config_patch["freebsd"]["jail"]["vnet"], "new");
        let kinds: Vec<_> = plan.add.iter().map(|i| i.plugin.as_str()).collect();
        assert_eq!(kinds, ["bridge", "portmap"]);
        let kinds: Vec<_> = plan.del.iter().map(|i| i.plugin.as_str()).collect();
        assert_eq!(kinds, ["portmap", "bridge"]);
        let env = |i: &Invocation| -> Vec<String> {
            i.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
        };
        assert_eq!(
            env(&plan.add[0]),
            [
                "CNI_COMMAND=ADD",
                "CNI_CONTAINERID=web",
                "CNI_NETNS=web",
                "CNI_IFNAME=eth0",
                "CNI_ARGS=",
                "CNI_PATH=/usr/local/libexec/cni",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            ]
        );
        assert_eq!(env(&plan.del[1])[0], "CNI_COMMAND=DEL");
        assert_eq!(
            plan.add[0].stdin,
            json!({
                "cniVersion": "1.0.0", "name": "stockade", "type": "bridge",
                "bridge": "stockade0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
                "ipam": {"type": "host-local",
                         "ranges": [[{"subnet": "10.89.0.0/24", "gateway": "10.89.0.1"}]],
                         "routes": [{"dst": "0.0.0.0/0"}]}
            })
        );
        assert_eq!(
            plan.add[1].stdin,
            json!({
                "cniVersion": "1.0.0", "name": "stockade", "type": "portmap",
                "capabilities": {"portMappings": true},
                "runtimeConfig": {"portMappings": [
                    {"hostPort": 8081, "containerPort": 8080, "protocol": "tcp", "hostIP": "127.0.0.1"}
                ]}
            })
        );
    }
}
