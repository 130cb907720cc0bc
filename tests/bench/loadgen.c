/*
 * Load generator for fristadd: N connections, each in its own thread, each sending batches of
 * P pipelined requests of one op for a fixed time, over mutually authenticated TLS. Prints one
 * CSV line: op,connections,pipeline,requests,errors,ops_per_s,p50_ms,p99_ms.
 * It measures; it asserts nothing.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fristad/proto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

struct opts {
    const char *host, *port, *cert, *key, *ca, *op, *shelter;
    int connections, pipeline, seconds, units;
};

struct worker {
    pthread_t thread;
    const struct opts *o;
    SSL_CTX *ctx;
    int index;
    double *lat; /* milliseconds, one per reply */
    size_t n, cap;
    unsigned long errors;
    int failed;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_tcp(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, res->ai_socktype, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void build(const struct opts *o, int worker, uint64_t seq, struct proto_request *r)
{
    memset(r, 0, sizeof *r);
    r->id = seq;
    r->has_id = true;
    struct proto_args *a = &r->args;
    if (strcmp(o->op, "search") == 0) {
        static const char *const homes[] = {"0180", "1480", "1280", "0380", "2580", "0580"};
        r->op = OP_SEARCH;
        strcpy(a->home, homes[seq % 6]);
        a->risk = (uint8_t)(seq % RISK__COUNT);
        a->n_children = 2;
        a->children[0] = (struct proto_child){.age = 14, .sex = 'm'};
        a->children[1] = (struct proto_child){.age = 6, .sex = 'f'};
        a->present = PROTO_BIT(F_HOME) | PROTO_BIT(F_RISK) | PROTO_BIT(F_CHILDREN);
    } else if (strcmp(o->op, "vacancy") == 0) {
        r->op = OP_VACANCY_SET;
        snprintf(a->shelter, sizeof a->shelter, "%s", o->shelter);
        snprintf(a->unit, sizeof a->unit, "u%d",
                 (int)((seq + (uint64_t)worker) % (uint64_t)o->units) + 1);
        a->state = (uint8_t)(seq % 2 ? VAC_FREE : VAC_CLOSED);
        a->present = PROTO_BIT(F_SHELTER) | PROTO_BIT(F_UNIT) | PROTO_BIT(F_STATE);
    } else if (strcmp(o->op, "free") == 0) {
        r->op = OP_FREE;
        strcpy(a->county, "01");
        a->present = PROTO_BIT(F_COUNTY);
    } else {
        r->op = OP_WHOAMI;
    }
}

static int read_full(SSL *ssl, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        int r = SSL_read(ssl, buf + got, (int)(n - got));
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    const struct opts *o = w->o;
    int fd = connect_tcp(o->host, o->port);
    SSL *ssl = fd >= 0 ? SSL_new(w->ctx) : NULL;
    if (!ssl || !SSL_set_fd(ssl, fd) || SSL_connect(ssl) != 1) {
        w->failed = 1;
        return NULL;
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    uint8_t *body = malloc(PROTO_MAX_MAX_FRAME);
    double deadline = now_s() + o->seconds;
    uint64_t seq = 1;
    while (now_s() < deadline && !w->failed) {
        msgpack_sbuffer_clear(&sb);
        for (int i = 0; i < o->pipeline; i++) {
            struct proto_request req;
            size_t start = sb.size;
            build(o, w->index, seq++, &req);
            msgpack_sbuffer_write(&sb, "\0\0\0\0", 4);
            if (proto_pack_request(&pk, &req) != 0) {
                w->failed = 1;
                break;
            }
            proto_frame_put_header((uint8_t *)sb.data + start, (uint32_t)(sb.size - start - 4));
        }
        double sent = now_s();
        if (SSL_write(ssl, sb.data, (int)sb.size) != (int)sb.size) {
            w->failed = 1;
            break;
        }
        for (int i = 0; i < o->pipeline; i++) {
            uint8_t hdr[4];
            uint32_t len;
            if (read_full(ssl, hdr, 4) < 0 ||
                proto_frame_peek(hdr, 4, PROTO_MAX_MAX_FRAME, &len) == PROTO_FRAME_TOO_LARGE ||
                read_full(ssl, body, len) < 0) {
                w->failed = 1;
                break;
            }
            struct proto_reply rep;
            struct proto_error perr;
            if (proto_decode_reply(body, len, &rep, &perr) != PROTO_OK) {
                if (w->errors++ == 0)
                    fprintf(stderr, "loadgen: %s: undecodable reply: %s\n", o->op, perr.message);
            } else {
                if (!rep.ok && w->errors++ == 0)
                    fprintf(stderr, "loadgen: %s: %s: %s\n", o->op, rep.code_text, rep.message);
                proto_reply_free(&rep);
            }
            if (w->n == w->cap) {
                w->cap = w->cap ? w->cap * 2 : 65536;
                w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
                if (!w->lat) {
                    w->failed = 1;
                    break;
                }
            }
            w->lat[w->n++] = (now_s() - sent) * 1000.0;
        }
    }
    free(body);
    msgpack_sbuffer_destroy(&sb);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    struct opts o = {.connections = 4, .pipeline = 8, .seconds = 5, .units = 8, .op = "whoami"};
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
    }
    if (!o.host || !o.cert || !o.key || !o.ca || o.connections < 1 || o.pipeline < 1 ||
        o.units < 1 || (!strcmp(o.op, "vacancy") && !o.shelter)) {
        fprintf(stderr, "usage: loadgen --server H:P --cert C --key K --ca CA --op "
                        "whoami|search|free|vacancy [--shelter S --units N] [--connections N] "
                        "[--pipeline P] [--seconds S]\n");
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
    struct worker *ws = calloc((size_t)o.connections, sizeof *ws);
    double t0 = now_s();
    for (int i = 0; i < o.connections; i++) {
        ws[i] = (struct worker){.o = &o, .ctx = ctx, .index = i};
        pthread_create(&ws[i].thread, NULL, run, &ws[i]);
    }
    size_t total = 0;
    unsigned long errors = 0;
    int failed = 0;
    for (int i = 0; i < o.connections; i++) {
        pthread_join(ws[i].thread, NULL);
        total += ws[i].n;
        errors += ws[i].errors;
        failed |= ws[i].failed;
    }
    double elapsed = now_s() - t0;
    double *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < o.connections; i++) {
        memcpy(all + k, ws[i].lat, ws[i].n * sizeof *all);
        k += ws[i].n;
        free(ws[i].lat);
    }
    qsort(all, total, sizeof *all, cmp_double);
    double p50 = total ? all[total / 2] : 0, p99 = total ? all[(size_t)((double)total * 0.99)] : 0;
    printf("%s,%d,%d,%zu,%lu,%.0f,%.3f,%.3f%s\n", o.op, o.connections, o.pipeline, total, errors,
           (double)total / elapsed, p50, p99, failed ? ",connection-failed" : "");
    free(all);
    free(ws);
    SSL_CTX_free(ctx);
    return failed ? 1 : 0;
}
