# shellcheck shell=sh disable=SC3043,SC3028 # busybox ash: local, EPOCHREALTIME
# e2e.sh — guest side of the VM-tier end-to-end test of issue 7, driven by
# tests/vm/e2e-test. Every check is one "PASS ..." or "FAIL ..." line ("info
# ..." lines are the record); each phase ends with "phase NAME: S s".
#
#  capture   an ext4 file system made and written through a dm-log-writes map
#            (source and log on two scratch SCSI disks), with marks after
#            mkfs, at two frozen points while mounted (fsfreeze: the journal
#            is checkpointed, needs_recovery cleared, so each mark is a
#            consistent image), after umount; the kernel adds
#            "dm-log-writes-end" when the map goes. e2fsck -fn on the source.
#  setup     lo up; `mtctl retention prepare` on the retention disk (found by
#            WWID); agent.toml; `mtctl pair add` of fs (target by WWID);
#            mt-agent started; fingerprint from `mtctl status --json`;
#            `mt-cs serve` on 127.0.0.1:8443, `mtctl register` with its
#            fingerprint pinned, the link up and the inventory at the CS;
#            `mt-cs protect` of vm-a and vm-b (group g1, targets by WWID, no
#            --agent: placed by the CS); initial `mtsend resync` of every
#            stream from a zero image (the targets are zero: nothing is sent).
#  workload  two concurrent `mtsend workload` runs (vm-a, vm-b), seeded and
#            recorded, every E2E_TAG_ITEMS-th item an app tag carrying group
#            tag g1-k (--tag-every-items, --group-tags).
#  vsnap     (E2E_VSNAP=1) while vm-a's workload runs: `mtctl vsnap create`
#            of vm-a's target at an applied tag; its device equals `mtsend
#            rebuild --tag` byte for byte; the stream applies more items; the
#            device still equals it; `vsnap list` has it; `vsnap remove`;
#            list and device no longer have it.
#  workload-end  both runs end with status 0 and their tags; each target
#            equals the record's image at its last item.
#  group     `mtctl common-point --group g1` is the last group tag both
#            share, naming each stream's tag;
#            `mt-cs run rollback --group g1` (a job of the agent, run from
#            the CS); each target equals the record's image at its stream's
#            tag of the common point (and no longer the image at the end: the
#            rollback undid writes); `mt-cs jobs` and `mtctl jobs` list it.
#  replay    `mtsend replay --log-writes` of the capture onto fs; its points
#            are the capture's marks in order; at every mark `mtctl export`
#            passes `e2fsck -fn`; the export at the last marks equals the
#            source disk byte for byte.
#  verify    `mtctl verify` of every stream; mt-agent exits 0 on SIGTERM.
#
# Environment (from e2e-test): E2E_RET_WWID, E2E_A_WWID, E2E_B_WWID,
# E2E_GROUP_SIZE (size of vm-a's and vm-b's disks), E2E_FS_WWID, E2E_SRC_WWID,
# E2E_LOG_WWID, E2E_FS_SIZE, E2E_SCRATCH_WWID (ext4 made on the host: mounted
# at /mnt/scratch for the export files, which mtctl opens with O_DIRECT and
# tmpfs refuses), E2E_VSNAP (0 or 1). Optional: E2E_COUNT (items
# per workload, default 2450: long enough to outlast vsnap create on a slow machine; not a multiple of E2E_TAG_ITEMS, so writes follow the last tag), E2E_RATE (writes/s, default 40), E2E_TAG_ITEMS
# (default 100).
# Exit 0 only when every check passed; the last line is "e2e: N checks, M failed".

# run DESCRIPTION CMD...: a check that CMD exits 0; its output is shown on failure
run() { mt_run "$@"; }
finish() {
	mt_summary e2e
	exit
}
phase_name="" phase_t0=0
phase() {
	[ -z "$phase_name" ] || echo "phase $phase_name: $(mt_elapsed "$phase_t0") s"
	phase_name=$1
	phase_t0=$(mt_now_ms)
	[ -z "$1" ] || echo "=== $1"
}

for v in E2E_RET_WWID E2E_A_WWID E2E_B_WWID E2E_GROUP_SIZE E2E_FS_WWID E2E_SRC_WWID E2E_LOG_WWID \
	E2E_FS_SIZE E2E_SCRATCH_WWID E2E_VSNAP; do
	eval "val=\${$v:-}"
	[ -n "$val" ] || { echo "FAIL e2e: $v is not set (run this through tests/vm/e2e-test)"; exit 2; }
done
for tool in mt-agent mtctl mtsend mt-cs dmsetup mkfs.ext4 e2fsck jq; do
	command -v $tool >/dev/null || { echo "FAIL e2e: $tool is not in the guest (--bin)"; exit 2; }
done
COUNT=${E2E_COUNT:-2450}
RATE=${E2E_RATE:-40}
TAGN=${E2E_TAG_ITEMS:-100}
W=/tmp/e2e
mkdir -p $W
t_all=$(mt_now_ms)

find_disk() {
	local n
	if n=$(mt_find_wwid "$2"); then
		eval "$1=\$n"
		mt_info "disk $2 is /dev/$n ($(mt_disk_bytes "$n") bytes)"
		return 0
	fi
	echo "FAIL e2e: no sd disk has WWID $2 (sysfs)"
	exit 2
}
find_disk RET "$E2E_RET_WWID"
find_disk DA "$E2E_A_WWID"
find_disk DB "$E2E_B_WWID"
find_disk DFS "$E2E_FS_WWID"
find_disk SRC "$E2E_SRC_WWID"
find_disk LOG "$E2E_LOG_WWID"
find_disk SCRATCH "$E2E_SCRATCH_WWID"
X=/mnt/scratch
mkdir -p $X
mount -t ext4 /dev/$SCRATCH $X || { echo "FAIL e2e: mount -t ext4 /dev/$SCRATCH $X"; exit 2; }

# ================================================================ capture
phase capture
MNT=/mnt/lw
MARKS="mkfs files changed umount dm-log-writes-end"
mkdir -p $MNT
capture_ok=0
mark() { run "capture: dmsetup message lw 0 mark $1" dmsetup message lw 0 mark "$1"; }
frozen_mark() {
	sync
	run "capture: fsfreeze --freeze $MNT (journal checkpointed)" fsfreeze --freeze $MNT || return 1
	mark "$1"
	local st=$?
	run "capture: fsfreeze --unfreeze $MNT" fsfreeze --unfreeze $MNT || return 1
	return $st
}
# fill DIR N KiB: N files of KiB random KiB each, and a few small ones
fill() {
	local i
	mkdir -p "$1/small"
	for i in $(seq 1 "$2"); do
		dd if=/dev/urandom of="$1/f$i.bin" bs=1024 count="$3" 2>/dev/null || return 1
	done
	for i in $(seq 1 20); do echo "small file $i in $1" >"$1/small/s$i.txt" || return 1; done
}
capture() {
	local sectors
	sectors=$(cat /sys/block/$SRC/size)
	run "capture: DM_DISABLE_UDEV=1 dmsetup create lw --table '0 $sectors log-writes /dev/$SRC /dev/$LOG'" \
		env DM_DISABLE_UDEV=1 dmsetup create lw --table "0 $sectors log-writes /dev/$SRC /dev/$LOG" || return 1
	[ -b /dev/mapper/lw ] || { mt_fail "capture: /dev/mapper/lw is not a block device"; return 1; }
	# nodiscard: what QEMU does with a discard is not this test's business;
	# no lazy init: every inode table and the journal are written now, not
	# by a kernel thread after the mount (between the marks).
	run "capture: mkfs.ext4 on /dev/mapper/lw" \
		mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 /dev/mapper/lw || return 1
	mark mkfs || return 1
	run "capture: mount -t ext4 /dev/mapper/lw $MNT" mount -t ext4 /dev/mapper/lw $MNT || return 1
	if fill $MNT/alpha 4 320 && fill $MNT/beta 4 320 && fill $MNT/gamma/deep 4 320 &&
		ln -s ../alpha/f1.bin $MNT/beta/link; then
		mt_pass "capture: wrote 3 directories (12 files of 320 KiB, 60 small ones, a symlink)"
	else
		mt_fail "capture: writing the files failed"
		return 1
	fi
	frozen_mark files || return 1
	# more writes, deletes, renames, an append
	if rm -f $MNT/alpha/f2.bin $MNT/beta/f3.bin && rm -rf $MNT/gamma/deep/small &&
		mv $MNT/alpha/f4.bin $MNT/beta/moved.bin &&
		dd if=/dev/urandom bs=1024 count=200 2>/dev/null >>$MNT/beta/f1.bin && fill $MNT/delta 6 256; then
		mt_pass "capture: deleted 2 files and a directory, renamed, appended, wrote 6 more files"
	else
		mt_fail "capture: the second round of writes failed"
		return 1
	fi
	frozen_mark changed || return 1
	run "capture: umount $MNT" umount $MNT || return 1
	mark umount || return 1
	run "capture: dmsetup remove lw (the kernel logs dm-log-writes-end)" env DM_DISABLE_UDEV=1 dmsetup remove lw ||
		return 1
	capture_ok=1
}
capture
if [ $capture_ok = 1 ]; then
	run "capture: e2fsck -fn /dev/$SRC (the source after the capture)" e2fsck -fn /dev/$SRC
fi
mt_info "capture: log device /dev/$LOG, $(dd if=/dev/$LOG bs=512 count=1 2>/dev/null | od -A n -t u8 -j 16 -N 8 | tr -d ' ') entries in its super"

# ================================================================ setup
phase setup
run "setup: ip link set lo up" ip link set lo up
CONF=$W/agent.toml
ctl() { mtctl --config "$CONF" "$@"; }
echo "# e2e fstab" >$W/fstab
mkdir -p /mnt/retention
run "setup: mtctl retention prepare /dev/$RET --force --mount /mnt/retention" \
	mtctl retention prepare /dev/$RET --force --mount /mnt/retention --fstab $W/fstab || finish
PORT=9443
mt_agent_config "$CONF" "$W" "$PORT"
pair() {  # pair STREAM WWID [GROUP]
	local g=""
	[ -z "$3" ] || g="--group $3"
	# shellcheck disable=SC2086 # $g is two words or none
	if ctl pair add --stream "$1" --disk "0:$2:src-$1" $g --json >$W/pair-$1.json 2>$W/pair-$1.err; then
		eval "KEY_$(echo "$1" | tr -c 'a-z0-9\n' '_')=\$(jq -r .credential_hex $W/pair-$1.json)"
		mt_pass "setup: mtctl pair add --stream $1 --disk 0:$2 ${3:+--group $3}"
	else
		mt_fail "setup: mtctl pair add --stream $1 --disk 0:$2: $(cat $W/pair-$1.err)"
		finish
	fi
}
pair fs "$E2E_FS_WWID"
# The agent reports to mt-cs (started below) and takes the group's steps from it.
printf '[cs]\ndir = "%s/agent-cs"\nheartbeat = "1s"\n' "$W" >>"$CONF"
mt-agent --config "$CONF" --foreground >$W/agent.log 2>&1 &
AGENT=$!
daemon_up() { ctl status --json >$W/status.json 2>/dev/null && [ "$(jq -r .daemon_running $W/status.json)" = true ]; }
if mt_wait 60 daemon_up; then
	FP=$(jq -r .tls_fingerprint $W/status.json)
	st=1; [ -n "$FP" ] && [ "$FP" != null ] && st=0
	mt_verdict $st "setup: mt-agent (pid $AGENT) is running, data port 127.0.0.1:$PORT, fingerprint $FP"
else
	mt_fail "setup: mt-agent did not come up within 60 s"
	tail -n 30 $W/agent.log | sed 's/^/    agent: /'
	finish
fi
# The configuration server: vm-a and vm-b (group g1) are protected from it,
# and the group is rolled back through it (phase group); mtctl only reads.
CSD=$W/cs
echo "e2e configuration server passphrase" >$W/cs.pass
mt-cs serve --dir "$CSD" --listen 127.0.0.1:8443 --passphrase-file $W/cs.pass --heartbeat 1s \
	>$W/cs.out 2>$W/cs.log &
CS=$!
cs_up() { grep -q "listening on" $W/cs.out; }
mt_wait 30 cs_up || { mt_fail "setup: mt-cs serve did not come up: $(cat $W/cs.log)"; finish; }
run "setup: mtctl register --cs 127.0.0.1:8443 (fingerprint pinned up front)" \
	ctl register --cs 127.0.0.1:8443 --passphrase-file $W/cs.pass --fingerprint "$(mt-cs fingerprint --dir "$CSD")"
linked() { [ "$(ctl status --json 2>/dev/null | jq -r .cs_link)" = connected ] && mt-cs disks --dir "$CSD" --agent agent-1 >/dev/null 2>&1; }
if mt_wait 30 linked; then mt_pass "setup: the agent's link to mt-cs is up and its inventory arrived"; else mt_fail "setup: no link to mt-cs: $(ctl status --json | jq -r .cs_link)"; finish; fi
csprotect() {  # csprotect STREAM WWID: placed by mt-cs (no --agent), the target given by WWID
	if mt-cs protect --dir "$CSD" --stream "$1" --group g1 --disk "0=$2" >$W/prot-$1.out 2>$W/prot-$1.err; then
		eval "KEY_$(echo "$1" | tr -c 'a-z0-9\n' '_')=\$(tr -d '\n' <$CSD/credentials/agent-1/$1.key)"
		st=1; grep -q "placing stream '$1' on agent-1" $W/prot-$1.err && st=0
		mt_verdict $st "setup: mt-cs protect --stream $1 --group g1 --disk 0=$2: placed on agent-1"
	else
		mt_fail "setup: mt-cs protect --stream $1: $(cat $W/prot-$1.err)"
		finish
	fi
}
csprotect vm-a "$E2E_A_WWID"
csprotect vm-b "$E2E_B_WWID"
ctl pairs | sed 's/^/    /'
send_sub() {  # send_sub STREAM SUB ARGS...: like send, SUB first
	local s=$1 sub=$2 key
	shift 2
	eval "key=\$KEY_$(echo "$s" | tr -c 'a-z0-9\n' '_')"
	mtsend "$sub" --to 127.0.0.1:$PORT --stream "$s" --key-hex "$key" --fingerprint "$FP" --retry-for 30 "$@"
}
truncate -s "$E2E_GROUP_SIZE" $W/zero-group.img
truncate -s "$E2E_FS_SIZE" $W/zero-fs.img
run "setup: mtsend resync vm-a from zeroes" send_sub vm-a resync --source $W/zero-group.img --disk 0 --no-progress
run "setup: mtsend resync vm-b from zeroes" send_sub vm-b resync --source $W/zero-group.img --disk 0 --no-progress
run "setup: mtsend resync fs from zeroes (the capture's source was zero before mkfs)" \
	send_sub fs resync --source $W/zero-fs.img --disk 0 --no-progress

# points JSON of a stream; applied seq
points() { ctl points --stream "$1" --json 2>/dev/null; }
applied() { points "$1" | jq -r '.streams[0].latest_seq // 0' 2>/dev/null || echo 0; }
applied_at_least() { [ "$(applied "$1")" -ge "$2" ] 2>/dev/null; }
# rec_last FILE: the last seq of a record; rec_tag_seq FILE NAME: the seq of a tag
rec_last() { awk 'NR > 1 && NF >= 2 { s = $2 } END { print s + 0 }' "$1"; }
rec_tag_seq() { awk -v n="$2" '$1 == "T" && $4 == n { print $2 }' "$1"; }

# ================================================================ workload
phase workload
wl() {  # wl STREAM SEED: background workload, pid in WL_<stream>
	send_sub "$1" workload --disks 1 --disk-size "$E2E_GROUP_SIZE" --count "$COUNT" --rate "$RATE" \
		--sizes 4k..64k --overlap 0.3 --tag-every-items "$TAGN" --group-tags g1 --seed "$2" \
		--window 4194304 --record $W/rec-$1.txt >$W/wl-$1.out 2>&1 &
}
wl vm-a 7001
WL_A=$!
wl vm-b 7002
WL_B=$!
mt_info "workloads started: vm-a pid $WL_A, vm-b pid $WL_B: $COUNT items each at $RATE writes/s, sizes 4k..64k, every ${TAGN}th item an app tag with group tag g1-k"

# ================================================================ vsnap
if [ "$E2E_VSNAP" = 1 ]; then
	phase vsnap
	app_tags() { points vm-a | jq -r '[(.streams[0].points // [])[] | select(.kind == "app")] | length' 2>/dev/null; }
	a_tag() { [ "$(app_tags)" -ge 1 ] 2>/dev/null; }
	if mt_wait 180 a_tag; then
		points vm-a >$W/vs-points.json
		TAG=$(jq -r '[(.streams[0].points // [])[] | select(.kind == "app")] | last | .name' $W/vs-points.json)
		TAG_SEQ=$(jq -r '[(.streams[0].points // [])[] | select(.kind == "app")] | last | .seq' $W/vs-points.json)
		mt_info "vsnap: vm-a has applied app tag $TAG (seq $TAG_SEQ); applied seq $(jq -r .streams[0].latest_seq $W/vs-points.json)"
		running_a=0; kill -0 $WL_A 2>/dev/null && running_a=1
		if ctl vsnap create "$E2E_A_WWID" --at "$TAG" --name v1 --json >$W/vs.json 2>$W/vs.err; then
			# Taken at once (the guest can be slow to run the jq below): the
			# workload still running, and vm-a's applied seq, right after the create.
			after_a=0; kill -0 $WL_A 2>/dev/null && after_a=1
			s1=$(applied vm-a)
			cat $W/vs.json | jq -c . 2>/dev/null | sed 's/^/    /'
			VDEV=$(jq -r .device $W/vs.json)
			st=1
			[ "$(jq -r .name $W/vs.json)" = v1 ] && [ "$(jq -r .state $W/vs.json)" = ready ] &&
				[ "$(jq -r .seq $W/vs.json)" = "$TAG_SEQ" ] && [ -b "$VDEV" ] && st=0
			mt_verdict $st "vsnap: mtctl vsnap create $E2E_A_WWID --at $TAG --name v1: name $(jq -r .name $W/vs.json), state $(jq -r .state $W/vs.json), seq $(jq -r .seq $W/vs.json) (tag seq $TAG_SEQ), device $VDEV ($([ -b "$VDEV" ] && echo block device || echo not a block device))"
			st=1; [ $running_a = 1 ] && [ $after_a = 1 ] && st=0
			mt_verdict $st "vsnap: vm-a's workload was running before and after vsnap create (applied seq $s1 after it)"
			run "vsnap: mtsend rebuild --tag $TAG (the oracle)" mtsend rebuild --record $W/rec-vm-a.txt --disks 1 \
				--disk-size "$E2E_GROUP_SIZE" --disk 0 --tag "$TAG" --out $W/vs-expect.img
			run "vsnap: $VDEV equals the record's image at $TAG byte for byte (vm-a applied seq $(applied vm-a))" \
				cmp "$VDEV" $W/vs-expect.img
			mt_wait 120 applied_at_least vm-a $((s1 + 20))
			s2=$(applied vm-a)
			st=1; [ "$s2" -gt "$s1" ] && st=0
			mt_verdict $st "vsnap: vm-a applied $((s2 - s1)) more items onto its target since (seq $s1 -> $s2; workload $(kill -0 $WL_A 2>/dev/null && echo still running || echo ended))"
			run "vsnap: $VDEV still equals the record's image at $TAG (vm-a applied seq $s2)" \
				cmp "$VDEV" $W/vs-expect.img
			rm -f $W/vs-expect.img
			if ctl vsnap list --json >$W/vsl.json 2>$W/vsl.err; then
				st=1; [ "$(jq -r '[.vsnaps[] | select(.name == "v1")] | length' $W/vsl.json)" = 1 ] && st=0
				mt_verdict $st "vsnap: mtctl vsnap list --json lists v1 ($(jq -c '[.vsnaps[] | {name, state, device, seq}]' $W/vsl.json))"
			else
				mt_fail "vsnap: mtctl vsnap list --json: $(cat $W/vsl.err)"
			fi
			run "vsnap: mtctl vsnap remove v1" ctl vsnap remove v1
			if ctl vsnap list --json >$W/vsl.json 2>$W/vsl.err; then
				st=1; [ "$(jq -r '[.vsnaps[]? | select(.name == "v1")] | length' $W/vsl.json)" = 0 ] && st=0
				mt_verdict $st "vsnap: v1 is gone from mtctl vsnap list --json ($(jq -c . $W/vsl.json))"
			else
				mt_fail "vsnap: mtctl vsnap list --json after remove: $(cat $W/vsl.err)"
			fi
			st=1; [ ! -e "$VDEV" ] && st=0
			mt_verdict $st "vsnap: $VDEV is gone after remove"
		else
			mt_fail "vsnap: mtctl vsnap create $E2E_A_WWID --at $TAG --name v1 --json: $(cat $W/vs.err)"
		fi
	else
		mt_fail "vsnap: vm-a applied no app tag within 180 s"
	fi
else
	mt_info "vsnap steps left out (E2E_VSNAP=0)"
fi

# ================================================================ group
phase workload-end
for s in vm-a vm-b; do
	if [ $s = vm-a ]; then pid=$WL_A; else pid=$WL_B; fi
	wait $pid
	st=$?
	mt_verdict $st "group: mtsend workload of $s exited $st: $(tail -n 3 $W/wl-$s.out | tr '\n' ' ')"
	if [ $st -ne 0 ] && [ -f $W/rec-$s.txt ]; then
		# The failure stays a FAIL; a restart with the same --record (which
		# continues to the same end) lets the rest of the scenario be checked.
		mt_info "group: restarting $s's workload with the same --record to go on with the scenario"
		wl $s "$(if [ $s = vm-a ]; then echo 7001; else echo 7002; fi)"
		wait $!
		st=$?
		mt_verdict $st "group: the restarted mtsend workload of $s exited $st: $(tail -n 3 $W/wl-$s.out | tr '\n' ' ')"
	fi
	[ -f $W/rec-$s.txt ] || { mt_fail "group: $s has no record $W/rec-$s.txt"; continue; }
	n=$(grep -c '^T ' $W/rec-$s.txt)
	bad=$(awk '$1 == "T" && $3 != "app"' $W/rec-$s.txt | wc -l)
	st=1; [ "$n" -eq $((COUNT / TAGN)) ] && [ "$bad" -eq 0 ] && st=0
	mt_verdict $st "group: the record of $s has $n app tags (expected $((COUNT / TAGN))), $(($(wc -l <$W/rec-$s.txt) - 1)) items"
done
[ -f $W/rec-vm-a.txt ] && [ -f $W/rec-vm-b.txt ] || { mt_fail "group: no records, the rest cannot be checked"; finish; }
for s in vm-a vm-b; do
	last=$(rec_last $W/rec-$s.txt)
	if mt_wait 180 applied_at_least $s "$last"; then
		mt_pass "group: $s applied everything up to its record's last seq $last"
	else
		mt_fail "group: $s applied seq $(applied $s) after 180 s, the record ends at $last"
	fi
done
ctl points --group g1 | sed 's/^/    /'
# target_of STREAM -> sd name
target_of() { if [ "$1" = vm-a ]; then echo $DA; else echo $DB; fi; }
rebuild() {  # rebuild STREAM (--tag NAME | --seq N) OUT
	mtsend rebuild --record $W/rec-$1.txt --disks 1 --disk-size "$E2E_GROUP_SIZE" --disk 0 "$2" "$3" --out "$4"
}
for s in vm-a vm-b; do
	d=$(target_of $s)
	rebuild $s --seq "$(rec_last $W/rec-$s.txt)" $W/end-$s.img >/dev/null
	blockdev --flushbufs /dev/$d
	run "group: /dev/$d ($s's target) equals the record's image at its last seq" cmp /dev/$d $W/end-$s.img
done
phase group
if ctl common-point --group g1 --json >$W/cp.json 2>$W/cp.err; then
	gid=$(jq -r .group_tag_id $W/cp.json)
	st=1; [ "$gid" = "g1-$((COUNT / TAGN))" ] && [ "$(jq -r '.members | length' $W/cp.json)" = 2 ] && st=0
	mt_verdict $st "group: mtctl common-point --group g1 is group tag $gid (expected g1-$((COUNT / TAGN)), the last both streams have): $(jq -c '[.members[] | {stream, name: .point.name, seq: .point.seq}]' $W/cp.json)"
	for s in vm-a vm-b; do
		eval "CP_$(echo $s | tr - _)=\$(jq -r --arg s $s '.members[] | select(.stream == \$s) | .point.name' $W/cp.json)"
		eval "name=\$CP_$(echo $s | tr - _)"
		pseq=$(jq -r --arg s $s '.members[] | select(.stream == $s) | .point.seq' $W/cp.json)
		rseq=$(rec_tag_seq $W/rec-$s.txt "$name")
		st=1; [ -n "$name" ] && [ "$rseq" = "$pseq" ] && st=0
		mt_verdict $st "group: $s's common point is tag '$name' at seq $pseq, in its record at seq ${rseq:-none}"
	done
	if mt-cs run rollback --dir "$CSD" --agent agent-1 --group g1 --stream vm-a --stream vm-b --json \
		>$W/rb.out 2>$W/rb.err; then
		mt_pass "group: mt-cs run rollback --group g1 (a job of the agent, run from the CS)"
		jq -c '.result.streams[] | {stream, seq, point}' $W/rb.out | sed 's/^/    /'
		for s in vm-a vm-b; do
			pseq=$(jq -r --arg s $s '.members[] | select(.stream == $s) | .point.seq' $W/cp.json)
			rbseq=$(jq -r --arg s $s '.result.streams[] | select(.stream == $s) | .seq' $W/rb.out)
			st=1; [ "$rbseq" = "$pseq" ] && st=0
			mt_verdict $st "group: the job's result reports $s rolled back to seq ${rbseq:-none} (its common point $pseq)"
			d=$(target_of $s)
			eval "name=\$CP_$(echo $s | tr - _)"
			if rebuild $s --tag "$name" $W/cp-$s.img >/dev/null 2>$W/rebuild.err; then
				blockdev --flushbufs /dev/$d
				run "group: after the rollback /dev/$d ($s's target) equals the record's image at $name" cmp /dev/$d $W/cp-$s.img
				st=1; cmp -s $W/cp-$s.img $W/end-$s.img || st=0
				mt_verdict $st "group: $s's image at $name differs from the one at its last seq (the rollback undid the writes after the common point)"
			else
				mt_fail "group: mtsend rebuild $s --tag $name: $(cat $W/rebuild.err)"
			fi
			rm -f $W/cp-$s.img $W/end-$s.img
		done
	else
		mt_fail "group: mt-cs run rollback --group g1 failed:"
		sed 's/^/    /' $W/rb.out $W/rb.err
	fi
else
	mt_fail "group: mtctl common-point --group g1 --json: $(cat $W/cp.err)"
fi

cs_job() { mt-cs jobs --dir "$CSD" --agent agent-1 --json | jq -e '[.jobs[] | select(.kind == "rollback" and .state == "succeeded")] | length == 1' >/dev/null; }
run "group: mt-cs jobs shows the rollback succeeded, as mtctl jobs does" cs_job
run "group: mtctl jobs lists the same job" sh -c "mtctl --config $CONF jobs --json | jq -e '.jobs[] | select(.id == \"$(jq -r .id $W/rb.out)\")' >/dev/null"

# ================================================================ replay
phase replay
if [ $capture_ok = 1 ]; then
	if send_sub fs replay --log-writes /dev/$LOG --disk 0 --record $W/rec-fs.txt >$W/replay.out 2>&1; then
		mt_pass "replay: mtsend replay --log-writes /dev/$LOG onto fs: $(tr '\n' ' ' <$W/replay.out)"
		last=$(rec_last $W/rec-fs.txt)
		if mt_wait 180 applied_at_least fs "$last"; then
			mt_pass "replay: fs applied everything up to seq $last"
		else
			mt_fail "replay: fs applied seq $(applied fs) after 180 s, the replay ends at $last"
		fi
		names=$(points fs | jq -r '[(.streams[0].points // [])[] | .name] | join(" ")')
		kinds=$(points fs | jq -r '[(.streams[0].points // [])[] | .kind] | unique | join(" ")')
		st=1; [ "$names" = "$MARKS" ] && [ "$kinds" = app ] && st=0
		mt_verdict $st "replay: fs's points are the capture's marks in order: '$names' (expected '$MARKS'), kind $kinds"
		for m in $MARKS; do
			if ctl export "$E2E_FS_WWID" --at "$m" --out $X/m.img >$W/export.out 2>&1; then
				if e2fsck -fn $X/m.img >$W/fsck.out 2>&1; then
					mt_pass "replay: e2fsck -fn passes on fs exported at mark $m: $(tail -n 1 $W/fsck.out)"
				else
					mt_fail "replay: e2fsck -fn on fs exported at mark $m: exit $?"
					sed 's/^/    /' $W/fsck.out | tail -n 30
				fi
				case $m in
					umount | dm-log-writes-end)
						run "replay: the export at mark $m equals the source disk /dev/$SRC byte for byte" cmp $X/m.img /dev/$SRC
						;;
				esac
			else
				mt_fail "replay: mtctl export $E2E_FS_WWID --at $m: $(tail -n 5 $W/export.out)"
			fi
			rm -f $X/m.img
		done
	else
		mt_fail "replay: mtsend replay --log-writes /dev/$LOG: $(tail -n 5 $W/replay.out)"
	fi
else
	mt_fail "replay: not run, the capture failed"
fi

# ================================================================ verify, stop
phase verify
for s in vm-a vm-b fs; do
	if ctl verify --stream $s --json >$W/verify.json 2>$W/verify.err; then
		st=1; [ "$(jq -r .ok $W/verify.json)" = true ] && st=0
		mt_verdict $st "verify: mtctl verify --stream $s: $(jq -c '{records, bytes, ok, problems}' $W/verify.json)"
	else
		mt_fail "verify: mtctl verify --stream $s: $(cat $W/verify.err)"
	fi
done
kill -TERM $CS 2>/dev/null
kill -TERM $AGENT
wait $AGENT
st=$?
mt_verdict $st "mt-agent exited $st on SIGTERM"
if mt_failed; then
	echo "mt-agent log (last 40 lines):"
	tail -n 40 $W/agent.log | sed 's/^/    /'
fi
phase ""
echo "phase total: $(mt_elapsed "$t_all") s"
finish
