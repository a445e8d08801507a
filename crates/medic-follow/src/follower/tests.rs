//! Unit tests of the follower through its public API, on small files in a temp directory.

use super::*;
use std::io::Write;

/// An event, owned, for assertions.
#[derive(Debug, PartialEq, Eq, Clone)]
enum Ev {
    Lines(usize, PathBuf, u64, String),
    Overlong(u64, u64),
    Rotated(PathBuf, u64),
    Truncated(Option<PathBuf>, u64, bool),
    Problem(PathBuf, String),
}

fn step(f: &mut Follower, ms: u64) -> Vec<Ev> {
    let mut out = Vec::new();
    f.step(Duration::from_millis(ms), &mut |e| {
        out.push(match e {
            Event::Lines {
                log,
                path,
                first_line,
                bytes,
            } => Ev::Lines(
                log,
                path.to_path_buf(),
                first_line,
                String::from_utf8_lossy(bytes).into(),
            ),
            Event::Overlong { line, len, .. } => Ev::Overlong(line, len),
            Event::Rotated {
                from,
                lines_drained_after_rename,
                ..
            } => Ev::Rotated(from, lines_drained_after_rename),
            Event::Truncated {
                recovered_from,
                recovered_lines,
                suspected_lost_lines,
                ..
            } => Ev::Truncated(recovered_from, recovered_lines, suspected_lost_lines > 0),
            Event::Problem { path, why, .. } => Ev::Problem(path.to_path_buf(), why),
        })
    })
    .unwrap();
    out
}

fn opts() -> Options {
    Options {
        from_start: true,
        poll_interval: Duration::from_millis(20),
        rotate_quiet: Duration::from_millis(100),
        ..Options::default()
    }
}

fn append(p: &Path, s: &[u8]) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    f.write_all(s).unwrap();
}

fn text(evs: &[Ev]) -> String {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Lines(_, _, _, s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn partial_lines_are_held_until_their_newline() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    append(&p, b"a\nb");
    let mut f = Follower::open(std::slice::from_ref(&p), opts()).unwrap();
    assert_eq!(
        step(&mut f, 0),
        vec![Ev::Lines(0, p.clone(), 1, "a\n".into())]
    );
    append(&p, b"c");
    assert_eq!(step(&mut f, 0), vec![]);
    append(&p, b"\xff\nd\n");
    assert_eq!(
        step(&mut f, 0),
        vec![
            Ev::Lines(0, p.clone(), 2, "bc\u{fffd}\n".into()),
            Ev::Lines(0, p.clone(), 3, "d\n".into())
        ]
    );
}

#[test]
fn overlong_lines_are_skipped_and_reported() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    append(&p, b"short\n");
    append(&p, &[b'x'; 20]);
    append(&p, b"\nok\n");
    let o = Options {
        max_line: 10,
        ..opts()
    };
    let mut f = Follower::open(std::slice::from_ref(&p), o).unwrap();
    assert_eq!(
        step(&mut f, 0),
        vec![
            Ev::Lines(0, p.clone(), 1, "short\n".into()),
            Ev::Overlong(2, 20),
            Ev::Lines(0, p.clone(), 3, "ok\n".into())
        ]
    );
    // An overlong line arriving in pieces: skipped without being buffered.
    append(&p, &[b'y'; 8]);
    assert_eq!(step(&mut f, 0), vec![]);
    append(&p, &[b'y'; 8]);
    assert_eq!(step(&mut f, 0), vec![]);
    append(&p, b"yy\nfine\n");
    assert_eq!(
        step(&mut f, 0),
        vec![
            Ev::Overlong(4, 18),
            Ev::Lines(0, p.clone(), 5, "fine\n".into())
        ]
    );
}

#[test]
fn tail_mode_starts_at_the_end_with_true_line_numbers() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    append(&p, b"1\n2\n3\npart");
    let o = Options {
        from_start: false,
        ..opts()
    };
    let mut f = Follower::open(std::slice::from_ref(&p), o).unwrap();
    assert_eq!(step(&mut f, 0), vec![]);
    append(&p, b"ial\n5\n");
    assert_eq!(
        step(&mut f, 0),
        vec![
            Ev::Lines(0, p.clone(), 4, "partial\n".into()),
            Ev::Lines(0, p.clone(), 5, "5\n".into())
        ]
    );
}

#[test]
fn a_missing_file_is_reported_once_then_read_when_it_appears() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    let mut f = Follower::open(std::slice::from_ref(&p), opts()).unwrap();
    let evs = step(&mut f, 50);
    assert!(
        matches!(&evs[..], [Ev::Problem(_, why)] if why.contains("missing")),
        "{evs:?}"
    );
    assert_eq!(step(&mut f, 50), vec![]);
    assert_eq!(f.open_files(), 0);
    append(&p, b"hello\n");
    assert_eq!(
        step(&mut f, 500),
        vec![Ev::Lines(0, p.clone(), 1, "hello\n".into())]
    );
    assert_eq!(f.open_files(), 1);
}

/// A log that is a named pipe (a log shipper's) is named as a problem, not opened: opening a
/// pipe waits for a writer, and the other logs are still followed.
#[test]
fn a_pipe_is_named_and_the_other_logs_are_followed() {
    let d = tempfile::tempdir().unwrap();
    let pipe = d.path().join("error.log");
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let p = d.path().join("access.log");
    append(&p, b"a\n");
    // On another thread, so that a follower that waits on the pipe fails the test instead of
    // hanging it.
    let (done, got) = std::sync::mpsc::channel();
    let logs = [pipe.clone(), p.clone()];
    std::thread::spawn(move || {
        let mut f = Follower::open(&logs, opts()).unwrap();
        let evs = step(&mut f, 50);
        let _ = done.send((evs, f.open_files()));
    });
    let (evs, open_files) = got
        .recv_timeout(Duration::from_secs(20))
        .expect("the follower waited on the pipe");
    assert!(
        evs.iter().any(
            |e| matches!(e, Ev::Problem(at, why) if *at == pipe && why.contains("not a file"))
        ),
        "{evs:?}"
    );
    assert!(
        evs.contains(&Ev::Lines(1, p.clone(), 1, "a\n".into())),
        "{evs:?}"
    );
    assert_eq!(open_files, 1);
}

#[test]
fn rename_rotation_drains_the_old_file_first_then_closes_it() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    let p1 = d.path().join("x.log.1");
    append(&p, b"a\n");
    let mut f = Follower::open(std::slice::from_ref(&p), opts()).unwrap();
    assert_eq!(text(&step(&mut f, 0)), "a\n");
    // logrotate renames, creates; nginx writes to the old inode until USR1.
    let mut old = fs::OpenOptions::new().append(true).open(&p).unwrap();
    fs::rename(&p, &p1).unwrap();
    append(&p, b"new1\n");
    old.write_all(b"b\n").unwrap();
    let evs = step(&mut f, 0);
    assert_eq!(
        evs,
        vec![
            Ev::Lines(0, p1.clone(), 2, "b\n".into()),
            Ev::Lines(0, p.clone(), 1, "new1\n".into())
        ]
    );
    assert_eq!(f.open_files(), 2);
    old.write_all(b"c\n").unwrap();
    assert_eq!(
        step(&mut f, 0),
        vec![Ev::Lines(0, p1.clone(), 3, "c\n".into())]
    );
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(step(&mut f, 0), vec![Ev::Rotated(p1.clone(), 2)]);
    assert_eq!(f.open_files(), 1);
}

#[test]
fn a_partial_line_left_in_a_rotated_file_is_a_problem_not_a_line() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    let p1 = d.path().join("x.log.1");
    append(&p, b"a\nhalf");
    let mut f = Follower::open(std::slice::from_ref(&p), opts()).unwrap();
    assert_eq!(text(&step(&mut f, 0)), "a\n");
    fs::rename(&p, &p1).unwrap();
    append(&p, b"n\n");
    assert_eq!(text(&step(&mut f, 0)), "n\n");
    std::thread::sleep(Duration::from_millis(150));
    let evs = step(&mut f, 0);
    assert!(
        matches!(&evs[0], Ev::Problem(x, why) if x == &p1 && why.contains("partial line of 4 bytes")),
        "{evs:?}"
    );
    assert_eq!(evs[1], Ev::Rotated(p1.clone(), 0));
}

#[test]
fn copytruncate_recovers_from_the_copy_and_counts_the_rest() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    let p1 = d.path().join("x.log.1");
    append(&p, b"a\n");
    let mut f = Follower::open(std::slice::from_ref(&p), opts()).unwrap();
    assert_eq!(text(&step(&mut f, 0)), "a\n");
    append(&p, b"b\nc\n");
    fs::copy(&p, &p1).unwrap();
    append(&p, b"lost\n");
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&p, b"new\n");
    let evs = step(&mut f, 0);
    assert_eq!(
        evs,
        vec![
            Ev::Lines(0, p1.clone(), 2, "b\nc\n".into()),
            Ev::Truncated(Some(p1.clone()), 2, true),
            Ev::Lines(0, p.clone(), 1, "new\n".into()),
        ]
    );
}

#[test]
fn compressed_rotations_are_never_read() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    append(&p, b"a\n");
    let mut f = Follower::open(std::slice::from_ref(&p), opts()).unwrap();
    assert_eq!(text(&step(&mut f, 0)), "a\n");
    append(&p, b"b\n");
    // The only copy is compressed: it must not be taken for the copy.
    fs::copy(&p, d.path().join("x.log.1.gz")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    let evs = step(&mut f, 0);
    assert!(
        matches!(&evs[..], [Ev::Truncated(None, 0, true)]),
        "{evs:?}"
    );
}

#[test]
fn state_resumes_exactly_and_finds_a_file_rotated_meanwhile() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    let st = d.path().join("state.json");
    append(&p, b"a\nb\n");
    let o = Options {
        state_file: Some(st.clone()),
        ..opts()
    };
    let mut f = Follower::open(std::slice::from_ref(&p), o.clone()).unwrap();
    assert_eq!(text(&step(&mut f, 0)), "a\nb\n");
    f.save().unwrap();
    drop(f);
    append(&p, b"c\n");
    let mut f = Follower::open(std::slice::from_ref(&p), o.clone()).unwrap();
    assert_eq!(
        step(&mut f, 0),
        vec![Ev::Lines(0, p.clone(), 3, "c\n".into())]
    );
    f.save().unwrap();
    drop(f);
    // Rotated twice while stopped: x.log -> .2, a generation we never saw at .1.
    append(&p, b"d\n");
    fs::rename(&p, d.path().join("x.log.2")).unwrap();
    append(&p, b"e\n");
    fs::rename(&p, d.path().join("x.log.1")).unwrap();
    append(&p, b"f\n");
    let mut f = Follower::open(std::slice::from_ref(&p), o.clone()).unwrap();
    assert_eq!(
        step(&mut f, 0),
        vec![
            Ev::Lines(0, d.path().join("x.log.2"), 4, "d\n".into()),
            Ev::Lines(0, d.path().join("x.log.1"), 1, "e\n".into()),
            Ev::Lines(0, p.clone(), 1, "f\n".into()),
        ]
    );
}

#[test]
fn a_reused_inode_is_not_resumed_from() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    let st = d.path().join("state.json");
    append(&p, b"first generation, long line\n");
    let o = Options {
        state_file: Some(st.clone()),
        ..opts()
    };
    let mut f = Follower::open(std::slice::from_ref(&p), o.clone()).unwrap();
    step(&mut f, 0);
    f.save().unwrap();
    drop(f);
    // Same inode, other content and longer than the saved offset: what a reused inode looks
    // like to dev+inode alone.
    fs::write(&p, b"another file entirely, even longer\nx\n").unwrap();
    let mut f = Follower::open(std::slice::from_ref(&p), o).unwrap();
    let evs = step(&mut f, 0);
    assert!(
        matches!(&evs[0], Ev::Problem(_, why) if why.contains("truncated or replaced")),
        "{evs:?}"
    );
    assert_eq!(text(&evs), "another file entirely, even longer\nx\n");
}

#[test]
fn a_corrupt_state_file_is_reported_and_ignored() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    let st = d.path().join("state.json");
    append(&p, b"a\n");
    fs::write(&st, b"{\"version\":1,\"logs\":[{\"pa").unwrap();
    let o = Options {
        state_file: Some(st.clone()),
        ..opts()
    };
    let mut f = Follower::open(std::slice::from_ref(&p), o).unwrap();
    let evs = step(&mut f, 0);
    assert!(
        matches!(&evs[0], Ev::Problem(x, why) if x == &st && why.contains("unusable")),
        "{evs:?}"
    );
    assert_eq!(text(&evs), "a\n");
    f.save().unwrap();
    assert!(State::load(&st).unwrap().is_some());
}

#[test]
fn polling_alone_follows_a_rename_rotation() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    let p1 = d.path().join("x.log.1");
    append(&p, b"a\n");
    let mut f = Follower::open_with(std::slice::from_ref(&p), opts(), false).unwrap();
    let evs = step(&mut f, 0);
    assert!(
        matches!(&evs[0], Ev::Problem(_, why) if why.contains("polling")),
        "{evs:?}"
    );
    assert_eq!(text(&evs), "a\n");
    let writer = {
        let p = p.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let mut old = fs::OpenOptions::new().append(true).open(&p).unwrap();
            fs::rename(&p, p.with_extension("log.1")).unwrap();
            append(&p, b"new\n");
            old.write_all(b"b\n").unwrap();
        })
    };
    // Waits (by polling) until the rotation shows up.
    let mut got = String::new();
    let t0 = Instant::now();
    while got.len() < "b\nnew\n".len() && t0.elapsed() < Duration::from_secs(5) {
        got += &text(&step(&mut f, 1000));
    }
    writer.join().unwrap();
    assert_eq!(got, "b\nnew\n");
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(step(&mut f, 100), vec![Ev::Rotated(p1, 1)]);
    assert_eq!(f.open_files(), 1);
}

/// Random writes (lines split anywhere, overlong lines, non-UTF-8 bytes, reads at random
/// moments): what is delivered is exactly the file's lines, overlong ones reported instead.
#[test]
fn random_writes_deliver_exactly_the_whole_lines() {
    use rand::{RngExt, SeedableRng};
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..20 {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.log");
        append(&p, b"");
        let max_line = rng.random_range(1..300usize);
        let o = Options { max_line, ..opts() };
        let mut f = Follower::open(std::slice::from_ref(&p), o).unwrap();
        let mut written = Vec::new();
        let mut got = Vec::new();
        let mut overlong = Vec::new();
        let mut next_line = 1u64;
        for _ in 0..200 {
            let n = rng.random_range(0..600usize);
            let chunk: Vec<u8> = (0..n)
                .map(|_| match rng.random_range(0..20u8) {
                    0 => b'\n',
                    1 => 0xff,
                    _ => b'a',
                })
                .collect();
            append(&p, &chunk);
            written.extend_from_slice(&chunk);
            if rng.random_range(0..3u8) == 0 {
                f.step(Duration::ZERO, &mut |e| match e {
                    Event::Lines {
                        bytes, first_line, ..
                    } => {
                        assert_eq!(first_line, next_line);
                        next_line += memchr::memchr_iter(b'\n', bytes).count() as u64;
                        got.extend_from_slice(bytes);
                    }
                    Event::Overlong { line, len, .. } => {
                        assert_eq!(line, next_line);
                        next_line += 1;
                        overlong.push(len);
                    }
                    other => panic!("{other:?}"),
                })
                .unwrap();
            }
        }
        f.step(Duration::ZERO, &mut |e| match e {
            Event::Lines { bytes, .. } => got.extend_from_slice(bytes),
            Event::Overlong { len, .. } => overlong.push(len),
            other => panic!("{other:?}"),
        })
        .unwrap();
        let mut want = Vec::new();
        let mut want_long = Vec::new();
        for l in written.split_inclusive(|&b| b == b'\n') {
            if !l.ends_with(b"\n") {
                break; // the held tail
            }
            if l.len() - 1 > max_line {
                want_long.push(l.len() as u64 - 1);
            } else {
                want.extend_from_slice(l);
            }
        }
        assert_eq!(got, want, "seed {seed}");
        assert_eq!(overlong, want_long, "seed {seed}");
    }
}

#[test]
fn a_generation_created_and_rotated_while_stopped_is_found_even_mid_rotation() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    let st = d.path().join("state.json");
    let o = Options {
        state_file: Some(st.clone()),
        ..opts()
    };
    append(&p, b"a\n");
    let mut f = Follower::open(std::slice::from_ref(&p), o.clone()).unwrap();
    assert_eq!(text(&step(&mut f, 0)), "a\n");
    // Saved between logrotate's rename and its create: no live file, one draining.
    let mut l = fs::OpenOptions::new().append(true).open(&p).unwrap();
    fs::rename(&p, d.path().join("x.log.1")).unwrap();
    assert_eq!(step(&mut f, 0), vec![]);
    f.save().unwrap();
    drop(f);
    // While stopped: nginx writes to the old inode, a new file is created, written, rotated.
    l.write_all(b"b\n").unwrap();
    fs::rename(d.path().join("x.log.1"), d.path().join("x.log.2")).unwrap();
    append(&p, b"m\n");
    fs::rename(&p, d.path().join("x.log.1")).unwrap();
    append(&p, b"p\n");
    let mut f = Follower::open(std::slice::from_ref(&p), o).unwrap();
    assert_eq!(
        step(&mut f, 0),
        vec![
            Ev::Lines(0, d.path().join("x.log.2"), 2, "b\n".into()),
            Ev::Lines(0, d.path().join("x.log.1"), 1, "m\n".into()),
            Ev::Lines(0, p.clone(), 1, "p\n".into()),
        ]
    );
    assert_eq!(f.open_files(), 3);
}

#[test]
fn a_file_compressed_while_stopped_is_reported_with_what_was_not_read() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    let st = d.path().join("state.json");
    let o = Options {
        state_file: Some(st.clone()),
        ..opts()
    };
    append(&p, b"2026/12/05 first line\n");
    let mut f = Follower::open(std::slice::from_ref(&p), o.clone()).unwrap();
    step(&mut f, 0);
    f.save().unwrap();
    drop(f);
    append(&p, b"2026/12/05 second line\n2026/12/05 third line\n");
    // logrotate: rename, create, compress (delaycompress off).
    let body = fs::read(&p).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        File::create(d.path().join("x.log.1.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(&body).unwrap();
    gz.finish().unwrap();
    fs::remove_file(&p).unwrap();
    append(&p, b"new\n");
    let mut f = Follower::open(std::slice::from_ref(&p), o).unwrap();
    let evs = step(&mut f, 0);
    assert!(
        matches!(&evs[0], Ev::Problem(_, why) if why.contains("x.log.1.gz") && why.contains("45 bytes after its line 1, about 3 lines")),
        "{evs:?}"
    );
    assert_eq!(text(&evs), "new\n");
}

#[test]
fn a_copy_compressed_before_we_noticed_is_counted_not_read() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.log");
    append(&p, b"2026/12/05 a\n");
    let mut f = Follower::open(std::slice::from_ref(&p), opts()).unwrap();
    assert_eq!(text(&step(&mut f, 0)), "2026/12/05 a\n");
    append(&p, b"2026/12/05 b\n");
    // copytruncate + compress, all before our next look.
    let mut gz = flate2::write::GzEncoder::new(
        File::create(d.path().join("x.log.1.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(&fs::read(&p).unwrap()).unwrap();
    gz.finish().unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    let mut lost = (0, 0);
    let mut problems = Vec::new();
    f.step(Duration::ZERO, &mut |e| match e {
        Event::Truncated {
            recovered_from: None,
            recovered_lines: 0,
            suspected_lost_lines,
            suspected_lost_bytes,
            ..
        } => lost = (suspected_lost_lines, suspected_lost_bytes),
        Event::Problem { why, .. } => problems.push(why),
        other => panic!("{other:?}"),
    })
    .unwrap();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains("13 bytes after line 1 are only in it"),
        "{problems:?}"
    );
    assert!(lost.0 >= 1 && lost.1 >= 13, "{lost:?}");
}
