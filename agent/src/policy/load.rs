//! Reading policy files and directories and parsing them into raw, spanned TOML.
use std::path::{Path, PathBuf};

use super::diagnostic::Source;
use super::raw::RawFile;
use super::Diagnostic;

/// Reads every policy file named by `paths` (files, or directories of `*.toml` files
/// taken in file-name order, but the reserved ones, [`super::is_reserved`]), in merged order.
pub(crate) fn read_sources(paths: &[PathBuf]) -> (Vec<Source>, Vec<Diagnostic>) {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            match toml_files(path) {
                Ok(files) if files.is_empty() => errors.push(Diagnostic::error(
                    super::Origin::file(path),
                    "directory has no *.toml file",
                )),
                Ok(files) => files
                    .into_iter()
                    .for_each(|f| read_one(f, &mut sources, &mut errors)),
                Err(e) => errors.push(Diagnostic::error(
                    super::Origin::file(path),
                    format!("cannot read directory: {e}"),
                )),
            }
        } else {
            read_one(path.clone(), &mut sources, &mut errors);
        }
    }
    (sources, errors)
}

fn toml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let reserved = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(super::is_reserved);
        if path.extension().is_some_and(|e| e == "toml") && !path.is_dir() && !reserved {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

fn read_one(path: PathBuf, sources: &mut Vec<Source>, errors: &mut Vec<Diagnostic>) {
    match std::fs::read_to_string(&path) {
        Ok(text) => sources.push(Source::new(path, text)),
        Err(e) => errors.push(Diagnostic::error(
            super::Origin::file(&path),
            format!("cannot read file: {e}"),
        )),
    }
}

/// Parses one source into its structure and the structural errors in it. A TOML
/// syntax error stops the parse of that file (`Err`). The file is parsed table by
/// table where that gives the same tree (`sections.rs`), whole otherwise.
pub(crate) fn parse(source: &Source) -> Result<(RawFile, Vec<Diagnostic>), Diagnostic> {
    if let Some(read) = super::sections::raw_file(source) {
        return Ok(read);
    }
    let doc = super::tree::parse(&source.text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let message = e.message().trim().replace('\n', " ");
        Diagnostic::error(
            source.origin(offset),
            format!("TOML syntax error, the rest of this file is not checked: {message}"),
        )
    })?;
    Ok(super::structure::raw_file(source, &doc))
}
