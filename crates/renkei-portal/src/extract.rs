//! The pages' extractors: axum's `Form`, `Query` and `Path`, except that input they cannot
//! read (a field missing or given twice, a value of the wrong shape, bytes that are not
//! UTF-8) is answered as every other bad request of a page is, with the HTML page of
//! [`PortalError::BadRequest`] (400), not axum's plain-text rejection, which quotes the
//! deserializer's words to the visitor in English only.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::PortalError;

/// A URL-encoded form body, as [`axum::Form`].
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = PortalError;

    async fn from_request(request: Request, state: &S) -> Result<Self, PortalError> {
        axum::Form::<T>::from_request(request, state)
            .await
            .map(|axum::Form(form)| Self(form))
            .map_err(|r| PortalError::BadRequest(r.body_text()))
    }
}

/// A page's query string, as [`axum::extract::Query`].
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PortalError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(query)| Self(query))
            .map_err(|r| PortalError::BadRequest(r.body_text()))
    }
}

/// A path parameter, as [`axum::extract::Path`].
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PortalError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(path)| Self(path))
            .map_err(|r| PortalError::BadRequest(r.body_text()))
    }
}
