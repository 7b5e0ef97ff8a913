/* Errors and the JSON-lines log sink. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

/* The one process-wide sink: set at start, read by every module. */
static tf_log_level log_min_level = TF_LOG_INFO;

const char *tf_strerror(int err)
{
    switch (err) {
    case TF_OK: return "ok";
    case TF_ERR: return "error";
    case TF_ENOMEM: return "out of memory";
    case TF_EINVAL: return "invalid argument";
    case TF_EAGAIN: return "try again";
    case TF_EIO: return "i/o error";
    case TF_ECONFIG: return "configuration error";
    case TF_EFENCED: return "fenced by a newer owner";
    case TF_ENOTFOUND: return "not found";
    case TF_ETIMEDOUT: return "timed out";
    case TF_ECLOSED: return "closed";
    case TF_ESTATE: return "customer state unusable";
    case TF_ESTALE: return "customer state changed since read";
    default: return "unknown error";
    }
}

void tf_log_set_level(tf_log_level level) { log_min_level = level; }

int tf_log_enabled(tf_log_level level) { return level >= log_min_level && level < TF_LOG_OFF; }

int tf_log_level_parse(const char *name, tf_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i <= TF_LOG_OFF; i++) {
        if (strcasecmp(name, names[i]) == 0) {
            *out = (tf_log_level)i;
            return TF_OK;
        }
    }
    return TF_EINVAL;
}

/* Appends s JSON-escaped; stops before overflowing (the line is then truncated). */
static size_t json_escape_into(char *dst, size_t pos, size_t cap, const char *s)
{
    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            dst[pos++] = '\\';
            dst[pos++] = (char)c;
        } else if (c == '\n') {
            dst[pos++] = '\\';
            dst[pos++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            pos += (size_t)snprintf(dst + pos, cap - pos, "\\u%04x", c);
        } else {
            dst[pos++] = (char)c;
        }
    }
    return pos;
}

void tf_log_vwrite(tf_log_level level, const char *module, const char *fmt, va_list ap)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char msg[2048], line[4608], ts[TF_TIME_RFC3339_LEN];
    if (!tf_log_enabled(level))
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    tf_time_format_rfc3339(tf_time_now_ms(), ts);
    size_t pos = (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"",
                                  ts, names[level]);
    pos = json_escape_into(line, pos, sizeof(line) - 16, module ? module : "");
    memcpy(line + pos, "\",\"msg\":\"", 9);
    pos += 9;
    pos = json_escape_into(line, pos, sizeof(line) - 8, msg);
    memcpy(line + pos, "\"}\n", 4);
    pos += 3;
    /* One write(2) per line so concurrent writers (librdkafka threads) never interleave. */
    ssize_t w = write(STDERR_FILENO, line, pos);
    (void)w;
}

void tf_log_write(tf_log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tf_log_vwrite(level, module, fmt, ap);
    va_end(ap);
}

int tf_log_throttle_pass(tf_log_throttle *t, int64_t now_ms, int64_t window_ms, uint64_t *held_back)
{
    if (t->window_start_ms != 0 && now_ms - t->window_start_ms < window_ms) {
        t->suppressed++;
        return 0;
    }
    *held_back = t->suppressed;
    t->suppressed = 0;
    t->window_start_ms = now_ms ? now_ms : 1;
    return 1;
}
