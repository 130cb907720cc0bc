/*
 * Load generator for fristadd: N mutually authenticated TLS connections driven by one thread
 * (epoll, non-blocking), each sending batches of P pipelined requests of one op for a fixed
 * time and waiting for the batch's replies before the next, as redis-benchmark does with -c N
 * -P P. One thread, so that on a small machine the generator takes no more CPU from the daemon
 * than redis-benchmark takes from Redis. Prints one CSV line:
 * op,connections,pipeline,requests,errors,ops_per_s,p50_ms,p99_ms. It measures; it asserts
 * nothing.
 *
 * Ops: whoami; search (a random referral each: any home municipality, every risk level, 0-3
 * children, sometimes wheelchair, pets or a language; the default limit of 20 results, or
 * --limit N); free (county 01); vacancy (the shelter's units u1..uN, free and occupied in
 * turn).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fristad/proto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

struct opts {
    const char *host, *port, *cert, *key, *ca, *op, *shelter;
    int connections, pipeline, seconds, units, limit; /* limit: a search's, 0 for its default */
};

enum phase { HANDSHAKE, SENDING, RECEIVING };

struct conn {
    int fd;
    SSL *ssl;
    enum phase phase;
    uint64_t seq, rng;
    uint8_t *out; /* the batch being sent */
    size_t out_len, out_off;
    uint8_t *in; /* replies being read */
    size_t in_len, in_cap;
    int awaiting;
    double sent_at;
};

static struct opts o = {.connections = 4, .pipeline = 8, .seconds = 5, .units = 8, .op = "whoami"};
static double *lat;
static size_t n_lat, cap_lat;
static unsigned long errors;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static unsigned below(uint64_t *s, unsigned n)
{
    return (unsigned)(next_rand(s) % n);
}

static void referral(struct conn *c, struct proto_args *a)
{
    static const char *const langs[] = {"en", "ar", "fi", "so"};
    uint64_t *s = &c->rng;
    memcpy(a->home, proto_municipality_code(below(s, PROTO_MUNICIPALITIES)), 5);
    a->risk = (uint8_t)below(s, RISK__COUNT);
    a->present = PROTO_BIT(F_HOME) | PROTO_BIT(F_RISK);
    if (a->risk >= RISK_MODERATE && below(s, 2)) {
        a->n_perpetrator = 1;
        memcpy(a->perpetrator[0], proto_municipality_code(below(s, PROTO_MUNICIPALITIES)), 5);
        a->present |= PROTO_BIT(F_PERPETRATOR);
    }
    if (below(s, 10) < 3) {
        a->adults = 2;
        a->present |= PROTO_BIT(F_ADULTS);
    }
    a->n_children = (uint8_t)below(s, 4);
    for (unsigned i = 0; i < a->n_children; i++)
        a->children[i] = (struct proto_child){(uint8_t)below(s, 18), below(s, 2) ? 'm' : 'f'};
    if (a->n_children)
        a->present |= PROTO_BIT(F_CHILDREN);
    if (below(s, 10) == 0) {
        a->wheelchair = true;
        a->present |= PROTO_BIT(F_WHEELCHAIR);
    }
    if (below(s, 10) == 0) {
        a->pets = true;
        a->present |= PROTO_BIT(F_PETS);
    }
    if (below(s, 10) == 0) {
        memcpy(a->language, langs[below(s, 4)], 3);
        a->present |= PROTO_BIT(F_LANGUAGE);
    }
    if (o.limit > 0) {
        a->limit = (uint16_t)o.limit;
        a->present |= PROTO_BIT(F_LIMIT);
    }
}

static void build(struct conn *c, int index, struct proto_request *r)
{
    memset(r, 0, sizeof *r);
    r->id = ++c->seq;
    r->has_id = true;
    struct proto_args *a = &r->args;
    if (strcmp(o.op, "search") == 0) {
        r->op = OP_SEARCH;
        referral(c, a);
    } else if (strcmp(o.op, "vacancy") == 0) {
        r->op = OP_VACANCY_SET;
        snprintf(a->shelter, sizeof a->shelter, "%s", o.shelter);
        snprintf(a->unit, sizeof a->unit, "u%d", (int)((c->seq + (uint64_t)index) % o.units) + 1);
        a->state = (uint8_t)(c->seq % 2 ? VAC_FREE : VAC_OCCUPIED);
        a->present = PROTO_BIT(F_SHELTER) | PROTO_BIT(F_UNIT) | PROTO_BIT(F_STATE);
    } else if (strcmp(o.op, "free") == 0) {
        r->op = OP_FREE;
        strcpy(a->county, "01");
        a->present = PROTO_BIT(F_COUNTY);
    } else {
        r->op = OP_WHOAMI;
    }
}

static int sbuf_write(void *data, const char *buf, size_t len)
{
    msgpack_sbuffer *sb = data;
    return msgpack_sbuffer_write(sb, buf, len);
}

/* Packs the next batch of requests into c->out. */
static int next_batch(struct conn *c, int index)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, sbuf_write);
    for (int i = 0; i < o.pipeline; i++) {
        struct proto_request req;
        size_t start = sb.size;
        build(c, index, &req);
        if (msgpack_sbuffer_write(&sb, "\0\0\0\0", 4) != 0 || proto_pack_request(&pk, &req) != 0)
            return -1;
        proto_frame_put_header((uint8_t *)sb.data + start, (uint32_t)(sb.size - start - 4));
    }
    free(c->out);
    c->out_len = sb.size;
    c->out = (uint8_t *)msgpack_sbuffer_release(&sb);
    c->out_off = 0;
    c->awaiting = o.pipeline;
    c->phase = SENDING;
    c->sent_at = now_s();
    return 0;
}

static void record(double ms)
{
    if (n_lat == cap_lat) {
        cap_lat = cap_lat ? cap_lat * 2 : 65536;
        lat = realloc(lat, cap_lat * sizeof *lat);
        if (!lat) {
            fprintf(stderr, "loadgen: out of memory\n");
            exit(1);
        }
    }
    lat[n_lat++] = ms;
}

/* The end of the msgpack object at p, or NULL when it does not end before `end`. */
static const uint8_t *mp_skip(const uint8_t *p, const uint8_t *end, int depth)
{
    if (p >= end || depth > 8)
        return NULL;
    uint8_t t = *p++;
    size_t n = 0, items = 0;
    unsigned w = 0; /* bytes of a length that follows */
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
        return p;
    if ((t & 0xe0) == 0xa0)
        n = t & 0x1f;
    else if ((t & 0xf0) == 0x90)
        items = t & 0x0f;
    else if ((t & 0xf0) == 0x80)
        items = 2u * (t & 0x0f);
    else if (t == 0xcc || t == 0xd0)
        n = 1;
    else if (t == 0xcd || t == 0xd1)
        n = 2;
    else if (t == 0xce || t == 0xd2 || t == 0xca)
        n = 4;
    else if (t == 0xcf || t == 0xd3 || t == 0xcb)
        n = 8;
    else if (t == 0xd9 || t == 0xc4)
        w = 1;
    else if (t == 0xda || t == 0xc5)
        w = 2;
    else if (t == 0xdb || t == 0xc6)
        w = 4;
    else if (t == 0xdc || t == 0xde)
        w = 2;
    else if (t == 0xdd || t == 0xdf)
        w = 4;
    else
        return NULL;
    if (w) {
        if ((size_t)(end - p) < w)
            return NULL;
        size_t v = 0;
        for (unsigned i = 0; i < w; i++)
            v = v << 8 | *p++;
        if (t == 0xdc || t == 0xdd)
            items = v;
        else if (t == 0xde || t == 0xdf)
            items = 2 * v;
        else
            n = v;
    }
    if ((size_t)(end - p) < n)
        return NULL;
    p += n;
    for (size_t i = 0; i < items && p; i++)
        p = mp_skip(p, end, depth + 1);
    return p;
}

/*
 * Whether a reply says ok, found without unpacking it: a load generator that decoded twenty
 * search results per reply would take the daemon's CPU on a small machine. 1 ok, 0 not ok, -1
 * unreadable.
 */
static int reply_ok(const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    if (len == 0 || (*p & 0xf0) != 0x80)
        return -1;
    unsigned pairs = *p++ & 0x0f;
    for (unsigned i = 0; i < pairs && p; i++) {
        bool is_ok = end - p >= 3 && p[0] == 0xa2 && p[1] == 'o' && p[2] == 'k';
        p = mp_skip(p, end, 0);
        if (is_ok && p && p < end && (*p == 0xc3 || *p == 0xc2))
            return *p == 0xc3;
        p = p ? mp_skip(p, end, 0) : NULL;
    }
    return -1;
}

/* Takes the complete replies out of c->in. */
static int take_replies(struct conn *c)
{
    size_t off = 0;
    while (c->awaiting > 0 && c->in_len - off >= 4) {
        uint32_t len;
        if (proto_frame_peek(c->in + off, 4, PROTO_MAX_MAX_FRAME, &len) == PROTO_FRAME_TOO_LARGE)
            return -1;
        if (c->in_len - off - 4 < len)
            break;
        if (reply_ok(c->in + off + 4, len) != 1) {
            struct proto_reply rep;
            struct proto_error perr;
            if (proto_decode_reply(c->in + off + 4, len, &rep, &perr) != PROTO_OK) {
                if (errors++ == 0)
                    fprintf(stderr, "loadgen: %s: undecodable reply: %s\n", o.op, perr.message);
            } else {
                if (errors++ == 0)
                    fprintf(stderr, "loadgen: %s: %s: %s\n", o.op, rep.code_text, rep.message);
                proto_reply_free(&rep);
            }
        }
        record((now_s() - c->sent_at) * 1000.0);
        off += 4 + len;
        c->awaiting--;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return 0;
}

/* Moves one connection along as far as it goes without blocking. -1: it failed. */
static int step(struct conn *c, int index, bool more)
{
    for (;;) {
        if (c->phase == HANDSHAKE) {
            int r = SSL_do_handshake(c->ssl);
            if (r == 1) {
                if (next_batch(c, index) < 0)
                    return -1;
                continue;
            }
            int e = SSL_get_error(c->ssl, r);
            return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
        }
        if (c->phase == SENDING) {
            int r = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
            }
            c->out_off += (size_t)r;
            if (c->out_off == c->out_len)
                c->phase = RECEIVING;
            continue;
        }
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 65536;
            if (!(c->in = realloc(c->in, c->in_cap)))
                return -1;
        }
        int r = SSL_read(c->ssl, c->in + c->in_len, (int)(c->in_cap - c->in_len));
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
        }
        c->in_len += (size_t)r;
        if (take_replies(c) < 0)
            return -1;
        if (c->awaiting == 0) {
            if (!more)
                return 1; /* done */
            if (next_batch(c, index) < 0)
                return -1;
        }
    }
}

static int connect_tcp(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(o.host, o.port, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, res->ai_socktype, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    return fd;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--server")) {
            static char host[256];
            const char *c = strrchr(v, ':');
            snprintf(host, sizeof host, "%.*s", c ? (int)(c - v) : 0, v);
            o.host = host;
            o.port = c ? c + 1 : "7420";
        } else if (!strcmp(k, "--cert"))
            o.cert = v;
        else if (!strcmp(k, "--key"))
            o.key = v;
        else if (!strcmp(k, "--ca"))
            o.ca = v;
        else if (!strcmp(k, "--op"))
            o.op = v;
        else if (!strcmp(k, "--shelter"))
            o.shelter = v;
        else if (!strcmp(k, "--units"))
            o.units = atoi(v);
        else if (!strcmp(k, "--connections"))
            o.connections = atoi(v);
        else if (!strcmp(k, "--pipeline"))
            o.pipeline = atoi(v);
        else if (!strcmp(k, "--seconds"))
            o.seconds = atoi(v);
        else if (!strcmp(k, "--limit"))
            o.limit = atoi(v);
    }
    if (!o.host || !o.cert || !o.key || !o.ca || o.connections < 1 || o.pipeline < 1 ||
        o.units < 1 || o.limit < 0 || o.limit > (int)PROTO_MAX_LIMIT ||
        (!strcmp(o.op, "vacancy") && !o.shelter)) {
        fprintf(stderr, "usage: loadgen --server H:P --cert C --key K --ca CA --op "
                        "whoami|search|free|vacancy [--shelter S --units N] [--connections N] "
                        "[--pipeline P] [--seconds S] [--limit N (search)]\n");
        return 2;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, o.cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o.key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations(ctx, o.ca, NULL) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ep = epoll_create1(0);
    struct conn *cs = calloc((size_t)o.connections, sizeof *cs);
    if (ep < 0 || !cs)
        return 1;
    for (int i = 0; i < o.connections; i++) {
        struct conn *c = &cs[i];
        c->rng = UINT64_C(0x10ad) + (uint64_t)i;
        if ((c->fd = connect_tcp()) < 0 || !(c->ssl = SSL_new(ctx)) || !SSL_set_fd(c->ssl, c->fd)) {
            fprintf(stderr, "loadgen: cannot connect to %s:%s\n", o.host, o.port);
            return 1;
        }
        SSL_set_connect_state(c->ssl);
        struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
    }
    /* Handshakes first, then the clock starts. */
    int ready = 0, failed = 0;
    while (ready + failed < o.connections) {
        for (int i = 0; i < o.connections; i++) {
            if (cs[i].phase != HANDSHAKE)
                continue;
            int r = SSL_do_handshake(cs[i].ssl);
            if (r == 1)
                ready++;
            else if (SSL_get_error(cs[i].ssl, r) != SSL_ERROR_WANT_READ &&
                     SSL_get_error(cs[i].ssl, r) != SSL_ERROR_WANT_WRITE) {
                failed++;
                cs[i].phase = RECEIVING;
            }
            if (r == 1)
                cs[i].phase = RECEIVING; /* nothing awaited: the first batch goes below */
        }
        struct epoll_event evs[64];
        if (ready + failed < o.connections)
            epoll_wait(ep, evs, 64, 100);
    }
    if (failed) {
        fprintf(stderr, "loadgen: %d TLS handshakes failed\n", failed);
        ERR_print_errors_fp(stderr);
        return 1;
    }
    double t0 = now_s(), deadline = t0 + o.seconds;
    int done = 0;
    for (int i = 0; i < o.connections; i++) {
        if (next_batch(&cs[i], i) < 0 || step(&cs[i], i, true) < 0) {
            fprintf(stderr, "loadgen: a connection failed\n");
            ERR_print_errors_fp(stderr);
            return 1;
        }
    }
    while (done < o.connections) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, 1000);
        bool more = now_s() < deadline;
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            struct conn *c = &cs[i];
            if (c->fd < 0)
                continue;
            int r = step(c, i, more);
            if (r < 0) {
                fprintf(stderr, "loadgen: connection %d failed\n", i);
                ERR_print_errors_fp(stderr);
                return 1;
            }
            if (r == 1) {
                SSL_shutdown(c->ssl);
                SSL_free(c->ssl);
                close(c->fd);
                c->fd = -1;
                done++;
            }
        }
        if (n == 0 && now_s() > deadline + 30) {
            fprintf(stderr, "loadgen: replies stopped coming\n");
            return 1;
        }
    }
    double elapsed = now_s() - t0;
    qsort(lat, n_lat, sizeof *lat, cmp_double);
    double p50 = n_lat ? lat[n_lat / 2] : 0, p99 = n_lat ? lat[(size_t)((double)n_lat * 0.99)] : 0;
    printf("%s,%d,%d,%zu,%lu,%.0f,%.3f,%.3f\n", o.op, o.connections, o.pipeline, n_lat, errors,
           (double)n_lat / elapsed, p50, p99);
    for (int i = 0; i < o.connections; i++) {
        free(cs[i].out);
        free(cs[i].in);
    }
    free(cs);
    free(lat);
    SSL_CTX_free(ctx);
    return 0;
}
