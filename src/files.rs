//! Files users name, read and written so that no input can hang or exhaust the tool and no output
//! is ever left half-written:
//! - [`read_bounded`] reads regular files only, never more than a limit (plus one byte, to tell
//!   "too large"), and never blocks on opening a FIFO without a writer;
//! - [`write_atomic`] writes a temporary file next to the target, syncs it and renames it over the
//!   target, so the path holds either the previous file or the complete new one;
//! - [`write_output`] writes a report where the user pointed: atomically onto a regular file or a
//!   new path, through a symlink onto its target (never replacing the link), as a stream into a
//!   FIFO or a device (never replacing it with a file), `-` to stdout.

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

/// What is at an output path, and so how a report is written there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    /// `-`: standard output.
    Stdout,
    /// A regular file or nothing yet: written atomically at this path (a symlink's target when the
    /// user named a symlink).
    File(PathBuf),
    /// A FIFO, a character device or a socket: written as a stream, never replaced.
    Stream(PathBuf),
}

/// What `path` is, following symlinks to their target; refuses a directory, a dangling symlink and
/// a block device.
pub fn output_kind(path: &Path) -> std::io::Result<OutputKind> {
    use std::os::unix::fs::FileTypeExt;
    if path.as_os_str() == "-" {
        return Ok(OutputKind::Stdout);
    }
    let link = std::fs::symlink_metadata(path).ok().filter(|m| m.file_type().is_symlink());
    let target = match link {
        Some(_) => std::fs::canonicalize(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("is a symlink whose target cannot be reached ({e}); name the target itself")))?,
        None => path.to_path_buf(),
    };
    match std::fs::metadata(&target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(OutputKind::File(target)),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => Err(std::io::Error::other("it is a directory")),
        Ok(m) if m.is_file() => Ok(OutputKind::File(target)),
        Ok(m) if m.file_type().is_block_device() => Err(std::io::Error::other("it is a block device; a report is not written onto a disk")),
        Ok(_) => Ok(OutputKind::Stream(target)),
    }
}

/// Writes a report to `path` as [`output_kind`] says: atomically onto a file (a symlink's target),
/// as a stream into a FIFO or a device, or to stdout for `-`. A FIFO without a reader is an error,
/// not a hang.
pub fn write_output(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match output_kind(path)? {
        OutputKind::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
        OutputKind::File(target) => write_atomic(&target, bytes),
        OutputKind::Stream(target) => {
            // O_NONBLOCK so that a FIFO nobody reads fails at once (ENXIO) instead of waiting; the
            // writes themselves then block as usual.
            let f = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&target)
                .map_err(|e| if e.raw_os_error() == Some(libc::ENXIO) { std::io::Error::other("it is a FIFO that nobody reads") } else { e })?;
            set_blocking(&f)?;
            let mut f = f;
            f.write_all(bytes)
        }
    }
}

/// Clears O_NONBLOCK on an open file.
fn set_blocking(f: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor we own, with flags read from it.
    unsafe {
        let flags = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Proves before a run that a report can be written at `path`, without creating or touching it:
/// for a file, that a file can be created in its folder (creating the folder); for a FIFO or a
/// device, that it may be written (nothing is created next to it, in /dev least of all).
pub fn check_writable(path: &Path) -> std::io::Result<()> {
    match output_kind(path)? {
        OutputKind::Stdout => Ok(()),
        OutputKind::Stream(target) => {
            let c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
            // SAFETY: access(2) on a NUL-terminated path.
            if unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
        }
        OutputKind::File(target) => {
            std::fs::create_dir_all(parent(&target))?;
            let probe = temp_path(&target);
            std::fs::OpenOptions::new().write(true).create_new(true).open(&probe)?;
            std::fs::remove_file(&probe)
        }
    }
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

    #[test]
    fn outputs_never_replace_a_fifo_a_device_or_a_symlink() {
        // regression: hardening II item 7. `--json` onto a FIFO and a symlink turned them into
        // regular files.
        use std::os::unix::fs::FileTypeExt;
        let d = dir("outputs");
        let fifo = d.join("p");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(&fifo).unwrap())
        };
        // Opening for writing before the reader opens fails at once, so wait until it is open.
        let mut tries = 0;
        loop {
            match write_output(&fifo, b"through the pipe") {
                Ok(()) => break,
                Err(e) if e.to_string().contains("nobody reads") && tries < 500 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO is still a FIFO");
        assert!(write_output(&fifo, b"x").unwrap_err().to_string().contains("nobody reads"), "no reader: an error, not a hang");
        // A symlink: the target gets the report, the link stays a link.
        std::fs::write(d.join("target.json"), b"old").unwrap();
        std::os::unix::fs::symlink(d.join("target.json"), d.join("link.json")).unwrap();
        write_output(&d.join("link.json"), b"new").unwrap();
        assert!(std::fs::symlink_metadata(d.join("link.json")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(d.join("target.json")).unwrap(), b"new");
        std::os::unix::fs::symlink(d.join("gone/nowhere.json"), d.join("dangling.json")).unwrap();
        assert!(write_output(&d.join("dangling.json"), b"x").unwrap_err().to_string().contains("symlink"));
        // /dev/null is written through and stays a device; checking it creates nothing in /dev.
        write_output(Path::new("/dev/null"), b"gone").unwrap();
        check_writable(Path::new("/dev/null")).unwrap();
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
        assert!(write_output(&d, b"x").is_err(), "a directory is refused");
    }
}
