/* lmatch.h -- Lua patterns whose matching work is bounded.
 *
 * Lua's string.find, string.match, string.gmatch and string.gsub run their
 * pattern matcher in C, where an instruction-count hook never fires, so one
 * backtracking pattern (string.rep("a", 3000):find(string.rep("a-", 12) ..
 * "b")) can hold a thread for hours.  This module is a matcher of its own,
 * written from the Lua 5.4 reference manual (section 6.4.1), and drop-in
 * replacements for those four functions built on it.
 *
 * Semantics: exactly those of Lua 5.4's string library -- the same results
 * for the same arguments (find's init and plain, gmatch's init and its
 * handling of empty matches, gsub's string/table/function replacement and
 * its max-replacements argument), the same recursion limit ("pattern too
 * complex") and capture limit (32), and the same error messages, argument
 * errors included.  A leading '^' anchors find, match and gsub; gmatch
 * reads it as a literal, like Lua.
 *
 * Budget: the matcher counts steps -- one per pattern item tried at one
 * subject position, one per subject byte a repetition, %b or plain search
 * goes over, one per byte a back-reference compares or a result copies,
 * and for a set "[...]" one more per 8 bytes of its text, which is scanned
 * for every byte tested -- so the steps of a call are proportional to the
 * work it does.  Each time at least LMATCH_CHUNK steps have piled up, and
 * once more at the end of the call for what is left, it calls `charge` with
 * their number.  `charge` returns true to let matching go on.  It returns
 * false to stop it: the call then raises the value `charge` pushed on the
 * stack, if it pushed one, or else "pattern matching budget exceeded".
 * `charge` may also raise an error itself (it propagates), but must not
 * yield, and when it returns true it must leave the stack as it found it.
 * A call stopped by an error (budget, malformed pattern, a replacement
 * function's error) skips the final charge of what is left.  One gmatch
 * iteration is one call.  Work done by Lua code a gsub calls (a replacement
 * function, an __index) is not counted here: it runs under whatever hook
 * the state has.
 *
 * Ownership: nothing is allocated from the C heap.  A call's state lives on
 * the C stack (a gmatch iterator's in a userdata its closure holds), results
 * are built in Lua strings and luaL_Buffers, and recursion is bounded like
 * Lua's own (200 nested items), so a Lua error may unwind any call at any
 * point without leaking.
 */
#ifndef GW_LMATCH_H
#define GW_LMATCH_H

#include <lua.h>
#include <stdbool.h>

/* The charge function is called once this many steps have piled up. */
#define LMATCH_CHUNK 1024

/* Asked for permission to go on after `steps` more matching steps (see
 * above); returns false to stop the call.  NULL means no limit. */
typedef bool (*lmatch_charge_fn)(lua_State *L, unsigned long steps);

/* Sets t.find, t.match, t.gmatch and t.gsub, for the table t at index idx,
 * to the bounded versions, each charging `charge`. */
void lmatch_register(lua_State *L, int idx, lmatch_charge_fn charge);

#endif
