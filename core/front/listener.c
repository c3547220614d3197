/* listener.c -- see listener.h. */
#include "listener.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/loop.h"
#include "base/net.h"
#include "client.h"
#include "rt/rt.h"
#include "rt/settings.h"

#define ACCEPTS_PER_EVENT 64

static void refuse(struct listener *l, int fd)
{
    static const char msg[] = "SERVER_ERROR too many open connections\r\n";
    ssize_t wr = write(fd, msg, sizeof msg - 1);
    (void)wr;
    close(fd);
    STAT_INC(&l->rt->stats, rejected_connections);
}

static void listener_on_accept(void *data, int events)
{
    struct listener *l = data;
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        int fd;
        char err[GW_NET_ERRLEN];
        int rc = net_accept(l->fd, &fd, err);
        if (rc == GW_AGAIN) return;
        if (rc != GW_OK) {
            LOG_WARN("%s", err);
            return;
        }
        if (gw_settings.max_connections && rt_connections() >= gw_settings.max_connections)
            refuse(l, fd);
        else
            client_new(l->rt, l, fd);
    }
}

struct listener *listener_new(struct rt *rt, int fd, const char *addr, const char *name)
{
    struct listener *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->fd = fd;
    l->rt = rt;
    l->addr = strdup(addr);
    l->name = name ? strdup(name) : NULL;
    l->label = l->name ? l->name : l->addr;
    l->io = gw_io_new(rt->loop, fd, GW_EV_READ, listener_on_accept, l);
    if (!l->addr || (name && !l->name) || !l->io) {
        gw_io_free(l->io);
        free(l->addr);
        free(l->name);
        free(l);
        return NULL;
    }
    return l;
}

int listener_rename(struct listener *l, const char *name)
{
    if ((!name && !l->name) || (name && l->name && !strcmp(name, l->name))) return GW_OK;
    char *n = name ? strdup(name) : NULL;
    if (name && !n) return GW_NOMEM;
    free(l->name);
    l->name = n;
    l->label = l->name ? l->name : l->addr;
    return GW_OK;
}

void listener_close(struct listener *l)
{
    gw_io_free(l->io);
    l->io = NULL;
    if (l->fd >= 0) close(l->fd);
    l->fd = -1;
}

void listener_free(struct listener *l)
{
    listener_close(l);
    free(l->addr);
    free(l->name);
    free(l);
}
