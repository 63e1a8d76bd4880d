# WireWarden in a container: `serve` with WireGuard (wireguard-go when the host kernel has
# no module), nftables and tc, its data in a volume. Run it with the host's network, NET_ADMIN
# and /dev/net/tun (compose.yaml; docs/install.md).
#
# The Python side arrives as wheels built on the host: `scripts/build-image` runs
# `pip wheel -w dist/wheels .` (this project, with the dashboard's libraries inside, and
# every dependency) and then builds this file. The image needs no compiler, npm or index
# access for Python; its Python must be the one the wheels were built for (bookworm: 3.11).
ARG BASE=debian:bookworm-slim
FROM ${BASE}

# The tools serve drives; no recommends: plain wireguard-tools would pull a kernel image.
# ca-certificates: blocklist downloads and DNS-over-TLS upstreams verify certificates.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      wireguard-tools wireguard-go nftables iproute2 conntrack procps \
      iptables libnetfilter-queue1 \
      python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*

COPY dist/wheels/ /tmp/wheels/
RUN python3 -m venv /opt/wirewarden \
 && /opt/wirewarden/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels wirewarden \
 && rm -rf /tmp/wheels

ENV PATH=/opt/wirewarden/bin:$PATH \
    WIREWARDEN_DATA_DIR=/var/lib/wirewarden
VOLUME /var/lib/wirewarden
EXPOSE 8000
ENTRYPOINT ["wirewarden"]
CMD ["serve"]
