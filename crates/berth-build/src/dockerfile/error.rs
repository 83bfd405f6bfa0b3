//! The one error type of the Dockerfile module: a message in Docker's words plus the file
//! and the lines it is about.

use std::fmt;

use super::Location;

/// A Dockerfile could not be parsed or an instruction could not be evaluated.
///
/// Displays as `Dockerfile:3: unknown instruction: RUNN (did you mean RUN?)`: the file name
/// given to [`super::parse`], the first line of the instruction, and Docker's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    file: String,
    location: Option<Location>,
    message: String,
}

impl Error {
    pub(crate) fn new(file: &str, location: Option<Location>, message: impl Into<String>) -> Self {
        Error {
            file: file.to_string(),
            location,
            message: message.into(),
        }
    }

    pub(crate) fn at(file: &str, location: Location, message: impl Into<String>) -> Self {
        Error::new(file, Some(location), message)
    }

    /// The Dockerfile's name as given to [`super::parse`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The lines the error is about (`None` for errors about the whole file).
    pub fn location(&self) -> Option<Location> {
        self.location
    }

    /// The first line the error is about (1-based), if any.
    pub fn line(&self) -> Option<usize> {
        self.location.map(|l| l.start)
    }

    /// Docker's message without file and line.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(l) => write!(f, "{}:{}: {}", self.file, l.start, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for Error {}

/// Docker's "did you mean" search (BuildKit's `util/suggest`): the option closest to `value`
/// by Levenshtein distance, if it is closer than 3 edits and not equal.
pub(crate) fn suggest<'a>(
    value: &str,
    options: impl IntoIterator<Item = &'a str>,
    case_sensitive: bool,
) -> Option<String> {
    let val = if case_sensitive {
        value.to_string()
    } else {
        value.to_lowercase()
    };
    let mut best: Option<String> = None;
    let mut min = 3;
    for opt in options {
        let o = if case_sensitive {
            opt.to_string()
        } else {
            opt.to_lowercase()
        };
        if o == val {
            return None;
        }
        let d = strsim::levenshtein(&val, &o);
        if d < min {
            min = d;
            best = Some(if case_sensitive {
                o
            } else if value == value.to_lowercase() {
                o.to_lowercase()
            } else if value == value.to_uppercase() {
                o.to_uppercase()
            } else {
                opt.to_string()
            });
        }
    }
    best
}

/// `message` with ` (did you mean X?)` appended when a suggestion exists.
pub(crate) fn with_suggestion<'a>(
    message: String,
    value: &str,
    options: impl IntoIterator<Item = &'a str>,
    case_sensitive: bool,
) -> String {
    match suggest(value, options, case_sensitive) {
        Some(s) => format!("{message} (did you mean {s}?)"),
        None => message,
    }
}
