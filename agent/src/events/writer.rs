//! The event log: JSON lines to standard output or to a file reopened on demand.
use std::{
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
};

/// Where event lines go.
pub enum EventLog {
    /// Standard output.
    Stdout(io::Stdout),
    /// A file, appended to, reopened by [`EventLog::reopen`] (after logrotate moved it).
    File {
        /// The path it is (re)opened at.
        path: PathBuf,
        /// The open file.
        out: BufWriter<File>,
    },
}

impl EventLog {
    /// Opens the log: `path`, or standard output when `None`.
    pub fn open(path: Option<&Path>) -> io::Result<Self> {
        match path {
            None => Ok(EventLog::Stdout(io::stdout())),
            Some(p) => Ok(EventLog::File {
                path: p.to_owned(),
                out: BufWriter::new(append(p)?),
            }),
        }
    }

    /// Reopens a file log at its path; standard output stays as it is.
    pub fn reopen(&mut self) -> io::Result<()> {
        if let EventLog::File { path, out } = self {
            out.flush()?;
            *out = BufWriter::new(append(path)?);
        }
        Ok(())
    }

    /// The file's path; `None` for standard output.
    pub fn path(&self) -> Option<&Path> {
        match self {
            EventLog::Stdout(_) => None,
            EventLog::File { path, .. } => Some(path),
        }
    }

    /// Writes one line.
    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        match self {
            EventLog::Stdout(s) => {
                let mut s = s.lock();
                s.write_all(line.as_bytes())?;
                s.write_all(b"\n")
            }
            EventLog::File { out, .. } => {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")
            }
        }
    }

    /// Flushes buffered lines.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            EventLog::Stdout(s) => s.flush(),
            EventLog::File { out, .. } => out.flush(),
        }
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}
