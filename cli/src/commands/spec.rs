//! `stockade spec`: write a default FreeBSD config.json.

use std::io::Write;

use anyhow::Context;

use crate::args::lifecycle::SpecArgs;
use stockade_runtime::config::{default_freebsd_config, CONFIG_FILE};

pub fn run(args: &SpecArgs) -> anyhow::Result<u8> {
    let path = args.bundle.join(CONFIG_FILE);
    let mut text = serde_json::to_string_pretty(&default_freebsd_config())?;
    text.push('\n');
    // create_new: never overwrite a config someone wrote.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| match path.exists() {
            true => format!(
                "{} already exists; remove it first or choose another --bundle",
                path.display()
            ),
            false => format!("creating {}", path.display()),
        })?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(0)
}
