/* users.h -- who may use a listener: a users file of "name:hash" lines, the
 * password check against it, and the SASL PLAIN message a client logs in
 * with.
 *
 * The file.  One user per line, "name:hash"; blank lines and lines whose
 * first non-blank byte is '#' are skipped, and spaces, tabs and a CR around
 * a line are ignored.  A name is 1 to USERS_NAME_MAX bytes, none of them a
 * ':', a space or a control byte, and appears once.  A hash is a whole
 * crypt(3) hash as libxcrypt writes it (mkpasswd -m yescrypt, htpasswd -B):
 * yescrypt "$y$" is the one to use; the other schemes libxcrypt rates fit
 * for new passwords (crypt_checksalt: CRYPT_SALT_OK) are accepted too:
 * gost-yescrypt "$gy$", scrypt "$7$", bcrypt "$2b$" "$2y$" "$2a$",
 * sha512crypt "$6$".  Refused, with the scheme named: DES and the other
 * legacy schemes (descrypt, bsdicrypt "_", md5crypt "$1$", sunmd5 "$md5",
 * NT "$3$", sha1crypt, bcrypt "$2x$", and sha256crypt "$5$" where libxcrypt
 * counts it legacy, as Debian's does), a scheme this libcrypt lacks, a
 * setting without its hash, and a hash cut short.  At most USERS_MAX_BYTES.
 *
 * Errors: users_parse and users_load return NULL and write
 * "path:line: what is wrong" (or "path: ..." for the file as a whole) into
 * the caller's err; the message never quotes a hash.
 *
 * Checks: users_check hashes the password once with the user's hash as the
 * setting (crypt_rn) and compares the result with the hash in constant
 * time.  A name not in the file is hashed too, against a stand-in (the
 * first user's hash, else a fixed yescrypt hash) whose result is thrown
 * away, so the time taken does not tell which names exist.  One check
 * costs one hash at the hash's own cost on the calling thread (yescrypt at
 * mkpasswd's default cost: some 60 ms; "-R 3": some 15 ms).
 *
 * Passwords are never stored, logged or kept: the only copy is the crypt
 * work area of one call, wiped before it is freed.  Nothing here logs.
 *
 * Ownership: a users table is one allocation, owned by the caller
 * (users_free), immutable once made: any number of threads may check
 * against it at once.  It keeps names and hashes, not the file's text.
 */
#ifndef GW_USERS_H
#define GW_USERS_H

#include <stdbool.h>
#include <stddef.h>

#define USERS_MAX_BYTES (1u << 20)  /* a users file's size limit: 1 MiB */
#define USERS_NAME_MAX 250          /* a name's length limit (a key prefix fits) */

struct users;

/* A table from the text of the users file `path` (len bytes; path only names
 * it in errors).  NULL on error, with err filled ("out of memory" too). */
struct users *users_parse(const char *path, const char *text, size_t len, char *err,
                          size_t errlen);
/* The same, reading path. */
struct users *users_load(const char *path, char *err, size_t errlen);
void users_free(struct users *u);

/* How many users it holds. */
size_t users_count(const struct users *u);
/* Does it hold this name?  (For reports only: a check needs no lookup first.) */
bool users_has(const struct users *u, const char *name, size_t nlen);

enum users_result {
    USERS_MATCH,           /* the name is in the file and the password is its password */
    USERS_WRONG_PASSWORD,  /* the name is, the password is not */
    USERS_NO_SUCH_USER,    /* the name is not (hashed anyway, see above) */
    USERS_FAILED,          /* could not check: out of memory, or crypt failed */
};

/* Check name/password (neither NUL-terminated; bytes as the client sent
 * them).  A password with a NUL or of CRYPT_MAX_PASSPHRASE_SIZE bytes or
 * more is never right (USERS_WRONG_PASSWORD or USERS_NO_SUCH_USER, without
 * hashing). */
enum users_result users_check(const struct users *u, const char *name, size_t nlen,
                              const char *pass, size_t plen);

/* A SASL PLAIN message (RFC 4616): "authzid NUL authcid NUL passwd".  GW_OK:
 * *user and *pass point into msg (authcid and passwd, with their lengths).
 * GW_ERROR: malformed, and *why says how: not exactly two NULs, an empty
 * authcid or passwd, or an authzid that is neither empty nor the authcid
 * (acting as another user is not supported). */
int users_sasl_plain(const char *msg, size_t len, const char **user, size_t *ulen,
                     const char **pass, size_t *plen, const char **why);

#endif
