//! `ApiError`: an HTTP status plus Docker's `{"message": "..."}`.

use http::StatusCode;

/// An error the server turns into `status` + `{"message":"..."}\n` (or, for 304, an empty body).
///
/// The engine returns these from [`crate::Backend`] methods; the message is shown to users
/// verbatim by the Docker CLI (`Error response from daemon: <message>`), so it must be Docker's
/// wording where Docker has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400: invalid parameter.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 403: forbidden (e.g. removing a pre-defined network).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404: no such object.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: conflict with the object's state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 500: anything else.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 501: the operation is not implemented by this daemon (yet). `what` names it, e.g.
    /// `"POST /containers/{id}/pause"`.
    pub fn not_implemented(what: impl AsRef<str>) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "{} is not implemented by the berth daemon yet",
                what.as_ref()
            ),
        )
    }

    /// 304 Not Modified: start of a running / stop of a stopped container. Sent without a body.
    pub fn not_modified() -> Self {
        Self::new(StatusCode::NOT_MODIFIED, "")
    }

    pub fn is_not_modified(&self) -> bool {
        self.status == StatusCode::NOT_MODIFIED
    }
}
