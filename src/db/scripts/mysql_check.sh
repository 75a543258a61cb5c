# backup-ns mysql check: are the dump tools there, and does the database answer?
#
# Usage: sh -c "$SCRIPT" backup-ns-mysql-check HOST PORT USER DATABASE
# USER and DATABASE are encoded ("=literal" or "$NAME"); stdin: the encoded password line.
# Succeeds silently after a SELECT 1 round trip; fails with one "backup-ns: ..." line on stderr.
# Works with MariaDB's (mariadb-dump, mariadb) and MySQL's (mysqldump, mysql) tools.

[ $# -eq 4 ] || bns_usage "expected 4 arguments: host port user database"
bns_is_uint "$2" || bns_usage "port: not a number: $2"
bns_decode bns_user user "$3"
bns_decode bns_db database "$4"
bns_read_password
bns_first_of bns_dump_tool mariadb-dump mysqldump
bns_first_of bns_client mariadb mysql
bns_require gzip

bns_out=$(bns_with_credentials "$bns_client" --defaults-extra-file=/dev/fd/4 \
	--host="$1" --port="$2" --connect-timeout=10 --batch --skip-column-names \
	--execute='SELECT 1' -- "$bns_db" </dev/null 2>&1)
bns_st=$?
if [ "$bns_st" -ne 0 ] || [ "$bns_out" != 1 ]; then
	bns_oneline "$bns_out"
	bns_die "cannot connect to MySQL at $1:$2 as \"$bns_user\" (database \"$bns_db\"): $bns_line"
fi
