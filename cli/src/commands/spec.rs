//! `stockade spec`: write a default FreeBSD config.json, making the bundle directory when
//! it is missing (its parent must exist: a mistyped path is not silently made).

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::args::lifecycle::SpecArgs;
use stockade_runtime::config::{default_freebsd_config, CONFIG_FILE};

pub fn run(args: &SpecArgs) -> anyhow::Result<u8> {
    make_bundle_dir(&args.bundle)?;
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

/// Makes the bundle directory `dir` unless it exists; its parent must exist.
fn make_bundle_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            anyhow::bail!(
                "--bundle {}: its parent directory {} does not exist; make it first",
                stockade_quote::quote_os(dir.as_os_str()),
                stockade_quote::quote_os(parent.as_os_str())
            )
        }
        Err(e) => Err(e).with_context(|| format!("making the bundle directory {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_directory_is_made_but_not_its_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("b");
        make_bundle_dir(&dir).unwrap();
        assert!(dir.is_dir());
        // Existing: fine (the config.json check comes after).
        make_bundle_dir(&dir).unwrap();
        let deep = tmp.path().join("missing/b");
        let e = make_bundle_dir(&deep).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
        assert!(!deep.parent().unwrap().exists());
    }
}
