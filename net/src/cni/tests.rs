//! The runner against fake plugins (shell scripts) that record what they were given.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{json, Map};

use super::*;

fn plugin(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

fn network() -> Network {
    Network {
        name: "n1".into(),
        list: json!({"cniVersion": "1.0.0", "name": "n1", "plugins": [
            {"type": "one", "x": 1},
            {"type": "two", "capabilities": {"portMappings": true}}
        ]}),
    }
}

#[test]
fn add_chains_results_and_gives_capabilities_to_declaring_plugins() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let rec = |n: &str| {
        format!(
            "cat > {log}.{n}.in; env | grep ^CNI_ | sort > {log}.{n}.env",
            log = log.display()
        )
    };
    plugin(
        tmp.path(),
        "one",
        &format!(
            "{}; echo '{{\"cniVersion\":\"1.0.0\",\"ips\":[{{\"address\":\"10.1.0.5/24\"}}]}}'",
            rec("one")
        ),
    );
    plugin(tmp.path(), "two", &format!("{}; cat {log}.one.in >/dev/null; echo '{{\"cniVersion\":\"1.0.0\",\"ips\":[{{\"address\":\"10.1.0.5/24\"}}],\"two\":1}}'", rec("two"), log = log.display()));
    let mut rc = Map::new();
    rc.insert("portMappings".into(), json!([{"hostPort": 80}]));
    let at = Attachment {
        container_id: "c1",
        netns: "/run/x",
        ifname: "eth0",
        runtime_config: &rc,
    };
    let dirs = vec![tmp.path().to_path_buf()];
    let res = run_list(&network(), Verb::Add, &at, &dirs, None)
        .unwrap()
        .unwrap();
    assert_eq!(res["two"], 1);
    assert_eq!(result_addresses(&res), ["10.1.0.5"]);
    let one: Value =
        serde_json::from_slice(&fs::read(format!("{}.one.in", log.display())).unwrap()).unwrap();
    assert_eq!(
        one,
        json!({"type": "one", "x": 1, "cniVersion": "1.0.0", "name": "n1"})
    );
    let two: Value =
        serde_json::from_slice(&fs::read(format!("{}.two.in", log.display())).unwrap()).unwrap();
    assert_eq!(two["prevResult"]["ips"][0]["address"], "10.1.0.5/24");
    assert_eq!(two["runtimeConfig"]["portMappings"][0]["hostPort"], 80);
    let env = fs::read_to_string(format!("{}.one.env", log.display())).unwrap();
    assert!(env.contains("CNI_COMMAND=ADD\n"), "{env}");
    assert!(env.contains("CNI_CONTAINERID=c1\n"));
    assert!(env.contains("CNI_NETNS=/run/x\n"));
    assert!(env.contains("CNI_IFNAME=eth0\n"));
    assert!(env.contains(&format!("CNI_PATH={}\n", tmp.path().display())));
}

#[test]
fn a_failed_add_deletes_what_was_added_and_quotes_the_plugin_message() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("dels");
    plugin(
        tmp.path(),
        "one",
        &format!(
            "[ \"$CNI_COMMAND\" = DEL ] && echo one >> {}; echo '{{\"cniVersion\":\"1.0.0\"}}'",
            log.display()
        ),
    );
    plugin(
        tmp.path(),
        "two",
        &format!(
            "[ \"$CNI_COMMAND\" = DEL ] && echo two >> {} && exit 0; printf '{{\"code\":11,\"msg\":\"bad\\\\u001b[31m\",\"details\":\"d\"}}'; exit 1",
            log.display()
        ),
    );
    let rc = Map::new();
    let at = Attachment {
        container_id: "c1",
        netns: "/run/x",
        ifname: "eth0",
        runtime_config: &rc,
    };
    let err = run_list(
        &network(),
        Verb::Add,
        &at,
        &[tmp.path().to_path_buf()],
        None,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("plugin two") && text.contains("ADD"),
        "{text}"
    );
    assert!(
        text.contains(r#""bad\u{1b}[31m""#) || text.contains(r"\x1b"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
    // DEL in reverse order, both plugins.
    assert_eq!(fs::read_to_string(&log).unwrap(), "two\none\n");
}

#[test]
fn del_tries_every_plugin_and_reports_the_first_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("dels");
    plugin(tmp.path(), "one", &format!("echo one >> {}", log.display()));
    plugin(
        tmp.path(),
        "two",
        &format!("echo two >> {}; echo garbage; exit 3", log.display()),
    );
    let rc = Map::new();
    let at = Attachment {
        container_id: "c1",
        netns: "/run/x",
        ifname: "eth0",
        runtime_config: &rc,
    };
    let err = run_list(
        &network(),
        Verb::Del,
        &at,
        &[tmp.path().to_path_buf()],
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("garbage"), "{err}");
    assert_eq!(fs::read_to_string(&log).unwrap(), "two\none\n");
}

#[test]
fn plugin_types_are_names_not_paths() {
    let rc = Map::new();
    let at = Attachment {
        container_id: "c1",
        netns: "/run/x",
        ifname: "eth0",
        runtime_config: &rc,
    };
    for bad in ["../../bin/sh", "/bin/sh", ""] {
        let p = json!({"type": bad});
        assert!(
            invocation(&network(), &p, Verb::Add, &at, &[], None).is_err(),
            "{bad}"
        );
    }
    assert!(matches!(
        run_list(&network(), Verb::Add, &at, &[], None),
        Err(NetError::NoPlugin { .. })
    ));
}

#[test]
fn each_add_result_is_saved_and_a_failed_save_deletes_again() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("dels");
    for (name, n) in [("one", 1), ("two", 2)] {
        plugin(
            tmp.path(),
            name,
            &format!(
                "[ \"$CNI_COMMAND\" = DEL ] && echo {name} >> {} && exit 0; echo '{{\"cniVersion\":\"1.0.0\",\"n\":{n}}}'",
                log.display()
            ),
        );
    }
    let rc = Map::new();
    let at = Attachment {
        container_id: "c1",
        netns: "/run/x",
        ifname: "eth0",
        runtime_config: &rc,
    };
    let dirs = [tmp.path().to_path_buf()];
    let mut seen = Vec::new();
    run_list_saving(&network(), Verb::Add, &at, &dirs, None, &mut |r| {
        seen.push(r["n"].as_i64().unwrap());
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, [1, 2]);
    assert!(!log.exists());
    let err = run_list_saving(&network(), Verb::Add, &at, &dirs, None, &mut |r| {
        if r["n"] == 1 {
            Err(NetError::NoFreeSubnet)
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert!(matches!(err, NetError::NoFreeSubnet));
    assert_eq!(fs::read_to_string(&log).unwrap(), "two\none\n");
}
