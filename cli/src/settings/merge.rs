//! Precedence: the file's values become the defaults of the clap command, so a flag (or its
//! environment variable, which clap reads) still wins over them, and they win over the
//! built-in defaults they replace. The `[registries]` tables, which no flag names, are
//! handed to the parsed registry flags.

use std::ffi::OsString;

use clap::Command;
use stockade_image::registry::RegistryHosts;

use super::Settings;
use crate::args::bundle::BundleCommand;
use crate::args::image::ImageCommand;
use crate::args::registry::RegistryArgs;
use crate::args::Command as Cmd;

/// The (clap argument id, value) pairs the file sets.
fn defaults(s: &Settings) -> Vec<(&'static str, OsString)> {
    let mut out: Vec<(&'static str, OsString)> = Vec::new();
    let mut path = |id, v: &Option<std::path::PathBuf>| {
        if let Some(p) = v {
            out.push((id, p.clone().into_os_string()));
        }
    };
    path("root", &s.root);
    path("image_root", &s.image_root);
    path("storage_root", &s.storage_root);
    if let Some(d) = s.storage_driver {
        out.push(("storage_driver", super::file::driver_flag_value(d).into()));
    }
    if let Some(z) = &s.zfs_dataset {
        out.push(("zfs_dataset", z.into()));
    }
    if let Some(d) = s.log_driver {
        out.push(("log_driver", d.to_string().into()));
    }
    if let Some(v) = &s.log_size {
        out.push(("log_size", v.into()));
    }
    let l = &s.limits;
    if let Some(v) = l.max_unpacked_size {
        out.push(("max_unpacked_size", v.to_string().into()));
    }
    if let Some(v) = l.max_sparse_size {
        out.push(("max_sparse_size", v.to_string().into()));
    }
    if let Some(v) = l.max_entries {
        out.push(("max_entries", v.to_string().into()));
    }
    if let Some(v) = l.max_path_depth {
        out.push(("max_path_depth", v.to_string().into()));
    }
    if let Some(v) = l.max_header_size {
        out.push(("max_header_size", v.to_string().into()));
    }
    out
}

/// `cmd` with the file's values as the defaults of the arguments they name, in every
/// subcommand that has them.
pub fn apply(cmd: Command, settings: &Settings) -> Command {
    defaults(settings)
        .into_iter()
        .fold(cmd, |cmd, (id, value)| set_default(cmd, id, &value))
}

fn set_default(cmd: Command, id: &str, value: &OsString) -> Command {
    let has = cmd.get_arguments().any(|a| a.get_id() == id);
    let mut cmd = if has {
        let v = clap::builder::OsStr::from(value.clone());
        cmd.mut_arg(id, |a| a.default_value(v))
    } else {
        cmd
    };
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, |s| set_default(s, id, value));
    }
    cmd
}

/// Gives the `[registries]` tables to the registry flags of the command, if it pulls.
pub fn attach_registries(command: &mut Cmd, hosts: &RegistryHosts) {
    let registry: Option<&mut RegistryArgs> = match command {
        Cmd::Run(a) => Some(&mut a.registry),
        Cmd::Image(a) => match &mut a.command {
            ImageCommand::Pull(p) => Some(&mut p.registry),
            ImageCommand::Push(p) => Some(&mut p.registry),
            _ => None,
        },
        Cmd::Bundle(b) => match &mut b.command {
            BundleCommand::Create { registry, .. } | BundleCommand::Prepare { registry, .. } => {
                Some(registry)
            }
            _ => None,
        },
        _ => None,
    };
    if let Some(r) = registry {
        r.hosts = hosts.clone();
    }
}

/// Gives the file's `network` to `run`, whose `--image` containers use it when no
/// `--network` is given. Not a clap default: as for the built-in default, an unprivileged
/// user (who cannot have a network of its own) gets the host's instead of an error.
pub fn attach_network(command: &mut Cmd, network: Option<&str>) {
    if let Cmd::Run(a) = command {
        a.default_network = network.map(str::to_string);
    }
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
