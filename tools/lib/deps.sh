# shellcheck shell=bash
# install_deps: make sure every Debian 12 package the build, the lab and the demo need is
# present. Installs only what dpkg-query reports missing; runs `apt-get update` only then.
#
# Used by tools/test and tools/demo. Requires root.

SLUICE_DEPS=(
	libdpdk-dev dpdk dpdk-dev libnuma-dev libcmocka-dev meson ninja-build pkg-config
	nginx-light wrk apache2-utils python3-scapy iproute2 ethtool iputils-ping
	socat curl procps nftables
)

install_deps() {
	local p missing=()
	for p in "${SLUICE_DEPS[@]}"; do
		# One line, read whole: `dpkg -s | grep -q` under pipefail fails whenever grep
		# quits before dpkg has written everything (SIGPIPE, status 141).
		if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
			missing+=("$p")
		fi
	done
	if [ ${#missing[@]} -eq 0 ]; then
		return 0
	fi
	echo "installing: ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
	# nginx-light's package starts a system nginx on :80 in the root namespace. The lab runs
	# its own nginx instances inside namespaces and does not need it; leave it as installed.
}
