/* The floor: raw syscall sequences run n times in a C loop, with no Python
 * between iterations. Each function returns 0 or the errno of the first
 * failing call. Dividing a timed call by n gives the cost of one iteration,
 * the least any Python wrapper around the same sequence can cost. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include "floor.h"

#ifndef MADV_DONTDUMP
#define MADV_DONTDUMP 16
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

static size_t page_size(void)
{
    static size_t page;
    if (page == 0)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

static void wipe(void *p, size_t n)
{
    explicit_bzero(p, n);
}

/* One getppid() per iteration: the cost of crossing into the kernel. */
int floor_syscall(long n)
{
    for (long i = 0; i < n; i++)
        (void)syscall(SYS_getppid);
    return 0;
}

typedef struct floor_buf {
    unsigned char *base;
    unsigned char *inner;
    size_t inner_len;
    size_t total;
} floor_buf;

/* mmap guard + inner + guard, PROT_NONE both guards, DONTDUMP and WIPEONFORK
 * the inner pages, mlock them. */
static int guarded_create(size_t inner_len, floor_buf *b)
{
    size_t page = page_size();
    size_t total = inner_len + 2 * page;
    void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return errno;
    unsigned char *base = p, *inner = base + page;
    if (mprotect(base, page, PROT_NONE) || mprotect(inner + inner_len, page, PROT_NONE) ||
        madvise(inner, inner_len, MADV_DONTDUMP) || madvise(inner, inner_len, MADV_WIPEONFORK) ||
        mlock(inner, inner_len)) {
        int e = errno;
        munmap(base, total);
        return e;
    }
    b->base = base;
    b->inner = inner;
    b->inner_len = inner_len;
    b->total = total;
    return 0;
}

/* wipe, munlock, munmap */
static int guarded_destroy(floor_buf *b)
{
    wipe(b->inner, b->inner_len);
    if (munlock(b->inner, b->inner_len) || munmap(b->base, b->total))
        return errno;
    return 0;
}

/* The guarded 1-page buffer lifecycle: mmap 3 pages, 2 guard mprotects,
 * MADV_DONTDUMP, MADV_WIPEONFORK, mlock, wipe, munlock, munmap. */
int floor_lifecycle(long n)
{
    size_t page = page_size();
    for (long i = 0; i < n; i++) {
        floor_buf b;
        int e = guarded_create(page, &b);
        if (e || (e = guarded_destroy(&b)))
            return e;
    }
    return 0;
}

/* The old design's lifecycle: mmap 1 page, mlock, mprotect NONE (at rest),
 * mprotect READ|WRITE, wipe, munlock, munmap. No guards, no advice. */
int floor_legacy_lifecycle(long n)
{
    size_t page = page_size();
    for (long i = 0; i < n; i++) {
        void *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return errno;
        if (mlock(p, page) || mprotect(p, page, PROT_NONE) || mprotect(p, page, PROT_READ | PROT_WRITE))
            return errno;
        wipe(p, page);
        if (munlock(p, page) || munmap(p, page))
            return errno;
    }
    return 0;
}

/* One protected read: NONE -> READ, read len bytes, READ -> NONE; on one
 * guarded, locked 1-page buffer made on the first call and kept (NO_ACCESS)
 * for the life of the process, so only the toggles and the read are looped. */
static volatile unsigned char sink;
static floor_buf read_buf;

int floor_protected_read(long n, size_t len)
{
    if (len > page_size())
        return EINVAL;
    if (read_buf.base == NULL) {
        int e = guarded_create(page_size(), &read_buf);
        if (e)
            return e;
        if (mprotect(read_buf.inner, read_buf.inner_len, PROT_NONE))
            return errno;
    }
    const unsigned char *data = read_buf.inner + read_buf.inner_len - len;
    for (long i = 0; i < n; i++) {
        if (mprotect(read_buf.inner, read_buf.inner_len, PROT_READ))
            return errno;
        unsigned char acc = 0;
        for (size_t j = 0; j < len; j++)
            acc ^= ((const volatile unsigned char *)data)[j];
        sink = acc;
        if (mprotect(read_buf.inner, read_buf.inner_len, PROT_NONE))
            return errno;
    }
    return 0;
}

/* A batch of live guarded 1-page buffers, made by floor_batch_create and
 * torn down by floor_batch_destroy, so the destroy half can be timed alone.
 * Destroy here is what purge does per buffer: mprotect READ|WRITE, wipe,
 * munlock, munmap. */
typedef struct floor_batch {
    long n;
    floor_buf *bufs;
} floor_batch;

floor_batch *floor_batch_create(long n)
{
    floor_batch *batch = calloc(1, sizeof *batch);
    if (batch == NULL)
        return NULL;
    batch->bufs = calloc((size_t)n, sizeof *batch->bufs);
    if (batch->bufs == NULL) {
        free(batch);
        return NULL;
    }
    for (long i = 0; i < n; i++) {
        if (guarded_create(page_size(), &batch->bufs[i]))
            break;
        batch->n = i + 1;
    }
    return batch;
}

long floor_batch_size(floor_batch *batch)
{
    return batch->n;
}

int floor_batch_destroy(floor_batch *batch)
{
    int first = 0;
    for (long i = 0; i < batch->n; i++) {
        floor_buf *b = &batch->bufs[i];
        int e = mprotect(b->inner, b->inner_len, PROT_READ | PROT_WRITE) ? errno : 0;
        if (!e)
            e = guarded_destroy(b);
        if (e && !first)
            first = e;
    }
    free(batch->bufs);
    free(batch);
    return first;
}

/* A peer's guarded allocation of size bytes, then freed: what its own
 * create + destroy costs with no Python between iterations. */
int floor_peer_lifecycle(long n, size_t size, floor_alloc_fn alloc, floor_free_fn release)
{
    for (long i = 0; i < n; i++) {
        void *p = alloc(size);
        if (p == NULL)
            return errno ? errno : ENOMEM;
        release(p);
    }
    return 0;
}

/* A peer's protected read of len bytes at ptr (made NO_ACCESS by the
 * caller): readonly, read, noaccess; the same steps as floor_protected_read. */
int floor_peer_protected_read(long n, size_t len, void *ptr, floor_protect_fn noaccess, floor_protect_fn readonly)
{
    const volatile unsigned char *data = ptr;
    for (long i = 0; i < n; i++) {
        if (readonly(ptr))
            return errno ? errno : EINVAL;
        unsigned char acc = 0;
        for (size_t j = 0; j < len; j++)
            acc ^= data[j];
        sink = acc;
        if (noaccess(ptr))
            return errno ? errno : EINVAL;
    }
    return 0;
}
