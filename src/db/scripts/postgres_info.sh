# backup-ns postgres info: server version, database size, the dump file's size and age.
#
# Usage: sh -c "$SCRIPT" backup-ns-postgres-info HOST PORT USER DATABASE DUMP_FILE
# USER and DATABASE are encoded ("=literal" or "$NAME"); stdin: the encoded password line.
# Prints key=value lines: server_version, database_bytes, dump_bytes, dump_age_seconds.

[ $# -eq 5 ] || bns_usage "expected 5 arguments: host port user database dump_file"
bns_is_uint "$2" || bns_usage "port: not a number: $2"
bns_decode bns_user user "$3"
bns_decode bns_db database "$4"
bns_read_password
bns_require psql

PGHOST=$1 PGPORT=$2 PGUSER=$bns_user PGDATABASE=$bns_db PGPASSWORD=$bns_password
PGAPPNAME=backup-ns PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
export PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGAPPNAME PGCONNECT_TIMEOUT

bns_out=$(psql -X -w -q -t -A -F ' ' \
	-c 'SELECT current_setting($$server_version$$), pg_database_size(current_database())' \
	</dev/null 2>&1)
bns_st=$?
if [ "$bns_st" -ne 0 ]; then
	bns_oneline "$bns_out"
	bns_die "cannot query PostgreSQL at $1:$2 as \"$bns_user\" (database \"$bns_db\"): $bns_line"
fi
# The size is the last word; the version may contain spaces ("15.8 (Debian 15.8-1)").
printf 'server_version=%s\n' "${bns_out% *}"
printf 'database_bytes=%s\n' "${bns_out##* }"
bns_dump_info "$5"
