//! The hub's HTTP face and the flows behind it: consents (grant, revoke, receipts), the
//! brokered data request (decide, record, grant, fetch, relay), webhooks to services, and
//! the access log as residents see it.
//!
//! This crate owns orchestration and the API contract (routes, problem+json, OpenAPI). It
//! must not hold SQL (that is `renkei-store`), decide consent itself (that is
//! `renkei_domain::decide`), or invent wire formats (those are `renkei-protocol`). It never
//! keeps or logs a provider's payload: it relays ciphertext.

pub mod accounts;
pub mod api;
mod api_accounts;
mod api_consents;
mod api_counter;
mod api_demo;
mod api_emergency;
mod api_identity;
mod api_log;
mod api_outbound;
mod api_providers;
mod api_rights;
pub mod api_soc;
pub mod area_lists;
pub mod audit;
pub mod auth;
pub mod broker;
pub mod catalogue;
pub mod consents;
pub mod counter;
pub mod counter_consents;
pub mod counter_pdf;
pub mod disclosure;
pub mod egress;
pub mod emergency;
pub mod enrolment;
mod error;
pub mod history;
pub mod kek;
pub mod limits;
pub mod location_deletions;
pub mod log;
mod log_state;
pub mod metrics;
pub mod notices;
pub mod oidc;
pub mod outbound;
pub mod passkeys;
pub mod pkcs11;
pub mod problem;
pub mod provider_sync;
pub mod representatives;
pub mod rights;
pub mod routes;
mod schemas;
pub mod signing_keys;
pub mod soc;
mod state;
pub mod webhooks;

pub use api::{ApiDoc, routed, router};
pub use error::HubError;
pub use state::{Hub, HubConfig};
