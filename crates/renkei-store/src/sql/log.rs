//! The log's entries: taking log positions and writing leaves, reading access records, a
//! resident's log and the operators' audit search, and appending operators' acts and
//! fulfilments.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use renkei_domain::{
    AccessBasis, AccessOutcome, AccessRecord, FulfilmentLogEntry, LogEntry, OperatorAction,
    OperatorActor, OperatorLogEntry, PurposeId, ResidentId, ServiceId,
};
use sqlx::query::QueryAs;

use super::{Args, Backend, Conn, Db, PLACEHOLDERS, all};
use crate::codec::{self, SqlParam};
use crate::rows::{
    RawAccessRecord, RawConsentLogEntry, RawFulfilment, RawOperatorLogEntry, access_columns,
    consent_log_select, fulfilment_select,
};
use crate::{
    AccessQuery, AuditOutcome, AuditQuery, Disclosure, Fulfilment, LogOrder, StoreError,
    StoreResult, StoredLeaf,
};

pub(super) async fn access_records(
    store: &Backend,
    q: &AccessQuery,
) -> StoreResult<Vec<AccessRecord>> {
    // Optional filters as `($n IS NULL OR col = $n)` keep one statement for all queries,
    // except the resident: hidden in such a filter, the `(resident_id, seq)` index is not
    // used and a resident's page scans the log. The cursors bound `seq` on both sides,
    // so a page in either order is one range of that index, read from the end it starts
    // at (`ORDER BY seq DESC LIMIT` for the newest first).
    let (after, before) = seq_bounds(q);
    let resident = if q.resident.is_some() {
        "resident_id = $2"
    } else {
        "($2 IS NULL OR resident_id = $2)"
    };
    let sql = format!(
        "SELECT {} FROM access_records
         WHERE {resident} AND seq > $1 AND seq < $7
         AND ($3 IS NULL OR service_id = $3)
         AND ($4 IS NULL OR at >= $4)
         AND ($5 IS NULL OR at < $5)
         ORDER BY seq {} LIMIT $6",
        access_columns!(),
        q.order.sql()
    );
    all(
        sqlx::query_as::<_, RawAccessRecord>(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(q.resident.map(|r| r.to_string()))
            .bind(q.service.as_ref().map(|s| s.as_str().to_owned()))
            .bind(q.since.map(codec::millis))
            .bind(q.until.map(codec::millis))
            .bind(i64::from(q.limit))
            .bind(before),
        &store.read,
    )
    .await
}

pub(super) async fn audit_search(store: &Backend, q: &AuditQuery) -> StoreResult<Vec<LogEntry>> {
    // Only the filters given become conditions, so each query can use the index
    // that fits it (`(resident_id, seq)`, `(service_id, purpose_id, seq)`, `at`).
    let before = q
        .before_seq
        .map(|s| i64::try_from(s).unwrap_or(i64::MAX))
        .unwrap_or(i64::MAX);
    let mut access_params = vec![SqlParam::Int(before)];
    let mut consent_params = access_params.clone();
    let mut access_where = format!("seq < {}", PLACEHOLDERS.list(1, 1));
    let mut consent_where = format!("e.log_seq < {}", PLACEHOLDERS.list(1, 1));
    let text = |s: &str| SqlParam::Text(s.to_owned());
    let mut filters: Vec<(Option<&str>, Option<&str>, SqlParam)> = Vec::new();
    if let Some(r) = q.resident {
        filters.push((
            Some("resident_id ="),
            Some("c.resident_id ="),
            text(&r.to_string()),
        ));
    }
    if let Some(s) = &q.service {
        filters.push((
            Some("service_id ="),
            Some("c.service_id ="),
            text(s.as_str()),
        ));
    }
    if let Some(p) = &q.purpose {
        filters.push((
            Some("purpose_id ="),
            Some("c.purpose_id ="),
            text(p.as_str()),
        ));
    }
    // An outcome or basis is a property of access entries only.
    let access_only = q.outcome.is_some() || q.basis.is_some();
    match q.outcome {
        Some(AuditOutcome::Granted) => filters.push((Some("outcome ="), None, text("granted"))),
        Some(AuditOutcome::Denied) => filters.push((Some("outcome <>"), None, text("granted"))),
        None => {}
    }
    if let Some(kind) = &q.basis {
        // `AccessBasis` is stored as JSON with its tag first: `{"kind":"consent",…}`.
        // INVARIANT: the kind is letters and underscores only (no LIKE wildcards).
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            return Err(StoreError::Invalid(format!("basis kind `{kind}`")));
        }
        filters.push((
            Some("basis LIKE"),
            None,
            SqlParam::Text(format!("{{\"kind\":\"{kind}\"%")),
        ));
    }
    if let Some(t) = q.since {
        filters.push((
            Some("at >="),
            Some("e.at >="),
            SqlParam::Int(codec::millis(t)),
        ));
    }
    if let Some(t) = q.until {
        filters.push((
            Some("at <"),
            Some("e.at <"),
            SqlParam::Int(codec::millis(t)),
        ));
    }
    for (access, consent, value) in filters {
        if let Some(c) = consent {
            consent_params.push(value.clone());
            consent_where.push_str(&format!(
                " AND {c} {}",
                PLACEHOLDERS.list(consent_params.len(), 1)
            ));
        }
        if let Some(c) = access {
            access_params.push(value);
            access_where.push_str(&format!(
                " AND {c} {}",
                PLACEHOLDERS.list(access_params.len(), 1)
            ));
        }
    }
    access_params.push(SqlParam::Int(i64::from(q.limit)));
    let sql = format!(
        "SELECT {} FROM access_records WHERE {access_where} ORDER BY seq DESC LIMIT {}",
        access_columns!(),
        PLACEHOLDERS.list(access_params.len(), 1)
    );
    // INVARIANT: `sql` is made of fixed column names and placeholders; values are bound.
    let query = sqlx::query_as::<_, RawAccessRecord>(sqlx::AssertSqlSafe(sql));
    let access = all(bind_params(query, access_params), &store.read).await?;
    let mut entries: Vec<LogEntry> = access.into_iter().map(LogEntry::Access).collect();
    if !access_only {
        consent_params.push(SqlParam::Int(i64::from(q.limit)));
        let sql = format!(
            "{} WHERE {consent_where} ORDER BY e.log_seq DESC LIMIT {}",
            consent_log_select!(),
            PLACEHOLDERS.list(consent_params.len(), 1)
        );
        let query = sqlx::query_as::<_, RawConsentLogEntry>(sqlx::AssertSqlSafe(sql));
        let consents = all(bind_params(query, consent_params), &store.read).await?;
        entries.extend(consents.into_iter().map(LogEntry::Consent));
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.seq()));
    entries.truncate(q.limit as usize);
    Ok(entries)
}

pub(super) async fn log_size(store: &Backend) -> StoreResult<u64> {
    let size: i64 = sqlx::query_scalar("SELECT size FROM log_head WHERE id = 1")
        .fetch_one(&store.read)
        .await?;
    u64::try_from(size).map_err(|_| StoreError::Corrupt(format!("negative log size {size}")))
}

pub(super) async fn record_operator_action(
    store: &Backend,
    actor: &OperatorActor,
    action: &OperatorAction,
    at: DateTime<Utc>,
) -> StoreResult<OperatorLogEntry> {
    let mut tx = store.write.begin().await?;
    let entry = append_operator_action(&mut tx, actor, action, at).await?;
    tx.commit().await?;
    Ok(entry)
}

/// Appends an operator's act to the log inside the caller's transaction.
pub(super) async fn append_operator_action(
    conn: &mut Conn,
    actor: &OperatorActor,
    action: &OperatorAction,
    at: DateTime<Utc>,
) -> StoreResult<OperatorLogEntry> {
    let seq = reserve_log_seqs(&mut *conn, 1).await?;
    // The resident an act names (an audit search of them) finds it in their history.
    sqlx::query(
        "INSERT INTO operator_actions (log_seq, at, actor, action, resident_id)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(seq)
    .bind(codec::millis(at))
    .bind(codec::to_json(actor)?)
    .bind(codec::to_json(action)?)
    .bind(action.resident().map(|r| r.to_string()))
    .execute(&mut *conn)
    .await?;
    let entry = OperatorLogEntry {
        seq: codec::seq_u64(seq)?,
        at: codec::time(codec::millis(at))?,
        actor: actor.clone(),
        action: action.clone(),
    };
    insert_leaf(&mut *conn, seq, &LogEntry::Operator(entry.clone())).await?;
    Ok(entry)
}

pub(super) async fn record_fulfilment(
    store: &Backend,
    fulfilment: &Fulfilment,
    at: DateTime<Utc>,
) -> StoreResult<FulfilmentLogEntry> {
    let mut tx = store.write.begin().await?;
    let seq = reserve_log_seqs(&mut tx, 1).await?;
    sqlx::query("INSERT INTO fulfilments (log_seq, request_id, at, service_id, resident_id, providers) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(seq)
        .bind(fulfilment.request.to_string())
        .bind(codec::millis(at))
        .bind(fulfilment.service.as_str())
        .bind(fulfilment.resident.to_string())
        .bind(codec::to_json(&fulfilment.providers)?)
        .execute(&mut *tx)
        .await?;
    let entry = FulfilmentLogEntry {
        seq: codec::seq_u64(seq)?,
        request: fulfilment.request,
        at: codec::time(codec::millis(at))?,
        service: fulfilment.service.clone(),
        resident: fulfilment.resident,
        providers: fulfilment.providers.clone(),
    };
    insert_leaf(&mut tx, seq, &LogEntry::Fulfilment(entry.clone())).await?;
    tx.commit().await?;
    Ok(entry)
}

pub(super) async fn record_disclosure(
    store: &Backend,
    disclosure: &Disclosure,
    at: DateTime<Utc>,
) -> StoreResult<AccessRecord> {
    let mut tx = store.write.begin().await?;
    let seq = reserve_log_seqs(&mut tx, 1).await?;
    let record = AccessRecord {
        seq: codec::seq_u64(seq)?,
        request: disclosure.request,
        at: codec::time(codec::millis(at))?,
        service: ServiceId::data_subject(),
        resident: Some(disclosure.resident),
        purpose: PurposeId::data_subject_access(),
        purpose_version: None,
        categories: disclosure.categories.clone(),
        basis: AccessBasis::DataSubjectAccess {
            proxy: disclosure.proxy,
        },
        outcome: AccessOutcome::Granted,
        providers: disclosure.providers.clone(),
    };
    let leaf = codec::new_leaf(&LogEntry::Access(record.clone()));
    super::decisions::append_records(&mut tx, &[&record], &[leaf]).await?;
    tx.commit().await?;
    Ok(record)
}

pub(super) async fn operator_log(
    store: &Backend,
    before: Option<u64>,
    limit: u32,
) -> StoreResult<Vec<OperatorLogEntry>> {
    let before = match before {
        Some(b) => codec::seq_i64(b)?,
        None => i64::MAX,
    };
    all(
        sqlx::query_as::<_, RawOperatorLogEntry>(
            "SELECT log_seq, at, actor, action FROM operator_actions WHERE log_seq < $1
         ORDER BY log_seq DESC LIMIT $2",
        )
        .bind(before)
        .bind(i64::from(limit)),
        &store.read,
    )
    .await
}

pub(super) async fn resident_log(
    store: &Backend,
    resident: ResidentId,
    q: &AccessQuery,
) -> StoreResult<Vec<(LogEntry, StoredLeaf)>> {
    let scoped = AccessQuery {
        resident: Some(resident),
        ..q.clone()
    };
    let access = access_records(store, &scoped).await?;
    let (after, before) = seq_bounds(q);
    let sql = format!(
        "{} WHERE c.resident_id = $1 AND e.log_seq > $2 AND e.log_seq < $7
         AND ($3 IS NULL OR c.service_id = $3)
         AND ($4 IS NULL OR e.at >= $4)
         AND ($5 IS NULL OR e.at < $5)
         ORDER BY e.log_seq {} LIMIT $6",
        consent_log_select!(),
        q.order.sql()
    );
    let consents = all(
        sqlx::query_as::<_, RawConsentLogEntry>(sqlx::AssertSqlSafe(sql))
            .bind(resident.to_string())
            .bind(after)
            .bind(q.service.as_ref().map(|s| s.as_str().to_owned()))
            .bind(q.since.map(codec::millis))
            .bind(q.until.map(codec::millis))
            .bind(i64::from(q.limit))
            .bind(before),
        &store.read,
    )
    .await?;
    let sql = format!(
        "{} WHERE resident_id = $1 AND log_seq > $2 AND log_seq < $7
         AND ($3 IS NULL OR service_id = $3)
         AND ($4 IS NULL OR at >= $4)
         AND ($5 IS NULL OR at < $5)
         ORDER BY log_seq {} LIMIT $6",
        fulfilment_select!(),
        q.order.sql()
    );
    let fulfilments = all(
        sqlx::query_as::<_, RawFulfilment>(sqlx::AssertSqlSafe(sql))
            .bind(resident.to_string())
            .bind(after)
            .bind(q.service.as_ref().map(|s| s.as_str().to_owned()))
            .bind(q.since.map(codec::millis))
            .bind(q.until.map(codec::millis))
            .bind(i64::from(q.limit))
            .bind(before),
        &store.read,
    )
    .await?;
    // Operators' searches naming the resident concern no one service: a page of one
    // service's entries leaves them out.
    let operators = if q.service.is_some() {
        Vec::new()
    } else {
        all(
            sqlx::query_as::<_, RawOperatorLogEntry>(sqlx::AssertSqlSafe(format!(
                "SELECT log_seq, at, actor, action FROM operator_actions
                 WHERE resident_id = $1 AND log_seq > $2 AND log_seq < $6
                 AND ($3 IS NULL OR at >= $3)
                 AND ($4 IS NULL OR at < $4)
                 ORDER BY log_seq {} LIMIT $5",
                q.order.sql()
            )))
            .bind(resident.to_string())
            .bind(after)
            .bind(q.since.map(codec::millis))
            .bind(q.until.map(codec::millis))
            .bind(i64::from(q.limit))
            .bind(before),
            &store.read,
        )
        .await?
    };
    let mut entries: Vec<LogEntry> = access
        .into_iter()
        .map(LogEntry::Access)
        .chain(consents.into_iter().map(LogEntry::Consent))
        .chain(fulfilments.into_iter().map(LogEntry::Fulfilment))
        .chain(operators.into_iter().map(LogEntry::Operator))
        .collect();
    // Both lists run from the same end; merged, the page is the first `limit`.
    entries.sort_by_key(|e| e.seq());
    if q.order == LogOrder::NewestFirst {
        entries.reverse();
    }
    entries.truncate(q.limit as usize);
    let mut out = Vec::with_capacity(entries.len());
    // The page's leaves in one statement.
    let mut leaves: HashMap<i64, (String, Vec<u8>, Vec<u8>)> = HashMap::new();
    if !entries.is_empty() {
        let sql = format!(
            "SELECT seq, kind, salt, leaf_hash FROM log_leaves WHERE seq IN ({})",
            PLACEHOLDERS.list(1, entries.len())
        );
        let mut query =
            sqlx::query_as::<_, (i64, String, Vec<u8>, Vec<u8>)>(sqlx::AssertSqlSafe(sql));
        for e in &entries {
            query = query.bind(codec::seq_i64(e.seq())?);
        }
        for (seq, kind, salt, leaf_hash) in query.fetch_all(&store.read).await? {
            leaves.insert(seq, (kind, salt, leaf_hash));
        }
    }
    for entry in entries {
        let (kind, salt, leaf_hash) = leaves
            .remove(&codec::seq_i64(entry.seq())?)
            .ok_or_else(|| StoreError::Corrupt(format!("log entry {} has no leaf", entry.seq())))?;
        let leaf = StoredLeaf {
            seq: entry.seq(),
            kind,
            salt,
            leaf_hash,
        };
        out.push((entry, leaf));
    }
    Ok(out)
}

/// Takes `count` positions in the log. The `log_head` row lock this takes is held to
/// commit, so appends from every replica are serialised and the sequence has no gaps.
pub(super) async fn reserve_log_seqs(conn: &mut Conn, count: i64) -> StoreResult<i64> {
    let size: i64 =
        sqlx::query_scalar("UPDATE log_head SET size = size + $1 WHERE id = 1 RETURNING size")
            .bind(count)
            .fetch_one(&mut *conn)
            .await?;
    Ok(size - count)
}

/// Writes the Merkle leaf of a log entry, with a fresh random salt.
pub(super) async fn insert_leaf(conn: &mut Conn, seq: i64, entry: &LogEntry) -> StoreResult<()> {
    let leaf = codec::new_leaf(entry);
    sqlx::query("INSERT INTO log_leaves (seq, kind, salt, leaf_hash) VALUES ($1, $2, $3, $4)")
        .bind(seq)
        .bind(leaf.kind)
        .bind(&leaf.salt[..])
        .bind(&leaf.hash.as_bytes()[..])
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Binds the parameters of a statement built at run time, in order.
fn bind_params<R>(
    mut query: QueryAs<'_, Db, R, Args>,
    params: Vec<SqlParam>,
) -> QueryAs<'_, Db, R, Args> {
    for p in params {
        query = match p {
            SqlParam::Int(i) => query.bind(i),
            SqlParam::Text(s) => query.bind(s),
        };
    }
    query
}

/// A query's cursors as the exclusive bounds `seq > after AND seq < before` (open ends as
/// -1 and `i64::MAX`; a cursor past `i64::MAX` is taken as `i64::MAX`).
fn seq_bounds(q: &AccessQuery) -> (i64, i64) {
    let after = q
        .after_seq
        .map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX));
    let before = q
        .before_seq
        .map_or(i64::MAX, |s| i64::try_from(s).unwrap_or(i64::MAX));
    (after, before)
}
