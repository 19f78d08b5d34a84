//! What a storage failure is called in the log: its kind and, for a database's own error,
//! the SQLSTATE, never a message that could quote a row.

use crate::StoreError;

impl StoreError {
    /// Why storage failed, in words free of personal data: the error's kind, and for a
    /// database's own error its kind, SQLSTATE and constraint, never its message (which
    /// may quote the values of a row). The hub logs this for a failure it answers as
    /// `internal`.
    pub fn cause(&self) -> String {
        match self {
            Self::Database(e) | Self::Unavailable(e) => sqlx_cause(e),
            Self::NotFound(_) => "not found".to_owned(),
            Self::ConsentAlreadyActive(_) => "consent already active".to_owned(),
            Self::ConsentNotActive(_) => "consent not active".to_owned(),
            Self::Stale(_) => "changed meanwhile".to_owned(),
            Self::Invalid(_) => "invalid input".to_owned(),
            Self::LocatorsRefused(e) => format!("locator batch refused: {}", e.code()),
            // The store writes these messages itself: positions and enum values, no rows.
            Self::Corrupt(what) => format!("corrupt data: {what}"),
            Self::Migrate(_) => "migration failed".to_owned(),
            Self::Sync(e) => format!("fsync failed: {}", e.kind()),
            Self::OpenToOthers { .. } => "database file open to others".to_owned(),
            Self::CannotWrite(why) => format!("cannot write: {why}"),
            Self::File { source, .. } => format!("file: {}", source.kind()),
        }
    }
}

fn sqlx_cause(e: &sqlx::Error) -> String {
    use sqlx::Error as E;
    match e {
        E::Database(db) => {
            let mut cause = format!(
                "database error: kind {:?}, sqlstate {}",
                db.kind(),
                db.code().as_deref().unwrap_or("none")
            );
            if let Some(constraint) = db.constraint() {
                cause.push_str(&format!(", constraint `{constraint}`"));
            }
            cause
        }
        E::Configuration(_) | E::ConfigFile(_) => "configuration".to_owned(),
        E::InvalidArgument(_) => "invalid argument".to_owned(),
        E::Io(e) => format!("i/o: {}", e.kind()),
        E::Tls(_) => "tls".to_owned(),
        E::Protocol(_) => "protocol".to_owned(),
        E::RowNotFound => "row not found".to_owned(),
        // Names of types and columns are the schema's, not anyone's data.
        E::TypeNotFound { type_name } => format!("type `{type_name}` not found"),
        E::ColumnIndexOutOfBounds { index, len } => {
            format!("column index {index} out of bounds ({len})")
        }
        E::ColumnNotFound(name) => format!("column `{name}` not found"),
        E::ColumnDecode { index, .. } => format!("column {index} did not decode"),
        E::Encode(_) => "encode".to_owned(),
        E::Decode(_) => "decode".to_owned(),
        E::AnyDriverError(_) => "driver".to_owned(),
        E::PoolTimedOut => "pool timed out".to_owned(),
        E::PoolClosed => "pool closed".to_owned(),
        E::WorkerCrashed => "worker crashed".to_owned(),
        E::Migrate(_) => "migration".to_owned(),
        E::InvalidSavePointStatement => "invalid savepoint statement".to_owned(),
        E::BeginFailed => "begin failed".to_owned(),
        _ => "other sqlx error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database error whose message quotes a value, as PostgreSQL's and SQLite's do.
    async fn error_quoting() -> StoreError {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (name TEXT)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse BEFORE INSERT ON t \
             BEGIN SELECT RAISE(ABORT, 'refused yamada-taro@example.jp'); END",
        )
        .execute(&pool)
        .await
        .unwrap();
        let e = sqlx::query("INSERT INTO t VALUES ('x')")
            .execute(&pool)
            .await
            .unwrap_err();
        StoreError::from(e)
    }

    #[tokio::test]
    async fn a_database_error_is_named_by_its_kind_and_code_never_its_message() {
        let e = error_quoting().await;
        let sqlx::Error::Database(db) = (match &e {
            StoreError::Database(e) => e,
            other => panic!("not a database error: {other:?}"),
        }) else {
            panic!("not a database error");
        };
        assert!(db.message().contains("yamada-taro@example.jp"));
        let cause = e.cause();
        // SQLITE_CONSTRAINT_TRIGGER: the extended result code SQLite reports as the code.
        assert_eq!(cause, "database error: kind Other, sqlstate 1811");
        assert!(!cause.contains("yamada"));
    }
}
