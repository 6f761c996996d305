//! A [`JailSpec`] in jail.conf(5) syntax, for `stockade explain` and for people who want to
//! compare with a hand-written jail.

use std::fmt::Write;

use super::{JailParam, JailSpec, ParamValue};

/// Quotes a jail.conf string value.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn line(p: &JailParam) -> String {
    match &p.value {
        ParamValue::Bool(_) => format!("{};", p.kernel_name()),
        ParamValue::Int(i) => format!("{} = {i};", p.name),
        ParamValue::Str(s) => format!("{} = {};", p.name, quote(s)),
        ParamValue::JailSys(m) => format!("{} = {m};", p.name),
        v @ (ParamValue::Ip4(_) | ParamValue::Ip6(_)) => {
            format!(
                "{} = {};",
                p.name,
                v.addresses().unwrap_or_default().join(", ")
            )
        }
    }
}

/// The jail as a jail.conf block: every parameter stockade sets, `name` as the block name.
pub fn to_jail_conf(spec: &JailSpec) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {{", quote(spec.name.as_str()));
    for p in spec.params().iter().filter(|p| p.name != "name") {
        let _ = writeln!(out, "    {}", line(p));
    }
    out.push_str("}\n");
    out
}
