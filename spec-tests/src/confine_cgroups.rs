//! Linux cgroup settings beyond the limits of issue 3: cpu shares and cpusets, memory
//! reservation, `unified` keys, block I/O throttles and hugetlb, read back from the host's
//! cgroup files, changed by `update`, or refused naming the field where the host lacks the
//! controller. Group `cgroups`.

#[cfg(target_os = "linux")]
use serde_json::json;

#[cfg(target_os = "linux")]
use crate::confine_ns::host_block_device;
use crate::ctx::Ctx;
use crate::harness::{Test, TestResult};

pub fn tests() -> Vec<Test> {
    vec![
        test!("cgroups", unified_entries_are_written_or_refused_by_key),
        test!("cgroups", block_io_throttles_reach_the_hosts_cgroup_files),
        test!(
            "cgroups",
            hugetlb_limits_are_written_and_missing_controllers_named
        ),
        test!(
            "cgroups",
            cgroup_settings_reach_the_hosts_cgroup_files_and_update_changes_them
        ),
    ]
}

#[cfg(not(target_os = "linux"))]
fn linux_only(_ctx: &Ctx) -> TestResult {
    Err(crate::harness::Fail::Skip(
        "Linux cgroups: not this platform".into(),
    ))
}

#[cfg(not(target_os = "linux"))]
use linux_only as cgroup_settings_reach_the_hosts_cgroup_files_and_update_changes_them;
#[cfg(not(target_os = "linux"))]
use linux_only as unified_entries_are_written_or_refused_by_key;
#[cfg(not(target_os = "linux"))]
use linux_only as block_io_throttles_reach_the_hosts_cgroup_files;
#[cfg(not(target_os = "linux"))]
use linux_only as hugetlb_limits_are_written_and_missing_controllers_named;

/// One cgroup file of the init's cgroup for `controller`, trimmed; a host without the
/// controller skips the test.
#[cfg(target_os = "linux")]
fn cgroup_value(
    pid: i32,
    controller: &str,
    v1: &str,
    v2: &str,
) -> Result<String, crate::harness::Fail> {
    let (dir, is_v2) = crate::limits::cgroup_dir_of(pid, controller)?;
    let file = format!("{dir}/{}", if is_v2 { v2 } else { v1 });
    Ok(crate::ctx::read_text(std::path::Path::new(&file))
        .trim()
        .to_string())
}

#[cfg(target_os = "linux")]
fn cgroup_settings_reach_the_hosts_cgroup_files_and_update_changes_them(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    b.config["linux"]["resources"] = json!({
        "cpu": { "shares": 512, "cpus": "0", "mems": "0" },
        "memory": { "reservation": 8388608 }
    });
    b.save()?;
    let id = ctx.id("cgfields");
    ctx.create_ok(&id, &b)?;
    let pid = ctx.pid(&id)?;
    let shares = cgroup_value(pid, "cpu", "cpu.shares", "cpu.weight")?;
    ensure!(
        shares == "512" || shares == "20",
        "cpu.shares 512 (v2 weight 20): {shares}"
    );
    ensure_eq!(
        cgroup_value(pid, "cpuset", "cpuset.cpus", "cpuset.cpus")?,
        "0",
        "cpuset.cpus"
    );
    ensure_eq!(
        cgroup_value(pid, "cpuset", "cpuset.mems", "cpuset.mems")?,
        "0",
        "cpuset.mems"
    );
    ensure_eq!(
        cgroup_value(pid, "memory", "memory.soft_limit_in_bytes", "memory.low")?,
        "8388608",
        "memory.reservation"
    );
    ctx.sk(&["update", "--resources", "-", &id])
        .stdin_bytes(br#"{"cpu":{"shares":256}}"#)
        .run()?
        .expect_ok()?;
    let shares = cgroup_value(pid, "cpu", "cpu.shares", "cpu.weight")?;
    ensure!(
        shares == "256" || shares == "10",
        "cpu.shares after update: {shares}"
    );
    Ok(())
}

/// `linux.resources.unified` goes to the container's v2 cgroup: written when the unified
/// hierarchy has the file's controller, refused naming the key when it does not.
#[cfg(target_os = "linux")]
fn unified_entries_are_written_or_refused_by_key(ctx: &Ctx) -> TestResult {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let mount = text
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            right
                .starts_with("cgroup2 ")
                .then(|| left.split(' ').nth(4).map(str::to_string))?
        })
        .ok_or_else(|| crate::harness::Fail::Skip("no cgroup2 mount on this host".into()))?;
    let controllers =
        std::fs::read_to_string(format!("{mount}/cgroup.controllers")).unwrap_or_default();
    let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
    let (good, bad) = match (has("hugetlb"), has("pids")) {
        (true, false) => (("hugetlb.2MB.max", "4194304"), "pids.max"),
        (_, true) => (("pids.max", "42"), "nosuch.max"),
        _ => {
            return Err(crate::harness::Fail::Skip(format!(
                "v2 controllers {controllers:?}"
            )))
        }
    };
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    b.config["linux"]["resources"] = json!({ "unified": { good.0: good.1 } });
    b.save()?;
    let id = ctx.id("unified");
    ctx.create_ok(&id, &b)?;
    let pid = ctx.pid(&id)?;
    let membership = crate::ctx::read_text(std::path::Path::new(&format!("/proc/{pid}/cgroup")));
    let path = membership
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("the init has no v2 cgroup")?;
    let value = crate::ctx::read_text(std::path::Path::new(&format!("{mount}{path}/{}", good.0)));
    ensure_eq!(value.trim(), good.1, "{} in the init's v2 cgroup", good.0);
    let mut b = ctx.bundle(&["true"])?;
    b.config["linux"]["resources"] = json!({ "unified": { bad: "1" } });
    b.save()?;
    let id = ctx.id("unifiedbad");
    let out = ctx.create(&id, &b)?;
    out.expect_failure("create with a unified key whose controller is not in v2")?;
    ensure!(
        out.stderr.contains("linux.resources.unified") && out.stderr.contains(bad),
        "the error names the key: {:?}",
        out.stderr
    );
    Ok(())
}

#[cfg(target_os = "linux")]
fn block_io_throttles_reach_the_hosts_cgroup_files(ctx: &Ctx) -> TestResult {
    let (major, minor) = host_block_device().ok_or("this host lists no block device")?;
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    b.config["linux"]["resources"] = json!({ "blockIO": {
        "throttleReadBpsDevice": [{ "major": major, "minor": minor, "rate": 1048576 }],
        "throttleWriteIOPSDevice": [{ "major": major, "minor": minor, "rate": 100 }]
    }});
    b.save()?;
    let id = ctx.id("blkio");
    ctx.create_ok(&id, &b)?;
    let pid = ctx.pid(&id)?;
    let dev = format!("{major}:{minor}");
    let (dir, v2) = match crate::limits::cgroup_dir_of(pid, "blkio") {
        Ok(found) => found,
        Err(_) => crate::limits::cgroup_dir_of(pid, "io")?,
    };
    let read = |f: &str| crate::ctx::read_text(std::path::Path::new(&format!("{dir}/{f}")));
    if v2 {
        let max = read("io.max");
        ensure!(
            max.contains(&format!("{dev} rbps=1048576")) && max.contains("wiops=100"),
            "io.max: {max:?}"
        );
    } else {
        ensure_eq!(
            read("blkio.throttle.read_bps_device").trim(),
            format!("{dev} 1048576"),
            "read bps"
        );
        ensure_eq!(
            read("blkio.throttle.write_iops_device").trim(),
            format!("{dev} 100"),
            "write iops"
        );
    }
    Ok(())
}

/// hugepageLimits reach the hugetlb controller's file (v1 or v2); a field whose controller
/// this host lacks (net_cls is rarely mounted) fails create naming the field.
#[cfg(target_os = "linux")]
fn hugetlb_limits_are_written_and_missing_controllers_named(ctx: &Ctx) -> TestResult {
    if !std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        return Err(crate::harness::Fail::Skip(
            "no 2MB huge pages on this host".into(),
        ));
    }
    let mut b = ctx.bundle(&["sleep", "1000"])?;
    b.config["linux"]["resources"] =
        json!({ "hugepageLimits": [{ "pageSize": "2MB", "limit": 4194304 }] });
    b.save()?;
    let id = ctx.id("hugetlb");
    ctx.create_ok(&id, &b)?;
    let pid = ctx.pid(&id)?;
    let value = cgroup_value(
        pid,
        "hugetlb",
        "hugetlb.2MB.limit_in_bytes",
        "hugetlb.2MB.max",
    )?;
    ensure_eq!(value, "4194304", "the 2MB huge page limit");
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if mounted.contains("net_cls") {
        return Ok(());
    }
    let mut b = ctx.bundle(&["true"])?;
    b.config["linux"]["resources"] = json!({ "network": { "classID": 17 } });
    b.save()?;
    let id = ctx.id("netcls");
    let out = ctx.create(&id, &b)?;
    out.expect_failure("create with network.classID and no net_cls controller")?;
    ensure!(
        out.stderr.contains("linux.resources.network.classID"),
        "names the field: {:?}",
        out.stderr
    );
    Ok(())
}
