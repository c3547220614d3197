/* conn_plain.c -- the plain TCP transport (conn.h): read(2) and writev(2). */
#include "conn.h"

#include <unistd.h>

#include "status.h"

static int plain_read(struct gw_conn *c, struct gw_rbuf *in, size_t need, size_t *n)
{
    return rbuf_read(in, c->fd, need, n);
}

static int plain_writev(struct gw_conn *c, struct gw_oq *out, size_t *written)
{
    return oq_write(out, c->fd, written);
}

static bool plain_pending(const struct gw_conn *c)
{
    return false;
}

static void plain_close(struct gw_conn *c)
{
    close(c->fd);
    c->fd = -1;
}

static int plain_handshake(struct gw_conn *c, char *err, size_t errlen)
{
    return GW_OK;
}

static int plain_events(const struct gw_conn *c, int wanted)
{
    return wanted;
}

const struct transport transport_plain = {
    .name = "plain",
    .read = plain_read,
    .writev = plain_writev,
    .pending = plain_pending,
    .close = plain_close,
    .handshake = plain_handshake,
    .events = plain_events,
};

void conn_init_plain(struct gw_conn *c, int fd)
{
    c->t = &transport_plain;
    c->fd = fd;
    c->session = NULL;
}
