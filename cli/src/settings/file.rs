//! Reading `stockade.conf` into typed [`Settings`]: unknown keys and bad values are errors
//! naming the file, the line and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::{Deserialize, Deserializer};
use stockade_image::registry::mirrors::{self, HostSettings, RegistryHosts};
use stockade_image::rootfs::unpack::SizeLimit;

use crate::args::storage::DriverKind;

/// Largest config file read (it is a few lines; this bounds a mistaken path).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The config file, as written.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `--root`: the state directory.
    pub root: Option<PathBuf>,
    /// `--image-root`: the image store.
    pub image_root: Option<PathBuf>,
    /// `--storage-root`.
    pub storage_root: Option<PathBuf>,
    /// `--storage-driver`: the flag's own values (checked by its clap definition).
    #[serde(default, deserialize_with = "storage_driver")]
    pub storage_driver: Option<DriverKind>,
    /// `--zfs-dataset`.
    pub zfs_dataset: Option<String>,
    /// The network of a `run --image` container without `--network` (as root): `host`,
    /// `none` or a network's name, checked as the flag is.
    #[serde(default, deserialize_with = "network_mode")]
    pub network: Option<String>,
    /// `--log-driver` of `run --image -d`: k8s-file or json-file.
    #[serde(default, deserialize_with = "log_driver")]
    pub log_driver: Option<stockade_monitor::log::LogDriver>,
    /// `--log-size` of `run --image -d`: the size at which a service's log is rotated.
    #[serde(default, deserialize_with = "log_size")]
    pub log_size: Option<String>,
    /// The unpack bounds (`--max-unpacked-size` …).
    #[serde(default)]
    pub limits: Limits,
    /// `[registries."HOST"]`.
    #[serde(default)]
    pub registries: BTreeMap<String, Registry>,
}

/// `[limits]`: the flags of the same names (docs/storage.md, "Bounds on images").
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, deserialize_with = "size_limit")]
    pub max_unpacked_size: Option<SizeLimit>,
    #[serde(default, deserialize_with = "size_limit")]
    pub max_sparse_size: Option<SizeLimit>,
    pub max_entries: Option<u64>,
    pub max_path_depth: Option<usize>,
    #[serde(default, deserialize_with = "byte_count")]
    pub max_header_size: Option<u64>,
}

/// `[registries."HOST"]`.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    #[serde(default)]
    pub insecure: bool,
    #[serde(default, deserialize_with = "mirror_list")]
    pub mirrors: Vec<String>,
    pub auth_file: Option<PathBuf>,
}

/// Errors of reading the config file.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {}: larger than {MAX_CONFIG_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}:{line}: {}{message}", path.display(), key.as_ref().map(|k| format!("key {k}: ")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: usize,
        key: Option<String>,
        message: String,
    },
}

/// Reads and checks `path`.
pub fn read(path: &Path) -> Result<Settings, SettingsError> {
    use std::io::Read;
    let read_err = |source| SettingsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    f.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(SettingsError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    parse(&text, path)
}

/// Parses the text of the file `path`.
pub fn parse(text: &str, path: &Path) -> Result<Settings, SettingsError> {
    let invalid = |span: Option<std::ops::Range<usize>>, message: String| {
        let start = span.map(|s| s.start).unwrap_or(0).min(text.len());
        let line = text[..start].matches('\n').count() + 1;
        // The key is what stands before `=` on that line (for a table error, none).
        let line_text = text.lines().nth(line - 1).unwrap_or("");
        let key = line_text
            .split_once('=')
            .map(|(k, _)| k.trim().to_string())
            .filter(|k| !k.is_empty());
        SettingsError::Invalid {
            path: path.to_path_buf(),
            line,
            key,
            message,
        }
    };
    toml::from_str(text).map_err(|e| invalid(e.span(), e.message().trim().to_string()))
}

impl Settings {
    /// The `[registries]` tables in the image library's form.
    pub fn registry_hosts(&self) -> RegistryHosts {
        RegistryHosts::new(
            self.registries
                .iter()
                .map(|(host, r)| {
                    let settings = HostSettings {
                        insecure: r.insecure,
                        mirrors: r.mirrors.clone(),
                        auth_file: r.auth_file.clone(),
                    };
                    (host.clone(), settings)
                })
                .collect(),
        )
    }
}

fn storage_driver<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DriverKind>, D::Error> {
    let s = String::deserialize(d)?;
    DriverKind::from_str(&s, false).map(Some).map_err(|_| {
        let names: Vec<String> = DriverKind::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        serde::de::Error::custom(format!(
            "unknown storage driver {}, expected one of {}",
            stockade_quote::quote(&s),
            names.join(", ")
        ))
    })
}

/// The `--storage-driver` value `d` is.
pub fn driver_flag_value(d: DriverKind) -> String {
    d.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

fn log_driver<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<stockade_monitor::log::LogDriver>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

/// Checked here (so the error names the line), handed to the flag as written.
fn log_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    stockade_monitor::log::parse_size(&s).map_err(serde::de::Error::custom)?;
    Ok(Some(s))
}

fn network_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<stockade_net::NetworkMode>()
        .map_err(serde::de::Error::custom)?;
    Ok(Some(s))
}

fn size_limit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SizeLimit>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

fn byte_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match size_limit(d)? {
        Some(SizeLimit::Bytes(b)) => Ok(Some(b)),
        _ => Err(serde::de::Error::custom(
            "a number of bytes is needed here, not auto",
        )),
    }
}

fn mirror_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    for m in &list {
        mirrors::check_mirror(m).map_err(serde::de::Error::custom)?;
    }
    Ok(list)
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
