# backup-ns postgres verify: load a dump into a throwaway PostgreSQL and report what it holds.
#
# Usage: sh -c "$SCRIPT" backup-ns-postgres-verify DUMP [EXPECT_SQL...]
# Runs in a helper pod from the database's image as a non-root uid; DUMP is relative to the
# current directory (the restored volume). The scratch server (initdb, trust auth, Unix socket in
# ${TMPDIR:-/tmp} only, listen_addresses='') gets the roles the dump names in OWNER TO, GRANT,
# REVOKE and ALTER DEFAULT PRIVILEGES, then the dump in one transaction with ON_ERROR_STOP,
# committed only after a clean gzip stream that ends with the completion trailer.
# Stdout, one JSON object per line (built by the server, so any name survives):
#   {"table":"schema.name","rows":N}   per table
#   {"expect":I,"value":"…"|null}       per EXPECT_SQL (I from 0): first column of the first row
# Exit 1 with one "backup-ns: ..." line on stderr: dump missing, corrupt or incomplete, load
# error, failing expectation query, server that does not start. The server is always stopped and
# its directory removed.

[ $# -ge 1 ] || bns_usage "expected arguments: dump [expect_sql...]"
bns_dump=$1
shift
bns_stop_signal=INT
bns_trailer='-- PostgreSQL database dump complete'
bns_verify_start "$bns_dump"
bns_require gzip tee tail wc sed

# The server binaries: PATH, else the newest /usr/lib/postgresql/N/bin, else Bitnami's.
if ! command -v initdb >/dev/null 2>&1 || ! command -v postgres >/dev/null 2>&1; then
	bns_best= bns_bestv=-1
	for bns_d in /usr/lib/postgresql/*/bin /usr/local/pgsql/bin /opt/bitnami/postgresql/bin; do
		[ -x "$bns_d/initdb" ] && [ -x "$bns_d/postgres" ] || continue
		bns_v=${bns_d#/usr/lib/postgresql/}
		bns_v=${bns_v%%/*}
		bns_is_uint "$bns_v" || bns_v=0
		if [ "$bns_v" -gt "$bns_bestv" ]; then
			bns_best=$bns_d bns_bestv=$bns_v
		fi
	done
	[ -n "$bns_best" ] ||
		bns_die "initdb and postgres not found in PATH, /usr/lib/postgresql/*/bin or /opt/bitnami/postgresql/bin"
	PATH=$bns_best:$PATH
	export PATH
fi
bns_require initdb postgres psql

bns_nss_wrapper postgres
initdb -D "$bns_s/data" -U postgres -A trust -E UTF8 --locale=C -N >"$bns_s/initdb.log" 2>&1 || {
	tail -n 20 "$bns_s/initdb.log" >&2
	bns_die "initdb of the scratch server failed (its output is above)"
}
cat >>"$bns_s/data/postgresql.conf" <<BNS_CONF
listen_addresses = ''
unix_socket_directories = '$bns_s'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 10
shared_buffers = 32MB
logging_collector = off
BNS_CONF

postgres -D "$bns_s/data" >"$bns_s/server.log" 2>&1 &
bns_pid=$!
PGHOST=$bns_s PGPORT=5432 PGUSER=postgres PGDATABASE=postgres PGCLIENTENCODING=UTF8
PGAPPNAME=backup-ns-verify
export PGHOST PGPORT PGUSER PGDATABASE PGCLIENTENCODING PGAPPNAME
unset PGPASSWORD PGSERVICE PGOPTIONS
bns_server_wait PostgreSQL "$bns_s/server.log" psql -X -w -q -t -A -c 'SELECT 1'

# Roles named by the dump, each checked to be one identifier as pg_dump writes it (bare
# lower-case, or double-quoted with "" inside), so no text of the dump ever runs as SQL here.
# Existing roles make CREATE ROLE fail, which is fine: errors are ignored in this one step.
gzip -cd <"$bns_dump" 2>/dev/null | sed -n \
	-e 's/^ALTER .* OWNER TO \(.*\);$/\1/p' \
	-e 's/^GRANT .* TO \(.*\) WITH GRANT OPTION;$/\1/p' \
	-e 's/^GRANT .* TO \(.*\);$/\1/p' \
	-e 's/^REVOKE .* FROM \(.*\);$/\1/p' \
	-e 's/^ALTER DEFAULT PRIVILEGES FOR ROLE \([^ ]*\) .*/\1/p' |
	while IFS= read -r bns_role; do
		case $bns_role in
		'' | [0123456789\$]* | *[!abcdefghijklmnopqrstuvwxyz0123456789_\$]*)
			case $bns_role in
			\"?*\")
				bns_in=${bns_role#\"}
				bns_in=${bns_in%\"}
				bns_rest=
				while [ -n "$bns_in" ]; do
					case $bns_in in
					\"\"*) bns_in=${bns_in#\"\"} ;;
					\"*)
						bns_rest=bad
						break
						;;
					*) bns_in=${bns_in#?} ;;
					esac
				done
				[ -z "$bns_rest" ] || continue
				;;
			*) continue ;;
			esac
			;;
		esac
		printf 'CREATE ROLE %s;\n' "$bns_role"
	done | psql -X -w -q >/dev/null 2>&1

bns_load 1 psql -X -w -q -v ON_ERROR_STOP=1 <"$bns_dump"
bns_load_verdict psql "the dump does not restore"

bns_out=$(psql -X -w -q -t -A -v ON_ERROR_STOP=1 2>&1 <<'BNS_SQL'
SELECT json_build_object('table', n.nspname || '.' || c.relname, 'rows',
       (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname),
                                            false, true, '')))[1]::text::bigint)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
 ORDER BY n.nspname, c.relname;
BNS_SQL
) || {
	bns_oneline "$bns_out"
	bns_die "counting the rows of the restored tables failed: $bns_line"
}
[ -z "$bns_out" ] || printf '%s\n' "$bns_out"

bns_i=0
for bns_e in "$@"; do
	bns_out=$(psql -X -w -q -t -A -v ON_ERROR_STOP=1 -v "bns_q=$bns_e" -v "bns_i=$bns_i" 2>&1 <<'BNS_SQL'
CREATE FUNCTION pg_temp.bns_first(q text) RETURNS text LANGUAGE plpgsql AS $bns$
DECLARE
  r record;
  n bigint;
BEGIN
  EXECUTE q INTO r;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n = 0 THEN
    RETURN NULL;
  END IF;
  RETURN (SELECT value FROM json_each_text(row_to_json(r)) LIMIT 1);
END
$bns$;
SELECT json_build_object('expect', :bns_i, 'value', pg_temp.bns_first(:'bns_q'));
BNS_SQL
	) || {
		bns_oneline "$bns_out"
		bns_oneline "expectation $bns_i ($bns_e) failed: $bns_line"
		bns_die "$bns_line"
	}
	printf '%s\n' "$bns_out"
	bns_i=$((bns_i + 1))
done
