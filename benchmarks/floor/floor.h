/* The floor: raw syscall sequences in C loops (see floor.c). */
#ifndef BENCHMARKS_FLOOR_H
#define BENCHMARKS_FLOOR_H

#include <stddef.h>

typedef struct floor_batch floor_batch;

int floor_syscall(long n);
int floor_lifecycle(long n);
int floor_legacy_lifecycle(long n);
int floor_protected_read(long n, size_t len);
floor_batch *floor_batch_create(long n);
long floor_batch_size(floor_batch *batch);
int floor_batch_destroy(floor_batch *batch);

/* Peers: another library's guarded allocator, called through function
 * pointers taken from the loaded library (libsodium's sodium_malloc,
 * sodium_free, sodium_mprotect_noaccess, sodium_mprotect_readonly), so the
 * floor needs no link-time dependency on it. */
typedef void *(*floor_alloc_fn)(size_t size);
typedef void (*floor_free_fn)(void *ptr);
typedef int (*floor_protect_fn)(void *ptr);
int floor_peer_lifecycle(long n, size_t size, floor_alloc_fn alloc, floor_free_fn release);
int floor_peer_protected_read(long n, size_t len, void *ptr, floor_protect_fn noaccess, floor_protect_fn readonly);

#endif
