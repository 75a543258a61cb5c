//! The one integration-test binary. Tests that need a real cluster are `#[ignore]` and read
//! `KUBECONFIG`; everything else runs against the local API emulation (`tests/emu`) and real
//! database servers started in temporary directories (`tests/support`).

mod adhoc;
mod chart;
mod create;
mod db_restore;
mod db_scripts;
mod download;
mod e2e;
mod e2e_download;
mod e2e_flows;
mod e2e_rbac;
mod e2e_rebind;
mod e2e_restore;
mod e2e_snapshot_flows;
mod e2e_status;
#[path = "../emu/mod.rs"]
#[allow(dead_code)]
mod emu;
mod emu_kubelet;
mod emu_tests;
mod exec_compat;
mod harness;
mod http_server;
mod lifecycle;
mod metrics;
mod notify;
mod rebind;
mod restore;
mod settings;
mod shell;
mod snapshot_flows;
mod status;
#[path = "../support/mod.rs"]
#[allow(dead_code)]
mod support;
