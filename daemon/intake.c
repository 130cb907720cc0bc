/* Intake hours against the clock: see intake.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "intake.h"

int intake_tz_setup(void)
{
    if (setenv("TZ", "Europe/Stockholm", 1) != 0)
        return -1;
    tzset();
    /* Without the zone file glibc falls back to UTC, silently: check that it is there. */
    return strcmp(tzname[0], "CET") == 0 ? 0 : -1;
}

/* The last minute worked out: a search's arrival is usually now, and local time changes (even
 * across a daylight-saving change) only at whole minutes. */
static int64_t cached_minute = INT64_MIN;
static struct intake_moment cached;

void intake_moment_of(int64_t ms, struct intake_moment *out)
{
    int64_t minute = ms >= 0 ? ms / 60000 : (ms - 59999) / 60000;
    if (minute != cached_minute) {
        time_t t = (time_t)(minute * 60);
        struct tm tm;
        localtime_r(&t, &tm);
        cached.wday = (tm.tm_wday + 6) % 7;
        cached.minute = tm.tm_hour * 60 + tm.tm_min;
        cached_minute = minute;
    }
    *out = cached;
}

bool intake_open_in(const struct proto_intake *in, const struct intake_moment *at)
{
    if (in->always)
        return true;
    int wday = at->wday, minute = at->minute;
    int yesterday = (wday + 6) % 7;
    for (unsigned i = 0; i < in->n; i++) {
        const struct proto_intake_range *r = &in->r[i];
        bool today = r->days & (1u << wday), before = r->days & (1u << yesterday);
        if (r->to > r->from) {
            if (today && minute >= r->from && minute < r->to)
                return true;
        } else if ((today && minute >= r->from) || (before && minute < r->to)) {
            return true; /* a range past midnight: its evening, or its morning after */
        }
    }
    return false;
}

bool intake_open_at(const struct proto_intake *in, int64_t ms)
{
    if (in->always)
        return true;
    struct intake_moment at;
    intake_moment_of(ms, &at);
    return intake_open_in(in, &at);
}

/* The moment a range starts on the day `days_ahead` after the local day of `ms`. */
static int64_t start_on(int64_t ms, int days_ahead, unsigned from)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_mday += days_ahead;
    tm.tm_hour = (int)(from / 60);
    tm.tm_min = (int)(from % 60);
    tm.tm_sec = 0;
    tm.tm_isdst = -1; /* let mktime decide: the day may cross a daylight-saving change */
    return (int64_t)mktime(&tm) * 1000;
}

int64_t intake_next_open(const struct proto_intake *in, int64_t ms)
{
    if (intake_open_at(in, ms))
        return ms;
    int64_t best = -1;
    struct intake_moment now;
    intake_moment_of(ms, &now);
    for (int ahead = 0; ahead <= 7; ahead++) {
        int day = (now.wday + ahead) % 7;
        for (unsigned i = 0; i < in->n; i++) {
            const struct proto_intake_range *r = &in->r[i];
            if (!(r->days & (1u << day)))
                continue;
            int64_t at = start_on(ms, ahead, r->from);
            if (at > ms && (best < 0 || at < best))
                best = at;
        }
        if (best >= 0)
            return best;
    }
    return best;
}

int intake_format_time(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char zone[8];
    localtime_r(&t, &tm);
    if (strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm) == 0 ||
        strftime(zone, sizeof zone, "%z", &tm) != 5)
        return -1;
    size_t n = strlen(buf);
    /* +0100 -> +01:00 */
    if ((size_t)snprintf(buf + n, cap - n, "%.3s:%.2s", zone, zone + 3) >= cap - n)
        return -1;
    return 0;
}
