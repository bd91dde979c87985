/* securememory._gate: the borrow protocol as a Python type, in one C call per step.
 *
 * A Gate wraps the C access counter (gate.c) of one Secret. A Borrow is one
 * borrow of it and is itself the exporter of the read-only memoryview handed
 * to the caller, so it counts every buffer taken from it.
 *
 * - Gate.call(action) is with_bytes: enter, make the view, call action(view),
 *   end; the end runs whatever action did or raised.
 * - Gate.borrow() returns a Borrow whose __enter__ and __exit__ are C
 *   methods: the `with` statement's handler is in place before any bytecode
 *   runs after the gate was entered.
 * - Ending a borrow releases the view. A view that is still exported
 *   (memoryview.release() raises BufferError) or any other export of the
 *   Borrow still alive afterwards (a slice, a cast, memoryview(view),
 *   memoryview(view.obj)) is an escape: the memory is concealed anyway, the
 *   gate remembers it (its owner then keeps the pages reserved instead of
 *   unmapping them) and ViewEscapedError is raised. No reference count is
 *   read, so the rule is the same on every interpreter.
 * - Gate.close(teardown) waits for borrows in flight in short slices with the
 *   GIL released, running signal handlers in between, then calls teardown
 *   from C; if teardown raises, a later close() resumes. A teardown that
 *   failed but finished (nothing is left to resume) returns its exception
 *   instead: the gate closes for good, then raises it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h> /* Interlocked*, LONG64: Python.h leaves it out under Py_LIMITED_API */
#else
#include <pthread.h>
#endif
#include "gate.h"
#include "memcall/memcall.h"

#define WAIT_SLICE_MS 50
/* Stack a fill's action may have left key material on, wiped when it returns. */
#define FILL_STACK_WIPE 32768

static PyObject *ClosedError, *EscapedError, *ForkedError, *BorrowError, *ProtectionError;
static PyObject *clear_frames;
/* Method names called on every borrow and lock hold, interned once (a C
 * string would be made into a new str, and hashed, per call). */
static PyObject *str_release, *str_acquire;
static PyObject *BorrowType;
static volatile unsigned long generation;

/* metrics: Secrets created, and created but not yet torn down */
#ifdef _WIN32
static volatile LONG64 allocated, in_use;
#define count_add(v, d) InterlockedExchangeAdd64(&(v), (d))
#define count_get(v) InterlockedCompareExchange64(&(v), 0, 0)
#define count_set(v, x) InterlockedExchange64(&(v), (x))
#else
static long long allocated, in_use;
#define count_add(v, d) __atomic_add_fetch(&(v), (d), __ATOMIC_RELAXED)
#define count_get(v) __atomic_load_n(&(v), __ATOMIC_RELAXED)
#define count_set(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELAXED)
#endif

#ifndef _WIN32
static void after_fork_in_child(void)
{
    generation++;
}
#endif

typedef struct {
    PyObject_HEAD
    sm_gate *g;
    unsigned long gen;
    char *data;          /* first data byte of a gate with a span of its own */
    Py_ssize_t size;
    int own_span;
    PyObject *expose;    /* enclave: () -> (owner, data, span, span_len) */
    PyObject *conceal;   /* enclave: (owner, escaped) -> None */
    PyObject *exposed;   /* what expose returned, while exposed */
    char *exposed_data;
    int escaped;         /* a view of this gate's memory outlived its borrow */
} GateObject;

typedef struct {
    PyObject_HEAD
    GateObject *gate;
    PyObject *keep;      /* the Secret, alive while the borrow is */
    PyObject *view_ref;  /* weak: the caller owns the view, so dropping it ends an abandoned borrow */
    unsigned long owner;
    int state;           /* 0 new, 1 active, 2 ended */
    Py_ssize_t exports;
    char *data;
} BorrowObject;

static void dealloc_heap(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(self);
    Py_DECREF(tp);
}

/* ProtectionError "<what> (<call> failed: errno N, <strerror>)" with its errno. */
static int raise_errno(const char *what, const char *call, int code)
{
    PyObject *args = Py_BuildValue(
        "(Ni)", PyUnicode_FromFormat("%s (%s failed: errno %d, %s)", what, call, code, strerror(code)), code);
    if (args != NULL) {
        PyErr_SetObject(ProtectionError, args);
        Py_DECREF(args);
    }
    return -1;
}

static int check_generation(GateObject *gate)
{
    if (gate->gen != generation) {
        PyErr_SetString(ForkedError, "this secret was created before fork(); it is wiped in the child");
        return -1;
    }
    return 0;
}

/* ---- Borrow ------------------------------------------------------------ */

static int expose(GateObject *gate, unsigned long owner)
{
    PyObject *r = PyObject_CallNoArgs(gate->expose);
    PyObject *obj;
    Py_ssize_t data, span, span_len;
    if (r == NULL || !PyArg_ParseTuple(r, "Onnn", &obj, &data, &span, &span_len)) {
        Py_XDECREF(r);
        sm_gate_exposed(gate->g, owner, 0, NULL, 0);
        return -1;
    }
    Py_INCREF(obj);
    Py_DECREF(r);
    gate->exposed = obj;
    gate->exposed_data = (char *)data;
    sm_gate_exposed(gate->g, owner, 1, (void *)span, (size_t)span_len);
    return 0;
}

/* Release a borrow's or fill's view: 1 when a buffer taken from it is alive. */
static int release_view(PyObject *view)
{
    int escaped = 0;
    PyObject *r = PyObject_CallMethodObjArgs(view, str_release, NULL);
    if (r == NULL) {
        escaped = 1;
        PyErr_Clear();
    }
    Py_XDECREF(r);
    return escaped;
}

/* Drop the locals of a failing action's finished frames (slices they hold). */
static void drop_frames(PyObject *tb)
{
    if (tb == NULL || tb == Py_None || clear_frames == NULL)
        return;
    PyObject *r = PyObject_CallFunctionObjArgs(clear_frames, tb, NULL);
    Py_XDECREF(r);
    PyErr_Clear();
}

/* After SM_GATE_CONCEAL: hand the exposure to conceal(), mark the gate
 * concealed. -1 (with the exception) when conceal raised. */
static int conceal_exposed(GateObject *gate)
{
    PyObject *obj = gate->exposed;
    gate->exposed = NULL;
    PyObject *r = PyObject_CallFunction(gate->conceal, "Oi", obj ? obj : Py_None, gate->escaped);
    sm_gate_concealed(gate->g);
    Py_XDECREF(obj);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Count the borrow and return its view; NULL with an exception and nothing counted. */
static PyObject *begin(BorrowObject *b)
{
    GateObject *gate = b->gate;
    int rc;
    if (b->state != 0) {
        PyErr_SetString(BorrowError, "a borrow can be entered once");
        return NULL;
    }
    if (check_generation(gate))
        return NULL;
    b->owner = PyThread_get_thread_ident();
    /* Without the GIL: the gate's mutex may be held by a borrower in mprotect
     * (or, for an enclave, one running Python to expose), and other threads'
     * Python runs meanwhile. */
    Py_BEGIN_ALLOW_THREADS
    rc = sm_gate_enter(gate->g, b->owner);
    Py_END_ALLOW_THREADS
    if (rc == SM_GATE_EXPOSE) {
        if (expose(gate, b->owner))
            return NULL;
    } else if (rc == SM_GATE_CLOSED) {
        PyErr_SetString(ClosedError, "secret has already been destroyed");
        return NULL;
    } else if (rc) {
        raise_errno("could not make the secret readable", "mprotect to READ_ONLY", rc);
        return NULL;
    }
    b->data = gate->own_span ? gate->data : gate->exposed_data;
    b->state = 1;
    PyObject *view = PyMemoryView_FromObject((PyObject *)b);
    if (view != NULL) {
        b->view_ref = PyWeakref_NewRef(view, NULL);
        if (b->view_ref == NULL)
            Py_CLEAR(view); /* its release counts the export back */
    }
    if (view == NULL) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        b->state = 2;
        if (sm_gate_exit(gate->g, b->owner) == SM_GATE_CONCEAL && conceal_exposed(gate))
            PyErr_Clear();
        PyErr_Restore(t, v, tb);
        return NULL;
    }
    return view;
}

#define ESCAPED_MESSAGE \
    "a view of the secret outlived its borrow; the memory is inaccessible again and that view must not be used"

/* Release the view, uncount the borrow (concealing on the last) and report an
 * escape. Runs to the end whatever fails on the way; -1 with an exception.
 * ``failing`` is the exception the borrow ends with, if any: an escape is then
 * noted on it instead of replacing it (a cancellation stays a cancellation),
 * and the secret is kept reserved at close all the same. */
static int end(BorrowObject *b, PyObject *tb, PyObject *failing)
{
    GateObject *gate = b->gate;
    int escaped = 0, failed = 0;
    if (b->state != 1)
        return 0;
    /* Calling the weak reference gives a new reference, or None once the view
     * is gone (PyWeakref_GetObject is not in 3.15's limited API headers). */
    PyObject *view = b->view_ref ? PyObject_CallNoArgs(b->view_ref) : NULL;
    if (view != NULL && view != Py_None)
        escaped = release_view(view);
    Py_XDECREF(view);
    PyErr_Clear();
    Py_CLEAR(b->view_ref);
    if (b->exports > 0)
        drop_frames(tb);
    if (b->exports > 0)
        escaped = 1;
    b->state = 2;
    if (escaped)
        gate->escaped = 1;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = sm_gate_exit(gate->g, b->owner);
    Py_END_ALLOW_THREADS
    if (rc == SM_GATE_CONCEAL) {
        failed = conceal_exposed(gate) != 0;
        rc = 0;
    }
    if (escaped) {
        if (failed)
            PyErr_Clear();
        if (failing != NULL && failing != Py_None) {
            PyObject *r = PyObject_CallMethod(failing, "add_note", "s", ESCAPED_MESSAGE);
            Py_XDECREF(r);
            PyErr_Clear();
            return 0;
        }
        PyErr_SetString(EscapedError, ESCAPED_MESSAGE);
        return -1;
    }
    if (failed)
        return -1;
    if (rc)
        return raise_errno("could not make the secret inaccessible", "mprotect to NO_ACCESS", rc);
    return 0;
}

static BorrowObject *new_borrow(GateObject *gate)
{
    BorrowObject *b = (BorrowObject *)PyType_GenericAlloc((PyTypeObject *)BorrowType, 0);
    if (b == NULL)
        return NULL;
    Py_INCREF((PyObject *)gate);
    b->gate = gate;
    return b;
}

static PyObject *borrow_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    return begin((BorrowObject *)self);
}

static PyObject *borrow_exit(PyObject *self, PyObject *args)
{
    PyObject *t = Py_None, *v = Py_None, *tb = Py_None;
    if (!PyArg_ParseTuple(args, "|OOO", &t, &v, &tb))
        return NULL;
    if (end((BorrowObject *)self, tb, v))
        return NULL;
    Py_RETURN_FALSE;
}

static int borrow_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    BorrowObject *b = (BorrowObject *)self;
    if (b->state != 1) {
        PyErr_SetString(PyExc_BufferError, "the borrow has ended");
        return -1;
    }
    if (PyBuffer_FillInfo(view, self, b->data, b->gate->size, 1, flags))
        return -1;
    b->exports++;
    return 0;
}

static void borrow_releasebuffer(PyObject *self, Py_buffer *view)
{
    (void)view;
    ((BorrowObject *)self)->exports--;
}

static void borrow_dealloc(PyObject *self)
{
    BorrowObject *b = (BorrowObject *)self;
    if (b->state == 1) {
        /* entered and never exited (an abandoned generator, a manual __enter__) */
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        end(b, NULL, NULL);
        PyErr_Clear();
        PyErr_Restore(t, v, tb);
    }
    Py_CLEAR(b->view_ref);
    Py_CLEAR(b->keep);
    Py_CLEAR(b->gate);
    dealloc_heap(self);
}

static PyObject *borrow_repr(PyObject *self)
{
    static const char *states[] = {"new", "active", "ended"};
    return PyUnicode_FromFormat("<Borrow %s>", states[((BorrowObject *)self)->state]);
}

static PyMethodDef borrow_methods[] = {
    {"__enter__", borrow_enter, METH_NOARGS, "Enter the borrow; return a read-only memoryview of the secret."},
    {"__exit__", borrow_exit, METH_VARARGS, "End the borrow; ViewEscapedError when a view outlived it."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot borrow_slots[] = {
    {Py_tp_dealloc, borrow_dealloc},
    {Py_tp_methods, borrow_methods},
    {Py_tp_repr, borrow_repr},
    {Py_bf_getbuffer, borrow_getbuffer},
    {Py_bf_releasebuffer, borrow_releasebuffer},
    {Py_tp_doc, "One borrow of a Secret: a context manager giving a read-only memoryview."},
    {0, NULL},
};

static PyType_Spec borrow_spec = {
    "securememory._gate.Borrow", sizeof(BorrowObject), 0, Py_TPFLAGS_DEFAULT, borrow_slots,
};

/* ---- Gate -------------------------------------------------------------- */

static PyObject *gate_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"data", "size", "span", "span_len", "expose", "conceal", NULL};
    Py_ssize_t data, size, span = 0, span_len = 0;
    PyObject *expose_cb = Py_None, *conceal_cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nn|nnOO", kwlist, &data, &size, &span, &span_len, &expose_cb,
                                     &conceal_cb))
        return NULL;
    int own_span = span != 0;
    if (size < 1 || (own_span && span_len < size) || (!own_span && (expose_cb == Py_None || conceal_cb == Py_None))) {
        PyErr_SetString(PyExc_ValueError, "a gate needs a size and either a span or expose/conceal callables");
        return NULL;
    }
    GateObject *self = (GateObject *)PyType_GenericAlloc(type, 0);
    if (self == NULL)
        return NULL;
    self->g = sm_gate_new(own_span ? (void *)span : NULL, (size_t)span_len);
    if (self->g == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    count_add(allocated, 1);
    count_add(in_use, 1);
    self->gen = generation;
    self->data = (char *)data;
    self->size = size;
    self->own_span = own_span;
    if (!own_span) {
        Py_INCREF(expose_cb);
        Py_INCREF(conceal_cb);
        self->expose = expose_cb;
        self->conceal = conceal_cb;
    }
    return (PyObject *)self;
}

static void gate_dealloc(PyObject *self)
{
    GateObject *gate = (GateObject *)self;
    /* in a forked child another thread may have held the mutex at fork: leave it */
    if (gate->g != NULL && gate->gen == generation)
        sm_gate_free(gate->g);
    Py_CLEAR(gate->expose);
    Py_CLEAR(gate->conceal);
    Py_CLEAR(gate->exposed);
    dealloc_heap(self);
}

static PyObject *gate_call(PyObject *self, PyObject *action)
{
    BorrowObject *b = new_borrow((GateObject *)self);
    if (b == NULL)
        return NULL;
    PyObject *view = begin(b);
    if (view == NULL) {
        Py_DECREF(b);
        return NULL;
    }
    PyObject *result = PyObject_CallFunctionObjArgs(action, view, NULL);
    Py_DECREF(view);
    if (result == NULL) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyErr_NormalizeException(&t, &v, &tb);
        if (tb != NULL && v != NULL)
            PyException_SetTraceback(v, tb);
        if (end(b, tb, v)) {
            /* the escape report wins; the action's exception is its context */
            PyObject *t2, *v2, *tb2;
            PyErr_Fetch(&t2, &v2, &tb2);
            PyErr_NormalizeException(&t2, &v2, &tb2);
            if (v2 != NULL && v != NULL) {
                PyException_SetContext(v2, v);
                v = NULL;
            }
            Py_XDECREF(t);
            Py_XDECREF(v);
            Py_XDECREF(tb);
            PyErr_Restore(t2, v2, tb2);
        } else {
            PyErr_Restore(t, v, tb);
        }
        Py_DECREF(b);
        return NULL;
    }
    if (end(b, NULL, NULL)) {
        Py_DECREF(result);
        result = NULL;
    }
    Py_DECREF(b);
    return result;
}

static PyObject *gate_borrow(PyObject *self, PyObject *keep)
{
    BorrowObject *b = new_borrow((GateObject *)self);
    if (b != NULL) {
        Py_INCREF(keep);
        b->keep = keep;
    }
    return (PyObject *)b;
}

/* The closer an event loop uses: never the owner of any borrow, so a borrow
 * held by another task on the same thread is waited for, not refused. */
#define LOOP_CLOSER 0UL

static PyObject *finish_close(GateObject *gate, int rc, PyObject *teardown, unsigned long owner);

static PyObject *gate_close(PyObject *self, PyObject *teardown)
{
    GateObject *gate = (GateObject *)self;
    unsigned long owner = PyThread_get_thread_ident();
    int rc;
    if (check_generation(gate))
        return NULL;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        rc = sm_gate_close(gate->g, owner, WAIT_SLICE_MS);
        Py_END_ALLOW_THREADS
        if (rc != SM_GATE_TIMEOUT)
            break;
        if (PyErr_CheckSignals()) {
            sm_gate_resign(gate->g, owner);
            return NULL;
        }
    }
    return finish_close(gate, rc, teardown, owner);
}

static PyObject *gate_try_close(PyObject *self, PyObject *teardown)
{
    GateObject *gate = (GateObject *)self;
    if (check_generation(gate))
        return NULL;
    int rc = sm_gate_close(gate->g, LOOP_CLOSER, 0);
    if (rc == SM_GATE_TIMEOUT)
        Py_RETURN_NONE;
    return finish_close(gate, rc, teardown, LOOP_CLOSER);
}

static PyObject *gate_resign(PyObject *self, PyObject *unused)
{
    (void)unused;
    GateObject *gate = (GateObject *)self;
    if (gate->gen == generation)
        sm_gate_resign(gate->g, LOOP_CLOSER);
    Py_RETURN_NONE;
}

static PyObject *finish_close(GateObject *gate, int rc, PyObject *teardown, unsigned long owner)
{
    if (rc == SM_GATE_CLOSED)
        Py_RETURN_FALSE;
    if (rc == SM_GATE_SELF) {
        PyErr_SetString(BorrowError, "cannot close a secret from inside its own borrow");
        return NULL;
    }
    PyObject *r = PyObject_CallFunctionObjArgs(teardown, gate->escaped ? Py_True : Py_False, NULL);
    if (r == NULL) {
        sm_gate_resign(gate->g, owner);
        return NULL;
    }
    sm_gate_finish(gate->g);
    count_add(in_use, -1);
    if (PyExceptionInstance_Check(r)) {
        /* the teardown failed but finished: nothing is left to resume */
        PyErr_SetObject((PyObject *)Py_TYPE(r), r);
        Py_DECREF(r);
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_TRUE;
}

static PyObject *gate_retire(PyObject *self, PyObject *unused)
{
    (void)unused;
    GateObject *gate = (GateObject *)self;
    int inflight, was_open;
    if (check_generation(gate))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    inflight = sm_gate_retire(gate->g, &was_open);
    Py_END_ALLOW_THREADS
    if (was_open)
        count_add(in_use, -1);
    return PyLong_FromLong(inflight);
}

static PyObject *gate_torn(PyObject *self, PyObject *unused)
{
    (void)unused;
    GateObject *gate = (GateObject *)self;
    int rc;
    if (check_generation(gate))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = sm_gate_torn(gate->g);
    Py_END_ALLOW_THREADS
    if (rc) {
        raise_errno("could not make the secret inaccessible", "mprotect to NO_ACCESS", rc);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *gate_get_count(PyObject *self, void *closure)
{
    (void)closure;
    GateObject *gate = (GateObject *)self;
    return PyLong_FromLong(gate->gen == generation ? sm_gate_count(gate->g) : 0);
}

static PyObject *gate_get_closing(PyObject *self, void *closure)
{
    (void)closure;
    GateObject *gate = (GateObject *)self;
    return PyLong_FromLong(gate->gen == generation ? sm_gate_closing(gate->g) : 0);
}

static PyObject *gate_get_escaped(PyObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(((GateObject *)self)->escaped);
}

static PyObject *gate_get_forked(PyObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(((GateObject *)self)->gen != generation);
}

static PyObject *gate_get_exposed(PyObject *self, void *closure)
{
    (void)closure;
    PyObject *obj = ((GateObject *)self)->exposed;
    if (obj == NULL)
        Py_RETURN_NONE;
    Py_INCREF(obj);
    return obj;
}

static PyMethodDef gate_methods[] = {
    {"call", gate_call, METH_O, "call(action): action(view) inside one borrow; its result."},
    {"borrow", gate_borrow, METH_O, "borrow(keep): a Borrow (a context manager giving a read-only memoryview) "
     "that keeps ``keep`` alive."},
    {"close", gate_close, METH_O,
     "close(teardown): refuse new borrows, wait for borrows in flight, call teardown(escaped). "
     "True when this call tore down, False when already closed; when teardown returns an exception, "
     "the gate closes and raises it."},
    {"try_close", gate_try_close, METH_O,
     "try_close(teardown): close() without waiting, for an event loop: None while borrows are in flight."},
    {"resign", gate_resign, METH_NOARGS, "Give up a close begun by try_close (a later close resumes)."},
    {"retire", gate_retire, METH_NOARGS, "Close at once (purge); the number of borrows in flight."},
    {"torn", gate_torn, METH_NOARGS,
     "After retire(), once the span is wiped: NO_ACCESS now if no borrow is left (else the last exit does it)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef gate_getset[] = {
    {"count", gate_get_count, NULL, "Borrows in flight.", NULL},
    {"closing", gate_get_closing, NULL, "0 open, 1 closing, 2 closed.", NULL},
    {"escaped", gate_get_escaped, NULL, "Whether a view ever outlived its borrow.", NULL},
    {"forked", gate_get_forked, NULL, "Whether this gate was inherited across fork().", NULL},
    {"exposed", gate_get_exposed, NULL, "What expose() returned, while exposed.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot gate_slots[] = {
    {Py_tp_new, gate_new},
    {Py_tp_dealloc, gate_dealloc},
    {Py_tp_methods, gate_methods},
    {Py_tp_getset, gate_getset},
    {Py_tp_doc, "Gate(data, size, span=0, span_len=0, expose=None, conceal=None): a Secret's borrow gate."},
    {0, NULL},
};

static PyType_Spec gate_spec = {
    "securememory._gate.Gate", sizeof(GateObject), 0, Py_TPFLAGS_DEFAULT, gate_slots,
};

/* ---- Fill: a writable view of fresh memory, counted like a borrow's -------- */

typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t size;
    Py_ssize_t exports;
    int open;
} FillObject;

static PyObject *FillType;

static int fill_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    FillObject *f = (FillObject *)self;
    if (!f->open) {
        PyErr_SetString(PyExc_BufferError, "the fill has ended");
        return -1;
    }
    if (PyBuffer_FillInfo(view, self, f->data, f->size, 0, flags))
        return -1;
    f->exports++;
    return 0;
}

static void fill_releasebuffer(PyObject *self, Py_buffer *view)
{
    (void)view;
    ((FillObject *)self)->exports--;
}

static PyType_Slot fill_slots[] = {
    {Py_tp_dealloc, dealloc_heap},
    {Py_bf_getbuffer, fill_getbuffer},
    {Py_bf_releasebuffer, fill_releasebuffer},
    {Py_tp_doc, "The exporter of one fill's writable view."},
    {0, NULL},
};

static PyType_Spec fill_spec = {
    "securememory._gate.Fill", sizeof(FillObject), 0, Py_TPFLAGS_DEFAULT, fill_slots,
};

/* fill(data, size, action): action(view) with a writable view of size bytes at
 * data, then the view released. True when a view of the memory outlived the
 * call (the same rule as a borrow's escape). action's exception propagates,
 * with the locals of its finished frames dropped first. What action called
 * (a KDF, an AEAD, read()) may leave the secret in its dead stack frames:
 * that stack is wiped as soon as action returns. */
static PyObject *fill(PyObject *module, PyObject *args)
{
    (void)module;
    Py_ssize_t data, size;
    PyObject *action;
    if (!PyArg_ParseTuple(args, "nnO", &data, &size, &action))
        return NULL;
    if (size < 1) {
        PyErr_SetString(PyExc_ValueError, "a fill needs at least one byte");
        return NULL;
    }
    FillObject *f = (FillObject *)PyType_GenericAlloc((PyTypeObject *)FillType, 0);
    if (f == NULL)
        return NULL;
    f->data = (char *)data;
    f->size = size;
    f->open = 1;
    PyObject *view = PyMemoryView_FromObject((PyObject *)f);
    if (view == NULL) {
        Py_DECREF(f);
        return NULL;
    }
    PyObject *result = PyObject_CallFunctionObjArgs(action, view, NULL);
    sm_stack_wipe(FILL_STACK_WIPE);
    PyObject *t = NULL, *v = NULL, *tb = NULL;
    if (result == NULL) {
        PyErr_Fetch(&t, &v, &tb);
        PyErr_NormalizeException(&t, &v, &tb);
        if (tb != NULL && v != NULL)
            PyException_SetTraceback(v, tb);
    }
    int escaped = release_view(view);
    Py_DECREF(view);
    if (f->exports > 0)
        drop_frames(tb);
    escaped = escaped || f->exports > 0;
    f->open = 0;
    Py_DECREF(f);
    if (result == NULL) {
        PyErr_Restore(t, v, tb);
        return NULL;
    }
    Py_DECREF(result);
    return PyBool_FromLong(escaped);
}

/* ---- Hold: a lock held for one with block, given back if the block never starts ----
 *
 * From CPython 3.14, `with lock:` calls __enter__ with a CALL that runs
 * signal handlers when it ends, before the block's handler is in place
 * (CPython issue 148874): a KeyboardInterrupt raised there skips __exit__
 * and the lock stays held for good. `with hold(lock):` makes one Hold per
 * block, referenced only by the interpreter's stack: if the block never
 * starts, unwinding drops the Hold, and its dealloc releases the lock. A
 * tracer that raises there can keep the Hold alive as long as its exception
 * (see locked() below, for locks an except clause may take again). */

typedef struct {
    PyObject_HEAD
    PyObject *lock;
    int held;
} HoldObject;

static PyObject *HoldType;

static int hold_release(HoldObject *h)
{
    if (!h->held)
        return 0;
    h->held = 0;
    PyObject *r = PyObject_CallMethodObjArgs(h->lock, str_release, NULL);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

static PyObject *hold_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    HoldObject *h = (HoldObject *)self;
    if (h->held) {
        PyErr_SetString(PyExc_RuntimeError, "this hold is already held");
        return NULL;
    }
    PyObject *r = PyObject_CallMethodObjArgs(h->lock, str_acquire, NULL);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    h->held = 1;
    Py_INCREF(h->lock);
    return h->lock;
}

static PyObject *hold_exit(PyObject *self, PyObject *args)
{
    (void)args;
    if (hold_release((HoldObject *)self))
        return NULL;
    Py_RETURN_FALSE;
}

static void hold_dealloc(PyObject *self)
{
    HoldObject *h = (HoldObject *)self;
    if (h->held) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        if (hold_release(h))
            PyErr_Clear();
        PyErr_Restore(t, v, tb);
    }
    Py_CLEAR(h->lock);
    dealloc_heap(self);
}

static PyMethodDef hold_methods[] = {
    {"__enter__", hold_enter, METH_NOARGS, "Acquire the lock; return it."},
    {"__exit__", hold_exit, METH_VARARGS, "Release the lock."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot hold_slots[] = {
    {Py_tp_dealloc, hold_dealloc},
    {Py_tp_methods, hold_methods},
    {Py_tp_doc, "One with block holding a lock; released when dropped unexited."},
    {0, NULL},
};

static PyType_Spec hold_spec = {
    "securememory._gate.Hold", sizeof(HoldObject), 0, Py_TPFLAGS_DEFAULT, hold_slots,
};

static PyObject *hold(PyObject *module, PyObject *lock)
{
    (void)module;
    HoldObject *h = (HoldObject *)PyType_GenericAlloc((PyTypeObject *)HoldType, 0);
    if (h == NULL)
        return NULL;
    Py_INCREF(lock);
    h->lock = lock;
    h->held = 0;
    return (PyObject *)h;
}

/* ---- locked: a critical section whose lock C gives back, whatever holds the frame ----
 *
 * A Hold gives its lock back when the Hold dies, and a tracer can keep it
 * alive: a profile function raising at the c_return event of Hold.__enter__
 * is passed a bound method holding the Hold, and its frame stays in the
 * exception's traceback. An except clause that takes the same lock again on
 * that thread (Enclave.open destroying its buffer) would deadlock.
 * locked(lock, fn, *args) acquires, calls and releases in one C call: no
 * bytecode, signal handler or trace event runs between acquire and the call
 * or between the return and the release, and any exception raised inside fn
 * comes back here, so the lock is free before the exception leaves. */
static PyObject *locked(PyObject *module, PyObject *args)
{
    (void)module;
    Py_ssize_t n = PyTuple_Size(args);
    if (n < 2) {
        PyErr_SetString(PyExc_TypeError, "locked(lock, fn, *args) needs a lock and a callable");
        return NULL;
    }
    PyObject *lock = PyTuple_GetItem(args, 0), *fn = PyTuple_GetItem(args, 1);
    PyObject *rest = PyTuple_GetSlice(args, 2, n);
    if (lock == NULL || fn == NULL || rest == NULL) {
        Py_XDECREF(rest);
        return NULL;
    }
    /* a signal handler raising while acquire() waits: NULL, the lock not taken */
    PyObject *r = PyObject_CallMethodObjArgs(lock, str_acquire, NULL);
    if (r == NULL) {
        Py_DECREF(rest);
        return NULL;
    }
    Py_DECREF(r);
    PyObject *result = PyObject_CallObject(fn, rest);
    Py_DECREF(rest);
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    r = PyObject_CallMethodObjArgs(lock, str_release, NULL);
    if (r == NULL) {
        if (result != NULL) {
            Py_DECREF(result);
            Py_XDECREF(t);
            Py_XDECREF(v);
            Py_XDECREF(tb);
            return NULL;
        }
        PyErr_Clear(); /* fn's error wins */
    }
    Py_XDECREF(r);
    PyErr_Restore(t, v, tb);
    return result;
}

/* ---- module ------------------------------------------------------------ */

static PyObject *configure(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *c, *e, *f, *b, *p, *cf;
    if (!PyArg_ParseTuple(args, "OOOOOO", &c, &e, &f, &b, &p, &cf))
        return NULL;
    PyObject **slots[] = {&ClosedError, &EscapedError, &ForkedError, &BorrowError, &ProtectionError, &clear_frames};
    PyObject *values[] = {c, e, f, b, p, cf};
    for (int i = 0; i < 6; i++) {
        PyObject *old = *slots[i];
        Py_INCREF(values[i]);
        *slots[i] = values[i];
        Py_XDECREF(old);
    }
    Py_RETURN_NONE;
}

static PyObject *counters(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return Py_BuildValue("(LL)", (long long)count_get(allocated), (long long)count_get(in_use));
}

static PyObject *reset_counters(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    count_set(allocated, 0);
    count_set(in_use, 0);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"hold", hold, METH_O,
     "hold(lock): a context manager holding lock for one with block, released if the block never starts."},
    {"locked", locked, METH_VARARGS,
     "locked(lock, fn, *args): fn(*args) with lock held, released before any exception leaves."},
    {"fill", fill, METH_VARARGS,
     "fill(data, size, action): action(view) with a writable view; True when a view outlived it."},
    {"counters", counters, METH_NOARGS, "(allocated, in_use): Secrets created, and not yet torn down."},
    {"reset_counters", reset_counters, METH_NOARGS, "Zero both counters."},
    {"configure", configure, METH_VARARGS,
     "configure(closed, escaped, forked, borrow, protection, clear_frames): the exceptions raised."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "securememory._gate", "The borrow protocol of Secrets.", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__gate(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    str_release = PyUnicode_InternFromString("release");
    str_acquire = PyUnicode_InternFromString("acquire");
    if (str_release == NULL || str_acquire == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    ClosedError = EscapedError = ForkedError = BorrowError = ProtectionError = PyExc_RuntimeError;
    for (int i = 0; i < 5; i++)
        Py_INCREF(PyExc_RuntimeError);
    BorrowType = PyType_FromSpec(&borrow_spec);
    FillType = PyType_FromSpec(&fill_spec);
    HoldType = PyType_FromSpec(&hold_spec);
    if (FillType == NULL || HoldType == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    PyObject *gate_type = PyType_FromSpec(&gate_spec);
    if (BorrowType == NULL || gate_type == NULL || PyModule_AddObject(m, "Gate", gate_type)) {
        Py_XDECREF(gate_type);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(BorrowType);
    if (PyModule_AddObject(m, "Borrow", BorrowType)) {
        Py_DECREF(BorrowType);
        Py_DECREF(m);
        return NULL;
    }
#ifndef _WIN32
    pthread_atfork(NULL, NULL, after_fork_in_child);
#endif
    return m;
}
