//! The HTTP face of the transparency log (C2SP tlog-checkpoint and tlog-tiles, RFC 9162
//! proofs): what anyone may read to check the log, signed checkpoints, the verifier key,
//! hash tiles and inclusion and consistency proofs.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::problem::{ApiPath, ApiQuery, Problem};
use crate::{Hub, HubError};

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// The latest signed checkpoint of the access log (C2SP tlog-checkpoint in a signed note).
#[utoipa::path(get, path = "/log/checkpoint", responses((status = 200, content_type = "text/plain", body = String), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn log_checkpoint(State(hub): State<Hub>) -> Result<Response, HubError> {
    let latest = hub
        .store()
        .latest_checkpoint()
        .await?
        .ok_or_else(|| HubError::NotFound("checkpoint".into()))?;
    Ok(([(header::CACHE_CONTROL, "no-cache")], text(latest.note)).into_response())
}

/// A checkpoint the hub signed earlier, by tree size (for consistency checks).
#[utoipa::path(get, path = "/log/checkpoints/{size}", params(("size" = u64, Path)),
    responses((status = 200, content_type = "text/plain", body = String), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn log_checkpoint_at(
    State(hub): State<Hub>,
    ApiPath(size): ApiPath<u64>,
) -> Result<Response, HubError> {
    let c = hub
        .store()
        .checkpoint(size)
        .await?
        .ok_or_else(|| HubError::NotFound(format!("checkpoint of size `{size}`")))?;
    Ok(text(c.note))
}

/// The log's verifier key (C2SP signed-note form): checkpoints verify with it.
#[utoipa::path(get, path = "/log/key", responses((status = 200, content_type = "text/plain", body = String)))]
pub(crate) async fn log_key(State(hub): State<Hub>) -> Response {
    text(format!("{}\n", hub.keys().log.verifier_key()))
}

/// A hash tile (C2SP tlog-tiles), e.g. `/log/tile/0/000` or `/log/tile/0/x001/234.p/5`.
#[utoipa::path(get, path = "/log/tile/{*path}", params(("path" = String, Path, description = "`<L>/<N>[.p/<W>]`")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, description = "No such tile (a path that names none, or a tile beyond the latest checkpoint)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn log_tile(
    State(hub): State<Hub>,
    ApiPath(path): ApiPath<String>,
) -> Result<Response, HubError> {
    let full = format!("tile/{path}");
    let bytes = crate::log::tile(hub.store().as_ref(), &full).await?;
    let cache = if full.contains(".p/") {
        "no-cache"
    } else {
        "public, max-age=31536000, immutable"
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct InclusionQuery {
    /// The leaf index (the entry's `seq`).
    index: u64,
    /// The tree size of a signed checkpoint.
    size: u64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConsistencyQuery {
    /// The smaller tree's size (a tree of no entries has nothing to prove).
    #[param(minimum = 1)]
    from: u64,
    #[param(minimum = 1)]
    to: u64,
}

/// A Merkle proof: base64 SHA-256 hashes, RFC 9162 order.
#[derive(Serialize, ToSchema)]
pub(crate) struct ProofView {
    proof: Vec<String>,
}

async fn signed_size(hub: &Hub, size: u64) -> Result<(), HubError> {
    let latest = hub.store().latest_checkpoint().await?.map_or(0, |c| c.size);
    // Whether a size is signed depends on the log, not on the request: no such proof (yet).
    if size > latest {
        return Err(HubError::NotFound(format!(
            "a proof for size `{size}`: the latest checkpoint covers {latest} entries"
        )));
    }
    Ok(())
}

/// An inclusion proof of entry `index` in the tree of `size` entries.
#[utoipa::path(get, path = "/log/proof/inclusion", params(InclusionQuery),
    responses((status = 200, body = ProofView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, description = "No checkpoint of that size is signed yet, or the index is not in the tree", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn log_inclusion(
    State(hub): State<Hub>,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> Result<Json<ProofView>, HubError> {
    signed_size(&hub, q.size).await?;
    if q.index >= q.size {
        return Err(HubError::NotFound(format!(
            "entry `{}` in a tree of {} entries",
            q.index, q.size
        )));
    }
    let proof = crate::log::inclusion_proof(hub.store().as_ref(), q.index, q.size).await?;
    Ok(Json(ProofView {
        proof: proof.iter().map(crate::log::b64).collect(),
    }))
}

/// A consistency proof that the tree of `from` entries is a prefix of the tree of `to`.
#[utoipa::path(get, path = "/log/proof/consistency", params(ConsistencyQuery),
    responses((status = 200, body = ProofView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, description = "No checkpoint of size `to` is signed yet, or `from` is beyond `to`", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn log_consistency(
    State(hub): State<Hub>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ProofView>, HubError> {
    signed_size(&hub, q.to).await?;
    if q.from > q.to {
        return Err(HubError::NotFound(format!(
            "a tree of {} entries inside one of {}",
            q.from, q.to
        )));
    }
    let proof = crate::log::consistency_proof(hub.store().as_ref(), q.from, q.to).await?;
    Ok(Json(ProofView {
        proof: proof.iter().map(crate::log::b64).collect(),
    }))
}
