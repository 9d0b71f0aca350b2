//! Replays every committed fuzz input, the corpora (`fuzz/corpus/NAME/`)
//! and the crashers found so far (`fuzz/regressions/NAME/`), through its
//! target: what once broke stays fixed, with no fuzzer needed.

use std::path::Path;

#[test]
fn every_committed_input_passes_its_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    for (name, target) in rebootguard_fuzzing::TARGETS {
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
        replayed += inputs;
    }
    eprintln!("replayed {replayed} fuzz inputs");
}
