# backup-ns mysql dump: mysqldump (or mariadb-dump) | gzip into DUMP_FILE, atomically, under
# watchdogs.
#
# Usage: sh -c "$SCRIPT" backup-ns-mysql-dump HOST PORT USER DATABASE DUMP_FILE TIMEOUT_SECS CHARSET
# USER and DATABASE are encoded ("=literal" or "$NAME"); TIMEOUT_SECS 0 means none; CHARSET is
# --default-character-set. Stdin: the encoded password line, then stdin must stay open until the
# script exits (EOF aborts the dump). Stdout on success: bytes=N. On failure the previous
# DUMP_FILE is untouched and one "backup-ns: ..." line ends stderr.
# --single-transaction gives a consistent InnoDB snapshot without locking writers.

[ $# -eq 7 ] || bns_usage "expected 7 arguments: host port user database dump_file timeout_secs charset"
bns_is_uint "$2" || bns_usage "port: not a number: $2"
bns_decode bns_user user "$3"
bns_decode bns_db database "$4"
bns_file=$5
[ -n "$bns_file" ] || bns_usage "dump_file is empty"
bns_timeout=$6
bns_is_uint "$bns_timeout" || bns_usage "timeout_secs: not a number: $bns_timeout"
case $7 in
'' | *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_]*)
	bns_usage "charset: invalid character set name: $7"
	;;
esac
bns_host=$1 bns_port=$2 bns_charset=$7
bns_read_password
bns_first_of bns_tool mariadb-dump mysqldump
bns_require gzip mkfifo tail chmod

bns_dump_cmd() {
	bns_with_credentials exec "$bns_tool" --defaults-extra-file=/dev/fd/4 \
		--host="$bns_host" --port="$bns_port" \
		--single-transaction --skip-lock-tables --no-tablespaces \
		--routines --events --triggers --set-charset --create-options --add-drop-table \
		--default-character-set="$bns_charset" -- "$bns_db"
}
bns_dump "$bns_tool" '-- Dump completed'
