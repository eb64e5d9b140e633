//! Decisions (placeholder).
