#!/usr/bin/env bash
# kernel-vm.sh: run one command as root inside a throw-away QEMU guest that boots a stock
# Debian kernel with everything kmesh-ipsec needs for real IPsec: ESP (IPv4 + IPv6), AES-GCM
# with a default RNG, xfrm_user, veth, bridge, clsact/cls_bpf, bpffs.
#
# The guest's root filesystem is this machine's "/" shared read-only over 9p with a tmpfs
# overlay on top, so node, npm, ip, tc and the checkout are at the same paths, and nothing the
# guest writes reaches the host (except under --out DIR). The command runs in the current
# directory; its stdout and stderr stream to this script's stdout; its exit status is ours.
#
# Usage:
#   vm/kernel-vm.sh [options] -- COMMAND [ARG...]
#   vm/kernel-vm.sh --prepare        install host packages and build the boot image
# Options:
#   --out DIR      share DIR read-write at the same path in the guest (created if missing)
#   --env NAME[=V] pass an environment variable to the command (repeatable); PATH, HOME,
#                  LANG, CI, NODE_OPTIONS, FORCE_COLOR and NO_COLOR pass by default, and
#                  KMESH_IN_VM=1 is always set
#   --mem MB       guest memory (default 2048)       --cpus N   vCPUs (default 2)
#   --timeout S    kill the guest after S seconds (default 900)
#   --rebuild      rebuild the boot image even if a cached one matches
#   -q, --quiet    no harness progress lines on stderr
# Environment: KMESH_VM_CACHE (default /var/cache/kmesh-ipsec-vm) holds the kernel, the
#   initramfs and a stamp; KMESH_VM_KERNEL_PKG picks the Debian kernel package (default: what
#   linux-image-amd64 depends on).
# Exit status: the command's; 124 when the timeout fired; 125 when the guest could not boot or
#   could not report a status (the tail of the kernel console is printed then).
#
# Design notes (more in test/vm/README.md):
# - Software emulation only (-accel tcg): nested KVM is not available on our CI machines.
# - ESP's IV generator (seqiv/echainiv) needs a default RNG: drbg + jitterentropy_rng are
#   loaded explicitly, otherwise every AEAD state add fails ("Kernel was unable to initialize
#   cryptographic operations").
# - Two serial ports: ttyS0 is the kernel console (kept in a log file, shown on failure);
#   ttyS1 carries only the command's output, raw, so host-side logs stay readable.
# - A small read-write 9p "control" share carries the command in and the exit status out.
set -euo pipefail

CACHE=${KMESH_VM_CACHE:-/var/cache/kmesh-ipsec-vm}
MEM=2048 CPUS=2 TIMEOUT=900 OUT="" PREPARE_ONLY=0 REBUILD=0 QUIET=0
PASS_ENV=(PATH HOME LANG CI NODE_OPTIONS FORCE_COLOR NO_COLOR)
EXTRA_ENV=()

say() { [ "$QUIET" = 1 ] || echo "kernel-vm: $*" >&2; }
die() { echo "kernel-vm: $*" >&2; exit 125; }

while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$(realpath -m -- "$2"); shift 2;;
    --env) EXTRA_ENV+=("$2"); shift 2;;
    --mem) MEM=$2; shift 2;;
    --cpus) CPUS=$2; shift 2;;
    --timeout) TIMEOUT=$2; shift 2;;
    --prepare) PREPARE_ONLY=1; shift;;
    --rebuild) REBUILD=1; shift;;
    -q|--quiet) QUIET=1; shift;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0;;
    --) shift; break;;
    -*) echo "kernel-vm: unknown option $1 (see --help)" >&2; exit 2;;
    *) break;;
  esac
done
[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and exports / over 9p)"

# Modules loaded at boot, in this order (their dependencies are resolved and loaded first).
PRELOAD="virtio_pci 9pnet_virtio 9p overlay
  ctr gcm ghash_generic drbg jitterentropy_rng seqiv echainiv authenc cryptd
  xfrm_user esp4 esp6 xfrm4_tunnel xfrm6_tunnel
  veth dummy bridge sch_ingress cls_bpf act_bpf"
# Directories whose modules are shipped too (loadable on demand with modprobe in the guest).
SHIP_DIRS="crypto arch/x86/crypto net/xfrm net/ipv4 net/ipv6 net/sched net/bridge net/llc
  net/802 net/9p fs/9p fs/overlayfs fs/netfs fs/fscache drivers/virtio"
SHIP_FILES="drivers/net/veth.ko drivers/net/dummy.ko"

# The guest's /init (busybox ash). It must not use anything from the host root before the
# overlay is mounted.
IFS= read -r -d '' GUEST_INIT <<'EOF' || true
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo /bin/modprobe > /proc/sys/kernel/modprobe
while read -r m; do
  insmod "/lib/modules/$(uname -r)/$m" 2>/dev/null || echo "init: insmod $m failed" > /dev/kmsg
done < /preload.txt
fail() { echo "kernel-vm guest: $*" >&2; poweroff -f; }
mkdir -p /lower /upper /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower \
  || fail "cannot mount the host root over 9p"
mount -t tmpfs -o mode=0755,size=70% upper /upper
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot \
  || fail "cannot mount the overlay root"
for d in proc sys dev; do mount --move /$d /newroot/$d; done
mount -t tmpfs -o mode=0755 run /newroot/run
# /tmp stays the overlay's: a checkout under the host's /tmp (CI clones there) must be visible.
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 shm /newroot/dev/shm
mount -t bpf bpf /newroot/sys/fs/bpf
mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup 2>/dev/null
# (/proc, /sys and /dev now live under /newroot only.)
# The guest kernel's modules replace the host's at the same path, so modprobe works inside.
mkdir -p "/newroot/lib/modules/$(uname -r)"
mount --bind "/lib/modules/$(uname -r)" "/newroot/lib/modules/$(uname -r)"
ctl=/newroot/run/kernel-vm
mkdir -p $ctl
mount -t 9p -o trans=virtio,version=9p2000.L,rw kvmctl $ctl || fail "cannot mount the control share"
if [ -s $ctl/out-dir ]; then
  o=/newroot$(cat $ctl/out-dir)
  mkdir -p "$o" && mount -t 9p -o trans=virtio,version=9p2000.L,rw kvmout "$o" || fail "cannot mount --out"
fi
hostname kernel-vm
ip link set lo up
cut -d' ' -f1 /newroot/proc/uptime > $ctl/boot-seconds
stty -F /newroot/dev/ttyS1 raw -echo 2>/dev/null
# The command's output goes through a pipe (not a tty) to the second serial port; the pipe's
# last close on ttyS1 waits until everything has been transmitted.
{ chroot /newroot /bin/bash /run/kernel-vm/cmd.sh < /dev/null; echo $? > $ctl/rc; } 2>&1 | cat > /newroot/dev/ttyS1
cut -d' ' -f1 /newroot/proc/uptime > $ctl/end-seconds
sync
umount $ctl 2>/dev/null
poweroff -f
EOF

recipe_stamp() {
  printf '%s\n%s\n%s\n%s\n%s\n' "v1" "$PRELOAD" "$SHIP_DIRS" "$SHIP_FILES" "$GUEST_INIT" | sha256sum | cut -c1-16
}

install_host_packages() {
  local need=()
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
  command -v cpio >/dev/null || need+=(cpio)
  command -v depmod >/dev/null && command -v modprobe >/dev/null || need+=(kmod)
  [ ${#need[@]} -eq 0 ] && return 0
  say "installing ${need[*]}"
  apt-get update -qq >/dev/null 2>&1 || say "apt-get update failed; trying the cached lists"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
}

build_image() {
  local stamp=$1 work kpkg kver mods
  work=$(mktemp -d /tmp/kmesh-vm-build.XXXXXX)
  BUILD_WORK=$work
  trap 'rm -rf "$BUILD_WORK"' EXIT
  find_kernel_pkg() {
    apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
  }
  kpkg=${KMESH_VM_KERNEL_PKG:-$(find_kernel_pkg)}
  # A machine that already had every package may never have fetched the package lists.
  if [ -z "$kpkg" ]; then apt-get update -qq >/dev/null 2>&1 || true; kpkg=$(find_kernel_pkg); fi
  [ -n "$kpkg" ] || die "cannot find the Debian kernel package (apt lists missing? try apt-get update)"
  say "downloading $kpkg"
  (cd "$work" && apt-get download -qq "$kpkg" >/dev/null 2>&1) \
    || cp /var/cache/apt/archives/"$kpkg"_*.deb "$work"/ 2>/dev/null \
    || die "apt-get download $kpkg failed"
  dpkg -x "$work"/"$kpkg"_*.deb "$work/pkg"
  kver=$(ls "$work/pkg/lib/modules")
  [ -f "$work/pkg/boot/vmlinuz-$kver" ] || die "no vmlinuz in $kpkg"
  depmod -b "$work/pkg" "$kver"
  mods="$work/pkg/lib/modules/$kver"

  local root="$work/initramfs"
  mkdir -p "$root"/{bin,dev,proc,sys,lib/modules/"$kver"}
  cp /bin/busybox "$root/bin/busybox"
  printf '%s\n' "$GUEST_INIT" > "$root/init"
  chmod 0755 "$root/init"

  # Everything to ship = shipped dirs/files + preload list, each with its dependencies.
  local wanted="$work/wanted.txt"
  {
    for d in $SHIP_DIRS; do
      [ -d "$mods/kernel/$d" ] && find "$mods/kernel/$d" -name '*.ko*' -not -path '*/netfilter/*'
    done
    for f in $SHIP_FILES; do echo "$mods/kernel/$f"; done
  } | while read -r ko; do
    # A module's own file plus whatever it depends on (by name: modprobe wants names).
    echo "$ko"
    m=$(basename "$ko"); m=${m%%.ko*}
    { modprobe -C /dev/null -d "$work/pkg" -S "$kver" --show-depends "$m" 2>/dev/null || true; } \
      | awk '$1=="insmod"{print $2}'
  done > "$wanted"
  : > "$root/preload.txt"
  local m
  for m in $PRELOAD; do
    local deps
    deps=$(modprobe -C /dev/null -d "$work/pkg" -S "$kver" --show-depends "$m" 2>/dev/null) \
      || die "module $m not found in $kpkg"
    # "builtin X" lines need nothing; insmod lines are dependencies first.
    printf '%s\n' "$deps" | awk '$1=="insmod"{print $2}' | tee -a "$wanted" \
      | sed "s#^$mods/##" >> "$root/preload.txt"
  done
  awk '!seen[$0]++' "$root/preload.txt" > "$work/p" && mv "$work/p" "$root/preload.txt"
  sort -u "$wanted" | while read -r ko; do
    local rel=${ko#"$mods/"}
    mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
    cp "$ko" "$root/lib/modules/$kver/$rel"
  done
  cp "$mods"/modules.order "$mods"/modules.builtin* "$root/lib/modules/$kver/" 2>/dev/null || true
  depmod -b "$root" "$kver"
  say "initramfs: $(find "$root/lib/modules" -name '*.ko*' | wc -l) modules, $(wc -l < "$root/preload.txt") preloaded"

  (cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) > "$work/initrd.img"
  mkdir -p "$CACHE"
  cp "$work/pkg/boot/vmlinuz-$kver" "$CACHE/vmlinuz.new"
  mv "$work/initrd.img" "$CACHE/initrd.img.new"
  mv "$CACHE/vmlinuz.new" "$CACHE/vmlinuz"
  mv "$CACHE/initrd.img.new" "$CACHE/initrd.img"
  printf '%s %s\n' "$stamp" "$kver" > "$CACHE/stamp"
  say "boot image ready in $CACHE (kernel $kver)"
  rm -rf "$work"
  trap - EXIT
}

prepare() {
  install_host_packages
  mkdir -p "$CACHE"
  local stamp; stamp=$(recipe_stamp)
  exec 9> "$CACHE/.lock"
  flock 9
  if [ "$REBUILD" = 1 ] || ! [ -f "$CACHE/vmlinuz" ] || ! [ -f "$CACHE/initrd.img" ] \
     || [ "$(cut -d' ' -f1 "$CACHE/stamp" 2>/dev/null)" != "$stamp" ]; then
    build_image "$stamp"
  fi
  flock -u 9
}

prepare
[ "$PREPARE_ONLY" = 1 ] && exit 0
[ $# -gt 0 ] || { echo "kernel-vm: no command given (see --help)" >&2; exit 2; }
[ -n "$OUT" ] && mkdir -p "$OUT"

ctl=$(mktemp -d /tmp/kmesh-vm-run.XXXXXX)
cleanup() { rm -rf "$ctl"; }
trap cleanup EXIT
# The command script runs under the host's bash inside the guest, so %q quoting round-trips.
{
  echo '#!/bin/bash'
  for v in "${PASS_ENV[@]}"; do
    [ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"
  done
  for e in "${EXTRA_ENV[@]}"; do
    if [[ $e == *=* ]]; then printf 'export %q\n' "$e"
    elif [ -n "${!e+x}" ]; then printf 'export %s=%q\n' "$e" "${!e}"; fi
  done
  echo 'export KMESH_IN_VM=1'
  printf 'cd -- %q || exit 125\n' "$PWD"
  printf 'exec'; printf ' %q' "$@"; printf '\n'
} > "$ctl/cmd.sh"
printf '%s' "$OUT" > "$ctl/out-dir"

qemu=(qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot
  -accel tcg,thread=multi -cpu max -m "$MEM" -smp "$CPUS"
  -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initrd.img"
  -append "console=ttyS0 loglevel=4 panic=-1 8250.nr_uarts=2 random.trust_cpu=on"
  -serial "file:$ctl/console.log"
  -chardev stdio,id=cmdout,signal=off -serial chardev:cmdout
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
  -virtfs "local,path=$ctl,mount_tag=kvmctl,security_model=none,multidevs=remap")
[ -n "$OUT" ] && qemu+=(-virtfs "local,path=$OUT,mount_tag=kvmout,security_model=none,multidevs=remap")

say "booting $(cut -d' ' -f2 "$CACHE/stamp") (${MEM} MiB, ${CPUS} vCPU, TCG)"
start=$(date +%s.%N)
set +e
timeout --kill-after=10 "$TIMEOUT" "${qemu[@]}" < /dev/null
qrc=$?
set -e
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')

if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
  say "timed out after ${TIMEOUT}s"
  exit 124
fi
if ! [ -s "$ctl/rc" ]; then
  echo "kernel-vm: the guest did not report an exit status (qemu exit $qrc); console tail:" >&2
  tail -n 40 "$ctl/console.log" >&2 2>/dev/null || true
  exit 125
fi
rc=$(cat "$ctl/rc")
boot=$(cat "$ctl/boot-seconds" 2>/dev/null || echo '?')
end=$(cat "$ctl/end-seconds" 2>/dev/null || echo '?')
say "guest booted in ${boot}s (guest clock), command ended at ${end}s, ${elapsed}s wall; exit status $rc"
exit "$rc"
