/* The daemon's configuration file: defaults, durations, bounds, errors, reload rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "oncall.h"

static char path[64];

static int load(const char *text, struct config *c, char *err, size_t errlen)
{
    strcpy(path, "/tmp/fristad-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int rc = config_load(path, c, err, errlen);
    remove(path);
    return rc;
}

#define TLS "[tls]\ncert = s.crt\nkey = /abs/s.key\nca = ca.crt\n"

static void test_defaults_and_paths(void **state)
{
    (void)state;
    struct config *c = malloc(sizeof *c);
    char err[512];
    assert_int_equal(load(TLS, c, err, sizeof err), 0);
    assert_string_equal(c->listen_host, "127.0.0.1");
    assert_int_equal(c->listen_port, 7420);
    assert_int_equal(c->max_frame, 65536);
    assert_int_equal(c->hold_ttl_ms, 60 * 60 * 1000);
    assert_int_equal(c->stale_after_ms, 24LL * 3600 * 1000);
    assert_int_equal(c->reference_retention_ms, 24LL * 3600 * 1000);
    assert_int_equal(c->audit_retention_ms, 365LL * 24 * 3600 * 1000);
    assert_int_equal(c->rate, 20);
    assert_int_equal(c->redis_mode, REDIS_MODE_SPAWN);
    assert_string_equal(c->tls_cert, "/tmp/s.crt"); /* relative to the file's directory */
    assert_string_equal(c->tls_key, "/abs/s.key");
    /* The reference data defaults to the installed data directory. */
    char data[CONFIG_PATH_MAX + 32];
    snprintf(data, sizeof data, "%s/municipalities.csv", config_data_dir());
    assert_string_equal(c->municipalities, data);
    assert_string_equal(c->metrics_host, "127.0.0.1");
    assert_int_equal(c->metrics_port, 7421);
    free(c);
}

static void test_data_and_metrics(void **state)
{
    (void)state;
    struct config *c = malloc(sizeof *c);
    char err[512];
    /* A [data] path in the file is relative to the file, like any other path. */
    assert_int_equal(
        load(TLS "[data]\npolicy = strict.conf\n[metrics]\nlisten =\n", c, err, sizeof err), 0);
    assert_string_equal(c->policy, "/tmp/strict.conf");
    assert_string_equal(c->metrics_host, ""); /* empty: no metrics listener */
    assert_int_equal(load(TLS "[metrics]\nlisten = [::1]:0\n", c, err, sizeof err), 0);
    assert_string_equal(c->metrics_host, "::1");
    assert_int_equal(c->metrics_port, 0);
    assert_int_equal(load(TLS "[server]\nlisten =\n", c, err, sizeof err), -1);
    assert_non_null(strstr(err, "HOST:PORT"));
    assert_int_equal(load(TLS "[metrics]\nlisten = 9100\n", c, err, sizeof err), -1);
    assert_non_null(strstr(err, "or empty for none"));
    free(c);
}

static void test_values(void **state)
{
    (void)state;
    struct config *c = malloc(sizeof *c);
    char err[512];
    assert_int_equal(load(TLS "[server]\nlisten = [::1]:0\n"
                              "[holds]\nttl = 90s\nstale_after = 2h\nsweep_interval = 250ms\n"
                              "[redis]\nmode = connect\naddress = unix:/run/r.sock\n"
                              "namespace = t1\nwait_replicas = 1\n[log]\nlevel = debug\n",
                          c, err, sizeof err),
                     0);
    assert_string_equal(c->listen_host, "::1");
    assert_int_equal(c->listen_port, 0);
    assert_int_equal(c->hold_ttl_ms, 90000);
    assert_int_equal(c->stale_after_ms, 7200000);
    assert_int_equal(c->sweep_interval_ms, 250);
    assert_int_equal(c->redis_mode, REDIS_MODE_CONNECT);
    assert_int_equal(c->wait_replicas, 1);
    char addr[CONFIG_PATH_MAX + 24];
    config_redis_address(c, addr, sizeof addr);
    assert_string_equal(addr, "unix:/run/r.sock");
    free(c);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"[server]\nlisten = 127.0.0.1\n" TLS, "HOST:PORT"},
        {"[server]\nlisten = 127.0.0.1:99999\n" TLS, "HOST:PORT"},
        {"[server]\nmax_frame = 100\n" TLS, "from 1024"},
        {"[server]\nmax_frame = lots\n" TLS, "integer"},
        {"[server]\nrate = 50\nburst = 10\n" TLS, "burst must be at least rate"},
        {"[holds]\nttl = 10 minutes\n" TLS, "duration"},
        {"[holds]\nttl = -5s\n" TLS, "duration"},
        {"[holds]\nttl = 0\n" TLS, "duration"},
        {"[server]\ncolour = red\n" TLS, "unknown key [server] colour"},
        {"[redis]\nmode = cluster\n" TLS, "spawn, connect or sentinel"},
        {"[redis]\nmode = sentinel\nmaster_name = m\n" TLS, "sentinels is required"},
        {"[redis]\nmode = sentinel\nsentinels = 127.0.0.1:26379\n" TLS, "master_name is required"},
        {"[redis]\nmode = sentinel\nsentinels = 127.0.0.1:26379\nmaster_name = a b\n" TLS,
         "master_name"},
        {"[redis]\nmode = sentinel\nsentinels = 127.0.0.1\nmaster_name = m\n" TLS,
         "'127.0.0.1' is not HOST:PORT"},
        {"[redis]\nmode = sentinel\nsentinels = a:1,b:0\nmaster_name = m\n" TLS,
         "'b:0' is not HOST:PORT"},
        {"[redis]\nmode = sentinel\nsentinels = a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9,j:10,k:11,"
         "l:12,m:13,n:14,o:15,p:16,q:17\nmaster_name = m\n" TLS,
         "at most 16"},
        {"[redis]\nmode = sentinel\nsentinels = a:1\nmaster_name = m\naddress = b:2\n" TLS,
         "address does not apply"},
        {"[redis]\nmode = connect\naddress = b:2\nsentinels = a:1\n" TLS,
         "apply only with mode = sentinel"},
        {"[redis]\npassword_file = /nonexistent\n" TLS, "does not apply with mode = spawn"},
        {"[redis]\nmode = connect\naddress = b:2\npassword_file = /nonexistent/pw\n" TLS,
         "cannot open"},
        {"[server]\nhealth_listen = nowhere\n" TLS, "health_listen must be HOST:PORT"},
        {"[redis]\nmode = connect\n" TLS, "address is required"},
        {"[redis]\nnamespace = a b\n" TLS, "namespace"},
        {"[log]\nlevel = loud\n" TLS, "error, warning"},
        {"[server]\nrate = 5\nrate = 6\n" TLS, "set twice"},
        {"[server]\n", "cert, key and ca are required"},
        {"this is not ini\n" TLS, "syntax"},
        {"[oncall]\njour = 0180, 9999\n" TLS, "'9999' is neither a municipality code"},
        {"[oncall]\njour = 0180;0181\n" TLS, "neither a municipality code"},
        {"[oncall]\njour = 99\n" TLS, "neither a municipality code"},
        {"[oncall]\n-jour = 0180\n" TLS, "an on-call id is"},
        {"[retention]\nmode = keep\n" TLS, "delete or archive"},
        {"[retention]\nmode = archive\n" TLS, "archive_dir is required"},
    };
    struct config *c = malloc(sizeof *c);
    char err[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(load(bad[i].text, c, err, sizeof err), -1);
        if (!strstr(err, bad[i].why))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].why);
    }
    assert_int_equal(config_load("/nonexistent/fristadd.conf", c, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
    free(c);
}

static void test_sentinel_mode(void **state)
{
    (void)state;
    struct config *c = malloc(sizeof *c);
    char err[512];
    assert_int_equal(load(TLS "[redis]\nmode = sentinel\nmaster_name = fristad-1\n"
                              "sentinels = 10.0.0.1:26379, [::1]:26380,s3.example:26381\n"
                              "[server]\nhealth_listen = 127.0.0.1:7421\n",
                          c, err, sizeof err),
                     0);
    assert_int_equal(c->redis_mode, REDIS_MODE_SENTINEL);
    assert_string_equal(c->redis_master_name, "fristad-1");
    assert_string_equal(c->health_host, "127.0.0.1");
    assert_int_equal(c->health_port, 7421);
    char addr[CONFIG_PATH_MAX + 24] = "x";
    config_redis_address(c, addr, sizeof addr);
    assert_string_equal(addr, "");
    assert_int_equal(config_each_sentinel(c->redis_sentinels, NULL, NULL, err, sizeof err), 3);
    free(c);
}

/* Writes a password file with the given mode; returns its path (static). */
static const char *secret_file(const char *text, mode_t mode)
{
    static char spath[64];
    strcpy(spath, "/tmp/fristad-secret-XXXXXX");
    int fd = mkstemp(spath);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    return spath;
}

static void test_password_files(void **state)
{
    (void)state;
    struct config *c = malloc(sizeof *c);
    char err[512], text[2048];
    static const struct {
        const char *content;
        mode_t mode;
        const char *password; /* NULL: refused, with `why` in the message */
        const char *why;
    } cases[] = {
        {"s3cret\n", 0600, "s3cret", NULL},
        {"  with blanks around \r\nsecond line\n", 0400, "with blanks around", NULL},
        {"s3cret\n", 0640, NULL, "readable by nobody else"},
        {"s3cret\n", 0604, NULL, "readable by nobody else"},
        {"\n", 0600, NULL, "must hold a password"},
        {"tab\there\x01\n", 0600, NULL, "control character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *sp = secret_file(cases[i].content, cases[i].mode);
        snprintf(text, sizeof text,
                 TLS "[redis]\nmode = sentinel\nsentinels = 127.0.0.1:26379\nmaster_name = m\n"
                     "password_file = %s\nsentinel_password_file = %s\n",
                 sp, sp);
        err[0] = '\0';
        int rc = load(text, c, err, sizeof err);
        remove(sp);
        if (cases[i].password) {
            if (rc != 0)
                fail_msg("case %zu: %s", i, err);
            assert_string_equal(c->redis_password, cases[i].password);
            assert_string_equal(c->sentinel_password, cases[i].password);
        } else {
            assert_int_equal(rc, -1);
            if (!strstr(err, cases[i].why))
                fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].why);
        }
    }
    /* Too long for a password. */
    char longpw[CONFIG_SECRET_MAX + 10];
    memset(longpw, 'x', sizeof longpw - 1);
    longpw[sizeof longpw - 1] = '\0';
    const char *sp = secret_file(longpw, 0600);
    snprintf(text, sizeof text, TLS "[redis]\nmode = connect\naddress = r:1\npassword_file = %s\n",
             sp);
    assert_int_equal(load(text, c, err, sizeof err), -1);
    remove(sp);
    assert_non_null(strstr(err, "must hold a password"));
    free(c);
}

static void test_durations(void **state)
{
    (void)state;
    assert_int_equal(config_parse_duration("10"), 10000);
    assert_int_equal(config_parse_duration("1.5s"), 1500);
    assert_int_equal(config_parse_duration("250ms"), 250);
    assert_int_equal(config_parse_duration("5m"), 300000);
    assert_int_equal(config_parse_duration("2h"), 7200000);
    assert_int_equal(config_parse_duration("365d"), 365LL * 86400000);
    assert_int_equal(config_parse_duration(""), -1);
    assert_int_equal(config_parse_duration("5 m"), -1);
    assert_int_equal(config_parse_duration("5w"), -1);
}

static void test_reload_keeps_fixed_keys(void **state)
{
    (void)state;
    struct config *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    char err[512];
    assert_int_equal(load(TLS "[server]\nlisten = 127.0.0.1:7000\n[redis]\nnamespace = one\n", a,
                          err, sizeof err),
                     0);
    assert_int_equal(load(TLS "[server]\nlisten = 0.0.0.0:8000\nrate = 7\nburst = 9\n"
                              "[redis]\nnamespace = two\n[metrics]\nlisten = 127.0.0.1:9\n",
                          b, err, sizeof err),
                     0);
    config_keep_fixed(a, b);
    assert_string_equal(b->metrics_host, "127.0.0.1");
    assert_int_equal(b->metrics_port, 7421);
    assert_string_equal(b->listen_host, "127.0.0.1");
    assert_int_equal(b->listen_port, 7000);
    assert_string_equal(b->redis_namespace, "one");
    assert_int_equal(b->rate, 7); /* reloadable: the new value stands */
    free(a);
    free(b);
}

static void test_oncall_areas(void **state)
{
    (void)state;
    struct config *c = malloc(sizeof *c);
    char err[512], area[ONCALL_AREA_TEXT_MAX + 1];
    assert_int_equal(load(TLS "[oncall]\n"
                              "socialjour-sthlm = 0180,0181, 0182\n"
                              "socialjour-gbg = 1480\n"
                              "  1481 1482\n" /* a continuation line adds to the area */
                              "socialjour-uppsala = 03\n"
                              "socialjour-ingen =\n",
                          c, err, sizeof err),
                     0);
    assert_int_equal(c->n_oncall, 4);
    assert_true(oncall_serves(c, "socialjour-sthlm", "0180"));
    assert_true(oncall_serves(c, "socialjour-sthlm", "0182"));
    assert_false(oncall_serves(c, "socialjour-sthlm", "0114"));
    assert_false(oncall_serves(c, "socialjour-sthlm", "1480"));
    assert_true(oncall_serves(c, "socialjour-gbg", "1482"));
    assert_true(oncall_serves(c, "socialjour-uppsala", "0380")); /* Uppsala, county 03 */
    assert_true(oncall_serves(c, "socialjour-uppsala", "0305"));
    assert_false(oncall_serves(c, "socialjour-uppsala", "0180"));
    /* Listed without municipalities, or not listed at all: acts for none. */
    assert_false(oncall_serves(c, "socialjour-ingen", "0180"));
    assert_false(oncall_serves(c, "socialjour-okand", "0180"));
    assert_false(oncall_serves(c, "socialjour-sthlm", "9999"));
    assert_false(oncall_serves(c, "socialjour-sthlm", NULL));
    assert_int_equal(oncall_area_text(c, "socialjour-sthlm", area, sizeof area), 0);
    assert_string_equal(area, "0180,0181,0182");
    assert_int_equal(oncall_area_text(c, "socialjour-ingen", area, sizeof area), 0);
    assert_string_equal(area, "");
    assert_int_equal(oncall_area_text(c, "socialjour-okand", area, sizeof area), 0);
    assert_string_equal(area, "");
    /* The whole country fits the text the store is sent. */
    assert_int_equal(load(TLS "[oncall]\nriks = 01 03 04 05 06 07 08 09 10 12 13 14 17 18 19 20 "
                              "21 22 23 24 25\n",
                          c, err, sizeof err),
                     0);
    assert_int_equal(oncall_area_text(c, "riks", area, sizeof area), 0);
    assert_int_equal(strlen(area), PROTO_MUNICIPALITIES * 5 - 1);
    free(c);
}

/* Deleting is the default; archiving names a directory, relative to the file's like any path. */
static void test_retention(void **state)
{
    (void)state;
    struct config *c = malloc(sizeof *c);
    char err[512];
    assert_int_equal(load(TLS, c, err, sizeof err), 0);
    assert_int_equal(c->retention_mode, RETENTION_DELETE);
    assert_string_equal(c->archive_dir, "");
    assert_int_equal(
        load(TLS "[retention]\nmode = archive\narchive_dir = arkiv\n", c, err, sizeof err), 0);
    assert_int_equal(c->retention_mode, RETENTION_ARCHIVE);
    assert_string_equal(c->archive_dir, "/tmp/arkiv");
    free(c);
}

static void test_example_file_parses(void **state)
{
    (void)state;
    struct config *c = malloc(sizeof *c);
    char err[512];
    if (config_load(FRISTAD_SOURCE_ROOT "/conf/fristadd.conf.example", c, err, sizeof err) != 0)
        fail_msg("%s", err);
    free(c);
}

/*
 * conf/fristadd.conf.example documents every key of the table, and nothing else (besides the
 * on-call ids of [oncall], which name no key): each one as
 * "key = DEFAULT" (or commented out, ";key = DEFAULT"; any value for a key without a default)
 * below comment lines that end with "reload" or "no reload" as the table says. The man page
 * fristadd.conf(5) is made from it.
 */
static void test_example_documents_every_key(void **state)
{
    (void)state;
    FILE *f = fopen(FRISTAD_SOURCE_ROOT "/conf/fristadd.conf.example", "r");
    assert_non_null(f);
    char line[512], section[64] = "", last_comment[512] = "";
    bool seen[128] = {false};
    struct config_key_info k;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char name[64], value[256] = "";
        const char *p = line;
        if (sscanf(line, "[%63[^]]]", section) == 1)
            continue;
        if (strcmp(section, "oncall") == 0)
            continue; /* on-call ids and their areas, not keys: test_oncall_areas */
        if (line[0] == ';' && line[1] == ' ') {
            snprintf(last_comment, sizeof last_comment, "%s", line);
            continue;
        }
        if (line[0] == ';')
            p++;
        if (sscanf(p, "%63[a-z_] = %255[^\n]", name, value) < 1 || !strchr(p, '='))
            continue;
        size_t i = 0;
        while (config_key_at(i, &k) && (strcmp(k.section, section) || strcmp(k.name, name)))
            i++;
        if (!config_key_at(i, &k))
            fail_msg("the example sets [%s] %s, which the table does not know", section, name);
        seen[i] = true;
        /* A key without a default (the certificates) shows an example value instead. */
        if (k.def[0] && strcmp(value, k.def) != 0)
            fail_msg("[%s] %s: the example says '%s', the default is '%s'", section, name, value,
                     k.def);
        size_t n = strlen(last_comment);
        bool says_no = n >= 9 && strcmp(last_comment + n - 9, "no reload") == 0;
        bool says_reload = n >= 6 && strcmp(last_comment + n - 6, "reload") == 0;
        if (!says_reload || says_no == k.reload)
            fail_msg("[%s] %s: its comment must end with '%s'", section, name,
                     k.reload ? "reload" : "no reload");
    }
    fclose(f);
    for (size_t i = 0; config_key_at(i, &k); i++) {
        if (!seen[i])
            fail_msg("conf/fristadd.conf.example does not document [%s] %s", k.section, k.name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_paths),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_sentinel_mode),
        cmocka_unit_test(test_password_files),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_reload_keeps_fixed_keys),
        cmocka_unit_test(test_oncall_areas),
        cmocka_unit_test(test_example_file_parses),
        cmocka_unit_test(test_example_documents_every_key),
        cmocka_unit_test(test_data_and_metrics),
        cmocka_unit_test(test_retention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
