use chrono::{DateTime, Utc};

use super::*;

fn at(nanos: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, nanos).unwrap()
}

fn entry(stream: Stream, text: &str, partial: bool) -> Entry {
    Entry {
        time: at(123_456_789),
        stream,
        partial,
        text: text.as_bytes().to_vec(),
    }
}

#[test]
fn k8s_file_lines_have_time_stream_tag_and_text() {
    let e = entry(Stream::Stderr, "hello world", false);
    let line = format_entry(LogDriver::K8sFile, &e);
    assert_eq!(
        String::from_utf8(line.clone()).unwrap(),
        "2027-01-15T08:00:00.123456789Z stderr F hello world\n"
    );
    assert_eq!(
        parse_line(LogDriver::K8sFile, &line[..line.len() - 1]),
        Some(e)
    );
    let p = entry(Stream::Stdout, "", true);
    let line = format_entry(LogDriver::K8sFile, &p);
    assert!(line.ends_with(b" stdout P \n"));
    assert_eq!(
        parse_line(LogDriver::K8sFile, &line[..line.len() - 1]),
        Some(p)
    );
}

#[test]
fn json_file_lines_are_dockers() {
    let e = entry(Stream::Stdout, "say \"hi\"", false);
    let line = format_entry(LogDriver::JsonFile, &e);
    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(v["log"], "say \"hi\"\n");
    assert_eq!(v["stream"], "stdout");
    assert_eq!(v["time"], "2027-01-15T08:00:00.123456789Z");
    assert_eq!(
        parse_line(LogDriver::JsonFile, &line[..line.len() - 1]),
        Some(e)
    );
    let p = entry(Stream::Stderr, "piece", true);
    let line = format_entry(LogDriver::JsonFile, &p);
    assert_eq!(
        parse_line(LogDriver::JsonFile, &line[..line.len() - 1]),
        Some(p)
    );
}

#[test]
fn lines_that_are_not_entries_are_skipped() {
    for bad in [
        &b""[..],
        b"2027-01-15T08:00:00Z",
        b"2027-01-15T08:00:00Z stdin F x",
        b"2027-01-15T08:00:00Z stdout X x",
        b"yesterday stdout F x",
    ] {
        assert_eq!(parse_line(LogDriver::K8sFile, bad), None);
    }
    assert_eq!(parse_line(LogDriver::JsonFile, b"{\"log\":1}"), None);
}

#[test]
fn the_splitter_cuts_at_newlines_and_long_lines() {
    let mut s = LineSplitter::default();
    assert_eq!(s.push(b"ab"), vec![]);
    assert_eq!(
        s.push(b"c\nd\n\ne"),
        vec![
            (b"abc".to_vec(), false),
            (b"d".to_vec(), false),
            (vec![], false)
        ]
    );
    assert_eq!(s.finish(), Some((b"e".to_vec(), true)));
    assert_eq!(s.finish(), None);
    let long = vec![b'x'; MAX_LINE * 2 + 5];
    let out = s.push(&long);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|(t, p)| *p && t.len() == MAX_LINE));
    assert_eq!(s.push(b"\n"), vec![(vec![b'x'; 5], false)]);
}

#[test]
fn sizes_parse_with_suffixes_and_a_floor() {
    assert_eq!(parse_size("10m").unwrap(), 10 << 20);
    assert_eq!(parse_size("64k").unwrap(), 64 << 10);
    assert_eq!(parse_size("1G").unwrap(), 1 << 30);
    assert_eq!(parse_size("8192").unwrap(), 8192);
    assert_eq!(parse_size("10mb").unwrap(), 10 << 20);
    for bad in ["", "x", "1k", "-5m", "99999999999g", "5 m m"] {
        assert!(parse_size(bad).is_err(), "{bad}");
    }
    assert_eq!(
        "json-file".parse::<LogDriver>().unwrap(),
        LogDriver::JsonFile
    );
    assert!("journald".parse::<LogDriver>().is_err());
}

#[test]
fn the_writer_rotates_by_size_and_keeps_the_newest_files() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        driver: LogDriver::K8sFile,
        max_size: 200,
        max_files: 3,
    };
    let mut w = LogWriter::open(dir.path(), opts.clone()).unwrap();
    // Each entry is 48 bytes: four fit in a file, the fifth rotates.
    for i in 0..20 {
        w.write(&entry(Stream::Stdout, &format!("line {i:02}"), false))
            .unwrap();
    }
    let files = log_files(dir.path(), opts.max_files);
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() <= 200);
    }
    assert!(!rotated(dir.path(), 3).exists());
    let got = read_entries(dir.path(), LogDriver::K8sFile, opts.max_files).unwrap();
    let texts: Vec<String> = got
        .iter()
        .map(|e| String::from_utf8(e.text.clone()).unwrap())
        .collect();
    // The newest entries, in order, up to the last one written.
    assert_eq!(texts.last().unwrap(), "line 19");
    assert!(texts.windows(2).all(|w| w[0] < w[1]), "{texts:?}");
    assert_eq!(texts.len(), 12, "{texts:?}");
}

#[test]
fn one_file_is_emptied_instead_of_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        driver: LogDriver::JsonFile,
        max_size: 150,
        max_files: 1,
    };
    let mut w = LogWriter::open(dir.path(), opts).unwrap();
    for i in 0..10 {
        w.write(&entry(Stream::Stdout, &format!("n{i}"), false))
            .unwrap();
    }
    assert_eq!(log_files(dir.path(), 1).len(), 1);
    assert!(std::fs::metadata(w.path()).unwrap().len() <= 150);
    let got = read_entries(dir.path(), LogDriver::JsonFile, 1).unwrap();
    assert_eq!(got.last().unwrap().text, b"n9");
}

#[test]
fn the_follower_reads_appends_across_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        driver: LogDriver::K8sFile,
        max_size: 100,
        max_files: 2,
    };
    let mut w = LogWriter::open(dir.path(), opts).unwrap();
    w.write(&entry(Stream::Stdout, "before", false)).unwrap();
    let mut f = Follower::at_end(&w.path(), LogDriver::K8sFile).unwrap();
    assert!(f.poll().unwrap().is_empty());
    w.write(&entry(Stream::Stdout, "one", false)).unwrap();
    // This one rotates: "one" is in the old file, "two" in the new one.
    w.write(&entry(Stream::Stderr, "two", false)).unwrap();
    w.write(&entry(Stream::Stderr, "three", false)).unwrap();
    let got: Vec<_> = f.poll().unwrap().into_iter().map(|e| e.text).collect();
    assert_eq!(got, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    assert!(f.poll().unwrap().is_empty());
}

#[test]
fn the_follower_reads_the_file_between_two_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        driver: LogDriver::K8sFile,
        max_size: 50,
        max_files: 3,
    };
    let mut w = LogWriter::open(dir.path(), opts).unwrap();
    let mut f = Follower::at_end(&w.path(), LogDriver::K8sFile).unwrap();
    // One entry a file: each write after the first rotates.
    for t in ["a", "b", "c"] {
        w.write(&entry(Stream::Stdout, t, false)).unwrap();
    }
    let got: Vec<_> = f.poll().unwrap().into_iter().map(|e| e.text).collect();
    assert_eq!(got, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
}
