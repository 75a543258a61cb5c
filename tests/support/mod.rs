//! Test support: real database servers in temporary directories. PLACEHOLDER.
