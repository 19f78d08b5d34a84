//! Micro-benchmark of the consent check: `renkei_domain::decide` against `cedar-policy`
//! deciding the same question, after checking that both give the same answers.
//!
//! Run with `cargo bench -p renkei-bench --bench consent_check`. Each timing runs for
//! `RENKEI_BENCH_MICRO_MS` milliseconds (default 1000).
#![allow(
    clippy::indexing_slicing,
    reason = "a benchmark harness, not the product: a bad index fails the run loudly"
)]

use renkei_bench as _; // the binary's allocator
use std::collections::BTreeSet;
use std::hint::black_box;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityUid, PolicySet,
    Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use chrono::{DateTime, TimeDelta, Utc};
use renkei_domain::{
    Actor, CategoryId, Consent, ConsentChannel, ConsentId, DataRequest, Decision, DecisionFacts,
    LegalBasis, LocalizedText, Purpose, PurposeId, RequestId, ResidentId, Service, ServiceId,
    ServiceStatus, decide,
};
use uuid::Uuid;

/// The target: ours at least this many times faster than Cedar.
const TARGET_RATIO: f64 = 10.0;

const SCHEMA: &str = r#"
namespace Renkei {
  entity Service = { status: String };
  entity Resident;
  entity Purpose = { service: Service, version: Long, categories: Set<String> };
  entity Consent = {
    resident: Resident,
    purpose: Purpose,
    purpose_version: Long,
    categories: Set<String>,
    expires_at?: Long,
    revoked_at?: Long,
  };
  action "request" appliesTo {
    principal: Service,
    resource: Resident,
    context: { purpose: Purpose, consent?: Consent, categories: Set<String>, now: Long },
  };
}
"#;

/// The same rule as `renkei_domain::decide`: an approved service, a purpose of that service
/// declaring every requested category, and the resident's consent to that very purpose
/// version covering them, neither revoked nor expired.
const POLICY: &str = r#"
permit (
  principal is Renkei::Service,
  action == Renkei::Action::"request",
  resource is Renkei::Resident
)
when {
  principal.status == "approved" &&
  context.purpose.service == principal &&
  context.purpose.categories.containsAll(context.categories) &&
  context has consent &&
  context.consent.resident == resource &&
  context.consent.purpose == context.purpose &&
  context.consent.purpose_version == context.purpose.version &&
  context.consent.categories.containsAll(context.categories) &&
  !(context.consent has revoked_at) &&
  (if context.consent has expires_at then context.now < context.consent.expires_at else true)
};
"#;

const CATEGORIES: [&str; 2] = ["health.checkup", "payment.history"];

/// One question, in both models.
struct Case {
    name: &'static str,
    /// The answer the rule must give.
    permit: bool,
    request: DataRequest,
    service: Service,
    purpose: Purpose,
    consent: Option<Consent>,
    now: DateTime<Utc>,
}

impl Case {
    /// What storage would have read for the case: a registered service under a live token,
    /// about a subject that names the resident.
    fn facts(&self) -> DecisionFacts<'_> {
        DecisionFacts {
            token_revoked: false,
            service: Some(&self.service),
            resident: Some(ResidentId::from_uuid(Uuid::nil())),
            purpose: Some(&self.purpose),
            consent: self.consent.as_ref(),
            declarations: &[],
        }
    }
}

fn cat(s: &str) -> anyhow::Result<CategoryId> {
    CategoryId::new(s).with_context(|| format!("category {s}"))
}

fn cats(names: &[&str]) -> anyhow::Result<BTreeSet<CategoryId>> {
    names.iter().map(|c| cat(c)).collect()
}

/// A realistic granted request: approved service, purpose with 2 categories, an active
/// consent to both, asking for both.
fn granted_case() -> anyhow::Result<Case> {
    let now = Utc::now();
    let service_id = ServiceId::new("health-advice")?;
    let purpose_id = PurposeId::new("health-advice")?;
    let service = Service {
        id: service_id.clone(),
        name: LocalizedText::new("ひかり台けんこうナビ", "Hikaridai Health Navi"),
        sector: "health".into(),
        hpke_public_key: "6Bq1mfvR3dRG1N7cnEPbrS0E4HNKRN1lVX1I0RwsNQI".into(),
        webhook_url: Some("https://health-navi.example/renkei/events".into()),
        status: ServiceStatus::Approved,
    };
    let purpose = Purpose {
        service: service_id.clone(),
        id: purpose_id.clone(),
        version: 1,
        title: LocalizedText::new("健康アドバイス", "Health advice"),
        description: LocalizedText::new(
            "健康診断結果と決済履歴から、生活習慣の改善アドバイスをお届けします。",
            "We send lifestyle advice based on your health check results and payment history.",
        ),
        categories: cats(&CATEGORIES)?,
        retention_days: 365,
        legal_basis: LegalBasis::Consent,
        emergency_only: false,
        location: None,
    };
    let granted_at = now - TimeDelta::days(10);
    let consent = Consent {
        id: ConsentId::from_uuid(Uuid::new_v4()),
        resident: ResidentId::from_uuid(Uuid::new_v4()),
        purpose: purpose.reference(),
        categories: cats(&CATEGORIES)?,
        legal_basis: LegalBasis::Consent,
        granted_at,
        expires_at: Some(granted_at + TimeDelta::days(365)),
        given_via: ConsentChannel::Portal,
        given_by: Actor::Resident,
        form_reference: None,
        revoked_at: None,
    };
    let request = DataRequest {
        id: RequestId::from_uuid(Uuid::now_v7()),
        service: service_id,
        purpose: purpose_id,
        categories: cats(&CATEGORIES)?,
    };
    Ok(Case {
        name: "granted",
        permit: true,
        request,
        service,
        purpose,
        consent: Some(consent),
        now,
    })
}

/// The granted case and variations that must each be denied.
fn cases() -> anyhow::Result<Vec<Case>> {
    let mut out = vec![granted_case()?];
    let mut c = granted_case()?;
    c.name = "revoked";
    c.permit = false;
    if let Some(consent) = c.consent.as_mut() {
        consent.revoked_at = Some(c.now - TimeDelta::hours(1));
    }
    out.push(c);
    let mut c = granted_case()?;
    c.name = "category not covered";
    c.permit = false;
    if let Some(consent) = c.consent.as_mut() {
        consent.categories = cats(&["health.checkup"])?;
    }
    out.push(c);
    let mut c = granted_case()?;
    c.name = "expired";
    c.permit = false;
    if let Some(consent) = c.consent.as_mut() {
        consent.expires_at = Some(c.now - TimeDelta::seconds(1));
    }
    out.push(c);
    let mut c = granted_case()?;
    c.name = "purpose changed (v2)";
    c.permit = false;
    c.purpose.version = 2;
    out.push(c);
    let mut c = granted_case()?;
    c.name = "service suspended";
    c.permit = false;
    c.service.status = ServiceStatus::Suspended;
    out.push(c);
    let mut c = granted_case()?;
    c.name = "no consent";
    c.permit = false;
    c.consent = None;
    out.push(c);
    let mut c = granted_case()?;
    c.name = "category not in purpose";
    c.permit = false;
    c.request.categories.insert(cat("resident.address")?);
    out.push(c);
    let mut c = granted_case()?;
    c.name = "one category of two";
    c.request.categories = cats(&["payment.history"])?;
    out.push(c);
    Ok(out)
}

/// What Cedar needs for one question, built once.
struct CedarInput {
    request: Request,
    entities: Entities,
    /// The parts, to time building them per decision as well.
    parts: Vec<Entity>,
    principal: EntityUid,
    action: EntityUid,
    resource: EntityUid,
    context: Vec<(String, RestrictedExpression)>,
}

fn uid(kind: &str, id: &str) -> anyhow::Result<EntityUid> {
    let quoted = serde_json::to_string(id)?;
    EntityUid::from_str(&format!("Renkei::{kind}::{quoted}"))
        .with_context(|| format!("entity uid {kind}::{id}"))
}

fn entity_ref(uid: &EntityUid) -> RestrictedExpression {
    RestrictedExpression::new_entity_uid(uid.clone())
}

fn string_set<'a>(items: impl IntoIterator<Item = &'a str>) -> RestrictedExpression {
    RestrictedExpression::new_set(
        items
            .into_iter()
            .map(|s| RestrictedExpression::new_string(s.to_owned())),
    )
}

fn long(n: i64) -> RestrictedExpression {
    RestrictedExpression::new_long(n)
}

fn cedar_input(case: &Case, schema: &Schema) -> anyhow::Result<CedarInput> {
    let principal = uid("Service", case.service.id.as_str())?;
    let resident = match &case.consent {
        Some(c) => c.resident,
        None => ResidentId::from_uuid(Uuid::nil()),
    };
    let resource = uid("Resident", &resident.to_string())?;
    let action = uid("Action", "request")?;
    let purpose_uid = uid(
        "Purpose",
        &format!("{}/{}", case.purpose.service, case.purpose.id),
    )?;
    let mut parts = vec![
        Entity::new(
            principal.clone(),
            [(
                "status".to_owned(),
                RestrictedExpression::new_string(case.service.status.as_str().to_owned()),
            )]
            .into(),
            Default::default(),
        )?,
        Entity::new_no_attrs(resource.clone(), Default::default()),
        Entity::new(
            purpose_uid.clone(),
            [
                (
                    "service".to_owned(),
                    entity_ref(&uid("Service", case.purpose.service.as_str())?),
                ),
                ("version".to_owned(), long(case.purpose.version.into())),
                (
                    "categories".to_owned(),
                    string_set(case.purpose.categories.iter().map(CategoryId::as_str)),
                ),
            ]
            .into(),
            Default::default(),
        )?,
    ];
    let mut context = vec![
        ("purpose".to_owned(), entity_ref(&purpose_uid)),
        (
            "categories".to_owned(),
            string_set(case.request.categories.iter().map(CategoryId::as_str)),
        ),
        ("now".to_owned(), long(case.now.timestamp_millis())),
    ];
    if let Some(consent) = &case.consent {
        let consent_uid = uid("Consent", &consent.id.to_string())?;
        let consent_purpose = uid(
            "Purpose",
            &format!("{}/{}", consent.purpose.service, consent.purpose.purpose),
        )?;
        let mut attrs = vec![
            ("resident".to_owned(), entity_ref(&resource)),
            ("purpose".to_owned(), entity_ref(&consent_purpose)),
            (
                "purpose_version".to_owned(),
                long(consent.purpose.version.into()),
            ),
            (
                "categories".to_owned(),
                string_set(consent.categories.iter().map(CategoryId::as_str)),
            ),
        ];
        if let Some(at) = consent.expires_at {
            attrs.push(("expires_at".to_owned(), long(at.timestamp_millis())));
        }
        if let Some(at) = consent.revoked_at {
            attrs.push(("revoked_at".to_owned(), long(at.timestamp_millis())));
        }
        parts.push(Entity::new(
            consent_uid.clone(),
            attrs.into_iter().collect(),
            Default::default(),
        )?);
        context.push(("consent".to_owned(), entity_ref(&consent_uid)));
    }
    let entities = Entities::from_entities(parts.clone(), Some(schema))
        .with_context(|| format!("entities of case `{}`", case.name))?;
    let request = Request::new(
        principal.clone(),
        action.clone(),
        resource.clone(),
        Context::from_pairs(context.clone())?,
        Some(schema),
    )
    .with_context(|| format!("request of case `{}`", case.name))?;
    Ok(CedarInput {
        request,
        entities,
        parts,
        principal,
        action,
        resource,
        context,
    })
}

fn ours(case: &Case) -> bool {
    matches!(
        decide(&case.request, case.facts(), case.now),
        Decision::Granted(_)
    )
}

/// Cedar's answer; an evaluation error is a failure of the model, not a "deny".
fn cedar(
    authorizer: &Authorizer,
    policies: &PolicySet,
    input: &CedarInput,
    case: &str,
) -> anyhow::Result<bool> {
    let response = authorizer.is_authorized(&input.request, policies, &input.entities);
    let errors: Vec<String> = response
        .diagnostics()
        .errors()
        .map(|e| e.to_string())
        .collect();
    if !errors.is_empty() {
        bail!("Cedar could not evaluate case `{case}`: {errors:?}");
    }
    Ok(response.decision() == CedarDecision::Allow)
}

/// Calls `f` repeatedly for `budget`; returns nanoseconds per call and the number of calls.
fn time_per_call(budget: Duration, mut f: impl FnMut()) -> (f64, u64) {
    const BATCH: u64 = 256;
    for _ in 0..BATCH {
        f();
    }
    let start = Instant::now();
    let mut calls = 0_u64;
    loop {
        for _ in 0..BATCH {
            f();
        }
        calls += BATCH;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            return (elapsed.as_nanos() as f64 / calls as f64, calls);
        }
    }
}

fn main() -> anyhow::Result<()> {
    let budget = Duration::from_millis(match std::env::var("RENKEI_BENCH_MICRO_MS") {
        Ok(v) => v
            .parse()
            .with_context(|| format!("RENKEI_BENCH_MICRO_MS={v} is not a number"))?,
        Err(_) => 1000,
    });

    let (schema, _warnings) =
        Schema::from_cedarschema_str(SCHEMA).context("parsing the Cedar schema")?;
    let policies = PolicySet::from_str(POLICY).context("parsing the Cedar policy")?;
    let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
    if !validation.validation_passed() {
        let errors: Vec<String> = validation
            .validation_errors()
            .map(|e| e.to_string())
            .collect();
        bail!("the Cedar policy does not validate against its schema: {errors:?}");
    }
    let authorizer = Authorizer::new();

    println!("Consent check: renkei_domain::decide vs cedar-policy 4 (Authorizer::is_authorized)");
    println!();
    println!("Agreement (both must answer the same before anything is timed):");
    println!("  {:<26} {:>8} {:>8}", "case", "decide", "cedar");
    let cases = cases()?;
    let mut inputs = Vec::with_capacity(cases.len());
    for case in &cases {
        let input = cedar_input(case, &schema)?;
        let a = ours(case);
        let b = cedar(&authorizer, &policies, &input, case.name)?;
        let show = |g: bool| if g { "permit" } else { "deny" };
        println!("  {:<26} {:>8} {:>8}", case.name, show(a), show(b));
        if a != b {
            bail!(
                "decide and Cedar disagree on case `{}`: decide {}, Cedar {}",
                case.name,
                show(a),
                show(b)
            );
        }
        if case.permit != a {
            bail!(
                "case `{}` was expected to be {}",
                case.name,
                show(case.permit)
            );
        }
        inputs.push(input);
    }

    let granted = &cases[0];
    let granted_cedar = &inputs[0];
    let revoked = &cases[1];
    let revoked_cedar = &inputs[1];

    let decide_with = |case: &Case| {
        let d = decide(
            black_box(&case.request),
            black_box(case.facts()),
            black_box(case.now),
        );
        black_box(d);
    };
    let cedar_with = |input: &CedarInput| {
        let r = authorizer.is_authorized(
            black_box(&input.request),
            black_box(&policies),
            black_box(&input.entities),
        );
        black_box(r);
    };

    let (ours_granted, n1) = time_per_call(budget, || decide_with(granted));
    let (cedar_granted, n2) = time_per_call(budget, || cedar_with(granted_cedar));
    let (ours_revoked, n3) = time_per_call(budget, || decide_with(revoked));
    let (cedar_revoked, n4) = time_per_call(budget, || cedar_with(revoked_cedar));
    let (clone_only, n5) = time_per_call(budget / 4, || {
        black_box(black_box(&granted.consent).clone());
    });
    let (cedar_build, n6) = time_per_call(budget, || {
        let input = black_box(granted_cedar);
        let entities = Entities::from_entities(input.parts.clone(), None);
        let context = Context::from_pairs(input.context.clone());
        if let (Ok(entities), Ok(context)) = (entities, context)
            && let Ok(request) = Request::new(
                input.principal.clone(),
                input.action.clone(),
                input.resource.clone(),
                context,
                None,
            )
        {
            black_box(authorizer.is_authorized(&request, &policies, &entities));
        }
    });

    println!();
    println!(
        "Timing: std::time::Instant, {} ms per row, black_box inputs; request and entities built once.",
        budget.as_millis()
    );
    println!(
        "  {:<58} {:>12} {:>12}",
        "what", "ns/decision", "iterations"
    );
    let row = |what: &str, ns: f64, n: u64| println!("  {what:<58} {ns:>12.1} {n:>12}");
    row(
        "decide, granted (incl. cloning the Consent it takes)",
        ours_granted,
        n1,
    );
    row("cedar is_authorized, granted", cedar_granted, n2);
    row(
        "decide, denied: revoked (incl. Consent clone)",
        ours_revoked,
        n3,
    );
    row("cedar is_authorized, denied: revoked", cedar_revoked, n4);
    row(
        "  (for reference) cloning the Consent alone",
        clone_only,
        n5,
    );
    row(
        "  (for reference) cedar incl. building entities+request",
        cedar_build,
        n6,
    );

    let ratio_granted = cedar_granted / ours_granted;
    let ratio_revoked = cedar_revoked / ours_revoked;
    let verdict = |r: f64| if r >= TARGET_RATIO { "MET" } else { "NOT MET" };
    println!();
    println!(
        "  {:<26} {:>14} {:>10}   target",
        "ratio cedar/decide", "", ""
    );
    println!(
        "  {:<26} {:>13.1}x {:>10}   ours >= {TARGET_RATIO:.0}x faster",
        "granted",
        ratio_granted,
        verdict(ratio_granted)
    );
    println!(
        "  {:<26} {:>13.1}x {:>10}   ours >= {TARGET_RATIO:.0}x faster",
        "denied (revoked)",
        ratio_revoked,
        verdict(ratio_revoked)
    );
    Ok(())
}
