//! The bounds on hostile images: decompression bombs, sparse files, deep trees, many
//! entries and huge headers. Each case checks the error names the layer and the flag.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::oci::media::{OCI_LAYER_GZIP, OCI_LAYER_TAR};

struct Case {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    n: usize,
}

impl Case {
    fn new() -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        fs::create_dir(dir.join("target")).unwrap();
        Case {
            _tmp: tmp,
            dir,
            n: 0,
        }
    }

    fn target(&self) -> PathBuf {
        self.dir.join("target")
    }

    /// A layer blob; the diffID is the real one unless `diff_id` is given.
    fn layer(&mut self, blob: &[u8], media_type: &str, diff_id: Digest) -> LayerSource {
        self.n += 1;
        let path = self.dir.join(format!("blob{}", self.n));
        fs::write(&path, blob).unwrap();
        LayerSource {
            digest: Digest::sha256_of(blob),
            media_type: media_type.into(),
            path,
            diff_id,
        }
    }

    fn plain(&mut self, tar: &[u8]) -> LayerSource {
        self.layer(tar, OCI_LAYER_TAR, Digest::sha256_of(tar))
    }

    fn unpack(
        &self,
        layers: &[LayerSource],
        limits: UnpackLimits,
    ) -> Result<UnpackStats, UnpackError> {
        let opts = UnpackOptions {
            limits,
            ..UnpackOptions::default()
        };
        unpack_layers(&self.target(), layers, &opts)
    }
}

fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h
}

fn files(names: &[String]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for n in names {
        b.append_data(&mut file_header(1), n, &b"x"[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// A gzip layer of one file of `size` zero bytes, made without holding it in memory.
fn zero_bomb(size: u64) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    b.append_data(
        &mut file_header(size),
        "bomb",
        std::io::repeat(0).take(size),
    )
    .unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    for e in fs::read_dir(dir).unwrap() {
        let md = e.unwrap().metadata().unwrap();
        total += md.blocks() * 512;
    }
    total
}

fn limits() -> UnpackLimits {
    UnpackLimits::default()
}

fn want_error(r: Result<UnpackStats, UnpackError>, layer: &Digest, flag: &str) -> String {
    let e = r.expect_err("the bound must stop the unpack");
    let msg = e.to_string();
    assert!(msg.contains(&layer.to_string()), "{msg}");
    assert!(msg.contains(flag), "{msg}");
    msg
}

#[test]
fn a_decompression_bomb_stops_at_the_cap_and_names_the_layer() {
    let mut c = Case::new();
    let blob = zero_bomb(64 << 20);
    assert!(blob.len() < 1 << 20, "the bomb is small: {}", blob.len());
    // A wrong diffID too: the cap must trip before the whole stream is read and hashed.
    let l = c.layer(&blob, OCI_LAYER_GZIP, Digest::sha256_of(b"unknown"));
    let lim = UnpackLimits {
        max_bytes: SizeLimit::Bytes(8 << 20),
        ..limits()
    };
    let r = c.unpack(std::slice::from_ref(&l), lim);
    assert!(matches!(r, Err(UnpackError::Limit { .. })), "{r:?}");
    want_error(r, &l.digest, "--max-unpacked-size");
    assert!(disk_usage(&c.target()) <= 9 << 20);
}

#[test]
fn a_bomb_in_an_upper_layer_of_a_chain_is_caught_by_the_scan() {
    let mut c = Case::new();
    let low = c.plain(&files(&["a".into()]));
    let blob = zero_bomb(32 << 20);
    let high = c.layer(&blob, OCI_LAYER_GZIP, Digest::sha256_of(b"unknown"));
    let lim = UnpackLimits {
        max_bytes: SizeLimit::Bytes(4 << 20),
        ..limits()
    };
    let r = c.unpack(&[low, high.clone()], lim);
    want_error(r, &high.digest, "--max-unpacked-size");
    // Nothing was written: a chain is checked whole before the first file.
    assert_eq!(fs::read_dir(c.target()).unwrap().count(), 0);
}

#[test]
fn the_same_layers_unpack_under_a_cap_they_fit() {
    let mut c = Case::new();
    let blob = zero_bomb(2 << 20);
    let tar = {
        let mut d = flate2::read::GzDecoder::new(&blob[..]);
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut v).unwrap();
        v
    };
    let l = c.layer(&blob, OCI_LAYER_GZIP, Digest::sha256_of(&tar));
    let lim = UnpackLimits {
        max_bytes: SizeLimit::Bytes(tar.len() as u64),
        ..limits()
    };
    c.unpack(&[l], lim).unwrap();
    assert_eq!(
        fs::metadata(c.target().join("bomb")).unwrap().len(),
        2 << 20
    );
}

/// A GNU sparse tar: one file of apparent size `real`, 4 KiB of data at `at`.
fn sparse_tar(real: u64, at: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_size(4096);
    h.set_path("sparse").unwrap();
    {
        let g = h.as_gnu_mut().unwrap();
        g.sparse[0].set_offset(at);
        g.sparse[0].set_length(4096);
        // A trailing hole is a last block of length 0 at the end (as GNU tar writes it).
        if at + 4096 < real {
            g.sparse[1].set_offset(real);
            g.sparse[1].set_length(0);
        }
        g.set_real_size(real);
    }
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &[b'x'; 4096][..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn a_sparse_file_is_written_sparse() {
    let mut c = Case::new();
    let real = 2u64 << 30;
    let l = c.plain(&sparse_tar(real, 1 << 30));
    let lim = UnpackLimits {
        max_sparse_bytes: SizeLimit::Bytes(4 << 30),
        ..limits()
    };
    c.unpack(&[l], lim).unwrap();
    let md = fs::metadata(c.target().join("sparse")).unwrap();
    assert_eq!(md.len(), real);
    // 4 KiB of data; a file system without holes would show 2 GiB here.
    assert!(
        md.blocks() * 512 <= 1 << 20,
        "{} bytes on disk",
        md.blocks() * 512
    );
    let mut f = fs::File::open(c.target().join("sparse")).unwrap();
    use std::io::{Read, Seek, SeekFrom};
    f.seek(SeekFrom::Start(1 << 30)).unwrap();
    let mut buf = [0u8; 8];
    f.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"xxxxxxxx");
}

#[test]
fn the_apparent_size_of_sparse_files_is_bounded() {
    let mut c = Case::new();
    let l = c.plain(&sparse_tar(2 << 30, 0));
    let lim = UnpackLimits {
        max_sparse_bytes: SizeLimit::Bytes(1 << 30),
        ..limits()
    };
    let r = c.unpack(std::slice::from_ref(&l), lim);
    want_error(r, &l.digest, "--max-sparse-size");
    assert!(!c.target().join("sparse").exists());
}

#[test]
fn a_deep_tree_is_refused_by_depth() {
    let mut c = Case::new();
    let deep = vec!["d"; 300].join("/") + "/f";
    let l = c.plain(&files(&[deep]));
    let r = c.unpack(std::slice::from_ref(&l), limits());
    let msg = want_error(r, &l.digest, "--max-path-depth");
    assert!(msg.len() < 1000, "the entry name is quoted short: {msg}");
    let ok = vec!["d"; 20].join("/") + "/f";
    let mut c = Case::new();
    let l = c.plain(&files(&[ok]));
    c.unpack(&[l], limits()).unwrap();
}

#[test]
fn entries_are_counted_over_the_whole_image() {
    let mut c = Case::new();
    let names: Vec<String> = (0..6).map(|i| format!("f{i}")).collect();
    let a = c.plain(&files(&names[..3]));
    let b = c.plain(&files(&names[3..]));
    let lim = UnpackLimits {
        max_entries: 5,
        ..limits()
    };
    let r = c.unpack(&[a.clone(), b.clone()], lim);
    want_error(r, &b.digest, "--max-entries");
    let mut c = Case::new();
    let a = c.plain(&files(&names[..3]));
    let b = c.plain(&files(&names[3..]));
    let lim = UnpackLimits {
        max_entries: 6,
        ..limits()
    };
    c.unpack(&[a, b], lim).unwrap();
}

#[test]
fn long_names_and_pax_headers_are_bounded() {
    let lim = UnpackLimits {
        max_header_bytes: 200,
        ..limits()
    };
    let mut c = Case::new();
    let l = c.plain(&files(&["n".repeat(300)]));
    want_error(
        c.unpack(std::slice::from_ref(&l), lim),
        &l.digest,
        "--max-header-size",
    );

    let mut c = Case::new();
    let mut b = tar::Builder::new(Vec::new());
    let big = vec![b'v'; 400];
    b.append_pax_extensions([("SCHILY.xattr.user.big", &big[..])])
        .unwrap();
    b.append_data(&mut file_header(1), "f", &b"x"[..]).unwrap();
    let l = c.plain(&b.into_inner().unwrap());
    want_error(
        c.unpack(std::slice::from_ref(&l), lim),
        &l.digest,
        "--max-header-size",
    );
}

#[test]
fn a_not_a_tar_layer_is_reported_without_its_raw_bytes() {
    let mut c = Case::new();
    let mut junk = b"\x1b[31mNOT A TAR \xe2\x80\xae".to_vec();
    junk.resize(1024, b'A');
    let l = c.plain(&junk);
    let r = c.unpack(std::slice::from_ref(&l), limits());
    let msg = r.expect_err("not a tar").to_string();
    assert!(msg.contains(&l.digest.to_string()), "{msg}");
    assert!(
        !msg.contains('\u{1b}') && !msg.contains('\u{202e}'),
        "{msg}"
    );
}
