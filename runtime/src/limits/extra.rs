//! The cgroup fields that only the newest kernels or I/O schedulers carry: `cpu.burst`,
//! `cpu.idle`, `blockIO.leafWeight`, `blockIO.weightDevice` and `rdma`. Parsed here; the
//! Linux backend writes them where the host's controllers have the files and refuses them
//! by field where it does not.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxResources};

use super::{LimitsError, ResourceLimits};

/// One `blockIO.weightDevice` entry: weights for device `major:minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightDevice {
    pub major: u32,
    pub minor: u32,
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
}

/// One `rdma` entry: the most HCA handles and objects the cgroup may hold on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RdmaLimit {
    pub hca_handles: Option<u32>,
    pub hca_objects: Option<u32>,
}

fn weight(field: &'static str, w: u16) -> Result<u16, LimitsError> {
    match w {
        10..=1000 => Ok(w),
        _ => Err(LimitsError::Invalid {
            field,
            value: w.to_string(),
            expected: "a weight from 10 to 1000",
        }),
    }
}

/// `cpu.burst` (microseconds, 0 lifts) and `cpu.idle` (0 or 1).
pub fn cpu(limits: &mut ResourceLimits, c: &LinuxCpu) -> Result<(), LimitsError> {
    if let Some(b) = c.burst() {
        limits.cpu_burst = Some(b).filter(|b| *b > 0);
    }
    if let Some(i) = c.idle() {
        if !(0..=1).contains(&i) {
            return Err(LimitsError::Invalid {
                field: "cpu.idle",
                value: i.to_string(),
                expected: "0, or 1 for the idle scheduling policy",
            });
        }
        limits.cpu_idle = Some(i == 1).filter(|i| *i);
    }
    Ok(())
}

/// `blockIO.leafWeight` and `blockIO.weightDevice` (a list given replaces the one in force).
pub fn block_io(limits: &mut ResourceLimits, b: &LinuxBlockIo) -> Result<(), LimitsError> {
    if let Some(w) = b.leaf_weight() {
        limits.blkio_leaf_weight = match w {
            0 => None,
            w => Some(weight("blockIO.leafWeight", w)?),
        };
    }
    if let Some(list) = b.weight_device() {
        limits.blkio_weight_device.clear();
        for d in list {
            let num = |v: i64| u32::try_from(v).ok().filter(|n| *n < (1 << 20));
            let (Some(major), Some(minor)) = (num(d.major()), num(d.minor())) else {
                return Err(LimitsError::Invalid {
                    field: "blockIO.weightDevice",
                    value: format!("{}:{}", d.major(), d.minor()),
                    expected: "a device major:minor",
                });
            };
            let entry = WeightDevice {
                major,
                minor,
                weight: d
                    .weight()
                    .map(|w| weight("blockIO.weightDevice.weight", w))
                    .transpose()?,
                leaf_weight: d
                    .leaf_weight()
                    .map(|w| weight("blockIO.weightDevice.leafWeight", w))
                    .transpose()?,
            };
            if entry.weight.is_some() || entry.leaf_weight.is_some() {
                limits.blkio_weight_device.push(entry);
            }
        }
    }
    Ok(())
}

/// `rdma`: a map given replaces the one in force.
pub fn rdma(limits: &mut ResourceLimits, r: &LinuxResources) -> Result<(), LimitsError> {
    let Some(map) = r.rdma() else { return Ok(()) };
    let mut out = BTreeMap::new();
    for (device, l) in map {
        if device.is_empty()
            || device.len() > 64
            || device.contains(|c: char| c.is_whitespace() || c == '/')
        {
            return Err(LimitsError::Invalid {
                field: "rdma",
                value: stockade_quote::quote(device).to_string(),
                expected: "an RDMA device name such as mlx4_0",
            });
        }
        if l.hca_handles().is_some() || l.hca_objects().is_some() {
            out.insert(
                device.clone(),
                RdmaLimit {
                    hca_handles: l.hca_handles(),
                    hca_objects: l.hca_objects(),
                },
            );
        }
    }
    limits.rdma = out;
    Ok(())
}

/// The `rdma.max` line of one device: an unset count is "max".
pub fn rdma_line(device: &str, l: Option<&RdmaLimit>) -> String {
    let n = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
    format!(
        "{device} hca_handle={} hca_object={}",
        n(l.and_then(|l| l.hca_handles)),
        n(l.and_then(|l| l.hca_objects))
    )
}

#[cfg(test)]
mod tests {
    use super::super::from_resources;

    fn parse(json: &str) -> Result<super::ResourceLimits, String> {
        let r: oci_spec::runtime::LinuxResources = serde_json::from_str(json).unwrap();
        from_resources(Some(&r), crate::target::Target::Linux)
            .map(|(l, _)| l)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn fields_are_parsed_and_bad_values_refused_by_name() {
        let l = parse(
            r#"{"cpu":{"burst":5000,"idle":1},"blockIO":{"leafWeight":300,
                "weightDevice":[{"major":8,"minor":0,"weight":200},{"major":8,"minor":16}]},
                "rdma":{"mlx4_0":{"hcaHandles":2}}}"#,
        )
        .unwrap();
        assert_eq!((l.cpu_burst, l.cpu_idle), (Some(5000), Some(true)));
        assert_eq!(l.blkio_leaf_weight, Some(300));
        assert_eq!(
            l.blkio_weight_device.len(),
            1,
            "an entry with no weight is nothing"
        );
        assert_eq!(
            super::rdma_line("mlx4_0", l.rdma.get("mlx4_0")),
            "mlx4_0 hca_handle=2 hca_object=max"
        );
        for (json, name) in [
            (r#"{"cpu":{"idle":2}}"#, "cpu.idle"),
            (r#"{"blockIO":{"leafWeight":5}}"#, "blockIO.leafWeight"),
            (
                r#"{"blockIO":{"weightDevice":[{"major":8,"minor":0,"weight":2000}]}}"#,
                "weightDevice.weight",
            ),
            (
                r#"{"blockIO":{"weightDevice":[{"major":-1,"minor":0,"weight":200}]}}"#,
                "blockIO.weightDevice",
            ),
            (r#"{"rdma":{"a b":{"hcaHandles":1}}}"#, "rdma"),
        ] {
            let e = parse(json).unwrap_err();
            assert!(e.contains(name), "{json}: {e}");
        }
    }
}
