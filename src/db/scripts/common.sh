# backup-ns: helpers shared by the in-container scripts (POSIX sh; prepended to each script).
#
# Values arrive as positional arguments, encoded by backup-ns as "=literal" (the rest is the
# value, whatever it contains) or "$NAME" (the value of the container's environment variable
# NAME). Values are only ever expanded inside double quotes and never evaluated; the only eval
# reads a variable whose name has been checked to be [A-Za-z_][A-Za-z0-9_]*. The password is the
# first line of stdin, encoded the same way, so that it never shows in any argv. Failures print
# one line "backup-ns: ..." on stderr. Exit status: 0 success, 1 failure, 2 invalid invocation.
# Our own variables start with bns_, so a value cannot name them.

bns_nl='
'

# bns_fail STATUS MESSAGE...: print one stderr line and exit with STATUS.
bns_fail() {
	bns_code=$1
	shift
	printf 'backup-ns: %s\n' "$*" >&2
	exit "$bns_code"
}

bns_die() {
	bns_fail 1 "$@"
}

bns_usage() {
	bns_fail 2 "$0: $*"
}

# bns_is_uint VALUE: true if VALUE is a non-empty string of decimal digits.
bns_is_uint() {
	case $1 in
	'' | *[!0123456789]*) return 1 ;;
	esac
	return 0
}

# bns_decode VAR WHAT ENCODED: set VAR to the decoded value of ENCODED ("=literal" or "$NAME");
# WHAT names the value in error messages.
bns_decode() {
	case $3 in
	=*)
		bns_v=${3#=}
		;;
	'$'*)
		bns_n=${3#?}
		case $bns_n in
		'' | [!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_]* | \
			*[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_]* | bns_*)
			bns_usage "$2: invalid environment variable name \"$bns_n\""
			;;
		esac
		eval "bns_set=\${$bns_n+set}"
		[ "$bns_set" = set ] || bns_fail 2 "$2: environment variable $bns_n is not set in the container"
		eval "bns_v=\${$bns_n}"
		;;
	*)
		bns_usage "$2: malformed argument (expected \"=value\" or \"\$NAME\")"
		;;
	esac
	eval "$1=\$bns_v"
}

# bns_read_password: decode the first line of stdin into bns_password.
bns_read_password() {
	IFS= read -r bns_pwline || bns_usage "password: no line on stdin"
	bns_decode bns_password password "$bns_pwline"
	bns_pwline=
}

# bns_require TOOL...: fail naming the first TOOL that is not in PATH.
bns_require() {
	for bns_t in "$@"; do
		command -v "$bns_t" >/dev/null 2>&1 || bns_die "$bns_t not found in PATH"
	done
}

# bns_first_of VAR TOOL...: set VAR to the first TOOL that is in PATH, or fail naming them all.
bns_first_of() {
	bns_var=$1
	shift
	for bns_t in "$@"; do
		if command -v "$bns_t" >/dev/null 2>&1; then
			eval "$bns_var=\$bns_t"
			return 0
		fi
	done
	bns_t=$1
	shift
	for bns_u in "$@"; do
		bns_t="$bns_t or $bns_u"
	done
	bns_die "none of $bns_t found in PATH"
}

# bns_oneline TEXT: set bns_line to TEXT with newlines replaced by spaces.
bns_oneline() {
	bns_line=
	bns_r=$1
	while :; do
		case $bns_r in
		*"$bns_nl"*)
			bns_line="$bns_line${bns_r%%"$bns_nl"*} "
			bns_r=${bns_r#*"$bns_nl"}
			;;
		*)
			bns_line=$bns_line$bns_r
			break
			;;
		esac
	done
}

# bns_dirname PATH: set bns_dir and bns_base for the file PATH (no external dirname).
bns_dirname() {
	case $1 in
	*/*)
		bns_dir=${1%/*}
		[ -n "$bns_dir" ] || bns_dir=/
		;;
	*) bns_dir=. ;;
	esac
	bns_base=${1##*/}
}

# bns_size FILE: set bns_bytes to the size of FILE in bytes (ls -ln: owner and group are numbers,
# so the size is always the fifth field; stat -c is not everywhere, wc -c may read the file).
bns_size() {
	bns_ls=$(ls -ln -- "$1" 2>/dev/null) || return 1
	set -f
	# shellcheck disable=SC2086
	set -- $bns_ls
	set +f
	bns_is_uint "${5:-}" || return 1
	bns_bytes=$5
}
