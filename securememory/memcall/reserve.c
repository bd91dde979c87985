/* Quarantine: the platform-independent end of a teardown that keeps its range
 * reserved (a view that outlived its use must fault, or read zeros, and never
 * read a newer secret mapped there), built on the calls of posix.c or windows.c.
 *
 * A failed step leaves no plaintext mapped and no page locked or writable
 * (the protections "failed quarantine drops unwiped pages", "failed
 * quarantine leaves no page locked", "failed quarantine leaves no page
 * writable"): pages that cannot be made writable to be wiped, or that cannot
 * be unlocked or given their final protection once wiped, are replaced in one
 * call by fresh zero pages (sm_replace), which drops them, locked or not, and
 * keeps the range reserved. The error still names the step that failed. */
#include "memcall.h"

int sm_quarantine(void *addr, size_t len, int locked, int prot, int *step)
{
    int e = sm_protect(addr, len, SM_PROT_READ_WRITE);
    if (e == 0)
        sm_wipe(addr, len);
    else
        *step = SM_STEP_OPEN;
    int k = sm_keep_reserved(addr, len, locked, prot, e == 0, step);
    return e ? e : k;
}

int sm_keep_reserved(void *addr, size_t len, int locked, int prot, int wiped, int *step)
{
    int e = 0;
    if (wiped) {
        if (locked && (e = sm_unlock(addr, len)) != 0)
            *step = SM_STEP_UNLOCK;
        else if ((e = sm_protect(addr, len, prot)) != 0)
            *step = SM_STEP_SEAL;
        if (e == 0)
            return 0;
    }
    /* unwiped, or wiped but still locked or writable: drop the pages */
    if (sm_replace(addr, len, prot) != 0 && !wiped)
        sm_unmap(addr, len); /* losing the reservation beats keeping plaintext mapped */
    return e;
}
