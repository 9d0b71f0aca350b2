//! Seeing a node's files at their real paths: a private mount namespace in
//! which `<root>/run` covers `/run` and `<root>/var` covers `/var`.
//!
//! CNI plugins read fixed paths (`/run/flannel/subnet.env`,
//! `/var/lib/cni/networks`, `/var/lib/cni/flannel`). When rebootguard sees
//! the node under a root directory (`--root /host` in a pod, a lab node's
//! directory), plugins started inside such a namespace read and write the
//! node's files, and their errors name the real paths
//! (`open /run/flannel/subnet.env: no such file or directory`), exactly as on
//! the node.
//!
//! # Rules
//!
//! Mount namespaces belong to *threads*, not processes:
//!
//! - `unshare(CLONE_NEWNS)` implies `CLONE_FS`: the calling thread gets its
//!   own copy of the root, working directory and umask, and the new mount
//!   namespace. It works in a multi-threaded process (only `CLONE_NEWUSER`,
//!   `CLONE_VM`, `CLONE_SIGHAND` and `CLONE_THREAD` demand a single thread)
//!   and changes **only the calling thread**, plus the threads and processes
//!   it starts afterwards. Threads that already exist keep the old view.
//! - `setns(CLONE_NEWNS)` fails with `EINVAL` for a thread that shares its
//!   filesystem attributes with other threads, so a thread cannot simply
//!   join another thread's mount namespace; once it has unshared, it could
//!   go back, but nothing here needs that.
//!
//! Hence [`enter_root`] moves the calling thread for the rest of its life:
//! call it only in a short-lived helper process (the lab's CNI helper) or on
//! a thread you own and let end. [`run_in_root`] does the latter for you,
//! like [`crate::netns::Netns::run`]. The machine's own mounts are never
//! changed: `/` is made recursively private in the new namespace first, so
//! the binds do not propagate back.
//!
//! Open everything you need under the real `/run` and `/var` (named network
//! namespaces live in `/run/netns`) *before* entering: afterwards those
//! paths show the node's directories. A `root` that itself lies under `/run`
//! or `/var` is refused, since the binds would hide it.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

/// The directories covered, relative to the root.
pub const COVERED: [&str; 2] = ["run", "var"];

/// Why the node's files could not be put at their real paths. None is
/// retryable: each names what to fix (privileges, a missing directory).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The root is relative, or lies under a directory it would cover.
    #[error("cannot use {} as the node's root: {reason}", root.display())]
    BadRoot {
        /// The root given.
        root: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `unshare(CLONE_NEWNS)` failed: usually missing CAP_SYS_ADMIN.
    #[error("failed to make a private mount namespace (needs CAP_SYS_ADMIN, i.e. root)")]
    Unshare(#[source] io::Error),
    /// Making `/` recursively private failed.
    #[error("failed to make the mounts of the private namespace private")]
    Private(#[source] io::Error),
    /// A bind mount failed (often: the node has no such directory).
    #[error("failed to bind {} on {}", source_dir.display(), target.display())]
    Bind {
        /// The node's directory.
        source_dir: PathBuf,
        /// Where it was to be seen.
        target: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The worker thread could not be started.
    #[error("failed to start a thread for the node's mount namespace")]
    Thread(#[source] io::Error),
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// Moves the calling thread, for the rest of its life, into a private mount
/// namespace where `<root>/run` is `/run` and `<root>/var` is `/var`.
/// Nothing happens when `root` is `/`.
///
/// See the module's rules: only in a short-lived process or on a thread
/// you own; open what you need under `/run` first.
pub fn enter_root(root: &Path) -> Result<()> {
    let root = check_root(root)?;
    if root == Path::new("/") {
        return Ok(());
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| Error::Unshare(e.into()))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| Error::Private(e.into()))?;
    for dir in COVERED {
        let source_dir = root.join(dir);
        let target = Path::new("/").join(dir);
        // MS_REC: the node's own mounts below run/ and var/ come along.
        mount(
            Some(&source_dir),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Error::Bind {
            source_dir,
            target,
            source: e.into(),
        })?;
    }
    Ok(())
}

/// Runs `work` on a new thread that first enters the node's root (see
/// [`enter_root`]); the thread, and with it the mount namespace, ends when
/// `work` returns. Processes and threads `work` starts see the node's files
/// too. A panic in `work` is propagated.
pub fn run_in_root<F, R>(root: &Path, work: F) -> Result<R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("node-root".into())
            .spawn_scoped(scope, || -> Result<R> {
                enter_root(root)?;
                Ok(work())
            })
            .map_err(Error::Thread)?;
        match thread.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The root made absolute and free of `.`/`..`; refused when the binds would hide it.
fn check_root(root: &Path) -> Result<PathBuf> {
    let bad = |reason: &str| Error::BadRoot {
        root: root.to_owned(),
        reason: reason.to_owned(),
    };
    if !root.is_absolute() {
        return Err(bad("it must be an absolute path"));
    }
    // Symlinks resolved, so `/host -> /var/host` is caught too; a root that
    // does not exist fails at the bind with the directory named.
    let resolved = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    if resolved != Path::new("/")
        && COVERED
            .iter()
            .any(|dir| resolved.starts_with(Path::new("/").join(dir)))
    {
        return Err(bad(
            "it lies under /run or /var, which the node's own run/ and var/ would cover; \
             use a root elsewhere",
        ));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_under_covered_directories_are_refused() {
        for root in ["/run/host", "/var/lib/node", "relative/root"] {
            assert!(
                matches!(check_root(Path::new(root)), Err(Error::BadRoot { .. })),
                "{root}"
            );
        }
        assert_eq!(
            check_root(Path::new("/")).expect("slash"),
            PathBuf::from("/")
        );
        assert_eq!(
            check_root(Path::new("/nonexistent-host")).expect("kept"),
            PathBuf::from("/nonexistent-host")
        );
        // `/variable` is not under `/var`.
        assert!(check_root(Path::new("/variable")).is_ok());
    }
}
