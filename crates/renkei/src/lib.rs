//! The `renkei` program's library half: starting a hub from configuration, an operator's
//! client of a hub's API, and the demo town (a fictional city with residents, three data
//! providers and three services).
//!
//! It owns wiring and fixtures only; flows live in `renkei-hub`, rules in `renkei-domain`.

pub mod admin;
pub mod demo;
pub mod demo_kit;
pub mod demo_onboard;
pub mod run;
pub mod town;
