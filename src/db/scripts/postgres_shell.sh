# backup-ns postgres shell: psql in the database container, the password never in argv.
#
# Usage: sh -c "$SCRIPT" backup-ns-postgres-shell HOST PORT USER DATABASE
# USER and DATABASE are encoded ("=literal" or "$NAME"). Prints the ready marker, then reads the
# encoded password line from stdin (see shell_common.sh); the rest of stdin is psql's. The
# password reaches psql only in its environment (PGPASSWORD), which exec hands over and nothing
# else sees. Exit status: psql's.

[ $# -eq 4 ] || bns_usage "expected 4 arguments: host port user database"
bns_is_uint "$2" || bns_usage "port: not a number: $2"
bns_decode bns_user user "$3"
bns_decode bns_db database "$4"
bns_require psql
bns_shell_password

PGHOST=$1 PGPORT=$2 PGUSER=$bns_user PGDATABASE=$bns_db PGPASSWORD=$bns_password
PGAPPNAME=backup-ns-shell PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
export PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGAPPNAME PGCONNECT_TIMEOUT
bns_password=
# -w: never prompt; a wrong password is an error, not a prompt the password then goes into.
exec psql -w
