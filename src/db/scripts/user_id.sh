# backup-ns user id: the uid of the database's own system user in its image (postgres, mysql),
# so that a helper pod from the same image can run as that user: initdb and the servers refuse
# root and need the uid to have a passwd entry (postgres is 999 in the Debian images, 70 in the
# Alpine ones).
#
# Usage: sh -c "$SCRIPT" backup-ns-user-id USER...
# Prints the uid of the first USER that exists; exit 1 when none does.

[ $# -ge 1 ] || bns_usage "expected at least 1 argument: user"
for bns_u in "$@"; do
	if bns_id=$(id -u -- "$bns_u" 2>/dev/null); then
		printf '%s\n' "$bns_id"
		exit 0
	fi
done
bns_die "none of the users $* exists in this image"
