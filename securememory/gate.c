/* The borrow gate: Asherah's access counting, done in C so that a borrow of a
 * protected or legacy secret costs Python one crossing in and one out.
 *
 * The first borrower makes the memory readable, the last makes it NO_ACCESS
 * again. When the gate has no span of its own (the enclave backend), the
 * first borrower is told to expose (decrypt) and the last to conceal, while
 * every other borrower waits on the condition variable, so exposing and
 * concealing never overlap a borrow. close() marks the gate closing (new
 * borrows fail at once), waits for borrows in flight with the GIL released,
 * and refuses to wait for a borrow of its own thread.
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
#define cond_wait(c, m) SleepConditionVariableSRW(c, m, INFINITE, 0)
#define cond_broadcast(c) WakeAllConditionVariable(c)
#define self_id() ((unsigned long)GetCurrentThreadId())
#else
#include <pthread.h>
typedef pthread_mutex_t mutex_t;
typedef pthread_cond_t cond_t;
#define mutex_init(m) pthread_mutex_init(m, NULL)
#define mutex_destroy(m) pthread_mutex_destroy(m)
#define mutex_lock(m) pthread_mutex_lock(m)
#define mutex_unlock(m) pthread_mutex_unlock(m)
#define cond_init(c) pthread_cond_init(c, NULL)
#define cond_destroy(c) pthread_cond_destroy(c)
#define cond_wait(c, m) pthread_cond_wait(c, m)
#define cond_broadcast(c) pthread_cond_broadcast(c)
#define self_id() ((unsigned long)pthread_self())
#endif

enum { CONCEALED, EXPOSING, EXPOSED, CONCEALING };

#define SM_GATE_THREADS 16

struct sm_gate {
    mutex_t mu;
    cond_t cv;
    void *addr;   /* span the gate makes READ_ONLY / NO_ACCESS itself; NULL: the owner does */
    size_t len;
    int count;    /* borrows in flight */
    int state;    /* CONCEALED, EXPOSING, EXPOSED, CONCEALING */
    int closing;  /* 0 open, 1 closing, 2 closed */
    unsigned long threads[SM_GATE_THREADS]; /* borrowing threads, for close-from-inside */
    int depths[SM_GATE_THREADS];
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
    g->state = CONCEALED;
    return g;
}

void sm_gate_free(sm_gate *g)
{
    if (g == NULL)
        return;
    mutex_destroy(&g->mu);
    cond_destroy(&g->cv);
    free(g);
}

/* Track this thread's borrow depth; the table is best effort beyond
 * SM_GATE_THREADS concurrent threads. */
static void track(sm_gate *g, int delta)
{
    unsigned long me = self_id();
    int empty = -1;
    for (int i = 0; i < SM_GATE_THREADS; i++) {
        if (g->depths[i] && g->threads[i] == me) {
            g->depths[i] += delta;
            return;
        }
        if (!g->depths[i] && empty < 0)
            empty = i;
    }
    if (delta > 0 && empty >= 0) {
        g->threads[empty] = me;
        g->depths[empty] = delta;
    }
}

static int borrowing(sm_gate *g)
{
    unsigned long me = self_id();
    for (int i = 0; i < SM_GATE_THREADS; i++)
        if (g->depths[i] && g->threads[i] == me)
            return 1;
    return 0;
}

int sm_gate_enter(sm_gate *g)
{
    int rc = 0;
    mutex_lock(&g->mu);
    while (g->state == EXPOSING || g->state == CONCEALING)
        cond_wait(&g->cv, &g->mu);
    if (g->closing) {
        rc = SM_GATE_CLOSED;
    } else if (g->state == CONCEALED) {
        if (g->addr == NULL) {
            g->state = EXPOSING;
            rc = SM_GATE_EXPOSE;
        } else if ((rc = sm_protect(g->addr, g->len, SM_PROT_READ)) == 0) {
            g->state = EXPOSED;
        }
    }
    if (rc == 0 || rc == SM_GATE_EXPOSE) {
        g->count++;
        track(g, 1);
    }
    mutex_unlock(&g->mu);
    return rc;
}

void sm_gate_exposed(sm_gate *g, int ok)
{
    mutex_lock(&g->mu);
    g->state = ok ? EXPOSED : CONCEALED;
    if (!ok) {
        g->count--;
        track(g, -1);
    }
    cond_broadcast(&g->cv);
    mutex_unlock(&g->mu);
}

int sm_gate_exit(sm_gate *g)
{
    int rc = 0;
    mutex_lock(&g->mu);
    track(g, -1);
    if (--g->count == 0) {
        if (g->addr == NULL) {
            g->state = CONCEALING;
            rc = SM_GATE_CONCEAL;
        } else {
            rc = sm_protect(g->addr, g->len, SM_PROT_NONE);
            g->state = CONCEALED;
            cond_broadcast(&g->cv);
        }
    }
    mutex_unlock(&g->mu);
    return rc;
}

void sm_gate_concealed(sm_gate *g)
{
    mutex_lock(&g->mu);
    g->state = CONCEALED;
    cond_broadcast(&g->cv);
    mutex_unlock(&g->mu);
}

int sm_gate_close(sm_gate *g)
{
    int rc = 0;
    mutex_lock(&g->mu);
    if (borrowing(g)) {
        rc = SM_GATE_SELF;
    } else if (g->closing) {
        while (g->closing != 2)
            cond_wait(&g->cv, &g->mu);
        rc = SM_GATE_CLOSED;
    } else {
        g->closing = 1;
        while (g->count > 0 || g->state != CONCEALED)
            cond_wait(&g->cv, &g->mu);
    }
    mutex_unlock(&g->mu);
    return rc;
}

void sm_gate_finish(sm_gate *g)
{
    mutex_lock(&g->mu);
    g->closing = 2;
    cond_broadcast(&g->cv);
    mutex_unlock(&g->mu);
}

int sm_gate_closing(sm_gate *g)
{
    return __atomic_load_n(&g->closing, __ATOMIC_ACQUIRE);
}

int sm_gate_count(sm_gate *g)
{
    return __atomic_load_n(&g->count, __ATOMIC_ACQUIRE);
}
