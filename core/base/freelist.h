/* freelist.h -- a bounded free list that gives back what it does not use.
 *
 * Recycles objects of one size on one thread, so the busy path does not
 * call malloc, without keeping a burst's worth of memory for ever:
 *
 *   bound  a list holds at most `max` objects: freelist_put refuses one
 *          more and the caller frees it.  The bound caps what an idle
 *          thread can keep at max * size, whatever load came before;
 *   decay  freelist_trim, called once a period (the worker's housekeeping
 *          timer, every second), frees the objects that stayed on the list
 *          for the whole period since the previous call: its low-water
 *          mark.  A steady load keeps what it cycles through (the list dips
 *          near empty every period, so nothing is trimmed); after a burst
 *          the list is empty within two periods.  The coldest objects go
 *          first: the list is a stack and those at its bottom are the ones
 *          nobody touched.
 *
 * An object's first word is the link while it is on the list; the rest of
 * it is left as it was.  A list belongs to one thread (no locking).
 */
#ifndef GW_FREELIST_H
#define GW_FREELIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_freelist {
    void *head;
    uint32_t n;      /* objects on the list */
    uint32_t max;    /* at most this many */
    uint32_t low;    /* fewest on the list since the last trim */
};

#define GW_FREELIST_INIT(bound) { .head = NULL, .n = 0, .max = (bound), .low = 0 }

/* An object from the list, or NULL when it is empty (the caller allocates). */
static inline void *freelist_get(struct gw_freelist *fl)
{
    void *p = fl->head;
    if (!p) return NULL;
    fl->head = *(void **)p;
    if (--fl->n < fl->low) fl->low = fl->n;
    return p;
}

/* Keep p for reuse.  false when the list is full: the caller frees p. */
static inline bool freelist_put(struct gw_freelist *fl, void *p)
{
    if (fl->n >= fl->max) return false;
    *(void **)p = fl->head;
    fl->head = p;
    fl->n++;
    return true;
}

/* Take off the list the objects that stayed on it since the last call
 * (the low-water mark), coldest first, and hand each to release, which
 * frees it.  Returns how many. */
uint32_t freelist_trim(struct gw_freelist *fl, void (*release)(void *obj));
/* Every object on the list (thread exit).  Returns how many. */
uint32_t freelist_drain(struct gw_freelist *fl, void (*release)(void *obj));

#endif
