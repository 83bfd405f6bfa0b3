//! Response construction with Docker's headers.

use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use serde::Serialize;

use crate::{ApiError, MAX_API_VERSION};

/// The response body type of every route.
pub type Body = UnsyncBoxBody<Bytes, io::Error>;

/// `Server` header value.
pub const SERVER_HEADER: &str = concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)");
pub const JSON: &str = "application/json";
pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
/// Content type of a multiplexed (stdcopy-framed) hijacked stream, API 1.42 and later.
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";
pub const TAR: &str = "application/x-tar";
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

pub fn empty_body() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

pub fn full_body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

pub fn stream_body<S>(stream: S) -> Body
where
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    StreamBody::new(stream.map_ok(Frame::data)).boxed_unsync()
}

/// HTTP-date for the `Date` header (hyper's own is disabled so that 101 responses carry no
/// `Date`, exactly as Docker's).
pub fn http_date() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn static_value(v: &'static str) -> HeaderValue {
    HeaderValue::from_static(v)
}

/// Which of Docker's standard headers a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headers {
    /// Api-Version, [Content-Type], Docker-Experimental, Ostype, Server, Date.
    Api,
    /// Like `Api` without Docker-Experimental (Docker's version-check errors).
    VersionError,
    /// Only [Content-Type] and Date (router 404s carry no Api-Version).
    Bare,
}

/// Builds a response with Docker's header set and order.
pub fn build(
    status: StatusCode,
    headers: Headers,
    content_type: Option<&'static str>,
    extra: HeaderMap,
    body: Body,
) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if headers != Headers::Bare {
        h.insert("api-version", api_version_value());
    }
    if let Some(ct) = content_type {
        h.insert(CONTENT_TYPE, static_value(ct));
    }
    if headers == Headers::Api {
        h.insert("docker-experimental", static_value("false"));
    }
    if headers != Headers::Bare {
        h.insert("ostype", static_value("linux"));
        h.insert("server", static_value(SERVER_HEADER));
    }
    for (name, value) in extra.iter() {
        h.append(name.clone(), value.clone());
    }
    if let Ok(date) = HeaderValue::from_str(&http_date()) {
        h.insert("date", date);
    }
    resp
}

pub fn api_version_value() -> HeaderValue {
    // "1.43" is always a valid header value.
    HeaderValue::from_str(&MAX_API_VERSION.to_string()).unwrap_or_else(|_| static_value("1.43"))
}

/// `json + "\n"`, as Go's `json.Encoder` writes it.
pub fn json_line<T: Serialize>(value: &T) -> Result<Bytes, ApiError> {
    let mut buf = serde_json::to_vec(value)
        .map_err(|e| ApiError::internal(format!("cannot encode response: {e}")))?;
    buf.push(b'\n');
    Ok(Bytes::from(buf))
}

/// `200`/`201` with a JSON body.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match json_line(value) {
        Ok(bytes) => build(
            status,
            Headers::Api,
            Some(JSON),
            HeaderMap::new(),
            full_body(bytes),
        ),
        Err(e) => error(e),
    }
}

/// A status without a body (204, 201 for tag, 200 for resize).
pub fn no_body(status: StatusCode) -> Response<Body> {
    build(status, Headers::Api, None, HeaderMap::new(), empty_body())
}

/// `{"message":"..."}\n` with the error's status; 304 has no body and no Content-Type.
pub fn error(err: ApiError) -> Response<Body> {
    error_with(err, Headers::Api)
}

pub fn error_with(err: ApiError, headers: Headers) -> Response<Body> {
    if err.is_not_modified() {
        return build(
            StatusCode::NOT_MODIFIED,
            headers,
            None,
            HeaderMap::new(),
            empty_body(),
        );
    }
    let body = crate::models::ErrorResponse {
        message: err.message,
    };
    let bytes = serde_json::to_vec(&body)
        .map(|mut v| {
            v.push(b'\n');
            Bytes::from(v)
        })
        .unwrap_or_else(|_| Bytes::from_static(b"{\"message\":\"internal error\"}\n"));
    build(
        err.status,
        headers,
        Some(JSON),
        HeaderMap::new(),
        full_body(bytes),
    )
}

/// Docker's router 404.
pub fn page_not_found() -> Response<Body> {
    build(
        StatusCode::NOT_FOUND,
        Headers::Bare,
        Some(JSON),
        HeaderMap::new(),
        full_body(Bytes::from_static(b"{\"message\":\"page not found\"}\n")),
    )
}
