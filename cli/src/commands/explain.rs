//! `stockade explain`: what `create` would do, without touching the system.

use anyhow::Context;

use crate::args::lifecycle::{ExplainArgs, ExplainFormat};
use stockade_runtime::config::ContainerConfig;
use stockade_runtime::explain::{explain, render_jail_conf};
use stockade_runtime::id::ContainerId;

pub fn run(args: &ExplainArgs) -> anyhow::Result<u8> {
    let id = ContainerId::parse(&args.id)?;
    let cfg = ContainerConfig::load(&args.bundle)?;
    let plan = explain(&cfg, &id).context("planning the container")?;
    match args.format {
        ExplainFormat::JailConf => print!("{}", render_jail_conf(&plan)),
        ExplainFormat::Json => println!("{}", serde_json::to_string_pretty(&plan.to_json())?),
    }
    Ok(0)
}
