//! `make bench` (restore): what `backup-ns restore dump` costs on top of loading the dump.
//!
//! Seeds a PostgreSQL table with base64 of md5 sums (text gzip barely shrinks) until its gzipped
//! dump is estimated, from a sample batch, at `BENCH_DUMP_BYTES` (default 1 GiB), and backs it
//! up with `backup-ns create` against the local API emulation. The size reached is printed, not
//! assumed. Each round then loads that dump twice into a fresh database: (a) the bare load,
//! `gzip -cd | psql --single-transaction` run directly, and (b) `backup-ns restore dump latest
//! --into-database` through the emulation (temporary PVC, helper pod, the dump read twice
//! through the helper — verify, then load — and streamed into the database pod's psql). The
//! whole is done first at a quarter of the size, so the output compares backup-ns's peak RSS
//! (`VmHWM` of the backup-ns process alone; the emulation and the scripts it runs live in this
//! process and its children, and are not counted) at two dump sizes: it must not grow.
//! `BENCH_ROUNDS` (default 1) rounds per size; the fastest of each is compared.

#[path = "../tests/emu/mod.rs"]
#[allow(dead_code, unused_imports)]
mod emu;
#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use emu::{fixtures, Emu, ExecEnv};
use serde_json::json;
use support::Postgres;

const NS: &str = "bench";
const DB: &str = "bench";
const MIB: f64 = (1 << 20) as f64;

/// Rows `from..=to` of table `big`: an id and 172 characters of base64 (8 md5 sums' bytes).
fn insert(pg: &Postgres, from: u64, to: u64) {
    let md5s: Vec<String> = (1..=8).map(|k| format!("md5((g * {k})::text)")).collect();
    pg.psql_in(
        DB,
        &format!(
            "INSERT INTO big SELECT g, translate(encode(decode({}, 'hex'), 'base64'), E'\\n', '') \
             FROM generate_series({from}, {to}) g",
            md5s.join(" || ")
        ),
    );
}

/// Bytes of `pg_dump | gzip` of database `bench` as it is now (the sample for the estimate).
fn gzipped_dump_bytes(pg: &Postgres) -> u64 {
    let mut dump = pg
        .client("pg_dump", DB)
        .stdout(Stdio::piped())
        .spawn()
        .expect("pg_dump");
    let out = Command::new("sh")
        .args(["-c", "gzip -c | wc -c"])
        .stdin(dump.stdout.take().expect("piped"))
        .output()
        .expect("gzip | wc");
    assert!(dump.wait().expect("pg_dump").success(), "pg_dump failed");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("wc -c")
}

/// The emulated namespace: PVC `data` (backed by `volume`) mounted by the database pod at
/// `volume`, whose exec runs here; the kubelet runs helper pods' exec here too.
fn world(emu: &Emu, pg: &Postgres, volume: &Path) {
    emu.create(fixtures::storage_class("emu-csi", "Immediate", true));
    emu.create(fixtures::pvc(NS, "data", true));
    emu.create(fixtures::deployment(NS, "app-base", &[("app", "db")], &[]));
    let env = pg.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut pod = fixtures::pod(
        NS,
        "app-base-0",
        &[("app", "db")],
        &[("postgres", &env)],
        "Running",
        true,
        false,
    );
    let dir = volume.display().to_string();
    pod["spec"]["volumes"] =
        json!([{ "name": "data", "persistentVolumeClaim": { "claimName": "data" } }]);
    pod["spec"]["containers"][0]["volumeMounts"] = json!([{ "name": "data", "mountPath": dir }]);
    emu.create(pod);
    let exec = ExecEnv {
        path: Some(support::tool_path()),
        ..Default::default()
    };
    emu.set_pod_exec(
        NS,
        "app-base-0",
        ExecEnv {
            cwd: Some(volume.to_path_buf()),
            ..exec.clone()
        },
    );
    emu.set_pvc_dir(NS, "data", volume);
    emu.set_kubelet_exec(exec);
}

fn backup_ns(kubeconfig: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backup-ns"));
    cmd.args(args)
        .env_clear()
        .env("PATH", support::tool_path())
        .env("KUBECONFIG", kubeconfig)
        .env("BAK_NAMESPACE", NS)
        .stdin(Stdio::null());
    cmd
}

/// (a) The bare load into a fresh database `into`.
fn bare_load(pg: &Postgres, dump: &Path, into: &str) -> Duration {
    pg.createdb(into);
    let started = Instant::now();
    let status = Command::new("sh")
        .env_clear()
        .envs(pg.client_env(into))
        .env("PATH", support::tool_path())
        .args([
            "-c",
            "gzip -cd \"$1\" | psql -X -q -v ON_ERROR_STOP=1 --single-transaction >/dev/null",
            "sh",
        ])
        .arg(dump)
        .status()
        .expect("sh");
    assert!(status.success(), "gzip -cd | psql failed: {status}");
    started.elapsed()
}

/// (b) `backup-ns restore dump latest` into a fresh database `into`; wall time and peak RSS.
fn restore_dump(kubeconfig: &Path, into: &str, log: &Path) -> (Duration, u64) {
    let uid = support::unprivileged()
        .map_or(65534, |(uid, _)| uid)
        .to_string();
    let args = [
        "restore",
        "dump",
        "latest",
        "--pvc",
        "data",
        "--into-database",
        into,
        "--yes",
        "--helper-uid",
        &uid,
        "-q",
    ];
    let started = Instant::now();
    let child = backup_ns(kubeconfig, &args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("backup-ns");
    let (status, rss) = support::wait_peak_rss(child);
    let elapsed = started.elapsed();
    assert!(
        status.success(),
        "backup-ns restore dump failed: {status}\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    (elapsed, rss)
}

struct Figures {
    dump_bytes: u64,
    sql_bytes: u64,
    bare: Duration,
    via: Duration,
    rss_kib: u64,
}

/// Grows `big` to `rows`, backs it up with `create`, and measures `rounds` restores of it.
fn measure(
    pg: &Postgres,
    kubeconfig: &Path,
    volume: &Path,
    rows: (u64, u64),
    rounds: u64,
) -> Figures {
    let t = Instant::now();
    let batch = 500_000;
    let mut next = rows.0;
    while next < rows.1 {
        let to = (next + batch).min(rows.1);
        insert(pg, next + 1, to);
        next = to;
    }
    let seeded = t.elapsed();
    let t = Instant::now();
    let dump = volume.join("dump.sql.gz");
    let out = backup_ns(kubeconfig, &["create", "-q"])
        .env("BAK_DB_POSTGRES", "true")
        .env("BAK_DB_POSTGRES_PORT", pg.port.to_string())
        .env("BAK_DB_POSTGRES_DB", DB)
        .env("BAK_DB_POSTGRES_DUMP_FILE", &dump)
        .output()
        .expect("backup-ns create");
    assert!(
        out.status.success(),
        "backup-ns create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump_bytes = std::fs::metadata(&dump).expect("dump").len();
    let sql = Command::new("sh")
        .args(["-c", "gzip -cd \"$1\" | wc -c", "sh"])
        .arg(&dump)
        .output()
        .expect("gzip -cd | wc -c");
    let sql_bytes = String::from_utf8_lossy(&sql.stdout)
        .trim()
        .parse()
        .expect("wc -c");
    println!(
        "restore bench: {} rows seeded in {seeded:.0?}, backed up by create in {:.0?}: dump {:.1} MiB gzip, {:.1} MiB SQL",
        rows.1,
        t.elapsed(),
        dump_bytes as f64 / MIB,
        sql_bytes as f64 / MIB
    );
    let log = volume.with_file_name("restore.log");
    let (mut bare, mut via, mut rss_kib) = (Duration::MAX, Duration::MAX, 0);
    for round in 1..=rounds {
        let (a, b) = (format!("bench_a{round}"), format!("bench_b{round}"));
        let d = bare_load(pg, &dump, &a);
        pg.psql(&format!("DROP DATABASE {a}"));
        let (r, rss) = restore_dump(kubeconfig, &b, &log);
        let restored: u64 = pg
            .psql_in(&b, "SELECT count(*) FROM big")
            .trim()
            .parse()
            .expect("count");
        assert_eq!(restored, rows.1, "every row restored");
        pg.psql(&format!("DROP DATABASE {b}"));
        println!(
            "  round {round}: bare load {d:.2?}, backup-ns restore dump {r:.2?}, peak RSS {:.1} MiB",
            rss as f64 / 1024.0
        );
        (bare, via, rss_kib) = (bare.min(d), via.min(r), rss_kib.max(rss));
    }
    Figures {
        dump_bytes,
        sql_bytes,
        bare,
        via,
        rss_kib,
    }
}

fn report(label: &str, f: &Figures, rounds: u64) {
    println!(
        "restore bench ({label}): dump {:.1} MiB gzip ({} bytes), SQL {:.1} MiB ({} bytes)",
        f.dump_bytes as f64 / MIB,
        f.dump_bytes,
        f.sql_bytes as f64 / MIB,
        f.sql_bytes
    );
    println!(
        "restore bench ({label}): (a) gzip -cd | psql        {:.2?} (fastest of {rounds})",
        f.bare
    );
    println!(
        "restore bench ({label}): (b) backup-ns restore dump {:.2?} (fastest of {rounds}); ratio b/a {:.3}",
        f.via,
        f.via.as_secs_f64() / f.bare.as_secs_f64()
    );
    println!(
        "restore bench ({label}): backup-ns peak RSS         {:.1} MiB",
        f.rss_kib as f64 / 1024.0
    );
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` only builds and starts it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("restore bench: skipped (run it with `make bench`)");
        return;
    }
    let want = support::env_u64("BENCH_DUMP_BYTES", 1 << 30);
    let rounds = support::env_u64("BENCH_ROUNDS", 1).max(1);
    let pg = Postgres::start();
    pg.createdb(DB);
    pg.psql_in(DB, "CREATE TABLE big (id bigint, b64 text)");
    // The estimate: the gzipped dump of a sample batch, per row.
    let sample = 200_000;
    insert(&pg, 1, sample);
    let per_row = gzipped_dump_bytes(&pg) as f64 / sample as f64;
    let full = ((want as f64 / per_row) * 1.02).ceil() as u64;
    let small = full / 4;
    println!(
        "restore bench: target dump {:.1} MiB gzip; seeded by estimate ({per_row:.1} gzip bytes \
         per row from a {sample}-row sample): {small} rows, then {full} rows",
        want as f64 / MIB
    );

    let emu = Emu::builder()
        .snapshot_ready_after(Duration::ZERO)
        .start()
        .await;
    let work = tempfile::tempdir().expect("temp dir");
    let kubeconfig = emu.write_kubeconfig(work.path()).expect("kubeconfig");
    let volume = work.path().join("volume");
    std::fs::create_dir(&volume).expect("volume dir");
    world(&emu, &pg, &volume);

    let quarter = measure(
        &pg,
        &kubeconfig,
        &volume,
        (sample, small.max(sample)),
        rounds,
    );
    let whole = measure(&pg, &kubeconfig, &volume, (small.max(sample), full), rounds);
    report("1/4 size", &quarter, rounds);
    report("full size", &whole, rounds);
    println!(
        "restore bench: peak RSS at {:.2}x the dump: {:.1} MiB vs {:.1} MiB, ratio {:.3} (flat: ~1.0)",
        whole.dump_bytes as f64 / quarter.dump_bytes as f64,
        whole.rss_kib as f64 / 1024.0,
        quarter.rss_kib as f64 / 1024.0,
        whole.rss_kib as f64 / quarter.rss_kib as f64
    );
    println!(
        "restore bench: RSS is backup-ns's own process only; the API emulation (in this bench's \
         process) and the scripts it runs for the pods are not counted; (b) includes the \
         emulation's copy of the snapshot into the temporary PVC"
    );
    emu.assert_no_unexpected();
    pg.psql(&format!("DROP DATABASE {DB}"));
}
