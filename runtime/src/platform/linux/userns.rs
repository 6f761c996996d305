//! User namespaces: `linux.uidMappings`/`gidMappings` checked the way the kernel would
//! check them (so a bad map fails create with the field's name, not a bare EINVAL from a
//! write to `/proc/PID/uid_map`), and written from the parent once the init is cloned.

use std::path::PathBuf;

use oci_spec::runtime::LinuxIdMapping;

use crate::platform::{ContainerPlan, PlatformError};

/// The kernel's limit on lines in one map (`UID_GID_MAP_MAX_EXTENTS`, Linux 4.15).
pub const MAX_LINES: usize = 340;

/// A map file is written with one write(2) smaller than a page (`map_write` refuses
/// `count >= PAGE_SIZE`); 4096 is the smallest page size of the architectures stockade runs on.
const MAX_BYTES: usize = 4095;

/// One line of a map: `size` ids from `container` inside map to `host` outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// The maps of a new user namespace, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMaps {
    pub uid: Vec<Extent>,
    pub gid: Vec<Extent>,
}

fn invalid(field: &str, detail: String) -> PlatformError {
    PlatformError::Failed {
        call: format!("linux.{field}"),
        detail,
    }
}

impl IdMaps {
    /// The maps `plan` asks for, when it has a new user namespace (`new_userns`); mappings
    /// without one, and a new user namespace without mappings, are refused.
    pub fn from_plan(
        plan: &ContainerPlan,
        new_userns: bool,
    ) -> Result<Option<IdMaps>, PlatformError> {
        let linux = super::linux_config(plan);
        let uid = linux
            .and_then(|l| l.uid_mappings().clone())
            .unwrap_or_default();
        let gid = linux
            .and_then(|l| l.gid_mappings().clone())
            .unwrap_or_default();
        if !new_userns {
            if uid.is_empty() && gid.is_empty() {
                return Ok(None);
            }
            return Err(invalid(
                "uidMappings/gidMappings",
                "mappings are given but linux.namespaces has no new user namespace (add {\"type\": \"user\"} without a path; a user namespace joined by path has maps of its own)".into(),
            ));
        }
        let maps = IdMaps {
            uid: extents("uidMappings", &uid)?,
            gid: extents("gidMappings", &gid)?,
        };
        Ok(Some(maps))
    }

    /// The host uid and gid of the container's root, which owns what the init must open
    /// after it becomes that root (the start fifo).
    pub fn host_root(&self) -> (u32, u32) {
        // extents() refuses maps without the container's 0.
        (
            to_host(&self.uid, 0).unwrap_or(0),
            to_host(&self.gid, 0).unwrap_or(0),
        )
    }

    /// Writes `/proc/PID/gid_map` and `uid_map` of the cloned (and waiting) init. The
    /// `setgroups` file is left at "allow": the writer is privileged, and the process's
    /// own setgroups(2) (process.user.additionalGids) needs it.
    pub fn write(&self, pid: i32) -> Result<(), PlatformError> {
        for (name, extents) in [("gid_map", &self.gid), ("uid_map", &self.uid)] {
            let path = PathBuf::from(format!("/proc/{pid}/{name}"));
            // One write(2): the kernel takes the whole map from the first write only.
            std::fs::write(&path, format_map(extents))
                .map_err(|e| PlatformError::io(format!("writing {}", path.display()), &e))?;
        }
        Ok(())
    }
}

/// The host id of container id `id`, when mapped.
pub fn to_host(extents: &[Extent], id: u32) -> Option<u32> {
    extents
        .iter()
        .find(|e| id >= e.container && (id - e.container) < e.size)
        .map(|e| e.host + (id - e.container))
}

/// The text of a map file: one `container host size` line per extent.
pub fn format_map(extents: &[Extent]) -> String {
    extents
        .iter()
        .map(|e| format!("{} {} {}\n", e.container, e.host, e.size))
        .collect()
}

fn end(first: u32, size: u32) -> u64 {
    u64::from(first) + u64::from(size)
}

/// Checks one map as the kernel's `map_write` would: 1 to 340 lines, no empty range, no
/// range past the last id, no two ranges overlapping on either side; and, as runc does,
/// that the container's root is mapped.
fn extents(field: &str, list: &[LinuxIdMapping]) -> Result<Vec<Extent>, PlatformError> {
    if list.is_empty() {
        return Err(invalid(
            field,
            "a new user namespace needs both uidMappings and gidMappings".into(),
        ));
    }
    if list.len() > MAX_LINES {
        return Err(invalid(
            field,
            format!(
                "{} ranges; the kernel takes at most {MAX_LINES}",
                list.len()
            ),
        ));
    }
    let out: Vec<Extent> = list
        .iter()
        .map(|m| Extent {
            container: m.container_id(),
            host: m.host_id(),
            size: m.size(),
        })
        .collect();
    for (i, e) in out.iter().enumerate() {
        if e.size == 0 {
            return Err(invalid(&format!("{field}[{i}]"), "size is 0".into()));
        }
        // The last id (2^32 - 1) is the kernel's "no id" and cannot be mapped.
        for (side, first) in [("containerID", e.container), ("hostID", e.host)] {
            if end(first, e.size) > u64::from(u32::MAX) {
                return Err(invalid(
                    &format!("{field}[{i}]"),
                    format!(
                        "{side} {first} + size {} goes past the last id {}",
                        e.size,
                        u32::MAX - 1
                    ),
                ));
            }
        }
        for (j, other) in out[..i].iter().enumerate() {
            for (side, a, b) in [
                ("containerID", e.container, other.container),
                ("hostID", e.host, other.host),
            ] {
                if u64::from(a) < end(b, other.size) && u64::from(b) < end(a, e.size) {
                    return Err(invalid(
                        &format!("{field}[{i}]"),
                        format!("its {side} range overlaps that of {field}[{j}]"),
                    ));
                }
            }
        }
    }
    if to_host(&out, 0).is_none() {
        return Err(invalid(
            field,
            "the container's root (id 0) is not mapped; it owns the container's init".into(),
        ));
    }
    let text = format_map(&out);
    if text.len() > MAX_BYTES {
        return Err(invalid(
            field,
            format!(
                "the map is {} bytes; the kernel takes at most {MAX_BYTES} in one write",
                text.len()
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(container: u32, host: u32, size: u32) -> LinuxIdMapping {
        serde_json::from_value(
            serde_json::json!({"containerID": container, "hostID": host, "size": size}),
        )
        .unwrap()
    }

    fn err(list: &[LinuxIdMapping]) -> String {
        extents("uidMappings", list).unwrap_err().to_string()
    }

    #[test]
    fn a_valid_map_is_written_one_line_per_range() {
        let e = extents("uidMappings", &[m(0, 100000, 1), m(1, 200001, 65535)]).unwrap();
        assert_eq!(format_map(&e), "0 100000 1\n1 200001 65535\n");
        assert_eq!(to_host(&e, 0), Some(100000));
        assert_eq!(to_host(&e, 1000), Some(201000));
        assert_eq!(to_host(&e, 65536), None);
    }

    #[test]
    fn overlapping_ranges_are_refused_on_either_side() {
        let inside = err(&[m(0, 100000, 10), m(5, 300000, 10)]);
        assert!(
            inside.contains("uidMappings[1]") && inside.contains("containerID"),
            "{inside}"
        );
        let outside = err(&[m(0, 100000, 10), m(10, 100009, 10)]);
        assert!(
            outside.contains("hostID") && outside.contains("uidMappings[0]"),
            "{outside}"
        );
        // Adjacent ranges do not overlap.
        extents("uidMappings", &[m(0, 100000, 10), m(10, 100010, 10)]).unwrap();
    }

    #[test]
    fn empty_ranges_and_ranges_past_the_last_id_are_refused() {
        assert!(err(&[m(0, 100000, 0)]).contains("size is 0"));
        assert!(err(&[m(0, u32::MAX - 5, 10)]).contains("hostID"));
        assert!(err(&[m(1, 0, u32::MAX)]).contains("past the last id"));
        assert!(err(&[m(u32::MAX, 0, 1)]).contains("containerID"));
        // Every id but the kernel's "no id" (2^32 - 1).
        extents("uidMappings", &[m(0, 0, u32::MAX)]).unwrap();
    }

    #[test]
    fn the_kernels_line_limit_holds() {
        let at = |n: u32| (0..n).map(|i| m(i, 1000 + i, 1)).collect::<Vec<_>>();
        extents("uidMappings", &at(MAX_LINES as u32)).unwrap();
        assert!(err(&at(MAX_LINES as u32 + 1)).contains("at most 340"));
        assert!(err(&[]).contains("both uidMappings and gidMappings"));
    }

    #[test]
    fn a_map_too_long_for_one_write_is_refused() {
        let long: Vec<_> = (0..300u32)
            .map(|i| m(i * 1_000_000, 3_000_000_000 + i * 1_000_000, 999_999))
            .collect();
        assert!(err(&long).contains("bytes"));
    }

    #[test]
    fn the_containers_root_must_be_mapped() {
        assert!(err(&[m(1, 100000, 10)]).contains("root (id 0)"));
    }
}
