//! The live `subnet.env`: read without trusting what sits at the path, write
//! the way flanneld does (temp file in the same directory, fsync, rename).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use rebootguard_rootfs::{Dir, Entry, Kind, ReadError, Root};

use rebootguard_flannel::subnet_env::{self, Parsed};

/// What sits at the live path.
#[derive(Debug, Clone)]
pub enum Live {
    /// Nothing: the tmpfs was wiped and flannel never wrote it (the incident).
    Missing,
    /// A regular file, read and parsed.
    Present {
        /// Its bytes.
        bytes: Vec<u8>,
        /// What the CNI plugin makes of them.
        parsed: Parsed,
    },
    /// Something we must not read through or replace.
    Unusable(Unusable),
}

/// Why the live path cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// A symbolic link: never followed, never replaced.
    #[error("is a symbolic link to {0}; remove it (flannel writes a regular file)")]
    Symlink(String),
    /// A directory.
    #[error("is a directory; remove it (flannel writes a regular file there)")]
    Directory,
    /// A device, socket or FIFO.
    #[error("is not a regular file; remove it")]
    Special,
    /// Bigger than any subnet.env.
    #[error("is {0} bytes, far beyond any subnet.env; inspect and remove it")]
    TooLarge(u64),
    /// Could not be read.
    #[error("cannot be read: {0}")]
    Unreadable(String),
}

impl Live {
    /// True when present and valid.
    pub fn is_valid(&self) -> bool {
        matches!(self, Live::Present { parsed, .. } if parsed.is_valid())
    }
}

/// Reads the live file at `path`, under the host `root`, without following
/// a symlink there; a symlink on the way is resolved inside the root.
pub fn read(root: &Path, path: &Path) -> Live {
    let unreadable = |e: std::io::Error| Live::Unusable(Unusable::Unreadable(e.to_string()));
    let root = match Root::open(root) {
        Ok(root) => root,
        Err(e) => return unreadable(e),
    };
    let (dir, name) = match root.parent(path, None) {
        Ok(found) => found,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Live::Missing,
        Err(e) => return unreadable(e),
    };
    match dir.entry(name) {
        Ok(Entry::Missing) => return Live::Missing,
        Ok(Entry::Other(kind)) => return Live::Unusable(unusable(kind, &dir, name)),
        Ok(Entry::Regular { len, .. }) if len > subnet_env::MAX_SIZE => {
            return Live::Unusable(Unusable::TooLarge(len));
        }
        Ok(Entry::Regular { .. }) => {}
        Err(e) => return unreadable(e),
    }
    // Opened without following a symlink swapped in after the stat.
    match dir.read(name, subnet_env::MAX_SIZE) {
        Ok(bytes) => {
            let parsed = subnet_env::parse(&bytes);
            Live::Present { bytes, parsed }
        }
        Err(ReadError::Missing) => Live::Missing,
        Err(ReadError::NotRegular(kind)) => Live::Unusable(unusable(kind, &dir, name)),
        Err(ReadError::TooLarge(limit)) => Live::Unusable(Unusable::TooLarge(limit)),
        Err(ReadError::Io(e)) => unreadable(e),
    }
}

fn unusable(kind: Kind, dir: &Dir, name: &OsStr) -> Unusable {
    match kind {
        Kind::Symlink => Unusable::Symlink(
            dir.link_target(name)
                .map(|t| t.display().to_string())
                .unwrap_or_else(|| "?".into()),
        ),
        Kind::Directory => Unusable::Directory,
        _ => Unusable::Special,
    }
}

/// Why a write failed; nothing at the path was changed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The path holds something that must not be replaced.
    #[error("refusing to replace {path}: it {why}")]
    Refused {
        /// The path.
        path: PathBuf,
        /// What sits there.
        why: Unusable,
    },
    /// A filesystem step failed.
    #[error("failed to {step} {path}{hint}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// On what.
        path: PathBuf,
        /// How to fix it, when the cause says.
        hint: &'static str,
        /// The cause.
        #[source]
        cause: std::io::Error,
    },
}

/// Writes `bytes` to `path`, under the host `root`, atomically:
/// `<dir>/.<name>.rebootguard` is written and fsynced, renamed over `path`,
/// and the directory fsynced. The parent is created 0755; the file gets
/// 0644, or the mode of the file it replaces (as k3s does). A symlink,
/// directory or special file at `path` is refused; a symlink on the way
/// is resolved inside the root, so the write never lands outside it.
pub fn write_atomic(root: &Path, path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let io = |step, path: &Path| {
        let path = path.to_path_buf();
        move |cause: std::io::Error| WriteError::Io {
            step,
            hint: hint(&cause),
            path,
            cause,
        }
    };
    let parent = path.parent().unwrap_or(Path::new("/"));
    let root = Root::open(root).map_err(io("open the root", root))?;
    let (dir, name) = root
        .parent(path, Some(0o755))
        .map_err(io("create directory", parent))?;
    let mode = match dir.entry(name).map_err(io("inspect", path))? {
        Entry::Regular { mode, .. } => mode,
        Entry::Missing => 0o644,
        Entry::Other(kind) => {
            return Err(WriteError::Refused {
                path: path.to_path_buf(),
                why: unusable(kind, &dir, name),
            });
        }
    };
    dir.write_atomic(name, bytes, mode).map_err(|e| match e {
        rebootguard_rootfs::WriteError::Refused(kind) => WriteError::Refused {
            path: path.to_path_buf(),
            why: unusable(kind, &dir, name),
        },
        rebootguard_rootfs::WriteError::Io { step, cause } => io(step, path)(cause),
    })
}

fn hint(cause: &std::io::Error) -> &'static str {
    match cause.raw_os_error() {
        Some(30) => " (read-only filesystem: remount it read-write)",
        Some(13) | Some(1) => " (permission denied: run as root)",
        Some(28) => " (no space left on the device)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const VALID: &[u8] = b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

    #[test]
    fn reads_every_kind_of_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run/flannel/subnet.env");
        assert!(matches!(read(dir.path(), &path), Live::Missing));
        write_atomic(dir.path(), &path, VALID).expect("write");
        assert!(read(dir.path(), &path).is_valid());
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let parent = fs::metadata(path.parent().expect("parent")).expect("meta");
        assert_eq!(parent.permissions().mode() & 0o777, 0o755);

        let link = dir.path().join("link.env");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        assert!(matches!(
            read(dir.path(), &link),
            Live::Unusable(Unusable::Symlink(_))
        ));
        assert!(matches!(
            write_atomic(dir.path(), &link, VALID),
            Err(WriteError::Refused { .. })
        ));
        assert_eq!(fs::read(&path).expect("target untouched"), VALID);

        let sub = dir.path().join("dir.env");
        fs::create_dir(&sub).expect("mkdir");
        assert!(matches!(
            read(dir.path(), &sub),
            Live::Unusable(Unusable::Directory)
        ));
        assert!(matches!(
            write_atomic(dir.path(), &sub, VALID),
            Err(WriteError::Refused { .. })
        ));

        let big = dir.path().join("big.env");
        fs::write(&big, vec![b'x'; (subnet_env::MAX_SIZE + 10) as usize]).expect("write");
        assert!(matches!(
            read(dir.path(), &big),
            Live::Unusable(Unusable::TooLarge(_))
        ));
    }

    #[test]
    fn keeps_an_existing_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("subnet.env");
        fs::write(&path, "old").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        write_atomic(dir.path(), &path, VALID).expect("write");
        assert_eq!(
            fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        assert!(!dir.path().join(".subnet.env.rebootguard").exists());
    }

    #[test]
    fn a_symlinked_directory_never_leads_the_write_out_of_the_root() {
        let top = tempfile::tempdir().expect("tempdir");
        let root = top.path().join("host");
        let outside = top.path().join("elsewhere");
        fs::create_dir_all(root.join("run")).expect("mkdir");
        fs::create_dir_all(&outside).expect("mkdir");
        fs::write(outside.join("subnet.env"), "precious\n").expect("write");
        std::os::unix::fs::symlink(&outside, root.join("run/flannel")).expect("symlink");
        let path = root.join("run/flannel/subnet.env");
        // Read through the root, the absolute link names nothing.
        assert!(matches!(read(&root, &path), Live::Missing));
        let err = write_atomic(&root, &path, VALID).expect_err("must not write");
        assert!(err.to_string().contains("run/flannel"), "{err}");
        assert_eq!(
            fs::read(outside.join("subnet.env")).expect("read"),
            b"precious\n"
        );
    }

    #[test]
    fn a_fifo_at_the_live_path_is_refused_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("subnet.env");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo");
        assert!(status.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let root = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(matches!(
                read(&root, &path),
                Live::Unusable(Unusable::Special)
            ));
        });
        let refused = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading a FIFO blocked");
        assert!(refused);
    }
}
