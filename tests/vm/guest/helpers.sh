# shellcheck shell=sh disable=SC3043,SC3045,SC3028 # busybox ash: local, read -t, EPOCHREALTIME
# helpers.sh — functions every scenario can use (busybox sh; sourced before the
# scenario runs). All names start with mt_.
#
# Waiting. Every wait takes a timeout in whole seconds and returns 1 when it
# expires. Waits are event-driven: /init keeps fd 9 open on a FIFO into which
# each kernel uevent writes one line (see uevent-hook). A waiter tests its
# condition and, while it is false, blocks reading fd 9 until the next uevent,
# then tests again. The read is capped at 1 s: that cap is the only polling and
# exists because a concurrent waiter may consume the wake-up meant for this one
# (or the condition may not be tied to a uevent at all). Do not close fd 9.
#
#   mt_wait TIMEOUT CMD [ARG...]   until CMD succeeds (its output is not hidden)
#   mt_wait_block NAME TIMEOUT     until /sys/block/NAME exists
#   mt_wait_sd_count N TIMEOUT     until at least N sd disks exist
#   mt_wait_wwid WWID TIMEOUT      until an sd disk has WWID; prints its name
#
# Inspection (sysfs only: there is no udevd in the guest).
#   mt_sd_disks                    sd disk names, one per line
#   mt_sd_count                    how many sd disks
#   mt_attr FILE                   a sysfs attribute without trailing blanks;
#                                  status 1 when missing or unreadable
#   mt_wwid NAME                   WWID of /sys/block/NAME in lowercase; status 1
#                                  when the disk has none (missing, unreadable
#                                  or empty wwid attribute)
#   mt_find_wwid WWID              name of the sd disk with WWID (case-insensitive)
#   mt_disk_bytes NAME             size of /sys/block/NAME in bytes
#
# Time.
#   mt_now_ms                      wall clock in milliseconds (for intervals)
#   mt_elapsed START_MS            "S.mmm" seconds since START_MS
#
# Checks. A scenario counts what it checks with these and ends with
# mt_summary, whose line the host script reads.
#   mt_pass DESC / mt_fail DESC    one check: prints "PASS DESC" / "FAIL DESC"
#   mt_verdict STATUS DESC         mt_pass when STATUS is 0, else mt_fail. Used as
#                                    st=1; COND && COND && st=0; mt_verdict $st "what was found"
#                                  so that DESC is made after the condition was tested
#   mt_check DESC CMD [ARG...]     mt_pass when CMD succeeds, else mt_fail
#   mt_run DESC CMD [ARG...]       the same, CMD's output hidden unless it fails
#                                  (then its last 20 lines, indented); returns
#                                  CMD's status
#   mt_info TEXT                   "info TEXT" (not a check)
#   mt_failed                      status 0 when a check has failed so far
#   mt_summary NAME                "NAME: N checks, M failed"; status 0 when none
#                                  failed and at least one ran

mt_now_ms() {
	local t s us
	t=$EPOCHREALTIME
	s=${t%[.,]*}
	us=${t#*[.,]}
	echo $((s * 1000 + (1$us - 1000000) / 1000))
}

mt_elapsed() {
	local d
	d=$(($(mt_now_ms) - $1))
	printf '%d.%03d' $((d / 1000)) $((d % 1000))
}

mt_wait() {
	local timeout deadline now left
	timeout=$1
	shift
	deadline=$(($(mt_now_ms) + timeout * 1000))
	while ! "$@"; do
		now=$(mt_now_ms)
		[ "$now" -lt "$deadline" ] || return 1
		left=$((deadline - now))
		[ "$left" -le 1000 ] || left=1000
		read -r -t "$((left / 1000)).$(printf %03d $((left % 1000)))" _mt_event <&9 || true
	done
}

mt_sd_disks() {
	local d
	for d in /sys/block/sd*; do
		[ -e "$d" ] && echo "${d##*/}"
	done
	return 0
}

mt_sd_count() {
	mt_sd_disks | wc -l
}

mt_sd_count_at_least() {
	[ "$(mt_sd_count)" -ge "$1" ]
}

mt_attr() {
	local v
	v=$(cat "$1" 2>/dev/null) || return 1
	while [ "${v% }" != "$v" ]; do v=${v% }; done
	printf '%s\n' "$v"
}

mt_wwid() {
	local v
	v=$(mt_attr "/sys/block/$1/device/wwid") || return 1
	[ -n "$v" ] || return 1
	printf '%s\n' "$v" | tr 'A-Z' 'a-z'
}

mt_find_wwid() {
	local want d w
	want=$(printf '%s' "$1" | tr 'A-Z' 'a-z')
	for d in $(mt_sd_disks); do
		w=$(mt_wwid "$d") || continue
		if [ "$w" = "$want" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# mt_need_env SCENARIO DRIVER VAR...: every VAR set (the driver script sets
# them), else the scenario's FAIL and exit 2.
mt_need_env() {
	local scenario=$1 driver=$2 v val
	shift 2
	for v in "$@"; do
		eval "val=\${$v:-}"
		[ -n "$val" ] || { echo "FAIL $scenario: $v is not set (run this through $driver)"; exit 2; }
	done
}

# mt_need_tools SCENARIO TOOL...: every TOOL in the guest, else FAIL and exit 2.
mt_need_tools() {
	local scenario=$1 t
	shift
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "FAIL $scenario: $t is not in the guest (--bin)"; exit 2; }
	done
}

# mt_need_disk SCENARIO VAR WWID: set VAR to the sd name of the disk with
# that WWID; without one, say so as the scenario's FAIL and exit 2 (set-up).
mt_need_disk() {
	local n
	if n=$(mt_find_wwid "$3"); then
		eval "$2=\$n"
		return 0
	fi
	echo "FAIL $1: no sd disk has WWID $3 (sysfs)"
	exit 2
}

mt_disk_bytes() {
	local sectors
	sectors=$(mt_attr "/sys/block/$1/size") || return 1
	echo $((sectors * 512))
}

mt_wait_block() {
	mt_wait "$2" test -e "/sys/block/$1"
}

mt_wait_sd_count() {
	mt_wait "$2" mt_sd_count_at_least "$1"
}

mt_wait_wwid() {
	mt_wait "$2" mt_find_wwid "$1"
}

MT_CHECKS=0
MT_FAILED=0

mt_pass() {
	MT_CHECKS=$((MT_CHECKS + 1))
	echo "PASS $*"
}

mt_fail() {
	MT_CHECKS=$((MT_CHECKS + 1))
	MT_FAILED=$((MT_FAILED + 1))
	echo "FAIL $*"
}

mt_verdict() {
	local st="$1"
	shift
	if [ "$st" -eq 0 ]; then mt_pass "$*"; else mt_fail "$*"; fi
}

mt_check() {
	local what="$1"
	shift
	if "$@"; then mt_pass "$what"; else mt_fail "$what"; fi
}

mt_run() {
	local what="$1" out st
	shift
	out=$("$@" 2>&1)
	st=$?
	if [ $st -eq 0 ]; then
		mt_pass "$what"
	else
		mt_fail "$what: exit $st: $*"
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /'
	fi
	return $st
}

mt_info() {
	echo "info $*"
}

mt_failed() {
	[ "$MT_FAILED" -gt 0 ]
}

mt_summary() {
	echo "$1: $MT_CHECKS checks, $MT_FAILED failed"
	[ "$MT_FAILED" -eq 0 ] && [ "$MT_CHECKS" -gt 0 ]
}

# mt_agent_config FILE DIR PORT: the agent.toml of a scenario whose retention
# volume is mounted at /mnt/retention: data port 127.0.0.1:PORT, TLS identity,
# credentials and control socket under DIR, 16 MiB segments (small disks).
mt_agent_config() {
	cat >"$1" <<EOF
[agent]
log_level = "info"
[data]
listen = "127.0.0.1:$3"
tls_dir = "$2/tls"
credentials_dir = "$2/credentials"
[control]
socket = "$2/control.sock"
[retention]
dir = "/mnt/retention"
segment_size = "16MiB"
low_space_min = "32MiB"
EOF
}
