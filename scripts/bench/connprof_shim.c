// connprof_shim.c: LD_PRELOAD for scripts/bench/connprof.sh only. Valgrind 3.19 does not treat
// io_uring_enter as a blocking syscall, so a thread waiting in it keeps valgrind's one big lock and
// every other thread of the process starves (ztunnel never gets ready). This caps every liburing
// wait at CONNPROF_WAIT_US (default 2000 µs) and yields after it, so valgrind switches threads and
// the caller's loop waits again. The idle wake-ups this adds are measured by connprof.sh over
// an idle interval and subtracted.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <liburing.h>
#include <sched.h>
#include <stdlib.h>

static long cap_us(void) {
    const char* s = getenv("CONNPROF_WAIT_US");
    return s ? atol(s) : 2000;
}

typedef int (*swt_fn)(struct io_uring*, struct io_uring_cqe**, unsigned, struct __kernel_timespec*,
                      sigset_t*);
typedef int (*wc_fn)(struct io_uring*, struct io_uring_cqe**, unsigned, struct __kernel_timespec*,
                     sigset_t*);

static void capped(struct __kernel_timespec* out, const struct __kernel_timespec* in) {
    long us = cap_us();
    out->tv_sec = us / 1000000;
    out->tv_nsec = (us % 1000000) * 1000;
    if (in && (in->tv_sec < out->tv_sec ||
               (in->tv_sec == out->tv_sec && in->tv_nsec < out->tv_nsec))) {
        *out = *in;
    }
}

int io_uring_submit_and_wait_timeout(struct io_uring* ring, struct io_uring_cqe** cqe,
                                     unsigned wait_nr, struct __kernel_timespec* ts,
                                     sigset_t* sigmask) {
    static swt_fn real;
    if (!real) real = (swt_fn)dlsym(RTLD_NEXT, "io_uring_submit_and_wait_timeout");
    struct __kernel_timespec c;
    capped(&c, ts);
    int r = real(ring, cqe, wait_nr, &c, sigmask);
    // valgrind hands its lock on only at the end of a time slice or at a syscall it knows may
    // block, and sched_yield is one: without it the other threads wait seconds for a turn.
    sched_yield();
    return r;
}

int io_uring_submit_and_wait(struct io_uring* ring, unsigned wait_nr) {
    struct io_uring_cqe* cqe;
    if (wait_nr == 0) {
        return io_uring_submit(ring);
    }
    int r = io_uring_submit_and_wait_timeout(ring, &cqe, wait_nr, NULL, NULL);
    return r == -62 /* ETIME */ ? 0 : r;
}

int io_uring_wait_cqes(struct io_uring* ring, struct io_uring_cqe** cqe, unsigned wait_nr,
                       struct __kernel_timespec* ts, sigset_t* sigmask) {
    static wc_fn real;
    if (!real) real = (wc_fn)dlsym(RTLD_NEXT, "io_uring_wait_cqes");
    struct __kernel_timespec c;
    capped(&c, ts);
    int r = real(ring, cqe, wait_nr, &c, sigmask);
    // valgrind hands its lock on only at the end of a time slice or at a syscall it knows may
    // block, and sched_yield is one: without it the other threads wait seconds for a turn.
    sched_yield();
    return r;
}
