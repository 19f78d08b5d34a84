//! The SQL behind [`crate::IdentityStore`], written once and stamped out for each backend
//! like `sql.rs`, with the row shapes it reads.

use chrono::{DateTime, Utc};
use renkei_domain::{
    Enrolment, Operator, ProxyAppointment, ResidentRequest, ResidentRequestKind,
    ResidentRequestStatus, ServiceClient, SigningAlg,
};

use crate::codec::{enum_field, from_json, opt_time, parse, time};
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

impl RawEnrolment {
    pub fn into_domain(self) -> StoreResult<Enrolment> {
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

impl RawPasskey {
    pub fn into_domain(self) -> StoreResult<StoredPasskey> {
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

impl RawServiceClient {
    pub fn into_domain(self) -> StoreResult<ServiceClient> {
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

impl RawAuthorizationCode {
    pub fn into_domain(self) -> StoreResult<AuthorizationCodeRecord> {
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
}

impl RawProxy {
    pub fn into_domain(self) -> StoreResult<ProxyAppointment> {
        Ok(ProxyAppointment {
            id: parse(&self.id, "proxy appointment id")?,
            resident: parse(&self.resident_id, "resident id")?,
            proxy: parse(&self.proxy_id, "proxy id")?,
            label: self.label,
            scope: from_json(&self.scope, "proxy scope")?,
            appointed_at: time(self.appointed_at)?,
            ended_at: opt_time(self.ended_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawOperator {
    pub id: String,
    pub name: String,
    pub identity_id: String,
    pub added_at: i64,
}

impl RawOperator {
    pub fn into_domain(self) -> StoreResult<Operator> {
        Ok(Operator {
            id: parse(&self.id, "operator id")?,
            name: self.name,
            identity: parse(&self.identity_id, "resident id")?,
            added_at: time(self.added_at)?,
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
}

impl RawResidentRequest {
    pub fn into_domain(self) -> StoreResult<ResidentRequest> {
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
        })
    }
}

pub fn expired(expires_at: i64, now: DateTime<Utc>) -> bool {
    expires_at <= now.timestamp_millis()
}

pub const RESIDENT_REQUEST_COLUMNS: &str =
    "id, resident_id, kind, service_id, details, status, filed_by, filed_at, updated_at, response";
pub const PROXY_COLUMNS: &str = "id, resident_id, proxy_id, label, scope, appointed_at, ended_at";

/// The columns each row shape above reads, in its field order.
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

impl RawSigningKey {
    pub fn into_domain(self) -> StoreResult<StoredSigningKey> {
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

macro_rules! code_columns {
    () => {
        "code_hash, service_id, resident_id, redirect_uri, code_challenge, nonce, scope, consents, acting_proxy, acting_appointment, auth_time, expires_at, redeemed_at"
    };
}
macro_rules! enrolment_columns {
    () => {
        "key_hash, resident_id, attributes, enrolled_at, certificate_not_after"
    };
}
macro_rules! passkey_columns {
    () => {
        "credential_id, resident_id, name, passkey, created_at, last_used_at"
    };
}

/// Implements [`crate::IdentityStore`] for `$store` (see `impl_store!` for its shape).
macro_rules! impl_identity_store {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::IdentityStore for $store {
            async fn put_enrolment_challenge(
                &self,
                id: uuid::Uuid,
                challenge: &[u8],
                expires_at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<()> {
                sqlx::query("INSERT INTO enrolment_challenges (id, challenge, expires_at) VALUES ($1, $2, $3)")
                    .bind(id.to_string())
                    .bind(challenge)
                    .bind(expires_at.timestamp_millis())
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn take_enrolment_challenge(
                &self,
                id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<Option<Vec<u8>>> {
                let row: Option<(Vec<u8>, i64)> = sqlx::query_as(
                    "DELETE FROM enrolment_challenges WHERE id = $1 RETURNING challenge, expires_at",
                )
                .bind(id.to_string())
                .fetch_optional(&self.write)
                .await?;
                Ok(row.and_then(|(c, exp)| (!$crate::sql_identity::expired(exp, now)).then_some(c)))
            }

            async fn enrol(
                &self,
                key_hash: &str,
                attributes: &serde_json::Value,
                certificate_not_after: chrono::DateTime<chrono::Utc>,
                candidate: renkei_domain::ResidentId,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<$crate::identity::Enrolled> {
                let attributes_json = $crate::codec::to_json(attributes)?;
                let mut tx = self.write.begin().await?;
                let known: Option<String> =
                    sqlx::query_scalar("SELECT resident_id FROM enrolments WHERE key_hash = $1")
                        .bind(key_hash)
                        .fetch_optional(&mut *tx)
                        .await?;
                let new_resident = known.is_none();
                let resident = match known {
                    Some(r) => $crate::codec::parse(&r, "resident id")?,
                    None => {
                        sqlx::query("INSERT INTO residents (id, created_at) VALUES ($1, $2)")
                            .bind(candidate.to_string())
                            .bind(now.timestamp_millis())
                            .execute(&mut *tx)
                            .await?;
                        candidate
                    }
                };
                sqlx::query(
                    "INSERT INTO enrolments (key_hash, resident_id, attributes, enrolled_at, certificate_not_after)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (key_hash) DO UPDATE SET attributes = excluded.attributes,
                     enrolled_at = excluded.enrolled_at, certificate_not_after = excluded.certificate_not_after",
                )
                .bind(key_hash)
                .bind(resident.to_string())
                .bind(&attributes_json)
                .bind(now.timestamp_millis())
                .bind(certificate_not_after.timestamp_millis())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok($crate::identity::Enrolled {
                    enrolment: renkei_domain::Enrolment {
                        resident,
                        key_hash: key_hash.to_owned(),
                        attributes: attributes.clone(),
                        enrolled_at: $crate::codec::time(now.timestamp_millis())?,
                        certificate_not_after: $crate::codec::time(
                            certificate_not_after.timestamp_millis(),
                        )?,
                    },
                    new_resident,
                })
            }

            async fn enrolment_of(
                &self,
                resident: renkei_domain::ResidentId,
            ) -> $crate::StoreResult<Option<renkei_domain::Enrolment>> {
                sqlx::query_as::<_, $crate::sql_identity::RawEnrolment>(
                    concat!("SELECT ", enrolment_columns!(), " FROM enrolments WHERE resident_id = $1 ORDER BY enrolled_at DESC LIMIT 1"),
                )
                .bind(resident.to_string())
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.into_domain())
                .transpose()
            }

            async fn enrolment_by_key(
                &self,
                key_hash: &str,
            ) -> $crate::StoreResult<Option<renkei_domain::Enrolment>> {
                sqlx::query_as::<_, $crate::sql_identity::RawEnrolment>(
                    concat!("SELECT ", enrolment_columns!(), " FROM enrolments WHERE key_hash = $1"),
                )
                .bind(key_hash)
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.into_domain())
                .transpose()
            }

            async fn put_ceremony(
                &self,
                id: uuid::Uuid,
                kind: &str,
                ceremony: &$crate::identity::Ceremony,
                expires_at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO webauthn_ceremonies (id, kind, resident_id, state, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id.to_string())
                .bind(kind)
                .bind(ceremony.resident.map(|r| r.to_string()))
                .bind($crate::codec::to_json(&ceremony.state)?)
                .bind(expires_at.timestamp_millis())
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn take_ceremony(
                &self,
                id: uuid::Uuid,
                kind: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<Option<$crate::identity::Ceremony>> {
                let row: Option<(Option<String>, String, i64)> = sqlx::query_as(
                    "DELETE FROM webauthn_ceremonies WHERE id = $1 AND kind = $2 RETURNING resident_id, state, expires_at",
                )
                .bind(id.to_string())
                .bind(kind)
                .fetch_optional(&self.write)
                .await?;
                let Some((resident, state, expires_at)) = row else { return Ok(None) };
                if $crate::sql_identity::expired(expires_at, now) {
                    return Ok(None);
                }
                Ok(Some($crate::identity::Ceremony {
                    resident: resident
                        .as_deref()
                        .map(|r| $crate::codec::parse(r, "resident id"))
                        .transpose()?,
                    state: $crate::codec::from_json(&state, "ceremony state")?,
                }))
            }

            async fn add_passkey(&self, p: &$crate::identity::StoredPasskey) -> $crate::StoreResult<()> {
                let done = sqlx::query(
                    "INSERT INTO passkeys (credential_id, resident_id, name, passkey, created_at, last_used_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (credential_id) DO NOTHING",
                )
                .bind(&p.credential_id)
                .bind(p.resident.to_string())
                .bind(&p.name)
                .bind($crate::codec::to_json(&p.passkey)?)
                .bind(p.created_at.timestamp_millis())
                .bind(p.last_used_at.map(|t| t.timestamp_millis()))
                .execute(&self.write)
                .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::Invalid("this passkey is already registered".into()));
                }
                Ok(())
            }

            async fn passkeys_of(
                &self,
                resident: renkei_domain::ResidentId,
            ) -> $crate::StoreResult<Vec<$crate::identity::StoredPasskey>> {
                sqlx::query_as::<_, $crate::sql_identity::RawPasskey>(
                    concat!("SELECT ", passkey_columns!(), " FROM passkeys WHERE resident_id = $1 ORDER BY created_at, credential_id"),
                )
                .bind(resident.to_string())
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn passkey(
                &self,
                credential_id: &str,
            ) -> $crate::StoreResult<Option<$crate::identity::StoredPasskey>> {
                sqlx::query_as::<_, $crate::sql_identity::RawPasskey>(
                    concat!("SELECT ", passkey_columns!(), " FROM passkeys WHERE credential_id = $1"),
                )
                .bind(credential_id)
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.into_domain())
                .transpose()
            }

            async fn update_passkey(
                &self,
                credential_id: &str,
                passkey: &serde_json::Value,
                used_at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<()> {
                sqlx::query("UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE credential_id = $3")
                    .bind($crate::codec::to_json(passkey)?)
                    .bind(used_at.timestamp_millis())
                    .bind(credential_id)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn remove_passkey(
                &self,
                resident: renkei_domain::ResidentId,
                credential_id: &str,
            ) -> $crate::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM passkeys WHERE resident_id = $1 AND credential_id = $2")
                    .bind(resident.to_string())
                    .bind(credential_id)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn put_service_client(&self, c: &renkei_domain::ServiceClient) -> $crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO service_clients (service_id, redirect_uris, privacy_impact, registered_at, id_token_alg, controller)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (service_id) DO UPDATE SET redirect_uris = excluded.redirect_uris,
                     privacy_impact = excluded.privacy_impact, id_token_alg = excluded.id_token_alg,
                     controller = excluded.controller",
                )
                .bind(c.service.as_str())
                .bind($crate::codec::to_json(&c.redirect_uris)?)
                .bind($crate::codec::to_json(&c.privacy_impact)?)
                .bind(c.registered_at.timestamp_millis())
                .bind(c.id_token_signed_response_alg.as_str())
                .bind(c.controller.as_ref().map($crate::codec::to_json).transpose()?)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn service_client(
                &self,
                service: &renkei_domain::ServiceId,
            ) -> $crate::StoreResult<Option<renkei_domain::ServiceClient>> {
                sqlx::query_as::<_, $crate::sql_identity::RawServiceClient>(
                    "SELECT service_id, redirect_uris, privacy_impact, registered_at, id_token_alg, controller FROM service_clients
                     WHERE service_id = $1",
                )
                .bind(service.as_str())
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.into_domain())
                .transpose()
            }

            async fn put_authorization_code(
                &self,
                c: &$crate::identity::AuthorizationCodeRecord,
            ) -> $crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO authorization_codes (code_hash, service_id, resident_id, redirect_uri, code_challenge,
                     nonce, scope, consents, acting_proxy, acting_appointment, auth_time, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&c.code_hash)
                .bind(c.service.as_str())
                .bind(c.resident.to_string())
                .bind(&c.redirect_uri)
                .bind(&c.code_challenge)
                .bind(c.nonce.as_deref())
                .bind(&c.scope)
                .bind($crate::codec::to_json(&c.consents)?)
                .bind(c.acting_proxy.map(|p| p.to_string()))
                .bind(c.acting_appointment.map(|a| a.to_string()))
                .bind(c.auth_time.timestamp_millis())
                .bind(c.expires_at.timestamp_millis())
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn authorization_code(
                &self,
                code_hash: &str,
            ) -> $crate::StoreResult<Option<$crate::identity::AuthorizationCodeRecord>> {
                sqlx::query_as::<_, $crate::sql_identity::RawAuthorizationCode>(
                    concat!("SELECT ", code_columns!(), " FROM authorization_codes WHERE code_hash = $1"),
                )
                .bind(code_hash)
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.into_domain())
                .transpose()
            }

            async fn redeem_authorization_code(
                &self,
                code_hash: &str,
                presented: &$crate::identity::CodePresentation,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<$crate::identity::CodeRedemption> {
                use $crate::identity::CodeRedemption;
                let mut tx = self.write.begin().await?;
                let row = sqlx::query_as::<_, $crate::sql_identity::RawAuthorizationCode>(
                    concat!("SELECT ", code_columns!(), " FROM authorization_codes WHERE code_hash = $1"),
                )
                .bind(code_hash)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else { return Ok(CodeRedemption::Unknown) };
                let redeemed = row.redeemed_at.is_some();
                let expires_at = row.expires_at;
                let code = row.into_domain()?;
                // INVARIANT: nothing is written unless the presentation matches the code, so
                // a code seen by anyone else is neither spent nor its tokens revoked by them.
                let outcome = if let Some(mismatch) = presented.mismatch(&code) {
                    CodeRedemption::Mismatch(mismatch)
                } else if redeemed {
                    sqlx::query(
                        "UPDATE authorization_codes SET tokens_revoked_at = $1 WHERE code_hash = $2 AND tokens_revoked_at IS NULL",
                    )
                    .bind(now.timestamp_millis())
                    .bind(code_hash)
                    .execute(&mut *tx)
                    .await?;
                    CodeRedemption::Reused
                } else if $crate::sql_identity::expired(expires_at, now) {
                    CodeRedemption::Expired
                } else {
                    sqlx::query("UPDATE authorization_codes SET redeemed_at = $1 WHERE code_hash = $2")
                        .bind(now.timestamp_millis())
                        .bind(code_hash)
                        .execute(&mut *tx)
                        .await?;
                    CodeRedemption::Redeemed(Box::new(code))
                };
                tx.commit().await?;
                Ok(outcome)
            }

            async fn revoke_token(
                &self,
                jti: &str,
                expires_at: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING",
                )
                .bind(jti)
                .bind(expires_at.timestamp_millis())
                .bind(now.timestamp_millis())
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn revoke_code_tokens(
                &self,
                code_hash: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<()> {
                sqlx::query(
                    "UPDATE authorization_codes SET tokens_revoked_at = $1 WHERE code_hash = $2 AND tokens_revoked_at IS NULL",
                )
                .bind(now.timestamp_millis())
                .bind(code_hash)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn token_revoked(&self, jti: &str, code_hash: Option<&str>) -> $crate::StoreResult<bool> {
                let revoked: i64 = sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM revoked_tokens WHERE jti = $1)
                          + (SELECT COUNT(*) FROM authorization_codes WHERE code_hash = $2 AND tokens_revoked_at IS NOT NULL)",
                )
                .bind(jti)
                .bind(code_hash.unwrap_or(""))
                .fetch_one(&self.read)
                .await?;
                Ok(revoked > 0)
            }

            async fn purge_expired(
                &self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<u64> {
                let before = before.timestamp_millis();
                let mut purged = 0;
                // One statement per table, each its own short transaction: the one SQLite
                // writer is never held for long, and what one deletes stays deleted.
                for statement in [
                    "DELETE FROM enrolment_challenges WHERE expires_at <= $1",
                    "DELETE FROM webauthn_ceremonies WHERE expires_at <= $1",
                    "DELETE FROM authorization_codes WHERE redeemed_at IS NULL AND expires_at <= $1",
                    "DELETE FROM revoked_tokens WHERE expires_at <= $1",
                ] {
                    purged += sqlx::query(statement)
                        .bind(before)
                        .execute(&self.write)
                        .await?
                        .rows_affected();
                }
                Ok(purged)
            }

            async fn appoint_proxy(&self, a: &renkei_domain::ProxyAppointment) -> $crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO proxies (id, resident_id, proxy_id, label, scope, appointed_at, ended_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(a.id.to_string())
                .bind(a.resident.to_string())
                .bind(a.proxy.to_string())
                .bind(&a.label)
                .bind($crate::codec::to_json(&a.scope)?)
                .bind(a.appointed_at.timestamp_millis())
                .bind(a.ended_at.map(|t| t.timestamp_millis()))
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn end_proxy(
                &self,
                resident: renkei_domain::ResidentId,
                id: renkei_domain::ProxyId,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<renkei_domain::ProxyAppointment> {
                let row = sqlx::query_as::<_, $crate::sql_identity::RawProxy>(sqlx::AssertSqlSafe(format!(
                    "UPDATE proxies SET ended_at = $1 WHERE id = $2 AND resident_id = $3 AND ended_at IS NULL RETURNING {}",
                    $crate::sql_identity::PROXY_COLUMNS
                )))
                .bind(at.timestamp_millis())
                .bind(id.to_string())
                .bind(resident.to_string())
                .fetch_optional(&self.write)
                .await?;
                row.ok_or_else(|| $crate::StoreError::NotFound(format!("active proxy appointment `{id}`")))?
                    .into_domain()
            }

            async fn proxy_appointment(
                &self,
                id: renkei_domain::ProxyId,
            ) -> $crate::StoreResult<Option<renkei_domain::ProxyAppointment>> {
                sqlx::query_as::<_, $crate::sql_identity::RawProxy>(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM proxies WHERE id = $1",
                    $crate::sql_identity::PROXY_COLUMNS
                )))
                .bind(id.to_string())
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.into_domain())
                .transpose()
            }

            async fn proxies_of(
                &self,
                resident: renkei_domain::ResidentId,
            ) -> $crate::StoreResult<Vec<renkei_domain::ProxyAppointment>> {
                sqlx::query_as::<_, $crate::sql_identity::RawProxy>(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM proxies WHERE resident_id = $1 ORDER BY appointed_at DESC, id",
                    $crate::sql_identity::PROXY_COLUMNS
                )))
                .bind(resident.to_string())
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn proxy_for(
                &self,
                proxy: renkei_domain::ResidentId,
            ) -> $crate::StoreResult<Vec<renkei_domain::ProxyAppointment>> {
                sqlx::query_as::<_, $crate::sql_identity::RawProxy>(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM proxies WHERE proxy_id = $1 AND ended_at IS NULL ORDER BY appointed_at, id",
                    $crate::sql_identity::PROXY_COLUMNS
                )))
                .bind(proxy.to_string())
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn put_operator(&self, o: &renkei_domain::Operator) -> $crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO operators (id, name, identity_id, added_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, identity_id = excluded.identity_id",
                )
                .bind(o.id.as_str())
                .bind(&o.name)
                .bind(o.identity.to_string())
                .bind(o.added_at.timestamp_millis())
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn operator(
                &self,
                id: &renkei_domain::OperatorId,
            ) -> $crate::StoreResult<Option<renkei_domain::Operator>> {
                sqlx::query_as::<_, $crate::sql_identity::RawOperator>(
                    "SELECT id, name, identity_id, added_at FROM operators WHERE id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.into_domain())
                .transpose()
            }

            async fn operator_by_identity(
                &self,
                identity: renkei_domain::ResidentId,
            ) -> $crate::StoreResult<Option<renkei_domain::Operator>> {
                sqlx::query_as::<_, $crate::sql_identity::RawOperator>(
                    "SELECT id, name, identity_id, added_at FROM operators WHERE identity_id = $1",
                )
                .bind(identity.to_string())
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.into_domain())
                .transpose()
            }

            async fn file_request(&self, r: &renkei_domain::ResidentRequest) -> $crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO resident_requests (id, resident_id, kind, service_id, details, status, filed_by,
                     filed_at, updated_at, response) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(r.id.to_string())
                .bind(r.resident.to_string())
                .bind(r.kind.as_str())
                .bind(r.service.as_ref().map(|s| s.as_str().to_owned()))
                .bind(&r.details)
                .bind(r.status.as_str())
                .bind($crate::codec::to_json(&r.filed_by)?)
                .bind(r.filed_at.timestamp_millis())
                .bind(r.updated_at.timestamp_millis())
                .bind(r.response.as_deref())
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn requests_of(
                &self,
                resident: renkei_domain::ResidentId,
            ) -> $crate::StoreResult<Vec<renkei_domain::ResidentRequest>> {
                sqlx::query_as::<_, $crate::sql_identity::RawResidentRequest>(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM resident_requests WHERE resident_id = $1 ORDER BY filed_at DESC, id",
                    $crate::sql_identity::RESIDENT_REQUEST_COLUMNS
                )))
                .bind(resident.to_string())
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn requests(
                &self,
                status: Option<renkei_domain::ResidentRequestStatus>,
            ) -> $crate::StoreResult<Vec<renkei_domain::ResidentRequest>> {
                sqlx::query_as::<_, $crate::sql_identity::RawResidentRequest>(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM resident_requests WHERE ($1 = '' OR status = $1) ORDER BY filed_at, id",
                    $crate::sql_identity::RESIDENT_REQUEST_COLUMNS
                )))
                .bind(status.map(|s| s.as_str()).unwrap_or(""))
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn update_request(
                &self,
                id: renkei_domain::ResidentRequestId,
                status: renkei_domain::ResidentRequestStatus,
                response: Option<&str>,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<renkei_domain::ResidentRequest> {
                let row = sqlx::query_as::<_, $crate::sql_identity::RawResidentRequest>(sqlx::AssertSqlSafe(format!(
                    "UPDATE resident_requests SET status = $1, response = COALESCE($2, response), updated_at = $3
                     WHERE id = $4 RETURNING {}",
                    $crate::sql_identity::RESIDENT_REQUEST_COLUMNS
                )))
                .bind(status.as_str())
                .bind(response)
                .bind(at.timestamp_millis())
                .bind(id.to_string())
                .fetch_optional(&self.write)
                .await?;
                row.ok_or_else(|| $crate::StoreError::NotFound(format!("resident request `{id}`")))?
                    .into_domain()
            }

            async fn add_signing_key(
                &self,
                key: &$crate::identity::StoredSigningKey,
            ) -> $crate::StoreResult<bool> {
                let (pkcs8, token) = match &key.custody {
                    $crate::identity::KeyCustody::Stored(pkcs8) => (Some(pkcs8), None),
                    $crate::identity::KeyCustody::Token(token) => (None, Some(token)),
                };
                let done = sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, pkcs8, token, token_object_id, public_jwk,
                         created_at, active_from, retired_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (kid) DO NOTHING",
                )
                .bind(&key.kid)
                .bind(key.alg.as_str())
                .bind(pkcs8)
                .bind(token.map(|t| &t.token))
                .bind(token.map(|t| &t.object_id))
                .bind(token.map(|t| &t.public_jwk))
                .bind(key.created_at.timestamp_millis())
                .bind(key.active_from.timestamp_millis())
                .bind(key.retired_at.map(|t| t.timestamp_millis()))
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn signing_keys(&self) -> $crate::StoreResult<Vec<$crate::identity::StoredSigningKey>> {
                sqlx::query_as::<_, $crate::sql_identity::RawSigningKey>(
                    "SELECT kid, alg, pkcs8, token, token_object_id, public_jwk, created_at,
                         active_from, retired_at
                     FROM signing_keys ORDER BY active_from, created_at, kid",
                )
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn retire_signing_key(
                &self,
                kid: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL",
                )
                .bind(at.timestamp_millis())
                .bind(kid)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use {code_columns, enrolment_columns, impl_identity_store, passkey_columns};
