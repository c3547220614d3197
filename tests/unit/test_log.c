/* test_log.c -- the log (core/base/log.c): the line format, and rate
 * limiting of repeated errors; and the peer addresses log lines name
 * (core/base/net.c). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/net.h"
#include "unit.h"

/* --- capturing stderr ----------------------------------------------------- */

static int saved_stderr = -1;
static FILE *capture_file;
static char captured[65536];

static void capture_begin(void)
{
    fflush(stderr);
    capture_file = tmpfile();
    saved_stderr = dup(STDERR_FILENO);
    dup2(fileno(capture_file), STDERR_FILENO);
}

/* Stop capturing; what was written is in `captured`. */
static const char *capture_end(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    rewind(capture_file);
    size_t n = fread(captured, 1, sizeof captured - 1, capture_file);
    captured[n] = 0;
    fclose(capture_file);
    return captured;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static int count_of(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

/* Does line (up to its '\n') start "YYYY-MM-DDTHH:MM:SS.mmmZ LEVEL test_log.c:N: "? */
static int has_prefix(const char *line, const char *level)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        char c = line[i];
        if (shape[i] == 'd' ? (c < '0' || c > '9') : c != shape[i]) return 0;
    }
    line += sizeof shape - 1;
    size_t l = strlen(level);
    if (strncmp(line, level, l) != 0 || line[l] != ' ') return 0;
    line += l + 1;
    if (strncmp(line, "test_log.c:", 11) != 0) return 0;
    line += 11;
    if (*line < '0' || *line > '9') return 0;
    while (*line >= '0' && *line <= '9') line++;
    return line[0] == ':' && line[1] == ' ';
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&ts, NULL);
}

/* --- the line ------------------------------------------------------------- */

static void test_line_format(void)
{
    capture_begin();
    LOG_WARN("hello %d", 42);
    const char *out = capture_end();
    CHECK(has_prefix(out, "WARN"));
    CHECK(strstr(out, ": hello 42\n") != NULL);
    CHECK_EQ_INT(count_lines(out), 1);
}

/* A traceback: each of its lines gets the prefix, in one write. */
static void test_multiline(void)
{
    capture_begin();
    LOG_ERROR("lua error: boom\nstack traceback:\n\tx.lua:1: in main chunk\n");
    const char *out = capture_end();
    CHECK_EQ_INT(count_lines(out), 3);
    for (const char *l = out; *l; l = strchr(l, '\n') + 1) CHECK(has_prefix(l, "ERROR"));
    CHECK(strstr(out, ": \tx.lua:1: in main chunk\n") != NULL);
}

static void test_level_filter(void)
{
    capture_begin();
    LOG_VERBOSE("not shown at the default level");
    const char *out = capture_end();
    CHECK_EQ_INT(strlen(out), 0);
}

/* --- rate limiting -------------------------------------------------------- */

static int evaluated;

static const char *counted_arg(void)
{
    evaluated++;
    return "server x";
}

/* 500 occurrences in a window: one line, and the other 499 counted, not
 * even formatted; the count is logged by the flush at exit. */
static void test_repeats_counted(void)
{
    evaluated = 0;
    capture_begin();
    for (int i = 0; i < 500; i++) LOG_WARN_LIMIT("topic-a", "%s: down (%d)", counted_arg(), i);
    log_flush_repeats(false); /* the window is not over: nothing */
    const char *mid = strdup(capture_end());
    CHECK_EQ_INT(count_lines(mid), 1);
    CHECK(strstr(mid, "server x: down (0)\n") != NULL);
    CHECK_EQ_INT(evaluated, 1);
    capture_begin();
    log_flush_repeats(true);
    log_flush_repeats(true); /* once only */
    const char *out = capture_end();
    CHECK_EQ_INT(count_lines(out), 1);
    CHECK(has_prefix(out, "WARN"));
    CHECK(strstr(out, "repeated 499 times in the last ") != NULL);
    CHECK(strstr(out, " s: server x: down (0)\n") != NULL);
    free((void *)mid);
}

/* Topics are counted apart; a NULL topic keys on the message. */
static void test_topics_apart(void)
{
    capture_begin();
    for (int i = 0; i < 10; i++) {
        LOG_WARN_LIMIT(i % 2 ? "odd" : "even", "parity %d", i % 2);
        LOG_ERROR_LIMIT(NULL, "message %d", i % 3);
    }
    log_flush_repeats(true);
    const char *out = capture_end();
    CHECK_EQ_INT(count_of(out, "parity 0\n"), 2);  /* its line and its summary */
    CHECK_EQ_INT(count_of(out, "parity 1\n"), 2);
    CHECK_EQ_INT(count_of(out, "repeated 4 times"), 2);
    CHECK_EQ_INT(count_of(out, ": message 0\n"), 2);
    CHECK_EQ_INT(count_of(out, ": message 1\n"), 2);
    CHECK_EQ_INT(count_of(out, ": message 2\n"), 2);
    CHECK_EQ_INT(count_of(out, "repeated 3 times"), 1);  /* 0: i = 0, 3, 6, 9 */
    CHECK_EQ_INT(count_of(out, "repeated 2 times"), 2);  /* 1: 1, 4, 7; 2: 2, 5, 8 */
}

/* One call site. */
static void windowed(int n)
{
    for (int i = 0; i < n; i++) LOG_WARN_LIMIT("w", "windowed");
}

/* After the window: the next occurrence logs the count, then itself; or
 * the periodic flush logs the count. */
static void test_window(void)
{
    log_set_repeat_window(0.05);
    capture_begin();
    windowed(3);
    sleep_s(0.07);
    windowed(2);
    sleep_s(0.07);
    log_flush_repeats(false);
    const char *out = capture_end();
    log_set_repeat_window(LOG_REPEAT_WINDOW);
    CHECK_EQ_INT(count_lines(out), 4);
    const char *a = strstr(out, "repeated 2 times in the last 0.");
    const char *b = a ? strstr(a + 1, ": windowed\n") : NULL;
    CHECK(a && b);
    const char *c = b ? strstr(b, "repeated 1 time in the last 0.") : NULL;
    CHECK(c != NULL);
}

/* More topics than the table holds: none is lost, every count is logged. */
static void test_table_full(void)
{
    char topic[32];
    capture_begin();
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 400; i++) {
            snprintf(topic, sizeof topic, "t%d", i);
            LOG_WARN_LIMIT(topic, "topic %d", i);
        }
    }
    log_flush_repeats(true);
    const char *out = capture_end();
    /* Each topic: its line, and its second occurrence either counted (and
     * flushed later) or logged again once its slot was taken. */
    for (int i = 0; i < 400; i += 37) {
        char want[32];
        snprintf(want, sizeof want, ": topic %d\n", i);
        CHECK_EQ_INT(count_of(out, want), 2);
    }
    CHECK_EQ_INT(count_lines(out), 800);
}

/* --- peer addresses ------------------------------------------------------- */

static void test_peer_format(void)
{
    struct gw_peer p;
    char out[GW_PEER_STRLEN];
    memset(&p, 0, sizeof p);
    CHECK(strcmp(net_peer_format(&p, out, sizeof out), "-") == 0);
    p.family = AF_INET;
    inet_pton(AF_INET, "10.1.2.3", p.ip);
    p.port = 11211;
    CHECK(strcmp(net_peer_format(&p, out, sizeof out), "10.1.2.3:11211") == 0);
    p.family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::1", p.ip);
    p.port = 65535;
    CHECK(strcmp(net_peer_format(&p, out, sizeof out), "[2001:db8::1]:65535") == 0);
}

/* What clients may read (stats' gw_last_reload_error, Lua errors) names
 * files without their directories. */
static void test_strip_dirs(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "/srv/gw/routes.lua:12: boom", "routes.lua:12: boom" },
        { "module 'x' not found in /srv/gw/lua/x.lua, ./x.lua", "module 'x' not found in x.lua, x.lua" },
        { "/etc/gw/users:3: user 'bob': md5crypt hashes are too weak (the users file of "
          "gateway.listen at /etc/gw/gateway.lua:7)",
          "users:3: user 'bob': md5crypt hashes are too weak (the users file of "
          "gateway.listen at gateway.lua:7)" },
        { "conf/users:3: x", "users:3: x" },
        { "cannot read the users file /etc/gw/users1: No such file", "cannot read the users file users1: No such file" },
        /* not files: addresses, URLs, relative words with no line, keys */
        { "listen 127.0.0.1:11211: in use", "listen 127.0.0.1:11211: in use" },
        { "see http://127.0.0.1:9100/ now", "see http://127.0.0.1:9100/ now" },
        { "key shop/user:42 and a/b: and x/y:12", "key shop/user:42 and a/b: and x/y:12" },
        { "", "" },
    };
    char buf[300];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(buf, sizeof buf, "%s", cases[i].in);
        log_strip_dirs(buf);
        if (strcmp(buf, cases[i].out) != 0) {
            fprintf(stderr, "strip %zu: got \"%s\", want \"%s\"\n", i, buf, cases[i].out);
            unit_current_failed = 1;
        }
    }
}

int main(void)
{
    RUN(test_line_format);
    RUN(test_multiline);
    RUN(test_level_filter);
    RUN(test_repeats_counted);
    RUN(test_topics_apart);
    RUN(test_window);
    RUN(test_table_full);
    RUN(test_peer_format);
    RUN(test_strip_dirs);
    return unit_report("log");
}
