//! The file_sd output: the target list written atomically (a temporary file in the same
//! directory, flushed to disk, then renamed over the old one), and only when it changed, so
//! Prometheus never reads a partial file and is not woken for nothing.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Replaces `path` with `content` atomically.
pub fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let directory = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".tmp-{}", std::process::id()));
    let temporary = directory.join(temporary_name);
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// A file_sd file that is rewritten only when its content changes.
pub struct FileOutput {
    path: PathBuf,
    written: Option<String>,
    /// Times the file was written.
    pub writes: u64,
}

impl FileOutput {
    /// An output to `path`; a file already there with the same content is not rewritten.
    pub fn new(path: PathBuf) -> Self {
        let written = std::fs::read_to_string(&path).ok();
        FileOutput {
            path,
            written,
            writes: 0,
        }
    }

    /// The path written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `content` if it differs from what the file holds. Returns whether it wrote.
    pub fn update(&mut self, content: &str) -> std::io::Result<bool> {
        if self.written.as_deref() == Some(content) {
            return Ok(false);
        }
        write_atomically(&self.path, content.as_bytes())?;
        self.written = Some(content.to_owned());
        self.writes += 1;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_changes_and_leaves_no_temporary_files() {
        let dir = std::env::temp_dir().join(format!("discovery-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("ecs-services.json");
        let mut output = FileOutput::new(path.clone());
        assert!(output.update("[]\n").expect("write"));
        assert!(!output.update("[]\n").expect("same"));
        assert!(output.update("[{}]\n").expect("changed"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "[{}]\n");
        assert_eq!(output.writes, 2);
        // A new output over an unchanged file does not rewrite it.
        assert!(
            !FileOutput::new(path.clone())
                .update("[{}]\n")
                .expect("same")
        );
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["ecs-services.json"]);
        assert!(write_atomically(&dir.join("missing/x.json"), b"[]").is_err());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
