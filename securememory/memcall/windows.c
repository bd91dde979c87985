/* memcall for Windows: VirtualAlloc / VirtualLock / VirtualProtect / VirtualFree.
 * Only this file knows Windows; it implements memcall.h like posix.c does.
 * Core-dump advice and memfd_secret have no equivalent and report ENOTSUP.
 *
 * VirtualLock can lock no more than the process's minimum working set (less a
 * few pages of overhead), 200 KiB by default: when it refuses with
 * ERROR_WORKING_SET_QUOTA, sm_lock raises the minimum (and the maximum with
 * it) by the size asked for and tries once more. The minimum is not lowered
 * again on unlock. */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <windows.h>
#include <bcrypt.h>
#include "memcall.h"

static int win_errno(void)
{
    DWORD e = GetLastError();
    return e == ERROR_WORKING_SET_QUOTA || e == ERROR_NOT_ENOUGH_MEMORY ? ENOMEM
         : e == ERROR_ACCESS_DENIED ? EPERM : EINVAL;
}

size_t sm_page_size(void)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return (size_t)si.dwPageSize;
}

int sm_map(size_t len, int secret, void **out)
{
    if (secret)
        return ENOSYS;
    if (len == 0 || len % sm_page_size() != 0)
        return EINVAL;
    void *p = VirtualAlloc(NULL, len, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    if (p == NULL)
        return win_errno();
    *out = p;
    return 0;
}

int sm_reserve(size_t len, void **out)
{
    if (len == 0 || len % sm_page_size() != 0)
        return EINVAL;
    void *p = VirtualAlloc(NULL, len, MEM_COMMIT | MEM_RESERVE, PAGE_NOACCESS);
    if (p == NULL)
        return win_errno();
    *out = p;
    return 0;
}

int sm_unmap(void *addr, size_t len)
{
    (void)len;
    return VirtualFree(addr, 0, MEM_RELEASE) ? 0 : win_errno();
}

int sm_free(void *addr, size_t len, int locked)
{
    /* Pages that cannot be made writable cannot be wiped: release them
     * unwiped rather than leave them mapped. */
    DWORD old;
    if (!VirtualProtect(addr, len, PAGE_READWRITE, &old))
        return sm_unmap(addr, len);
    sm_wipe(addr, len);
    if (locked)
        VirtualUnlock(addr, len);
    return sm_unmap(addr, len);
}

int sm_mapping_release(sm_mapping *m, int keep)
{
    void *addr = InterlockedExchangePointer(&m->addr, NULL);
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

static SRWLOCK working_set_lock = SRWLOCK_INIT;

/* Raise the working-set minimum and maximum by len bytes; nonzero on success. */
static int grow_working_set(size_t len)
{
    HANDLE self = GetCurrentProcess();
    SIZE_T min, max;
    int ok;
    AcquireSRWLockExclusive(&working_set_lock);
    ok = GetProcessWorkingSetSize(self, &min, &max) &&
         min <= (SIZE_T)-1 - len && max <= (SIZE_T)-1 - len &&
         SetProcessWorkingSetSize(self, min + len, max + len);
    ReleaseSRWLockExclusive(&working_set_lock);
    return ok;
}

int sm_lock(void *addr, size_t len)
{
    if (VirtualLock(addr, len))
        return 0;
    if (GetLastError() != ERROR_WORKING_SET_QUOTA)
        return win_errno();
    if (!grow_working_set(len)) {
        SetLastError(ERROR_WORKING_SET_QUOTA);
        return win_errno();
    }
    return VirtualLock(addr, len) ? 0 : win_errno();
}

int sm_unlock(void *addr, size_t len)
{
    return VirtualUnlock(addr, len) ? 0 : win_errno();
}

int sm_protect(void *addr, size_t len, int prot)
{
    DWORD p = prot == SM_PROT_NONE ? PAGE_NOACCESS
            : prot == SM_PROT_READ ? PAGE_READONLY
            : prot == SM_PROT_READ_WRITE ? PAGE_READWRITE : 0;
    DWORD old;
    if (p == 0)
        return EINVAL;
    return VirtualProtect(addr, len, p, &old) ? 0 : win_errno();
}

int sm_replace(void *addr, size_t len, int prot)
{
    /* Decommitted pages are dropped (unlocked with them) and the range stays
     * reserved, inaccessible; committing again gives fresh zero pages. */
    DWORD p = prot == SM_PROT_READ ? PAGE_READONLY : prot == SM_PROT_READ_WRITE ? PAGE_READWRITE : 0;
    if (prot != SM_PROT_NONE && p == 0)
        return EINVAL;
    if (!VirtualFree(addr, len, MEM_DECOMMIT))
        return win_errno();
    if (p != 0 && VirtualAlloc(addr, len, MEM_COMMIT, p) == NULL)
        return win_errno();
    return 0;
}

int sm_advise(void *addr, size_t len, int advice)
{
    (void)addr;
    (void)len;
    (void)advice;
    return ENOTSUP;
}

int sm_advice_supported(void) { return 0; }
int sm_memfd_secret_supported(void) { return 0; }
int sm_disable_core_dumps(int hard) { (void)hard; return ENOTSUP; }

void sm_wipe(void *addr, size_t len)
{
    SecureZeroMemory(addr, len);
}

#define SM_STACK_MARGIN 16384 /* left below the wipe: its own calls, an exception frame */

/* _alloca probes the pages in order, so the stack's guard page commits them. */
__declspec(noinline) void sm_stack_wipe(size_t len)
{
    unsigned char here;
    ULONG_PTR lo, hi;
    GetCurrentThreadStackLimits(&lo, &hi);
    uintptr_t sp = (uintptr_t)&here;
    size_t room = sp > lo + SM_STACK_MARGIN ? sp - lo - SM_STACK_MARGIN : 0;
    if (len > room)
        len = room;
    if (len > 0)
        sm_wipe(_alloca(len), len);
}

int sm_random(void *addr, size_t len)
{
    unsigned char *p = addr;
    while (len > 0) { /* BCryptGenRandom takes a ULONG length */
        ULONG n = len > 0x40000000u ? 0x40000000u : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, p, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return EIO;
        p += n;
        len -= n;
    }
    return 0;
}
