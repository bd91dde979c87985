/* The borrow gate of a Secret: access counting in C, one crossing per step. */
#ifndef SECUREMEMORY_GATE_H
#define SECUREMEMORY_GATE_H

#include <stddef.h>

#define SM_GATE_EXPOSE -1  /* enter: first borrower, the caller exposes then calls sm_gate_exposed */
#define SM_GATE_CONCEAL -2 /* exit: last borrower, the caller conceals then calls sm_gate_concealed */
#define SM_GATE_CLOSED -3  /* enter: closing or closed; close: another close finished it */
#define SM_GATE_SELF -4    /* close: called from inside one of this gate's own borrows */

typedef struct sm_gate sm_gate;

/* A gate over addr/len (NULL: the owner exposes and conceals), or NULL when out of memory. */
sm_gate *sm_gate_new(void *addr, size_t len);
void sm_gate_free(sm_gate *g);
int sm_gate_enter(sm_gate *g);
void sm_gate_exposed(sm_gate *g, int ok);
int sm_gate_exit(sm_gate *g);
void sm_gate_concealed(sm_gate *g);
int sm_gate_close(sm_gate *g);
void sm_gate_finish(sm_gate *g);
int sm_gate_closing(sm_gate *g);
int sm_gate_count(sm_gate *g);

#endif
