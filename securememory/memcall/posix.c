/* memcall for Linux and other POSIX systems. Linux-only calls (madvise flags,
 * memfd_secret, getrandom) are compiled only where the headers define them. */
#define _GNU_SOURCE
#include <alloca.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#ifdef __linux__
#include <sys/syscall.h>
#include <sys/random.h>
#endif
#include "memcall.h"

#if defined(__linux__) && !defined(SYS_memfd_secret) && defined(__x86_64__)
#define SYS_memfd_secret 447
#endif
#if defined(__linux__) && !defined(SYS_memfd_secret) && defined(__aarch64__)
#define SYS_memfd_secret 447
#endif

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

size_t sm_page_size(void)
{
    static size_t page;
    if (page == 0)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

static int map_secret(size_t len, void **out)
{
#ifdef SYS_memfd_secret
    int fd = (int)syscall(SYS_memfd_secret, 0);
    if (fd < 0)
        return errno;
    if (ftruncate(fd, (off_t)len) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the memory; no descriptor per secret */
    if (p == MAP_FAILED)
        return e;
    *out = p;
    return 0;
#else
    (void)len;
    (void)out;
    return ENOSYS;
#endif
}

int sm_map(size_t len, int secret, void **out)
{
    if (len == 0 || len % sm_page_size() != 0)
        return EINVAL;
    if (secret)
        return map_secret(len, out);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return errno;
    *out = p;
    return 0;
}

int sm_reserve(size_t len, void **out)
{
    if (len == 0 || len % sm_page_size() != 0)
        return EINVAL;
    void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return errno;
    *out = p;
    return 0;
}

int sm_unmap(void *addr, size_t len)
{
    return munmap(addr, len) == 0 ? 0 : errno;
}

int sm_free(void *addr, size_t len, int locked)
{
    /* Pages that cannot be made writable cannot be wiped: unmap them unwiped
     * (which unlocks them too) rather than leave them mapped. */
    if (mprotect(addr, len, PROT_READ | PROT_WRITE) != 0)
        return sm_unmap(addr, len);
    sm_wipe(addr, len);
    if (locked)
        munlock(addr, len); /* failure here cannot leak: unmapping unlocks too */
    return sm_unmap(addr, len);
}

int sm_mapping_release(sm_mapping *m, int keep)
{
    void *addr = __atomic_exchange_n(&m->addr, NULL, __ATOMIC_ACQ_REL);
    if (addr == NULL)
        return 0;
    int step = SM_STEP_UNMAP; /* the one step of sm_free that can fail */
    int e = keep < 0 ? sm_free(addr, m->len, m->locked) : sm_quarantine(addr, m->len, m->locked, keep, &step);
    if (e)
        m->failed_step = step;
    return e;
}

void sm_mapping_finalize(sm_mapping *m)
{
    sm_mapping_release(m, -1);
}

int sm_lock(void *addr, size_t len)
{
    return mlock(addr, len) == 0 ? 0 : errno;
}

int sm_unlock(void *addr, size_t len)
{
    return munlock(addr, len) == 0 ? 0 : errno;
}

static int prot_bits(int prot)
{
    return prot == SM_PROT_NONE ? PROT_NONE
         : prot == SM_PROT_READ ? PROT_READ
         : prot == SM_PROT_READ_WRITE ? (PROT_READ | PROT_WRITE) : -1;
}

int sm_protect(void *addr, size_t len, int prot)
{
    int p = prot_bits(prot);
    if (p == -1)
        return EINVAL;
    return mprotect(addr, len, p) == 0 ? 0 : errno;
}

int sm_replace(void *addr, size_t len, int prot)
{
    int p = prot_bits(prot);
    if (p == -1)
        return EINVAL;
    void *q = mmap(addr, len, p, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    return q == MAP_FAILED ? errno : 0;
}

int sm_advise(void *addr, size_t len, int advice)
{
    switch (advice) {
#ifdef MADV_DONTDUMP
    case SM_ADV_DONTDUMP:
        return madvise(addr, len, MADV_DONTDUMP) == 0 ? 0 : errno;
#endif
#ifdef MADV_WIPEONFORK
    case SM_ADV_WIPEONFORK:
        return madvise(addr, len, MADV_WIPEONFORK) == 0 ? 0 : errno;
#endif
    default:
        (void)addr;
        (void)len;
        return ENOTSUP;
    }
}

int sm_advice_supported(void)
{
    int mask = 0;
#if defined(MADV_DONTDUMP) || defined(MADV_WIPEONFORK)
    size_t page = sm_page_size();
    void *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 0;
#ifdef MADV_DONTDUMP
    if (madvise(p, page, MADV_DONTDUMP) == 0)
        mask |= SM_ADV_DONTDUMP;
#endif
#ifdef MADV_WIPEONFORK
    if (madvise(p, page, MADV_WIPEONFORK) == 0)
        mask |= SM_ADV_WIPEONFORK;
#endif
    munmap(p, page);
#endif
    return mask;
}

int sm_memfd_secret_supported(void)
{
    void *p;
    size_t page = sm_page_size();
    if (map_secret(page, &p) != 0)
        return 0;
    munmap(p, page);
    return 1;
}

int sm_disable_core_dumps(int hard)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_CORE, &rl) != 0)
        return errno;
    rl.rlim_cur = 0;
    if (hard)
        rl.rlim_max = 0;
    return setrlimit(RLIMIT_CORE, &rl) == 0 ? 0 : errno;
}

static void *(*const volatile memset_v)(void *, int, size_t) = memset;

void sm_wipe(void *addr, size_t len)
{
    memset_v(addr, 0, len);
    __asm__ __volatile__("" : : "r"(addr) : "memory");
}

/* The lowest address this thread's stack may grow to, found once per thread
 * (for the main thread glibc reads /proc/self/maps); 0 when unknown. */
static uintptr_t stack_floor(void)
{
    static __thread uintptr_t floor;
    static __thread int known;
    if (!known) {
#ifdef __linux__
        pthread_attr_t attr;
        void *lo;
        size_t size;
        if (pthread_getattr_np(pthread_self(), &attr) == 0) {
            if (pthread_attr_getstack(&attr, &lo, &size) == 0)
                floor = (uintptr_t)lo;
            pthread_attr_destroy(&attr);
        }
#endif
        known = 1;
    }
    return floor;
}

#define SM_STACK_MARGIN 16384 /* left below the wipe: its own calls, a signal frame */
#define SM_STACK_UNKNOWN 4096 /* wiped where the stack's bounds are unknown */

__attribute__((noinline)) void sm_stack_wipe(size_t len)
{
    unsigned char here;
    uintptr_t sp = (uintptr_t)&here, floor = stack_floor();
    size_t room = floor == 0 ? SM_STACK_UNKNOWN : sp > floor + SM_STACK_MARGIN ? sp - floor - SM_STACK_MARGIN : 0;
    if (len > room)
        len = room;
    if (len == 0)
        return;
    sm_wipe(alloca(len), len);
}

int sm_random(void *addr, size_t len)
{
    unsigned char *p = addr;
    while (len > 0) {
#ifdef __linux__
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
#else
        size_t n = len > 256 ? 256 : len;
        if (getentropy(p, n) != 0)
            return errno;
#endif
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
