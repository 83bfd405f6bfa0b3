//! The crate's top-level error, with the HTTP-ish class each error belongs to so the engine can
//! answer 404/409/400/500 without inspecting messages.

use crate::cas::CasError;
use crate::changes::ChangesError;
use crate::config::ConfigError;
use crate::fsutil::PathError;
use crate::layer::LayerError;
use crate::reference::ReferenceError;

/// Which status an error maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 404: the image (or blob, or layer) does not exist.
    NotFound,
    /// 409: the operation conflicts with the current state (image in use, several repos).
    Conflict,
    /// 400: the request or the supplied data is invalid (bad reference, corrupt archive,
    /// digest mismatch, bad `--change`).
    InvalidInput,
    /// 500: something failed on the daemon's side (disk, mount, corrupt store).
    Internal,
}

impl ErrorKind {
    /// The HTTP status Docker uses for this class.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::InvalidInput => 400,
            ErrorKind::Internal => 500,
        }
    }
}

/// Errors of the image store and its operations.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// `No such image: busybox:latest` — carries the familiar reference or ID as Docker
    /// prints it.
    #[error("No such image: {0}")]
    NotFound(String),
    /// Docker's conflict texts (`conflict: unable to delete …`).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Changes(#[from] ChangesError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Cas(#[from] CasError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("image store: {0}")]
    Io(#[from] PathError),
    #[error("{0}")]
    Internal(String),
}

impl ImageError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound(_) => ErrorKind::NotFound,
            ImageError::Conflict(_) => ErrorKind::Conflict,
            ImageError::InvalidInput(_)
            | ImageError::Reference(_)
            | ImageError::Changes(_)
            | ImageError::Config(_) => ErrorKind::InvalidInput,
            ImageError::Cas(e) if e.is_input_error() => ErrorKind::InvalidInput,
            ImageError::Cas(CasError::NotFound(_)) => ErrorKind::NotFound,
            ImageError::Layer(e) if e.is_input_error() => ErrorKind::InvalidInput,
            ImageError::Cas(_)
            | ImageError::Layer(_)
            | ImageError::Io(_)
            | ImageError::Internal(_) => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_texts() {
        let e = ImageError::NotFound("busybox:latest".into());
        assert_eq!(e.to_string(), "No such image: busybox:latest");
        assert_eq!(e.kind().http_status(), 404);
        assert_eq!(
            ImageError::Reference(ReferenceError::InvalidFormat).kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(ImageError::Conflict("x".into()).kind().http_status(), 409);
        assert_eq!(ImageError::Internal("x".into()).kind().http_status(), 500);
    }
}
