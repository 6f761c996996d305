//! Small readers over `serde_json::Value` that produce path-carrying errors. The FreeBSD
//! section is read with these rather than with derived serde types so that every message
//! names the exact JSON path, the value and the accepted values.

use serde_json::{Map, Value};

use super::ConfigError;

/// A JSON value kind as a person would name it.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(path: &str, v: &Value, expected: &str) -> ConfigError {
    ConfigError::InvalidValue {
        path: path.to_string(),
        value: format!("{} ({})", compact(v), kind(v)),
        expected: expected.to_string(),
    }
}

/// A value in compact JSON, cut to a readable length for error messages.
pub(crate) fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// `obj[key]` as an object, or `None` when absent or null.
pub(crate) fn object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, ConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(v) => Err(wrong_type(path, v, "an object")),
    }
}

/// `obj[key]` as a string.
pub(crate) fn string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, ConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(wrong_type(path, v, "a string")),
    }
}

/// `obj[key]` as a boolean.
pub(crate) fn boolean(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<bool>, ConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(wrong_type(path, v, "true or false")),
    }
}

/// `obj[key]` as an unsigned integer within `0..=max`.
pub(crate) fn uint(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    max: u64,
    expected: &str,
) -> Result<Option<u64>, ConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Number(n)) => match n.as_u64() {
            Some(x) if x <= max => Ok(Some(x)),
            _ => Err(ConfigError::InvalidValue {
                path: path.to_string(),
                value: compact(v),
                expected: expected.to_string(),
            }),
        },
        Some(v) => Err(wrong_type(path, v, expected)),
    }
}

/// `obj[key]` as an array of strings.
pub(crate) fn strings(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<Vec<String>>, ConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(wrong_type(&format!("{path}[{i}]"), other, "a string")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(v) => Err(wrong_type(path, v, "an array of strings")),
    }
}

/// `obj[key]` as an array of objects.
pub(crate) fn objects<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Vec<&'a Map<String, Value>>, ConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(m) => Ok(m),
                other => Err(wrong_type(&format!("{path}[{i}]"), other, "an object")),
            })
            .collect(),
        Some(v) => Err(wrong_type(path, v, "an array of objects")),
    }
}
