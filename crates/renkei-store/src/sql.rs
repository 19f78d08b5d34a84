//! The SQL behind [`crate::Store`], written once and stamped out for each backend.
//!
//! Both schemas (see `migrations/`) use the same table and column names and `$n`
//! placeholders, so the statements are identical; what differs per backend (connection
//! settings, pool sizes, the migration set) lives in `sqlite.rs` and `postgres.rs`.
//! `write` is the pool for transactions that change data, `read` for plain reads; on
//! SQLite `write` has one connection, which serialises writers without busy retries.

/// Implements [`crate::Store`] for `$store`, a struct with `read` and `write` pools of `$db`,
/// in a module that also defines `PLACEHOLDERS` (how the backend writes run-time parameters) and
/// `INSERT_ROWS` (how a multi-row append begins).
macro_rules! impl_store {
    ($store:ident, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::Store for $store {
            async fn put_category(&self, c: &renkei_domain::DataCategory) -> $crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO categories (id, name_ja, name_en, special_care) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET name_ja = excluded.name_ja, name_en = excluded.name_en,
                     special_care = excluded.special_care",
                )
                .bind(c.id.as_str())
                .bind(&c.name.ja)
                .bind(&c.name.en)
                .bind(c.special_care)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn categories(&self) -> $crate::StoreResult<Vec<renkei_domain::DataCategory>> {
                sqlx::query_as::<_, $crate::codec::RawCategory>(
                    "SELECT id, name_ja, name_en, special_care FROM categories ORDER BY id",
                )
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn put_service(&self, s: &renkei_domain::Service, client_secret_hash: &str) -> $crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO services (id, name_ja, name_en, sector, hpke_public_key, webhook_url, status, client_secret_hash)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (id) DO UPDATE SET name_ja = excluded.name_ja, name_en = excluded.name_en,
                     sector = excluded.sector, hpke_public_key = excluded.hpke_public_key,
                     webhook_url = excluded.webhook_url, status = excluded.status,
                     client_secret_hash = excluded.client_secret_hash",
                )
                .bind(s.id.as_str())
                .bind(&s.name.ja)
                .bind(&s.name.en)
                .bind(&s.sector)
                .bind(&s.hpke_public_key)
                .bind(s.webhook_url.as_deref())
                .bind(s.status.as_str())
                .bind(client_secret_hash)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn service(&self, id: &renkei_domain::ServiceId) -> $crate::StoreResult<Option<renkei_domain::Service>> {
                sqlx::query_as::<_, $crate::codec::RawService>(
                    "SELECT id, name_ja, name_en, sector, hpke_public_key, webhook_url, status FROM services WHERE id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.into_domain())
                .transpose()
            }

            async fn services(&self) -> $crate::StoreResult<Vec<renkei_domain::Service>> {
                sqlx::query_as::<_, $crate::codec::RawService>(
                    "SELECT id, name_ja, name_en, sector, hpke_public_key, webhook_url, status FROM services ORDER BY id",
                )
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn client_secret_hash(&self, id: &renkei_domain::ServiceId) -> $crate::StoreResult<Option<String>> {
                Ok(sqlx::query_scalar::<_, String>("SELECT client_secret_hash FROM services WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(&self.read)
                    .await?)
            }

            async fn set_service_status(
                &self,
                id: &renkei_domain::ServiceId,
                status: renkei_domain::ServiceStatus,
            ) -> $crate::StoreResult<()> {
                let done = sqlx::query("UPDATE services SET status = $1 WHERE id = $2")
                    .bind(status.as_str())
                    .bind(id.as_str())
                    .execute(&self.write)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound(format!("service `{id}`")));
                }
                Ok(())
            }

            async fn publish_purpose(
                &self,
                d: &$crate::PurposeDraft,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<renkei_domain::Purpose> {
                let mut tx = self.write.begin().await?;
                let current = sqlx::query_as::<_, $crate::codec::RawPurpose>(concat!(
                    "SELECT ", purpose_columns!(), " FROM purposes WHERE service_id = $1 AND purpose_id = $2
                     ORDER BY version DESC LIMIT 1"
                ))
                .bind(d.service.as_str())
                .bind(d.id.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.into_domain())
                .transpose()?;
                let next = match current {
                    None => renkei_domain::Purpose {
                        service: d.service.clone(),
                        id: d.id.clone(),
                        version: 1,
                        title: d.title.clone(),
                        description: d.description.clone(),
                        categories: d.categories.clone(),
                        retention_days: d.retention_days,
                        legal_basis: d.legal_basis,
                    },
                    Some(current) => match current.revise(
                        d.title.clone(),
                        d.description.clone(),
                        d.categories.clone(),
                        d.retention_days,
                        d.legal_basis,
                    ) {
                        Some(next) => next,
                        None => return Ok(current),
                    },
                };
                sqlx::query(
                    "INSERT INTO purposes (service_id, purpose_id, version, title_ja, title_en, description_ja,
                     description_en, categories, retention_days, legal_basis, published_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(next.service.as_str())
                .bind(next.id.as_str())
                .bind(i64::from(next.version))
                .bind(&next.title.ja)
                .bind(&next.title.en)
                .bind(&next.description.ja)
                .bind(&next.description.en)
                .bind($crate::codec::to_json(&next.categories)?)
                .bind(i64::from(next.retention_days))
                .bind(next.legal_basis.as_str())
                .bind($crate::codec::millis(at))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(next)
            }

            async fn current_purpose(
                &self,
                service: &renkei_domain::ServiceId,
                purpose: &renkei_domain::PurposeId,
            ) -> $crate::StoreResult<Option<renkei_domain::Purpose>> {
                sqlx::query_as::<_, $crate::codec::RawPurpose>(concat!(
                    "SELECT ", purpose_columns!(), " FROM purposes WHERE service_id = $1 AND purpose_id = $2
                     ORDER BY version DESC LIMIT 1"
                ))
                .bind(service.as_str())
                .bind(purpose.as_str())
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.into_domain())
                .transpose()
            }

            async fn purpose_version(
                &self,
                r: &renkei_domain::PurposeRef,
            ) -> $crate::StoreResult<Option<renkei_domain::Purpose>> {
                sqlx::query_as::<_, $crate::codec::RawPurpose>(concat!(
                    "SELECT ", purpose_columns!(), " FROM purposes WHERE service_id = $1 AND purpose_id = $2 AND version = $3"
                ))
                .bind(r.service.as_str())
                .bind(r.purpose.as_str())
                .bind(i64::from(r.version))
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.into_domain())
                .transpose()
            }

            async fn purposes(&self, service: &renkei_domain::ServiceId) -> $crate::StoreResult<Vec<renkei_domain::Purpose>> {
                sqlx::query_as::<_, $crate::codec::RawPurpose>(concat!(
                    "SELECT ", purpose_columns!(), " FROM purposes p WHERE service_id = $1 AND version =
                     (SELECT MAX(version) FROM purposes q WHERE q.service_id = p.service_id AND q.purpose_id = p.purpose_id)
                     ORDER BY purpose_id"
                ))
                .bind(service.as_str())
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn put_provider(&self, p: &renkei_domain::Provider) -> $crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO providers (id, name_ja, name_en, endpoint, categories, max_answer_bytes)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (id) DO UPDATE SET name_ja = excluded.name_ja, name_en = excluded.name_en,
                     endpoint = excluded.endpoint, categories = excluded.categories,
                     max_answer_bytes = excluded.max_answer_bytes",
                )
                .bind(p.id.as_str())
                .bind(&p.name.ja)
                .bind(&p.name.en)
                .bind(&p.endpoint)
                .bind($crate::codec::to_json(&p.categories)?)
                .bind(p.max_answer_bytes.map($crate::codec::byte_count_i64).transpose()?)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn providers(&self) -> $crate::StoreResult<Vec<renkei_domain::Provider>> {
                sqlx::query_as::<_, $crate::codec::RawProvider>(
                    "SELECT id, name_ja, name_en, endpoint, categories, max_answer_bytes FROM providers ORDER BY id",
                )
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn add_resident(
                &self,
                id: renkei_domain::ResidentId,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<()> {
                sqlx::query("INSERT INTO residents (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
                    .bind(id.to_string())
                    .bind($crate::codec::millis(at))
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn resident_exists(&self, id: renkei_domain::ResidentId) -> $crate::StoreResult<bool> {
                Ok(sqlx::query_scalar::<_, String>("SELECT id FROM residents WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.read)
                    .await?
                    .is_some())
            }

            async fn put_locators(&self, locators: &[renkei_domain::Locator]) -> $crate::StoreResult<()> {
                let mut tx = self.write.begin().await?;
                for l in locators {
                    sqlx::query(
                        "INSERT INTO locators (resident_id, category_id, provider_id, reference) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (resident_id, category_id) DO UPDATE SET provider_id = excluded.provider_id,
                         reference = excluded.reference",
                    )
                    .bind(l.resident.to_string())
                    .bind(l.category.as_str())
                    .bind(l.provider.as_str())
                    .bind(&l.reference)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn locators_of(&self, resident: renkei_domain::ResidentId) -> $crate::StoreResult<Vec<renkei_domain::Locator>> {
                sqlx::query_as::<_, $crate::codec::RawLocator>(
                    "SELECT resident_id, category_id, provider_id, reference FROM locators WHERE resident_id = $1
                     ORDER BY category_id",
                )
                .bind(resident.to_string())
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn link_subject(
                &self,
                sector: &str,
                subject: &renkei_domain::ServiceSubject,
                resident: renkei_domain::ResidentId,
            ) -> $crate::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO subjects (sector, subject, resident_id) VALUES ($1, $2, $3)
                     ON CONFLICT (sector, subject) DO NOTHING",
                )
                .bind(sector)
                .bind(subject.as_str())
                .bind(resident.to_string())
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn grant_consent(
                &self,
                c: &renkei_domain::Consent,
                notify: Option<&$crate::OutboxMessage>,
            ) -> $crate::StoreResult<()> {
                use $crate::codec::{millis, to_json};
                let mut tx = self.write.begin().await?;
                // Taking the resident row first serialises consent changes of one resident
                // across replicas, so two grants cannot both become active.
                let locked = sqlx::query("UPDATE residents SET consent_changes = consent_changes + 1 WHERE id = $1")
                    .bind(c.resident.to_string())
                    .execute(&mut *tx)
                    .await?;
                if locked.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound(format!("resident `{}`", c.resident)));
                }
                let purpose_exists = sqlx::query_scalar::<_, i64>(
                    "SELECT version FROM purposes WHERE service_id = $1 AND purpose_id = $2 AND version = $3",
                )
                .bind(c.purpose.service.as_str())
                .bind(c.purpose.purpose.as_str())
                .bind(i64::from(c.purpose.version))
                .fetch_optional(&mut *tx)
                .await?;
                if purpose_exists.is_none() {
                    return Err($crate::StoreError::NotFound(format!(
                        "version {} of purpose `{}` of service `{}`",
                        c.purpose.version, c.purpose.purpose, c.purpose.service
                    )));
                }
                let open = sqlx::query_as::<_, $crate::codec::RawConsent>(concat!(
                    "SELECT ", consent_columns!(), " FROM consents WHERE resident_id = $1 AND service_id = $2
                     AND purpose_id = $3 AND revoked_at IS NULL"
                ))
                .bind(c.resident.to_string())
                .bind(c.purpose.service.as_str())
                .bind(c.purpose.purpose.as_str())
                .fetch_all(&mut *tx)
                .await?;
                for old in open {
                    let old = old.into_domain()?;
                    if old.state_at(c.granted_at) != renkei_domain::ConsentState::Active {
                        continue;
                    }
                    if old.purpose.version == c.purpose.version {
                        return Err($crate::StoreError::ConsentAlreadyActive(old.id));
                    }
                    sqlx::query("UPDATE consents SET revoked_at = $1 WHERE id = $2")
                        .bind(millis(c.granted_at))
                        .bind(old.id.to_string())
                        .execute(&mut *tx)
                        .await?;
                    insert_consent_event(&mut tx, &old, renkei_domain::ConsentEventKind::Superseded, c.granted_at, &c.given_by).await?;
                }
                sqlx::query(concat!(
                    "INSERT INTO consents (", consent_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ))
                .bind(c.id.to_string())
                .bind(c.resident.to_string())
                .bind(c.purpose.service.as_str())
                .bind(c.purpose.purpose.as_str())
                .bind(i64::from(c.purpose.version))
                .bind(to_json(&c.categories)?)
                .bind(c.legal_basis.as_str())
                .bind(millis(c.granted_at))
                .bind(c.expires_at.map(millis))
                .bind(c.given_via.as_str())
                .bind(to_json(&c.given_by)?)
                .bind(c.revoked_at.map(millis))
                .execute(&mut *tx)
                .await?;
                insert_consent_event(&mut tx, c, renkei_domain::ConsentEventKind::Granted, c.granted_at, &c.given_by).await?;
                if let Some(m) = notify {
                    insert_outbox(&mut tx, m, c.granted_at).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn revoke_consent(
                &self,
                resident: renkei_domain::ResidentId,
                id: renkei_domain::ConsentId,
                actor: &renkei_domain::Actor,
                at: chrono::DateTime<chrono::Utc>,
                notify: Option<&$crate::OutboxMessage>,
            ) -> $crate::StoreResult<renkei_domain::Consent> {
                let mut tx = self.write.begin().await?;
                sqlx::query("UPDATE residents SET consent_changes = consent_changes + 1 WHERE id = $1")
                    .bind(resident.to_string())
                    .execute(&mut *tx)
                    .await?;
                // Another resident's consent is reported as not found, not as forbidden:
                // its existence is nobody else's business.
                let consent = sqlx::query_as::<_, $crate::codec::RawConsent>(concat!(
                    "SELECT ", consent_columns!(), " FROM consents WHERE id = $1 AND resident_id = $2"
                ))
                .bind(id.to_string())
                .bind(resident.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| $crate::StoreError::NotFound(format!("consent `{id}`")))?
                .into_domain()?;
                if consent.state_at(at) != renkei_domain::ConsentState::Active {
                    return Err($crate::StoreError::ConsentNotActive(id));
                }
                sqlx::query("UPDATE consents SET revoked_at = $1 WHERE id = $2")
                    .bind($crate::codec::millis(at))
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                insert_consent_event(&mut tx, &consent, renkei_domain::ConsentEventKind::Revoked, at, actor).await?;
                if let Some(m) = notify {
                    insert_outbox(&mut tx, m, at).await?;
                }
                tx.commit().await?;
                Ok(renkei_domain::Consent { revoked_at: Some(at), ..consent })
            }

            async fn consent(&self, id: renkei_domain::ConsentId) -> $crate::StoreResult<Option<renkei_domain::Consent>> {
                sqlx::query_as::<_, $crate::codec::RawConsent>(concat!(
                    "SELECT ", consent_columns!(), " FROM consents WHERE id = $1"
                ))
                .bind(id.to_string())
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.into_domain())
                .transpose()
            }

            async fn consents_of(&self, resident: renkei_domain::ResidentId) -> $crate::StoreResult<Vec<renkei_domain::Consent>> {
                sqlx::query_as::<_, $crate::codec::RawConsent>(concat!(
                    "SELECT ", consent_columns!(), " FROM consents WHERE resident_id = $1
                     ORDER BY granted_at DESC, purpose_version DESC"
                ))
                .bind(resident.to_string())
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn consents_after(&self, after: Option<renkei_domain::ConsentId>, limit: u32) -> $crate::StoreResult<Vec<renkei_domain::Consent>> {
                sqlx::query_as::<_, $crate::codec::RawConsent>(concat!(
                    "SELECT ", consent_columns!(), " FROM consents WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
                ))
                .bind(after.map(|a| a.to_string()))
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn consent_history(&self, id: renkei_domain::ConsentId) -> $crate::StoreResult<Vec<renkei_domain::ConsentEvent>> {
                sqlx::query_as::<_, $crate::codec::RawConsentEvent>(
                    "SELECT consent_id, kind, at, actor FROM consent_events WHERE consent_id = $1 ORDER BY seq",
                )
                .bind(id.to_string())
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn record_expiries(&self, now: chrono::DateTime<chrono::Utc>, limit: u32) -> $crate::StoreResult<u32> {
                let mut tx = self.write.begin().await?;
                let due = sqlx::query_as::<_, $crate::codec::RawConsent>(concat!(
                    "SELECT ", consent_columns!(), " FROM consents c WHERE revoked_at IS NULL AND expires_at <= $1
                     AND NOT EXISTS (SELECT 1 FROM consent_events e WHERE e.consent_id = c.id AND e.kind = 'expired')
                     ORDER BY expires_at LIMIT $2"
                ))
                .bind($crate::codec::millis(now))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?;
                let mut count = 0;
                for raw in due {
                    let consent = raw.into_domain()?;
                    let at = consent.expires_at.unwrap_or(now);
                    insert_consent_event(&mut tx, &consent, renkei_domain::ConsentEventKind::Expired, at, &renkei_domain::Actor::Hub).await?;
                    count += 1;
                }
                tx.commit().await?;
                Ok(count)
            }

            async fn decide_and_stage(
                &self,
                batch: &[$crate::DecisionInput],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<$crate::StagedDecisions> {
                use std::collections::HashMap;
                use $crate::codec::{millis, to_json};
                use renkei_domain::{
                    AccessBasis, AccessOutcome, AccessRecord, Decision, DenialReason, Locator, LogEntry, Provider,
                    ResidentId,
                };
                if batch.is_empty() {
                    return Ok($crate::StagedDecisions { decisions: Vec::new(), commit: Box::pin(async { Ok($crate::Durability::already()) }) });
                }
                // Records keep millisecond precision; return them exactly as stored.
                let now = $crate::codec::time(millis(now))?;
                let mut tx = self.begin_batch().await?;
                let count = i64::try_from(batch.len()).map_err(|_| $crate::StoreError::Invalid("batch too large".into()))?;
                // Reserving the sequence numbers first takes the log head's row lock, so
                // batches from several replicas append one after another, gap-free.
                let first_seq = reserve_log_seqs(&mut tx, count).await?;
                // What decisions read is kept between batches while the decision clock stands
                // still (`decision_cache`). INVARIANT: the clock, and then whatever is missing,
                // is read only after the lock is held, each by a statement of its own: under
                // READ COMMITTED a statement sees what was committed when it started, so a
                // statement that waited for the lock (as the reservation may) still sees the
                // state from before its wait. Read after it, a revocation whose log entry
                // precedes this batch is seen by every decision in it: the log's order is the
                // order of decisions.
                let clock: i64 = sqlx::query_scalar("SELECT value FROM decision_clock WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
                let mut cache = self.decision_cache.take();
                cache.at_clock(clock);

                // Every read is one statement per batch, not per request, for what the cache
                // lacks: the batch shares the transaction, so all decisions see the same state.
                for input in batch {
                    let req = &input.request;
                    if !cache.services.contains_key(&req.service) {
                        let read = sqlx::query_as::<_, $crate::codec::RawService>(
                            "SELECT id, name_ja, name_en, sector, hpke_public_key, webhook_url, status FROM services WHERE id = $1",
                        )
                        .bind(req.service.as_str())
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| r.into_domain())
                        .transpose()?;
                        cache.services.insert(req.service.clone(), read);
                    }
                    let key = (req.service.clone(), req.purpose.clone());
                    if !cache.purposes.contains_key(&key) {
                        let read = sqlx::query_as::<_, $crate::codec::RawPurpose>(concat!(
                            "SELECT ", purpose_columns!(), " FROM purposes WHERE service_id = $1 AND purpose_id = $2
                             ORDER BY version DESC LIMIT 1"
                        ))
                        .bind(req.service.as_str())
                        .bind(req.purpose.as_str())
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| r.into_domain())
                        .transpose()?;
                        cache.purposes.insert(key, read);
                    }
                }
                let sector_of = |input: &$crate::DecisionInput| -> Option<String> {
                    cache.services.get(&input.request.service)?.as_ref().map(|s| s.sector.clone())
                };

                // Subjects → residents, per sector.
                let mut by_sector: HashMap<String, Vec<String>> = HashMap::new();
                for input in batch {
                    if let Some(sector) = sector_of(input) {
                        let subject = input.subject.as_str().to_owned();
                        if !cache.residents.contains_key(&(sector.clone(), subject.clone())) {
                            by_sector.entry(sector).or_default().push(subject);
                        }
                    }
                }
                for (sector, mut subjects) in by_sector {
                    subjects.sort();
                    subjects.dedup();
                    for chunk in subjects.chunks($crate::codec::IN_LIST_MAX) {
                        let sql = format!(
                            // Every parameter of a run-time statement in the backend's own style.
                            "SELECT subject, resident_id FROM subjects WHERE sector = {} AND subject IN ({})",
                            PLACEHOLDERS.list(1, 1),
                            PLACEHOLDERS.list(2, $crate::codec::in_list_len(chunk.len()))
                        );
                        let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql)).bind(sector.clone());
                        for subject in $crate::codec::padded(chunk) {
                            query = query.bind(subject.clone());
                        }
                        let mut found: HashMap<String, ResidentId> = HashMap::new();
                        for (subject, resident) in query.fetch_all(&mut *tx).await? {
                            found.insert(subject, $crate::codec::parse::<ResidentId>(&resident, "resident id")?);
                        }
                        for subject in chunk {
                            let resident = found.get(subject).copied();
                            cache.residents.insert((sector.clone(), subject.clone()), resident);
                        }
                    }
                }
                // Bearer tokens the services revoked (RFC 7009), read like the consents.
                let mut token_ids: Vec<String> = batch
                    .iter()
                    .filter_map(|i| i.token_id.clone())
                    .filter(|t| !cache.revoked_tokens.contains_key(t))
                    .collect();
                token_ids.sort();
                token_ids.dedup();
                for chunk in token_ids.chunks($crate::codec::IN_LIST_MAX) {
                    let sql = format!(
                        "SELECT jti FROM revoked_tokens WHERE jti IN ({})",
                        PLACEHOLDERS.list(1, $crate::codec::in_list_len(chunk.len()))
                    );
                    let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
                    for jti in $crate::codec::padded(chunk) {
                        query = query.bind(jti.clone());
                    }
                    let revoked: std::collections::HashSet<String> = query.fetch_all(&mut *tx).await?.into_iter().collect();
                    for jti in chunk {
                        cache.revoked_tokens.insert(jti.clone(), revoked.contains(jti));
                    }
                }
                let resident_of = |cache: &$crate::decision_cache::DecisionCache, input: &$crate::DecisionInput| -> Option<ResidentId> {
                    let service = cache.services.get(&input.request.service)?.as_ref()?;
                    cache.residents.get(&(service.sector.clone(), input.subject.as_str().to_owned())).copied().flatten()
                };

                // Every consent of the residents concerned; the latest per purpose decides.
                let mut wanted: Vec<ResidentId> = batch
                    .iter()
                    .filter_map(|i| resident_of(&cache, i))
                    .filter(|r| !cache.consents.contains_key(r))
                    .collect();
                wanted.sort();
                wanted.dedup();
                for chunk in wanted.chunks($crate::codec::IN_LIST_MAX) {
                    let sql = format!(
                        concat!("SELECT ", consent_columns!(), " FROM consents WHERE resident_id IN ({})"),
                        PLACEHOLDERS.list(1, $crate::codec::in_list_len(chunk.len()))
                    );
                    let mut query = sqlx::query_as::<_, $crate::codec::RawConsent>(sqlx::AssertSqlSafe(sql));
                    for r in $crate::codec::padded(chunk) {
                        query = query.bind(r.to_string());
                    }
                    for r in chunk {
                        cache.consents.insert(*r, HashMap::new());
                    }
                    for raw in query.fetch_all(&mut *tx).await? {
                        let c = raw.into_domain()?;
                        let latest = cache.consents.entry(c.resident).or_default();
                        let key = (c.purpose.service.clone(), c.purpose.purpose.clone());
                        let newer = latest
                            .get(&key)
                            .is_none_or(|old| (c.granted_at, c.purpose.version) > (old.granted_at, old.purpose.version));
                        if newer {
                            latest.insert(key, c);
                        }
                    }
                }

                let decisions: Vec<(Decision, Option<ResidentId>)> = batch
                    .iter()
                    .map(|input| {
                        let req = &input.request;
                        let service = cache.services.get(&req.service).and_then(Option::as_ref);
                        let resident = resident_of(&cache, input);
                        let token_revoked = input.token_id.as_ref().is_some_and(|t| cache.revoked_tokens.get(t) == Some(&true));
                        let decision = match (service, resident) {
                            _ if token_revoked => Decision::Denied(DenialReason::TokenRevoked),
                            (None, _) => Decision::Denied(DenialReason::ServiceNotApproved),
                            (Some(_), None) => Decision::Denied(DenialReason::UnknownSubject),
                            (Some(service), Some(resident)) => {
                                let key = (req.service.clone(), req.purpose.clone());
                                let purpose = cache.purposes.get(&key).and_then(Option::as_ref);
                                let consent = cache.consents.get(&resident).and_then(|l| l.get(&key)).cloned();
                                renkei_domain::decide(req, service, purpose, consent, now)
                            }
                        };
                        (decision, resident)
                    })
                    .collect();

                // Where the granted residents' data lives, and the providers holding it.
                let mut granted: Vec<ResidentId> = decisions
                    .iter()
                    .filter(|(d, _)| matches!(d, Decision::Granted(_)))
                    .filter_map(|(_, r)| *r)
                    .filter(|r| !cache.locators.contains_key(r))
                    .collect();
                granted.sort();
                granted.dedup();
                for chunk in granted.chunks($crate::codec::IN_LIST_MAX) {
                    let sql = format!(
                        "SELECT resident_id, category_id, provider_id, reference FROM locators WHERE resident_id IN ({})
                         ORDER BY resident_id, category_id",
                        PLACEHOLDERS.list(1, $crate::codec::in_list_len(chunk.len()))
                    );
                    let mut query = sqlx::query_as::<_, $crate::codec::RawLocator>(sqlx::AssertSqlSafe(sql));
                    for r in $crate::codec::padded(chunk) {
                        query = query.bind(r.to_string());
                    }
                    for r in chunk {
                        cache.locators.insert(*r, Vec::new());
                    }
                    for raw in query.fetch_all(&mut *tx).await? {
                        let l = raw.into_domain()?;
                        cache.locators.entry(l.resident).or_default().push(l);
                    }
                }
                let any_granted = decisions.iter().any(|(d, _)| matches!(d, Decision::Granted(_)));
                if any_granted && cache.providers.is_none() {
                    cache.providers = Some(
                        sqlx::query_as::<_, $crate::codec::RawProvider>("SELECT id, name_ja, name_en, endpoint, categories, max_answer_bytes FROM providers")
                            .fetch_all(&mut *tx)
                            .await?
                            .into_iter()
                            .map(|r| r.into_domain().map(|p| (p.id.clone(), p)))
                            .collect::<$crate::StoreResult<_>>()?,
                    );
                }

                let mut out = Vec::with_capacity(batch.len());
                let mut leaves = Vec::with_capacity(batch.len());
                for ((offset, input), (decision, resident)) in (0_i64..).zip(batch).zip(decisions) {
                    let req = &input.request;
                    let locators: Vec<Locator> = match (&decision, resident) {
                        (Decision::Granted(_), Some(r)) => cache
                            .locators
                            .get(&r)
                            .map(|ls| ls.iter().filter(|l| req.categories.contains(&l.category)).cloned().collect())
                            .unwrap_or_default(),
                        _ => Vec::new(),
                    };
                    let (basis, outcome) = match &decision {
                        Decision::Granted(active) => (AccessBasis::Consent { consent: active.consent().id }, AccessOutcome::Granted),
                        Decision::Denied(reason) => (AccessBasis::None, AccessOutcome::Denied { reason: reason.code().to_owned() }),
                    };
                    let purpose_version = cache
                        .purposes
                        .get(&(req.service.clone(), req.purpose.clone()))
                        .and_then(|p| p.as_ref().map(|p| p.version));
                    let record = AccessRecord {
                        seq: $crate::codec::seq_u64(first_seq + offset)?,
                        request: req.id,
                        at: now,
                        service: req.service.clone(),
                        resident,
                        purpose: req.purpose.clone(),
                        purpose_version,
                        categories: req.categories.clone(),
                        basis,
                        outcome,
                        providers: locators.iter().map(|l| l.provider.clone()).collect(),
                    };
                    let named: Vec<Provider> = record
                        .providers
                        .iter()
                        .filter_map(|p| cache.providers.as_ref().and_then(|all| all.get(p)).cloned())
                        .collect();
                    let leaf = $crate::codec::new_leaf(&LogEntry::Access(record.clone()));
                    out.push($crate::RecordedDecision {
                        decision,
                        leaf: leaf.hash,
                        record,
                        locators,
                        service: cache.services.get(&req.service).cloned().flatten(),
                        providers: named,
                    });
                    leaves.push(leaf);
                }

                self.decision_cache.put_back(cache);

                // The records and their leaves, a few multi-row statements per batch.
                for (chunk_start, chunk) in (0..).step_by($crate::codec::APPEND_CHUNK).zip(out.chunks($crate::codec::APPEND_CHUNK)) {
                    let sql = format!(
                        "{INSERT_ROWS} access_records (seq, request_id, at, service_id, resident_id, purpose_id,
                         purpose_version, categories, basis, outcome, providers) VALUES {}",
                        PLACEHOLDERS.rows(11, chunk.len())
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for d in chunk {
                        let r = &d.record;
                        query = query
                            .bind($crate::codec::seq_i64(r.seq)?)
                            .bind(r.request.to_string())
                            .bind(millis(r.at))
                            .bind(r.service.as_str().to_owned())
                            .bind(r.resident.map(|x| x.to_string()))
                            .bind(r.purpose.as_str().to_owned())
                            .bind(r.purpose_version.map(i64::from))
                            .bind(to_json(&r.categories)?)
                            .bind(to_json(&r.basis)?)
                            .bind($crate::codec::outcome_column(&r.outcome).to_owned())
                            .bind(to_json(&r.providers)?);
                    }
                    query.execute(&mut *tx).await?;
                    let sql = format!(
                        "{INSERT_ROWS} log_leaves (seq, kind, salt, leaf_hash) VALUES {}",
                        PLACEHOLDERS.rows(4, chunk.len())
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (d, leaf) in chunk.iter().zip(&leaves[chunk_start..]) {
                        query = query
                            .bind($crate::codec::seq_i64(d.record.seq)?)
                            .bind(leaf.kind)
                            .bind(leaf.salt.to_vec())
                            .bind(leaf.hash.as_bytes().to_vec());
                    }
                    query.execute(&mut *tx).await?;
                }
                Ok($crate::StagedDecisions {
                    decisions: out,
                    commit: {
                        let store = self.clone();
                        Box::pin(async move { store.commit_batch(tx).await })
                    },
                })
            }

            async fn access_records(&self, q: &$crate::AccessQuery) -> $crate::StoreResult<Vec<renkei_domain::AccessRecord>> {
                // Optional filters as `($n IS NULL OR col = $n)` keep one statement for all queries,
                // except the resident: hidden in such a filter, the `(resident_id, seq)` index is not
                // used and a resident's page scans the log. The cursors bound `seq` on both sides,
                // so a page in either order is one range of that index, read from the end it starts
                // at (`ORDER BY seq DESC LIMIT` for the newest first).
                let (after, before) = $crate::sql::seq_bounds(q);
                let resident = if q.resident.is_some() {
                    "resident_id = $2"
                } else {
                    "($2 IS NULL OR resident_id = $2)"
                };
                let sql = format!(
                    "SELECT seq, request_id, at, service_id, resident_id, purpose_id, purpose_version, categories,
                     basis, outcome, providers FROM access_records
                     WHERE {resident} AND seq > $1 AND seq < $7
                     AND ($3 IS NULL OR service_id = $3)
                     AND ($4 IS NULL OR at >= $4)
                     AND ($5 IS NULL OR at < $5)
                     ORDER BY seq {} LIMIT $6",
                    q.order.sql()
                );
                sqlx::query_as::<_, $crate::codec::RawAccessRecord>(sqlx::AssertSqlSafe(sql))
                .bind(after)
                .bind(q.resident.map(|r| r.to_string()))
                .bind(q.service.as_ref().map(|s| s.as_str().to_owned()))
                .bind(q.since.map($crate::codec::millis))
                .bind(q.until.map($crate::codec::millis))
                .bind(i64::from(q.limit))
                .bind(before)
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn audit_search(&self, q: &$crate::AuditQuery) -> $crate::StoreResult<Vec<renkei_domain::LogEntry>> {
                // Only the filters given become conditions, so each query can use the index
                // that fits it (`(resident_id, seq)`, `(service_id, purpose_id, seq)`, `at`).
                let before = q.before_seq.map(|s| i64::try_from(s).unwrap_or(i64::MAX)).unwrap_or(i64::MAX);
                let mut access_params = vec![$crate::codec::SqlParam::Int(before)];
                let mut consent_params = access_params.clone();
                let mut access_where = format!("seq < {}", PLACEHOLDERS.list(1, 1));
                let mut consent_where = format!("e.log_seq < {}", PLACEHOLDERS.list(1, 1));
                let text = |s: &str| $crate::codec::SqlParam::Text(s.to_owned());
                let mut filters: Vec<(Option<&str>, Option<&str>, $crate::codec::SqlParam)> = Vec::new();
                if let Some(r) = q.resident {
                    filters.push((Some("resident_id ="), Some("c.resident_id ="), text(&r.to_string())));
                }
                if let Some(s) = &q.service {
                    filters.push((Some("service_id ="), Some("c.service_id ="), text(s.as_str())));
                }
                if let Some(p) = &q.purpose {
                    filters.push((Some("purpose_id ="), Some("c.purpose_id ="), text(p.as_str())));
                }
                // An outcome or basis is a property of access entries only.
                let access_only = q.outcome.is_some() || q.basis.is_some();
                match q.outcome {
                    Some($crate::AuditOutcome::Granted) => filters.push((Some("outcome ="), None, text("granted"))),
                    Some($crate::AuditOutcome::Denied) => filters.push((Some("outcome <>"), None, text("granted"))),
                    None => {}
                }
                if let Some(kind) = &q.basis {
                    // `AccessBasis` is stored as JSON with its tag first: `{"kind":"consent",…}`.
                    // INVARIANT: the kind is letters and underscores only (no LIKE wildcards).
                    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                        return Err($crate::StoreError::Invalid(format!("basis kind `{kind}`")));
                    }
                    filters.push((Some("basis LIKE"), None, $crate::codec::SqlParam::Text(format!("{{\"kind\":\"{kind}\"%"))));
                }
                if let Some(t) = q.since {
                    filters.push((Some("at >="), Some("e.at >="), $crate::codec::SqlParam::Int($crate::codec::millis(t))));
                }
                if let Some(t) = q.until {
                    filters.push((Some("at <"), Some("e.at <"), $crate::codec::SqlParam::Int($crate::codec::millis(t))));
                }
                for (access, consent, value) in filters {
                    if let Some(c) = consent {
                        consent_params.push(value.clone());
                        consent_where.push_str(&format!(" AND {c} {}", PLACEHOLDERS.list(consent_params.len(), 1)));
                    }
                    if let Some(c) = access {
                        access_params.push(value);
                        access_where.push_str(&format!(" AND {c} {}", PLACEHOLDERS.list(access_params.len(), 1)));
                    }
                }
                access_params.push($crate::codec::SqlParam::Int(i64::from(q.limit)));
                let sql = format!(
                    "SELECT seq, request_id, at, service_id, resident_id, purpose_id, purpose_version, categories,
                     basis, outcome, providers FROM access_records WHERE {access_where} ORDER BY seq DESC LIMIT {}",
                    PLACEHOLDERS.list(access_params.len(), 1)
                );
                // INVARIANT: `sql` is made of fixed column names and placeholders; values are bound.
                let mut query = sqlx::query_as::<_, $crate::codec::RawAccessRecord>(sqlx::AssertSqlSafe(sql));
                for p in access_params {
                    query = match p {
                        $crate::codec::SqlParam::Int(i) => query.bind(i),
                        $crate::codec::SqlParam::Text(s) => query.bind(s),
                    };
                }
                let mut entries: Vec<renkei_domain::LogEntry> = query
                    .fetch_all(&self.read)
                    .await?
                    .into_iter()
                    .map(|r| r.into_domain().map(renkei_domain::LogEntry::Access))
                    .collect::<$crate::StoreResult<_>>()?;
                if !access_only {
                    consent_params.push($crate::codec::SqlParam::Int(i64::from(q.limit)));
                    let sql = format!(
                        "{} WHERE {consent_where} ORDER BY e.log_seq DESC LIMIT {}",
                        consent_log_select!(),
                        PLACEHOLDERS.list(consent_params.len(), 1)
                    );
                    let mut query = sqlx::query_as::<_, $crate::codec::RawConsentLogEntry>(sqlx::AssertSqlSafe(sql));
                    for p in consent_params {
                        query = match p {
                            $crate::codec::SqlParam::Int(i) => query.bind(i),
                            $crate::codec::SqlParam::Text(s) => query.bind(s),
                        };
                    }
                    for r in query.fetch_all(&self.read).await? {
                        entries.push(renkei_domain::LogEntry::Consent(r.into_domain()?));
                    }
                }
                entries.sort_by_key(|e| std::cmp::Reverse(e.seq()));
                entries.truncate(q.limit as usize);
                Ok(entries)
            }

            async fn log_size(&self) -> $crate::StoreResult<u64> {
                let size: i64 = sqlx::query_scalar("SELECT size FROM log_head WHERE id = 1")
                    .fetch_one(&self.read)
                    .await?;
                u64::try_from(size).map_err(|_| $crate::StoreError::Corrupt(format!("negative log size {size}")))
            }

            async fn log_leaf_hashes(&self, from: u64, limit: u32) -> $crate::StoreResult<Vec<renkei_log::Hash>> {
                let from = $crate::codec::seq_i64(from)?;
                let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT seq, leaf_hash FROM log_leaves WHERE seq >= $1 ORDER BY seq LIMIT $2",
                )
                .bind(from)
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for (expected, (seq, hash)) in (from..).zip(rows) {
                    if seq != expected {
                        return Err($crate::StoreError::Corrupt(format!("log leaf {expected} is missing")));
                    }
                    out.push($crate::codec::hash32(&hash, "leaf hash")?);
                }
                Ok(out)
            }

            async fn read_log_hashes(&self, indexes: &[u64]) -> $crate::StoreResult<Vec<renkei_log::Hash>> {
                let mut found = std::collections::HashMap::with_capacity(indexes.len());
                let cached = self.upper_hashes.get(indexes);
                let missing: Vec<u64> = indexes
                    .iter()
                    .zip(&cached)
                    .filter_map(|(i, c)| match c {
                        Some(h) => {
                            found.insert(*i, *h);
                            None
                        }
                        None => Some(*i),
                    })
                    .collect();
                let mut read = Vec::with_capacity(missing.len());
                // Chunks keep the statement's parameter count well under every backend's limit.
                for chunk in missing.chunks(500) {
                    let list = chunk.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
                    let sql = format!("SELECT idx, hash FROM log_hashes WHERE idx IN ({list})");
                    // INVARIANT: `list` is made of u64 numbers only. Each list is new, so the
                    // statement is not kept prepared (it would only push useful ones out).
                    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .persistent(false)
                        .fetch_all(&self.read)
                        .await?;
                    for (idx, hash) in rows {
                        let (idx, hash) = ($crate::codec::seq_u64(idx)?, $crate::codec::hash32(&hash, "node hash")?);
                        found.insert(idx, hash);
                        read.push((idx, hash));
                    }
                }
                self.upper_hashes.keep(&read);
                indexes
                    .iter()
                    .map(|i| found.get(i).copied().ok_or_else(|| $crate::StoreError::NotFound(format!("log hash {i}"))))
                    .collect()
            }

            async fn integrate(
                &self,
                hashes: &[(u64, renkei_log::Hash)],
                checkpoint: &$crate::StoredCheckpoint,
            ) -> $crate::StoreResult<()> {
                // The integrator shares the one writer with the decision batches: its hashes
                // go in a few hundred per transaction, each committed like a batch (on SQLite
                // without an fsync of its own), so a decision batch never waits behind a whole
                // checkpoint's worth of rows. The checkpoint comes last, and is returned only
                // once it is durable, and with it every transaction before it.
                // INVARIANT: the tree's hashes are committed before the checkpoint that
                // covers them; hashes past the latest checkpoint are never served.
                for chunk in hashes.chunks($crate::codec::INTEGRATE_CHUNK) {
                    let mut tx = self.begin_batch().await?;
                    let sql = format!(
                        "{INSERT_ROWS} log_hashes (idx, hash) VALUES {} ON CONFLICT (idx) DO NOTHING",
                        PLACEHOLDERS.rows(2, chunk.len())
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (idx, hash) in chunk {
                        query = query.bind($crate::codec::seq_i64(*idx)?).bind(hash.as_bytes().to_vec());
                    }
                    query.execute(&mut *tx).await?;
                    // No wait of its own (nor, on SQLite, an fsync asked for): the
                    // checkpoint's wait below covers every transaction before it.
                    tx.commit().await?;
                }
                let mut tx = self.begin_batch().await?;
                sqlx::query(
                    "INSERT INTO log_checkpoints (size, root, note, signed_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (size) DO NOTHING",
                )
                .bind($crate::codec::seq_i64(checkpoint.size)?)
                .bind(&checkpoint.root.as_bytes()[..])
                .bind(&checkpoint.note)
                .bind($crate::codec::millis(checkpoint.signed_at))
                .execute(&mut *tx)
                .await?;
                self.commit_batch(tx).await?.wait().await?;
                Ok(())
            }

            async fn latest_checkpoint(&self) -> $crate::StoreResult<Option<$crate::StoredCheckpoint>> {
                let row: Option<(i64, Vec<u8>, String, i64)> = sqlx::query_as(
                    "SELECT size, root, note, signed_at FROM log_checkpoints ORDER BY size DESC LIMIT 1",
                )
                .fetch_optional(&self.read)
                .await?;
                row.map($crate::codec::checkpoint).transpose()
            }

            async fn checkpoint(&self, size: u64) -> $crate::StoreResult<Option<$crate::StoredCheckpoint>> {
                let row: Option<(i64, Vec<u8>, String, i64)> = sqlx::query_as(
                    "SELECT size, root, note, signed_at FROM log_checkpoints WHERE size = $1",
                )
                .bind($crate::codec::seq_i64(size)?)
                .fetch_optional(&self.read)
                .await?;
                row.map($crate::codec::checkpoint).transpose()
            }

            async fn checkpoints(&self) -> $crate::StoreResult<Vec<$crate::StoredCheckpoint>> {
                let rows: Vec<(i64, Vec<u8>, String, i64)> = sqlx::query_as(
                    "SELECT size, root, note, signed_at FROM log_checkpoints ORDER BY size",
                )
                .fetch_all(&self.read)
                .await?;
                rows.into_iter().map($crate::codec::checkpoint).collect()
            }

            async fn log_range(&self, from: u64, limit: u32) -> $crate::StoreResult<Vec<$crate::StoredEntry>> {
                let start = $crate::codec::seq_i64(from)?;
                let end = start.saturating_add(i64::from(limit));
                let leaves: Vec<(i64, String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
                    "SELECT seq, kind, salt, leaf_hash FROM log_leaves WHERE seq >= $1 AND seq < $2",
                )
                .bind(start)
                .bind(end)
                .fetch_all(&self.read)
                .await?;
                let access = sqlx::query_as::<_, $crate::codec::RawAccessRecord>(
                    "SELECT seq, request_id, at, service_id, resident_id, purpose_id, purpose_version, categories,
                     basis, outcome, providers FROM access_records WHERE seq >= $1 AND seq < $2",
                )
                .bind(start)
                .bind(end)
                .fetch_all(&self.read)
                .await?;
                let consents = sqlx::query_as::<_, $crate::codec::RawConsentLogEntry>(concat!(
                    consent_log_select!(), " WHERE e.log_seq >= $1 AND e.log_seq < $2"
                ))
                .bind(start)
                .bind(end)
                .fetch_all(&self.read)
                .await?;
                let operators = sqlx::query_as::<_, $crate::codec::RawOperatorLogEntry>(
                    "SELECT log_seq, at, actor, action FROM operator_actions WHERE log_seq >= $1 AND log_seq < $2",
                )
                .bind(start)
                .bind(end)
                .fetch_all(&self.read)
                .await?;
                let fulfilments = sqlx::query_as::<_, $crate::codec::RawFulfilment>(concat!(
                    fulfilment_select!(), " WHERE log_seq >= $1 AND log_seq < $2"
                ))
                .bind(start)
                .bind(end)
                .fetch_all(&self.read)
                .await?;
                Ok($crate::codec::assemble_range(start, end, leaves, access, consents, operators, fulfilments))
            }

            async fn record_operator_action(
                &self,
                actor: &renkei_domain::OperatorActor,
                action: &renkei_domain::OperatorAction,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<renkei_domain::OperatorLogEntry> {
                let mut tx = self.write.begin().await?;
                let seq = reserve_log_seqs(&mut tx, 1).await?;
                sqlx::query("INSERT INTO operator_actions (log_seq, at, actor, action) VALUES ($1, $2, $3, $4)")
                    .bind(seq)
                    .bind($crate::codec::millis(at))
                    .bind($crate::codec::to_json(actor)?)
                    .bind($crate::codec::to_json(action)?)
                    .execute(&mut *tx)
                    .await?;
                let entry = renkei_domain::OperatorLogEntry {
                    seq: $crate::codec::seq_u64(seq)?,
                    at: $crate::codec::time($crate::codec::millis(at))?,
                    actor: actor.clone(),
                    action: action.clone(),
                };
                insert_leaf(&mut tx, seq, &renkei_domain::LogEntry::Operator(entry.clone())).await?;
                tx.commit().await?;
                Ok(entry)
            }

            async fn record_fulfilment(
                &self,
                fulfilment: &$crate::Fulfilment,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<renkei_domain::FulfilmentLogEntry> {
                let mut tx = self.write.begin().await?;
                let seq = reserve_log_seqs(&mut tx, 1).await?;
                sqlx::query("INSERT INTO fulfilments (log_seq, request_id, at, service_id, resident_id, providers) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(seq)
                    .bind(fulfilment.request.to_string())
                    .bind($crate::codec::millis(at))
                    .bind(fulfilment.service.as_str())
                    .bind(fulfilment.resident.to_string())
                    .bind($crate::codec::to_json(&fulfilment.providers)?)
                    .execute(&mut *tx)
                    .await?;
                let entry = renkei_domain::FulfilmentLogEntry {
                    seq: $crate::codec::seq_u64(seq)?,
                    request: fulfilment.request,
                    at: $crate::codec::time($crate::codec::millis(at))?,
                    service: fulfilment.service.clone(),
                    resident: fulfilment.resident,
                    providers: fulfilment.providers.clone(),
                };
                insert_leaf(&mut tx, seq, &renkei_domain::LogEntry::Fulfilment(entry.clone())).await?;
                tx.commit().await?;
                Ok(entry)
            }

            async fn operator_log(
                &self,
                before: Option<u64>,
                limit: u32,
            ) -> $crate::StoreResult<Vec<renkei_domain::OperatorLogEntry>> {
                let before = match before {
                    Some(b) => $crate::codec::seq_i64(b)?,
                    None => i64::MAX,
                };
                sqlx::query_as::<_, $crate::codec::RawOperatorLogEntry>(
                    "SELECT log_seq, at, actor, action FROM operator_actions WHERE log_seq < $1
                     ORDER BY log_seq DESC LIMIT $2",
                )
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect()
            }

            async fn resident_log(
                &self,
                resident: renkei_domain::ResidentId,
                q: &$crate::AccessQuery,
            ) -> $crate::StoreResult<Vec<(renkei_domain::LogEntry, $crate::StoredLeaf)>> {
                let scoped = $crate::AccessQuery { resident: Some(resident), ..q.clone() };
                let access = self.access_records(&scoped).await?;
                let (after, before) = $crate::sql::seq_bounds(q);
                let sql = format!(
                    "{} WHERE c.resident_id = $1 AND e.log_seq > $2 AND e.log_seq < $7
                     AND ($3 IS NULL OR c.service_id = $3)
                     AND ($4 IS NULL OR e.at >= $4)
                     AND ($5 IS NULL OR e.at < $5)
                     ORDER BY e.log_seq {} LIMIT $6",
                    consent_log_select!(),
                    q.order.sql()
                );
                let consents = sqlx::query_as::<_, $crate::codec::RawConsentLogEntry>(sqlx::AssertSqlSafe(sql))
                .bind(resident.to_string())
                .bind(after)
                .bind(q.service.as_ref().map(|s| s.as_str().to_owned()))
                .bind(q.since.map($crate::codec::millis))
                .bind(q.until.map($crate::codec::millis))
                .bind(i64::from(q.limit))
                .bind(before)
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect::<$crate::StoreResult<Vec<_>>>()?;
                let sql = format!(
                    "{} WHERE resident_id = $1 AND log_seq > $2 AND log_seq < $7
                     AND ($3 IS NULL OR service_id = $3)
                     AND ($4 IS NULL OR at >= $4)
                     AND ($5 IS NULL OR at < $5)
                     ORDER BY log_seq {} LIMIT $6",
                    fulfilment_select!(),
                    q.order.sql()
                );
                let fulfilments = sqlx::query_as::<_, $crate::codec::RawFulfilment>(sqlx::AssertSqlSafe(sql))
                .bind(resident.to_string())
                .bind(after)
                .bind(q.service.as_ref().map(|s| s.as_str().to_owned()))
                .bind(q.since.map($crate::codec::millis))
                .bind(q.until.map($crate::codec::millis))
                .bind(i64::from(q.limit))
                .bind(before)
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .map(|r| r.into_domain())
                .collect::<$crate::StoreResult<Vec<_>>>()?;
                let mut entries: Vec<renkei_domain::LogEntry> = access
                    .into_iter()
                    .map(renkei_domain::LogEntry::Access)
                    .chain(consents.into_iter().map(renkei_domain::LogEntry::Consent))
                    .chain(fulfilments.into_iter().map(renkei_domain::LogEntry::Fulfilment))
                    .collect();
                // Both lists run from the same end; merged, the page is the first `limit`.
                entries.sort_by_key(|e| e.seq());
                if q.order == $crate::LogOrder::NewestFirst {
                    entries.reverse();
                }
                entries.truncate(q.limit as usize);
                let mut out = Vec::with_capacity(entries.len());
                // The page's leaves in one statement.
                let mut leaves: std::collections::HashMap<i64, (String, Vec<u8>, Vec<u8>)> = std::collections::HashMap::new();
                if !entries.is_empty() {
                    let sql = format!(
                        "SELECT seq, kind, salt, leaf_hash FROM log_leaves WHERE seq IN ({})",
                        PLACEHOLDERS.list(1, entries.len())
                    );
                    let mut query = sqlx::query_as::<_, (i64, String, Vec<u8>, Vec<u8>)>(sqlx::AssertSqlSafe(sql));
                    for e in &entries {
                        query = query.bind($crate::codec::seq_i64(e.seq())?);
                    }
                    for (seq, kind, salt, leaf_hash) in query.fetch_all(&self.read).await? {
                        leaves.insert(seq, (kind, salt, leaf_hash));
                    }
                }
                for entry in entries {
                    let (kind, salt, leaf_hash) = leaves
                        .remove(&$crate::codec::seq_i64(entry.seq())?)
                        .ok_or_else(|| $crate::StoreError::Corrupt(format!("log entry {} has no leaf", entry.seq())))?;
                    let leaf = $crate::StoredLeaf { seq: entry.seq(), kind, salt, leaf_hash };
                    out.push((entry, leaf));
                }
                Ok(out)
            }

            async fn take_due_messages(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::StoreResult<Vec<$crate::DueMessage>> {
                use $crate::codec::millis;
                let mut tx = self.write.begin().await?;
                let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
                    "SELECT id, service_id, event, attempts FROM webhook_outbox
                     WHERE delivered_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= $1
                     ORDER BY next_attempt_at LIMIT $2",
                )
                .bind(millis(now))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?;
                let mut due = Vec::with_capacity(rows.len());
                for (id, service, event, attempts) in rows {
                    // Only the replica whose update sees the old lease takes the message.
                    let taken = sqlx::query(
                        "UPDATE webhook_outbox SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at <= $3
                         AND delivered_at IS NULL",
                    )
                    .bind(millis(lease_until))
                    .bind(&id)
                    .bind(millis(now))
                    .execute(&mut *tx)
                    .await?;
                    if taken.rows_affected() == 1 {
                        due.push($crate::DueMessage {
                            message: $crate::OutboxMessage {
                                id: $crate::codec::parse(&id, "outbox id")?,
                                service: $crate::codec::parse(&service, "service id")?,
                                event: $crate::codec::from_json(&event, "outbox event")?,
                            },
                            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                        });
                    }
                }
                tx.commit().await?;
                Ok(due)
            }

            async fn record_delivery(
                &self,
                id: uuid::Uuid,
                outcome: $crate::DeliveryOutcome,
                error: Option<&str>,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<()> {
                use $crate::codec::millis;
                let (delivered, given_up, next) = match outcome {
                    $crate::DeliveryOutcome::Delivered => (Some(millis(at)), None, millis(at)),
                    $crate::DeliveryOutcome::GiveUp => (None, Some(millis(at)), millis(at)),
                    $crate::DeliveryOutcome::RetryAt(t) => (None, None, millis(t)),
                };
                sqlx::query(
                    "UPDATE webhook_outbox SET attempts = attempts + 1, delivered_at = $1, given_up_at = $2,
                     next_attempt_at = $3, last_error = $4 WHERE id = $5",
                )
                .bind(delivered)
                .bind(given_up)
                .bind(next)
                .bind(error)
                .bind(id.to_string())
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn ensure_secret(
                &self,
                name: &str,
                candidate: &[u8],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<Vec<u8>> {
                sqlx::query("INSERT INTO hub_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind(candidate)
                    .bind($crate::codec::millis(at))
                    .execute(&self.write)
                    .await?;
                Ok(sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM hub_secrets WHERE name = $1")
                    .bind(name)
                    .fetch_one(&self.write)
                    .await?)
            }

            async fn stored_secrets(&self) -> $crate::StoreResult<Vec<$crate::StoredSecret>> {
                let hub = sqlx::query_as::<_, (String, Vec<u8>)>("SELECT name, value FROM hub_secrets ORDER BY name")
                    .fetch_all(&self.write)
                    .await?;
                let keys = sqlx::query_as::<_, (String, Vec<u8>)>("SELECT kid, pkcs8 FROM signing_keys WHERE pkcs8 IS NOT NULL ORDER BY kid")
                    .fetch_all(&self.write)
                    .await?;
                Ok(hub
                    .into_iter()
                    .map(|(name, value)| $crate::StoredSecret { slot: $crate::SecretSlot::Hub(name), value })
                    .chain(keys.into_iter().map(|(kid, value)| $crate::StoredSecret {
                        slot: $crate::SecretSlot::SigningKey(kid),
                        value,
                    }))
                    .collect())
            }

            async fn replace_secrets(
                &self,
                replacements: &[$crate::SecretReplacement],
            ) -> $crate::StoreResult<bool> {
                let mut tx = self.write.begin().await?;
                for r in replacements {
                    let statement = match r.slot {
                        $crate::SecretSlot::Hub(_) => {
                            "UPDATE hub_secrets SET value = $1 WHERE name = $2 AND value = $3"
                        }
                        $crate::SecretSlot::SigningKey(_) => {
                            "UPDATE signing_keys SET pkcs8 = $1 WHERE kid = $2 AND pkcs8 = $3"
                        }
                    };
                    let ($crate::SecretSlot::Hub(key) | $crate::SecretSlot::SigningKey(key)) = &r.slot;
                    let changed = sqlx::query(statement)
                        .bind(&r.value)
                        .bind(key)
                        .bind(&r.expected)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if changed != 1 {
                        // Dropped, the transaction rolls back what it changed so far.
                        return Ok(false);
                    }
                }
                tx.commit().await?;
                Ok(true)
            }
        }

        async fn insert_consent_event(
            tx: &mut sqlx::Transaction<'_, $db>,
            consent: &renkei_domain::Consent,
            kind: renkei_domain::ConsentEventKind,
            at: chrono::DateTime<chrono::Utc>,
            actor: &renkei_domain::Actor,
        ) -> $crate::StoreResult<()> {
            let seq = reserve_log_seqs(tx, 1).await?;
            sqlx::query("INSERT INTO consent_events (consent_id, kind, at, actor, log_seq) VALUES ($1, $2, $3, $4, $5)")
                .bind(consent.id.to_string())
                .bind(kind.as_str())
                .bind($crate::codec::millis(at))
                .bind($crate::codec::to_json(actor)?)
                .bind(seq)
                .execute(&mut **tx)
                .await?;
            let entry = renkei_domain::LogEntry::Consent(renkei_domain::ConsentLogEntry {
                seq: $crate::codec::seq_u64(seq)?,
                consent: consent.id,
                resident: consent.resident,
                service: consent.purpose.service.clone(),
                purpose: consent.purpose.purpose.clone(),
                purpose_version: consent.purpose.version,
                change: kind,
                at: $crate::codec::time($crate::codec::millis(at))?,
                actor: actor.clone(),
            });
            insert_leaf(tx, seq, &entry).await
        }

        /// Takes `count` positions in the log. The `log_head` row lock this takes is held to
        /// commit, so appends from every replica are serialised and the sequence has no gaps.
        async fn reserve_log_seqs(tx: &mut sqlx::Transaction<'_, $db>, count: i64) -> $crate::StoreResult<i64> {
            let size: i64 = sqlx::query_scalar("UPDATE log_head SET size = size + $1 WHERE id = 1 RETURNING size")
                .bind(count)
                .fetch_one(&mut **tx)
                .await?;
            Ok(size - count)
        }

        /// Writes the Merkle leaf of a log entry, with a fresh random salt.
        async fn insert_leaf(
            tx: &mut sqlx::Transaction<'_, $db>,
            seq: i64,
            entry: &renkei_domain::LogEntry,
        ) -> $crate::StoreResult<()> {
            let leaf = $crate::codec::new_leaf(entry);
            sqlx::query("INSERT INTO log_leaves (seq, kind, salt, leaf_hash) VALUES ($1, $2, $3, $4)")
                .bind(seq)
                .bind(leaf.kind)
                .bind(&leaf.salt[..])
                .bind(&leaf.hash.as_bytes()[..])
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        async fn insert_outbox(
            tx: &mut sqlx::Transaction<'_, $db>,
            m: &$crate::OutboxMessage,
            at: chrono::DateTime<chrono::Utc>,
        ) -> $crate::StoreResult<()> {
            sqlx::query(
                "INSERT INTO webhook_outbox (id, service_id, event, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(m.id.to_string())
            .bind(m.service.as_str())
            .bind($crate::codec::to_json(&m.event)?)
            .bind($crate::codec::millis(at))
            .execute(&mut **tx)
            .await?;
            Ok(())
        }
    };
}

/// A query's cursors as the exclusive bounds `seq > after AND seq < before` (open ends as
/// -1 and `i64::MAX`; a cursor past `i64::MAX` is taken as `i64::MAX`).
pub(crate) fn seq_bounds(q: &crate::AccessQuery) -> (i64, i64) {
    let after = q
        .after_seq
        .map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX));
    let before = q
        .before_seq
        .map_or(i64::MAX, |s| i64::try_from(s).unwrap_or(i64::MAX));
    (after, before)
}

macro_rules! purpose_columns {
    () => {
        "service_id, purpose_id, version, title_ja, title_en, description_ja, description_en, categories, retention_days, legal_basis"
    };
}

macro_rules! fulfilment_select {
    () => {
        "SELECT log_seq, request_id, at, service_id, resident_id, providers FROM fulfilments"
    };
}

macro_rules! consent_log_select {
    () => {
        "SELECT e.log_seq, e.consent_id, c.resident_id, c.service_id, c.purpose_id, c.purpose_version, e.kind, e.at, e.actor
         FROM consent_events e JOIN consents c ON c.id = e.consent_id"
    };
}

macro_rules! consent_columns {
    () => {
        "id, resident_id, service_id, purpose_id, purpose_version, categories, legal_basis, granted_at, expires_at, given_via, given_by, revoked_at"
    };
}

pub(crate) use {
    consent_columns, consent_log_select, fulfilment_select, impl_store, purpose_columns,
};
