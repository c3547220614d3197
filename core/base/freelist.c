/* freelist.c -- see freelist.h. */
#include "freelist.h"

uint32_t freelist_trim(struct gw_freelist *fl, void (*release)(void *obj))
{
    uint32_t drop = fl->low < fl->n ? fl->low : fl->n;
    uint32_t keep = fl->n - drop;
    /* The top `keep` objects were taken and put back this period; the
     * `drop` below them were not touched. */
    void **link = &fl->head;
    for (uint32_t i = 0; i < keep; i++) link = (void **)*link;
    void *p = *link;
    *link = NULL;
    fl->n = keep;
    fl->low = keep;
    while (p) {
        void *next = *(void **)p;
        release(p);
        p = next;
    }
    return drop;
}

uint32_t freelist_drain(struct gw_freelist *fl, void (*release)(void *obj))
{
    uint32_t n = fl->n;
    void *p = fl->head;
    fl->head = NULL;
    fl->n = fl->low = 0;
    while (p) {
        void *next = *(void **)p;
        release(p);
        p = next;
    }
    return n;
}
