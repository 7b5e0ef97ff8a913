/* core: error codes, logging, time, hashing and UTF-8 helpers shared by every module.
 *
 * Nothing here allocates on behalf of the caller or keeps state other than the
 * process-wide log sink (level and output stream), which is set once at start. */
#ifndef TF_CORE_H
#define TF_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* A small closed set of return codes: 0 is success, errors are negative. */
typedef enum {
    TF_OK = 0,
    TF_ERR = -1,      /* unspecified failure */
    TF_ENOMEM = -2,   /* allocation failed */
    TF_EINVAL = -3,   /* bad argument or input */
    TF_EAGAIN = -4,   /* not now: retry later (backpressure, not connected) */
    TF_EIO = -5,      /* I/O failure talking to Redis or Kafka */
    TF_ECONFIG = -6,  /* configuration error */
    TF_EFENCED = -7,  /* a newer owner wrote this state: we lost the partition */
    TF_ENOTFOUND = -8,
    TF_ETIMEDOUT = -9,
    TF_ECLOSED = -10, /* the handle is shutting down */
    TF_ESTATE = -11,  /* a customer's stored state cannot be read or written as it is */
    TF_ESTALE = -12   /* the stored state changed since it was read: read it again */
} tf_err;

/* Returns a static, human-readable name for an error code. */
const char *tf_strerror(int err);

/* ---- logging: one JSON object per line on stderr ---- */
typedef enum { TF_LOG_DEBUG = 0, TF_LOG_INFO, TF_LOG_WARN, TF_LOG_ERROR, TF_LOG_OFF } tf_log_level;

/* Sets the lowest level written. Call once at start, before any other thread logs. */
void tf_log_set_level(tf_log_level level);
/* Parses "debug", "info", "warn", "error", "off"; returns 0 or TF_EINVAL. */
int tf_log_level_parse(const char *name, tf_log_level *out);
int tf_log_enabled(tf_log_level level);
/* Writes {"time":..,"level":..,"module":..,"msg":..} as one line. The message is
 * JSON-escaped; callers never print secrets through it. */
void tf_log_write(tf_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tf_log_vwrite(tf_log_level level, const char *module, const char *fmt, va_list ap);

/* A repeated message, at most once per window: the first of a burst is written,
 * the rest are counted and summed up when the window has passed. */
typedef struct {
    int64_t window_start_ms; /* 0: no message yet */
    uint64_t suppressed;     /* messages held back in the current window */
} tf_log_throttle;

/* Returns 1 when the message at now_ms is to be written; then *held_back is how
 * many were held back since the last one written (to say so). */
int tf_log_throttle_pass(tf_log_throttle *t, int64_t now_ms, int64_t window_ms, uint64_t *held_back);

/* The level check comes before any argument is formatted. */
#define TF_LOG(level, module, ...)                          \
    do {                                                    \
        if (tf_log_enabled(level))                          \
            tf_log_write((level), (module), __VA_ARGS__);   \
    } while (0)
#define TF_DEBUG(m, ...) TF_LOG(TF_LOG_DEBUG, m, __VA_ARGS__)
#define TF_INFO(m, ...) TF_LOG(TF_LOG_INFO, m, __VA_ARGS__)
#define TF_WARN(m, ...) TF_LOG(TF_LOG_WARN, m, __VA_ARGS__)
#define TF_ERROR(m, ...) TF_LOG(TF_LOG_ERROR, m, __VA_ARGS__)

/* ---- time: all instants are int64 milliseconds since the Unix epoch, UTC ---- */
#define TF_MS_PER_SEC INT64_C(1000)
#define TF_MS_PER_HOUR (INT64_C(3600) * TF_MS_PER_SEC)
#define TF_MS_PER_DAY (INT64_C(24) * TF_MS_PER_HOUR)

/* Wall clock now. */
int64_t tf_time_now_ms(void);
/* Monotonic clock, for timeouts and latencies. */
int64_t tf_time_mono_ms(void);
int64_t tf_time_mono_us(void);
/* Parses RFC 3339 ("2026-03-01T10:00:00.123+08:00", "...Z"); an offset is required,
 * fractional seconds are optional (kept to the millisecond). Returns 0 or TF_EINVAL. */
int tf_time_parse_rfc3339(const char *s, size_t len, int64_t *ms_out);
/* Formats as "YYYY-MM-DDTHH:MM:SS.mmmZ"; buf needs TF_TIME_RFC3339_LEN bytes. */
#define TF_TIME_RFC3339_LEN 25
void tf_time_format_rfc3339(int64_t ms, char buf[TF_TIME_RFC3339_LEN]);
/* Proleptic Gregorian calendar: days since 1970-01-01 and back; days in a month. */
int64_t tf_days_from_civil(int64_t y, int m, int d);
void tf_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
int tf_month_days(int64_t y, int m);

/* ---- hashing and ids ---- */
uint64_t tf_hash64(const void *data, size_t len, uint64_t seed);
/* A deterministic id: 32 lowercase hex digits from the NUL-separated parts, so the
 * same inputs always give the same id. out needs TF_ID_LEN bytes. */
#define TF_ID_LEN 33
void tf_id_derive(char out[TF_ID_LEN], const char *const *parts, size_t nparts);

/* ---- text ---- */
/* 1 when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates), else 0. */
/* The length of the UTF-8 sequence starting at p (2-4 bytes; call it on a byte >=
 * 0x80), or 0 when it is not a well-formed one: truncated, overlong, a surrogate
 * or past U+10FFFF. */
size_t tf_utf8_seq(const unsigned char *p, const unsigned char *end);
/* The value of a hexadecimal digit (either case), or -1. */
int tf_hex_value(int c);
int tf_utf8_valid(const char *s, size_t len);
/* Parses a whole decimal int64 (optional leading '-'); 0 or TF_EINVAL. */
int tf_parse_i64(const char *s, size_t len, int64_t *out);
/* Writes v in decimal and a NUL to out (at least TF_I64_TEXT_LEN bytes); returns
 * the length without the NUL. The counterpart of tf_parse_i64, without printf's cost
 * on the per-event path. */
#define TF_I64_TEXT_LEN 21
size_t tf_i64_text(char *out, int64_t v);
/* Bounded copy that always terminates; returns TF_EINVAL when src did not fit. */
int tf_strlcpy(char *dst, const char *src, size_t dstsize);

#endif
