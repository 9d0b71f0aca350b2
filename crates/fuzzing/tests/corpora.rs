//! Replays every committed fuzz input, the corpora (`fuzz/corpus/NAME/`)
//! and the crashers found so far (`fuzz/regressions/NAME/`), through its
//! target: what once broke stays fixed, with no fuzzer needed.

use std::path::Path;

#[test]
fn every_committed_input_passes_its_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    // A thread per target: the big corpora (snapshot, cluster_info_dump)
    // take most of the time, and CI has more than one core.
    let replayed: usize = std::thread::scope(|scope| {
        let runs: Vec<_> = rebootguard_fuzzing::TARGETS
            .iter()
            .map(|&(name, target)| {
                let fuzz = &fuzz;
                scope.spawn(move || replay(fuzz, name, target))
            })
            .collect();
        runs.into_iter()
            .map(|run| run.join().expect("a replay thread panicked"))
            .sum()
    });
    eprintln!("replayed {replayed} fuzz inputs");
}

/// Every committed input of `name` through `target`; how many there were.
fn replay(fuzz: &Path, name: &str, target: fn(&[u8])) -> usize {
    let mut inputs = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(name)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("read a corpus input");
            let caught = std::panic::catch_unwind(|| target(&data));
            assert!(caught.is_ok(), "{name}: {} fails", path.display());
            inputs += 1;
        }
    }
    assert!(inputs > 0, "no committed inputs for the fuzz target {name}");
    inputs
}
