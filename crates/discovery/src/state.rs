//! Discovery's memory across restarts: each source's last good targets and the namespace
//! names last read from SSM, kept in a state file beside the output and replaced atomically
//! whenever they change. A discovery restarted while AWS fails starts from what it last
//! published instead of from nothing.

use crate::source::SourceKind;
use file_sd::TargetGroup;
use file_sd::{PUBLIC_MODE, write_atomically};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The format version written; a file of another version is ignored.
const VERSION: u32 = 1;

/// What is kept across restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Format version.
    pub version: u32,
    /// The names last read from the namespaces parameter, when discovery reads one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_names: Option<Vec<String>>,
    /// Every source that has answered, with its last good targets.
    #[serde(default)]
    pub sources: Vec<SourceState>,
}

/// One source's last good answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    /// Kind of source.
    pub kind: SourceKind,
    /// Namespace or cluster as configured.
    pub name: String,
    /// When it last refreshed without error (seconds since the epoch), if it ever did.
    #[serde(default)]
    pub last_success: Option<f64>,
    /// Its targets.
    #[serde(default)]
    pub targets: Vec<TargetGroup>,
}

/// Why the state file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file could not be read.
    #[error("reading the state file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a state document of this version.
    #[error("the state file {path} is not a discovery state document: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The state file: read once at start, rewritten when the state changes.
pub struct StateFile {
    path: PathBuf,
    written: Option<String>,
    /// Times writing it failed.
    pub failures: u64,
    /// Why the last write failed, if it did.
    pub last_error: Option<String>,
}

impl StateFile {
    /// The state file at `path`.
    pub fn new(path: PathBuf) -> Self {
        StateFile {
            path,
            written: None,
            failures: 0,
            last_error: None,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state last written; `Ok(None)` when there is no file yet.
    pub fn load(&mut self) -> Result<Option<State>, StateError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let invalid = |reason: String| StateError::Invalid {
            path: self.path.clone(),
            reason,
        };
        let state: State = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if state.version != VERSION {
            return Err(invalid(format!(
                "version {} (this discovery reads version {VERSION})",
                state.version
            )));
        }
        self.written = Some(text);
        Ok(Some(state))
    }

    /// Writes `state` if it differs from what the file holds.
    pub fn save(&mut self, state: &State) -> std::io::Result<()> {
        let mut state = state.clone();
        state.version = VERSION;
        for source in &mut state.sources {
            source.targets.sort();
        }
        let text = serde_json::to_string(&state).map_err(std::io::Error::other)? + "\n";
        if self.written.as_deref() == Some(text.as_str()) && self.last_error.is_none() {
            return Ok(());
        }
        if let Err(error) = write_atomically(&self.path, text.as_bytes(), PUBLIC_MODE) {
            self.failures += 1;
            self.last_error = Some(format!("writing {}: {error}", self.path.display()));
            return Err(error);
        }
        self.last_error = None;
        self.written = Some(text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_loads_back_and_bad_files_are_refused_in_words() {
        let dir = std::env::temp_dir().join(format!("discovery-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("ecs-services.json.state");
        let mut file = StateFile::new(path.clone());
        assert!(file.load().expect("no file yet").is_none());
        let mut target = TargetGroup::new("10.0.0.1", 9779);
        target.label("job", "ecs-exporter");
        let state = State {
            version: 0,
            namespace_names: Some(vec!["ecs-services".into()]),
            sources: vec![SourceState {
                kind: SourceKind::CloudMap,
                name: "ecs-services".into(),
                last_success: Some(1_700_000_000.5),
                targets: vec![target],
            }],
        };
        file.save(&state).expect("save");
        let loaded = StateFile::new(path.clone())
            .load()
            .expect("readable")
            .expect("present");
        assert_eq!(
            loaded,
            State {
                version: VERSION,
                ..state
            }
        );
        std::fs::write(&path, "[]").expect("garbage");
        let error = StateFile::new(path.clone())
            .load()
            .expect_err("not a state");
        assert!(error.to_string().contains("not a discovery state document"));
        std::fs::write(&path, r#"{"version":99,"sources":[]}"#).expect("future version");
        let error = StateFile::new(path).load().expect_err("other version");
        assert!(error.to_string().contains("version 99"), "{error}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
