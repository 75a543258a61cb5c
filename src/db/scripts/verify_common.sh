# backup-ns: the throwaway-server frame shared by the verify scripts (prepended to them).
#
# The verify scripts run in a helper pod from the database's own image, as a non-root uid, with
# the restored volume as the current directory and scratch space in ${TMPDIR:-/tmp}. They start
# a private server there (Unix socket only, no password), load the dump, report, and always stop
# the server and remove its directory (EXIT trap; a signal ends the script through it).

bns_pid=  # the server's PID while it runs
bns_s=    # the scratch directory

# bns_server_stop: stop the server (SIGNAL given by the engine script in bns_stop_signal), wait
# for it, remove the scratch directory.
bns_server_stop() {
	trap '' HUP INT TERM
	if [ -n "$bns_pid" ]; then
		kill -s "$bns_stop_signal" "$bns_pid" 2>/dev/null
		wait "$bns_pid" 2>/dev/null
		bns_pid=
	fi
	[ -z "$bns_s" ] || rm -rf -- "$bns_s"
	bns_s=
}

# bns_verify_start DUMP: check the dump path, create the scratch directory, install the traps.
bns_verify_start() {
	case $1 in
	'') bns_usage "the dump path is empty" ;;
	/*) bns_usage "the dump path must be relative to the volume root, not $1" ;;
	esac
	[ -e "$1" ] || bns_die "dump file $1 not found on the restored volume (in $(pwd))"
	[ -f "$1" ] || bns_die "dump file $1 on the restored volume is not a regular file"
	[ -r "$1" ] || bns_die "dump file $1 on the restored volume is not readable by uid $(id -u 2>/dev/null)"
	umask 077
	bns_tmp=${TMPDIR:-/tmp}
	case $bns_tmp in
	*\'* | *\\* | *\"* | *' '* | *"$bns_nl"*) bns_die "TMPDIR must not contain quotes, backslashes, spaces or newlines: $bns_tmp" ;;
	esac
	trap 'bns_server_stop' EXIT
	trap 'exit 1' HUP INT TERM
	mkdir -- "$bns_tmp/backup-ns-verify.$$" 2>/dev/null ||
		bns_die "cannot create a scratch directory in $bns_tmp (not writable?)"
	bns_s=$bns_tmp/backup-ns-verify.$$
}

# bns_nap: sleep a little (fractional sleep is in GNU and busybox, not POSIX).
bns_nap() {
	sleep 0.1 2>/dev/null || sleep 1
}

# bns_server_wait WHAT LOG PROBE...: poll PROBE until it succeeds (at most 120 s), failing with
# the last lines of LOG if the server exits or never answers.
bns_server_wait() {
	bns_what=$1 bns_log=$2
	shift 2
	bns_i=0
	while :; do
		if ! kill -0 "$bns_pid" 2>/dev/null; then
			wait "$bns_pid" 2>/dev/null
			bns_pid=
			tail -n 20 "$bns_log" >&2 2>/dev/null
			bns_die "the scratch $bns_what server exited while starting (its log is above)"
		fi
		"$@" >/dev/null 2>&1 && return 0
		bns_i=$((bns_i + 1))
		if [ "$bns_i" -ge 1200 ]; then
			tail -n 20 "$bns_log" >&2 2>/dev/null
			bns_die "the scratch $bns_what server did not answer within 120s (its log is above)"
		fi
		bns_nap
	done
}

# bns_nss_wrapper NAME: when the current uid has no passwd entry (an arbitrary runAsUser),
# initdb and mysqld cannot name it; the official images ship nss_wrapper for that.
bns_nss_wrapper() {
	id -un >/dev/null 2>&1 && return 0
	for bns_lib in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so /usr/lib64/libnss_wrapper.so \
		/opt/bitnami/common/lib/libnss_wrapper.so; do
		[ -f "$bns_lib" ] || continue
		printf '%s:x:%s:%s:%s:%s:/bin/false\n' "$1" "$(id -u)" "$(id -g)" "$1" "$bns_s" >"$bns_s/passwd"
		printf '%s:x:%s:\n' "$1" "$(id -g)" >"$bns_s/group"
		LD_PRELOAD=$bns_lib NSS_WRAPPER_PASSWD=$bns_s/passwd NSS_WRAPPER_GROUP=$bns_s/group
		export LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
		return 0
	done
}
