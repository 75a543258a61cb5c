//! A real MariaDB server in a temporary directory (mariadb-install-db + mariadbd, TCP on
//! 127.0.0.1, `root@'%'` with a password and no other root account reachable over TCP).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::{as_unprivileged, free_port, quote_ident, run_ok, spawn_tied, stop_child};

/// A running MariaDB server; stopped and deleted on drop (or at exit for [`Mariadb::shared`]).
pub struct Mariadb {
    pub port: u16,
    pub superuser: String,
    pub password: String,
    child: Mutex<Option<Child>>,
    dir: Mutex<Option<tempfile::TempDir>>,
}

impl Mariadb {
    /// Starts a new server (mariadb-install-db takes a few seconds).
    pub fn start() -> Mariadb {
        let dir = super::unprivileged_temp_dir("backup-ns-maria-");
        run_ok(
            as_unprivileged(&mut Command::new("mariadb-install-db"))
                .arg("--no-defaults")
                .arg(format!("--datadir={}", dir.path().join("data").display()))
                .args([
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    "--skip-name-resolve",
                ]),
            "mariadb-install-db",
        );
        let mut db = Mariadb {
            port: 0,
            superuser: "root".into(),
            password: format!("maria-{}-secret", std::process::id()),
            child: Mutex::new(None),
            dir: Mutex::new(Some(dir)),
        };
        db.launch();
        // Fresh installs have password-less root accounts for localhost, 127.0.0.1, ::1 and the
        // host name; keep one root, reachable over TCP with a password only.
        db.socket_sql(&format!(
            "DELETE FROM mysql.global_priv WHERE User IN ('root', '') AND Host <> 'localhost';
             FLUSH PRIVILEGES;
             CREATE USER 'root'@'%' IDENTIFIED BY '{pw}';
             GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
             ALTER USER 'root'@'localhost' IDENTIFIED BY '{pw}';",
            pw = db.password
        ));
        db
    }

    /// A server shared by every caller in this process, stopped at exit.
    pub fn shared() -> &'static Mariadb {
        static SHARED: OnceLock<Mariadb> = OnceLock::new();
        SHARED.get_or_init(|| {
            super::at_exit(|| {
                if let Some(db) = SHARED.get() {
                    db.shutdown();
                }
            });
            Mariadb::start()
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        let dir = self.dir.lock().unwrap();
        dir.as_ref()
            .expect("server directory removed")
            .path()
            .join(name)
    }

    /// Starts mariadbd on a free port; retries with another port if it cannot listen.
    fn launch(&mut self) {
        let log = self.path("server.log");
        for _attempt in 0..5 {
            let _ = fs::remove_file(&log);
            let port = free_port();
            let mut cmd = Command::new("mariadbd");
            as_unprivileged(&mut cmd)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", self.path("data").display()))
                .arg(format!("--socket={}", self.path("sock").display()))
                .arg(format!("--pid-file={}", self.path("pid").display()))
                .arg(format!("--log-error={}", log.display()))
                .arg(format!("--port={port}"))
                .args([
                    "--bind-address=127.0.0.1",
                    "--skip-name-resolve",
                    "--skip-log-bin",
                ])
                .args([
                    "--innodb-buffer-pool-size=256M",
                    "--innodb-flush-log-at-trx-commit=0",
                ])
                .args(["--innodb-doublewrite=0", "--max-allowed-packet=64M"])
                .args([
                    "--character-set-server=utf8mb4",
                    "--collation-server=utf8mb4_unicode_ci",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = spawn_tied(cmd).expect("spawn mariadbd");
            let mut exited = false;
            let done = super::wait_until(Duration::from_secs(60), || {
                exited = !matches!(child.try_wait(), Ok(None));
                exited || self.socket_try_sql("SELECT 1").is_ok()
            });
            if done && !exited {
                self.port = port;
                *self.child.lock().unwrap() = Some(child);
                return;
            }
            stop_child(&mut child, libc::SIGKILL);
        }
        panic!(
            "mariadbd did not start:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// SQL over the Unix socket as root (before the password is set, only used at start).
    fn socket_try_sql(&self, sql: &str) -> Result<String, String> {
        let mut cmd = Command::new("mariadb");
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.path("sock").display()))
            .args(["--user=root", "--batch", "--skip-column-names"]);
        // Connecting as root over the socket needs the socket's owner to let us in: when we are
        // root the socket belongs to the unprivileged user, and root can open it anyway.
        super::pipe_sql(cmd, sql)
    }

    fn socket_sql(&self, sql: &str) {
        self.socket_try_sql(sql)
            .unwrap_or_else(|e| panic!("mariadb setup failed: {e}\nSQL: {sql}"));
    }

    /// Stops the server (clean shutdown); its files stay until drop.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            stop_child(&mut child, libc::SIGTERM);
        }
    }

    /// Stops the server and deletes its files.
    fn shutdown(&self) {
        self.stop();
        self.dir.lock().unwrap().take();
    }

    /// The variables of the official images: `MYSQL_ROOT_PASSWORD`, `MARIADB_ROOT_PASSWORD`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("MYSQL_ROOT_PASSWORD".into(), self.password.clone()),
            ("MARIADB_ROOT_PASSWORD".into(), self.password.clone()),
        ]
    }

    /// A client tool (`mariadb`, `mariadb-dump`) connected over TCP as the superuser
    /// (password in `MYSQL_PWD`: fine for tests, not for backup-ns).
    pub fn client(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        cmd.env_clear()
            .env("MYSQL_PWD", &self.password)
            .arg("--no-defaults")
            .args(["--protocol=TCP", "--host=127.0.0.1"])
            .arg(format!("--port={}", self.port))
            .arg(format!("--user={}", self.superuser));
        cmd
    }

    /// Runs `sql` (any number of statements) as the superuser without a default database;
    /// returns the tab-separated output without column names. Panics on error.
    pub fn mysql(&self, sql: &str) -> String {
        self.try_mysql_in(None, sql)
            .unwrap_or_else(|e| panic!("mariadb failed: {e}\nSQL: {sql}"))
    }

    /// [`Self::mysql`] in `database`.
    pub fn mysql_in(&self, database: &str, sql: &str) -> String {
        self.try_mysql_in(Some(database), sql)
            .unwrap_or_else(|e| panic!("mariadb in {database:?} failed: {e}\nSQL: {sql}"))
    }

    /// [`Self::mysql_in`] returning the client's stderr on failure.
    pub fn try_mysql_in(&self, database: Option<&str>, sql: &str) -> Result<String, String> {
        let mut cmd = self.client("mariadb");
        cmd.args(["--batch", "--skip-column-names"]);
        if let Some(db) = database {
            cmd.arg(format!("--database={db}"));
        }
        super::pipe_sql(cmd, sql)
    }

    /// Creates database `name` (any characters MariaDB allows), utf8mb4.
    pub fn createdb(&self, name: &str) {
        self.mysql(&format!(
            "CREATE DATABASE {} CHARACTER SET utf8mb4",
            quote_ident(name, '`')
        ));
    }

    /// Restores a gzipped dump into `database` with `gzip -cd | mariadb` (which stops at the
    /// first error).
    pub fn restore_gz(&self, database: &str, dump: &Path) {
        let mut gunzip = Command::new("gzip")
            .arg("-cd")
            .arg(dump)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn gzip -cd");
        let out = self
            .client("mariadb")
            .arg(format!("--database={database}"))
            .stdin(gunzip.stdout.take().expect("piped stdout"))
            .stdout(Stdio::null())
            .output()
            .expect("run mariadb");
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

impl Drop for Mariadb {
    fn drop(&mut self) {
        self.shutdown();
    }
}
