# shellcheck shell=sh disable=SC3043,SC3028 # busybox ash: local, EPOCHREALTIME
# discard.sh — guest side of the VM-tier test of issue 18 (real captures with
# large discards), driven by tests/vm/discard-test. Every check is one "PASS
# ..." or "FAIL ..." line; the last line is "discard: N checks, M failed".
#
# Three captures through dm-log-writes (source and log on two SCSI disks),
# each replayed with `mtsend replay --log-writes` onto its own stream:
#   xfs    mkfs.xfs -f at its defaults (discards the whole device first)
#   ext4   mkfs.ext4 -F at its defaults (the same)
#   trim   mkfs.ext4 -F, mounted -o discard, files written then deleted:
#          the file system trims what it frees, online
# Marks: mkfs, files (under fsfreeze), umount, and the kernel's
# dm-log-writes-end. After each replay: the stream's points are the marks,
# the replay sent at least one discard, at every mark `mtctl export` passes
# `xfs_repair -n` / `e2fsck -fn`, and the export at umount, mounted
# read-only, holds every file with the SHA-256 it had at capture time.
#
# Environment (from discard-test): D_RET_WWID, D_SRC_WWID, D_LOG_WWID,
# D_XFS_WWID, D_EXT4_WWID, D_TRIM_WWID, D_EXP_WWID (a spare disk the
# exports at umount are written to and mounted from), D_SCRATCH_WWID (ext4,
# for export files), D_SIZE (size of source and targets).

run() { mt_run "$@"; }
finish() {
	mt_summary discard
	exit
}
mt_need_env discard tests/vm/discard-test D_RET_WWID D_SRC_WWID D_LOG_WWID D_XFS_WWID \
	D_EXT4_WWID D_TRIM_WWID D_EXP_WWID D_SCRATCH_WWID D_SIZE
mt_need_tools discard mt-agent mtctl mtsend dmsetup mkfs.ext4 e2fsck mkfs.xfs xfs_repair jq
W=/tmp/discard
mkdir -p $W
find_disk() { mt_need_disk discard "$@"; }
find_disk RET "$D_RET_WWID"
find_disk SRC "$D_SRC_WWID"
find_disk LOG "$D_LOG_WWID"
find_disk EXP "$D_EXP_WWID"
find_disk SCRATCH "$D_SCRATCH_WWID"
X=/mnt/scratch
mkdir -p $X /mnt/lw /mnt/exp
mount -t ext4 /dev/$SCRATCH $X || { echo "FAIL discard: mount -t ext4 /dev/$SCRATCH $X"; exit 2; }

# ---------------------------------------------------------------- agent
ip link set lo up
CONF=$W/agent.toml
ctl() { mtctl --config "$CONF" "$@"; }
echo "# discard fstab" >$W/fstab
mkdir -p /mnt/retention
run "setup: mtctl retention prepare /dev/$RET" \
	mtctl retention prepare /dev/$RET --force --mount /mnt/retention --fstab $W/fstab || finish
PORT=9443
mt_agent_config "$CONF" "$W" "$PORT"
for s in xfs ext4 trim; do
	eval "wwid=\$D_$(echo $s | tr a-z A-Z)_WWID"
	if ctl pair add --stream $s --disk "0:$wwid:src-$s" --json >$W/pair-$s.json 2>$W/pair-$s.err; then
		eval "KEY_$s=\$(jq -r .credential_hex $W/pair-$s.json)"
		mt_pass "setup: mtctl pair add --stream $s --disk 0:$wwid"
	else
		mt_fail "setup: mtctl pair add --stream $s: $(cat $W/pair-$s.err)"
		finish
	fi
done
mt-agent --config "$CONF" --foreground >$W/agent.log 2>&1 &
AGENT=$!
daemon_up() { ctl status --json >$W/status.json 2>/dev/null && [ "$(jq -r .daemon_running $W/status.json)" = true ]; }
if mt_wait 60 daemon_up; then
	FP=$(jq -r .tls_fingerprint $W/status.json)
	mt_pass "setup: mt-agent is running, fingerprint $FP"
else
	mt_fail "setup: mt-agent did not come up within 60 s"
	tail -n 30 $W/agent.log | sed 's/^/    agent: /'
	finish
fi
send_sub() {  # send_sub STREAM SUB ARGS...
	local s=$1 sub=$2 key
	shift 2
	eval "key=\$KEY_$s"
	mtsend "$sub" --to 127.0.0.1:$PORT --stream "$s" --key-hex "$key" --fingerprint "$FP" --retry-for 30 "$@"
}
truncate -s "$D_SIZE" $W/zero.img
for s in xfs ext4 trim; do
	run "setup: mtsend resync $s from zeroes" send_sub $s resync --source $W/zero.img --disk 0 --no-progress
done
points() { ctl points --stream "$1" --json 2>/dev/null; }
applied() { points "$1" | jq -r '.streams[0].latest_seq // 0' 2>/dev/null || echo 0; }
applied_at_least() { [ "$(applied "$1")" -ge "$2" ] 2>/dev/null; }
rec_last() { awk 'NR > 1 && NF >= 2 { s = $2 } END { print s + 0 }' "$1"; }

# ---------------------------------------------------------------- captures
mark() { run "$CASE: dmsetup message lw 0 mark $1" dmsetup message lw 0 mark "$1"; }
fill() {  # fill DIR N KIB
	local i
	mkdir -p "$1"
	for i in $(seq 1 "$2"); do
		dd if=/dev/urandom of="$1/f$i.bin" bs=1024 count="$3" 2>/dev/null || return 1
	done
}
# capture FSTYPE MOUNTOPTS MKFS...: the capture of case $CASE on /dev/$LOG
capture() {
	local fstype=$1 opts=$2 sectors
	shift 2
	sectors=$(cat /sys/block/$SRC/size)
	run "$CASE: dmsetup create lw (log-writes /dev/$SRC /dev/$LOG)" \
		env DM_DISABLE_UDEV=1 dmsetup create lw --table "0 $sectors log-writes /dev/$SRC /dev/$LOG" || return 1
	run "$CASE: $* /dev/mapper/lw (defaults: discard on)" "$@" /dev/mapper/lw || return 1
	mark mkfs || return 1
	run "$CASE: mount -t $fstype ${opts:+-o $opts }/dev/mapper/lw" mount -t $fstype ${opts:+-o $opts} /dev/mapper/lw /mnt/lw ||
		return 1
	fill /mnt/lw/a 8 512 && fill /mnt/lw/b 8 256 || { mt_fail "$CASE: writing files failed"; return 1; }
	if [ "$CASE" = trim ]; then
		# Freed blocks are trimmed by the file system (-o discard) at commit.
		rm -rf /mnt/lw/a && sync && fill /mnt/lw/c 4 256 && rm -f /mnt/lw/b/f1.bin /mnt/lw/b/f2.bin && sync ||
			{ mt_fail "$CASE: deleting files failed"; return 1; }
	fi
	sync
	run "$CASE: fsfreeze --freeze /mnt/lw" fsfreeze --freeze /mnt/lw || return 1
	mark files
	run "$CASE: fsfreeze --unfreeze /mnt/lw" fsfreeze --unfreeze /mnt/lw || return 1
	(cd /mnt/lw && find . -type f | sort | xargs sha256sum) >$W/$CASE.sums
	run "$CASE: umount /mnt/lw" umount /mnt/lw || return 1
	mark umount || return 1
	run "$CASE: dmsetup remove lw" env DM_DISABLE_UDEV=1 dmsetup remove lw || return 1
}
# check_fs FSTYPE IMAGE: xfs_repair -n / e2fsck -fn. An XFS frozen with
# fsfreeze keeps its last changes in the log (crash-consistent, as after a
# power cut): xfs_repair -n refuses such an image until the log is replayed,
# so the image is then copied to /dev/$EXP, mounted and unmounted (the
# kernel replays the log) and checked there.
check_fs() {
	if [ "$1" != xfs ]; then
		e2fsck -fn "$2"
		return
	fi
	xfs_repair -n -f "$2" >$W/xfs1.out 2>&1 && { cat $W/xfs1.out; return 0; }
	grep -q "valuable metadata changes in a log" $W/xfs1.out || { cat $W/xfs1.out; return 1; }
	echo "dirty log: replayed by a mount of a copy on /dev/$EXP, then xfs_repair -n"
	dd if="$2" of=/dev/$EXP bs=1M conv=fsync 2>/dev/null && mount -t xfs /dev/$EXP /mnt/exp &&
		umount /mnt/exp && xfs_repair -n /dev/$EXP
}
# replay_and_check STREAM FSTYPE
replay_and_check() {
	local s=$1 fstype=$2 last names discards m
	if ! send_sub $s replay --log-writes /dev/$LOG --disk 0 --record $W/rec-$s.txt >$W/replay-$s.out 2>&1; then
		mt_fail "$s: mtsend replay --log-writes /dev/$LOG: $(tail -n 5 $W/replay-$s.out)"
		return 1
	fi
	mt_pass "$s: mtsend replay: $(head -n 1 $W/replay-$s.out)"
	discards=$(sed -n 's/.* writes, \([0-9][0-9]*\) discards,.*/\1/p' $W/replay-$s.out | head -n 1)
	st=1; [ "${discards:-0}" -ge 1 ] 2>/dev/null && st=0
	mt_verdict $st "$s: the capture's discards were sent (${discards:-none})"
	last=$(rec_last $W/rec-$s.txt)
	if mt_wait 300 applied_at_least $s "$last"; then
		mt_pass "$s: applied everything up to seq $last"
	else
		mt_fail "$s: applied seq $(applied $s) after 300 s, the replay ends at $last"
		return 1
	fi
	names=$(points $s | jq -r '[(.streams[0].points // [])[] | .name] | join(" ")')
	st=1; [ "$names" = "mkfs files umount dm-log-writes-end" ] && st=0
	mt_verdict $st "$s: points are the capture's marks: '$names'"
	for m in mkfs files umount; do
		if ctl export "$(eval echo \$D_$(echo $s | tr a-z A-Z)_WWID)" --at "$m" --out $X/m.img >$W/export.out 2>&1; then
			if check_fs $fstype $X/m.img >$W/fsck.out 2>&1; then
				mt_pass "$s: $([ $fstype = xfs ] && echo 'xfs_repair -n' || echo 'e2fsck -fn') passes on the export at mark $m$(grep -q '^dirty log' $W/fsck.out && echo ' (after log replay)')"
			else
				mt_fail "$s: file system check of the export at mark $m failed"
				tail -n 30 $W/fsck.out | sed 's/^/    /'
			fi
			if [ $m = umount ]; then
				run "$s: the export at umount copied to /dev/$EXP" dd if=$X/m.img of=/dev/$EXP bs=1M conv=fsync &&
					run "$s: mount -o ro the export at umount" mount -t $fstype -o ro /dev/$EXP /mnt/exp &&
					run "$s: every file of the capture has its SHA-256 ($(wc -l <$W/$s.sums) files)" \
						sh -c "cd /mnt/exp && sha256sum -c $W/$s.sums"
				umount /mnt/exp 2>/dev/null
			fi
		else
			mt_fail "$s: mtctl export --at $m: $(tail -n 5 $W/export.out)"
		fi
		rm -f $X/m.img
	done
}

CASE=xfs
capture xfs "" mkfs.xfs -f -q && replay_and_check xfs xfs
CASE=ext4
capture ext4 "" mkfs.ext4 -q -F && replay_and_check ext4 ext4
CASE=trim
capture ext4 discard mkfs.ext4 -q -F && replay_and_check trim ext4

for s in xfs ext4 trim; do
	if ctl verify --stream $s --json >$W/verify.json 2>$W/verify.err; then
		st=1; [ "$(jq -r .ok $W/verify.json)" = true ] && st=0
		mt_verdict $st "verify: mtctl verify --stream $s"
	else
		mt_fail "verify: mtctl verify --stream $s: $(cat $W/verify.err)"
	fi
done
kill -TERM $AGENT
wait $AGENT
mt_verdict $? "mt-agent exited on SIGTERM"
if mt_failed; then
	echo "mt-agent log (last 40 lines):"
	tail -n 40 $W/agent.log | sed 's/^/    /'
fi
finish
