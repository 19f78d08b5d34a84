//! Declared emergencies (非常時宣言): what responders may read without consent, where, and
//! for how long, under two-person control.
//!
//! One operator declares; the declaration takes effect only once a second, different
//! operator confirms it. It lasts at most [`MAX_DURATION_HOURS`] hours; a renewal (a later
//! end, again at most 72 hours away) needs the same two steps. Any operator can end it early,
//! and it ends by itself at its end time: [`Declaration::state_at`] compares the window with
//! the caller's `now`, so nothing has to happen for the end to take effect. Each step here is
//! a pure transition that refuses what the rules forbid; storage writes a step only over the
//! revision it was taken from, so two operators cannot both take the same one.

pub mod area;
pub mod area_list;
pub mod notice;

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

pub use area::{Area, AreaCode, AreaError, MeshCode, MeshLevel};
pub use area_list::{AreaListFacts, AreaListRequest, MAX_AREA_ENTRIES, decide_area_list};
pub use notice::{EmergencyNotice, NoticeRelease};

use crate::ids::{CategoryId, DeclarationId, OperatorId, ServiceId};

/// The longest a declaration, or a renewal from the moment it is proposed, may run.
pub const MAX_DURATION_HOURS: i64 = 72;
/// The longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// The law a declaration rests on: a fixed list, so every declaration names a provision
/// that allows provision without consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmergencyLegalBasis {
    /// 災害対策基本法 第49条の11第3項: the register of people who need help to evacuate
    /// (避難行動要支援者名簿), to responders without consent when a disaster strikes or threatens.
    DisasterAct49_11,
    /// 災害対策基本法 第49条の15第3項: individual evacuation plans (個別避難計画), likewise.
    DisasterAct49_15,
    /// 個人情報保護法 第27条第1項第2号: to protect life, body or property when consent is hard
    /// to obtain.
    Appi27_1_2,
    /// 個人情報保護法 第69条第2項第4号: a public body's provision for the person's clear benefit
    /// or another special reason.
    Appi69_2_4,
}

impl EmergencyLegalBasis {
    pub const ALL: [Self; 4] = [
        Self::DisasterAct49_11,
        Self::DisasterAct49_15,
        Self::Appi27_1_2,
        Self::Appi69_2_4,
    ];

    /// The stable code stored and sent over the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DisasterAct49_11 => "disaster_act49_11",
            Self::DisasterAct49_15 => "disaster_act49_15",
            Self::Appi27_1_2 => "appi27_1_2",
            Self::Appi69_2_4 => "appi69_2_4",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == s)
    }

    /// The provision, as a Japanese reader cites it.
    pub fn citation_ja(self) -> &'static str {
        match self {
            Self::DisasterAct49_11 => "災害対策基本法 第49条の11第3項",
            Self::DisasterAct49_15 => "災害対策基本法 第49条の15第3項",
            Self::Appi27_1_2 => "個人情報の保護に関する法律 第27条第1項第2号",
            Self::Appi69_2_4 => "個人情報の保護に関する法律 第69条第2項第4号",
        }
    }

    /// The provision, in English.
    pub fn citation_en(self) -> &'static str {
        match self {
            Self::DisasterAct49_11 => "Disaster Countermeasures Basic Act, art. 49-11(3)",
            Self::DisasterAct49_15 => "Disaster Countermeasures Basic Act, art. 49-15(3)",
            Self::Appi27_1_2 => "Act on the Protection of Personal Information, art. 27(1)(ii)",
            Self::Appi69_2_4 => "Act on the Protection of Personal Information, art. 69(2)(iv)",
        }
    }
}

/// Why a declaration, or a step on one, is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclarationError {
    #[error("the reason must be 1 to {MAX_REASON_CHARS} characters")]
    BadReason,
    #[error("a declaration releases at least one data category")]
    NoCategories,
    #[error("a declaration names at least one responder service")]
    NoServices,
    #[error("the end must be after the start")]
    EndNotAfterStart,
    #[error("a declaration runs at most {MAX_DURATION_HOURS} hours from its start")]
    TooLong,
    #[error("the end is already past")]
    AlreadyOver,
    #[error(
        "the operator who took the first step cannot confirm it: a second, different operator must"
    )]
    SameOperator,
    #[error("the declaration is confirmed already")]
    AlreadyConfirmed,
    #[error("the declaration is not confirmed yet")]
    NotConfirmed,
    #[error("the declaration has ended")]
    Ended,
    #[error("no renewal is waiting for confirmation")]
    NoRenewal,
    #[error("a renewal is waiting for confirmation already")]
    RenewalPending,
    #[error("a renewal must end later than the declaration does now")]
    RenewalNotLater,
    #[error("a renewal ends at most {MAX_DURATION_HOURS} hours after it is proposed")]
    RenewalTooLong,
}

impl DeclarationError {
    /// A stable code for each refusal (problem `reason` members, console messages).
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadReason => "bad-reason",
            Self::NoCategories => "no-categories",
            Self::NoServices => "no-services",
            Self::EndNotAfterStart => "end-not-after-start",
            Self::TooLong => "too-long",
            Self::AlreadyOver => "already-over",
            Self::SameOperator => "same-operator",
            Self::AlreadyConfirmed => "already-confirmed",
            Self::NotConfirmed => "not-confirmed",
            Self::Ended => "ended",
            Self::NoRenewal => "no-renewal",
            Self::RenewalPending => "renewal-pending",
            Self::RenewalNotLater => "renewal-not-later",
            Self::RenewalTooLong => "renewal-too-long",
        }
    }
}

/// What an operator declares; [`Declaration::declare`] checks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclarationDraft {
    pub reason: String,
    pub legal_basis: EmergencyLegalBasis,
    pub categories: BTreeSet<CategoryId>,
    pub services: BTreeSet<ServiceId>,
    pub area: Area,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// One operator's step, and when they took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub by: OperatorId,
    pub at: DateTime<Utc>,
}

/// A later end proposed by one operator, waiting for a second one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Renewal {
    pub ends_at: DateTime<Utc>,
    pub proposed: Step,
}

/// Where a declaration stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclarationState {
    /// Declared, waiting for a second operator: releases nothing.
    Pending,
    /// Confirmed, before its start.
    Scheduled,
    /// Confirmed and within its window: responders in scope read without consent.
    InForce,
    /// Ended early, or past its end (confirmed or not).
    Ended,
}

impl DeclarationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Scheduled => "scheduled",
            Self::InForce => "in_force",
            Self::Ended => "ended",
        }
    }
}

/// A declared emergency (非常時宣言). Public: it holds no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    pub id: DeclarationId,
    pub reason: String,
    pub legal_basis: EmergencyLegalBasis,
    pub categories: BTreeSet<CategoryId>,
    pub services: BTreeSet<ServiceId>,
    pub area: Area,
    pub starts_at: DateTime<Utc>,
    /// The end in force: moved only by a confirmed renewal.
    pub ends_at: DateTime<Utc>,
    pub declared: Step,
    pub confirmed: Option<Step>,
    pub renewal: Option<Renewal>,
    pub ended: Option<Step>,
    /// The number of steps taken after the declaration itself.
    pub revision: u32,
}

fn max_duration() -> TimeDelta {
    TimeDelta::hours(MAX_DURATION_HOURS)
}

impl Declaration {
    /// The first step: checks the draft. The declaration releases nothing until
    /// [`Declaration::confirm`]ed.
    pub fn declare(
        id: DeclarationId,
        draft: DeclarationDraft,
        by: OperatorId,
        now: DateTime<Utc>,
    ) -> Result<Self, DeclarationError> {
        use DeclarationError as E;
        let reason = draft.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(E::BadReason);
        }
        if draft.categories.is_empty() {
            return Err(E::NoCategories);
        }
        if draft.services.is_empty() {
            return Err(E::NoServices);
        }
        if draft.ends_at <= draft.starts_at {
            return Err(E::EndNotAfterStart);
        }
        if draft.ends_at - draft.starts_at > max_duration() {
            return Err(E::TooLong);
        }
        if draft.ends_at <= now {
            return Err(E::AlreadyOver);
        }
        Ok(Self {
            id,
            reason: reason.to_owned(),
            legal_basis: draft.legal_basis,
            categories: draft.categories,
            services: draft.services,
            area: draft.area,
            starts_at: draft.starts_at,
            ends_at: draft.ends_at,
            declared: Step { by, at: now },
            confirmed: None,
            renewal: None,
            ended: None,
            revision: 0,
        })
    }

    /// Where it stands at `now`. An early end counts once recorded, whatever its time says.
    pub fn state_at(&self, now: DateTime<Utc>) -> DeclarationState {
        if self.ended.is_some() || self.ends_at <= now {
            DeclarationState::Ended
        } else if self.confirmed.is_none() {
            DeclarationState::Pending
        } else if now < self.starts_at {
            DeclarationState::Scheduled
        } else {
            DeclarationState::InForce
        }
    }

    pub fn in_force_at(&self, now: DateTime<Utc>) -> bool {
        self.state_at(now) == DeclarationState::InForce
    }

    /// Whether it releases `categories` (all of them) to `service`, its window aside.
    pub fn covers(&self, service: &ServiceId, categories: &BTreeSet<CategoryId>) -> bool {
        self.services.contains(service) && categories.is_subset(&self.categories)
    }

    /// The second operator's step: it takes effect (from its start).
    pub fn confirm(mut self, by: OperatorId, now: DateTime<Utc>) -> Result<Self, DeclarationError> {
        match self.state_at(now) {
            DeclarationState::Ended => return Err(DeclarationError::Ended),
            DeclarationState::Pending => {}
            _ => return Err(DeclarationError::AlreadyConfirmed),
        }
        // INVARIANT: two different people: whoever declared cannot also confirm.
        if by == self.declared.by {
            return Err(DeclarationError::SameOperator);
        }
        self.confirmed = Some(Step { by, at: now });
        Ok(self.next())
    }

    /// Proposes a later end, at most 72 hours from now; it takes effect once confirmed.
    pub fn propose_renewal(
        mut self,
        by: OperatorId,
        ends_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Self, DeclarationError> {
        self.confirmed_and_running(now)?;
        if self.renewal.is_some() {
            return Err(DeclarationError::RenewalPending);
        }
        if ends_at <= self.ends_at {
            return Err(DeclarationError::RenewalNotLater);
        }
        if ends_at - now > max_duration() {
            return Err(DeclarationError::RenewalTooLong);
        }
        self.renewal = Some(Renewal {
            ends_at,
            proposed: Step { by, at: now },
        });
        Ok(self.next())
    }

    /// A second operator confirms the renewal waiting: the end moves. Must happen before the
    /// current end, or the declaration is over.
    pub fn confirm_renewal(
        mut self,
        by: OperatorId,
        now: DateTime<Utc>,
    ) -> Result<Self, DeclarationError> {
        self.confirmed_and_running(now)?;
        let Some(renewal) = self.renewal.take() else {
            return Err(DeclarationError::NoRenewal);
        };
        // INVARIANT: two different people for a renewal too.
        if by == renewal.proposed.by {
            return Err(DeclarationError::SameOperator);
        }
        self.ends_at = renewal.ends_at;
        Ok(self.next())
    }

    /// Ends it now (any one operator; a pending one is withdrawn): nothing more is released
    /// under it.
    pub fn end(mut self, by: OperatorId, now: DateTime<Utc>) -> Result<Self, DeclarationError> {
        if self.state_at(now) == DeclarationState::Ended {
            return Err(DeclarationError::Ended);
        }
        self.ended = Some(Step { by, at: now });
        self.renewal = None;
        Ok(self.next())
    }

    fn confirmed_and_running(&self, now: DateTime<Utc>) -> Result<(), DeclarationError> {
        match self.state_at(now) {
            DeclarationState::Ended => Err(DeclarationError::Ended),
            DeclarationState::Pending => Err(DeclarationError::NotConfirmed),
            DeclarationState::Scheduled | DeclarationState::InForce => Ok(()),
        }
    }

    fn next(mut self) -> Self {
        self.revision = self.revision.saturating_add(1);
        self
    }
}

#[cfg(test)]
mod tests;
