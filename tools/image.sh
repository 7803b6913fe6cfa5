#!/bin/sh
# `make image`: the FROM scratch image (Dockerfile) for every `make cross`
# target, with podman (preferred) or docker.
#
#   relay:latest                         this machine's architecture
#   relay:x86_64 relay:aarch64 relay:armv7 relay:mipsel   one per target
#   dist/relay-oci.tar                   all four as one multi-arch image
#                                        (OCI archive with an image index:
#                                        linux/amd64, arm64, arm/v7, mipsle)
#
# The build context is build/image/: linux/<platform>/relay (copied from
# dist/) and an empty data/ (the ledger's directory, owned by 65534).
# Push the multi-arch archive with e.g.
#   skopeo copy --all oci-archive:dist/relay-oci.tar docker://REGISTRY/relay:TAG
# (docker: the archive needs `docker buildx`; without it only the
# single-architecture images are made).
set -eu
cd "$(dirname "$0")/.."

ARCHES="x86_64 aarch64 armv7 mipsel"
platform_of() {
	case "$1" in
	x86_64) echo linux/amd64 ;;
	aarch64) echo linux/arm64 ;;
	armv7) echo linux/arm/v7 ;;
	mipsel) echo linux/mipsle ;;
	esac
}
native=$(uname -m)
case "$native" in
aarch64 | arm64) native=aarch64 ;;
armv7* | armv8l) native=armv7 ;;
mips*) native=mipsel ;;
esac

engine=""
if command -v podman >/dev/null 2>&1; then
	engine=podman
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	engine=docker
else
	echo "tools/image.sh: neither podman nor a Docker engine (tools/setup.sh image installs podman)" >&2
	exit 1
fi

ctx=build/image
rm -rf "$ctx"
mkdir -p "$ctx/data"
for a in $ARCHES; do
	[ -f "dist/relay-$a" ] || { echo "tools/image.sh: dist/relay-$a missing (make cross)" >&2; exit 1; }
	mkdir -p "$ctx/$(platform_of "$a")"
	cp "dist/relay-$a" "$ctx/$(platform_of "$a")/relay"
done

id_of() { $engine image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

# Reproducible: file and image times are the last commit's.
stamp=$(git log -1 --format=%ct 2>/dev/null || echo 0)

if [ "$engine" = podman ]; then
	name=localhost/relay
	for a in $ARCHES; do
		old=$(id_of "$name:$a")
		# --no-cache: buildah's layer cache does not see that
		# ${TARGETPLATFORM} names another file for another platform.
		podman build -q --layers=false --no-cache --timestamp "$stamp" \
		    --platform "$(platform_of "$a")" -t "$name:$a" -f Dockerfile "$ctx" >/dev/null
		new=$(id_of "$name:$a")
		if [ -n "$old" ] && [ "$old" != "$new" ]; then
			podman rmi "$old" >/dev/null 2>&1 || true
		fi
	done
	podman tag "$name:$native" "$name:latest"
	# The multi-arch index only as an archive: podman 4.3 keeps a local
	# manifest list of locally built images in a state that breaks
	# `podman images`, so the list lives just long enough to be written.
	list=$name:oci-index-$$
	podman manifest create "$list" >/dev/null
	for a in $ARCHES; do
		podman manifest add "$list" "containers-storage:$name:$a" >/dev/null
	done
	rm -f dist/relay-oci.tar
	podman manifest push -q --all "$list" "oci-archive:dist/relay-oci.tar:relay:latest" >/dev/null 2>&1 ||
	    { podman manifest rm "$list" >/dev/null; echo "tools/image.sh: podman manifest push failed" >&2; exit 1; }
	podman manifest rm "$list" >/dev/null
else
	name=relay
	for a in $ARCHES; do
		docker build -q --platform "$(platform_of "$a")" \
		    --build-arg TARGETPLATFORM="$(platform_of "$a")" \
		    -t "$name:$a" -f Dockerfile "$ctx" >/dev/null
	done
	docker tag "$name:$native" "$name:latest"
	rm -f dist/relay-oci.tar
	if docker buildx version >/dev/null 2>&1; then
		docker buildx build -q --platform linux/amd64,linux/arm64,linux/arm/v7,linux/mipsle \
		    -o type=oci,dest=dist/relay-oci.tar -f Dockerfile "$ctx" >/dev/null
	else
		echo "image: no docker buildx: no multi-arch archive"
	fi
fi

printf '%-24s %-13s %9s\n' image platform bytes
for a in $ARCHES; do
	printf '%-24s %-13s %9s\n' "$name:$a" "$(platform_of "$a")" \
	    "$($engine image inspect --format '{{.Size}}' "$name:$a")"
done
printf '%-24s %-13s %9s\n' "$name:latest" "$(platform_of "$native")" \
    "$($engine image inspect --format '{{.Size}}' "$name:latest")"
[ -f dist/relay-oci.tar ] &&
    printf '%-24s %-13s %9s\n' dist/relay-oci.tar "all four" "$(wc -c <dist/relay-oci.tar)"
exit 0
