//! Config errors that point at the place to fix: `FILE:LINE:COL: message`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in the config directory, with the place it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in (the directory itself for directory-wide problems).
    pub file: PathBuf,
    /// 1-based line, if the problem has a place in the file.
    pub line: Option<usize>,
    /// 1-based column in characters, if the problem has a place in the file.
    pub column: Option<usize>,
    /// What is wrong, and where possible how to fix it.
    pub message: String,
}

impl ConfigError {
    /// A problem with a whole file or directory, without a line.
    pub fn whole(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// A problem at byte range `span` of `source`, the text of `file`.
    pub fn at(
        file: &Path,
        source: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = match span {
            Some(span) => {
                let (l, c) = line_column(source, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(col)) => {
                write!(
                    f,
                    "{}:{}:{}: {}",
                    self.file.display(),
                    line,
                    col,
                    self.message
                )
            }
            _ => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one load, so a user fixes them all in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// 1-based line and character column of byte `offset` in `source`.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_column(src, 0), (1, 1));
        assert_eq!(line_column(src, 6), (2, 1));
        assert_eq!(line_column(src, 9), (2, 3)); // after "bé": é is two bytes
        assert_eq!(line_column(src, 1000), (3, 1));
    }

    #[test]
    fn errors_print_as_file_line_column() {
        let e = ConfigError::at(Path::new("c/x.toml"), "x\ny = 2", Some(2..3), "bad");
        assert_eq!(e.to_string(), "c/x.toml:2:1: bad");
    }
}
