/* Clocks and RFC 3339. */
#include <string.h>
#include <time.h>

#include "core/core.h"

int64_t tf_time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tf_time_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t tf_time_mono_ms(void) { return tf_time_mono_us() / 1000; }

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
int64_t tf_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tf_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int tf_month_days(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : days[m - 1];
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int tf_time_parse_rfc3339(const char *s, size_t len, int64_t *ms_out)
{
    int Y, M, D, h, mi, sec, ms = 0, oh = 0, om = 0, sign = 0;
    size_t i;
    if (len < 20 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &sec))
        return TF_EINVAL;
    if (M < 1 || M > 12 || D < 1 || D > tf_month_days(Y, M) || h > 23 || mi > 59 || sec > 60)
        return TF_EINVAL;
    i = 19;
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        int scale = 100;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            ms += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start || i - start > 9)
            return TF_EINVAL;
    }
    if (i >= len)
        return TF_EINVAL;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        sign = s[i] == '-' ? -1 : 1;
        if (len - i < 6 || digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || digits(s + i + 4, 2, &om) ||
            oh > 23 || om > 59)
            return TF_EINVAL;
        i += 6;
    } else {
        return TF_EINVAL;
    }
    if (i != len)
        return TF_EINVAL;
    if (sec == 60) /* a leap second is read as the last millisecond of its minute */
        sec = 59, ms = 999;
    int64_t secs = tf_days_from_civil(Y, M, D) * 86400 + h * 3600 + mi * 60 + sec;
    secs -= sign * (oh * 3600 + om * 60);
    *ms_out = secs * 1000 + ms;
    return TF_OK;
}

void tf_time_format_rfc3339(int64_t ms, char buf[TF_TIME_RFC3339_LEN])
{
    int64_t days = ms >= 0 ? ms / TF_MS_PER_DAY : -((-ms + TF_MS_PER_DAY - 1) / TF_MS_PER_DAY);
    int64_t rem = ms - days * TF_MS_PER_DAY;
    int64_t y;
    int m, d;
    tf_civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) {
        memcpy(buf, "0000-00-00T00:00:00.000Z", TF_TIME_RFC3339_LEN);
        return;
    }
    int h = (int)(rem / TF_MS_PER_HOUR), mi = (int)(rem / 60000 % 60), s = (int)(rem / 1000 % 60),
        milli = (int)(rem % 1000);
    /* Fixed-width formatting by hand: this runs per derived event and per log line. */
    char *p = buf;
    int v[] = {(int)y / 100, (int)y % 100, m, d, h, mi, s};
    const char sep[] = {0, 0, '-', '-', 'T', ':', ':'};
    for (int k = 0; k < 7; k++) {
        if (sep[k])
            *p++ = sep[k];
        *p++ = (char)('0' + v[k] / 10);
        *p++ = (char)('0' + v[k] % 10);
    }
    *p++ = '.';
    *p++ = (char)('0' + milli / 100);
    *p++ = (char)('0' + milli / 10 % 10);
    *p++ = (char)('0' + milli % 10);
    *p++ = 'Z';
    *p = '\0';
}
