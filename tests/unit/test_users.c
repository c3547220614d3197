/* test_users.c -- users files and password checks (core/base/users.c): the
 * schemes taken and refused, errors as path:line, every check against
 * hashes mkpasswd made, unknown names hashed too, and SASL PLAIN. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/status.h"
#include "base/users.h"
#include "unit.h"

/* Made with mkpasswd (whois), cheap costs so the tests run fast. */
#define ALICE "$y$j75$ojOuLtao.0dqneIYtXqAv1$peSRkpgH9pkxFrZa9jVYWcPbE1Bt7NOjaGJRAvx951A" /* alice-pw */
#define BOB "$y$j75$Hr68nhGiVcfgc3Z478Ixi0$Qu60pgUwyw6fykRzE0z/uutOUG18ehgMF1eIsamRWFD" /* "bob pw with spaces" */
#define CAROL "$y$j7T$6tFum8Am.ZK.GC1DMG7Es1$uypQx3Zfie6QWYOTrcdR8i6nWhgRbMeGFiEKtVSWcd3" /* carol, -R 3 */
#define DAVE "$2b$05$RumzvBH.JFaFOB3/D2.38eQ9/blB5eAYfLzu.kLBdrgFXC7IWi4na" /* dave-pw */
#define ERIN "$6$rounds=1000$hDG/nHU682/9PFDS$BbSGX/tnTWewBzB9rN/dKVxYcuMYYlm0HCy5uo.ItOQElVkPzzQRF7A5PptEHG6MrHzS7KH3EwIvZsOiwe8vO1" /* erin-pw */
#define FRANK "$gy$j75$Alpk4pCCXDcoS7g/oUAEu.$zxlcd5keeIfKzfPjib3DEpc4kyQWIgLTQzWN8K8JJk." /* frank-pw */
#define GINA "$7$BU..../....kODrwXtPcHh0Jo7AYBjHP.$NW6zIJlPStG3L5lSQeMDNEBVEsz4vdywsLgG1UuwIf7" /* gina-pw */
#define IVY "$2a$05$MeMrAdp91C/HIimhu63QTeyiEqmbcetgpsj.VvdtXHI69h0jDu0JG" /* ivy-pw */
#define ZOE "$y$j75$HSokuQMmMFDNcWK9YMGfc1$earc0CadcO0u6JO.HzT0g.7qZS.rJUk2bs6HsJavTB3" /* "caf\xc3\xa9" */

static struct users *parse(const char *text, char *err, size_t errlen)
{
    err[0] = 0;
    return users_parse("/etc/gw/users", text, strlen(text), err, errlen);
}

static enum users_result check(const struct users *u, const char *name, const char *pass)
{
    return users_check(u, name, strlen(name), pass, strlen(pass));
}

static void test_every_strong_scheme_checks(void)
{
    char err[300];
    struct users *u = parse("# the demo users\n"
                            "\n"
                            "alice:" ALICE "\n"
                            "  bob:" BOB "  \r\n"
                            "\tcarol:" CAROL "\n"
                            "dave:" DAVE "\n"
                            "   # indented comment\n"
                            "erin:" ERIN "\n"
                            "frank:" FRANK "\n"
                            "gina:" GINA "\n"
                            "ivy:" IVY "\n"
                            "zoe@example.com:" ZOE, /* no newline at the end */
                            err, sizeof err);
    CHECK(u != NULL);
    if (!u) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK_EQ_INT(users_count(u), 9);
    CHECK_EQ_INT(check(u, "alice", "alice-pw"), USERS_MATCH);
    CHECK_EQ_INT(check(u, "bob", "bob pw with spaces"), USERS_MATCH);
    CHECK_EQ_INT(check(u, "carol", "carol"), USERS_MATCH);
    CHECK_EQ_INT(check(u, "dave", "dave-pw"), USERS_MATCH);
    CHECK_EQ_INT(check(u, "erin", "erin-pw"), USERS_MATCH);
    CHECK_EQ_INT(check(u, "frank", "frank-pw"), USERS_MATCH);
    CHECK_EQ_INT(check(u, "gina", "gina-pw"), USERS_MATCH);
    CHECK_EQ_INT(check(u, "ivy", "ivy-pw"), USERS_MATCH);
    CHECK_EQ_INT(check(u, "zoe@example.com", "caf\xc3\xa9"), USERS_MATCH);
    /* wrong passwords: another user's, a prefix, one more byte, empty, case */
    CHECK_EQ_INT(check(u, "alice", "dave-pw"), USERS_WRONG_PASSWORD);
    CHECK_EQ_INT(check(u, "alice", "alice-p"), USERS_WRONG_PASSWORD);
    CHECK_EQ_INT(check(u, "alice", "alice-pw "), USERS_WRONG_PASSWORD);
    CHECK_EQ_INT(check(u, "alice", ""), USERS_WRONG_PASSWORD);
    CHECK_EQ_INT(check(u, "alice", "ALICE-PW"), USERS_WRONG_PASSWORD);
    CHECK_EQ_INT(check(u, "dave", "dave-pX"), USERS_WRONG_PASSWORD);
    CHECK_EQ_INT(check(u, "erin", "erin-pW"), USERS_WRONG_PASSWORD);
    CHECK_EQ_INT(check(u, "gina", "gina"), USERS_WRONG_PASSWORD);
    CHECK_EQ_INT(check(u, "zoe@example.com", "cafe"), USERS_WRONG_PASSWORD);
    /* the password is bytes with a length: a NUL is not the end */
    CHECK_EQ_INT(users_check(u, "alice", 5, "alice-pw\0x", 10), USERS_WRONG_PASSWORD);
    /* names: exact bytes, no prefix, no case folding */
    CHECK_EQ_INT(check(u, "Alice", "alice-pw"), USERS_NO_SUCH_USER);
    CHECK_EQ_INT(check(u, "alic", "alice-pw"), USERS_NO_SUCH_USER);
    CHECK_EQ_INT(check(u, "alicee", "alice-pw"), USERS_NO_SUCH_USER);
    CHECK_EQ_INT(check(u, "", "alice-pw"), USERS_NO_SUCH_USER);
    CHECK_EQ_INT(users_check(u, "alice", 5, "alice-pw", 8), USERS_MATCH);
    CHECK_EQ_INT(users_check(u, "alice:x", 5, "alice-pw", 8), USERS_MATCH); /* len counts */
    /* an unknown name never matches, even with the stand-in's password */
    CHECK_EQ_INT(check(u, "mallory", "alice-pw"), USERS_NO_SUCH_USER);
    CHECK(users_has(u, "gina", 4));
    CHECK(!users_has(u, "gin", 3));
    /* a password too long for crypt is never right */
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK_EQ_INT(check(u, "alice", big), USERS_WRONG_PASSWORD);
    CHECK_EQ_INT(check(u, "nobody", big), USERS_NO_SUCH_USER);
    users_free(u);
}

static void test_empty_files(void)
{
    char err[300];
    const char *empties[] = { "", "\n", "# nobody yet\n", "\n\n  \t\n# x\n" };
    for (size_t i = 0; i < GW_ARRAY_LEN(empties); i++) {
        struct users *u = parse(empties[i], err, sizeof err);
        CHECK(u != NULL);
        if (!u) continue;
        CHECK_EQ_INT(users_count(u), 0);
        /* hashed against the fixed stand-in, and refused */
        CHECK_EQ_INT(check(u, "alice", "alice-pw"), USERS_NO_SUCH_USER);
        users_free(u);
    }
}

/* Each bad line, as line 3 of a file, with what the error must say. */
static void test_errors_name_path_line(void)
{
    static const struct {
        const char *line, *says;
    } cases[] = {
        { "alice", "expected name:hash (no ':' on the line)" },
        { ":" ALICE, "the user name is empty" },
        { "al ice:" ALICE, "the user name has a space or a control byte (byte 3)" },
        { "alice :" ALICE, "the user name has a space or a control byte (byte 6)" },
        { "al\x01ice:" ALICE, "space or a control byte" },
        { "mallory:", "user 'mallory': no hash after the ':'" },
        { "mallory:" ALICE ":0:99999:7:::", "more than one ':' (expected name:hash" },
        { "mallory:D82Wtqx8JSCIg", "user 'mallory': a DES crypt hash: too weak" },
        { "mallory:_J9..qWebfl4i7a0nt4w", "bsdicrypt (extended DES) hashes are too weak" },
        { "mallory:$1$4CHoEdVK$DIJSYvAeeIuOYUn/Y3JlI0", "md5crypt hashes are too weak" },
        { "mallory:$3$$0a9195a4bf04d808d098cf44a165186e", "NT hashes are too weak" },
        { "mallory:$md5,rounds=71990$ZYVC.12v$$uGXvQUNoeGqVUiyN1WUGf0", "sunmd5 hashes are too weak" },
        { "mallory:$2x$05$RumzvBH.JFaFOB3/D2.38eQ9/blB5eAYfLzu.kLBdrgFXC7IWi4na", "bcrypt $2x$" },
        { "mallory:!", "not a crypt(3) hash (byte 1 is not one crypt writes)" },
        { "mallory:*", "not a crypt(3) hash" },
        { "mallory:$z$abc$def", "not a crypt(3) hash (an unknown scheme)" },
        { "mallory:plain-password", "not a crypt(3) hash (byte 6" },
        { "mallory:$y$j75$ojOuLtao.0dqneIYtXqAv1$", "a yescrypt setting without its hash" },
        { "mallory:$y$j75$ojOuLtao.0dqneIYtXqAv1", "the yescrypt hash is cut short" },
        { "mallory:$y$j75$ojOuLtao.0dqneIYtXqAv1$peSRkpgH9pkxFrZa9jVYWcPbE1Bt7NOjaGJRAvx951",
          "cut short or too long (its last part has 42 characters, not 43)" },
        { "mallory:$2b$05$RumzvBH.JFaFOB3/D2.38eQ9/blB5eAYfLzu.kLBdrgFXC7IWi4n", "bcrypt hash is cut short" },
        { "mallory:$6$salt$", "sha512crypt setting without its hash" },
        { "mallory:" ALICE " # no comments after a hash", "(byte 74 is not one crypt writes)" },
    };
    char err[400], text[600];
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        snprintf(text, sizeof text, "# users\nalice:%s\n%s\nbob:%s\n", ALICE, cases[i].line, BOB);
        struct users *u = parse(text, err, sizeof err);
        CHECK(u == NULL);
        users_free(u);
        if (strncmp(err, "/etc/gw/users:3: ", 17) != 0 || !strstr(err, cases[i].says)) {
            fprintf(stderr, "case %zu (%s): got \"%s\", want /etc/gw/users:3: ... %s\n", i,
                    cases[i].line, err, cases[i].says);
            unit_current_failed = 1;
        }
        /* a message never quotes a hash */
        CHECK(!strstr(err, "ojOuLtao") && !strstr(err, "RumzvBH") && !strstr(err, "4CHoEdVK"));
    }
}

static void test_sha256_and_duplicates(void)
{
    char err[300];
    /* sha256crypt: taken where libcrypt rates it fit, else refused by name */
    struct users *u = parse("h:$5$3DhuTTC0iyF1zMYj$Sa1y2gXhj0A1kvfusCqC.vkBet/P73UzmXg0N4qPZn2\n",
                            err, sizeof err);
    if (u) CHECK_EQ_INT(check(u, "h", "h"), USERS_MATCH);
    else CHECK(strstr(err, "/etc/gw/users:1: user 'h': sha256crypt hashes are too weak") == err);
    users_free(u);
    /* a name given twice: the second line, and where the first was */
    u = parse("alice:" ALICE "\nbob:" BOB "\n\nzed:" BOB "\nbob:" CAROL "\nbob:" BOB "\nzed:" ALICE "\n",
              err, sizeof err);
    CHECK(u == NULL);
    CHECK(!strcmp(err, "/etc/gw/users:5: user 'bob' is given twice (first at line 2)"));
    users_free(u);
}

static void test_limits(void)
{
    char err[300];
    /* a name of 250 bytes is fine, 251 is not */
    char text[1000];
    memset(text, 'n', 250);
    snprintf(text + 250, sizeof text - 250, ":%s\n", ALICE);
    struct users *u = parse(text, err, sizeof err);
    CHECK(u != NULL);
    if (u) {
        CHECK_EQ_INT(users_count(u), 1);
        CHECK(users_has(u, text, 250));
    }
    users_free(u);
    memset(text, 'n', 251);
    snprintf(text + 251, sizeof text - 251, ":%s\n", ALICE);
    u = parse(text, err, sizeof err);
    CHECK(u == NULL);
    CHECK(strstr(err, "/etc/gw/users:1: the user name is longer than 250 bytes") == err);
    /* the file's size */
    size_t big = USERS_MAX_BYTES + 1;
    char *huge = malloc(big);
    CHECK(huge != NULL);
    if (!huge) return;
    memset(huge, '\n', big);
    u = users_parse("/etc/gw/users", huge, big, err, sizeof err);
    CHECK(u == NULL);
    CHECK(strstr(err, "/etc/gw/users: too large for a users file") == err);
    /* ... and a NUL inside is a byte like any other (a bad one) */
    u = users_parse("/etc/gw/users", "al\0ce:x\n", 8, err, sizeof err);
    CHECK(u == NULL);
    CHECK(strstr(err, "/etc/gw/users:1: the user name has a space or a control byte") == err);
    free(huge);
}

static void test_load(void)
{
    char path[] = "/tmp/gw-test-users-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    const char *text = "alice:" ALICE "\ndave:" DAVE "\n";
    CHECK_EQ_INT(write(fd, text, strlen(text)), strlen(text));
    close(fd);
    char err[300];
    struct users *u = users_load(path, err, sizeof err);
    CHECK(u != NULL);
    if (u) {
        CHECK_EQ_INT(users_count(u), 2);
        CHECK_EQ_INT(check(u, "dave", "dave-pw"), USERS_MATCH);
    }
    users_free(u);
    unlink(path);
    u = users_load(path, err, sizeof err);
    CHECK(u == NULL);
    CHECK(strstr(err, path) == err && strstr(err, "No such file"));
    u = users_load("/tmp", err, sizeof err);
    CHECK(u == NULL);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double fastest(const struct users *u, const char *name, const char *pass)
{
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        double t0 = now();
        check(u, name, pass);
        double t = now() - t0;
        if (t < best) best = t;
    }
    return best;
}

/* An unknown name costs a hash like a known one: the first user's, so the
 * same scheme and cost (carol's -R 3 is some 15 ms, a no-hash answer some
 * microseconds). */
static void test_unknown_names_take_as_long(void)
{
    char err[300];
    struct users *u = parse("carol:" CAROL "\nalice:" ALICE "\n", err, sizeof err);
    CHECK(u != NULL);
    if (!u) return;
    double known = fastest(u, "carol", "wrong"), unknown = fastest(u, "mallory", "wrong");
    if (!(unknown > known * 0.5 && unknown < known * 2)) {
        fprintf(stderr, "known name %.2f ms, unknown %.2f ms\n", known * 1e3, unknown * 1e3);
        unit_current_failed = 1;
    }
    users_free(u);
}

static void test_sasl_plain(void)
{
    const char *user, *pass, *why = NULL;
    size_t ulen, plen;
    /* no authzid */
    CHECK_EQ_INT(users_sasl_plain("\0alice\0alice-pw", 15, &user, &ulen, &pass, &plen, &why), GW_OK);
    CHECK_EQ_MEM(user, ulen, "alice");
    CHECK_EQ_MEM(pass, plen, "alice-pw");
    /* the authzid the authcid itself */
    CHECK_EQ_INT(users_sasl_plain("bob\0bob\0p w", 11, &user, &ulen, &pass, &plen, &why), GW_OK);
    CHECK_EQ_MEM(user, ulen, "bob");
    CHECK_EQ_MEM(pass, plen, "p w");
    /* RFC 4616's own example */
    CHECK_EQ_INT(users_sasl_plain("\0tim\0tanstaaftanstaaf", 21, &user, &ulen, &pass, &plen, &why),
                 GW_OK);
    CHECK_EQ_MEM(user, ulen, "tim");
    CHECK_EQ_MEM(pass, plen, "tanstaaftanstaaf");
    static const struct {
        const char *msg;
        size_t len;
        const char *why;
    } bad[] = {
        { "", 0, "expected authzid NUL authcid NUL password" },
        { "alice", 5, "expected authzid NUL authcid NUL password" },
        { "\0alice", 6, "expected authzid NUL authcid NUL password" },
        { "\0alice\0pw\0", 10, "more than two NULs" },
        { "\0\0pw", 4, "empty user name (authcid)" },
        { "\0alice\0", 7, "empty password" },
        { "admin\0alice\0pw", 14, "the authzid is not the authcid" },
        { "alic\0alice\0pw", 13, "the authzid is not the authcid" },
        { "alicee\0alice\0pw", 15, "the authzid is not the authcid" },
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        why = NULL;
        CHECK_EQ_INT(users_sasl_plain(bad[i].msg, bad[i].len, &user, &ulen, &pass, &plen, &why),
                     GW_ERROR);
        if (!why || !strstr(why, bad[i].why)) {
            fprintf(stderr, "sasl case %zu: got \"%s\", want \"%s\"\n", i, why ? why : "(null)",
                    bad[i].why);
            unit_current_failed = 1;
        }
    }
}

int main(void)
{
    RUN(test_every_strong_scheme_checks);
    RUN(test_empty_files);
    RUN(test_errors_name_path_line);
    RUN(test_sha256_and_duplicates);
    RUN(test_limits);
    RUN(test_load);
    RUN(test_unknown_names_take_as_long);
    RUN(test_sasl_plain);
    return unit_report("users");
}
