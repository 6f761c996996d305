use super::*;

fn limits(json: &str) -> ResourceLimits {
    let r: oci_spec::runtime::LinuxResources = serde_json::from_str(json).unwrap();
    crate::limits::from_resources(Some(&r), crate::target::Target::Linux)
        .unwrap()
        .0
}

#[test]
fn v1_and_v2_files_for_each_field() {
    let l = limits(
        r#"{"cpu":{"shares":2048,"cpus":"0","mems":"0"},
                "memory":{"limit":1048576,"reservation":524288,"swappiness":5,"disableOOMKiller":true}}"#,
    );
    let none = ResourceLimits::default();
    let v1 = limit_writes(Controller::Memory, false, &l, &none).unwrap();
    assert_eq!(
        v1,
        vec![
            ("memory.limit_in_bytes", "1048576".to_string(), false),
            ("memory.soft_limit_in_bytes", "524288".to_string(), false),
            ("memory.swappiness", "5".to_string(), false),
            ("memory.oom_control", "1".to_string(), false),
        ]
    );
    let e = limit_writes(Controller::Memory, true, &l, &none)
        .unwrap_err()
        .to_string();
    assert!(e.contains("linux.resources.memory.swappiness"), "{e}");
    assert_eq!(
        limit_writes(Controller::Cpu, false, &l, &none).unwrap(),
        vec![("cpu.shares", "2048".to_string(), false)]
    );
    assert_eq!(
        limit_writes(Controller::Cpu, true, &l, &none).unwrap(),
        vec![("cpu.weight", "79".to_string(), false)]
    );
    assert_eq!(
        limit_writes(Controller::Cpuset, false, &l, &none).unwrap(),
        vec![
            ("cpuset.cpus", "0".to_string(), false),
            ("cpuset.mems", "0".to_string(), false)
        ]
    );
}

#[test]
fn a_lifted_field_goes_back_to_the_default() {
    let before = limits(
        r#"{"cpu":{"shares":2048},"memory":{"reservation":524288,"disableOOMKiller":true}}"#,
    );
    let now = ResourceLimits::default();
    assert_eq!(involvement(Controller::Cpu, &now, &before), (true, false));
    assert_eq!(
        limit_writes(Controller::Cpu, false, &now, &before).unwrap(),
        vec![("cpu.shares", "1024".to_string(), false)]
    );
    assert_eq!(
        limit_writes(Controller::Memory, false, &now, &before).unwrap(),
        vec![
            ("memory.soft_limit_in_bytes", "-1".to_string(), false),
            ("memory.oom_control", "0".to_string(), false),
        ]
    );
    assert_eq!(
        limit_writes(Controller::Memory, true, &now, &before).unwrap(),
        vec![("memory.low", "0".to_string(), false)]
    );
}

#[test]
fn block_io_lines_for_v1_and_v2() {
    let l = limits(
        r#"{"blockIO":{"weight":300,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
                "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":100}]}}"#,
    );
    let none = ResourceLimits::default();
    assert_eq!(
        limit_writes(Controller::Blkio, false, &l, &none).unwrap(),
        vec![
            ("blkio.weight", "300".to_string(), false),
            (
                "blkio.throttle.read_bps_device",
                "8:0 1048576".to_string(),
                false
            ),
            (
                "blkio.throttle.write_iops_device",
                "8:0 100".to_string(),
                false
            ),
        ]
    );
    assert_eq!(
        limit_writes(Controller::Blkio, true, &l, &none).unwrap(),
        vec![
            ("io.weight", "default 300".to_string(), false),
            (
                "io.max",
                "8:0 rbps=1048576 wbps=max riops=max wiops=100".to_string(),
                false
            ),
        ]
    );
    assert_eq!(
        limit_writes(Controller::Blkio, false, &none, &l).unwrap(),
        vec![
            ("blkio.weight", "500".to_string(), false),
            ("blkio.throttle.read_bps_device", "8:0 0".to_string(), false),
            (
                "blkio.throttle.write_iops_device",
                "8:0 0".to_string(),
                false
            ),
        ],
        "lifted"
    );
}

#[test]
fn realtime_hugetlb_and_network_lines() {
    let l = limits(
        r#"{"cpu":{"realtimeRuntime":950,"realtimePeriod":1000},
                "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
                "network":{"classID":17,"priorities":[{"name":"eth0","priority":5}]}}"#,
    );
    let none = ResourceLimits::default();
    assert_eq!(
        limit_writes(Controller::Cpu, false, &l, &none).unwrap(),
        vec![
            ("cpu.rt_period_us", "1000".to_string(), false),
            ("cpu.rt_runtime_us", "950".to_string(), false)
        ]
    );
    let e = limit_writes(Controller::Cpu, true, &l, &none)
        .unwrap_err()
        .to_string();
    assert!(e.contains("linux.resources.cpu.realtimeRuntime"), "{e}");
    assert_eq!(
        limit_writes(Controller::Hugetlb, true, &l, &none).unwrap(),
        vec![("hugetlb.2MB.max", "4194304".to_string(), false)]
    );
    assert_eq!(
        limit_writes(Controller::Hugetlb, false, &none, &l).unwrap(),
        vec![("hugetlb.2MB.limit_in_bytes", "-1".to_string(), false)],
        "lifted"
    );
    assert_eq!(
        limit_writes(Controller::NetCls, false, &l, &none).unwrap(),
        vec![("net_cls.classid", "17".to_string(), false)]
    );
    assert_eq!(
        limit_writes(Controller::NetPrio, false, &l, &none).unwrap(),
        vec![("net_prio.ifpriomap", "eth0 5".to_string(), false)]
    );
}
