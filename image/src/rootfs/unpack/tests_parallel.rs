//! Regular files created by worker threads (`pool`) give exactly the tree, counters and
//! errors of an unpack on one thread, also for layers whose order matters: names used
//! twice, a file replaced by a directory and back within a layer, hard links to a file
//! that is replaced later, whiteouts of the layer's own files, planted symlinks.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::oci::media::{OCI_LAYER_GZIP, OCI_LAYER_TAR};

enum E<'a> {
    File(&'a str, Vec<u8>),
    Dir(&'a str),
    Sym(&'a str, &'a str),
    Link(&'a str, &'a str),
}

fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (i, e) in entries.iter().enumerate() {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_600_000_000 + i as u64);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o600 + (i as u32 % 0o100));
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, &data[..]).unwrap();
            }
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Sym(p, t) | E::Link(p, t) => {
                let t2 = if matches!(e, E::Sym(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                h.set_entry_type(t2);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn layer(dir: &Path, n: usize, entries: &[E], gzip: bool) -> LayerSource {
    let tar = tar_of(entries);
    let diff_id = Digest::sha256_of(&tar);
    let blob = if gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&tar).unwrap();
        e.finish().unwrap()
    } else {
        tar
    };
    let path = dir.join(format!("l{n}"));
    fs::write(&path, &blob).unwrap();
    LayerSource {
        digest: Digest::sha256_of(&blob),
        media_type: if gzip { OCI_LAYER_GZIP } else { OCI_LAYER_TAR }.into(),
        path,
        diff_id,
    }
}

/// Every path below `root`: mode, mtime, link count and content (or link target).
fn tree(root: &Path) -> BTreeMap<PathBuf, (u32, i64, u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = fs::symlink_metadata(&p).unwrap();
            let content = if md.is_file() {
                fs::read(&p).unwrap()
            } else if md.is_symlink() {
                fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                todo.push(p.clone());
                Vec::new()
            };
            let mtime = if md.is_dir() { 0 } else { md.mtime() };
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            out.insert(rel, (md.mode(), mtime, md.nlink(), content));
        }
    }
    out
}

type Outcome = (
    BTreeMap<PathBuf, (u32, i64, u64, Vec<u8>)>,
    Result<UnpackStats, String>,
);

/// Unpacks `layers` with `threads`, returning the tree and the counters or error.
fn unpack_with(base: &Path, name: &str, layers: &[LayerSource], threads: usize) -> Outcome {
    let target = base.join(name);
    fs::create_dir(&target).unwrap();
    let opts = UnpackOptions {
        threads,
        ..UnpackOptions::default()
    };
    let r = unpack_layers(&target, layers, &opts).map_err(|e| e.to_string());
    (tree(&target), r)
}

/// The same layers on one thread and with workers: the same outcome.
fn same_as_serial(layers: &[Vec<E>], gzip: bool) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let ls: Vec<LayerSource> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| layer(tmp.path(), i, l, gzip))
        .collect();
    let serial = unpack_with(tmp.path(), "serial", &ls, 1);
    for threads in [2, 4] {
        let parallel = unpack_with(tmp.path(), &format!("t{threads}"), &ls, threads);
        assert_eq!(serial.1, parallel.1, "{threads} threads: counters or error");
        assert_eq!(serial.0, parallel.0, "{threads} threads: tree");
    }
    serial
}

fn many(prefix: &str, n: usize) -> Vec<E<'static>> {
    (0..n)
        .map(|i| {
            let p: &'static str = Box::leak(format!("{prefix}/f{i}").into_boxed_str());
            E::File(p, format!("{prefix} {i}").repeat(i % 7 + 1).into_bytes())
        })
        .collect()
}

fn hazards() -> Vec<E<'static>> {
    let mut l = vec![E::Dir("a"), E::Dir("b")];
    l.extend(many("a", 60));
    l.extend(many("b", 60));
    l.extend([
        // A name used twice: the second wins.
        E::File("dup", b"first".to_vec()),
        E::File("dup", b"second".to_vec()),
        // A file, then a directory of the same name with a file in it, then a file again.
        E::File("fd", b"file".to_vec()),
        E::Dir("fd"),
        E::File("fd/in", b"inside".to_vec()),
        E::File("fd", b"file again".to_vec()),
        // A file below a name, then a file at the name itself (a file in flight below it).
        E::Dir("up"),
        E::File("up/down", b"down".to_vec()),
        E::File("up", b"up is a file".to_vec()),
        // A hard link to a file that is replaced afterwards keeps the old content.
        E::File("orig", b"old".to_vec()),
        E::Link("linked", "orig"),
        E::File("orig", b"new".to_vec()),
        // A whiteout of a file of the same layer removes nothing of it.
        E::File("a/.wh.f3", Vec::new()),
        // A file, a symlink over it, then a file over the symlink.
        E::File("s", b"x".to_vec()),
        E::Sym("s", "/etc"),
        E::File("s", b"not through".to_vec()),
        // Large enough to be written by the reading thread when streamed, once as a
        // plain file and once over a directory with a file just handed over below it.
        E::File("big", vec![7u8; (pool::STREAM_COPY_MAX + 1) as usize]),
        E::Dir("bigdir"),
        E::File("bigdir/small", b"small".to_vec()),
        E::File("bigdir", vec![8u8; (pool::STREAM_COPY_MAX + 1) as usize]),
    ]);
    l.extend(many("b", 5).into_iter().map(|e| match e {
        E::File(p, d) => E::File(p, [d, b" again".to_vec()].concat()),
        e => e,
    }));
    l
}

#[test]
fn a_single_streamed_layer_gives_the_same_tree_with_workers() {
    let (tree, stats) = same_as_serial(&[hazards()], true);
    let stats = stats.unwrap();
    assert!(stats.files > 120, "{stats:?}");
    assert_eq!(tree[Path::new("dup")].3, b"second");
    assert_eq!(tree[Path::new("fd")].3, b"file again");
    assert_eq!(tree[Path::new("up")].3, b"up is a file");
    assert_eq!(tree[Path::new("linked")].3, b"old");
    assert_eq!(tree[Path::new("orig")].3, b"new");
    assert_eq!(tree[Path::new("s")].3, b"not through");
    assert_eq!(
        tree[Path::new("bigdir")].3.len() as u64,
        pool::STREAM_COPY_MAX + 1
    );
    assert!(tree.contains_key(Path::new("a/f3")));
    assert_eq!(tree[Path::new("b/f2")].3, b"b 2b 2b 2 again");
}

#[test]
fn a_chain_in_memory_gives_the_same_tree_with_workers() {
    // The lower layer has directories and files the upper one replaces by files, and a
    // whiteout that removes a lower file while the upper layer writes around it.
    let mut lower = vec![E::Dir("a"), E::Dir("p"), E::File("p/keep", b"k".to_vec())];
    lower.extend(many("a", 40));
    lower.extend(many("p", 10));
    let mut upper = vec![E::File("p", b"p is a file now".to_vec())];
    upper.extend(many("a", 20));
    upper.push(E::File("a/.wh.f30", Vec::new()));
    upper.extend(many("c", 30));
    let (tree, stats) = same_as_serial(&[lower, hazards(), upper], false);
    stats.unwrap();
    assert_eq!(tree[Path::new("p")].3, b"p is a file now");
    assert!(!tree.contains_key(Path::new("a/f30")));
}

#[test]
fn a_planted_symlink_is_refused_the_same_way_with_workers() {
    let mut l = many("d", 30);
    l.push(E::Sym("evil", "/"));
    l.extend(many("d", 3));
    l.push(E::File("evil/escaped", b"no".to_vec()));
    // A failed unpack's tree is discarded by its caller: only the error is compared.
    let tmp = tempfile::tempdir().unwrap();
    let ls = [layer(tmp.path(), 0, &l, true)];
    let serial = unpack_with(tmp.path(), "serial", &ls, 1).1.unwrap_err();
    assert!(
        serial.contains("evil") && serial.contains("symlink"),
        "{serial}"
    );
    for threads in [2, 4] {
        let parallel = unpack_with(tmp.path(), &format!("t{threads}"), &ls, threads).1;
        assert_eq!(parallel.unwrap_err(), serial);
    }
}
