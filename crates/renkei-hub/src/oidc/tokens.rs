//! What a service does with the tokens it holds for a resident: introspection (RFC 7662),
//! revocation (RFC 7009) and userinfo. Each use re-reads the consents, the code and the
//! service's status, so a revocation stops a token at once.

use super::*;

impl Hub {
    /// RFC 7662: what `token` is, for the service that holds it; anyone else's token, or
    /// one no longer active, is just `{"active": false}`.
    pub async fn introspect(
        &self,
        caller: &ServiceId,
        token: &str,
    ) -> Result<Introspection, HubError> {
        let inactive = Introspection::default();
        if let Ok(claims) = self.keys().check(token, USER_AUDIENCE) {
            if claims.client_id.as_deref() != Some(caller.as_str()) {
                return Ok(inactive);
            }
            return match self.user_token_active(&claims).await {
                Ok(grant) => Ok(Introspection {
                    active: true,
                    scope: Some(grant.scope),
                    client_id: Some(caller.to_string()),
                    sub: Some(grant.subject),
                    token_type: Some("Bearer".into()),
                    exp: Some(claims.exp),
                    iat: Some(claims.iat),
                    iss: Some(self.config().issuer.clone()),
                    act: grant.actor,
                }),
                Err(HubError::TokenInactive | HubError::Unauthorized) => Ok(inactive),
                Err(e) => Err(e),
            };
        }
        if let Ok(claims) = self.keys().check(token, crate::auth::SERVICE_AUDIENCE) {
            if claims.sub != caller.as_str()
                || self.store().token_revoked(&claims.jti, None).await?
            {
                return Ok(inactive);
            }
            if self.approved_service(caller).await.is_err() {
                return Ok(inactive);
            }
            return Ok(Introspection {
                active: true,
                client_id: Some(caller.to_string()),
                sub: Some(caller.to_string()),
                token_type: Some("Bearer".into()),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                iss: Some(self.config().issuer.clone()),
                scope: None,
                act: None,
            });
        }
        Ok(inactive)
    }

    /// RFC 7009: revokes one of the caller's tokens. Unknown, expired or foreign tokens
    /// are ignored (the answer is the same, so nothing leaks).
    pub async fn revoke_token(&self, caller: &ServiceId, token: &str) -> Result<(), HubError> {
        let claims = match self.keys().check(token, USER_AUDIENCE) {
            Ok(c) if c.client_id.as_deref() == Some(caller.as_str()) => c,
            _ => match self.keys().check(token, crate::auth::SERVICE_AUDIENCE) {
                Ok(c) if c.sub == caller.as_str() => c,
                _ => return Ok(()),
            },
        };
        let expires = DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now);
        self.store()
            .revoke_token(&claims.jti, expires, Utc::now())
            .await?;
        Ok(())
    }

    /// The userinfo endpoint: `sub`, and `name` only when the resident agreed to share it.
    pub async fn userinfo(&self, token: &str) -> Result<serde_json::Value, HubError> {
        let claims = self.keys().check(token, USER_AUDIENCE)?;
        let grant = self.user_token_active(&claims).await?;
        let mut info = serde_json::json!({ "sub": grant.subject });
        if has_scope(&grant.scope, PROFILE_SCOPE) {
            let record = self
                .store()
                .authorization_code(&grant.code_hash)
                .await?
                .ok_or(HubError::TokenInactive)?;
            if let Some(name) = self.verified_name(record.resident).await?
                && let Some(claims) = info.as_object_mut()
            {
                claims.insert("name".into(), serde_json::Value::String(name));
            }
        }
        Ok(info)
    }
}
