/* Local time in and out (times.h). */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "times.h"

const char *times_iso(int64_t ms, char *buf, size_t cap)
{
    int64_t s = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    time_t t = (time_t)s;
    struct tm tm;
    char date[32];
    if (!localtime_r(&t, &tm) || strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return NULL;
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(buf, cap, "%s.%03d%c%02ld:%02ld", date, (int)(ms - s * 1000), sign, off / 3600,
             off % 3600 / 60);
    return buf;
}

/* Reads exactly `width` digits at *p. */
static bool take_digits(const char **p, unsigned width, int *out)
{
    int v = 0;
    for (unsigned i = 0; i < width; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += width;
    *out = v;
    return true;
}

static bool take_char(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

/*
 * A local wall-clock time as seconds since 1970: 1 when it exists once, 0 when the clocks skip
 * it, 2 when it happens twice (*t is then the earlier).
 */
static int local_time(const struct tm *want, time_t *t)
{
    time_t found[2];
    int n = 0;
    for (int dst = 0; dst <= 1; dst++) {
        struct tm tm = *want, back;
        tm.tm_isdst = dst;
        time_t v = mktime(&tm);
        if (v == (time_t)-1 || !localtime_r(&v, &back))
            continue;
        if (back.tm_year != want->tm_year || back.tm_mon != want->tm_mon ||
            back.tm_mday != want->tm_mday || back.tm_hour != want->tm_hour ||
            back.tm_min != want->tm_min || back.tm_sec != want->tm_sec)
            continue;
        if (n == 0 || found[0] != v)
            found[n++] = v;
    }
    if (n == 2 && found[1] < found[0])
        found[0] = found[1];
    if (n > 0)
        *t = found[0];
    return n;
}

/* YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM]; local time without Z or an offset. */
static bool parse_iso(const char *v, int64_t *ms, char *why, size_t cap)
{
    const char *p = v;
    int year, mon, day, hour = 0, min = 0, sec = 0, frac_ms = 0, off = 0;
    bool zoned = false;
    if (!take_digits(&p, 4, &year) || !take_char(&p, '-') || !take_digits(&p, 2, &mon) ||
        !take_char(&p, '-') || !take_digits(&p, 2, &day))
        return false;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!take_digits(&p, 2, &hour) || !take_char(&p, ':') || !take_digits(&p, 2, &min))
            return false;
        if (take_char(&p, ':')) {
            if (!take_digits(&p, 2, &sec))
                return false;
            if (take_char(&p, '.') || take_char(&p, ',')) {
                int scale = 100, d;
                if (!isdigit((unsigned char)*p))
                    return false;
                while (take_digits(&p, 1, &d)) {
                    frac_ms += d * scale;
                    scale /= 10;
                }
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
            zoned = true;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om = 0;
            p++;
            if (!take_digits(&p, 2, &oh))
                return false;
            if (take_char(&p, ':') || isdigit((unsigned char)*p)) {
                if (!take_digits(&p, 2, &om))
                    return false;
            }
            if (oh > 23 || om > 59)
                return false;
            off = sign * (oh * 3600 + om * 60);
            zoned = true;
        }
    }
    if (*p != '\0')
        return false;
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 ||
        sec > 59)
        return false;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec};
    time_t t;
    if (zoned) {
        t = timegm(&tm);
        if (t == (time_t)-1 || tm.tm_mday != day) /* timegm normalises 31 April to 1 May */
            return false;
        *ms = ((int64_t)t - off) * 1000 + frac_ms;
        return true;
    }
    struct tm check = tm;
    if (timegm(&check) == (time_t)-1 || check.tm_mday != day)
        return false;
    switch (local_time(&tm, &t)) {
    case 0:
        snprintf(why, cap,
                 "%s does not exist in local time: the clocks skip it; give a time after the "
                 "change, or one with an offset such as %sZ",
                 v, v);
        return false;
    case 2: {
        struct tm a, b;
        time_t later = t + 3600;
        localtime_r(&t, &a);
        localtime_r(&later, &b);
        char oa[32], ob[32];
        snprintf(oa, sizeof oa, "%+03ld:%02ld", a.tm_gmtoff / 3600, labs(a.tm_gmtoff) % 3600 / 60);
        snprintf(ob, sizeof ob, "%+03ld:%02ld", b.tm_gmtoff / 3600, labs(b.tm_gmtoff) % 3600 / 60);
        snprintf(why, cap,
                 "%s happens twice in local time, as the clocks go back; add the offset: %s%s "
                 "(the first) or %s%s (the second)",
                 v, v, oa, v, ob);
        return false;
    }
    default:
        *ms = (int64_t)t * 1000 + frac_ms;
        return true;
    }
}

bool times_parse(const char *v, int64_t now_ms, int64_t *ms, char *why, size_t cap)
{
    size_t len = strlen(v), digits = strspn(v, "0123456789");
    why[0] = '\0';
    if (len > 0 && digits == len) {
        if (len > 18)
            return false;
        long long x = 0;
        sscanf(v, "%lld", &x);
        *ms = x;
        return true;
    }
    if (digits > 0 && digits <= 9 && digits == len - 1 && strchr("smhdw", v[len - 1])) {
        static const int64_t unit_ms[] = {1000, 60000, 3600000, 86400000, 604800000};
        int64_t unit = unit_ms[strchr("smhdw", v[len - 1]) - "smhdw"];
        long long x = 0;
        sscanf(v, "%lld", &x);
        *ms = now_ms - x * unit;
        return true;
    }
    return parse_iso(v, ms, why, cap);
}
