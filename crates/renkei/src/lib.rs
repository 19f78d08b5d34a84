//! The `renkei` program's library half: starting a hub from configuration, and the demo town
//! (a fictional city with residents, three data providers and three services).
//!
//! It owns wiring and fixtures only; flows live in `renkei-hub`, rules in `renkei-domain`.

pub mod demo;
pub mod demo_kit;
pub mod run;
pub mod town;
