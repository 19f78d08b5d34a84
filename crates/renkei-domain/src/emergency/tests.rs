//! Declarations' tests: each step's rules, and over arbitrary sequences of steps by
//! arbitrary operators, that nothing is in force without two different people.

use super::*;
use proptest::prelude::*;
use uuid::Uuid;

fn op(s: &str) -> OperatorId {
    OperatorId::new(s).unwrap()
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap()
}

fn hours(h: i64) -> TimeDelta {
    TimeDelta::hours(h)
}

fn draft(start: DateTime<Utc>, end: DateTime<Utc>) -> DeclarationDraft {
    DeclarationDraft {
        reason: "台風10号".into(),
        legal_basis: EmergencyLegalBasis::DisasterAct49_11,
        categories: [CategoryId::new("care.support-needs").unwrap()].into(),
        services: [ServiceId::new("fire-dept").unwrap()].into(),
        area: Area::parse(["53394526"]).unwrap(),
        starts_at: start,
        ends_at: end,
    }
}

fn declared() -> Declaration {
    Declaration::declare(
        DeclarationId::from_uuid(Uuid::nil()),
        draft(t0(), t0() + hours(72)),
        op("sato"),
        t0(),
    )
    .unwrap()
}

#[test]
fn a_declaration_releases_nothing_until_a_second_operator_confirms_it() {
    let d = declared();
    assert_eq!(d.state_at(t0()), DeclarationState::Pending);
    assert_eq!(
        d.clone().confirm(op("sato"), t0()),
        Err(DeclarationError::SameOperator)
    );
    let d = d.confirm(op("suzuki"), t0()).unwrap();
    assert_eq!(d.state_at(t0()), DeclarationState::InForce);
    assert_eq!(d.revision, 1);
    assert_eq!(
        d.clone().confirm(op("tanaka"), t0()),
        Err(DeclarationError::AlreadyConfirmed)
    );
}

#[test]
fn it_ends_by_itself_at_its_end_time_to_the_millisecond() {
    let d = declared().confirm(op("suzuki"), t0()).unwrap();
    let end = t0() + hours(72);
    assert!(d.in_force_at(end - TimeDelta::milliseconds(1)));
    assert_eq!(d.state_at(end), DeclarationState::Ended);
    assert_eq!(
        d.state_at(end + TimeDelta::milliseconds(1)),
        DeclarationState::Ended
    );
}

#[test]
fn a_declaration_longer_than_72_hours_or_empty_is_refused() {
    let at = |d: DeclarationDraft| Declaration::declare(declared().id, d, op("sato"), t0());
    assert_eq!(
        at(draft(t0(), t0() + hours(72) + TimeDelta::milliseconds(1))),
        Err(DeclarationError::TooLong)
    );
    assert_eq!(
        at(draft(t0(), t0())),
        Err(DeclarationError::EndNotAfterStart)
    );
    assert_eq!(
        at(draft(t0() - hours(3), t0() - hours(1))),
        Err(DeclarationError::AlreadyOver)
    );
    let mut empty = draft(t0(), t0() + hours(1));
    empty.services.clear();
    assert_eq!(at(empty), Err(DeclarationError::NoServices));
    let mut blank = draft(t0(), t0() + hours(1));
    blank.reason = "  ".into();
    assert_eq!(at(blank), Err(DeclarationError::BadReason));
}

#[test]
fn a_scheduled_declaration_is_in_force_only_from_its_start() {
    let d = Declaration::declare(
        declared().id,
        draft(t0() + hours(2), t0() + hours(10)),
        op("sato"),
        t0(),
    )
    .unwrap()
    .confirm(op("suzuki"), t0())
    .unwrap();
    assert_eq!(d.state_at(t0()), DeclarationState::Scheduled);
    assert!(d.in_force_at(t0() + hours(2)));
}

#[test]
fn a_renewal_needs_a_second_operator_and_ends_at_most_72_hours_after_it_is_proposed() {
    let d = declared().confirm(op("suzuki"), t0()).unwrap();
    let now = t0() + hours(70);
    assert_eq!(
        d.clone().propose_renewal(op("sato"), now + hours(73), now),
        Err(DeclarationError::RenewalTooLong)
    );
    assert_eq!(
        d.clone().propose_renewal(op("sato"), t0() + hours(72), now),
        Err(DeclarationError::RenewalNotLater)
    );
    let proposed = d.propose_renewal(op("sato"), now + hours(72), now).unwrap();
    assert_eq!(proposed.ends_at, t0() + hours(72), "not yet moved");
    assert_eq!(
        proposed.clone().confirm_renewal(op("sato"), now),
        Err(DeclarationError::SameOperator)
    );
    let renewed = proposed.confirm_renewal(op("suzuki"), now).unwrap();
    assert_eq!(renewed.ends_at, now + hours(72));
    assert!(renewed.in_force_at(t0() + hours(100)));
    assert_eq!(renewed.revision, 3);
}

#[test]
fn a_renewal_confirmed_after_the_end_comes_too_late() {
    let d = declared().confirm(op("suzuki"), t0()).unwrap();
    let proposed = d
        .propose_renewal(op("sato"), t0() + hours(100), t0() + hours(71))
        .unwrap();
    assert_eq!(
        proposed.confirm_renewal(op("suzuki"), t0() + hours(72)),
        Err(DeclarationError::Ended)
    );
}

#[test]
fn any_one_operator_ends_it_early_and_nothing_follows_an_end() {
    let d = declared().confirm(op("suzuki"), t0()).unwrap();
    let ended = d.end(op("tanaka"), t0() + hours(1)).unwrap();
    assert_eq!(ended.state_at(t0() + hours(1)), DeclarationState::Ended);
    assert_eq!(
        ended.clone().end(op("sato"), t0() + hours(2)),
        Err(DeclarationError::Ended)
    );
    assert_eq!(
        ended.propose_renewal(op("sato"), t0() + hours(5), t0() + hours(2)),
        Err(DeclarationError::Ended)
    );
    // A pending one is withdrawn the same way.
    let withdrawn = declared().end(op("sato"), t0()).unwrap();
    assert_eq!(
        withdrawn.confirm(op("suzuki"), t0()),
        Err(DeclarationError::Ended)
    );
}

#[test]
fn legal_bases_parse_from_their_own_codes_only() {
    for basis in EmergencyLegalBasis::ALL {
        assert_eq!(EmergencyLegalBasis::parse(basis.as_str()), Some(basis));
        let json = serde_json::to_value(basis).unwrap();
        assert_eq!(json, basis.as_str());
    }
    assert_eq!(EmergencyLegalBasis::parse("consent"), None);
}

#[derive(Debug, Clone)]
enum Act {
    Confirm(usize),
    Propose(usize, i64),
    ConfirmRenewal(usize),
    End(usize),
    Wait(i64),
}

fn acts() -> impl Strategy<Value = Vec<Act>> {
    let who = 0..3usize;
    let act = prop_oneof![
        who.clone().prop_map(Act::Confirm),
        (who.clone(), 1..100i64).prop_map(|(w, h)| Act::Propose(w, h)),
        who.clone().prop_map(Act::ConfirmRenewal),
        who.prop_map(Act::End),
        (1..40i64).prop_map(Act::Wait),
    ];
    proptest::collection::vec(act, 0..12)
}

proptest! {
    /// Whatever steps anyone takes, in any order: a declaration is in force only when
    /// confirmed by someone other than its declarer, never ends more than 72 hours after
    /// its start or its last renewal's proposal, and never after an early end.
    #[test]
    fn nothing_is_in_force_without_two_people_or_past_72_hours(steps in acts()) {
        let operators = [op("sato"), op("suzuki"), op("tanaka")];
        let mut now = t0();
        let mut d = declared();
        let mut latest_bound = t0() + hours(72);
        let mut ended_at = None;
        for step in steps {
            let taken = match step {
                Act::Confirm(w) => d.clone().confirm(operators[w].clone(), now),
                Act::Propose(w, h) => d.clone().propose_renewal(operators[w].clone(), now + hours(h), now),
                Act::ConfirmRenewal(w) => d.clone().confirm_renewal(operators[w].clone(), now),
                Act::End(w) => d.clone().end(operators[w].clone(), now),
                Act::Wait(h) => { now += hours(h); continue; }
            };
            if let Ok(next) = taken {
                prop_assert_eq!(next.revision, d.revision + 1);
                if let Some(r) = &next.renewal {
                    latest_bound = latest_bound.max(r.proposed.at + hours(72));
                }
                if next.ended.is_some() && ended_at.is_none() {
                    ended_at = Some(now);
                }
                d = next;
            }
            if d.in_force_at(now) {
                let confirmed = d.confirmed.as_ref().unwrap();
                prop_assert_ne!(&confirmed.by, &d.declared.by);
                prop_assert!(ended_at.is_none());
            }
            prop_assert!(d.ends_at <= latest_bound);
        }
    }
}
