//! The static files, compiled into the binary: one stylesheet and a few small scripts.

use crate::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const FILES: &[(&str, &str, &str)] = &[
    (
        "portal.css",
        "text/css; charset=utf-8",
        include_str!("../static/portal.css"),
    ),
    (
        "history.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/history.js"),
    ),
    (
        "logcheck.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/logcheck.js"),
    ),
    (
        "disclosure.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/disclosure.js"),
    ),
    (
        "passkey.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/passkey.js"),
    ),
    (
        "enrol.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/enrol.js"),
    ),
];

pub async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, mime, body)) => (
            [
                (header::CONTENT_TYPE, *mime),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
