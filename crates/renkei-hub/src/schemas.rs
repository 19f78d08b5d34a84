//! What the API document says of strings the domain checks, so a client (or schemathesis)
//! knows from the document alone which values the hub takes: identifiers as patterns from
//! `renkei_domain::ids`, not as any string.
//!
//! Each is a component of the document; fields use them with `#[schema(value_type = …)]`
//! and query parameters with `#[param(value_type = …, inline)]`.

use renkei_domain::ids::{SLUG_PATTERN, SUBJECT_PATTERN};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// An identifier an operator chose: a service, purpose, data category or provider id.
pub struct Slug;

impl utoipa::PartialSchema for Slug {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(SLUG_PATTERN))
            .min_length(Some(1))
            .max_length(Some(64))
            .description(Some(
                "1 to 64 characters from a-z, 0-9, `.`, `_` and `-`, starting with a letter or digit",
            ))
            .examples(["health-advice"])
            .into()
    }
}

impl utoipa::ToSchema for Slug {}

/// The pairwise subject a service knows a resident by.
pub struct Subject;

impl utoipa::PartialSchema for Subject {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(SUBJECT_PATTERN))
            .min_length(Some(16))
            .max_length(Some(128))
            .description(Some(
                "The resident's pairwise subject at this service (base64url)",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Subject {}
