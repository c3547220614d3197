/* net.h -- socket helpers (TCP over IPv4/IPv6), anet style.
 *
 * Every function that can fail returns GW_OK or GW_ERROR (GW_AGAIN where
 * said) and, on failure, writes a readable reason into err[GW_NET_ERRLEN].
 * All sockets made here are non-blocking and close-on-exec.
 */
#ifndef GW_NET_H
#define GW_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "status.h"

#define GW_NET_ERRLEN 256

struct gw_addr {
    struct sockaddr_storage sa;
    socklen_t len;
};

/* A connected peer's address, compact (20 bytes) so that every request can
 * carry its client's for a log line; formatted only when one is written. */
struct gw_peer {
    uint8_t ip[16];            /* IPv4: the first 4 bytes */
    uint16_t port;             /* host order */
    uint8_t family;            /* AF_INET, AF_INET6; 0: unknown */
};

/* "ip:port" or "[ipv6]:port" ("-" when unknown) into out; returns out. */
#define GW_PEER_STRLEN 56
const char *net_peer_format(const struct gw_peer *p, char *out, size_t len);

/* Split "host:port" (or "[v6]:port") into host and port; resolves
 * numerically or through getaddrinfo. */
int net_parse_addr(const char *spec, struct gw_addr *out, char *host, size_t hostlen,
                   uint16_t *port, char *err);

/* A listening socket on addr.  reuseport sets SO_REUSEPORT so that each
 * worker can bind its own socket to the same address. */
int net_listen(const struct gw_addr *addr, bool reuseport, int backlog, int *fd, char *err);

/* Is addr free for this process to listen on?  A socket without
 * SO_REUSEPORT is bound and closed again: the bind fails (GW_ERROR,
 * "Address already in use") if any other socket listens there, even one
 * with SO_REUSEPORT, which the sockets of net_listen(reuseport) would
 * otherwise join silently.  Call it just before binding those. */
int net_check_free(const struct gw_addr *addr, char *err);

/* Accept one connection, and its peer's address into *peer.  GW_AGAIN when
 * none is pending; GW_NOMEM when the process or system is out of
 * descriptors or memory (the connection stays pending: accepting again at
 * once would fail again). */
int net_accept(int lfd, int *fd, struct gw_peer *peer, char *err);

/* Start a non-blocking connect.  GW_OK: connected at once; GW_AGAIN: in
 * progress (wait for writability, then call net_connect_result). */
int net_connect(const struct gw_addr *addr, int *fd, char *err);
int net_connect_result(int fd, char *err);

#endif
