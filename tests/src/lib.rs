//! Sluice end-to-end tests.
