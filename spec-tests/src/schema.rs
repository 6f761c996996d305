//! Validation against the runtime-spec 1.3.0 JSON schemas kept in the repository. Every
//! schema file of the directory is registered in memory under a private base URI, so that
//! relative `$ref`s (`defs.json#/…`, `features-linux.json#/…`) resolve without any network.

use std::path::Path;

use jsonschema::{Draft, Resource};
use serde_json::Value;

const BASE: &str = "file:///stockade-spec-schema/";

/// Validates `instance` against `schema_file` (e.g. `state-schema.json`) from `schema_dir`;
/// the error lists every violation with its JSON pointer.
pub fn validate(schema_dir: &Path, schema_file: &str, instance: &Value) -> Result<(), String> {
    let mut options = jsonschema::options()
        .with_draft(Draft::Draft4)
        .with_base_uri(format!("{BASE}{schema_file}"));
    let mut main = None;
    let rd = std::fs::read_dir(schema_dir)
        .map_err(|e| format!("reading schema directory {}: {e}", schema_dir.display()))?;
    for entry in rd.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())
            .map_err(|e| format!("reading {}: {e}", entry.path().display()))?;
        let mut json: Value =
            serde_json::from_str(&text).map_err(|e| format!("parsing schema {name}: {e}"))?;
        fix_fragment_refs(&mut json);
        if name == schema_file {
            main = Some(json.clone());
        }
        let resource = Resource::from_contents(json)
            .map_err(|e| format!("schema {name} as a resource: {e}"))?;
        options = options.with_resource(format!("{BASE}{name}"), resource);
    }
    let main =
        main.ok_or_else(|| format!("{schema_file} not found in {}", schema_dir.display()))?;
    let validator = options
        .build(&main)
        .map_err(|e| format!("compiling {schema_file}: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("at {:?}: {e}", e.instance_path.to_string()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "not valid against {schema_file}:\n{}\ninstance: {instance}",
            errors.join("\n")
        ))
    }
}

/// runtime-spec 1.3.0's defs.json writes one reference as `#definitions/uint32` (no slash
/// after `#`), which strict resolvers reject as an invalid anchor; read it as the JSON
/// pointer it means.
fn fix_fragment_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "$ref" {
                    if let Value::String(r) = child {
                        if let Some(rest) = r.strip_prefix('#') {
                            if rest.starts_with("definitions/") {
                                *r = format!("#/{rest}");
                            }
                        }
                    }
                } else {
                    fix_fragment_refs(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fix_fragment_refs),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../reference/runtime-spec-v1.3.0/schema")
    }

    #[test]
    fn the_spec_example_state_is_valid() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../reference/runtime-spec-v1.3.0/examples/state-good-spec-example.json"),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        validate(&dir(), "state-schema.json", &v).unwrap();
    }

    #[test]
    fn a_state_with_a_bad_status_or_no_bundle_is_rejected() {
        let bad_status =
            json!({"ociVersion": "1.3.0", "id": "x", "status": "paused-ish", "bundle": "/b"});
        assert!(validate(&dir(), "state-schema.json", &bad_status).is_err());
        let no_bundle = json!({"ociVersion": "1.3.0", "id": "x", "status": "created"});
        assert!(validate(&dir(), "state-schema.json", &no_bundle).is_err());
        let int_annotation = json!({"ociVersion": "1.3.0", "id": "x", "status": "created",
            "bundle": "/b", "annotations": {"n": 1}});
        assert!(validate(&dir(), "state-schema.json", &int_annotation).is_err());
    }

    #[test]
    fn features_need_string_versions() {
        let good =
            json!({"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0", "hooks": ["prestart"]});
        validate(&dir(), "features-schema.json", &good).unwrap();
        let bad = json!({"ociVersionMin": 1, "ociVersionMax": "1.3.0"});
        assert!(validate(&dir(), "features-schema.json", &bad).is_err());
    }

    #[test]
    fn the_config_schema_compiles_and_checks_types() {
        let bad = json!({"ociVersion": "1.3.0", "root": {"path": 5}});
        assert!(validate(&dir(), "config-schema.json", &bad).is_err());
    }
}
