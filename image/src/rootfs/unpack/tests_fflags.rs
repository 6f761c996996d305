//! File flags (`SCHILY.fflags`) and device nodes: what the unpack reads and decides.

use std::fs;
use std::path::Path;

use super::fflags::{parse, DeviceNodes, FileFlags, FlagsPolicy, PendingFlags};
use super::*;
use crate::oci::media::OCI_LAYER_TAR;

/// One pax record: `LEN key=value\n`, LEN counting the whole record.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut n = body.len() + 1;
    while format!("{n}").len() + body.len() != n {
        n += 1;
    }
    format!("{n}{body}").into_bytes()
}

fn header(t: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(t);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Appends `path` (a file with `data`, or a directory when `data` is `None`), preceded by
/// a pax header with `fflags` when given, as FreeBSD's tar writes them.
fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: Option<&[u8]>, fflags: Option<&str>) {
    if let Some(f) = fflags {
        let rec = pax_record("SCHILY.fflags", f);
        let mut h = header(tar::EntryType::XHeader, 0o644, rec.len() as u64);
        b.append_data(&mut h, "PaxHeader/x", &rec[..]).unwrap();
    }
    match data {
        Some(d) => {
            let mut h = header(tar::EntryType::Regular, 0o555, d.len() as u64);
            b.append_data(&mut h, path, d).unwrap();
        }
        None => {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            b.append_data(&mut h, path, &[][..]).unwrap();
        }
    }
}

fn layer(dir: &Path, n: usize, tar: Vec<u8>) -> LayerSource {
    let path = dir.join(format!("blob{n}"));
    fs::write(&path, &tar).unwrap();
    LayerSource {
        digest: Digest::sha256_of(&tar),
        media_type: OCI_LAYER_TAR.into(),
        path,
        diff_id: Digest::sha256_of(&tar),
    }
}

fn opts(flags: FlagsPolicy, device_nodes: DeviceNodes) -> UnpackOptions {
    UnpackOptions {
        flags,
        device_nodes,
        ..UnpackOptions::default()
    }
}

#[test]
fn flag_names_parse_to_the_values_of_sys_stat_h() {
    assert_eq!(
        parse("schg,uarch").unwrap(),
        FileFlags(FileFlags::SF_IMMUTABLE | FileFlags::UF_ARCHIVE)
    );
    assert_eq!(parse("schg").unwrap().0, 0x0002_0000);
    assert_eq!(parse("sunlnk").unwrap().0, 0x0010_0000);
    assert_eq!(parse("uchg").unwrap().0, 0x2);
    assert_eq!(parse("uunlnk").unwrap().0, 0x10);
    assert_eq!(parse("sappnd").unwrap().0, 0x0004_0000);
    assert_eq!(parse("arch").unwrap().0, 0x0001_0000);
    assert_eq!(parse("nodump").unwrap().0, 0x1);
    // Separators as strtofflags(3) splits; clearing names change nothing on a new file.
    assert_eq!(parse("schg, sunlnk\tnouchg,dump").unwrap().0, 0x0012_0000);
    assert_eq!(parse("").unwrap(), FileFlags(0));
}

#[test]
fn an_unknown_flag_is_an_error_naming_it_bounded() {
    let e = parse("schg,bogus").unwrap_err().to_string();
    assert!(e.contains("\"bogus\""), "{e}");
    // The kernel alone sets the snapshot flag.
    assert!(parse("snapshot").is_err());
    let long = "x".repeat(5000);
    let e = parse(&long).unwrap_err().to_string();
    assert!(
        e.len() < 600,
        "the message quotes a bounded part: {} bytes",
        e.len()
    );
}

#[test]
fn an_unknown_flag_in_a_layer_fails_the_unpack_naming_the_entry() {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir(t.path().join("root")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "bin/ls", Some(b"x"), Some("schg,frobnicate"));
    let l = layer(t.path(), 0, b.into_inner().unwrap());
    let e = unpack_layers(
        &t.path().join("root"),
        &[l],
        &opts(FlagsPolicy::Skip, DeviceNodes::Make),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("bin/ls") && e.contains("\"frobnicate\""), "{e}");
}

#[test]
fn flags_are_read_from_pax_headers_and_counted_where_the_host_has_none() {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir(t.path().join("root")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "lib", None, None);
    append(&mut b, "lib/libc.so.7", Some(b"elf"), Some("schg,uarch"));
    append(&mut b, "libexec/ld-elf.so.1", Some(b"elf"), Some("schg"));
    append(&mut b, "var/empty", None, Some("schg"));
    append(&mut b, "bin/sh", Some(b"sh"), None);
    append(&mut b, "etc/motd", Some(b"hi"), Some("uarch"));
    let l = layer(t.path(), 0, b.into_inner().unwrap());
    let st = unpack_layers(
        &t.path().join("root"),
        &[l],
        &opts(FlagsPolicy::Skip, DeviceNodes::Make),
    )
    .unwrap();
    assert_eq!(st.flags_skipped, 4);
    assert_eq!(st.flags_set, 0);
    assert_eq!(
        fs::read(t.path().join("root/lib/libc.so.7")).unwrap(),
        b"elf"
    );
    assert!(t.path().join("root/var/empty").is_dir());
}

#[test]
fn pending_flags_follow_what_upper_entries_replace_and_remove() {
    let mut p = PendingFlags::default();
    p.record(Path::new("lib/libc.so.7"), Some(FileFlags(0x0002_0000)));
    p.record(Path::new("lib"), Some(FileFlags(0x0010_0000)));
    p.record(Path::new("var/empty"), Some(FileFlags(0x0002_0000)));
    p.record(Path::new("usr/bin/passwd"), Some(FileFlags(0x0002_0000)));
    // A newer entry without flags at the same path wins.
    p.record(Path::new("usr/bin/passwd"), None);
    // Deepest first, so a flagged directory is set after its contents.
    let order: Vec<&Path> = p.in_order().into_iter().map(|(k, _)| k).collect();
    assert_eq!(order[0], Path::new("lib/libc.so.7"));
    assert_eq!(order.len(), 3);
    p.forget_under(Path::new("lib"), |_| false);
    let left: Vec<&Path> = p.in_order().into_iter().map(|(k, _)| k).collect();
    assert_eq!(left, vec![Path::new("var/empty")]);
}

#[test]
fn the_host_decides_flags_and_device_nodes() {
    assert_eq!(FlagsPolicy::for_os("freebsd"), FlagsPolicy::Apply);
    assert_eq!(FlagsPolicy::for_os("linux"), FlagsPolicy::Skip);
    assert_eq!(DeviceNodes::for_os("freebsd"), DeviceNodes::Skip);
    assert_eq!(DeviceNodes::for_os("linux"), DeviceNodes::Make);
}

#[test]
fn device_nodes_are_skipped_and_counted_where_the_host_says_so_but_fifos_are_made() {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir(t.path().join("root")).unwrap();
    let mut lower = tar::Builder::new(Vec::new());
    append(&mut lower, "dev/null", Some(b"a lower file"), None);
    let mut upper = tar::Builder::new(Vec::new());
    for (name, t) in [
        ("dev/null", tar::EntryType::Char),
        ("dev/sda", tar::EntryType::Block),
        ("dev/fifo", tar::EntryType::Fifo),
    ] {
        let mut h = header(t, 0o666, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        upper.append_data(&mut h, name, &[][..]).unwrap();
    }
    let ls = [
        layer(t.path(), 0, lower.into_inner().unwrap()),
        layer(t.path(), 1, upper.into_inner().unwrap()),
    ];
    let root = t.path().join("root");
    // One layer at a time, as the zfs driver applies them: the lower file is on disk.
    let o = opts(FlagsPolicy::Skip, DeviceNodes::Skip);
    unpack_layers(&root, &ls[..1], &o).unwrap();
    let st = unpack_layers(&root, &ls[1..], &o).unwrap();
    assert_eq!(st.devices_skipped, 2);
    assert_eq!(st.devices, 1);
    assert!(fs::symlink_metadata(root.join("dev/fifo")).is_ok());
    assert!(fs::symlink_metadata(root.join("dev/sda")).is_err());
    // The skipped node still replaces what the lower layer had at its path.
    assert!(fs::symlink_metadata(root.join("dev/null")).is_err());
}
