//! Save/load behaviour against a real directory.

use std::fs;
use std::num::NonZeroUsize;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use jiff::Timestamp;

use crate::*;

/// Stand-in for the flannel crate's validator: `KEY=VALUE` lines, MTU present.
pub(crate) fn subnet_env_ok(content: &[u8]) -> Result<(), BadContent> {
    let bad = |why: String| Err(BadContent(why));
    let Ok(text) = std::str::from_utf8(content) else {
        return bad("not UTF-8".into());
    };
    for line in text.lines() {
        if !line.contains('=') {
            return bad(format!("line {line:?} is not KEY=VALUE"));
        }
    }
    if !text.lines().any(|l| l.starts_with("FLANNEL_MTU=")) {
        return bad("missing FLANNEL_MTU".into());
    }
    Ok(())
}

pub(crate) fn env(subnet: u8) -> Vec<u8> {
    format!(
        "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.{subnet}.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
    )
    .into_bytes()
}

pub(crate) fn new_gen<'a>(
    content: &'a [u8],
    node: &'a str,
    cidrs: &'a [String],
) -> NewGeneration<'a> {
    NewGeneration {
        content,
        node,
        boot_id: "5e0c33f9-7c4d-4a6e-9d5b-3f2a1c0b9e8d\n",
        pod_cidrs: cidrs,
        source: Source::Regenerated,
        saved_at: "2026-01-31T07:33:00Z".parse().expect("timestamp"),
    }
}

fn keep(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("non-zero")
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(tmp.path()).expect("open");
    (tmp, store)
}

#[test]
fn saved_generation_loads_back_with_its_metadata() {
    let (tmp, store) = store();
    let cidrs = vec![
        "10.42.3.0/24".to_string(),
        "2001:cafe:42:3::/64".to_string(),
    ];
    let content = env(3);
    let saved = store
        .save(&new_gen(&content, "theoden", &cidrs), subnet_env_ok)
        .expect("save");
    assert_eq!(saved.outcome, Outcome::Stored);
    assert_eq!(saved.generation.number, 1);
    assert_eq!(saved.generation.path, tmp.path().join("subnet-env.000001"));

    let inventory = store.load(subnet_env_ok).expect("load");
    assert!(inventory.rejected.is_empty(), "{:?}", inventory.rejected);
    assert!(inventory.leftovers.is_empty());
    assert_eq!(inventory.valid, vec![saved.generation.clone()]);
    let meta = &inventory.valid[0].meta;
    assert_eq!(meta.node, "theoden");
    assert_eq!(meta.boot_id, "5e0c33f9-7c4d-4a6e-9d5b-3f2a1c0b9e8d");
    assert_eq!(meta.saved_at.to_string(), "2026-01-31T07:33:00Z");
    assert_eq!(meta.sha256, format::sha256_hex(&content));
    assert_eq!(meta.pod_cidrs, cidrs);
    assert_eq!(meta.source, Source::Regenerated);
    assert_eq!(inventory.valid[0].content, content);

    let mode = fs::metadata(&saved.generation.path)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    assert_eq!(names(tmp.path()), [".subnet-env.lock", "subnet-env.000001"]);
}

#[test]
fn identical_content_for_the_same_node_is_not_written_again() {
    let (tmp, store) = store();
    let a = env(0);
    let first = store
        .save(&new_gen(&a, "boromir", &[]), subnet_env_ok)
        .expect("save");
    let mut later = new_gen(&a, "boromir", &[]);
    later.saved_at = Timestamp::now();
    later.source = Source::Live;
    let again = store.save(&later, subnet_env_ok).expect("save again");
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert_eq!(again.generation, first.generation);
    assert_eq!(names(tmp.path()).len(), 2);

    // Same bytes for another node, or new bytes: stored.
    let other = store
        .save(&new_gen(&a, "samwise", &[]), subnet_env_ok)
        .expect("other node");
    assert_eq!(
        (other.outcome, other.generation.number),
        (Outcome::Stored, 2)
    );
    let b = env(1);
    let changed = store
        .save(&new_gen(&b, "boromir", &[]), subnet_env_ok)
        .expect("changed");
    assert_eq!(
        (changed.outcome, changed.generation.number),
        (Outcome::Stored, 3)
    );
    // Back to the old bytes: the newest for boromir is b, so a is stored anew.
    let back = store
        .save(&new_gen(&a, "boromir", &[]), subnet_env_ok)
        .expect("back");
    assert_eq!((back.outcome, back.generation.number), (Outcome::Stored, 4));
}

#[test]
fn only_the_newest_n_generations_are_kept() {
    let (tmp, store) = store();
    let store = store.keep(keep(3));
    for i in 0..8u8 {
        let content = env(i);
        let saved = store
            .save(&new_gen(&content, "n", &[]), subnet_env_ok)
            .expect("save");
        let expect_removed = usize::from(i >= 3);
        assert_eq!(saved.housekeeping.removed.len(), expect_removed, "save {i}");
        assert!(saved.housekeeping.failed.is_empty());
    }
    let inventory = store.load(subnet_env_ok).expect("load");
    let numbers: Vec<u64> = inventory.valid.iter().map(|g| g.number).collect();
    assert_eq!(numbers, [8, 7, 6]);
    assert_eq!(inventory.valid[0].content, env(7));
    assert_eq!(names(tmp.path()).len(), 4);
}

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let (tmp, store) = store();
    let content = env(0);
    let cases: Vec<(NewGeneration<'_>, &str)> = vec![
        (new_gen(b"", "n", &[]), "empty"),
        (
            new_gen(b"hello\n", "n", &[]),
            "invalid subnet.env: line \"hello\"",
        ),
        (new_gen(&content, " ", &[]), "without a node name"),
        (
            NewGeneration {
                boot_id: "\n",
                ..new_gen(&content, "n", &[])
            },
            "without a boot ID",
        ),
    ];
    for (new, want) in cases {
        let err = store.save(&new, subnet_env_ok).expect_err(want).to_string();
        assert!(err.contains(want), "{err:?} lacks {want:?}");
    }
    let huge = vec![b'x'; 1024 * 1024];
    let err = store
        .save(&new_gen(&huge, "n", &[]), any_content)
        .expect_err("huge");
    assert!(matches!(err, SaveError::TooLarge { .. }), "{err}");
    assert!(
        names(tmp.path()).iter().all(|n| n == ".subnet-env.lock"),
        "{:?}",
        names(tmp.path())
    );
}

#[test]
fn damaged_and_foreign_files_are_reported_and_skipped() {
    let (tmp, store) = store();
    let dir = tmp.path();
    let good = env(1);
    store
        .save(&new_gen(&good, "n", &[]), subnet_env_ok)
        .expect("save");
    let whole = fs::read(dir.join("subnet-env.000001")).expect("read");

    let meta = Metadata {
        node: "n".into(),
        boot_id: "b".into(),
        saved_at: Timestamp::UNIX_EPOCH,
        sha256: String::new(),
        pod_cidrs: vec![],
        source: Source::Live,
    };
    let wrong_sha = String::from_utf8(format::encode(3, &meta, &env(3)))
        .expect("utf-8")
        .replace(&format::sha256_hex(&env(3)), &format::sha256_hex(b"other"));
    fs::write(dir.join("subnet-env.000002"), &whole[..whole.len() / 2]).expect("torn");
    fs::write(dir.join("subnet-env.000003"), wrong_sha).expect("sha");
    fs::write(dir.join("subnet-env.000004"), b"\x00\xffgarbage\n\x01").expect("garbage");
    fs::write(dir.join("subnet-env.000005"), vec![b'a'; 1024 * 1024 + 1]).expect("huge");
    std::os::unix::fs::symlink(dir.join("subnet-env.000001"), dir.join("subnet-env.000006"))
        .expect("symlink");
    fs::create_dir(dir.join("subnet-env.000007")).expect("dir");
    fs::write(dir.join("subnet-env.000008"), &whole).expect("copied under another number");
    fs::write(
        dir.join("subnet-env.000009"),
        format::encode(9, &meta, b"no equals sign\n"),
    )
    .expect("invalid content");
    fs::write(dir.join("subnet-env.000010"), b"rebootguard-store 2\n{}\nX").expect("future");
    fs::write(dir.join("subnet-env.000011"), b"").expect("empty");
    fs::write(dir.join("subnet-env.bak"), &whole).expect("malformed name");
    fs::write(dir.join("notes.txt"), b"not ours").expect("other");

    let inventory = store.load(subnet_env_ok).expect("load is never fatal");
    assert_eq!(inventory.valid.len(), 1);
    assert_eq!(inventory.valid[0].content, good);
    let reasons: Vec<(String, String)> = inventory
        .rejected
        .iter()
        .map(|r| {
            let name = r
                .path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, r.reason.to_string())
        })
        .collect();
    let expected = [
        ("subnet-env.000011", "not a rebootguard store file"),
        ("subnet-env.000010", "format version 2 is not known"),
        ("subnet-env.000009", "rejected by the validator"),
        ("subnet-env.000008", "file name says 8"),
        ("subnet-env.000007", "not a regular file"),
        ("subnet-env.000006", "symbolic link"),
        (
            "subnet-env.000005",
            "1048577 bytes, more than the 1048576-byte limit",
        ),
        ("subnet-env.000004", "not a rebootguard store file"),
        ("subnet-env.000003", "checksum mismatch"),
        ("subnet-env.000002", "truncated"),
        ("subnet-env.bak", "not a generation file name"),
    ];
    assert_eq!(reasons.len(), expected.len(), "{reasons:#?}");
    for ((name, reason), (want_name, want_reason)) in reasons.iter().zip(expected) {
        assert_eq!(name, want_name);
        assert!(
            reason.contains(want_reason),
            "{name}: {reason:?} lacks {want_reason:?}"
        );
    }

    // Without the caller's validator, the stored-but-odd content passes.
    let unvalidated = store.load(any_content).expect("load");
    assert_eq!(
        unvalidated
            .valid
            .iter()
            .map(|g| g.number)
            .collect::<Vec<_>>(),
        [9, 1]
    );

    // Saving still works, never reuses a number, and leaves bad files alone.
    let next = env(2);
    let saved = store
        .save(&new_gen(&next, "n", &[]), subnet_env_ok)
        .expect("save");
    assert_eq!(saved.generation.number, 12);
    let after = store.load(subnet_env_ok).expect("load");
    assert_eq!(after.valid.len(), 2);
    assert_eq!(after.rejected.len(), expected.len());
}

#[test]
fn unchanged_is_judged_against_the_newest_valid_generation() {
    let (tmp, store) = store();
    let a = env(0);
    store
        .save(&new_gen(&a, "n", &[]), subnet_env_ok)
        .expect("save");
    // A damaged newer file is not "the newest": the content is unchanged.
    fs::write(
        tmp.path().join("subnet-env.000002"),
        b"rebootguard-store 1\n{",
    )
    .expect("torn");
    let again = store
        .save(&new_gen(&a, "n", &[]), subnet_env_ok)
        .expect("save");
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert_eq!(again.generation.number, 1);
}

#[test]
fn leftover_temporary_files_are_ignored_then_cleaned_by_the_next_save() {
    let (tmp, store) = store();
    let a = env(0);
    store
        .save(&new_gen(&a, "n", &[]), subnet_env_ok)
        .expect("save");
    let leftover = tmp.path().join(".subnet-env.tmp.4242.2");
    fs::write(&leftover, b"rebootguard-store 1\n{\"generation\":2").expect("leftover");

    let inventory = store.load(subnet_env_ok).expect("load");
    assert_eq!(inventory.valid.len(), 1);
    assert!(inventory.rejected.is_empty());
    assert_eq!(inventory.leftovers, vec![leftover.clone()]);

    let b = env(1);
    let saved = store
        .save(&new_gen(&b, "n", &[]), subnet_env_ok)
        .expect("save");
    assert_eq!(saved.housekeeping.removed, vec![leftover.clone()]);
    assert!(!leftover.exists());
    assert!(
        store
            .load(subnet_env_ok)
            .expect("load")
            .leftovers
            .is_empty()
    );
}

#[test]
fn latest_for_picks_the_node_and_skips_what_the_validator_refuses() {
    let (tmp, store) = store();
    let (a, b, c) = (env(0), env(1), env(2));
    store
        .save(&new_gen(&a, "boromir", &[]), subnet_env_ok)
        .expect("save");
    store
        .save(&new_gen(&b, "theoden", &[]), subnet_env_ok)
        .expect("save");
    store
        .save(&new_gen(&c, "boromir", &[]), subnet_env_ok)
        .expect("save");
    let latest = |node| store.latest_for(node, subnet_env_ok).expect("latest");
    assert_eq!(latest("boromir").expect("boromir").content, c);
    assert_eq!(latest("theoden").expect("theoden").content, b);
    assert!(latest("samwise").is_none());
    let inventory = store.load(subnet_env_ok).expect("load");
    assert_eq!(inventory.latest_for("boromir"), latest("boromir").as_ref());
    assert_eq!(inventory.latest_for("theoden"), latest("theoden").as_ref());
    assert!(inventory.latest_for("samwise").is_none());

    let refuse_subnet_2 = |content: &[u8]| {
        if content == env(2).as_slice() {
            Err(BadContent(
                "FLANNEL_SUBNET outside the node's podCIDR".into(),
            ))
        } else {
            Ok(())
        }
    };
    let older = store
        .latest_for("boromir", refuse_subnet_2)
        .expect("latest");
    assert_eq!(older.expect("boromir").content, a);

    fs::write(tmp.path().join("subnet-env.000003"), b"garbage").expect("corrupt");
    let after_damage = store.latest_for("boromir", subnet_env_ok).expect("latest");
    assert_eq!(after_damage.expect("boromir").content, a);
}

#[test]
fn pruning_keeps_n_valid_generations_and_leaves_damaged_files() {
    let (tmp, store) = store();
    let store = store.keep(keep(2));
    for i in 0..2u8 {
        let content = env(i);
        store
            .save(&new_gen(&content, "n", &[]), subnet_env_ok)
            .expect("save");
    }
    // Damage the newest: it no longer counts toward the two kept.
    fs::write(tmp.path().join("subnet-env.000002"), b"garbage").expect("corrupt");
    let c = env(9);
    let saved = store
        .save(&new_gen(&c, "n", &[]), subnet_env_ok)
        .expect("save");
    assert!(saved.housekeeping.removed.is_empty());
    let inventory = store.load(subnet_env_ok).expect("load");
    assert_eq!(
        inventory.valid.iter().map(|g| g.number).collect::<Vec<_>>(),
        [3, 1]
    );
    assert_eq!(inventory.rejected.len(), 1);
}

#[test]
fn readers_never_see_a_partial_generation_while_writers_run() {
    let (_tmp, store) = store();
    let store = store.keep(keep(2));
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..2u8)
            .map(|w| {
                let store = &store;
                s.spawn(move || {
                    for i in 0..40u8 {
                        let content = env(w * 100 + i);
                        let node = format!("node-{w}");
                        store
                            .save(&new_gen(&content, &node, &[]), subnet_env_ok)
                            .expect("save");
                    }
                })
            })
            .collect();
        let reader = s.spawn(|| {
            let mut loads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let inventory = store.load(subnet_env_ok).expect("load");
                assert!(inventory.rejected.is_empty(), "{:?}", inventory.rejected);
                loads += 1;
            }
            loads
        });
        for w in writers {
            w.join().expect("writer");
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().expect("reader") > 0);
    });
    let inventory = store.load(subnet_env_ok).expect("load");
    // Two writers, lock-serialised: 80 distinct numbers, the newest 2 kept.
    assert_eq!(
        inventory.valid.iter().map(|g| g.number).collect::<Vec<_>>(),
        [80, 79]
    );
}

#[test]
fn a_symlink_in_the_way_is_reported_and_the_next_save_goes_past_it() {
    let (tmp, store) = store();
    let a = env(0);
    store
        .save(&new_gen(&a, "n", &[]), subnet_env_ok)
        .expect("save");
    let target = tmp.path().join("elsewhere");
    fs::write(&target, b"FLANNEL_MTU=1\n").expect("target");
    std::os::unix::fs::symlink(&target, tmp.path().join("subnet-env.000002")).expect("symlink");
    let b = env(1);
    let saved = store
        .save(&new_gen(&b, "n", &[]), subnet_env_ok)
        .expect("save");
    assert_eq!(saved.generation.number, 3);
    let inventory = store.load(subnet_env_ok).expect("load");
    assert!(matches!(inventory.rejected[0].reason, Reason::Symlink));
    assert_eq!(
        fs::read(&target).expect("target untouched"),
        b"FLANNEL_MTU=1\n"
    );
}

#[test]
fn listing_a_vanished_directory_is_an_error_that_names_it() {
    let (tmp, store) = store();
    let dir = tmp.path().to_path_buf();
    drop(tmp);
    let err = store.load(any_content).expect_err("gone").to_string();
    assert!(err.contains(&dir.display().to_string()), "{err}");
}

/// Whether we run as root (uid 0), read without libc.
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

const RO_CHILD_ENV: &str = "REBOOTGUARD_STORE_RO_CHILD";
const RO_PASSED: &str = "rebootguard-store: read-only checks passed";

/// Runs inside a private mount namespace, so its mounts vanish with it.
fn read_only_checks(dir: &Path) {
    let (with_data, empty) = (dir.join("with-data"), dir.join("empty"));
    for d in [&with_data, &empty] {
        fs::create_dir(d).expect("mkdir");
    }
    let path = with_data.to_str().expect("utf-8 path");
    run(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=1m,mode=0755",
            "rgstore-test",
            path,
        ],
    )
    .expect("mount");
    let store = Store::open(&with_data).expect("open");
    let a = env(0);
    store
        .save(&new_gen(&a, "n", &[]), subnet_env_ok)
        .expect("save");
    run("mount", &["-o", "remount,ro", path]).expect("remount ro");

    // Reading works; an identical save needs no write; a new one says why.
    let store = Store::open(&with_data).expect("open read-only");
    assert_eq!(store.load(subnet_env_ok).expect("load").valid.len(), 1);
    let same = store
        .save(&new_gen(&a, "n", &[]), subnet_env_ok)
        .expect("unchanged");
    assert_eq!(same.outcome, Outcome::Unchanged);
    let b = env(1);
    let err = store
        .save(&new_gen(&b, "n", &[]), subnet_env_ok)
        .expect_err("read-only");
    assert!(matches!(err, SaveError::CreateTemp { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("read-only (EROFS)") && text.contains("remount"),
        "{text}"
    );

    let err = Store::open(with_data.join("sub")).expect_err("cannot create");
    assert!(matches!(err, OpenError::CreateDir { .. }), "{err:?}");
    assert!(err.to_string().contains("read-only (EROFS)"), "{err}");

    // A read-only store that never had a lock file fails at the lock.
    let path = empty.to_str().expect("utf-8 path");
    run(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "ro,size=1m,mode=0755",
            "rgstore-test",
            path,
        ],
    )
    .expect("mount");
    let store = Store::open(&empty).expect("open");
    let err = store
        .save(&new_gen(&a, "n", &[]), subnet_env_ok)
        .expect_err("read-only");
    assert!(matches!(err, SaveError::Lock { .. }), "{err:?}");
    assert!(err.to_string().contains("read-only (EROFS)"), "{err}");

    // A full file system: the save says so, and the generation saved
    // before it is still there, whole.
    let full = dir.join("full");
    fs::create_dir(&full).expect("mkdir");
    let path = full.to_str().expect("utf-8 path");
    run(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=64k,mode=0755",
            "rgstore-test",
            path,
        ],
    )
    .expect("mount");
    let store = Store::open(&full).expect("open");
    store
        .save(&new_gen(&a, "n", &[]), subnet_env_ok)
        .expect("save");
    let mut filler = fs::File::create(full.join("filler")).expect("filler");
    while std::io::Write::write_all(&mut filler, &[0; 4096]).is_ok() {}
    drop(filler);
    let err = store
        .save(&new_gen(&b, "n", &[]), subnet_env_ok)
        .expect_err("full");
    assert!(err.to_string().contains("the file system is full"), "{err}");
    let valid = store.load(subnet_env_ok).expect("load").valid;
    assert_eq!(valid.len(), 1, "the old generation stays");
    assert_eq!(valid[0].content, a);
    println!("{RO_PASSED}");
}

#[test]
fn a_read_only_file_system_is_named_with_the_fix() {
    if let Ok(dir) = std::env::var(RO_CHILD_ENV) {
        read_only_checks(Path::new(&dir));
        return;
    }
    if !is_root() {
        // The store cannot depend on hostnet's test_skip: the same rule inline.
        assert!(
            std::env::var("REBOOTGUARD_REQUIRE_ROOT").as_deref() != Ok("1"),
            "a_read_only_file_system_is_named_with_the_fix must run (REBOOTGUARD_REQUIRE_ROOT=1) but is not root"
        );
        eprintln!("skipped: mounting a read-only tmpfs needs root");
        return;
    }
    if let Err(e) = run("unshare", &["--mount", "--propagation", "private", "true"]) {
        eprintln!("skipped: cannot make a private mount namespace ({e})");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "tests::a_read_only_file_system_is_named_with_the_fix",
            "--nocapture",
        ])
        .env(RO_CHILD_ENV, tmp.path())
        .output()
        .expect("spawn");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(RO_PASSED),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Undoes `chattr +i` even when an assertion fails, so the directory can go.
struct Mutable<'a>(&'a Path);

impl Drop for Mutable<'_> {
    fn drop(&mut self) {
        let _ = run("chattr", &["-i", &self.0.display().to_string()]);
    }
}

#[test]
fn an_unwritable_directory_says_permission_denied() {
    let (tmp, store) = store();
    let dir = tmp.path().display().to_string();
    // Root ignores mode bits but not the immutable attribute (EPERM).
    let _guard = if is_root() {
        if let Err(e) = run("chattr", &["+i", &dir]) {
            eprintln!("skipped: root, and this file system has no immutable attribute ({e})");
            return;
        }
        Some(Mutable(tmp.path()))
    } else {
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o555)).expect("chmod");
        None
    };
    let a = env(0);
    let err = store
        .save(&new_gen(&a, "n", &[]), subnet_env_ok)
        .expect_err("unwritable");
    assert!(matches!(err, SaveError::Lock { .. }), "{err:?}");
    assert!(err.to_string().contains("permission denied"), "{err}");
    // Reading still works.
    assert!(store.load(subnet_env_ok).expect("load").valid.is_empty());
    if !is_root() {
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

/// Regression, incident 2026-01-31: after a reboot `/run/flannel/subnet.env`
/// was gone on boromir and theoden and nothing rewrote it. The backup taken
/// before the reboot must come back byte for byte, for the right node, and
/// say which boot it came from.
#[test]
fn incident_2026_01_31_backup_from_before_the_reboot_is_restored_exactly() {
    let (tmp, before_reboot) = store();
    let boromir = b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
    let theoden = b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.2.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
    let boot_before = "1f0e9a52-63a4-4b8e-9a51-6f3c2d1e0b7a\n";
    for (node, content) in [("boromir", &boromir[..]), ("theoden", &theoden[..])] {
        let new = NewGeneration {
            content,
            node,
            boot_id: boot_before,
            pod_cidrs: &[],
            source: Source::Live,
            saved_at: Timestamp::now(),
        };
        before_reboot.save(&new, subnet_env_ok).expect("backup");
    }
    drop(before_reboot);

    // The reboot: a new process opens the store from disk.
    let after_reboot = Store::open(tmp.path()).expect("open");
    let restored = after_reboot
        .latest_for("boromir", subnet_env_ok)
        .expect("load")
        .expect("a backup for boromir");
    assert_eq!(restored.content, boromir);
    assert_eq!(restored.meta.sha256, format::sha256_hex(boromir));
    assert_eq!(restored.meta.boot_id, boot_before.trim());
    assert_eq!(restored.meta.source, Source::Live);
    let other = after_reboot
        .latest_for("theoden", subnet_env_ok)
        .expect("load");
    assert_eq!(other.expect("a backup for theoden").content, theoden);
}

#[test]
fn a_store_other_users_can_write_is_not_trusted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let a = env(0);
    Store::open(dir)
        .expect("open")
        .save(&new_gen(&a, "n", &[]), subnet_env_ok)
        .expect("save");
    fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).expect("chmod");
    for err in [
        Store::open(dir).map(drop).expect_err("world-writable"),
        Store::open_existing(dir)
            .map(drop)
            .expect_err("world-writable"),
    ] {
        assert!(matches!(err, OpenError::Untrusted { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("writable by every user") && text.contains("chmod go-w"),
            "{text}"
        );
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    let store = Store::open(dir).expect("owner-only writes are trusted");
    if !is_root() {
        eprintln!("skipped the ownership half: giving a directory away needs root");
        return;
    }
    // Another user's directory (nobody's): refused before anything is read
    // or written; the generation in it is untouched.
    let path = dir.display().to_string();
    run("chown", &["65534:65534", &path]).expect("chown");
    let err = Store::open(dir).map(drop).expect_err("another user's");
    assert!(err.to_string().contains("owned by uid 65534"), "{err}");
    run("chown", &["0:0", &path]).expect("chown back");
    assert_eq!(store.load(subnet_env_ok).expect("load").valid.len(), 1);
}
