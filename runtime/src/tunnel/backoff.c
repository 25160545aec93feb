/* backoff.c: read pacing of stream channels. After a ReadRecords that was not full, a
 * stream channel waits before reading again, exponentially longer while the channel stays
 * idle (20 ms x5 up to --max-backoff, jitter 0.25, the official client's numbers); a full
 * batch resets the wait so a busy channel is read back to back. Base-data channels never
 * back off (they are read as fast as they are processed). Pure: the caller supplies the
 * randomness. Also the failure pacing of lunnel_pace (channel.h): 1 s doubling to 60 s. */
#include "lunnel/channel.h"

#define BACKOFF_BASE_MS 20.0
#define BACKOFF_FACTOR 5.0
#define BACKOFF_JITTER 0.25
#define FULL_RECORDS 500          /* "> 500 records" means the server had more */
#define FULL_BYTES (900u * 1024u) /* "> 900 KB" likewise */

void lunnel_backoff_init(lunnel_backoff *b, double max_ms)
{
    b->base_ms = BACKOFF_BASE_MS;
    b->factor = BACKOFF_FACTOR;
    b->jitter = BACKOFF_JITTER;
    b->max_ms = max_ms > 0 ? max_ms : 5000.0;
    if (b->base_ms > b->max_ms) b->base_ms = b->max_ms;
    b->current_ms = b->base_ms;
}

void lunnel_backoff_reset(lunnel_backoff *b)
{
    b->current_ms = b->base_ms;
}

double lunnel_backoff_next(lunnel_backoff *b, double rand01)
{
    if (rand01 < 0) rand01 = 0;
    if (rand01 >= 1) rand01 = 0.999999;
    /* uniform in [cur*(1-j), cur*(1+j)) */
    double d = b->current_ms * (1.0 - b->jitter + 2.0 * b->jitter * rand01);
    if (d > b->max_ms) d = b->max_ms;
    if (d < 0) d = 0;
    double next = b->current_ms * b->factor;
    b->current_ms = next > b->max_ms ? b->max_ms : next;
    return d;
}

int lunnel_batch_is_full(int has_may_more, int may_more, size_t n_records, size_t n_bytes)
{
    if (has_may_more) return may_more != 0;
    return n_records > FULL_RECORDS || n_bytes > FULL_BYTES;
}

void lunnel_pace_init(lunnel_pace *p, double base_ms, double max_ms)
{
    p->base_ms = base_ms > 0 ? base_ms : LUNNEL_PACE_BASE_MS;
    p->max_ms = max_ms >= p->base_ms ? max_ms : p->base_ms;
    p->step = 0;
}

double lunnel_pace_fail(lunnel_pace *p, double healthy_ms, double rand01)
{
    if (healthy_ms >= p->max_ms)
        p->step = 0; /* worked for a whole longest wait: this failure is a new story */
    if (rand01 < 0) rand01 = 0;
    if (rand01 >= 1) rand01 = 0.999999;
    double d = p->base_ms;
    for (int i = 0; i < p->step && d < p->max_ms; i++)
        d *= 2.0;
    if (d > p->max_ms) d = p->max_ms;
    if (p->step < 64) p->step++;
    return d * (1.0 + LUNNEL_PACE_JITTER * rand01);
}
