/* The key derivation leaves no copy of BLAKE2b-256(right) on the stack.
 *
 * sm_coffer_key computes key = left XOR BLAKE2b-256(right); the digest is
 * half the key, so its hash state and its output are wiped before the
 * functions return. Once they have returned, nothing in Python can look at
 * the stack before later calls overwrite it, so this is checked here, in C:
 * derive() calls sm_coffer_key, then residue(), called from the same frame,
 * reads what its callees left below it (uninitialised on purpose) and counts
 * copies of the digest. Prints that count.
 */
#include <stdio.h>
#include "memguard/guard.h"

#define PROBE 16384

static __attribute__((noinline)) void derive(const unsigned char *left, const unsigned char *right, unsigned char *key)
{
    sm_coffer_key(left, right, key);
}

static __attribute__((noinline)) int residue(const unsigned char *digest)
{
    volatile unsigned char probe[PROBE];
    int hits = 0;
    for (size_t i = 0; i + 32 <= PROBE; i++) {
        size_t j = 0;
        while (j < 32 && probe[i + j] == digest[j])
            j++;
        hits += j == 32;
    }
    return hits;
}

static __attribute__((noinline)) void scrub(void)
{
    volatile unsigned char below[PROBE];
    for (size_t i = 0; i < PROBE; i++)
        below[i] = 0;
}

int main(void)
{
    unsigned char left[32], right[32], key[32], digest[32];
    for (int i = 0; i < 32; i++) {
        left[i] = (unsigned char)(7 * i + 1);
        right[i] = (unsigned char)(13 * i + 5);
    }
    sm_blake2b_256(right, 32, digest);
    scrub(); /* what computing the expected digest left behind */
    derive(left, right, key);
    printf("%d\n", residue(digest));
    return 0;
}
