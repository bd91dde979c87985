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

#endif
