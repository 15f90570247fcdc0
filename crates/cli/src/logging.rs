//! Where a process's log goes: stderr, or (`--log-file`) a file the process rotates itself by
//! size, so that a node that runs for months takes a bounded share of its disk:
//! (1 + `--log-keep`) × `--log-max-size`.
//!
//! A member under steady orderflow writes several megabytes of log an hour; without
//! rotation its log is the one file of its data directory that never stops growing.

use std::{
    ffi::OsString,
    fmt,
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    str::FromStr,
};

use eyre::WrapErr;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Size at which a log file is rotated, when not set.
pub(crate) const DEFAULT_LOG_MAX_SIZE: ByteSize = ByteSize(64 << 20);
/// Rotated log files kept beside the current one, when not set.
pub(crate) const DEFAULT_LOG_KEEP: u64 = 3;

/// Lines the file's writer thread may have waiting before new ones are dropped: a node never
/// waits for its disk to log.
const BUFFERED_LINES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct LogArgs {
    /// Write the log to this file instead of stderr, rotated by size: FILE.1 holds the lines
    /// before FILE's, FILE.2 those before FILE.1's, and so on.
    #[arg(long)]
    pub(crate) log_file: Option<PathBuf>,
    /// Size each log file is kept within (a line that would pass it starts the next file):
    /// bytes, or a number with K, M or G (powers of 1024).
    #[arg(long, default_value_t = DEFAULT_LOG_MAX_SIZE)]
    pub(crate) log_max_size: ByteSize,
    /// Rotated log files kept beside the current one; older ones are deleted.
    #[arg(long, default_value_t = DEFAULT_LOG_KEEP, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub(crate) log_keep: u64,
}

impl Default for LogArgs {
    fn default() -> Self {
        Self {
            log_file: None,
            log_max_size: DEFAULT_LOG_MAX_SIZE,
            log_keep: DEFAULT_LOG_KEEP,
        }
    }
}

impl LogArgs {
    /// The flags that set these arguments again.
    pub(crate) fn to_argv(&self) -> Vec<OsString> {
        let mut argv = Vec::new();
        if let Some(file) = &self.log_file {
            argv.extend(["--log-file".into(), file.clone().into_os_string()]);
        }
        argv.extend([
            "--log-max-size".into(),
            self.log_max_size.to_string().into(),
            "--log-keep".into(),
            self.log_keep.to_string().into(),
        ]);
        argv
    }
}

/// A number of bytes, written as a count or with a K, M or G suffix (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSize(pub(crate) u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (digits, shift) = match s.char_indices().last() {
            Some((at, 'k' | 'K')) => (&s[..at], 10),
            Some((at, 'm' | 'M')) => (&s[..at], 20),
            Some((at, 'g' | 'G')) => (&s[..at], 30),
            _ => (s, 0),
        };
        let count: u64 = digits
            .parse()
            .map_err(|_| "expected a size such as 65536, 512K, 64M or 1G".to_owned())?;
        let bytes = count
            .checked_mul(1 << shift)
            .ok_or_else(|| "size too large".to_owned())?;
        if bytes == 0 {
            return Err("size must be above zero".into());
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] {
            if self.0.is_multiple_of(1 << shift) {
                return write!(f, "{}{suffix}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// Installs the process's log: `default_filter` unless `RUST_LOG` says otherwise, to the file
/// `args` name or else to stderr. Keep the guard while the process runs: dropping it flushes
/// the file's writer thread.
pub(crate) fn init(
    default_filter: &str,
    args: Option<&LogArgs>,
) -> eyre::Result<Option<WorkerGuard>> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match args.and_then(|a| a.log_file.as_ref().map(|file| (a, file))) {
        Some((args, file)) => {
            let writer = rotating(file, args.log_max_size, args.log_keep)?;
            let (writer, guard) = NonBlockingBuilder::default()
                .buffered_lines_limit(BUFFERED_LINES)
                .lossy(true)
                .thread_name("cobuild-log")
                .finish(writer);
            builder.with_writer(writer).with_ansi(false).init();
            Ok(Some(guard))
        }
        None => {
            builder
                .with_writer(io::stderr)
                // Colour only for a person at a terminal: a log redirected to a file would
                // otherwise be ~40 % escape codes.
                .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
                .init();
            Ok(None)
        }
    }
}

/// `path`, appended to and rotated past `max` bytes, keeping `keep` earlier files; an error
/// now if it cannot be opened.
fn rotating(path: &Path, max: ByteSize, keep: u64) -> eyre::Result<RotatingFile> {
    if path.file_name().is_none() {
        eyre::bail!("--log-file {} names no file", path.display());
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
    let mut log = RotatingFile {
        path: path.to_path_buf(),
        max: max.0,
        keep,
        file: None,
        written: 0,
        failing: false,
    };
    log.current()
        .wrap_err_with(|| format!("opening the log file {}", path.display()))?;
    Ok(log)
}

/// A log file rotated by size: a line that would take it past `max` bytes first moves FILE.n to
/// FILE.n+1 (FILE.keep is overwritten), FILE to FILE.1, and starts a new FILE. A line is never
/// split across files.
///
/// Written here rather than taken from a crate: `file-rotate` 0.8, tried first, asserts that the
/// files are where it left them, so a log deleted by hand to free space panicked its writer
/// thread and ended the node's log for good. This one never panics: a file it cannot rename is
/// left where it is, and one it cannot open fails that write and is opened again at the next.
/// The writer thread drops write errors silently, so the first of a run of them is said here,
/// on stderr.
#[derive(Debug)]
struct RotatingFile {
    path: PathBuf,
    max: u64,
    keep: u64,
    file: Option<File>,
    /// Bytes in the current file.
    written: u64,
    /// The last write failed (and said so).
    failing: bool,
}

impl RotatingFile {
    /// FILE.n, built on the path's bytes (whatever their encoding).
    fn numbered(&self, n: u64) -> PathBuf {
        let mut name = OsString::from(self.path.as_os_str());
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// The current file, opened (appending, after what it holds) if it is not.
    fn current(&mut self) -> io::Result<&mut File> {
        let file = match self.file.take() {
            Some(file) => file,
            None => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?;
                self.written = file.metadata().map(|m| m.len()).unwrap_or_default();
                file
            }
        };
        Ok(self.file.insert(file))
    }

    fn rotate(&mut self) {
        self.file = None;
        for n in (1..self.keep).rev() {
            // Gaps (a file deleted by hand) are skipped.
            let _ = std::fs::rename(self.numbered(n), self.numbered(n + 1));
        }
        let _ = std::fs::rename(&self.path, self.numbered(1));
        self.written = 0;
    }

    fn append(&mut self, line: &[u8]) -> io::Result<()> {
        if self.written > 0 && self.written + line.len() as u64 > self.max {
            self.rotate();
        }
        // One write per line (the subscriber formats a whole event, then writes it), so a
        // line lands in one file.
        self.current()?.write_all(line)?;
        self.written += line.len() as u64;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.append(buf);
        match &result {
            Err(e) if !self.failing => {
                eprintln!("cobuild: writing the log {}: {e}", self.path.display());
            }
            Ok(()) if self.failing => {
                eprintln!("cobuild: writing the log {} again", self.path.display());
            }
            _ => {}
        }
        self.failing = result.is_err();
        result.map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), File::flush)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn test_sizes_read_as_bytes_or_with_a_binary_suffix_and_print_back() {
        for (text, bytes) in [
            ("65536", 65_536),
            ("512K", 512 << 10),
            ("16k", 16 << 10),
            ("64M", 64 << 20),
            ("1G", 1 << 30),
            ("1000", 1000),
        ] {
            let size: ByteSize = text.parse().expect(text);
            assert_eq!(size, ByteSize(bytes), "{text}");
            assert_eq!(size.to_string().parse::<ByteSize>(), Ok(size));
        }
        assert_eq!(ByteSize(64 << 20).to_string(), "64M");
        assert_eq!(ByteSize(1000).to_string(), "1000");
        for bad in [
            "",
            "M",
            "0",
            "0K",
            "1.5M",
            "1T",
            "-1",
            "99999999999999999999G",
        ] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn test_the_log_file_rotates_past_its_size_keeping_whole_lines_and_as_many_files_as_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory that does not exist yet is created.
        let path = dir.path().join("logs").join("node.log");
        let mut log = rotating(&path, ByteSize(1000), 2).expect("opens");
        let lines: Vec<String> = (0..200)
            .map(|i| format!("line {i:04} of the node's log\n"))
            .collect();
        for line in &lines {
            log.write_all(line.as_bytes()).expect("writes");
        }
        log.flush().expect("flushes");
        drop(log);

        let read = |name: &str| std::fs::read_to_string(path.with_file_name(name));
        assert!(
            read("node.log.3").is_err(),
            "only two earlier files are kept"
        );
        let kept: Vec<String> = ["node.log.2", "node.log.1", "node.log"]
            .iter()
            .map(|name| read(name).expect(name))
            .collect();
        for file in &kept {
            assert!(file.len() <= 1000, "{} bytes", file.len());
        }
        // The kept files hold the newest lines, whole and in order, none lost between files.
        let joined = kept.concat();
        assert!(lines.concat().ends_with(&joined));
        assert!(joined.starts_with("line "));
        assert!(joined.len() > 2000, "three files' worth: {}", joined.len());
    }

    #[test]
    fn test_rotation_goes_on_when_the_files_change_under_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.log");
        let line = |i: usize| format!("line {i:04} of the node's log\n");
        let mut log = rotating(&path, ByteSize(100), 3).expect("opens");
        for i in 0..20 {
            log.write_all(line(i).as_bytes()).expect("writes");
        }
        // An operator frees space and moves the current file away.
        std::fs::remove_file(path.with_file_name("node.log.2")).expect("removes");
        std::fs::rename(&path, path.with_file_name("moved.log")).expect("moves");
        for i in 20..40 {
            log.write_all(line(i).as_bytes()).expect("writes");
        }
        // A line longer than a file may hold gets a file of its own.
        let long = format!("{}\n", "x".repeat(300));
        log.write_all(long.as_bytes()).expect("writes");
        log.write_all(line(40).as_bytes()).expect("writes");
        drop(log);
        let read = |name: &str| std::fs::read_to_string(path.with_file_name(name));
        assert_eq!(read("node.log").expect("current"), line(40));
        assert_eq!(read("node.log.1").expect("the long line"), long);
        assert!(read("node.log.2").expect("earlier").ends_with(&line(39)));
        assert!(read("node.log.4").is_err());

        // A restarted process appends, and rotates at the same size.
        let mut log = rotating(&path, ByteSize(100), 3).expect("opens again");
        log.write_all(line(41).as_bytes()).expect("writes");
        log.write_all(line(42).as_bytes()).expect("writes");
        log.write_all(line(43).as_bytes()).expect("writes");
        drop(log);
        assert_eq!(read("node.log").expect("current"), line(43));
        assert_eq!(
            read("node.log.1").expect("before"),
            [line(40), line(41), line(42)].concat()
        );
    }

    #[test]
    fn test_a_log_that_cannot_be_written_fails_that_write_and_opens_again_at_the_next() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = dir.path().join("logs");
        let path = logs.join("node.log");
        let mut log = rotating(&path, ByteSize(10), 1).expect("opens");
        log.write_all(b"first line\n").expect("writes");
        std::fs::remove_dir_all(&logs).expect("removes");
        // Past the size: the rotation must open a new file where there is no directory.
        assert!(log.write_all(b"lost line\n").is_err());
        std::fs::create_dir_all(&logs).expect("creates");
        log.write_all(b"later line\n").expect("writes again");
        drop(log);
        assert_eq!(
            std::fs::read_to_string(&path).expect("the new file"),
            "later line\n"
        );
    }

    #[test]
    fn test_a_log_file_that_cannot_be_opened_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = |path: PathBuf| match rotating(&path, ByteSize(1000), 1) {
            Ok(_) => panic!("{} opened as a log file", path.display()),
            Err(e) => format!("{e:#}"),
        };
        // The path is a directory.
        let err = error(dir.path().to_path_buf());
        assert!(err.contains("opening the log file"), "{err}");
        let err = error(PathBuf::from("/"));
        assert!(err.contains("names no file"), "{err}");
    }
}
