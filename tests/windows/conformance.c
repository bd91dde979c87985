/* Conformance of securememory's C layer on Windows (memcall/windows.c and the
 * memguard C files), built with mingw-w64 and run natively or under wine.
 *
 * Faults are observed with a vectored exception handler: an access violation
 * inside the armed range is recorded, the page is made read-write so the
 * faulting instruction succeeds when it is re-executed, and the check then
 * asserts the address and kind of the fault. The canary check and the crash
 * wipe end a process, so they run in children: this program started again
 * with "canary" or "crash".
 *
 * Prints one line per check and "N passed, M failed"; exits 1 on any failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>
#include "memcall/memcall.h"
#include "memguard/guard.h"

static int passed, failed;

static void check(int ok, const char *what)
{
    printf("%s - %s\n", ok ? "ok" : "not ok", what);
    if (ok)
        passed++;
    else
        failed++;
}

/* The armed range and what the handler saw. */
static unsigned char *volatile armed_lo, *volatile armed_hi;
static volatile LONG faults;
static volatile ULONG_PTR fault_addr, fault_kind; /* kind: 0 read, 1 write */

static LONG CALLBACK on_fault(EXCEPTION_POINTERS *e)
{
    EXCEPTION_RECORD *r = e->ExceptionRecord;
    if (r->ExceptionCode != EXCEPTION_ACCESS_VIOLATION || r->NumberParameters < 2)
        return EXCEPTION_CONTINUE_SEARCH;
    unsigned char *a = (unsigned char *)r->ExceptionInformation[1];
    if (a < armed_lo || a >= armed_hi)
        return EXCEPTION_CONTINUE_SEARCH;
    fault_kind = r->ExceptionInformation[0];
    fault_addr = (ULONG_PTR)a;
    InterlockedIncrement(&faults);
    DWORD old;
    VirtualProtect((void *)((ULONG_PTR)a & ~(ULONG_PTR)(sm_page_size() - 1)), 1, PAGE_READWRITE, &old);
    return EXCEPTION_CONTINUE_EXECUTION;
}

static void arm(void *lo, size_t len)
{
    armed_lo = lo;
    armed_hi = (unsigned char *)lo + len;
    faults = 0;
    fault_addr = 0;
    fault_kind = (ULONG_PTR)-1;
}

/* Whether reading (write == 0) or writing *p faulted exactly once, there. */
static int faults_at(volatile unsigned char *p, int write)
{
    LONG before = faults;
    if (write)
        *p = 0x5a;
    else
        (void)*p;
    return faults == before + 1 && fault_addr == (ULONG_PTR)p && fault_kind == (ULONG_PTR)write;
}

static int no_fault(volatile unsigned char *p, int write)
{
    LONG before = faults;
    if (write)
        *p = 0x5a;
    else
        (void)*p;
    return faults == before;
}

static int all_zero(const unsigned char *p, size_t n)
{
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static void test_pages(void)
{
    size_t page = sm_page_size();
    check(page >= 4096 && (page & (page - 1)) == 0, "page size is a power of two");

    void *p = NULL;
    check(sm_map(3 * page, 0, &p) == 0 && p != NULL, "map 3 pages read-write");
    memset(p, 0xab, 3 * page);
    check(sm_lock(p, 3 * page) == 0, "lock 3 pages");
    check(sm_unlock(p, 3 * page) == 0, "unlock them");
    check(sm_free(p, 3 * page, 0) == 0, "free (wipe, release)");
    MEMORY_BASIC_INFORMATION mbi;
    check(VirtualQuery(p, &mbi, sizeof mbi) != 0 && mbi.State == MEM_FREE, "freed pages are released");

    check(sm_map(page + 1, 0, &p) == EINVAL, "map of a non-page multiple is EINVAL");
    check(sm_map(page, 1, &p) == ENOSYS, "memfd_secret pages are ENOSYS");
    check(sm_memfd_secret_supported() == 0 && sm_advice_supported() == 0, "no memfd_secret, no madvise advice");
    check(sm_disable_core_dumps(0) == ENOTSUP, "core-dump limit is ENOTSUP");

    /* More than the minimum working set: Windows refuses it with
     * ERROR_WORKING_SET_QUOTA until sm_lock raises the minimum. */
    SIZE_T min0 = 0, max0 = 0, min1 = 0, max1 = 0;
    GetProcessWorkingSetSize(GetCurrentProcess(), &min0, &max0);
    size_t big = ((size_t)min0 + (8u << 20)) / page * page;
    check(sm_map(big, 0, &p) == 0, "map the working-set minimum + 8 MiB");
    memset(p, 1, big);
    int e = sm_lock(p, big);
    GetProcessWorkingSetSize(GetCurrentProcess(), &min1, &max1);
    printf("# working set minimum %lu KiB -> %lu KiB around a lock of %lu KiB\n",
           (unsigned long)(min0 >> 10), (unsigned long)(min1 >> 10), (unsigned long)(big >> 10));
    check(e == 0, "lock more than the working-set minimum (sm_lock raises it when refused)");
    check(e != 0 || sm_unlock(p, big) == 0, "unlock it");
    check(sm_free(p, big, 0) == 0, "free it");
}

static void test_protect(void)
{
    size_t page = sm_page_size();
    void *v = NULL;
    check(sm_reserve(2 * page, &v) == 0, "reserve 2 pages no-access");
    unsigned char *p = v;
    arm(p, 2 * page);
    check(faults_at(p + 10, 0), "read of a reserved page faults");
    sm_protect(p, 2 * page, SM_PROT_NONE);
    check(sm_protect(p, page, SM_PROT_READ_WRITE) == 0, "protect read-write");
    check(no_fault(p, 1) && no_fault(p + page - 1, 0), "read-write page reads and writes");
    check(sm_protect(p, page, SM_PROT_READ) == 0, "protect read-only");
    check(no_fault(p, 0), "read-only page reads");
    check(faults_at(p + 7, 1), "write to a read-only page faults");
    check(sm_protect(p, page, SM_PROT_NONE) == 0, "protect no-access");
    check(faults_at(p + 100, 0), "read of a no-access page faults");
    sm_protect(p, page, SM_PROT_NONE);
    check(faults_at(p + 200, 1), "write to a no-access page faults");
    check(sm_protect(p, page, 2) == EINVAL, "unknown protection is EINVAL");
    arm(NULL, 0);
    check(sm_unmap(p, 2 * page) == 0, "unmap");
}

static void test_buffer(void)
{
    size_t page = sm_page_size();
    sm_buffer b;
    size_t live = sm_live_count();
    check(sm_buffer_create(32, SM_LOCK_REQUIRE, &b) == 0, "create a guarded 32-byte buffer, locked");
    check(b.locked == 1 && b.inner == b.base + page && b.inner_len == page && b.total == 3 * page,
          "layout: guard page, one inner page, guard page");
    check(b.data + b.size == b.inner + b.inner_len, "data right-aligned against the trailing guard page");
    check(sm_live_count() == live + 1, "buffer recorded in the live table");
    memset(b.data, 0x42, b.size);

    arm(b.base, b.total);
    check(faults_at(b.inner - 1, 0), "read of the leading guard page faults");
    sm_protect(b.base, page, SM_PROT_NONE);
    check(faults_at(b.data + b.size, 1), "write just past the data hits the trailing guard page");
    sm_protect(b.inner + b.inner_len, page, SM_PROT_NONE);

    check(sm_buffer_protect(&b, SM_PROT_NONE) == 0, "buffer to no-access");
    check(faults_at(b.data, 0), "read of a no-access buffer faults");
    check(sm_buffer_protect(&b, SM_PROT_READ) == 0, "buffer to read-only");
    check(b.data[0] == 0x42 && b.data[31] == 0x42, "data intact");
    check(faults_at(b.data + 3, 1), "write to a read-only buffer faults");
    check(sm_buffer_protect(&b, SM_PROT_NONE) == 0, "buffer back to no-access");
    arm(NULL, 0);

    check(sm_buffer_destroy(&b) == 0 && b.base == NULL, "destroy (canary intact)");
    check(sm_buffer_destroy(&b) == 0, "destroy again is a no-op");
    check(sm_live_count() == live, "buffer left the live table");

    /* The crash wipe zeroes canaries too, so this buffer is abandoned, not destroyed. */
    check(sm_buffer_create(32, SM_LOCK_NONE, &b) == 0, "create another");
    memset(b.data, 0x42, b.size);
    sm_buffer_protect(&b, SM_PROT_NONE);
    sm_wipe_all();
    sm_buffer_protect(&b, SM_PROT_READ);
    check(all_zero(b.inner, b.inner_len), "wipe_all zeroes every live buffer, no-access ones included");
    sm_live_remove(b.slot);
    check(sm_buffer_abandon(&b) == 0, "unmap it without the canary check");
    check(sm_buffer_create(0, SM_LOCK_NONE, &b) == EINVAL, "size 0 is EINVAL");

    check(sm_buffer_create(page, SM_LOCK_BEST_EFFORT, &b) == 0 && b.inner_len == 2 * page &&
              b.data - b.inner >= SM_CANARY_MIN,
          "a page-sized buffer still gets a canary");
    check(sm_buffer_destroy(&b) == 0, "destroy it");
}

static DWORD WINAPI churn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 300; i++) {
        sm_buffer b;
        if (sm_buffer_create(64, SM_LOCK_BEST_EFFORT, &b) != 0)
            return 1;
        memset(b.data, 0x11, b.size);
        if (sm_buffer_destroy(&b) != 0)
            return 1;
    }
    return 0;
}

static void test_threads(void)
{
    HANDLE t[4];
    size_t live = sm_live_count();
    int ok = 1;
    for (int i = 0; i < 4; i++)
        ok &= (t[i] = CreateThread(NULL, 0, churn, NULL, 0, NULL)) != NULL;
    for (int i = 0; i < 4; i++) {
        DWORD code = 1;
        if (t[i] == NULL)
            continue;
        WaitForSingleObject(t[i], INFINITE);
        GetExitCodeThread(t[i], &code);
        ok &= code == 0;
        CloseHandle(t[i]);
    }
    check(ok, "4 threads create and destroy 300 buffers each");
    check(sm_live_count() == live, "live table balanced after the threads");
}

static void test_primitives(void)
{
    unsigned char a[64], b[64];
    check(sm_random(a, sizeof a) == 0 && sm_random(b, sizeof b) == 0 && memcmp(a, b, sizeof a) != 0,
          "random: two draws differ");
    sm_wipe(a, sizeof a);
    check(all_zero(a, sizeof a), "wipe zeroes");
    memcpy(b, a, sizeof a);
    check(sm_equal(a, b, sizeof a), "equal on equal bytes");
    b[63] ^= 1;
    check(!sm_equal(a, b, sizeof a), "not equal when the last byte differs");

    static const unsigned char empty[32] = {
        0x0e, 0x57, 0x51, 0xc0, 0x26, 0xe5, 0x43, 0xb2, 0xe8, 0xab, 0x2e, 0xb0, 0x60, 0x99, 0xda, 0xa1,
        0xd1, 0xe5, 0xdf, 0x47, 0x77, 0x8f, 0x77, 0x87, 0xfa, 0xab, 0x45, 0xcd, 0xf1, 0x2f, 0xe3, 0xa8};
    static const unsigned char test[32] = {
        0x92, 0x8b, 0x20, 0x36, 0x69, 0x43, 0xe2, 0xaf, 0xd1, 0x1e, 0xbc, 0x0e, 0xae, 0x2e, 0x53, 0xa9,
        0x3b, 0xf1, 0x77, 0xa4, 0xfc, 0xf3, 0x5b, 0xcc, 0x64, 0xd5, 0x03, 0x70, 0x4e, 0x65, 0xe2, 0x02};
    unsigned char h[32];
    sm_blake2b_256("", 0, h);
    check(memcmp(h, empty, 32) == 0, "BLAKE2b-256(\"\")");
    sm_blake2b_256("test", 4, h);
    check(memcmp(h, test, 32) == 0, "BLAKE2b-256(\"test\")");

    unsigned char left[32], right[32], k0[32], k1[32];
    sm_random(left, 32);
    sm_random(right, 32);
    sm_coffer_key(left, right, k0);
    check(sm_coffer_rekey(left, right) == 0, "coffer rekey");
    sm_coffer_key(left, right, k1);
    check(memcmp(k0, k1, 32) == 0, "rekey re-splits the key without changing it");
}

static void test_crash_filter(void)
{
    LPTOP_LEVEL_EXCEPTION_FILTER before = SetUnhandledExceptionFilter(NULL);
    SetUnhandledExceptionFilter(before);
    check(sm_crash_install() == 0 && sm_crash_installed(), "crash wipe installs");
    check(sm_crash_uninstall() == 0 && !sm_crash_installed(), "and uninstalls");
    check(SetUnhandledExceptionFilter(before) == before, "restoring the filter it displaced");
}

/* Child "canary": overwrite a canary byte, then destroy (must abort with the message). */
static int canary_child(void)
{
    sm_buffer b;
    if (sm_buffer_create(16, SM_LOCK_NONE, &b) != 0)
        return 10;
    b.inner[0] ^= 0xff;
    sm_buffer_destroy(&b);
    return 11; /* not reached when the canary check works */
}

/* Child "crash": a stray write into a guard page with no handler for it. The
 * crash wipe runs first, then the filter it displaced: this one, which
 * reports whether the buffer was wiped and sealed. */
static sm_buffer crash_buf;

static LONG WINAPI after_crash_wipe(EXCEPTION_POINTERS *e)
{
    (void)e;
    MEMORY_BASIC_INFORMATION mbi;
    int sealed = VirtualQuery(crash_buf.inner, &mbi, sizeof mbi) != 0 && mbi.Protect == PAGE_NOACCESS;
    DWORD old;
    int wiped = VirtualProtect(crash_buf.inner, crash_buf.inner_len, PAGE_READONLY, &old) &&
                all_zero(crash_buf.inner, crash_buf.inner_len);
    TerminateProcess(GetCurrentProcess(), 70 + (wiped ? 0 : 1) + (sealed ? 0 : 2));
    return EXCEPTION_CONTINUE_SEARCH;
}

static int crash_child(void)
{
    SetUnhandledExceptionFilter(after_crash_wipe);
    if (sm_crash_install() != 0 || sm_buffer_create(32, SM_LOCK_NONE, &crash_buf) != 0)
        return 10;
    memset(crash_buf.data, 0x42, crash_buf.size);
    *(volatile unsigned char *)(crash_buf.data + crash_buf.size) = 1;
    return 11; /* not reached: the guard page faults */
}

/* Run this program again with argument mode; its exit code, and its stderr in text. */
static int run_child(const char *self, const char *mode, DWORD *code, char *text, size_t text_len)
{
    char dir[MAX_PATH], log[MAX_PATH], cmd[2 * MAX_PATH];
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    GetTempPathA(sizeof dir, dir);
    GetTempFileNameA(dir, "smc", 0, log);
    HANDLE out = CreateFileA(log, GENERIC_WRITE, FILE_SHARE_READ, &sa, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    snprintf(cmd, sizeof cmd, "\"%s\" %s", self, mode);
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = out;
    si.hStdError = out;
    *code = 0;
    text[0] = '\0';
    int started = CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
    if (started) {
        WaitForSingleObject(pi.hProcess, INFINITE);
        GetExitCodeProcess(pi.hProcess, code);
        CloseHandle(pi.hProcess);
        CloseHandle(pi.hThread);
    }
    CloseHandle(out);
    FILE *f = fopen(log, "rb");
    if (f) {
        size_t n = fread(text, 1, text_len - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    DeleteFileA(log);
    printf("# child \"%s\" exit code %lu\n", mode, (unsigned long)*code);
    return started;
}

static void test_children(const char *self)
{
    DWORD code;
    char text[512];
    int started = run_child(self, "canary", &code, text, sizeof text);
    check(started && code != 0 && code != 10 && code != 11, "overwritten canary ends the process at destroy");
    check(strstr(text, "canary verification failed; buffer overflow detected") != NULL,
          "it says so on stderr");
    started = run_child(self, "crash", &code, text, sizeof text);
    check(started && code == 70, "unhandled access violation: every live buffer wiped and sealed first");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "canary") == 0)
        return canary_child();
    if (argc > 1 && strcmp(argv[1], "crash") == 0)
        return crash_child();
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!AddVectoredExceptionHandler(1, on_fault)) {
        printf("not ok - AddVectoredExceptionHandler\n");
        return 1;
    }
    test_pages();
    test_protect();
    test_buffer();
    test_threads();
    test_primitives();
    test_crash_filter();
    test_children(argv[0]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
