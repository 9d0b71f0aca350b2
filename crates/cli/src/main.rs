//! The `rebootguard` binary.
fn main() {}
