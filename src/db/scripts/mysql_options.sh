# backup-ns: MySQL/MariaDB credentials without argv (prepended to the MySQL scripts).
#
# The user and the password reach the client in an option file that is a pipe (a here-document
# on fd 4, read as /dev/fd/4 with --defaults-extra-file, which must be the first option): nothing
# is written to disk, nothing shows in argv or in the environment. Option files take a value in
# double quotes with backslash escapes (\\ \" \n \r), which MySQL 8 and MariaDB read alike.

bns_cr=$(printf '\r')

# bns_optquote VAR VALUE: set VAR to VALUE escaped for a double-quoted option file value.
bns_optquote() {
	bns_q=
	bns_r=$2
	while [ -n "$bns_r" ]; do
		bns_c=${bns_r%"${bns_r#?}"}
		bns_r=${bns_r#?}
		case $bns_c in
		\\ | \") bns_q="$bns_q\\$bns_c" ;;
		"$bns_nl") bns_q="$bns_q\\n" ;;
		"$bns_cr") bns_q="$bns_q\\r" ;;
		*) bns_q=$bns_q$bns_c ;;
		esac
	done
	eval "$1=\$bns_q"
}
# bns_with_credentials COMMAND...: run COMMAND with the option file on fd 4 (COMMAND may start
# with exec). Needs bns_user and bns_password.
bns_with_credentials() {
	bns_optquote bns_quser "$bns_user"
	bns_optquote bns_qpassword "$bns_password"
	"$@" 4<<BNS_EOF
[client]
user="$bns_quser"
password="$bns_qpassword"
BNS_EOF
}
