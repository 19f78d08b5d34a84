//! renkei-log
