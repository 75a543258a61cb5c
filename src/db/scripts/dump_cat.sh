# backup-ns dump cat: write the current dump file to stdout (`download --live`).
#
# Usage: sh -c "$SCRIPT" backup-ns-dump-cat DUMP_FILE
# Fails with one "backup-ns: ..." line on stderr when the file is missing or unreadable; the
# caller verifies what arrives (gzip integrity, the engine's completion trailer).

[ $# -eq 1 ] || bns_usage "expected 1 argument: dump_file"
[ -e "$1" ] || bns_die "dump file $1 not found"
[ -f "$1" ] || bns_die "dump file $1 is not a regular file"
[ -r "$1" ] || bns_die "dump file $1 is not readable"
exec cat -- "$1"
