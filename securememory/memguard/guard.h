/* memguard: guarded buffers and the crash-wipe table of live buffers. */
#ifndef SECUREMEMORY_GUARD_H
#define SECUREMEMORY_GUARD_H

#include <stddef.h>
#include <stdint.h>

#define SM_LOCK_NONE 0
#define SM_LOCK_REQUIRE 1
#define SM_LOCK_BEST_EFFORT 2

#define SM_CANARY_MIN 16

typedef struct sm_buffer {
    unsigned char *base;  /* start of the mapping; NULL once destroyed */
    size_t total;         /* guard + inner + guard */
    unsigned char *inner; /* canary then data; locked, not dumped, wiped on fork */
    size_t inner_len;
    unsigned char *data;  /* last data byte touches the trailing guard page */
    size_t size;
    int locked;
    int prot;             /* SM_PROT_* of the inner pages, as last set here */
    int slot;             /* index in the live table */
    int failed_step;      /* SM_STEP_* (memcall.h) when create, destroy or quarantine failed */
    int lock_errno;       /* why best-effort locking left the pages unlocked */
    unsigned long gen;    /* fork generation at creation: a child only unmaps */
} sm_buffer;

int sm_buffer_create(size_t size, int lock_mode, sm_buffer *b);
/* Wipe, verify the canary (fatal on mismatch), unlock, unmap. Idempotent.
 * In a forked child (the pages were wiped at fork) it only unmaps, so it is
 * also the buffer's finalizer: no Python runs when a Buffer is collected.
 * The buffer is dead afterwards even when it fails: munmap's errno is
 * returned and its wiped, unlocked pages stay mapped, owned by nothing. */
int sm_buffer_destroy(sm_buffer *b);
/* Destroy n buffers in one call; returns 0 or the first error. */
int sm_buffer_destroy_all(sm_buffer *const *bs, size_t n);
/* Wipe, verify the canary and unlock like destroy, but keep the mapping with
 * the inner pages at prot: a view that outlived its borrow faults (or reads
 * zeros while its borrow is in flight) and never reads a newer secret. The
 * buffer is dead afterwards even when a step failed: the inner pages end as
 * sm_keep_reserved leaves them, and the failed step is in failed_step. */
int sm_buffer_quarantine(sm_buffer *b, int prot);
/* Drop a buffer inherited across fork: its pages were wiped, so no canary check. */
int sm_buffer_abandon(sm_buffer *b);
int sm_buffer_protect(sm_buffer *b, int prot);
/* A reusable buffer back at rest: wipe the data, then leave the inner pages
 * NO_ACCESS. 0; EBADF once destroyed, ECHILD in a forked child; mprotect's
 * errno when a step failed (the data is then wiped only if the pages could be
 * made writable: the caller destroys the buffer). */
int sm_buffer_scrub(sm_buffer *b);
int sm_equal(const void *a, const void *b, size_t len);
/* Timing tests of sm_equal. rows holds groups of two rows of len bytes,
 * [u, v], u and v differing. Call i takes group i % groups and
 * k = variants[i] & 1; untimed, it copies row k to the first side and row k
 * (class 0: equal) or row 1 - k (class 1) to the second, by classes[i] & 1,
 * then times sm_equal on the two sides; its duration goes to ticks[i]: TSC
 * cycles on x86, else nanoseconds. The two sides are the same two
 * line-aligned rows of a local array in every call, so no address, distance
 * or cache-line split can tell the classes apart, and the untimed copy reads
 * both rows of the group for either class. EINVAL when groups or len is 0
 * or len exceeds SM_EQUAL_TICKS_MAX. */
#define SM_EQUAL_TICKS_MAX 256
int sm_equal_ticks(const unsigned char *rows, size_t groups, size_t len, const unsigned char *classes,
                   const unsigned char *variants, size_t n, uint64_t *ticks);

/* coffer.c */
void sm_blake2b_256(const void *in, size_t len, unsigned char out[32]);
void sm_coffer_key(const unsigned char left[32], const unsigned char right[32], unsigned char out[32]);
int sm_coffer_rekey(unsigned char left[32], unsigned char right[32]);

/* crash.c */
int sm_live_add(void *addr, size_t len);
void sm_live_remove(int slot);
void sm_live_remove_if(int slot, void *addr);
void sm_live_reset(void);
size_t sm_live_count(void);
/* Nonzero once the crash handler has left live pages NO_ACCESS. */
int sm_live_sealed(void);
void sm_wipe_all(void);
void sm_fatal_canary(size_t size);
int sm_crash_install(void);
/* Give the calling thread an alternate signal stack if it has none. */
int sm_crash_altstack(void);
int sm_crash_uninstall(void);
int sm_crash_installed(void);

#endif
