//! renkei-bench
