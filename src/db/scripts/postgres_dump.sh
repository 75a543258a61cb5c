# backup-ns postgres dump: pg_dump | gzip into DUMP_FILE, atomically, under watchdogs.
#
# Usage: sh -c "$SCRIPT" backup-ns-postgres-dump HOST PORT USER DATABASE DUMP_FILE TIMEOUT_SECS
# USER and DATABASE are encoded ("=literal" or "$NAME"); TIMEOUT_SECS 0 means none.
# Stdin: the encoded password line, then stdin must stay open until the script exits (EOF aborts
# the dump). Stdout on success: bytes=N. On failure the previous DUMP_FILE is untouched and one
# "backup-ns: ..." line ends stderr.

[ $# -eq 6 ] || bns_usage "expected 6 arguments: host port user database dump_file timeout_secs"
bns_is_uint "$2" || bns_usage "port: not a number: $2"
bns_decode bns_user user "$3"
bns_decode bns_db database "$4"
bns_file=$5
[ -n "$bns_file" ] || bns_usage "dump_file is empty"
bns_timeout=$6
bns_is_uint "$bns_timeout" || bns_usage "timeout_secs: not a number: $bns_timeout"
bns_read_password
bns_require pg_dump gzip mkfifo tail chmod

PGHOST=$1 PGPORT=$2 PGUSER=$bns_user PGDATABASE=$bns_db PGPASSWORD=$bns_password
PGAPPNAME=backup-ns PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
export PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGAPPNAME PGCONNECT_TIMEOUT

bns_dump_cmd() {
	exec pg_dump --format=p --clean --if-exists --no-password
}
bns_dump pg_dump '-- PostgreSQL database dump complete'
