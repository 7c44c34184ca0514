//! Files replaced atomically (file_sd targets, discovery's state, Prometheus' configuration):
//! each written (a new temporary file with an unpredictable name in the same directory,
//! flushed, renamed over the old one, then the directory flushed), and the file_sd file only
//! when it changed, so Prometheus never reads a partial file and is not woken for nothing.

use std::fs::OpenOptions;
use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of files anyone on the host may read (the targets, the state).
pub const PUBLIC_MODE: u32 = 0o644;
/// Mode of files that may hold secrets (a decrypted SecureString configuration).
pub const SECRET_MODE: u32 = 0o600;

/// Replaces `path` with `content` atomically; the new file gets exactly `mode`, whatever the
/// umask.
///
/// The temporary file is created with `O_CREAT | O_EXCL` under a random name, so a symlink or
/// file planted in the directory is never followed or overwritten; the directory is flushed
/// after the rename so the new name survives a crash.
pub fn write_atomically(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    let directory = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let (temporary, mut file) = create_temporary(&directory, name, mode)?;
    let result = (|| {
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(content)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(&directory)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// A new file `.<name>.<random>.tmp` in `directory`, never an existing one.
fn create_temporary(
    directory: &Path,
    name: &std::ffi::OsStr,
    mode: u32,
) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut last_error = None;
    for attempt in 0u32..16 {
        // RandomState is seeded from the OS's randomness once per process and varied per
        // instance: unpredictable to anyone else on the host.
        let random = RandomState::new().hash_one((std::process::id(), attempt));
        let mut temporary_name = std::ffi::OsString::from(".");
        temporary_name.push(name);
        temporary_name.push(format!(".{random:016x}.tmp"));
        let temporary = directory.join(temporary_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temporary)
        {
            Ok(file) => return Ok((temporary, file)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                last_error = Some(error)
            }
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

/// A file_sd file that is rewritten only when its content changes.
pub struct FileOutput {
    path: PathBuf,
    written: Option<String>,
    /// Times the file was written.
    pub writes: u64,
    /// Times writing it failed.
    pub failures: u64,
    /// Why the last attempt to write it failed, if it did.
    pub last_error: Option<String>,
}

impl FileOutput {
    /// An output to `path`; a file already there with the same content is not rewritten.
    pub fn new(path: PathBuf) -> Self {
        let written = std::fs::read_to_string(&path).ok();
        FileOutput {
            path,
            written,
            writes: 0,
            failures: 0,
            last_error: None,
        }
    }

    /// The path written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file held when discovery started or last wrote it.
    pub fn current(&self) -> Option<&str> {
        self.written.as_deref()
    }

    /// Writes `content` if it differs from what the file holds. Returns whether it wrote; a
    /// failure is counted and kept in words until a write succeeds.
    pub fn update(&mut self, content: &str) -> std::io::Result<bool> {
        if self.written.as_deref() == Some(content) && self.last_error.is_none() {
            return Ok(false);
        }
        if let Err(error) = write_atomically(&self.path, content.as_bytes(), PUBLIC_MODE) {
            self.failures += 1;
            self.last_error = Some(format!("writing {}: {error}", self.path.display()));
            return Err(error);
        }
        self.last_error = None;
        self.written = Some(content.to_owned());
        self.writes += 1;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("file-sd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn writes_only_changes_and_leaves_no_temporary_files() {
        let dir = scratch("output");
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
        assert!(write_atomically(&dir.join("missing/x.json"), b"[]", PUBLIC_MODE).is_err());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_failed_write_is_counted_and_retried_even_without_a_change() {
        let dir = scratch("output-failure");
        let path = dir.join("missing").join("ecs-services.json");
        let mut output = FileOutput::new(path.clone());
        assert!(output.update("[]\n").is_err());
        assert!(output.update("[]\n").is_err());
        assert_eq!((output.writes, output.failures), (0, 2));
        assert!(
            output
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("missing"))
        );
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        assert!(output.update("[]\n").expect("written now"));
        assert_eq!(output.last_error, None);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_planted_symlink_at_the_old_temporary_name_is_not_followed() {
        let dir = scratch("symlink");
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n").expect("victim");
        // The name earlier versions used for their temporary file.
        let planted = dir.join(format!(".ecs-services.json.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).expect("symlink");
        let path = dir.join("ecs-services.json");
        write_atomically(&path, b"[]\n", PUBLIC_MODE).expect("write");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "precious\n"
        );
        assert_eq!(std::fs::read_to_string(&path).expect("output"), "[]\n");
        assert!(
            std::fs::symlink_metadata(&planted)
                .expect("still there")
                .file_type()
                .is_symlink()
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn secrets_are_written_readable_by_the_owner_only() {
        let dir = scratch("mode");
        let path = dir.join("prometheus.yaml");
        // Even over an existing world-readable file.
        std::fs::write(&path, "old").expect("old");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_atomically(&path, b"password: x\n", SECRET_MODE).expect("write");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
