# govn: one image for every role (see packaging/docker/entrypoint.sh):
#   docker run govn up | nbdb | sbdb | northd | api | controller | chassis | govnctl …
# Build: docker build -t govn .

# --- build: the two Go binaries, static ---
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/govn ./cmd/govn \
 && CGO_ENABLED=0 go build -trimpath -o /out/govnctl ./cmd/govnctl

# --- run: Debian with Open vSwitch (ovsdb-server for the databases,
# ovs-vswitchd for chassis) ---
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      openvswitch-common openvswitch-switch iproute2 procps \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/govn /out/govnctl /usr/local/bin/
COPY packaging/docker/entrypoint.sh /usr/local/bin/govn-entrypoint
VOLUME ["/var/lib/govn"]
# 6641/6642: NB/SB OVSDB (when given --remote ptcp:…), 6643/6644: Raft,
# 6690: gRPC API, 6081/udp: Geneve.
EXPOSE 6641 6642 6643 6644 6690 6081/udp
ENTRYPOINT ["/usr/local/bin/govn-entrypoint"]
CMD ["up", "--data-dir", "/var/lib/govn", "--api-listen", "0.0.0.0:6690", "--controller", "off"]
