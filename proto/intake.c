/*
 * Intake hours: the text a shelter gives ("24/7", "mon-fri 08:00-16:30,sat 10:00-14:00") and its
 * canonical form. What time it is in Stockholm is the daemon's business (daemon/intake.c); this
 * file only reads and writes the text, so the client can check it before sending.
 */
#include <stdio.h>
#include <string.h>

#include "proto_internal.h"

static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static const char *FORMAT_HELP = "intake hours must be 24/7, or ranges such as "
                                 "'mon-fri 08:00-16:30,sat 10:00-14:00' (days mon..sun or "
                                 "daily, times HH:MM in Swedish local time)";

static int day_parse(const char *s, size_t n)
{
    for (int d = 0; d < 7; d++) {
        if (proto_str_eq(s, n, day_names[d]))
            return d;
    }
    return -1;
}

/* "mon", "mon-fri", "sat-sun", "fri-mon" (wraps) or "daily" -> day bits. */
static bool parse_days(const char *s, size_t n, uint8_t *out)
{
    if (proto_str_eq(s, n, "daily")) {
        *out = 0x7f;
        return true;
    }
    const char *dash = memchr(s, '-', n);
    int a = day_parse(s, dash ? (size_t)(dash - s) : n);
    int b = dash ? day_parse(dash + 1, n - (size_t)(dash - s) - 1) : a;
    if (a < 0 || b < 0)
        return false;
    uint8_t bits = 0;
    for (int d = a;; d = (d + 1) % 7) {
        bits |= (uint8_t)(1u << d);
        if (d == b)
            break;
    }
    *out = bits;
    return true;
}

/* "HH:MM" with 00:00 to 24:00. */
static bool parse_time(const char *s, size_t n, uint16_t *out)
{
    if (n != 5 || s[2] != ':')
        return false;
    for (int i = 0; i < 5; i++) {
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return false;
    }
    unsigned h = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
    unsigned m = (unsigned)(s[3] - '0') * 10 + (unsigned)(s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0))
        return false;
    *out = (uint16_t)(h * 60 + m);
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

enum proto_err proto_intake_parse(const char *s, size_t n, struct proto_intake *out,
                                  struct proto_error *err)
{
    memset(out, 0, sizeof *out);
    while (n > 0 && is_space(s[n - 1]))
        n--;
    while (n > 0 && is_space(*s)) {
        s++;
        n--;
    }
    if (proto_str_eq(s, n, "24/7")) {
        out->always = true;
        return PROTO_OK;
    }
    size_t i = 0;
    while (i <= n) {
        size_t end = i;
        while (end < n && s[end] != ',')
            end++;
        const char *r = s + i;
        size_t rn = end - i;
        while (rn > 0 && is_space(*r)) {
            r++;
            rn--;
        }
        while (rn > 0 && is_space(r[rn - 1]))
            rn--;
        const char *sp = memchr(r, ' ', rn);
        struct proto_intake_range range;
        if (!sp || out->n >= PROTO_MAX_INTAKE)
            return proto_fail(err, PROTO_E_BAD_REQUEST, "%s%s", FORMAT_HELP,
                              out->n >= PROTO_MAX_INTAKE ? "; at most 14 ranges" : "");
        const char *t = sp;
        while (t < r + rn && is_space(*t))
            t++;
        size_t tn = (size_t)(r + rn - t);
        const char *dash = memchr(t, '-', tn);
        if (!parse_days(r, (size_t)(sp - r), &range.days) || !dash ||
            !parse_time(t, (size_t)(dash - t), &range.from) ||
            !parse_time(dash + 1, tn - (size_t)(dash - t) - 1, &range.to) || range.from == 1440 ||
            range.from == range.to)
            return proto_fail(err, PROTO_E_BAD_REQUEST, "%s", FORMAT_HELP);
        out->r[out->n++] = range;
        if (end == n)
            break;
        i = end + 1;
    }
    if (out->n == 0)
        return proto_fail(err, PROTO_E_BAD_REQUEST, "%s", FORMAT_HELP);
    return PROTO_OK;
}

/* The days of a range as text: "daily", "mon", "mon-fri", "sat-sun", or a wrapping run. */
static int format_days(uint8_t days, char *buf, size_t cap)
{
    if (days == 0x7f)
        return snprintf(buf, cap, "daily");
    /* A contiguous run, possibly wrapping: find its first day (set, previous day unset). */
    for (int a = 0; a < 7; a++) {
        if (!(days & (1u << a)) || (days & (1u << ((a + 6) % 7))))
            continue;
        int b = a;
        while (days & (1u << ((b + 1) % 7)))
            b = (b + 1) % 7;
        return a == b ? snprintf(buf, cap, "%s", day_names[a])
                      : snprintf(buf, cap, "%s-%s", day_names[a], day_names[b]);
    }
    return -1;
}

int proto_intake_format(const struct proto_intake *in, char *buf, size_t cap)
{
    if (in->always)
        return snprintf(buf, cap, "24/7") < (int)cap ? 4 : -1;
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < in->n; i++) {
        char days[16];
        const struct proto_intake_range *r = &in->r[i];
        if (format_days(r->days, days, sizeof days) < 0)
            return -1;
        int w = snprintf(buf + used, cap - used, "%s%s %02u:%02u-%02u:%02u", i ? "," : "", days,
                         r->from / 60u, r->from % 60u, r->to / 60u, r->to % 60u);
        if (w < 0 || (size_t)w >= cap - used)
            return -1;
        used += (size_t)w;
    }
    return (int)used;
}
