/* buf.h -- reference-counted byte buffers, a socket reader and a writev queue.
 *
 * Values are never copied on their way through the gateway: a request or
 * reply keeps a reference on the buffer its bytes were read into, and the
 * bytes are written out from there with writev.
 *
 * gw_buf   refs counts the owners.  The reader that fills a buffer is one
 *          owner; each request or reply that points into it takes another.
 *          The last buf_unref frees it, into the calling thread's free list
 *          when it has the default size (GW_BUF_SIZE), so steady traffic
 *          does not call malloc.  Use a buffer on one thread at a time.
 * gw_rbuf  the unconsumed bytes [pos, end) of the buffer a socket is read
 *          into.  rbuf_read only appends while the buffer has room, so bytes
 *          others point at never move; when it is full, the unconsumed tail
 *          is carried to a fresh buffer.  An rbuf may hold no buffer at all
 *          (b NULL): the next read takes one.  rbuf_release gives the
 *          reader's reference back, so a connection with nothing unconsumed
 *          can drop its buffer while it is idle; requests still pointing
 *          into it keep it alive.
 * gw_oq    a queue of iovecs written with writev.  It does not own what the
 *          iovecs point at: the owner keeps that alive until oq_write reports
 *          the bytes written.  Its iovec array is taken on the first push
 *          and given back by oq_free, so an idle connection holds none.
 *
 * The free lists (freelist.h) are per thread: at most 1024 buffers (16 MiB)
 * and 1024 first-size iovec arrays (1 KiB each).  The bound is what lets
 * every request/response client give its buffer back after each reply and
 * take one again on its next request without malloc, for up to 1024 busy
 * connections of a thread at once; past it a buffer is freed at once.
 * buf_cache_trim, called every second, frees what stayed unused on them
 * for a whole second, so after a burst they empty again and idle memory
 * goes back to malloc (and the caller, with malloc_trim, to the system).
 */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "status.h"

#define GW_BUF_SIZE (16 * 1024)

struct gw_buf {
    uint32_t refs;
    uint32_t cap;
    char data[];
};

/* A buffer of at least cap bytes with refs = 1, or NULL. */
struct gw_buf *buf_new(size_t cap);
static inline void buf_ref(struct gw_buf *b) { b->refs++; }
void buf_unref(struct gw_buf *b);
/* Free what stayed unused on this thread's free lists since the last call
 * (freelist_trim).  Returns the bytes this thread's buffers and iovec
 * arrays gave back to malloc since the last call: these, and those freed
 * at once because a list was full or they were not of the default size. */
size_t buf_cache_trim(void);
/* Free everything on this thread's free lists (at thread exit). */
void buf_cache_drain(void);

struct gw_rbuf {
    struct gw_buf *b;
    uint32_t pos;
    uint32_t end;
};

static inline size_t rbuf_len(const struct gw_rbuf *r) { return r->end - r->pos; }
static inline const char *rbuf_data(const struct gw_rbuf *r) { return r->b->data + r->pos; }

/* Read what fd has into r, making room for at least `need` unconsumed bytes
 * in all (0: any).  GW_OK: *n bytes arrived; GW_AGAIN: nothing to read;
 * GW_ERROR: the peer closed (*n = 0) or a socket error; GW_NOMEM. */
int rbuf_read(struct gw_rbuf *r, int fd, size_t need, size_t *n);
/* Drop the reader's reference on its buffer (unconsumed bytes are lost);
 * r then holds none. */
void rbuf_release(struct gw_rbuf *r);
/* The last read filled the buffer: the socket may hold more. */
static inline bool rbuf_full(const struct gw_rbuf *r) { return r->b && r->end == r->b->cap; }
/* The same in two steps, for a transport that reads on its own (TLS):
 * rbuf_reserve makes the room rbuf_read would and returns where to put
 * up to *room bytes (NULL: out of memory); rbuf_commit appends the n bytes
 * that were put there. */
char *rbuf_reserve(struct gw_rbuf *r, size_t need, size_t *room);
static inline void rbuf_commit(struct gw_rbuf *r, size_t n) { r->end += (uint32_t)n; }

struct gw_oq {
    struct iovec *iov;
    uint32_t head;      /* first iovec not fully written */
    uint32_t count;     /* iovecs in the queue, from head */
    uint32_t cap;
    size_t bytes;       /* bytes queued */
};

/* Queue len bytes at p.  GW_NOMEM if the queue cannot grow. */
int oq_push(struct gw_oq *q, const void *p, size_t len);
/* writev as much as the socket takes.  *written is the byte count.
 * GW_OK: the queue is empty; GW_AGAIN: bytes remain; GW_ERROR: socket error. */
int oq_write(struct gw_oq *q, int fd, size_t *written);
/* Drop the first n queued bytes (written by other means than oq_write). */
void oq_consume(struct gw_oq *q, size_t n);
void oq_clear(struct gw_oq *q);
/* Empty the queue and give its iovec array back (to this thread's free
 * list when it has the first size, else to malloc).  The queue stays
 * usable: the next push takes an array again. */
void oq_free(struct gw_oq *q);

#endif
