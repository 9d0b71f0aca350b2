//! Shared by the CLI's tests and benchmarks: private copies of the example node root.

use std::fs;
use std::path::{Path, PathBuf};

/// Copies `examples/node-boromir` to `<dir>/root` and returns that root.
pub fn example_root(dir: &Path) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/node-boromir");
    let root = dir.join("root");
    copy_dir(&example, &root);
    root
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read example") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
