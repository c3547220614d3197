/* status.h -- the status codes every core module returns.
 *
 * GW_OK     the call did what it says.
 * GW_AGAIN  not enough input yet (parsers) or the socket would block (I/O);
 *           call again when more data or readiness arrives.  Nothing was lost.
 * GW_ERROR  the input or the peer is bad; the function says what it left behind.
 * GW_NOMEM  an allocation failed; state is unchanged.
 */
#ifndef GW_STATUS_H
#define GW_STATUS_H

enum gw_status { GW_OK = 0, GW_AGAIN = 1, GW_ERROR = -1, GW_NOMEM = -2 };

#define GW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
