//! renkei-store
