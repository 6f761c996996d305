use super::*;

/// One of each enforced limit: 64 MiB, 128 MiB memory+swap, 32 processes, half a CPU.
const ALL_FOUR: &str = r#"{"memory":{"limit":67108864,"swap":134217728},
        "pids":{"limit":32},"cpu":{"quota":50000,"period":100000}}"#;

fn parse(json: &str) -> Result<(ResourceLimits, Option<String>), LimitsError> {
    parse_for(json, Target::Linux)
}

fn parse_for(json: &str, target: Target) -> Result<(ResourceLimits, Option<String>), LimitsError> {
    let r: LinuxResources = serde_json::from_str(json).unwrap();
    from_resources(Some(&r), target)
}

#[test]
fn enforced_fields_become_limits() {
    let (l, w) = parse(ALL_FOUR).unwrap();
    assert_eq!(l.memory, Some(64 << 20));
    assert_eq!(l.memory_and_swap, Some(128 << 20));
    assert_eq!(l.swap_only(), Some(64 << 20));
    assert_eq!(l.pids, Some(32));
    assert_eq!(l.cpu.map(|c| c.percent()), Some(50));
    assert_eq!(w, None);
}

#[test]
fn unlimited_and_unset_values_are_no_limit() {
    let (l, _) =
        parse(r#"{"memory":{"limit":-1,"swap":-1},"pids":{"limit":0},"cpu":{"quota":-1}}"#)
            .unwrap();
    assert!(l.is_empty(), "{l:?}");
    assert!(from_resources(None, Target::FreeBsd).unwrap().0.is_empty());
}

#[test]
fn cpu_percent_rounds_up_and_defaults_the_period() {
    let (l, _) = parse(r#"{"cpu":{"quota":150001}}"#).unwrap();
    assert_eq!(
        l.cpu,
        Some(CpuQuota {
            quota: 150_001,
            period: DEFAULT_CPU_PERIOD
        })
    );
    assert_eq!(l.cpu.map(|c| c.percent()), Some(151));
}

#[test]
fn contradictory_values_are_errors_naming_the_field() {
    for (json, field) in [
        (
            r#"{"memory":{"limit":2000000,"swap":1000000}}"#,
            "memory.swap",
        ),
        (r#"{"memory":{"swap":1000000}}"#, "memory.swap"),
        (r#"{"cpu":{"quota":50000,"period":10}}"#, "cpu.period"),
        (r#"{"cpu":{"quota":10}}"#, "cpu.quota"),
    ] {
        let e = parse(json).unwrap_err().to_string();
        assert!(
            e.contains(&format!("linux.resources.{field}")),
            "{json}: {e}"
        );
    }
}

#[test]
fn update_replaces_what_it_gives_and_keeps_the_rest() {
    let (current, _) = parse(ALL_FOUR).unwrap();
    let upd = |json: &str| {
        let r: LinuxResources = serde_json::from_str(json).unwrap();
        update(&current, &r, Target::Linux)
    };
    let (l, _) = upd(r#"{"pids":{"limit":-1}}"#).unwrap();
    assert_eq!(
        (l.pids, l.memory),
        (None, Some(64 << 20)),
        "pids lifted, memory kept"
    );
    let (l, _) = upd(r#"{"memory":{"limit":100663296}}"#).unwrap();
    assert_eq!(l.memory, Some(96 << 20));
    assert_eq!(l.memory_and_swap, Some(128 << 20), "swap kept");
    let (l, _) = upd(r#"{"cpu":{"period":200000}}"#).unwrap();
    assert_eq!(l.cpu.map(|c| (c.quota, c.period)), Some((50_000, 200_000)));
    let (l, _) = upd(r#"{"cpu":{"quota":-1}}"#).unwrap();
    assert_eq!(l.cpu, None);
    let (l, _) = upd(r#"{"memory":{"limit":-1}}"#).unwrap();
    assert_eq!(
        (l.memory, l.memory_and_swap),
        (None, None),
        "lifting memory lifts swap"
    );
    let e = upd(r#"{"memory":{"limit":268435456}}"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("linux.resources.memory.swap"),
        "memory above the kept swap: {e}"
    );
}

#[test]
fn what_is_not_enforced_is_named_in_one_warning() {
    for target in [Target::Linux, Target::FreeBsd] {
        let (l, w) = parse_for(
            r#"{"devices":[{"allow":false,"access":"rwm"}],"cpu":{"idle":1},
                "memory":{"kernel":1000},"blockIO":{"leafWeight":10}}"#,
            target,
        )
        .unwrap();
        assert!(!l.is_empty(), "cpu.idle and blockIO.leafWeight are kept");
        let w = w.unwrap();
        assert!(w.contains("linux.resources.memory.kernel"), "{w}");
        // Only the Linux cgroup backend applies these; FreeBSD names them.
        for name in ["cpu.idle", "blockIO.leafWeight"] {
            let named = w.contains(&format!("linux.resources.{name}"));
            assert_eq!(named, target == Target::FreeBsd, "{target} {name}: {w}");
        }
        assert_eq!(
            w.contains("linux.resources.devices"),
            target == Target::FreeBsd,
            "device rules are enforced on Linux only: {w}"
        );
    }
}

#[test]
fn cgroup_settings_are_kept_and_checked() {
    let json = r#"{"cpu":{"shares":512,"cpus":"0-1,3","mems":"0"},
                "memory":{"reservation":1048576,"swappiness":10,"disableOOMKiller":true}}"#;
    let (_, w) = parse_for(json, Target::FreeBsd).unwrap();
    let w = w.unwrap();
    assert!(
        w.contains("linux.resources.cpu.shares"),
        "FreeBSD names them: {w}"
    );
    let (l, w) = parse(json).unwrap();
    assert_eq!(w, None, "all enforced on Linux");
    assert_eq!(l.cpu_shares, Some(512));
    assert_eq!(l.cpuset_cpus.as_deref(), Some("0-1,3"));
    assert_eq!(l.cpuset_mems.as_deref(), Some("0"));
    assert_eq!(l.memory_reservation, Some(1 << 20));
    assert_eq!((l.swappiness, l.disable_oom_killer), (Some(10), true));
    assert_eq!(
        l.linux_only_fields(),
        vec![
            "cpu.shares",
            "cpu.cpus",
            "cpu.mems",
            "memory.reservation",
            "memory.swappiness",
            "memory.disableOOMKiller"
        ]
    );
    let r: LinuxResources = serde_json::from_str(r#"{"cpu":{"cpus":""}}"#).unwrap();
    let (after, _) = update(&l, &r, Target::Linux).unwrap();
    assert_eq!(after.cpuset_cpus, None, "an empty list lifts the cpuset");
    assert_eq!(after.cpuset_mems.as_deref(), Some("0"), "kept");
    for (json, field) in [
        (r#"{"cpu":{"shares":1}}"#, "cpu.shares"),
        (r#"{"cpu":{"cpus":"0-1\nx"}}"#, "cpu.cpus"),
        (r#"{"cpu":{"mems":"a"}}"#, "cpu.mems"),
        (r#"{"memory":{"swappiness":101}}"#, "memory.swappiness"),
    ] {
        let e = parse(json).unwrap_err().to_string();
        assert!(
            e.contains(&format!("linux.resources.{field}")),
            "{json}: {e}"
        );
    }
}

#[test]
fn shares_convert_to_weight_as_runc_does() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(0), 0);
}

#[test]
fn unified_entries_are_kept_and_checked() {
    let unified = r#"{"unified":{"memory.high":"1000000","pids.max":"9"}}"#;
    assert!(parse_for(unified, Target::FreeBsd).unwrap().1.is_some());
    let (l, w) = parse(unified).unwrap();
    assert_eq!(
        l.unified.get("memory.high").map(String::as_str),
        Some("1000000")
    );
    assert_eq!(l.unified.len(), 2);
    assert_eq!(w, None);
    for bad in [
        r#"{"unified":{"../x.y":"1"}}"#,
        r#"{"unified":{"cgroup.procs":"1"}}"#,
        r#"{"unified":{"nodot":"1"}}"#,
    ] {
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.contains("linux.resources.unified"), "{bad}: {e}");
    }
}

#[test]
fn block_io_weight_and_throttles_are_kept_and_replaced_per_kind() {
    let (l, _) = parse(
        r#"{"blockIO":{"weight":500,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
                "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":100}]}}"#,
    )
    .unwrap();
    assert_eq!(l.blkio_weight, Some(500));
    assert_eq!(l.blkio_throttle.len(), 2);
    let r: LinuxResources =
        serde_json::from_str(r#"{"blockIO":{"throttleReadBpsDevice":[]}}"#).unwrap();
    let (after, _) = update(&l, &r, Target::Linux).unwrap();
    assert_eq!(
        after.blkio_throttle,
        vec![Throttle {
            kind: ThrottleKind::WriteIops,
            major: 8,
            minor: 0,
            rate: 100
        }],
        "the read list emptied, the write one kept"
    );
    for (json, field) in [
        (r#"{"blockIO":{"weight":5}}"#, "blockIO.weight"),
        (
            r#"{"blockIO":{"throttleReadBpsDevice":[{"major":-8,"minor":0,"rate":1}]}}"#,
            "throttleReadBpsDevice",
        ),
    ] {
        let e = parse(json).unwrap_err().to_string();
        assert!(e.contains(field), "{json}: {e}");
    }
}

#[test]
fn realtime_hugetlb_and_network_are_kept_and_checked() {
    let (l, _) = parse(
        r#"{"cpu":{"realtimeRuntime":950000,"realtimePeriod":1000000},
                "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
                "network":{"classID":1048577,"priorities":[{"name":"eth0","priority":5}]}}"#,
    )
    .unwrap();
    assert_eq!(
        (l.rt_runtime, l.rt_period),
        (Some(950_000), Some(1_000_000))
    );
    assert_eq!(l.hugetlb.get("2MB"), Some(&4_194_304));
    assert_eq!(l.net_classid, Some(1_048_577));
    assert_eq!(l.net_priorities, vec![("eth0".to_string(), 5)]);
    for (json, field) in [
        (
            r#"{"hugepageLimits":[{"pageSize":"3MB","limit":1}]}"#,
            "hugepageLimits.pageSize",
        ),
        (
            r#"{"network":{"priorities":[{"name":"a b","priority":1}]}}"#,
            "network.priorities.name",
        ),
    ] {
        let e = parse(json).unwrap_err().to_string();
        assert!(e.contains(field), "{json}: {e}");
    }
}
