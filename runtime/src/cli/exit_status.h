/* exit_status.h: the exit statuses shared by every lunnel command (README "Usage"), and the
 * mapping from how a run or command ended (lunnel_outcome, error_class.h) to them. The
 * numbers are the CLI's alone: the tunnel side reports outcomes, never statuses. */
#ifndef LUNNEL_CLI_EXIT_STATUS_H
#define LUNNEL_CLI_EXIT_STATUS_H

#include "lunnel/error_class.h"
#include "lunnel/errors.h"

enum {
    LUNNEL_EXIT_OK = 0,
    LUNNEL_EXIT_RUNTIME = 1,
    LUNNEL_EXIT_USAGE = 2,
    LUNNEL_EXIT_AUTH = 3,
    LUNNEL_EXIT_EXPIRED = 4,
    LUNNEL_EXIT_NOT_FOUND = 5,
    LUNNEL_EXIT_STUCK = 6, /* a script call ran past --stuck-exit-timeout (restart me) */
};

/* 0 ok, 1 failed, 2 usage, 3 auth, 4 expired, 5 not found. */
int lunnel_exit_status_of(lunnel_outcome outcome);

/* Exit status for a command that failed with `err`: lunnel_exit_status_of(its outcome). */
int lunnel_error_exit_status(const lunnel_error *err);

#endif
