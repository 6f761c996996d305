use super::*;
use crate::platform::linux::mountinfo::HYBRID;

#[test]
fn mountinfo_gives_v1_mounts_by_controller_and_the_v2_mount() {
    let (v1, v2) = hierarchies(HYBRID);
    let find = |c: &str| v1.iter().find(|(o, _)| o == c).map(|(_, m)| m.clone());
    assert_eq!(find("memory"), Some(PathBuf::from("/sys/fs/cgroup/memory")));
    assert_eq!(
        find("cpu"),
        Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"))
    );
    assert_eq!(find("pids"), Some(PathBuf::from("/sys/fs/cgroup/pids")));
    assert_eq!(find("name=x"), Some(PathBuf::from("/sys/fs/cgroup/my dir")));
    assert_eq!(v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
    let h = hierarchy_for(Controller::Pids, &v1, v2.as_deref()).unwrap();
    assert_eq!(
        h,
        Hierarchy {
            mount: "/sys/fs/cgroup/pids".into(),
            v2: false
        }
    );
    let e = hierarchy_for(Controller::Memory, &[], None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("linux.resources.memory.limit") && e.contains("memory controller"),
        "{e}"
    );
}

fn rel(p: Option<&str>) -> Result<PathBuf, PlatformError> {
    relative_path("c1", p.map(Path::new))
}

#[test]
fn cgroups_path_is_taken_as_a_path_below_the_hierarchy_root() {
    assert_eq!(rel(None).unwrap(), PathBuf::from("stockade/c1"));
    assert_eq!(rel(Some("")).unwrap(), PathBuf::from("stockade/c1"));
    assert_eq!(rel(Some("/ns/c1")).unwrap(), PathBuf::from("ns/c1"));
    assert_eq!(rel(Some("rel/x")).unwrap(), PathBuf::from("rel/x"));
    assert_eq!(
        rel(Some("machine.slice:libpod:c1")).unwrap(),
        PathBuf::from("stockade/c1"),
        "systemd form: the default path"
    );
    for bad in ["/a/../../etc", "/"] {
        let e = rel(Some(bad)).unwrap_err().to_string();
        assert!(e.contains("linux.cgroupsPath"), "{bad}: {e}");
    }
}
