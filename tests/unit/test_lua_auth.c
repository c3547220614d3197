/* test_lua_auth.c -- gateway.listen's auth through the Lua host
 * (core/script/lhost.c) to the resolver's auth op: a config with a users
 * file, what each listener answers, what is logged (never a password), a
 * bad users file failing the load with its path:line, and what lhost_config
 * and lhost_auth_users show.  Run from the repo root (it loads ./lua). */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/status.h"
#include "proxy/resolver.h"
#include "rt/settings.h"
#include "script/lhost.h"
#include "unit.h"

/* mkpasswd -m yescrypt -R 1: alice-pw, and "bob pw with spaces" */
#define ALICE "$y$j75$ojOuLtao.0dqneIYtXqAv1$peSRkpgH9pkxFrZa9jVYWcPbE1Bt7NOjaGJRAvx951A"
#define BOB "$y$j75$Hr68nhGiVcfgc3Z478Ixi0$Qu60pgUwyw6fykRzE0z/uutOUG18ehgMF1eIsamRWFD"

static char dir[] = "/tmp/gw-test-lua-auth-XXXXXX";

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static struct lhost *load(const char *config, char *err, size_t errlen)
{
    char path[256];
    write_file("gateway.lua", config);
    snprintf(path, sizeof path, "%s/gateway.lua", dir);
    err[0] = 0;
    return lhost_new(NULL, path, "lua", NULL, err, errlen);
}

/* stderr into a file while fn runs; returns what was written (malloc'd). */
static char *logged(void (*fn)(void *), void *arg)
{
    char path[256];
    snprintf(path, sizeof path, "%s/log", dir);
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    dup2(fd, 2);
    close(fd);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(path, "r");
    char *text = calloc(1, 65536);
    if (f && text) {
        size_t n = fread(text, 1, 65535, f);
        text[n] = 0;
    }
    if (f) fclose(f);
    return text;
}

static const char CONFIG[] =
    "gateway.listen { \"127.0.0.1:1\", name = \"sasl\", auth = \"users\" }\n"
    "gateway.listen { \"127.0.0.1:2\", name = \"open\" }\n"
    "gateway.listen { \"127.0.0.1:3\", auth = \"" "%s" "/users\" }\n"
    "memcache.route { default = memcache.internal {} }\n";

static struct lhost *good_host(void)
{
    write_file("users", "# demo\nalice:" ALICE "\nbob:" BOB "\n");
    char config[1024], err[512];
    snprintf(config, sizeof config, CONFIG, dir);
    struct lhost *h = load(config, err, sizeof err);
    if (!h) fprintf(stderr, "load: %s\n", err);
    return h;
}

static enum auth_verdict auth(struct lhost *h, const char *listener, const char *user,
                              const char *pass)
{
    return resolver_auth(lhost_resolver(h), listener, user, user ? strlen(user) : 0, pass,
                         pass ? strlen(pass) : 0);
}

static void test_verdicts(void)
{
    struct lhost *h = good_host();
    CHECK(h != NULL);
    if (!h) return;
    /* a listener with auth: only a good user/password goes on */
    CHECK_EQ_INT(auth(h, "sasl", NULL, NULL), AUTH_DENIED);
    CHECK_EQ_INT(auth(h, "sasl", "alice", "alice-pw"), AUTH_OK);
    CHECK_EQ_INT(auth(h, "sasl", "bob", "bob pw with spaces"), AUTH_OK);
    CHECK_EQ_INT(auth(h, "sasl", "alice", "bob pw with spaces"), AUTH_DENIED);
    CHECK_EQ_INT(auth(h, "sasl", "carol", "alice-pw"), AUTH_DENIED);
    /* the unnamed one is labelled by its address; an absolute path */
    CHECK_EQ_INT(auth(h, "127.0.0.1:3", NULL, NULL), AUTH_DENIED);
    CHECK_EQ_INT(auth(h, "127.0.0.1:3", "alice", "alice-pw"), AUTH_OK);
    /* listeners with no auth, or that the config does not know (-l) */
    CHECK_EQ_INT(auth(h, "open", NULL, NULL), AUTH_NONE);
    CHECK_EQ_INT(auth(h, "open", "alice", "alice-pw"), AUTH_NONE);
    CHECK_EQ_INT(auth(h, "127.0.0.1:9", NULL, NULL), AUTH_NONE);
    CHECK_EQ_INT(auth(h, NULL, NULL, NULL), AUTH_NONE);
    /* what the operator sees */
    const struct lhost_config *cfg = lhost_config(h);
    CHECK_EQ_INT(cfg->nlisten, 3);
    char want[256];
    snprintf(want, sizeof want, "%s/users", dir);
    CHECK(cfg->listen_auth[0] && !strcmp(cfg->listen_auth[0], want));
    CHECK(cfg->listen_auth[1] == NULL);
    CHECK(cfg->listen_auth[2] && !strcmp(cfg->listen_auth[2], want));
    CHECK_EQ_INT(lhost_auth_users(h, 0), 2);
    CHECK_EQ_INT(lhost_auth_users(h, 1), 0);
    CHECK_EQ_INT(lhost_auth_users(h, 2), 2);
    /* the users file is one of the config's files: read once, watched */
    bool tracked = false;
    for (int i = 0; i < cfg->nfiles; i++) tracked |= !strcmp(cfg->files[i], want);
    CHECK(tracked);
    /* a host made from those texts checks against the same bytes */
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/gateway.lua", dir);
    write_file("users", "alice:" BOB "\n"); /* a save after the load */
    struct lhost *w = lhost_new(NULL, path, "lua", cfg, err, sizeof err);
    CHECK(w != NULL);
    if (w) {
        CHECK_EQ_INT(auth(w, "sasl", "alice", "alice-pw"), AUTH_OK);
        CHECK_EQ_INT(lhost_auth_users(w, 0), 2);
        lhost_free(w);
    }
    lhost_free(h);
}

static struct lhost *log_host;

static void fail_twice(void *arg)
{
    const char *l = "127.0.0.1:3";
    auth(log_host, l, "alice", "Secret-One");
    auth(log_host, l, "alice", "Secret-Two");  /* counted, not logged */
    auth(log_host, l, "bob", "Secret-Three");  /* another user: logged */
    auth(log_host, l, "Secret-Four", "Secret-Five"); /* unknown: no name */
    auth(log_host, l, NULL, NULL);              /* not logging in yet: nothing */
    auth(log_host, l, "alice", "alice-pw");     /* good: nothing */
}

static void test_logs_no_password(void)
{
    log_host = good_host();
    CHECK(log_host != NULL);
    if (!log_host) return;
    log_level = LOG_LVL_INFO;
    char *text = logged(fail_twice, NULL);
    log_level = LOG_LVL_ERROR;
    CHECK(text != NULL);
    if (text) {
        CHECK(strstr(text, "WARN lhost.c:") != NULL);
        CHECK(strstr(text, "auth: listener 127.0.0.1:3: wrong password for user alice\n") != NULL);
        CHECK(strstr(text, "auth: listener 127.0.0.1:3: wrong password for user bob\n") != NULL);
        CHECK(strstr(text, "auth: listener 127.0.0.1:3: no such user (the name is not logged") != NULL);
        CHECK(strstr(text, "Secret") == NULL);
        CHECK(strstr(text, "alice-pw") == NULL);
        const char *first = strstr(text, "user alice");
        CHECK(first && !strstr(first + 1, "user alice")); /* once in the window */
        if (unit_current_failed) fprintf(stderr, "the log:\n%s", text);
    }
    free(text);
    lhost_free(log_host);
}

static void test_bad_users_files(void)
{
    static const struct {
        const char *users, *says;
    } cases[] = {
        { "alice:" ALICE "\n\nbob:$1$4CHoEdVK$DIJSYvAeeIuOYUn/Y3JlI0\n", "/users:3: user 'bob': md5crypt hashes are too weak" },
        { "alice\n", "/users:1: expected name:hash" },
        { "alice:" ALICE "\nalice:" BOB "\n", "/users:2: user 'alice' is given twice (first at line 1)" },
    };
    char config[1024], err[512];
    snprintf(config, sizeof config,
             "local x = 1\ngateway.listen { \"127.0.0.1:1\", name = \"sasl\", auth = \"users\" }\n"
             "memcache.route { default = memcache.internal {} }\n");
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        write_file("users", cases[i].users);
        struct lhost *h = load(config, err, sizeof err);
        CHECK(h == NULL);
        lhost_free(h);
        char want[512];
        snprintf(want, sizeof want, "%s%s", dir, cases[i].says);
        /* the users file's path:line first, then where the config named it */
        char where[300];
        snprintf(where, sizeof where, "(the users file of gateway.listen at %s/gateway.lua:2)", dir);
        if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, where)) {
            fprintf(stderr, "case %zu: got \"%s\", want \"%s ... %s\"\n", i, err, want, where);
            unit_current_failed = 1;
        }
    }
    /* no users file: the config's line */
    char path[256];
    snprintf(path, sizeof path, "%s/users", dir);
    unlink(path);
    struct lhost *h = load(config, err, sizeof err);
    CHECK(h == NULL);
    char want[512];
    snprintf(want, sizeof want, "%s/gateway.lua:2: gateway.listen: auth: cannot read the users "
             "file %s/users: No such file or directory", dir, dir);
    if (strcmp(err, want) != 0) {
        fprintf(stderr, "got \"%s\"\nwant \"%s\"\n", err, want);
        unit_current_failed = 1;
    }
}

int main(void)
{
    gw_settings = settings_defaults;
    log_level = LOG_LVL_ERROR; /* the failures test_verdicts makes are not news */
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_verdicts);
    RUN(test_logs_no_password);
    RUN(test_bad_users_files);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return unit_report("lua_auth");
}
