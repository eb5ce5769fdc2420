//! Sluice protocol.
