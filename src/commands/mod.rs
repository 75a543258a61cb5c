//! Commands: each gathers from the cluster, plans with the pure modules, then applies.

pub mod create;
pub mod env;
