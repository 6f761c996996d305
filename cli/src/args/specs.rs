//! The text forms of `run --image`'s flags, parsed into the image library's typed
//! requests: `-v SRC:DST[:OPTS]`, `--mount type=…,…`, `-e`/`--env-file`, `-u`,
//! `--entrypoint`. Podman's syntax; what Podman accepts and stockade cannot do is refused
//! with a reason, never dropped.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use stockade_image::bundle::{MountRequest, MountSource};

/// The most an `--env-file` may hold.
const ENV_FILE_MAX: u64 = 1 << 20;

/// `-v SRC:DST[:ro|rw]`: SRC is a host path when it starts with `/` or `.`, else a named
/// volume; `-v DST` alone is an anonymous tmpfs-free volume Podman would make, refused here.
pub fn parse_volume(spec: &str) -> anyhow::Result<MountRequest> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        [_] => bail!("--volume {spec:?}: expected SRC:DST[:ro|rw] (an anonymous volume needs a source; use a name)"),
        _ => bail!("--volume {spec:?}: expected SRC:DST[:ro|rw]"),
    };
    let mut readonly = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "rw" => readonly = false,
            other => bail!("--volume {spec:?}: option {other:?} is not supported (ro, rw)"),
        }
    }
    Ok(MountRequest {
        source: source_of(src).with_context(|| format!("--volume {spec:?}"))?,
        destination: destination(dst).with_context(|| format!("--volume {spec:?}"))?,
        readonly,
        options: Vec::new(),
    })
}

fn source_of(src: &str) -> anyhow::Result<MountSource> {
    if src.is_empty() {
        bail!("empty source");
    }
    if src.starts_with('/') || src.starts_with('.') {
        let p =
            std::path::absolute(Path::new(src)).with_context(|| format!("source path {src:?}"))?;
        Ok(MountSource::Host(p))
    } else {
        stockade_image::bundle::run::check_volume_name(src)
            .map_err(|r| anyhow::anyhow!("volume name {src:?}: {r}"))?;
        Ok(MountSource::Volume(src.to_string()))
    }
}

fn destination(dst: &str) -> anyhow::Result<String> {
    stockade_image::bundle::run::check_destination(dst)
        .map_err(|r| anyhow::anyhow!("destination {dst:?} {r}"))?;
    Ok(dst.to_string())
}

/// `--mount type=bind|volume|tmpfs,source=…,destination=…[,readonly][,tmpfs-size=…][,tmpfs-mode=…]`.
pub fn parse_mount(spec: &str) -> anyhow::Result<MountRequest> {
    let mut kind = None;
    let mut src = None;
    let mut dst = None;
    let mut readonly = false;
    let mut options = Vec::new();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        match (k, v) {
            ("type", Some(v)) => kind = Some(v),
            ("source" | "src", Some(v)) => src = Some(v),
            ("destination" | "dst" | "target", Some(v)) => dst = Some(v),
            ("readonly" | "ro", None | Some("true" | "1")) => readonly = true,
            ("readonly" | "ro", Some("false" | "0")) => readonly = false,
            ("tmpfs-size", Some(v)) if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric()) => {
                options.push(format!("size={v}"))
            }
            ("tmpfs-mode", Some(v)) if !v.is_empty() && v.chars().all(|c| c.is_digit(8)) => {
                options.push(format!("mode={v}"))
            }
            _ => bail!(
                "--mount {spec:?}: {field:?} is not supported (type, source, destination, readonly, tmpfs-size, tmpfs-mode)"
            ),
        }
    }
    let dst = dst.with_context(|| format!("--mount {spec:?}: no destination"))?;
    let destination = destination(dst).with_context(|| format!("--mount {spec:?}"))?;
    let source = match kind {
        Some("bind") => {
            let s = src.with_context(|| format!("--mount {spec:?}: a bind needs a source"))?;
            if !s.starts_with('/') && !s.starts_with('.') {
                bail!("--mount {spec:?}: a bind's source is a path (start it with / or ./)");
            }
            source_of(s)?
        }
        Some("volume") => {
            let s =
                src.with_context(|| format!("--mount {spec:?}: a volume needs a name as source"))?;
            match source_of(s)? {
                v @ MountSource::Volume(_) => v,
                _ => {
                    bail!("--mount {spec:?}: a volume's source is a name; use type=bind for a path")
                }
            }
        }
        Some("tmpfs") => {
            if src.is_some() {
                bail!("--mount {spec:?}: a tmpfs has no source");
            }
            MountSource::Tmpfs
        }
        Some(other) => {
            bail!("--mount {spec:?}: type {other:?} is not supported (bind, volume, tmpfs)")
        }
        None => bail!("--mount {spec:?}: no type= (bind, volume, tmpfs)"),
    };
    if !options.is_empty() && source != MountSource::Tmpfs {
        bail!("--mount {spec:?}: tmpfs-size and tmpfs-mode go with type=tmpfs");
    }
    Ok(MountRequest {
        source,
        destination,
        readonly,
        options,
    })
}

/// One `-e` value: `NAME=value`, or `NAME` alone for the caller's own value (skipped when
/// the caller has none, as Podman does). `lookup` reads the caller's environment.
pub fn env_entry(
    entry: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<String>> {
    let name = entry.split('=').next().unwrap_or_default();
    if name.is_empty() || name.contains(char::is_whitespace) || entry.contains('\0') {
        bail!("environment entry {entry:?}: expected NAME=value or NAME");
    }
    if entry.contains('=') {
        return Ok(Some(entry.to_string()));
    }
    Ok(lookup(name).map(|v| format!("{name}={v}")))
}

/// An `--env-file`: one `NAME=value` or `NAME` a line; blank lines and `#` comments are
/// skipped; the value is taken verbatim (no quotes are removed), as Podman does.
pub fn env_file(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(e) = env_entry(line, lookup).with_context(|| format!("line {}", n + 1))? {
            out.push(e);
        }
    }
    Ok(out)
}

/// Reads an `--env-file`, bounded.
pub fn read_env_file(path: &PathBuf) -> anyhow::Result<Vec<String>> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(ENV_FILE_MAX + 1).read_to_string(&mut text))
        .with_context(|| format!("reading --env-file {}", path.display()))?;
    if text.len() as u64 > ENV_FILE_MAX {
        bail!(
            "--env-file {}: larger than {ENV_FILE_MAX} bytes",
            path.display()
        );
    }
    env_file(&text, &|n| std::env::var(n).ok())
        .with_context(|| format!("--env-file {}", path.display()))
}

/// `-u user[:group]`: names or numbers, resolved later in the image's own files.
pub fn user(spec: &str) -> anyhow::Result<String> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.len() <= 256
            && !p.contains(|c: char| c == ':' || c == '\0' || c.is_whitespace())
    };
    match spec.split_once(':') {
        Some((u, g)) if ok_part(u) && ok_part(g) => Ok(spec.to_string()),
        None if ok_part(spec) => Ok(spec.to_string()),
        _ => bail!("--user {spec:?}: expected USER[:GROUP] (names or numbers)"),
    }
}

/// `--entrypoint`: a JSON array, or one program (no shell); `""` means none.
pub fn entrypoint(value: &str) -> anyhow::Result<Vec<String>> {
    if value.trim_start().starts_with('[') {
        return serde_json::from_str(value)
            .with_context(|| format!("--entrypoint {value:?}: not a JSON array of strings"));
    }
    Ok(if value.is_empty() {
        Vec::new()
    } else {
        vec![value.to_string()]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(p: &str) -> MountSource {
        MountSource::Host(p.into())
    }

    #[test]
    fn volumes_are_host_paths_or_names_with_ro_or_rw() {
        let v = parse_volume("/srv/www:/data:ro").unwrap();
        assert_eq!(
            (v.source, v.destination.as_str(), v.readonly),
            (host("/srv/www"), "/data", true)
        );
        let v = parse_volume("db:/var/db").unwrap();
        assert_eq!(
            (v.source, v.readonly),
            (MountSource::Volume("db".into()), false)
        );
        let rel = parse_volume("./x:/x:rw").unwrap();
        assert!(matches!(rel.source, MountSource::Host(p) if p.is_absolute()));
        for bad in [
            "/data",
            "/a:data",
            "/a:/b/../../etc",
            "/a:/",
            "/a:/b:z",
            "/a:/b:ro:x",
            "bad/name:/b",
            ":/b",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mounts_take_podmans_keys() {
        let m = parse_mount("type=bind,source=/srv,destination=/srv,readonly").unwrap();
        assert_eq!((m.source, m.readonly), (host("/srv"), true));
        let m = parse_mount("type=tmpfs,target=/tmp,tmpfs-size=64m,tmpfs-mode=1777").unwrap();
        assert_eq!(m.source, MountSource::Tmpfs);
        assert_eq!(m.options, ["size=64m", "mode=1777"]);
        let m = parse_mount("type=volume,src=cache,dst=/cache,ro=false").unwrap();
        assert_eq!(
            (m.source, m.readonly),
            (MountSource::Volume("cache".into()), false)
        );
        for bad in [
            "type=bind,destination=/x",
            "type=bind,source=name,destination=/x",
            "type=volume,source=/p,destination=/x",
            "type=tmpfs,source=x,destination=/x",
            "type=tmpfs,destination=/x,tmpfs-mode=rwx",
            "type=bind,source=/a,destination=/x,tmpfs-size=1m",
            "type=nfs,source=/a,destination=/x",
            "source=/a,destination=/x",
            "type=bind,source=/a",
            "type=bind,source=/a,destination=/x,bind-propagation=shared",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_entries_and_files() {
        let lookup = |n: &str| (n == "HOME").then(|| "/root".to_string());
        assert_eq!(env_entry("A=1=2", &lookup).unwrap(), Some("A=1=2".into()));
        assert_eq!(
            env_entry("HOME", &lookup).unwrap(),
            Some("HOME=/root".into())
        );
        assert_eq!(env_entry("UNSET", &lookup).unwrap(), None);
        assert!(env_entry("=x", &lookup).is_err());
        assert!(env_entry("A B=1", &lookup).is_err());
        let text = "# comment\n\nA=\"quoted\"\n  B=2\nHOME\nUNSET\n";
        assert_eq!(
            env_file(text, &lookup).unwrap(),
            ["A=\"quoted\"", "B=2", "HOME=/root"]
        );
        let e = env_file("A=1\n=bad\n", &lookup).unwrap_err();
        assert!(format!("{e:#}").contains("line 2"), "{e:#}");
    }

    #[test]
    fn users_and_entrypoints() {
        assert_eq!(user("www").unwrap(), "www");
        assert_eq!(user("80:staff").unwrap(), "80:staff");
        for bad in ["", ":", "a:", ":g", "a:b:c", "a b"] {
            assert!(user(bad).is_err(), "{bad:?}");
        }
        assert_eq!(entrypoint("/bin/sh").unwrap(), ["/bin/sh"]);
        assert_eq!(
            entrypoint(r#"["/bin/sh","-c"]"#).unwrap(),
            ["/bin/sh", "-c"]
        );
        assert!(entrypoint("").unwrap().is_empty());
        assert!(entrypoint("[1]").is_err());
    }
}
