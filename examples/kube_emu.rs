//! The API emulation of the tests as a standalone server, to run backup-ns (or kubectl-like
//! tools) against by hand: `cargo run --example kube-emu -- --kubeconfig-out /tmp/kc --seed
//! objects.json`, then `KUBECONFIG=/tmp/kc backup-ns …`. Prints the server URL on stdout, reports
//! requests it cannot emulate on stderr, and serves until killed.

#[path = "../tests/emu/mod.rs"]
#[allow(dead_code)]
mod emu;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use serde_json::Value;

#[derive(Parser)]
#[command(about = "A local Kubernetes API emulation for backup-ns")]
struct Opts {
    /// Write a kubeconfig pointing at the server to this file.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// A JSON array of objects to create at start (a bound PVC, a Deployment, its Pod, …).
    #[arg(long)]
    seed: Option<PathBuf>,
    /// How long a new VolumeSnapshot takes to become ready.
    #[arg(long, default_value_t = 200)]
    snapshot_ready_after_ms: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let emu = emu::Emu::builder()
        .snapshot_ready_after(Duration::from_millis(opts.snapshot_ready_after_ms))
        .start()
        .await;
    if let Some(seed) = &opts.seed {
        let text =
            std::fs::read_to_string(seed).with_context(|| format!("reading {}", seed.display()))?;
        let objects: Vec<Value> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON array", seed.display()))?;
        for obj in objects {
            let what = format!("{} {}", obj["kind"], obj["metadata"]["name"]);
            emu.try_create(obj)
                .with_context(|| format!("seeding {what}"))?;
        }
    }
    if let Some(path) = &opts.kubeconfig_out {
        std::fs::write(path, emu.kubeconfig_yaml())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{}", emu.url());
    std::io::stdout().flush()?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        for u in emu.take_unexpected() {
            eprintln!("unexpected request: {u}");
        }
    }
}
