/* The few atomic operations memguard needs for data that a lock-free reader
 * (the crash handler, a racing canary-key initialiser, a concurrent destroy)
 * may see mid-update.
 *
 * GCC and Clang use their __atomic builtins. Windows uses what both MSVC and
 * mingw-w64 provide: Interlocked* for read-modify-write and full fences
 * (MemoryBarrier) around volatile accesses for acquire loads and release
 * stores; MSVC's C compiler has no __atomic builtins, and <stdatomic.h> only
 * in recent releases behind /experimental:c11atomics.
 */
#ifndef SECUREMEMORY_MEMGUARD_ATOMIC_H
#define SECUREMEMORY_MEMGUARD_ATOMIC_H

#include <stddef.h>

#ifdef _WIN32
#include <windows.h>

static inline int sm_load_int(const volatile int *p)
{
    int v = *p;
    MemoryBarrier();
    return v;
}

static inline void sm_store_int(volatile int *p, int v)
{
    MemoryBarrier();
    *p = v;
}

/* Store desired when *p == expected; nonzero when it did. */
static inline int sm_cas_int(volatile int *p, int expected, int desired)
{
    return InterlockedCompareExchange((volatile LONG *)p, desired, expected) == expected;
}

static inline size_t sm_load_size(const volatile size_t *p)
{
    size_t v = *p;
    MemoryBarrier();
    return v;
}

static inline void *sm_load_ptr(void *const volatile *p)
{
    void *v = *p;
    MemoryBarrier();
    return v;
}

static inline void sm_store_ptr(void *volatile *p, void *v)
{
    MemoryBarrier();
    *p = v;
}

static inline void *sm_swap_ptr(void *volatile *p, void *v)
{
    return InterlockedExchangePointer((PVOID volatile *)p, v);
}

#else

static inline int sm_load_int(const volatile int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void sm_store_int(volatile int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static inline int sm_cas_int(volatile int *p, int expected, int desired)
{
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static inline size_t sm_load_size(const volatile size_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void *sm_load_ptr(void *const volatile *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void sm_store_ptr(void *volatile *p, void *v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static inline void *sm_swap_ptr(void *volatile *p, void *v)
{
    return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL);
}

#endif

#endif
