//! Reading and writing results files.
//!
//! Readers check the schema version before parsing the rest: a file from a newer feedbench
//! may not parse as these types, and "schema 3 is not supported" says more than a
//! missing-field error. Writers replace a file atomically, so a report never reads half a
//! results file while a run is updating it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::run::Results;
use crate::{OLDEST_SCHEMA_VERSION, SCHEMA_VERSION};

/// Why a results file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON, or not a results document of its schema version.
    #[error("{} is not a valid results file", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What serde found.
        #[source]
        source: serde_json::Error,
    },
    /// The file's `schema_version` is not one this crate reads.
    #[error(
        "{} has schema_version {found}; this feedbench reads schemas {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION}",
        path.display()
    )]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: u64,
    },
}

/// Just enough of a results file to read its schema version.
#[derive(Deserialize)]
struct VersionProbe {
    schema_version: u64,
}

/// Whether this crate reads files of schema `version`.
pub fn is_supported_version(version: u64) -> bool {
    (u64::from(OLDEST_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&version)
}

impl Results {
    /// Parses a results document (no version check; see [`Results::load`]).
    pub fn from_json(text: &str) -> Result<Results, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Reads and parses a results file of a supported schema version.
    pub fn load(path: &Path) -> Result<Results, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parse_error = |source| LoadError::Parse {
            path: path.to_path_buf(),
            source,
        };
        let version = serde_json::from_str::<VersionProbe>(&text)
            .map_err(parse_error)?
            .schema_version;
        if !is_supported_version(version) {
            return Err(LoadError::SchemaVersion {
                path: path.to_path_buf(),
                found: version,
            });
        }
        Results::from_json(&text).map_err(parse_error)
    }
}

/// Writes `value` as pretty JSON to `path` atomically: a temporary file in the same
/// directory, synced, then renamed over `path`.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results.json".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer_pretty(&mut f, value)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test.
    fn temp_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fb-results-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn writes_atomically() {
        let dir = temp_dir("atomic");
        let path = dir.join("r.json");
        write_json_atomic(&path, &serde_json::json!({"a": 1})).unwrap();
        write_json_atomic(&path, &serde_json::json!({"a": 2})).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["a"], 2);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left behind"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_names_the_problem() {
        let dir = temp_dir("load");
        let missing = dir.join("missing.json");
        assert!(matches!(
            Results::load(&missing),
            Err(LoadError::Read { .. })
        ));
        let future = dir.join("future.json");
        std::fs::write(&future, r#"{"schema_version": 3, "anything": "else"}"#).unwrap();
        let err = Results::load(&future).unwrap_err();
        assert!(
            matches!(err, LoadError::SchemaVersion { found: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().ends_with("reads schemas 1 to 2"), "{err}");
        let broken = dir.join("broken.json");
        std::fs::write(&broken, "{").unwrap();
        assert!(matches!(
            Results::load(&broken),
            Err(LoadError::Parse { .. })
        ));
        assert!(!is_supported_version(0));
        assert!(is_supported_version(1) && is_supported_version(2));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
