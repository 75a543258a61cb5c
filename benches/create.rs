//! `make bench` (create): what backup-ns adds on top of the dump itself.
//!
//! Dumps a PostgreSQL database of at least 1 GiB (`BENCH_DB_BYTES` to change) twice per round:
//! once by running the very dump script backup-ns sends into the container, directly with
//! `sh`, and once through `backup-ns create` against the local API emulation (exec over
//! WebSocket, checks, VolumeSnapshot, readiness wait, labels). Prints both wall times, their
//! ratio (goal ≤ 1.05) and backup-ns's peak RSS (`VmHWM`; goal ≤ 15 MiB). Rounds alternate
//! the two runs (`BENCH_ROUNDS`, default 3) and the fastest of each is compared, which is the
//! figure least disturbed by the page cache and other load.

#[path = "../tests/emu/mod.rs"]
#[allow(dead_code, unused_imports)]
mod emu;
#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backup_ns::db::{self, DbTarget, Engine, ValueRef};
use emu::{fixtures, Emu, ExecEnv};
use support::Postgres;

const NS: &str = "bench";

/// Fills database `bench` until it holds at least `bytes`.
fn seed(pg: &Postgres, bytes: u64) -> u64 {
    pg.createdb("bench");
    pg.psql_in(
        "bench",
        "CREATE TABLE big (id bigint, a text, b text, c text, at timestamptz)",
    );
    let mut next = 0u64;
    loop {
        let size: u64 = pg
            .psql_in("bench", "SELECT pg_database_size('bench')")
            .trim()
            .parse()
            .expect("size");
        if size >= bytes {
            return size;
        }
        let batch = 1_000_000u64;
        pg.psql_in(
            "bench",
            &format!(
                "INSERT INTO big SELECT g, md5(g::text), md5((g * 7)::text), repeat(md5((g * 13)::text), 4), \
                 timestamptz '2025-01-01' + g * interval '1 second' FROM generate_series({}, {}) g",
                next + 1,
                next + batch
            ),
        );
        next += batch;
    }
}

/// The dump script, run directly with `sh` exactly as backup-ns runs it in the container.
fn direct(pg: &Postgres, target: &DbTarget, dir: &Path) -> Duration {
    let script = db::dump_script(target, 3 * 3600);
    let started = Instant::now();
    let mut child = Command::new(&script.argv[0])
        .args(&script.argv[1..])
        .current_dir(dir)
        .env_clear()
        .env("PATH", support::tool_path())
        .envs(pg.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(script.stdin.as_bytes())
        .expect("password line");
    // stdin stays open until the script exits, as over exec.
    let out = child.wait_with_output().expect("dump");
    drop(stdin);
    assert!(out.status.success(), "direct dump failed");
    started.elapsed()
}

fn through_backup_ns(pg: &Postgres, kubeconfig: &Path, dump: &Path) -> (Duration, u64) {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_backup-ns"))
        .args(["create", "-q"])
        .env_clear()
        .env("KUBECONFIG", kubeconfig)
        .env("BAK_NAMESPACE", NS)
        .env("BAK_DB_POSTGRES", "true")
        .env("BAK_DB_POSTGRES_PORT", pg.port.to_string())
        .env("BAK_DB_POSTGRES_DB", "bench")
        .env("BAK_DB_POSTGRES_DUMP_FILE", dump)
        .env("BAK_LABEL_VS_RETAIN", "daily_weekly_monthly")
        .stdout(Stdio::null())
        .spawn()
        .expect("backup-ns");
    let (status, rss_kib) = support::wait_peak_rss(child);
    assert!(status.success(), "backup-ns create failed: {status}");
    (started.elapsed(), rss_kib)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` only builds and starts it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("create bench: skipped (run it with `make bench`)");
        return;
    }
    let want = support::env_u64("BENCH_DB_BYTES", 1 << 30);
    let rounds = support::env_u64("BENCH_ROUNDS", 3).max(1);
    let pg = Postgres::start();
    let t = Instant::now();
    let size = seed(&pg, want);
    println!(
        "create bench: database of {:.2} GiB seeded in {:.0?}",
        size as f64 / (1u64 << 30) as f64,
        t.elapsed()
    );

    let emu = Emu::builder()
        .snapshot_ready_after(Duration::ZERO)
        .start()
        .await;
    let work = tempfile::tempdir().expect("temp dir");
    let kubeconfig = emu.write_kubeconfig(work.path()).expect("kubeconfig");
    emu.create(fixtures::pvc(NS, "data", true));
    emu.create(fixtures::deployment(NS, "app-base", &[("app", "db")], &[]));
    let env = pg.env();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    emu.create(fixtures::pod(
        NS,
        "app-base-0",
        &[("app", "db")],
        &[("postgres", &env_refs)],
        "Running",
        true,
        false,
    ));
    emu.set_pod_exec(
        NS,
        "app-base-0",
        ExecEnv {
            cwd: Some(work.path().to_path_buf()),
            path: Some(support::tool_path()),
            ..Default::default()
        },
    );

    let target = DbTarget {
        engine: Engine::Postgres,
        host: "127.0.0.1".into(),
        port: pg.port,
        user: ValueRef::Env("POSTGRES_USER".into()),
        password: ValueRef::Env("POSTGRES_PASSWORD".into()),
        database: ValueRef::Literal("bench".into()),
        dump_file: work.path().join("direct.sql.gz").display().to_string(),
        default_character_set: String::new(),
    };
    let via_dump = work.path().join("dump.sql.gz");
    let (mut plain, mut via, mut peak) = (Vec::new(), Vec::new(), 0u64);
    for round in 1..=rounds {
        let d = direct(&pg, &target, work.path());
        let (b, rss) = through_backup_ns(&pg, &kubeconfig, &via_dump);
        println!(
            "  round {round}: sh {d:.2?}, backup-ns create {b:.2?}, peak RSS {:.1} MiB",
            rss as f64 / 1024.0
        );
        plain.push(d);
        via.push(b);
        peak = peak.max(rss);
    }
    let (d, b) = (
        plain.into_iter().min().unwrap_or_default(),
        via.into_iter().min().unwrap_or_default(),
    );
    let dump_bytes = std::fs::metadata(&via_dump).map(|m| m.len()).unwrap_or(0);
    println!(
        "create bench: dump {:.1} MiB gzip",
        dump_bytes as f64 / (1 << 20) as f64
    );
    println!("create bench: sh dump script   {d:.2?} (fastest of {rounds})");
    println!("create bench: backup-ns create {b:.2?} (fastest of {rounds})");
    println!(
        "create bench: overhead ratio   {:.3} (goal <= 1.05)",
        b.as_secs_f64() / d.as_secs_f64()
    );
    println!(
        "create bench: peak RSS         {:.1} MiB (goal <= 15 MiB)",
        peak as f64 / 1024.0
    );
    emu.assert_no_unexpected();
}
