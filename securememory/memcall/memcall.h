/* memcall: page-level system calls behind one small C interface.
 *
 * Every function does its whole syscall sequence in one call and returns 0 or
 * an errno value, so Python crosses into C once per operation. posix.c and
 * windows.c implement this header; the build picks one.
 */
#ifndef SECUREMEMORY_MEMCALL_H
#define SECUREMEMORY_MEMCALL_H

#include <stddef.h>

#define SM_PROT_NONE 0
#define SM_PROT_READ 1
#define SM_PROT_READ_WRITE 3

#define SM_ADV_DONTDUMP 1
#define SM_ADV_WIPEONFORK 2

/* The step of a syscall sequence that failed, so an error can name its call
 * (securememory/memcall/failures.py names each). Creation of a guarded buffer: */
#define SM_STEP_SIZE 1    /* no call: the size is out of range */
#define SM_STEP_RANDOM 2  /* getrandom (the canary key) */
#define SM_STEP_MAP 3     /* mmap of the whole reservation */
#define SM_STEP_GUARD 4   /* mprotect of the inner pages to read-write */
#define SM_STEP_ADVISE 5  /* madvise of the inner pages */
#define SM_STEP_LOCK 6    /* mlock of the inner pages */
/* Teardown: */
#define SM_STEP_OPEN 7    /* mprotect to read-write before the wipe: the pages were dropped unwiped */
#define SM_STEP_UNLOCK 8  /* munlock after the wipe */
#define SM_STEP_SEAL 9    /* mprotect of the wiped pages to the protection they keep */
#define SM_STEP_UNMAP 10  /* munmap: the wiped, unlocked pages stay mapped */

size_t sm_page_size(void);
/* Map len bytes (a page multiple), zero-filled, read-write, private.
 * secret != 0 backs them with memfd_secret (ENOSYS where unavailable). */
int sm_map(size_t len, int secret, void **out);
/* Reserve len bytes (a page multiple) as one private PROT_NONE mapping. */
int sm_reserve(size_t len, void **out);
int sm_unmap(void *addr, size_t len);
/* Make read-write, wipe, munlock when locked, unmap; when the pages cannot be
 * made read-write, unmap them unwiped. Returns munmap's errno. */
int sm_free(void *addr, size_t len, int locked);
/* A mapping owned by one handle. Releasing claims it, so a second release (or
 * the finalizer after one) does nothing and never touches memory the handle
 * no longer owns. keep < 0 frees; otherwise the range is quarantined with
 * prot keep. A release that fails still ends with no plaintext mapped (see
 * sm_free, sm_quarantine) and the handle owning nothing: there is nothing left
 * to retry. failed_step then names the step (SM_STEP_*) that failed. */
typedef struct sm_mapping {
    void *addr; /* NULL once released */
    size_t len;
    int locked;
    int failed_step;
} sm_mapping;
int sm_mapping_release(sm_mapping *m, int keep);
void sm_mapping_finalize(sm_mapping *m);
/* Make read-write, wipe, munlock when locked, then leave the range mapped with
 * prot: reserved for good, so a stale pointer into it never reads newer data.
 * Every failure ends the same way (see sm_keep_reserved); returns the errno of
 * the first failed step, named in *step. */
int sm_quarantine(void *addr, size_t len, int locked, int prot, int *step);
/* The end of every quarantine: leave the range reserved with prot, unlocked,
 * its content gone. wiped: the caller wiped it (then munlock and mprotect to
 * prot); otherwise it could not be made writable to be wiped. When a step
 * fails, or the range is unwiped, the range is replaced in one call by fresh
 * zero pages of prot (sm_replace): the old pages go, locked or not, and the
 * range stays reserved. When even that fails, unwiped pages are unmapped:
 * losing the reservation is better than keeping plaintext mapped. Returns 0 or
 * the errno of the failed step, named in *step. */
int sm_keep_reserved(void *addr, size_t len, int locked, int prot, int wiped, int *step);
/* Replace [addr, addr + len) with fresh private zero pages of prot in one call
 * (mmap MAP_FIXED; on Windows decommit, then commit when prot is not NONE):
 * its old pages, anonymous or memfd_secret, locked or not, are dropped and the
 * range stays reserved. MADV_DONTNEED would only unmap a memfd_secret
 * mapping's pages from the page tables, not drop them, and needs a munlock
 * that can itself fail. */
int sm_replace(void *addr, size_t len, int prot);
int sm_lock(void *addr, size_t len);
int sm_unlock(void *addr, size_t len);
int sm_protect(void *addr, size_t len, int prot);
int sm_advise(void *addr, size_t len, int advice);
/* Advice this build and kernel can accept (bitmask of SM_ADV_*). */
int sm_advice_supported(void);
int sm_memfd_secret_supported(void);
/* RLIMIT_CORE soft (and hard when hard != 0) to 0. */
int sm_disable_core_dumps(int hard);
/* A wipe the compiler cannot drop; async-signal-safe. */
void sm_wipe(void *addr, size_t len);
/* Zero up to len bytes of this thread's stack below the caller's frame, where
 * functions that returned (OpenSSL, Rust, libc) left their locals; bounded by
 * the thread's stack. */
void sm_stack_wipe(size_t len);
/* Fill from the kernel CSPRNG. */
int sm_random(void *addr, size_t len);

#endif
