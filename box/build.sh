#!/usr/bin/env bash
# Build the offline Debian 12 (bookworm) vagrant-libvirt box used by k8s-netlab.
#
#   usage: sudo box/build.sh OUT_DIR
#
# Produces OUT_DIR/netlab-debian12.box (plus OUT_DIR/vagrant_key{,.pub}, the
# box's own SSH key pair, and OUT_DIR/build.log). Only Debian packages are used:
# mmdebstrap --variant=minbase with every package of packages.txt in one apt run,
# from $DEBIAN_MIRROR. Needs root, mmdebstrap, qemu-img, sfdisk, partx,
# mkfs.ext4 (-d), mkswap, ssh-keygen, tar, python3.
#
# Where the time goes (2 vCPU, see box/README.md): the root tree is built in a
# tmpfs (dpkg's fsyncs cost nothing there, and no downloaded .deb ever touches
# the disk image), the initramfs is generated once instead of twice, the ext4
# file system is made from the finished tree (mkfs.ext4 -d), and the qcow2 is
# compressed with zstd on every core instead of zlib on one.
#
# Environment:
#   DEBIAN_MIRROR           default http://deb.debian.org/debian
#   DEBIAN_SECURITY_MIRROR  default http://deb.debian.org/debian-security
#                           (set to "" to skip bookworm-security)
#   BOX_PKG_CACHE           dir to keep downloaded .debs between builds
#                           (default: none; the mirror is asked every time)
#   NETLAB_IMAGES           dir where the lab's container images are being built
#                           (lab/adapters/imagebuild.py, side by side with this
#                           build): they are imported into the box's containerd
#                           store once its images.json appears (a file named
#                           `failed` there stops this build); unset: no images
#   NETLAB_IMAGES_WAIT_S    how long to wait for them (default 900)
#
# Box contents: see box/README.md.
set -euo pipefail

# ---------------------------------------------------------------- settings --
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR-http://deb.debian.org/debian-security}
PKG_LIST=$SCRIPT_DIR/packages.txt
PKG_CACHE=${BOX_PKG_CACHE:-}   # default: none
IMAGES_DIR=${NETLAB_IMAGES:-}  # default: a box without the lab's images
IMAGES_WAIT_S=${NETLAB_IMAGES_WAIT_S:-900}
DISK_GB=8            # virtual disk size (also metadata.json virtual_size)
SWAP_MB=128          # /swapfile size
TREE_MAX=4G          # tmpfs size limit for the root tree (it uses ~0.6 GiB)
BOX_FILE=netlab-debian12.box
HOSTNAME_DEFAULT=netlab

if [[ $# -ne 1 || $1 == -h || $1 == --help ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
if [[ $EUID -ne 0 ]]; then
    echo "$0: must run as root" >&2
    exit 1
fi
for tool in mmdebstrap qemu-img sfdisk partx losetup mkfs.ext4 mkswap ssh-keygen chroot tar python3; do
    command -v "$tool" >/dev/null || { echo "$0: missing tool: $tool" >&2; exit 1; }
done
[[ -r $PKG_LIST ]] || { echo "$0: cannot read $PKG_LIST" >&2; exit 1; }

mkdir -p "$1"
OUT_DIR=$(cd "$1" && pwd)
WORK=$(mktemp -d "$OUT_DIR/.build.XXXXXX")  # scratch; removed on exit
IMG=$WORK/disk.raw                            # raw disk image while building
TREE=$WORK/tree                               # the root tree is built here (a tmpfs)
MNT=$WORK/root                                # the image's root fs is mounted here
BOXDIR=$WORK/box                              # files that go into the box tar
TMP_BOX=$OUT_DIR/.$BOX_FILE.partial.$$        # renamed to $BOX_FILE when complete
LOG=$OUT_DIR/build.log
LOOP=""
CONTAINERD_PID=""                             # the images stage's containerd
mkdir -p "$TREE" "$MNT" "$BOXDIR"

# All command output goes to the log; stage lines go to the terminal (fd 3) and the log.
exec 3>&1
: >"$LOG"
exec >>"$LOG" 2>&1

# say MSG: print MSG to the terminal and the log. (Not `tee /dev/fd/3`: when
# stdout is a file, reopening it through /dev/fd truncates it.)
say() {
    echo "$*"
    echo "$*" >&3
}
STAGE="" STAGE_START=$SECONDS
# stage NAME: finish the running stage (printing its duration) and start NAME.
stage() {
    if [[ -n $STAGE ]]; then
        say "$(printf '[build %4ds] %-12s %4ds' "$SECONDS" "$STAGE" $((SECONDS - STAGE_START)))"
    fi
    STAGE=${1:-}
    STAGE_START=$SECONDS
    [[ -z $STAGE ]] || echo "=== stage: $STAGE"
}

# ----------------------------------------------------------------- cleanup --
# stop_containerd: the images stage's containerd (step 2b), if it runs
stop_containerd() {
    if [[ -n $CONTAINERD_PID ]]; then
        kill "$CONTAINERD_PID" 2>/dev/null || true
        wait "$CONTAINERD_PID" || true
        CONTAINERD_PID=""
    fi
}

# Runs on every exit: unmount everything under $WORK, detach the loop device,
# delete scratch files and any half-written box.
cleanup() {
    local rc=$?
    set +e
    if [[ $rc -ne 0 ]]; then
        {
            echo "[build] FAILED (exit $rc) in stage '${STAGE:-?}'; last lines of $LOG:"
            tail -n 25 "$LOG" | sed 's/^/    /'
        } >&3
    fi
    stop_containerd
    local m
    for m in "$MNT" "$TREE"; do
        if mountpoint -q "$m"; then
            umount -R "$m" || umount -lR "$m"
        fi
    done
    if [[ -n $LOOP ]]; then
        partx -d "$LOOP"
        losetup -d "$LOOP"
    fi
    rm -f "$TMP_BOX" "$OUT_DIR/.vagrant_key.$$" "$OUT_DIR/.vagrant_key.pub.$$"
    if grep -qF " $WORK" /proc/mounts; then
        echo "[build] WARNING: something is still mounted under $WORK; not deleting it" >&3
    else
        rm -rf --one-file-system "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# in_chroot DIR CMD...: run a command inside a root tree with a clean environment.
in_chroot() {
    local root=$1
    shift
    chroot "$root" /usr/bin/env -i \
        PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true "$@"
}

mapfile -t PACKAGES < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$PKG_LIST" | grep -v '^$')
echo "packages: ${PACKAGES[*]}"
echo "mirror: $MIRROR security: ${SECURITY_MIRROR:-none}"

# --------------------------------------------------------- 1. root tree --
# Every package in one mmdebstrap run (debootstrap, then apt, installed the
# required set twice over and upgraded it after), into a tmpfs: dpkg fsyncs
# every file, which costs nothing there, and no downloaded .deb is ever
# written to the disk image (deleted files leave their data in the image's
# free blocks: fstrim does not punch holes through loop devices here). The
# release, -updates and -security are all sources, so the newest versions are
# installed directly. mmdebstrap gives the chroot its own /dev with a few
# static nodes, never the host's: udev's postinst runs systemd-tmpfiles,
# which would chgrp the HOST's /dev/kvm to the image's kvm gid.
stage "packages"
mount -t tmpfs -o "size=$TREE_MAX,mode=755" tmpfs "$TREE"
SOURCES=("deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main")
[[ -z $SECURITY_MIRROR ]] || SOURCES+=("deb $SECURITY_MIRROR $SUITE-security main")
CACHE_HOOKS=()
if [[ -n $PKG_CACHE ]]; then  # keep the .debs (mmdebstrap's documented recipe)
    mkdir -p "$PKG_CACHE"
    PKG_CACHE=$(cd "$PKG_CACHE" && pwd)
    CACHE_HOOKS=(--skip=essential/unlink
        --setup-hook='mkdir -p "$1"/var/cache/apt/archives/'
        --setup-hook="sync-in $PKG_CACHE /var/cache/apt/archives/"
        --customize-hook="sync-out /var/cache/apt/archives $PKG_CACHE")
fi
# Run as hooks once the essential set is installed, before everything else:
# grub-pc must not try to install itself while there is no disk; docs and man
# pages stay out (copyright files stay); the box's swap file is not a resume
# device (without this the initramfs may wait for one at boot).
# shellcheck disable=SC2016  # $1 is the hook's argument (the tree), not ours
ESSENTIAL_HOOKS=(
    --essential-hook='printf "%s\n" "grub-pc grub-pc/install_devices multiselect" "grub-pc grub-pc/install_devices_empty boolean true" | chroot "$1" debconf-set-selections'
    --essential-hook='printf "%s\n" "path-exclude /usr/share/doc/*" "path-include /usr/share/doc/*/copyright" "path-exclude /usr/share/man/*" "path-exclude /usr/share/info/*" "path-exclude /usr/share/locale/*" "path-include /usr/share/locale/locale.alias" >"$1/etc/dpkg/dpkg.cfg.d/01-netlab-nodoc"'
    --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" && echo RESUME=none >"$1/etc/initramfs-tools/conf.d/resume"'
)
# INITRD=No: the kernel's postinst leaves the initramfs to step 2, which makes
# it once, with every package in place (otherwise it is made twice, ~7 s each).
# merged-usr hook: /usr merged as debootstrap does it (usr-is-merged, not the
# usrmerge conversion with perl).
INITRD=No mmdebstrap --verbose --variant=minbase --components=main \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='Apt::Install-Recommends "false"' \
    --dpkgopt=force-confdef --dpkgopt=force-confold \
    "${ESSENTIAL_HOOKS[@]}" "${CACHE_HOOKS[@]}" \
    --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    "$SUITE" "$TREE" "${SOURCES[@]}"
# mmdebstrap's own apt and dpkg settings stay out of the box
rm -f "$TREE/etc/apt/apt.conf.d/99mmdebstrap" "$TREE/etc/dpkg/dpkg.cfg.d/99mmdebstrap"
printf '%s\n' "${SOURCES[@]}" >"$TREE/etc/apt/sources.list"

# ------------------------------------------------------------- 2. configure --
stage "configure"
mount -t proc proc "$TREE/proc"
mount -t sysfs -o ro sysfs "$TREE/sys"
mount -t tmpfs tmpfs "$TREE/run"
# No daemon may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$TREE/usr/sbin/policy-rc.d"
chmod 755 "$TREE/usr/sbin/policy-rc.d"
echo "$HOSTNAME_DEFAULT" >"$TREE/etc/hostname"
cat >"$TREE/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$HOSTNAME_DEFAULT
::1		localhost ip6-localhost ip6-loopback
EOF

# Root fs by label; a real 128 MiB swap file (the lab's provisioning turns
# swap off and comments the line out, as kubeadm wants).
# fsck pass 0: the ext4 journal covers crashed VMs, and a boot-time fsck costs
# ~2 s on the critical path under TCG.
cat >"$TREE/etc/fstab" <<'EOF'
LABEL=root  /     ext4  errors=remount-ro  0  0
/swapfile   none  swap  sw                 0  0
EOF
# (the swap file itself is made in step 3: mkfs.ext4 -d would copy its zeros
# as holes, and swapon refuses a file with holes)

# Empty machine-id: every VM generates its own on first boot (and so gets its
# own DHCP client identity).
: >"$TREE/etc/machine-id"
chmod 444 "$TREE/etc/machine-id"  # as systemd-machine-id-setup leaves it
rm -f "$TREE/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$TREE/var/lib/dbus/machine-id"

# Networking: systemd-networkd does DHCP on eth0 ONLY. eth1.. are left to
# Vagrant (it writes its own config for them); matching eth* here would make
# networkd run DHCP on the static private interfaces.
cat >"$TREE/etc/systemd/network/10-eth0.network" <<'EOF'
[Match]
Name=eth0

[Network]
DHCP=ipv4
IPv6AcceptRA=no
EOF
# ifupdown stays installed, but networking.service (ifup -a at boot) is disabled:
# it cost ~8 s before ssh.service under TCG. lo is set up by systemd itself, and
# Vagrant configures eth1.. through systemd-networkd whenever networkd is
# active (it writes /etc/systemd/network/50-vagrant-ethN.network); it only
# falls back to ifupdown + /etc/network/interfaces when networkd is not active.
# `systemctl enable networking` restores boot-time ifup -a.
cat >"$TREE/etc/network/interfaces" <<'EOF'
# Managed by ifupdown. eth0 is configured by systemd-networkd
# (/etc/systemd/network/10-eth0.network).
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
EOF
mkdir -p "$TREE/etc/network/interfaces.d"
mkdir -p "$TREE/etc/systemd/resolved.conf.d"
cat >"$TREE/etc/systemd/resolved.conf.d/netlab.conf" <<'EOF'
[Resolve]
LLMNR=no
MulticastDNS=no
EOF
ln -sf ../run/systemd/resolve/stub-resolv.conf "$TREE/etc/resolv.conf"
# network-online.target waits for any one link, 30 s at most (not 2 min for all).
mkdir -p "$TREE/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat >"$TREE/etc/systemd/system/systemd-networkd-wait-online.service.d/netlab.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=30
EOF
in_chroot "$TREE" systemctl enable systemd-networkd.service systemd-resolved.service
in_chroot "$TREE" systemctl disable networking.service
# bird2 (the BGP backend's speaker) is on the box for the labs that use it; it stays off on the
# others (its package enables it with a default config): provisioning enables it where needed.
in_chroot "$TREE" systemctl disable bird.service
# udev's hotplug hooks of ifupdown and bridge-utils run for every new network device, so
# for each pod's veth (a shell script, run-parts, ifquery: ~3 s of a TCG guest's vCPU per
# e2e run); nothing here uses them (networkd manages the links, ifupdown is only vagrant's
# fallback). Masked the udev way: a same-named rule in /etc pointing to /dev/null.
mkdir -p "$TREE/etc/udev/rules.d"
ln -sf /dev/null "$TREE/etc/udev/rules.d/80-ifupdown.rules"
ln -sf /dev/null "$TREE/etc/udev/rules.d/60-bridge-network-interface.rules"

# sbin directories in every user's PATH (as in Debian 13), so `swapon --show`,
# `ethtool`, `ip` ... work for user vagrant: /etc/environment is read by
# pam_env for `ssh host cmd`, profile.d for login shells.
echo 'PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"' >"$TREE/etc/environment"
cat >"$TREE/etc/profile.d/netlab-sbin-path.sh" <<'EOF'
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="/usr/local/sbin:/usr/sbin:/sbin:$PATH" ;; esac
EOF

# User vagrant: key-only login (password field "*"), passwordless sudo.
in_chroot "$TREE" useradd --create-home --shell /bin/bash --user-group vagrant
in_chroot "$TREE" usermod --password '*' vagrant
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' >"$TREE/etc/sudoers.d/vagrant"
chmod 440 "$TREE/etc/sudoers.d/vagrant"
in_chroot "$TREE" passwd --lock root

# The box's own SSH key pair (never the public insecure Vagrant key).
ssh-keygen -q -t ed25519 -N '' -C "netlab-debian12-box" -f "$WORK/vagrant_key"
install -d -m 700 "$TREE/home/vagrant/.ssh"
install -m 600 "$WORK/vagrant_key.pub" "$TREE/home/vagrant/.ssh/authorized_keys"
in_chroot "$TREE" chown -R vagrant:vagrant /home/vagrant/.ssh

# sshd: no DNS lookups, keys only, a single ed25519 host key generated on each
# VM's first boot (host keys are not baked into the image).
cat >"$TREE/etc/ssh/sshd_config.d/netlab.conf" <<'EOF'
UseDNS no
GSSAPIAuthentication no
PasswordAuthentication no
KbdInteractiveAuthentication no
HostKey /etc/ssh/ssh_host_ed25519_key
EOF
rm -f "$TREE"/etc/ssh/ssh_host_*
cat >"$TREE/etc/systemd/system/netlab-ssh-hostkey.service" <<'EOF'
[Unit]
Description=Generate the SSH host key on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
RequiredBy=ssh.service
EOF
in_chroot "$TREE" systemctl enable netlab-ssh-hostkey.service ssh.service

# Under QEMU software emulation (TCG) translated code is found again by its virtual address:
# with address-space randomisation every new process (sudo, sh, ip, nsenter, runc, the CNI
# plugins, containerd's shims) puts its code somewhere else and QEMU translates it all anew,
# which makes a fork+exec about 4x dearer (docs/benchmarks.md). A lab node is a disposable VM
# on a private network: under TCG it runs without randomisation, from early boot on. Under KVM
# (systemd-detect-virt says kvm) nothing changes.
cat >"$TREE/etc/systemd/system/netlab-tcg-aslr.service" <<'EOF'
[Unit]
Description=Address-space randomisation off under QEMU software emulation (TCG)
Documentation=https://www.kernel.org/doc/html/latest/admin-guide/sysctl/kernel.html#randomize-va-space
DefaultDependencies=no
ConditionVirtualization=qemu
After=systemd-sysctl.service
Before=sysinit.target systemd-udev-trigger.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/sysctl -q kernel.randomize_va_space=0

[Install]
WantedBy=sysinit.target
EOF
in_chroot "$TREE" systemctl enable netlab-tcg-aslr.service

# Fast boot: no periodic jobs, no first-boot prompts, and none of the early units a lab node
# never uses (each is a process or a mount the single emulated vCPU pays for at every boot):
# modules for DRM, EFI pstore, FUSE and device-mapper, binfmt_misc.
in_chroot "$TREE" systemctl mask \
    apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer \
    dpkg-db-backup.timer systemd-firstboot.service \
    modprobe@drm.service modprobe@efi_pstore.service systemd-pstore.service \
    modprobe@fuse.service sys-fs-fuse-connections.mount modprobe@dm_mod.service \
    systemd-binfmt.service proc-sys-fs-binfmt_misc.automount
echo "enabled units:"; in_chroot "$TREE" systemctl list-unit-files --state=enabled --no-pager || true

# The initramfs, once, now that every package (and its hooks) is in place,
# and the /initrd.img{,.old} links the kernel's postinst would have made.
in_chroot "$TREE" update-initramfs -c -k all
for kernel in "$TREE"/boot/vmlinuz-*; do
    in_chroot "$TREE" linux-update-symlinks install "${kernel#"$TREE"/boot/vmlinuz-}" "/boot/${kernel##*/}"
done
in_chroot "$TREE" ldconfig

# ---------------------------------------------------------------- 2b. images --
# The lab's container images (built side by side with this box) go into the box's containerd
# store, unpacked for its overlayfs snapshotter, in the CRI's namespace: provisioning finds
# them there and imports nothing (it did, over SSH into an emulated vCPU: ~22 s of every
# `make lab`). The box's own containerd does it, run from the tree natively on this host (CRI
# plugin off; its socket and state in the tree's /run, a tmpfs that is not part of the image).
# Where that cannot work here (say, a host kernel without overlayfs) the box goes without
# them, with a warning: provisioning then imports them into each node, as it does on any box.
# The file names are those of lab/adapters/imagebuild.py (MANIFEST, ARCHIVE) and lab/hosts/box.py
# (IMAGES_FAILED).
BOX_CTR=(ctr --address /run/netlab-box/containerd.sock --namespace k8s.io)

# wait_for_images: until the images' manifest appears; exit when their build failed
wait_for_images() {
    local waited=0
    until [[ -e $IMAGES_DIR/images.json ]]; do
        if [[ -e $IMAGES_DIR/failed ]]; then
            say "[build] the container images failed to build: no box"
            exit 1
        fi
        if ((waited >= IMAGES_WAIT_S * 2)); then
            say "[build] no container images in $IMAGES_DIR after ${IMAGES_WAIT_S}s"
            exit 1
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
}

# import_images: the tree's containerd started, the archive imported, every image of the
# manifest listed; returns 1 at the first step that fails (errexit is off in a `||` list)
import_images() {
    mkdir -p "$TREE/run/netlab-box" || return 1
    printf '%s\n' 'version = 2' 'disabled_plugins = ["io.containerd.grpc.v1.cri"]' '[grpc]' \
        '  address = "/run/netlab-box/containerd.sock"' >"$TREE/run/netlab-box/config.toml" ||
        return 1
    # chroot and env exec: $! is containerd itself
    chroot "$TREE" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        containerd --config /run/netlab-box/config.toml &
    CONTAINERD_PID=$!
    timeout 60 sh -c "until chroot '$TREE' ${BOX_CTR[*]} version >/dev/null 2>&1; do sleep 0.2; done" ||
        return 1
    in_chroot "$TREE" "${BOX_CTR[@]}" images import --snapshotter overlayfs - \
        <"$IMAGES_DIR/netlab-images.oci.tar" || return 1
    local listed wanted
    listed=$(in_chroot "$TREE" "${BOX_CTR[@]}" images ls -q | sort) || return 1
    wanted=$(python3 -c 'import json, sys; print("\n".join(sorted(json.load(open(sys.argv[1]))["refs"].values())))' \
        "$IMAGES_DIR/images.json") || return 1
    echo "images in the box: $listed"
    [[ $listed == "$wanted" ]] || { echo "wanted: $wanted"; return 1; }
}

if [[ -n $IMAGES_DIR ]]; then
    stage "images"
    wait_for_images
    if ! import_images; then
        say "[build] WARNING: the container images could not be put into the box (see $LOG);" \
            "it goes without them and provisioning imports them into each node"
        stop_containerd
        rm -rf --one-file-system "$TREE/var/lib/containerd"  # as before containerd ever ran
    fi
    stop_containerd
    rm -rf "$TREE/run/netlab-box" "$TREE/run/containerd"
fi

# --------------------------------------------------------------- 3. cleanup --
stage "cleanup"
rm -f "$TREE/usr/sbin/policy-rc.d"
rm -rf "$TREE"/var/lib/apt/lists/* "$TREE"/var/cache/apt/archives/*.deb "$TREE"/tmp/* \
    "$TREE"/var/tmp/* "$TREE"/var/cache/debconf/*-old
find "$TREE/var/log" -type f -exec truncate -s 0 {} +
rm -f "$TREE/var/lib/systemd/random-seed" "$TREE/root/.bash_history"
umount "$TREE/proc" "$TREE/sys" "$TREE/run"

# ---------------------------------------------------- 4. disk image + root fs --
# One MBR partition from 1 MiB to the end (the gap before it holds GRUB's
# core.img), ext4 labelled "root", made from the finished tree (mkfs.ext4 -d
# copies modes, owners, xattrs such as ping's capability, hard links).
# losetup -P does not create partition devices on this kind of machine;
# partx -a does.
stage "disk image"
truncate -s "${DISK_GB}G" "$IMG"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk --quiet "$IMG"
LOOP=$(losetup --find --show "$IMG")
partx -a "$LOOP"
PART=${LOOP}p1
for _ in $(seq 50); do [[ -b $PART ]] && break; sleep 0.1; done
[[ -b $PART ]] || { echo "partition device $PART did not appear"; exit 1; }
mkfs.ext4 -q -L root -d "$TREE" "$PART"
umount "$TREE"
mount "$PART" "$MNT"
dd if=/dev/zero of="$MNT/swapfile" bs=1M count="$SWAP_MB" status=none
chmod 600 "$MNT/swapfile"
mkswap "$MNT/swapfile"

# ------------------------------------------------------------- 5. bootloader --
# GRUB and the kernel talk to the serial console only, so a VM without a video
# device (video_type = "none") still boots. Without udev in the chroot
# update-grub writes root=/dev/loopNp1; it is replaced with root=LABEL=root
# (an update-grub inside a running VM writes root=UUID=..., which also works).
# tsc=reliable: a busy TCG host delays the HPET reads of the kernel's clocksource watchdog,
# which then marks the TSC unstable and moves the clock to the HPET, where every clock read
# is a system call and an emulated device access (2-5.6 us a read here, against 0.5-1.5 us).
# Under KVM the clock is kvm-clock and this changes nothing.
stage "bootloader"
# A private /dev with just the nodes needed (never a bind mount of the host's
# /dev, see step 1).
mount -t tmpfs -o mode=755,nosuid tmpfs "$MNT/dev"
copy_dev_node() {  # copy_dev_node /dev/X: same type/major/minor/mode in the chroot
    local type=c
    [[ -b $1 ]] && type=b
    mknod -m "$(stat -c %a "$1")" "$MNT$1" "$type" \
        "$((16#$(stat -c %t "$1")))" "$((16#$(stat -c %T "$1")))"
}
for node in /dev/null /dev/zero /dev/full /dev/random /dev/urandom "$LOOP" "$PART"; do
    copy_dev_node "$node"
done
mount -t proc proc "$MNT/proc"
mount -t sysfs -o ro sysfs "$MNT/sys"
cat >"$MNT/etc/default/grub.d/netlab.cfg" <<'EOF'
GRUB_TIMEOUT=0
GRUB_TIMEOUT_STYLE=hidden
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX="console=ttyS0,115200n8 net.ifnames=0 biosdevname=0 tsc=reliable"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_RECOVERY=true
GRUB_DISABLE_OS_PROBER=true
EOF
in_chroot "$MNT" update-grub
sed -i -E 's#root=/dev/loop[0-9]+p1#root=LABEL=root#g' "$MNT/boot/grub/grub.cfg"
grep -q 'root=LABEL=root' "$MNT/boot/grub/grub.cfg"
if grep -q '/dev/loop' "$MNT/boot/grub/grub.cfg"; then
    echo "grub.cfg still refers to a loop device"; exit 1
fi
in_chroot "$MNT" grub-install --target=i386-pc "$LOOP"
# Later grub-pc upgrades inside a VM install to its disk.
echo "grub-pc grub-pc/install_devices multiselect /dev/vda" | in_chroot "$MNT" debconf-set-selections
rm -f "$MNT"/var/cache/debconf/*-old

umount -R "$MNT"
partx -d "$LOOP"
losetup -d "$LOOP"
LOOP=""

# ------------------------------------------------------- 6. qcow2 + box tar --
# zstd, on every core (-m 4 -W): 3 s instead of zlib's 23 s, the same size.
stage "qcow2"
qemu-img convert -c -o compression_type=zstd -m 4 -W -O qcow2 "$IMG" "$BOXDIR/box.img"
rm -f "$IMG"

stage "box"
printf '{"provider":"libvirt","format":"qcow2","virtual_size":%d}\n' "$DISK_GB" >"$BOXDIR/metadata.json"
install -m 600 "$WORK/vagrant_key" "$BOXDIR/vagrant_key"
cat >"$BOXDIR/Vagrantfile" <<'EOF'
# Embedded in the netlab-debian12 box (generated by k8s-netlab box/build.sh).
# The box carries its own SSH key; Vagrant must use it and not replace it.
Vagrant.configure("2") do |config|
  config.ssh.username = "vagrant"
  config.ssh.private_key_path = [File.expand_path("vagrant_key", File.dirname(__FILE__))]
  config.ssh.insert_key = false
  # Skip Vagrant's guest detection (~40 probe commands, ~10 s under TCG).
  config.vm.guest = :debian
  # No NFS/rsync client in the box.
  config.vm.synced_folder ".", "/vagrant", disabled: true
end
EOF
tar -C "$BOXDIR" --owner=0 --group=0 -cf "$TMP_BOX" metadata.json Vagrantfile vagrant_key box.img
install -m 600 "$WORK/vagrant_key" "$OUT_DIR/.vagrant_key.$$"
install -m 644 "$WORK/vagrant_key.pub" "$OUT_DIR/.vagrant_key.pub.$$"
mv -f "$OUT_DIR/.vagrant_key.$$" "$OUT_DIR/vagrant_key"
mv -f "$OUT_DIR/.vagrant_key.pub.$$" "$OUT_DIR/vagrant_key.pub"
mv -f "$TMP_BOX" "$OUT_DIR/$BOX_FILE"
stage ""

say "$(printf '[build %4ds] done: %s (%s)' "$SECONDS" "$OUT_DIR/$BOX_FILE" \
    "$(du -h "$OUT_DIR/$BOX_FILE" | cut -f1)")"
