/* version.h -- the gateway's version, and what it answers to `version`.
 *
 * Clients and test tools (memcapable among them) read the `version` reply
 * to decide which protocol features a server has, so the gateway answers
 * with the memcached release whose text protocol it speaks, tagged with its
 * own version: "1.6.18-gateway-0.1.0". */
#ifndef GW_VERSION_H
#define GW_VERSION_H
#define GW_VERSION "0.1.0"
#define GW_PROTOCOL_VERSION "1.6.18"
#define GW_VERSION_REPLY GW_PROTOCOL_VERSION "-gateway-" GW_VERSION
#endif
