//! Scale benchmark (written next).
fn main() {}
