/* Guarded buffers: one mapping laid out as
 *
 *     [guard page][canary ... data][guard page]
 *
 * The data is right-aligned so its last byte touches the trailing guard page;
 * the canary fills the rest of the inner pages and is never shorter than
 * SM_CANARY_MIN bytes, so a size that is a page multiple gets one more page.
 * Only the inner pages are locked, kept out of core dumps and wiped on fork.
 *
 * Canary bytes are a keyed expansion of the inner address under a per-process
 * random key: unpredictable without reading this process's memory, and cheap
 * (no getrandom per buffer). They are regenerated to verify, never stored.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#if defined(_MSC_VER)
#include <intrin.h>
#endif
#include "../memcall/memcall.h"
#include "atomic.h"
#include "guard.h"
#ifndef _WIN32
#include <pthread.h>

static volatile unsigned long fork_generation;
static pthread_once_t fork_hook_once = PTHREAD_ONCE_INIT;

static void after_fork_in_child(void)
{
    fork_generation++;
}

static void install_fork_hook(void)
{
    pthread_atfork(NULL, NULL, after_fork_in_child);
}
#define FORK_HOOK() pthread_once(&fork_hook_once, install_fork_hook)
#else
static const unsigned long fork_generation = 0;
#define FORK_HOOK() ((void)0)
#endif

static uint64_t canary_key[2];
static volatile int canary_key_ready;

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int canary_init(void)
{
    if (sm_load_int(&canary_key_ready))
        return 0;
    uint64_t k[2];
    int e = sm_random(k, sizeof k);
    if (e)
        return e;
    /* Racing initialisers may each store a key; only the first publishes. */
    if (sm_cas_int(&canary_key_ready, 0, 2)) {
        canary_key[0] = k[0];
        canary_key[1] = k[1];
        sm_store_int(&canary_key_ready, 1);
    }
    while (sm_load_int(&canary_key_ready) != 1)
        ;
    sm_wipe(k, sizeof k);
    return 0;
}

/* Canary word i of the inner region whose seed is canary_seed(inner). */
static inline uint64_t canary_word(uint64_t seed, size_t i)
{
    return mix(seed + (i + 1) * 0x9e3779b97f4a7c15ULL) ^ canary_key[1];
}

static inline uint64_t canary_seed(const unsigned char *inner)
{
    return canary_key[0] ^ (uint64_t)(uintptr_t)inner;
}

/* Fill the first len bytes of inner with its canary: whole words, then the
 * low bytes of one more word. */
static void canary_write(unsigned char *inner, size_t len)
{
    uint64_t seed = canary_seed(inner);
    size_t words = len / 8;
    for (size_t i = 0; i < words; i++) {
        uint64_t w = canary_word(seed, i);
        memcpy(inner + 8 * i, &w, 8);
    }
    uint64_t w = canary_word(seed, words);
    for (size_t j = 0; j < len % 8; j++)
        inner[8 * words + j] = (unsigned char)(w >> (8 * j));
}

/* Whether the first len bytes of inner still hold what canary_write put there. */
static int canary_intact(const unsigned char *inner, size_t len)
{
    uint64_t seed = canary_seed(inner), diff = 0;
    size_t words = len / 8;
    for (size_t i = 0; i < words; i++) {
        uint64_t have;
        memcpy(&have, inner + 8 * i, 8);
        diff |= have ^ canary_word(seed, i);
    }
    uint64_t w = canary_word(seed, words);
    for (size_t j = 0; j < len % 8; j++)
        diff |= (unsigned char)(inner[8 * words + j] ^ (unsigned char)(w >> (8 * j)));
    return diff == 0;
}

int sm_buffer_create(size_t size, int lock_mode, sm_buffer *b)
{
    size_t page = sm_page_size();
    FORK_HOOK();
    sm_crash_altstack(); /* best effort: without one, a stack overflow dies unwiped */
    memset(b, 0, sizeof *b);
    b->slot = -1;
    b->gen = fork_generation;
    if (size == 0 || size > SIZE_MAX / 2 - 3 * page)
        return b->failed_step = SM_STEP_SIZE, EINVAL;
    int e = canary_init();
    if (e)
        return b->failed_step = SM_STEP_RANDOM, e;

    size_t inner_len = (size + SM_CANARY_MIN + page - 1) / page * page;
    size_t total = inner_len + 2 * page;
    /* The whole mapping starts PROT_NONE and only the inner pages are opened,
     * so the guard pages cost no syscall of their own. */
    void *base;
    if ((e = sm_reserve(total, &base)))
        return b->failed_step = SM_STEP_MAP, e;
    unsigned char *inner = (unsigned char *)base + page;

    int step = SM_STEP_GUARD;
    if ((e = sm_protect(inner, inner_len, SM_PROT_READ_WRITE)))
        goto fail;
    step = SM_STEP_ADVISE;
    if ((e = sm_advise(inner, inner_len, SM_ADV_DONTDUMP)) && e != ENOTSUP)
        goto fail;
    if ((e = sm_advise(inner, inner_len, SM_ADV_WIPEONFORK)) && e != ENOTSUP)
        goto fail;
    e = 0;
    step = SM_STEP_LOCK;
    if (lock_mode != SM_LOCK_NONE) {
        e = sm_lock(inner, inner_len);
        if (e == 0)
            b->locked = 1;
        else if (lock_mode == SM_LOCK_REQUIRE)
            goto fail;
        else
            b->lock_errno = e;
    }

    b->base = base;
    b->total = total;
    b->inner = inner;
    b->inner_len = inner_len;
    b->data = inner + inner_len - size;
    b->size = size;
    b->prot = SM_PROT_READ_WRITE;
    canary_write(inner, inner_len - size);
    b->slot = sm_live_add(inner, inner_len);
    return 0;

fail:
    sm_unmap(base, total);
    b->failed_step = step;
    return e;
}

int sm_buffer_protect(sm_buffer *b, int prot)
{
    if (b->base == NULL)
        return EBADF;
    int e = sm_protect(b->inner, b->inner_len, prot);
    if (e == 0)
        b->prot = prot;
    return e;
}

int sm_buffer_scrub(sm_buffer *b)
{
    if (b->base == NULL)
        return EBADF;
    if (b->gen != fork_generation)
        return ECHILD;
    int e;
    if (b->prot != SM_PROT_READ_WRITE && (e = sm_buffer_protect(b, SM_PROT_READ_WRITE)))
        return e;
    sm_wipe(b->data, b->size);
    return sm_buffer_protect(b, SM_PROT_NONE);
}

static unsigned char *claim(sm_buffer *b)
{
    return sm_swap_ptr((void *volatile *)&b->base, NULL);
}

/* Make the inner pages writable, wipe the data, verify the canary, wipe them
 * all: 0, or mprotect's errno when they could not be made writable (and so
 * were not wiped). */
static int scrub(const sm_buffer *b)
{
    /* The pages are read-write already unless a protect or the crash
     * handler's seal said otherwise; mprotect only then. */
    if (b->prot != SM_PROT_READ_WRITE || sm_live_sealed()) {
        int e = sm_protect(b->inner, b->inner_len, SM_PROT_READ_WRITE);
        if (e)
            return e;
    }
    sm_wipe(b->data, b->size);
    if (!canary_intact(b->inner, b->inner_len - b->size))
        sm_fatal_canary(b->size);
    sm_wipe(b->inner, b->inner_len);
    return 0;
}

int sm_buffer_destroy(sm_buffer *b)
{
    if (b->gen != fork_generation)
        return sm_buffer_abandon(b);
    unsigned char *base = claim(b);
    if (base == NULL)
        return 0;
    /* When the pages cannot be made writable they cannot be wiped: they are
     * unmapped unwiped (which also unlocks them) rather than left mapped. */
    if (scrub(b) == 0 && b->locked)
        sm_unlock(b->inner, b->inner_len); /* failure here cannot leak: unmapping unlocks too */
    sm_live_remove(b->slot);
    b->failed_step = SM_STEP_UNMAP;
    return sm_unmap(base, b->total);
}

int sm_buffer_quarantine(sm_buffer *b, int prot)
{
    unsigned char *base = claim(b);
    if (base == NULL)
        return 0;
    int step = 0, e = scrub(b);
    if (e)
        step = SM_STEP_OPEN;
    int k = sm_keep_reserved(b->inner, b->inner_len, b->locked, prot, e == 0, &step);
    sm_live_remove(b->slot);
    b->locked = 0;
    b->prot = prot;
    b->failed_step = step;
    return e ? e : k;
}

int sm_buffer_destroy_all(sm_buffer *const *bs, size_t n)
{
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        int e = sm_buffer_destroy(bs[i]);
        if (first == 0)
            first = e;
    }
    return first;
}

int sm_buffer_abandon(sm_buffer *b)
{
    unsigned char *base = claim(b);
    if (base == NULL)
        return 0;
    b->failed_step = SM_STEP_UNMAP;
    return sm_unmap(base, b->total);
}

int sm_equal(const void *a, const void *b, size_t len)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < len; i++)
        d |= x[i] ^ y[i];
    return d == 0;
}

/* A tick counter for timing tests: the TSC on x86 (lfence keeps earlier
 * instructions from drifting past the read), else a clock in nanoseconds. */
static inline uint64_t ticks_now(void)
{
#if defined(__x86_64__) || defined(__i386__)
    uint32_t lo, hi;
    __asm__ __volatile__("lfence\n\trdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return ((uint64_t)hi << 32) | lo;
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
    _mm_lfence();
    return __rdtsc();
#else
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

int sm_equal_ticks(const unsigned char *rows, size_t groups, size_t len, const unsigned char *classes,
                   const unsigned char *variants, size_t n, uint64_t *ticks)
{
    /* Called through a volatile pointer: what is timed is sm_equal as
     * compiled, never a copy inlined and optimised for this loop. */
    int (*volatile equal)(const void *, const void *, size_t) = sm_equal;
    volatile int sink;
    /* The two sides of every call, whatever its class: one row at a cache
     * line boundary of this array, the other right after it. */
    unsigned char space[2 * SM_EQUAL_TICKS_MAX + 64];
    if (groups == 0 || len == 0 || len > SM_EQUAL_TICKS_MAX)
        return EINVAL;
    unsigned char *a = space + (64u - (uintptr_t)space % 64u) % 64u, *b = a + len;
    for (size_t i = 0; i < n; i++) {
        /* Untimed: both rows of the group are read and both sides written,
         * by the same instructions for either class; only the values differ. */
        const unsigned char *u = rows + (i % groups) * 2 * len, *v = u + len;
        unsigned char ka = (unsigned char)(0u - (variants[i] & 1u));
        unsigned char kb = (unsigned char)(0u - ((variants[i] ^ classes[i]) & 1u));
        for (size_t j = 0; j < len; j++) {
            unsigned char x = u[j], d = x ^ v[j];
            a[j] = x ^ (d & ka);
            b[j] = x ^ (d & kb);
        }
        int (*f)(const void *, const void *, size_t) = equal;
        uint64_t start = ticks_now();
        sink = f(a, b, len);
        ticks[i] = ticks_now() - start;
    }
    (void)sink;
    return 0;
}
