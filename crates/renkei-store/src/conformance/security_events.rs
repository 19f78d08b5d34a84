//! Checks of the security events kept for the SOC: kept until acknowledged, leased to one
//! pusher at a time, retried when due, and gone from the waiting ones once acknowledged.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use uuid::Uuid;

use crate::{SecurityEventAck, Store, StoredSecurityEvent};

fn raised(n: i64) -> StoredSecurityEvent {
    StoredSecurityEvent {
        jti: Uuid::new_v4(),
        token: format!("token-{n}"),
        raised_at: chrono::DateTime::from_timestamp_millis(1_780_000_000_000 + n).unwrap(),
    }
}

pub async fn security_events_wait_until_acknowledged_and_pushes_are_leased_and_retried(
    store: Arc<dyn Store>,
) {
    let (first, second) = (raised(1), raised(2));
    store.raise_security_event(&second).await.unwrap();
    store.raise_security_event(&first).await.unwrap();
    let waiting = store.unacknowledged_security_events(10).await.unwrap();
    assert_eq!(waiting, vec![first.clone(), second.clone()], "oldest first");
    assert_eq!(
        store.unacknowledged_security_events(1).await.unwrap().len(),
        1
    );

    let now = Utc::now();
    let lease = now + TimeDelta::seconds(30);
    let due = store
        .take_due_security_events(now, lease, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].event, first);
    assert_eq!(due[0].attempts, 0);
    assert!(
        store
            .take_due_security_events(now, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "a leased event is not handed out twice"
    );
    store
        .retry_security_event(first.jti, now + TimeDelta::seconds(2), "HTTP 503")
        .await
        .unwrap();
    let later = now + TimeDelta::seconds(3);
    let retry = store
        .take_due_security_events(later, later + TimeDelta::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].event.jti, first.jti);
    assert_eq!(retry[0].attempts, 1);

    store
        .acknowledge_security_events(
            &[
                SecurityEventAck {
                    jti: first.jti,
                    error: None,
                },
                SecurityEventAck {
                    jti: Uuid::new_v4(),
                    error: Some("unknown".into()),
                },
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        store.unacknowledged_security_events(10).await.unwrap(),
        vec![second.clone()]
    );
    let much_later = now + TimeDelta::days(1);
    let due = store
        .take_due_security_events(much_later, much_later, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1, "an acknowledged event is never pushed again");
    assert_eq!(due[0].event.jti, second.jti);
    store
        .acknowledge_security_events(
            &[SecurityEventAck {
                jti: second.jti,
                error: Some("invalid_key: the SOC lost its keys".into()),
            }],
            now,
        )
        .await
        .unwrap();
    assert!(
        store
            .unacknowledged_security_events(10)
            .await
            .unwrap()
            .is_empty()
    );

    let (old, fresh, waiting) = (raised(3), raised(4), raised(5));
    for e in [&old, &fresh, &waiting] {
        store.raise_security_event(e).await.unwrap();
    }
    let ack = |e: &StoredSecurityEvent| SecurityEventAck {
        jti: e.jti,
        error: None,
    };
    store
        .acknowledge_security_events(&[ack(&old)], now - TimeDelta::days(100))
        .await
        .unwrap();
    store
        .acknowledge_security_events(&[ack(&fresh)], now)
        .await
        .unwrap();
    let forgotten = store
        .forget_acknowledged_security_events(now - TimeDelta::days(90))
        .await
        .unwrap();
    // `first` and `second` were acknowledged at `now` too: only `old` is old enough.
    assert_eq!(forgotten, 1);
    assert_eq!(
        store.unacknowledged_security_events(10).await.unwrap(),
        vec![waiting],
        "an unacknowledged event is kept however old"
    );
    assert_eq!(
        store
            .forget_acknowledged_security_events(now + TimeDelta::seconds(1))
            .await
            .unwrap(),
        3
    );
}
