//! `node backup`: keep the live subnet.env in the store when it is valid and new.

use rebootguard_store::{NewGeneration, Outcome as Saved, Source};
use serde::Serialize;

use crate::live::{self, Live};
use crate::observe::validate;
use crate::settings::Settings;

/// What a backup did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    /// A new generation was stored.
    Stored {
        /// Its number.
        generation: u64,
    },
    /// The newest generation already holds these bytes.
    Unchanged {
        /// Its number.
        generation: u64,
    },
}

/// Why nothing was backed up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No live file.
    #[error("{0} does not exist: nothing to back up (flannel has not written it this boot)")]
    Missing(String),
    /// The live file is not valid, so it is not kept.
    #[error("{path} is invalid and was not backed up: {problems}")]
    Invalid {
        /// The path.
        path: String,
        /// What is wrong.
        problems: String,
    },
    /// Something unsafe at the path.
    #[error("{path} {why}")]
    Unusable {
        /// The path.
        path: String,
        /// What sits there.
        why: live::Unusable,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Open(#[from] rebootguard_store::OpenError),
    /// The store refused or failed the save.
    #[error(transparent)]
    Save(#[from] rebootguard_store::SaveError),
    /// The boot ID could not be read.
    #[error("failed to read the boot ID from {path}")]
    BootId {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        cause: std::io::Error,
    },
}

/// Stores the live file if it is valid and differs from the newest backup.
pub fn run(settings: &Settings) -> Result<Outcome, Error> {
    let path = settings.paths.subnet_env.display().to_string();
    let (bytes, parsed) = match live::read(&settings.paths.root, &settings.paths.subnet_env) {
        Live::Missing => return Err(Error::Missing(path)),
        Live::Unusable(why) => return Err(Error::Unusable { path, why }),
        Live::Present { bytes, parsed } => (bytes, parsed),
    };
    if !parsed.is_valid() {
        let problems = parsed
            .errors()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Error::Invalid { path, problems });
    }
    let boot_id = crate::host::boot_id(&settings.paths).map_err(|cause| Error::BootId {
        path: settings.paths.boot_id.display().to_string(),
        cause,
    })?;
    let pod_cidrs: Vec<String> = parsed
        .env
        .pod_cidrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    let store = crate::host::open_store(&settings.paths)?.keep(settings.keep);
    let saved = store.save(
        &NewGeneration {
            content: &bytes,
            node: &settings.node_name,
            boot_id: &boot_id,
            pod_cidrs: &pod_cidrs,
            source: Source::Live,
            saved_at: jiff::Timestamp::now(),
        },
        validate,
    )?;
    let generation = saved.generation.number;
    Ok(match saved.outcome {
        Saved::Stored => {
            tracing::info!(generation, store = %settings.paths.store.display(), "backed up subnet.env");
            Outcome::Stored { generation }
        }
        Saved::Unchanged => Outcome::Unchanged { generation },
    })
}
