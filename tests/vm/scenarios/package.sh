# shellcheck shell=bash
# package.sh — guest side of the VM-tier package test of issue 12, driven by
# tests/vm/package-test. Runs under bash as mt-vm-scenario.service in a Debian
# 12 guest booted with systemd (run-vm --root-image). Every check is one
# "PASS ..." or "FAIL ..." line; each phase ends with "phase NAME: S s".
#
#  install   dpkg -i of mt-agent and mtsend (/root/pkgs): installed, files in
#            place, /var/lib/mt-agent 0700, the unit enabled and not started
#            (dh_installsystemd --no-start); `systemctl start` before the host
#            is prepared fails with exit status 2 and no restart
#            (RestartPreventExitStatus=2), StatusText says why.
#  prepare   `mt-prepare --retention /dev/<retention disk> --format`: the
#            volume mounted at /mnt/retention with an fstab entry, the
#            multipath configuration written, the marker; a second run
#            changes nothing.
#  start     `systemctl start mt-agent`: is-active, StatusText from the
#            agent's STATUS=, `mtctl status --json` sees the daemon.
#  multipath one disk on two paths (PKG_MP_WWID): multipathd, with the
#            configuration mt-prepare wrote, makes one map with two paths;
#            `mtctl disks --json` lists the disk once.
#  stream    `mtctl pair add` of stream p1 onto the target disk by WWID
#            (through the running agent); `mtsend resync` from zeroes; a
#            recorded `mtsend workload`; while it runs, kill -9 of the
#            service's MainPID: systemd restarts the agent (NRestarts 1, a new
#            MainPID, active again), the workload reconnects and ends with
#            status 0; everything in the record applied; the target equals
#            `mtsend rebuild` at the record's last seq (nothing acknowledged
#            lost); `mtctl verify` of the stream.
#  upgrade   dpkg -i of the same package with a higher version: the running
#            service restarted by the upgrade (new MainPID, active), the pair,
#            its applied seq and the retention files kept; the configuration
#            (a conffile) kept; the target still equals the record.
#  remove    dpkg -r mt-agent while it runs: the agent stopped cleanly (the
#            package's prerm), the programs and the unit gone; the
#            configuration, /var/lib/mt-agent and the retention volume kept.
#  purge     dpkg -P mt-agent: /etc/mt-agent and /var/lib/mt-agent gone, the
#            retention volume's files unchanged (same checksums as after the
#            removal), still mounted.
#  rpm       rpm -i --nodeps of the mt-agent RPM in the same guest: its files
#            where the spec puts them, `rpm -V` clean, the unit known to
#            systemd ('%systemd_post' scriptlet: preset); rpm -e: files gone,
#            the retention volume untouched.
#
# Environment (from package-test): PKG_VERSION, PKG_UPGRADE_VERSION,
# PKG_RET_WWID, PKG_TGT_WWID, PKG_TGT_SIZE, PKG_MP_WWID. Optional: PKG_COUNT (workload
# items, default 400), PKG_RATE (writes/s, default 40).
# Exit 0 only when every check passed; the last line is "package: N checks, M failed".

W=/root/work
P=/root/pkgs
mkdir -p $W
COUNT=${PKG_COUNT:-400}
RATE=${PKG_RATE:-40}
t_all=$(mt_now_ms)
cur_phase="" t_phase=0

phase() {
	[ -z "$cur_phase" ] || echo "phase $cur_phase: $(mt_elapsed "$t_phase") s"
	cur_phase=$1
	t_phase=$(mt_now_ms)
}
finish() {
	phase ""
	echo "phase total: $(mt_elapsed "$t_all") s"
	mt_summary package
	exit $?
}
# run DESCRIPTION CMD...: a check that CMD exits 0; its output is shown on failure
run() { mt_run "$@"; }
prop() { systemctl show -p "$1" --value mt-agent.service; }
journal_tail() { journalctl -u mt-agent.service --no-pager -n "${1:-20}" -o cat 2>/dev/null | sed 's/^/    journal: /'; }
# diagnose: what an operator would look at when the stream does not move
diagnose() {
	mtctl status 2>&1 | sed 's/^/    status: /'
	mtctl pairs 2>&1 | sed 's/^/    pairs: /'
	journal_tail 30
}
# retention_sums: checksums of every file on the retention volume (not the
# catalog's -wal/-shm, which SQLite may rewrite on open)
retention_sums() { (cd /mnt/retention && find . -type f ! -name '*-shm' | LC_ALL=C sort | xargs -r sha256sum); }

mt_info "guest: $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r), PID 1 $(cat /proc/1/comm), system $(systemctl is-system-running)"
RET=$(mt_find_wwid "$PKG_RET_WWID") || { mt_fail "no retention disk with WWID $PKG_RET_WWID"; finish; }
TGT=$(mt_find_wwid "$PKG_TGT_WWID") || { mt_fail "no target disk with WWID $PKG_TGT_WWID"; finish; }
mt_info "retention disk /dev/$RET, target /dev/$TGT"

# ================================================================ install
phase install
run "install: dpkg -i mt-agent.deb mtsend.deb" dpkg -i $P/mt-agent.deb $P/mtsend.deb || finish
st=1
v=$(dpkg-query -W -f '${Version} ${db:Status-Abbrev}' mt-agent 2>/dev/null)
[ "$v" = "$PKG_VERSION ii " ] && st=0
mt_verdict $st "install: dpkg-query says mt-agent '$v' (expected '$PKG_VERSION ii ')"
missing=""
for f in /usr/sbin/mt-agent /usr/sbin/mtctl /usr/sbin/mt-prepare /usr/bin/mtsend /etc/mt-agent/agent.toml \
	/lib/systemd/system/mt-agent.service /usr/share/man/man8/mt-agent.8.gz; do
	[ -e "$f" ] || missing="$missing $f"
done
st=1; [ -z "$missing" ] && st=0
mt_verdict $st "install: programs, configuration, unit and man page in place${missing:+ (missing:$missing)}"
mode=$(stat -c %a /var/lib/mt-agent 2>/dev/null)
st=1; [ "$mode" = 700 ] && st=0
mt_verdict $st "install: /var/lib/mt-agent has mode ${mode:-missing} (expected 700)"
en=$(systemctl is-enabled mt-agent.service 2>&1) act=$(systemctl is-active mt-agent.service 2>&1)
st=1; [ "$en" = enabled ] && [ "$act" = inactive ] && st=0
mt_verdict $st "install: mt-agent.service is $en and $act (enabled, not started at install)"

# Not prepared yet: no retention volume mounted.
systemctl start mt-agent.service >$W/start0.out 2>&1
st0=$?
sleep 1
code=$(prop ExecMainStatus) nr=$(prop NRestarts) text=$(prop StatusText) act=$(systemctl is-active mt-agent.service)
st=1; [ $st0 -ne 0 ] && [ "$code" = 2 ] && [ "$nr" = 0 ] && [ "$act" = failed ] && st=0
mt_verdict $st "install: systemctl start before mt-prepare fails (status $st0): main process exit $code, NRestarts $nr, $act (expected exit 2, no restart, failed); StatusText '$text'"
[ "$st" = 0 ] || journal_tail 10
systemctl reset-failed mt-agent.service

# ================================================================ prepare
phase prepare
if mt-prepare --retention /dev/$RET --format >$W/prepare.out 2>&1; then
	mt_pass "prepare: mt-prepare --retention /dev/$RET --format: $(tail -n 1 $W/prepare.out)"
else
	mt_fail "prepare: mt-prepare --retention /dev/$RET --format: exit $?"
fi
sed 's/^/    /' $W/prepare.out
st=1; mountpoint -q /mnt/retention && [ "$(findmnt -n -o SOURCE /mnt/retention)" = /dev/$RET ] &&
	grep -q '[[:space:]]/mnt/retention[[:space:]]' /etc/fstab && st=0
mt_verdict $st "prepare: /dev/$RET mounted at /mnt/retention ($(findmnt -n -o SOURCE,FSTYPE /mnt/retention | tr -s ' ')) with an fstab entry ($(grep '/mnt/retention' /etc/fstab | tr -s ' \t' ' '))"
st=1; [ -f /etc/multipath/conf.d/mt-agent.conf ] && grep -q 'find_multipaths no' /etc/multipath/conf.d/mt-agent.conf &&
	[ -f /var/lib/mt-agent/prepared ] && st=0
mt_verdict $st "prepare: /etc/multipath/conf.d/mt-agent.conf and the marker /var/lib/mt-agent/prepared written"
out=$(mt-prepare --retention /dev/$RET --format 2>&1)
st=$?
case "$out" in *"nothing to change"*) ;; *) st=1 ;; esac
mt_verdict $st "prepare: a second run changes nothing: $(printf '%s\n' "$out" | tail -n 1)"
[ $st = 0 ] || printf '%s\n' "$out" | sed 's/^/    /'

# ================================================================ start
phase start
run "start: systemctl start mt-agent (returns once the agent sent READY=1)" systemctl start mt-agent.service || {
	journal_tail 30
	finish
}
act=$(systemctl is-active mt-agent.service) text=$(prop StatusText) pid1=$(prop MainPID)
st=1; [ "$act" = active ] && [ -n "$text" ] && [ "$pid1" -gt 0 ] && st=0
mt_verdict $st "start: is-active $act, MainPID $pid1, StatusText '$text'"
if mtctl status --json >$W/status.json 2>$W/status.err && [ "$(jq -r .daemon_running $W/status.json)" = true ]; then
	FP=$(jq -r .tls_fingerprint $W/status.json)
	mt_pass "start: mtctl status --json sees the daemon running, fingerprint $FP"
else
	mt_fail "start: mtctl status --json: $(cat $W/status.err)"
	finish
fi

# ================================================================ multipath
phase multipath
# One disk on two paths (the same image as two SCSI devices with one WWN):
# with the configuration mt-prepare wrote (find_multipaths no) multipathd
# makes one map named by the WWID, and mtctl lists one disk.
MPW=3${PKG_MP_WWID#naa.}
mpaths=$(for d in $(mt_sd_disks); do [ "$(mt_wwid "$d")" = "$PKG_MP_WWID" ] && echo "$d"; done | tr '\n' ' ')
mt_info "multipath: paths of $PKG_MP_WWID: $mpaths; multipathd $(systemctl is-active multipathd.service)"
map_two_paths() { [ "$(dmsetup table "$MPW" 2>/dev/null | awk '$3 == "multipath"' | grep -o '[0-9]*:[0-9]* [0-9]*' | wc -l)" -ge 2 ]; }
if mt_wait 60 map_two_paths; then
	mt_pass "multipath: one map $MPW with two paths: $(dmsetup table "$MPW")"
else
	mt_fail "multipath: no map $MPW with two paths within 60 s: $(dmsetup table "$MPW" 2>&1); maps: $(dmsetup ls --target multipath 2>&1 | tr '\n' ' ')"
	multipath -ll 2>&1 | sed 's/^/    /'
fi
nmaps=$(dmsetup ls --target multipath 2>/dev/null | grep -c "^$MPW")
st=1; [ "$nmaps" = 1 ] && st=0
mt_verdict $st "multipath: $nmaps multipath map(s) for the WWID (expected 1)"
if mtctl disks --json >$W/disks.json 2>$W/disks.err; then
	n=$(jq --arg w "$PKG_MP_WWID" '[.disks[] | select(.wwid == $w)] | length' $W/disks.json)
	st=1; [ "$n" = 1 ] && st=0
	mt_verdict $st "multipath: mtctl disks --json lists the two-path disk once: $(jq -c --arg w "$PKG_MP_WWID" '[.disks[] | select(.wwid == $w) | {name, wwid, multipath_map, role}]' $W/disks.json)"
else
	mt_fail "multipath: mtctl disks --json: $(cat $W/disks.err)"
fi
mtctl disks 2>&1 | sed 's/^/    /'

# ================================================================ stream
phase stream
if mtctl pair add --stream p1 --disk "0:$PKG_TGT_WWID:src-sda" --json >$W/pair.json 2>$W/pair.err; then
	KEY=$(jq -r .credential_hex $W/pair.json)
	mt_pass "stream: mtctl pair add --stream p1 --disk 0:$PKG_TGT_WWID (through the running agent)"
else
	mt_fail "stream: mtctl pair add --stream p1 --disk 0:$PKG_TGT_WWID: $(cat $W/pair.err)"
	journal_tail 20
	finish
fi
send() {  # send SUB ARGS...
	local sub=$1
	shift
	mtsend "$sub" --to 127.0.0.1:9443 --stream p1 --key-hex "$KEY" --fingerprint "$FP" --retry-for 60 "$@"
}
points() { mtctl points --stream p1 --json 2>/dev/null; }
applied() { points | jq -r '.streams[0].latest_seq // 0' 2>/dev/null || echo 0; }
applied_at_least() { [ "$(applied)" -ge "$1" ] 2>/dev/null; }
rec_last() { awk 'NR > 1 && NF >= 2 { s = $2 } END { print s + 0 }' "$1"; }
truncate -s "$PKG_TGT_SIZE" $W/zero.img
run "stream: mtsend resync p1 from zeroes" send resync --source $W/zero.img --disk 0 --no-progress
send workload --disks 1 --disk-size "$PKG_TGT_SIZE" --count "$COUNT" --rate "$RATE" --sizes 4k..64k \
	--overlap 0.3 --tag-every-items 100 --seed 4242 --window 4194304 --record $W/rec.txt >$W/wl.out 2>&1 &
WL=$!
mt_info "stream: workload started (pid $WL): $COUNT items at $RATE writes/s, sizes 4k..64k, an app tag every 100 items"
if mt_wait 60 applied_at_least 80; then
	s_kill=$(applied)
	kill -9 "$pid1"
	mt_info "stream: kill -9 of mt-agent's MainPID $pid1 with applied seq $s_kill, workload $(kill -0 $WL 2>/dev/null && echo running || echo ended)"
	restarted() {
		[ "$(prop NRestarts)" -ge 1 ] && [ "$(systemctl is-active mt-agent.service)" = active ] &&
			[ "$(prop MainPID)" != "$pid1" ] && [ "$(prop MainPID)" -gt 0 ]
	}
	if mt_wait 90 restarted; then
		pid2=$(prop MainPID)
		mt_pass "stream: systemd restarted mt-agent after kill -9: NRestarts $(prop NRestarts), MainPID $pid1 -> $pid2, $(systemctl is-active mt-agent.service), StatusText '$(prop StatusText)'"
	else
		mt_fail "stream: mt-agent not restarted within 90 s of kill -9: NRestarts $(prop NRestarts), MainPID $(prop MainPID), $(systemctl is-active mt-agent.service)"
		journal_tail 20
	fi
else
	mt_fail "stream: p1 applied seq $(applied) after 60 s, expected 80 before the kill"
	diagnose
fi
wait $WL
st=$?
mt_verdict $st "stream: mtsend workload exited $st: $(tail -n 2 $W/wl.out | tr '\n' ' ')"
last=$(rec_last $W/rec.txt 2>/dev/null || echo 0)
if mt_wait 120 applied_at_least "$last"; then
	mt_pass "stream: p1 applied everything up to the record's last seq $last"
else
	mt_fail "stream: p1 applied seq $(applied) after 120 s, the record ends at $last"
	diagnose
fi
mtsend rebuild --record $W/rec.txt --disks 1 --disk-size "$PKG_TGT_SIZE" --disk 0 --seq "$last" --out $W/end.img >/dev/null 2>$W/rebuild.err ||
	mt_fail "stream: mtsend rebuild: $(cat $W/rebuild.err)"
blockdev --flushbufs /dev/$TGT
run "stream: /dev/$TGT equals mtsend rebuild at seq $last (nothing acknowledged was lost across kill -9)" cmp /dev/$TGT $W/end.img
if mtctl verify --stream p1 --json >$W/verify.json 2>$W/verify.err; then
	st=1; [ "$(jq -r .ok $W/verify.json)" = true ] && st=0
	mt_verdict $st "stream: mtctl verify --stream p1: $(jq -c '{records, bytes, ok}' $W/verify.json)"
else
	mt_fail "stream: mtctl verify --stream p1: $(cat $W/verify.err)"
fi

# ================================================================ upgrade
phase upgrade
seq_before=$(applied) pid_before=$(prop MainPID)
echo "# vm package test: an operator's edit" >>/etc/mt-agent/agent.toml
sum_conf=$(sha256sum </etc/mt-agent/agent.toml)
run "upgrade: dpkg -i mt-agent $PKG_UPGRADE_VERSION (the same build repacked with a higher version)" \
	dpkg --force-confold -i $P/mt-agent-upgrade.deb
v=$(dpkg-query -W -f '${Version}' mt-agent)
st=1; [ "$v" = "$PKG_UPGRADE_VERSION" ] && st=0
mt_verdict $st "upgrade: dpkg-query says mt-agent $v"
up() { [ "$(systemctl is-active mt-agent.service)" = active ] && [ "$(prop MainPID)" -gt 0 ]; }
mt_wait 60 up
pid_after=$(prop MainPID)
st=1; up && [ "$pid_after" != "$pid_before" ] && st=0
mt_verdict $st "upgrade: the service was restarted by the upgrade and is $(systemctl is-active mt-agent.service) (MainPID $pid_before -> $pid_after)"
[ $st = 0 ] || diagnose
st=1; [ "$(sha256sum </etc/mt-agent/agent.toml)" = "$sum_conf" ] && st=0
mt_verdict $st "upgrade: the edited /etc/mt-agent/agent.toml is kept"
mt_wait 30 applied_at_least "$seq_before"
mtctl pairs --json >$W/pairs.json 2>&1
n=$(jq -r '[.pairs[]? | select(.name == "p1")] | length' $W/pairs.json)
pstate=$(jq -r '[.pairs[]? | select(.name == "p1") | .state] | join(",")' $W/pairs.json)
seq_after=$(applied)
st=1; [ "$n" = 1 ] && [ "$pstate" = protected ] && [ "$seq_after" = "$seq_before" ] && st=0
mt_verdict $st "upgrade: pair p1 kept (listed $n time(s), state $pstate), applied seq $seq_before -> $seq_after"
blockdev --flushbufs /dev/$TGT
run "upgrade: /dev/$TGT still equals the record at seq $last" cmp /dev/$TGT $W/end.img
if mtctl verify --stream p1 --json >$W/verify.json 2>$W/verify.err && [ "$(jq -r .ok $W/verify.json)" = true ]; then
	mt_pass "upgrade: the retention of p1 verifies: $(jq -c '{records, bytes, ok}' $W/verify.json)"
else
	mt_fail "upgrade: mtctl verify --stream p1: $(cat $W/verify.err) $(jq -c . $W/verify.json 2>/dev/null)"
fi

# ================================================================ remove
phase remove
agent_procs() { for c in /proc/[0-9]*/comm; do [ "$(cat "$c" 2>/dev/null)" = mt-agent ] && echo "${c%/comm}"; done; }
pid_rm=$(prop MainPID)
run "remove: dpkg -r mt-agent (the agent running, MainPID $pid_rm)" dpkg -r mt-agent
procs=$(agent_procs | tr '\n' ' ')
stopped_logged() { journalctl --no-pager -o cat _PID="$pid_rm" 2>/dev/null | grep -q '^mt-agent stopped'; }
mt_wait 10 stopped_logged
stopped=$(journalctl --no-pager -o cat _PID="$pid_rm" 2>/dev/null | grep -c '^mt-agent stopped')
st=1; [ -z "$procs" ] && [ "$stopped" -ge 1 ] && st=0
mt_verdict $st "remove: dpkg -r stopped the agent cleanly (no mt-agent process${procs:+: $procs}; its journal says 'mt-agent stopped' $stopped time(s))"
st=1; [ ! -e /usr/sbin/mt-agent ] && [ ! -e /usr/sbin/mtctl ] && [ ! -e /lib/systemd/system/mt-agent.service ] && st=0
mt_verdict $st "remove: /usr/sbin/mt-agent, mtctl and the unit are gone"
st=1; [ -f /etc/mt-agent/agent.toml ] && [ -d /var/lib/mt-agent/tls ] && [ -f /var/lib/mt-agent/prepared ] && st=0
mt_verdict $st "remove: /etc/mt-agent/agent.toml and /var/lib/mt-agent ($(ls /var/lib/mt-agent | tr '\n' ' ')) kept"
sums_before=$(retention_sums)
st=1; mountpoint -q /mnt/retention && [ -n "$sums_before" ] && [ -d /mnt/retention/streams ] && st=0
mt_verdict $st "remove: the retention volume is still mounted with its $(printf '%s\n' "$sums_before" | grep -c .) files"

# ================================================================ purge
phase purge
run "purge: dpkg -P mt-agent" dpkg -P mt-agent
st=1; [ ! -e /etc/mt-agent ] && [ ! -e /var/lib/mt-agent ] && st=0
mt_verdict $st "purge: /etc/mt-agent and /var/lib/mt-agent are gone"
st=1; [ "$(dpkg-query -W -f '${db:Status-Abbrev}' mt-agent 2>/dev/null)" != "ii " ] && st=0
mt_verdict $st "purge: dpkg no longer lists mt-agent as installed"
st=1; mountpoint -q /mnt/retention && [ "$(retention_sums)" = "$sums_before" ] && st=0
mt_verdict $st "purge: the retention volume is still mounted and its files unchanged (the operator's data)"

# ================================================================ rpm
phase rpm
run "rpm: rpm -i --nodeps mt-agent.rpm (scriptlets run)" rpm -i --nodeps $P/mt-agent.rpm
v=$(rpm -q mt-agent 2>&1)
mt_check "rpm: rpm -q mt-agent: $v" rpm -q mt-agent
missing=""
for f in $(rpm -ql mt-agent); do [ -e "$f" ] || missing="$missing $f"; done
st=1; [ -z "$missing" ] && [ -x /usr/sbin/mt-agent ] && [ -f /etc/mt-agent/agent.toml ] && st=0
mt_verdict $st "rpm: all $(rpm -ql mt-agent | wc -l) files of the package are there${missing:+ (missing:$missing)}"
# --nodeps: the guest's rpm database has none of the libraries (they are
# Debian packages); the files are what is verified.
run "rpm: rpm -V --nodeps mt-agent (sizes, digests, modes of the installed files)" rpm -V --nodeps mt-agent
unit=$(rpm -ql mt-agent | grep 'mt-agent.service$')
st=1; [ -n "$unit" ] && systemctl cat mt-agent.service >/dev/null 2>&1 && st=0
mt_verdict $st "rpm: systemd knows the unit $unit ($(systemctl is-enabled mt-agent.service 2>&1))"
run "rpm: /usr/sbin/mt-agent --version runs" /usr/sbin/mt-agent --version
run "rpm: rpm -e --nodeps mt-agent" rpm -e --nodeps mt-agent
st=1; [ ! -e /usr/sbin/mt-agent ] && [ ! -e "$unit" ] && st=0
mt_verdict $st "rpm: the programs and the unit are gone after rpm -e"
st=1; mountpoint -q /mnt/retention && [ "$(retention_sums)" = "$sums_before" ] && st=0
mt_verdict $st "rpm: the retention volume is untouched"

finish
