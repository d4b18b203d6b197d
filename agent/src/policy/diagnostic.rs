//! Diagnostics that name the file, line and column of the offending text.
use std::fmt;
use std::path::{Path, PathBuf};

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};

/// How serious a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The policy is rejected.
    Error,
    /// The policy loads, but probably does not say what its author meant.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A place in a policy file: 1-based line and column; line 0 means the whole file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// File (or directory) the text came from.
    pub file: PathBuf,
    /// 1-based line, 0 for the whole file.
    pub line: usize,
    /// 1-based column in characters, 0 for the whole file.
    pub column: usize,
}

impl Origin {
    /// The whole of `file`, for errors that have no better place.
    pub fn file(file: &Path) -> Self {
        Origin {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
        }
    }
}

/// Shown as `file:line`, the way rules are named to users.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One error or warning about a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where the offending text is.
    pub origin: Origin,
    /// What is wrong, in one line.
    pub message: String,
    /// The offending line of the file, when the diagnostic has one (shown by
    /// [`Diagnostic::render`]).
    pub line_text: Option<String>,
}

impl Diagnostic {
    /// An error at `origin`.
    pub fn error(origin: Origin, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            origin,
            message: message.into(),
            line_text: None,
        }
    }

    /// A warning at `origin`.
    pub fn warning(origin: Origin, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            origin,
            message: message.into(),
            line_text: None,
        }
    }
}

impl Diagnostic {
    /// The diagnostic as a report: the message, then the offending line with the place
    /// underlined (just the [`Display`](fmt::Display) form when there is no line).
    pub fn render(&self) -> String {
        let Some(text) = self.line_text.as_deref().filter(|_| self.origin.line > 0) else {
            return self.to_string();
        };
        let level = match self.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let start = text
            .char_indices()
            .nth(self.origin.column.saturating_sub(1))
            .map_or(text.len(), |(i, _)| i);
        let path = self.origin.file.display().to_string();
        let report = &[level.primary_title(self.message.as_str()).element(
            Snippet::source(text)
                .line_start(self.origin.line)
                .path(path)
                .annotation(AnnotationKind::Primary.span(start..token_end(text, start))),
        )];
        Renderer::plain().render(report)
    }
}

/// Where the TOML token starting at byte `start` of `line` ends: a quoted string's
/// closing quote, else the next space, comma, bracket, `=` or `#`.
fn token_end(line: &str, start: usize) -> usize {
    let rest = &line[start..];
    let len = match rest.strip_prefix('"') {
        Some(quoted) => quoted.find('"').map_or(rest.len(), |i| i + 2),
        None => rest
            .find(|c: char| c.is_whitespace() || ",]}=#".contains(c))
            .unwrap_or(rest.len()),
    };
    start + len.max(rest.chars().next().map_or(0, char::len_utf8))
}

/// ` (did you mean `NAME`?)` when one of `candidates` is a likely spelling of `name`
/// (a small edit distance), else nothing.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    suggest(name, candidates)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// The candidate closest to `name` (case-insensitively), if it is close enough to be a
/// likely misspelling.
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&name, c), c))
        .filter(|&(distance, candidate)| {
            distance <= (candidate.len() / 3).max(1) && distance < candidate.len()
        })
        .min()
        .map(|(_, candidate)| candidate)
}

/// `path:line:col: error: message` (or `path: error: message` for a whole file).
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        if o.line == 0 {
            write!(
                f,
                "{}: {}: {}",
                o.file.display(),
                self.severity,
                self.message
            )
        } else {
            write!(
                f,
                "{}:{}:{}: {}: {}",
                o.file.display(),
                o.line,
                o.column,
                self.severity,
                self.message
            )
        }
    }
}

/// The text of one policy file, able to turn byte offsets into [`Origin`]s.
pub(crate) struct Source {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    line_starts: Vec<usize>,
}

impl Source {
    /// Wraps the text read from `path`.
    pub(crate) fn new(path: PathBuf, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1))
            .collect();
        Source {
            path,
            text,
            line_starts,
        }
    }

    /// The byte offset of each line's start, in order (the first is 0).
    pub(crate) fn line_starts(&self) -> &[usize] {
        &self.line_starts
    }

    /// The text of 1-based `line`, without its line ending (empty past the end).
    pub(crate) fn line(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |&e| e - 1);
        self.text[start..end].trim_end_matches('\r')
    }

    /// Line and column of byte `offset` (clamped to the text).
    pub(crate) fn origin(&self, offset: usize) -> Origin {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Origin {
            file: self.path.clone(),
            line,
            column,
        }
    }
}
