//! Sluice client.
