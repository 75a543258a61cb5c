# backup-ns space: report the free space beside the dump file, and the size of the previous dump.
#
# Usage: sh -c "$SCRIPT" backup-ns-space DUMP_FILE
# Stdout, one line: used_percent=N avail_bytes=N prev_bytes=N|-
# (df -P of the dump file's directory; prev_bytes is "-" when there is no previous dump).
# backup-ns decides from this line whether there is room for a new dump.

[ $# -eq 1 ] || bns_usage "expected 1 argument: dump_file"
[ -n "$1" ] || bns_usage "dump_file is empty"
bns_dirname "$1"
[ -d "$bns_dir" ] || bns_die "dump directory $bns_dir does not exist"

bns_df=$(df -P -k -- "$bns_dir" 2>&1) || {
	bns_oneline "$bns_df"
	bns_die "df -P $bns_dir failed: $bns_line"
}
# The last line holds: filesystem, 1024-blocks, used, available, capacity%, mount point. The
# filesystem and the mount point may contain spaces, so look for "N N N N%" from the left.
set -f
# shellcheck disable=SC2086
set -- ${bns_df##*"$bns_nl"}
set +f
bns_pct=
while [ $# -ge 4 ]; do
	case $4 in
	*%)
		if bns_is_uint "$2" && bns_is_uint "$3" && bns_is_uint "${4%\%}"; then
			bns_avail=$3
			bns_pct=${4%\%}
			break
		fi
		;;
	esac
	shift
done
[ -n "$bns_pct" ] || bns_die "cannot read the output of df -P $bns_dir"

bns_prev=-
if [ -e "$bns_dir/$bns_base" ]; then
	bns_size "$bns_dir/$bns_base" || bns_die "cannot read the size of $bns_dir/$bns_base"
	bns_prev=$bns_bytes
fi

printf 'used_percent=%s avail_bytes=%s prev_bytes=%s\n' "$bns_pct" "$((bns_avail * 1024))" "$bns_prev"
