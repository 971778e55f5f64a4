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
    && adduser -S -D -H -u 10001 -h /var/lib/railyard railyard \
    && mkdir -p /var/lib/railyard && chown railyard /var/lib/railyard
COPY --from=build /out/bot /usr/local/bin/bot
COPY app.yml /app.yml
USER railyard
WORKDIR /var/lib/railyard
ENV RAILYARD_WORKDIR=/var/lib/railyard/work
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bot"]
