/*
 * One request over TLS. The socket is non-blocking and every wait goes through poll with the
 * time left, so that one deadline covers connect, handshake, send and reply: a server that
 * accepts and then says nothing cannot hold a social worker's terminal for ever.
 *
 * With TLS 1.3 the client's handshake completes before the server has judged the client
 * certificate; a refusal arrives as an alert on the first read. So a failed read is examined
 * for such an alert before it is reported as a lost connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>
#include <termios.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net.h"

/* Frames with another id are skipped; a server sending more than this is not one of ours. */
#define NET_MAX_SKIPPED 64

/* What the connection is doing, for messages and for reading failures right. */
enum net_stage {
    STAGE_CONNECT,   /* TCP connect */
    STAGE_HANDSHAKE, /* TLS handshake */
    STAGE_SEND,      /* writing the request */
    STAGE_RECEIVE,   /* waiting for and reading the reply */
};

struct net_session {
    const struct settings *s;
    int64_t deadline; /* CLOCK_MONOTONIC milliseconds */
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    const char *checked_name; /* the name or address the server's certificate must carry */
    bool in_frame;            /* part of a reply frame has arrived */
    bool done;                /* the last exchange succeeded: the session may close cleanly */
    OSSL_PROVIDER *legacy;    /* loaded for an old PKCS#12 file; unloaded with the session */
    OSSL_PROVIDER *deflt;     /* loaded beside it, since loading one turns off the implicit one */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *stage_text(enum net_stage st)
{
    switch (st) {
    case STAGE_CONNECT:
        return "while connecting";
    case STAGE_HANDSHAKE:
        return "during the TLS handshake";
    case STAGE_SEND:
        return "while sending the request";
    case STAGE_RECEIVE:
        return "while waiting for the reply";
    }
    return "";
}

static int timed_out(struct net_session *c, enum net_stage st, struct client_error *err)
{
    return client_fail(err, CLIENT_FAILED, "timeout", "no answer from %s within %d s %s",
                       c->s->server, (c->s->timeout_ms + 999) / 1000, stage_text(st));
}

static volatile sig_atomic_t *stop_flag;

void net_stop_on(volatile sig_atomic_t *flag)
{
    stop_flag = flag;
}

/*
 * Waits until fd is ready for `events`. Returns 1 ready, 0 at the deadline, -1 on error or
 * when a signal set the stop flag.
 */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && (errno != EINTR || (stop_flag && *stop_flag)))
            return -1;
    }
}

static int tcp_connect(struct net_session *c, struct client_error *err)
{
    const struct settings *s = c->s;
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(s->host, s->port, &hints, &res);
    if (gai != 0)
        return client_fail(err, CLIENT_FAILED, "connection", "cannot resolve %s: %s", s->host,
                           gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));

    int last_errno = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, c->deadline);
            if (w == 0) {
                close(fd);
                freeaddrinfo(res);
                return timed_out(c, STAGE_CONNECT, err);
            }
            int so_err = 0;
            socklen_t len = sizeof so_err;
            if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &len) != 0)
                so_err = errno;
            r = so_err ? -1 : 0;
            errno = so_err;
        }
        if (r != 0) {
            last_errno = errno;
            close(fd);
            continue;
        }
        /* One small request and one reply: do not let Nagle hold the request back. */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        freeaddrinfo(res);
        return 0;
    }
    freeaddrinfo(res);
    return client_fail(err, CLIENT_FAILED, "connection", "cannot connect to %s: %s", s->server,
                       strerror(last_errno));
}

/* The reason of the oldest queued OpenSSL error, in words; clears the queue. */
static const char *ssl_reason(char *buf, size_t cap, unsigned long *first)
{
    unsigned long e = ERR_get_error();
    if (first)
        *first = e;
    if (e == 0) {
        snprintf(buf, cap, "unknown TLS error");
    } else {
        const char *r = ERR_reason_error_string(e);
        if (r)
            snprintf(buf, cap, "%s", r);
        else
            ERR_error_string_n(e, buf, cap);
    }
    ERR_clear_error();
    return buf;
}

static int tls_setup_fail(struct client_error *err, const char *what, const char *path)
{
    char why[256];
    unsigned long first = ERR_peek_error(), e;
    bool passphrase = false, not_pem = false;
    const char *r = first ? ERR_reason_error_string(first) : NULL;
    snprintf(why, sizeof why, "%s", r ? r : "unknown TLS error");
    while ((e = ERR_get_error()) != 0) {
        bool pem = ERR_GET_LIB(e) == ERR_LIB_PEM;
        passphrase |= pem && ERR_GET_REASON(e) == PEM_R_BAD_PASSWORD_READ;
        not_pem |= pem && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    }
    if (passphrase)
        snprintf(why, sizeof why, "it is protected by a passphrase; fristad needs a key without");
    else if (not_pem)
        snprintf(why, sizeof why, "it holds no PEM data");
    return client_fail(err, CLIENT_FAILED, "tls", "cannot load %s %s: %s", what, path, why);
}

/* A private key protected by a passphrase would make OpenSSL prompt; scripts must not hang. */
static int no_passphrase(char *buf, int size, int rwflag, void *user)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)user;
    return -1;
}

static int readable(const char *what, const char *path, struct client_error *err)
{
    if (access(path, R_OK) == 0)
        return 0;
    return client_fail(err, CLIENT_FAILED, "tls", "cannot read %s %s: %s", what, path,
                       strerror(errno));
}

#define PASS_MAX 1024

/*
 * Asks for the passphrase on the terminal, without echo. Returns 0, or -1 when there is no
 * terminal to ask on.
 */
static int prompt_passphrase(const char *path, char *pass, size_t cap)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    struct termios old, quiet;
    bool restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    char prompt[CLIENT_MESSAGE_MAX];
    int n = snprintf(prompt, sizeof prompt, "Passphrase for %s: ", path);
    ssize_t w = write(fd, prompt, n > 0 && (size_t)n < sizeof prompt ? (size_t)n : 0);
    (void)w;
    size_t len = 0;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || ch == '\n' || ch == '\r')
            break;
        if (len + 1 < cap)
            pass[len++] = ch;
    }
    pass[len] = '\0';
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &old);
    w = write(fd, "\n", 1);
    (void)w;
    close(fd);
    return 0;
}

/* Parses the file with the passphrase, and again with OpenSSL's legacy ciphers if need be. */
static bool parse_p12(struct net_session *c, PKCS12 *p12, const char *pass, EVP_PKEY **key,
                      X509 **cert, STACK_OF(X509) * *chain)
{
    if (PKCS12_parse(p12, pass, key, cert, chain) == 1)
        return true;
    /* Files from older tools protect the certificates with RC2 or 3DES: the legacy provider. */
    if (c->legacy || OSSL_PROVIDER_available(NULL, "legacy"))
        return false;
    c->legacy = OSSL_PROVIDER_load(NULL, "legacy");
    c->deflt = c->legacy ? OSSL_PROVIDER_load(NULL, "default") : NULL;
    if (!c->deflt)
        return false;
    ERR_clear_error();
    return PKCS12_parse(p12, pass, key, cert, chain) == 1;
}

/*
 * The client certificate, its key and chain from a PKCS#12 file. The passphrase is
 * FRISTAD_P12_PASS, else none if the file has none, else asked for on the terminal.
 */
static int use_p12(struct net_session *c, struct client_error *err)
{
    const char *path = c->s->p12;
    FILE *f = fopen(path, "rb");
    if (!f)
        return client_fail(err, CLIENT_FAILED, "tls", "cannot read the PKCS#12 file %s: %s", path,
                           strerror(errno));
    PKCS12 *p12 = d2i_PKCS12_fp(f, NULL);
    fclose(f);
    if (!p12) {
        ERR_clear_error();
        return client_fail(err, CLIENT_FAILED, "tls",
                           "cannot load the PKCS#12 file %s: it is not a PKCS#12 file", path);
    }
    char pass[PASS_MAX] = "";
    const char *env = getenv("FRISTAD_P12_PASS");
    int rc = -1;
    if (env) {
        snprintf(pass, sizeof pass, "%s", env);
    } else if (PKCS12_verify_mac(p12, "", 0) != 1 && PKCS12_verify_mac(p12, NULL, 0) != 1 &&
               prompt_passphrase(path, pass, sizeof pass) != 0) {
        client_fail(err, CLIENT_USAGE, "usage",
                    "the PKCS#12 file %s needs its passphrase: set FRISTAD_P12_PASS, or run "
                    "fristad in a terminal to be asked for it",
                    path);
        goto out;
    }
    if (PKCS12_verify_mac(p12, pass, -1) != 1 &&
        !(pass[0] == '\0' && PKCS12_verify_mac(p12, NULL, 0) == 1)) {
        client_fail(err, CLIENT_FAILED, "tls",
                    "cannot open the PKCS#12 file %s: wrong passphrase (FRISTAD_P12_PASS or the "
                    "one typed)",
                    path);
        goto out;
    }
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    if (!parse_p12(c, p12, pass, &key, &cert, &chain)) {
        tls_setup_fail(err, "the PKCS#12 file", path);
    } else if (!cert || !key) {
        client_fail(err, CLIENT_FAILED, "tls",
                    "the PKCS#12 file %s holds no %s; it needs a certificate and its key", path,
                    cert ? "private key" : "certificate");
    } else if (SSL_CTX_use_certificate(c->ctx, cert) != 1 ||
               SSL_CTX_use_PrivateKey(c->ctx, key) != 1) {
        tls_setup_fail(err, "the certificate of the PKCS#12 file", path);
    } else {
        rc = 0;
        for (int i = 0; rc == 0 && i < sk_X509_num(chain); i++) {
            if (SSL_CTX_add1_chain_cert(c->ctx, sk_X509_value(chain, i)) != 1)
                rc = tls_setup_fail(err, "the chain of the PKCS#12 file", path);
        }
    }
    EVP_PKEY_free(key);
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
out:
    OPENSSL_cleanse(pass, sizeof pass);
    PKCS12_free(p12);
    return rc;
}

static int make_ctx(struct net_session *c, struct client_error *err)
{
    const struct settings *s = c->s;
    if (readable("the CA file", s->ca, err))
        return -1;
    if (!s->p12 && (readable("the client certificate", s->cert, err) ||
                    readable("the private key", s->key, err)))
        return -1;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx)
        return tls_setup_fail(err, "the TLS library", "context");
    if (SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1)
        return tls_setup_fail(err, "the TLS library", "settings");
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_default_passwd_cb(c->ctx, no_passphrase);
    if (SSL_CTX_load_verify_locations(c->ctx, s->ca, NULL) != 1)
        return tls_setup_fail(err, "the CA file", s->ca);
    if (s->p12) {
        if (use_p12(c, err) != 0)
            return -1;
        if (SSL_CTX_check_private_key(c->ctx) != 1) {
            ERR_clear_error();
            return client_fail(err, CLIENT_FAILED, "tls",
                               "the private key in %s does not belong to its certificate", s->p12);
        }
        return 0;
    }
    if (SSL_CTX_use_certificate_chain_file(c->ctx, s->cert) != 1)
        return tls_setup_fail(err, "the client certificate", s->cert);
    if (SSL_CTX_use_PrivateKey_file(c->ctx, s->key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) != ERR_LIB_X509 || ERR_GET_REASON(e) != X509_R_KEY_VALUES_MISMATCH)
            return tls_setup_fail(err, "the private key", s->key);
    }
    if (SSL_CTX_check_private_key(c->ctx) != 1) {
        ERR_clear_error();
        return client_fail(err, CLIENT_FAILED, "tls",
                           "the private key %s does not belong to the certificate %s", s->key,
                           s->cert);
    }
    return 0;
}

static bool ip_literal(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

static int make_ssl(struct net_session *c, struct client_error *err)
{
    c->checked_name = c->s->servername ? c->s->servername : c->s->host;
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
        return tls_setup_fail(err, "the TLS library", "connection");
    if (ip_literal(c->checked_name)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->checked_name) != 1)
            return tls_setup_fail(err, "the address to check", c->checked_name);
    } else {
        /* SNI may carry only a name, never an address. */
        if (SSL_set_tlsext_host_name(c->ssl, c->checked_name) != 1 ||
            SSL_set1_host(c->ssl, c->checked_name) != 1)
            return tls_setup_fail(err, "the name to check", c->checked_name);
    }
    SSL_set_connect_state(c->ssl);
    return 0;
}

/* Alerts a server sends when it does not accept the client certificate. */
static const struct {
    int reason;
    const char *why;
} cert_alerts[] = {
    {SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED, "no certificate was sent"},
    {SSL_R_SSLV3_ALERT_NO_CERTIFICATE, "no certificate was sent"},
    {SSL_R_TLSV1_ALERT_UNKNOWN_CA, "it was not issued by the server's CA"},
    {SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED, "it has expired or is not yet valid"},
    {SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED, "it has been revoked"},
    {SSL_R_SSLV3_ALERT_BAD_CERTIFICATE, "bad certificate"},
    {SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE, "unsupported certificate"},
    {SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN, "certificate unknown"},
    {SSL_R_TLSV1_ALERT_ACCESS_DENIED, "access denied"},
    {SSL_R_TLSV1_ALERT_DECRYPT_ERROR, "its signature did not verify"},
};

/* The server closed before its reply was complete; returns -1. */
static int closed_early(struct net_session *c, enum net_stage st, struct client_error *err)
{
    if (st == STAGE_HANDSHAKE)
        return client_fail(err, CLIENT_FAILED, "tls",
                           "the server %s closed the connection during the TLS handshake",
                           c->s->server);
    return client_fail(err, CLIENT_FAILED, "connection", "the server %s closed the connection %s",
                       c->s->server,
                       c->in_frame ? "in the middle of its reply" : "before replying");
}

/* Turns a failed SSL_* call (SSL_get_error e, errno then) into a message; returns -1. */
static int tls_failed(struct net_session *c, int e, int saved_errno, enum net_stage st,
                      struct client_error *err)
{
    char why[256];
    unsigned long first = 0;

    if (e == SSL_ERROR_ZERO_RETURN ||
        (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && saved_errno == 0)) {
        ERR_clear_error();
        return closed_early(c, st, err);
    }
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        return client_fail(err, CLIENT_FAILED, "connection", "connection to %s lost %s: %s",
                           c->s->server, stage_text(st), strerror(saved_errno));
    }

    ssl_reason(why, sizeof why, &first);
    int reason = ERR_GET_LIB(first) == ERR_LIB_SSL ? ERR_GET_REASON(first) : 0;
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        long v = SSL_get_verify_result(c->ssl);
        if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
            return client_fail(err, CLIENT_FAILED, "tls",
                               "the server's certificate was not issued for %s (--servername "
                               "NAME checks another name)",
                               c->checked_name);
        return client_fail(err, CLIENT_FAILED, "tls",
                           "the server's certificate was not accepted: %s (checked against "
                           "the CA file %s)",
                           X509_verify_cert_error_string(v), c->s->ca);
    }
    for (size_t i = 0; i < sizeof cert_alerts / sizeof cert_alerts[0]; i++) {
        if (reason == cert_alerts[i].reason)
            return client_fail(err, CLIENT_FAILED, "tls",
                               "the server refused the client certificate %s: %s", c->s->cert,
                               cert_alerts[i].why);
    }
    if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        return closed_early(c, st, err);
    return client_fail(err, CLIENT_FAILED, "tls", "TLS error with %s %s: %s", c->s->server,
                       stage_text(st), why);
}

/*
 * After an SSL_* call returned ret <= 0: waits for what OpenSSL needs and returns 0 to retry,
 * or returns -1 with err set.
 */
static int tls_wait(struct net_session *c, int ret, enum net_stage st, struct client_error *err)
{
    int saved_errno = errno;
    int e = SSL_get_error(c->ssl, ret);
    short events;
    if (e == SSL_ERROR_WANT_READ)
        events = POLLIN;
    else if (e == SSL_ERROR_WANT_WRITE)
        events = POLLOUT;
    else
        return tls_failed(c, e, saved_errno, st, err);
    int w = wait_fd(c->fd, events, c->deadline);
    if (w == 0)
        return timed_out(c, st, err);
    if (w < 0)
        return client_fail(err, CLIENT_FAILED, "connection", "poll: %s", strerror(errno));
    return 0;
}

static int handshake(struct net_session *c, struct client_error *err)
{
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        if (tls_wait(c, r, STAGE_HANDSHAKE, err) != 0)
            return -1;
    }
}

/*
 * A TLS 1.3 server that refuses the client certificate sends an alert and closes; when that
 * close reaches us before our request is written, the write fails with a reset while the
 * alert still waits in the socket. Reading it gives the real reason. Returns 0 when a
 * better message replaced err.
 */
static int read_pending_alert(struct net_session *c, struct client_error *err)
{
    int64_t deadline = now_ms() + 1000;
    if (SSL_version(c->ssl) != TLS1_3_VERSION)
        return -1;
    if (deadline > c->deadline)
        deadline = c->deadline;
    for (;;) {
        uint8_t byte;
        size_t got = 0;
        ERR_clear_error();
        errno = 0;
        int r = SSL_read_ex(c->ssl, &byte, 1, &got);
        if (r == 1)
            return -1; /* data, not an alert: the write error stands */
        int saved_errno = errno;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ && wait_fd(c->fd, POLLIN, deadline) > 0)
            continue;
        if (e != SSL_ERROR_SSL) {
            ERR_clear_error();
            return -1;
        }
        tls_failed(c, e, saved_errno, STAGE_RECEIVE, err);
        return 0;
    }
}

static int send_all(struct net_session *c, const uint8_t *p, size_t n, struct client_error *err)
{
    while (n > 0) {
        size_t done = 0;
        ERR_clear_error();
        errno = 0;
        int r = SSL_write_ex(c->ssl, p, n, &done);
        if (r == 1) {
            p += done;
            n -= done;
        } else if (tls_wait(c, r, STAGE_SEND, err) != 0) {
            if (strcmp(err->code, "connection") == 0)
                (void)read_pending_alert(c, err);
            return -1;
        }
    }
    return 0;
}

static int recv_all(struct net_session *c, uint8_t *p, size_t n, struct client_error *err)
{
    while (n > 0) {
        size_t got = 0;
        ERR_clear_error();
        errno = 0;
        int r = SSL_read_ex(c->ssl, p, n, &got);
        if (r == 1) {
            p += got;
            n -= got;
            c->in_frame = true;
        } else if (tls_wait(c, r, STAGE_RECEIVE, err) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Reads frames until the reply to `id`; an error reply without an id concerns our frame. */
static int receive_reply(struct net_session *c, uint64_t id, struct net_reply *out,
                         struct client_error *err)
{
    for (unsigned skipped = 0;; skipped++) {
        uint8_t hdr[PROTO_HEADER_LEN];
        uint32_t len = 0;
        if (skipped > NET_MAX_SKIPPED)
            return client_fail(err, CLIENT_FAILED, "protocol",
                               "the server sent %u replies to requests this client never made",
                               skipped);
        c->in_frame = false;
        if (recv_all(c, hdr, sizeof hdr, err) != 0)
            return -1;
        switch (proto_frame_peek(hdr, sizeof hdr, NET_MAX_FRAME, &len)) {
        case PROTO_FRAME_BAD_LENGTH:
            return client_fail(err, CLIENT_FAILED, "protocol",
                               "the server sent a frame of length 0");
        case PROTO_FRAME_TOO_LARGE:
            return client_fail(err, CLIENT_FAILED, "protocol",
                               "the server sent a frame of %lu bytes, more than the %u this "
                               "client accepts",
                               (unsigned long)len, NET_MAX_FRAME);
        case PROTO_FRAME_NEED_MORE:
        case PROTO_FRAME_READY:
            break;
        }
        uint8_t *body = malloc(len);
        if (!body)
            return client_fail(err, CLIENT_FAILED, "internal", "out of memory");
        if (recv_all(c, body, len, err) != 0) {
            free(body);
            return -1;
        }
        struct proto_error perr = {0};
        if (proto_decode_reply(body, len, &out->reply, &perr) != PROTO_OK) {
            free(body);
            return client_fail(err, CLIENT_FAILED, "protocol",
                               "the server sent a reply this client cannot read: %s", perr.message);
        }
        const struct proto_reply *r = &out->reply;
        if ((r->has_id && r->id == id) || (!r->has_id && !r->ok)) {
            out->body = body;
            return 0;
        }
        proto_reply_free(&out->reply);
        free(body);
    }
}

void net_close(struct net_session *c)
{
    if (!c)
        return;
    if (c->ssl && c->done) {
        /* One close_notify, without waiting for the server's: the replies are already here. */
        ERR_clear_error();
        (void)SSL_shutdown(c->ssl);
    }
    ERR_clear_error();
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    if (c->deflt)
        OSSL_PROVIDER_unload(c->deflt);
    if (c->legacy)
        OSSL_PROVIDER_unload(c->legacy);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

int net_open(const struct settings *s, struct net_session **out, struct client_error *err)
{
    struct net_session *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c)
        return client_fail(err, CLIENT_FAILED, "internal", "out of memory");
    c->s = s;
    c->fd = -1;
    if (make_ctx(c, err) != 0)
        goto fail;
    c->deadline = now_ms() + s->timeout_ms;
    if (tcp_connect(c, err) != 0 || make_ssl(c, err) != 0 || handshake(c, err) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    net_close(c);
    return -1;
}

int net_exchange(struct net_session *c, const uint8_t *body, size_t len, uint64_t id,
                 struct net_reply *out, struct client_error *err)
{
    memset(out, 0, sizeof *out);
    if (len == 0 || len > NET_MAX_FRAME)
        return client_fail(err, CLIENT_FAILED, "internal", "request of %zu bytes", len);
    /* Header and body in one write, so that they travel in one TLS record. */
    uint8_t *frame = malloc(PROTO_HEADER_LEN + len);
    if (!frame)
        return client_fail(err, CLIENT_FAILED, "internal", "out of memory");
    proto_frame_put_header(frame, (uint32_t)len);
    memcpy(frame + PROTO_HEADER_LEN, body, len);
    int rc = send_all(c, frame, PROTO_HEADER_LEN + len, err);
    free(frame);
    if (rc == 0)
        rc = receive_reply(c, id, out, err);
    c->done = rc == 0;
    return rc;
}

int net_call(const struct settings *s, const uint8_t *body, size_t len, uint64_t id,
             struct net_reply *out, struct client_error *err)
{
    struct net_session *c;
    memset(out, 0, sizeof *out);
    if (len == 0 || len > NET_MAX_FRAME)
        return client_fail(err, CLIENT_FAILED, "internal", "request of %zu bytes", len);
    if (net_open(s, &c, err) != 0)
        return -1;
    int rc = net_exchange(c, body, len, id, out, err);
    net_close(c);
    return rc;
}

/* ---- a stream of replies (watch) ---------------------------------------------------------- */

struct net_stream {
    struct net_session *c;
    uint64_t id;
};

struct net_stream *net_stream_open(const struct settings *s, const uint8_t *body, size_t len,
                                   uint64_t id, struct client_error *err)
{
    struct net_stream *st = calloc(1, sizeof *st);
    uint8_t *frame = NULL;
    if (!st) {
        client_fail(err, CLIENT_FAILED, "internal", "out of memory");
        return NULL;
    }
    st->id = id;
    if (len == 0 || len > NET_MAX_FRAME) {
        client_fail(err, CLIENT_FAILED, "internal", "request of %zu bytes", len);
        goto fail;
    }
    if (net_open(s, &st->c, err) != 0)
        goto fail;
    if (!(frame = malloc(PROTO_HEADER_LEN + len))) {
        client_fail(err, CLIENT_FAILED, "internal", "out of memory");
        goto fail;
    }
    proto_frame_put_header(frame, (uint32_t)len);
    memcpy(frame + PROTO_HEADER_LEN, body, len);
    if (send_all(st->c, frame, PROTO_HEADER_LEN + len, err) != 0)
        goto fail;
    free(frame);
    return st;
fail:
    free(frame);
    net_stream_close(st);
    return NULL;
}

int net_stream_next(struct net_stream *st, int timeout_ms, struct net_reply *out,
                    struct client_error *err)
{
    memset(out, 0, sizeof *out);
    st->c->deadline = now_ms() + timeout_ms;
    int rc = receive_reply(st->c, st->id, out, err);
    st->c->done = rc == 0;
    return rc;
}

void net_stream_close(struct net_stream *st)
{
    if (!st)
        return;
    net_close(st->c);
    free(st);
}

void net_reply_free(struct net_reply *r)
{
    proto_reply_free(&r->reply);
    free(r->body);
    r->body = NULL;
}
