# backup-ns volume check: do the expected files exist on the restored volume?
#
# Usage: sh -c "$SCRIPT" backup-ns-volume-check PATH...
# PATHs are relative to the current directory (the restored volume's root). Stdout, one JSON
# object per PATH: {"path":"…","exists":true|false,"bytes":N|null} (bytes for regular files
# only). Never fails on a missing file: backup-ns judges.

# bns_json VALUE: set bns_j to VALUE as a JSON string (quotes, backslashes and the control
# characters a path can hold escaped; everything else verbatim, UTF-8 in, UTF-8 out).
bns_tab=$(printf '\t')
bns_cr=$(printf '\r')
bns_json() {
	bns_j=
	bns_r=$1
	while [ -n "$bns_r" ]; do
		bns_c=${bns_r%"${bns_r#?}"}
		bns_r=${bns_r#?}
		case $bns_c in
		\\ | \") bns_j="$bns_j\\$bns_c" ;;
		"$bns_nl") bns_j="$bns_j\\n" ;;
		"$bns_tab") bns_j="$bns_j\\t" ;;
		"$bns_cr") bns_j="$bns_j\\r" ;;
		*) bns_j=$bns_j$bns_c ;;
		esac
	done
	bns_j="\"$bns_j\""
}

for bns_p in "$@"; do
	bns_json "$bns_p"
	if [ -f "$bns_p" ] && bns_size "$bns_p"; then
		printf '{"path":%s,"exists":true,"bytes":%s}\n' "$bns_j" "$bns_bytes"
	elif [ -e "$bns_p" ] || [ -h "$bns_p" ]; then
		printf '{"path":%s,"exists":true,"bytes":null}\n' "$bns_j"
	else
		printf '{"path":%s,"exists":false,"bytes":null}\n' "$bns_j"
	fi
done
