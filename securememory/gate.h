/* The borrow gate of a Secret: access counting in plain C.
 *
 * The Python type that wraps it (gatemodule.c) makes every step one call, so
 * no bytecode boundary lies between entering a gate and the guarantee that it
 * is exited.
 */
#ifndef SECUREMEMORY_GATE_H
#define SECUREMEMORY_GATE_H

#include <stddef.h>

#define SM_GATE_EXPOSE -1  /* enter: first borrower, the caller exposes then calls sm_gate_exposed */
#define SM_GATE_CONCEAL -2 /* exit: last borrower, the caller conceals then calls sm_gate_concealed */
#define SM_GATE_CLOSED -3  /* enter: closing or closed; close: another close finished it */
#define SM_GATE_SELF -4    /* close: the owner holds one of this gate's borrows */
#define SM_GATE_TIMEOUT -5 /* close: still waiting; call again (after running signal handlers) */

typedef struct sm_gate sm_gate;

/* A gate over addr/len (NULL: the owner exposes and conceals), or NULL when out of memory. */
sm_gate *sm_gate_new(void *addr, size_t len);
void sm_gate_free(sm_gate *g);
/* Count one borrow held by ``owner`` (any id naming the borrower). */
int sm_gate_enter(sm_gate *g, unsigned long owner);
/* After SM_GATE_EXPOSE: ok != 0 with the span now readable (addr/len, NULL for none). */
void sm_gate_exposed(sm_gate *g, unsigned long owner, int ok, void *addr, size_t len);
int sm_gate_exit(sm_gate *g, unsigned long owner);
void sm_gate_concealed(sm_gate *g);
/* Begin or continue closing; waits at most timeout_ms for borrows in flight.
 * 0: the caller now destroys, then calls sm_gate_finish (or sm_gate_resign). */
int sm_gate_close(sm_gate *g, unsigned long owner, int timeout_ms);
void sm_gate_finish(sm_gate *g);
/* The closer gives up (interrupted, or destroy failed): a later close resumes. */
void sm_gate_resign(sm_gate *g, unsigned long owner);
/* Close at once for purge, after any exposure under way: returns the borrows
 * in flight. The owner keeps their span reserved (wiped, still readable),
 * then calls sm_gate_torn; the last exit after that makes it NO_ACCESS.
 * Call without the GIL. */
int sm_gate_retire(sm_gate *g, int *was_open);
/* After sm_gate_retire, once the owner is done wiping the span: NO_ACCESS now
 * if no borrow is left in flight (else the last exit does it). 0 or an errno. */
int sm_gate_torn(sm_gate *g);
int sm_gate_closing(sm_gate *g);
int sm_gate_count(sm_gate *g);

#endif
