//! Writing a generation: temp file, write, fsync, rename, fsync the
//! directory, and only then prune.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;

use crate::format::{self, MAX_FILE_BYTES, Metadata, Source};
use crate::load::{BadContent, Generation, read_generation};
use crate::store::{LOCK_NAME, Store, TEMP_PREFIX, access_hint};

/// A content to save and what to record with it.
#[derive(Debug, Clone, Copy)]
pub struct NewGeneration<'a> {
    /// The `subnet.env` bytes.
    pub content: &'a [u8],
    /// Kubernetes node name.
    pub node: &'a str,
    /// The node's current boot ID; surrounding whitespace (the newline in
    /// `/proc/sys/kernel/random/boot_id`) is trimmed.
    pub boot_id: &'a str,
    /// The podCIDR(s) the content was derived from; may be empty.
    pub pod_cidrs: &'a [String],
    /// Live backup or regenerated.
    pub source: Source,
    /// When it is saved; callers pass `Timestamp::now()`.
    pub saved_at: Timestamp,
}

/// A successful save.
#[derive(Debug)]
pub struct Saved {
    /// Whether a new generation was written.
    pub outcome: Outcome,
    /// The new generation, or the existing one with the same content.
    pub generation: Generation,
    /// Stale files removed, and removals that failed. Housekeeping failures do
    /// not undo the save: the generation is durable either way.
    pub housekeeping: Housekeeping,
}

/// Whether [`Store::save`] wrote anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new generation was written and is durable.
    Stored,
    /// The newest valid generation for the node already holds these exact
    /// bytes; nothing was written.
    Unchanged,
}

/// Files a save removed or failed to remove after the fact.
#[derive(Debug, Default)]
pub struct Housekeeping {
    /// Temporary files from crashed writers and generations beyond the kept
    /// count, removed.
    pub removed: Vec<PathBuf>,
    /// Removals (or the directory sync after them) that failed.
    pub failed: Vec<CleanupError>,
}

/// A housekeeping step that failed; the save itself succeeded.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// A crashed writer's temporary file could not be removed.
    #[error("cannot remove the leftover temporary file {}{}", .path.display(), access_hint(.source))]
    RemoveTemp {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A generation beyond the kept count could not be removed.
    #[error("cannot remove the old generation {}{}", .path.display(), access_hint(.source))]
    Prune {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The directory could not be listed to find old generations.
    #[error("cannot look for old generations to remove")]
    List(#[source] crate::load::LoadError),
    /// The directory could not be synced after removals; they may reappear
    /// after a power loss, which is harmless.
    #[error("cannot sync the store directory after removing old files{}", access_hint(.0))]
    SyncDir(#[source] io::Error),
}

/// Failed to save. Nothing new is visible unless the variant says so.
/// Input errors ([`Empty`](SaveError::Empty), [`Rejected`](SaveError::Rejected),
/// [`TooLarge`](SaveError::TooLarge), [`MissingNode`](SaveError::MissingNode),
/// [`MissingBootId`](SaveError::MissingBootId)) never succeed on retry;
/// I/O errors may, once the cause is fixed.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The content is empty; an empty `subnet.env` is never worth restoring.
    #[error("refusing to save an empty subnet.env")]
    Empty,
    /// The validator refused the content.
    #[error("refusing to save an invalid subnet.env: {0}")]
    Rejected(BadContent),
    /// The content would make a generation file over the size limit.
    #[error(
        "refusing to save {size} bytes: a generation file may not exceed {MAX_FILE_BYTES} bytes"
    )]
    TooLarge {
        /// Encoded size.
        size: usize,
    },
    /// No node name was given.
    #[error("refusing to save without a node name")]
    MissingNode,
    /// No boot ID was given.
    #[error("refusing to save without a boot ID (read it from /proc/sys/kernel/random/boot_id)")]
    MissingBootId,
    /// The writers' lock could not be taken.
    #[error("cannot lock the store (lock file {}){}", .path.display(), access_hint(.source))]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The store directory could not be listed.
    #[error(transparent)]
    List(#[from] crate::load::LoadError),
    /// Generation numbers ran out (only a hand-made file can cause this).
    #[error("no generation number left after {}; remove that file", .path.display())]
    NumbersExhausted {
        /// The file with the highest number.
        path: PathBuf,
    },
    /// The temporary file could not be created.
    #[error("cannot create a temporary file in the store{}", access_hint(.source))]
    CreateTemp {
        /// The temporary file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The temporary file could not be written.
    #[error("cannot write the temporary file {}{}", .path.display(), access_hint(.source))]
    WriteTemp {
        /// The temporary file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The temporary file could not be flushed to disk.
    #[error("cannot sync the temporary file {} to disk{}", .path.display(), access_hint(.source))]
    SyncTemp {
        /// The temporary file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Something already occupies the new generation's name. Writers hold a
    /// lock, so only a tool that ignores it can cause this.
    #[error("{} already exists; another program is writing to the store", .path.display())]
    Occupied {
        /// The generation's path.
        path: PathBuf,
    },
    /// The temporary file could not be renamed into place.
    #[error("cannot rename the temporary file to {}{}", .path.display(), access_hint(.source))]
    Rename {
        /// The generation's path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The directory could not be synced after the rename. The new
    /// generation is visible and will be verified on load, but may vanish
    /// after a power loss; saving again syncs it.
    #[error("cannot sync the store directory after writing {}{}", .path.display(), access_hint(.source))]
    SyncDir {
        /// The generation's path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The encoded generation did not decode: a bug, nothing was written.
    #[error("internal error: the encoded generation does not verify")]
    Encode(#[source] format::Invalid),
}

/// The writer's step boundaries, in order. Tests stop or kill the writer
/// just before each one to prove that every prefix of a save is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Step {
    CreateTemp,
    WriteHeader,
    WriteContent,
    SyncFile,
    Rename,
    SyncDir,
    /// Before each removal of an old generation.
    Prune,
}

#[cfg(test)]
impl Step {
    pub(crate) const ALL: [Step; 7] = [
        Step::CreateTemp,
        Step::WriteHeader,
        Step::WriteContent,
        Step::SyncFile,
        Step::Rename,
        Step::SyncDir,
        Step::Prune,
    ];
}

/// Observes the writer's steps; an error returned here becomes that step's
/// error. Production code passes [`NoSteps`].
pub(crate) trait Steps {
    fn before(&mut self, step: Step) -> io::Result<()>;
}

pub(crate) struct NoSteps;

impl Steps for NoSteps {
    fn before(&mut self, _: Step) -> io::Result<()> {
        Ok(())
    }
}

/// Distinguishes temporary files of one process even if removing an old one
/// failed.
fn next_temp_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Store {
    /// Saves `new` as the next generation, unless the newest valid
    /// generation for the same node already holds the same bytes
    /// ([`Outcome::Unchanged`]). `validate` must accept the content (and is
    /// used to pick that newest valid generation). Writers are serialised by
    /// a lock file; readers never see a partial generation. After the new
    /// generation is durable, generations beyond [`Store::keep`] and
    /// temporary files left by crashed writers are removed.
    pub fn save(
        &self,
        new: &NewGeneration<'_>,
        validate: impl Fn(&[u8]) -> Result<(), BadContent>,
    ) -> Result<Saved, SaveError> {
        self.save_with(new, validate, &mut NoSteps)
    }

    pub(crate) fn save_with(
        &self,
        new: &NewGeneration<'_>,
        validate: impl Fn(&[u8]) -> Result<(), BadContent>,
        steps: &mut dyn Steps,
    ) -> Result<Saved, SaveError> {
        let node = new.node.trim();
        let boot_id = new.boot_id.trim();
        if node.is_empty() {
            return Err(SaveError::MissingNode);
        }
        if boot_id.is_empty() {
            return Err(SaveError::MissingBootId);
        }
        if new.content.is_empty() {
            return Err(SaveError::Empty);
        }
        validate(new.content).map_err(SaveError::Rejected)?;
        let meta = Metadata {
            node: node.to_owned(),
            boot_id: boot_id.to_owned(),
            saved_at: new.saved_at,
            sha256: format::sha256_hex(new.content),
            pod_cidrs: new.pod_cidrs.to_vec(),
            source: new.source,
        };

        let _lock = self.lock()?;
        let listing = self.list()?;
        let mut housekeeping = Housekeeping::default();
        // We hold the lock, so every temp file belongs to a dead writer.
        for path in listing.temps {
            match fs::remove_file(&path) {
                Ok(()) => housekeeping.removed.push(path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => housekeeping
                    .failed
                    .push(CleanupError::RemoveTemp { path, source }),
            }
        }

        let newest_for_node = listing
            .generations
            .iter()
            .filter_map(|(n, path)| read_generation(*n, path.clone(), &validate).ok())
            .find(|g| g.meta.node == node);
        if let Some(generation) = newest_for_node
            && generation.content == new.content
        {
            // A previous save may have failed at its directory sync; make
            // sure what we report as saved is durable.
            match self.sync_dir() {
                Ok(()) => {}
                // Nothing can be pending on a read-only file system.
                Err(e) if e.kind() == io::ErrorKind::ReadOnlyFilesystem => {}
                Err(source) => {
                    return Err(SaveError::SyncDir {
                        path: generation.path,
                        source,
                    });
                }
            }
            return Ok(Saved {
                outcome: Outcome::Unchanged,
                generation,
                housekeeping,
            });
        }

        // Numbers come from every generation-named file, valid or not, so a
        // number is never reused while any file carries it.
        let number = match listing.generations.first() {
            None => 1,
            Some((n, path)) => n
                .checked_add(1)
                .ok_or_else(|| SaveError::NumbersExhausted { path: path.clone() })?,
        };
        let header = format::encode_header(number, &meta, new.content);
        let size = header.len() + new.content.len();
        if size as u64 > MAX_FILE_BYTES {
            return Err(SaveError::TooLarge { size });
        }
        let mut whole = header.clone();
        whole.extend_from_slice(new.content);
        let (meta, _) = format::decode(number, &whole).map_err(SaveError::Encode)?;

        let target = self.generation_path(number);
        let temp = self.dir.join(format!(
            "{TEMP_PREFIX}{}.{number}.{}",
            std::process::id(),
            next_temp_id()
        ));
        let written = self.write_temp(&temp, &header, new.content, steps);
        if let Err(e) = written {
            // Best effort: a leftover is ignored by readers and removed by
            // the next save anyway.
            let _ = fs::remove_file(&temp);
            return Err(e);
        }

        let renamed = steps.before(Step::Rename).and_then(|()| {
            if fs::symlink_metadata(&target).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(&temp, &target)
        });
        if let Err(source) = renamed {
            let _ = fs::remove_file(&temp);
            return Err(if source.kind() == io::ErrorKind::AlreadyExists {
                SaveError::Occupied { path: target }
            } else {
                SaveError::Rename {
                    path: target,
                    source,
                }
            });
        }
        steps
            .before(Step::SyncDir)
            .and_then(|()| self.sync_dir())
            .map_err(|source| SaveError::SyncDir {
                path: target.clone(),
                source,
            })?;

        // The new generation is durable: now, and only now, prune.
        self.prune(&mut housekeeping, steps);
        Ok(Saved {
            outcome: Outcome::Stored,
            generation: Generation {
                number,
                meta,
                content: new.content.to_vec(),
                path: target,
            },
            housekeeping,
        })
    }

    fn write_temp(
        &self,
        temp: &Path,
        header: &[u8],
        content: &[u8],
        steps: &mut dyn Steps,
    ) -> Result<(), SaveError> {
        let mut file = steps
            .before(Step::CreateTemp)
            .and_then(|()| {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(temp)
            })
            .map_err(|source| SaveError::CreateTemp {
                path: temp.to_path_buf(),
                source,
            })?;
        let write_error = |source| SaveError::WriteTemp {
            path: temp.to_path_buf(),
            source,
        };
        steps
            .before(Step::WriteHeader)
            .and_then(|()| file.write_all(header))
            .map_err(write_error)?;
        steps
            .before(Step::WriteContent)
            .and_then(|()| file.write_all(content))
            .map_err(write_error)?;
        steps
            .before(Step::SyncFile)
            .and_then(|()| file.sync_all())
            .map_err(|source| SaveError::SyncTemp {
                path: temp.to_path_buf(),
                source,
            })
    }

    /// Removes structurally valid generations beyond the kept count (the
    /// caller's validator plays no part here). Damaged files are neither
    /// counted nor removed: they stay for the operator, and `load` keeps
    /// reporting them.
    fn prune(&self, housekeeping: &mut Housekeeping, steps: &mut dyn Steps) {
        let listing = match self.list() {
            Ok(listing) => listing,
            Err(e) => {
                housekeeping.failed.push(CleanupError::List(e));
                return;
            }
        };
        let mut kept = 0;
        let mut removed_any = false;
        for (number, path) in listing.generations {
            if read_generation(number, path.clone(), &crate::load::any_content).is_err() {
                continue;
            }
            if kept < self.keep.get() {
                kept += 1;
                continue;
            }
            match steps
                .before(Step::Prune)
                .and_then(|()| fs::remove_file(&path))
            {
                Ok(()) => {
                    removed_any = true;
                    housekeeping.removed.push(path);
                }
                Err(source) => housekeeping
                    .failed
                    .push(CleanupError::Prune { path, source }),
            }
        }
        if removed_any && let Err(e) = self.sync_dir() {
            housekeeping.failed.push(CleanupError::SyncDir(e));
        }
    }

    /// Takes the writers' lock; released when the file is dropped (or the
    /// process dies).
    fn lock(&self) -> Result<File, SaveError> {
        let path = self.dir.join(LOCK_NAME);
        // A read-only descriptor is enough for flock, and lets an unchanged
        // save succeed on a read-only file system once the file exists.
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(&path)
                .map_err(|source| SaveError::Lock {
                    path: path.clone(),
                    source,
                })?,
            Err(source) => return Err(SaveError::Lock { path, source }),
        };
        file.lock()
            .map_err(|source| SaveError::Lock { path, source })?;
        Ok(file)
    }
}
