//! Demo mode's sign-in (`POST /demo/sign-in`): any resident of the demo town, without proof.
//! Declared in `api.rs` like every route; refused outside demo mode.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use renkei_domain::ResidentId;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::TokenResponse;
use crate::problem::{ApiJson, Problem};
use crate::{Hub, HubError};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DemoSignIn {
    #[schema(value_type = uuid::Uuid)]
    resident: String,
}

impl Hub {
    /// Demo mode only: a session for any resident of the demo town, without proof
    /// (`demo-only` outside demo mode, not found for a resident who does not exist).
    pub async fn demo_sign_in(&self, resident: ResidentId) -> Result<String, HubError> {
        if !self.config().demo_mode {
            return Err(HubError::DemoOnly);
        }
        if !self.store().resident_exists(resident).await? {
            return Err(HubError::NotFound(format!("resident `{resident}`")));
        }
        self.keys().issue_resident_token(resident, Utc::now())
    }
}

/// Demo mode only: sign in as any resident of the demo town, without proof.
#[utoipa::path(post, path = "/demo/sign-in", request_body = DemoSignIn,
    responses((status = 415, body = Problem, content_type = "application/problem+json"), (status = 200, body = TokenResponse), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn demo_sign_in(
    State(hub): State<Hub>,
    ApiJson(body): ApiJson<DemoSignIn>,
) -> Result<Json<TokenResponse>, HubError> {
    let resident: ResidentId = body
        .resident
        .parse()
        .map_err(|e: renkei_domain::IdError| HubError::Malformed(e.to_string()))?;
    Ok(Json(TokenResponse {
        access_token: hub.demo_sign_in(resident).await?,
        token_type: "Bearer".into(),
        expires_in: crate::auth::RESIDENT_TOKEN_SECONDS,
    }))
}
