//! Network namespaces: create, enter, run commands in, and destroy them.
//!
//! `setns(2)` moves only the calling thread, so this module never moves a
//! thread it does not own: [`Netns::run`] does its work on a fresh thread, and
//! the [`Entered`] guard puts that thread back on every exit path, a panic
//! included. Nothing here changes the namespace the process started in.
//!
//! Two kinds of namespace are useful: *named* ones, bind-mounted under
//! [`RUN_DIR`] exactly as `ip netns add` does (so `ip netns exec` and
//! `ip -n` work on them, and a CNI runtime can be given their path), and
//! *anonymous* ones that live as long as a file descriptor holds them (cheap,
//! invisible to `ip netns list`, gone when dropped).

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

/// Where named namespaces are bind-mounted (the `ip netns` convention).
pub const RUN_DIR: &str = "/run/netns";

/// The calling thread's own namespace file.
const THREAD_SELF: &str = "/proc/thread-self/ns/net";

/// Why a namespace operation failed. None is retryable as is: each names
/// what to fix (privileges, a name in use, a stale mount).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name cannot be a file name under [`RUN_DIR`].
    #[error("invalid network namespace name {0:?}: use 1-255 characters, no `/`, not `.` or `..`")]
    BadName(String),
    /// A namespace of that name already exists.
    #[error(
        "network namespace {0:?} already exists; pick another name or remove it (ip netns delete {0})"
    )]
    Exists(String),
    /// Preparing [`RUN_DIR`] (directory, shared mount) failed.
    #[error("failed to prepare {RUN_DIR} for named network namespaces (are we root?)")]
    PrepareRunDir(#[source] io::Error),
    /// `unshare(CLONE_NEWNET)` failed: usually missing CAP_SYS_ADMIN.
    #[error("failed to create a network namespace (needs CAP_SYS_ADMIN, i.e. root)")]
    Create(#[source] io::Error),
    /// Bind-mounting the new namespace onto its file failed.
    #[error("failed to bind-mount network namespace {name:?} at {}", path.display())]
    Mount {
        /// The namespace's name.
        name: String,
        /// The mount point.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Opening a namespace file failed.
    #[error("failed to open network namespace {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file opened is not a network namespace.
    #[error("{} is not a network namespace", .0.display())]
    NotNetns(PathBuf),
    /// `setns` into the namespace failed.
    #[error("failed to enter network namespace {0}")]
    Enter(String, #[source] io::Error),
    /// Returning to the original namespace failed.
    #[error("failed to return to the original network namespace")]
    Restore(#[source] io::Error),
    /// Unmounting or removing a named namespace's file failed.
    #[error("failed to remove network namespace {name:?}")]
    Destroy {
        /// The namespace's name.
        name: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The worker thread could not be started.
    #[error("failed to start a thread for namespace work")]
    Thread(#[source] io::Error),
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// A network namespace held open by a file descriptor.
///
/// A namespace this value created ([`Netns::create_named`], [`Netns::new`])
/// is owned: dropping it (or [`Netns::destroy`]) removes it. One merely
/// opened ([`Netns::open_named`], [`Netns::open`], [`Netns::current`]) is
/// never removed by this value.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    name: Option<String>,
    owned: bool,
}

impl Netns {
    /// Creates an anonymous namespace, alive as long as this value (or a
    /// process inside it) is.
    pub fn new() -> Result<Self> {
        let fd = on_fresh_thread(|| {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::Create(e.into()))?;
            open_file(Path::new(THREAD_SELF))
            // The thread ends here, and the namespace lives on in the fd.
        })??;
        Ok(Netns {
            fd,
            name: None,
            owned: true,
        })
    }

    /// Creates a named namespace, like `ip netns add NAME`.
    pub fn create_named(name: &str) -> Result<Self> {
        check_name(name)?;
        prepare_run_dir()?;
        let path = Path::new(RUN_DIR).join(name);
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&path)
        {
            Ok(file) => drop(file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(name.to_owned()));
            }
            Err(e) => return Err(Error::PrepareRunDir(e)),
        }
        let mounted = on_fresh_thread(|| {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::Create(e.into()))?;
            mount(
                Some(THREAD_SELF),
                &path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| Error::Mount {
                name: name.to_owned(),
                path: path.clone(),
                source: e.into(),
            })
        })
        .and_then(|r| r);
        if let Err(e) = mounted {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        match open_file(&path) {
            Ok(fd) => Ok(Netns {
                fd,
                name: Some(name.to_owned()),
                owned: true,
            }),
            Err(e) => {
                let _ = remove_named(name);
                Err(e)
            }
        }
    }

    /// Opens an existing named namespace (not removed when dropped).
    pub fn open_named(name: &str) -> Result<Self> {
        check_name(name)?;
        let fd = open_file(&Path::new(RUN_DIR).join(name))?;
        Ok(Netns {
            fd,
            name: Some(name.to_owned()),
            owned: false,
        })
    }

    /// Opens a namespace by path (`/proc/<pid>/ns/net`, a bind mount...).
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Netns {
            fd: open_file(path)?,
            name: None,
            owned: false,
        })
    }

    /// The calling thread's namespace (normally the host's).
    pub fn current() -> Result<Self> {
        Self::open(Path::new(THREAD_SELF))
    }

    /// The name, for a named namespace.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// A path that opens this namespace, for CNI's `CNI_NETNS` and the like:
    /// the bind mount for a named namespace, else this process's fd. Valid
    /// while this value lives.
    pub fn path(&self) -> PathBuf {
        match &self.name {
            Some(name) => Path::new(RUN_DIR).join(name),
            None => PathBuf::from(format!(
                "/proc/{}/fd/{}",
                std::process::id(),
                self.fd.as_raw_fd()
            )),
        }
    }

    /// The namespace's identity (device and inode of its nsfs file): equal
    /// for two handles on the same namespace.
    pub fn id(&self) -> Result<(u64, u64)> {
        let meta = File::from(self.fd.try_clone().map_err(|e| Error::Open {
            path: self.path(),
            source: e,
        })?)
        .metadata()
        .map_err(|e| Error::Open {
            path: self.path(),
            source: e,
        })?;
        Ok((meta.dev(), meta.ino()))
    }

    /// Moves the calling thread into this namespace until the guard drops.
    ///
    /// Prefer [`Netns::run`]; use this only on a thread you own and that
    /// does nothing else meanwhile (not an async runtime's worker).
    pub fn enter(&self) -> Result<Entered<'_>> {
        let original = open_file(Path::new(THREAD_SELF))?;
        setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::Enter(self.describe(), e.into()))?;
        Ok(Entered {
            original: Some(original),
            _netns: PhantomData,
            _not_send: PhantomData,
        })
    }

    /// Runs `work` on a new thread inside this namespace and returns its
    /// result. A panic in `work` is propagated to the caller after the
    /// thread has left the namespace.
    pub fn run<F, R>(&self, work: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name("netns".into())
                .spawn_scoped(scope, || -> Result<R> {
                    let entered = self.enter()?;
                    let out = work();
                    entered.exit()?;
                    Ok(out)
                })
                .map_err(Error::Thread)?;
            match thread.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// A command that will run inside this namespace (setns in the child
    /// before exec). Only the network namespace changes: unlike
    /// `ip netns exec`, `/sys` is not remounted.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Result<Command> {
        let mut command = Command::new(program);
        self.apply(&mut command)?;
        Ok(command)
    }

    /// Makes `command` start inside this namespace.
    pub fn apply(&self, command: &mut Command) -> Result<()> {
        // The child gets its own copy of the fd, so the command stays valid
        // even if `self` is dropped before it is spawned.
        let fd = self.fd.try_clone().map_err(|e| Error::Open {
            path: self.path(),
            source: e,
        })?;
        // SAFETY: the closure only calls setns(2), which is async-signal-safe,
        // and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
            });
        }
        Ok(())
    }

    /// Removes an owned named namespace now, reporting failure (dropping
    /// does the same silently). Anonymous ones vanish with their last user;
    /// opened ones are left alone.
    pub fn destroy(mut self) -> Result<()> {
        let owned = std::mem::replace(&mut self.owned, false);
        match (&self.name, owned) {
            (Some(name), true) => remove_named(name),
            _ => Ok(()),
        }
    }

    fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("{name:?}"),
            None => format!("fd {}", self.fd.as_raw_fd()),
        }
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let (Some(name), true) = (&self.name, self.owned) {
            let _ = remove_named(name);
        }
    }
}

/// Proof that the current thread is inside a namespace; it returns to the
/// namespace it came from when dropped, also while unwinding a panic.
///
/// Not `Send`: it belongs to the thread it moved.
#[must_use = "the thread returns to its namespace when this guard drops"]
#[derive(Debug)]
pub struct Entered<'a> {
    original: Option<OwnedFd>,
    _netns: PhantomData<&'a Netns>,
    _not_send: PhantomData<*const ()>,
}

impl Entered<'_> {
    /// Returns to the original namespace, reporting failure.
    pub fn exit(mut self) -> Result<()> {
        match self.original.take() {
            Some(fd) => {
                setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| Error::Restore(e.into()))
            }
            None => Ok(()),
        }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if let Some(fd) = self.original.take()
            && let Err(e) = setns(fd.as_fd(), CloneFlags::CLONE_NEWNET)
        {
            // A thread left in a foreign namespace would quietly create
            // sockets, links and routes in the wrong place: stop instead.
            eprintln!("fatal: cannot return to the original network namespace: {e}");
            std::process::abort();
        }
    }
}

/// A namespace name unique on this machine while this process lives:
/// `<prefix>-<pid>-<n>`. [`sweep_stale`] recognises it after a crash.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes named namespaces made by [`unique_name`] with this `prefix` whose
/// process is gone (a killed test run, a crashed lab). Returns the names
/// removed; every failure is reported, not just the first.
pub fn sweep_stale(prefix: &str) -> Result<Vec<String>, Vec<Error>> {
    let entries = match fs::read_dir(RUN_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(vec![Error::PrepareRunDir(e)]),
    };
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = stale_owner(&name, prefix) else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        match remove_named(&name) {
            Ok(()) => removed.push(name),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(removed)
    } else {
        Err(errors)
    }
}

/// The pid in `<prefix>-<pid>-<n>`, if `name` has that shape.
fn stale_owner(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Why this process may not create network namespaces. Not retryable: the
/// answer is probed once and kept for the life of the process.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unprivileged {
    /// The effective user is not root.
    #[error("not running as root")]
    NotRoot,
    /// Root, yet creating a namespace failed (no CAP_SYS_ADMIN in a
    /// container, a seccomp filter...). Shared: the probe's answer is kept
    /// and handed out again, and io errors do not clone.
    #[error(transparent)]
    Create(Arc<Error>),
}

/// Whether this process may create network namespaces; the reason if not.
pub fn privileged() -> Result<(), Unprivileged> {
    // Probed once: every caller gets the same answer without making and
    // dropping a namespace each time.
    static PROBE: OnceLock<Result<(), Unprivileged>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            if !nix::unistd::geteuid().is_root() {
                return Err(Unprivileged::NotRoot);
            }
            Netns::new()
                .map(drop)
                .map_err(|e| Unprivileged::Create(Arc::new(e)))
        })
        .clone()
}

/// For tests: true when namespaces can be made here; otherwise reports why
/// `test` cannot run ([`test_skip`]) and returns false.
pub fn test_privileged(test: &str) -> bool {
    match privileged() {
        Ok(()) => true,
        Err(reason) => {
            test_skip(test, &reason.to_string());
            false
        }
    }
}

/// For tests: `test` cannot run here because of `reason`. It is skipped
/// with the reason on stderr (shown with `--nocapture` and in failures),
/// or fails when `REBOOTGUARD_REQUIRE_ROOT=1` says root tests must run
/// (CI runs as root with everything installed).
pub fn test_skip(test: &str, reason: &str) {
    if std::env::var("REBOOTGUARD_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("{test} must run (REBOOTGUARD_REQUIRE_ROOT=1) but cannot: {reason}");
    }
    eprintln!("skipping {test}: {reason}");
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 255
        || name == "."
        || name == ".."
        || name.contains(['/', '\0'])
    {
        return Err(Error::BadName(name.to_owned()));
    }
    Ok(())
}

/// Makes [`RUN_DIR`] exist and be a shared mount, as `ip netns add` does,
/// so namespace mounts propagate to other mount namespaces.
fn prepare_run_dir() -> Result<()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _held = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    fs::create_dir_all(RUN_DIR).map_err(Error::PrepareRunDir)?;
    let share = || {
        mount(
            None::<&str>,
            RUN_DIR,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match share() {
        Ok(()) => Ok(()),
        // Not a mount point yet: make it one, then share it.
        Err(Errno::EINVAL) => {
            mount(
                Some(RUN_DIR),
                RUN_DIR,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| Error::PrepareRunDir(e.into()))?;
            share().map_err(|e| Error::PrepareRunDir(e.into()))
        }
        Err(e) => Err(Error::PrepareRunDir(e.into())),
    }
}

fn remove_named(name: &str) -> Result<()> {
    let path = Path::new(RUN_DIR).join(name);
    let destroy = |source: io::Error| Error::Destroy {
        name: name.to_owned(),
        source,
    };
    match umount2(&path, MntFlags::MNT_DETACH) {
        // EINVAL: not mounted (a half-made namespace); the file still goes.
        Ok(()) | Err(Errno::EINVAL) => {}
        Err(e) => return Err(destroy(e.into())),
    }
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(destroy(e)),
    }
}

fn open_file(path: &Path) -> Result<OwnedFd> {
    // std opens with O_CLOEXEC, so the fd never leaks into children.
    let file = OpenOptions::new()
        .read(true)
        .open(path)
        .map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
    // Only a network namespace will do: not a plain file left under
    // /run/netns (ENOTTY), not another kind of namespace.
    let fd = OwnedFd::from(file);
    // SAFETY: NS_GET_NSTYPE takes no argument; it only reports the type of
    // the namespace the fd refers to.
    match unsafe { ns_get_nstype(fd.as_raw_fd()) } {
        Ok(kind) if kind == CloneFlags::CLONE_NEWNET.bits() => Ok(fd),
        _ => Err(Error::NotNetns(path.to_owned())),
    }
}

nix::ioctl_none!(
    /// NS_GET_NSTYPE from `<linux/nsfs.h>`: `_IO(0xb7, 0x3)`.
    ns_get_nstype,
    0xb7,
    0x3
);

fn on_fresh_thread<T: Send>(work: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("netns-new".into())
            .spawn_scoped(scope, work)
            .map_err(Error::Thread)?;
        match thread.join() {
            Ok(out) => Ok(out),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for bad in ["", ".", "..", "a/b", &"x".repeat(256)] {
            assert!(matches!(check_name(bad), Err(Error::BadName(_))), "{bad:?}");
        }
        assert!(check_name("rg-node-1").is_ok());
    }

    #[test]
    fn unique_names_carry_the_owner() {
        let name = unique_name("rgt");
        assert_eq!(stale_owner(&name, "rgt"), Some(std::process::id()));
        assert_ne!(unique_name("rgt"), name);
        assert_eq!(stale_owner("rgt-12-3", "rgt"), Some(12));
        for other in ["rgt-12", "rgtx-12-3", "rgt-a-3", "rgt-12-x", "lab-12-3"] {
            assert_eq!(stale_owner(other, "rgt"), None, "{other}");
        }
    }
}
