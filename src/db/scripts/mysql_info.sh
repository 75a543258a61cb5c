# backup-ns mysql info: server version, database size, the dump file's size and age.
#
# Usage: sh -c "$SCRIPT" backup-ns-mysql-info HOST PORT USER DATABASE DUMP_FILE
# USER and DATABASE are encoded ("=literal" or "$NAME"); stdin: the encoded password line.
# Prints key=value lines: server_version, database_bytes, dump_bytes, dump_age_seconds.

[ $# -eq 5 ] || bns_usage "expected 5 arguments: host port user database dump_file"
bns_is_uint "$2" || bns_usage "port: not a number: $2"
bns_decode bns_user user "$3"
bns_decode bns_db database "$4"
bns_read_password
bns_first_of bns_client mariadb mysql

bns_out=$(bns_with_credentials "$bns_client" --defaults-extra-file=/dev/fd/4 \
	--host="$1" --port="$2" --connect-timeout=10 --batch --skip-column-names \
	--execute='SELECT VERSION(), COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = DATABASE()' \
	-- "$bns_db" </dev/null 2>&1)
bns_st=$?
if [ "$bns_st" -ne 0 ]; then
	bns_oneline "$bns_out"
	bns_die "cannot query MySQL at $1:$2 as \"$bns_user\" (database \"$bns_db\"): $bns_line"
fi
# --batch separates the columns with a tab.
bns_tab=$(printf '\t')
printf 'server_version=%s\n' "${bns_out%"$bns_tab"*}"
printf 'database_bytes=%s\n' "${bns_out##*"$bns_tab"}"
bns_dump_info "$5"
