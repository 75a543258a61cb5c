# backup-ns shell: the password handshake of the interactive clients (prepended to the shell
# scripts).
#
# With a tty exec, backup-ns's bytes go into the container's terminal, which echoes input as it
# arrives, before anything reads it: a password written at once would show on the screen. So the
# script first switches echo off (raw mode, so no control character in the password is taken as
# a signal or an erase), then prints the ready marker; backup-ns writes the password line only
# once it has seen the marker, and strips the marker from the output. Without a terminal the
# marker is printed all the same, so both modes speak one protocol.

# bns_shell_password: the handshake; leaves the password in bns_password and the terminal (if
# any) as it was.
bns_shell_password() {
	bns_stty=
	if [ -t 0 ]; then
		bns_require stty
		bns_stty=$(stty -g) || bns_die "cannot read the terminal settings"
		stty raw -echo || bns_die "cannot switch the terminal's echo off"
	fi
	printf '\033]backup-ns;shell-ready\007'
	bns_read_password
	if [ -n "$bns_stty" ]; then
		stty "$bns_stty" || bns_die "cannot restore the terminal settings"
	fi
}
