//! The one integration-test binary. Tests that need a real cluster are `#[ignore]` and read
//! `KUBECONFIG`; everything else runs against the local API emulation (`tests/emu`) and real
//! database servers started in temporary directories (`tests/support`).

#[path = "../emu/mod.rs"]
#[allow(dead_code)]
mod emu;
#[path = "../support/mod.rs"]
#[allow(dead_code)]
mod support;
mod emu_tests;
mod db_scripts;
mod create;
mod e2e;
mod lifecycle;
