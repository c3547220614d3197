/* loop.h -- the event loop, libev behind one callback shape.
 *
 * Every watcher calls  void fn(void *data, int events)  with the data given
 * at creation.  Nothing outside loop.c includes <ev.h>.
 *
 * Ownership: watchers are created stopped-or-started as documented, belong
 * to one loop and one thread, and are freed with their *_free function,
 * which stops them first.  gw_async_send is the one call that is safe from
 * another thread.
 */
#ifndef GW_LOOP_H
#define GW_LOOP_H

enum { GW_EV_READ = 1, GW_EV_WRITE = 2, GW_EV_TIMER = 4 };

typedef void (*gw_event_fn)(void *data, int events);

struct gw_loop;
struct gw_io;
struct gw_timer;
struct gw_hook;     /* runs once per loop iteration, before it blocks */
struct gw_async;    /* wakes a loop from another thread */
struct gw_signal;
struct gw_stat;     /* notices changes to a file's attributes (inotify or polling) */

struct gw_loop *gw_loop_default(void);   /* the main thread's loop */
struct gw_loop *gw_loop_new(void);
void gw_loop_free(struct gw_loop *loop);
void gw_loop_run(struct gw_loop *loop);
/* One iteration: handle what is ready, waiting for something if `wait`
 * (tests drive a loop step by step with it). */
void gw_loop_once(struct gw_loop *loop, int wait);
void gw_loop_break(struct gw_loop *loop);
/* Seconds: the time the loop last woke (no system call; steady for one
 * iteration), and the same clock read now. */
double gw_loop_now(struct gw_loop *loop);
double gw_loop_clock(struct gw_loop *loop);

/* An I/O watcher on fd, started for the given events (0 = stopped). */
struct gw_io *gw_io_new(struct gw_loop *loop, int fd, int events, gw_event_fn fn, void *data);
/* Change the events watched; a no-op when unchanged. */
void gw_io_set(struct gw_io *io, int events);
void gw_io_free(struct gw_io *io);

/* Room for an I/O watcher inside its owner, for objects there are many of
 * (client connections): one allocation fewer each, and no pointer.  Opaque;
 * loop.c checks at compile time that a watcher fits. */
struct gw_io_slot { void *opaque[8]; };
static inline struct gw_io *gw_io_in(struct gw_io_slot *slot) { return (struct gw_io *)(void *)slot; }
/* As gw_io_new, in slot, which its owner keeps in place until gw_io_stop;
 * returns gw_io_in(slot). */
struct gw_io *gw_io_embed(struct gw_io_slot *slot, struct gw_loop *loop, int fd, int events,
                          gw_event_fn fn, void *data);
/* Stop an embedded watcher for good (its storage is its owner's). */
void gw_io_stop(struct gw_io *io);

/* A one-shot timer, created stopped. */
struct gw_timer *gw_timer_new(struct gw_loop *loop, gw_event_fn fn, void *data);
void gw_timer_start(struct gw_timer *t, double after);   /* (re)arms */
void gw_timer_stop(struct gw_timer *t);
int gw_timer_active(const struct gw_timer *t);
void gw_timer_free(struct gw_timer *t);

/* Called before the loop blocks for I/O, every iteration (started). */
struct gw_hook *gw_hook_new(struct gw_loop *loop, gw_event_fn fn, void *data);
void gw_hook_free(struct gw_hook *h);

struct gw_async *gw_async_new(struct gw_loop *loop, gw_event_fn fn, void *data);
void gw_async_send(struct gw_async *a);
void gw_async_free(struct gw_async *a);

struct gw_signal *gw_signal_new(struct gw_loop *loop, int signum, gw_event_fn fn, void *data);
void gw_signal_free(struct gw_signal *s);

/* Watch path (copied) for changes: created, deleted, written, replaced.
 * interval: seconds between polls where inotify is not available. */
struct gw_stat *gw_stat_new(struct gw_loop *loop, const char *path, double interval,
                            gw_event_fn fn, void *data);
void gw_stat_free(struct gw_stat *s);

#endif
