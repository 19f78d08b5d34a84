//! The rows [`crate::IdentityStore`] reads, and their conversion to domain types (see
//! `rows.rs`), with the column lists each shape reads.

use chrono::{DateTime, Utc};
use renkei_domain::{
    Enrolment, Operator, OperatorRole, ProxyAppointment, ResidentRequest, ResidentRequestKind,
    ResidentRequestStatus, ServiceClient, SigningAlg,
};

use crate::codec::{IntoDomain, enum_field, from_json, opt_time, parse, time};
use crate::identity::{
    AuthorizationCodeRecord, KeyCustody, StoredPasskey, StoredSigningKey, TokenKeyRef,
};
use crate::{StoreError, StoreResult};

#[derive(sqlx::FromRow)]
pub struct RawEnrolment {
    pub key_hash: String,
    pub resident_id: String,
    pub attributes: String,
    pub enrolled_at: i64,
    pub certificate_not_after: i64,
}

impl IntoDomain for RawEnrolment {
    type Domain = Enrolment;

    fn into_domain(self) -> StoreResult<Enrolment> {
        Ok(Enrolment {
            resident: parse(&self.resident_id, "resident id")?,
            key_hash: self.key_hash,
            attributes: from_json(&self.attributes, "enrolment attributes")?,
            enrolled_at: time(self.enrolled_at)?,
            certificate_not_after: time(self.certificate_not_after)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawPasskey {
    pub credential_id: String,
    pub resident_id: String,
    pub name: String,
    pub passkey: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl IntoDomain for RawPasskey {
    type Domain = StoredPasskey;

    fn into_domain(self) -> StoreResult<StoredPasskey> {
        Ok(StoredPasskey {
            resident: parse(&self.resident_id, "resident id")?,
            credential_id: self.credential_id,
            name: self.name,
            passkey: from_json(&self.passkey, "passkey")?,
            created_at: time(self.created_at)?,
            last_used_at: opt_time(self.last_used_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawServiceClient {
    pub service_id: String,
    pub redirect_uris: String,
    pub privacy_impact: String,
    pub registered_at: i64,
    pub id_token_alg: String,
    pub controller: Option<String>,
}

impl IntoDomain for RawServiceClient {
    type Domain = ServiceClient;

    fn into_domain(self) -> StoreResult<ServiceClient> {
        Ok(ServiceClient {
            service: parse(&self.service_id, "service id")?,
            redirect_uris: from_json(&self.redirect_uris, "redirect uris")?,
            privacy_impact: from_json(&self.privacy_impact, "privacy impact")?,
            registered_at: time(self.registered_at)?,
            id_token_signed_response_alg: enum_field(
                SigningAlg::parse(&self.id_token_alg),
                &self.id_token_alg,
                "id token algorithm",
            )?,
            controller: self
                .controller
                .as_deref()
                .map(|c| from_json(c, "controller contact"))
                .transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawAuthorizationCode {
    pub code_hash: String,
    pub service_id: String,
    pub resident_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub scope: String,
    pub consents: String,
    pub acting_proxy: Option<String>,
    pub acting_appointment: Option<String>,
    pub auth_time: i64,
    pub expires_at: i64,
    pub redeemed_at: Option<i64>,
}

impl IntoDomain for RawAuthorizationCode {
    type Domain = AuthorizationCodeRecord;

    fn into_domain(self) -> StoreResult<AuthorizationCodeRecord> {
        Ok(AuthorizationCodeRecord {
            service: parse(&self.service_id, "service id")?,
            resident: parse(&self.resident_id, "resident id")?,
            consents: from_json(&self.consents, "code consents")?,
            acting_proxy: self
                .acting_proxy
                .as_deref()
                .map(|p| parse(p, "proxy id"))
                .transpose()?,
            acting_appointment: self
                .acting_appointment
                .as_deref()
                .map(|a| parse(a, "proxy appointment id"))
                .transpose()?,
            auth_time: time(self.auth_time)?,
            expires_at: time(self.expires_at)?,
            code_hash: self.code_hash,
            redirect_uri: self.redirect_uri,
            code_challenge: self.code_challenge,
            nonce: self.nonce,
            scope: self.scope,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawProxy {
    pub id: String,
    pub resident_id: String,
    pub proxy_id: String,
    pub label: String,
    pub scope: String,
    pub appointed_at: i64,
    pub ended_at: Option<i64>,
    pub representation: Option<String>,
}

impl IntoDomain for RawProxy {
    type Domain = ProxyAppointment;

    fn into_domain(self) -> StoreResult<ProxyAppointment> {
        Ok(ProxyAppointment {
            id: parse(&self.id, "proxy appointment id")?,
            resident: parse(&self.resident_id, "resident id")?,
            proxy: parse(&self.proxy_id, "proxy id")?,
            label: self.label,
            scope: from_json(&self.scope, "proxy scope")?,
            appointed_at: time(self.appointed_at)?,
            ended_at: opt_time(self.ended_at)?,
            representation: self
                .representation
                .as_deref()
                .map(|r| from_json(r, "representation"))
                .transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawOperator {
    pub id: String,
    pub name: String,
    pub identity_id: String,
    pub added_at: i64,
    pub role: String,
}

impl IntoDomain for RawOperator {
    type Domain = Operator;

    fn into_domain(self) -> StoreResult<Operator> {
        Ok(Operator {
            id: parse(&self.id, "operator id")?,
            name: self.name,
            identity: parse(&self.identity_id, "resident id")?,
            added_at: time(self.added_at)?,
            role: enum_field(OperatorRole::parse(&self.role), &self.role, "operator role")?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawResidentRequest {
    pub id: String,
    pub resident_id: String,
    pub kind: String,
    pub service_id: Option<String>,
    pub details: String,
    pub status: String,
    pub filed_by: String,
    pub filed_at: i64,
    pub updated_at: i64,
    pub response: Option<String>,
    pub category_id: Option<String>,
    pub due_at: i64,
    pub extension_reason: Option<String>,
}

impl IntoDomain for RawResidentRequest {
    type Domain = ResidentRequest;

    fn into_domain(self) -> StoreResult<ResidentRequest> {
        Ok(ResidentRequest {
            id: parse(&self.id, "resident request id")?,
            resident: parse(&self.resident_id, "resident id")?,
            kind: ResidentRequestKind::parse(&self.kind).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown request kind `{}`", self.kind))
            })?,
            service: self
                .service_id
                .as_deref()
                .map(|s| parse(s, "service id"))
                .transpose()?,
            details: self.details,
            status: ResidentRequestStatus::parse(&self.status).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown request status `{}`", self.status))
            })?,
            filed_by: from_json(&self.filed_by, "request actor")?,
            filed_at: time(self.filed_at)?,
            updated_at: time(self.updated_at)?,
            response: self.response,
            category: self
                .category_id
                .as_deref()
                .map(|c| parse(c, "category id"))
                .transpose()?,
            due_at: time(self.due_at)?,
            extension_reason: self.extension_reason,
        })
    }
}

/// Whether something that expires at `expires_at` (milliseconds) has expired at `now`.
pub fn expired(expires_at: i64, now: DateTime<Utc>) -> bool {
    expires_at <= now.timestamp_millis()
}

#[derive(sqlx::FromRow)]
pub struct RawSigningKey {
    pub kid: String,
    pub alg: String,
    pub pkcs8: Option<Vec<u8>>,
    pub token: Option<String>,
    pub token_object_id: Option<Vec<u8>>,
    pub public_jwk: Option<String>,
    pub created_at: i64,
    pub active_from: i64,
    pub retired_at: Option<i64>,
}

impl IntoDomain for RawSigningKey {
    type Domain = StoredSigningKey;

    fn into_domain(self) -> StoreResult<StoredSigningKey> {
        // INVARIANT: the table's CHECK lets a row have the PKCS#8 bytes or all three token
        // columns, never both or neither.
        let custody = match (
            self.pkcs8,
            self.token,
            self.token_object_id,
            self.public_jwk,
        ) {
            (Some(pkcs8), None, None, None) => KeyCustody::Stored(pkcs8),
            (None, Some(token), Some(object_id), Some(public_jwk)) => {
                KeyCustody::Token(TokenKeyRef {
                    token,
                    object_id,
                    public_jwk,
                })
            }
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "signing key `{}` is neither stored nor in a token",
                    self.kid
                )));
            }
        };
        Ok(StoredSigningKey {
            alg: enum_field(SigningAlg::parse(&self.alg), &self.alg, "signing algorithm")?,
            kid: self.kid,
            custody,
            created_at: time(self.created_at)?,
            active_from: time(self.active_from)?,
            retired_at: opt_time(self.retired_at)?,
        })
    }
}

/// The columns of `authorization_codes` that [`RawAuthorizationCode`] reads, in its field order.
macro_rules! code_columns {
    () => {
        "code_hash, service_id, resident_id, redirect_uri, code_challenge, nonce, scope, consents, acting_proxy, acting_appointment, auth_time, expires_at, redeemed_at"
    };
}

/// The columns of `enrolments` that [`RawEnrolment`] reads, in its field order.
macro_rules! enrolment_columns {
    () => {
        "key_hash, resident_id, attributes, enrolled_at, certificate_not_after"
    };
}

/// The columns of `passkeys` that [`RawPasskey`] reads, in its field order.
macro_rules! passkey_columns {
    () => {
        "credential_id, resident_id, name, passkey, created_at, last_used_at"
    };
}

/// The columns of `proxies` that [`RawProxy`] reads, in its field order.
macro_rules! proxy_columns {
    () => {
        "id, resident_id, proxy_id, label, scope, appointed_at, ended_at, representation"
    };
}

/// The columns of `resident_requests` that [`RawResidentRequest`] reads, in its field order.
macro_rules! resident_request_columns {
    () => {
        "id, resident_id, kind, service_id, details, status, filed_by, filed_at, updated_at, response, \
         category_id, due_at, extension_reason"
    };
}

/// The columns of `signing_keys` that [`RawSigningKey`] reads, in its field order.
macro_rules! signing_key_columns {
    () => {
        "kid, alg, pkcs8, token, token_object_id, public_jwk, created_at, active_from, retired_at"
    };
}

/// The columns of `service_clients` that [`RawServiceClient`] reads, in its field order.
macro_rules! service_client_columns {
    () => {
        "service_id, redirect_uris, privacy_impact, registered_at, id_token_alg, controller"
    };
}

/// The columns of `operators` that [`RawOperator`] reads, in its field order.
macro_rules! operator_columns {
    () => {
        "id, name, identity_id, added_at, role"
    };
}

pub(crate) use {
    code_columns, enrolment_columns, operator_columns, passkey_columns, proxy_columns,
    resident_request_columns, service_client_columns, signing_key_columns,
};
