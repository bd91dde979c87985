/* The live table and the crash wipe.
 *
 * Every live buffer's inner pages are recorded here, so a fatal signal handler
 * can wipe them without touching Python or taking a lock. The table is a fixed
 * directory of lazily mapped chunks: slots never move, so the handler can read
 * them while other threads add and remove (adds and removes take a mutex; the
 * handler only reads, with atomic loads).
 *
 * On SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGABRT the handler wipes every live
 * buffer, restores the previous disposition (calling a previous handler such
 * as faulthandler first), and lets the signal take its course, so the exit
 * status and any core file are what they would have been, minus the secrets.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include "../memcall/memcall.h"
#include "guard.h"

#define CHUNK_SLOTS 4096
#define MAX_CHUNKS 1024

typedef struct slot {
    void *addr; /* NULL when free */
    size_t len;
    int next_free;
} slot;

static slot *chunks[MAX_CHUNKS];
static int free_head = -1;
static int n_slots;
static size_t n_live;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t sealed;

static slot *slot_at(int i)
{
    return &chunks[i / CHUNK_SLOTS][i % CHUNK_SLOTS];
}

int sm_live_add(void *addr, size_t len)
{
    int i = -1;
    pthread_mutex_lock(&table_lock);
    if (free_head >= 0) {
        i = free_head;
        free_head = slot_at(i)->next_free;
    } else if (n_slots < CHUNK_SLOTS * MAX_CHUNKS) {
        int c = n_slots / CHUNK_SLOTS;
        if (chunks[c] == NULL) {
            void *p;
            size_t bytes = (CHUNK_SLOTS * sizeof(slot) + sm_page_size() - 1)
                           / sm_page_size() * sm_page_size();
            if (sm_map(bytes, 0, &p) == 0)
                __atomic_store_n(&chunks[c], (slot *)p, __ATOMIC_RELEASE);
        }
        if (chunks[c] != NULL) {
            i = n_slots;
            __atomic_store_n(&n_slots, i + 1, __ATOMIC_RELEASE);
        }
    }
    if (i >= 0) {
        slot *s = slot_at(i);
        s->len = len;
        __atomic_store_n(&s->addr, addr, __ATOMIC_RELEASE);
        n_live++;
    }
    pthread_mutex_unlock(&table_lock);
    return i; /* -1: table full; the buffer works but is not crash-wiped */
}

void sm_live_remove(int i)
{
    if (i < 0)
        return;
    pthread_mutex_lock(&table_lock);
    slot *s = slot_at(i);
    __atomic_store_n(&s->addr, NULL, __ATOMIC_RELEASE);
    s->next_free = free_head;
    free_head = i;
    n_live--;
    pthread_mutex_unlock(&table_lock);
}

/* Remove slot i only while it still names addr: a second call is a no-op. */
void sm_live_remove_if(int i, void *addr)
{
    if (i < 0 || addr == NULL)
        return;
    pthread_mutex_lock(&table_lock);
    int mine = i < n_slots && slot_at(i)->addr == addr;
    pthread_mutex_unlock(&table_lock);
    if (mine)
        sm_live_remove(i);
}

/* In a forked child: the inherited entries belong to the parent's objects. */
void sm_live_reset(void)
{
    pthread_mutex_init(&table_lock, NULL);
    for (int i = 0; i < n_slots; i++)
        slot_at(i)->addr = NULL;
    n_slots = 0;
    free_head = -1;
    n_live = 0;
}

size_t sm_live_count(void)
{
    return __atomic_load_n(&n_live, __ATOMIC_ACQUIRE);
}

int sm_live_sealed(void)
{
    return sealed;
}

/* Async-signal-safe: syscalls and plain stores only. With seal != 0 the wiped
 * pages are left NO_ACCESS, so a faulting access to a frozen or no-access
 * buffer faults again when it is re-executed instead of succeeding on the
 * pages the wipe made writable. */
static void wipe_live(int seal)
{
    if (seal)
        sealed = 1;
    int n = __atomic_load_n(&n_slots, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        slot *c = __atomic_load_n(&chunks[i / CHUNK_SLOTS], __ATOMIC_ACQUIRE);
        if (c == NULL)
            continue;
        slot *s = &c[i % CHUNK_SLOTS];
        void *addr = __atomic_load_n(&s->addr, __ATOMIC_ACQUIRE);
        if (addr != NULL && sm_protect(addr, s->len, SM_PROT_READ_WRITE) == 0) {
            sm_wipe(addr, s->len);
            if (seal)
                sm_protect(addr, s->len, SM_PROT_NONE);
        }
    }
}

void sm_wipe_all(void)
{
    wipe_live(0);
}

static void put(const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

void sm_fatal_canary(size_t size)
{
    char num[24];
    int i = (int)sizeof num - 1;
    num[i] = '\0';
    do {
        num[--i] = (char)('0' + size % 10);
        size /= 10;
    } while (size > 0 && i > 0);
    sm_wipe_all();
    put("securememory: canary verification failed; buffer overflow detected (buffer of ");
    put(&num[i]);
    put(" bytes); every live buffer was wiped\n");
    abort();
}

#ifndef _WIN32
static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
#define N_FATAL (int)(sizeof fatal_signals / sizeof fatal_signals[0])
static struct sigaction previous[N_FATAL];
static volatile int installed;

static int index_of(int sig)
{
    for (int i = 0; i < N_FATAL; i++)
        if (fatal_signals[i] == sig)
            return i;
    return -1;
}

static void on_fatal(int sig, siginfo_t *info, void *ctx)
{
    wipe_live(1);
    int i = index_of(sig);
    struct sigaction prev = previous[i];
    sigaction(sig, &prev, NULL);
    if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction != NULL)
        prev.sa_sigaction(sig, info, ctx);
    else if (!(prev.sa_flags & SA_SIGINFO) && prev.sa_handler != SIG_DFL &&
             prev.sa_handler != SIG_IGN)
        prev.sa_handler(sig);
    /* A fault re-executes its instruction on return and dies of it under the
     * restored disposition; a sent or raised signal is raised again (blocked
     * until this handler returns). */
    if (info == NULL || info->si_code <= 0 || sig == SIGABRT)
        raise(sig);
}

/* An alternate signal stack for each thread that holds buffers, so the wipe
 * also runs when the fault is a stack overflow (no stack left for a handler).
 * A thread that already has one (faulthandler's) keeps it; ours is unmapped
 * when its thread exits. */
#define ALTSTACK_SIZE (64 * 1024)
static pthread_key_t altstack_key;
static pthread_once_t altstack_once = PTHREAD_ONCE_INIT;
static __thread int altstack_ready;

static void altstack_release(void *stack)
{
    stack_t off;
    memset(&off, 0, sizeof off);
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, NULL);
    sm_unmap(stack, ALTSTACK_SIZE);
}

static void altstack_key_create(void)
{
    pthread_key_create(&altstack_key, altstack_release);
}

int sm_crash_altstack(void)
{
    if (altstack_ready)
        return 0;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE)) {
        altstack_ready = 1;
        return 0;
    }
    pthread_once(&altstack_once, altstack_key_create);
    void *stack;
    int e = sm_map(ALTSTACK_SIZE, 0, &stack);
    if (e)
        return e;
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = stack;
    ss.ss_size = ALTSTACK_SIZE;
    if (sigaltstack(&ss, NULL) != 0) {
        e = errno;
        sm_unmap(stack, ALTSTACK_SIZE);
        return e;
    }
    pthread_setspecific(altstack_key, stack);
    altstack_ready = 1;
    return 0;
}

int sm_crash_install(void)
{
    sm_crash_altstack();
    if (installed)
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < N_FATAL; i++) {
        if (sigaction(fatal_signals[i], &sa, &previous[i]) != 0) {
            int e = errno;
            while (--i >= 0) /* put back what was replaced so far */
                sigaction(fatal_signals[i], &previous[i], NULL);
            return e;
        }
    }
    installed = 1;
    return 0;
}

int sm_crash_uninstall(void)
{
    if (!installed)
        return 0;
    for (int i = 0; i < N_FATAL; i++) {
        struct sigaction cur;
        /* Leave alone a handler someone installed over ours. */
        if (sigaction(fatal_signals[i], NULL, &cur) == 0 &&
            (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_fatal)
            sigaction(fatal_signals[i], &previous[i], NULL);
    }
    installed = 0;
    return 0;
}

int sm_crash_installed(void)
{
    return installed;
}
#else
int sm_crash_altstack(void) { return 0; }
int sm_crash_install(void) { return ENOTSUP; }
int sm_crash_uninstall(void) { return 0; }
int sm_crash_installed(void) { return 0; }
#endif
