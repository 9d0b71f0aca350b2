//! Files under a host root, opened so that no path leads out of the root
//! and no special file can block the caller.
//!
//! rebootguard reads and writes the node's files as root, either on the
//! host (`--root /`) or from a pod that mounts the host's root at, say,
//! `/host`. Plain `std::fs` calls go wrong there in two ways:
//!
//! - a symbolic link anywhere on the way (`<root>/run/flannel` pointing
//!   outside, or an absolute link written for the host, `/var/lib/x`) leads
//!   out of the root. [`Root`] resolves every path with `openat2(2)` and
//!   `RESOLVE_IN_ROOT`: the kernel takes the root as `/` for `..` and for
//!   absolute links alike, so a path can only name something inside it.
//! - a FIFO or a device where a regular file belongs makes `open` or `read`
//!   block forever. Files are opened `O_NONBLOCK` and must be regular
//!   before a byte is read ([`Root::read`]).
//!
//! Writes ([`Dir::write_atomic`]) go through a directory handle resolved
//! the same way: a temporary file beside the target, fsynced, renamed over
//! it, the directory fsynced; a symlink, directory or special file at the
//! target is never replaced.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat2, renameat};
use nix::sys::stat::{Mode, SFlag, fchmod, fstatat, mkdirat};

/// What sits where a regular file was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Directory,
    /// A symbolic link (only seen where links are not followed).
    Symlink,
    /// A FIFO (named pipe).
    Fifo,
    /// A socket.
    Socket,
    /// A character device (`/dev/zero`, a terminal).
    CharDevice,
    /// A block device.
    BlockDevice,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Directory => "a directory",
            Kind::Symlink => "a symbolic link",
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::CharDevice => "a character device",
            Kind::BlockDevice => "a block device",
        })
    }
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Nothing there.
    #[error("does not exist")]
    Missing,
    /// Something other than a regular file.
    #[error("is {0}, not a regular file; remove it")]
    NotRegular(Kind),
    /// Bigger than the caller accepts.
    #[error("is larger than {0} bytes; inspect and remove it")]
    TooLarge(u64),
    /// Any other failure (permissions, I/O).
    #[error("cannot be read: {0}")]
    Io(#[source] std::io::Error),
}

/// What sits at a name in a [`Dir`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Nothing.
    Missing,
    /// A regular file.
    Regular {
        /// Its permission bits.
        mode: u32,
        /// Its size.
        len: u64,
    },
    /// Anything else.
    Other(Kind),
}

/// The host's root directory, held open: every path given to it is
/// resolved inside it.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
    path: PathBuf,
}

/// A directory inside a [`Root`], held open, for writes that must land in
/// it and nowhere else.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn io(e: Errno) -> std::io::Error {
    std::io::Error::from(e)
}

/// A file type, when it is not a regular file.
fn kind_of(file_type: std::fs::FileType) -> Option<Kind> {
    if file_type.is_file() {
        None
    } else if file_type.is_dir() {
        Some(Kind::Directory)
    } else if file_type.is_symlink() {
        Some(Kind::Symlink)
    } else if file_type.is_fifo() {
        Some(Kind::Fifo)
    } else if file_type.is_socket() {
        Some(Kind::Socket)
    } else if file_type.is_char_device() {
        Some(Kind::CharDevice)
    } else {
        Some(Kind::BlockDevice)
    }
}

/// Reads at most `limit` bytes of the regular file `file`.
fn read_bounded(file: File, limit: u64) -> Result<Vec<u8>, ReadError> {
    let meta = file.metadata().map_err(ReadError::Io)?;
    if let Some(kind) = kind_of(meta.file_type()) {
        return Err(ReadError::NotRegular(kind));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge(limit));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    // It grew between the fstat and the read (/proc files say 0).
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// Reads the regular file at `path` (followed as usual, outside any root),
/// at most `limit` bytes, without blocking on a FIFO or device there.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    read_regular_then(path, |file| read_bounded(file, limit))
}

/// Checks that `path` is a regular file, without blocking on a FIFO or
/// device there, for a caller whose library reads the file itself.
pub fn check_regular(path: &Path) -> Result<(), ReadError> {
    read_regular_then(path, |_| Ok(Vec::new())).map(drop)
}

fn read_regular_then(
    path: &Path,
    read: impl FnOnce(File) -> Result<Vec<u8>, ReadError>,
) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags())
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ReadError::Missing,
            _ => ReadError::Io(e),
        })?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if let Some(kind) = kind_of(meta.file_type()) {
        return Err(ReadError::NotRegular(kind));
    }
    read(file)
}

/// `O_NONBLOCK | O_NOCTTY`: opening a FIFO with no writer returns at once,
/// and a terminal never becomes ours.
fn libc_flags() -> i32 {
    (OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits()
}

impl From<ReadError> for std::io::Error {
    /// For callers that report `std::io::Error`s: the kinds say what
    /// happened (`NotFound`, `InvalidInput`, `FileTooLarge`).
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Missing => std::io::ErrorKind::NotFound.into(),
            ReadError::Io(e) => e,
            e @ ReadError::NotRegular(_) => {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
            }
            e @ ReadError::TooLarge(_) => {
                std::io::Error::new(std::io::ErrorKind::FileTooLarge, e.to_string())
            }
        }
    }
}

impl Root {
    /// Opens the root directory at `path` (`/` on a host).
    pub fn open(path: &Path) -> std::io::Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io)?;
        Ok(Root {
            dir: fd,
            path: path.to_path_buf(),
        })
    }

    /// The root's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `full`, a path under the root as the rest of rebootguard spells it
    /// (`<root>/run/flannel/subnet.env`), relative to the root. A path that
    /// is not under the root is taken as a host path and re-rooted.
    pub fn relative<'a>(&self, full: &'a Path) -> &'a Path {
        let rel = full.strip_prefix(&self.path).unwrap_or(full);
        rel.strip_prefix("/").unwrap_or(rel)
    }

    fn open_in(&self, full: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        let rel = self.relative(full);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        openat2(self.dir.as_fd(), rel, how)
    }

    /// Reads the regular file at `full` (see [`Root::relative`]), at most
    /// `limit` bytes. Symlinks on the way are followed inside the root
    /// only; a FIFO, socket or device is refused without blocking.
    pub fn read(&self, full: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
        let fd = self
            .open_in(full, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
            .map_err(|e| match e {
                Errno::ENOENT => ReadError::Missing,
                e => ReadError::Io(io(e)),
            })?;
        read_bounded(File::from(fd), limit)
    }

    /// The directory holding `full`, and `full`'s last component; the
    /// directory is created (and its missing parents, with `create`'s
    /// mode) when asked.
    pub fn parent<'a>(
        &self,
        full: &'a Path,
        create: Option<u32>,
    ) -> std::io::Result<(Dir, &'a OsStr)> {
        let name = full.file_name().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} does not name a file", full.display()),
            )
        })?;
        let parent = full.parent().unwrap_or(Path::new("/"));
        Ok((self.dir(parent, create)?, name))
    }

    /// Opens the directory at `full` inside the root; with `create`, the
    /// missing ones on the way are made with that mode, one `mkdirat` at a
    /// time in a directory already resolved inside the root.
    pub fn dir(&self, full: &Path, create: Option<u32>) -> std::io::Result<Dir> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        match self.open_in(full, flags) {
            Ok(fd) => {
                return Ok(Dir {
                    fd,
                    path: full.to_path_buf(),
                });
            }
            Err(Errno::ENOENT) if create.is_some() => {}
            Err(e) => return Err(io(e)),
        }
        let mode = Mode::from_bits_truncate(create.unwrap_or(0o755));
        let mut at = self.path.clone();
        let mut fd = self.open_in(&self.path, flags).map_err(io)?;
        for component in self.relative(full).components() {
            let Component::Normal(name) = component else {
                // `..` and `.` are resolved by openat2 below, inside the root.
                at.push(component);
                fd = self.open_in(&at, flags).map_err(io)?;
                continue;
            };
            match mkdirat(fd.as_fd(), name, mode) {
                // A new entry is durable only once its parent is synced;
                // a power cut must not take a directory and what was
                // written into it since.
                Ok(()) => nix::unistd::fsync(fd.as_fd()).map_err(io)?,
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(io(e)),
            }
            at.push(name);
            fd = self.open_in(&at, flags).map_err(io)?;
        }
        Ok(Dir {
            fd,
            path: full.to_path_buf(),
        })
    }
}

impl Dir {
    /// The directory's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where this directory really is, every symlink on the way resolved
    /// (as the kernel names the open handle). Under [`Root::dir`] it lies
    /// inside the root; callers that can only take a path use this one, so
    /// no symlink is left on the way to lead them elsewhere.
    pub fn resolved_path(&self) -> std::io::Result<PathBuf> {
        let link = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        let target = std::fs::read_link(link)?;
        // An unlinked directory reads as "<path> (deleted)".
        if !target.is_absolute() || target.as_os_str().as_bytes().ends_with(b" (deleted)") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} was removed while in use", self.path.display()),
            ));
        }
        Ok(target)
    }

    /// What sits at `name` here, a final symlink not followed.
    pub fn entry(&self, name: &OsStr) -> std::io::Result<Entry> {
        match fstatat(self.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(match kind_of_mode(st.st_mode) {
                None => Entry::Regular {
                    mode: st.st_mode & 0o7777,
                    len: u64::try_from(st.st_size).unwrap_or(0),
                },
                Some(kind) => Entry::Other(kind),
            }),
            Err(Errno::ENOENT) => Ok(Entry::Missing),
            Err(e) => Err(io(e)),
        }
    }

    /// Where the symbolic link `name` points, as written.
    pub fn link_target(&self, name: &OsStr) -> Option<PathBuf> {
        nix::fcntl::readlinkat(self.fd.as_fd(), name)
            .ok()
            .map(PathBuf::from)
    }

    /// Reads the regular file `name` here, at most `limit` bytes; a
    /// symlink at `name` is refused, never followed, and a FIFO or device
    /// never blocks.
    pub fn read(&self, name: &OsStr, limit: u64) -> Result<Vec<u8>, ReadError> {
        let how = OpenHow::new()
            .flags(
                OFlag::O_RDONLY
                    | OFlag::O_NONBLOCK
                    | OFlag::O_NOCTTY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
            )
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        let fd = openat2(self.fd.as_fd(), name, how).map_err(|e| match e {
            Errno::ENOENT => ReadError::Missing,
            Errno::ELOOP => ReadError::NotRegular(Kind::Symlink),
            e => ReadError::Io(io(e)),
        })?;
        read_bounded(File::from(fd), limit)
    }

    /// Writes `bytes` to `name` in this directory atomically, with `mode`:
    /// `.<name>.rebootguard` is written and fsynced, renamed over `name`,
    /// and the directory fsynced. Something other than a regular file at
    /// `name` is refused. On failure the temporary file is removed and
    /// `name` is as it was.
    pub fn write_atomic(&self, name: &OsStr, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
        let entry = self.entry(name).map_err(|cause| WriteError::Io {
            step: "inspect",
            cause,
        })?;
        if let Entry::Other(kind) = entry {
            return Err(WriteError::Refused(kind));
        }
        let mut temp = b".".to_vec();
        temp.extend_from_slice(name.as_bytes());
        temp.extend_from_slice(b".rebootguard");
        let temp = OsStr::from_bytes(&temp);
        let result = self.write_then_rename(temp, name, bytes, mode);
        if result.is_err() {
            let _ = nix::unistd::unlinkat(
                self.fd.as_fd(),
                temp,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
        result
    }

    fn write_then_rename(
        &self,
        temp: &OsStr,
        name: &OsStr,
        bytes: &[u8],
        mode: u32,
    ) -> Result<(), WriteError> {
        let step = |step: &'static str| move |e: Errno| WriteError::Io { step, cause: io(e) };
        let how = OpenHow::new()
            .flags(
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_TRUNC
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
            )
            .mode(Mode::from_bits_truncate(mode))
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        let fd = openat2(self.fd.as_fd(), temp, how).map_err(step("create"))?;
        fchmod(fd.as_fd(), Mode::from_bits_truncate(mode)).map_err(step("set the mode of"))?;
        let mut file = File::from(fd);
        file.write_all(bytes).map_err(|cause| WriteError::Io {
            step: "write",
            cause,
        })?;
        file.sync_all().map_err(|cause| WriteError::Io {
            step: "fsync",
            cause,
        })?;
        renameat(self.fd.as_fd(), temp, self.fd.as_fd(), name)
            .map_err(step("rename into place"))?;
        nix::unistd::fsync(self.fd.as_fd()).map_err(step("fsync the directory of"))
    }
}

fn kind_of_mode(mode: u32) -> Option<Kind> {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => None,
        SFlag::S_IFDIR => Some(Kind::Directory),
        SFlag::S_IFLNK => Some(Kind::Symlink),
        SFlag::S_IFIFO => Some(Kind::Fifo),
        SFlag::S_IFSOCK => Some(Kind::Socket),
        SFlag::S_IFCHR => Some(Kind::CharDevice),
        _ => Some(Kind::BlockDevice),
    }
}

/// Why [`Dir::write_atomic`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Something that must not be replaced sits at the target.
    #[error("it is {0}; remove it (a regular file belongs there)")]
    Refused(Kind),
    /// A filesystem step failed.
    #[error("failed to {step} it")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The cause.
        #[source]
        cause: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::sync::mpsc;
    use std::time::Duration;

    /// A root and, beside it, a directory outside it.
    fn layout() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let top = tempfile::tempdir().expect("tempdir");
        let root = top.path().join("host");
        let outside = top.path().join("outside");
        std::fs::create_dir_all(root.join("run")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        (top, root, outside)
    }

    /// Runs `f` on another thread: a regression that blocks fails the test
    /// instead of hanging it.
    fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("blocked for 10 s: a special file was opened or read blocking")
    }

    #[test]
    fn a_symlinked_parent_does_not_lead_out_of_the_root() {
        let (_top, root, outside) = layout();
        std::fs::write(outside.join("subnet.env"), "precious\n").expect("write");
        symlink(&outside, root.join("run/flannel")).expect("symlink");
        let r = Root::open(&root).expect("root");
        let target = root.join("run/flannel/subnet.env");

        // Reading resolves the absolute link inside the root: nothing there.
        assert!(matches!(r.read(&target, 1024), Err(ReadError::Missing)));
        // Writing, even asked to create the directory, fails...
        let written = r
            .parent(&target, Some(0o755))
            .map_err(|e| e.to_string())
            .and_then(|(dir, name)| {
                dir.write_atomic(name, b"evil\n", 0o644)
                    .map_err(|e| e.to_string())
            });
        assert!(written.is_err(), "{written:?}");
        // ...and the file outside is untouched.
        assert_eq!(
            std::fs::read_to_string(outside.join("subnet.env")).expect("read"),
            "precious\n"
        );

        // A relative link climbing out is clamped at the root, too.
        std::fs::remove_file(root.join("run/flannel")).expect("rm");
        symlink("../../../outside", root.join("run/flannel")).expect("symlink");
        assert!(matches!(r.read(&target, 1024), Err(ReadError::Missing)));
    }

    #[test]
    fn a_resolved_path_has_no_symlink_left_and_stays_in_the_root() {
        let (_top, root, outside) = layout();
        // Written for the host: /var/lib/rebootguard -> /data/rebootguard.
        std::fs::create_dir_all(root.join("var/lib")).expect("mkdir");
        std::fs::create_dir_all(root.join("data/rebootguard")).expect("mkdir");
        symlink("/data/rebootguard", root.join("var/lib/rebootguard")).expect("symlink");
        let r = Root::open(&root).expect("root");
        let dir = r.dir(&root.join("var/lib/rebootguard"), None).expect("dir");
        let real_root = std::fs::canonicalize(&root).expect("canonicalize");
        assert_eq!(
            dir.resolved_path().expect("resolved"),
            real_root.join("data/rebootguard")
        );

        // A link to a directory outside resolves to a path inside that
        // does not exist: nothing is made, outside least of all...
        symlink(&outside, root.join("var/lib/elsewhere")).expect("symlink");
        let store = root.join("var/lib/elsewhere/store");
        let err = r
            .dir(&store, Some(0o700))
            .expect_err("dangling inside the root");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(std::fs::read_dir(&outside).expect("ls").count(), 0);
        // ...until the target exists inside the root, where it is made.
        std::fs::create_dir_all(root.join(outside.strip_prefix("/").expect("absolute")))
            .expect("mkdir");
        let resolved = r
            .dir(&store, Some(0o700))
            .expect("created inside")
            .resolved_path()
            .expect("resolved");
        assert!(resolved.starts_with(&real_root), "{}", resolved.display());
        assert_eq!(std::fs::read_dir(&outside).expect("ls").count(), 0);
    }

    #[test]
    fn absolute_links_resolve_against_the_root_not_the_caller() {
        let (_top, root, _outside) = layout();
        std::fs::create_dir_all(root.join("data")).expect("mkdir");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::write(root.join("data/config.yaml"), "node-name: gondor\n").expect("write");
        symlink("/data/config.yaml", root.join("etc/config.yaml")).expect("symlink");
        let r = Root::open(&root).expect("root");
        let text = r.read(&root.join("etc/config.yaml"), 1024).expect("read");
        assert_eq!(text, b"node-name: gondor\n");
        // A host path given without the root prefix means the same file.
        let text = r.read(Path::new("/etc/config.yaml"), 1024).expect("read");
        assert_eq!(text, b"node-name: gondor\n");
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let (_top, root, _outside) = layout();
        let fifo = root.join("run/fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).expect("mkfifo");
        let r = Root::open(&root).expect("root");
        let got = within(move || r.read(&fifo, 1024));
        assert!(
            matches!(got, Err(ReadError::NotRegular(Kind::Fifo))),
            "{got:?}"
        );

        let fifo = root.join("run/fifo");
        let got = within(move || read_regular(&fifo, 1024));
        assert!(
            matches!(got, Err(ReadError::NotRegular(Kind::Fifo))),
            "{got:?}"
        );
        let got = within(|| read_regular(Path::new("/dev/zero"), 1024));
        assert!(
            matches!(got, Err(ReadError::NotRegular(Kind::CharDevice))),
            "{got:?}"
        );
        let got = read_regular(&root, 1024);
        assert!(
            matches!(got, Err(ReadError::NotRegular(Kind::Directory))),
            "{got:?}"
        );

        let r = Root::open(&root).expect("root");
        let dir = r.dir(&root.join("run"), None).expect("dir");
        let got = within(move || dir.read(OsStr::new("fifo"), 1024));
        assert!(
            matches!(got, Err(ReadError::NotRegular(Kind::Fifo))),
            "{got:?}"
        );
    }

    #[test]
    fn reads_are_bounded() {
        let (_top, root, _outside) = layout();
        std::fs::write(root.join("run/big"), vec![b'x'; 2048]).expect("write");
        let r = Root::open(&root).expect("root");
        assert!(matches!(
            r.read(&root.join("run/big"), 1024),
            Err(ReadError::TooLarge(1024))
        ));
        assert_eq!(
            r.read(&root.join("run/big"), 2048).expect("fits").len(),
            2048
        );
    }

    #[test]
    fn a_dir_reads_and_refuses_a_final_symlink() {
        let (_top, root, outside) = layout();
        std::fs::write(outside.join("secret"), "s").expect("write");
        symlink(outside.join("secret"), root.join("run/link")).expect("symlink");
        std::fs::write(root.join("run/file"), "f").expect("write");
        let r = Root::open(&root).expect("root");
        let dir = r.dir(&root.join("run"), None).expect("dir");
        assert!(matches!(
            dir.read(OsStr::new("link"), 64),
            Err(ReadError::NotRegular(Kind::Symlink))
        ));
        assert_eq!(
            dir.entry(OsStr::new("link")).expect("entry"),
            Entry::Other(Kind::Symlink)
        );
        assert_eq!(
            dir.link_target(OsStr::new("link")),
            Some(outside.join("secret"))
        );
        assert_eq!(dir.read(OsStr::new("file"), 64).expect("read"), b"f");
        assert_eq!(
            dir.entry(OsStr::new("none")).expect("entry"),
            Entry::Missing
        );
    }

    #[test]
    fn write_atomic_replaces_files_only_and_leaves_no_temp() {
        let (_top, root, outside) = layout();
        let r = Root::open(&root).expect("root");
        let target = root.join("run/flannel/subnet.env");
        let (dir, name) = r.parent(&target, Some(0o755)).expect("created");
        assert_eq!(
            std::fs::metadata(root.join("run/flannel"))
                .expect("dir")
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        dir.write_atomic(name, b"one\n", 0o644).expect("write");
        dir.write_atomic(name, b"two\n", 0o600).expect("replace");
        assert_eq!(std::fs::read(&target).expect("read"), b"two\n");
        assert_eq!(
            std::fs::metadata(&target)
                .expect("meta")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        let names: Vec<_> = std::fs::read_dir(root.join("run/flannel"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("subnet.env")]);

        // A symlink or directory at the target is refused, not replaced.
        std::fs::write(outside.join("victim"), "v").expect("write");
        symlink(outside.join("victim"), root.join("run/flannel/link")).expect("symlink");
        assert!(matches!(
            dir.write_atomic(OsStr::new("link"), b"x", 0o644),
            Err(WriteError::Refused(Kind::Symlink))
        ));
        assert_eq!(std::fs::read(outside.join("victim")).expect("read"), b"v");
        std::fs::create_dir(root.join("run/flannel/d")).expect("mkdir");
        assert!(matches!(
            dir.write_atomic(OsStr::new("d"), b"x", 0o644),
            Err(WriteError::Refused(Kind::Directory))
        ));
    }
}
