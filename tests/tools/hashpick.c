/* hashpick -- print the server index a distribution picks for each key.
 *
 *   hashpick MODE [--legacy|--modern] [--down I]... host:port[:weight] ...
 *
 * MODE is any `hash =` name (python-memcached, ketama, jump, dalli,
 * node-memcached, ...).  Keys are read from stdin one
 * per line (a trailing \r is dropped); for each, the 0-based index of the
 * chosen server is printed on its own line.  --legacy (the default) and
 * --modern pick python-memcached's 1.59 or >= 1.60 hash.  --down I marks
 * server I as down and switches to dist_pick_up, which prints -1 when
 * no server is found.  Specs use this to compare the C placement with real
 * clients and proxies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "place/dist.h"

#define MAX_SERVERS 1024

static bool down[MAX_SERVERS];

static bool is_up(void *ctx, uint32_t i)
{
    return !down[i];
}

static int usage(void)
{
    fprintf(stderr, "usage: hashpick MODE "
                    "[--legacy|--modern] [--down I]... host:port[:weight] ...\n");
    return 2;
}

/* Split "host:port[:weight]" in place (the host is everything before the
 * port, so it must not contain ':' itself). */
static int parse_server(char *arg, struct hash_server *s)
{
    char *port = strchr(arg, ':'), *weight, *end;
    unsigned long v;

    if (port == NULL || port == arg)
        return -1;
    *port++ = '\0';
    weight = strchr(port, ':');
    if (weight)
        *weight++ = '\0';
    v = strtoul(port, &end, 10);
    if (*port == '\0' || *end != '\0' || v == 0 || v > 65535)
        return -1;
    s->host = arg;
    s->port = (uint16_t)v;
    s->weight = 1;
    if (weight) {
        v = strtoul(weight, &end, 10);
        if (*weight == '\0' || *end != '\0' || v == 0 || v > UINT32_MAX)
            return -1;
        s->weight = (uint32_t)v;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct hash_server servers[MAX_SERVERS];
    const struct dist_mode *mode;
    bool legacy = true, any_down = false;
    uint32_t n = 0;
    struct hash_dist d;
    char err[256], *line = NULL;
    size_t cap = 0;
    ssize_t len;

    if (argc < 3 || (mode = dist_mode_find(argv[1])) == NULL)
        return usage();
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--legacy") == 0) {
            legacy = true;
        } else if (strcmp(argv[i], "--modern") == 0) {
            legacy = false;
        } else if (strcmp(argv[i], "--down") == 0 && i + 1 < argc) {
            long v = strtol(argv[++i], NULL, 10);

            if (v < 0 || v >= MAX_SERVERS)
                return usage();
            down[v] = any_down = true;
        } else if (n < MAX_SERVERS && parse_server(argv[i], &servers[n]) == 0) {
            n++;
        } else {
            fprintf(stderr, "hashpick: bad argument '%s'\n", argv[i]);
            return usage();
        }
    }
    if (dist_build(&d, mode, legacy, servers, n, err, sizeof(err)) !=
        GW_OK) {
        fprintf(stderr, "hashpick: %s\n", err);
        return 1;
    }

    while ((len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (any_down)
            printf("%d\n", (int)dist_pick_up(&d, line, (size_t)len,
                                                  is_up, NULL));
        else
            printf("%u\n", (unsigned)dist_pick(&d, line, (size_t)len));
    }
    free(line);
    dist_free(&d);
    return ferror(stdout) ? 1 : 0;
}
