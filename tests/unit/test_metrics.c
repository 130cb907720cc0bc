/*
 * The daemon's metrics: latencies land in the right bucket, the index is counted as the gauges
 * say, and the exposition is Prometheus text: HELP and TYPE before each family's samples, every
 * sample "name{labels} value", cumulative histogram buckets ending in +Inf.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static struct idx_shelter *shelter(const char *id, unsigned n_units)
{
    struct idx_shelter *s = calloc(1, sizeof *s);
    assert_non_null(s);
    snprintf(s->id, sizeof s->id, "%s", id);
    s->units = calloc(n_units, sizeof *s->units);
    assert_non_null(s->units);
    s->n_units = n_units;
    for (unsigned i = 0; i < n_units; i++) {
        snprintf(s->units[i].id, sizeof s->units[i].id, "u%u", i);
        s->units[i].state = VAC_FREE;
    }
    return s;
}

static void test_latency_buckets(void **state)
{
    (void)state;
    struct metrics *m = calloc(1, sizeof *m);
    assert_non_null(m);
    metrics_request_done(m, OP_SEARCH, PROTO_OK, 100);         /* on the first bound */
    metrics_request_done(m, OP_SEARCH, PROTO_OK, 101);         /* just above it */
    metrics_request_done(m, OP_SEARCH, PROTO_OK, 10000000);    /* past the last */
    metrics_request_done(m, OP_SEARCH, PROTO_E_FORBIDDEN, -1); /* counted, not timed */
    metrics_request_done(m, OP__COUNT, PROTO_E_BAD_FRAME, -1);
    assert_int_equal(m->ops[OP_SEARCH].latency[0], 1);
    assert_int_equal(m->ops[OP_SEARCH].latency[1], 1);
    assert_int_equal(m->ops[OP_SEARCH].latency[METRICS_BUCKETS], 1);
    assert_int_equal(m->ops[OP_SEARCH].latency_sum_us, 100 + 101 + 10000000);
    assert_int_equal(m->ops[OP_SEARCH].by_code[PROTO_OK], 3);
    assert_int_equal(m->ops[OP_SEARCH].by_code[PROTO_E_FORBIDDEN], 1);
    assert_int_equal(m->ops[OP__COUNT].by_code[PROTO_E_BAD_FRAME], 1);
    free(m);
}

static void test_index_gauges(void **state)
{
    (void)state;
    struct index ix;
    index_init(&ix);
    struct idx_shelter *a = shelter("a", 3), *b = shelter("b", 2), *c = shelter("c", 1);
    a->updated_ms = 1000; /* stale at now = 100000 with stale_after 50000 */
    a->units[1].held = true;
    a->units[2].placed = true;
    b->updated_ms = 90000;
    b->paused = true;
    c->retired = true;
    assert_int_equal(index_put_take(&ix, a), 0);
    assert_int_equal(index_put_take(&ix, b), 0);
    assert_int_equal(index_put_take(&ix, c), 0);
    struct metrics_index g;
    metrics_count_index(&ix, 100000, 50000, &g);
    assert_int_equal(g.shelters, 2);
    assert_int_equal(g.shelters_stale, 1);
    assert_int_equal(g.shelters_paused, 1);
    assert_int_equal(g.units_free, 1); /* a/u0; b is paused, c retired */
    assert_int_equal(g.holds_held, 1);
    assert_int_equal(g.placements_active, 1);
    index_clear(&ix);
}

/* Checks one line of the exposition; returns the family a sample belongs to. */
static void check_line(const char *line, char *family, size_t cap)
{
    char name[128], type[32];
    if (sscanf(line, "# HELP %127s ", name) == 1) {
        snprintf(family, cap, "%s", name);
        return;
    }
    if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
        assert_string_equal(name, family);
        assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                    strcmp(type, "histogram") == 0);
        return;
    }
    size_t n = strspn(line, "abcdefghijklmnopqrstuvwxyz_");
    assert_true(n > 0);
    if (strncmp(line, family, strlen(family)) != 0)
        fail_msg("sample outside its family %s: %s", family, line);
    const char *p = line + n;
    if (*p == '{') {
        const char *close = strchr(p, '}');
        assert_non_null(close);
        p = close + 1;
    }
    assert_true(*p == ' ');
    char *end;
    if (strcmp(p + 1, "NaN") != 0) {
        strtod(p + 1, &end);
        if (*end != '\0')
            fail_msg("not a number: %s", line);
    }
}

static void test_exposition_format(void **state)
{
    (void)state;
    struct metrics *m = calloc(1, sizeof *m);
    assert_non_null(m);
    metrics_request_done(m, OP_SEARCH, PROTO_OK, 700);
    metrics_request_done(m, OP_SEARCH, PROTO_OK, 3000);
    struct metrics_searches pending = {.searches = 2, .no_match = 1};
    pending.reasons[REASON_BOYS_AGE] = 1;
    struct metrics_view v = {.m = m,
                             .searches_pending = &pending,
                             .version = "test",
                             .store_up = true,
                             .index_loaded = true,
                             .index_version = 7};
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(metrics_render(&v, out), 0);
    assert_int_equal(fclose(out), 0);
    char family[128] = "";
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        check_line(line, family, sizeof family);
    free(text);
    out = open_memstream(&text, &len);
    assert_int_equal(metrics_render(&v, out), 0);
    assert_int_equal(fclose(out), 0);
    assert_non_null(strstr(text, "fristad_requests_total{op=\"search\",code=\"ok\"} 2\n"));
    assert_non_null(
        strstr(text, "fristad_request_duration_seconds_bucket{op=\"search\",le=\"0.0005\"} 0\n"));
    assert_non_null(
        strstr(text, "fristad_request_duration_seconds_bucket{op=\"search\",le=\"0.001\"} 1\n"));
    assert_non_null(
        strstr(text, "fristad_request_duration_seconds_bucket{op=\"search\",le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(text, "fristad_request_duration_seconds_sum{op=\"search\"} 0.003700\n"));
    assert_non_null(strstr(text, "fristad_index_version 7\n"));
    assert_non_null(strstr(text, "fristad_index_last_change_age_seconds NaN\n"));
    assert_non_null(
        strstr(text, "fristad_searches_no_match_reasons_total{reason=\"boys_age\"} 1\n"));
    assert_non_null(strstr(text, "fristad_redis_up{link=\"events\"} 0\n"));
    free(text);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latency_buckets),
        cmocka_unit_test(test_index_gauges),
        cmocka_unit_test(test_exposition_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
