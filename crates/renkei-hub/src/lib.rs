//! renkei-hub
