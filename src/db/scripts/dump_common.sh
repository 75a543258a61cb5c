# backup-ns: the atomic, watched dump pipeline shared by the dump scripts (prepended to them).
#
# The engine script defines bns_dump_cmd, which must exec the dump tool (writing SQL to stdout),
# and calls bns_dump TOOL TRAILER. The dump goes through gzip into a private directory beside the
# dump file; it replaces the previous dump only after it has been verified (gzip integrity and
# the tool's completion trailer among the last lines), so any failure leaves the previous dump as
# it was. The new dump takes the previous dump's mode and owner (0644 for a first dump), so the
# database's own user can read it for a restore. Watchdogs: backup-ns keeps our stdin open while
# it waits; if stdin reaches EOF (it died or lost the connection), or TIMEOUT_SECS pass, every
# process of the pipeline is killed. There is no job control without a terminal, so each process
# is started as a simple command in the background and tracked by its own PID ($! is the process
# itself): FIFOs connect them, and watchers without children signal us, which interrupts `wait`.
# Kills use SIGKILL: a subshell that has just been forked still runs our TERM handler and would
# swallow a TERM, and nothing here needs a graceful end (the temporary dump is removed anyway).

bns_stage=    # PIDs of the running pipeline stage (killed on abort)
bns_watch=    # PIDs of the watchdog processes (killed when we are done)
bns_why=      # why the dump was aborted; empty while all is well
bns_work=     # our private directory beside the dump file

# bns_abort REASON: remember the first reason and kill the running stage.
bns_abort() {
	[ -n "$bns_why" ] || bns_why=$1
	[ -z "$bns_stage" ] || kill -s KILL $bns_stage 2>/dev/null
}

# bns_cleanup: stop the watchdogs and the pipeline, wait for them, remove the private directory
# (and with it the temporary dump). Runs on every exit.
bns_cleanup() {
	trap '' USR1 USR2
	bns_all="$bns_stage $bns_watch"
	bns_stage= bns_watch=
	if [ -n "${bns_all# }" ]; then
		kill -s KILL $bns_all 2>/dev/null
		wait $bns_all 2>/dev/null
	fi
	[ -z "$bns_work" ] || rm -rf -- "$bns_work"
	bns_work=
}

# bns_wait PID: wait for PID and set bns_st to its exit status. A signal that aborts the dump
# interrupts `wait` (the process has been killed by then): wait for it once more. The
# shell's own "Terminated" notice goes to /dev/null: the final stderr line says what happened.
bns_wait() {
	wait "$1" 2>/dev/null
	bns_st=$?
	if [ -n "$bns_why" ]; then
		wait "$1" 2>/dev/null
		bns_st=$?
	fi
}

# bns_gone: fail if the dump has been aborted.
bns_gone() {
	[ -z "$bns_why" ] || bns_die "$bns_why; the previous dump is left untouched"
}

# bns_lsmode MODE: set bns_m to the octal permission bits of an `ls -l` mode string such as
# -rw-r-----; fails on anything else. Set-id and sticky bits are dropped (a dump has no use for
# them), keeping the execute bit they stand for.
bns_lsmode() {
	bns_r=${1#?}
	bns_m=
	for bns_who in user group other; do
		bns_d=0
		bns_c=${bns_r%"${bns_r#?}"}
		bns_r=${bns_r#?}
		case $bns_c in
		r) bns_d=4 ;;
		-) ;;
		*) return 1 ;;
		esac
		bns_c=${bns_r%"${bns_r#?}"}
		bns_r=${bns_r#?}
		case $bns_c in
		w) bns_d=$((bns_d + 2)) ;;
		-) ;;
		*) return 1 ;;
		esac
		bns_c=${bns_r%"${bns_r#?}"}
		bns_r=${bns_r#?}
		case $bns_c in
		x | s | t) bns_d=$((bns_d + 1)) ;;
		- | S | T) ;;
		*) return 1 ;;
		esac
		bns_m=$bns_m$bns_d
	done
}

# bns_perms OLD NEW: give the file NEW the owner, group and permission bits of the regular file
# OLD, or mode 0644 when there is none. That is what the original's `> dump.sql.gz` gave: the
# redirect kept an existing dump's inode, and a new file got 0666 minus the runtime's umask 022.
# The dump must be readable by the database's own user (uid 70 or 999 in the official images)
# for a restore, while exec runs as the image's user (root). Only root may give a file away;
# when chown fails, NEW stays ours, as a new file of the original's would have been.
bns_perms() {
	bns_new=$2
	bns_m=644
	if [ -f "$1" ] && [ ! -h "$1" ] && bns_ls=$(ls -ln -- "$1" 2>/dev/null); then
		set -f
		# shellcheck disable=SC2086
		set -- $bns_ls
		set +f
		if bns_is_uint "${3:-}" && bns_is_uint "${4:-}" && bns_lsmode "$1"; then
			chown -- "$3:$4" "$bns_new" 2>/dev/null || :
		else
			bns_m=644
		fi
	fi
	chmod -- "$bns_m" "$bns_new"
}

# bns_dump TOOL TRAILER: dump with bns_dump_cmd (TOOL names it in messages) into
# $bns_file, whose decompressed content must have a line starting with TRAILER near its end.
# Needs bns_file and bns_timeout. Prints bytes=N (the size of the new dump).
bns_dump() {
	bns_dirname "$bns_file"
	[ -d "$bns_dir" ] || bns_die "dump directory $bns_dir does not exist"
	[ ! -d "$bns_file" ] || bns_die "dump file $bns_file is a directory"
	umask 077

	trap 'bns_cleanup' EXIT
	trap 'bns_abort "stdin closed before the dump finished (backup-ns gone?)"' USR1
	trap 'bns_abort "timed out after ${bns_timeout}s"' USR2
	trap 'bns_abort "terminated by a signal"' HUP INT TERM

	# Remove what runs that were killed outright (SIGKILL, container restart) left behind: each
	# temporary directory carries the PID of its shell.
	for bns_old in "$bns_dir/.$bns_base.tmp."*; do
		bns_pid=${bns_old##*.}
		if [ -d "$bns_old" ] && bns_is_uint "$bns_pid" && ! kill -0 "$bns_pid" 2>/dev/null &&
			[ ! -d "/proc/$bns_pid" ]; then
			rm -rf -- "$bns_old"
		fi
	done
	mkdir -- "$bns_dir/.$bns_base.tmp.$$" 2>/dev/null ||
		bns_die "cannot create a temporary directory in $bns_dir (read-only, or $bns_dir/.$bns_base.tmp.$$ left over?)"
	bns_work=$bns_dir/.$bns_base.tmp.$$
	bns_fifo=$bns_work/pipe
	bns_tmp=$bns_work/$bns_base
	mkfifo -- "$bns_fifo" || bns_die "mkfifo failed in $bns_dir"

	# Watchdog 1: stdin. Background commands get /dev/null as stdin, so read a copy of fd 0.
	exec 3<&0
	(
		while IFS= read -r bns_x; do :; done <&3
		kill -USR1 $$
	) &
	bns_watch=$!
	exec 3<&-
	# Watchdog 2: the timer. sleep holds a FIFO open; the watcher reads it and sees EOF when sleep
	# ends. Neither has children, so killing both by PID leaves nothing behind.
	if [ "$bns_timeout" -gt 0 ]; then
		mkfifo -- "$bns_work/timer" || bns_die "mkfifo failed in $bns_dir"
		(
			read -r bns_x <"$bns_work/timer"
			kill -USR2 $$
		) &
		bns_watch="$bns_watch $!"
		sleep "$bns_timeout" >"$bns_work/timer" &
		bns_watch="$bns_watch $!"
	fi

	# The pipeline: TOOL > FIFO, gzip < FIFO > temporary file.
	gzip -c <"$bns_fifo" >"$bns_tmp" &
	bns_gz=$!
	bns_stage=$bns_gz
	bns_dump_cmd >"$bns_fifo" &
	bns_dp=$!
	bns_stage="$bns_stage $bns_dp"
	bns_wait "$bns_dp"
	bns_dump_st=$bns_st
	bns_wait "$bns_gz"
	bns_gz_st=$bns_st
	bns_stage=
	bns_gone
	# gzip first: when it fails, the tool fails too (broken pipe).
	[ "$bns_gz_st" -eq 0 ] ||
		bns_die "gzip failed writing $bns_tmp (exit status $bns_gz_st; disk full?); the previous dump is left untouched"
	[ "$bns_dump_st" -eq 0 ] ||
		bns_die "$1 failed (exit status $bns_dump_st); the previous dump is left untouched"

	# Verify: one decompression pass proves the gzip stream; its last lines hold the trailer.
	[ -s "$bns_tmp" ] || bns_die "the new dump is empty; the previous dump is left untouched"
	gzip -cd <"$bns_tmp" >"$bns_fifo" &
	bns_gz=$!
	bns_stage=$bns_gz
	tail -n 8 <"$bns_fifo" >"$bns_work/tail" &
	bns_tl=$!
	bns_stage="$bns_stage $bns_tl"
	bns_wait "$bns_gz"
	bns_gz_st=$bns_st
	bns_wait "$bns_tl"
	bns_tl_st=$bns_st
	bns_stage=
	bns_gone
	[ "$bns_gz_st" -eq 0 ] ||
		bns_die "the new dump is not a valid gzip file (gzip -d exit status $bns_gz_st); the previous dump is left untouched"
	[ "$bns_tl_st" -eq 0 ] ||
		bns_die "cannot read the end of the new dump (tail exit status $bns_tl_st); the previous dump is left untouched"
	bns_complete=
	while IFS= read -r bns_x; do
		case $bns_x in
		"$2"*) bns_complete=yes ;;
		esac
	done <"$bns_work/tail"
	[ -n "$bns_complete" ] ||
		bns_die "the new dump lacks \"$2\" at its end (incomplete); the previous dump is left untouched"

	# The temporary file was private while it was written (umask 077, in our 0700 directory); the
	# dump gets the mode and owner it will keep before it takes the dump file's name.
	bns_perms "$bns_file" "$bns_tmp" ||
		bns_die "cannot set the mode of the new dump $bns_tmp; the previous dump is left untouched"

	# Commit: from here on, the new dump replaces the previous one whatever happens.
	trap '' USR1 USR2 HUP INT TERM
	bns_gone
	if command -v sync >/dev/null 2>&1; then
		sync -- "$bns_tmp" 2>/dev/null || sync
	fi
	mv -f -- "$bns_tmp" "$bns_file" || bns_die "cannot rename the new dump to $bns_file"
	if command -v sync >/dev/null 2>&1; then
		sync -- "$bns_file" "$bns_dir" 2>/dev/null || sync
	fi
	bns_size "$bns_file" || bns_die "cannot read the size of $bns_file"
	bns_cleanup
	printf 'bytes=%s\n' "$bns_bytes"
}
