# syntax=docker/dockerfile:1
# Production image of the secure-agent worker.
#   docker build --build-arg VERSION=$(git describe --tags --always) -t secure-agent:dev .
#   docker run --rm -e TEMPORAL_ADDRESS=temporal:7233 secure-agent:dev            # runs `worker`

# ---- build ----
FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so the download layer is cached across source changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Static binary (no cgo), no embedded Temporal server (noserver), reproducible paths (-trimpath).
RUN CGO_ENABLED=0 go build -trimpath -tags noserver \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/secure-agent ./cmd/secure-agent

# ---- run ----
# distroless/static: CA certificates, tzdata and /etc/passwd for the nonroot user (65532), no shell,
# no package manager. Because there is no shell or curl in the image, a Dockerfile HEALTHCHECK is
# not possible here: health is checked from outside, e.g. by Kubernetes liveness/readiness probes
# on /healthz and /readyz (set SECURE_AGENT_HTTP_ADDRESS=:9090; the Helm chart does).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/secure-agent /secure-agent
USER 65532:65532
# Metrics and health (only served when SECURE_AGENT_HTTP_ADDRESS is set, e.g. ":9090").
EXPOSE 9090
ENTRYPOINT ["/secure-agent"]
CMD ["worker"]
