//! renkei-protocol
