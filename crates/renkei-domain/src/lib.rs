//! The vocabulary and rules of Renkei, free of I/O.
//!
//! This crate owns what a resident, a service, a purpose, a data category, a provider,
//! a locator, a consent and an access record *are*, and the one decision that matters:
//! may this service receive these categories of this resident for this purpose now
//! ([`decision::decide`]). It must not touch storage, the network, clocks or randomness:
//! callers pass in `now` and identifiers, so every rule here is a plain function that can
//! be unit- and property-tested.

pub mod access;
pub mod catalog;
pub mod consent;
pub mod counter;
pub mod decision;
pub mod emergency;
pub mod identity;
pub mod ids;
pub mod location;
pub mod locator_sync;
pub mod provider;
pub mod representative;
pub mod review;
pub mod rights;

pub use access::{
    AccessBasis, AccessOutcome, AccessRecord, ConsentLogEntry, FulfilmentLogEntry,
    LocatorSyncLogEntry, LogEntry, OperatorAction, OperatorActor, OperatorLogEntry,
    ProviderDelivery,
};
pub use catalog::{
    DataCategory, LegalBasis, LocalizedText, Locator, Purpose, PurposeRef, Service, ServiceStatus,
};
pub use consent::{
    ActiveConsent, Actor, Consent, ConsentChannel, ConsentEvent, ConsentEventKind, ConsentState,
};
pub use counter::session::{
    COUNTER_SESSION_MINUTES, CounterSession, CounterSessionError, CounterVerification,
    IdentityDocument,
};
pub use counter::{
    CounterConsentError, CounterFieldError, FormReference, StaffId, may_take_consent, records_form,
};
pub use decision::{DataRequest, Decision, DecisionFacts, DenialReason, Grounds, decide};
pub use emergency::{
    Area, AreaCode, AreaListFacts, AreaListRequest, Declaration, DeclarationDraft,
    DeclarationError, DeclarationState, EmergencyLegalBasis, EmergencyNotice, MAX_AREA_ENTRIES,
    NoticeRelease, decide_area_list,
};
pub use identity::{
    ContactError, ControllerContact, Enrolment, Operator, OperatorRole, PostalAddress,
    ProxyAppointment, ProxyScope, ResidentRequest, ResidentRequestKind, ResidentRequestStatus,
    ServiceClient, SigningAlg,
};
pub use ids::{
    CategoryId, ConsentId, CounterSessionId, DeclarationId, DistrictId, IdError, LocatorBatchId,
    OperatorId, ProviderId, ProviderSubject, ProxyId, PurposeId, RequestId, ResidentId,
    ResidentRequestId, ServiceId, ServiceSubject,
};
pub use location::{LocationDeletion, LocationPrecision, LocationUse};
pub use locator_sync::{
    LocatorBatch, LocatorBatchError, LocatorRemoval, LocatorSyncCounts, LocatorUpsert,
    ProviderLocator,
};
pub use provider::{
    KeySetError, Provider, ProviderConnection, ProviderKey, ProviderKeys, ProviderStatus,
};
pub use representative::{
    CapacityError, ConsentGiver, EvidenceReference, Representation, RepresentativeKind, may_consent,
};
pub use review::RiskFlag;
pub use rights::{
    Recipient, RecipientAnswer, RequestRecipient, RightsError, RightsEvent, RightsLogEntry, Routing,
};
