/* The borrow gate: Asherah's access counting in C.
 *
 * The first borrower makes the memory readable, the last makes it NO_ACCESS
 * again. A gate without a span of its own (the enclave backend) tells its
 * first borrower to expose (decrypt) and its last to conceal, while other
 * borrowers wait, so exposing and concealing never overlap a borrow.
 *
 * Borrows are counted per owner (the thread that entered), with no limit on
 * owners, so close() from inside one of its own borrows is refused instead of
 * waiting for itself. Closing marks the gate (new borrows fail at once) and
 * waits for borrows in flight in slices of timeout_ms, so the caller can run
 * signal handlers in between. A retired gate (purge) is closed at once: its
 * exits never expose, and the last one makes the span NO_ACCESS, because the
 * owner keeps that span reserved instead of unmapping it. While the purger
 * is still wiping that span (between sm_gate_retire and sm_gate_torn) exits
 * leave its protection alone: a NO_ACCESS set under the wipe would fault it.
 * sm_gate_torn then makes it NO_ACCESS if the last borrow has ended.
 */
#include <errno.h>
#include <stdlib.h>
#include "memcall/memcall.h"
#include "gate.h"

#ifdef _WIN32
#include <windows.h>
typedef SRWLOCK mutex_t;
typedef CONDITION_VARIABLE cond_t;
#define mutex_init(m) InitializeSRWLock(m)
#define mutex_destroy(m) ((void)0)
#define mutex_lock(m) AcquireSRWLockExclusive(m)
#define mutex_unlock(m) ReleaseSRWLockExclusive(m)
#define cond_init(c) InitializeConditionVariable(c)
#define cond_destroy(c) ((void)0)
#define cond_broadcast(c) WakeAllConditionVariable(c)
static int cond_wait_ms(cond_t *c, mutex_t *m, int ms)
{
    return SleepConditionVariableSRW(c, m, ms < 0 ? INFINITE : (DWORD)ms, 0) ? 0 : ETIMEDOUT;
}
#else
#include <pthread.h>
#include <time.h>
typedef pthread_mutex_t mutex_t;
typedef pthread_cond_t cond_t;
#define mutex_init(m) pthread_mutex_init(m, NULL)
#define mutex_destroy(m) pthread_mutex_destroy(m)
#define mutex_lock(m) pthread_mutex_lock(m)
#define mutex_unlock(m) pthread_mutex_unlock(m)
#define cond_init(c) pthread_cond_init(c, NULL)
#define cond_destroy(c) pthread_cond_destroy(c)
#define cond_broadcast(c) pthread_cond_broadcast(c)
static int cond_wait_ms(cond_t *c, mutex_t *m, int ms)
{
    if (ms < 0)
        return pthread_cond_wait(c, m);
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(c, m, &t);
}
#endif

enum { CONCEALED, EXPOSING, EXPOSED, CONCEALING };
enum { OPEN, CLOSING, CLOSED };

struct owner {
    unsigned long id;
    int depth;
};

struct sm_gate {
    mutex_t mu;
    cond_t cv;
    void *addr;          /* the readable span while exposed */
    size_t len;
    int own_span;        /* the gate toggles addr/len itself (protected, legacy) */
    int count;           /* borrows in flight */
    int state;           /* CONCEALED, EXPOSING, EXPOSED, CONCEALING */
    int closing;         /* OPEN, CLOSING, CLOSED */
    int closer;          /* a close() is waiting or destroying */
    unsigned long closer_id;
    int retired;         /* purged: the owner keeps the span reserved */
    int tearing;         /* retired with borrows in flight, the purger not done with the span */
    struct owner *owners;
    int n_owners;
    int cap_owners;
};

sm_gate *sm_gate_new(void *addr, size_t len)
{
    sm_gate *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    mutex_init(&g->mu);
    cond_init(&g->cv);
    g->addr = addr;
    g->len = len;
    g->own_span = addr != NULL;
    return g;
}

void sm_gate_free(sm_gate *g)
{
    if (g == NULL)
        return;
    mutex_destroy(&g->mu);
    cond_destroy(&g->cv);
    free(g->owners);
    free(g);
}

static int track(sm_gate *g, unsigned long owner, int delta)
{
    for (int i = 0; i < g->n_owners; i++) {
        if (g->owners[i].id == owner) {
            g->owners[i].depth += delta;
            if (g->owners[i].depth <= 0)
                g->owners[i] = g->owners[--g->n_owners];
            return 0;
        }
    }
    if (delta <= 0)
        return 0;
    if (g->n_owners == g->cap_owners) {
        int cap = g->cap_owners ? g->cap_owners * 2 : 4;
        struct owner *o = realloc(g->owners, (size_t)cap * sizeof *o);
        if (o == NULL)
            return ENOMEM;
        g->owners = o;
        g->cap_owners = cap;
    }
    g->owners[g->n_owners].id = owner;
    g->owners[g->n_owners].depth = delta;
    g->n_owners++;
    return 0;
}

static int holds(const sm_gate *g, unsigned long owner)
{
    for (int i = 0; i < g->n_owners; i++)
        if (g->owners[i].id == owner)
            return 1;
    return 0;
}

int sm_gate_enter(sm_gate *g, unsigned long owner)
{
    int rc = 0;
    mutex_lock(&g->mu);
    while (g->state == EXPOSING || g->state == CONCEALING)
        cond_wait_ms(&g->cv, &g->mu, -1);
    if (g->closing != OPEN) {
        rc = SM_GATE_CLOSED;
    } else if ((rc = track(g, owner, 1)) == 0) {
        if (g->state == CONCEALED) {
            if (!g->own_span) {
                g->state = EXPOSING;
                rc = SM_GATE_EXPOSE;
            } else if ((rc = sm_protect(g->addr, g->len, SM_PROT_READ)) == 0) {
                g->state = EXPOSED;
            }
        }
        if (rc == 0 || rc == SM_GATE_EXPOSE)
            g->count++;
        else
            track(g, owner, -1);
    }
    mutex_unlock(&g->mu);
    return rc;
}

void sm_gate_exposed(sm_gate *g, unsigned long owner, int ok, void *addr, size_t len)
{
    mutex_lock(&g->mu);
    if (ok) {
        g->state = EXPOSED;
        g->addr = addr;
        g->len = len;
    } else {
        g->state = CONCEALED;
        g->count--;
        track(g, owner, -1);
    }
    cond_broadcast(&g->cv);
    mutex_unlock(&g->mu);
}

/* The last borrow of a retired gate has ended and the purger is done with
 * the span: NO_ACCESS. Called with the mutex held. */
static int conceal_retired(sm_gate *g)
{
    int rc = 0;
    if (g->addr != NULL)
        rc = sm_protect(g->addr, g->len, SM_PROT_NONE);
    if (!g->own_span)
        g->addr = NULL;
    return rc;
}

int sm_gate_exit(sm_gate *g, unsigned long owner)
{
    int rc = 0;
    mutex_lock(&g->mu);
    track(g, owner, -1);
    if (--g->count == 0) {
        if (g->retired) {
            g->state = CONCEALED;
            if (!g->tearing)
                rc = conceal_retired(g);
        } else if (!g->own_span) {
            g->state = CONCEALING;
            rc = SM_GATE_CONCEAL;
        } else {
            rc = sm_protect(g->addr, g->len, SM_PROT_NONE);
            g->state = CONCEALED;
        }
        cond_broadcast(&g->cv);
    }
    mutex_unlock(&g->mu);
    return rc;
}

void sm_gate_concealed(sm_gate *g)
{
    mutex_lock(&g->mu);
    g->state = CONCEALED;
    g->addr = NULL;
    g->len = 0;
    cond_broadcast(&g->cv);
    mutex_unlock(&g->mu);
}

int sm_gate_close(sm_gate *g, unsigned long owner, int timeout_ms)
{
    int rc = 0;
    mutex_lock(&g->mu);
    if (g->closing == CLOSED) {
        rc = SM_GATE_CLOSED;
    } else if (holds(g, owner)) {
        rc = SM_GATE_SELF;
    } else if (g->closer && g->closer_id != owner) {
        /* another close is under way: wait for it to finish or give up */
        if (cond_wait_ms(&g->cv, &g->mu, timeout_ms) || g->closing != CLOSED)
            rc = SM_GATE_TIMEOUT;
        else
            rc = SM_GATE_CLOSED;
    } else {
        g->closer = 1;
        g->closer_id = owner;
        g->closing = CLOSING;
        if (g->count > 0 || g->state != CONCEALED)
            cond_wait_ms(&g->cv, &g->mu, timeout_ms);
        if (g->retired)
            rc = SM_GATE_CLOSED;
        else if (g->count > 0 || g->state != CONCEALED)
            rc = SM_GATE_TIMEOUT;
    }
    mutex_unlock(&g->mu);
    return rc;
}

void sm_gate_finish(sm_gate *g)
{
    mutex_lock(&g->mu);
    g->closing = CLOSED;
    g->closer = 0;
    cond_broadcast(&g->cv);
    mutex_unlock(&g->mu);
}

void sm_gate_resign(sm_gate *g, unsigned long owner)
{
    mutex_lock(&g->mu);
    if (g->closer_id == owner)
        g->closer = 0;
    cond_broadcast(&g->cv);
    mutex_unlock(&g->mu);
}

int sm_gate_retire(sm_gate *g, int *was_open)
{
    mutex_lock(&g->mu);
    *was_open = g->closing != CLOSED;
    g->closing = CLOSED;
    g->retired = 1;
    /* an exposure or concealment under way finishes first, so what is
     * exposed now is all the owner has to keep reserved */
    while (g->state == EXPOSING || g->state == CONCEALING)
        cond_wait_ms(&g->cv, &g->mu, -1);
    int inflight = g->count;
    g->tearing = inflight > 0;
    cond_broadcast(&g->cv);
    mutex_unlock(&g->mu);
    return inflight;
}

int sm_gate_torn(sm_gate *g)
{
    int rc = 0;
    mutex_lock(&g->mu);
    if (g->tearing) {
        g->tearing = 0;
        if (g->count == 0)
            rc = conceal_retired(g);
    }
    mutex_unlock(&g->mu);
    return rc;
}

int sm_gate_closing(sm_gate *g)
{
    mutex_lock(&g->mu);
    int c = g->closing;
    mutex_unlock(&g->mu);
    return c;
}

int sm_gate_count(sm_gate *g)
{
    mutex_lock(&g->mu);
    int n = g->count;
    mutex_unlock(&g->mu);
    return n;
}
