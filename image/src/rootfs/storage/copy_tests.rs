use super::*;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

#[test]
fn copy_keeps_contents_modes_links_and_xattrs() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    fs::create_dir_all(src.join("dir/sub")).unwrap();
    fs::write(src.join("dir/file"), b"data").unwrap();
    fs::set_permissions(src.join("dir/file"), fs::Permissions::from_mode(0o4750)).unwrap();
    fs::set_permissions(src.join("dir/sub"), fs::Permissions::from_mode(0o511)).unwrap();
    fs::hard_link(src.join("dir/file"), src.join("hard")).unwrap();
    symlink("dir/file", src.join("link")).unwrap();
    // A symlink to outside: recreated, never followed.
    symlink(d.path(), src.join("dir/out")).unwrap();
    let xattrs = xattr::set(src.join("dir/file"), "user.stockade", b"v1").is_ok();
    let dst = d.path().join("dst");
    copy_tree(&src, &dst, 4).unwrap();
    assert_eq!(fs::read(dst.join("dir/file")).unwrap(), b"data");
    assert_eq!(
        fs::metadata(dst.join("dir/file")).unwrap().mode() & 0o7777,
        0o4750
    );
    assert_eq!(
        fs::metadata(dst.join("dir/sub")).unwrap().mode() & 0o7777,
        0o511
    );
    assert_eq!(
        fs::metadata(dst.join("hard")).unwrap().ino(),
        fs::metadata(dst.join("dir/file")).unwrap().ino()
    );
    assert_eq!(
        fs::read_link(dst.join("link")).unwrap(),
        Path::new("dir/file")
    );
    assert_eq!(fs::read_link(dst.join("dir/out")).unwrap(), d.path());
    assert_eq!(
        fs::symlink_metadata(dst.join("dir")).unwrap().mtime(),
        fs::symlink_metadata(src.join("dir")).unwrap().mtime()
    );
    if xattrs {
        assert_eq!(
            xattr::get(dst.join("dir/file"), "user.stockade")
                .unwrap()
                .as_deref(),
            Some(&b"v1"[..])
        );
    } else {
        eprintln!("skipped the xattr check: the test directory's filesystem has no user xattrs");
    }
}

#[test]
fn an_existing_destination_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir(d.path().join("src")).unwrap();
    fs::create_dir(d.path().join("dst")).unwrap();
    assert!(copy_tree(&d.path().join("src"), &d.path().join("dst"), 1).is_err());
}

const DEPTH: usize = 3500;

#[test]
fn a_tree_deeper_than_the_descriptor_limit_is_copied() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    // Built with *at calls one level at a time: the path would exceed PATH_MAX.
    let mut cur = open_dir_path(&src).unwrap();
    for i in 0..DEPTH {
        mkdirat(&cur, "d", Mode::from_bits_truncate(0o755)).unwrap();
        if i % 100 == 0 {
            let f = openat(
                &cur,
                "f",
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .unwrap();
            nix::unistd::write(&f, format!("{i}").as_bytes()).unwrap();
            // A second name for every other file: the hard link is made from the top.
            if i % 200 == 0 {
                linkat(&cur, "f", &cur, "g", AtFlags::empty()).unwrap();
            }
        }
        cur = open_dir_at(&cur, OsStr::new("d")).unwrap();
    }
    drop(cur);
    // In a child limited to 32 descriptors, far fewer than the tree has levels: a
    // descending copy runs out there. The child is this test binary, running only the
    // helper below.
    let dst = t.path().join("dst");
    let paths = format!("{}\n{}", src.display(), dst.display());
    assert!(crate::test_support::run_helper_with_fd_limit(
        module_path!(),
        "copy_paths_from_env",
        32,
        COPY_ENV,
        paths.as_ref(),
    ));
    // Walk both trees side by side, level by level.
    let (mut a, mut b) = (open_dir_path(&src).unwrap(), open_dir_path(&dst).unwrap());
    for i in 0..=DEPTH {
        assert_eq!(list_sorted(&a), list_sorted(&b), "level {i}");
        if i % 100 == 0 && i < DEPTH {
            let read = |dir: &File| {
                let f = openat(dir, "f", OFlag::O_RDONLY, Mode::empty()).unwrap();
                let mut s = String::new();
                io::Read::read_to_string(&mut File::from(f), &mut s).unwrap();
                s
            };
            assert_eq!(read(&b), i.to_string());
            assert_eq!(read(&a), read(&b));
            let f = fstatat(&b, "f", AtFlags::AT_SYMLINK_NOFOLLOW).unwrap();
            if i % 200 == 0 {
                let g = fstatat(&b, "g", AtFlags::AT_SYMLINK_NOFOLLOW).unwrap();
                assert_eq!(f.st_ino, g.st_ino, "level {i}: the hard link is kept");
            }
        }
        if i < DEPTH {
            a = open_dir_at(&a, OsStr::new("d")).unwrap();
            b = open_dir_at(&b, OsStr::new("d")).unwrap();
        }
    }
}

fn list_sorted(d: &File) -> Vec<OsString> {
    let mut v = crate::rootfs::remove::list(d.as_fd()).unwrap();
    v.sort();
    v
}

const COPY_ENV: &str = "STOCKADE_TEST_COPY_TREE";

/// Run by the test above in a child with few descriptors.
#[test]
#[ignore = "a helper: runs only in the child of a_tree_deeper_than_the_descriptor_limit_is_copied"]
fn copy_paths_from_env() {
    if let Some(v) = std::env::var_os(COPY_ENV) {
        let v = v.into_string().unwrap();
        let (src, dst) = v.split_once('\n').unwrap();
        copy_tree(Path::new(src), Path::new(dst), 2).unwrap();
    }
}

#[test]
fn workers_copy_every_file_and_directory_times_survive_them() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    for i in 0..6 {
        let dir = src.join(format!("d{i}/e"));
        fs::create_dir_all(&dir).unwrap();
        for j in 0..40 {
            fs::write(dir.join(format!("f{j}")), format!("{i}/{j}").repeat(j)).unwrap();
            fs::write(src.join(format!("d{i}/g{j}")), format!("{j}")).unwrap();
        }
    }
    // Old times on every directory: a file a worker makes after its directory was
    // finished would leave the copy's time at now.
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    for i in 0..6 {
        for p in [src.join(format!("d{i}/e")), src.join(format!("d{i}"))] {
            let times = fs::FileTimes::new().set_modified(old).set_accessed(old);
            fs::File::open(&p).unwrap().set_times(times).unwrap();
        }
    }
    let walk = |root: &Path| {
        let mut out = Vec::new();
        let mut todo = vec![root.to_path_buf()];
        while let Some(p) = todo.pop() {
            let md = fs::symlink_metadata(&p).unwrap();
            let data = if md.is_dir() {
                todo.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
                Vec::new()
            } else {
                fs::read(&p).unwrap()
            };
            out.push((
                p.strip_prefix(root).unwrap().to_path_buf(),
                md.mode(),
                md.mtime(),
                data,
            ));
        }
        out.sort();
        out
    };
    for threads in [1, 3] {
        let dst = d.path().join(format!("dst{threads}"));
        copy_tree(&src, &dst, threads).unwrap();
        let (a, b) = (walk(&src), walk(&dst));
        assert_eq!(a.len(), 6 * 82 + 1);
        assert_eq!(a, b, "{threads} threads");
    }
}
