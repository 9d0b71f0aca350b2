//! Crash-safe persistent generations of `subnet.env`.
//!
//! `/run/flannel/subnet.env` lives on tmpfs and vanishes on reboot; when
//! flannel fails to rewrite it, no pod on the node gets networking. This crate
//! keeps the last N known-good copies on persistent disk, each with the node,
//! boot ID, time, SHA-256, podCIDR(s) and source it came from, so the node
//! guardian can put one back before k3s starts.
//!
//! **Key design decision: one self-verifying file per generation, published
//! by rename.** A generation is written to a hidden temporary file in the
//! store directory, fsynced, renamed to `subnet-env.NNNNNN`, and the
//! directory is fsynced; only then are generations beyond the kept count
//! removed. Readers never take a lock and never see a partial file: a rename
//! is atomic, temporary files are never read, and every file carries its own
//! length and SHA-256 (see [`mod@format`] for the layout), so a file damaged
//! after the fact is reported and skipped, never restored. Writers hold a
//! lock file so numbers are never reused. An invalid content is never
//! stored: [`Store::save`] runs the caller's validator (the flannel crate's)
//! and refuses empty content.
//!
//! Files in the directory: `subnet-env.NNNNNN` (generations, the number
//! zero-padded to six digits), `.subnet-env.tmp.*` (a writer's temporary
//! file; one left by a crash is ignored and removed by the next save) and
//! `.subnet-env.lock`. Anything else is ignored, so the directory can hold
//! other state. Generations beyond [`Store::keep`] (default 5, all nodes
//! together) are removed; damaged files are left for the operator and
//! reported by every load.
//!
//! Crash safety is tested, not assumed: the writer's step boundaries
//! (create temp, write, fsync, rename, fsync directory, prune) are
//! observable through an internal hook, and the tests inject an I/O error
//! before each one and SIGKILL a real writer process at each one, then check
//! that a load yields the previous or the new generation, never a damaged
//! one, and that the next save works.
//!
//! ```no_run
//! use rebootguard_store::{NewGeneration, Source, Store, DEFAULT_DIR};
//!
//! # fn validate(_: &[u8]) -> Result<(), rebootguard_store::BadContent> { Ok(()) }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open(DEFAULT_DIR)?;
//! let content = std::fs::read("/run/flannel/subnet.env")?;
//! let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?;
//! let saved = store.save(
//!     &NewGeneration {
//!         content: &content,
//!         node: "boromir",
//!         boot_id: &boot_id,
//!         pod_cidrs: &[],
//!         source: Source::Live,
//!         saved_at: jiff::Timestamp::now(),
//!     },
//!     validate,
//! )?;
//! println!("{:?} as generation {}", saved.outcome, saved.generation.number);
//!
//! // After a reboot: the newest good copy for this node.
//! let inventory = store.load(validate)?;
//! for bad in &inventory.rejected {
//!     eprintln!("skipped {}: {}", bad.path.display(), bad.reason);
//! }
//! if let Some(latest) = store.latest_for("boromir", validate)? {
//!     std::fs::write("/run/flannel/subnet.env", &latest.content)?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! API: [`Store::open`] (+ [`Store::keep`]), [`Store::save`] →
//! [`Saved`] ([`Outcome::Stored`] or [`Outcome::Unchanged`]),
//! [`Store::load`] → [`Inventory`] (valid generations newest first, rejected
//! files with a [`Reason`], leftover temporary files), [`Store::latest_for`].

pub mod format;
mod load;
mod save;
mod store;

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod tests;

pub use format::{Metadata, Source};
pub use load::{BadContent, Generation, Inventory, LoadError, Reason, Rejected, any_content};
pub use save::{CleanupError, Housekeeping, NewGeneration, Outcome, SaveError, Saved};
pub use store::{DEFAULT_DIR, DEFAULT_KEEP, OpenError, Store};
