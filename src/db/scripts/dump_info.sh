# backup-ns dump info (prepended to the engine's info script): the dump file's size and age.
#
# bns_dump_info FILE: print "dump_bytes=N" and "dump_age_seconds=N" ("-" when the file is missing
# or the age cannot be read: `date -r` is in GNU and busybox, not everywhere).
bns_dump_info() {
	if bns_size "$1"; then
		printf 'dump_bytes=%s\n' "$bns_bytes"
		bns_mtime=$(date -r "$1" +%s 2>/dev/null) || bns_mtime=
		bns_now=$(date +%s)
		if bns_is_uint "$bns_mtime" && bns_is_uint "$bns_now"; then
			printf 'dump_age_seconds=%s\n' "$((bns_now - bns_mtime))"
		else
			printf 'dump_age_seconds=-\n'
		fi
	else
		printf 'dump_bytes=-\ndump_age_seconds=-\n'
	fi
}
