# backup-ns: the guarded dump feed shared by the restore and verify scripts (prepended to them).
#
# A dump is only loaded as a whole: the stream is decompressed once, on its way to the client,
# while two side branches of `tee` watch it (the last lines, for the engine's completion trailer,
# and a byte count). Nothing is written to disk, so the database container needs no writable
# temporary directory. The side branches reach tee as /dev/fd/N (Linux, as the MySQL option file
# does). For PostgreSQL the SQL is wrapped in BEGIN; … COMMIT; and COMMIT is only sent after gzip
# ended cleanly and the trailer was seen: a truncated or corrupt dump ends without COMMIT, and the
# server rolls the transaction back when psql disconnects. (`psql --single-transaction` would
# COMMIT whatever arrived before EOF.)

# bns_tailcheck TRAILER: read text on stdin; print trailer=yes if one of its last 8 lines starts
# with TRAILER, else trailer=no (one write, so it cannot interleave with bns_count).
bns_tailcheck() {
	tail -n 8 | {
		bns_t=no
		while IFS= read -r bns_x || [ -n "$bns_x" ]; do
			case $bns_x in
			"$1"*) bns_t=yes ;;
			esac
		done
		printf 'trailer=%s\n' "$bns_t"
	}
}

# bns_count: count the bytes on stdin; print bytes=N.
bns_count() {
	wc -c | {
		read -r bns_n
		printf 'bytes=%s\n' "$bns_n"
	}
}

# bns_read_size: the dump's byte count, the line after the password on stdin (restore scripts).
# The dump that follows is read to exactly that many bytes and no further: backup-ns keeps stdin
# open until the script exits (an API server before 1.30 cannot close stdin alone without ending
# the session and losing the exit status), so EOF cannot mark the dump's end. A connection that
# drops early leaves fewer bytes, which gzip reports as a truncated stream: nothing is committed.
bns_read_size() {
	IFS= read -r bns_size || bns_usage "size: no line on stdin"
	bns_is_uint "$bns_size" || bns_usage "size: not a number: $bns_size"
}

# bns_take: stdin to stdout, the first bns_size bytes when it is set, else all of it.
bns_take() {
	if [ -n "${bns_size:-}" ]; then
		head -c "$bns_size"
	else
		cat
	fi
}

# bns_feed TRAILER WRAP: decompress the gzipped dump on stdin to stdout. With WRAP=1 the SQL is
# preceded by BEGIN; and followed by COMMIT; only when gzip succeeded and TRAILER was seen near
# the end. Writes the verdict to fd 3 (lines gzip=N, trailer=yes|no, bytes=N) before COMMIT, so
# that a client that died early cannot swallow it.
bns_feed() {
	exec 7>&1
	[ "$2" = 0 ] || printf 'BEGIN;\n'
	bns_v=$(
		exec 6>&1
		{
			{
				{
					bns_take | gzip -cd
					printf 'gzip=%s\n' "$?" >&6
				} | tee /dev/fd/5 /dev/fd/8 >&7
			} 5>&1 | bns_tailcheck "$1" >&6
		} 8>&1 | bns_count >&6
	)
	printf '%s\n' "$bns_v" >&3
	bns_verdict "$bns_v"
	if [ "$2" != 0 ] && [ "$bns_gz" = 0 ] && [ "$bns_tr" = yes ]; then
		printf 'COMMIT;\n'
	fi
	exec 7>&-
}

# bns_verdict TEXT: set bns_gz, bns_tr, bns_n (and bns_client for a line client=N) from the
# lines of a verdict; each is empty when its line is missing.
bns_verdict() {
	bns_gz= bns_tr= bns_n= bns_client=
	bns_r=$1$bns_nl
	while [ -n "$bns_r" ]; do
		bns_x=${bns_r%%"$bns_nl"*}
		bns_r=${bns_r#*"$bns_nl"}
		case $bns_x in
		gzip=*) bns_gz=${bns_x#gzip=} ;;
		trailer=*) bns_tr=${bns_x#trailer=} ;;
		bytes=*) bns_n=${bns_x#bytes=} ;;
		client=*) bns_client=${bns_x#client=} ;;
		esac
	done
}

# bns_load WRAP CLIENT...: feed the dump on stdin through bns_feed into CLIENT (stdout to
# /dev/null, stderr ours); sets bns_gz, bns_tr, bns_n and bns_client (CLIENT's exit status).
bns_load() {
	bns_w=$1
	shift
	bns_v=$(
		{
			bns_feed "$bns_trailer" "$bns_w" | "$@" >/dev/null
			printf 'client=%s\n' "$?"
		} 3>&1
	)
	bns_verdict "$bns_v"
}

# bns_load_verdict WHAT UNCHANGED: fail with a message for the first problem bns_load saw; WHAT
# names the client, UNCHANGED says what that means for the database.
bns_load_verdict() {
	# A corrupt stream breaks the SQL too: name the cause. A gzip killed by a signal (status above
	# 128: SIGPIPE when the client stopped reading) is a consequence instead.
	if [ "$bns_gz" != 0 ] && bns_is_uint "$bns_gz" && [ "$bns_gz" -le 128 ]; then
		bns_die "the dump is not a valid gzip stream (gzip -d exit status $bns_gz: truncated or corrupt); $2"
	fi
	[ "$bns_client" = 0 ] ||
		bns_die "loading the dump failed ($1 exit status ${bns_client:-unknown}, see the error above); $2"
	[ "$bns_gz" = 0 ] ||
		bns_die "the dump is not a valid gzip stream (gzip -d exit status ${bns_gz:-unknown}: truncated or corrupt); $2"
	[ "$bns_tr" = yes ] ||
		bns_die "the dump lacks \"$bns_trailer\" at its end (incomplete); $2"
	bns_is_uint "$bns_n" || bns_die "cannot count the restored bytes; $2"
}
