/* run_clock.c: the worker's clock (worker_env.h lunnel_worker_clock) on a libev loop: now is
 * the loop's time (ev_now: the start of this loop iteration, what every callback of one turn
 * shares), timers are ev_timers firing on the loop thread. */
#include <ev.h>
#include <stdlib.h>

#include "lunnel/worker_env.h"

struct lunnel_worker_timer {
    ev_timer ev;
    lunnel_worker_timer_fn fire;
    void *ud;
};

static void fired(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    lunnel_worker_timer *t = (lunnel_worker_timer *)w; /* ev is the first member */
    t->fire(t->ud);
}

static double ev_clock_now(void *impl)
{
    return ev_now((struct ev_loop *)impl);
}

static lunnel_worker_timer *ev_clock_timer_new(void *impl, lunnel_worker_timer_fn fire, void *ud)
{
    (void)impl;
    lunnel_worker_timer *t = malloc(sizeof *t);
    if (!t) return NULL;
    ev_timer_init(&t->ev, fired, 0., 0.);
    t->fire = fire;
    t->ud = ud;
    return t;
}

static void ev_clock_timer_start(void *impl, lunnel_worker_timer *t, double after_s,
                                 double repeat_s)
{
    struct ev_loop *loop = impl;
    ev_timer_stop(loop, &t->ev);
    ev_timer_set(&t->ev, after_s, repeat_s > 0 ? repeat_s : 0.);
    ev_timer_start(loop, &t->ev);
}

static void ev_clock_timer_stop(void *impl, lunnel_worker_timer *t)
{
    ev_timer_stop((struct ev_loop *)impl, &t->ev);
}

static int ev_clock_timer_active(void *impl, const lunnel_worker_timer *t)
{
    (void)impl;
    return ev_is_active(&t->ev);
}

static void ev_clock_timer_free(void *impl, lunnel_worker_timer *t)
{
    if (!t) return;
    ev_timer_stop((struct ev_loop *)impl, &t->ev);
    free(t);
}

lunnel_worker_clock lunnel_worker_clock_ev(struct ev_loop *loop)
{
    return (lunnel_worker_clock){.now = ev_clock_now,
                                 .timer_new = ev_clock_timer_new,
                                 .timer_start = ev_clock_timer_start,
                                 .timer_stop = ev_clock_timer_stop,
                                 .timer_active = ev_clock_timer_active,
                                 .timer_free = ev_clock_timer_free,
                                 .impl = loop};
}
