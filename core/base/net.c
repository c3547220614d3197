/* net.c -- see net.h. */
#define _GNU_SOURCE
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(char *err, const char *what, int e)
{
    snprintf(err, GW_NET_ERRLEN, "%s: %s", what, strerror(e));
    return GW_ERROR;
}

int net_parse_addr(const char *spec, struct gw_addr *out, char *host, size_t hostlen,
                   uint16_t *port, char *err)
{
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || !colon[1]) {
        snprintf(err, GW_NET_ERRLEN, "bad address '%s' (want host:port)", spec);
        return GW_ERROR;
    }
    const char *h = spec;
    size_t hlen = (size_t)(colon - spec);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= hostlen) {
        snprintf(err, GW_NET_ERRLEN, "bad host in '%s'", spec);
        return GW_ERROR;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p <= 0 || p > 65535) {
        snprintf(err, GW_NET_ERRLEN, "bad port in '%s'", spec);
        return GW_ERROR;
    }
    memcpy(host, h, hlen);
    host[hlen] = 0;
    *port = (uint16_t)p;

    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%ld", p);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, GW_NET_ERRLEN, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return GW_ERROR;
    }
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return GW_OK;
}

int net_listen(const struct gw_addr *addr, bool reuseport, int backlog, int *fd, char *err)
{
    int s = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) return fail(err, "socket", errno);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        int e = errno;
        close(s);
        return fail(err, "SO_REUSEPORT", e);
    }
    if (bind(s, (const struct sockaddr *)&addr->sa, addr->len) < 0) {
        int e = errno;
        close(s);
        return fail(err, "bind", e);
    }
    if (listen(s, backlog) < 0) {
        int e = errno;
        close(s);
        return fail(err, "listen", e);
    }
    *fd = s;
    return GW_OK;
}

int net_check_free(const struct gw_addr *addr, char *err)
{
    int s = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return fail(err, "socket", errno);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = bind(s, (const struct sockaddr *)&addr->sa, addr->len);
    int e = errno;
    close(s);
    return rc < 0 ? fail(err, "bind", e) : GW_OK;
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void peer_from(const struct sockaddr_storage *ss, struct gw_peer *peer)
{
    memset(peer, 0, sizeof *peer);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        memcpy(peer->ip, &in->sin_addr, 4);
        peer->port = ntohs(in->sin_port);
        peer->family = AF_INET;
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        memcpy(peer->ip, &in6->sin6_addr, 16);
        peer->port = ntohs(in6->sin6_port);
        peer->family = AF_INET6;
    }
}

const char *net_peer_format(const struct gw_peer *p, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (!p || !p->family || !inet_ntop(p->family, p->ip, ip, sizeof ip))
        snprintf(out, len, "-");
    else if (p->family == AF_INET6)
        snprintf(out, len, "[%s]:%u", ip, p->port);
    else
        snprintf(out, len, "%s:%u", ip, p->port);
    return out;
}

int net_accept(int lfd, int *fd, struct gw_peer *peer, char *err)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof ss;
        ss.ss_family = AF_UNSPEC;
        int s = accept4(lfd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (s >= 0) {
            set_nodelay(s);
            peer_from(&ss, peer);
            *fd = s;
            return GW_OK;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return GW_AGAIN;
        int e = errno;
        fail(err, "accept", e);
        return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM ? GW_NOMEM : GW_ERROR;
    }
}

int net_connect(const struct gw_addr *addr, int *fd, char *err)
{
    int s = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) return fail(err, "socket", errno);
    set_nodelay(s);
    *fd = s;
    if (connect(s, (const struct sockaddr *)&addr->sa, addr->len) == 0) return GW_OK;
    if (errno == EINPROGRESS) return GW_AGAIN;
    int e = errno;
    close(s);
    *fd = -1;
    return fail(err, "connect", e);
}

int net_connect_result(int fd, char *err)
{
    int e = 0;
    socklen_t len = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0) e = errno;
    if (e == 0) return GW_OK;
    return fail(err, "connect", e);
}
