//! The hostile-layer corpus and the ordinary cases, each checking that nothing outside the
//! target changed.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::*;
use crate::oci::media::{OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD};

/// One entry of a test layer. `Raw` writes the name bytes as they are, so hostile names
/// the tar crate would refuse to build can be made.
enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str, u32),
    Sym(&'a str, &'a str),
    Link(&'a str, &'a str),
    Fifo(&'a str),
    Raw(&'a [u8], tar::EntryType, &'a [u8], &'a [u8]),
}

fn header(t: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(t);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match *e {
            E::File(p, data, mode) => {
                let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
                b.append_data(&mut h, p, data).unwrap();
            }
            E::Dir(p, mode) => {
                let mut h = header(tar::EntryType::Directory, mode, 0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Sym(p, target) => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Link(p, target) => {
                let mut h = header(tar::EntryType::Link, 0o644, 0);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Fifo(p) => {
                let mut h = header(tar::EntryType::Fifo, 0o600, 0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Raw(name, t, link, data) => {
                let mut h = header(t, 0o644, data.len() as u64);
                h.as_old_mut().name[..name.len()].copy_from_slice(name);
                h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
                h.set_cksum();
                b.append(&h, data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A sandbox: `base/target` is unpacked into; `base/outside` holds a secret that must
/// survive; everything under `base` except `target` is compared before and after.
struct Sandbox {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    blobs: PathBuf,
    n: usize,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        fs::create_dir_all(base.join("target")).unwrap();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(base.join("outside/secret"), b"secret").unwrap();
        let blobs = tmp.path().join("blobs");
        fs::create_dir(&blobs).unwrap();
        Sandbox {
            base,
            blobs,
            _tmp: tmp,
            n: 0,
        }
    }

    fn target(&self) -> PathBuf {
        self.base.join("target")
    }

    fn layer_bytes(&mut self, tar: Vec<u8>, media_type: &str) -> LayerSource {
        let diff_id = Digest::sha256_of(&tar);
        let blob = match Compression::from_media_type(media_type).unwrap() {
            Compression::None => tar,
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&tar).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(&tar[..], 1).unwrap(),
        };
        self.n += 1;
        let path = self.blobs.join(format!("l{}", self.n));
        fs::write(&path, &blob).unwrap();
        LayerSource {
            digest: Digest::sha256_of(&blob),
            media_type: media_type.into(),
            path,
            diff_id,
        }
    }

    fn layer(&mut self, entries: &[E]) -> LayerSource {
        self.layer_bytes(tar_of(entries), OCI_LAYER_GZIP)
    }

    fn outside(&self) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
        let mut out = BTreeMap::new();
        walk(&self.base, &self.base, &mut out, true);
        out
    }

    fn inside(&self) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
        let mut out = BTreeMap::new();
        walk(&self.target(), &self.target(), &mut out, false);
        out
    }

    /// Unpacks and checks that nothing outside the target changed.
    fn unpack(&self, layers: &[LayerSource]) -> Result<UnpackStats, UnpackError> {
        let before = self.outside();
        let r = unpack_layers(&self.target(), layers, &UnpackOptions::default());
        assert_eq!(
            before,
            self.outside(),
            "something outside the target changed"
        );
        r
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (u32, Vec<u8>)>, skip_target: bool) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if skip_target && p == root.join("target") {
            continue;
        }
        let md = fs::symlink_metadata(&p).unwrap();
        let content = if md.file_type().is_file() {
            fs::read(&p).unwrap()
        } else if md.file_type().is_symlink() {
            fs::read_link(&p)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else {
            Vec::new()
        };
        out.insert(
            p.strip_prefix(root).unwrap().to_path_buf(),
            (md.mode(), content),
        );
        if md.is_dir() {
            walk(root, &p, out, skip_target);
        }
    }
}

fn unsafe_entry(r: Result<UnpackStats, UnpackError>, want: &str) {
    match r {
        Err(UnpackError::Unsafe { entry, reason, .. }) => {
            assert!(
                entry.contains(want),
                "error names {entry:?}, expected {want:?} ({reason})"
            )
        }
        other => panic!("expected an unsafe-entry error for {want}, got {other:?}"),
    }
}

#[test]
fn ordinary_entries_are_applied_with_modes_and_times() {
    let mut s = Sandbox::new();
    let l = s.layer(&[
        E::Dir("usr", 0o755),
        E::Dir("usr/bin", 0o555),
        E::File("usr/bin/su", b"su", 0o4755),
        E::Dir("tmp", 0o1777),
        E::File("usr/bin/sh", b"#!sh", 0o755),
        E::Link("usr/bin/sh2", "usr/bin/sh"),
        E::Sym("bin", "usr/bin"),
        E::Fifo("tmp/fifo"),
    ]);
    let st = s.unpack(&[l]).unwrap();
    let t = s.target();
    let md = |p: &str| fs::symlink_metadata(t.join(p)).unwrap();
    assert_eq!(md("usr/bin/su").mode() & 0o7777, 0o4755);
    assert_eq!(md("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(md("usr/bin").mode() & 0o7777, 0o555);
    assert_eq!(
        md("usr/bin").mtime(),
        1_600_000_000,
        "directory mtime is set after its contents"
    );
    assert_eq!(md("usr/bin/sh").mtime(), 1_600_000_000);
    assert_eq!(md("usr/bin/sh").ino(), md("usr/bin/sh2").ino());
    assert_eq!(fs::read_link(t.join("bin")).unwrap(), Path::new("usr/bin"));
    assert!(md("tmp/fifo").file_type().is_fifo_like());
    assert_eq!(st.files, 2);
    assert_eq!(st.hardlinks, 1);
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}
impl FifoLike for fs::FileType {
    fn is_fifo_like(&self) -> bool {
        std::os::unix::fs::FileTypeExt::is_fifo(self)
    }
}

#[test]
fn gzip_zstd_and_plain_layers_all_unpack() {
    for mt in [OCI_LAYER_TAR, OCI_LAYER_GZIP, OCI_LAYER_ZSTD] {
        let mut s = Sandbox::new();
        let l = s.layer_bytes(tar_of(&[E::File("a", b"x", 0o644)]), mt);
        s.unpack(&[l]).unwrap();
        assert_eq!(fs::read(s.target().join("a")).unwrap(), b"x", "{mt}");
    }
}

#[test]
fn content_that_contradicts_the_media_type_is_refused() {
    let mut s = Sandbox::new();
    let mut l = s.layer_bytes(tar_of(&[E::File("a", b"x", 0o644)]), OCI_LAYER_ZSTD);
    l.media_type = OCI_LAYER_GZIP.into();
    assert!(matches!(
        s.unpack(&[l]),
        Err(UnpackError::Magic { found: "zstd", .. })
    ));
}

#[test]
fn wrong_diff_id_is_refused_before_anything_is_written_in_a_chain() {
    let mut s = Sandbox::new();
    let a = s.layer(&[E::File("a", b"x", 0o644)]);
    let mut b = s.layer(&[E::File("b", b"y", 0o644)]);
    b.diff_id = Digest::sha256_of(b"other");
    assert!(matches!(s.unpack(&[a, b]), Err(UnpackError::DiffId { .. })));
    assert!(s.inside().is_empty());
}

#[test]
fn wrong_diff_id_of_a_single_layer_is_refused() {
    let mut s = Sandbox::new();
    let mut a = s.layer(&[E::File("a", b"x", 0o644)]);
    a.diff_id = Digest::sha256_of(b"other");
    assert!(matches!(s.unpack(&[a]), Err(UnpackError::DiffId { .. })));
}

#[test]
fn absolute_path_is_refused() {
    let mut s = Sandbox::new();
    let l = s.layer(&[E::Raw(
        b"/outside/secret",
        tar::EntryType::Regular,
        b"",
        b"pwned",
    )]);
    unsafe_entry(s.unpack(&[l]), "/outside/secret");
}

#[test]
fn dotdot_escape_is_refused() {
    let mut s = Sandbox::new();
    let l = s.layer(&[E::Raw(
        b"../outside/secret",
        tar::EntryType::Regular,
        b"",
        b"pwned",
    )]);
    unsafe_entry(s.unpack(&[l]), "../outside/secret");
    let l = s.layer(&[E::Raw(
        b"a/../../outside/new",
        tar::EntryType::Regular,
        b"",
        b"x",
    )]);
    unsafe_entry(s.unpack(&[l]), "a/../../outside/new");
}

#[test]
fn write_through_a_symlink_in_the_same_layer_is_refused() {
    for target in ["../outside", "/", "/tmp"] {
        let mut s = Sandbox::new();
        let l = s.layer(&[
            E::Sym("evil", target),
            E::File("evil/secret", b"pwned", 0o644),
        ]);
        unsafe_entry(s.unpack(&[l]), "evil/secret");
    }
}

#[test]
fn write_through_a_symlink_from_an_earlier_layer_is_refused() {
    let mut s = Sandbox::new();
    let a = s.layer(&[E::Dir("d", 0o755), E::Sym("d/evil", "../../outside")]);
    let b = s.layer(&[E::File("d/evil/secret", b"pwned", 0o644)]);
    unsafe_entry(s.unpack(&[a.clone(), b.clone()]), "d/evil/secret");
    // The same, layer by layer (as the zfs driver applies them).
    let s2 = Sandbox::new();
    unpack_layers(&s2.target(), &[a], &UnpackOptions::default()).unwrap();
    unsafe_entry(s2.unpack(&[b]), "d/evil/secret");
}

#[test]
fn a_file_replacing_a_symlink_replaces_it_and_does_not_write_through_it() {
    let mut s = Sandbox::new();
    let a = s.layer(&[E::Sym("x", "../outside/secret")]);
    let b = s.layer(&[E::File("x", b"mine", 0o644)]);
    s.unpack(std::slice::from_ref(&a)).unwrap();
    s.unpack(&[b]).unwrap();
    assert_eq!(fs::read(s.target().join("x")).unwrap(), b"mine");
}

#[test]
fn hard_link_to_outside_is_refused() {
    let mut s = Sandbox::new();
    let l = s.layer(&[E::Raw(
        b"h",
        tar::EntryType::Link,
        b"../outside/secret",
        b"",
    )]);
    unsafe_entry(s.unpack(&[l]), "h");
    let l = s.layer(&[E::Raw(b"h", tar::EntryType::Link, b"/outside/secret", b"")]);
    unsafe_entry(s.unpack(&[l]), "h");
    // Through a symlink planted first.
    let l = s.layer(&[E::Sym("o", "../outside"), E::Link("h2", "o/secret")]);
    unsafe_entry(s.unpack(&[l]), "h2");
}

#[test]
fn hard_link_to_a_file_of_an_earlier_layer_works() {
    let mut s = Sandbox::new();
    let a = s.layer(&[E::File("f", b"data", 0o644)]);
    let b = s.layer(&[E::Link("g", "f")]);
    s.unpack(&[a, b]).unwrap();
    let t = s.target();
    assert_eq!(
        fs::metadata(t.join("f")).unwrap().ino(),
        fs::metadata(t.join("g")).unwrap().ino()
    );
}

#[test]
fn whiteout_naming_dotdot_is_refused() {
    let mut s = Sandbox::new();
    let l = s.layer(&[
        E::Dir("d", 0o755),
        E::Raw(b"d/.wh...", tar::EntryType::Regular, b"", b""),
    ]);
    unsafe_entry(s.unpack(&[l]), "d/.wh...");
    let l = s.layer(&[E::Raw(b".wh...", tar::EntryType::Regular, b"", b"")]);
    unsafe_entry(s.unpack(&[l]), ".wh...");
    assert!(s.base.join("outside/secret").exists());
}

#[test]
fn whiteouts_remove_lower_files_and_directories() {
    let mut s = Sandbox::new();
    let a = s.layer(&[
        E::Dir("d", 0o755),
        E::File("d/x", b"1", 0o644),
        E::File("keep", b"k", 0o644),
        E::File("gone", b"g", 0o644),
    ]);
    let b = s.layer(&[
        E::File(".wh.gone", b"", 0o644),
        E::File(".wh.d", b"", 0o644),
    ]);
    let st = s.unpack(&[a, b]).unwrap();
    let names: Vec<_> = s.inside().into_keys().collect();
    assert_eq!(names, vec![PathBuf::from("keep")]);
    assert!(
        st.skipped >= 3,
        "lower entries the upper layer removes are not written: {st:?}"
    );
}

#[test]
fn a_hard_link_keeps_a_file_that_an_upper_layer_removes() {
    let mut s = Sandbox::new();
    let a = s.layer(&[E::File("a", b"content", 0o644), E::Link("b", "a")]);
    let b = s.layer(&[E::File(".wh.a", b"", 0o644)]);
    s.unpack(&[a, b]).unwrap();
    assert_eq!(fs::read(s.target().join("b")).unwrap(), b"content");
    assert!(!s.target().join("a").exists());
}

#[test]
fn opaque_directory_at_the_root_hides_every_lower_entry() {
    let mut s = Sandbox::new();
    let a = s.layer(&[
        E::Dir("etc", 0o755),
        E::File("etc/passwd", b"root", 0o644),
        E::File("f", b"1", 0o644),
    ]);
    let b = s.layer(&[
        E::File("new", b"n", 0o644),
        E::File(".wh..wh..opq", b"", 0o644),
    ]);
    s.unpack(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(
        s.inside().into_keys().collect::<Vec<_>>(),
        vec![PathBuf::from("new")]
    );
    // Layer by layer gives the same.
    let s2 = Sandbox::new();
    s2.unpack(&[a]).unwrap();
    s2.unpack(&[b]).unwrap();
    assert_eq!(
        s2.inside().into_keys().collect::<Vec<_>>(),
        vec![PathBuf::from("new")]
    );
}

#[test]
fn opaque_directory_keeps_its_own_layer_entries() {
    let mut s = Sandbox::new();
    let a = s.layer(&[E::Dir("d", 0o755), E::File("d/old", b"1", 0o644)]);
    let b = s.layer(&[
        E::Dir("d", 0o755),
        E::File("d/new", b"2", 0o644),
        E::File("d/.wh..wh..opq", b"", 0o644),
    ]);
    let s2 = Sandbox::new();
    s2.unpack(std::slice::from_ref(&a)).unwrap();
    s2.unpack(std::slice::from_ref(&b)).unwrap();
    s.unpack(&[a, b]).unwrap();
    for sb in [&s, &s2] {
        let names: Vec<_> = sb.inside().into_keys().collect();
        assert_eq!(names, vec![PathBuf::from("d"), PathBuf::from("d/new")]);
    }
}

#[test]
fn file_replaced_by_directory_and_back_across_layers() {
    let mut s = Sandbox::new();
    let a = s.layer(&[E::File("x", b"file", 0o644)]);
    let b = s.layer(&[E::Dir("x", 0o755), E::File("x/inner", b"i", 0o644)]);
    let c = s.layer(&[E::File("x", b"file again", 0o600)]);
    s.unpack(&[a.clone(), b.clone(), c.clone()]).unwrap();
    assert_eq!(fs::read(s.target().join("x")).unwrap(), b"file again");
    let s2 = Sandbox::new();
    for l in [a, b, c] {
        s2.unpack(&[l]).unwrap();
    }
    assert_eq!(fs::read(s2.target().join("x")).unwrap(), b"file again");
    assert_eq!(
        fs::metadata(s2.target().join("x"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn very_long_names_are_applied_or_refused_by_name() {
    let mut s = Sandbox::new();
    let long_dir = "d".repeat(200);
    let long = format!("{long_dir}/{}/{}", "e".repeat(200), "f".repeat(250));
    let l = s.layer(&[E::File(&long, b"deep", 0o644)]);
    s.unpack(&[l]).unwrap();
    assert_eq!(fs::read(s.target().join(&long)).unwrap(), b"deep");
    let too_long = "g".repeat(300);
    let l = s.layer(&[E::File(&too_long, b"x", 0o644)]);
    match s.unpack(&[l]) {
        Err(UnpackError::Fs { entry, .. }) => assert_eq!(entry, too_long),
        other => panic!("expected a filesystem error naming the entry, got {other:?}"),
    }
}

#[test]
fn empty_layers_change_nothing() {
    let mut s = Sandbox::new();
    let empty_tar = s.layer_bytes(tar_of(&[]), OCI_LAYER_TAR);
    let zero_bytes = s.layer_bytes(Vec::new(), OCI_LAYER_TAR);
    let gz = s.layer(&[]);
    s.unpack(std::slice::from_ref(&empty_tar)).unwrap();
    s.unpack(std::slice::from_ref(&zero_bytes)).unwrap();
    s.unpack(&[empty_tar, zero_bytes, gz]).unwrap();
    assert!(s.inside().is_empty());
}

#[test]
fn trailing_garbage_after_the_tar_is_ignored_and_counted_in_the_diff_id() {
    let mut s = Sandbox::new();
    let mut t = tar_of(&[E::File("a", b"x", 0o644)]);
    t.extend_from_slice(b"garbage after the end of the archive");
    let l = s.layer_bytes(t, OCI_LAYER_GZIP);
    s.unpack(std::slice::from_ref(&l)).unwrap();
    s.unpack(&[l.clone(), l]).unwrap();
    assert_eq!(
        s.inside().into_keys().collect::<Vec<_>>(),
        vec![PathBuf::from("a")]
    );
}

#[test]
fn unwritable_directory_is_still_filled_and_keeps_its_mode() {
    let mut s = Sandbox::new();
    let l = s.layer(&[E::Dir("ro", 0o500), E::File("ro/f", b"x", 0o400)]);
    s.unpack(&[l]).unwrap();
    assert_eq!(
        fs::metadata(s.target().join("ro")).unwrap().mode() & 0o777,
        0o500
    );
    assert_eq!(fs::read(s.target().join("ro/f")).unwrap(), b"x");
}

#[test]
fn a_whiteout_does_not_remove_entries_of_its_own_layer() {
    let mut s = Sandbox::new();
    let a = s.layer(&[
        E::File("f", b"old", 0o644),
        E::Dir("d", 0o755),
        E::File("d/old", b"o", 0o644),
    ]);
    let b = s.layer(&[
        E::File("f", b"new", 0o644),
        E::File(".wh.f", b"", 0o644),
        E::File("d/new", b"n", 0o644),
        E::File(".wh.d", b"", 0o644),
    ]);
    s.unpack(&[a.clone(), b.clone()]).unwrap();
    let s2 = Sandbox::new();
    s2.unpack(std::slice::from_ref(&a)).unwrap();
    s2.unpack(std::slice::from_ref(&b)).unwrap();
    for sb in [&s, &s2] {
        let names: Vec<_> = sb.inside().into_keys().collect();
        assert_eq!(
            names,
            vec![
                PathBuf::from("d"),
                PathBuf::from("d/new"),
                PathBuf::from("f")
            ]
        );
        assert_eq!(fs::read(sb.target().join("f")).unwrap(), b"new");
    }
}

#[test]
fn device_nodes_are_made_where_permitted_and_counted_otherwise() {
    let mut s = Sandbox::new();
    let mut h = header(tar::EntryType::Char, 0o666, 0);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut h, "null", &[][..]).unwrap();
    let l = s.layer_bytes(b.into_inner().unwrap(), OCI_LAYER_TAR);
    let st = s.unpack(&[l]).unwrap();
    if st.devices == 1 {
        let md = fs::symlink_metadata(s.target().join("null")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(
            &md.file_type()
        ));
        assert_eq!(md.mode() & 0o777, 0o666);
    } else {
        assert_eq!(st.devices_skipped, 1);
    }
}
