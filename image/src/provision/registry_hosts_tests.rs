//! The config file's per-registry settings as pulls use them: plain HTTP and the auth file
//! per host, and mirrors with their own credentials (never the registry's `--creds`).

use std::collections::BTreeMap;

use serde_json::json;

use super::pull::PullSettings;
use crate::oci::reference::Reference;
use crate::registry::{HostSettings, RegistryHosts};

fn reference(s: &str) -> Reference {
    s.parse().unwrap()
}

#[test]
fn per_host_settings_reach_the_client_and_mirrors_get_their_own_credentials() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("auth.json");
    // "mirroruser:mirrorpass" for the mirror, "hubuser:hubpass" for the registry.
    std::fs::write(
        &file,
        json!({"auths": {
            "m.example:5000": {"auth": "bWlycm9ydXNlcjptaXJyb3JwYXNz"},
            "r.example": {"auth": "aHVidXNlcjpodWJwYXNz"},
        }})
        .to_string(),
    )
    .unwrap();
    let mut hosts = BTreeMap::new();
    hosts.insert(
        "r.example".to_string(),
        HostSettings {
            insecure: true,
            mirrors: vec!["m.example:5000".into(), "n.example".into()],
            auth_file: Some(file.clone()),
        },
    );
    let settings = PullSettings {
        registries: RegistryHosts::new(hosts),
        ..PullSettings::default()
    };
    let r = reference("r.example/team/app:1");
    let client = settings.client_options(&r).unwrap();
    assert!(client.insecure);
    assert_eq!(client.credentials.unwrap().username, "hubuser");
    let other = settings
        .client_options(&reference("o.example/a:1"))
        .unwrap();
    assert!(!other.insecure);

    let with_flag = PullSettings {
        creds: Some("flaguser:pw".into()),
        authfile: Some(file.clone()),
        ..settings.clone()
    };
    let opts = with_flag.pull_options(&r, 1, false).unwrap();
    assert_eq!(opts.client.credentials.unwrap().username, "flaguser");
    let mirrors: Vec<String> = opts
        .mirrors
        .iter()
        .map(|m| m.reference.to_string())
        .collect();
    assert_eq!(
        mirrors,
        ["m.example:5000/team/app:1", "n.example/team/app:1"]
    );
    let first = opts.mirrors[0].client.credentials.as_ref().unwrap();
    assert_eq!(first.username, "mirroruser");
    assert!(opts.mirrors[1].client.credentials.is_none());
    // A registry without a table has no mirrors.
    let plain = settings
        .pull_options(&reference("o.example/a:1"), 1, false)
        .unwrap();
    assert!(plain.mirrors.is_empty());
}
