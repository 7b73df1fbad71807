# SPDX-License-Identifier: MIT
# `make image`, `make image-test`: the container image without a Docker engine.
#
#   make image [IMAGE_ARCH=arm64]
#
# builds deploy/docker/Dockerfile with podman (scripts/podman.sh: runc,
# cgroupfs) as $(IMAGE). For arm64 the build stage cross-compiles on this
# machine's base and the rootfs stage runs on the arm64 base under qemu-user
# (binfmt_misc; scripts/image-base.sh registers qemu-aarch64). BUILD_BASE is
# given by image id and BUILDPLATFORM left empty: podman 4.3 (buildah 1.28)
# finds no image of the target platform for the stages after one with a
# FROM --platform=..., and an id is taken whatever its platform. No registry is needed: the base is
# `debootstrap --variant=minbase bookworm` from the Debian mirror apt uses here
# (scripts/image-base.sh), its tarball cached in $(IMAGE_CACHE). Elsewhere
# `docker build -f deploy/docker/Dockerfile .` uses debian:bookworm instead.
#
#   make image-test
#
# runs tests/image/test_*.sh: the image as the DaemonSet runs it (capabilities,
# mounts, probes from deploy/kubernetes/daemonset.yaml), the mount-bpffs init
# container on a node without bpffs, and the systemd unit under a real systemd
# (tests/image/test_systemd_unit.sh, in a container booted from the same base).

IMAGE_ARCH	?= $(DEB_ARCH)
IMAGE_CACHE	?= $(BUILD)/image-cache
IMAGE		?= localhost/tlsguard:$(VERSION)$(if $(filter-out $(DEB_ARCH),$(IMAGE_ARCH)),-$(IMAGE_ARCH))
IMAGE_DEB_DEPS	:= podman runc debootstrap tar python3 python3-yaml \
		   $(if $(filter-out $(DEB_ARCH),$(IMAGE_ARCH)),qemu-user-static binfmt-support)

image:
	$(Q)scripts/install-deps.sh $(IMAGE_DEB_DEPS)
	$(call msg,IMAGE,$(IMAGE))
	$(Q)build_base=$$(scripts/podman.sh image inspect -f '{{.Id}}' \
	    $$(scripts/image-base.sh $(DEB_ARCH) $(IMAGE_CACHE))) && \
	  base=$$(scripts/image-base.sh $(IMAGE_ARCH) $(IMAGE_CACHE)) && \
	  scripts/podman.sh build --network host --pull=never --platform linux/$(IMAGE_ARCH) \
	    --ignorefile deploy/docker/Dockerfile.dockerignore -f deploy/docker/Dockerfile \
	    --build-arg BASE=$$base --build-arg BUILD_BASE=$$build_base \
	    --build-arg TARGETARCH=$(IMAGE_ARCH) \
	    -t $(IMAGE) . >$(IMAGE_CACHE)/build-$(IMAGE_ARCH).log 2>&1 || \
	  { tail -n 30 $(IMAGE_CACHE)/build-$(IMAGE_ARCH).log >&2; \
	    echo "image: podman build failed (log: $(IMAGE_CACHE)/build-$(IMAGE_ARCH).log)" >&2; exit 1; }
	$(Q)echo "  IMAGE    $(IMAGE): $$(scripts/podman.sh image inspect -f '{{.Size}}' $(IMAGE) | \
	  awk '{ printf "%.1f MB", $$1 / 1e6 }')"

image-test: image
	$(Q)scripts/install-deps.sh $(DEB_TEST_DEPS)
	$(Q)$(MAKE) --no-print-directory $(SAN)/tlsguard $(SAN)/helpers/tg-testsrv $(BUILD)/tlsguard
	$(Q)TG_IMAGE=$(IMAGE) TG_IMAGE_CACHE=$(abspath $(IMAGE_CACHE)) TG_TESTS_DIR=tests/image \
	  TG_TEST_TIMEOUT=300 tests/integration/run.sh $(SAN)

.PHONY: image image-test
