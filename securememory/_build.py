"""cffi build script for ``securememory._native`` (API mode, compiled by pip install).

The C sources live beside the Python layer that wraps them: ``memcall/`` holds
the page-level syscalls (``posix.c`` or ``windows.c``), ``memguard/`` the guarded
buffer and the crash wipe.
"""

from __future__ import annotations

import sys

from cffi import FFI

CDEF = """
#define SM_PROT_NONE ...
#define SM_PROT_READ ...
#define SM_PROT_READ_WRITE ...
#define SM_ADV_DONTDUMP ...
#define SM_ADV_WIPEONFORK ...

size_t sm_page_size(void);
int sm_map(size_t len, int secret, void **out);
int sm_unmap(void *addr, size_t len);
int sm_free(void *addr, size_t len, int locked);
int sm_lock(void *addr, size_t len);
int sm_unlock(void *addr, size_t len);
int sm_protect(void *addr, size_t len, int prot);
int sm_advise(void *addr, size_t len, int advice);
int sm_advice_supported(void);
int sm_memfd_secret_supported(void);
int sm_disable_core_dumps(int hard);
void sm_wipe(void *addr, size_t len);
int sm_random(void *addr, size_t len);

#define SM_LOCK_NONE ...
#define SM_LOCK_REQUIRE ...
#define SM_LOCK_BEST_EFFORT ...
#define SM_FLAG_NO_GUARDS ...
#define SM_FLAG_NO_CANARY_CHECK ...
#define SM_STEP_MAP ...
#define SM_STEP_GUARD ...
#define SM_STEP_ADVISE ...
#define SM_STEP_LOCK ...
#define SM_CANARY_MIN ...

typedef struct sm_buffer {
    unsigned char *base;
    size_t total;
    unsigned char *inner;
    size_t inner_len;
    unsigned char *data;
    size_t size;
    int locked;
    int flags;
    int slot;
    int failed_step;
    int lock_errno;
} sm_buffer;

int sm_buffer_create(size_t size, int lock_mode, int flags, sm_buffer *b);
int sm_buffer_destroy(sm_buffer *b);
int sm_buffer_abandon(sm_buffer *b);
int sm_buffer_protect(sm_buffer *b, int prot);
int sm_equal(const void *a, const void *b, size_t len);

void sm_blake2b_256(const void *in, size_t len, unsigned char out[32]);
void sm_coffer_key(const unsigned char left[32], const unsigned char right[32], unsigned char out[32]);
int sm_coffer_rekey(unsigned char left[32], unsigned char right[32]);

size_t sm_live_count(void);
void sm_live_reset(void);
void sm_wipe_all(void);
int sm_crash_install(void);
int sm_crash_uninstall(void);
int sm_crash_installed(void);
"""

PLATFORM_SOURCE = "windows.c" if sys.platform == "win32" else "posix.c"

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "securememory._native",
    '#include "memcall/memcall.h"\n#include "memguard/guard.h"\n',
    sources=[
        f"securememory/memcall/{PLATFORM_SOURCE}",
        "securememory/memguard/guard.c",
        "securememory/memguard/crash.c",
        "securememory/memguard/coffer.c",
    ],
    include_dirs=["securememory"],
    libraries=["bcrypt"] if sys.platform == "win32" else [],
    extra_compile_args=[] if sys.platform == "win32" else ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
