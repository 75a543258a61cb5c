# backup-ns postgres restore: a gzipped plain dump from stdin into the live database, in one
# transaction.
#
# Usage: sh -c "$SCRIPT" backup-ns-postgres-restore HOST PORT USER DATABASE CREATE_IF_MISSING
# USER and DATABASE are encoded ("=literal" or "$NAME"); CREATE_IF_MISSING is 0 or 1
# (`--into-database`: create DATABASE when it does not exist). Stdin: the encoded password line,
# the dump's byte count (a line), then that many bytes of the gzipped dump (pg_dump --clean
# --if-exists, as the dump script makes it); stdin may stay open after them.
# The dump is loaded between BEGIN; and COMMIT; with ON_ERROR_STOP, and COMMIT is only sent when
# the whole gzip stream decompressed cleanly and ended with the completion trailer: any failure
# leaves the database exactly as it was (a database this run created is dropped again).
# Stdout on success: restored_bytes=N (the size of the SQL text). On failure one
# "backup-ns: ..." line ends stderr.
# Limitation: a plain dump of a database with large objects carries its own BEGIN;/COMMIT;
# around them, which ends our transaction early (psql --single-transaction has the same flaw).

[ $# -eq 5 ] || bns_usage "expected 5 arguments: host port user database create_if_missing"
bns_is_uint "$2" || bns_usage "port: not a number: $2"
bns_decode bns_user user "$3"
bns_decode bns_db database "$4"
case $5 in
0 | 1) ;;
*) bns_usage "create_if_missing: expected 0 or 1, not $5" ;;
esac
bns_create=$5
bns_read_password
bns_read_size
bns_require psql gzip tee tail wc head
bns_trailer='-- PostgreSQL database dump complete'

PGHOST=$1 PGPORT=$2 PGUSER=$bns_user PGDATABASE=$bns_db PGPASSWORD=$bns_password
PGAPPNAME=backup-ns PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
export PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGAPPNAME PGCONNECT_TIMEOUT

# bns_admin SQL-ON-STDIN: psql in the maintenance database with the variable bns_db.
bns_admin() {
	PGDATABASE=postgres psql -X -w -q -t -A -v ON_ERROR_STOP=1 -v "bns_db=$bns_db" 2>&1
}

bns_created=
if [ "$bns_create" = 1 ]; then
	bns_out=$(bns_admin <<'BNS_SQL'
SELECT 'exists' FROM pg_catalog.pg_database WHERE datname = :'bns_db';
BNS_SQL
	) || {
		bns_oneline "$bns_out"
		bns_die "cannot connect to PostgreSQL at $1:$2 as \"$bns_user\" (database \"postgres\"): $bns_line"
	}
	if [ "$bns_out" != exists ]; then
		bns_out=$(bns_admin <<'BNS_SQL'
CREATE DATABASE :"bns_db";
BNS_SQL
		) || {
			bns_oneline "$bns_out"
			bns_die "cannot create database \"$bns_db\": $bns_line"
		}
		bns_created=yes
		printf 'backup-ns: created database "%s"\n' "$bns_db" >&2
	fi
fi

# bns_undo: drop the database this run created, if any.
bns_undo() {
	if [ -n "$bns_created" ]; then
		bns_out=$(bns_admin <<'BNS_SQL'
DROP DATABASE IF EXISTS :"bns_db";
BNS_SQL
		) || {
			bns_oneline "$bns_out"
			printf 'backup-ns: cannot drop the database "%s" this restore created: %s\n' "$bns_db" "$bns_line" >&2
		}
	fi
}

bns_out=$(psql -X -w -q -t -A -c 'SELECT 1' </dev/null 2>&1)
if [ "$?" -ne 0 ] || [ "$bns_out" != 1 ]; then
	bns_undo
	bns_oneline "$bns_out"
	bns_die "cannot connect to PostgreSQL at $1:$2 as \"$bns_user\" (database \"$bns_db\"): $bns_line"
fi

bns_load 1 psql -X -w -q -v ON_ERROR_STOP=1
if [ "$bns_client" != 0 ] || [ "$bns_gz" != 0 ] || [ "$bns_tr" != yes ]; then
	bns_undo
	if [ -n "$bns_created" ]; then
		bns_load_verdict psql "nothing was committed, the database this restore created was dropped"
	fi
	bns_load_verdict psql "nothing was committed, the database is unchanged"
fi
bns_load_verdict psql "the outcome is unknown"
printf 'restored_bytes=%s\n' "$bns_n"
