//! Logs: tracing to the console (stderr; `--log-level`, else `RUST_LOG`, else warnings only, so
//! progress and the summary stay readable) and optionally to a file (`--log-file`) that rotates
//! daily or by size. Events carry the run id through the `run` span. Secrets never reach a log:
//! they are [`crate::scenario::model::Secret`]s, whose every rendering is `***`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How the log file rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Never.
    Never,
    /// A new file each day (`<file>.YYYY-MM-DD`).
    Daily,
    /// When the file passes this many bytes (kept: `<file>.1` … `<file>.3`).
    Size(u64),
}

/// Parses `never`, `daily` or `size:10MiB`.
pub fn parse_rotation(s: &str) -> Result<Rotation, String> {
    match s {
        "never" => Ok(Rotation::Never),
        "daily" => Ok(Rotation::Daily),
        other => match other.strip_prefix("size:") {
            Some(size) => crate::units::parse_size(size).and_then(|n| if n >= 1024 { Ok(Rotation::Size(n)) } else { Err("rotate at 1KiB or more".into()) }),
            None => Err(format!("`{s}`: use `never`, `daily` or `size:<size>` (e.g. `size:10MiB`)")),
        },
    }
}

/// A file that starts over (keeping three old ones) when it passes a size.
#[derive(Clone)]
struct SizeRotating {
    inner: Arc<Mutex<(File, u64)>>,
    path: PathBuf,
    limit: u64,
}

impl SizeRotating {
    fn open(path: &Path, limit: u64) -> std::io::Result<SizeRotating> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        let len = f.metadata()?.len();
        Ok(SizeRotating { inner: Arc::new(Mutex::new((f, len))), path: path.to_path_buf(), limit })
    }
}

impl Write for SizeRotating {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut g = self.inner.lock().map_err(|_| std::io::Error::other("log lock"))?;
        if g.1 + buf.len() as u64 > self.limit && g.1 > 0 {
            for i in (1..3).rev() {
                let _ = std::fs::rename(format!("{}.{i}", self.path.display()), format!("{}.{}", self.path.display(), i + 1));
            }
            let _ = std::fs::rename(&self.path, format!("{}.1", self.path.display()));
            *g = (OpenOptions::new().create(true).truncate(true).write(true).open(&self.path)?, 0);
        }
        let n = g.0.write(buf)?;
        g.1 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.lock().map_err(|_| std::io::Error::other("log lock"))?.0.flush()
    }
}

impl<'a> MakeWriter<'a> for SizeRotating {
    type Writer = SizeRotating;
    fn make_writer(&'a self) -> SizeRotating {
        self.clone()
    }
}

/// A log file writer that says once, on stderr, when writing fails (a full disk, a vanished
/// folder) instead of dropping log lines silently; the run goes on either way.
struct SaysWhenItFails<W> {
    inner: W,
    path: PathBuf,
    told: Arc<std::sync::atomic::AtomicBool>,
}

impl<W: Write> Write for SaysWhenItFails<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.inner.write_all(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                if !self.told.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    crate::errln!("redis-test: cannot write the log file {}: {e}; log lines are being lost (the run goes on)", self.path.display());
                }
                Ok(buf.len())
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.inner.flush();
        Ok(())
    }
}

/// Keeps the file writer flushing until the program ends.
pub struct Guard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// Installs the global subscriber. `level` wins over `RUST_LOG`; the file gets `level` or `info`.
pub fn init(level: Option<&str>, file: Option<&Path>, rotation: Rotation) -> Result<Guard, String> {
    let console = match level {
        Some(l) => EnvFilter::try_new(l).map_err(|e| format!("--log-level `{l}`: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let console_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(!no_color && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(console);
    let (file_layer, guard) = match file {
        None => (None, None),
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| format!("--log-file {}: {e}", path.display()))?;
            }
            let filter = EnvFilter::try_new(level.unwrap_or("info")).map_err(|e| e.to_string())?;
            let told = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (writer, guard) = match rotation {
                Rotation::Size(limit) => {
                    let inner = SizeRotating::open(path, limit).map_err(|e| format!("--log-file {}: {e}", path.display()))?;
                    tracing_appender::non_blocking(SaysWhenItFails { inner, path: path.to_path_buf(), told })
                }
                Rotation::Daily | Rotation::Never => {
                    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                    let name = path.file_name().ok_or_else(|| format!("--log-file {}: not a file name", path.display()))?;
                    let inner =
                        if rotation == Rotation::Daily { tracing_appender::rolling::daily(dir, name) } else { tracing_appender::rolling::never(dir, name) };
                    tracing_appender::non_blocking(SaysWhenItFails { inner, path: path.to_path_buf(), told })
                }
            };
            (Some(tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false).with_filter(filter)), Some(guard))
        }
    };
    tracing_subscriber::registry().with(console_layer).with(file_layer).try_init().map_err(|e| e.to_string())?;
    Ok(Guard(guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_settings_parse() {
        assert_eq!(parse_rotation("daily"), Ok(Rotation::Daily));
        assert_eq!(parse_rotation("size:10MiB"), Ok(Rotation::Size(10 * 1024 * 1024)));
        assert!(parse_rotation("weekly").is_err());
        assert!(parse_rotation("size:10B").is_err());
    }

    #[test]
    fn size_rotation_keeps_three_old_files() {
        let dir = std::env::temp_dir().join(format!("rt-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.log");
        let mut w = SizeRotating::open(&path, 1024).unwrap();
        for _ in 0..50 {
            w.write_all(&[b'x'; 100]).unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 1024);
        for i in 1..=3 {
            assert!(dir.join(format!("r.log.{i}")).exists(), "r.log.{i}");
        }
        assert!(!dir.join("r.log.4").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
