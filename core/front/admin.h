/* admin.h -- the commands the gateway answers itself, from its own state:
 * version, verbosity and stats (stats, stats settings, stats reset, and
 * the empty answers memcached tools expect for items/slabs/sizes/conns),
 * and the meta no-op mn.
 *
 * They are answered on the spot on the client's thread: stats sums every
 * thread's counters (rt.h) and reads the config status reload publishes.
 */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include <stdbool.h>

#include "codec/proto.h"

struct gw_req;

bool admin_answers(enum mc_cmd cmd);
/* Set r's reply. */
void admin_answer(struct gw_req *r);

#endif
