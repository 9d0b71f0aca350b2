//! Opening a store directory, and the file names inside it.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

/// Where the node guardian keeps its generations unless told otherwise.
pub const DEFAULT_DIR: &str = "/var/lib/rebootguard/";

/// How many generations are kept unless [`Store::keep`] says otherwise.
pub const DEFAULT_KEEP: NonZeroUsize = NonZeroUsize::new(5).expect("5 is not zero");

/// File name prefix of a generation; the number follows, zero-padded to
/// [`NUMBER_WIDTH`] digits (`subnet-env.000042`).
pub(crate) const GENERATION_PREFIX: &str = "subnet-env.";
const NUMBER_WIDTH: usize = 6;
/// Hidden prefix of a writer's temporary file; never read as a generation.
pub(crate) const TEMP_PREFIX: &str = ".subnet-env.tmp.";
/// Lock file serialising writers (readers never take it).
pub(crate) const LOCK_NAME: &str = ".subnet-env.lock";

/// A directory of `subnet.env` generations. Cheap to clone; holds no open
/// files between calls.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) dir: PathBuf,
    pub(crate) keep: NonZeroUsize,
}

/// Failed to open a store directory. None of these is retryable without a
/// change on the host.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The directory did not exist and could not be created.
    #[error("cannot create the store directory {}{}", .path.display(), access_hint(.source))]
    CreateDir {
        /// The store directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Something other than a directory is at the store path.
    #[error("the store path {} is a file, not a directory; move the file away or choose another store directory", .path.display())]
    NotADirectory {
        /// The store directory.
        path: PathBuf,
    },
    /// The directory could be written by someone the reader must not
    /// trust: a backup planted there would be restored before k3s starts.
    #[error(
        "the store directory {} is {why}: another user could plant a backup that restore would trust; make it owned by root and writable only by its owner (chown root {dir}; chmod go-w {dir})",
        .path.display(),
        dir = .path.display()
    )]
    Untrusted {
        /// The store directory.
        path: PathBuf,
        /// Who else could write it.
        why: String,
    },
    /// The store path could not be examined.
    #[error("cannot examine the store directory {}{}", .path.display(), access_hint(.source))]
    Inspect {
        /// The store directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

impl Store {
    /// Opens the store at `dir`, creating the directory (and its parents) if
    /// it is missing. Does not need write access otherwise: loading works on
    /// a read-only file system.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Store, OpenError> {
        let dir = dir.into();
        match fs::metadata(&dir) {
            Ok(meta) if meta.is_dir() => trusted(&dir, &meta)?,
            Ok(_) => return Err(OpenError::NotADirectory { path: dir }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let existing = dir
                    .ancestors()
                    .skip(1)
                    .find(|a| a.is_dir())
                    .map(Path::to_path_buf);
                fs::create_dir_all(&dir).map_err(|source| OpenError::CreateDir {
                    path: dir.clone(),
                    source,
                })?;
                // New directory entries are only durable once their parents
                // are synced; otherwise a power cut could take the whole
                // store, generations included, with it.
                for parent in dir.ancestors().skip(1) {
                    sync_directory(parent).map_err(|source| OpenError::CreateDir {
                        path: dir.clone(),
                        source,
                    })?;
                    if Some(parent) == existing.as_deref() {
                        break;
                    }
                }
                // create_dir_all succeeds on an existing directory only, but
                // something may have replaced it since: check again.
                match fs::metadata(&dir) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => return Err(OpenError::NotADirectory { path: dir }),
                    Err(source) => return Err(OpenError::Inspect { path: dir, source }),
                }
            }
            Err(source) => return Err(OpenError::Inspect { path: dir, source }),
        }
        Ok(Store {
            dir,
            keep: DEFAULT_KEEP,
        })
    }

    /// Opens the store at `dir` for reading only: `None` when the directory
    /// does not exist (nothing saved yet), never creating it, so a command
    /// that only looks leaves no trace.
    pub fn open_existing(dir: impl Into<PathBuf>) -> Result<Option<Store>, OpenError> {
        let dir = dir.into();
        match fs::metadata(&dir) {
            Ok(meta) if meta.is_dir() => {
                trusted(&dir, &meta)?;
                Ok(Some(Store {
                    dir,
                    keep: DEFAULT_KEEP,
                }))
            }
            Ok(_) => Err(OpenError::NotADirectory { path: dir }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(OpenError::Inspect { path: dir, source }),
        }
    }

    /// Keeps the newest `n` generations (all nodes together); older ones are
    /// removed by the next successful save, after the new one is durable.
    pub fn keep(mut self, n: NonZeroUsize) -> Store {
        self.keep = n;
        self
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many generations are kept.
    pub fn kept(&self) -> NonZeroUsize {
        self.keep
    }

    /// Path of generation `number`.
    pub(crate) fn generation_path(&self, number: u64) -> PathBuf {
        self.dir.join(generation_name(number))
    }

    /// Makes the directory's entries (renames, removals) durable.
    pub(crate) fn sync_dir(&self) -> io::Result<()> {
        sync_directory(&self.dir)
    }
}

/// fsyncs a directory; the empty path (parent of a relative name) is `.`.
fn sync_directory(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    match File::open(dir)?.sync_all() {
        // EINVAL: this file system cannot fsync a directory (some network
        // and FUSE file systems); its renames are as durable as it makes
        // them, and failing every save would help nobody.
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}

/// What a directory entry's name says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Name {
    /// `subnet-env.<number>` in canonical form.
    Generation(u64),
    /// Starts like a generation but the rest is not a canonical number
    /// (`subnet-env.bak`, `subnet-env.00042`): reported, never read or removed.
    Malformed,
    /// A writer's temporary file, live or left by a crash.
    Temp,
    /// The writers' lock file.
    Lock,
    /// Anything else; other tools may share the directory.
    Other,
}

pub(crate) fn generation_name(number: u64) -> String {
    format!("{GENERATION_PREFIX}{number:0NUMBER_WIDTH$}")
}

pub(crate) fn classify(name: &OsStr) -> Name {
    let Some(name) = name.to_str() else {
        return Name::Other;
    };
    if name == LOCK_NAME {
        return Name::Lock;
    }
    if name.starts_with(TEMP_PREFIX) {
        return Name::Temp;
    }
    let Some(digits) = name.strip_prefix(GENERATION_PREFIX) else {
        return Name::Other;
    };
    match digits.parse::<u64>() {
        // Only the spelling we write counts, so every number has one name.
        Ok(n) if digits.bytes().all(|b| b.is_ascii_digit()) && generation_name(n) == name => {
            Name::Generation(n)
        }
        _ => Name::Malformed,
    }
}

/// A store directory may be written only by root or the user reading it
/// (as sshd asks of `~/.ssh`): anyone else could plant a generation.
fn trusted(dir: &Path, meta: &fs::Metadata) -> Result<(), OpenError> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let why = if meta.uid() != 0 && meta.uid() != me {
        format!("owned by uid {}", meta.uid())
    } else if meta.mode() & 0o002 != 0 {
        "writable by every user".to_owned()
    } else if meta.mode() & 0o020 != 0 && meta.gid() != 0 {
        format!("writable by group {}", meta.gid())
    } else {
        return Ok(());
    };
    Err(OpenError::Untrusted {
        path: dir.to_path_buf(),
        why,
    })
}

/// Tells the operator how to fix the common permission problems.
pub(crate) fn access_hint(err: &io::Error) -> &'static str {
    match err.kind() {
        io::ErrorKind::ReadOnlyFilesystem => {
            ": the file system is read-only (EROFS); remount it read-write or choose a store directory on a writable file system"
        }
        io::ErrorKind::PermissionDenied => {
            ": permission denied (EACCES/EPERM); run rebootguard as root or give it write access to the store directory"
        }
        io::ErrorKind::NotADirectory => {
            ": a component of the path is a file, not a directory; fix the path or move the file away"
        }
        io::ErrorKind::StorageFull => ": the file system is full; free some space",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn names_round_trip_and_only_the_canonical_spelling_counts() {
        for n in [0, 1, 42, 999_999, 1_000_000, u64::MAX] {
            assert_eq!(
                classify(OsStr::new(&generation_name(n))),
                Name::Generation(n)
            );
        }
        assert_eq!(generation_name(42), "subnet-env.000042");
        for bad in [
            "subnet-env.42",
            "subnet-env.0000042",
            "subnet-env.+00042",
            "subnet-env.000042.bak",
            "subnet-env.",
            "subnet-env.99999999999999999999999",
        ] {
            assert_eq!(classify(OsStr::new(bad)), Name::Malformed, "{bad}");
        }
        assert_eq!(classify(OsStr::new(".subnet-env.tmp.1.2")), Name::Temp);
        assert_eq!(classify(OsStr::new(".subnet-env.lock")), Name::Lock);
        assert_eq!(classify(OsStr::new("agent-state.json")), Name::Other);
    }

    #[test]
    fn open_existing_never_creates() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("var/lib/rebootguard");
        assert!(
            Store::open_existing(&dir)
                .expect("missing is fine")
                .is_none()
        );
        assert!(!tmp.path().join("var").exists(), "nothing created");
        fs::create_dir_all(&dir).expect("mkdir");
        assert!(Store::open_existing(&dir).expect("open").is_some());
        let file = tmp.path().join("file");
        fs::write(&file, "x").expect("file");
        let err = Store::open_existing(&file).expect_err("a file").to_string();
        assert!(err.contains("not a directory"), "{err}");
    }

    #[test]
    fn open_creates_missing_directories() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a/b/rebootguard");
        let store = Store::open(&dir).expect("open");
        assert!(dir.is_dir());
        assert_eq!(store.dir(), dir);
        assert_eq!(store.kept().get(), 5);
    }

    #[test]
    fn directories_sync_including_the_parent_of_a_relative_name() {
        sync_directory(Path::new("")).expect("current directory");
        sync_directory(Path::new(".")).expect("current directory");
        let tmp = tempfile::tempdir().expect("tempdir");
        sync_directory(tmp.path()).expect("tempdir");
        assert!(sync_directory(&tmp.path().join("missing")).is_err());
    }

    #[test]
    fn a_file_at_the_store_path_is_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("rebootguard");
        fs::write(&file, "x").expect("write");
        let err = Store::open(&file).expect_err("file").to_string();
        assert!(err.contains("is a file, not a directory"), "{err}");
        let below = Store::open(file.join("sub")).expect_err("below a file");
        assert!(
            below.to_string().contains("is a file, not a directory"),
            "{below}"
        );
    }

    #[test]
    fn a_directory_that_cannot_be_created_says_why() {
        if is_root_ignoring_permissions() {
            eprintln!("skipped: running as root, permission bits do not stop us");
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o555)).expect("chmod");
        let err = Store::open(tmp.path().join("store")).expect_err("read-only parent");
        assert!(matches!(err, OpenError::CreateDir { .. }));
        assert!(err.to_string().contains("permission denied"), "{err}");
    }

    #[test]
    fn hints_cover_read_only_and_permission_errors() {
        let ro = io::Error::from_raw_os_error(30); // EROFS
        assert!(access_hint(&ro).contains("read-only"));
        assert!(access_hint(&ro).contains("remount"));
        let acces = io::Error::from_raw_os_error(13); // EACCES
        assert!(access_hint(&acces).contains("permission denied"));
        assert_eq!(access_hint(&io::Error::other("x")), "");
    }

    /// Root passes permission checks, so permission tests cannot fail for it.
    pub(crate) fn is_root_ignoring_permissions() -> bool {
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o555)).expect("chmod");
        let writable = fs::write(tmp.path().join("probe"), "x").is_ok();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        writable
    }
}
