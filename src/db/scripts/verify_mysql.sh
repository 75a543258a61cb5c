# backup-ns mysql verify: load a dump into a throwaway MariaDB/MySQL and report what it holds.
#
# Usage: sh -c "$SCRIPT" backup-ns-mysql-verify DUMP [EXPECT_SQL...]
# Runs in a helper pod from the database's image as a non-root uid; DUMP is relative to the
# current directory (the restored volume). The scratch server (mariadb-install-db or
# mysqld --initialize-insecure; --skip-networking, its socket in ${TMPDIR:-/tmp}) gets the dump in
# database backup_ns_verify; the client stops at the first error. A dump whose gzip stream is
# corrupt or that lacks its "-- Dump completed" trailer fails.
# Stdout, one JSON object per line (built by the server, so any name survives):
#   {"table":"name","rows":N}         per table (MySQL has one database per dump: no schema)
#   {"expect":I,"value":"…"|null}     per EXPECT_SQL (I from 0): first column of the first row
# Exit 1 with one "backup-ns: ..." line on stderr: dump missing, corrupt or incomplete, load
# error, failing expectation query, server that does not start. The server is always stopped and
# its directory removed.

[ $# -ge 1 ] || bns_usage "expected arguments: dump [expect_sql...]"
bns_dump=$1
shift
bns_stop_signal=TERM
bns_trailer='-- Dump completed'
bns_verify_start "$bns_dump"
bns_require gzip tee tail wc

# bns_find VAR TOOL...: set VAR to the first TOOL in PATH or in the usual server directories.
bns_find() {
	bns_var=$1
	shift
	for bns_t in "$@"; do
		if command -v "$bns_t" >/dev/null 2>&1; then
			eval "$bns_var=\$bns_t"
			return 0
		fi
		for bns_d in /usr/sbin /usr/libexec /usr/local/mysql/bin /usr/local/mysql/scripts \
			/opt/bitnami/mariadb/sbin /opt/bitnami/mariadb/bin /opt/bitnami/mysql/bin; do
			if [ -x "$bns_d/$bns_t" ]; then
				eval "$bns_var=\$bns_d/\$bns_t"
				return 0
			fi
		done
	done
	return 1
}
bns_find bns_server mariadbd mysqld || bns_die "neither mariadbd nor mysqld found in PATH or /usr/sbin"
bns_find bns_mysql_client mariadb mysql || bns_die "neither mariadb nor mysql found in PATH"

bns_nss_wrapper mysql
bns_out=$("$bns_server" --no-defaults --version 2>&1)
case $bns_out in
*MariaDB*)
	bns_find bns_install mariadb-install-db mysql_install_db ||
		bns_die "MariaDB without mariadb-install-db or mysql_install_db"
	"$bns_install" --no-defaults --datadir="$bns_s/data" --auth-root-authentication-method=normal \
		--skip-test-db --skip-name-resolve >"$bns_s/install.log" 2>&1
	;;
*)
	"$bns_server" --no-defaults --initialize-insecure --datadir="$bns_s/data" \
		>"$bns_s/install.log" 2>&1
	;;
esac || {
	tail -n 20 "$bns_s/install.log" >&2
	bns_die "initialising the scratch server's data directory failed (the output is above)"
}

"$bns_server" --no-defaults --datadir="$bns_s/data" --socket="$bns_s/sock" \
	--pid-file="$bns_s/pid" --log-error="$bns_s/server.log" --tmpdir="$bns_s" \
	--skip-networking --skip-name-resolve --skip-log-bin --loose-mysqlx=OFF \
	--innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 --loose-innodb-doublewrite=0 \
	--max-allowed-packet=1G --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
	</dev/null >/dev/null 2>&1 &
bns_pid=$!

# bns_sql ARGS...: the client as root over the scratch socket.
bns_sql() {
	"$bns_mysql_client" --no-defaults --socket="$bns_s/sock" --user=root \
		--default-character-set=utf8mb4 "$@"
}
bns_server_wait MySQL "$bns_s/server.log" bns_sql --execute='SELECT 1'

bns_out=$(bns_sql --execute='CREATE DATABASE backup_ns_verify CHARACTER SET utf8mb4' 2>&1) || {
	bns_oneline "$bns_out"
	bns_die "cannot create the scratch database: $bns_line"
}
bns_load 0 bns_sql --batch --database=backup_ns_verify <"$bns_dump"
bns_load_verdict "${bns_mysql_client##*/}" "the dump does not restore"

bns_out=$(bns_sql --batch --raw --skip-column-names --database=backup_ns_verify 2>&1 <<'BNS_SQL'
SET SESSION sql_mode = '';
SET SESSION group_concat_max_len = 1073741824;
SELECT GROUP_CONCAT(CONCAT('SELECT ', QUOTE(table_name), ' AS t, COUNT(*) AS n FROM `',
                           REPLACE(table_name, '`', '``'), '`') SEPARATOR ' UNION ALL ')
  INTO @q FROM information_schema.tables
 WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE';
SET @q = CONCAT('SELECT JSON_OBJECT(''table'', t, ''rows'', n) FROM (',
                COALESCE(@q, 'SELECT NULL AS t, 0 AS n FROM DUAL WHERE FALSE'), ') x ORDER BY t');
PREPARE s FROM @q;
EXECUTE s;
BNS_SQL
) || {
	bns_oneline "$bns_out"
	bns_die "counting the rows of the restored tables failed: $bns_line"
}
[ -z "$bns_out" ] || printf '%s\n' "$bns_out"

# Each expectation becomes a table (CREATE TABLE … AS its query) in a database of its own, whose
# first column and first row the server turns into JSON. The query reaches the server as a
# string literal: backslashes and quotes escaped (sql_mode '' keeps backslash escapes on).
bns_i=0
for bns_e in "$@"; do
	bns_q=
	bns_r=$bns_e
	while [ -n "$bns_r" ]; do
		bns_c=${bns_r%"${bns_r#?}"}
		bns_r=${bns_r#?}
		case $bns_c in
		\\ | \') bns_q="$bns_q\\$bns_c" ;;
		*) bns_q=$bns_q$bns_c ;;
		esac
	done
	bns_out=$(bns_sql --batch --raw --skip-column-names --database=backup_ns_verify 2>&1 <<BNS_SQL
SET SESSION sql_mode = '';
CREATE DATABASE IF NOT EXISTS backup_ns_expect;
DROP TABLE IF EXISTS backup_ns_expect.e;
SET @q = CONCAT('CREATE TABLE backup_ns_expect.e AS ', '$bns_q');
PREPARE s FROM @q;
EXECUTE s;
DEALLOCATE PREPARE s;
SELECT column_name INTO @c FROM information_schema.columns
 WHERE table_schema = 'backup_ns_expect' AND table_name = 'e' ORDER BY ordinal_position LIMIT 1;
SET @q = CONCAT('SELECT JSON_OBJECT(''expect'', $bns_i, ''value'', (SELECT CAST(\`',
                REPLACE(@c, '\`', '\`\`'), '\` AS CHAR) FROM backup_ns_expect.e LIMIT 1))');
PREPARE s FROM @q;
EXECUTE s;
BNS_SQL
	) || {
		bns_oneline "$bns_out"
		bns_oneline "expectation $bns_i ($bns_e) failed: $bns_line"
		bns_die "$bns_line"
	}
	printf '%s\n' "$bns_out"
	bns_i=$((bns_i + 1))
done
