//! `rebootguard-cni-flannel`: a flannel-compatible CNI plugin for the lab and
//! tests (installed as `flannel` in a lab node's CNI bin directory).
//!
//! Exit status: 0 on success (the result, if any, on stdout); 1 on failure,
//! with a CNI error object on stdout.

fn main() -> std::process::ExitCode {
    rebootguard_cni_flannel::plugin_main()
}
