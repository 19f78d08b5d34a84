//! The state decisions read, checked against what the log says happened to it.
//!
//! The signed log proves its own entries; a decision, though, reads the consents table. A
//! consent whose `revoked_at` is set back to NULL would be in force again while the log still
//! shows its revocation, and the entries alone would verify clean. `renkei log verify`
//! replays every consent event of the log here and compares the result with each stored
//! consent: whatever both record (who, for which purpose version, whether and when it ended)
//! must agree.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use renkei_domain::{Consent, ConsentEventKind, ConsentId, ConsentLogEntry, ResidentId};

/// What the log says of one consent.
#[derive(Debug, Clone)]
struct Logged {
    /// The entry that granted it: who, for what (`None` if the log has no grant for it).
    granted: Option<(u64, ResidentId, String, String, u32)>,
    /// Revoked or superseded, with the entry and its time.
    ended: Option<(u64, DateTime<Utc>)>,
    /// Recorded as expired, with the entry and its time.
    expired: Option<(u64, DateTime<Utc>)>,
}

/// Every consent the log speaks of, built entry by entry in log order.
#[derive(Debug, Default)]
pub struct LoggedConsents(HashMap<ConsentId, Logged>);

impl LoggedConsents {
    /// Adds one consent entry of the log.
    pub fn record(&mut self, e: &ConsentLogEntry) {
        let logged = self.0.entry(e.consent).or_insert(Logged {
            granted: None,
            ended: None,
            expired: None,
        });
        match e.change {
            ConsentEventKind::Granted => {
                logged.granted = Some((
                    e.seq,
                    e.resident,
                    e.service.to_string(),
                    e.purpose.to_string(),
                    e.purpose_version,
                ));
            }
            ConsentEventKind::Revoked | ConsentEventKind::Superseded => {
                logged.ended.get_or_insert((e.seq, e.at));
            }
            ConsentEventKind::Expired => {
                logged.expired.get_or_insert((e.seq, e.at));
            }
        }
    }

    /// Why the stored consent `c` disagrees with the log, if it does. Each consent is checked
    /// once: it is then forgotten, so what remains afterwards is in the log but not stored.
    pub fn check(&mut self, c: &Consent) -> Option<String> {
        let id = c.id;
        let Some(logged) = self.0.remove(&id) else {
            return Some(format!(
                "consent `{id}` is stored but the log has no entry for it"
            ));
        };
        let Some((seq, resident, service, purpose, version)) = logged.granted else {
            return Some(format!("consent `{id}` has no granted entry in the log"));
        };
        if resident != c.resident
            || service != c.purpose.service.as_str()
            || purpose != c.purpose.purpose.as_str()
            || version != c.purpose.version
        {
            return Some(format!(
                "consent `{id}` names another resident or purpose than its granted entry {seq}"
            ));
        }
        match (logged.ended, c.revoked_at) {
            (Some((seq, _)), None) => {
                return Some(format!(
                    "consent `{id}` is in force but entry {seq} of the log ended it (un-revoked)"
                ));
            }
            (None, Some(_)) => {
                return Some(format!(
                    "consent `{id}` is stored as ended but the log has no entry ending it"
                ));
            }
            (Some((seq, at)), Some(revoked_at)) if at != revoked_at => {
                return Some(format!(
                    "consent `{id}` ended at another time than entry {seq} of the log says"
                ));
            }
            _ => {}
        }
        if let Some((seq, at)) = logged.expired
            && c.expires_at.is_none_or(|e| e > at)
        {
            return Some(format!(
                "consent `{id}` expires later than entry {seq} of the log recorded (extended)"
            ));
        }
        None
    }

    /// Consents the log speaks of that are not stored (removed), by the first entry naming each.
    pub fn missing(&self) -> Vec<String> {
        let mut missing: Vec<(u64, ConsentId)> = self
            .0
            .iter()
            .map(|(id, l)| {
                let first = [
                    l.granted.as_ref().map(|g| g.0),
                    l.ended.map(|e| e.0),
                    l.expired.map(|e| e.0),
                ]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(0);
                (first, *id)
            })
            .collect();
        missing.sort();
        missing
            .into_iter()
            .map(|(seq, id)| {
                format!("consent `{id}` of entry {seq} of the log is not stored (removed)")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use renkei_domain::{Actor, CategoryId, ConsentChannel, LegalBasis, PurposeRef};

    fn consent(revoked_at: Option<DateTime<Utc>>) -> Consent {
        Consent {
            id: ConsentId::from_uuid(uuid::Uuid::new_v4()),
            resident: ResidentId::from_uuid(uuid::Uuid::new_v4()),
            purpose: PurposeRef {
                service: "health-advice".parse().unwrap(),
                purpose: "advice".parse().unwrap(),
                version: 1,
            },
            categories: [CategoryId::new("health.checkup").unwrap()].into(),
            legal_basis: LegalBasis::Consent,
            granted_at: Utc::now(),
            expires_at: None,
            given_via: ConsentChannel::Portal,
            given_by: Actor::Resident,
            form_reference: None,
            revoked_at,
        }
    }

    fn entry(
        c: &Consent,
        seq: u64,
        change: ConsentEventKind,
        at: DateTime<Utc>,
    ) -> ConsentLogEntry {
        ConsentLogEntry {
            seq,
            consent: c.id,
            resident: c.resident,
            service: c.purpose.service.clone(),
            purpose: c.purpose.purpose.clone(),
            purpose_version: c.purpose.version,
            change,
            at,
            actor: Actor::Resident,
        }
    }

    #[test]
    fn a_consent_as_the_log_tells_it_agrees() {
        let at = Utc::now();
        let c = consent(Some(at));
        let mut logged = LoggedConsents::default();
        logged.record(&entry(&c, 3, ConsentEventKind::Granted, c.granted_at));
        logged.record(&entry(&c, 9, ConsentEventKind::Revoked, at));
        assert_eq!(logged.check(&c), None);
        assert!(logged.missing().is_empty());
    }

    #[test]
    fn an_unrevoked_consent_is_named_with_the_entry_that_ended_it() {
        let c = consent(None);
        let mut logged = LoggedConsents::default();
        logged.record(&entry(&c, 3, ConsentEventKind::Granted, c.granted_at));
        logged.record(&entry(&c, 9, ConsentEventKind::Revoked, Utc::now()));
        let why = logged.check(&c).unwrap();
        assert!(
            why.contains("entry 9") && why.contains("un-revoked"),
            "{why}"
        );
    }

    #[test]
    fn a_consent_without_a_granted_entry_or_moved_to_another_purpose_is_named() {
        let c = consent(None);
        assert!(
            LoggedConsents::default()
                .check(&c)
                .unwrap()
                .contains("no entry")
        );
        let mut logged = LoggedConsents::default();
        let mut moved = c.clone();
        moved.purpose.version = 2;
        logged.record(&entry(&c, 3, ConsentEventKind::Granted, c.granted_at));
        assert!(logged.check(&moved).unwrap().contains("granted entry 3"));
    }

    #[test]
    fn an_expiry_pushed_past_its_logged_expiry_is_named_and_a_removed_consent_too() {
        let mut c = consent(None);
        let at = Utc::now();
        let mut logged = LoggedConsents::default();
        logged.record(&entry(&c, 3, ConsentEventKind::Granted, c.granted_at));
        logged.record(&entry(&c, 5, ConsentEventKind::Expired, at));
        c.expires_at = Some(at + chrono::Duration::days(30));
        assert!(logged.check(&c).unwrap().contains("extended"));
        let gone = consent(None);
        logged.record(&entry(&gone, 7, ConsentEventKind::Granted, gone.granted_at));
        assert_eq!(logged.missing().len(), 1);
        assert!(logged.missing()[0].contains("entry 7"));
    }
}
