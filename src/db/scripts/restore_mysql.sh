# backup-ns mysql restore: a gzipped dump from stdin into the live database.
#
# Usage: sh -c "$SCRIPT" backup-ns-mysql-restore HOST PORT USER DATABASE CREATE_IF_MISSING CHARSET
# USER and DATABASE are encoded ("=literal" or "$NAME"); CREATE_IF_MISSING is 0 or 1
# (`--into-database`: CREATE DATABASE IF NOT EXISTS first); CHARSET is --default-character-set.
# Stdin: the encoded password line, the dump's byte count (a line), then that many bytes of the
# gzipped dump (mysqldump/mariadb-dump); stdin may stay open after them.
# The client stops at the first SQL error. MySQL and MariaDB cannot roll back DDL (every DROP
# TABLE / CREATE TABLE of the dump commits), so a failed restore may leave the database partly
# restored: the script only makes the failure loud. A truncated or corrupt gzip stream, or a dump
# without its "-- Dump completed" trailer, exits 1 after the client has run what arrived.
# Stdout on success: restored_bytes=N. On failure one "backup-ns: ..." line ends stderr.

[ $# -eq 6 ] || bns_usage "expected 6 arguments: host port user database create_if_missing charset"
bns_is_uint "$2" || bns_usage "port: not a number: $2"
bns_decode bns_user user "$3"
bns_decode bns_db database "$4"
case $5 in
0 | 1) ;;
*) bns_usage "create_if_missing: expected 0 or 1, not $5" ;;
esac
case $6 in
'' | *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_]*)
	bns_usage "charset: invalid character set name: $6"
	;;
esac
bns_host=$1 bns_port=$2 bns_create=$5 bns_charset=$6
bns_read_password
bns_read_size
bns_first_of bns_client_tool mariadb mysql
bns_require gzip tee tail wc head
bns_trailer='-- Dump completed'

# bns_mysql ARGS...: the client with credentials, host, port and charset.
bns_mysql() {
	bns_with_credentials "$bns_client_tool" --defaults-extra-file=/dev/fd/4 \
		--host="$bns_host" --port="$bns_port" --connect-timeout=10 \
		--default-character-set="$bns_charset" "$@"
}

if [ "$bns_create" = 1 ]; then
	# A quoted identifier: backticks doubled.
	bns_q=
	bns_r=$bns_db
	while [ -n "$bns_r" ]; do
		bns_c=${bns_r%"${bns_r#?}"}
		bns_r=${bns_r#?}
		[ "$bns_c" != '`' ] || bns_c='``'
		bns_q=$bns_q$bns_c
	done
	bns_out=$(bns_mysql --batch --execute="CREATE DATABASE IF NOT EXISTS \`$bns_q\`" </dev/null 2>&1) || {
		bns_oneline "$bns_out"
		bns_die "cannot create database \"$bns_db\" on MySQL at $bns_host:$bns_port as \"$bns_user\": $bns_line"
	}
fi

bns_out=$(bns_mysql --batch --skip-column-names --execute='SELECT 1' -- "$bns_db" </dev/null 2>&1)
if [ "$?" -ne 0 ] || [ "$bns_out" != 1 ]; then
	bns_oneline "$bns_out"
	bns_die "cannot connect to MySQL at $bns_host:$bns_port as \"$bns_user\" (database \"$bns_db\"): $bns_line"
fi

bns_load 0 bns_mysql --batch -- "$bns_db"
bns_load_verdict "$bns_client_tool" "MySQL cannot roll back DDL: the database may be partly restored"
printf 'restored_bytes=%s\n' "$bns_n"
