/* conn_tls.c -- the TLS transport (conn.h), on OpenSSL 3.
 *
 * The only file that knows OpenSSL.  A gw_tls is an SSL_CTX (whose own
 * reference count is ours); a connection's session is its SSL plus what a
 * non-blocking handshake and a retried write must remember.  Every call
 * returns at once: OpenSSL's WANT_READ / WANT_WRITE become GW_AGAIN, and
 * conn_events tells the owner which readiness the session waits for.
 */
#include "conn.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "loop.h"
#include "status.h"

/* The most one SSL_write takes: one TLS record. */
#define TLS_RECORD 16384

struct gw_tls {
    atomic_int refs;           /* holders: configs, listeners, backends, sessions */
    SSL_CTX *ctx;
    bool server;
    bool name_peer;            /* a server that verifies clients: name them */
    char *server_name;         /* a client's expected name, or NULL */
};

struct tls_session {
    SSL *ssl;
    struct gw_tls *tls;        /* a reference, for conn_peer_user */
    bool done;                 /* handshake complete */
    int want;                  /* the readiness OpenSSL last asked for; 0: none */
    size_t wlen;               /* a write to repeat as it was (OpenSSL's rule), or 0 */
    bool starved;              /* the last read wanted bytes the socket had not */
    char peer[80];              /* "client ip:port", for the log */
};

/* OpenSSL's queued errors, as one line ("" when none). */
static void ssl_errors(char *out, size_t len)
{
    out[0] = '\0';
    size_t o = 0;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof one);
        /* "error:0A000086:SSL routines::certificate verify failed": the
         * words after the last colon say it */
        const char *why = strrchr(one, ':');
        why = why ? why + 1 : one;
        if (o < len) o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "; " : "", why);
    }
}

/* --- contexts --------------------------------------------------------------- */

static BIO *pem_bio(const struct tls_pem *p)
{
    return BIO_new_mem_buf(p->text, (int)p->len);
}

static int load_cert_key(SSL_CTX *ctx, const struct tls_opts *o, char *err, size_t errlen)
{
    char why[300];
    BIO *b = pem_bio(&o->cert);
    X509 *leaf = b ? PEM_read_bio_X509_AUX(b, NULL, NULL, NULL) : NULL;
    if (!leaf || SSL_CTX_use_certificate(ctx, leaf) != 1) {
        ssl_errors(why, sizeof why);
        snprintf(err, errlen, "%s: no certificate it can use (%s)", o->cert.path,
                 why[0] ? why : "no PEM certificate");
        X509_free(leaf);
        BIO_free(b);
        return GW_ERROR;
    }
    X509_free(leaf);
    X509 *more;
    while ((more = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, more) != 1) {
            X509_free(more);
            BIO_free(b);
            snprintf(err, errlen, "%s: a chain certificate cannot be used", o->cert.path);
            return GW_ERROR;
        }
    }
    ERR_clear_error(); /* the end of the file */
    BIO_free(b);
    b = pem_bio(&o->key);
    EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (key && SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        ERR_clear_error();
        EVP_PKEY_free(key);
        snprintf(err, errlen, "%s: the key does not match the certificate %s", o->key.path,
                 o->cert.path);
        return GW_ERROR;
    }
    if (!key) {
        ssl_errors(why, sizeof why);
        snprintf(err, errlen, "%s: no private key it can use (%s)", o->key.path,
                 why[0] ? why : "no PEM private key");
        EVP_PKEY_free(key);
        return GW_ERROR;
    }
    EVP_PKEY_free(key);
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "%s: the key does not match the certificate %s", o->key.path,
                 o->cert.path);
        return GW_ERROR;
    }
    return GW_OK;
}

static int load_ca(SSL_CTX *ctx, const struct tls_pem *ca, char *err, size_t errlen)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    BIO *b = pem_bio(ca);
    int n = 0;
    X509 *x;
    while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        X509_STORE_add_cert(store, x);
        X509_free(x);
        n++;
    }
    ERR_clear_error();
    BIO_free(b);
    if (n == 0) {
        snprintf(err, errlen, "%s: no PEM certificate in it", ca->path);
        return GW_ERROR;
    }
    return GW_OK;
}

static struct gw_tls *tls_new(bool server, const struct tls_opts *o, char *err, size_t errlen)
{
    struct gw_tls *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->server = server;
    atomic_init(&t->refs, 1);
    ERR_clear_error();
    t->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!t->ctx) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    SSL_CTX_set_min_proto_version(t->ctx, o->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    /* One read(2) for all the records that have arrived, not two per
     * record (its header, then its body); tls_pending drains the rest. */
    SSL_CTX_set_read_ahead(t->ctx, 1);
    /* a peer that closes without close_notify has just closed */
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (o->cert.path && load_cert_key(t->ctx, o, err, errlen) != GW_OK) goto fail;
    if (o->ca.path) {
        if (load_ca(t->ctx, &o->ca, err, errlen) != GW_OK) goto fail;
    } else if (!server && o->verify != TLS_VERIFY_NONE) {
        SSL_CTX_set_default_verify_paths(t->ctx); /* the system's CAs */
    }
    int mode = SSL_VERIFY_NONE;
    if (o->verify == TLS_VERIFY_OPTIONAL) mode = SSL_VERIFY_PEER;
    if (o->verify == TLS_VERIFY_REQUIRED)
        mode = SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    SSL_CTX_set_verify(t->ctx, mode, NULL);
    t->name_peer = server && o->verify != TLS_VERIFY_NONE;
    if (server) {
        /* Sessions are not resumed across workers: keep it simple and
         * stateless (tickets carry their own state). */
        SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
        static const unsigned char sid[] = "gateway";
        SSL_CTX_set_session_id_context(t->ctx, sid, sizeof sid - 1);
    }
    if (o->server_name && !(t->server_name = strdup(o->server_name))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return t;
fail:
    ERR_clear_error();
    SSL_CTX_free(t->ctx);
    free(t);
    return NULL;
}

struct gw_tls *tls_server_new(const struct tls_opts *o, char *err, size_t errlen)
{
    if (!o->cert.path || !o->key.path) {
        snprintf(err, errlen, "a TLS listener needs cert and key");
        return NULL;
    }
    return tls_new(true, o, err, errlen);
}

struct gw_tls *tls_client_new(const struct tls_opts *o, char *err, size_t errlen)
{
    if (!o->cert.path != !o->key.path) {
        snprintf(err, errlen, "a client certificate needs both cert and key");
        return NULL;
    }
    return tls_new(false, o, err, errlen);
}

struct gw_tls *tls_ref(struct gw_tls *t)
{
    if (t) atomic_fetch_add(&t->refs, 1);
    return t;
}

void tls_unref(struct gw_tls *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1) return;
    SSL_CTX_free(t->ctx);
    free(t->server_name);
    free(t);
}

/* --- the transport ------------------------------------------------------------ */

static struct tls_session *S(const struct gw_conn *c) { return c->session; }

/* One step of the handshake.  A failure is logged (the peer's fault, so at
 * info level) unless the owner asked for the reason. */
static int progress(struct gw_conn *c, char *err, size_t errlen)
{
    struct tls_session *s = S(c);
    if (s->done) return GW_OK;
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        s->done = true;
        s->want = 0;
        return GW_OK;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        s->want = GW_EV_READ;
        return GW_AGAIN;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        s->want = GW_EV_WRITE;
        return GW_AGAIN;
    }
    char why[300];
    ssl_errors(why, sizeof why);
    long v = SSL_get_verify_result(s->ssl);
    if (v != X509_V_OK && !why[0]) snprintf(why, sizeof why, "%s", X509_verify_cert_error_string(v));
    else if (v != X509_V_OK) {
        size_t o = strlen(why);
        snprintf(why + o, sizeof why - o, " (%s)", X509_verify_cert_error_string(v));
    }
    /* A peer that closes before saying why (a port probe) is no news. */
    bool closed = !why[0];
    if (closed) snprintf(why, sizeof why, "the peer closed the connection");
    if (err) snprintf(err, errlen, "TLS handshake failed: %s", why);
    else if (closed) LOG_VERBOSE("TLS handshake with %s failed: %s", s->peer, why);
    else LOG_INFO("TLS handshake with %s failed: %s", s->peer, why);
    return GW_ERROR;
}

static int tls_handshake(struct gw_conn *c, char *err, size_t errlen)
{
    return progress(c, err, errlen);
}

static int tls_read(struct gw_conn *c, struct gw_rbuf *in, size_t need, size_t *n)
{
    struct tls_session *s = S(c);
    *n = 0;
    int rc = progress(c, NULL, 0);
    if (rc != GW_OK) return rc;
    size_t room;
    char *p = rbuf_reserve(in, need, &room);
    if (!p) return GW_NOMEM;
    ERR_clear_error();
    size_t got;
    if (SSL_read_ex(s->ssl, p, room, &got) == 1) {
        rbuf_commit(in, got);
        *n = got;
        s->want = 0;
        s->starved = false;
        return GW_OK;
    }
    int e = SSL_get_error(s->ssl, 0);
    if (e == SSL_ERROR_WANT_READ) {
        s->want = 0;
        s->starved = true;   /* what OpenSSL holds is no whole record */
        return GW_AGAIN;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        s->want = GW_EV_WRITE;
        return GW_AGAIN;
    }
    if (e != SSL_ERROR_ZERO_RETURN && e != SSL_ERROR_SYSCALL) {
        char why[300];
        ssl_errors(why, sizeof why);
        LOG_INFO("TLS read from %s failed: %s", s->peer, why[0] ? why : "error");
    }
    ERR_clear_error();
    return GW_ERROR;
}

static _Thread_local char stage[TLS_RECORD];

/* Copy the first len bytes of out into stage. */
static void gather(const struct gw_oq *out, size_t len)
{
    size_t o = 0;
    for (uint32_t i = out->head; o < len; i++) {
        size_t k = out->iov[i].iov_len < len - o ? out->iov[i].iov_len : len - o;
        memcpy(stage + o, out->iov[i].iov_base, k);
        o += k;
    }
}

static int tls_writev(struct gw_conn *c, struct gw_oq *out, size_t *written)
{
    struct tls_session *s = S(c);
    *written = 0;
    int rc = progress(c, NULL, 0);
    if (rc == GW_ERROR) return GW_ERROR;
    if (rc == GW_AGAIN) return out->count ? GW_AGAIN : GW_OK;
    while (out->count > 0) {
        /* A write OpenSSL asked to repeat goes again as it was: the queue
         * still starts with those bytes. */
        size_t len = s->wlen ? s->wlen : (out->bytes < TLS_RECORD ? out->bytes : TLS_RECORD);
        gather(out, len);
        ERR_clear_error();
        size_t w;
        if (SSL_write_ex(s->ssl, stage, len, &w) == 1) {
            s->wlen = 0;
            s->want = 0;
            oq_consume(out, w);
            *written += w;
            continue;
        }
        s->wlen = len;
        int e = SSL_get_error(s->ssl, 0);
        if (e == SSL_ERROR_WANT_WRITE) {
            s->want = 0;
            return GW_AGAIN;
        }
        if (e == SSL_ERROR_WANT_READ) {
            s->want = GW_EV_READ;
            return GW_AGAIN;
        }
        ERR_clear_error();
        return GW_ERROR;
    }
    out->head = 0;
    return GW_OK;
}

/* With read-ahead, OpenSSL reads what the socket has, whole records and
 * the start of the next, in one read(2): bytes it holds get no readiness
 * event.  Decrypted bytes can be read now; raw ones only if they may hold a
 * whole record, i.e. unless the last read found them short (the rest of
 * that record will make the socket readable). */
static bool tls_pending(const struct gw_conn *c)
{
    const struct tls_session *s = S(c);
    return s->done && (SSL_pending(s->ssl) > 0 || (!s->starved && SSL_has_pending(s->ssl)));
}

static int tls_events(const struct gw_conn *c, int wanted)
{
    const struct tls_session *s = S(c);
    if (!s->done) return s->want ? s->want : wanted; /* not started: a connect waits */
    if (s->want == GW_EV_WRITE) return wanted | GW_EV_WRITE;             /* a read must write */
    if (s->want == GW_EV_READ) return (wanted & ~GW_EV_WRITE) | GW_EV_READ; /* a write must read */
    return wanted;
}

static void tls_close(struct gw_conn *c)
{
    struct tls_session *s = S(c);
    if (s->done) {
        /* close_notify, best effort: the socket is non-blocking */
        SSL_shutdown(s->ssl);
    }
    ERR_clear_error();
    SSL_free(s->ssl);
    tls_unref(s->tls);
    free(s);
    c->session = NULL;
    close(c->fd);
    c->fd = -1;
}

static const struct transport transport_tls = {
    .name = "tls",
    .read = tls_read,
    .writev = tls_writev,
    .pending = tls_pending,
    .close = tls_close,
    .handshake = tls_handshake,
    .events = tls_events,
};

static struct tls_session *session_new(int fd, struct gw_tls *t)
{
    struct tls_session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (!(s->ssl = SSL_new(t->ctx)) || SSL_set_fd(s->ssl, fd) != 1) {
        SSL_free(s->ssl);
        ERR_clear_error();
        free(s);
        return NULL;
    }
    s->tls = tls_ref(t);
    return s;
}

int conn_init_tls_server(struct gw_conn *c, int fd, struct gw_tls *t, const char *peer)
{
    struct tls_session *s = session_new(fd, t);
    if (!s) return GW_NOMEM;
    snprintf(s->peer, sizeof s->peer, "client %s", peer);
    SSL_set_accept_state(s->ssl);
    c->t = &transport_tls;
    c->fd = fd;
    c->session = s;
    return GW_OK;
}

/* host is "name" or an address ("[v6]" brackets allowed). */
int conn_init_tls_client(struct gw_conn *c, int fd, struct gw_tls *t, const char *host)
{
    struct tls_session *s = session_new(fd, t);
    if (!s) return GW_NOMEM;
    snprintf(s->peer, sizeof s->peer, "server %s", host);
    char h[256];
    const char *name = t->server_name;
    if (!name) {
        size_t l = strlen(host);
        if (l >= 2 && host[0] == '[' && host[l - 1] == ']') {
            snprintf(h, sizeof h, "%.*s", (int)(l - 2), host + 1);
        } else {
            snprintf(h, sizeof h, "%s", host);
        }
        name = h;
    }
    SSL_set_connect_state(s->ssl);
    X509_VERIFY_PARAM *vp = SSL_get0_param(s->ssl);
    /* An address is checked against the certificate's IP SANs, a name
     * against its DNS names (and sent as SNI). */
    if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1) {
        ERR_clear_error();
        SSL_set_tlsext_host_name(s->ssl, name);
        X509_VERIFY_PARAM_set1_host(vp, name, 0);
    }
    c->t = &transport_tls;
    c->fd = fd;
    c->session = s;
    return GW_OK;
}

char *conn_peer_user(const struct gw_conn *c)
{
    if (c->t != &transport_tls || !S(c)->done || !S(c)->tls->name_peer) return NULL;
    SSL *ssl = S(c)->ssl;
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (!x || SSL_get_verify_result(ssl) != X509_V_OK) return NULL;
    char cn[256];
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    if (n > 0 && (size_t)n == strlen(cn)) return strdup(cn);
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    char *user = NULL;
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && !user; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_DNS) continue;
        const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
        int len = ASN1_STRING_length(g->d.dNSName);
        if (len > 0 && memchr(d, 0, (size_t)len) == NULL) user = strndup((const char *)d, (size_t)len);
    }
    GENERAL_NAMES_free(sans);
    return user;
}
