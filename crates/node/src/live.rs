//! The live `subnet.env`: read without trusting what sits at the path, write
//! the way flanneld does (temp file in the same directory, fsync, rename).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

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

/// Reads the live file at `path` without following a symlink there.
pub fn read(path: &Path) -> Live {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Live::Missing,
        Err(e) => return Live::Unusable(Unusable::Unreadable(e.to_string())),
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = fs::read_link(path)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| "?".into());
        return Live::Unusable(Unusable::Symlink(target));
    }
    if kind.is_dir() {
        return Live::Unusable(Unusable::Directory);
    }
    if !kind.is_file() {
        return Live::Unusable(Unusable::Special);
    }
    if meta.len() > subnet_env::MAX_SIZE {
        return Live::Unusable(Unusable::TooLarge(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // O_NOFOLLOW closes the race with a symlink swapped in after the lstat.
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    match opened.and_then(|f| f.take(subnet_env::MAX_SIZE + 1).read_to_end(&mut bytes)) {
        Ok(_) => {
            let parsed = subnet_env::parse(&bytes);
            Live::Present { bytes, parsed }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Live::Missing,
        Err(e) => Live::Unusable(Unusable::Unreadable(e.to_string())),
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

/// Writes `bytes` to `path` atomically: `<dir>/.<name>.rebootguard` is
/// written and fsynced, renamed over `path`, and the directory fsynced.
/// The parent is created 0755; the file gets 0644, or the mode of the file
/// it replaces (as k3s does). A symlink or directory at `path` is refused.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let io = |step, path: &Path| {
        let path = path.to_path_buf();
        move |cause: std::io::Error| WriteError::Io {
            step,
            hint: hint(&cause),
            path,
            cause,
        }
    };
    let mode = match read_kind(path) {
        Ok(mode) => mode.unwrap_or(0o644),
        Err(why) => {
            return Err(WriteError::Refused {
                path: path.to_path_buf(),
                why,
            });
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(io("create directory", dir))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "subnet.env".into());
    let temp = dir.join(format!(".{name}.rebootguard"));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)
            .map_err(io("create", &temp))?;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io("set the mode of", &temp))?;
        file.write_all(bytes).map_err(io("write", &temp))?;
        file.sync_all().map_err(io("fsync", &temp))?;
        fs::rename(&temp, path).map_err(io("rename into place", path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync directory", dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// The mode of a regular file at `path` (None when absent), or why it must not be replaced.
fn read_kind(path: &Path) -> Result<Option<u32>, Unusable> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Unusable::Unreadable(e.to_string())),
        Ok(meta) if meta.file_type().is_symlink() => Err(Unusable::Symlink(
            fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_default(),
        )),
        Ok(meta) if meta.is_dir() => Err(Unusable::Directory),
        Ok(meta) if !meta.is_file() => Err(Unusable::Special),
        Ok(meta) => Ok(Some(meta.permissions().mode() & 0o7777)),
    }
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

    const VALID: &[u8] = b"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

    #[test]
    fn reads_every_kind_of_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run/flannel/subnet.env");
        assert!(matches!(read(&path), Live::Missing));
        write_atomic(&path, VALID).expect("write");
        assert!(read(&path).is_valid());
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let parent = fs::metadata(path.parent().expect("parent")).expect("meta");
        assert_eq!(parent.permissions().mode() & 0o777, 0o755);

        let link = dir.path().join("link.env");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        assert!(matches!(read(&link), Live::Unusable(Unusable::Symlink(_))));
        assert!(matches!(
            write_atomic(&link, VALID),
            Err(WriteError::Refused { .. })
        ));
        assert_eq!(fs::read(&path).expect("target untouched"), VALID);

        let sub = dir.path().join("dir.env");
        fs::create_dir(&sub).expect("mkdir");
        assert!(matches!(read(&sub), Live::Unusable(Unusable::Directory)));
        assert!(matches!(
            write_atomic(&sub, VALID),
            Err(WriteError::Refused { .. })
        ));

        let big = dir.path().join("big.env");
        fs::write(&big, vec![b'x'; (subnet_env::MAX_SIZE + 10) as usize]).expect("write");
        assert!(matches!(read(&big), Live::Unusable(Unusable::TooLarge(_))));
    }

    #[test]
    fn keeps_an_existing_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("subnet.env");
        fs::write(&path, "old").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        write_atomic(&path, VALID).expect("write");
        assert_eq!(
            fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        assert!(!dir.path().join(".subnet.env.rebootguard").exists());
    }
}
