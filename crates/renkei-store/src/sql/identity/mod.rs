//! [`crate::IdentityStore`] for this backend: each method calls the function of the same
//! name in the file of its concern (enrolments, passkeys and ceremonies, OAuth codes and
//! tokens, proxies, operators, resident requests, signing keys).

mod enrolment;
mod oauth;
mod operators;
mod passkeys;
mod proxies;
pub(super) mod requests;
mod signing_keys;

use chrono::{DateTime, Utc};
use renkei_domain::{
    Enrolment, Operator, OperatorId, ProxyAppointment, ProxyId, ResidentId, ResidentRequest,
    ResidentRequestId, ResidentRequestStatus, ServiceClient, ServiceId,
};

use super::{Backend, all, optional};
use crate::identity::{
    AuthorizationCodeRecord, Ceremony, CodePresentation, CodeRedemption, Enrolled, StoredPasskey,
    StoredSigningKey,
};
use crate::{IdentityStore, StoreResult};

#[async_trait::async_trait]
impl IdentityStore for Backend {
    async fn put_enrolment_challenge(
        &self,
        id: uuid::Uuid,
        challenge: &[u8],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        enrolment::put_enrolment_challenge(self, id, challenge, expires_at).await
    }

    async fn take_enrolment_challenge(
        &self,
        id: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Vec<u8>>> {
        enrolment::take_enrolment_challenge(self, id, now).await
    }

    async fn enrol(
        &self,
        key_hash: &str,
        attributes: &serde_json::Value,
        certificate_not_after: DateTime<Utc>,
        candidate: ResidentId,
        now: DateTime<Utc>,
    ) -> StoreResult<Enrolled> {
        enrolment::enrol(
            self,
            key_hash,
            attributes,
            certificate_not_after,
            candidate,
            now,
        )
        .await
    }

    async fn enrolment_of(&self, resident: ResidentId) -> StoreResult<Option<Enrolment>> {
        enrolment::enrolment_of(self, resident).await
    }

    async fn enrolment_by_key(&self, key_hash: &str) -> StoreResult<Option<Enrolment>> {
        enrolment::enrolment_by_key(self, key_hash).await
    }

    async fn put_ceremony(
        &self,
        id: uuid::Uuid,
        kind: &str,
        ceremony: &Ceremony,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        passkeys::put_ceremony(self, id, kind, ceremony, expires_at).await
    }

    async fn take_ceremony(
        &self,
        id: uuid::Uuid,
        kind: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Ceremony>> {
        passkeys::take_ceremony(self, id, kind, now).await
    }

    async fn add_passkey(&self, p: &StoredPasskey) -> StoreResult<()> {
        passkeys::add_passkey(self, p).await
    }

    async fn passkeys_of(&self, resident: ResidentId) -> StoreResult<Vec<StoredPasskey>> {
        passkeys::passkeys_of(self, resident).await
    }

    async fn passkey(&self, credential_id: &str) -> StoreResult<Option<StoredPasskey>> {
        passkeys::passkey(self, credential_id).await
    }

    async fn update_passkey(
        &self,
        credential_id: &str,
        passkey: &serde_json::Value,
        used_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        passkeys::update_passkey(self, credential_id, passkey, used_at).await
    }

    async fn remove_passkey(&self, resident: ResidentId, credential_id: &str) -> StoreResult<bool> {
        passkeys::remove_passkey(self, resident, credential_id).await
    }

    async fn put_service_client(&self, c: &ServiceClient) -> StoreResult<()> {
        oauth::put_service_client(self, c).await
    }

    async fn service_client(&self, service: &ServiceId) -> StoreResult<Option<ServiceClient>> {
        oauth::service_client(self, service).await
    }

    async fn put_authorization_code(&self, c: &AuthorizationCodeRecord) -> StoreResult<()> {
        oauth::put_authorization_code(self, c).await
    }

    async fn authorization_code(
        &self,
        code_hash: &str,
    ) -> StoreResult<Option<AuthorizationCodeRecord>> {
        oauth::authorization_code(self, code_hash).await
    }

    async fn redeem_authorization_code(
        &self,
        code_hash: &str,
        presented: &CodePresentation,
        now: DateTime<Utc>,
    ) -> StoreResult<CodeRedemption> {
        oauth::redeem_authorization_code(self, code_hash, presented, now).await
    }

    async fn revoke_token(
        &self,
        jti: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        oauth::revoke_token(self, jti, expires_at, now).await
    }

    async fn revoke_code_tokens(&self, code_hash: &str, now: DateTime<Utc>) -> StoreResult<()> {
        oauth::revoke_code_tokens(self, code_hash, now).await
    }

    async fn token_revoked(&self, jti: &str, code_hash: Option<&str>) -> StoreResult<bool> {
        oauth::token_revoked(self, jti, code_hash).await
    }

    async fn purge_expired(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        oauth::purge_expired(self, before).await
    }

    async fn appoint_proxy(&self, a: &ProxyAppointment) -> StoreResult<()> {
        proxies::appoint_proxy(self, a).await
    }

    async fn end_proxy(
        &self,
        resident: ResidentId,
        id: ProxyId,
        at: DateTime<Utc>,
    ) -> StoreResult<ProxyAppointment> {
        proxies::end_proxy(self, resident, id, at).await
    }

    async fn proxy_appointment(&self, id: ProxyId) -> StoreResult<Option<ProxyAppointment>> {
        proxies::proxy_appointment(self, id).await
    }

    async fn proxies_of(&self, resident: ResidentId) -> StoreResult<Vec<ProxyAppointment>> {
        proxies::proxies_of(self, resident).await
    }

    async fn proxy_for(&self, proxy: ResidentId) -> StoreResult<Vec<ProxyAppointment>> {
        proxies::proxy_for(self, proxy).await
    }

    async fn put_operator(&self, o: &Operator) -> StoreResult<()> {
        operators::put_operator(self, o).await
    }

    async fn operator(&self, id: &OperatorId) -> StoreResult<Option<Operator>> {
        operators::operator(self, id).await
    }

    async fn operator_by_identity(&self, identity: ResidentId) -> StoreResult<Option<Operator>> {
        operators::operator_by_identity(self, identity).await
    }

    async fn file_request(&self, r: &ResidentRequest) -> StoreResult<()> {
        requests::file_request(self, r).await
    }

    async fn requests_of(&self, resident: ResidentId) -> StoreResult<Vec<ResidentRequest>> {
        requests::requests_of(self, resident).await
    }

    async fn requests(
        &self,
        status: Option<ResidentRequestStatus>,
    ) -> StoreResult<Vec<ResidentRequest>> {
        requests::requests(self, status).await
    }

    async fn update_request(
        &self,
        id: ResidentRequestId,
        status: ResidentRequestStatus,
        response: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<ResidentRequest> {
        requests::update_request(self, id, status, response, at).await
    }

    async fn add_signing_key(&self, key: &StoredSigningKey) -> StoreResult<bool> {
        signing_keys::add_signing_key(self, key).await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>> {
        signing_keys::signing_keys(self).await
    }

    async fn retire_signing_key(&self, kid: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        signing_keys::retire_signing_key(self, kid, at).await
    }
}
