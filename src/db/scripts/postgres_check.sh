# backup-ns postgres check: are the dump tools there, and does the database answer?
#
# Usage: sh -c "$SCRIPT" backup-ns-postgres-check HOST PORT USER DATABASE
# USER and DATABASE are encoded ("=literal" or "$NAME"); stdin: the encoded password line.
# Succeeds silently after a SELECT 1 round trip; fails with one "backup-ns: ..." line on stderr.
# Connection parameters travel in PG* environment variables (never as a conninfo string, so a
# database name containing "=" stays a name), the password in PGPASSWORD.

[ $# -eq 4 ] || bns_usage "expected 4 arguments: host port user database"
bns_is_uint "$2" || bns_usage "port: not a number: $2"
bns_decode bns_user user "$3"
bns_decode bns_db database "$4"
bns_read_password
bns_require pg_dump psql gzip

PGHOST=$1 PGPORT=$2 PGUSER=$bns_user PGDATABASE=$bns_db PGPASSWORD=$bns_password
PGAPPNAME=backup-ns PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
export PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGAPPNAME PGCONNECT_TIMEOUT

bns_out=$(psql -X -w -q -t -A -c 'SELECT 1' </dev/null 2>&1)
bns_st=$?
if [ "$bns_st" -ne 0 ] || [ "$bns_out" != 1 ]; then
	bns_oneline "$bns_out"
	bns_die "cannot connect to PostgreSQL at $1:$2 as \"$bns_user\" (database \"$bns_db\"): $bns_line"
fi
