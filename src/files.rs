//! Files users name, read and written so that no input can hang or exhaust the tool and no output
//! is ever left half-written:
//! - [`read_bounded`] reads regular files only, never more than a limit (plus one byte, to tell
//!   "too large"), and never blocks on opening a FIFO without a writer;
//! - [`write_atomic`] writes a temporary file next to the target, syncs it and renames it over the
//!   target, so the path holds either the previous file or the complete new one.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// A directory, FIFO, device or socket.
    #[error("is {0}, not a regular file")]
    NotRegular(&'static str),
    /// Longer than the limit.
    #[error("is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
}

/// Reads the regular file at `path` (following symlinks), at most `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let meta = file.metadata()?;
    let ft = meta.file_type();
    if !ft.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(ReadError::NotRegular(what));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    // The size may change while reading (a file being written): never read past the limit.
    let mut out = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(out)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced, then renamed
/// over `path`. On any failure the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the folder is synced.
        if let Ok(dir) = std::fs::File::open(parent(path)) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Proves that a file can be created in `path`'s folder (creating the folder), without creating or
/// touching `path` itself: a report path is checked before a run, and written only after it.
pub fn check_writable(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(parent(path))?;
    let probe = temp_path(path);
    std::fs::OpenOptions::new().write(true).create_new(true).open(&probe)?;
    std::fs::remove_file(&probe)
}

fn parent(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// `.<name>.<pid>.<n>.tmp` next to `path`.
fn temp_path(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    parent(path).join(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("redis-test-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn only_regular_files_and_never_more_than_the_limit() {
        let d = dir("read");
        std::fs::write(d.join("f"), b"hello").unwrap();
        assert_eq!(read_bounded(&d.join("f"), 5).unwrap(), b"hello");
        assert!(matches!(read_bounded(&d.join("f"), 4), Err(ReadError::TooLarge { limit: 4 })));
        assert!(matches!(read_bounded(&d, 10), Err(ReadError::NotRegular("a directory"))));
        assert!(matches!(read_bounded(Path::new("/dev/zero"), 10), Err(ReadError::NotRegular("a device"))));
        std::os::unix::fs::symlink("/dev/zero", d.join("z")).unwrap();
        assert!(matches!(read_bounded(&d.join("z"), 10), Err(ReadError::NotRegular("a device"))));
        let fifo = d.join("p");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let started = std::time::Instant::now();
        assert!(matches!(read_bounded(&fifo, 10), Err(ReadError::NotRegular("a FIFO"))));
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "a FIFO without a writer does not block");
    }

    #[test]
    fn atomic_writes_leave_the_old_file_or_the_new_one() {
        let d = dir("write");
        let p = d.join("r.json");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "no temporary file left");
        // A folder that does not exist: the write fails and nothing appears.
        assert!(write_atomic(&d.join("missing/r.json"), b"x").is_err());
        check_writable(&d.join("sub/r.json")).unwrap();
        assert!(!d.join("sub/r.json").exists(), "checking does not create the report");
    }
}
