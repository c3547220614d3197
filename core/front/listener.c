/* listener.c -- see listener.h. */
#include "listener.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/conn.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/net.h"
#include "client.h"
#include "rt/rt.h"
#include "rt/settings.h"

#define ACCEPTS_PER_EVENT 64
#define PAUSE_FIRST 0.1
#define PAUSE_MAX 1.0

static void refuse(struct listener *l, int fd)
{
    static const char msg[] = "SERVER_ERROR too many open connections\r\n";
    ssize_t wr = write(fd, msg, sizeof msg - 1);
    (void)wr;
    close(fd);
    STAT_INC(&l->rt->stats, rejected_connections);
}

/* Out of descriptors: stop watching the socket for a while. */
static void pause_accepting(struct listener *l, const char *err)
{
    l->last_emfile = gw_loop_now(l->rt->loop);
    if (l->pause == 0) {
        LOG_WARN("%s on %s: not accepting new connections until descriptors free up", err,
                 l->addr);
        l->pause = PAUSE_FIRST;
    } else if (l->pause < PAUSE_MAX) {
        l->pause = l->pause * 2 < PAUSE_MAX ? l->pause * 2 : PAUSE_MAX;
    }
    gw_io_set(l->io, 0);
    gw_timer_start(l->resume, l->pause);
}

static void listener_on_resume(void *data, int events)
{
    struct listener *l = data;
    if (l->io) gw_io_set(l->io, GW_EV_READ);
}

static void listener_on_accept(void *data, int events)
{
    struct listener *l = data;
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        int fd;
        struct gw_peer peer;
        char err[GW_NET_ERRLEN];
        int rc = net_accept(l->fd, &fd, &peer, err);
        if (rc == GW_AGAIN) return;
        if (rc == GW_NOMEM) {
            pause_accepting(l, err);
            return;
        }
        if (rc != GW_OK) {
            LOG_WARN("%s", err);
            return;
        }
        if (l->pause > 0 && gw_loop_now(l->rt->loop) - l->last_emfile > PAUSE_MAX) {
            LOG_WARN("%s: accepting new connections again", l->addr);
            l->pause = 0;
        }
        if (gw_settings.max_connections && rt_connections() >= gw_settings.max_connections)
            refuse(l, fd);
        else
            client_new(l->rt, l, fd, &peer);
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
    l->resume = gw_timer_new(rt->loop, listener_on_resume, l);
    if (!l->addr || (name && !l->name) || !l->io || !l->resume) {
        gw_io_free(l->io);
        gw_timer_free(l->resume);
        free(l->addr);
        free(l->name);
        free(l);
        return NULL;
    }
    return l;
}

void listener_set_tls(struct listener *l, struct gw_tls *tls)
{
    tls_ref(tls);
    tls_unref(l->tls);
    l->tls = tls;
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
    gw_timer_stop(l->resume);
    if (l->fd >= 0) close(l->fd);
    l->fd = -1;
}

void listener_free(struct listener *l)
{
    listener_close(l);
    gw_timer_free(l->resume);
    tls_unref(l->tls);
    free(l->addr);
    free(l->name);
    free(l);
}
