# syntax=docker/dockerfile:1
FROM golang:1.26-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bot ./cmd/bot

# Steps are shell commands, so the runtime image keeps a shell (busybox sh);
# teams add their own deploy tooling in an image built FROM this one.
FROM alpine:3
RUN apk add --no-cache ca-certificates git \
    && addgroup -S -g 10001 railyard \
    && adduser -S -D -H -u 10001 -G railyard -h /var/lib/railyard railyard \
    && mkdir -p /var/lib/railyard/work && chown -R 10001:10001 /var/lib/railyard
COPY --from=build /out/bot /usr/local/bin/bot
# Numeric, so Kubernetes' runAsNonRoot can tell it is not root.
USER 10001:10001
# The bot reads and setup mode writes .env here: mount a volume on this
# directory to keep the App's credentials across restarts.
WORKDIR /var/lib/railyard
ENV RAILYARD_WORKDIR=/var/lib/railyard/work
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bot"]
