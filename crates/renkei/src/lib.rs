//! renkei
