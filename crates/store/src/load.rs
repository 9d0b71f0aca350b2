//! Reading generations back: verify each, skip and report the bad ones.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::PathBuf;

use crate::format::{self, Invalid, MAX_FILE_BYTES, Metadata};
use crate::store::{Name, Store, access_hint, classify};

/// One verified generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Generation number; higher is newer, never reused within a store.
    pub number: u64,
    /// What was recorded with the content.
    pub meta: Metadata,
    /// The stored `subnet.env` bytes, exactly as saved.
    pub content: Vec<u8>,
    /// The generation's file.
    pub path: PathBuf,
}

/// Everything found in a store directory.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Generations that passed every check, newest first.
    pub valid: Vec<Generation>,
    /// Files named like generations that failed a check, newest first. They
    /// are left in place for the operator to inspect.
    pub rejected: Vec<Rejected>,
    /// Temporary files left by a writer that crashed (or one writing right
    /// now); ignored, and removed by the next save.
    pub leftovers: Vec<PathBuf>,
}

impl Inventory {
    /// The newest valid generation for `node`.
    pub fn latest_for(&self, node: &str) -> Option<&Generation> {
        self.valid.iter().find(|g| g.meta.node == node)
    }
}

/// A file that looks like a generation but is not a valid one.
#[derive(Debug)]
pub struct Rejected {
    /// The file.
    pub path: PathBuf,
    /// Why it was skipped.
    pub reason: Reason,
}

/// Why a file was skipped.
#[derive(Debug, thiserror::Error)]
pub enum Reason {
    /// A symbolic link sits where a generation should be.
    #[error("is a symbolic link; generations are regular files, remove the link")]
    Symlink,
    /// A directory or special file sits where a generation should be.
    #[error("is not a regular file; remove it")]
    NotAFile,
    /// The name starts like a generation's but is not one we write.
    #[error("is not a generation file name (expected subnet-env.NNNNNN); rename or remove it")]
    Name,
    /// The file could not be read.
    #[error("cannot be read{}", access_hint(.0))]
    Read(#[source] io::Error),
    /// The bytes are not a valid generation.
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// Failed to list the store directory. Retryable only if the directory
/// comes back or its permissions are fixed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory could not be listed.
    #[error("cannot list the store directory {}{}", .path.display(), access_hint(.source))]
    List {
        /// The store directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// Directory entries that matter to the store, unread.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// (number, path), newest first.
    pub generations: Vec<(u64, PathBuf)>,
    pub malformed: Vec<PathBuf>,
    pub temps: Vec<PathBuf>,
}

impl Store {
    /// Lists and verifies every generation, newest first. A file is valid
    /// when it parses, its format version is known, its number matches its
    /// name, its length and SHA-256 match its content, and `validate`
    /// accepts the content (pass [`any_content`] to skip that). Bad files
    /// are reported in [`Inventory::rejected`], never fatal.
    pub fn load(
        &self,
        validate: impl Fn(&[u8]) -> Result<(), BadContent>,
    ) -> Result<Inventory, LoadError> {
        let listing = self.list()?;
        let mut inventory = Inventory {
            leftovers: listing.temps,
            ..Inventory::default()
        };
        for (number, path) in listing.generations {
            match read_generation(number, path.clone(), &validate) {
                Ok(generation) => inventory.valid.push(generation),
                // Pruned by a writer since we listed the directory.
                Err(Reason::Read(e)) if e.kind() == io::ErrorKind::NotFound => {}
                Err(reason) => inventory.rejected.push(Rejected { path, reason }),
            }
        }
        inventory
            .rejected
            .extend(listing.malformed.into_iter().map(|path| Rejected {
                path,
                reason: Reason::Name,
            }));
        Ok(inventory)
    }

    /// The newest valid generation saved for `node`, if any.
    pub fn latest_for(
        &self,
        node: &str,
        validate: impl Fn(&[u8]) -> Result<(), BadContent>,
    ) -> Result<Option<Generation>, LoadError> {
        let listing = self.list()?;
        for (number, path) in listing.generations {
            if let Ok(generation) = read_generation(number, path, &validate)
                && generation.meta.node == node
            {
                return Ok(Some(generation));
            }
        }
        Ok(None)
    }

    pub(crate) fn list(&self) -> Result<Listing, LoadError> {
        let list_error = |source| LoadError::List {
            path: self.dir.clone(),
            source,
        };
        let mut listing = Listing::default();
        for entry in fs::read_dir(&self.dir).map_err(list_error)? {
            let entry = entry.map_err(list_error)?;
            let name = entry.file_name();
            match classify(&name) {
                Name::Generation(n) => listing.generations.push((n, entry.path())),
                Name::Malformed => listing.malformed.push(entry.path()),
                Name::Temp => listing.temps.push(entry.path()),
                Name::Lock | Name::Other => {}
            }
        }
        listing.generations.sort_by_key(|g| std::cmp::Reverse(g.0));
        listing.malformed.sort();
        listing.temps.sort();
        Ok(listing)
    }
}

/// Why a validator refused a content, in the validator's words (the store
/// prints them after its own). Never retryable: the same bytes fail the
/// same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadContent(pub String);

/// A validator that accepts any content, for callers that only want the
/// store's own checks.
pub fn any_content(_: &[u8]) -> Result<(), BadContent> {
    Ok(())
}

/// Reads and verifies one generation file.
pub(crate) fn read_generation(
    number: u64,
    path: PathBuf,
    validate: &impl Fn(&[u8]) -> Result<(), BadContent>,
) -> Result<Generation, Reason> {
    let meta = fs::symlink_metadata(&path).map_err(Reason::Read)?;
    if meta.file_type().is_symlink() {
        return Err(Reason::Symlink);
    }
    if !meta.is_file() {
        return Err(Reason::NotAFile);
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Invalid::TooLarge { size: meta.len() }.into());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The size may change between stat and read; never read past the limit.
    File::open(&path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(Reason::Read)?;
    let (meta, content) = format::decode(number, &bytes)?;
    validate(&content).map_err(Invalid::Rejected)?;
    Ok(Generation {
        number,
        meta,
        content,
        path,
    })
}
