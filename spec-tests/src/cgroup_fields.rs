//! The newer cgroup fields: `cpu.burst`, `cpu.idle`, `blockIO.weightDevice`,
//! `blockIO.leafWeight` and `rdma`, read back from the host's cgroup files, or refused by
//! field name where this host's controllers cannot carry them. Group `cgroups`.

#[cfg(target_os = "linux")]
use serde_json::json;

use crate::ctx::Ctx;
use crate::harness::{Test, TestResult};

pub fn tests() -> Vec<Test> {
    vec![
        test!("cgroups", cpu_burst_and_idle_reach_the_hosts_cpu_files),
        test!(
            "cgroups",
            block_io_device_and_leaf_weights_are_written_or_refused
        ),
        test!("cgroups", rdma_limits_are_written_or_refused_by_name),
    ]
}

#[cfg(not(target_os = "linux"))]
fn linux_only(_ctx: &Ctx) -> TestResult {
    Err(crate::harness::Fail::Skip(
        "Linux cgroups: not this platform".into(),
    ))
}

#[cfg(not(target_os = "linux"))]
use linux_only as cpu_burst_and_idle_reach_the_hosts_cpu_files;
#[cfg(not(target_os = "linux"))]
use linux_only as block_io_device_and_leaf_weights_are_written_or_refused;
#[cfg(not(target_os = "linux"))]
use linux_only as rdma_limits_are_written_or_refused_by_name;

#[cfg(target_os = "linux")]
fn read(dir: &str, file: &str) -> String {
    crate::ctx::read_text(std::path::Path::new(&format!("{dir}/{file}")))
        .trim()
        .to_string()
}

/// Creates a `sleep` container with `resources`; Ok(Some(pid)) when create succeeded,
/// Ok(None) with the error text in `err` when it failed.
#[cfg(target_os = "linux")]
fn create_with(
    ctx: &Ctx,
    resources: serde_json::Value,
    err: &mut String,
) -> Result<Option<(String, i32)>, crate::harness::Fail> {
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    b.config["linux"]["resources"] = resources;
    let id = ctx.id("cgfields");
    let out = ctx.create(&id, &b)?;
    if !out.ok() {
        *err = out.stderr.clone();
        ctx.ensure_root_empty("after a refused field")?;
        return Ok(None);
    }
    Ok(Some((id.clone(), ctx.pid(&id)?)))
}

#[cfg(target_os = "linux")]
fn cpu_burst_and_idle_reach_the_hosts_cpu_files(ctx: &Ctx) -> TestResult {
    let mut err = String::new();
    let resources = json!({"cpu": {"quota": 50000, "period": 100000, "burst": 20000, "idle": 1}});
    let Some((id, pid)) = create_with(ctx, resources, &mut err)? else {
        // Only a kernel without the files (before 5.14/5.15) may refuse, and by name.
        ensure!(
            err.contains("does not exist") && err.contains("linux.resources.cpu."),
            "{err}"
        );
        return Err(crate::harness::Fail::Skip(format!(
            "this kernel lacks the files: {err}"
        )));
    };
    let (dir, v2) = crate::limits::cgroup_dir_of(pid, "cpu")?;
    let burst = if v2 {
        "cpu.max.burst"
    } else {
        "cpu.cfs_burst_us"
    };
    ensure_eq!(read(&dir, burst), "20000", "{burst}");
    ensure_eq!(read(&dir, "cpu.idle"), "1", "cpu.idle");
    ctx.sk(&["update", "--resources", "-", &id])
        .stdin_bytes(br#"{"cpu":{"burst":0,"idle":0}}"#)
        .run()?
        .expect_ok()?;
    ensure_eq!(read(&dir, burst), "0", "{burst} lifted by update");
    ensure_eq!(read(&dir, "cpu.idle"), "0", "cpu.idle lifted by update");
    Ok(())
}

#[cfg(target_os = "linux")]
fn block_io_device_and_leaf_weights_are_written_or_refused(ctx: &Ctx) -> TestResult {
    // A block device of this host and whether its I/O scheduler keeps per-cgroup weights.
    let name = std::fs::read_dir("/sys/block")
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| !n.starts_with("ram"))
        .ok_or(crate::harness::Fail::Skip(
            "no block device on this host".into(),
        ))?;
    let dev = crate::ctx::read_text(std::path::Path::new(&format!("/sys/block/{name}/dev")));
    let dev = dev.trim();
    let (major, minor) = dev
        .split_once(':')
        .ok_or(format!("/sys/block/{name}/dev: {dev:?}"))?;
    let (major, minor): (i64, i64) = (
        major.parse().map_err(|e| format!("{dev}: {e}"))?,
        minor.parse().map_err(|e| format!("{dev}: {e}"))?,
    );
    let scheduler = crate::ctx::read_text(std::path::Path::new(&format!(
        "/sys/block/{name}/queue/scheduler"
    )));
    let bfq = scheduler.contains("[bfq]");

    // Leaf weights belonged to CFQ (gone since Linux 5.0) and never existed on v2.
    let mut err = String::new();
    let leaf = create_with(ctx, json!({"blockIO": {"leafWeight": 300}}), &mut err)?;
    match leaf {
        None => ensure!(err.contains("linux.resources.blockIO.leafWeight"), "{err}"),
        Some((_, pid)) => {
            let (dir, _) = crate::limits::cgroup_dir_of(pid, "blkio")?;
            ensure_eq!(read(&dir, "blkio.leaf_weight"), "300", "blkio.leaf_weight");
        }
    }

    let mut err = String::new();
    let device =
        json!({"blockIO": {"weightDevice": [{"major": major, "minor": minor, "weight": 200}]}});
    match create_with(ctx, device, &mut err)? {
        Some((_, pid)) => {
            let v1 = crate::limits::cgroup_dir_of(pid, "blkio");
            let (dir, v2) = match v1 {
                Ok(found) => found,
                Err(_) => crate::limits::cgroup_dir_of(pid, "io")?,
            };
            let text = if v2 {
                read(&dir, "io.weight")
            } else if std::path::Path::new(&dir)
                .join("blkio.weight_device")
                .exists()
            {
                read(&dir, "blkio.weight_device")
            } else {
                read(&dir, "blkio.bfq.weight_device")
            };
            ensure!(
                text.contains(&format!("{dev} 200")),
                "{dev} 200 in {text:?} ({dir})"
            );
        }
        None => {
            ensure!(
                !bfq,
                "{name} uses bfq, which keeps device weights, yet create failed: {err}"
            );
            ensure!(
                err.contains("linux.resources.blockIO.weight"),
                "the error names the field: {err}"
            );
        }
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn rdma_limits_are_written_or_refused_by_name(ctx: &Ctx) -> TestResult {
    let has_rdma = crate::ctx::read_text(std::path::Path::new("/proc/cgroups"))
        .lines()
        .any(|l| l.split_whitespace().next() == Some("rdma") && l.ends_with('1'));
    let mut err = String::new();
    let made = create_with(
        ctx,
        json!({"rdma": {"mlx4_0": {"hcaHandles": 2}}}),
        &mut err,
    )?;
    match (made, has_rdma) {
        (Some(_), false) => Err("rdma limits accepted on a host without the rdma controller"
            .to_string()
            .into()),
        (None, false) => {
            ensure!(
                err.contains("linux.resources.rdma"),
                "the error names the field: {err}"
            );
            Ok(())
        }
        (Some((_, pid)), true) => {
            let (dir, _) = crate::limits::cgroup_dir_of(pid, "rdma")?;
            let text = read(&dir, "rdma.max");
            ensure!(text.contains("mlx4_0 hca_handle=2"), "rdma.max: {text:?}");
            Ok(())
        }
        (None, true) => {
            // The controller is there but the device is not: the kernel refuses the line.
            ensure!(
                err.contains("linux.resources.rdma"),
                "the error names the field: {err}"
            );
            Ok(())
        }
    }
}
