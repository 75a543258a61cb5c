# backup-ns mysql shell: mariadb or mysql in the database container, the password never in argv.
#
# Usage: sh -c "$SCRIPT" backup-ns-mysql-shell HOST PORT USER DATABASE CHARSET
# USER and DATABASE are encoded ("=literal" or "$NAME"). Prints the ready marker, then reads the
# encoded password line from stdin (see shell_common.sh); the rest of stdin is the client's. The
# credentials reach the client in the option-file pipe of mysql_options.sh. Exit status: the
# client's.

[ $# -eq 5 ] || bns_usage "expected 5 arguments: host port user database charset"
bns_is_uint "$2" || bns_usage "port: not a number: $2"
bns_decode bns_user user "$3"
bns_decode bns_db database "$4"
bns_first_of bns_client mariadb mysql
bns_shell_password

bns_with_credentials exec "$bns_client" --defaults-extra-file=/dev/fd/4 \
	--host="$1" --port="$2" --connect-timeout=10 --default-character-set="$5" \
	-- "$bns_db"
