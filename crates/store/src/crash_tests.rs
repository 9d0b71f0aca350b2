//! The crash tests: stop the writer at every step boundary, by an injected
//! error and by a real SIGKILL, and prove the store stays readable, never
//! shows a damaged generation, and keeps working.

use std::io::{self, BufRead, BufReader, Write};
use std::num::NonZeroUsize;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use proptest::prelude::*;

use crate::save::{Step, Steps};
use crate::tests::{new_gen, subnet_env_ok};
use crate::*;

/// A scratch directory for the crash tests, on tmpfs when there is one. They
/// stop processes, not machines: what a killed writer leaves is in the page
/// cache either way, and tmpfs keeps thousands of fsyncs off a shared disk.
/// The other tests use the default temporary directory (a real disk).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("tempdir")
}

/// Fails the first time the writer reaches `step`.
struct FailAt {
    step: Option<Step>,
    fired: bool,
}

impl Steps for FailAt {
    fn before(&mut self, step: Step) -> io::Result<()> {
        if Some(step) == self.step && !self.fired {
            self.fired = true;
            return Err(io::Error::other(format!(
                "injected failure before {step:?}"
            )));
        }
        Ok(())
    }
}

/// A random but valid `subnet.env`: IPv4, IPv6 or dual-stack, a few MTUs,
/// sometimes an extra key. The small space makes repeats (the unchanged
/// path) common.
fn content() -> impl Strategy<Value = String> {
    (
        0u8..3,
        0u8..4,
        prop::sample::select(vec![1450u16, 1400, 8950]),
        prop::option::of("[A-Za-z0-9./:_-]{0,40}"),
    )
        .prop_map(|(stack, subnet, mtu, extra)| render(stack, subnet, mtu, extra.as_deref()))
}

fn render(stack: u8, subnet: u8, mtu: u16, extra: Option<&str>) -> String {
    let mut out = String::new();
    if stack != 1 {
        out += &format!("FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.{subnet}.1/24\n");
    }
    if stack != 0 {
        out += &format!(
            "FLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42:{subnet}::1/64\n"
        );
    }
    out += &format!("FLANNEL_MTU={mtu}\nFLANNEL_IPMASQ=true\n");
    if let Some(extra) = extra {
        out += &format!("X_REBOOTGUARD_TEST={extra}\n");
    }
    out
}

const NODES: [&str; 3] = ["boromir", "theoden", "samwise"];

#[derive(Debug, Clone)]
struct Op {
    content: String,
    node: usize,
    fail_at: Option<Step>,
}

fn op() -> impl Strategy<Value = Op> {
    (
        content(),
        0..NODES.len(),
        prop::option::weighted(0.7, prop::sample::select(Step::ALL.to_vec())),
    )
        .prop_map(|(content, node, fail_at)| Op {
            content,
            node,
            fail_at,
        })
}

/// What the directory must hold: (number, node, content), newest first.
#[derive(Debug, Default)]
struct Model {
    valid: Vec<(u64, usize, Vec<u8>)>,
    highest: u64,
}

impl Model {
    fn newest_for(&self, node: usize) -> Option<&(u64, usize, Vec<u8>)> {
        self.valid.iter().find(|g| g.1 == node)
    }

    fn prune(&mut self, keep: usize, first_removal_fails: bool) {
        if self.valid.len() > keep {
            let mut beyond = self.valid.split_off(keep);
            if first_removal_fails {
                self.valid.push(beyond.remove(0));
            }
        }
    }
}

fn check_matches(store: &Store, model: &Model, context: &str) {
    let inventory = store.load(subnet_env_ok).expect("load");
    assert!(
        inventory.rejected.is_empty(),
        "{context}: damaged generation visible: {:?}",
        inventory.rejected
    );
    assert!(
        inventory.leftovers.is_empty(),
        "{context}: an injected failure left {:?}",
        inventory.leftovers
    );
    let got: Vec<(u64, &str, &[u8])> = inventory
        .valid
        .iter()
        .map(|g| (g.number, g.meta.node.as_str(), g.content.as_slice()))
        .collect();
    let want: Vec<(u64, &str, &[u8])> = model
        .valid
        .iter()
        .map(|(n, node, c)| (*n, NODES[*node], c.as_slice()))
        .collect();
    assert_eq!(got, want, "{context}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// (a) An I/O error at any step boundary leaves either the previous
    /// newest generation or the new one (once renamed) visible, never a
    /// damaged one, and the next save works.
    #[test]
    fn an_error_at_any_step_leaves_the_store_consistent(
        keep in 1usize..=5,
        ops in prop::collection::vec(op(), 1..12),
    ) {
        let tmp = scratch();
        let store = Store::open(tmp.path()).expect("open")
            .keep(NonZeroUsize::new(keep).expect("non-zero"));
        let mut model = Model::default();
        for (i, op) in ops.iter().enumerate() {
            let context = format!("op {i} {op:?} keep {keep}");
            let node = NODES[op.node];
            let previous_newest = model.valid.first().map(|g| g.2.clone());
            let mut hook = FailAt { step: op.fail_at, fired: false };
            let result = store.save_with(&new_gen(op.content.as_bytes(), node, &[]), subnet_env_ok, &mut hook);

            if let Some(same) = model.newest_for(op.node).filter(|g| g.2 == op.content.as_bytes()) {
                // The unchanged path reaches no writer step.
                let saved = result.expect(&context);
                prop_assert_eq!(saved.outcome, Outcome::Unchanged, "{}", context);
                prop_assert_eq!(saved.generation.number, same.0, "{}", context);
                prop_assert!(!hook.fired, "{}", context);
                check_matches(&store, &model, &context);
                continue;
            }

            let number = model.highest + 1;
            match op.fail_at {
                Some(step) if step <= Step::Rename => {
                    let err = result.expect_err(&context);
                    let right_variant = matches!(
                        (step, &err),
                        (Step::CreateTemp, SaveError::CreateTemp { .. })
                            | (Step::WriteHeader | Step::WriteContent, SaveError::WriteTemp { .. })
                            | (Step::SyncFile, SaveError::SyncTemp { .. })
                            | (Step::Rename, SaveError::Rename { .. })
                    );
                    prop_assert!(right_variant, "{}: {:?}", context, err);
                    prop_assert!(err.to_string().contains("injected failure") || std::error::Error::source(&err).is_some_and(|s| s.to_string().contains("injected failure")), "{}: {}", context, err);
                }
                Some(Step::SyncDir) => {
                    let err = result.expect_err(&context);
                    prop_assert!(matches!(err, SaveError::SyncDir { .. }), "{}: {:?}", context, err);
                    // Renamed but not known durable: visible, not pruned.
                    model.valid.insert(0, (number, op.node, op.content.clone().into_bytes()));
                    model.highest = number;
                }
                _ => {
                    let saved = result.expect(&context);
                    prop_assert_eq!(saved.outcome, Outcome::Stored, "{}", context);
                    prop_assert_eq!(saved.generation.number, number, "{}", context);
                    model.valid.insert(0, (number, op.node, op.content.clone().into_bytes()));
                    model.highest = number;
                    let prune_failed = hook.fired;
                    prop_assert_eq!(saved.housekeeping.failed.len(), usize::from(prune_failed), "{}", context);
                    model.prune(keep, prune_failed);
                }
            }
            // The newest visible generation is the new one or the previous one.
            let newest = store.load(subnet_env_ok).expect("load").valid.first().map(|g| g.content.clone());
            prop_assert!(
                newest.as_deref() == Some(op.content.as_bytes()) || newest == previous_newest,
                "{}: newest is neither the new nor the previous content", context
            );
            check_matches(&store, &model, &context);
        }
        // And after all that, a plain save works and prunes to `keep`.
        let last = b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.99.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
        let saved = store.save(&new_gen(last, "final", &[]), subnet_env_ok).expect("final save");
        prop_assert_eq!(saved.outcome, Outcome::Stored);
        let inventory = store.load(subnet_env_ok).expect("load");
        prop_assert_eq!(inventory.valid.len(), keep.min(model.valid.len() + 1));
        prop_assert_eq!(&inventory.valid[0].content[..], &last[..]);
    }
}

// ---- (b) SIGKILL at every step boundary ---------------------------------

const CHILD_ENV: &str = "REBOOTGUARD_STORE_CRASH_CHILD";
const AT_STEP: &str = "rebootguard-store-crash-child: at step";
const FINISHED: &str = "rebootguard-store-crash-child: finished";
const THIS_TEST: &str = "crash_tests::a_writer_killed_at_any_step_leaves_the_store_consistent";

/// In the child: announce the step on stdout and wait to be killed.
struct WaitForKill {
    step: Step,
}

impl Steps for WaitForKill {
    fn before(&mut self, step: Step) -> io::Result<()> {
        if step == self.step {
            let mut out = io::stdout().lock();
            writeln!(out, "{AT_STEP} {step:?}")?;
            out.flush()?;
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        Ok(())
    }
}

/// The child's half: save one generation and stop at the requested step.
fn run_child(spec: &str) {
    let mut parts = spec.splitn(5, '|');
    let mut next = || parts.next().expect("child spec field");
    let dir = next().to_string();
    let keep: usize = next().parse().expect("keep");
    let step = Step::ALL[next().parse::<usize>().expect("step")];
    let node = next().to_string();
    let content = hex::decode(next()).expect("content");
    let store = Store::open(dir)
        .expect("open")
        .keep(NonZeroUsize::new(keep).expect("non-zero"));
    store
        .save_with(
            &new_gen(&content, &node, &[]),
            subnet_env_ok,
            &mut WaitForKill { step },
        )
        .expect("child save");
    println!("{FINISHED}");
}

/// Small deterministic generator; the seed is printed so a failure can be
/// replayed with `REBOOTGUARD_STORE_SEED`.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// Never leaves a writer sleeping forever when an assertion fails first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns this test binary as a writer, waits until it reaches `step`, and
/// SIGKILLs it there.
fn kill_writer_at(dir: &Path, keep: usize, step: Step, node: &str, content: &[u8]) {
    let index = Step::ALL.iter().position(|s| *s == step).expect("step");
    let spec = format!(
        "{}|{keep}|{index}|{node}|{}",
        dir.display(),
        hex::encode(content)
    );
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", THIS_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, spec)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn writer");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let mut reached = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child stdout");
        // libtest prints "test <name> ... " without a newline first.
        if line.contains(AT_STEP) {
            reached = true;
            break;
        }
        assert!(
            !line.contains(FINISHED),
            "writer finished without reaching {step:?}"
        );
    }
    assert!(reached, "writer exited without reaching {step:?}");
    child.0.kill().expect("SIGKILL");
    let status = child.0.wait().expect("wait");
    assert_eq!(
        status.signal(),
        Some(9),
        "writer was not killed by SIGKILL: {status}"
    );
}

/// (b) A writer process SIGKILLed at any step boundary leaves the previous
/// newest generation (killed before the rename) or the new one (after it)
/// visible, never a damaged one; its temporary file is ignored and removed
/// by the next save, which works.
#[test]
fn a_writer_killed_at_any_step_leaves_the_store_consistent() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        run_child(&spec);
        return;
    }
    let seed = std::env::var("REBOOTGUARD_STORE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(0x9e37_79b9_7f4a_7c15)
        });
    eprintln!("crash test seed {seed} (replay with REBOOTGUARD_STORE_SEED={seed})");
    let mut rng = XorShift(seed);
    let mut runs = 0;
    let series = 50;
    for serial in 0..series {
        let tmp = scratch();
        let keep = 1 + rng.next(5) as usize;
        let store = Store::open(tmp.path())
            .expect("open")
            .keep(NonZeroUsize::new(keep).expect("non-zero"));
        let mut counter = 0u16;
        let mut fresh = |rng: &mut XorShift| {
            counter += 1;
            render(
                rng.next(3) as u8,
                rng.next(200) as u8,
                1450,
                Some(&format!("{serial}-{counter}-{}", rng.next(1 << 40))),
            )
            .into_bytes()
        };
        // Every step once per series, in a random order, against a store
        // that keeps its history (and its crash debris) between kills.
        let mut steps = Step::ALL.to_vec();
        for i in (1..steps.len()).rev() {
            steps.swap(i, rng.next(i as u64 + 1) as usize);
        }
        for step in steps {
            let context = format!("seed {seed} series {serial} keep {keep} step {step:?}");
            // Fill up to `keep` so the writer has something to prune.
            while store.load(subnet_env_ok).expect("load").valid.len() < keep {
                let c = fresh(&mut rng);
                store
                    .save(&new_gen(&c, "filler", &[]), subnet_env_ok)
                    .expect("fill");
            }
            let before = store.load(subnet_env_ok).expect("load");
            let previous = &before.valid[0];
            let node = NODES[rng.next(3) as usize];
            let content = fresh(&mut rng);

            kill_writer_at(tmp.path(), keep, step, node, &content);
            runs += 1;

            let after = store.load(subnet_env_ok).expect("load after kill");
            assert!(after.rejected.is_empty(), "{context}: {:?}", after.rejected);
            let newest = &after.valid[0];
            if step <= Step::Rename {
                // Nothing lost either: pruning only follows a durable rename.
                assert_eq!(after.valid, before.valid, "{context}: killed before rename");
                let expect_temp = usize::from(step != Step::CreateTemp);
                assert_eq!(after.leftovers.len(), expect_temp, "{context}");
            } else {
                assert_eq!(newest.number, previous.number + 1, "{context}");
                assert_eq!(newest.content, content, "{context}");
                assert_eq!(newest.meta.node, node, "{context}");
                assert_eq!(
                    after.valid[1..],
                    before.valid[..],
                    "{context}: killed before pruning"
                );
                assert!(after.leftovers.is_empty(), "{context}");
            }
            let leftovers = after.leftovers.clone();

            // The store keeps working: the next save succeeds, removes the
            // dead writer's temp file and prunes to `keep`.
            let next = fresh(&mut rng);
            let saved = store
                .save(&new_gen(&next, node, &[]), subnet_env_ok)
                .unwrap_or_else(|e| panic!("{context}: save after kill: {e}"));
            assert_eq!(saved.outcome, Outcome::Stored, "{context}");
            for leftover in &leftovers {
                assert!(saved.housekeeping.removed.contains(leftover), "{context}");
            }
            let healed = store.load(subnet_env_ok).expect("load");
            assert!(
                healed.rejected.is_empty() && healed.leftovers.is_empty(),
                "{context}"
            );
            assert_eq!(healed.valid.len(), keep, "{context}");
            assert_eq!(healed.valid[0].content, next, "{context}");
        }
    }
    assert_eq!(runs, series * Step::ALL.len());
}
