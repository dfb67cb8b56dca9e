# shellcheck shell=sh disable=SC3043 # busybox ash: local
# powerloss.sh — guest side of the VM-tier power-loss test (issue 14), driven
# by tests/vm/powerloss-test. Every check is one "PASS ..." or "FAIL ..." line;
# the last line is "powerloss: N checks, M failed".
#
# Capture: one dm-log-writes device (pl-lw, source /dev/$SRC, log /dev/$LOG)
# carries both the retention volume (pl-ret, the first 96 MiB, ext4 made by
# `mtctl retention prepare`) and the stream's target (pl-tgt, the next 16
# MiB), so the log orders every write of both, and replaying it to a flush or
# FUA entry gives a state of retention and target together that a power loss
# may leave. mt-agent protects stream "pl" onto pl-tgt; `mtsend resync` from
# zeroes, then three `mtsend workload` rounds (a tag every 10 items) with one
# --record. After each round has exited (everything it sent acknowledged) the
# scenario logs a mark "ack-SEQ": every crash point after it must hold SEQ.
#
# Check: the log is replayed entry by entry onto /dev/$REPLAY; at each chosen
# crash point (a flush/FUA entry after the mark "ready", at most
# PL_MAX_POINTS (0: every one), spread evenly, always the last before each
# ack mark and the last of the log) it is copied to /dev/$COPY, pl-lw/pl-ret/pl-tgt are made
# again (linear, the same names and order, so the target keeps its identity),
# and: ext4 mounts, mt-agent starts and applies what is durable, its durable
# seq is at least the acknowledged one, the target equals `mtsend rebuild
# --seq DURABLE`, every point it lists exports equal to `mtsend rebuild
# --tag`, `mtctl verify` is clean, mt-agent stops on SIGTERM.
#
# Then three dm-flakey cuts (see "flakey" below): the window between a
# write and its flush lost as a volatile disk cache loses it.
#
# Environment (from powerloss-test): D_SRC_WWID, D_LOG_WWID, D_REPLAY_WWID,
# D_COPY_WWID, D_SCRATCH_WWID (ext4, for exports: mtctl writes them with
# O_DIRECT, which tmpfs refuses), PL_MAX_POINTS.

run() { mt_run "$@"; }
finish() {
	mt_summary powerloss
	exit
}
mt_need_env powerloss tests/vm/powerloss-test D_SRC_WWID D_LOG_WWID D_REPLAY_WWID \
	D_COPY_WWID D_SCRATCH_WWID PL_MAX_POINTS
mt_need_tools powerloss mt-agent mtctl mtsend dmsetup mkfs.ext4 jq log-writes-replay
W=/tmp/pl
mkdir -p $W
find_disk() { mt_need_disk powerloss "$@"; }
find_disk SRC "$D_SRC_WWID"
find_disk LOG "$D_LOG_WWID"
find_disk REPLAY "$D_REPLAY_WWID"
find_disk COPY "$D_COPY_WWID"
find_disk SCRATCH "$D_SCRATCH_WWID"
X=/mnt/scratch
mkdir -p $X /mnt/retention
mount -t ext4 /dev/$SCRATCH $X || { echo "FAIL powerloss: mount -t ext4 /dev/$SCRATCH $X"; exit 2; }
export DM_DISABLE_UDEV=1
RET_S=$((96 * 2048))
TGT_S=$((16 * 2048))
TGT_SIZE=16M

# stack TABLE: pl-lw from TABLE, pl-ret and pl-tgt on it, and the disks the
# agent sees: /dev/loop0 over pl-ret (the retention volume), /dev/loop1 over
# pl-tgt (the target). mt-agent takes no bare dm device as a disk; a loop
# device is one, with the identity "loop:" + its backing path, which stays
# the same whenever the stack is made again.
stack() {
	dmsetup create pl-lw --table "$1" &&
		dmsetup create pl-ret --table "0 $RET_S linear /dev/mapper/pl-lw 0" &&
		dmsetup create pl-tgt --table "0 $TGT_S linear /dev/mapper/pl-lw $RET_S" &&
		losetup /dev/loop0 /dev/mapper/pl-ret && losetup /dev/loop1 /dev/mapper/pl-tgt
}
unstack() {
	losetup -d /dev/loop1 && losetup -d /dev/loop0 &&
		dmsetup remove pl-tgt && dmsetup remove pl-ret && dmsetup remove pl-lw
}
mark() { run "capture: mark $1" dmsetup message pl-lw 0 mark "$1"; }

# ---------------------------------------------------------------- capture
ip link set lo up
sectors=$(cat /sys/block/$SRC/size)
run "setup: pl-lw = log-writes /dev/$SRC /dev/$LOG, pl-ret and pl-tgt on it" \
	stack "0 $sectors log-writes /dev/$SRC /dev/$LOG" || finish
echo "# powerloss fstab" >$W/fstab
run "setup: mtctl retention prepare /dev/loop0 (on pl-ret)" \
	mtctl --allow-non-scsi /dev/loop0 retention prepare /dev/loop0 --force --mount /mnt/retention \
	--fstab $W/fstab || finish
PORT=9443
CONF=$W/agent.toml
# TLS identity, credentials and the control socket live on the OS disk
# (here: tmpfs), not on the logged device: they survive every crash point.
cat >"$CONF" <<EOF
[agent]
log_level = "info"
[data]
listen = "127.0.0.1:$PORT"
tls_dir = "$W/tls"
credentials_dir = "$W/credentials"
[control]
socket = "$W/control.sock"
[retention]
dir = "/mnt/retention"
segment_size = "4MiB"
low_space_min = "8MiB"
[targets]
allow_non_scsi = ["loop:/dev/mapper/pl-tgt", "loop:/dev/mapper/pl-ret"]
EOF
ctl() { mtctl --config "$CONF" "$@"; }
if ctl pair add --stream pl --disk "0:/dev/loop1:src-pl" --json >$W/pair.json 2>$W/pair.err; then
	KEY=$(jq -r .credential_hex $W/pair.json)
	TGT_ID=$(jq -r '.pair.disks[0].target_id' $W/pair.json)
	mt_pass "setup: mtctl pair add --stream pl --disk 0:/dev/loop1 (identity $TGT_ID)"
else
	mt_fail "setup: mtctl pair add --stream pl: $(cat $W/pair.err)"
	finish
fi
daemon_up() { ctl status --json >$W/status.json 2>/dev/null && [ "$(jq -r .daemon_running $W/status.json)" = true ]; }
start_agent() {  # start_agent LOG: mt-agent in the background, pid in AGENT
	mt-agent --config "$CONF" --foreground >"$1" 2>&1 &
	AGENT=$!
	mt_wait 60 daemon_up
}
stop_agent() {
	kill -TERM $AGENT 2>/dev/null
	wait $AGENT
}
if start_agent $W/agent.log; then
	FP=$(jq -r .tls_fingerprint $W/status.json)
	mt_pass "setup: mt-agent is running, fingerprint $FP"
else
	mt_fail "setup: mt-agent did not come up within 60 s"
	tail -n 30 $W/agent.log | sed 's/^/    agent: /'
	finish
fi
send_sub() {  # send_sub SUB ARGS...
	local sub=$1
	shift
	mtsend "$sub" --to 127.0.0.1:$PORT --stream pl --key-hex "$KEY" --fingerprint "$FP" --retry-for 30 "$@"
}
pairs_field() { ctl pairs --json 2>/dev/null | jq -r ".pairs[0].$1 // 0"; }
rec_last() { awk 'NR > 1 && NF >= 2 { s = $2 } END { print s + 0 }' "$1"; }
mark ready || finish
truncate -s $TGT_SIZE $W/zero.img
run "capture: mtsend resync from zeroes" send_sub resync --source $W/zero.img --disk 0 --no-progress || finish
mark "ack-$(pairs_field durable_seq)" || finish
REC=$W/rec.txt
for round in 1 2 3; do
	if send_sub workload --disks 1 --disk-size $TGT_SIZE --count $((round * 20)) --rate 40 \
		--sizes 4k..64k --tag-every-items 10 --seed 7 --record $REC >$W/wl-$round.out 2>&1; then
		mt_pass "capture: workload round $round acknowledged up to seq $(rec_last $REC)"
	else
		mt_fail "capture: workload round $round: $(tail -n 3 $W/wl-$round.out | tr '\n' ' ')"
		finish
	fi
	mark "ack-$(rec_last $REC)" || finish
done
stop_agent
mt_verdict $? "capture: mt-agent exited on SIGTERM"
run "capture: umount /mnt/retention" umount /mnt/retention || finish
run "capture: the logged device stack removed" unstack || finish
LAST=$(rec_last $REC)

# ---------------------------------------------------------------- crash points
if ! log-writes-replay list /dev/$LOG >$W/list.txt 2>$W/list.err; then
	mt_fail "check: log-writes-replay list /dev/$LOG: $(cat $W/list.err)"
	finish
fi
# Crash points: flush entries after "ready"; the last one before each ack
# mark is always checked (with that mark's seq as the acknowledged one).
awk -v max="$PL_MAX_POINTS" '
	$1 == "mark" && $3 == "ready" { ready = 1; next }
	$1 == "mark" && $3 ~ /^ack-/ { if (n > 0) must[n] = 1; next }
	$1 == "flush" && ready { idx[++n] = $2 }
	END {
		if (n == 0) exit
		must[n] = 1
		step = max > 0 ? n / max : 1; if (step < 1) step = 1
		for (i = 1; i <= n; i++) {
			pick = must[i]
			if (!pick && int((i - 1) / step) != int(i / step)) pick = 1
			if (pick) print idx[i]
		}
		print "total " n > "/dev/stderr"
	}' $W/list.txt >$W/points.txt 2>$W/points.total
TOTAL=$(sed -n 's/^total //p' $W/points.total)
NPTS=$(wc -l <$W/points.txt)
st=1; [ "$NPTS" -gt 0 ] 2>/dev/null && st=0
mt_verdict $st "check: the capture has $(grep -c '^flush' $W/list.txt) flush/FUA entries, $TOTAL after 'ready'; $NPTS chosen"
[ "$st" -eq 0 ] || finish
# acked_at INDEX: the seq of the last ack mark before entry INDEX (0: none)
acked_at() {
	awk -v k="$1" '$1 == "mark" && $3 ~ /^ack-/ && $2 < k { a = substr($3, 5) } END { print a + 0 }' $W/list.txt
}
applied_caught_up() {
	local d a
	d=$(pairs_field durable_seq)
	a=$(pairs_field applied_seq)
	[ "$(pairs_field state)" != failed ] && [ "$d" = "$a" ]
}
rebuild() {  # rebuild (--seq N | --tag NAME) OUT
	mtsend rebuild --record $REC --disks 1 --disk-size $TGT_SIZE --disk 0 "$1" "$2" --out "$3"
}
from=0
checked=0
for k in $(cat $W/points.txt); do
	P="crash point $k"
	if ! log-writes-replay apply /dev/$LOG /dev/$REPLAY --from $from --to $k >$W/apply.err 2>&1; then
		mt_fail "$P: replay: $(cat $W/apply.err)"
		break
	fi
	from=$((k + 1))
	dd if=/dev/$REPLAY of=/dev/$COPY bs=1M conv=fsync 2>/dev/null || { mt_fail "$P: copy"; break; }
	sectors=$(cat /sys/block/$COPY/size)
	stack "0 $sectors linear /dev/$COPY 0" >$W/stack.err 2>&1 || { mt_fail "$P: dm stack: $(cat $W/stack.err)"; break; }
	checked=$((checked + 1))
	ACK=$(acked_at "$k")
	if ! mount -t ext4 /dev/loop0 /mnt/retention 2>$W/mount.err; then
		mt_fail "$P: the retention volume does not mount: $(cat $W/mount.err)"
		unstack
		continue
	fi
	if start_agent $W/agent-$k.log && mt_wait 120 applied_caught_up; then
		D=$(pairs_field durable_seq)
		st=1; [ "$D" -ge "$ACK" ] 2>/dev/null && st=0
		mt_verdict $st "$P: mt-agent starts and applies what is durable (seq $D); acknowledged before it: $ACK"
		stop_agent
		mt_verdict $? "$P: mt-agent exits on SIGTERM"
		# Offline from here (mtctl reads the catalog and the journals).
		if rebuild --seq "$D" $X/want.img >$W/rebuild.err 2>&1 &&
			cmp /dev/loop1 $X/want.img >$W/cmp.out 2>&1; then
			mt_pass "$P: the target equals the sender's record at seq $D"
		else
			mt_fail "$P: the target differs from the record at seq $D: $(cat $W/rebuild.err $W/cmp.out | tail -n 2)"
		fi
		names=$(ctl points --stream pl --json 2>/dev/null | jq -r '[(.streams[0].points // [])[] | .name] | join(" ")')
		bad=""
		n=0
		for name in $names; do
			n=$((n + 1))
			if ! ctl export "$TGT_ID" --at "$name" --out $X/got.img >$W/export.out 2>&1; then
				bad="$bad $name(export: $(tail -n 1 $W/export.out))"
			elif ! rebuild --tag "$name" $X/want.img >$W/rebuild.err 2>&1; then
				bad="$bad $name(rebuild: $(tail -n 1 $W/rebuild.err))"
			elif ! cmp -s $X/got.img $X/want.img; then
				bad="$bad $name(differs)"
			fi
			rm -f $X/got.img
		done
		st=1; [ -z "$bad" ] && st=0
		mt_verdict $st "$P: every point exports byte-exact ($n: ${names:-none})${bad:+; bad:$bad}"
		if ctl verify --stream pl --json >$W/verify.json 2>$W/verify.err; then
			st=1; [ "$(jq -r .ok $W/verify.json)" = true ] && st=0
			mt_verdict $st "$P: mtctl verify is clean"
		else
			mt_fail "$P: mtctl verify: $(cat $W/verify.err)"
		fi
	else
		mt_fail "$P: mt-agent did not start or apply within its time (state $(pairs_field state))"
		tail -n 20 $W/agent-$k.log | sed 's/^/    agent: /'
		kill -KILL $AGENT 2>/dev/null
		wait $AGENT 2>/dev/null
	fi
	rm -f $X/want.img
	umount /mnt/retention || mt_fail "$P: umount /mnt/retention"
	unstack || { mt_fail "$P: dm stack removal"; break; }
done
st=1; [ "$checked" -eq "$NPTS" ] && st=0
mt_verdict $st "check: $checked of $TOTAL crash points checked (the workload acknowledged up to seq $LAST)"

# ---------------------------------------------------------------- flakey
# The window between a write and its flush, as a disk with a volatile cache
# loses it: a fresh stack on /dev/$REPLAY (linear), the agent protecting the
# stream under a running workload; at a cut its bottom device is switched to
# dm-flakey drop_writes (every write from then on is lost, reported done),
# then mt-agent and the sender are killed, everything is unmounted and the
# stack made again, linear: the disk holds what was written before the cut.
# Whatever was acknowledged before the cut (the durable seq read just
# before) must be there, and the state must be consistent as above. Three
# cuts, each a new capture from zeroes.
fsectors=$(cat /sys/block/$REPLAY/size)
LINEAR="0 $fsectors linear /dev/$REPLAY 0"
DROP="0 $fsectors flakey /dev/$REPLAY 0 0 3600 1 drop_writes"
cut_cleanup() {
	umount /mnt/retention 2>/dev/null
	unstack >/dev/null 2>&1
}
cut_and_check() {  # cut_and_check N SECONDS: workload, cut after SECONDS
	local n=$1 wait=$2 wl d0 d
	C="flakey cut $n"
	dd if=/dev/zero of=/dev/$REPLAY bs=1M count=112 conv=fsync 2>/dev/null
	stack "$LINEAR" >$W/stack.err 2>&1 || { mt_fail "$C: dm stack: $(cat $W/stack.err)"; return 1; }
	rm -rf $W/credentials $W/tls
	echo "# powerloss fstab, cut $n" >$W/fstab-f$n
	mtctl --allow-non-scsi /dev/loop0 retention prepare /dev/loop0 --force --mount /mnt/retention \
		--fstab $W/fstab-f$n >$W/prep.out 2>&1 ||
		{ mt_fail "$C: retention prepare: $(tail -n 3 $W/prep.out | tr '\n' ' ')"; cut_cleanup; return 1; }
	ctl pair add --stream pl --disk "0:/dev/loop1:src-pl" --json >$W/pair.json 2>$W/pair.err ||
		{ mt_fail "$C: pair add: $(cat $W/pair.err)"; cut_cleanup; return 1; }
	KEY=$(jq -r .credential_hex $W/pair.json)
	start_agent $W/agent-f$n.log || { mt_fail "$C: mt-agent did not start"; cut_cleanup; return 1; }
	FP=$(jq -r .tls_fingerprint $W/status.json)
	send_sub resync --source $W/zero.img --disk 0 --no-progress >$W/fresync.out 2>&1 ||
		{ mt_fail "$C: resync: $(tail -n 2 $W/fresync.out)"; stop_agent; cut_cleanup; return 1; }
	rm -f $W/frec-$n.txt
	send_sub workload --disks 1 --disk-size $TGT_SIZE --count 2000 --rate 60 --sizes 4k..64k \
		--tag-every-items 10 --seed $((100 + n)) --record $W/frec-$n.txt >$W/fwl-$n.out 2>&1 &
	wl=$!
	sleep "$wait"
	d0=$(pairs_field durable_seq)
	dmsetup reload pl-lw --table "$DROP" && dmsetup resume pl-lw ||
		{ mt_fail "$C: switching to drop_writes"; kill -KILL $wl $AGENT; return 1; }
	sleep 1  # the agent goes on acknowledging: those writes are lost
	kill -KILL $AGENT $wl 2>/dev/null
	wait $AGENT $wl 2>/dev/null
	umount /mnt/retention 2>/dev/null
	unstack >$W/unstack.err 2>&1 || { mt_fail "$C: dm stack removal: $(cat $W/unstack.err)"; return 1; }
	echo 3 >/proc/sys/vm/drop_caches
	stack "$LINEAR" >$W/stack.err 2>&1 || { mt_fail "$C: dm stack again: $(cat $W/stack.err)"; return 1; }
	if ! mount -t ext4 /dev/loop0 /mnt/retention 2>$W/mount.err; then
		mt_fail "$C: the retention volume does not mount: $(cat $W/mount.err)"
		unstack
		return 1
	fi
	if start_agent $W/agent-f$n-after.log && mt_wait 120 applied_caught_up; then
		d=$(pairs_field durable_seq)
		st=1; [ "$d" -ge "$d0" ] 2>/dev/null && [ "$d0" -gt 0 ] && st=0
		mt_verdict $st "$C: mt-agent starts and applies what is durable (seq $d); acknowledged before the cut: $d0"
		mt_info "$C: the sender had recorded up to seq $(rec_last $W/frec-$n.txt): what came after seq $d was lost in the cut"
		stop_agent
		if mtsend rebuild --record $W/frec-$n.txt --disks 1 --disk-size $TGT_SIZE --disk 0 --seq "$d" \
			--out $X/want.img >$W/rebuild.err 2>&1 && cmp -s /dev/loop1 $X/want.img; then
			mt_pass "$C: the target equals the sender's record at seq $d"
		else
			mt_fail "$C: the target differs from the record at seq $d: $(tail -n 1 $W/rebuild.err)"
		fi
		if ctl verify --stream pl --json >$W/verify.json 2>$W/verify.err &&
			[ "$(jq -r .ok $W/verify.json)" = true ]; then
			mt_pass "$C: mtctl verify is clean"
		else
			mt_fail "$C: mtctl verify: $(cat $W/verify.err) $(jq -c . $W/verify.json 2>/dev/null | head -c 300)"
		fi
	else
		mt_fail "$C: mt-agent did not start or apply within its time"
		tail -n 20 $W/agent-f$n-after.log | sed 's/^/    agent: /'
		kill -KILL $AGENT 2>/dev/null
		wait $AGENT 2>/dev/null
	fi
	rm -f $X/want.img
	umount /mnt/retention
	unstack
}
cut_and_check 1 3
cut_and_check 2 5
cut_and_check 3 8
finish
