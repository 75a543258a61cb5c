//! A real PostgreSQL server in a temporary directory (initdb + postgres, TCP on 127.0.0.1 only,
//! scram-sha-256 for everyone, fsync off).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::{
    as_unprivileged, free_port, give_to_unprivileged, quote_ident, run_ok, spawn_tied, stop_child,
};

/// A running PostgreSQL server; stopped and deleted on drop (or at exit for [`Postgres::shared`]).
pub struct Postgres {
    pub port: u16,
    pub superuser: String,
    pub password: String,
    bin: PathBuf,
    child: Mutex<Option<Child>>,
    dir: Mutex<Option<tempfile::TempDir>>,
}

impl Postgres {
    /// The directory with `initdb`, `postgres`, `psql`, `pg_dump` of the newest installed major
    /// version (`/usr/lib/postgresql/N/bin`), or `$BACKUP_NS_PG_BIN`.
    pub fn bin_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("BACKUP_NS_PG_BIN") {
            return dir.into();
        }
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is not installed (/usr/lib/postgresql): apt-get install postgresql")
            .filter_map(|e| e.ok())
            .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
            .filter(|(_, bin)| bin.join("postgres").exists())
            .collect();
        versions.sort();
        versions
            .pop()
            .expect("no /usr/lib/postgresql/N/bin/postgres")
            .1
    }

    /// Starts a new server (initdb takes about a second).
    pub fn start() -> Postgres {
        let bin = Self::bin_dir();
        let dir = super::unprivileged_temp_dir("backup-ns-pg-");
        let superuser = "bns_super".to_string();
        let password = format!("pg-{}-secret", std::process::id());
        let pwfile = dir.path().join("pwfile");
        fs::write(&pwfile, &password).expect("write the password file");
        give_to_unprivileged(&pwfile);
        let data = dir.path().join("data");
        run_ok(
            as_unprivileged(&mut Command::new(bin.join("initdb")))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    &superuser,
                    "-A",
                    "scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "-N",
                ])
                .arg(format!("--pwfile={}", pwfile.display())),
            "initdb",
        );
        fs::remove_file(&pwfile).expect("remove the password file");

        let pg = Postgres {
            port: 0,
            superuser,
            password,
            bin,
            child: Mutex::new(None),
            dir: Mutex::new(Some(dir)),
        };
        pg.launch()
    }

    /// A server shared by every caller in this process, stopped at exit.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(|| {
            super::at_exit(|| {
                if let Some(pg) = SHARED.get() {
                    pg.shutdown();
                }
            });
            Postgres::start()
        })
    }

    /// Starts the postmaster on a free port; retries with another port if it cannot listen.
    fn launch(mut self) -> Postgres {
        let data = self.data_dir();
        let log = self.data_dir().with_file_name("server.log");
        for _attempt in 0..5 {
            let port = free_port();
            let logfile = fs::File::create(&log).expect("create the server log");
            give_to_unprivileged(&log);
            let mut cmd = Command::new(self.bin.join("postgres"));
            as_unprivileged(&mut cmd)
                .arg("-D")
                .arg(&data)
                .arg("-p")
                .arg(port.to_string())
                .args([
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                ])
                .args([
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ])
                .args(["-c", "max_connections=60", "-c", "shared_buffers=128MB"])
                .stdin(Stdio::null())
                .stdout(logfile.try_clone().expect("clone log handle"))
                .stderr(logfile);
            let mut child = spawn_tied(cmd).expect("spawn postgres");
            self.port = port;
            let mut exited = false;
            let done = super::wait_until(Duration::from_secs(30), || {
                exited = !matches!(child.try_wait(), Ok(None));
                exited || self.try_psql_in("postgres", "SELECT 1").is_ok()
            });
            if done && !exited {
                *self.child.lock().unwrap() = Some(child);
                return self;
            }
            stop_child(&mut child, libc::SIGKILL);
        }
        panic!(
            "postgres did not start:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn data_dir(&self) -> PathBuf {
        let dir = self.dir.lock().unwrap();
        dir.as_ref()
            .expect("server directory removed")
            .path()
            .join("data")
    }

    /// Stops the server (fast shutdown); its files stay until drop.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            stop_child(&mut child, libc::SIGINT);
        }
    }

    /// Stops the server and deletes its files.
    fn shutdown(&self) {
        self.stop();
        self.dir.lock().unwrap().take();
    }

    /// The variables of the official image: `POSTGRES_USER`, `POSTGRES_PASSWORD`, `POSTGRES_DB`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("POSTGRES_USER".into(), self.superuser.clone()),
            ("POSTGRES_PASSWORD".into(), self.password.clone()),
            ("POSTGRES_DB".into(), "postgres".into()),
        ]
    }

    /// `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE` for a client of this server.
    pub fn client_env(&self, database: &str) -> Vec<(String, String)> {
        vec![
            ("PGHOST".into(), "127.0.0.1".into()),
            ("PGPORT".into(), self.port.to_string()),
            ("PGUSER".into(), self.superuser.clone()),
            ("PGPASSWORD".into(), self.password.clone()),
            ("PGDATABASE".into(), database.into()),
        ]
    }

    /// A client tool of this server's version (`psql`, `pg_dump`, …) with [`Self::client_env`].
    pub fn client(&self, tool: &str, database: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(tool));
        cmd.env_clear()
            .envs(self.client_env(database))
            .env("PGAPPNAME", "backup-ns-tests");
        cmd
    }

    /// Runs `sql` (any number of statements) as the superuser in database `postgres`; returns
    /// the unaligned, tuples-only output. Panics on error.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in("postgres", sql)
    }

    /// [`Self::psql`] in `database`.
    pub fn psql_in(&self, database: &str, sql: &str) -> String {
        self.try_psql_in(database, sql)
            .unwrap_or_else(|e| panic!("psql in {database:?} failed: {e}\nSQL: {sql}"))
    }

    /// [`Self::psql_in`] returning psql's stderr on failure.
    pub fn try_psql_in(&self, database: &str, sql: &str) -> Result<String, String> {
        let mut cmd = self.client("psql", database);
        cmd.args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-f", "-"]);
        super::pipe_sql(cmd, sql)
    }

    /// Creates database `name` (any characters) owned by the superuser.
    pub fn createdb(&self, name: &str) {
        self.psql(&format!("CREATE DATABASE {}", quote_ident(name, '"')));
    }

    /// Restores a gzipped plain dump into `database` with `gzip -cd | psql -v ON_ERROR_STOP=1`.
    pub fn restore_gz(&self, database: &str, dump: &Path) {
        let mut gunzip = Command::new("gzip")
            .arg("-cd")
            .arg(dump)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn gzip -cd");
        let out = self
            .client("psql", database)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .stdin(gunzip.stdout.take().expect("piped stdout"))
            .stdout(Stdio::null())
            .output()
            .expect("run psql");
        let gz = gunzip.wait().expect("wait for gzip");
        assert!(gz.success(), "gzip -cd {} failed: {gz}", dump.display());
        assert!(
            out.status.success(),
            "restoring {} into {database:?} failed: {}",
            dump.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.shutdown();
    }
}
