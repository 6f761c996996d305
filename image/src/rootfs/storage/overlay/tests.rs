//! The overlay driver and the overlay form of layers. Whiteout nodes, `trusted.*`
//! attributes and mounts need root: run as root (CI does); the tests say so and pass
//! vacuously otherwise, as the other privileged tests of this crate do.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::*;
use crate::rootfs::unpack::{unpack_layers, UnpackError, OPAQUE_XATTR};

/// One entry of a test layer.
enum E<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    /// A directory with pax `SCHILY.xattr.*` records.
    DirX(&'a str, &'a [(&'a str, &'a [u8])]),
    Char(&'a str, u32, u32),
    Link(&'a str, &'a str),
    /// A directory with a mode and an owner.
    DirOf(&'a str, u32, u64),
}

fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match *e {
            E::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, data).unwrap();
            }
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::DirX(p, xattrs) => {
                let recs: Vec<(String, &[u8])> = xattrs
                    .iter()
                    .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
                    .collect();
                b.append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), *v)))
                    .unwrap();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::DirOf(p, mode, uid) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(mode);
                h.set_uid(uid);
                h.set_gid(uid);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Char(p, major, minor) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o600);
                h.set_size(0);
                h.set_device_major(major).unwrap();
                h.set_device_minor(minor).unwrap();
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn layer(dir: &Path, name: &str, entries: &[E]) -> LayerSource {
    let tar = tar_of(entries);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&tar).unwrap();
    let blob = e.finish().unwrap();
    let path = dir.join(name);
    fs::write(&path, &blob).unwrap();
    LayerSource {
        digest: Digest::sha256_of(&blob),
        media_type: crate::oci::media::OCI_LAYER_GZIP.into(),
        path,
        diff_id: Digest::sha256_of(&tar),
    }
}

fn root() -> bool {
    let r = nix::unistd::geteuid().is_root();
    if !r {
        eprintln!("not root: whiteout nodes, trusted.* attributes and mounts need root");
    }
    r
}

/// Root, and overlay mounts on the test's file system.
fn can_mount(storage: &Path) -> bool {
    if !root() {
        return false;
    }
    match supported(storage) {
        Ok(()) => true,
        Err(why) => {
            eprintln!("overlay not supported here ({why}); the mount tests cannot run");
            false
        }
    }
}

fn overlay_opts() -> UnpackOptions {
    UnpackOptions {
        whiteouts: Whiteouts::Overlay,
        ..UnpackOptions::default()
    }
}

fn is_whiteout(p: &Path) -> bool {
    fs::symlink_metadata(p)
        .map(|m| m.file_type().is_char_device() && m.rdev() == 0)
        .unwrap_or(false)
}

fn opaque(p: &Path) -> bool {
    xattr::get(p, OPAQUE_XATTR).ok().flatten().as_deref() == Some(&b"y"[..])
}

#[test]
fn whiteouts_become_overlay_whiteout_nodes_and_opaque_markers() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("t");
    fs::create_dir(&target).unwrap();
    let l = layer(
        t.path(),
        "l",
        &[
            E::Dir("d/"),
            E::File("d/.wh..wh..opq", b""),
            E::File("d/own", b"1"),
            E::File("e/.wh.gone", b""),
            // A whiteout and an entry of the same layer: the entry stays.
            E::File("kept", b"2"),
            E::File(".wh.kept", b""),
            // A whiteout, then a directory of the same layer at that name: the directory
            // hides what the lower layers had there.
            E::File(".wh.x", b""),
            E::Dir("x/"),
        ],
    );
    let stats = unpack_layers(&target, &[l], &overlay_opts()).unwrap();
    assert!(opaque(&target.join("d")), "d is not opaque");
    assert_eq!(fs::read(target.join("d/own")).unwrap(), b"1");
    assert!(is_whiteout(&target.join("e/gone")), "e/gone is no whiteout");
    assert!(!target.join("e/.wh.gone").exists());
    assert_eq!(fs::read(target.join("kept")).unwrap(), b"2");
    assert!(target.join("x").is_dir() && opaque(&target.join("x")));
    assert!(!opaque(&target.join("e")));
    assert_eq!(stats.whiteouts, 4);
}

#[test]
fn a_layer_cannot_plant_overlay_attributes_or_whiteout_nodes() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("t");
    fs::create_dir(&target).unwrap();
    let l = layer(
        t.path(),
        "l",
        &[E::DirX(
            "d/",
            &[
                ("trusted.overlay.opaque", b"y"),
                ("trusted.overlay.redirect", b"/etc"),
                ("user.overlay.opaque", b"y"),
                ("user.kept", b"v"),
            ],
        )],
    );
    let stats = unpack_layers(&target, &[l], &overlay_opts()).unwrap();
    let d = target.join("d");
    assert!(!opaque(&d), "a layer's own opaque attribute was set");
    assert_eq!(xattr::get(&d, "trusted.overlay.redirect").unwrap(), None);
    assert_eq!(xattr::get(&d, "user.overlay.opaque").unwrap(), None);
    assert_eq!(
        xattr::get(&d, "user.kept").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(stats.xattrs_skipped, 3);

    let target2 = t.path().join("t2");
    fs::create_dir(&target2).unwrap();
    let l = layer(t.path(), "l2", &[E::Char("etc", 0, 0)]);
    match unpack_layers(&target2, &[l], &overlay_opts()) {
        Err(UnpackError::Unsafe { reason, .. }) => assert!(reason.contains("whiteout"), "{reason}"),
        other => panic!("a 0/0 character device was not refused: {other:?}"),
    }
    // Other devices are made as ever.
    let target3 = t.path().join("t3");
    fs::create_dir(&target3).unwrap();
    let l = layer(t.path(), "l3", &[E::Char("null", 1, 3)]);
    unpack_layers(&target3, &[l], &overlay_opts()).unwrap();
    assert!(fs::symlink_metadata(target3.join("null"))
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn layers_are_unpacked_once_and_shared_between_images() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let d = OverlayDriver::new(&t.path().join("st")).unwrap();
    let base = layer(t.path(), "base", &[E::File("a", b"1")]);
    let top1 = layer(t.path(), "t1", &[E::File("b", b"2")]);
    let top2 = layer(t.path(), "t2", &[E::File("c", b"3")]);
    let p1 = d.prepare(&[base.clone(), top1.clone()]).unwrap();
    assert_eq!(p1.unpacked_layers, 2);
    let ino = fs::metadata(d.layer_path(&base.diff_id).join("a"))
        .unwrap()
        .ino();
    let p2 = d.prepare(&[base.clone(), top2]).unwrap();
    assert_eq!(
        p2.unpacked_layers, 1,
        "the shared base layer was unpacked again"
    );
    assert_eq!(
        fs::metadata(d.layer_path(&base.diff_id).join("a"))
            .unwrap()
            .ino(),
        ino
    );
    assert_eq!(
        d.prepare(&[base, top1]).unwrap(),
        Prepared {
            chain: p1.chain,
            unpacked_layers: 0
        }
    );
}

#[test]
fn containers_share_layers_copy_on_write_and_go_with_their_upper_directory() {
    let t = tempfile::tempdir().unwrap();
    let st = t.path().join("st");
    if !can_mount(&st) {
        return;
    }
    let d = OverlayDriver::new(&st).unwrap();
    let l1 = layer(
        t.path(),
        "l1",
        &[
            E::File("a", b"1"),
            E::File("b", b"2"),
            E::Dir("d/"),
            E::File("d/x", b""),
        ],
    );
    let l2 = layer(
        t.path(),
        "l2",
        &[
            E::File(".wh.b", b""),
            E::File("d/.wh..wh..opq", b""),
            E::File("d/y", b""),
        ],
    );
    let p = d.prepare(&[l1.clone(), l2.clone()]).unwrap();
    let r1 = d.create_rootfs(&p.chain, "c1").unwrap();
    let r2 = d.create_rootfs(&p.chain, "c2").unwrap();
    assert!(matches!(
        d.create_rootfs(&p.chain, "c2"),
        Err(StorageError::Exists { .. })
    ));
    assert_eq!(r1, d.rootfs_path("c1").unwrap());
    assert_eq!(fs::read(r1.join("a")).unwrap(), b"1");
    assert!(!r1.join("b").exists(), "the whiteout did not hide b");
    assert!(
        !r1.join("d/x").exists() && r1.join("d/y").exists(),
        "d is not opaque"
    );
    fs::write(r1.join("a"), b"changed").unwrap();
    assert_eq!(
        fs::read(r2.join("a")).unwrap(),
        b"1",
        "containers share a file"
    );
    assert_eq!(
        fs::read(d.layer_path(&l1.diff_id).join("a")).unwrap(),
        b"1",
        "the layer changed"
    );
    // The second root filesystem made nothing but the container's own directory.
    let upper = st.join("overlay/containers/c2/upper");
    assert_eq!(fs::read_dir(&upper).unwrap().count(), 0);

    d.remove_rootfs("c1").unwrap();
    d.remove_rootfs("c1").unwrap();
    assert!(!st.join("overlay/containers/c1").exists());
    // A container keeps its layers through a prune that keeps no chain.
    assert_eq!(d.prune(&[]).unwrap(), vec![p.chain.clone()]);
    assert!(d.layer_path(&l1.diff_id).is_dir() && d.layer_path(&p.chain).is_dir());
    assert_eq!(fs::read(r2.join("a")).unwrap(), b"1");
    d.remove_rootfs("c2").unwrap();
    assert_eq!(d.prune(&[]).unwrap(), vec![]);
    assert!(!d.layer_path(&l1.diff_id).exists() && !d.layer_path(&p.chain).exists());
    assert!(matches!(
        d.create_rootfs(&p.chain, "c3"),
        Err(StorageError::NoChain { .. })
    ));
}

#[test]
fn a_container_that_a_crash_left_before_its_mount_is_recorded_and_removed() {
    let t = tempfile::tempdir().unwrap();
    let st = t.path().join("st");
    if !can_mount(&st) {
        return;
    }
    let d = OverlayDriver::new(&st).unwrap();
    let l1 = layer(t.path(), "l1", &[E::File("a", b"1")]);
    let p = d.prepare(std::slice::from_ref(&l1)).unwrap();
    // What create_rootfs leaves when killed at `overlay:before-mount`: the directory and
    // its `lower` record, no mount.
    let c = st.join("overlay/containers/half");
    fs::create_dir(&c).unwrap();
    write_ids(&c.join(LOWER_FILE), std::slice::from_ref(&l1.diff_id)).unwrap();
    for sub in ["upper", "work", "merged"] {
        fs::create_dir(c.join(sub)).unwrap();
    }
    assert!(matches!(
        d.create_rootfs(&p.chain, "half"),
        Err(StorageError::Exists { .. })
    ));
    // The record keeps its layers through a prune, as a mounted container's would.
    d.prune(&[]).unwrap();
    assert!(d.layer_path(&l1.diff_id).is_dir());
    d.remove_rootfs("half").unwrap();
    assert!(!c.exists());
    // A mounted one is unmounted before anything of it is removed.
    let p = d.prepare(std::slice::from_ref(&l1)).unwrap();
    let r = d.create_rootfs(&p.chain, "full").unwrap();
    assert!(mount::is_mounted(&r, r.parent().unwrap()).unwrap());
    d.remove_rootfs("full").unwrap();
    assert!(!st.join("overlay/containers/full").exists());
    assert_eq!(fs::read(d.layer_path(&l1.diff_id).join("a")).unwrap(), b"1");
}

#[test]
fn the_probe_answers_once_per_kernel_and_cleans_up() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let st = t.path().join("st");
    let first = supported(&st);
    let cache = st.join("overlay-probe.json");
    assert!(cache.is_file());
    assert!(
        !st.join(".overlay-probe").exists(),
        "the probe left its scratch directory"
    );
    // The cached answer is what is read back: a forged one for this kernel is believed.
    let a: serde_json::Value = serde_json::from_slice(&fs::read(&cache).unwrap()).unwrap();
    let forged = serde_json::json!({"kernel": a["kernel"], "unsupported": "forged"});
    fs::write(&cache, forged.to_string()).unwrap();
    assert_eq!(supported(&st), Err("forged".to_string()));
    // Another kernel's answer is not.
    let other = serde_json::json!({"kernel": "0.0-other", "unsupported": "old"});
    fs::write(&cache, other.to_string()).unwrap();
    assert_eq!(supported(&st), first);
}

#[test]
fn hard_links_to_lower_layers_copy_the_target_up_as_overlay_would_find_it() {
    let t = tempfile::tempdir().unwrap();
    let st = t.path().join("st");
    if !can_mount(&st) {
        return;
    }
    let d = OverlayDriver::new(&st).unwrap();
    let l1 = layer(
        t.path(),
        "l1",
        &[
            E::File("bin/tool", b"v1"),
            E::Link("bin/alias", "bin/tool"),
            E::File("etc/old", b"o"),
            E::File("d/f", b"low"),
            E::File("d/g", b"hidden by the opaque d"),
        ],
    );
    // l2 hides l1's etc/old and makes d opaque with a d/f of its own.
    let l2 = layer(
        t.path(),
        "l2",
        &[
            E::File("etc/.wh.old", b""),
            E::File("d/.wh..wh..opq", b""),
            E::File("d/f", b"mid"),
        ],
    );
    let l3 = layer(
        t.path(),
        "l3",
        &[
            E::Dir("bin/"),
            E::Link("bin/tool2", "bin/tool"),
            E::Link("f2", "d/f"),
        ],
    );
    let p = d.prepare(&[l1.clone(), l2.clone(), l3.clone()]).unwrap();
    let top = d.layer_path(&p.chain);
    let lower = d.layer_path(&l1.diff_id);
    assert_eq!(fs::read(top.join("bin/tool2")).unwrap(), b"v1");
    assert_eq!(
        fs::metadata(top.join("bin/tool2")).unwrap().ino(),
        fs::metadata(top.join("bin/tool")).unwrap().ino(),
        "not a hard link inside the layer"
    );
    assert_ne!(
        fs::metadata(top.join("bin/tool")).unwrap().ino(),
        fs::metadata(lower.join("bin/tool")).unwrap().ino(),
        "a hard link across layers"
    );
    // Linking did not disturb the times the layer's tar gave its directory.
    assert_eq!(
        fs::metadata(top.join("bin")).unwrap().mtime(),
        1_600_000_000
    );
    // The target's other name in its layer comes up too: still one file.
    assert_eq!(
        fs::metadata(top.join("bin/alias")).unwrap().ino(),
        fs::metadata(top.join("bin/tool")).unwrap().ino(),
        "the link group was split"
    );
    assert_eq!(
        fs::read(top.join("f2")).unwrap(),
        b"mid",
        "found below the opaque layer"
    );
    let r = d.create_rootfs(&p.chain, "c").unwrap();
    assert_eq!(fs::read(r.join("bin/tool2")).unwrap(), b"v1");
    d.remove_rootfs("c").unwrap();

    // A link to a file an upper layer whited out, or hid under an opaque directory, has
    // no target.
    for (name, target) in [("l4", "etc/old"), ("l5", "d/g")] {
        let bad = layer(t.path(), name, &[E::Link("again", target)]);
        match d.prepare(&[l1.clone(), l2.clone(), bad]) {
            Err(e) => assert!(e.to_string().contains("neither this layer"), "{e}"),
            Ok(_) => panic!("a link to the hidden {target} was made"),
        }
    }
    assert!(fs::read_dir(st.join("overlay/layers"))
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().starts_with(".tmp-")));
}

#[test]
fn directories_a_layer_makes_only_as_parents_keep_the_lower_layers_metadata() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let st = t.path().join("st");
    if !can_mount(&st) {
        return;
    }
    let d = OverlayDriver::new(&st).unwrap();
    let l1 = layer(
        t.path(),
        "l1",
        &[
            E::DirOf("home/", 0o755, 0),
            E::DirOf("home/u/", 0o750, 1000),
            E::File("home/u/f", b"x"),
            E::File("home/u/g", b"y"),
        ],
    );
    // No directory entries: home and home/u are made as parents.
    let l2 = layer(
        t.path(),
        "l2",
        &[E::File("home/u/.wh.f", b""), E::File("home/u/h", b"z")],
    );
    let p = d.prepare(&[l1, l2]).unwrap();
    let top = d.layer_path(&p.chain);
    let md = fs::metadata(top.join("home/u")).unwrap();
    assert_eq!((md.permissions().mode() & 0o7777, md.uid()), (0o750, 1000));
    assert_eq!(md.mtime(), 1_600_000_000);
    let r = d.create_rootfs(&p.chain, "c").unwrap();
    let md = fs::metadata(r.join("home/u")).unwrap();
    assert_eq!((md.permissions().mode() & 0o7777, md.uid()), (0o750, 1000));
    assert!(
        !r.join("home/u/f").exists() && r.join("home/u/g").exists() && r.join("home/u/h").exists()
    );
    d.remove_rootfs("c").unwrap();
}
