//! Errors of a build, with Docker's texts.

use berth_image::ImageError;

/// Why a build failed. The engine turns [`BuildError::InvalidInput`] raised before any output
/// into a `400`, everything else into the final `errorDetail` line of the progress stream.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The request, the context or the Dockerfile is unusable (Docker answers 400).
    #[error("{0}")]
    InvalidInput(String),
    /// A `RUN` exited with a non-zero status (the code becomes `errorDetail.code`).
    #[error("The command '{cmd}' returned a non-zero code: {code}")]
    RunFailed { cmd: String, code: i64 },
    /// A step failed (`COPY failed: …`, a pull error, an invalid `USER`…).
    #[error("{0}")]
    Step(String),
    /// The client went away or the daemon is shutting down.
    #[error("Build cancelled")]
    Cancelled,
    /// The image store failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The daemon failed (I/O, the runtime).
    #[error("{0}")]
    Internal(String),
}

impl BuildError {
    /// `errorDetail.code`: the exit status of a failed `RUN`, 0 otherwise.
    pub fn code(&self) -> i64 {
        match self {
            BuildError::RunFailed { code, .. } => *code,
            _ => 0,
        }
    }

    /// True when the input was at fault (a 400 when raised before the stream starts).
    pub fn is_input_error(&self) -> bool {
        match self {
            BuildError::InvalidInput(_) => true,
            BuildError::Image(e) => matches!(e.kind(), berth_image::ErrorKind::InvalidInput),
            _ => false,
        }
    }

    pub(crate) fn internal(what: impl std::fmt::Display) -> BuildError {
        BuildError::Internal(what.to_string())
    }
}

impl From<std::io::Error> for BuildError {
    fn from(e: std::io::Error) -> Self {
        BuildError::Internal(e.to_string())
    }
}

impl From<berth_image::layer::LayerError> for BuildError {
    fn from(e: berth_image::layer::LayerError) -> Self {
        BuildError::Image(e.into())
    }
}

impl From<berth_image::fsutil::PathError> for BuildError {
    fn from(e: berth_image::fsutil::PathError) -> Self {
        BuildError::Internal(e.to_string())
    }
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;
